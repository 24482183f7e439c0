"""The lesson time table: which runs a lesson finished, and the FLOP-based Colab estimate."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mfjle_lib.training.config import PRESETS
from tools import timing


def fake_run(
    folder: Path,
    *,
    preset: str,
    epochs: int,
    n: tuple[int, int, int],
    sizes: tuple[int, int],
    model: str = "resnet18",
    epoch_s: float = 2.0,
) -> Path:
    """A finished run folder as the trainer writes it: metrics.json (what run_cost reads) and history.csv."""
    folder.mkdir(parents=True)
    metrics = {
        "preset": preset,
        "dataset": "synthetic",
        "model": model,
        "epochs": epochs,
        "n_train": n[0],
        "n_val": n[1],
        "n_samples": n[2],
        "global_size": sizes[0],
        "local_size": sizes[1],
        "crop_fraction": 0.5,
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))
    (folder / "history.csv").write_text("epoch,time_s\n" + "".join(f"{e},{epoch_s}\n" for e in range(1, epochs + 1)))
    return folder


def test_a_cpu_preset_run_is_costed_at_the_gpu_presets_size(tmp_path: Path) -> None:
    cpu, gpu = PRESETS["cpu"], PRESETS["gpu"]
    run = fake_run(
        tmp_path / "a",
        preset="cpu",
        epochs=cpu["epochs"],
        n=(1800, 600, 600),
        sizes=(cpu["global_size"], cpu["local_size"]),
    )
    cost = timing.run_cost(run)
    per_image = timing.forward_flops("resnet18", gpu["global_size"], gpu["local_size"], 0.5)
    expected = gpu["epochs"] * (3 * 1800 + 600) * (gpu["num_images"] / cpu["num_images"]) * per_image
    assert cost["cpu_train_s"] == pytest.approx(2.0 * cpu["epochs"])
    assert cost["gpu_flops"] == pytest.approx(expected)


def test_a_run_with_its_own_epochs_faces_and_sizes_keeps_them(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "b", preset="cpu", epochs=30, n=(130, 43, 44), sizes=(32, 16), model="mfjle")
    cost = timing.run_cost(run)
    assert cost["gpu_flops"] == pytest.approx(30 * (3 * 130 + 43) * timing.forward_flops("mfjle", 32, 16, 0.5))


def test_mfjle_costs_more_than_resnet18_but_less_than_six() -> None:
    ratio = timing.forward_flops("mfjle", 128, 48, 0.5) / timing.forward_flops("resnet18", 128, 48, 0.5)
    assert 1.2 < ratio < 6  # five local nets on 48 px crops add less than five 128 px globals


def test_estimate_replaces_cpu_training_by_gpu_flops() -> None:
    runs = [{"cpu_train_s": 300.0, "gpu_flops": 8e12}, {"cpu_train_s": 100.0, "gpu_flops": 4e12}]
    assert timing.colab_estimate(500.0, runs, gpu_flops=4e12) == pytest.approx(100.0 + 3.0)
    assert timing.colab_estimate(350.0, runs, gpu_flops=4e12) == pytest.approx(3.0)  # never a negative overhead


def test_finished_runs_are_the_ones_written_since_the_lesson_started(tmp_path: Path) -> None:
    old = fake_run(tmp_path / "full" / "old", preset="cpu", epochs=1, n=(3, 1, 1), sizes=(32, 16))
    os.utime(old / "metrics.json", (1000.0, 1000.0))
    new = fake_run(tmp_path / "full" / "new", preset="cpu", epochs=1, n=(3, 1, 1), sizes=(32, 16))
    (tmp_path / "full" / "not_a_run").mkdir()
    (tmp_path / "full" / "not_a_run" / "metrics.json").write_text("{}")  # an evaluate output: no history.csv
    assert timing.finished_runs(tmp_path, since=2000.0) == [new]
    assert timing.finished_runs(tmp_path / "missing", since=0.0) == []


def test_record_time_writes_time_runs_and_estimate(tmp_path: Path) -> None:
    table = tmp_path / "lesson_times.json"
    table.write_text(json.dumps({"about": "", "lessons": {"03_x": {"fast": 60}}}))
    run = fake_run(tmp_path / "r", preset="cpu", epochs=30, n=(130, 43, 44), sizes=(32, 16))
    timing.record_time(Path("notebooks/03_x.ipynb"), "full_cpu", 600.4, runs=[run], table=table)
    entry = json.loads(table.read_text())["lessons"]["03_x"]
    assert (
        entry["fast"] == 60
        and entry["full_cpu"] == 600
        and entry["runs_trained"] == ["r"]
        and entry["cpu_train_s"] == 60
    )
    flops = 30 * (3 * 130 + 43) * timing.forward_flops("resnet18", 32, 16, 0.5)
    assert entry["colab_gpu_estimate"] == round(600.4 - 60 + flops / timing.GPU_FLOPS)
    frame = timing.lesson_times(table)
    assert frame.loc["03_x", "full, Colab T4 GPU"].endswith("(estimate)")
    assert frame.loc["03_x", "full, 2 CPU cores"] == "10 min"


def test_a_full_time_not_measured_is_estimated_from_the_runs_it_trains_until_measured(tmp_path: Path) -> None:
    table = tmp_path / "lesson_times.json"
    table.write_text(json.dumps({"about": "", "lessons": {"04a_x": {"released": 100}}}))
    runs = [fake_run(tmp_path / f"r{i}", preset="cpu", epochs=10, n=(130, 43, 44), sizes=(32, 16)) for i in range(3)]
    assert timing.record_estimate(Path("notebooks/04a_x.ipynb"), runs, table=table) == 100 + 3 * 20
    entry = json.loads(table.read_text())["lessons"]["04a_x"]
    assert entry["full_cpu_estimate"] == 160 and entry["runs_trained"] == ["r0", "r1", "r2"] and "full_cpu" not in entry
    assert timing.lesson_times(table).loc["04a_x", "full, 2 CPU cores"] == "≈ 3 min (estimate)"
    timing.record_time(Path("notebooks/04a_x.ipynb"), "full_cpu", 200.0, runs=runs, table=table)  # measured now
    assert "full_cpu_estimate" not in json.loads(table.read_text())["lessons"]["04a_x"]
    assert timing.lesson_times(table).loc["04a_x", "full, 2 CPU cores"] == "3 min"


def test_fast_times_are_summed_per_lesson_from_nbvals_junit_report(tmp_path: Path) -> None:
    from tools.notebook_tools import junit_notebook_seconds

    report = tmp_path / "r.xml"
    report.write_text(
        '<?xml version="1.0"?><testsuites><testsuite name="pytest">'
        '<testcase classname="notebooks.03_single_resnet_baseline.ipynb" name="Cell 0" time="2.5" />'
        '<testcase classname="notebooks.03_single_resnet_baseline.ipynb" name="Cell 1" time="40.0" />'
        '<testcase classname="notebooks.06_metrics.ipynb" name="Cell 0" time="3.0" />'
        '<testcase classname="tests.test_x" name="test_y" time="9.0" /></testsuite></testsuites>'
    )
    assert junit_notebook_seconds(report) == {"03_single_resnet_baseline": 42.5, "06_metrics": 3.0}


def test_fast_times_cli_takes_options_before_the_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tools import notebook_tools

    (tmp_path / "lesson_times.json").write_text(json.dumps({"about": "", "lessons": {}}))
    monkeypatch.setattr(notebook_tools, "NOTEBOOKS_DIR", tmp_path)
    report = tmp_path / "r.xml"
    report.write_text(
        '<testsuites><testsuite><testcase classname="notebooks.06_metrics.ipynb" name="Cell 0" time="3.4" />'
        "</testsuite></testsuites>"
    )
    # `make notebooks` writes `execute --record full_cpu --timeout 3600 notebooks/*.ipynb`: options first
    assert notebook_tools.main(["fast-times", "--timeout", "5", str(report)]) == 0
    assert json.loads((tmp_path / "lesson_times.json").read_text())["lessons"]["06_metrics"]["fast"] == 3


def test_markdown_table_has_one_row_per_lesson(tmp_path: Path) -> None:
    table = tmp_path / "lesson_times.json"
    table.write_text(
        json.dumps(
            {
                "about": "",
                "lessons": {
                    "00_a": {"released": 130, "fast": 45, "full_cpu": 4000, "colab_gpu_estimate": 300},
                    "01_b": {},
                },
            }
        )
    )
    text = timing.lesson_times_markdown(table)
    assert text.splitlines()[2] == "| `00_a` | 2 min | 45 s | 1 h 07 min | ≈ 5 min (estimate) |"
    assert (
        text.splitlines()[3] == "| `01_b` | not measured yet | not measured yet | not measured yet | not measured yet |"
    )


def test_a_lesson_prints_its_time_in_the_table_s_units() -> None:
    """The line each lesson ends with: seconds under 90 s (never '0.0 min'), minutes above."""
    import time

    from mfjle_lib.course.timing import elapsed

    now = time.perf_counter()
    assert elapsed(now - 10.4) == "10 s"
    assert elapsed(now - 600) == "10 min"
    assert elapsed(now - 3900) == "1 h 05 min"
