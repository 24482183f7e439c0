"""Released runs: compact artefacts of finished runs that lessons read instead of training."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mfjle_lib.course import lesson as lesson_mod
from mfjle_lib.course import released
from mfjle_lib.course.lesson import CourseParams, lesson_setup, read_runs_mode, run_name, run_with_weights, train_cached
from mfjle_lib.evaluation.outputs import load_outputs
from mfjle_lib.training.trainer import train
from tools import release

TINY = dict(num_images=48, epochs=1, batch_size=16, source_size=32, global_size=32, local_size=16, device="cpu")


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory):
    """A finished tiny MF-JLE run, laid out as a lesson's runs folder, and its released copy."""
    root = tmp_path_factory.mktemp("runs")
    params = CourseParams(False, "synthetic", None, None, "fast", "cpu", [0], "full")
    cfg = params.config(model="mfjle", **TINY)
    run = root / run_name(cfg)
    train(cfg, run, show_progress=False)
    dest = root / "released"
    manifest = release.collect(root, dest)
    return params, cfg, run, dest, manifest


def test_collect_keeps_no_weights_and_outputs_come_back_exactly(finished) -> None:
    params, cfg, run, dest, manifest = finished
    copy = dest / run.name
    assert sorted(p.name for p in copy.iterdir()) == [
        "config.json",
        "history.csv",
        "metrics.json",
        "test_outputs.npz",
        "val_outputs.npz",
    ]
    assert (
        manifest["runs"][run.name]["model"] == "mfjle"
        and json.loads((dest / release.MANIFEST).read_text())["total_bytes"] > 0
    )
    for name in release.OUTPUT_FILES:
        full, back = load_outputs(run / name), load_outputs(copy / name)
        assert set(full) == set(back)
        for key in full:
            np.testing.assert_array_equal(back[key], full[key])
        assert (copy / name).stat().st_size < (run / name).stat().st_size


def test_a_later_run_is_added_beside_the_release_with_its_own_record(finished, tmp_path: Path) -> None:
    _, _, run, dest, manifest = finished
    later = tmp_path / "later"
    later.mkdir()
    shutil.copytree(run, later / "control_seed0")  # stands for a control trained later, on another machine
    added = release.collect(later, dest, note="trained later", add=True)
    assert set(added["runs"]) == {run.name, "control_seed0"} and added["created"] == manifest["created"]
    assert (
        "added" not in added["runs"][run.name]
        and added["runs"]["control_seed0"]["added"]["how_trained"] == "trained later"
    )
    assert {"cpu", "cpu_extensions"} <= set(added["runs"]["control_seed0"]["added"]["machine"])
    shutil.rmtree(dest / "control_seed0")
    (dest / release.MANIFEST).write_text(
        json.dumps(manifest, indent=1) + "\n"
    )  # the module's later tests read the first release


def test_released_mode_reads_the_release_and_full_mode_does_not(
    finished, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params, cfg, run, dest, _ = finished
    monkeypatch.setattr(lesson_mod, "released_run", lambda c, n: released.released_run(c, n, dest))
    monkeypatch.setenv("MFJLE_RUNS_DIR", str(tmp_path))  # no local run: only the release can answer
    rel = CourseParams(False, "synthetic", None, None, "fast", "cpu", [0], "released")
    got = train_cached(rel, cfg)
    assert got.out_dir == dest / run.name
    assert got.metrics == json.loads((run / "metrics.json").read_text())
    # Other settings are not the released run: with MFJLE_RELEASED_ONLY it stops instead of training.
    monkeypatch.setenv("MFJLE_RELEASED_ONLY", "1")
    with pytest.raises(RuntimeError, match="not among the released runs"):
        train_cached(rel, rel.config(model="mfjle", **{**TINY, "seed": 1}))
    assert released.released_run(rel.config(model="mfjle", **{**TINY, "epochs": 2}), run.name, dest) is None


def test_runs_mode_precedence(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    for var in ("MFJLE_RUNS", "MFJLE_FAST", "MFJLE_DRIVE"):
        monkeypatch.delenv(var, raising=False)
    assert (
        read_runs_mode("released") == "released" and read_runs_mode(True) == "fast" and read_runs_mode(False) == "full"
    )
    monkeypatch.setenv("MFJLE_FAST", "1")
    assert read_runs_mode("released") == "fast"
    monkeypatch.setenv("MFJLE_RUNS", "full")
    assert read_runs_mode("released") == "full"
    monkeypatch.setenv("MFJLE_RUNS", "nope")
    with pytest.raises(ValueError, match="RUNS must be one of"):
        read_runs_mode("released")
    monkeypatch.delenv("MFJLE_RUNS")
    monkeypatch.delenv("MFJLE_FAST")
    p = lesson_setup("released")
    assert (p.runs, p.preset, p.fast, p.seeds) == ("released", "cpu", False, [0, 1, 2])
    assert "RELEASED" in capsys.readouterr().out
    real = lesson_setup("released", dataset="jaffe", root="/nowhere")
    assert (real.runs, real.preset) == ("full", "paper")
    assert "no released runs for jaffe" in capsys.readouterr().out


def test_run_with_weights_trains_the_fast_version_under_released(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    calls = []
    monkeypatch.setattr(
        lesson_mod,
        "train_cached",
        lambda params, cfg, **kw: (
            calls.append((params.runs, cfg.preset, cfg.model, cfg.num_images, cfg.epochs)) or "run"
        ),
    )
    rel = CourseParams(False, "synthetic", None, None, "cpu", "cpu", [0, 1, 2], "released")
    assert run_with_weights(rel, model="mfjle") == "run"
    # The stand-in: the fast preset's geometry with more faces and epochs (the fast run alone is below the floor).
    standin = (lesson_mod.WEIGHTS_STANDIN["num_images"], lesson_mod.WEIGHTS_STANDIN["epochs"])
    assert calls == [("fast", "fast", "mfjle", *standin)] and "carry no weights" in capsys.readouterr().out
    full = CourseParams(False, "synthetic", None, None, "cpu", "cpu", [0, 1, 2], "full")
    run_with_weights(full, model="mfjle")
    assert calls[-1][:3] == ("full", "cpu", "mfjle")
