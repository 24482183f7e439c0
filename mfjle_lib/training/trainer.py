"""`train()`: one run top to bottom (paper Section IV.B's recipe around Algorithm 1), with selection on validation and
the test evaluation.

Laid out like torchvision's reference classification script: `train` reads top to bottom; below it
come the parts it calls in order: `train_one_epoch`, its `train_step` (Algorithm 1's plain step from
`mfjle_lib.method`, with the run's precision, loss scaling and several-GPU weighting around it),
`validate`, the selection of an epoch, and `finish_run`. How the run is set up (its 'auto' settings,
the model in its faster form, Adam) is in `setup.py`; what it writes (its folder, checkpoint.pt,
last.pt, history.csv) in `run_files.py`.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..constants import NUM_LANDMARKS
from ..errors import TrainingDiverged
from ..evaluation.outputs import metrics_record, save_outputs
from ..files import atomic_write_text, json_safe
from ..method.fusion import MODULE_NAMES
from ..method.losses import joint_loss
from ..method.metrics import multilabel_report
from ..method.models import ModelOutput
from ..method.step import train_step as plain_train_step
from ..perf.allocator import keep_freed_memory
from ..runtime import get_device, progress, seed_everything
from .batches import Batch, DataBundle, check_data_matches, get_batch, load_data, on_device, run_split
from .config import TrainConfig, settings_record
from .distributed import DistContext, current, single
from .inference_path import inference_model
from .init_from import apply_init, init_record, plan_init
from .run_files import (
    Selection,
    claim_out_dir,
    drop_old_run,
    history_columns,
    history_row,
    kept_history,
    load_checkpoint,
    read_resume_state,
    restore,
    save_checkpoint,
    save_resume_state,
    write_history,
)
from .setup import RunForward, RunOptimizer, TrainingParts, build_training, resolve_settings

#: Steps between loss updates of the progress bar. Each update is a host sync, so it happens only
#: while a bar is shown, and rarely: the epoch's losses are otherwise read once, at its end.
LOSS_EVERY = 25


@dataclass
class TrainResult:
    """What `train` returns: paths, test metrics, history, and the config as run (its 'auto' settings decided)."""

    out_dir: Path
    metrics: dict[str, Any]
    history: pd.DataFrame
    config: TrainConfig


def train(
    cfg: TrainConfig,
    out_dir: str | Path,
    resume: bool = False,
    data: DataBundle | None = None,
    show_progress: bool = True,
    overwrite: bool = False,
    dist: DistContext | None = None,
    save_every_s: float = 0.0,
) -> TrainResult:
    """Train `cfg.model` on `cfg.dataset`, select on validation, evaluate on test, write outputs.

    `resume` continues from `out_dir/last.pt` when there is one (the same settings; `epochs` may
    differ); `overwrite` replaces a run already in `out_dir`, which is otherwise refused (`run_files.py`).
    `data` reuses an already-loaded DataBundle (notebooks train several models on one dataset).
    `dist` places this process in a torchrun launch (`distributed.py`; default: the process group
    already created, if any, else one process): rank 0 alone validates, writes and prints; the
    other ranks train their parts of each batch and return empty metrics.
    `save_every_s` > 0 writes `last.pt` (and a newly selected `checkpoint.pt`) at most that often
    and after the last epoch, instead of after every epoch: on a small dataset an MF-JLE epoch
    takes seconds while its resume state is ~800 MB, so writing it every epoch doubles the run.
    A killed run then resumes from the last write (history cut back to it, same end result).
    """
    dist = dist or current()
    show_progress = show_progress and dist.is_main
    out_dir = Path(out_dir)
    last_path, ckpt_path = out_dir / "last.pt", out_dir / "checkpoint.pt"
    # Before anything is written: every start asked for can deliver (a resumed run starts from last.pt) ...
    plan = None if resume and last_path.exists() else plan_init(cfg)
    replaced = None
    if dist.is_main:  # under torchrun rank 0 alone touches the folder
        replaced = claim_out_dir(
            out_dir, resume, overwrite
        )  # ... and a run already in out_dir is not silently replaced
        out_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(dist.device) if dist.device else get_device(cfg.device)
    state = read_resume_state(last_path, cfg) if resume else None
    # What checkpoints record; under torchrun rank 0's choices on every rank (a timing-based pick could differ).
    cfg = dist.broadcast_object(resolve_settings(cfg, device, state["config"] if state else None))
    if device.type == "cpu":
        keep_freed_memory()  # steps reuse the last step's pages instead of faulting them in again
    seed_everything(cfg.seed, cfg.deterministic)
    if data is None and not dist.is_main:
        dist.barrier()  # rank 0 renders / decodes into the cache first; the others then read it
    if data is not None:
        check_data_matches(data, cfg)
    data = load_data(cfg, device, show_progress) if data is None else on_device(data, device)
    if dist.is_main:
        dist.barrier()
    seed_everything(cfg.seed, cfg.deterministic)  # data preparation may have used the RNG; the model must not notice
    parts = build_training(cfg, device)
    if state is None and plan is not None:
        apply_init(parts.model, plan, cfg.model)  # in place: the fresh optimiser keeps every parameter
    # What the run started from, as recorded (a resumed run keeps its own record).
    init = state["config"].get("init") if state is not None else None
    cfg = replace(cfg, init=init or init_record(getattr(parts.model, "init_source", "random"), plan))
    selection, history, start_epoch = Selection(), [], 1
    if state is not None:
        start_epoch = restore(state, parts, selection)
        history = kept_history(out_dir / "history.csv", start_epoch)
    _announce(out_dir, resume, state is not None, start_epoch > cfg.epochs, start_epoch, show_progress)
    if dist.active:  # DDP around the final model (after restore: it registers the parameters it finds now)
        parts.forward = torch.compile(dist.wrap(parts.model)) if cfg.compile else dist.wrap(parts.model)

    config = cfg.to_dict()
    pending, last_save = None, time.monotonic()  # selected weights not yet on disk (save_every_s > 0)
    for epoch in range(start_epoch, cfg.epochs + 1):
        t0 = time.time()
        lr = parts.optimizer.param_groups[0]["lr"]
        stats = train_one_epoch(parts, data, cfg, device, epoch, ckpt_path, show_progress, dist)
        parts.scheduler.step()
        if not dist.is_main:  # rank 0 validates and writes; the others go on to the next epoch
            continue
        val = validate(parts.model, data, cfg, device, epoch, ckpt_path)
        selected = selection.offer(epoch, val.score, val.loss)
        if selected:
            weights = {k: v.detach().cpu().clone() for k, v in parts.model.state_dict().items()}
            pending = (
                weights,
                {"epoch": epoch, "val_score": val.score, "val_loss": val.loss, "geometry": cfg.geometry()},
            )
        history.append(
            history_row(epoch, lr, time.time() - t0, stats.losses, val.loss, val.report, val.global_micro_f1, selected)
        )
        write_history(out_dir / "history.csv", history)
        if save_every_s <= 0 or epoch == cfg.epochs or time.monotonic() - last_save >= save_every_s:
            if pending is not None:  # the checkpoint first: a last.pt never points past the selected weights on disk
                save_checkpoint(ckpt_path, pending[0], config, pending[1])
                drop_old_run(replaced, show_progress)  # the new run has a checkpoint: the old one can go
                pending, replaced = None, None
            save_resume_state(last_path, parts, config, epoch, selection)
            last_save = time.monotonic()
        if show_progress:
            print(epoch_line(cfg, epoch, stats, val, history[-1]["time_s"], selected), flush=True)

    if not dist.is_main:
        return TrainResult(out_dir, {}, pd.DataFrame(history, columns=history_columns()), cfg)
    metrics = finish_run(parts.model, cfg, data, out_dir, device, selection.best_epoch, dist.world_size)
    return TrainResult(out_dir, metrics, pd.DataFrame(history, columns=history_columns()), cfg)


# ---------------------------------------------------------------------------------------------
# One epoch, one step
# ---------------------------------------------------------------------------------------------


@dataclass
class EpochStats:
    """What one epoch of training reports: mean losses (joint, global, five locals) and skipped steps."""

    losses: list[float]
    skipped: int  # fp16 steps whose gradients overflowed (the GradScaler skipped them)
    steps: int


def accumulation_dtype(device: torch.device) -> torch.dtype:
    """float64 for loss sums (MPS has no float64: float32 there)."""
    return torch.float32 if device.type == "mps" else torch.float64


def train_one_epoch(
    parts: TrainingParts,
    data: DataBundle,
    cfg: TrainConfig,
    device: torch.device,
    epoch: int,
    ckpt_path: Path,
    show_progress: bool = True,
    dist: DistContext | None = None,
) -> EpochStats:
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
    bar = progress(
        range(steps), desc=f"{cfg.model} epoch {epoch}/{cfg.epochs}", disable=None if show_progress else True
    )
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
    summary = torch.cat(
        [sums / count.clamp(min=1), torch.stack([first_bad, skipped, finite_steps]), bad_losses]
    ).tolist()
    k = 2 + NUM_LANDMARKS
    means, (bad_batch, n_skipped, n_finite), bad = summary[:k], summary[k : k + 3], summary[k + 3 :]
    # With fp16 an overflow (gradients, or the loss itself) is the GradScaler's business: it skips
    # the step and lowers its scale. Only an epoch in which no loss was finite has diverged there;
    # in float32/bf16 the first non-finite loss has.
    if bad_batch >= 0 and (not parts.scaler.is_enabled() or n_finite == 0):
        _diverged(epoch, int(bad_batch), bad, ckpt_path)
    return EpochStats(means, int(n_skipped), steps)


def train_step(
    parts: TrainingParts, batch: Batch, cfg: TrainConfig, device: torch.device, weight: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Algorithm 1's plain step (`method.train_step`) as the run takes it; returns the 7 losses (joint, global,
    locals) and whether the gradients were finite.

    Around the plain step, not instead of it: the model it calls runs under the run's autocast and
    hands back float32 logits, the gradient of the joint loss is multiplied by `weight` (under
    torchrun, the factor that makes DDP's average of the ranks' gradients the global batch's,
    `DistContext.loss_weight`) and by the fp16 scaler's scale, and the optimiser it steps unscales,
    checks and lets the scaler skip an overflowed step. In float32 and bf16 on one process all of
    that is the identity. Nothing here waits for the device: the losses stay tensors, and with
    fp16 the fused Adam receives the scaler's overflow flag itself.
    """
    model = RunForward(parts.forward, device, cfg.precision, parts.scaler, weight)
    optimizer = RunOptimizer(parts.optimizer, parts.scaler, parts.model, device)
    total, global_loss, local_losses = plain_train_step(
        model, optimizer, batch.images, batch.landmarks, batch.labels, cfg.lambdas, cfg.loss
    )
    if local_losses is None:
        local_losses = torch.full((NUM_LANDMARKS,), math.nan, device=total.device)
    return torch.cat([total[None], global_loss[None], local_losses]), optimizer.grads_finite


# ---------------------------------------------------------------------------------------------
# Validation, selection, the end of a run
# ---------------------------------------------------------------------------------------------


@dataclass
class Validation:
    """One validation pass: the outputs, the joint loss from the same logits, and the metrics."""

    outputs: dict[
        str, np.ndarray
    ]  # in the saved form (`run_split`): logits, module and fused probabilities, labels, ids
    loss: float
    report: dict[str, float]
    global_micro_f1: float
    score: float  # the config's `select_metric`


@torch.no_grad()
def validate(
    model: torch.nn.Module, data: DataBundle, cfg: TrainConfig, device: torch.device, epoch: int, ckpt_path: Path
) -> Validation:
    """Outputs on the validation split (`run_split`), the joint loss from the same logits, and the metrics."""
    weights = cfg.effective_fusion_weights()
    outputs = run_split(model, data, "val", cfg.activation, weights, device)
    check_finite_outputs(outputs, epoch, ckpt_path)  # before this epoch's weights are saved
    # The loss from the same float32 logits (exact in float64), on the device in its accumulation dtype
    # (cast before the move: MPS has no float64).
    acc = accumulation_dtype(device)
    on_device = {
        k: torch.from_numpy(outputs[k]).to(acc).to(device)
        for k in ("global_logits", "local_logits", "labels")
        if k in outputs
    }
    out = ModelOutput(on_device["global_logits"], on_device.get("local_logits"), cfg.activation, weights)
    loss = float(joint_loss(out, on_device["labels"], cfg.lambdas, cfg.loss)[0])
    report = multilabel_report(outputs["labels"], outputs["fused_probs"])
    global_f1 = multilabel_report(outputs["labels"], outputs["module_probs"][:, 0])["micro_f1"]
    return Validation(outputs, loss, report, float(global_f1), float(report.get(cfg.select_metric, math.nan)))


def finish_run(
    model: torch.nn.Module,
    cfg: TrainConfig,
    data: DataBundle,
    out_dir: Path,
    device: torch.device,
    best_epoch: int,
    world_size: int = 1,
) -> dict[str, Any]:
    """Reload the selected weights, evaluate on test, write metrics.json, val_outputs.npz and test_outputs.npz.

    Evaluated in the default inference path (`inference_model`), recorded as `inference` in
    metrics.json and `inference_path` in the npz files; the per-epoch validation ran the eager model.

    `world_size`: how many processes trained the run (torchrun), recorded in metrics.json.
    """
    model.load_state_dict(load_checkpoint(out_dir / "checkpoint.pt")["model_state"])
    evaluated, path = inference_model(model, cfg, device, data=data)  # the path `evaluate` takes by default
    outputs = {}
    for split in ("val", "test"):  # validation outputs too: choosing a fusion later needs no forward pass
        outputs[split] = {
            **run_split(evaluated, data, split, cfg.activation, cfg.effective_fusion_weights(), device),
            "inference_path": np.asarray(path["path"]),
        }
        save_outputs(out_dir / f"{split}_outputs.npz", outputs[split])
    metrics = metrics_record(outputs["test"], {**settings_record(cfg, "test", best_epoch), "inference": path})
    metrics["n_train"], metrics["n_val"] = int(len(data.splits["train"])), int(len(data.splits["val"]))
    metrics["world_size"] = int(world_size)
    metrics["cpu_threads"] = torch.get_num_threads()  # the CPU's summation order, and so the rounding, depends on it
    atomic_write_text(out_dir / "metrics.json", json.dumps(json_safe(metrics), indent=2))
    return metrics


# ---------------------------------------------------------------------------------------------
# What the run says as it goes
# ---------------------------------------------------------------------------------------------


def epoch_line(cfg: TrainConfig, epoch: int, stats: EpochStats, val: Validation, seconds: float, selected: bool) -> str:
    """The line printed after each epoch ('*' marks a newly selected epoch)."""
    skipped = f"  {stats.skipped} fp16 steps skipped" if stats.skipped else ""
    return (
        f"{cfg.model} epoch {epoch:3d}/{cfg.epochs}  loss {stats.losses[0]:.4f}  val micro-F1 "
        f"{val.report['micro_f1']:.3f}"
        f"  val loss {val.loss:.4f}  {seconds:.1f}s{skipped}" + ("  *" if selected else "")
    )


def _announce(
    out_dir: Path, resume: bool, resumed: bool, finished: bool, start_epoch: int, show_progress: bool
) -> None:
    """Say whether a resume found its state (a run that was finished is only re-evaluated)."""
    if not (resume and show_progress):
        return
    if not resumed:
        print(f"no last.pt in {out_dir.name} yet: starting from scratch", flush=True)
    else:
        print(
            f"reusing the finished run in {out_dir}"
            if finished
            else f"resuming {out_dir} from epoch {start_epoch - 1}",
            flush=True,
        )


def _kept(ckpt_path: Path) -> str:
    return f"; last good checkpoint kept at {ckpt_path}" if ckpt_path.exists() else ""


def _diverged(epoch: int, batch: int, losses: list[float], ckpt_path: Path) -> None:
    """Stop with a message naming the epoch, the batch and the first module whose loss is not finite."""
    bad = next((name for name, v in zip(MODULE_NAMES, losses[1:]) if not math.isfinite(v)), "joint")
    raise TrainingDiverged(
        f"loss became non-finite at epoch {epoch}, batch {batch + 1}, in the {bad} module{_kept(ckpt_path)}"
    )


def check_finite_outputs(outputs: dict[str, np.ndarray], epoch: int, ckpt_path: Path) -> None:
    """Stop when validation logits are NaN/inf (weights blew up in the epoch's last step), naming the module."""
    g = outputs["global_logits"]
    per_module = [g] + (
        [outputs["local_logits"][:, i] for i in range(outputs["local_logits"].shape[1])]
        if "local_logits" in outputs
        else []
    )
    bad = next((name for name, v in zip(MODULE_NAMES, per_module) if not np.isfinite(v).all()), None)
    if bad is not None:
        raise TrainingDiverged(
            f"validation outputs became non-finite after epoch {epoch} in the {bad} module (weights diverged; try a "
            f"lower --lr){_kept(ckpt_path)}"
        )
