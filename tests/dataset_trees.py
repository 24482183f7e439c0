"""Builders of tiny dataset trees in the exact on-disk formats of RAF-ML, JAFFE, FER+ and `folder`.

Reusable by any test: each function writes generated images and label files under a folder and
returns what a loader should find. Images are a few pixels wide so trees build in milliseconds.
"""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

# --------------------------------------------------------------------------- images


def write_image(path: Path, size: int = 16, mode: str = "RGB", seed: int = 0, **save_kw: object) -> Path:
    """Write a small random image in `mode`; the format follows the suffix."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "L":
        img = Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8), "L")
    else:
        img = Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "RGB")
        if mode != "RGB":
            img = img.convert(mode)
    img.save(path, **save_kw)
    return path


# --------------------------------------------------------------------------- RAF-ML

RAFML_IDS = ("0001", "0002", "0003", "0004", "0005", "0006")
# Distribution rows (surprise fear disgust happiness sadness anger); shares sum to 1.
RAFML_DISTRIBUTIONS = {
    "0001": (0.50, 0.30, 0.00, 0.00, 0.10, 0.10),
    "0002": (0.00, 0.00, 0.45, 0.00, 0.10, 0.45),
    "0003": (0.05, 0.05, 0.05, 0.70, 0.10, 0.05),
    "0004": (0.20, 0.20, 0.20, 0.10, 0.20, 0.10),
    "0005": (0.00, 0.60, 0.00, 0.00, 0.40, 0.00),
    "0006": (0.34, 0.00, 0.00, 0.33, 0.00, 0.33),
}
# multilabel.txt rows: deliberately not what the 1/6 derivation gives for 0004 (to tell them apart).
RAFML_MULTILABELS = {
    "0001": (1, 1, 0, 0, 0, 0),
    "0002": (0, 0, 1, 0, 0, 1),
    "0003": (0, 0, 0, 1, 0, 0),
    "0004": (1, 0, 0, 0, 0, 0),
    "0005": (0, 1, 0, 0, 1, 0),
    "0006": (1, 0, 0, 1, 0, 1),
}
RAFML_PARTITION = {"0001": 0, "0002": 0, "0003": 0, "0004": 0, "0005": 1, "0006": 1}
# Five manual landmarks (pixel indices, image-left eye first) then attribute lines, as RAF-DB ships.
RAFML_LANDMARKS = [(4.0, 5.0), (11.0, 5.0), (8.0, 9.0), (5.0, 12.0), (11.0, 12.0)]


def build_rafml(
    root: Path,
    ids: tuple[str, ...] = RAFML_IDS,
    aligned: bool = True,
    original: bool = True,
    packed: bool = False,
    nested: bool = False,
    multilabel: bool = True,
    partition: bool = True,
    landmarks: bool = True,
    landmark_name: str = "{id}_manu_attri.txt",
) -> Path:
    """Write a RAF-ML tree: EmoLabel/*.txt, Image/aligned|original (folders or zips), Annotation/manual."""
    labels = root / "EmoLabel"
    labels.mkdir(parents=True, exist_ok=True)
    (labels / "distribution.txt").write_text(
        "".join(f"{i}.jpg " + " ".join(f"{v:.4f}" for v in RAFML_DISTRIBUTIONS[i]) + "\n" for i in ids)
    )
    if multilabel:
        (labels / "multilabel.txt").write_text(
            "".join(f"{i}.jpg " + " ".join(str(v) for v in RAFML_MULTILABELS[i]) + "\n" for i in ids)
        )
    if partition:
        (labels / "partition_label.txt").write_text("".join(f"{i}.jpg {RAFML_PARTITION[i]}\n" for i in ids))
    image_dir = root / "Image"
    for variant, enabled in (("aligned", aligned), ("original", original)):
        if not enabled:
            continue
        folder = image_dir / variant / (variant if nested else "")
        for n, i in enumerate(ids):
            name = f"{i}_aligned.jpg" if variant == "aligned" else f"{i}.jpg"
            write_image(folder / name, seed=n)
        if packed:
            archive = image_dir / f"{variant}.zip"
            with zipfile.ZipFile(archive, "w") as zf:
                for path in sorted((image_dir / variant).rglob("*.jpg")):
                    zf.write(path, path.relative_to(image_dir).as_posix())
                zf.writestr(f"__MACOSX/{variant}/._junk.jpg", b"junk")
            for path in sorted((image_dir / variant).rglob("*"), reverse=True):
                path.unlink() if path.is_file() else path.rmdir()
            (image_dir / variant).rmdir()
    if landmarks:
        manual = root / "Annotation" / "manual"
        manual.mkdir(parents=True, exist_ok=True)
        for i in ids:
            lines = [f"{x:.2f}\t{y:.2f}" for x, y in RAFML_LANDMARKS] + ["0", "1", "2"]
            (manual / landmark_name.format(id=i)).write_text("\n".join(lines) + "\n")
    return root


# --------------------------------------------------------------------------- JAFFE

JAFFE_SUBJECTS = ("KA", "KL", "KM", "KR", "MK", "NA", "NM", "TM", "UY", "YM")
JAFFE_POSES = ("HA1", "SU1")
JAFFE_HEADER = "# HAP SAD SUR ANG DIS FEA PIC"


def jaffe_ratings(subject: str, pose: str) -> dict[str, float]:
    """Deterministic ratings: the posed emotion 4.5, happiness 3.0 exactly (not > 3), others 1.5-2.5."""
    base = {"HAP": 3.0, "SAD": 1.5, "SUR": 2.0, "ANG": 2.5, "DIS": 1.8, "FEA": 2.2}
    posed = {"HA": "HAP", "SU": "SUR", "AN": "ANG", "SA": "SAD", "DI": "DIS", "FE": "FEA"}.get(pose[:2])
    if posed:
        base[posed] = 4.5
    if subject == "KA" and pose == "HA1":
        base["HAP"] = 2.9  # one image with no rating > 3: a label-free image that must stay
    return base


def build_jaffe(
    root: Path,
    subjects: tuple[str, ...] = JAFFE_SUBJECTS,
    poses: tuple[str, ...] = JAFFE_POSES,
    readme: str = "A_README_FIRST.txt",
    fear_excluded: bool = True,
    suffix: str = ".tiff",
    extra_rows: tuple[str, ...] = (),
) -> Path:
    """Write JAFFE: grayscale TIFFs `KA.HA1.1.tiff` and the ratings table inside `readme`."""
    root.mkdir(parents=True, exist_ok=True)
    rows, fear_rows, seq = [], [], 1
    for s in subjects:
        for p in poses:
            write_image(root / f"{s}.{p}.{seq}{suffix}", size=8, mode="L", seed=seq)
            r = jaffe_ratings(s, p)
            n = len(rows) + 1
            rows.append(
                f"{n} {r['HAP']:.2f} {r['SAD']:.2f} {r['SUR']:.2f} {r['ANG']:.2f} {r['DIS']:.2f} {r['FEA']:.2f} {s}-{p}"
            )
            fear_rows.append(f"{n} {r['HAP']:.2f} {r['SAD']:.2f} {r['SUR']:.2f} {r['ANG']:.2f} {r['DIS']:.2f} {s}-{p}")
            seq += 1
    text = [
        "The Japanese Female Facial Expression (JAFFE) Database",
        "",
        "Semantic ratings of the images (averages over 60 raters, scale 1-5):",
        "",
        JAFFE_HEADER,
        "-" * 40,
        *rows,
        *extra_rows,
    ]
    if fear_excluded:
        text += ["", "Fear Excluded", "", "# HAP SAD SUR ANG DIS PIC", "-" * 36, *fear_rows]
    text += ["", "Contact: see the licence terms."]
    (root / readme).write_text("\n".join(text) + "\n")
    return root


# --------------------------------------------------------------------------- FER+

FERPLUS_HEADER = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"
# (usage, image name, 10 votes) — covers: blend, neutral-dominant, unknown-dominant, NF-dominant,
# blank name, contempt-dominant, single emotion.
FERPLUS_ROWS = [
    ("Training", "fer0000000.png", (0, 6, 4, 0, 0, 0, 0, 0, 0, 0)),  # happiness + surprise
    ("Training", "fer0000001.png", (8, 0, 0, 2, 0, 0, 0, 0, 0, 0)),  # neutral-dominant, label-free
    ("Training", "fer0000002.png", (1, 0, 0, 0, 0, 0, 0, 0, 9, 0)),  # unknown-dominant: dropped
    ("Training", "", (10, 0, 0, 0, 0, 0, 0, 0, 0, 0)),  # blank name: dropped
    ("PublicTest", "fer0000004.png", (0, 0, 0, 0, 7, 3, 0, 0, 0, 0)),  # anger + disgust
    ("PublicTest", "fer0000005.png", (0, 0, 0, 0, 0, 0, 0, 0, 0, 10)),  # NF: dropped
    ("PrivateTest", "fer0000006.png", (2, 0, 0, 0, 0, 0, 3, 5, 0, 0)),  # contempt-dominant, fear
    ("PrivateTest", "fer0000007.png", (0, 0, 0, 10, 0, 0, 0, 0, 0, 0)),  # sadness
]


def fer_pixels(seed: int) -> str:
    """A 48x48 gray FER2013 pixel string."""
    return " ".join(str(v) for v in np.random.default_rng(seed).integers(0, 256, 48 * 48))


def build_ferplus_csv(root: Path, rows: list = FERPLUS_ROWS) -> Path:
    """Write fer2013new.csv beside a fer2013.csv with the same row order."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "fer2013new.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(FERPLUS_HEADER.split(","))
        for usage, name, votes in rows:
            w.writerow([usage, name, *votes])
    with open(root / "fer2013.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["emotion", "pixels", "Usage"])
        for n, (usage, _, _) in enumerate(rows):
            w.writerow([n % 7, fer_pixels(n), usage])
    return root


def build_ferplus_folders(root: Path, rows: list = FERPLUS_ROWS, under_data: bool = False) -> Path:
    """Write FER2013Train|Valid|Test/label.csv (no header, quoted box) beside 48x48 PNGs."""
    base = root / "data" if under_data else root
    folder = {"Training": "FER2013Train", "PublicTest": "FER2013Valid", "PrivateTest": "FER2013Test"}
    for name in folder.values():
        (base / name).mkdir(parents=True, exist_ok=True)
    for n, (usage, name, votes) in enumerate(rows):
        directory = base / folder[usage]
        if name:
            write_image(directory / name, size=48, mode="L", seed=n)
        with open(directory / "label.csv", "a", newline="") as f:
            csv.writer(f).writerow([name, "(0, 0, 48, 48)", *votes])
    return root


# --------------------------------------------------------------------------- folder

FOLDER_HEADER = "path,surprise,fear,disgust,happiness,sadness,anger"


def build_folder(root: Path, float_labels: bool = False, n: int = 4) -> Path:
    """Write DIR/labels.csv and images in a subfolder (0/1 or float values)."""
    root.mkdir(parents=True, exist_ok=True)
    lines = [FOLDER_HEADER]
    for i in range(n):
        rel = f"imgs/face{i}.png"
        write_image(root / rel, seed=i)
        if float_labels:
            values = [0.0] * 6
            values[i % 6], values[(i + 1) % 6] = 0.6, 0.4
            lines.append(rel + "," + ",".join(f"{v:g}" for v in values))
        else:
            values = [0] * 6
            values[i % 6] = 1
            lines.append(rel + "," + ",".join(str(v) for v in values))
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root
