"""The import graph of `mfjle_lib`, read with `ast` (nothing is imported, so no torch), and the house rules it must
keep.

Used by `make_module_map.py` (the picture, MODULES.md's module table and command list) and by its
`--check`, which `make check` runs: imports flow one way between parts, no cycles, and MODULES.md's
generated blocks match the code. Python files over `LONG_FILE` lines are listed as a smell, not a failure.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mfjle_lib"
DOCS = ROOT / "docs"

#: Parts in dependency order: a part may import only parts to its left.
PARTS = (
    "foundation",
    "method",
    "data",
    "faces",
    "models",
    "evaluation",
    "perf",
    "training",
    "inference",
    "experiments",
    "course",
    "cli",
)
# : Past this many lines a Python file of the repository is listed as a smell (one concept may take this many; split
# by concept).
LONG_FILE = 400
#: Top-level modules that only re-export a part's names under an older import path (DESIGN.md §4),
#: filled in by `read_graph`; they belong to no part and break no rule.
SHIMS: dict[str, str] = {}
TABLE_START, TABLE_END = "<!-- module-table:start -->", "<!-- module-table:end -->"
COMMANDS_START, COMMANDS_END = "<!-- commands:start -->", "<!-- commands:end -->"
#: The file whose `add_parser` calls define the CLI's subcommands.
PARSER = PACKAGE / "cli" / "parser.py"


def module_name(path: Path) -> str:
    """Dotted module name of a file under the package: mfjle_lib/method/crops.py -> mfjle_lib.method.crops."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def part_of(name: str) -> str:
    """The part a module belongs to: the first sub-package, or 'foundation' for top-level files."""
    if name in SHIMS:
        return "re-export"
    pieces = name.split(".")
    if len(pieces) < 2:
        return "foundation"
    if (PACKAGE / pieces[1]).is_dir():
        return pieces[1]
    return "cli" if pieces[1] == "__main__" else "foundation"


def _type_checking_lines(tree: ast.Module) -> set[int]:
    """Line numbers of the statements under `if TYPE_CHECKING:` blocks."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else test.attr if isinstance(test, ast.Attribute) else ""
            if name == "TYPE_CHECKING":
                for child in node.body:
                    for sub in ast.walk(child):
                        if hasattr(sub, "lineno"):
                            lines.add(sub.lineno)
    return lines


def resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> list[str]:
    """Absolute module names an ImportFrom refers to (the module, or its imported submodules)."""
    if node.level:
        base = importer.split(".") if is_package else importer.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    names = []
    for alias in node.names:  # `from . import crops` imports a submodule
        candidate = f"{target}.{alias.name}"
        if (ROOT / Path(*candidate.split("."))).with_suffix(".py").exists() or (
            ROOT / Path(*candidate.split("."))
        ).is_dir():
            names.append(candidate)
    return names or [target]


def read_graph() -> tuple[dict[str, Path], list[tuple[str, str, str]]]:
    """Modules of the package and their imports of each other: (importer, imported, kind)."""
    modules = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "__pycache__" not in p.parts}
    edges: list[tuple[str, str, str]] = []
    SHIMS.clear()
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if (
            path.parent == PACKAGE
            and path.stem not in ("__init__", "__main__")
            and not any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) for n in tree.body)
        ):
            sources = {
                n.module.split(".")[0] for n in tree.body if isinstance(n, ast.ImportFrom) and n.level == 1 and n.module
            }
            if len(sources) == 1 and (PACKAGE / next(iter(sources))).is_dir():
                SHIMS[name] = next(iter(sources))
        typing_only = _type_checking_lines(tree)
        top_level = {id(n) for n in tree.body}
        top_level |= {id(c) for n in tree.body if isinstance(n, (ast.If, ast.Try)) for c in ast.walk(n)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.split(".")[0] == "mfjle_lib"]
            elif isinstance(node, ast.ImportFrom):
                if not node.level and not (node.module or "").startswith("mfjle_lib"):
                    continue
                targets = resolve(name, path.name == "__init__.py", node)
            else:
                continue
            kind = "typing" if node.lineno in typing_only else "module" if id(node) in top_level else "function"
            for target in targets:
                while target and target not in modules:  # `mfjle_lib.method.crops.cut_crops` -> module
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges.append((name, target, kind))
    return modules, sorted(set(edges))


def docstring_line(path: Path) -> str:
    """First paragraph of a module's docstring, on one line ('' when it has none)."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return " ".join(doc.strip().split("\n\n")[0].split()) if doc.strip() else ""


def cycles(modules: dict[str, Path], edges: list[tuple[str, str, str]]) -> list[list[str]]:
    """Import cycles among modules (strongly connected components of size > 1), runtime imports only."""
    graph = defaultdict(set)
    for a, b, kind in edges:
        if kind != "typing":
            graph[a].add(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in modules:
        if v not in index:
            visit(v)
    return found


def is_empty_package(path: Path) -> bool:
    """True for an `__init__.py` that holds nothing but its docstring."""
    if path.name != "__init__.py":
        return False
    body = ast.parse(path.read_text(encoding="utf-8")).body
    return all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body)


def commands() -> list[tuple[str, str]]:
    """(name, help) of every subcommand, from the `sub.add_parser("name", help=...)` calls of cli/parser.py, in their
    order."""
    found = []
    for node in ast.walk(ast.parse(PARSER.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_parser":
            if node.args and isinstance(node.args[0], ast.Constant):
                helps = [k.value.value for k in node.keywords if k.arg == "help" and isinstance(k.value, ast.Constant)]
                found.append((node.lineno, node.args[0].value, helps[0] if helps else ""))
    return [(name, text) for _, name, text in sorted(found)]


def command_table() -> str:
    """Markdown list of the CLI's subcommands, one line each, as `--help` describes them."""
    return "\n".join(f"- `python -m mfjle_lib {name}`: {text}" for name, text in commands())


def table(modules: dict[str, Path]) -> str:
    """Markdown table: one row per module (part, file, lines, first docstring line)."""
    rows = ["| part | module | lines | what it holds (its docstring's first paragraph) |", "|---|---|---:|---|"]
    rank = {p: i for i, p in enumerate((*PARTS, "re-export"))}
    order = sorted(modules, key=lambda m: (rank[part_of(m)], str(modules[m].relative_to(ROOT))))
    for name in order:
        path = modules[name]
        if is_empty_package(path):
            continue
        n_lines = len(path.read_text(encoding="utf-8").splitlines())
        doc = docstring_line(path).replace("|", "\\|") or "*(no docstring)*"
        rows.append(
            f"| {part_of(name)} | [`{path.relative_to(ROOT)}`](../{path.relative_to(ROOT)}) | {n_lines} | {doc} |"
        )
    return "\n".join(rows)


def long_files() -> dict[str, int]:
    """Python files of the repository over LONG_FILE lines (virtual environments and run folders left out)."""
    skip = {".venv", ".git", "runs", "build", "node_modules", ".ipynb_checkpoints"}
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if skip & set(rel.parts) or any(p.startswith(".") for p in rel.parts[:-1]):
            continue
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > LONG_FILE:
            out[str(rel)] = n
    return out


def upward_imports(edges: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """Imports from a lower part to a higher one (re-export shims excepted)."""
    return sorted(
        {
            (a, b, k)
            for a, b, k in edges
            if a not in SHIMS and b not in SHIMS and PARTS.index(part_of(a)) < PARTS.index(part_of(b))
        }
    )


def _block(markdown: str, start: str, end: str, body: str) -> str:
    """`markdown` with the text between `start` and `end` replaced by `body`; unchanged without the markers."""
    if start not in markdown or end not in markdown:
        return markdown
    head, rest = markdown.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}\n{end}{tail}"


def table_in(markdown: str, modules: dict[str, Path]) -> str:
    """`markdown` with its generated blocks (module table, command list) rewritten from the code."""
    markdown = _block(markdown, TABLE_START, TABLE_END, table(modules))
    return _block(markdown, COMMANDS_START, COMMANDS_END, command_table())
