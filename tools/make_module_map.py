"""Draw the module map of `mfjle_lib` from its import graph, and refresh the generated blocks of MODULES.md.

    python -m tools.make_module_map            # writes docs/module_map.png, updates docs/MODULES.md
    python -m tools.make_module_map --check    # writes nothing; exit 1 on an upward import, a cycle,
                                               # or a stale MODULES.md block (module table, command list)

The graph and the rules live in `module_graph.py`; this file draws.

The import graph is read with `ast` (no module is imported, so this runs without torch): every
`import mfjle_lib.x` / `from mfjle_lib.x import y` and every relative import (`from ..x import y`),
at module level, inside functions, or under `if TYPE_CHECKING:`. Modules are grouped into parts
(the first folder under `mfjle_lib/`; the top-level files are the `foundation`). Parts are drawn
left to right in dependency order as boxes listing their modules; an arc above the boxes from
part A to part B means "some module of A imports a module of B" (line width: number of
module-to-module imports). The foundation, which every part uses, is a band under the boxes. Arcs that go the wrong
way (a lower part importing a higher one) are
drawn red below the boxes; imports only made for type hints (`TYPE_CHECKING`) are dashed.

Between the markers `<!-- module-table:start -->` and `<!-- module-table:end -->` of MODULES.md
the script writes one row per module: path, lines, and the first paragraph of its docstring; between
`<!-- commands:start -->` and `<!-- commands:end -->`, the CLI's subcommands as cli/parser.py defines them.
Python files over `LONG_FILE` lines are listed (a smell: split by concept), without failing the check.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

from tools.module_graph import (  # noqa: E402
    DOCS,
    LONG_FILE,
    PARTS,
    ROOT,
    SHIMS,
    cycles,
    is_empty_package,
    long_files,
    part_of,
    read_graph,
    table_in,
    upward_imports,
)

CAPTIONS = {
    "foundation": "names, errors,\nfiles, device",
    "method": "the paper:\ncrops to metrics",
    "data": "records, loaders,\nimage IO, splits",
    "faces": "landmarks, alignment,\ndecoded cache",
    "models": "registry,\nstarting weights",
    "evaluation": "outputs,\nreports",
    "perf": "speed, applied\nfrom outside",
    "training": "the trainer,\na run's files",
    "inference": "a finished run:\nevaluate, predict",
    "experiments": "study,\nreproduce",
    "course": "lessons, ablations,\nfigures",
    "cli": "python -m\nmfjle_lib",
}
COLOURS = {
    "foundation": "#e8e8e8",
    "method": "#fbd9d3",
    "data": "#dbe9f6",
    "faces": "#d5f0e3",
    "models": "#fde7c8",
    "evaluation": "#d8efef",
    "perf": "#ececec",
    "training": "#e6dcf2",
    "inference": "#e3eedb",
    "experiments": "#f2e3d6",
    "course": "#f9f1c9",
    "cli": "#d9d9d9",
}


def short(name: str, part: str) -> str:
    """Module name as shown inside its part's box."""
    rest = name.split(".")[1:]
    if part != "foundation" and rest and rest[0] == part:
        rest = rest[1:]
    return "/".join(rest) if rest else "__init__"


ARC_COLOURS = {
    "method": "#c0392b",
    "data": "#2e6da4",
    "faces": "#238b57",
    "models": "#d9822b",
    "evaluation": "#00808a",
    "perf": "#6b6b6b",
    "training": "#7049a8",
    "inference": "#4f7f2f",
    "experiments": "#9a5b23",
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
        ax.add_patch(
            FancyBboxPatch(
                (x, top - h),
                width,
                h,
                boxstyle="round,pad=0.02,rounding_size=0.08",
                facecolor=COLOURS[p],
                edgecolor=ARC_COLOURS[p],
                linewidth=1.6,
                zorder=2,
            )
        )
        ax.text(
            x + width / 2,
            top - 0.22,
            p,
            ha="center",
            va="center",
            fontsize=12.5,
            fontweight="bold",
            color=ARC_COLOURS[p],
            zorder=3,
        )
        ax.text(
            x + width / 2,
            top - 0.58,
            CAPTIONS[p],
            ha="center",
            va="center",
            fontsize=7.6,
            style="italic",
            color="#333333",
            linespacing=1.0,
            zorder=3,
        )
        ax.plot([x + 0.1, x + width - 0.1], [top - head_h + 0.1] * 2, color="#888888", linewidth=0.6, zorder=3)
        for i, m in enumerate(sorted(members[p])):
            ax.text(
                x + 0.14,
                top - head_h - line_h * (i + 0.5),
                m,
                ha="left",
                va="center",
                fontsize=9,
                family="monospace",
                zorder=3,
            )

    # The foundation: one band under every part, since (nearly) every part uses it.
    users = [p for p in boxes if (p, "foundation") in counts]
    ax.add_patch(
        FancyBboxPatch(
            (0, band_top - band_h),
            total_w,
            band_h,
            boxstyle="round,pad=0.02,rounding_size=0.08",
            facecolor=COLOURS["foundation"],
            edgecolor="#444444",
            linewidth=1.2,
            zorder=2,
        )
    )
    ax.text(0.15, band_top - 0.3, "foundation", ha="left", va="center", fontsize=12.5, fontweight="bold", zorder=3)
    shims = "".join(
        f"      (re-export: {n.split('.')[-1]} \u2192 {SHIMS[n]}.{n.split('.')[-1]})" for n in sorted(SHIMS)
    )
    ax.text(
        0.15,
        band_top - 0.68,
        "   ".join(sorted(members["foundation"])) + shims,
        ha="left",
        va="center",
        fontsize=9,
        family="monospace",
        zorder=3,
    )
    ax.text(
        total_w - 0.15,
        band_top - 0.48,
        "imported by " + (", ".join(users) if len(users) < len(boxes) else "every part above") + " (arcs not drawn)",
        ha="right",
        va="center",
        fontsize=9,
        style="italic",
        color="#333333",
        zorder=3,
    )

    def anchor(p: str, offset: float) -> float:
        return x0[p] + width / 2 + offset

    pairs = sorted(
        (k for k in counts if "foundation" not in k), key=lambda k: -abs(PARTS.index(k[0]) - PARTS.index(k[1]))
    )
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
        ax.add_patch(
            FancyArrowPatch(
                (xa, ya),
                (xb, yb),
                connectionstyle=f"arc3,rad={rad}",
                arrowstyle="-|>",
                mutation_scale=13,
                linewidth=lw,
                linestyle=style,
                color=colour,
                alpha=0.9,
                zorder=1,
            )
        )
        if not upward:
            max_arc = max(max_arc, rad * abs(xa - xb) / 2 + 0.2)
    ax.text(
        0,
        top + max_arc + 0.45,
        "mfjle_lib: its parts in dependency order, lower parts on the left.\n"
        "An arc A \u2192 B, in A's colour: a module of A imports a module of B (width: how many module-to-module "
        "imports).\n"
        "Dashed: imported only for type hints. Red, below the boxes: a lower part importing a higher one.",
        fontsize=10.5,
        ha="left",
        va="bottom",
        linespacing=1.4,
    )
    ax.set_xlim(-0.2, total_w + 0.2)
    ax.set_ylim(band_top - band_h - 0.3, top + max_arc + 1.4)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.savefig(out, dpi=110, bbox_inches="tight", facecolor="white")
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Draw and refresh (default), or check the house rules and write nothing (--check)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(DOCS / "module_map.png"))
    parser.add_argument("--markdown", default=str(DOCS / "MODULES.md"), help="file whose module table is refreshed")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a house rule is broken")
    args = parser.parse_args(argv)

    modules, edges = read_graph()
    md = Path(args.markdown)
    text = md.read_text(encoding="utf-8") if md.exists() else ""
    if not args.check:
        draw(modules, edges, Path(args.out))
        if text:
            md.write_text(table_in(text, modules), encoding="utf-8")
        print(f"wrote {args.out}")

    upward, loops, long = upward_imports(edges), cycles(modules, edges), long_files()
    func = [(a, b) for a, b, k in edges if k == "function"]
    sizes = {m: len(p.read_text(encoding="utf-8").splitlines()) for m, p in modules.items()}
    biggest = max(sizes, key=sizes.get)
    print(
        f"{len(modules)} modules in {len(PARTS)} parts; largest {biggest} ({sizes[biggest]} lines); "
        f"{len(edges)} internal imports, {len(func)} inside functions; cycles: {loops or 'none'}"
    )
    for a, b, k in upward:
        print(f"upward import ({k}): {a} -> {b}")
    for path, n in long.items():
        print(f"smell: {path} has {n} lines (over {LONG_FILE}): one concept, or several to split?")
    stale = args.check and bool(text) and table_in(text, modules) != text
    if stale:
        print(f"{md.relative_to(ROOT)}: its module table or command list is stale; run python -m tools.make_module_map")
    return 1 if args.check and (upward or loops or stale) else 0


if __name__ == "__main__":
    sys.exit(main())
