"""Strict initialisation, no silent overwrite, `--init-from`, `pretrain`, and `--fusion-weights val` (issue 13).

Real subprocesses (`python -m mfjle_lib ...`) on tiny built-in and JAFFE-format data; the pure
parts (matching by name and shape, the validation-only fusion chooser) are also tested in-process.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import dataset_trees as trees
import numpy as np
import pytest
import torch
from cli_helpers import make_checkpoint, ok_json, one_line_error, run_cli

from mfjle_lib.evaluation.fusion_choice import THRESHOLD_GRID, choose_fusion, report_val_fusion
from mfjle_lib.evaluation.outputs import load_outputs
from mfjle_lib.training.init_from import match, target_shapes
from mfjle_lib.training.run_files import load_checkpoint, save_checkpoint

TINY = (
    "--dataset",
    "synthetic",
    "--num-images",
    60,
    "--preset",
    "fast",
    "--source-size",
    32,
    "--global-size",
    32,
    "--local-size",
    16,
    "--epochs",
    1,
    "--batch-size",
    16,
    "--device",
    "cpu",
    "--no-progress",
)
R18 = len(target_shapes("resnet18"))  # tensors of one ResNet-18 in the canonical layout
PAPER = (1.0,) + (0.01,) * 5


def _train(data_dir: Path, out: Path, model: str, *extra: object) -> str:
    """Train a tiny run; assert success; return its stdout."""
    proc = run_cli(data_dir, "train", *TINY, "--model", model, "--out", out, *extra)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _report(stdout: str) -> str:
    """The one `init from ...` report line of a run's stdout."""
    lines = [ln for ln in stdout.splitlines() if ln.startswith("init from ")]
    assert len(lines) == 1, stdout
    return lines[0]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_dir: Path) -> Iterator[dict[str, Path]]:
    """One finished tiny run of each model (the starts of the `--init-from` tests)."""
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for model in ("resnet18", "mfjle"):
        _train(data_dir, root / model, model)
        out[model] = root / model
    yield out
    shutil.rmtree(root, ignore_errors=True)  # about 2 GB of checkpoints; the disk is shared


def test_fresh_head_skips_every_classifier_head() -> None:
    source = {k: torch.zeros(s) for k, s in target_shapes("mfjle").items()}
    pairs, skipped, _ = match(target_shapes("mfjle"), source, False, fresh_head=True)
    heads = [k for k in target_shapes("mfjle") if ".fc." in k]
    assert len(heads) == 2 * 6 and set(skipped) == set(heads)  # weight and bias of six heads
    assert all(why == "fresh head (--init-head fresh)" for why in skipped.values())
    assert len(pairs) == 6 * R18 - len(heads)
    pairs, skipped, _ = match(target_shapes("mfjle"), source, False)
    assert not skipped and len(pairs) == 6 * R18


# =========================================================================== strict initialisation (no training)


@pytest.mark.slow  # CLI subprocesses that import torch (>10 s on 2 cores); `make check` skips it
def test_bad_weights_file_is_one_line_and_writes_nothing(tmp_path: Path, data_dir: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_text("not a state dict\n")
    out = tmp_path / "out"
    one_line_error(
        run_cli(data_dir, "train", *TINY, "--model", "resnet18", "--weights", bad, "--out", out), str(bad), "--weights"
    )
    assert not out.exists()
    ckpt = make_checkpoint(
        tmp_path / "ckpt" / "checkpoint.pt"
    )  # this project's checkpoint is not bare ResNet-18 weights
    one_line_error(
        run_cli(data_dir, "train", *TINY, "--model", "resnet18", "--weights", ckpt, "--out", out), "--init-from"
    )
    assert not out.exists()


@pytest.mark.slow  # CLI subprocesses that import torch (>10 s on 2 cores); `make check` skips it
def test_pretrained_without_internet_is_one_line_and_writes_nothing(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "out"
    offline = {
        "TORCH_HOME": str(tmp_path / "torch"),
        "https_proxy": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "http_proxy": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "no_proxy": "",
        "NO_PROXY": "",
    }
    proc = run_cli(data_dir, "train", *TINY, "--model", "resnet18", "--pretrained", "--out", out, **offline)
    one_line_error(proc, "--pretrained", "--weights FILE")
    assert not out.exists()


@pytest.mark.slow  # CLI subprocesses that import torch (>10 s on 2 cores); `make check` skips it
def test_init_from_option_errors_write_nothing(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "out"
    one_line_error(
        run_cli(data_dir, "train", *TINY, "--model", "mfjle", "--init-from", tmp_path / "nope", "--out", out),
        "no such file or folder",
    )
    one_line_error(
        run_cli(data_dir, "train", *TINY, "--model", "mfjle", "--init-locals-from-global", "--out", out),
        "needs --init-from",
    )
    (tmp_path / "empty_run").mkdir()
    one_line_error(
        run_cli(data_dir, "train", *TINY, "--model", "mfjle", "--init-from", tmp_path / "empty_run", "--out", out),
        "no checkpoint.pt",
    )
    src = make_checkpoint(tmp_path / "m" / "checkpoint.pt", model="mfjle", crop_fraction=0.5)
    one_line_error(
        run_cli(data_dir, "train", *TINY, "--model", "mfjle", "--init-from", src, "--out", out),
        "c=0.5",
        "--crop-fraction 0.5",
    )
    assert not out.exists()


# =========================================================================== pure parts


def test_match_by_name_and_shape() -> None:
    r18 = {k: torch.zeros(s) for k, s in target_shapes("resnet18").items()}
    pairs, skipped, unused = match(target_shapes("mfjle"), r18, locals_from_global=False)
    assert len(pairs) == R18 and len(skipped) == 5 * R18 and unused == 0
    assert all(why == "missing from the source run" for why in skipped.values())
    pairs, skipped, _ = match(target_shapes("mfjle"), r18, locals_from_global=True)
    assert len(pairs) == 6 * R18 and not skipped
    assert pairs["local_nets.nets.4.conv1.weight"] == "global_net.conv1.weight"
    r18["global_net.fc.weight"] = torch.zeros(7, 512)  # a head for another label count
    r18["global_net.fc.bias"] = torch.zeros(7)
    pairs, skipped, unused = match(target_shapes("resnet18"), r18, locals_from_global=False)
    assert len(pairs) == R18 - 2 and set(skipped) == {"global_net.fc.weight", "global_net.fc.bias"} and unused == 2
    assert skipped["global_net.fc.weight"].startswith("shape mismatch")


def test_fusion_chooser_sees_validation_only_and_prefers_the_paper_on_ties() -> None:
    rng = np.random.default_rng(0)
    labels = (rng.random((40, 6)) < 0.3).astype(np.float32)
    probs = np.repeat(np.where(labels[:, None] > 0, 0.9, 0.1), 6, axis=1)  # every module perfect: all λ tie
    choice = choose_fusion(probs, labels, PAPER)
    assert choice.weights == PAPER and choice.threshold == 0.5 and choice.value == 1.0 and choice.paper_value == 1.0
    # Locals right, global wrong: the choice moves weight to the locals and beats the paper's fusion.
    probs[:, 0] = np.where(labels > 0, 0.1, 0.9)
    choice = choose_fusion(probs, labels, PAPER)
    assert choice.value == 1.0 > choice.paper_value and choice.threshold in THRESHOLD_GRID
    assert choice.weights[1] == 0.3  # the smallest λ that separates: of the tied choices, the closest to the paper's
    # The test split cannot move the choice: poisoned test outputs change the reported metrics only.
    val = {"module_probs": probs, "labels": labels}
    test_a = {"module_probs": probs, "labels": labels}
    test_b = {"module_probs": probs, "labels": 1 - labels}
    (ca, ma), (cb, mb) = report_val_fusion(val, test_a, PAPER), report_val_fusion(val, test_b, PAPER)
    assert ca == cb and ma["micro_f1"] != mb["micro_f1"]


# =========================================================================== overwrite (training)


@pytest.mark.slow
def test_finished_run_is_not_overwritten_without_overwrite(
    tmp_path: Path, data_dir: Path, runs: dict[str, Path]
) -> None:
    out = tmp_path / "run"
    shutil.copytree(runs["resnet18"], out)
    before = (out / "checkpoint.pt").read_bytes()
    line = one_line_error(
        run_cli(data_dir, "train", *TINY, "--model", "resnet18", "--out", out),
        str(out),
        "finished run",
        "--resume",
        "--overwrite",
    )
    assert "Traceback" not in line and (out / "checkpoint.pt").read_bytes() == before
    (out / "metrics.json").unlink()  # a partial run is protected too
    one_line_error(run_cli(data_dir, "train", *TINY, "--model", "resnet18", "--out", out), "partial run")
    (out / "notes.txt").write_text("mine")
    _train(data_dir, out, "resnet18", "--overwrite", "--seed", 1)
    assert (out / "checkpoint.pt").read_bytes() != before and (out / "notes.txt").read_text() == "mine"
    assert not list(tmp_path.glob("run.old-*")), "the replaced run is deleted once the new one has a checkpoint"
    assert json.loads((out / "metrics.json").read_text())["init"] == "random"
    (out / "last.pt").unlink()  # --resume with nothing to resume from would start afresh: refused too
    one_line_error(
        run_cli(data_dir, "train", *TINY, "--model", "resnet18", "--resume", "--out", out),
        "without a resume state",
        "--overwrite",
    )


# =========================================================================== --init-from (training)


def _state(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path / "checkpoint.pt" if path.is_dir() else path)["model_state"]


@pytest.mark.slow
def test_init_from_resnet18_to_resnet18(tmp_path: Path, data_dir: Path, runs: dict[str, Path]) -> None:
    out = tmp_path / "r18"
    stdout = _train(data_dir, out, "resnet18", "--init-from", runs["resnet18"], "--lr", 0)
    report = _report(stdout)
    assert f"loaded {R18} tensors" in report and "skipped 0" in report and "resnet18 -> resnet18" in report
    assert "geometry" in stdout and "source run" in stdout
    src, new = _state(runs["resnet18"]), _state(out)
    assert torch.equal(
        src["global_net.conv1.weight"], new["global_net.conv1.weight"]
    )  # lr 0: the start is what was loaded
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["init"].startswith(f"run:{runs['resnet18'] / 'checkpoint.pt'} sha256:")
    assert load_checkpoint(out / "checkpoint.pt")["config"]["init"] == metrics["init"]
    assert "init run:" in stdout  # the results-table row says which start


@pytest.mark.slow
def test_init_from_resnet18_to_mfjle_global_and_locals(tmp_path: Path, data_dir: Path, runs: dict[str, Path]) -> None:
    report = _report(_train(data_dir, tmp_path / "a", "mfjle", "--init-from", runs["resnet18"], "--lr", 0))
    assert (
        f"loaded {R18} tensors (global net {R18})" in report
        and f"skipped {5 * R18}" in report
        and "missing from the source run" in report
    )
    report = _report(
        _train(
            data_dir,
            tmp_path / "b",
            "mfjle",
            "--init-from",
            runs["resnet18"] / "checkpoint.pt",
            "--init-locals-from-global",
            "--lr",
            0,
        )
    )
    assert f"loaded {6 * R18} tensors" in report and "skipped 0" in report
    src, new = _state(runs["resnet18"]), _state(tmp_path / "b")
    for i in range(5):
        assert torch.equal(src["global_net.layer1.0.conv1.weight"], new[f"local_nets.nets.{i}.layer1.0.conv1.weight"])


@pytest.mark.slow
def test_init_from_mfjle_to_mfjle_and_a_head_of_another_size(
    tmp_path: Path, data_dir: Path, runs: dict[str, Path]
) -> None:
    report = _report(_train(data_dir, tmp_path / "a", "mfjle", "--init-from", runs["mfjle"]))
    assert f"loaded {6 * R18} tensors" in report and "skipped 0" in report
    payload = load_checkpoint(runs["mfjle"] / "checkpoint.pt")
    state = dict(payload["model_state"])
    for k in [k for k in state if ".fc." in k]:  # as if trained on 7 labels
        state[k] = torch.zeros((7, *state[k].shape[1:]))
    src = tmp_path / "seven" / "checkpoint.pt"
    src.parent.mkdir()
    save_checkpoint(src, state, payload["config"], {"epoch": 1})
    report = _report(_train(data_dir, tmp_path / "b", "mfjle", "--init-from", src))
    assert (
        f"loaded {6 * (R18 - 2)} tensors" in report
        and "skipped 12 (12 shape mismatch: heads of global net 2, local net 1 2," in report
    )


# =========================================================================== pretrain -> JAFFE (training)


@pytest.mark.slow
def test_pretrain_like_jaffe_then_train_jaffe_from_it(tmp_path: Path, data_dir: Path) -> None:
    pre = tmp_path / "pre"
    sizes = (
        "--preset",
        "fast",
        "--source-size",
        32,
        "--global-size",
        32,
        "--local-size",
        16,
        "--epochs",
        1,
        "--batch-size",
        16,
        "--device",
        "cpu",
        "--no-progress",
    )
    proc = run_cli(
        data_dir, "pretrain", "--like", "jaffe", "--model", "mfjle", "--num-images", 60, *sizes, "--out", pre
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "render seed 1" in proc.stdout and "--init-from" in proc.stdout
    cfg = load_checkpoint(pre / "checkpoint.pt")["config"]
    assert (
        cfg["dataset"] == "synthetic"
        and cfg["synthetic_seed"] == 1
        and (cfg["source_size"], cfg["global_size"], cfg["local_size"]) == (32, 32, 16)
    )
    root = trees.build_jaffe(tmp_path / "jaffe")
    out = tmp_path / "jaffe_run"
    proc = run_cli(
        data_dir,
        "train",
        "--dataset",
        "jaffe",
        "--root",
        root,
        "--model",
        "mfjle",
        *sizes,
        "--init-from",
        pre,
        "--out",
        out,
    )
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert f"loaded {6 * R18} tensors" in _report(proc.stdout)
    assert json.loads((out / "metrics.json").read_text())["init"].startswith(f"run:{pre / 'checkpoint.pt'}")
    # reproduce passes --init-from on to every run it trains: both models, every seed.
    rep = tmp_path / "rep"
    proc = run_cli(
        data_dir,
        "reproduce",
        "--dataset",
        "jaffe",
        "--root",
        root,
        *sizes,
        "--seeds",
        1,
        "--init-from",
        pre,
        "--out",
        rep,
    )
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    for model in ("resnet18", "mfjle"):
        assert json.loads((rep / f"{model}_seed0" / "metrics.json").read_text())["init"].startswith(
            f"run:{pre / 'checkpoint.pt'}"
        ), model
    assert f"init run:{pre / 'checkpoint.pt'}" in proc.stdout  # the table's rows say which start


# =========================================================================== --fusion-weights val


@pytest.mark.slow
def test_fusion_weights_val_chooses_on_validation_only(tmp_path: Path, data_dir: Path, runs: dict[str, Path]) -> None:
    # evaluate: the run's saved val_outputs.npz, no forward pass over val; both rows reported.
    res = ok_json(
        run_cli(
            data_dir,
            "evaluate",
            "--checkpoint",
            runs["mfjle"] / "checkpoint.pt",
            "--fusion-weights",
            "val",
            "--device",
            "cpu",
            "--json",
        )
    )
    choice = res["val_chosen"]["fusion_choice"]
    assert (
        choice["validation_outputs"] == str(runs["mfjle"] / "val_outputs.npz")
        and choice["objective"] == "validation micro-F1"
    )
    assert (
        res["fixed"]["fusion_weights"] == list(PAPER)
        and res["val_chosen"]["fusion_weights"] == choice["fusion_weights"]
    )
    # reproduce reuses the two finished runs (same settings) and re-fuses them on validation.
    rep = tmp_path / "rep"
    for model in ("resnet18", "mfjle"):
        shutil.copytree(runs[model], rep / f"{model}_seed0")
    args = ("reproduce", *TINY, "--seeds", 1, "--fusion-weights", "val", "--out", rep)
    proc = run_cli(data_dir, *args)
    assert proc.returncode == 0 and "fusion chosen on val" in proc.stdout and "== " not in proc.stdout, (
        proc.stdout + proc.stderr[-3000:]
    )
    first = json.loads((rep / "mfjle_fusion_on_val.json").read_text())[0]
    # Poison the test split's saved outputs: the choice must not move, only the test numbers.
    test_path = rep / "mfjle_seed0" / "test_outputs.npz"
    test = load_outputs(test_path)
    test["labels"] = 1 - test["labels"]
    np.savez_compressed(test_path, **test)
    assert run_cli(data_dir, *args).returncode == 0
    second = json.loads((rep / "mfjle_fusion_on_val.json").read_text())[0]
    assert second["fusion_choice"] == first["fusion_choice"]
    assert second["micro_f1"] != first["micro_f1"]
