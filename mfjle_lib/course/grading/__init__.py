"""The graders of the lab edition: a student's piece of the method, or of a reading of its results, against the
library's, on fixed inputs.

A lesson's blank is a function the student writes from torch or numpy primitives (the readings: `readings.py`); the
grader cell under it calls `check(name, fn)`, which runs both functions on the task's fixed cases, prints one line —
✓, or what differs and a hint — and returns the function the lesson goes on with: the student's
when it matches, the library's otherwise, so a class's Run All never stops on a blank. A blank
left as generated raises `NotImplementedError`, which the grader reports as "not written yet".

Every case runs in float64, so a correct answer written in another order of operations matches to
~1e-12 and the tolerance (`RTOL`, `ATOL`) can be tight enough for any real mistake to cross it.
The models are MF-JLE's own class with a small CNN in place of each ResNet-18, so the step and
forward checks take a second: the six-module wiring, the crops and the fusion are the method's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .compare import ATOL, NOT_WRITTEN, RTOL, Case, Hint, Task, difference
from .inputs import fixed_batch, small_mfjle
from .tasks import TASKS

__all__ = [
    "ATOL",
    "NOT_WRITTEN",
    "RTOL",
    "TASKS",
    "Case",
    "Hint",
    "Task",
    "check",
    "difference",
    "fixed_batch",
    "grade",
    "small_mfjle",
]


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
    return fn if passed else TASKS[name].library
