"""The outputs algebra: per-module logits -> module probabilities -> fused probabilities -> metrics.

"Outputs" are a dict of numpy arrays, the form of a run's `test_outputs.npz` / `val_outputs.npz`:
`global_logits` (N, L) and, for MF-JLE, `local_logits` (N, 5, L), in float64; plus, once saved,
`module_probs` (N, M, L), `fused_probs` (N, L), `labels`, `ids`, `fusion_weights`, `activation`.
Probabilities come from float64 logits: float32 sigmoids saturate into ties (σ(17) = 1.0) that
would distort the ranking metrics (docs/DESIGN.md §2, Evaluation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..constants import EMOTIONS
from ..files import atomic_write_bytes
from ..method.fusion import MODULE_NAMES, fuse, module_probs
from ..method.metrics import METRIC_KEYS, multilabel_metrics, multilabel_report
from .per_label import decision_rules_softmax

Outputs = Mapping[str, np.ndarray]


def outputs_module_probs(outputs: Outputs, activation: str = "sigmoid") -> np.ndarray:
    """(N, M, L) float64 probabilities of every module from saved logits: global first, then the locals."""
    g = torch.from_numpy(np.asarray(outputs["global_logits"], np.float64))
    loc = torch.from_numpy(np.asarray(outputs["local_logits"], np.float64)) if "local_logits" in outputs else None
    return module_probs(g, loc, activation).numpy()


def fuse_saved(probs: np.ndarray, fusion_weights: Sequence[float]) -> np.ndarray:
    """`method.fuse` on saved (N, M, L) float64 module probabilities -> (N, L)."""
    return fuse(torch.from_numpy(np.asarray(probs, np.float64)), tuple(float(w) for w in fusion_weights)).numpy()


def fused_metrics(outputs: Outputs, fusion_weights: Sequence[float], threshold: float = 0.5) -> dict[str, float]:
    """Nine metrics of saved outputs fused again with other `fusion_weights` at `threshold` (no retraining)."""
    return multilabel_metrics(outputs["labels"], fuse_saved(outputs["module_probs"], fusion_weights), threshold)


def metrics_record(outputs: Outputs, settings: Mapping[str, Any], threshold: float = 0.5) -> dict[str, Any]:
    """The metrics.json object of outputs in the saved form (`with_probabilities`): nine metrics of the fused output,
    counts, each module's metrics, and `settings`.

    It reads the fused probabilities the outputs carry: one fusion per evaluation.
    """
    labels, per_module, probs = outputs["labels"], outputs["module_probs"], outputs["fused_probs"]
    record: dict[str, Any] = dict(multilabel_report(labels, probs, threshold))
    record["modules"] = {
        name: {k: v for k, v in multilabel_report(labels, per_module[:, m]).items() if k in METRIC_KEYS}
        for m, name in enumerate(MODULE_NAMES[: per_module.shape[1]])
    }
    if str(outputs["activation"]) == "softmax":
        record["decision_rules"] = decision_rules_softmax(labels, probs)
    record.update(
        {
            "fusion_weights": np.asarray(outputs["fusion_weights"], np.float64).tolist(),
            "threshold": float(threshold),
            **settings,
        }
    )
    return record


def with_probabilities(
    outputs: Outputs, labels: np.ndarray, ids: Sequence[str], activation: str, fusion_weights: Sequence[float]
) -> dict[str, np.ndarray]:
    """Logits plus everything re-fusion needs: module and fused probabilities, labels, ids, fusion_weights,
    activation."""
    probs = outputs_module_probs(outputs, activation)
    fusion_weights = tuple(float(w) for w in fusion_weights)[: probs.shape[1]]
    return {
        **{k: np.asarray(v) for k, v in outputs.items()},
        "ids": np.asarray(list(ids)),
        "labels": np.asarray(labels, np.float32),
        "emotions": np.asarray(EMOTIONS),
        "module_probs": probs,
        "fused_probs": fuse_saved(probs, fusion_weights),
        "fusion_weights": np.asarray(fusion_weights),
        "activation": np.asarray(activation),
    }


def save_outputs(path: str | Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write outputs (from `with_probabilities`) as a compressed npz, atomically."""
    atomic_write_bytes(Path(path), lambda fh: np.savez_compressed(fh, **arrays))


def load_outputs(path: str | Path) -> dict[str, np.ndarray]:
    """Read a `test_outputs.npz` or `val_outputs.npz` (no pickles); a released run's logits-only form gets its
    probabilities back."""
    with np.load(Path(path), allow_pickle=False) as f:
        out = {k: f[k] for k in f.files}
    if "module_probs" not in out and "global_logits" in out and "labels" in out:
        # Released runs (results/lessons) keep the float32 logits only; the float64 algebra is exact and cheap.
        logits = {k: out[k].astype(np.float64) for k in ("global_logits", "local_logits") if k in out}
        rebuilt = with_probabilities(logits, out["labels"], out["ids"], str(out["activation"]), out["fusion_weights"])
        return {**out, **rebuilt}  # keys the rebuild does not make (the inference path) come through as saved
    return out
