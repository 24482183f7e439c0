"""Which path evaluates a trained model (`--precision`), why, and the record of it (docs/DESIGN.md §6).

`auto` (the default) takes the fastest path that is known to be accurate on this device:

- CUDA (and MPS): the model's own forward in float32, as evaluation always ran there (`eager`);
  the deploy paths of `perf/deploy.py` are CPU-only.
- CPU: the first of `AUTO_ORDER` (int8, then bf16: fastest first) that this CPU runs fast AND that
  passed its accuracy check (`perf/path_check.py`: few flipped decisions and no large probability
  change against fp32, on at least `POOL_MIN` faces); otherwise `fp32` (BatchNorm folded,
  channels_last, `inference_mode`: the exact model up to rounding). int8 runs fast where torch has
  its x86 kernels and the CPU has AVX2 (VNNI is faster still); bf16 where the CPU computes bf16
  natively (AVX512-BF16, AMX-BF16, Arm BF16): emulated bf16 is slower than fp32, so it is never a
  candidate there.

`eager` (the reference), `fp32`, `bf16`, `mixed` and `int8` force a path; a forced path is not
checked (the record says so). The choice is a pure function of its inputs (`choose_path`), so every
branch is tested on any machine by passing the capability answers and the check results in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..method.models import MFJLE, ResNet18Baseline
from .deploy import METHODS, optimize_for_cpu
from .path_check import check_summary

#: `--precision` choices: `auto`, the model's own forward, then the deploy methods.
PRECISION_CHOICES = ("auto", "eager") + METHODS

#: The paths `auto` may take on a CPU besides fp32, fastest first. Measured at batch 32 on three
#: CPUs (`benchmarks/bench.py`, docs/SPEED.md): int8 ran faster than bf16 and fp32 on every one
#: (Zen 4 with AVX512-BF16 at 224 px: int8 8.0, bf16 15.4, fp32 28.9 ms/image). `mixed` is left to
#: `--precision`: where int8 passes it is slower, and where int8 fails its int8 local nets may too.
AUTO_ORDER = ("int8", "bf16")

#: Capability names that mean native bf16 arithmetic (x86: AVX512-BF16, AMX; Arm: BF16, SVE-BF16).
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16", "sve_bf16")

#: Instruction sets the x86 int8 kernels (fbgemm, oneDNN) use, best first; below AVX2 they fall back to slow code.
INT8_ISA_FLAGS = (("avx512_vnni", "avx512_vnni"), ("avx512_f", "avx512f"), ("avx2", "avx2"))

#: Paths that need calibration images (int8 observers).
NEEDS_CALIBRATION = ("int8", "mixed")


def _cpu_flags() -> set[str] | None:
    """The kernel's CPU flags (Linux /proc/cpuinfo), or None where there is no such file."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    return set(" ".join(line for line in text.splitlines() if line.startswith(("flags", "Features"))).split())


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
    flags = _cpu_flags()
    if flags is None:
        return (
            False,
            "no CPU capability query here (torch has no get_capabilities, no /proc/cpuinfo): assumed no native bf16",
        )
    found = [f for f in ("avx512_bf16", "amx_bf16", "bf16") if f in flags]
    return bool(found), "/proc/cpuinfo: " + (", ".join(found) if found else "no avx512_bf16/amx_bf16/bf16")


def quantized_engines() -> list[str]:
    """The int8 engines this torch build has (`torch.backends.quantized.supported_engines`)."""
    return list(torch.backends.quantized.supported_engines)


def fast_int8() -> tuple[bool, str]:
    """(True if torch's x86 int8 kernels run fast on this CPU, what was found): the x86 engine and at least AVX2."""
    if "x86" not in quantized_engines():
        return False, "torch has no x86 quantized engine here (fbgemm/oneDNN)"
    get = getattr(torch.cpu, "get_capabilities", None)
    if get is not None:
        caps, source = get(), "torch.cpu.get_capabilities"
        isa = next((name for name, _ in INT8_ISA_FLAGS if caps.get(name) is True), None)
    else:
        flags, source = _cpu_flags(), "/proc/cpuinfo"
        isa = None if flags is None else next((name for name, flag in INT8_ISA_FLAGS if flag in flags), None)
    if isa is None:
        return False, f"{source}: no avx2 (the x86 int8 kernels need it)"
    return True, f"{source}: {isa} (x86 int8 kernels)"


def cpu_capabilities() -> dict[str, tuple[bool, str]]:
    """For each path of `AUTO_ORDER`, whether this CPU runs it fast, and what answered."""
    return {"int8": fast_int8(), "bf16": native_bf16()}


#: Why a path of `AUTO_ORDER` is no candidate on a CPU that lacks what it needs.
_NOT_FAST = {"int8": "no fast int8 kernels", "bf16": "no native bf16 (emulated bf16 is slower than fp32)"}


def deployable(model: nn.Module) -> bool:
    """True for the models `optimize_for_cpu` knows (MF-JLE and the single ResNet-18)."""
    return isinstance(model, (MFJLE, ResNet18Baseline))


def choose_path(
    requested: str,
    device: torch.device,
    supported: bool,
    capable: Mapping[str, tuple[bool, str]],
    check: Callable[[str], dict[str, Any] | None] | None = None,
) -> dict[str, Any]:
    """The path a trained model is evaluated with, as a JSON-ready record (`path`, `requested`, `device`, `reason`,
    ...).

    `supported`: the model has deploy paths (`deployable`); `capable`: for each path of `AUTO_ORDER`,
    whether this CPU runs it fast and what answered (`cpu_capabilities()`; a path left out is not);
    `check(path)`: runs (or reads) that path's accuracy check against fp32 and returns its record
    with `passed` (`path_check.compare_to_reference`), or None when there is none. Under `auto` on a
    CPU every capable path is checked (all are recorded; `predict` reads them later), and the first
    of `AUTO_ORDER` that passed is taken.
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
    answers = {p: capable.get(p, (False, "not asked")) for p in AUTO_ORDER}
    record["capable"] = {p: {"fast": bool(ok), "found": source} for p, (ok, source) in answers.items()}
    checks = {p: (check(p) if check is not None else None) for p, (ok, _) in answers.items() if ok}
    record["checked"] = [p for p, c in checks.items() if c is not None]
    record["checks"] = checks
    said = []
    for p in AUTO_ORDER:
        if not answers[p][0]:
            said.append(f"{p} not a candidate: {_NOT_FAST[p]} ({answers[p][1]})")
        elif checks[p] is None:
            said.append(
                f"{p}: no check at hand (it needs the run's labelled data; for bf16 one recorded in metrics.json does)"
            )
        elif checks[p]["passed"]:
            chosen = f"{p} passed its check ({check_summary(checks[p])}), the fastest path here that did"
            return {**record, "path": p, "reason": "; ".join([*said, chosen])}
        else:
            said.append(f"{p} FAILED its check ({check_summary(checks[p])})")
    return {**record, "path": "fp32", "reason": "; ".join([*said, "so fp32 with folded BatchNorm"])}


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
