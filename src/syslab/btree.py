"""B-tree leaf pages under inserts, splits and deletes -- one simulator for two chapters.

The simulator keeps only what decides page fill: the leaf level of a B+-tree,
each leaf a sorted list of keys with room for ``capacity_keys`` of them. An
insert that finds its leaf full splits it, and the **split policy** decides
where:

- ``"half"``: the textbook 50/50 split, always;
- ``"innodb"``: 50/50, except that an insert at the right end of the rightmost
  leaf starts a new page instead (split at the insertion point), and pages
  count as full at 15/16 -- InnoDB leaves 1/16 of a page free
  (MySQL manual, *The Physical Structure of an InnoDB Index*);
- ``"postgres"``: 50/50, except that splitting the rightmost leaf leaves the
  left page ``fillfactor`` full (90 by default; PostgreSQL's ``nbtsplitloc.c``).

Random inserts then settle near ln 2 = 69% fill (Yao 1978); sequential ones
give 50%, 15/16 or 90% depending on the policy. :func:`grow_leaf_level`
also runs an LRU buffer pool over the leaf pages an insert touches, to show
why random keys stop fitting in memory long before sequential ones do.
:func:`simulate_churn` adds deletes: a queue-like table with a sliding window
of live keys, where PostgreSQL can reclaim only completely empty pages.

The real experiments on SQLite (``run_sqlite_*``) measure what SQLite does,
which is neither of the above: its ``balance_nonroot`` redistributes cells
across up to three siblings, and the append fast path ``balance_quick`` runs
only for rowid tables.
"""

from __future__ import annotations

import bisect
import math
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from syslab import validate
from syslab.experiment import Run
from syslab.plot import axes_or_new, label
from syslab.sqlite_tools import page_stats, temporary_database

__all__ = [
    "INNODB_KEY_KINDS",
    "LeafLevel",
    "PG_KEY_KINDS",
    "SPLIT_POLICIES",
    "measure_innodb_keys",
    "measure_postgres_keys",
    "plot_buffer_pool",
    "plot_churn",
    "plot_fill_histogram",
    "plot_fill_history",
    "plot_pool_sweep",
    "plot_queue_runs",
    "run_online_index_build",
    "run_postgres_queue",
    "run_sqlite_bloat",
    "run_sqlite_inserts",
    "simulate_churn",
    "grow_leaf_level",
    "simulate_late_arrivals",
    "summarize_leaves",
    "summarize_queue_facts",
    "summarize_queue_runs",
    "sweep_buffer_pool",
    "sweep_stragglers",
    "theory_churn_leaf_pages",
    "theory_lru_hit_ratio",
    "theory_random_fill",
    "theory_sequential_fill",
]

SPLIT_POLICIES = ("half", "innodb", "postgres")
MAX_KEYS = 5_000_000  # keys in one simulated index (~10 s of Python per million)
MAX_SQLITE_ROWS = 2_000_000  # rows in one real SQLite experiment
MAX_PAYLOAD_BYTES = 10_000  # bytes of payload per SQLite row
MAX_CHECKPOINTS = 10_000  # snapshots of the index taken during one simulation
MAX_SWEEP_POINTS = 50  # values in one sweep (one simulation each)
INNODB_FULL_FRACTION = 15 / 16  # InnoDB reserves 1/16 of each page
NEG_INF = -math.inf


# =========================================================================== theory


def theory_random_fill() -> float:
    """Expected leaf utilisation under random inserts with 50/50 splits: ln 2 (Yao 1978).

    Returns
    -------
    float
        ln 2 = 0.693...
    """
    return math.log(2)


def theory_sequential_fill(policy: str, fillfactor: float = 0.9) -> float:
    """Leaf fill after ascending inserts, as a fraction of the page: 1/2, 15/16 or ``fillfactor``.

    Parameters
    ----------
    policy : {"half", "innodb", "postgres"}
        Split policy.
    fillfactor : float
        PostgreSQL's fillfactor as a fraction (0.1 to 1).

    Returns
    -------
    float
        0.5, 15/16 or ``fillfactor``.
    """
    policy = validate.choice("policy", policy, SPLIT_POLICIES)
    if policy == "half":
        return 0.5
    if policy == "innodb":
        return INNODB_FULL_FRACTION
    return validate.float_in_range("fillfactor", fillfactor, 0.1, 1.0)


def theory_lru_hit_ratio(buffer_pages: int, leaf_pages: int | np.ndarray) -> float | np.ndarray:
    """LRU hit ratio when every leaf is equally likely to be touched: ``min(1, B / N)``.

    Under the independent reference model with uniform page probabilities, an LRU
    cache of B pages holds B distinct pages and the next reference hits with
    probability B/N.

    Parameters
    ----------
    buffer_pages : int
        Pages the buffer pool holds (B).
    leaf_pages : int or numpy.ndarray
        Leaf pages of the index (N).

    Returns
    -------
    float or numpy.ndarray
        ``min(1, B / N)``.
    """
    b = validate.positive_int("buffer_pages", buffer_pages)
    if isinstance(leaf_pages, (str, bytes, bool)) or leaf_pages is None:
        raise TypeError(f"leaf_pages must be a number or an array of numbers, got {leaf_pages!r}")
    try:
        n = np.asarray(leaf_pages, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"leaf_pages must be a number or an array of numbers, got {leaf_pages!r}") from None
    if n.dtype.kind == "b" or np.asarray(leaf_pages).dtype.kind not in "iuf":
        raise TypeError(f"leaf_pages must be a number or an array of numbers, got {leaf_pages!r}")
    if not np.all(np.isfinite(n)) or np.any(n <= 0):
        raise ValueError(f"leaf_pages must be finite and > 0, got {leaf_pages!r}")
    result = np.minimum(1.0, b / n)
    return float(result) if result.ndim == 0 else result


def theory_churn_leaf_pages(
    n_steps: int, window: int, straggler_fraction: float, capacity_keys: int, fillfactor: float = 0.9
) -> float:
    """Leaf pages of a sequential-key queue index when only empty pages are reclaimed.

    Rightmost splits leave every page with ``f = fillfactor x capacity`` keys. The live window
    needs ``window / f`` pages. Of the ``(n_steps - window) / f`` pages whose keys have all
    passed the delete horizon, a page survives if any of its ``f`` keys is a straggler:
    probability ``1 - (1 - s)^f``. With s = 1% and f = 90 that is 60% of all pages ever filled.

    Parameters
    ----------
    n_steps : int
        Keys inserted in all (N).
    window : int
        Live keys (W).
    straggler_fraction : float
        Share of keys never deleted (s), 0 to 1.
    capacity_keys : int
        Keys a page holds when full.
    fillfactor : float
        Share of a page the rightmost split leaves filled (f = fillfactor x capacity).

    Returns
    -------
    float
        Expected leaf pages: ``W/f + (N - W)/f * (1 - (1 - s)**f)``.
    """
    steps = validate.bounded_int("n_steps", n_steps, MAX_KEYS)
    w = validate.positive_int("window", window)
    s = validate.probability("straggler_fraction", straggler_fraction)
    c = validate.positive_int("capacity_keys", capacity_keys)
    ff = validate.float_in_range("fillfactor", fillfactor, 0.1, 1.0)
    per_page = max(1, math.floor(c * ff))
    retired = max(0, steps - w) / per_page
    return min(steps, w) / per_page + retired * (1 - (1 - s) ** per_page)


# =========================================================================== the leaf level


class LeafLevel:
    """The leaf level of a B+-tree: sorted leaves of at most ``capacity_keys`` keys.

    Parameters
    ----------
    capacity_keys : int
        Keys that fit in one page (e.g. 16 KiB / ~40-byte entries ~ 400).
    policy : {"half", "innodb", "postgres"}
        Split policy (see the module docstring).
    fillfactor : float
        PostgreSQL's leaf fillfactor for rightmost splits (0.9 by default).
    reclaim : {"empty", "merge"}
        What deletes may free: ``"empty"`` only completely empty pages that are not
        the rightmost (PostgreSQL nbtree); ``"merge"`` also merges a page that drops
        below half full into a neighbour when both fit in one page (InnoDB's
        MERGE_THRESHOLD of 50%).
    """

    def __init__(
        self, capacity_keys: int, policy: str = "half", *, fillfactor: float = 0.9, reclaim: str = "empty"
    ) -> None:
        self.capacity = validate.int_in_range("capacity_keys", capacity_keys, 4, 1_000_000)
        self.policy = validate.choice("policy", policy, SPLIT_POLICIES)
        self.fillfactor = validate.float_in_range("fillfactor", fillfactor, 0.1, 1.0)
        self.reclaim = validate.choice("reclaim", reclaim, ("empty", "merge"))
        # A page is "full" at this many keys: InnoDB stops at 15/16 of the page.
        self.limit = (
            max(2, math.floor(self.capacity * INNODB_FULL_FRACTION))
            if self.policy == "innodb"
            else self.capacity
        )
        self.leaves: list[list[float]] = [[]]
        self.lows: list[float] = [NEG_INF]  # leaf i holds keys in [lows[i], lows[i+1])
        self.ids: list[int] = [0]  # a stable page id per leaf, for the buffer pool
        self.next_id = 1
        self.splits = 0
        self.n_keys = 0

    def _find(self, key: float) -> int:
        return bisect.bisect_right(self.lows, key) - 1

    def insert(self, key: float) -> int:
        """Insert ``key``; return the page id of the leaf it landed in (before any split)."""
        i = self._find(key)
        leaf = self.leaves[i]
        touched = self.ids[i]
        at_right_end = i == len(self.leaves) - 1 and (not leaf or key > leaf[-1])
        bisect.insort(leaf, key)
        self.n_keys += 1
        if len(leaf) > self.limit:
            self._split(i, at_right_end)
        return touched

    def _split(self, i: int, rightmost_append: bool) -> None:
        leaf = self.leaves[i]
        n = len(leaf)
        if rightmost_append and self.policy == "innodb":
            cut = n - 1  # the old page keeps everything; the new key starts a fresh page
        elif rightmost_append and self.policy == "postgres":
            cut = min(n - 1, max(1, math.floor(self.capacity * self.fillfactor)))
        else:
            cut = n // 2
        right = leaf[cut:]
        del leaf[cut:]
        self.leaves.insert(i + 1, right)
        self.lows.insert(i + 1, right[0])
        self.ids.insert(i + 1, self.next_id)
        self.next_id += 1
        self.splits += 1

    def delete(self, key: float) -> bool:
        """Delete ``key`` if present; free or merge pages as ``reclaim`` allows. Returns True if found."""
        i = self._find(key)
        leaf = self.leaves[i]
        j = bisect.bisect_left(leaf, key)
        if j == len(leaf) or leaf[j] != key:
            return False
        del leaf[j]
        self.n_keys -= 1
        last = len(self.leaves) - 1
        if not leaf and i != last and len(self.leaves) > 1:
            self._remove_leaf(i)
        elif self.reclaim == "merge" and len(leaf) < self.capacity // 2 and len(self.leaves) > 1:
            # Like InnoDB, try the left sibling first, then the right one.
            for left, right in ((i - 1, i), (i, i + 1)):
                if (
                    0 <= left
                    and right <= last
                    and len(self.leaves[left]) + len(self.leaves[right]) <= self.limit
                ):
                    self.leaves[left].extend(self.leaves[right])
                    self._remove_leaf(right)
                    break
        return True

    def _remove_leaf(self, i: int) -> None:
        # The left neighbour's range absorbs this one's; the first leaf keeps -inf as its low bound.
        del self.leaves[i]
        del self.lows[i]
        del self.ids[i]
        self.lows[0] = NEG_INF

    @property
    def leaf_pages(self) -> int:
        return len(self.leaves)

    def fills(self) -> np.ndarray:
        """Fill of every leaf as a fraction of the page (keys / capacity_keys)."""
        return np.array([len(leaf) for leaf in self.leaves], dtype=float) / self.capacity

    def mean_fill(self) -> float:
        """Keys stored / (leaves x capacity): the utilisation that decides index size."""
        return self.n_keys / (self.leaf_pages * self.capacity)


# =========================================================================== simulations


def _keys(order: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if order == "sequential":
        return np.arange(n, dtype=float)
    if order == "random":
        return rng.random(n)
    raise ValueError(f"order must be 'sequential' or 'random', got {order!r}")


def grow_leaf_level(
    n_keys: int,
    *,
    order: str = "random",
    capacity_keys: int = 100,
    policy: str = "half",
    fillfactor: float = 0.9,
    buffer_pages: int | None = None,
    n_checkpoints: int = 50,
    seed: int | np.random.Generator | None = 0,
) -> tuple[pd.DataFrame, LeafLevel]:
    """The growth history and final state of a leaf level after ``n_keys`` inserts into an empty one.

    Records fill and buffer-pool hits as the level grows.

    Parameters
    ----------
    n_keys : int
        Keys to insert.
    order : {"random", "sequential"}
        Uniform random keys (UUIDv4-like) or ascending keys (AUTO_INCREMENT, UUIDv7).
    capacity_keys : int
        Keys per page.
    policy : {"half", "innodb", "postgres"}
        Split policy.
    fillfactor : float
        PostgreSQL's rightmost-split fill.
    buffer_pages : int, optional
        Size of an LRU buffer pool in pages; None skips the cache model.
    n_checkpoints : int
        Rows in the history.
    seed : int or Generator

    Returns
    -------
    (history, leaves)
        ``history`` has one row per checkpoint: ``inserted``, ``leaf_pages``, ``mean_fill``,
        ``splits`` and, with a buffer pool, ``hit_ratio`` (fraction of inserts since the last
        checkpoint whose leaf was already cached) and ``theory_hit_ratio`` (min(1, B/N) at the
        checkpoint). ``leaves`` is the final :class:`LeafLevel`.
    """
    n = validate.bounded_int("n_keys", n_keys, MAX_KEYS)
    policy = validate.choice("policy", policy, SPLIT_POLICIES)
    checkpoints = validate.bounded_int("n_checkpoints", n_checkpoints, MAX_CHECKPOINTS)
    cache_size = None if buffer_pages is None else validate.positive_int("buffer_pages", buffer_pages)
    rng = validate.rng_from_seed(seed)
    keys = _keys(order, n, rng)
    level = LeafLevel(capacity_keys, policy, fillfactor=fillfactor)
    cache: OrderedDict[int, None] = OrderedDict()
    marks = set(np.unique(np.linspace(n / checkpoints, n, checkpoints).astype(int)).tolist())
    rows = []
    hits = since = 0
    for count, key in enumerate(keys.tolist(), start=1):
        page = level.insert(key)
        if cache_size is not None:
            since += 1
            if page in cache:
                hits += 1
                cache.move_to_end(page)
            else:
                cache[page] = None
                if len(cache) > cache_size:
                    cache.popitem(last=False)
        if count in marks:
            row = {
                "inserted": count,
                "leaf_pages": level.leaf_pages,
                "mean_fill": level.mean_fill(),
                "splits": level.splits,
            }
            if cache_size is not None:
                row["hit_ratio"] = hits / since
                row["theory_hit_ratio"] = theory_lru_hit_ratio(cache_size, level.leaf_pages)
                hits = since = 0
            rows.append(row)
    history = pd.DataFrame(rows)
    history.insert(0, "order", order)
    history.insert(1, "policy", policy)
    return history, level


def simulate_late_arrivals(
    n_keys: int,
    late_fraction: float,
    *,
    max_lateness: int = 5_000,
    capacity_keys: int = 100,
    policy: str = "postgres",
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Mostly ascending keys: a ``late_fraction`` of them arrive up to ``max_lateness`` positions late.

    Models UUIDv7 or timestamp keys generated on servers whose clocks or queues disagree.
    Returns one row per leaf page of the final leaf level.

    Parameters
    ----------
    n_keys : int
        Keys, 1 to ``MAX_KEYS``.
    late_fraction : float
        Share of keys that arrive late, 0 to 1.
    max_lateness : int
        Largest delay, in positions of the key stream.
    capacity_keys : int
        Keys per leaf page.
    policy : {"half", "innodb", "postgres"}
        Split policy.
    seed : int, numpy.random.Generator or None
        Which keys are late, and by how much.

    Returns
    -------
    pandas.DataFrame
        One row per leaf page, left to right: ``page``, ``keys``, ``fill`` (keys / capacity,
        0-1); ``fill.mean()`` is the index's utilisation.
    """
    n = validate.bounded_int("n_keys", n_keys, MAX_KEYS)
    fraction = validate.probability("late_fraction", late_fraction)
    lateness = validate.positive_int("max_lateness", max_lateness)
    rng = validate.rng_from_seed(seed)
    keys = np.arange(n, dtype=float)
    late = rng.random(n) < fraction
    keys[late] -= rng.integers(1, lateness + 1, int(late.sum()))
    keys += rng.random(n) * 1e-3  # break ties between a late key and an on-time one
    level = LeafLevel(capacity_keys, policy)
    for key in keys.tolist():
        level.insert(key)
    fills = level.fills()
    return pd.DataFrame(
        {"page": np.arange(fills.size), "keys": np.rint(fills * level.capacity).astype(int), "fill": fills}
    )


def summarize_leaves(level: LeafLevel) -> pd.Series:
    """Leaf pages, mean fill, and the 10th/50th/90th percentile of per-page fill.

    Parameters
    ----------
    level : LeafLevel
        A leaf level.

    Returns
    -------
    pandas.Series
        ``leaf_pages``, ``mean_fill`` and ``p10_fill``, ``p50_fill``, ``p90_fill`` (fractions 0-1).
    """
    if not isinstance(level, LeafLevel):
        raise TypeError(f"level must be a LeafLevel, got {type(level).__name__}")
    fills = level.fills()
    return pd.Series(
        {
            "leaf_pages": level.leaf_pages,
            "mean_fill": level.mean_fill(),
            "p10_fill": float(np.quantile(fills, 0.1)),
            "median_fill": float(np.median(fills)),
            "p90_fill": float(np.quantile(fills, 0.9)),
        }
    )


def simulate_churn(
    n_steps: int,
    *,
    window: int = 50_000,
    order: str = "sequential",
    straggler_fraction: float = 0.0,
    capacity_keys: int = 100,
    policy: str = "postgres",
    reclaim: str = "empty",
    n_checkpoints: int = 60,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """A queue-like table: each step inserts one key and deletes the oldest live key.

    The first ``window`` steps only insert. After that every step deletes the oldest
    key -- except that a ``straggler_fraction`` of keys are never deleted (a job stuck
    in "processing", a soft-deleted row someone forgot): they pin their pages.

    Parameters
    ----------
    n_steps : int
        Operations, 1 to ``MAX_KEYS``.
    window : int
        Live keys in steady state (deletes start after this many inserts).
    order : {"sequential", "random"}
        Key order of the inserts.
    straggler_fraction : float
        Share of keys never deleted, 0 to 1.
    capacity_keys : int
        Keys per leaf page.
    policy : {"half", "innodb", "postgres"}
        Split policy.
    reclaim : {"empty", "merge"}
        Free only empty pages (PostgreSQL) or also merge sparse neighbours (InnoDB).
    n_checkpoints : int
        Rows in the returned history.
    seed : int, numpy.random.Generator or None
        Randomness of the key order and of the stragglers.

    Returns
    -------
    pandas.DataFrame
        One row per checkpoint: ``step``, ``live_rows``, ``leaf_pages``, ``leaf_density``
        (live keys / (leaf pages x capacity), the number ``pgstatindex`` calls
        avg_leaf_density), ``pages_per_1000_rows``.
    """
    steps = validate.bounded_int("n_steps", n_steps, MAX_KEYS)
    w = validate.positive_int("window", window)
    p_stuck = validate.probability("straggler_fraction", straggler_fraction)
    checkpoints = validate.bounded_int("n_checkpoints", n_checkpoints, MAX_CHECKPOINTS)
    rng = validate.rng_from_seed(seed)
    keys = _keys(order, steps, rng)
    stuck = rng.random(steps) < p_stuck
    level = LeafLevel(capacity_keys, policy, reclaim=reclaim)
    marks = set(np.unique(np.linspace(steps / checkpoints, steps, checkpoints).astype(int)).tolist())
    rows = []
    key_list = keys.tolist()
    for step in range(steps):
        level.insert(key_list[step])
        old = step - w
        if old >= 0 and not stuck[old]:
            level.delete(key_list[old])
        if step + 1 in marks:
            rows.append(
                {
                    "step": step + 1,
                    "live_rows": level.n_keys,
                    "leaf_pages": level.leaf_pages,
                    "leaf_density": level.mean_fill(),
                    "pages_per_1000_rows": 1000 * level.leaf_pages / max(level.n_keys, 1),
                }
            )
    frame = pd.DataFrame(rows)
    frame.insert(0, "order", order)
    frame.insert(1, "straggler_fraction", p_stuck)
    return frame


def sweep_stragglers(
    fractions: Sequence[float],
    n_steps: int,
    *,
    window: int = 50_000,
    capacity_keys: int = 100,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Final index size of a sequential-key queue for each straggler fraction, simulated and in theory.

    Returns one row per fraction: ``straggler_fraction``, ``leaf_pages``, ``theory_leaf_pages``,
    ``live_rows``, ``leaf_density``.

    Parameters
    ----------
    fractions : sequence of float
        Straggler fractions, each 0 to 1.
    n_steps : int
        Operations per run.
    window : int
        Live keys in steady state.
    capacity_keys : int
        Keys per leaf page.
    seed : int, numpy.random.Generator or None
        Source of randomness.

    Returns
    -------
    pandas.DataFrame
        One row per fraction: ``straggler_fraction``, ``leaf_pages`` (simulated, at the end),
        ``theory_leaf_pages`` (:func:`theory_churn_leaf_pages`).
    """
    fractions = validate.sequence_of_floats("fractions", fractions, 0.0, 1.0, max_length=MAX_SWEEP_POINTS)
    rng = validate.rng_from_seed(seed)
    rows = []
    for fraction in fractions:
        frame = simulate_churn(
            n_steps,
            window=window,
            straggler_fraction=fraction,
            capacity_keys=capacity_keys,
            n_checkpoints=1,
            seed=rng,
        )
        last = frame.iloc[-1]
        rows.append(
            {
                "straggler_fraction": float(fraction),
                "leaf_pages": int(last["leaf_pages"]),
                "theory_leaf_pages": theory_churn_leaf_pages(n_steps, window, fraction, capacity_keys),
                "live_rows": int(last["live_rows"]),
                "leaf_density": float(last["leaf_density"]),
            }
        )
    return pd.DataFrame(rows)


# =========================================================================== plots


def _frames(name: str, frames: object, columns: Sequence[str]) -> list[pd.DataFrame]:
    """A non-empty sequence of non-empty frames, each with ``columns``; errors name ``name[i]``."""
    if isinstance(frames, (str, bytes, pd.DataFrame)) or not isinstance(frames, Sequence) or not frames:
        raise TypeError(f"{name} must be a non-empty sequence of DataFrames, got {type(frames).__name__}")
    for i, frame in enumerate(frames):
        validate.frame_columns(f"{name}[{i}]", frame, columns)
        if frame.empty:
            raise ValueError(f"{name}[{i}] has no rows")
    return list(frames)


def plot_fill_histogram(levels: dict[str, LeafLevel], ax: Axes | None = None) -> Axes:
    """Histogram of per-leaf fill for each named leaf level.

    Parameters
    ----------
    levels : dict of str to LeafLevel
        Label to leaf level.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure if omitted.

    Returns
    -------
    matplotlib.axes.Axes
    """
    if not isinstance(levels, dict) or not levels:
        raise TypeError(f"levels must be a non-empty dict of name -> LeafLevel, got {type(levels).__name__}")
    for key, level in levels.items():
        validate.instance(f"levels[{key!r}]", level, LeafLevel)
    ax = axes_or_new(ax)
    bins = np.linspace(0, 1, 41)
    for name, level in levels.items():
        ax.hist(level.fills(), bins=bins, histtype="step", linewidth=1.8, density=True, label=name)
    ax.axvline(math.log(2), color="0.4", linestyle=":", label="ln 2")
    return label(ax, "leaf page fill (fraction of the page)", "density", legend=True)


def plot_fill_history(histories: Sequence[pd.DataFrame], ax: Axes | None = None) -> Axes:
    """Mean leaf fill against keys inserted, one line per (order, policy), with ln 2 marked.

    Parameters
    ----------
    histories : sequence of pandas.DataFrame
        Histories from :func:`grow_leaf_level` (``keys``, ``mean_fill``, ``order``, ``policy``).
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure if omitted.

    Returns
    -------
    matplotlib.axes.Axes
    """
    histories = _frames("histories", histories, ["order", "policy", "inserted", "mean_fill"])
    ax = axes_or_new(ax)
    for history in histories:
        name = f"{history['order'].iloc[0]}, {history['policy'].iloc[0]}"
        style = "-" if history["order"].iloc[0] == "random" else "--"
        ax.plot(history["inserted"], history["mean_fill"], style, label=name)
    ax.axhline(math.log(2), color="0.4", linestyle=":", lw=1, label="ln 2")
    ax.set_xscale("log")
    ax.set_ylim(0.4, 1.12)  # headroom for the legend above the lines
    ax.legend(loc="upper center", ncol=3, fontsize="small")
    return label(ax, "keys inserted", "mean leaf fill (fraction of a page)")


def plot_buffer_pool(histories: Sequence[pd.DataFrame], buffer_pages: int, ax: Axes | None = None) -> Axes:
    """Buffer-pool hit ratio against index size (leaf pages), measured and min(1, B/N).

    Parameters
    ----------
    histories : sequence of pandas.DataFrame
        Histories from :func:`grow_leaf_level` (``leaf_pages``, ``hit_ratio``, ``order``).
    buffer_pages : int
        The pool size the runs used (a dotted line where the index outgrows it).
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure if omitted.

    Returns
    -------
    matplotlib.axes.Axes
    """
    histories = _frames("histories", histories, ["order", "leaf_pages", "hit_ratio"])
    buffer_pages = validate.positive_int("buffer_pages", buffer_pages)
    ax = axes_or_new(ax)
    for history in histories:
        name = f"{history['order'].iloc[0]} keys"
        (line,) = ax.plot(history["leaf_pages"], history["hit_ratio"], "o-", ms=3, label=f"{name}: simulated")
    biggest = max(float(h["leaf_pages"].max()) for h in histories)
    pages = np.linspace(1, biggest, 200)
    ax.plot(
        pages, theory_lru_hit_ratio(buffer_pages, pages), "k--", lw=1, label="uniform access: min(1, B/N)"
    )
    ax.axvline(buffer_pages, color="0.5", linestyle=":", lw=1)
    ax.set_ylim(0, 1.05)
    return label(ax, "index size (leaf pages)", "inserts finding their page cached", legend=True)


def plot_churn(frames: Sequence[pd.DataFrame], ax: Axes | None = None) -> Axes:
    """Leaf pages and live rows against steps, one line per churn scenario.

    Parameters
    ----------
    frames : sequence of pandas.DataFrame
        Outputs of :func:`simulate_churn` (``step``, ``leaf_pages``, ``order``, ``straggler_fraction``).
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure if omitted.

    Returns
    -------
    matplotlib.axes.Axes
    """
    frames = _frames("frames", frames, ["order", "straggler_fraction", "step", "leaf_pages"])
    ax = axes_or_new(ax)
    for frame in frames:
        name = f"{frame['order'].iloc[0]} keys, {100 * frame['straggler_fraction'].iloc[0]:g}% never deleted"
        ax.plot(frame["step"], frame["leaf_pages"], label=name)
    return label(ax, "operations (one insert, one delete of the oldest)", "leaf pages", legend=True)


# =========================================================================== real SQLite experiments


def _sqlite_keys(kind: str, n: int, rng: np.random.Generator) -> list:
    from syslab import ids  # local import: ids imports nothing from here, but keep modules independent

    if kind == "sequential":
        return list(range(1, n + 1))
    if kind == "random":
        # the same keys 1..n in random order: every key has the same varint width as in the
        # sequential run, so a difference in pages is the split algorithm, not wider cells
        return (rng.permutation(n) + 1).tolist()
    if kind == "uuid4":
        return [row.tobytes() for row in ids.uuid4_array(n, seed=rng)]
    if kind == "uuid7":
        return [row.tobytes() for row in ids.uuid7_array(n, ids_per_ms=50, seed=rng)]
    raise ValueError(f"key kind must be sequential, random, uuid4 or uuid7; got {kind!r}")


def run_sqlite_inserts(
    n_rows: int = 100_000,
    *,
    key_kinds: Sequence[str] = ("sequential", "random"),
    table: str = "rowid",
    payload_bytes: int = 100,
    batch_rows: int = 10_000,
    seed: int | np.random.Generator | None = 0,
) -> Run:
    """Insert ``n_rows`` into a fresh SQLite table per key kind; measure pages, fill and time.

    Parameters
    ----------
    key_kinds : sequence of {"sequential", "random", "uuid4", "uuid7"}
        How keys are generated. Integer kinds suit ``table="rowid"``; UUID kinds are stored
        as 16-byte BLOBs and suit ``table="without_rowid"``.
    table : {"rowid", "without_rowid"}
        ``CREATE TABLE t(k INTEGER PRIMARY KEY, v)`` (the key *is* the rowid) or
        ``CREATE TABLE t(k BLOB PRIMARY KEY, v) WITHOUT ROWID`` (a clustered index on k).

    Returns
    -------
    syslab.experiment.Run
        ``frame``: one row per key kind: ``key_kind``, ``table``, ``rows``, ``leaf_pages``,
        ``interior_pages``, ``leaf_fill`` (from dbstat), ``file_bytes``, ``insert_s``,
        ``sqlite`` (the library version).
    """
    n = validate.bounded_int("n_rows", n_rows, MAX_SQLITE_ROWS)
    table = validate.choice("table", table, ("rowid", "without_rowid"))
    payload = validate.bounded_int("payload_bytes", payload_bytes, MAX_PAYLOAD_BYTES)
    batch = validate.bounded_int("batch_rows", batch_rows, MAX_SQLITE_ROWS)
    rng = validate.rng_from_seed(seed)
    kinds = [
        validate.choice("key_kinds", kind, ("sequential", "random", "uuid4", "uuid7"))
        for kind in _kinds_list(key_kinds)
    ]
    rows = []
    for kind in kinds:
        keys = _sqlite_keys(kind, n, rng)
        values = rng.bytes(payload * n)
        with temporary_database("ids.db") as (conn, path):
            if table == "rowid":
                conn.execute("CREATE TABLE t(k INTEGER PRIMARY KEY, v BLOB)")
            else:
                conn.execute("CREATE TABLE t(k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID")
            started = time.perf_counter()
            for start in range(0, n, batch):
                chunk = [
                    (keys[i], values[i * payload : (i + 1) * payload])
                    for i in range(start, min(n, start + batch))
                ]
                conn.executemany("INSERT INTO t VALUES (?, ?)", chunk)
                conn.commit()
            elapsed = time.perf_counter() - started
            stats = page_stats(conn, "t").iloc[0]
            rows.append(
                {
                    "key_kind": kind,
                    "table": table,
                    "rows": n,
                    "leaf_pages": int(stats["leaf_pages"]),
                    "interior_pages": int(stats["interior_pages"]),
                    "leaf_fill": float(stats["leaf_fill"]),
                    "file_bytes": os.path.getsize(path),
                    "insert_s": elapsed,
                    "sqlite": sqlite3.sqlite_version,
                }
            )
    return Run.create(pd.DataFrame(rows), {"rows": n, "table": table}, sqlite=sqlite3.sqlite_version)


def run_sqlite_bloat(
    n_rows: int = 200_000, *, delete_fraction: float = 0.9, seed: int | np.random.Generator | None = 0
) -> Run:
    """Insert random keys into an indexed table, delete most rows, then REINDEX and VACUUM.

    Parameters
    ----------
    n_rows : int
        Rows inserted, 1 to ``MAX_SQLITE_ROWS``.
    delete_fraction : float
        Share of rows deleted, 0 to 1.
    seed : int, numpy.random.Generator or None
        Randomness of the keys and of which rows are deleted.

    Returns
    -------
    syslab.experiment.Run
        ``frame``, indexed by ``stage`` ("after inserts", "after delete", "after REINDEX",
        "after VACUUM"): ``index_leaf_pages``, ``index_leaf_fill``, ``table_leaf_pages``,
        ``freelist_pages``, ``file_bytes``, ``rows``. ``summary``: ``rows``.
    """
    n = validate.bounded_int("n_rows", n_rows, MAX_SQLITE_ROWS)
    fraction = validate.float_in_range("delete_fraction", delete_fraction, 0.0, 1.0, high_inclusive=False)
    rng = validate.rng_from_seed(seed)
    keys = rng.integers(0, 2**62, size=n, dtype=np.int64).tolist()
    stages = []
    with temporary_database("bloat.db") as (conn, path):
        conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, v BLOB)")
        conn.execute("CREATE INDEX t_k ON t(k)")
        conn.executemany("INSERT INTO t(k, v) VALUES (?, zeroblob(20))", ((k,) for k in keys))
        conn.commit()

        def snapshot(stage: str) -> None:
            stats = page_stats(conn)
            stages.append(
                {
                    "stage": stage,
                    "rows": conn.execute("SELECT count(*) FROM t").fetchone()[0],
                    "index_leaf_pages": int(stats.loc["t_k", "leaf_pages"]),
                    "index_leaf_fill": float(stats.loc["t_k", "leaf_fill"]),
                    "table_leaf_pages": int(stats.loc["t", "leaf_pages"]),
                    "freelist_pages": conn.execute("PRAGMA freelist_count").fetchone()[0],
                    "file_bytes": os.path.getsize(path),
                }
            )

        snapshot("after inserts")
        doomed = rng.random(n) < fraction
        conn.executemany("DELETE FROM t WHERE id = ?", ((i + 1,) for i in np.flatnonzero(doomed).tolist()))
        conn.commit()
        snapshot("after delete")
        conn.execute("REINDEX t_k")
        conn.commit()
        snapshot("after REINDEX")
        conn.execute("VACUUM")
        snapshot("after VACUUM")
    return Run.create(pd.DataFrame(stages).set_index("stage"), {"rows": n}, sqlite=sqlite3.sqlite_version)


def run_online_index_build(
    n_rows: int = 200_000,
    *,
    writer_interval_s: float = 0.002,
    timeout_s: float = 30.0,
    seed: int | np.random.Generator | None = 0,
) -> Run:
    """Build a replacement index while another connection keeps inserting; measure the writer's stall.

    A writer thread (its own connection, WAL journal mode, ``busy_timeout`` 20 s) inserts one
    row every ``writer_interval_s`` and records each insert's latency. The main connection runs
    ``CREATE INDEX`` (the replacement), then swaps it for the old index by dropping the old one
    in one short transaction. SQLite builds the index inside a write transaction, so the writer
    waits for the whole build: the longest insert latency is about the build time.

    Parameters
    ----------
    n_rows : int
        Rows in the table, 1 to ``MAX_SQLITE_ROWS``.
    writer_interval_s : float
        Seconds between the writer's inserts.
    timeout_s : float
        Budget for the whole experiment in seconds.
    seed : int, numpy.random.Generator or None
        Randomness of the indexed values.

    Returns
    -------
    syslab.experiment.Run
        ``frame``: one row per insert: ``start_s`` (perf_counter time), ``insert_s``.
        ``summary``: ``build_s`` (CREATE INDEX wall time), ``max_insert_ms`` and ``p50_insert_ms``
        during the whole run, ``writes``, ``writes_during_build``, ``rows_lost`` (inserts
        acknowledged but missing: must be 0), ``index_ok`` (the query plan uses the new index),
        ``sqlite``.
    """
    n = validate.bounded_int("n_rows", n_rows, MAX_SQLITE_ROWS)
    interval = validate.float_in_range("writer_interval_s", writer_interval_s, 0.0, 10.0, low_inclusive=False)
    timeout_s = validate.float_in_range(
        "timeout_s", timeout_s, 0.0, MAX_ENGINE_TIMEOUT_S, low_inclusive=False
    )
    rng = validate.rng_from_seed(seed)
    keys = rng.integers(0, 2**62, size=n, dtype=np.int64).tolist()
    latencies: list[tuple[float, float]] = []  # (start time, latency s)
    acked: list[int] = []
    errors: list[BaseException] = []
    stop = threading.Event()
    with temporary_database("online.db", timeout=20) as (conn, path):
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, v BLOB)")
        conn.execute("CREATE INDEX t_k_old ON t(k)")
        conn.executemany("INSERT INTO t(k, v) VALUES (?, zeroblob(40))", ((k,) for k in keys))
        conn.commit()

        def writer() -> None:
            wconn = sqlite3.connect(path, timeout=20)
            try:
                deadline = time.monotonic() + timeout_s
                while not stop.is_set() and time.monotonic() < deadline:
                    t0 = time.perf_counter()
                    cur = wconn.execute(
                        "INSERT INTO t(k, v) VALUES (?, zeroblob(40))", (int(rng.integers(0, 2**62)),)
                    )
                    wconn.commit()
                    latencies.append((t0, time.perf_counter() - t0))
                    acked.append(cur.lastrowid)
                    time.sleep(interval)
            except BaseException as error:  # reported to the caller, never swallowed
                errors.append(error)
            finally:
                wconn.close()

        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        try:
            time.sleep(0.2)  # let the writer reach a steady pace
            started = time.perf_counter()
            conn.execute("CREATE INDEX t_k_new ON t(k)")
            conn.commit()
            build_s = time.perf_counter() - started
            finished = time.perf_counter()
            conn.execute("DROP INDEX t_k_old")  # the swap: one short write transaction
            conn.commit()
            time.sleep(0.2)
        finally:
            stop.set()
            thread.join(timeout=25)
        if errors:
            raise RuntimeError(f"the writer failed: {errors[0]!r}") from errors[0]
        present = {row[0] for row in conn.execute("SELECT id FROM t WHERE id >= ?", (min(acked, default=0),))}
        plan = [row[-1] for row in conn.execute("EXPLAIN QUERY PLAN SELECT id FROM t WHERE k = 5")]
    lat = np.array([value for _, value in latencies]) * 1000
    during = sum(1 for t0, _ in latencies if started <= t0 <= finished)
    frame = pd.DataFrame(latencies, columns=["start_s", "insert_s"])
    return Run.create(
        frame,
        {
            "rows": n,
            "build_s": build_s,
            "max_insert_ms": float(lat.max()) if lat.size else float("nan"),
            "p50_insert_ms": float(np.median(lat)) if lat.size else float("nan"),
            "writes": len(acked),
            "writes_during_build": during,
            "rows_lost": sum(1 for i in acked if i not in present),
            "index_ok": any("t_k_new" in line for line in plan),
            "sqlite": sqlite3.sqlite_version,
        },
    )


# =========================================================================== real engines

PG_KEY_KINDS = ("bigint", "uuid4", "uuid7")
INNODB_KEY_KINDS = ("auto_increment", "uuid_random", "uuid_ordered")
MAX_ENGINE_ROWS = 5_000_000  # rows per table: ~10 s per million on a 2-core machine
MAX_ENGINE_TIMEOUT_S = 600.0
MAX_QUEUE_BATCHES = 1_000


class _Deadline:
    """One time budget for a whole experiment, set-up included."""

    def __init__(self, timeout_s: float, what: str) -> None:
        self.end = time.monotonic() + timeout_s
        self.timeout_s = timeout_s
        self.what = what

    def left_s(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"{self.what} did not finish within timeout_s={self.timeout_s:g} s")
        return left


def _engine_arg(engine: object, product: str) -> object:
    if not callable(getattr(engine, "database", None)) or getattr(engine, "name", None) != product:
        raise TypeError(
            f"engine must be a syslab.engines.Engine for {product!r} (engines.find({product!r})), got {engine!r}"
        )
    return engine


def _pg_copy_payload(keys: np.ndarray) -> bytes:
    """PostgreSQL binary COPY data for one column of fixed-width big-endian values."""
    n, width = keys.shape
    records = np.zeros(n, dtype=[("n_fields", ">i2"), ("length", ">i4"), ("value", f"V{width}")])
    records["n_fields"] = 1
    records["length"] = width
    records["value"] = np.ascontiguousarray(keys).view(f"V{width}").ravel()
    return b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8 + records.tobytes() + b"\xff\xff"


def _pg_keys(kind: str, n: int, offset: int, rng: np.random.Generator) -> tuple[str, np.ndarray]:
    from syslab import ids  # ids does not import btree

    if kind == "bigint":
        values = np.arange(offset + 1, offset + n + 1, dtype=">i8")
        return "bigint", values.view(np.uint8).reshape(n, 8)
    if kind == "uuid4":
        return "uuid", ids.uuid4_array(n, seed=rng)
    return "uuid", ids.uuid7_array(n, start_ms=1_735_689_600_000 + offset, seed=rng)


def measure_postgres_keys(
    engine: object,
    n_rows: int = 1_000_000,
    *,
    key_kinds: Sequence[str] = PG_KEY_KINDS,
    n_wal_rows: int = 50_000,
    timeout_s: float = 120.0,
    seed: int | np.random.Generator | None = 0,
) -> Run:
    """Load ``n_rows`` keys of each kind into a PostgreSQL primary key; size, density and WAL.

    Each kind gets a table ``CREATE TABLE t (id <type> PRIMARY KEY)`` in a fresh database; the keys
    are made here (seeded) and sent with binary ``COPY``: ``bigint`` ascending 1..n (what an
    identity column gives), ``uuid4`` random, ``uuid7`` ascending (:func:`syslab.ids.uuid7_array`).
    Then ``pgstatindex`` (extension pgstattuple) reads the index. Finally, after a ``CHECKPOINT``,
    ``n_wal_rows`` more keys of the same kind are inserted and the WAL they wrote is measured from
    ``pg_current_wal_lsn()`` and ``pg_stat_wal`` (full-page images): the steady-state cost of an
    insert into a large index, where random keys touch a new page after every checkpoint.

    Parameters
    ----------
    engine : syslab.engines.Engine
        A PostgreSQL engine (``engines.find("postgres")``), version 14 or later.
    n_rows : int
        Keys per table, 1 to ``MAX_ENGINE_ROWS``.
    key_kinds : sequence of {"bigint", "uuid4", "uuid7"}
        Which key kinds, in order.
    n_wal_rows : int
        Keys in the WAL measurement after the load, 1 to ``MAX_ENGINE_ROWS`` (capped at ``n_rows``).
    timeout_s : float
        Budget for the whole experiment (database set-up included), at most ``MAX_ENGINE_TIMEOUT_S``;
        enforced with ``statement_timeout``.
    seed : int, numpy.random.Generator or None
        Randomness of the UUIDs.

    Returns
    -------
    syslab.experiment.Run
        ``frame``: one row per key kind: ``key_kind``, ``key_type``, ``rows``, ``load_s`` (COPY
        time), ``index_bytes`` (``pg_relation_size``), ``leaf_pages``, ``avg_leaf_density_pct``
        (pgstatindex, 0-100), ``wal_bytes_per_row`` and ``fpi_per_1000_rows`` (the extra
        ``n_wal_rows`` inserts after a checkpoint). ``summary``: ``rows``, ``n_wal_rows``.
    """
    engine = _engine_arg(engine, "postgres")
    n = validate.bounded_int("n_rows", n_rows, MAX_ENGINE_ROWS)
    kinds = [validate.choice("key_kinds", kind, PG_KEY_KINDS) for kind in _kinds_list(key_kinds)]
    n_wal = min(n, validate.bounded_int("n_wal_rows", n_wal_rows, MAX_ENGINE_ROWS))
    budget = validate.float_in_range("timeout_s", timeout_s, 0.0, MAX_ENGINE_TIMEOUT_S)
    if budget <= 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s!r}")
    rng = validate.rng_from_seed(seed)
    deadline = _Deadline(budget, "measure_postgres_keys")
    rows = []
    with engine.database() as db, db.connect(autocommit=True) as conn:

        def run(sql: str, params: tuple = ()):
            conn.execute(f"SET statement_timeout = {max(1, int(deadline.left_s() * 1000))}")
            return conn.execute(sql, params)

        run("CREATE EXTENSION IF NOT EXISTS pgstattuple")
        for kind in kinds:
            key_type, keys = _pg_keys(kind, n, 0, rng)
            table = f"keys_{kind}"
            run(f"CREATE TABLE {table} (id {key_type} PRIMARY KEY)")
            payload = _pg_copy_payload(keys)
            del keys
            run("SELECT 1")  # sets statement_timeout for the COPY
            started = time.perf_counter()
            with conn.cursor().copy(f"COPY {table} (id) FROM STDIN (FORMAT binary)") as copy:
                copy.write(payload)
            load_s = time.perf_counter() - started
            del payload
            size, leaf_pages, density = run(
                f"SELECT pg_relation_size('{table}_pkey'), s.leaf_pages, s.avg_leaf_density "
                f"FROM pgstatindex('{table}_pkey') s"
            ).fetchone()
            _, extra = _pg_keys(kind, n_wal, n, rng)
            extra_payload = _pg_copy_payload(extra)
            run("CHECKPOINT")
            run("SELECT pg_stat_force_next_flush()")
            lsn0, fpi0 = run("SELECT pg_current_wal_lsn(), wal_fpi FROM pg_stat_wal").fetchone()
            with conn.cursor().copy(f"COPY {table} (id) FROM STDIN (FORMAT binary)") as copy:
                copy.write(extra_payload)
            run("SELECT pg_stat_force_next_flush()")
            wal_bytes, fpi1 = run(
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn), wal_fpi FROM pg_stat_wal", (lsn0,)
            ).fetchone()
            rows.append(
                {
                    "key_kind": kind,
                    "key_type": key_type,
                    "rows": n,
                    "load_s": load_s,
                    "index_bytes": int(size),
                    "leaf_pages": int(leaf_pages),
                    "avg_leaf_density_pct": float(density),
                    "wal_bytes_per_row": float(wal_bytes) / n_wal,
                    "fpi_per_1000_rows": 1000.0 * float(fpi1 - fpi0) / n_wal,
                }
            )
            run(f"DROP TABLE {table}")
    return Run.create(pd.DataFrame(rows), {"rows": n, "n_wal_rows": n_wal}, engine=engine)


def _kinds_list(key_kinds: object) -> list:
    if isinstance(key_kinds, str) or not isinstance(key_kinds, Sequence):
        raise TypeError(f"key_kinds must be a sequence of key kind names, got {key_kinds!r}")
    if len(key_kinds) == 0:
        raise ValueError("key_kinds must name at least one key kind, got an empty sequence")
    return list(key_kinds)


_INNODB_KEYS = {
    # column definition, insert expression over MariaDB's Sequence engine (seq = 1..n)
    "auto_increment": ("id BIGINT NOT NULL AUTO_INCREMENT", "NULL"),
    "uuid_random": ("id BINARY(16) NOT NULL", "RANDOM_BYTES(16)"),
    # UUIDv7 layout: 48-bit ms (1,000 keys per ms), version 7 + 12-bit sub-ms fraction, 64 random bits
    "uuid_ordered": (
        "id BINARY(16) NOT NULL",
        "UNHEX(CONCAT(LPAD(HEX(1735689600000 + seq DIV 1000), 12, '0'), "
        "LPAD(HEX(28672 | ((seq MOD 1000) * 4096 DIV 1000)), 4, '0'), HEX(RANDOM_BYTES(8))))",
    ),
}


def measure_innodb_keys(
    engine: object,
    n_rows: int = 200_000,
    *,
    key_kinds: Sequence[str] = INNODB_KEY_KINDS,
    timeout_s: float = 120.0,
) -> Run:
    """Insert ``n_rows`` rows per primary-key kind into InnoDB; clustered size and page splits.

    Each kind gets ``CREATE TABLE t (id <key> PRIMARY KEY, k INT NOT NULL, pad CHAR(20))``; rows are
    generated server-side (``INSERT ... SELECT`` from the Sequence engine) in one transaction, with
    the ``index_page_splits`` counter of ``information_schema.INNODB_METRICS`` (enabled with
    ``innodb_monitor_enable``) read before and after. A secondary index on ``k`` is then built
    (sorted, so its fill does not depend on the key order: its size shows the primary key each
    entry carries), and ``ANALYZE TABLE`` fills ``mysql.innodb_index_stats``.

    Parameters
    ----------
    engine : syslab.engines.Engine
        A MariaDB engine (``engines.find("mariadb")``), 10.10 or later (``RANDOM_BYTES``).
    n_rows : int
        Rows per table, 1 to ``MAX_ENGINE_ROWS``.
    key_kinds : sequence of {"auto_increment", "uuid_random", "uuid_ordered"}
        BIGINT AUTO_INCREMENT, 16 random bytes, or 16 bytes in UUIDv7 layout (time first).
    timeout_s : float
        Budget for the whole experiment, at most ``MAX_ENGINE_TIMEOUT_S``; enforced with
        ``max_statement_time``.

    Returns
    -------
    syslab.experiment.Run
        ``frame``: one row per key kind: ``key_kind``, ``rows``, ``load_s``, ``page_splits``,
        ``pk_leaf_pages``, ``pk_bytes`` (clustered index, pages x ``innodb_page_size``),
        ``secondary_leaf_pages``, ``secondary_bytes``. ``summary``: ``rows``, ``page_size_bytes``.
    """
    engine = _engine_arg(engine, "mariadb")
    n = validate.bounded_int("n_rows", n_rows, MAX_ENGINE_ROWS)
    kinds = [validate.choice("key_kinds", kind, INNODB_KEY_KINDS) for kind in _kinds_list(key_kinds)]
    budget = validate.float_in_range("timeout_s", timeout_s, 0.0, MAX_ENGINE_TIMEOUT_S)
    if budget <= 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s!r}")
    deadline = _Deadline(budget, "measure_innodb_keys")
    rows = []
    with engine.database() as db:
        conn = db.connect()
        try:
            cur = conn.cursor()

            def run(sql: str):
                cur.execute(f"SET SESSION max_statement_time = {max(0.001, deadline.left_s()):.3f}")
                cur.execute(sql)
                return cur.fetchall()

            run("SET GLOBAL innodb_monitor_enable = 'index_page_splits'")
            page_size = int(run("SELECT @@innodb_page_size")[0][0])
            splits_sql = (
                "SELECT `COUNT` FROM information_schema.INNODB_METRICS WHERE NAME = 'index_page_splits'"
            )
            for kind in kinds:
                column, expression = _INNODB_KEYS[kind]
                table = f"keys_{kind}"
                run(
                    f"CREATE TABLE {table} ({column}, k INT NOT NULL, pad CHAR(20) NOT NULL DEFAULT 'x', PRIMARY KEY (id)) ENGINE=InnoDB"
                )
                splits0 = int(run(splits_sql)[0][0])
                started = time.perf_counter()
                run(f"INSERT INTO {table} (id, k) SELECT {expression}, seq MOD 1000 FROM seq_1_to_{n}")
                conn.commit()
                load_s = time.perf_counter() - started
                splits = int(run(splits_sql)[0][0]) - splits0
                run(f"ALTER TABLE {table} ADD INDEX k_idx (k)")
                run(f"ANALYZE TABLE {table}")
                stats = {
                    (index, stat): int(value)
                    for index, stat, value in run(
                        "SELECT index_name, stat_name, stat_value FROM mysql.innodb_index_stats "
                        f"WHERE database_name = DATABASE() AND table_name = '{table}' "
                        "AND stat_name IN ('size', 'n_leaf_pages')"
                    )
                }
                rows.append(
                    {
                        "key_kind": kind,
                        "rows": n,
                        "load_s": load_s,
                        "page_splits": splits,
                        "pk_leaf_pages": stats[("PRIMARY", "n_leaf_pages")],
                        "pk_bytes": stats[("PRIMARY", "size")] * page_size,
                        "secondary_leaf_pages": stats[("k_idx", "n_leaf_pages")],
                        "secondary_bytes": stats[("k_idx", "size")] * page_size,
                    }
                )
                run(f"DROP TABLE {table}")
        finally:
            conn.close()
    return Run.create(pd.DataFrame(rows), {"rows": n, "page_size_bytes": page_size}, engine=engine)


def run_postgres_queue(
    engine: object,
    *,
    n_batches: int = 24,
    batch_rows: int = 5_000,
    window_rows: int = 10_000,
    straggler_share: float = 0.0,
    hold_xmin: bool = False,
    reindex: bool = True,
    timeout_s: float = 120.0,
    seed: int | np.random.Generator | None = 0,
) -> Run:
    """A PostgreSQL queue table under churn: index size and density after every batch.

    ``jobs (id bigint identity PRIMARY KEY, stuck boolean, payload int)`` starts with
    ``window_rows`` rows. Each batch inserts ``batch_rows`` new jobs (a ``straggler_share`` of them
    marked ``stuck``: never deleted), deletes the ``batch_rows`` oldest jobs that are not stuck,
    times the query a worker uses to find the oldest job, runs a plain ``VACUUM`` (autovacuum stays
    on; this is vacuum keeping up perfectly), and reads ``pgstatindex('jobs_pkey')``. With
    ``hold_xmin`` a second session opens a ``REPEATABLE READ`` transaction before the first batch
    and keeps its snapshot until the churn ends: VACUUM may not remove what that snapshot could
    still see. Then the holder commits, VACUUM runs, and (``reindex``) ``REINDEX INDEX
    CONCURRENTLY jobs_pkey`` rebuilds the index; both are measured again.

    Parameters
    ----------
    engine : syslab.engines.Engine
        A PostgreSQL engine (``engines.find("postgres")``).
    n_batches : int
        Batches of churn, 1 to ``MAX_QUEUE_BATCHES``.
    batch_rows : int
        Jobs inserted and deleted per batch, 1 to 100,000.
    window_rows : int
        Live jobs in the queue, 1 to ``MAX_ENGINE_ROWS``.
    straggler_share : float
        Share of new jobs (0-1) that are never deleted.
    hold_xmin : bool
        Keep one transaction's snapshot open during the churn.
    reindex : bool
        Finish with ``REINDEX INDEX CONCURRENTLY``.
    timeout_s : float
        Budget for the whole experiment, at most ``MAX_ENGINE_TIMEOUT_S`` (``statement_timeout``).
    seed : int, numpy.random.Generator or None
        Which jobs become stragglers (``setseed`` on the server).

    Returns
    -------
    syslab.experiment.Run
        ``frame``: one row per measurement: ``stage`` ("start", "churn", "holder ended + VACUUM",
        "REINDEX CONCURRENTLY"), ``batch``, ``operations`` (jobs inserted so far), ``live_rows``,
        ``index_bytes``, ``leaf_pages``, ``avg_leaf_density_pct``, ``deleted_pages`` (pgstatindex),
        ``oldest_job_ms`` (``SELECT id ... ORDER BY id LIMIT 1`` time). ``summary``: the
        arguments, ``autovacuum`` (server setting) and ``stragglers`` (stuck jobs at the end).
    """
    engine = _engine_arg(engine, "postgres")
    batches = validate.bounded_int("n_batches", n_batches, MAX_QUEUE_BATCHES)
    batch = validate.bounded_int("batch_rows", batch_rows, 100_000)
    window = validate.bounded_int("window_rows", window_rows, MAX_ENGINE_ROWS)
    share = validate.probability("straggler_share", straggler_share)
    for name, flag in (("hold_xmin", hold_xmin), ("reindex", reindex)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be True or False, got {flag!r}")
    budget = validate.float_in_range("timeout_s", timeout_s, 0.0, MAX_ENGINE_TIMEOUT_S)
    if budget <= 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s!r}")
    rng = validate.rng_from_seed(seed)
    server_seed = float(rng.uniform(-1, 1))
    deadline = _Deadline(budget, "run_postgres_queue")
    rows: list[dict] = []
    with engine.database() as db, db.connect(autocommit=True) as conn, db.connect() as holder:

        def run(sql: str, params: tuple = ()):
            conn.execute(f"SET statement_timeout = {max(1, int(deadline.left_s() * 1000))}")
            return conn.execute(sql, params)

        def measure(stage: str, batch_no: int) -> None:
            started = time.perf_counter()
            run("SELECT id FROM jobs WHERE NOT stuck ORDER BY id LIMIT 1").fetchone()
            oldest_ms = 1000 * (time.perf_counter() - started)
            size, leaf, density, deleted = run(
                "SELECT pg_relation_size('jobs_pkey'), leaf_pages, avg_leaf_density, deleted_pages "
                "FROM pgstatindex('jobs_pkey')"
            ).fetchone()
            rows.append(
                {
                    "stage": stage,
                    "batch": batch_no,
                    "operations": batch_no * batch,
                    "live_rows": int(run("SELECT count(*) FROM jobs").fetchone()[0]),
                    "index_bytes": int(size),
                    "leaf_pages": int(leaf),
                    "avg_leaf_density_pct": float(density),
                    "deleted_pages": int(deleted),
                    "oldest_job_ms": oldest_ms,
                }
            )

        run("CREATE EXTENSION IF NOT EXISTS pgstattuple")
        run(
            "CREATE TABLE jobs (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
            "stuck boolean NOT NULL DEFAULT false, payload int NOT NULL)"
        )
        run("SELECT setseed(%s)", (server_seed,))
        run("INSERT INTO jobs (payload) SELECT g FROM generate_series(1, %s) g", (window,))
        run("VACUUM ANALYZE jobs")
        measure("start", 0)
        try:
            if hold_xmin:
                holder.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                holder.execute("SELECT count(*) FROM jobs").fetchone()
            for batch_no in range(1, batches + 1):
                run(
                    "INSERT INTO jobs (stuck, payload) SELECT random() < %s, g FROM generate_series(1, %s) g",
                    (share, batch),
                )
                run(
                    "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE NOT stuck ORDER BY id LIMIT %s)",
                    (batch,),
                )
                run("VACUUM jobs")
                measure("churn", batch_no)
        finally:
            holder.rollback()
        run("VACUUM jobs")
        measure("holder ended + VACUUM", batches)
        if reindex:
            run("REINDEX INDEX CONCURRENTLY jobs_pkey")
            measure("REINDEX CONCURRENTLY", batches)
        stragglers = int(run("SELECT count(*) FROM jobs WHERE stuck").fetchone()[0])
        autovacuum = str(run("SHOW autovacuum").fetchone()[0])
    summary = {
        "n_batches": batches,
        "batch_rows": batch,
        "window_rows": window,
        "straggler_share": share,
        "hold_xmin": hold_xmin,
        "autovacuum": autovacuum,
        "stragglers": stragglers,
    }
    return Run.create(pd.DataFrame(rows), summary, engine=engine)


def sweep_buffer_pool(
    buffer_pages: Sequence[int],
    n_keys: int = 60_000,
    *,
    capacity_keys: int = 80,
    policy: str = "postgres",
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Final insert hit ratio of random and sequential keys for several buffer-pool sizes.

    Parameters
    ----------
    buffer_pages : sequence of int
        Buffer-pool sizes in leaf pages, each 1 to ``MAX_KEYS``.
    n_keys : int
        Keys per run, 1 to ``MAX_KEYS``.
    capacity_keys : int
        Keys per leaf page.
    policy : {"half", "innodb", "postgres"}
        Split policy.
    seed : int, numpy.random.Generator or None
        Randomness of the key order.

    Returns
    -------
    pandas.DataFrame
        One row per (pool size, order): ``buffer_pages``, ``order``, ``pool_share`` (pool size /
        the index's leaf pages), ``hit_ratio`` (0-1, at the end of the run).
    """
    sizes = [validate.bounded_int("buffer_pages", pages, MAX_KEYS) for pages in buffer_pages]
    if not sizes:
        raise ValueError("buffer_pages must hold at least one pool size")
    rng = validate.rng_from_seed(seed)
    rows = []
    for pages in sizes:
        for order in ("random", "sequential"):
            history, level = grow_leaf_level(
                n_keys,
                order=order,
                capacity_keys=capacity_keys,
                policy=policy,
                buffer_pages=pages,
                n_checkpoints=4,
                seed=rng,
            )
            rows.append(
                {
                    "buffer_pages": pages,
                    "order": order,
                    "pool_share": pages / level.leaf_pages,
                    "hit_ratio": float(history["hit_ratio"].iloc[-1]),
                }
            )
    return pd.DataFrame(rows)


def plot_pool_sweep(sweep: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Insert hit ratio against buffer pool / index size from :func:`sweep_buffer_pool`.

    Parameters
    ----------
    sweep : pandas.DataFrame
        Columns ``order``, ``pool_share``, ``hit_ratio``.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure if omitted.

    Returns
    -------
    matplotlib.axes.Axes
    """
    sweep = validate.frame_columns("sweep", sweep, ["order", "pool_share", "hit_ratio"])
    ax = axes_or_new(ax)
    for order, group in sweep.groupby("order"):
        ax.plot(group["pool_share"], group["hit_ratio"], "o-", label=f"{order} keys")
    top = max(1.0, float(sweep["pool_share"].max()))
    ax.plot([0, 1, top], [0, 1, 1], "k--", lw=1, label="min(1, B/N)")
    return label(ax, "buffer pool size / index size", "inserts finding their page cached", legend=True)


def plot_queue_runs(data: dict[str, pd.DataFrame], ax: Axes | None = None) -> Axes:
    """Index leaf pages against queue operations for several runs of :func:`run_postgres_queue`.

    Parameters
    ----------
    data : dict of str to pandas.DataFrame
        Legend label to a ``run_postgres_queue`` frame (``stage``, ``operations``, ``leaf_pages``);
        the "start" and "churn" rows are drawn, later stages as a marker at the last operation.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure if omitted.

    Returns
    -------
    matplotlib.axes.Axes
    """
    if not isinstance(data, dict) or not data:
        raise TypeError("data must be a non-empty dict of label -> run_postgres_queue frame")
    ax = axes_or_new(ax)
    for number, (name, frame) in enumerate(data.items()):
        frame = validate.frame_columns("data", frame, ["stage", "operations", "leaf_pages"])
        churn = frame[frame["stage"].isin(["start", "churn"])]
        line = ax.plot(churn["operations"], churn["leaf_pages"], label=name, color=f"C{number}")[0]
        rebuilt = frame[frame["stage"] == "REINDEX CONCURRENTLY"]
        if len(rebuilt):
            ax.plot(rebuilt["operations"], rebuilt["leaf_pages"], "v", color=line.get_color(), ms=8)
    ax.plot([], [], "kv", label="after REINDEX CONCURRENTLY")
    return label(ax, "jobs inserted and deleted", "index leaf pages", legend=True)


def summarize_queue_runs(runs: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The table a chapter shows for several :func:`run_postgres_queue` runs.

    Parameters
    ----------
    runs : dict of str to pandas.DataFrame
        Run name to the ``frame`` of :func:`run_postgres_queue` (may be empty).

    Returns
    -------
    pandas.DataFrame
        Per run: its start, the end of the churn and each later stage: ``scenario``, ``stage``
        ("start", "after churn", then the later stages), ``leaf_pages``, ``index_mib``,
        ``avg_leaf_density_pct``, ``oldest_job_ms``.
    """
    if not isinstance(runs, dict):
        raise TypeError(f"runs must be a dict of name -> run_postgres_queue frame, got {type(runs).__name__}")
    columns = ["scenario", "stage", "leaf_pages", "index_mib", "avg_leaf_density_pct", "oldest_job_ms"]
    rows = []
    for name, frame in runs.items():
        frame = validate.frame_columns(
            "runs", frame, ["stage", "leaf_pages", "index_bytes", "avg_leaf_density_pct"]
        )
        churn = frame[frame["stage"] == "churn"]
        picked = [frame.iloc[0]] + ([churn.iloc[-1]] if len(churn) else [])
        picked += [row for _, row in frame[~frame["stage"].isin(["start", "churn"])].iterrows()]
        for row in picked:
            stage = "after churn" if row["stage"] == "churn" else row["stage"]
            rows.append(
                [
                    name,
                    stage,
                    int(row["leaf_pages"]),
                    row["index_bytes"] / 2**20,
                    float(row["avg_leaf_density_pct"]),
                    float(row["oldest_job_ms"]),
                ]
            )
    return pd.DataFrame(rows, columns=columns)


def summarize_queue_facts(
    runs: dict[str, pd.DataFrame], *, clean: str, stragglers: str, snapshot: str
) -> dict[str, float]:
    """The numbers a page states about a clean, a straggler and an open-snapshot queue run.

    Parameters
    ----------
    runs : dict of str to pandas.DataFrame
        :func:`run_postgres_queue` frames by name; empty when PostgreSQL was not available
        (every value is then NaN).
    clean, stragglers, snapshot : str
        The names of the three runs in ``runs``.

    Returns
    -------
    dict of str to float
        ``clean_pages``, ``clean_growth``, ``straggler_pages``, ``straggler_growth``,
        ``straggler_density``, ``xmin_pages``, ``xmin_growth``, ``xmin_first_ms``,
        ``xmin_last_ms``, ``xmin_after_pages``, ``xmin_deleted``, ``reindex_pages``,
        ``reindex_density`` (growth = leaf pages at the end of the churn / at the start).
    """
    keys = [
        "clean_pages",
        "clean_growth",
        "straggler_pages",
        "straggler_growth",
        "straggler_density",
        "xmin_pages",
        "xmin_growth",
        "xmin_first_ms",
        "xmin_last_ms",
        "xmin_after_pages",
        "xmin_deleted",
        "reindex_pages",
        "reindex_density",
    ]
    if not runs:
        return dict.fromkeys(keys, float("nan"))
    for name in (clean, stragglers, snapshot):
        if name not in runs:
            raise ValueError(f"runs has no run named {name!r}; it has {list(runs)}")

    def stage(name: str, which: str) -> pd.Series:
        frame = runs[name]
        rows = frame[frame["stage"] == which]
        return rows.iloc[-1] if which != "churn-first" else frame[frame["stage"] == "churn"].iloc[0]

    def end(name: str) -> pd.Series:
        return stage(name, "churn")

    def growth(name: str) -> float:
        return float(end(name)["leaf_pages"] / runs[name].iloc[0]["leaf_pages"])

    rebuilt = stage(stragglers, "REINDEX CONCURRENTLY")
    after = stage(snapshot, "holder ended + VACUUM")
    return {
        "clean_pages": int(end(clean)["leaf_pages"]),
        "clean_growth": growth(clean),
        "straggler_pages": int(end(stragglers)["leaf_pages"]),
        "straggler_growth": growth(stragglers),
        "straggler_density": float(end(stragglers)["avg_leaf_density_pct"]),
        "xmin_pages": int(end(snapshot)["leaf_pages"]),
        "xmin_growth": growth(snapshot),
        "xmin_first_ms": float(stage(snapshot, "churn-first")["oldest_job_ms"]),
        "xmin_last_ms": float(end(snapshot)["oldest_job_ms"]),
        "xmin_after_pages": int(after["leaf_pages"]),
        "xmin_deleted": int(after["deleted_pages"]),
        "reindex_pages": int(rebuilt["leaf_pages"]),
        "reindex_density": float(rebuilt["avg_leaf_density_pct"]),
    }
