"""Models: the ResNet-18 backbone, the baseline, MF-JLE (one global and five local nets) and the one fusion rule."""
from __future__ import annotations

from .backbone import file_sha256, load_backbone_weights, make_resnet18, resize_global
from .baseline import ResNet18Baseline
from .controls import WholeFaceEnsemble
from .build import ACTIVATIONS, MODEL_NAMES, build_model, count_parameters
from .fusion import DEFAULT_LAMBDA, DEFAULT_LAMBDAS, MODULE_NAMES, MODULE_TITLES, ModelOutput, activate, check_fusion_weights, expand_lambdas, fuse, module_probs, paper_fusion_weights
from .mfjle import MFJLE, LoopLocalNets

__all__ = [
    "ACTIVATIONS", "DEFAULT_LAMBDA", "DEFAULT_LAMBDAS", "MFJLE", "expand_lambdas", "paper_fusion_weights", "MODEL_NAMES", "MODULE_NAMES", "MODULE_TITLES", "LoopLocalNets", "ModelOutput",
    "ResNet18Baseline", "WholeFaceEnsemble", "activate", "build_model", "check_fusion_weights", "count_parameters", "file_sha256", "fuse",
    "load_backbone_weights", "make_resnet18", "module_probs", "resize_global",
]
