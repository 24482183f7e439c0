"""Accuracy check of the CPU deploy paths (docs/DESIGN.md §6): flipped decisions and the largest probability change
against the eager fp32 model, on the test split.

Usage:
    python benchmarks/check_deploy.py [--checkpoint runs/deploy_ckpt/checkpoint.pt] [--method int8|bf16|fp32|all]
                                      [--calibration-images 256] [--json FILE]

FILE defaults to `benchmarks/results/<cpu kind>/deploy_check.json` (`mfjle_lib.runtime.cpu_kind`).

The checkpoint must be a trained MF-JLE at the benchmark geometry (R = S_g = 224, S_l = 64,
c = 0.25), e.g.

    python -m mfjle_lib train --dataset synthetic --model mfjle --preset cpu --source-size 224 \\
        --global-size 224 --local-size 64 --num-images 3000 --epochs 6 --batch-size 32 --out runs/deploy_ckpt

(about 20 minutes on the 2-core CPU; test micro-F1 0.776). Check on a trained model: a barely
trained one (micro-F1 0.37 after 2 epochs) has most probabilities near 0.5, where any rounding
flips decisions, and says little about a model anyone would deploy.

The reference is the eager fp32 model on the same faces; the deploy path is
`mfjle_lib.perf.deploy.optimize_for_cpu(model, method)`, calibrated (int8) on training-split images only.
The rule is the one `--precision auto` applies (`mfjle_lib.perf.path_check`): a method passes when
at most `FLIP_LIMIT` (1 %) of the label decisions (face × emotion, at the run's thresholds on the
fused output) flip and no fused probability moves more than `MAX_CHANGE_LIMIT` (0.2), on at least
`POOL_MIN` (256) faces: the test split, topped up with built-in faces when it is smaller. The
micro-F1 change is reported beside it, for information. The JSON (one object; with `--method all`
the entry of the default method at top level and every method under `methods`) is what
`benchmarks/bench.py` reads to decide whether the faster path may count.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch
from bench_common import cpu_name

from mfjle_lib.course.timing import benchmark_path
from mfjle_lib.inference.evaluate import load_trained_model
from mfjle_lib.method.metrics import multilabel_report
from mfjle_lib.models.registry import model_spec
from mfjle_lib.perf.deploy import DEFAULT_METHOD, METHODS, optimize_for_cpu
from mfjle_lib.perf.path_check import check_summary, compare_to_reference, decision_thresholds
from mfjle_lib.runtime import cpu_kind, machine_record
from mfjle_lib.training.batches import load_data
from mfjle_lib.training.inference_path import calibration_batches, check_pool, fused_probs

DEFAULT_JSON = benchmark_path(cpu_kind(), "deploy_check")  # one check per CPU kind: each kind rounds its own way


def check(checkpoint: str, methods: list[str], calibration_images: int = 256, batch_size: int = 64) -> dict:
    """Each method against the eager fp32 model on the test faces (topped up to the pool minimum): the rule's numbers,
    the micro-F1 change, the build time."""
    cpu = torch.device("cpu")
    model, cfg = load_trained_model(checkpoint, "cpu")
    if not model_spec(cfg.model).has_locals:
        raise SystemExit(f"{checkpoint}: a checkpoint of a model with local nets is needed, got {cfg.model}")
    data = load_data(cfg, cpu, show_progress=False)
    pool = check_pool(data, "test")
    n_test, labels, thresholds = pool.n_split, pool.labels, decision_thresholds(cfg.activation)
    ref_probs = fused_probs(model, pool, cfg, cpu, batch_size)
    ref = multilabel_report(labels, ref_probs[:n_test])
    calib = calibration_batches(data, cpu, calibration_images)

    results = {}
    for method in methods:
        t0 = time.perf_counter()
        deployed = optimize_for_cpu(model, method, calibration=calib)
        build_s = time.perf_counter() - t0
        probs = fused_probs(deployed, pool, cfg, cpu, batch_size)
        rep = multilabel_report(labels, probs[:n_test])
        results[method] = {
            "method": method,
            **compare_to_reference(ref_probs, probs, thresholds),
            "pool": pool.record(),
            "micro_f1_fp32": float(ref["micro_f1"]),
            "micro_f1_deploy": float(rep["micro_f1"]),
            "micro_f1_change": float(rep["micro_f1"] - ref["micro_f1"]),
            "macro_f1_change": float(rep["macro_f1"] - ref["macro_f1"]),
            "micro_auc_change": float(rep["micro_auc"] - ref["micro_auc"]),
            "build_s": build_s,
            "calibration_images": sum(len(x) for x, _ in calib) if method in ("int8", "mixed") else 0,
        }
    return {
        "checkpoint": str(checkpoint),
        "cpu": cpu_name(),
        "machine": machine_record(),  # the kind decides the rounding: checks are kept per kind
        "date": datetime.date.today().isoformat(),
        "dataset": cfg.dataset,
        "split": "test",
        "n_test": int(n_test),
        "geometry": cfg.geometry(),
        "reference": "eager fp32",
        "results": results,
    }


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description="flipped decisions and probability change of the CPU deploy paths vs fp32")
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
        print(f"{m:5s} {'passed' if r['passed'] else 'FAILED'}: {check_summary(r)}", file=sys.stderr)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
