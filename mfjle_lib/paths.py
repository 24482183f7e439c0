"""Where data, caches, runs and figures live: resolved from the package, never the working dir."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


REPO_DIR = PACKAGE_DIR.parent


def work_dir() -> Path:
    """The checkout (editable install), else the working directory (e.g. Colab's site-packages install)."""
    if (REPO_DIR / "pyproject.toml").is_file():
        return REPO_DIR
    cwd = Path.cwd()
    if cwd.name == "lab" and cwd.parent.name == "notebooks":  # the lab edition, one folder down
        return cwd.parent.parent
    return cwd.parent if cwd.name == "notebooks" else cwd


def data_dir() -> Path:
    """Folder for generated data and caches: $MFJLE_DATA_DIR, else the repo's `data/`, else ~/.cache."""
    env = os.environ.get("MFJLE_DATA_DIR")
    if env:
        path = Path(env).expanduser()
    elif (work_dir() / "data").is_dir() and os.access(work_dir() / "data", os.W_OK):
        path = work_dir() / "data"
    else:
        path = Path.home() / ".cache" / "mfjle"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    """Folder for decoded-image and landmark caches (`data/cache/`)."""
    path = data_dir() / "cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


def runs_dir() -> Path:
    """Default folder for training outputs (`runs/` beside the package)."""
    base = Path(os.environ["MFJLE_RUNS_DIR"]) if os.environ.get("MFJLE_RUNS_DIR") else work_dir() / "runs"
    base.mkdir(parents=True, exist_ok=True)
    return base


def figures_dir() -> Path:
    """Folder where notebooks save figures (`figures/` beside the notebooks)."""
    path = work_dir() / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path
