"""What every lesson's first cells share: the FAST/full switch, sizes, device, seeds, run folders."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ..models.registry import model_spec
from ..paths import runs_dir
from ..runtime import get_device
from ..training.config import TrainConfig, make_config
from ..training.run_files import load_checkpoint, same_run
from ..training.trainer import TrainResult, train
from .released import RELEASE_DIR, released_run

IS_COLAB = "google.colab" in sys.modules


#: The lesson's RUNS switch: read the released full runs (default), train FAST runs, or train full runs.
RUN_MODES = ("released", "fast", "full")


@dataclass
class CourseParams:
    """The parameters a lesson runs with, derived from RUNS (or MFJLE_RUNS / MFJLE_FAST) / DATASET / ROOT /
    CHECKPOINT."""

    fast: bool
    dataset: str
    root: str | None
    checkpoint: str | None
    preset: str
    device: str
    seeds: list[int] = field(default_factory=list)
    runs: str = "full"  # one of RUN_MODES

    @property
    def mode_line(self) -> str:
        """The line that tells a reader which runs a lesson's outputs come from (never output-checked)."""
        mode = {"released": "RELEASED (full-mode runs, results/lessons)", "fast": "FAST"}.get(self.runs, "FULL")
        return f"mode: {mode} | dataset: {self.dataset} | preset: {self.preset}"

    def config(self, **overrides: Any) -> TrainConfig:
        """A TrainConfig for this lesson's preset and dataset, with overrides."""
        base = {"dataset": self.dataset, "root": self.root, "device": self.device}
        base.update(overrides)
        return make_config(self.preset, **base)

    def run_dir(self, name: str) -> Path:
        """Where a lesson's training run writes (`runs/<mode>/<name>`), shared across lessons."""
        return runs_dir() / ("fast" if self.fast else f"full_{self.dataset}") / name


#: Where `use_drive` keeps runs on Google Drive (under MyDrive), shared by every Colab session.
DRIVE_RUNS = "mfjle_runs"


def use_drive(folder: str = DRIVE_RUNS) -> Path:
    """On Colab: mount Google Drive and keep this course's runs in `MyDrive/<folder>` (sets MFJLE_RUNS_DIR).

    Each Colab notebook is a fresh machine: without this, "reuse lesson 04a's run" retrains.
    With it, every lesson (and every later session) finds the runs the others finished.
    Outside Colab it changes nothing and returns the runs folder in use.
    """
    if not IS_COLAB:
        print("use_drive: not on Colab, runs stay in", runs_dir())
        return runs_dir()
    from google.colab import drive  # type: ignore[import-not-found]  # only exists on Colab

    drive.mount("/content/drive")
    path = Path("/content/drive/MyDrive") / folder
    path.mkdir(parents=True, exist_ok=True)
    os.environ["MFJLE_RUNS_DIR"] = str(path)
    return path


def colab_lines(device: str, mode: str = "full") -> list[str]:
    """What a Colab session should know: no GPU (and what it costs), and where its runs are kept."""
    if not IS_COLAB:
        return []
    lines = []
    if device != "cuda" and mode == "full":
        lines.append(
            "no GPU in this Colab session: full mode trains on its 2 CPU cores (minutes to tens of minutes per "
            "lesson, see lesson 00's time table); Runtime > Change runtime type > T4 GPU, or set RUNS to released or "
            "fast"
        )
    shared = bool(os.environ.get("MFJLE_RUNS_DIR"))
    lines.append(
        f"runs: {runs_dir()} "
        + (
            "(kept across Colab sessions)"
            if shared
            else "(this session only: tick DRIVE to share runs between lessons and sessions)"
        )
    )
    return lines


def read_runs_mode(form_value: str | bool) -> str:
    """The RUNS mode: MFJLE_RUNS wins, then MFJLE_FAST=1 (CI's FAST pass), then the lesson's form field.

    `True`/`False` (the old FAST box) mean "fast"/"full".
    """
    if os.environ.get("MFJLE_RUNS"):
        mode = os.environ["MFJLE_RUNS"].strip().lower()
    elif read_env_flag("MFJLE_FAST"):
        mode = "fast"
    elif isinstance(form_value, bool):
        mode = "fast" if form_value else "full"
    else:
        mode = str(form_value).strip().lower()
    if mode not in RUN_MODES:
        raise ValueError(f"RUNS must be one of {RUN_MODES}, got {mode!r}")
    return mode


def lesson_setup(
    runs: str | bool = "released",
    dataset: str = "synthetic",
    root: str | None = None,
    checkpoint: str | None = None,
    seeds_fast: int = 2,
    seeds_full: int = 3,
) -> CourseParams:
    """Derive a lesson's parameters and print the mode line; on Colab also the GPU and runs-folder lines.

    `runs` is the lesson's RUNS field (see `read_runs_mode`): "released" reads the committed full-mode
    runs (`course/released.py`) and trains only what was not released, saying so; "fast" trains tiny
    runs; "full" trains the full runs (the cpu preset, or gpu on a GPU). The mode line differs between
    modes, so no cell that prints it is output-checked. MFJLE_DRIVE=1 (the DRIVE box on Colab) calls
    :func:`use_drive` first.
    """
    if read_env_flag("MFJLE_DRIVE") and not os.environ.get("MFJLE_RUNS_DIR"):
        use_drive()  # outside Colab it only says where runs stay
    mode = read_runs_mode(runs)
    dataset = dataset or "synthetic"
    device = str(get_device())
    if mode == "released" and dataset != "synthetic":
        print(f"no released runs for {dataset}: this lesson trains its runs (RUNS = 'full')")
        mode = "full"
    fast = mode == "fast"
    if fast:
        preset = "fast"
    elif dataset != "synthetic":
        preset = "paper"  # real datasets: the paper's recipe (Section IV.B)
    elif mode == "released":
        preset = "cpu"  # the preset the released runs were trained with, whatever this machine has
    else:
        preset = "gpu" if device == "cuda" else "cpu"
    params = CourseParams(
        fast,
        dataset,
        root or None,
        checkpoint or None,
        preset,
        device,
        list(range(seeds_fast if fast else seeds_full)),
        mode,
    )
    print(params.mode_line)
    for line in colab_lines(device, mode):
        print(line)
    return params


def run_name(cfg: TrainConfig) -> str:
    """A readable, unique folder name for a config: model, loss, λ, seed and a hash of the rest."""
    settings = {k: v for k, v in cfg.to_dict().items() if k not in ("device", "init")}
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    lam = "-".join(f"{x:g}" for x in cfg.lambdas) if len(set(cfg.lambdas)) > 1 else f"{cfg.lambdas[0]:g}"
    parts = (
        [cfg.model, cfg.loss]
        + ([f"lam{lam}"] if model_spec(cfg.model).has_locals else [])
        + [f"seed{cfg.seed}", digest]
    )
    return "_".join(parts)


def train_cached(
    params: CourseParams, cfg: TrainConfig, data=None, show_progress: bool = True, keep_resume_state: bool = False
):
    """Train `cfg` once per course run: a finished run with the same settings is reused, not redone.

    Lessons 03-05 and 07 share runs this way (lesson 05 reuses the seeds 03 and 04a trained). With
    RUNS = "released" a released run of the same settings is read instead of training (no weights:
    `out_dir` holds metrics, history and outputs); a run that was not released trains, and says so —
    or stops, under MFJLE_RELEASED_ONLY=1 (CI's released pass: a lesson must not train there).
    A finished run's `last.pt` (weights + Adam state, ~0.8 GB for MF-JLE) is deleted unless
    `keep_resume_state`, so a dozen ablation runs don't fill the disk; `checkpoint.pt` stays.
    """
    name = run_name(cfg)
    out = params.run_dir(name)
    if (out / "metrics.json").exists() and (out / "checkpoint.pt").exists():
        saved = load_checkpoint(out / "checkpoint.pt")["config"]
        if same_run(saved, cfg):  # 'auto' settings match the choices the run recorded
            if show_progress:
                print(f"reusing the finished run {out.name}")
            return _result(out, cfg)
    if params.runs == "released":
        released = released_run(cfg, name)
        if released is not None:
            return _result(released, cfg)
        if read_env_flag("MFJLE_RELEASED_ONLY"):
            raise RuntimeError(
                f"{name} is not among the released runs ({RELEASE_DIR}) and MFJLE_RELEASED_ONLY=1 forbids training it"
            )
        print(f"{name} was not released: training it now at the {cfg.preset} preset (RUNS = 'fast' for a tiny run)")
    result = train(cfg, out, resume=True, data=data, show_progress=show_progress)
    if not keep_resume_state:
        (out / "last.pt").unlink(missing_ok=True)
    return result


#: The stand-in a lesson trains for a network when the released runs carry no weights: the fast preset's
#: geometry, but 1,500 faces for 6 epochs. The fast preset's own 600 faces x 4 epochs scored test micro-F1
#: 0.378 against 0.436 for naming every emotion on every face (the floor: it learned less than a constant);
#: 1,500 x 6 scored 0.535 against 0.454 (AVX-512 EPYC, one thread, 2026-12-07; 0.507 with two threads, as
#: lesson 07's committed output shows it: the thread count changes the rounding).
WEIGHTS_STANDIN: dict[str, Any] = {"num_images": 1500, "epochs": 6}


def run_with_weights(params: CourseParams, data=None, show_progress: bool = False, **overrides: Any) -> TrainResult:
    """A finished run whose `checkpoint.pt` exists, for a lesson that needs the trained network itself.

    Released runs carry no weights (a full MF-JLE checkpoint is 270 MB), so under RUNS = "released"
    this trains a stand-in at the fast preset's geometry (`WEIGHTS_STANDIN`: about 2 minutes on 2 CPU cores)
    and says so.
    """
    if params.runs != "released":
        return train_cached(params, params.config(**overrides), data=data, show_progress=show_progress)
    fast = CourseParams(True, params.dataset, params.root, params.checkpoint, "fast", params.device, [0], "fast")
    print(
        "released runs carry no weights: training a stand-in for its network (fast preset's geometry, "
        f"{WEIGHTS_STANDIN['num_images']:,} faces, {WEIGHTS_STANDIN['epochs']} epochs: about 2 minutes on 2 CPU cores; "
        "RUNS = 'full' uses the full run's weights)"
    )
    return train_cached(fast, fast.config(**{**WEIGHTS_STANDIN, **overrides}), show_progress=show_progress)


def _result(folder: Path, cfg: TrainConfig) -> TrainResult:
    """A finished or released run read back from its folder."""
    return TrainResult(
        folder, json.loads((folder / "metrics.json").read_text()), pd.read_csv(folder / "history.csv"), cfg
    )


def read_env_flag(name: str) -> bool:
    """True for 1/true/yes in the environment."""
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def describe_environment() -> str:
    """Python, torch, device and thread count, for the first output of each lesson."""

    dev = get_device()
    gpu = f" ({torch.cuda.get_device_name(0)})" if dev.type == "cuda" else ""
    return (
        f"python {platform.python_version()}, torch {torch.__version__}, device {dev}{gpu}, "
        f"{torch.get_num_threads()} CPU threads, colab={IS_COLAB}"
    )


def describe_config(params: CourseParams, cfg: TrainConfig | None = None) -> str:
    """Seeds, geometry (R, S_g, S_l, c) and recipe of a lesson, identical on every machine for one preset."""
    cfg = cfg or params.config()
    images = f", {cfg.num_images} faces" if cfg.dataset == "synthetic" and cfg.num_images else ""
    return (
        f"seeds {params.seeds} | geometry R={cfg.source_size}, S_g={cfg.global_size}, S_l={cfg.local_size}, "
        f"c={cfg.crop_fraction:g} | "
        f"{cfg.epochs} epochs, batch {cfg.batch_size}, lr {cfg.lr:g}, StepLR x{cfg.gamma:g}/{cfg.step_size} | preset "
        f"{cfg.preset}{images}"
    )
