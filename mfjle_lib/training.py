"""Training: data on the device, the joint loss (Eq. 1), model selection, resumable checkpoints.

Outputs in `out_dir` (DESIGN §4): `checkpoint.pt` (selected weights + config), `last.pt` (resume
state), `history.csv`, `metrics.json` (test split) and `test_outputs.npz` (per-module outputs).
"""
from __future__ import annotations

import io
import json
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from . import __version__
from .augment import augment_batch
from .checkpoints import RESUME_FORMAT, atomic_write_bytes, atomic_write_text, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .constants import EMOTIONS, IMAGENET_MEAN, IMAGENET_STD, NUM_LANDMARKS
from .errors import ConfigError, TrainingDiverged
from .losses import joint_loss
from .metrics import multilabel_report
from .models import build_model, plan_memory_format
from .runtime import get_device, json_safe, keep_freed_memory, progress, seed_everything

MODULE_NAMES = ("global",) + tuple(f"local{i + 1}" for i in range(NUM_LANDMARKS))


@dataclass
class DataBundle:
    """A prepared dataset, its splits, and its tensors on the storage device."""

    prepared: Any  # cache.PreparedDataset
    splits: dict[str, np.ndarray]
    images: torch.Tensor  # (N,3,R,R) uint8
    landmarks: torch.Tensor  # (N,5,2) float32, pixels of R
    labels: torch.Tensor  # (N,6) float32

    @property
    def ids(self) -> list[str]:
        """Image ids in dataset order."""
        return list(self.prepared.ids)


def load_data(cfg: TrainConfig, device: torch.device | None = None, show_progress: bool = True) -> DataBundle:
    """Load, decode (cached), align and split the dataset named in `cfg`; keep it on `device` if it fits."""
    from .cache import prepare_dataset
    from .datasets import load_index
    from .splits import make_splits

    options: dict[str, Any] = {}
    if cfg.dataset == "synthetic":
        options = {"size": cfg.source_size}
        if cfg.num_images:
            options["num_images"] = cfg.num_images
    index = load_index(cfg.dataset, cfg.root, skip_bad=cfg.skip_bad, **options)
    prepared = prepare_dataset(index, size=cfg.source_size, skip_bad=cfg.skip_bad, show_progress=show_progress)
    splits = make_splits(prepared, cfg.split_scheme, cfg.split_seed)
    for part in ("train", "val", "test"):
        if len(splits[part]) == 0:
            raise ConfigError(f"the {part} split of {cfg.dataset} is empty ({len(prepared.ids)} images); use more images")
    images, landmarks, labels = prepared.to_tensors()
    device = device or torch.device("cpu")
    # Decoded uint8 images go to the device once when they fit in a quarter of its memory.
    if device.type == "cuda" and images.numel() < torch.cuda.get_device_properties(device).total_memory // 4:
        images, landmarks, labels = images.to(device), landmarks.to(device), labels.to(device)
    return DataBundle(prepared, splits, images, landmarks, labels)


def normalise(batch_u8: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 (B,3,H,W) -> float in [0, 1] on the device (normalisation follows augmentation)."""
    return batch_u8.to(device, non_blocking=True).float().div_(255.0)


def imagenet_normalise(x: torch.Tensor) -> torch.Tensor:
    """Subtract ImageNet mean, divide by std (Section IV.B)."""
    mean = torch.tensor(IMAGENET_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean) / std


def model_from_config(cfg: TrainConfig, device: torch.device | None = None) -> torch.nn.Module:
    """Build the model a config describes (same seed -> same global init for both models)."""
    options: dict[str, Any] = {
        "global_size": cfg.image_size,
        "activation": "softmax" if cfg.loss == "softmax_ce" else "sigmoid",
        "pretrained": cfg.pretrained,
        "weights": cfg.weights,
    }
    if cfg.model == "mfjle":
        options.update(local_size=cfg.local_size, crop_fraction=cfg.crop_fraction, fusion_weights=cfg.effective_fusion_weights(), local_impl="loop")
    model = build_model(cfg.model, **options)
    if device is not None:
        model = model.to(device)
        if cfg.model == "mfjle" and cfg.local_impl != "loop":
            model.set_local_impl(cfg.local_impl)
    return model


def canonical_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """State dict in the loop layout (so any local implementation can load it), on the CPU."""
    impl = getattr(model, "local_impl", "loop")
    if impl != "loop":
        from .fused_locals import loop_state_dict

        state = loop_state_dict(model)
    else:
        state = model.state_dict()
    return {k: v.detach().cpu().clone() for k, v in state.items()}


def load_canonical_state(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load a loop-layout state dict into a model whatever its local implementation."""
    impl = getattr(model, "local_impl", "loop")
    if impl != "loop":
        model.set_local_impl("loop")
        model.load_state_dict(state)
        model.set_local_impl(impl)
    else:
        model.load_state_dict(state)


def make_adam(model: torch.nn.Module, lr: float, device: torch.device, betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.Adam:
    """The trainer's Adam: the fused kernel on CPU and CUDA.

    One kernel over all six ResNets' 67M parameters: 17x faster on the CPU than the default
    per-parameter loop, which would otherwise add a cost that grows with MF-JLE's 6x parameters.
    """
    return torch.optim.Adam(model.parameters(), lr=lr, betas=betas, fused=device.type in ("cpu", "cuda"))


def autocast_for(device: torch.device, enabled: bool):
    """bf16 autocast on CUDA (fp16 where bf16 is missing); nothing elsewhere."""
    if device.type != "cuda" or not enabled:
        return nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


@torch.no_grad()
def collect_outputs(model: torch.nn.Module, data: DataBundle, indices: np.ndarray, batch_size: int = 256, device: torch.device | None = None, amp: bool = True) -> dict[str, np.ndarray]:
    """Per-module logits (float64) for the given images, in eval mode."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    g_all, l_all = [], []
    idx_t = torch.as_tensor(indices, dtype=torch.long)
    for start in range(0, len(idx_t), batch_size):
        idx = idx_t[start : start + batch_size].to(data.images.device)
        x = imagenet_normalise(normalise(data.images.index_select(0, idx), device)).contiguous(memory_format=torch.channels_last)
        lm = data.landmarks.index_select(0, idx.to(data.landmarks.device)).to(device)
        with autocast_for(device, amp):
            out = model(x, lm)
        g_all.append(out.global_logits.double().cpu())
        if out.local_logits is not None:
            l_all.append(out.local_logits.double().cpu())
    model.train(was_training)
    result = {"global_logits": torch.cat(g_all).numpy() if g_all else np.zeros((0, len(EMOTIONS)))}
    if l_all:
        result["local_logits"] = torch.cat(l_all).numpy()
    return result


def _activate_np(z: np.ndarray, activation: str) -> np.ndarray:
    """Sigmoid or softmax in float64 (no saturation ties at float32's 1.0)."""
    if activation == "softmax":
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    return 1.0 / (1.0 + np.exp(-z))


def module_probs(outputs: dict[str, np.ndarray], activation: str = "sigmoid") -> np.ndarray:
    """(N, M, L) float64 probabilities of every module: global first, then the locals."""
    g = _activate_np(outputs["global_logits"], activation)[:, None]
    if "local_logits" not in outputs:
        return g
    return np.concatenate([g, _activate_np(outputs["local_logits"], activation)], axis=1)


def fuse(probs: np.ndarray, weights: tuple[float, ...] | np.ndarray) -> np.ndarray:
    """Weighted mean of module probabilities (N,M,L) with weights (M,) -> (N,L) (DESIGN §2)."""
    w = np.asarray(weights, dtype=np.float64)[: probs.shape[1]]
    return np.einsum("nml,m->nl", probs, w) / w.sum()


def fused_probs(outputs: dict[str, np.ndarray], cfg: TrainConfig, fusion_weights: tuple[float, ...] | None = None) -> np.ndarray:
    """Final probabilities in float64 for a config (the baseline's are its sigmoid outputs)."""
    activation = "softmax" if cfg.loss == "softmax_ce" else "sigmoid"
    probs = module_probs(outputs, activation)
    if probs.shape[1] == 1:
        return probs[:, 0]
    return fuse(probs, fusion_weights or cfg.effective_fusion_weights())


def _history_columns() -> list[str]:
    from .constants import METRIC_KEYS

    return (["epoch", "lr", "time_s", "train_loss", "train_loss_global"] + [f"train_loss_local{i + 1}" for i in range(NUM_LANDMARKS)]
            + ["val_loss"] + [f"val_{k}" for k in METRIC_KEYS] + ["val_micro_f1_global", "selected"])


def _val_loss(model: torch.nn.Module, data: DataBundle, idx: np.ndarray, cfg: TrainConfig, outputs: dict[str, np.ndarray]) -> float:
    """Joint loss on the validation split, from already-collected logits."""
    from .losses import joint_loss as jl
    from .models import ModelOutput

    labels = data.labels[torch.as_tensor(idx, device=data.labels.device)].cpu().double()
    g = torch.from_numpy(outputs["global_logits"])
    loc = torch.from_numpy(outputs["local_logits"]) if "local_logits" in outputs else None
    total, _, _ = jl(ModelOutput(g, loc, g), labels, cfg.lambdas, cfg.loss)
    return float(total)


def _rng_state(gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Every RNG state as tensors (a numpy state would break `weights_only` loading)."""
    state = {"data_generator": gen.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.stack(torch.cuda.get_rng_state_all()) if torch.cuda.device_count() else torch.empty(0)
    return state


def _set_rng_state(gen: torch.Generator, state: dict[str, torch.Tensor]) -> None:
    gen.set_state(state["data_generator"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and state["cuda"].numel():
        torch.cuda.set_rng_state_all(list(state["cuda"]))


def _write_history(path: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    pd.DataFrame(rows, columns=_history_columns()).to_csv(buf, index=False)
    atomic_write_text(path, buf.getvalue())


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
    activation = "softmax" if cfg.loss == "softmax_ce" else "sigmoid"
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
        val_probs = fused_probs(outputs, cfg)
        val_labels = data.prepared.labels[val_idx]
        report = multilabel_report(val_labels, val_probs)
        val_loss = _val_loss(model, data, val_idx, cfg, outputs)
        global_f1 = multilabel_report(val_labels, module_probs(outputs, activation)[:, 0])["micro_f1"]
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


def _metric_keys() -> tuple[str, ...]:
    from .constants import METRIC_KEYS

    return METRIC_KEYS


def _float(out):
    """Losses in float32 even under autocast (BCE on bf16 logits loses precision)."""
    from .models import ModelOutput

    if out.global_logits.dtype == torch.float32:
        return out
    return ModelOutput(out.global_logits.float(), None if out.local_logits is None else out.local_logits.float(), out.probs.float())


def _diverged(epoch: int, batch: int, g_loss: torch.Tensor, l_loss: torch.Tensor | None, ckpt_path: Path) -> None:
    """Stop with a message naming the epoch and the first module whose loss is not finite."""
    names = ["global"] + [f"local{i + 1}" for i in range(NUM_LANDMARKS)]
    values = [g_loss] + (list(l_loss) if l_loss is not None else [])
    bad = next((n for n, v in zip(names, values) if not torch.isfinite(v)), "joint")
    kept = f"; last good checkpoint kept at {ckpt_path}" if ckpt_path.exists() else ""
    raise TrainingDiverged(f"loss became non-finite at epoch {epoch}, batch {batch + 1}, in the {bad} module{kept}")


def _check_finite_outputs(outputs: dict[str, np.ndarray], epoch: int, ckpt_path: Path) -> None:
    """Stop when validation logits are NaN/inf (weights blew up in the epoch's last step), naming the module."""
    g = outputs["global_logits"]
    per_module = [g] + ([outputs["local_logits"][:, i] for i in range(outputs["local_logits"].shape[1])] if "local_logits" in outputs else [])
    bad = next((name for name, v in zip(MODULE_NAMES, per_module) if not np.isfinite(v).all()), None)
    if bad is not None:
        kept = f"; last good checkpoint kept at {ckpt_path}" if ckpt_path.exists() else ""
        raise TrainingDiverged(f"validation outputs became non-finite after epoch {epoch} in the {bad} module (weights diverged; try a lower --lr){kept}")


def finish_run(model: torch.nn.Module, cfg: TrainConfig, data: DataBundle, out_dir: Path, device: torch.device, best_epoch: int) -> dict[str, Any]:
    """Reload the selected weights, evaluate on test, write metrics.json and test_outputs.npz."""
    state = load_checkpoint(out_dir / "checkpoint.pt")
    load_canonical_state(model, state["model_state"])
    test_idx = data.splits["test"]
    outputs = collect_outputs(model, data, test_idx, device=device, amp=cfg.amp)
    metrics = metrics_record(outputs, data.prepared.labels[test_idx], cfg, selected_epoch=best_epoch)
    metrics["n_train"], metrics["n_val"] = int(len(data.splits["train"])), int(len(data.splits["val"]))
    atomic_write_text(out_dir / "metrics.json", json.dumps(json_safe(metrics), indent=2))
    save_outputs(out_dir / "test_outputs.npz", outputs, data.prepared.labels[test_idx], [data.prepared.ids[i] for i in test_idx], cfg)
    return metrics


def metrics_record(outputs: dict[str, np.ndarray], labels: np.ndarray, cfg: TrainConfig, fusion_weights: tuple[float, ...] | None = None, selected_epoch: int | None = None, split: str = "test") -> dict[str, Any]:
    """The metrics.json object: nine metrics of the fused output + counts + per-module + settings."""
    from .metrics import decision_rules_softmax

    activation = "softmax" if cfg.loss == "softmax_ce" else "sigmoid"
    weights = tuple(fusion_weights or cfg.effective_fusion_weights())
    probs = fused_probs(outputs, cfg, weights)
    record: dict[str, Any] = dict(multilabel_report(labels, probs))
    per_module = module_probs(outputs, activation)
    record["modules"] = {name: {k: v for k, v in multilabel_report(labels, per_module[:, m]).items() if k in _metric_keys()} for m, name in enumerate(MODULE_NAMES[: per_module.shape[1]])}
    if cfg.loss == "softmax_ce":
        record["decision_rules"] = decision_rules_softmax(labels, probs)
    record.update({
        "split": split, "dataset": cfg.dataset, "model": cfg.model, "loss": cfg.loss,
        "fusion_weights": list(weights) if cfg.model == "mfjle" else [1.0], "lambdas": list(cfg.lambdas),
        "seed": cfg.seed, "split_scheme": cfg.split_scheme, "split_seed": cfg.split_seed,
        "selected_epoch": selected_epoch, "epochs": cfg.epochs, "preset": cfg.preset,
        "library_version": __version__, **cfg.geometry(),
    })
    return record


def save_outputs(path: Path, outputs: dict[str, np.ndarray], labels: np.ndarray, ids: list[str], cfg: TrainConfig) -> None:
    """Per-module test probabilities, logits, labels and ids (for re-fusion without retraining)."""
    activation = "softmax" if cfg.loss == "softmax_ce" else "sigmoid"
    arrays = {
        "ids": np.asarray(ids), "labels": np.asarray(labels, np.float32), "emotions": np.asarray(EMOTIONS),
        "module_probs": module_probs(outputs, activation), "fused_probs": fused_probs(outputs, cfg),
        "fusion_weights": np.asarray(cfg.effective_fusion_weights() if cfg.model == "mfjle" else (1.0,)),
        "activation": np.asarray(activation), **{k: v for k, v in outputs.items()},
    }
    def write(fh):
        np.savez_compressed(fh, **arrays)
    atomic_write_bytes(path, write)


def load_outputs(path: str | Path) -> dict[str, np.ndarray]:
    """Read a `test_outputs.npz` (no pickles)."""
    with np.load(Path(path), allow_pickle=False) as f:
        return {k: f[k] for k in f.files}
