"""Controls for attributing MF-JLE's gain: six ResNet-18s that all see the whole face (no locality).

MF-JLE differs from one ResNet-18 in three ways at once: it is an ensemble of six nets, five of
them look at one place of the face (locality), and at the cpu preset the crops see that place at
twice the global's pixel density (S_l / (c·S_g) = 32 / 16; resolution). `WholeFaceEnsemble` keeps
the six nets, the joint loss and the fusion and removes locality: every "local" net is fed the whole
face resized to S_l. Trained with S_l = S_g it is "six ResNet-18s on the whole face"; MF-JLE with
S_l = c·S_g is the resolution control (docs/DESIGN.md, the controls).
"""
from __future__ import annotations

import torch

from ..constants import NUM_LANDMARKS
from .backbone import resize_global
from .mfjle import MFJLE


class WholeFaceEnsemble(MFJLE):
    """MF-JLE's six ResNet-18s and fusion, each of the five 'local' nets on the whole face at S_l."""

    def crops(self, images: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        """The whole face at S_l, once per local net (B,5,C,S_l,S_l); the landmarks are not used."""
        face = resize_global(images, self.local_size)
        return face.unsqueeze(1).expand(-1, NUM_LANDMARKS, -1, -1, -1)
