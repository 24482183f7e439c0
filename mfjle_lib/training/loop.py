"""One epoch of training and one pass of validation (the loop of paper Section IV.B)."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..constants import METRIC_KEYS, NUM_LANDMARKS
from ..errors import TrainingDiverged
from ..files import atomic_write_text
from ..models.fusion import MODULE_NAMES, ModelOutput
from .batches import DataBundle
from .config import TrainConfig
from .losses import joint_loss as jl


def _history_columns() -> list[str]:

    return (["epoch", "lr", "time_s", "train_loss", "train_loss_global"] + [f"train_loss_local{i + 1}" for i in range(NUM_LANDMARKS)]
            + ["val_loss"] + [f"val_{k}" for k in METRIC_KEYS] + ["val_micro_f1_global", "selected"])


def _val_loss(model: torch.nn.Module, data: DataBundle, idx: np.ndarray, cfg: TrainConfig, outputs: dict[str, np.ndarray]) -> float:
    """Joint loss on the validation split, from already-collected logits."""
    labels = data.labels[torch.as_tensor(idx, device=data.labels.device)].cpu().double()
    g = torch.from_numpy(outputs["global_logits"])
    loc = torch.from_numpy(outputs["local_logits"]) if "local_logits" in outputs else None
    total, _, _ = jl(ModelOutput(g, loc, g), labels, cfg.lambdas, cfg.loss)
    return float(total)


def _write_history(path: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    pd.DataFrame(rows, columns=_history_columns()).to_csv(buf, index=False)
    atomic_write_text(path, buf.getvalue())


def _metric_keys() -> tuple[str, ...]:

    return METRIC_KEYS


def _float(out):
    """Losses in float32 even under autocast (BCE on bf16 logits loses precision)."""
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
