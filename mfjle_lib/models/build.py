"""`build_model(name, ...)`: the one entry point to the two models (resnet18, mfjle)."""
from __future__ import annotations

from torch import nn

from ..constants import NUM_LABELS
from ..errors import ConfigError
from .backbone import load_backbone_weights
from .baseline import ResNet18Baseline
from .mfjle import MFJLE

MODEL_NAMES = ("resnet18", "mfjle")


ACTIVATIONS = ("sigmoid", "softmax")


def build_model(name: str, num_labels: int = NUM_LABELS, **options) -> nn.Module:
    """Build 'resnet18' or 'mfjle' (docs/DESIGN.md §4); options: global_size, local_size, crop_fraction, ...

    `pretrained=True` or `weights=FILE` load ImageNet backbone weights into every module; one that
    cannot is a ConfigError. `model.init_source` records what was loaded.
    Unknown options are an error, so a typo never passes silently.
    """
    pretrained = bool(options.pop("pretrained", False))
    weights = options.pop("weights", None)
    activation = options.get("activation", "sigmoid")
    if activation not in ACTIVATIONS:
        raise ConfigError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    if name == "resnet18":
        allowed = {"global_size", "activation"}
        ignored = {"local_size", "crop_fraction", "fusion_weights"}
        extra = set(options) - allowed - ignored
        if extra:
            raise ConfigError(f"unknown option(s) for resnet18: {sorted(extra)}")
        model: nn.Module = ResNet18Baseline(num_labels, **{k: v for k, v in options.items() if k in allowed})
        nets = [model.global_net]
    elif name == "mfjle":
        allowed = {"global_size", "local_size", "crop_fraction", "fusion_weights", "activation"}
        extra = set(options) - allowed
        if extra:
            raise ConfigError(f"unknown option(s) for mfjle: {sorted(extra)}")
        model = MFJLE(num_labels, **options)
        nets = [model.global_net, *model.local_nets.nets]
    else:
        raise ConfigError(f"unknown model {name!r}; choose one of {MODEL_NAMES}")
    model.init_source = load_backbone_weights(nets, pretrained, weights)  # 'random' | 'imagenet' | 'file:<path> sha256:<hex>'
    return model


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
