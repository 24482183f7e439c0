"""Decode any image file (or zip member) to uint8 RGB, with one clear DataError for bad files.

Conversions (all end as (H, W, 3) uint8 RGB):
- EXIF orientation is applied first (phone photos are often stored sideways).
- Grayscale, 1-bit, CMYK, YCbCr, LAB, HSV: PIL's standard conversion to RGB.
- Transparency (RGBA, LA, palette with transparency, PA): composited on a white background.
  Dropping alpha instead would expose whatever colour the transparent pixels happen to store
  (often black), which is arbitrary; white matches how viewers show such images.
- 16-bit / 32-bit integer and float grayscale (I;16, I;16B, I, F): stretched linearly from the
  image's own min..max onto 0..255, because 16-bit scans rarely use the full range and clipping
  would leave them black or saturated. A constant image falls back to its nominal range.
- Multi-frame files (TIFF, GIF): the first frame.
"""
from __future__ import annotations

import io
import os
import threading
import warnings
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from ..errors import DataError
from .records import FaceRecord

# A truncated file must fail loudly, not decode as a grey half-face (docs/DESIGN.md §7).
ImageFile.LOAD_TRUNCATED_IMAGES = False


_TRANSPARENT_MODES = {"RGBA", "LA", "La", "RGBa", "PA"}


_HIGH_DEPTH_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}


_NOMINAL_MAX = {"I;16": 65535.0, "I;16B": 65535.0, "I;16L": 65535.0, "I;16N": 65535.0, "I": 255.0, "F": 1.0}


# Zip handles stay open between calls: reopening re-parses the central directory (thousands of
# entries for RAF-ML) every image. Keyed by process id, because a handle inherited through fork
# shares its file offset with the parent and would interleave reads (DataLoader workers).
_ZIP_CACHE: OrderedDict[tuple[int, str, int, int], zipfile.ZipFile] = OrderedDict()


_ZIP_CACHE_SIZE = 4


_ZIP_LOCK = threading.Lock()


def _reset_after_fork() -> None:
    """In a forked child, start with a fresh lock and no inherited handles (never close the parent's)."""
    global _ZIP_LOCK
    _ZIP_LOCK = threading.Lock()
    _ZIP_CACHE.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _zip_handle(path: Path) -> zipfile.ZipFile:
    """Return a cached ZipFile for `path` (reopened when it changes or in a new process); hold _ZIP_LOCK."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except OSError as exc:
        raise DataError(path, f"cannot read file ({exc.strerror or exc})") from None
    key = (os.getpid(), str(path.resolve()), st.st_mtime_ns, st.st_size)
    handle = _ZIP_CACHE.get(key)
    if handle is not None:
        _ZIP_CACHE.move_to_end(key)
        return handle
    try:
        handle = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise DataError(path, "not a zip archive") from None
    _ZIP_CACHE[key] = handle
    while len(_ZIP_CACHE) > _ZIP_CACHE_SIZE:
        _, old = _ZIP_CACHE.popitem(last=False)
        old.close()  # in a forked child this closes only the child's copy of the descriptor
    return handle


def _read_zip_member(path: Path, member: str) -> bytes:
    """Return the bytes of `member` inside the zip at `path`."""
    try:
        # One lock around lookup and read, so no thread reads a handle another one just evicted.
        with _ZIP_LOCK:
            return _zip_handle(path).read(member)
    except KeyError:
        raise DataError(f"{path}/{member}", "not found in zip archive") from None
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise DataError(f"{path}/{member}", f"corrupt zip member ({exc})") from None


def _decode_error(where: str | Path, exc: Exception) -> DataError:
    """Map a PIL/OS decoding exception onto a short human reason."""
    msg = str(exc).lower()
    if isinstance(exc, Image.DecompressionBombError):
        return DataError(where, "image too large (decompression bomb guard)")
    if "truncated" in msg or "premature end" in msg or isinstance(exc, EOFError):
        return DataError(where, "truncated image")
    if isinstance(exc, UnidentifiedImageError):
        return DataError(where, "not an image")
    return DataError(where, f"cannot decode image ({type(exc).__name__}: {exc})")


def _stretch_to_uint8(img: Image.Image) -> np.ndarray:
    """Scale a high-bit-depth grayscale image to uint8 by its own value range."""
    arr = np.asarray(img).astype(np.float64)
    if arr.ndim == 3:  # some decoders give (H, W, 1)
        arr = arr[..., 0]
    lo, hi = float(arr.min()), float(arr.max())
    if hi > lo:
        out = (arr - lo) * (255.0 / (hi - lo))
    else:
        out = arr * (255.0 / _NOMINAL_MAX.get(img.mode, 255.0))
    gray = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)


def _to_rgb_array(img: Image.Image) -> np.ndarray:
    """Convert a decoded PIL image of any mode to a contiguous (H, W, 3) uint8 RGB array."""
    mode = img.mode
    if mode in _HIGH_DEPTH_MODES:
        return _stretch_to_uint8(img)
    if mode == "P" and "transparency" in img.info:
        mode = "PA"
    if mode in _TRANSPARENT_MODES:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.array(img, dtype=np.uint8, copy=True)


def _decode(source: Path | io.BytesIO, where: str | Path) -> np.ndarray:
    """Open, fully decode, orient and convert one image; every failure becomes a DataError."""
    try:
        # PIL warns (one stderr line each) about e.g. corrupt EXIF in files it still decodes; the
        # CLI promises one line per bad file, so a decodable image stays quiet and a bad one raises.
        with warnings.catch_warnings(), Image.open(source) as img:
            warnings.simplefilter("ignore")
            img.load()  # force the full decode now: a lazy open would accept a truncated file
            try:
                oriented = ImageOps.exif_transpose(img)
            except Exception:  # noqa: BLE001 - a broken EXIF block should not lose a good image
                oriented = img
            return _to_rgb_array(oriented)
    except DataError:
        raise
    except MemoryError:
        raise DataError(where, "image too large to decode in memory") from None
    except Exception as exc:  # noqa: BLE001 - PIL's plugins raise struct.error, IndexError, ... on damaged files
        raise _decode_error(where, exc) from None


def read_image(path: str | Path, zip_member: str | None = None) -> np.ndarray:
    """Decode an image file (or a member of the zip at `path`) to uint8 (H, W, 3) RGB."""
    path = Path(path)
    if zip_member is not None:
        data = _read_zip_member(path, zip_member)
        return _decode(io.BytesIO(data), f"{path}/{zip_member}")
    if not path.exists():
        raise DataError(path, "file not found")
    if not path.is_file():
        raise DataError(path, "not a file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(path, f"cannot read file ({exc.strerror or exc})") from None
    if not data:
        raise DataError(path, "empty file")
    return _decode(io.BytesIO(data), path)


def read_images(paths, skip_bad: bool = False) -> tuple[list[np.ndarray], list[str], list[str]]:
    """Decode several files: (images, their paths, problems). A bad file raises DataError, or
    with `skip_bad` is left out and listed in problems as 'file: reason'."""
    images: list[np.ndarray] = []
    names: list[str] = []
    problems: list[str] = []
    for path in paths:
        try:
            images.append(read_image(Path(path)))
            names.append(str(path))
        except DataError as err:
            if not skip_bad:
                raise
            problems.append(err.describe())
    return images, names, problems


def _as_rgb_uint8(image: np.ndarray, where: str) -> np.ndarray:
    """Coerce an in-memory image (gray, RGB or RGBA; uint8) to (H, W, 3) uint8."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise DataError(where, f"in-memory image has dtype {arr.dtype}, expected uint8")
    if arr.ndim == 2:
        return np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim == 3 and arr.shape[2] == 3:
        return arr
    if arr.ndim == 3 and arr.shape[2] == 1:
        return np.repeat(arr, 3, axis=2)
    if arr.ndim == 3 and arr.shape[2] == 4:
        return arr[..., :3]
    raise DataError(where, f"in-memory image has shape {arr.shape}, expected (H, W, 3)")


def load_record_image(rec: FaceRecord) -> np.ndarray:
    """Return a record's pixels as uint8 (H, W, 3): in memory, from a file, or from a zip member."""
    if rec.image is not None:
        return _as_rgb_uint8(rec.image, rec.source)
    if rec.image_path is None:
        raise DataError(rec.source, "record has no image")
    return read_image(rec.image_path, rec.zip_member)
