"""Figure helpers shared by the lessons: saving, label names, landmark markers, colours."""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from ...constants import EMOTION_TITLES
from ...paths import figures_dir

if matplotlib.get_backend().lower() not in ("module://matplotlib_inline.backend_inline", "nbagg", "widget", "ipympl"):
    if "ipykernel" not in sys.modules:
        matplotlib.use("Agg")  # headless CLI/CI; notebooks keep their inline backend


LANDMARK_COLOURS = ("tab:blue", "tab:cyan", "tab:orange", "tab:red", "tab:pink")


MODEL_COLOURS = {"resnet18": "tab:gray", "mfjle": "tab:green"}


def save_figure(fig: plt.Figure, name: str | Path, dpi: int = 110) -> Path:
    """Save a figure: a bare name goes to the repo's `figures/` folder, a path where it says."""
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
