"""Lesson 05's figure of the controls: where MF-JLE's gain over one ResNet-18 comes from, at two rules."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..controls import part_values


def plot_gain_split(
    splits: Mapping[str, pd.DataFrame], per_seed: Mapping[str, pd.DataFrame] | None = None, metric: str = "micro-F1"
) -> plt.Figure:
    """Grouped bars, one group per part of the gain, one bar per rule (mean ± std, n seeds written at its foot); dots:
    the seeds."""
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
            yerr=split["std"].to_numpy(float),  # NaN on one seed: no error bar (its n is written below)
            capsize=4,
            color=colours[k % len(colours)],
            alpha=0.85,
            label=rule,
        )
        if "n" in split:  # how many seeds each bar averages
            for i, (mean, n) in enumerate(zip(split["mean"], split["n"])):
                ax.annotate(
                    f"n={n}",
                    (pos[i], 0),
                    xytext=(0, 3 if mean < 0 else -3),
                    textcoords="offset points",
                    ha="center",
                    va="bottom" if mean < 0 else "top",
                    fontsize=6,
                )
        if per_seed is not None:
            for i, part in enumerate(parts):
                values = part_values(per_seed[rule], part).to_numpy()  # the seeds the bar averages
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
    ax.set_title("MF-JLE − ResNet-18, split into its parts (bars: mean ± std over n seeds; dots: seeds)", fontsize=9)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig
