"""benchmarks/bench.py --quick: the docs/DESIGN.md §4 keys, the page-fault and per-round fields, sane values.

A smoke test of the script's contract (small sizes, two rounds); it asserts no speed target.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CONTRACT_KEYS = (
    "device", "resnet18_infer_ms_per_img", "mfjle_infer_ms_per_img", "mfjle_naive_infer_ms_per_img",
    "mfjle_fused_infer_ms_per_img", "resnet18_train_step_s", "mfjle_train_step_s", "flop_ratio",
    "data_images_per_s", "batch_size", "image_size", "local_size", "crop_fraction", "cpu", "gpu",
)


def test_quick_cpu_run_writes_the_contract_keys(tmp_path):
    out = tmp_path / "bench.json"
    md = tmp_path / "bench.md"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--quick", "--device", "cpu",
                    "--json", str(out), "--markdown", str(md)], check=True, capture_output=True, timeout=600)
    r = json.loads(out.read_text())
    missing = [k for k in CONTRACT_KEYS if k not in r]
    assert not missing, missing
    assert r["device"] == "cpu" and r["gpu"] is None
    for k in CONTRACT_KEYS[1:8] + ("data_images_per_s",):
        assert r[k] > 0, k
    # MF-JLE's five extra ResNet-18s on 32-px crops beside a 64-px global net: more FLOPs, not 6x.
    assert 1.5 < r["flop_ratio"] < 6.0
    # One ratio per timed round (2 in --quick), and the step's page faults per model.
    assert len(r["train_step_ratio_per_round"]) == r["repeats"] == 2
    assert set(r["page_faults_per_train_step"]) == {"resnet18", "mfjle_naive", "mfjle_fused"}
    assert isinstance(r["keep_freed_memory"], bool)
    assert r["targets"]["train_step_ratio_limit"] == 1.1 * r["flop_ratio"]
    table = md.read_text()
    assert "training step ratio MF-JLE / ResNet-18" in table and "per round: min / median / max" in table
