"""Alignment: Umeyama similarity, landmarks land exactly on the template, round trip, resize."""

from __future__ import annotations

import numpy as np
import pytest

from mfjle_lib.constants import TEMPLATE
from mfjle_lib.faces.alignment import (
    align_face,
    apply_transform,
    invert_transform,
    resize_aligned,
    similarity_transform,
    warp_affine,
)


def _similarity(angle_deg: float, scale: float, shift) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    rot = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return np.hstack([rot, np.asarray(shift, np.float64)[:, None]])


def _blobs(h: int, w: int, points: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian dots centred exactly on continuous points (pixel centres at j + 0.5)."""
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    img = np.zeros((h, w), np.float64)
    for x, y in points:
        img += np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
    return np.repeat((np.clip(img, 0, 1) * 255).round().astype(np.uint8)[..., None], 3, axis=2)


def _centroids(img: np.ndarray, near: np.ndarray, radius: float) -> np.ndarray:
    """Intensity-weighted centroid (continuous coordinates) of the blob near each point."""
    g = img[..., 0].astype(np.float64)
    yy, xx = np.mgrid[0 : g.shape[0], 0 : g.shape[1]] + 0.5
    out = []
    for x, y in near:
        m = g * (((xx - x) ** 2 + (yy - y) ** 2) < radius**2)
        out.append([(m * xx).sum() / m.sum(), (m * yy).sum() / m.sum()])
    return np.array(out)


def test_similarity_recovers_known_transform() -> None:
    m = _similarity(23.0, 1.7, [12.5, -4.0])
    src = TEMPLATE.astype(np.float64) * 100
    est = similarity_transform(src, apply_transform(m, src))
    np.testing.assert_allclose(est, m, atol=1e-9)
    assert est.dtype == np.float64 and est.shape == (2, 3)


def test_similarity_is_least_squares_and_never_reflects() -> None:
    rng = np.random.default_rng(0)
    src = rng.normal(size=(5, 2)) * 20
    mirrored = src * np.array([-1.0, 1.0])
    est = similarity_transform(src, mirrored)
    assert np.linalg.det(est[:, :2]) > 0
    # Any perturbation of the fit increases the squared error.
    dst = apply_transform(_similarity(-10, 0.8, [3, 4]), src) + rng.normal(size=(5, 2))
    est = similarity_transform(src, dst)
    best = ((apply_transform(est, src) - dst) ** 2).sum()
    for _ in range(20):
        m = est.copy()
        m += rng.normal(size=(2, 3)) * 1e-3 * np.array([[1, 1, 100], [1, 1, 100]])
        # Project back onto similarities: a = d, b = -c.
        a, b = (m[0, 0] + m[1, 1]) / 2, (m[1, 0] - m[0, 1]) / 2
        m[:, :2] = [[a, -b], [b, a]]
        assert ((apply_transform(m, src) - dst) ** 2).sum() >= best - 1e-9


def test_similarity_rejects_degenerate_points() -> None:
    with pytest.raises(ValueError):
        similarity_transform(np.ones((5, 2)), TEMPLATE)
    with pytest.raises(ValueError):
        similarity_transform(np.full((5, 2), np.nan), TEMPLATE)


@pytest.mark.parametrize("angle,scale,shape", [(17.0, 1.6, (200, 170)), (-8.0, 5.3, (640, 600))])
def test_dots_land_on_template(angle: float, scale: float, shape) -> None:
    size = 96
    # Landmarks of a face that is the template rotated/scaled/shifted; 5.3x exercises the
    # box-reduce path used when the warp shrinks by 2x or more.
    m = _similarity(angle, scale, [shape[1] * 0.3, shape[0] * 0.25])
    src = apply_transform(m, TEMPLATE.astype(np.float64) * size)
    image = _blobs(*shape, src, sigma=1.2 * scale)
    aligned, lm = align_face(image, src, size)
    target = TEMPLATE.astype(np.float64) * size
    assert aligned.shape == (size, size, 3) and aligned.dtype == np.uint8
    assert lm.dtype == np.float32 and lm.shape == (5, 2)
    np.testing.assert_allclose(lm, target, atol=1e-3)
    # Measured error is ~0.02 px; a half-pixel convention slip would show up as 0.5.
    np.testing.assert_allclose(_centroids(aligned, target, radius=4.0), target, atol=0.1)


def test_returned_landmarks_are_the_warped_points_not_the_template() -> None:
    rng = np.random.default_rng(1)
    src = TEMPLATE * 120 + rng.normal(size=(5, 2)) * 4  # not an exact similarity of the template
    image = _blobs(150, 150, src, sigma=1.5)
    aligned, lm = align_face(image, src, 80)
    assert np.abs(lm - TEMPLATE * 80).max() > 0.5
    np.testing.assert_allclose(_centroids(aligned, lm, radius=3.5), lm, atol=0.15)


def test_round_trip() -> None:
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[0:128, 0:128]
    smooth = 127 + 60 * np.sin(xx / 9.0) * np.cos(yy / 13.0) + rng.normal(0, 1, (128, 128))
    image = np.repeat(np.clip(smooth, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    m = _similarity(12.0, 1.1, [-5.0, 8.0])
    back = warp_affine(warp_affine(image, m, 128), invert_transform(m), 128)
    inner = (slice(40, 88), slice(40, 88))
    assert np.abs(back[inner].astype(int) - image[inner].astype(int)).mean() < 3.0
    pts = rng.uniform(0, 128, (5, 2))
    np.testing.assert_allclose(apply_transform(invert_transform(m), apply_transform(m, pts)), pts, atol=1e-9)


def test_zeros_outside_source() -> None:
    image = np.full((50, 50, 3), 200, np.uint8)
    aligned = warp_affine(image, _similarity(0, 1.0, [100, 100]), 64)  # source lands off-canvas
    assert aligned.max() == 0


def test_resize_aligned_scales_landmarks() -> None:
    pts = TEMPLATE.astype(np.float64) * 100
    image = _blobs(100, 100, pts, sigma=1.5)
    out, lm = resize_aligned(image, pts, 224)
    assert out.shape == (224, 224, 3) and lm.dtype == np.float32
    np.testing.assert_allclose(lm, TEMPLATE * 224, atol=1e-4)
    np.testing.assert_allclose(_centroids(out, lm, radius=6.0), lm, atol=0.15)
    same, none = resize_aligned(image, None, 100)
    assert none is None and np.array_equal(same, image)
