"""A real-dataset study as one resumable command (`python -m mfjle_lib study`).

The grid (paper Table 2's protocol on a CPU-sized geometry): on the image split, ResNet-18 and
MF-JLE from scratch and from one start pretrained on built-in faces rendered at the dataset's
geometry, with the start's classifier heads carried over or started fresh; on the subject split
(where the dataset names its subjects), the started runs with the head mode that scored higher on
validation. Each run trains in a work folder (checkpoints, never committed) and its compact
artefacts are exported to the results folder: `metrics.json`, `history.csv`,
`val_outputs.npz`, `test_outputs.npz` and `run.json` (the command, settings, versions, machine
and wall time). A run whose artefacts are present with the same settings is never trained again;
an interrupted one resumes from its `last.pt`. The table is then built from the results folder
alone (`evaluation.study_table`), so a rerun regenerates it byte for byte.
"""

from __future__ import annotations

import json
import platform
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
import torch
import torchvision

from .. import __version__
from ..data.registry import dataset_names, dataset_spec, load_index, loader_options
from ..errors import ConfigError, DataError
from ..evaluation.fusion_choice import micro_f1_at
from ..evaluation.outputs import load_outputs
from ..files import atomic_write_text, json_safe, read_json
from ..models.arms import ARMS, arm_settings
from ..runtime import machine_record
from ..training.config import TrainConfig, make_config
from ..training.trainer import train

#: Split schemes the study runs by default: JAFFE names its ten subjects, so it also gets the subject split.
DEFAULT_SPLITS: dict[str, tuple[str, ...]] = {"jaffe": ("paper", "subject")}


#: How a run starts: from random weights, or from the pretrained start with its heads carried over or fresh.
STARTS: dict[str, str | None] = {"scratch": None, "started": "carry", "started_fresh_head": "fresh"}


#: Settings that name a run's place in the grid or its machine, not what it learned: ignored when deciding a rerun.
_NOT_SETTINGS = ("device", "root", "init", "init_from", "extra")


#: The study's recipe where the command line is silent: the `cpu` preset's geometry (R 128, S_g 64,
#: S_l 32, c 0.25: the lessons' own, so a 2-core machine trains an MF-JLE run on JAFFE in ~3 min and
#: the whole grid in about an hour) and its Adam lr 1e-3, with batch 32 (4 steps per epoch on
#: JAFFE's 128 training faces, where batch 64 would give 2) for 30 epochs.
STUDY_DEFAULTS: dict[str, Any] = {
    "preset": "cpu",
    "epochs": 30,
    "batch_size": 32,
    "pretrain_images": 6000,
    "pretrain_epochs": 8,
}


#: Write the ~800 MB resume state at most this often (seconds): on JAFFE an MF-JLE epoch takes ~5 s.
SAVE_EVERY_S = 120.0


@dataclass(frozen=True)
class StudyRun:
    """One cell of the grid: split scheme, arm (`models.arms`: a model at a geometry), start, seed (training seed = split seed)."""

    split: str
    model: str  # an arm's name: the registry's model names are arms too
    start: str
    seed: int

    @property
    def name(self) -> str:
        """The run's folder name, e.g. `paper_mfjle_started_seed0`."""
        return f"{self.split}_{self.model}_{self.start}_seed{self.seed}"


@dataclass
class StudyPlan:
    """What the study trains: the base config (geometry, recipe), the pretrain's, the grid, where things go."""

    base: TrainConfig
    pretrain: TrainConfig | None
    runs: list[StudyRun]
    out: Path
    work: Path
    command: str


def default_splits(dataset: str) -> tuple[str, ...]:
    """The split schemes the study runs on `dataset` by default."""
    return DEFAULT_SPLITS.get(dataset, ("paper",))


def grid(splits: Sequence[str], models: Sequence[str], starts: Sequence[str], seeds: int) -> list[StudyRun]:
    """The runs of the study: every start on the first split; started runs only (one head mode, chosen later) on the others."""
    unknown = sorted(set(starts) - set(STARTS))
    if unknown:
        raise ConfigError(f"--starts: unknown start(s) {unknown}; choose from {sorted(STARTS)}")
    unknown = sorted(set(models) - set(ARMS))
    if unknown:
        raise ConfigError(f"--models: unknown arm(s) {unknown}; choose from {', '.join(ARMS)}")
    runs = []
    for k, split in enumerate(splits):
        for start in starts:
            if (
                k > 0 and start == "started_fresh_head"
            ):  # the head mode of later splits is chosen on the first one's validation
                continue
            if k > 0 and start == "scratch" and "started" in starts:
                continue
            runs.extend(StudyRun(split, model, start, seed) for seed in range(seeds) for model in models)
    return runs


def run_config(plan: StudyPlan, run: StudyRun, head: str | None = None) -> TrainConfig:
    """The TrainConfig of one run of the grid (`head`: the head mode of a 'started' run on a later split)."""
    init_head = STARTS[run.start] if run.start != "started" or head is None else head
    init = {"init_from": str(plan.work / "pretrain"), "init_head": init_head} if init_head else {}
    arm = arm_settings(run.model, plan.base.geometry())
    return replace(plan.base, **arm, split_scheme=run.split, split_seed=run.seed, seed=run.seed, **init)


def settings(cfg: TrainConfig) -> dict[str, Any]:
    """What decides whether a finished run can be reused: the config without paths and machine."""
    return {k: v for k, v in cfg.to_dict().items() if k not in _NOT_SETTINGS}


def _versions() -> dict[str, str]:
    """Package versions a result depends on."""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "mfjle_lib": __version__,
    }


def train_command(cfg: TrainConfig, out: str) -> str:
    """The `train` command line that makes this run on its own (paths as placeholders: ROOT, WORK)."""
    parts = [
        "python -m mfjle_lib train",
        f"--dataset {cfg.dataset}",
        "--root ROOT" if cfg.root else "",
        f"--model {cfg.model}",
        f"--preset {cfg.preset}",
        f"--source-size {cfg.source_size}",
        f"--global-size {cfg.global_size}",
        f"--local-size {cfg.local_size}",
        f"--crop-fraction {cfg.crop_fraction:g}",
        f"--epochs {cfg.epochs}",
        f"--batch-size {cfg.batch_size}",
        f"--lr {cfg.lr:g}",
        f"--split-scheme {cfg.split_scheme}",
        f"--split-seed {cfg.split_seed}",
        f"--seed {cfg.seed}",
    ]
    if cfg.init_from:
        parts.append(f"--init-from WORK/pretrain --init-head {cfg.init_head}")
    parts.append(f"--save-every {SAVE_EVERY_S:g} --out WORK/{out}")
    return " ".join(p for p in parts if p)


def _scrub(text: str, plan: StudyPlan) -> str:
    """Paths of this machine (dataset root, work folder) replaced by the placeholders ROOT and WORK."""
    if plan.base.root:
        text = text.replace(str(Path(plan.base.root).expanduser()), "ROOT").replace(str(plan.base.root), "ROOT")
    return text.replace(str(plan.work.resolve()), "WORK").replace(str(plan.work), "WORK")


#: What a finished run's folder holds (run.json last: its presence marks the run done).
RUN_FILES = ("metrics.json", "history.csv", "val_outputs.npz", "test_outputs.npz")


def read_study_record(out: Path) -> dict[str, Any]:
    """A finished run's `run.json`, its `metrics.json` and outputs checked readable; DataError naming the first bad file.

    A damaged or foreign artefact is refused, never trained over: it may be the only copy of a long run.
    """
    record = read_json(out / "run.json", keys=("settings", "command"))
    files = (
        RUN_FILES if (out / "val_outputs.npz").exists() or out.name != "pretrain" else ("metrics.json", "history.csv")
    )
    for f in files:
        path = out / f
        if f.endswith(".json"):
            read_json(path, keys=("micro_f1",))
        elif f.endswith(".npz"):
            try:
                load_outputs(path)
            except Exception as exc:  # zip, pickle and key errors alike: name the file, not the exception class
                raise DataError(
                    path,
                    f"unreadable outputs ({type(exc).__name__}: {exc}); move the run folder aside to train it again",
                ) from None
        elif not path.is_file():
            raise DataError(path, "missing; move the run folder aside to train it again")
    return record


def check_results_folder(plan: StudyPlan) -> None:
    """Before any training: the results folder is writable and every finished run in it is readable (else one line naming the file)."""
    try:
        plan.out.mkdir(parents=True, exist_ok=True)
        probe = plan.out / ".write_test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"{plan.out}: the results folder cannot be written ({exc.strerror or exc})") from None
    for folder in sorted(p for p in plan.out.iterdir() if p.is_dir() and (p / "run.json").exists()):
        read_study_record(folder)


def check_dataset(cfg: TrainConfig) -> int:
    """Before any training: the dataset root and its loader give an index (labels, files); the number of faces."""
    options = loader_options(cfg.dataset, cfg.source_size, cfg.num_images, cfg.synthetic_seed)
    return len(load_index(cfg.dataset, cfg.root, skip_bad=cfg.skip_bad, **options).records)


def finished(out: Path, cfg: TrainConfig) -> bool:
    """True when `out` holds a finished run's artefacts made with `cfg`'s settings; ConfigError when they differ."""
    record = out / "run.json"
    if not record.is_file():
        return False
    saved = read_study_record(out)["settings"]
    now = json.loads(json.dumps(json_safe(settings(cfg))))
    diff = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
    if diff:
        raise ConfigError(
            f"{out}: these results were made with other settings ({', '.join(diff)}); move them aside or use another --out"
        )
    return True


def export(plan: StudyPlan, cfg: TrainConfig, name: str, wall_s: float, files: Sequence[str]) -> None:
    """Copy a finished run's compact artefacts from the work folder to the results folder, with its record."""
    src, dst = plan.work / name, plan.out / name
    dst.mkdir(parents=True, exist_ok=True)
    for f in files:
        if f.endswith(".npz"):
            shutil.copyfile(src / f, dst / f)
        else:
            atomic_write_text(dst / f, _scrub((src / f).read_text(), plan))
    trained_s = float(pd.read_csv(src / "history.csv")["time_s"].sum())
    record = {
        "name": name,
        "command": train_command(cfg, name),
        "study_command": plan.command,
        "settings": settings(cfg),
        "versions": _versions(),
        "machine": machine_record(),
        "wall_s": round(wall_s, 1),
        "epochs_time_s": round(trained_s, 1),
    }
    atomic_write_text(
        dst / "run.json", json.dumps(json_safe(record), indent=2) + "\n"
    )  # last: its presence marks the run done


def _train_and_export(plan: StudyPlan, cfg: TrainConfig, name: str, files: Sequence[str], show_progress: bool) -> None:
    """Train one run in the work folder (resuming a partial one) and export it; skip it when its results are there."""
    if finished(plan.out / name, cfg):
        print(f"{name}: results present, not trained again", flush=True)
        return
    print(f"== {name} ==", flush=True)
    t0 = time.time()
    train(cfg, plan.work / name, resume=True, show_progress=show_progress, save_every_s=SAVE_EVERY_S)
    export(plan, cfg, name, time.time() - t0, files)


def val_micro_f1(run_dir: Path) -> float:
    """Validation micro-F1 of a finished run at its own fusion and threshold 0.5 (validation outputs only)."""
    val = load_outputs(run_dir / "val_outputs.npz")
    return float(micro_f1_at(val["labels"], val["fused_probs"], [0.5])[0])


def chosen_head(plan: StudyPlan, split: str) -> tuple[str, dict[str, float]]:
    """The head mode ('carry' or 'fresh') with the higher mean validation micro-F1 on `split`; the means it compared."""
    means = {}
    for start in ("started", "started_fresh_head"):
        runs = [r for r in plan.runs if r.split == split and r.start == start]
        if not runs or not all((plan.out / r.name / "run.json").is_file() for r in runs):
            return "carry", {}
        means[STARTS[start]] = float(np.mean([val_micro_f1(plan.out / r.name) for r in runs]))
    return ("fresh" if means["fresh"] > means["carry"] else "carry"), means


def run_study(plan: StudyPlan, show_progress: bool = True) -> None:
    """Check the inputs, pretrain (if any run is started), train every run not yet in the results folder, export each as it lands."""
    faces = check_dataset(plan.base)  # a wrong root or a broken label file stops here, in seconds, before any training
    check_results_folder(plan)
    print(f"{plan.base.dataset}: {faces} faces indexed; results folder {plan.out} checked", flush=True)
    if plan.pretrain is not None:
        _train_and_export(plan, plan.pretrain, "pretrain", ("metrics.json", "history.csv"), show_progress)
        if not (plan.work / "pretrain" / "checkpoint.pt").is_file() and any(
            r.start != "scratch" and not (plan.out / r.name / "run.json").is_file() for r in plan.runs
        ):
            raise ConfigError(
                f"{plan.work / 'pretrain'}: the start's checkpoint is missing (its results are in {plan.out}); "
                "restore the work folder, or move the pretrain results aside to train it again"
            )
    first = plan.runs[0].split if plan.runs else None
    for run in plan.runs:
        head = None
        if run.start == "started" and run.split != first:
            head, means = chosen_head(plan, first)
            if means:
                print(
                    f"{run.name}: head mode '{head}' (mean validation micro-F1 on the {first} split: "
                    + ", ".join(f"{k} {v:.3f}" for k, v in means.items())
                    + ")",
                    flush=True,
                )
        _train_and_export(plan, run_config(plan, run, head), run.name, RUN_FILES, show_progress)


def make_plan(
    dataset: str,
    root: str | None,
    out: str | Path,
    work: str | Path,
    seeds: int,
    splits: Sequence[str] | None,
    models: Sequence[str],
    starts: Sequence[str],
    preset: str,
    pretrain_images: int,
    pretrain_epochs: int,
    command: str,
    **overrides: Any,
) -> StudyPlan:
    """The study's plan: base config from `preset` + `overrides` at the dataset's geometry, the pretrain, the grid."""
    if seeds < 1:
        raise ConfigError("--seeds must be at least 1")
    if dataset_spec(dataset).built_in:
        raise ConfigError(
            f"study is for a real dataset ({', '.join(dataset_names(real_only=True))}): the built-in faces have `reproduce`"
        )
    base = make_config(preset, dataset=dataset, root=root, **overrides)
    runs = grid(tuple(splits or default_splits(dataset)), models, starts, seeds)
    pretrain = None
    if any(r.start != "scratch" for r in runs):
        # MF-JLE pretrained: its local nets learn their own crops; a ResNet-18 run starts from its global net.
        # The preset's own recipe (batch, lr) on thousands of faces, at the study's geometry.
        pretrain = make_config(
            preset,
            model="mfjle",
            dataset="synthetic",
            synthetic_seed=1,
            num_images=pretrain_images,
            epochs=pretrain_epochs,
            **base.geometry(),
        )
    return StudyPlan(base, pretrain, runs, Path(out), Path(work), command)


def study_command(argv: Sequence[str] | None = None) -> str:
    """The command line as typed, with the dataset root and the work folder shown as ROOT and WORK (for the records)."""
    args = list(sys.argv[1:] if argv is None else argv)
    placeholders = {"--root": "ROOT", "--work": "WORK"}  # paths of this machine: they mean nothing in a record
    shown = [placeholders.get(args[i - 1], a) if i > 0 else a for i, a in enumerate(args)]
    return "python -m mfjle_lib " + " ".join(shown)
