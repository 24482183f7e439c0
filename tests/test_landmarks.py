"""Landmarks: MTCNN on real offline photos (astronaut, Grace Hopper), fallback, odd inputs, cache."""

from __future__ import annotations

import numpy as np
import pytest

from mfjle_lib.constants import TEMPLATE
from mfjle_lib.faces.landmarks import (
    MIN_DETECT_SIDE,
    as_rgb_uint8,
    detect_landmarks,
    fallback_box,
    fallback_landmarks,
    landmarks_cached,
)


def _grace_hopper() -> np.ndarray:
    from matplotlib import cbook
    from PIL import Image

    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        return np.asarray(Image.open(fh).convert("RGB"))


@pytest.fixture(scope="module")
def detections():
    """One MTCNN pass over every test image (two photos, two sizes -> two batches, plus odd inputs)."""
    import skimage.color
    import skimage.data

    ast = skimage.data.astronaut()
    images = [
        ast,
        _grace_hopper(),
        np.full((512, 512, 3), 128, np.uint8),  # uniform grey, same shape as astronaut: same batch
        skimage.color.rgb2gray(ast),  # float gray (H,W) in [0,1]
        np.zeros((1, 1, 3), np.uint8),  # 1x1
        np.zeros((10, 7), np.uint8),  # tiny gray
    ]
    return images, detect_landmarks(images, device="cpu")


@pytest.mark.slow
def test_astronaut_landmarks(detections) -> None:
    _, (lms, sources, boxes) = detections
    expected = np.array([[205, 102], [247, 104], [202, 139], [245, 142]], np.float32)
    assert sources[0] == "mtcnn"
    got = lms[0][[0, 1, 3, 4]]
    assert np.abs(got - expected).max() < 8, got
    x1, y1, x2, y2 = boxes[0]
    assert x1 < lms[0][:, 0].min() and lms[0][:, 0].max() < x2 and y1 < lms[0][:, 1].min() and lms[0][:, 1].max() < y2


@pytest.mark.slow
def test_grace_hopper_plausible_order(detections) -> None:
    _, (lms, sources, _) = detections
    le, re, nose, ml, mr = lms[1]
    assert sources[1] == "mtcnn"
    assert le[0] < re[0] and ml[0] < mr[0]
    assert max(le[1], re[1]) < nose[1] < min(ml[1], mr[1])
    assert le[0] < nose[0] < re[0]


@pytest.mark.slow
def test_no_face_and_tiny_images_fall_back(detections) -> None:
    images, (lms, sources, boxes) = detections
    assert sources[2] == "fallback" and sources[4] == "fallback" and sources[5] == "fallback"
    np.testing.assert_allclose(lms[2], TEMPLATE * 512, atol=1e-4)
    np.testing.assert_allclose(lms[4], TEMPLATE * 1, atol=1e-6)
    np.testing.assert_allclose(lms[5], fallback_landmarks(10, 7))
    np.testing.assert_allclose(boxes[5], fallback_box(10, 7))
    assert lms.dtype == np.float32 and lms.shape == (6, 5, 2) and boxes.shape == (6, 4)


@pytest.mark.slow
def test_grayscale_photo_is_detected(detections) -> None:
    _, (lms, sources, _) = detections
    assert sources[3] == "mtcnn"
    assert np.abs(lms[3] - lms[0]).max() < 4


def test_fallback_template_is_centred_square() -> None:
    lm = fallback_landmarks(100, 200)  # landscape: square of side 100 starting at x=50
    np.testing.assert_allclose(lm, TEMPLATE * 100 + np.array([50, 0], np.float32), atol=1e-5)
    lm = fallback_landmarks(300, 100)
    np.testing.assert_allclose(lm, TEMPLATE * 100 + np.array([0, 100], np.float32), atol=1e-5)
    np.testing.assert_allclose(fallback_box(300, 100), [0, 100, 100, 200])


def test_as_rgb_uint8_handles_odd_formats() -> None:
    assert as_rgb_uint8(np.zeros((4, 5), np.uint16)).shape == (4, 5, 3)
    rgba = np.zeros((4, 5, 4), np.uint8)
    rgba[..., 0] = 200
    out = as_rgb_uint8(rgba)
    assert out.shape == (4, 5, 3) and out.dtype == np.uint8 and out[0, 0, 0] == 200
    assert as_rgb_uint8(np.ones((3, 3), np.float64))[0, 0, 0] == 255
    assert as_rgb_uint8(np.full((3, 3, 1), 65535, np.uint16))[0, 0, 0] == 255


def test_empty_list() -> None:
    lms, sources, boxes = detect_landmarks([])
    assert lms.shape == (0, 5, 2) and sources == [] and boxes.shape == (0, 4)


def test_landmarks_cached_calls_images_fn_once(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MFJLE_DATA_DIR", str(tmp_path))
    calls = []
    small = [np.zeros((MIN_DETECT_SIDE - 1, MIN_DETECT_SIDE - 1, 3), np.uint8), np.zeros((5, 9, 3), np.uint8)]

    def images_fn():
        calls.append(1)
        return small

    first = landmarks_cached("toy|root|32", images_fn, ["a", "b"])
    second = landmarks_cached("toy|root|32", images_fn, ["a", "b"])
    assert len(calls) == 1
    np.testing.assert_array_equal(first[0], second[0])
    assert first[1] == second[1] == ["fallback", "fallback"]
    landmarks_cached("toy|root|32", images_fn, ["a", "b"], refresh=True)
    assert len(calls) == 2
