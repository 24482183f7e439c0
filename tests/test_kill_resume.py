"""Interrupted training through the real command line (docs/DESIGN.md §7; issue #6).

A `train` process is SIGKILLed twice — as soon as epoch 1's last.pt appears, and in the middle of a
later checkpoint write — and `--resume` then finishes with exactly the metrics.json and
test_outputs.npz of an uninterrupted run with the same seed (CPU). Divergence and a damaged
last.pt end the command with one line.

The kill runs use the ResNet-18 baseline: it goes through the same training loop, resume state and
checkpoint writes as MF-JLE at a sixth of the cost (MF-JLE's six ResNets write ~1 GB of state per
epoch, minutes per run on two CPU cores). MFJLE_HEAVY_TESTS=1 adds the same test for mfjle;
tests/test_training.py resumes mfjle in-process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_helpers import REPO, cli_env, kill_when, one_line_error, run_cli

from mfjle_lib.method.metrics import METRIC_KEYS
from mfjle_lib.training.run_files import RESUME_FORMAT, load_checkpoint

pytestmark = pytest.mark.slow

HEAVY = bool(os.environ.get("MFJLE_HEAVY_TESTS"))
# 60 faces -> 36 train images, 3 batches per epoch; --augment puts the data RNG in the resume state;
# the fast preset's StepLR (step 2) puts a learning-rate change inside the run.
SMALL = [
    "--dataset",
    "synthetic",
    "--num-images",
    "60",
    "--preset",
    "fast",
    "--source-size",
    "32",
    "--global-size",
    "32",
    "--local-size",
    "16",
    "--epochs",
    "3",
    "--batch-size",
    "16",
    "--augment",
    "--seed",
    "3",
    "--device",
    "cpu",
    "--no-progress",
]


def _start(data_dir: Path, out: Path, model: str, *extra: str) -> subprocess.Popen:
    log = open(out.parent / f"{out.name}.log", "ab")
    cmd = [sys.executable, "-m", "mfjle_lib", "train", "--model", model, *SMALL, "--out", str(out), *extra]
    return subprocess.Popen(cmd, cwd=REPO, env=cli_env(data_dir), stdout=log, stderr=subprocess.STDOUT)


def _saving(out: Path) -> bool:
    """A checkpoint write is under way: its temp file exists."""
    return any(out.glob(".last.pt.*.tmp")) or any(out.glob(".checkpoint.pt.*.tmp"))


def _finished(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stdout[-2000:] + proc.stderr[-4000:]


@pytest.mark.parametrize(
    "model",
    [
        "resnet18",
        pytest.param("mfjle", marks=pytest.mark.skipif(not HEAVY, reason="set MFJLE_HEAVY_TESTS=1 (minutes on CPU)")),
    ],
)
def test_killed_train_resumes_to_the_same_result(model: str, data_dir: Path, tmp_path: Path) -> None:
    full, cut = tmp_path / "full", tmp_path / "cut"
    _finished(run_cli(data_dir, "train", "--model", model, *SMALL, "--out", full))

    # Kill 1: the moment epoch 1's resume state exists (epoch 2 is starting).
    kill_when(_start(data_dir, cut, model), lambda: (cut / "last.pt").exists(), "last.pt of epoch 1")
    assert load_checkpoint(cut / "last.pt", kind=RESUME_FORMAT)["epoch"] == 1
    assert not (cut / "metrics.json").exists()

    # Kill 2: resumed, then killed in the middle of writing a later checkpoint.
    kill_when(_start(data_dir, cut, model, "--resume"), lambda: _saving(cut), "a checkpoint write")
    state = load_checkpoint(cut / "last.pt", kind=RESUME_FORMAT)  # still whole: the old one or the new one
    assert 1 <= state["epoch"] <= 3
    assert (cut / "checkpoint.pt").exists()
    load_checkpoint(cut / "checkpoint.pt")
    assert not (cut / "metrics.json").exists()

    _finished(run_cli(data_dir, "train", "--model", model, *SMALL, "--resume", "--out", cut))

    a = json.loads((full / "metrics.json").read_text())
    b = json.loads((cut / "metrics.json").read_text())
    for key in METRIC_KEYS:
        assert b[key] == a[key], key  # exactly equal, not approximately
    assert b == a
    with np.load(full / "test_outputs.npz") as fa, np.load(cut / "test_outputs.npz") as fb:
        assert sorted(fa.files) == sorted(fb.files)
        for key in fa.files:
            assert np.array_equal(fa[key], fb[key]), key
    ha, hb = pd.read_csv(full / "history.csv"), pd.read_csv(cut / "history.csv")
    assert list(hb["epoch"]) == [1, 2, 3]
    pd.testing.assert_frame_equal(ha.drop(columns="time_s"), hb.drop(columns="time_s"), check_exact=True)
    assert sorted(p.name for p in cut.iterdir() if p.name.startswith(".")) == []  # no temp files left


def test_resume_from_a_damaged_last_pt_is_one_line(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "last.pt").write_bytes(b"PK\x03\x04 half a zip")
    one_line_error(
        run_cli(data_dir, "train", "--model", "resnet18", *SMALL, "--resume", "--out", out),
        f"{out / 'last.pt'}: ",
        "not a",
    )


_NAN_FROM_EPOCH_2 = """
import sys
import torch
import mfjle_lib.method.step as step  # the training step computes its loss there (Algorithm 1)
from mfjle_lib.cli import main

real = step.joint_loss
calls = {"n": 0}

def joint_loss(out, y, lambdas, loss):
    total, g, l = real(out, y, lambdas, loss)
    if not torch.is_grad_enabled():  # the validation loss: not a training step
        return total, g, l
    calls["n"] += 1
    if calls["n"] > 3:  # epoch 1 has 3 batches; epoch 2's first loss is infinite in the global module
        g = g * float("inf")
        total = total + g
    return total, g, l

step.joint_loss = joint_loss
sys.exit(main(sys.argv[1:]))
"""


def test_non_finite_loss_stops_with_one_line_and_keeps_last_good_checkpoint(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    cmd = [sys.executable, "-c", _NAN_FROM_EPOCH_2, "train", "--model", "resnet18", *SMALL, "--out", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, env=cli_env(data_dir), capture_output=True, text=True, timeout=600)
    one_line_error(
        proc,
        "loss became non-finite at epoch 2, batch 1, in the global module",
        f"last good checkpoint kept at {out / 'checkpoint.pt'}",
    )
    assert load_checkpoint(out / "checkpoint.pt")["epoch"] == 1
    assert load_checkpoint(out / "last.pt", kind=RESUME_FORMAT)["epoch"] == 1


def test_exploding_weights_stop_with_one_line(data_dir: Path, tmp_path: Path) -> None:
    """A real run that diverges (lr 1e38): the first step blows the weights up, validation catches it."""
    out = tmp_path / "run"
    args = [a if a != "16" else "64" for a in SMALL]  # one batch per epoch
    proc = run_cli(data_dir, "train", "--model", "resnet18", *args, "--lr", "1e38", "--out", out)
    one_line_error(proc, "became non-finite", "epoch 1", "global module")
    assert not (out / "checkpoint.pt").exists() and not (out / "last.pt").exists()
