"""Training: config and presets, batches, losses, augmentation, the loop, checkpoints and resume, inference and predict."""
from __future__ import annotations

from . import study
from .augment import AugmentConfig, augment_batch
from .batches import Batch, DataBundle, get_batch, imagenet_normalise, load_data, model_input, on_device, to_unit_float
from .checkpoints import CHECKPOINT_FORMAT, RESUME_FORMAT, load_checkpoint, save_checkpoint
from .config import PRESETS, TrainConfig, make_config, validate_config
from .distributed import DistContext, launch
from .inference import collect_outputs, evaluate_checkpoint, inference_model, load_trained_model, model_logits, run_split
from .init_from import InitPlan, apply_init, plan_init
from .loop import EpochStats, Validation, train_one_epoch, train_step, validate
from .losses import LOSS_NAMES, bce_loss, joint_loss, module_loss, softmax_ce_loss
from .precision import PRECISIONS, autocast_for, choose_precision
from .predict import Prediction, predict_files, predict_images, prepare_photos
from .reproduce import reproduce
from .resume import Selection, run_differences, same_run
from .run import TrainResult, train
from .run_dir import claim_out_dir
from .setup import TrainingParts, build_training, make_adam, model_from_config, resolve_settings
from .val_fusion import evaluate_val_fusion, run_val_fusion

__all__ = [
    "CHECKPOINT_FORMAT", "LOSS_NAMES", "PRECISIONS", "PRESETS", "RESUME_FORMAT", "AugmentConfig", "Batch", "DataBundle", "DistContext", "EpochStats",
    "InitPlan", "Prediction", "Selection", "TrainConfig", "TrainResult", "TrainingParts", "Validation", "apply_init", "augment_batch",
    "autocast_for", "bce_loss", "build_training", "choose_precision", "claim_out_dir", "collect_outputs", "evaluate_checkpoint",
    "evaluate_val_fusion", "get_batch", "imagenet_normalise", "inference_model", "joint_loss", "launch", "load_checkpoint", "load_data", "load_trained_model",
    "make_adam", "make_config", "model_from_config", "model_input", "model_logits", "module_loss", "on_device", "plan_init",
    "predict_files", "predict_images", "prepare_photos", "reproduce", "resolve_settings", "run_differences", "run_split", "run_val_fusion",
    "same_run", "save_checkpoint", "softmax_ce_loss", "study", "to_unit_float", "train", "train_one_epoch", "train_step", "validate",
    "validate_config",
]
