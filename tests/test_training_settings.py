"""The CUDA-path settings of a run, exercised on the CPU (issue 14, defects 1-8).

Precision from the training device's compute capability, the fp16 GradScaler (CPU fp16 autocast),
resume with fused local nets and with a flipped loop/fused pick, float32 evaluation, the
determinism switch, one host sync per epoch, and one rule for "the same run".
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from mfjle_lib.cli.commands import _train_overrides
from mfjle_lib.cli.parser import build_parser
from mfjle_lib.errors import ConfigError
from mfjle_lib.evaluation.outputs import load_outputs
from mfjle_lib.inference.evaluate import evaluate_checkpoint
from mfjle_lib.runtime import default_deterministic, seed_everything
from mfjle_lib.training.batches import get_batch, load_data
from mfjle_lib.training.config import make_config
from mfjle_lib.training.run_files import RESUME_FORMAT, load_checkpoint, run_differences, same_run
from mfjle_lib.training.setup import (
    build_training,
    choose_precision,
    make_scaler,
    precision_for_capability,
    resolve_settings,
)
from mfjle_lib.training.trainer import train, train_one_epoch, train_step

CPU = torch.device("cpu")


def small(**overrides):
    """60 faces at 32 px: 36 training images, 3 steps of 16 per epoch."""
    base = dict(
        dataset="synthetic",
        num_images=60,
        source_size=32,
        global_size=32,
        local_size=16,
        epochs=1,
        batch_size=16,
        lr=1e-3,
        device="cpu",
        seed=3,
    )
    base.update(overrides)
    return make_config("fast", **base)


@pytest.fixture(scope="module")
def bundle(data_dir):
    return load_data(small(), show_progress=False)


# --- defect 1: bf16 only where the training GPU runs it natively ------------------------------


@pytest.mark.parametrize(
    ("capability", "expected"),
    [((7, 5), "float16"), ((8, 0), "bfloat16"), ((9, 0), "bfloat16"), ((6, 1), "float16"), (None, "float32")],
)
def test_precision_follows_the_compute_capability(capability, expected) -> None:
    assert precision_for_capability(capability) == expected


def test_cpu_trains_in_float32_unless_asked() -> None:
    assert choose_precision(CPU) == "float32"
    assert resolve_settings(small(), CPU).precision == "float32"
    assert resolve_settings(small(precision="float16"), CPU).precision == "float16"
    with pytest.raises(ConfigError, match="precision"):
        small(precision="half")


# --- defect 2: the fp16 GradScaler ---------------------------------------------------------------


def _parts_and_batch(bundle, **overrides):
    cfg = resolve_settings(small(model="resnet18", precision="float16", **overrides), CPU)
    seed_everything(cfg.seed, True)
    parts = build_training(cfg, CPU)
    batch = get_batch(bundle, torch.as_tensor(bundle.splits["train"][:8]), CPU)
    return cfg, parts, batch


def test_fp16_uses_a_grad_scaler_and_an_overflow_skips_the_step(bundle) -> None:
    cfg, parts, batch = _parts_and_batch(bundle)
    assert parts.scaler.is_enabled() and not make_scaler(CPU, "float32").is_enabled()
    parts.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**100)  # fp16 gradients overflow for sure
    before = [p.detach().clone() for p in parts.model.parameters()]
    losses, finite = train_step(parts, batch, cfg, CPU)  # no 'diverged', no exception
    assert torch.isfinite(losses[0]) and not bool(finite)
    assert all(torch.equal(a, p) for a, p in zip(before, parts.model.parameters())), (
        "an overflowing step must be skipped"
    )
    assert parts.scaler.get_scale() == 2.0**99  # and the scale backs off

    parts.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
    losses, finite = train_step(parts, batch, cfg, CPU)
    assert bool(finite)
    moved = [not torch.equal(a, p) for a, p in zip(before, parts.model.parameters())]
    assert all(moved), f"{moved.count(False)} parameters did not move after an fp16 step"


@pytest.mark.slow  # trains (>10 s on 2 cores); `make check` skips it
def test_fp16_run_on_the_cpu_records_its_precision(bundle, tmp_path) -> None:
    result = train(small(model="resnet18", precision="float16"), tmp_path, data=bundle, show_progress=False)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["precision"] == "float16" and result.config.precision == "float16"
    assert load_checkpoint(tmp_path / "checkpoint.pt")["config"]["precision"] == "float16"
    assert "scaler" in load_checkpoint(tmp_path / "last.pt", kind=RESUME_FORMAT)


# --- defect 5: evaluation in float32 --------------------------------------------------------------


@pytest.mark.slow  # trains (>10 s on 2 cores); `make check` skips it
def test_validation_and_test_outputs_are_computed_without_autocast(bundle, tmp_path) -> None:
    cfg = small(model="resnet18", precision="bfloat16")
    seen: dict[bool, set[bool]] = {True: set(), False: set()}

    def spy(module, args):
        seen[module.training].add(torch.is_autocast_enabled("cpu"))

    real = build_training

    def spying_build(cfg_, device):
        parts = real(cfg_, device)
        parts.model.register_forward_pre_hook(spy)
        return parts

    mp = pytest.MonkeyPatch()
    mp.setattr("mfjle_lib.training.trainer.build_training", spying_build)
    try:
        result = train(cfg, tmp_path, data=bundle, show_progress=False)
    finally:
        mp.undo()
    assert seen[True] == {True}, "training steps run under bf16 autocast"
    assert seen[False] == {False}, "validation and test run in float32"
    outputs = load_outputs(tmp_path / "test_outputs.npz")
    again = evaluate_checkpoint(tmp_path / "checkpoint.pt", data=bundle, show_progress=False)
    assert again["micro_auc"] == result.metrics["micro_auc"] and outputs["global_logits"].dtype.name == "float64"


# --- defects 3 and 4: resume with fused local nets, and with a flipped pick ---------------------


def _state(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path, kind=RESUME_FORMAT)["model_state"]


@pytest.fixture(scope="module")
def fused_full(bundle, tmp_path_factory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("fused_full")
    train(small(model="mfjle", local_impl="fused", epochs=2, augment=True), out, data=bundle, show_progress=False)
    yield out
    shutil.rmtree(out, ignore_errors=True)  # about 1 GB of checkpoints; the disk is shared


def _resume_in_two(
    bundle, out: Path, cfg, env_first: str | None, env_then: str | None, monkeypatch
) -> dict[str, torch.Tensor]:
    if env_first:
        monkeypatch.setenv("MFJLE_LOCAL_IMPL", env_first)
    first = train(replace(cfg, epochs=1), out, data=bundle, show_progress=False)
    assert first.config.local_impl == "fused"
    after_one = _state(out / "last.pt")
    if env_then:
        monkeypatch.setenv("MFJLE_LOCAL_IMPL", env_then)
    resumed = train(cfg, out, resume=True, data=bundle, show_progress=False)
    assert resumed.config.local_impl == "fused", "the recorded form wins over a new pick"
    assert list(resumed.history["epoch"]) == [1, 2]
    return after_one


def _assert_equal_runs(a: Path, b: Path) -> None:
    for name in ("test_outputs.npz", "val_outputs.npz"):
        oa, ob = load_outputs(a / name), load_outputs(b / name)
        for key in ("global_logits", "local_logits"):
            assert torch.equal(torch.from_numpy(oa[key]), torch.from_numpy(ob[key])), (name, key)
    sa, sb = _state(a / "last.pt"), _state(b / "last.pt")
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def _assert_every_parameter_moved(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> None:
    frozen = [k for k, v in before.items() if v.is_floating_point() and torch.equal(v, after[k])]
    assert not frozen, f"{len(frozen)} tensors did not change after resuming, e.g. {frozen[:3]}"


@pytest.mark.slow  # trains (>10 s on 2 cores); `make check` skips it
def test_resume_with_fused_local_nets_trains_every_parameter(bundle, fused_full, tmp_path, monkeypatch) -> None:
    cfg = small(model="mfjle", local_impl="fused", epochs=2, augment=True)
    after_one = _resume_in_two(bundle, tmp_path, cfg, None, None, monkeypatch)
    _assert_every_parameter_moved(after_one, _state(tmp_path / "last.pt"))
    _assert_equal_runs(fused_full, tmp_path)


@pytest.mark.slow  # trains (>10 s on 2 cores); `make check` skips it
def test_resume_keeps_the_recorded_form_when_the_pick_flips(bundle, fused_full, tmp_path, monkeypatch) -> None:
    cfg = small(model="mfjle", local_impl="auto", epochs=2, augment=True)
    after_one = _resume_in_two(bundle, tmp_path, cfg, "fused", "loop", monkeypatch)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["config"]["local_impl"] == "fused"
    assert json.loads((tmp_path / "metrics.json").read_text())["local_impl"] == "fused"
    _assert_every_parameter_moved(after_one, _state(tmp_path / "last.pt"))
    _assert_equal_runs(fused_full, tmp_path)
    with pytest.raises(ConfigError, match="local_impl"):  # an explicit other form is another run
        train(replace(cfg, local_impl="loop", epochs=3), tmp_path, resume=True, data=bundle, show_progress=False)


# --- defect 6: the determinism switch ---------------------------------------------------------------


def test_determinism_is_on_for_the_cpu_off_on_cuda_and_switchable() -> None:
    assert default_deterministic(CPU) and not default_deterministic(torch.device("cuda"))
    assert resolve_settings(small(), CPU).deterministic is True
    assert resolve_settings(small(deterministic=False), CPU).deterministic is False
    try:
        seed_everything(0, False)
        assert torch.backends.cudnn.benchmark and not torch.are_deterministic_algorithms_enabled()
    finally:
        seed_everything(0, True)
    assert torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.benchmark
    parser = build_parser()
    for flag, expected in (("--no-deterministic", False), ("--deterministic", True), (None, None)):
        args = parser.parse_args(["train", "--model", "resnet18", "--out", "x"] + ([flag] if flag else []))
        assert _train_overrides(args)["deterministic"] is expected
        assert make_config(**{k: v for k, v in _train_overrides(args).items()}).deterministic is expected


# --- defect 7: one host sync per epoch -----------------------------------------------------------


@pytest.mark.slow  # trains (>10 s on 2 cores); `make check` skips it
def test_an_epoch_reads_its_losses_from_the_device_once(bundle, monkeypatch) -> None:
    cfg = resolve_settings(small(model="resnet18"), CPU)
    seed_everything(cfg.seed, True)
    parts = build_training(cfg, CPU)
    calls: list[str] = []
    for name in ("item", "tolist", "__float__", "__bool__"):
        real = getattr(torch.Tensor, name)

        def counting(self, *a, _real=real, _name=name, **k):
            calls.append(_name)
            return _real(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, counting)
    stats = train_one_epoch(parts, bundle, cfg, CPU, 1, Path("unused"), show_progress=False)
    monkeypatch.undo()
    assert stats.steps == 3 and calls == ["tolist"], calls


# --- one rule for "the same run" ---------------------------------------------------------------------


def test_same_run_matches_auto_settings_to_recorded_choices() -> None:
    cfg = small()
    recorded = resolve_settings(small(local_impl="fused", model="mfjle"), CPU).to_dict()
    recorded.update(model=cfg.model, device="cuda")
    assert same_run(recorded, cfg), run_differences(recorded, cfg)
    assert run_differences(recorded, replace(cfg, local_impl="loop")) == ["local_impl"]
    assert run_differences({**recorded, "epochs": 9}, cfg) == ["epochs"]
    assert same_run({**recorded, "epochs": 9}, cfg, resuming=True)
    assert run_differences({**recorded, "lr": 0.5}, cfg, resuming=True) == ["lr"]
    older = {k: v for k, v in recorded.items() if k not in ("precision", "deterministic")}  # before they were recorded
    assert same_run(older, cfg)
