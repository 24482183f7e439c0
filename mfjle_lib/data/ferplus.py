"""FER+ loader: ten crowd votes per FER2013 face, as `fer2013new.csv` + `fer2013.csv` or per-folder CSVs.

Layouts (docs/DESIGN.md §3, data/README.md):
- csv:     ROOT/fer2013new.csv (Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,
           fear,contempt,unknown,NF) beside ROOT/fer2013.csv (emotion,pixels,Usage; same row order;
           48x48 gray pixel strings -> in-memory images).
- folders: ROOT/FER2013Train|FER2013Valid|FER2013Test/label.csv (no header) with rows
           `fer0000000.png,"(0, 0, 48, 48)",v1,...,v10` (same 10 vote columns) beside the PNGs.
Rules: shares over all 10 vote columns; rows whose majority (first argmax, as in Microsoft's
FERPlus reader) is `unknown` or `NF` are dropped and counted; rows with a blank image name (faces
FER+ removed) are dropped and counted; one of our six is positive when its share >= SHARE_THRESHOLD;
neutral- and contempt-dominant rows stay (usually label-free) and are counted; contempt is not one
of our six. Usage / folder gives the official split.
"""
from __future__ import annotations

import itertools
import warnings
from contextlib import closing
from pathlib import Path

import numpy as np

from ..constants import EMOTIONS
from ..errors import ConfigError, DataError
from .records import DatasetIndex, FaceRecord
from .text_files import ProblemLog, csv_rows, parse_number, require_file

VOTE_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF")


#: An emotion is positive when at least 30% of the votes name it: 3 of FER+'s 10 taggers. One or
#: two votes are what Microsoft's own reader discards as outliers; 0.3 still allows true blends
#: (e.g. 4 happiness + 3 surprise) and at most three labels.
SHARE_THRESHOLD = 0.3


USAGE_TO_SPLIT = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}


FOLDER_TO_SPLIT = {"FER2013Train": "train", "FER2013Valid": "val", "FER2013Test": "test"}


LAYOUTS = ("auto", "csv", "folders")


_OURS = [VOTE_COLUMNS.index(e) for e in EMOTIONS]


_DROP = {VOTE_COLUMNS.index("unknown"), VOTE_COLUMNS.index("NF")}


_NEUTRAL = VOTE_COLUMNS.index("neutral")


_CONTEMPT = VOTE_COLUMNS.index("contempt")


_PIXELS = 48 * 48


class _Counts:
    """Counts for the index notes."""

    def __init__(self) -> None:
        self.blank = self.unknown = self.neutral = self.contempt = 0


def _votes_to_record_fields(votes: np.ndarray, path: Path, lineno: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(labels, shares of our six) for one row's votes; None when the majority is unknown/NF."""
    total = float(votes.sum())
    if total <= 0:
        raise DataError(path, "row has no votes", lineno)
    if int(np.argmax(votes)) in _DROP:
        return None
    ours = votes[_OURS] / total  # float64, so a share of exactly 3/10 passes 0.3 reliably
    return (ours >= SHARE_THRESHOLD).astype(np.float32), ours.astype(np.float32)


def _parse_votes(fields: list[str], path: Path, lineno: int) -> np.ndarray:
    """Ten non-negative vote counts."""
    votes = np.asarray([parse_number(f.strip(), path, lineno) for f in fields], np.float64)
    if (votes < 0).any():
        raise DataError(path, "vote counts must not be negative", lineno)
    return votes


def _tally(votes: np.ndarray, counts: _Counts) -> None:
    """Count neutral- and contempt-dominant rows (kept)."""
    top = int(np.argmax(votes))
    counts.neutral += top == _NEUTRAL
    counts.contempt += top == _CONTEMPT


def _pixels_to_image(text: str, path: Path, lineno: int) -> np.ndarray:
    """A FER2013 pixel string (2304 gray values) -> (48, 48, 3) uint8."""
    try:
        # fromstring's text mode parses in C (4x faster than split(); 35,887 rows add up); older
        # NumPy only warns on trailing junk, so that warning counts as an error too.
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)
            values = np.fromstring(text, dtype=np.int64, sep=" ")
    except (ValueError, DeprecationWarning):
        raise DataError(path, "pixels contain a non-integer value", lineno) from None
    if values.size != _PIXELS:
        raise DataError(path, f"expected {_PIXELS} pixel values (48x48), got {values.size}", lineno)
    if values.min() < 0 or values.max() > 255:
        raise DataError(path, "pixel values must lie in 0..255", lineno)
    gray = values.astype(np.uint8).reshape(48, 48)
    return np.repeat(gray[..., None], 3, axis=2)


def _load_csv_layout(root: Path, log: ProblemLog, counts: _Counts) -> list[FaceRecord]:
    """fer2013new.csv (votes) joined row by row with fer2013.csv (pixels), streamed in lockstep."""
    new_path = require_file(root / "fer2013new.csv", "FER+ label file")
    old_path = require_file(root / "fer2013.csv", "FER2013 pixel file (fer2013.csv, from Kaggle)")
    records = []
    # csv_rows: encoding and CSV syntax errors name the file and line; closing() shuts the files.
    with closing(csv_rows(new_path)) as new_rows, closing(csv_rows(old_path)) as old_rows:
        header = next(new_rows, (1, []))[1]
        if [h.strip().lower() for h in header[2:12]] != [c.lower() for c in VOTE_COLUMNS]:
            raise DataError(new_path, "header must be Usage,Image name," + ",".join(VOTE_COLUMNS), 1)
        if [h.strip().lower() for h in next(old_rows, (1, []))[1]] != ["emotion", "pixels", "usage"]:
            raise DataError(old_path, "header must be emotion,pixels,Usage", 1)
        # Rows are matched by position (FER+ keeps FER2013's order), so both files advance together.
        for new_item, old_item in itertools.zip_longest(new_rows, old_rows):
            if new_item is None or old_item is None:
                short, long_ = (new_path, old_path) if new_item is None else (old_path, new_path)
                raise DataError(short, f"has fewer rows than {long_.name}; they must match row by row")
            (lineno, row), (old_lineno, old) = new_item, old_item
            try:
                if len(row) < 12:
                    raise DataError(new_path, f"expected 12 fields, got {len(row)}", lineno)
                usage, name = row[0].strip(), row[1].strip()
                votes = _parse_votes(row[2:12], new_path, lineno)
                if usage not in USAGE_TO_SPLIT:
                    raise DataError(new_path, f"unknown Usage {usage!r}", lineno)
                if not name:
                    counts.blank += 1
                    continue
                fields = _votes_to_record_fields(votes, new_path, lineno)
                if fields is None:
                    counts.unknown += 1
                    continue
                if len(old) < 3:
                    raise DataError(old_path, f"expected 3 fields, got {len(old)}", old_lineno)
                if old[2].strip() != usage:
                    raise DataError(new_path, f"Usage {usage!r} differs from {old_path.name}:{old_lineno} "
                                    f"({old[2].strip()!r}): files not in the same order", lineno)
                image = _pixels_to_image(old[1], old_path, old_lineno)
            except DataError as err:
                log.report(err)
                continue
            _tally(votes, counts)
            records.append(FaceRecord(id=Path(name).stem, labels=fields[0], image=image, distribution=fields[1],
                                      official_split=USAGE_TO_SPLIT[usage], source=f"{old_path}:{old_lineno}"))
    return records


def _folder_base(root: Path) -> Path | None:
    """The folder holding FER2013Train/... (ROOT itself or ROOT/data, as FERPlus's script writes it)."""
    for base in (root, root / "data"):
        if any((base / f).is_dir() for f in FOLDER_TO_SPLIT):
            return base
    return None


def _load_folder_layout(base: Path, log: ProblemLog, counts: _Counts, notes: list[str]) -> list[FaceRecord]:
    """FER2013Train/Valid/Test folders, each with label.csv beside its PNGs."""
    records = []
    for folder, split in FOLDER_TO_SPLIT.items():
        directory = base / folder
        if not directory.is_dir():
            notes.append(f"{folder}/ absent: no {split} rows")
            continue
        label_path = require_file(directory / "label.csv", "FER+ label file")
        present = {p.name for p in directory.iterdir()}
        with closing(csv_rows(label_path)) as rows:
            for lineno, row in rows:
                if not row or not any(c.strip() for c in row):
                    continue
                try:
                    if len(row) < 12:
                        raise DataError(label_path, f"expected 12 fields (name, box, 10 votes), got {len(row)}", lineno)
                    name = row[0].strip()
                    if lineno == 1 and row[2].strip().lower() == "neutral":
                        continue  # a header line some exports add
                    votes = _parse_votes(row[2:12], label_path, lineno)
                    if not name:
                        counts.blank += 1
                        continue
                    fields = _votes_to_record_fields(votes, label_path, lineno)
                    if fields is None:
                        counts.unknown += 1
                        continue
                    if name not in present:
                        raise DataError(label_path, f"image {name} not found in {directory}", lineno)
                except DataError as err:
                    log.report(err)
                    continue
                _tally(votes, counts)
                records.append(FaceRecord(id=Path(name).stem, labels=fields[0], image_path=directory / name,
                                          distribution=fields[1], official_split=split))
    return records


def load_ferplus(root: Path, skip_bad: bool = False, layout: str = "auto") -> DatasetIndex:
    """Load FER+ from `root` (layout 'folders' | 'csv' | 'auto' = folders when present)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "FER+ root not found" if not root.exists() else "FER+ root is not a folder")
    if layout not in LAYOUTS:
        raise ConfigError(f"FER+ layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    log, counts, notes = ProblemLog(skip_bad), _Counts(), []
    base = _folder_base(root) if layout in ("auto", "folders") else None
    if layout == "folders" and base is None:
        raise DataError(root / "FER2013Train", "FER+ folder layout not found")
    if base is not None:
        notes.append(f"layout: folders ({base})")
        records = _load_folder_layout(base, log, counts, notes)
    else:
        notes.append("layout: fer2013new.csv + fer2013.csv")
        records = _load_csv_layout(root, log, counts)
    empty = sum(1 for r in records if not r.labels.any())
    notes += [
        f"positive when vote share >= {SHARE_THRESHOLD:g} (shares over all 10 columns)",
        f"dropped {counts.unknown} rows whose majority is unknown or NF",
        f"dropped {counts.blank} rows with a blank image name",
        f"kept {counts.neutral} neutral-dominant rows; {empty} rows in all have no label of the six",
        f"kept {counts.contempt} contempt-dominant rows (contempt is not one of the six labels)",
    ]
    return DatasetIndex("ferplus", records, root=root, problems=log.problems, skipped=log.skipped, notes=notes)
