"""Speed work, fenced off from the method: fused local nets, CPU deploy paths, the memory-layout planner, the allocator."""
from __future__ import annotations

from .allocator import keep_freed_memory
from .deploy import DEFAULT_METHOD, METHODS, DeployedModel, fold_resnet_bn, optimize_for_cpu
from .fused_locals import IMPLS, FusedLocalNets, convert_local_nets, set_local_impl, to_fused, to_loop
from .local_impl import pick_local_impl, time_local_impls
from .memory_format import is_channels_last, plan_memory_format

__all__ = [
    "DEFAULT_METHOD", "IMPLS", "METHODS", "DeployedModel", "FusedLocalNets", "convert_local_nets", "fold_resnet_bn",
    "is_channels_last", "keep_freed_memory", "optimize_for_cpu", "pick_local_impl", "plan_memory_format", "set_local_impl",
    "time_local_impls", "to_fused", "to_loop",
]
