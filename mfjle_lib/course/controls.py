"""The controls that split MF-JLE's gain over one ResNet-18 into ensembling, locality and resolution, at two rules.

The arms (`models/arms.py`), trained with the same seeds (one seed = the same split, batches and
starting global net): ResNet-18; six ResNet-18s on the whole face at S_g (ensembling, no
locality); MF-JLE with crops at the global's pixel density (locality, no extra resolution);
MF-JLE; and one ResNet-18 that sees the whole face at the locals' pixel density (resolution
without locality or ensembling). Each step of the split changes one thing, so the paired
differences add up to MF-JLE − ResNet-18.

Every arm is read at two rules: the paper's (its own fusion weights, threshold 0.5) and at
equal care (fusion weights and threshold chosen on its own validation outputs; a single net gets
its threshold chosen the same way), so a gain that only one side's tuning made is not counted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..evaluation.fusion_choice import report_val_fusion
from ..evaluation.outputs import load_outputs
from ..evaluation.reports import HEADERS
from ..evaluation.study_table import mean_std_text
from ..method.fusion import paper_fusion_weights
from ..models.arms import ARMS, EXTRA_STEPS, GAIN_STEPS, arm_settings
from ..models.registry import model_spec
from .ablations import train_seeds

#: The arms lesson 05 trains, in the order of the split, then the full-resolution ResNet-18.
CONTROL_ARMS = ("resnet18", "wholeface", "mfjle_lowres", "mfjle", "resnet18_full")
TOTAL = "total (MF-JLE − ResNet-18)"
#: MF-JLE − ResNet-18 over every seed both have, shown beside the split when the controls have fewer seeds.
TOTAL_ALL_SEEDS = "MF-JLE − ResNet-18, all its seeds"
#: The two readings of every arm: the paper's rule, and fusion + threshold chosen on validation.
RULES = {"paper": "the paper's rule (own fusion, t = 0.5)", "val": "equal care (fusion + t chosen on val)"}


def control_overrides(geometry: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Arm title -> its training settings beside the lesson's geometry (R, S_g, S_l, c)."""
    return {ARMS[a].title: arm_settings(a, geometry) for a in CONTROL_ARMS}


def train_controls(params: Any, data: Any, show_progress: bool = True) -> dict[str, list[Any]]:
    """Every arm over the lesson's seeds (`course.train_cached`: finished or released runs are reused)."""
    return {
        arm: train_seeds(params, data, show_progress=show_progress, **over)
        for arm, over in control_overrides(params.config().geometry()).items()
    }


def val_chosen(runs: Sequence[Any]) -> list[dict[str, Any]]:
    """Each run's test metrics with fusion weights and threshold chosen on its own validation outputs (never test)."""
    out = []
    for run in runs:
        val, test = (load_outputs(Path(run.out_dir) / f"{split}_outputs.npz") for split in ("val", "test"))
        choice, metrics = report_val_fusion(val, test, paper_fusion_weights()[: val["module_probs"].shape[1]])
        out.append({**metrics, "chosen_weights": choice.weights, "chosen_threshold": choice.threshold})
    return out


def rule_metrics(runs: Sequence[Any], rule: str) -> list[Mapping[str, Any]]:
    """Each run's test metrics at `rule`: its own ('paper'), or with fusion and threshold chosen on validation ('val')."""
    return [r.metrics for r in runs] if rule == "paper" else val_chosen(runs)


def arm_values(results: Mapping[str, Sequence[Any]], metric: str = "micro_f1", rule: str = "paper") -> pd.DataFrame:
    """Seeds (rows) × arms (columns): `metric` on test at `rule` ('paper' or 'val')."""
    cols = {arm: [m[metric] for m in rule_metrics(runs, rule)] for arm, runs in results.items()}
    return pd.DataFrame(cols, index=pd.Index([r.config.seed for r in next(iter(results.values()))], name="seed"))


def arm_table(
    results: Mapping[str, Sequence[Any]],
    metrics: Sequence[str] = ("micro_f1", "average_precision"),
    titles: bool = False,
) -> pd.DataFrame:
    """One row per arm: S_g, S_l, then mean and std over seeds of each metric at both rules (test split); the std of
    one seed is NaN (a spread of one value is undefined). Columns 'micro_f1 (paper)', 'micro_f1 (paper) std', …; with
    `titles`, as a reader reads them: 'Micro-F1 ↑, paper's rule', 'Micro-F1 ↑, paper's rule, std', …."""
    rule_titles = {"paper": "paper's rule", "val": "equal care"}
    rows: dict[str, dict[str, Any]] = {}
    for arm, runs in results.items():
        cfg = runs[0].config
        row = {
            "S_g": cfg.global_size,
            "S_l": cfg.local_size if model_spec(cfg.model).has_locals else None,
            "seeds": len(runs),
        }
        for rule in RULES:
            read = rule_metrics(runs, rule)  # once per arm and rule: the validation choice is a grid search
            for key in metrics:
                v = np.array([m[key] for m in read], float)
                name = f"{HEADERS[key]}, {rule_titles[rule]}" if titles else f"{key} ({rule})"
                row[name] = v.mean()
                row[f"{name}, std" if titles else f"{name} std"] = v.std(ddof=1) if len(v) > 1 else np.nan
        rows[arm] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def gain_parts(results: Mapping[str, Sequence[Any]], metric: str = "micro_f1", rule: str = "paper") -> pd.DataFrame:
    """Per seed (rows), the paired differences between consecutive arms (columns), the total, and the full-resolution steps."""
    return parts_of(arm_values(results, metric, rule))


def parts_of(values: pd.DataFrame) -> pd.DataFrame:
    """`gain_parts` from a seeds × arm-titles table; a step whose two arms are not both there is left out, a seed
    missing one of its arms is NaN (a study whose grid is still training)."""
    title = {a: ARMS[a].title for a in ARMS}
    steps = [*GAIN_STEPS, ("resnet18", "mfjle", TOTAL), *EXTRA_STEPS]
    parts = {part: values[title[b]] - values[title[a]] for a, b, part in steps if {title[a], title[b]} <= set(values)}
    return pd.DataFrame(parts)


def gain_split(results: Mapping[str, Sequence[Any]], metric: str = "micro_f1", rule: str = "paper") -> pd.DataFrame:
    """Paired (same seed) differences: one row per part of the gain, the total, the full-resolution steps; mean, std, sign count."""
    return summarise_parts(gain_parts(results, metric, rule))


def part_values(parts: pd.DataFrame, part: str) -> pd.Series:
    """The per-seed values `summarise_parts` summarises for `part`: the split's three parts and its total on the seeds
    all four arms share (so they add up), `TOTAL_ALL_SEEDS` on every seed with a total, any other step on its own."""
    split = [step for _, _, step in GAIN_STEPS] + [TOTAL]
    if part == TOTAL_ALL_SEEDS:
        return parts[TOTAL].dropna()
    if part in split and set(split) <= set(parts):
        return parts[split].dropna()[part]
    return parts[part].dropna()


def summarise_parts(parts: pd.DataFrame) -> pd.DataFrame:
    """Mean, std, n and 'k/n seeds above 0' of each column of `gain_parts`; the std of one seed is NaN (a spread of one
    value is undefined). The three parts of the split and its total are summarised over the seeds all four arms share,
    so the parts add up to the total shown beside them; where MF-JLE − ResNet-18 has more seeds than that, it is shown
    over all of them too (`TOTAL_ALL_SEEDS`). Every other step: over the seeds that have both its arms (`part_values`)."""
    names = list(parts.columns)
    if TOTAL in parts and len(part_values(parts, TOTAL_ALL_SEEDS)) > len(part_values(parts, TOTAL)):
        names.insert(names.index(TOTAL) + 1, TOTAL_ALL_SEEDS)
    rows = {}
    for part in names:
        v = part_values(parts, part)
        rows[part] = {
            "mean": v.mean(),
            "std": v.std(ddof=1) if len(v) > 1 else np.nan,
            "n": len(v),
            "seeds above 0": f"{int((v > 0).sum())}/{len(v)}",
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def part_text(row: Mapping[str, Any]) -> str:
    """One step of the split: '+0.035 ± 0.006 (3/3 seeds above 0)'; on one seed '+0.036 (n = 1)', no spread."""
    counted = "n = 1" if row["n"] < 2 else f"{row['seeds above 0']} seeds above 0"
    return f"{mean_std_text(row['mean'], row['std'], row['n'], signed=True)} ({counted})"


def fusion_gain_table(base: Sequence[Any], mf: Sequence[Any]) -> pd.DataFrame:
    """Micro-F1 (test) per seed of ResNet-18 and MF-JLE, at the paper's fusion and threshold and chosen on validation."""
    base_val, mf_val = val_chosen(base), val_chosen(mf)
    return pd.DataFrame(
        {
            "ResNet-18, t = 0.5": [r.metrics["micro_f1"] for r in base],
            "ResNet-18, t chosen on val": [m["micro_f1"] for m in base_val],
            "MF-JLE, paper fusion, t = 0.5": [r.metrics["micro_f1"] for r in mf],
            "MF-JLE, fusion + t chosen on val": [m["micro_f1"] for m in mf_val],
            "MF-JLE chosen local weight": [m["chosen_weights"][1] for m in mf_val],
            "MF-JLE chosen threshold": [m["chosen_threshold"] for m in mf_val],
        },
        index=pd.Index([r.config.seed for r in mf], name="seed"),
    )


def split_sentence(split: pd.DataFrame, rule: str) -> str:
    """The split as one sentence: 'MF-JLE − ResNet-18 = ensembling +x ± s + locality … = total', on the seeds the
    parts share (`summarise_parts`), then every other step; one seed reads 'n = 1', not a spread."""

    def cell(part: str) -> str:
        return part_text(split.loc[part])

    parts = [part for _, _, part in GAIN_STEPS if part in split.index]
    whole = len(parts) == len(GAIN_STEPS) and TOTAL in split.index
    if whole and len({split.loc[p, "n"] for p in [*parts, TOTAL]}) == 1:
        # the whole split on the same seeds: its parts add up to the total
        text = f"At {RULES[rule]}: MF-JLE − ResNet-18 = " + " + ".join(f"{p} {cell(p)}" for p in parts)
        text += f" = {cell(TOTAL)}"
        shown = [*parts, TOTAL]
    else:  # a grid still training: each step that both its arms have reached, on its own
        text, shown = f"At {RULES[rule]}", []
    rest = [part for part in split.index if part not in shown]
    if rest:
        text += ("; " if shown else ": ") + "; ".join(f"{part}: {cell(part)}" for part in rest)
    return text + "."
