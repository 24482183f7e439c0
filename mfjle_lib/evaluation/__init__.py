"""Evaluation: the outputs algebra (module probabilities, fusion, re-fusion, the npz format), fusion chosen on
validation, reports and tables.

The nine metrics themselves are the method's (`mfjle_lib.method.metrics`).
"""

from __future__ import annotations

from . import outputs, per_label, reports, study_runs, study_table
from .fusion_choice import FusionChoice, choose_fusion, report_val_fusion
from .outputs import (
    Outputs,
    fuse_saved,
    fused_metrics,
    load_outputs,
    metrics_record,
    outputs_module_probs,
    save_outputs,
    with_probabilities,
)
from .per_label import decision_rules_softmax, per_label_report, reliability_table, threshold_sweep
from .reports import (
    HEADERS,
    best_rows,
    format_table,
    markdown_table,
    paper_rows,
    results_table,
    styled,
    summarise_runs,
    t_interval,
)

__all__ = [
    "HEADERS",
    "FusionChoice",
    "Outputs",
    "best_rows",
    "choose_fusion",
    "decision_rules_softmax",
    "format_table",
    "fuse_saved",
    "fused_metrics",
    "load_outputs",
    "markdown_table",
    "metrics_record",
    "outputs",
    "outputs_module_probs",
    "paper_rows",
    "per_label",
    "per_label_report",
    "reliability_table",
    "report_val_fusion",
    "reports",
    "results_table",
    "save_outputs",
    "study_runs",
    "study_table",
    "styled",
    "summarise_runs",
    "t_interval",
    "threshold_sweep",
    "with_probabilities",
]
