"""Fusion weights and threshold chosen on the validation split (`--fusion-weights val`).

The paper fixes the fusion at (1, λ…λ) = (1, 0.01 × 5): the fused output is 95 % the global
module, and the threshold is 0.5. Here both are chosen on validation outputs only, by one
documented objective, and never on the test split: `choose_fusion` takes the validation arrays
and nothing else, so it cannot read the test split.

Objective: validation micro-F1 (the paper's selection metric, `score >= threshold`, zero when
nothing is predicted). Search: weights in the paper's family (1, λ, λ, λ, λ, λ) with λ in
`LAMBDA_GRID` (plus the run's own λ), thresholds in `THRESHOLD_GRID`. Ties (micro-F1 equal to
1e-12): the λ whose global share w0/Σw is closest to the paper's, then the threshold closest to
0.5, so with no signal either way the paper's fusion is kept. A single-module model (ResNet-18)
gets its threshold chosen only. Pure: numpy in, numbers out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..method.fusion import paper_fusion_weights
from ..method.metrics import multilabel_report
from .outputs import fuse_saved

OBJECTIVE = "validation micro-F1"
LAMBDA_GRID = (0.0, 0.01, 0.03, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0)
THRESHOLD_GRID = tuple(round(0.05 * k, 2) for k in range(1, 20))  # 0.05 .. 0.95


@dataclass(frozen=True)
class FusionChoice:
    """What was chosen on validation, with the objective's value there and the paper fusion's."""

    weights: tuple[float, ...]
    threshold: float
    objective: str
    value: float  # objective at the choice (validation)
    paper_weights: tuple[float, ...]
    paper_value: float  # objective of the paper's fusion at threshold 0.5 (validation)
    n_val: int
    searched: int = 0
    grid: dict = field(default_factory=dict, compare=False)

    def record(self) -> dict:
        """Plain-type record for metrics files and JSON output."""
        return {
            "fusion_weights": list(self.weights),
            "threshold": self.threshold,
            "objective": self.objective,
            "value": self.value,
            "paper_fusion_weights": list(self.paper_weights),
            "paper_value": self.paper_value,
            "n_val": self.n_val,
            "searched": self.searched,
        }


def micro_f1_at(labels: np.ndarray, probs: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """Micro-F1 of `probs >= t` for each t (2TP / (2TP + FP + FN), 0 when that is 0/0)."""
    y = np.asarray(labels) > 0.5
    p = np.asarray(probs, np.float64)
    out = np.empty(len(thresholds))
    for i, t in enumerate(thresholds):
        pred = p >= t
        tp = np.count_nonzero(pred & y)
        denom = 2 * tp + np.count_nonzero(pred & ~y) + np.count_nonzero(~pred & y)
        out[i] = 2 * tp / denom if denom else 0.0
    return out


def _share(weights: Sequence[float]) -> float:
    """The global module's share w0 / Σw of the fused output."""
    return float(weights[0]) / float(sum(weights))


def choose_fusion(
    val_module_probs: np.ndarray,
    val_labels: np.ndarray,
    paper_weights: Sequence[float],
    lambdas: Sequence[float] = LAMBDA_GRID,
    thresholds: Sequence[float] = THRESHOLD_GRID,
) -> FusionChoice:
    """Weights and threshold that maximise validation micro-F1 (ties: closest to the paper's, then to 0.5).

    `val_module_probs` (N, M, L) and `val_labels` (N, L) are the validation split's, e.g. from a
    run's `val_outputs.npz`. Nothing else is an input: the test split cannot influence the choice.
    """
    probs = np.asarray(val_module_probs, np.float64)
    labels = np.asarray(val_labels)
    if probs.ndim != 3 or labels.shape != (probs.shape[0], probs.shape[2]):
        raise ValueError(
            f"expected (N, M, L) module probabilities and (N, L) labels, got {probs.shape} and {labels.shape}"
        )
    if probs.shape[0] == 0:
        raise ValueError("no validation outputs to choose a fusion on")
    m = probs.shape[1]
    paper = tuple(float(w) for w in paper_weights)[:m]
    if m == 1:
        candidates = [(1.0,)]
    else:
        own = sorted({*lambdas, *paper[1:]}) if len(set(paper[1:])) == 1 else list(lambdas)
        candidates = [paper_fusion_weights(lam) for lam in own]
        if paper not in candidates:
            candidates.append(paper)
    target = _share(paper)
    best, best_key, grid = None, None, {}
    for w in candidates:
        scores = micro_f1_at(labels, fuse_saved(probs, w), thresholds)
        for t, s in zip(thresholds, scores):
            grid[(w, float(t))] = float(s)
            key = (round(float(s), 12), -abs(_share(w) - target), -abs(float(t) - 0.5))
            if best_key is None or key > best_key:
                best, best_key = (w, float(t), float(s)), key
    paper_value = float(micro_f1_at(labels, fuse_saved(probs, paper), [0.5])[0])
    return FusionChoice(best[0], best[1], OBJECTIVE, best[2], paper, paper_value, int(probs.shape[0]), len(grid), grid)


def report_val_fusion(val_outputs, test_outputs, paper_weights: Sequence[float]) -> tuple[FusionChoice, dict]:
    """Choose on `val_outputs` alone, then re-fuse `test_outputs` with the choice: (choice, nine test metrics).

    Both are saved outputs (`module_probs`, `labels`, ...); only the validation arrays reach the chooser.
    """
    choice = choose_fusion(val_outputs["module_probs"], val_outputs["labels"], paper_weights)
    test = multilabel_report(
        test_outputs["labels"], fuse_saved(test_outputs["module_probs"], choice.weights), choice.threshold
    )
    return choice, {
        **test,
        "fusion_weights": list(choice.weights),
        "threshold": choice.threshold,
        "fusion_choice": choice.record(),
    }
