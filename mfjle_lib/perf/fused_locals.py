"""The five local ResNet-18s as one batched computation (docs/DESIGN.md §6), and the switch between forms.

Two implementations of the same function, crops (B,5,C,S,S) -> logits (B,5,L):

- ``loop`` — `models.LoopLocalNets`: five torchvision `resnet18`s called one after another (naive);
- ``fused`` — `FusedLocalNets`: one ResNet-18 whose every layer is five layers side by side. The five
  crops become the channel groups of one (B,5·C,S,S) tensor; each convolution is a grouped
  convolution with `groups=5` whose weight is the five nets' weights concatenated on the output
  axis; BatchNorm over the 5·C channels is exactly per-net BatchNorm (batch statistics, affine
  parameters and running statistics are all per channel); the head is one batched matrix product
  (an einsum over stacked (5,L,512) weights). No `torch.func`: every parameter and running
  statistic is an ordinary leaf tensor of an ordinary module, so optimisers, `state_dict`,
  `channels_last`, autocast and `torch.compile` all work unchanged.

`convert_local_nets` moves the same weights and BatchNorm buffers between the two forms (the
round trip is exact), and `loop_state_dict` gives any MF-JLE's state dict in the loop layout, the
one canonical layout of checkpoints. `tests/test_fused_locals.py` checks outputs, parameter
gradients and running statistics of both forms against each other (relative error <= 1e-5, fp32).

Which form is faster depends on the device — `pick_local_impl`:

- CPU: a static rule from `benchmarks/bench.py` on the 2-core AMD EPYC (Zen 4, AVX-512) of this
  project: see `CPU_RULE_NOTE` for the numbers behind it.
- CUDA: no static rule can be trusted across cards, cuDNN versions and dtypes, so the first call
  per device times both forms once (forward + backward, batch 32, S_l = 64, under the same autocast
  the trainer uses) and caches the answer for the process. The timing runs under
  `torch.random.fork_rng`, so it never changes a seeded run.
- Anything else (MPS, …): ``loop``, the form every backend supports.
- ``MFJLE_LOCAL_IMPL=loop|fused`` in the environment overrides the automatic choice; so does an
  explicit ``local_impl`` / ``--local-impl``.
"""
from __future__ import annotations

import torch
from torch import nn

from ..constants import NUM_LABELS, NUM_LANDMARKS
from ..models.mfjle import LoopLocalNets
from .memory_format import is_channels_last

#: The two forms of the five local nets.
IMPLS = ("loop", "fused")

# ---------------------------------------------------------------------------------------------
# The fused network
# ---------------------------------------------------------------------------------------------


class GroupedBasicBlock(nn.Module):
    """torchvision's `BasicBlock`, five times side by side (groups = number of nets)."""

    def __init__(self, groups: int, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        g = groups
        self.conv1 = nn.Conv2d(g * inplanes, g * planes, 3, stride, 1, groups=g, bias=False)
        self.bn1 = nn.BatchNorm2d(g * planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(g * planes, g * planes, 3, 1, 1, groups=g, bias=False)
        self.bn2 = nn.BatchNorm2d(g * planes)
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(g * inplanes, g * planes, 1, stride, bias=False, groups=g), nn.BatchNorm2d(g * planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class GroupedLinear(nn.Module):
    """G linear layers side by side: (B,G,K) -> (B,G,L), weight (G,L,K), bias (G,L)."""

    def __init__(self, groups: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(groups, out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(groups, out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Same arithmetic as nn.Linear per group (x @ W.T + b), batched over the G groups.
        return torch.einsum("bgk,glk->bgl", x, self.weight) + self.bias


class FusedLocalNets(nn.Module):
    """`groups` ResNet-18s run as one grouped-convolution ResNet-18: crops (B,G,C,S,S) -> (B,G,L).

    Submodule names follow torchvision's `resnet18` (conv1, bn1, layer1..4, fc), so the state dict
    maps key by key onto the loop layout: every tensor is the G nets' tensors concatenated on dim 0,
    except the head, stacked: `fc.weight` (G,L,512) and `fc.bias` (G,L). Keys keep torchvision's order.
    """

    def __init__(self, num_labels: int = NUM_LABELS, groups: int = NUM_LANDMARKS, in_channels: int = 3) -> None:
        super().__init__()
        g = groups
        self.groups = g
        self.num_labels = num_labels
        self.conv1 = nn.Conv2d(g * in_channels, g * 64, 7, 2, 3, groups=g, bias=False)
        self.bn1 = nn.BatchNorm2d(g * 64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths = (64, 128, 256, 512)
        inplanes = 64
        for i, planes in enumerate(widths):
            stride = 1 if i == 0 else 2
            layer = nn.Sequential(GroupedBasicBlock(g, inplanes, planes, stride), GroupedBasicBlock(g, planes, planes, 1))
            setattr(self, f"layer{i + 1}", layer)
            inplanes = planes
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = GroupedLinear(g, 512, num_labels)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        """Crops (B,G,C,S,S) -> logits (B,G,L)."""
        b, g, c, h, w = crops.shape
        if g != self.groups:
            raise ValueError(f"expected {self.groups} crops per image, got {g}")
        x = crops.reshape(b, g * c, h, w)
        if self.conv1.weight.is_contiguous(memory_format=torch.channels_last):
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        feats = torch.flatten(self.avgpool(x), 1).view(b, g, -1)  # (B,G,512): group k = net k
        return self.fc(feats)


# ---------------------------------------------------------------------------------------------
# Conversion loop <-> fused
# ---------------------------------------------------------------------------------------------

_FC_KEYS = ("fc.weight", "fc.bias")  # stacked on a new dim 0; everything else concatenated on dim 0


def loop_to_fused_state(net_states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """G torchvision-resnet18 state dicts -> one FusedLocalNets state dict."""
    out: dict[str, torch.Tensor] = {}
    for key, first in net_states[0].items():
        parts = [s[key] for s in net_states]
        if key.endswith("num_batches_tracked"):
            # One counter for the fused BN; the G counters only differ if nets were trained apart.
            out[key] = torch.stack(parts).max()
        elif key in _FC_KEYS:
            out[key] = torch.stack(parts, dim=0)
        else:
            out[key] = torch.cat(parts, dim=0)
    return out


def fused_to_loop_states(state: dict[str, torch.Tensor], groups: int = NUM_LANDMARKS) -> list[dict[str, torch.Tensor]]:
    """One FusedLocalNets state dict -> G torchvision-resnet18 state dicts (tensors are views/copies)."""
    nets: list[dict[str, torch.Tensor]] = [{} for _ in range(groups)]
    for key, value in state.items():
        if key in _FC_KEYS:
            for g in range(groups):
                nets[g][key] = value[g]
        elif key.endswith("num_batches_tracked"):
            for g in range(groups):
                nets[g][key] = value.clone()
        else:
            for g, chunk in enumerate(value.chunk(groups, dim=0)):
                nets[g][key] = chunk
    return nets


def _memory_format_of(module: nn.Module) -> torch.memory_format:
    p = next((p for p in module.parameters() if p.dim() == 4), None)
    return torch.channels_last if p is not None and is_channels_last(p) else torch.contiguous_format


def _like(module: nn.Module, reference: nn.Module) -> nn.Module:
    """Put `module` on the reference's device/dtype/memory format and training mode."""
    ref = next(reference.parameters())
    module = module.to(device=ref.device, dtype=ref.dtype)
    fmt = _memory_format_of(reference)
    if fmt == torch.channels_last:
        module = module.to(memory_format=torch.channels_last)
    module.train(reference.training)
    trainable = all(p.requires_grad for p in reference.parameters())
    for p in module.parameters():
        p.requires_grad_(trainable)
    return module


def to_fused(loop_nets: nn.Module) -> FusedLocalNets:
    """A `models.LoopLocalNets` -> `FusedLocalNets` with the same weights and BN buffers."""
    nets = list(loop_nets.nets)
    first = nets[0]
    fused = FusedLocalNets(num_labels=first.fc.out_features, groups=len(nets), in_channels=first.conv1.in_channels)
    with torch.no_grad():
        state = loop_to_fused_state([n.state_dict() for n in nets])
        fused.load_state_dict({k: v.detach().cpu() for k, v in state.items()})
    return _like(fused, loop_nets)


def to_loop(fused: FusedLocalNets) -> nn.Module:
    """A `FusedLocalNets` -> `models.LoopLocalNets` with the same weights and BN buffers."""
    loop = LoopLocalNets(num_labels=fused.num_labels, num_nets=fused.groups)
    with torch.no_grad():
        for net, state in zip(loop.nets, fused_to_loop_states(fused.state_dict(), fused.groups)):
            net.load_state_dict({k: v.detach().cpu() for k, v in state.items()})
    return _like(loop, fused)


def impl_of(local_nets: nn.Module) -> str:
    """'fused' or 'loop' for a local-nets module."""
    return "fused" if isinstance(local_nets, FusedLocalNets) else "loop"


def convert_local_nets(local_nets: nn.Module, impl: str) -> nn.Module:
    """Return the local nets in implementation `impl` ('loop' | 'fused'), carrying the same weights.

    Device, dtype, memory format, train/eval mode and `requires_grad` follow the input. Returns the
    input itself when it is already in that form. Optimiser state is not carried: convert before
    building the optimiser (as `training.train` does).
    """
    if impl not in IMPLS:
        raise ValueError(f"unknown local implementation {impl!r}; choose one of {IMPLS}")
    current = impl_of(local_nets)
    if current == impl:
        return local_nets
    return to_fused(local_nets) if impl == "fused" else to_loop(local_nets)


def loop_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """`model.state_dict()` in the loop layout, whatever form its local nets are in.

    Keys are exactly those of the same MF-JLE with `LoopLocalNets` (`local_nets.nets.<k>.<key>`);
    a model without fused parts is returned as is.
    """
    fused_prefixes = [name + "." for name, m in model.named_modules() if isinstance(m, FusedLocalNets)]
    if isinstance(model, FusedLocalNets):
        fused_prefixes = [""]
    state = model.state_dict()
    if not fused_prefixes:
        return state
    out: dict[str, torch.Tensor] = {}
    done: set[str] = set()
    for key, value in state.items():
        prefix = next((p for p in fused_prefixes if key.startswith(p)), None)
        if prefix is None:
            out[key] = value
            continue
        if prefix in done:
            continue
        done.add(prefix)
        sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        module = model.get_submodule(prefix[:-1]) if prefix else model
        for g, net_state in enumerate(fused_to_loop_states(sub, module.groups)):
            for k, v in net_state.items():
                out[f"{prefix}nets.{g}.{k}"] = v
    return out


def set_local_impl(model: nn.Module, impl: str) -> nn.Module:
    """Put an MF-JLE's five local nets in form `impl` ('loop' | 'fused'), in place; returns the model.

    Replaces the `local_nets` module: call it before an optimiser holds the model's parameters.
    """
    model.local_nets = convert_local_nets(model.local_nets, impl)
    model.local_impl = impl
    return model


def state_in_layout_of(model: nn.Module, loop_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A loop-layout state dict rewritten in `model`'s own layout (fused local nets, if it has them).

    With it a checkpoint loads *in place*: the model keeps its modules, so an optimiser built on
    them keeps training every parameter (replacing modules would orphan the optimiser's copies).
    """
    fused = [name for name, m in model.named_modules() if isinstance(m, FusedLocalNets)]
    if not fused:
        return loop_state
    out = dict(loop_state)
    for name in fused:
        groups = model.get_submodule(name).groups
        nets = [{k[len(f"{name}.nets.{g}."):]: out.pop(k) for k in list(out) if k.startswith(f"{name}.nets.{g}.")} for g in range(groups)]
        out.update({f"{name}.{k}": v for k, v in loop_to_fused_state(nets).items()})
    return out
