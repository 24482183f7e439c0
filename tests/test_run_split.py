"""`training.run_split`, the one forward pass over a split: its outputs, one fusion, and the validation loss from its
logits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mfjle_lib.evaluation.outputs as outputs_module
import mfjle_lib.method.fusion as fusion_module
import mfjle_lib.method.models as models_module
from mfjle_lib.evaluation.outputs import with_probabilities
from mfjle_lib.method.losses import joint_loss
from mfjle_lib.method.metrics import multilabel_report
from mfjle_lib.method.models import ModelOutput
from mfjle_lib.training.batches import collect_outputs, load_data, run_split
from mfjle_lib.training.config import make_config, model_from_config
from mfjle_lib.training.trainer import validate


@pytest.fixture(scope="module")
def cfg():
    return make_config(
        "fast",
        dataset="synthetic",
        num_images=40,
        source_size=32,
        global_size=32,
        local_size=16,
        device="cpu",
        fusion_weights=(1.0, 0.5, 0.0, 0.2, 0.0, 1.0),
    )


@pytest.fixture(scope="module")
def data(cfg, data_dir):
    return load_data(cfg, show_progress=False)


@pytest.fixture(scope="module")
def model(cfg):
    torch.manual_seed(0)
    return model_from_config(cfg, torch.device("cpu")).eval()


def test_run_split_is_the_saved_outputs_form(model, data, cfg) -> None:
    out = run_split(model, data, "val", cfg.activation, cfg.effective_fusion_weights())
    idx = data.splits["val"]
    expected = with_probabilities(
        collect_outputs(model, data, idx),
        data.prepared.labels[idx],
        [data.ids[i] for i in idx],
        cfg.activation,
        cfg.effective_fusion_weights(),
    )
    assert set(out) == set(expected)
    for key in out:
        np.testing.assert_array_equal(out[key], expected[key])
    assert out["global_logits"].dtype == np.float64 and out["module_probs"].shape == (len(idx), 6, 6)
    assert list(out["ids"]) == [data.ids[i] for i in idx]


def test_fusion_runs_once_per_evaluation(model, data, cfg, monkeypatch) -> None:
    """The model leaves `.probs` unread, so only the float64 fusion of the outputs runs (not one per batch as well)."""
    calls = []
    fuse = fusion_module.fuse

    def counting(probs, weights):
        calls.append(probs.dtype)
        return fuse(probs, weights)

    monkeypatch.setattr(fusion_module, "fuse", counting)
    monkeypatch.setattr(models_module, "fuse", counting)
    monkeypatch.setattr(outputs_module, "fuse", counting)
    returned = []
    hook = model.register_forward_hook(lambda _module, _args, out: returned.append(out))
    try:
        run_split(model, data, "test", cfg.activation, cfg.effective_fusion_weights(), batch_size=4)
    finally:
        hook.remove()
    assert len(returned) == -(-len(data.splits["test"]) // 4)
    assert not any("probs" in vars(out) for out in returned)  # no batch's fused probabilities were computed
    assert calls == [torch.float64]


def test_model_output_fuses_when_read(model, data) -> None:
    x, lm = torch.randn(2, 3, 32, 32), data.landmarks[:2]
    with torch.no_grad():
        out = model(x, lm)
    expected = fusion_module.fuse(fusion_module.module_probs(out.global_logits, out.local_logits), model.fusion_weights)
    torch.testing.assert_close(out.probs, expected, rtol=0, atol=0)
    plain = ModelOutput(out.global_logits, out.local_logits)  # the defaults: sigmoid, the paper's weights
    torch.testing.assert_close(
        plain.probs,
        fusion_module.fuse(
            fusion_module.module_probs(out.global_logits, out.local_logits), fusion_module.paper_fusion_weights()
        ),
    )


def test_validation_loss_is_the_joint_loss_of_its_logits(model, data, cfg, tmp_path) -> None:
    val = validate(model, data, cfg, torch.device("cpu"), 1, tmp_path / "checkpoint.pt")
    again = run_split(model, data, "val", cfg.activation, cfg.effective_fusion_weights())
    for key in again:
        np.testing.assert_array_equal(val.outputs[key], again[key])
    logits = ModelOutput(torch.from_numpy(again["global_logits"]), torch.from_numpy(again["local_logits"]))
    expected = joint_loss(logits, torch.from_numpy(again["labels"]).double(), cfg.lambdas, cfg.loss)[0]
    assert val.loss == float(expected)
    assert val.report == multilabel_report(again["labels"], again["fused_probs"])
    assert val.global_micro_f1 == multilabel_report(again["labels"], again["module_probs"][:, 0])["micro_f1"]
