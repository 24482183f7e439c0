"""The ResNet-18 baseline and the MF-JLE ensemble (paper Section III, Fig. 1 and Fig. 3).

Both take `forward(images, landmarks)` with a normalised float batch (B,3,R,R) and landmarks
(B,5,2) in pixels of that batch, and return a `ModelOutput` whose `.probs` are the final
probabilities (DESIGN §4). MF-JLE fuses module probabilities with weights (1, λ1..λ5),
normalised (DESIGN §2 "Fusion"; the paper's Section III.C sums them with the Eq. 1 weights).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from .constants import (
    DEFAULT_CROP_FRACTION,
    DEFAULT_GLOBAL_SIZE,
    DEFAULT_LOCAL_SIZE,
    NUM_LABELS,
    NUM_LANDMARKS,
)
from .crops import cut_crops
from .errors import ConfigError

MODEL_NAMES = ("resnet18", "mfjle")
ACTIVATIONS = ("sigmoid", "softmax")
DEFAULT_LAMBDA = 0.01


@dataclass
class ModelOutput:
    """What every model returns: per-module logits and the fused probabilities."""

    global_logits: torch.Tensor  # (B, L)
    local_logits: torch.Tensor | None  # (B, 5, L); None for the single ResNet-18
    probs: torch.Tensor  # (B, L) final probabilities


def activate(logits: torch.Tensor, activation: str) -> torch.Tensor:
    """Sigmoid per label (BCE, the paper's choice) or softmax over labels (the Fig. 5 ablation)."""
    return torch.sigmoid(logits) if activation == "sigmoid" else torch.softmax(logits, dim=-1)


RESNET_STAGES = ("layer1", "layer2", "layer3", "layer4")
#: On the CPU, a ResNet stage whose feature maps are at most this many pixels on a side runs in NCHW
#: (the rest in channels_last). Measured forward+backward at batch 32 on the 2-core EPYC (oneDNN):
#: five 64-px local nets 1012 ms all channels_last vs 899 ms with layer3-4 (4x4, 2x2 maps) in NCHW;
#: five 32-px nets 544 vs 490-505 ms; the 224-px global net is fastest all channels_last (1847 ms;
#: 1882 ms with its 7x7 layer4 in NCHW). On tiny maps channels_last gains nothing and costs a copy
#: of every weight in each backward. `benchmarks/bench_memory_format.py` reruns the comparison.
NCHW_MAX_SIDE_CPU = 4


def is_channels_last(t: torch.Tensor) -> bool:
    """True for a 4-D tensor laid out channels_last (and not also plain contiguous)."""
    return t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()


def _input_follows_weights(stage: nn.Module, args: tuple) -> tuple:
    """Forward pre-hook of a ResNet stage: give it its input in its weights' memory format.

    A convolution whose input and weight disagree converts one of them on every call; this keeps
    a stage that `plan_memory_format` put in NCHW (or channels_last) free of those copies.
    """
    if not isinstance(args[0], torch.Tensor):  # torch.fx tracing (int8 quantisation): layout is moot
        return None
    fmt = torch.channels_last if is_channels_last(stage[0].conv1.weight) else torch.contiguous_format
    return (args[0].contiguous(memory_format=fmt),) + tuple(args[1:])


def make_resnet18(num_labels: int = NUM_LABELS) -> nn.Module:
    """torchvision's ResNet-18 (Fig. 3) with a `num_labels`-way head, randomly initialised."""
    net = torchvision.models.resnet18(weights=None, num_classes=num_labels)
    for name in RESNET_STAGES:
        getattr(net, name).register_forward_pre_hook(_input_follows_weights)
    return net


def stage_sides(input_side: int) -> tuple[int, ...]:
    """Feature-map side after each of layer1..layer4 for a square input (stem /4, then /2 per stage)."""
    side, sides = input_side, []
    for halvings in (2, 0, 1, 1, 1):  # conv1 + max-pool, layer1, layer2, layer3, layer4
        for _ in range(halvings):
            side = (side + 1) // 2
        sides.append(side)
    return tuple(sides[1:])


def cpu_stage_formats(input_side: int) -> tuple[torch.memory_format, ...]:
    """Layouts of layer1..layer4 on the CPU for a square input: NCHW for maps <= NCHW_MAX_SIDE_CPU."""
    return tuple(torch.contiguous_format if side <= NCHW_MAX_SIDE_CPU else torch.channels_last for side in stage_sides(input_side))


def set_stage_formats(net: nn.Module, formats: Sequence[torch.memory_format]) -> nn.Module:
    """Put the weights of a ResNet's layer1..layer4 in `formats`, in place (the hooks follow)."""
    for name, fmt in zip(RESNET_STAGES, formats):
        getattr(net, name).to(memory_format=fmt)
    return net


def plan_memory_format(model: nn.Module, device: torch.device | str | None = None) -> nn.Module:
    """Put `model` in its fastest memory layout for `device`, in place; returns it.

    channels_last everywhere (the fast layout for convolutions on GPUs and for big maps on CPUs);
    on the CPU, each ResNet's stages follow `cpu_stage_formats` of its input side (measured, above).
    Only the layout changes: the weights' values and the model's outputs (up to rounding) do not.
    """
    model = model.to(memory_format=torch.channels_last)
    first = next(model.parameters(), None)
    dev = torch.device(device) if device is not None else (first.device if first is not None else torch.device("cpu"))
    if dev.type != "cpu":
        return model
    nets: list[tuple[nn.Module, int]] = []
    if hasattr(model, "global_net"):
        nets.append((model.global_net, model.global_size))
    local_nets = getattr(model, "local_nets", None)
    if local_nets is not None and hasattr(local_nets, "nets"):  # the loop implementation
        nets.extend((net, model.local_size) for net in local_nets.nets)
    for net, side in nets:
        set_stage_formats(net, cpu_stage_formats(side))
    return model


def load_backbone_weights(nets: Sequence[nn.Module], pretrained: bool = False, weights: str | Path | None = None) -> str:
    """Load ImageNet weights (all but the head) into each net; on failure warn once, keep random init.

    Returns a short description of what was loaded ('random', 'imagenet', or the file).
    """
    if not pretrained and weights is None:
        return "random"
    try:
        if weights is not None:
            state = torch.load(Path(weights), map_location="cpu", weights_only=True)
            if isinstance(state, dict) and "state_dict" in state:
                state = state["state_dict"]
            origin = str(weights)
        else:
            state = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.get_state_dict(progress=False)
            origin = "imagenet"
        if not isinstance(state, dict):
            raise ValueError("file does not hold a state dict")
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        for net in nets:
            missing, unexpected = net.load_state_dict(state, strict=False)
            if unexpected or any(not k.startswith("fc.") for k in missing):
                raise ValueError(f"not ResNet-18 weights (unexpected keys: {list(unexpected)[:3]})")
        return origin
    except Exception as exc:  # no internet, bad file: one line, never a traceback (DESIGN §2)
        what = weights if weights is not None else "ImageNet weights"
        print(f"warning: could not load {what} ({type(exc).__name__}: {str(exc)[:120]}); using random init", file=sys.stderr)
        return "random"


def resize_global(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize the aligned face to the global branch's input side S_g (no-op when already S_g)."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


class ResNet18Baseline(nn.Module):
    """The single ResNet-18 on the whole face (Tables 1–2 'ResNet-18' row; Fig. 5 'single ResNet')."""

    def __init__(self, num_labels: int = NUM_LABELS, global_size: int = DEFAULT_GLOBAL_SIZE, activation: str = "sigmoid") -> None:
        super().__init__()
        self.global_size = global_size
        self.activation = activation
        self.global_net = make_resnet18(num_labels)

    def forward(self, images: torch.Tensor, landmarks: torch.Tensor | None = None) -> ModelOutput:
        """Classify the face; landmarks are accepted and ignored."""
        logits = self.global_net(resize_global(images, self.global_size))
        return ModelOutput(global_logits=logits, local_logits=None, probs=activate(logits, self.activation))


class LoopLocalNets(nn.Module):
    """The five local ResNet-18s called one after another (the 'naive' implementation)."""

    def __init__(self, num_labels: int = NUM_LABELS, num_nets: int = NUM_LANDMARKS) -> None:
        super().__init__()
        self.nets = nn.ModuleList(make_resnet18(num_labels) for _ in range(num_nets))

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        """Crops (B,5,C,S,S) -> logits (B,5,L)."""
        return torch.stack([net(crops[:, i]) for i, net in enumerate(self.nets)], dim=1)


class MFJLE(nn.Module):
    """One global ResNet-18 plus five local ResNet-18s on landmark crops, fused (Fig. 1)."""

    def __init__(
        self,
        num_labels: int = NUM_LABELS,
        global_size: int = DEFAULT_GLOBAL_SIZE,
        local_size: int = DEFAULT_LOCAL_SIZE,
        crop_fraction: float = DEFAULT_CROP_FRACTION,
        fusion_weights: Sequence[float] | None = None,
        activation: str = "sigmoid",
        local_impl: str = "auto",
    ) -> None:
        super().__init__()
        self.global_size = global_size
        self.local_size = local_size
        self.crop_fraction = crop_fraction
        self.activation = activation
        # The global net is built first so that, for one seed, it starts exactly like the baseline.
        self.global_net = make_resnet18(num_labels)
        self.local_nets = LoopLocalNets(num_labels)
        self.local_impl = "loop"
        weights = fusion_weights if fusion_weights is not None else (1.0,) + (DEFAULT_LAMBDA,) * NUM_LANDMARKS
        self.register_buffer("fusion_weights", check_fusion_weights(weights), persistent=False)
        if local_impl != "loop":
            self.set_local_impl(local_impl)

    def set_local_impl(self, impl: str) -> None:
        """Switch the five local nets between 'loop' and 'fused' (same weights, same outputs)."""
        from .fused_locals import convert_local_nets, pick_local_impl

        if impl == "auto":
            impl = pick_local_impl(next(self.parameters()).device)
        if impl != self.local_impl:
            self.local_nets = convert_local_nets(self.local_nets, impl)
            self.local_impl = impl

    def set_fusion_weights(self, weights: Sequence[float]) -> None:
        """Change the fusion weights w0..w5 (global, five locals) used for `.probs`."""
        self.fusion_weights = check_fusion_weights(weights).to(self.fusion_weights.device)

    def crops(self, images: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        """The five local inputs (B,5,C,S_l,S_l), cut on the images' device."""
        # roi_align reads out of bounds (segfaults) on NaN/inf boxes: send such points far outside,
        # where crops are zeros, without a host sync.
        side = float(images.shape[-1])
        safe = torch.nan_to_num(landmarks.to(images.dtype), nan=-10 * side, posinf=10 * side, neginf=-10 * side).clamp(-10 * side, 10 * side)
        return cut_crops(images, safe, self.crop_fraction, self.local_size)

    def forward(self, images: torch.Tensor, landmarks: torch.Tensor) -> ModelOutput:
        """Run all six modules and fuse their probabilities with the fusion weights."""
        global_logits = self.global_net(resize_global(images, self.global_size))
        crops = self.crops(images, landmarks)
        if images.is_contiguous(memory_format=torch.channels_last):
            crops = crops.contiguous()
        local_logits = self.local_nets(crops)
        probs = fuse_probs(global_logits, local_logits, self.fusion_weights, self.activation)
        return ModelOutput(global_logits=global_logits, local_logits=local_logits, probs=probs)


def check_fusion_weights(weights: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """Validate six non-negative fusion weights with a positive sum."""
    w = torch.as_tensor(list(weights) if not isinstance(weights, torch.Tensor) else weights, dtype=torch.float32).flatten()
    if w.numel() != 1 + NUM_LANDMARKS:
        raise ConfigError(f"fusion weights need {1 + NUM_LANDMARKS} values (global, then five locals), got {w.numel()}")
    if not torch.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ConfigError(f"fusion weights must be finite, non-negative and not all zero, got {w.tolist()}")
    return w


def fuse_probs(global_logits: torch.Tensor, local_logits: torch.Tensor, weights: torch.Tensor, activation: str = "sigmoid") -> torch.Tensor:
    """Fused = Σ_m w_m act(z_m) / Σ_m w_m over the six modules (DESIGN §2; no second sigmoid)."""
    module_probs = torch.cat([activate(global_logits, activation).unsqueeze(1), activate(local_logits, activation)], dim=1)
    w = weights.to(module_probs.dtype)
    return torch.einsum("bml,m->bl", module_probs, w) / w.sum()


def build_model(name: str, num_labels: int = NUM_LABELS, **options) -> nn.Module:
    """Build 'resnet18' or 'mfjle' (DESIGN §4); options: global_size, local_size, crop_fraction, ...

    `pretrained=True` or `weights=FILE` load ImageNet backbone weights into every module.
    Unknown options are an error, so a typo never passes silently.
    """
    pretrained = bool(options.pop("pretrained", False))
    weights = options.pop("weights", None)
    activation = options.get("activation", "sigmoid")
    if activation not in ACTIVATIONS:
        raise ConfigError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    if name == "resnet18":
        allowed = {"global_size", "activation"}
        ignored = {"local_size", "crop_fraction", "fusion_weights", "local_impl"}
        extra = set(options) - allowed - ignored
        if extra:
            raise ConfigError(f"unknown option(s) for resnet18: {sorted(extra)}")
        model: nn.Module = ResNet18Baseline(num_labels, **{k: v for k, v in options.items() if k in allowed})
        nets = [model.global_net]
    elif name == "mfjle":
        allowed = {"global_size", "local_size", "crop_fraction", "fusion_weights", "activation", "local_impl"}
        extra = set(options) - allowed
        if extra:
            raise ConfigError(f"unknown option(s) for mfjle: {sorted(extra)}")
        local_impl = options.pop("local_impl", "auto")
        model = MFJLE(num_labels, local_impl="loop", **options)
        nets = [model.global_net, *model.local_nets.nets]
        load_backbone_weights(nets, pretrained, weights)
        if local_impl != "loop":
            model.set_local_impl(local_impl)
        return model
    else:
        raise ConfigError(f"unknown model {name!r}; choose one of {MODEL_NAMES}")
    load_backbone_weights(nets, pretrained, weights)
    return model


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
