"""Five facial landmarks: MTCNN (facenet-pytorch, batched, cached) and the template fallback.

Coordinates follow the library convention (`method/crops.py`): continuous pixels, column `j`
covers `[j, j+1)` and has its centre at `j + 0.5`.

MTCNN's pixel convention. facenet-pytorch's `detect_face` is a line-by-line port of the MATLAB
MTCNN: the first-stage boxes are built as `floor((stride*i + 1)/scale)` (1-based pixel indices),
crops are cut as `img[y-1:ey, x-1:ex]` (1-based inclusive boxes), and the points are returned as
`w*p + x1 - 1` exactly as the MATLAB code did. Its landmarks are therefore in MATLAB's 1-based
pixel-centre frame (pixel `k` has its centre at `k + 1`), i.e. half a pixel right/below ours.
Checked empirically with the mirror test: for a face and its horizontal mirror,
`x + x_mirror` equals `W` in our convention, `W - 1` for 0-based centres and `W + 1` for 1-based
centres; over 50 rescaled/shifted views of astronaut and grace_hopper it came out at
`W + 1.5 ± 0.13` (0-based centres are ruled out; the leftover ~0.25 px per point is the detector's
own asymmetry). So we subtract 0.5 from every MTCNN coordinate (points and boxes alike).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from ..constants import TEMPLATE
from ..paths import cache_dir
from ..runtime import progress

#: Added to MTCNN coordinates to bring them into our convention (see the module docstring).
MTCNN_OFFSET = -0.5


#: Below this side MTCNN's image pyramid is empty (min_face_size 20 -> 12-px P-Net windows).
MIN_DETECT_SIDE = 24


#: Bump when the detection code or conversion changes, so old landmark caches are ignored.
LANDMARK_CACHE_VERSION = 1


_DETECTORS: dict[str, object] = {}


def get_mtcnn(device: str | torch.device | None = None):
    """Return one MTCNN per device, built on first use (weights ship in the facenet-pytorch wheel)."""
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dev.type not in ("cpu", "cuda"):
        dev = torch.device("cpu")  # MTCNN's NMS/pyramid code is only tested on CPU and CUDA
    if dev.type == "cuda" and dev.index is None:
        # The current CUDA device (what `torch.cuda.set_device` or a torchrun rank chose), not always
        # cuda:0; with an index, 'cuda' and 'cuda:0' also share one detector.
        dev = torch.device("cuda", torch.cuda.current_device())
    key = str(dev)
    if key not in _DETECTORS:
        # lazy: measured +0.12-0.17 s per import (python -X importtime, after torch), paid only when
        # a detector is built; synthetic faces and datasets with landmark files never need one
        from facenet_pytorch import MTCNN

        _DETECTORS[key] = MTCNN(keep_all=False, select_largest=True, device=dev)
    return _DETECTORS[key]


def fallback_landmarks(h: int, w: int) -> np.ndarray:
    """TEMPLATE placed on the centred square of side min(h, w): the face is assumed centred and framed."""
    side = float(min(h, w))
    offset = np.array([(w - side) / 2.0, (h - side) / 2.0], np.float32)
    return (TEMPLATE * side + offset).astype(np.float32)


def fallback_box(h: int, w: int) -> np.ndarray:
    """The centred square (x1, y1, x2, y2) that `fallback_landmarks` assumes holds the face."""
    side = float(min(h, w))
    x1, y1 = (w - side) / 2.0, (h - side) / 2.0
    return np.array([x1, y1, x1 + side, y1 + side], np.float32)


def as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Coerce gray (H,W), (H,W,1), RGBA, 16-bit or float images to uint8 (H,W,3) RGB."""
    img = np.asarray(image)
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3:
        raise ValueError(f"expected an image of shape (H,W) or (H,W,C), got {img.shape}")
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    elif img.shape[2] >= 4:
        img = img[:, :, :3]  # alpha dropped; image_io composites properly where it matters
    elif img.shape[2] == 2:
        img = np.repeat(img[:, :, :1], 3, axis=2)  # gray + alpha
    if img.dtype != np.uint8:
        if img.dtype == np.uint16:
            img = (img >> 8).astype(np.uint8)
        elif np.issubdtype(img.dtype, np.floating):
            scale = 255.0 if img.size and float(np.nanmax(img)) <= 1.0 else 1.0
            img = np.clip(np.nan_to_num(img) * scale + 0.5, 0, 255).astype(np.uint8)
        else:
            img = np.clip(img, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img)


def _detect_group(detector, batch: np.ndarray) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """Run MTCNN on a (B,H,W,3) stack of equal-size images; per image (points, box) or None."""
    boxes, _probs, points = detector.detect(batch, landmarks=True)
    out: list[tuple[np.ndarray, np.ndarray] | None] = []
    for i in range(len(batch)):
        if points[i] is None or boxes[i] is None or len(points[i]) == 0:
            out.append(None)
            continue
        # select_largest=True sorts the faces largest first; keep that one.
        pts = np.asarray(points[i], np.float32).reshape(-1, 5, 2)[0] + MTCNN_OFFSET
        box = np.asarray(boxes[i], np.float32).reshape(-1, 4)[0] + MTCNN_OFFSET
        out.append((pts, box) if np.isfinite(pts).all() else None)
    return out


def detect_landmarks(
    images: Sequence[np.ndarray],
    device: str | torch.device | None = None,
    batch_size: int = 32,
    show_progress: bool = False,
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Detect the largest face's 5 landmarks per image: ((N,5,2) float32, sources, (N,4) boxes).

    Images of equal shape are batched together (MTCNN's batch path needs equal sizes). An image
    with no face, smaller than `MIN_DETECT_SIDE`, or on which MTCNN fails gets
    `fallback_landmarks` and the source 'fallback'; boxes are then the assumed centred square.
    """
    n = len(images)
    rgb = [as_rgb_uint8(im) for im in images]
    landmarks = np.zeros((n, 5, 2), np.float32)
    boxes = np.zeros((n, 4), np.float32)
    sources = ["fallback"] * n
    for i, im in enumerate(rgb):
        landmarks[i] = fallback_landmarks(*im.shape[:2])
        boxes[i] = fallback_box(*im.shape[:2])
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, im in enumerate(rgb):
        if min(im.shape[:2]) >= MIN_DETECT_SIDE:
            groups.setdefault(im.shape, []).append(i)
    if not groups:
        return landmarks, sources, boxes
    detector = get_mtcnn(device)
    chunks = [idx[s : s + batch_size] for idx in groups.values() for s in range(0, len(idx), batch_size)]
    if show_progress:
        chunks = progress(chunks, desc="MTCNN landmarks", unit="batch")
    for chunk in chunks:
        try:
            results = _detect_group(detector, np.stack([rgb[i] for i in chunk]))
        except Exception:  # noqa: BLE001 - facenet-pytorch can fail on odd inputs; retry one by one
            results = []
            for i in chunk:
                try:
                    results.extend(_detect_group(detector, rgb[i][None]))
                except Exception:  # noqa: BLE001 - a failed detection falls back and is counted
                    results.append(None)
        for i, res in zip(chunk, results):
            if res is not None:
                landmarks[i], boxes[i] = res
                sources[i] = "mtcnn"
    return landmarks, sources, boxes


def landmark_cache_path(key: str) -> Path:
    """Where the landmark cache for `key` (a dataset fingerprint) lives."""
    safe = hashlib.sha1(f"{key}|v{LANDMARK_CACHE_VERSION}".encode()).hexdigest()[:20]
    folder = cache_dir() / "landmarks"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{safe}.npz"


def load_landmark_cache(key: str) -> dict[str, tuple[np.ndarray, str, np.ndarray]] | None:
    """Return {image id: (landmarks, source, box)} stored under `key`, or None when absent/unreadable."""
    path = landmark_cache_path(key)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            ids, lms, srcs, bxs = z["ids"], z["landmarks"], z["sources"], z["boxes"]
    except Exception:  # noqa: BLE001 - a damaged cache is just recomputed
        return None
    return {str(i): (lm, str(s), b) for i, lm, s, b in zip(ids, lms, srcs, bxs)}


def save_landmark_cache(key: str, entries: dict[str, tuple[np.ndarray, str, np.ndarray]]) -> Path:
    """Write {image id: (landmarks, source, box)} atomically (temp file, then rename)."""
    path = landmark_cache_path(key)
    ids = list(entries)
    arrays = {
        "ids": np.array(ids, dtype=str),
        "landmarks": np.stack([entries[i][0] for i in ids]).astype(np.float32)
        if ids
        else np.zeros((0, 5, 2), np.float32),
        "sources": np.array([entries[i][1] for i in ids], dtype=str),
        "boxes": np.stack([entries[i][2] for i in ids]).astype(np.float32) if ids else np.zeros((0, 4), np.float32),
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; caches are shared like the rest of data/
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def landmarks_cached(
    key: str,
    images_fn: Callable[[], Sequence[np.ndarray]],
    ids: Sequence[str],
    device: str | torch.device | None = None,
    batch_size: int = 32,
    refresh: bool = False,
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """`detect_landmarks` behind a cache: `images_fn` is only called when `key` has no entry for some id.

    `key` must change whenever the images do (e.g. dataset name + root + image size).
    """
    cached = None if refresh else load_landmark_cache(key)
    if cached is None or any(i not in cached for i in ids):
        lms, srcs, bxs = detect_landmarks(list(images_fn()), device=device, batch_size=batch_size)
        cached = {i: (lms[k], srcs[k], bxs[k]) for k, i in enumerate(ids)}
        save_landmark_cache(key, cached)
    lms = np.stack([cached[i][0] for i in ids]).astype(np.float32) if ids else np.zeros((0, 5, 2), np.float32)
    bxs = np.stack([cached[i][2] for i in ids]).astype(np.float32) if ids else np.zeros((0, 4), np.float32)
    return lms, [cached[i][1] for i in ids], bxs
