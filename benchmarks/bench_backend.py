"""Is oneDNN the CPU's right convolution backend for an MF-JLE training step? The trainer's step, timed with oneDNN on
and off, interleaved.

One training step (`training.trainer.train_step`, float32, the loop form the CPU picks) of ResNet-18 and of MF-JLE at
the given geometry, each with `torch.backends.mkldnn` enabled and disabled (then ATen's own im2col + GEMM
convolutions run), round-robin so a busy machine slows all four alike; prints the median ms per step and the
MF-JLE / ResNet-18 ratio for each backend. To see the kernels an AVX2 machine gets on a newer CPU, cap oneDNN's
instruction set from the environment (`ONEDNN_MAX_CPU_ISA=AVX2`); the script prints the cap it ran under.

    python benchmarks/bench_backend.py --threads 1 --source-size 128 --global-size 64 --local-size 32 --batch-size 64
"""

from __future__ import annotations

import argparse
import datetime
import json
import os

import torch
from bench_common import (  # first: puts the checkout on path
    cpu_name,
    fake_data,
    interleaved,
    make_model,
    model_input,
    step_experiment_parser,
)

from mfjle_lib.perf.allocator import keep_freed_memory
from mfjle_lib.runtime import cpu_kind, machine_record
from mfjle_lib.training.batches import Batch
from mfjle_lib.training.config import make_config
from mfjle_lib.training.setup import TrainingParts, make_adam, make_scaler
from mfjle_lib.training.trainer import train_step


def step_times(args: argparse.Namespace) -> dict[tuple[str, bool], float]:
    """Median ms per training step of (model, oneDNN enabled)."""
    cpu = torch.device("cpu")
    keep_freed_memory()  # as `train` does on the CPU: fresh memory's page faults would blur the comparison
    images, landmarks, labels = fake_data(args.batch_size, args.source_size, cpu)
    batch = Batch(model_input(images, cpu), landmarks, labels)
    cfg = make_config("paper", precision="float32")
    fns = {}
    for name in ("resnet18", "mfjle"):
        model = make_model(name, "loop", cpu, args, True)
        parts = TrainingParts(model, model, make_adam(model, 1e-4, cpu), None, make_scaler(cpu, "float32"), None)
        for enabled in (True, False):

            def step(parts: TrainingParts = parts, enabled: bool = enabled) -> None:
                with torch.backends.mkldnn.flags(enabled=enabled):
                    train_step(parts, batch, cfg, cpu)

            fns[(name, enabled)] = step
    return {k: 1e3 * v for k, v in interleaved(fns, cpu, args.repeats, warmup=1).items()}


def main() -> None:
    """Parse the geometry, time the four steps, print them and the ratios."""
    p = step_experiment_parser(__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load = os.getloadavg()
    ms = step_times(args)
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "not capped")
    print(f"{cpu_name()}, kind {cpu_kind()}, oneDNN ISA cap: {isa}, {torch.get_num_threads()} threads")
    print(f"batch {args.batch_size}, R {args.source_size}, S_g {args.global_size}, S_l {args.local_size}")
    print(f"1-min load {load[0]:.2f} at start, {os.getloadavg()[0]:.2f} at end")
    ratios = {}
    for enabled in (True, False):
        r18, mfjle = ms[("resnet18", enabled)], ms[("mfjle", enabled)]
        ratios["onednn" if enabled else "aten"] = mfjle / r18
        label = "oneDNN on " if enabled else "oneDNN off"
        print(f"{label}: ResNet-18 {r18:6.0f} ms, MF-JLE {mfjle:6.0f} ms per step; ratio {mfjle / r18:.2f}")
    if args.json:
        record = {
            "date": datetime.date.today().isoformat(),
            "machine": machine_record(),
            "onednn_isa_cap": isa,
            "load_1min": [load[0], os.getloadavg()[0]],
            "geometry": {k: getattr(args, k) for k in ("source_size", "global_size", "local_size", "batch_size")},
            "ms_per_step": {f"{m} {'onednn' if e else 'aten'}": round(v, 1) for (m, e), v in ms.items()},
            "train_step_ratio": ratios,
        }
        args.json.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
