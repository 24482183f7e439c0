"""What each subcommand does.

The torch-heavy parts (faces, evaluation, training, course) are imported inside the command that
needs them: `--help`, a bad label file and an unreadable photo answer in ~0.4 s instead of the
~4-5 s that importing torch, torchvision and scikit-learn takes (measured with
`time python -m mfjle_lib data --dataset folder --root /nonexistent`). The data part has no torch
and stays at the top.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from types import ModuleType

from ..data import dataset_spec, load_index, loader_options, make_splits, read_images
from ..errors import ConfigError
from ..files import json_safe
from ..paths import runs_dir


def _torch_parts() -> tuple[ModuleType, ModuleType, ModuleType, ModuleType]:
    """The evaluation, training, inference and experiments parts, imported on first use.

    They load torch (2-3 s), which `--help`, `data`'s label checks and unreadable photos never
    need: those answer in a fraction of a second.
    """
    from .. import evaluation, experiments, inference, training  # lazy: torch

    return evaluation, training, inference, experiments


def _check_device(name: str | None) -> None:
    """Reject a --device that cannot work here with one line (torch would raise a long RuntimeError)."""
    if name is None or name in ("", "auto"):
        return
    import torch  # lazy: only a named --device needs it

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


def _train_overrides(args: argparse.Namespace) -> dict:
    lambdas = (
        args.lam if getattr(args, "lam", None) is not None else args.lambdas
    )  # one λ is expanded by the config's rule
    return {
        "dataset": args.dataset,
        "root": args.root,
        "skip_bad": args.skip_bad or None,
        "num_images": args.num_images,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "global_size": args.global_size,
        "source_size": args.source_size,
        "local_size": args.local_size,
        "crop_fraction": args.crop_fraction,
        "lambdas": lambdas,
        "loss": args.loss,
        "fusion_weights": None if args.fusion_weights == "val" else args.fusion_weights,
        "split_scheme": args.split_scheme,
        "split_seed": args.split_seed,
        "augment": args.augment,
        "pretrained": args.pretrained,
        "weights": args.weights,
        "seed": args.seed,
        "device": args.device,
        "local_impl": args.local_impl,
        "compile": args.compile,
        "init_from": args.init_from,
        "init_locals_from_global": args.init_locals_from_global,
        "init_head": args.init_head,
        "deterministic": getattr(args, "deterministic", None),
    }


def _say_path(record: dict, to_stdout: bool = False) -> None:
    """Print which inference path evaluated the model, and why (one line; stderr unless asked)."""
    from ..perf.inference_path import path_line  # lazy: torch

    print(path_line(record), file=sys.stdout if to_stdout else sys.stderr)


def _init_label(init: str | None) -> str:
    """Short form of a run's recorded initialisation for a table row (the sha256 stays in metrics.json)."""
    if not init:
        return "random"
    head, _, rest = init.partition("; rest: ")
    return head.split(" sha256:")[0] + (f" + {rest.split(' sha256:')[0]}" if rest else "")


def _val_fusion_label(metrics: dict) -> str:
    """'fusion on val: λ 0.3, t 0.40' for a row chosen by `--fusion-weights val`."""
    w, t = metrics["fusion_weights"], metrics["threshold"]
    return (f"λ {w[1] / w[0]:g}, " if len(w) > 1 else "") + f"t {t:.2f}"


def cmd_data(args: argparse.Namespace) -> int:
    """Summarise a dataset (docs/DESIGN.md §4 `data`)."""
    size = args.source_size or dataset_spec(args.dataset).source_size
    options = loader_options(args.dataset, size, args.num_images)
    index = load_index(args.dataset, args.root, skip_bad=args.skip_bad, **options)  # label errors: before torch loads
    from ..faces import prepare_dataset  # lazy: torch

    prepared = prepare_dataset(index, size=size, skip_bad=args.skip_bad, show_progress=not args.json)
    try:
        splits = make_splits(prepared, args.split_scheme, args.split_seed)
    except ConfigError:
        if args.split_scheme != "paper":
            raise
        splits = None
    summary = prepared.summary(splits)
    if args.figure:
        from ..course import plots  # lazy: matplotlib and the training stack

        plots.save_figure(plots.plot_samples(prepared, n=16), args.figure)
    if args.json:
        print(json.dumps(json_safe(summary)))
        return 0
    print(
        f"dataset {summary['dataset']}: {summary['num_images']} images, label cardinality "
        f"{summary['label_cardinality']:.2f}"
    )
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
    evaluation, training, inference, _ = _torch_parts()

    cfg = training.make_config(args.preset, model=args.model, **_train_overrides(args))
    # Under torchrun: one process group for the run (checked first: a wrong launch is one line); else one process.
    with training.launch(args.device, cfg.batch_size, args.sync_bn, args.dist_backend) as dist:
        result = training.train(
            cfg,
            args.out,
            resume=args.resume,
            overwrite=args.overwrite,
            show_progress=not args.no_progress,
            dist=dist,
            save_every_s=args.save_every,
        )
    if not dist.is_main:  # rank 0 reports the run
        return 0
    rows = {f"{cfg.model} (ours, seed {cfg.seed}, init {_init_label(result.metrics.get('init'))})": result.metrics}
    if args.fusion_weights == "val":
        chosen = inference.run_val_fusion(args.out, result.config.effective_fusion_weights())
        rows[f"{cfg.model} (fusion chosen on val: {_val_fusion_label(chosen)})"] = chosen
    print(evaluation.format_table(evaluation.results_table(rows, cfg.dataset)))
    _say_path(result.metrics["inference"], to_stdout=True)
    print(
        f"test samples {result.metrics['n_samples']} ({result.metrics['n_ranking_excluded']} left out of "
        f"one-error/ranking/AP); outputs in {args.out}"
    )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate a checkpoint."""
    evaluation, _, inference, _ = _torch_parts()

    if args.fusion_weights == "val":
        fixed, chosen = inference.evaluate_val_fusion(
            args.checkpoint,
            args.dataset,
            args.root,
            args.split,
            args.device,
            show_progress=not args.json,
            precision=args.precision,
        )
        _say_path(fixed["inference"])
        if args.json:
            print(json.dumps(json_safe({"fixed": fixed, "val_chosen": chosen})))
        else:
            print(
                evaluation.format_table(
                    evaluation.results_table(
                        {
                            f"{fixed['model']} ({args.split}, its fusion)": fixed,
                            f"{fixed['model']} ({args.split}, fusion chosen on val: "
                            f"{_val_fusion_label(chosen)})": chosen,
                        },
                        fixed["dataset"],
                    )
                )
            )
        return 0
    metrics = inference.evaluate_checkpoint(
        args.checkpoint, args.dataset, args.root, args.split, args.fusion_weights, args.device, precision=args.precision
    )
    _say_path(metrics["inference"])  # stderr: --json keeps stdout one object
    if args.json:
        print(json.dumps(json_safe(metrics)))
    else:
        print(
            evaluation.format_table(
                evaluation.results_table({f"{metrics['model']} ({args.split})": metrics}, metrics["dataset"])
            )
        )
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Print labels and probabilities per photo."""
    # Photos first (no torch needed): a bad file is named at once, before the model loads.
    images, names, problems = read_images(args.images, args.skip_bad)
    if not images:  # every photo was skipped: nothing to predict, no model to load
        print(
            json.dumps([{"problems": problems, "skipped": len(problems)}]) if args.json else "no photo could be read",
            file=sys.stdout if args.json else sys.stderr,
        )
        for line in problems if not args.json else []:
            print(f"skipped {line}", file=sys.stderr)
        return 1
    _, _, inference, _ = _torch_parts()

    model, cfg = inference.load_trained_model(args.checkpoint, args.device)
    preds = inference.predict_images(
        model, cfg, images, names, args.threshold, args.allow_fallback, args.precision, args.checkpoint
    )
    _say_path(preds[0].inference)
    failed = [p for p in preds if p.error]
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "image": p.source,
                        "probs": p.probs,
                        "labels": p.positives,
                        "landmarks": p.landmark_source,
                        "error": p.error,
                        "inference": p.inference["path"],
                    }
                    for p in preds
                ]
                + ([{"problems": problems, "skipped": len(problems)}] if problems else [])
            )
        )
    else:
        for p in preds:
            if p.error:
                print(f"{p.source}: {p.error}", file=sys.stderr)
                continue
            probs = "  ".join(f"{k} {v:.2f}" for k, v in p.probs.items())
            print(f"{p.source}: {', '.join(p.positives) or '(no emotion above threshold)'}\n  {probs}")
        for line in problems:
            print(f"skipped {line}", file=sys.stderr)
    if dataset_spec(cfg.dataset).built_in and not args.json:
        print(
            "note: this checkpoint learned from rendered synthetic faces; its answers on real photos mean little.",
            file=sys.stderr,
        )
    return 1 if len(failed) == len(preds) else 0  # nothing predicted (no face, or every file skipped)


def cmd_reproduce(args: argparse.Namespace) -> int:
    """ResNet-18 and MF-JLE over N seeds, mean ± std beside the paper."""
    evaluation, training, inference, experiments = _torch_parts()

    if args.seeds < 1:
        raise ConfigError("--seeds must be at least 1")
    cfg = training.make_config(args.preset, **_train_overrides(args))
    out = Path(args.out) if args.out else runs_dir() / f"reproduce_{cfg.dataset}"
    runs = experiments.reproduce(cfg, args.seeds, out, show_progress=not args.no_progress, overwrite=args.overwrite)
    rows = {
        f"{name} (ours, {len(r)} seeds, init {_init_label(r[0].get('init'))})": evaluation.summarise_runs(r)
        for name, r in runs.items()
    }
    if args.fusion_weights == "val":
        for name, r in runs.items():
            chosen = [
                inference.run_val_fusion(out / f"{name}_seed{seed}", cfg.effective_fusion_weights())
                for seed in range(len(r))
            ]
            (out / f"{name}_fusion_on_val.json").write_text(json.dumps(json_safe(chosen), indent=2))
            rows[f"{name} (fusion chosen on val per seed, {len(r)} seeds)"] = evaluation.summarise_runs(chosen)
    print(evaluation.format_table(evaluation.results_table(rows, cfg.dataset)))
    print(f"runs in {out}")
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    """Train a start for a real dataset on built-in faces rendered at that dataset's geometry."""
    _, training, _, _ = _torch_parts()

    overrides = _train_overrides(
        argparse.Namespace(**{**vars(args), "dataset": args.like, "root": None, "skip_bad": False})
    )
    like = training.make_config(
        args.preset, model=args.model, **overrides
    )  # the geometry `train --dataset LIKE` would use
    overrides.update(dataset="synthetic", root=None, synthetic_seed=args.synthetic_seed, **like.geometry())
    cfg = training.make_config(args.preset, model=args.model, **overrides)
    print(
        f"pretraining {cfg.model} for {args.like} on built-in faces (render seed {cfg.synthetic_seed}; the built-in "
        "evaluation set is seed 0, "
        f"so no face is shared): R={cfg.source_size}, S_g={cfg.global_size}, S_l={cfg.local_size}, "
        f"c={cfg.crop_fraction:g}",
        flush=True,
    )
    result = training.train(
        cfg,
        args.out,
        resume=args.resume,
        overwrite=args.overwrite,
        show_progress=not args.no_progress,
        save_every_s=args.save_every,
    )
    print(
        f"built-in test micro-F1 {result.metrics['micro_f1']:.3f}; start a {args.like} run from it with:\n"
        f"  python -m mfjle_lib train --dataset {args.like} --root DIR --model {cfg.model} --preset {cfg.preset} "
        f"--source-size {cfg.source_size} "
        f"--global-size {cfg.global_size} --local-size {cfg.local_size} --crop-fraction {cfg.crop_fraction:g} "
        f"--init-from {args.out} --out OUT"
    )
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    """A real-dataset study: train what is missing, export each run, write the table (see experiments/study.py)."""
    evaluation, _, _, experiments = _torch_parts()
    study, study_table = experiments.study, evaluation.study_table
    out = Path(args.out) if args.out else Path("results") / args.dataset
    if not args.table_only:
        d = study.STUDY_DEFAULTS
        overrides = {
            k: getattr(args, k)
            for k in (
                "lr",
                "source_size",
                "global_size",
                "local_size",
                "crop_fraction",
                "augment",
                "device",
                "skip_bad",
            )
        }
        plan = study.make_plan(
            args.dataset,
            args.root,
            out,
            args.work or runs_dir() / f"study_{args.dataset}",
            args.seeds,
            args.splits,
            args.models,
            args.starts,
            args.preset or d["preset"],
            args.pretrain_images or d["pretrain_images"],
            args.pretrain_epochs or d["pretrain_epochs"],
            study.study_command(),
            epochs=args.epochs or d["epochs"],
            batch_size=args.batch_size or d["batch_size"],
            **{k: v for k, v in overrides.items() if v},
        )
        print(
            f"study of {args.dataset}: {len(plan.runs)} runs"
            + (" and one pretrained start" if plan.pretrain else "")
            + f"; results in {out}",
            flush=True,
        )
        study.run_study(plan, show_progress=not args.no_progress)
    # The table names the command that rebuilds it: this one, which trains nothing once every run is present.
    md, js = study_table.write(out, command=study.study_command().replace(" --table-only", ""))
    print(md.read_text())
    print(f"table: {md} and {js}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job (see course/demo.py)."""
    from ..course import run_demo  # lazy: torch and matplotlib

    run_demo(preset=args.preset, seed=args.seed, out=args.out, device=args.device)
    return 0


COMMANDS = {
    "data": cmd_data,
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "predict": cmd_predict,
    "reproduce": cmd_reproduce,
    "pretrain": cmd_pretrain,
    "study": cmd_study,
    "demo": cmd_demo,
}
