"""Bad label rows and image files of the RAF-ML, JAFFE and FER+ loaders through the real command line.

As in test_cli_bad_input.py: `python -m mfjle_lib data ...` in a subprocess stops with exit status 2
and one stderr line naming the file (and line); with --skip-bad the bad entries are skipped and counted.
"""

from __future__ import annotations

from pathlib import Path

import dataset_trees as trees
import pytest
from cli_helpers import ok_json, one_line_error, run_cli
from loader_helpers import replace_line

# =========================================================================== other loaders


@pytest.mark.slow  # a CLI subprocess that imports torch and decodes images
def test_rafml_malformed_label_line(tmp_path: Path, data_dir: Path) -> None:
    root = trees.build_rafml(tmp_path / "RAF-ML")
    dist = root / "EmoLabel" / "distribution.txt"
    replace_line(dist, 2, "0002.jpg 0.1 0.2 0.3 oops 0.2 0.2")
    one_line_error(
        run_cli(data_dir, "data", "--dataset", "rafml", "--root", root, "--json"),
        f"{dist}:2:",
        "'oops' is not a number",
    )
    summary = ok_json(
        run_cli(data_dir, "data", "--dataset", "rafml", "--root", root, "--source-size", 32, "--skip-bad", "--json")
    )
    assert summary["num_images"] == len(trees.RAFML_IDS) - 1
    assert summary["skipped"] == 1  # one image dropped; its knock-on mismatches are listed, not recounted
    assert any(p.startswith(f"{dist}:2:") for p in summary["problems"])


@pytest.mark.slow  # a CLI subprocess that imports torch and decodes images
def test_rafml_bad_image_file(tmp_path: Path, data_dir: Path) -> None:
    root = trees.build_rafml(tmp_path / "RAF-ML")
    bad = root / "Image" / "aligned" / "0003_aligned.jpg"
    bad.write_text("not a jpeg\n")
    one_line_error(
        run_cli(data_dir, "data", "--dataset", "rafml", "--root", root, "--source-size", 32, "--json"),
        str(bad),
        "not an image",
    )


@pytest.mark.slow  # a CLI subprocess that imports torch and decodes images
def test_jaffe_malformed_rating_row_and_bad_tiff(tmp_path: Path, data_dir: Path) -> None:
    root = trees.build_jaffe(tmp_path / "jaffe")
    readme = root / "A_README_FIRST.txt"
    lines = readme.read_text().splitlines()
    lineno = next(i for i, ln in enumerate(lines, 1) if ln.endswith(" KL-SU1"))
    replace_line(readme, lineno, lines[lineno - 1].replace("1.50", "n/a", 1))
    one_line_error(
        run_cli(data_dir, "data", "--dataset", "jaffe", "--root", root, "--json"),
        f"{readme}:{lineno}:",
        "'n/a' is not a number",
    )
    tiff = next(root.glob("KA.SU1.*.tiff"))
    tiff.write_bytes(tiff.read_bytes()[:40])  # header survives, pixels are gone
    summary = ok_json(
        run_cli(data_dir, "data", "--dataset", "jaffe", "--root", root, "--source-size", 32, "--skip-bad", "--json")
    )
    n = len(trees.JAFFE_SUBJECTS) * len(trees.JAFFE_POSES)
    assert summary["num_images"] == n - 2
    assert summary["skipped"] == 2
    assert any(p.startswith(f"{readme}:{lineno}:") for p in summary["problems"])
    assert any(p.startswith(f"{tiff}:") for p in summary["problems"])


@pytest.mark.slow  # a CLI subprocess that imports torch and decodes images
def test_ferplus_malformed_vote_row(tmp_path: Path, data_dir: Path) -> None:
    root = trees.build_ferplus_csv(tmp_path / "ferplus")
    new = root / "fer2013new.csv"
    replace_line(new, 2, "Training,fer0000000.png,0,6,4,0,0,0,0,0,0")  # ten fields, not twelve
    one_line_error(
        run_cli(data_dir, "data", "--dataset", "ferplus", "--root", root, "--json"), f"{new}:2:", "expected 12 fields"
    )
    summary = ok_json(
        run_cli(data_dir, "data", "--dataset", "ferplus", "--root", root, "--source-size", 32, "--skip-bad", "--json")
    )
    assert summary["skipped"] == 1 and len(summary["problems"]) == 1
    assert summary["problems"][0].startswith(f"{new}:2:")
    assert summary["num_images"] == 4  # the builder's 5 kept rows minus the malformed one
