"""benchmarks/bench_profile.py: the operator categories of a training-step profile, on hand-made profiler events.

Logic only: which category each event lands in and what the sums and ratios are; no timing is asserted.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from bench_profile import CATEGORIES, LOSS_SCOPE, add_shares_and_ratios, aggregate, categorise  # noqa: E402


@dataclass
class Event:
    """The three fields of a profiler FunctionEvent that the categorisation reads."""

    name: str
    self_cpu_time_total: float = 0.0
    cpu_parent: Event | None = None


def chain(*names: str, self_us: float = 1.0) -> Event:
    """The innermost event of a call chain, outermost name first."""
    parent = None
    for name in names:
        parent = Event(name, 0.0, parent)
    parent.self_cpu_time_total = self_us
    return parent


@pytest.mark.parametrize(
    ("names", "category"),
    [
        (("aten::conv2d", "aten::convolution", "aten::_convolution", "aten::mkldnn_convolution"), "conv_fwd"),
        (
            (
                "autograd::engine::evaluate_function: ConvolutionBackward0",
                "ConvolutionBackward0",
                "aten::convolution_backward",
            ),
            "conv_bwd",
        ),
        (("aten::batch_norm", "aten::_batch_norm_impl_index", "aten::native_batch_norm"), "bn_fwd"),
        (
            ("autograd::engine::evaluate_function: NativeBatchNormBackward0", "aten::native_batch_norm_backward"),
            "bn_bwd",
        ),
        (("aten::relu_", "aten::clamp_min_"), "relu_pool_add"),
        (
            ("autograd::engine::evaluate_function: ReluBackward0", "ReluBackward0", "aten::threshold_backward"),
            "relu_pool_add",
        ),
        (("aten::max_pool2d", "aten::max_pool2d_with_indices"), "relu_pool_add"),
        (("aten::adaptive_avg_pool2d", "aten::mean"), "relu_pool_add"),  # a generic op takes its caller's category
        (("aten::add",), "relu_pool_add"),
        (("aten::linear", "aten::addmm"), "head"),
        (("aten::einsum", "aten::bmm"), "head"),
        (("torchvision::roi_align",), "crops"),
        (("aten::upsample_bilinear2d", "aten::_upsample_bilinear2d_aa"), "crops"),
        (("aten::nan_to_num",), "crops"),
        (("autograd::engine::evaluate_function: RoiAlignBackward0", "torchvision::_roi_align_backward"), "crops_bwd"),
        (("aten::grid_sampler_2d_backward",), "crops_bwd"),
        ((LOSS_SCOPE, "aten::binary_cross_entropy_with_logits", "aten::mul"), "loss"),
        ((LOSS_SCOPE, "aten::stack"), "loss"),  # generic ops inside the loss scope
        (("autograd::engine::evaluate_function: BinaryCrossEntropyWithLogitsBackward0", "aten::mul"), "loss"),
        (("Optimizer.step#Adam.step", "aten::_fused_adam_"), "optimizer"),
        (("Optimizer.zero_grad#Adam.zero_grad",), "optimizer"),
        (("aten::contiguous", "aten::clone", "aten::copy_"), "layout_copies"),
        (("aten::to", "aten::_to_copy", "aten::copy_"), "layout_copies"),
        # A copy keeps its category inside a layer: the weight reorder of a convolution backward is a copy.
        (("autograd::engine::evaluate_function: ConvolutionBackward0", "aten::contiguous"), "layout_copies"),
        # The NaN fill of deterministic mode, right under an allocation, wherever the allocation is.
        (("aten::batch_norm", "aten::native_batch_norm", "aten::empty_like", "aten::empty", "aten::fill_"), "nan_fill"),
        (("aten::empty", "aten::fill_"), "nan_fill"),
        # A fill that is not under an allocation is not that fill: zeros() is work of its caller.
        (("Optimizer.zero_grad#Adam.zero_grad", "aten::zeros", "aten::zero_", "aten::fill_"), "optimizer"),
        (("aten::stack",), "other"),
        (("aten::empty",), "other"),
        (("autograd::engine::evaluate_function: torch::autograd::AccumulateGrad",), "other"),
    ],
)
def test_categorise(names: tuple[str, ...], category: str) -> None:
    assert categorise(chain(*names)) == category


def test_outermost_caller_wins_for_generic_ops() -> None:
    # An addmm (head) called inside the loss scope counts as loss: the outermost recognised caller decides.
    assert categorise(chain(LOSS_SCOPE, "aten::addmm")) == "loss"
    # ... but an unrecognised outer scope does not hide a recognised inner one.
    assert categorise(chain("some::scope", "aten::convolution_backward")) == "conv_bwd"


def test_aggregate_sums_self_times_per_category() -> None:
    conv = Event("aten::conv2d", 2.0)
    events = [
        conv,
        Event("aten::mkldnn_convolution", 30.0, conv),
        Event("aten::convolution_backward", 50.0),
        Event("aten::fill_", 7.0, Event("aten::empty", 1.0)),
        Event("aten::copy_", 4.0),
        Event("aten::stack", 3.0),
    ]
    totals = aggregate(events)
    assert list(totals) == list(CATEGORIES)
    assert totals["conv_fwd"] == 32.0
    assert totals["conv_bwd"] == 50.0
    assert totals["nan_fill"] == 7.0
    assert totals["layout_copies"] == 4.0
    assert totals["other"] == 3.0
    assert sum(totals.values()) == sum(e.self_cpu_time_total for e in events)


def test_shares_and_ratios() -> None:
    def model(conv: float, bn: float, wall: float) -> dict:
        ms = dict.fromkeys(CATEGORIES, 0.0)
        ms.update(conv_fwd=conv, bn_fwd=bn)
        return {"ms_per_step": ms, "wall_ms_per_step": wall, "outside_ops_ms": wall - conv - bn}

    prof = {
        "resnet18": model(30.0, 10.0, 50.0),
        "mfjle_naive": model(60.0, 40.0, 120.0),
        "mfjle_fused": model(90, 10, 100),
    }
    add_shares_and_ratios(prof)
    assert prof["resnet18"]["share"]["conv_fwd"] == pytest.approx(0.75)
    assert prof["mfjle_naive"]["ratio_to_resnet18"]["conv_fwd"] == pytest.approx(2.0)
    assert prof["mfjle_naive"]["ratio_to_resnet18"]["bn_fwd"] == pytest.approx(4.0)
    assert prof["mfjle_naive"]["ratio_to_resnet18"]["loss"] is None  # nothing to divide by
    assert prof["mfjle_fused"]["step_ratio_to_resnet18"] == pytest.approx(2.0)
