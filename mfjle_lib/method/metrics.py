"""The nine multi-label metrics of paper Section IV.B (Eqs. 3-10), in Zhang & Zhou's toolbox convention.

Conventions (docs/DESIGN.md §2 "Evaluation"); they matter on small or label-sparse sets such as JAFFE:

* ``y_true`` is an (N, L) 0/1 matrix, ``y_score`` an (N, L) matrix of real scores (probabilities
  or logits), any L >= 2. Scores are cast to float64 before ranking. Pass float64 probabilities or
  raw logits: float32 sigmoids saturate into exact ties (``float32(sigmoid(17)) == 1.0``), and
  ties make the ranking metrics pessimistic.
* ``rank_f(x, y)`` (Eqs. 5, 8, 9) is the number of labels whose score is >= the score of ``y``:
  the best label has rank 1, and tied labels all take the worst rank of their group (the same as
  scikit-learn's ``coverage_error`` and ``label_ranking_average_precision_score``).
* Coverage (Eq. 5) is averaged over ALL samples: ``max_{y in Y_i} rank_f(x_i, y) - 1``, where the
  max over an empty label set is 0, so a sample with no label counts -1. This is
  ``sklearn.metrics.coverage_error(...) - 1`` and the toolbox's ``coverage.m``.
* One-error, ranking loss and average precision (Eqs. 4, 6-9) are averaged over the samples that
  have at least one label and not all labels (the toolbox drops the others; scikit-learn would
  score them as perfect). The number left out is reported by :func:`multilabel_report`; if no
  sample is left, these three are NaN.
* One-error (Eq. 4) looks at the first index of the maximum score (MATLAB's ``max``, as in the
  toolbox's ``One_error.m``): among tied top labels the lowest label index is taken.
* Ranking loss (Eqs. 6-7) counts a tied (relevant, irrelevant) pair as mis-ordered (Eq. 7's <=).
* Hamming loss (Eq. 3, normalised by the number of labels) and micro/macro F1 (Eq. 10) are over
  all samples with the prediction ``score >= threshold``; F1 uses ``zero_division=0`` (a label
  that is never true nor predicted scores F1 = 0 in the macro mean).
* Micro AUC is the ROC AUC of the flattened matrix; macro AUC is the unweighted mean over the
  labels that have both classes (single-class labels are skipped; NaN if none has both).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import (
    f1_score,
    label_ranking_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from ..constants import EMOTION_TITLES, METRIC_KEYS

__all__ = [
    "coverage",
    "decision_rules_softmax",
    "multilabel_metrics",
    "multilabel_report",
    "one_error",
    "per_label_report",
    "ranking_mask",
    "threshold_sweep",
]


def _validate(y_true: object, y_score: object, threshold: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Check shapes, finiteness and 0/1 labels; return (int8 labels, float64 scores) or raise ValueError."""
    yt = np.asarray(y_true)
    ys = np.asarray(y_score)
    if yt.ndim != 2 or ys.ndim != 2:
        raise ValueError(
            f"y_true and y_score must be 2-D (n_samples, n_labels); got shapes {yt.shape} and {ys.shape}"
        )
    if yt.shape != ys.shape:
        raise ValueError(f"y_true and y_score must have the same shape; got {yt.shape} and {ys.shape}")
    n, n_labels = yt.shape
    if n < 1:
        raise ValueError("need at least one sample (y_true has 0 rows)")
    if n_labels < 2:
        raise ValueError(f"need at least 2 labels for multi-label metrics; got {n_labels}")
    if not (np.issubdtype(ys.dtype, np.number) or ys.dtype == bool):
        raise ValueError(f"y_score must be numeric; got dtype {ys.dtype}")
    # Rank in float64. This cannot undo ties that float32 sigmoids already made (module docstring),
    # but it adds none of its own.
    ys = ys.astype(np.float64)
    if not np.all(np.isfinite(ys)):
        bad = int(np.size(ys) - np.count_nonzero(np.isfinite(ys)))
        raise ValueError(f"y_score has {bad} non-finite value(s) (NaN or inf)")
    if not (np.issubdtype(yt.dtype, np.number) or yt.dtype == bool):
        raise ValueError(f"y_true must be a 0/1 matrix; got dtype {yt.dtype}")
    if not np.all((yt == 0) | (yt == 1)):
        vals = np.unique(yt[(yt != 0) & (yt != 1)])[:5]
        raise ValueError(f"y_true must contain only 0 and 1; found e.g. {vals.tolist()}")
    if threshold is not None and not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number; got {threshold}")
    return yt.astype(np.int8), ys


def ranking_mask(y_true: np.ndarray) -> np.ndarray:
    """Boolean mask of samples with at least one label and not all labels (the toolbox's ranking subset)."""
    k = np.asarray(y_true).sum(axis=1)
    return (k > 0) & (k < np.asarray(y_true).shape[1])


def _ranks(y_score: np.ndarray) -> np.ndarray:
    """rank_f(x, y) of Eqs. 5 and 8: how many labels score >= this label (ties take the worst rank)."""
    # (N, L, L) comparison; L is 6 in this project, so memory stays at N*36 booleans.
    return (y_score[:, None, :] >= y_score[:, :, None]).sum(axis=2)


def _average_precision(yt: np.ndarray, ys: np.ndarray) -> float:
    """Eqs. 8-9 over ranking-subset rows: mean over relevant labels of |relevant ranked at or above| / rank.

    The same number as scikit-learn's `label_ranking_average_precision_score` (ties take the worst
    rank there too; tests/test_metrics.py compares them), computed for all rows at once: sklearn
    ranks row by row in Python, the slowest part of `evaluate` on 1,200 faces x 7 outputs.
    """
    ranks = _ranks(ys)  # (N, L): labels scoring >= each label
    at_or_above = ys[:, None, :] >= ys[:, :, None]  # [i, j, k]: label k scores >= label j
    relevant_above = (at_or_above & (yt[:, None, :] == 1)).sum(axis=2)
    precision = np.where(yt == 1, relevant_above / ranks, 0.0)
    return float(np.mean(precision.sum(axis=1) / yt.sum(axis=1)))


def coverage(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Coverage, Eq. 5: mean over ALL samples of (max rank of a relevant label) - 1; no label counts -1."""
    yt, ys = _validate(y_true, y_score)
    ranks = _ranks(ys)
    # The max over an empty set of relevant labels is 0 (toolbox coverage.m), so such a row gives -1.
    worst = np.where(yt == 1, ranks, 0).max(axis=1)
    return float(np.mean(worst - 1))


def one_error(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """One-error, Eq. 4: fraction of ranking-subset samples whose top label (first argmax) is irrelevant."""
    yt, ys = _validate(y_true, y_score)
    mask = ranking_mask(yt)
    if not mask.any():
        return float("nan")
    yt, ys = yt[mask], ys[mask]
    # np.argmax returns the first maximum, like MATLAB's max in the toolbox's One_error.m.
    top = np.argmax(ys, axis=1)
    return float(np.mean(yt[np.arange(len(yt)), top] == 0))


def _auc_or_nan(y: np.ndarray, s: np.ndarray) -> float:
    """ROC AUC of one binary problem, or NaN when only one class is present."""
    if y.min() == y.max():
        return float("nan")
    return float(roc_auc_score(y, s))


def _per_label_auc(yt: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """ROC AUC of every label column (NaN for single-class columns)."""
    return np.array([_auc_or_nan(yt[:, j], ys[:, j]) for j in range(yt.shape[1])], dtype=np.float64)


def _compute(yt: np.ndarray, ys: np.ndarray, threshold: float) -> dict[str, float]:
    """All nine metrics plus the subset counts, from validated arrays."""
    n, n_labels = yt.shape
    k = yt.sum(axis=1)
    mask = (k > 0) & (k < n_labels)
    pred = (ys >= threshold).astype(np.int8)

    out: dict[str, float] = {}
    # Eq. 3 normalised by the number of labels (the paper's values, e.g. 0.155, imply it).
    out["hamming_loss"] = float(np.mean(pred != yt))

    if mask.any():
        out["one_error"] = one_error(yt[mask], ys[mask])
        out["ranking_loss"] = float(label_ranking_loss(yt[mask], ys[mask]))
        # LRAP is the toolbox's average precision (Eqs. 8-9); NOT sklearn's average_precision_score.
        out["average_precision"] = _average_precision(yt[mask], ys[mask])
    else:
        out["one_error"] = out["ranking_loss"] = out["average_precision"] = float("nan")
    out["coverage"] = coverage(yt, ys)

    out["micro_f1"] = float(f1_score(yt, pred, average="micro", zero_division=0))
    out["macro_f1"] = float(f1_score(yt, pred, average="macro", zero_division=0))

    out["micro_auc"] = _auc_or_nan(yt.ravel(), ys.ravel())
    aucs = _per_label_auc(yt, ys)
    ok = ~np.isnan(aucs)
    out["macro_auc"] = float(aucs[ok].mean()) if ok.any() else float("nan")

    metrics = {key: out[key] for key in METRIC_KEYS}
    metrics.update(
        n_samples=int(n),
        n_ranking_excluded=int(n - mask.sum()),
        n_no_label=int((k == 0).sum()),
        n_all_labels=int((k == n_labels).sum()),
        n_auc_labels=int(ok.sum()),
        threshold=float(threshold),
    )
    return metrics


def multilabel_metrics(y_true: np.ndarray, y_score: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """The nine metrics of Section IV.B (Eqs. 3-10) as plain floats; see the module docstring for conventions."""
    yt, ys = _validate(y_true, y_score, threshold)
    full = _compute(yt, ys, float(threshold))
    return {key: full[key] for key in METRIC_KEYS}


def multilabel_report(y_true: np.ndarray, y_score: np.ndarray, threshold: float = 0.5) -> dict[str, float | int]:
    """The nine metrics plus n_samples, n_ranking_excluded, n_no_label, n_all_labels, n_auc_labels, threshold."""
    yt, ys = _validate(y_true, y_score, threshold)
    return _compute(yt, ys, float(threshold))


def per_label_report(
    y_true: np.ndarray,
    y_score: np.ndarray,
    threshold: float = 0.5,
    names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per-label support, predicted positives, precision, recall, F1 and AUC (NaN if single-class).

    ``names`` defaults to ``EMOTION_TITLES`` for six labels and ``label_0..`` otherwise.
    """
    yt, ys = _validate(y_true, y_score, threshold)
    n_labels = yt.shape[1]
    if names is None:
        names = EMOTION_TITLES if n_labels == len(EMOTION_TITLES) else [f"label_{j}" for j in range(n_labels)]
    names = list(names)
    if len(names) != n_labels:
        raise ValueError(f"got {len(names)} names for {n_labels} labels")
    pred = (ys >= threshold).astype(np.int8)
    frame = pd.DataFrame(
        {
            "support": yt.sum(axis=0).astype(int),
            "predicted": pred.sum(axis=0).astype(int),
            "precision": precision_score(yt, pred, average=None, zero_division=0),
            "recall": recall_score(yt, pred, average=None, zero_division=0),
            "f1": f1_score(yt, pred, average=None, zero_division=0),
            "auc": _per_label_auc(yt, ys),
        },
        index=pd.Index(names, name="label"),
    )
    return frame


def decision_rules_softmax(y_true: np.ndarray, probs: np.ndarray, atol: float = 1e-3) -> dict[str, dict[str, float]]:
    """Metrics of softmax-CE outputs under 'p >= 0.5' (at most one label) and 'p >= 1/L' (docs/DESIGN.md §2).

    The keys are ``"p>=0.5"`` and ``"p>=1/6"`` (``"p>=1/L"`` for L labels). Rows of ``probs`` must
    sum to 1 within ``atol``: sigmoid outputs passed here by mistake raise ValueError.
    """
    yt, ps = _validate(y_true, probs)
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
    yt, ys = _validate(y_true, y_score)
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
                "micro_f1": float(f1_score(yt, pred, average="micro", zero_division=0)),
                "macro_f1": float(f1_score(yt, pred, average="macro", zero_division=0)),
                "mean_predicted_labels": float(pred.sum(axis=1).mean()),
            }
        )
    cols = ["threshold", "hamming_loss", "micro_f1", "macro_f1", "mean_predicted_labels"]
    return pd.DataFrame(rows, columns=cols).set_index("threshold")
