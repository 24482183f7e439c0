"""Decode, detect landmarks, align and cache every face of a dataset index."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from ..constants import NUM_LABELS
from ..data.image_io import load_record_image
from ..data.records import LANDMARK_SOURCES, DatasetIndex, FaceRecord
from ..errors import ConfigError, DataError
from ..paths import cache_dir
from ..runtime import progress
from .alignment import align_face, resize_aligned
from .decoded_cache import (
    _fingerprint,
    _load_cached,
    _load_lm_cache,
    _publish,
    _remove_stale_temps,
    _save_lm_cache,
    cache_key,
)
from .landmarks import as_rgb_uint8, detect_landmarks, fallback_landmarks
from .prepared import CACHE_VERSION, PreparedDataset

#: Records decoded, landmarked and aligned per step (bounds memory for large original photos).
CHUNK = 64


# ----------------------------------------------------------------------------- building


def _decode(rec: FaceRecord) -> np.ndarray:
    """Decoded uint8 (H,W,3) pixels of one record; bad input raises DataError naming the file."""
    img = as_rgb_uint8(load_record_image(rec))
    if img.shape[0] < 1 or img.shape[1] < 1:
        raise DataError(rec.source, f"empty image of shape {img.shape}")
    return img


def _valid_landmarks(lm: np.ndarray | None) -> bool:
    """True for finite, non-degenerate (5,2) landmarks."""
    return lm is not None and np.isfinite(lm).all() and float(np.ptp(lm, axis=0).max()) > 1e-3


def _image_tag(rec: FaceRecord, img: np.ndarray) -> str:
    """What a cached detection must match: the decoded shape plus file size/mtime or a pixel hash."""
    shape = "x".join(map(str, img.shape))
    if rec.image is None and rec.image_path is not None:
        try:
            st = os.stat(rec.image_path)
            return f"{shape}:{st.st_size}:{st.st_mtime_ns}:{rec.zip_member}"
        except OSError:
            pass
    return f"{shape}:{hashlib.blake2b(memoryview(img).cast('B'), digest_size=8).hexdigest()}"


def _process_chunk(
    records: list[FaceRecord],
    images: list[np.ndarray],
    size: int,
    lm_cache: dict,
    device,
) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """Landmark (record's own / cached / MTCNN / fallback) and align one chunk of decoded records."""
    landmarks: list[np.ndarray | None] = []
    sources: list[str] = []
    need: list[tuple[int, str]] = []
    for k, (rec, img) in enumerate(zip(records, images)):
        if _valid_landmarks(rec.landmarks):
            landmarks.append(np.asarray(rec.landmarks, np.float32))
            sources.append(rec.landmark_source if rec.landmark_source in LANDMARK_SOURCES else "dataset")
            continue
        tag = _image_tag(rec, img)
        hit = lm_cache.get(rec.id)
        if hit is not None and hit[3] == tag:
            landmarks.append(hit[0])
            sources.append(hit[1])
        else:
            landmarks.append(None)
            sources.append("fallback")
            need.append((k, tag))
    if need:
        lms, srcs, boxes = detect_landmarks([images[k] for k, _ in need], device=device)
        for j, (k, tag) in enumerate(need):
            landmarks[k], sources[k] = lms[j], srcs[j]
            lm_cache[records[k].id] = (lms[j], srcs[j], boxes[j], tag)
    out_images, out_landmarks = [], []
    for k, (rec, img) in enumerate(zip(records, images)):
        lm = landmarks[k]
        if rec.aligned:
            face, lm_out = resize_aligned(img, lm, size)
        else:
            try:
                face, lm_out = align_face(img, lm, size)
            except ValueError:  # degenerate points: fall back to the centred template
                sources[k] = "fallback"
                face, lm_out = align_face(img, fallback_landmarks(*img.shape[:2]), size)
        out_images.append(face)
        out_landmarks.append(lm_out)
    return out_images, out_landmarks, sources


def prepare_dataset(
    index: DatasetIndex,
    size: int = 224,
    skip_bad: bool = False,
    device=None,
    show_progress: bool = True,
    refresh: bool = False,
) -> PreparedDataset:
    """Decode, landmark and align every record of `index` into a cached uint8 memmap of side `size`.

    A record's own landmarks are used when it has them (source 'dataset' unless it says
    otherwise); else MTCNN runs on `device` (batched, cached per dataset independently of `size`)
    and a failure falls back to the centred template. Aligned records are resized (non-square
    ones are stretched); others are warped onto the template. Undecodable images raise
    `DataError`, or with `skip_bad` are listed in `problems` and counted. `refresh` rebuilds.
    """

    size = int(size)
    if size < 8:
        raise ConfigError(f"image size (R, --source-size) must be at least 8 pixels, got {size}")
    base = cache_dir()
    fingerprint = _fingerprint(index)
    key = cache_key(index, size, fingerprint)
    final = base / key
    if not refresh:
        found = _load_cached(final)
        # A cache that skipped undecodable images only serves skip_bad calls; without skip_bad
        # the rebuild below raises the DataError naming the file.
        if found is not None and (skip_bad or found.skipped == index.skipped):
            return found
    _remove_stale_temps(base, key)
    tmp = base / f".tmp-{key}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        result_meta = _build(index, size, skip_bad, device, show_progress, tmp, progress)
        _publish(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    found = _load_cached(final)
    if found is None:  # pragma: no cover - only if another process removed it in between
        raise OSError(f"cache {final} vanished after it was written ({result_meta['num_images']} images)")
    return found


def _build(index, size, skip_bad, device, show_progress, tmp: Path, progress) -> dict:
    """Write images.u8, meta.npz and meta.json for `index` into the folder `tmp`; return the meta."""
    records = index.records
    n = len(records)
    row = size * size * 3
    # Keyed by dataset and root only (not size or labels): a new size or label threshold reuses
    # the slow MTCNN pass; each entry is checked against its image's tag instead.
    lm_key = f"{index.name}|{index.root}"
    lm_cache = _load_lm_cache(lm_key)
    lm_cache_before = len(lm_cache)
    images = np.memmap(tmp / "images.u8", dtype=np.uint8, mode="w+", shape=(max(n, 1), size, size, 3))
    problems, skipped = list(index.problems), int(index.skipped)
    kept: list[FaceRecord] = []
    landmarks_out: list[np.ndarray] = []
    sources_out: list[str] = []
    bar_opts = {} if show_progress else {"disable": True}
    bar = progress(total=n, desc=f"Preparing {index.name} ({size}px)", unit="img", **bar_opts)
    try:
        for start in range(0, n, CHUNK):
            chunk_recs, chunk_imgs = [], []
            for rec in records[start : start + CHUNK]:
                try:
                    chunk_imgs.append(_decode(rec))
                    chunk_recs.append(rec)
                except DataError as err:
                    if not skip_bad:
                        raise
                    problems.append(err.describe())
                    skipped += 1
            if chunk_recs:
                faces, lms, srcs = _process_chunk(chunk_recs, chunk_imgs, size, lm_cache, device)
                k0 = len(kept)
                images[k0 : k0 + len(faces)] = np.stack(faces)
                kept.extend(chunk_recs)
                landmarks_out.extend(lms)
                sources_out.extend(srcs)
            bar.update(min(CHUNK, n - start))
    finally:
        bar.close()
    images.flush()
    del images
    # Skipped records were never written: the rows are compact, so truncating drops the tail.
    os.truncate(tmp / "images.u8", len(kept) * row)
    if len(lm_cache) != lm_cache_before:
        _save_lm_cache(lm_key, lm_cache)
    arrays = {
        "landmarks": np.stack(landmarks_out).astype(np.float32) if kept else np.zeros((0, 5, 2), np.float32),
        "labels": np.stack([r.labels for r in kept]).astype(np.float32)
        if kept
        else np.zeros((0, NUM_LABELS), np.float32),
    }
    if any(r.distribution is not None for r in kept):
        nan = np.full(NUM_LABELS, np.nan, np.float32)
        arrays["distributions"] = np.stack([r.distribution if r.distribution is not None else nan for r in kept])
    np.savez(tmp / "meta.npz", **arrays)
    meta = {
        "version": CACHE_VERSION,
        "name": index.name,
        "root": str(index.root) if index.root is not None else None,
        "size": size,
        "num_images": len(kept),
        "ids": [r.id for r in kept],
        "subjects": [r.subject for r in kept],
        "official_splits": [r.official_split for r in kept],
        "landmark_sources": sources_out,
        "problems": problems,
        "skipped": skipped,
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    # meta.json is written last: its presence marks a complete cache.
    (tmp / "meta.json").write_text(json.dumps(meta))
    return meta
