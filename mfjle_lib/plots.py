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


# ----------------------------------------------------------------------------- lessons 00, 02, 06


def plot_blends(images: np.ndarray, distributions: np.ndarray, labels: np.ndarray, threshold: float, landmarks: np.ndarray | None = None) -> plt.Figure:
    """Faces above their emotion shares: a bar per emotion, the label threshold dashed, labels in green."""
    n = len(images)
    fig, axes = plt.subplots(2, n, figsize=(2.1 * n, 4.3), squeeze=False, gridspec_kw={"height_ratios": [1.15, 1]})
    for k in range(n):
        axes[0, k].imshow(images[k])
        if landmarks is not None:
            draw_landmarks(axes[0, k], landmarks[k], 10)
        axes[0, k].axis("off")
        axes[0, k].set_title(label_names(labels[k]).replace(" + ", "\n+ "), fontsize=8)
        ax = axes[1, k]
        colours = ["tab:green" if y > 0.5 else "tab:gray" for y in labels[k]]
        ax.barh(EMOTION_TITLES, distributions[k], color=colours)
        ax.axvline(threshold, color="k", ls="--", lw=1)
        ax.set_xlim(0, max(0.6, float(np.max(distributions)) * 1.05))
        ax.invert_yaxis()
        ax.tick_params(labelsize=7)
        if k:
            ax.set_yticklabels([])
        ax.set_xlabel("share", fontsize=7)
    fig.suptitle(f"one face, several emotions: label = share ≥ {threshold:g} (dashed)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_detections(images: Sequence[np.ndarray], landmarks: Sequence[np.ndarray], boxes: Sequence[np.ndarray | None] | None = None, titles: Sequence[str] | None = None, template: bool | Sequence[bool] = False) -> plt.Figure:
    """Photos side by side with their five landmarks (and face boxes); `template` (per panel) marks TEMPLATE·side as white crosses."""
    from matplotlib.patches import Rectangle

    from .constants import TEMPLATE

    n = len(images)
    marks = [bool(template)] * n if isinstance(template, bool) else [bool(t) for t in template]
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.8), squeeze=False)
    for k, ax in enumerate(axes[0]):
        img = np.asarray(images[k])
        ax.imshow(img)
        if boxes is not None and boxes[k] is not None:
            x1, y1, x2, y2 = np.asarray(boxes[k], float)
            ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, color="yellow", lw=1.5))
        if marks[k]:
            t = TEMPLATE * img.shape[1]
            ax.scatter(t[:, 0] - 0.5, t[:, 1] - 0.5, marker="+", s=120, c="white", linewidths=1.2)
        draw_landmarks(ax, landmarks[k], 30)
        ax.axis("off")
        if titles is not None:
            ax.set_title(titles[k], fontsize=9)
    handles = [plt.Line2D([], [], ls="", marker="o", color=c, label=name.replace("_", " ")) for name, c in zip(LANDMARKS, LANDMARK_COLOURS)]
    fig.legend(handles=handles, loc="lower center", ncol=5, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def plot_crop_sizes(image: np.ndarray, landmarks: np.ndarray, fractions: Sequence[float], out_size: int) -> plt.Figure:
    """One row per crop fraction c: the face with its five squares, then the five crops at out_size."""
    from matplotlib.patches import Rectangle

    from .crops import crops_for_display

    fig, axes = plt.subplots(len(fractions), 6, figsize=(12, 2.2 * len(fractions)), squeeze=False, gridspec_kw={"width_ratios": [1.4, 1, 1, 1, 1, 1]})
    for row, c in zip(axes, fractions):
        side = c * image.shape[0]
        row[0].imshow(image)
        for (x, y), colour in zip(landmarks, LANDMARK_COLOURS):
            row[0].add_patch(Rectangle((x - side / 2 - 0.5, y - side / 2 - 0.5), side, side, fill=False, color=colour, lw=1.2))
        row[0].set_title(f"c = {c:g}: side {side:.0f} px", fontsize=9)
        for ax, crop, name, colour in zip(row[1:], crops_for_display(image, landmarks, c, out_size), LANDMARKS, LANDMARK_COLOURS):
            ax.imshow(crop)
            ax.set_title(name.replace("_", " "), fontsize=8, color=colour)
        for ax in row:
            ax.axis("off")
    fig.suptitle(f"crop size c·R on a face of R = {image.shape[0]} px, every crop resampled to {out_size}×{out_size}", fontsize=10)
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
    axes[1].plot(t, sweep["mean_predicted_labels"], marker="o", ms=3, color="tab:purple", label="predicted labels per face")
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


# ----------------------------------------------------------------------------- lessons 04, 05


def plot_architecture(image: np.ndarray, landmarks: np.ndarray, crop_fraction: float, local_size: int, global_size: int, lambdas: Sequence[float] = (0.01,) * 5) -> plt.Figure:
    """Fig. 1 of the paper drawn from one face: global ResNet-18, five crops into five local ResNet-18s, weighted fusion."""
    from matplotlib.patches import FancyBboxPatch, Rectangle

    from .crops import crops_for_display

    crops = crops_for_display(image, landmarks, crop_fraction, local_size)
    fig = plt.figure(figsize=(13, 5.9))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 13)
    ax.set_ylim(-0.3, 5.6)
    ax.axis("off")

    def box(x: float, y: float, w: float, h: float, text: str, colour: str, fs: int = 9) -> None:
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.03,rounding_size=0.1", fc=colour, ec="k", lw=0.8, alpha=0.9))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fs)

    def arrow(x0: float, y0: float, x1: float, y1: float, text: str = "", colour: str = "k") -> None:
        ax.annotate("", (x1, y1), (x0, y0), arrowprops={"arrowstyle": "->", "color": colour, "lw": 1.1})
        if text:
            ax.text(x0 + 0.55 * (x1 - x0), y0 + 0.55 * (y1 - y0) + 0.08, text, fontsize=8, color=colour, ha="center")

    # The face with its crop squares.
    face_ax = fig.add_axes((0.01, 1.7 / 5.9, 0.2, 2.8 / 5.9))
    face_ax.imshow(image)
    side = crop_fraction * image.shape[0]
    for (x, y), colour in zip(landmarks, LANDMARK_COLOURS):
        face_ax.add_patch(Rectangle((x - side / 2 - 0.5, y - side / 2 - 0.5), side, side, fill=False, color=colour, lw=1.4))
    draw_landmarks(face_ax, landmarks, 14)
    face_ax.set_title(f"aligned face, R = {image.shape[0]} px", fontsize=9)
    face_ax.axis("off")

    rows = np.linspace(5.0, 0.4, 6)
    box(4.1, rows[0] - 0.3, 2.6, 0.6, f"global ResNet-18\nwhole face → {global_size}×{global_size}", "#d9d9d9")
    arrow(1.5, 4.45, 4.1, rows[0])
    labels = ["left eye", "right eye", "nose", "left mouth", "right mouth"]
    for i, (y, crop, colour) in enumerate(zip(rows[1:], crops, LANDMARK_COLOURS)):
        cax = fig.add_axes((3.05 / 13, (y - 0.33 + 0.3) / 5.9, 0.66 / 13, 0.66 / 5.9))
        cax.imshow(crop)
        cax.set_xticks([])
        cax.set_yticks([])
        for s in cax.spines.values():
            s.set_color(colour)
            s.set_linewidth(2)
        arrow(2.85, 2.8, 3.0, y, colour=colour)
        box(4.1, y - 0.3, 2.6, 0.6, f"local ResNet-18 #{i + 1}\n{labels[i]} crop {local_size}×{local_size}", "#e5f5e0")
        arrow(3.75, y, 4.1, y, colour=colour)
    # Per-module probabilities, weights, fusion.
    weights = [1.0, *lambdas]
    names = ["σ(z_global)"] + [f"σ(z_local{i + 1})" for i in range(len(lambdas))]
    for y, name, w in zip(rows, names, weights):
        box(7.1, y - 0.22, 1.5, 0.44, name, "white", 8)
        arrow(6.7, y, 7.1, y)
        arrow(8.6, y, 9.7, 2.7, colour="tab:blue")
        ax.text(8.7, y + 0.08, f"w0 = {w:g}" if y == rows[0] else f"λ = {w:g}", fontsize=8, color="tab:blue")
    box(9.7, 2.2, 1.6, 1.0, "fusion\nΣ w_m σ(z_m) / Σ w_m", "#fee6ce", 9)
    box(11.6, 2.3, 1.3, 0.8, "6 probabilities\nlabel if ≥ 0.5", "#deebf7", 9)
    arrow(11.3, 2.7, 11.6, 2.7)
    ax.text(9.0, -0.2, "training: L = L_global + Σ λ_i L_local,i (Eq. 1), each L a binary cross-entropy (Eq. 2, corrected)", fontsize=9, ha="center", color="tab:blue")
    ax.text(6.5, 5.45, "MF-JLE (paper Fig. 1): one global and five local ResNet-18s, no shared weights, fused with weights (1, λ1..λ5)", fontsize=10, ha="center")
    return fig


def plot_module_scores(rows: Mapping[str, Mapping[str, float]], key: str = "micro_f1", highlight: Sequence[str] = ()) -> plt.Figure:
    """One metric for each module alone and for the fused ensemble, as horizontal bars."""
    names = list(rows)
    values = [float(rows[n][key]) for n in names]
    colours = ["tab:green" if n in highlight else ("tab:gray" if n.lower().startswith(("global", "resnet")) else "tab:olive") for n in names]
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


def plot_examples_table(images: Sequence[np.ndarray], truth: np.ndarray, predictions: Mapping[str, np.ndarray], cols: int = 3) -> plt.Figure:
    """Fig. 8 of the paper: each face above a 0/1 table (emotion × model, truth last); wrong cells red."""
    n = len(images)
    rows = int(np.ceil(n / cols))
    names = list(predictions) + ["truth"]
    fig, axes = plt.subplots(rows, 2 * cols, figsize=(4.4 * cols, 2.5 * rows), squeeze=False, gridspec_kw={"width_ratios": [1, 1.5] * cols})
    for ax in axes.flat:
        ax.axis("off")
    for k in range(n):
        r, c = divmod(k, cols)
        axes[r, 2 * c].imshow(images[k])
        axes[r, 2 * c].set_title(f"test face {k + 1}", fontsize=8)
        tab = axes[r, 2 * c + 1]
        t = (np.asarray(truth[k]) > 0.5).astype(int)
        grid = np.stack([(np.asarray(predictions[m][k]) > 0.5).astype(int) for m in predictions] + [t], axis=1)
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
    fig.suptitle("examples in the style of paper Fig. 8 (red: a wrong 0/1 decision)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_epoch_curves(groups: Mapping[str, Sequence[Any]], column: str = "val_micro_f1", ax: plt.Axes | None = None) -> plt.Figure:
    """A history column per epoch, mean ± std over seeds for each group of runs (paper Fig. 5)."""
    fig, ax = (plt.subplots(figsize=(7, 3.6)) if ax is None else (ax.figure, ax))
    for name, hs in groups.items():
        n = min(len(h) for h in hs)
        values = np.stack([np.asarray(h[column], float)[:n] for h in hs])
        epochs = np.asarray(hs[0]["epoch"])[:n]
        colour = next((c for k, c in MODEL_COLOURS.items() if name.lower().startswith(k)), None)
        mean = values.mean(0)
        line = ax.plot(epochs, mean, marker="o", ms=3, label=f"{name} ({len(hs)} seed{'s' if len(hs) > 1 else ''})", color=colour)[0]
        if len(hs) > 1:
            std = values.std(0, ddof=1)
            ax.fill_between(epochs, mean - std, mean + std, alpha=0.2, color=line.get_color())
    ax.set_xlabel("epoch")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(column.replace("val_", "validation "))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_lambda_curve(lams: Sequence[float], mean: Sequence[float], std: Sequence[float], retrained: Mapping[float, Sequence[float]] | None = None, ylabel: str = "micro-F1 (test)") -> plt.Figure:
    """Paper Fig. 6: a metric against a common λ, re-fused over seeds (line) and real retrains (diamonds)."""
    # Evenly spaced categories, as in the paper's figure (0 and 0.001 would overlap on a linear axis).
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    pos = {float(lam): k for k, lam in enumerate(lams)}
    ax.errorbar(range(len(lams)), mean, yerr=std, marker="o", capsize=4, color="tab:green", label="re-fused saved outputs (mean ± std over seeds)")
    if retrained:
        xs = [x for x in sorted(retrained) if float(x) in pos]
        ys = [float(np.mean(retrained[x])) for x in xs]
        es = [float(np.std(retrained[x], ddof=1)) if len(retrained[x]) > 1 else 0.0 for x in xs]
        n = sorted({len(retrained[x]) for x in xs})
        ax.errorbar([pos[float(x)] + 0.08 for x in xs], ys, yerr=es, ls="", marker="D", ms=8, mfc="none", capsize=4, color="tab:red", label=f"retrained with that λ ({'/'.join(map(str, n))} seed(s))")
    ax.set_xlabel("λ (same for all five local modules)")
    ax.set_ylabel(ylabel)
    ax.set_xticks(range(len(lams)), [f"{lam:g}" for lam in lams])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_local_lambda(means: np.ndarray, stds: np.ndarray, lams: Sequence[float], reference: tuple[float, float], ylabel: str = "micro-F1 (test)") -> plt.Figure:
    """Paper Fig. 7: one local λ_j changed (bars per λ value) for each local module, all-0.01 as a band."""
    means, stds = np.asarray(means, float), np.asarray(stds, float)
    fig, ax = plt.subplots(figsize=(8, 3.6))
    width = 0.8 / len(lams)
    x = np.arange(means.shape[0])
    for k, lam in enumerate(lams):
        ax.bar(x - 0.4 + width * (k + 0.5), means[:, k], width, yerr=stds[:, k], capsize=3, label=f"λ_j = {lam:g}")
    ref, ref_std = reference
    ax.axhline(ref, color="k", lw=1, label=f"all λ = 0.01 ({ref:.3f})")
    ax.axhspan(ref - ref_std, ref + ref_std, color="k", alpha=0.08)
    lo = float(np.nanmin(means - stds))
    hi = float(np.nanmax(means + stds))
    pad = max(0.01, 0.15 * (hi - lo))
    ax.set_ylim(min(lo, ref - ref_std) - pad, max(hi, ref + ref_std) + pad)
    ax.set_xticks(x, [f"local {j + 1}\n{LANDMARKS[j].replace('_', ' ')}" for j in range(means.shape[0])], fontsize=8)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, frameon=False)
    fig.tight_layout()
    return fig
