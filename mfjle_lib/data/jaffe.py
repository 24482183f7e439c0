"""JAFFE loader: grayscale TIFFs `KA.AN1.39.tiff` + the semantic-ratings table of the README.

The ratings table (in README_FIRST.txt / A_README_FIRST.txt or any text file under the root):
    # HAP SAD SUR ANG DIS FEA PIC
    ---------------------------------
    1 2.87 2.52 2.10 1.97 1.97 2.06 KM-NE1
Columns are mapped by name (their order differs from ours). A second, five-rating table
("Fear Excluded", header without FEA) may follow; parsing stops at the first text line after the
rows, so its rows are never read. Key `KM-NE1` <-> image `KM.NE1.<sequence>.tiff`.
Labels: rating > 3 on the 1-5 scale (paper Section IV.A, after DBM-CNN).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..constants import EMOTIONS
from ..errors import DataError
from .records import DatasetIndex, FaceRecord
from .text_files import ProblemLog, parse_number, read_lines, require_dir

#: A rating strictly above this is a positive label (paper: "greater than 3").
RATING_THRESHOLD = 3.0


#: JAFFE column names -> our emotion names.
COLUMN_TO_EMOTION = {
    "HAP": "happiness",
    "SAD": "sadness",
    "SUR": "surprise",
    "ANG": "anger",
    "DIS": "disgust",
    "FEA": "fear",
}


_REQUIRED_COLUMNS = set(COLUMN_TO_EMOTION) | {"PIC"}


_IMAGE_NAME = re.compile(r"^([A-Za-z]{2})\.([A-Za-z]{2}\d+)\.(\d+)\.tiff?$", re.IGNORECASE)


_KEY = re.compile(r"^([A-Za-z]{2})-([A-Za-z]{2}\d+)$")


_README_NAMES = ("README_FIRST.txt", "A_README_FIRST.txt")


_MAX_TEXT_BYTES = 2_000_000  # a ratings table is a few kB; don't read big files looking for it


def _header_columns(line: str) -> list[str] | None:
    """Column names of a ratings header line (any table with PIC), else None."""
    tokens = line.replace("#", " # ").split()
    names = [t.upper() for t in tokens if t != "#"]
    if "PIC" not in names or not set(names) & set(COLUMN_TO_EMOTION):
        return None
    return names


def _find_header(lines: list[str]) -> int | None:
    """Index of the first full (six-emotion) ratings header line, else None."""
    for i, line in enumerate(lines):
        cols = _header_columns(line)
        if cols is not None and _REQUIRED_COLUMNS <= set(cols):
            return i
    return None


def find_ratings_file(root: Path) -> Path | None:
    """The text file holding the six-column ratings table: the README first, then any text file."""
    candidates = [root / n for n in _README_NAMES if (root / n).is_file()]
    others = sorted(
        (p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in (".txt", ".dat", ".csv", "")),
        key=lambda p: (len(p.relative_to(root).parts), str(p)),
    )
    for path in candidates + [p for p in others if p not in candidates]:
        try:
            if path.stat().st_size > _MAX_TEXT_BYTES:
                continue
        except OSError:
            continue
        if _find_header(read_lines(path)) is not None:
            return path
    return None


def _col_for(emotion: str) -> str:
    """JAFFE column name of one of our emotions."""
    return next(col for col, emo in COLUMN_TO_EMOTION.items() if emo == emotion)


def _is_row(tokens: list[str]) -> bool:
    """A table row starts with a row number."""
    return len(tokens) >= 2 and tokens[0].isdigit()


def parse_ratings(
    path: Path, log: ProblemLog, bad: set[str] | None = None
) -> tuple[dict[str, tuple[int, np.ndarray]], list[str]]:
    """Parse the six-emotion ratings table -> ({'KM-NE1': (line, ratings in EMOTIONS order)}, notes).

    Keys of skipped rows go into `bad`, so their images are listed but not counted twice.
    """
    lines = read_lines(path)
    start = _find_header(lines)
    if start is None:
        raise DataError(path, "no ratings header '# HAP SAD SUR ANG DIS FEA PIC' found")
    columns = _header_columns(lines[start]) or []
    width = len(columns) + 1  # the row number sits under the header's '#'
    order = [columns.index(col) + 1 for col in (_col_for(e) for e in EMOTIONS)]
    key_col = columns.index("PIC") + 1
    ratings: dict[str, tuple[int, np.ndarray]] = {}
    notes: list[str] = []
    seen_rows = False
    after_blank = False
    for idx in range(start + 1, len(lines)):
        lineno = idx + 1
        tokens = lines[idx].split()
        if not tokens:
            after_blank = True
            continue
        if not _is_row(tokens):
            if not seen_rows and set(lines[idx].strip()) <= set("-=_ "):
                continue  # the dashed rule under the header
            if seen_rows:
                break  # text after the rows: the table ended (e.g. the "Fear Excluded" table)
            continue
        if seen_rows and after_blank and len(tokens) != width:
            break  # a headerless table of another width after a blank line: not ours
        seen_rows, after_blank = True, False
        try:
            if len(tokens) != width:
                raise DataError(path, f"expected {width} fields ({' '.join(columns)}), got {len(tokens)}", lineno)
            key = tokens[key_col]
            if not _KEY.match(key):
                raise DataError(path, f"bad picture key {key!r} (expected like KM-NE1)", lineno)
            values = np.asarray([parse_number(tokens[c], path, lineno) for c in order], np.float32)
            key = key.upper()
            if key in ratings:
                raise DataError(path, f"duplicate rating for {key} (first at line {ratings[key][0]})", lineno)
        except DataError as err:
            log.report(err)
            if bad is not None:
                bad.add(tokens[-1].upper())
            continue
        ratings[key] = (lineno, values)
    later_headers = [cols for cols in map(_header_columns, lines[start + 1 :]) if cols is not None]
    if any("FEA" not in cols for cols in later_headers):
        notes.append("a second ratings table without FEA ('Fear Excluded') was skipped")
    return ratings, notes


def load_jaffe(root: Path, skip_bad: bool = False, ratings_file: str | Path | None = None) -> DatasetIndex:
    """Load JAFFE from `root`: every TIFF under it, labels = semantic rating > 3."""
    root = require_dir(Path(root), "JAFFE root")
    log = ProblemLog(skip_bad)
    if ratings_file is not None:
        rpath = Path(ratings_file)
        rpath = rpath if rpath.is_absolute() else root / rpath
        if not rpath.is_file():
            raise DataError(rpath, "ratings file not found")
    else:
        rpath = find_ratings_file(root)
        if rpath is None:
            raise DataError(root, "no semantic ratings table found (a text file with the header "
                            "'# HAP SAD SUR ANG DIS FEA PIC', e.g. A_README_FIRST.txt)")
    bad: set[str] = set()
    ratings, notes = parse_ratings(rpath, log, bad)
    notes.insert(0, f"ratings: {rpath.relative_to(root) if rpath.is_relative_to(root) else rpath}")

    images: dict[str, Path] = {}
    ignored = 0
    tiffs = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in (".tif", ".tiff"))
    for path in tiffs:
        m = _IMAGE_NAME.match(path.name)
        if not m:
            ignored += 1
            continue
        key = f"{m.group(1)}-{m.group(2)}".upper()
        if key in images:
            log.report(DataError(path, f"second image for {key} (first: {images[key].name})"))
            continue
        images[key] = path
    if ignored:
        notes.append(f"ignored {ignored} TIFF file(s) not named like KA.AN1.39.tiff")
    if not images:
        raise DataError(root, "no JAFFE images (KA.AN1.39.tiff) found")

    records: list[FaceRecord] = []
    for key, path in sorted(images.items(), key=lambda kv: kv[1].name):
        if key not in ratings:
            log.report(DataError(path, f"no semantic rating for {key} in {rpath.name}"), dropped=key not in bad)
            continue
        values = ratings[key][1]
        records.append(
            FaceRecord(
                id=path.name.rsplit(".", 1)[0],
                labels=(values > RATING_THRESHOLD).astype(np.float32),
                image_path=path,
                distribution=values,
                subject=key.split("-")[0],
            )
        )
    for key, (lineno, _) in ratings.items():
        if key not in images:
            log.report(DataError(rpath, f"no image for rating {key}", lineno))
    empty = sum(1 for r in records if not r.labels.any())
    notes.append(f"{empty} of {len(records)} images have no rating > {RATING_THRESHOLD:g} (kept, label-free)")
    return DatasetIndex("jaffe", records, root=root, problems=log.problems, skipped=log.skipped, notes=notes)
