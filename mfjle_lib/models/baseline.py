"""The single ResNet-18 on the whole face (Tables 1-2 'ResNet-18' row)."""
from __future__ import annotations

import torch
from torch import nn

from ..constants import DEFAULT_GLOBAL_SIZE, NUM_LABELS
from .backbone import make_resnet18, resize_global
from .fusion import ModelOutput


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
        return ModelOutput(logits, None, self.activation)  # one module: `.probs` is its own activation
