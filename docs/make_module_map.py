"""Draw the module map of `mfjle_lib` from its import graph, and refresh the table in MODULES.md.

    python docs/make_module_map.py            # writes docs/module_map.png, updates docs/MODULES.md
    python docs/make_module_map.py --check    # also exit 1 if a part imports a part above it

The import graph is read with `ast` (no module is imported, so this runs without torch): every
`import mfjle_lib.x` / `from mfjle_lib.x import y` and every relative import (`from ..x import y`),
at module level, inside functions, or under `if TYPE_CHECKING:`. Modules are grouped into parts
(the first folder under `mfjle_lib/`; the top-level files are the `foundation`). Parts are drawn
left to right in dependency order as boxes listing their modules; an arc above the boxes from
part A to part B means "some module of A imports a module of B" (line width: number of
module-to-module imports). The foundation, which every part uses, is a band under the boxes. Arcs that go the wrong way (a lower part importing a higher one) are
drawn red below the boxes; imports only made for type hints (`TYPE_CHECKING`) are dashed.

Between the markers `<!-- module-table:start -->` and `<!-- module-table:end -->` of MODULES.md
the script writes one row per module: path, lines, and the first paragraph of its docstring.
"""
from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mfjle_lib"
DOCS = ROOT / "docs"

#: Parts in dependency order: a part may import only parts to its left.
PARTS = ("foundation", "data", "faces", "models", "evaluation", "perf", "training", "course", "cli")
CAPTIONS = {
    "foundation": "names, errors,\nfiles, device",
    "data": "records, loaders,\nimage IO, splits",
    "faces": "landmarks, alignment,\ncrops, decoded cache",
    "models": "ResNet-18, MF-JLE,\nfusion",
    "evaluation": "metrics, outputs,\nreports",
    "perf": "speed work\n(fenced off)",
    "training": "batches, loop,\nlosses, runs",
    "course": "lessons, ablations,\nfigures",
    "cli": "python -m\nmfjle_lib",
}
COLOURS = {
    "foundation": "#e8e8e8",
    "data": "#dbe9f6",
    "faces": "#d5f0e3",
    "models": "#fde7c8",
    "evaluation": "#d8efef",
    "perf": "#ececec",
    "training": "#e6dcf2",
    "course": "#f9f1c9",
    "cli": "#d9d9d9",
}
#: Top-level modules that only re-export a part's names under an older import path (DESIGN.md §4),
#: filled in by `read_graph`; they belong to no part and break no rule.
SHIMS: dict[str, str] = {}
TABLE_START, TABLE_END = "<!-- module-table:start -->", "<!-- module-table:end -->"


def module_name(path: Path) -> str:
    """Dotted module name of a file under the package: mfjle_lib/faces/crops.py -> mfjle_lib.faces.crops."""
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
        if (ROOT / Path(*candidate.split("."))).with_suffix(".py").exists() or (ROOT / Path(*candidate.split("."))).is_dir():
            names.append(candidate)
    return names or [target]


def read_graph() -> tuple[dict[str, Path], list[tuple[str, str, str]]]:
    """Modules of the package and their imports of each other: (importer, imported, kind)."""
    modules = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "__pycache__" not in p.parts}
    edges: list[tuple[str, str, str]] = []
    SHIMS.clear()
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if path.parent == PACKAGE and path.stem not in ("__init__", "__main__") and not any(
                isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) for n in tree.body):
            sources = {n.module.split(".")[0] for n in tree.body if isinstance(n, ast.ImportFrom) and n.level == 1 and n.module}
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
                while target and target not in modules:  # `mfjle_lib.faces.crops.cut_crops` -> module
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


def short(name: str, part: str) -> str:
    """Module name as shown inside its part's box."""
    rest = name.split(".")[1:]
    if part != "foundation" and rest and rest[0] == part:
        rest = rest[1:]
    return "/".join(rest) if rest else "__init__"


ARC_COLOURS = {
    "data": "#2e6da4",
    "faces": "#238b57",
    "models": "#d9822b",
    "evaluation": "#00808a",
    "perf": "#6b6b6b",
    "training": "#7049a8",
    "course": "#a08a00",
    "cli": "#222222",
}


def draw(modules: dict[str, Path], edges: list[tuple[str, str, str]], out: Path) -> None:
    """The foundation as a band under everything; the other parts as boxes left to right; arcs between them."""
    members: dict[str, list[str]] = defaultdict(list)
    for name in modules:
        if is_empty_package(modules[name]) or name in SHIMS:
            continue  # a package's __init__ holding only its docstring; a re-export (noted in the band)
        members[part_of(name)].append(short(name, part_of(name)))
    counts: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for a, b, kind in edges:
        pa, pb = part_of(a), part_of(b)
        if pa != pb and a not in SHIMS and b not in SHIMS:
            counts[(pa, pb)][kind] += 1

    boxes = PARTS[1:]
    width, gap, top = 1.75, 0.35, 0.0
    line_h, head_h = 0.26, 0.95
    height = {p: head_h + line_h * max(1, len(members[p])) + 0.2 for p in boxes}
    x0 = {p: i * (width + gap) for i, p in enumerate(boxes)}
    total_w = len(boxes) * (width + gap) - gap
    max_h = max(height.values())
    band_top = top - max_h - 0.75
    band_h = 0.95
    fig, ax = plt.subplots(figsize=(total_w * 0.95 + 0.4, (max_h + 7.4) * 0.95))
    for p in boxes:
        x, h = x0[p], height[p]
        ax.add_patch(FancyBboxPatch((x, top - h), width, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                    facecolor=COLOURS[p], edgecolor=ARC_COLOURS[p], linewidth=1.6, zorder=2))
        ax.text(x + width / 2, top - 0.22, p, ha="center", va="center", fontsize=12.5, fontweight="bold",
                color=ARC_COLOURS[p], zorder=3)
        ax.text(x + width / 2, top - 0.58, CAPTIONS[p], ha="center", va="center", fontsize=7.6,
                style="italic", color="#333333", linespacing=1.0, zorder=3)
        ax.plot([x + 0.1, x + width - 0.1], [top - head_h + 0.1] * 2, color="#888888", linewidth=0.6, zorder=3)
        for i, m in enumerate(sorted(members[p])):
            ax.text(x + 0.14, top - head_h - line_h * (i + 0.5), m, ha="left", va="center", fontsize=9,
                    family="monospace", zorder=3)

    # The foundation: one band under every part, since (nearly) every part uses it.
    users = [p for p in boxes if (p, "foundation") in counts]
    ax.add_patch(FancyBboxPatch((0, band_top - band_h), total_w, band_h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                facecolor=COLOURS["foundation"], edgecolor="#444444", linewidth=1.2, zorder=2))
    ax.text(0.15, band_top - 0.3, "foundation", ha="left", va="center", fontsize=12.5, fontweight="bold", zorder=3)
    shims = "".join(f"      (re-export: {n.split('.')[-1]} \u2192 {SHIMS[n]}.{n.split('.')[-1]})" for n in sorted(SHIMS))
    ax.text(0.15, band_top - 0.68, "   ".join(sorted(members["foundation"])) + shims, ha="left", va="center",
            fontsize=9, family="monospace", zorder=3)
    ax.text(total_w - 0.15, band_top - 0.48,
            "imported by " + (", ".join(users) if len(users) < len(boxes) else "every part above") + " (arcs not drawn)",
            ha="right", va="center", fontsize=9, style="italic", color="#333333", zorder=3)

    def anchor(p: str, offset: float) -> float:
        return x0[p] + width / 2 + offset

    pairs = sorted((k for k in counts if "foundation" not in k),
                   key=lambda k: -abs(PARTS.index(k[0]) - PARTS.index(k[1])))
    # Spread the arc ends along each box's top so that arrows into one part do not pile up.
    ends: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for pa, pb in pairs:
        ends[pa].append((pa, pb))
        ends[pb].append((pa, pb))
    slot: dict[tuple[str, tuple[str, str]], float] = {}
    for p, es in ends.items():
        es.sort(key=lambda e: PARTS.index(e[1] if e[0] == p else e[0]))
        n = len(es)
        for i, e in enumerate(es):
            slot[(p, e)] = (i - (n - 1) / 2) * min(0.2, (width - 0.3) / max(n, 1))
    max_arc = 0.0
    for pa, pb in pairs:
        kinds = counts[(pa, pb)]
        runtime = kinds.get("module", 0) + kinds.get("function", 0)
        upward = PARTS.index(pa) < PARTS.index(pb)
        xa, xb = anchor(pa, slot[(pa, (pa, pb))]), anchor(pb, slot[(pb, (pa, pb))])
        if upward:  # a lower part importing a higher one: the rule broken, drawn red below the boxes
            ya, yb = top - height[pa], top - height[pb]
            colour, rad = "#e0201b", 0.3
        else:
            ya = yb = top + 0.03
            colour, rad = ARC_COLOURS[pa], 0.42 if abs(xa - xb) > width + gap + 0.5 else 0.6
        style = "-" if runtime else (0, (4, 3))
        lw = 0.9 + 0.4 * min(runtime or kinds.get("typing", 0), 8)
        ax.add_patch(FancyArrowPatch((xa, ya), (xb, yb), connectionstyle=f"arc3,rad={rad}", arrowstyle="-|>",
                                     mutation_scale=13, linewidth=lw, linestyle=style, color=colour, alpha=0.9,
                                     zorder=1))
        if not upward:
            max_arc = max(max_arc, rad * abs(xa - xb) / 2 + 0.2)
    ax.text(0, top + max_arc + 0.45,
            "mfjle_lib: its parts in dependency order, lower parts on the left.\n"
            "An arc A \u2192 B, in A's colour: a module of A imports a module of B (width: how many module-to-module imports).\n"
            "Dashed: imported only for type hints. Red, below the boxes: a lower part importing a higher one.",
            fontsize=10.5, ha="left", va="bottom", linespacing=1.4)
    ax.set_xlim(-0.2, total_w + 0.2)
    ax.set_ylim(band_top - band_h - 0.3, top + max_arc + 1.4)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.savefig(out, dpi=110, bbox_inches="tight", facecolor="white")
    plt.close(fig)


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
        rows.append(f"| {part_of(name)} | [`{path.relative_to(ROOT)}`](../{path.relative_to(ROOT)}) | {n_lines} | {doc} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(DOCS / "module_map.png"))
    parser.add_argument("--markdown", default=str(DOCS / "MODULES.md"), help="file whose module table is refreshed")
    parser.add_argument("--check", action="store_true", help="exit 1 if an import goes from a lower part to a higher one")
    args = parser.parse_args(argv)

    modules, edges = read_graph()
    draw(modules, edges, Path(args.out))
    md = Path(args.markdown)
    if md.exists():
        text = md.read_text(encoding="utf-8")
        if TABLE_START in text and TABLE_END in text:
            head, rest = text.split(TABLE_START, 1)
            _, tail = rest.split(TABLE_END, 1)
            md.write_text(f"{head}{TABLE_START}\n{table(modules)}\n{TABLE_END}{tail}", encoding="utf-8")

    upward = sorted({(a, b, k) for a, b, k in edges
                     if a not in SHIMS and b not in SHIMS and PARTS.index(part_of(a)) < PARTS.index(part_of(b))})
    func = [(a, b) for a, b, k in edges if k == "function"]
    loops = cycles(modules, edges)
    sizes = {m: len(p.read_text(encoding="utf-8").splitlines()) for m, p in modules.items()}
    biggest = max(sizes, key=sizes.get)
    print(f"{len(modules)} modules in {len(PARTS)} parts; largest {biggest} ({sizes[biggest]} lines); "
          f"{len(edges)} internal imports, {len(func)} inside functions; cycles: {loops or 'none'}")
    for a, b, k in upward:
        print(f"upward import ({k}): {a} -> {b}")
    print(f"wrote {args.out}")
    return 1 if args.check and (upward or loops) else 0


if __name__ == "__main__":
    sys.exit(main())
