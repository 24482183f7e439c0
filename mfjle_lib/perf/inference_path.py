"""Which path evaluates a trained model (`--precision`), why, and the record of it (docs/DESIGN.md §6).

`auto` (the default) takes the fastest path that is known to be accurate on this device:

- CUDA (and MPS): the model's own forward in float32, as evaluation always ran there (`eager`);
  the deploy paths of `perf/deploy.py` are CPU-only.
- CPU: `bf16` when the CPU computes bf16 natively (AVX512-BF16, AMX-BF16, Arm BF16) AND bf16 passed
  the accuracy check on labelled data (micro-F1 within `DEPLOY_TOLERANCE` of fp32); otherwise
  `fp32` (BatchNorm folded, channels_last, `inference_mode`: the exact model up to rounding).
  Without native bf16, bf16 is emulated and slower than fp32, so it is never picked.

`eager` (the reference), `fp32`, `bf16`, `mixed` and `int8` force a path; a forced path is not
checked (the record says so). The choice is a pure function of its inputs (`choose_path`), so every
branch, the bf16 one included, is tested on any machine by passing the capability answer in.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..method.models import MFJLE, ResNet18Baseline
from .deploy import METHODS, optimize_for_cpu

#: `--precision` choices: `auto`, the model's own forward, then the deploy methods.
PRECISION_CHOICES = ("auto", "eager") + METHODS

#: The largest |micro-F1(path) - micro-F1(fp32)| at which a faster path counts as accurate
#: (`benchmarks/check_deploy.py` applies the same limit to every method).
DEPLOY_TOLERANCE = 0.005

#: Capability names that mean native bf16 arithmetic (x86: AVX512-BF16, AMX; Arm: BF16, SVE-BF16).
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16", "sve_bf16")

#: Paths that need calibration images (int8 observers).
NEEDS_CALIBRATION = ("int8", "mixed")


def native_bf16() -> tuple[bool, str]:
    """(True if this CPU computes bf16 natively, which query answered and what it found)."""
    get = getattr(torch.cpu, "get_capabilities", None)
    if get is not None:
        caps = get()
        found = [f for f in NATIVE_BF16_FLAGS if caps.get(f) is True]
        return bool(found), "torch.cpu.get_capabilities: " + (
            ", ".join(found) if found else "no avx512_bf16/amx_bf16/bf16"
        )
    # torch before get_capabilities: the kernel's flags (Linux). Note `_is_mkldnn_bf16_supported`
    # is not the question: it answers True for plain AVX-512, where bf16 is emulated.
    try:
        flags = set(
            " ".join(
                line
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith(("flags", "Features"))
            ).split()
        )
    except OSError:
        return (
            False,
            "no CPU capability query here (torch has no get_capabilities, no /proc/cpuinfo): assumed no native bf16",
        )
    found = [f for f in ("avx512_bf16", "amx_bf16", "bf16") if f in flags]
    return bool(found), "/proc/cpuinfo: " + (", ".join(found) if found else "no avx512_bf16/amx_bf16/bf16")


def deployable(model: nn.Module) -> bool:
    """True for the models `optimize_for_cpu` knows (MF-JLE and the single ResNet-18)."""
    return isinstance(model, (MFJLE, ResNet18Baseline))


def choose_path(
    requested: str,
    device: torch.device,
    supported: bool,
    native: tuple[bool, str],
    check: Callable[[], dict[str, Any] | None] | None = None,
) -> dict[str, Any]:
    """The path a trained model is evaluated with, as a JSON-ready record (`path`, `requested`, `device`, `reason`,
    ...).

    `supported`: the model has deploy paths (`deployable`); `native`: `native_bf16()`'s answer;
    `check`: runs (or reads) the bf16 accuracy check and returns its record with `passed`, or None
    when there is none; called only where bf16 would otherwise be picked.
    """
    if requested not in PRECISION_CHOICES:
        raise ConfigError(f"--precision must be one of {', '.join(PRECISION_CHOICES)}, got {requested!r}")
    record: dict[str, Any] = {"requested": requested, "device": device.type}
    if device.type != "cpu":
        if requested not in ("auto", "eager"):
            raise ConfigError(
                f"--precision {requested} is a CPU deploy path; on {device.type} use auto or eager (or --device cpu)"
            )
        return {
            **record,
            "path": "eager",
            "reason": f"{device.type}: the model's own forward in float32, as before (the deploy paths are CPU-only)",
        }
    if requested == "eager":
        return {
            **record,
            "path": "eager",
            "reason": "asked for (--precision eager): the model's own forward, the reference",
        }
    if not supported:
        if requested != "auto":
            raise ConfigError(
                f"--precision {requested}: the deploy paths cover resnet18 and mfjle only; use auto or eager"
            )
        return {
            **record,
            "path": "eager",
            "reason": "this model has no deploy path (resnet18 and mfjle only): the model's own forward",
        }
    if requested != "auto":
        return {**record, "path": requested, "reason": f"asked for (--precision {requested}); accuracy not checked"}
    is_native, source = native
    record.update(native_bf16=bool(is_native), bf16_query=source)
    if not is_native:
        return {**record, "path": "fp32", "reason": "no native bf16 on this CPU: fp32 with folded BatchNorm"}
    result = check() if check is not None else None
    record["bf16_check"] = result
    if result is None:
        return {
            **record,
            "path": "fp32",
            "reason": "native bf16, but no accuracy check for this model (it needs labelled data): "
            "fp32 with folded BatchNorm",
        }
    change = f"micro-F1 change {result['micro_f1_change']:+.4f} on {result['split']} (limit {DEPLOY_TOLERANCE})"
    if result["passed"]:
        return {**record, "path": "bf16", "reason": f"native bf16 passed the accuracy check: {change}"}
    return {
        **record,
        "path": "fp32",
        "reason": f"native bf16 FAILED the accuracy check: {change}; fp32 with folded BatchNorm",
    }


def build_path(
    model: nn.Module, path: str, calibration: list[tuple[torch.Tensor, torch.Tensor]] | None = None
) -> nn.Module:
    """The model for a chosen path: itself for `eager`, else its `optimize_for_cpu` copy (the input is not changed)."""
    if path == "eager":
        return model
    if path in NEEDS_CALIBRATION and not calibration:
        raise ConfigError(
            f"--precision {path} needs calibration images from the training split; here there are none (use fp32 or "
            "bf16)"
        )
    return optimize_for_cpu(model, path, calibration=calibration)


def path_line(record: dict[str, Any]) -> str:
    """The one line that says which path ran and why (printed by evaluate, predict and train)."""
    return f"inference path: {record['path']} ({record['reason']})"
