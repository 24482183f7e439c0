"""Dataset loaders on tiny trees in the exact RAF-ML formats (aligned, original, zipped)."""

from __future__ import annotations

from pathlib import Path

import dataset_trees as trees
import numpy as np
import pytest
from loader_helpers import expect_error, replace_line

from mfjle_lib.data.image_io import load_record_image
from mfjle_lib.data.registry import load_index
from mfjle_lib.errors import ConfigError, DataError

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
