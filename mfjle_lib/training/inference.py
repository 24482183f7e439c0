"""Running a trained model over a split: per-module outputs, loading a checkpoint, evaluating it."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .. import __version__
from ..constants import EMOTIONS
from ..errors import CheckpointError, ConfigError
from ..evaluation.outputs import metrics_record, with_probabilities
from ..models.build import model_spec
from ..models.fusion import check_fusion_weights
from ..perf.memory_format import plan_memory_format
from ..runtime import get_device
from .batches import DataBundle, get_batch, load_data
from .checkpoints import load_checkpoint
from .config import TrainConfig
from .setup import load_canonical_state, model_from_config


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
        raise CheckpointError(f"{checkpoint}: weights do not match the model its config describes ({str(exc).splitlines()[0][:160]})") from None
    model = plan_memory_format(model.to(dev), dev).eval()
    return model, cfg


def evaluate_checkpoint(checkpoint: str | Path, dataset: str | None = None, root: str | None = None, split: str = "test", fusion_weights: Sequence[float] | None = None, device: str | None = None, data: DataBundle | None = None, show_progress: bool = True) -> dict[str, Any]:
    """Nine metrics of a saved model on a split of its dataset (or another dataset)."""
    model, cfg = load_trained_model(checkpoint, device)
    cfg = on_dataset(cfg, dataset, root)
    if fusion_weights is not None and not model_spec(cfg.model).has_locals:
        raise ConfigError(f"--fusion-weights applies to a model with local nets; this checkpoint is {cfg.model}")
    weights = tuple(float(w) for w in check_fusion_weights(fusion_weights).tolist()) if fusion_weights is not None else cfg.effective_fusion_weights()
    dev = next(model.parameters()).device
    data = data or load_data(cfg, dev, show_progress)
    if split not in data.splits:
        raise ConfigError(f"--split must be train, val or test, got {split!r}")
    return metrics_record(run_split(model, data, split, cfg.activation, weights, dev), settings_record(cfg, split))


def on_dataset(cfg: TrainConfig, dataset: str | None, root: str | None) -> TrainConfig:
    """A run's config aimed at another dataset (`--dataset`, read from `--root`) or at another copy of its own (`--root` alone)."""
    if dataset is not None:
        return replace(cfg, dataset=dataset, root=root)
    return cfg if root is None else replace(cfg, root=root)


def settings_record(cfg: TrainConfig, split: str, selected_epoch: int | None = None) -> dict[str, Any]:
    """What a metrics file records about the run beside its numbers: data, model, split, seeds, geometry."""
    return {
        "split": split, "dataset": cfg.dataset, "model": cfg.model, "loss": cfg.loss, "lambdas": list(cfg.lambdas),
        "seed": cfg.seed, "split_scheme": cfg.split_scheme, "split_seed": cfg.split_seed,
        "selected_epoch": selected_epoch, "epochs": cfg.epochs, "preset": cfg.preset, "local_impl": cfg.local_impl,
        "precision": cfg.precision, "deterministic": cfg.deterministic, "init": cfg.init,
        "library_version": __version__, **cfg.geometry(),
    }


@torch.no_grad()
def model_logits(model: torch.nn.Module, data: DataBundle, indices: np.ndarray, device: torch.device, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-module float32 logits (global (N,6), locals (N,5,6) or None) on `device`, in eval mode.

    No autocast: bf16 logits tie in the ranking metrics, make selection noisier and would make a
    CUDA evaluation differ from a CPU one of the same checkpoint.
    """
    was_training = model.training
    model.eval()
    g_all, l_all = [], []
    idx_t = torch.as_tensor(indices, dtype=torch.long)
    for start in range(0, len(idx_t), batch_size):
        batch = get_batch(data, idx_t[start : start + batch_size], device)
        out = model(batch.images, batch.landmarks)
        g_all.append(out.global_logits.float())
        if out.local_logits is not None:
            l_all.append(out.local_logits.float())
    model.train(was_training)
    empty = torch.zeros((0, len(EMOTIONS)), device=device)
    return (torch.cat(g_all) if g_all else empty), (torch.cat(l_all) if l_all else None)


def as_outputs(global_logits: torch.Tensor, local_logits: torch.Tensor | None) -> dict[str, np.ndarray]:
    """Logits as the float64 numpy arrays of the saved-outputs format (`evaluation.outputs`)."""
    result = {"global_logits": global_logits.double().cpu().numpy()}
    if local_logits is not None:
        result["local_logits"] = local_logits.double().cpu().numpy()
    return result


def collect_outputs(model: torch.nn.Module, data: DataBundle, indices: np.ndarray, batch_size: int = 256, device: torch.device | None = None) -> dict[str, np.ndarray]:
    """Per-module logits (float64 numpy, computed in float32) for the given images, in eval mode."""
    device = device or next(model.parameters()).device
    return as_outputs(*model_logits(model, data, indices, device, batch_size))


def run_split(model: torch.nn.Module, data: DataBundle, split: str, activation: str, fusion_weights: Sequence[float],
              device: torch.device | None = None, batch_size: int = 256) -> dict[str, np.ndarray]:
    """A model over one split of `data`, as a run saves it (`*_outputs.npz`): logits, module and fused probabilities, labels, ids.

    The one forward pass over a split: validation, the end of `train`, `evaluate`, `--fusion-weights val`
    and the lessons' re-fusion all come here. Fused once, in float64 (`evaluation.outputs.with_probabilities`).
    """
    idx = data.splits[split]
    logits = collect_outputs(model, data, idx, batch_size, device)
    return with_probabilities(logits, data.prepared.labels[idx], [data.prepared.ids[i] for i in idx], activation, fusion_weights)
