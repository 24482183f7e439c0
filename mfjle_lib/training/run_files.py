"""Atomic checkpoint writes and safe loads (docs/DESIGN.md §7): `weights_only=True`, format and version checks."""
from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from .. import __version__
from ..constants import EMOTIONS
from ..errors import CheckpointError
from ..files import atomic_write_bytes

CHECKPOINT_FORMAT = "mfjle-checkpoint"


RESUME_FORMAT = "mfjle-resume"


def atomic_torch_save(obj: Any, path: Path) -> None:
    """torch.save, atomically."""
    atomic_write_bytes(path, lambda fh: torch.save(obj, fh))



def save_checkpoint(path: Path, model_state: dict, config: dict, extra: dict | None = None, kind: str = CHECKPOINT_FORMAT) -> None:
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
        return CheckpointError(f"{path}: refused to load: the file holds code or objects other than tensors and plain data (it asks for {found.group(1)}); nothing in it was run")
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
        reason = "truncated or damaged" if zipfile.is_zipfile(path) or "zip archive" in detail else "not a torch.save file"
        raise CheckpointError(f"{path}: not a readable checkpoint ({reason}: {detail})") from None
    except Exception as exc:  # noqa: BLE001 - the unpickler fails in many ways on garbage (KeyError, ...)
        raise CheckpointError(f"{path}: not a checkpoint (its bytes are not a torch.save file; {type(exc).__name__}: {str(exc)[:80]})") from None
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
        raise CheckpointError(f"{path}: written by mfjle_lib {payload.get('library_version')}, this is {__version__}; retrain or use that version")
    if not isinstance(payload.get("config"), dict) or not isinstance(payload.get("model_state"), dict):
        raise CheckpointError(f"{path}: damaged {what} (config or weights missing)")
    return payload
