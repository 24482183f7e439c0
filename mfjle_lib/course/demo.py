"""The main job (`make demo`): ResNet-18 and MF-JLE on the built-in dataset, a table and a figure."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import matplotlib.pyplot as plt

from ..evaluation.outputs import load_outputs
from ..evaluation.reports import format_table, results_table
from ..paths import runs_dir
from ..runtime import get_device
from ..training.batches import load_data
from ..training.config import make_config
from ..training.trainer import train
from .plots.common import save_figure
from .plots.faces import plot_samples
from .plots.results import plot_history, plot_per_label_f1


def run_demo(
    preset: str | None = None, seed: int = 0, out: str | Path | None = None, device: str | None = None
) -> dict:
    """Train both models on `synthetic` (cpu preset: ≤ 10 min on 2 cores), print the table, save figures."""
    dev = get_device(device)
    preset = preset or ("gpu" if dev.type == "cuda" else "cpu")
    out = Path(out) if out else runs_dir() / "demo"
    cfg = make_config(preset, dataset="synthetic", seed=seed, device=str(dev))
    print(
        f"demo: preset {preset} on {dev}; R={cfg.source_size}, S_g={cfg.global_size}, S_l={cfg.local_size}, "
        f"c={cfg.crop_fraction}, "
        f"{cfg.num_images} synthetic faces, {cfg.epochs} epochs, batch {cfg.batch_size}, lr {cfg.lr:g}",
        flush=True,
    )
    t0 = time.time()
    data = load_data(cfg, dev)
    print(
        f"data ready in {time.time() - t0:.1f}s: " + ", ".join(f"{k} {len(v)}" for k, v in data.splits.items()),
        flush=True,
    )
    samples = save_figure(plot_samples(data.prepared, n=16), out / "samples.png")
    results = {}
    for name in ("resnet18", "mfjle"):
        t1 = time.time()
        # The demo's own folder: a previous demo run there is replaced (moved aside, removed after the first
        # checkpoint).
        results[name] = train(replace(cfg, model=name), out / name, data=data, overwrite=True)
        print(f"{name}: trained in {time.time() - t1:.0f}s", flush=True)
    rows = {f"{name} (ours)": r.metrics for name, r in results.items()}
    print()
    print(format_table(results_table(rows, "synthetic")))
    outputs = {name: load_outputs(out / name / "test_outputs.npz") for name in results}
    fig_curves = plot_history({name: r.history for name, r in results.items()})
    fig_f1 = plot_per_label_f1({name: (o["labels"], o["fused_probs"]) for name, o in outputs.items()})
    curves = save_figure(fig_curves, out / "curves.png")
    f1 = save_figure(fig_f1, out / "per_label_f1.png")
    plt.close("all")
    print(f"\nfigures: {samples}, {curves}, {f1}\ntotal time {time.time() - t0:.0f}s; outputs in {out}")
    return rows
