"""Accuracy check of the CPU deploy path (docs/DESIGN.md §6): micro-F1 change vs fp32 on the test split.

Usage:
    python benchmarks/check_deploy.py [--checkpoint runs/deploy_ckpt/checkpoint.pt] [--method int8|bf16|fp32|all]
                                      [--calibration-images 256] [--json benchmarks/results/deploy_check.json]

The checkpoint must be a trained MF-JLE at the benchmark geometry (R = S_g = 224, S_l = 64,
c = 0.25), e.g.

    python -m mfjle_lib train --dataset synthetic --model mfjle --preset cpu --source-size 224 \\
        --global-size 224 --local-size 64 --num-images 3000 --epochs 6 --batch-size 32 --out runs/deploy_ckpt

(about 20 minutes on the 2-core CPU; test micro-F1 0.776). Check on a trained model: a barely
trained one (micro-F1 0.37 after 2 epochs) has most probabilities near 0.5, where any rounding
flips decisions, and says little about a model anyone would deploy.

The reference is the eager fp32 model on the same test images; the deploy path is
`mfjle_lib.perf.deploy.optimize_for_cpu(model, method)`, calibrated (int8) on training-split images only.
A method passes when |micro-F1(deploy) - micro-F1(fp32)| <= 0.005 (`perf.inference_path.DEPLOY_TOLERANCE`). The JSON
(one object; with
`--method all` the entry of the default method at top level and every method under `methods`) is
what `benchmarks/bench.py` reads to decide whether the faster path may count.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np
import torch
from bench_common import cpu_name

from mfjle_lib.evaluation.outputs import fuse_saved, outputs_module_probs
from mfjle_lib.faces.normalise import imagenet_normalise, to_unit_float
from mfjle_lib.inference.evaluate import load_trained_model
from mfjle_lib.method.metrics import multilabel_report
from mfjle_lib.models.registry import model_spec
from mfjle_lib.perf.deploy import DEFAULT_METHOD, METHODS, optimize_for_cpu
from mfjle_lib.perf.inference_path import DEPLOY_TOLERANCE
from mfjle_lib.training.batches import (
    collect_outputs,
    load_data,
)

TOLERANCE = DEPLOY_TOLERANCE  # the limit `evaluate --precision auto` applies to bf16 (one rule, in the library)
DEFAULT_JSON = ROOT / "benchmarks" / "results" / "deploy_check.json"


def fused_probs(outputs: dict[str, np.ndarray], cfg) -> np.ndarray:
    """(N, 6) fused probabilities of collected logits, with the run's activation and fusion weights."""
    return fuse_saved(outputs_module_probs(outputs, cfg.activation), cfg.effective_fusion_weights())


def check(checkpoint: str, methods: list[str], calibration_images: int = 256, batch_size: int = 64) -> dict:
    cpu = torch.device("cpu")
    model, cfg = load_trained_model(checkpoint, "cpu")
    if not model_spec(cfg.model).has_locals:
        raise SystemExit(f"{checkpoint}: a checkpoint of a model with local nets is needed, got {cfg.model}")
    data = load_data(cfg, cpu, show_progress=False)
    test_idx = data.splits["test"]
    labels = data.prepared.labels[test_idx]

    ref_out = collect_outputs(model, data, test_idx, batch_size=batch_size, device=cpu)
    ref_probs = fused_probs(ref_out, cfg)
    ref = multilabel_report(labels, ref_probs)

    train_idx = np.asarray(data.splits["train"])[:calibration_images]
    calib = []
    for s in range(0, len(train_idx), 32):
        idx = torch.as_tensor(train_idx[s : s + 32])
        calib.append((imagenet_normalise(to_unit_float(data.images[idx], cpu)), data.landmarks[idx]))

    results = {}
    for method in methods:
        t0 = time.perf_counter()
        deployed = optimize_for_cpu(model, method, calibration=calib)
        build_s = time.perf_counter() - t0
        out = collect_outputs(deployed, data, test_idx, batch_size=batch_size, device=cpu)
        probs = fused_probs(out, cfg)
        rep = multilabel_report(labels, probs)
        change = float(rep["micro_f1"] - ref["micro_f1"])
        results[method] = {
            "method": method,
            "micro_f1_fp32": float(ref["micro_f1"]),
            "micro_f1_deploy": float(rep["micro_f1"]),
            "micro_f1_change": change,
            "tolerance": TOLERANCE,
            "passed": abs(change) <= TOLERANCE,
            "macro_f1_change": float(rep["macro_f1"] - ref["macro_f1"]),
            "micro_auc_change": float(rep["micro_auc"] - ref["micro_auc"]),
            "decisions_flipped": int(((probs >= 0.5) != (ref_probs >= 0.5)).sum()),
            "decisions_total": int(probs.size),
            "max_abs_prob_diff": float(np.abs(probs - ref_probs).max()),
            "mean_abs_prob_diff": float(np.abs(probs - ref_probs).mean()),
            "build_s": build_s,
            "calibration_images": int(len(train_idx)) if method == "int8" else 0,
        }
    return {
        "checkpoint": str(checkpoint),
        "cpu": cpu_name(),
        "dataset": cfg.dataset,
        "split": "test",
        "n_test": int(len(test_idx)),
        "geometry": cfg.geometry(),
        "reference": "eager fp32",
        "results": results,
    }


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description="micro-F1 change of the CPU deploy path vs fp32")
    p.add_argument("--checkpoint", default=str(ROOT / "runs" / "deploy_ckpt" / "checkpoint.pt"))
    p.add_argument("--method", default="all", help=f"one of {METHODS} or 'all' (default)")
    p.add_argument("--calibration-images", type=int, default=256)
    p.add_argument("--json", default=str(DEFAULT_JSON))
    args = p.parse_args(argv)
    if not Path(args.checkpoint).exists():
        print(
            f"error: {args.checkpoint}: no such checkpoint (train one first; see this script's docstring)",
            file=sys.stderr,
        )
        raise SystemExit(2)
    methods = list(METHODS) if args.method == "all" else [args.method]
    report = check(args.checkpoint, methods, args.calibration_images)
    default = DEFAULT_METHOD if DEFAULT_METHOD in report["results"] else methods[0]
    out = dict(report["results"][default])
    out.update({k: v for k, v in report.items() if k != "results"})
    out["methods"] = report["results"]
    for m, r in report["results"].items():
        print(
            f"{m:5s} micro-F1 fp32 {r['micro_f1_fp32']:.4f} -> {r['micro_f1_deploy']:.4f} "
            f"(change {r['micro_f1_change']:+.4f}, limit {TOLERANCE}) {'passed' if r['passed'] else 'FAILED'}; "
            f"{r['decisions_flipped']}/{r['decisions_total']} decisions flipped, max |dp| {r['max_abs_prob_diff']:.4f}",
            file=sys.stderr,
        )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
