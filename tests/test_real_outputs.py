"""`course.real_outputs` reads each committed real-face run's saved outputs, over whatever seeds are there."""

from __future__ import annotations

import numpy as np
import pytest

from mfjle_lib.course import real_faces, real_outputs
from mfjle_lib.errors import ConfigError
from mfjle_lib.method import MODULE_TITLES, multilabel_metrics


def test_a_group_is_every_seed_of_one_run_name_and_no_other() -> None:
    runs = real_outputs.run_outputs("jaffe", "mfjle", "paper", "started")
    folders = {p.name for p in real_faces.study_dir("jaffe").iterdir()}
    assert {f"paper_mfjle_started_seed{s}" for s in runs} == {
        n for n in folders if n.startswith("paper_mfjle_started_seed")
    }
    assert list(runs) == sorted(runs)  # `..._started_fresh_head_seed<N>` is another group
    assert all(o["module_probs"].shape == (len(o["labels"]), 6, 6) for o in runs.values())
    with pytest.raises(ConfigError, match="paper_nothing"):
        real_outputs.group_runs("jaffe", "paper_nothing")


def test_module_scores_are_each_module_alone_then_the_fusion() -> None:
    runs = real_outputs.run_outputs("jaffe", "mfjle", "paper", "started")
    table = real_outputs.module_scores(runs)
    assert list(table.index) == [f"{t} alone" for t in MODULE_TITLES] + ["fused"]
    nose = [multilabel_metrics(o["labels"], o["module_probs"][:, 3])["micro_f1"] for o in runs.values()]
    assert np.isclose(table.loc["nose alone", "mean"], np.mean(nose))
    assert np.isclose(table.loc["nose alone", "std"], np.std(nose, ddof=1))
    f1 = real_outputs.module_label_f1(runs)
    assert f1.shape == (6, 6) and list(f1.index) == list(MODULE_TITLES)


def test_a_single_model_has_one_module_and_the_fusion() -> None:
    runs = real_outputs.run_outputs("jaffe", "resnet18", "paper", "scratch")
    assert list(real_outputs.module_scores(runs).index) == ["whole face alone", "fused"]
    table = real_outputs.per_label_over_seeds(runs)
    assert list(table.columns) == ["faces with it", "F1 mean", "F1 std", "AUC mean"] and len(table) == 6


def test_the_distance_to_the_paper_and_the_other_conventions() -> None:
    arms = {"a": "paper_resnet18_scratch", "b": "paper_resnet18_started"}
    table = real_outputs.distance_to_paper("jaffe", arms, "ResNet-18 (paper Table 2)")
    assert len(table) == 9 + len(real_outputs.OTHER_CONVENTIONS)
    a, b, paper = table.iloc[:, 0], table.iloc[:, 1], table.iloc[:, 2]
    assert np.allclose(table["share of the gap closed"], (b - a) / (paper - a))
    # A face without a label counts -1 in our coverage: leaving it out can only raise coverage; counting it in
    # one-error as an error can only raise one-error.
    assert table.loc["Coverage ↓, label-free faces left out"].iloc[0] > table.loc["Coverage ↓"].iloc[0]
    assert table.loc["One-error ↓, label-free faces counted"].iloc[0] > table.loc["One-error ↓"].iloc[0]


def test_the_thresholds_chosen_on_validation_are_the_studys() -> None:
    study = real_faces.load_study("jaffe")
    table = real_outputs.val_thresholds(study, "paper_resnet18_started")
    run = study["runs"]["paper_resnet18_started_seed0"]
    assert table.loc["threshold chosen on validation", "seed 0"] == run["val_choice"]["threshold"]
    assert table.loc["test micro-F1 with the choice", "seed 0"] == run["val_fusion"]["micro_f1"]
    assert np.isclose(
        table.loc["test micro-F1 at 0.5", "mean"], table.drop(columns="mean").loc["test micro-F1 at 0.5"].mean()
    )
