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

    for fusion in ("paper", "val"):  # "far ahead of MF-JLE at both rules — by more than MF-JLE gains over ResNet-18"
        assert gap("arm_step", fusion, base="resnet18_full", model="mfjle") < -abs(gap("mfjle_vs_resnet18", fusion))
    assert gap("mfjle_vs_resnet18", "paper") <= 0 < gap("mfjle_vs_resnet18", "val")


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
    positive on every seed and far below the seed-to-seed spread of either model."""
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


def _jaffe_row(study: dict, **what: str) -> dict:
    (row,) = [r for r in study["rows"].values() if all(r[k] == v for k, v in what.items())]
    return {k: m["mean"] for k, m in row["metrics"].items()} | {"val_micro_f1": row["val_micro_f1"]}


def test_the_jaffe_baseline_is_what_lesson_03_says() -> None:
    """Lesson 03, section 3: from scratch well short of Table 2's ResNet-18 in micro-F1 and Hamming loss; started,
    better on all nine metrics and better than the paper in coverage and one-error, not in micro-F1 and Hamming loss;
    a threshold chosen on validation lowers test micro-F1 for every start; a fresh head wins on validation, loses on
    test, within the noise."""
    from mfjle_lib.course import real_faces
    from mfjle_lib.method import METRICS

    study = real_faces.load_study("jaffe")
    paper = study["paper"]["ResNet-18 (paper Table 2)"]
    row = {
        (start, fusion): _jaffe_row(study, split="paper", model="resnet18", start=start, fusion=fusion)
        for start in ("scratch", "started", "started_fresh_head")
        for fusion in ("paper", "val")
    }
    scratch = row["scratch", "paper"]
    assert paper["micro_f1"] - scratch["micro_f1"] > 0.05 and scratch["hamming_loss"] - paper["hamming_loss"] > 0.03
    for start in ("started", "started_fresh_head"):
        ours = row[start, "paper"]
        for m in METRICS:
            assert (ours[m.key] < scratch[m.key]) if m.lower_is_better else (ours[m.key] > scratch[m.key]), m.key
        assert ours["coverage"] < paper["coverage"] and ours["one_error"] < paper["one_error"]
        assert ours["micro_f1"] < paper["micro_f1"] and ours["hamming_loss"] > paper["hamming_loss"]
    for start in ("scratch", "started", "started_fresh_head"):
        assert row[start, "val"]["micro_f1"] < row[start, "paper"]["micro_f1"]
    val = {
        start: np.mean(
            [
                _jaffe_row(study, split="paper", model=m, start=start, fusion="paper")["val_micro_f1"]
                for m in ("resnet18", "mfjle")
            ]
        )
        for start in ("started", "started_fresh_head")
    }
    assert val["started_fresh_head"] > val["started"]
    assert row["started_fresh_head", "paper"]["micro_f1"] < row["started", "paper"]["micro_f1"]
    (gap,) = real_faces.gaps(study, kind="started_vs_scratch", model="resnet18", start="started").values()
    (gap_fresh,) = real_faces.gaps(
        study, kind="started_vs_scratch", model="resnet18", start="started_fresh_head"
    ).values()
    fresh_minus_carried = np.array(
        [gap_fresh["per_seed"][s]["micro_f1"] - gap["per_seed"][s]["micro_f1"] for s in gap["per_seed"]]
    )
    assert abs(fresh_minus_carried.mean()) < 2 * fresh_minus_carried.std(ddof=1)  # "within the noise"


def test_mfjle_against_its_twin_on_jaffe_is_what_lesson_04b_says() -> None:
    """Lesson 04b, section 4: at the paper's fusion MF-JLE's micro-F1 equals its twin's on most seed pairs
    and moves by up to three hundredths on the others; over the ten carried-head seeds the paired gap's 95 % interval
    holds zero and is about two hundredths wide; chosen on validation, no gain is clearly larger than its spread."""
    from mfjle_lib.course import real_faces

    study = real_faces.load_study("jaffe")
    paper = real_faces.gaps(study, kind="mfjle_vs_resnet18", split="paper", fusion="paper")
    per_seed = np.array([g["per_seed"][s]["micro_f1"] for g in paper.values() for s in g["per_seed"]])
    assert 0.5 < (per_seed == 0).mean() < 0.9 and np.abs(per_seed).max() <= 0.035
    (carried,) = [g for g in paper.values() if g["start"] == "started"]
    lo, hi = carried["ci95"]["micro_f1"]
    assert len(carried["seeds"]) >= 10 and lo < 0 < hi and 0.015 <= hi - lo <= 0.03
    val = real_faces.gaps(study, kind="mfjle_vs_resnet18", split="paper", fusion="val").values()
    assert all(abs(g["mean"]["micro_f1"]) < 2 * g["std"]["micro_f1"] for g in val)


def test_the_jaffe_intervals_are_what_lessons_01_03_and_04b_say() -> None:
    """Lesson 03: with ten seeded splits the started run's interval is about seven hundredths wide, Table 2's row above
    it; lesson 04b: the same for both started models; lesson 01: one started ResNet-18 scores from about 0.75 to about
    0.90 over ten splits, a spread larger than Table 2's gap between the two models."""
    from mfjle_lib.course import real_faces

    study = real_faces.load_study("jaffe")
    table = real_faces.interval_table(study, split="paper", start="started", fusion="paper")
    assert len(table) == 2 and (table["seeds"] >= 10).all()
    assert table["width"].between(0.05, 0.09).all()
    assert all(p > float(iv.split(", ")[1].rstrip("]")) for p, iv in zip(table["paper"], table["95 % interval"]))
    values = real_faces.seed_values(study, split="paper", model="resnet18", start="started", fusion="paper").iloc[0]
    paper = study["paper"]
    assert abs(values.min() - 0.75) < 0.02 and abs(values.max() - 0.90) < 0.02
    table_gap = paper["MF-JLE (paper Table 2)"]["micro_f1"] - paper["ResNet-18 (paper Table 2)"]["micro_f1"]
    assert values.max() - values.min() > table_gap


def test_the_real_label_sets_are_what_lesson_00_says() -> None:
    """Lesson 00 section 1: a fifth of JAFFE's test faces carry no label; FER+'s crowd mostly names one emotion, and a
    quarter of its faces carry none of the six."""
    from mfjle_lib.course import real_faces

    counts = {name: y.sum(1) for name, y in real_faces.real_labels().items()}
    jaffe, fer = counts["JAFFE test, split 0 (posed)"], counts["FER+ test (crowd votes)"]
    assert 0.15 <= (jaffe == 0).mean() <= 0.25  # "a fifth"
    assert (fer == 1).mean() > 0.5 and 0.2 <= (fer == 0).mean() <= 0.3  # "mostly one", "a quarter"


def test_the_ferplus_lambda_curve_is_what_lesson_05_says() -> None:
    """Lesson 05 section 3, FER+: flat to the third decimal over the paper's λ range; equal votes cost micro-F1."""
    from mfjle_lib.course import ablations, real_faces

    outs = list(real_faces.run_outputs("ferplus", "mfjle", split="official").values())
    lams = [0.0, 0.001, 0.005, 0.01, 0.015, 1.0]
    f1 = ablations.refuse_over_seeds(outs, {lam: ablations.lambda_weights(lam) for lam in lams})
    mean = f1.groupby("setting")["micro_f1"].mean()
    assert np.ptp(mean.loc[lams[:-1]]) < 0.005 and mean.loc[1.0] < mean.loc[0.01]


def test_one_local_lambda_is_what_lesson_05_says(released: CourseParams) -> None:
    """Lesson 05 section 4 (Fig. 7): every |mean Δ| under a thousandth, far below section 3's seed-to-seed std."""
    outs = _test_outputs(released, "mfjle")
    base = ablations.refuse_over_seeds(outs, {0.01: ablations.lambda_weights(0.01)})["micro_f1"].to_numpy()
    for j in range(5):
        for lam in (0.005, 0.015):
            weights = {0: ablations.single_local_weights(j, lam)}
            moved = ablations.refuse_over_seeds(outs, weights)["micro_f1"].to_numpy()
            assert abs((moved - base).mean()) < 0.001 < 0.25 * base.std(ddof=1)


def test_the_jaffe_distance_to_table2_is_what_lesson_03_says() -> None:
    """Lesson 03, section 3: started, the ResNet-18 closes more than half of the ranking gap to Table 2 and about half
    of the thresholded one; its coverage and one-error pass the paper's only under our conventions (some faces of
    every test split carry no label): counted the other way, both close only about half the gap too."""
    from mfjle_lib.course import real_faces, real_outputs
    from mfjle_lib.evaluation import HEADERS

    arms = {"from scratch": "paper_resnet18_scratch", "started": "paper_resnet18_started"}
    table = real_outputs.distance_to_paper("jaffe", arms, "ResNet-18 (paper Table 2)")
    share = table["share of the gap closed"]
    study = real_faces.load_study("jaffe")
    for column, start in zip(table.columns, ("scratch", "started")):  # the same means as the study's rows
        row = _jaffe_row(study, split="paper", model="resnet18", start=start, fusion="paper")
        assert np.allclose([table.loc[h, column] for h in HEADERS.values()], [row[k] for k in HEADERS])
    for key in ("micro_f1", "hamming_loss"):
        assert 0.35 <= share[HEADERS[key]] <= 0.65, key  # "about half of the thresholded one"
    for key in ("ranking_loss", "average_precision", "micro_auc", "macro_auc"):
        assert share[HEADERS[key]] > 0.5, key  # "more than half of the ranking gap"
    assert share[HEADERS["coverage"]] > 1 and share[HEADERS["one_error"]] > 1  # "pass the paper's"
    for title in real_outputs.OTHER_CONVENTIONS.values():
        assert 0.35 <= share[title] <= 0.7, title  # "only about half the gap too"
    started = real_outputs.group_outputs("jaffe", "paper_resnet18_started")
    assert all((o["labels"].sum(1) == 0).any() for o in started.values())  # "some faces of every test split"


def test_the_jaffe_labels_one_by_one_are_what_lesson_03_says() -> None:
    """Lesson 03, section 4: about twice as many faces with disgust as with fear; fear, the rarest, has the lowest F1
    while its AUC stays high; about ten faces per emotion; a rare emotion's F1 moves by more than a tenth (std)."""
    from mfjle_lib.course import real_outputs

    table = real_outputs.per_label_over_seeds(real_outputs.group_outputs("jaffe", "paper_resnet18_started"))
    faces = table["faces with it"]
    assert 1.7 <= faces["Disgust"] / faces["Fear"] <= 2.5
    assert faces.idxmin() == "Fear" and table["F1 mean"].idxmin() == "Fear" and table.loc["Fear", "AUC mean"] > 0.85
    assert 7 <= faces.mean() <= 15
    assert table.loc["Fear", "F1 std"] > 0.1


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


def test_the_modules_on_real_faces_are_what_lesson_04a_says(released: CourseParams) -> None:
    """Lesson 04a, section 4 and exercise 1: on real faces the fused row is the whole face's; the nose, nearly blank
    on the built-in faces (F1 0 on most emotions), is the weakest module on JAFFE but far from blank; on FER+ it is
    about as good as the eyes, every local is well below the whole face, and no module finds disgust, its rarest
    label."""
    from mfjle_lib.course import real_outputs
    from mfjle_lib.evaluation import per_label_report

    nose = 3  # the modules: whole face, left eye, right eye, nose, mouth left, mouth right
    built_in = _test_outputs(released, "mfjle")[0]
    assert (per_label_report(built_in["labels"], built_in["module_probs"][:, nose])["f1"] == 0).sum() >= 4
    jaffe = real_outputs.group_outputs("jaffe", "paper_mfjle_started")
    ferplus = real_outputs.group_outputs("ferplus", "official_mfjle_scratch")
    for runs in (jaffe, ferplus):
        scores = real_outputs.module_scores(runs)["mean"].to_numpy()
        assert abs(scores[-1] - scores[0]) <= 0.01  # "the fused row is again the whole face's"
    scores = real_outputs.module_scores(jaffe)["mean"].to_numpy()[:6]
    assert scores.argmin() == nose and (real_outputs.module_label_f1(jaffe).iloc[nose] >= 0.3).all()
    scores = real_outputs.module_scores(ferplus)["mean"].to_numpy()[:6]
    assert scores[1:3].min() - 0.03 <= scores[nose] <= scores[1:3].max() + 0.03
    assert scores[0] - scores[1:].max() >= 0.05
    f1 = real_outputs.module_label_f1(ferplus)
    rarest = real_outputs.per_label_over_seeds(ferplus)["faces with it"].idxmin()
    assert rarest == "Disgust" and (f1[rarest] == 0).all()


def test_the_subject_split_gap_is_what_lesson_01_says() -> None:
    """Lesson 01, section 5: holding out posers lowers micro-F1 by −0.202 ± 0.105 (ResNet-18) and −0.207 ± 0.099
    (MF-JLE), AP by about 0.10, raises the Hamming loss by about 0.12, on every seed (seed 1: −0.32); with three
    seeds both 95 % intervals of the mean still hold zero."""
    from mfjle_lib.course import real_faces

    gaps = real_faces.gaps(real_faces.load_study("jaffe"), kind="subject_vs_image")
    said = {"resnet18": (-0.202, 0.105), "mfjle": (-0.207, 0.099)}
    assert {g["model"] for g in gaps.values()} == set(said)
    for g in gaps.values():
        assert (round(g["mean"]["micro_f1"], 3), round(g["std"]["micro_f1"], 3)) == said[g["model"]]
        assert abs(g["mean"]["average_precision"] + 0.10) < 0.01 and abs(g["mean"]["hamming_loss"] - 0.12) < 0.01
        per_seed = [g["per_seed"][str(s)]["micro_f1"] for s in g["seeds"]]
        assert len(per_seed) == 3 and max(per_seed) < 0 and round(g["per_seed"]["1"]["micro_f1"], 2) == -0.32
        lo, hi = g["ci95"]["micro_f1"]
        assert lo < 0 < hi


def test_where_the_jaffe_twins_differ_is_what_lesson_04b_says() -> None:
    """Lesson 04b, section 4 and exercise 2: where the twins selected the same epoch, MF-JLE's global module decides as
    its twin and the locals' vote flips at most a few decisions; the largest paired gaps at the paper's fusion come from
    seeds whose twins selected different epochs."""
    from mfjle_lib.course import real_faces

    study = real_faces.load_study("jaffe")
    for start in ("scratch", "started", "started_fresh_head"):
        for base, mf in real_faces.twin_outputs("jaffe", start=start, same_epoch=True).values():
            own_global = mf["module_probs"][:, 0] >= 0.5
            assert ((base["fused_probs"] >= 0.5) == own_global).all()
            assert ((mf["fused_probs"] >= 0.5) != own_global).sum() <= 3  # "at most a few decisions of 42 faces"
    paper = real_faces.gaps(study, kind="mfjle_vs_resnet18", split="paper", fusion="paper").values()
    size = {(g["start"], int(s)): abs(g["per_seed"][s]["micro_f1"]) for g in paper for s in g["per_seed"]}
    largest = sorted(size, key=size.get)[-2:]
    for start, seed in largest:
        epochs = {study["runs"][f"paper_{m}_{start}_seed{seed}"]["selected_epoch"] for m in ("resnet18", "mfjle")}
        assert len(epochs) == 2, (start, seed)
    assert max(size.values()) <= 0.035  # "up to three hundredths"


def test_where_jaffe_stands_is_what_lesson_04b_says() -> None:
    """Lesson 04b, 'Where it stands': the MF-JLE row chosen on validation beats Table 2's MF-JLE row on coverage and
    one-error only; Table 2's two JAFFE rows need disjoint numbers of true labels per face (exercise 3)."""
    from mfjle_lib.course import real_faces
    from mfjle_lib.method import METRIC_KEYS

    study = real_faces.load_study("jaffe")
    better = {k for k, v in study["best_minus_paper_mfjle"].items() if v > 0}
    assert better == {"coverage", "one_error"}
    bounds = {}
    for name, row in study["paper"].items():
        h, f = row["hamming_loss"], row["micro_f1"]
        tp = f * 6 * h / (2 * (1 - f))
        bounds[name] = (tp, tp + 6 * h)
    assert bounds["ResNet-18 (paper Table 2)"][0] > bounds["MF-JLE (paper Table 2)"][1]
    assert len(METRIC_KEYS) == 9


def test_the_ferplus_pairing_is_what_lesson_04b_says() -> None:
    """Lesson 04b, FER+: at the paper's rule the two models nearly tied (the interval holds zero); with fusion and
    threshold chosen on validation MF-JLE's mean ahead."""
    from mfjle_lib.course import real_faces

    fer = real_faces.load_study("ferplus")
    (paper,) = real_faces.gaps(fer, kind="mfjle_vs_resnet18", fusion="paper").values()
    (care,) = real_faces.gaps(fer, kind="mfjle_vs_resnet18", fusion="val").values()
    lo, hi = paper["ci95"]["micro_f1"]
    assert abs(paper["mean"]["micro_f1"]) < 0.01 and (lo is None or lo <= 0 <= hi)
    assert care["mean"]["micro_f1"] > 0


def test_the_real_faces_reliability_is_what_lesson_07_says() -> None:
    """Lesson 07, section 6: on FER+ the bins lie near the diagonal, a little below it above 0.5; on JAFFE the high bins
    fall further below it. Section 4: on the JAFFE face shown, a local module disagrees with the whole-face module."""
    from mfjle_lib.course import real_faces
    from mfjle_lib.evaluation import reliability_table

    def pooled(twins: dict) -> object:
        mf = [m for _, m in twins.values()]
        table = reliability_table(
            np.concatenate([m["labels"] for m in mf]), np.concatenate([m["fused_probs"] for m in mf])
        )
        return table["mean probability"] - table["share really present"]  # > 0: below the diagonal

    fer = pooled(real_faces.twin_outputs("ferplus", split="official", start="scratch"))
    jaffe = pooled(real_faces.twin_outputs("jaffe"))
    assert (fer.abs() < 0.1).all() and (fer.iloc[3:] > 0).all()
    assert (jaffe.iloc[4:] > fer.iloc[4:]).all() and (jaffe.iloc[4:] > 0.05).all()
    runs = real_faces.run_outputs("jaffe", "mfjle", split="paper", start="started")
    face = runs[min(runs)]
    first = int(np.argmax((face["labels"] > 0.5).sum(1) >= 2))
    decisions = face["module_probs"][first] >= 0.5
    assert (decisions[1:] != decisions[0]).any()


def test_lesson_07s_stand_in_is_what_it_says() -> None:
    """Lesson 07 (and lesson 00): the released mode trains a stand-in of 1,500 faces and 6 epochs."""
    from mfjle_lib.course.lesson import WEIGHTS_STANDIN

    assert WEIGHTS_STANDIN == {"num_images": 1500, "epochs": 6}
