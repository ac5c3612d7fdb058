"""How Redis expires keys: a port of ``src/expire.c``'s active expiry, lazy expiry, freeing and eviction.

Everything here models Redis's own algorithms, with the constants read from the source:

- **the rules** -- :func:`effort_parameters` (how ``active-expire-effort`` scales the four constants of
  ``activeExpireCycle``), :func:`repeat_cycle` (the "keep going" test, integer arithmetic included),
  :func:`theory_repeat_probability` and :func:`ttl_reply` (what ``TTL`` answers);
- **the active cycle over time** -- :func:`simulate_expiry` runs slow cycles at ``hz`` and fast cycles
  from ``beforeSleep`` over a population of keys with TTLs, plus lazy expiry on reads, as Redis 6.0+
  does it (a bucket cursor over the ``expires`` table) or as Redis 5 and earlier did (random samples,
  repeat while more than 25% expired), and reports the INFO-style counters;
- **freeing** -- :func:`simulate_free_stall` (a big key freed by DEL on the event loop vs by UNLINK in
  a background thread, using :mod:`syslab.queueing` for the single-threaded server) and
  :func:`measure_free_cost` (a real measurement of per-element free cost on this machine);
- **eviction** -- :func:`eviction_hit_ratio`: Redis's approximated LRU (``maxmemory-samples`` keys
  sampled into a 16-entry pool) against exact LRU and random eviction.

Sources: ``redis/redis`` ``src/expire.c`` (unstable branch, 2024; the cursor-based cycle dates from 6.0)
and the 3.2-5.0 versions of the same function; ``src/evict.c`` (``EVPOOL_SIZE 16``) and ``src/lazyfree.c``
(``LAZYFREE_THRESHOLD 64``). CPU costs per key are model parameters, not Redis facts: calibrate them
with ``INFO stats`` (``expire_cycle_cpu_milliseconds``) on your own server.
"""

from __future__ import annotations

import bisect
import gc
import math
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from syslab import queueing, validate
from syslab.experiment import Run
from syslab.plot import axes_or_new, label

__all__ = [
    "ACTIVE_EXPIRE_CYCLE_ACCEPTABLE_STALE",
    "ACTIVE_EXPIRE_CYCLE_FAST_DURATION",
    "ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP",
    "ACTIVE_EXPIRE_CYCLE_SLOW_TIME_PERC",
    "EVPOOL_SIZE",
    "LAZYFREE_THRESHOLD",
    "ExpireConfig",
    "effort_parameters",
    "expiry_population",
    "info_fields",
    "zero_ttl_cases",
    "measure_free_cost",
    "plot_eviction",
    "plot_stale_memory",
    "repeat_cycle",
    "eviction_hit_ratio",
    "theory_equilibrium_curves",
    "compare_eviction_policies",
    "simulate_expiry",
    "steady_population",
    "simulate_free_stall",
    "summarize_equilibrium",
    "summarize_server_vs_port",
    "plot_server_vs_port",
    "run_expiry_equilibrium",
    "run_lazy_only",
    "run_ttl_replies",
    "measure_delete_cost",
    "MAX_KEYS_PER_LOOP",
    "MAX_SIM_DURATION_S",
    "summarize_expiry",
    "theory_batches_until_stop",
    "theory_active_expire_rate_per_s",
    "theory_equilibrium_stale_fraction",
    "theory_repeat_probability",
    "ttl_reply",
]

# src/expire.c
ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP = 20  # keys sampled per loop in each database
ACTIVE_EXPIRE_CYCLE_FAST_DURATION = 1000  # microseconds a fast cycle may run
ACTIVE_EXPIRE_CYCLE_SLOW_TIME_PERC = 25  # max % of CPU time the slow cycle may use
ACTIVE_EXPIRE_CYCLE_ACCEPTABLE_STALE = 10  # % of stale keys above which the cycle repeats
TIME_CHECK_EVERY = 16  # the cycle looks at the clock once every 16 loops ((iteration & 0xf) == 0)
STALE_ESTIMATE_WEIGHT = 0.05  # each cycle's sample weighs 5% in expired_stale_perc
# src/evict.c, src/lazyfree.c
EVPOOL_SIZE = 16  # candidates kept between evictions by the approximated LRU
LAZYFREE_THRESHOLD = 64  # free effort above which UNLINK frees in a background thread

ALGORITHMS = ("cursor", "random")  # Redis >= 6.0, Redis <= 5.0
MAX_KEYS_PER_LOOP = 1_000  # Redis samples at most 65 (effort 10); the binomial sums stay exact below this
MAX_SIM_DURATION_S = 3_600.0  # simulated seconds (a chapter simulates about a minute)
MAX_SIM_KEYS = 5_000_000  # keys in one simulated keyspace
MAX_READS = 20_000_000  # reads_per_s * duration_s in one simulation
MAX_STALL_REQUESTS = 2_000_000  # arrival_rate_per_s * duration_s in simulate_free_stall
MAX_FREE_ELEMENTS = 5_000_000  # container size in measure_free_cost (memory)
MAX_REPEATS = 20  # timing repeats


# --------------------------------------------------------------------------- the rules


def effort_parameters(active_expire_effort: int = 1, hz: int = 10, algorithm: str = "cursor") -> dict:
    """The active cycle's working parameters, computed as ``activeExpireCycle`` does (integer maths).

    With ``e = active-expire-effort - 1`` (0..9): keys per loop ``20 + 20/4*e``, fast-cycle budget
    ``1000 + 1000/4*e`` us, slow-cycle CPU share ``25 + 2e`` %, acceptable stale ``10 - e`` %, and the
    slow cycle's time limit ``perc * 1000000 / hz / 100`` us. The ``random`` algorithm (Redis 5 and
    earlier) has no effort setting: it uses the effort-1 values and repeats while more than
    ``20/4 = 5`` of 20 sampled keys were expired.

    Parameters
    ----------
    active_expire_effort : int
        1 to 10.
    hz : int
        Server frequency, 1 to 500.
    algorithm : {"cursor", "random"}
        Redis 6.0+ or Redis 5 and earlier.

    Returns
    -------
    dict
        ``keys_per_loop``, ``fast_duration_us``, ``slow_time_perc``, ``acceptable_stale_perc``,
        ``slow_timelimit_us``, ``repeat_threshold_keys`` (``random`` only; else ``None``).
    """
    kind = validate.choice("algorithm", algorithm, ALGORITHMS)
    effort = validate.int_in_range("active_expire_effort", active_expire_effort, 1, 10)
    frequency = validate.int_in_range("hz", hz, 1, 500)
    e = effort - 1 if kind == "cursor" else 0
    keys = ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP + ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP // 4 * e
    fast = ACTIVE_EXPIRE_CYCLE_FAST_DURATION + ACTIVE_EXPIRE_CYCLE_FAST_DURATION // 4 * e
    perc = ACTIVE_EXPIRE_CYCLE_SLOW_TIME_PERC + 2 * e
    stale = ACTIVE_EXPIRE_CYCLE_ACCEPTABLE_STALE - e
    timelimit = max(perc * 1_000_000 // frequency // 100, 1)
    return {
        "keys_per_loop": keys,
        "fast_duration_us": fast,
        "slow_time_perc": perc,
        "acceptable_stale_perc": stale,
        "slow_timelimit_us": timelimit,
        "repeat_threshold_keys": keys // 4 if kind == "random" else None,
    }


def repeat_cycle(
    expired: int, sampled: int, algorithm: str = "cursor", acceptable_stale_perc: int = 10
) -> bool:
    """Whether the cycle samples the same database again after a loop that found ``expired`` of ``sampled``.

    Redis 6.0+: ``sampled == 0 || expired*100/sampled > acceptable_stale`` with C integer division, so
    with 20 samples it repeats from 3 expired keys (15%) up. Redis 5 and earlier: ``expired > 20/4``,
    from 6 expired keys (30%) up -- the "25% rule".

    Parameters
    ----------
    expired : int
        Expired keys found in the loop.
    sampled : int
        Keys sampled in the loop.
    algorithm : {"cursor", "random"}
        Redis 6.0+ or Redis 5 and earlier.
    acceptable_stale_perc : int
        The threshold in percent (6.0+ only).

    Returns
    -------
    bool
        Whether the cycle runs another loop.
    """
    kind = validate.choice("algorithm", algorithm, ALGORITHMS)
    found = validate.non_negative_int("expired", expired)
    looked = validate.non_negative_int("sampled", sampled)
    if found > looked:
        raise ValueError(f"expired must be <= sampled, got {found} > {looked}")
    if kind == "random":
        return found > ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP // 4
    threshold = validate.int_in_range("acceptable_stale_perc", acceptable_stale_perc, 0, 100)
    return looked == 0 or found * 100 // looked > threshold


def theory_repeat_probability(
    stale_fraction: float, algorithm: str = "cursor", keys_per_loop: int = 20, acceptable_stale_perc: int = 10
) -> float:
    """P(the cycle repeats) when a fraction ``p`` of the sampled keys are expired (binomial sampling).

    Parameters
    ----------
    stale_fraction : float
        Share p of sampled keys that are expired.
    algorithm : {"cursor", "random"}
        The sampler.
    keys_per_loop : int
        Keys per loop (1 to ``MAX_KEYS_PER_LOOP``).
    acceptable_stale_perc : int
        The repeat threshold in percent.

    Returns
    -------
    float
        P(repeat) in [0, 1].
    """
    p = validate.probability("stale_fraction", stale_fraction)
    n = validate.bounded_int("keys_per_loop", keys_per_loop, MAX_KEYS_PER_LOOP)
    kind = validate.choice("algorithm", algorithm, ALGORITHMS)
    # The repeat test is monotone in the number expired, so find the smallest count that repeats.
    first = next((k for k in range(n + 1) if repeat_cycle(k, n, kind, acceptable_stale_perc)), n + 1)
    # P(X >= first) for X ~ Binomial(n, p). With n <= MAX_KEYS_PER_LOOP every binomial coefficient
    # fits a float (C(1000, 500) is about 2.7e299), so the sum cannot overflow.
    return float(sum(float(math.comb(n, k)) * p**k * (1 - p) ** (n - k) for k in range(first, n + 1)))


def theory_batches_until_stop(
    stale_fraction: float, algorithm: str = "cursor", keys_per_loop: int = 20, acceptable_stale_perc: int = 10
) -> float:
    """Mean loops before the cycle stops on its own (geometric): 1 / (1 - P(repeat)); inf if it never does.

    Parameters
    ----------
    stale_fraction : float
        Share of sampled keys that are expired.
    algorithm : {"cursor", "random"}
        The sampler.
    keys_per_loop : int
        Keys per loop (1 to ``MAX_KEYS_PER_LOOP``).
    acceptable_stale_perc : int
        The repeat threshold in percent.

    Returns
    -------
    float
        Mean loops per call (inf if it never stops).
    """
    repeat = theory_repeat_probability(stale_fraction, algorithm, keys_per_loop, acceptable_stale_perc)
    return math.inf if repeat >= 1.0 else 1.0 / (1.0 - repeat)


def theory_active_expire_rate_per_s(stale_fraction: float, config: ExpireConfig | None = None) -> float:
    """Keys per second the slow cycle expires when a fraction ``p`` of keys with a TTL are stale.

    Each call runs loops of ``n`` samples until one fails the repeat test, so the number of loops is
    geometric with mean 1 / (1 - P(repeat)); by Wald's identity the expired keys per call average
    ``n p / (1 - P(repeat))``. Times ``hz`` calls per second. This ignores the time limit, so it holds
    while that mean number of loops costs less than the slow cycle's budget (see
    :func:`theory_equilibrium_stale_fraction`).

    Parameters
    ----------
    stale_fraction : float
        Share p of sampled keys that are expired.
    config : ExpireConfig, optional
        Server settings.

    Returns
    -------
    float
        Keys expired per second (inf when the loop never stops on its own).
    """
    settings = config if config is not None else ExpireConfig()
    validate.instance("config", settings, ExpireConfig)
    p = validate.probability("stale_fraction", stale_fraction)
    params = effort_parameters(settings.active_expire_effort, settings.hz, settings.algorithm)
    n = params["keys_per_loop"]
    repeat = theory_repeat_probability(p, settings.algorithm, n, params["acceptable_stale_perc"])
    if repeat >= 1.0:
        return math.inf
    return settings.hz * n * p / (1.0 - repeat)


def theory_equilibrium_stale_fraction(expiring_per_s: float, config: ExpireConfig | None = None) -> dict:
    """The stale fraction at which the slow cycle expires keys as fast as they expire (no reads).

    Solves ``theory_active_expire_rate_per_s(p) = expiring_per_s`` by bisection. Also says whether the
    slow cycle's time limit would cut the mean call short at that point (then fast cycles join in and
    the true equilibrium is lower than this uncapped value).

    Parameters
    ----------
    expiring_per_s : float
        Keys whose TTL passes per second, none of them read.
    config : ExpireConfig, optional
        Server settings.

    Returns
    -------
    dict
        ``stale_fraction``, ``loops_per_call``, ``call_us`` (model CPU time of a mean call),
        ``capped`` (bool).
    """
    settings = config if config is not None else ExpireConfig()
    validate.instance("config", settings, ExpireConfig)
    rate = validate.positive_float("expiring_per_s", expiring_per_s)
    params = effort_parameters(settings.active_expire_effort, settings.hz, settings.algorithm)
    low, high = 0.0, 1.0
    for _ in range(40):  # bisection on an increasing function: p to within 1e-12
        middle = 0.5 * (low + high)
        if theory_active_expire_rate_per_s(middle, settings) < rate:
            low = middle
        else:
            high = middle
    p = 0.5 * (low + high)
    n = params["keys_per_loop"]
    repeat = theory_repeat_probability(p, settings.algorithm, n, params["acceptable_stale_perc"])
    loops = 1.0 / (1.0 - repeat) if repeat < 1 else math.inf
    call_us = loops * n * (settings.check_cost_us + p * settings.delete_cost_us)
    return {
        "stale_fraction": p,
        "loops_per_call": loops,
        "call_us": call_us,
        "capped": bool(call_us > params["slow_timelimit_us"]),
    }


def ttl_reply(remaining_ms: float | None, has_expire: bool = True, milliseconds: bool = False) -> int:
    """What ``TTL`` (or ``PTTL``) replies, as ``ttlGenericCommand`` computes it.

    ``remaining_ms`` is ``None`` for a missing key (reply -2); ``has_expire=False`` is a key without a
    TTL (-1). Otherwise the remaining time, floored at 0, rounded to the nearest second:
    ``(ms + 500) / 1000``. So ``TTL`` replies 0 for a live key with less than 0.5 s left.

    Parameters
    ----------
    remaining_ms : float or None
        Time left in milliseconds; None for a missing key.
    has_expire : bool
        Whether the key has a TTL at all.
    milliseconds : bool
        ``PTTL`` instead of ``TTL``.

    Returns
    -------
    int
        The reply.
    """
    if remaining_ms is None:
        return -2
    if not isinstance(has_expire, bool):
        raise TypeError(f"has_expire must be a bool, got {has_expire!r}")
    if not has_expire:
        return -1
    remaining = max(int(validate.finite_float("remaining_ms", remaining_ms)), 0)
    return remaining if milliseconds else (remaining + 500) // 1000


# --------------------------------------------------------------------------- the active cycle over time


@dataclass(frozen=True)
class ExpireConfig:
    """A Redis server's expiry settings plus the model's CPU costs.

    Attributes
    ----------
    hz : int
        ``hz`` (default 10): slow cycles per second.
    active_expire_effort : int
        ``active-expire-effort`` 1..10 (default 1; Redis 6.0+ only).
    algorithm : {"cursor", "random"}
        ``cursor``: Redis 6.0+ (scan the expires table with a cursor); ``random``: Redis 5 and earlier.
    check_cost_us : float
        Model: CPU time to look at one key's expire entry that has not expired.
    delete_cost_us : float
        Model: extra CPU time to delete one expired small key and propagate its DEL.
    event_loop_period_us : float
        Model: time between ``beforeSleep`` calls on a busy server (when fast cycles may run).
    stale_trigger_fixed : bool
        Model redis#15412: let the fast cycle also start when ``expired_stale_perc`` exceeds the
        acceptable stale percentage. In released code the comparison mixes a 0-1 fraction with a
        percentage, so that trigger never fires (``False``, the default).
    """

    hz: int = 10
    active_expire_effort: int = 1
    algorithm: str = "cursor"
    check_cost_us: float = 0.25
    delete_cost_us: float = 1.5
    event_loop_period_us: float = 1000.0
    stale_trigger_fixed: bool = False

    def __post_init__(self) -> None:
        effort_parameters(self.active_expire_effort, self.hz, self.algorithm)
        validate.positive_float("check_cost_us", self.check_cost_us)
        validate.non_negative_float("delete_cost_us", self.delete_cost_us)
        validate.positive_float("event_loop_period_us", self.event_loop_period_us)
        if not isinstance(self.stale_trigger_fixed, bool):
            raise TypeError(f"stale_trigger_fixed must be a bool, got {self.stale_trigger_fixed!r}")


def expiry_population(
    n_keys: int,
    pattern: str = "spread",
    ttl_s: float = 60.0,
    spread_s: float = 60.0,
    seed: int | np.random.Generator | None = 0,
) -> np.ndarray:
    """Expiry times (seconds from now) of ``n_keys`` keys written at time 0.

    ``together``: every key gets the same TTL (a batch job, a cache warmed in one go); ``spread``: TTLs
    uniform over ``ttl_s`` +/- ``spread_s``/2 (jittered TTLs, or keys written over a period).

    Parameters
    ----------
    n_keys : int
        Keys (1 to ``MAX_SIM_KEYS``).
    pattern : {"spread", "together"}
        Jittered TTLs or one TTL for all.
    ttl_s : float
        Mean TTL in seconds.
    spread_s : float
        Width of the uniform spread (``spread`` only).
    seed : int, numpy.random.Generator or None
        For the spread.

    Returns
    -------
    numpy.ndarray
        Expiry time of each key, seconds.
    """
    n = validate.bounded_int("n_keys", n_keys, MAX_SIM_KEYS)
    kind = validate.choice("pattern", pattern, ("spread", "together"))
    ttl = validate.positive_float("ttl_s", ttl_s)
    width = validate.non_negative_float("spread_s", spread_s)
    if kind == "together":
        return np.full(n, ttl)
    if width / 2 >= ttl:
        raise ValueError(f"spread_s must be < 2 * ttl_s so every TTL is positive, got {width} vs {ttl}")
    rng = validate.rng_from_seed(seed)
    return rng.uniform(ttl - width / 2, ttl + width / 2, n)


def steady_population(
    write_rate_per_s: float,
    ttl_s: float,
    duration_s: float,
    jitter: float = 0.1,
    seed: int | np.random.Generator | None = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Keys written at a steady rate, each with a TTL of ``ttl_s`` +/- ``jitter`` (a fraction).

    After one TTL the keyspace holds about ``write_rate_per_s * ttl_s`` keys and keys expire at the
    write rate: the steady state in which :func:`theory_equilibrium_stale_fraction` applies.

    Parameters
    ----------
    write_rate_per_s : float
        Keys written per second.
    ttl_s : float
        Mean TTL in seconds.
    duration_s : float
        Seconds of writes.
    jitter : float
        Relative TTL jitter in [0, 1).
    seed : int, numpy.random.Generator or None
        For write times and TTLs.

    Returns
    -------
    (written_at_s, expire_at_s) : two arrays
    """
    rate = validate.positive_float("write_rate_per_s", write_rate_per_s)
    ttl = validate.positive_float("ttl_s", ttl_s)
    duration = validate.positive_float("duration_s", duration_s)
    spread = validate.float_in_range("jitter", jitter, 0.0, 1.0, high_inclusive=False)
    if rate * duration > MAX_SIM_KEYS:
        raise ValueError(
            f"write_rate_per_s * duration_s must be <= {MAX_SIM_KEYS:,} keys, got {rate * duration:,.0f}"
        )
    rng = validate.rng_from_seed(seed)
    written = np.sort(rng.uniform(0.0, duration, rng.poisson(rate * duration)))
    expires = written + ttl * rng.uniform(1.0 - spread, 1.0 + spread, written.size)
    return written, expires


class _Keyspace:
    """Keys with their expiry times, visited in hash-table order by a scan cursor (like dictScan).

    ``order`` lists key ids in bucket order (a random permutation: the hash); deleted keys stay in it
    until a compaction drops them, so scans and samples skip them as Redis skips empty buckets.
    """

    def __init__(self, expire_at_s: np.ndarray, written_at_s: np.ndarray, rng: np.random.Generator):
        self.expire_at = expire_at_s.astype(float)
        # Keys are written in time order; a write lands in a random bucket (the hash), which may be
        # ahead of the cursor or behind it.
        self.write_order = np.argsort(written_at_s, kind="stable")
        self.write_times = written_at_s[self.write_order]
        self.n_written = 0
        self.alive = np.zeros(expire_at_s.size, dtype=bool)
        self.deleted = np.zeros(expire_at_s.size, dtype=bool)
        self.n_deleted = 0
        self.sorted_expire = np.sort(self.expire_at)
        self.n_alive = 0
        self.order = rng.permutation(expire_at_s.size)
        self.cursor = 0  # position in order
        self.rng = rng

    def write_until(self, now_s: float) -> None:
        upto = int(np.searchsorted(self.write_times, now_s, side="right"))
        if upto > self.n_written:
            new = self.write_order[self.n_written : upto]
            self.alive[new] = True
            self.n_alive += int(new.size)
            self.n_written = upto

    def stale(self, now_s: float) -> int:
        # Only expired keys are ever deleted, and a key expires after it is written, so the stale keys
        # are "all keys whose expiry has passed" minus "keys deleted": two counts, no scan.
        return int(np.searchsorted(self.sorted_expire, now_s, side="left")) - self.n_deleted

    def _maybe_compact(self) -> None:
        pending = self.order.size - self.n_written  # upper bound on unwritten keys still in order
        if self.order.size <= 1024 or self.order.size <= 2 * max(self.n_alive + max(pending, 0), 1):
            return
        keep = ~self.deleted[self.order]  # keys not yet written keep their bucket
        # The cursor keeps its place among the kept keys.
        self.cursor = int(np.count_nonzero(keep[: self.cursor]))
        self.order = self.order[keep]
        if self.cursor >= self.order.size:
            self.cursor = 0

    def next_positions(self, count: int) -> np.ndarray:
        """Positions (in ``order``) of the next ``count`` live keys after the cursor, wrapping once."""
        self._maybe_compact()
        size = self.order.size
        picked: list = []
        needed = count
        start = self.cursor
        scanned = 0
        while needed > 0 and scanned < size:  # bounded: at most one full pass
            window = min(size - start, max(4 * needed, 256))
            found = np.flatnonzero(self.alive[self.order[start : start + window]]) + start
            taken = found[:needed]
            picked.append(taken)
            needed -= taken.size
            advance = window if taken.size == found.size else int(taken[-1] - start + 1)
            scanned += advance
            start += advance
            if start >= size:
                start = 0
        self.cursor = start
        return np.concatenate(picked) if picked else np.empty(0, dtype=np.int64)

    def random_positions(self, count: int) -> np.ndarray:
        """``count`` positions of live keys drawn uniformly with replacement (like dictGetRandomKey)."""
        self._maybe_compact()
        out: list = []
        needed = count
        if self.n_alive == 0:
            return np.empty(0, dtype=np.int64)
        for _ in range(64):  # bounded: after compaction a good share of the positions are live
            live_share = max(self.n_alive / self.order.size, 0.01)
            draws = self.rng.integers(0, self.order.size, int(1.2 * needed / live_share) + 8)
            good = draws[self.alive[self.order[draws]]][:needed]
            out.append(good)
            needed -= good.size
            if needed == 0:
                break
        return np.concatenate(out) if out else np.empty(0, dtype=np.int64)

    def delete(self, ids: np.ndarray) -> int:
        unique = np.unique(ids)
        unique = unique[self.alive[unique]]
        self.alive[unique] = False
        self.deleted[unique] = True
        self.n_deleted += int(unique.size)
        self.n_alive -= int(unique.size)
        return int(unique.size)


def _run_cycle(
    space: _Keyspace, now_s: float, timelimit_us: float, params: dict, config: ExpireConfig
) -> tuple[int, int, float, bool]:
    """One call of activeExpireCycle on one database: (sampled, expired, elapsed_us, hit_time_limit).

    Loops are evaluated in blocks of up to 64 with numpy; the block is cut at the first loop where the
    C code would stop (time check every 16th loop, or the repeat test failing), so the result is the
    same as running the loops one by one.
    """
    sampled_total = expired_total = 0
    elapsed = 0.0
    iteration = 0
    per_loop = params["keys_per_loop"]
    max_loops = 10_000_000  # bounded even with zero costs
    while iteration < max_loops:
        if space.n_alive == 0:
            return sampled_total, expired_total, elapsed, False
        n = min(per_loop, space.n_alive)
        loops = 1 if space.n_alive < per_loop * 128 else 64
        if config.algorithm == "cursor":
            positions = space.next_positions(n * loops)
        else:
            positions = space.random_positions(n * loops)
        loops = positions.size // n
        if loops == 0:
            return sampled_total, expired_total, elapsed, False
        positions = positions[: loops * n].reshape(loops, n)
        ids = space.order[positions]
        is_expired = space.expire_at[ids] < now_s
        expired_per_loop = is_expired.sum(axis=1)
        cost = n * config.check_cost_us + expired_per_loop * config.delete_cost_us
        cumulative = elapsed + np.cumsum(cost)
        numbers = iteration + 1 + np.arange(loops)
        over_time = (numbers % TIME_CHECK_EVERY == 0) & (cumulative > timelimit_us)
        if config.algorithm == "cursor":
            stop = expired_per_loop * 100 // n <= params["acceptable_stale_perc"]
        else:
            stop = expired_per_loop <= params["repeat_threshold_keys"]
        # The C loop checks the clock before the repeat test, so a time-out wins a tie.
        ends = np.flatnonzero(over_time | stop)
        last = int(ends[0]) if ends.size else loops - 1
        space.delete(ids[: last + 1][is_expired[: last + 1]])
        sampled_total += (last + 1) * n
        expired_total += int(expired_per_loop[: last + 1].sum())
        elapsed = float(cumulative[last])
        iteration += last + 1
        if config.algorithm == "cursor" and last + 1 < loops:
            # Loops after the stop were only peeked at: put the cursor back after the last one done.
            space.cursor = int(positions[last, -1]) + 1
            if space.cursor >= space.order.size:
                space.cursor = 0
        if ends.size:
            return sampled_total, expired_total, elapsed, bool(over_time[last])
    return sampled_total, expired_total, elapsed, True


def simulate_expiry(
    expire_at_s: np.ndarray,
    duration_s: float,
    config: ExpireConfig | None = None,
    reads_per_s: float = 0.0,
    seed: int | np.random.Generator | None = 0,
    written_at_s: np.ndarray | None = None,
) -> pd.DataFrame:
    """Run Redis's active expiry (and optional lazy expiry on reads) over a keyspace for ``duration_s``.

    Slow cycles run every ``1/hz`` s with the slow time limit. After any cycle that hit its time limit,
    ``beforeSleep`` runs fast cycles (budget ``fast_duration_us``, at most one per ``2 *
    fast_duration_us``) until one finishes within its budget. Reads at ``reads_per_s`` hit uniformly
    random keys between cycles; a read of an expired key deletes it (lazy expiry).

    Parameters
    ----------
    expire_at_s : array
        Expiry time of every key, seconds from the start (see :func:`expiry_population`).
    duration_s : float
        Simulated time.
    config : ExpireConfig
        Server settings and model costs.
    reads_per_s : float
        Client reads per second (uniform over the keys written), for lazy expiry.
    seed : int or Generator
    written_at_s : array, optional
        When each key is written (default: all at time 0); see :func:`steady_population`.

    Returns
    -------
    pandas.DataFrame
        One row per cycle that ran: ``t_s`` (start), ``kind`` (``slow``/``fast``), ``sampled``,
        ``expired``, ``elapsed_us``, ``time_cap_hit``, ``lazy_expired`` (deleted by reads since the
        previous cycle), ``stale_keys`` (logically expired keys still in memory after the cycle),
        ``live_keys``, ``expired_stale_perc`` (Redis's running estimate, in %), ``true_stale_perc``,
        ``time_cap_count`` (``expired_time_cap_reached_count``), ``cycle_cpu_ms`` (cumulative
        ``expire_cycle_cpu_milliseconds``).
    """
    expiries = np.asarray(expire_at_s, dtype=float)
    if expiries.ndim != 1 or expiries.size == 0 or not np.all(np.isfinite(expiries)):
        raise ValueError("expire_at_s must be a non-empty 1-d array of finite times")
    if expiries.size > MAX_SIM_KEYS:
        raise ValueError(f"expire_at_s must hold at most {MAX_SIM_KEYS:,} keys, got {expiries.size:,}")
    duration = validate.float_in_range("duration_s", duration_s, 0.0, MAX_SIM_DURATION_S, low_inclusive=False)
    settings = config if config is not None else ExpireConfig()
    if not isinstance(settings, ExpireConfig):
        raise TypeError(f"config must be an ExpireConfig, got {type(settings).__name__}")
    read_rate = validate.non_negative_float("reads_per_s", reads_per_s)
    if read_rate * duration > MAX_READS:
        raise ValueError(
            f"reads_per_s * duration_s must be <= {MAX_READS:,} reads, got {read_rate * duration:,.0f}"
        )
    rng = validate.rng_from_seed(seed)
    params = effort_parameters(settings.active_expire_effort, settings.hz, settings.algorithm)
    if written_at_s is None:
        writes = np.zeros(expiries.size)
    else:
        writes = np.asarray(written_at_s, dtype=float)
        if writes.shape != expiries.shape or not np.all(np.isfinite(writes)) or np.any(writes > expiries):
            raise ValueError("written_at_s must be finite, one per key, and no later than its expiry")
    space = _Keyspace(expiries, writes, rng)

    period_s = 1.0 / settings.hz
    fast_gap_s = max(settings.event_loop_period_us, 2 * params["fast_duration_us"]) / 1e6
    slow_limit = params["slow_timelimit_us"]
    fast_limit = params["fast_duration_us"]
    rows = []
    stale_estimate = 0.0  # server.stat_expired_stale_perc, a fraction
    cap_count = 0
    cpu_us = 0.0
    timelimit_exit = False
    last_read_s = 0.0
    next_slow_s = 0.0
    now = 0.0
    max_cycles = int(duration * (settings.hz + 1e6 / max(settings.event_loop_period_us, 1.0))) + 10
    for _ in range(max_cycles):  # bounded: time advances by at least one fast gap per cycle
        # activeExpireCycle(FAST) returns at once unless the last cycle hit its time limit. Its other
        # trigger compares a 0-1 fraction with a percentage, so it never fires unless "fixed".
        fast_ok = timelimit_exit or (
            settings.stale_trigger_fixed
            and settings.algorithm == "cursor"
            and stale_estimate * 100 >= params["acceptable_stale_perc"]
        )
        if fast_ok and now + fast_gap_s < next_slow_s:
            kind, start, limit = "fast", now + fast_gap_s, fast_limit
        else:
            kind, start, limit = "slow", next_slow_s, slow_limit
            next_slow_s += period_s
        if start >= duration:
            break
        space.write_until(start)
        lazy = 0
        if read_rate > 0 and start > last_read_s:
            reads = rng.poisson(read_rate * (start - last_read_s))
            lazy = _lazy_expire(space, rng.integers(0, max(space.n_written, 1), reads), start)
            last_read_s = start
        sampled, expired, elapsed, capped = _run_cycle(space, start, limit, params, settings)
        timelimit_exit = capped
        cap_count += int(capped)
        cpu_us += elapsed
        current = expired / sampled if sampled else 0.0
        stale_estimate = current * STALE_ESTIMATE_WEIGHT + stale_estimate * (1 - STALE_ESTIMATE_WEIGHT)
        stale_now = space.stale(start)
        rows.append(
            {
                "t_s": start,
                "kind": kind,
                "sampled": sampled,
                "expired": expired,
                "elapsed_us": elapsed,
                "time_cap_hit": capped,
                "lazy_expired": lazy,
                "stale_keys": stale_now,
                "live_keys": space.n_alive,
                "expired_stale_perc": stale_estimate * 100,
                "true_stale_perc": 100.0 * stale_now / space.n_alive if space.n_alive else 0.0,
                "time_cap_count": cap_count,
                "cycle_cpu_ms": cpu_us / 1000,
            }
        )
        now = start + elapsed / 1e6
    return pd.DataFrame(rows)


def _lazy_expire(space: _Keyspace, read_positions: np.ndarray, now_s: float) -> int:
    # expireIfNeeded() on every lookup: a read of a key that is present but expired deletes it.
    # Reads go uniformly to the keys written so far.
    if space.n_written == 0:
        return 0
    read_ids = space.write_order[read_positions]
    expired = read_ids[space.alive[read_ids] & (space.expire_at[read_ids] < now_s)]
    return space.delete(expired) if expired.size else 0


def summarize_expiry(run: pd.DataFrame, key_bytes: int = 100) -> pd.Series:
    """Headline numbers of one :func:`simulate_expiry` run.

    Parameters
    ----------
    run : pandas.DataFrame
        One :func:`simulate_expiry` output.
    key_bytes : int
        Bytes per key.

    Returns
    -------
    pandas.Series
        ``peak_stale_keys``, ``peak_stale_mb`` (at ``key_bytes`` per key), ``stale_key_seconds`` (area
        under the stale-keys curve), ``time_cap_count``, ``fast_cycles``, ``expire_cpu_share`` (CPU
        time of the cycles / run time), ``cleared_s`` (first cycle after which no stale key is left
        and none is ever left again; NaN if never).
    """
    if not isinstance(run, pd.DataFrame) or "stale_keys" not in run.columns:
        raise TypeError("run must come from simulate_expiry")
    size = validate.positive_int("key_bytes", key_bytes)
    if run.empty:
        raise ValueError("run has no cycles")
    times = run["t_s"].to_numpy()
    stale = run["stale_keys"].to_numpy()
    span = float(times[-1] - times[0]) or 1.0
    nonzero = np.flatnonzero(stale > 0)
    cleared = float(times[nonzero[-1] + 1]) if nonzero.size and nonzero[-1] + 1 < times.size else math.nan
    if not nonzero.size:
        cleared = float(times[0])
    return pd.Series(
        {
            "peak_stale_keys": int(stale.max()),
            "peak_stale_mb": float(stale.max() * size / 1e6),
            "stale_key_seconds": float(np.sum(stale[:-1] * np.diff(times))),
            "time_cap_count": int(run["time_cap_count"].iloc[-1]),
            "fast_cycles": int((run["kind"] == "fast").sum()),
            "expire_cpu_share": float(run["elapsed_us"].sum() / 1e6 / span),
            "cleared_s": cleared,
        }
    )


def summarize_equilibrium(
    runs: pd.DataFrame, configs: dict, expiring_per_s: float, from_s: float
) -> pd.DataFrame:
    """Steady-state stale share of each labelled run against :func:`theory_equilibrium_stale_fraction`.

    Parameters
    ----------
    runs : DataFrame
        Concatenated :func:`simulate_expiry` outputs with a ``label`` column.
    configs : dict
        ``label -> ExpireConfig`` for the runs to compare.
    expiring_per_s : float
        Keys expiring per second in the steady state (the write rate of :func:`steady_population`).
    from_s : float
        Only slow cycles after this time count (the keyspace has settled).

    Returns
    -------
    pandas.DataFrame
        Indexed by label: ``theory_perc``, ``capped_in_theory``, ``estimate_perc`` (mean
        ``expired_stale_perc``), ``true_perc``, ``stale_keys`` (mean).
    """
    if not isinstance(runs, pd.DataFrame) or "label" not in runs.columns:
        raise TypeError("runs must be simulate_expiry outputs with a 'label' column")
    rate = validate.positive_float("expiring_per_s", expiring_per_s)
    start = validate.non_negative_float("from_s", from_s)
    steady = runs[(runs["kind"] == "slow") & (runs["t_s"] > start)]
    rows = []
    for name, config in configs.items():
        theory = theory_equilibrium_stale_fraction(rate, config)
        seen = steady[steady["label"] == name]
        if seen.empty:
            raise ValueError(f"no slow cycles after from_s={start} for label {name!r}")
        rows.append(
            {
                "setting": name,
                "theory_perc": 100 * theory["stale_fraction"],
                "capped_in_theory": theory["capped"],
                "estimate_perc": float(seen["expired_stale_perc"].mean()),
                "true_perc": float(seen["true_stale_perc"].mean()),
                "stale_keys": float(seen["stale_keys"].mean()),
            }
        )
    return pd.DataFrame(rows).set_index("setting")


# --------------------------------------------------------------------------- freeing big keys


def simulate_free_stall(
    n_elements: int,
    command: str = "DEL",
    free_ns_per_element: float = 50.0,
    arrival_rate_per_s: float = 50_000.0,
    service_s: float = 10e-6,
    duration_s: float = 2.0,
    at_s: float = 0.5,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Latency of ordinary requests when a big key is deleted on Redis's single-threaded event loop.

    ``DEL`` frees every element on the main thread: a job of ``n_elements * free_ns_per_element``.
    ``UNLINK`` (Redis 4.0+; also DEL, expiry and eviction with the ``lazyfree-lazy-*`` options) only
    unlinks the key when its free effort exceeds ``LAZYFREE_THRESHOLD`` (64) and hands the freeing to a
    background thread; below the threshold it frees inline like DEL. The server is one FIFO queue with
    one server (:func:`syslab.queueing.simulate_pool` with a pool of one).

    Parameters
    ----------
    n_elements : int
        Elements of the deleted key.
    command : {"DEL", "UNLINK"}
        How it is deleted.
    free_ns_per_element : float
        CPU time to free one element on the main thread (ns).
    arrival_rate_per_s : float
        Ordinary commands per second.
    service_s : float
        Time one ordinary command takes.
    duration_s : float
        Simulated seconds (at most 60).
    at_s : float
        When the big key is deleted.
    seed : int, numpy.random.Generator or None
        For the arrivals.

    Returns
    -------
    pandas.DataFrame
        One row per request: ``arrival_s``, ``wait_s``, ``service_s``, ``latency_ms``, ``is_delete``,
        ``command``.
    """
    n = validate.positive_int("n_elements", n_elements)
    kind = validate.choice("command", command, ("DEL", "UNLINK"))
    free_ns = validate.positive_float("free_ns_per_element", free_ns_per_element)
    rate = validate.positive_float("arrival_rate_per_s", arrival_rate_per_s)
    service_s = validate.positive_float("service_s", service_s)
    duration = validate.float_in_range("duration_s", duration_s, 0.0, 60.0, low_inclusive=False)
    at = validate.float_in_range("at_s", at_s, 0.0, duration)
    if rate * service_s >= 1:
        raise ValueError("arrival_rate_per_s * service_s must be < 1 (the server would be overloaded)")
    if rate * duration > MAX_STALL_REQUESTS:
        raise ValueError(f"arrival_rate_per_s * duration_s must be <= {MAX_STALL_REQUESTS:,} requests")
    n = validate.bounded_int("n_elements", n, 10**10)
    rng = validate.rng_from_seed(seed)
    arrivals = np.sort(rng.uniform(0.0, duration, rng.poisson(rate * duration)))
    position = int(np.searchsorted(arrivals, at))
    arrivals = np.insert(arrivals, position, at)
    services = np.full(arrivals.size, service_s)
    inline = kind == "DEL" or n <= LAZYFREE_THRESHOLD
    services[position] = service_s + (n * free_ns / 1e9 if inline else 0.0)
    run = queueing.simulate_pool(
        queueing.PoolConfig(size=1), arrivals_s=arrivals, services_s=services, seed=rng
    )
    is_delete = np.zeros(arrivals.size, dtype=bool)
    is_delete[position] = True
    return pd.DataFrame(
        {
            "arrival_s": run["arrival_s"],
            "wait_s": run["wait_s"],
            "service_s": run["service_s"],
            "latency_ms": (run["wait_s"] + run["service_s"]) * 1000,
            "is_delete": is_delete,
            "command": kind,
        }
    )


def measure_free_cost(sizes: list, repeats: int = 3) -> Run:
    """Real: time to free containers of ``n`` small objects on this machine (CPython's allocator).

    The same kind of work as Redis freeing a big hash or set on DEL: one deallocation per element.
    The garbage collector is paused while timing so only the freeing is measured.

    Parameters
    ----------
    sizes : list of int
        Container sizes (elements), each at most ``MAX_FREE_ELEMENTS``; at most 10 sizes.
    repeats : int
        Tries per size, 1 to ``MAX_REPEATS``; the best is kept.

    Returns
    -------
    experiment.Run
        ``frame``: ``n_elements``, ``free_ms`` (best of ``repeats``), ``ns_per_element``;
        ``summary``: ``ns_per_element`` (largest size).
    """
    counts = validate.sequence_of_positive_ints("sizes", sizes)
    tries = validate.bounded_int("repeats", repeats, MAX_REPEATS)
    if len(counts) > 10 or max(counts) > MAX_FREE_ELEMENTS:
        raise ValueError(f"sizes must hold at most 10 sizes, each <= {MAX_FREE_ELEMENTS:,} (memory budget)")
    rows = []
    enabled = gc.isenabled()
    gc.disable()
    try:
        for n in counts:
            best = math.inf
            for _ in range(tries):
                container = {f"field:{i}": f"value:{i}" for i in range(n)}  # like a Redis hash
                started = time.perf_counter()
                del container
                best = min(best, time.perf_counter() - started)
            rows.append({"n_elements": n, "free_ms": best * 1000, "ns_per_element": best / n * 1e9})
    finally:
        if enabled:
            gc.enable()
    frame = pd.DataFrame(rows)
    return Run.create(frame, {"ns_per_element": float(frame["ns_per_element"].iloc[-1])})


# --------------------------------------------------------------------------- eviction


def eviction_hit_ratio(
    keys: np.ndarray,
    capacity: int,
    policy: str = "approx-lru",
    samples: int = 5,
    seed: int | np.random.Generator | None = 0,
) -> float:
    """Hit ratio of a cache of ``capacity`` keys under one eviction policy, on a key sequence.

    - ``exact-lru``: evict the least recently used key.
    - ``approx-lru``: Redis's ``allkeys-lru`` since 3.0: each eviction samples ``samples`` keys
      (``maxmemory-samples``, default 5), merges them by idle time into a pool of ``EVPOOL_SIZE`` (16)
      candidates kept across evictions, and evicts the idlest candidate that still exists.
    - ``random``: ``allkeys-random``.

    Idle time is counted in requests, so the model breaks ties Redis cannot: Redis's LRU clock has a
    resolution of 1000 ms (``LRU_CLOCK_RESOLUTION`` in ``src/server.h``), so keys touched within the
    same second look equally idle to it. The model therefore slightly flatters approximated LRU.

    Parameters
    ----------
    keys : array of int
        The request sequence (key ids), at most ``MAX_SIM_KEYS`` requests.
    capacity : int
        Keys the cache holds (1 to ``MAX_SIM_KEYS``).
    policy : {"exact-lru", "approx-lru", "random"}
        The eviction policy.
    samples : int
        ``maxmemory-samples`` (1 to 64).
    seed : int, numpy.random.Generator or None
        For the samples.

    Returns
    -------
    float
        Hits / requests.
    """
    sequence = np.asarray(keys)
    if sequence.ndim != 1 or sequence.size == 0 or sequence.size > MAX_SIM_KEYS:
        raise ValueError(f"keys must be a non-empty 1-d sequence of at most {MAX_SIM_KEYS:,} requests")
    size = validate.bounded_int("capacity", capacity, MAX_SIM_KEYS)
    kind = validate.choice("policy", policy, ("exact-lru", "approx-lru", "random"))
    k = validate.int_in_range("samples", samples, 1, 64)
    rng = validate.rng_from_seed(seed)
    hits = 0
    if kind == "exact-lru":
        cache: OrderedDict = OrderedDict()
        for key in sequence.tolist():
            if key in cache:
                cache.move_to_end(key)
                hits += 1
            else:
                cache[key] = None
                if len(cache) > size:
                    cache.popitem(last=False)
        return hits / sequence.size
    slot_of: dict = {}  # key -> index in members, for O(1) random sampling and removal
    members: list = []
    last_used: dict = {}
    pool: list = []  # [(idle when pooled, key)], ascending: the idlest candidate is last
    # Uniform numbers drawn up front: one per sampled key (a numpy call per eviction would dominate).
    uniforms = rng.random(sequence.size * k + k).tolist()
    for now, key in enumerate(sequence.tolist()):
        if key in slot_of:
            hits += 1
            last_used[key] = now
            continue
        if len(members) >= size:
            draws = uniforms[now * k : now * k + k]
            if kind == "random":
                victim = members[int(draws[0] * len(members))]
            else:
                victim = _pool_evict(pool, members, last_used, slot_of, draws, now)
            _remove(victim, members, slot_of)
            del last_used[victim]
        slot_of[key] = len(members)
        members.append(key)
        last_used[key] = now
    return hits / sequence.size


def _remove(key: object, members: list, slot_of: dict) -> None:
    index = slot_of.pop(key)
    tail = members.pop()
    if index < len(members):
        members[index] = tail
        slot_of[tail] = index


def _pool_evict(pool: list, members: list, last_used: dict, slot_of: dict, draws: list, now: int) -> object:
    """evictionPoolPopulate then the pick in performEvictions (src/evict.c).

    Sampled keys enter the pool, sorted by idle time computed now, if it has a free slot or if they are
    idler than its least idle entry (which then drops out). The eviction takes the idlest entry whose
    key still exists -- without re-checking its idle time, as Redis does.
    """
    count = len(members)
    for u in draws:
        candidate = members[int(u * count)]
        idle = now - last_used[candidate]
        if len(pool) < EVPOOL_SIZE:
            bisect.insort(pool, (idle, now, candidate))
        elif idle > pool[0][0]:
            pool.pop(0)
            bisect.insort(pool, (idle, now, candidate))
    while pool:  # bounded by the pool size
        candidate = pool.pop()[2]
        if candidate in slot_of:
            return candidate
    return members[int(draws[0] * count)]  # every candidate was a ghost: fall back


# --------------------------------------------------------------------------- reference tables


def zero_ttl_cases() -> pd.DataFrame:
    """What "TTL = 0" can mean, and whether memory is freed at once (from expire.c and t_string.c).

    Returns
    -------
    pandas.DataFrame
        ``what you did or saw``, ``what Redis does``, ``memory freed at once?``.
    """
    rows = [
        (
            "EXPIRE key 0 (or a negative TTL, or EXPIREAT in the past) on a primary",
            "deleted at once; replicated and written to the AOF as DEL (UNLINK if lazyfree-lazy-expire yes)",
            "yes, unless lazyfree-lazy-expire frees it in the background",
        ),
        (
            "the same command replayed on a replica or while loading the AOF",
            "stored with an expiry in the past; the key waits for the primary's DEL",
            "no: until the DEL arrives (reads already return nil since 3.2)",
        ),
        ("SET key value EX 0", "rejected: ERR invalid expire time in 'set' command", "nothing was written"),
        (
            "TTL key replies 0",
            "a live key with less than 0.5 s left: TTL rounds (ms + 500) / 1000",
            "no: the key has not expired yet",
        ),
        (
            "a TTL that passed and nobody reads the key",
            "logically expired, physically present",
            "only when the active cycle samples it",
        ),
        ("memcached exptime 0", "never expires", "no: 0 means forever there"),
        (
            "key deleted, RSS does not drop",
            "the allocator keeps freed pages (fragmentation)",
            "freed inside Redis, not returned to the OS",
        ),
    ]
    return pd.DataFrame(rows, columns=["what you did or saw", "what Redis does", "memory freed at once?"])


def info_fields() -> pd.DataFrame:
    """The INFO fields that show whether expiry keeps up, and what values mean trouble.

    Returns
    -------
    pandas.DataFrame
        ``field``, ``section``, ``meaning``, ``trouble when``.
    """
    rows = [
        (
            "expired_keys",
            "stats",
            "keys removed by expiry (lazy + active), cumulative",
            "compare its rate with the rate keys are written with a TTL",
        ),
        (
            "expired_stale_perc",
            "stats",
            "running estimate of expired-but-present keys among those sampled",
            "steadily above the acceptable stale % (10 at effort 1): the sampler is behind",
        ),
        (
            "expired_time_cap_reached_count",
            "stats",
            "slow or fast cycles that ran out of time",
            "growing every minute: expiry needs more time than its CPU budget",
        ),
        (
            "expire_cycle_cpu_milliseconds",
            "stats",
            "CPU time spent in active expiry, cumulative",
            "its rate approaching 250 ms/s (25% of a core) means the cycle is saturated",
        ),
        (
            "evicted_keys",
            "stats",
            "keys removed by maxmemory eviction",
            "non-zero with volatile-* policies: expired keys were not cleaned in time",
        ),
        (
            "mem_fragmentation_ratio",
            "memory",
            "RSS / used memory",
            "above ~1.5 after mass expiry: memory freed inside Redis but kept by the allocator",
        ),
        (
            "lazyfree_pending_objects",
            "memory",
            "objects waiting for the background free thread",
            "growing: frees are queued faster than the thread releases them",
        ),
    ]
    return pd.DataFrame(rows, columns=["field", "section", "meaning", "trouble when"])


# --------------------------------------------------------------------------- plots


def plot_stale_memory(runs: pd.DataFrame, ax: Axes | None = None, key_bytes: int = 100) -> Axes:
    """Memory held by logically expired keys over time, one line per ``label`` in ``runs``.

    Parameters
    ----------
    runs : pandas.DataFrame
        :func:`simulate_expiry` outputs with a ``label`` column.
    ax : matplotlib Axes, optional
        Where to draw.
    key_bytes : int
        Bytes per key.

    Returns
    -------
    matplotlib.axes.Axes
    """
    validate.frame_columns("runs", runs, ["label", "t_s", "stale_keys"])
    key_bytes = validate.positive_int("key_bytes", key_bytes)
    ax = axes_or_new(ax)
    for name, run in runs.groupby("label", sort=False):
        ax.plot(run["t_s"], run["stale_keys"] * key_bytes / 1e6, label=name)
    return label(ax, "time (s)", "memory in expired keys (MB)", legend=True)


def plot_eviction(table: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Hit ratio against cache size for each eviction policy (``capacity``, ``hit_ratio``, ``policy``).

    Parameters
    ----------
    table : pandas.DataFrame
        ``capacity``, ``hit_ratio``, ``policy``.
    ax : matplotlib Axes, optional
        Where to draw.

    Returns
    -------
    matplotlib.axes.Axes
    """
    validate.frame_columns("table", table, ["policy", "capacity", "hit_ratio"])
    ax = axes_or_new(ax)
    for name, run in table.groupby("policy", sort=False):
        ax.plot(run["capacity"], run["hit_ratio"], marker="o", label=name)
    ax.set_xscale("log")
    return label(ax, "cache size (keys)", "hit ratio", legend=True)


# --------------------------------------------------------------------------- the real server

MAX_REAL_WRITE_RATE_PER_S = 20_000.0  # one Python writer keeps up with this on a busy 2-core box
MAX_REAL_DURATION_S = 120.0
MAX_REAL_KEYS = 1_000_000
MAX_HASH_FIELDS = 2_000_000  # about 150 MB in Redis
_HASH_CHUNK = 2_000  # fields per HSET while building a big hash


def _check_engine(engine: object) -> object:
    for attribute in ("connect", "label"):
        if not hasattr(engine, attribute):
            raise TypeError(f"engine must be a syslab.engines.Engine for Redis, got {type(engine).__name__}")
    return engine


def _info_stats(client: object) -> dict:
    stats = client.info("stats")
    return {
        "expired_keys": int(stats["expired_keys"]),
        "expired_stale_perc": float(stats["expired_stale_perc"]),
        "time_cap_count": int(stats["expired_time_cap_reached_count"]),
        "cycle_cpu_ms": float(stats["expire_cycle_cpu_milliseconds"]),
    }


def _equilibrium_on(
    engine: object,
    hz: int,
    written: np.ndarray,
    expires: np.ndarray,
    duration_s: float,
    sample_every_s: float,
    deadline: float,
) -> pd.DataFrame:
    client = engine.connect()
    try:
        client.flushall()
        previous_hz = client.config_get("hz").get("hz", "10")
        client.config_set("hz", str(hz))
        client.config_resetstat()
        rows = []
        started = time.monotonic()
        n_sent = 0
        next_sample_s = 0.0
        try:
            while True:
                now_s = time.monotonic() - started
                if now_s >= duration_s:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the real expiry run passed its timeout_s ({duration_s} s of writes)")
                due = int(np.searchsorted(written, now_s, side="right"))
                if due > n_sent:
                    pipe = client.pipeline(transaction=False)
                    for index in range(n_sent, due):  # PX counted from now, so each key expires on time
                        pipe.set(f"k{index}", "v", px=max(1, int((expires[index] - now_s) * 1000)))
                    pipe.execute()
                    n_sent = due
                if now_s >= next_sample_s:
                    in_db = int(client.dbsize())
                    stats = _info_stats(client)
                    at_s = time.monotonic() - started
                    live = int(np.count_nonzero(expires[:n_sent] > at_s))
                    stale = max(in_db - live, 0)
                    rows.append(
                        {
                            "t_s": at_s,
                            "keys_in_db": in_db,
                            "live_keys": live,
                            "stale_keys": stale,
                            "true_stale_perc": 100.0 * stale / in_db if in_db else 0.0,
                            **stats,
                        }
                    )
                    next_sample_s += sample_every_s
                time.sleep(0.002)
        finally:
            client.config_set("hz", previous_hz)
            client.flushall()
    finally:
        client.close()
    return pd.DataFrame(rows).assign(hz=hz, engine=engine.label)


def run_expiry_equilibrium(
    engines_by_hz: dict,
    write_rate_per_s: float = 4000.0,
    ttl_s: float = 4.0,
    duration_s: float = 12.0,
    *,
    steady_from_s: float | None = None,
    sample_every_s: float = 0.5,
    seed: int | np.random.Generator | None = 0,
    timeout_s: float = 60.0,
) -> Run:
    """Real: keys with a TTL written to Redis at a steady rate, never read; count what stays after expiry.

    The keys are the ones :func:`steady_population` draws for the same rate, TTL, duration and seed,
    written at their times with ``SET k v PX <ms>`` (pipelined every few milliseconds). Twice a second
    the experiment compares ``DBSIZE`` (which counts expired keys not yet removed) with its own count of
    keys whose TTL has not passed, and reads ``INFO stats``. One server per ``hz`` value, all running at
    the same time in threads, so :func:`simulate_expiry` with the same seed is the port at the same
    parameters.

    Parameters
    ----------
    engines_by_hz : dict
        ``hz -> Engine`` (Redis; :func:`syslab.engines.redis`), at most 4. The experiment sets ``hz``
        with ``CONFIG SET`` and restores it, and empties the server (``FLUSHALL``) before and after.
    write_rate_per_s : float
        Keys written per second (0 < rate <= ``MAX_REAL_WRITE_RATE_PER_S``).
    ttl_s : float
        TTL of each key, jittered by +/-10 % (seconds).
    duration_s : float
        How long to write (seconds, at most ``MAX_REAL_DURATION_S``).
    steady_from_s : float, optional
        Samples after this time make the summary (default ``1.5 * ttl_s``).
    sample_every_s : float
        Seconds between samples (0.05 to 10).
    seed : int, numpy.random.Generator or None
        For the write times and TTLs.
    timeout_s : float
        Bound on the whole run, set-up included (seconds, at most 600).

    Returns
    -------
    experiment.Run
        ``frame``: one row per sample and server: ``t_s``, ``hz``, ``keys_in_db`` (DBSIZE),
        ``live_keys``, ``stale_keys``, ``true_stale_perc`` (stale / DBSIZE, %), ``expired_stale_perc``
        (INFO, %), ``expired_keys``, ``time_cap_count`` (``expired_time_cap_reached_count``),
        ``cycle_cpu_ms`` (``expire_cycle_cpu_milliseconds``), ``engine``. ``summary``: per hz,
        ``true_perc_hz<hz>``, ``info_perc_hz<hz>``, ``stale_keys_hz<hz>`` (steady means),
        ``expired_per_s_hz<hz>`` (rate of ``expired_keys`` in the steady window), plus ``engine``.
    """
    from concurrent.futures import ThreadPoolExecutor

    if not isinstance(engines_by_hz, dict) or not 1 <= len(engines_by_hz) <= 4:
        raise TypeError("engines_by_hz must be a dict of 1 to 4 hz -> Redis Engine")
    for hz, engine in engines_by_hz.items():
        validate.int_in_range("engines_by_hz key (hz)", hz, 1, 500)
        _check_engine(engine)
    rate = validate.float_in_range(
        "write_rate_per_s", write_rate_per_s, 0.0, MAX_REAL_WRITE_RATE_PER_S, low_inclusive=False
    )
    ttl = validate.float_in_range("ttl_s", ttl_s, 0.1, MAX_REAL_DURATION_S)
    duration = validate.float_in_range("duration_s", duration_s, 0.5, MAX_REAL_DURATION_S)
    steady = (
        1.5 * ttl if steady_from_s is None else validate.non_negative_float("steady_from_s", steady_from_s)
    )
    if steady >= duration:
        raise ValueError(f"steady_from_s must be < duration_s, got {steady} >= {duration}")
    every = validate.float_in_range("sample_every_s", sample_every_s, 0.05, 10.0)
    limit = validate.float_in_range("timeout_s", timeout_s, 1.0, 600.0)
    if limit < duration:
        raise ValueError(f"timeout_s must cover duration_s, got {limit} < {duration}")
    if rate * duration > MAX_REAL_KEYS:
        raise ValueError(f"write_rate_per_s * duration_s must be <= {MAX_REAL_KEYS:,} keys")
    # An int seed drawn once, so simulate_expiry can redraw exactly these keys (summary["seed"]).
    population_seed = int(validate.rng_from_seed(seed).integers(2**62)) if not isinstance(seed, int) else seed
    written, expires = steady_population(rate, ttl, duration, seed=population_seed)
    deadline = time.monotonic() + limit
    with ThreadPoolExecutor(max_workers=len(engines_by_hz)) as pool:
        futures = [
            pool.submit(_equilibrium_on, engine, int(hz), written, expires, duration, every, deadline)
            for hz, engine in engines_by_hz.items()
        ]
        frame = pd.concat([future.result(timeout=limit) for future in futures], ignore_index=True)
    summary: dict[str, object] = {}
    for hz, samples in frame.groupby("hz"):
        window = samples[samples["t_s"] >= steady]
        span = float(window["t_s"].iloc[-1] - window["t_s"].iloc[0]) if len(window) > 1 else math.nan
        summary[f"true_perc_hz{hz}"] = float(window["true_stale_perc"].mean())
        summary[f"info_perc_hz{hz}"] = float(window["expired_stale_perc"].mean())
        summary[f"stale_keys_hz{hz}"] = float(window["stale_keys"].mean())
        summary[f"expired_per_s_hz{hz}"] = float(
            (window["expired_keys"].iloc[-1] - window["expired_keys"].iloc[0]) / span
        )
        summary[f"time_caps_hz{hz}"] = int(samples["time_cap_count"].iloc[-1])
    first = next(iter(engines_by_hz.values()))
    summary.update(
        write_rate_per_s=rate, ttl_s=ttl, duration_s=duration, steady_from_s=steady, seed=population_seed
    )
    summary["engine"] = first.label
    return Run.create(frame, summary, engine=first)


def run_lazy_only(
    engine: object,
    n_keys: int = 20_000,
    ttl_ms: int = 200,
    read_share: float = 0.5,
    *,
    timeout_s: float = 30.0,
) -> Run:
    """Real: expiry with the active cycle switched off (``DEBUG SET-ACTIVE-EXPIRE 0``), then on again.

    Writes ``n_keys`` keys with a TTL of ``ttl_ms``, waits until all have expired, reads a share of
    them, waits, then switches active expiry back on and waits one more second. ``DEBUG`` needs the
    server started with ``enable-debug-command local`` (or ``yes``).

    Parameters
    ----------
    engine : syslab.engines.Engine
        A Redis engine whose ``DEBUG`` command is enabled. It is emptied before and after.
    n_keys : int
        Keys written (1 to ``MAX_REAL_KEYS``).
    ttl_ms : int
        Their TTL (1 to 10,000 ms).
    read_share : float
        Share of the keys read with ``GET`` after they expired (0 to 1).
    timeout_s : float
        Bound on the whole run (seconds, at most 120).

    Returns
    -------
    experiment.Run
        ``frame``: one row per step: ``step``, ``keys_in_db`` (DBSIZE), ``expired_keys`` (INFO),
        ``t_s``. ``summary``: ``n_keys``, ``stale_before_reads``, ``expired_by_reads``,
        ``left_after_reads``, ``left_after_active`` and ``engine``.
    """
    _check_engine(engine)
    n = validate.bounded_int("n_keys", n_keys, MAX_REAL_KEYS)
    ttl = validate.bounded_int("ttl_ms", ttl_ms, 10_000)
    share = validate.probability("read_share", read_share)
    limit = validate.float_in_range("timeout_s", timeout_s, 1.0, 120.0)
    deadline = time.monotonic() + limit
    client = engine.connect()
    started = time.monotonic()
    rows = []

    def step(name: str) -> None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"run_lazy_only passed its timeout_s={limit}")
        stats = _info_stats(client)
        rows.append(
            {
                "step": name,
                "keys_in_db": int(client.dbsize()),
                "expired_keys": stats["expired_keys"],
                "t_s": time.monotonic() - started,
            }
        )

    try:
        client.flushall()
        client.config_resetstat()
        client.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
        for first in range(0, n, 5_000):
            pipe = client.pipeline(transaction=False)
            for index in range(first, min(first + 5_000, n)):
                pipe.set(f"lazy:{index}", "v", px=ttl)
            pipe.execute()
        step("written")
        time.sleep(ttl / 1000 + 0.3)
        step("all TTLs passed, nobody read")
        n_read = int(round(share * n))
        for first in range(0, n_read, 5_000):
            pipe = client.pipeline(transaction=False)
            for index in range(first, min(first + 5_000, n_read)):
                pipe.get(f"lazy:{index}")
            pipe.execute()
        step(f"after GET of {n_read:,} of them")
        client.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "1")
        time.sleep(1.0)
        step("1 s after active expiry back on")
    finally:
        try:
            client.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "1")
            client.flushall()
        finally:
            client.close()
    frame = pd.DataFrame(rows)
    keys = frame["keys_in_db"].tolist()
    summary = {
        "n_keys": n,
        "stale_before_reads": keys[1],
        "expired_by_reads": int(frame["expired_keys"].iloc[2] - frame["expired_keys"].iloc[1]),
        "left_after_reads": keys[2],
        "left_after_active": keys[3],
        "engine": engine.label,
    }
    return Run.create(frame, summary, engine=engine)


def measure_delete_cost(
    engine: object, n_fields: list | tuple = (100_000, 1_000_000), *, timeout_s: float = 60.0
) -> Run:
    """Real: how long ``DEL`` and ``UNLINK`` of a big hash block Redis's event loop.

    For each size, builds a hash of ``n_fields`` fields (``HSET`` in chunks) twice, deletes one copy
    with ``DEL`` and the other with ``UNLINK``, and reads the command's execution time from the
    server's ``SLOWLOG`` (``slowlog-log-slower-than 0`` during the run, restored after). A second
    client sends ``PING`` in a loop meanwhile; its slowest round trip is the wait another client saw.

    Parameters
    ----------
    engine : syslab.engines.Engine
        A Redis engine; the experiment uses keys ``syslab:bighash:*`` and removes them.
    n_fields : list of int
        Hash sizes (each 1 to ``MAX_HASH_FIELDS``), at most 5 sizes.
    timeout_s : float
        Bound on the whole run (seconds, at most 300).

    Returns
    -------
    experiment.Run
        ``frame``: one row per (size, command): ``n_fields``, ``command``, ``server_ms`` (SLOWLOG
        duration), ``ns_per_field``, ``round_trip_ms`` (seen by the deleting client),
        ``max_ping_ms`` (slowest PING of the other client while it ran). ``summary``:
        ``del_ms_<n>``, ``unlink_ms_<n>``, ``del_ns_per_field`` (largest size) and ``engine``.
    """
    import threading

    _check_engine(engine)
    sizes = validate.sequence_of_positive_ints("n_fields", list(n_fields))
    if len(sizes) > 5 or max(sizes) > MAX_HASH_FIELDS:
        raise ValueError(f"n_fields must hold at most 5 sizes, each <= {MAX_HASH_FIELDS:,}")
    limit = validate.float_in_range("timeout_s", timeout_s, 1.0, 300.0)
    deadline = time.monotonic() + limit
    client = engine.connect()
    prober = engine.connect()
    previous = {
        name: client.config_get(name).get(name) for name in ("slowlog-log-slower-than", "slowlog-max-len")
    }
    rows = []
    try:
        client.config_set("slowlog-max-len", "100000")
        for n in sizes:
            source = "syslab:bighash:DEL"
            client.delete(source)
            for first in range(0, n, _HASH_CHUNK):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"measure_delete_cost passed its timeout_s={limit}")
                client.hset(source, mapping={f"f{i}": "v" for i in range(first, min(first + _HASH_CHUNK, n))})
            client.execute_command("COPY", source, "syslab:bighash:UNLINK", "REPLACE")
            for command in ("DEL", "UNLINK"):
                key = f"syslab:bighash:{command}"
                pings: list[float] = []
                stop = threading.Event()

                def probe(pings: list = pings, stop: threading.Event = stop) -> None:
                    while not stop.is_set():
                        sent = time.perf_counter()
                        prober.ping()
                        pings.append(time.perf_counter() - sent)

                client.slowlog_reset()
                client.config_set("slowlog-log-slower-than", "0")
                thread = threading.Thread(target=probe, daemon=True)
                thread.start()
                time.sleep(0.05)
                sent = time.perf_counter()
                client.execute_command(command, key)
                round_trip = time.perf_counter() - sent
                time.sleep(0.05)
                stop.set()
                thread.join(timeout=5)
                client.config_set("slowlog-log-slower-than", previous["slowlog-log-slower-than"])
                entries = client.slowlog_get(100000)
                durations = [e["duration"] for e in entries if _slowlog_command(e).upper() == command]
                server_us = float(durations[0]) if durations else math.nan
                rows.append(
                    {
                        "n_fields": n,
                        "command": command,
                        "server_ms": server_us / 1000,
                        "ns_per_field": server_us * 1000 / n,
                        "round_trip_ms": round_trip * 1000,
                        "max_ping_ms": max(pings) * 1000 if pings else math.nan,
                    }
                )
    finally:
        try:
            for name, value in previous.items():
                if value is not None:
                    client.config_set(name, value)
            client.slowlog_reset()
            client.delete("syslab:bighash:DEL", "syslab:bighash:UNLINK")
        finally:
            client.close()
            prober.close()
    frame = pd.DataFrame(rows)
    summary: dict[str, object] = {}
    for row in frame.itertuples():
        summary[f"{row.command.lower()}_ms_{row.n_fields}"] = float(row.server_ms)
    largest = frame[(frame["n_fields"] == max(sizes)) & (frame["command"] == "DEL")]
    summary["del_ns_per_field"] = float(largest["ns_per_field"].iloc[0])
    summary["engine"] = engine.label
    return Run.create(frame, summary, engine=engine)


def _slowlog_command(entry: dict) -> str:
    command = entry.get("command", b"")
    if isinstance(command, bytes):
        command = command.decode("utf-8", "replace")
    return str(command).split(" ", 1)[0]


_TTL_PROBES = (
    ("SET k v, then EXPIRE k 0", [("SET", "k", "v"), ("EXPIRE", "k", "0")]),
    ("… then EXISTS k", [("EXISTS", "k")]),
    ("… then TTL k", [("TTL", "k")]),
    ("SET k v EX 0", [("SET", "k", "v", "EX", "0")]),
    ("SET k v EX -1", [("SET", "k", "v", "EX", "-1")]),
    ("SET k v (no TTL), then TTL k", [("SET", "k", "v"), ("TTL", "k")]),
    ("PEXPIRE k 1499, then TTL k", [("PEXPIRE", "k", "1499"), ("TTL", "k")]),
    ("PEXPIRE k 499, then TTL k", [("PEXPIRE", "k", "499"), ("TTL", "k")]),
    ("… then EXISTS k (still there?)", [("EXISTS", "k")]),
    ("EXPIRE k -5 on a key", [("SET", "k", "v"), ("EXPIRE", "k", "-5")]),
    ("… then EXISTS k", [("EXISTS", "k")]),
)


def run_ttl_replies(engine: object) -> Run:
    """Real: what the server answers to "TTL 0" in its several forms (``EXPIRE k 0``, ``SET … EX 0``, ``TTL``).

    Parameters
    ----------
    engine : syslab.engines.Engine
        A Redis engine; the commands run in a fresh database (``engine.database()``) on key ``k``.

    Returns
    -------
    experiment.Run
        ``frame``: one row per step: ``commands`` (what was sent), ``reply`` (the last command's reply,
        or the error text). ``summary``: ``engine``.
    """
    _check_engine(engine)
    rows = []
    with engine.database() as db:
        client = db.connect()
        try:
            client.delete("k")
            for text, commands in _TTL_PROBES:
                reply: object = None
                for command in commands:
                    try:
                        reply = client.execute_command(*command)
                    except Exception as error:  # noqa: BLE001 - the server's error is the answer
                        reply = f"error: {error}"
                if isinstance(reply, bytes):
                    reply = reply.decode()
                elif isinstance(reply, bool):  # redis-py turns EXPIRE's integer reply into a bool
                    reply = int(reply)
                rows.append({"commands": text, "reply": str(reply)})
            client.delete("k")
        finally:
            client.close()
    return Run.create(pd.DataFrame(rows), {"engine": engine.label}, engine=engine)


def summarize_server_vs_port(server_run: Run, *, with_fix: bool = True) -> pd.DataFrame:
    """The real server's steady stale share next to the port's, at the same keys and settings.

    Runs :func:`simulate_expiry` on the keys :func:`run_expiry_equilibrium` wrote (same rate, TTL,
    duration and seed) for each ``hz`` the server ran at, as released Redis behaves and, with
    ``with_fix``, with redis#15412's fast-cycle trigger working (``stale_trigger_fixed=True``).

    Parameters
    ----------
    server_run : experiment.Run
        What :func:`run_expiry_equilibrium` returned.
    with_fix : bool
        Also run the port with the #15412 fix.

    Returns
    -------
    pandas.DataFrame
        One row per (source, hz): ``source`` (the engine label, ``port`` or ``port with #15412``),
        ``hz``, ``true_stale_perc`` (mean stale / keys in the database, %), ``expired_stale_perc``
        (mean INFO estimate, %), ``stale_keys`` (mean).
    """
    validate.instance("server_run", server_run, Run)
    validate.frame_columns(
        "server_run.frame", server_run.frame, ["t_s", "hz", "true_stale_perc", "stale_keys"]
    )
    info = server_run.summary
    for name in ("write_rate_per_s", "ttl_s", "duration_s", "steady_from_s", "seed", "engine"):
        if name not in info:
            raise ValueError(f"server_run must come from run_expiry_equilibrium (summary lacks {name!r})")
    if not isinstance(with_fix, bool):
        raise TypeError(f"with_fix must be a bool, got {with_fix!r}")
    written, expires = steady_population(
        info["write_rate_per_s"], info["ttl_s"], info["duration_s"], seed=info["seed"]
    )
    steady = float(info["steady_from_s"])
    rows = []
    for hz, samples in server_run.frame.groupby("hz"):
        window = samples[samples["t_s"] >= steady]
        rows.append(
            {
                "source": str(info["engine"]),
                "hz": int(hz),
                "true_stale_perc": float(window["true_stale_perc"].mean()),
                "expired_stale_perc": float(window["expired_stale_perc"].mean()),
                "stale_keys": float(window["stale_keys"].mean()),
            }
        )
        variants = [("port", False)] + ([("port with #15412", True)] if with_fix else [])
        for source, fixed in variants:
            config = ExpireConfig(hz=int(hz), stale_trigger_fixed=fixed)
            run = simulate_expiry(
                expires, info["duration_s"], config, seed=info["seed"], written_at_s=written
            )
            slow = run[(run["kind"] == "slow") & (run["t_s"] >= steady)]
            rows.append(
                {
                    "source": source,
                    "hz": int(hz),
                    "true_stale_perc": float(slow["true_stale_perc"].mean()),
                    "expired_stale_perc": float(slow["expired_stale_perc"].mean()),
                    "stale_keys": float(slow["stale_keys"].mean()),
                }
            )
    return pd.DataFrame(rows)


def plot_server_vs_port(server_run: Run, ax: Axes | None = None) -> Axes:
    """True stale share over time on the real server, at one ``hz``, with the steady window marked.

    Parameters
    ----------
    server_run : experiment.Run
        What :func:`run_expiry_equilibrium` returned.
    ax : matplotlib Axes, optional
        Where to draw.

    Returns
    -------
    matplotlib.axes.Axes
    """
    validate.instance("server_run", server_run, Run)
    frame = validate.frame_columns(
        "server_run.frame", server_run.frame, ["t_s", "hz", "true_stale_perc", "expired_stale_perc"]
    )
    ax = axes_or_new(ax)
    for value, samples in frame.groupby("hz"):
        line = ax.plot(samples["t_s"], samples["true_stale_perc"], label=f"true stale share, hz {value}")
        ax.plot(
            samples["t_s"],
            samples["expired_stale_perc"],
            linestyle="--",
            color=line[0].get_color(),
            label=f"INFO expired_stale_perc, hz {value}",
        )
    ax.axvline(float(server_run.summary.get("steady_from_s", 0.0)), color="grey", linewidth=0.8)
    return label(ax, "time (s)", "stale keys (%)", legend=True)


# --------------------------------------------------------------------------- chapter helpers


def summarize_runs(runs: pd.DataFrame, key_bytes: int = 100) -> pd.DataFrame:
    """:func:`summarize_expiry` for every ``label`` of concatenated :func:`simulate_expiry` runs.

    Parameters
    ----------
    runs : pandas.DataFrame
        :func:`simulate_expiry` outputs with a ``label`` column.
    key_bytes : int
        Bytes per key for the memory columns.

    Returns
    -------
    pandas.DataFrame
        Indexed by label, the columns of :func:`summarize_expiry`.
    """
    frame = validate.frame_columns("runs", runs, ["label", "t_s", "stale_keys"])
    return pd.DataFrame(
        {name: summarize_expiry(run, key_bytes) for name, run in frame.groupby("label", sort=False)}
    ).T


def plot_equilibrium_curves(curves: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Equilibrium stale share against the rate keys expire, one line per ``setting``.

    Parameters
    ----------
    curves : pandas.DataFrame
        ``expiring_per_s``, ``setting``, ``stale_perc`` (from :func:`theory_equilibrium_stale_fraction`).
    ax : matplotlib Axes, optional
        Where to draw.

    Returns
    -------
    matplotlib.axes.Axes
    """
    frame = validate.frame_columns("curves", curves, ["expiring_per_s", "setting", "stale_perc"])
    ax = axes_or_new(ax)
    for name, curve in frame.groupby("setting", sort=False):
        ax.plot(curve["expiring_per_s"], curve["stale_perc"], label=name)
    ax.set_xscale("log")
    return label(ax, "keys expiring per second (not read)", "stale keys the sampler sees (%)", legend=True)


def plot_stale_memory_panels(
    steady: pd.DataFrame,
    burst: pd.DataFrame,
    key_bytes: int = 100,
    *,
    burst_window_s: tuple = (0.0, 30.0),
    axes=None,
):
    """Two panels: stale memory under steady writes (top) and after a batch expiry (bottom).

    Parameters
    ----------
    steady, burst : pandas.DataFrame
        :func:`simulate_expiry` outputs with a ``label`` column.
    key_bytes : int
        Bytes per key.
    burst_window_s : (float, float)
        x range of the bottom panel (seconds).
    axes : two Axes, optional
        Where to draw.

    Returns
    -------
    numpy.ndarray of Axes
    """
    from syslab import plot

    top, bottom = plot.panels(1, 2, axes)
    plot_stale_memory(steady, ax=top, key_bytes=key_bytes)
    plot_stale_memory(burst, ax=bottom, key_bytes=key_bytes)
    bottom.set_xlim(*burst_window_s)
    return np.array([top, bottom], dtype=object)


def plot_estimate(run: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Redis's running ``expired_stale_perc`` against the true stale share, over time (one run).

    Parameters
    ----------
    run : pandas.DataFrame
        One :func:`simulate_expiry` output.
    ax : matplotlib Axes, optional
        Where to draw.

    Returns
    -------
    matplotlib.axes.Axes
    """
    frame = validate.frame_columns("run", run, ["t_s", "expired_stale_perc", "true_stale_perc"])
    ax = axes_or_new(ax)
    ax.plot(frame["t_s"], frame["expired_stale_perc"], label="expired_stale_perc (Redis's estimate)")
    ax.plot(frame["t_s"], frame["true_stale_perc"], label="true stale share of keys with a TTL")
    return label(ax, "time (s)", "stale keys (%)", legend=True)


def summarize_free_stall(stalls: pd.DataFrame) -> pd.DataFrame:
    """Worst latency, p99.9 and commands over 1 ms, per command, of :func:`simulate_free_stall` runs.

    Parameters
    ----------
    stalls : pandas.DataFrame
        Concatenated :func:`simulate_free_stall` outputs.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``command``: ``max_latency_ms``, ``p999_latency_ms``, ``requests_over_1ms``.
    """
    frame = validate.frame_columns("stalls", stalls, ["command", "latency_ms"])
    return frame.groupby("command").agg(
        max_latency_ms=("latency_ms", "max"),
        p999_latency_ms=("latency_ms", lambda s: s.quantile(0.999)),
        requests_over_1ms=("latency_ms", lambda s: int((s > 1).sum())),
    )


def plot_free_stall(stalls: pd.DataFrame, ax: Axes | None = None, *, at_s: float = 0.5) -> Axes:
    """Latency of each command around the delete at ``at_s``, one colour per command.

    Parameters
    ----------
    stalls : pandas.DataFrame
        Concatenated :func:`simulate_free_stall` outputs.
    ax : matplotlib Axes, optional
        Where to draw.
    at_s : float
        When the big key was deleted (seconds).

    Returns
    -------
    matplotlib.axes.Axes
    """
    frame = validate.frame_columns("stalls", stalls, ["command", "arrival_s", "latency_ms"])
    at = validate.non_negative_float("at_s", at_s)
    ax = axes_or_new(ax)
    end_s = at + 3 * float(frame["latency_ms"].max()) / 1000 + 0.005
    for command, run in frame.groupby("command"):
        window = run[(run["arrival_s"] > at - 0.05) & (run["arrival_s"] < end_s)]
        ax.plot(window["arrival_s"] * 1000, window["latency_ms"], ".", markersize=2, label=command)
    label(ax, "arrival time (ms)", "command latency (ms)")
    ax.legend(markerscale=6)
    return ax


def equilibrium_from_model(
    hz_values: list, write_rate_per_s: float, ttl_s: float, duration_s: float, *, seed: int = 0
) -> Run:
    """Where no Redis server is available: the port in the shape of :func:`run_expiry_equilibrium`'s result.

    Parameters
    ----------
    hz_values : list of int
        The ``hz`` settings (at most 4).
    write_rate_per_s, ttl_s, duration_s : float
        As for :func:`run_expiry_equilibrium`.
    seed : int
        For the keys.

    Returns
    -------
    experiment.Run
        The same frame columns and summary keys as :func:`run_expiry_equilibrium`, with ``engine``
        ``"the port (no server)"``.
    """
    values = validate.sequence_of_positive_ints("hz_values", hz_values)
    if len(values) > 4:
        raise ValueError("hz_values must hold at most 4 settings")
    seed_value = validate.non_negative_int("seed", seed)
    written, expires = steady_population(write_rate_per_s, ttl_s, duration_s, seed=seed_value)
    frames, summary = [], {}
    steady = 1.5 * float(ttl_s)
    for hz in values:
        run = simulate_expiry(expires, duration_s, ExpireConfig(hz=hz), seed=seed_value, written_at_s=written)
        slow = run[run["kind"] == "slow"]
        frame = pd.DataFrame(
            {
                "t_s": slow["t_s"],
                "hz": hz,
                "keys_in_db": slow["live_keys"],
                "stale_keys": slow["stale_keys"],
                "true_stale_perc": slow["true_stale_perc"],
                "expired_stale_perc": slow["expired_stale_perc"],
                "time_cap_count": slow["time_cap_count"],
            }
        )
        frames.append(frame)
        window = frame[frame["t_s"] >= steady]
        summary[f"true_perc_hz{hz}"] = float(window["true_stale_perc"].mean())
        summary[f"expired_per_s_hz{hz}"] = float(write_rate_per_s)
    summary.update(
        write_rate_per_s=float(write_rate_per_s),
        ttl_s=float(ttl_s),
        duration_s=float(duration_s),
        steady_from_s=steady,
        seed=seed_value,
        engine="the port (no server)",
    )
    return Run.create(pd.concat(frames, ignore_index=True), summary)


def lazy_only_from_rules(n_keys: int, read_share: float = 0.5) -> Run:
    """Where no Redis server is available: what :func:`run_lazy_only` shows, from the rules in ``expire.c``.

    Parameters
    ----------
    n_keys : int
        Keys written (1 to ``MAX_REAL_KEYS``).
    read_share : float
        Share of them read after their TTL (0 to 1).

    Returns
    -------
    experiment.Run
        The frame and summary of :func:`run_lazy_only` (``engine`` ``"the rules (no server)"``).
    """
    n = validate.bounded_int("n_keys", n_keys, MAX_REAL_KEYS)
    n_read = int(round(validate.probability("read_share", read_share) * n))
    frame = pd.DataFrame(
        {
            "step": [
                "written",
                "all TTLs passed, nobody read",
                f"after GET of {n_read:,} of them",
                "1 s after active expiry back on",
            ],
            "keys_in_db": [n, n, n - n_read, 0],
            "expired_keys": [0, 0, n_read, n],
        }
    )
    summary = {
        "n_keys": n,
        "stale_before_reads": n,
        "expired_by_reads": n_read,
        "left_after_reads": n - n_read,
        "left_after_active": 0,
        "engine": "the rules (no server)",
    }
    return Run.create(frame, summary)


def ttl_replies_from_source() -> pd.DataFrame:
    """Where no Redis server is available: the replies :func:`run_ttl_replies` gets, as the source gives them.

    Returns
    -------
    pandas.DataFrame
        ``commands``, ``reply`` (from ``expire.c``/``t_string.c`` and :func:`ttl_reply`).
    """
    replies = [
        "1",
        "0",
        str(ttl_reply(None)),
        "error: invalid expire time in 'set' command",
        "error: invalid expire time in 'set' command",
        str(ttl_reply(0, has_expire=False)),
        str(ttl_reply(1499)),
        str(ttl_reply(499)),
        "1",
        "1",
        "0",
    ]
    return pd.DataFrame({"commands": [text for text, _ in _TTL_PROBES], "reply": replies})


def theory_equilibrium_curves(settings: dict, rates_per_s: np.ndarray) -> pd.DataFrame:
    """:func:`theory_equilibrium_stale_fraction` for each labelled setting over a range of expiry rates.

    Parameters
    ----------
    settings : dict
        Label to :class:`ExpireConfig`.
    rates_per_s : array of float
        Keys expiring per second (at most 1,000 values).

    Returns
    -------
    pandas.DataFrame
        ``expiring_per_s``, ``setting``, ``stale_perc``.
    """
    if not isinstance(settings, dict) or not all(isinstance(c, ExpireConfig) for c in settings.values()):
        raise TypeError("settings must be a dict of label -> ExpireConfig")
    rates = np.asarray(rates_per_s, dtype=float)
    if rates.ndim != 1 or not 1 <= rates.size <= 1_000 or not np.all(np.isfinite(rates) & (rates > 0)):
        raise ValueError("rates_per_s must hold 1 to 1,000 positive finite rates")
    rows = [
        {
            "expiring_per_s": r,
            "setting": name,
            "stale_perc": 100 * theory_equilibrium_stale_fraction(float(r), config)["stale_fraction"],
        }
        for name, config in settings.items()
        for r in rates
    ]
    return pd.DataFrame(rows)


def compare_eviction_policies(
    keys: np.ndarray, capacities: list, samples: list, *, seed: int | np.random.Generator | None = 0
) -> pd.DataFrame:
    """Hit ratio of exact LRU, random eviction and Redis's approximated LRU (each ``samples``) per cache size.

    Parameters
    ----------
    keys : numpy.ndarray
        The request sequence (key ids).
    capacities : list of int
        Cache sizes in keys (at most 10).
    samples : list of int
        ``maxmemory-samples`` values for the approximated LRU (at most 10).
    seed : int, numpy.random.Generator or None
        For the samples.

    Returns
    -------
    pandas.DataFrame
        ``policy`` (``exact LRU``, ``random``, ``approx LRU, samples <k>``), ``capacity``, ``hit_ratio``.
    """
    sizes = validate.sequence_of_positive_ints("capacities", capacities)
    counts = validate.sequence_of_positive_ints("samples", samples)
    if len(sizes) > 10 or len(counts) > 10:
        raise ValueError("capacities and samples must each hold at most 10 values")
    policies = [("exact LRU", "exact-lru", 5), ("random", "random", 5)]
    policies += [(f"approx LRU, samples {k}", "approx-lru", k) for k in counts]
    rows = [
        {"policy": name, "capacity": size, "hit_ratio": eviction_hit_ratio(keys, size, kind, k, seed=seed)}
        for size in sizes
        for name, kind, k in policies
    ]
    return pd.DataFrame(rows)
