"""ResNet-18 and MF-JLE over several seeds on one dataset (Tables 1-2)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import CheckpointError
from ..files import json_safe
from ..runtime import get_device
from ..training.batches import load_data
from ..training.config import TrainConfig
from ..training.run_files import load_checkpoint, same_run
from ..training.trainer import train


def reproduce(
    cfg: TrainConfig,
    seeds: int,
    out_dir: str | Path,
    models: Sequence[str] = ("resnet18", "mfjle"),
    show_progress: bool = True,
    overwrite: bool = False,
) -> dict[str, list[dict[str, Any]]]:
    """Train each model over `seeds` seeds (0..seeds-1) on one dataset; return metrics per model.

    A finished run with the same settings is reused and a partial one resumed; a run with other
    settings is an error unless `overwrite`, which retrains every run (`train(overwrite=True)`).
    """
    out_dir = Path(out_dir)
    dev = get_device(cfg.device)
    data = load_data(cfg, dev, show_progress)
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in models}
    for seed in range(seeds):
        for name in models:
            run_cfg = replace(cfg, model=name, seed=seed)
            run_dir = out_dir / f"{name}_seed{seed}"
            if not overwrite and (run_dir / "metrics.json").exists() and _same_config(run_dir, run_cfg):
                runs[name].append(json.loads((run_dir / "metrics.json").read_text()))
                print(f"reusing {run_dir}")
                continue
            print(f"== {name}, seed {seed} ==", flush=True)
            result = train(
                run_cfg, run_dir, resume=not overwrite, overwrite=overwrite, data=data, show_progress=show_progress
            )
            runs[name].append(result.metrics)
    (out_dir / "reproduce.json").write_text(json.dumps(json_safe({"config": cfg.to_dict(), "runs": runs}), indent=2))
    return runs


def _same_config(run_dir: Path, cfg: TrainConfig) -> bool:
    """True when a finished run in `run_dir` used exactly `cfg` (so it can be reused)."""
    try:
        saved = load_checkpoint(run_dir / "checkpoint.pt")["config"]
    except CheckpointError:  # missing or damaged: train it again
        return False
    return same_run(saved, cfg)
