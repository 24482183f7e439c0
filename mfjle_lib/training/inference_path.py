"""Running a trained model over a split: per-module outputs, loading a checkpoint, its inference path, evaluating it.

A finished model is evaluated in the path `--precision` picks (`perf/inference_path.py`; `auto`:
the fastest accurate one): the end of `train`, `evaluate`, `--fusion-weights val`, `predict` and the
lessons all go through `inference_model`. The per-epoch validation of training runs the eager model
(its weights change every epoch; a deploy copy would be rebuilt each time for nothing).

bf16 needs an accuracy check before `auto` takes it. With labelled data (train, evaluate) the check
runs on the validation split: fp32 and bf16 micro-F1 of the fused output, within
`DEPLOY_TOLERANCE`. `predict` has no labels: it takes bf16 only when the run's `metrics.json` beside
the checkpoint records a passing check (written at the end of `train` on a CPU with native bf16),
else fp32.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .. import __version__
from ..constants import EMOTIONS
from ..errors import CheckpointError, ConfigError
from ..evaluation.metrics import multilabel_report
from ..evaluation.outputs import metrics_record, with_probabilities
from ..models.build import model_spec
from ..models.fusion import check_fusion_weights
from ..perf.deploy import DeployedModel
from ..perf.inference_path import DEPLOY_TOLERANCE, NEEDS_CALIBRATION, build_path, choose_path, deployable, native_bf16
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


def evaluate_checkpoint(checkpoint: str | Path, dataset: str | None = None, root: str | None = None, split: str = "test", fusion_weights: Sequence[float] | None = None,
                        device: str | None = None, data: DataBundle | None = None, show_progress: bool = True, precision: str = "auto") -> dict[str, Any]:
    """Nine metrics of a saved model on a split of its dataset (or another dataset), in the `precision` path (recorded as `inference`)."""
    model, cfg = load_trained_model(checkpoint, device)
    cfg = on_dataset(cfg, dataset, root)
    if fusion_weights is not None and not model_spec(cfg.model).has_locals:
        raise ConfigError(f"--fusion-weights applies to a model with local nets; this checkpoint is {cfg.model}")
    weights = tuple(float(w) for w in check_fusion_weights(fusion_weights).tolist()) if fusion_weights is not None else cfg.effective_fusion_weights()
    dev = next(model.parameters()).device
    data = data or load_data(cfg, dev, show_progress)
    if split not in data.splits:
        raise ConfigError(f"--split must be train, val or test, got {split!r}")
    model, path = inference_model(model, cfg, dev, precision, data)
    return metrics_record(run_split(model, data, split, cfg.activation, weights, dev), {**settings_record(cfg, split), "inference": path})


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


#: Training images the int8 observers see (`benchmarks/check_deploy.py`'s default too).
CALIBRATION_IMAGES = 256


def calibration_batches(data: DataBundle, device: torch.device, n: int = CALIBRATION_IMAGES, batch_size: int = 32) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first `n` training images as model inputs (normalised, landmarks), for int8 calibration: never val or test."""
    idx = torch.as_tensor(np.asarray(data.splits["train"])[:n], dtype=torch.long)
    batches = (get_batch(data, idx[s:s + batch_size], device) for s in range(0, len(idx), batch_size))
    return [(b.images, b.landmarks) for b in batches]


def bf16_check(model: torch.nn.Module, data: DataBundle, cfg: TrainConfig, device: torch.device, split: str = "val") -> dict[str, Any]:
    """micro-F1 of the fused output on `split`, fp32 vs bf16 (both with folded BatchNorm), and whether bf16 is within the limit."""
    labels = data.prepared.labels[data.splits[split]]
    f1 = {}
    for path in ("fp32", "bf16"):
        outputs = run_split(build_path(model, path), data, split, cfg.activation, cfg.effective_fusion_weights(), device)
        f1[path] = float(multilabel_report(labels, outputs["fused_probs"])["micro_f1"])
    change = f1["bf16"] - f1["fp32"]
    return {"split": split, "n_images": int(len(labels)), "micro_f1_fp32": f1["fp32"], "micro_f1_bf16": f1["bf16"],
            "micro_f1_change": change, "tolerance": DEPLOY_TOLERANCE, "passed": bool(abs(change) <= DEPLOY_TOLERANCE)}


def recorded_bf16_check(checkpoint: str | Path) -> dict[str, Any] | None:
    """The bf16 check the run's `metrics.json` beside `checkpoint` records (None if it records none)."""
    path = Path(checkpoint).parent / "metrics.json"
    try:
        record = json.loads(path.read_text(encoding="utf-8")).get("inference") or {}
    except (OSError, ValueError, AttributeError):
        return None
    check = record.get("bf16_check")
    return check if isinstance(check, dict) and "passed" in check else None


def inference_model(model: torch.nn.Module, cfg: TrainConfig, device: torch.device, precision: str = "auto",
                    data: DataBundle | None = None, checkpoint: str | Path | None = None) -> tuple[torch.nn.Module, dict[str, Any]]:
    """(the model in its evaluation path, the record of that path) for a trained `model` on `device`.

    `data`: labelled data for the bf16 check (its validation split) and int8 calibration (its
    training split); without it (predict), the check recorded beside `checkpoint` is used, if any.
    """
    def check() -> dict[str, Any] | None:
        if data is not None:
            return bf16_check(model, data, cfg, device)
        return recorded_bf16_check(checkpoint) if checkpoint is not None else None

    if isinstance(model, DeployedModel):  # already in a deploy path (e.g. a lesson passes one in): used as it is
        return model, {"requested": precision, "device": device.type, "path": model.method, "reason": "the model given is already a deploy copy"}
    native = native_bf16() if device.type == "cpu" else (False, "not a CPU")
    record = choose_path(precision, device, deployable(model), native, check)
    calibration = calibration_batches(data, device) if data is not None and record["path"] in NEEDS_CALIBRATION else None
    return build_path(model, record["path"], calibration), record
