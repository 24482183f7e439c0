"""A run's output folder: never overwritten silently (`--resume` continues a run, `--overwrite` replaces it).

`--overwrite` moves the old run's files into a sibling folder `OUT.old-<timestamp>` before
anything new is written, and deletes that folder only once the new run has written its first
`checkpoint.pt`; a run that fails earlier leaves the old one there, whole. Files in OUT that a
run does not write (notes, figures) stay where they are.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from ..errors import ConfigError

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
            raise ConfigError(f"{out_dir} holds {what} without a resume state (last.pt): --overwrite replaces it, or use another --out")
        return None
    if not overwrite:
        raise ConfigError(f"{out_dir} holds {what}: use --resume to continue it, --overwrite to replace it, or another --out")
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
