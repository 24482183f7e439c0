"""Figures of results: training curves, per-label F1, λ curves, metric bars, example tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import f1_score

from ...constants import EMOTION_TITLES, EMOTIONS
from ...method.fusion import MODULE_TITLES
from ...method.metrics import METRIC_KEYS
from .common import MODEL_COLOURS, draw_landmarks


def plot_history(histories: Mapping[str, Any], metric: str = "val_micro_f1") -> plt.Figure:
    """Training loss and a validation metric per epoch for several runs (pandas DataFrames)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    for name, h in histories.items():
        colour = next((c for k, c in MODEL_COLOURS.items() if name.lower().startswith(k)), None)
        axes[0].plot(h["epoch"], h["train_loss_global"], label=f"{name} (global BCE)", color=colour)
        axes[1].plot(h["epoch"], h[metric], marker="o", ms=3, label=name, color=colour)
        sel = h[h["selected"] == 1]
        if len(sel):
            best = sel.iloc[-1]
            axes[1].scatter([best["epoch"]], [best[metric]], s=80, facecolors="none", edgecolors=colour or "k")
    axes[0].set_title("training loss (global module)")
    axes[1].set_title(f"validation {metric.replace('val_', '')} (circle: selected epoch)")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_per_label_f1(results: Mapping[str, tuple[np.ndarray, np.ndarray]], threshold: float = 0.5) -> plt.Figure:
    """F1 per emotion for several models: results maps name -> (labels, probabilities)."""
    fig, ax = plt.subplots(figsize=(9, 3.4))
    width = 0.8 / max(len(results), 1)
    for k, (name, (y, p)) in enumerate(results.items()):
        f1 = f1_score(np.asarray(y) > 0.5, np.asarray(p) >= threshold, average=None, zero_division=0)
        colour = next((c for key, c in MODEL_COLOURS.items() if name.lower().startswith(key)), None)
        ax.bar(np.arange(len(EMOTIONS)) + k * width - 0.4 + width / 2, f1, width, label=name, color=colour)
    ax.set_xticks(np.arange(len(EMOTIONS)), EMOTION_TITLES)
    ax.set_ylabel("F1 (test)")
    ax.set_ylim(0, 1)
    ax.set_title("per-label F1")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_metric_curve(
    x: Sequence[float],
    mean: Sequence[float],
    std: Sequence[float] | None = None,
    label: str = "",
    xlabel: str = "λ",
    ylabel: str = "micro-F1",
    ax: plt.Axes | None = None,
    **kwargs,
) -> plt.Figure:
    """A metric against a parameter with error bars (the λ curve of Fig. 6)."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.4))
    else:
        fig = ax.figure
    ax.errorbar(x, mean, yerr=std, marker="o", capsize=4, label=label, **kwargs)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if label:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_prediction(pred: Any, title: str = "") -> plt.Figure:
    """A photo's aligned face with landmarks and its probabilities per emotion as bars."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), gridspec_kw={"width_ratios": [1, 1.6]})
    axes[0].imshow(pred.aligned)
    draw_landmarks(axes[0], pred.landmarks, 20)
    axes[0].axis("off")
    axes[0].set_title(title or Path(str(pred.source)).name, fontsize=9)
    probs = [pred.probs.get(e, 0.0) for e in EMOTIONS]
    colours = ["tab:green" if p >= 0.5 else "tab:gray" for p in probs]
    axes[1].barh(EMOTION_TITLES, probs, color=colours)
    axes[1].axvline(0.5, color="k", ls="--", lw=1)
    axes[1].set_xlim(0, 1)
    axes[1].invert_yaxis()
    axes[1].set_xlabel("fused probability (dashed: threshold 0.5)")
    fig.tight_layout()
    return fig


def metrics_bar(rows: Mapping[str, Mapping[str, float]], keys: Sequence[str] = METRIC_KEYS) -> plt.Figure:
    """The nine metrics of several models side by side."""
    fig, axes = plt.subplots(1, len(keys), figsize=(2 * len(keys), 2.6))
    for ax, key in zip(np.atleast_1d(axes), keys):
        names = list(rows)
        ax.bar(
            range(len(names)),
            [rows[n][key] for n in names],
            color=[MODEL_COLOURS.get(n.split()[0].lower(), "tab:blue") for n in names],
        )
        ax.set_title(key, fontsize=8)
        ax.set_xticks(range(len(names)), names, rotation=45, fontsize=7)
    fig.tight_layout()
    return fig


def plot_threshold_sweep(sweep: Any, cardinality: float | None = None, mark: float = 0.5) -> plt.Figure:
    """Hamming loss and micro/macro F1 against the threshold (metrics.threshold_sweep), labels per face beside."""
    t = np.asarray(sweep.index, float)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    axes[0].plot(t, sweep["micro_f1"], marker="o", ms=3, label="micro-F1 ↑")
    axes[0].plot(t, sweep["macro_f1"], marker="o", ms=3, label="macro-F1 ↑")
    axes[0].plot(t, sweep["hamming_loss"], marker="o", ms=3, label="Hamming loss ↓")
    axes[0].set_title("threshold-dependent metrics")
    axes[1].plot(
        t, sweep["mean_predicted_labels"], marker="o", ms=3, color="tab:purple", label="predicted labels per face"
    )
    if cardinality is not None:
        axes[1].axhline(cardinality, color="k", ls=":", label=f"true labels per face ({cardinality:.2f})")
    axes[1].set_title("how many labels the threshold lets through")
    for ax in axes:
        ax.axvline(mark, color="gray", ls="--", lw=1)
        ax.set_xlabel("threshold on the fused probability")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_module_scores(
    rows: Mapping[str, Mapping[str, float]], key: str = "micro_f1", highlight: Sequence[str] = ()
) -> plt.Figure:
    """One metric for each module alone and for the fused ensemble, as horizontal bars."""
    names = list(rows)
    values = [float(rows[n][key]) for n in names]
    colours = [
        "tab:green"
        if n in highlight
        else ("tab:gray" if n.lower().startswith(("global", "resnet", "whole face")) else "tab:olive")
        for n in names
    ]
    fig, ax = plt.subplots(figsize=(7, 0.42 * len(names) + 1))
    ax.barh(names, values, color=colours)
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:.3f}", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, min(1.0, max(values) * 1.2 + 0.02))
    ax.set_xlabel(f"{key} (test)")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_examples_table(
    images: Sequence[np.ndarray], truth: np.ndarray, predictions: Mapping[str, np.ndarray], cols: int = 3
) -> plt.Figure:
    """Fig. 8 of the paper: each face above a 0/1 table (emotion × model, truth last); wrong cells red."""
    n = len(images)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(
        rows, 2 * cols, figsize=(4.4 * cols, 2.5 * rows), squeeze=False, gridspec_kw={"width_ratios": [1, 1.5] * cols}
    )
    for ax in axes.flat:
        ax.axis("off")
    for k in range(n):
        r, c = divmod(k, cols)
        axes[r, 2 * c].imshow(images[k])
        axes[r, 2 * c].set_title(f"test face {k + 1}", fontsize=8)
        _decision_table(axes[r, 2 * c + 1], truth[k], {m: predictions[m][k] for m in predictions})
    fig.suptitle("examples in the style of paper Fig. 8 (red: a wrong 0/1 decision)", fontsize=10)
    fig.tight_layout()
    return fig


def _decision_table(tab: plt.Axes, truth: np.ndarray, predictions: Mapping[str, np.ndarray]) -> None:
    """One face's 0/1 table (emotion × model, truth last) drawn into `tab`: wrong cells red, right positives green."""
    names = list(predictions) + ["truth"]
    t = (np.asarray(truth) > 0.5).astype(int)
    grid = np.stack([(np.asarray(predictions[m]) > 0.5).astype(int) for m in predictions] + [t], axis=1)
    colour = np.ones((len(EMOTIONS), len(names), 3))
    wrong = grid[:, :-1] != t[:, None]
    colour[:, :-1][wrong] = (1.0, 0.75, 0.75)
    colour[:, :-1][~wrong & (grid[:, :-1] == 1)] = (0.78, 0.93, 0.78)
    colour[:, -1][t == 1] = (0.85, 0.85, 0.85)
    tab.imshow(colour, aspect="auto")
    for i in range(len(EMOTIONS)):
        for j in range(len(names)):
            tab.text(j, i, str(grid[i, j]), ha="center", va="center", fontsize=8)
    tab.set_xticks(range(len(names)), names, fontsize=7)
    tab.set_yticks(range(len(EMOTIONS)), EMOTION_TITLES, fontsize=7)
    tab.tick_params(length=0)
    tab.axis("on")


def plot_decision_rows(
    ids: Sequence[str], truth: np.ndarray, predictions: Mapping[str, np.ndarray], cols: int = 3
) -> plt.Figure:
    """Fig. 8's tables without the faces (a dataset whose images do not ship): one 0/1 table per face, titled by id."""
    rows = int(np.ceil(len(ids) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for k, face in enumerate(ids):
        ax = axes.flat[k]
        _decision_table(ax, truth[k], {m: predictions[m][k] for m in predictions})
        ax.set_title(str(face), fontsize=8)
    fig.suptitle("decisions in the style of paper Fig. 8 (red: a wrong 0/1 decision)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_reliability(tables: Mapping[str, Any]) -> plt.Figure:
    """Reliability diagram: each bin's mean probability against how often the emotion is really present
    (`evaluation.reliability_table`, one line per reading); on the diagonal a probability means what it says."""
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.plot([0, 1], [0, 1], color="gray", ls="--", lw=1, label="calibrated")
    for name, table in tables.items():
        t = table.dropna()
        size = 12 + 120 * t["pairs"] / max(float(t["pairs"].max()), 1.0)
        line = ax.plot(t["mean probability"], t["share really present"], marker="", label=name)[0]
        ax.scatter(t["mean probability"], t["share really present"], s=size, color=line.get_color(), zorder=3)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean probability in the bin")
    ax.set_ylabel("share of pairs with the emotion present")
    ax.set_title("reliability: (face, emotion) pairs by probability bin\n(dot area ∝ pairs in the bin)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_epoch_curves(
    groups: Mapping[str, Sequence[Any]], column: str = "val_micro_f1", ax: plt.Axes | None = None
) -> plt.Figure:
    """A history column per epoch, mean ± std over seeds for each group of runs (paper Fig. 5)."""
    fig, ax = plt.subplots(figsize=(7, 3.6)) if ax is None else (ax.figure, ax)
    for name, hs in groups.items():
        n = min(len(h) for h in hs)
        values = np.stack([np.asarray(h[column], float)[:n] for h in hs])
        epochs = np.asarray(hs[0]["epoch"])[:n]
        colour = next((c for k, c in MODEL_COLOURS.items() if name.lower().startswith(k)), None)
        mean = values.mean(0)
        line = ax.plot(
            epochs, mean, marker="o", ms=3, label=f"{name} ({len(hs)} seed{'s' if len(hs) > 1 else ''})", color=colour
        )[0]
        if len(hs) > 1:
            std = values.std(0, ddof=1)
            ax.fill_between(epochs, mean - std, mean + std, alpha=0.2, color=line.get_color())
    ax.set_xlabel("epoch")

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(column.replace("val_", "validation "))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_lambda_curve(
    lams: Sequence[float],
    mean: Sequence[float],
    std: Sequence[float],
    retrained: Mapping[float, Sequence[float]] | None = None,
    ylabel: str = "micro-F1 (test)",
    same_seed: Sequence[float] | None = None,
    seed_label: str = "seed 0",
    n_seeds: int | None = None,
) -> plt.Figure:
    """Paper Fig. 6: a metric against a common λ, re-fused over seeds (mean ± std), with retrains as the check.

    Like with like: `retrained` (λ -> the metric of each retrain) should come from the seed(s) whose
    re-fused curve is `same_seed` (one value per λ in `lams`); the retrains are drawn on that curve,
    never on the mean over other seeds. Two panels: the full axis from 0, and a zoom whose y-axis
    does not start at 0 (said in its title).
    """
    # Evenly spaced categories, as in the paper's figure (0 and 0.001 would overlap on a linear axis).
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [1, 1.6]})
    pos = {float(lam): k for k, lam in enumerate(lams)}
    seeds = f" over {n_seeds} seeds" if n_seeds else " over seeds"
    for ax in axes:
        ax.errorbar(
            range(len(lams)),
            mean,
            yerr=std,
            marker="o",
            capsize=4,
            color="tab:green",
            label=f"re-fused, mean ± std{seeds}",
        )
        if same_seed is not None:
            ax.plot(range(len(lams)), same_seed, ls="--", marker=".", color="tab:blue", label=f"{seed_label}, re-fused")
        if retrained:
            xs = [x for x in sorted(retrained) if float(x) in pos]
            ys = [float(np.mean(retrained[x])) for x in xs]
            es = [float(np.std(retrained[x], ddof=1)) if len(retrained[x]) > 1 else 0.0 for x in xs]
            ax.errorbar(
                [pos[float(x)] for x in xs],
                ys,
                yerr=es,
                ls="",
                marker="D",
                ms=9,
                mfc="none",
                mew=1.5,
                capsize=4,
                color="tab:red",
                label=f"{seed_label}, retrained with that λ",
            )
        ax.set_xlabel("λ (same for all five local modules)")
        ax.set_xticks(range(len(lams)), [f"{lam:g}" for lam in lams])
        ax.grid(alpha=0.3)
    axes[0].set_ylim(0, 1)
    axes[0].set_ylabel(ylabel)
    axes[0].set_title("full axis", fontsize=9)
    axes[1].set_title("zoom: the y-axis does not start at 0", fontsize=9)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_local_lambda(
    means: np.ndarray,
    stds: np.ndarray,
    lams: Sequence[float],
    reference: tuple[float, float],
    ylabel: str = "micro-F1 (test)",
    deltas: tuple[np.ndarray, np.ndarray] | None = None,
) -> plt.Figure:
    """Paper Fig. 7: one local λ_j changed (bars per λ value) for each local module, all-0.01 as a band.

    The bars start at 0 (full axis). `deltas` (means, stds of the per-seed difference to all-0.01,
    same shape as `means`) adds a second panel centred on 0, where small effects are visible honestly.
    """
    means, stds = np.asarray(means, float), np.asarray(stds, float)
    fig, axes = plt.subplots(
        1, 2 if deltas is not None else 1, figsize=(13 if deltas is not None else 8, 3.8), squeeze=False
    )
    axes = axes[0]
    width = 0.8 / len(lams)
    x = np.arange(means.shape[0])
    names = list(MODULE_TITLES[1 : 1 + means.shape[0]])  # anatomical names: left eye, right eye, nose, ...
    ax = axes[0]
    for k, lam in enumerate(lams):
        ax.bar(x - 0.4 + width * (k + 0.5), means[:, k], width, yerr=stds[:, k], capsize=3, label=f"λ_j = {lam:g}")
    ref, ref_std = reference
    ax.axhline(ref, color="k", lw=1, label=f"all λ = 0.01 ({ref:.3f})")
    ax.axhspan(ref - ref_std, ref + ref_std, color="k", alpha=0.08)
    ax.set_ylim(0, 1)
    ax.set_ylabel(ylabel)
    ax.set_title("full axis from 0", fontsize=9)
    if deltas is not None:
        dm, ds = (np.asarray(a, float) for a in deltas)
        for k, lam in enumerate(lams):
            axes[1].bar(x - 0.4 + width * (k + 0.5), dm[:, k], width, yerr=ds[:, k], capsize=3, label=f"λ_j = {lam:g}")
        axes[1].axhline(0, color="k", lw=1)
        axes[1].set_ylabel("difference to all λ = 0.01")
        axes[1].set_title("paired by seed: λ_j changed minus all 0.01 (mean ± std)", fontsize=9)
    for ax in axes:
        ax.set_xticks(x, names, fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=3, frameon=False)
    fig.tight_layout()
    return fig
