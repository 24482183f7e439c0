"""Lesson 05 helpers: fusion-weight vectors, re-fusion over seeds, output comparison, example picking."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mfjle_lib.course import ablations
from mfjle_lib.evaluation.outputs import fused_metrics
from mfjle_lib.method.metrics import METRIC_KEYS


def _outputs(seed: int, n: int = 40) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, 6)) < 0.3).astype(np.float32)
    labels[0] = [1, 0, 0, 0, 0, 0]  # at least one ranking-eligible row
    g = rng.normal(size=(n, 6)) + 2 * (labels - 0.5)
    loc = rng.normal(size=(n, 5, 6))
    probs = 1 / (1 + np.exp(-np.concatenate([g[:, None], loc], axis=1)))
    return {"labels": labels, "global_logits": g, "local_logits": loc, "module_probs": probs}


def test_weight_vectors() -> None:
    assert ablations.lambda_weights(0.01) == (1.0, 0.01, 0.01, 0.01, 0.01, 0.01)
    assert ablations.single_local_weights(2, 0.005) == (1.0, 0.01, 0.01, 0.005, 0.01, 0.01)


def test_refuse_over_seeds_and_mean_std() -> None:
    outs = [_outputs(0), _outputs(1)]
    frame = ablations.refuse_over_seeds(
        outs, {0.0: ablations.lambda_weights(0.0), 0.01: ablations.lambda_weights(0.01)}
    )
    assert len(frame) == 4 and set(METRIC_KEYS) <= set(frame.columns)
    # λ = 0 is the global module alone.
    g_only = fused_metrics({"labels": outs[1]["labels"], "module_probs": outs[1]["module_probs"][:, :1]}, (1.0,))
    row = frame[(frame.setting == 0.0) & (frame.seed == 1)].iloc[0]
    assert row["micro_f1"] == pytest.approx(g_only["micro_f1"])
    summary = ablations.mean_std(frame)
    mean, std = summary[0.01]["micro_f1"]
    values = frame[frame.setting == 0.01]["micro_f1"]
    assert mean == pytest.approx(values.mean()) and std == pytest.approx(values.std(ddof=1))


def test_compare_outputs_identical_and_shifted() -> None:
    a = _outputs(0)
    same = ablations.compare_outputs(a, a)
    assert (same["max |Δ logit|"] == 0).all() and (same["decisions changed"] == 0).all()
    b = {**a, "local_logits": a["local_logits"] + 0.5}
    b["module_probs"] = 1 / (1 + np.exp(-np.concatenate([b["global_logits"][:, None], b["local_logits"]], axis=1)))
    diff = ablations.compare_outputs(a, b)
    assert diff.loc["global", "max |Δ logit|"] == 0
    assert diff.loc["local1", "max |Δ logit|"] == pytest.approx(0.5)


def test_compare_histories() -> None:
    h = pd.DataFrame({"epoch": [1, 2], "x": [0.5, 0.4], "y": [0.5, 0.41]})
    out = ablations.compare_histories(h, h, [("x", "y")])
    assert out.iloc[0, 0] == pytest.approx(0.01)


def test_pick_examples_alternates_sides() -> None:
    t = np.array([[1, 0], [1, 1], [0, 1], [1, 1], [0, 0]])
    a = np.array([[1, 0], [0, 1], [0, 1], [1, 1], [1, 0]])
    b = np.array([[1, 0], [1, 1], [1, 1], [1, 1], [0, 0]])
    # b better on faces 1 and 4, a better on face 2; then the both-exact blend (3) before the single label (0).
    assert ablations.pick_examples(t, a, b, 5).tolist() == [1, 2, 4, 3, 0]
    assert len(ablations.pick_examples(t, a, b, 2)) == 2


def test_pick_examples_prefers_blends_over_easy_single_labels() -> None:
    # faces 0, 1: single labels both models get right; 2: a blend both get right; 3: a single label both miss;
    # 4: a three-label blend both get partly wrong; 5: the models disagree (b better).
    t = np.array([[1, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [1, 1, 1], [0, 0, 1]])
    a = np.array([[1, 0, 0], [1, 0, 0], [1, 1, 0], [0, 0, 0], [1, 1, 0], [0, 1, 1]])
    b = np.array([[1, 0, 0], [1, 0, 0], [1, 1, 0], [0, 0, 0], [1, 1, 0], [0, 0, 1]])
    assert ablations.pick_examples(t, a, b, 4).tolist() == [5, 4, 2, 3]
    assert ablations.pick_examples(t, a, b, 6).tolist()[-2:] == [0, 1]  # easy single labels only as padding


def test_fusion_panel_lines_up_its_sliders_and_saves_a_picture_not_a_repr() -> None:
    """Lesson 08's panel: one label width and row length for all seven sliders; its display carries static HTML."""
    pytest.importorskip("ipywidgets")
    val, test = _outputs(0), _outputs(1)
    panel = ablations.fusion_panel(val, test)
    sliders = panel.children[:-1]  # the last child is the Output the table is drawn in
    assert len(sliders) == 7
    assert {s.style.description_width for s in sliders} == {ablations.PANEL_DESCRIPTION_WIDTH}
    assert {s.layout.width for s in sliders} == {ablations.PANEL_SLIDER_WIDTH}
    bundle = panel._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert not bundle["text/plain"].startswith("interactive(")
    html = bundle["text/html"]
    assert "Fusion panel" in html and "Micro-F1" in html and "share of the vote" in html
    # The five locals at 0.01 draw their handles at the same place; the whole face's (1.0) further right.
    bars = [row.split("<code>")[1].split("</code>")[0] for row in html.split("<tr>")[1:8]]
    assert len({bar.index("●") for bar in bars[1:6]}) == 1 and bars[0].index("●") > bars[1].index("●")
    sliders[0].value = 0.1  # the picture follows the sliders, as the live table does
    assert "0.1000" in panel._repr_mimebundle_()["text/html"]
