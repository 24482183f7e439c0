"""The CPU deploy paths give (nearly) the fp32 model's probabilities, with the same output contract."""

from __future__ import annotations

import copy

import pytest
import torch

from mfjle_lib.constants import TEMPLATE
from mfjle_lib.models.registry import build_model
from mfjle_lib.perf.deploy import DeployedModel, fold_resnet_bn, optimize_for_cpu
from mfjle_lib.perf.fused_locals import set_local_impl
from mfjle_lib.perf.inference_path import NEEDS_CALIBRATION, PRECISION_CHOICES, build_path

R = 64


@pytest.fixture(scope="module")
def trained_like():
    """A small MF-JLE whose BatchNorm statistics are not the defaults, and a batch of faces."""
    torch.manual_seed(0)
    model = build_model("mfjle", global_size=R, local_size=32)  # loop local nets
    g = torch.Generator().manual_seed(1)
    x = torch.randn(24, 3, R, R, generator=g)
    lm = torch.as_tensor(TEMPLATE * R).expand(24, 5, 2) + torch.randn(24, 5, 2, generator=g)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(x, lm)
    return model.eval(), x, lm


def _probs(m, x, lm):
    with torch.inference_mode():
        return m(x, lm).probs


def test_fold_bn_is_exact() -> None:
    torch.manual_seed(0)
    net = build_model("resnet18", global_size=32).global_net
    net.train()
    with torch.no_grad():
        net(torch.randn(8, 3, 32, 32))
    net.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = net(x)
        folded = fold_resnet_bn(net)
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
        assert torch.allclose(folded(x), ref, rtol=1e-4, atol=1e-4)


@pytest.mark.slow  # int8 calibration and tracing of six nets
@pytest.mark.parametrize("method,tol", [("fp32", 1e-4), ("bf16", 0.03), ("mixed", 0.03), ("int8", 0.05)])
def test_deploy_matches_fp32(trained_like, method: str, tol: float) -> None:
    model, x, lm = trained_like
    ref = _probs(model, x[:8], lm[:8])
    deployed = optimize_for_cpu(model, method, calibration=[(x[8:], lm[8:])])
    assert isinstance(deployed, DeployedModel)
    out = deployed(x[:8], lm[:8])
    assert out.probs.dtype == torch.float32 and out.probs.shape == (8, 6)
    assert out.local_logits.shape == (8, 5, 6)
    assert (out.probs - ref).abs().max().item() <= tol
    # the input model is untouched (still a trainable fp32 model with BatchNorm)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert torch.equal(_probs(model, x[:8], lm[:8]), ref)


@pytest.mark.slow
def test_deploy_fused_and_baseline(trained_like) -> None:
    model, x, lm = trained_like
    ref = _probs(model, x[:4], lm[:4])
    fused = build_model("mfjle", global_size=R, local_size=32)
    fused.load_state_dict(model.state_dict())
    set_local_impl(fused, "fused")
    fused.eval()
    assert (_probs(optimize_for_cpu(fused, "fp32"), x[:4], lm[:4]) - ref).abs().max() <= 1e-4
    base = build_model("resnet18", global_size=R).eval()
    out = optimize_for_cpu(base, "fp32")(x[:4])
    assert out.local_logits is None and out.probs.shape == (4, 6)
    with pytest.raises(ValueError, match="unknown method"):
        optimize_for_cpu(model, "fp8")


@pytest.mark.slow
def test_int8_quantises_a_model_in_its_planned_layout(trained_like) -> None:
    """The stage layout hooks must not break torch.fx tracing (int8 quantisation traces each net)."""
    from mfjle_lib.perf.memory_format import plan_memory_format

    model, x, lm = trained_like
    planned = plan_memory_format(copy.deepcopy(model), "cpu")
    assert planned.local_nets.nets[0].layer4[0].conv1.weight.is_contiguous()  # 1x1 maps: NCHW
    deployed = optimize_for_cpu(planned, "int8", calibration=[(x[8:], lm[8:])])
    assert (deployed(x[:8], lm[:8]).probs - _probs(model, x[:8], lm[:8])).abs().max().item() <= 0.05


@pytest.mark.slow
def test_int8_runs_after_seed_everything_and_restores_determinism(trained_like) -> None:
    """Training switches on deterministic algorithms; int8 (quantized resize) must still build and run."""
    from mfjle_lib.runtime import seed_everything

    model, x, lm = trained_like
    before = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    seed_everything(0)
    try:
        deployed = optimize_for_cpu(model, "int8", calibration=[(x[8:], lm[8:])])
        assert deployed(x[:8], lm[:8]).probs.shape == (8, 6)
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])


# Every path in the loop form; the fused form too where it is kept (int8 and mixed quantise the loop form).
PATH_FORMS = [(p, "loop") for p in PRECISION_CHOICES if p != "auto"] + [
    (p, "fused") for p in PRECISION_CHOICES if p not in ("auto", *NEEDS_CALIBRATION)
]


@pytest.mark.parametrize("method,impl", PATH_FORMS)
def test_every_inference_path_survives_nan_and_inf_landmarks(trained_like, method: str, impl: str) -> None:
    """roi_align segfaults on NaN/inf boxes: every path (`--precision` choice, the eager reference included) crops
    through the guarded function."""
    model, x, lm = trained_like
    model = copy.deepcopy(model)
    if impl == "fused":
        set_local_impl(model, "fused")
    bad = lm[:4].clone()
    bad[0, 0] = float("nan")
    bad[1, 2] = float("inf")
    bad[2, 4] = float("-inf")
    bad[3] = float("nan")
    deployed = build_path(model.eval(), method, calibration=[(x[:8], lm[:8])] if method in NEEDS_CALIBRATION else None)
    out = _probs(deployed, x[:4], bad)
    assert out.shape == (4, 6) and torch.isfinite(out).all()
    crops = deployed.crops(x[:4], bad)
    assert torch.all(crops[3] == 0) and torch.all(crops[0, 0] == 0)  # points sent far outside: zero crops
    assert torch.equal(crops, model.crops(x[:4], bad))  # the model's own crops
