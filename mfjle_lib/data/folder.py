"""Your own images: `DIR/labels.csv` with header `path,surprise,fear,disgust,happiness,sadness,anger`.

Values are 0/1 labels or floats in [0, 1]; floats are read as a distribution (kept in the record)
and an emotion is positive when its value is >= 0.5 (so 0/1 files read the same either way).
Paths are relative to DIR. Optional extra columns: `subject` (for the subject-independent split)
and `split` (train/val/test, for the official split). Columns are matched by name.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..constants import EMOTIONS
from ..errors import DataError
from .records import DatasetIndex, FaceRecord
from .text_files import SPLIT_NAMES, ProblemLog, csv_rows, is_image_name, parse_number, require_dir, require_file

#: A float value at or above this is a positive label.
VALUE_THRESHOLD = 0.5


LABEL_FILE = "labels.csv"


def _is_file(path: Path) -> bool:
    """Path.is_file that says False for names the OS rejects (too long, NUL) instead of raising."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def load_folder(root: Path, skip_bad: bool = False) -> DatasetIndex:
    """Load `root/labels.csv` (or the CSV file `root` itself) and check that every image exists."""
    root = Path(root)
    if root.is_file() and root.suffix.lower() == ".csv":
        label_path, root = root, root.parent
    else:
        root = require_dir(root, "image folder")
        label_path = require_file(root / LABEL_FILE, "label file")
    log = ProblemLog(skip_bad)
    records: list[FaceRecord] = []
    any_fractional = False
    rows = csv_rows(label_path)  # encoding and CSV syntax errors name the file and line
    header = [h.strip().lower() for h in next(rows, (1, []))[1]]
    missing = [c for c in ("path", *EMOTIONS) if c not in header]
    if missing:
        expected = "path," + ",".join(EMOTIONS)
        raise DataError(label_path, f"header must be {expected} (missing: {', '.join(missing)})", 1)
    cols = {name: header.index(name) for name in header}
    width = len(header)
    seen: dict[str, int] = {}
    for lineno, row in rows:
        if not row or not any(c.strip() for c in row):
            continue
        try:
            if len(row) < width:
                raise DataError(label_path, f"expected {width} fields, got {len(row)}", lineno)
            rel = row[cols["path"]].strip()
            if not rel:
                raise DataError(label_path, "empty path", lineno)
            cells = [row[cols[e]].strip() for e in EMOTIONS]
            values = np.asarray([parse_number(c, label_path, lineno) for c in cells], np.float32)
            if (values < 0).any() or (values > 1).any():
                raise DataError(label_path, "label values must lie in [0, 1]", lineno)
            split = row[cols["split"]].strip().lower() if "split" in cols else ""
            if split and split not in SPLIT_NAMES:
                raise DataError(label_path, f"split must be train, val or test, got {split!r}", lineno)
            image_path = root / rel
            if not _is_file(image_path):
                raise DataError(label_path, f"image {rel} not found in {root}", lineno)
            if rel in seen:
                raise DataError(label_path, f"duplicate path {rel} (first at line {seen[rel]})", lineno)
        except DataError as err:
            log.report(err)
            continue
        seen[rel] = lineno
        any_fractional |= bool(((values > 0) & (values < 1)).any())
        subject = row[cols["subject"]].strip() if "subject" in cols else ""
        records.append(
            FaceRecord(
                id=rel,
                labels=(values >= VALUE_THRESHOLD).astype(np.float32),
                image_path=image_path,
                distribution=values,
                subject=subject or None,
                official_split=split or None,
            )
        )
    if not any_fractional:
        for rec in records:  # plain 0/1 labels carry no distribution
            rec.distribution = None
    notes = [f"labels: {label_path}", f"positive when value >= {VALUE_THRESHOLD:g}"]
    # The CSV defines the dataset, so other images in DIR are not errors; still say how many.
    listed = {rec.image_path.resolve() for rec in records if rec.image_path is not None}
    unlisted = sum(1 for p in root.rglob("*") if p.is_file() and is_image_name(p.name) and p.resolve() not in listed)
    if unlisted:
        notes.append(f"{unlisted} image file(s) under {root} are not listed in {label_path.name} (ignored)")
    return DatasetIndex("folder", records, root=root, problems=log.problems, skipped=log.skipped, notes=notes)
