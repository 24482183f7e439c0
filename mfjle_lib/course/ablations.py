"""Lessons 04a, 04b, 05 and 08: seeds, paired single-vs-ensemble checks, λ sweeps by re-fusion, the fusion panel.

The λ question (docs/DESIGN.md §2): the six modules share no parameters and Adam is (up to its ε)
invariant to a constant scale of a loss term, so λ_i in Eq. 1 should change training almost only
through the fusion weights. The helpers here *measure* that (weights, logits, per-epoch losses of
two runs) and, where it holds, compute the Fig. 6-7 sweeps by re-fusing saved per-module outputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..constants import NUM_LANDMARKS
from ..evaluation.outputs import fused_metrics, load_outputs
from ..evaluation.reports import styled, summarise_runs
from ..inference.evaluate import load_trained_model
from ..method.fusion import DEFAULT_LAMBDA, MODULE_NAMES, MODULE_TITLES, paper_fusion_weights
from ..method.metrics import METRIC_KEYS
from ..training.batches import run_split
from ..training.inference_path import inference_model
from .lesson import train_cached
from .weights import compare_weights


def lambda_weights(lam: float) -> tuple[float, ...]:
    """Fusion weights (1, λ, λ, λ, λ, λ): the paper's Eq. 1 weights reused for fusion (Section III.C)."""
    return paper_fusion_weights(lam)


def single_local_weights(j: int, lam: float, base: float = DEFAULT_LAMBDA) -> tuple[float, ...]:
    """Fig. 7 weights: local module j (0-based) at λ, the other four at `base`."""
    w = [1.0] + [float(base)] * NUM_LANDMARKS
    w[1 + j] = float(lam)
    return tuple(w)


def train_seeds(
    params: Any, data: Any, seeds: Sequence[int] | None = None, show_progress: bool = True, **overrides: Any
) -> list[Any]:
    """`course.train_cached` for one config over several seeds (default `params.seeds`)."""
    seeds = params.seeds if seeds is None else seeds
    return [
        train_cached(params, params.config(seed=s, **overrides), data=data, show_progress=show_progress) for s in seeds
    ]


def split_outputs(
    checkpoint: str | Path, data: Any, split: str = "val", precision: str = "auto"
) -> dict[str, np.ndarray]:
    """Per-module outputs of a saved model on a split, in the form of `test_outputs.npz` (for re-fusion), with its
    `inference_path`."""
    model, cfg = load_trained_model(checkpoint)
    device = next(model.parameters()).device
    model, path = inference_model(
        model, cfg, device, precision, data
    )  # the path of the end of `train` and of `evaluate`
    return {
        **run_split(model, data, split, cfg.activation, cfg.effective_fusion_weights(), device),
        "inference_path": np.asarray(path["path"]),
    }


def refuse_over_seeds(
    outputs: Sequence[Mapping[str, np.ndarray]], fusion_weights: Mapping[Any, Sequence[float]], threshold: float = 0.5
) -> pd.DataFrame:
    """Re-fuse each run's saved outputs with each weight vector: one row per (setting, seed = position in `outputs`),
    nine metrics."""
    rows = []
    for name, w in fusion_weights.items():
        for seed, out in enumerate(outputs):
            rows.append({"setting": name, "seed": seed, **fused_metrics(out, w, threshold)})
    return pd.DataFrame(rows)


def mean_std(frame: pd.DataFrame, by: str = "setting") -> dict[Any, dict[str, tuple[float, float]]]:
    """`summarise_runs` (mean ± std over seeds) for each group of a `refuse_over_seeds` frame."""
    return {
        name: summarise_runs(group[list(METRIC_KEYS)].to_dict("records"))
        for name, group in frame.groupby(by, sort=False)
    }


def compare_histories(a: pd.DataFrame, b: pd.DataFrame, pairs: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """Per-epoch |a[col_a] - b[col_b]| for column pairs of two `history.csv` frames (max over epochs)."""
    n = min(len(a), len(b))
    return pd.DataFrame(
        [
            {
                "column (a vs b)": f"{ca} vs {cb}",
                "max |difference| over epochs": float(np.max(np.abs(a[ca].to_numpy()[:n] - b[cb].to_numpy()[:n]))),
            }
            for ca, cb in pairs
        ]
    ).set_index("column (a vs b)")


def compare_outputs(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Module by module: max |Δ logit|, mean |Δ probability| and how many 0.5-decisions differ between two runs."""
    rows = []
    pa, pb = np.asarray(a["module_probs"]), np.asarray(b["module_probs"])
    for m in range(min(pa.shape[1], pb.shape[1])):
        za = a["global_logits"] if m == 0 else a["local_logits"][:, m - 1]
        zb = b["global_logits"] if m == 0 else b["local_logits"][:, m - 1]
        rows.append(
            {
                "module": MODULE_NAMES[m],
                "max |Δ logit|": float(np.max(np.abs(za - zb))),
                "mean |Δ prob|": float(np.mean(np.abs(pa[:, m] - pb[:, m]))),
                "decisions changed": int(np.sum((pa[:, m] >= 0.5) != (pb[:, m] >= 0.5))),
            }
        )
    return pd.DataFrame(rows).set_index("module")


def seed_floor(runs: Sequence[Any]) -> pd.DataFrame:
    """Decisions changed per module between every pair of runs differing only in their seed: a λ pair's noise floor."""
    outs = [load_outputs(Path(r.out_dir) / "test_outputs.npz") for r in runs]
    cols = {
        f"seed {runs[b].config.seed} vs {runs[a].config.seed}": compare_outputs(outs[a], outs[b])["decisions changed"]
        for a in range(len(runs))
        for b in range(a + 1, len(runs))
    }
    return pd.DataFrame(cols).rename(index=dict(zip(MODULE_NAMES, MODULE_TITLES)))


def pick_examples(truth: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, n: int = 6) -> np.ndarray:
    """Test faces for a Fig. 8-style table: b gets more labels right than a, then the reverse (alternating), then the
    rest by interest.

    The rest, in order: other disagreements (the models differ, equally often right); blends (two or
    more true labels, most labels first, both right first); single-label faces some model gets wrong;
    single-label faces both get right come last, only when nothing better is left.
    """
    truth, pred_a, pred_b = (np.asarray(x) > 0.5 for x in (truth, pred_a, pred_b))
    right_a, right_b = (pred_a == truth).sum(1), (pred_b == truth).sum(1)
    margin = right_b - right_a
    b_wins = [int(i) for i in np.argsort(-margin, kind="stable") if margin[i] > 0]
    a_wins = [int(i) for i in np.argsort(margin, kind="stable") if margin[i] < 0]
    # Alternate so the table never shows only one side (the paper's Fig. 8 shows only MF-JLE's successes).
    picked: list[int] = []
    for k in range(max(len(b_wins), len(a_wins))):
        picked += ([b_wins[k]] if k < len(b_wins) else []) + ([a_wins[k]] if k < len(a_wins) else [])
    exact = (right_a == truth.shape[1]) & (right_b == truth.shape[1])
    cardinality = truth.sum(1)
    disagree = (pred_a != pred_b).any(1)
    tier = np.where(disagree, 0, np.where(cardinality >= 2, 1, np.where(exact, 3, 2)))
    order = np.lexsort((~exact, -cardinality, tier))  # last key first: tier, then more labels, then both right
    rest = [int(i) for i in order if int(i) not in picked]
    return np.asarray((picked + rest)[:n], dtype=int)


def fusion_panel(
    val_outputs: Mapping[str, np.ndarray],
    test_outputs: Mapping[str, np.ndarray],
    fusion_weights: Sequence[float] = paper_fusion_weights(),
    threshold: float = 0.5,
):
    """ipywidgets sliders for w0..w5 and the threshold; the nine metrics on val and test update live."""
    import ipywidgets as widgets  # lazy: optional extra `notebooks` (only this panel needs it)

    style = {"description_width": "initial"}
    names = [f"w{i} {title}" for i, title in enumerate(MODULE_TITLES)]  # w0 whole face, w1 left eye, ...
    sliders = {
        f"w{i}": widgets.FloatLogSlider(
            value=max(w, 1e-4),
            base=10,
            min=-4,
            max=1,
            step=0.05,
            description=names[i],
            style=style,
            readout_format=".4f",
        )
        for i, w in enumerate(fusion_weights)
    }
    sliders["threshold"] = widgets.FloatSlider(
        value=threshold, min=0.05, max=0.95, step=0.01, description="threshold", style=style
    )

    def show(**kw: float) -> None:
        from IPython.display import display  # lazy: only the notebook panel needs it

        w = [kw[f"w{i}"] for i in range(1 + NUM_LANDMARKS)]
        rows = {
            "val (choose here)": fused_metrics(val_outputs, w, kw["threshold"]),
            "test (report only)": fused_metrics(test_outputs, w, kw["threshold"]),
        }
        print("share of the vote:", ", ".join(f"{t} {x:.1%}" for t, x in zip(MODULE_TITLES, np.asarray(w) / sum(w))))
        display(styled(rows))

    return widgets.interactive(show, **sliders)


def lambda_check(reference: Any, retrained: Any) -> dict[str, Any]:
    """What retraining with other λ changed, against the reference run of the same seed (two TrainResults).

    Returns the selected epochs, per-module weight distances (selected checkpoints), per-module
    test-output differences, per-epoch loss differences, and the retrain's nine metrics beside the
    reference's saved outputs re-fused with the retrain's weights (1, λ1..λ5). Module tables are
    indexed by `MODULE_TITLES` (whole face, left eye, ...); "modules" joins the three.
    """

    ref_out = load_outputs(Path(reference.out_dir) / "test_outputs.npz")
    new_out = load_outputs(Path(retrained.out_dir) / "test_outputs.npz")
    weights = tuple(retrained.metrics["fusion_weights"])
    metrics = pd.DataFrame(
        {
            "retrained": {k: retrained.metrics[k] for k in METRIC_KEYS},
            "reference re-fused": fused_metrics(ref_out, weights),
        }
    )
    metrics["retrained - re-fused"] = metrics["retrained"] - metrics["reference re-fused"]
    losses = [("train_loss_global", "train_loss_global")] + [
        (f"train_loss_local{i + 1}",) * 2 for i in range(NUM_LANDMARKS)
    ]
    titles = dict(zip(MODULE_NAMES, MODULE_TITLES))
    weights_diff = compare_weights(reference.out_dir, retrained.out_dir, "checkpoint.pt").rename(index=titles)
    outputs_diff = compare_outputs(ref_out, new_out).rename(index=titles)
    losses_diff = compare_histories(reference.history, retrained.history, losses).set_axis(list(MODULE_TITLES), axis=0)
    losses_diff.columns = ["max |Δ training loss| per epoch"]
    losses_diff.index.name = "module"
    return {
        "selected_epochs": (reference.metrics["selected_epoch"], retrained.metrics["selected_epoch"]),
        "weights": weights_diff,
        "outputs": outputs_diff,
        "losses": losses_diff,
        "modules": weights_diff.join(outputs_diff).join(losses_diff),
        "metrics": metrics,
    }
