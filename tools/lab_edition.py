"""The lab edition of the lessons (`notebooks/lab/`), generated from the instructor edition (`notebooks/`).

`python -m tools.lab_edition` writes one lab notebook per lesson; `--check` writes nothing and exits
1 if a committed lab notebook differs from what it would write (`make house` runs it, and a test).
What changes between the editions, and nothing else:

- cells tagged `solution` are removed (the exercises, tagged `exercise`, stay as they are: blanks);
- in cells tagged `blank` — the pieces of the method a student writes — each region between a
  `# BEGIN SOLUTION` and an `# END SOLUTION` line becomes `raise NotImplementedError("not written
  yet")` at the region's indentation; the grader cell after it (tagged `grader`) then says "not
  written yet" and the lesson goes on with the library's version;
- every output and execution count is cleared;
- the header's Colab badge opens the lab notebook, a markdown cell under the title says which edition
  this is (and names the graders only where the lesson has blanks), relative links climb one folder
  more (`../docs` becomes `../../docs`), and the sentence that points to hidden solutions points to
  the instructor edition.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys

from .notebook_tools import BADGE, NOTEBOOKS_DIR, colab_link, notebook_paths, repository_url

LAB_DIR = NOTEBOOKS_DIR / "lab"
BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
#: What a blank's solution region becomes in the lab edition (the grader reads NotImplementedError as unwritten).
NOT_WRITTEN = 'raise NotImplementedError("not written yet")'
#: The lessons' sentence about hidden solutions, and what the lab edition says instead.
HIDDEN_SOLUTIONS = ", then a hidden solution (click to show it)."
LAB_SOLUTIONS = " (its solution is in the instructor edition)."
EDITION_NOTE = (
    "> **Lab edition.** Write the functions marked *your turn*; the grader cell under each prints ✓ or what "
    "differs, then goes on with the library's version. Solutions and outputs: the instructor edition "
    "(`notebooks/{name}`)."
)
#: The note of a lesson without graded blanks: nothing to say about graders (and fewer words to read).
EDITION_NOTE_NO_BLANKS = (
    "> **Lab edition.** The exercises are yours; their solutions, and every output, are in the instructor edition "
    "(`notebooks/{name}`)."
)


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def blank_out(source: str) -> str:
    """A blank cell's source with each solution region replaced by `NOT_WRITTEN` at its indentation."""
    out, inside, regions = [], False, 0
    for line in source.splitlines(keepends=True):
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise ValueError(f"nested {BEGIN!r}")
            inside, regions = True, regions + 1
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}{NOT_WRITTEN}\n")
        elif stripped == END:
            if not inside:
                raise ValueError(f"{END!r} without {BEGIN!r}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{BEGIN!r} without {END!r}")
    if not regions:
        raise ValueError(f"a cell tagged 'blank' has no {BEGIN!r} ... {END!r} region")
    return "".join(out)


def _note_cell(name: str, graded: bool) -> dict:
    """The edition note, a markdown cell of its own under the title cell (graders named only where there are any)."""
    note = EDITION_NOTE if graded else EDITION_NOTE_NO_BLANKS
    return {"cell_type": "markdown", "metadata": {"tags": ["edition-note"]}, "source": [note.format(name=name)]}


def lab_notebook(nb: dict, name: str, url: str) -> dict:
    """The lab edition of one instructor notebook (nbformat JSON as a dict); the input is left unchanged."""
    lab = copy.deepcopy(nb)
    cells = []
    for cell in lab["cells"]:
        tags = _tags(cell)
        if "solution" in tags:
            continue
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
            if "blank" in tags:
                cell["source"] = blank_out(_source(cell)).splitlines(keepends=True)
        else:
            text = re.sub(r"\]\(\.\./", "](../../", _source(cell))
            text = text.replace(HIDDEN_SOLUTIONS, LAB_SOLUTIONS)
            cell["source"] = text.splitlines(keepends=True)
        cell.get("metadata", {}).pop("execution", None)
        cells.append(cell)
    first = next(i for i, c in enumerate(cells) if c["cell_type"] == "markdown")
    title = BADGE.sub(f"({colab_link(url, f'lab/{name}')})", _source(cells[first]))
    cells[first]["source"] = title.splitlines(keepends=True)
    cells.insert(first + 1, _note_cell(name, any("blank" in _tags(c) for c in cells)))
    lab["cells"] = cells
    lab.get("metadata", {}).pop("widgets", None)  # saved widget state is an output too
    return lab


def render(nb: dict) -> str:
    """The file text, as `notebook_tools.write_notebook` saves it."""
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def build(check: bool = False) -> list[str]:
    """Write (or with check=True only compare) every lab notebook; returns the names that differ(ed)."""
    url = repository_url()
    wanted = {}
    for path in notebook_paths():
        nb = json.loads(path.read_text(encoding="utf-8"))
        wanted[path.name] = render(lab_notebook(nb, path.name, url))
    stale = sorted(
        name
        for name, text in wanted.items()
        if not (LAB_DIR / name).is_file() or (LAB_DIR / name).read_text(encoding="utf-8") != text
    )
    extra = sorted(p.name for p in LAB_DIR.glob("*.ipynb") if p.name not in wanted) if LAB_DIR.is_dir() else []
    if not check:
        LAB_DIR.mkdir(exist_ok=True)
        for name in stale:
            (LAB_DIR / name).write_text(wanted[name], encoding="utf-8")
        for name in extra:
            (LAB_DIR / name).unlink()
    return stale + extra


def main(argv: list[str] | None = None) -> int:
    """CLI: write notebooks/lab/ from notebooks/, or with --check say which lab notebooks are stale."""
    parser = argparse.ArgumentParser(prog="python -m tools.lab_edition", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a lab notebook is stale")
    args = parser.parse_args(argv)
    changed = build(check=args.check)
    if args.check:
        if changed:
            print(
                "stale lab notebooks (run `python -m tools.lab_edition`): " + ", ".join(changed),
                file=sys.stderr,
            )
            return 1
        print("lab edition current")
        return 0
    print("lab notebooks written: " + (", ".join(changed) if changed else "none changed"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
