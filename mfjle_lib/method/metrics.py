"""Paper Section IV.B, Eqs. 3-10: the nine multi-label metrics, one table in the column order of Tables 1-2.

`METRICS` is the one list of them: key, title, whether lower is better, and the function. Every
report, column title and ↓/↑ arrow of the library is read from it. Conventions (docs/DESIGN.md §2
"Evaluation"), those of Zhang & Zhou's multi-label toolbox; they matter on small or label-sparse
sets such as JAFFE:

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
  all samples with the prediction ``score >= threshold``; a label that is never true nor
  predicted scores F1 = 0 in the macro mean.
* Micro AUC is the ROC AUC of the flattened matrix; macro AUC is the unweighted mean over the
  labels that have both classes (single-class labels are skipped; NaN if none has both).

Numpy only. Ranking loss, F1 and ROC AUC give scikit-learn's numbers bit for bit (its
`label_ranking_loss`, `f1_score(zero_division=0)` and `roc_auc_score`, the ones the paper's
compared methods use); tests/test_metrics.py compares them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps

import numpy as np

#: A metric's function: validated (int8 labels, float64 scores) and the threshold -> its value.
MetricFn = Callable[[np.ndarray, np.ndarray, float], float]


@dataclass(frozen=True)
class Metric:
    """One metric of Section IV.B: its key (metrics files, histories), its title in tables, its direction, its
    function."""

    key: str
    title: str
    lower_is_better: bool
    fn: MetricFn

    @property
    def header(self) -> str:
        """The column title with the paper's arrow: 'Hamming ↓', 'AP ↑'."""
        return f"{self.title} {'↓' if self.lower_is_better else '↑'}"


def check_scores(y_true: object, y_score: object, threshold: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Check shapes, finiteness and 0/1 labels; return (int8 labels, float64 scores) or raise ValueError."""
    yt = np.asarray(y_true)
    ys = np.asarray(y_score)
    if yt.ndim != 2 or ys.ndim != 2:
        raise ValueError(f"y_true and y_score must be 2-D (n_samples, n_labels); got shapes {yt.shape} and {ys.shape}")
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


def _on_ranking_subset(fn: MetricFn) -> MetricFn:
    """`fn` over the ranking subset (`ranking_mask`); NaN when no sample is in it."""

    @wraps(fn)
    def subset(yt: np.ndarray, ys: np.ndarray, threshold: float) -> float:
        mask = ranking_mask(yt)
        return fn(yt[mask], ys[mask], threshold) if mask.any() else float("nan")

    return subset


def _ranks(y_score: np.ndarray) -> np.ndarray:
    """rank_f(x, y) of Eqs. 5 and 8: how many labels score >= this label (ties take the worst rank)."""
    # (N, L, L) comparison; L is 6 in this project, so memory stays at N*36 booleans.
    return (y_score[:, None, :] >= y_score[:, :, None]).sum(axis=2)


def _hamming_loss(yt: np.ndarray, ys: np.ndarray, threshold: float) -> float:
    """Eq. 3, normalised by the number of labels (the paper's values, e.g. 0.155, imply it)."""
    return float(np.mean((ys >= threshold).astype(np.int8) != yt))


def _coverage(yt: np.ndarray, ys: np.ndarray, threshold: float) -> float:
    """Eq. 5 over ALL samples: (max rank of a relevant label) - 1; a sample with no label counts -1."""
    # The max over an empty set of relevant labels is 0 (toolbox coverage.m), so such a row gives -1.
    worst = np.where(yt == 1, _ranks(ys), 0).max(axis=1)
    return float(np.mean(worst - 1))


@_on_ranking_subset
def _one_error(yt: np.ndarray, ys: np.ndarray, threshold: float) -> float:
    """Eq. 4: the fraction of samples whose top label (first argmax) is irrelevant."""
    # np.argmax returns the first maximum, like MATLAB's max in the toolbox's One_error.m.
    top = np.argmax(ys, axis=1)
    return float(np.mean(yt[np.arange(len(yt)), top] == 0))


@_on_ranking_subset
def _ranking_loss(yt: np.ndarray, ys: np.ndarray, threshold: float) -> float:
    """Eqs. 6-7: per sample, the fraction of (relevant, irrelevant) pairs ordered wrongly; a tie counts as wrong."""
    relevant = yt == 1
    wrong = (ys[:, :, None] <= ys[:, None, :]) & relevant[:, :, None] & ~relevant[:, None, :]
    pairs = relevant.sum(axis=1) * (~relevant).sum(axis=1)
    return float(np.mean(wrong.sum(axis=(1, 2)) / pairs))


@_on_ranking_subset
def _average_precision(yt: np.ndarray, ys: np.ndarray, threshold: float) -> float:
    """Eqs. 8-9: per sample, the mean over relevant labels of |relevant ranked at or above| / rank.

    The toolbox's average precision, scikit-learn's `label_ranking_average_precision_score` (NOT
    its `average_precision_score`), computed for all rows at once.
    """
    ranks = _ranks(ys)  # (N, L): labels scoring >= each label
    at_or_above = ys[:, None, :] >= ys[:, :, None]  # [i, j, k]: label k scores >= label j
    relevant_above = (at_or_above & (yt[:, None, :] == 1)).sum(axis=2)
    precision = np.where(yt == 1, relevant_above / ranks, 0.0)
    return float(np.mean(precision.sum(axis=1) / yt.sum(axis=1)))


def f1_scores(yt: np.ndarray, pred: np.ndarray, axis: int | None = 0) -> np.ndarray:
    """Eq. 10's F1 = 2·TP / (|true| + |predicted|) per label (axis 0) or pooled (None); 0 where both are empty."""
    tp = np.sum((yt == 1) & (pred == 1), axis=axis)
    denom = (np.sum(yt == 1, axis=axis) + np.sum(pred == 1, axis=axis)).astype(np.float64)
    return np.divide(2.0 * tp, denom, out=np.zeros_like(denom), where=denom > 0)


def _micro_f1(yt: np.ndarray, ys: np.ndarray, threshold: float) -> float:
    """Eq. 10, pooled over all (sample, label) decisions."""
    return float(f1_scores(yt, (ys >= threshold).astype(np.int8), axis=None))


def _macro_f1(yt: np.ndarray, ys: np.ndarray, threshold: float) -> float:
    """Eq. 10, the unweighted mean of the per-label F1."""
    return float(np.mean(f1_scores(yt, (ys >= threshold).astype(np.int8))))


def roc_auc(y: np.ndarray, s: np.ndarray) -> float:
    """ROC AUC of one binary problem (NaN with a single class), step for step as scikit-learn's `roc_auc_score`."""
    if y.min() == y.max():
        return float("nan")
    order = np.argsort(s, kind="stable")[::-1]  # descending; the order within tied scores changes nothing below
    s, y = s[order], y[order].astype(np.float64)
    last = np.r_[np.flatnonzero(np.diff(s)), y.size - 1]  # the last sample of each distinct score
    tps = np.cumsum(y)[last]
    fps = 1 + last - tps
    if len(fps) > 2:  # drop collinear points, as its roc_curve does: it changes the rounding of the area
        keep = np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True]
        fps, tps = fps[keep], tps[keep]
    return float(np.trapezoid(np.r_[0.0, tps] / tps[-1], np.r_[0.0, fps] / fps[-1]))


def per_label_auc(yt: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """ROC AUC of every label column (NaN for single-class columns)."""
    return np.array([roc_auc(yt[:, j], ys[:, j]) for j in range(yt.shape[1])], dtype=np.float64)


def _micro_auc(yt: np.ndarray, ys: np.ndarray, threshold: float) -> float:
    """ROC AUC of the flattened (sample, label) matrix."""
    return roc_auc(yt.ravel(), ys.ravel())


def _macro_auc(yt: np.ndarray, ys: np.ndarray, threshold: float) -> float:
    """The mean ROC AUC over the labels that have both classes (NaN if none has)."""
    aucs = per_label_auc(yt, ys)
    ok = ~np.isnan(aucs)
    return float(aucs[ok].mean()) if ok.any() else float("nan")


#: The nine metrics of Section IV.B in the column order of Tables 1-2 (`constants.PAPER_TABLES` rows follow it).
METRICS: tuple[Metric, ...] = (
    Metric("hamming_loss", "Hamming", True, _hamming_loss),
    Metric("coverage", "Coverage", True, _coverage),
    Metric("one_error", "One-error", True, _one_error),
    Metric("ranking_loss", "Ranking", True, _ranking_loss),
    Metric("average_precision", "AP", False, _average_precision),
    Metric("micro_f1", "Micro-F1", False, _micro_f1),
    Metric("macro_f1", "Macro-F1", False, _macro_f1),
    Metric("micro_auc", "Micro-AUC", False, _micro_auc),
    Metric("macro_auc", "Macro-AUC", False, _macro_auc),
)

#: The nine keys in table order (metrics files, histories, reports).
METRIC_KEYS: tuple[str, ...] = tuple(m.key for m in METRICS)

#: Key -> its `Metric`.
METRIC_BY_KEY: dict[str, Metric] = {m.key: m for m in METRICS}

#: Key -> True where lower is better (the paper's ↓), read from `METRICS`.
LOWER_IS_BETTER: dict[str, bool] = {m.key: m.lower_is_better for m in METRICS}


def _nine(yt: np.ndarray, ys: np.ndarray, threshold: float) -> dict[str, float]:
    """Every metric of `METRICS` on validated arrays."""
    return {m.key: m.fn(yt, ys, threshold) for m in METRICS}


def multilabel_metrics(y_true: np.ndarray, y_score: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """The nine metrics of Section IV.B (Eqs. 3-10) as plain floats; see the module docstring for conventions."""
    yt, ys = check_scores(y_true, y_score, threshold)
    return _nine(yt, ys, float(threshold))


def multilabel_report(y_true: np.ndarray, y_score: np.ndarray, threshold: float = 0.5) -> dict[str, float | int]:
    """The nine metrics plus n_samples, n_ranking_excluded, n_no_label, n_all_labels, n_auc_labels, threshold."""
    yt, ys = check_scores(y_true, y_score, threshold)
    n, n_labels = yt.shape
    k = yt.sum(axis=1)
    return {
        **_nine(yt, ys, float(threshold)),
        "n_samples": int(n),
        "n_ranking_excluded": int(n - ranking_mask(yt).sum()),
        "n_no_label": int((k == 0).sum()),
        "n_all_labels": int((k == n_labels).sum()),
        "n_auc_labels": int((yt.min(axis=0) != yt.max(axis=0)).sum()),  # labels with both classes
        "threshold": float(threshold),
    }


def coverage(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Coverage, Eq. 5: mean over ALL samples of (max rank of a relevant label) - 1; no label counts -1."""
    return _coverage(*check_scores(y_true, y_score), 0.5)


def one_error(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """One-error, Eq. 4: fraction of ranking-subset samples whose top label (first argmax) is irrelevant."""
    return _one_error(*check_scores(y_true, y_score), 0.5)
