"""Each lesson fits a lab: a prose budget per lesson, per markdown cell and per solution, and a time budget.

How words are counted (one rule, so a number here is the number a reader can recount):

* **a word** is a whitespace-separated token (`str.split()`): a formula, a table cell or a code
  span in markdown counts as the words it is written with. Everything in a markdown cell counts —
  headings, tables, fenced code blocks, the generated time sentence and the Colab badge — because
  a student reads (or scrolls past) all of it;
* **a lesson's prose** is the sum over its markdown cells: at most `LESSON_WORDS`, in both editions (the lab
  edition adds a note under each title);
* **one markdown cell**: at most `CELL_WORDS` (a longer explanation is split where a new idea
  starts, or written tighter);
* **a solution's explanation** is what a solution cell (tagged `solution`) says in words, not in
  code: the text of its `#` comments and of its docstrings (a string alone on a line), found with
  `tokenize` and `ast`; at most `SOLUTION_WORDS`. Strings a solution prints are output labels and
  do not count: the lesson's markdown says what the output means.

A lesson's time on the released runs (`notebooks/lesson_times.json`, written by
`python -m tools.notebook_tools execute --record released`) is at most `RELEASED_SECONDS` where measured on an idle
machine; a time marked busy (other work ran, `tools/machine_load.py`) is not comparable and is not held to it.
"""

from __future__ import annotations

import ast
import io
import json
import re
import tokenize
from pathlib import Path

import pytest

from tools import notebook_tools

NOTEBOOKS = sorted(notebook_tools.NOTEBOOKS_DIR.glob("*.ipynb"))
#: Both editions: the lab edition's note under each title is prose a student reads too.
BOTH_EDITIONS = NOTEBOOKS + sorted((notebook_tools.NOTEBOOKS_DIR / "lab").glob("*.ipynb"))

LESSON_WORDS = 2500
CELL_WORDS = 250
SOLUTION_WORDS = 150
RELEASED_SECONDS = 300


def words(text: str) -> int:
    """Whitespace-separated tokens."""
    return len(text.split())


def explanation_words(source: str) -> int:
    """Words in a code cell's `#` comments and docstrings (IPython `%`/`!` lines are skipped)."""
    source = re.sub(r"(?m)^(\s*)[%!].*$", r"\1pass", source)
    comments = sum(
        words(tok.string.lstrip("#"))
        for tok in tokenize.generate_tokens(io.StringIO(source).readline)
        if tok.type == tokenize.COMMENT
    )
    docstrings = sum(
        words(node.value.value)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
    )
    return comments + docstrings


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _src(cell: dict) -> str:
    return "".join(cell["source"])


def test_the_counting_rule() -> None:
    assert words("**Why.** A face, $p \\ge 0.5$ |---|") == 7
    source = 'def f():\n    """Two words."""\n    return 1  # three more words\nprint("labels do not count")\n%time f()'
    assert explanation_words(source) == 5


def _edition_id(path: Path) -> str:
    return f"lab/{path.name}" if path.parent.name == "lab" else path.name


@pytest.mark.parametrize("path", BOTH_EDITIONS, ids=_edition_id)
def test_a_lesson_has_at_most_its_budget_of_prose(path: Path) -> None:
    total = sum(words(_src(c)) for c in _cells(path) if c["cell_type"] == "markdown")
    assert total <= LESSON_WORDS, f"{path.name}: {total} words of markdown (budget {LESSON_WORDS}): write tighter"


@pytest.mark.parametrize("path", BOTH_EDITIONS, ids=_edition_id)
def test_no_markdown_cell_is_over_its_budget(path: Path) -> None:
    long = {i: words(_src(c)) for i, c in enumerate(_cells(path)) if c["cell_type"] == "markdown"}
    long = {i: n for i, n in long.items() if n > CELL_WORDS}
    assert not long, f"{path.name}: markdown cells over {CELL_WORDS} words (cell index: words): {long}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_solution_explains_in_few_words(path: Path) -> None:
    cells = _cells(path)
    long = {
        i: explanation_words(_src(c))
        for i, c in enumerate(cells)
        if c["cell_type"] == "code" and "solution" in c.get("metadata", {}).get("tags", [])
    }
    long = {i: n for i, n in long.items() if n > SOLUTION_WORDS}
    assert not long, f"{path.name}: solutions explaining in over {SOLUTION_WORDS} words (cell index: words): {long}"


def test_each_lesson_runs_in_a_lab_on_the_released_runs() -> None:
    table = json.loads((notebook_tools.NOTEBOOKS_DIR / "lesson_times.json").read_text(encoding="utf-8"))["lessons"]
    idle = {name: t for name, t in table.items() if not (t.get("released_load") or {}).get("busy")}
    slow = {name: t["released"] for name, t in idle.items() if (t.get("released") or 0) > RELEASED_SECONDS}
    assert not slow, f"lessons over {RELEASED_SECONDS} s on the released runs: {slow}"
    assert {p.stem for p in NOTEBOOKS} <= set(table), "a lesson without a row in lesson_times.json"
