"""The graders of the lab edition: a student's piece of the method against the method package's, on fixed inputs.

A lesson's blank is a function the student writes from torch primitives; the grader cell under it
calls `check(name, fn)`, which runs both functions on the task's fixed cases, prints one line —
✓, or what differs and a hint — and returns the function the lesson goes on with: the student's
when it matches, the library's otherwise, so a class's Run All never stops on a blank. A blank
left as generated raises `NotImplementedError`, which the grader reports as "not written yet".

Every case runs in float64, so a correct answer written in another order of operations matches to
~1e-12 and the tolerance (`RTOL`, `ATOL`) can be tight enough for any real mistake to cross it.
The models are MF-JLE's own class with a small CNN in place of each ResNet-18, so the step and
forward checks take a second: the six-module wiring, the crops and the fusion are the method's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import method
from ..constants import NUM_LABELS, NUM_LANDMARKS

#: Relative and absolute tolerance of every comparison (all cases run in float64).
RTOL, ATOL = 1e-7, 1e-9

#: What a blank left unfilled raises (the lab edition writes `raise NotImplementedError("not written yet")`).
NOT_WRITTEN = NotImplementedError


@dataclass(frozen=True)
class Case:
    """One fixed input of a task: a label to name it by and the arguments."""

    label: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class Hint:
    """A likely mistake: `matches(yours, library's, case)` says whether it fits; `text` what to look at."""

    matches: Callable[[Any, Any, Case], bool]
    text: str


@dataclass(frozen=True)
class Task:
    """One blank: what it builds (with the paper's place), the library's answer, its cases and hints."""

    name: str
    title: str
    library_name: str
    library: Callable[..., Any]
    cases: Callable[[], list[Case]]
    hints: tuple[Hint, ...] = ()
    # Names of the parts of a tuple answer, for the verdict ("the local logits" rather than "[1]").
    parts: tuple[str, ...] = ()
    # Tasks whose answer changes its inputs (a training step) compare through `run`, given the function.
    run: Callable[[Callable[..., Any], Case, bool], Any] | None = None


# --------------------------------------------------------------------------- comparing outputs


def _as_array(x: Any) -> np.ndarray:
    """A tensor, array or number as a float64 array."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().to(torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def difference(yours: Any, library: Any, where: str = "") -> str | None:
    """None if `yours` equals `library` within the tolerance, else a phrase saying what differs (dicts, tuples too)."""
    if isinstance(library, dict):
        if not isinstance(yours, dict) or set(yours) != set(library):
            return f"{where or 'the result'} should be a dict with keys {sorted(library)}"
        for key in library:
            found = difference(yours[key], library[key], f"{where}{key}")
            if found:
                return found
        return None
    if isinstance(library, (tuple, list)):
        if not isinstance(yours, (tuple, list)) or len(yours) != len(library):
            return f"{where or 'the result'} should be a sequence of {len(library)}, got {type(yours).__name__}"
        for i, (a, b) in enumerate(zip(yours, library)):
            found = difference(a, b, f"{where}[{i}]")
            if found:
                return found
        return None
    if yours is None:
        return f"{where or 'the result'} is None (a missing `return`?)"
    try:
        a = _as_array(yours)
    except (TypeError, ValueError):
        return f"{where or 'the result'} is a {type(yours).__name__}, not numbers"
    b = _as_array(library)
    name = where or "the result"
    if a.shape != b.shape:
        return f"{name} has shape {tuple(a.shape)}, the library's {tuple(b.shape)}"
    bad = ~np.isfinite(a) & np.isfinite(b)
    if bad.any():
        i = np.unravel_index(np.argmax(bad), a.shape) if a.ndim else ()
        at = f" at {tuple(int(k) for k in i)}" if a.ndim else ""
        return f"{name}{at} is {a[i]}, the library's {b[i]:.6g}"
    close = np.isclose(a, b, rtol=RTOL, atol=ATOL, equal_nan=True)
    if close.all():
        return None
    i = np.unravel_index(np.argmax(np.abs(np.where(close, 0, a - b))), a.shape) if a.ndim else ()
    at = f" at {tuple(int(k) for k in i)}" if a.ndim else ""
    count = f" ({int((~close).sum())} of {a.size} values differ)" if a.size > 1 else ""
    return f"{name}{at} is {a[i]:.6g}, the library's {b[i]:.6g}{count}"


# --------------------------------------------------------------------------- the small MF-JLE of the checks


class SmallCNN(nn.Module):
    """Stands in for a ResNet-18 in the checks: conv, BatchNorm, ReLU, global pooling, a linear head."""

    def __init__(self, num_labels: int = NUM_LABELS, width: int = 4) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU())
        self.head = nn.Linear(width, num_labels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> logits (B, L)."""
        return self.head(self.features(x).mean(dim=(2, 3)))


def small_mfjle(seed: int = 0, global_size: int = 16, local_size: int = 8) -> method.MFJLE:
    """MF-JLE's own class (crops, wiring, fusion) with a `SmallCNN` per module, in float64, seeded."""
    torch.manual_seed(seed)
    net = method.MFJLE(global_size=global_size, local_size=local_size, crop_fraction=0.25)
    net.global_net = SmallCNN()
    net.local_nets.nets = nn.ModuleList(SmallCNN() for _ in range(NUM_LANDMARKS))
    return net.double()


def _faces(seed: int, batch: int, size: int = 32) -> SimpleNamespace:
    """A fixed batch: float64 images (B,3,R,R), landmarks (B,5,2) around the template, 0/1 labels (B,L)."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(batch, 3, size, size, generator=g, dtype=torch.float64)
    template = torch.tensor([[0.35, 0.4], [0.65, 0.4], [0.5, 0.55], [0.38, 0.72], [0.62, 0.72]], dtype=torch.float64)
    landmarks = size * template + 2 * torch.randn(batch, NUM_LANDMARKS, 2, generator=g, dtype=torch.float64)
    labels = (torch.rand(batch, NUM_LABELS, generator=g, dtype=torch.float64) < 0.3).to(torch.float64)
    return SimpleNamespace(images=images, landmarks=landmarks, labels=labels)


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
        a, b = _as_array(yours), _as_array(lib)
        side_a, side_b = a[:, 3] - a[:, 1], b[:, 3] - b[:, 1]
        same_centres = np.allclose(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3])
        return a.shape == b.shape and not np.allclose(side_a, side_b) and same_centres
    except (IndexError, TypeError, ValueError):
        return False


def _boxes_landmark_major(yours: Any, lib: Any, case: Case) -> bool:
    """Rows ordered landmark by landmark instead of face by face."""
    try:
        a, b = _as_array(yours), _as_array(lib)
        n = b.shape[0] // NUM_LANDMARKS
        reorder = b.reshape(n, NUM_LANDMARKS, -1).transpose(1, 0, 2).reshape(b.shape)
        return n > 1 and a.shape == b.shape and np.allclose(a[:, 1:], reorder[:, 1:])
    except (IndexError, TypeError, ValueError):
        return False


def _no_index_column(yours: Any, lib: Any, case: Case) -> bool:
    """Four columns: the boxes without roi_align's batch index."""
    try:
        return _as_array(yours).shape[-1] == 4
    except (TypeError, ValueError):
        return False


#: The two parts of the six-module forward's answer, named in its verdicts.
FORWARD_PARTS = ("the global logits", "the local logits")


def _forward_cases() -> list[Case]:
    """A small MF-JLE (S_g 16, S_l 8, c 0.25) in eval mode on 3 faces of 32 px, and on 1 face."""
    net = small_mfjle(seed=3).eval()
    return [Case(f"{n} face(s) of 32 px", (net, _faces(4 + n, n).images, _faces(4 + n, n).landmarks)) for n in (3, 1)]


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
        return bool(not np.all(np.isfinite(_as_array(yours))))
    except (TypeError, ValueError):
        return False


def _sign_or_scale(yours: Any, lib: Any, case: Case) -> bool:
    """The student's loss is the library's times a constant (a sum instead of a mean, or a missing minus)."""
    try:
        a, b = float(_as_array(yours)), float(_as_array(lib))
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
    """Two steps from the same fresh small MF-JLE: both losses, then every gradient and weight after the second."""
    (lam,) = case.args
    lambdas = (lam,) * NUM_LANDMARKS
    net = small_mfjle(seed=7).train()
    adam = torch.optim.Adam(net.parameters(), lr=1e-3)
    found: dict[str, Any] = {}
    for k in range(2):
        batch = _faces(8 + k, 4)
        if library:
            found[f"the loss of step {k + 1}"] = method.train_step(
                net, adam, batch.images, batch.landmarks, batch.labels, lambdas
            )[0]
        else:
            found[f"the loss of step {k + 1}"] = step(net, adam, batch, lambdas)
    for n, p in net.named_parameters():
        found[f"the gradient of {n}"] = p.grad if p.grad is not None else torch.full_like(p, float("nan"))
    for n, p in net.named_parameters():
        found[f"{n} after two steps"] = p.detach().clone()
    return found


def _no_zero_grad(yours: Any, lib: Any, case: Case) -> bool:
    """The first step matches, the weights moved, but the second step's gradients hold the first step's too."""
    return (
        difference(yours["the loss of step 1"], lib["the loss of step 1"]) is None
        and not _no_update(yours, lib, case)
        and any(difference(yours[k], lib[k]) for k in lib if k.startswith("the gradient of"))
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
    return difference(yours, _as_array(lib) * total) is None


def _sigmoid_again(yours: Any, lib: Any, case: Case) -> bool:
    """A sigmoid applied to the fused probabilities (the paper's second 'activation function of Sigmoid')."""
    lib_a = _as_array(lib)
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
        a, b = float(_as_array(yours)), float(_as_array(lib))
        return bool(np.isclose(a, b * NUM_LABELS) or np.isclose(a, b * NUM_LABELS * len(case.args[0])))
    except (TypeError, ValueError):
        return False


def _coverage_off_by_one(yours: Any, lib: Any, case: Case) -> bool:
    """Coverage without the −1 of Eq. 5 (the worst rank itself)."""
    try:
        return bool(np.isclose(float(_as_array(yours)), float(_as_array(lib)) + 1))
    except (TypeError, ValueError):
        return False


def _coverage_cases() -> list[Case]:
    """The metric cases without a threshold (coverage ranks the scores): the labelled faces, then all six."""
    yt, ys, _ = _metric_cases()[0].args
    labelled = yt.sum(axis=1) > 0
    return [Case("5 labelled faces", (yt[labelled], ys[labelled])), Case("6 faces, one label-free", (yt, ys))]


def _coverage_label_free(yours: Any, lib: Any, case: Case) -> bool:
    """Matches on labelled faces only: the label-free face should count −1 (its worst relevant rank is 0)."""
    yt, ys = case.args
    keep = yt.sum(axis=1) > 0
    return not keep.all() and np.isclose(float(_as_array(yours)), method.coverage(yt[keep], ys[keep]))


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
            "the six-module forward (Section III.A, Fig. 1)",
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
            lambda *a: None,  # compared through `run`
            _step_cases,
            (
                Hint(_no_zero_grad, "gradients add up across steps: optimizer.zero_grad() before backward"),
                Hint(_no_update, "the weights never moved: call optimizer.step() after backward"),
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
            ),
        ),
    )
}


def _library_step(
    net: nn.Module, optimizer: torch.optim.Optimizer, batch: Any, lambdas: Sequence[float]
) -> torch.Tensor:
    """The library's step with the blank's signature: L after one step of `method.train_step`."""
    return method.train_step(net, optimizer, batch.images, batch.landmarks, batch.labels, lambdas)[0]


#: What the lesson goes on with when a blank is unfilled or wrong: the library's function, with the blank's signature.
FALLBACKS: dict[str, Callable[..., Any]] = {
    "crop_boxes": method.crop_boxes,
    "six_forward": _library_forward,
    "bce": method.bce_loss,
    "joint_loss": _library_joint,
    "algorithm1_step": _library_step,
    "fuse": method.fuse,
    "hamming_loss": method.METRIC_BY_KEY["hamming_loss"].fn,
    "coverage": method.coverage,
}


def grade(name: str, fn: Callable[..., Any]) -> tuple[bool, str]:
    """(passed, the one-line verdict) of `fn` against the library on task `name`'s cases."""
    task = TASKS[name]
    title = f"{name} — {task.title}"
    cases = task.cases()
    for case in cases:
        try:
            if task.run is not None:
                lib, yours = task.run(fn, case, True), task.run(fn, case, False)
            else:
                yours, lib = fn(*case.args), task.library(*case.args)
            if task.parts and isinstance(yours, (tuple, list)) and len(yours) == len(task.parts):
                yours, lib = dict(zip(task.parts, yours)), dict(zip(task.parts, lib))
        except NOT_WRITTEN:
            return False, f"○ {title}: not written yet — continuing with the library's version ({task.library_name})."
        except Exception as exc:  # noqa: BLE001 - any error in student code becomes a verdict, never a stopped class
            return False, (
                f"✗ {title}: on '{case.label}' your function raised {type(exc).__name__}: {exc} "
                f"— continuing with the library's version ({task.library_name})."
            )
        found = difference(yours, lib)
        if found:
            hint = next((h.text for h in task.hints if _safe(h, yours, lib, case)), None)
            return False, (
                f"✗ {title}: on '{case.label}' {found}"
                + (f". Hint: {hint}" if hint else "")
                + f" — continuing with the library's version ({task.library_name})."
            )
    return True, f"✓ {title}: matches {task.library_name} on {len(cases)} cases."


def _safe(hint: Hint, yours: Any, lib: Any, case: Case) -> bool:
    """Whether a hint fits, False if its own test fails on an odd answer."""
    try:
        return bool(hint.matches(yours, lib, case))
    except Exception:  # noqa: BLE001 - a hint that cannot be judged is not shown
        return False


def check(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """Grade the student's `fn` for blank `name`, print the verdict; return `fn` if it matches, else the library's."""
    if name not in TASKS:
        raise KeyError(f"no grader named {name!r}; the graders are {', '.join(TASKS)}")
    passed, verdict = grade(name, fn)
    print(verdict)
    return fn if passed else FALLBACKS[name]
