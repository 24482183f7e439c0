"""Every figure of the course: faces with landmarks, crops, label statistics, curves, bars, λ curves."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib

if matplotlib.get_backend().lower() not in ("module://matplotlib_inline.backend_inline", "nbagg", "widget", "ipympl"):
    import sys

    if "ipykernel" not in sys.modules:
        matplotlib.use("Agg")  # headless CLI/CI; notebooks keep their inline backend
import matplotlib.pyplot as plt
import numpy as np

from .constants import EMOTION_TITLES, EMOTIONS, LANDMARKS, METRIC_KEYS

LANDMARK_COLOURS = ("tab:blue", "tab:cyan", "tab:orange", "tab:red", "tab:pink")
MODEL_COLOURS = {"resnet18": "tab:gray", "mfjle": "tab:green"}


def save_figure(fig: plt.Figure, name: str | Path, dpi: int = 110) -> Path:
    """Save a figure: a bare name goes to the repo's `figures/` folder, a path where it says."""
    from .paths import figures_dir

    path = Path(name)
    if path.parent == Path("."):
        path = figures_dir() / path
    if not path.suffix:
        path = path.with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def label_names(vector: np.ndarray) -> str:
    """'Happiness + Surprise' for a 0/1 label vector ('none' when empty)."""
    names = [EMOTION_TITLES[i] for i in np.flatnonzero(np.asarray(vector) > 0.5)]
    return " + ".join(names) if names else "none"


def draw_landmarks(ax: plt.Axes, landmarks: np.ndarray, size: float = 18) -> None:
    """Five coloured dots; continuous pixel coordinates shifted by -0.5 to imshow's pixel centres."""
    for (x, y), colour in zip(np.asarray(landmarks), LANDMARK_COLOURS):
        ax.scatter([x - 0.5], [y - 0.5], s=size, c=colour, edgecolors="white", linewidths=0.5)


def plot_samples(prepared: Any, n: int = 16, indices: Sequence[int] | None = None, cols: int = 8, seed: int = 0) -> plt.Figure:
    """A grid of aligned faces with their five landmarks and label names."""
    if indices is None:
        rng = np.random.default_rng(seed)
        indices = np.sort(rng.choice(len(prepared.ids), size=min(n, len(prepared.ids)), replace=False))
    indices = list(indices)
    rows = int(np.ceil(len(indices) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.7 * cols, 1.95 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, indices):
        ax.imshow(prepared.images[i])
        draw_landmarks(ax, prepared.landmarks[i], size=10)
        ax.set_title(label_names(prepared.labels[i]).replace(" + ", "\n+"), fontsize=7)
    fig.suptitle(f"{prepared.name}: aligned faces, five landmarks, labels", fontsize=10)
    fig.tight_layout()
    return fig


def plot_crops(image: np.ndarray, landmarks: np.ndarray, crop_fraction: float, out_size: int, title: str = "") -> plt.Figure:
    """The face with the five crop squares, then the five crops exactly as the local modules see them."""
    from matplotlib.patches import Rectangle

    from .crops import crops_for_display

    crops = crops_for_display(image, landmarks, crop_fraction, out_size)
    side = crop_fraction * image.shape[0]
    fig, axes = plt.subplots(1, 6, figsize=(13, 2.6), gridspec_kw={"width_ratios": [2, 1, 1, 1, 1, 1]})
    axes[0].imshow(image)
    draw_landmarks(axes[0], landmarks, 20)
    for (x, y), colour in zip(landmarks, LANDMARK_COLOURS):
        axes[0].add_patch(Rectangle((x - side / 2 - 0.5, y - side / 2 - 0.5), side, side, fill=False, color=colour, lw=1.5))
    axes[0].set_title(title or f"crops: side c·R = {crop_fraction:g}·{image.shape[0]} px", fontsize=9)
    for ax, crop, name, colour in zip(axes[1:], crops, LANDMARKS, LANDMARK_COLOURS):
        ax.imshow(crop)
        ax.set_title(f"{name}\n{out_size}×{out_size}", fontsize=8, color=colour)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_label_stats(labels: np.ndarray, title: str = "") -> plt.Figure:
    """Positives per emotion, labels per image, and the co-occurrence heatmap."""
    import seaborn as sns

    labels = np.asarray(labels) > 0.5
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6), gridspec_kw={"width_ratios": [1.2, 0.8, 1.1]})
    counts = labels.sum(0)
    axes[0].bar(EMOTION_TITLES, counts, color="tab:blue")
    axes[0].set_title("positives per emotion")
    axes[0].tick_params(axis="x", rotation=30)
    card = labels.sum(1)
    axes[1].bar(*np.unique(card, return_counts=True), color="tab:purple")
    axes[1].set_title(f"labels per image (mean {card.mean():.2f})")
    axes[1].set_xlabel("number of labels")
    co = labels.T.astype(int) @ labels.astype(int)
    sns.heatmap(co, annot=True, fmt="d", cmap="Blues", xticklabels=EMOTION_TITLES, yticklabels=EMOTION_TITLES, ax=axes[2], cbar=False)
    axes[2].set_title("co-occurrence (diagonal: positives)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


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
    from sklearn.metrics import f1_score

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


def plot_metric_curve(x: Sequence[float], mean: Sequence[float], std: Sequence[float] | None = None, label: str = "", xlabel: str = "λ", ylabel: str = "micro-F1", ax: plt.Axes | None = None, **kwargs) -> plt.Figure:
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
        ax.bar(range(len(names)), [rows[n][key] for n in names], color=[MODEL_COLOURS.get(n.split()[0].lower(), "tab:blue") for n in names])
        ax.set_title(key, fontsize=8)
        ax.set_xticks(range(len(names)), names, rotation=45, fontsize=7)
    fig.tight_layout()
    return fig
