"""The accuracy check of a faster inference path: how many label decisions flip against fp32, and how far a
probability moves (docs/DESIGN.md §6).

A faster path (bf16, int8) is accurate enough when, on a pool of at least `POOL_MIN` faces, few of
its label decisions (face × emotion, at the run's thresholds on the fused output) differ from
fp32's and no fused probability moves far. This measures what a path changes, not what it scores:
on JAFFE's 43 validation faces one flipped decision moves micro-F1 by 0.005 to 0.009 (the committed
study's runs, `results/jaffe/paper_mfjle_*`), so the limit this replaces, micro-F1 within 0.005 of
fp32, measured noise. The micro-F1 change is still reported, for information.

Everything here is a pure function of arrays and numbers, so the rule is tested on any machine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: Faces a check needs: the run's validation faces, topped up with built-in faces up to this many.
#: 256 faces are 1,536 decisions, so the flip limit below sits above what one face (6) can reach.
POOL_MIN = 256

#: The largest fraction of decisions that may flip. 1 % of 1,536 decisions is 15: one face flips at
#: most 6 and two at most 12, so no one face, nor two, can fail a path by themselves. What was
#: measured on trained 224-px checkpoints (`benchmarks/check_deploy.py`, 3,600 decisions):
#: bf16 flipped 3 (0.08 %) and int8 20 (0.56 %), both well inside it.
FLIP_LIMIT = 0.01

#: The largest |p(path) - p(fp32)| of any fused probability. A path whose rounding moves one
#: probability this far is broken somewhere (a saturating kernel, a bad calibration), even when
#: few decisions flip. Measured on trained checkpoints: bf16 moved at most 0.010 and int8 0.119 at
#: 224 px (600 faces); the limit leaves int8's honest quantisation error room and stops anything
#: that moves a probability by a fifth.
MAX_CHANGE_LIMIT = 0.2


def decision_thresholds(activation: str, num_labels: int = 6) -> tuple[float, ...]:
    """The thresholds a run decides labels at: 0.5 (the nine metrics'), and for softmax also 1/L (its second rule)."""
    # Softmax outputs are reported under both rules (`evaluation.per_label.decision_rules_softmax`):
    # a decision that flips under either counts.
    return (0.5, 1.0 / num_labels) if activation == "softmax" else (0.5,)


def flipped_decisions(reference: np.ndarray, probs: np.ndarray, thresholds: Sequence[float] = (0.5,)) -> np.ndarray:
    """(N, L) bool: the (face, label) decisions that differ between two (N, L) probability arrays at any threshold."""
    reference, probs = np.asarray(reference, np.float64), np.asarray(probs, np.float64)
    if reference.shape != probs.shape or reference.ndim != 2:
        raise ValueError(f"two (N, L) probability arrays are compared, got {reference.shape} and {probs.shape}")
    flipped = np.zeros(reference.shape, bool)
    for t in thresholds:
        flipped |= (reference >= t) != (probs >= t)
    return flipped


def verdict(decisions_flipped: int, decisions: int, max_abs_change: float) -> bool:
    """Whether a path passes: at most `FLIP_LIMIT` of its decisions flipped and no probability moved past
    `MAX_CHANGE_LIMIT`."""
    return bool(decisions > 0 and decisions_flipped <= FLIP_LIMIT * decisions and max_abs_change <= MAX_CHANGE_LIMIT)


def compare_to_reference(
    reference: np.ndarray, probs: np.ndarray, thresholds: Sequence[float] = (0.5,)
) -> dict[str, Any]:
    """Flipped decisions, the largest and mean probability change, the limits and the verdict of one path against
    fp32."""
    flipped = flipped_decisions(reference, probs, thresholds)
    change = np.abs(np.asarray(probs, np.float64) - np.asarray(reference, np.float64))
    n_flipped, n = int(flipped.sum()), int(flipped.size)
    max_change = float(change.max()) if change.size else 0.0
    return {
        "decisions_flipped": n_flipped,
        "decisions": n,
        "faces_with_a_flip": int(flipped.any(axis=1).sum()),
        "max_abs_change": max_change,
        "mean_abs_change": float(change.mean()) if change.size else 0.0,
        "thresholds": [float(t) for t in thresholds],
        "flip_limit": FLIP_LIMIT,
        "max_change_limit": MAX_CHANGE_LIMIT,
        "passed": verdict(n_flipped, n, max_change),
    }


def check_summary(check: Mapping[str, Any]) -> str:
    """One phrase: flips and the largest change against their limits, the pool, and the micro-F1 change (for
    information)."""
    pool = check.get("pool") or {}
    # The pool's parts in order: the run's own split (validation), then built-in faces.
    parts = {k: v for k, v in pool.items() if k not in ("faces", "built_in_seed") and v}
    where = " + ".join(f"{v} {k.replace('_', '-')}" for k, v in parts.items())
    faces = f" on {pool['faces']} faces" + (f" ({where})" if where else "") if "faces" in pool else ""
    own = next((k for k in parts if k != "built_in"), None)
    f1 = check.get("micro_f1_change")
    share = 100 * check["decisions_flipped"] / max(check["decisions"], 1)
    return (
        f"{check['decisions_flipped']} of {check['decisions']} decisions flipped "
        f"({share:.2f} %, limit {100 * check['flip_limit']:g} %), "
        f"max |Δp| {check['max_abs_change']:.3f} (limit {check['max_change_limit']:g}){faces}"
        + (f"; {own} micro-F1 change {f1:+.4f}, for information" if f1 is not None and own else "")
    )
