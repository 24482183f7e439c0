"""The blanks that read results: the floor of a model that learned nothing (03), a paired comparison over seeds
(04b), the gain split (05), a reliability table (07) and a threshold chosen on validation (08), each against the
function the library's own tables call.

The library's answer is `method.multilabel_metrics` on constant scores, the study tables' `paired_gap`, the
controls' `parts_of`, `evaluation.reliability_table` and `evaluation.choose_fusion` on one module (how a baseline
gets its threshold), called as the lessons call them.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from ...evaluation.fusion_choice import THRESHOLD_GRID, choose_fusion
from ...evaluation.per_label import RELIABILITY_EDGES, reliability_table
from ...evaluation.study_runs import paired_gap
from ...method.metrics import METRIC_KEYS, f1_scores, multilabel_metrics
from ...models.arms import ARMS, GAIN_STEPS
from ..controls import CONTROL_ARMS, TOTAL, parts_of
from .compare import Case, Hint, Task, as_array, difference

# --------------------------------------------------------------------------- 03: the floor of a constant predictor

#: The three parts of the floor's answer, named in its verdicts.
FLOOR_PARTS = ("micro-F1 of every emotion", "Hamming loss of every emotion", "Hamming loss of no emotion")


def _floor_cases() -> list[Case]:
    """Label matrices (faces x 6): a mix of label counts with label-free and all-label faces; few labels; one face."""
    g = np.random.default_rng(3)
    mixed = (g.random((50, 6)) < 0.3).astype(int)
    mixed[0], mixed[1] = 0, 1  # a face without a label and one with all six
    return [
        Case("50 faces, 0 to 6 labels each", (mixed,)),
        Case(
            "30 faces, one or two labels each",
            (np.eye(6, dtype=int)[g.integers(0, 6, 30)] | np.eye(6, dtype=int)[g.integers(0, 6, 30)],),
        ),
        Case("one face with two labels", (np.array([[1, 0, 0, 1, 0, 0]]),)),
    ]


def _library_floor(labels: np.ndarray) -> tuple[float, float, float]:
    """`method.multilabel_metrics` of the two constant scores: (micro-F1 and Hamming loss of 1 everywhere, Hamming
    loss of 0 everywhere)."""
    y = np.asarray(labels, dtype=np.float64)
    every, none = multilabel_metrics(y, np.ones_like(y)), multilabel_metrics(y, np.zeros_like(y))
    return every["micro_f1"], every["hamming_loss"], none["hamming_loss"]


def _floor_precision(yours: Any, lib: Any, case: Case) -> bool:
    """The precision of 'every emotion' (c / L) where its micro-F1 is wanted."""
    (y,) = case.args
    return difference(yours[FLOOR_PARTS[0]], np.mean(y)) is None


def _floor_per_face(yours: Any, lib: Any, case: Case) -> bool:
    """The mean over faces of each face's F1 (example-based F1) where the pooled micro-F1 is wanted."""
    (y,) = case.args
    c = np.asarray(y, dtype=np.float64).sum(axis=1)
    return difference(yours[FLOOR_PARTS[0]], np.mean(2 * c / (c + y.shape[1]))) is None


def _floor_hamming_swapped(yours: Any, lib: Any, case: Case) -> bool:
    """The two Hamming losses exchanged: every emotion errs on the L − c absent ones, no emotion on the c present."""
    every, none = FLOOR_PARTS[1], FLOOR_PARTS[2]
    return difference(yours[every], lib[none]) is None and difference(yours[none], lib[every]) is None


# --------------------------------------------------------------------------- 04b: the paired comparison over seeds

#: The four parts of the paired comparison's answer, named in its verdicts.
PAIRED_PARTS = ("the per-seed differences", "their mean", "their std", "the 95 % interval")


def _paired_cases() -> list[Case]:
    """One metric's test scores per seed of two models: lesson 04b's 3 seeds, 5 with gaps of both signs, 2 seeds."""
    g = np.random.default_rng(11)
    five = 0.78 + 0.02 * g.standard_normal(5)
    return [
        Case("3 seeds", (np.array([0.7575, 0.7934, 0.7823]), np.array([0.7548, 0.7912, 0.7801]))),
        Case("5 seeds, gaps of both signs", (five, five + 0.01 * g.standard_normal(5))),
        Case("2 seeds (one degree of freedom)", (np.array([0.81, 0.84]), np.array([0.80, 0.80]))),
    ]


def _library_paired(first: Sequence[float], second: Sequence[float]) -> tuple[Any, ...]:
    """What the study tables report for one metric (`study_runs.paired_gap`, seed i of `first` paired with seed i of
    `second`): (first − second per seed, their mean, their std (ddof=1), the 95 % t-interval of the mean)."""

    def runs(values: Sequence[float]) -> list[SimpleNamespace]:
        return [SimpleNamespace(seed=s, scores=dict.fromkeys(METRIC_KEYS, float(v))) for s, v in enumerate(values)]

    gap = paired_gap(runs(first), "scores", runs(second), "scores")
    key = METRIC_KEYS[0]
    mean, std = gap["summary"][key]
    return np.array([gap["per_seed"][s][key] for s in gap["seeds"]]), mean, std, gap["ci95"][key]


def _paired_reversed(yours: Any, lib: Any, case: Case) -> bool:
    """Δ taken the other way round: second − first."""
    d = PAIRED_PARTS[0]
    return difference(yours[d], -as_array(lib[d])) is None


def _std_ddof0(yours: Any, lib: Any, case: Case) -> bool:
    """The population std (ddof=0) where the sample std (ddof=1) is wanted."""
    d = as_array(lib[PAIRED_PARTS[0]])
    return difference(yours[PAIRED_PARTS[2]], d.std(ddof=0)) is None


def _z_interval(yours: Any, lib: Any, case: Case) -> bool:
    """A normal interval, mean ± 1.96·std/√n, where Student's t with n − 1 degrees of freedom is wanted."""
    d = as_array(lib[PAIRED_PARTS[0]])
    low, high = as_array(yours[PAIRED_PARTS[3]])
    z_half = [1.959963984540054 * d.std(ddof=k) / np.sqrt(len(d)) for k in (0, 1)]
    return bool(np.isclose((high - low) / 2, z_half, rtol=1e-3).any())


# --------------------------------------------------------------------------- 05: the gain split

#: The parts of the gain split's answer, in the order of the split (`models.arms.GAIN_STEPS`), then the total.
GAIN_PARTS = (*(part for _, _, part in GAIN_STEPS), TOTAL)


def _gain_cases() -> list[Case]:
    """Test micro-F1 per seed of the four arms (ResNet-18, 6 whole-face nets, MF-JLE, crops at S_g density, MF-JLE)."""
    g = np.random.default_rng(12)
    unfinished = (
        np.array([0.70, 0.72, 0.71]),
        np.array([0.73, np.nan, 0.74]),
        np.array([0.74, 0.75, 0.73]),
        np.array([0.76, 0.77, 0.75]),
    )
    return [
        Case("3 seeds", tuple(0.75 + 0.03 * g.random(3) for _ in range(4))),
        Case("5 seeds", tuple(0.50 + 0.10 * g.random(5) for _ in range(4))),
        Case("3 seeds, one whole-face run unfinished (NaN)", unfinished),
    ]


def _library_gain_split(
    resnet18: Sequence[float], wholeface: Sequence[float], lowres: Sequence[float], mfjle: Sequence[float]
) -> tuple[np.ndarray, ...]:
    """`controls.parts_of` on the four arms' scores per seed: (ensembling, locality, resolution, total) per seed."""
    arms = zip(CONTROL_ARMS[:4], (resnet18, wholeface, lowres, mfjle))
    parts = parts_of(pd.DataFrame({ARMS[a].title: np.asarray(v, np.float64) for a, v in arms}))
    return tuple(parts[p].to_numpy() for p in GAIN_PARTS)


def _parts_negated(yours: Any, lib: Any, case: Case) -> bool:
    """Every part the library's with its sign flipped: earlier arm − later arm."""
    return all(difference(yours[p], -as_array(lib[p])) is None for p in GAIN_PARTS)


def _locality_resolution_swapped(yours: Any, lib: Any, case: Case) -> bool:
    """Locality and resolution exchanged."""
    _, locality, resolution, _ = GAIN_PARTS
    return difference(yours[locality], lib[resolution]) is None and difference(yours[resolution], lib[locality]) is None


def _parts_not_consecutive(yours: Any, lib: Any, case: Case) -> bool:
    """The three parts do not add up to the total: a part measured against another arm than the one before it."""
    ensembling, locality, resolution, total = (as_array(yours[p]) for p in GAIN_PARTS)
    return not np.allclose(ensembling + locality + resolution, total, equal_nan=True)


# --------------------------------------------------------------------------- 07: a reliability table


def _reliability_cases() -> list[Case]:
    """Labels and probabilities: 4 faces with probabilities on the bin edges, 50 faces, other edges with empty bins."""
    on_edges = np.array(
        [
            [0.0, 0.1, 0.3, 0.5, 0.7, 0.9],
            [1.0, 0.05, 0.29, 0.31, 0.95, 0.5],
            [0.1, 0.3, 0.6, 0.7, 0.9, 0.2],
            [0.45, 0.55, 0.65, 0.85, 0.15, 0.99],
        ]
    )
    y4 = np.array([[0, 0, 1, 1, 0, 1], [1, 0, 0, 1, 1, 0], [0, 1, 1, 0, 1, 0], [0, 1, 0, 1, 0, 1]])
    g = np.random.default_rng(13)
    p50 = g.random((50, 6))
    y50 = (g.random((50, 6)) < p50).astype(int)
    ends = np.where(g.random((20, 6)) < 0.5, 0.2 * g.random((20, 6)), 0.8 + 0.2 * g.random((20, 6)))
    y_ends = (g.random((20, 6)) < ends).astype(int)
    return [
        Case("4 faces, probabilities on the bin edges", (y4, on_edges, RELIABILITY_EDGES)),
        Case("50 faces", (y50, p50, RELIABILITY_EDGES)),
        Case("20 faces, edges (0.25, 0.5, 0.75), two bins empty", (y_ends, ends, (0.25, 0.5, 0.75))),
    ]


def _bins_closed_below(yours: Any, lib: Any, case: Case) -> bool:
    """Bins closed on the other side, (lower, upper]: a probability on an edge counted in the bin below."""
    _, p, edges = case.args
    below = np.bincount(np.digitize(p, edges, right=True).ravel(), minlength=len(edges) + 1)
    return difference(yours["pairs"], below) is None and difference(yours["pairs"], lib["pairs"]) is not None


def _share_of_all(yours: Any, lib: Any, case: Case) -> bool:
    """The share of all pairs (or of all present emotions) that fall in the bin, not the share present in the bin."""
    y, p, edges = case.args
    pairs = as_array(lib["pairs"])
    present = np.bincount(np.digitize(p, edges)[np.asarray(y) == 1], minlength=len(edges) + 1)
    share = yours["share really present"]
    return difference(share, pairs / pairs.sum()) is None or difference(share, present / present.sum()) is None


def _empty_bin_zero(yours: Any, lib: Any, case: Case) -> bool:
    """0 where a bin is empty and the library's mean of nothing is NaN."""
    empty = as_array(lib["pairs"]) == 0
    return bool(empty.any()) and any(
        np.all(as_array(yours[c])[empty] == 0) for c in ("mean probability", "share really present")
    )


# --------------------------------------------------------------------------- 08: a threshold chosen on validation

#: The two parts of the threshold choice's answer, named in its verdicts.
THRESHOLD_PARTS = ("the threshold", "its validation micro-F1")


def _threshold_cases() -> list[Case]:
    """Validation labels and fused probabilities with the grid 0.05 … 0.95 of `choose_fusion`."""
    g = np.random.default_rng(14)
    y = (g.random((40, 6)) < 0.35).astype(int)
    p = 0.3 * y + 0.7 * g.random((40, 6))
    on_grid = np.round(p * 20) / 20  # each probability one of 0, 0.05, …, 1: many sit on a threshold
    sure = np.where(y == 1, 0.98, 0.02)
    sure[:5, 0] = 1 - sure[:5, 0]  # a few confident mistakes: every threshold of the grid gives the same micro-F1
    return [
        Case("40 faces, thresholds 0.05 … 0.95", (y, p, THRESHOLD_GRID)),
        Case("the same faces, probabilities on the grid's values", (y, on_grid, THRESHOLD_GRID)),
        Case("probabilities 0.02 or 0.98: every threshold ties", (y, sure, THRESHOLD_GRID)),
    ]


def _library_threshold(labels: np.ndarray, probs: np.ndarray, thresholds: Sequence[float]) -> tuple[float, float]:
    """`evaluation.choose_fusion` on one module, as a baseline gets its threshold: (threshold, validation micro-F1)."""
    choice = choose_fusion(np.asarray(probs, np.float64)[:, None, :], labels, (1.0,), thresholds=thresholds)
    return choice.threshold, choice.value


def _yours_at(yours: Any, case: Case, strict: bool = False, macro: bool = False) -> bool:
    """Whether the student's value is micro-F1 (or macro-F1) of `p >= t` (or `p > t`) at the student's threshold."""
    y, p, _ = case.args
    t, value = (float(as_array(yours[k])) for k in THRESHOLD_PARTS)
    pred = (p > t) if strict else (p >= t)
    f1 = np.mean(f1_scores(y, pred)) if macro else f1_scores(y, pred, axis=None)
    return bool(np.isclose(value, float(f1)))


def _tie_first(yours: Any, lib: Any, case: Case) -> bool:
    """The library's best micro-F1 at another threshold: a tie broken by the grid's order, not toward 0.5."""
    t, value = THRESHOLD_PARTS
    return difference(yours[value], lib[value]) is None and difference(yours[t], lib[t]) is not None


def _strict_threshold(yours: Any, lib: Any, case: Case) -> bool:
    """Micro-F1 of `p > t`: a probability equal to the threshold not predicted."""
    return _yours_at(yours, case, strict=True) and not _yours_at(yours, case)


def _macro_not_micro(yours: Any, lib: Any, case: Case) -> bool:
    """The mean of the per-emotion F1s (macro-F1) where the pooled micro-F1 is wanted."""
    return _yours_at(yours, case, macro=True) and not _yours_at(yours, case)


# --------------------------------------------------------------------------- the tasks

READING_TASKS: tuple[Task, ...] = (
    Task(
        "constant_floor",
        "the floor: micro-F1 and Hamming loss (Eq. 3) of predicting every emotion, or none",
        "method.multilabel_metrics on constant scores",
        _library_floor,
        _floor_cases,
        (
            Hint(
                _floor_precision,
                "c / L is the precision of 'every emotion'; micro-F1 is 2TP / (2TP + FP + FN), here with FN = 0",
            ),
            Hint(
                _floor_per_face,
                "micro-F1 pools TP, FP and FN over all faces first, then divides: not the mean of each face's F1",
            ),
            Hint(
                _floor_hamming_swapped,
                "predicting every emotion errs on the L − c emotions a face lacks; predicting none on the c it has",
            ),
        ),
        parts=FLOOR_PARTS,
    ),
    Task(
        "paired_comparison",
        "the paired comparison over seeds (Δ, mean, std, 95 % t-interval)",
        "evaluation.study_runs.paired_gap",
        _library_paired,
        _paired_cases,
        (
            Hint(_paired_reversed, "Δ is the first model minus the second (MF-JLE − ResNet-18), seed by seed"),
            Hint(_std_ddof0, "seeds are a sample: the std divides by n − 1 (np.std(d, ddof=1); numpy's default is 0)"),
            Hint(
                _z_interval,
                "with n seeds the interval is mean ± t·std/√n, t the 97.5 % quantile of Student's t with n − 1 "
                "degrees of freedom (scipy.stats.t.ppf(0.975, n - 1)), not 1.96",
            ),
        ),
        parts=PAIRED_PARTS,
    ),
    Task(
        "gain_split",
        "the gain split: ensembling, locality, resolution",
        "controls.parts_of",
        _library_gain_split,
        _gain_cases,
        (
            Hint(
                _parts_negated,
                "each part is the later arm minus the one before it (ensembling = six whole-face nets − ResNet-18)",
            ),
            Hint(
                _locality_resolution_swapped,
                "locality is the step from the whole-face ensemble to MF-JLE with crops at the global's density; "
                "resolution the step from there to MF-JLE",
            ),
            Hint(
                _parts_not_consecutive,
                "each part compares two consecutive arms, so the three add up to the total, MF-JLE − ResNet-18",
            ),
        ),
        parts=GAIN_PARTS,
    ),
    Task(
        "reliability",
        "a reliability table (probability bins)",
        "evaluation.reliability_table",
        reliability_table,
        _reliability_cases,
        (
            Hint(
                _bins_closed_below,
                "a bin holds [lower, upper): a probability on an edge goes to the bin above (np.digitize's default)",
            ),
            Hint(
                _share_of_all,
                "'share really present' is the share of the bin's own pairs that carry the emotion: the labels' mean",
            ),
            Hint(_empty_bin_zero, "an empty bin has no mean: NaN (np.nan), not 0"),
        ),
    ),
    Task(
        "val_threshold",
        "the threshold chosen on validation",
        "evaluation.choose_fusion",
        _library_threshold,
        _threshold_cases,
        (
            Hint(_strict_threshold, "a label is predicted when its probability is ≥ the threshold (p >= t)"),
            Hint(
                _tie_first,
                "several thresholds tie: keep the one closest to 0.5, the paper's (np.argmax keeps the first)",
            ),
            Hint(
                _macro_not_micro,
                "micro-F1 pools the counts over every (face, emotion) pair, 2TP / (2TP + FP + FN); "
                "the mean of the per-emotion F1s is macro-F1",
            ),
        ),
        parts=THRESHOLD_PARTS,
    ),
)
