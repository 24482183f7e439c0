"""Tables of the nine metrics (paper Tables 1-2): mean ± std over seeds, the paper's rows, text and Markdown."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..constants import LOWER_IS_BETTER, METRIC_KEYS, PAPER_TABLES

__all__ = [
    "HEADERS",
    "format_table",
    "markdown_table",
    "paper_rows",
    "results_table",
    "summarise_runs",
]


_SHORT = {
    "hamming_loss": "Hamming",
    "coverage": "Coverage",
    "one_error": "One-error",
    "ranking_loss": "Ranking",
    "average_precision": "AP",
    "micro_f1": "Micro-F1",
    "macro_f1": "Macro-F1",
    "micro_auc": "Micro-AUC",
    "macro_auc": "Macro-AUC",
}


#: Column headers in Table 1/2 order, with the paper's ↓ (lower is better) / ↑ arrows.
HEADERS: dict[str, str] = {
    key: f"{_SHORT[key]} {'↓' if LOWER_IS_BETTER[key] else '↑'}" for key in METRIC_KEYS
}


#: What a missing or NaN value prints as.
MISSING = "–"


#: The paper's tables print three decimals; their rows are never shown with more.
_PAPER_DIGITS = 3


def paper_rows(dataset: str | None) -> dict[str, dict[str, float]]:
    """The paper's ResNet-18 and MF-JLE rows for 'rafml' (Table 1) or 'jaffe' (Table 2); {} otherwise."""
    if dataset is None:
        return {}
    table = PAPER_TABLES.get(dataset.lower(), {})
    return {name: dict(zip(METRIC_KEYS, values)) for name, values in table.items()}


def summarise_runs(runs: Sequence[Mapping[str, float]]) -> dict[str, tuple[float, float]]:
    """Mean and sample std (ddof=1; 0 for a single run) of the nine metrics over seeds.

    A NaN in any run propagates to that metric's mean: a metric that is undefined for one seed's
    test set is not silently averaged over the others.
    """
    if len(runs) == 0:
        raise ValueError("summarise_runs needs at least one run")
    out: dict[str, tuple[float, float]] = {}
    for key in METRIC_KEYS:
        missing = [i for i, run in enumerate(runs) if key not in run]
        if missing:
            raise ValueError(f"run(s) {missing} lack the metric {key!r}")
        # None is how metrics.json stores NaN (strict JSON).
        values = np.array([math.nan if run[key] is None else float(run[key]) for run in runs], dtype=np.float64)
        mean = float(values.mean())
        std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        out[key] = (mean, std)
    return out


def _cell(value: object, digits: int) -> str:
    """Render a float as '0.783' and a (mean, std) pair as '0.783 ± 0.004'; NaN/None as '–'."""
    if value is None:
        return MISSING
    if isinstance(value, (tuple, list)) and len(value) == 2:
        mean, std = (float(v) for v in value)
        if math.isnan(mean):
            return MISSING
        return f"{mean:.{digits}f} ± {std:.{digits}f}"
    x = float(value)  # type: ignore[arg-type]
    return MISSING if math.isnan(x) else f"{x:.{digits}f}"


def results_table(
    rows: Mapping[str, Mapping[str, object]],
    dataset: str | None = None,
    digits: int = 3,
) -> pd.DataFrame:
    """A string table (rows × nine metrics in Table 1/2 order); the paper's rows are appended for rafml/jaffe.

    Each row is a metrics dict (floats, extra keys ignored) or a :func:`summarise_runs` dict of
    (mean, std) pairs, rendered as "0.783 ± 0.004". Missing or NaN metrics print as "–".
    """
    if digits < 0:
        raise ValueError(f"digits must be >= 0; got {digits}")
    records: dict[str, list[str]] = {}
    for name, metrics in rows.items():
        records[str(name)] = [_cell(metrics.get(key), digits) for key in METRIC_KEYS]
    for name, metrics in paper_rows(dataset).items():
        # The paper's numbers have three decimals: more digits would invent precision.
        records[name] = [_cell(metrics[key], min(digits, _PAPER_DIGITS)) for key in METRIC_KEYS]
    frame = pd.DataFrame.from_dict(records, orient="index", columns=[HEADERS[k] for k in METRIC_KEYS])
    frame.index.name = "model"
    return frame


def _cells(df: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Header and body of a frame as strings, the index as the first column."""
    header = [str(df.index.name or "")] + [str(c) for c in df.columns]
    body = [
        [str(idx)] + [MISSING if _isnan(v) else str(v) for v in row]
        for idx, row in zip(df.index, df.itertuples(index=False))
    ]
    return header, body


def _isnan(value: object) -> bool:
    """True for float NaN and None (cells that print as '–')."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_table(df: pd.DataFrame) -> str:
    """Plain-text table with aligned columns (names left, values right), for the CLI."""
    header, body = _cells(df)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        parts = [cells[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(cells[1:], widths[1:])]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in body)])


def markdown_table(df: pd.DataFrame) -> str:
    """GitHub-flavoured Markdown table (first column left-aligned, values right-aligned); no `tabulate`."""
    header, body = _cells(df)

    def esc(text: str) -> str:
        # A bare '|' would split the cell.
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(esc(c) for c in header) + " |"]
    lines.append("|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|")
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in body]
    return "\n".join(lines)
