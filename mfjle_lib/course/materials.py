"""Material the lessons show: offline photos, honest captions, identity overlap between splits, module by module."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.cbook as cbook
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from skimage import data as skdata

from ..constants import EMOTION_TITLES
from ..data.registry import dataset_spec
from ..evaluation.outputs import fuse_saved
from ..method.fusion import MODULE_TITLES
from ..training.config import TrainConfig


def sample_photos() -> dict[str, Any]:
    """Real photos that ship offline (lessons 02 and 07): two faces and one photo without a face."""
    return {
        "astronaut": skdata.astronaut(),
        "grace_hopper": plt.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)),
        "coffee": skdata.coffee(),
    }


def checkpoint_caption(cfg: TrainConfig) -> str:
    """One honest line on what a checkpoint learned from (lesson 07's caption)."""
    if dataset_spec(cfg.dataset).built_in:
        data = f"{cfg.num_images or 'the default number of'} rendered synthetic faces (built-in dataset)"
        note = (
            "These are drawn cartoons, not photos: what it says about a real face means little; "
            "it shows the pipeline, not a judgement."
        )
    else:
        data = f"the {cfg.dataset} dataset ({cfg.root or 'root not recorded'})"
        note = "It predicts how that dataset's annotators would label the expression, not what anyone feels."
    return (
        f"checkpoint: {cfg.model}, learned from {data}; preset {cfg.preset}, {cfg.epochs} epochs, "
        f"R={cfg.source_size}, S_g={cfg.global_size}, S_l={cfg.local_size}, c={cfg.crop_fraction:g}, seed "
        f"{cfg.seed}.\n{note}"
    )


def subject_overlap(subjects: list[str | None], splits: dict) -> dict[str, Any]:
    """How many test identities also appear in training (lesson 01: why JAFFE needs a subject split)."""
    subj = np.asarray(subjects, dtype=object)
    train_ids = set(subj[splits["train"]].tolist())
    test_ids = subj[splits["test"]]
    seen = np.isin(test_ids, list(train_ids))
    return {
        "test faces": int(len(test_ids)),
        "test identities": int(len(set(test_ids.tolist()))),
        "of which also in train": int(len(set(test_ids.tolist()) & train_ids)),
        "test faces of a trained identity": f"{seen.mean():.0%}" if len(test_ids) else "–",
    }


def module_table(
    module_probs: np.ndarray, fusion_weights: Sequence[float], truth: np.ndarray | None = None
) -> pd.DataFrame:
    """What each module says about one face (lesson 07): a row of six probabilities per module (whole face, then the
    five landmarks) with its fusion weight, the fused row (Section III.C) and, where known, the true labels."""
    probs = np.asarray(module_probs, np.float64)
    weights = [float(w) for w in fusion_weights][: len(probs)]
    table = pd.DataFrame(probs, index=list(MODULE_TITLES[: len(probs)]), columns=list(EMOTION_TITLES))
    table["weight"] = weights
    table.loc["fused"] = [*fuse_saved(probs[None], weights)[0], np.nan]
    if truth is not None:
        table.loc["true labels"] = [*(np.asarray(truth, np.float64) > 0.5).astype(float), np.nan]
    return table
