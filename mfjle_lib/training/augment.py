"""On-device augmentation that moves the landmarks with the pixels (off in the paper's recipe).

Random numbers come from a CPU `torch.Generator`, so a run is the same on every device and a
resumed run replays exactly. Pixel convention: continuous coordinates, pixel j covers [j, j+1)
(the convention of `method/crops.py`), which is `align_corners=False` in normalised grid coordinates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..method.crops import hflip


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random transforms."""

    flip_prob: float = 0.5
    max_rotation_deg: float = 10.0
    scale_range: tuple[float, float] = (0.92, 1.08)
    max_shift: float = 0.05  # fraction of the image side
    brightness: float = 0.2  # multiplicative jitter ±
    contrast: float = 0.2


def augment_batch(
    images: torch.Tensor,
    landmarks: torch.Tensor,
    generator: torch.Generator,
    cfg: AugmentConfig = AugmentConfig(),
    rows: tuple[int, int, int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flip (with the left/right landmark swap), rotate/scale/shift, jitter brightness/contrast.

    `images` are float in [0, 1], (B,3,H,W); `landmarks` (B,5,2) pixels. Returns new tensors.
    `rows=(start, stop, n)`: the batch is rows [start, stop) of a global batch of n (one rank's part
    under torchrun): the random numbers of all n rows are drawn and this part's are used, so every
    rank's generator stays in step and the images get what a one-process run would give them.
    """
    b, _, h, w = images.shape
    dev = images.device
    start, stop, n = rows if rows is not None else (0, b, b)
    # Draw every random number first, on the CPU generator, in a fixed order.
    flip = (torch.rand(n, generator=generator) < cfg.flip_prob)[start:stop]
    angle = ((torch.rand(n, generator=generator) * 2 - 1) * math.radians(cfg.max_rotation_deg))[start:stop]
    lo, hi = cfg.scale_range
    scale = (lo + torch.rand(n, generator=generator) * (hi - lo))[start:stop]
    shift = ((torch.rand(n, 2, generator=generator) * 2 - 1) * cfg.max_shift * 2)[start:stop]  # normalised units span 2
    bright = (1 + (torch.rand(n, generator=generator) * 2 - 1) * cfg.brightness)[start:stop]
    contrast = (1 + (torch.rand(n, generator=generator) * 2 - 1) * cfg.contrast)[start:stop]

    images = images.clone()
    landmarks = landmarks.clone()
    if flip.any():
        idx = flip.nonzero().flatten().to(dev)
        fi, fl = hflip(images[idx], landmarks[idx])
        images[idx] = fi
        landmarks[idx] = fl

    # Forward map in normalised coords: p_out = s R p_in + t. affine_grid wants the inverse.
    cos, sin = torch.cos(angle), torch.sin(angle)
    fwd = torch.zeros(b, 2, 3)
    fwd[:, 0, 0], fwd[:, 0, 1] = scale * cos, -scale * sin
    fwd[:, 1, 0], fwd[:, 1, 1] = scale * sin, scale * cos
    fwd[:, :, 2] = shift
    lin_inv = torch.linalg.inv(fwd[:, :, :2])
    inv = torch.cat([lin_inv, -(lin_inv @ fwd[:, :, 2:])], dim=2)
    grid = F.affine_grid(inv.to(dev, images.dtype), list(images.shape), align_corners=False)
    images = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)

    size = torch.tensor([w, h], dtype=landmarks.dtype, device=dev)
    norm = landmarks / size * 2 - 1
    fwd_d = fwd.to(dev, landmarks.dtype)
    moved = torch.einsum("bij,bkj->bki", fwd_d[:, :, :2], norm) + fwd_d[:, None, :, 2]
    landmarks = (moved + 1) / 2 * size

    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    c = contrast.to(dev, images.dtype).view(b, 1, 1, 1)
    br = bright.to(dev, images.dtype).view(b, 1, 1, 1)
    images = ((images - mean) * c + mean) * br
    return images.clamp_(0, 1), landmarks
