"""The real-dataset study (`python -m mfjle_lib study`, issue 18): grid, resume, table, validation-only choice.

The end-to-end test runs the real command on a tiny JAFFE-format tree with a two-run grid.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dataset_trees as trees
import numpy as np
import pytest
from cli_helpers import one_line_error, run_cli

from mfjle_lib.errors import ConfigError
from mfjle_lib.evaluation import study_runs, study_table
from mfjle_lib.evaluation.outputs import load_outputs, save_outputs
from mfjle_lib.experiments.study import STARTS, default_splits, grid, study_command
from mfjle_lib.models.arms import arm_settings

SIZES = (
    "--preset",
    "fast",
    "--source-size",
    32,
    "--global-size",
    32,
    "--local-size",
    16,
    "--batch-size",
    16,
    "--device",
    "cpu",
    "--no-progress",
)


def test_default_jaffe_grid_is_the_issue_grid() -> None:
    runs = grid(default_splits("jaffe"), ("resnet18", "mfjle"), tuple(STARTS), 3)
    image = [r for r in runs if r.split == "paper"]
    subject = [r for r in runs if r.split == "subject"]
    # image split: both models x (scratch, started, started with a fresh head) x 3 seeds
    assert len(image) == 2 * 3 * 3 and {r.start for r in image} == set(STARTS)
    # subject split: the started runs only (head mode chosen on the image split's validation), both models, 3 seeds
    assert len(subject) == 2 * 3 and {r.start for r in subject} == {"started"}
    assert len({r.name for r in runs}) == len(runs)
    assert default_splits("rafml") == ("paper",)


def _study(data_dir: Path, root: Path, out: Path, work: Path, *extra: object):
    return run_cli(
        data_dir,
        "study",
        "--dataset",
        "jaffe",
        "--root",
        root,
        "--out",
        out,
        "--work",
        work,
        "--seeds",
        2,
        "--models",
        "mfjle",
        "--starts",
        "scratch",
        "--splits",
        "paper",
        *SIZES,
        *extra,
    )


@pytest.mark.slow  # trains two tiny MF-JLE runs in subprocesses (~1 min on 2 cores)
def test_study_end_to_end_resume_table_and_validation_only_choice(tmp_path: Path, data_dir: Path) -> None:
    root = trees.build_jaffe(tmp_path / "jaffe")
    out, work = tmp_path / "results", tmp_path / "work"
    proc = _study(data_dir, root, out, work, "--epochs", 1)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stdout[-3000:] + proc.stderr[-3000:]
    names = [f"paper_mfjle_scratch_seed{s}" for s in (0, 1)]
    for name in names:
        for f in ("metrics.json", "history.csv", "val_outputs.npz", "test_outputs.npz", "run.json"):
            assert (out / name / f).is_file(), (name, f)
        assert not list((out / name).glob("*.pt")), "checkpoints stay in the work folder"
        record = json.loads((out / name / "run.json").read_text())
        assert record["command"].startswith("python -m mfjle_lib train --dataset jaffe --root ROOT --model mfjle")
        assert str(root) not in (out / name / "metrics.json").read_text() and str(root) not in record["study_command"]
        # Which CPU and how many threads made the run: its rounding depends on both.
        assert {"cpu", "cpu_extensions", "cpu_threads", "cpu_capability"} <= set(record["machine"]) and record[
            "machine"
        ]["cpu_threads"] >= 1
    table = (out / "table.md").read_bytes()
    text = table.decode()
    assert (
        "MF-JLE (paper Table 2)" in text and "MF-JLE, from scratch, image split — fusion + t on val (2 seeds)" in text
    )
    assert "MF-JLE, from scratch, image split: fusion + t on val − paper fusion" in text

    # An interrupted study: seed 1's artefacts never landed, its work folder holds the run; the rerun
    # exports it without training seed 0 again, and the table comes out byte for byte the same.
    shutil.rmtree(out / names[1])
    ckpt = work / names[0] / "checkpoint.pt"
    mtime = ckpt.stat().st_mtime_ns
    proc = _study(data_dir, root, out, work, "--epochs", 1)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"{names[0]}: results present, not trained again" in proc.stdout and f"== {names[1]} ==" in proc.stdout
    assert ckpt.stat().st_mtime_ns == mtime
    assert (out / "table.md").read_bytes() == table

    # With every result present (and no work folder at all) nothing trains and the table is the same bytes.
    shutil.rmtree(work)
    proc = _study(data_dir, root, out, work, "--epochs", 1)
    assert proc.returncode == 0 and "== " not in proc.stdout and not work.exists(), proc.stdout[-2000:]
    assert (out / "table.md").read_bytes() == table

    # --table-only rebuilds the same bytes: the table names the command that rebuilds it, without --table-only.
    proc = _study(data_dir, root, out, work, "--epochs", 1, "--table-only")
    assert proc.returncode == 0 and (out / "table.md").read_bytes() == table, proc.stderr[-2000:]
    assert "--table-only" not in json.loads((out / "table.json").read_text())["study_command"]

    # Other settings than the results were made with: one line, nothing overwritten.
    one_line_error(_study(data_dir, root, out, work, "--epochs", 2), str(out / names[0]), "other settings (epochs)")

    # The choice of fusion and threshold reads validation outputs only: scrambling the test outputs
    # changes the test metrics but not one chosen weight or threshold.
    before = json.loads((out / "table.json").read_text())["runs"]
    rng = np.random.default_rng(0)
    for name in names:
        test = load_outputs(out / name / "test_outputs.npz")
        test["module_probs"] = rng.random(test["module_probs"].shape)
        test["labels"] = (rng.random(test["labels"].shape) > 0.5).astype(np.float32)
        save_outputs(out / name / "test_outputs.npz", test)
    after = json.loads(json.dumps(study_table.build(out)[1]))["runs"]
    for name in names:
        assert after[name]["val_choice"] == before[name]["val_choice"], name
    assert any(after[n]["val_fusion"] != before[n]["val_fusion"] for n in names)

    # A damaged artefact is named in one line, by the table and by the study before it trains anything.
    (out / names[0] / "metrics.json").write_text('{"micro_f1": 0.5, "hamm')
    bad = str(out / names[0] / "metrics.json")
    one_line_error(_study(data_dir, root, out, work, "--epochs", 1, "--table-only"), bad, "not valid JSON")
    proc = _study(data_dir, root, out, work, "--epochs", 1)
    one_line_error(proc, bad, "not valid JSON")
    assert "== " not in proc.stdout and not work.exists()


@pytest.mark.slow  # a CLI subprocess that imports torch
def test_table_only_on_an_empty_folder_is_one_line(tmp_path: Path, data_dir: Path) -> None:
    (tmp_path / "empty").mkdir()
    proc = run_cli(
        data_dir, "study", "--dataset", "jaffe", "--root", tmp_path, "--out", tmp_path / "empty", "--table-only"
    )
    one_line_error(proc, "no finished study runs")


@pytest.mark.slow  # a CLI subprocess that imports torch
def test_a_wrong_root_stops_before_any_training(tmp_path: Path, data_dir: Path) -> None:
    out, work = tmp_path / "results", tmp_path / "work"
    proc = run_cli(
        data_dir,
        "study",
        "--dataset",
        "jaffe",
        "--root",
        tmp_path / "nonexistent",
        "--out",
        out,
        "--work",
        work,
        *SIZES,
    )
    one_line_error(proc, str(tmp_path / "nonexistent"))
    assert "== " not in proc.stdout and not work.exists(), "nothing trained, not even the pretrained start"


def test_the_recorded_study_command_names_no_path_of_this_machine() -> None:
    shown = study_command(
        ["study", "--dataset", "ferplus", "--root", "/data/fer", "--work", "/scratch/w", "--seeds", "3"]
    )
    assert shown == "python -m mfjle_lib study --dataset ferplus --root ROOT --work WORK --seeds 3"


def test_arms_change_one_thing_each() -> None:
    cpu = {"source_size": 128, "global_size": 64, "local_size": 32, "crop_fraction": 0.25}
    assert arm_settings("resnet18", cpu) == {"model": "resnet18"} and arm_settings("mfjle", cpu) == {"model": "mfjle"}
    assert arm_settings("wholeface", cpu) == {
        "model": "wholeface",
        "local_size": 64,
    }  # six nets, each on the face at S_g
    assert arm_settings("mfjle_lowres", cpu) == {
        "model": "mfjle",
        "local_size": 16,
    }  # crops at the global's density (c·S_g)
    assert arm_settings("resnet18_full", cpu) == {
        "model": "resnet18",
        "global_size": 128,
    }  # the face at the locals' density: all of R
    with pytest.raises(ConfigError, match="unknown arm"):
        grid(("paper",), ("resnet18", "mfjle_hires"), ("scratch",), 1)
    # Run folders name the arm; the longest arm name wins (mfjle_lowres is not mfjle with a start 'lowres_scratch').
    found = study_runs._RUN.match("official_mfjle_lowres_scratch_seed2")
    assert found and (found["model"], found["start"], found["seed"]) == ("mfjle_lowres", "scratch", "2")
