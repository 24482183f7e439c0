"""Speed work, applied from outside the method: `optimize` (fused local nets, memory layout), CPU deploy paths and the
choice among them, the allocator.

Nothing here changes what a model computes or its state dict; `mfjle_lib.method` never imports it.
"""

from __future__ import annotations

from .allocator import keep_freed_memory
from .deploy import DEFAULT_METHOD, METHODS, DeployedModel, fold_resnet_bn, optimize_for_cpu
from .fused_locals import IMPLS, FusedLocalNets, convert_local_nets, impl_of, set_local_impl, to_fused, to_loop
from .inference_path import (
    AUTO_ORDER,
    PRECISION_CHOICES,
    build_path,
    choose_path,
    cpu_capabilities,
    fast_int8,
    native_bf16,
    path_line,
)
from .local_impl import pick_local_impl, time_local_impls
from .memory_format import is_channels_last, plan_memory_format
from .optimize import optimize
from .path_check import FLIP_LIMIT, MAX_CHANGE_LIMIT, POOL_MIN, compare_to_reference, flipped_decisions

__all__ = [
    "AUTO_ORDER",
    "DEFAULT_METHOD",
    "FLIP_LIMIT",
    "IMPLS",
    "MAX_CHANGE_LIMIT",
    "METHODS",
    "POOL_MIN",
    "PRECISION_CHOICES",
    "DeployedModel",
    "FusedLocalNets",
    "build_path",
    "choose_path",
    "compare_to_reference",
    "convert_local_nets",
    "cpu_capabilities",
    "fast_int8",
    "flipped_decisions",
    "fold_resnet_bn",
    "impl_of",
    "is_channels_last",
    "keep_freed_memory",
    "native_bf16",
    "optimize",
    "optimize_for_cpu",
    "path_line",
    "pick_local_impl",
    "plan_memory_format",
    "set_local_impl",
    "time_local_impls",
    "to_fused",
    "to_loop",
]
