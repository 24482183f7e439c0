"""What the lessons' prose says in words, checked against the released runs it describes.

A lesson's markdown cannot recompute its numbers, so it states findings in words ("half to nearly as
often", "below the floor"); each test here recomputes the finding from the committed artefacts
(`results/lessons`) and fails when the words no longer hold.
"""

from __future__ import annotations

import numpy as np
import pytest

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


def _test_outputs(params: CourseParams, model: str) -> list[dict]:
    """Each seed's released test outputs of one lesson model (nothing trains: MFJLE_RELEASED_ONLY)."""
    from mfjle_lib.evaluation import load_outputs

    runs = ablations.train_seeds(params, None, model=model, show_progress=False)
    return [load_outputs(r.out_dir / "test_outputs.npz") for r in runs]


def _rendered_shares(ids: np.ndarray, seed: int = 0) -> np.ndarray:
    """The emotion shares the built-in renderer drew for faces `syn<i>` (mfjle_lib/data/synthetic.py's draw order)."""
    from mfjle_lib.data.face_params import sample_distribution

    shares = []
    for face in ids:
        rng = np.random.default_rng([seed, 2, int(str(face).removeprefix("syn"))])
        rng.integers(300)  # the identity draw before the shares (3,000 faces: a pool of 300 identities)
        shares.append(sample_distribution(rng))
    return np.array(shares)


def test_the_baselines_errors_are_where_lesson_03_says(released: CourseParams) -> None:
    """Lesson 03, exercise 2: per decision, errors are likeliest next to the labelling threshold (0.15), rare for strong
    labels; by count, the largest group of errors is at shares below 0.05 (absent emotions called present)."""
    from mfjle_lib.data import LABEL_SHARE_THRESHOLD

    out = _test_outputs(released, "resnet18")[0]
    share = _rendered_shares(out["ids"])
    y = out["labels"] > 0.5
    assert np.array_equal(share >= LABEL_SHARE_THRESHOLD, y), (
        "the renderer's draw order changed: update _rendered_shares"
    )
    wrong = (out["fused_probs"] >= 0.5) != y
    bins = np.digitize(share, [0.05, 0.10, 0.15, 0.25, 0.5])  # 0: < 0.05, ..., 3: 0.15-0.25, 5: 0.5 and up
    rate = np.array([wrong[bins == b].mean() for b in range(6)])
    count = np.array([wrong[bins == b].sum() for b in range(6)])
    assert rate.argmax() == 3 and rate[2] > rate[5] and rate[5] < rate[3] / 3  # near the threshold, not strong labels
    assert count.argmax() == 0  # most errors: absent emotions called present


def test_mfjle_against_its_twin_is_what_lesson_04b_says(released: CourseParams) -> None:
    """Lesson 04b, section 3: the fused decisions are the global module's on nearly every pair; the paired Δ micro-F1 is
    positive on every seed and far below the seed-to-seed spread of either model; with t = 4.30 (three seeds) its 95 %
    interval lies above zero, AP's holds zero."""
    from mfjle_lib.evaluation import t_interval
    from mfjle_lib.method import multilabel_metrics

    base, mf = _test_outputs(released, "resnet18"), _test_outputs(released, "mfjle")
    for o in mf:
        assert ((o["fused_probs"] >= 0.5) == (o["module_probs"][:, 0] >= 0.5)).mean() > 0.99
    f1 = {
        name: np.array([multilabel_metrics(o["labels"], o["fused_probs"])["micro_f1"] for o in outs])
        for name, outs in (("resnet18", base), ("mfjle", mf))
    }
    delta = f1["mfjle"] - f1["resnet18"]
    assert (delta > 0).all()
    assert delta.mean() < 0.25 * min(f1["resnet18"].std(ddof=1), f1["mfjle"].std(ddof=1))
    assert len(delta) == 3 and t_interval(delta)[0] > 0  # "t is 4.30": three seeds; "micro-F1's lies above zero"
    ap = {
        name: [multilabel_metrics(o["labels"], o["fused_probs"])["average_precision"] for o in outs]
        for name, outs in (("resnet18", base), ("mfjle", mf))
    }
    ap_low, ap_high = t_interval(np.subtract(ap["mfjle"], ap["resnet18"]))
    assert ap_low < 0 < ap_high  # "AP's holds it"


def test_one_local_lambda_is_what_lesson_05_says(released: CourseParams) -> None:
    """Lesson 05 section 4 (Fig. 7): every |mean Δ| under a thousandth, far below section 3's seed-to-seed std."""
    outs = _test_outputs(released, "mfjle")
    base = ablations.refuse_over_seeds(outs, {0.01: ablations.lambda_weights(0.01)})["micro_f1"].to_numpy()
    for j in range(5):
        for lam in (0.005, 0.015):
            weights = {0: ablations.single_local_weights(j, lam)}
            moved = ablations.refuse_over_seeds(outs, weights)["micro_f1"].to_numpy()
            assert abs((moved - base).mean()) < 0.001 < 0.25 * base.std(ddof=1)


def test_the_threshold_choices_are_what_lesson_03_says(released: CourseParams) -> None:
    """Lesson 03, section 5: on the built-in faces the threshold chosen on validation lowered seed 0's test micro-F1;
    on JAFFE each seed's choice lands anywhere from low to high thresholds and lowers test micro-F1 on average."""
    from mfjle_lib.course import real_faces, real_outputs
    from mfjle_lib.evaluation import load_outputs, threshold_sweep

    run = ablations.train_seeds(released, None, model="resnet18", show_progress=False)[0]
    val, test = (load_outputs(run.out_dir / f"{part}_outputs.npz") for part in ("val", "test"))
    grid = np.round(np.arange(0.05, 0.96, 0.05), 2)
    t_val = float(threshold_sweep(val["labels"], val["fused_probs"], grid)["micro_f1"].idxmax())
    at = threshold_sweep(test["labels"], test["fused_probs"], [0.5, t_val])["micro_f1"]
    assert at[t_val] < at[0.5]
    table = real_outputs.val_thresholds(real_faces.load_study("jaffe"), "paper_resnet18_started")
    chosen = table.drop(columns="mean").loc["threshold chosen on validation"]
    assert chosen.min() <= 0.25 and chosen.max() >= 0.6
    assert table.loc["test micro-F1 with the choice", "mean"] < table.loc["test micro-F1 at 0.5", "mean"]


def test_the_threshold_alone_is_what_lesson_08_says(released: CourseParams) -> None:
    """Lesson 08, section 3: with the paper's weights kept, the threshold chosen on validation moves test micro-F1 by
    less than a hundredth either way, while weights and threshold chosen together gain several hundredths."""
    from mfjle_lib.evaluation import choose_fusion, load_outputs, report_val_fusion
    from mfjle_lib.method import multilabel_metrics

    for run in ablations.train_seeds(released, None, model="mfjle", show_progress=False):
        val, test = (load_outputs(run.out_dir / f"{part}_outputs.npz") for part in ("val", "test"))
        t = choose_fusion(val["fused_probs"][:, None, :], val["labels"], (1.0,)).threshold
        alone = multilabel_metrics(test["labels"], test["fused_probs"], t)["micro_f1"] - run.metrics["micro_f1"]
        both = report_val_fusion(val, test, ablations.lambda_weights(0.01))[1]["micro_f1"] - run.metrics["micro_f1"]
        assert abs(alone) < 0.01 and both > 0.03, (run.config.seed, alone, both)


def test_the_modules_on_real_faces_are_what_lesson_04a_says(released: CourseParams) -> None:
    """Lesson 04a, section 4 and exercise 1: on real faces the fused row is the whole face's; the nose is the weakest
    module on JAFFE; on FER+ it is about as good as the eyes and every local is well below the whole face; 925 of
    FER+'s 3,545 test faces carry none of the six emotions. Solution 1: the nose, nearly blank on the built-in faces
    (F1 0 on the other four), is far from blank on JAFFE; on FER+ no module finds disgust, its rarest label, and the
    mouth crops know happiness nearly as well as the whole face, the eyes much less."""
    import json

    from mfjle_lib.course import real_faces, real_outputs
    from mfjle_lib.evaluation import per_label_report

    nose = 3  # the modules: whole face, left eye, right eye, nose, mouth left, mouth right
    built_in = _test_outputs(released, "mfjle")[0]
    assert (per_label_report(built_in["labels"], built_in["module_probs"][:, nose])["f1"] == 0).sum() >= 4
    jaffe = real_outputs.run_outputs("jaffe", "mfjle", "paper", "started")
    ferplus = real_outputs.run_outputs("ferplus", "mfjle")
    for runs in (jaffe, ferplus):
        scores = real_outputs.module_scores(runs)["mean"].to_numpy()
        assert abs(scores[-1] - scores[0]) <= 0.01  # "the fused row is again the whole face's"
    scores = real_outputs.module_scores(jaffe)["mean"].to_numpy()[:6]
    assert scores.argmin() == nose and (real_outputs.module_label_f1(jaffe).iloc[nose] >= 0.3).all()
    scores = real_outputs.module_scores(ferplus)["mean"].to_numpy()[:6]
    assert scores[1:3].min() - 0.03 <= scores[nose] <= scores[1:3].max() + 0.03
    assert scores[0] - scores[1:].max() >= 0.05 and round(scores[0], 3) == 0.523  # "micro-F1 0.523 for the whole face"
    f1 = real_outputs.module_label_f1(ferplus)
    rarest = real_outputs.per_label_over_seeds(ferplus)["faces with it"].idxmin()
    assert rarest == "Disgust" and (f1[rarest] == 0).all()
    happy = f1["Happiness"]
    mouths, eyes = happy[["mouth left", "mouth right"]], happy[["left eye", "right eye"]]
    assert happy["whole face"] - mouths.min() < 0.1  # "nearly as well as the whole face"
    assert eyes.max() < mouths.min() - 0.1  # "the eyes much less"
    labels = next(iter(ferplus.values()))["labels"]
    assert (int((labels.sum(1) == 0).sum()), len(labels)) == (925, 3545)  # "925 of its 3,545 test faces"
    runs = sorted(real_faces.study_dir("ferplus").glob("official_mfjle_scratch_seed*/run.json"))
    assert len(runs) == 3
    for run in runs:  # "R 48, S_g 24, S_l 12"
        settings = json.loads(run.read_text())["settings"]
        assert (settings["source_size"], settings["global_size"], settings["local_size"]) == (48, 24, 12)


def test_lesson_07s_stand_in_is_what_it_says() -> None:
    """Lesson 07 (and lesson 00): the released mode trains a stand-in of 1,500 faces and 6 epochs."""
    from mfjle_lib.course.lesson import WEIGHTS_STANDIN

    assert WEIGHTS_STANDIN == {"num_images": 1500, "epochs": 6}


def test_the_baselines_spread_is_what_lesson_03_says(released: CourseParams) -> None:
    """Lesson 03, section 3: differences of a few hundredths are within the seed-to-seed spread (micro-F1
    0.775 ± 0.019)."""
    from mfjle_lib.evaluation import summarise_runs

    runs = ablations.train_seeds(released, None, model="resnet18", show_progress=False)
    mean, std = summarise_runs([r.metrics for r in runs])["micro_f1"]
    assert (round(mean, 3), round(std, 3)) == (0.775, 0.019) and 0.01 <= std <= 0.05
