"""Paper Section III.C: the ensemble's fusion of module probabilities, with the λ of Eq. 1 as default weights.

The paper sums the module probabilities "according to certain weights", the weights of its joint
loss (1 for the global module, λ_i for local module i). We divide by their sum, so the fused value
stays a probability and one threshold (0.5) serves every λ; no second sigmoid (docs/DESIGN.md §2).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..constants import LANDMARKS, NUM_LANDMARKS
from ..errors import ConfigError

#: λ of every local module, in the joint loss (Eq. 1) and, by the paper's rule, in the fusion (Section IV.B).
DEFAULT_LAMBDA = 0.01


def expand_lambdas(lambdas: float | Sequence[float]) -> tuple[float, ...]:
    """One λ per local module: a single number is repeated five times; five non-negative values are kept."""
    if isinstance(lambdas, (int, float)):
        values = (float(lambdas),) * NUM_LANDMARKS
    else:
        values = tuple(float(x) for x in lambdas)
    if len(values) != NUM_LANDMARKS:
        raise ConfigError(f"--lambdas needs {NUM_LANDMARKS} values (one per local module), got {len(values)}")
    if any(not (v >= 0) for v in values):
        raise ConfigError(f"lambdas must be non-negative numbers, got {values}")
    return values


#: The paper's five λ (Section IV.B).
DEFAULT_LAMBDAS: tuple[float, ...] = (DEFAULT_LAMBDA,) * NUM_LANDMARKS


def paper_fusion_weights(lambdas: float | Sequence[float] = DEFAULT_LAMBDA) -> tuple[float, ...]:
    """Fusion weights (1, λ1…λ5): the joint loss's weights reused for fusion, as the paper does (Section III.C)."""
    return (1.0, *expand_lambdas(lambdas))


#: How logits become module probabilities: sigmoid per label (BCE, the paper's) or softmax (Fig. 5's ablation).
ACTIVATIONS = ("sigmoid", "softmax")


def activate(logits: torch.Tensor, activation: str) -> torch.Tensor:
    """Sigmoid per label (BCE, the paper's choice) or softmax over labels (the Fig. 5 ablation)."""
    return torch.sigmoid(logits) if activation == "sigmoid" else torch.softmax(logits, dim=-1)


def check_fusion_weights(weights: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """Validate six non-negative fusion weights with a positive sum."""
    w = torch.as_tensor(
        list(weights) if not isinstance(weights, torch.Tensor) else weights, dtype=torch.float32
    ).flatten()
    if w.numel() != 1 + NUM_LANDMARKS:
        raise ConfigError(f"fusion weights need {1 + NUM_LANDMARKS} values (global, then five locals), got {w.numel()}")
    if not torch.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ConfigError(f"fusion weights must be finite, non-negative and not all zero, got {w.tolist()}")
    return w


def module_probs(
    global_logits: torch.Tensor, local_logits: torch.Tensor | None, activation: str = "sigmoid"
) -> torch.Tensor:
    """(B, M, L) probabilities of every module, global first, then the five locals (M = 1 or 6)."""
    probs = activate(global_logits, activation).unsqueeze(1)
    if local_logits is None:
        return probs
    return torch.cat([probs, activate(local_logits, activation)], dim=1)


def fuse(probs: torch.Tensor, weights: torch.Tensor | Sequence[float]) -> torch.Tensor:
    """Fused = Σ_m w_m p_m / Σ_m w_m over the modules of (B, M, L) probabilities (paper Section III.C).

    The paper sums module probabilities with the weights of its joint loss (1, λ1..λ5); dividing
    by the sum keeps the result a probability, so one threshold (0.5) serves every λ. No second
    sigmoid. The one fusion rule of this library: a model's output (`ModelOutput.probs`),
    evaluation, re-fusion and `predict` all call it. A single module (the baseline) is its own fusion.
    """
    if probs.shape[1] == 1:
        return probs[:, 0]
    w = torch.as_tensor(weights, dtype=probs.dtype, device=probs.device)[: probs.shape[1]]
    return torch.einsum("bml,m->bl", probs, w) / w.sum()


#: Keys of the six modules in metrics files, histories and npz outputs (global, then the locals in
#: LANDMARKS order); `MODULE_TITLES` are the names to show.
MODULE_NAMES = ("global",) + tuple(f"local{i + 1}" for i in range(NUM_LANDMARKS))
MODULE_TITLES = ("whole face",) + tuple(name.replace("_", " ") for name in LANDMARKS)
