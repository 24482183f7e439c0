"""Summaries over seeds and the Table 1/2-style tables (text, Markdown, paper rows)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mfjle_lib.constants import PAPER_TABLES
from mfjle_lib.evaluation.reports import (
    HEADERS,
    format_table,
    markdown_table,
    paper_rows,
    results_table,
    summarise_runs,
)
from mfjle_lib.method.metrics import METRIC_KEYS

EXPECTED_HEADERS = [
    "Hamming ↓",
    "Coverage ↓",
    "One-error ↓",
    "Ranking ↓",
    "AP ↑",
    "Micro-F1 ↑",
    "Macro-F1 ↑",
    "Micro-AUC ↑",
    "Macro-AUC ↑",
]


def _run(base: float) -> dict[str, float]:
    """A metrics dict with every value = base + index/100, plus a non-metric key."""
    run = {key: base + i / 100 for i, key in enumerate(METRIC_KEYS)}
    run["n_samples"] = 10
    return run


def test_headers_follow_table_order() -> None:
    assert [HEADERS[k] for k in METRIC_KEYS] == EXPECTED_HEADERS


def test_summarise_runs_mean_and_sample_std() -> None:
    runs = [_run(0.1), _run(0.2), _run(0.3)]
    summary = summarise_runs(runs)
    assert list(summary) == list(METRIC_KEYS)
    mean, std = summary["hamming_loss"]
    assert mean == pytest.approx(0.2)
    assert std == pytest.approx(np.std([0.1, 0.2, 0.3], ddof=1))  # 0.1, not the population 0.0816
    assert all(isinstance(v, float) for pair in summary.values() for v in pair)


def test_summarise_single_run_and_errors() -> None:
    assert summarise_runs([_run(0.5)])["coverage"] == (pytest.approx(0.51), 0.0)
    with pytest.raises(ValueError, match="at least one run"):
        summarise_runs([])
    bad = _run(0.1)
    del bad["macro_auc"]
    with pytest.raises(ValueError, match="macro_auc"):
        summarise_runs([_run(0.1), bad])
    nan_run = _run(0.1)
    nan_run["macro_auc"] = float("nan")
    assert math.isnan(summarise_runs([_run(0.1), nan_run])["macro_auc"][0])


def test_paper_rows() -> None:
    raf = paper_rows("rafml")
    assert list(raf) == list(PAPER_TABLES["rafml"])
    mfjle = raf["MF-JLE (paper Table 1)"]
    assert mfjle["hamming_loss"] == 0.155 and mfjle["coverage"] == 1.879 and mfjle["macro_auc"] == 0.897
    assert paper_rows("JAFFE")["ResNet-18 (paper Table 2)"]["coverage"] == 0.875
    assert paper_rows("synthetic") == {} and paper_rows(None) == {}


def test_results_table_with_summary_metrics_and_paper_rows() -> None:
    summary = summarise_runs([_run(0.78), _run(0.786)])
    single = _run(0.5)
    single["one_error"] = float("nan")
    df = results_table({"MF-JLE (ours, 2 seeds)": summary, "ResNet-18 (ours)": single}, dataset="rafml")
    assert list(df.columns) == EXPECTED_HEADERS
    assert list(df.index) == [
        "MF-JLE (ours, 2 seeds)",
        "ResNet-18 (ours)",
        "ResNet-18 (paper Table 1)",
        "MF-JLE (paper Table 1)",
    ]
    assert df.loc["MF-JLE (ours, 2 seeds)", "Hamming ↓"] == "0.783 ± 0.004"
    assert df.loc["ResNet-18 (ours)", "Coverage ↓"] == "0.510"
    assert df.loc["ResNet-18 (ours)", "One-error ↓"] == "–"
    assert df.loc["MF-JLE (paper Table 1)", "Micro-F1 ↑"] == "0.783"
    assert df.loc["MF-JLE (paper Table 1)", "Coverage ↓"] == "1.879"
    # More digits for our rows never invent digits for the paper's.
    df4 = results_table({"ours": single}, dataset="jaffe", digits=4)
    assert df4.loc["ours", "Hamming ↓"] == "0.5000"
    assert df4.loc["MF-JLE (paper Table 2)", "Hamming ↓"] == "0.032"
    assert list(results_table({"ours": single}, dataset="synthetic").index) == ["ours"]


def test_format_table_is_aligned() -> None:
    df = results_table({"ours": summarise_runs([_run(0.1), _run(0.12)])}, dataset="jaffe")
    text = format_table(df)
    lines = text.splitlines()
    assert len(lines) == 2 + 1 + 2  # header, rule, our row, two paper rows
    assert lines[0].startswith("model") and "Hamming ↓" in lines[0] and "Macro-AUC ↑" in lines[0]
    assert set(lines[1]) <= {"-", " "}
    # Values are right-aligned, so every line has the same width and columns end together.
    assert len({len(line) for line in lines}) == 1
    assert "0.110 ± 0.014" in lines[2]
    assert lines[3].startswith("ResNet-18 (paper Table 2)")


def test_markdown_table() -> None:
    df = results_table({"a|b": _run(0.1)}, dataset="rafml")
    md = markdown_table(df)
    lines = md.splitlines()
    assert len(lines) == 2 + 3
    assert lines[0] == "| model | " + " | ".join(EXPECTED_HEADERS) + " |"
    assert lines[1] == "|:---|" + "|".join(["---:"] * 9) + "|"
    assert lines[2].startswith("| a\\|b | 0.100 | 0.110 |")
    # Every row has the same number of unescaped cell separators.
    counts = {line.replace("\\|", "").count("|") for line in lines}
    assert counts == {11}


def test_make_notebooks_drops_widget_state_only_when_no_widget_is_shown() -> None:
    import nbformat

    from tools.notebook_tools import drop_unused_widget_state

    state = {"application/vnd.jupyter.widget-state+json": {"state": {"abc": {}}}}
    plain = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("1", outputs=[nbformat.v4.new_output("stream", text="1")])]
    )
    plain.metadata["widgets"] = state
    drop_unused_widget_state(plain)
    assert "widgets" not in plain.metadata
    view = {"application/vnd.jupyter.widget-view+json": {"model_id": "abc", "version_major": 2, "version_minor": 0}}
    panel = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("w", outputs=[nbformat.v4.new_output("display_data", data=view)])]
    )
    panel.metadata["widgets"] = state
    drop_unused_widget_state(panel)
    assert panel.metadata["widgets"] == state


def test_styled_bolds_the_best_of_our_rows_lower_is_better_aware() -> None:
    from mfjle_lib.evaluation.reports import best_rows, styled

    a, b = _run(0.1), _run(0.2)  # a is lower on every metric
    table = results_table({"a": a, "b": summarise_runs([b, b])}, dataset="jaffe")
    best = best_rows(table)
    assert best[HEADERS["hamming_loss"]] == ["a"] and best[HEADERS["micro_f1"]] == ["b"]  # ↓ min, ↑ max
    assert not any(name in rows for rows in best.values() for name in PAPER_TABLES["jaffe"])  # paper rows never "best"
    html = styled(table).to_html()
    assert "Hamming ↓" in html and "AP ↑" in html and "font-weight: bold" in html and "font-style: italic" in html
    numbers = styled({"a": a, "b": b})  # the rows mapping, and numeric frames, work too
    assert numbers.data.loc["a", HEADERS["coverage"]] == f"{a['coverage']:.3f}"
    frame = pd.DataFrame([a, b], index=["a", "b"])[list(METRIC_KEYS)]
    assert best_rows(styled(frame).data)[HEADERS["coverage"]] == ["a"]
