"""The ResNet-18 backbone (paper Fig. 3), its initial weights, and the global branch's resize."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from ..constants import NUM_LABELS


def make_resnet18(num_labels: int = NUM_LABELS) -> nn.Module:
    """torchvision's ResNet-18 (Fig. 3) with a `num_labels`-way head, randomly initialised."""
    return torchvision.models.resnet18(weights=None, num_classes=num_labels)


def load_backbone_weights(nets: Sequence[nn.Module], pretrained: bool = False, weights: str | Path | None = None) -> str:
    """Load ImageNet weights (all but the head) into each net; on failure warn once, keep random init.

    Returns a short description of what was loaded ('random', 'imagenet', or the file).
    """
    if not pretrained and weights is None:
        return "random"
    try:
        if weights is not None:
            state = torch.load(Path(weights), map_location="cpu", weights_only=True)
            if isinstance(state, dict) and "state_dict" in state:
                state = state["state_dict"]
            origin = str(weights)
        else:
            state = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.get_state_dict(progress=False)
            origin = "imagenet"
        if not isinstance(state, dict):
            raise ValueError("file does not hold a state dict")
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        for net in nets:
            missing, unexpected = net.load_state_dict(state, strict=False)
            if unexpected or any(not k.startswith("fc.") for k in missing):
                raise ValueError(f"not ResNet-18 weights (unexpected keys: {list(unexpected)[:3]})")
        return origin
    except Exception as exc:  # no internet, bad file: one line, never a traceback (docs/DESIGN.md §2)
        what = weights if weights is not None else "ImageNet weights"
        print(f"warning: could not load {what} ({type(exc).__name__}: {str(exc)[:120]}); using random init", file=sys.stderr)
        return "random"


def resize_global(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize the aligned face to the global branch's input side S_g (no-op when already S_g)."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
