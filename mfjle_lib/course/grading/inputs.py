"""The fixed inputs of the checks: a small MF-JLE (MF-JLE's own class, a small CNN per module) and a batch of faces."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn

from ... import method
from ...constants import NUM_LABELS, NUM_LANDMARKS

# --------------------------------------------------------------------------- the small MF-JLE of the checks


class SmallCNN(nn.Module):
    """Stands in for a ResNet-18 in the checks: conv, BatchNorm, ReLU, global pooling, a linear head."""

    def __init__(self, num_labels: int = NUM_LABELS, width: int = 4) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU())
        self.head = nn.Linear(width, num_labels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> logits (B, L)."""
        return self.head(self.features(x).mean(dim=(2, 3)))


def small_mfjle(seed: int = 0, global_size: int = 16, local_size: int = 8) -> method.MFJLE:
    """MF-JLE's own class (crops, wiring, fusion) with a `SmallCNN` per module, in float64, seeded."""
    torch.manual_seed(seed)
    net = method.MFJLE(global_size=global_size, local_size=local_size, crop_fraction=0.25)
    net.global_net = SmallCNN()
    net.local_nets.nets = nn.ModuleList(SmallCNN() for _ in range(NUM_LANDMARKS))
    return net.double()


def fixed_batch(seed: int, batch: int, size: int = 32) -> SimpleNamespace:
    """A fixed batch: float64 images (B,3,R,R), landmarks (B,5,2) around the template, 0/1 labels (B,L)."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(batch, 3, size, size, generator=g, dtype=torch.float64)
    template = torch.tensor([[0.35, 0.4], [0.65, 0.4], [0.5, 0.55], [0.38, 0.72], [0.62, 0.72]], dtype=torch.float64)
    landmarks = size * template + 2 * torch.randn(batch, NUM_LANDMARKS, 2, generator=g, dtype=torch.float64)
    labels = (torch.rand(batch, NUM_LABELS, generator=g, dtype=torch.float64) < 0.3).to(torch.float64)
    return SimpleNamespace(images=images, landmarks=landmarks, labels=labels)
