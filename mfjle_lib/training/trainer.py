"""`train()`: set up, epochs, selection on validation, test evaluation, outputs on disk.

Laid out like torchvision's reference classification script: `train_one_epoch` and `validate`
live in `loop.py`, the run's setup in `setup.py`, selection and resume in `resume.py`; `train`
below reads top to bottom.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..evaluation.outputs import metrics_record, save_outputs
from ..files import atomic_write_text, json_safe
from ..perf.allocator import keep_freed_memory
from ..runtime import get_device, seed_everything
from .batches import DataBundle, check_data_matches, load_data, on_device
from .checkpoints import load_checkpoint, save_checkpoint
from .config import TrainConfig
from .distributed import DistContext, current
from .inference import inference_model, run_split, settings_record
from .init_from import apply_init, init_record, plan_init
from .loop import epoch_line, history_columns, history_row, train_one_epoch, validate, write_history
from .resume import Selection, kept_history, read_resume_state, restore, save_resume_state
from .run_dir import claim_out_dir, drop_old_run
from .setup import build_training, canonical_state, load_canonical_state, resolve_settings


@dataclass
class TrainResult:
    """What `train` returns: paths, test metrics, history, and the config as run (its 'auto' settings decided)."""

    out_dir: Path
    metrics: dict[str, Any]
    history: pd.DataFrame
    config: TrainConfig


def train(cfg: TrainConfig, out_dir: str | Path, resume: bool = False, data: DataBundle | None = None, show_progress: bool = True, overwrite: bool = False,
          dist: DistContext | None = None, save_every_s: float = 0.0) -> TrainResult:
    """Train `cfg.model` on `cfg.dataset`, select on validation, evaluate on test, write outputs.

    `resume` continues from `out_dir/last.pt` when there is one (the same settings; `epochs` may
    differ); `overwrite` replaces a run already in `out_dir`, which is otherwise refused (`run_dir.py`).
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
        replaced = claim_out_dir(out_dir, resume, overwrite)  # ... and a run already in out_dir is not silently replaced
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
            weights = canonical_state(parts.model)
            if save_every_s > 0:  # kept until the next write, while training moves the live weights on
                weights = {k: v.detach().clone() for k, v in weights.items()}
            pending = (weights, {"epoch": epoch, "val_score": val.score, "val_loss": val.loss, "geometry": cfg.geometry()})
        history.append(history_row(epoch, lr, time.time() - t0, stats, val, selected))
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


def finish_run(model: torch.nn.Module, cfg: TrainConfig, data: DataBundle, out_dir: Path, device: torch.device, best_epoch: int, world_size: int = 1) -> dict[str, Any]:
    """Reload the selected weights, evaluate on test, write metrics.json, val_outputs.npz and test_outputs.npz.

    Evaluated in the default inference path (`inference_model`), recorded as `inference` in
    metrics.json and `inference_path` in the npz files; the per-epoch validation ran the eager model.

    `world_size`: how many processes trained the run (torchrun), recorded in metrics.json.
    """
    state = load_checkpoint(out_dir / "checkpoint.pt")
    load_canonical_state(model, state["model_state"])
    evaluated, path = inference_model(model, cfg, device, data=data)  # the path `evaluate` takes by default
    outputs = {}
    for split in ("val", "test"):  # validation outputs too: choosing a fusion later needs no forward pass
        outputs[split] = {**run_split(evaluated, data, split, cfg.activation, cfg.effective_fusion_weights(), device), "inference_path": np.asarray(path["path"])}
        save_outputs(out_dir / f"{split}_outputs.npz", outputs[split])
    metrics = metrics_record(outputs["test"], {**settings_record(cfg, "test", best_epoch), "inference": path})
    metrics["n_train"], metrics["n_val"] = int(len(data.splits["train"])), int(len(data.splits["val"]))
    metrics["world_size"] = int(world_size)
    metrics["cpu_threads"] = torch.get_num_threads()  # the CPU's summation order, and so the rounding, depends on it
    atomic_write_text(out_dir / "metrics.json", json.dumps(json_safe(metrics), indent=2))
    return metrics


def _announce(out_dir: Path, resume: bool, resumed: bool, finished: bool, start_epoch: int, show_progress: bool) -> None:
    """Say whether a resume found its state (a run that was finished is only re-evaluated)."""
    if not (resume and show_progress):
        return
    if not resumed:
        print(f"no last.pt in {out_dir.name} yet: starting from scratch", flush=True)
    else:
        print(f"reusing the finished run in {out_dir}" if finished else f"resuming {out_dir} from epoch {start_epoch - 1}", flush=True)
