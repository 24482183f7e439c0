"""The path a trained model is evaluated in (`--precision`), checked on the run's own data, and the record of it.

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
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..method.metrics import multilabel_report
from ..perf.deploy import DeployedModel
from ..perf.inference_path import DEPLOY_TOLERANCE, NEEDS_CALIBRATION, build_path, choose_path, deployable, native_bf16
from .batches import DataBundle, get_batch, run_split
from .config import TrainConfig

#: Training images the int8 observers see (`benchmarks/check_deploy.py`'s default too).
CALIBRATION_IMAGES = 256


def calibration_batches(
    data: DataBundle, device: torch.device, n: int = CALIBRATION_IMAGES, batch_size: int = 32
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first `n` training images as model inputs (normalised, landmarks) for int8 calibration; never val or test."""
    idx = torch.as_tensor(np.asarray(data.splits["train"])[:n], dtype=torch.long)
    batches = (get_batch(data, idx[s : s + batch_size], device) for s in range(0, len(idx), batch_size))
    return [(b.images, b.landmarks) for b in batches]


def bf16_check(
    model: torch.nn.Module, data: DataBundle, cfg: TrainConfig, device: torch.device, split: str = "val"
) -> dict[str, Any]:
    """micro-F1 of the fused output on `split`, fp32 vs bf16 (both with folded BatchNorm), and whether bf16 is within
    the limit."""
    labels = data.prepared.labels[data.splits[split]]
    f1 = {}
    for path in ("fp32", "bf16"):
        outputs = run_split(
            build_path(model, path), data, split, cfg.activation, cfg.effective_fusion_weights(), device
        )
        f1[path] = float(multilabel_report(labels, outputs["fused_probs"])["micro_f1"])
    change = f1["bf16"] - f1["fp32"]
    return {
        "split": split,
        "n_images": int(len(labels)),
        "micro_f1_fp32": f1["fp32"],
        "micro_f1_bf16": f1["bf16"],
        "micro_f1_change": change,
        "tolerance": DEPLOY_TOLERANCE,
        "passed": bool(abs(change) <= DEPLOY_TOLERANCE),
    }


def recorded_bf16_check(checkpoint: str | Path) -> dict[str, Any] | None:
    """The bf16 check the run's `metrics.json` beside `checkpoint` records (None if it records none)."""
    path = Path(checkpoint).parent / "metrics.json"
    try:
        record = json.loads(path.read_text(encoding="utf-8")).get("inference") or {}
    except (OSError, ValueError, AttributeError):
        return None
    check = record.get("bf16_check")
    return check if isinstance(check, dict) and "passed" in check else None


def inference_model(
    model: torch.nn.Module,
    cfg: TrainConfig,
    device: torch.device,
    precision: str = "auto",
    data: DataBundle | None = None,
    checkpoint: str | Path | None = None,
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """(the model in its evaluation path, the record of that path) for a trained `model` on `device`.

    `data`: labelled data for the bf16 check (its validation split) and int8 calibration (its
    training split); without it (predict), the check recorded beside `checkpoint` is used, if any.
    """

    def check() -> dict[str, Any] | None:
        if data is not None:
            return bf16_check(model, data, cfg, device)
        return recorded_bf16_check(checkpoint) if checkpoint is not None else None

    if isinstance(model, DeployedModel):  # already in a deploy path (e.g. a lesson passes one in): used as it is
        return model, {
            "requested": precision,
            "device": device.type,
            "path": model.method,
            "reason": "the model given is already a deploy copy",
        }
    native = native_bf16() if device.type == "cpu" else (False, "not a CPU")
    record = choose_path(precision, device, deployable(model), native, check)
    calibration = (
        calibration_batches(data, device) if data is not None and record["path"] in NEEDS_CALIBRATION else None
    )
    return build_path(model, record["path"], calibration), record
