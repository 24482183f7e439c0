"""The one record form every dataset loader produces (image reference, labels, landmarks, split)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..constants import NUM_LABELS

LANDMARK_SOURCES = ("dataset", "mtcnn", "fallback")


@dataclass
class FaceRecord:
    """One face: where its pixels are, its six labels (canonical order) and optional extras.

    Exactly one of `image` (in-memory uint8 HxWx3, e.g. synthetic or FER2013 pixel strings) or
    `image_path` (a file; with `zip_member`, a member of the zip archive at `image_path`) is set.
    """

    id: str
    labels: np.ndarray  # (6,) float32 in {0, 1}, canonical EMOTIONS order
    image_path: Path | None = None
    zip_member: str | None = None
    image: np.ndarray | None = None
    distribution: np.ndarray | None = None  # (6,) float32 shares/ratings, canonical order
    landmarks: np.ndarray | None = None  # (5,2) float32 (x, y) pixels of the source image
    landmark_source: str | None = None  # 'dataset' when shipped; set to 'mtcnn'/'fallback' later
    subject: str | None = None  # identity, where the dataset has one (JAFFE: 'KA')
    official_split: str | None = None  # 'train' | 'val' | 'test' where the dataset has one
    aligned: bool = False  # already on the canonical template (RAF-ML aligned, synthetic)
    source: str = ""  # where it came from, for messages: a path or 'file:line'

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.float32).reshape(NUM_LABELS)
        if self.distribution is not None:
            self.distribution = np.asarray(self.distribution, dtype=np.float32).reshape(NUM_LABELS)
        if self.landmarks is not None:
            self.landmarks = np.asarray(self.landmarks, dtype=np.float32).reshape(5, 2)
        if not self.source:
            self.source = str(self.image_path) if self.image_path is not None else self.id


@dataclass
class DatasetIndex:
    """A loaded dataset before decoding: its records plus every problem met while reading labels."""

    name: str
    records: list[FaceRecord]
    root: Path | None = None
    problems: list[str] = field(default_factory=list)  # 'file:line: reason', incl. unmatched keys
    skipped: int = 0  # records dropped because of problems (only with skip_bad)
    notes: list[str] = field(default_factory=list)  # informative counts (e.g. neutral rows kept)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def labels(self) -> np.ndarray:
        """(N, 6) float32 label matrix."""
        if not self.records:
            return np.zeros((0, NUM_LABELS), np.float32)
        return np.stack([r.labels for r in self.records])
