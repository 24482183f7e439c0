"""The accuracy check of a faster inference path: flipped decisions counted by hand, the limits, and the pool of faces
it is counted on (validation faces topped up with built-in ones)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mfjle_lib.training.inference_path as inference
from mfjle_lib.data.synthetic import load_synthetic
from mfjle_lib.perf import path_check
from mfjle_lib.training.batches import load_data
from mfjle_lib.training.config import make_config

# Two faces, three labels. fp32 against a path: face 0 crosses 0.5 on label 0 (0.49 -> 0.51) and
# moves 0.2 on label 2 without crossing; face 1 crosses on label 1 (0.50 -> 0.49: 0.50 counts as
# positive, >= threshold); nothing else moves.
REF = np.array([[0.49, 0.51, 0.90], [0.20, 0.50, 0.70]])
PATH = np.array([[0.51, 0.51, 0.70], [0.20, 0.49, 0.70]])


def test_flips_are_counted_per_face_and_label_at_the_threshold() -> None:
    flipped = path_check.flipped_decisions(REF, PATH)
    assert flipped.tolist() == [[True, False, False], [False, True, False]]
    check = path_check.compare_to_reference(REF, PATH)
    assert (check["decisions_flipped"], check["decisions"], check["faces_with_a_flip"]) == (2, 6, 2)
    assert check["max_abs_change"] == pytest.approx(0.2) and check["mean_abs_change"] == pytest.approx(0.23 / 6)
    assert check["thresholds"] == [0.5]
    # 2 of 6 decisions is a third: far past the limit.
    assert check["passed"] is False
    same = path_check.compare_to_reference(REF, REF)
    assert same["decisions_flipped"] == 0 and same["max_abs_change"] == 0 and same["passed"] is True


def test_softmax_decisions_flip_under_either_of_its_rules() -> None:
    assert path_check.decision_thresholds("sigmoid") == (0.5,)
    assert path_check.decision_thresholds("softmax") == (0.5, 1 / 6)
    ref, moved = np.array([[0.16, 0.30]]), np.array([[0.17, 0.30]])  # crosses 1/6 only
    assert path_check.compare_to_reference(ref, moved, (0.5,))["decisions_flipped"] == 0
    assert path_check.compare_to_reference(ref, moved, (0.5, 1 / 6))["decisions_flipped"] == 1
    with pytest.raises(ValueError, match="two \\(N, L\\) probability arrays"):
        path_check.flipped_decisions(ref, moved[0])


def test_no_face_and_no_two_faces_fail_a_path_alone_in_the_smallest_pool() -> None:
    decisions = 6 * path_check.POOL_MIN
    assert path_check.verdict(6, decisions, 0.01) and path_check.verdict(12, decisions, 0.01)  # one face, two faces
    assert path_check.verdict(15, decisions, 0.01) and not path_check.verdict(16, decisions, 0.01)
    # The largest change is a limit of its own, whatever the flips.
    assert path_check.verdict(0, decisions, path_check.MAX_CHANGE_LIMIT)
    assert not path_check.verdict(0, decisions, path_check.MAX_CHANGE_LIMIT + 1e-9)
    assert not path_check.verdict(0, 0, 0.0)  # nothing compared: nothing passed


def test_the_summary_says_flips_change_and_pool() -> None:
    check = {
        **path_check.compare_to_reference(REF, REF),
        "pool": {"faces": 256, "validation": 43, "built_in": 213},
        "micro_f1_change": 0.0,
    }
    assert path_check.check_summary(check) == (
        "0 of 6 decisions flipped (0.00 %, limit 1 %), max |Δp| 0.000 (limit 0.2) on 256 faces "
        "(43 validation + 213 built-in); validation micro-F1 change +0.0000, for information"
    )


@pytest.fixture(scope="module")
def jaffe_data(data_dir, tmp_path_factory):
    """A tiny JAFFE tree (20 faces, 4 in validation), prepared at 32 px."""
    import dataset_trees as trees

    root = trees.build_jaffe(tmp_path_factory.mktemp("jaffe") / "jaffe")
    cfg = make_config("fast", dataset="jaffe", root=str(root), model="mfjle", source_size=32, device="cpu")
    return load_data(cfg, torch.device("cpu"), show_progress=False)


def test_a_small_validation_split_is_topped_up_with_built_in_faces(jaffe_data) -> None:
    val = np.asarray(jaffe_data.splits["val"])
    pool = inference.check_pool(jaffe_data)
    n = path_check.POOL_MIN
    assert (
        pool.images.shape == (n, 3, 32, 32) and pool.images.dtype == torch.uint8 and pool.landmarks.shape == (n, 5, 2)
    )
    assert pool.record() == {"faces": n, "validation": len(val), "built_in": n - len(val), "built_in_seed": 4242}
    # The validation faces first, as the run has them; then the first built-in faces of the check's seed, at R.
    assert torch.equal(pool.images[: len(val)], jaffe_data.images[torch.as_tensor(val)])
    assert torch.equal(pool.landmarks[: len(val)], jaffe_data.landmarks[torch.as_tensor(val)])
    built_in = load_synthetic(n, 32, inference.POOL_SEED).records[: n - len(val)]
    assert torch.equal(
        pool.images[len(val) :], torch.from_numpy(np.stack([r.image for r in built_in])).permute(0, 3, 1, 2)
    )
    assert np.array_equal(pool.labels, jaffe_data.prepared.labels[val])


def test_enough_validation_faces_need_no_built_in_ones(jaffe_data) -> None:
    pool = inference.check_pool(jaffe_data, minimum=2)
    n_val = len(jaffe_data.splits["val"])
    assert pool.images.shape[0] == n_val and pool.record() == {"faces": n_val, "validation": n_val, "built_in": 0}
