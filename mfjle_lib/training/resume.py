"""Is this the same run? Model selection, and the resume state in `last.pt` (written, read, restored)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ..errors import ConfigError
from .checkpoints import RESUME_FORMAT, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .setup import TrainingParts, canonical_state, load_canonical_state

#: Settings a run decides once when left to 'auto', with their 'auto' values: either side being
#: 'auto' (a new command line, or an older run that did not record its choice) matches any choice.
RESOLVED_AUTO: dict[str, Any] = {"local_impl": "auto", "precision": "auto", "deterministic": None}


def run_differences(saved: dict[str, Any], cfg: TrainConfig, resuming: bool = False) -> list[str]:
    """Names of the settings in which a saved run's config differs from `cfg`.

    The device never counts (a run may move between machines); when `resuming`, neither does
    `epochs` (a resumed run may be extended or shortened).
    """
    ignore = ("device", "epochs") if resuming else ("device",)
    diff = cfg.settings_diff(saved, ignore)
    return [k for k in diff if not (k in RESOLVED_AUTO and RESOLVED_AUTO[k] in (getattr(cfg, k), saved.get(k, RESOLVED_AUTO[k])))]


def same_run(saved: dict[str, Any], cfg: TrainConfig, resuming: bool = False) -> bool:
    """True when a saved config (a checkpoint's) describes the run `cfg` asks for; see `run_differences`."""
    return not run_differences(saved, cfg, resuming)


@dataclass
class Selection:
    """The best validation epoch so far: highest score, ties broken by the lower validation loss."""

    best_key: tuple[float, float] | None = None
    best_epoch: int = 0

    def offer(self, epoch: int, score: float, val_loss: float) -> bool:
        """Take epoch `epoch` if it beats the best so far; True when it does."""
        # Ties are common on small validation sets (JAFFE: 43 images), so the loss decides them.
        key = (-math.inf if math.isnan(score) else score, -val_loss)
        if self.best_key is not None and key <= self.best_key:
            return False
        self.best_key, self.best_epoch = key, epoch
        return True


def read_resume_state(path: Path, cfg: TrainConfig) -> dict[str, Any] | None:
    """The resume state in `path` (None when there is none), refused when it is another run's."""
    if not path.exists():
        return None
    state = load_checkpoint(path, kind=RESUME_FORMAT)
    diff = run_differences(state["config"], cfg, resuming=True)
    if diff:
        raise ConfigError(f"{path}: cannot resume, the run used different settings ({', '.join(diff)}); --overwrite replaces it, or use another --out")
    return state


def save_resume_state(path: Path, parts: TrainingParts, config: dict[str, Any], epoch: int, selection: Selection) -> None:
    """Everything a resumed run needs to continue bit-identically, as tensors and plain types."""
    save_checkpoint(path, canonical_state(parts.model), config, {
        "epoch": epoch, "optimizer": parts.optimizer.state_dict(), "scheduler": parts.scheduler.state_dict(),
        "scaler": parts.scaler.state_dict(), "rng": rng_state(parts.generator),
        "best_key": torch.tensor(selection.best_key, dtype=torch.float64), "best_epoch": selection.best_epoch,
    }, kind=RESUME_FORMAT)


def restore(state: dict[str, Any], parts: TrainingParts, selection: Selection) -> int:
    """Load a resume state into the built parts, in place; returns the epoch to start from."""
    # Weights load into the existing modules: the optimiser keeps holding every parameter.
    load_canonical_state(parts.model, state["model_state"])
    parts.optimizer.load_state_dict(state["optimizer"])
    parts.scheduler.load_state_dict(state["scheduler"])
    if state.get("scaler"):
        parts.scaler.load_state_dict(state["scaler"])
    set_rng_state(parts.generator, state["rng"])
    if state.get("best_key") is not None:
        selection.best_key = tuple(state["best_key"].tolist())
    selection.best_epoch = int(state.get("best_epoch", 0))
    return int(state["epoch"]) + 1


def kept_history(path: Path, start_epoch: int) -> list[dict[str, Any]]:
    """Rows of `history.csv` before `start_epoch`: later rows came from the interrupted run."""
    if not path.exists():
        return []
    old = pd.read_csv(path)
    return old[old["epoch"] < start_epoch].to_dict("records")


def rng_state(gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Every RNG state as tensors (a numpy state would break `weights_only` loading)."""
    state = {"data_generator": gen.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.stack(torch.cuda.get_rng_state_all()) if torch.cuda.device_count() else torch.empty(0)
    return state


def set_rng_state(gen: torch.Generator, state: dict[str, torch.Tensor]) -> None:
    """Put back the RNG states `rng_state` saved."""
    gen.set_state(state["data_generator"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and state["cuda"].numel():
        torch.cuda.set_rng_state_all(list(state["cuda"]))
