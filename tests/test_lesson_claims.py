"""What the lessons' prose says in words, checked against the released runs it describes.

A lesson's markdown cannot recompute its numbers, so it states findings in words ("half to nearly as
often", "below the floor"); each test here recomputes the finding from the committed artefacts
(`results/lessons`) and fails when the words no longer hold.
"""

from __future__ import annotations

import numpy as np
import pytest

from mfjle_lib.constants import EMOTIONS
from mfjle_lib.course import ablations
from mfjle_lib.course.lesson import CourseParams


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> CourseParams:
    """The lessons' settings under RUNS = released; nothing may train (MFJLE_RELEASED_ONLY)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("MFJLE_RUNS_DIR", str(tmp_path_factory.mktemp("runs")))
    mp.setenv("MFJLE_RELEASED_ONLY", "1")
    yield CourseParams(False, "synthetic", None, None, "cpu", "cpu", [0, 1, 2], "released")
    mp.undo()


def test_a_lambda_retrain_changes_half_to_nearly_as_many_local_decisions_as_a_new_seed(released: CourseParams) -> None:
    """Lesson 08 section 1 and lesson 04a exercise 3: 'half to nearly as often as another seed'."""
    mf = ablations.train_seeds(released, None, model="mfjle", show_progress=False)
    retrains = [
        ablations.train_seeds(released, None, seeds=[0], model="mfjle", lambdas=(lam,) * 5, show_progress=False)[0]
        for lam in (0.001, 0.015)
    ]
    lam = np.stack(
        [ablations.lambda_check(mf[0], r)["outputs"]["decisions changed"].to_numpy()[1:] for r in retrains], axis=1
    )
    floor = ablations.seed_floor(mf).to_numpy()[1:].mean(axis=1, keepdims=True)
    ratio = lam / floor
    assert 0.35 <= ratio.min() <= 0.65, ratio  # "half"
    assert 0.8 <= ratio.max() <= 1.05, ratio  # "nearly as often"


def test_ferplus_labels_are_what_lesson_01_says() -> None:
    """Lesson 01: 'about a quarter carry none', 'fewer than one in ten carry two', 'fear with surprise first'."""
    from mfjle_lib.course import real_faces
    from mfjle_lib.evaluation import load_outputs

    run = sorted(p for p in real_faces.study_dir("ferplus").iterdir() if (p / "test_outputs.npz").is_file())[0]
    y = load_outputs(run / "test_outputs.npz")["labels"] > 0.5
    assert 0.2 <= (y.sum(1) == 0).mean() <= 0.3
    assert (y.sum(1) >= 2).mean() < 0.1
    co = (y[:, :, None] & y[:, None, :]).sum(0)
    np.fill_diagonal(co, 0)
    i, j = np.unravel_index(np.argmax(co), co.shape)
    assert {EMOTIONS[i], EMOTIONS[j]} == {"surprise", "fear"}


def test_the_gain_split_is_what_lesson_05_says(released: CourseParams) -> None:
    """Lesson 05 section 5: tiny parts at the paper's rule; at equal care locality is the smallest part and
    one full-resolution ResNet-18 matches MF-JLE (a gap inside its seed spread), and beats it at the paper's rule."""
    from mfjle_lib.course import controls

    arms = controls.train_controls(released, None, show_progress=False)
    paper, care = (controls.gain_split(arms, rule=rule)["mean"] for rule in ("paper", "val"))
    care_std = controls.gain_split(arms, rule="val")["std"]
    parts = ["ensembling", "locality", "resolution"]
    assert (paper[parts].abs() < 0.005).all() and paper[
        controls.TOTAL
    ] > 0  # "well under a hundredth", every seed ahead
    assert (controls.gain_parts(arms, rule="paper")[controls.TOTAL] > 0).all()
    assert care[controls.TOTAL] > 10 * paper[controls.TOTAL]  # "grows more than tenfold"
    assert care["locality"] < min(care["ensembling"], care["resolution"])  # "locality the least"
    gap = "MF-JLE over the full-resolution ResNet-18"
    assert abs(care[gap]) <= care_std[gap] and paper[gap] < 0  # "matches ... smaller than its spread" / "beats MF-JLE"


def test_the_ferplus_first_reading_is_what_lesson_05_says() -> None:
    """Lesson 05, FER+: the full-resolution ResNet-18 ahead of MF-JLE at both rules; MF-JLE ahead of ResNet-18 only
    at equal care."""
    from mfjle_lib.course import real_faces

    fer = real_faces.load_study("ferplus")

    def gap(kind: str, fusion: str, **what: str) -> float:
        (g,) = real_faces.gaps(fer, kind=kind, fusion=fusion, **what).values()
        return g["mean"]["micro_f1"]

    for fusion in ("paper", "val"):
        assert gap("arm_step", fusion, base="resnet18_full", model="mfjle") < 0
    assert gap("mfjle_vs_resnet18", "paper") <= 0 < gap("mfjle_vs_resnet18", "val")
