"""Lesson 05's figure of the controls: where MF-JLE's gain over one ResNet-18 comes from."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def plot_gain_split(split: pd.DataFrame, per_seed: pd.DataFrame | None = None, metric: str = "micro-F1") -> plt.Figure:
    """Bars: mean paired gain of each part (ensembling, locality, resolution, total) with ± 1 std; dots: the seeds."""
    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    x = np.arange(len(split))
    colours = ["#4c72b0", "#55a868", "#c44e52", "#555555"][: len(split)]
    ax.bar(x, split["mean"], yerr=split["std"], capsize=6, color=colours, alpha=0.8)
    if per_seed is not None:
        for i, part in enumerate(split.index):
            values = per_seed[part].to_numpy()
            ax.scatter(
                np.full(len(values), i) + np.linspace(-0.12, 0.12, len(values)), values, color="black", s=14, zorder=3
            )
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, [name.replace(" (", "\n(") for name in split.index])
    ax.set_ylabel(f"Δ {metric} (test), paired by seed")
    ax.set_title("MF-JLE − ResNet-18, split into its three parts (bars: mean ± std; dots: seeds)", fontsize=9)
    fig.tight_layout()
    return fig
