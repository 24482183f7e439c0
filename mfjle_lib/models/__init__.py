"""Models by name: the registry (`build_model`, `model_spec`, `MODELS`) and where their ResNet-18s start (random,
ImageNet, a file).

The models are the method's (`mfjle_lib.method`). `mfjle_lib.models.build_model` is a fixed import
path (docs/DESIGN.md §4).
"""

from __future__ import annotations

from .registry import MODEL_NAMES, MODELS, RUN_SETTINGS, ModelSpec, build_model, count_parameters, model_spec
from .weights import file_sha256, load_backbone_weights

__all__ = [
    "MODELS",
    "MODEL_NAMES",
    "RUN_SETTINGS",
    "ModelSpec",
    "build_model",
    "count_parameters",
    "file_sha256",
    "load_backbone_weights",
    "model_spec",
]
