"""Dataset loaders on tiny trees in the exact JAFFE format (TIFFs and the semantic ratings)."""

from __future__ import annotations

import shutil
from pathlib import Path

import dataset_trees as trees
import numpy as np
import pytest
from loader_helpers import expect_error, replace_line

from mfjle_lib.constants import EMOTIONS
from mfjle_lib.data.registry import load_index
from mfjle_lib.errors import DataError

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
    lineno = next(
        i for i, text in enumerate((root / "A_README_FIRST.txt").read_text().splitlines(), 1) if "ZZ-SU3" in text
    )
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
