"""Speed of MF-JLE against one ResNet-18 (docs/DESIGN.md §4, §6), with the trainer's own settings.

Usage:
    python benchmarks/bench.py [--device {all,cpu,cuda,...}] [--json FILE] [--repeats N] [--quick]
                               [--batch-size 32] [--global-size 224] [--local-size 64] [--crop-fraction 0.25]
                               [--no-deploy] [--compile] [--require-idle] [--profile STEPS [--profile-only]]

`--device all` (the default) measures the GPU when there is one, else the CPU; a GPU run writes
`benchmarks/results/bench_<card>.json` unless `--json` names another file.

Prints one JSON object on stdout (and to --json FILE) and a table on stderr. The top-level keys are
the docs/DESIGN.md §4 keys for the primary device (CUDA when present, else CPU); `devices` holds the full
report of every device measured. All figures of one device come from one run: candidates are timed
in interleaved rounds (so a busy machine slows them alike), medians over `--repeats` rounds after
two warm-up rounds.

Per device:
- inference ms/image at batch 32, S_g = R = 224: a reference, plain `torchvision.models.resnet18()`
  in eval mode, channels_last, on S_g inputs (`torchvision_resnet18_infer_ms_per_img`, every MF-JLE
  row also as a ratio to it in `ratio_to_torchvision_resnet18`, so runs on different machines
  compare); ResNet-18, MF-JLE naive (five resnet18s in a
  loop), fused (one grouped-conv ResNet-18), and the automatically picked path; on CPU also the
  deploy paths of `mfjle_lib.perf.deploy` (fp32 + folded BN, bf16, int8). `mfjle_infer_ms_per_img` is the
  path used by default: on CPU the deploy method that passed `benchmarks/check_deploy.py`'s accuracy
  check at this geometry on this CPU kind (`benchmarks/results/<cpu kind>/deploy_check.json`, judged by
  today's rule, `mfjle_lib.perf.path_check`: flipped decisions and the largest probability change), else the
  eager picked path; on CUDA the eager picked path under bf16/fp16 autocast, channels_last.
- training step seconds at batch 32 (forward, joint loss, backward, Adam) for ResNet-18 and MF-JLE
  (naive, fused, picked), fp32 on CPU, autocast on CUDA; `flop_ratio` counted with
  `torch.utils.flop_counter` (forward; the training-step ratio is reported too);
- data path images/s with no model: uint8 cache -> device -> float -> augment -> ImageNet
  normalisation -> channels_last -> the five crops (`roi_align`), batch 32;
- peak memory (CUDA: max allocated; CPU: peak RSS of the process);
- the load average (1, 5, 15 min) before and after (`load_average_start`, `load_average_end`):
  a 1-minute load >= 0.5 at the start prints a warning and marks the report `"busy": true`;
  `--require-idle` refuses to run instead (exit 2, one line);
- with `--profile STEPS` (CPU): where a training step's time goes, by operator category, for ResNet-18 and
  both MF-JLE forms (`train_profile`, `bench_profile.py`), with the CPU, its vector extensions and the
  threads (`machine`); `--profile-only` skips every other measurement;
- CUDA only: one real epoch over a 4,908-image set (RAF-ML's size) at 224 px, batch 128 (the
  paper's), data on the GPU, and the projected time of the paper's 218 epochs.

This file parses the flags and assembles the report; the measurements live beside it in
`bench_infer.py` (FLOPs, inference, deploy paths), `bench_train.py` (training step, data path,
CUDA epoch), `bench_report.py` (targets, tables) and `bench_common.py` (timing, fake faces, models).
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import torch
from bench_common import (
    ROOT,
    cpu_name,
    fake_data,
    make_model,
    model_input,
    peak_memory_mb,
)  # first: puts the checkout on sys.path
from bench_infer import DEPLOY_CHECK, measure_flops, measure_inference
from bench_profile import profile_models, profile_table
from bench_report import add_targets, markdown, table
from bench_train import bench_data_path, bench_epoch, measure_train_step

from mfjle_lib.constants import DEFAULT_CROP_FRACTION, DEFAULT_GLOBAL_SIZE, DEFAULT_LOCAL_SIZE, DEFAULT_SOURCE_SIZE
from mfjle_lib.perf.local_impl import pick_local_impl
from mfjle_lib.runtime import default_deterministic, machine_record, set_deterministic
from mfjle_lib.training.setup import choose_precision
from tools.machine_load import BUSY_LOAD, busy_warning, idle_refusal, load_average, load_record


def bench_device(device: torch.device, args: argparse.Namespace, load_start: list[float] | None) -> dict:
    """The full report of one device: settings, FLOPs, inference, training step, data path, epoch, targets, load
    average."""
    b = args.batch_size
    report: dict = {
        "device": str(device),
        "batch_size": b,
        "source_size": args.source_size,
        "global_size": args.global_size,
        "local_size": args.local_size,
        "crop_fraction": args.crop_fraction,
        "repeats": args.repeats,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    report["cpu"] = cpu_name()
    report["machine"] = machine_record()  # CPU model, vector extensions, kernel level, threads, load
    report["date"] = datetime.date.today().isoformat()
    report["gpu"] = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    # The trainer's own settings: determinism as `train` defaults to on this device (off on CUDA,
    # i.e. cuDNN autotuning; on for the CPU), the precision it picks, and its fp16 gradient scaler.
    report["deterministic"] = default_deterministic(device)
    set_deterministic(report["deterministic"])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    picked = pick_local_impl(device)
    report["local_impl_picked"] = picked
    precision = choose_precision(device)  # as `train` picks it: bf16/fp16 autocast on CUDA, float32 on the CPU
    report["precision"] = precision

    images, lm, labels = fake_data(max(4 * b, 128), args.source_size, device)
    x = model_input(images[:b], device)
    lmb, yb = lm[:b], labels[:b]
    report.update(measure_flops(images, lm, args))
    if args.profile_only:
        report["train_profile"] = profile_models(args, x, lmb, yb)
        report.update(load_record(load_start, load_average()))
        return report
    # One set of models for inference and then training, as a run evaluates and trains the same nets.
    models = {
        "resnet18": make_model("resnet18", "loop", device, args, False),
        "mfjle_naive": make_model("mfjle", "loop", device, args, False),
        "mfjle_fused": make_model("mfjle", "fused", device, args, False),
    }
    report.update(measure_inference(device, args, models, images, lm, x, lmb, picked, precision))
    report.update(measure_train_step(device, args, models, x, lmb, yb, picked, precision))
    if args.profile and device.type == "cpu":  # after the timings, so the profiler's overhead is not in them
        report["train_profile"] = profile_models(args, x, lmb, yb)
    report.update(bench_data_path(device, args, images, lm, labels, args.repeats))
    # Read while the three models are still alive: the peak includes them.
    report["peak_memory_mb"] = peak_memory_mb(device)
    report["peak_memory_kind"] = "cuda max_memory_allocated" if device.type == "cuda" else "process peak RSS"
    models.clear()
    if device.type == "cuda" and not args.no_epoch:  # an epoch on a RAF-ML-sized set
        report.update(bench_epoch(device, args, picked))
    report.update(load_record(load_start, load_average()))
    add_targets(report, device)
    return report


def main(argv: list[str] | None = None) -> dict:
    """Parse the flags, measure each device, print and write the report."""
    p = argparse.ArgumentParser(description="MF-JLE speed benchmark (docs/DESIGN.md §6)")
    p.add_argument("--device", default="all", help="all (cpu + cuda when present), cpu, cuda, cuda:1, ...")
    p.add_argument("--json", default=None, help="also write the JSON object to this file")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument(
        "--quick", action="store_true", help="2 repeats, batch 8, S_g 64, S_l 32, no deploy/epoch (smoke test)"
    )
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--source-size", type=int, default=DEFAULT_SOURCE_SIZE)
    p.add_argument(
        "--global-size",
        type=int,
        default=DEFAULT_GLOBAL_SIZE,
        help="S_g, the global branch's input side (reported as `global_size`)",
    )
    p.add_argument("--local-size", type=int, default=DEFAULT_LOCAL_SIZE)
    p.add_argument("--crop-fraction", type=float, default=DEFAULT_CROP_FRACTION)
    p.add_argument(
        "--no-deploy", action="store_true", help="skip the CPU deploy paths (int8 calibration takes a while)"
    )
    p.add_argument("--no-epoch", action="store_true", help="skip the CUDA epoch measurement")
    p.add_argument("--compile", action="store_true", help="also time torch.compile variants (slow to compile)")
    p.add_argument(
        "--markdown", default=None, help="also write the speed table of docs/SPEED.md (markdown) to this file"
    )
    p.add_argument("--deploy-check", default=str(DEPLOY_CHECK), help="JSON written by benchmarks/check_deploy.py")
    p.add_argument(
        "--require-idle",
        action="store_true",
        help=f"refuse to run (exit 2) when the 1-minute load average is >= {BUSY_LOAD} at the start",
    )
    p.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="STEPS",
        help="profile STEPS training steps of each model by operator category (CPU; bench_profile.py)",
    )
    p.add_argument("--profile-only", action="store_true", help="with --profile: measure nothing else")
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch CPU threads (0: torch's default); 1 keeps a profile on a busy machine free of threads waiting "
        "for each other",
    )
    args = p.parse_args(argv)
    if args.profile_only and not args.profile:
        p.error("--profile-only needs --profile STEPS")
    if args.threads:
        torch.set_num_threads(args.threads)
    # Before anything is built: a busy machine makes every figure below incomparable.
    load_start = load_average()
    refusal, warning = idle_refusal(load_start, "benchmark"), busy_warning(load_start, "the benchmark")
    if args.require_idle and refusal:
        print(refusal, file=sys.stderr)
        raise SystemExit(2)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    if args.quick:
        args.repeats, args.batch_size, args.source_size, args.global_size, args.local_size = 2, 8, 64, 64, 32
        args.no_deploy = args.no_epoch = True
    if args.device == "all":
        # On a GPU machine the GPU is the question: the CPU figures are in benchmarks/results/<cpu kind>/.
        devices = [torch.device("cuda")] if torch.cuda.is_available() else [torch.device("cpu")]
    else:
        devices = [torch.device(args.device)]
    cuda = next((d for d in devices if d.type == "cuda"), None)
    if cuda is not None:
        card = torch.cuda.get_device_name(cuda)
        print(
            f"card: {card}, compute capability {torch.cuda.get_device_capability(cuda)}, torch {torch.__version__}, "
            f"CUDA {torch.version.cuda}",
            file=sys.stderr,
            flush=True,
        )
        if args.json is None:  # a GPU run always leaves its numbers, named by the card
            slug = "".join(c if c.isalnum() else "_" for c in card.lower()).strip("_")
            args.json = str(ROOT / "benchmarks" / "results" / f"bench_{slug}.json")
    reports = {}
    for i, dev in enumerate(devices):
        reports[str(dev)] = bench_device(dev, args, load_start if i == 0 else load_average())
        r = reports[str(dev)]
        print(table(r) if not args.profile_only else "", file=sys.stderr, flush=True)
        if "train_profile" in r:
            print(profile_table(r["train_profile"], r.get("train_flop_ratio")), file=sys.stderr, flush=True)
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
