"""Shim: `mfjle_lib.metrics.multilabel_metrics` is part of the public contract (scripts outside this
repository import it), so the metrics keep this name; they live in `mfjle_lib.evaluation.metrics`."""
from __future__ import annotations

from .evaluation.metrics import (coverage, decision_rules_softmax, multilabel_metrics, multilabel_report,
                                 one_error, per_label_report, ranking_mask, threshold_sweep)

__all__ = [
    "coverage", "decision_rules_softmax", "multilabel_metrics", "multilabel_report", "one_error",
    "per_label_report", "ranking_mask", "threshold_sweep",
]
