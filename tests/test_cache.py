"""Decoded cache: shapes, landmarks per source, summary, reuse, atomic writes, skip_bad, views."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from mfjle_lib.constants import EMOTIONS, TEMPLATE
from mfjle_lib.data.records import DatasetIndex, FaceRecord
from mfjle_lib.errors import DataError
from mfjle_lib.faces import prepare as cache_mod
from mfjle_lib.faces.prepare import prepare_dataset
from mfjle_lib.faces.prepared import CACHE_VERSION, PreparedDataset


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Every test gets its own data/cache folder."""
    monkeypatch.setenv("MFJLE_DATA_DIR", str(tmp_path / "data"))


def _index(n_aligned: int = 6, with_gray: bool = True, bad_file: Path | None = None) -> DatasetIndex:
    rng = np.random.default_rng(0)
    recs = []
    for i in range(n_aligned):
        recs.append(
            FaceRecord(
                id=f"a{i}",
                labels=rng.integers(0, 2, 6),
                image=rng.integers(0, 256, (100, 100, 3), dtype=np.uint8),
                landmarks=TEMPLATE * 100,
                landmark_source="dataset",
                aligned=True,
                distribution=rng.random(6),
                subject=f"s{i % 2}",
                official_split=("train", "test")[i % 2],
            )
        )
    # An unaligned photo whose own landmarks are a rotated, scaled copy of the template.
    a = np.deg2rad(15)
    rot = 1.5 * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    pts = (TEMPLATE * 100) @ rot.T + [40, 20]
    recs.append(
        FaceRecord(
            id="photo",
            labels=[1, 0, 0, 1, 0, 0],
            landmarks=pts,
            landmark_source="dataset",
            image=rng.integers(0, 256, (240, 260, 3), dtype=np.uint8),
        )
    )
    if with_gray:  # no landmarks, no face: MTCNN finds nothing -> fallback
        recs.append(FaceRecord(id="gray", labels=np.zeros(6), image=np.full((60, 80), 128, np.uint8)))
    if bad_file is not None:
        recs.append(FaceRecord(id="bad", labels=np.zeros(6), image_path=bad_file))
    return DatasetIndex(name="toy", records=recs, root=None)


def test_prepare_shapes_sources_and_summary() -> None:
    index = _index()
    ds = prepare_dataset(index, size=48, show_progress=False)
    assert isinstance(ds, PreparedDataset) and len(ds) == 8
    assert isinstance(ds.images, np.memmap) and ds.images.shape == (8, 48, 48, 3) and ds.images.dtype == np.uint8
    assert ds.landmarks.shape == (8, 5, 2) and ds.landmarks.dtype == np.float32
    assert ds.labels.dtype == np.float32 and ds.distributions.shape == (8, 6)
    assert np.isnan(ds.distributions[7]).all()  # 'gray' has no distribution
    assert ds.landmark_sources == ["dataset"] * 7 + ["fallback"]
    np.testing.assert_allclose(ds.landmarks[:6], np.broadcast_to(TEMPLATE * 48, (6, 5, 2)), atol=1e-4)
    np.testing.assert_allclose(ds.landmarks[6], TEMPLATE * 48, atol=1e-3)  # warped onto the template
    np.testing.assert_allclose(ds.landmarks[7], TEMPLATE * 48, atol=1e-3)  # fallback = centred square
    assert ds.ids[:2] == ["a0", "a1"] and ds.subjects[:2] == ["s0", "s1"]
    s = ds.summary()
    assert s["dataset"] == "toy" and s["num_images"] == 8 and s["source_size"] == 48
    assert list(s["label_counts"]) == list(EMOTIONS)
    assert s["label_counts"] == {e: int(index.labels[:, i].sum()) for i, e in enumerate(EMOTIONS)}
    assert s["label_cardinality"] == pytest.approx(index.labels.sum(1).mean())
    assert s["landmarks"] == {"dataset": 7, "mtcnn": 0, "fallback": 1}
    assert s["splits"] == {"train": 3, "val": 0, "test": 3}  # official split when none given
    assert s["problems"] == [] and s["skipped"] == 0
    splits = {"train": np.arange(5), "val": np.arange(5, 6), "test": np.arange(6, 8)}
    assert ds.summary(splits)["splits"] == {"train": 5, "val": 1, "test": 2}
    json.dumps(ds.summary(splits))  # plain JSON types only


def test_resized_pixels_match_the_source() -> None:
    index = _index(n_aligned=2, with_gray=False)
    ds = prepare_dataset(index, size=100, show_progress=False)
    np.testing.assert_array_equal(ds.images[0], index.records[0].image)  # same size: a copy


def test_second_call_maps_the_cache(monkeypatch) -> None:
    index = _index()
    first = prepare_dataset(index, size=32, show_progress=False)

    def boom(*args, **kwargs):
        raise AssertionError("rebuilt a cache that exists")

    monkeypatch.setattr(cache_mod, "_build", boom)
    second = prepare_dataset(index, size=32, show_progress=False)
    assert second.cache_path == first.cache_path
    np.testing.assert_array_equal(second.images, first.images)
    assert second.landmark_sources == first.landmark_sources
    meta = json.loads((first.cache_path / "meta.json").read_text())
    assert meta["version"] == CACHE_VERSION and meta["num_images"] == 8


def test_key_changes_with_labels_size_and_refresh() -> None:
    index = _index(with_gray=False)
    a = prepare_dataset(index, size=32, show_progress=False)
    assert prepare_dataset(index, size=32, skip_bad=True, show_progress=False).cache_path == a.cache_path
    assert prepare_dataset(index, size=40, show_progress=False).cache_path != a.cache_path
    index.records[0].labels = 1 - index.records[0].labels
    b = prepare_dataset(index, size=32, show_progress=False)
    assert b.cache_path != a.cache_path and np.array_equal(b.labels[0], index.records[0].labels)
    c = prepare_dataset(index, size=32, show_progress=False, refresh=True)
    assert c.cache_path == b.cache_path and np.array_equal(c.images, b.images)


def test_mtcnn_results_are_reused_across_sizes(monkeypatch) -> None:
    index = _index(n_aligned=1)
    calls = []
    real = cache_mod.detect_landmarks
    monkeypatch.setattr(cache_mod, "detect_landmarks", lambda imgs, **kw: calls.append(len(imgs)) or real(imgs, **kw))
    prepare_dataset(index, size=32, show_progress=False)
    prepare_dataset(index, size=40, show_progress=False)
    assert calls == [1]  # only 'gray' needed detection, and only once


def test_killed_build_leaves_no_cache(monkeypatch) -> None:
    index = _index()

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cache_mod, "_process_chunk", killed)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset(index, size=32, show_progress=False)
    from mfjle_lib.paths import cache_dir

    assert [p.name for p in cache_dir().iterdir() if p.name != "landmarks"] == []


def test_stale_temp_folder_is_removed() -> None:
    from mfjle_lib.paths import cache_dir

    index = _index(with_gray=False)
    key = cache_mod.cache_key(index, 32)
    stale = cache_dir() / f".tmp-{key}-999999999"  # no such process
    stale.mkdir(parents=True)
    (stale / "images.u8").write_bytes(b"half")
    ds = prepare_dataset(index, size=32, show_progress=False)
    assert not stale.exists() and ds.cache_path.name == key


def test_bad_image_raises_or_is_skipped(tmp_path) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    index = _index(bad_file=bad)
    with pytest.raises(DataError, match="broken.jpg"):
        prepare_dataset(index, size=32, show_progress=False)
    ds = prepare_dataset(index, size=32, skip_bad=True, show_progress=False)
    with pytest.raises(DataError, match="broken.jpg"):  # the skipping cache does not hide the error
        prepare_dataset(index, size=32, show_progress=False)
    assert len(ds) == 8 and ds.skipped == 1 and "bad" not in ds.ids
    assert len(ds.problems) == 1 and "broken.jpg" in ds.problems[0]
    assert os.path.getsize(ds.cache_path / "images.u8") == 8 * 32 * 32 * 3
    assert ds.summary()["skipped"] == 1


def test_index_problems_are_carried() -> None:
    index = _index(with_gray=False)
    index.problems.append("labels.txt:3: no image")
    index.skipped = 1
    s = prepare_dataset(index, size=32, show_progress=False).summary()
    assert s["problems"] == ["labels.txt:3: no image"] and s["skipped"] == 1


def test_all_skipped_gives_an_empty_dataset(tmp_path) -> None:
    bad = tmp_path / "x.png"
    bad.write_bytes(b"")
    ds = prepare_dataset(
        DatasetIndex("empty", [FaceRecord(id="x", labels=np.zeros(6), image_path=bad)]),
        size=16,
        skip_bad=True,
        show_progress=False,
    )
    assert len(ds) == 0 and ds.images.shape == (0, 16, 16, 3)
    assert ds.summary()["num_images"] == 0 and ds.summary()["label_cardinality"] == 0.0
    images, landmarks, labels = ds.to_tensors()
    assert images.shape == (0, 3, 16, 16)


def test_subset_and_tensors() -> None:
    ds = prepare_dataset(_index(), size=32, show_progress=False)
    sub = ds.subset([5, 1, 6])
    assert sub.ids == ["a5", "a1", "photo"] and len(sub) == 3
    np.testing.assert_array_equal(sub.images[1], ds.images[1])
    np.testing.assert_array_equal(sub.labels, ds.labels[[5, 1, 6]])
    assert sub.landmark_sources == ["dataset"] * 3 and sub.official_splits[0] == "test"
    images, landmarks, labels = ds.to_tensors()
    assert images.dtype == torch.uint8 and images.shape == (8, 3, 32, 32) and images.is_contiguous()
    assert landmarks.dtype == torch.float32 and labels.dtype == torch.float32
    assert torch.equal(images[2].permute(1, 2, 0), torch.from_numpy(np.array(ds.images[2])))
    assert ds.to_tensors()[0] is images  # loaded once
    assert sub.to_tensors()[0].shape == (3, 3, 32, 32)


def test_grayscale_and_rgba_records() -> None:
    rng = np.random.default_rng(3)
    recs = [
        FaceRecord(
            id="g",
            labels=np.zeros(6),
            image=rng.integers(0, 256, (50, 50), dtype=np.uint8),
            landmarks=TEMPLATE * 50,
            landmark_source="dataset",
            aligned=True,
        ),
        FaceRecord(
            id="rgba",
            labels=np.zeros(6),
            image=rng.integers(0, 256, (50, 50, 4), dtype=np.uint8),
            landmarks=TEMPLATE * 50,
            landmark_source="dataset",
            aligned=True,
        ),
    ]
    ds = prepare_dataset(DatasetIndex("odd", recs), size=24, show_progress=False)
    assert ds.images.shape == (2, 24, 24, 3)
    assert np.array_equal(ds.images[0][..., 0], ds.images[0][..., 2])
