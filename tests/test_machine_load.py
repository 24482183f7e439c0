"""The load average around a measurement: recorded, busy ones flagged, `--require-idle` refuses (bench.py and the
lesson times)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from mfjle_lib.runtime import cpu_kind
from tools import machine_load, notebook_tools, timing

ROOT = Path(__file__).resolve().parents[1]
BUSY, IDLE = (3.0, 2.0, 1.0), (0.1, 0.2, 0.3)


def test_the_record_flags_a_busy_start(monkeypatch) -> None:
    monkeypatch.setattr(os, "getloadavg", lambda: BUSY)
    before = machine_load.load_average()
    assert before == [3.0, 2.0, 1.0] and machine_load.is_busy(before) is True
    rec = machine_load.load_record(before, [0.1, 0.2, 0.3])
    assert rec == {
        "cpu_kind": cpu_kind(),
        "load_average_start": [3.0, 2.0, 1.0],
        "load_average_end": [0.1, 0.2, 0.3],
        "busy": True,
        "busy_load": machine_load.BUSY_LOAD,
    }
    assert "BUSY" in machine_load.busy_warning(before, "x") and "--require-idle" in machine_load.idle_refusal(
        before, "x"
    )
    monkeypatch.setattr(os, "getloadavg", lambda: IDLE)
    idle = machine_load.load_average()
    assert (
        machine_load.is_busy(idle) is False
        and machine_load.busy_warning(idle, "x") is None
        and machine_load.idle_refusal(idle, "x") is None
    )


def test_no_load_average_is_said_and_recorded_as_unknown(monkeypatch) -> None:
    monkeypatch.delattr(os, "getloadavg")
    assert machine_load.load_average() is None
    assert machine_load.load_record(None, None)["busy"] is None
    assert "unknown" in machine_load.busy_warning(None, "x") and "cannot be checked" in machine_load.idle_refusal(
        None, "x"
    )


def test_settle_waits_for_the_previous_jobs_load_to_decay(monkeypatch) -> None:
    loads = iter([BUSY, (1.0, 1, 1), (0.4, 1, 1)])
    monkeypatch.setattr(os, "getloadavg", lambda: next(loads))
    slept = []
    assert machine_load.settle(poll_s=5, sleep=slept.append) == [0.4, 1, 1] and slept == [5, 5]
    monkeypatch.setattr(os, "getloadavg", lambda: BUSY)
    assert machine_load.settle(limit_s=10, poll_s=5, sleep=lambda s: None) == list(BUSY)  # gives up, still busy


def test_bench_require_idle_refuses_a_busy_machine_in_one_line(monkeypatch, capsys) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))  # benchmarks/ is not a package: its scripts import each other by name
    import bench

    monkeypatch.setattr(os, "getloadavg", lambda: BUSY)
    with pytest.raises(SystemExit) as exit_:
        bench.main(["--require-idle", "--quick", "--device", "cpu"])
    assert exit_.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error: --require-idle: the machine is busy (1-minute load average 3.00")


def test_lesson_times_record_the_load_and_flag_busy_lessons(tmp_path: Path) -> None:
    table = tmp_path / "lesson_times.json"
    table.write_text(json.dumps({"about": "", "lessons": {}}))
    timing.record_time(
        Path("notebooks/03_x.ipynb"),
        "full_cpu",
        600,
        table=table,
        load=machine_load.load_record([3.0, 2.0, 1.0], [2.5, 2.0, 1.0]),
    )
    timing.record_time(
        Path("notebooks/04_y.ipynb"),
        "full_cpu",
        600,
        table=table,
        load=machine_load.load_record([0.1, 0.1, 0.1], [1.0, 0.5, 0.2]),
    )
    lessons = json.loads(table.read_text())["lessons"]
    assert lessons["03_x"]["full_cpu_load"]["busy"] is True and lessons["03_x"]["full_cpu_load"][
        "load_average_start"
    ] == [3.0, 2.0, 1.0]
    assert lessons["04_y"]["full_cpu_load"]["busy"] is False
    frame = timing.lesson_times(table)
    assert (
        frame.loc["03_x", "full, 2 CPU cores"] == "10 min (busy machine)"
        and frame.loc["04_y", "full, 2 CPU cores"] == "10 min"
    )


def test_notebook_tools_require_idle_refuses_before_running_a_lesson(monkeypatch, capsys, tmp_path) -> None:
    monkeypatch.setattr(os, "getloadavg", lambda: BUSY)
    monkeypatch.setattr(notebook_tools, "settle", lambda: machine_load.load_average())  # no waiting in a test
    monkeypatch.setattr(notebook_tools, "execute_notebook", lambda *a: pytest.fail("a lesson ran on a busy machine"))
    assert notebook_tools.main(["execute", "--record", "full_cpu", "--require-idle", str(tmp_path / "00_x.ipynb")]) == 2
    assert "the machine is busy" in capsys.readouterr().err


def test_notebook_tools_records_the_load_around_each_lesson(monkeypatch, tmp_path) -> None:
    loads = iter([BUSY, (2.0, 2.0, 1.0)])
    monkeypatch.setattr(os, "getloadavg", lambda: next(loads))
    monkeypatch.setattr(notebook_tools, "settle", lambda: machine_load.load_average())
    monkeypatch.setattr(notebook_tools, "execute_notebook", lambda *a: 42.0)
    recorded = {}
    monkeypatch.setattr(
        notebook_tools,
        "record_time",
        lambda nb, key, seconds, runs=None, load=None: recorded.update(key=key, load=load),
    )
    assert notebook_tools.main(["execute", "--record", "full_cpu", str(tmp_path / "00_x.ipynb")]) == 0
    assert recorded == {"key": "full_cpu", "load": machine_load.load_record([3.0, 2.0, 1.0], [2.0, 2.0, 1.0])}
