"""Models (build_model contract, same init as the baseline) and losses (Eq. 1, Eq. 2, softmax CE)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mfjle_lib.errors import ConfigError
from mfjle_lib.method.fusion import expand_lambdas as check_lambdas
from mfjle_lib.method.fusion import fuse, module_probs
from mfjle_lib.method.losses import joint_loss, softmax_ce_loss
from mfjle_lib.method.models import ModelOutput
from mfjle_lib.models.registry import build_model


def _batch(b: int = 3, r: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, 3, r, r, generator=g)
    lm = torch.tensor([[0.355, 0.415], [0.645, 0.415], [0.5, 0.575], [0.385, 0.735], [0.615, 0.735]]) * r
    y = (torch.rand(b, 6, generator=g) > 0.6).float()
    return x, lm.expand(b, 5, 2).clone(), y


@pytest.mark.parametrize("name", ["resnet18", "mfjle"])
def test_build_model_contract(name: str) -> None:
    model = build_model(name, num_labels=6, global_size=32, **({"local_size": 16} if name == "mfjle" else {}))
    assert isinstance(model, torch.nn.Module)
    x, lm, _ = _batch()
    out = model(x, lm)
    assert out.probs.shape == (3, 6)
    assert torch.all((out.probs >= 0) & (out.probs <= 1))
    assert (out.local_logits is None) == (name == "resnet18")


def test_unknown_model_and_option_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="unknown model"):
        build_model("vgg")
    with pytest.raises(ConfigError, match="unknown option"):
        build_model("mfjle", crop_fractoin=0.3)
    with pytest.raises(ConfigError, match="fusion weights"):
        build_model("mfjle", fusion_weights=(1, 0.01))


def test_mfjle_global_module_starts_like_the_baseline() -> None:
    torch.manual_seed(7)
    base = build_model("resnet18", global_size=32)
    torch.manual_seed(7)
    ens = build_model("mfjle", global_size=32, local_size=16)
    for (k1, v1), (k2, v2) in zip(base.global_net.state_dict().items(), ens.global_net.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)


@pytest.mark.slow  # deterministic Adam steps of seven ResNet-18s
def test_mfjle_global_module_trains_like_the_baseline_on_cpu(request: pytest.FixtureRequest) -> None:
    """Same seed, same batches: the global logits stay bitwise equal after a few Adam steps."""
    before = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    request.addfinalizer(
        lambda: torch.use_deterministic_algorithms(before[0], warn_only=before[1])
    )  # process-wide switch
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(3)
    base = build_model("resnet18", global_size=32)
    torch.manual_seed(3)
    ens = build_model("mfjle", global_size=32, local_size=16)
    opt_b = torch.optim.Adam(base.parameters(), lr=1e-3)
    opt_e = torch.optim.Adam(ens.parameters(), lr=1e-3)
    for step in range(3):
        x, lm, y = _batch(seed=step)
        for model, opt in ((base, opt_b), (ens, opt_e)):
            out = model(x, lm)
            loss, _, _ = joint_loss(out, y, (0.01,) * 5)
            opt.zero_grad()
            loss.backward()
            opt.step()
    base.eval(), ens.eval()
    x, lm, _ = _batch(seed=99)
    assert torch.equal(base(x, lm).global_logits, ens(x, lm).global_logits)


def test_fused_probs_are_the_weighted_mean() -> None:
    g = torch.tensor([[0.0, 2.0, -1.0, 0.5, 3.0, -2.0]])
    loc = torch.arange(30, dtype=torch.float32).reshape(1, 5, 6) / 10 - 1.5
    w = torch.tensor([1.0, 0.01, 0.02, 0.03, 0.04, 0.05])
    fused = fuse(module_probs(g, loc, "sigmoid"), w)
    by_hand = (torch.sigmoid(g) * 1.0 + sum(w[i + 1] * torch.sigmoid(loc[:, i]) for i in range(5))) / w.sum()
    torch.testing.assert_close(fused, by_hand)


def test_model_probs_use_the_fusion_weights() -> None:
    torch.manual_seed(0)
    m = build_model("mfjle", global_size=32, local_size=16, fusion_weights=(1, 0, 0, 0, 0, 0)).eval()
    x, lm, _ = _batch()
    out = m(x, lm)
    torch.testing.assert_close(out.probs, torch.sigmoid(out.global_logits))
    m.set_fusion_weights((0, 1, 0, 0, 0, 0))
    torch.testing.assert_close(m(x, lm).probs, torch.sigmoid(out.local_logits[:, 0]))


def test_joint_loss_with_zero_lambda_is_the_global_bce() -> None:
    x, lm, y = _batch()
    torch.manual_seed(0)
    out = build_model("mfjle", global_size=32, local_size=16)(x, lm)
    total, g, local = joint_loss(out, y, (0.0,) * 5)
    torch.testing.assert_close(total, F.binary_cross_entropy_with_logits(out.global_logits, y))
    assert local is not None and local.shape == (5,)


def test_joint_loss_is_eq1() -> None:
    g = torch.randn(4, 6)
    loc = torch.randn(4, 5, 6)
    y = (torch.rand(4, 6) > 0.5).float()
    lam = (0.1, 0.2, 0.3, 0.4, 0.5)
    total, _, _ = joint_loss(ModelOutput(g, loc), y, lam)
    expected = F.binary_cross_entropy_with_logits(g, y) + sum(
        w * F.binary_cross_entropy_with_logits(loc[:, i], y) for i, w in enumerate(lam)
    )
    torch.testing.assert_close(total, expected)


def test_bce_matches_the_corrected_eq2_by_hand() -> None:
    z = torch.tensor([[2.0, -1.0, 0.0]])
    y = torch.tensor([[1.0, 0.0, 1.0]])
    p = torch.sigmoid(z)
    by_hand = -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()
    torch.testing.assert_close(F.binary_cross_entropy_with_logits(z, y), by_hand)


def test_softmax_ce_masks_label_free_rows_and_normalises_targets() -> None:
    z = torch.tensor([[1.0, 0.0, -1.0], [5.0, 5.0, 5.0]], requires_grad=True)
    y = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    loss = softmax_ce_loss(z, y)
    logp = torch.log_softmax(z[0], 0)
    torch.testing.assert_close(loss, -(0.5 * logp[0] + 0.5 * logp[1]))
    loss.backward()
    assert torch.all(z.grad[1] == 0)
    empty = softmax_ce_loss(z, torch.zeros_like(y))
    assert float(empty.detach()) == 0.0 and torch.isfinite(empty)


def test_lambdas_validation() -> None:
    assert check_lambdas(0.01) == (0.01,) * 5
    with pytest.raises(ConfigError, match="five|5"):
        check_lambdas((0.1, 0.2))
    with pytest.raises(ConfigError):
        check_lambdas((-1, 0, 0, 0, 0))


def test_bad_weights_file_is_an_error_not_a_fallback(tmp_path) -> None:
    bad = tmp_path / "weights.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="weights.pth"):
        build_model("resnet18", global_size=32, weights=bad)
    torch.save({"conv1.weight": torch.zeros(3)}, bad)  # a state dict, but not ResNet-18's
    with pytest.raises(ConfigError, match="not ResNet-18 weights"):
        build_model("resnet18", global_size=32, weights=bad)


def test_local_weights_file_loads_into_every_module(tmp_path) -> None:
    torch.manual_seed(1)
    src = build_model("resnet18", global_size=32).global_net.state_dict()
    path = tmp_path / "r18.pth"
    torch.save(src, path)
    m = build_model("mfjle", global_size=32, local_size=16, weights=path)
    assert m.init_source.startswith(f"file:{path} sha256:")
    for net in [m.global_net, *m.local_nets.nets]:
        assert torch.equal(net.conv1.weight, src["conv1.weight"])
