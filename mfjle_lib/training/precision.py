"""Mixed precision: which dtype a run trains in, autocast, and the fp16 gradient scaler."""
from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch

#: Names of the precisions a run can record ('auto' is resolved once per run, like `local_impl`).
PRECISIONS = ("auto", "float32", "bfloat16", "float16")

_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def precision_for_capability(capability: tuple[int, int] | None) -> str:
    """bf16 on CUDA compute capability >= 8.0, fp16 below, float32 without a capability.

    `torch.cuda.is_bf16_supported()` answers True on sm_75 (a T4) because bf16 is emulated there:
    every convolution then leaves cuDNN for a slow path. Only Ampere and later run bf16 natively.
    """
    if capability is None:
        return "float32"
    return "bfloat16" if tuple(capability) >= (8, 0) else "float16"


def choose_precision(device: torch.device, amp: bool = True) -> str:
    """The precision a run on `device` trains in: by the TRAINING device's capability on CUDA, float32 elsewhere."""
    if not amp or device.type != "cuda":
        return "float32"
    return precision_for_capability(torch.cuda.get_device_capability(device))


def autocast_for(device: torch.device, precision: str) -> AbstractContextManager:
    """Autocast to `precision` on `device` (for the training forward only); nothing for float32."""
    if precision not in PRECISIONS[1:]:
        raise ValueError(f"autocast_for needs a decided precision {PRECISIONS[1:]}, got {precision!r}")
    dtype = _DTYPES.get(precision)
    if dtype is None:
        return nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def make_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """A GradScaler that is enabled only for fp16.

    fp16 has a narrow exponent: the local modules' gradients (BCE ~1e-3 per logit x λ = 0.01)
    underflow to zero without scaling. bf16 shares float32's exponent and needs none.
    """
    return torch.amp.GradScaler(device.type, enabled=precision == "float16")


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The torch dtype of a mixed precision, None for float32."""
    return _DTYPES.get(precision)
