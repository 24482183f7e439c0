"""Train/val/test splits: the paper's seeded 60/20/20, the official partition, or subject-independent.

Every scheme returns sorted int64 index arrays under 'train', 'val', 'test' that together hold
every index exactly once. Splits depend only on the seed and the record order, never on the
global RNG, so the split seed stays independent of the training seed (docs/DESIGN.md §4).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError

SCHEMES = ("paper", "official", "subject")


PARTS = ("train", "val", "test")


#: The paper's proportions (Section IV.B): 60% train, 20% validation, 20% test.
PAPER_FRACTIONS = (0.6, 0.2, 0.2)


#: Where an official partition has no validation part (RAF-ML: train/test only), this share of
#: the official training images becomes validation (seeded); the official test part is untouched.
OFFICIAL_VAL_FRACTION = 0.2


def _finish(parts: dict[str, np.ndarray | list[int]]) -> dict[str, np.ndarray]:
    """Sorted int64 arrays for the three parts."""
    return {p: np.sort(np.asarray(parts.get(p, []), dtype=np.int64)) for p in PARTS}


def paper_split(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded random 60/20/20 split of n indices (JAFFE: 128/43/42)."""
    order = np.random.default_rng(seed).permutation(n)
    n_train = int(round(PAPER_FRACTIONS[0] * n))
    n_val = int(round(PAPER_FRACTIONS[1] * n))
    cut = n_train + n_val
    return _finish({"train": order[:n_train], "val": order[n_train:cut], "test": order[cut:]})


def official_split(official_splits: Sequence[str | None], seed: int = 0) -> dict[str, np.ndarray]:
    """The dataset's own partition; validation carved from train (seeded) where it has none."""
    n = len(official_splits)
    missing = sum(1 for s in official_splits if s is None)
    if n == 0 or missing == n:
        raise ConfigError("this dataset has no official split; use --split-scheme paper or subject")
    if missing:
        raise ConfigError(f"{missing} of {n} images have no official split; use --split-scheme paper")
    unknown = sorted({s for s in official_splits if s not in PARTS})
    if unknown:
        raise ConfigError(f"unknown official split name(s) {unknown}; expected train, val, test")
    parts = {p: np.flatnonzero(np.asarray([s == p for s in official_splits])) for p in PARTS}
    if len(parts["test"]) == 0:
        raise ConfigError("the official split has no test part; use --split-scheme paper")
    if len(parts["val"]) == 0:
        train = np.random.default_rng(seed).permutation(parts["train"])
        n_val = int(round(OFFICIAL_VAL_FRACTION * len(train)))
        parts["val"], parts["train"] = train[:n_val], train[n_val:]
    return _finish(parts)


def subject_split(subjects: Sequence[str | None], seed: int = 0) -> dict[str, np.ndarray]:
    """Subject-independent split: whole subjects, shuffled, filled to about 60/20/20 of the images."""
    n = len(subjects)
    if n == 0 or any(s is None for s in subjects):
        raise ConfigError("subject split needs a subject for every image; this dataset has none "
                          "(use --split-scheme paper)")
    names = sorted(set(subjects))  # sorted first, so the shuffle depends only on the seed
    if len(names) < 3:
        raise ConfigError(f"subject split needs at least 3 subjects, found {len(names)}")
    order = list(np.random.default_rng(seed).permutation(len(names)))
    sizes = {name: 0 for name in names}
    for s in subjects:
        sizes[s] += 1
    # Each subject goes to the part its middle image falls in, so parts land near 60/20/20 of the
    # images (JAFFE's 10 similar-sized subjects give 6/2/2).
    bounds = np.cumsum(PAPER_FRACTIONS)[:2] * n
    assign: dict[str, list[str]] = {p: [] for p in PARTS}
    done = 0
    for i in order:
        name = names[i]
        middle = done + sizes[name] / 2
        assign[PARTS[int(np.searchsorted(bounds, middle, side="right"))]].append(name)
        done += sizes[name]
    # With very uneven subjects a part can end up empty: move one subject into it.
    for part in ("test", "val"):
        if not assign[part]:
            donor = max(assign, key=lambda p: len(assign[p]))
            assign[part].append(assign[donor].pop())
    where = {name: part for part, group in assign.items() for name in group}
    return _finish({p: [i for i, s in enumerate(subjects) if where[s] == p] for p in PARTS})


def _meta(data: Any) -> tuple[list[str | None], list[str | None]]:
    """(official_splits, subjects) from a DatasetIndex or anything with those two lists."""
    if hasattr(data, "records"):
        return [r.official_split for r in data.records], [r.subject for r in data.records]
    if hasattr(data, "official_splits") and hasattr(data, "subjects"):
        return list(data.official_splits), list(data.subjects)
    raise TypeError("make_splits needs a DatasetIndex or an object with official_splits and subjects")


def make_splits(records_or_meta: Any, scheme: str = "paper", seed: int = 0) -> dict[str, np.ndarray]:
    """Split a DatasetIndex / PreparedDataset into {'train','val','test'} sorted index arrays."""
    official, subjects = _meta(records_or_meta)
    if scheme == "paper":
        return paper_split(len(official), seed)
    if scheme == "official":
        return official_split(official, seed)
    if scheme == "subject":
        return subject_split(subjects, seed)
    raise ConfigError(f"unknown split scheme {scheme!r}; choose one of: {', '.join(SCHEMES)}")


def describe_splits(splits: dict[str, np.ndarray]) -> dict[str, int]:
    """Number of images per part, e.g. {'train': 128, 'val': 43, 'test': 42}."""
    return {part: int(len(splits.get(part, ()))) for part in PARTS}
