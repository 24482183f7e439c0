"""Building the model a config describes, its optimiser, and its canonical state dict."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from ..models.build import build_model
from ..perf.fused_locals import IMPLS, loop_state_dict, set_local_impl, state_in_layout_of
from ..perf.local_impl import pick_local_impl
from .config import TrainConfig


def resolve_local_impl(cfg: TrainConfig, device: torch.device) -> TrainConfig:
    """The config with its local-net form decided ('loop' | 'fused'): asked for, else the faster on `device`.

    Decided once per run and stored in the config (so in `checkpoint.pt` and `last.pt`): a resumed
    or repeated run then uses the same form, whatever a later timing on a busy card would pick.
    """
    if cfg.model != "mfjle":
        return replace(cfg, local_impl="loop")
    if cfg.local_impl in IMPLS:
        return cfg
    return replace(cfg, local_impl=pick_local_impl(device))


def model_from_config(cfg: TrainConfig, device: torch.device | None = None) -> torch.nn.Module:
    """Build the model a config describes, on `device`, in the config's local-net form.

    Same seed -> same global init for both models. An unresolved form ('auto') builds the loop.
    """
    options: dict[str, Any] = {
        "global_size": cfg.global_size,
        "activation": cfg.activation,
        "pretrained": cfg.pretrained,
        "weights": cfg.weights,
    }
    if cfg.model == "mfjle":
        options.update(local_size=cfg.local_size, crop_fraction=cfg.crop_fraction, fusion_weights=cfg.effective_fusion_weights())
    model = build_model(cfg.model, **options)
    if device is not None:
        model = model.to(device)
    if cfg.model == "mfjle" and cfg.local_impl == "fused":
        set_local_impl(model, "fused")
    return model


def canonical_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """State dict in the loop layout (so any local-net form can load it), on the CPU."""
    return {k: v.detach().cpu().clone() for k, v in loop_state_dict(model).items()}


def load_canonical_state(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load a loop-layout state dict into a model in place, whatever its local-net form."""
    model.load_state_dict(state_in_layout_of(model, state))


def make_adam(model: torch.nn.Module, lr: float, device: torch.device, betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.Adam:
    """The trainer's Adam: the fused kernel on CPU and CUDA.

    One kernel over all six ResNets' 67M parameters: 17x faster on the CPU than the default
    per-parameter loop, which would otherwise add a cost that grows with MF-JLE's 6x parameters.
    """
    return torch.optim.Adam(model.parameters(), lr=lr, betas=betas, fused=device.type in ("cpu", "cuda"))
