"""Which memory layout each ResNet-18 stage should use on this CPU (evidence for `plan_memory_format`).

Usage:
    python benchmarks/bench_memory_format.py [--repeats 5] [--batch-size 32]

For the global net (one ResNet-18 at S_g) and the local nets (five at S_l), times forward+backward
at batch 32 with every stage in channels_last, every stage in NCHW, and the mixed layouts that put
the small-map stages in NCHW, interleaved round by round (medians after two warm-up rounds). The
row marked `plan` is what `mfjle_lib.models.plan_memory_format` picks for the CPU. Prints a table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch
from bench_common import interleaved

from mfjle_lib.method.models import make_resnet18
from mfjle_lib.perf.memory_format import cpu_stage_formats, set_stage_formats, stage_sides

CL, NCHW = torch.channels_last, torch.contiguous_format


def layouts() -> dict[str, tuple[torch.memory_format, ...]]:
    """Candidate layouts of (layer1, layer2, layer3, layer4); the stem always follows the input."""
    return {
        "channels_last": (CL, CL, CL, CL),
        "NCHW": (NCHW,) * 4,
        "NCHW layer4": (CL, CL, CL, NCHW),
        "NCHW layer3-4": (CL, CL, NCHW, NCHW),
        "NCHW layer2-4": (CL, NCHW, NCHW, NCHW),
    }


def nets_in(layout: tuple[torch.memory_format, ...], count: int) -> list[torch.nn.Module]:
    """`count` ResNet-18s (the library's, with the stage hooks) with stages in `layout`."""
    return [set_stage_formats(make_resnet18().to(memory_format=CL).train(), layout) for _ in range(count)]


def time_layouts(side: int, count: int, batch: int, repeats: int) -> dict[str, float]:
    """Median seconds of forward+backward of `count` nets on (batch, 3, side, side), per layout."""
    torch.manual_seed(0)
    x = torch.randn(batch, 3, side, side).contiguous(memory_format=CL)
    cands = {name: nets_in(lay, count) for name, lay in layouts().items()}

    def step(nets):
        for net in nets:
            for p in net.parameters():
                p.grad = None
            net(x).sum().backward()

    return interleaved(
        {name: (lambda nets=nets: step(nets)) for name, nets in cands.items()}, torch.device("cpu"), repeats
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--cases", default="224x1,64x5,64x1,32x5", help="side x number of nets, comma-separated")
    args = p.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch_size}; forward+backward ms")
    for case in args.cases.split(","):
        side, count = (int(v) for v in case.split("x"))
        t = time_layouts(side, count, args.batch_size, args.repeats)
        plan = cpu_stage_formats(side)
        best = min(t, key=t.get)
        print(f"\n{count} net(s) at {side} px (stage maps {stage_sides(side)})")
        for name, sec in t.items():
            mark = " <- plan" if layouts()[name] == plan else ""
            print(f"  {name:15s} {1000 * sec:8.1f}{mark}{'  (fastest)' if name == best else ''}")


if __name__ == "__main__":
    main()
