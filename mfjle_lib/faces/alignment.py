"""Align a face onto the canonical 5-point template by a similarity transform (docs/DESIGN.md §2).

All coordinates are continuous pixels (pixel `j` covers `[j, j+1)`, centre `j + 0.5`), so a
transform fitted on landmarks is applied to pixel centres unchanged and a landmark lands exactly
where the transform sends it. Warping uses `grid_sample(align_corners=False)`, whose normalised
grid uses the same convention (-1 and +1 are the outer edges of the first and last pixel).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..constants import TEMPLATE


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, shift; no reflection) mapping src to dst: (2,3).

    Umeyama (1991). Raises ValueError when `src` is degenerate (all points equal or not finite).
    """
    src = np.asarray(src, np.float64).reshape(-1, 2)
    dst = np.asarray(dst, np.float64).reshape(-1, 2)
    if src.shape != dst.shape or len(src) < 2:
        raise ValueError(f"need matching point sets of at least 2 points, got {src.shape} and {dst.shape}")
    if not (np.isfinite(src).all() and np.isfinite(dst).all()):
        raise ValueError("landmarks contain NaN or infinity")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    src_c, dst_c = src - mu_s, dst - mu_d
    var_s = (src_c**2).sum() / len(src)
    if var_s < 1e-12:
        raise ValueError("landmarks are degenerate (all points coincide)")
    cov = dst_c.T @ src_c / len(src)
    u, d, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1.0  # forbid reflections: a mirrored face is not the same face
    rot = u @ np.diag(sign) @ vt
    scale = float((d * sign).sum() / var_s)
    shift = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, shift[:, None]])


def apply_transform(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a (2,3) affine matrix to (..., 2) points."""
    pts = np.asarray(points, np.float64)
    return pts @ np.asarray(matrix, np.float64)[:, :2].T + np.asarray(matrix, np.float64)[:, 2]


def invert_transform(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a (2,3) affine matrix."""
    a = np.asarray(matrix, np.float64)[:, :2]
    inv = np.linalg.inv(a)
    return np.hstack([inv, -(inv @ np.asarray(matrix, np.float64)[:, 2])[:, None]])


def warp_affine(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Sample `image` (uint8 HxWx3) at the preimages of a size x size grid under `matrix` (src -> out).

    Bilinear, zeros outside. When the map shrinks by 2x or more, the source is first box-reduced
    by the integer factor (PIL `reduce`) so the bilinear samples do not alias.
    """
    img = np.ascontiguousarray(image)
    m = np.asarray(matrix, np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    factor = int(np.floor(1.0 / scale)) if scale > 0 else 1
    if factor >= 2 and min(img.shape[:2]) >= 2 * factor:
        # reduce(k) averages k x k blocks: continuous x maps to x / k exactly.
        img = np.asarray(Image.fromarray(img).reduce(factor))
        m = m @ np.diag([float(factor), float(factor), 1.0])
    if not img.flags.writeable:
        img = img.copy()  # PIL's buffers are read-only; torch wants a writable array
    h, w = img.shape[:2]
    inv = invert_transform(m)
    centres = np.arange(size, dtype=np.float64) + 0.5
    gx, gy = np.meshgrid(centres, centres)
    sx = inv[0, 0] * gx + inv[0, 1] * gy + inv[0, 2]
    sy = inv[1, 0] * gx + inv[1, 1] * gy + inv[1, 2]
    grid = np.stack([2.0 * sx / w - 1.0, 2.0 * sy / h - 1.0], axis=-1)[None].astype(np.float32)
    src = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    out = F.grid_sample(src, torch.from_numpy(grid), mode="bilinear", padding_mode="zeros", align_corners=False)
    return out[0].permute(1, 2, 0).round_().clamp_(0, 255).to(torch.uint8).numpy()


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Warp `image` so its landmarks best fit `TEMPLATE * size`: (size x size x 3 uint8, warped landmarks).

    The returned landmarks are the source landmarks pushed through the fitted transform (not the
    template), so they stay exact for the crops.
    """
    matrix = similarity_transform(landmarks, TEMPLATE.astype(np.float64) * size)
    aligned = warp_affine(image, matrix, size)
    return aligned, apply_transform(matrix, landmarks).astype(np.float32)


def resize_aligned(image: np.ndarray, landmarks: np.ndarray | None, size: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Resize an already-aligned face to size x size and scale its landmarks (None stays None).

    PIL's resize maps continuous coordinates by x * size / W (pixel centres to pixel centres),
    and antialiases when shrinking.
    """
    h, w = image.shape[:2]
    if (h, w) == (size, size):
        out = np.ascontiguousarray(image)
    else:
        out = np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize((size, size), Image.BILINEAR))
    if landmarks is None:
        return out, None
    lm = np.asarray(landmarks, np.float32) * np.array([size / w, size / h], np.float32)
    return out, lm.astype(np.float32)
