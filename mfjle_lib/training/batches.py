"""The data the trainer sees: a prepared dataset on the device, its splits, and one batch path."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..constants import IMAGENET_MEAN, IMAGENET_STD
from ..data.registry import load_index
from ..data.splits import make_splits
from ..errors import ConfigError
from ..faces.prepare import prepare_dataset
from .config import TrainConfig


@dataclass
class DataBundle:
    """A prepared dataset, its splits, and its tensors on the storage device."""

    prepared: Any  # cache.PreparedDataset
    splits: dict[str, np.ndarray]
    images: torch.Tensor  # (N,3,R,R) uint8
    landmarks: torch.Tensor  # (N,5,2) float32, pixels of R
    labels: torch.Tensor  # (N,6) float32

    @property
    def ids(self) -> list[str]:
        """Image ids in dataset order."""
        return list(self.prepared.ids)


def load_data(cfg: TrainConfig, device: torch.device | None = None, show_progress: bool = True) -> DataBundle:
    """Load, decode (cached), align and split the dataset named in `cfg`; keep it on `device` if it fits."""
    options: dict[str, Any] = {}
    if cfg.dataset == "synthetic":
        options = {"size": cfg.source_size}
        if cfg.num_images:
            options["num_images"] = cfg.num_images
    index = load_index(cfg.dataset, cfg.root, skip_bad=cfg.skip_bad, **options)
    prepared = prepare_dataset(index, size=cfg.source_size, skip_bad=cfg.skip_bad, show_progress=show_progress)
    splits = make_splits(prepared, cfg.split_scheme, cfg.split_seed)
    for part in ("train", "val", "test"):
        if len(splits[part]) == 0:
            raise ConfigError(f"the {part} split of {cfg.dataset} is empty ({len(prepared.ids)} images); use more images")
    images, landmarks, labels = prepared.to_tensors()
    device = device or torch.device("cpu")
    # Decoded uint8 images go to the device once when they fit in a quarter of its memory.
    if device.type == "cuda" and images.numel() < torch.cuda.get_device_properties(device).total_memory // 4:
        images, landmarks, labels = images.to(device), landmarks.to(device), labels.to(device)
    return DataBundle(prepared, splits, images, landmarks, labels)


def normalise(batch_u8: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 (B,3,H,W) -> float in [0, 1] on the device (normalisation follows augmentation)."""
    return batch_u8.to(device, non_blocking=True).float().div_(255.0)


def imagenet_normalise(x: torch.Tensor) -> torch.Tensor:
    """Subtract ImageNet mean, divide by std (Section IV.B)."""
    mean = torch.tensor(IMAGENET_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean) / std
