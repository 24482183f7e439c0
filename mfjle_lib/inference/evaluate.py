"""A finished run: its model rebuilt from `checkpoint.pt`, evaluated on a split (`evaluate`), with the fusion chosen
on validation (`--fusion-weights val`).

The choice itself is `evaluation.fusion_choice.choose_fusion` (pure, validation arrays only).
`--fusion-weights val` finds the validation outputs in a run's saved `val_outputs.npz` (no forward
pass), or, for another dataset than the run's, in a forward pass over that dataset's validation split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError, ConfigError
from ..evaluation.fusion_choice import report_val_fusion
from ..evaluation.outputs import load_outputs, metrics_record
from ..method.fusion import check_fusion_weights
from ..models.registry import model_spec
from ..perf.optimize import optimize
from ..runtime import get_device
from ..training.batches import DataBundle, load_data, run_split
from ..training.config import TrainConfig, model_from_config, settings_record
from ..training.inference_path import inference_model
from ..training.run_files import load_checkpoint


def load_trained_model(
    checkpoint: str | Path, device: str | torch.device | None = None
) -> tuple[torch.nn.Module, TrainConfig]:
    """Rebuild a model from `checkpoint.pt` (weights_only), in its trained local-net form and eval mode."""
    payload = load_checkpoint(checkpoint)
    cfg = TrainConfig.from_dict(payload["config"])
    dev = get_device(device if isinstance(device, str) or device is None else str(device))
    cfg.pretrained, cfg.weights = False, None  # the checkpoint carries the weights
    model = model_from_config(cfg, torch.device("cpu"))
    try:
        model.load_state_dict(payload["model_state"])
    except RuntimeError as exc:
        raise CheckpointError(
            f"{checkpoint}: weights do not match the model its config describes ({str(exc).splitlines()[0][:160]})"
        ) from None
    # The form it trained in (recorded), laid out for `dev`: the speed the trainer had, the same weights.
    return optimize(model.to(dev), dev, cfg.local_impl).eval(), cfg


def evaluate_checkpoint(
    checkpoint: str | Path,
    dataset: str | None = None,
    root: str | None = None,
    split: str = "test",
    fusion_weights: Sequence[float] | None = None,
    device: str | None = None,
    data: DataBundle | None = None,
    show_progress: bool = True,
    precision: str = "auto",
) -> dict[str, Any]:
    """Nine metrics of a saved model on a split of its dataset (or another dataset), in the `precision` path (recorded
    as `inference`)."""
    model, cfg = load_trained_model(checkpoint, device)
    cfg = on_dataset(cfg, dataset, root)
    if fusion_weights is not None and not model_spec(cfg.model).has_locals:
        raise ConfigError(f"--fusion-weights applies to a model with local nets; this checkpoint is {cfg.model}")
    weights = (
        tuple(float(w) for w in check_fusion_weights(fusion_weights).tolist())
        if fusion_weights is not None
        else cfg.effective_fusion_weights()
    )
    dev = next(model.parameters()).device
    data = data or load_data(cfg, dev, show_progress)
    if split not in data.splits:
        raise ConfigError(f"--split must be train, val or test, got {split!r}")
    model, path = inference_model(model, cfg, dev, precision, data)
    return metrics_record(
        run_split(model, data, split, cfg.activation, weights, dev), {**settings_record(cfg, split), "inference": path}
    )


def on_dataset(cfg: TrainConfig, dataset: str | None, root: str | None) -> TrainConfig:
    """A run's config aimed at another dataset (`--dataset`, read from `--root`) or at another copy of its own
    (`--root` alone)."""
    if dataset is not None:
        return replace(cfg, dataset=dataset, root=root)
    return cfg if root is None else replace(cfg, root=root)


def run_val_fusion(run_dir: str | Path, paper_weights: Sequence[float]) -> dict[str, Any]:
    """Choose on a finished run's `val_outputs.npz`; the test metrics of the choice on its `test_outputs.npz`."""
    run_dir = Path(run_dir)
    val_path, test_path = run_dir / "val_outputs.npz", run_dir / "test_outputs.npz"
    if not val_path.is_file():
        raise ConfigError(
            f"{val_path}: missing; --fusion-weights val needs the run's validation outputs (rerun it with this version)"
        )
    return report_val_fusion(load_outputs(val_path), load_outputs(test_path), paper_weights)[1]


def evaluate_val_fusion(
    checkpoint: str | Path,
    dataset: str | None = None,
    root: str | None = None,
    split: str = "test",
    device: str | None = None,
    show_progress: bool = True,
    precision: str = "auto",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(metrics with the checkpoint's own fusion, metrics with the fusion chosen on validation) on `split`.

    Validation outputs come from `val_outputs.npz` beside the checkpoint when the split is of the
    run's own data (no forward pass), else from a forward pass over the validation split; forward
    passes run in the `precision` path (`inference_model`), recorded as `inference`.
    """
    if split == "val":
        raise ConfigError(
            "--fusion-weights val chooses on the validation split: evaluate it on --split test (or train)"
        )
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
        val, val_from = (
            run_split(model, data, "val", cfg.activation, weights, dev),
            "a forward pass over the validation split",
        )
    target = run_split(model, data, split, cfg.activation, weights, dev)
    fixed = metrics_record(target, settings)
    _, chosen = report_val_fusion(val, target, weights)
    chosen["fusion_choice"]["validation_outputs"] = val_from
    return fixed, {**settings, **chosen}
