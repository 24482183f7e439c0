"""Where data, caches, runs and figures live: resolved from the package, never the working dir."""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent


def data_dir() -> Path:
    """Folder for generated data and caches: $MFJLE_DATA_DIR, else the repo's `data/`, else ~/.cache."""
    env = os.environ.get("MFJLE_DATA_DIR")
    if env:
        path = Path(env).expanduser()
    elif (REPO_DIR / "data").is_dir() and os.access(REPO_DIR / "data", os.W_OK):
        path = REPO_DIR / "data"
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
    base = Path(os.environ["MFJLE_RUNS_DIR"]) if os.environ.get("MFJLE_RUNS_DIR") else REPO_DIR / "runs"
    base.mkdir(parents=True, exist_ok=True)
    return base


def figures_dir() -> Path:
    """Folder where notebooks save figures (`figures/` beside the notebooks)."""
    path = REPO_DIR / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path
