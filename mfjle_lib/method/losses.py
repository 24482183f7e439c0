"""Paper Section III.B, Eqs. 1-2: the loss of each module (binary cross-entropy, as intended) and the joint loss.

Eq. 2 as printed, −1/N Σ (y log p + (1 − log p) log(1 − y)), is a typo: it takes log(1 − y) of
a 0/1 label. We use the binary cross-entropy it intends, on sigmoid outputs, computed from
logits (`BCEWithLogitsLoss`) for numerical stability. The Fig. 5 ablation "multi-label
cross-entropy" is a softmax over the six logits against the label vector normalised to sum 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from .models import ModelOutput

LOSS_NAMES = ("bce", "softmax_ce")


def bce_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on sigmoid outputs, mean over labels and samples (Eq. 2, corrected)."""
    return F.binary_cross_entropy_with_logits(logits, targets)


def softmax_ce_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy against the normalised label vector; label-free samples are masked out."""
    counts = targets.sum(dim=1)
    keep = counts > 0
    if not bool(keep.any()):
        return logits.sum() * 0.0  # keeps the graph (and gradient shapes) without dividing by zero
    dist = targets[keep] / counts[keep].unsqueeze(1)
    return -(dist * F.log_softmax(logits[keep], dim=1)).sum(dim=1).mean()


def module_loss(logits: torch.Tensor, targets: torch.Tensor, loss: str = "bce") -> torch.Tensor:
    """The loss of one module's logits (B,L)."""
    if loss == "bce":
        return bce_loss(logits, targets)
    if loss == "softmax_ce":
        return softmax_ce_loss(logits, targets)
    raise ConfigError(f"unknown loss {loss!r}; choose one of {LOSS_NAMES}")


def joint_loss(
    out: ModelOutput, targets: torch.Tensor, lambdas: Sequence[float], loss: str = "bce"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """L = L_global + Σ_i λ_i L_local,i (Eq. 1). Returns (L, L_global, the five L_local or None)."""
    global_loss = module_loss(out.global_logits, targets, loss)
    if out.local_logits is None:
        return global_loss, global_loss, None
    local = torch.stack([module_loss(out.local_logits[:, i], targets, loss) for i in range(out.local_logits.shape[1])])
    lam = torch.as_tensor(lambdas, dtype=local.dtype, device=local.device)
    return global_loss + (lam * local).sum(), global_loss, local
