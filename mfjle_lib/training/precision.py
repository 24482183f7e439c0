"""Mixed precision on CUDA: which dtype, autocast, and the gradient scaler."""
from __future__ import annotations

from contextlib import nullcontext

import torch


def autocast_for(device: torch.device, enabled: bool):
    """bf16 autocast on CUDA (fp16 where bf16 is missing); nothing elsewhere."""
    if device.type != "cuda" or not enabled:
        return nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)
