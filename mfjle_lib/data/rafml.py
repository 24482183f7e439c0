"""RAF-ML loader: EmoLabel text files + original/aligned images (folders or packed zips) + landmarks.

Layout (docs/DESIGN.md §3, data/README.md):
    ROOT/EmoLabel/distribution.txt      0001.jpg p1 .. p6   (surprise fear disgust happiness sadness anger)
    ROOT/EmoLabel/multilabel.txt        0001.jpg b1 .. b6   (0/1; optional, else derived)
    ROOT/EmoLabel/partition_label.txt   0001.jpg 0|1        (0 train, 1 test; optional)
    ROOT/Image/original/0001.jpg        and/or Image/original.zip
    ROOT/Image/aligned/0001_aligned.jpg and/or Image/aligned.zip (also aligned/aligned/ nesting)
    ROOT/Annotation/manual/...          five 'x y' lines per original image, found by image id
Label files name images `0001.jpg` while aligned files are `0001_aligned.jpg`: both map to id '0001'.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..constants import NUM_LABELS
from ..errors import ConfigError, DataError
from .records import DatasetIndex, FaceRecord
from .text_files import ProblemLog, image_id, name_tokens, parse_number, read_lines, require_dir, require_file, scan_image_dir, scan_image_zip

#: Without multilabel.txt, an emotion is positive when its share of the (normalised) distribution
#: is above the uniform share 1/6: the annotators chose it more often than chance. RAF-ML's images
#: were selected for multi-peak distributions, so this keeps every peak. Our choice, not the
#: authors': prefer the shipped multilabel.txt, which is used whenever present.
DERIVED_LABEL_THRESHOLD = 1.0 / NUM_LABELS


#: Manual landmark files hold pixel-index coordinates (centre of the top-left pixel at (0, 0));
#: the library's convention puts that centre at (0.5, 0.5) (`method/crops.py`).
LANDMARK_PIXEL_OFFSET = 0.5


VARIANTS = ("auto", "aligned", "original")


_PARTITION = {0: "train", 1: "test"}


def _parse_table(path: Path, kind: str, log: ProblemLog, bad: set[str]) -> dict[str, tuple[int, list[float]]]:
    """Parse `name v1 .. vk` lines into {image id: (line, values)}; kind: 'dist' | 'multi' | 'part'.

    Ids of skipped lines go into `bad`, so their knock-on mismatches are listed but not recounted.
    """
    width = 1 if kind == "part" else NUM_LABELS
    table: dict[str, tuple[int, list[float]]] = {}
    for lineno, raw in enumerate(read_lines(path), start=1):
        tokens = raw.split()
        if not tokens:
            continue
        try:
            if len(tokens) != width + 1:
                got = f"got {len(tokens)} field(s)"
                raise DataError(path, f"expected an image name and {width} value(s), {got}", lineno)
            values = [parse_number(t, path, lineno) for t in tokens[1:]]
            if kind in ("multi", "part") and any(v not in (0.0, 1.0) for v in values):
                raise DataError(path, f"expected 0 or 1, got {' '.join(tokens[1:])}", lineno)
            if kind == "dist" and any(v < 0 for v in values):
                raise DataError(path, "distribution values must not be negative", lineno)
            key = image_id(tokens[0])
            if key in table:
                raise DataError(path, f"duplicate entry for {tokens[0]} (first at line {table[key][0]})", lineno)
        except DataError as err:
            log.report(err)
            bad.add(image_id(tokens[0]))
            continue
        table[key] = (lineno, values)
    return table


def _find_images(root: Path, variant: str) -> tuple[str, Path, dict[str, Path] | dict[str, str]] | None:
    """Locate the images of one variant: ('dir', folder, id->file) or ('zip', archive, id->member)."""
    for base in (root / "Image", root):
        folder = base / variant
        if folder.is_dir():
            found = scan_image_dir(folder)
            if found:
                return "dir", folder, found
        archive = base / f"{variant}.zip"
        if archive.is_file():
            return "zip", archive, scan_image_zip(archive)
    return None


def _landmark_files(root: Path) -> dict[str, list[Path]]:
    """Index Annotation/manual text files by every token of their name ('0001_manu_attri' -> '0001')."""
    folder = root / "Annotation" / "manual"
    index: dict[str, list[Path]] = {}
    if not folder.is_dir():
        return index
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in (".txt", ""):
            for tok in set(name_tokens(path.name)):
                index.setdefault(tok, []).append(path)
    return index


def _pick_landmark_file(index: dict[str, list[Path]], key: str) -> Path | None:
    """The annotation file for image id `key`: a name token equal to it (or numerically equal)."""
    hits = list(index.get(key, []))
    if not hits and key.isdigit():
        hits = [p for tok, paths in index.items() if tok.isdigit() and int(tok) == int(key) for p in paths]
    if not hits:
        return None
    # Prefer the manual-attribute file ('..._manu_attri.txt') and then the shortest name.
    hits.sort(key=lambda p: ("manu" not in p.name.lower(), len(p.name), str(p)))
    return hits[0]


def read_landmark_file(path: Path) -> np.ndarray:
    """Read five 'x y' lines (extra lines after them, e.g. attributes, are ignored) -> (5, 2) float32."""
    points: list[tuple[float, float]] = []
    for lineno, raw in enumerate(read_lines(path), start=1):
        tokens = raw.replace(",", " ").split()
        if not tokens:
            continue
        if len(tokens) < 2:
            raise DataError(path, f"expected an 'x y' landmark line, got {raw.strip()!r}", lineno)
        points.append((parse_number(tokens[0], path, lineno), parse_number(tokens[1], path, lineno)))
        if len(points) == 5:
            break
    if len(points) < 5:
        raise DataError(path, f"expected five 'x y' landmark lines, found {len(points)}")
    pts = np.asarray(points, np.float32) + LANDMARK_PIXEL_OFFSET
    # MTCNN order puts the image-left eye and mouth corner first; swap if a file lists them mirrored.
    if pts[0, 0] > pts[1, 0]:
        pts[[0, 1]] = pts[[1, 0]]
    if pts[3, 0] > pts[4, 0]:
        pts[[3, 4]] = pts[[4, 3]]
    return pts


def load_rafml(root: Path, skip_bad: bool = False, variant: str = "auto", landmarks: bool = True) -> DatasetIndex:
    """Load RAF-ML from `root` (variant 'aligned' | 'original' | 'auto' = aligned when present)."""
    root = require_dir(Path(root), "RAF-ML root")
    if variant not in VARIANTS:
        raise ConfigError(f"RAF-ML variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    labels_dir = require_dir(root / "EmoLabel", "RAF-ML label folder")
    dist_path = labels_dir / "distribution.txt"
    multi_path = labels_dir / "multilabel.txt"
    part_path = labels_dir / "partition_label.txt"
    log = ProblemLog(skip_bad)
    notes: list[str] = []

    # Images first: the variant decides what the label lines must match.
    source = None
    for candidate in (("aligned", "original") if variant == "auto" else (variant,)):
        source = _find_images(root, candidate)
        if source is not None:
            variant = candidate
            break
    if source is None:
        wanted = "Image/aligned or Image/original" if variant == "auto" else f"Image/{variant}"
        raise DataError(root / "Image", f"no RAF-ML images found ({wanted}, as a folder or .zip)")
    kind, location, images = source
    notes.append(f"images: {variant} ({location.relative_to(root)}{' packed' if kind == 'zip' else ''})")

    bad: set[str] = set()  # ids whose label line was skipped: already counted once
    dist = _parse_table(require_file(dist_path, "RAF-ML label file"), "dist", log, bad)
    multi = None
    if multi_path.is_file():
        multi = _parse_table(multi_path, "multi", log, bad)
    else:
        notes.append(f"multilabel.txt absent: labels derived as distribution share > {DERIVED_LABEL_THRESHOLD:.3f}")
    part = None
    if part_path.is_file():
        part = _parse_table(part_path, "part", log, bad)
    else:
        notes.append("partition_label.txt absent: no official split")

    lmk_index = _landmark_files(root) if (landmarks and variant == "original") else {}
    records: list[FaceRecord] = []
    for key, (lineno, values) in dist.items():
        try:
            if key not in images:
                raise DataError(dist_path, f"image {key} not found in {location}", lineno)
            if multi is not None and key not in multi:
                raise DataError(multi_path, f"no line for {key} (listed at {dist_path.name}:{lineno})")
            if part is not None and key not in part:
                raise DataError(part_path, f"no line for {key} (listed at {dist_path.name}:{lineno})")
        except DataError as err:
            log.report(err, dropped=key not in bad)
            continue
        distribution = np.asarray(values, np.float64)
        total = float(distribution.sum())
        shares = distribution / total if total > 0 else distribution  # float64 for the threshold
        if multi is not None:
            labels = np.asarray(multi[key][1], np.float32)
        else:
            labels = (shares > DERIVED_LABEL_THRESHOLD).astype(np.float32)
        split = _PARTITION[int(part[key][1][0])] if part is not None else None
        rec = FaceRecord(
            id=key,
            labels=labels,
            image_path=location if kind == "zip" else images[key],
            zip_member=images[key] if kind == "zip" else None,
            distribution=shares,
            official_split=split,
            aligned=variant == "aligned",
            source=f"{location}/{images[key]}" if kind == "zip" else "",
        )
        if lmk_index:
            lmk_path = _pick_landmark_file(lmk_index, key)
            if lmk_path is not None:
                try:
                    rec.landmarks = read_landmark_file(lmk_path)
                    rec.landmark_source = "dataset"
                except DataError as err:
                    log.report(err, dropped=False)  # the image stays; MTCNN finds its landmarks later
        records.append(rec)

    # Keys listed in one label file but not in distribution.txt, and images nobody labelled.
    for path, table in ((multi_path, multi), (part_path, part)):
        for key, (lineno, _) in (table or {}).items():
            if key not in dist:
                log.report(DataError(path, f"{key} has no line in {dist_path.name}", lineno), dropped=key not in bad)
    for key in sorted(set(images) - set(dist)):
        where = f"{location}/{images[key]}" if kind == "zip" else images[key]
        log.report(DataError(where, f"image has no line in {dist_path.name}"), dropped=key not in bad)

    if variant == "original" and landmarks:
        with_lmk = sum(r.landmark_source == "dataset" for r in records)
        notes.append(f"manual landmarks found for {with_lmk} of {len(records)} images (others: MTCNN later)")
    return DatasetIndex("rafml", records, root=root, problems=log.problems, skipped=log.skipped, notes=notes)
