"""The lessons as files, without running them: Colab setup, GPU metadata, mode-independent checked outputs, exercises,
pointers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tools import notebook_tools, timing
from tools.notebook_tools import PARAMETERS_NOTE, PARAMETERS_TEMPLATE, repository_url, setup_source, sync

NOTEBOOKS = sorted(notebook_tools.NOTEBOOKS_DIR.glob("*.ipynb"))
REPO = notebook_tools.REPO_DIR


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _src(cell: dict) -> str:
    return "".join(cell["source"])


def _tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def test_there_are_lessons() -> None:
    assert len(NOTEBOOKS) >= 8


def test_repository_url_comes_from_pyproject(tmp_path: Path) -> None:
    assert repository_url().startswith("https://github.com/")
    fork = tmp_path / "pyproject.toml"
    fork.write_text(
        '[project]\nname = "x"\n\n[project.urls]\nRepository = "https://github.com/me/fork/"\n\n[tool.x]\na = 1\n'
    )
    assert repository_url(fork) == "https://github.com/me/fork"
    assert "https://github.com/me/fork" in setup_source(repository_url(fork))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_setup_parameters_badge_and_gpu_metadata_are_in_sync(path: Path) -> None:
    """`python -m tools.notebook_tools sync` would change nothing."""
    assert sync([path], write=False)[path.name] == []
    nb = _load(path)
    setup = [c for c in nb["cells"] if "setup" in _tags(c)]
    assert len(setup) == 1 and _src(setup[0]) == setup_source(repository_url())
    params = [c for c in nb["cells"] if "parameters" in _tags(c)]
    assert len(params) == 1 and _src(params[0]) == PARAMETERS_TEMPLATE
    assert nb["cells"].index(setup[0]) < nb["cells"].index(params[0])
    note = nb["cells"][nb["cells"].index(params[0]) - 1]
    assert note["cell_type"] == "markdown" and _src(note) == PARAMETERS_NOTE
    assert nb["metadata"]["accelerator"] == "GPU"
    assert nb["metadata"]["colab"].get("gpuType")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_checked_output_depends_on_the_mode(path: Path) -> None:
    """Committed outputs come from full runs, nbval runs FAST: the mode line is never output-checked."""
    for cell in _load(path)["cells"]:
        if cell["cell_type"] == "code" and "NBVAL_CHECK_OUTPUT" in _src(cell):
            assert "lesson_setup(" not in _src(cell), _src(cell)[:200]
            assert not re.search(r"\bFAST\b|\bP\.fast\b|mode_line", _src(cell)), _src(cell)[:200]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_each_hidden_solution_follows_an_exercise_cell(path: Path) -> None:
    cells = _load(path)["cells"]
    for i, cell in enumerate(cells):
        if "solution" in _tags(cell):
            assert cell["metadata"].get("jupyter", {}).get("source_hidden") is True, (
                f"cell {i}: solution source not hidden"
            )
            before = cells[i - 1]
            assert before["cell_type"] == "code" and "exercise" in _tags(before), (
                f"cell {i}: no exercise cell before the solution"
            )
            assert "# your code here" in _src(before)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_pointers_stay_inside_the_repository(path: Path) -> None:
    """`docs/DESIGN.md §N` only (no bare `DESIGN §`), and no `results/` folder unless it exists."""
    text = "\n".join(_src(c) for c in _load(path)["cells"])
    bare = [m.start() for m in re.finditer(r"DESIGN(?:\.md)? ?§", text) if not text[: m.start()].endswith("docs/")]
    assert not bare, f"bare DESIGN § pointer at {bare}"
    if not (REPO / "results").exists():
        assert not re.search(r"(?<![\w/])results/", text), "points to a results/ folder that is not in the repository"
    for section in re.findall(r"docs/DESIGN\.md §(\d+)", text):
        assert re.search(rf"^## {section}\. ", (REPO / "docs" / "DESIGN.md").read_text(encoding="utf-8"), re.M), section


def test_lesson_times_table_renders() -> None:
    from mfjle_lib.course import lesson_times

    table = lesson_times()
    assert list(table.columns) == [
        "default (released runs), 2 CPU cores",
        "FAST, 2 CPU cores",
        "full, 2 CPU cores",
        "full, Colab T4 GPU",
    ]
    assert {p.stem for p in NOTEBOOKS} <= set(table.index)


def test_colab_without_gpu_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from mfjle_lib.course import lesson

    monkeypatch.setenv("MFJLE_RUNS_DIR", str(tmp_path))
    assert lesson.colab_lines("cpu") == [] or lesson.IS_COLAB  # locally: nothing extra
    monkeypatch.setattr(lesson, "IS_COLAB", True)
    lines = lesson.colab_lines("cpu")
    assert lines[0].startswith("no GPU") and str(tmp_path) in lines[1] and "kept across" in lines[1]
    assert not lesson.colab_lines("cuda")[0].startswith("no GPU")


@pytest.mark.slow  # starts a Jupyter kernel
def test_execute_tagged_runs_only_the_tagged_cells_and_keeps_the_rest(tmp_path) -> None:
    import nbformat

    from tools.notebook_tools import execute_tagged

    nb = nbformat.v4.new_notebook()
    kept = nbformat.v4.new_code_cell("x = 1/0  # never run by execute_tagged", execution_count=7)
    kept.outputs = [nbformat.v4.new_output("stream", name="stdout", text="from the full run\n")]
    tagged = nbformat.v4.new_code_cell("print('fresh')", metadata={"tags": ["artefacts"]})
    nb.cells = [kept, tagged]
    path = tmp_path / "lesson.ipynb"
    nbformat.write(nb, path)
    assert execute_tagged(path) == 1
    out = nbformat.read(path, as_version=4)
    assert out.cells[0].outputs[0]["text"] == "from the full run\n" and out.cells[0].execution_count == 7
    assert out.cells[1].outputs[0]["text"] == "fresh\n" and out.cells[1].execution_count == 8


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_header_time_line_is_generated_from_the_table(path: Path) -> None:
    """Every lesson's header says its times between the markers, and a retyped number there is rewritten by sync."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    header = "".join(nb["cells"][0]["source"])
    assert timing.TIME_START in header and timing.TIME_END in header
    assert timing.lesson_time_line(path.stem) in header
    nb["cells"][0]["source"] = header.replace("on 2 CPU cores", "on 3 CPU cores", 1)
    assert "time line" in notebook_tools.sync_notebook(nb, path.name, notebook_tools.repository_url())
    assert "".join(nb["cells"][0]["source"]) == header


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
#: What a saved widget output may carry besides the view: anything a front end without the live widget can draw.
STATIC_RENDERINGS = {"text/html", "image/png", "image/svg+xml", "text/markdown"}


@pytest.mark.parametrize(
    "path",
    sorted(p for p in notebook_tools.NOTEBOOKS_DIR.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts),
    ids=lambda p: str(p.relative_to(notebook_tools.NOTEBOOKS_DIR)),
)
def test_a_saved_widget_shows_a_picture_not_its_repr(path: Path) -> None:
    """A widget output also carries a static rendering, and its state is saved: never `interactive(children=...`.

    GitHub and a lesson opened but not yet run (untrusted: JupyterLab then draws only safe types) skip
    the widget view; with text/plain as its only other type they showed the widget's Python repr.
    """
    nb = _load(path)
    saved = nb["metadata"].get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    for i, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if WIDGET_VIEW not in data:
                continue
            assert STATIC_RENDERINGS & set(data), f"cell {i}: a widget saved with only {sorted(data)} (its repr)"
            assert not re.match(r"\w+\(children=", "".join(data.get("text/plain", ""))), f"cell {i}: repr as text"
            assert data[WIDGET_VIEW]["model_id"] in saved, f"cell {i}: widget state not saved in the notebook"
