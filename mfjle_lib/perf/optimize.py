"""Speed at the method's edge: a model in its faster form for a device, with the same weights and the same state dict.

The trainer (`training/trainer.py`) and the evaluation of a finished run (`inference/evaluate.py`)
call `optimize` on the plain model the registry builds; the method's classes know nothing of it.
What changes is how the model computes (the five local nets as one grouped network, the memory
layout of each ResNet), never what: `model.state_dict()` keeps the method's keys and values, so it
is the checkpoint format whichever form trained or evaluates it.
"""

from __future__ import annotations

import torch
from torch import nn

from .fused_locals import IMPLS, set_local_impl
from .memory_format import plan_memory_format


def optimize(model: nn.Module, device: torch.device | str | None = None, local_impl: str = "loop") -> nn.Module:
    """`model` with its local nets (if any) in form `local_impl` and its layout planned for `device`, in place;
    returns it.

    'fused' applies to a model with local nets; 'loop' (and 'auto', not yet decided) leaves them as built.
    Call it before an optimiser holds the parameters: the fused form replaces the local-net modules.
    """
    if local_impl not in (*IMPLS, "auto"):
        raise ValueError(f"unknown local implementation {local_impl!r}; choose one of {IMPLS}")
    if local_impl == "fused":
        set_local_impl(model, "fused")
    return plan_memory_format(model, device)
