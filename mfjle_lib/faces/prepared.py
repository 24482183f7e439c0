"""A prepared dataset: aligned uint8 faces, landmarks and labels in memory, with its summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..constants import EMOTIONS
from ..data.records import LANDMARK_SOURCES

#: Bump when decoding, alignment or the file layout changes: old caches are then ignored.
CACHE_VERSION = 1


SPLIT_NAMES = ("train", "val", "test")


@dataclass
class PreparedDataset:
    """A decoded, aligned dataset: uint8 images (memmap), landmarks in pixels of R, labels, bookkeeping."""

    name: str
    size: int  # R
    images: np.ndarray  # (N, R, R, 3) uint8, memory-mapped from data/cache/<key>/
    landmarks: np.ndarray  # (N, 5, 2) float32, pixels of the aligned R-image
    labels: np.ndarray  # (N, 6) float32
    distributions: np.ndarray | None
    ids: list[str]
    subjects: list[str | None]
    official_splits: list[str | None]
    landmark_sources: list[str]  # 'dataset' | 'mtcnn' | 'fallback' per image
    problems: list[str]
    skipped: int
    cache_path: Path | None = None  # the cache folder (None for in-memory subsets)
    _tensors: tuple | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.ids)

    def summary(self, splits: dict[str, np.ndarray] | None = None) -> dict:
        """The `data --json` object (docs/DESIGN.md §4); split counts from `splits`, else the official split."""
        positives = self.labels >= 0.5
        if splits is not None:
            split_counts = {k: int(len(splits.get(k, ()))) for k in SPLIT_NAMES}
        else:
            split_counts = {k: sum(1 for s in self.official_splits if s == k) for k in SPLIT_NAMES}
        return {
            "dataset": self.name,
            "num_images": len(self),
            "source_size": int(self.size),
            "label_counts": {e: int(positives[:, i].sum()) for i, e in enumerate(EMOTIONS)},
            "label_cardinality": float(positives.sum(1).mean()) if len(self) else 0.0,
            "splits": split_counts,
            "landmarks": {s: sum(1 for x in self.landmark_sources if x == s) for s in LANDMARK_SOURCES},
            "problems": list(self.problems),
            "skipped": int(self.skipped),
        }

    def subset(self, indices) -> PreparedDataset:
        """Rows `indices` of every array and list (images are read from the memmap into memory)."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        pick = lambda xs: [xs[i] for i in idx]  # noqa: E731
        return PreparedDataset(
            name=self.name,
            size=self.size,
            images=self.images[idx],
            landmarks=self.landmarks[idx],
            labels=self.labels[idx],
            distributions=None if self.distributions is None else self.distributions[idx],
            ids=pick(self.ids),
            subjects=pick(self.subjects),
            official_splits=pick(self.official_splits),
            landmark_sources=pick(self.landmark_sources),
            problems=list(self.problems),
            skipped=self.skipped,
            cache_path=None,
        )

    def to_tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(images uint8 (N,3,R,R), landmarks float32 (N,5,2), labels float32 (N,6)); loaded once."""
        if self._tensors is None:
            # One permuted copy out of the memmap; later calls reuse it.
            images = torch.from_numpy(np.ascontiguousarray(np.asarray(self.images).transpose(0, 3, 1, 2)))
            landmarks = torch.from_numpy(np.array(self.landmarks, dtype=np.float32))
            labels = torch.from_numpy(np.array(self.labels, dtype=np.float32))
            self._tensors = (images, landmarks, labels)
        return self._tensors
