"""Helpers every dataset loader shares: reading label files, reporting problems, finding images."""
from __future__ import annotations

import codecs
import csv
import math
import re
import zipfile
from pathlib import Path
from typing import Iterator

from ..errors import DataError

#: Suffixes treated as images when a loader scans a folder or archive (lower case).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".gif", ".webp", ".ppm", ".pgm")


#: Official-split names every loader maps onto.
SPLIT_NAMES = ("train", "val", "test")


class ProblemLog:
    """Raises the first DataError, or with skip_bad lists it and counts what was skipped."""

    def __init__(self, skip_bad: bool) -> None:
        self.skip_bad = skip_bad
        self.problems: list[str] = []
        self.skipped = 0

    def report(self, err: DataError, dropped: bool = True) -> None:
        """Raise `err` unless skipping; otherwise record it (and count it when something was dropped)."""
        if not self.skip_bad:
            raise err
        self.problems.append(err.describe())
        if dropped:
            self.skipped += 1


def require_dir(path: Path, what: str = "folder") -> Path:
    """Return `path` if it is a folder, else raise DataError naming it (even with skip_bad)."""
    if not path.exists():
        raise DataError(path, f"{what} not found")
    if not path.is_dir():
        raise DataError(path, f"{what} is not a folder")
    return path


def require_file(path: Path, what: str = "file") -> Path:
    """Return `path` if it is a file, else raise DataError naming it (even with skip_bad)."""
    if not path.exists():
        raise DataError(path, f"{what} not found")
    if not path.is_file():
        raise DataError(path, f"{what} is not a file")
    return path


def read_lines(path: Path) -> list[str]:
    """Read a text file as lines, tolerating a UTF-8 BOM and (as a fallback) Latin-1 bytes."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(path, f"cannot read file ({exc.strerror or exc})") from None
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _decode_utf16(raw, path).splitlines()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Old README files (JAFFE) predate UTF-8; Latin-1 never fails and keeps ASCII intact.
        text = raw.decode("latin-1")
    return text.splitlines()


def _decode_utf16(raw: bytes, path: Path) -> str:
    """Text of a file that starts with a UTF-16 byte-order mark (spreadsheet 'Unicode' exports)."""
    try:
        return raw.decode("utf-16")
    except UnicodeDecodeError:
        raise DataError(path, "starts like UTF-16 text but does not decode as UTF-16") from None


def iter_text_lines(path: Path) -> Iterator[str]:
    """Stream a UTF-8 text file line by line (BOM dropped, line endings kept, as csv expects).

    A byte sequence that is not UTF-8 raises DataError naming the file and line (a spreadsheet
    saved in a legacy encoding, or a binary file); a UTF-16 file (with BOM) is decoded whole.
    """
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise DataError(path, f"cannot read file ({exc.strerror or exc})") from None
    with fh:
        head = fh.read(2)
        if head in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
            yield from _decode_utf16(head + fh.read(), path).splitlines(keepends=True)
            return
        fh.seek(0)
        for lineno, raw in enumerate(fh, start=1):
            if lineno == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                raise DataError(path, "not UTF-8 text (save the file as UTF-8 CSV)", lineno) from None


def csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Yield (line number, fields) of a CSV file; malformed CSV or encoding is a DataError at file:line.

    The line number is that of the row's last physical line (as `csv.reader.line_num`).
    """
    reader = csv.reader(iter_text_lines(path))
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataError(path, f"malformed CSV ({exc})", reader.line_num or 1) from None
        yield reader.line_num, row


def parse_number(token: str, path: Path, line: int) -> float:
    """Parse one finite float, or raise DataError('... is not a number') at file:line."""
    try:
        value = float(token)
    except ValueError:
        raise DataError(path, f"{token!r} is not a number", line=line) from None
    if not math.isfinite(value):
        raise DataError(path, f"{token!r} is not a finite number", line=line)
    return value


def image_id(name: str) -> str:
    """Image id from a file name: the stem without a trailing '_aligned' ('0001_aligned.jpg' -> '0001')."""
    stem = Path(name.replace("\\", "/")).stem
    return stem[: -len("_aligned")] if stem.endswith("_aligned") else stem


def is_image_name(name: str) -> bool:
    """True for names with an image suffix, ignoring macOS metadata ('._x.jpg', '__MACOSX/')."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    if base.startswith("._") or "__MACOSX/" in name:
        return False
    return Path(base).suffix.lower() in IMAGE_SUFFIXES


def scan_image_dir(folder: Path) -> dict[str, Path]:
    """Map image id -> file for every image under `folder`, shallowest first on duplicates."""
    files = [p for p in folder.rglob("*") if p.is_file() and is_image_name(p.name)]
    # Shallowest first, so `aligned/0001_aligned.jpg` wins over a nested `aligned/aligned/` copy.
    files.sort(key=lambda p: (len(p.relative_to(folder).parts), str(p)))
    found: dict[str, Path] = {}
    for path in files:
        found.setdefault(image_id(path.name), path)
    return found


def scan_image_zip(archive: Path) -> dict[str, str]:
    """Map image id -> member name for every image inside the zip at `archive` (left packed)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            names = [i.filename for i in zf.infolist() if not i.is_dir() and is_image_name(i.filename)]
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(archive, f"not a readable zip archive ({exc})") from None
    names.sort(key=lambda n: (n.count("/"), n))
    found: dict[str, str] = {}
    for name in names:
        found.setdefault(image_id(name), name)
    return found


_TOKEN_SPLIT = re.compile(r"[_.\-\s]+")


def name_tokens(name: str) -> list[str]:
    """Split a file stem on '_', '.', '-' and spaces ('0001_manu_attri' -> ['0001', 'manu', 'attri'])."""
    return [t for t in _TOKEN_SPLIT.split(Path(name).stem) if t]
