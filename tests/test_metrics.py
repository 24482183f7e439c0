"""The nine metrics of Section IV.B against hand-computed toys and scikit-learn (toolbox convention, docs/DESIGN.md
§2)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (
    coverage_error,
    f1_score,
    hamming_loss,
    label_ranking_average_precision_score,
    label_ranking_loss,
    roc_auc_score,
)

from mfjle_lib.method.metrics import (
    METRIC_KEYS,
    coverage,
    multilabel_metrics,
    multilabel_report,
    one_error,
    ranking_mask,
)

CONTRACT_KEYS = {
    "hamming_loss",
    "one_error",
    "coverage",
    "ranking_loss",
    "average_precision",
    "micro_f1",
    "macro_f1",
    "micro_auc",
    "macro_auc",
}

# --- Toy 1: 3 samples x 3 labels, no ties, every sample in the ranking subset -----------------
# ranks (1 = best):  row0 s=(.9,.2,.6) -> (1,3,2); row1 (.7,.4,.8) -> (2,3,1); row2 (.3,.6,.1) -> (2,1,3)
TOY1_Y = np.array([[1, 0, 0], [0, 1, 1], [1, 1, 0]])
TOY1_S = np.array([[0.9, 0.2, 0.6], [0.7, 0.4, 0.8], [0.3, 0.6, 0.1]])
TOY1_EXPECTED = {
    # pred@0.5 = [[1,0,1],[1,0,1],[0,1,0]]: wrong bits 1 + 2 + 1 = 4 of 9
    "hamming_loss": 4 / 9,
    # top labels 0, 2, 1 are all relevant
    "one_error": 0.0,
    # max relevant rank - 1: row0 1-1=0, row1 3-1=2, row2 2-1=1 -> mean 1
    "coverage": 1.0,
    # row1: pair (label1 .4, label0 .7) mis-ordered, (label2 .8, label0 .7) fine -> 1/2; others 0
    "ranking_loss": (0 + 0.5 + 0) / 3,
    # row0: 1; row1: label2 rank1 -> 1/1, label1 rank3 with 2 relevant at <=3 -> 2/3, mean 5/6; row2: 1
    "average_precision": (1 + 5 / 6 + 1) / 3,
    # TP=3 FP=2 FN=2 -> 2*3/(2*3+2+2)
    "micro_f1": 0.6,
    # label0: TP1 FP1 FN1 -> 1/2; label1: TP1 FN1 -> 2/3; label2: TP1 FP1 -> 2/3
    "macro_f1": (0.5 + 2 / 3 + 2 / 3) / 3,
    # flattened: 5 positives {.9,.8,.6,.4,.3} vs 4 negatives {.7,.6,.2,.1}; pairs won (tie = 1/2):
    # .9 -> 4, .8 -> 4, .6 -> 2 + 0.5 (tie with .6), .4 -> 2, .3 -> 2; 14.5 of 20
    "micro_auc": 14.5 / 20,
    # label0: pos {.9,.3} vs neg {.7} -> 1/2; label1: 1; label2: 1
    "macro_auc": (0.5 + 1 + 1) / 3,
}

# --- Toy 2: a label-free row, an all-label row, and ties ------------------------------------
TOY2_Y = np.array([[0, 0, 0], [1, 1, 1], [0, 1, 0], [1, 0, 1]])
TOY2_S = np.array([[0.9, 0.1, 0.1], [0.2, 0.2, 0.2], [0.5, 0.5, 0.1], [0.4, 0.4, 0.4]])
TOY2_EXPECTED = {
    # pred@0.5 = [[1,0,0],[0,0,0],[1,1,0],[0,0,0]]: wrong bits 1 + 3 + 1 + 2 = 7 of 12
    "hamming_loss": 7 / 12,
    # ranking subset = rows 2, 3. row2: tied top (.5,.5) -> first index, label0, irrelevant -> error;
    # row3: all tied -> label0, relevant -> no error
    "one_error": 0.5,
    # ALL rows: row0 no label -> 0 - 1 = -1; row1 all tied -> rank 3 -> 2;
    # row2 label1 tied with label0 -> rank 2 -> 1; row3 all tied -> 2.   (-1 + 2 + 1 + 2) / 4
    "coverage": 1.0,
    # row2: (1 vs 0) tie counts as an error (Eq. 7's <=), (1 vs 2) fine -> 1/2; row3: both pairs tied -> 1
    "ranking_loss": (0.5 + 1.0) / 2,
    # row2: label1 rank 2, 1 relevant at <= 2 -> 1/2; row3: both relevant at rank 3 -> 2/3 each
    "average_precision": (0.5 + 2 / 3) / 2,
    # TP=1 FP=2 FN=5 -> 2/(2+2+5)
    "micro_f1": 2 / 9,
    # label0: TP0 -> 0; label1: TP1 FN1 -> 2/3; label2: nothing predicted -> 0
    "macro_f1": (0 + 2 / 3 + 0) / 3,
    # label0: pos {.2,.4} vs neg {.9,.5} -> 0; label1: pos {.2,.5} vs neg {.1,.4} -> 3/4; label2: 1
    "macro_auc": (0 + 0.75 + 1) / 3,
}


def _random_case(seed: int, n: int = 300, n_labels: int = 6, levels: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Random labels with forced label-free and all-label rows, and quantised (heavily tied) scores."""
    rng = np.random.default_rng(seed)
    y = (rng.random((n, n_labels)) < 0.3).astype(int)
    y[:20] = 0
    y[20:30] = 1
    # Quantising to a few levels makes ties common, which is where conventions differ.
    s = np.round(rng.random((n, n_labels)) * (levels - 1)) / (levels - 1)
    s = np.clip(s + 0.3 * y * rng.random((n, n_labels)), 0, 1)
    s = np.round(s * (levels - 1)) / (levels - 1)
    return y, s


def _one_error_loop(y: np.ndarray, s: np.ndarray) -> float:
    """Reference one-error: the toolbox's loop (first index of the max), over the ranking subset."""
    errors, count = 0, 0
    for yi, si in zip(y, s):
        if 0 < yi.sum() < len(yi):
            count += 1
            top = list(si).index(max(si))
            errors += yi[top] == 0
    return errors / count


def test_keys_types_and_order() -> None:
    m = multilabel_metrics(TOY1_Y, TOY1_S)
    assert set(m) == CONTRACT_KEYS
    assert list(m) == list(METRIC_KEYS)
    assert all(type(v) is float for v in m.values())


@pytest.mark.parametrize(("y", "s", "expected"), [(TOY1_Y, TOY1_S, TOY1_EXPECTED), (TOY2_Y, TOY2_S, TOY2_EXPECTED)])
def test_hand_computed_toys(y: np.ndarray, s: np.ndarray, expected: dict[str, float]) -> None:
    m = multilabel_metrics(y, s)
    for key, value in expected.items():
        assert m[key] == pytest.approx(value, abs=1e-12), key


def test_toy2_counts_and_sklearn_trap() -> None:
    rep = multilabel_report(TOY2_Y, TOY2_S)
    assert rep["n_samples"] == 4
    assert rep["n_no_label"] == 1 and rep["n_all_labels"] == 1
    assert rep["n_ranking_excluded"] == 2
    assert rep["n_auc_labels"] == 3
    assert rep["threshold"] == 0.5
    # Without subsetting, scikit-learn would reward the two excluded rows as perfect.
    assert label_ranking_average_precision_score(TOY2_Y, TOY2_S) > rep["average_precision"] + 0.1
    assert label_ranking_loss(TOY2_Y, TOY2_S) < rep["ranking_loss"] - 0.1


def test_coverage_label_free_row_counts_minus_one() -> None:
    y = np.array([[0, 0, 0, 0]])
    s = np.array([[0.1, 0.9, 0.3, 0.2]])
    assert coverage(y, s) == -1.0
    assert coverage_error(y, s) - 1 == -1.0  # scikit-learn agrees: its empty row scores 0
    # Two rows: -1 and (rank 4) - 1 = 3
    y2 = np.array([[0, 0, 0, 0], [1, 0, 0, 0]])
    s2 = np.array([[0.1, 0.9, 0.3, 0.2], [0.0, 0.9, 0.3, 0.2]])
    assert coverage(y2, s2) == pytest.approx(1.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n_labels", [2, 3, 6])
def test_against_sklearn_with_ties_and_excluded_rows(seed: int, n_labels: int) -> None:
    y, s = _random_case(seed, n_labels=n_labels)
    rep = multilabel_report(y, s, threshold=0.5)
    mask = (y.sum(1) > 0) & (y.sum(1) < n_labels)
    assert np.array_equal(ranking_mask(y), mask)
    assert rep["n_ranking_excluded"] == int((~mask).sum())
    assert rep["n_no_label"] == int((y.sum(1) == 0).sum()) >= 20
    assert rep["n_all_labels"] == int((y.sum(1) == n_labels).sum()) >= 10
    pred = (s >= 0.5).astype(int)
    assert rep["coverage"] == pytest.approx(coverage_error(y, s) - 1)
    assert rep["ranking_loss"] == pytest.approx(label_ranking_loss(y[mask], s[mask]))
    assert rep["average_precision"] == pytest.approx(label_ranking_average_precision_score(y[mask], s[mask]))
    assert rep["one_error"] == pytest.approx(_one_error_loop(y, s))
    assert rep["hamming_loss"] == pytest.approx(hamming_loss(y, pred))
    assert rep["micro_f1"] == pytest.approx(f1_score(y, pred, average="micro", zero_division=0))
    assert rep["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro", zero_division=0))
    assert rep["micro_auc"] == pytest.approx(roc_auc_score(y, s, average="micro"))
    assert rep["macro_auc"] == pytest.approx(roc_auc_score(y, s, average="macro"))
    assert rep["n_auc_labels"] == n_labels


def test_ties_really_occur_in_random_case() -> None:
    _, s = _random_case(0)
    assert any(len(np.unique(row)) < len(row) for row in s)


def test_threshold_is_inclusive() -> None:
    y = np.array([[1, 0], [0, 1]])
    s = np.array([[0.5, 0.49], [0.2, 0.5]])
    assert multilabel_metrics(y, s)["hamming_loss"] == 0.0


def test_one_error_tie_takes_first_index() -> None:
    y = np.array([[0, 1, 0], [1, 0, 0]])
    s = np.array([[0.7, 0.7, 0.1], [0.7, 0.7, 0.1]])
    # Row 0: tied top -> label 0 (irrelevant) -> error. Row 1: label 0 is relevant -> no error.
    assert one_error(y, s) == 0.5


def test_macro_auc_skips_single_class_labels() -> None:
    y = np.array([[1, 0, 0], [1, 1, 0]])  # label 0 always on, label 2 always off
    s = np.array([[0.8, 0.3, 0.1], [0.6, 0.7, 0.2]])
    rep = multilabel_report(y, s)
    assert rep["n_auc_labels"] == 1
    assert rep["macro_auc"] == 1.0
    assert rep["micro_auc"] == pytest.approx(roc_auc_score(y.ravel(), s.ravel()))
    # Random case with a constant column: mean over the remaining labels.
    yr, sr = _random_case(5)
    yr[:, 2] = 0
    ok = [0, 1, 3, 4, 5]
    m = multilabel_metrics(yr, sr)
    assert m["macro_auc"] == pytest.approx(roc_auc_score(yr[:, ok], sr[:, ok], average="macro"))


def test_macro_auc_nan_when_no_label_has_both_classes() -> None:
    y = np.array([[1, 0], [1, 0]])
    s = np.array([[0.9, 0.1], [0.4, 0.6]])
    rep = multilabel_report(y, s)
    assert np.isnan(rep["macro_auc"]) and rep["n_auc_labels"] == 0
    assert not np.isnan(rep["micro_auc"])


def test_empty_ranking_subset_gives_nan() -> None:
    y = np.array([[0, 0], [1, 1]])
    s = np.array([[0.3, 0.4], [0.5, 0.6]])
    m = multilabel_report(y, s)
    for key in ("one_error", "ranking_loss", "average_precision"):
        assert np.isnan(m[key])
    assert m["coverage"] == pytest.approx((-1 + 1) / 2)  # row1: both relevant, worst rank 2
    assert m["n_ranking_excluded"] == 2


def test_float32_sigmoid_saturation_trap() -> None:
    logits = np.array([[20.0, 17.0, -3.0], [-2.0, 18.0, 25.0]])
    y = np.array([[1, 0, 0], [0, 0, 1]])
    p32 = (1 / (1 + np.exp(-logits.astype(np.float32)))).astype(np.float32)
    p64 = 1 / (1 + np.exp(-logits))
    assert p32[0, 0] == p32[0, 1] == np.float32(1.0)  # sigma(17) and sigma(20) tie in float32
    m32 = multilabel_metrics(y, p32)
    m64 = multilabel_metrics(y, p64)
    # float32: each row's relevant label ties with an irrelevant one at 1.0 -> one of two pairs
    # mis-ordered, relevant rank 2 (AP 1/2, coverage 2 - 1 = 1).
    assert m32["ranking_loss"] == 0.5 and m32["average_precision"] == 0.5
    assert m32["coverage"] == 1.0
    assert m64["ranking_loss"] == 0.0 and m64["average_precision"] == 1.0 and m64["coverage"] == 0.0
    # Ranking metrics from logits equal those from float64 probabilities (monotone transform).
    ml = multilabel_metrics(y, logits, threshold=0.0)
    for key in ("one_error", "coverage", "ranking_loss", "average_precision", "micro_auc", "macro_auc"):
        assert ml[key] == m64[key], key


@pytest.mark.parametrize(
    ("y", "s", "match"),
    [
        (np.zeros((2, 3)), np.zeros((2, 4)), "same shape"),
        (np.zeros(3), np.zeros(3), "2-D"),
        (np.zeros((0, 3)), np.zeros((0, 3)), "at least one sample"),
        (np.zeros((2, 1)), np.zeros((2, 1)), "at least 2 labels"),
        (np.array([[0, 2], [1, 0]]), np.zeros((2, 2)), "only 0 and 1"),
        (np.array([[0, 0.5], [1, 0]]), np.zeros((2, 2)), "only 0 and 1"),
        (np.array([[0, 1], [1, 0]]), np.array([[0.1, np.nan], [0.2, 0.3]]), "non-finite"),
        (np.array([[0, 1], [1, 0]]), np.array([[0.1, np.inf], [0.2, 0.3]]), "non-finite"),
        (np.array([[0, 1], [1, 0]]), np.array([["a", "b"], ["c", "d"]]), "numeric"),
    ],
)
def test_invalid_inputs(y: np.ndarray, s: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        multilabel_metrics(y, s)


def test_invalid_threshold_and_bool_labels() -> None:
    with pytest.raises(ValueError, match="threshold"):
        multilabel_metrics(TOY1_Y, TOY1_S, threshold=float("nan"))
    assert multilabel_metrics(TOY1_Y.astype(bool), TOY1_S) == multilabel_metrics(TOY1_Y.astype(np.float32), TOY1_S)


@pytest.mark.parametrize("seed", range(6))
def test_numpy_metrics_give_sklearns_numbers_bit_for_bit(seed: int) -> None:
    """Ranking loss, F1 and ROC AUC are computed in numpy (the method imports no scikit-learn), step for step as
    scikit-learn does: the same floats, not only close ones, on tied, untied and float32 scores."""
    rng = np.random.default_rng(seed)
    y, s = _random_case(seed, n=int(rng.integers(20, 200)), n_labels=int(rng.integers(2, 8)))
    scores = [s, rng.random(s.shape), rng.normal(size=s.shape).astype(np.float32).astype(np.float64)]
    for sc in scores:
        mask = ranking_mask(y)
        pred = (sc >= 0.5).astype(int)
        rep = multilabel_metrics(y, sc)
        assert rep["ranking_loss"] == label_ranking_loss(y[mask], sc[mask])
        assert rep["micro_f1"] == f1_score(y, pred, average="micro", zero_division=0)
        assert rep["macro_f1"] == f1_score(y, pred, average="macro", zero_division=0)
        assert rep["micro_auc"] == roc_auc_score(y.ravel(), sc.ravel())
        both = [j for j in range(y.shape[1]) if 0 < y[:, j].sum() < len(y)]
        assert rep["macro_auc"] == float(np.mean([roc_auc_score(y[:, j], sc[:, j]) for j in both]))
