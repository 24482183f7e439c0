"""Files written atomically (a killed process never leaves half a file), strict JSON, generated blocks in text files."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from .errors import ConfigError, DataError


def atomic_write_bytes(path: Path, write) -> None:
    """Write via a temp file in the same folder, then rename: a kill never leaves half a file.

    No fsync: the threat is a killed process, which rename already covers; syncing 800 MB of
    MF-JLE resume state every epoch would cost more than a FAST-mode epoch.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(path)
    # The pid in the name lets a later write remove what a killed writer left behind.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes the file private; outputs follow the umask
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _read_umask() -> int:
    """The process umask (read once, by setting it and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def _remove_stale_temps(path: Path) -> None:
    """Delete temp files of `path` left by writers that were killed (their process is gone)."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            pid = int(tmp.name[len(path.name) + 2 :].split(".", 1)[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            try:
                tmp.unlink()
            except OSError:
                pass
        except (ValueError, PermissionError, OSError):
            pass  # not one of ours (no pid), or a live writer


def atomic_write_text(path: Path, text: str) -> None:
    """Write a text file atomically."""
    atomic_write_bytes(path, lambda fh: fh.write(text.encode("utf-8")))


def read_json(path: str | Path, keys: tuple[str, ...] = ()) -> dict:
    """A JSON object from `path`; a missing, cut-short or foreign file (no object, no `keys`) is a DataError."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(path, "missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(path, f"not valid JSON (damaged or cut short: {exc})") from None
    if not isinstance(obj, dict):
        raise DataError(path, f"expected a JSON object, found {type(obj).__name__}")
    missing = [k for k in keys if k not in obj]
    if missing:
        raise DataError(path, f"not one of this project's files: no {', '.join(repr(k) for k in missing)}")
    return obj


def json_safe(obj):
    """Replace NaN/inf floats by None (strict JSON) and numpy scalars by Python numbers, recursively."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def replace_block(text: str, start: str, end: str, body: str, where: str = "README.md") -> str:
    """`text` with everything between the marker lines `start` and `end` replaced by `body` (markers kept).

    A missing marker is a ConfigError naming `where`: a generated block is never appended silently.
    """
    if start not in text or end not in text:
        raise ConfigError(f"{where}: no '{start}' ... '{end}' block to fill")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return head + start + "\n\n" + body.strip("\n") + "\n\n" + end + tail
