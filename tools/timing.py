"""How long each lesson takes, measured and estimated: what `tools/notebook_tools.py` records into
`notebooks/lesson_times.json`.

`make notebooks` runs every lesson as a student first opens it (RUNS = released) and records its wall
time; `make retrain` runs every lesson in full mode and records, per lesson, its wall time and the
training runs it finished. A Colab GPU time is only an estimate until someone measures it
(`notebook_tools execute --record colab_gpu`); the estimate is built from FLOPs, never from a guess
at the whole lesson:

    estimate = (full CPU time − CPU seconds spent in training epochs)          # data, plots, evaluation
             + Σ over the lesson's runs, at the gpu preset's size:
               epochs × (3 × n_train + n_val) × forward FLOPs per image / GPU_FLOPS

A training step costs about three forward passes (forward + backward ≈ 1 + 2), validation one.
The gpu preset scales each run (more faces, more epochs, larger inputs) by the ratio of the presets.
The lessons read the table through `mfjle_lib.course.timing`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pandas as pd

from mfjle_lib.constants import DEFAULT_CROP_FRACTION
from mfjle_lib.course.timing import forward_flops, lesson_times
from mfjle_lib.files import atomic_write_text, replace_block
from mfjle_lib.training.config import PRESETS

#: Assumed sustained training throughput of a Colab T4 with fp16 autocast, FLOP/s. The card's fp16
#: tensor-core peak is 65 TFLOP/s; ResNet-18 on 48–128 px inputs keeps a small fraction of it busy,
#: so the estimate assumes 4 TFLOP/s. An assumption, replaced by the measured time once there is one.
GPU_FLOPS = 4e12


def lesson_times_markdown(path: str | Path | None = None) -> str:
    """The lesson time table as Markdown, for the README (`tools/readme_blocks.py`)."""
    frame = lesson_times(path)
    lines = ["| lesson | " + " | ".join(frame.columns) + " |", "|---" * (len(frame.columns) + 1) + "|"]
    lines += [f"| `{name}` | " + " | ".join(row) + " |" for name, row in zip(frame.index, frame.to_numpy().tolist())]
    return "\n".join(lines) + "\n"


def lesson_time_line(lesson: str, path: str | Path | None = None) -> str:
    """One lesson's row of the time table as the sentence its header shows (filled by `notebook_tools sync`)."""
    frame = lesson_times(path)
    if lesson not in frame.index:
        return f"**Time.** Not measured yet (`notebooks/lesson_times.json` has no row for {lesson})."
    row = frame.loc[lesson]
    cols = list(frame.columns)
    return (
        f"**Time** (lesson 00, section 6): on 2 CPU cores {row[cols[0]]} on the released runs, FAST {row[cols[1]]}, "
        f"full {row[cols[2]]}; full on a Colab T4 GPU {row[cols[3]]}."
    )


TIME_START, TIME_END = (
    "<!-- time:start (generated from notebooks/lesson_times.json by notebook_tools sync) -->",
    "<!-- time:end -->",
)


def with_time_line(header: str, notebook: str) -> str:
    """A lesson header with its time sentence filled in between the markers (unchanged without them)."""
    if TIME_START not in header:
        return header
    return replace_block(header, TIME_START, TIME_END, lesson_time_line(Path(notebook).stem), where=notebook)


def junit_notebook_seconds(report: Path) -> dict[str, float]:
    """Seconds per lesson in a pytest JUnit report of nbval (one test case per cell, named by its notebook file)."""
    seconds: dict[str, float] = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        name = case.get("classname", "")  # e.g. "notebooks.03_single_resnet_baseline.ipynb"
        stem = name.removesuffix(".ipynb").rsplit(".", 1)[-1] if name.endswith(".ipynb") else ""
        if stem:
            seconds[stem] = seconds.get(stem, 0.0) + float(case.get("time", 0.0))
    return seconds


def finished_runs(root: Path, since: float) -> list[Path]:
    """Training runs under `root` whose metrics.json was written at or after `since` (a time.time())."""
    if not root.exists():
        return []
    return sorted(
        p.parent
        for p in root.rglob("metrics.json")
        if (p.parent / "history.csv").exists() and p.stat().st_mtime >= since
    )


def run_cost(run: Path) -> dict[str, Any]:
    """One finished run: its CPU training seconds and the FLOPs of the same run at the gpu preset's size."""
    m = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    history = pd.read_csv(run / "history.csv")
    cpu, gpu = PRESETS["cpu"], PRESETS["gpu"]
    # Scale only what the cpu preset set: a lesson that fixes its own epochs, faces or sizes keeps them.
    from_cpu = m.get("preset") == "cpu"
    scale_epochs = gpu["epochs"] / cpu["epochs"] if from_cpu and m.get("epochs") == cpu["epochs"] else 1.0
    n_faces = m["n_train"] + m["n_val"] + m["n_samples"]
    scale_faces = (
        gpu["num_images"] / cpu["num_images"]
        if from_cpu and m.get("dataset") == "synthetic" and n_faces == cpu["num_images"]
        else 1.0
    )
    same_geometry = from_cpu and (m["global_size"], m["local_size"]) == (cpu["global_size"], cpu["local_size"])
    geometry = (gpu["global_size"], gpu["local_size"]) if same_geometry else (m["global_size"], m["local_size"])
    per_image = forward_flops(
        m["model"], geometry[0], geometry[1], float(m.get("crop_fraction", DEFAULT_CROP_FRACTION))
    )
    epochs = len(history) * scale_epochs
    flops = epochs * (3 * m["n_train"] + m["n_val"]) * scale_faces * per_image
    return {"run": run.name, "cpu_train_s": float(history["time_s"].sum()), "gpu_flops": float(flops)}


def colab_estimate(full_cpu_s: float, runs: list[dict[str, Any]], gpu_flops: float = GPU_FLOPS) -> float:
    """The FLOP-based Colab T4 estimate of one lesson (see the module docstring), in seconds."""
    overhead = max(0.0, full_cpu_s - sum(r["cpu_train_s"] for r in runs))
    return overhead + sum(r["gpu_flops"] for r in runs) / gpu_flops


def _lesson_entry(notebook: Path, table: Path | None, update: Callable[[dict[str, Any]], Any]) -> Any:
    """Apply `update` to one lesson's entry of `lesson_times.json` and write the table back atomically (an interrupted
    run never leaves half a table); returns what `update` returned."""
    table = table or notebook.parent / "lesson_times.json"
    data = json.loads(table.read_text(encoding="utf-8"))
    result = update(data["lessons"].setdefault(notebook.stem, {}))
    atomic_write_text(table, json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    return result


def _record_runs(entry: dict[str, Any], runs: list[Path], full_cpu_s: float) -> None:
    """The runs a lesson's full mode trains, their CPU training seconds and the Colab estimate built from them."""
    costs = [run_cost(r) for r in runs]
    entry["runs_trained"] = [c["run"] for c in costs]
    entry["cpu_train_s"] = round(sum(c["cpu_train_s"] for c in costs))
    entry["colab_gpu_estimate"] = round(colab_estimate(full_cpu_s, costs))


def record_estimate(notebook: Path, runs: list[Path], table: Path | None = None) -> float:
    """A lesson's full CPU time estimated from the runs its full mode trains, for lessons not yet timed end to end:
    their own training seconds (history.csv) plus the lesson's released-mode time (what it does besides training).

    Kept as `full_cpu_estimate` (shown "≈ … (estimate)") beside the Colab estimate built from it; a measured
    `full_cpu` replaces both.
    """

    def update(entry: dict[str, Any]) -> float:
        estimate = float(entry.get("released") or 0) + sum(run_cost(r)["cpu_train_s"] for r in runs)
        entry["full_cpu_estimate"] = round(estimate)
        _record_runs(entry, runs, estimate)
        return estimate

    return _lesson_entry(notebook, table, update)


def record_time(
    notebook: Path,
    key: str,
    seconds: float,
    runs: list[Path] | None = None,
    table: Path | None = None,
    load: dict[str, Any] | None = None,
) -> None:
    """Write one lesson's measured wall time into `lesson_times.json`; a full CPU run also writes its Colab estimate.

    `load`: the machine's load record (`tools/machine_load.py: load_record`), kept as `<key>_load`; a busy
    one marks the time in the table.
    """

    def update(entry: dict[str, Any]) -> None:
        entry[key] = round(seconds)
        if load is not None:
            entry[f"{key}_load"] = load
        else:
            entry.pop(f"{key}_load", None)  # an older record must not vouch for a new time
        if key == "full_cpu":
            entry.pop("full_cpu_estimate", None)  # measured end to end now
            if runs is not None:
                _record_runs(entry, runs, seconds)

    _lesson_entry(notebook, table, update)
