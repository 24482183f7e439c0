"""Dataset loaders on tiny trees in the exact FER+ and folder formats; the registry's load_index."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import dataset_trees as trees
import numpy as np
import pytest
from loader_helpers import expect_error, replace_line

from mfjle_lib.constants import PAPER_TABLES
from mfjle_lib.data.image_io import load_record_image
from mfjle_lib.data.registry import DATASETS, dataset_names, has_official_split, load_index, loader_options
from mfjle_lib.errors import ConfigError, DataError

# =========================================================================== FER+

FER_EXPECTED = {  # id -> (labels, split)
    "fer0000000": ([1, 0, 0, 1, 0, 0], "train"),
    "fer0000001": ([0, 0, 0, 0, 0, 0], "train"),
    "fer0000004": ([0, 0, 1, 0, 0, 1], "val"),
    "fer0000006": ([0, 1, 0, 0, 0, 0], "test"),
    "fer0000007": ([0, 0, 0, 0, 1, 0], "test"),
}


def _check_ferplus(idx) -> None:
    assert [r.id for r in idx.records] == list(FER_EXPECTED)
    for rec in idx.records:
        labels, split = FER_EXPECTED[rec.id]
        np.testing.assert_array_equal(rec.labels, labels)
        assert rec.official_split == split
    rec = idx.records[0]  # happiness 6, surprise 4 of 10 votes
    np.testing.assert_allclose(rec.distribution, [0.4, 0, 0, 0.6, 0, 0], atol=1e-6)
    notes = " | ".join(idx.notes)
    for text in (
        "dropped 2 rows whose majority is unknown or NF",
        "dropped 1 rows with a blank image name",
        "kept 1 neutral-dominant",
        "kept 1 contempt-dominant",
        ">= 0.3",
    ):
        assert text in notes
    assert idx.problems == [] and idx.skipped == 0


def test_ferplus_csv_layout(ferplus_csv_root: Path) -> None:
    idx = load_index("ferplus", ferplus_csv_root)
    _check_ferplus(idx)
    rec = idx.records[2]  # row 4 of the files (0-based), the 'PublicTest' anger+disgust face
    img = load_record_image(rec)
    assert img.shape == (48, 48, 3) and img.dtype == np.uint8
    expected = np.asarray(trees.fer_pixels(4).split(), dtype=np.uint8).reshape(48, 48)
    np.testing.assert_array_equal(img[..., 1], expected)
    assert rec.source.endswith("fer2013.csv:6")


@pytest.mark.parametrize("under_data", [False, True])
def test_ferplus_folder_layout(tmp_path: Path, under_data: bool) -> None:
    root = trees.build_ferplus_folders(tmp_path / "f", under_data=under_data)
    idx = load_index("ferplus", root)
    _check_ferplus(idx)
    assert all(r.image_path.is_file() and r.image is None for r in idx.records)
    assert idx.records[2].image_path.parent.name == "FER2013Valid"


def test_ferplus_both_layouts_auto_prefers_folders(tmp_path: Path) -> None:
    root = trees.build_ferplus_folders(trees.build_ferplus_csv(tmp_path / "f"))
    assert load_index("ferplus", root).records[0].image_path is not None
    assert load_index("ferplus", root, layout="csv").records[0].image is not None


@pytest.mark.parametrize(
    ("line", "text", "reason"),
    [
        (3, "Training,fer0000001.png,8,0", "expected 12 fields"),
        (2, "Training,fer0000000.png,0,six,4,0,0,0,0,0,0,0", "not a number"),
    ],
)
def test_ferplus_csv_malformed_row(ferplus_csv_root: Path, line: int, text: str, reason: str) -> None:
    replace_line(ferplus_csv_root / "fer2013new.csv", line, text)
    with pytest.raises(DataError) as exc:
        load_index("ferplus", ferplus_csv_root)
    expect_error(exc, "fer2013new.csv", line, reason)
    idx = load_index("ferplus", ferplus_csv_root, skip_bad=True)
    assert len(idx) == 4 and idx.skipped == 1 and f"fer2013new.csv:{line}: " in idx.problems[0]


@pytest.mark.parametrize(
    ("pixels", "reason"),
    [("1 2 3", "expected 2304 pixel values"), ("1 two 3", "non-integer"), (" ".join(["256"] * 2304), "0..255")],
)
def test_ferplus_csv_bad_pixels(ferplus_csv_root: Path, pixels: str, reason: str) -> None:
    replace_line(ferplus_csv_root / "fer2013.csv", 2, f"3,{pixels},Training")
    with pytest.raises(DataError) as exc:
        load_index("ferplus", ferplus_csv_root)
    expect_error(exc, "fer2013.csv", 2, reason)
    assert len(load_index("ferplus", ferplus_csv_root, skip_bad=True)) == 4


def test_ferplus_csv_row_count_mismatch(ferplus_csv_root: Path) -> None:
    old = ferplus_csv_root / "fer2013.csv"
    old.write_text("\n".join(old.read_text().splitlines()[:-1]) + "\n")
    for skip in (False, True):
        with pytest.raises(DataError) as exc:
            load_index("ferplus", ferplus_csv_root, skip_bad=skip)
        expect_error(exc, "fer2013.csv", None, "fewer rows")


def test_ferplus_missing_files(tmp_path: Path, ferplus_csv_root: Path) -> None:
    (ferplus_csv_root / "fer2013.csv").unlink()
    with pytest.raises(DataError) as exc:
        load_index("ferplus", ferplus_csv_root, skip_bad=True)
    expect_error(exc, "fer2013.csv", None, "not found")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as exc:
        load_index("ferplus", tmp_path / "empty")
    expect_error(exc, "fer2013new.csv", None, "not found")


def test_ferplus_folder_missing_image_and_label_file(tmp_path: Path) -> None:
    root = trees.build_ferplus_folders(tmp_path / "f")
    (root / "FER2013Test/fer0000007.png").unlink()
    with pytest.raises(DataError) as exc:
        load_index("ferplus", root)
    expect_error(exc, "FER2013Test/label.csv", 2, "image fer0000007.png not found")
    idx = load_index("ferplus", root, skip_bad=True)
    assert len(idx) == 4 and idx.skipped == 1
    (root / "FER2013Valid/label.csv").unlink()
    with pytest.raises(DataError) as exc:
        load_index("ferplus", root, skip_bad=True)
    expect_error(exc, "FER2013Valid/label.csv", None, "not found")


def test_ferplus_folder_malformed_row(tmp_path: Path) -> None:
    root = trees.build_ferplus_folders(tmp_path / "f")
    label = root / "FER2013Train/label.csv"
    replace_line(label, 2, 'fer0000001.png,"(0, 0, 48, 48)",8,0,x,2,0,0,0,0,0,0')
    with pytest.raises(DataError) as exc:
        load_index("ferplus", root)
    expect_error(exc, "FER2013Train/label.csv", 2, "not a number")


# =========================================================================== folder


def test_folder_binary_labels(folder_root: Path) -> None:
    idx = load_index("folder", folder_root)
    assert len(idx) == 4 and idx.problems == []
    rec = idx.records[1]
    assert rec.id == "imgs/face1.png" and rec.image_path == folder_root / "imgs/face1.png"
    np.testing.assert_array_equal(rec.labels, [0, 1, 0, 0, 0, 0])
    assert rec.distribution is None and rec.subject is None and rec.official_split is None


def test_folder_float_labels_are_a_distribution(tmp_path: Path) -> None:
    root = trees.build_folder(tmp_path / "d", float_labels=True)
    rec = load_index("folder", root).records[0]
    np.testing.assert_allclose(rec.distribution, [0.6, 0.4, 0, 0, 0, 0], atol=1e-6)
    np.testing.assert_array_equal(rec.labels, [1, 0, 0, 0, 0, 0])


def test_folder_optional_subject_and_split_columns_in_any_order(tmp_path: Path) -> None:
    root = tmp_path / "d"
    trees.write_image(root / "a.png")
    (root / "labels.csv").write_text(
        "anger,path,sadness,happiness,disgust,fear,surprise,subject,split\n1,a.png,0,0,0,0.5,0,alice,test\n"
    )
    rec = load_index("folder", root).records[0]
    np.testing.assert_array_equal(rec.labels, [0, 1, 0, 0, 0, 1])
    assert rec.subject == "alice" and rec.official_split == "test"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("imgs/face2.png,0,0,1", "expected 7 fields"),
        ("imgs/face2.png,0,0,yes,0,0,0", "not a number"),
        ("imgs/face2.png,0,0,1.5,0,0,0", "must lie in [0, 1]"),
        ("imgs/gone.png,0,0,1,0,0,0", "image imgs/gone.png not found"),
    ],
)
def test_folder_malformed_rows(folder_root: Path, text: str, reason: str) -> None:
    replace_line(folder_root / "labels.csv", 4, text)
    with pytest.raises(DataError) as exc:
        load_index("folder", folder_root)
    expect_error(exc, "labels.csv", 4, reason)
    idx = load_index("folder", folder_root, skip_bad=True)
    assert len(idx) == 3 and idx.skipped == 1 and "labels.csv:4: " in idx.problems[0]


def test_folder_bad_header_and_missing_file(folder_root: Path) -> None:
    replace_line(folder_root / "labels.csv", 1, "file,surprise,fear")
    with pytest.raises(DataError) as exc:
        load_index("folder", folder_root, skip_bad=True)
    expect_error(exc, "labels.csv", 1, "header")
    (folder_root / "labels.csv").unlink()
    with pytest.raises(DataError) as exc:
        load_index("folder", folder_root, skip_bad=True)
    expect_error(exc, "labels.csv", None, "not found")


# =========================================================================== load_index


def test_load_index_names_and_errors(tmp_path: Path) -> None:
    assert dataset_names() == ("synthetic", "rafml", "jaffe", "ferplus", "folder")
    assert dataset_names(real_only=True) == ("rafml", "jaffe", "ferplus", "folder")
    with pytest.raises(ConfigError, match="synthetic, rafml, jaffe, ferplus, folder"):
        load_index("affectnet")
    for name in ("rafml", "jaffe", "ferplus", "folder"):
        with pytest.raises(ConfigError, match=f"dataset {name} needs --root DIR"):
            load_index(name)
    with pytest.raises(ConfigError, match="variant"):
        load_index("jaffe", tmp_path, variant="aligned")  # an option another loader takes


def test_load_index_synthetic_dispatch(monkeypatch: pytest.MonkeyPatch) -> None:
    import mfjle_lib.data.registry as registry

    calls = {}

    def fake(num_images: int = 3000, size: int = 128, seed: int = 0, cache: bool = True):
        calls.update(num_images=num_images, size=size, seed=seed, cache=cache)
        return "index"

    monkeypatch.setitem(registry.DATASETS, "synthetic", replace(registry.DATASETS["synthetic"], load=fake))
    assert load_index("synthetic", num_images=10, size=32, seed=3) == "index"
    assert calls == {"num_images": 10, "size": 32, "seed": 3, "cache": True}


def test_official_split_and_paper_table_keys() -> None:
    assert has_official_split("rafml") and has_official_split("ferplus")
    assert not has_official_split("jaffe") and not has_official_split("synthetic")
    assert {k for k, s in DATASETS.items() if s.paper_table} == {"rafml", "jaffe"}
    assert all(s.paper_table in PAPER_TABLES for s in DATASETS.values() if s.paper_table)


def test_loader_options_only_for_the_built_in_dataset() -> None:
    assert loader_options("synthetic", 64, num_images=10, render_seed=2) == {"size": 64, "num_images": 10, "seed": 2}
    assert loader_options("synthetic", 64) == {"size": 64}  # seed 0 and no count: the loader's defaults
    assert loader_options("jaffe", 64, num_images=10) == {}


def test_csv_module_quotes_box_as_one_field(tmp_path: Path) -> None:
    """The folder-layout box is a quoted field with commas: one column, not four."""
    root = trees.build_ferplus_folders(tmp_path / "f")
    with open(root / "FER2013Train/label.csv", newline="") as f:
        first = next(csv.reader(f))
    assert first[1] == "(0, 0, 48, 48)" and len(first) == 12
