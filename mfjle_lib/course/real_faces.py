"""The committed real-face study (`results/<dataset>/`, made by `python -m mfjle_lib study`) for the lessons.

The lessons read these artefacts instead of pasting numbers: no real image is needed to run them,
and every number they show is in the repository with the command that produced it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..constants import EMOTION_TITLES
from ..errors import ConfigError
from ..evaluation.outputs import Outputs, load_outputs
from ..evaluation.per_label import per_label_report
from ..evaluation.reports import HEADERS, results_table, styled
from ..evaluation.study_runs import parse_run_name
from ..evaluation.study_table import interval_text, mean_std_text
from ..method.metrics import LOWER_IS_BETTER, METRIC_KEYS, multilabel_metrics
from ..models.arms import ARMS
from ..paths import work_dir
from .controls import parts_of, summarise_parts
from .plots.common import MODEL_COLOURS
from .val_fusion import SeedFusion, fusion_by_seed


def study_dir(dataset: str = "jaffe") -> Path:
    """The folder of a committed study (`results/<dataset>`), or a clear error when it is not there."""
    path = work_dir() / "results" / dataset
    if not (path / "table.json").is_file():
        raise ConfigError(
            f"{path}: no committed study here (table.json); run `python -m mfjle_lib study --dataset {dataset} --root DIR`"
        )
    return path


def run_outputs(
    dataset: str, model: str, split: str = "official", start: str = "scratch", part: str = "test"
) -> dict[int, dict[str, np.ndarray]]:
    """Seed -> one study arm's saved `<part>_outputs.npz` ('val' or 'test': labels, module and fused probabilities) for
    every finished run (a `run.json`) present: what the lessons re-fuse or score again without any real image."""
    out = {}
    for folder in sorted(study_dir(dataset).iterdir()):
        run = parse_run_name(folder.name)  # the grid's own naming rule: 'mfjle' never matches mfjle_lowres's runs
        if (
            run
            and (run["split"], run["model"], run["start"]) == (split, model, start)
            and (folder / "run.json").is_file()
        ):
            out[run["seed"]] = load_outputs(folder / f"{part}_outputs.npz")
    if not out:
        raise ConfigError(f"results/{dataset}: no finished {split}_{model}_{start} run")
    return dict(sorted(out.items()))


#: The test faces `real_labels` reads: (dataset, model, split, start) of a run whose saved outputs carry them.
LABEL_SOURCES = {
    "JAFFE test, split 0 (posed)": ("jaffe", "resnet18", "paper", "started"),
    "FER+ test (crowd votes)": ("ferplus", "resnet18", "official", "scratch"),
}


def real_labels() -> dict[str, np.ndarray]:
    """The 0/1 labels of the real test faces, read from the lowest seed's saved outputs (no image needed)."""
    out = {}
    for name, (dataset, model, split, start) in LABEL_SOURCES.items():
        runs = run_outputs(dataset, model, split, start)
        out[name] = runs[min(runs)]["labels"] > 0.5
    return out


def label_count_table(labels: dict[str, np.ndarray]) -> pd.DataFrame:
    """Per label set (faces × 6, 0/1): faces, labels per face, and the share of faces with 0, 1, 2, 3 or more labels."""
    rows = {}
    for name, y in labels.items():
        k = np.asarray(y).astype(bool).sum(1)
        rows[name] = {
            "faces": len(k),
            "labels per face": round(float(k.mean()), 2),
            **{f"{n} label{'s' * (n != 1)}": f"{(k == n).mean():.0%}" for n in (0, 1, 2)},
            "3 or more": f"{(k >= 3).mean():.0%}",
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def load_study(dataset: str = "jaffe", folder: str | Path | None = None) -> dict[str, Any]:
    """A study's `table.json` (rows: mean/std per group; runs; paired gaps; the paper's rows), from `folder` or `results/<dataset>`."""
    path = Path(folder) if folder is not None else study_dir(dataset)
    return json.loads((path / "table.json").read_text())


def _match(entry: dict[str, Any], filters: dict[str, Any]) -> bool:
    """True when `entry` has every filter's value (a tuple/list filter: any of them)."""
    for key, want in filters.items():
        if want is None:
            continue
        if isinstance(want, (tuple, list, set)):
            if entry.get(key) not in want:
                return False
        elif entry.get(key) != want:
            return False
    return True


def study_rows(study: dict[str, Any], paper: bool = True, **filters: Any) -> pd.DataFrame:
    """Rows of the study's table (nine metrics, mean ± std) picked by split/model/start/fusion, the paper's rows beneath."""
    rows = {
        name: {k: (v["metrics"][k]["mean"], v["metrics"][k]["std"]) for k in METRIC_KEYS}
        for name, v in study["rows"].items()
        if _match(v, filters)
    }
    if not rows:
        raise ConfigError(f"no study row matches {filters}")
    return results_table(rows, study.get("dataset") if paper else None)


def show_rows(study: dict[str, Any], **filters: Any):
    """`study_rows` styled as the lessons show tables (best of ours in bold, the paper's rows in grey)."""
    return styled(study_rows(study, **filters), dataset=study.get("dataset"))


def seed_values(study: dict[str, Any], metric: str = "micro_f1", **filters: Any) -> pd.DataFrame:
    """The picked rows' `metric` seed by seed (one row per study row, one column per seed), from each run's record."""
    out = {}
    for name, row in study["rows"].items():
        if not _match(row, filters):
            continue
        reading = "paper_fusion" if row["fusion"] == "paper" else "val_fusion"
        runs = {
            s: study["runs"].get(f"{row['split']}_{row['model']}_{row['start']}_seed{s}")
            or study["runs"][f"{row['split']}_{row['model']}_started_seed{s}"]  # a later split's head mode, by choice
            for s in row["seeds"]
        }
        out[name] = {f"seed {s}": round(r[reading][metric], 3) for s, r in runs.items()}
    frame = pd.DataFrame.from_dict(out, orient="index")
    frame.index.name = f"{HEADERS[metric]}, seed by seed"
    return frame


def interval_table(study: dict[str, Any], metric: str = "micro_f1", **filters: Any) -> pd.DataFrame:
    """The picked rows' `metric` over seeds: seeds, mean ± std, the 95 % t-interval of the mean and its width, and
    the paper's value for the same model (Table 2) with whether it lies inside (a DataFrame, one row per study row)."""
    paper = {k.split(" (")[0]: v for k, v in study["paper"].items()}
    out = {}
    for name, row in study["rows"].items():
        if not _match(row, filters):
            continue
        m = row["metrics"][metric]
        lo, hi = m["ci95"]
        ref = paper.get("MF-JLE" if row["model"] == "mfjle" else "ResNet-18" if row["model"] == "resnet18" else "")
        out[name] = {
            "seeds": len(row["seeds"]),
            "mean ± std": f"{m['mean']:.3f} ± {m['std']:.3f}",
            "95 % interval": interval_text(lo, hi, n=len(row["seeds"])),
            "width": None if lo is None else round(hi - lo, 3),
            "paper": None if ref is None else ref[metric],
            "paper inside": None if ref is None or lo is None else bool(lo <= ref[metric] <= hi),
        }
    frame = pd.DataFrame.from_dict(out, orient="index")
    frame.index.name = f"{HEADERS[metric]} over seeds"
    return frame


def gaps(study: dict[str, Any], **filters: Any) -> dict[str, dict[str, Any]]:
    """The study's paired gaps picked by kind/split/model/start/fusion."""
    return {name: g for name, g in study["gaps"].items() if _match(g, filters)}


def gap_table(study: dict[str, Any], metric: str = "micro_f1", **filters: Any) -> pd.DataFrame:
    """Per-seed values and mean ± std of one metric for the picked paired gaps (a DataFrame, one row per gap)."""
    picked = gaps(study, **filters)
    rows = {}
    for name, g in picked.items():
        row = {f"seed {s}": round(g["per_seed"][str(s)][metric], 3) for s in g["seeds"]}
        row["mean ± std"] = f"{round(g['mean'][metric], 3) + 0.0:+.3f} ± {g['std'][metric]:.3f}"
        row["95 % interval"] = interval_text(*g["ci95"][metric], signed=True, n=len(g["seeds"])) if "ci95" in g else "–"
        rows[name] = row
    frame = pd.DataFrame.from_dict(rows, orient="index")
    seeds = sorted((c for c in frame.columns if c.startswith("seed ")), key=lambda c: int(c.split()[1]))
    frame = frame[seeds + [c for c in frame.columns if not c.startswith("seed ")]]  # rows with more seeds add columns
    frame.index.name = f"paired gap in {HEADERS[metric]}"
    return frame


def arm_values(
    study: dict[str, Any],
    metric: str = "micro_f1",
    rule: str = "paper",
    split: str = "official",
    start: str = "scratch",
) -> pd.DataFrame:
    """Seeds (rows) × control arms (columns, by title): each finished run's test `metric` at `rule` ('paper' or 'val',
    fusion and threshold chosen on validation), read from the study's run records; an arm still training is NaN."""
    reading = "paper_fusion" if rule == "paper" else "val_fusion"
    columns = {}
    for arm in ARMS:
        prefix = f"{split}_{arm}_{start}_seed"  # 'official_mfjle_scratch_seed' never matches mfjle_lowres's runs
        seeds = {
            int(n[len(prefix) :]): r[reading][metric]
            for n, r in study["runs"].items()
            if n.startswith(prefix) and n[len(prefix) :].isdigit()
        }
        if seeds:
            columns[ARMS[arm].title] = seeds
    frame = pd.DataFrame(columns).sort_index()
    frame.index.name = "seed"
    return frame


def arm_table(study: dict[str, Any], metric: str = "micro_f1", **where: str) -> pd.DataFrame:
    """One row per control arm finished on at least one seed: its seeds and test `metric` (mean ± std) at both rules;
    an arm with one seed shows its value alone (`study_table.mean_std_text`), no spread."""
    rows: dict[str, dict[str, Any]] = {}
    for rule, label in (("paper", "paper's rule"), ("val", "equal care")):
        for arm, column in arm_values(study, metric, rule, **where).items():
            v = column.dropna()
            rows.setdefault(arm, {"seeds": ", ".join(str(s) for s in v.index)})
            std = v.std(ddof=1) if len(v) > 1 else np.nan  # one seed has no spread (its seeds are listed)
            rows[arm][f"{HEADERS[metric]}, {label}"] = mean_std_text(v.mean(), std, len(v))
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "arm (test split)"
    return frame


def gain_parts(study: dict[str, Any], rule: str = "paper", metric: str = "micro_f1", **where: str) -> pd.DataFrame:
    """Lesson 05's split of MF-JLE − ResNet-18 (ensembling, locality, resolution, the full-resolution steps) per seed,
    from the study's runs: the same rule as `controls.gain_parts` on the built-in faces."""
    return parts_of(arm_values(study, metric, rule, **where))


def gain_split(study: dict[str, Any], rule: str = "paper", metric: str = "micro_f1", **where: str) -> pd.DataFrame:
    """`gain_parts` summarised as `controls.gain_split` does (`controls.summarise_parts`): the split and its total over
    the seeds all four arms share, every other step over the seeds both its arms have; mean, std, n and sign count."""
    return summarise_parts(gain_parts(study, rule, metric, **where))


def plot_gaps(
    study: dict[str, Any],
    names: Sequence[str],
    metrics: Sequence[str] = ("micro_f1", "average_precision", "hamming_loss"),
    labels: Sequence[str] | None = None,
) -> plt.Figure:
    """Per-seed paired gaps (dots) with their mean ± std (bar) for each picked gap, one panel per metric; right = better."""
    labels = list(labels or names)
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(4.2 * len(metrics), 0.65 * len(names) + 1.6), sharey=True, squeeze=False
    )
    for ax, metric in zip(axes[0], metrics):
        sign = -1.0 if LOWER_IS_BETTER[metric] else 1.0  # drawn so that right of zero is always better
        for y, name in enumerate(names):
            g = study["gaps"][name]
            seeds = np.array([g["per_seed"][str(s)][metric] for s in g["seeds"]]) * sign
            ax.barh(
                y,
                seeds.mean(),
                xerr=seeds.std(ddof=1) if len(seeds) > 1 else 0,
                color="#9ecae1",
                edgecolor="#3182bd",
                capsize=3,
            )
            ax.scatter(seeds, np.full(len(seeds), y), color="#08519c", zorder=3, s=18)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_title(f"{HEADERS[metric]}" + (" (drawn −: right = lower)" if sign < 0 else ""), fontsize=10)
        ax.set_yticks(range(len(names)), labels)
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle("paired gaps per seed (dots) and mean ± std (bar); right of 0 = better", fontsize=10)
    fig.tight_layout()
    return fig


def metrics_by_seed(
    outputs: Mapping[str, Mapping[int, Outputs]],
    yours: Mapping[str, Callable[[np.ndarray, np.ndarray], float]] | None = None,
    gap: tuple[str, str] | None = None,
) -> pd.DataFrame:
    """The nine metrics of each arm's fused test outputs at 0.5 (arm -> seed -> outputs): a row per seed, then their
    mean and std; with `gap` = (a, b), the mean of a − b over the seeds both have; `yours` (metric key ->
    fn(labels, probs)) adds a column beside the library's for each metric it names."""
    yours = dict(yours or {})

    def one(out: Outputs) -> dict[str, float]:
        found = multilabel_metrics(out["labels"], out["fused_probs"])
        row = {k: found[k] for k in METRIC_KEYS}
        row.update({f"{k} (yours)": float(fn(out["labels"], out["fused_probs"])) for k, fn in yours.items()})
        return row

    per_arm = {
        arm: pd.DataFrame.from_dict({s: one(o) for s, o in runs.items()}, orient="index")
        for arm, runs in outputs.items()
    }
    rows: dict[tuple[str, str], pd.Series] = {}
    for arm, frame in per_arm.items():
        title = ARMS[arm].title
        rows.update({(title, f"seed {s}"): r for s, r in frame.iterrows()})
        rows[(title, "mean")] = frame.mean()
        rows[(title, "std")] = frame.std(ddof=1) if len(frame) > 1 else frame.iloc[0] * 0.0
    if gap:
        a, b = per_arm[gap[0]], per_arm[gap[1]]
        shared = a.index.intersection(b.index)
        name = f"{ARMS[gap[0]].title} − {ARMS[gap[1]].title}"
        rows[(name, f"paired mean ({len(shared)} seeds)")] = (a.loc[shared] - b.loc[shared]).mean()
    table = pd.DataFrame(rows).T
    order = [c for k in METRIC_KEYS for c in (k, f"{k} (yours)") if c in table.columns]
    titles = {k: HEADERS[k] for k in METRIC_KEYS} | {f"{k} (yours)": f"{HEADERS[k]} (yours)" for k in yours}
    table = table[order].rename(columns=titles).astype(float)
    table.index.names = ["model", "seed"]
    return table


def label_use(outputs: Mapping[str, Mapping[int, Outputs]], threshold: float = 0.5) -> pd.DataFrame:
    """Per emotion: the share of test faces that carry it and, per arm, the share predicted at `threshold` and the F1,
    each a mean over the arm's seeds (arm -> seed -> outputs; each seed's own test faces)."""
    every = [o for runs in outputs.values() for o in runs.values()]
    table = {("true", "share of faces"): np.mean([np.asarray(o["labels"]).mean(0) for o in every], 0)}
    for arm, runs in outputs.items():
        reports = {s: per_label_report(o["labels"], o["fused_probs"], threshold) for s, o in runs.items()}
        share = [r["predicted"].to_numpy() / len(runs[s]["labels"]) for s, r in reports.items()]
        table[(ARMS[arm].title, "share predicted")] = np.mean(share, 0)
        table[(ARMS[arm].title, "F1")] = np.mean([r["f1"].to_numpy() for r in reports.values()], 0)
    return pd.DataFrame(table, index=pd.Index(EMOTION_TITLES, name="emotion"))


def plot_label_use(use: pd.DataFrame, title: str = "") -> plt.Figure:
    """`label_use` as two panels: each emotion's share of faces, true and predicted per model; its F1 per model."""
    models = [m for m in use.columns.get_level_values(0).unique() if m != "true"]
    colour = {ARMS[a].title: MODEL_COLOURS.get(ARMS[a].model) for a in ARMS if ARMS[a].title in models}
    x = np.arange(len(use))
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.4))
    width = 0.8 / (len(models) + 1)
    axes[0].bar(x - 0.4 + width / 2, use[("true", "share of faces")], width, color="black", label="true")
    for k, m in enumerate(models, start=1):
        axes[0].bar(
            x - 0.4 + (k + 0.5) * width, use[(m, "share predicted")], width, color=colour[m], label=f"{m}, predicted"
        )
    width = 0.8 / len(models)
    for k, m in enumerate(models):
        axes[1].bar(x - 0.4 + (k + 0.5) * width, use[(m, "F1")], width, color=colour[m], label=m)
    axes[0].set_title("share of test faces with the emotion: true and predicted at 0.5 (mean over seeds)", fontsize=9)
    axes[1].set_title("F1 per emotion at 0.5 (mean over seeds); macro-F1 is their mean", fontsize=9)
    axes[1].set_ylim(0, 1)
    for ax in axes:
        ax.set_xticks(x, use.index)
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def fusion_on_val(dataset: str, threshold_only: bool = False, **where: str) -> SeedFusion:
    """`val_fusion.fusion_by_seed` on a committed study's MF-JLE and ResNet-18 runs: every seed both have."""
    val, test = (
        {arm: run_outputs(dataset, arm, part=part, **where) for arm in ("mfjle", "resnet18")}
        for part in ("val", "test")
    )
    return fusion_by_seed(val["mfjle"], test["mfjle"], val["resnet18"], test["resnet18"], threshold_only=threshold_only)


def rerun_command(study: dict[str, Any]) -> str:
    """The command that made the study (ROOT = your copy of the dataset)."""
    return study.get("study_command") or f"python -m mfjle_lib study --dataset {study.get('dataset')} --root ROOT"


def against_paper(study: dict[str, Any], row: str) -> pd.DataFrame:
    """One study row against the paper's MF-JLE row, metric by metric: ours, paper, ours − paper signed so + is better."""
    paper = next(v for k, v in study["paper"].items() if k.startswith("MF-JLE"))
    ours = study["rows"][row]["metrics"]
    out = {}
    for k in METRIC_KEYS:
        better = (paper[k] - ours[k]["mean"]) if LOWER_IS_BETTER[k] else (ours[k]["mean"] - paper[k])
        out[HEADERS[k]] = {
            "ours": f"{ours[k]['mean']:.3f} ± {ours[k]['std']:.3f}",
            "paper MF-JLE": f"{paper[k]:.3f}",
            "better by": f"{better:+.3f}",
        }
    return pd.DataFrame(out).T


def twin_outputs(
    dataset: str = "jaffe", split: str = "paper", start: str = "started", part: str = "test", same_epoch: bool = False
) -> dict[int, tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]:
    """Seed -> (ResNet-18, MF-JLE) saved outputs of one split and start (`run_outputs`), for every seed both models have
    finished (twins: the same faces in the same order); with `same_epoch`, only twins whose runs selected the same
    epoch, so that MF-JLE's global module is its twin's network and every difference is the locals' vote."""
    base, mfjle = (run_outputs(dataset, model, split, start, part) for model in ("resnet18", "mfjle"))

    def epoch(model: str, seed: int) -> Any:
        path = study_dir(dataset) / f"{split}_{model}_{start}_seed{seed}" / "metrics.json"
        return json.loads(path.read_text()).get("selected_epoch")

    twins = {}
    for seed in sorted(set(base) & set(mfjle)):
        if same_epoch and epoch("resnet18", seed) != epoch("mfjle", seed):
            continue
        if list(base[seed]["ids"]) != list(mfjle[seed]["ids"]):
            raise ConfigError(f"{dataset}, {split}, {start}, seed {seed}: the twins were tested on different faces")
        twins[seed] = (base[seed], mfjle[seed])
    return twins
