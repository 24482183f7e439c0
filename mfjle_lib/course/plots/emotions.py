"""How the built-in faces draw each emotion: its action units, the rendered face, and what changed where."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import PowerNorm
from matplotlib.patches import Patch, Rectangle

from ...constants import EMOTION_TITLES
from ...data.face_params import AU_NAMES
from ..face_codes import AU_REGIONS, AU_TITLES, change_maps
from .common import LANDMARK_COLOURS, draw_landmarks

REGION_COLOURS = {"brows": "tab:purple", "eyes": "tab:blue", "nose": "tab:orange", "mouth": "tab:red"}


def _crop_squares(ax: plt.Axes, landmarks: np.ndarray, side: float) -> None:
    """The five crop squares (side c·R) around their landmarks, in the landmark colours."""
    for (x, y), colour in zip(landmarks, LANDMARK_COLOURS):
        ax.add_patch(Rectangle((x - side / 2 - 0.5, y - side / 2 - 0.5), side, side, fill=False, color=colour, lw=1.0))


def plot_emotion_codes(renders: dict[str, Any], crop_fraction: float = 0.25, arrow_gain: float = 3.0) -> plt.Figure:
    """Emotion -> action units -> geometry, for `face_codes.render_emotions`: one column per emotion, neutral first.

    Row 1: the emotion's action units, coloured by the part of the face they move. Row 2: the rendered
    face with its landmarks; arrows show how far each landmark moved from neutral (times `arrow_gain`).
    Row 3: where the pixels changed (|emotion − neutral|) with the five crop squares of side c·R.
    """
    images, landmarks, aus = renders["images"], renders["landmarks"], renders["aus"]
    maps = change_maps(renders)
    side = crop_fraction * images.shape[1]
    titles = ["Neutral", *EMOTION_TITLES]
    fig, axes = plt.subplots(
        3, len(images), figsize=(2.0 * len(images), 6.6), gridspec_kw={"height_ratios": [1.0, 1.1, 1.1]}
    )
    colours = [REGION_COLOURS[AU_REGIONS[a]] for a in AU_NAMES]
    vmax = max(float(np.percentile(maps[1:], 99.5)), 1.0)
    for k, ax in enumerate(axes[0]):
        ax.barh(range(len(AU_NAMES)), aus[k], color=colours, height=0.75)
        ax.set_xlim(0, 1.05)
        ax.set_ylim(len(AU_NAMES) - 0.5, -0.5)
        ax.set_yticks(range(len(AU_NAMES)), AU_NAMES if k == 0 else [""] * len(AU_NAMES), fontsize=6)
        ax.set_xticks([])
        on = [a for a, v in zip(AU_NAMES, aus[k]) if v > 0]
        ax.set_title(titles[k] + ("\n" + ", ".join(on) if on else "\nno action unit"), fontsize=8)
    for k, (top, bottom) in enumerate(zip(axes[1], axes[2])):
        top.imshow(images[k])
        draw_landmarks(top, landmarks[k], size=10)
        for (x0, y0), (x1, y1) in zip(landmarks[0], landmarks[k]):
            if np.hypot(x1 - x0, y1 - y0) > 0.3:
                top.annotate(
                    "",
                    xy=(x0 - 0.5 + arrow_gain * (x1 - x0), y0 - 0.5 + arrow_gain * (y1 - y0)),
                    xytext=(x0 - 0.5, y0 - 0.5),
                    arrowprops={"arrowstyle": "->", "color": "yellow", "lw": 1.2},
                )
        if (
            k
        ):  # square-root colour scale: the faint changes (happiness, sadness) stay visible beside surprise's open mouth
            bottom.imshow(maps[k], cmap="magma", norm=PowerNorm(0.5, vmin=0, vmax=vmax))
        else:
            bottom.imshow(images[0].mean(-1), cmap="gray", vmin=0, vmax=255)
        _crop_squares(bottom, landmarks[k], side)
        bottom.set_title(
            f"the five crops, c = {crop_fraction:g}" if k == 0 else f"mean |Δ| {maps[k].mean():.2f}", fontsize=7
        )
        for ax in (top, bottom):
            ax.set_xticks([])
            ax.set_yticks([])
    axes[1, 0].set_ylabel(f"rendered; arrows ×{arrow_gain:g}", fontsize=7)
    axes[2, 0].set_ylabel("|emotion − neutral|", fontsize=7)
    handles = [
        Patch(
            color=c, label=f"{region}: " + ", ".join(f"{a} {AU_TITLES[a]}" for a in AU_NAMES if AU_REGIONS[a] == region)
        )
        for region, c in REGION_COLOURS.items()
    ]
    fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=6.5, frameon=False, bbox_to_anchor=(0.5, -0.06))
    fig.suptitle(
        "Built-in faces: emotion → action units → what moves (one identity, same pose and light, no noise)", fontsize=10
    )
    fig.tight_layout()
    return fig
