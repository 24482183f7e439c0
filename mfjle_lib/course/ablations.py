"""Lessons 04a, 04b, 05 and 08: seeds, paired single-vs-ensemble checks, λ sweeps by re-fusion, the fusion panel.

The λ question (docs/DESIGN.md §2): the six modules share no parameters and Adam is (up to its ε)
invariant to a constant scale of a loss term, so λ_i in Eq. 1 should change training almost only
through the fusion weights. The helpers here *measure* that (weights, logits, per-epoch losses of
two runs) and, where it holds, compute the Fig. 6-7 sweeps by re-fusing saved per-module outputs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
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


#: Every slider of the fusion panel gets this label column and this row length (label + track + readout), so the
#: tracks line up and equal values put their handles at the same x (labels of different widths moved them apart).
PANEL_DESCRIPTION_WIDTH = "8.5em"
PANEL_SLIDER_WIDTH = "560px"
#: The fusion sliders' range, as powers of 10 (FloatLogSlider's min/max), and the threshold's.
PANEL_LOG_RANGE = (-4.0, 1.0)
PANEL_THRESHOLD_RANGE = (0.05, 0.95)


def _vote_line(weights: Sequence[float]) -> str:
    """Each module's share of the fused vote, as the panel prints it."""
    share = np.asarray(weights, dtype=float) / float(np.sum(weights))
    return "share of the vote: " + ", ".join(f"{t} {x:.1%}" for t, x in zip(MODULE_TITLES, share))


def _panel_table(
    val_outputs: Mapping[str, np.ndarray], test_outputs: Mapping[str, np.ndarray], weights: Sequence[float], t: float
) -> pd.io.formats.style.Styler:
    """The panel's nine-metric table (a Styler): val, where to choose, and test, to report only."""
    return styled(
        {
            "val (choose here)": fused_metrics(val_outputs, weights, t),
            "test (report only)": fused_metrics(test_outputs, weights, t),
        }
    )


def panel_snapshot_html(
    val_outputs: Mapping[str, np.ndarray],
    test_outputs: Mapping[str, np.ndarray],
    fusion_weights: Sequence[float],
    threshold: float,
    track: int = 32,
) -> str:
    """A static picture of the fusion panel in HTML (sliders drawn as text, vote shares, metric table).

    A saved notebook shows it where no live widget can be drawn (GitHub, a notebook not yet run or not
    trusted): the sliders are a table of label, track and value, so equal values line up as they do live.
    """
    from html import escape

    lo, hi = PANEL_LOG_RANGE
    rows = [
        (f"w{i} {title}", (np.log10(max(w, 10.0**lo)) - lo) / (hi - lo), f"{w:.4f}")
        for i, (title, w) in enumerate(zip(MODULE_TITLES, fusion_weights))
    ]
    t_lo, t_hi = PANEL_THRESHOLD_RANGE
    rows.append(("threshold", (threshold - t_lo) / (t_hi - t_lo), f"{threshold:.2f}"))
    cells = []
    for label, pos, value in rows:
        k = int(round(min(max(pos, 0.0), 1.0) * (track - 1)))
        bar = "━" * k + "●" + "─" * (track - 1 - k)
        cells.append(
            f'<tr><td style="text-align:left">{escape(label)}</td><td><code>{bar}</code></td>'
            f"<td><code>{value}</code></td></tr>"
        )
    table = _panel_table(val_outputs, test_outputs, fusion_weights, threshold).to_html()
    return (
        '<div class="mfjle-fusion-panel">'
        "<p><b>Fusion panel</b>, a still picture saved with the notebook: run the lesson's cells (Run All) "
        "to get live sliders; moving one updates the table.</p>"
        f"<table>{''.join(cells)}</table><p>{escape(_vote_line(fusion_weights))}</p>{table}</div>"
    )


@functools.cache
def _panel_type() -> type:
    """`ipywidgets.interactive` whose display also carries `panel_snapshot_html` (made once, on first use)."""
    import ipywidgets as widgets  # lazy: optional extra `notebooks` (only this panel needs it)

    class FusionPanel(widgets.interactive):
        """The live panel; its saved output falls back to a static picture instead of the widget's repr."""

        snapshot: Callable[[], str]

        def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
            """The widget view, plus text/html (a front end without the live widget shows it) and a short text/plain."""
            bundle = super()._repr_mimebundle_(**kwargs)
            bundle["text/html"] = self.snapshot()
            bundle["text/plain"] = "Fusion panel: sliders for w0..w5 and the threshold (run the lesson to move them)"
            return bundle

    return FusionPanel


def fusion_panel(
    val_outputs: Mapping[str, np.ndarray],
    test_outputs: Mapping[str, np.ndarray],
    fusion_weights: Sequence[float] = paper_fusion_weights(),
    threshold: float = 0.5,
) -> Any:
    """ipywidgets sliders for w0..w5 and the threshold (an `interactive`); the nine metrics on val and test update live.

    Displayed, it also carries `panel_snapshot_html` as text/html, which a saved notebook shows where the live
    widget cannot be drawn (GitHub, a lesson opened but not yet run), instead of the widget's Python repr.
    """
    import ipywidgets as widgets  # lazy: optional extra `notebooks`, as in _panel_type

    def options(description: str) -> dict[str, Any]:
        # One label width and one row length for all seven, so their tracks start and end at the same x.
        return {
            "description": description,
            "style": {"description_width": PANEL_DESCRIPTION_WIDTH},
            "layout": widgets.Layout(width=PANEL_SLIDER_WIDTH),
        }

    lo, hi = PANEL_LOG_RANGE
    sliders = {
        f"w{i}": widgets.FloatLogSlider(
            value=max(w, 10.0**lo), base=10, min=lo, max=hi, step=0.05, readout_format=".4f", **options(f"w{i} {title}")
        )
        for i, (title, w) in enumerate(zip(MODULE_TITLES, fusion_weights))
    }
    t_lo, t_hi = PANEL_THRESHOLD_RANGE
    sliders["threshold"] = widgets.FloatSlider(
        value=threshold, min=t_lo, max=t_hi, step=0.01, readout_format=".2f", **options("threshold")
    )

    def show(**kw: float) -> None:
        from IPython.display import display  # lazy: only the notebook panel needs it

        w = [kw[f"w{i}"] for i in range(1 + NUM_LANDMARKS)]
        print(_vote_line(w))
        display(_panel_table(val_outputs, test_outputs, w, kw["threshold"]))

    panel = _panel_type()(show, **sliders)
    # The picture reads the sliders when the panel is displayed (their starting values, in a lesson run top to bottom).
    panel.snapshot = lambda: panel_snapshot_html(
        val_outputs,
        test_outputs,
        [sliders[f"w{i}"].value for i in range(1 + NUM_LANDMARKS)],
        sliders["threshold"].value,
    )
    return panel


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
