"""The per-device memory layout (`models.plan_memory_format`): layout changes, results do not."""

from __future__ import annotations

import pytest
import torch

from mfjle_lib.method.losses import joint_loss
from mfjle_lib.models.registry import build_model
from mfjle_lib.perf.memory_format import (
    NCHW_MAX_SIDE_CPU,
    RESNET_STAGES,
    is_channels_last,
    plan_memory_format,
    stage_sides,
)


def _stage_formats(net: torch.nn.Module) -> list[str]:
    return ["cl" if is_channels_last(getattr(net, s)[0].conv1.weight) else "nchw" for s in RESNET_STAGES]


def _batch(b: int = 4, r: int = 64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, 3, r, r, generator=g)
    lm = torch.tensor([[0.355, 0.415], [0.645, 0.415], [0.5, 0.575], [0.385, 0.735], [0.615, 0.735]]) * r
    y = (torch.rand(b, 6, generator=g) > 0.6).float()
    return x, lm.expand(b, 5, 2).clone(), y


@pytest.mark.parametrize(
    "side,expected", [(224, (56, 28, 14, 7)), (64, (16, 8, 4, 2)), (32, (8, 4, 2, 1)), (65, (17, 9, 5, 3))]
)
def test_stage_sides_match_a_real_forward(side: int, expected: tuple[int, ...]) -> None:
    assert stage_sides(side) == expected
    net = build_model("resnet18", global_size=side).global_net.eval()
    seen: list[int] = []
    hooks = [getattr(net, s).register_forward_hook(lambda m, i, o: seen.append(o.shape[-1])) for s in RESNET_STAGES]
    with torch.no_grad():
        net(torch.zeros(1, 3, side, side))
    for h in hooks:
        h.remove()
    assert tuple(seen) == expected


def test_cpu_plan_puts_small_map_stages_in_nchw_only() -> None:
    model = plan_memory_format(build_model("mfjle", global_size=224, local_size=64), "cpu")
    assert _stage_formats(model.global_net) == ["cl"] * 4  # 56..7 px maps: channels_last
    small = [s <= NCHW_MAX_SIDE_CPU for s in stage_sides(64)]
    assert small == [False, False, True, True]
    for net in model.local_nets.nets:
        assert _stage_formats(net) == ["nchw" if s else "cl" for s in small]
    assert is_channels_last(model.global_net.conv1.weight) and is_channels_last(model.local_nets.nets[0].conv1.weight)


def test_non_cpu_plan_is_channels_last_everywhere() -> None:
    model = plan_memory_format(build_model("mfjle", global_size=64, local_size=32), "cuda")
    for net in [model.global_net, *model.local_nets.nets]:
        assert _stage_formats(net) == ["cl"] * 4


def test_stage_input_follows_its_weights() -> None:
    net = plan_memory_format(build_model("resnet18", global_size=64), "cpu").global_net.eval()
    formats: dict[str, str] = {}
    for s in RESNET_STAGES:
        getattr(net, s)[0].conv1.register_forward_pre_hook(
            lambda m, a, s=s: formats.__setitem__(s, "cl" if is_channels_last(a[0]) else "nchw")
        )
    with torch.no_grad():
        net(torch.randn(2, 3, 64, 64).contiguous(memory_format=torch.channels_last))
    assert formats == dict(zip(RESNET_STAGES, _stage_formats(net)))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_planned_model_computes_what_the_channels_last_model_computes(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    ref = build_model("mfjle", global_size=64, local_size=32).to(dtype).to(memory_format=torch.channels_last)
    planned = plan_memory_format(build_model("mfjle", global_size=64, local_size=32).to(dtype), "cpu")
    planned.load_state_dict(ref.state_dict())
    assert any(f == "nchw" for f in _stage_formats(planned.local_nets.nets[0]))
    x, lm, y = _batch(b=8)
    x = x.to(dtype).contiguous(memory_format=torch.channels_last)
    outs = []
    for model in (ref, planned):
        model.train()
        out = model(x, lm.to(dtype))
        joint_loss(out, y.to(dtype), (0.01,) * 5, "bce")[0].backward()
        outs.append(
            (
                out,
                {n: p.grad.clone() for n, p in model.named_parameters()},
                {n: b.clone() for n, b in model.named_buffers()},
            )
        )
    (o1, g1, b1), (o2, g2, b2) = outs
    if dtype == torch.float32:
        # oneDNN's NCHW and channels_last kernels sum in different orders: outputs agree to rounding
        # (amplified a little by train-mode BatchNorm on 1x1 maps); gradients can differ where a
        # ReLU or max-pool decision flips, so they are checked in float64 only.
        torch.testing.assert_close(o2.local_logits, o1.local_logits, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(o2.global_logits, o1.global_logits, rtol=1e-4, atol=1e-4)
        return
    torch.testing.assert_close(o2.global_logits, o1.global_logits, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(o2.local_logits, o1.local_logits, rtol=1e-10, atol=1e-12)
    for n in g1:
        torch.testing.assert_close(g2[n], g1[n], rtol=1e-8, atol=1e-12, msg=lambda m, n=n: f"{n}: {m}")
    for n in b1:
        torch.testing.assert_close(b2[n], b1[n], rtol=1e-10, atol=1e-12)
    # the layout plan survives a state-dict round trip (checkpoints store values, not layouts)
    planned.load_state_dict(ref.state_dict())
    assert _stage_formats(planned.local_nets.nets[0])[-1] == "nchw"
