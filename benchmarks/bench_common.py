"""Shared pieces of `bench.py`: interleaved timing, fake faces, the models as the trainer builds them."""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without install

import torch

from mfjle_lib.constants import TEMPLATE
from mfjle_lib.faces.normalise import imagenet_normalise, to_unit_float
from mfjle_lib.models.registry import build_model, model_spec
from mfjle_lib.perf.optimize import optimize
from mfjle_lib.runtime import cpu_model


def sync(device: torch.device) -> None:
    """Wait for the device's queued work, so wall-clock timings cover it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


#: Process CPU seconds per call of the last `interleaved` timings (all threads together): on a
#: shared machine wall time includes waiting for other processes, CPU time much less so.
LAST_CPU_TIMES: dict[str, float] = {}
#: Median minor page faults per call of the last `interleaved` timings (memory the kernel had to
#: hand over and zero: a step that reuses its memory has next to none).
LAST_PAGE_FAULTS: dict[str, int] = {}
#: Every timed wall-clock sample of the last `interleaved` call, in round order.
LAST_SAMPLES: dict[str, list[float]] = {}


def interleaved(
    fns: dict[str, Callable[[], None]], device: torch.device, repeats: int, warmup: int = 2
) -> dict[str, float]:
    """Median wall seconds per call of each fn, timed round-robin (one call of each per round)."""
    samples: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    faults: dict[str, list[int]] = {k: [] for k in fns}
    for r in range(warmup + repeats):
        for name, fn in fns.items():
            sync(device)
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            sync(device)
            if r >= warmup:
                samples[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
                faults[name].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
    # Updated in place: other modules hold these dicts by name (`from bench_common import ...`).
    LAST_CPU_TIMES.clear()
    LAST_CPU_TIMES.update({k: sorted(v)[len(v) // 2] for k, v in cpu.items()})
    LAST_PAGE_FAULTS.clear()
    LAST_PAGE_FAULTS.update({k: sorted(v)[len(v) // 2] for k, v in faults.items()})
    LAST_SAMPLES.clear()
    LAST_SAMPLES.update(samples)
    return {k: sorted(v)[len(v) // 2] for k, v in samples.items()}


def step_experiment_parser(description: str) -> argparse.ArgumentParser:
    """The options of the training-step experiments (bench_backend, bench_tiny_maps): the lessons' geometry, rounds,
    and a JSON report."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--source-size", type=int, default=128)
    p.add_argument("--global-size", type=int, default=64)
    p.add_argument("--local-size", type=int, default=32)
    p.add_argument("--crop-fraction", type=float, default=0.25)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", type=Path, help="also write the numbers, the machine and the date to this file")
    return p


def fake_data(
    n: int, size: int, device: torch.device, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random uint8 faces (N,3,R,R) with template landmarks (jittered) and random labels."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    lm = torch.as_tensor(TEMPLATE * size).expand(n, 5, 2) + torch.randn(n, 5, 2, generator=g) * size * 0.01
    labels = (torch.rand(n, 6, generator=g) > 0.7).float()
    return images.to(device), lm.float().to(device), labels.to(device)


def model_input(images_u8: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 faces as the model sees them: float on the device, ImageNet-normalised, channels_last."""
    return imagenet_normalise(to_unit_float(images_u8, device)).contiguous(memory_format=torch.channels_last)


def make_model(name: str, impl: str, device: torch.device, args: argparse.Namespace, train: bool) -> torch.nn.Module:
    """`resnet18` or `mfjle` at the run's geometry, local nets in form `impl`, memory layout planned."""
    torch.manual_seed(0)
    has_locals = model_spec(name).has_locals
    opts = {"global_size": args.global_size}
    if has_locals:
        opts.update(local_size=args.local_size, crop_fraction=args.crop_fraction)
    model = build_model(name, **opts).to(device)  # local nets in the loop form
    return optimize(model, device, impl if has_locals else "loop").train(train)


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory so far: CUDA max allocated, or the process's peak RSS on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def cpu_name() -> str:
    """The CPU's model name and core count."""
    return f"{cpu_model()} ({os.cpu_count()} cores)"
