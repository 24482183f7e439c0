"""Figures of faces: samples, landmarks, crops, detections, blends, the architecture."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.patches import FancyBboxPatch, Rectangle

from ...constants import EMOTION_TITLES, LANDMARKS, TEMPLATE
from ...faces.display import crops_for_display
from ...method.fusion import DEFAULT_LAMBDAS
from .common import LANDMARK_COLOURS, draw_landmarks, label_names


def plot_samples(
    prepared: Any, n: int = 16, indices: Sequence[int] | None = None, cols: int = 8, seed: int = 0
) -> plt.Figure:
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


def plot_crops(
    image: np.ndarray, landmarks: np.ndarray, crop_fraction: float, out_size: int, title: str = ""
) -> plt.Figure:
    """The face with the five crop squares, then the five crops exactly as the local modules see them."""

    crops = crops_for_display(image, landmarks, crop_fraction, out_size)
    side = crop_fraction * image.shape[0]
    fig, axes = plt.subplots(1, 6, figsize=(13, 2.6), gridspec_kw={"width_ratios": [2, 1, 1, 1, 1, 1]})
    axes[0].imshow(image)
    draw_landmarks(axes[0], landmarks, 20)
    for (x, y), colour in zip(landmarks, LANDMARK_COLOURS):
        axes[0].add_patch(
            Rectangle((x - side / 2 - 0.5, y - side / 2 - 0.5), side, side, fill=False, color=colour, lw=1.5)
        )
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
    sns.heatmap(
        co,
        annot=True,
        fmt="d",
        cmap="Blues",
        xticklabels=EMOTION_TITLES,
        yticklabels=EMOTION_TITLES,
        ax=axes[2],
        cbar=False,
    )
    axes[2].set_title("co-occurrence (diagonal: positives)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- lessons 00, 02, 06


def plot_blends(
    images: np.ndarray,
    distributions: np.ndarray,
    labels: np.ndarray,
    threshold: float,
    landmarks: np.ndarray | None = None,
) -> plt.Figure:
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


def plot_detections(
    images: Sequence[np.ndarray],
    landmarks: Sequence[np.ndarray],
    boxes: Sequence[np.ndarray | None] | None = None,
    titles: Sequence[str] | None = None,
    template: bool | Sequence[bool] = False,
) -> plt.Figure:
    """Photos side by side with their five landmarks (and face boxes); `template` (per panel) marks TEMPLATE·side as
    white crosses."""

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
    handles = [
        plt.Line2D([], [], ls="", marker="o", color=c, label=name.replace("_", " "))
        for name, c in zip(LANDMARKS, LANDMARK_COLOURS)
    ]
    fig.legend(handles=handles, loc="lower center", ncol=5, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def plot_crop_sizes(image: np.ndarray, landmarks: np.ndarray, fractions: Sequence[float], out_size: int) -> plt.Figure:
    """One row per crop fraction c: the face with its five squares, then the five crops at out_size."""

    fig, axes = plt.subplots(
        len(fractions),
        6,
        figsize=(12, 2.2 * len(fractions)),
        squeeze=False,
        gridspec_kw={"width_ratios": [1.4, 1, 1, 1, 1, 1]},
    )
    for row, c in zip(axes, fractions):
        side = c * image.shape[0]
        row[0].imshow(image)
        for (x, y), colour in zip(landmarks, LANDMARK_COLOURS):
            row[0].add_patch(
                Rectangle((x - side / 2 - 0.5, y - side / 2 - 0.5), side, side, fill=False, color=colour, lw=1.2)
            )
        row[0].set_title(f"c = {c:g}: side {side:.0f} px", fontsize=9)
        for ax, crop, name, colour in zip(
            row[1:], crops_for_display(image, landmarks, c, out_size), LANDMARKS, LANDMARK_COLOURS
        ):
            ax.imshow(crop)
            ax.set_title(name.replace("_", " "), fontsize=8, color=colour)
        for ax in row:
            ax.axis("off")
    fig.suptitle(
        f"crop size c·R on a face of R = {image.shape[0]} px, every crop resampled to {out_size}×{out_size}",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------- lessons 04a-05


def plot_architecture(
    image: np.ndarray,
    landmarks: np.ndarray,
    crop_fraction: float,
    local_size: int,
    global_size: int,
    lambdas: Sequence[float] = DEFAULT_LAMBDAS,
) -> plt.Figure:
    """Fig. 1 of the paper drawn from one face: global ResNet-18, five crops into five local ResNet-18s, weighted
    fusion."""

    crops = crops_for_display(image, landmarks, crop_fraction, local_size)
    fig = plt.figure(figsize=(13, 5.9))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 13)
    ax.set_ylim(-0.3, 5.6)
    ax.axis("off")

    def box(x: float, y: float, w: float, h: float, text: str, colour: str, fs: int = 9) -> None:
        ax.add_patch(
            FancyBboxPatch(
                (x, y), w, h, boxstyle="round,pad=0.03,rounding_size=0.1", fc=colour, ec="k", lw=0.8, alpha=0.9
            )
        )
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
        face_ax.add_patch(
            Rectangle((x - side / 2 - 0.5, y - side / 2 - 0.5), side, side, fill=False, color=colour, lw=1.4)
        )
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
    names = ["σ(z) whole face"] + [f"σ(z) {label}" for label in labels[: len(lambdas)]]
    for y, name, w in zip(rows, names, weights):
        box(7.1, y - 0.22, 1.5, 0.44, name, "white", 8)
        arrow(6.7, y, 7.1, y)
        arrow(8.6, y, 9.7, 2.7, colour="tab:blue")
        ax.text(8.7, y + 0.08, f"w0 = {w:g}" if y == rows[0] else f"λ = {w:g}", fontsize=8, color="tab:blue")
    box(9.7, 2.2, 1.6, 1.0, "fusion\nΣ w_m σ(z_m) / Σ w_m", "#fee6ce", 9)
    box(11.6, 2.3, 1.3, 0.8, "6 probabilities\nlabel if ≥ 0.5", "#deebf7", 9)
    arrow(11.3, 2.7, 11.6, 2.7)
    ax.text(
        9.0,
        -0.2,
        "training: L = L_global + Σ λ_i L_local,i (Eq. 1), each L a binary cross-entropy (Eq. 2, corrected)",
        fontsize=9,
        ha="center",
        color="tab:blue",
    )
    ax.text(
        6.5,
        5.45,
        "MF-JLE (paper Fig. 1): one global and five local ResNet-18s, no shared weights, fused with weights (1, "
        "λ1..λ5)",
        fontsize=10,
        ha="center",
    )
    return fig
