"""How long each lesson takes, as lesson 00 shows it: the measured table (`notebooks/lesson_times.json`) and a model's
FLOPs.

The table is written by the repository's tools (`make notebooks`, `make retrain`, `make nbtimes`;
`tools/timing.py`: wall times, load records and the FLOP-based Colab estimate); this module only reads it.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch.utils.flop_counter import FlopCounterMode

from ..models.registry import build_model
from ..paths import PACKAGE_DIR

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


def _busy(entry: dict[str, Any], key: str) -> str:
    """' (busy machine)' after a time measured while other work ran (its `<key>_load` record says busy)."""
    return " (busy machine)" if (entry.get(f"{key}_load") or {}).get("busy") else ""


def lesson_times(path: str | Path | None = None) -> pd.DataFrame:
    """`notebooks/lesson_times.json` as a table: each lesson's time by default (released runs), FAST, full on 2 CPU
    cores, full on a Colab GPU.

    A Colab GPU time that was not measured shows the FLOP-based estimate, marked "(estimate)"; a time
    measured on a busy machine (its load record) is marked "(busy machine)".
    """
    raw = json.loads(Path(path or LESSON_TIMES).read_text(encoding="utf-8"))
    rows = {}
    for name, t in raw["lessons"].items():
        rows[name] = {
            "default (released runs), 2 CPU cores": _duration(t.get("released")) + _busy(t, "released"),
            "FAST, 2 CPU cores": _duration(t.get("fast")) + _busy(t, "fast"),
            "full, 2 CPU cores": _duration(t.get("full_cpu")) + _busy(t, "full_cpu"),
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
