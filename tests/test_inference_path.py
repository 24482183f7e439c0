"""The inference path of a trained model (`--precision`): the choice, its record, and outputs equal to the eager
model's.

The int8 and bf16 branches run only on CPUs with fast int8 kernels or native bf16; their logic is
tested here on any machine by passing the capability answers and the check results in (or
monkeypatching `cpu_capabilities`).
"""

from __future__ import annotations

import json
import shutil
import types

import numpy as np
import pytest
import torch

import mfjle_lib.perf.inference_path as ip
import mfjle_lib.perf.path_check as path_check
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
YES, NO = (True, "test: present"), (False, "test: absent")
BOTH, BF16_ONLY, INT8_ONLY, NEITHER = (
    {"int8": YES, "bf16": YES},
    {"int8": NO, "bf16": YES},
    {"int8": YES, "bf16": NO},
    {"int8": NO, "bf16": NO},
)


def _check(flipped: int, max_change: float = 0.01, decisions: int = 1536) -> dict:
    """A check record as `PathChecks` writes one, with its verdict from the rule."""
    return {
        "decisions_flipped": flipped,
        "decisions": decisions,
        "max_abs_change": max_change,
        "flip_limit": path_check.FLIP_LIMIT,
        "max_change_limit": path_check.MAX_CHANGE_LIMIT,
        "passed": path_check.verdict(flipped, decisions, max_change),
        "pool": {"faces": decisions // 6, "validation": 43, "built_in": decisions // 6 - 43},
        "micro_f1_change": -0.008,
    }


PASSING, FAILING = _check(2), _check(40)


def _checks(**results: dict | None):
    """`check(path)` answering from `results` and noting which paths it was asked for."""
    asked: list[str] = []

    def check(path: str) -> dict | None:
        asked.append(path)
        return results.get(path)

    return check, asked


# ---------------------------------------------------------------------------------------------- the choice


def test_auto_is_fp32_without_a_fast_path_and_runs_no_check() -> None:
    check, asked = _checks(int8=PASSING, bf16=PASSING)
    rec = ip.choose_path("auto", CPU, True, NEITHER, check)
    assert rec["path"] == "fp32" and asked == [] and rec["checks"] == {} and rec["checked"] == []
    assert "int8 not a candidate" in rec["reason"] and "bf16 not a candidate: no native bf16" in rec["reason"]
    assert rec["capable"] == {"int8": {"fast": False, "found": NO[1]}, "bf16": {"fast": False, "found": NO[1]}}


def test_native_bf16_that_passes_is_taken() -> None:
    check, asked = _checks(bf16=PASSING)
    rec = ip.choose_path("auto", CPU, True, BF16_ONLY, check)
    assert rec["path"] == "bf16" and asked == ["bf16"] and rec["checks"]["bf16"] == PASSING
    assert "bf16 passed its check (2 of 1536 decisions flipped" in rec["reason"]


def test_native_bf16_that_fails_gives_fp32_and_says_so() -> None:
    check, _ = _checks(bf16=FAILING)
    rec = ip.choose_path("auto", CPU, True, BF16_ONLY, check)
    assert rec["path"] == "fp32" and rec["checks"]["bf16"] == FAILING
    assert "bf16 FAILED its check (40 of 1536 decisions flipped (2.60 %, limit 1 %)" in rec["reason"]
    assert rec["reason"].endswith("so fp32 with folded BatchNorm")


def test_int8_that_passes_is_taken_first_and_bf16_is_still_checked_for_the_record() -> None:
    check, asked = _checks(int8=PASSING, bf16=PASSING)
    rec = ip.choose_path("auto", CPU, True, BOTH, check)
    assert rec["path"] == "int8" and asked == ["int8", "bf16"] and rec["checked"] == ["int8", "bf16"]
    assert "int8 passed its check" in rec["reason"] and "the fastest path here that did" in rec["reason"]


def test_int8_that_fails_falls_to_bf16_then_to_fp32() -> None:
    check, _ = _checks(int8=FAILING, bf16=PASSING)
    rec = ip.choose_path("auto", CPU, True, BOTH, check)
    assert rec["path"] == "bf16" and rec["reason"].startswith("int8 FAILED its check")
    check, _ = _checks(int8=FAILING, bf16=FAILING)
    assert ip.choose_path("auto", CPU, True, BOTH, check)["path"] == "fp32"


def test_int8_without_native_bf16_is_taken_when_it_passes_and_not_when_it_fails() -> None:
    check, asked = _checks(int8=PASSING)
    assert ip.choose_path("auto", CPU, True, INT8_ONLY, check)["path"] == "int8" and asked == ["int8"]
    check, _ = _checks(int8=FAILING)
    rec = ip.choose_path("auto", CPU, True, INT8_ONLY, check)
    assert rec["path"] == "fp32" and "bf16 not a candidate" in rec["reason"]


def test_a_large_probability_change_fails_a_path_with_few_flips() -> None:
    broken = _check(1, max_change=path_check.MAX_CHANGE_LIMIT + 0.01)
    check, _ = _checks(int8=broken, bf16=PASSING)
    rec = ip.choose_path("auto", CPU, True, BOTH, check)
    assert broken["passed"] is False and rec["path"] == "bf16" and "max |Δp| 0.210 (limit 0.2)" in rec["reason"]


def test_a_capable_path_without_a_check_is_not_taken() -> None:
    check, asked = _checks()
    rec = ip.choose_path("auto", CPU, True, BOTH, check)
    assert rec["path"] == "fp32" and asked == ["int8", "bf16"] and rec["checks"] == {"int8": None, "bf16": None}
    assert rec["checked"] == [] and "no check at hand" in rec["reason"]
    assert ip.choose_path("auto", CPU, True, BOTH)["path"] == "fp32"  # no check function at all


@pytest.mark.parametrize("forced", ["fp32", "bf16", "int8", "mixed", "eager"])
def test_a_forced_path_is_taken_unchecked(forced: str) -> None:
    rec = ip.choose_path(forced, CPU, True, BOTH, lambda p: pytest.fail("a forced path runs no check"))
    assert rec["path"] == forced and rec["requested"] == forced and "asked for" in rec["reason"]
    assert "checks" not in rec


def test_cuda_keeps_the_eager_forward_and_refuses_cpu_paths() -> None:
    rec = ip.choose_path("auto", CUDA, True, BOTH, lambda p: pytest.fail("no check on CUDA"))
    assert rec["path"] == "eager" and rec["device"] == "cuda" and "as before" in rec["reason"]
    with pytest.raises(ConfigError, match="CPU deploy path"):
        ip.choose_path("fp32", CUDA, True, BOTH)


def test_a_model_without_deploy_paths_runs_eager_under_auto_and_refuses_a_forced_one() -> None:
    assert ip.choose_path("auto", CPU, False, BOTH)["path"] == "eager"
    with pytest.raises(ConfigError, match="resnet18 and mfjle only"):
        ip.choose_path("bf16", CPU, False, BOTH)
    with pytest.raises(ConfigError, match="--precision must be one of"):
        ip.choose_path("fp16", CPU, True, BOTH)


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


def test_fast_int8_needs_the_x86_engine_and_avx2(monkeypatch) -> None:
    monkeypatch.setattr(ip, "quantized_engines", lambda: ["qnnpack", "x86"])
    monkeypatch.setattr(
        torch.cpu, "get_capabilities", lambda: {"avx2": True, "avx512_f": True, "avx512_vnni": True}, raising=False
    )
    assert ip.fast_int8() == (True, "torch.cpu.get_capabilities: avx512_vnni (x86 int8 kernels)")
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx2": True, "avx512_vnni": False}, raising=False)
    assert ip.fast_int8() == (True, "torch.cpu.get_capabilities: avx2 (x86 int8 kernels)")
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx": True}, raising=False)
    assert ip.fast_int8()[0] is False and "no avx2" in ip.fast_int8()[1]
    monkeypatch.delattr(torch.cpu, "get_capabilities")
    assert ip.fast_int8()[1].startswith("/proc/cpuinfo")  # torch before get_capabilities: the kernel's flags
    monkeypatch.setattr(ip, "quantized_engines", lambda: ["qnnpack"])
    assert ip.fast_int8() == (False, "torch has no x86 quantized engine here (fbgemm/oneDNN)")
    assert set(ip.cpu_capabilities()) == set(ip.AUTO_ORDER)


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
    """train's metrics.json records the path this machine's auto took; a forced fp32 evaluate agrees with fp32."""
    assert run.metrics["inference"]["path"] in ("fp32", "bf16", "int8")  # this machine's own answer
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
def test_auto_checks_every_fast_path_on_a_topped_up_pool_and_records_it(run, monkeypatch) -> None:
    monkeypatch.setattr(inference, "cpu_capabilities", lambda: BOTH)
    model, cfg = load_trained_model(run.ckpt, "cpu")
    deployed, record = inference_model(model, cfg, CPU, "auto", run.data)
    n_val = len(run.data.splits["val"])
    assert record["checked"] == ["int8", "bf16"] and deployed.method == record["path"]
    for path, check in record["checks"].items():
        assert check["path"] == path and check["reference"] == "fp32"
        assert check["pool"] == {
            "faces": path_check.POOL_MIN,
            "validation": n_val,
            "built_in": path_check.POOL_MIN - n_val,
            "built_in_seed": inference.POOL_SEED,
        }
        assert check["decisions"] == 6 * path_check.POOL_MIN and check["thresholds"] == [0.5]
        assert check["passed"] == path_check.verdict(check["decisions_flipped"], 6 * 256, check["max_abs_change"])
        assert np.isfinite(check["micro_f1_change"])
    assert record["checks"]["int8"]["calibration_images"] == len(run.data.splits["train"])
    passed = [p for p in ip.AUTO_ORDER if record["checks"][p]["passed"]]
    assert record["path"] == (passed[0] if passed else "fp32")
    json.dumps(record)  # it goes into metrics.json as it is


@TRAINS
def test_predict_takes_bf16_from_a_recorded_passing_check_and_never_int8(run, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(inference, "cpu_capabilities", lambda: BOTH)
    model, cfg = load_trained_model(run.ckpt, "cpu")
    ckpt = tmp_path / "checkpoint.pt"  # metrics.json beside it says what the end of `train` found
    assert inference.recorded_checks(ckpt) == {}
    # An older record (micro-F1 within 0.005) is not today's rule: not read.
    (tmp_path / "metrics.json").write_text(json.dumps({"inference": {"bf16_check": {"passed": True}}}))
    assert inference.recorded_checks(ckpt) == {}
    assert inference_model(model, cfg, CPU, "auto", checkpoint=ckpt)[1]["path"] == "fp32"
    (tmp_path / "metrics.json").write_text(json.dumps({"inference": {"checks": {"int8": PASSING, "bf16": FAILING}}}))
    assert inference.recorded_checks(ckpt) == {"int8": PASSING, "bf16": FAILING}
    deployed, record = inference_model(model, cfg, CPU, "auto", checkpoint=ckpt)
    assert record["path"] == "fp32" == deployed.method and "int8: no check at hand" in record["reason"]
    (tmp_path / "metrics.json").write_text(json.dumps({"inference": {"checks": {"int8": PASSING, "bf16": PASSING}}}))
    deployed, record = inference_model(model, cfg, CPU, "auto", checkpoint=ckpt)
    assert record["path"] == "bf16" == deployed.method and record["checks"] == {"int8": None, "bf16": PASSING}
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
