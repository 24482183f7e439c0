"""Reports beside the nine numbers: each label on its own, every threshold, and softmax outputs under two decision
rules."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..constants import EMOTION_TITLES
from ..method.metrics import check_scores, f1_scores, multilabel_metrics, per_label_auc

__all__ = ["decision_rules_softmax", "per_label_report", "reliability_table", "threshold_sweep"]


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den per label, 0 where den is 0 (a label never predicted has precision 0)."""
    den = den.astype(np.float64)
    return np.divide(num, den, out=np.zeros_like(den), where=den > 0)


def per_label_report(
    y_true: np.ndarray,
    y_score: np.ndarray,
    threshold: float = 0.5,
    names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per-label support, predicted positives, precision, recall, F1 and AUC (NaN if single-class).

    ``names`` defaults to ``EMOTION_TITLES`` for six labels and ``label_0..`` otherwise.
    """
    yt, ys = check_scores(y_true, y_score, threshold)
    n_labels = yt.shape[1]
    if names is None:
        names = EMOTION_TITLES if n_labels == len(EMOTION_TITLES) else [f"label_{j}" for j in range(n_labels)]
    names = list(names)
    if len(names) != n_labels:
        raise ValueError(f"got {len(names)} names for {n_labels} labels")
    pred = (ys >= threshold).astype(np.int8)
    tp = ((yt == 1) & (pred == 1)).sum(axis=0)
    return pd.DataFrame(
        {
            "support": yt.sum(axis=0).astype(int),
            "predicted": pred.sum(axis=0).astype(int),
            "precision": _ratio(tp, pred.sum(axis=0)),
            "recall": _ratio(tp, yt.sum(axis=0)),
            "f1": f1_scores(yt, pred),
            "auc": per_label_auc(yt, ys),
        },
        index=pd.Index(names, name="label"),
    )


def decision_rules_softmax(y_true: np.ndarray, probs: np.ndarray, atol: float = 1e-3) -> dict[str, dict[str, float]]:
    """Metrics of softmax-CE outputs under 'p >= 0.5' (at most one label) and 'p >= 1/L' (docs/DESIGN.md §2).

    The keys are ``"p>=0.5"`` and ``"p>=1/6"`` (``"p>=1/L"`` for L labels). Rows of ``probs`` must
    sum to 1 within ``atol``: sigmoid outputs passed here by mistake raise ValueError.
    """
    yt, ps = check_scores(y_true, probs)
    if ps.min() < -atol or ps.max() > 1 + atol:
        raise ValueError("probs must lie in [0, 1] (softmax outputs, not logits)")
    sums = ps.sum(axis=1)
    if not np.allclose(sums, 1.0, atol=atol):
        worst = float(np.max(np.abs(sums - 1.0)))
        raise ValueError(f"softmax probabilities must sum to 1 per row; worst row is off by {worst:.3g}")
    n_labels = yt.shape[1]
    # 1/L in float64; a float32 uniform softmax (1/6 rounds up in float32) still counts as positive.
    return {
        "p>=0.5": multilabel_metrics(yt, ps, threshold=0.5),
        f"p>=1/{n_labels}": multilabel_metrics(yt, ps, threshold=1.0 / n_labels),
    }


def threshold_sweep(y_true: np.ndarray, y_score: np.ndarray, thresholds: Sequence[float]) -> pd.DataFrame:
    """Hamming loss, micro/macro F1 and mean predicted labels per sample for each threshold (Eqs. 3, 10)."""
    yt, ys = check_scores(y_true, y_score)
    rows = []
    for t in thresholds:
        t = float(t)
        if not np.isfinite(t):
            raise ValueError(f"thresholds must be finite; got {t}")
        pred = (ys >= t).astype(np.int8)
        rows.append(
            {
                "threshold": t,
                "hamming_loss": float(np.mean(pred != yt)),
                "micro_f1": float(f1_scores(yt, pred, axis=None)),
                "macro_f1": float(np.mean(f1_scores(yt, pred))),
                "mean_predicted_labels": float(pred.sum(axis=1).mean()),
            }
        )
    cols = ["threshold", "hamming_loss", "micro_f1", "macro_f1", "mean_predicted_labels"]
    return pd.DataFrame(rows, columns=cols).set_index("threshold")


#: Probability bins of a reliability reading (lesson 07): edges between 0 and 1.
RELIABILITY_EDGES = (0.1, 0.3, 0.5, 0.7, 0.9)


def reliability_table(
    y_true: np.ndarray, y_score: np.ndarray, edges: Sequence[float] = RELIABILITY_EDGES
) -> pd.DataFrame:
    """Every (face, emotion) pair binned by its probability: pairs per bin, their mean probability, and how often the
    emotion is really present (a calibrated model has the last two equal); an empty bin is NaN."""
    yt, ys = check_scores(y_true, y_score)
    edges = [float(e) for e in edges]
    bins = np.digitize(ys, edges)  # bin k holds [edges[k-1], edges[k])
    bounds = [0.0, *edges, 1.0]
    rows = {}
    for k in range(len(bounds) - 1):
        inside = bins == k
        rows[f"{bounds[k]:.1f}–{bounds[k + 1]:.1f}"] = {
            "pairs": int(inside.sum()),
            "mean probability": float(ys[inside].mean()) if inside.any() else np.nan,
            "share really present": float(yt[inside].mean()) if inside.any() else np.nan,
        }
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "probability bin"
    return frame
