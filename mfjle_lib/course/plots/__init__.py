"""Lesson figures: faces, landmarks and crops; how the built-in faces draw each emotion; training curves, metrics and
examples."""

from __future__ import annotations

from .common import LANDMARK_COLOURS, MODEL_COLOURS, draw_landmarks, label_names, save_figure
from .controls import plot_gain_split
from .emotions import plot_emotion_codes
from .faces import (
    plot_architecture,
    plot_blends,
    plot_crop_sizes,
    plot_crops,
    plot_detections,
    plot_label_stats,
    plot_samples,
)
from .results import (
    metrics_bar,
    plot_decision_rows,
    plot_epoch_curves,
    plot_examples_table,
    plot_history,
    plot_lambda_curve,
    plot_local_lambda,
    plot_metric_curve,
    plot_module_scores,
    plot_per_label_f1,
    plot_prediction,
    plot_reliability,
    plot_threshold_sweep,
)

__all__ = [
    "LANDMARK_COLOURS",
    "MODEL_COLOURS",
    "draw_landmarks",
    "label_names",
    "metrics_bar",
    "plot_architecture",
    "plot_blends",
    "plot_crop_sizes",
    "plot_crops",
    "plot_decision_rows",
    "plot_detections",
    "plot_emotion_codes",
    "plot_epoch_curves",
    "plot_examples_table",
    "plot_gain_split",
    "plot_history",
    "plot_label_stats",
    "plot_lambda_curve",
    "plot_local_lambda",
    "plot_metric_curve",
    "plot_module_scores",
    "plot_per_label_f1",
    "plot_prediction",
    "plot_reliability",
    "plot_samples",
    "plot_threshold_sweep",
    "save_figure",
]
