"""A row-lock manager you can watch: a hot parent row under foreign-key checks.

Every child insert that references a parent row checks the parent under a
lock: InnoDB takes a shared (S) record lock on it, PostgreSQL's RI trigger runs
``SELECT ... FOR KEY SHARE``. Shared locks are compatible with each other, so a
thousand concurrent child inserts under one parent do not wait for each other.
The queue forms when a request that conflicts arrives -- an ``UPDATE`` of the
parent row (X in InnoDB) -- and, because the lock table is FIFO, every shared
request that comes after it lines up behind it.

- **model** -- :class:`RowLock`, a simpy lock with a compatibility matrix and a
  FIFO wait queue, and :func:`simulate_hot_parent`, Poisson child writes and
  parent updates on one row;
- **theory** -- :func:`theory_drain_wait_s` (how long an X waits for the shared
  holders present when it arrives: the expected maximum of their residual hold
  times), :func:`theory_x_utilisation` and :func:`theory_cliff_rate_per_s`
  (the write rate at which the row is closed to readers all the time); with no
  children the parent updates form an M/G/1 queue, checked against
  :func:`syslab.queueing.kingman_queue_delay_s`;
- **summarize / sweep / plot**.

Lock modes and their conflicts follow the MySQL manual (InnoDB S/X) and the
PostgreSQL manual's table of row-level lock conflicts (FOR KEY SHARE,
FOR SHARE, FOR NO KEY UPDATE, FOR UPDATE).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import simpy
from matplotlib.axes import Axes

from syslab import validate
from syslab.experiment import Run
from syslab.plot import axes_or_new, label
from syslab.queueing import draw_gaps_s

__all__ = [
    "CONFLICTS",
    "ENGINE_FIFO",
    "ENGINE_MODES",
    "HotParentConfig",
    "RowLock",
    "plot_latency_vs_rate",
    "simulate_hot_parent",
    "summarize_hot_parent",
    "sweep_write_rates",
    "theory_cliff_rate_per_s",
    "theory_drain_wait_s",
    "theory_x_utilisation",
]

# Pairs of modes that conflict (symmetric). InnoDB: S and X. PostgreSQL row locks
# (manual, "Explicit Locking", table "Conflicting Row-Level Locks"):
# KEY SHARE conflicts only with UPDATE; SHARE with NO KEY UPDATE and UPDATE;
# NO KEY UPDATE with SHARE, NO KEY UPDATE and UPDATE; UPDATE with everything.
_CONFLICT_PAIRS = {
    ("S", "X"),
    ("X", "X"),
    ("KEY SHARE", "UPDATE"),
    ("SHARE", "NO KEY UPDATE"),
    ("SHARE", "UPDATE"),
    ("NO KEY UPDATE", "NO KEY UPDATE"),
    ("NO KEY UPDATE", "UPDATE"),
    ("UPDATE", "UPDATE"),
}
CONFLICTS = _CONFLICT_PAIRS | {(b, a) for a, b in _CONFLICT_PAIRS}
_MODES = ("S", "X", "KEY SHARE", "SHARE", "NO KEY UPDATE", "UPDATE")

# The mode a child's FK check takes and the mode a parent UPDATE takes, per engine.
# InnoDB: any UPDATE of the parent row is X. PostgreSQL: an UPDATE that changes no
# key column takes FOR NO KEY UPDATE; one that changes the key (or a DELETE) takes FOR UPDATE.
ENGINE_MODES = {
    "innodb": {"child": "S", "parent": "X"},
    "postgresql": {"child": "KEY SHARE", "parent": "NO KEY UPDATE"},
    "postgresql-key-update": {"child": "KEY SHARE", "parent": "UPDATE"},
}


# Whether a compatible request waits behind queued ones. InnoDB checks a new record-lock
# request against waiting requests too (lock_rec_other_has_conflicting), so S lines up behind
# a waiting X: strict FIFO. PostgreSQL's heap_lock_tuple only queues on the tuple's heavyweight
# lock when it must sleep, so a non-conflicting FOR KEY SHARE is granted past waiters.
ENGINE_FIFO = {"innodb": True, "postgresql": False, "postgresql-key-update": False}


class RowLock:
    """One row's lock: granted modes and a FIFO queue of waiters.

    A request is granted at once only if nobody is waiting and it conflicts with
    no granted mode; otherwise it joins the queue. On every release the queue is
    granted from the head while the head is compatible with what is granted.
    That is the rule that makes shared requests wait behind a waiting exclusive
    one (InnoDB checks new requests against waiting locks too).

    Parameters
    ----------
    env : simpy.Environment
        The simpy environment the lock lives in.
    fifo : bool
        True: a request waits behind any earlier waiter (InnoDB); False: a compatible request is granted past waiters (PostgreSQL).
    """

    def __init__(self, env: simpy.Environment, *, fifo: bool = True) -> None:
        self.env = validate.instance("env", env, simpy.Environment)
        self.fifo = validate.instance("fifo", fifo, bool)
        self.granted: dict[str, int] = {}
        self.queue: deque[tuple[str, simpy.Event]] = deque()

    def _compatible(self, mode: str) -> bool:
        return all((mode, held) not in CONFLICTS for held, count in self.granted.items() if count)

    def acquire(self, mode: str) -> simpy.Event:
        """An event that fires when ``mode`` is granted."""
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        event = self.env.event()
        if (not self.queue or not self.fifo) and self._compatible(mode):
            self.granted[mode] = self.granted.get(mode, 0) + 1
            event.succeed()
        else:
            self.queue.append((mode, event))
        return event

    def release(self, mode: str) -> None:
        """Give ``mode`` back and grant waiters from the head of the queue."""
        if self.granted.get(mode, 0) < 1:
            raise RuntimeError(f"release of {mode!r}, which is not granted")
        self.granted[mode] -= 1
        while self.queue and self._compatible(self.queue[0][0]):
            waiting_mode, event = self.queue.popleft()
            self.granted[waiting_mode] = self.granted.get(waiting_mode, 0) + 1
            event.succeed()


@dataclass(frozen=True)
class HotParentConfig:
    """One hot parent row: child writes that reference it and updates of the row itself.

    Attributes
    ----------
    write_rate_per_s : float
        Child inserts per second that reference the parent (each checks it under a lock).
    parent_update_share : float
        Parent updates per child write (e.g. 0.01: a counter or ``last_order_at`` on
        the parent updated by one write in a hundred).
    child_hold_s : float
        Mean time a child transaction holds its lock on the parent: from the FK check
        to its commit (the commit's fsync included).
    parent_hold_s : float
        Mean time a parent update holds its lock (to its commit).
    hold_cv : float
        Coefficient of variation of both hold times (1 = exponential).
    engine : {"innodb", "postgresql", "postgresql-key-update"}
        Which lock modes the two kinds of statement take (see :data:`ENGINE_MODES`).
    """

    write_rate_per_s: float = 1_000.0  # child writes per second
    parent_update_share: float = 0.01  # parent updates per child write
    child_hold_s: float = 0.005  # seconds
    parent_hold_s: float = 0.002  # seconds
    hold_cv: float = 1.0
    engine: str = "innodb"

    def __post_init__(self) -> None:
        validate.positive_float("write_rate_per_s", self.write_rate_per_s)
        validate.probability("parent_update_share", self.parent_update_share)
        validate.positive_float("child_hold_s", self.child_hold_s)
        validate.positive_float("parent_hold_s", self.parent_hold_s)
        validate.non_negative_float("hold_cv", self.hold_cv)
        validate.choice("engine", self.engine, tuple(ENGINE_MODES))


def _fifo_grants_fast(arrivals: np.ndarray, holds: np.ndarray, modes: np.ndarray) -> np.ndarray:
    """Grant times under a strict FIFO lock, by an exact recursion.

    With strict FIFO, requests are granted in arrival order, and a request is granted
    when it reaches the head and every earlier request that conflicts with it has
    released: ``g_i = max(a_i, g_{i-1}, max{r_j : j < i, conflict(j, i)})``. Keeping
    the latest release time per mode makes this O(n) -- about 50x faster than simpy.
    """
    names = sorted(set(modes.tolist()))
    index = {name: k for k, name in enumerate(names)}
    blockers = [[index[other] for other in names if (name, other) in CONFLICTS] for name in names]
    latest_release = [0.0] * len(names)
    grants = np.empty(arrivals.size)
    previous_grant = 0.0
    codes = [index[m] for m in modes.tolist()]
    for i in range(arrivals.size):
        code = codes[i]
        grant = arrivals[i] if arrivals[i] > previous_grant else previous_grant
        for k in blockers[code]:
            if latest_release[k] > grant:
                grant = latest_release[k]
        release = grant + holds[i]
        if release > latest_release[code]:
            latest_release[code] = release
        grants[i] = grant
        previous_grant = grant
    return grants


def simulate_hot_parent(
    config: HotParentConfig,
    *,
    n_requests: int = 20_000,
    fifo: bool | None = None,
    engine: str = "fast",
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Simulate lock requests on one parent row, one DataFrame row per request.

    Requests arrive as a Poisson process at ``write_rate_per_s * (1 + parent_update_share)``;
    each is a parent update with probability ``share / (1 + share)``, else a child write.
    A request waits until its mode is granted, holds it for its hold time, and releases it.

    Parameters
    ----------
    config : HotParentConfig
    n_requests : int
        Requests to simulate (both kinds), in [1, 2_000_000]. The run ends when all
        are served, so an overloaded row shows as waits that grow with n.
    fifo : bool, optional
        Strict FIFO (a compatible request still waits behind queued ones) or barging
        (granted at once when compatible with the holders). Default: the engine's
        behaviour, :data:`ENGINE_FIFO`.
    engine : {"fast", "simpy"}
        ``"simpy"`` runs :class:`RowLock` as processes. ``"fast"`` uses an exact O(n)
        recursion where one exists (strict FIFO; or barging when children and parents
        never conflict, as with PostgreSQL's non-key updates) and falls back to simpy
        otherwise. Both give identical results for the same seed.
    seed : int, Generator or None

    Returns
    -------
    pandas.DataFrame
        ``request_id``, ``kind`` ("child"/"parent"), ``mode``, ``arrival_s``,
        ``wait_s``, ``hold_s``, ``granted_s``, ``released_s``.
    """
    if not isinstance(config, HotParentConfig):
        raise TypeError(f"config must be a HotParentConfig, got {type(config).__name__}")
    n = validate.int_in_range("n_requests", n_requests, 1, 2_000_000)
    engine = validate.choice("engine", engine, ("fast", "simpy"))
    fifo = ENGINE_FIFO[config.engine] if fifo is None else fifo
    if not isinstance(fifo, bool):
        raise TypeError("fifo must be a bool or None")
    rng = validate.rng_from_seed(seed)
    share = config.parent_update_share
    total_rate = config.write_rate_per_s * (1.0 + share)
    arrivals = np.cumsum(rng.exponential(1.0 / total_rate, size=n))
    is_parent = rng.random(n) < share / (1.0 + share)
    holds = np.where(
        is_parent,
        draw_gaps_s(n, config.parent_hold_s, config.hold_cv, rng),
        draw_gaps_s(n, config.child_hold_s, config.hold_cv, rng),
    )
    modes = ENGINE_MODES[config.engine]
    mode_of = np.where(is_parent, modes["parent"], modes["child"])
    child_mode, parent_mode = modes["child"], modes["parent"]
    classes_independent = (child_mode, parent_mode) not in CONFLICTS and (
        child_mode,
        child_mode,
    ) not in CONFLICTS
    if engine == "fast" and fifo:
        granted = _fifo_grants_fast(arrivals, holds, mode_of)
    elif engine == "fast" and classes_independent:
        # Barging children never wait; parents queue FIFO among themselves only.
        granted = arrivals.copy()
        if is_parent.any():
            granted[is_parent] = _fifo_grants_fast(arrivals[is_parent], holds[is_parent], mode_of[is_parent])
    else:
        granted = _grants_simpy(arrivals, holds, mode_of, fifo)
    return pd.DataFrame(
        {
            "request_id": np.arange(n),
            "kind": np.where(is_parent, "parent", "child"),
            "mode": mode_of,
            "arrival_s": arrivals,
            "wait_s": granted - arrivals,
            "hold_s": holds,
            "granted_s": granted,
            "released_s": granted + holds,
        }
    )


def _grants_simpy(arrivals: np.ndarray, holds: np.ndarray, mode_of: np.ndarray, fifo: bool) -> np.ndarray:
    """Grant times from the explicit simpy model (the readable reference)."""
    n = arrivals.size
    granted = np.full(n, np.nan)
    env = simpy.Environment()
    lock = RowLock(env, fifo=fifo)

    def request(i: int):
        yield lock.acquire(mode_of[i])
        granted[i] = env.now
        yield env.timeout(holds[i])
        lock.release(mode_of[i])

    def source():
        for i in range(n):
            yield env.timeout(arrivals[i] - env.now)
            env.process(request(i))

    env.process(source())
    env.run()
    return granted


def summarize_hot_parent(df: pd.DataFrame, warmup_share: float = 0.1) -> pd.Series:
    """Waits of child writes and parent updates, after dropping the first ``warmup_share`` of requests.


    Parameters
    ----------
    df : pd.DataFrame
        What :func:`simulate_hot_parent` returns.
    warmup_share : float
        Share of the first requests dropped (0 to 0.9).

    Returns
    -------
    pandas.Series
        ``child_mean_ms``, ``child_p50_ms``, ``child_p99_ms``, ``child_waited`` (share
        of child writes that waited at all), ``parent_mean_ms``, ``parent_p99_ms``,
        ``throughput_per_s`` (requests released per second over the run).
    """
    needed = {"kind", "wait_s", "arrival_s", "released_s"}
    if not isinstance(df, pd.DataFrame) or not needed <= set(df.columns) or df.empty:
        raise ValueError(f"df must be a non-empty DataFrame with columns {sorted(needed)}")
    if df[["wait_s", "arrival_s", "released_s"]].isna().any().any():
        raise ValueError("df must not hold NaN in wait_s, arrival_s or released_s")
    share = validate.float_in_range("warmup_share", warmup_share, 0.0, 0.9)
    kept = df.iloc[int(len(df) * share) :]
    child = kept.loc[kept["kind"] == "child", "wait_s"].to_numpy() * 1000
    parent = kept.loc[kept["kind"] == "parent", "wait_s"].to_numpy() * 1000

    def pct(values: np.ndarray, q: float) -> float:
        return float(np.percentile(values, q)) if values.size else math.nan

    span = float(df["released_s"].max() - df["arrival_s"].min())
    return pd.Series(
        {
            "child_mean_ms": float(child.mean()) if child.size else math.nan,
            "child_p50_ms": pct(child, 50),
            "child_p99_ms": pct(child, 99),
            "child_waited": float((child > 0).mean()) if child.size else math.nan,
            "parent_mean_ms": float(parent.mean()) if parent.size else math.nan,
            "parent_p99_ms": pct(parent, 99),
            "throughput_per_s": len(df) / span if span > 0 else math.nan,
        }
    )


# --------------------------------------------------------------------- theory


def theory_drain_wait_s(write_rate_per_s: float, child_hold_s: float) -> float:
    """Mean time an exclusive request waits for the shared holders present when it arrives.

    With Poisson child arrivals at rate lambda and exponential holds of mean h, the
    holders form an M/M/infinity system: their number is Poisson(a = lambda h) and,
    by memorylessness, their remaining holds are independent exponentials. The wait
    is the largest of them, whose mean is

        h * Ein(a) = h * integral_0^inf (1 - exp(-a e^{-u})) du
                   ~ h (ln a + 0.5772)   for large a.

    The wait grows only logarithmically with the number of holders, but every shared
    request arriving meanwhile queues behind the exclusive one (FIFO).

    Parameters
    ----------
    write_rate_per_s : float
        Child writes per second (lambda).
    child_hold_s : float
        Mean hold time of a child's shared lock (s).

    Returns
    -------
    float
        The mean wait of an exclusive request (s).
    """
    lam = validate.non_negative_float("write_rate_per_s", write_rate_per_s)
    h = validate.positive_float("child_hold_s", child_hold_s)
    a = lam * h
    if a == 0:
        return 0.0
    upper = math.log(a) + 40.0 if a > 1 else 40.0
    u = np.linspace(0.0, max(upper, 1.0), 20_001)
    integrand = -np.expm1(-a * np.exp(-u))
    # Trapezoid rule written out: np.trapz was renamed np.trapezoid in numpy 2.0.
    step = u[1] - u[0]
    return float(h * step * (integrand.sum() - 0.5 * (integrand[0] + integrand[-1])))


def theory_x_utilisation(config: HotParentConfig) -> float:
    """Share of time the row is closed to new child writes (InnoDB), a first-order estimate.

    Each parent update closes the row from its arrival until it releases: it waits
    to drain the shared holders (:func:`theory_drain_wait_s`), then holds X. So the
    closed share is about ``lambda_x (E[drain] + E[hold_x])``. It ignores parent
    updates that overlap each other and the burst of children admitted together
    after each release, so it is a guide to where the cliff is, not a queueing formula.
    At 1 the row is closed all the time: the cliff.

    Parameters
    ----------
    config : HotParentConfig
        Rate, update share, hold times and engine.

    Returns
    -------
    float
        Share of time the row is closed to new children (may exceed 1: past the cliff).
    """
    if not isinstance(config, HotParentConfig):
        raise TypeError(f"config must be a HotParentConfig, got {type(config).__name__}")
    lam_x = config.write_rate_per_s * config.parent_update_share
    if ENGINE_MODES[config.engine]["child"] == "KEY SHARE" and config.engine == "postgresql":
        # FOR NO KEY UPDATE does not conflict with FOR KEY SHARE: children never queue.
        return 0.0
    drain = theory_drain_wait_s(config.write_rate_per_s, config.child_hold_s)
    return lam_x * (drain + config.parent_hold_s)


def theory_cliff_rate_per_s(config: HotParentConfig, *, max_rate_per_s: float = 1e7) -> float:
    """The child write rate at which :func:`theory_x_utilisation` reaches 1 (bisection).

    Returns ``inf`` when no rate up to ``max_rate_per_s`` gets there (e.g. PostgreSQL
    with non-key updates, or no parent updates at all).

    Parameters
    ----------
    config : HotParentConfig
        Hold times, update share and engine.
    max_rate_per_s : float
        Upper end of the search (writes per s).

    Returns
    -------
    float
        Writes per second at the cliff, or ``inf``.
    """
    if not isinstance(config, HotParentConfig):
        raise TypeError(f"config must be a HotParentConfig, got {type(config).__name__}")
    top = validate.positive_float("max_rate_per_s", max_rate_per_s)

    def rho(rate: float) -> float:
        return theory_x_utilisation(replace(config, write_rate_per_s=rate))

    if rho(top) < 1:
        return math.inf
    low, high = 1e-6, top
    for _ in range(200):  # bounded: 200 halvings is far below float resolution
        mid = math.sqrt(low * high)
        if rho(mid) < 1:
            low = mid
        else:
            high = mid
        if high / low < 1 + 1e-9:
            break
    return math.sqrt(low * high)


# ---------------------------------------------------------------- sweep / plot


def sweep_write_rates(
    rates_per_s: Sequence[float],
    config: HotParentConfig | None = None,
    *,
    n_requests: int = 20_000,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """:func:`summarize_hot_parent` at each child write rate, with the theory next to it.


    Parameters
    ----------
    rates_per_s : Sequence[float]
        Child write rates to simulate (per s).
    config : HotParentConfig | None
        Everything else (default :class:`HotParentConfig`).
    n_requests : int
        Lock requests simulated per rate.
    seed : int, numpy Generator or None
        Randomness (one child seed per rate).

    Returns
    -------
    pandas.DataFrame
        One row per rate: ``write_rate_per_s``, the summary columns, ``x_utilisation``
        (theory) and ``drain_theory_ms``.
    """
    config = HotParentConfig() if config is None else config
    if not isinstance(config, HotParentConfig):
        raise TypeError(f"config must be a HotParentConfig, got {type(config).__name__}")
    if (
        isinstance(rates_per_s, (str, bytes))
        or not isinstance(rates_per_s, Sequence)
        and not isinstance(rates_per_s, np.ndarray)
    ):
        raise TypeError(f"rates_per_s must be a sequence of rates, got {type(rates_per_s).__name__}")
    if len(rates_per_s) > MAX_SWEEP_RATES:
        raise ValueError(f"rates_per_s must hold at most {MAX_SWEEP_RATES} rates, got {len(rates_per_s)}")
    rates = [validate.positive_float(f"rates_per_s[{i}]", r) for i, r in enumerate(rates_per_s)]
    if not rates:
        raise ValueError("rates_per_s must not be empty")
    rng = validate.rng_from_seed(seed)
    seeds = rng.spawn(len(rates))
    rows = []
    for rate, child_seed in zip(rates, seeds, strict=True):
        point = replace(config, write_rate_per_s=rate)
        summary = summarize_hot_parent(simulate_hot_parent(point, n_requests=n_requests, seed=child_seed))
        rows.append(
            {
                "write_rate_per_s": rate,
                **summary.to_dict(),
                "x_utilisation": theory_x_utilisation(point),
                "drain_theory_ms": 1000 * theory_drain_wait_s(rate, config.child_hold_s),
            }
        )
    return pd.DataFrame(rows)


def plot_latency_vs_rate(
    sweep: pd.DataFrame, cliff_rate_per_s: float | None = None, ax: Axes | None = None
) -> Axes:
    """Child-write lock waits (p50, p99) against the write rate, log-log, with the predicted cliff.

    Parameters
    ----------
    sweep : pd.DataFrame
        What :func:`sweep_write_rates` returns.
    cliff_rate_per_s : float | None
        Where to draw the predicted cliff (writes per s), or None.
    ax : Axes | None
        Where to draw (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes
    """
    needed = {"write_rate_per_s", "child_p99_ms", "child_mean_ms"}
    if not isinstance(sweep, pd.DataFrame) or not needed <= set(sweep.columns):
        raise ValueError(f"sweep must have columns {sorted(needed)}")
    if cliff_rate_per_s is not None:
        cliff_rate_per_s = validate.positive_float("cliff_rate_per_s", cliff_rate_per_s, allow_inf=True)
    ax = axes_or_new(ax)
    floor = 1e-3  # ms: zero waits drawn at the floor of the log axis
    ax.plot(sweep["write_rate_per_s"], sweep["child_p99_ms"].clip(lower=floor), marker="o", label="p99 wait")
    ax.plot(
        sweep["write_rate_per_s"], sweep["child_mean_ms"].clip(lower=floor), marker="s", label="mean wait"
    )
    if cliff_rate_per_s is not None and math.isfinite(cliff_rate_per_s):
        ax.axvline(cliff_rate_per_s, color="C1", linestyle="--", label="predicted cliff")
    ax.set_xscale("log")
    ax.set_yscale("log")
    return label(ax, "child writes on the parent (per s)", "child lock wait (ms)", legend=True)


# ------------------------------------------------------------ the real engines

MAX_CLIENTS = 32  # child-writer connections in run_hot_parent
MAX_SWEEP_RATES = 200  # write rates in one sweep_write_rates call
MAX_RATE_PER_S = 5_000.0  # child writes per second offered to a real engine
MAX_DURATION_S = 30.0  # seconds of load in run_hot_parent
MAX_HOLD_S = 1.0  # a hold time longer than this is not a hot-row experiment
MAX_ENGINE_TIMEOUT_S = 120.0
PARENT_LOCKS = ("update", "for_update")  # how the parent is touched: a non-key UPDATE or FOR UPDATE
# The real-server runs a chapter compares: (parent_update_share is filled in, parent_lock) per engine.
ENGINE_CASES = {
    "mariadb": [("none", "update"), ("share", "update")],
    "postgres": [("share", "update"), ("share", "for_update")],
}

# Reader's headers (column -> words with units) for the tables a chapter shows with notebook.table.
TABLE_HEADERS = {
    "sweep": {
        "write_rate_per_s": "child writes (per s)",
        "child_p50_ms": "p50 wait (ms)",
        "child_p99_ms": "p99 wait (ms)",
        "child_waited": "share that waited",
        "x_utilisation": "row closed (theory)",
    },
    "by_engine": {
        "model": "lock modes",
        "child_p99_ms": "child p99 (ms)",
        "child_waited": "share waited",
        "parent_mean_ms": "parent mean (ms)",
        "parent_p99_ms": "parent p99 (ms)",
    },
    "engine_runs": {
        "engine": "engine",
        "parent_lock": "parent touched by",
        "parent_update_share": "touches per insert",
        "child_p99_ms": "child p99 (ms)",
        "parent_p99_ms": "parent p99 (ms)",
        "row_lock_waits": "InnoDB row-lock waits",
        "multixacts": "MultiXacts created",
    },
    "staging_production": {
        "stage": "",
        "rate": "child writes (per s)",
        "p99": "p99 lock wait (ms)",
        "fanout": "children per parent",
        "cascade": "cascade, no index (ms)",
    },
}


def _hot_parent_counters(session, kind: str) -> dict[str, float]:
    """Server counters read before and after the load."""
    if kind == "mariadb":
        rows = dict(
            session.execute(
                "SHOW GLOBAL STATUS WHERE Variable_name IN ('Innodb_row_lock_waits', 'Innodb_row_lock_time')"
            )
        )
        return {
            "row_lock_waits": float(rows.get("Innodb_row_lock_waits", 0)),
            "row_lock_time_ms": float(rows.get("Innodb_row_lock_time", 0)),
        }
    session.execute("CHECKPOINT")
    next_mxid = session.scalar("SELECT (pg_control_checkpoint()).next_multixact_id")
    slru = session.execute(
        "SELECT name, blks_zeroed + blks_hit + blks_read FROM pg_stat_slru"
        " WHERE name IN ('MultiXactMember', 'MultiXactOffset')"
    )
    counters = {"multixacts": float(next_mxid)}
    for name, value in slru:
        counters[f"{name}_slru_accesses"] = float(value)
    return counters


def _sample_waits(session, kind: str, database: str) -> list[tuple[str, str]]:
    """(wait kind, detail) for every session of the experiment waiting on a lock right now."""
    if kind == "mariadb":
        rows = session.execute(
            "SELECT trx_query FROM information_schema.INNODB_TRX"
            " WHERE trx_state = 'LOCK WAIT' AND trx_mysql_thread_id <> CONNECTION_ID()"
        )
        return [("child" if "INSERT" in str(q).upper() else "parent", "row lock wait") for (q,) in rows]
    rows = session.execute(
        "SELECT query, wait_event_type, wait_event FROM pg_stat_activity"
        " WHERE datname = %s AND pid <> pg_backend_pid() AND wait_event_type IN ('Lock', 'LWLock')",
        (database,),
    )
    return [
        ("child" if "INSERT" in str(q).upper() else "parent", f"{t}:{e}")
        if t == "Lock" and e in ("tuple", "transactionid")
        else ("other", f"{t}:{e}")
        for q, t, e in rows
    ]


def run_hot_parent(
    engine: object,
    *,
    write_rate_per_s: float = 400.0,
    parent_update_share: float = 0.05,
    child_hold_s: float = 0.005,
    parent_hold_s: float = 0.002,
    parent_lock: str = "update",
    n_clients: int = 8,
    duration_s: float = 2.0,
    seed: int | np.random.Generator | None = 0,
    timeout_s: float = 60.0,
) -> Run:
    """One hot parent row on a real server: concurrent child inserts plus updates of the parent.

    ``n_clients`` threads, each with its own connection, insert children of parent 1 at Poisson
    times (together ``write_rate_per_s``); each insert runs in a transaction that stays open for an
    exponential ``child_hold_s`` after the insert (the rest of the request) before it commits. One
    more connection touches the parent at rate ``write_rate_per_s * parent_update_share``: a
    non-key ``UPDATE parents SET n_children = n_children + 1`` (``parent_lock="update"``), or
    ``SELECT ... FOR UPDATE`` (``"for_update"``, the lock a DELETE or a key update takes), held for
    ``parent_hold_s``. The server does the waiting, so Python threads are enough. A monitor
    connection samples who waits on a lock (every 0.12 s on MariaDB, whose cache of that table
    refreshes only after 0.1 s unread; every 5 ms on PostgreSQL) (MariaDB ``information_schema.INNODB_LOCK_WAITS``;
    PostgreSQL ``pg_stat_activity`` wait events), and server counters are read before and after
    (MariaDB ``Innodb_row_lock_waits``/``_time``; PostgreSQL MultiXact ids created, from
    ``pg_control_checkpoint()`` after a CHECKPOINT, and MultiXact SLRU page accesses).

    Parameters
    ----------
    engine : syslab.engines.Engine
        A running PostgreSQL or MariaDB.
    write_rate_per_s : float
        Child inserts offered per second, at most :data:`MAX_RATE_PER_S`.
    parent_update_share : float
        Parent touches per child insert, 0 to 1.
    child_hold_s, parent_hold_s : float
        Mean time each transaction stays open after its statement (s), at most :data:`MAX_HOLD_S`.
    parent_lock : {"update", "for_update"}
        How the parent is touched.
    n_clients : int
        Child connections, 1 to :data:`MAX_CLIENTS`.
    duration_s : float
        Seconds of load, at most :data:`MAX_DURATION_S`.
    seed : int, numpy Generator or None
        Arrival times and hold times.
    timeout_s : float
        Bound on the whole experiment, set-up included (s); must exceed ``duration_s``.

    Returns
    -------
    syslab.experiment.Run
        ``frame``: one row per statement with ``kind`` ("child"/"parent"), ``client``,
        ``start_s`` (since the load began), ``latency_ms`` (the statement's time: its lock wait
        plus its work) and ``ok``. ``summary``: ``engine``, the knobs, ``child_p50_ms``,
        ``child_p99_ms``, ``parent_p50_ms``, ``parent_p99_ms``, ``children_per_s`` (achieved),
        ``child_wait_samples`` and ``parent_wait_samples`` (monitor samples that saw a waiter),
        ``wait_events`` (the distinct wait kinds seen), ``n_samples`` and the server counters'
        deltas (``row_lock_waits``, ``row_lock_time_ms``; or ``multixacts`` and the SLRU accesses).
    """
    import threading

    from syslab import _engine_sql as sql

    kind = sql.kind_of(engine)
    rate = validate.float_in_range("write_rate_per_s", write_rate_per_s, 1e-3, MAX_RATE_PER_S)
    share = validate.probability("parent_update_share", parent_update_share)
    child_hold = validate.float_in_range("child_hold_s", child_hold_s, 0.0, MAX_HOLD_S)
    parent_hold = validate.float_in_range("parent_hold_s", parent_hold_s, 0.0, MAX_HOLD_S)
    parent_lock = validate.choice("parent_lock", parent_lock, PARENT_LOCKS)
    clients = validate.bounded_int("n_clients", n_clients, MAX_CLIENTS)
    duration = validate.float_in_range("duration_s", duration_s, 0.05, MAX_DURATION_S)
    timeout = validate.float_in_range("timeout_s", timeout_s, 1.0, MAX_ENGINE_TIMEOUT_S)
    if timeout <= duration + 1.0:
        raise ValueError(
            f"timeout_s must exceed duration_s + 1 s, got timeout_s={timeout} and duration_s={duration}"
        )
    rng = validate.rng_from_seed(seed)
    deadline = sql.deadline_after(timeout)
    errors = sql.driver_errors(kind)
    child_arrivals = [
        np.cumsum(rng.exponential(clients / rate, int(3 * duration * rate / clients) + 50))
        for _ in range(clients)
    ]
    child_holds = [
        rng.exponential(child_hold, len(a)) if child_hold > 0 else np.zeros(len(a)) for a in child_arrivals
    ]
    parent_rate = rate * share
    n_parent = int(3 * duration * parent_rate) + 10
    parent_arrivals = (
        np.cumsum(rng.exponential(1 / parent_rate, n_parent)) if parent_rate > 0 else np.array([])
    )
    parent_holds = rng.exponential(parent_hold, n_parent) if parent_hold > 0 else np.zeros(n_parent)
    parent_holds = parent_holds[: len(parent_arrivals)]
    records: list[tuple] = []
    lock = threading.Lock()
    stop = threading.Event()
    samples: list[list[tuple[str, str]]] = []
    if parent_lock == "update":
        parent_sql = "UPDATE parents SET n_children = n_children + 1 WHERE id = 1"
    else:
        parent_sql = "SELECT id FROM parents WHERE id = 1 FOR UPDATE"

    with sql.fresh_database(engine, deadline) as db:
        setup = sql.open_session(kind, db, deadline)
        sessions = []
        try:
            if kind == "postgres":
                setup.execute(
                    "CREATE TABLE parents (id integer PRIMARY KEY, n_children integer NOT NULL DEFAULT 0)"
                )
                setup.execute(
                    "CREATE TABLE children (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
                    " parent_id integer NOT NULL REFERENCES parents (id), v integer)"
                )
                setup.execute("CREATE INDEX children_parent ON children (parent_id)")
            else:
                setup.execute(
                    "CREATE TABLE parents (id INT PRIMARY KEY, n_children INT NOT NULL DEFAULT 0)"
                    " ENGINE=InnoDB"
                )
                setup.execute(
                    "CREATE TABLE children (id BIGINT AUTO_INCREMENT PRIMARY KEY, parent_id INT NOT NULL,"
                    " v INT, FOREIGN KEY (parent_id) REFERENCES parents (id)) ENGINE=InnoDB"
                )
            setup.execute("INSERT INTO parents (id) VALUES (1), (2)")
            sessions = [sql.open_session(kind, db, deadline) for _ in range(clients + 2)]
            before = _hot_parent_counters(setup, kind)
            t0 = time.monotonic() + 0.05
            end = t0 + duration

            def worker(session, arrivals, holds, statement, label, client):
                for arrival, hold in zip(arrivals, holds, strict=True):
                    at = t0 + arrival
                    if at >= end or stop.is_set():
                        return
                    pause = at - time.monotonic()
                    if pause > 0:
                        time.sleep(pause)
                    ok = True
                    started = time.monotonic()
                    try:
                        session.begin()
                        session.execute(statement, (client,) if "%s" in statement else None)
                        latency = time.monotonic() - started
                        if hold > 0:
                            time.sleep(hold)
                        session.commit()
                    except errors:
                        latency, ok = time.monotonic() - started, False
                        session.rollback()
                    with lock:
                        records.append((label, client, started - t0, 1000 * latency, ok))

            def monitor(session):
                while not stop.is_set() and time.monotonic() < end:
                    try:
                        samples.append(_sample_waits(session, kind, db.name))
                    except errors:
                        session.rollback()
                    # InnoDB refreshes its INFORMATION_SCHEMA transaction cache only when it has not
                    # been read for 0.1 s (trx0i_s.cc, CACHE_MIN_IDLE_TIME_US): polling faster
                    # would read the same stale snapshot for ever.
                    time.sleep(0.12 if kind == "mariadb" else 0.005)

            child_sql = "INSERT INTO children (parent_id, v) VALUES (1, %s)"
            threads = [
                threading.Thread(
                    target=worker,
                    args=(sessions[i], child_arrivals[i], child_holds[i], child_sql, "child", i),
                    daemon=True,
                )
                for i in range(clients)
            ]
            threads.append(
                threading.Thread(
                    target=worker,
                    args=(sessions[clients], parent_arrivals, parent_holds, parent_sql, "parent", -1),
                    daemon=True,
                )
            )
            threads.append(threading.Thread(target=monitor, args=(sessions[clients + 1],), daemon=True))
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(max(0.0, deadline - time.monotonic()))
            stop.set()
            if any(thread.is_alive() for thread in threads):
                raise TimeoutError(f"run_hot_parent did not finish within timeout_s={timeout}")
            after = _hot_parent_counters(setup, kind)
        finally:
            stop.set()
            for session in sessions:
                session.close()
            setup.close()
    frame = pd.DataFrame(records, columns=["kind", "client", "start_s", "latency_ms", "ok"])
    frame = frame.sort_values("start_s", ignore_index=True)
    child = frame.loc[(frame["kind"] == "child") & frame["ok"], "latency_ms"].to_numpy()
    parent = frame.loc[(frame["kind"] == "parent") & frame["ok"], "latency_ms"].to_numpy()

    def pct(values: np.ndarray, q: float) -> float:
        return float(np.percentile(values, q)) if values.size else math.nan

    events = sorted({detail for sample in samples for _, detail in sample})
    summary: dict[str, object] = {
        "engine": str(getattr(engine, "label", kind)),
        "parent_lock": parent_lock,
        "write_rate_per_s": rate,
        "parent_update_share": share,
        "child_p50_ms": pct(child, 50),
        "child_p99_ms": pct(child, 99),
        "parent_p50_ms": pct(parent, 50),
        "parent_p99_ms": pct(parent, 99),
        "children_per_s": child.size / duration,
        "n_samples": len(samples),
        "child_wait_samples": sum(any(k == "child" for k, _ in s) for s in samples),
        "parent_wait_samples": sum(any(k == "parent" for k, _ in s) for s in samples),
        "wait_events": ", ".join(events) if events else "none",
    }
    for key in after:
        summary[key] = after[key] - before.get(key, 0.0)
    return Run.create(frame, summary, engine=engine)


def summarize_engine_hot_parent(runs: Sequence[Run]) -> pd.DataFrame:
    """One row per :func:`run_hot_parent` run, the columns a chapter compares across engines.

    Parameters
    ----------
    runs : sequence of syslab.experiment.Run
        Results of :func:`run_hot_parent` (at most 100).

    Returns
    -------
    pandas.DataFrame
        ``engine``, ``parent_lock``, ``parent_update_share``, ``child_p50_ms``, ``child_p99_ms``,
        ``parent_p99_ms``, ``row_lock_waits`` (MariaDB's ``Innodb_row_lock_waits`` delta; NaN on
        PostgreSQL), ``lock_wait_samples`` (monitor samples that caught a child or parent waiting
        on a row lock), ``multixacts`` (PostgreSQL MultiXact ids created; NaN on MariaDB) and
        ``wait_events``.
    """
    if isinstance(runs, (str, bytes)) or not isinstance(runs, Sequence) or not 1 <= len(runs) <= 100:
        raise ValueError("runs must be a sequence of 1 to 100 Run results of run_hot_parent")
    rows = []
    for index, run in enumerate(runs):
        validate.instance(f"runs[{index}]", run, Run)
        s = run.summary
        rows.append(
            {
                "engine": s["engine"],
                "parent_lock": s["parent_lock"],
                "parent_update_share": s["parent_update_share"],
                "child_p50_ms": s["child_p50_ms"],
                "child_p99_ms": s["child_p99_ms"],
                "parent_p99_ms": s["parent_p99_ms"],
                "row_lock_waits": s.get("row_lock_waits", math.nan),
                "lock_wait_samples": s["child_wait_samples"] + s["parent_wait_samples"],
                "multixacts": s.get("multixacts", math.nan),
                "wait_events": s["wait_events"],
            }
        )
    return pd.DataFrame(rows)


def plot_share_curves(curves: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """p99 child lock wait against the write rate, one line per share of parent updates (log-log).

    Parameters
    ----------
    curves : pandas.DataFrame
        :func:`sweep_write_rates` results stacked, with a ``share`` column (parent updates per write).
    ax : matplotlib Axes, optional
        Where to draw (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes
    """
    curves = validate.frame_columns("curves", curves, ["share", "write_rate_per_s", "child_p99_ms"])
    ax = axes_or_new(ax)
    for share, part in curves.groupby("share"):
        ax.plot(
            part["write_rate_per_s"], part["child_p99_ms"].clip(lower=1e-3), marker="o", label=f"{share:g}"
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.legend(title="parent updates per write")
    return label(ax, "child writes on the parent (per s)", "child p99 lock wait (ms)")


def lock_scheduling(engine: object) -> dict[str, object]:
    """How a real InnoDB orders lock waiters, read from the server.

    Parameters
    ----------
    engine : syslab.engines.Engine
        A running MariaDB (or MySQL).

    Returns
    -------
    dict
        ``engine`` (label), ``lock_schedule_variable`` (the value of
        ``innodb_lock_schedule_algorithm``, or "absent": MariaDB removed it, and VATS with it, so
        waiters are granted first come, first served), ``cats_weights`` (bool: the server exposes
        ``INNODB_TRX.TRX_SCHEDULE_WEIGHT``, MySQL 8.0.20+'s CATS weights).
    """
    from syslab import _engine_sql as sql

    kind = sql.kind_of(engine)
    if kind != "mariadb":
        raise ValueError(f"engine must be a MariaDB or MySQL engine, got {kind}")
    deadline = sql.deadline_after(10.0)
    with sql.fresh_database(engine, deadline) as db:
        s = sql.open_session(kind, db, deadline)
        try:
            rows = s.execute("SHOW VARIABLES LIKE 'innodb_lock_schedule_algorithm'")
            weights = s.scalar(
                "SELECT count(*) FROM information_schema.COLUMNS WHERE table_schema = 'information_schema'"
                " AND table_name = 'INNODB_TRX' AND column_name = 'TRX_SCHEDULE_WEIGHT'"
            )
        finally:
            s.close()
    return {
        "engine": str(getattr(engine, "label", kind)),
        "lock_schedule_variable": str(rows[0][1]) if rows else "absent",
        "cats_weights": bool(weights),
    }


def summarize_hot_parent_claims(hot: pd.DataFrame, model: pd.Series, parent_update_share: float) -> dict:
    """The numbers a page quotes about :func:`run_hot_parent` runs, and the claims it checks.

    Parameters
    ----------
    hot : pandas.DataFrame
        :func:`summarize_engine_hot_parent` of the runs (empty when no engine ran): MariaDB with
        share 0 and ``parent_update_share`` (``update``), PostgreSQL with ``parent_update_share``
        (``update`` and ``for_update``).
    model : pandas.Series
        :func:`summarize_hot_parent` of the model at the same rate, share and hold times.
    parent_update_share : float
        The share the runs used (0 to 1).

    Returns
    -------
    dict
        ``maria_label``, ``maria_waits_none``, ``maria_p99_none``, ``maria_waits_update``,
        ``maria_p99_update``, ``maria_parent_p99``, ``model_p99``, ``model_parent_mean``,
        ``pg_label``, ``pg_p99_update``, ``pg_samples_update``, ``pg_multixacts``,
        ``pg_parent_p99_for_update``, ``engine_seconds`` (NaN or "not measured" for a missing
        engine) and ``checks``: claim text to bool for the page's claims.check calls.
    """
    share = validate.probability("parent_update_share", parent_update_share)
    validate.instance("model", model, pd.Series)
    out: dict[str, object] = {
        "maria_label": "MariaDB (not measured here)",
        "pg_label": "PostgreSQL (not measured here)",
        "model_p99": float(model["child_p99_ms"]),
        "model_parent_mean": float(model["parent_mean_ms"]),
        "engine_seconds": math.nan,
    }
    for key in (
        "maria_waits_none",
        "maria_p99_none",
        "maria_waits_update",
        "maria_p99_update",
        "maria_parent_p99",
        "pg_p99_update",
        "pg_samples_update",
        "pg_multixacts",
        "pg_parent_p99_for_update",
    ):
        out[key] = math.nan
    checks: dict[str, bool] = {}
    if len(hot):
        hot = validate.frame_columns(
            "hot", hot, ["engine", "parent_lock", "parent_update_share", "child_p99_ms"]
        )
    maria = hot[hot["engine"].str.startswith("MariaDB")] if len(hot) else hot
    pg = hot[hot["engine"].str.startswith("PostgreSQL")] if len(hot) else hot
    if len(maria) == 2:
        none = maria[maria["parent_update_share"] == 0].iloc[0]
        upd = maria[maria["parent_update_share"] == share].iloc[0]
        out.update(
            maria_label=none["engine"],
            maria_waits_none=float(none["row_lock_waits"]),
            maria_p99_none=float(none["child_p99_ms"]),
            maria_waits_update=float(upd["row_lock_waits"]),
            maria_p99_update=float(upd["child_p99_ms"]),
            maria_parent_p99=float(upd["parent_p99_ms"]),
        )
        checks["InnoDB: children never wait for a row lock without parent updates"] = (
            none["row_lock_waits"] == 0
        )
        checks["InnoDB: parent updates make children wait"] = upd["row_lock_waits"] > 0
        checks["InnoDB: the children's p99 rises with parent updates"] = (
            upd["child_p99_ms"] > none["child_p99_ms"]
        )
    if len(pg) == 2:
        upd = pg[pg["parent_lock"] == "update"].iloc[0]
        locked = pg[pg["parent_lock"] == "for_update"].iloc[0]
        out.update(
            pg_label=upd["engine"],
            pg_p99_update=float(upd["child_p99_ms"]),
            pg_samples_update=int(upd["lock_wait_samples"]),
            pg_multixacts=float(upd["multixacts"]),
            pg_parent_p99_for_update=float(locked["parent_p99_ms"]),
        )
        checks["PostgreSQL: concurrent share lockers create MultiXacts"] = upd["multixacts"] > 0
        checks["PostgreSQL: FOR UPDATE on the parent waits far longer than a non-key UPDATE"] = (
            locked["parent_p99_ms"] > 3 * upd["parent_p99_ms"]
        )
    out["checks"] = checks
    return out


def check_drain(
    config: HotParentConfig,
    rates_per_s: Sequence[float] = (200, 1_000, 5_000),
    *,
    parent_update_share: float = 0.0005,
    n_requests: int = 300_000,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Mean wait of rare parent updates in the simulation against :func:`theory_drain_wait_s`.

    Parameters
    ----------
    config : HotParentConfig
        Hold times and engine; its rate and share are replaced.
    rates_per_s : sequence of float
        Child write rates to try (1 to 20 of them).
    parent_update_share : float
        Rare enough that updates never meet each other (default one per 2,000 writes).
    n_requests : int
        Requests simulated per rate (at most 10^6).
    seed : int, numpy Generator or None
        Randomness of the simulation.

    Returns
    -------
    pandas.DataFrame
        One row per rate: ``write_rate_per_s``, ``holders`` (mean shared holders, lambda h),
        ``updates`` (parent updates simulated), ``drain_simulated_ms`` and ``drain_theory_ms``.
    """
    validate.instance("config", config, HotParentConfig)
    if (
        isinstance(rates_per_s, (str, bytes))
        or not isinstance(rates_per_s, Sequence)
        or not 1 <= len(rates_per_s) <= 20
    ):
        raise ValueError("rates_per_s must be a sequence of 1 to 20 rates")
    n = validate.bounded_int("n_requests", n_requests, 1_000_000)
    rng = validate.rng_from_seed(seed)
    rows = []
    for index, rate in enumerate(rates_per_s):
        rate = validate.positive_float(f"rates_per_s[{index}]", rate)
        point = replace(config, write_rate_per_s=rate, parent_update_share=parent_update_share)
        df = simulate_hot_parent(point, n_requests=n, seed=rng)
        parents = df["kind"] == "parent"
        rows.append(
            {
                "write_rate_per_s": rate,
                "holders": rate * config.child_hold_s,
                "updates": int(parents.sum()),
                "drain_simulated_ms": 1000 * float(df.loc[parents, "wait_s"].mean()),
                "drain_theory_ms": 1000 * theory_drain_wait_s(rate, config.child_hold_s),
            }
        )
    return pd.DataFrame(rows)
