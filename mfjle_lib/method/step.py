"""Paper Section III.B, Algorithm 1: one iteration of MF-JLE's optimisation, and nothing else.

Steps 3-8 on one batch: the six modules forward (the local images are cut inside the model), the
loss of each module (Eq. 2) and the joint loss (Eq. 1), its gradient, one update. Lesson 04a builds
the same step from torch primitives and checks it against this function. The trainer
(`training/trainer.py`) runs this very step, with its precision, loss scaling and several-GPU
weighting wrapped around the model and the optimiser it passes in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .fusion import DEFAULT_LAMBDAS
from .losses import joint_loss
from .models import ModelOutput


def train_step(
    model: Callable[[torch.Tensor, torch.Tensor], ModelOutput],
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    landmarks: torch.Tensor,
    labels: torch.Tensor,
    lambdas: Sequence[float] = DEFAULT_LAMBDAS,
    loss: str = "bce",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """One iteration of Algorithm 1; returns (L, L_global, the five L_local or None), detached."""
    out = model(images, landmarks)  # steps 3-4: crop the local images, feed the modules
    total, global_loss, local_losses = joint_loss(out, labels, lambdas, loss)  # steps 5-6: Eq. 2 per module, Eq. 1
    optimizer.zero_grad(set_to_none=True)
    total.backward()  # step 7: the gradient of L with respect to every parameter
    optimizer.step()  # step 8: update the parameters
    return total.detach(), global_loss.detach(), None if local_losses is None else local_losses.detach()
