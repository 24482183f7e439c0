"""The solution rule: a hidden solution never clobbers the student's variables and never trains.

Every cell tagged `exercise` is followed by a cell tagged `solution` whose source is hidden
(`metadata.jupyter.source_hidden`) and starts with `# Solution`. Read with `ast`, a solution:

* **binds no module-level name** unless it starts with `sol_` or `_`. Bindings are assignments
  (plain, annotated, augmented, walrus), `for` and `with ... as` targets, `except ... as`, `del`,
  `def` and `class`, and imports. Names bound inside a function, a lambda or a comprehension are
  local and free. **Imports**: `import x as _x` / `from m import y as _y` always pass; a plain
  `import x` or `from m import y` passes only if an earlier non-solution cell of the same notebook
  made exactly the same import (same module, same name, same binding), because then it rebinds the
  name to the object it already held. Any other import would overwrite a student's `x` or `y`.
* **mutates no lesson object**: an item or attribute assignment (`d["col"] = ...`, `obj.x = ...`)
  must start from a name the solution itself bound (`sol_d["col"] = ...`).
* **calls no training function**: `train`, `train_cached`, `train_seeds` (by any path) or any
  `ablations.train_*`. A solution reads what the lesson computed or a run saved; it never trains.

And **no cell after a solution reads a name the solution bound** (a cell that binds the name itself
before reading it does not count): the lesson must run the same whether or not the solutions ran.

`test_a_student_keeps_her_variables` runs a whole lesson with the exercise cells filled in by a
"student" who picks the names the solutions use (without their prefix) and checks they survive.
The `ast` reader is tests/solution_rule.py.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from solution_rule import cell_source, cell_tags, scan, solution_problems

from tools import notebook_tools

NOTEBOOKS = sorted(notebook_tools.NOTEBOOKS_DIR.glob("*.ipynb"))


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_solutions_follow_the_rule(path: Path) -> None:
    problems = solution_problems(_cells(path))
    assert not problems, f"{path.name}:\n  " + "\n  ".join(problems)


def _cell(source: str, tags: tuple[str, ...] = (), hidden: bool = False) -> dict:
    meta: dict = {"tags": list(tags)}
    if hidden:
        meta["jupyter"] = {"source_hidden": True}
    return {"cell_type": "code", "metadata": meta, "source": source}


def test_the_rule_catches_what_it_should() -> None:
    ok = [
        _cell("import numpy as np\nx = 1"),
        _cell("# your code here", ("exercise",)),
        _cell(
            "# Solution 1\nimport numpy as np\nimport pandas as _pd\nsol_y = [k for k in range(3)]\n"
            "def _f(a):\n    b = a\n    return b\nfor _i in range(2):\n    sol_y.append(_i)\nsol_y[0] = x",
            ("solution",),
            hidden=True,
        ),
        _cell("print(x)"),
    ]
    assert solution_problems(ok) == []
    bad = [
        _cell("d = {}\nx = 1"),
        _cell("# your code here", ("exercise",)),
        _cell(
            "import json\nfrom mfjle_lib.course import train_cached\nfor k in range(2):\n    pass\nd['a'] = 1\n"
            "with open('f') as fh:\n    pass\nsol_run = train_cached(P, cfg)\nablations.train_seeds(P, data)",
            ("solution",),
            hidden=True,
        ),
        _cell("print(sol_run, k)"),
        _cell("# your code here", ("exercise",)),
    ]
    found = "\n".join(solution_problems(bad))
    for expected in (
        "does not start with '# Solution'",
        "'fh'",
        "'json'",
        "'k'",
        "'train_cached'",
        "mutates lesson objects ['d']",
        "trains (train_cached, ablations.train_seeds)",
        "cell 3 reads ['k', 'sol_run']",
        "cell 4: exercise not followed",
    ):
        assert expected in found, (expected, found)


#: The lesson the execution test runs: the cheapest in FAST mode that needs no trained run.
STUDENT_LESSON = notebook_tools.NOTEBOOKS_DIR / "00_start_here.ipynb"


def _student_names(cells: list[dict]) -> list[str]:
    """Names a student might pick: the solutions' own names without their prefix, plus a few obvious ones.

    Left out are names the lesson's own cells use and names a solution reads without binding them (a
    student who overwrites those breaks the lesson herself; that is not what this test is about)."""
    solutions = [scan(cell_source(c)) for c in cells if c["cell_type"] == "code" and "solution" in cell_tags(c)]
    lesson = [scan(cell_source(c)) for c in cells if c["cell_type"] == "code" and "solution" not in cell_tags(c)]
    wanted = {re.sub(r"^(sol_|_)", "", n) for s in solutions for n in s.bound} | {
        "table",
        "val",
        "answer",
        "result",
        "ratio",
    }
    taken = set().union(*(s.read | s.bound for s in lesson), *(s.read - s.bound for s in solutions))
    return sorted(n for n in wanted if n.isidentifier() and n not in taken)


@pytest.mark.slow  # starts a Jupyter kernel and runs a whole lesson in FAST mode (about a minute on 2 busy cores)
def test_a_student_keeps_her_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(STUDENT_LESSON, as_version=4)
    names = _student_names(nb.cells)
    assert len(names) >= 5, names
    for cell in nb.cells:
        if "exercise" in cell.metadata.get("tags", []):
            cell.source += "\n" + "\n".join(f"{n} = 'mine: {n}'" for n in names)
    nb.cells.append(
        nbformat.v4.new_code_cell(
            f"import json as _json\nprint(_json.dumps({{n: repr(globals().get(n)) for n in {names!r}}}))"
        )
    )
    monkeypatch.setenv("MFJLE_FAST", "1")
    monkeypatch.setenv("MFJLE_NO_PROGRESS", "1")
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(notebook_tools.REPO_DIR), os.environ.get("PYTHONPATH")]))
    )
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(STUDENT_LESSON.parent)}}
    ).execute()
    printed = json.loads(nb.cells[-1].outputs[0]["text"])
    clobbered = {n: value for n, value in printed.items() if value != repr(f"mine: {n}")}
    assert not clobbered, f"the solutions overwrote the student's {clobbered}"
