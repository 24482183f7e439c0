"""Lesson 08: fusion weights and threshold chosen on validation, seed by seed, the baseline given the same care.

For every seed both models have: MF-JLE's saved module probabilities re-fused with the paper's weights at 0.5, and
with weights and threshold chosen on its validation outputs alone (`evaluation.report_val_fusion`, docs/DESIGN.md
§2.5); the baseline at 0.5 and with its threshold chosen the same way (equal care). With `threshold_only`, one
control more: MF-JLE with the paper's weights and only its threshold chosen, which separates the threshold's part of
a gain (open to any model) from the fusion weights' part (MF-JLE's own). The test split is only ever reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..evaluation.fusion_choice import FusionChoice, choose_fusion, report_val_fusion
from ..evaluation.outputs import Outputs, fused_metrics
from ..evaluation.reports import HEADERS, summarise_runs, t_interval
from ..evaluation.study_table import interval_text
from ..method.fusion import paper_fusion_weights

#: The readings (key -> the name tables show), in the order they are shown.
READINGS = {
    "base": "ResNet-18, t = 0.5",
    "base_chosen": "ResNet-18, t chosen on val",
    "paper": "MF-JLE, paper fusion, t = 0.5",
    "threshold": "MF-JLE, paper weights, t chosen on val",
    "chosen": "MF-JLE, fusion + t chosen on val",
}

#: Paired gaps (name, reading a, reading b: a − b); the last two need the threshold-only control.
GAPS = (
    ("MF-JLE: fusion + t on val − paper fusion", "chosen", "paper"),
    ("ResNet-18: t on val − t 0.5", "base_chosen", "base"),
    ("MF-JLE − ResNet-18, both at the paper's rule", "paper", "base"),
    ("MF-JLE − ResNet-18, both chosen on val (equal care)", "chosen", "base_chosen"),
    ("threshold's part: MF-JLE paper weights, t on val − ResNet-18 t on val", "threshold", "base_chosen"),
    ("weights' part: MF-JLE fusion + t on val − t on val only", "chosen", "threshold"),
)


@dataclass(frozen=True)
class SeedFusion:
    """What `fusion_by_seed` found: a row per seed, MF-JLE's choices, and every reading's nine test metrics."""

    per_seed: pd.DataFrame  # index: seed; the choices and the test micro-F1 of every reading
    choices: dict[int, FusionChoice]  # MF-JLE's choice per seed (its validation grid inside)
    readings: dict[str, dict[int, dict[str, Any]]]  # reading key -> seed -> nine test metrics

    def summary(self) -> dict[str, dict[str, tuple[float, float]]]:
        """Mean ± std over seeds of each reading's nine test metrics, named for `evaluation.styled`."""
        return {
            f"{READINGS[key]} ({len(runs)} seeds)": summarise_runs(list(runs.values()))
            for key, runs in self.readings.items()
        }

    def gaps(self, metric: str = "micro_f1") -> pd.DataFrame:
        """Paired gaps in one test metric, seed by seed, with mean ± std and the 95 % t-interval of the mean."""
        rows = {}
        for name, a, b in GAPS:
            if a not in self.readings or b not in self.readings:
                continue
            per = {s: self.readings[a][s][metric] - self.readings[b][s][metric] for s in self.readings[a]}
            values = list(per.values())
            row: dict[str, Any] = {f"seed {s}": round(v, 3) + 0.0 for s, v in per.items()}  # no -0.000
            std = pd.Series(values).std(ddof=1) if len(values) > 1 else 0.0
            row["mean ± std"] = f"{round(sum(values) / len(values), 3) + 0.0:+.3f} ± {std:.3f}"
            row["95 % interval"] = interval_text(*t_interval(values), signed=True)
            rows[name] = row
        frame = pd.DataFrame.from_dict(rows, orient="index")
        frame.index.name = f"paired test gap in {HEADERS[metric]}"
        return frame


def fusion_by_seed(
    mfjle_val: Mapping[int, Outputs],
    mfjle_test: Mapping[int, Outputs],
    base_val: Mapping[int, Outputs],
    base_test: Mapping[int, Outputs],
    paper_weights: Sequence[float] = paper_fusion_weights(),
    threshold_only: bool = False,
) -> SeedFusion:
    """MF-JLE and its baseline (saved outputs by seed), each reading chosen on validation and reported on test.

    Only the seeds all four mappings hold are paired. The paper's reading re-fuses MF-JLE's module
    probabilities with `paper_weights` at 0.5; the chosen readings pass the validation arrays alone to
    `evaluation.choose_fusion`.
    """
    seeds = sorted(set(mfjle_val) & set(mfjle_test) & set(base_val) & set(base_test))
    if not seeds:
        raise ValueError("no seed has validation and test outputs of both models")
    readings: dict[str, dict[int, dict[str, Any]]] = {key: {} for key in READINGS}
    if not threshold_only:
        del readings["threshold"]
    choices, rows = {}, []
    for s in seeds:
        base_choice, readings["base_chosen"][s] = report_val_fusion(base_val[s], base_test[s], (1.0,))
        choice, readings["chosen"][s] = report_val_fusion(mfjle_val[s], mfjle_test[s], paper_weights)
        readings["paper"][s] = fused_metrics(mfjle_test[s], paper_weights)
        readings["base"][s] = fused_metrics(base_test[s], (1.0,))
        choices[s] = choice
        row = {
            "seed": s,
            "MF-JLE local weight": choice.weights[1],
            "MF-JLE threshold": choice.threshold,
            "ResNet-18 threshold": base_choice.threshold,
            "val micro-F1, paper fusion": choice.paper_value,
            "val micro-F1, chosen": choice.value,
            "test micro-F1, paper fusion": readings["paper"][s]["micro_f1"],
            "test micro-F1, chosen": readings["chosen"][s]["micro_f1"],
            "test micro-F1, ResNet-18 t = 0.5": readings["base"][s]["micro_f1"],
            "test micro-F1, ResNet-18 chosen t": readings["base_chosen"][s]["micro_f1"],
        }
        if threshold_only:
            t_choice, readings["threshold"][s] = _threshold_only(mfjle_val[s], mfjle_test[s], paper_weights)
            row["MF-JLE threshold, paper weights"] = t_choice.threshold
            row["test micro-F1, paper weights + chosen t"] = readings["threshold"][s]["micro_f1"]
        rows.append(row)
    return SeedFusion(pd.DataFrame(rows).set_index("seed"), choices, readings)


def _threshold_only(val: Outputs, test: Outputs, paper_weights: Sequence[float]) -> tuple[FusionChoice, dict]:
    """The threshold alone chosen on validation, the paper's weights kept: (choice, nine test metrics)."""
    choice = choose_fusion(val["module_probs"], val["labels"], paper_weights, lambdas=(float(paper_weights[1]),))
    return choice, fused_metrics(test, choice.weights, choice.threshold)
