"""Dataset loaders on tiny trees in the exact RAF-ML / JAFFE / FER+ / folder formats."""
from __future__ import annotations

import csv
import shutil
from dataclasses import replace
from pathlib import Path

import dataset_trees as trees
import numpy as np
import pytest

from mfjle_lib.constants import EMOTIONS, PAPER_TABLES
from mfjle_lib.data.registry import DATASETS, dataset_names, has_official_split, load_index, loader_options
from mfjle_lib.errors import ConfigError, DataError
from mfjle_lib.data.image_io import load_record_image


def expect_error(exc: pytest.ExceptionInfo, filename: str, line: int | None = None, reason: str = "") -> None:
    """The DataError names the file (and line), in the exception and in its one-line message."""
    err = exc.value
    assert isinstance(err, DataError)
    assert err.path is not None and filename in err.path, str(err)
    assert filename in str(err)
    if line is not None:
        assert err.line == line, str(err)
        assert f":{line}: " in str(err)
    if reason:
        assert reason in err.reason, str(err)


def replace_line(path: Path, lineno: int, text: str) -> None:
    """Overwrite one 1-based line of a text file."""
    lines = path.read_text().splitlines()
    lines[lineno - 1] = text
    path.write_text("\n".join(lines) + "\n")


# =========================================================================== RAF-ML


def test_rafml_auto_prefers_aligned(rafml_root: Path) -> None:
    idx = load_index("rafml", rafml_root)
    assert idx.name == "rafml" and len(idx) == 6 and idx.problems == [] and idx.skipped == 0
    by_id = {r.id: r for r in idx.records}
    assert list(by_id) == list(trees.RAFML_IDS)
    for key, rec in by_id.items():
        assert rec.aligned and rec.landmarks is None and rec.landmark_source is None
        assert rec.image_path.name == f"{key}_aligned.jpg" and rec.image_path.is_file()
        np.testing.assert_array_equal(rec.labels, trees.RAFML_MULTILABELS[key])
        np.testing.assert_allclose(rec.distribution, trees.RAFML_DISTRIBUTIONS[key], atol=1e-4)
        assert rec.official_split == ("train" if trees.RAFML_PARTITION[key] == 0 else "test")
    assert load_record_image(idx.records[0]).shape == (16, 16, 3)


def test_rafml_original_with_manual_landmarks(rafml_root: Path) -> None:
    idx = load_index("rafml", rafml_root, variant="original")
    rec = idx.records[0]
    assert not rec.aligned and rec.image_path.name == "0001.jpg"
    assert rec.landmark_source == "dataset"
    # Five lines read, attribute lines after them ignored, shifted to pixel-centre coordinates.
    np.testing.assert_allclose(rec.landmarks, np.asarray(trees.RAFML_LANDMARKS) + 0.5)
    assert all(r.landmark_source == "dataset" for r in idx.records)


def test_rafml_landmark_file_named_by_id_only(tmp_path: Path) -> None:
    root = trees.build_rafml(tmp_path / "r", aligned=False, landmark_name="{id}.txt")
    idx = load_index("rafml", root)  # auto falls back to original
    assert not idx.records[0].aligned
    assert all(r.landmarks is not None for r in idx.records)


def test_rafml_mirrored_landmarks_are_reordered(tmp_path: Path) -> None:
    root = trees.build_rafml(tmp_path / "r", aligned=False)
    (root / "Annotation/manual/0001_manu_attri.txt").write_text("11 5\n4 5\n8 9\n11 12\n5 12\n")
    rec = load_index("rafml", root).records[0]
    assert rec.landmarks[0, 0] < rec.landmarks[1, 0] and rec.landmarks[3, 0] < rec.landmarks[4, 0]


def test_rafml_without_annotations_leaves_landmarks_for_mtcnn(tmp_path: Path) -> None:
    root = trees.build_rafml(tmp_path / "r", aligned=False, landmarks=False)
    idx = load_index("rafml", root)
    assert all(r.landmarks is None and r.landmark_source is None for r in idx.records)


def test_rafml_nested_aligned_folder(tmp_path: Path) -> None:
    root = trees.build_rafml(tmp_path / "r", original=False, nested=True)
    idx = load_index("rafml", root)
    assert len(idx) == 6 and idx.problems == []
    assert idx.records[0].image_path.parent.name == "aligned"
    assert idx.records[0].image_path.parent.parent.name == "aligned"


@pytest.mark.parametrize("variant", ["aligned", "original"])
def test_rafml_packed_zips(tmp_path: Path, variant: str) -> None:
    root = trees.build_rafml(tmp_path / "r", packed=True, nested=(variant == "aligned"))
    assert (root / "Image" / f"{variant}.zip").is_file() and not (root / "Image" / variant).exists()
    idx = load_index("rafml", root, variant=variant)
    assert len(idx) == 6 and idx.problems == []  # __MACOSX junk in the zip is ignored
    rec = idx.records[2]
    assert rec.image_path.name == f"{variant}.zip" and rec.zip_member.endswith(".jpg")
    assert "0003" in rec.zip_member
    assert load_record_image(rec).shape == (16, 16, 3)
    assert (rec.landmarks is not None) == (variant == "original")


def test_rafml_multilabel_absent_derives_labels(tmp_path: Path) -> None:
    root = trees.build_rafml(tmp_path / "r", multilabel=False)
    idx = load_index("rafml", root)
    by_id = {r.id: r for r in idx.records}
    # 0004 = (.2 .2 .2 .1 .2 .1): shares above 1/6 are positive (multilabel.txt would say 1 0 0 0 0 0).
    np.testing.assert_array_equal(by_id["0004"].labels, [1, 1, 1, 0, 1, 0])
    np.testing.assert_array_equal(by_id["0001"].labels, [1, 1, 0, 0, 0, 0])
    assert any("multilabel.txt absent" in n for n in idx.notes)


def test_rafml_partition_absent(tmp_path: Path) -> None:
    root = trees.build_rafml(tmp_path / "r", partition=False)
    idx = load_index("rafml", root)
    assert all(r.official_split is None for r in idx.records)
    assert any("partition_label.txt absent" in n for n in idx.notes)


def test_rafml_label_paths_may_name_aligned_files(rafml_root: Path) -> None:
    dist = rafml_root / "EmoLabel/distribution.txt"
    dist.write_text(dist.read_text().replace(".jpg", "_aligned.jpg"))
    assert len(load_index("rafml", rafml_root)) == 6


@pytest.mark.parametrize(
    ("text", "reason"),
    [("0003.jpg 0.1 0.2", "expected an image name and 6 value"), ("0003.jpg 0.1 x 0 0 0 0", "not a number")],
)
def test_rafml_malformed_distribution_line(rafml_root: Path, text: str, reason: str) -> None:
    dist = rafml_root / "EmoLabel/distribution.txt"
    replace_line(dist, 3, text)
    with pytest.raises(DataError) as exc:
        load_index("rafml", rafml_root)
    expect_error(exc, "distribution.txt", 3, reason)
    idx = load_index("rafml", rafml_root, skip_bad=True)
    assert [r.id for r in idx.records] == ["0001", "0002", "0004", "0005", "0006"]
    assert idx.skipped == 1 and "distribution.txt:3: " in idx.problems[0]
    # The dropped line's entries in the other label files are listed as unmatched keys.
    assert any("multilabel.txt" in p and "0003" in p for p in idx.problems)


def test_rafml_multilabel_value_must_be_binary(rafml_root: Path) -> None:
    replace_line(rafml_root / "EmoLabel/multilabel.txt", 2, "0002.jpg 0 0 2 0 0 1")
    with pytest.raises(DataError) as exc:
        load_index("rafml", rafml_root)
    expect_error(exc, "multilabel.txt", 2, "expected 0 or 1")


def test_rafml_missing_image(rafml_root: Path) -> None:
    (rafml_root / "Image/aligned/0003_aligned.jpg").unlink()
    with pytest.raises(DataError) as exc:
        load_index("rafml", rafml_root)
    expect_error(exc, "distribution.txt", 3, "image 0003 not found")
    idx = load_index("rafml", rafml_root, skip_bad=True)
    assert len(idx) == 5 and idx.skipped == 1 and "0003" in idx.problems[0]


def test_rafml_image_without_label(rafml_root: Path) -> None:
    trees.write_image(rafml_root / "Image/aligned/0099_aligned.jpg")
    with pytest.raises(DataError) as exc:
        load_index("rafml", rafml_root)
    expect_error(exc, "0099_aligned.jpg", None, "no line in distribution.txt")
    idx = load_index("rafml", rafml_root, skip_bad=True)
    assert len(idx) == 6 and idx.skipped == 1 and "0099_aligned.jpg" in idx.problems[0]


def test_rafml_label_key_missing_from_partition(rafml_root: Path) -> None:
    part = rafml_root / "EmoLabel/partition_label.txt"
    part.write_text("".join(line + "\n" for line in part.read_text().splitlines() if not line.startswith("0005")))
    with pytest.raises(DataError) as exc:
        load_index("rafml", rafml_root)
    expect_error(exc, "partition_label.txt", None, "no line for 0005")
    assert len(load_index("rafml", rafml_root, skip_bad=True)) == 5


def test_rafml_bad_landmark_file(tmp_path: Path) -> None:
    root = trees.build_rafml(tmp_path / "r", aligned=False)
    (root / "Annotation/manual/0002_manu_attri.txt").write_text("1 2\n3 4\n")
    with pytest.raises(DataError) as exc:
        load_index("rafml", root)
    expect_error(exc, "0002_manu_attri.txt", None, "five")
    idx = load_index("rafml", root, skip_bad=True)
    assert len(idx) == 6 and idx.skipped == 0  # the image stays; MTCNN will find its landmarks
    assert idx.records[1].landmarks is None and "0002_manu_attri.txt" in idx.problems[0]


def test_rafml_missing_label_file_and_root(rafml_root: Path) -> None:
    (rafml_root / "EmoLabel/distribution.txt").unlink()
    for skip in (False, True):
        with pytest.raises(DataError) as exc:
            load_index("rafml", rafml_root, skip_bad=skip)
        expect_error(exc, "distribution.txt", None, "not found")
    with pytest.raises(DataError) as exc:
        load_index("rafml", rafml_root / "nope", skip_bad=True)
    expect_error(exc, "nope", None, "not found")


def test_rafml_wrong_variant(tmp_path: Path) -> None:
    root = trees.build_rafml(tmp_path / "r", aligned=False)
    with pytest.raises(DataError) as exc:
        load_index("rafml", root, variant="aligned")
    expect_error(exc, "Image", None, "no RAF-ML images")
    with pytest.raises(ConfigError):
        load_index("rafml", root, variant="sideways")


# =========================================================================== JAFFE


def _canonical(r: dict[str, float]) -> list[float]:
    return [r[c] for c in ("SUR", "FEA", "DIS", "HAP", "SAD", "ANG")]


def test_jaffe_basic(jaffe_root: Path) -> None:
    idx = load_index("jaffe", jaffe_root)
    assert len(idx) == 20 and idx.problems == [] and idx.skipped == 0
    assert {r.subject for r in idx.records} == set(trees.JAFFE_SUBJECTS)
    assert all(r.official_split is None and not r.aligned for r in idx.records)
    by_id = {r.id: r for r in idx.records}
    rec = by_id["KM.SU1.6"]
    ratings = trees.jaffe_ratings("KM", "SU1")
    np.testing.assert_allclose(rec.distribution, _canonical(ratings), atol=1e-6)  # mapped by column name
    np.testing.assert_array_equal(rec.labels, [1, 0, 0, 0, 0, 0])  # surprise only; HAP = 3.0 is not > 3
    np.testing.assert_array_equal(by_id["KA.HA1.1"].labels, np.zeros(6))  # label-free stays
    assert by_id["KM.HA1.5"].labels[EMOTIONS.index("happiness")] == 1
    assert any("Fear Excluded" in n for n in idx.notes)
    assert any("1 of 20 images have no rating" in n for n in idx.notes)


def test_jaffe_readme_name_tif_suffix_and_separate_file(tmp_path: Path) -> None:
    root = trees.build_jaffe(tmp_path / "j", readme="README_FIRST.txt", suffix=".tif", fear_excluded=False)
    assert len(load_index("jaffe", root)) == 20
    # The table in a separate file in a subfolder, found by its header line.
    other = tmp_path / "j2"
    trees.build_jaffe(other)
    (other / "sub").mkdir()
    shutil.move(other / "A_README_FIRST.txt", other / "sub" / "semantic_ratings.txt")
    (other / "A_README_FIRST.txt").write_text("See sub/semantic_ratings.txt\n")
    idx = load_index("jaffe", other)
    assert len(idx) == 20 and "semantic_ratings.txt" in idx.notes[0]


def test_jaffe_columns_mapped_by_name(tmp_path: Path) -> None:
    root = tmp_path / "j"
    trees.write_image(root / "KA.AN1.39.tiff", size=8, mode="L")
    (root / "A_README_FIRST.txt").write_text(
        "#  ANG  DIS  FEA  HAP  SAD  SUR  PIC\n"
        "-------------------------------------\n"
        "1  4.20 3.50 1.00 1.10 2.00 3.01 KA-AN1\n"
    )
    rec = load_index("jaffe", root).records[0]
    assert rec.id == "KA.AN1.39" and rec.subject == "KA"
    np.testing.assert_allclose(rec.distribution, [3.01, 1.00, 3.50, 1.10, 2.00, 4.20], atol=1e-6)
    np.testing.assert_array_equal(rec.labels, [1, 0, 1, 0, 0, 1])


def test_jaffe_headerless_five_column_table_after_blank_is_not_parsed(tmp_path: Path) -> None:
    root = trees.build_jaffe(tmp_path / "j", fear_excluded=False)
    readme = root / "A_README_FIRST.txt"
    lines = readme.read_text().splitlines()
    end = max(i for i, line in enumerate(lines) if line.endswith("YM-SU1"))
    lines[end + 1 : end + 1] = ["", "1 2.00 1.50 4.50 2.50 1.80 KA-HA1"]
    readme.write_text("\n".join(lines) + "\n")
    idx = load_index("jaffe", root)
    assert len(idx) == 20 and idx.problems == []


@pytest.mark.parametrize(
    ("row", "reason"),
    [("5 2.00 1.50 KM-HA1", "expected 8 fields"), ("5 2.00 1.50 2.00 2.50 1.80 oops KM-HA1", "not a number")],
)
def test_jaffe_malformed_row(tmp_path: Path, row: str, reason: str) -> None:
    root = trees.build_jaffe(tmp_path / "j")
    readme = root / "A_README_FIRST.txt"
    lineno = next(i for i, line in enumerate(readme.read_text().splitlines(), 1) if line.endswith("KM-HA1"))
    replace_line(readme, lineno, row)
    with pytest.raises(DataError) as exc:
        load_index("jaffe", root)
    expect_error(exc, "A_README_FIRST.txt", lineno, reason)
    idx = load_index("jaffe", root, skip_bad=True)
    assert len(idx) == 19 and idx.skipped == 1  # the bad row; its image is listed, not counted again
    assert f"A_README_FIRST.txt:{lineno}: " in idx.problems[0]
    assert "KM.HA1.5.tiff" in idx.problems[1] and "no semantic rating for KM-HA1" in idx.problems[1]


def test_jaffe_rating_without_image(tmp_path: Path) -> None:
    root = trees.build_jaffe(tmp_path / "j", extra_rows=("21 1.0 1.0 4.0 1.0 1.0 1.0 ZZ-SU3",))
    lineno = next(i for i, l in enumerate((root / "A_README_FIRST.txt").read_text().splitlines(), 1) if "ZZ-SU3" in l)
    with pytest.raises(DataError) as exc:
        load_index("jaffe", root)
    expect_error(exc, "A_README_FIRST.txt", lineno, "no image for rating ZZ-SU3")
    idx = load_index("jaffe", root, skip_bad=True)
    assert len(idx) == 20 and idx.skipped == 1 and "ZZ-SU3" in idx.problems[0]


def test_jaffe_image_without_rating(jaffe_root: Path) -> None:
    trees.write_image(jaffe_root / "ZZ.AN2.99.tiff", size=8, mode="L")
    trees.write_image(jaffe_root / "not_jaffe.tiff", size=8, mode="L")  # ignored, noted
    with pytest.raises(DataError) as exc:
        load_index("jaffe", jaffe_root)
    expect_error(exc, "ZZ.AN2.99.tiff", None, "no semantic rating")
    idx = load_index("jaffe", jaffe_root, skip_bad=True)
    assert len(idx) == 20 and idx.skipped == 1 and "ZZ.AN2.99.tiff" in idx.problems[0]
    assert any("ignored 1 TIFF" in n for n in idx.notes)


def test_jaffe_missing_ratings_and_root(tmp_path: Path) -> None:
    root = trees.build_jaffe(tmp_path / "j")
    (root / "A_README_FIRST.txt").write_text("no table here\n")
    with pytest.raises(DataError) as exc:
        load_index("jaffe", root, skip_bad=True)
    expect_error(exc, str(root), None, "no semantic ratings table")
    with pytest.raises(DataError) as exc:
        load_index("jaffe", root, ratings_file="missing.txt")
    expect_error(exc, "missing.txt", None, "not found")
    with pytest.raises(DataError) as exc:
        load_index("jaffe", tmp_path / "absent")
    expect_error(exc, "absent", None, "not found")


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
    for text in ("dropped 2 rows whose majority is unknown or NF", "dropped 1 rows with a blank image name",
                 "kept 1 neutral-dominant", "kept 1 contempt-dominant", ">= 0.3"):
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
    [(3, "Training,fer0000001.png,8,0", "expected 12 fields"), (2, "Training,fer0000000.png,0,six,4,0,0,0,0,0,0,0", "not a number")],
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
    (root / "labels.csv").write_text("anger,path,sadness,happiness,disgust,fear,surprise,subject,split\n"
                                     "1,a.png,0,0,0,0.5,0,alice,test\n")
    rec = load_index("folder", root).records[0]
    np.testing.assert_array_equal(rec.labels, [0, 1, 0, 0, 0, 1])
    assert rec.subject == "alice" and rec.official_split == "test"


@pytest.mark.parametrize(
    ("text", "reason"),
    [("imgs/face2.png,0,0,1", "expected 7 fields"), ("imgs/face2.png,0,0,yes,0,0,0", "not a number"),
     ("imgs/face2.png,0,0,1.5,0,0,0", "must lie in [0, 1]"), ("imgs/gone.png,0,0,1,0,0,0", "image imgs/gone.png not found")],
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
