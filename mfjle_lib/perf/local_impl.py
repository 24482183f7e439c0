"""Which form of the five local nets runs faster on a device (loop or fused), and timing both."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

import torch

from ..constants import DEFAULT_LOCAL_SIZE, NUM_LANDMARKS
from ..method.models import LoopLocalNets
from .fused_locals import IMPLS, convert_local_nets

#: The CPU choice and the measurement behind it (kept together; `benchmarks/bench.py` reports the
#: current numbers as `mfjle_naive_*` / `mfjle_fused_*` and `process_cpu_*`).
CPU_RULE = "loop"


CPU_RULE_NOTE = (
    "2-core AMD EPYC (Zen 4, AVX-512), torch 2.14.1, the five local nets at batch 32, S_l = 64, "
    "process CPU time on one thread (robust on a shared machine): inference loop 0.54 s vs fused "
    "0.72 s (NCHW) / 0.97 s (channels_last); forward+backward loop 1.8 s vs fused 2.9-3.4 s. "
    "oneDNN's grouped convolutions do more work per FLOP than five dense ones, so the loop is the "
    "CPU default. (With two threads on an oversubscribed machine the loop's 5x more parallel "
    "regions can make it slower in wall time; bench.py reports both.)"
)


_PICK_CACHE: dict[tuple[str, int, int, str], str] = {}


# ---------------------------------------------------------------------------------------------
# Which form is faster
# ---------------------------------------------------------------------------------------------


def pick_local_impl(
    device: torch.device | str,
    batch_size: int = 32,
    local_size: int = DEFAULT_LOCAL_SIZE,
    dtype: torch.dtype | None = None,
) -> str:
    """The faster implementation of the five local nets on this device ('loop' or 'fused').

    Order: `MFJLE_LOCAL_IMPL` env override; CPU -> `CPU_RULE` (measured, see module docstring);
    CUDA -> a one-off timing of both forms at the run's batch size, S_l and autocast `dtype`
    (None: float32), cached per device and settings for the process; else 'loop'.
    """
    env = os.environ.get("MFJLE_LOCAL_IMPL", "").strip().lower()
    if env in IMPLS:
        return env
    device = torch.device(device)
    if device.type == "cpu":
        return CPU_RULE
    if device.type != "cuda":
        return "loop"
    if device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    key = (str(device), batch_size, local_size, str(dtype))
    if key not in _PICK_CACHE:
        try:
            times = time_local_impls(device, batch_size=batch_size, local_size=local_size, dtype=dtype)
            _PICK_CACHE[key] = min(times, key=times.get)
        except torch.OutOfMemoryError:  # a busy card: the loop needs less memory and always works
            torch.cuda.empty_cache()
            _PICK_CACHE[key] = "loop"
    return _PICK_CACHE[key]


def time_local_impls(
    device: torch.device | str,
    batch_size: int = 32,
    local_size: int = DEFAULT_LOCAL_SIZE,
    repeats: int = 5,
    train: bool = True,
    impls: Iterable[str] = IMPLS,
    dtype: torch.dtype | None = None,
) -> dict[str, float]:
    """Median seconds per step of each form (forward, plus backward when `train`), both in one run.

    Runs under `fork_rng`, so the global RNG state (and any seeded run) is left untouched. Uses
    channels_last and autocast to `dtype` (None: float32), as the trainer does.
    """
    device = torch.device(device)
    devices = [device] if device.type == "cuda" else []

    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(0)
        loop = LoopLocalNets().to(device).to(memory_format=torch.channels_last)
        forms = {"loop": loop, "fused": convert_local_nets(loop, "fused")}
        x = torch.randn(batch_size, NUM_LANDMARKS, 3, local_size, local_size, device=device)
        results: dict[str, float] = {}
        for name in impls:
            net = forms[name].train(train)
            samples = []
            for i in range(repeats + 2):  # two warm-up steps (cuDNN algorithm choice, allocator)
                _sync(device)
                t0 = time.perf_counter()
                with (
                    torch.set_grad_enabled(train),
                    torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None),
                ):
                    out = net(x)
                if train:
                    out.float().square().mean().backward()
                _sync(device)
                if i >= 2:
                    samples.append(time.perf_counter() - t0)
            results[name] = sorted(samples)[len(samples) // 2]
            net.zero_grad(set_to_none=True)
    return results


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
