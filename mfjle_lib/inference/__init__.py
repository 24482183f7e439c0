"""A finished run: its model rebuilt from the checkpoint, evaluated on a split, its fusion chosen on validation,
photos predicted."""

from __future__ import annotations

from .evaluate import evaluate_checkpoint, evaluate_val_fusion, load_trained_model, on_dataset, run_val_fusion
from .predict import Prediction, predict_files, predict_images, prepare_photos

__all__ = [
    "Prediction",
    "evaluate_checkpoint",
    "evaluate_val_fusion",
    "load_trained_model",
    "on_dataset",
    "predict_files",
    "predict_images",
    "prepare_photos",
    "run_val_fusion",
]
