"""Writing released runs (`make retrain`): finished full-mode runs copied into `results/lessons` in compact form.

What a released run holds and how lessons read it: `mfjle_lib/course/released.py`. Here: the
compact outputs (float32 logits, checked to give back the run's saved probabilities bit for bit),
the weight distances of runs that differ only in λ, and the manifest.
"""

from __future__ import annotations

import json
import platform
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mfjle_lib.course.released import RELEASE_DIR
from mfjle_lib.course.weights import compare_weights, released_distances_file
from mfjle_lib.evaluation.outputs import load_outputs, save_outputs
from mfjle_lib.files import atomic_write_text
from mfjle_lib.models.registry import model_spec
from mfjle_lib.runtime import machine_record
from mfjle_lib.training.run_files import load_checkpoint

MANIFEST = "RELEASE.json"
#: What a released npz keeps: logits are float32 on the way out of the model, so float32 is lossless.
COMPACT_KEYS = (
    "global_logits",
    "local_logits",
    "ids",
    "labels",
    "emotions",
    "fusion_weights",
    "activation",
    "inference_path",
)
OUTPUT_FILES = ("val_outputs.npz", "test_outputs.npz")
TEXT_FILES = ("metrics.json", "history.csv")


def compact_outputs(outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The released form of saved outputs: logits as float32 (exact), labels, ids, fusion settings."""
    out = {}
    for key in COMPACT_KEYS:
        if key not in outputs:
            continue
        value = np.asarray(outputs[key])
        if key.endswith("_logits"):
            single = value.astype(np.float32)
            if not np.array_equal(
                single.astype(np.float64), value
            ):  # the model ran in float32; anything else is not lossless
                raise ValueError(f"{key} is not exactly representable in float32: cannot release it compactly")
            value = single
        out[key] = value
    return out


def release_run(run: Path, dest: Path) -> dict[str, Any]:
    """Copy one finished run's compact artefacts into `dest` (checked: the outputs load back bit for bit)."""
    missing = [f for f in ("checkpoint.pt", *TEXT_FILES, *OUTPUT_FILES) if not (run / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{run}: not a finished run (missing {', '.join(missing)})")
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    config = load_checkpoint(run / "checkpoint.pt")["config"]
    atomic_write_text(tmp / "config.json", json.dumps(config, indent=1, sort_keys=True) + "\n")
    for name in TEXT_FILES:
        shutil.copyfile(run / name, tmp / name)
    for name in OUTPUT_FILES:
        full = load_outputs(run / name)
        save_outputs(tmp / name, compact_outputs(full))
        back = load_outputs(tmp / name)
        for key in ("module_probs", "fused_probs", "labels"):
            if not np.array_equal(back[key], full[key]):
                raise ValueError(f"{run / name}: the compact form does not give back {key} exactly")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return {
        "model": config["model"],
        "seed": config["seed"],
        "preset": config["preset"],
        "bytes": sum(f.stat().st_size for f in dest.iterdir()),
    }


def lambda_pairs(runs: list[Path]) -> list[tuple[Path, Path]]:
    """Pairs of finished runs whose settings differ only in λ (the same model, seed, data and recipe)."""
    groups: dict[str, list[Path]] = {}
    for run in runs:
        config = load_checkpoint(run / "checkpoint.pt")["config"]
        if not model_spec(config["model"]).has_locals:
            continue
        key = json.dumps(
            {k: v for k, v in config.items() if k not in ("lambdas", "fusion_weights", "device")}, sort_keys=True
        )
        groups.setdefault(key, []).append(run)
    return [(a, b) for group in groups.values() for i, a in enumerate(group) for b in group[i + 1 :]]


def collect(
    runs: Path, dest: Path = RELEASE_DIR, command: str = "", note: str = "", add: bool = False
) -> dict[str, Any]:
    """Release every finished run under `runs` (e.g. runs/full_synthetic) into `dest`, with a manifest.

    `add` keeps the runs already released and their manifest, and adds these runs beside them, each entry
    with its own note, machine and date (a control trained later, on another CPU, says so).
    """
    dest.mkdir(parents=True, exist_ok=True)
    found = sorted(p for p in runs.iterdir() if (p / "metrics.json").is_file() and (p / "checkpoint.pt").is_file())
    if not found:
        raise FileNotFoundError(f"{runs}: no finished runs (metrics.json + checkpoint.pt) to release")
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    entries = {p.name: release_run(p, dest / p.name) for p in found}
    for a, b in lambda_pairs(found):  # lesson 08 compares the weights of runs that differ only in λ
        compare_weights(a, b).to_csv(released_distances_file(dest / b.name, a))
        entries[b.name]["bytes"] = sum(f.stat().st_size for f in (dest / b.name).iterdir())
    command = command or "python -m tools.notebook_tools release " + str(runs)
    old = json.loads((dest / MANIFEST).read_text()) if add and (dest / MANIFEST).is_file() else None
    if old is not None:
        machine = machine_record()
        for entry in entries.values():
            entry["added"] = {
                "created": created,
                "command": command,
                "how_trained": note,
                "machine": {k: machine[k] for k in ("cpu", "cpu_extensions", "cpu_count")},
            }
        entries = {**old["runs"], **entries}
    manifest = {
        "about": "Compact artefacts of the full-mode runs the lessons read by default (mfjle_lib/course/released.py).",
        "command": old["command"] if old else command,
        "how_trained": old["how_trained"]
        if old
        else (note or "make retrain (every lesson in full mode, one CPU thread)"),
        "created": old["created"] if old else created,
        "versions": old["versions"] if old else {"python": platform.python_version(), "torch": torch.__version__},
        "machine": old["machine"] if old else platform.processor() or platform.machine(),
        "runs": dict(sorted(entries.items())),
        "total_bytes": sum(e["bytes"] for e in entries.values()),
    }
    atomic_write_text(dest / MANIFEST, json.dumps(manifest, indent=1) + "\n")
    return manifest
