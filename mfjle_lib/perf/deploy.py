"""CPU inference path for a trained model: same outputs, fewer milliseconds (docs/DESIGN.md §6).

`optimize_for_cpu(model, method)` returns an inference-only module with the model's
`forward(images, landmarks) -> ModelOutput` contract, built from an eval-mode copy (the input model
is not changed). Methods, measured at batch 32, S_g = 224, S_l = 64 by `benchmarks/bench.py` and
checked for accuracy by `benchmarks/check_deploy.py` (flipped decisions and the largest probability
change against fp32 on the built-in test split, the rule of `perf/path_check.py`):

- ``fp32``: eval mode, BatchNorm folded into the convolutions, channels_last, `inference_mode`;
  the exact model (differences are rounding only).
- ``bf16``: as fp32 with weights and activations in bfloat16; logits in fp32. Fast only where the CPU has native
  bf16 (AVX512-BF16 or AMX); on an AVX2-only CPU it is emulated and slower, so `auto` never tries it there.
- ``int8``: post-training static quantisation (FX graph mode, x86 backend: fbgemm/oneDNN VNNI
  kernels), per-channel int8 weights, uint8 activations, observers calibrated on real training
  images (`calibration`); conv+BN+ReLU fused. Crops are cut in float (roi_align), then quantised
  at each local net's input, so the geometry is unchanged.
- ``mixed``: the global ResNet-18 in bf16 (it carries weight 1 of 1.05 in the fused output, so its
  errors reach the decision), the five local nets in int8 (weight 0.01 each: their int8 error
  moves the fused probability by ~1e-3; measured 4 flipped decisions of 3,600, bf16 alone 3).
- ``compile`` may be set with fp32/bf16 (`torch.compile`, inductor; opt-in: minutes of compile time
  on a 2-core CPU).

Measured at batch 32 on an idle 2-core AMD EPYC (Zen 4, AVX512-BF16; an earlier machine than the
AVX2-only one docs/SPEED.md measures), wall ms per image (`benchmarks/bench.py`,
that machine's report, since replaced): eager MF-JLE 30.8, deploy fp32 28.9, bf16 15.4, mixed 13.2,
int8 8.0 (the paper's GTX 1060: 10.52). Accuracy (`benchmarks/check_deploy.py` on a trained
224-px checkpoint, test micro-F1 0.776, 600 faces x 6 labels): decisions flipped fp32 0, bf16 3,
mixed 4, int8 20 of 3,600 (in both directions), largest probability change bf16 0.010, mixed
0.009, int8 0.119; micro-F1 change at most 0.0004. Every method is within today's limits (1 % of
the decisions, 0.2), so `bench.py` counts int8 as the CPU path (`DEFAULT_METHOD`, used where no
check is at hand, stays the safer ``mixed``). On a barely trained checkpoint (micro-F1 0.37,
probabilities bunched at 0.5) int8 moved micro-F1 by +0.011: check the model you deploy, as
`--precision auto` does on the run's own faces.

`benchmarks/bench.py` reports as `mfjle_infer_ms_per_img` the fastest method that passed the check
made on the same CPU kind (`benchmarks/results/<cpu kind>/deploy_check.json`, judged by today's
rule); none counts without it.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Iterable, Sequence

import torch
from torch import nn
from torch.ao.quantization import QConfig, QConfigMapping, get_default_qconfig_mapping
from torch.ao.quantization.observer import HistogramObserver, default_per_channel_weight_observer
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

from ..constants import TEMPLATE
from ..method.models import MFJLE, ModelOutput, ResNet18Baseline, resize_global
from .fused_locals import set_local_impl

METHODS = ("fp32", "bf16", "mixed", "int8")


#: What `bench.py` reports when no accuracy check is at hand; with one, it takes the fastest method
#: that passed it (see `benchmarks/check_deploy.py`).
DEFAULT_METHOD = "mixed"


#: conv/bn attribute pairs of a torchvision ResNet BasicBlock (and of the fused grouped one).
_BLOCK_PAIRS = (("conv1", "bn1"), ("conv2", "bn2"))


# ---------------------------------------------------------------------------------------------
# BatchNorm folding (eval mode)
# ---------------------------------------------------------------------------------------------


def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A conv with bias computing bn(conv(x)) in eval mode (running statistics)."""
    fused = copy.deepcopy(conv)
    with torch.no_grad():
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        w = conv.weight * scale.view(-1, 1, 1, 1).to(conv.weight.dtype)
        b = (conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)) - bn.running_mean
        b = b * scale + bn.bias
        fused.weight = nn.Parameter(
            w.contiguous(memory_format=torch.channels_last)
            if conv.weight.is_contiguous(memory_format=torch.channels_last)
            else w,
            requires_grad=False,
        )
        fused.bias = nn.Parameter(b.to(conv.weight.dtype), requires_grad=False)
    return fused


def fold_resnet_bn(net: nn.Module) -> nn.Module:
    """Fold every BatchNorm of a torchvision ResNet (or `FusedLocalNets`) into its convolution, in place."""
    if hasattr(net, "conv1") and isinstance(getattr(net, "bn1", None), nn.BatchNorm2d):
        net.conv1 = fold_conv_bn(net.conv1, net.bn1)
        net.bn1 = nn.Identity()
    for module in list(net.modules()):
        for conv_name, bn_name in _BLOCK_PAIRS:
            conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and module is not net:
                setattr(module, conv_name, fold_conv_bn(conv, bn))
                setattr(module, bn_name, nn.Identity())
        ds = getattr(module, "downsample", None)
        if isinstance(ds, nn.Sequential) and len(ds) == 2 and isinstance(ds[1], nn.BatchNorm2d):
            module.downsample = nn.Sequential(fold_conv_bn(ds[0], ds[1]))
    return net


# ---------------------------------------------------------------------------------------------
# The deployed module
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quantized_ops_allowed():
    """Let int8 ops run after `seed_everything` switched on `torch.use_deterministic_algorithms`.

    PyTorch refuses `quantized_resize_cpu_` in deterministic mode (it may expose uninitialised
    memory, which the quantised kernels overwrite); the CPU int8 kernels themselves have no
    nondeterministic reductions. The previous mode is restored on exit.
    """
    was_on, was_warn_only = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    if was_on:
        torch.use_deterministic_algorithms(False)
    try:
        yield
    finally:
        if was_on:
            torch.use_deterministic_algorithms(True, warn_only=was_warn_only)


class DeployedModel(nn.Module):
    """Inference-only MF-JLE / ResNet-18: same forward contract, logits and probabilities in fp32."""

    def __init__(
        self,
        model: nn.Module,
        global_net: nn.Module,
        local_nets: nn.Module | None,
        method: str,
        dtype: torch.dtype = torch.float32,
        local_dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.method = method
        self.dtype = dtype
        self.local_dtype = local_dtype or dtype
        self.global_net = global_net
        self.local_nets = local_nets
        self.global_size = model.global_size
        self.activation = model.activation
        self.is_mfjle = isinstance(model, MFJLE)
        if self.is_mfjle:
            self.local_size = model.local_size
            self.crop_fraction = model.crop_fraction
            self._crop_rule = type(
                model
            ).crops  # the trained class's rule (MF-JLE's landmark crops; the whole face for the locality control)
            self.register_buffer("fusion_weights", model.fusion_weights.clone(), persistent=False)

    def crops(self, images: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        """The five local inputs, through the trained model's own crop rule (NaN/inf landmarks give zero crops)."""
        return self._crop_rule(self, images, landmarks)

    def forward(self, images: torch.Tensor, landmarks: torch.Tensor | None = None) -> ModelOutput:
        """Same contract as the trained model's forward; no autograd."""
        if self.method in ("int8", "mixed"):
            with _quantized_ops_allowed():
                return self._forward(images, landmarks)
        return self._forward(images, landmarks)

    @torch.inference_mode()
    def _forward(self, images: torch.Tensor, landmarks: torch.Tensor | None = None) -> ModelOutput:
        images = images.float().contiguous(memory_format=torch.channels_last)
        x = resize_global(images, self.global_size)
        global_logits = self.global_net(x.to(self.dtype)).float()
        if not self.is_mfjle:
            return ModelOutput(global_logits, None, self.activation)
        crops = self.crops(images, landmarks).contiguous()  # cut in fp32 from the fp32 image
        local_logits = self.local_nets(crops.to(self.local_dtype)).float()
        return ModelOutput(global_logits, local_logits, self.activation, self.fusion_weights)


class _ChannelsLast(nn.Module):
    """Run a (quantised) ResNet on a channels_last copy of its 4-D input."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.contiguous(memory_format=torch.channels_last))


class _LoopOf(nn.Module):
    """Five (quantised) nets over crops (B,5,C,S,S) -> (B,5,L)."""

    def __init__(self, nets: Iterable[nn.Module]) -> None:
        super().__init__()
        self.nets = nn.ModuleList(nets)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        return torch.stack(
            [net(crops[:, i].contiguous(memory_format=torch.channels_last)) for i, net in enumerate(self.nets)], dim=1
        )


def _calibration_batches(model: nn.Module, calibration, source_size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Normalised (images, landmarks) batches for the int8 observers; random faces only as a last resort."""
    if calibration is not None:
        batches = [(torch.as_tensor(x).float(), torch.as_tensor(lm).float()) for x, lm in calibration]
        if batches:
            return batches
    warnings.warn("int8 without calibration data: observers see random noise; use only for timing", stacklevel=3)

    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 3, source_size, source_size, generator=g)
    lm = torch.as_tensor(TEMPLATE * source_size).expand(16, 5, 2).clone()
    return [(x, lm)]


def int8_qconfig_mapping(full_range: bool = False, float_modules: Sequence[str] = ()):
    """x86 qconfig: per-channel int8 weights, histogram-calibrated uint8 activations.

    `full_range`: 8-bit activations instead of the x86 default's 7 (`reduce_range`, which keeps
    u8*s8 pair sums inside int16 for kernels without VNNI). Off: measured here it gave a 3x larger
    worst-case logit error than 7-bit (0.99 vs 0.31 on the deploy checkpoint), a sign that some
    kernel saturates.
    `float_modules`: submodule names left in float (e.g. the first convolution).
    """
    if full_range:
        mapping = QConfigMapping().set_global(
            QConfig(
                activation=HistogramObserver.with_args(reduce_range=False), weight=default_per_channel_weight_observer
            )
        )
    else:
        mapping = get_default_qconfig_mapping("x86")
    for name in float_modules:
        mapping = mapping.set_module_name(name, None)
    return mapping


def _quantise(
    net: nn.Module, inputs: Sequence[torch.Tensor], full_range: bool = False, float_modules: Sequence[str] = ()
) -> nn.Module:
    """FX-mode post-training static int8 quantisation of one ResNet-18, calibrated on `inputs`."""
    torch.backends.quantized.engine = "x86"
    net = copy.deepcopy(net).eval().to(memory_format=torch.contiguous_format)
    with warnings.catch_warnings(), _quantized_ops_allowed():
        warnings.simplefilter("ignore")
        prepared = prepare_fx(net, int8_qconfig_mapping(full_range, float_modules), (inputs[0][:1],))
        with torch.no_grad():
            for x in inputs:
                prepared(x)
        return convert_fx(prepared)


def optimize_for_cpu(
    model: nn.Module,
    method: str = DEFAULT_METHOD,
    calibration: Iterable[tuple[torch.Tensor, torch.Tensor]] | None = None,
    compile: bool = False,
) -> DeployedModel:
    """An inference-only copy of `model` (ResNet18Baseline or MFJLE) for the CPU.

    `calibration`: (images, landmarks) batches, normalised like training inputs (int8 only; a few
    hundred training images are enough). `compile=True` wraps fp32/bf16 nets in `torch.compile`.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    if not isinstance(model, (MFJLE, ResNet18Baseline)):
        raise TypeError(f"optimize_for_cpu expects an MFJLE or ResNet18Baseline, got {type(model).__name__}")
    model = copy.deepcopy(model).cpu().eval()
    is_mfjle = isinstance(model, MFJLE)
    if method in ("fp32", "bf16"):
        dtype = torch.float32 if method == "fp32" else torch.bfloat16
        global_net = fold_resnet_bn(model.global_net).to(dtype).to(memory_format=torch.channels_last)
        local_nets = None
        if is_mfjle:
            local_nets = fold_resnet_bn_all(model.local_nets).to(dtype).to(memory_format=torch.channels_last)
        if compile:
            global_net = torch.compile(global_net)
            local_nets = torch.compile(local_nets) if local_nets is not None else None
        return DeployedModel(model, global_net, local_nets, method, dtype).eval()

    # int8: quantise each ResNet-18 on its own inputs (the global image; each landmark's crops).
    if is_mfjle:
        set_local_impl(model, "loop")  # a no-op when already in the loop form
    batches = _calibration_batches(model, calibration, model.global_size)
    if method == "mixed":
        global_net = fold_resnet_bn(model.global_net).to(torch.bfloat16).to(memory_format=torch.channels_last)
        global_dtype = torch.bfloat16
    else:
        g_inputs = [resize_global(x, model.global_size) for x, _ in batches]
        global_net = _ChannelsLast(_quantise(model.global_net, g_inputs))
        global_dtype = torch.float32
    local_nets = None
    if is_mfjle:
        crops = [model.crops(x, lm) for x, lm in batches]
        local_nets = _LoopOf(
            _quantise(net, [c[:, i].contiguous() for c in crops]) for i, net in enumerate(model.local_nets.nets)
        )
    return DeployedModel(model, global_net, local_nets, method, global_dtype, torch.float32).eval()


def fold_resnet_bn_all(local_nets: nn.Module) -> nn.Module:
    """Fold BN in the local nets, whether loop (five ResNets) or fused (one grouped ResNet)."""
    if hasattr(local_nets, "nets"):
        for net in local_nets.nets:
            fold_resnet_bn(net)
        return local_nets
    return fold_resnet_bn(local_nets)
