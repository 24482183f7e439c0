"""Bad input through the real command line (docs/DESIGN.md §4, §7).

Every test runs `python -m mfjle_lib ...` in a subprocess with a private MFJLE_DATA_DIR:
- unusual but valid images (RGBA, palette, 16-bit and 8-bit gray, CMYK JPEG, EXIF-rotated JPEG,
  1x1) load; `data --json` counts their landmarks (the 1x1 under `fallback`);
- bad files and label rows stop the command with exit status 2 and one stderr line naming the
  file (and line), never a traceback; with --skip-bad they are skipped, counted and listed;
- the same for `predict` on photos, for the RAF-ML / JAFFE / FER+ loaders, and for bad options.
The table in docs/reliability.md points at these tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import (
    FOLDER_HEADER,
    jpeg_bytes,
    make_checkpoint,
    ok_json,
    one_line_error,
    run_cli,
    small_image,
    write_labels,
    write_unusual_images,
)


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    """A folder dataset of the same face in every unusual-but-valid form, plus a 1x1 image."""
    root = tmp_path_factory.mktemp("unusual")
    names = write_unusual_images(root)
    write_labels(root, [f"{name},0,0,0,1,0,0" for name in names])
    return root


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A small resnet18 checkpoint (random weights) in train's format."""
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "checkpoint.pt")


# =========================================================================== data: valid images


@pytest.mark.slow
def test_data_loads_every_unusual_but_valid_image(faces: Path, tmp_path: Path) -> None:
    """All decode; MTCNN finds the face in each (so none decoded black, inverted or sideways)."""
    data_dir = tmp_path / "data"  # private, so the one cache folder below is this run's
    summary = ok_json(run_cli(data_dir, "data", "--dataset", "folder", "--root", faces, "--source-size", 64, "--json"))
    assert summary["num_images"] == 8
    assert summary["skipped"] == 0 and summary["problems"] == []
    assert summary["landmarks"] == {"dataset": 0, "mtcnn": 7, "fallback": 1}
    assert summary["label_counts"]["happiness"] == 8
    # Per image, from the decoded cache: only the 1x1 image fell back, and the EXIF-rotated JPEG
    # became exactly the upright face (without the rotation MTCNN finds no face in it at all).
    (cache,) = (data_dir / "cache").glob("folder-64-*")
    meta = json.loads((cache / "meta.json").read_text())
    sources = dict(zip(meta["ids"], meta["landmark_sources"]))
    assert sources.pop("one_pixel.png") == "fallback"
    assert set(sources.values()) == {"mtcnn"}
    images = np.memmap(cache / "images.u8", dtype=np.uint8, mode="r", shape=(8, 64, 64, 3))
    row = {name: images[i] for i, name in enumerate(meta["ids"])}
    assert np.array_equal(row["exif_rotated.jpg"], row["upright_reference.png"])
    assert row["gray16.png"].std() > 20  # 16-bit stretched to the full range, not black
    assert np.array_equal(row["gray8.png"][..., 0], row["gray8.png"][..., 2])


# =========================================================================== data: bad files


def _bad_folder(root: Path, case: str) -> tuple[Path, list[str]]:
    """A folder dataset with one good image (line 2) and one bad entry (line 3); returns (root, needles)."""
    small_image(root / "good.png")
    row = "{},0,1,0,0,0,0"
    labels = root / "labels.csv"
    if case == "random_bytes":
        (root / "noise.jpg").write_bytes(np.random.default_rng(1).bytes(600))
        write_labels(root, [row.format("good.png"), row.format("noise.jpg")])
        return root, [str(root / "noise.jpg"), "not an image"]
    if case == "truncated_jpeg":
        full = jpeg_bytes()
        (root / "cut.jpg").write_bytes(full[: len(full) // 2])
        write_labels(root, [row.format("good.png"), row.format("cut.jpg")])
        return root, [str(root / "cut.jpg"), "truncated image"]
    if case == "text_named_jpg":
        (root / "notes.jpg").write_text("this is a text file, not a photo\n")
        write_labels(root, [row.format("good.png"), row.format("notes.jpg")])
        return root, [str(root / "notes.jpg"), "not an image"]
    if case == "empty_file":
        (root / "empty.png").write_bytes(b"")
        write_labels(root, [row.format("good.png"), row.format("empty.png")])
        return root, [str(root / "empty.png"), "empty file"]
    if case == "missing_image":
        write_labels(root, [row.format("good.png"), row.format("nothere.jpg")])
        return root, [f"{labels}:3", "nothere.jpg", "not found"]
    if case == "too_few_columns":
        write_labels(root, [row.format("good.png"), "good.png,0,1"])
        return root, [f"{labels}:3", "expected 7 fields, got 3"]
    if case == "not_a_number":
        small_image(root / "other.png", seed=1)
        write_labels(root, [row.format("good.png"), "other.png,0,high,0,0,0,0"])
        return root, [f"{labels}:3", "'high' is not a number"]
    if case == "not_utf8_label_file":
        write_labels(
            root, [], raw=(FOLDER_HEADER + "\ngood.png,0,1,0,0,0,0\ncaf\xe9.png,0,1,0,0,0,0\n").encode("latin-1")
        )
        return root, [f"{labels}:3", "not UTF-8"]
    raise AssertionError(case)


BAD_CASES = [
    "random_bytes",
    "truncated_jpeg",
    "text_named_jpg",
    "empty_file",
    "missing_image",
    "too_few_columns",
    "not_a_number",
    "not_utf8_label_file",
]
# Cases found only by decoding an image need torch and PIL in the subprocess (~6 s each on 2 cores):
# slow tier. The label-file cases stop before that and stay in `make check`.
DECODED_CASES = {"random_bytes", "truncated_jpeg", "text_named_jpg", "empty_file"}


@pytest.mark.parametrize(
    "case", [pytest.param(c, marks=pytest.mark.slow) if c in DECODED_CASES else c for c in BAD_CASES]
)
def test_data_bad_input_stops_with_one_line(case: str, tmp_path: Path, data_dir: Path) -> None:
    root, needles = _bad_folder(tmp_path / case, case)
    proc = run_cli(data_dir, "data", "--dataset", "folder", "--root", root, "--source-size", 32, "--json")
    one_line_error(proc, "error: ", *needles)
    assert proc.stdout == ""


@pytest.mark.slow  # a CLI subprocess that imports torch and decodes images
def test_data_skip_bad_skips_counts_and_lists(tmp_path: Path, data_dir: Path) -> None:
    """All the skippable cases in one folder: each skipped, counted once and listed with its file."""
    root = tmp_path / "mixed"
    small_image(root / "good.png")
    small_image(root / "good2.png", seed=2)
    full = jpeg_bytes()
    (root / "noise.jpg").write_bytes(np.random.default_rng(1).bytes(600))
    (root / "cut.jpg").write_bytes(full[: len(full) // 2])
    (root / "notes.jpg").write_text("text\n")
    (root / "empty.png").write_bytes(b"")
    rows = [
        "good.png,1,0,0,0,0,0",
        "noise.jpg,1,0,0,0,0,0",
        "cut.jpg,1,0,0,0,0,0",
        "notes.jpg,1,0,0,0,0,0",
        "empty.png,1,0,0,0,0,0",
        "nothere.jpg,1,0,0,0,0,0",
        "good2.png,0,1",
        "good2.png,0,x,0,0,0,0",
        "good2.png,0,0,0,0,0,1",
    ]
    labels = write_labels(root, rows)
    summary = ok_json(
        run_cli(data_dir, "data", "--dataset", "folder", "--root", root, "--source-size", 32, "--skip-bad", "--json")
    )
    assert summary["num_images"] == 2
    assert summary["skipped"] == 7
    assert sum(summary["landmarks"].values()) == 2 and summary["landmarks"]["fallback"] == 2
    problems = summary["problems"]
    assert len(problems) == 7
    expected = [
        (f"{labels}:7:", "nothere.jpg"),
        (f"{labels}:8:", "expected 7 fields"),
        (f"{labels}:9:", "'x' is not a number"),
        (f"{root / 'noise.jpg'}:", "not an image"),
        (f"{root / 'cut.jpg'}:", "truncated image"),
        (f"{root / 'notes.jpg'}:", "not an image"),
        (f"{root / 'empty.png'}:", "empty file"),
    ]
    for where, why in expected:
        assert any(p.startswith(where) and why in p for p in problems), (where, problems)


def test_data_undecodable_label_file_stops_even_with_skip_bad(tmp_path: Path, data_dir: Path) -> None:
    """A label file that is not text cannot be read row by row: stop, naming file and line."""
    root, needles = _bad_folder(tmp_path / "enc", "not_utf8_label_file")
    one_line_error(run_cli(data_dir, "data", "--dataset", "folder", "--root", root, "--skip-bad", "--json"), *needles)


@pytest.mark.slow  # a CLI subprocess that imports torch and decodes images
def test_data_utf16_label_file_loads(tmp_path: Path, data_dir: Path) -> None:
    """Spreadsheets save 'Unicode' CSV as UTF-16 with a BOM: read it, don't fail."""
    root = tmp_path / "u16"
    small_image(root / "good.png")
    write_labels(root, [], raw=(FOLDER_HEADER + "\r\ngood.png,0,1,0,0,0,0\r\n").encode("utf-16"))
    summary = ok_json(run_cli(data_dir, "data", "--dataset", "folder", "--root", root, "--source-size", 32, "--json"))
    assert summary["num_images"] == 1 and summary["label_counts"]["fear"] == 1


def test_data_missing_root_and_label_file(tmp_path: Path, data_dir: Path) -> None:
    one_line_error(
        run_cli(data_dir, "data", "--dataset", "folder", "--root", tmp_path / "nope", "--json"),
        str(tmp_path / "nope"),
        "not found",
    )
    (tmp_path / "empty").mkdir()
    one_line_error(
        run_cli(data_dir, "data", "--dataset", "folder", "--root", tmp_path / "empty", "--skip-bad"),
        str(tmp_path / "empty" / "labels.csv"),
        "not found",
    )


# =========================================================================== train: bad options


@pytest.mark.parametrize(
    "extra, needles",
    [
        # Options checked once torch is imported: a slow subprocess each; the parser's own checks stay quick.
        pytest.param(["--lambdas", "1,2"], ["--lambdas needs 5 values", "got 2"], marks=pytest.mark.slow),
        pytest.param(["--fusion-weights", "1,2,3"], ["fusion weights need 6 values", "got 3"], marks=pytest.mark.slow),
        (["--lambdas", "a,b"], ["--lambdas", "expected comma-separated numbers"]),
        pytest.param(
            ["--dataset", "folder", "--root", "{tmp}/no_such_dir"],
            ["{tmp}/no_such_dir", "not found"],
            marks=pytest.mark.slow,
        ),
        pytest.param(["--device", "warp9"], ["--device 'warp9' is not a device"], marks=pytest.mark.slow),
        (["--epochs", "0"], ["--epochs", "must be at least 1"]),
    ],
    ids=["lambdas_count", "fusion_count", "lambdas_text", "unknown_root", "device", "zero_epochs"],
)
def test_train_bad_options_one_line(extra: list[str], needles: list[str], tmp_path: Path, data_dir: Path) -> None:
    extra = [a.replace("{tmp}", str(tmp_path)) for a in extra]
    proc = run_cli(
        data_dir,
        "train",
        "--model",
        "mfjle",
        "--preset",
        "fast",
        "--num-images",
        40,
        "--device",
        "cpu",
        "--out",
        tmp_path / "run",
        *extra,
    )
    one_line_error(proc, *[n.replace("{tmp}", str(tmp_path)) for n in needles])
    assert not (tmp_path / "run" / "last.pt").exists()


@pytest.mark.slow  # a CLI subprocess that imports torch
def test_cuda_device_without_a_gpu_is_one_line(tmp_path: Path, data_dir: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    proc = run_cli(data_dir, "predict", "--checkpoint", tmp_path / "x.pt", "--device", "cuda", tmp_path / "x.jpg")
    one_line_error(proc, "--device cuda: no CUDA GPU is available here")


@pytest.mark.parametrize(
    "extra, needles",
    [
        (["--dataset", "jaffe"], ["jaffe needs --root"]),
        (["--source-size", "4"], ["at least 16 pixels"]),
        (["--num-images", "0"], ["--num-images", "must be at least 1"]),
        (["--image-size", "64"], ["--image-size is gone", "use --source-size"]),
    ],
    ids=["root_missing", "tiny_size", "zero_images", "renamed_flag"],
)
def test_data_bad_options_one_line(extra: list[str], needles: list[str], data_dir: Path) -> None:
    one_line_error(run_cli(data_dir, "data", "--json", *extra), *needles)


# =========================================================================== predict


@pytest.mark.slow
def test_predict_every_unusual_but_valid_image(faces: Path, checkpoint: Path, data_dir: Path) -> None:
    names = [
        "rgba.png",
        "palette.png",
        "gray16.png",
        "gray8.png",
        "cmyk.jpg",
        "exif_rotated.jpg",
        "upright_reference.png",
        "one_pixel.png",
    ]
    out = ok_json(
        run_cli(
            data_dir, "predict", "--checkpoint", checkpoint, "--allow-fallback", "--json", *[faces / n for n in names]
        )
    )
    assert [r["image"] for r in out] == [str(faces / n) for n in names]  # no problems entry
    by_name = {Path(r["image"]).name: r for r in out}
    for name, r in by_name.items():
        assert r["error"] is None and len(r["probs"]) == 6, r
        assert r["landmarks"] == ("fallback" if name == "one_pixel.png" else "mtcnn"), r
    assert by_name["exif_rotated.jpg"]["probs"] == by_name["upright_reference.png"]["probs"]


PREDICT_BAD = {
    "random_bytes": ("noise.jpg", lambda p: p.write_bytes(np.random.default_rng(1).bytes(600)), "not an image"),
    "truncated_jpeg": ("cut.jpg", lambda p: p.write_bytes(jpeg_bytes()[: len(jpeg_bytes()) // 2]), "truncated image"),
    "text_named_jpg": ("notes.jpg", lambda p: p.write_text("hello\n"), "not an image"),
    "empty_file": ("empty.png", lambda p: p.write_bytes(b""), "empty file"),
    "missing": ("nothere.jpg", lambda p: None, "file not found"),
    "directory": ("folder.jpg", lambda p: p.mkdir(), "not a file"),
}


@pytest.mark.parametrize("case", list(PREDICT_BAD))
def test_predict_bad_photo_stops_with_one_line(
    case: str, faces: Path, checkpoint: Path, tmp_path: Path, data_dir: Path
) -> None:
    name, make, reason = PREDICT_BAD[case]
    bad = tmp_path / name
    make(bad)
    proc = run_cli(data_dir, "predict", "--checkpoint", checkpoint, faces / "gray8.png", bad)
    one_line_error(proc, str(bad), reason)
    assert proc.stdout == ""


@pytest.mark.slow
def test_predict_skip_bad_skips_counts_and_lists(faces: Path, checkpoint: Path, tmp_path: Path, data_dir: Path) -> None:
    bad = []
    for name, make, _ in PREDICT_BAD.values():
        make(tmp_path / name)
        bad.append(tmp_path / name)
    out = ok_json(
        run_cli(data_dir, "predict", "--checkpoint", checkpoint, "--skip-bad", "--json", faces / "gray8.png", *bad)
    )
    assert len(out) == 2
    assert out[0]["image"] == str(faces / "gray8.png") and out[0]["error"] is None
    assert out[1]["skipped"] == len(bad)
    for path, (_, _, reason) in zip(bad, PREDICT_BAD.values()):
        assert any(p.startswith(f"{path}:") and reason in p for p in out[1]["problems"]), (path, out[1])
    # Every photo skipped: nothing to predict, exit 1, each listed.
    proc = run_cli(data_dir, "predict", "--checkpoint", checkpoint, "--skip-bad", *bad)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert sum(ln.startswith("skipped ") for ln in proc.stderr.splitlines()) == len(bad)
    assert ok_json(
        run_cli(data_dir, "predict", "--checkpoint", checkpoint, "--skip-bad", "--json", *bad[:2]), status=1
    ) == [{"problems": [f"{bad[0]}: not an image", f"{bad[1]}: truncated image"], "skipped": 2}]
