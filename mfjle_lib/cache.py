"""Decode, landmark and align a dataset once; keep it as a uint8 memmap under data/cache/<key>/.

`prepare_dataset(index, size)` returns a `PreparedDataset` (docs/ARCHITECTURE.md): images
(N,R,R,3) uint8 memory-mapped from `images.u8`, aligned landmarks in pixels of R, labels and
the bookkeeping the `data --json` summary reports. The cache key hashes everything that shapes
the result (dataset, root, size, record ids, labels, landmarks, file sizes/mtimes or in-memory
pixels, CACHE_VERSION), so a changed file or option rebuilds it and a repeat call only maps it.
A cache is built in a temporary folder and renamed into place, so a killed run leaves none.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .alignment import align_face, resize_aligned
from .constants import EMOTIONS, NUM_LABELS
from .errors import ConfigError, DataError
from .landmarks import as_rgb_uint8, detect_landmarks, fallback_landmarks, load_landmark_cache, save_landmark_cache
from .paths import cache_dir
from .records import LANDMARK_SOURCES, DatasetIndex, FaceRecord

#: Bump when decoding, alignment or the file layout changes: old caches are then ignored.
CACHE_VERSION = 1
#: Records decoded, landmarked and aligned per step (bounds memory for large original photos).
CHUNK = 64
SPLIT_NAMES = ("train", "val", "test")


@dataclass
class PreparedDataset:
    """A decoded, aligned dataset: uint8 images (memmap), landmarks in pixels of R, labels, bookkeeping."""

    name: str
    size: int  # R
    images: np.ndarray  # (N, R, R, 3) uint8, memory-mapped from data/cache/<key>/
    landmarks: np.ndarray  # (N, 5, 2) float32, pixels of the aligned R-image
    labels: np.ndarray  # (N, 6) float32
    distributions: np.ndarray | None
    ids: list[str]
    subjects: list[str | None]
    official_splits: list[str | None]
    landmark_sources: list[str]  # 'dataset' | 'mtcnn' | 'fallback' per image
    problems: list[str]
    skipped: int
    cache_path: Path | None = None  # the cache folder (None for in-memory subsets)
    _tensors: tuple | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.ids)

    def summary(self, splits: dict[str, np.ndarray] | None = None) -> dict:
        """The `data --json` object (DESIGN §4); split counts from `splits`, else the official split."""
        positives = self.labels >= 0.5
        if splits is not None:
            split_counts = {k: int(len(splits.get(k, ()))) for k in SPLIT_NAMES}
        else:
            split_counts = {k: sum(1 for s in self.official_splits if s == k) for k in SPLIT_NAMES}
        return {
            "dataset": self.name,
            "num_images": len(self),
            "image_size": int(self.size),
            "label_counts": {e: int(positives[:, i].sum()) for i, e in enumerate(EMOTIONS)},
            "label_cardinality": float(positives.sum(1).mean()) if len(self) else 0.0,
            "splits": split_counts,
            "landmarks": {s: sum(1 for x in self.landmark_sources if x == s) for s in LANDMARK_SOURCES},
            "problems": list(self.problems),
            "skipped": int(self.skipped),
        }

    def subset(self, indices) -> PreparedDataset:
        """Rows `indices` of every array and list (images are read from the memmap into memory)."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        pick = lambda xs: [xs[i] for i in idx]  # noqa: E731
        return PreparedDataset(
            name=self.name,
            size=self.size,
            images=self.images[idx],
            landmarks=self.landmarks[idx],
            labels=self.labels[idx],
            distributions=None if self.distributions is None else self.distributions[idx],
            ids=pick(self.ids),
            subjects=pick(self.subjects),
            official_splits=pick(self.official_splits),
            landmark_sources=pick(self.landmark_sources),
            problems=list(self.problems),
            skipped=self.skipped,
            cache_path=None,
        )

    def to_tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(images uint8 (N,3,R,R), landmarks float32 (N,5,2), labels float32 (N,6)); loaded once."""
        if self._tensors is None:
            # One permuted copy out of the memmap; later calls reuse it.
            images = torch.from_numpy(np.ascontiguousarray(np.asarray(self.images).transpose(0, 3, 1, 2)))
            landmarks = torch.from_numpy(np.array(self.landmarks, dtype=np.float32))
            labels = torch.from_numpy(np.array(self.labels, dtype=np.float32))
            self._tensors = (images, landmarks, labels)
        return self._tensors


# ----------------------------------------------------------------------------- keys


def _record_fingerprint(h: "hashlib._Hash", rec: FaceRecord) -> None:
    """Feed everything about one record that changes its cached row into `h`."""
    h.update(f"|{rec.id}|{rec.image_path}|{rec.zip_member}|{rec.aligned}|{rec.landmark_source}|".encode())
    h.update(f"{rec.subject}|{rec.official_split}|".encode())
    h.update(np.asarray(rec.labels, np.float32).tobytes())
    for arr in (rec.distribution, rec.landmarks):
        h.update(b"-" if arr is None else np.asarray(arr, np.float32).tobytes())
    if rec.image is not None:
        img = np.ascontiguousarray(rec.image)
        h.update(f"{img.shape}{img.dtype}".encode())
        h.update(memoryview(img).cast("B"))
    elif rec.image_path is not None:
        try:
            st = os.stat(rec.image_path)
            h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
        except OSError:
            h.update(b"missing")


def _fingerprint(index: DatasetIndex) -> str:
    """Hash of the dataset's identity and every record (not the image size)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{index.name}|{index.root}|{len(index.records)}".encode())
    for rec in index.records:
        _record_fingerprint(h, rec)
    return h.hexdigest()


def cache_key(index: DatasetIndex, size: int, fingerprint: str | None = None) -> str:
    """Folder name of the decoded cache for (index, size, CACHE_VERSION)."""
    fp = fingerprint or _fingerprint(index)
    digest = hashlib.blake2b(f"{fp}|{size}|v{CACHE_VERSION}".encode(), digest_size=10).hexdigest()
    safe_name = "".join(ch if ch.isalnum() else "_" for ch in index.name)[:24]
    return f"{safe_name}-{size}-{digest}"


# ----------------------------------------------------------------------------- loading


def _load_cached(folder: Path) -> PreparedDataset | None:
    """Map a finished cache folder, or None when it is missing, partial or from another version."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("version") != CACHE_VERSION:
            return None
        n, size = int(meta["num_images"]), int(meta["size"])
        with np.load(folder / "meta.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        if n:
            images = np.memmap(folder / "images.u8", dtype=np.uint8, mode="r", shape=(n, size, size, 3))
        else:
            images = np.zeros((0, size, size, 3), np.uint8)
    except (OSError, ValueError, KeyError):
        return None
    return PreparedDataset(
        name=meta["name"],
        size=size,
        images=images,
        landmarks=arrays["landmarks"],
        labels=arrays["labels"],
        distributions=arrays.get("distributions"),
        ids=meta["ids"],
        subjects=meta["subjects"],
        official_splits=meta["official_splits"],
        landmark_sources=meta["landmark_sources"],
        problems=meta["problems"],
        skipped=int(meta["skipped"]),
        cache_path=folder,
    )


def _remove_stale_temps(base: Path, key: str) -> None:
    """Delete temp folders of this key left by killed runs (their process is gone)."""
    for tmp in base.glob(f".tmp-{key}-*"):
        try:
            pid = int(tmp.name.rsplit("-", 1)[1])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(tmp, ignore_errors=True)
        except (ValueError, PermissionError, OSError):
            pass


# ----------------------------------------------------------------------------- building


def _decode(rec: FaceRecord) -> np.ndarray:
    """Decoded uint8 (H,W,3) pixels of one record; bad input raises DataError naming the file."""
    from .image_io import load_record_image  # lazy: image_io imports PIL plugins we rarely need

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


def _load_lm_cache(key: str) -> dict:
    """Landmark cache as {id: (landmarks, source, box, image tag)}; the tag rides in the source field."""
    out = {}
    for i, (lm, src, box) in (load_landmark_cache(key) or {}).items():
        source, _, tag = src.partition("@")
        if tag:
            out[i] = (lm, source, box, tag)
    return out


def _save_lm_cache(key: str, lm_cache: dict) -> None:
    """Save {id: (landmarks, source, box, image tag)} with the tag appended to the source."""
    save_landmark_cache(key, {i: (v[0], f"{v[1]}@{v[3]}", v[2]) for i, v in lm_cache.items()})


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
    from .runtime import progress

    size = int(size)
    if size < 8:
        raise ConfigError(f"image size (R, --source-size / data --image-size) must be at least 8 pixels, got {size}")
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
        "labels": np.stack([r.labels for r in kept]).astype(np.float32) if kept else np.zeros((0, NUM_LABELS), np.float32),
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


def _publish(tmp: Path, final: Path) -> None:
    """Move a finished temp folder into place, replacing an older cache of the same key."""
    trash = None
    if final.exists():
        trash = final.with_name(f".old-{final.name}-{os.getpid()}")
        try:
            os.rename(final, trash)
        except OSError:
            trash = None
    try:
        os.rename(tmp, final)
    except OSError:
        # Another process published the same key first: its cache is equivalent, keep it.
        if _load_cached(final) is None:
            raise
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)
