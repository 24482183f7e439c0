"""Pixels as the networks take them: uint8 -> [0, 1] -> ImageNet-normalised (Section IV.B), and back for display.

The crops are cut from the normalised image (`display.crops_for_display` undoes it for pictures);
the training batch path (`training/batches.py`) and every other caller import it from here.
"""

from __future__ import annotations

import torch

from ..constants import IMAGENET_MEAN, IMAGENET_STD


def to_unit_float(images_u8: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 (B,3,H,W) -> float32 in [0, 1] on the device (augmentation works on this scale)."""
    return images_u8.to(device, non_blocking=True).float().div_(255.0)


def _imagenet_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ImageNet mean and std as (1,3,1,1) tensors on `x`'s device, in its dtype."""
    mean = torch.tensor(IMAGENET_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return mean, std


def imagenet_normalise(x: torch.Tensor) -> torch.Tensor:
    """Subtract the ImageNet mean, divide by its std (Section IV.B); the one place it is done."""
    mean, std = _imagenet_stats(x)
    return (x - mean) / std


def imagenet_denormalise(x: torch.Tensor) -> torch.Tensor:
    """The inverse of `imagenet_normalise`: normalised images back to [0, 1] (for display)."""
    mean, std = _imagenet_stats(x)
    return x * std + mean
