"""Tables of the nine metrics (paper Tables 1-2): mean ± std over seeds, the paper's rows, text and Markdown."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats  # scikit-learn's own dependency

from ..constants import PAPER_TABLES
from ..data.registry import DATASETS
from ..method.metrics import LOWER_IS_BETTER, METRIC_KEYS, METRICS

__all__ = [
    "HEADERS",
    "format_table",
    "markdown_table",
    "paper_rows",
    "results_table",
    "styled",
    "summarise_runs",
    "t_interval",
]


#: Column headers in Table 1/2 order, with the paper's ↓ (lower is better) / ↑ arrows (from `method.METRICS`).
HEADERS: dict[str, str] = {m.key: m.header for m in METRICS}


#: What a missing or NaN value prints as.
MISSING = "–"


#: The paper's tables print three decimals; their rows are never shown with more.
_PAPER_DIGITS = 3


def paper_rows(dataset: str | None) -> dict[str, dict[str, float]]:
    """The paper's ResNet-18 and MF-JLE rows for 'rafml' (Table 1) or 'jaffe' (Table 2); {} otherwise."""
    key = DATASETS[dataset.lower()].paper_table if dataset and dataset.lower() in DATASETS else None
    table = PAPER_TABLES.get(key, {}) if key else {}
    return {name: dict(zip(METRIC_KEYS, values)) for name, values in table.items()}


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """The Student-t interval of the mean of `values` (seeds as independent draws); NaNs for fewer than two values."""
    x = np.asarray(values, dtype=np.float64)
    if len(x) < 2:
        return (math.nan, math.nan)
    half = float(stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return (float(x.mean()) - half, float(x.mean()) + half)


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


#: Every row name the paper's tables use (any dataset): such rows never count as "best".
PAPER_ROW_NAMES = frozenset(name for table in PAPER_TABLES.values() for name in table)


def _leading_number(value: object) -> float:
    """The value a cell shows first: 0.783 for "0.783 ± 0.004" or 0.783; NaN for '–'/None/text."""
    if value is None:
        return math.nan
    if isinstance(value, (int, float, np.floating, np.integer)):
        return float(value)
    try:
        return float(str(value).split("±")[0].strip())
    except ValueError:
        return math.nan


def best_rows(df: pd.DataFrame, exclude: Sequence[str] = ()) -> dict[str, list[object]]:
    """Per metric column, the rows holding its best value (↓ lowest, ↑ highest; ties all win).

    Rows named in `exclude` and the paper's rows (PAPER_ROW_NAMES) take no part: the table says
    which of *our* models is best, the paper's numbers are shown for reference.
    """
    lower = {HEADERS[k]: LOWER_IS_BETTER[k] for k in METRIC_KEYS}
    lower.update({k: LOWER_IS_BETTER[k] for k in METRIC_KEYS})
    skip = set(exclude) | PAPER_ROW_NAMES
    out: dict[str, list[object]] = {}
    for col in df.columns:
        if col not in lower:
            continue
        values = {idx: _leading_number(v) for idx, v in df[col].items() if idx not in skip}
        values = {idx: v for idx, v in values.items() if not math.isnan(v)}
        if not values:
            continue
        target = (min if lower[col] else max)(values.values())
        out[str(col)] = [idx for idx, v in values.items() if v == target]
    return out


def styled(
    table: pd.DataFrame | Mapping[str, Mapping[str, object]],
    dataset: str | None = None,
    digits: int = 3,
    exclude: Sequence[str] = (),
):
    """A metrics table for notebooks: a pandas Styler with ↓/↑ headers and each column's best value in **bold**.

    `table` is a :func:`results_table` frame, a frame of numbers (metric keys or HEADERS as
    columns), or the `rows` mapping :func:`results_table` takes (then `dataset` adds the paper's
    rows). Lower-is-better metrics (↓) bold their minimum. The paper's rows (and rows named in
    `exclude`) are never marked best; they are shown in grey italics, for reference.
    Use :func:`format_table` for plain text (the CLI).
    """
    if isinstance(table, pd.DataFrame):
        frame = table.rename(columns={k: HEADERS[k] for k in METRIC_KEYS})
        numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
        if numeric:  # numbers print like results_table's cells
            frame = frame.astype({c: object for c in numeric})
            for c in numeric:
                frame[c] = [_cell(v, digits) for v in frame[c]]
    else:
        frame = results_table(table, dataset=dataset, digits=digits)
    best = best_rows(frame, exclude)
    reference = set(exclude) | PAPER_ROW_NAMES

    def bold(column: pd.Series) -> list[str]:
        winners = set(best.get(str(column.name), []))
        return ["font-weight: bold" if idx in winners else "" for idx in column.index]

    def grey(row: pd.Series) -> list[str]:
        return ["color: grey; font-style: italic" if row.name in reference else ""] * len(row)

    return (
        frame.style.apply(bold, axis=0)
        .apply(grey, axis=1)
        .set_table_styles(
            [{"selector": "th", "props": "text-align: center"}, {"selector": "td", "props": "text-align: right"}]
        )
    )


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
