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

The fused form's `state_dict()` is the loop form's (`nets.<i>.<torchvision key>`) and its
`load_state_dict` takes it: a model's state dict, the checkpoint format, is the method's whichever
form runs, and `convert_local_nets` is a state-dict transfer (the round trip is exact).
`tests/test_fused_locals.py` checks outputs, parameter gradients and running statistics of both
forms against each other (relative error <= 1e-5, fp32).

Which form is faster depends on the device — `pick_local_impl`:

- CPU: a static rule from `benchmarks/bench.py` on the 2-core AMD EPYC (Zen 4, AVX-512) of this
  project: see `CPU_RULE_NOTE` for the numbers behind it.
- CUDA: no static rule can be trusted across cards, cuDNN versions and dtypes, so the first call
  per device times both forms once (forward + backward, batch 32, S_l = 64, under the same autocast
  the trainer uses) and caches the answer for the process. The timing runs under
  `torch.random.fork_rng`, so it never changes a seeded run.
- Anything else (MPS, …): ``loop``, the form every backend supports.
- ``MFJLE_LOCAL_IMPL=loop|fused`` in the environment overrides the automatic choice; so does an
  explicit ``local_impl`` / ``--local-impl``. `perf.optimize` puts a model in the chosen form.
"""

from __future__ import annotations

import torch
from torch import nn

from ..constants import NUM_LABELS, NUM_LANDMARKS
from ..method.models import LoopLocalNets
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

    Submodule names follow torchvision's `resnet18` (conv1, bn1, layer1..4, fc), so its tensors map
    key by key onto the loop form's: each is the G nets' tensors concatenated on dim 0, except the
    head, stacked: `fc.weight` (G,L,512) and `fc.bias` (G,L). Its state dict is the loop form's.
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
            layer = nn.Sequential(
                GroupedBasicBlock(g, inplanes, planes, stride), GroupedBasicBlock(g, planes, planes, 1)
            )
            setattr(self, f"layer{i + 1}", layer)
            inplanes = planes
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = GroupedLinear(g, 512, num_labels)
        # Saved and loaded in the loop form's keys, so a model's state dict does not depend on the form.
        self.register_state_dict_post_hook(_state_as_loop)
        self.register_load_state_dict_pre_hook(_state_from_loop)

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
    for key in net_states[0]:
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


def _state_as_loop(module: FusedLocalNets, state: dict[str, torch.Tensor], prefix: str, local_metadata: dict) -> None:
    """State-dict post-hook: the fused tensors under `prefix` rewritten as the G nets' (`nets.<i>.<key>`), in place."""
    fused = {key[len(prefix) :]: state.pop(key) for key in [k for k in state if k.startswith(prefix)]}
    for g, net_state in enumerate(fused_to_loop_states(fused, module.groups)):
        state.update({f"{prefix}nets.{g}.{key}": value for key, value in net_state.items()})


def _state_from_loop(module: FusedLocalNets, state: dict[str, torch.Tensor], prefix: str, *args: object) -> None:
    """Load-state-dict pre-hook: the G nets' tensors under `prefix` rewritten in the fused layout, in place.

    Anything but a complete loop-form state (a fused one, or nets missing keys) is left as it is, for
    the strict load to report.
    """
    nets: list[dict[str, torch.Tensor]] = [{} for _ in range(module.groups)]
    for key in [k for k in state if k.startswith(f"{prefix}nets.")]:
        index, _, name = key[len(prefix) + len("nets.") :].partition(".")
        if index.isdigit() and int(index) < module.groups:
            nets[int(index)][name] = state[key]
    if not nets[0] or any(net.keys() != nets[0].keys() for net in nets):
        return
    for g, net_state in enumerate(nets):
        for name in net_state:
            del state[f"{prefix}nets.{g}.{name}"]
    state.update({prefix + key: value for key, value in loop_to_fused_state(nets).items()})


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
    """A `method.LoopLocalNets` -> `FusedLocalNets` with the same weights and BN buffers."""
    first = loop_nets.nets[0]
    fused = FusedLocalNets(
        num_labels=first.fc.out_features, groups=len(loop_nets.nets), in_channels=first.conv1.in_channels
    )
    with torch.no_grad():
        fused.load_state_dict({k: v.detach().cpu() for k, v in loop_nets.state_dict().items()})
    return _like(fused, loop_nets)


def to_loop(fused: FusedLocalNets) -> nn.Module:
    """A `FusedLocalNets` -> `method.LoopLocalNets` with the same weights and BN buffers."""
    loop = LoopLocalNets(num_labels=fused.num_labels, num_nets=fused.groups)
    with torch.no_grad():
        loop.load_state_dict({k: v.detach().cpu() for k, v in fused.state_dict().items()})
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


def set_local_impl(model: nn.Module, impl: str) -> nn.Module:
    """Put a model's five local nets in form `impl` ('loop' | 'fused'), in place; returns the model.

    Replaces the `local_nets` module (same weights, same state dict): call it before an optimiser
    holds the model's parameters.
    """
    local_nets = getattr(model, "local_nets", None)
    if local_nets is None:
        raise ValueError(f"{type(model).__name__} has no local nets to put in the {impl!r} form")
    model.local_nets = convert_local_nets(local_nets, impl)
    return model
