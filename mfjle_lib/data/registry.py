"""The dataset registry: `DATASETS` (name -> loader, default size, official split, paper table) and `load_index`.

Every loader returns a `DatasetIndex` of `FaceRecord`s with labels in `EMOTIONS` order; images are
only checked for existence here (decoding happens once, in `faces/prepare.py`). Adding a dataset:
one loader module beside this one and one `DatasetSpec` line in `DATASETS` (docs/CONTRIBUTING.md).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError
from .ferplus import load_ferplus
from .folder import load_folder
from .jaffe import load_jaffe
from .rafml import load_rafml
from .records import DatasetIndex
from .synthetic import load_synthetic


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: how to load it and the facts the CLI, the splits and the reports need about it."""

    name: str
    load: Callable[..., DatasetIndex]  # load(root, skip_bad=..., **options); a built-in one: load(size=, num_images=, seed=)
    built_in: bool = False  # rendered here: needs no --root, takes --num-images and a render seed
    source_size: int = 224  # R that `data` decodes at unless --source-size says otherwise
    official_split: bool = False  # ships a train/test partition (`--split-scheme official`)
    paper_table: str | None = None  # key in constants.PAPER_TABLES (the paper reports RAF-ML and JAFFE only)


#: Every dataset `--dataset` accepts. A `folder` dataset may carry an official partition in an
#: optional `split` column: make_splits checks the records, so it is not marked here.
DATASETS: dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Add a dataset to the registry (the CLI's choices are read from it when its parser is built)."""
    DATASETS[spec.name] = spec
    return spec


for _spec in (
    DatasetSpec("synthetic", load_synthetic, built_in=True, source_size=128),
    DatasetSpec("rafml", load_rafml, official_split=True, paper_table="rafml"),
    DatasetSpec("jaffe", load_jaffe, paper_table="jaffe"),
    DatasetSpec("ferplus", load_ferplus, official_split=True),
    DatasetSpec("folder", load_folder),
):
    register_dataset(_spec)


def dataset_names(real_only: bool = False) -> tuple[str, ...]:
    """The registered names, in registration order; `real_only` leaves out the built-in ones."""
    return tuple(n for n, s in DATASETS.items() if not (real_only and s.built_in))


def dataset_spec(name: str) -> DatasetSpec:
    """The registry entry of `name` (case and spaces ignored); ConfigError listing the datasets."""
    key = str(name).strip().lower()
    if key not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    return DATASETS[key]


def has_official_split(name: str) -> bool:
    """True if the dataset ships an official train/test partition."""
    return dataset_spec(name).official_split


def loader_options(name: str, source_size: int, num_images: int | None = None, render_seed: int = 0) -> dict[str, Any]:
    """The loader options a run's settings give: size, count and seed for a built-in dataset, none for a real one."""
    if not dataset_spec(name).built_in:
        return {}
    options: dict[str, Any] = {"size": source_size}
    if num_images:
        options["num_images"] = num_images
    if render_seed:  # other faces than the built-in evaluation set's (seed 0): `pretrain`
        options["seed"] = render_seed
    return options


def _check_options(name: str, func: Callable[..., object], options: dict, skip: tuple[str, ...]) -> None:
    """Turn an unknown keyword into a ConfigError that lists what the loader accepts."""
    params = inspect.signature(func).parameters
    accepted = [p for p in params if p not in skip and params[p].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        listed = ", ".join(accepted) if accepted else "none"
        raise ConfigError(f"dataset {name} does not take option(s) {', '.join(unknown)} (options: {listed})")


def load_index(name: str, root: str | Path | None = None, skip_bad: bool = False, **options: object) -> DatasetIndex:
    """Load a registered dataset from `root` (a built-in one needs none) into a DatasetIndex."""
    spec = dataset_spec(name)
    if spec.built_in:
        _check_options(spec.name, spec.load, options, skip=())
        return spec.load(**options)
    if root is None or str(root).strip() == "":
        raise ConfigError(f"dataset {spec.name} needs --root DIR (see data/README.md)")
    _check_options(spec.name, spec.load, options, skip=("root", "skip_bad"))
    return spec.load(Path(root).expanduser(), skip_bad=skip_bad, **options)


__all__ = ["DATASETS", "DatasetSpec", "dataset_names", "dataset_spec", "has_official_split", "load_index", "loader_options", "register_dataset"]
