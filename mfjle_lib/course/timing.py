"""How long each lesson takes, as lesson 00 shows it: the measured table (`notebooks/lesson_times.json`) and a model's
FLOPs; and what a model costs (lesson 04b): parameters, FLOPs and time, timed here or read from the committed benchmark.

The table is written by the repository's tools (`make notebooks`, `make retrain`, `make nbtimes`;
`tools/timing.py`: wall times, load records and the FLOP-based Colab estimate); this module only reads it.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.flop_counter import FlopCounterMode

from ..constants import TEMPLATE
from ..models.registry import build_model, count_parameters
from ..paths import PACKAGE_DIR, work_dir
from ..runtime import CPU_KINDS
from ..training import build_training, get_batch, inference_model, resolve_settings, train_step
from ..training.config import TrainConfig

#: The per-lesson time table lesson 00 and the README show (seconds; null = not measured yet).
LESSON_TIMES = PACKAGE_DIR.parent / "notebooks" / "lesson_times.json"


def _duration(seconds: float | None, estimate: float | None = None) -> str:
    """'45 s', '3 min', '1 h 05 min'; an estimate as '≈ 3 min (estimate)'; neither as 'not measured yet'."""
    if seconds is None and estimate is None:
        return "not measured yet"
    x = float(seconds if seconds is not None else estimate)
    text = (
        f"{x:.0f} s"
        if x < 90
        else f"{x / 60:.0f} min"
        if x < 3600
        else f"{int(x // 3600)} h {round(x % 3600 / 60):02d} min"
    )
    return text if seconds is not None else f"≈ {text} (estimate)"


def elapsed(t0: float) -> str:
    """The wall time since `t0` (a `time.perf_counter()` reading) as the lesson time table writes a time: '12 s',
    '4 min', '1 h 05 min' — what each lesson prints at its end."""
    return _duration(time.perf_counter() - t0)


def _busy(entry: dict[str, Any], key: str) -> str:
    """' (busy machine)' after a time measured while other work ran (its `<key>_load` record says busy)."""
    return " (busy machine)" if (entry.get(f"{key}_load") or {}).get("busy") else ""


def lesson_times(path: str | Path | None = None) -> pd.DataFrame:
    """`notebooks/lesson_times.json` as a table: each lesson's time by default (released runs), FAST, full on 2 CPU
    cores, full on a Colab GPU.

    A Colab GPU time that was not measured shows the FLOP-based estimate, marked "(estimate)", and a full CPU time
    not measured end to end the training time of the runs it trains (`tools/timing.py: record_estimate`); a time
    measured on a busy machine (its load record) is marked "(busy machine)".
    """
    raw = json.loads(Path(path or LESSON_TIMES).read_text(encoding="utf-8"))
    rows = {}
    for name, t in raw["lessons"].items():
        rows[name] = {
            "default (released runs), 2 CPU cores": _duration(t.get("released")) + _busy(t, "released"),
            "FAST, 2 CPU cores": _duration(t.get("fast")) + _busy(t, "fast"),
            "full, 2 CPU cores": _duration(t.get("full_cpu"), t.get("full_cpu_estimate")) + _busy(t, "full_cpu"),
            "full, Colab T4 GPU": _duration(t.get("colab_gpu"), t.get("colab_gpu_estimate")) + _busy(t, "colab_gpu"),
        }
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "lesson"
    return frame


@cache
def forward_flops(model: str, global_size: int, local_size: int, crop_fraction: float) -> int:
    """Forward FLOPs of one image through `model` at this geometry (multiply–add = 2; counted by torch)."""
    net = build_model(model, global_size=global_size, local_size=local_size, crop_fraction=crop_fraction).eval()
    x = torch.zeros(1, 3, global_size, global_size)
    landmarks = torch.full((1, 5, 2), global_size / 2)  # the crops' cost does not depend on where they are
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        net(x, landmarks)
    return int(counter.get_total_flops())


#: The committed CPU benchmark reports (`benchmarks/bench.py`): one folder per CPU kind (`runtime.cpu_kind`), one
#: report per geometry ("lesson": R 128, S_g 64, S_l 32, batch 64; "paper": 224/224/64, batch 32) and the kind's
#: deploy check (`benchmarks/check_deploy.py`). The README's speed block and docs/SPEED.md read them all.
BENCHMARK_DIR = "benchmarks/results"
BENCHMARK_GEOMETRIES = ("lesson", "paper")
#: The kind whose reports the lessons cite (the narrower vector units, where MF-JLE's overhead is largest).
LESSON_CPU_KIND = "avx2"


def benchmark_path(kind: str, name: str) -> Path:
    """Where kind `kind`'s file `name` lives: 'lesson' or 'paper' (a benchmark report), or 'deploy_check'."""
    return work_dir() / BENCHMARK_DIR / kind / f"{name if name == 'deploy_check' else 'bench_' + name}.json"


def benchmark_kinds() -> list[str]:
    """The CPU kinds with committed benchmark reports, in `runtime.CPU_KINDS` order (widest first)."""
    order = [kind for kind, _ in CPU_KINDS] + ["other"]
    return [k for k in order if any(benchmark_path(k, g).is_file() for g in BENCHMARK_GEOMETRIES)]


def committed_benchmark(cfg: TrainConfig, kind: str = LESSON_CPU_KIND) -> dict[str, Any] | None:
    """The committed benchmark report of CPU kind `kind` timed at `cfg`'s geometry (R, S_g, S_l), or None."""
    for name in BENCHMARK_GEOMETRIES:
        path = benchmark_path(kind, name)
        report = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        if [report.get(k) for k in ("source_size", "global_size", "local_size")] == [
            cfg.source_size,
            cfg.global_size,
            cfg.local_size,
        ]:
            return report
    return None


def _median_seconds(run: Callable[[], Any], device: torch.device, reps: int) -> float:
    """Median wall seconds of `reps` calls of `run` after two warm-up calls (kernel selection, memory)."""
    times = []
    for k in range(2 + reps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        run()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if k >= 2:
            times.append(time.perf_counter() - t0)
    return float(np.median(times))


def model_costs(cfg: TrainConfig, device: torch.device, reps: int | None, batch: int = 32) -> pd.DataFrame:
    """Parameters, forward GFLOPs per image and ms per image of ResNet-18, MF-JLE and MF-JLE on its inference path
    (`training.inference_model`) at `cfg`'s geometry: timed here (median of `reps` passes of `batch` images), or with
    `reps=None` read from the committed benchmark of that geometry (NaN where it holds no such time)."""
    s_g, s_l, c = cfg.global_size, cfg.local_size, cfg.crop_fraction
    nets = {
        "ResNet-18": build_model("resnet18", global_size=s_g).eval(),
        "MF-JLE": build_model("mfjle", global_size=s_g, local_size=s_l, crop_fraction=c).eval(),
    }
    rows = {
        name: {
            "parameters (M)": count_parameters(net) / 1e6,
            "GFLOPs / image": forward_flops("resnet18" if name == "ResNet-18" else "mfjle", s_g, s_l, c) / 1e9,
        }
        for name, net in nets.items()
    }
    if reps is None:
        report = committed_benchmark(cfg) or {}
        path, keys = "fp32", ("resnet18", "mfjle_naive", "mfjle_deploy_fp32")  # fp32: what `--precision auto` ran there
        ms = [report.get(f"{k}_infer_ms_per_img", float("nan")) for k in keys]
        how = f"benchmark: {report['cpu']}, batch {report['batch_size']}, {report['repeats']} rounds" if report else "–"
    else:
        fast, record = inference_model(copy.deepcopy(nets["MF-JLE"]).to(device), cfg, device)
        path, timed = record["path"], [nets["ResNet-18"].to(device), nets["MF-JLE"].to(device), fast]
        gen = torch.Generator().manual_seed(0)
        x = torch.rand(batch, 3, cfg.source_size, cfg.source_size, generator=gen).to(device)
        landmarks = torch.as_tensor(TEMPLATE * cfg.source_size).expand(batch, 5, 2).contiguous().to(device)
        with torch.inference_mode():
            ms = [_median_seconds(lambda n=n: n(x, landmarks), device, reps) / batch * 1e3 for n in timed]
        how = f"here: {device.type}, batch {batch}, {reps} passes"
    if not np.isnan(ms[2]):  # the lessons' benchmark times no inference path: no row rather than a blank one
        rows[f"MF-JLE, inference path ({path})"] = dict(rows["MF-JLE"])
    for row, value in zip(rows.values(), ms):
        row.update({"ms / image": value, "timed": how})
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "model"
    return frame


def step_seconds(cfg: TrainConfig, data: Any, device: torch.device, reps: int) -> float:
    """Median seconds of one training step (forward, Eq. 1, backward, Adam) of a fresh `cfg.model` on the first
    training batch of `data`, through the library's `train_step`, after two warm-up steps."""
    step_cfg = resolve_settings(cfg, device)  # precision and local form, as the trainer decides them
    torch.manual_seed(step_cfg.seed)
    parts = build_training(step_cfg, device)
    batch = get_batch(data, torch.as_tensor(data.splits["train"][: step_cfg.batch_size]), device)
    return _median_seconds(lambda: train_step(parts, batch, step_cfg, device), device, reps)
