"""The path a trained model is evaluated in (`--precision`), checked on the run's own data, and the record of it.

A finished model is evaluated in the path `--precision` picks (`perf/inference_path.py`; `auto`:
the fastest accurate one): the end of `train`, `evaluate`, `--fusion-weights val`, `predict` and the
lessons all go through `inference_model`. The per-epoch validation of training runs the eager model
(its weights change every epoch; a deploy copy would be rebuilt each time for nothing).

A faster path needs an accuracy check before `auto` takes it (`perf/path_check.py`): with labelled
data (train, evaluate) every candidate this CPU runs fast (int8, bf16) is compared with fp32 on a
pool of faces: the run's validation faces, topped up with built-in faces rendered at the run's
size when there are fewer than `POOL_MIN` (`check_pool`). int8 is calibrated on training images
only. `predict` has no data: it takes bf16 only when the run's `metrics.json` beside the checkpoint
records a passing check (written at the end of `train`), and never int8 (nothing to calibrate on).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.synthetic import load_synthetic
from ..evaluation.outputs import fuse_saved, outputs_module_probs
from ..faces.normalise import to_unit_float
from ..method.metrics import multilabel_report
from ..perf.deploy import DeployedModel
from ..perf.inference_path import NEEDS_CALIBRATION, build_path, choose_path, cpu_capabilities, deployable
from ..perf.path_check import POOL_MIN, compare_to_reference, decision_thresholds
from .batches import DataBundle, as_outputs, get_batch, model_input
from .config import TrainConfig

#: Training images the int8 observers see (`benchmarks/check_deploy.py`'s default too).
CALIBRATION_IMAGES = 256

#: The seed of the built-in faces that top up a small pool: one of its own, so they are not by
#: default the faces of a built-in run's own splits (`--synthetic-seed` 0).
POOL_SEED = 4242


def calibration_batches(
    data: DataBundle, device: torch.device, n: int = CALIBRATION_IMAGES, batch_size: int = 32
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first `n` training images as model inputs (normalised, landmarks) for int8 calibration; never val or test."""
    idx = torch.as_tensor(np.asarray(data.splits["train"])[:n], dtype=torch.long)
    batches = (get_batch(data, idx[s : s + batch_size], device) for s in range(0, len(idx), batch_size))
    return [(b.images, b.landmarks) for b in batches]


@dataclass
class CheckPool:
    """The faces a path is checked on: a split of the run's data first (validation), then built-in faces."""

    images: torch.Tensor  # (N,3,R,R) uint8
    landmarks: torch.Tensor  # (N,5,2) float32, pixels of R
    split: str
    n_split: int
    labels: np.ndarray  # (n_split, 6), the split's: micro-F1 is reported on these, for information

    def record(self) -> dict[str, int]:
        """How many faces, and from where (JSON-ready)."""
        n = int(self.images.shape[0])
        built_in = n - self.n_split
        return {
            "faces": n,
            "validation" if self.split == "val" else self.split: self.n_split,
            "built_in": built_in,
            **({"built_in_seed": POOL_SEED} if built_in else {}),
        }


def check_pool(data: DataBundle, split: str = "val", minimum: int = POOL_MIN) -> CheckPool:
    """The faces of `split` of `data`, topped up to `minimum` with built-in faces rendered at its size."""
    idx = np.asarray(data.splits[split])
    rows = torch.as_tensor(idx, dtype=torch.long)
    images = data.images.index_select(0, rows.to(data.images.device)).cpu()
    landmarks = data.landmarks.index_select(0, rows.to(data.landmarks.device)).cpu()
    missing = minimum - len(idx)
    if missing > 0:
        # Always the same `minimum` faces (cached on disk after the first render), of which the first are taken.
        extra = load_synthetic(minimum, int(images.shape[-1]), POOL_SEED).records[:missing]
        images = torch.cat([images, torch.from_numpy(np.stack([r.image for r in extra])).permute(0, 3, 1, 2)])
        landmarks = torch.cat([landmarks, torch.from_numpy(np.stack([r.landmarks for r in extra])).float()])
    return CheckPool(images.contiguous(), landmarks, split, len(idx), data.prepared.labels[idx])


@torch.no_grad()
def fused_probs(
    model: torch.nn.Module, pool: CheckPool, cfg: TrainConfig, device: torch.device, batch_size: int = 64
) -> np.ndarray:
    """(N, 6) float64 fused probabilities of `model` on the pool, with the run's activation and fusion weights."""
    g_all, l_all = [], []
    for s in range(0, pool.images.shape[0], batch_size):
        out = model(
            model_input(to_unit_float(pool.images[s : s + batch_size], device)),
            pool.landmarks[s : s + batch_size].to(device),
        )
        g_all.append(out.global_logits.float())
        if out.local_logits is not None:
            l_all.append(out.local_logits.float())
    probs = outputs_module_probs(as_outputs(torch.cat(g_all), torch.cat(l_all) if l_all else None), cfg.activation)
    return fuse_saved(probs, cfg.effective_fusion_weights()[: probs.shape[1]])


class PathChecks:
    """`check(path)` for `choose_path`: each path against fp32 on one pool; the models it built are kept in `built`."""

    def __init__(self, model: torch.nn.Module, data: DataBundle, cfg: TrainConfig, device: torch.device) -> None:
        self.model, self.data, self.cfg, self.device = model, data, cfg, device
        self.built: dict[str, torch.nn.Module] = {}
        self.pool = check_pool(data)
        self.reference = self.probs("fp32")

    def build(self, path: str) -> torch.nn.Module:
        """The model in `path` (built once; int8 calibrated on training images)."""
        if path not in self.built:
            calibration = calibration_batches(self.data, self.device) if path in NEEDS_CALIBRATION else None
            self.built[path] = build_path(self.model, path, calibration)
        return self.built[path]

    def probs(self, path: str) -> np.ndarray:
        """Fused probabilities of the pool in `path`."""
        return fused_probs(self.build(path), self.pool, self.cfg, self.device)

    def __call__(self, path: str) -> dict[str, Any]:
        """The check of `path` against fp32: flips, changes, verdict, the pool, and validation micro-F1 (for
        information)."""
        probs = self.probs(path)
        n_val, labels = self.pool.n_split, self.pool.labels
        f1 = {
            p: float(multilabel_report(labels, x[:n_val])["micro_f1"])
            for p, x in (("fp32", self.reference), (path, probs))
        }
        return {
            "path": path,
            "reference": "fp32",
            **compare_to_reference(self.reference, probs, decision_thresholds(self.cfg.activation)),
            "pool": self.pool.record(),
            "micro_f1_change": f1[path] - f1["fp32"],
            **(
                {"calibration_images": min(CALIBRATION_IMAGES, len(self.data.splits["train"]))}
                if path in NEEDS_CALIBRATION
                else {}
            ),
        }


def recorded_checks(checkpoint: str | Path) -> dict[str, dict[str, Any]]:
    """The path checks the run's `metrics.json` beside `checkpoint` records ({} if none)."""
    path = Path(checkpoint).parent / "metrics.json"
    try:
        checks = (json.loads(path.read_text(encoding="utf-8")).get("inference") or {}).get("checks") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    # Only checks of today's rule count: an older record's `bf16_check` (micro-F1 within 0.005) measured noise.
    return {
        p: c
        for p, c in checks.items()
        if isinstance(c, dict) and "passed" in c and "decisions_flipped" in c and "max_abs_change" in c
    }


def inference_model(
    model: torch.nn.Module,
    cfg: TrainConfig,
    device: torch.device,
    precision: str = "auto",
    data: DataBundle | None = None,
    checkpoint: str | Path | None = None,
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """(the model in its evaluation path, the record of that path) for a trained `model` on `device`.

    `data`: labelled data for the checks (its validation faces, topped up with built-in ones) and
    int8 calibration (its training split); without it (predict), the checks recorded beside
    `checkpoint` are used, if any, and int8 is not taken.
    """
    if isinstance(model, DeployedModel):  # already in a deploy path (e.g. a lesson passes one in): used as it is
        return model, {
            "requested": precision,
            "device": device.type,
            "path": model.method,
            "reason": "the model given is already a deploy copy",
        }
    capable = cpu_capabilities() if device.type == "cpu" else {}
    checks: PathChecks | None = None

    def check(path: str) -> dict[str, Any] | None:
        nonlocal checks
        if data is not None:
            checks = checks or PathChecks(model, data, cfg, device)
            return checks(path)
        # No data: no calibration images, so int8 is never taken here, whatever was recorded.
        recorded = recorded_checks(checkpoint) if checkpoint is not None else {}
        return None if path in NEEDS_CALIBRATION else recorded.get(path)

    record = choose_path(precision, device, deployable(model), capable, check)
    if checks is not None and record["path"] in checks.built:
        return checks.built[record["path"]], record
    calibration = (
        calibration_batches(data, device) if data is not None and record["path"] in NEEDS_CALIBRATION else None
    )
    return build_path(model, record["path"], calibration), record
