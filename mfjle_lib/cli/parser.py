"""The argument parser of `python -m mfjle_lib` (the CLI contract in docs/DESIGN.md §4)."""

from __future__ import annotations

import argparse

from ..data.registry import dataset_names
from ..models.registry import MODEL_NAMES
from ..perf.inference_path import PRECISION_CHOICES

PRECISION_HELP = (
    "inference path: auto (default; CPU: bf16 where the CPU has native bf16 and it passed the accuracy check, else "
    "fp32 "
    "with folded BatchNorm; CUDA: the model's own forward), eager (the model's own forward, the reference), "
    "fp32, bf16, mixed or int8 (CPU deploy paths, forced, not checked); printed and recorded as `inference`"
)


def _floats(text: str) -> tuple[float, ...]:
    """Parse 'a,b,c' into floats for --lambdas / --fusion-weights."""
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _fusion_weights(text: str) -> tuple[float, ...] | str:
    """'val' (choose on the validation split) or 'w0,...,w5' for --fusion-weights."""
    return "val" if text.strip().lower() == "val" else _floats(text)


def _positive_int(text: str) -> int:
    """Parse a whole number >= 1 (sizes, counts, epochs)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


class _Gone(argparse.Action):
    """A flag that changed meaning: one line that says what to use instead, exit status 2."""

    def __init__(self, option_strings: list[str], dest: str, use: str = "", **kwargs) -> None:
        super().__init__(option_strings, dest, nargs="?", help=argparse.SUPPRESS, **kwargs)
        self.use = use

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        parser.error(f"{option_string} is gone (it meant S_g on train and R on data); use {self.use}")


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line with exit status 2."""

    def error(self, message: str) -> None:  # noqa: D401
        self.exit(2, f"{self.prog}: error: {message}\n")


def _add_data_args(p: argparse.ArgumentParser, required_dataset: bool = False) -> None:
    p.add_argument(
        "--dataset",
        choices=dataset_names(),
        default=None if required_dataset else "synthetic",
        required=required_dataset,
        help="dataset name (default: synthetic, built in)",
    )
    p.add_argument("--root", default=None, help="dataset folder (not needed for synthetic)")
    p.add_argument("--skip-bad", action="store_true", help="skip, count and list bad files instead of stopping")
    p.add_argument("--num-images", type=_positive_int, default=None, help="synthetic only: number of faces to render")


def _add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--preset",
        default="paper",
        choices=["paper", "gpu", "cpu", "fast"],
        help="paper = the paper's recipe (default); cpu/fast/gpu = smaller sizes",
    )
    p.add_argument("--epochs", type=_positive_int)
    p.add_argument("--batch-size", type=_positive_int)
    p.add_argument("--lr", type=float, help="learning rate (paper: 1e-4)")
    p.add_argument("--global-size", type=_positive_int, help="S_g: side of the global branch's input")
    p.add_argument(
        "--image-size", action=_Gone, use="--global-size (S_g, the global input) or --source-size (R, the aligned face)"
    )
    p.add_argument("--source-size", type=_positive_int, help="R: side of the aligned, cached face")
    p.add_argument("--local-size", type=_positive_int, help="S_l: side of each local crop")
    p.add_argument("--crop-fraction", type=float, help="c: crop side as a fraction of R")
    lam = p.add_mutually_exclusive_group()
    lam.add_argument("--lambda", dest="lam", type=float, help="λ for all five local modules (Eq. 1; default 0.01)")
    lam.add_argument("--lambdas", type=_floats, help="five λ values l1,...,l5")
    p.add_argument("--loss", choices=["bce", "softmax_ce"], help="bce (paper) or softmax_ce (Fig. 5 ablation)")
    p.add_argument(
        "--fusion-weights",
        type=_fusion_weights,
        help="w0,...,w5 (global, five locals; default 1,λ1..λ5), or 'val': also report weights and threshold chosen "
        "on the validation split (never on test)",
    )
    p.add_argument("--split-scheme", choices=["paper", "official", "subject"])
    p.add_argument("--split-seed", type=int)
    p.add_argument(
        "--augment", action="store_true", default=None, help="flip/rotate/scale/shift/jitter (off in the paper)"
    )
    w = p.add_mutually_exclusive_group()
    w.add_argument("--pretrained", action="store_true", default=None, help="ImageNet weights (needs internet)")
    w.add_argument("--weights", help="local ResNet-18 ImageNet weights file")
    p.add_argument(
        "--init-from",
        metavar="RUN_OR_CHECKPOINT",
        help="start from another run of this project (its folder or checkpoint.pt): every tensor whose name and "
        "shape match is loaded; optimiser and schedule start fresh",
    )
    p.add_argument(
        "--init-locals-from-global",
        action="store_true",
        default=None,
        help="with --init-from a resnet18 run: copy its net into each of MF-JLE's five local nets too",
    )
    p.add_argument(
        "--init-head",
        choices=["carry", "fresh"],
        default=None,
        help="with --init-from: carry the source's classifier heads over (default) or start them fresh",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a run already in the output folder: the old run is moved to OUT.old-<time> and deleted once "
        "the new run has written its first checkpoint",
    )
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="cuda, mps or cpu (default: best available)")
    p.add_argument("--local-impl", choices=["auto", "loop", "fused"], help="how the five local nets run")
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    p.add_argument(
        "--deterministic",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="deterministic kernels (default: on for CPU, off on CUDA, where they are slower)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--save-every",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="write the resume state (last.pt) at most every SECONDS and after the last epoch (default 0: after "
        "every epoch; small datasets train much faster with e.g. 120)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = _Parser(prog="python -m mfjle_lib", description="MF-JLE multi-label facial expression recognition")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("data", help="summarise a dataset")
    _add_data_args(p)
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument(
        "--source-size",
        type=_positive_int,
        default=None,
        help="R: side of the decoded, aligned face (default: the dataset's, 128 synthetic, 224 others)",
    )
    p.add_argument("--image-size", action=_Gone, use="--source-size (R, the aligned face)")
    p.add_argument("--split-scheme", default="paper", choices=["paper", "official", "subject"])
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--figure", default=None, help="also save a figure of sample faces with landmarks and labels")

    p = sub.add_parser("train", help="train resnet18 or mfjle")
    _add_data_args(p)
    p.add_argument("--model", choices=MODEL_NAMES, required=True)
    _add_train_args(p)
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument(
        "--sync-bn",
        action="store_true",
        help="under torchrun: BatchNorm statistics over the whole global batch (SyncBatchNorm; CUDA only)",
    )
    p.add_argument(
        "--dist-backend",
        choices=["auto", "gloo", "nccl"],
        default="auto",
        help="under torchrun: the process-group backend (auto: nccl on CUDA, gloo on the CPU)",
    )
    p.add_argument(
        "--out", required=True, help="output folder (a run already there is never overwritten without --overwrite)"
    )

    p = sub.add_parser("evaluate", help="nine metrics of a checkpoint")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--dataset", choices=dataset_names())
    p.add_argument("--root")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument(
        "--fusion-weights",
        type=_fusion_weights,
        help="w0,...,w5, or 'val': also report weights and threshold chosen on the validation split (the run's "
        "val_outputs.npz, else a forward pass over val)",
    )
    p.add_argument("--device")
    p.add_argument("--precision", choices=PRECISION_CHOICES, default="auto", help=PRECISION_HELP)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("predict", help="emotions in photos")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--skip-bad", action="store_true")
    p.add_argument("--allow-fallback", action="store_true", help="predict even when no face is found")
    p.add_argument("--device")
    p.add_argument(
        "--precision",
        choices=PRECISION_CHOICES,
        default="auto",
        help=PRECISION_HELP
        + (
            "; predict has no labels, so auto takes bf16 only when the run's metrics.json records a passing check, and "
            "int8/mixed (which need training images) are refused"
        ),
    )
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("reproduce", help="ResNet-18 and MF-JLE over N seeds beside the paper's table")
    _add_data_args(p, required_dataset=False)
    _add_train_args(p)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--out", default=None, help="output folder (default runs/reproduce_<dataset>)")

    p = sub.add_parser(
        "pretrain", help="train a start for a real dataset on built-in faces (then train --init-from OUT)"
    )
    p.add_argument(
        "--like",
        choices=dataset_names(real_only=True),
        required=True,
        help="render the built-in faces at the geometry (R, S_g, S_l, c) `train --dataset LIKE` uses with the same "
        "preset and size options",
    )
    p.add_argument("--model", choices=MODEL_NAMES, default="mfjle")
    p.add_argument(
        "--num-images",
        type=_positive_int,
        default=None,
        help="built-in faces to render (default: the preset's, else 3000)",
    )
    p.add_argument(
        "--synthetic-seed",
        type=_positive_int,
        default=1,
        help="render seed, at least 1: the built-in evaluation set is seed 0, so no face is shared with it",
    )
    _add_train_args(p)
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--out", required=True, help="output folder")

    p = sub.add_parser(
        "study",
        help="a real-dataset study: ResNet-18 and MF-JLE, from scratch and started, image and subject splits; "
        "resumable; results and table in one folder",
    )
    p.add_argument("--dataset", choices=dataset_names(real_only=True), required=True)
    p.add_argument("--root", required=True, help="dataset folder")
    p.add_argument("--skip-bad", action="store_true", help="skip, count and list bad files instead of stopping")
    p.add_argument(
        "--out",
        default=None,
        help="results folder: per-run artefacts and table.md/table.json (default results/DATASET)",
    )
    p.add_argument(
        "--work", default=None, help="work folder for checkpoints, never committed (default runs/study_DATASET)"
    )
    p.add_argument("--seeds", type=_positive_int, default=3, help="seeds 0..N-1 (training seed = split seed)")
    p.add_argument(
        "--splits",
        type=lambda t: tuple(x for x in t.split(",") if x),
        default=None,
        help="split schemes, e.g. paper,subject (default: paper, plus subject for jaffe)",
    )
    p.add_argument(
        "--models",
        type=lambda t: tuple(x for x in t.split(",") if x),
        default=("resnet18", "mfjle"),
        help="default resnet18,mfjle (the study compares these two)",
    )
    p.add_argument(
        "--starts",
        type=lambda t: tuple(x for x in t.split(",") if x),
        default=("scratch", "started", "started_fresh_head"),
        help="default scratch,started,started_fresh_head",
    )
    p.add_argument(
        "--preset", default=None, choices=["paper", "gpu", "cpu", "fast"], help="recipe and geometry (default cpu)"
    )
    p.add_argument("--epochs", type=_positive_int, default=None, help="default 30")
    p.add_argument("--batch-size", type=_positive_int, default=None, help="default 32")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--source-size", type=_positive_int, default=None)
    p.add_argument("--global-size", type=_positive_int, default=None)
    p.add_argument("--local-size", type=_positive_int, default=None)
    p.add_argument("--crop-fraction", type=float, default=None)
    p.add_argument("--augment", action="store_true", default=None)
    p.add_argument(
        "--pretrain-images",
        type=_positive_int,
        default=None,
        help="built-in faces the start learns from (default 6000)",
    )
    p.add_argument("--pretrain-epochs", type=_positive_int, default=None, help="default 8")
    p.add_argument("--device", default=None)
    p.add_argument(
        "--table-only", action="store_true", help="train nothing: rebuild table.md/table.json from the results folder"
    )
    p.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("demo", help="the main job: both models on the built-in dataset")
    p.add_argument("--preset", choices=["cpu", "gpu", "fast"], default=None, help="default: gpu on CUDA, else cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="output folder (default runs/demo)")
    p.add_argument("--device")
    return parser
