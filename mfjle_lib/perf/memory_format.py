"""Memory layout of the ResNets: channels_last, and NCHW for small maps on the CPU (measured)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

RESNET_STAGES = ("layer1", "layer2", "layer3", "layer4")


#: On the CPU, a ResNet stage whose feature maps are at most this many pixels on a side runs in NCHW
#: (the rest in channels_last). Measured forward+backward at batch 32 on the 2-core EPYC (oneDNN):
#: five 64-px local nets 1012 ms all channels_last vs 899 ms with layer3-4 (4x4, 2x2 maps) in NCHW;
#: five 32-px nets 544 vs 490-505 ms; the 224-px global net is fastest all channels_last (1847 ms;
#: 1882 ms with its 7x7 layer4 in NCHW). On tiny maps channels_last gains nothing and costs a copy
#: of every weight in each backward. `benchmarks/bench_memory_format.py` reruns the comparison.
NCHW_MAX_SIDE_CPU = 4


def is_channels_last(t: torch.Tensor) -> bool:
    """True for a 4-D tensor laid out channels_last (and not also plain contiguous)."""
    return t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()


def _input_follows_weights(stage: nn.Module, args: tuple) -> tuple:
    """Forward pre-hook of a ResNet stage: give it its input in its weights' memory format.

    A convolution whose input and weight disagree converts one of them on every call; this keeps
    a stage that `plan_memory_format` put in NCHW (or channels_last) free of those copies.
    """
    if not isinstance(args[0], torch.Tensor):  # torch.fx tracing (int8 quantisation): layout is moot
        return None
    fmt = torch.channels_last if is_channels_last(stage[0].conv1.weight) else torch.contiguous_format
    return (args[0].contiguous(memory_format=fmt),) + tuple(args[1:])


def stage_sides(input_side: int) -> tuple[int, ...]:
    """Feature-map side after each of layer1..layer4 for a square input (stem /4, then /2 per stage)."""
    side, sides = input_side, []
    for halvings in (2, 0, 1, 1, 1):  # conv1 + max-pool, layer1, layer2, layer3, layer4
        for _ in range(halvings):
            side = (side + 1) // 2
        sides.append(side)
    return tuple(sides[1:])


def cpu_stage_formats(input_side: int) -> tuple[torch.memory_format, ...]:
    """Layouts of layer1..layer4 on the CPU for a square input: NCHW for maps <= NCHW_MAX_SIDE_CPU."""
    return tuple(
        torch.contiguous_format if side <= NCHW_MAX_SIDE_CPU else torch.channels_last
        for side in stage_sides(input_side)
    )


def set_stage_formats(net: nn.Module, formats: Sequence[torch.memory_format]) -> nn.Module:
    """Put the weights of a ResNet's layer1..layer4 in `formats`, in place; each stage's input follows."""
    for name, fmt in zip(RESNET_STAGES, formats):
        stage = getattr(net, name)
        stage.to(memory_format=fmt)
        if not getattr(stage, "_input_follows_weights", False):
            stage.register_forward_pre_hook(_input_follows_weights)
            stage._input_follows_weights = True
    return net


def plan_memory_format(model: nn.Module, device: torch.device | str | None = None) -> nn.Module:
    """Put `model` in its fastest memory layout for `device`, in place; returns it.

    channels_last everywhere (the fast layout for convolutions on GPUs and for big maps on CPUs);
    on the CPU, each ResNet's stages follow `cpu_stage_formats` of its input side (measured, above).
    Only the layout changes: the weights' values and the model's outputs (up to rounding) do not.
    """
    model = model.to(memory_format=torch.channels_last)
    first = next(model.parameters(), None)
    dev = torch.device(device) if device is not None else (first.device if first is not None else torch.device("cpu"))
    if dev.type != "cpu":
        return model
    nets: list[tuple[nn.Module, int]] = []
    if hasattr(model, "global_net"):
        nets.append((model.global_net, model.global_size))
    local_nets = getattr(model, "local_nets", None)
    if local_nets is not None and hasattr(local_nets, "nets"):  # the loop implementation
        nets.extend((net, model.local_size) for net in local_nets.nets)
    for net, side in nets:
        set_stage_formats(net, cpu_stage_formats(side))
    return model
