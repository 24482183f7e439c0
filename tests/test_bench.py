"""benchmarks/bench.py --quick: the docs/DESIGN.md §4 keys, their types and ranges, and figures that agree.

A smoke test of the script's contract (small sizes, two rounds); it asserts no speed target. What it
checks is what a reader of the report relies on: every key DESIGN.md §4 promises (read from that
file, so the two cannot drift), the geometry the run was asked for, a FLOP ratio that matches one
counted here on plain torchvision ResNet-18s, headline figures that are the figures of the path
the report names, ratios consistent with the separately reported times, and a markdown table
that shows the JSON's numbers.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
QUICK = {"batch_size": 8, "source_size": 64, "global_size": 64, "local_size": 32, "repeats": 2}
FAKE_LOAD = (3.0, 2.0, 1.0)

pytestmark = pytest.mark.slow  # a real benchmark run: ~1 minute on 2 cores


def _design_benchmark_keys() -> list[str]:
    """The keys of the **Benchmark** paragraph of docs/DESIGN.md §4."""
    text = (ROOT / "docs" / "DESIGN.md").read_text(encoding="utf-8")
    section = text.split("\n## 4.", 1)[1].split("\n## 5.", 1)[0]
    paragraph = section.split("**Benchmark**", 1)[1].split("\n\n", 1)[0]
    keys = re.findall(r"`([a-z0-9_]+)`", paragraph)
    assert len(keys) >= 10, keys
    return keys


def _resnet18_flops(side: int) -> int:
    net = torchvision.models.resnet18(num_classes=6).eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net(torch.zeros(1, 3, side, side))
    return counter.get_total_flops()


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[dict, str]:
    tmp = tmp_path_factory.mktemp("bench")
    out, md = tmp / "bench.json", tmp / "bench.md"
    # The machine's load is faked busy (os.getloadavg patched in the child): the report must say so.
    argv = [
        str(ROOT / "benchmarks" / "bench.py"),
        "--quick",
        "--device",
        "cpu",
        "--json",
        str(out),
        "--markdown",
        str(md),
    ]
    child = (
        f"import os, runpy, sys; os.getloadavg = lambda: {FAKE_LOAD}; sys.argv = {argv!r}; "
        f"sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert json.loads(proc.stdout) == r  # stdout and --json carry the same object
    assert proc.stderr.startswith("WARNING: the benchmark starts on a BUSY machine")  # loud, first, before any figure
    return r, md.read_text()


def test_load_average_is_recorded_and_a_busy_start_is_flagged(report) -> None:
    r, table = report
    assert r["load_average_start"] == list(FAKE_LOAD) and r["load_average_end"] == list(FAKE_LOAD)
    assert r["busy"] is True and r["busy_load"] == 0.5
    assert "load average (1, 5, 15 min) 3.00, 2.00, 1.00 at start" in table and "BUSY" in table


def test_the_torchvision_reference_row_and_the_ratios_to_it(report) -> None:
    """Plain torchvision ResNet-18 timed in the same rounds; every MF-JLE row also as a multiple of it."""
    r, table = report
    ref = r["torchvision_resnet18_infer_ms_per_img"]
    assert isinstance(ref, float) and ref > 0
    ratios = r["ratio_to_torchvision_resnet18"]
    for name in ("resnet18", "mfjle_naive", "mfjle_fused", "mfjle_auto", "mfjle"):
        assert ratios[name] == pytest.approx(r[f"{name}_infer_ms_per_img"] / ref, rel=1e-9), name
    assert f"{ratios['mfjle']:.2f}" in table and "reference: torchvision ResNet-18" in table


def test_design_keys_types_and_geometry(report) -> None:
    r, _ = report
    missing = [k for k in _design_benchmark_keys() if k not in r]
    assert not missing, missing
    assert r["device"] == "cpu" and r["gpu"] is None and isinstance(r["cpu"], str) and r["cpu"]
    assert {k: r[k] for k in QUICK} == QUICK  # the geometry --quick asked for, under the §4 names
    assert "image_size" not in r  # one name per size: S_g is `global_size`, as in configs and checkpoints
    assert r["crop_fraction"] == pytest.approx(0.25)
    timed = [k for k in r if k.endswith(("_infer_ms_per_img", "_train_step_s")) and not k.startswith("process_cpu")]
    assert len(timed) >= 8
    for k in timed + ["data_images_per_s", "data_images_per_s_no_augment", "peak_memory_mb"]:
        assert isinstance(r[k], float) and math.isfinite(r[k]) and r[k] > 0, k
    assert set(r["devices"]) == {"cpu"} and r["devices"]["cpu"] == {k: v for k, v in r.items() if k != "devices"}


def test_flop_ratio_matches_a_count_on_plain_resnets(report) -> None:
    """MF-JLE = one ResNet-18 on the S_g face + five on S_l crops: the ratio follows from the sizes."""
    r, _ = report
    expected = (_resnet18_flops(64) + 5 * _resnet18_flops(32)) / _resnet18_flops(64)
    assert 2.2 < expected < 2.3  # a 32-px crop costs a quarter of a 64-px face
    assert r["flop_ratio"] == pytest.approx(expected, rel=0.01)
    assert r["train_flop_ratio"] == pytest.approx(expected, rel=0.05)
    assert r["mfjle_gflops_per_img"] == pytest.approx(r["resnet18_gflops_per_img"] * r["flop_ratio"], rel=1e-9)


def test_headline_figures_are_the_named_path(report) -> None:
    """`mfjle_*` headline keys are the figures of the picked path; ratios agree with the reported times."""
    r, _ = report
    assert r["local_impl_picked"] in ("loop", "fused")
    form = "mfjle_naive" if r["local_impl_picked"] == "loop" else "mfjle_fused"
    # --quick skips the deploy paths, so the default inference path is the eager picked one.
    assert r["deploy_methods_passed"] == [] and r["mfjle_infer_path"] == f"eager:{r['local_impl_picked']}:fp32"
    assert r["mfjle_infer_ms_per_img"] == r["mfjle_auto_infer_ms_per_img"] == r[f"{form}_infer_ms_per_img"]
    assert r["mfjle_train_step_s"] == r[f"{form}_train_step_s"]
    assert r["train_step_ratio"] == pytest.approx(r["mfjle_train_step_s"] / r["resnet18_train_step_s"], rel=1e-9)
    assert r["data_vs_train_throughput"] == pytest.approx(
        r["data_images_per_s"] * r["mfjle_train_step_s"] / r["batch_size"], rel=1e-9
    )
    # One ratio per timed round; each a ratio of two positive times, and the spread string is theirs.
    per_round = r["train_step_ratio_per_round"]
    assert len(per_round) == r["repeats"] and all(math.isfinite(v) and v > 0 for v in per_round)
    lo, *_, hi = sorted(per_round)
    assert r["train_step_ratio_spread"].startswith(f"{lo:.3f} / ") and r["train_step_ratio_spread"].endswith(
        f" / {hi:.3f}"
    )
    assert set(r["page_faults_per_train_step"]) == {"resnet18", "mfjle_naive", "mfjle_fused"}
    assert all(isinstance(v, int) and v >= 0 for v in r["page_faults_per_train_step"].values())
    assert set(r["process_cpu_ms_per_img"]) == {"torchvision_resnet18", "resnet18", "mfjle_naive", "mfjle_fused"}
    assert isinstance(r["keep_freed_memory"], bool)
    assert isinstance(r["targets"]["train_met"], bool) and isinstance(r["targets"]["data_met"], bool)


def test_peak_memory_is_in_megabytes(report) -> None:
    """Three models (1 + 6 + 6 ResNet-18s) with Adam were alive at once: their weights alone set a floor."""
    r, _ = report
    params = sum(p.numel() for p in torchvision.models.resnet18(num_classes=6).parameters())
    floor_mb = 13 * params * 4 * 3 / 2**20  # float32 weights and Adam's two moments, no gradients counted
    assert floor_mb < r["peak_memory_mb"] < 64 * 1024


def test_markdown_table_shows_the_json_figures(report) -> None:
    r, table = report
    rows = {line.split(" | ")[0].lstrip("| "): line for line in table.splitlines() if line.startswith("| ")}
    assert f"{r['flop_ratio']:.3f}" in rows["FLOP ratio MF-JLE / ResNet-18"]
    assert f"{r['train_step_ratio']:.3f}" in rows["training step ratio MF-JLE / ResNet-18"]
    assert f"{r['resnet18_infer_ms_per_img']:.2f}" in rows["ResNet-18 inference, ms/image"]
    assert "per round: min / median / max" in table and r["train_step_ratio_spread"] in table
    assert f"S_g = {r['global_size']}, S_l = {r['local_size']}" in table
