"""Shared fixtures: tiny dataset trees in the real on-disk formats (builders in dataset_trees.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# Make `import dataset_trees` work from any test regardless of pytest's import mode.
sys.path.insert(0, str(Path(__file__).resolve().parent))

import dataset_trees as trees  # noqa: E402


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private data/cache folder per test module, so tests never touch the repository's cache.

    Set as MFJLE_DATA_DIR for in-process code; subprocess tests pass it on through `cli_env`."""
    path = tmp_path_factory.mktemp("mfjle_data")
    mp = pytest.MonkeyPatch()
    mp.setenv("MFJLE_DATA_DIR", str(path))
    yield path
    mp.undo()


@pytest.fixture
def rafml_root(tmp_path: Path) -> Path:
    """RAF-ML with aligned + original folders, multilabel, partition and manual landmarks."""
    return trees.build_rafml(tmp_path / "RAF-ML")


@pytest.fixture
def jaffe_root(tmp_path: Path) -> Path:
    """JAFFE: 10 subjects x 2 poses, ratings inside A_README_FIRST.txt, 'Fear Excluded' table after."""
    return trees.build_jaffe(tmp_path / "jaffe")


@pytest.fixture
def ferplus_csv_root(tmp_path: Path) -> Path:
    """FER+ as fer2013new.csv beside fer2013.csv."""
    return trees.build_ferplus_csv(tmp_path / "ferplus")


@pytest.fixture
def ferplus_folders_root(tmp_path: Path) -> Path:
    """FER+ as FER2013Train|Valid|Test/label.csv beside PNGs."""
    return trees.build_ferplus_folders(tmp_path / "ferplus")


@pytest.fixture
def folder_root(tmp_path: Path) -> Path:
    """A `folder` dataset: labels.csv with 0/1 values."""
    return trees.build_folder(tmp_path / "mine")
