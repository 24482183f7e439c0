"""The inference path of a trained model (`--precision`): the choice, its record, and outputs equal to the eager
model's.

The bf16 branch only runs on CPUs with native bf16; its logic is tested here on any machine by
answering the capability query for it (`native_bf16` monkeypatched).
"""

from __future__ import annotations

import json
import shutil
import types

import numpy as np
import pytest
import torch

import mfjle_lib.perf.inference_path as ip
import mfjle_lib.training.inference_path as inference
from mfjle_lib.cli.main import main
from mfjle_lib.cli.parser import build_parser
from mfjle_lib.errors import ConfigError
from mfjle_lib.inference.evaluate import evaluate_checkpoint, load_trained_model
from mfjle_lib.method.metrics import METRIC_KEYS, multilabel_report
from mfjle_lib.training.batches import load_data, run_split
from mfjle_lib.training.config import make_config
from mfjle_lib.training.inference_path import inference_model
from mfjle_lib.training.trainer import train

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
TRAINS = pytest.mark.slow  # the tests below train a tiny model: the house keeps training in the slow tier
NATIVE, EMULATED = (True, "test: avx512_bf16"), (False, "test: no avx512_bf16")


def _passing() -> dict:
    return {"split": "val", "micro_f1_change": -0.001, "passed": True}


def _failing() -> dict:
    return {"split": "val", "micro_f1_change": -0.02, "passed": False}


# ---------------------------------------------------------------------------------------------- the choice


def test_auto_is_fp32_without_native_bf16_and_runs_no_check() -> None:
    ran = []
    rec = ip.choose_path("auto", CPU, True, EMULATED, lambda: ran.append(1) or _passing())
    assert rec["path"] == "fp32" and rec["native_bf16"] is False and "no native bf16" in rec["reason"]
    assert ran == [] and "bf16_check" not in rec  # no check where bf16 is not a candidate


def test_auto_is_bf16_with_native_bf16_and_a_passing_check() -> None:
    rec = ip.choose_path("auto", CPU, True, NATIVE, _passing)
    assert rec["path"] == "bf16" and rec["bf16_check"]["passed"] and "passed" in rec["reason"]


def test_auto_is_fp32_when_the_check_fails_and_says_so() -> None:
    rec = ip.choose_path("auto", CPU, True, NATIVE, _failing)
    assert (
        rec["path"] == "fp32"
        and rec["bf16_check"] == _failing()
        and "FAILED" in rec["reason"]
        and "-0.0200" in rec["reason"]
    )


def test_auto_is_fp32_with_native_bf16_but_no_check() -> None:
    rec = ip.choose_path("auto", CPU, True, NATIVE, lambda: None)
    assert rec["path"] == "fp32" and rec["bf16_check"] is None and "no accuracy check" in rec["reason"]


@pytest.mark.parametrize("forced", ["fp32", "bf16", "int8", "mixed", "eager"])
def test_a_forced_path_is_taken_unchecked(forced: str) -> None:
    rec = ip.choose_path(forced, CPU, True, NATIVE, lambda: pytest.fail("a forced path runs no check"))
    assert rec["path"] == forced and rec["requested"] == forced and "asked for" in rec["reason"]


def test_cuda_keeps_the_eager_forward_and_refuses_cpu_paths() -> None:
    rec = ip.choose_path("auto", CUDA, True, NATIVE, _passing)
    assert rec["path"] == "eager" and rec["device"] == "cuda" and "as before" in rec["reason"]
    with pytest.raises(ConfigError, match="CPU deploy path"):
        ip.choose_path("fp32", CUDA, True, NATIVE)


def test_a_model_without_deploy_paths_runs_eager_under_auto_and_refuses_a_forced_one() -> None:
    assert ip.choose_path("auto", CPU, False, NATIVE)["path"] == "eager"
    with pytest.raises(ConfigError, match="resnet18 and mfjle only"):
        ip.choose_path("bf16", CPU, False, NATIVE)
    with pytest.raises(ConfigError, match="--precision must be one of"):
        ip.choose_path("fp16", CPU, True, NATIVE)


def test_native_bf16_reads_torchs_capabilities_then_cpuinfo(monkeypatch) -> None:
    monkeypatch.setattr(
        torch.cpu, "get_capabilities", lambda: {"avx2": True, "avx512_bf16": False, "amx_bf16": True}, raising=False
    )
    assert ip.native_bf16() == (True, "torch.cpu.get_capabilities: amx_bf16")
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx2": True, "avx512_bf16": False}, raising=False)
    assert ip.native_bf16()[0] is False
    monkeypatch.delattr(torch.cpu, "get_capabilities")
    flag, source = ip.native_bf16()
    assert isinstance(flag, bool) and source.startswith(("/proc/cpuinfo", "no CPU capability query"))


def test_the_cli_offers_every_path() -> None:
    for command in ("evaluate", "predict"):
        assert (
            build_parser()
            .parse_args([command, "--checkpoint", "c.pt", *(["x.png"] if command == "predict" else [])])
            .precision
            == "auto"
        )
    with pytest.raises(SystemExit):
        build_parser().parse_args(["evaluate", "--checkpoint", "c.pt", "--precision", "fp16"])


def test_calibrated_paths_need_calibration_images() -> None:
    with pytest.raises(ConfigError, match="calibration images"):
        ip.build_path(torch.nn.Linear(1, 1), "int8")


# ---------------------------------------------------------------------------------------------- on a trained model


@pytest.fixture(scope="module")
def run(data_dir, tmp_path_factory):
    """A tiny MF-JLE trained for two epochs on 24 faces (seconds), its data and its run folder."""
    cfg = make_config(
        "fast",
        dataset="synthetic",
        model="mfjle",
        num_images=40,
        source_size=32,
        global_size=32,
        local_size=16,
        epochs=2,
        batch_size=16,
        lr=2e-3,
        device="cpu",
    )
    data = load_data(cfg, show_progress=False)
    out = tmp_path_factory.mktemp("run")
    result = train(cfg, out, data=data, show_progress=False)
    yield types.SimpleNamespace(data=data, out=out, ckpt=out / "checkpoint.pt", metrics=result.metrics)
    shutil.rmtree(out, ignore_errors=True)


@TRAINS
def test_train_and_evaluate_record_the_path_and_agree(run) -> None:
    """Here (no native bf16 in the test's answer, or not asked), auto is fp32; train's metrics.json and evaluate say
    so and agree."""
    assert run.metrics["inference"]["path"] in ("fp32", "bf16")  # this machine's own answer
    saved = json.loads((run.out / "metrics.json").read_text())
    assert saved["inference"] == run.metrics["inference"]
    forced = evaluate_checkpoint(run.ckpt, data=run.data, show_progress=False, precision="fp32")
    assert forced["inference"]["path"] == "fp32" and forced["inference"]["requested"] == "fp32"
    if run.metrics["inference"]["path"] == "fp32":
        assert {k: forced[k] for k in ("micro_f1", "coverage", "average_precision")} == {
            k: run.metrics[k] for k in ("micro_f1", "coverage", "average_precision")
        }


@TRAINS
def test_the_default_path_gives_the_eager_models_outputs(run) -> None:
    model, cfg = load_trained_model(run.ckpt, "cpu")
    eager = run_split(model, run.data, "test", cfg.activation, cfg.effective_fusion_weights(), CPU)
    folded, record = inference_model(model, cfg, CPU, "fp32", run.data)
    fast = run_split(folded, run.data, "test", cfg.activation, cfg.effective_fusion_weights(), CPU)
    assert record["path"] == "fp32" and type(folded).__name__ == "DeployedModel"
    np.testing.assert_allclose(fast["global_logits"], eager["global_logits"], atol=1e-4)
    np.testing.assert_allclose(fast["local_logits"], eager["local_logits"], atol=1e-4)
    np.testing.assert_allclose(fast["fused_probs"], eager["fused_probs"], atol=1e-5)
    a, b = (
        multilabel_report(eager["labels"], eager["fused_probs"]),
        multilabel_report(fast["labels"], fast["fused_probs"]),
    )
    for key in METRIC_KEYS:
        assert b[key] == pytest.approx(a[key], abs=1e-6), key  # rounding moves no decision and no ranking here


@TRAINS
def test_auto_with_native_bf16_checks_on_validation_then_uses_bf16(run, monkeypatch) -> None:
    monkeypatch.setattr(inference, "native_bf16", lambda: NATIVE)
    model, cfg = load_trained_model(run.ckpt, "cpu")
    deployed, record = inference_model(model, cfg, CPU, "auto", run.data)
    check = record["bf16_check"]
    assert (
        check["split"] == "val"
        and check["n_images"] == len(run.data.splits["val"])
        and check["tolerance"] == ip.DEPLOY_TOLERANCE
    )
    assert check["passed"] == (abs(check["micro_f1_bf16"] - check["micro_f1_fp32"]) <= ip.DEPLOY_TOLERANCE)
    assert record["path"] == ("bf16" if check["passed"] else "fp32") and deployed.method == record["path"]
    # A failing check: fp32, and the record says why.
    monkeypatch.setattr(inference, "bf16_check", lambda *a, **k: {**check, "micro_f1_change": 0.05, "passed": False})
    deployed, record = inference_model(model, cfg, CPU, "auto", run.data)
    assert record["path"] == "fp32" and deployed.method == "fp32" and "FAILED" in record["reason"]


@TRAINS
def test_predict_uses_bf16_only_with_a_recorded_passing_check(run, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(inference, "native_bf16", lambda: NATIVE)
    model, cfg = load_trained_model(run.ckpt, "cpu")
    ckpt = tmp_path / "checkpoint.pt"  # metrics.json beside it says what the end of `train` found
    assert inference.recorded_bf16_check(ckpt) is None
    (tmp_path / "metrics.json").write_text(json.dumps({"inference": {"bf16_check": _failing()}}))
    assert inference.recorded_bf16_check(ckpt) == _failing()
    (tmp_path / "metrics.json").write_text(json.dumps({"inference": {"bf16_check": _passing()}}))
    deployed, record = inference_model(model, cfg, CPU, "auto", checkpoint=ckpt)
    assert record["path"] == "bf16" == deployed.method and record["bf16_check"] == _passing()
    assert inference_model(model, cfg, CPU, "auto")[1]["path"] == "fp32"  # no labels, no record: fp32


@TRAINS
def test_evaluate_json_records_the_path_and_prints_it(run, capsys) -> None:
    assert main(["evaluate", "--checkpoint", str(run.ckpt), "--device", "cpu", "--precision", "fp32", "--json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["inference"]["path"] == "fp32"
    assert "inference path: fp32 (asked for (--precision fp32)" in out.err


@TRAINS
def test_predict_prints_and_records_its_path(run, capsys, tmp_path) -> None:
    from cli_helpers import small_image

    photo = small_image(tmp_path / "face.png")
    assert (
        main(["predict", "--checkpoint", str(run.ckpt), "--device", "cpu", "--allow-fallback", "--json", str(photo)])
        == 0
    )
    out = capsys.readouterr()
    (row,) = json.loads(out.out)
    assert row["inference"] in ("fp32", "bf16") and f"inference path: {row['inference']} (" in out.err
    assert (
        main(
            [
                "predict",
                "--checkpoint",
                str(run.ckpt),
                "--device",
                "cpu",
                "--allow-fallback",
                "--precision",
                "int8",
                str(photo),
            ]
        )
        == 2
    )
    assert "calibration images" in capsys.readouterr().err
