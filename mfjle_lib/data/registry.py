"""Dataset loaders behind one entry point: `load_index(name, root, skip_bad, **options)`.

Every loader returns a `DatasetIndex` of `FaceRecord`s with labels in `EMOTIONS` order; images are
only checked for existence here (decoding happens once, in `cache.py`).
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Callable

from ..errors import ConfigError
from .ferplus import load_ferplus
from .folder import load_folder
from .jaffe import load_jaffe
from .rafml import load_rafml
from .records import DatasetIndex
from .synthetic import load_synthetic

DATASET_NAMES: tuple[str, ...] = ("synthetic", "rafml", "jaffe", "ferplus", "folder")


#: Dataset -> key in constants.PAPER_TABLES (the paper reports RAF-ML and JAFFE only).
PAPER_TABLE_KEY: dict[str, str | None] = {
    "synthetic": None,
    "rafml": "rafml",
    "jaffe": "jaffe",
    "ferplus": None,
    "folder": None,
}


# Datasets that always ship an official partition (RAF-ML: train/test; FER+: train/val/test).
# A `folder` dataset may carry one in an optional `split` column: make_splits checks the records.
_OFFICIAL = {"rafml", "ferplus"}


def has_official_split(name: str) -> bool:
    """True if the dataset ships an official train/test partition."""
    return name in _OFFICIAL


def _loader(name: str) -> Callable[..., DatasetIndex]:
    """Import the loader of one real dataset lazily (keeps `import mfjle_lib.datasets` cheap)."""
    if name == "rafml":

        return load_rafml
    if name == "jaffe":

        return load_jaffe
    if name == "ferplus":

        return load_ferplus

    return load_folder


def _check_options(name: str, func: Callable[..., object], options: dict, skip: tuple[str, ...]) -> None:
    """Turn an unknown keyword into a ConfigError that lists what the loader accepts."""
    params = inspect.signature(func).parameters
    accepted = [p for p in params if p not in skip and params[p].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        listed = ", ".join(accepted) if accepted else "none"
        raise ConfigError(f"dataset {name} does not take option(s) {', '.join(unknown)} (options: {listed})")


def load_index(name: str, root: str | Path | None = None, skip_bad: bool = False, **options: object) -> DatasetIndex:
    """Load dataset `name` (one of DATASET_NAMES) from `root` into a DatasetIndex."""
    key = str(name).strip().lower()
    if key not in DATASET_NAMES:
        raise ConfigError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASET_NAMES)}")
    if key == "synthetic":

        _check_options(key, load_synthetic, options, skip=())
        return load_synthetic(**options)
    if root is None or str(root).strip() == "":
        raise ConfigError(f"dataset {key} needs --root DIR (see data/README.md)")
    func = _loader(key)
    _check_options(key, func, options, skip=("root", "skip_bad"))
    return func(Path(root).expanduser(), skip_bad=skip_bad, **options)


__all__ = ["DATASET_NAMES", "PAPER_TABLE_KEY", "has_official_split", "load_index"]
