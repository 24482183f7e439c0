"""MF-JLE: one global ResNet-18 plus five local ResNet-18s on landmark crops (paper Fig. 1)."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..constants import DEFAULT_CROP_FRACTION, DEFAULT_GLOBAL_SIZE, DEFAULT_LOCAL_SIZE, NUM_LABELS, NUM_LANDMARKS
from ..faces.crops import cut_crops
from .backbone import make_resnet18, resize_global
from .fusion import ModelOutput, check_fusion_weights, paper_fusion_weights


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
    ) -> None:
        super().__init__()
        self.global_size = global_size
        self.local_size = local_size
        self.crop_fraction = crop_fraction
        self.activation = activation
        # The global net is built first so that, for one seed, it starts exactly like the baseline.
        self.global_net = make_resnet18(num_labels)
        self.local_nets = LoopLocalNets(num_labels)
        self.local_impl = "loop"  # `perf.set_local_impl` may swap in the fused form (same weights)
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
        crops = self.crops(images, landmarks)
        if images.is_contiguous(memory_format=torch.channels_last):
            crops = crops.contiguous()
        local_logits = self.local_nets(crops)
        return ModelOutput(global_logits, local_logits, self.activation, self.fusion_weights)
