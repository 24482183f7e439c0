"""Speed of MF-JLE against one ResNet-18 (docs/DESIGN.md §4, §6), with the trainer's own settings.

Usage:
    python benchmarks/bench.py [--device {all,cpu,cuda,...}] [--json FILE] [--repeats N] [--quick]
                               [--batch-size 32] [--global-size 224] [--local-size 64] [--crop-fraction 0.25]
                               [--no-deploy] [--compile]

`--device all` (the default) measures the GPU when there is one, else the CPU; a GPU run writes
`benchmarks/results/bench_<card>.json` unless `--json` names another file.

Prints one JSON object on stdout (and to --json FILE) and a table on stderr. The top-level keys are
the docs/DESIGN.md §4 keys for the primary device (CUDA when present, else CPU); `devices` holds the full
report of every device measured. All figures of one device come from one run: candidates are timed
in interleaved rounds (so a busy machine slows them alike), medians over `--repeats` rounds after
two warm-up rounds.

Per device:
- inference ms/image at batch 32, S_g = R = 224: ResNet-18, MF-JLE naive (five resnet18s in a
  loop), fused (one grouped-conv ResNet-18), and the automatically picked path; on CPU also the
  deploy paths of `mfjle_lib.perf.deploy` (fp32 + folded BN, bf16, int8). `mfjle_infer_ms_per_img` is the
  path used by default: on CPU the deploy method that passed `benchmarks/check_deploy.py`'s 0.005
  micro-F1 check at this geometry (read from `benchmarks/results/deploy_check.json`), else the
  eager picked path; on CUDA the eager picked path under bf16/fp16 autocast, channels_last.
- training step seconds at batch 32 (forward, joint loss, backward, Adam) for ResNet-18 and MF-JLE
  (naive, fused, picked), fp32 on CPU, autocast on CUDA; `flop_ratio` counted with
  `torch.utils.flop_counter` (forward; the training-step ratio is reported too);
- data path images/s with no model: uint8 cache -> device -> float -> augment -> ImageNet
  normalisation -> channels_last -> the five crops (`roi_align`), batch 32;
- peak memory (CUDA: max allocated; CPU: peak RSS of the process);
- CUDA only: one real epoch over a 4,908-image set (RAF-ML's size) at 224 px, batch 128 (the
  paper's), data on the GPU, and the projected time of the paper's 218 epochs.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from mfjle_lib.training.augment import augment_batch  # noqa: E402
from mfjle_lib.constants import DEFAULT_CROP_FRACTION, DEFAULT_GLOBAL_SIZE, DEFAULT_LOCAL_SIZE, DEFAULT_SOURCE_SIZE, TEMPLATE  # noqa: E402
from mfjle_lib.faces.crops import cut_crops  # noqa: E402
from mfjle_lib.perf.local_impl import pick_local_impl  # noqa: E402
from mfjle_lib.training.losses import joint_loss  # noqa: E402
from mfjle_lib.models.build import build_model  # noqa: E402
from mfjle_lib.models.fusion import DEFAULT_LAMBDAS  # noqa: E402
from mfjle_lib.perf.memory_format import plan_memory_format  # noqa: E402
from mfjle_lib.perf.allocator import keep_freed_memory  # noqa: E402
from mfjle_lib.perf.fused_locals import set_local_impl  # noqa: E402
from mfjle_lib.training.precision import autocast_for, choose_precision  # noqa: E402
from mfjle_lib.training.batches import imagenet_normalise, to_unit_float  # noqa: E402
from mfjle_lib.training.setup import TrainingParts, make_adam  # noqa: E402
from mfjle_lib.training.loop import train_step  # noqa: E402
from mfjle_lib.training.batches import Batch  # noqa: E402
from mfjle_lib.training.config import make_config  # noqa: E402
from mfjle_lib.training.precision import make_scaler  # noqa: E402
from mfjle_lib.runtime import default_deterministic, set_deterministic  # noqa: E402

PAPER_MS_PER_IMAGE = 10.52  # MF-JLE on a GTX 1060, Section IV.C
RAFML_IMAGES = 4908
PAPER_EPOCHS = 218
PAPER_BATCH = 128
DEPLOY_CHECK = ROOT / "benchmarks" / "results" / "deploy_check.json"
LAMBDAS = DEFAULT_LAMBDAS


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


#: Process CPU seconds per call of the last `interleaved` timings (all threads together): on a
#: shared machine wall time includes waiting for other processes, CPU time much less so.
LAST_CPU_TIMES: dict[str, float] = {}
#: Median minor page faults per call of the last `interleaved` timings (memory the kernel had to
#: hand over and zero: a step that reuses its memory has next to none).
LAST_PAGE_FAULTS: dict[str, int] = {}
#: Every timed wall-clock sample of the last `interleaved` call, in round order.
LAST_SAMPLES: dict[str, list[float]] = {}
#: Warm-up rounds before timing training steps: the allocator's heap needs a few steps of all
#: three models to settle (until then a step page-faults ~100 MB fresh, ~0.15 s each here).
TRAIN_WARMUP = 4


def interleaved(fns: dict[str, Callable[[], None]], device: torch.device, repeats: int, warmup: int = 2) -> dict[str, float]:
    """Median wall seconds per call of each fn, timed round-robin (one call of each per round)."""
    samples: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    faults: dict[str, list[int]] = {k: [] for k in fns}
    for r in range(warmup + repeats):
        for name, fn in fns.items():
            sync(device)
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            sync(device)
            if r >= warmup:
                samples[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
                faults[name].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
    LAST_CPU_TIMES.clear()
    LAST_CPU_TIMES.update({k: sorted(v)[len(v) // 2] for k, v in cpu.items()})
    LAST_PAGE_FAULTS.clear()
    LAST_PAGE_FAULTS.update({k: sorted(v)[len(v) // 2] for k, v in faults.items()})
    LAST_SAMPLES.clear()
    LAST_SAMPLES.update(samples)
    return {k: sorted(v)[len(v) // 2] for k, v in samples.items()}


def fake_data(n: int, size: int, device: torch.device, seed: int = 0):
    """Random uint8 faces (N,3,R,R) with template landmarks (jittered) and random labels."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    lm = torch.as_tensor(TEMPLATE * size).expand(n, 5, 2) + torch.randn(n, 5, 2, generator=g) * size * 0.01
    labels = (torch.rand(n, 6, generator=g) > 0.7).float()
    return images.to(device), lm.float().to(device), labels.to(device)


def model_input(images_u8: torch.Tensor, device: torch.device) -> torch.Tensor:
    return imagenet_normalise(to_unit_float(images_u8, device)).contiguous(memory_format=torch.channels_last)


def make_model(name: str, impl: str, device: torch.device, args, train: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    opts = {"global_size": args.image_size}
    if name == "mfjle":
        opts.update(local_size=args.local_size, crop_fraction=args.crop_fraction)
    model = build_model(name, **opts).to(device)  # local nets in the loop form
    if name == "mfjle" and impl != "loop":
        set_local_impl(model, impl)
    return plan_memory_format(model, device).train(train)


def flops(model: torch.nn.Module, x: torch.Tensor, lm: torch.Tensor, backward: bool) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        out = model(x, lm)
        if backward:
            out.global_logits.sum().add(out.local_logits.sum() if out.local_logits is not None else 0).backward()
    return int(counter.get_total_flops())


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def load_deploy_check(args) -> dict | None:
    """The accuracy check of the deploy path, if it was run at this geometry."""
    path = Path(args.deploy_check)
    if not path.exists():
        return None
    try:
        check = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    geo = check.get("geometry", {})
    global_size = geo.get("global_size", geo.get("image_size"))  # `image_size` in files written before the rename
    same = (global_size == args.image_size and geo.get("local_size") == args.local_size
            and abs(float(geo.get("crop_fraction", -1)) - args.crop_fraction) < 1e-9 and geo.get("source_size") == args.source_size)
    check["same_geometry"] = bool(same)
    return check


# ---------------------------------------------------------------------------------------------
# measurements
# ---------------------------------------------------------------------------------------------


def bench_device(device: torch.device, args) -> dict:
    b = args.batch_size
    rep = args.repeats
    report: dict = {"device": str(device), "batch_size": b, "source_size": args.source_size, "image_size": args.image_size,
                    "local_size": args.local_size, "crop_fraction": args.crop_fraction, "repeats": rep,
                    "torch": torch.__version__, "threads": torch.get_num_threads()}
    report["cpu"] = cpu_name()
    report["gpu"] = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    report["load_average_start"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    # The trainer's own settings: determinism as `train` defaults to on this device (off on CUDA,
    # i.e. cuDNN autotuning; on for the CPU), the precision it picks, and its fp16 gradient scaler.
    report["deterministic"] = default_deterministic(device)
    set_deterministic(report["deterministic"])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    picked = pick_local_impl(device)
    report["local_impl_picked"] = picked
    precision = choose_precision(device)  # as `train` picks it: bf16/fp16 autocast on CUDA, float32 on the CPU
    amp = precision != "float32"
    report["precision"] = precision

    images, lm, labels = fake_data(max(4 * b, 128), args.source_size, device)
    x = model_input(images[:b], device)
    lmb, yb = lm[:b], labels[:b]

    # --- FLOPs (batch 1 is enough: the ratio does not depend on the batch) -----------------
    with torch.random.fork_rng():
        r18_cpu, mf_cpu = make_model("resnet18", "loop", torch.device("cpu"), args, True), make_model("mfjle", "loop", torch.device("cpu"), args, True)
    x1, lm1 = model_input(images[:1].cpu(), torch.device("cpu")), lm[:1].cpu()
    with torch.no_grad():
        f_r18, f_mf = flops(r18_cpu.eval(), x1, lm1, False), flops(mf_cpu.eval(), x1, lm1, False)
    ft_r18, ft_mf = flops(r18_cpu.train(), x1.repeat(2, 1, 1, 1), lm1.repeat(2, 1, 1), True), flops(mf_cpu.train(), x1.repeat(2, 1, 1, 1), lm1.repeat(2, 1, 1), True)
    del r18_cpu, mf_cpu
    report.update({"resnet18_gflops_per_img": f_r18 / 1e9, "mfjle_gflops_per_img": f_mf / 1e9, "flop_ratio": f_mf / f_r18,
                   "train_flop_ratio": ft_mf / ft_r18})

    # --- inference ---------------------------------------------------------------------------
    models = {"resnet18": make_model("resnet18", "loop", device, args, False),
              "mfjle_naive": make_model("mfjle", "loop", device, args, False),
              "mfjle_fused": make_model("mfjle", "fused", device, args, False)}

    def infer(m):
        def run():
            with torch.inference_mode(), autocast_for(device, precision):
                m(x, lmb)
        return run

    fns = {k: infer(m) for k, m in models.items()}
    deploy_check = load_deploy_check(args) if device.type == "cpu" else None
    deployed = {}
    if device.type == "cpu" and not args.no_deploy:
        from mfjle_lib.perf.deploy import METHODS, optimize_for_cpu

        # Timing only (random weights): int8 observers see a few random faces; accuracy is checked
        # separately on a trained checkpoint by check_deploy.py.
        calib = [(model_input(images[i:i + 16], device), lm[i:i + 16]) for i in range(0, 32, 16)]
        for method in METHODS:
            deployed[f"mfjle_deploy_{method}"] = optimize_for_cpu(models["mfjle_naive"], method, calibration=calib)
        if args.compile:
            deployed["mfjle_deploy_fp32_compile"] = optimize_for_cpu(models["mfjle_naive"], "fp32", compile=True)
            deployed["mfjle_deploy_bf16_compile"] = optimize_for_cpu(models["mfjle_naive"], "bf16", compile=True)
        for k, m in deployed.items():
            fns[k] = (lambda mm: (lambda: mm(x, lmb)))(m)
    t = interleaved(fns, device, rep)
    ms = {k: 1000 * v / b for k, v in t.items()}
    report["process_cpu_ms_per_img"] = {k: 1000 * v / b for k, v in LAST_CPU_TIMES.items()}
    report["resnet18_infer_ms_per_img"] = ms["resnet18"]
    report["mfjle_naive_infer_ms_per_img"] = ms["mfjle_naive"]
    report["mfjle_fused_infer_ms_per_img"] = ms["mfjle_fused"]
    report["mfjle_auto_infer_ms_per_img"] = ms["mfjle_naive" if picked == "loop" else "mfjle_fused"]
    for k in deployed:
        report[f"{k}_infer_ms_per_img"] = ms[k]
    # The default inference path: a deploy method counts only once it passed the F1 check at this
    # geometry; among those that did, the fastest in this run.
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
        report["mfjle_infer_path"] = f"eager:{picked}" + (":autocast" if amp else ":fp32")
    report["deploy_check"] = deploy_check
    del deployed, fns

    # --- training step -------------------------------------------------------------------------
    # As `train` does on the CPU, and only from here: inference above ran with glibc's defaults,
    # as `evaluate`/`predict` do (MFJLE_DEFAULT_MALLOC=1 times training with the defaults too).
    report["keep_freed_memory"] = keep_freed_memory() if device.type == "cpu" else None
    for m in models.values():
        m.train()
    opts = {k: make_adam(m, 1e-4, device) for k, m in models.items()}  # as the trainer does
    step_cfg = make_config("paper", precision=precision)  # the recipe's λ and loss; this run's precision
    batch = Batch(x, lmb, yb)

    def step(name):
        # The trainer's own step: autocast, joint loss in float32, the fp16 scaler, fused Adam.
        parts = TrainingParts(models[name], models[name], opts[name], None, make_scaler(device, precision), None)

        def run():
            train_step(parts, batch, step_cfg, device)
        return run

    t = interleaved({k: step(k) for k in models}, device, rep, warmup=TRAIN_WARMUP)
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

    # --- data path -----------------------------------------------------------------------------
    report.update(bench_data(device, args, images, lm, labels, rep))
    report["peak_memory_mb"] = peak_memory_mb(device)
    report["peak_memory_kind"] = "cuda max_memory_allocated" if device.type == "cuda" else "process peak RSS"
    models.clear()

    # --- CUDA: an epoch on a RAF-ML-sized set ------------------------------------------------------
    if device.type == "cuda" and not args.no_epoch:
        report.update(bench_epoch(device, args, picked))

    report["load_average_end"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    add_targets(report, device)
    return report


def _float(out):
    from mfjle_lib.models.fusion import ModelOutput

    if out.global_logits.dtype == torch.float32:
        return out
    return ModelOutput(out.global_logits.float(), None if out.local_logits is None else out.local_logits.float(), out.probs.float())


def bench_compiled_train(device, args, x, lm, y, picked, precision) -> dict:
    """Opt-in: the MF-JLE training step under torch.compile (compile time reported separately)."""
    m = make_model("mfjle", picked, device, args, True)
    opt = make_adam(m, 1e-4, device)
    fn = torch.compile(m)

    def run():
        with autocast_for(device, precision):
            out = fn(x, lm)
        total, _, _ = joint_loss(_float(out), y, LAMBDAS, "bce")
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()

    t0 = time.perf_counter()
    run()
    sync(device)
    compile_s = time.perf_counter() - t0
    t = interleaved({"c": run}, device, args.repeats, warmup=1)
    return {"mfjle_compiled_train_step_s": t["c"], "mfjle_compile_s": compile_s}


def bench_data(device, args, images, lm, labels, rep) -> dict:
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
    return {"data_images_per_s": b / t["aug"], "data_images_per_s_no_augment": b / t["plain"],
            "data_path": "uint8 cache -> device -> float -> augment -> normalise -> channels_last -> 5 crops"}


def bench_epoch(device, args, picked, n_images: int = RAFML_IMAGES, size: int = 224) -> dict:
    """One real training epoch on 4,908 images at 224 px, batch 128, data kept on the GPU."""
    images, lm, labels = fake_data(n_images, size, device, seed=1)
    torch.manual_seed(0)
    m = build_model("mfjle", global_size=size, local_size=args.local_size, crop_fraction=args.crop_fraction).to(device)
    if picked != "loop":
        set_local_impl(m, picked)
    m = plan_memory_format(m, device).train()
    precision = choose_precision(device)
    parts = TrainingParts(m, m, make_adam(m, 1e-4, device), None, make_scaler(device, precision), None)
    cfg = make_config("paper", precision=precision)
    gen = torch.Generator().manual_seed(0)

    def epoch(limit: int | None = None):
        perm = torch.randperm(n_images, generator=gen)
        steps = math.ceil(n_images / PAPER_BATCH)
        for s in range(steps if limit is None else min(limit, steps)):
            idx = perm[s * PAPER_BATCH:(s + 1) * PAPER_BATCH].to(device)
            train_step(parts, Batch(model_input(images[idx], device), lm[idx], labels[idx]), cfg, device)
        sync(device)

    epoch(limit=3)  # warm-up (cuDNN autotuning)
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - t0)
    e = min(times)
    return {"epoch_images": n_images, "epoch_batch_size": PAPER_BATCH, "epoch_image_size": size,
            "epoch_time_s": e, "projected_218_epochs_min": e * PAPER_EPOCHS / 60,
            "epoch_peak_memory_mb": peak_memory_mb(device)}


def add_targets(r: dict, device: torch.device) -> None:
    """The issue's targets as ratios and flags (met = True/False)."""
    t = {}
    t["infer_ms_target"] = PAPER_MS_PER_IMAGE
    t["infer_met"] = r["mfjle_infer_ms_per_img"] <= PAPER_MS_PER_IMAGE
    r["train_step_ratio"] = r["mfjle_train_step_s"] / r["resnet18_train_step_s"]
    r["train_step_ratio_spread"] = ratio_spread(r)
    t["train_step_ratio_limit"] = 1.1 * r["flop_ratio"]
    t["train_met"] = r["train_step_ratio"] <= t["train_step_ratio_limit"]
    best_inf = min(r["mfjle_naive_infer_ms_per_img"], r["mfjle_fused_infer_ms_per_img"])
    best_train = min(r["mfjle_naive_train_step_s"], r["mfjle_fused_train_step_s"])
    r["picked_vs_best_infer"] = r["mfjle_auto_infer_ms_per_img"] / best_inf
    r["picked_vs_best_train"] = r["mfjle_train_step_s"] / best_train
    t["picked_met"] = r["picked_vs_best_infer"] <= 1.05 and r["picked_vs_best_train"] <= 1.05
    if device.type == "cuda":
        t["fused_le_naive_met"] = (r["mfjle_fused_infer_ms_per_img"] <= r["mfjle_naive_infer_ms_per_img"]
                                   and r["mfjle_fused_train_step_s"] <= r["mfjle_naive_train_step_s"])
    train_ips = r["batch_size"] / r["mfjle_train_step_s"]
    r["data_vs_train_throughput"] = r["data_images_per_s"] / train_ips
    t["data_met"] = r["data_vs_train_throughput"] >= 5
    if "projected_218_epochs_min" in r:
        t["epochs_218_min_target_h100"] = 5.0
        t["epochs_met"] = r["projected_218_epochs_min"] <= 5.0
    r["targets"] = t


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


# ---------------------------------------------------------------------------------------------
# output
# ---------------------------------------------------------------------------------------------


def table(r: dict) -> str:
    dev = r["gpu"] or r["cpu"]
    lines = [f"device {r['device']}: {dev}; torch {r['torch']}, {r['threads']} threads; batch {r['batch_size']}, "
             f"R {r['source_size']}, S_g {r['image_size']}, S_l {r['local_size']}, c {r['crop_fraction']}"]
    row = "  {:<44s} {:>12s}"
    lines.append(row.format("inference (ms/image)", ""))
    for k, label in [("resnet18_infer_ms_per_img", "ResNet-18"), ("mfjle_naive_infer_ms_per_img", "MF-JLE naive (loop)"),
                     ("mfjle_fused_infer_ms_per_img", "MF-JLE fused (grouped conv)"), ("mfjle_auto_infer_ms_per_img", f"MF-JLE picked ({r['local_impl_picked']})")]:
        lines.append(row.format("    " + label, f"{r[k]:.2f}"))
    for k in sorted(r):
        if k.endswith("_infer_ms_per_img") and "_deploy_" in k:
            lines.append(row.format("    " + k.replace("_infer_ms_per_img", ""), f"{r[k]:.2f}"))
    lines.append(row.format(f"    MF-JLE default path ({r['mfjle_infer_path']})", f"{r['mfjle_infer_ms_per_img']:.2f}"))
    lines.append(row.format("training step (s, batch %d)" % r["batch_size"], ""))
    for k, label in [("resnet18_train_step_s", "ResNet-18"), ("mfjle_naive_train_step_s", "MF-JLE naive"),
                     ("mfjle_fused_train_step_s", "MF-JLE fused"), ("mfjle_train_step_s", "MF-JLE picked")]:
        lines.append(row.format("    " + label, f"{r[k]:.3f}"))
    lines.append(row.format("FLOP ratio MF-JLE/ResNet-18 (fwd / train)", f"{r['flop_ratio']:.3f} / {r['train_flop_ratio']:.3f}"))
    lines.append(row.format("train step ratio (limit 1.1 x flop ratio)", f"{r['train_step_ratio']:.3f} / {r['targets']['train_step_ratio_limit']:.3f}"))
    lines.append(row.format("    per round: min / median / max", r["train_step_ratio_spread"]))
    if r.get("page_faults_per_train_step"):
        lines.append(row.format("    page faults per step (median)", " / ".join(str(v) for v in r["page_faults_per_train_step"].values())))
    lines.append(row.format("data path images/s (aug / no aug)", f"{r['data_images_per_s']:.0f} / {r['data_images_per_s_no_augment']:.0f}"))
    lines.append(row.format("data / training throughput (target >= 5)", f"{r['data_vs_train_throughput']:.1f}"))
    lines.append(row.format(f"peak memory MB ({r['peak_memory_kind']})", f"{r['peak_memory_mb']:.0f}"))
    if "epoch_time_s" in r:
        lines.append(row.format("epoch 4,908 img @224, batch 128 (s)", f"{r['epoch_time_s']:.1f}"))
        lines.append(row.format("projected 218 epochs (min)", f"{r['projected_218_epochs_min']:.1f}"))
    chk = r.get("deploy_check")
    if chk:
        for m, c in (chk.get("methods") or {chk.get("method"): chk}).items():
            lines.append(f"  deploy check {m}: micro-F1 change {c.get('micro_f1_change'):+.4f} (limit 0.005), "
                         f"{c.get('decisions_flipped')}/{c.get('decisions_total')} decisions flipped -> "
                         f"{'passed' if c.get('passed') else 'FAILED'}" + ("" if chk.get("same_geometry") else " [other geometry: not used]"))
    lines.append("  targets: " + ", ".join(f"{k}={v}" for k, v in r["targets"].items() if k.endswith("_met")))
    lines.append(f"  load average at start/end: {r['load_average_start']} / {r['load_average_end']}")
    return "\n".join(lines)


def ratio_spread(r: dict) -> str:
    """min / median / max of the per-round training step ratios."""
    v = sorted(r.get("train_step_ratio_per_round") or [])
    return f"{v[0]:.3f} / {v[len(v) // 2]:.3f} / {v[-1]:.3f}" if v else "-"


def markdown(reports: dict[str, dict], command: str) -> str:
    """The README table: one column per device, with the device named."""
    keys = [
        ("resnet18_infer_ms_per_img", "ResNet-18 inference, ms/image", "{:.2f}"),
        ("mfjle_naive_infer_ms_per_img", "MF-JLE naive (5 resnet18s in a loop), ms/image", "{:.2f}"),
        ("mfjle_fused_infer_ms_per_img", "MF-JLE fused (grouped conv), ms/image", "{:.2f}"),
        ("mfjle_deploy_fp32_infer_ms_per_img", "MF-JLE deploy fp32 (folded BN), ms/image", "{:.2f}"),
        ("mfjle_deploy_bf16_infer_ms_per_img", "MF-JLE deploy bf16, ms/image", "{:.2f}"),
        ("mfjle_deploy_mixed_infer_ms_per_img", "MF-JLE deploy mixed (bf16 global, int8 locals), ms/image", "{:.2f}"),
        ("mfjle_deploy_int8_infer_ms_per_img", "MF-JLE deploy int8, ms/image", "{:.2f}"),
        ("mfjle_infer_ms_per_img", "**MF-JLE default path**, ms/image (paper: 10.52 on a GTX 1060)", "**{:.2f}**"),
        ("mfjle_infer_path", "default path", "{}"),
        ("resnet18_train_step_s", "ResNet-18 training step, s", "{:.3f}"),
        ("mfjle_naive_train_step_s", "MF-JLE naive training step, s", "{:.3f}"),
        ("mfjle_fused_train_step_s", "MF-JLE fused training step, s", "{:.3f}"),
        ("local_impl_picked", "local implementation picked", "{}"),
        ("flop_ratio", "FLOP ratio MF-JLE / ResNet-18", "{:.3f}"),
        ("train_step_ratio", "training step ratio MF-JLE / ResNet-18", "{:.3f}"),
        ("train_step_ratio_spread", "same, per round: min / median / max", "{}"),
        ("data_images_per_s", "data path, images/s (with augmentation)", "{:.0f}"),
        ("data_vs_train_throughput", "data path / MF-JLE training throughput", "{:.1f}"),
        ("peak_memory_mb", "peak memory, MB", "{:.0f}"),
        ("epoch_time_s", "epoch, 4,908 images @224, batch 128, s", "{:.1f}"),
        ("projected_218_epochs_min", "projected 218 epochs, min", "{:.1f}"),
    ]
    devs = list(reports)
    names = [f"{d}: {reports[d]['gpu'] or reports[d]['cpu']}" for d in devs]
    r0 = reports[devs[0]]
    lines = [f"Batch {r0['batch_size']}, R = {r0['source_size']}, S_g = {r0['image_size']}, S_l = {r0['local_size']}, "
             f"c = {r0['crop_fraction']}; torch {r0['torch']}; medians of {r0['repeats']} interleaved rounds after warm-up; "
             f"`{command}`", "", "| | " + " | ".join(names) + " |", "|---|" + "---|" * len(devs)]
    for key, label, fmt in keys:
        if any(key in reports[d] and reports[d][key] is not None for d in devs):
            cells = [fmt.format(reports[d][key]) if reports[d].get(key) is not None else "–" for d in devs]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for d in devs:
        la = reports[d]
        lines.append("")
        lines.append(f"{d}: targets " + ", ".join(f"{k[:-4]} {'met' if v else 'MISSED'}" for k, v in la["targets"].items() if k.endswith("_met"))
                     + f"; load average {la['load_average_start']:.1f} at start, {la['load_average_end']:.1f} at end.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description="MF-JLE speed benchmark (docs/DESIGN.md §6)")
    p.add_argument("--device", default="all", help="all (cpu + cuda when present), cpu, cuda, cuda:1, ...")
    p.add_argument("--json", default=None, help="also write the JSON object to this file")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="2 repeats, batch 8, S_g 64, S_l 32, no deploy/epoch (smoke test)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--source-size", type=int, default=DEFAULT_SOURCE_SIZE)
    p.add_argument("--global-size", "--image-size", dest="image_size", type=int, default=DEFAULT_GLOBAL_SIZE,
                   help="S_g, the global branch's input side (reported as `image_size`; --image-size is an alias)")
    p.add_argument("--local-size", type=int, default=DEFAULT_LOCAL_SIZE)
    p.add_argument("--crop-fraction", type=float, default=DEFAULT_CROP_FRACTION)
    p.add_argument("--no-deploy", action="store_true", help="skip the CPU deploy paths (int8 calibration takes a while)")
    p.add_argument("--no-epoch", action="store_true", help="skip the CUDA epoch measurement")
    p.add_argument("--compile", action="store_true", help="also time torch.compile variants (slow to compile)")
    p.add_argument("--markdown", default=None, help="also write the README table (markdown) to this file")
    p.add_argument("--deploy-check", default=str(DEPLOY_CHECK), help="JSON written by benchmarks/check_deploy.py")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.batch_size, args.source_size, args.image_size, args.local_size = 2, 8, 64, 64, 32
        args.no_deploy = args.no_epoch = True
    if args.device == "all":
        # On a GPU machine the GPU is the question: the CPU figures are in benchmarks/results/bench_cpu.json.
        devices = [torch.device("cuda")] if torch.cuda.is_available() else [torch.device("cpu")]
    else:
        devices = [torch.device(args.device)]
    cuda = next((d for d in devices if d.type == "cuda"), None)
    if cuda is not None:
        card = torch.cuda.get_device_name(cuda)
        print(f"card: {card}, compute capability {torch.cuda.get_device_capability(cuda)}, torch {torch.__version__}, CUDA {torch.version.cuda}", file=sys.stderr, flush=True)
        if args.json is None:  # a GPU run always leaves its numbers, named by the card
            slug = "".join(c if c.isalnum() else "_" for c in card.lower()).strip("_")
            args.json = str(ROOT / "benchmarks" / "results" / f"bench_{slug}.json")
    reports = {}
    for dev in devices:
        reports[str(dev)] = bench_device(dev, args)
        print(table(reports[str(dev)]), file=sys.stderr, flush=True)
    primary = next((r for k, r in reports.items() if k.startswith("cuda")), next(iter(reports.values())))
    result = dict(primary)
    result["devices"] = reports
    text = json.dumps(result, indent=2, default=float)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    if args.markdown:
        cmd = "python benchmarks/bench.py " + " ".join(sys.argv[1:] if argv is None else argv)
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(markdown(reports, cmd.strip()))
    print(text)
    return result


if __name__ == "__main__":
    main()
