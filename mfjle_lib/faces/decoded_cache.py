"""The decoded-face cache on disk: keys, fingerprints, atomic publish, landmark cache."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from ..data.records import DatasetIndex, FaceRecord
from .landmarks import load_landmark_cache, save_landmark_cache
from .prepared import CACHE_VERSION, PreparedDataset

# ----------------------------------------------------------------------------- keys


def _record_fingerprint(h: hashlib._Hash, rec: FaceRecord) -> None:
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
