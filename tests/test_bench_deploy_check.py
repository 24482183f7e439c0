"""bench.py's reader of the deploy check: today's `global_size` and the older `image_size` both name S_g; each method
judged by today's rule from its recorded numbers."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # benchmarks/ is not a package: its scripts import each other by name

from bench_infer import DEPLOY_CHECK, load_deploy_check, passes_today  # noqa: E402

from mfjle_lib.constants import DEFAULT_CROP_FRACTION, DEFAULT_GLOBAL_SIZE, DEFAULT_LOCAL_SIZE, DEFAULT_SOURCE_SIZE  # noqa: E402


def _args(path: Path, global_size: int = 224) -> argparse.Namespace:
    """The flags `load_deploy_check` reads, at R = 224, S_l = 64, c = 0.25."""
    return argparse.Namespace(
        deploy_check=str(path), source_size=224, global_size=global_size, local_size=64, crop_fraction=0.25
    )


def _write(tmp_path: Path, s_g_key: str) -> Path:
    """A deploy check whose geometry names S_g by `s_g_key`."""
    path = tmp_path / "deploy_check.json"
    geometry = {"source_size": 224, s_g_key: 224, "local_size": 64, "crop_fraction": 0.25}
    path.write_text(json.dumps({"method": "int8", "passed": True, "geometry": geometry}))
    return path


@pytest.mark.parametrize("s_g_key", ["global_size", "image_size"])
def test_old_and_new_key_read_as_global_size(tmp_path: Path, s_g_key: str) -> None:
    path = _write(tmp_path, s_g_key)
    check = load_deploy_check(_args(path))
    assert check["same_geometry"] is True
    assert check["geometry"] == {"source_size": 224, "global_size": 224, "local_size": 64, "crop_fraction": 0.25}
    # The old key is compared, not skipped: another S_g is another geometry.
    assert load_deploy_check(_args(path, global_size=128))["same_geometry"] is False


def test_committed_check_is_at_the_default_geometry() -> None:
    """The committed file uses today's key and matches bench.py's defaults, so the CPU default path may use it."""
    geometry = json.loads(DEPLOY_CHECK.read_text())["geometry"]
    assert "image_size" not in geometry
    args = argparse.Namespace(
        deploy_check=str(DEPLOY_CHECK),
        source_size=DEFAULT_SOURCE_SIZE,
        global_size=DEFAULT_GLOBAL_SIZE,
        local_size=DEFAULT_LOCAL_SIZE,
        crop_fraction=DEFAULT_CROP_FRACTION,
    )
    assert load_deploy_check(args)["same_geometry"] is True


def test_missing_or_broken_file_is_none(tmp_path: Path) -> None:
    assert load_deploy_check(_args(tmp_path / "absent.json")) is None
    (tmp_path / "bad.json").write_text("{not json")
    assert load_deploy_check(_args(tmp_path / "bad.json")) is None


def test_a_recorded_check_is_judged_by_todays_rule_from_its_numbers(tmp_path: Path) -> None:
    """Flipped decisions and the largest change decide; an older file's own `passed` (micro-F1 rule) does not."""
    old = {"decisions_flipped": 20, "decisions_total": 3600, "max_abs_prob_diff": 0.119, "passed": False}
    assert passes_today(old) is True
    assert passes_today({**old, "decisions_flipped": 40, "passed": True}) is False  # 1.1 % of the decisions
    assert passes_today({**old, "max_abs_prob_diff": 0.25, "passed": True}) is False
    assert passes_today({"decisions_flipped": 0, "decisions": 1536, "max_abs_change": 0.0}) is True
    assert passes_today({"passed": True}) is False  # nothing to judge by
    path = tmp_path / "deploy_check.json"
    geometry = {"source_size": 224, "global_size": 224, "local_size": 64, "crop_fraction": 0.25}
    path.write_text(json.dumps({"method": "int8", **old, "geometry": geometry, "methods": {"int8": old}}))
    check = load_deploy_check(_args(path))
    assert check["passed"] is True and check["methods"]["int8"]["passed"] is True


def test_the_committed_check_passes_int8_under_todays_rule() -> None:
    """The committed check (600 test faces, a trained 224-px checkpoint): every method within the limits."""
    methods = json.loads(DEPLOY_CHECK.read_text())["methods"]
    assert {m: passes_today(r) for m, r in methods.items()} == {"fp32": True, "bf16": True, "mixed": True, "int8": True}
