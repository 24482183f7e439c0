"""The controls that split MF-JLE's gain over one ResNet-18 into ensembling, locality and resolution; fusion chosen on validation.

Four arms, trained with the same seeds (one seed = the same split, batches and starting global net):
ResNet-18; six ResNet-18s on the whole face at S_g (`wholeface`, S_l = S_g: ensembling, no locality);
MF-JLE with crops at the global's pixel density (S_l = c·S_g: locality, no extra resolution); MF-JLE.
Each step from one arm to the next changes one thing, so the paired differences add up to
MF-JLE − ResNet-18: ensembling + locality + resolution.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..evaluation.fusion_choice import report_val_fusion
from ..evaluation.outputs import load_outputs
from ..models.registry import model_spec
from .ablations import train_seeds

#: (arm, what it adds over the arm before it) in the order of the telescoping sum.
TOTAL = "total (MF-JLE − ResNet-18)"
STEPS = (
    ("ResNet-18", "baseline"),
    ("6 × ResNet-18, whole face", "ensembling"),
    ("MF-JLE, crops at the global's density", "locality"),
    ("MF-JLE", "resolution"),
)


def control_overrides(global_size: int, crop_fraction: float) -> dict[str, dict[str, Any]]:
    """The training settings of each arm beside the lesson's config (model and S_l)."""
    return {
        STEPS[0][0]: {"model": "resnet18"},
        STEPS[1][0]: {"model": "wholeface", "local_size": global_size},
        STEPS[2][0]: {"model": "mfjle", "local_size": max(1, round(crop_fraction * global_size))},
        STEPS[3][0]: {"model": "mfjle"},
    }


def train_controls(params: Any, data: Any, show_progress: bool = True) -> dict[str, list[Any]]:
    """Every arm over the lesson's seeds (`course.train_cached`: finished or released runs are reused)."""
    cfg = params.config()
    return {
        arm: train_seeds(params, data, show_progress=show_progress, **over)
        for arm, over in control_overrides(cfg.global_size, cfg.crop_fraction).items()
    }


def arm_table(
    results: Mapping[str, Sequence[Any]], metrics: Sequence[str] = ("micro_f1", "average_precision")
) -> pd.DataFrame:
    """One row per arm: S_l, mean and std over seeds of each metric (test split, the run's own fusion)."""
    rows = {}
    for arm, runs in results.items():
        row: dict[str, Any] = {
            "S_l": runs[0].config.local_size if model_spec(runs[0].config.model).has_locals else None,
            "seeds": len(runs),
        }
        for key in metrics:
            values = np.array([r.metrics[key] for r in runs], float)
            row[key], row[f"{key} std"] = values.mean(), values.std(ddof=1) if len(values) > 1 else 0.0
        rows[arm] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def gain_parts(results: Mapping[str, Sequence[Any]], metric: str = "micro_f1") -> pd.DataFrame:
    """Per seed (rows), the paired differences between consecutive arms (columns), plus the total."""
    arms = [arm for arm, _ in STEPS]
    values = np.array([[r.metrics[metric] for r in results[arm]] for arm in arms], float)  # (4 arms, seeds)
    parts = {part: values[i + 1] - values[i] for i, (_, part) in enumerate(STEPS[1:])}
    parts[TOTAL] = values[-1] - values[0]
    return pd.DataFrame(parts, index=pd.Index([r.config.seed for r in results[arms[0]]], name="seed"))


def gain_split(results: Mapping[str, Sequence[Any]], metric: str = "micro_f1") -> pd.DataFrame:
    """Paired (same seed) differences between consecutive arms: one row per part of the gain, plus the total."""
    parts = gain_parts(results, metric)
    n = len(parts)
    return pd.DataFrame(
        {
            "mean": parts.mean(),
            "std": parts.std(ddof=1) if n > 1 else parts.mean() * 0.0,
            "seeds above 0": {k: f"{int((v > 0).sum())}/{n}" for k, v in parts.items()},
        }
    )


def val_chosen(runs: Sequence[Any], paper_weights: Sequence[float]) -> list[dict[str, Any]]:
    """Each run's test metrics with fusion weights and threshold chosen on its own validation outputs (never test)."""
    out = []
    for run in runs:
        val, test = (load_outputs(Path(run.out_dir) / f"{split}_outputs.npz") for split in ("val", "test"))
        choice, metrics = report_val_fusion(val, test, paper_weights[: val["module_probs"].shape[1]])
        out.append({**metrics, "chosen_weights": choice.weights, "chosen_threshold": choice.threshold})
    return out


def fusion_gain_table(base: Sequence[Any], mf: Sequence[Any], paper_weights: Sequence[float]) -> pd.DataFrame:
    """Micro-F1 (test) per seed of ResNet-18 and MF-JLE, at the paper's fusion and threshold and chosen on validation."""
    base_val, mf_val = val_chosen(base, (1.0,)), val_chosen(mf, paper_weights)
    frame = pd.DataFrame(
        {
            "ResNet-18, t = 0.5": [r.metrics["micro_f1"] for r in base],
            "ResNet-18, t chosen on val": [m["micro_f1"] for m in base_val],
            "MF-JLE, paper fusion, t = 0.5": [r.metrics["micro_f1"] for r in mf],
            "MF-JLE, fusion + t chosen on val": [m["micro_f1"] for m in mf_val],
            "MF-JLE chosen local weight": [m["chosen_weights"][1] for m in mf_val],
            "MF-JLE chosen threshold": [m["chosen_threshold"] for m in mf_val],
        },
        index=pd.Index([r.config.seed for r in mf], name="seed"),
    )
    return frame
