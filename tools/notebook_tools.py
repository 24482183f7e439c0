"""Notebook tools: `execute` re-runs lessons in place (`make notebooks`); `execute-tagged` only their cells
tagged `artefacts` (which read committed results, e.g. the real-face study); `sync` writes the Colab setup;
`fast-times` records each lesson's FAST time from an nbval JUnit report (`make nbtimes`); `release` writes
the released runs (`tools/release.py`) from finished full runs (`make retrain`).

`sync` rewrites, in every lesson (or those named), the cells and metadata that must be identical
everywhere, from the one place the repository URL lives — `[project.urls] Repository` in
pyproject.toml. A fork changes that URL and runs `python -m tools.notebook_tools sync`.
What it writes: the setup cell (tagged `setup`: clone + install on Colab, a no-op locally; the
environment variable MFJLE_REPO overrides the URL, MFJLE_COLAB_DIR the clone's folder, /content/mfjle), the parameters
cell (tagged `parameters`: RUNS and DRIVE as Colab form fields, the environment wins) and the markdown note right
before it (`PARAMETERS_NOTE`; lesson 00, section 6 explains the modes once), the header's time sentence (from
`notebooks/lesson_times.json`), the "Open in Colab" badge's link, and the metadata that asks Colab for a GPU runtime;
cells without an id (nbformat 4.5) get one. `check` lists what `sync` would change (tests/test_notebooks_static.py
runs it).
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
import time
import uuid
from pathlib import Path

from mfjle_lib.course.released import RELEASE_DIR
from mfjle_lib.paths import REPO_DIR, runs_dir

from .machine_load import BUSY_LOAD, busy_warning, idle_refusal, load_average, load_record, settle
from .release import collect
from .timing import finished_runs, junit_notebook_seconds, record_estimate, record_time, with_time_line

NOTEBOOKS_DIR = REPO_DIR / "notebooks"

SETUP_TEMPLATE = """\
# Setup (lesson 00, section 5): on Colab, clone and install the course; locally a no-op.
import importlib.util, os, subprocess, sys
if "google.colab" in sys.modules and importlib.util.find_spec("mfjle_lib") is None:
    COURSE_DIR = os.environ.get("MFJLE_COLAB_DIR", "/content/mfjle")
    if not os.path.isdir(COURSE_DIR):
        subprocess.run(["git", "clone", "-q", "--depth", "1", os.environ.get("MFJLE_REPO", "{url}"), COURSE_DIR], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", COURSE_DIR], check=True)
    sys.path.insert(0, COURSE_DIR)
    importlib.invalidate_caches()
elif importlib.util.find_spec("mfjle_lib") is None:
    raise ImportError("mfjle_lib is not installed: run `make lab` from the repository root")"""  # noqa: E501 (a lesson's cell, as it reads)

PARAMETERS_TEMPLATE = """\
import os
RUNS = "released"  #@param ["released", "fast", "full"]
DRIVE = False  #@param {type:"boolean"}
if DRIVE:  # lesson 00, section 6: what RUNS and DRIVE do; MFJLE_* in the environment win over the form
    os.environ["MFJLE_DRIVE"] = "1"
DATASET = os.environ.get("MFJLE_DATASET", "synthetic")
ROOT = os.environ.get("MFJLE_ROOT") or None
CHECKPOINT = os.environ.get("MFJLE_CHECKPOINT") or None"""

#: The markdown cell right before the parameters cell, the same in every lesson: lesson 00, section 6 says the rest.
PARAMETERS_NOTE = (
    "**Parameters** (a form on Colab). `RUNS`: `released` reads the runs committed with the course, `fast` trains "
    "tiny ones, `full` retrains them; `DRIVE` keeps runs on Google Drive. Lesson 00, section 6 explains both; the "
    "mode line below names the runs whose numbers you see."
)

BADGE = re.compile(r"\(https://colab\.research\.google\.com/github/[^)\s]*\)")

#: Notebook metadata Colab reads: a GPU runtime (T4, the free one) and a table of contents.
COLAB_METADATA = {"accelerator": "GPU", "colab": {"provenance": [], "gpuType": "T4", "toc_visible": True}}


def repository_url(pyproject: Path | None = None) -> str:
    """`[project.urls] Repository` from pyproject.toml (the one place it is written)."""
    path = pyproject or REPO_DIR / "pyproject.toml"  # a tool for the checkout: Colab's copy never runs it
    section = re.search(r"^\[project\.urls\]\s*$(.*?)(?=^\[|\Z)", path.read_text(encoding="utf-8"), re.M | re.S)
    found = section and re.search(r'^Repository\s*=\s*"([^"]+)"', section.group(1), re.M)
    if not found:
        raise ValueError(f'{path}: no `Repository = "..."` under [project.urls]')
    return found.group(1).rstrip("/")


def setup_source(url: str) -> str:
    """The setup cell every lesson starts with, for one repository URL."""
    return SETUP_TEMPLATE.replace("{url}", url)


def colab_link(url: str, notebook: str, branch: str = "main") -> str:
    """The "Open in Colab" address of a lesson on GitHub."""
    slug = re.sub(r"^https?://github\.com/", "", url).removesuffix(".git")
    return f"https://colab.research.google.com/github/{slug}/blob/{branch}/notebooks/{notebook}"


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _set_source(cell: dict, text: str) -> None:
    lines = text.splitlines(keepends=True)
    cell["source"] = lines


def _tagged(cell: dict, tag: str) -> bool:
    return tag in cell.get("metadata", {}).get("tags", [])


def _setup_cell(nb: dict) -> dict | None:
    """The cell tagged `setup`, else the first code cell that mentions google.colab."""
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    return next((c for c in code if _tagged(c, "setup")), None) or next(
        (c for c in code if "google.colab" in _source(c)), None
    )


def sync_notebook(nb: dict, name: str, url: str) -> list[str]:
    """Bring one notebook (nbformat JSON as a dict) in line with the templates; returns what changed."""
    changes = []
    setup = _setup_cell(nb)
    if setup is None:
        changes.append("setup cell added")
        setup = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": []}
        nb["cells"].insert(1, setup)
    if _source(setup) != setup_source(url) or not _tagged(setup, "setup"):
        changes.append("setup cell")
        _set_source(setup, setup_source(url))
        setup["outputs"], setup["execution_count"] = [], None
        tags = setup.setdefault("metadata", {}).setdefault("tags", [])
        if "setup" not in tags:
            tags.append("setup")
    params = next((c for c in nb["cells"] if c["cell_type"] == "code" and _tagged(c, "parameters")), None)
    if params is None:
        changes.append("no parameters cell (not added: place one after the setup cell)")
    else:
        if _source(params) != PARAMETERS_TEMPLATE:
            changes.append("parameters cell")
            _set_source(params, PARAMETERS_TEMPLATE)
            params["outputs"], params["execution_count"] = [], None
            params["metadata"]["cellView"] = "form"
        at = nb["cells"].index(params)
        note = nb["cells"][at - 1] if at > 0 and nb["cells"][at - 1]["cell_type"] == "markdown" else None
        if note is None:
            changes.append("parameters note added")
            note = {"cell_type": "markdown", "metadata": {}, "source": []}
            nb["cells"].insert(at, note)
        if _source(note) != PARAMETERS_NOTE:
            changes.append("parameters note")
            _set_source(note, PARAMETERS_NOTE)
    header = next((c for c in nb["cells"] if c["cell_type"] == "markdown"), None)
    timed = with_time_line(_source(header), name) if header is not None else None
    if header is not None and _source(header) != timed:
        changes.append("time line")  # the header's time sentence comes from lesson_times.json, never retyped
        _set_source(header, timed)
    link = f"({colab_link(url, name)})"
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown" and BADGE.search(_source(cell)):
            new = BADGE.sub(link, _source(cell))
            if new != _source(cell):
                changes.append("Colab badge")
                _set_source(cell, new)
    missing = [c for c in nb["cells"] if not c.get("id")]
    if missing and (nb.get("nbformat", 4), nb.get("nbformat_minor", 0)) >= (4, 5):  # nbformat 4.5 requires cell ids
        for cell in missing:
            cell["id"] = uuid.uuid4().hex[:8]
        changes.append(f"{len(missing)} cell id(s)")
    meta = nb.setdefault("metadata", {})
    colab = meta.setdefault("colab", {})
    for key, value in COLAB_METADATA["colab"].items():
        if key not in colab or (key == "gpuType" and colab[key] != value):
            colab[key] = value
            changes.append(f"metadata colab.{key}")
    if meta.get("accelerator") != "GPU":
        meta["accelerator"] = "GPU"
        changes.append("metadata accelerator")
    return changes


def notebook_paths(names: list[Path] | None = None) -> list[Path]:
    """The lessons named, else every `notebooks/*.ipynb`."""
    return list(names) if names else sorted(NOTEBOOKS_DIR.glob("*.ipynb"))


def write_notebook(path: Path, nb: dict) -> None:
    """Save as Jupyter does (indent 1, UTF-8 kept), so a sync changes only what it must."""
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def sync(paths: list[Path] | None = None, url: str | None = None, write: bool = True) -> dict[str, list[str]]:
    """Sync (or with write=False only check) lessons against the templates; {notebook: changes}."""
    url = url or repository_url()
    report = {}
    for path in notebook_paths(paths):
        nb = json.loads(path.read_text(encoding="utf-8"))
        changes = sync_notebook(nb, path.name, url)
        if changes and write:
            write_notebook(path, nb)
        report[path.name] = changes
    return report


def execute_notebook(path: Path, timeout: int = 900) -> float:
    """Run every cell of one notebook in place and save its outputs; returns seconds taken."""
    # lazy: optional extra `dev` (nbformat, nbclient); the course imports this module without them
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    t0 = time.time()
    # store_widget_state (nbclient's default, stated here because lesson 08 needs it): widgets shown by a cell are
    # saved in the notebook's metadata, so a trusted front end draws them from the file without a kernel.
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        store_widget_state=True,
    )
    client.execute()
    drop_unused_widget_state(nb)
    nbformat.write(nb, path)
    return time.time() - t0


#: Tag of cells that only read committed artefacts (e.g. `results/jaffe`): their outputs are the same in every
#: mode, so `execute-tagged` can refresh them alone when the artefacts change, without retraining the lesson.
ARTEFACT_TAG = "artefacts"


def execute_tagged(path: Path, tag: str = ARTEFACT_TAG, timeout: int = 900) -> int:
    """Run only the cells tagged `tag`, in order, in a fresh kernel; write their outputs back; returns how many ran.

    Every other cell keeps the outputs of the lesson's last full run. Tagged cells must import what
    they use and read nothing a lesson's earlier cells compute.
    """
    import nbformat  # lazy: optional extra `dev`, as in execute_notebook
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    picked = [
        i for i, c in enumerate(nb.cells) if c.cell_type == "code" and tag in c.get("metadata", {}).get("tags", [])
    ]
    if not picked:
        return 0
    sub = copy.deepcopy(nb)
    sub.cells = [copy.deepcopy(nb.cells[i]) for i in picked]
    NotebookClient(
        sub, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    # Numbered after the lesson's last count: they ran later, in their own kernel (and nbval refuses an
    # unnumbered cell with outputs).
    last = max(
        (c.get("execution_count") or 0 for i, c in enumerate(nb.cells) if c.cell_type == "code" and i not in picked),
        default=0,
    )
    for k, (i, cell) in enumerate(zip(picked, sub.cells), start=1):
        nb.cells[i].outputs = cell.outputs
        nb.cells[i].execution_count = last + k
    drop_unused_widget_state(nb)
    nbformat.write(nb, path)
    return len(picked)


def drop_unused_widget_state(nb) -> None:
    """Remove saved widget state when no output shows a widget (closed progress bars leave ~70 KB)."""
    shown = any(
        "application/vnd.jupyter.widget-view+json" in out.get("data", {})
        for cell in nb.cells
        for out in cell.get("outputs", [])
    )
    if not shown:
        nb.metadata.pop("widgets", None)


def _sync_time_lines(paths: list[Path]) -> None:
    """After a time was recorded: sync those lessons, so their header time lines read the new table."""
    existing = [p for p in paths if p.is_file()]
    if existing:
        sync(existing)


def main(argv: list[str] | None = None) -> int:
    """CLI: `python -m tools.notebook_tools {execute NB... | execute-tagged NB... | sync [NB...] | check [NB...] |
    fast-times XML | estimate-full NB RUN... | release RUNS}`."""
    parser = argparse.ArgumentParser(prog="python -m tools.notebook_tools")
    parser.add_argument(
        "action", choices=["execute", "execute-tagged", "sync", "check", "fast-times", "estimate-full", "release"]
    )
    parser.add_argument(
        "notebooks",
        nargs="*",
        type=Path,
        help="default for sync/check: every notebooks/*.ipynb; fast-times: the JUnit XML; estimate-full: the lesson, "
        "then the finished runs its full mode trains (e.g. results/lessons/<run>)",
    )
    parser.add_argument("--timeout", type=int, default=900)
    parser.add_argument(
        "--record",
        choices=["released", "fast", "full_cpu", "colab_gpu"],
        default=None,
        help="execute: also write each lesson's seconds and the load average before/after it (busy ones flagged) "
        "into notebooks/lesson_times.json under this key",
    )
    parser.add_argument("--note", default="", help="release: how the runs were trained, kept in RELEASE.json")
    parser.add_argument(
        "--add", action="store_true", help="release: keep the runs already released, add these beside them"
    )
    parser.add_argument(
        "--require-idle",
        action="store_true",
        help=f"execute: stop (exit 2) instead of timing a lesson on a busy machine (1-minute load >= {BUSY_LOAD})",
    )
    args = parser.parse_intermixed_args(argv)  # options may come before the notebooks
    if args.action in ("sync", "check"):
        report = sync(args.notebooks or None, write=args.action == "sync")
        for name, changes in report.items():
            print(f"{name}: {', '.join(changes) if changes else 'in sync'}")
        return 1 if args.action == "check" and any(report.values()) else 0
    if args.action == "fast-times":
        if len(args.notebooks) != 1:
            parser.error("fast-times needs the JUnit XML that `pytest --nbval-lax --junitxml=FILE notebooks` wrote")
        for name, seconds in junit_notebook_seconds(args.notebooks[0]).items():
            print(f"{name}: {seconds:.0f}s")
            record_time(NOTEBOOKS_DIR / f"{name}.ipynb", args.record or "fast", seconds)
        _sync_time_lines([NOTEBOOKS_DIR / f"{name}.ipynb" for name in junit_notebook_seconds(args.notebooks[0])])
        return 0
    if args.action == "estimate-full":  # a lesson's full CPU time from the training time of the runs it trains
        if len(args.notebooks) < 2:
            parser.error("estimate-full needs the lesson, then the run folders its full mode trains")
        seconds = record_estimate(args.notebooks[0], args.notebooks[1:])
        print(f"{args.notebooks[0].stem}: full ≈ {seconds / 60:.0f} min on 2 CPU cores (estimate)")
        _sync_time_lines([args.notebooks[0]])
        return 0
    if args.action == "release":  # finished full runs -> results/lessons (tools/release.py)
        if len(args.notebooks) != 1:
            parser.error("release needs the folder of finished full runs, e.g. runs/full_synthetic")
        manifest = collect(
            args.notebooks[0],
            command="python -m tools.notebook_tools release " + str(args.notebooks[0]),
            note=args.note,
            add=args.add,
        )
        print(f"released {len(manifest['runs'])} runs into {RELEASE_DIR} ({manifest['total_bytes'] / 1e6:.1f} MB)")
        return 0
    if not args.notebooks:
        parser.error("execute needs at least one notebook")
    if args.action == "execute-tagged":  # only the cells that read committed artefacts
        for nb in args.notebooks:
            print(
                f"{nb}: {execute_tagged(nb, timeout=args.timeout)} cell(s) tagged '{ARTEFACT_TAG}' re-run", flush=True
            )
        return 0
    for nb in args.notebooks:
        before = settle() if args.record or args.require_idle else None  # the previous lesson's own load decays first
        if args.require_idle and idle_refusal(before, str(nb)):
            print(idle_refusal(before, str(nb)), file=sys.stderr)
            return 2
        if args.record and busy_warning(before, str(nb)):
            print(busy_warning(before, str(nb)), flush=True)
        started = time.time()
        seconds = execute_notebook(nb, args.timeout)
        print(f"{nb}: {seconds:.0f}s", flush=True)
        if args.record:
            record_time(
                nb,
                args.record,
                seconds,
                runs=finished_runs(runs_dir(), started),
                load=load_record(before, load_average()),
            )
            _sync_time_lines([nb])
    return 0


if __name__ == "__main__":
    sys.exit(main())
