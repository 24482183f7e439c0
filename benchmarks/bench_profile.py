"""Where a training step's time goes, by operator category (`bench.py --profile N`): torch.profiler on the CPU.

A few steps of the trainer's own `train_step` per model run under `torch.profiler`; every operator's
self CPU time (its time on the calling thread, minus that of the operators it called) is put in one
category by `categorise` and summed, per step. The categories answer the question of the issue: why
an MF-JLE step costs more ResNet-18 steps than its FLOP ratio says. The convolution backward is one
operator on the CPU (input and weight gradients in one oneDNN call), so it is not split.

Rules (`categorise`): copies (contiguous, clone, to, copy_) and the NaN fill that deterministic mode
puts into every uninitialised tensor (`fill_` right under an allocation) count as themselves
wherever they happen, because they are mechanisms, not layers; any other operator takes the category
of its outermost recognised caller (the autograd node of a backward, `Optimizer.step`, the
`mfjle::loss` scope this file opens around the loss), else its own, else `other`. What the
profiler cannot see, Python and dispatch between operators, is the step's wall time minus the
summed self times (`outside_ops`), and includes the profiler's own overhead. The three models are
profiled in turn, one step each per round, and each figure is a median over the rounds; medians do
not add up exactly to the step's.

On a busy 2-core machine two threads mostly wait for each other (every operator's parallel region
waits for the descheduled thread), so `bench.py --threads 1` gives the readable profile there.
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Iterable
from contextlib import contextmanager
from typing import Protocol

import torch
from bench_common import make_model  # first: puts the checkout on sys.path
from torch.profiler import ProfilerActivity, profile, record_function

from mfjle_lib.method import step as method_step
from mfjle_lib.perf.allocator import keep_freed_memory
from mfjle_lib.training.batches import Batch
from mfjle_lib.training.config import make_config
from mfjle_lib.training.setup import TrainingParts, make_adam, make_scaler
from mfjle_lib.training.trainer import train_step

#: The categories, in report order.
CATEGORIES = (
    "conv_fwd",
    "conv_bwd",
    "bn_fwd",
    "bn_bwd",
    "relu_pool_add",
    "head",
    "crops",
    "crops_bwd",
    "loss",
    "optimizer",
    "layout_copies",
    "nan_fill",
    "other",
)

#: The scope opened around the joint loss while profiling (its ops are otherwise generic: mean, stack, mul).
LOSS_SCOPE = "mfjle::loss"

#: (category, pattern searched in the operator name), first match wins. Backward before forward.
RULES: tuple[tuple[str, str], ...] = (
    ("layout_copies", r"^aten::(contiguous|clone|to|_to_copy|copy_)$|CloneBackward|ToCopyBackward"),
    ("optimizer", r"^Optimizer\.|_fused_adam|^aten::_foreach_"),
    ("loss", re.escape(LOSS_SCOPE) + r"|binary_cross_entropy|BinaryCrossEntropy"),
    ("crops_bwd", r"roi_align_backward|RoiAlignBackward|upsample.*backward|Upsample.*Backward|grid_sampler.*backward"),
    ("crops", r"roi_align|upsample|grid_sampler|nan_to_num"),
    ("conv_bwd", r"convolution_backward|ConvolutionBackward"),
    ("conv_fwd", r"^aten::(conv2d|convolution|_convolution|mkldnn_convolution|_slow_conv2d_forward|thnn_conv2d)$"),
    ("bn_bwd", r"batch_norm_backward|BatchNormBackward"),
    ("bn_fwd", r"batch_norm"),
    (
        "relu_pool_add",
        r"^aten::(relu_?|clamp_min_?|threshold_backward|max_pool2d.*|adaptive_avg_pool2d|_adaptive_avg_pool2d.*"
        r"|add_?)$|ReluBackward|MaxPool2DWithIndicesBackward|AdaptiveAvgPool2DBackward|AddBackward",
    ),
    ("head", r"^aten::(linear|addmm|mm|bmm|einsum)$|AddmmBackward|MmBackward|BmmBackward|UnsafeViewBackward"),
)
_COMPILED = tuple((cat, re.compile(pattern)) for cat, pattern in RULES)

#: Categories an operator keeps whoever called it.
OWN_FIRST = ("layout_copies",)

#: Allocations that deterministic mode fills with NaN (`torch.utils.deterministic.fill_uninitialized_memory`).
ALLOCATIONS = ("aten::empty", "aten::empty_like", "aten::empty_strided", "aten::resize_", "aten::new_empty")


class ProfilerEvent(Protocol):
    """What `categorise` reads of a `torch.autograd.profiler_util.FunctionEvent`."""

    name: str
    self_cpu_time_total: float
    cpu_parent: ProfilerEvent | None


def match(name: str) -> str | None:
    """The category an operator name belongs to by itself, or None for a generic operator (empty, mul, ...)."""
    return next((cat for cat, pattern in _COMPILED if pattern.search(name)), None)


def categorise(event: ProfilerEvent) -> str:
    """The category of one profiler event (rules in the module docstring)."""
    parent = event.cpu_parent
    if event.name in ("aten::fill_", "aten::zero_") and parent is not None and parent.name in ALLOCATIONS:
        return "nan_fill"
    own = match(event.name)
    if own in OWN_FIRST:
        return own
    outermost, node = own, parent
    while node is not None:
        found = match(node.name)
        if found is not None and found not in OWN_FIRST:
            outermost = found
        node = node.cpu_parent
    return outermost or "other"


def aggregate(events: Iterable[ProfilerEvent]) -> dict[str, float]:
    """Self CPU microseconds summed per category (every category present, zeros included)."""
    totals = dict.fromkeys(CATEGORIES, 0.0)
    for event in events:
        totals[categorise(event)] += float(event.self_cpu_time_total)
    return totals


@contextmanager
def loss_scope():
    """Open `LOSS_SCOPE` around the method's joint loss while profiling (its step imports it by name)."""
    original = method_step.joint_loss

    def scoped(*args, **kwargs):
        with record_function(LOSS_SCOPE):
            return original(*args, **kwargs)

    method_step.joint_loss = scoped
    try:
        yield
    finally:
        method_step.joint_loss = original


def median(values: list[float]) -> float:
    """The middle value (upper middle for an even count), as `bench_common.interleaved` takes it."""
    return sorted(values)[len(values) // 2]


def profile_models(args: argparse.Namespace, x: torch.Tensor, lm: torch.Tensor, y: torch.Tensor) -> dict:
    """ResNet-18 and MF-JLE (loop and fused locals) profiled at the run's geometry, interleaved; per-category ratios.

    One profiled step of each model per round, `args.profile` rounds after one warm-up step each, so
    a busy machine slows the three alike; each category's figure is its median over the rounds.
    """
    cpu = torch.device("cpu")
    # As `train` does on the CPU: without it, every step page-faults fresh memory, and the first
    # write to it (often deterministic mode's NaN fill) takes the blame.
    keep_freed_memory()
    batch = Batch(x.to(cpu), lm.to(cpu), y.to(cpu))
    cfg = make_config("paper", precision="float32")
    forms = {"resnet18": ("resnet18", "loop"), "mfjle_naive": ("mfjle", "loop"), "mfjle_fused": ("mfjle", "fused")}
    parts = {}
    for key, (name, impl) in forms.items():
        m = make_model(name, impl, cpu, args, True)
        parts[key] = TrainingParts(m, m, make_adam(m, 1e-4, cpu), None, make_scaler(cpu, "float32"), None)
    rounds: dict[str, list[dict[str, float]]] = {k: [] for k in forms}
    with loss_scope():
        for p in parts.values():  # the allocator's heap and oneDNN's primitive cache settle first
            train_step(p, batch, cfg, cpu)
        for _ in range(args.profile):
            for key, p in parts.items():
                with profile(activities=[ProfilerActivity.CPU]) as prof:
                    t0 = time.perf_counter()
                    train_step(p, batch, cfg, cpu)
                    wall = time.perf_counter() - t0
                ms = {k: v / 1e3 for k, v in aggregate(prof.events()).items()}
                rounds[key].append({**ms, "wall": 1e3 * wall, "outside": 1e3 * wall - sum(ms.values())})
    out: dict = {"steps": args.profile, "categories": list(CATEGORIES)}
    for key, per_round in rounds.items():
        out[key] = {
            "ms_per_step": {c: median([r[c] for r in per_round]) for c in CATEGORIES},
            "wall_ms_per_step": median([r["wall"] for r in per_round]),
            "outside_ops_ms": median([r["outside"] for r in per_round]),
            "wall_ms_per_round": [r["wall"] for r in per_round],
        }
    add_shares_and_ratios(out)
    return out


def add_shares_and_ratios(prof: dict) -> None:
    """Each model's share per category of its profiled time, and each MF-JLE form's ratio to ResNet-18 per category."""
    base = prof["resnet18"]["ms_per_step"]
    for key in ("resnet18", "mfjle_naive", "mfjle_fused"):
        ms = prof[key]["ms_per_step"]
        total = sum(ms.values()) or 1.0
        prof[key]["share"] = {k: v / total for k, v in ms.items()}
        prof[key]["profiled_ms_per_step"] = sum(ms.values())
        if key != "resnet18":
            prof[key]["ratio_to_resnet18"] = {k: (v / base[k] if base[k] > 0 else None) for k, v in ms.items()}
            prof[key]["step_ratio_to_resnet18"] = prof[key]["wall_ms_per_step"] / prof["resnet18"]["wall_ms_per_step"]


def profile_table(prof: dict, flop_ratio: float | None) -> str:
    """The profile as a markdown table: ms/step and share per model, MF-JLE / ResNet-18 per category."""
    forms = ("resnet18", "mfjle_naive", "mfjle_fused")
    head = (
        "| category | ResNet-18 ms (share) | MF-JLE loop ms (share) | MF-JLE fused ms (share) | loop / R18 "
        "| fused / R18 |"
    )
    lines = [head, "|---|---|---|---|---|---|"]

    def ratio(v: float | None) -> str:
        return "–" if v is None else f"{v:.2f}"

    for cat in CATEGORIES:
        cells = [f"{prof[k]['ms_per_step'][cat]:.1f} ({100 * prof[k]['share'][cat]:.0f} %)" for k in forms]
        cells += [ratio(prof[k]["ratio_to_resnet18"][cat]) for k in forms[1:]]
        lines.append(f"| {cat} | " + " | ".join(cells) + " |")
    for label, key in (("all operators", "profiled_ms_per_step"), ("outside operators", "outside_ops_ms")):
        cells = [f"{prof[k][key]:.1f}" for k in forms]
        cells += [
            f"{prof[k][key] / prof['resnet18'][key]:.2f}" if prof["resnet18"][key] > 0 else "–" for k in forms[1:]
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    cells = [f"{prof[k]['wall_ms_per_step']:.1f}" for k in forms] + [
        f"{prof[k]['step_ratio_to_resnet18']:.2f}" for k in forms[1:]
    ]
    lines.append("| **step (wall, profiled)** | " + " | ".join(cells) + " |")
    if flop_ratio is not None:
        lines.append("")
        lines.append(
            f"Training FLOP ratio MF-JLE / ResNet-18: {flop_ratio:.2f}; a category above it costs MF-JLE more "
            "than its FLOPs."
        )
    return "\n".join(lines)
