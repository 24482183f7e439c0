"""The lab edition: generated from the lessons, answer-free, and its blanks graded against the method package.

Fast: `notebooks/lab/` is what `python -m tools.lab_edition` writes; no solution cell and no saved
output; every blank is followed by its grader and every grader of `course.grading` is used; each
blank, run with its grader in one namespace per lesson (the blank cells are self-contained), gives
✓ with the instructor's code, "not written yet" as the lab edition has it, and — with a
deliberately wrong answer in the blank — a verdict that names what differs and never ✓.
Slow: every lab notebook executed top to bottom on the released runs (each grader says "not
written yet"), and the lessons with blanks executed again with the instructor's code pasted in
(each grader prints ✓).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
from pathlib import Path

import pytest

from mfjle_lib.course import grading
from tools import lab_edition, notebook_tools

LESSONS = sorted(notebook_tools.NOTEBOOKS_DIR.glob("*.ipynb"))
GRADER_CALL = re.compile(r"""grading\.check\(\s*["'](\w+)["']""")

#: A wrong answer per blank: the mistake a student is likely to make, as source that replaces the blank.
WRONG: dict[str, str] = {
    "crop_boxes": """
def crop_boxes(landmarks, source_size, crop_fraction):
    b = landmarks.shape[0]
    half = crop_fraction * source_size  # the whole side on each side: twice too big
    pts = landmarks.reshape(b * 5, 2)
    index = torch.arange(b, dtype=landmarks.dtype).repeat_interleave(5)
    return torch.stack([index, pts[:, 0] - half, pts[:, 1] - half, pts[:, 0] + half, pts[:, 1] + half], dim=1)
""",
    "six_forward": """
def six_forward(net, images, landmarks):
    global_logits = net.global_net(images)  # not resized to S_g
    crops = method.cut_crops(images, landmarks, net.crop_fraction, net.local_size)
    return global_logits, torch.stack([m(crops[:, i]) for i, m in enumerate(net.local_nets.nets)], dim=1)
""",
    "bce": """
def bce(z, y):
    p = torch.sigmoid(z)
    return -(y * p.log() + (1 - p.log()) * (1 - y).log()).mean()  # Eq. 2 as printed
""",
    "joint_loss": """
def joint_loss_eq1(out, y, lambdas):
    loss = bce(out.global_logits, y)
    for i, lam in enumerate(lambdas):
        loss = loss + bce(out.local_logits[:, i], y)  # λ forgotten
    return loss
""",
    "algorithm1_step": """
def algorithm1_step(net, optimizer, batch, lambdas):
    out = net(batch.images, batch.landmarks)
    loss = joint_loss_eq1(out, batch.labels, lambdas)
    loss.backward()  # no zero_grad: gradients pile up
    optimizer.step()
    return loss.detach()
""",
    "fuse": """
def fuse(probs, weights):
    w = torch.as_tensor(weights, dtype=probs.dtype)
    return (probs * w[None, :, None]).sum(dim=1)  # not divided by the weights' sum
""",
    "hamming_loss": """
def hamming_loss(y_true, y_score, threshold=0.5):
    return np.sum((y_score >= threshold) != y_true) / len(y_true)  # per face, not per decision
""",
    "coverage": """
def coverage(y_true, y_score):
    rank = (y_score[:, None, :] >= y_score[:, :, None]).sum(axis=2)
    return np.mean([rank[i][y_true[i] == 1].max() for i in range(len(y_true)) if y_true[i].any()])  # no -1
""",
    "paired_comparison": """
def paired_comparison(first, second):
    d = np.asarray(first, dtype=float) - np.asarray(second, dtype=float)
    mean, std = d.mean(), d.std(ddof=1)
    half = 1.96 * std / np.sqrt(len(d))  # a normal interval: too narrow for a few seeds
    return d, mean, std, (mean - half, mean + half)
""",
    "gain_split": """
def gain_split(resnet18, wholeface, lowres, mfjle):
    r = np.asarray(resnet18, dtype=float)
    w, low, m = (np.asarray(a, dtype=float) for a in (wholeface, lowres, mfjle))
    return w - r, low - r, m - r, m - r  # every arm against ResNet-18: the parts overlap
""",
    "reliability": """
import pandas as pd


def reliability_bins(y_true, y_score, edges=(0.1, 0.3, 0.5, 0.7, 0.9)):
    y, p = np.asarray(y_true, dtype=float), np.asarray(y_score, dtype=float)
    k = np.digitize(p, edges, right=True)  # (lower, upper]: a probability on an edge lands in the bin below
    rows = [{"pairs": int((k == b).sum()),
             "mean probability": p[k == b].mean() if (k == b).any() else np.nan,
             "share really present": y[k == b].mean() if (k == b).any() else np.nan} for b in range(len(edges) + 1)]
    return pd.DataFrame(rows)
""",
    "constant_floor": """
def constant_floor(labels):
    y = np.asarray(labels, dtype=float)
    c = y.sum(axis=1).mean()
    return c / y.shape[1], (y.shape[1] - c) / y.shape[1], c / y.shape[1]  # the precision of "every emotion", not F1
""",
    "val_threshold": """
def choose_threshold(labels, probs, thresholds):
    y, p = np.asarray(labels) > 0.5, np.asarray(probs, dtype=float)
    f1 = []
    for t in thresholds:
        pred = p >= t
        tp, wrong = np.sum(pred & y), np.sum(pred != y)
        f1.append(2 * tp / (2 * tp + wrong) if 2 * tp + wrong else 0.0)
    i = int(np.argmax(f1))  # the first best threshold: a tie is not broken toward 0.5
    return float(thresholds[i]), float(f1[i])
""",
}


def _nb(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _src(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def blanks(nb: dict) -> list[tuple[str, str, str]]:
    """(task name, the blank cell's source, its grader cell's source) in lesson order."""
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    found = []
    for i, cell in enumerate(cells):
        if "blank" in _tags(cell):
            grader = cells[i + 1] if i + 1 < len(cells) else None
            assert grader is not None and "grader" in _tags(grader), f"no grader cell after the blank:\n{_src(cell)}"
            names = GRADER_CALL.findall(_src(grader))
            assert len(names) == 1, f"a grader cell checks one blank: {_src(grader)}"
            found.append((names[0], _src(cell), _src(grader)))
    return found


def run_blanks(pairs: list[tuple[str, str, str]]) -> dict[str, str]:
    """Exec each blank then its grader in one namespace (the lesson's order); {task: the grader's printed verdict}."""
    ns: dict = {}
    exec("import numpy as np\nimport torch\nfrom mfjle_lib import method\nfrom mfjle_lib.course import grading", ns)
    verdicts = {}
    for name, blank, grader in pairs:
        exec(blank, ns)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(grader, ns)
        verdicts[name] = out.getvalue().strip()
    return verdicts


LESSON_BLANKS = {p.name: blanks(_nb(p)) for p in LESSONS}
WITH_BLANKS = [name for name, pairs in LESSON_BLANKS.items() if pairs]


def test_the_lab_edition_is_what_its_command_writes() -> None:
    assert lab_edition.build(check=True) == [], "run `python -m tools.lab_edition`"


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_a_lab_notebook_has_no_answers_and_no_outputs(path: Path) -> None:
    lab = _nb(lab_edition.LAB_DIR / path.name)
    assert not [c for c in lab["cells"] if "solution" in _tags(c)]
    code = [c for c in lab["cells"] if c["cell_type"] == "code"]
    assert all(not c["outputs"] and c["execution_count"] is None for c in code)
    assert "widgets" not in lab.get("metadata", {})
    for cell in code:
        assert lab_edition.BEGIN not in _src(cell)
        if "blank" in _tags(cell):
            assert lab_edition.NOT_WRITTEN in _src(cell)
    assert "Lab edition" in _src([c for c in lab["cells"] if c["cell_type"] == "markdown"][1])
    assert not any("hidden solution" in _src(c) for c in lab["cells"] if c["cell_type"] == "markdown")


def test_every_grader_has_its_blank() -> None:
    used = [name for pairs in LESSON_BLANKS.values() for name, _, _ in pairs]
    assert sorted(used) == sorted(grading.TASKS), "each grader of course.grading is used once"
    assert set(WRONG) == set(grading.TASKS)


@pytest.mark.parametrize("lesson", WITH_BLANKS)
def test_the_instructors_code_passes_and_an_empty_blank_says_so(lesson: str) -> None:
    pairs = LESSON_BLANKS[lesson]
    for name, verdict in run_blanks(pairs).items():
        assert verdict.startswith("✓"), f"{name}: {verdict}"
    lab_pairs = blanks(_nb(lab_edition.LAB_DIR / lesson))
    for name, verdict in run_blanks(lab_pairs).items():
        assert "not written yet — continuing with the library's version" in verdict, f"{name}: {verdict}"


@pytest.mark.parametrize("task", sorted(grading.TASKS))
def test_a_wrong_answer_is_named_never_passed(task: str) -> None:
    lesson = next(name for name, pairs in LESSON_BLANKS.items() if any(t == task for t, _, _ in pairs))
    pairs = [(t, WRONG[t] if t == task else blank, grader) for t, blank, grader in LESSON_BLANKS[lesson]]
    verdict = run_blanks(pairs)[task]
    assert verdict.startswith("✗") and "✓" not in verdict, verdict
    assert "the library's" in verdict and "Hint:" in verdict, f"no difference or hint named: {verdict}"


def _execute(nb: dict, cwd: Path) -> dict:
    """Execute a notebook on the released runs in a fresh kernel (nbclient), as a student's Run All does."""
    import nbclient
    import nbformat

    env = {"MFJLE_RUNS": "released", "MFJLE_RELEASED_ONLY": "1", "MFJLE_NO_PROGRESS": "1"}
    node = nbformat.reads(json.dumps(nb), as_version=4)  # as read from disk: sources joined into strings
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        nbclient.NotebookClient(node, timeout=900, resources={"metadata": {"path": str(cwd)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return node


def _grader_outputs(nb: dict) -> list[str]:
    texts = []
    for cell in nb["cells"]:
        if "grader" in _tags(cell):
            texts.append("".join(o.get("text", "") for o in cell["outputs"] if o.get("output_type") == "stream"))
    return texts


@pytest.mark.slow
@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_a_lab_notebook_runs_top_to_bottom_unfilled(path: Path) -> None:
    ran = _execute(_nb(lab_edition.LAB_DIR / path.name), lab_edition.LAB_DIR)
    for text in _grader_outputs(ran):
        assert "not written yet" in text and "✓" not in text, text


@pytest.mark.slow
@pytest.mark.parametrize("lesson", WITH_BLANKS)
def test_a_lab_notebook_with_the_solutions_pasted_in_passes_every_grader(lesson: str) -> None:
    lab = _nb(lab_edition.LAB_DIR / lesson)
    solutions = iter(blank for _, blank, _ in LESSON_BLANKS[lesson])
    for cell in lab["cells"]:
        if "blank" in _tags(cell):
            cell["source"] = next(solutions)
    texts = _grader_outputs(_execute(lab, lab_edition.LAB_DIR))
    assert len(texts) == len(LESSON_BLANKS[lesson])
    assert all(t.startswith("✓") for t in texts), texts
