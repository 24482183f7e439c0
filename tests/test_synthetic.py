"""Tests of the built-in `synthetic` dataset: determinism, shapes, exact landmarks, labels, cache."""

from __future__ import annotations

import numpy as np
import pytest

from mfjle_lib.constants import EMOTIONS, TEMPLATE
from mfjle_lib.data import synthetic
from mfjle_lib.data.synthetic import LABEL_SHARE_THRESHOLD, load_synthetic, render_faces


@pytest.fixture(scope="module")
def faces300() -> dict:
    """Enough faces for label statistics (about 1 s)."""
    return render_faces(300, size=64, seed=11)


def test_same_seed_same_bytes() -> None:
    a, b = render_faces(6, size=64, seed=3), render_faces(6, size=64, seed=3)
    for key in ("images", "landmarks", "labels", "distributions", "aus"):
        assert a[key].tobytes() == b[key].tobytes(), key
    assert a["subjects"] == b["subjects"]


def test_different_seed_differs() -> None:
    a, b = render_faces(6, size=64, seed=3), render_faces(6, size=64, seed=4)
    assert a["images"].tobytes() != b["images"].tobytes()
    assert not np.array_equal(a["distributions"], b["distributions"])


@pytest.mark.parametrize("size", [64, 100, 128])
def test_shapes_and_dtypes(size: int) -> None:
    d = render_faces(5, size=size, seed=0)
    assert d["images"].shape == (5, size, size, 3) and d["images"].dtype == np.uint8
    assert d["landmarks"].shape == (5, 5, 2) and d["landmarks"].dtype == np.float32
    assert d["labels"].shape == (5, 6) and d["labels"].dtype == np.float32
    assert d["distributions"].shape == (5, 6) and d["distributions"].dtype == np.float32
    assert d["aus"].shape == (5, len(d["au_names"])) and d["aus"].dtype == np.float32
    assert len(d["subjects"]) == 5 and all(isinstance(s, str) for s in d["subjects"])
    assert render_faces(0, size=size)["images"].shape == (0, size, size, 3)


def test_landmarks_inside_and_on_template(faces300: dict) -> None:
    lm = faces300["landmarks"] / 64.0
    assert np.all((lm > 0.05) & (lm < 0.95))
    dev = np.abs(lm - TEMPLATE[None])
    # Pose (7 deg, 7 % scale, 2.5 % shift) + identity spacing; mouth corners also move with AUs.
    assert dev[:, :3].max() < 0.09
    assert dev[:, 3:].max() < 0.16
    # Without pose the mean face sits on the template: the jitter is centred.
    assert np.abs(lm[:, :3].mean(0) - TEMPLATE[:3]).max() < 0.01
    # Left is image left.
    assert np.all(lm[:, 0, 0] < lm[:, 1, 0]) and np.all(lm[:, 3, 0] < lm[:, 4, 0])


def test_label_statistics(faces300: dict) -> None:
    labels, dist = faces300["labels"], faces300["distributions"]
    np.testing.assert_allclose(dist.sum(1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(labels, (dist >= LABEL_SHARE_THRESHOLD).astype(np.float32))
    cardinality = labels.sum(1)
    assert 1.55 <= cardinality.mean() <= 1.95
    assert cardinality.min() >= 1  # no label-free sample
    assert cardinality.max() <= 3
    assert np.all((labels.mean(0) >= 0.15) & (labels.mean(0) <= 0.40)), dict(zip(EMOTIONS, labels.mean(0)))
    # Identities repeat (about n/10 of them), so subject-independent splits are possible.
    assert 10 <= len(set(faces300["subjects"])) <= 30


def test_aus_follow_emotions() -> None:
    """Happiness-dominant faces have strong AU12; surprise-dominant ones a dropped jaw."""
    d = render_faces(300, size=32, seed=5)
    au = dict(zip(d["au_names"], d["aus"].T))
    top = d["distributions"].argmax(1)
    happy, surprised = top == EMOTIONS.index("happiness"), top == EMOTIONS.index("surprise")
    assert au["AU12"][happy].mean() > 0.4 > au["AU12"][~happy].mean()
    assert au["AU26"][surprised].mean() > 0.4 > au["AU26"][~surprised & (top != EMOTIONS.index("fear"))].mean()


def test_landmark_on_drawn_feature(faces300: dict) -> None:
    """The eye landmark lies on the dark iris: darker than the cheek below it in most faces."""
    gray = faces300["images"].astype(np.float32).mean(-1)
    lm = faces300["landmarks"]
    darker = 0
    for img, pts in zip(gray, lm):
        for eye in pts[:2]:
            x, y = int(eye[0]), int(eye[1])  # continuous coords: pixel index = floor
            cheek = img[min(63, y + 8), x]
            darker += img[y, x] < cheek - 10
    assert darker / (2 * len(gray)) > 0.9


def test_eye_landmark_is_exact() -> None:
    """Sub-pixel check: the iris's darkness centroid matches the eye landmark (x within 0.15 px)."""
    d = render_faces(40, size=128, seed=2)
    errors = []
    for img, pts in zip(d["images"].astype(np.float32).mean(-1), d["landmarks"]):
        for ex, ey in pts[:2]:
            x0, y0 = int(ex) - 3, int(ey) - 2
            win = img[y0 : y0 + 5, x0 : x0 + 7]
            w = np.clip(np.median(win) - win, 0, None)  # darker than the window's median
            if w.sum() > 0:
                errors.append((w.sum(0) @ (np.arange(7) + x0 + 0.5)) / w.sum() - ex)
    assert abs(np.median(errors)) < 0.08 and np.median(np.abs(errors)) < 0.15


def test_cache_round_trip(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MFJLE_DATA_DIR", str(tmp_path))
    first = load_synthetic(12, size=64, seed=1)
    files = list((tmp_path / "synthetic").glob("*.npz"))
    assert len(files) == 1 and f"v{synthetic.RENDER_VERSION}" in files[0].name
    second = load_synthetic(12, size=64, seed=1)
    fresh = load_synthetic(12, size=64, seed=1, cache=False)
    assert second.name == "synthetic" and len(second) == 12 and second.root is None
    for a, b, c in zip(first.records, second.records, fresh.records):
        assert a.id == b.id == c.id and a.subject == b.subject == c.subject
        np.testing.assert_array_equal(a.image, b.image)
        np.testing.assert_array_equal(a.image, c.image)
        np.testing.assert_array_equal(a.landmarks, b.landmarks)
        np.testing.assert_array_equal(a.labels, b.labels)
        np.testing.assert_array_equal(a.distribution, b.distribution)
    rec = second.records[3]
    assert rec.id == "syn00003" and rec.source == "synthetic[3]"
    assert rec.aligned and rec.landmark_source == "dataset" and rec.image_path is None
    assert rec.image.shape == (64, 64, 3) and rec.image.dtype == np.uint8
    assert isinstance(rec.subject, str)
