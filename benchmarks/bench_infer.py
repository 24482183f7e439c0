"""FLOPs and inference speed for `bench.py`: the torchvision reference, eager forms, CPU deploy paths, the default
path."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torchvision
from bench_common import (
    LAST_CPU_TIMES,
    interleaved,
    make_model,
    model_input,
)  # first: puts the checkout on sys.path

from mfjle_lib.course.timing import benchmark_path
from mfjle_lib.method.models import resize_global
from mfjle_lib.perf.path_check import verdict
from mfjle_lib.runtime import cpu_kind
from mfjle_lib.training.config import LEGACY_KEYS
from mfjle_lib.training.setup import autocast_for

#: The deploy check of this CPU kind (`benchmarks/check_deploy.py`): a check made on another kind rounds differently.
DEPLOY_CHECK = benchmark_path(cpu_kind(), "deploy_check")

#: The reference row's name: plain torchvision ResNet-18, channels_last (`<name>_infer_ms_per_img`).
REFERENCE = "torchvision_resnet18"


def flops(model: torch.nn.Module, x: torch.Tensor, lm: torch.Tensor, backward: bool) -> int:
    """FLOPs of one forward (and backward when asked), counted by `torch.utils.flop_counter`."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        out = model(x, lm)
        if backward:
            out.global_logits.sum().add(out.local_logits.sum() if out.local_logits is not None else 0).backward()
    return int(counter.get_total_flops())


def measure_flops(images: torch.Tensor, lm: torch.Tensor, args: argparse.Namespace) -> dict:
    """GFLOPs per image of both models and their ratio, forward and training step (on the CPU)."""
    cpu = torch.device("cpu")
    # Batch 1 is enough: the ratio does not depend on the batch.
    with torch.random.fork_rng():
        r18_cpu, mf_cpu = make_model("resnet18", "loop", cpu, args, True), make_model("mfjle", "loop", cpu, args, True)
    x1, lm1 = model_input(images[:1].cpu(), cpu), lm[:1].cpu()
    with torch.no_grad():
        f_r18, f_mf = flops(r18_cpu.eval(), x1, lm1, False), flops(mf_cpu.eval(), x1, lm1, False)
    ft_r18, ft_mf = (
        flops(r18_cpu.train(), x1.repeat(2, 1, 1, 1), lm1.repeat(2, 1, 1), True),
        flops(mf_cpu.train(), x1.repeat(2, 1, 1, 1), lm1.repeat(2, 1, 1), True),
    )
    return {
        "resnet18_gflops_per_img": f_r18 / 1e9,
        "mfjle_gflops_per_img": f_mf / 1e9,
        "flop_ratio": f_mf / f_r18,
        "train_flop_ratio": ft_mf / ft_r18,
    }


def passes_today(result: dict) -> bool:
    """Whether one method's recorded check passes today's rule (`perf.path_check.verdict`), judged from its numbers.

    Files written before the rule counted flips carry them as `decisions_total` and `max_abs_prob_diff`,
    and a `passed` of the old rule (micro-F1 within 0.005), which is not read.
    """
    flipped = result.get("decisions_flipped")
    decisions = result.get("decisions", result.get("decisions_total"))
    change = result.get("max_abs_change", result.get("max_abs_prob_diff"))
    if flipped is None or decisions is None or change is None:
        return False
    return verdict(int(flipped), int(decisions), float(change))


def load_deploy_check(args: argparse.Namespace) -> dict | None:
    """The accuracy check of the deploy path, if it was run at this geometry, each method judged by today's rule."""
    path = Path(args.deploy_check)
    if not path.exists():
        return None
    try:
        check = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    # Files written before the rename carry `image_size` for S_g: read it under today's name.
    old = check.get("geometry", {})
    geo = {LEGACY_KEYS[k]: v for k, v in old.items() if k in LEGACY_KEYS}
    geo.update({k: v for k, v in old.items() if k not in LEGACY_KEYS})
    if "geometry" in check:
        check["geometry"] = geo
    same = (
        geo.get("global_size") == args.global_size
        and geo.get("local_size") == args.local_size
        and abs(float(geo.get("crop_fraction", -1)) - args.crop_fraction) < 1e-9
        and geo.get("source_size") == args.source_size
    )
    check["same_geometry"] = bool(same)
    for result in (check.get("methods") or {}).values():
        result["passed"] = passes_today(result)
    if "method" in check:
        check["passed"] = passes_today(check)
    return check


def measure_inference(
    device: torch.device,
    args: argparse.Namespace,
    models: dict[str, torch.nn.Module],
    images: torch.Tensor,
    lm: torch.Tensor,
    x: torch.Tensor,
    lmb: torch.Tensor,
    picked: str,
    precision: str,
) -> dict:
    """ms/image of every inference path, and the default path with the deploy check behind it."""
    b = args.batch_size
    report: dict = {}

    def infer(m: torch.nn.Module, *inputs: torch.Tensor):
        def run():
            with torch.inference_mode(), autocast_for(device, precision):
                m(*inputs)

        return run

    fns = {k: infer(m, x, lmb) for k, m in models.items()}
    # The reference: plain torchvision ResNet-18 (1000 classes), eval, channels_last, on S_g inputs
    # resized outside the timing; under the same autocast as the eager rows.
    reference = torchvision.models.resnet18().eval().to(device, memory_format=torch.channels_last)
    fns[REFERENCE] = infer(reference, resize_global(x, args.global_size).contiguous(memory_format=torch.channels_last))
    deploy_check = load_deploy_check(args) if device.type == "cpu" else None
    deployed = {}
    if device.type == "cpu" and not args.no_deploy:
        from mfjle_lib.perf.deploy import METHODS, optimize_for_cpu

        # Timing only (random weights): int8 observers see a few random faces; accuracy is checked
        # separately on a trained checkpoint by check_deploy.py.
        calib = [(model_input(images[i : i + 16], device), lm[i : i + 16]) for i in range(0, 32, 16)]
        for method in METHODS:
            deployed[f"mfjle_deploy_{method}"] = optimize_for_cpu(models["mfjle_naive"], method, calibration=calib)
        if args.compile:
            deployed["mfjle_deploy_fp32_compile"] = optimize_for_cpu(models["mfjle_naive"], "fp32", compile=True)
            deployed["mfjle_deploy_bf16_compile"] = optimize_for_cpu(models["mfjle_naive"], "bf16", compile=True)
        for k, m in deployed.items():
            fns[k] = (lambda mm: lambda: mm(x, lmb))(m)
    t = interleaved(fns, device, args.repeats)
    ms = {k: 1000 * v / b for k, v in t.items()}
    report["process_cpu_ms_per_img"] = {k: 1000 * v / b for k, v in LAST_CPU_TIMES.items()}
    report[f"{REFERENCE}_infer_ms_per_img"] = ms[REFERENCE]
    report["resnet18_infer_ms_per_img"] = ms["resnet18"]
    report["mfjle_naive_infer_ms_per_img"] = ms["mfjle_naive"]
    report["mfjle_fused_infer_ms_per_img"] = ms["mfjle_fused"]
    report["mfjle_auto_infer_ms_per_img"] = ms["mfjle_naive" if picked == "loop" else "mfjle_fused"]
    for k in deployed:
        report[f"{k}_infer_ms_per_img"] = ms[k]
    # The default inference path: a deploy method counts only once it passed the accuracy check at
    # this geometry; among those that did, the fastest in this run.
    passed = []
    if deploy_check and deploy_check.get("same_geometry"):
        results = deploy_check.get("methods") or {deploy_check.get("method"): deploy_check}
        passed = [m for m, r in results.items() if r.get("passed") and f"mfjle_deploy_{m}" in ms]
    report["deploy_methods_passed"] = passed
    if passed:
        method = min(passed, key=lambda m: ms[f"mfjle_deploy_{m}"])
        report["mfjle_infer_ms_per_img"] = ms[f"mfjle_deploy_{method}"]
        report["mfjle_infer_path"] = f"deploy:{method}"
    else:
        report["mfjle_infer_ms_per_img"] = report["mfjle_auto_infer_ms_per_img"]
        report["mfjle_infer_path"] = f"eager:{picked}" + (":autocast" if precision != "float32" else ":fp32")
    report["deploy_check"] = deploy_check
    # Every MF-JLE row (and the default path) as a multiple of the reference timed in the same rounds.
    report["ratio_to_torchvision_resnet18"] = {
        k.removesuffix("_infer_ms_per_img"): v / ms[REFERENCE]
        for k, v in report.items()
        if k.startswith(("mfjle_", "resnet18_")) and k.endswith("_infer_ms_per_img")
    }
    return report
