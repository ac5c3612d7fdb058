"""Garbage collection and its pauses: a collector model, a stop-the-world latency model, CPython measured.

Three kinds of function live here, side by side so tests can hold one against the other:

- **theory** -- the steady-state live heap by Little's law (:func:`theory_live_objects`),
  the fraction of a nursery that survives a young collection
  (:func:`theory_nursery_survival`), the collector work per allocation of a
  GOGC-style trigger (:func:`theory_mark_sweep_work_per_allocation_ns`), and the mean
  latency added by stop-the-world pauses (:func:`theory_pause_mean_latency_ms`);
- **simulate** -- a program allocating objects into a simulated object graph, collected
  by a non-generational mark-and-sweep collector (:func:`simulate_mark_sweep`) or a
  two-generation collector (:func:`simulate_generational`), one row per collection;
  and a server whose workers all freeze during each pause
  (:func:`simulate_stop_the_world`, the queue itself is :func:`syslab.queueing.simulate_pool`);
- **real** -- CPython's own collector timed with ``gc.callbacks`` in a child process
  (:func:`measure_cpython_pauses`, :func:`measure_cpython_churn`).

The chapter's tables come from them: :func:`compare_pause_triggers` (random pauses against
pauses that come with allocation, steady load and a spike) and :func:`compare_with_theory`
(each model against its closed form); the ``*_record`` helpers hand the prose its numbers.

The object graph
----------------
Allocation ``i`` happens at time ``i`` (time is counted in allocations, as GC
papers do). Each object belongs to a lifetime class (most are temporaries that die
within a few hundred allocations; a few live for a very long time) and draws an
exponential lifetime. It is referenced either from a root or from a recently
allocated object that outlives it; that reference is dropped when the object's
lifetime ends. An object is *reachable* while its own incoming reference exists and
its parent is reachable -- the mark phase computes exactly that over the graph.
Because every parent outlives its children, an object's reachability ends at its
own death time, which keeps the closed forms above exact.

Costs are per object visited: marking visits live objects, sweeping visits every
object in the swept space, a copying young collection copies the survivors. The
default nanosecond costs are illustrative, the order of magnitude measured for
CPython's collector below.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from syslab import claims, experiment, queueing, validate
from syslab.plot import axes_or_new, label
from syslab.processes import ChildProcess
from syslab.queueing import PoolConfig, draw_gaps_s, simulate_pool

MAX_REQUESTS = 5_000_000  # requests in one stop-the-world simulation
MAX_ALLOCATIONS = 10_000_000  # objects in one simulated heap (4 columns of 8 bytes each)
MAX_SWEEP_POINTS = 50  # (pause length, pause rate) pairs in one sweep
MAX_PAUSE_MS = 60_000.0  # one stop-the-world pause, milliseconds
MAX_PAUSES_PER_S = 1_000.0  # collections per second of running time
MAX_CV = 5.0  # coefficient of variation of a service time or a pause
MAX_REAL_TIMEOUT_S = 600.0  # one CPython measurement in a child, set-up included (its watchdog too)
MAX_SPIKE_FACTOR = 100.0  # arrival rate in a load spike, as a multiple of the base rate
# The no-queueing check (compare_with_theory): 100 requests/s on 1000 workers with one pause per
# second never queue while service and pauses stay within a second each.
MAX_CHECK_SERVICE_MS = 1_000.0
MAX_CHECK_PAUSE_MS = 1_000.0

__all__ = [
    "CollectorCost",
    "LifetimeMix",
    "allocate_objects",
    "collections_record",
    "compare_pause_triggers",
    "compare_with_theory",
    "mark_reachable",
    "pause_trigger_record",
    "measure_cpython_churn",
    "measure_cpython_pauses",
    "plot_collections",
    "plot_cpython_pauses",
    "plot_latency_histogram",
    "plot_pause_tradeoff",
    "simulate_generational",
    "simulate_mark_sweep",
    "simulate_stop_the_world",
    "summarize_collections",
    "summarize_latency",
    "sweep_pause_tradeoff",
    "sweep_pauses",
    "theory_live_objects",
    "theory_mark_sweep_work_per_allocation_ns",
    "theory_nursery_survival",
    "theory_pause_mean_latency_ms",
]

# ----------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class LifetimeMix:
    """How long objects live, as a mixture of exponential lifetime classes.

    Attributes
    ----------
    weights : tuple of float
        Share of allocations in each class (summing to 1).
    mean_lifetimes : tuple of float
        Mean lifetime of each class, in allocations (the program's allocation clock).
    """

    weights: tuple[float, ...] = (0.90, 0.09, 0.01)  # temporaries, request-scoped, long-lived
    mean_lifetimes: tuple[float, ...] = (200.0, 20_000.0, 1_000_000.0)  # allocations

    def __post_init__(self) -> None:
        for name in ("weights", "mean_lifetimes"):
            value = getattr(self, name)
            if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
                raise TypeError(f"{name} must be a sequence of numbers, got {value!r}")
        if len(self.weights) != len(self.mean_lifetimes) or not self.weights:
            raise ValueError("weights and mean_lifetimes must be non-empty and of equal length")
        for w in self.weights:
            validate.probability("weights", w)
        for m in self.mean_lifetimes:
            validate.positive_float("mean_lifetimes", m)
        if not math.isclose(sum(self.weights), 1.0, abs_tol=1e-9):
            raise ValueError(f"weights must sum to 1, got {sum(self.weights)}")


@dataclass(frozen=True)
class CollectorCost:
    """Nanoseconds of pause per object a collector touches (illustrative defaults).

    Attributes
    ----------
    mark_ns : float
        Per live object traced by a mark phase.
    sweep_ns : float
        Per object (live or dead) in a space that is swept.
    copy_ns : float
        Per object a young collection copies (promotes) out of the nursery.
    fixed_us : float
        Fixed cost of any collection (stopping threads, scanning roots), microseconds.
    """

    mark_ns: float = 50.0  # ns per live object traced
    sweep_ns: float = 10.0  # ns per object swept
    copy_ns: float = 60.0  # ns per object promoted
    fixed_us: float = 20.0  # us per collection

    def __post_init__(self) -> None:
        for name in ("mark_ns", "sweep_ns", "copy_ns", "fixed_us"):
            validate.non_negative_float(name, getattr(self, name))


# --------------------------------------------------------------------------- theory


def theory_live_objects(mix: LifetimeMix, at_allocation: float | None = None) -> float:
    """Expected number of live objects: Little's law with one allocation per time unit.

    In steady state ``L = lambda * W`` with lambda = 1 allocation per unit and W the
    mean lifetime, ``sum(w_k * m_k)``. At a finite time t after the program
    started (``at_allocation``), objects of class k alive number
    ``w_k m_k (1 - exp(-t / m_k))``: a run shorter than a few of the longest mean
    lifetimes has not reached the steady state.

    Parameters
    ----------
    mix : LifetimeMix
        Mix.
    at_allocation : float | None
        At allocation.

    Returns
    -------
    float
        Expected live objects (a count): steady state, or at ``at_allocation`` allocations.
    """
    _check_mix(mix)
    pairs = zip(mix.weights, mix.mean_lifetimes, strict=True)
    if at_allocation is None:
        return float(sum(w * m for w, m in pairs))
    t = validate.non_negative_float("at_allocation", at_allocation)
    return float(sum(w * m * -math.expm1(-t / m) for w, m in pairs))


def theory_nursery_survival(mix: LifetimeMix, nursery_objects: int) -> float:
    """Expected fraction of a nursery still alive when it is collected.

    The nursery holds the last N allocations, aged 1..N at the collection, and an
    object of class k survives age a with probability exp(-a / m_k):
    ``sum_k w_k * (1/N) * sum_{a=1..N} exp(-a/m_k)``, summed in closed form.

    Parameters
    ----------
    mix : LifetimeMix
        Mix.
    nursery_objects : int
        Nursery objects.

    Returns
    -------
    float
        Expected share (0-1) of the nursery's objects still alive when it is collected.
    """
    _check_mix(mix)
    n = validate.positive_int("nursery_objects", nursery_objects)
    total = 0.0
    for w, m in zip(mix.weights, mix.mean_lifetimes, strict=True):
        q = math.exp(-1.0 / m)
        total += w * q * (1.0 - q**n) / (1.0 - q) / n
    return total


def theory_mark_sweep_work_per_allocation_ns(cost: CollectorCost, gogc: float, live_objects: float) -> float:
    """Collector work per allocation for a heap that is collected when it grows by GOGC percent.

    With L live objects after a collection, the next one starts when the heap holds
    ``L (1 + g)`` objects, g = gogc / 100, i.e. after ``L g`` allocations; it marks
    about L objects and sweeps ``L (1 + g)``. Per allocation:
    ``(mark_ns L + sweep_ns L (1 + g) + fixed) / (L g)``. Doubling GOGC roughly
    halves the marking work and doubles the memory: the space-time trade-off.

    Parameters
    ----------
    cost : CollectorCost
        Cost.
    gogc : float
        Gogc.
    live_objects : float
        Live objects.

    Returns
    -------
    float
        Collector work per allocated object, nanoseconds.
    """
    if not isinstance(cost, CollectorCost):
        raise TypeError(f"cost must be a CollectorCost, got {type(cost).__name__}")
    g = validate.positive_float("gogc", gogc) / 100
    live = validate.positive_float("live_objects", live_objects)
    per_gc_ns = cost.mark_ns * live + cost.sweep_ns * live * (1 + g) + cost.fixed_us * 1000
    return per_gc_ns / (live * g)


def theory_pause_mean_latency_ms(service_ms: float, pause_ms: float, pauses_per_s: float) -> float:
    """Mean latency of one request when the process stops for pauses and nothing queues.

    Pauses start as a Poisson process of rate f per second of *running* time and
    last P each. A request arriving at a random wall-clock instant lands inside a
    pause with probability ``fP / (1 + fP)`` and then waits half a pause on average;
    while it runs for S, ``f S`` pauses start, each adding P. So
    ``E[latency] = S + fP/(1 + fP) * P/2 + f S P`` (exact when workers never queue
    and S is constant or independent of the pauses).

    Parameters
    ----------
    service_ms : float
        Service ms, milliseconds.
    pause_ms : float
        Pause ms, milliseconds.
    pauses_per_s : float
        Pauses per s, seconds.

    Returns
    -------
    float
        Mean request latency with pauses and no queueing, milliseconds.
    """
    s = validate.positive_float("service_ms", service_ms) / 1000
    p = validate.non_negative_float("pause_ms", pause_ms) / 1000
    f = validate.non_negative_float("pauses_per_s", pauses_per_s)
    extra = f * p / (1 + f * p) * p / 2 + f * s * p
    return (s + extra) * 1000


def _check_mix(mix: object) -> None:
    if not isinstance(mix, LifetimeMix):
        raise TypeError(f"mix must be a LifetimeMix, got {type(mix).__name__}")


# -------------------------------------------------------------------- object graph


def allocate_objects(
    mix: LifetimeMix, n_objects: int, *, parent_window: int = 64, seed: int | np.random.Generator | None = 0
) -> pd.DataFrame:
    """Allocate ``n_objects`` into a simulated object graph, one row per object.

    Object i is allocated at time i with an exponential lifetime from its class. It
    is referenced from a recently allocated object (up to ``parent_window``
    allocations back) when that object outlives it, otherwise from a root. The
    reference is dropped at the object's death time.

    Returns
    -------
    pandas.DataFrame
        ``object_id``, ``lifetime_class`` (int), ``death`` (float, allocation clock:
        when its incoming reference is dropped) and ``parent`` (int, -1 for a root).

    Parameters
    ----------
    mix : LifetimeMix
        Mix.
    n_objects : int
        Number of objects.
    parent_window : int
        Parent window.
    seed : int | np.random.Generator | None
        Source of randomness (an int seed, a Generator, or None).
    """
    _check_mix(mix)
    n = validate.bounded_int("n_objects", n_objects, MAX_ALLOCATIONS)
    window = validate.bounded_int("parent_window", parent_window, MAX_ALLOCATIONS)
    rng = validate.rng_from_seed(seed)
    klass = rng.choice(len(mix.weights), size=n, p=np.asarray(mix.weights))
    means = np.asarray(mix.mean_lifetimes)[klass]
    death = np.arange(n) + rng.exponential(means)
    candidate = np.arange(n) - rng.integers(1, window + 1, size=n)
    ok = candidate >= 0
    ok[ok] = death[candidate[ok]] >= death[ok]
    parent = np.where(ok, candidate, -1)
    return pd.DataFrame(
        {"object_id": np.arange(n), "lifetime_class": klass, "death": death, "parent": parent}
    )


def mark_reachable(
    space: np.ndarray,
    parent: np.ndarray,
    death: np.ndarray,
    now: float,
    *,
    outside_parents_live: bool = False,
) -> np.ndarray:
    """The mark phase: which objects in ``space`` are reachable from the roots at time ``now``.

    An object is reachable when its own incoming reference still exists
    (``death > now``) and its parent is a root (-1) or is itself reachable. A parent
    outside ``space`` is treated as dead (it was swept) unless
    ``outside_parents_live`` -- a young collection, where references from the old
    generation are roots (the remembered set), whether or not those old objects
    are still reachable themselves.

    The graph is a forest (one parent per object), so reachability is the AND of
    the edge conditions along the path to the root; it is computed by pointer
    jumping, ``O(n log depth)``.

    Parameters
    ----------
    space : array of int
        Sorted global ids of the objects being collected.
    parent, death : arrays over all objects
        From :func:`allocate_objects`.

    Returns
    -------
    numpy.ndarray of bool, one per entry of ``space``.
    """
    space = np.asarray(space, dtype=np.int64)
    if space.ndim != 1 or (space.size > 1 and np.any(np.diff(space) <= 0)):
        raise ValueError("space must be a 1-D array of strictly increasing object ids")
    if space.size == 0:
        return np.zeros(0, dtype=bool)
    up = parent[space]
    local = np.searchsorted(space, up)
    local_clipped = np.minimum(local, space.size - 1)
    inside = (up >= 0) & (space[local_clipped] == up)
    reach = death[space] > now
    if not outside_parents_live:
        reach &= (up < 0) | inside  # a parent that was swept is dead, so is the child
    ancestor = np.where(inside, local_clipped, -1)
    for _ in range(64):  # 2^64 levels: far more than any chain
        has = ancestor >= 0
        if not has.any():
            break
        next_reach = reach.copy()
        next_reach[has] &= reach[ancestor[has]]
        next_ancestor = np.full_like(ancestor, -1)
        next_ancestor[has] = ancestor[ancestor[has]]
        reach, ancestor = next_reach, next_ancestor
    return reach


# ---------------------------------------------------------------------- collectors


def _collection_row(kind: str, at: int, heap: int, live: int, marked: int, swept: int, copied: int,
                    cost: CollectorCost) -> dict:  # fmt: skip
    pause_us = cost.fixed_us + (cost.mark_ns * marked + cost.sweep_ns * swept + cost.copy_ns * copied) / 1000
    return {
        "kind": kind,
        "at_allocation": at,
        "heap_objects": heap,
        "live_objects": live,
        "freed_objects": heap - live,
        "marked": marked,
        "swept": swept,
        "copied": copied,
        "pause_us": pause_us,
    }


def _mark_and_sweep(
    space: np.ndarray, parent: np.ndarray, death: np.ndarray, now: int, kind: str, floor: int, g: float,
    cost: CollectorCost,
) -> tuple[np.ndarray, dict, int]:  # fmt: skip
    """One full collection of ``space`` at allocation ``now``: survivors, its row, the next trigger.

    Mark everything reachable, sweep the whole space, and set the next trigger by the
    GOGC rule. The mark-sweep collector's every collection and the generational
    collector's major ones are this same step.
    """
    live = mark_reachable(space, parent, death, float(now))
    n_live = int(live.sum())
    row = _collection_row(kind, now, space.size, n_live, n_live, space.size, 0, cost)
    return space[live], row, max(floor, int(math.ceil(n_live * (1 + g))))


def simulate_mark_sweep(
    mix: LifetimeMix = LifetimeMix(),
    n_allocations: int = 2_000_000,
    *,
    gogc: float = 100.0,
    min_heap_objects: int = 1_000,
    cost: CollectorCost = CollectorCost(),
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """A non-generational stop-the-world mark-and-sweep collector, one row per collection.

    A collection starts when the heap (live objects plus garbage not yet swept)
    reaches ``max(min_heap_objects, L (1 + gogc/100))``, L being the live count
    after the previous collection -- Go's GOGC rule. It marks every reachable object
    and sweeps the whole heap: pause = fixed + mark_ns x live + sweep_ns x heap.

    Returns
    -------
    pandas.DataFrame
        ``collector`` ("mark-sweep"), ``kind`` ("full"), ``at_allocation``,
        ``heap_objects``, ``live_objects``, ``freed_objects``, ``marked``, ``swept``,
        ``copied`` (0) and ``pause_us``.

    Parameters
    ----------
    mix : LifetimeMix
        Mix.
    n_allocations : int
        Number of allocations.
    gogc : float
        Gogc.
    min_heap_objects : int
        Min heap objects.
    cost : CollectorCost
        Cost.
    seed : int | np.random.Generator | None
        Source of randomness (an int seed, a Generator, or None).
    """
    n_allocations = validate.bounded_int("n_allocations", n_allocations, MAX_ALLOCATIONS)
    objects = allocate_objects(mix, n_allocations, seed=seed)
    g = validate.positive_float("gogc", gogc) / 100
    floor = validate.positive_int("min_heap_objects", min_heap_objects)
    if not isinstance(cost, CollectorCost):
        raise TypeError(f"cost must be a CollectorCost, got {type(cost).__name__}")
    parent = objects["parent"].to_numpy()
    death = objects["death"].to_numpy()
    n = len(objects)
    heap = np.zeros(0, dtype=np.int64)
    next_id = 0
    trigger = floor
    rows = []
    while next_id < n:  # each pass allocates at least one object, so this ends
        grow = max(1, min(trigger - heap.size, n - next_id))
        heap = np.concatenate([heap, np.arange(next_id, next_id + grow)])
        next_id += grow
        if heap.size < trigger:
            break  # the program ended before the next collection
        heap, row, trigger = _mark_and_sweep(heap, parent, death, next_id, "full", floor, g, cost)
        rows.append(row)
    df = pd.DataFrame(rows)
    df.insert(0, "collector", "mark-sweep")
    return df


def simulate_generational(
    mix: LifetimeMix = LifetimeMix(),
    n_allocations: int = 2_000_000,
    *,
    nursery_objects: int = 2_000,
    gogc: float = 100.0,
    min_old_objects: int = 1_000,
    cost: CollectorCost = CollectorCost(),
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """A two-generation stop-the-world collector, one row per collection.

    New objects go to a nursery. When it holds ``nursery_objects``, a **minor**
    collection marks the nursery (references from the old generation count as
    roots), copies the survivors into the old generation and empties the nursery:
    pause = fixed + (mark_ns + copy_ns) x survivors -- the dead cost nothing. When
    the old generation reaches ``max(min_old_objects, L_old (1 + gogc/100))``, a
    **major** collection marks and sweeps it: pause = fixed + mark_ns x live +
    sweep_ns x old size.

    Returns
    -------
    pandas.DataFrame
        As :func:`simulate_mark_sweep`, with ``collector`` "generational" and ``kind``
        "minor" or "major"; ``heap_objects`` is the size of the collected space.

    Parameters
    ----------
    mix : LifetimeMix
        Mix.
    n_allocations : int
        Number of allocations.
    nursery_objects : int
        Nursery objects.
    gogc : float
        Gogc.
    min_old_objects : int
        Min old objects.
    cost : CollectorCost
        Cost.
    seed : int | np.random.Generator | None
        Source of randomness (an int seed, a Generator, or None).
    """
    n_allocations = validate.bounded_int("n_allocations", n_allocations, MAX_ALLOCATIONS)
    objects = allocate_objects(mix, n_allocations, seed=seed)
    nursery = validate.positive_int("nursery_objects", nursery_objects)
    g = validate.positive_float("gogc", gogc) / 100
    floor = validate.positive_int("min_old_objects", min_old_objects)
    if not isinstance(cost, CollectorCost):
        raise TypeError(f"cost must be a CollectorCost, got {type(cost).__name__}")
    parent = objects["parent"].to_numpy()
    death = objects["death"].to_numpy()
    n = len(objects)
    old = np.zeros(0, dtype=np.int64)
    trigger = floor
    rows = []
    for start in range(0, n - nursery + 1, nursery):
        young = np.arange(start, start + nursery)
        now = float(start + nursery)
        survived = mark_reachable(young, parent, death, now, outside_parents_live=True)
        k = int(survived.sum())
        rows.append(_collection_row("minor", start + nursery, nursery, k, k, 0, k, cost))
        old = np.concatenate([old, young[survived]])
        if old.size >= trigger:
            old, row, trigger = _mark_and_sweep(old, parent, death, start + nursery, "major", floor, g, cost)
            rows.append(row)
    df = pd.DataFrame(rows)
    df.insert(0, "collector", "generational")
    return df


def summarize_collections(
    df: pd.DataFrame, n_allocations: int, warmup_fraction: float = 0.25
) -> pd.DataFrame:
    """Pause statistics per (collector, kind), after a warm-up share of the allocations.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``collector`` and ``kind``: ``collections``, ``mean_live``,
        ``p50_pause_us``, ``p99_pause_us``, ``max_pause_us``, ``total_pause_ms``
        and ``work_ns_per_allocation`` (total pause / allocations in the window).

    Parameters
    ----------
    df : pd.DataFrame
        The frame returned by the matching simulate/run function.
    n_allocations : int
        Number of allocations.
    warmup_fraction : float
        Share of the earliest rows left out, in [0, 1).
    """
    if not isinstance(df, pd.DataFrame) or not {"collector", "kind", "pause_us", "at_allocation"} <= set(
        df.columns
    ):
        raise TypeError("df must come from simulate_mark_sweep or simulate_generational")
    n = validate.positive_int("n_allocations", n_allocations)
    frac = validate.float_in_range("warmup_fraction", warmup_fraction, 0.0, 1.0, high_inclusive=False)
    start = frac * n
    kept = df[df["at_allocation"] > start]
    window = n - start
    grouped = kept.groupby(["collector", "kind"])
    return pd.DataFrame(
        {
            "collections": grouped.size(),
            "mean_live": grouped["live_objects"].mean(),
            "p50_pause_us": grouped["pause_us"].median(),
            "p99_pause_us": grouped["pause_us"].quantile(0.99),
            "max_pause_us": grouped["pause_us"].max(),
            "total_pause_ms": grouped["pause_us"].sum() / 1000,
            "work_ns_per_allocation": grouped["pause_us"].sum() * 1000 / window,
        }
    )


# ------------------------------------------------------ stop-the-world latency model


@dataclass(frozen=True)
class _Pauses:
    mutator_starts_s: np.ndarray  # running time at which each pause begins
    lengths_s: np.ndarray
    wall_starts_s: np.ndarray = field(init=False)
    cumulative_s: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        cumulative = np.concatenate([[0.0], np.cumsum(self.lengths_s)])
        object.__setattr__(self, "cumulative_s", cumulative)
        object.__setattr__(self, "wall_starts_s", self.mutator_starts_s + cumulative[:-1])

    def wall_to_mutator(self, wall_s: np.ndarray) -> np.ndarray:
        """Running time elapsed at each wall-clock instant (frozen inside a pause)."""
        if self.lengths_s.size == 0:
            return np.asarray(wall_s, dtype=float)
        k = np.searchsorted(self.wall_starts_s, wall_s, side="right") - 1
        before = np.where(k >= 0, self.cumulative_s[np.maximum(k, 0)], 0.0)
        inside = np.where(
            k >= 0,
            np.minimum(self.lengths_s[np.maximum(k, 0)], wall_s - self.wall_starts_s[np.maximum(k, 0)]),
            0.0,
        )
        return wall_s - before - inside

    def mutator_to_wall(self, mutator_s: np.ndarray) -> np.ndarray:
        """Wall-clock instant at which the program has run for ``mutator_s`` (after earlier pauses)."""
        k = np.searchsorted(self.mutator_starts_s, mutator_s, side="left")
        return mutator_s + self.cumulative_s[k]


def simulate_stop_the_world(
    arrival_rate_per_s: float,
    service_ms: float,
    workers: int,
    pause_ms: float,
    pauses_per_s: float,
    *,
    cv_service: float = 1.0,
    cv_pause: float = 0.0,
    n_requests: int = 200_000,
    pause_trigger: str = "time",
    spike: tuple[float, float, float] | None = None,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Requests served by ``workers`` threads of one process that all freeze during GC pauses.

    With ``pause_trigger="time"``, pauses start as a Poisson process at ``pauses_per_s``
    per second of running time, independent of the load. With ``"allocation"``, a pause
    starts each time the requests completed since the last one have done a fixed amount
    of work (their allocation fills the heap): ``arrival_rate_per_s * service / pauses_per_s``
    worker-seconds, so the *average* rate is the same, but pauses come faster while every
    worker is busy, that is, exactly when the queue is long. Pauses last ``pause_ms``
    (gamma with CV ``cv_pause``). Requests arrive as a Poisson process in wall-clock
    time and keep arriving during a pause. ``spike = (start_s, length_s, factor)``
    multiplies the arrival rate by ``factor`` for ``length_s`` seconds from ``start_s``.

    The model is exact and vectorised: stop-the-world freezes every worker at once,
    so in *running* time the server is an ordinary FIFO queue with ``workers``
    servers (:func:`syslab.queueing.simulate_pool`); arrivals during a pause enter it
    at the pause's end. Departures are mapped back to wall-clock time by adding the
    pauses that began before them.

    Returns
    -------
    pandas.DataFrame
        One row per request: ``arrival_s`` (wall clock), ``wait_ms`` (queueing, in
        running time), ``service_ms``, ``paused_ms`` (pause time the request sat
        through) and ``latency_ms`` (wall-clock arrival to response).

    Parameters
    ----------
    arrival_rate_per_s : float
        Arrival rate per s, seconds.
    service_ms : float
        Service ms, milliseconds.
    workers : int
        Concurrent requests per server.
    pause_ms : float
        Pause ms, milliseconds.
    pauses_per_s : float
        Pauses per s, seconds.
    cv_service : float
        Cv service.
    cv_pause : float
        Cv pause.
    n_requests : int
        Requests simulated.
    pause_trigger : str
        Pause trigger.
    spike : tuple[float, float, float] | None
        Spike.
    seed : int | np.random.Generator | None
        Source of randomness (an int seed, a Generator, or None).
    """
    lam = validate.positive_float("arrival_rate_per_s", arrival_rate_per_s)
    s_mean = validate.positive_float("service_ms", service_ms) / 1000
    c = validate.bounded_int("workers", workers, queueing.MAX_SERVERS)
    p_mean = validate.float_in_range("pause_ms", pause_ms, 0.0, MAX_PAUSE_MS) / 1000
    f = validate.float_in_range("pauses_per_s", pauses_per_s, 0.0, MAX_PAUSES_PER_S)
    # Beyond a CV of 5 the gamma draws underflow to 0 s (shape 1/CV^2 < 0.04).
    cv_s = validate.float_in_range("cv_service", cv_service, 0.0, MAX_CV)
    cv_p = validate.float_in_range("cv_pause", cv_pause, 0.0, MAX_CV)
    n = validate.int_in_range("n_requests", n_requests, 1, MAX_REQUESTS)
    trigger = validate.choice("pause_trigger", pause_trigger, ("time", "allocation"))
    rng = validate.rng_from_seed(seed)
    if spike is None:
        arrivals = queueing.poisson_arrival_times_s(n, lam, rng)
    else:
        if not isinstance(spike, (tuple, list)) or len(spike) != 3:
            raise TypeError("spike must be a (start_s, length_s, factor) tuple or None")
        t0 = validate.non_negative_float("spike[0] (start_s)", spike[0])
        length = validate.non_negative_float("spike[1] (length_s)", spike[1])
        factor = validate.float_in_range("spike[2] (factor)", spike[2], 1.0, MAX_SPIKE_FACTOR)
        # Thinning: candidates at the peak rate, kept with probability rate(t) / peak.
        m = int(n * factor * 1.3) + 100
        candidates = queueing.poisson_arrival_times_s(min(m, queueing.MAX_ARRIVALS), lam * factor, rng)
        inside = (candidates >= t0) & (candidates < t0 + length)
        keep = inside | (rng.random(candidates.size) < 1.0 / factor)
        arrivals = candidates[keep][:n]
        n = arrivals.size
    services = draw_gaps_s(n, s_mean, cv_s, rng)
    if trigger == "allocation" and f > 0 and p_mean > 0:
        return _allocation_paused_queue(arrivals, services, c, lam * s_mean / f, p_mean, cv_p, rng)
    horizon = float(arrivals[-1]) * 1.5 + 10 * s_mean * n / c + 1.0
    if f * horizon > MAX_REQUESTS:
        raise ValueError(
            f"pauses_per_s x the simulated span ({horizon:.3g} s, set by arrival_rate_per_s, service_ms, "
            f"workers and n_requests) must give at most {MAX_REQUESTS:,} pauses, got {f * horizon:.3g}"
        )
    n_pauses = int(rng.poisson(f * horizon)) if f > 0 and p_mean > 0 else 0
    starts = np.sort(rng.uniform(0.0, horizon, size=n_pauses))
    lengths = draw_gaps_s(n_pauses, p_mean, cv_p, rng) if n_pauses else np.zeros(0)
    pauses = _Pauses(starts, lengths)
    # Monotone in exact arithmetic; the running maximum removes float rounding at pause edges.
    arrivals_m = np.maximum.accumulate(pauses.wall_to_mutator(arrivals))
    queue = simulate_pool(PoolConfig(size=c), arrivals_s=arrivals_m, services_s=services)
    wait = queue["wait_s"].to_numpy()
    departures = pauses.mutator_to_wall(arrivals_m + wait + services)
    latency = departures - arrivals
    return pd.DataFrame(
        {
            "arrival_s": arrivals,
            "wait_ms": wait * 1000,
            "service_ms": services * 1000,
            "paused_ms": (latency - wait - services) * 1000,
            "latency_ms": latency * 1000,
        }
    )


def _allocation_paused_queue(
    arrivals: np.ndarray,
    services: np.ndarray,
    workers: int,
    work_per_pause_s: float,
    pause_s: float,
    cv_pause: float,
    rng: np.random.Generator,
) -> pd.DataFrame:
    # Event by event in running (mutator) time: a FIFO pool of `workers`; each completed request
    # adds its service to the work done since the last pause, and crossing `work_per_pause_s`
    # starts a pause at that completion. Arrivals map to running time through the pauses so far.
    free_at = [0.0] * workers
    departures: list[tuple[float, float]] = []  # (running time, service) of requests in flight
    mut_starts: list[float] = []
    lengths: list[float] = []
    wall_ends: list[float] = []
    paused_total = 0.0  # pause time of pauses that ended before the current arrival
    next_full = 0  # index of the first pause not yet in paused_total
    work = 0.0
    n = arrivals.size
    arrivals_m = np.empty(n)
    waits = np.empty(n)

    def add_pause(at_m: float) -> None:
        length = float(draw_gaps_s(1, pause_s, cv_pause, rng)[0])
        wall_start = at_m + sum(lengths)
        mut_starts.append(at_m)
        lengths.append(length)
        wall_ends.append(wall_start + length)

    def to_running(wall: float) -> float:
        nonlocal paused_total, next_full
        while next_full < len(lengths) and wall_ends[next_full] <= wall:
            paused_total += lengths[next_full]
            next_full += 1
        inside = 0.0
        if next_full < len(lengths):
            wall_start = wall_ends[next_full] - lengths[next_full]
            inside = max(0.0, wall - wall_start)
        return wall - paused_total - inside

    for i in range(n):
        m = to_running(float(arrivals[i]))
        while departures and departures[0][0] <= m:
            done_at, service = heapq.heappop(departures)
            work += service
            if work >= work_per_pause_s:
                work -= work_per_pause_s
                add_pause(done_at)
                m = to_running(float(arrivals[i]))
        start = max(m, free_at[0])
        heapq.heapreplace(free_at, start + services[i])
        heapq.heappush(departures, (start + services[i], float(services[i])))
        arrivals_m[i], waits[i] = m, start - m
    while departures:  # pauses after the last arrival still delay the requests in flight
        done_at, service = heapq.heappop(departures)
        work += service
        if work >= work_per_pause_s:
            work -= work_per_pause_s
            add_pause(done_at)
    pauses = _Pauses(np.asarray(mut_starts, dtype=float), np.asarray(lengths, dtype=float))
    latency = pauses.mutator_to_wall(arrivals_m + waits + services) - arrivals
    return pd.DataFrame(
        {
            "arrival_s": arrivals,
            "wait_ms": waits * 1000,
            "service_ms": services * 1000,
            "paused_ms": (latency - waits - services) * 1000,
            "latency_ms": latency * 1000,
        }
    )


def summarize_latency(df: pd.DataFrame, warmup_fraction: float = 0.05) -> pd.Series:
    """Mean, p50, p99 and p99.9 latency (ms) and the share of requests that sat through a pause.

    Parameters
    ----------
    df : pd.DataFrame
        The frame returned by the matching simulate/run function.
    warmup_fraction : float
        Share of the earliest rows left out, in [0, 1).

    Returns
    -------
    pd.Series
        ``mean_ms``, ``p50_ms``, ``p99_ms``, ``p999_ms`` (milliseconds) and ``paused_share`` (0-1).
    """
    if not isinstance(df, pd.DataFrame) or not {"latency_ms", "paused_ms"} <= set(df.columns):
        raise TypeError("df must be the DataFrame returned by simulate_stop_the_world")
    frac = validate.float_in_range("warmup_fraction", warmup_fraction, 0.0, 1.0, high_inclusive=False)
    kept = df.iloc[int(frac * len(df)) :]
    lat = kept["latency_ms"].to_numpy()
    return pd.Series(
        {
            **queueing.latency_percentiles_ms(lat),
            "paused_share": float((kept["paused_ms"] > 1e-9).mean()),
        }
    )


def _common_seed(seed: int | np.random.Generator | None) -> int:
    """One int seed for several runs, so each run draws the same requests (common random numbers)."""
    if isinstance(seed, np.random.Generator):
        seed = int(seed.integers(0, 2**31))
    elif seed is None:
        seed = int(np.random.SeedSequence().entropy % 2**31)
    return validate.non_negative_int("seed", seed)


def sweep_pauses(
    pause_ms: Sequence[float],
    pauses_per_s: Sequence[float],
    arrival_rate_per_s: float,
    service_ms: float,
    workers: int,
    *,
    n_requests: int = 200_000,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """:func:`simulate_stop_the_world` for each (pause length, pause rate) pair, same requests each time.

    Returns
    -------
    pandas.DataFrame
        One row per pair: ``pause_ms``, ``pauses_per_s``, ``gc_overhead`` (share of
        running time paused, f x P), the fields of :func:`summarize_latency`, and
        ``mean_ms_theory`` (the no-queueing formula: a lower bound once requests
        queue behind a pause).

    Parameters
    ----------
    pause_ms : Sequence[float]
        Pause ms, milliseconds.
    pauses_per_s : Sequence[float]
        Pauses per s, seconds.
    arrival_rate_per_s : float
        Arrival rate per s, seconds.
    service_ms : float
        Service ms, milliseconds.
    workers : int
        Concurrent requests per server.
    n_requests : int
        Requests simulated.
    seed : int
        Source of randomness (an int seed, a Generator, or None).
    """
    lengths = validate.sequence_of_floats(
        "pause_ms", pause_ms, 0.0, MAX_PAUSE_MS, max_length=MAX_SWEEP_POINTS, low_inclusive=False
    )
    rates = validate.sequence_of_floats(
        "pauses_per_s", pauses_per_s, 0.0, MAX_PAUSES_PER_S, max_length=MAX_SWEEP_POINTS
    )
    if not lengths or len(lengths) != len(rates):
        raise ValueError("pause_ms and pauses_per_s must be non-empty and of equal length")
    seed = _common_seed(seed)
    rows = []
    for p, f in zip(lengths, rates, strict=True):
        df = simulate_stop_the_world(
            arrival_rate_per_s, service_ms, workers, p, f, n_requests=n_requests, seed=seed
        )
        rows.append(
            {
                "pause_ms": p,
                "pauses_per_s": f,
                "gc_overhead": f * p / 1000,
                **summarize_latency(df),
                "mean_ms_theory": theory_pause_mean_latency_ms(service_ms, p, f),
            }
        )
    return pd.DataFrame(rows)


def sweep_pause_tradeoff(
    pause_ms: Sequence[float],
    gc_overhead: float,
    arrival_rate_per_s: float,
    service_ms: float,
    workers: int,
    *,
    n_requests: int = 200_000,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Same total GC time, different pause lengths: each pause rate is ``gc_overhead / pause length``.

    ``gc_overhead`` is the share of running time spent paused (f x P). Returns the
    rows of :func:`sweep_pauses`.

    Parameters
    ----------
    pause_ms : Sequence[float]
        Pause ms, milliseconds.
    gc_overhead : float
        Gc overhead.
    arrival_rate_per_s : float
        Arrival rate per s, seconds.
    service_ms : float
        Service ms, milliseconds.
    workers : int
        Concurrent requests per server.
    n_requests : int
        Requests simulated.
    seed : int
        Source of randomness (an int seed, a Generator, or None).

    Returns
    -------
    pd.DataFrame
        One row per pause length, with the columns of :func:`sweep_pauses` (latencies in ms).
    """
    lengths = validate.sequence_of_floats(
        "pause_ms", pause_ms, 0.0, MAX_PAUSE_MS, max_length=MAX_SWEEP_POINTS, low_inclusive=False
    )
    overhead = validate.float_in_range("gc_overhead", gc_overhead, 0.0, 0.5, low_inclusive=False)
    rates = [overhead / (p / 1000) for p in lengths]
    return sweep_pauses(
        lengths, rates, arrival_rate_per_s, service_ms, workers, n_requests=n_requests, seed=seed
    )


# Where the load spike of compare_pause_triggers sits, as shares of the run at the base rate, and
# how far past its end the requests are still counted (they queued behind it), as a multiple of it.
_SPIKE_START_SHARE = 0.3
_SPIKE_LENGTH_SHARE = 0.15
_SPIKE_WINDOW = 1.3


def compare_pause_triggers(
    service_ms: float,
    workers: int,
    pause_ms: float,
    pauses_per_s: float,
    *,
    base_load: float = 0.5,
    spike_factor: float = 1.8,
    n_requests: int = 100_000,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Pauses at random against pauses that come with allocation, under a steady load and a spike.

    Four runs of :func:`simulate_stop_the_world`, with the same seed (the same requests),
    the same pause length and the same *average* pause rate:

    - for each ``pause_trigger`` in ("time", "allocation"),
    - a **steady** load at ``base_load x spike_factor`` utilisation for ``n_requests``
      requests (the first 5% left out as warm-up), and a **spike**: ``base_load`` utilisation
      with the arrival rate multiplied by ``spike_factor`` for 15% of the run, starting 30%
      into it; only the requests that arrive in the spike or in the next 30% of its length
      are summarised (they queued behind it).

    Utilisation is ``arrival rate x service / workers``, so the base arrival rate is
    ``base_load x workers / service_ms`` requests per millisecond.

    Parameters
    ----------
    service_ms : float
        Mean work per request, milliseconds (exponential).
    workers : int
        Threads serving requests; a pause freezes all of them (1 to ``queueing.MAX_SERVERS``).
    pause_ms : float
        Length of each pause, milliseconds (0 to ``MAX_PAUSE_MS``).
    pauses_per_s : float
        Average pauses per second of running time at the base load (0 to ``MAX_PAUSES_PER_S``).
    base_load : float
        Utilisation (share of the workers' capacity, 0-1, exclusive) before the spike.
    spike_factor : float
        Arrival rate in the spike as a multiple of the base rate (1 to ``MAX_SPIKE_FACTOR``);
        ``base_load x spike_factor`` (the steady and the peak utilisation) must stay below 1.
    n_requests : int
        Requests per run (1 to ``MAX_REQUESTS``).
    seed : int | np.random.Generator | None
        Source of randomness (an int seed, a Generator, or None); one int seed serves all four
        runs.

    Returns
    -------
    pandas.DataFrame
        Four rows, trigger by trigger, steady before spike: ``scenario`` ("steady" or "spike"),
        ``case`` (the load in words, e.g. "steady 90% load", "spike 50% -> 90%"), ``trigger``
        ("time" or "allocation"), and the fields of :func:`summarize_latency`: ``mean_ms``,
        ``p50_ms``, ``p99_ms``, ``p999_ms`` (milliseconds) and ``paused_share`` (0-1).
    """
    service = validate.positive_float("service_ms", service_ms)
    c = validate.bounded_int("workers", workers, queueing.MAX_SERVERS)
    pause = validate.float_in_range("pause_ms", pause_ms, 0.0, MAX_PAUSE_MS)
    rate_of_pauses = validate.float_in_range("pauses_per_s", pauses_per_s, 0.0, MAX_PAUSES_PER_S)
    load = validate.float_in_range(
        "base_load", base_load, 0.0, 1.0, low_inclusive=False, high_inclusive=False
    )
    factor = validate.float_in_range("spike_factor", spike_factor, 1.0, MAX_SPIKE_FACTOR)
    if load * factor >= 1.0:
        raise ValueError(
            f"base_load x spike_factor (the peak utilisation) must be below 1, got "
            f"{load} x {factor} = {load * factor:.3g}"
        )
    n = validate.int_in_range("n_requests", n_requests, 1, MAX_REQUESTS)
    seed = _common_seed(seed)
    base_rate = load * c / service * 1000
    span_s = n / base_rate  # about how long a run at the base rate lasts
    spike_at, spike_s = _SPIKE_START_SHARE * span_s, _SPIKE_LENGTH_SHARE * span_s
    cases = (
        ("steady", f"steady {load * factor:.0%} load", None),
        ("spike", f"spike {load:.0%} -> {load * factor:.0%}", (spike_at, spike_s, factor)),
    )
    same = {"n_requests": n, "seed": seed}  # the same requests in every run
    rows = []
    for trigger in ("time", "allocation"):
        for scenario, case, spike in cases:
            rate = factor * base_rate if spike is None else base_rate
            df = simulate_stop_the_world(
                rate, service, c, pause, rate_of_pauses, pause_trigger=trigger, spike=spike, **same
            )
            if spike is None:
                summary = summarize_latency(df, 0.05)
            else:
                arrival = df["arrival_s"]
                window = df[(arrival >= spike_at) & (arrival < spike_at + _SPIKE_WINDOW * spike_s)]
                summary = summarize_latency(window, 0.0)
            rows.append({"scenario": scenario, "case": case, "trigger": trigger, **summary})
    return pd.DataFrame(rows)


def pause_trigger_record(comparison: pd.DataFrame) -> dict:
    """The ratios and verdicts the chapter quotes from :func:`compare_pause_triggers`.

    Parameters
    ----------
    comparison : pandas.DataFrame
        :func:`compare_pause_triggers` output (one row per scenario and trigger).

    Returns
    -------
    dict
        ``spike_mean_ratio`` and ``spike_p999_ratio`` (in the spike, allocation-triggered over
        random pauses, mean and p99.9 latency), ``steady_p999_ratio`` (the same for the steady
        p99.9), ``spike_verdict`` ("higher" / "not higher": the spike's mean latency with
        allocation-triggered pauses against random ones) and ``steady_verdict`` ("lower" /
        "not lower": the steady p99.9, likewise).
    """
    validate.frame_columns("comparison", comparison, ["scenario", "trigger", "mean_ms", "p999_ms"])
    by = comparison.set_index(["scenario", "trigger"])
    needed = [(s, t) for s in ("steady", "spike") for t in ("time", "allocation")]
    missing = [pair for pair in needed if pair not in by.index]
    if missing:
        raise ValueError(f"comparison is missing the (scenario, trigger) rows {missing}")
    spike, steady = by.loc["spike"], by.loc["steady"]
    return {
        "spike_mean_ratio": float(spike.loc["allocation", "mean_ms"] / spike.loc["time", "mean_ms"]),
        "spike_p999_ratio": float(spike.loc["allocation", "p999_ms"] / spike.loc["time", "p999_ms"]),
        "steady_p999_ratio": float(steady.loc["allocation", "p999_ms"] / steady.loc["time", "p999_ms"]),
        "spike_verdict": claims.phrase(
            spike.loc["allocation", "mean_ms"] > spike.loc["time", "mean_ms"], "higher", "not higher"
        ),
        "steady_verdict": claims.phrase(
            steady.loc["allocation", "p999_ms"] < steady.loc["time", "p999_ms"], "lower", "not lower"
        ),
    }


# ------------------------------------------------------------ the chapter's checks


_CHECK_ROWS = (
    "live objects (mark-sweep)",
    "minor survival fraction",
    "work per allocation (ns)",
    "mean latency, no queueing (ms)",
)


def compare_with_theory(
    runs: pd.DataFrame,
    mix: LifetimeMix,
    n_allocations: int,
    *,
    nursery_objects: int = 2_000,
    gogc: float = 100.0,
    cost: CollectorCost = CollectorCost(),
    service_ms: float = 5.0,
    pause_ms: float = 50.0,
    n_requests: int = 200_000,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Each piece of the model against its closed form: simulated, theory and their ratio.

    - **live objects**: the mark-sweep collector's live count at its collections after the
      first quarter of the run, against :func:`theory_live_objects` at the same instants;
    - **minor survival**: the share of the nursery that minor collections kept, against
      :func:`theory_nursery_survival`;
    - **work per allocation**: the mark-sweep collector's pause time per allocation after the
      warm-up (:func:`summarize_collections`), against
      :func:`theory_mark_sweep_work_per_allocation_ns` at its mean live count;
    - **mean latency without queueing**: :func:`simulate_stop_the_world` with 100 requests per
      second on 1000 workers, one pause per second and a constant service time, against
      :func:`theory_pause_mean_latency_ms`.

    Parameters
    ----------
    runs : pandas.DataFrame
        :func:`simulate_mark_sweep` and :func:`simulate_generational` output, concatenated.
    mix : LifetimeMix
        The lifetimes the runs allocated with.
    n_allocations : int
        Allocations in each run (1 to ``MAX_ALLOCATIONS``).
    nursery_objects : int
        The generational run's nursery, objects (must match its minor collections).
    gogc : float
        The runs' GOGC, percent of heap growth over the live set that triggers a collection.
    cost : CollectorCost
        The runs' collector costs.
    service_ms : float
        Work per request in the latency check, milliseconds (constant; 0 to
        ``MAX_CHECK_SERVICE_MS``).
    pause_ms : float
        Pause length in the latency check, milliseconds (0 to ``MAX_CHECK_PAUSE_MS``).
    n_requests : int
        Requests in the latency check (1 to ``MAX_REQUESTS``).
    seed : int | np.random.Generator | None
        Source of randomness for the latency check (an int seed, a Generator, or None).

    Returns
    -------
    pandas.DataFrame
        Indexed by the check in words ("live objects (mark-sweep)", "minor survival fraction",
        "work per allocation (ns)", "mean latency, no queueing (ms)"), with columns
        ``simulated`` and ``theory`` (objects, a share 0-1, nanoseconds, milliseconds) and
        ``ratio`` (simulated / theory).
    """
    columns = ["collector", "kind", "at_allocation", "heap_objects", "live_objects", "pause_us"]
    validate.frame_columns("runs", runs, columns)
    _check_mix(mix)
    n = validate.bounded_int("n_allocations", n_allocations, MAX_ALLOCATIONS)
    nursery = validate.positive_int("nursery_objects", nursery_objects)
    g = validate.positive_float("gogc", gogc)
    validate.instance("cost", cost, CollectorCost)
    service = validate.float_in_range(
        "service_ms", service_ms, 0.0, MAX_CHECK_SERVICE_MS, low_inclusive=False
    )
    pause = validate.float_in_range("pause_ms", pause_ms, 0.0, MAX_CHECK_PAUSE_MS, low_inclusive=False)
    n_req = validate.int_in_range("n_requests", n_requests, 1, MAX_REQUESTS)
    ms = runs[(runs["collector"] == "mark-sweep") & (runs["at_allocation"] > n / 4)]
    minors = runs[runs["kind"] == "minor"]
    if ms.empty or minors.empty:
        raise ValueError(
            "runs must hold mark-sweep collections after the first quarter of n_allocations and "
            "minor collections (concatenate simulate_mark_sweep and simulate_generational)"
        )
    if (minors["heap_objects"] != nursery).any():
        raise ValueError(
            f"nursery_objects must be the nursery the generational run used "
            f"({int(minors['heap_objects'].iloc[0])}), got {nursery}"
        )
    full = summarize_collections(runs, n).loc[("mark-sweep", "full")]
    no_queue = simulate_stop_the_world(
        100.0, service, 1000, pause, 1.0, cv_service=0.0, n_requests=n_req, seed=seed
    )
    simulated = [
        ms["live_objects"].mean(),
        minors["live_objects"].sum() / (nursery * len(minors)),
        full["work_ns_per_allocation"],
        no_queue["latency_ms"].mean(),
    ]
    theory = [
        np.mean([theory_live_objects(mix, t) for t in ms["at_allocation"]]),
        theory_nursery_survival(mix, nursery),
        theory_mark_sweep_work_per_allocation_ns(cost, g, full["mean_live"]),
        theory_pause_mean_latency_ms(service, pause, 1.0),
    ]
    checks = pd.DataFrame({"simulated": simulated, "theory": theory}, index=list(_CHECK_ROWS))
    checks["ratio"] = checks["simulated"] / checks["theory"]
    return checks


def collections_record(
    summary: pd.DataFrame, mix: LifetimeMix, *, n_allocations: int, nursery_objects: int, gogc: float
) -> dict:
    """The numbers the chapter quotes about its two collectors (:func:`summarize_collections`).

    Parameters
    ----------
    summary : pandas.DataFrame
        :func:`summarize_collections` of the mark-sweep and generational runs together.
    mix : LifetimeMix
        The lifetimes the runs allocated with: three classes (temporaries, request-scoped,
        long-lived).
    n_allocations : int
        Allocations in each run (1 to ``MAX_ALLOCATIONS``).
    nursery_objects : int
        The generational collector's nursery, objects.
    gogc : float
        The runs' GOGC, percent.

    Returns
    -------
    dict
        ``n_alloc``, ``nursery`` (ints); ``pct_temp``, ``pct_mid``, ``pct_long`` (each class's
        share of allocations, percent) and ``life_temp``, ``life_mid``, ``life_long`` (their
        mean lifetimes, allocations); ``gogc`` (percent); ``full_count``, ``minor_count``,
        ``major_count`` (collections after the warm-up) and ``full_p50_us``, ``minor_p50_us``,
        ``major_p50_us`` (their median pauses, microseconds): full from the mark-sweep
        collector, minor and major from the generational one; ``total_ratio`` (total pause of
        mark-sweep over that of the generational collector).
    """
    validate.frame_columns("summary", summary, ["collections", "p50_pause_us", "total_pause_ms"])
    _check_mix(mix)
    if len(mix.weights) != 3:
        raise ValueError(
            f"mix must have three lifetime classes (temporaries, request-scoped, long-lived), "
            f"got {len(mix.weights)}"
        )
    out: dict = {
        "n_alloc": validate.bounded_int("n_allocations", n_allocations, MAX_ALLOCATIONS),
        "nursery": validate.positive_int("nursery_objects", nursery_objects),
    }
    gogc = validate.positive_float("gogc", gogc)
    rows = {"full": ("mark-sweep", "full"), "minor": ("generational", "minor")}
    rows["major"] = ("generational", "major")
    missing = [pair for pair in rows.values() if pair not in summary.index]
    if missing:
        raise ValueError(f"summary is missing the (collector, kind) rows {missing}")
    for i, name in enumerate(("temp", "mid", "long")):
        out[f"pct_{name}"] = float(100 * mix.weights[i])
    for i, name in enumerate(("temp", "mid", "long")):
        out[f"life_{name}"] = float(mix.mean_lifetimes[i])
    out["gogc"] = gogc
    for kind, index in rows.items():
        out[f"{kind}_count"] = int(summary.loc[index, "collections"])
        out[f"{kind}_p50_us"] = float(summary.loc[index, "p50_pause_us"])
    generational_ms = summary.loc["generational", "total_pause_ms"].sum()
    out["total_ratio"] = float(summary.loc[("mark-sweep", "full"), "total_pause_ms"] / generational_ms)
    return out


# --------------------------------------------------------------- CPython, for real


def _run_child(args: list[str], timeout_s: float) -> tuple[dict, list[dict]]:
    life = ["--max-life-s", f"{min(timeout_s, 600.0):.1f}"]
    with ChildProcess("syslab.children.gc_probe", life + args, timeout_s=timeout_s) as child:
        child.expect("result", timeout_s=timeout_s)
        events = list(child.events)
    env: dict = {}
    rows = []
    for event in events:
        if event.get("event") != "record":
            continue
        record = {k: v for k, v in event.items() if k != "event"}
        if "env" in record:
            env = record["env"]
        elif "summary" in record:
            env = {**env, **record["summary"]}
        else:
            rows.append(record)
    return env, rows


def _child_summary(env: dict) -> dict:
    """The child's records as a Run summary: plain values, the GC thresholds as a tuple."""
    return {key: tuple(value) if isinstance(value, list) else value for key, value in env.items()}


def measure_cpython_pauses(
    live_objects: Sequence[int], *, repeats: int = 3, timeout_s: float = 60.0
) -> experiment.Run:
    """Time CPython's collections of each generation with N extra live tracked objects.

    A child interpreter (``python -m syslab.children.gc_probe``) builds N small
    lists, times ``gc.collect(0)``, ``gc.collect(1)`` and ``gc.collect(2)`` with a
    ``gc.callbacks`` hook, then calls ``gc.freeze()`` and times ``gc.collect(2)``
    again. The child imports only the standard library, so its heap is what it built.

    Returns
    -------
    syslab.experiment.Run
        ``summary``: the child's interpreter (``python`` version, ``implementation``,
        ``threshold``, a tuple of three ints from ``gc.get_threshold()``, ``has_freeze``,
        ``tracked_at_start``: objects tracked before it built anything). ``frame``: one
        row per timed collection: ``n_live``, ``tracked`` (objects the collector tracks),
        ``kind`` ("gen0", "gen1", "gen2", "gen2 frozen") and ``pause_ms`` (milliseconds).

    Parameters
    ----------
    live_objects : Sequence[int]
        Live objects.
    repeats : int
        Timed repetitions.
    timeout_s : float
        Limit for the whole experiment, seconds.
    """
    sizes = validate.sequence_of_positive_ints("live_objects", live_objects)
    if max(sizes) > 5_000_000:
        raise ValueError("live_objects above 5,000,000 would need gigabytes; keep it smaller")
    repeats = validate.bounded_int("repeats", repeats, 100)
    timeout_s = validate.float_in_range("timeout_s", timeout_s, 0.0, MAX_REAL_TIMEOUT_S, low_inclusive=False)
    env, rows = _run_child(["pauses", ",".join(map(str, sizes)), str(repeats)], timeout_s)
    df = pd.DataFrame(rows)
    df["pause_ms"] = df.pop("pause_ns") / 1e6
    return experiment.Run.create(df, _child_summary(env))


def measure_cpython_churn(
    live_objects: int, *, duration_s: float = 0.5, ring: int = 100, timeout_s: float = 30.0
) -> experiment.Run:
    """Let CPython's collector run by itself while a program allocates cyclic garbage.

    The child keeps ``live_objects`` long-lived objects, then for ``duration_s``
    allocates small dict-and-list pairs in reference cycles, each kept alive until
    ``ring`` newer ones exist. A small ring means objects die young; a ring larger
    than the young generation means many survive long enough to be promoted.

    Returns
    -------
    syslab.experiment.Run
        ``summary``: the child's interpreter (as in :func:`measure_cpython_pauses`) plus
        ``allocated`` (cyclic structures allocated), ``duration_s`` (seconds) and
        ``live_kept`` (long-lived objects). ``frame``: one row per automatic collection:
        ``n_live``, ``generation``, ``pause_ms`` (milliseconds), ``collected`` (objects
        freed) and ``at_s`` (seconds).

    Parameters
    ----------
    live_objects : int
        Live objects.
    duration_s : float
        Duration s, seconds.
    ring : int
        Ring.
    timeout_s : float
        Limit for the whole experiment, seconds.
    """
    n = validate.int_in_range("live_objects", live_objects, 0, 5_000_000)
    duration = validate.float_in_range("duration_s", duration_s, 0.01, 30.0)
    ring = validate.int_in_range("ring", ring, 1, 1_000_000)
    timeout_s = validate.float_in_range("timeout_s", timeout_s, 0.0, MAX_REAL_TIMEOUT_S, low_inclusive=False)
    env, rows = _run_child(["churn", str(n), str(duration), str(ring)], max(timeout_s, duration + 10))
    df = pd.DataFrame(rows, columns=["n_live", "generation", "pause_ns", "collected", "at_s"])
    df["pause_ms"] = df.pop("pause_ns") / 1e6
    return experiment.Run.create(df, _child_summary(env))


# ------------------------------------------------------------------------- plots


def _sawtooth(group: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Occupancy of a collected space: up to ``heap_objects`` at a collection, then down to the live set."""
    at = group["at_allocation"].to_numpy()
    heap = group["heap_objects"].to_numpy()
    live = group["live_objects"].to_numpy()
    x = np.column_stack([at, at]).ravel()
    y = np.column_stack([heap, live]).ravel()
    return x, y


def plot_collections(
    df: pd.DataFrame, axes: Sequence[Axes] | None = None, *, window: tuple[float, float] | None = None
) -> Sequence[Axes]:
    """Left: occupancy of the collected space over time (sawtooth); right: pause CCDF per collector/kind.

    ``df`` concatenates :func:`simulate_mark_sweep` and :func:`simulate_generational`
    output. The left panel shows the whole heap of the mark-sweep collector and the old
    generation of the generational one, for collections inside ``window`` (first and last
    allocation); the right panel uses every collection. Returns both axes.

    Parameters
    ----------
    df : pd.DataFrame
        The frame returned by the matching simulate/run function.
    axes : Sequence[Axes] | None
        Where to draw (one Axes per panel); a new figure when omitted.
    window : tuple[float, float] | None
        Window.

    Returns
    -------
    Sequence[Axes]
        The two axes drawn on: occupancy (objects) over allocations, and the pause CCDF (ms).
    """
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    validate.frame_columns("df", df, ["collector", "kind", "at_allocation", "pause_us"])
    if axes is None:
        import matplotlib.pyplot as plt

        _, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    left, right = axes
    shown = df if window is None else df[df["at_allocation"].between(window[0], window[1])]
    names = {"full": "mark-sweep: whole heap", "major": "generational: old generation"}
    for i, ((_, kind), group) in enumerate(df.groupby(["collector", "kind"], sort=False)):
        if kind in names:
            x, y = _sawtooth(
                shown[(shown["collector"] == group["collector"].iloc[0]) & (shown["kind"] == kind)]
            )
            style = "-" if kind == "full" else "--"
            left.plot(x, y, color=f"C{i}", lw=1.2, ls=style, label=names[kind])
    label(left, "time (allocations)", "objects in the collected space")
    left.legend(loc="lower right", framealpha=0.9)
    left.ticklabel_format(axis="x", style="plain")
    for i, ((collector, kind), group) in enumerate(df.groupby(["collector", "kind"], sort=False)):
        pauses = np.sort(group["pause_us"].to_numpy())
        share = 1.0 - np.arange(pauses.size) / pauses.size
        right.step(pauses / 1000, share, where="post", color=f"C{i}", label=f"{collector}: {kind}")
    right.set_xscale("log")
    right.set_yscale("log")
    right.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    right.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    right.xaxis.set_minor_formatter(NullFormatter())
    label(right, "pause (ms)", "share of collections with a longer pause", legend=True)
    return axes


def plot_pause_tradeoff(sweep: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """p50, p99 and p99.9 latency against pause length at a fixed GC overhead.

    ``sweep`` is the output of :func:`sweep_pause_tradeoff`.

    Parameters
    ----------
    sweep : pd.DataFrame
        The frame returned by the matching sweep function.
    ax : Axes | None
        Where to draw; a new figure when omitted.

    Returns
    -------
    Axes
        The axes drawn on: latency (ms) against pause length (ms), log-log.
    """
    validate.frame_columns("sweep", sweep, ["pause_ms", "p50_ms", "p99_ms", "p999_ms"])
    ax = axes_or_new(ax)
    for column, name in (("p50_ms", "p50"), ("p99_ms", "p99"), ("p999_ms", "p99.9")):
        ax.plot(sweep["pause_ms"], sweep[column], marker="o", label=name)
    ax.plot(sweep["pause_ms"], sweep["pause_ms"], color="0.5", ls=":", label="one pause")
    ax.set_xscale("log")
    ax.set_yscale("log")
    label(ax, "pause length (ms), same total GC time", "request latency (ms)", legend=True)
    return ax


def plot_cpython_pauses(df: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Median pause per kind against live objects (:func:`measure_cpython_pauses`), log-log.

    Parameters
    ----------
    df : pd.DataFrame
        The frame returned by the matching simulate/run function.
    ax : Axes | None
        Where to draw; a new figure when omitted.

    Returns
    -------
    Axes
        The axes drawn on: median pause (ms) against live objects added, log-log.
    """
    validate.frame_columns("df", df, ["kind", "n_live", "pause_ms"])
    ax = axes_or_new(ax)
    medians = df.groupby(["kind", "n_live"])["pause_ms"].median().reset_index()
    for i, (kind, group) in enumerate(medians.groupby("kind")):
        ax.plot(group["n_live"], group["pause_ms"], marker="o", color=f"C{i}", label=kind)
    ax.set_xscale("log")
    ax.set_yscale("log")
    label(ax, "live tracked objects added", "collection pause (ms)", legend=True)
    return ax


def plot_latency_histogram(df: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Histogram of request latency (log-log), with the p99 and p99.9 written on it.

    Parameters
    ----------
    df : pd.DataFrame
        :func:`simulate_stop_the_world` output.
    ax : Axes | None
        Where to draw; a new 6 x 3.4 inch figure when omitted.

    Returns
    -------
    Axes
        The axes drawn on: requests against latency (ms), one filled outline over 69 log-spaced
        bins from 0.01 to 2000 ms.
    """
    validate.frame_columns("df", df, ["latency_ms", "paused_ms"])
    ax = axes_or_new(ax, figsize=(6, 3.4))
    s = summarize_latency(df)
    # One outline instead of 69 bars, and plain tick labels on the log axes: most of an explorer
    # update was matplotlib drawing the bars and formatting log ticks (0.35-0.6 s of CPU).
    counts, edges = np.histogram(df["latency_ms"], bins=np.geomspace(0.01, 2000, 70))
    ax.stairs(counts, edges, fill=True)
    ax.set(xscale="log", yscale="log")
    ax.xaxis.set_major_formatter("{x:g}")
    ax.yaxis.set_major_formatter("{x:g}")
    label(ax, "request latency (ms)", "requests")
    ax.text(0.02, 0.9, f"p99 {s.p99_ms:.1f} ms, p99.9 {s.p999_ms:.1f} ms", transform=ax.transAxes)
    return ax
