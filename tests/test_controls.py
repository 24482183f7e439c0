"""The locality control: six ResNet-18s on the whole face, trained and fused like MF-JLE."""
from __future__ import annotations

import torch

from mfjle_lib.models import MFJLE, build_model, resize_global
from mfjle_lib.models.build import model_spec
from mfjle_lib.training import make_config
from mfjle_lib.training.run import train


def test_wholeface_nets_see_the_whole_face_not_the_landmarks() -> None:
    torch.manual_seed(0)
    model = build_model("wholeface", global_size=32, local_size=24, crop_fraction=0.25).eval()
    images = torch.rand(2, 3, 48, 48)
    landmarks = torch.rand(2, 5, 2) * 48
    crops = model.crops(images, landmarks)
    assert crops.shape == (2, 5, 3, 24, 24)
    for i in range(5):  # every local input is the whole face at S_l
        torch.testing.assert_close(crops[:, i], resize_global(images, 24))
    # The landmarks do not matter (not even NaN ones), and the six nets are MF-JLE's.
    bad = torch.full_like(landmarks, float("nan"))
    with torch.no_grad():
        torch.testing.assert_close(model(images, landmarks).probs, model(images, bad).probs)
    assert isinstance(model, MFJLE) and len(model_spec("wholeface").nets(model)) == 6


def test_mfjle_and_wholeface_differ_only_in_the_crops() -> None:
    torch.manual_seed(0)
    a = build_model("mfjle", global_size=32, local_size=16)
    torch.manual_seed(0)
    b = build_model("wholeface", global_size=32, local_size=16)
    for (name_a, p_a), (name_b, p_b) in zip(a.state_dict().items(), b.state_dict().items()):
        assert name_a == name_b
        torch.testing.assert_close(p_a, p_b)


def test_wholeface_trains_through_the_one_training_path(tmp_path) -> None:
    cfg = make_config("fast", model="wholeface", num_images=48, epochs=1, batch_size=16, source_size=32,
                      global_size=32, local_size=32, device="cpu")
    result = train(cfg, tmp_path / "run", show_progress=False)
    assert 0.0 <= result.metrics["micro_f1"] <= 1.0
    assert len(result.metrics["fusion_weights"]) == 6
