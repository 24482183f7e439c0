"""Lesson 08 in a real browser: JupyterLab from the venv, Debian's headless Chromium driven by Selenium.

The test starts `jupyter lab` on a free localhost port over a temporary copy of `notebooks/` (the
lesson's committed outputs stay as they are), opens lesson 08, runs all its cells on the released
runs (the kernel inherits the server's environment: MFJLE_RUNS=released, and this checkout first on
PYTHONPATH), then moves one slider of the fusion panel with the keyboard and checks that the panel's
metric table changes; a screenshot of the panel goes to the test's tmp folder. Nothing is downloaded
at run time: the browser is Debian's `chromium` and `chromium-driver` (`apt-get install -y chromium
chromium-driver`; MFJLE_CHROMIUM / MFJLE_CHROMEDRIVER point elsewhere). Without them the test fails
rather than skips: CI installs them (`.ci/run`). `make browser` runs this module alone.

`LabServer`, `run_notebook_in_lab`, `notebook_cell_index` and `cell_output_text` are the pieces a
second test reuses to run another notebook (e.g. one under `notebooks/lab/`) and read a cell's output.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("MFJLE_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("MFJLE_CHROMEDRIVER", "/usr/bin/chromedriver"))
INSTALL_HINT = "apt-get install -y chromium chromium-driver"  # Debian 12's packages, as root or with sudo
LESSON = "08_advanced_fusion.ipynb"

pytestmark = [pytest.mark.slow, pytest.mark.browser]

# JupyterLab settings for a test session: every cell attached to the page (the default windowing leaves cells far
# from the viewport unrendered, so their outputs could not be read), and no news or update check (offline).
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
}


@dataclass
class LabServer:
    """A running JupyterLab: its address, token, the folder it serves and its log."""

    base_url: str
    token: str
    root: Path
    log: Path

    def url(self, path: str) -> str:
        """The address that opens `path` (relative to `root`) in JupyterLab, logged in with the token."""
        return f"{self.base_url}/lab/tree/{path}?token={self.token}"

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's log (kernel start-up errors end up here)."""
        return self.log.read_text(encoding="utf-8", errors="replace")[-chars:] if self.log.exists() else ""


def _require_browser() -> None:
    """Fail (not skip) with the install command where Chromium or its driver is missing."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail(
            f"browser test: {', '.join(missing)} not found; install Chromium and its driver with `{INSTALL_HINT}` "
            "(Debian/Ubuntu, as root or with sudo; .ci/run does it)",
            pytrace=False,
        )
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.fail("browser test: selenium is missing; `pip install -c constraints.txt -e '.[dev]'`", pytrace=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(what: str, check: Callable[[], Any], timeout: float, every: float = 0.5, why: Callable[[], str] = str):
    """Poll `check` until it returns something truthy (returned); fail after `timeout` s saying what did not happen."""
    from selenium.common.exceptions import StaleElementReferenceException

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            result = check()
        except StaleElementReferenceException:  # an output redrawn while it was read: read it again
            result = None
        if result:
            return result
        time.sleep(every)
    pytest.fail(f"browser test: no {what} after {timeout:.0f} s\n{why()}", pytrace=False)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """JupyterLab from this venv on a free localhost port, serving a copy of `notebooks/`, kernels on released runs."""
    _require_browser()
    tmp = tmp_path_factory.mktemp("lab")
    root = tmp / "notebooks"
    shutil.copytree(REPO / "notebooks", root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    settings = tmp / "settings"
    for name, values in LAB_SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(values), encoding="utf-8")
    env = {
        **os.environ,
        # The kernel inherits these: this checkout's library (not another editable install), the released runs.
        "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "MFJLE_RUNS": "released",
        "MFJLE_RELEASED_ONLY": "1",
        "MFJLE_NO_PROGRESS": "1",
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
        # A user's own Jupyter config does not change the test, and the notebook-signing key is not written to ~.
        "JUPYTER_CONFIG_DIR": str(tmp / "config"),
        "JUPYTER_DATA_DIR": str(tmp / "data"),
    }
    env.pop("MFJLE_FAST", None)  # FAST would win over MFJLE_RUNS and train
    port, token = _free_port(), secrets.token_hex(16)
    log = tmp / "jupyterlab.log"
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
    ]
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=root)
    server = LabServer(f"http://127.0.0.1:{port}", token, root, log)

    def up() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"browser test: jupyter lab exited ({proc.returncode})\n{server.log_tail()}", pytrace=False)
        try:
            with urllib.request.urlopen(f"{server.base_url}/api/status?token={token}", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    try:
        _wait_for("JupyterLab server", up, timeout=120, why=server.log_tail)
        yield server
    finally:
        proc.terminate()  # the server shuts its kernels down on SIGTERM
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def driver(lab: LabServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Headless Chromium through chromedriver, both Debian's (Selenium Manager never downloads one)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    tmp = tmp_path_factory.mktemp("chromium")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in a container has no user namespaces for the sandbox
        "--disable-dev-shm-usage",  # a container's /dev/shm is small
        "--disable-gpu",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp / 'profile'}",
    ):
        options.add_argument(arg)
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(tmp / "chromedriver.log"))
    browser = webdriver.Chrome(service=service, options=options)
    try:
        yield browser
    finally:
        browser.quit()


def _cells(driver: Any) -> list[Any]:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell")


def menu(driver: Any, title: str, command: str) -> None:
    """Click a JupyterLab menu-bar entry (`title`), then its item for `command` (e.g. "runmenu:run-all")."""
    from selenium.webdriver.common.by import By

    driver.find_element(By.XPATH, f"//li[contains(@class,'lm-MenuBar-item')][.//*[text()='{title}']]").click()
    driver.find_element(By.CSS_SELECTOR, f"li.lm-Menu-item[data-command='{command}']").click()


def _prompts(driver: Any) -> list[str]:
    """Each code cell's prompt, brackets stripped: a number once run, "" before, "*" while queued or running."""
    from selenium.webdriver.common.by import By

    css = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputArea-prompt"
    return [e.text.strip().strip("[]:").strip() for e in driver.find_elements(By.CSS_SELECTOR, css)]


def open_notebook_in_lab(driver: Any, lab: LabServer, path: str) -> None:
    """Open `path` (relative to the server's root) in JupyterLab and wait until its kernel is idle."""
    from selenium.webdriver.common.by import By

    count = len(json.loads((lab.root / path).read_text(encoding="utf-8"))["cells"])
    driver.get(lab.url(path))
    # Cells attach one after another: wait for all of them, so that cell i on the page is cell i of the file.
    _wait_for(f"{count} cells on the page", lambda: len(_cells(driver)) == count, timeout=120, why=lab.log_tail)
    indicator = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator"
    _wait_for(
        "idle kernel",
        lambda: any(e.get_attribute("data-status") == "idle" for e in driver.find_elements(By.CSS_SELECTOR, indicator)),
        timeout=120,
        why=lab.log_tail,
    )


def run_all_cells(driver: Any, lab: LabServer, timeout: float = 600) -> None:
    """Clear the open notebook's outputs, Run All Cells, wait until every code cell has run.

    Fails, with the notebook's error output and the server log, if a cell raises or the run does not end in time.
    """
    from selenium.webdriver.common.by import By

    # Clear first: a saved notebook's prompts already carry numbers, which would read as "all cells have run".
    menu(driver, "Edit", "editmenu:clear-all")
    _wait_for("cleared prompts", lambda: not any(t.isdigit() for t in _prompts(driver)), timeout=30)
    menu(driver, "Run", "runmenu:run-all")

    def errors() -> str:
        areas = driver.find_elements(By.CSS_SELECTOR, "[data-mime-type='application/vnd.jupyter.stderr']")
        return "\n".join(e.text for e in areas)[-4000:] + "\n--- server log ---\n" + lab.log_tail(2000)

    def finished() -> bool:
        prompts = _prompts(driver)
        if prompts and all(t.isdigit() for t in prompts):
            return True
        if any(t.isdigit() for t in prompts) and "*" not in prompts:  # Run All stops at a cell that raised
            pytest.fail(f"browser test: Run All stopped before the last cell\n{errors()}", pytrace=False)
        return False

    _wait_for("end of Run All", finished, timeout=timeout, every=1.0, why=errors)


def run_notebook_in_lab(driver: Any, lab: LabServer, path: str, timeout: float = 600) -> None:
    """Open `path` (relative to the server's root) in JupyterLab and run all its cells (`open_notebook_in_lab`,
    `run_all_cells`)."""
    open_notebook_in_lab(driver, lab, path)
    run_all_cells(driver, lab, timeout)


def notebook_cell_index(path: Path, tag: str | None = None, contains: str | None = None) -> int:
    """Index of the first cell of a notebook file with this tag and/or source text (as `cell_output_text` counts)."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    for i, cell in enumerate(cells):
        source = "".join(cell.get("source", ""))
        if (tag is None or tag in cell.get("metadata", {}).get("tags", [])) and (
            contains is None or contains in source
        ):
            return i
    raise LookupError(f"{path}: no cell with tag={tag!r} contains={contains!r}")


def cell_output_text(driver: Any, index: int) -> str:
    """The text of the outputs of the notebook's cell `index` (its position in the .ipynb, markdown included)."""
    from selenium.webdriver.common.by import By

    cell = _cells(driver)[index]
    return "\n".join(e.text for e in cell.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output"))


def _panel_table(panel: Any) -> str:
    """The text of the panel's metric table; "" while it is being redrawn (each move clears and redraws the output)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        tables = panel.find_elements(By.CSS_SELECTOR, ".widget-output table")
        return tables[0].text if tables else ""
    except StaleElementReferenceException:
        return ""


@pytest.fixture
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: a folder of the session's tmp dir (kept after a failure, or with --basetemp)."""
    return tmp_path_factory.mktemp("screenshots")


def test_lesson_08_fusion_panel_moves_in_the_browser(request: pytest.FixtureRequest, shots: Path) -> None:
    """Run lesson 08 in JupyterLab; the panel's seven sliders line up, and moving one changes the metric table."""
    _require_browser()  # before the fixtures, so that a missing browser is this test's failure, not a setup error
    lab, driver = request.getfixturevalue("lab"), request.getfixturevalue("driver")
    try:
        _check_fusion_panel(lab, driver, shots)
    except BaseException:
        with contextlib.suppress(Exception):  # the browser may be what failed; the first error is the one to see
            driver.save_screenshot(str(shots / "page_at_failure.png"))
            print(f"page at failure: {shots / 'page_at_failure.png'}")
        raise


def _check_fusion_panel(lab: LabServer, driver: Any, shots: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    index = notebook_cell_index(lab.root / LESSON, contains="ablations.fusion_panel(")
    open_notebook_in_lab(driver, lab, LESSON)
    # As saved (not yet run, so untrusted: JupyterLab draws only safe types): the static picture, never the repr.
    saved = cell_output_text(driver, index)
    assert "Fusion panel" in saved and "Micro-F1" in saved and "interactive(" not in saved, saved[:500]
    driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", _cells(driver)[index])
    _cells(driver)[index].screenshot(str(shots / "fusion_panel_as_saved.png"))
    run_all_cells(driver, lab)
    cell = _cells(driver)[index]
    panel = _wait_for(
        "live fusion panel with a metric table",
        lambda: next((p for p in cell.find_elements(By.CSS_SELECTOR, ".widget-interact") if _panel_table(p)), None),
        timeout=60,
        why=lambda: cell.text[:2000],
    )
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", panel)
    sliders = panel.find_elements(By.CSS_SELECTOR, ".widget-slider")
    assert len(sliders) == 7, f"{len(sliders)} sliders in the panel"

    tracks = [s.find_element(By.CSS_SELECTOR, ".slider-container").rect for s in sliders]
    handles = [s.find_element(By.CSS_SELECTOR, ".noUi-handle").rect for s in sliders]
    # One label width and one row length: every track starts and ends at the same x ...
    assert max(t["x"] for t in tracks) - min(t["x"] for t in tracks) <= 1, tracks
    assert max(t["width"] for t in tracks) - min(t["width"] for t in tracks) <= 1, tracks
    assert min(t["width"] for t in tracks) >= 300, f"tracks {tracks[0]['width']:.0f} px long"
    # ... so the five local weights, all at 0.01, put their handles at one x (w0 = 1.0 further right).
    local_x = [h["x"] for h in handles[1:6]]
    assert max(local_x) - min(local_x) <= 1 and handles[0]["x"] > max(local_x) + 10, handles

    before = _panel_table(panel)
    handle = sliders[0].find_element(By.CSS_SELECTOR, ".noUi-handle")  # w0, the whole face
    handle.click()
    for _ in range(20):  # 20 steps of 0.05 on the log scale: w0 from 1 to 0.1
        handle.send_keys(Keys.ARROW_LEFT)
    after = _wait_for("change in the metric table", lambda: (t := _panel_table(panel)) != before and t, timeout=60)
    readout = sliders[0].find_element(By.CSS_SELECTOR, ".widget-readout").text
    panel.screenshot(str(shots / "fusion_panel.png"))
    print(f"panel screenshot: {shots / 'fusion_panel.png'}")
    assert readout == "0.1000", f"w0 readout {readout!r} after 20 steps left"
    assert "Micro-F1" in after, after


def test_a_lab_notebooks_grader_shows_its_verdict_in_the_browser(request: pytest.FixtureRequest, shots: Path) -> None:
    """Run the lab edition of lesson 06 in JupyterLab as a student's Run All does: each grader cell shows its verdict
    (the blanks are unfilled, so "not written yet") and the lesson runs to its last cell."""
    _require_browser()
    lab, driver = request.getfixturevalue("lab"), request.getfixturevalue("driver")
    path = "lab/06_metrics.ipynb"
    try:
        run_notebook_in_lab(driver, lab, path)
        index = notebook_cell_index(lab.root / path, tag="grader")
        verdict = cell_output_text(driver, index)
        assert "not written yet — continuing with the library's version" in verdict, verdict
        driver.save_screenshot(str(shots / "lab_grader.png"))
    except BaseException:
        with contextlib.suppress(Exception):
            driver.save_screenshot(str(shots / "lab_page_at_failure.png"))
        raise
