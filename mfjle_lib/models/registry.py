"""The model registry: `MODELS` (name -> what it is and the options it takes) and `build_model(name, ...)`.

The models themselves are the method's (`mfjle_lib/method/models.py`); this registry is how the
rest of the library names, builds and asks about them. Adding a model: its `nn.Module` and one
`ModelSpec` line in `MODELS` (docs/CONTRIBUTING.md). Code outside the registry asks the spec
(`has_locals`), never the name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from ..constants import NUM_LABELS
from ..errors import ConfigError
from ..method.fusion import ACTIVATIONS
from ..method.models import MFJLE, ResNet18Baseline, WholeFaceEnsemble
from .weights import load_backbone_weights


@dataclass(frozen=True)
class ModelSpec:
    """One model: its class, the build options it takes, and what the rest of the library may ask of it."""

    name: str
    title: str  # as tables and figures print it
    make: Callable[..., nn.Module]
    options: tuple[str, ...]  # keyword options `make` takes (besides num_labels)
    has_locals: bool  # five local nets on landmark crops: λ, fusion weights, S_l, c and the local-net form apply
    nets: Callable[[nn.Module], list[nn.Module]]  # its ResNet-18s, global first (ImageNet weights go into each)


#: Every model `--model` accepts, in the order tables list them.
MODELS: dict[str, ModelSpec] = {
    "resnet18": ModelSpec(
        "resnet18", "ResNet-18", ResNet18Baseline, ("global_size", "activation"), False, lambda m: [m.global_net]
    ),
    "mfjle": ModelSpec(
        "mfjle",
        "MF-JLE",
        MFJLE,
        ("global_size", "local_size", "crop_fraction", "fusion_weights", "activation"),
        True,
        lambda m: [m.global_net, *m.local_nets.nets],
    ),
    # A control, not a method of the paper: MF-JLE without locality (`method.WholeFaceEnsemble`).
    "wholeface": ModelSpec(
        "wholeface",
        "6 × ResNet-18, whole face",
        WholeFaceEnsemble,
        ("global_size", "local_size", "crop_fraction", "fusion_weights", "activation"),
        True,
        lambda m: [m.global_net, *m.local_nets.nets],
    ),
}
MODEL_NAMES = tuple(MODELS)

# Settings every run carries whether or not its model uses them (a baseline run still records S_l, c, λ).
RUN_SETTINGS = ("global_size", "local_size", "crop_fraction", "fusion_weights", "activation")


def model_spec(name: str) -> ModelSpec:
    """The registry entry of `name`; ConfigError listing the models when there is none."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; choose one of {MODEL_NAMES}")
    return MODELS[name]


def build_model(name: str, num_labels: int = NUM_LABELS, **options) -> nn.Module:
    """Build a registered model (docs/DESIGN.md §4); options: global_size, local_size, crop_fraction, ...

    `pretrained=True` or `weights=FILE` load ImageNet backbone weights into every net; one that
    cannot is a ConfigError. `model.init_source` records what was loaded. A run setting the model
    does not use (S_l for the baseline) is dropped; anything else unknown is an error, so a typo never
    passes silently.
    """
    spec = model_spec(name)
    pretrained = bool(options.pop("pretrained", False))
    weights = options.pop("weights", None)
    activation = options.get("activation", "sigmoid")
    if activation not in ACTIVATIONS:
        raise ConfigError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    extra = set(options) - set(spec.options) - set(RUN_SETTINGS)
    if extra:
        raise ConfigError(f"unknown option(s) for {name}: {sorted(extra)}")
    model = spec.make(num_labels, **{k: v for k, v in options.items() if k in spec.options})
    model.init_source = load_backbone_weights(
        spec.nets(model), pretrained, weights
    )  # 'random' | 'imagenet' | 'file:<path> sha256:<hex>'
    return model


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
