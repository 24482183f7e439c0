"""The table of a real-dataset study, built from its results folder alone (`study` command).

Reads each run's `run.json`, `metrics.json`, `val_outputs.npz` and `test_outputs.npz`; writes
`table.md` and `table.json`. Rows: mean ± std over seeds of the nine metrics, per group (split,
model, start), once with the run's own fusion at threshold 0.5 (the paper's rule) and once with
fusion weights and threshold chosen on the validation outputs (`fusion_choice.choose_fusion`,
which is given the validation arrays only); the paper's rows beside them; paired gaps per seed.
Nothing here depends on time or machine, so the same folder gives the same bytes.
"""

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..files import atomic_write_text, json_safe
from ..method.metrics import METRIC_KEYS
from ..models.arms import ARMS
from .reports import HEADERS, markdown_table, paper_rows, results_table, summarise_runs, t_interval
from .study_runs import FUSIONS, SPLIT_NAMES, RunResult, gap_frame, gap_list, group_name, groups, read_runs, to_paper


def build(results: str | Path, command: str | None = None) -> tuple[str, dict[str, Any]]:
    """(table.md text, table.json object) of the study in `results`; `command` is the study command that rebuilds it
    (default: the one the first run recorded, which names only the models that invocation trained)."""
    runs = read_runs(results)
    if not runs:
        raise ConfigError(f"{results}: no finished study runs (folders with run.json)")
    by = groups(runs)
    dataset = runs[0].paper.get("dataset")
    rows, summaries, meta, intervals = {}, {}, {}, {}
    for (split, model, start), members in by.items():
        for fusion in FUSIONS:
            name = f"{group_name(split, model, start, fusion)} ({len(members)} seed{'s' * (len(members) != 1)})"
            summaries[name] = summarise_runs([getattr(r, fusion) for r in members])
            rows[name] = summaries[name]
            intervals[name] = {k: t_interval([float(getattr(r, fusion)[k]) for r in members]) for k in METRIC_KEYS}
            # Validation micro-F1 of this reading (the paper's fusion at 0.5, or the choice): what "best" is picked by.
            val = float(
                np.mean([r.val["fusion_choice"]["paper_value" if fusion == "paper" else "value"] for r in members])
            )
            meta[name] = {
                "split": split,
                "model": model,
                "start": start,
                "fusion": fusion,
                "seeds": [r.seed for r in members],
                "val_micro_f1": val,
            }
    table = results_table(rows, dataset)
    gaps = gap_list(by)
    paper = paper_rows(dataset)
    paper_mfjle = next((v for k, v in paper.items() if k.startswith("MF-JLE")), None)
    best = None
    if paper_mfjle is not None:
        image = {k: v for k, v in summaries.items() if k.startswith("MF-JLE") and SPLIT_NAMES["paper"] in k}
        if image:  # chosen on validation, never on test: the highest mean validation micro-F1 (ties: the earlier row)
            best = max(image, key=lambda k: meta[k]["val_micro_f1"])
    command = command or runs[0].record.get("study_command")
    record = _record(runs, summaries, meta, gaps, paper, best, paper_mfjle, intervals, command)
    return _markdown(table, gaps, by, runs, best, paper_mfjle, summaries, intervals, command), record


def _record(runs, summaries, meta, gaps, paper, best, paper_mfjle, intervals, command) -> dict[str, Any]:
    """The table.json object: every row's mean/std, every run's nine metrics and choice, gaps per seed, run records."""
    return json_safe(
        {
            "dataset": runs[0].paper.get("dataset"),
            "study_command": command,
            "rows": {
                name: {
                    **meta[name],
                    "metrics": {
                        k: {"mean": m, "std": s, "ci95": list(intervals[name][k])} for k, (m, s) in row.items()
                    },
                }
                for name, row in summaries.items()
            },
            "paper": paper,
            "runs": {
                r.name: {
                    "paper_fusion": {k: r.paper[k] for k in METRIC_KEYS},
                    "val_fusion": {k: r.val[k] for k in METRIC_KEYS},
                    "val_choice": {"fusion_weights": r.val["fusion_weights"], "threshold": r.val["threshold"]},
                    "n_test": r.paper.get("n_samples"),
                    "n_ranking_excluded": r.paper.get("n_ranking_excluded"),
                    "selected_epoch": r.paper.get("selected_epoch"),
                    "command": r.record.get("command"),
                    "train_s": r.record.get("epochs_time_s"),
                    "versions": r.record.get("versions"),
                    "machine": r.record.get("machine"),
                }
                for r in runs
            },
            "gaps": {
                name: {
                    **{k: g[k] for k in ("kind", "split", "model", "start", "fusion", "base", "part") if k in g},
                    "seeds": g["seeds"],
                    "per_seed": {str(s): v for s, v in g["per_seed"].items()},
                    "mean": {k: g["summary"][k][0] for k in METRIC_KEYS},
                    "std": {k: g["summary"][k][1] for k in METRIC_KEYS},
                    "ci95": {k: list(g["ci95"][k]) for k in METRIC_KEYS},
                }
                for name, g in gaps.items()
            },
            "best_image_split_mfjle": best,
            "best_minus_paper_mfjle": to_paper(summaries[best], paper_mfjle) if best else None,
        }
    )


def interval_text(lo: float | None, hi: float | None, signed: bool = False, n: int | None = None) -> str:
    """'[0.791, 0.845]' ('[-0.010, +0.011]' for a gap), 'needs 2 seeds' where one seed gives no interval, and a
    zero-width interval marked as what it is: '[+0.000, +0.000] (3 identical values)', never a certainty."""
    f = "+.3f" if signed else ".3f"
    if lo is None or np.isnan(lo):
        return "needs 2 seeds"
    text = f"[{lo:{f}}, {hi:{f}}]"
    if hi - lo <= 1e-12:  # std 0: every seed gave the same value, so the t-interval has no width
        text += f" ({n} identical values)" if n else " (identical values)"
    return text


def mean_std_text(mean: float, std: float, n: int, signed: bool = False) -> str:
    """'0.523 ± 0.023' over n ≥ 2 seeds; '0.502' for one (a single value has no spread: never '± 0.000')."""
    f = "+.3f" if signed else ".3f"
    return f"{mean + 0.0:{f}} ± {std:.3f}" if n > 1 else f"{mean + 0.0:{f}}"


def interval_lines(summaries, intervals, key: str = "micro_f1") -> list[str]:
    """The rows' `key` over seeds: mean ± std, the 95 % t-interval of the mean and its width, as a Markdown table."""
    lines = [
        f"| row | {HEADERS[key]} mean ± std | 95 % interval (t) | width |",
        "|:---|---:|---:|---:|",
    ]
    for name, row in summaries.items():
        lo, hi = intervals[name][key]
        width = "–" if np.isnan(lo) else f"{hi - lo:.3f}"
        n = 1 if np.isnan(lo) else 2  # the t-interval is undefined exactly when the row has one seed
        lines.append(f"| {name} | {mean_std_text(row[key][0], row[key][1], n)} | {interval_text(lo, hi)} | {width} |")
    return lines


def _markdown(
    table: pd.DataFrame, gaps, by, runs: Sequence[RunResult], best, paper_mfjle, summaries, intervals, command
) -> str:
    """The table.md text."""
    first = next(
        (r for r in runs if r.model == "mfjle"), runs[0]
    ).record  # the base geometry: the arms derive theirs from it
    s = first["settings"]
    arms = {r.model: r.record["settings"] for r in runs if r.model not in ("resnet18", "mfjle")}
    lines = [
        f"# Study: {s['dataset']} — {', '.join(ARMS[a].title for a in ARMS if any(r.model == a for r in runs))}: nine metrics on the test split (mean ± std over seeds)",
        "",
        f"Study command: `{command or ''}`",
        "",
        f"Geometry R = {s['source_size']}, S_g = {s['global_size']}, S_l = {s['local_size']}, c = {s['crop_fraction']:g}; "
        f"{s['epochs']} epochs, batch {s['batch_size']}, Adam lr {s['lr']:g} (StepLR ×{s['gamma']:g} every {s['step_size']}), "
        f"selection on validation {s['select_metric']}; training seed = split seed. "
        "'fusion + t on val': fusion weights (1, λ × 5) and threshold chosen on the validation outputs only, then applied to test "
        "(ResNet-18: the threshold only).",
        *(
            [""]
            + [
                "Controls (`models/arms.py`): "
                + "; ".join(
                    f"{ARMS[a].title}: S_g = {v['global_size']}, S_l = {v['local_size']}" for a, v in arms.items()
                )
                + "."
            ]
            if arms
            else []
        ),
        "",
        markdown_table(table),
        "",
        "## Micro-F1 over seeds with its 95 % interval",
        "",
        (
            "Each seed draws its own split, so the seeds are independent draws of the test micro-F1"
            if any(r.split != "official" for r in runs)
            else "Every seed trains on the one official split and is tested on the same faces, so the interval covers "
            "training seeds only, not another draw of test faces"
        )
        + "; the interval is mean ± t(0.975, n − 1) · std / √n.",
        "",
        *interval_lines(summaries, intervals),
        "",
        "## Paired gaps (per seed, then mean ± std)",
        "",
        markdown_table(gap_frame(gaps)),
        "",
        "Per seed (micro-F1 / AP):",
        "",
    ]
    for name, g in gaps.items():
        vals = ", ".join(
            f"seed {sd}: {g['per_seed'][sd]['micro_f1']:+.3f} / {g['per_seed'][sd]['average_precision']:+.3f}"
            for sd in g["seeds"]
        )
        ci = interval_text(*g["ci95"]["micro_f1"], signed=True, n=len(g["seeds"]))
        lines.append(f"- {name}: {vals}; micro-F1 95 % interval {ci}")
    if best:
        gap = to_paper(summaries[best], paper_mfjle)
        lines += [
            "",
            f"## Against the paper's MF-JLE row (Table 2), the image-split MF-JLE row with the highest mean *validation* micro-F1: {best}",
            "",
            "Ours − paper, signed so that + is better than the paper: "
            + ", ".join(f"{HEADERS[k]} {gap[k]:+.3f}" for k in METRIC_KEYS)
            + ".",
            f"At or above the paper on {sum(v >= 0 for v in gap.values())} of 9 metrics (means).",
        ]
    lines += [
        "",
        "## Runs",
        "",
        "| run | test faces | selected epoch | val choice (w_local, t) | training s |",
        "|:---|---:|---:|---:|---:|",
    ]
    for r in runs:
        w = r.val["fusion_weights"]
        lines.append(
            f"| {r.name} | {r.paper.get('n_samples')} | {r.paper.get('selected_epoch')} | "
            f"{(f'{w[1]:g}, ' if len(w) > 1 else '')}{r.val['threshold']:.2f} | {r.record.get('epochs_time_s')} |"
        )
    v, m = first["versions"], first["machine"]
    lines += [
        "",
        "Versions: "
        + ", ".join(f"{k} {val}" for k, val in v.items())
        + f". Machine (first run): {_machine_text(m)}; each run's own is in its `run.json`.",
        "Training s: the run's epochs (training + validation) summed from its `history.csv`; each run's wall time, "
        "its own `train` command and the package versions are in its `run.json` (ROOT = the dataset folder, WORK = the study's work folder).",
        "",
    ]
    return "\n".join(lines)


def _machine_text(m: Mapping[str, Any]) -> str:
    """'AMD EPYC (avx2, avx512_f, avx512_bf16), 2 cores, 1 thread' from a run record's machine (older records: what they have)."""
    ext = f" ({', '.join(m['cpu_extensions'])})" if m.get("cpu_extensions") else ""
    threads = f", {m['cpu_threads']} thread{'s' if m['cpu_threads'] != 1 else ''}" if m.get("cpu_threads") else ""
    return f"{m.get('cpu')}{ext}, {m.get('cpu_count')} cores{threads}"


def write(results: str | Path, command: str | None = None) -> tuple[Path, Path]:
    """Write `table.md` and `table.json` into `results` (`command`: see `build`); return their paths."""
    results = Path(results)
    text, record = build(results, command)
    atomic_write_text(results / "table.md", text)
    atomic_write_text(results / "table.json", json.dumps(record, indent=2, sort_keys=False) + "\n")
    return results / "table.md", results / "table.json"
