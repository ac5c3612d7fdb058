"""Timing a callable robustly on a busy machine: the median of several samples, within a budget.

Every experiment that times Python code goes through here, so "how we time" is written once:
``time.perf_counter`` around each call, the median over ``repeats`` calls (robust to the
scheduler pausing one call), and a wall-clock budget after which no further sample starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from syslab import validate

__all__ = ["MAX_REPEATS", "median_seconds", "sample_seconds"]

MAX_REPEATS = 10_000


def sample_seconds(run: Callable[[], object], *, repeats: int = 5, max_total_s: float = 10.0) -> np.ndarray:
    """Wall time of each of up to ``repeats`` calls of ``run()``.

    Parameters
    ----------
    run : callable
        Called with no arguments; its result is ignored.
    repeats : int
        Samples wanted, 1 to ``MAX_REPEATS``.
    max_total_s : float
        No new sample starts after this many seconds (at least one sample is always taken).

    Returns
    -------
    numpy.ndarray
        Seconds per call, in call order (possibly fewer than ``repeats``).
    """
    if not callable(run):
        raise TypeError(f"run must be callable, got {type(run).__name__}")
    repeats = validate.int_in_range("repeats", repeats, 1, MAX_REPEATS)
    budget = validate.float_in_range("max_total_s", max_total_s, 0.0, 3600.0, low_inclusive=False)
    times = []
    started = time.perf_counter()
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - started > budget:
            break
    return np.asarray(times, dtype=float)


def median_seconds(run: Callable[[], object], *, repeats: int = 5, max_total_s: float = 10.0) -> float:
    """Median wall time of ``run()`` over up to ``repeats`` calls, in seconds.

    Parameters
    ----------
    run : callable
        Called with no arguments.
    repeats : int
        Samples wanted, 1 to ``MAX_REPEATS``.
    max_total_s : float
        No new sample starts after this many seconds.

    Returns
    -------
    float
    """
    return float(np.median(sample_seconds(run, repeats=repeats, max_total_s=max_total_s)))
