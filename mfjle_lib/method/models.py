"""Paper Section III.A-B (Figs. 1 and 3): the ResNet-18 module, the single-ResNet baseline, MF-JLE, and its locality
control.

MF-JLE is one global ResNet-18 on the whole face plus five local ResNet-18s, one per landmark crop
(`crops.py`); every model returns a `ModelOutput` of per-module logits, fused into probabilities
by the one rule of Section III.C (`fusion.py`) when `.probs` is read. The models hold the method
only: a faster form of the five local nets, memory layouts and deploy copies are applied from
outside by `mfjle_lib.perf`, and leave `state_dict()` as defined here (the checkpoint format).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from ..constants import (
    DEFAULT_CROP_FRACTION,
    DEFAULT_GLOBAL_SIZE,
    DEFAULT_LOCAL_SIZE,
    NUM_LABELS,
    NUM_LANDMARKS,
)
from .crops import cut_crops
from .fusion import check_fusion_weights, fuse, module_probs, paper_fusion_weights


def make_resnet18(num_labels: int = NUM_LABELS) -> nn.Module:
    """torchvision's ResNet-18 (Fig. 3) with a `num_labels`-way head, randomly initialised."""
    return torchvision.models.resnet18(weights=None, num_classes=num_labels)


def resize_global(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize the aligned face to the global branch's input side S_g (no-op when already S_g)."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


@dataclass
class ModelOutput:
    """What every model returns: per-module logits, and `.probs`, their fused probabilities, computed when first read.

    Fusing on read, not in `forward`: training and evaluation use only the logits (evaluation fuses
    them once, in float64, in `evaluation/outputs.py`), so a fusion in the model would be thrown away.
    """

    global_logits: torch.Tensor  # (B, L)
    local_logits: torch.Tensor | None  # (B, 5, L); None for the single ResNet-18
    activation: str = "sigmoid"  # how logits become module probabilities (`fusion.activate`)
    fusion_weights: torch.Tensor | Sequence[float] = field(default_factory=paper_fusion_weights)  # w0..w5

    @cached_property
    def probs(self) -> torch.Tensor:
        """(B, L) final probabilities: the module probabilities fused with `fusion_weights` (`fuse`)."""
        return fuse(module_probs(self.global_logits, self.local_logits, self.activation), self.fusion_weights)


class ResNet18Baseline(nn.Module):
    """The single ResNet-18 on the whole face (Tables 1-2 'ResNet-18' row; Fig. 5 'single ResNet')."""

    def __init__(
        self, num_labels: int = NUM_LABELS, global_size: int = DEFAULT_GLOBAL_SIZE, activation: str = "sigmoid"
    ) -> None:
        super().__init__()
        self.global_size = global_size
        self.activation = activation
        self.global_net = make_resnet18(num_labels)

    def forward(self, images: torch.Tensor, landmarks: torch.Tensor | None = None) -> ModelOutput:
        """Classify the face; landmarks are accepted and ignored."""
        logits = self.global_net(resize_global(images, self.global_size))
        return ModelOutput(logits, None, self.activation)  # one module: `.probs` is its own activation


class LoopLocalNets(nn.Module):
    """The five local ResNet-18s, called one after another: crops (B,5,C,S,S) -> logits (B,5,L)."""

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
    ) -> None:
        super().__init__()
        self.global_size = global_size
        self.local_size = local_size
        self.crop_fraction = crop_fraction
        self.activation = activation
        # The global net is built first so that, for one seed, it starts exactly like the baseline.
        self.global_net = make_resnet18(num_labels)
        self.local_nets = LoopLocalNets(num_labels)
        weights = fusion_weights if fusion_weights is not None else paper_fusion_weights()
        self.register_buffer("fusion_weights", check_fusion_weights(weights), persistent=False)

    def set_fusion_weights(self, weights: Sequence[float]) -> None:
        """Change the fusion weights w0..w5 (global, five locals) used for `.probs`."""
        self.fusion_weights = check_fusion_weights(weights).to(self.fusion_weights.device)

    def crops(self, images: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        """The five local inputs (B,5,C,S_l,S_l), cut on the images' device (NaN/inf landmarks give zero crops)."""
        return cut_crops(images, landmarks, self.crop_fraction, self.local_size)

    def forward(self, images: torch.Tensor, landmarks: torch.Tensor) -> ModelOutput:
        """Run all six modules; the output fuses their probabilities with the fusion weights when `.probs` is read."""
        global_logits = self.global_net(resize_global(images, self.global_size))
        local_logits = self.local_nets(self.crops(images, landmarks))
        return ModelOutput(global_logits, local_logits, self.activation, self.fusion_weights)


class WholeFaceEnsemble(MFJLE):
    """A control, not a method of the paper: MF-JLE's six nets and fusion, each 'local' net on the whole face at S_l.

    MF-JLE differs from one ResNet-18 in three ways at once: it is an ensemble of six nets, five of
    them look at one place of the face (locality), and at the cpu preset the crops see that place at
    twice the global's pixel density (S_l / (c·S_g) = 32 / 16; resolution). This model keeps the six
    nets, the joint loss and the fusion and removes locality. Trained with S_l = S_g it is "six
    ResNet-18s on the whole face"; MF-JLE with S_l = c·S_g is the resolution control (lesson 05).
    """

    def crops(self, images: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        """The whole face at S_l, once per local net (B,5,C,S_l,S_l); the landmarks are not used."""
        face = resize_global(images, self.local_size)
        # Contiguous, like `cut_crops`: each local net gets a plain copy whatever the images' layout.
        return face.unsqueeze(1).expand(-1, NUM_LANDMARKS, -1, -1, -1).contiguous()
