"""Training: one run from its config to its files (`train`), the batch path, the run's files, starting from another
run, several GPUs.

`trainer.py` reads top to bottom; Algorithm 1's step itself is the method's (`mfjle_lib.method.train_step`).
"""

from __future__ import annotations

from .augment import AugmentConfig, augment_batch
from .batches import (
    Batch,
    DataBundle,
    collect_outputs,
    get_batch,
    load_data,
    model_input,
    model_logits,
    on_device,
    run_split,
)
from .config import PRECISIONS, PRESETS, TrainConfig, make_config, model_from_config, settings_record, validate_config
from .distributed import DistContext, launch
from .inference_path import inference_model
from .init_from import InitPlan, apply_init, plan_init
from .run_files import (
    CHECKPOINT_FORMAT,
    RESUME_FORMAT,
    Selection,
    claim_out_dir,
    load_checkpoint,
    run_differences,
    same_run,
    save_checkpoint,
)
from .setup import TrainingParts, autocast_for, build_training, choose_precision, make_adam, resolve_settings
from .trainer import (
    EpochStats,
    TrainResult,
    Validation,
    train,
    train_one_epoch,
    train_step,
    validate,
)

__all__ = [
    "CHECKPOINT_FORMAT",
    "PRECISIONS",
    "PRESETS",
    "RESUME_FORMAT",
    "AugmentConfig",
    "Batch",
    "DataBundle",
    "DistContext",
    "EpochStats",
    "InitPlan",
    "Selection",
    "TrainConfig",
    "TrainResult",
    "TrainingParts",
    "Validation",
    "apply_init",
    "augment_batch",
    "autocast_for",
    "build_training",
    "choose_precision",
    "claim_out_dir",
    "collect_outputs",
    "get_batch",
    "inference_model",
    "launch",
    "load_checkpoint",
    "load_data",
    "make_adam",
    "make_config",
    "model_from_config",
    "model_input",
    "model_logits",
    "on_device",
    "plan_init",
    "resolve_settings",
    "run_differences",
    "run_split",
    "same_run",
    "save_checkpoint",
    "settings_record",
    "train",
    "train_one_epoch",
    "train_step",
    "validate",
    "validate_config",
]
