"""Would MF-JLE train faster if the local nets' convolutions with a 1 × 1 output ran as matrix products? An experiment.

A convolution whose output map is 1 × 1 multiplies only the taps that meet the input (on a 1 × 1 input with padding
1, the centre tap; stride 2 from 2 × 2, four taps); the rest meet zero padding. Written as one matrix product over
those taps it computes the same output, and the same gradients (the other taps' gradients are exactly zero either
way), with none of the convolution kernel's overhead on a map of one pixel. This script rewrites those convolutions
in MF-JLE's local nets (a copy of the model: nothing in `mfjle_lib` changes), checks the forward and four training
steps against the unchanged model, and times the trainer's step of ResNet-18, MF-JLE and the rewritten MF-JLE,
interleaved. `ONEDNN_MAX_CPU_ISA=AVX2` shows what an AVX2-only CPU gets.

    python benchmarks/bench_tiny_maps.py --json benchmarks/results/avx512_bf16/tiny_maps.json
"""

from __future__ import annotations

import copy
import datetime
import json
import os

import torch
import torch.nn.functional as F
from bench_common import (  # first: puts the checkout on sys.path
    fake_data,
    interleaved,
    make_model,
    model_input,
    step_experiment_parser,
)
from torch import nn

from mfjle_lib.perf.allocator import keep_freed_memory
from mfjle_lib.runtime import machine_record
from mfjle_lib.training.batches import Batch
from mfjle_lib.training.config import make_config
from mfjle_lib.training.setup import TrainingParts, make_adam, make_scaler
from mfjle_lib.training.trainer import train_step


class TapConv2d(nn.Conv2d):
    """A Conv2d whose output is 1 × 1, computed as one matrix product over the taps that meet the input.

    A subclass, so the parameter, its name in the state dict and every hook that reads `.weight` stay as they were.
    """

    taps: list[tuple[int, int, int, int]]  # (input row, input column, kernel row, kernel column)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, O, 1, 1): the taps' inputs times the taps' weights, plus the bias."""
        xs = torch.stack([x[:, :, i, j] for i, j, _, _ in self.taps], dim=2).flatten(1)  # (B, C·T)
        ws = torch.stack([self.weight[:, :, a, b] for _, _, a, b in self.taps], dim=2).flatten(1)  # (O, C·T)
        return F.linear(xs, ws, self.bias)[:, :, None, None]


def rewrite_tiny_maps(net: nn.Module, side: int) -> int:
    """Turn every Conv2d of `net` whose output is 1 × 1 at input side `side` into a TapConv2d; returns how many."""
    shapes: dict[nn.Module, tuple[int, int]] = {}
    hooks = [
        m.register_forward_hook(lambda mod, inp, out: shapes.__setitem__(mod, (inp[0].shape[-1], out.shape[-1])))
        for m in net.modules()
        if type(m) is nn.Conv2d
    ]
    was_training = net.training
    with torch.no_grad():
        net.eval()(torch.zeros(1, 3, side, side))
    net.train(was_training)
    for h in hooks:
        h.remove()
    count = 0
    for conv, (in_side, out_side) in shapes.items():
        if out_side != 1 or conv.groups != 1 or conv.dilation != (1, 1):
            continue
        (p, _), (kh, kw) = conv.padding, conv.kernel_size
        conv.taps = [(i, j, i + p, j + p) for i in range(in_side) for j in range(in_side) if i + p < kh and j + p < kw]
        conv.__class__ = TapConv2d  # the same parameters, the same state-dict names
        count += 1
    return count


def main() -> None:
    """Check the rewrite against the unchanged model, then time the three steps; print and optionally save."""
    p = step_experiment_parser(__doc__.splitlines()[0])
    args = p.parse_args()
    cpu = torch.device("cpu")
    load = os.getloadavg()[0]
    keep_freed_memory()  # as `train` does on the CPU
    images, landmarks, labels = fake_data(args.batch_size, args.source_size, cpu)
    batch = Batch(model_input(images, cpu), landmarks, labels)
    cfg = make_config("paper", precision="float32")
    models = {
        "resnet18": make_model("resnet18", "loop", cpu, args, True),
        "mfjle": make_model("mfjle", "loop", cpu, args, True),
    }
    models["mfjle_tiny_maps"] = copy.deepcopy(models["mfjle"])
    rewritten = sum(rewrite_tiny_maps(net, args.local_size) for net in models["mfjle_tiny_maps"].local_nets.nets)

    crops = torch.randn(8, 3, args.local_size, args.local_size, generator=torch.Generator().manual_seed(1))
    plain, tapped = models["mfjle"].local_nets.nets[0].eval(), models["mfjle_tiny_maps"].local_nets.nets[0].eval()
    with torch.no_grad():
        forward_diff = (plain(crops) - tapped(crops)).abs().max().item()
    parts = {
        k: TrainingParts(m.train(), m.train(), make_adam(m, 1e-4, cpu), None, make_scaler(cpu, "float32"), None)
        for k, m in models.items()
    }
    losses = {
        k: [train_step(parts[k], batch, cfg, cpu)[0][0].item() for _ in range(4)] for k in ("mfjle", "mfjle_tiny_maps")
    }
    weight_diff = max(
        (a - b).abs().max().item()
        for a, b in zip(models["mfjle"].state_dict().values(), models["mfjle_tiny_maps"].state_dict().values())
        if a.is_floating_point()
    )
    ms = {
        k: 1e3 * v
        for k, v in interleaved(
            {k: (lambda k=k: train_step(parts[k], batch, cfg, cpu)) for k in parts}, cpu, args.repeats
        ).items()
    }
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "not capped")
    ratios = {k: ms[k] / ms["resnet18"] for k in ("mfjle", "mfjle_tiny_maps")}
    print(
        f"oneDNN ISA cap: {isa}, {torch.get_num_threads()} threads; "
        f"1-min load {load:.2f} at start, {os.getloadavg()[0]:.2f} at end"
    )
    print(
        f"{rewritten} convolutions rewritten (5 local nets); local forward max |Δ| {forward_diff:.1e}; "
        f"after 4 training steps: joint losses {losses['mfjle'][-1]:.6f} / {losses['mfjle_tiny_maps'][-1]:.6f}, "
        f"state dict max |Δ| {weight_diff:.1e}"
    )
    for k, v in ms.items():
        print(f"{k:16s} {v:7.0f} ms per step" + (f"; / ResNet-18 {ratios[k]:.2f}" if k in ratios else ""))
    if args.json:
        record = {
            "date": datetime.date.today().isoformat(),
            "machine": machine_record(),
            "onednn_isa_cap": isa,
            "load_1min": [load, os.getloadavg()[0]],
            "geometry": {k: getattr(args, k) for k in ("source_size", "global_size", "local_size", "batch_size")},
            "convolutions_rewritten": rewritten,
            "local_forward_max_abs_diff": forward_diff,
            "joint_loss_after_4_steps": losses,
            "weights_max_abs_diff_after_4_steps": weight_diff,
            "ms_per_step": {k: round(v, 1) for k, v in ms.items()},
            "train_step_ratio": ratios,
        }
        args.json.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
