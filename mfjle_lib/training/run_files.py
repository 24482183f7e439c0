"""A run's folder and files: never overwritten silently; checkpoint.pt and last.pt (atomic, loaded `weights_only`);
history.csv.

The folder: `--resume` continues a run, `--overwrite` replaces it. `--overwrite` moves the old
run's files into a sibling folder `OUT.old-<timestamp>` before anything new is written, and
deletes that folder only once the new run has written its first `checkpoint.pt`; a run that fails
earlier leaves the old one there, whole. Files in OUT that a run does not write (notes, figures)
stay where they are.

The checkpoints (docs/DESIGN.md §7): written atomically, loaded with `weights_only=True`, their
format, label order and library version checked. `checkpoint.pt` holds the selected weights (the
model's own `state_dict()`, whichever form trained it) and the config; `last.pt` everything a
resumed run needs to continue bit-identically. Whether a saved run is the run a config asks for is
`run_differences`; `Selection`, the best epoch so far, is part of what last.pt keeps.
"""

from __future__ import annotations

import io
import math
import pickle
import re
import shutil
import time
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from .. import __version__
from ..constants import EMOTIONS, NUM_LANDMARKS
from ..errors import CheckpointError, ConfigError
from ..files import atomic_write_bytes, atomic_write_text
from ..method.metrics import METRIC_KEYS
from .config import TrainConfig
from .setup import TrainingParts

# ---------------------------------------------------------------------------------------------
# The folder
# ---------------------------------------------------------------------------------------------

#: What `train` writes into its folder: any of them means a (finished or partial) run is there.
RUN_FILES = ("checkpoint.pt", "last.pt", "metrics.json", "history.csv", "test_outputs.npz", "val_outputs.npz")


def run_in(out_dir: Path) -> str | None:
    """'a finished run' / 'a partial run' when `out_dir` holds one, else None."""
    if (out_dir / "metrics.json").is_file():
        return "a finished run"
    if any((out_dir / name).exists() for name in RUN_FILES):
        return "a partial run"
    return None


def claim_out_dir(out_dir: Path, resume: bool, overwrite: bool) -> Path | None:
    """Decide, before anything is written, what happens to a run already in `out_dir`.

    Returns the folder the old run was moved to (`overwrite`), else None. Without `resume` or
    `overwrite`, a run already there is a ConfigError that says how to go on.
    """
    if resume and overwrite:
        raise ConfigError("--resume continues the run in the folder and --overwrite replaces it: give one of them")
    what = run_in(out_dir)
    if what is None:
        return None
    if resume:
        if not (out_dir / "last.pt").is_file():  # nothing to continue from: starting afresh would replace the run
            raise ConfigError(
                f"{out_dir} holds {what} without a resume state (last.pt): --overwrite replaces it, or use another "
                "--out"
            )
        return None
    if not overwrite:
        raise ConfigError(
            f"{out_dir} holds {what}: use --resume to continue it, --overwrite to replace it, or another --out"
        )
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = out_dir.with_name(f"{out_dir.name}.old-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = out_dir.with_name(f"{out_dir.name}.old-{stamp}-{n}")
    aside.mkdir(parents=True)
    for name in RUN_FILES:
        if (out_dir / name).exists():
            (out_dir / name).rename(aside / name)
    return aside


def drop_old_run(aside: Path | None, show_progress: bool = True) -> None:
    """Delete the old run moved aside by `claim_out_dir` (call once the new run has a checkpoint)."""
    if aside is None:
        return
    shutil.rmtree(aside, ignore_errors=True)
    if show_progress:
        print(f"removed the replaced run ({aside.name})", flush=True)


# ---------------------------------------------------------------------------------------------
# checkpoint.pt and last.pt
# ---------------------------------------------------------------------------------------------

CHECKPOINT_FORMAT = "mfjle-checkpoint"


RESUME_FORMAT = "mfjle-resume"


def atomic_torch_save(obj: Any, path: Path) -> None:
    """torch.save, atomically."""
    atomic_write_bytes(path, lambda fh: torch.save(obj, fh))


def save_checkpoint(
    path: Path, model_state: dict, config: dict, extra: dict | None = None, kind: str = CHECKPOINT_FORMAT
) -> None:
    """Save weights + config + label order + library version (only tensors and plain types)."""
    payload = {
        "format": kind,
        "library_version": __version__,
        "emotions": list(EMOTIONS),
        "config": config,
        "model_state": model_state,
    }
    payload.update(extra or {})
    atomic_torch_save(payload, path)


def _refusal(path: Path, exc: pickle.UnpicklingError) -> CheckpointError:
    """Map torch's long weights_only error onto one line: code refused, or not a checkpoint at all.

    torch's own text suggests allow-listing the global or loading with weights_only=False; for a
    file of unknown origin both are the wrong advice, so only the name of the global is kept.
    """
    found = re.search(r"GLOBAL\s+([\w.]+)", str(exc))
    if found is not None:
        return CheckpointError(
            f"{path}: refused to load: the file holds code or objects other than tensors and plain data (it asks for "
            f"{found.group(1)}); nothing in it was run"
        )
    return CheckpointError(f"{path}: not a checkpoint (its bytes are not a torch.save file)")


def load_checkpoint(path: str | Path, kind: str = CHECKPOINT_FORMAT, map_location: str | torch.device = "cpu") -> dict:
    """Load with `weights_only=True`: a file that carries code is refused, never executed.

    Every failure is a `CheckpointError` naming the file: missing, empty, not a torch file,
    truncated, carrying code, not an mfjle file of this `kind`, another label order or version.
    """
    path = Path(path)
    what = "checkpoint" if kind == CHECKPOINT_FORMAT else "resume state"
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a file (give the checkpoint file, e.g. OUT/checkpoint.pt)")
    try:
        if path.stat().st_size == 0:
            raise CheckpointError(f"{path}: empty file, not a checkpoint")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "pickle protocol 4": the error below says it all
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except CheckpointError:
        raise
    except pickle.UnpicklingError as exc:
        raise _refusal(path, exc) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile) as exc:
        detail = str(exc).strip().splitlines()[0].split(". ")[0][:160] if str(exc).strip() else type(exc).__name__
        reason = (
            "truncated or damaged" if zipfile.is_zipfile(path) or "zip archive" in detail else "not a torch.save file"
        )
        raise CheckpointError(f"{path}: not a readable checkpoint ({reason}: {detail})") from None
    except Exception as exc:  # noqa: BLE001 - the unpickler fails in many ways on garbage (KeyError, ...)
        raise CheckpointError(
            f"{path}: not a checkpoint (its bytes are not a torch.save file; {type(exc).__name__}: {str(exc)[:80]})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != kind:
        if isinstance(payload, dict) and payload.get("format") == RESUME_FORMAT:
            raise CheckpointError(f"{path}: this is a resume state (last.pt); give the checkpoint.pt beside it")
        if isinstance(payload, dict) and payload.get("format") == CHECKPOINT_FORMAT:
            raise CheckpointError(f"{path}: this is a model checkpoint, not a resume state (last.pt)")
        raise CheckpointError(f"{path}: not an mfjle {what} file")
    emotions = payload.get("emotions")
    if not isinstance(emotions, (list, tuple)) or list(emotions) != list(EMOTIONS):
        raise CheckpointError(f"{path}: label order {emotions} does not match this library's {list(EMOTIONS)}")
    major = str(payload.get("library_version", "")).split(".")[:2]
    if major != __version__.split(".")[:2]:
        raise CheckpointError(
            f"{path}: written by mfjle_lib {payload.get('library_version')}, this is {__version__}; retrain or use "
            "that version"
        )
    if not isinstance(payload.get("config"), dict) or not isinstance(payload.get("model_state"), dict):
        raise CheckpointError(f"{path}: damaged {what} (config or weights missing)")
    return payload


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
    return [
        k
        for k in diff
        if not (k in RESOLVED_AUTO and RESOLVED_AUTO[k] in (getattr(cfg, k), saved.get(k, RESOLVED_AUTO[k])))
    ]


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
        raise ConfigError(
            f"{path}: cannot resume, the run used different settings ({', '.join(diff)}); --overwrite replaces it, "
            "or use another --out"
        )
    return state


def save_resume_state(
    path: Path, parts: TrainingParts, config: dict[str, Any], epoch: int, selection: Selection
) -> None:
    """Everything a resumed run needs to continue bit-identically, as tensors and plain types."""
    save_checkpoint(
        path,
        {k: v.detach().cpu().clone() for k, v in parts.model.state_dict().items()},
        config,
        {
            "epoch": epoch,
            "optimizer": parts.optimizer.state_dict(),
            "scheduler": parts.scheduler.state_dict(),
            "scaler": parts.scaler.state_dict(),
            "rng": rng_state(parts.generator),
            "best_key": torch.tensor(selection.best_key, dtype=torch.float64),
            "best_epoch": selection.best_epoch,
        },
        kind=RESUME_FORMAT,
    )


def restore(state: dict[str, Any], parts: TrainingParts, selection: Selection) -> int:
    """Load a resume state into the built parts, in place; returns the epoch to start from."""
    # Weights load into the existing modules: the optimiser keeps holding every parameter.
    parts.model.load_state_dict(state["model_state"])
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


# ---------------------------------------------------------------------------------------------
# history.csv
# ---------------------------------------------------------------------------------------------


def history_columns() -> list[str]:
    """Columns of `history.csv`, in order."""
    return (
        ["epoch", "lr", "time_s", "train_loss", "train_loss_global"]
        + [f"train_loss_local{i + 1}" for i in range(NUM_LANDMARKS)]
        + ["val_loss"]
        + [f"val_{k}" for k in METRIC_KEYS]
        + ["val_micro_f1_global", "selected"]
    )


def history_row(
    epoch: int,
    lr: float,
    seconds: float,
    train_losses: Sequence[float],
    val_loss: float,
    val_report: dict[str, float],
    val_global_micro_f1: float,
    selected: bool,
) -> dict[str, Any]:
    """One row of `history.csv`: the epoch's mean training losses (joint, global, five locals) and its validation."""
    row: dict[str, Any] = {
        "epoch": epoch,
        "lr": lr,
        "time_s": round(seconds, 3),
        "train_loss": train_losses[0],
        "train_loss_global": train_losses[1],
    }
    row.update({f"train_loss_local{i + 1}": train_losses[2 + i] for i in range(NUM_LANDMARKS)})
    row.update(
        {
            "val_loss": val_loss,
            **{f"val_{k}": val_report[k] for k in METRIC_KEYS},
            "val_micro_f1_global": val_global_micro_f1,
            "selected": int(selected),
        }
    )
    return row


def write_history(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write `history.csv` atomically."""
    buf = io.StringIO()
    pd.DataFrame(rows, columns=history_columns()).to_csv(buf, index=False)
    atomic_write_text(path, buf.getvalue())
