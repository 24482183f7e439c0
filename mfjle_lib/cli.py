"""Command line: `python -m mfjle_lib {data,train,evaluate,predict,reproduce,demo}` (DESIGN §4).

Every known failure (bad data, bad checkpoint, bad option, diverged loss) ends with exit status 2
and one line on stderr, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Sequence

from .errors import ConfigError, MfjleError

# torch is imported inside the commands that need it, so `--help` and bad label files answer
# in a fraction of a second instead of after torch's multi-second import.


def json_safe(obj):
    """runtime.json_safe, imported lazily (runtime imports torch)."""
    from .runtime import json_safe as safe

    return safe(obj)

DATASETS = ("synthetic", "rafml", "jaffe", "ferplus", "folder")


def _floats(text: str) -> tuple[float, ...]:
    """Parse 'a,b,c' into floats for --lambdas / --fusion-weights."""
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _positive_int(text: str) -> int:
    """Parse a whole number >= 1 (sizes, counts, epochs)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _check_device(name: str | None) -> None:
    """Reject a --device that cannot work here with one line (torch would raise a long RuntimeError)."""
    if name is None or name in ("", "auto"):
        return
    import torch

    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"--device {name!r} is not a device (use cpu, cuda, cuda:N or mps)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {name}: no CUDA GPU is available here (use --device cpu)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ConfigError(f"--device {name}: Apple MPS is not available here (use --device cpu)")
    elif dev.type != "cpu":
        raise ConfigError(f"--device {name}: only cpu, cuda and mps are supported")


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line with exit status 2."""

    def error(self, message: str) -> None:  # noqa: D401
        self.exit(2, f"{self.prog}: error: {message}\n")


def _add_data_args(p: argparse.ArgumentParser, required_dataset: bool = False) -> None:
    p.add_argument("--dataset", choices=DATASETS, default=None if required_dataset else "synthetic", required=required_dataset, help="dataset name (default: synthetic, built in)")
    p.add_argument("--root", default=None, help="dataset folder (not needed for synthetic)")
    p.add_argument("--skip-bad", action="store_true", help="skip, count and list bad files instead of stopping")
    p.add_argument("--num-images", type=_positive_int, default=None, help="synthetic only: number of faces to render")


def _add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="paper", choices=["paper", "gpu", "cpu", "fast"], help="paper = the paper's recipe (default); cpu/fast/gpu = smaller sizes")
    p.add_argument("--epochs", type=_positive_int)
    p.add_argument("--batch-size", type=_positive_int)
    p.add_argument("--lr", type=float, help="learning rate (paper: 1e-4)")
    p.add_argument("--image-size", type=_positive_int, help="S_g: side of the global branch's input")
    p.add_argument("--source-size", type=_positive_int, help="R: side of the aligned, cached face")
    p.add_argument("--local-size", type=_positive_int, help="S_l: side of each local crop")
    p.add_argument("--crop-fraction", type=float, help="c: crop side as a fraction of R")
    lam = p.add_mutually_exclusive_group()
    lam.add_argument("--lambda", dest="lam", type=float, help="λ for all five local modules (Eq. 1; default 0.01)")
    lam.add_argument("--lambdas", type=_floats, help="five λ values l1,...,l5")
    p.add_argument("--loss", choices=["bce", "softmax_ce"], help="bce (paper) or softmax_ce (Fig. 5 ablation)")
    p.add_argument("--fusion-weights", type=_floats, help="w0,...,w5 (global, five locals); default 1,λ1..λ5")
    p.add_argument("--split-scheme", choices=["paper", "official", "subject"])
    p.add_argument("--split-seed", type=int)
    p.add_argument("--augment", action="store_true", default=None, help="flip/rotate/scale/shift/jitter (off in the paper)")
    w = p.add_mutually_exclusive_group()
    w.add_argument("--pretrained", action="store_true", default=None, help="ImageNet weights (needs internet)")
    w.add_argument("--weights", help="local ResNet-18 ImageNet weights file")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="cuda, mps or cpu (default: best available)")
    p.add_argument("--local-impl", choices=["auto", "loop", "fused"], help="how the five local nets run")
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = _Parser(prog="python -m mfjle_lib", description="MF-JLE multi-label facial expression recognition")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("data", help="summarise a dataset")
    _add_data_args(p)
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--image-size", type=_positive_int, default=None, help="R: side of the decoded cache (default: 128 synthetic, 224 others)")
    p.add_argument("--split-scheme", default="paper", choices=["paper", "official", "subject"])
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--figure", default=None, help="also save a figure of sample faces with landmarks and labels")

    p = sub.add_parser("train", help="train resnet18 or mfjle")
    _add_data_args(p)
    p.add_argument("--model", choices=["resnet18", "mfjle"], required=True)
    _add_train_args(p)
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--out", required=True, help="output folder")

    p = sub.add_parser("evaluate", help="nine metrics of a checkpoint")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--dataset", choices=DATASETS)
    p.add_argument("--root")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--fusion-weights", type=_floats)
    p.add_argument("--device")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("predict", help="emotions in photos")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--skip-bad", action="store_true")
    p.add_argument("--allow-fallback", action="store_true", help="predict even when no face is found")
    p.add_argument("--device")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("reproduce", help="ResNet-18 and MF-JLE over N seeds beside the paper's table")
    _add_data_args(p, required_dataset=False)
    _add_train_args(p)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--out", default=None, help="output folder (default runs/reproduce_<dataset>)")

    p = sub.add_parser("demo", help="the main job: both models on the built-in dataset")
    p.add_argument("--preset", choices=["cpu", "gpu", "fast"], default=None, help="default: gpu on CUDA, else cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="output folder (default runs/demo)")
    p.add_argument("--device")
    return parser


def _train_overrides(args: argparse.Namespace) -> dict:
    lambdas = (args.lam,) * 5 if getattr(args, "lam", None) is not None else args.lambdas
    return {
        "dataset": args.dataset, "root": args.root, "skip_bad": args.skip_bad or None, "num_images": args.num_images,
        "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "image_size": args.image_size,
        "source_size": args.source_size, "local_size": args.local_size, "crop_fraction": args.crop_fraction,
        "lambdas": lambdas, "loss": args.loss, "fusion_weights": args.fusion_weights, "split_scheme": args.split_scheme,
        "split_seed": args.split_seed, "augment": args.augment, "pretrained": args.pretrained, "weights": args.weights,
        "seed": args.seed, "device": args.device, "local_impl": args.local_impl, "compile": args.compile,
    }


def cmd_data(args: argparse.Namespace) -> int:
    """Summarise a dataset (DESIGN §4 `data`)."""
    from .datasets import load_index

    size = args.image_size or (128 if args.dataset == "synthetic" else 224)
    options = {"size": size} if args.dataset == "synthetic" else {}
    if args.num_images and args.dataset == "synthetic":
        options["num_images"] = args.num_images
    index = load_index(args.dataset, args.root, skip_bad=args.skip_bad, **options)  # label errors: before torch loads
    from .cache import prepare_dataset
    from .splits import make_splits

    prepared = prepare_dataset(index, size=size, skip_bad=args.skip_bad, show_progress=not args.json)
    try:
        splits = make_splits(prepared, args.split_scheme, args.split_seed)
    except ConfigError:
        if args.split_scheme != "paper":
            raise
        splits = None
    summary = prepared.summary(splits)
    if args.figure:
        from .plots import plot_samples, save_figure

        save_figure(plot_samples(prepared, n=16), args.figure)
    if args.json:
        print(json.dumps(json_safe(summary)))
        return 0
    print(f"dataset {summary['dataset']}: {summary['num_images']} images, label cardinality {summary['label_cardinality']:.2f}")
    print("positives per emotion: " + ", ".join(f"{k} {v}" for k, v in summary["label_counts"].items()))
    if summary.get("splits"):
        print("splits: " + ", ".join(f"{k} {v}" for k, v in summary["splits"].items()))
    print("landmarks: " + ", ".join(f"{k} {v}" for k, v in summary["landmarks"].items()))
    if summary["problems"]:
        print(f"{len(summary['problems'])} problem(s), {summary['skipped']} skipped:")
        for line in summary["problems"][:20]:
            print("  " + line)
        if len(summary["problems"]) > 20:
            print(f"  ... {len(summary['problems']) - 20} more (see --json)")
    if args.figure:
        print(f"figure: {args.figure}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train one model and print its nine test metrics."""
    from .config import make_config
    from .reporting import format_table, results_table
    from .training import train

    cfg = make_config(args.preset, model=args.model, **_train_overrides(args))
    result = train(cfg, args.out, resume=args.resume, show_progress=not args.no_progress)
    print(format_table(results_table({f"{cfg.model} (ours, seed {cfg.seed})": result.metrics}, cfg.dataset)))
    print(f"test samples {result.metrics['n_samples']} ({result.metrics['n_ranking_excluded']} left out of one-error/ranking/AP); outputs in {args.out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate a checkpoint."""
    from .evaluation import evaluate_checkpoint
    from .reporting import format_table, results_table

    metrics = evaluate_checkpoint(args.checkpoint, args.dataset, args.root, args.split, args.fusion_weights, args.device)
    if args.json:
        print(json.dumps(json_safe(metrics)))
    else:
        print(format_table(results_table({f"{metrics['model']} ({args.split})": metrics}, metrics["dataset"])))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Print labels and probabilities per photo."""
    from .image_io import read_images

    # Photos first (no torch needed): a bad file is named at once, before the model loads.
    images, names, problems = read_images(args.images, args.skip_bad)
    if not images:  # every photo was skipped: nothing to predict, no model to load
        print(json.dumps([{"problems": problems, "skipped": len(problems)}]) if args.json else "no photo could be read", file=sys.stdout if args.json else sys.stderr)
        for line in problems if not args.json else []:
            print(f"skipped {line}", file=sys.stderr)
        return 1
    from .evaluation import load_trained_model
    from .predict import predict_images

    model, cfg = load_trained_model(args.checkpoint, args.device)
    preds = predict_images(model, cfg, images, names, args.threshold, args.allow_fallback)
    failed = [p for p in preds if p.error]
    if args.json:
        print(json.dumps([{"image": p.source, "probs": p.probs, "labels": p.positives, "landmarks": p.landmark_source, "error": p.error} for p in preds] + ([{"problems": problems, "skipped": len(problems)}] if problems else [])))
    else:
        for p in preds:
            if p.error:
                print(f"{p.source}: {p.error}", file=sys.stderr)
                continue
            probs = "  ".join(f"{k} {v:.2f}" for k, v in p.probs.items())
            print(f"{p.source}: {', '.join(p.positives) or '(no emotion above threshold)'}\n  {probs}")
        for line in problems:
            print(f"skipped {line}", file=sys.stderr)
    if cfg.dataset == "synthetic" and not args.json:
        print("note: this checkpoint learned from rendered synthetic faces; its answers on real photos mean little.", file=sys.stderr)
    return 1 if len(failed) == len(preds) else 0  # nothing predicted (no face, or every file skipped)


def cmd_reproduce(args: argparse.Namespace) -> int:
    """ResNet-18 and MF-JLE over N seeds, mean ± std beside the paper."""
    from .config import make_config
    from .evaluation import reproduce
    from .paths import runs_dir
    from .reporting import format_table, results_table, summarise_runs

    if args.seeds < 1:
        raise ConfigError("--seeds must be at least 1")
    cfg = make_config(args.preset, **_train_overrides(args))
    out = Path(args.out) if args.out else runs_dir() / f"reproduce_{cfg.dataset}"
    runs = reproduce(cfg, args.seeds, out, show_progress=not args.no_progress)
    rows = {f"{name} (ours, {len(r)} seeds)": summarise_runs(r) for name, r in runs.items()}
    print(format_table(results_table(rows, cfg.dataset)))
    print(f"runs in {out}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job (see demo.py)."""
    from .demo import run_demo

    run_demo(preset=args.preset, seed=args.seed, out=args.out, device=args.device)
    return 0


COMMANDS = {"data": cmd_data, "train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict, "reproduce": cmd_reproduce, "demo": cmd_demo}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: dispatch, and turn known errors into one line on stderr (exit 2)."""
    args = build_parser().parse_args(argv)
    try:
        _check_device(getattr(args, "device", None))
        return COMMANDS[args.command](args)
    except MfjleError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as err:  # e.g. disk full, permission denied on --out
        print(f"error: {err.filename}: {err.strerror or err}" if err.filename else f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001 - last resort: one line, not a traceback (DESIGN §4)
        if os.environ.get("MFJLE_DEBUG"):
            raise
        first = str(err).strip().splitlines()[0][:300] if str(err).strip() else ""
        print(f"error: unexpected {type(err).__name__}: {first} (likely a bug in mfjle_lib; rerun with MFJLE_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1
