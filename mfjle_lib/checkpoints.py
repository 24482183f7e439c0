"""Atomic checkpoint writes and safe loads (DESIGN §7): `weights_only=True`, format and version checks."""
from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .constants import EMOTIONS
from .errors import CheckpointError

CHECKPOINT_FORMAT = "mfjle-checkpoint"
RESUME_FORMAT = "mfjle-resume"


def atomic_write_bytes(path: Path, write) -> None:
    """Write via a temp file in the same folder, then rename: a kill never leaves half a file.

    No fsync: the threat is a killed process, which rename already covers; syncing 800 MB of
    MF-JLE resume state every epoch would cost more than a FAST-mode epoch.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_torch_save(obj: Any, path: Path) -> None:
    """torch.save, atomically."""
    atomic_write_bytes(path, lambda fh: torch.save(obj, fh))


def atomic_write_text(path: Path, text: str) -> None:
    """Write a text file atomically."""
    atomic_write_bytes(path, lambda fh: fh.write(text.encode("utf-8")))


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


def load_checkpoint(path: str | Path, kind: str = CHECKPOINT_FORMAT, map_location: str | torch.device = "cpu") -> dict:
    """Load with `weights_only=True`: a file that carries code is refused, never executed."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unsupported content"
        raise CheckpointError(f"{path}: refused to load: the file holds objects other than tensors and plain data ({first[:160]})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {str(exc)[:160]})") from None
    if not isinstance(payload, dict) or payload.get("format") != kind:
        raise CheckpointError(f"{path}: not an mfjle {'checkpoint' if kind == CHECKPOINT_FORMAT else 'resume state'} file")
    if list(payload.get("emotions", [])) != list(EMOTIONS):
        raise CheckpointError(f"{path}: label order {payload.get('emotions')} does not match this library's {list(EMOTIONS)}")
    major = str(payload.get("library_version", "")).split(".")[:2]
    if major != __version__.split(".")[:2]:
        raise CheckpointError(f"{path}: written by mfjle_lib {payload.get('library_version')}, this is {__version__}; retrain or use that version")
    return payload
