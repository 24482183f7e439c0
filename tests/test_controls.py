"""The locality control: six ResNet-18s on the whole face, trained and fused like MF-JLE."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from mfjle_lib.course import controls  # noqa: E402
from mfjle_lib.course.plots import plot_gain_split  # noqa: E402
from mfjle_lib.evaluation.outputs import save_outputs, with_probabilities  # noqa: E402
from mfjle_lib.method import MFJLE, paper_fusion_weights, resize_global  # noqa: E402
from mfjle_lib.models import build_model  # noqa: E402
from mfjle_lib.models.registry import model_spec  # noqa: E402
from mfjle_lib.training import make_config  # noqa: E402
from mfjle_lib.training.trainer import train  # noqa: E402


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
    cfg = make_config(
        "fast",
        model="wholeface",
        num_images=48,
        epochs=1,
        batch_size=16,
        source_size=32,
        global_size=32,
        local_size=32,
        device="cpu",
    )
    result = train(cfg, tmp_path / "run", show_progress=False)
    assert 0.0 <= result.metrics["micro_f1"] <= 1.0
    assert len(result.metrics["fusion_weights"]) == 6
    assert result.metrics["cpu_threads"] == torch.get_num_threads()  # recorded: the thread count changes the rounding


def _fake_run(tmp: Path, model: str, seed: int, f1: float, local_size: int = 32) -> SimpleNamespace:
    """A finished run as the lesson sees it: metrics, config, and val/test outputs on disk."""
    rng = np.random.default_rng(seed)
    out = tmp / f"{model}_{local_size}_{seed}"
    out.mkdir()
    for split in ("val", "test"):
        labels = (rng.random((40, 6)) < 0.3).astype(np.float32)
        logits = {"global_logits": (labels * 4 - 2 + rng.normal(0, 1.5, labels.shape)).astype(np.float64)}
        if model != "resnet18":
            logits["local_logits"] = (labels[:, None] * 2 - 1 + rng.normal(0, 2, (40, 5, 6))).astype(np.float64)
        weights = (1.0,) if model == "resnet18" else paper_fusion_weights()
        save_outputs(
            out / f"{split}_outputs.npz",
            with_probabilities(logits, labels, [str(i) for i in range(40)], "sigmoid", weights),
        )
    config = SimpleNamespace(seed=seed, model=model, local_size=local_size, global_size=64)
    return SimpleNamespace(out_dir=out, metrics={"micro_f1": f1, "average_precision": f1 + 0.1}, config=config)


def test_gain_split_adds_up_at_both_rules_and_val_choice_reads_only_saved_outputs(tmp_path: Path) -> None:
    f1 = {
        "ResNet-18": [0.70, 0.72, 0.71],
        "6 × ResNet-18, whole face": [0.73, 0.74, 0.72],
        "MF-JLE, crops at the global's density": [0.72, 0.75, 0.74],
        "MF-JLE": [0.76, 0.75, 0.78],
        "ResNet-18 at the locals' density": [0.75, 0.74, 0.79],
    }
    models = {
        "ResNet-18": "resnet18",
        "6 × ResNet-18, whole face": "wholeface",
        "ResNet-18 at the locals' density": "resnet18",
    }
    folders = {arm: tmp_path / f"arm{i}" for i, arm in enumerate(f1)}
    for folder in folders.values():
        folder.mkdir()
    results = {
        arm: [
            _fake_run(folders[arm], models.get(arm, "mfjle"), s, v, 16 if "global's density" in arm else 32)
            for s, v in enumerate(vals)
        ]
        for arm, vals in f1.items()
    }
    assert list(
        controls.control_overrides({"source_size": 128, "global_size": 64, "local_size": 32, "crop_fraction": 0.25})
    ) == list(f1)
    for rule in controls.RULES:
        parts = controls.gain_parts(results, rule=rule)
        np.testing.assert_allclose(parts[["ensembling", "locality", "resolution"]].sum(axis=1), parts[controls.TOTAL])
        np.testing.assert_allclose(
            parts["resolution alone (one net)"] + parts["MF-JLE over the full-resolution ResNet-18"],
            parts[controls.TOTAL],
        )
    parts = controls.gain_parts(results)
    np.testing.assert_allclose(parts["ensembling"], [0.03, 0.02, 0.01], atol=1e-12)
    np.testing.assert_allclose(parts["MF-JLE over the full-resolution ResNet-18"], [0.01, 0.01, -0.01], atol=1e-12)
    split = controls.gain_split(results)
    assert split.loc["resolution", "seeds above 0"] == "2/3"
    assert abs(split.loc[controls.TOTAL, "mean"] - np.mean([0.06, 0.03, 0.07])) < 1e-12
    assert "resolution +0.027 ± 0.023 (2/3 seeds above 0)" in controls.split_sentence(split, "paper")
    table = controls.arm_table(results)
    assert table.loc["ResNet-18", "S_l"] is None or np.isnan(table.loc["ResNet-18", "S_l"])
    assert {"micro_f1 (paper)", "micro_f1 (val)", "average_precision (val) std"} <= set(table.columns)
    titled = controls.arm_table({arm: runs[:1] for arm, runs in results.items()}, titles=True)  # one seed each
    assert {"Micro-F1 ↑, paper's rule", "AP ↑, equal care, std"} <= set(titled.columns)
    assert titled["Micro-F1 ↑, paper's rule, std"].isna().all()  # one seed has no spread, not 0
    gains = controls.fusion_gain_table(results["ResNet-18"], results["MF-JLE"])
    assert list(gains.index) == [0, 1, 2] and gains["MF-JLE chosen threshold"].between(0.05, 0.95).all()
    splits = {rule: controls.gain_split(results, rule=rule) for rule in controls.RULES}
    fig = plot_gain_split(splits, {rule: controls.gain_parts(results, rule=rule) for rule in controls.RULES})
    assert len(fig.axes[0].patches) == 2 * len(split)


def test_control_arms_change_one_thing_each() -> None:
    over = controls.control_overrides({"source_size": 128, "global_size": 64, "local_size": 32, "crop_fraction": 0.25})
    assert list(over.values()) == [
        {"model": "resnet18"},
        {"model": "wholeface", "local_size": 64},
        {"model": "mfjle", "local_size": 16},
        {"model": "mfjle"},
        {"model": "resnet18", "global_size": 128},
    ]


def test_deployed_wholeface_keeps_its_whole_face_inputs() -> None:
    """The CPU inference path cuts inputs with the trained class's rule, so the locality control deploys as itself."""
    from mfjle_lib.perf.deploy import optimize_for_cpu

    torch.manual_seed(0)
    model = build_model("wholeface", global_size=32, local_size=24, crop_fraction=0.25).eval()
    images = torch.rand(3, 3, 48, 48)
    landmarks = torch.rand(3, 5, 2) * 48
    deployed = optimize_for_cpu(model, "fp32")
    torch.testing.assert_close(deployed.crops(images, landmarks), model.crops(images, landmarks))
    with torch.inference_mode():
        torch.testing.assert_close(deployed(images, landmarks).probs, model(images, landmarks).probs, atol=1e-4, rtol=0)


def test_a_run_refuses_data_loaded_for_another_split(tmp_path) -> None:
    """Data passed in must be the faces and splits the config names (a subject-split run on paper-split data is
    refused)."""
    from mfjle_lib.errors import ConfigError
    from mfjle_lib.training import load_data

    cfg = make_config(
        "fast", model="resnet18", num_images=48, epochs=1, batch_size=16, source_size=32, global_size=32, device="cpu"
    )
    data = load_data(cfg, show_progress=False)
    other = make_config(
        "fast",
        model="resnet18",
        num_images=48,
        epochs=1,
        batch_size=16,
        source_size=32,
        global_size=32,
        device="cpu",
        split_scheme="subject",
    )
    with pytest.raises(ConfigError, match="split_scheme 'paper' \\(data\\) vs 'subject' \\(config\\)"):
        train(other, tmp_path / "run", data=data, show_progress=False)
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_a_split_on_one_seed_has_no_spread_and_its_parts_add_up_to_the_total_shown() -> None:
    """A grid still training: the controls on seed 0 only, ResNet-18 and MF-JLE on three seeds. The split and its total
    are read on the seed they share ('n = 1', never '± 0.000'); the three-seed total is a row of its own."""
    title = {a: controls.ARMS[a].title for a in controls.CONTROL_ARMS}
    values = pd.DataFrame(
        {
            title["resnet18"]: [0.50, 0.52, 0.55],
            title["wholeface"]: [0.536, np.nan, np.nan],
            title["mfjle_lowres"]: [0.519, np.nan, np.nan],
            title["mfjle"]: [0.542, 0.55, 0.59],
            title["resnet18_full"]: [0.62, 0.63, np.nan],
        },
        index=pd.Index([0, 1, 2], name="seed"),
    )
    split = controls.summarise_parts(controls.parts_of(values))
    shown = split.loc[["ensembling", "locality", "resolution", controls.TOTAL]]
    assert (shown["n"] == 1).all() and shown["std"].isna().all()
    assert abs(shown["mean"].iloc[:3].sum() - shown.loc[controls.TOTAL, "mean"]) < 1e-12  # 0.042, seed 0's total
    assert abs(split.loc[controls.TOTAL, "mean"] - 0.042) < 1e-12
    every = split.loc[controls.TOTAL_ALL_SEEDS]
    assert every["n"] == 3 and abs(every["mean"] - np.mean([0.042, 0.03, 0.04])) < 1e-12
    assert split.loc["resolution alone (one net)", "n"] == 2
    text = controls.split_sentence(split, "val")
    assert "± 0.000" not in text and "nan" not in text
    assert "= ensembling +0.036 (n = 1) + locality -0.017 (n = 1) + resolution +0.023 (n = 1) = +0.042 (n = 1)" in text
    assert f"{controls.TOTAL_ALL_SEEDS}: +0.037 ± 0.006 (3/3 seeds above 0)" in text
    np.testing.assert_allclose(controls.part_values(controls.parts_of(values), controls.TOTAL), [0.042])
    fig = plot_gain_split({"val": split}, {"val": controls.parts_of(values)})
    assert sum(t.get_text() == "n=1" for t in fig.axes[0].texts) == 4
    # The full grid: no extra row, and the sentence as before.
    full = controls.summarise_parts(controls.parts_of(values.fillna(0.53)))
    assert controls.TOTAL_ALL_SEEDS not in full.index and (full["n"] == 3).all()
