"""How a student's answer is compared with the library's: the cases, hints and tasks, and the one-phrase difference."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

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


def as_array(x: Any) -> np.ndarray:
    """A tensor, array or number as a float64 array."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().to(torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def difference(yours: Any, library: Any, where: str = "") -> str | None:
    """None if `yours` equals `library` within the tolerance, else a phrase saying what differs (dicts, tuples too).

    A DataFrame is compared column by column, by the library's column names (its index, the rows' labels, is not).
    """
    if isinstance(library, pd.DataFrame):
        if not isinstance(yours, pd.DataFrame) or set(yours.columns) != set(library.columns):
            return f"{where or 'the result'} should be a DataFrame with columns {list(library.columns)}"
        columns = {f"'{c}'": c for c in library.columns}
        return difference(
            {name: yours[c].to_numpy() for name, c in columns.items()},
            {name: library[c].to_numpy() for name, c in columns.items()},
            f"{where} column " if where else "column ",
        )
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
        a = as_array(yours)
    except (TypeError, ValueError):
        return f"{where or 'the result'} is a {type(yours).__name__}, not numbers"
    b = as_array(library)
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
