"""One epoch of training and one pass of validation (the loop of paper Section IV.B)."""
from __future__ import annotations

import io
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..constants import METRIC_KEYS, NUM_LANDMARKS
from ..errors import TrainingDiverged
from ..evaluation.metrics import multilabel_report
from ..files import atomic_write_text
from ..models.fusion import MODULE_NAMES, ModelOutput
from ..runtime import progress
from .batches import Batch, DataBundle, get_batch
from .config import TrainConfig
from .distributed import DistContext, single
from .inference import run_split
from .losses import joint_loss
from .precision import autocast_for
from .setup import TrainingParts

#: Steps between loss updates of the progress bar. Each update is a host sync, so it happens only
#: while a bar is shown, and rarely: the epoch's losses are otherwise read once, at its end.
LOSS_EVERY = 25


@dataclass
class EpochStats:
    """What one epoch of training reports: mean losses (joint, global, five locals) and skipped steps."""

    losses: list[float]
    skipped: int  # fp16 steps whose gradients overflowed (the GradScaler skipped them)
    steps: int


@dataclass
class Validation:
    """One validation pass: the outputs, the joint loss from the same logits, and the metrics."""

    outputs: dict[str, np.ndarray]  # in the saved form (`run_split`): logits, module and fused probabilities, labels, ids
    loss: float
    report: dict[str, float]
    global_micro_f1: float
    score: float  # the config's `select_metric`


def accumulation_dtype(device: torch.device) -> torch.dtype:
    """float64 for loss sums (MPS has no float64: float32 there)."""
    return torch.float32 if device.type == "mps" else torch.float64


def train_step(parts: TrainingParts, batch: Batch, cfg: TrainConfig, device: torch.device, weight: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimiser step; returns the 7 losses (joint, global, locals) and whether the gradients were finite.

    `weight` multiplies the loss that is differentiated (not the one returned): under torchrun, the
    factor that makes DDP's average of the ranks' gradients the global batch's (`DistContext.loss_weight`).

    Nothing here waits for the device: the losses stay tensors, and with fp16 the fused Adam
    receives the scaler's overflow flag itself, so skipping a step needs no host sync either.
    """
    with autocast_for(device, cfg.precision):
        out = parts.forward(batch.images, batch.landmarks)
    total, g_loss, l_loss = joint_loss(as_float32(out), batch.labels, cfg.lambdas, cfg.loss)
    parts.optimizer.zero_grad(set_to_none=True)
    parts.scaler.scale(total if weight == 1.0 else total * weight).backward()
    grads_finite = torch.ones((), dtype=torch.bool, device=device)
    if parts.scaler.is_enabled():
        parts.scaler.unscale_(parts.optimizer)
        # Checked after unscaling: an fp16 overflow makes the scaler skip this step and halve its scale.
        grads = [p.grad for p in parts.model.parameters() if p.grad is not None]
        grads_finite = torch.isfinite(torch.nn.utils.get_total_norm(grads))
    parts.scaler.step(parts.optimizer)
    parts.scaler.update()
    locals_ = l_loss.detach() if l_loss is not None else torch.full((NUM_LANDMARKS,), math.nan, device=total.device)
    return torch.cat([total.detach()[None], g_loss.detach()[None], locals_]), grads_finite


def train_one_epoch(parts: TrainingParts, data: DataBundle, cfg: TrainConfig, device: torch.device, epoch: int, ckpt_path: Path, show_progress: bool = True, dist: DistContext | None = None) -> EpochStats:
    """Train over one seeded permutation of the training split; stop with a clear message on a non-finite loss.

    Under torchrun (`dist`), every rank draws the same permutation and trains on its part of each
    global batch (`parts.forward` is then the DDP module); the epoch's loss sums are added over
    the ranks, so every rank returns the global means. A rank that meets a non-finite loss stops
    with the same message as one process, and torchrun then ends the others.
    """
    dist = dist or single()
    parts.model.train()
    train_idx = torch.as_tensor(data.splits["train"], dtype=torch.long)
    perm = train_idx[torch.randperm(len(train_idx), generator=parts.generator)]
    n_used = dist.usable(len(perm), cfg.batch_size)  # a last batch smaller than the world is left out
    steps = math.ceil(n_used / cfg.batch_size)
    acc = accumulation_dtype(device)
    sums = torch.zeros(2 + NUM_LANDMARKS, dtype=acc, device=device)
    count, finite_steps, skipped = (torch.zeros((), dtype=acc, device=device) for _ in range(3))
    first_bad = torch.full((), -1.0, dtype=acc, device=device)  # the first batch with a non-finite loss
    bad_losses = torch.zeros(2 + NUM_LANDMARKS, dtype=acc, device=device)
    bar = progress(range(steps), desc=f"{cfg.model} epoch {epoch}/{cfg.epochs}", disable=None if show_progress else True)
    for b in bar:
        global_idx = perm[b * cfg.batch_size : min((b + 1) * cfg.batch_size, n_used)]
        idx = dist.shard(global_idx)
        batch = get_batch(data, idx, device, parts.generator if cfg.augment else None, rows=dist.rows(len(global_idx)))
        losses, grads_finite = train_step(parts, batch, cfg, device, dist.loss_weight(len(idx), len(global_idx)))
        losses = losses.to(acc)
        finite = torch.isfinite(losses[0])  # the joint loss is non-finite when any module's is
        n = len(batch.labels)
        sums += torch.where(finite, losses * n, 0.0)
        count += finite * n
        finite_steps += finite
        skipped += ~grads_finite
        new_bad = ~finite & (first_bad < 0)
        first_bad = torch.where(new_bad, b, first_bad)
        bad_losses = torch.where(new_bad, losses, bad_losses)
        if not getattr(bar, "disable", True) and (b + 1) % LOSS_EVERY == 0:
            bar.set_postfix(loss=f"{float(sums[0] / count.clamp(min=1)):.4f}")
    if dist.active:  # the global sums and count: one collective an epoch
        reduced = dist.all_reduce_sum(torch.cat([sums, count[None]]))
        sums, count = reduced[:-1], reduced[-1]
    # The one host sync of the epoch: means, the first bad batch, skipped steps, that batch's losses.
    summary = torch.cat([sums / count.clamp(min=1), torch.stack([first_bad, skipped, finite_steps]), bad_losses]).tolist()
    k = 2 + NUM_LANDMARKS
    means, (bad_batch, n_skipped, n_finite), bad = summary[:k], summary[k : k + 3], summary[k + 3 :]
    # With fp16 an overflow (gradients, or the loss itself) is the GradScaler's business: it skips
    # the step and lowers its scale. Only an epoch in which no loss was finite has diverged there;
    # in float32/bf16 the first non-finite loss has.
    if bad_batch >= 0 and (not parts.scaler.is_enabled() or n_finite == 0):
        _diverged(epoch, int(bad_batch), bad, ckpt_path)
    return EpochStats(means, int(n_skipped), steps)


@torch.no_grad()
def validate(model: torch.nn.Module, data: DataBundle, cfg: TrainConfig, device: torch.device, epoch: int, ckpt_path: Path) -> Validation:
    """Outputs on the validation split (`run_split`), the joint loss from the same logits, and the metrics."""
    weights = cfg.effective_fusion_weights()
    outputs = run_split(model, data, "val", cfg.activation, weights, device)
    check_finite_outputs(outputs, epoch, ckpt_path)  # before this epoch's weights are saved
    # The loss from the same float32 logits (exact in float64), on the device in its accumulation dtype
    # (cast before the move: MPS has no float64).
    acc = accumulation_dtype(device)
    on_device = {k: torch.from_numpy(outputs[k]).to(acc).to(device) for k in ("global_logits", "local_logits", "labels") if k in outputs}
    out = ModelOutput(on_device["global_logits"], on_device.get("local_logits"), cfg.activation, weights)
    loss = float(joint_loss(out, on_device["labels"], cfg.lambdas, cfg.loss)[0])
    report = multilabel_report(outputs["labels"], outputs["fused_probs"])
    global_f1 = multilabel_report(outputs["labels"], outputs["module_probs"][:, 0])["micro_f1"]
    return Validation(outputs, loss, report, float(global_f1), float(report.get(cfg.select_metric, math.nan)))


def as_float32(out: ModelOutput) -> ModelOutput:
    """Losses in float32 even under autocast (BCE on bf16/fp16 logits loses precision)."""
    if out.global_logits.dtype == torch.float32:
        return out
    return replace(out, global_logits=out.global_logits.float(), local_logits=None if out.local_logits is None else out.local_logits.float())


def history_columns() -> list[str]:
    """Columns of `history.csv`, in order."""
    return (["epoch", "lr", "time_s", "train_loss", "train_loss_global"] + [f"train_loss_local{i + 1}" for i in range(NUM_LANDMARKS)]
            + ["val_loss"] + [f"val_{k}" for k in METRIC_KEYS] + ["val_micro_f1_global", "selected"])


def history_row(epoch: int, lr: float, seconds: float, stats: EpochStats, val: Validation, selected: bool) -> dict[str, Any]:
    """One row of `history.csv`."""
    row: dict[str, Any] = {"epoch": epoch, "lr": lr, "time_s": round(seconds, 3), "train_loss": stats.losses[0], "train_loss_global": stats.losses[1]}
    row.update({f"train_loss_local{i + 1}": stats.losses[2 + i] for i in range(NUM_LANDMARKS)})
    row.update({"val_loss": val.loss, **{f"val_{k}": val.report[k] for k in METRIC_KEYS}, "val_micro_f1_global": val.global_micro_f1, "selected": int(selected)})
    return row


def write_history(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write `history.csv` atomically."""
    buf = io.StringIO()
    pd.DataFrame(rows, columns=history_columns()).to_csv(buf, index=False)
    atomic_write_text(path, buf.getvalue())


def epoch_line(cfg: TrainConfig, epoch: int, stats: EpochStats, val: Validation, seconds: float, selected: bool) -> str:
    """The line printed after each epoch ('*' marks a newly selected epoch)."""
    skipped = f"  {stats.skipped} fp16 steps skipped" if stats.skipped else ""
    return (f"{cfg.model} epoch {epoch:3d}/{cfg.epochs}  loss {stats.losses[0]:.4f}  val micro-F1 {val.report['micro_f1']:.3f}"
            f"  val loss {val.loss:.4f}  {seconds:.1f}s{skipped}" + ("  *" if selected else ""))


def _kept(ckpt_path: Path) -> str:
    return f"; last good checkpoint kept at {ckpt_path}" if ckpt_path.exists() else ""


def _diverged(epoch: int, batch: int, losses: list[float], ckpt_path: Path) -> None:
    """Stop with a message naming the epoch, the batch and the first module whose loss is not finite."""
    bad = next((name for name, v in zip(MODULE_NAMES, losses[1:]) if not math.isfinite(v)), "joint")
    raise TrainingDiverged(f"loss became non-finite at epoch {epoch}, batch {batch + 1}, in the {bad} module{_kept(ckpt_path)}")


def check_finite_outputs(outputs: dict[str, np.ndarray], epoch: int, ckpt_path: Path) -> None:
    """Stop when validation logits are NaN/inf (weights blew up in the epoch's last step), naming the module."""
    g = outputs["global_logits"]
    per_module = [g] + ([outputs["local_logits"][:, i] for i in range(outputs["local_logits"].shape[1])] if "local_logits" in outputs else [])
    bad = next((name for name, v in zip(MODULE_NAMES, per_module) if not np.isfinite(v).all()), None)
    if bad is not None:
        raise TrainingDiverged(f"validation outputs became non-finite after epoch {epoch} in the {bad} module (weights diverged; try a lower --lr){_kept(ckpt_path)}")
