"""Colab, simulated (issue 19): every lesson's first cells in a fresh environment that lacks mfjle_lib.

What Colab has and this test builds in a temporary folder:

- a Python with the course's dependencies but **not** mfjle_lib: a new `python -m venv` whose
  site-packages holds one `.pth` that adds a folder of links to this environment's site-packages,
  every entry except mfjle's own (its dist-info and the editable install's finder), so nothing is
  downloaded and the lesson cannot find the checkout under test;
- `google.colab` importable and imported before the first cell, as Colab's kernel does (a stub with
  a `drive` module that records a mount instead of mounting);
- `MFJLE_REPO` = this repository (`file://`, its committed HEAD) and `MFJLE_COLAB_DIR` = a folder
  that does not exist yet, in place of /content/mfjle, so the setup cell clones and installs itself.

Two things differ from Colab, both only because this machine is offline: pip gets `PIP_NO_INDEX`
(dependencies must already be satisfied) and builds without isolation (setuptools comes from the
environment instead of the index). Then, in one Python process: the setup cell, and for each
lesson its own setup cell (a no-op once installed), its parameters cell and the cell that calls
`lesson_setup`, with the default RUNS (released). Each lesson must print its mode line and the Colab runs-folder
line, and mfjle_lib must come from the clone. A fresh Colab machine per lesson would repeat the
install; that part is the same cell, so it runs once here.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))

STUB_DRIVE = '''"""Stub of google.colab.drive: records the mount instead of mounting."""
MOUNTED = []


def mount(path, *args, **kwargs):
    MOUNTED.append(path)
    raise RuntimeError("stub google.colab.drive.mount called: DRIVE should be off in this test")
'''

DRIVER = '''"""Run the lessons' first cells in this process, as one Colab kernel would; write what they printed."""
import contextlib, importlib.util, io, json, sys
stub, cells_file, report_file = sys.argv[1:4]
sys.path.insert(0, stub)
import google.colab  # noqa: E402,F401  Colab's kernel has imported it before the first cell runs
assert importlib.util.find_spec("mfjle_lib") is None, "mfjle_lib is visible before the setup cell"
printed = {}
for name, cells in json.load(open(cells_file)).items():
    namespace, out = {"__name__": "__main__"}, io.StringIO()
    with contextlib.redirect_stdout(out):
        for index, source in enumerate(cells):
            exec(compile(source, f"<{name} cell {index}>", "exec"), namespace)
    printed[name] = out.getvalue()
import mfjle_lib  # noqa: E402
from google.colab import drive  # noqa: E402
json.dump({"mfjle_lib": mfjle_lib.__file__, "printed": printed, "mounted": drive.MOUNTED}, open(report_file, "w"))
'''


def _tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def first_cells(path: Path) -> list[str]:
    """A lesson's setup cell, parameters cell and the first code cell that calls `lesson_setup(`."""
    code = [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]
    sources = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in code]
    setup = next(i for i, c in enumerate(code) if "setup" in _tags(c))
    params = next(i for i, c in enumerate(code) if "parameters" in _tags(c))
    lesson = next(i for i, s in enumerate(sources) if "lesson_setup(" in s)
    assert setup < params < lesson, path.name
    picked = [sources[i] for i in (setup, params, lesson)]
    for source in picked:  # exec runs Python only: a magic or shell line here would need IPython
        assert not any(line.lstrip().startswith(("%", "!")) for line in source.splitlines()), path.name
    return picked


def dependencies_without_mfjle(folder: Path) -> Path:
    """A folder of links to this environment's site-packages, leaving out everything of mfjle's own."""
    folder.mkdir()
    for packages in map(Path, site.getsitepackages()):
        for entry in packages.iterdir() if packages.is_dir() else []:
            if "mfjle" not in entry.name.lower() and not (folder / entry.name).exists():
                (folder / entry.name).symlink_to(entry)
    return folder


def colab_like_python(tmp_path: Path) -> Path:
    """A new virtual environment that sees the dependencies (and pip, setuptools) but not mfjle_lib."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    deps = dependencies_without_mfjle(tmp_path / "deps")
    # addsitedir, not a bare path line: the dependencies' own .pth files run, as in a real install.
    (Path(purelib) / "colab_dependencies.pth").write_text(f"import site; site.addsitedir({str(deps)!r})\n")
    return python


def colab_env(tmp_path: Path, python: Path) -> dict[str, str]:
    """The simulated Colab kernel's environment: no checkout on the path, the lessons' default RUNS, offline pip."""
    drop = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith(("MFJLE_", "PIP_"))}
    env.update(
        {
            "PATH": f"{python.parent}{os.pathsep}{env.get('PATH', '')}",
            "MFJLE_NO_PROGRESS": "1",
            "MFJLE_REPO": REPO.as_uri(),
            "MFJLE_COLAB_DIR": str(tmp_path / "content" / "mfjle"),
            "PIP_NO_INDEX": "1",
            "PIP_NO_BUILD_ISOLATION": "0",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        }
    )
    return env


@pytest.mark.slow
def test_every_lesson_sets_itself_up_on_a_simulated_colab(tmp_path: Path) -> None:
    assert NOTEBOOKS, "no lessons"
    stub = tmp_path / "stub"
    (stub / "google" / "colab").mkdir(parents=True)
    # a regular package that still joins any other `google` package (protobuf, ...) on the path
    (stub / "google" / "__init__.py").write_text("__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n")
    (stub / "google" / "colab" / "__init__.py").write_text(
        '"""Stub of Colab\'s google.colab."""\nfrom . import drive\n'
    )
    (stub / "google" / "colab" / "drive.py").write_text(STUB_DRIVE)
    cells = tmp_path / "cells.json"
    cells.write_text(json.dumps({p.stem: first_cells(p) for p in NOTEBOOKS}))
    (tmp_path / "driver.py").write_text(DRIVER)
    (tmp_path / "content").mkdir()  # Colab's working directory

    python = colab_like_python(tmp_path)
    env = colab_env(tmp_path, python)
    report_file = tmp_path / "report.json"
    done = subprocess.run(
        [str(python), str(tmp_path / "driver.py"), str(stub), str(cells), str(report_file)],
        cwd=tmp_path / "content",
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]

    clone = Path(env["MFJLE_COLAB_DIR"])
    report = json.loads(report_file.read_text())
    assert Path(report["mfjle_lib"]).resolve().is_relative_to(clone.resolve()), report["mfjle_lib"]
    assert (clone / ".git").is_dir() and (clone / "pyproject.toml").is_file()
    assert report["mounted"] == []
    assert sorted(report["printed"]) == [p.stem for p in NOTEBOOKS]
    for name, printed in report["printed"].items():
        lines = printed.splitlines()
        # The default a student gets: the released runs, read from the clone (no training on a fresh VM).
        assert "mode: RELEASED (full-mode runs, results/lessons) | dataset: synthetic | preset: cpu" in lines, (
            name,
            printed,
        )
        runs = [line for line in lines if line.startswith("runs: ")]
        assert len(runs) == 1 and runs[0].startswith(f"runs: {clone / 'runs'} (this session only"), (name, printed)
