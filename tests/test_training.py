"""End-to-end training on the built-in dataset: learns, round-trips, resumes, stops on NaN."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch

from mfjle_lib.course.ablations import split_outputs
from mfjle_lib.errors import CheckpointError, ConfigError, TrainingDiverged
from mfjle_lib.evaluation.outputs import fused_metrics, load_outputs
from mfjle_lib.inference.evaluate import evaluate_checkpoint, evaluate_val_fusion, load_trained_model
from mfjle_lib.method.metrics import METRIC_KEYS, multilabel_metrics
from mfjle_lib.training.batches import load_data
from mfjle_lib.training.config import make_config
from mfjle_lib.training.run_files import RESUME_FORMAT, load_checkpoint
from mfjle_lib.training.trainer import train, validate

pytestmark = pytest.mark.slow


def tiny(**overrides):
    """A config that trains in seconds on 2 CPU cores."""
    base = dict(
        dataset="synthetic",
        num_images=240,
        source_size=64,
        global_size=32,
        local_size=16,
        epochs=3,
        batch_size=32,
        lr=2e-3,
        device="cpu",
    )
    base.update(overrides)
    return make_config("fast", **base)


@pytest.fixture(scope="module")
def bundle(data_dir):
    return load_data(tiny(), show_progress=False)


@pytest.fixture(scope="module")
def trained(bundle, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    yield train(tiny(model="mfjle", epochs=4), out, data=bundle, show_progress=False)
    shutil.rmtree(out, ignore_errors=True)  # about 1 GB of checkpoints; the disk is shared


def test_training_writes_every_output(trained) -> None:
    out = trained.out_dir
    for name in ("metrics.json", "history.csv", "checkpoint.pt", "last.pt", "test_outputs.npz"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    for key in (
        "hamming_loss",
        "one_error",
        "coverage",
        "ranking_loss",
        "average_precision",
        "micro_f1",
        "macro_f1",
        "micro_auc",
        "macro_auc",
        "n_samples",
        "n_ranking_excluded",
    ):
        assert key in metrics
    assert metrics["source_size"] == 64 and metrics["global_size"] == 32 and metrics["local_size"] == 16
    assert metrics["seed"] == 0 and metrics["split_seed"] == 0
    assert len(trained.history) == 4
    outputs = load_outputs(out / "test_outputs.npz")
    assert outputs["module_probs"].shape[1:] == (6, 6)
    assert outputs["module_probs"].dtype == np.float64


def test_training_beats_a_trivial_predictor(trained, bundle) -> None:
    """Better than predicting the training prevalence for every image (which ranks nothing)."""
    outputs = load_outputs(trained.out_dir / "test_outputs.npz")
    prior = bundle.prepared.labels[bundle.splits["train"]].mean(0)
    trivial = multilabel_metrics(outputs["labels"], np.tile(prior, (len(outputs["labels"]), 1)) + 1e-9 * np.arange(6))
    ours = trained.metrics
    assert ours["micro_auc"] > trivial["micro_auc"] + 0.05
    assert ours["average_precision"] > trivial["average_precision"]


def test_checkpoint_round_trip(trained, bundle) -> None:
    again = evaluate_checkpoint(trained.out_dir / "checkpoint.pt", data=bundle, show_progress=False)
    for key in ("micro_f1", "coverage", "average_precision"):
        assert again[key] == pytest.approx(trained.metrics[key], abs=1e-9)


def test_refusing_saved_outputs_equals_evaluating_with_those_weights(trained, bundle) -> None:
    weights = (1.0, 0.5, 0.0, 0.2, 0.0, 1.0)
    direct = evaluate_checkpoint(
        trained.out_dir / "checkpoint.pt", fusion_weights=weights, data=bundle, show_progress=False
    )
    refused = fused_metrics(load_outputs(trained.out_dir / "test_outputs.npz"), weights)
    for key in refused:
        assert refused[key] == pytest.approx(direct[key], abs=1e-9)


def test_every_caller_of_run_split_sees_the_same_outputs(trained, bundle) -> None:
    """The end of `train`, the lessons' `split_outputs`, `--fusion-weights val` and validation: one forward pass, one
    result."""
    ckpt = trained.out_dir / "checkpoint.pt"
    model, cfg = load_trained_model(ckpt, "cpu")
    for split in ("val", "test"):
        saved = load_outputs(trained.out_dir / f"{split}_outputs.npz")
        lesson = split_outputs(ckpt, bundle, split)
        assert set(saved) == set(lesson)
        for key in saved:
            np.testing.assert_array_equal(saved[key], lesson[key])
    fixed, _ = evaluate_val_fusion(ckpt, show_progress=False)
    assert {k: fixed[k] for k in METRIC_KEYS + ("modules", "fusion_weights")} == {
        k: trained.metrics[k] for k in METRIC_KEYS + ("modules", "fusion_weights")
    }
    # Validation of the selected weights (the eager model, as in training): the saved outputs (the
    # default inference path) up to rounding, and the loss the history recorded at that epoch.
    val = validate(model, bundle, cfg, torch.device("cpu"), 0, ckpt)
    saved = load_outputs(trained.out_dir / "val_outputs.npz")
    assert str(saved["inference_path"]) == trained.metrics["inference"]["path"]
    # Up to the path's rounding: float32's, or bfloat16's (8 mantissa bits) where `auto` picked bf16 on a CPU with
    # native bf16 (AVX-512-BF16, AMX).
    low = any(p in str(saved["inference_path"]) for p in ("bf16", "bfloat16", "int8", "mixed"))
    tol = {"rtol": 0.05, "atol": 0.05} if low else {"rtol": 1e-7, "atol": 1e-4}
    for key in val.outputs:
        if np.issubdtype(val.outputs[key].dtype, np.floating):
            np.testing.assert_allclose(val.outputs[key], saved[key], **tol)
        else:
            np.testing.assert_array_equal(val.outputs[key], saved[key])
    row = trained.history[trained.history["epoch"] == trained.metrics["selected_epoch"]].iloc[0]
    assert val.loss == row["val_loss"]


def test_resume_gives_the_same_result_as_an_uninterrupted_run(bundle, tmp_path) -> None:
    """Stop after epoch 1 (a finished 1-epoch run), then resume the same run to 3 epochs."""
    cfg = tiny(model="mfjle", epochs=3, augment=True)
    full = train(cfg, tmp_path / "full", data=bundle, show_progress=False)
    train(replace(cfg, epochs=1), tmp_path / "cut", data=bundle, show_progress=False)
    # A row from the "future" that the resume must cut away.
    hist = (tmp_path / "cut" / "history.csv").read_text()
    (tmp_path / "cut" / "history.csv").write_text(hist + hist.splitlines()[-1].replace("1,", "2,", 1) + "\n")
    resumed = train(cfg, tmp_path / "cut", resume=True, data=bundle, show_progress=False)
    assert (tmp_path / "cut" / "metrics.json").read_text() == (tmp_path / "full" / "metrics.json").read_text()
    assert resumed.metrics["micro_f1"] == full.metrics["micro_f1"]
    for name in ("test_outputs.npz", "val_outputs.npz"):
        a, b = load_outputs(tmp_path / "full" / name), load_outputs(tmp_path / "cut" / name)
        assert sorted(a) == sorted(b)
        for key in a:
            assert np.array_equal(a[key], b[key]), (name, key)
    assert list(resumed.history["epoch"]) == [1, 2, 3]
    assert resumed.history.drop(columns="time_s").equals(full.history.drop(columns="time_s"))


def test_sparse_resume_state_gives_the_same_run(bundle, tmp_path, monkeypatch) -> None:
    """`save_every_s`: last.pt and the selected checkpoint are written only at the interval and at the end, same
    result."""
    cfg = tiny(model="mfjle", epochs=3)
    every = train(cfg, tmp_path / "every", data=bundle, show_progress=False)
    import mfjle_lib.training.trainer as run_module

    writes = []
    real = run_module.save_resume_state
    monkeypatch.setattr(
        run_module,
        "save_resume_state",
        lambda path, parts, config, epoch, sel: (writes.append(epoch), real(path, parts, config, epoch, sel)),
    )
    sparse = train(cfg, tmp_path / "sparse", data=bundle, show_progress=False, save_every_s=3600)
    assert writes == [3]  # only after the last epoch
    assert load_checkpoint(tmp_path / "sparse" / "checkpoint.pt")["epoch"] == every.metrics["selected_epoch"]
    assert (tmp_path / "sparse" / "metrics.json").read_text().replace("sparse", "every") == (
        tmp_path / "every" / "metrics.json"
    ).read_text()
    assert sparse.metrics["micro_f1"] == every.metrics["micro_f1"]


def test_resume_refuses_other_settings(bundle, tmp_path) -> None:
    train(tiny(model="resnet18", epochs=1), tmp_path, data=bundle, show_progress=False)
    with pytest.raises(ConfigError, match="different settings"):
        train(tiny(model="resnet18", epochs=2, lr=0.5), tmp_path, resume=True, data=bundle, show_progress=False)


def test_baseline_and_ensemble_global_module_train_identically(bundle, tmp_path) -> None:
    """Same seed: MF-JLE's global branch *is* the ResNet-18 baseline (paired comparison).

    Compared epoch by epoch (losses, validation F1 of the global module) and weight by weight
    after the last epoch, so the check never depends on which epochs the two runs selected.
    """
    base = train(tiny(model="resnet18", epochs=2), tmp_path / "b", data=bundle, show_progress=False)
    ens = train(tiny(model="mfjle", epochs=2), tmp_path / "e", data=bundle, show_progress=False)
    assert np.array_equal(base.history["train_loss_global"].to_numpy(), ens.history["train_loss_global"].to_numpy())
    assert np.array_equal(base.history["val_micro_f1"].to_numpy(), ens.history["val_micro_f1_global"].to_numpy())
    wb = load_checkpoint(tmp_path / "b" / "last.pt", kind=RESUME_FORMAT)["model_state"]
    we = load_checkpoint(tmp_path / "e" / "last.pt", kind=RESUME_FORMAT)["model_state"]
    global_keys = [k for k in wb if k.startswith("global_net.")]
    assert global_keys and len(global_keys) == len(wb)
    for key in global_keys:
        assert torch.equal(wb[key], we[key]), key
    if base.metrics["selected_epoch"] == ens.metrics["selected_epoch"]:  # then the test outputs agree too
        gb = load_outputs(tmp_path / "b" / "test_outputs.npz")["global_logits"]
        ge = load_outputs(tmp_path / "e" / "test_outputs.npz")["global_logits"]
        assert np.array_equal(gb, ge)


def test_nan_loss_stops_with_epoch_and_module(bundle, tmp_path, monkeypatch) -> None:
    from mfjle_lib import method

    real = method.LoopLocalNets.forward

    def third_net_explodes(self, crops):
        out = real(self, crops)
        return torch.cat([out[:, :2], out[:, 2:3] * float("inf"), out[:, 3:]], dim=1)

    monkeypatch.setattr(method.LoopLocalNets, "forward", third_net_explodes)
    with pytest.raises(TrainingDiverged, match=r"epoch 1, batch 1, in the local3 module"):
        train(tiny(model="mfjle", epochs=1), tmp_path, data=bundle, show_progress=False)


def test_nan_landmarks_give_zero_crops_not_a_crash() -> None:
    from mfjle_lib.models.registry import build_model

    m = build_model("mfjle", global_size=32, local_size=16)
    crops = m.crops(torch.randn(2, 3, 64, 64), torch.full((2, 5, 2), float("nan")))
    assert torch.all(crops == 0)


def test_checkpoint_that_is_not_ours_is_refused(tmp_path) -> None:
    path = tmp_path / "x.pt"
    torch.save({"hello": torch.zeros(1)}, path)
    with pytest.raises(CheckpointError, match="not an mfjle"):
        load_trained_model(path)
