"""Training speed for `bench.py`: the trainer's step, the data path feeding it, a CUDA epoch."""

from __future__ import annotations

import argparse
import math
import time

import torch
from bench_common import (
    LAST_CPU_TIMES,
    LAST_PAGE_FAULTS,
    LAST_SAMPLES,
    fake_data,
    interleaved,  # first: puts the checkout on sys.path
    make_model,
    model_input,
    peak_memory_mb,
    sync,
)

from mfjle_lib.faces.normalise import imagenet_normalise, to_unit_float
from mfjle_lib.method.crops import cut_crops
from mfjle_lib.method.fusion import DEFAULT_LAMBDAS
from mfjle_lib.method.losses import joint_loss
from mfjle_lib.models.registry import build_model
from mfjle_lib.perf.allocator import keep_freed_memory
from mfjle_lib.perf.optimize import optimize
from mfjle_lib.training.augment import augment_batch
from mfjle_lib.training.batches import Batch
from mfjle_lib.training.config import make_config
from mfjle_lib.training.setup import TrainingParts, as_float32, autocast_for, choose_precision, make_adam, make_scaler
from mfjle_lib.training.trainer import train_step

RAFML_IMAGES = 4908
PAPER_EPOCHS = 218
PAPER_BATCH = 128
LAMBDAS = DEFAULT_LAMBDAS
#: Warm-up rounds before timing training steps: the allocator's heap needs a few steps of all
#: three models to settle (until then a step page-faults ~100 MB fresh, ~0.15 s each here).
TRAIN_WARMUP = 4


def measure_train_step(
    device: torch.device,
    args: argparse.Namespace,
    models: dict[str, torch.nn.Module],
    x: torch.Tensor,
    lmb: torch.Tensor,
    yb: torch.Tensor,
    picked: str,
    precision: str,
) -> dict:
    """Seconds per training step of each model (the trainer's own step), interleaved."""
    report: dict = {}
    # As `train` does on the CPU, and only from here: inference ran with glibc's defaults,
    # as `evaluate`/`predict` do (MFJLE_DEFAULT_MALLOC=1 times training with the defaults too).
    report["keep_freed_memory"] = keep_freed_memory() if device.type == "cpu" else None
    for m in models.values():
        m.train()
    opts = {k: make_adam(m, 1e-4, device) for k, m in models.items()}  # as the trainer does
    step_cfg = make_config("paper", precision=precision)  # the recipe's λ and loss; this run's precision
    batch = Batch(x, lmb, yb)

    def step(name: str):
        # The trainer's own step: autocast, joint loss in float32, the fp16 scaler, fused Adam.
        parts = TrainingParts(models[name], models[name], opts[name], None, make_scaler(device, precision), None)

        def run():
            train_step(parts, batch, step_cfg, device)

        return run

    t = interleaved({k: step(k) for k in models}, device, args.repeats, warmup=TRAIN_WARMUP)
    report["process_cpu_train_step_s"] = dict(LAST_CPU_TIMES)
    mf_samples = LAST_SAMPLES["mfjle_naive" if picked == "loop" else "mfjle_fused"]
    # Each round times both models seconds apart, so its ratio sees the same machine state: the
    # spread of these shows how far the machine's noise moves the ratio of medians below.
    report["train_step_ratio_per_round"] = [m / r for m, r in zip(mf_samples, LAST_SAMPLES["resnet18"])]
    report["page_faults_per_train_step"] = dict(LAST_PAGE_FAULTS)
    report["resnet18_train_step_s"] = t["resnet18"]
    report["mfjle_naive_train_step_s"] = t["mfjle_naive"]
    report["mfjle_fused_train_step_s"] = t["mfjle_fused"]
    report["mfjle_train_step_s"] = t["mfjle_naive" if picked == "loop" else "mfjle_fused"]
    if args.compile:
        report.update(bench_compiled_train(device, args, x, lmb, yb, picked, precision))
    opts.clear()  # (not `del`: the step closures above refer to these names)
    return report


def bench_compiled_train(
    device: torch.device,
    args: argparse.Namespace,
    x: torch.Tensor,
    lm: torch.Tensor,
    y: torch.Tensor,
    picked: str,
    precision: str,
) -> dict:
    """Opt-in: the MF-JLE training step under torch.compile (compile time reported separately)."""
    m = make_model("mfjle", picked, device, args, True)
    opt = make_adam(m, 1e-4, device)
    fn = torch.compile(m)

    def run():
        with autocast_for(device, precision):
            out = fn(x, lm)
        total, _, _ = joint_loss(as_float32(out), y, LAMBDAS, "bce")
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()

    t0 = time.perf_counter()
    run()
    sync(device)
    compile_s = time.perf_counter() - t0
    t = interleaved({"c": run}, device, args.repeats, warmup=1)
    return {"mfjle_compiled_train_step_s": t["c"], "mfjle_compile_s": compile_s}


def bench_data_path(
    device: torch.device,
    args: argparse.Namespace,
    images: torch.Tensor,
    lm: torch.Tensor,
    labels: torch.Tensor,
    rep: int,
) -> dict:
    """Images/s of the data path alone (with and without augmentation), batch `batch_size`."""
    b = args.batch_size
    gen = torch.Generator().manual_seed(0)
    n = images.shape[0]

    def path(augment: bool):
        def run():
            idx = torch.randint(0, n, (b,), generator=gen)
            xb = to_unit_float(images[idx.to(images.device)], device)
            lb = lm[idx.to(lm.device)].to(device)
            labels[idx.to(labels.device)].to(device)
            if augment:
                xb, lb = augment_batch(xb, lb, gen)
            xb = imagenet_normalise(xb).contiguous(memory_format=torch.channels_last)
            cut_crops(xb, lb, args.crop_fraction, args.local_size).contiguous()

        return run

    t = interleaved({"aug": path(True), "plain": path(False)}, device, max(rep, 5))
    return {
        "data_images_per_s": b / t["aug"],
        "data_images_per_s_no_augment": b / t["plain"],
        "data_path": "uint8 cache -> device -> float -> augment -> normalise -> channels_last -> 5 crops",
    }


def bench_epoch(
    device: torch.device, args: argparse.Namespace, picked: str, n_images: int = RAFML_IMAGES, size: int = 224
) -> dict:
    """One real training epoch on 4,908 images at 224 px, batch 128, data kept on the GPU."""
    images, lm, labels = fake_data(n_images, size, device, seed=1)
    torch.manual_seed(0)
    m = build_model("mfjle", global_size=size, local_size=args.local_size, crop_fraction=args.crop_fraction).to(device)
    m = optimize(m, device, picked).train()
    precision = choose_precision(device)
    parts = TrainingParts(m, m, make_adam(m, 1e-4, device), None, make_scaler(device, precision), None)
    cfg = make_config("paper", precision=precision)
    gen = torch.Generator().manual_seed(0)

    def epoch(limit: int | None = None):
        perm = torch.randperm(n_images, generator=gen)
        steps = math.ceil(n_images / PAPER_BATCH)
        for s in range(steps if limit is None else min(limit, steps)):
            idx = perm[s * PAPER_BATCH : (s + 1) * PAPER_BATCH].to(device)
            train_step(parts, Batch(model_input(images[idx], device), lm[idx], labels[idx]), cfg, device)
        sync(device)

    epoch(limit=3)  # warm-up (cuDNN autotuning)
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - t0)
    e = min(times)
    return {
        "epoch_images": n_images,
        "epoch_batch_size": PAPER_BATCH,
        "epoch_image_size": size,
        "epoch_time_s": e,
        "projected_218_epochs_min": e * PAPER_EPOCHS / 60,
        "epoch_peak_memory_mb": peak_memory_mb(device),
    }
