"""The five crops as the model sees them, as pictures: cut from the normalised face, then shown in colour."""

from __future__ import annotations

import numpy as np
import torch

from ..method.crops import cut_crops
from .normalise import imagenet_denormalise, imagenet_normalise, to_unit_float


def crops_for_display(
    image: np.ndarray, landmarks: np.ndarray, crop_fraction: float, out_size: int
) -> list[np.ndarray]:
    """The five crops the model sees, as uint8 HxWx3 arrays (same op, on the normalised image).

    Cutting happens in normalised space exactly as in the model, then is undone for display, so
    regions outside the face show the ImageNet mean colour the network gets there.
    """
    # np.array copies: a read-only memmap face would make torch.from_numpy warn.
    x = imagenet_normalise(to_unit_float(torch.from_numpy(np.array(image)).permute(2, 0, 1)[None], torch.device("cpu")))
    lm = torch.as_tensor(np.asarray(landmarks, np.float32))[None]
    crops = cut_crops(x, lm, crop_fraction, out_size)[0]  # (5,3,S,S)
    crops = imagenet_denormalise(crops).mul(255.0).round().clamp(0, 255).to(torch.uint8)
    return [np.ascontiguousarray(c.permute(1, 2, 0).numpy()) for c in crops]
