"""`train()`: set up, epochs, selection on validation, test evaluation, outputs on disk."""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..constants import NUM_LANDMARKS
from ..errors import ConfigError
from ..evaluation.metrics import multilabel_report
from ..evaluation.outputs import fuse_saved, metrics_record, outputs_module_probs, save_outputs, with_probabilities
from ..files import atomic_write_text, json_safe
from ..perf.allocator import keep_freed_memory
from ..perf.memory_format import plan_memory_format
from ..runtime import get_device, progress, seed_everything
from .augment import augment_batch
from .batches import DataBundle, imagenet_normalise, load_data, normalise
from .checkpoints import RESUME_FORMAT, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .inference import collect_outputs, settings_record
from .loop import _check_finite_outputs, _diverged, _float, _history_columns, _metric_keys, _val_loss, _write_history
from .losses import joint_loss
from .precision import autocast_for
from .resume import _rng_state, _set_rng_state
from .setup import canonical_state, load_canonical_state, make_adam, model_from_config


@dataclass
class TrainResult:
    """What `train` returns: paths, test metrics, history."""

    out_dir: Path
    metrics: dict[str, Any]
    history: pd.DataFrame
    config: TrainConfig


def train(cfg: TrainConfig, out_dir: str | Path, resume: bool = False, data: DataBundle | None = None, show_progress: bool = True, stop_after_epoch: int | None = None) -> TrainResult:
    """Train `cfg.model` on `cfg.dataset`, select on validation, evaluate on test, write outputs.

    `data` reuses an already-loaded DataBundle (notebooks train several models on one dataset).
    `stop_after_epoch` ends the run early as if killed (used by the resume tests).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = get_device(cfg.device)
    if device.type == "cpu":
        keep_freed_memory()  # steps reuse the last step's pages instead of faulting them in again
    seed_everything(cfg.seed)
    if data is None:
        data = load_data(cfg, device, show_progress)
    seed_everything(cfg.seed)  # data preparation may have used the RNG; the model must not notice
    model = plan_memory_format(model_from_config(cfg, device), device)
    optimizer = make_adam(model, cfg.lr, device, tuple(cfg.betas))
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
    gen = torch.Generator().manual_seed(cfg.seed)
    history: list[dict[str, Any]] = []
    start_epoch, best_key, best_epoch = 1, None, 0
    last_path, ckpt_path = out_dir / "last.pt", out_dir / "checkpoint.pt"
    config_dict = cfg.to_dict()

    if resume and last_path.exists():
        state = load_checkpoint(last_path, kind=RESUME_FORMAT)
        saved = {k: v for k, v in state["config"].items() if k not in ("epochs", "device")}
        now = {k: v for k, v in config_dict.items() if k not in ("epochs", "device")}
        if saved != now:
            diff = sorted(k for k in now if saved.get(k) != now.get(k))
            raise ConfigError(f"{last_path}: cannot resume, the run used different settings ({', '.join(diff)})")
        load_canonical_state(model, state["model_state"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        _set_rng_state(gen, state["rng"])
        start_epoch = int(state["epoch"]) + 1
        best_key = tuple(state["best_key"].tolist()) if state.get("best_key") is not None else None
        best_epoch = int(state.get("best_epoch", 0))
        if (out_dir / "history.csv").exists():
            # Cut history back to the resumed epoch: later rows came from the interrupted run.
            old = pd.read_csv(out_dir / "history.csv")
            history = old[old["epoch"] < start_epoch].to_dict("records")
        if show_progress:
            done = start_epoch > cfg.epochs
            print(f"reusing the finished run in {out_dir}" if done else f"resuming {out_dir} from epoch {start_epoch - 1}", flush=True)
    elif resume and show_progress:
        print(f"no {last_path.name} in {out_dir.name} yet: starting from scratch", flush=True)

    train_idx = torch.as_tensor(data.splits["train"], dtype=torch.long)
    val_idx = data.splits["val"]
    steps = math.ceil(len(train_idx) / cfg.batch_size)
    step_fn = model
    if cfg.compile and hasattr(torch, "compile"):
        step_fn = torch.compile(model)

    for epoch in range(start_epoch, cfg.epochs + 1):
        t0 = time.time()
        model.train()
        perm = train_idx[torch.randperm(len(train_idx), generator=gen)]
        sums = np.zeros(2 + NUM_LANDMARKS)
        count = 0
        bar = progress(range(steps), desc=f"{cfg.model} epoch {epoch}/{cfg.epochs}", disable=None if show_progress else True)
        for b in bar:
            idx = perm[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            # index_select: ~13x faster than fancy indexing for uint8 on CPU (bench_data.py).
            x = normalise(data.images.index_select(0, idx.to(data.images.device)), device)
            lm = data.landmarks.index_select(0, idx.to(data.landmarks.device)).to(device)
            y = data.labels.index_select(0, idx.to(data.labels.device)).to(device)
            if cfg.augment:
                x, lm = augment_batch(x, lm, gen)
            x = imagenet_normalise(x).contiguous(memory_format=torch.channels_last)
            with autocast_for(device, cfg.amp):
                out = step_fn(x, lm)
            total, g_loss, l_loss = joint_loss(_float(out), y, cfg.lambdas, cfg.loss)
            if not torch.isfinite(total):
                _diverged(epoch, b, g_loss, l_loss, ckpt_path)
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            n = len(idx)
            parts = [total.item(), g_loss.item()] + (l_loss.detach().tolist() if l_loss is not None else [math.nan] * NUM_LANDMARKS)
            sums += np.array(parts) * n
            count += n
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{parts[0]:.4f}")
        lr_now = optimizer.param_groups[0]["lr"]
        scheduler.step()

        outputs = collect_outputs(model, data, val_idx, device=device, amp=cfg.amp)
        _check_finite_outputs(outputs, epoch, ckpt_path)  # before this epoch's weights are saved
        val_module = outputs_module_probs(outputs, cfg.activation)
        val_probs = fuse_saved(val_module, cfg.effective_fusion_weights())
        val_labels = data.prepared.labels[val_idx]
        report = multilabel_report(val_labels, val_probs)
        val_loss = _val_loss(model, data, val_idx, cfg, outputs)
        global_f1 = multilabel_report(val_labels, val_module[:, 0])["micro_f1"]
        score = report.get(cfg.select_metric, math.nan)
        key = (-math.inf if math.isnan(score) else score, -val_loss)  # ties on small sets -> lower val loss
        selected = best_key is None or key > best_key
        if selected:
            best_key, best_epoch = key, epoch
            save_checkpoint(ckpt_path, canonical_state(model), config_dict, {"epoch": epoch, "val_score": float(score), "val_loss": float(val_loss), "geometry": cfg.geometry()})
        mean = sums / max(count, 1)
        row = {"epoch": epoch, "lr": lr_now, "time_s": round(time.time() - t0, 3), "train_loss": mean[0], "train_loss_global": mean[1]}
        row.update({f"train_loss_local{i + 1}": mean[2 + i] for i in range(NUM_LANDMARKS)})
        row.update({"val_loss": val_loss, **{f"val_{k}": report[k] for k in _metric_keys()}, "val_micro_f1_global": global_f1, "selected": int(selected)})
        history.append(row)
        _write_history(out_dir / "history.csv", history)
        save_checkpoint(last_path, canonical_state(model), config_dict, {
            "epoch": epoch, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "rng": _rng_state(gen), "best_key": torch.tensor(best_key, dtype=torch.float64), "best_epoch": best_epoch,
        }, kind=RESUME_FORMAT)
        if show_progress:
            print(f"{cfg.model} epoch {epoch:3d}/{cfg.epochs}  loss {mean[0]:.4f}  val micro-F1 {report['micro_f1']:.3f}  val loss {val_loss:.4f}  {row['time_s']:.1f}s" + ("  *" if selected else ""), flush=True)
        if stop_after_epoch is not None and epoch >= stop_after_epoch:
            return TrainResult(out_dir, {}, pd.DataFrame(history), cfg)

    metrics = finish_run(model, cfg, data, out_dir, device, best_epoch)
    return TrainResult(out_dir, metrics, pd.DataFrame(history, columns=_history_columns()), cfg)


def finish_run(model: torch.nn.Module, cfg: TrainConfig, data: DataBundle, out_dir: Path, device: torch.device, best_epoch: int) -> dict[str, Any]:
    """Reload the selected weights, evaluate on test, write metrics.json and test_outputs.npz."""
    state = load_checkpoint(out_dir / "checkpoint.pt")
    load_canonical_state(model, state["model_state"])
    weights = cfg.effective_fusion_weights()
    for split in ("val", "test"):  # validation outputs too: choosing a fusion later needs no forward pass
        idx = data.splits[split]
        outputs = collect_outputs(model, data, idx, device=device, amp=cfg.amp)
        labels = data.prepared.labels[idx]
        save_outputs(out_dir / f"{split}_outputs.npz", with_probabilities(outputs, labels, [data.prepared.ids[i] for i in idx], cfg.activation, weights))
    metrics = metrics_record(outputs, labels, cfg.activation, weights, settings_record(cfg, "test", best_epoch))
    metrics["n_train"], metrics["n_val"] = int(len(data.splits["train"])), int(len(data.splits["val"]))
    atomic_write_text(out_dir / "metrics.json", json.dumps(json_safe(metrics), indent=2))
    return metrics
