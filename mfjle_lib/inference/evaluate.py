"""`--fusion-weights val`: fusion weights and threshold chosen on validation, reported beside the paper's.

The choice itself is `evaluation.fusion_choice.choose_fusion` (pure, validation arrays only).
This module finds the validation outputs: a run's saved `val_outputs.npz` (no forward pass), or,
for another dataset than the run's, a forward pass over that dataset's validation split.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..errors import ConfigError
from ..evaluation.fusion_choice import report_val_fusion
from ..evaluation.outputs import load_outputs, metrics_record
from .batches import load_data
from .inference import inference_model, load_trained_model, on_dataset, run_split, settings_record


def run_val_fusion(run_dir: str | Path, paper_weights: Sequence[float]) -> dict[str, Any]:
    """Choose on a finished run's `val_outputs.npz`; the test metrics of the choice on its `test_outputs.npz`."""
    run_dir = Path(run_dir)
    val_path, test_path = run_dir / "val_outputs.npz", run_dir / "test_outputs.npz"
    if not val_path.is_file():
        raise ConfigError(f"{val_path}: missing; --fusion-weights val needs the run's validation outputs (rerun it with this version)")
    return report_val_fusion(load_outputs(val_path), load_outputs(test_path), paper_weights)[1]


def evaluate_val_fusion(checkpoint: str | Path, dataset: str | None = None, root: str | None = None, split: str = "test",
                        device: str | None = None, show_progress: bool = True, precision: str = "auto") -> tuple[dict[str, Any], dict[str, Any]]:
    """(metrics with the checkpoint's own fusion, metrics with the fusion chosen on validation) on `split`.

    Validation outputs come from `val_outputs.npz` beside the checkpoint when the split is of the
    run's own data (no forward pass), else from a forward pass over the validation split; forward
    passes run in the `precision` path (`inference_model`), recorded as `inference`.
    """
    if split == "val":
        raise ConfigError("--fusion-weights val chooses on the validation split: evaluate it on --split test (or train)")
    model, cfg = load_trained_model(checkpoint, device)
    own_data = (dataset is None or dataset == cfg.dataset) and (root is None or root == cfg.root)
    cfg = on_dataset(cfg, dataset, root)
    dev = next(model.parameters()).device
    data = load_data(cfg, dev, show_progress)
    model, path = inference_model(model, cfg, dev, precision, data)
    settings = {**settings_record(cfg, split), "inference": path}
    weights = cfg.effective_fusion_weights()
    saved = Path(checkpoint).parent / "val_outputs.npz"
    if own_data and saved.is_file():
        val, val_from = load_outputs(saved), str(saved)
    else:
        val, val_from = run_split(model, data, "val", cfg.activation, weights, dev), "a forward pass over the validation split"
    target = run_split(model, data, split, cfg.activation, weights, dev)
    fixed = metrics_record(target, settings)
    _, chosen = report_val_fusion(val, target, weights)
    chosen["fusion_choice"]["validation_outputs"] = val_from
    return fixed, {**settings, **chosen}
