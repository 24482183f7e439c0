"""Evaluate a checkpoint, re-fuse saved outputs, and run the multi-seed reproduction."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .checkpoints import load_checkpoint
from .config import TrainConfig
from .errors import ConfigError
from .metrics import multilabel_metrics
from .models import check_fusion_weights, plan_memory_format
from .runtime import get_device, json_safe
from .training import (DataBundle, collect_outputs, fuse, load_canonical_state, load_data, metrics_record, model_from_config, train)


def load_trained_model(checkpoint: str | Path, device: str | torch.device | None = None) -> tuple[torch.nn.Module, TrainConfig]:
    """Rebuild a model from `checkpoint.pt` (weights_only) and put it in eval mode."""
    payload = load_checkpoint(checkpoint)
    cfg = TrainConfig.from_dict(payload["config"])
    dev = get_device(device if isinstance(device, str) or device is None else str(device))
    cfg.pretrained, cfg.weights = False, None  # the checkpoint carries the weights
    model = model_from_config(cfg, torch.device("cpu"))
    try:
        load_canonical_state(model, payload["model_state"])
    except RuntimeError as exc:
        from .errors import CheckpointError

        raise CheckpointError(f"{checkpoint}: weights do not match the model its config describes ({str(exc).splitlines()[0][:160]})") from None
    model = plan_memory_format(model.to(dev), dev).eval()
    return model, cfg


def evaluate_checkpoint(checkpoint: str | Path, dataset: str | None = None, root: str | None = None, split: str = "test", fusion_weights: Sequence[float] | None = None, device: str | None = None, data: DataBundle | None = None, show_progress: bool = True) -> dict[str, Any]:
    """Nine metrics of a saved model on a split of its dataset (or another dataset)."""
    model, cfg = load_trained_model(checkpoint, device)
    if dataset is not None:
        cfg.dataset, cfg.root = dataset, root
    elif root is not None:
        cfg.root = root
    if cfg.model == "resnet18" and fusion_weights is not None:
        raise ConfigError("--fusion-weights applies to mfjle checkpoints only")
    weights = tuple(float(w) for w in check_fusion_weights(fusion_weights).tolist()) if fusion_weights is not None else None
    dev = next(model.parameters()).device
    data = data or load_data(cfg, dev, show_progress)
    if split not in data.splits:
        raise ConfigError(f"--split must be train, val or test, got {split!r}")
    idx = data.splits[split]
    outputs = collect_outputs(model, data, idx, device=dev, amp=cfg.amp)
    return metrics_record(outputs, data.prepared.labels[idx], cfg, fusion_weights=weights, split=split)


def refuse_outputs(outputs: dict[str, np.ndarray], weights: Sequence[float], threshold: float = 0.5) -> dict[str, float]:
    """Nine metrics of saved per-module probabilities re-fused with other weights (no retraining)."""
    probs = outputs["module_probs"]
    if probs.shape[1] == 1:
        return multilabel_metrics(outputs["labels"], probs[:, 0], threshold)
    return multilabel_metrics(outputs["labels"], fuse(probs, tuple(weights)), threshold)


def reproduce(cfg: TrainConfig, seeds: int, out_dir: str | Path, models: Sequence[str] = ("resnet18", "mfjle"), show_progress: bool = True) -> dict[str, list[dict[str, Any]]]:
    """Train each model over `seeds` seeds (0..seeds-1) on one dataset; return metrics per model."""
    from dataclasses import replace

    out_dir = Path(out_dir)
    dev = get_device(cfg.device)
    data = load_data(cfg, dev, show_progress)
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in models}
    for seed in range(seeds):
        for name in models:
            run_cfg = replace(cfg, model=name, seed=seed)
            run_dir = out_dir / f"{name}_seed{seed}"
            if (run_dir / "metrics.json").exists() and _same_config(run_dir, run_cfg):
                runs[name].append(json.loads((run_dir / "metrics.json").read_text()))
                print(f"reusing {run_dir}")
                continue
            print(f"== {name}, seed {seed} ==", flush=True)
            result = train(run_cfg, run_dir, resume=True, data=data, show_progress=show_progress)
            runs[name].append(result.metrics)
    (out_dir / "reproduce.json").write_text(json.dumps(json_safe({"config": cfg.to_dict(), "runs": runs}), indent=2))
    return runs


def _same_config(run_dir: Path, cfg: TrainConfig) -> bool:
    """True when a finished run in `run_dir` used exactly `cfg` (so it can be reused)."""
    try:
        saved = load_checkpoint(run_dir / "checkpoint.pt")["config"]
    except Exception:
        return False
    return {k: v for k, v in saved.items() if k != "device"} == {k: v for k, v in cfg.to_dict().items() if k != "device"}
