"""A run's settings: `TrainConfig`, its presets (the paper's recipe is the default, Section IV.B), the model it
describes, what its metrics file records."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import torch

from .. import __version__
from ..constants import DEFAULT_CROP_FRACTION, DEFAULT_GLOBAL_SIZE, DEFAULT_LOCAL_SIZE, DEFAULT_SOURCE_SIZE
from ..errors import ConfigError
from ..method.fusion import DEFAULT_LAMBDAS, check_fusion_weights, expand_lambdas, paper_fusion_weights
from ..models.registry import MODEL_NAMES, build_model

#: Names of the precisions a run can record ('auto' is resolved once per run, like `local_impl`).
PRECISIONS = ("auto", "float32", "bfloat16", "float16")

#: What `--init-from` does with the source's classifier heads (`fc`): copy them, or start them afresh.
INIT_HEADS = ("carry", "fresh")

#: Keys written by earlier versions of this library, and their names now.
LEGACY_KEYS = {"image_size": "global_size"}


@dataclass
class TrainConfig:
    """Everything that defines a run; stored in every checkpoint and metrics file."""

    dataset: str = "synthetic"
    root: str | None = None
    model: str = "mfjle"
    # Paper recipe (Section IV.B): Adam 1e-4, betas (0.9, 0.999), StepLR x0.9 every 50 epochs,
    # 218 epochs, batch 128. (218 epochs ≈ 8k iterations only with all 4,908 RAF-ML images.)
    epochs: int = 218
    batch_size: int = 128
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    step_size: int = 50
    gamma: float = 0.9
    # Geometry (docs/DESIGN.md §2): R, S_g, c, S_l.
    source_size: int = DEFAULT_SOURCE_SIZE
    global_size: int = DEFAULT_GLOBAL_SIZE
    local_size: int = DEFAULT_LOCAL_SIZE
    crop_fraction: float = DEFAULT_CROP_FRACTION
    # Eq. 1 weights and the (separate) fusion weights; None -> (1, λ1..λ5).
    lambdas: tuple[float, ...] = DEFAULT_LAMBDAS
    fusion_weights: tuple[float, ...] | None = None
    loss: str = "bce"
    split_scheme: str = "paper"
    split_seed: int = 0
    seed: int = 0
    augment: bool = False
    pretrained: bool = False
    weights: str | None = None
    # Start from another run of this project (fine-tuning: fresh optimiser and schedule), docs/DESIGN.md §2.
    init_from: str | None = None
    init_locals_from_global: bool = False  # --init-from a resnet18 run: copy its net into each local net too
    init_head: str = (
        "carry"  # --init-from: 'carry' copies the source's classifier heads too, 'fresh' re-initialises them
    )
    init: str | None = (
        None  # recorded by `train`: the initialisation actually used (random, imagenet, file:..., run:...)
    )
    synthetic_seed: int = 0  # synthetic only: render seed (0 = the built-in evaluation faces; `pretrain` uses another)
    num_images: int | None = None  # synthetic only: how many faces to render
    skip_bad: bool = False
    device: str = "auto"
    local_impl: str = "auto"  # 'auto' is resolved once per run and the chosen form recorded
    amp: bool = True  # mixed precision on CUDA only
    precision: str = "auto"  # float32 | bfloat16 | float16; 'auto' -> by the training device, then recorded
    deterministic: bool | None = None  # None -> on for CPU, off on CUDA; resolved once and recorded
    compile: bool = False
    select_metric: str = "micro_f1"  # validation metric for model selection; ties -> lower val loss
    preset: str = "paper"
    extra: dict = field(default_factory=dict)

    def effective_fusion_weights(self) -> tuple[float, ...]:
        """Fusion weights w0..w5: the explicit ones, else (1, λ1..λ5) as in the paper (Section III.C)."""
        return tuple(self.fusion_weights) if self.fusion_weights is not None else paper_fusion_weights(self.lambdas)

    def to_dict(self) -> dict[str, Any]:
        """Plain-type dict (lists, not tuples), safe for JSON and `weights_only` checkpoints."""
        out = asdict(self)
        for k, v in out.items():
            if isinstance(v, tuple):
                out[k] = list(v)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of `to_dict`, ignoring unknown keys from newer files."""
        names = {f.name for f in fields(cls)}
        data = {LEGACY_KEYS.get(k, k): v for k, v in data.items()}
        kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in names}
        return cls(**kwargs)

    @property
    def activation(self) -> str:
        """How logits become probabilities: softmax for the Fig. 5 softmax-CE ablation, else sigmoid."""
        return "softmax" if self.loss == "softmax_ce" else "sigmoid"

    def settings_diff(self, saved: dict[str, Any], ignore: tuple[str, ...] = ("device",)) -> list[str]:
        """Names of the settings in which a saved config (a checkpoint's) differs from this one.

        `init` is a record of what `train` loaded, not a setting: it never makes two runs differ.
        """
        skip = {*ignore, "init"}
        now = {k: v for k, v in self.to_dict().items() if k not in skip}
        old = {LEGACY_KEYS.get(k, k): v for k, v in saved.items() if k not in skip}
        return sorted(k for k in now if old.get(k, _DEFAULTS.get(k)) != now[k])

    def geometry(self) -> dict[str, Any]:
        """The four numbers every speed/accuracy figure depends on."""
        return {
            "source_size": self.source_size,
            "global_size": self.global_size,
            "local_size": self.local_size,
            "crop_fraction": self.crop_fraction,
        }


_DEFAULTS = TrainConfig().to_dict()  # a setting missing from an older checkpoint had its default


#: Presets: `paper` is the recipe; the others shrink sizes for CPUs and for FAST notebooks.
#: `cpu` is the `make demo` size on 2 CPU cores; `gpu` the demo on a CUDA machine.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "gpu": {
        "epochs": 40,
        "batch_size": 128,
        "lr": 1e-3,
        "step_size": 10,
        "source_size": 128,
        "global_size": 128,
        "local_size": 48,
        "num_images": 5000,
    },
    "cpu": {
        "epochs": 8,
        "batch_size": 64,
        "lr": 1e-3,
        "step_size": 5,
        "source_size": 128,
        "global_size": 64,
        "local_size": 32,
        "num_images": 3000,
    },
    "fast": {
        "epochs": 4,
        "batch_size": 32,
        "lr": 1e-3,
        "step_size": 2,
        "source_size": 64,
        "global_size": 48,
        "local_size": 24,
        "num_images": 600,
    },
}


def make_config(preset: str = "paper", **overrides: Any) -> TrainConfig:
    """A TrainConfig from a preset plus explicit overrides (None values are ignored)."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    cfg = replace(TrainConfig(), preset=preset, **PRESETS[preset])
    clean = {k: v for k, v in overrides.items() if v is not None}
    names = {f.name for f in fields(TrainConfig)}
    unknown = set(clean) - names
    if unknown:
        raise ConfigError(f"unknown training option(s): {sorted(unknown)}")
    cfg = replace(cfg, **clean)
    validate_config(cfg)
    return cfg


def validate_config(cfg: TrainConfig) -> None:
    """Reject settings that cannot work, with one clear line."""
    if cfg.model not in MODEL_NAMES:
        raise ConfigError(f"--model must be one of {MODEL_NAMES}, got {cfg.model!r}")
    if cfg.loss not in ("bce", "softmax_ce"):
        raise ConfigError(f"--loss must be bce or softmax_ce, got {cfg.loss!r}")
    if cfg.split_scheme not in ("paper", "official", "subject"):
        raise ConfigError(f"--split-scheme must be paper, official or subject, got {cfg.split_scheme!r}")
    for name in ("epochs", "batch_size", "source_size", "global_size", "local_size"):
        if int(getattr(cfg, name)) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be a positive integer")
    if cfg.precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {PRECISIONS}, got {cfg.precision!r}")
    if cfg.init_head not in INIT_HEADS:
        raise ConfigError(f"--init-head must be one of {INIT_HEADS}, got {cfg.init_head!r}")
    if not 0 < cfg.crop_fraction <= 1:
        raise ConfigError("--crop-fraction must be in (0, 1]")
    cfg.lambdas = expand_lambdas(cfg.lambdas)
    check_fusion_weights(cfg.effective_fusion_weights())


def model_from_config(cfg: TrainConfig, device: torch.device | None = None) -> torch.nn.Module:
    """The plain model a config describes (the registry's, starting weights as asked), on `device`.

    Same seed -> same global init for both models. Speed (`perf.optimize`) is applied by whoever
    runs it: the trainer and the evaluation of a finished run.
    """
    model = build_model(
        cfg.model,
        global_size=cfg.global_size,
        local_size=cfg.local_size,
        crop_fraction=cfg.crop_fraction,
        fusion_weights=cfg.effective_fusion_weights(),
        activation=cfg.activation,
        pretrained=cfg.pretrained,
        weights=cfg.weights,
    )
    return model.to(device) if device is not None else model


def settings_record(cfg: TrainConfig, split: str, selected_epoch: int | None = None) -> dict[str, Any]:
    """What a metrics file records about the run beside its numbers: data, model, split, seeds, geometry."""
    return {
        "split": split,
        "dataset": cfg.dataset,
        "model": cfg.model,
        "loss": cfg.loss,
        "lambdas": list(cfg.lambdas),
        "seed": cfg.seed,
        "split_scheme": cfg.split_scheme,
        "split_seed": cfg.split_seed,
        "selected_epoch": selected_epoch,
        "epochs": cfg.epochs,
        "preset": cfg.preset,
        "local_impl": cfg.local_impl,
        "precision": cfg.precision,
        "deterministic": cfg.deterministic,
        "init": cfg.init,
        "library_version": __version__,
        **cfg.geometry(),
    }
