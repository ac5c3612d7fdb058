"""Cache patterns and their failure modes on one workload: Zipf-popular keys in front of a slow origin.

Four groups of functions:

- **workload** -- :func:`zipf_popularity`, :func:`generate_requests` (Poisson arrivals, Zipf keys,
  a share of writes);
- **patterns** -- :func:`simulate_pattern` runs one request stream through an LRU cache with a TTL
  in front of an origin, as cache-aside, read-through, write-through, write-behind,
  stale-while-revalidate (RFC 5861) or cache-aside with single-flight; :func:`lru_hit_ratios` is the
  plain LRU for sweeps, with Che's approximation (:func:`theory_lru_hit_ratio`) next to it; and
  :func:`write_behind_loss` is what a crash loses under write-behind;
- **failure modes** -- a hot key expiring under load with no protection, single-flight or XFetch
  (Vattani et al. 2015): :func:`simulate_hot_key_expiry`; a key cached (or not) for a TTL, which is
  also the negative-cache stampede: :func:`simulate_ttl_key`; a hot key pinning one shard:
  :func:`simulate_shard_load`;
- **decision** -- :func:`decision_table`, which layer to cache at.

Units are in the names: ``_s`` seconds, ``_ms`` milliseconds, ``_per_s`` per second.
"""

from __future__ import annotations

import heapq
import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from scipy import special

from syslab import validate
from syslab.experiment import Run
from syslab.plot import axes_or_new, label

__all__ = [
    "PATTERNS",
    "CacheLatency",
    "decision_table",
    "generate_requests",
    "lru_hit_ratios",
    "plot_hit_ratio",
    "plot_latency_cdf",
    "plot_origin_rate",
    "plot_shard_load",
    "simulate_hot_key_expiry",
    "simulate_pattern",
    "simulate_shard_load",
    "simulate_ttl_key",
    "summarize_patterns",
    "summarize_ttl_key",
    "theory_lru_hit_ratio",
    "theory_ttl_key_origin_rate_per_s",
    "theory_xfetch_lead_s",
    "write_behind_loss",
    "xfetch_refresh_probability",
    "zipf_popularity",
    "run_stampede",
    "summarize_stampede",
    "plot_stampede",
    "stampede_from_model",
    "STAMPEDE_PROTECTIONS",
]

MAX_KEYS = 10_000_000  # keys in a popularity vector (80 MB of float64)
MAX_REQUESTS = 5_000_000  # requests in one generated stream
MAX_TRIALS = 100_000  # expiries simulated in simulate_hot_key_expiry
MAX_CLIENTS = 64  # client threads in run_stampede
MAX_REAL_DURATION_S = 60.0  # seconds of a real stampede run

PATTERNS = (
    "cache-aside",
    "read-through",
    "write-through",
    "write-behind",
    "stale-while-revalidate",
    "single-flight",
)


@dataclass(frozen=True)
class CacheLatency:
    """Service times of the cache and the origin behind it.

    Attributes
    ----------
    cache_ms : float
        One cache round trip (a GET or a SET to a networked cache in the same zone).
    origin_read_median_ms : float
        Median time the origin (a database query, a rendering service) takes to produce a value.
    origin_read_sigma : float
        Log-normal shape of the origin's read time (0 = constant); 0.5 gives a p99 about 3x the median.
    origin_write_ms : float
        Time a synchronous write to the origin takes.
    """

    cache_ms: float = 0.5
    origin_read_median_ms: float = 40.0
    origin_read_sigma: float = 0.5
    origin_write_ms: float = 15.0

    def __post_init__(self) -> None:
        validate.positive_float("cache_ms", self.cache_ms)
        validate.positive_float("origin_read_median_ms", self.origin_read_median_ms)
        validate.non_negative_float("origin_read_sigma", self.origin_read_sigma)
        validate.positive_float("origin_write_ms", self.origin_write_ms)


# --------------------------------------------------------------------------- workload


def zipf_popularity(n_keys: int, exponent: float = 1.0) -> np.ndarray:
    """Request probabilities of keys ranked 1..n: p_i proportional to 1 / i**exponent (sums to 1).

    Parameters
    ----------
    n_keys : int
        Number of keys, 1 to ``MAX_KEYS``.
    exponent : float
        Zipf exponent s >= 0 (0 is uniform), at most 10.

    Returns
    -------
    numpy.ndarray
        ``n_keys`` probabilities, most popular first.
    """
    n = validate.bounded_int("n_keys", n_keys, MAX_KEYS)
    s = validate.float_in_range("exponent", exponent, 0.0, 10.0)
    weights = 1.0 / np.arange(1, n + 1, dtype=float) ** s
    return weights / weights.sum()


def generate_requests(
    n_requests: int,
    n_keys: int,
    arrival_rate_per_s: float,
    zipf_exponent: float = 1.0,
    write_fraction: float = 0.0,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """A request stream: Poisson arrivals, Zipf-popular keys, a share of them writes.

    Parameters
    ----------
    n_requests : int
        Requests (1 to ``MAX_REQUESTS``).
    n_keys : int
        Distinct keys (1 to ``MAX_KEYS``).
    arrival_rate_per_s : float
        Poisson arrival rate.
    zipf_exponent : float
        Popularity skew s (0 to 10).
    write_fraction : float
        Share of requests that are writes (0 to 1).
    seed : int, numpy.random.Generator or None
        For arrivals, keys and writes.

    Returns
    -------
    pandas.DataFrame
        One row per request, in time order: ``t_s`` (arrival time), ``key`` (0 = most popular),
        ``is_write`` (bool).
    """
    n = validate.bounded_int("n_requests", n_requests, MAX_REQUESTS)
    rate = validate.positive_float("arrival_rate_per_s", arrival_rate_per_s)
    share = validate.probability("write_fraction", write_fraction)
    validate.bounded_int("n_keys", n_keys, MAX_KEYS)
    validate.float_in_range("zipf_exponent", zipf_exponent, 0.0, 10.0)
    popularity = zipf_popularity(n_keys, zipf_exponent)
    rng = validate.rng_from_seed(seed)
    times = np.cumsum(rng.exponential(1.0 / rate, n))
    keys = rng.choice(len(popularity), size=n, p=popularity)
    writes = rng.random(n) < share
    return pd.DataFrame({"t_s": times, "key": keys.astype(np.int64), "is_write": writes})


def _check_requests(requests: object) -> pd.DataFrame:
    if not isinstance(requests, pd.DataFrame) or not {"t_s", "key", "is_write"} <= set(requests.columns):
        raise TypeError("requests must be a DataFrame from generate_requests (t_s, key, is_write)")
    return requests


# --------------------------------------------------------------------------- LRU and Che


def lru_hit_ratios(keys: np.ndarray, capacities: list, warmup: int = 0) -> pd.DataFrame:
    """Hit ratio of an exact LRU cache of each capacity on a key sequence (no TTL, no writes).

    Parameters
    ----------
    keys : array of int
        The requested keys in order.
    capacities : list of int
        Cache sizes in entries.
    warmup : int
        Requests at the start that fill the cache but are not counted.

    Returns
    -------
    pandas.DataFrame
        ``capacity``, ``hit_ratio``.
    """
    sizes = validate.sequence_of_positive_ints("capacities", capacities)
    skip = validate.non_negative_int("warmup", warmup)
    sequence = np.asarray(keys)
    if sequence.ndim != 1 or sequence.size <= skip:
        raise ValueError(f"keys must be a 1-d sequence longer than warmup={skip}")
    rows = []
    for capacity in sizes:
        cache: OrderedDict = OrderedDict()
        hits = 0
        for position, key in enumerate(sequence.tolist()):
            if key in cache:
                cache.move_to_end(key)
                hits += position >= skip
            else:
                cache[key] = None
                if len(cache) > capacity:
                    cache.popitem(last=False)
        rows.append({"capacity": capacity, "hit_ratio": hits / (sequence.size - skip)})
    return pd.DataFrame(rows)


def _float_array(name: str, values: object) -> np.ndarray:
    """``values`` as a float array; a str, None or non-numeric items are refused by ``name``."""
    if isinstance(values, (str, bytes)) or values is None:
        raise TypeError(f"{name} must be an array of numbers, got {values!r}")
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an array of numbers, got {type(values).__name__}") from None


def theory_lru_hit_ratio(popularity: np.ndarray, capacity: int) -> float:
    """Che's approximation of an LRU cache's hit ratio under independent requests (Che et al. 2002).

    The characteristic time T solves sum_i (1 - exp(-p_i T)) = C; the hit ratio is
    sum_i p_i (1 - exp(-p_i T)). Accurate to about a percent for Zipf workloads.

    Parameters
    ----------
    popularity : numpy.ndarray
        Request probabilities (sum to 1).
    capacity : int
        LRU entries, fewer than the keys.

    Returns
    -------
    float
        Hit ratio in [0, 1].
    """
    p = _float_array("popularity", popularity)
    if p.size > MAX_KEYS:
        raise ValueError(f"popularity must hold at most {MAX_KEYS:,} keys, got {p.size:,}")
    if p.ndim != 1 or p.size == 0 or np.any(p < 0) or not math.isclose(p.sum(), 1.0, rel_tol=1e-6):
        raise ValueError("popularity must be a 1-d array of probabilities summing to 1")
    c = validate.positive_int("capacity", capacity)
    if c >= np.count_nonzero(p):
        return 1.0
    low, high = 0.0, 1.0
    while np.sum(1.0 - np.exp(-p * high)) < c:  # bounded: the sum reaches n_keys > c as T grows
        high *= 2.0
    for _ in range(200):  # bisection; stops once T is known to 1e-7 relative
        middle = 0.5 * (low + high)
        if np.sum(-np.expm1(-p * middle)) < c:
            low = middle
        else:
            high = middle
        if high - low <= 1e-7 * high:
            break
    characteristic = 0.5 * (low + high)
    return float(np.sum(p * (1.0 - np.exp(-p * characteristic))))


# --------------------------------------------------------------------------- patterns


def simulate_pattern(
    requests: pd.DataFrame,
    pattern: str,
    capacity: int,
    ttl_s: float = 60.0,
    latency: CacheLatency | None = None,
    stale_window_s: float = 30.0,
    flush_interval_s: float = 1.0,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Run a request stream through one caching pattern: an LRU cache with a TTL in front of an origin.

    The patterns differ only where they really differ:

    - ``cache-aside``: the application reads the cache, on a miss reads the origin and SETs the value;
      a write goes to the origin and then DELetes the cached key (the next read misses).
    - ``read-through``: the cache calls the loader on a miss. Same hits and latencies as cache-aside:
      who fills the cache changes, not how often it misses.
    - ``write-through``: a write goes to the origin and the cache together (latency: the origin's
      write); the cache holds the new value, so reads after a write still hit.
    - ``write-behind``: a write updates the cache only (latency: one cache round trip); a background
      flusher writes to the origin every ``flush_interval_s``. Column ``flushed_at_s`` says when.
    - ``stale-while-revalidate``: for ``stale_window_s`` after the TTL a read gets the stale value at
      cache speed and starts one background refresh (RFC 5861).
    - ``single-flight``: cache-aside where concurrent misses on one key share a single origin read
      (Go's ``x/sync/singleflight``); the others wait for it.

    A value fetched on a miss enters the cache when the origin answers, so requests that arrive while
    the fetch is in flight miss too -- that is what makes a stampede.

    Parameters
    ----------
    requests : pandas.DataFrame
        From :func:`generate_requests`.
    pattern : str
        One of ``PATTERNS``.
    capacity : int
        LRU entries.
    ttl_s : float
        Time to live of a cached value.
    latency : CacheLatency, optional
        Cache and origin latencies.
    stale_window_s : float
        Stale-while-revalidate window after the TTL.
    flush_interval_s : float
        Write-behind flush period.
    seed : int, numpy.random.Generator or None
        For the latencies.

    Returns
    -------
    pandas.DataFrame
        One row per request: ``t_s``, ``key``, ``is_write``, ``outcome`` (``hit``, ``stale``, ``miss``,
        ``coalesced``, ``write``), ``latency_ms``, ``origin_read`` (this request read the origin),
        ``flushed_at_s`` (write-behind writes only; NaN otherwise), ``pattern``.
    """
    frame = _check_requests(requests)
    kind = validate.choice("pattern", pattern, PATTERNS)
    size = validate.positive_int("capacity", capacity)
    ttl = validate.positive_float("ttl_s", ttl_s, allow_inf=True)
    stale_window = validate.non_negative_float("stale_window_s", stale_window_s)
    flush_every = validate.positive_float("flush_interval_s", flush_interval_s)
    costs = latency if latency is not None else CacheLatency()
    if not isinstance(costs, CacheLatency):
        raise TypeError(f"latency must be a CacheLatency, got {type(costs).__name__}")
    rng = validate.rng_from_seed(seed)

    times = frame["t_s"].to_numpy(dtype=float)
    keys = frame["key"].to_numpy()
    writes = frame["is_write"].to_numpy(dtype=bool)
    n = len(frame)
    origin_ms = costs.origin_read_median_ms * np.exp(costs.origin_read_sigma * rng.standard_normal(n))
    cache_s = costs.cache_ms / 1000.0
    write_s = costs.origin_write_ms / 1000.0

    cache: OrderedDict = OrderedDict()  # key -> time the value was stored
    pending: list = []  # heap of (time the origin answers, key)
    in_flight: dict = {}  # key -> time its (single) fetch completes: single-flight and SWR refreshes
    outcome = np.empty(n, dtype=object)
    latency_ms = np.zeros(n)
    origin_read = np.zeros(n, dtype=bool)
    flushed_at = np.full(n, np.nan)
    coalesce = kind == "single-flight"
    stale_ok = stale_window if kind == "stale-while-revalidate" else 0.0

    def store(key: int, at_s: float) -> None:
        cache[key] = at_s
        cache.move_to_end(key)
        if len(cache) > size:
            cache.popitem(last=False)

    for i in range(n):
        now, key = times[i], int(keys[i])
        while pending and pending[0][0] <= now:
            done_s, done_key = heapq.heappop(pending)
            if in_flight.get(done_key) == done_s:
                del in_flight[done_key]
            store(done_key, done_s)
        if writes[i]:
            outcome[i] = "write"
            if kind == "write-behind":
                store(key, now)
                latency_ms[i] = costs.cache_ms
                flushed_at[i] = (math.floor(now / flush_every) + 1) * flush_every
            elif kind == "write-through":
                store(key, now + write_s)
                latency_ms[i] = costs.origin_write_ms + costs.cache_ms
            else:  # invalidate on write: cache-aside and its variants
                cache.pop(key, None)
                latency_ms[i] = costs.origin_write_ms + costs.cache_ms
            continue
        stored = cache.get(key)
        age = now - stored if stored is not None else math.inf
        if age < ttl:
            cache.move_to_end(key)
            outcome[i], latency_ms[i] = "hit", costs.cache_ms
        elif age < ttl + stale_ok:
            cache.move_to_end(key)
            outcome[i], latency_ms[i] = "stale", costs.cache_ms
            if key not in in_flight:  # one background refresh per key
                done = now + origin_ms[i] / 1000.0
                in_flight[key] = done
                heapq.heappush(pending, (done, key))
                origin_read[i] = True
        elif coalesce and key in in_flight:
            outcome[i] = "coalesced"
            latency_ms[i] = (in_flight[key] - now + cache_s) * 1000.0
        else:
            cache.pop(key, None)
            done = now + cache_s + origin_ms[i] / 1000.0
            heapq.heappush(pending, (done, key))
            if coalesce:
                in_flight[key] = done
            outcome[i], origin_read[i] = "miss", True
            latency_ms[i] = 2 * costs.cache_ms + origin_ms[i]
    return pd.DataFrame(
        {
            "t_s": times,
            "key": keys,
            "is_write": writes,
            "outcome": outcome.astype(str),
            "latency_ms": latency_ms,
            "origin_read": origin_read,
            "flushed_at_s": flushed_at,
            "pattern": kind,
        }
    )


def summarize_patterns(runs: pd.DataFrame) -> pd.DataFrame:
    """Per pattern: read hit ratio (fresh or stale), origin reads per second, read and write latencies.

    Parameters
    ----------
    runs : pandas.DataFrame
        Concatenated :func:`simulate_pattern` outputs.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``pattern``: ``hit_ratio``, ``stale_share``, ``origin_reads_per_s``, ``read_p50_ms``,
        ``read_p99_ms``, ``write_p50_ms``.
    """
    if not isinstance(runs, pd.DataFrame) or "pattern" not in runs.columns:
        raise TypeError("runs must be the concatenated output of simulate_pattern")
    rows = []
    for name, run in runs.groupby("pattern", sort=False):
        reads = run[~run["is_write"]]
        span_s = float(run["t_s"].max() - run["t_s"].min()) or 1.0
        write_latency = run.loc[run["is_write"], "latency_ms"]
        rows.append(
            {
                "pattern": name,
                "hit_ratio": float(reads["outcome"].isin(["hit", "stale"]).mean()),
                "stale_share": float((reads["outcome"] == "stale").mean()),
                "origin_reads_per_s": float(run["origin_read"].sum() / span_s),
                "read_p50_ms": float(reads["latency_ms"].quantile(0.5)),
                "read_p99_ms": float(reads["latency_ms"].quantile(0.99)),
                "write_p50_ms": float(write_latency.quantile(0.5)) if len(write_latency) else math.nan,
            }
        )
    return pd.DataFrame(rows).set_index("pattern")


def write_behind_loss(
    run: pd.DataFrame, n_crashes: int = 1000, seed: int | np.random.Generator | None = 0
) -> pd.DataFrame:
    """Writes a crash would lose under write-behind: acknowledged but not yet flushed to the origin.

    Crash instants are drawn uniformly over the run. The theory: with writes arriving at rate
    lambda_w and a flush every F seconds, a crash loses on average lambda_w * F / 2 writes and at most
    about lambda_w * F.

    Parameters
    ----------
    run : pandas.DataFrame
        A :func:`simulate_pattern` output for ``write-behind``.
    n_crashes : int
        Crash instants drawn.
    seed : int, numpy.random.Generator or None
        For the crash instants.

    Returns
    -------
    pandas.DataFrame
        One row per simulated crash: ``crash_s``, ``lost_writes``, ``oldest_lost_age_s`` (how far back
        the loss reaches; 0 when nothing is lost).
    """
    if not isinstance(run, pd.DataFrame) or "flushed_at_s" not in run.columns:
        raise TypeError("run must come from simulate_pattern(..., pattern='write-behind')")
    count = validate.positive_int("n_crashes", n_crashes)
    written = run[run["is_write"] & run["flushed_at_s"].notna()]
    if written.empty:
        raise ValueError("run has no write-behind writes (pattern must be 'write-behind' with writes)")
    rng = validate.rng_from_seed(seed)
    crashes = np.sort(rng.uniform(run["t_s"].min(), run["t_s"].max(), count))
    t = written["t_s"].to_numpy()
    flushed = written["flushed_at_s"].to_numpy()
    order = np.argsort(t)
    t, flushed = t[order], flushed[order]
    lost = np.zeros(count, dtype=np.int64)
    oldest = np.zeros(count)
    for k, crash in enumerate(crashes):
        # Every write before the crash whose flush was still to come is lost. Flush times only grow
        # with write times, so those writes are the contiguous run just before the crash.
        end = np.searchsorted(t, crash, side="right")
        start = np.searchsorted(flushed[:end], crash, side="right")
        lost[k] = end - start
        oldest[k] = crash - t[start] if end > start else 0.0
    return pd.DataFrame({"crash_s": crashes, "lost_writes": lost, "oldest_lost_age_s": oldest})


# --------------------------------------------------------------------------- hot key expiry


def xfetch_refresh_probability(gap_s: float, recompute_s: float, beta: float = 1.0) -> float:
    """P(one request recomputes early) under XFetch at ``gap_s`` before expiry: exp(-gap / (delta beta)).

    XFetch recomputes when ``now - delta * beta * ln(U) >= expiry`` with U uniform on (0, 1]
    (Vattani, Chierichetti and Lowenstein 2015).

    Parameters
    ----------
    gap_s : float
        Time before expiry (seconds, >= 0).
    recompute_s : float
        Recompute time (delta).
    beta : float
        XFetch's eagerness.

    Returns
    -------
    float
        Probability in (0, 1].
    """
    gap = validate.non_negative_float("gap_s", gap_s)
    delta = validate.positive_float("recompute_s", recompute_s)
    b = validate.positive_float("beta", beta)
    return math.exp(-gap / (delta * b))


def theory_xfetch_lead_s(arrival_rate_per_s: float, recompute_s: float, beta: float = 1.0) -> float:
    """Mean time before expiry at which XFetch first recomputes (0 when no request fires early).

    Early recomputations at gaps larger than g form a Poisson process with mean
    ``m exp(-g / (delta beta))``, ``m = lambda delta beta``, so the lead G (the largest gap, or 0 if
    none fired) has ``P(G <= g) = exp(-m exp(-g / (delta beta)))`` and
    ``E[G] = delta beta (ln m + gamma + E1(m))`` (``E1`` the exponential integral, gamma Euler's
    constant). For ``m >> 1`` this is the Gumbel mean ``delta beta (ln m + gamma)``; unlike that
    approximation it is never negative (an earlier version returned -0.017 s for lambda=10/s,
    delta=0.01 s).

    Parameters
    ----------
    arrival_rate_per_s : float
        Requests per second on the key (lambda).
    recompute_s : float
        Time to recompute the value (delta).
    beta : float
        XFetch's eagerness (beta > 0).

    Returns
    -------
    float
        Mean lead in seconds, >= 0.
    """
    rate = validate.positive_float("arrival_rate_per_s", arrival_rate_per_s)
    delta = validate.positive_float("recompute_s", recompute_s)
    b = validate.positive_float("beta", beta)
    scale = delta * b
    m = rate * scale
    return float(scale * (math.log(m) + 0.5772156649015329 + special.exp1(m)))


def simulate_hot_key_expiry(
    arrival_rate_per_s: float,
    recompute_s: float,
    protection: str = "none",
    beta: float = 1.0,
    n_trials: int = 1000,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """How many requests recompute a hot key around one expiry.

    Requests arrive as a Poisson stream at ``arrival_rate_per_s``; the cached value expires at time 0;
    recomputing it takes ``recompute_s``.

    - ``none``: every request that finds the key expired recomputes, until the first recomputation
      stores the value: about 1 + lambda * delta recomputations.
    - ``single-flight``: the first request recomputes, the others wait for it: exactly one.
    - ``xfetch``: before expiry each request recomputes with probability exp(-gap / (delta beta));
      nobody waits, and the few requests that also fire while the first recomputation runs are the
      only duplicates (Vattani et al. 2015).

    Parameters
    ----------
    arrival_rate_per_s : float
        Requests per second on the key (lambda).
    recompute_s : float
        Time to recompute the value (delta).
    protection : {"none", "single-flight", "xfetch"}
        How misses are handled.
    beta : float
        XFetch's eagerness (0 < beta <= 100).
    n_trials : int
        Expiries simulated (1 to ``MAX_TRIALS``).
    seed : int, numpy.random.Generator or None
        For arrivals and XFetch's draws.

    Returns
    -------
    pandas.DataFrame
        One row per trial: ``recomputes``, ``first_recompute_s`` (relative to expiry; negative means
        early), ``waiting_requests`` (requests that found no fresh value and had to wait),
        ``protection``, ``beta``.
    """
    rate = validate.positive_float("arrival_rate_per_s", arrival_rate_per_s)
    delta = validate.positive_float("recompute_s", recompute_s)
    kind = validate.choice("protection", protection, ("none", "single-flight", "xfetch"))
    b = validate.float_in_range("beta", beta, 0.0, 100.0, low_inclusive=False)
    trials = validate.bounded_int("n_trials", n_trials, MAX_TRIALS)
    if rate * delta > 1e6:
        raise ValueError("arrival_rate_per_s * recompute_s must be <= 1e6 (requests per recomputation)")
    rng = validate.rng_from_seed(seed)
    # Early triggers further than 30 delta*beta before expiry have probability e^-30 each: negligible.
    lead_s = 30.0 * delta * b if kind == "xfetch" else 0.0
    span_s = lead_s + 2.0 * delta + 20.0 / rate
    rows = []
    for _ in range(trials):
        count = rng.poisson(rate * span_s)
        t = np.sort(rng.uniform(-lead_s, span_s - lead_s, count))
        if kind == "xfetch":
            u = 1.0 - rng.random(count)  # uniform on (0, 1], so log(u) is finite
            fires = (t - delta * b * np.log(u) >= 0.0) | (t >= 0.0)
        else:
            fires = t >= 0.0
        if not fires.any():
            rows.append({"recomputes": 0, "first_recompute_s": math.nan, "waiting_requests": 0})
            continue
        first = int(np.argmax(fires))
        first_s = float(t[first])
        during = (t >= first_s) & (t < first_s + delta)
        if kind == "single-flight":
            recomputes = 1
            waiting = int(during.sum()) - 1
        else:
            recomputes = int((during & fires).sum())
            # Requests after expiry have no fresh value to serve: they wait for a recomputation.
            waiting = int((during & (t >= 0.0)).sum())
        rows.append({"recomputes": recomputes, "first_recompute_s": first_s, "waiting_requests": waiting})
    result = pd.DataFrame(rows)
    result["protection"] = kind
    result["beta"] = b if kind == "xfetch" else math.nan
    return result


# --------------------------------------------------------------------------- one key with a TTL


def simulate_ttl_key(
    arrival_rate_per_s: float,
    ttl_s: float,
    fetch_s: float,
    duration_s: float,
    single_flight: bool = False,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """One key read at a steady rate, its origin answer cached for ``ttl_s`` (0 = not cached at all).

    This is the negative-cache stampede when the origin's answer is "not found": with ``ttl_s=0``
    every request reaches the origin; with a TTL the origin sees a burst of about 1 + lambda * fetch
    queries each time the entry expires; with single-flight it sees one.

    Parameters
    ----------
    arrival_rate_per_s : float
        Reads per second of the key.
    ttl_s : float
        How long the origin's answer is cached (0: not cached).
    fetch_s : float
        Time the origin takes to answer.
    duration_s : float
        Simulated seconds.
    single_flight : bool
        Whether concurrent misses share one origin query.
    seed : int, numpy.random.Generator or None
        For the arrivals.

    Returns
    -------
    pandas.DataFrame
        One row per request: ``t_s``, ``origin_query`` (this request queried the origin), ``waited_s``.
    """
    rate = validate.positive_float("arrival_rate_per_s", arrival_rate_per_s)
    ttl = validate.non_negative_float("ttl_s", ttl_s)
    fetch = validate.positive_float("fetch_s", fetch_s)
    duration = validate.positive_float("duration_s", duration_s)
    if not isinstance(single_flight, bool):
        raise TypeError(f"single_flight must be a bool, got {single_flight!r}")
    if rate * duration > 5e6:
        raise ValueError("arrival_rate_per_s * duration_s must be <= 5e6 requests")
    rng = validate.rng_from_seed(seed)
    times = np.cumsum(rng.exponential(1.0 / rate, rng.poisson(rate * duration)))
    times = times[times < duration]
    queried = np.zeros(times.size, dtype=bool)
    waited = np.zeros(times.size)
    fresh_until = -math.inf  # the cached answer is fresh before this instant
    completions: list = []  # heap of completion times of origin queries in flight
    for i, now in enumerate(times.tolist()):
        while completions and completions[0] <= now:
            fresh_until = max(fresh_until, heapq.heappop(completions) + ttl)
        if now < fresh_until:
            continue
        if single_flight and completions:
            waited[i] = completions[0] - now
            continue
        queried[i] = True
        waited[i] = fetch
        heapq.heappush(completions, now + fetch)
    return pd.DataFrame({"t_s": times, "origin_query": queried, "waited_s": waited})


def theory_ttl_key_origin_rate_per_s(
    arrival_rate_per_s: float, ttl_s: float, fetch_s: float, single_flight: bool = False
) -> float:
    """Origin queries per second for :func:`simulate_ttl_key` (renewal argument).

    A cycle starts with the first request after the entry expires (mean wait 1/lambda). Without
    single-flight, every request in the next ``fetch_s`` also queries (1 + lambda f queries); the last
    of them completes about 2f after the cycle starts, and the entry is fresh for ``ttl_s`` after that.
    With single-flight there is one query and the entry is fresh from f to f + ttl.

    Parameters
    ----------
    arrival_rate_per_s : float
        Reads per second (lambda).
    ttl_s : float
        Cache TTL (0: not cached).
    fetch_s : float
        Origin answer time (delta).
    single_flight : bool
        Whether misses are coalesced.

    Returns
    -------
    float
        Origin queries per second.
    """
    rate = validate.positive_float("arrival_rate_per_s", arrival_rate_per_s)
    ttl = validate.non_negative_float("ttl_s", ttl_s)
    fetch = validate.positive_float("fetch_s", fetch_s)
    if ttl == 0:
        # Not cached: without single-flight every request queries; with it, one per fetch period.
        return rate if not single_flight else 1.0 / (1.0 / rate + fetch)
    if single_flight:
        return 1.0 / (1.0 / rate + fetch + ttl)
    return (1.0 + rate * fetch) / (1.0 / rate + 2.0 * fetch + ttl)


def summarize_ttl_key(run: pd.DataFrame, bin_s: float = 1.0) -> pd.DataFrame:
    """Origin queries per second in bins of ``bin_s``: ``t_s`` (bin start), ``origin_per_s``.

    Parameters
    ----------
    run : pandas.DataFrame
        :func:`simulate_ttl_key` output.
    bin_s : float
        Bin width in seconds.

    Returns
    -------
    pandas.DataFrame
        ``t_s`` (bin start), ``origin_per_s``.
    """
    if not isinstance(run, pd.DataFrame) or "origin_query" not in run.columns:
        raise TypeError("run must come from simulate_ttl_key")
    width = validate.positive_float("bin_s", bin_s)
    if run.empty:
        return pd.DataFrame({"t_s": [], "origin_per_s": []})
    edges = np.arange(0.0, run["t_s"].max() + width, width)
    counts, _ = np.histogram(run.loc[run["origin_query"], "t_s"], bins=edges)
    return pd.DataFrame({"t_s": edges[:-1], "origin_per_s": counts / width})


# --------------------------------------------------------------------------- hot key and shards


def simulate_shard_load(
    popularity: np.ndarray,
    n_shards: int,
    arrival_rate_per_s: float,
    mitigation: str = "none",
    hot_keys: int = 10,
    replicas: int = 8,
    local_hit_ratio: float = 0.95,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Expected requests per second each shard serves when keys are spread over shards by hash.

    Parameters
    ----------
    popularity : array
        Request probability of each key (from :func:`zipf_popularity`).
    n_shards : int
        Cache shards; each key lives on one, chosen by a (seeded, uniform) hash.
    arrival_rate_per_s : float
        Total request rate.
    mitigation : {"none", "replicate", "local-cache"}
        ``replicate`` spreads each of the ``hot_keys`` most popular keys over ``replicas`` shards
        (key suffixes, a read picks one); ``local-cache`` serves ``local_hit_ratio`` of their reads
        from an in-process cache in each application server.

    Returns
    -------
    pandas.DataFrame
        One row per shard: ``shard``, ``load_per_s``, ``holds_hottest`` (bool), ``mitigation``.
    """
    p = _float_array("popularity", popularity)
    if p.ndim != 1 or p.size == 0 or p.size > MAX_KEYS or not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError(
            f"popularity must be a 1-d array of at most {MAX_KEYS:,} finite, non-negative probabilities"
        )
    shards = validate.bounded_int("n_shards", n_shards, 10_000)
    rate = validate.positive_float("arrival_rate_per_s", arrival_rate_per_s)
    kind = validate.choice("mitigation", mitigation, ("none", "replicate", "local-cache"))
    hot = validate.int_in_range("hot_keys", hot_keys, 0, p.size)
    copies = validate.int_in_range("replicas", replicas, 1, shards)
    local = validate.probability("local_hit_ratio", local_hit_ratio)
    rng = validate.rng_from_seed(seed)
    home = rng.integers(0, shards, p.size)
    load = p * rate
    per_shard = np.bincount(home, weights=load, minlength=shards)
    if kind == "replicate" and hot:
        for key in range(hot):
            per_shard[home[key]] -= load[key]
            spread = (home[key] + np.arange(copies)) % shards
            np.add.at(per_shard, spread, load[key] / copies)
    elif kind == "local-cache" and hot:
        np.subtract.at(per_shard, home[:hot], load[:hot] * local)
    return pd.DataFrame(
        {
            "shard": np.arange(shards),
            "load_per_s": per_shard,
            "holds_hottest": np.arange(shards) == home[0],
            "mitigation": kind,
        }
    )


# --------------------------------------------------------------------------- decision framework


def decision_table() -> pd.DataFrame:
    """Which layer to cache at: what each holds, how stale it can be, who can invalidate it.

    A summary of the chapter's argument, not a measurement; latencies are orders of magnitude (see
    ``data/latency_ladder.csv`` for sourced figures).

    Returns
    -------
    pandas.DataFrame
        One row per layer: what it holds, typical hit latency, staleness, who invalidates it.
    """
    rows = [
        (
            "browser",
            "a user's own responses",
            "~0 (no request)",
            "Cache-Control max-age, ETag",
            "you cannot purge it: keep max-age short for anything that changes",
        ),
        (
            "CDN edge",
            "public responses, static assets",
            "ms (nearby PoP)",
            "TTL, purge API, surrogate keys",
            "public, cacheable responses; version asset URLs instead of purging",
        ),
        (
            "reverse proxy",
            "responses for all users of one site",
            "sub-ms on the host",
            "TTL, stale-while-revalidate",
            "absorbs stampedes at the edge of your service",
        ),
        (
            "in-process LRU",
            "hot objects, parsed config",
            "ns-us",
            "TTL; per-process, so N copies",
            "hot keys and per-request lookups; small and short TTL",
        ),
        (
            "distributed cache",
            "shared objects, sessions, computed results",
            "~0.1-1 ms (one RTT)",
            "delete on write, TTL",
            "data shared by many servers; the default choice",
        ),
        (
            "database buffer pool",
            "table and index pages",
            "us (no disk I/O)",
            "automatic",
            "size it first; it caches everything the DB reads",
        ),
        (
            "query-plan cache",
            "parsed and planned statements",
            "saves planning time",
            "automatic; prepared statements",
            "many repeats of the same query shape",
        ),
        ("OS page cache", "file blocks", "us vs ms from disk", "automatic", "free memory does this for you"),
        (
            "DNS",
            "name to address",
            "saves a lookup RTT",
            "record TTL",
            "respect TTLs; long TTLs slow failover",
        ),
    ]
    return pd.DataFrame(rows, columns=["layer", "caches", "saves or costs", "invalidation", "use it for"])


# --------------------------------------------------------------------------- plots


def plot_hit_ratio(simulated: pd.DataFrame, theory: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Hit ratio against cache size: simulated LRU (points) and Che's approximation (line).

    Parameters
    ----------
    simulated : pandas.DataFrame
        ``capacity``, ``hit_ratio`` (from :func:`lru_hit_ratios`).
    theory : pandas.DataFrame
        ``capacity``, ``hit_ratio`` (from :func:`theory_lru_hit_ratio`).
    ax : matplotlib Axes, optional
        Where to draw.

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = axes_or_new(ax)
    ax.plot(theory["capacity"], theory["hit_ratio"], color="0.4", label="Che approximation")
    ax.plot(simulated["capacity"], simulated["hit_ratio"], "o", label="simulated LRU")
    ax.set_xscale("log")
    return label(ax, "cache size (entries)", "hit ratio", legend=True)


def plot_latency_cdf(runs: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Empirical CDF of read latency per pattern (log x).

    Parameters
    ----------
    runs : pandas.DataFrame
        :func:`simulate_pattern` outputs (``pattern``, ``is_write``, ``latency_ms``).
    ax : matplotlib Axes, optional
        Where to draw.

    Returns
    -------
    matplotlib.axes.Axes
    """
    validate.frame_columns("runs", runs, ["pattern", "is_write", "latency_ms"])
    ax = axes_or_new(ax)
    for name, run in runs.groupby("pattern", sort=False):
        values = run.loc[~run["is_write"], "latency_ms"].to_numpy()
        # 1,000 quantiles draw the same curve as every point and keep the figure small.
        levels = np.linspace(0.0, 1.0, 1001)
        ax.step(np.quantile(values, levels), levels, where="post", label=name)
    ax.set_xscale("log")
    return label(ax, "read latency (ms)", "fraction of reads at or below", legend=True)


def plot_origin_rate(series: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Origin queries per second over time, one line per ``strategy``.

    Parameters
    ----------
    series : pandas.DataFrame
        ``t_s``, ``origin_per_s``, ``strategy`` (from :func:`summarize_ttl_key`).
    ax : matplotlib Axes, optional
        Where to draw.

    Returns
    -------
    matplotlib.axes.Axes
    """
    validate.frame_columns("series", series, ["strategy", "t_s", "origin_per_s"])
    ax = axes_or_new(ax)
    for name, run in series.groupby("strategy", sort=False):
        ax.step(run["t_s"], run["origin_per_s"], where="post", label=name)
    ax.set_yscale("symlog", linthresh=1.0)
    return label(ax, "time (s)", "origin queries (per s)", legend=True)


def plot_shard_load(loads: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Per-shard load for each mitigation, shards sorted by load (grouped bars).

    Parameters
    ----------
    loads : pandas.DataFrame
        :func:`simulate_shard_load` outputs (``mitigation``, ``load_per_s``).
    ax : matplotlib Axes, optional
        Where to draw.

    Returns
    -------
    matplotlib.axes.Axes
    """
    validate.frame_columns("loads", loads, ["mitigation", "load_per_s"])
    ax = axes_or_new(ax)
    groups = list(loads.groupby("mitigation", sort=False))
    width = 0.8 / max(len(groups), 1)
    for k, (name, run) in enumerate(groups):
        ordered = np.sort(run["load_per_s"].to_numpy())[::-1]
        ax.bar(np.arange(ordered.size) + k * width, ordered, width=width, label=name)
    return label(ax, "shard (sorted by load)", "requests (per s)", legend=True)


# --------------------------------------------------------------------------- a real stampede on Redis

STAMPEDE_PROTECTIONS = ("none", "lock", "xfetch")


def _stampede_client(client, key, protection, ctx, index, rng_seed):
    """One client: read the key every ``interval_s``; on a miss (or an XFetch early draw) recompute."""
    import json
    import time as clock

    rng = np.random.default_rng(rng_seed)
    rows = ctx["rows"][index]
    lock_key = key + ":lock"
    while True:
        now = clock.monotonic()
        if now >= ctx["end"]:
            return
        started = clock.perf_counter()
        raw = client.get(key)
        outcome = "hit"
        if raw is not None and protection == "xfetch":
            value = json.loads(raw)
            # XFetch: recompute early when now - delta*beta*ln(U) >= expiry (wall clock of the writer).
            if (
                clock.time() - value["delta_s"] * ctx["beta"] * math.log(1.0 - rng.random())
                >= value["expiry"]
            ):
                raw, outcome = None, "early refresh"
        if raw is None:
            if protection == "lock":
                if client.set(lock_key, b"1", nx=True, px=ctx["lock_ms"]):
                    outcome = "recompute"
                else:
                    outcome = "waited"
                    while client.get(key) is None and clock.monotonic() < ctx["end"] + 5:
                        clock.sleep(ctx["poll_s"])
            elif outcome != "early refresh":
                outcome = "recompute"
            if outcome in ("recompute", "early refresh"):
                began = clock.perf_counter()
                clock.sleep(ctx["recompute_s"])  # the origin's work: a slow query
                ctx["origin_calls"].append(clock.monotonic())
                delta_s = clock.perf_counter() - began
                payload = json.dumps({"v": index, "delta_s": delta_s, "expiry": clock.time() + ctx["ttl_s"]})
                client.set(key, payload, px=int(ctx["ttl_s"] * 1000))
                if protection == "lock":
                    client.delete(lock_key)
        rows.append((now - ctx["start"], (clock.perf_counter() - started) * 1000, outcome))
        pause = ctx["interval_s"] - (clock.monotonic() - now)
        if pause > 0:
            clock.sleep(pause)


def run_stampede(
    engine: object,
    protection: str = "none",
    *,
    n_clients: int = 32,
    request_interval_s: float = 0.02,
    recompute_s: float = 0.1,
    ttl_s: float = 1.0,
    duration_s: float = 3.0,
    beta: float = 1.0,
    seed: int | np.random.Generator | None = 0,
    timeout_s: float = 30.0,
) -> Run:
    """Real: cache-aside on a Redis server, many clients reading one key that keeps expiring.

    Each of ``n_clients`` threads (its own connection) reads the key every ``request_interval_s``.
    The value lives ``ttl_s`` (``SET ... PX``); recomputing it takes ``recompute_s`` (a sleep standing
    for the slow query). Protections:

    - ``none``: every client that misses recomputes and sets the value;
    - ``lock``: single-flight across processes: a client that misses takes ``SET key:lock 1 NX PX``;
      the winner recomputes and deletes the lock, the others poll every 5 ms until the value is back;
    - ``xfetch``: the value carries its recompute time and expiry; each read recomputes early with
      XFetch's rule ``now - delta * beta * ln(U) >= expiry`` (Vattani et al. 2015), otherwise as ``none``.

    Parameters
    ----------
    engine : syslab.engines.Engine
        A Redis engine; the run uses a fresh database (``engine.database()``).
    protection : {"none", "lock", "xfetch"}
        How misses are handled.
    n_clients : int
        Client threads, 1 to ``MAX_CLIENTS``.
    request_interval_s : float
        Seconds between one client's reads (0.001 to 1).
    recompute_s : float
        Time one recomputation takes (0.001 to 5 s).
    ttl_s : float
        TTL of the cached value (0.05 to 30 s).
    duration_s : float
        Seconds of traffic (at most ``MAX_REAL_DURATION_S``).
    beta : float
        XFetch's eagerness (``xfetch`` only; 0 < beta <= 100).
    seed : int, numpy.random.Generator or None
        For XFetch's draws.
    timeout_s : float
        Bound on the whole run (seconds, at most 120); clients stop at ``duration_s`` regardless.

    Returns
    -------
    experiment.Run
        ``frame``: one row per read: ``client``, ``t_s``, ``latency_ms``, ``outcome`` (``hit``,
        ``recompute``, ``early refresh``, ``waited``), ``protection``. ``summary``: ``recomputes``
        (origin calls), ``refresh_cycles`` (recompute bursts: calls more than ``recompute_s`` apart),
        ``recomputes_per_cycle``, ``p50_ms``, ``p99_ms``, ``max_ms``, ``reads``, ``engine``.
    """
    import threading
    import time as clock

    for attribute in ("connect", "database", "label"):
        if not hasattr(engine, attribute):
            raise TypeError(f"engine must be a syslab.engines.Engine for Redis, got {type(engine).__name__}")
    kind = validate.choice("protection", protection, STAMPEDE_PROTECTIONS)
    clients = validate.bounded_int("n_clients", n_clients, MAX_CLIENTS)
    interval = validate.float_in_range("request_interval_s", request_interval_s, 0.001, 1.0)
    recompute = validate.float_in_range("recompute_s", recompute_s, 0.001, 5.0)
    ttl = validate.float_in_range("ttl_s", ttl_s, 0.05, 30.0)
    duration = validate.float_in_range("duration_s", duration_s, 0.1, MAX_REAL_DURATION_S)
    b = validate.float_in_range("beta", beta, 0.0, 100.0, low_inclusive=False)
    limit = validate.float_in_range("timeout_s", timeout_s, 1.0, 120.0)
    if limit < duration + recompute + 1.0:
        raise ValueError(f"timeout_s must cover duration_s + recompute_s + 1 s, got {limit}")
    seeds = validate.rng_from_seed(seed).integers(2**62, size=clients)
    with engine.database() as db:
        connections = [db.connect() for _ in range(clients)]
        try:
            start = clock.monotonic()
            ctx = {
                "start": start,
                "end": start + duration,
                "interval_s": interval,
                "recompute_s": recompute,
                "ttl_s": ttl,
                "beta": b,
                "lock_ms": int(max(3 * recompute, 0.05) * 1000),
                "poll_s": 0.005,
                "rows": [[] for _ in range(clients)],
                "origin_calls": [],
            }
            threads = [
                threading.Thread(
                    target=_stampede_client,
                    args=(connections[i], "hot", kind, ctx, i, int(seeds[i])),
                    daemon=True,
                )
                for i in range(clients)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=max(start + limit - clock.monotonic(), 0.1))
            if any(thread.is_alive() for thread in threads):
                ctx["end"] = 0.0  # tell the stragglers to stop; they are daemons and hold no state
                raise TimeoutError(f"run_stampede passed its timeout_s={limit}")
        finally:
            for connection in connections:
                connection.close()
    rows = [
        (i, t, latency, outcome)
        for i, client_rows in enumerate(ctx["rows"])
        for t, latency, outcome in client_rows
    ]
    frame = pd.DataFrame(rows, columns=["client", "t_s", "latency_ms", "outcome"]).sort_values("t_s")
    frame["protection"] = kind
    calls = np.sort(np.asarray(ctx["origin_calls"]))
    cycles = int(1 + np.count_nonzero(np.diff(calls) > recompute)) if calls.size else 0
    latency = frame["latency_ms"]
    summary = {
        "protection": kind,
        "recomputes": int(calls.size),
        "refresh_cycles": cycles,
        "recomputes_per_cycle": float(calls.size / cycles) if cycles else 0.0,
        "p50_ms": float(latency.quantile(0.5)),
        "p99_ms": float(latency.quantile(0.99)),
        "max_ms": float(latency.max()),
        "reads": int(len(frame)),
        "engine": engine.label,
    }
    return Run.create(frame.reset_index(drop=True), summary, engine=engine)


def summarize_stampede(runs: list) -> pd.DataFrame:
    """One row per :func:`run_stampede` result: the numbers the chapter's table shows.

    Parameters
    ----------
    runs : list of experiment.Run
        Results of :func:`run_stampede`.

    Returns
    -------
    pandas.DataFrame
        ``protection``, ``reads``, ``recomputes``, ``refresh_cycles``, ``recomputes_per_cycle``,
        ``p50_ms``, ``p99_ms``, ``max_ms``.
    """
    if not isinstance(runs, list) or not runs or not all(isinstance(run, Run) for run in runs):
        raise TypeError("runs must be a non-empty list of run_stampede results")
    columns = [
        "protection",
        "reads",
        "recomputes",
        "refresh_cycles",
        "recomputes_per_cycle",
        "p50_ms",
        "p99_ms",
        "max_ms",
    ]
    return pd.DataFrame([{name: run.summary[name] for name in columns} for run in runs])


def plot_stampede(frame: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Read latency over time, one colour per protection (log y axis).

    Parameters
    ----------
    frame : pandas.DataFrame
        Concatenated :func:`run_stampede` frames (``t_s``, ``latency_ms``, ``protection``).
    ax : matplotlib Axes, optional
        Where to draw.

    Returns
    -------
    matplotlib.axes.Axes
    """
    data = validate.frame_columns("frame", frame, ["t_s", "latency_ms", "protection"])
    ax = axes_or_new(ax)
    for name, rows in data.groupby("protection", sort=False):
        ax.plot(rows["t_s"], rows["latency_ms"].clip(lower=0.05), ".", markersize=2, label=name)
    ax.set_yscale("log")
    label(ax, "time (s)", "read latency (ms)")
    ax.legend(markerscale=6)
    return ax


def stampede_from_model(
    n_clients: int,
    request_interval_s: float,
    recompute_s: float,
    *,
    n_trials: int = 30,
    seed: int | np.random.Generator | None = 0,
) -> list:
    """Where no Redis server is available: :func:`simulate_hot_key_expiry` shaped like :func:`run_stampede` results.

    Parameters
    ----------
    n_clients : int
        Clients (1 to ``MAX_CLIENTS``); they read ``n_clients / request_interval_s`` times a second,
        and no more than ``n_clients`` can recompute at once.
    request_interval_s : float
        Seconds between one client's reads.
    recompute_s : float
        Time one recomputation takes.
    n_trials : int
        Expiries simulated per protection (1 to 1,000).
    seed : int, numpy.random.Generator or None
        For the simulation.

    Returns
    -------
    list of experiment.Run
        One per protection (``none``, ``lock``, ``xfetch``), with the frame columns and summary keys of
        :func:`run_stampede` (``engine`` ``"the model (no server)"``); latencies are 0.5 ms for a hit
        and uniform over the recomputation for a request that waited.
    """
    clients = validate.bounded_int("n_clients", n_clients, MAX_CLIENTS)
    interval = validate.float_in_range("request_interval_s", request_interval_s, 0.001, 1.0)
    recompute = validate.float_in_range("recompute_s", recompute_s, 0.001, 5.0)
    trials = validate.bounded_int("n_trials", n_trials, 1_000)
    rng = validate.rng_from_seed(seed)
    rate = clients / interval
    runs = []
    for name, protection in (("none", "none"), ("lock", "single-flight"), ("xfetch", "xfetch")):
        sim = simulate_hot_key_expiry(rate, recompute, protection, 1.0, trials, seed=rng)
        recomputes = np.minimum(sim["recomputes"].to_numpy(), clients)
        waiting = sim["waiting_requests"].to_numpy()
        hits = int(rate * 1.0)  # one second of reads per expiry
        latency = np.concatenate(
            [np.full(hits * trials, 0.5)] + [rng.uniform(0.5, recompute * 1000, w) for w in waiting]
        )
        times = np.sort(rng.uniform(0.0, float(trials), latency.size))
        frame = pd.DataFrame(
            {"client": 0, "t_s": times, "latency_ms": latency, "outcome": "model", "protection": name}
        )
        summary = {
            "protection": name,
            "recomputes": int(recomputes.sum()),
            "refresh_cycles": trials,
            "recomputes_per_cycle": float(recomputes.mean()),
            "p50_ms": float(np.quantile(latency, 0.5)),
            "p99_ms": float(np.quantile(latency, 0.99)),
            "max_ms": float(latency.max()),
            "reads": int(latency.size),
            "engine": "the model (no server)",
        }
        runs.append(Run.create(frame, summary))
    return runs
