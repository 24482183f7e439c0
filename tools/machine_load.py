"""Is the machine idle enough to time something? The load average before and after, and the busy rule.

Timings on a shared 2-core machine are only comparable when nothing else runs: `benchmarks/bench.py`
and the lesson time table (`tools/notebook_tools.py execute --record`) record the load average
(1, 5, 15 minutes) before and after they measure, mark a result taken on a busy machine, and with
`--require-idle` refuse to measure at all.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from mfjle_lib.runtime import cpu_kind

#: A 1-minute load average at or above this, before a measurement starts, marks it busy: on 2 cores
#: half a core of other work already moves the medians by several percent.
BUSY_LOAD = 0.5


def load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages, or None where the OS has none (Windows)."""
    if not hasattr(os, "getloadavg"):
        return None
    try:
        return [round(float(x), 2) for x in os.getloadavg()]
    except OSError:
        return None


#: How long `settle` waits at most: the 1-minute average decays by e every minute, so the load a
#: finished 2-core job leaves (about 2) falls under 0.5 in about 1.4 minutes when nothing else runs.
SETTLE_LIMIT_S = 180.0


def settle(
    limit_s: float = SETTLE_LIMIT_S, poll_s: float = 5.0, sleep: Callable[[float], None] = time.sleep
) -> list[float] | None:
    """The load average once the 1-minute value is under `BUSY_LOAD`, or as it is after `limit_s` (or unknown: at once).

    Measurements in a row (lessons one after another) would otherwise count the previous one's own
    load as another program's.
    """
    waited = 0.0
    load = load_average()
    while load is not None and load[0] >= BUSY_LOAD and waited < limit_s:
        sleep(poll_s)
        waited += poll_s
        load = load_average()
    return load


def is_busy(before: list[float] | None) -> bool | None:
    """True when the 1-minute load before the start is at or above `BUSY_LOAD`; None when the OS gives no load
    average."""
    return None if before is None else before[0] >= BUSY_LOAD


def load_record(before: list[float] | None, after: list[float] | None) -> dict[str, Any]:
    """What a measurement records about the machine: its CPU kind, load before and after, whether it was busy."""
    return {
        "cpu_kind": cpu_kind(),  # times compare only within one kind (docs/SPEED.md)
        "load_average_start": before,
        "load_average_end": after,
        "busy": is_busy(before),
        "busy_load": BUSY_LOAD,
    }


def busy_warning(before: list[float] | None, what: str) -> str | None:
    """The loud line to print when a measurement starts on a busy (or unknown) machine; None when idle."""
    if before is None:
        return (
            f"WARNING: no load average on this OS: whether the machine was idle during {what} is unknown "
            '(recorded as "busy": null)'
        )
    if is_busy(before):
        return (
            f"WARNING: {what} starts on a BUSY machine (1-minute load average {before[0]:.2f} >= {BUSY_LOAD}): "
            f'its times are not comparable and are marked "busy": true'
        )
    return None


def idle_refusal(before: list[float] | None, what: str) -> str | None:
    """The one line `--require-idle` prints instead of measuring on a busy (or unknown) machine; None when idle."""
    if before is None:
        return f"error: --require-idle: no load average on this OS, so idleness cannot be checked; {what} not run"
    if is_busy(before):
        return (
            f"error: --require-idle: the machine is busy (1-minute load average {before[0]:.2f} >= {BUSY_LOAD}); "
            f"{what} not run"
        )
    return None
