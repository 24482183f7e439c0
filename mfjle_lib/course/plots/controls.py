"""Lesson 05's figure of the controls: where MF-JLE's gain over one ResNet-18 comes from, at two rules."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def plot_gain_split(
    splits: Mapping[str, pd.DataFrame], per_seed: Mapping[str, pd.DataFrame] | None = None, metric: str = "micro-F1"
) -> plt.Figure:
    """Grouped bars, one group per part of the gain, one bar per rule (mean ± std); dots: the seeds."""
    rules = list(splits)
    parts = list(next(iter(splits.values())).index)
    fig, ax = plt.subplots(figsize=(9, 3.6))
    x = np.arange(len(parts))
    width = 0.8 / len(rules)
    colours = ["#4c72b0", "#dd8452", "#55a868", "#c44e52"]
    for k, rule in enumerate(rules):
        split = splits[rule].loc[parts]
        pos = x - 0.4 + width * (k + 0.5)
        ax.bar(
            pos,
            split["mean"],
            width * 0.9,
            yerr=split["std"],
            capsize=4,
            color=colours[k % len(colours)],
            alpha=0.85,
            label=rule,
        )
        if per_seed is not None:
            for i, part in enumerate(parts):
                values = per_seed[rule][part].to_numpy()
                ax.scatter(
                    np.full(len(values), pos[i]) + np.linspace(-width / 4, width / 4, len(values)),
                    values,
                    color="black",
                    s=10,
                    zorder=3,
                )
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, [textwrap.fill(name, 18) for name in parts], fontsize=8)
    ax.set_ylabel(f"Δ {metric} (test), paired by seed")
    ax.set_title("MF-JLE − ResNet-18, split into its parts (bars: mean ± std; dots: seeds)", fontsize=9)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig
