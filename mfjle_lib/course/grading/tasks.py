"""The blanks of the lab edition: for each, the library's answer, its fixed cases and the hints for likely mistakes.

The pieces of the method are here; the blanks that read results (lessons 04b–08) are in `readings.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ... import method
from ...constants import NUM_LABELS, NUM_LANDMARKS
from .compare import Case, Hint, Task, as_array, difference
from .inputs import fixed_batch, small_mfjle
from .readings import READING_TASKS

# --------------------------------------------------------------------------- the tasks


def _crop_cases() -> list[Case]:
    """Landmarks of 3 faces at R 128, c 0.25; 2 faces at R 224, c 0.15; one face near the corner."""
    g = torch.Generator().manual_seed(2)
    return [
        Case("3 faces, R 128, c 0.25", (128 * torch.rand(3, 5, 2, generator=g, dtype=torch.float64), 128, 0.25)),
        Case("2 faces, R 224, c 0.15", (224 * torch.rand(2, 5, 2, generator=g, dtype=torch.float64), 224, 0.15)),
        Case("1 face near the corner, R 64, c 0.35", (torch.full((1, 5, 2), 3.0, dtype=torch.float64), 64, 0.35)),
    ]


def _boxes_half_side(yours: Any, lib: Any, case: Case) -> bool:
    """The boxes' side is c·R/2 or 2·c·R instead of c·R."""
    try:
        a, b = as_array(yours), as_array(lib)
        side_a, side_b = a[:, 3] - a[:, 1], b[:, 3] - b[:, 1]
        same_centres = np.allclose(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3])
        return a.shape == b.shape and not np.allclose(side_a, side_b) and same_centres
    except (IndexError, TypeError, ValueError):
        return False


def _boxes_landmark_major(yours: Any, lib: Any, case: Case) -> bool:
    """Rows ordered landmark by landmark instead of face by face."""
    try:
        a, b = as_array(yours), as_array(lib)
        n = b.shape[0] // NUM_LANDMARKS
        reorder = b.reshape(n, NUM_LANDMARKS, -1).transpose(1, 0, 2).reshape(b.shape)
        return n > 1 and a.shape == b.shape and np.allclose(a[:, 1:], reorder[:, 1:])
    except (IndexError, TypeError, ValueError):
        return False


def _no_index_column(yours: Any, lib: Any, case: Case) -> bool:
    """Four columns: the boxes without roi_align's batch index."""
    try:
        return as_array(yours).shape[-1] == 4
    except (TypeError, ValueError):
        return False


#: The two parts of the six-module forward's answer, named in its verdicts.
FORWARD_PARTS = ("the global logits", "the local logits")


def _forward_cases() -> list[Case]:
    """A small MF-JLE (S_g 16, S_l 8, c 0.25) in eval mode on 3 faces of 32 px, and on 1 face."""
    net = small_mfjle(seed=3).eval()
    return [
        Case(f"{n} face(s) of 32 px", (net, fixed_batch(4 + n, n).images, fixed_batch(4 + n, n).landmarks))
        for n in (3, 1)
    ]


def _library_forward(net: nn.Module, images: torch.Tensor, landmarks: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The six modules through the method's own forward: (global logits (B,L), local logits (B,5,L))."""
    out = net(images, landmarks)
    return out.global_logits, out.local_logits


def _global_not_resized(yours: Any, lib: Any, case: Case) -> bool:
    """The global logits differ while the locals match: the face was not resized to S_g first."""
    g, local = FORWARD_PARTS
    return difference(yours[local], lib[local]) is None and difference(yours[g], lib[g]) is not None


def _locals_differ(yours: Any, lib: Any, case: Case) -> bool:
    """The global logits match while the locals do not."""
    g, local = FORWARD_PARTS
    return difference(yours[g], lib[g]) is None and difference(yours[local], lib[local]) is not None


def _logit_cases() -> list[Case]:
    """Logits z and labels y of 4 faces x 6 emotions, one with logits of ±40 (where log σ(z) must not overflow)."""
    g = torch.Generator().manual_seed(5)
    z = 3 * torch.randn(4, NUM_LABELS, generator=g, dtype=torch.float64)
    y = (torch.rand(4, NUM_LABELS, generator=g) < 0.4).to(torch.float64)
    big = torch.tensor([[40.0, -40.0, 0.0, 2.0, -3.0, 40.0]], dtype=torch.float64)
    y_big = torch.tensor([[1.0, 0.0, 0.0, 1.0, 0.0, 0.0]], dtype=torch.float64)
    return [Case("4 faces", (z, y)), Case("one face with logits of ±40", (big, y_big))]


def _nonfinite(yours: Any, lib: Any, case: Case) -> bool:
    """The student's value is NaN or infinite where the library's is finite."""
    try:
        return bool(not np.all(np.isfinite(as_array(yours))))
    except (TypeError, ValueError):
        return False


def _sign_or_scale(yours: Any, lib: Any, case: Case) -> bool:
    """The student's loss is the library's times a constant (a sum instead of a mean, or a missing minus)."""
    try:
        a, b = float(as_array(yours)), float(as_array(lib))
        return b != 0 and not np.isclose(a, b) and np.isclose(a / b, round(a / b)) and round(a / b) != 0
    except (TypeError, ValueError):
        return False


def _joint_cases() -> list[Case]:
    """Module outputs (global (B,L), locals (B,5,L)) of 3 faces, labels, and two λ vectors."""
    g = torch.Generator().manual_seed(6)
    out = method.ModelOutput(
        2 * torch.randn(3, NUM_LABELS, generator=g, dtype=torch.float64),
        2 * torch.randn(3, NUM_LANDMARKS, NUM_LABELS, generator=g, dtype=torch.float64),
    )
    y = (torch.rand(3, NUM_LABELS, generator=g) < 0.4).to(torch.float64)
    return [
        Case("the paper's λ = 0.01", (out, y, method.DEFAULT_LAMBDAS)),
        Case("λ = (0.5, 0.1, 1, 0, 2)", (out, y, (0.5, 0.1, 1.0, 0.0, 2.0))),
    ]


def _library_joint(out: method.ModelOutput, y: torch.Tensor, lambdas: Sequence[float]) -> torch.Tensor:
    """L of Eq. 1, the first of what `method.joint_loss` returns."""
    return method.joint_loss(out, y, lambdas)[0]


def _lambda_on_global(yours: Any, lib: Any, case: Case) -> bool:
    """Eq. 1 with the λs ignored (every module weighted 1) or applied to the global loss too."""
    out, y, lambdas = case.args
    unweighted = method.joint_loss(out, y, (1.0,) * NUM_LANDMARKS)[0]
    return difference(yours, unweighted) is None


def _step_cases() -> list[Case]:
    """Two steps of a small MF-JLE with Adam (lr 1e-3) on 4 faces, at the paper's λ and at λ = 0.5."""
    return [Case("two steps, λ = 0.01", (0.01,)), Case("two steps, λ = 0.5", (0.5,))]


def _run_steps(step: Callable[..., Any], case: Case, library: bool = False) -> dict[str, Any]:
    """Two steps from the same fresh small MF-JLE: both losses, then every weight after the second step.

    Weights, not the `.grad` left behind: clearing gradients after the update instead of before the backward is a
    correct step too, while gradients that pile up across steps show in the weights of the second step.
    """
    (lam,) = case.args
    lambdas = (lam,) * NUM_LANDMARKS
    net = small_mfjle(seed=7).train()
    adam = torch.optim.Adam(net.parameters(), lr=1e-3)
    found: dict[str, Any] = {}
    for k in range(2):
        batch = fixed_batch(8 + k, 4)
        if library:
            found[f"the loss of step {k + 1}"] = method.train_step(
                net, adam, batch.images, batch.landmarks, batch.labels, lambdas
            )[0]
        else:
            found[f"the loss of step {k + 1}"] = step(net, adam, batch, lambdas)
    for n, p in net.named_parameters():
        found[f"{n} after two steps"] = p.detach().clone()
    return found


def _no_zero_grad(yours: Any, lib: Any, case: Case) -> bool:
    """The first step matches and the weights moved, but the second step went elsewhere: its gradients held the
    first step's too."""
    return difference(yours["the loss of step 1"], lib["the loss of step 1"]) is None and not _no_update(
        yours, lib, case
    )


def _no_update(yours: Any, lib: Any, case: Case) -> bool:
    """The weights after two steps are the fresh model's: the optimiser never stepped."""
    fresh = dict(small_mfjle(seed=7).named_parameters())
    return all(difference(yours[f"{n} after two steps"], p) is None for n, p in fresh.items())


def _fuse_cases() -> list[Case]:
    """Module probabilities (B, 6 modules, L) of 3 faces with the paper's weights and with others; one module alone."""
    g = torch.Generator().manual_seed(9)
    p = torch.rand(3, 1 + NUM_LANDMARKS, NUM_LABELS, generator=g, dtype=torch.float64)
    return [
        Case("the paper's weights (1, 0.01 × 5)", (p, method.paper_fusion_weights())),
        Case("weights (1, 2, 0, 0.5, 1, 3)", (p, (1.0, 2.0, 0.0, 0.5, 1.0, 3.0))),
    ]


def _unnormalised(yours: Any, lib: Any, case: Case) -> bool:
    """The fused value is the library's times Σw: the weighted sum was not divided by the weights' sum."""
    p, w = case.args
    total = float(np.sum(w))
    return difference(yours, as_array(lib) * total) is None


def _sigmoid_again(yours: Any, lib: Any, case: Case) -> bool:
    """A sigmoid applied to the fused probabilities (the paper's second 'activation function of Sigmoid')."""
    lib_a = as_array(lib)
    p, w = case.args
    return (
        difference(yours, 1 / (1 + np.exp(-lib_a))) is None
        or difference(yours, 1 / (1 + np.exp(-lib_a * float(np.sum(w))))) is None
    )


def _metric_cases() -> list[Case]:
    """Labels and scores of 6 faces, with a label-free face, a face with every label and a tie."""
    yt = np.array(
        [
            [1, 0, 0, 1, 0, 0],
            [0, 0, 0, 0, 0, 0],
            [1, 1, 1, 1, 1, 1],
            [0, 1, 0, 0, 0, 0],
            [0, 0, 1, 0, 1, 0],
            [0, 0, 0, 0, 0, 1],
        ]
    )
    ys = np.array(
        [
            [0.9, 0.2, 0.1, 0.6, 0.3, 0.1],
            [0.1, 0.7, 0.2, 0.3, 0.2, 0.1],
            [0.5, 0.4, 0.6, 0.5, 0.2, 0.9],
            [0.3, 0.3, 0.8, 0.1, 0.2, 0.4],
            [0.2, 0.6, 0.55, 0.1, 0.5, 0.3],
            [0.4, 0.1, 0.3, 0.2, 0.6, 0.45],
        ]
    )
    return [Case("6 faces at threshold 0.5", (yt, ys, 0.5)), Case("the same at threshold 0.3", (yt, ys, 0.3))]


def _hamming_not_normalised(yours: Any, lib: Any, case: Case) -> bool:
    """Hamming loss counted per face (not divided by the 6 labels) or summed."""
    try:
        a, b = float(as_array(yours)), float(as_array(lib))
        return bool(np.isclose(a, b * NUM_LABELS) or np.isclose(a, b * NUM_LABELS * len(case.args[0])))
    except (TypeError, ValueError):
        return False


def _coverage_off_by_one(yours: Any, lib: Any, case: Case) -> bool:
    """Coverage without the −1 of Eq. 5 (the worst rank itself)."""
    try:
        return bool(np.isclose(float(as_array(yours)), float(as_array(lib)) + 1))
    except (TypeError, ValueError):
        return False


def _coverage_cases() -> list[Case]:
    """The metric cases without a threshold (coverage ranks the scores): the labelled faces, all six, and ties."""
    yt, ys, _ = _metric_cases()[0].args
    labelled = yt.sum(axis=1) > 0
    tied_y = np.array([[1, 0, 0, 0, 0, 0], [0, 0, 1, 1, 0, 0]])
    tied_s = np.array([[0.4, 0.4, 0.4, 0.1, 0.1, 0.1], [0.7, 0.7, 0.7, 0.7, 0.2, 0.2]])
    return [
        Case("5 labelled faces", (yt[labelled], ys[labelled])),
        Case("6 faces, one label-free", (yt, ys)),
        Case("2 faces whose true labels tie with false ones", (tied_y, tied_s)),
    ]


def _coverage_ties_better(yours: Any, lib: Any, case: Case) -> bool:
    """Tied scores given the better rank (or an order of their own) instead of all taking the worse rank."""
    yt, ys = case.args
    return bool((ys[:, :, None] == ys[:, None, :]).sum(axis=2).max() > 1) and difference(yours, lib) is not None


def _coverage_label_free(yours: Any, lib: Any, case: Case) -> bool:
    """Matches on labelled faces only: the label-free face should count −1 (its worst relevant rank is 0)."""
    yt, ys = case.args
    keep = yt.sum(axis=1) > 0
    return not keep.all() and np.isclose(float(as_array(yours)), method.coverage(yt[keep], ys[keep]))


def _library_step(
    net: nn.Module, optimizer: torch.optim.Optimizer, batch: Any, lambdas: Sequence[float]
) -> torch.Tensor:
    """The library's step with the blank's signature: L after one step of `method.train_step`."""
    return method.train_step(net, optimizer, batch.images, batch.landmarks, batch.labels, lambdas)[0]


TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        Task(
            "crop_boxes",
            "the five crop boxes (Section III.B)",
            "method.crop_boxes",
            method.crop_boxes,
            _crop_cases,
            (
                Hint(_no_index_column, "roi_align wants 5 columns: [face index, x1, y1, x2, y2]"),
                Hint(_boxes_half_side, "each box is a square of side c·R centred on its landmark: c·R/2 on each side"),
                Hint(
                    _boxes_landmark_major,
                    "rows go face by face: face 0's five boxes, then face 1's",
                ),
            ),
        ),
        Task(
            "six_forward",
            "the six-module forward (Section III.B, Fig. 1)",
            "MFJLE.forward",
            _library_forward,
            _forward_cases,
            parts=FORWARD_PARTS,
            hints=(
                Hint(_global_not_resized, "the global module sees the face resized to S_g (method.resize_global)"),
                Hint(
                    _locals_differ,
                    "local net i sees crop i, cut at S_l = net.local_size, c = net.crop_fraction (method.cut_crops)",
                ),
            ),
        ),
        Task(
            "bce",
            "Eq. 2 as intended (binary cross-entropy)",
            "method.bce_loss",
            method.bce_loss,
            _logit_cases,
            (
                Hint(
                    _nonfinite,
                    "Eq. 2 as printed takes log(1 − y) of a 0/1 label; log σ(z) of a large logit needs F.logsigmoid",
                ),
                Hint(_sign_or_scale, "a mean over faces and emotions, with a minus sign in front"),
            ),
        ),
        Task(
            "joint_loss",
            "Eq. 1, the joint loss",
            "method.joint_loss",
            _library_joint,
            _joint_cases,
            (Hint(_lambda_on_global, "λ_i weights local module i's loss only; the global module's weight is 1"),),
        ),
        Task(
            "algorithm1_step",
            "one step of Algorithm 1",
            "method.train_step",
            _library_step,  # what the lesson goes on with; the grader compares through `run`
            _step_cases,
            (
                Hint(_no_update, "the weights never moved: call optimizer.step() after backward"),
                Hint(_no_zero_grad, "gradients add up across steps: optimizer.zero_grad() before backward"),
            ),
            run=_run_steps,
        ),
        Task(
            "fuse",
            "the fusion rule (Section III.C)",
            "method.fuse",
            method.fuse,
            _fuse_cases,
            (
                Hint(
                    _unnormalised,
                    "divide the weighted sum by the weights' sum, so the result stays a probability",
                ),
                Hint(_sigmoid_again, "no second sigmoid: the modules' outputs are already probabilities"),
            ),
        ),
        Task(
            "hamming_loss",
            "Hamming loss (Eq. 3)",
            'method.METRIC_BY_KEY["hamming_loss"]',
            method.METRIC_BY_KEY["hamming_loss"].fn,
            _metric_cases,
            (Hint(_hamming_not_normalised, "divide by the number of labels L too: the mean over faces and labels"),),
        ),
        Task(
            "coverage",
            "coverage (Eq. 5)",
            "method.coverage",
            method.coverage,
            _coverage_cases,
            (
                Hint(_coverage_off_by_one, "Eq. 5 subtracts 1 from the worst rank of a relevant label"),
                Hint(_coverage_label_free, "a face with no label counts −1 (its worst relevant rank is 0)"),
                Hint(
                    _coverage_ties_better, "tied labels all take the worse rank (count those scoring as high or higher)"
                ),
            ),
        ),
        *READING_TASKS,
    )
}
