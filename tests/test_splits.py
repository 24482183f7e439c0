"""Splits: disjoint, complete, seeded; subject split keeps subjects whole; official uses the partition."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from mfjle_lib.data.records import DatasetIndex, FaceRecord
from mfjle_lib.data.registry import load_index
from mfjle_lib.data.splits import OFFICIAL_VAL_FRACTION, describe_splits, make_splits
from mfjle_lib.errors import ConfigError


@dataclass
class Meta:
    """Stands in for cache.PreparedDataset: only the lists make_splits reads."""

    ids: list[str]
    subjects: list[str | None]
    official_splits: list[str | None]
    problems: list[str] = field(default_factory=list)


def index_of(n: int, subjects=None, official=None) -> DatasetIndex:
    recs = [
        FaceRecord(
            id=str(i),
            labels=np.zeros(6),
            subject=None if subjects is None else subjects[i],
            official_split=None if official is None else official[i],
        )
        for i in range(n)
    ]
    return DatasetIndex("test", recs)


def check_partition(splits: dict[str, np.ndarray], n: int) -> None:
    assert set(splits) == {"train", "val", "test"}
    for part in splits.values():
        assert part.dtype == np.int64 and (np.diff(part) > 0).all()  # sorted, no repeats
    allidx = np.concatenate(list(splits.values()))
    assert len(allidx) == n and set(allidx.tolist()) == set(range(n))  # disjoint and complete


@pytest.mark.parametrize("n", [0, 1, 5, 213, 4908])
def test_paper_split_sizes(n: int) -> None:
    splits = make_splits(index_of(n), "paper", seed=0)
    check_partition(splits, n)
    if n == 213:
        assert describe_splits(splits) == {"train": 128, "val": 43, "test": 42}


def test_paper_split_deterministic_per_seed() -> None:
    idx = index_of(100)
    a, b, c = make_splits(idx, "paper", 1), make_splits(idx, "paper", 1), make_splits(idx, "paper", 2)
    for part in a:
        np.testing.assert_array_equal(a[part], b[part])
    assert any(not np.array_equal(a[p], c[p]) for p in a)
    np.random.seed(123)  # the global RNG plays no part
    d = make_splits(idx, "paper", 1)
    assert all(np.array_equal(a[p], d[p]) for p in a)


def test_official_split_train_test_carves_val() -> None:
    official = ["train"] * 80 + ["test"] * 20
    splits = make_splits(index_of(100, official=official), "official", seed=0)
    check_partition(splits, 100)
    np.testing.assert_array_equal(splits["test"], np.arange(80, 100))
    assert len(splits["val"]) == round(OFFICIAL_VAL_FRACTION * 80)
    assert splits["val"].max() < 80  # carved from train only
    other = make_splits(index_of(100, official=official), "official", seed=5)
    assert not np.array_equal(splits["val"], other["val"])
    np.testing.assert_array_equal(splits["test"], other["test"])


def test_official_split_with_val_is_used_as_is() -> None:
    official = ["train", "val", "test"] * 5
    meta = Meta(ids=[str(i) for i in range(15)], subjects=[None] * 15, official_splits=official)
    splits = make_splits(meta, "official")
    check_partition(splits, 15)
    for part in ("train", "val", "test"):
        assert all(official[i] == part for i in splits[part])


def test_official_split_errors() -> None:
    with pytest.raises(ConfigError, match="no official split"):
        make_splits(index_of(10), "official")
    with pytest.raises(ConfigError, match="have no official split"):
        make_splits(index_of(3, official=["train", None, "test"]), "official")
    with pytest.raises(ConfigError, match="no test part"):
        make_splits(index_of(3, official=["train", "train", "val"]), "official")


def test_subject_split_keeps_subjects_whole() -> None:
    subjects = [f"S{i % 10}" for i in range(213)]  # JAFFE-like: 10 subjects of ~21 images
    idx = index_of(213, subjects=subjects)
    for seed in range(5):
        splits = make_splits(idx, "subject", seed)
        check_partition(splits, 213)
        groups = {p: {subjects[i] for i in splits[p]} for p in splits}
        assert [len(groups[p]) for p in ("train", "val", "test")] == [6, 2, 2]
        assert not (
            groups["train"] & groups["val"] or groups["train"] & groups["test"] or groups["val"] & groups["test"]
        )
    a, b = make_splits(idx, "subject", 7), make_splits(idx, "subject", 7)
    assert all(np.array_equal(a[p], b[p]) for p in a)


def test_subject_split_uneven_subjects_fills_every_part() -> None:
    subjects = ["big"] * 50 + ["a", "b", "c"]
    for seed in range(10):
        splits = make_splits(Meta(ids=[], subjects=subjects, official_splits=[None] * 53), "subject", seed)
        check_partition(splits, 53)
        assert all(len(v) > 0 for v in splits.values())


def test_subject_split_errors() -> None:
    with pytest.raises(ConfigError, match="subject"):
        make_splits(index_of(10), "subject")
    with pytest.raises(ConfigError, match="at least 3 subjects"):
        make_splits(index_of(4, subjects=["a", "a", "b", "b"]), "subject")
    with pytest.raises(ConfigError, match="unknown split scheme"):
        make_splits(index_of(4), "kfold")


def test_splits_on_loaded_datasets(rafml_root: Path, jaffe_root: Path) -> None:
    raf = load_index("rafml", rafml_root)
    splits = make_splits(raf, "official", seed=0)
    check_partition(splits, len(raf))
    assert {raf.records[i].id for i in splits["test"]} == {"0005", "0006"}  # partition_label.txt says 1
    jaffe = load_index("jaffe", jaffe_root)
    splits = make_splits(jaffe, "subject", seed=0)
    check_partition(splits, len(jaffe))
    assert describe_splits(splits) == {"train": 12, "val": 4, "test": 4}
    with pytest.raises(ConfigError):
        make_splits(jaffe, "official")
