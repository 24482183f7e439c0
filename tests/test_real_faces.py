"""The committed real-face studies (results/jaffe, results/ferplus) are what the README and the lessons show."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mfjle_lib.course import real_faces
from mfjle_lib.course.val_fusion import fusion_by_seed
from mfjle_lib.evaluation import study_table
from mfjle_lib.evaluation.reports import HEADERS
from mfjle_lib.method.metrics import METRIC_KEYS
from tools import study_blocks

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results" / "jaffe"


def test_committed_table_is_rebuilt_byte_for_byte_from_the_committed_runs() -> None:
    text, record = study_table.build(RESULTS)
    assert text == (RESULTS / "table.md").read_text()
    assert json.dumps(record, indent=2) + "\n" == (RESULTS / "table.json").read_text()


def test_committed_study_holds_the_whole_grid() -> None:
    runs = json.loads((RESULTS / "table.json").read_text())["runs"]
    image = [n for n in runs if n.startswith("paper_")]
    subject = [n for n in runs if n.startswith("subject_")]
    # Image split: two models x (scratch, started with a fresh head) x 3 seeds, and the started runs with the carried
    # head on 10 seeds (their interval is what the README and lessons 01/03/04b quote); subject split: 2 x 3.
    started = [n for n in image if "_started_seed" in n]
    assert len(image) - len(started) == 2 * 2 * 3 and len(started) == 2 * 10 and len(subject) == 2 * 3, sorted(runs)
    for name, run in runs.items():
        assert run["n_test"] in (42, 43) or name.startswith("subject_"), name
        assert set(run["paper_fusion"]) == set(METRIC_KEYS) and set(run["val_fusion"]) == set(METRIC_KEYS)
    assert not list(RESULTS.rglob("*.pt")) and not list(RESULTS.rglob("*.tif*")), "no checkpoint or image is committed"


def test_readme_real_face_table_is_generated_from_the_artefacts(tmp_path: Path) -> None:
    assert study_blocks.sync_readme(REPO / "README.md", "jaffe", check=True), "run `python -m tools.readme_blocks`"
    # A number changed by hand in the README is caught.
    copy = tmp_path / "README.md"
    shutil.copyfile(REPO / "README.md", copy)
    block = study_blocks.readme_block(real_faces.load_study("jaffe"))
    row = next(line for line in block.splitlines() if line.startswith("| MF-JLE"))
    cells = row.split(" | ")
    cells[1] = "0.001 ± 0.000"
    copy.write_text(copy.read_text().replace(row, " | ".join(cells)))
    assert not study_blocks.sync_readme(copy, "jaffe", check=True)


@pytest.mark.parametrize("lesson", ["01_datasets", "03_single_resnet_baseline", "04b_mfjle_vs_resnet18"])
def test_lessons_read_the_committed_study(lesson: str) -> None:
    nb = json.loads((REPO / "notebooks" / f"{lesson}.ipynb").read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert 'real_faces.load_study("jaffe")' in code
    text = "\n".join("".join(c["source"]) for c in nb["cells"])
    assert "outside this repository" not in text, "a real-data number that is not in results/"


def test_study_helpers_pick_rows_and_gaps() -> None:
    study = real_faces.load_study("jaffe")
    rows = real_faces.study_rows(study, split="paper", model="resnet18", start="scratch")
    assert len(rows) == 2 + 2  # paper rule and val choice, then the paper's two rows
    gaps = real_faces.gaps(study, kind="mfjle_vs_resnet18", split="paper")
    assert len(gaps) == 3 * 2
    table = real_faces.gap_table(study, "micro_f1", kind="subject_vs_image")
    assert list(table.columns) == ["seed 0", "seed 1", "seed 2", "mean ± std", "95 % interval"]


def test_one_seed_shows_no_spread() -> None:
    assert study_table.mean_std_text(0.5024, 0.0, 1) == "0.502"
    assert study_table.mean_std_text(-0.0171, 0.0, 1, signed=True) == "-0.017"
    assert study_table.mean_std_text(0.5234, 0.0231, 3) == "0.523 ± 0.023"


def test_a_zero_width_interval_says_it_comes_from_identical_values() -> None:
    assert study_table.interval_text(0.0, 0.0, signed=True, n=3) == "[+0.000, +0.000] (3 identical values)"
    assert study_table.interval_text(0.5, 0.5) == "[0.500, 0.500] (identical values)"
    assert study_table.interval_text(-0.01, 0.02, signed=True, n=3) == "[-0.010, +0.020]"
    assert study_table.interval_text(None, None) == "needs 2 seeds"
    study = real_faces.load_study("jaffe")
    table = real_faces.gap_table(
        study, "micro_f1", kind="mfjle_vs_resnet18", split="paper", start="started_fresh_head", fusion="paper"
    )
    assert table["95 % interval"].tolist() == ["[+0.000, +0.000] (3 identical values)"]


def test_twins_share_their_faces_and_same_epoch_keeps_the_pairs_with_one_network() -> None:
    import numpy as np

    from mfjle_lib.course import module_table, plots

    twins = real_faces.twin_outputs("jaffe")
    same = real_faces.twin_outputs("jaffe", same_epoch=True)
    assert len(twins) >= 10 and set(same) < set(twins)
    for base, mf in twins.values():
        assert list(base["ids"]) == list(mf["ids"]) and mf["module_probs"].shape[1:] == (6, 6)
    base, mf = same[min(same)]
    assert np.array_equal(base["fused_probs"] >= 0.5, mf["module_probs"][:, 0] >= 0.5)
    table = module_table(mf["module_probs"][0], mf["fusion_weights"], mf["labels"][0])
    assert list(table.index)[-2:] == ["fused", "true labels"] and len(table) == 8
    assert np.allclose(table.loc["fused"].to_numpy()[:6], mf["fused_probs"][0])
    truth, a, b = mf["labels"] > 0.5, base["fused_probs"] >= 0.5, mf["fused_probs"] >= 0.5
    fig = plots.plot_decision_rows(mf["ids"][:4], truth[:4], {"ResNet-18": a[:4], "MF-JLE": b[:4]})
    assert len([ax for ax in fig.axes if ax.axison]) == 4
    from mfjle_lib.evaluation import reliability_table

    fig = plots.plot_reliability({"JAFFE seed": reliability_table(mf["labels"], mf["fused_probs"])})
    assert fig.axes[0].get_legend() is not None


def test_model_costs_read_the_committed_benchmark_at_its_geometry() -> None:
    import json

    import torch

    from mfjle_lib.course import timing
    from mfjle_lib.training import make_config

    paper = make_config("paper", model="mfjle")
    costs = timing.model_costs(paper, torch.device("cpu"), reps=None)
    bench = json.loads((REPO / "benchmarks" / "results" / "avx2" / "bench_paper.json").read_text())
    assert costs["ms / image"].tolist() == [
        bench["resnet18_infer_ms_per_img"],
        bench["mfjle_naive_infer_ms_per_img"],
        bench["mfjle_deploy_fp32_infer_ms_per_img"],
    ]
    assert costs.loc["MF-JLE", "GFLOPs / image"] / costs.loc["ResNet-18", "GFLOPs / image"] == pytest.approx(
        bench["flop_ratio"], rel=1e-6
    )
    assert timing.committed_benchmark(make_config("fast", model="mfjle")) is None  # no benchmark at that geometry


FERPLUS = REPO / "results" / "ferplus"


def test_lessons_06_and_08_read_the_committed_ferplus_study() -> None:
    for lesson, call in (
        ("06_metrics", 'real_faces.run_outputs("ferplus"'),
        ("08_advanced_fusion", 'real_faces.fusion_on_val("ferplus"'),
    ):
        nb = json.loads((REPO / "notebooks" / f"{lesson}.ipynb").read_text())
        assert call in "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"), lesson


def test_study_outputs_read_every_finished_seed_present() -> None:
    """Whatever seeds have landed: the helper finds each finished run of the arm, and only those."""
    runs = json.loads((FERPLUS / "table.json").read_text())["runs"]
    for arm in ("resnet18", "mfjle"):
        seeds = sorted(int(n.rsplit("seed", 1)[1]) for n in runs if n.startswith(f"official_{arm}_scratch_seed"))
        found = real_faces.run_outputs("ferplus", arm)
        assert list(found) == seeds and seeds
        assert all(len(o["labels"]) == runs[f"official_{arm}_scratch_seed{s}"]["n_test"] for s, o in found.items())


def test_the_lessons_ferplus_numbers_are_the_studys() -> None:
    """Lesson 06's table and lesson 08's re-fusion give, run by run, the nine metrics of the study's table.json (both
    readings), so the lessons and the README's FER+ block agree."""
    runs = json.loads((FERPLUS / "table.json").read_text())["runs"]
    fer = {arm: real_faces.run_outputs("ferplus", arm) for arm in ("resnet18", "mfjle")}
    table = real_faces.metrics_by_seed(fer)
    for arm, title in (("resnet18", "ResNet-18"), ("mfjle", "MF-JLE")):
        for s in fer[arm]:
            want = runs[f"official_{arm}_scratch_seed{s}"]["paper_fusion"]
            got = table.loc[(title, f"seed {s}")]
            assert all(abs(got[HEADERS[k]] - want[k]) < 1e-12 for k in METRIC_KEYS), (arm, s)
    fusion = real_faces.fusion_on_val("ferplus")
    for s in fusion.per_seed.index:
        for key, arm in (("chosen", "mfjle"), ("base_chosen", "resnet18"), ("paper", "mfjle"), ("base", "resnet18")):
            reading = "val_fusion" if key in ("chosen", "base_chosen") else "paper_fusion"
            want = runs[f"official_{arm}_scratch_seed{s}"][reading]
            assert all(abs(fusion.readings[key][s][k] - want[k]) < 1e-9 for k in METRIC_KEYS), (key, s)


def test_a_fusion_chosen_by_seed_never_reads_the_test_split() -> None:
    """Shuffling the test labels changes what is reported, never what is chosen."""
    import numpy as np

    val, test = (
        {arm: real_faces.run_outputs("ferplus", arm, part=part) for arm in ("mfjle", "resnet18")}
        for part in ("val", "test")
    )
    s = min(val["mfjle"])
    rng = np.random.default_rng(0)
    shuffled = {arm: {s: {**test[arm][s], "labels": rng.permutation(test[arm][s]["labels"])}} for arm in test}
    picks = [
        fusion_by_seed({s: val["mfjle"][s]}, t["mfjle"], {s: val["resnet18"][s]}, t["resnet18"], threshold_only=True)
        for t in ({arm: {s: test[arm][s]} for arm in test}, shuffled)
    ]
    cols = ["MF-JLE local weight", "MF-JLE threshold", "ResNet-18 threshold", "MF-JLE threshold, paper weights"]
    assert picks[0].per_seed[cols].equals(picks[1].per_seed[cols])
    assert not picks[0].per_seed["test micro-F1, chosen"].equals(picks[1].per_seed["test micro-F1, chosen"])
    gaps = picks[0].gaps()
    assert list(gaps.columns) == [f"seed {s}", "mean ± std", "95 % interval"] and len(gaps) == 6
