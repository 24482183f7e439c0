"""Setting up a run: its 'auto' settings decided once, the parts it trains with, its mixed precision around the step.

The settings (precision, determinism, local-net form) are decided once and recorded; the parts are
the model in its faster form for the device (`perf.optimize`), the trainer's Adam, the schedule,
the fp16 scaler and the data RNG; around Algorithm 1's plain step the run adds autocast, float32
losses and the scaler (`RunForward`, `RunOptimizer`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from typing import Any

import torch

from ..method.models import ModelOutput
from ..models.registry import model_spec
from ..perf.fused_locals import IMPLS
from ..perf.local_impl import pick_local_impl
from ..perf.optimize import optimize
from ..runtime import default_deterministic
from .config import PRECISIONS, TrainConfig, model_from_config

_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def precision_for_capability(capability: tuple[int, int] | None) -> str:
    """bf16 on CUDA compute capability >= 8.0, fp16 below, float32 without a capability.

    `torch.cuda.is_bf16_supported()` answers True on sm_75 (a T4) because bf16 is emulated there:
    every convolution then leaves cuDNN for a slow path. Only Ampere and later run bf16 natively.
    """
    if capability is None:
        return "float32"
    return "bfloat16" if tuple(capability) >= (8, 0) else "float16"


def choose_precision(device: torch.device, amp: bool = True) -> str:
    """The precision a run on `device` trains in: by the TRAINING device's capability on CUDA, float32 elsewhere."""
    if not amp or device.type != "cuda":
        return "float32"
    return precision_for_capability(torch.cuda.get_device_capability(device))


def autocast_for(device: torch.device, precision: str) -> AbstractContextManager:
    """Autocast to `precision` on `device` (for the training forward only); nothing for float32."""
    if precision not in PRECISIONS[1:]:
        raise ValueError(f"autocast_for needs a decided precision {PRECISIONS[1:]}, got {precision!r}")
    dtype = _DTYPES.get(precision)
    if dtype is None:
        return nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def make_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """A GradScaler that is enabled only for fp16.

    fp16 has a narrow exponent: the local modules' gradients (BCE ~1e-3 per logit x λ = 0.01)
    underflow to zero without scaling. bf16 shares float32's exponent and needs none.
    """
    return torch.amp.GradScaler(device.type, enabled=precision == "float16")


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The torch dtype of a mixed precision, None for float32."""
    return _DTYPES.get(precision)


def resolve_local_impl(cfg: TrainConfig, device: torch.device) -> TrainConfig:
    """The config with its local-net form decided ('loop' | 'fused'): asked for, else the faster on `device`.

    Decided once per run and stored in the config (so in `checkpoint.pt` and `last.pt`): a resumed
    or repeated run then uses the same form, whatever a later timing on a busy card would pick.
    The timing uses the run's batch size, S_l and precision, so resolve the precision first.
    """
    if not model_spec(cfg.model).has_locals:
        return replace(cfg, local_impl="loop")
    if cfg.local_impl in IMPLS:
        return cfg
    dtype = autocast_dtype(cfg.precision)
    return replace(cfg, local_impl=pick_local_impl(device, cfg.batch_size, cfg.local_size, dtype))


def resolve_settings(cfg: TrainConfig, device: torch.device, recorded: dict[str, Any] | None = None) -> TrainConfig:
    """Decide every 'auto' setting once: precision, determinism, local-net form.

    A setting left to 'auto' takes the choice `recorded` in a run being resumed (its `last.pt`
    config), else the choice for `device`: bf16/fp16 by the training GPU's compute capability,
    determinism on except on CUDA, the faster local-net form. The result is what gets recorded.
    """
    recorded = recorded or {}
    precision = cfg.precision
    if precision == "auto":
        precision = (
            recorded.get("precision")
            if recorded.get("precision", "auto") != "auto"
            else choose_precision(device, cfg.amp)
        )
    deterministic = cfg.deterministic
    if deterministic is None:
        deterministic = (
            recorded.get("deterministic")
            if recorded.get("deterministic") is not None
            else default_deterministic(device)
        )
    local_impl = cfg.local_impl
    if local_impl == "auto" and recorded.get("local_impl") in IMPLS:
        local_impl = recorded["local_impl"]
    return resolve_local_impl(
        replace(cfg, precision=precision, deterministic=bool(deterministic), local_impl=local_impl), device
    )


class RunForward:
    """The model as the run's step calls it: under autocast, with float32 logits whose gradient carries the loss's
    factor.

    Multiplying the gradient that reaches the logits by a factor is multiplying the joint loss by it:
    the loss depends on the parameters through the logits only.
    """

    def __init__(
        self,
        forward: Callable[..., ModelOutput],
        device: torch.device,
        precision: str,
        scaler: torch.amp.GradScaler,
        weight: float,
    ) -> None:
        self.forward, self.device, self.precision, self.scaler, self.weight = forward, device, precision, scaler, weight

    def __call__(self, images: torch.Tensor, landmarks: torch.Tensor) -> ModelOutput:
        """The model's output, logits in float32 (losses in float32 even under autocast)."""
        with autocast_for(self.device, self.precision):
            out = as_float32(self.forward(images, landmarks))
        if self.scaler.is_enabled() or self.weight != 1.0:
            for logits in (out.global_logits, out.local_logits):
                if logits is not None and logits.requires_grad:
                    logits.register_hook(self._scale)
        return out

    def _scale(self, grad: torch.Tensor) -> torch.Tensor:
        grad = grad * self.weight if self.weight != 1.0 else grad
        return self.scaler.scale(grad) if self.scaler.is_enabled() else grad


class RunOptimizer:
    """The optimiser as the run's step calls it: fp16 gradients unscaled and checked, an overflowed step skipped by
    the scaler."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        scaler: torch.amp.GradScaler,
        model: torch.nn.Module,
        device: torch.device,
    ) -> None:
        self.optimizer, self.scaler, self.model = optimizer, scaler, model
        self.grads_finite = torch.ones((), dtype=torch.bool, device=device)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """The optimiser's own."""
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        """Unscale and check (fp16), then the scaler's step and update (a plain step when it is off)."""
        if self.scaler.is_enabled():
            self.scaler.unscale_(self.optimizer)
            # Checked after unscaling: an fp16 overflow makes the scaler skip this step and halve its scale.
            grads = [p.grad for p in self.model.parameters() if p.grad is not None]
            self.grads_finite = torch.isfinite(torch.nn.utils.get_total_norm(grads))
        self.scaler.step(self.optimizer)
        self.scaler.update()


def as_float32(out: ModelOutput) -> ModelOutput:
    """Logits in float32 even under autocast (BCE on bf16/fp16 logits loses precision)."""
    if out.global_logits.dtype == torch.float32:
        return out
    return replace(
        out,
        global_logits=out.global_logits.float(),
        local_logits=None if out.local_logits is None else out.local_logits.float(),
    )


# ---------------------------------------------------------------------------------------------
# The parts a run trains with
# ---------------------------------------------------------------------------------------------


def make_adam(
    model: torch.nn.Module, lr: float, device: torch.device, betas: tuple[float, float] = (0.9, 0.999)
) -> torch.optim.Adam:
    """The trainer's Adam: the fused kernel on CPU and CUDA.

    One kernel over all six ResNets' 67M parameters: 17x faster on the CPU than the default
    per-parameter loop, which would otherwise add a cost that grows with MF-JLE's 6x parameters.
    """
    return torch.optim.Adam(model.parameters(), lr=lr, betas=betas, fused=device.type in ("cpu", "cuda"))


@dataclass
class TrainingParts:
    """What the loop updates: the model, its (optionally compiled) forward, optimiser, schedule, scaler, data RNG."""

    model: torch.nn.Module
    forward: Callable[..., ModelOutput]
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    generator: torch.Generator


def build_training(cfg: TrainConfig, device: torch.device) -> TrainingParts:
    """The model in its faster form for `device` first (`perf.optimize`), then the optimiser on its parameters (never
    swapped after)."""
    model = optimize(model_from_config(cfg, device), device, cfg.local_impl)
    optimizer = make_adam(model, cfg.lr, device, tuple(cfg.betas))
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
    # The compiled forward shares the model's parameters; evaluation runs the plain model in float32.
    forward = torch.compile(model) if cfg.compile else model
    generator = torch.Generator().manual_seed(cfg.seed)  # CPU generator: the same batches on every device
    return TrainingParts(model, forward, optimizer, scheduler, make_scaler(device, cfg.precision), generator)
