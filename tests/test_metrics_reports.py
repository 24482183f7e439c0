"""Per-label reports, the softmax decision rules (Fig. 5 ablation) and the threshold sweep."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score, hamming_loss, roc_auc_score
from test_metrics import TOY1_S, TOY1_Y, _random_case

from mfjle_lib.constants import EMOTION_TITLES
from mfjle_lib.evaluation.per_label import decision_rules_softmax, per_label_report, threshold_sweep
from mfjle_lib.method.metrics import multilabel_metrics


def test_per_label_report() -> None:
    df = per_label_report(TOY1_Y, TOY1_S, names=["a", "b", "c"])
    assert list(df.index) == ["a", "b", "c"]
    assert list(df.columns) == ["support", "predicted", "precision", "recall", "f1", "auc"]
    assert df["support"].tolist() == [2, 2, 1]
    assert df["predicted"].tolist() == [2, 1, 2]
    assert df["precision"].tolist() == pytest.approx([0.5, 1.0, 0.5])
    assert df["recall"].tolist() == pytest.approx([0.5, 0.5, 1.0])
    assert df["f1"].tolist() == pytest.approx([0.5, 2 / 3, 2 / 3])
    assert df["auc"].tolist() == pytest.approx([0.5, 1.0, 1.0])
    assert df["f1"].mean() == pytest.approx(multilabel_metrics(TOY1_Y, TOY1_S)["macro_f1"])
    y, s = _random_case(3)
    y[:, 1] = 0
    df6 = per_label_report(y, s)
    assert list(df6.index) == list(EMOTION_TITLES)
    assert np.isnan(df6.loc[EMOTION_TITLES[1], "auc"]) and df6.loc[EMOTION_TITLES[1], "support"] == 0
    with pytest.raises(ValueError, match="names"):
        per_label_report(TOY1_Y, TOY1_S, names=["a", "b"])


# --- Toy 3: softmax outputs (rows sum to 1), 3 labels, read under both decision rules ----------
TOY3_Y = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 1], [0, 0, 1]])
TOY3_P = np.array([[0.6, 0.35, 0.05], [0.2, 0.4, 0.4], [0.5, 0.25, 0.25], [0.1, 0.1, 0.8]])
TOY3_EXPECTED = {
    # p >= 0.5: pred [[1,0,0],[0,0,0],[1,0,0],[0,0,1]]; misses r0 l1, r1 l1, r2 l2 -> 3 of 12 bits;
    # TP 3 FP 0 FN 3 -> 6/9; per label F1: l0 1, l1 0, l2 2/3
    "p>=0.5": {"hamming_loss": 3 / 12, "micro_f1": 2 / 3, "macro_f1": (1 + 0 + 2 / 3) / 3},
    # p >= 1/3: pred [[1,1,0],[0,1,1],[1,0,0],[0,0,1]]; r1 l2 wrong in, r2 l2 missed -> 2 of 12;
    # TP 5 FP 1 FN 1 -> 10/12; per label F1: l0 1, l1 1, l2 (TP1 FP1 FN1) 1/2
    "p>=1/3": {"hamming_loss": 2 / 12, "micro_f1": 5 / 6, "macro_f1": (1 + 1 + 0.5) / 3},
}


def test_decision_rules_softmax_by_hand() -> None:
    out = decision_rules_softmax(TOY3_Y, TOY3_P)
    assert set(out) == set(TOY3_EXPECTED)  # the second rule is named after L = 3
    for rule, expected in TOY3_EXPECTED.items():
        for key, value in expected.items():
            assert out[rule][key] == pytest.approx(value, abs=1e-12), (rule, key)
        # Every row's top label is relevant (row 1's tie 0.4/0.4 goes to the first, relevant label).
        assert out[rule]["one_error"] == 0.0


def test_decision_rules_softmax() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 6)) * 2
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = (rng.random((50, 6)) < 0.3).astype(int)
    out = decision_rules_softmax(y, probs)
    assert set(out) == {"p>=0.5", "p>=1/6"}
    # The decision metrics of each rule against scikit-learn on that rule's explicit decisions.
    for rule, t in (("p>=0.5", 0.5), ("p>=1/6", 1 / 6)):
        pred = (probs >= t).astype(int)
        assert out[rule]["hamming_loss"] == pytest.approx(hamming_loss(y, pred), abs=1e-12)
        assert out[rule]["micro_f1"] == pytest.approx(f1_score(y, pred, average="micro", zero_division=0), abs=1e-12)
        assert out[rule]["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro", zero_division=0), abs=1e-12)
        assert out[rule]["micro_auc"] == pytest.approx(roc_auc_score(y, probs, average="micro"), abs=1e-12)
    assert out["p>=0.5"]["hamming_loss"] != out["p>=1/6"]["hamming_loss"]  # the two rules really differ here
    # Ranking metrics do not depend on the rule; at least one label passes 1/6 in every row.
    assert out["p>=0.5"]["average_precision"] == out["p>=1/6"]["average_precision"]
    assert ((probs >= 0.5).sum(1) <= 1).all() and ((probs >= 1 / 6).sum(1) >= 1).all()
    # A uniform float32 softmax predicts every label under 1/6.
    uniform = np.full((1, 6), 1 / 6, dtype=np.float32)
    assert decision_rules_softmax(np.ones((1, 6), int), uniform)["p>=1/6"]["hamming_loss"] == 0.0
    with pytest.raises(ValueError, match="sum to 1"):
        decision_rules_softmax(y, 1 / (1 + np.exp(-logits)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        decision_rules_softmax(y, logits)


def test_threshold_sweep() -> None:
    y, s = _random_case(1)
    df = threshold_sweep(y, s, [0.1, 0.5, 0.9])
    assert isinstance(df, pd.DataFrame)
    assert list(df.index) == [0.1, 0.5, 0.9]
    assert {"hamming_loss", "micro_f1", "macro_f1"} <= set(df.columns)
    m = multilabel_metrics(y, s, 0.5)
    for key in ("hamming_loss", "micro_f1", "macro_f1"):
        assert df.loc[0.5, key] == pytest.approx(m[key])
    assert df["mean_predicted_labels"].is_monotonic_decreasing


def test_t_interval_is_the_student_t_interval_of_the_mean() -> None:
    import math

    from mfjle_lib.evaluation import t_interval

    lo, hi = t_interval([0.0, 1.0, 2.0])  # mean 1, std 1, t(0.975, 2) = 4.3027
    assert math.isclose(hi - 1.0, 4.302653 / math.sqrt(3), rel_tol=1e-5) and math.isclose(lo, 2.0 - hi)
    assert all(math.isnan(v) for v in t_interval([0.5]))  # one seed: no interval


def test_reliability_table_bins_every_pair_by_its_probability() -> None:
    from mfjle_lib.evaluation.per_label import reliability_table

    y = np.array([[1, 0], [0, 1], [1, 1]])
    p = np.array([[0.95, 0.05], [0.2, 0.92], [0.6, 0.99]])
    table = reliability_table(y, p)
    # 0.05 -> 0.0-0.1 (absent), 0.2 -> 0.1-0.3 (absent), 0.6 -> 0.5-0.7 (present), 0.95, 0.92, 0.99 -> 0.9-1.0 (present)
    assert table["pairs"].tolist() == [1, 1, 0, 1, 0, 3]
    assert table.loc["0.9–1.0", "mean probability"] == pytest.approx((0.95 + 0.92 + 0.99) / 3)
    assert (
        table["share really present"].tolist()[:2] == [0.0, 0.0] and table.loc["0.9–1.0", "share really present"] == 1
    )
    assert np.isnan(table.loc["0.3–0.5", "mean probability"])
