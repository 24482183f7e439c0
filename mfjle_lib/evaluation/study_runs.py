"""A real-dataset study's runs, read from its results folder alone: each run's record, metrics and outputs,
grouped by split, model and start, and the paired gaps per seed between groups (`study_table` writes them).

A run folder is named `<split>_<arm>_<start>_seed<N>`; its two readings are the paper's rule (the run's own
fusion at 0.5) and fusion weights and threshold chosen on its validation outputs only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError
from ..files import read_json
from ..method.metrics import LOWER_IS_BETTER, METRIC_KEYS
from ..models.arms import ARMS, EXTRA_STEPS, GAIN_STEPS
from .fusion_choice import report_val_fusion
from .outputs import load_outputs
from .reports import HEADERS, summarise_runs, t_interval

_RUN = re.compile(
    r"^(?P<split>[a-z]+)_(?P<model>"
    + "|".join(sorted(ARMS, key=len, reverse=True))
    + r")_(?P<start>[a-z_]+)_seed(?P<seed>\d+)$"
)


#: How rows name the starts, splits and models.
START_NAMES = {
    "scratch": "from scratch",
    "started": "started (head carried over)",
    "started_fresh_head": "started (fresh head)",
}
SPLIT_NAMES = {"paper": "image split", "subject": "subject split", "official": "official split"}
FUSIONS = {"paper": "paper fusion, t 0.5", "val": "fusion + t on val"}


@dataclass(frozen=True)
class RunResult:
    """One finished run as read back from the results folder: its place in the grid and both readings."""

    split: str
    model: str
    start: str
    seed: int
    paper: dict[str, Any]  # metrics.json: its own fusion, threshold 0.5
    val: dict[str, Any]  # fusion weights and threshold chosen on validation, applied to test
    record: dict[str, Any]  # run.json
    name: str  # the run's folder


def parse_run_name(name: str) -> dict[str, Any] | None:
    """A run folder's place in the grid, {'split', 'model' (the arm), 'start', 'seed'}; None for another folder."""
    found = _RUN.match(name)
    return None if found is None else {**found.groupdict(), "seed": int(found["seed"])}


def read_runs(results: str | Path) -> list[RunResult]:
    """Every finished run in `results` (a folder with `run.json`), sorted by name."""
    out = []
    if not Path(results).is_dir():
        raise ConfigError(f"{results}: no such results folder")
    for folder in sorted(Path(results).iterdir()):
        found = _RUN.match(folder.name)
        if not found or not (folder / "run.json").is_file():
            continue
        metrics = read_json(folder / "metrics.json", keys=("fusion_weights", *METRIC_KEYS))
        record = read_json(folder / "run.json", keys=("settings",))
        _, chosen = report_val_fusion(
            _outputs(folder / "val_outputs.npz"), _outputs(folder / "test_outputs.npz"), metrics["fusion_weights"]
        )
        # A 'started' run of a later split used the head mode chosen on the first split's validation:
        # name it by what it did.
        start = (
            "started_fresh_head"
            if found["start"] == "started" and record["settings"].get("init_head") == "fresh"
            else found["start"]
        )
        out.append(
            RunResult(found["split"], found["model"], start, int(found["seed"]), metrics, chosen, record, folder.name)
        )
    return out


def _outputs(path: Path) -> dict[str, np.ndarray]:
    """A run's saved outputs; a missing or damaged file is a DataError naming it."""
    try:
        return load_outputs(path)
    except Exception as exc:  # zip, key and value errors alike: the file is what the reader must know
        raise DataError(path, f"unreadable outputs ({type(exc).__name__}: {exc})") from None


def group_name(split: str, model: str, start: str, fusion: str) -> str:
    """Row name, e.g. 'MF-JLE, started (fresh head), image split — fusion + t on val'."""
    return f"{ARMS[model].title}, {START_NAMES.get(start, start)}, {SPLIT_NAMES.get(split, split)} — {FUSIONS[fusion]}"


def groups(runs: Sequence[RunResult]) -> dict[tuple[str, str, str], list[RunResult]]:
    """Runs by (split, arm, start), in grid order (split, start, then the arms' order), seeds sorted."""
    order = {"paper": 0, "official": 1, "subject": 2}
    arm_order = list(ARMS)
    out: dict[tuple[str, str, str], list[RunResult]] = {}
    for r in sorted(
        runs,
        key=lambda r: (
            order.get(r.split, 9),
            list(START_NAMES).index(r.start) if r.start in START_NAMES else 9,
            arm_order.index(r.model),
            r.seed,
        ),
    ):
        out.setdefault((r.split, r.model, r.start), []).append(r)
    return out


def _seed_values(runs: Sequence[RunResult], fusion: str) -> dict[int, dict[str, float]]:
    """Seed -> nine metrics of one reading."""
    return {r.seed: {k: float(getattr(r, fusion)[k]) for k in METRIC_KEYS} for r in runs}


def paired_gap(a: Sequence[RunResult], fa: str, b: Sequence[RunResult], fb: str) -> dict[str, Any] | None:
    """Per-seed a − b on the nine metrics over the seeds both have, with mean and std (None if none shared)."""
    va, vb = _seed_values(a, fa), _seed_values(b, fb)
    seeds = sorted(set(va) & set(vb))
    if not seeds:
        return None
    per_seed = {s: {k: va[s][k] - vb[s][k] for k in METRIC_KEYS} for s in seeds}
    return {
        "seeds": seeds,
        "per_seed": per_seed,
        "summary": summarise_runs([per_seed[s] for s in seeds]),
        "ci95": {k: t_interval([per_seed[s][k] for s in seeds]) for k in METRIC_KEYS},
    }


def gap_list(by: Mapping[tuple[str, str, str], list[RunResult]]) -> dict[str, dict[str, Any]]:
    """The paired gaps the study is about: MF-JLE − ResNet-18, started − scratch, val − paper fusion, subject − image.

    Each gap carries what it compares (`kind`, `split`, `model`, `start`, `fusion`) so a lesson can pick it without
    parsing names.
    """
    gaps: dict[str, dict[str, Any] | None] = {}

    def add(name: str, gap: dict[str, Any] | None, **what: str) -> None:
        if gap is not None:
            gaps[name] = {**what, **gap}

    for (split, model, start), runs in by.items():
        where = f"{START_NAMES.get(start, start)}, {SPLIT_NAMES.get(split, split)}"
        if model == "mfjle" and (split, "resnet18", start) in by:
            for fusion in FUSIONS:
                add(
                    f"MF-JLE − ResNet-18, {where}, {FUSIONS[fusion]}",
                    paired_gap(runs, fusion, by[(split, "resnet18", start)], fusion),
                    kind="mfjle_vs_resnet18",
                    split=split,
                    model=model,
                    start=start,
                    fusion=fusion,
                )
        for base, after, part in (*GAIN_STEPS, *EXTRA_STEPS):
            if model == after and (split, base, start) in by:
                for fusion in FUSIONS:
                    add(
                        f"{ARMS[after].title} − {ARMS[base].title} ({part}), {where}, {FUSIONS[fusion]}",
                        paired_gap(runs, fusion, by[(split, base, start)], fusion),
                        kind="arm_step",
                        split=split,
                        model=model,
                        start=start,
                        fusion=fusion,
                        base=base,
                        part=part,
                    )
        if start != "scratch" and (split, model, "scratch") in by:
            add(
                f"{ARMS[model].title}: {START_NAMES[start]} − from scratch, "
                f"{SPLIT_NAMES.get(split, split)}, paper fusion",
                paired_gap(runs, "paper", by[(split, model, "scratch")], "paper"),
                kind="started_vs_scratch",
                split=split,
                model=model,
                start=start,
                fusion="paper",
            )
        add(
            f"{ARMS[model].title}, {where}: fusion + t on val − paper fusion",
            paired_gap(runs, "val", runs, "paper"),
            kind="val_vs_paper",
            split=split,
            model=model,
            start=start,
            fusion="val",
        )
        if split == "subject" and ("paper", model, start) in by:
            add(
                f"{ARMS[model].title}, {START_NAMES.get(start, start)}: subject split − image split, paper fusion",
                paired_gap(runs, "paper", by[("paper", model, start)], "paper"),
                kind="subject_vs_image",
                split=split,
                model=model,
                start=start,
                fusion="paper",
            )
    return gaps  # type: ignore[return-value]


def _gap_cell(mean: float, std: float) -> str:
    """'+0.012 ± 0.004'; a gap that rounds to zero prints +0.000 whatever the sign of its last bits."""
    return f"{round(mean, 3) + 0.0:+.3f} ± {std:.3f}"


def gap_frame(gaps: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Gaps as a string table (rows × nine metrics)."""
    rows = {name: [_gap_cell(*g["summary"][k]) for k in METRIC_KEYS] for name, g in gaps.items()}
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=[HEADERS[k] for k in METRIC_KEYS])
    frame.index.name = "paired gap (mean ± std over seeds)"
    return frame


def to_paper(row: Mapping[str, tuple[float, float]], paper: Mapping[str, float]) -> dict[str, float]:
    """Ours − paper per metric, signed so that positive means better than the paper."""
    return {k: (paper[k] - row[k][0]) if LOWER_IS_BETTER[k] else (row[k][0] - paper[k]) for k in METRIC_KEYS}
