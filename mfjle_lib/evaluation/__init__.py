"""Evaluation: the nine metrics, the outputs algebra (module probabilities, fusion, re-fusion, the npz format), reports."""
from __future__ import annotations

from . import metrics, outputs, reports, study_table
from .fusion_choice import FusionChoice, choose_fusion, report_val_fusion
from .metrics import (coverage, decision_rules_softmax, multilabel_metrics, multilabel_report, one_error,
                      per_label_report, ranking_mask, threshold_sweep)
from .outputs import (Outputs, fuse_saved, fused_metrics, load_outputs, metrics_record, outputs_module_probs, save_outputs,
                      with_probabilities)
from .reports import HEADERS, best_rows, format_table, markdown_table, paper_rows, results_table, styled, summarise_runs

__all__ = [
    "FusionChoice", "HEADERS", "Outputs", "best_rows", "choose_fusion", "coverage", "decision_rules_softmax", "format_table", "fuse_saved", "fused_metrics",
    "load_outputs", "markdown_table", "metrics", "metrics_record", "multilabel_metrics", "multilabel_report", "one_error",
    "outputs", "outputs_module_probs", "paper_rows", "per_label_report", "ranking_mask", "report_val_fusion", "reports", "results_table", "study_table",
    "save_outputs", "styled", "summarise_runs", "threshold_sweep", "with_probabilities",
]
