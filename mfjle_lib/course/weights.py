"""How far two runs' weights are apart, module by module — from their checkpoints, or as released.

Released runs carry no weights, so `course/released.py` stores the distances a lesson reads
(`weights_vs_<run>.csv`, computed from the checkpoints when the runs are released) and
`compare_weights` reads them back when the checkpoints are not there.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..constants import NUM_LANDMARKS
from ..method.fusion import MODULE_NAMES
from ..training.run_files import CHECKPOINT_FORMAT, RESUME_FORMAT, load_checkpoint


def released_distances_file(run_b: Path, run_a: Path) -> Path:
    """Where a released run keeps its weight distances to run `run_a`."""
    return run_b / f"weights_vs_{run_a.name}.csv"


def compare_weights(run_a: str | Path, run_b: str | Path, file: str = "checkpoint.pt") -> pd.DataFrame:
    """Module by module: relative L2 distance between two runs' saved weights (`checkpoint.pt` or `last.pt`; 0 =
    identical)."""
    run_a, run_b = Path(run_a), Path(run_b)
    if not (run_a / file).is_file() and file == "checkpoint.pt":
        for b, a in ((run_b, run_a), (run_a, run_b)):
            saved = released_distances_file(b, a)
            if saved.is_file():  # released runs: the distances measured on their checkpoints at release time
                return pd.read_csv(saved, index_col="module")
    kind = RESUME_FORMAT if file == "last.pt" else CHECKPOINT_FORMAT
    sa = load_checkpoint(run_a / file, kind=kind)["model_state"]
    sb = load_checkpoint(run_b / file, kind=kind)["model_state"]
    prefixes = ["global_net."] + [f"local_nets.nets.{i}." for i in range(NUM_LANDMARKS)]
    rows = []
    for name, prefix in zip(MODULE_NAMES, prefixes):
        keys = [k for k in sa if k.startswith(prefix) and sa[k].is_floating_point()]
        if not keys:
            continue
        diff = sum(float((sa[k].double() - sb[k].double()).pow(2).sum()) for k in keys) ** 0.5
        norm = sum(float(sa[k].double().pow(2).sum()) for k in keys) ** 0.5
        rows.append(
            {
                "module": name,
                "relative weight distance": diff / norm,
                "identical": all(bool((sa[k] == sb[k]).all()) for k in keys),
            }
        )
    return pd.DataFrame(rows).set_index("module")
