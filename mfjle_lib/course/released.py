"""Released runs: the full-mode runs behind the committed lessons, kept in the repository in compact form.

A lesson opened on a fresh machine (or a Colab VM) reads them instead of training for an hour:
`results/lessons/<run name>/` holds `config.json` (the run's settings as trained), `metrics.json`,
`history.csv` and the validation/test outputs as logits (`val_outputs.npz`, `test_outputs.npz`;
the probabilities are recomputed on loading, in float64, exactly as saved), and for runs that differ
only in λ their module-by-module weight distances (`weights_vs_<run>.csv`). No weights and no
images: the built-in faces are re-rendered from their seed. `make retrain` writes them from finished full runs
(`tools/release.py`).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..paths import REPO_DIR
from ..training.config import TrainConfig
from ..training.run_files import same_run

#: Where released runs live, beside the JAFFE study's results.
RELEASE_DIR = REPO_DIR / "results" / "lessons"


def released_run(cfg: TrainConfig, name: str, folder: Path = RELEASE_DIR) -> Path | None:
    """The released run `name` when it was trained with `cfg`'s settings, else None."""
    path = folder / name
    config = path / "config.json"
    if not config.is_file():
        return None
    return path if same_run(json.loads(config.read_text()), cfg) else None
