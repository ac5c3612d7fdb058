"""Queueing models: Little's law, Erlang C, Kingman, and a connection pool you can watch.

Three kinds of function live here, side by side so tests can hold one against
the other:

- **theory** -- closed forms: :func:`littles_law_l`, :func:`erlang_c`,
  :func:`mmc_mean_queue_delay_s`, :func:`kingman_queue_delay_s`, and the exact
  stationary solution of a closed system whose database slows down when more
  queries run than it has cores (:func:`theory_closed_pool`);
- **simulate** -- a simpy model of a connection pool with an acquire timeout
  (:func:`simulate_pool`), the same model as a vectorised-workload recursion
  that is fast enough for sweeps (``engine="fast"``), and a stochastic simulation
  of the closed system (:func:`simulate_closed_pool`);
- **summarize / plot** -- small tables from the tidy per-request DataFrame, and
  plots that compute nothing.

Units are in the names: ``_s`` seconds, ``_ms`` milliseconds, ``_per_s`` per second.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import simpy
from matplotlib.axes import Axes

from syslab import validate
from syslab.plot import axes_or_new, label

__all__ = [
    "latency_percentiles_ms",
    "PoolConfig",
    "ContentionDatabase",
    "draw_gaps_s",
    "erlang_c",
    "kingman_queue_delay_s",
    "littles_law_l",
    "mmc_mean_queue_delay_s",
    "plot_closed_pool",
    "plot_erlang_vs_simulation",
    "plot_kingman",
    "piecewise_poisson_arrival_times_s",
    "plot_retries",
    "plot_wait_distribution",
    "replicate_pool",
    "simulate_closed_pool",
    "simulate_pool",
    "simulate_pool_retries",
    "summarize_retries",
    "theory_allen_cunneen_queue_delay_s",
    "summarize_littles_law",
    "summarize_pool",
    "sweep_arrival_cv",
    "sweep_kingman",
    "sweep_pool_sizes",
    "theory_closed_pool",
    "hikaricp_pool_size",
]

OUTCOMES = ("served", "timeout")
MAX_SERVERS = 100_000  # servers in a closed form: Erlang C loops once per server
MAX_RETRIES = 20  # retries per request in simulate_pool_retries
MAX_REPLICATIONS = 1_000  # independent runs in one replicated sweep
ECDF_POINTS = 2_000  # steps plot_wait_distribution draws (a 1/2000 resolution in the fraction)


def _child_seeds(seed: int | np.random.Generator | None, n: int) -> list[np.random.Generator]:
    """``n`` independent generators from ``seed`` (an int's ``SeedSequence`` children, or ``Generator.spawn``)."""
    if isinstance(seed, np.random.Generator):
        return list(seed.spawn(n))
    root = np.random.SeedSequence(None if seed is None else validate.non_negative_int("seed", seed))
    return [np.random.default_rng(child) for child in root.spawn(n)]


# --------------------------------------------------------------------------- theory


def littles_law_l(arrival_rate_per_s: float, mean_time_in_system_s: float) -> float:
    """Mean number in system, L = lambda * W (Little 1961).

    Parameters
    ----------
    arrival_rate_per_s : float
        Long-run rate at which items enter (and, in steady state, leave), per second.
    mean_time_in_system_s : float
        Mean time an item spends inside, in seconds.

    Returns
    -------
    float
        Mean number of items inside (dimensionless).
    """
    lam = validate.non_negative_float("arrival_rate_per_s", arrival_rate_per_s)
    w = validate.non_negative_float("mean_time_in_system_s", mean_time_in_system_s)
    return lam * w


def erlang_c(servers: int, offered_load_erlangs: float) -> float:
    """Probability that an arrival must wait in an M/M/c queue (Erlang's C formula).

    Computed through the numerically stable Erlang B recursion
    ``B(k) = a B(k-1) / (k + a B(k-1))`` and ``C = c B / (c - a (1 - B))``, so it
    works for thousands of servers without factorial overflow.

    Parameters
    ----------
    servers : int
        Number of servers c (here: connections in the pool), >= 1.
    offered_load_erlangs : float
        a = lambda / mu = arrival rate x mean service time, >= 0.

    Returns
    -------
    float
        P(wait) in [0, 1]; 1.0 when ``a >= c`` (the queue is unstable and every
        arrival eventually waits).
    """
    c = validate.bounded_int("servers", servers, MAX_SERVERS)
    a = validate.non_negative_float("offered_load_erlangs", offered_load_erlangs)
    if a == 0:
        return 0.0
    if a >= c:
        return 1.0
    blocking = 1.0
    for k in range(1, c + 1):
        blocking = a * blocking / (k + a * blocking)
    return c * blocking / (c - a * (1.0 - blocking))


def mmc_mean_queue_delay_s(arrival_rate_per_s: float, mean_service_s: float, servers: int) -> float:
    """Mean time waiting for a server in M/M/c: Wq = C(c, a) / (c mu - lambda).

    Returns ``inf`` when the load reaches the capacity (lambda >= c mu).

    Parameters
    ----------
    arrival_rate_per_s : float
        Mean arrival rate lambda (per second, >= 0).
    mean_service_s : float
        Mean time a request holds a server (seconds, > 0).
    servers : int
        Servers c, 1 to ``MAX_SERVERS``.

    Returns
    -------
    float
        Mean wait for a server in seconds; ``inf`` when the load reaches the capacity.
    """
    lam = validate.non_negative_float("arrival_rate_per_s", arrival_rate_per_s)
    s = validate.positive_float("mean_service_s", mean_service_s)
    c = validate.bounded_int("servers", servers, MAX_SERVERS)
    capacity_per_s = c / s
    if lam >= capacity_per_s:
        return math.inf
    return erlang_c(c, lam * s) / (capacity_per_s - lam)


def theory_allen_cunneen_queue_delay_s(
    arrival_rate_per_s: float,
    mean_service_s: float,
    servers: int,
    cv_arrival: float = 1.0,
    cv_service: float = 1.0,
) -> float:
    """Mean wait for a server in G/G/c by the Allen-Cunneen approximation.

    ``Wq(G/G/c) ~ Wq(M/M/c) * (cv_arrival**2 + cv_service**2) / 2``: Erlang C's wait scaled by
    the same variability factor as Kingman's formula (Allen 1990, *Probability, Statistics, and
    Queueing Theory*, 2nd ed., section 6.4). Exact for M/M/c (both CVs 1); an approximation
    otherwise, best at high utilisation.

    Parameters
    ----------
    arrival_rate_per_s : float
        Mean arrival rate (requests per second), >= 0.
    mean_service_s : float
        Mean time a request holds a server (seconds), > 0.
    servers : int
        Servers (pool connections) c, 1 to ``MAX_SERVERS``.
    cv_arrival, cv_service : float
        Coefficients of variation of the gaps between arrivals and of service times (>= 0;
        1 for Poisson arrivals and exponential service).

    Returns
    -------
    float
        Mean queueing delay in seconds (``inf`` when lambda >= c / mean_service_s).
    """
    ca = validate.non_negative_float("cv_arrival", cv_arrival)
    cs = validate.non_negative_float("cv_service", cv_service)
    return mmc_mean_queue_delay_s(arrival_rate_per_s, mean_service_s, servers) * (ca**2 + cs**2) / 2


def kingman_queue_delay_s(
    arrival_rate_per_s: float,
    mean_service_s: float,
    cv_arrival: float = 1.0,
    cv_service: float = 1.0,
) -> float:
    """Kingman's approximation of the mean queueing delay Wq of a G/G/1 queue.

    ``Wq ~ (rho / (1 - rho)) * ((ca^2 + cs^2) / 2) * E[S]`` (Kingman 1961). It is the
    *queueing* delay, not the time in system. With Poisson arrivals (ca = 1) it is
    exact: it reduces to the Pollaczek-Khinchine formula for M/G/1.

    Parameters
    ----------
    arrival_rate_per_s : float
        lambda, per second.
    mean_service_s : float
        E[S], seconds.
    cv_arrival, cv_service : float
        Coefficients of variation (standard deviation / mean) of the gaps between
        arrivals and of service times: 0 deterministic, 1 exponential.

    Returns
    -------
    float
        Wq in seconds; ``inf`` when rho = lambda E[S] >= 1.
    """
    lam = validate.non_negative_float("arrival_rate_per_s", arrival_rate_per_s)
    s = validate.positive_float("mean_service_s", mean_service_s)
    ca = validate.non_negative_float("cv_arrival", cv_arrival)
    cs = validate.non_negative_float("cv_service", cv_service)
    rho = lam * s
    if rho >= 1:
        return math.inf
    return rho / (1 - rho) * (ca**2 + cs**2) / 2 * s


def hikaricp_pool_size(core_count: int, effective_spindle_count: int = 0) -> int:
    """HikariCP's starting point for a pool: ``core_count * 2 + effective_spindle_count``.

    From the HikariCP wiki page "About Pool Sizing" (the formula it credits to the
    PostgreSQL project). ``core_count`` excludes hyper-threads; the spindle count
    is 0 when the working set is fully cached. A starting point to measure from,
    not an answer.

    Parameters
    ----------
    core_count : int
        CPU cores of the database server (>= 1).
    effective_spindle_count : int
        Disks that can seek independently (0 when the working set is cached; SSDs count as a few).

    Returns
    -------
    int
        Connections: ``core_count * 2 + effective_spindle_count``.
    """
    cores = validate.positive_int("core_count", core_count)
    spindles = validate.non_negative_int("effective_spindle_count", effective_spindle_count)
    return cores * 2 + spindles


# --------------------------------------------------------------------- workload


def latency_percentiles_ms(latency_ms: np.ndarray) -> dict[str, float]:
    """Mean, p50, p99 and p99.9 of request latencies: the summary every latency model shows.

    Parameters
    ----------
    latency_ms : numpy.ndarray
        Latencies in milliseconds (at least one).

    Returns
    -------
    dict of str to float
        ``mean_ms``, ``p50_ms``, ``p99_ms``, ``p999_ms``.
    """
    lat = np.asarray(latency_ms, dtype=float)
    if lat.ndim != 1 or lat.size == 0:
        raise ValueError(f"latency_ms must be a non-empty 1-D array, got shape {lat.shape}")
    return {
        "mean_ms": float(lat.mean()),
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "p999_ms": float(np.percentile(lat, 99.9)),
    }


MAX_ARRIVALS = 50_000_000  # 400 MB of float64 times: the largest arrival stream a chapter may draw
MAX_PHASES = 10_000  # rate phases in one piecewise Poisson stream
MAX_SWEEP_POINTS = 200  # grid points in one sweep (one simulation each)
MAX_CV = 100.0  # coefficient of variation of a gap or service time
MAX_CLOSED_EVENTS = 5_000_000  # events of the closed-pool Markov chain (a Python loop, ~1 s per million)


def poisson_arrival_times_s(n: int, arrival_rate_per_s: float, rng: np.random.Generator) -> np.ndarray:
    """Arrival times of a Poisson process: cumulative sums of exponential gaps.

    The one place the library draws Poisson arrivals (every model with random arrivals
    calls it, so they are drawn the same way).

    Parameters
    ----------
    n : int
        Number of arrivals, 1 to ``MAX_ARRIVALS``.
    arrival_rate_per_s : float
        Mean arrivals per second, > 0.
    rng : numpy.random.Generator
        The caller's stream (from ``validate.rng_from_seed``).

    Returns
    -------
    numpy.ndarray
        float64 array of shape (n,), increasing, seconds from time 0.
    """
    n = validate.int_in_range("n", n, 1, MAX_ARRIVALS)
    rate = validate.positive_float("arrival_rate_per_s", arrival_rate_per_s)
    validate.instance("rng", rng, np.random.Generator)
    return np.cumsum(rng.exponential(1.0 / rate, size=n))


def piecewise_poisson_arrival_times_s(
    rates_per_s: Sequence[float], durations_s: Sequence[float], *, seed: int | np.random.Generator | None = 0
) -> np.ndarray:
    """Poisson arrivals whose rate changes in steps (a load spike, a daily peak).

    Parameters
    ----------
    rates_per_s : sequence of float
        Arrival rate of each phase (per second, > 0).
    durations_s : sequence of float
        Length of each phase in seconds (> 0), one per rate.
    seed : int, numpy.random.Generator or None
        Source of randomness.

    Returns
    -------
    numpy.ndarray
        Sorted arrival times in seconds from 0 to ``sum(durations_s)``, at most ``MAX_ARRIVALS``.
    """
    rates = validate.sequence_of_floats(
        "rates_per_s", rates_per_s, 0.0, MAX_ARRIVALS, max_length=MAX_PHASES, low_inclusive=False
    )
    durations = validate.sequence_of_floats(
        "durations_s", durations_s, 0.0, MAX_ARRIVALS, max_length=MAX_PHASES, low_inclusive=False
    )
    if not rates or len(rates) != len(durations):
        raise ValueError(
            f"rates_per_s and durations_s must have the same length >= 1, got {len(rates)} and {len(durations)}"
        )
    expected = sum(r * d for r, d in zip(rates, durations, strict=True))
    if expected > MAX_ARRIVALS / 2:
        raise ValueError(
            f"rates_per_s x durations_s expects {expected:,.0f} arrivals; at most {MAX_ARRIVALS // 2:,}"
        )
    rng = validate.rng_from_seed(seed)
    parts, start = [], 0.0
    for rate, duration in zip(rates, durations, strict=True):
        n = int(rng.poisson(rate * duration))
        parts.append(np.sort(start + rng.uniform(0.0, duration, size=n)))
        start += duration
    return np.concatenate(parts)


def draw_gaps_s(n: int, mean_s: float, cv: float, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` positive durations with the given mean and coefficient of variation.

    ``cv = 0`` gives a constant; otherwise a gamma distribution with shape ``1/cv^2``
    (``cv = 1`` is the exponential). Used for both inter-arrival gaps and service times.

    Parameters
    ----------
    n : int
        How many durations, 1 or more.
    mean_s : float
        Their mean in seconds (> 0).
    cv : float
        Coefficient of variation (>= 0; 0 gives a constant, 1 the exponential).
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    numpy.ndarray
        float64 array of shape (n,), seconds.
    """
    n = validate.bounded_int("n", n, MAX_ARRIVALS)
    validate.instance("rng", rng, np.random.Generator)
    mean_s = validate.positive_float("mean_s", mean_s)
    cv = validate.non_negative_float("cv", cv)
    if cv == 0:
        return np.full(n, mean_s)
    shape = 1.0 / cv**2
    return rng.gamma(shape, mean_s / shape, size=n)


@dataclass(frozen=True)
class PoolConfig:
    """A connection pool's knobs.

    Attributes
    ----------
    size : int
        Connections in the pool (the number of servers c).
    acquire_timeout_s : float
        How long a request waits for a connection before failing; ``inf`` waits forever.
        HikariCP's ``connectionTimeout`` defaults to 30 s.
    """

    size: int = 10  # connections
    acquire_timeout_s: float = math.inf  # seconds a request waits for a connection

    def __post_init__(self) -> None:
        validate.bounded_int("size", self.size, MAX_SERVERS)
        validate.positive_float("acquire_timeout_s", self.acquire_timeout_s, allow_inf=True)


def _workload(
    n_requests: int,
    arrival_rate_per_s: float | None,
    mean_service_s: float,
    cv_arrival: float,
    cv_service: float,
    arrivals_s: Sequence[float] | np.ndarray | None,
    services_s: Sequence[float] | np.ndarray | None,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Arrival times and service times, drawn once so every engine sees the same requests."""
    # Checked here under the caller's names (draw_gaps_s would report mean_s and cv).
    mean_service_s = validate.positive_float("mean_service_s", mean_service_s)
    cv_service = validate.non_negative_float("cv_service", cv_service)
    cv_arrival = validate.non_negative_float("cv_arrival", cv_arrival)
    if arrivals_s is not None:
        arrivals = np.asarray(arrivals_s, dtype=float)
        if arrivals.ndim != 1 or arrivals.size == 0:
            raise ValueError("arrivals_s must be a non-empty 1-D sequence of times in seconds")
        if not np.all(np.isfinite(arrivals)) or np.any(arrivals < 0):
            raise ValueError("arrivals_s must hold finite times >= 0")
        if np.any(np.diff(arrivals) < 0):
            raise ValueError("arrivals_s must be sorted in increasing order")
        n = arrivals.size
    else:
        if arrival_rate_per_s is None:
            raise ValueError("give either arrival_rate_per_s or arrivals_s")
        rate = validate.positive_float("arrival_rate_per_s", arrival_rate_per_s)
        n = validate.bounded_int("n_requests", n_requests, MAX_ARRIVALS)
        arrivals = np.cumsum(draw_gaps_s(n, 1.0 / rate, cv_arrival, rng))
    if services_s is None:
        return arrivals, draw_gaps_s(n, mean_service_s, cv_service, rng)
    services = np.asarray(services_s, dtype=float)
    if services.shape != arrivals.shape:
        raise ValueError(
            f"services_s must have one entry per request ({arrivals.size}), got shape {services.shape}"
        )
    if not np.all(np.isfinite(services)) or np.any(services <= 0):
        raise ValueError("services_s must hold finite durations > 0")
    return arrivals, services


def _fcfs_pool_fast(
    arrivals: np.ndarray, services: np.ndarray, size: int, timeout_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """First-come-first-served pool with reneging, by the Kiefer-Wolfowitz recursion.

    A heap holds the time each connection next becomes free. Request i starts at
    ``max(arrival_i, earliest free time)``; if that wait exceeds the timeout the
    request leaves without taking a connection. A request that gives up never
    delays the ones behind it, so the recursion is exact for FIFO with timeouts.
    O(n log c), and about 50x faster than driving simpy's event loop.
    """
    free_at = [0.0] * size
    waits = np.empty(arrivals.size)
    served = np.ones(arrivals.size, dtype=bool)
    for i in range(arrivals.size):
        arrival = arrivals[i]
        earliest = free_at[0]
        start = arrival if earliest <= arrival else earliest
        wait = start - arrival
        if wait > timeout_s:
            waits[i] = timeout_s
            served[i] = False
            continue
        heapq.heapreplace(free_at, start + services[i])
        waits[i] = wait
    return waits, served


def _fcfs_pool_simpy(
    arrivals: np.ndarray, services: np.ndarray, size: int, timeout_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """The same pool as an explicit simpy process model (the readable reference)."""
    env = simpy.Environment()
    pool = simpy.Resource(env, capacity=size)
    waits = np.empty(arrivals.size)
    served = np.ones(arrivals.size, dtype=bool)

    def request(i: int):
        arrived = env.now
        ask = pool.request()
        if math.isinf(timeout_s):
            yield ask
        else:
            result = yield ask | env.timeout(timeout_s)
            if ask not in result:
                ask.cancel()  # leave the queue: we no longer want a connection
                waits[i] = env.now - arrived
                served[i] = False
                return
        waits[i] = env.now - arrived
        yield env.timeout(services[i])
        pool.release(ask)

    def source():
        for i, arrival in enumerate(arrivals):
            yield env.timeout(arrival - env.now)
            env.process(request(i))

    env.process(source())
    env.run()
    return waits, served


def simulate_pool(
    config: PoolConfig,
    *,
    n_requests: int = 100_000,
    arrival_rate_per_s: float | None = None,
    mean_service_s: float = 0.01,
    cv_arrival: float = 1.0,
    cv_service: float = 1.0,
    arrivals_s: Sequence[float] | np.ndarray | None = None,
    services_s: Sequence[float] | np.ndarray | None = None,
    engine: str = "fast",
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Simulate requests borrowing connections from a pool, one row per request.

    Requests arrive (a renewal process at ``arrival_rate_per_s`` with gap CV
    ``cv_arrival``, or the given ``arrivals_s`` trace), wait in FIFO order for a free
    connection for at most ``config.acquire_timeout_s``, hold it for a service time
    (mean ``mean_service_s``, CV ``cv_service``) and give it back.

    Parameters
    ----------
    config : PoolConfig
        Pool size and acquire timeout.
    n_requests : int
        Number of requests to generate (ignored when ``arrivals_s`` is given).
    arrival_rate_per_s : float, optional
        Mean arrival rate; required unless ``arrivals_s`` is given.
    mean_service_s, cv_service : float
        Mean and coefficient of variation of the time a request holds a connection.
    cv_arrival : float
        Coefficient of variation of inter-arrival gaps (1 = Poisson arrivals).
    arrivals_s : array-like, optional
        Sorted arrival times in seconds, to replay a trace instead of drawing arrivals.
    services_s : array-like, optional
        Service times in seconds, one per request, to replay instead of drawing them.
    engine : {"fast", "simpy"}
        ``"simpy"`` runs the explicit process model; ``"fast"`` runs an exact
        recursion on the same workload. Both give identical results for the same seed.
    seed : int, Generator or None
        Source of randomness.

    Returns
    -------
    pandas.DataFrame
        One row per request, in arrival order, with columns

        - ``request_id`` (int)
        - ``arrival_s`` (float): when the request asked for a connection
        - ``wait_s`` (float): time spent waiting for a connection (the timeout if it gave up)
        - ``service_s`` (float): time it would hold / held the connection
        - ``departure_s`` (float): when it released the connection (NaN if it timed out)
        - ``outcome`` (str): ``"served"`` or ``"timeout"``
    """
    if not isinstance(config, PoolConfig):
        raise TypeError(f"config must be a PoolConfig, got {type(config).__name__}")
    engine = validate.choice("engine", engine, ("fast", "simpy"))
    rng = validate.rng_from_seed(seed)
    arrivals, services = _workload(
        n_requests, arrival_rate_per_s, mean_service_s, cv_arrival, cv_service, arrivals_s, services_s, rng
    )
    run = _fcfs_pool_fast if engine == "fast" else _fcfs_pool_simpy
    waits, served = run(arrivals, services, config.size, config.acquire_timeout_s)
    departures = np.where(served, arrivals + waits + services, np.nan)
    return pd.DataFrame(
        {
            "request_id": np.arange(arrivals.size),
            "arrival_s": arrivals,
            "wait_s": waits,
            "service_s": services,
            "departure_s": departures,
            "outcome": np.where(served, "served", "timeout"),
        }
    )


def sweep_arrival_cv(
    cvs_arrival: Sequence[float],
    pool_size: int,
    arrival_rate_per_s: float,
    mean_service_s: float,
    *,
    cv_service: float = 1.0,
    n_requests: int = 100_000,
    warmup_fraction: float = 0.1,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Mean wait in a pool against the burstiness of arrivals: simulation, Allen-Cunneen, Erlang C.

    Parameters
    ----------
    cvs_arrival : sequence of float
        Coefficients of variation of the gaps between arrivals (>= 0; gamma-distributed gaps).
    pool_size : int
        Connections.
    arrival_rate_per_s, mean_service_s : float
        Load: arrivals per second and mean seconds a query holds a connection.
    cv_service : float
        Coefficient of variation of service times.
    n_requests : int
        Requests per simulated run.
    warmup_fraction : float
        Share of the first requests left out of the mean (0 to 0.9).
    seed : int, numpy.random.Generator or None
        Source of randomness (the same seed for every CV).

    Returns
    -------
    pandas.DataFrame
        One row per CV: ``cv_arrival``, ``simulated_ms``, ``allen_cunneen_ms``, ``erlang_c_ms``
        (mean wait for a connection, milliseconds).
    """
    warmup = validate.float_in_range("warmup_fraction", warmup_fraction, 0.0, 0.9)
    rows = []
    for cv in cvs_arrival:
        run = simulate_pool(
            PoolConfig(pool_size),
            n_requests=n_requests,
            arrival_rate_per_s=arrival_rate_per_s,
            mean_service_s=mean_service_s,
            cv_arrival=cv,
            cv_service=cv_service,
            seed=seed,
        )
        rows.append(
            {
                "cv_arrival": float(cv),
                "simulated_ms": 1000 * float(run["wait_s"].iloc[int(warmup * len(run)) :].mean()),
                "allen_cunneen_ms": 1000
                * theory_allen_cunneen_queue_delay_s(
                    arrival_rate_per_s, mean_service_s, pool_size, cv, cv_service
                ),
                "erlang_c_ms": 1000 * mmc_mean_queue_delay_s(arrival_rate_per_s, mean_service_s, pool_size),
            }
        )
    if not rows:
        raise ValueError("cvs_arrival must hold at least one coefficient of variation")
    return pd.DataFrame(rows)


def simulate_pool_retries(
    config: PoolConfig,
    arrivals_s: Sequence[float] | np.ndarray,
    *,
    mean_service_s: float = 0.005,
    cv_service: float = 1.0,
    max_retries: int = 0,
    retry_delay_s: float = 0.0,
    caller_deadline_s: float = math.inf,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """A FIFO pool whose callers retry after an acquire timeout; one row per request.

    Each request arrives at its time in ``arrivals_s`` and waits at most
    ``config.acquire_timeout_s`` for a connection. If it times out it tries again
    ``retry_delay_s`` later, joining the back of the queue, up to ``max_retries`` times. Its caller
    gives up ``caller_deadline_s`` after the first attempt: a query that finishes later is work
    the database did for nobody. Requests are handled in the order they (re)join the queue, the
    same recursion as :func:`simulate_pool`, so with ``max_retries=0`` the two agree exactly.

    Parameters
    ----------
    config : PoolConfig
        Pool size and acquire timeout.
    arrivals_s : array-like
        Sorted first-attempt times in seconds (e.g. :func:`poisson_arrival_times_s`), at most
        ``MAX_ARRIVALS``.
    mean_service_s, cv_service : float
        Mean (seconds, > 0) and coefficient of variation of the time a query holds a connection.
    max_retries : int
        Retries after the first attempt, 0 to ``MAX_RETRIES``.
    retry_delay_s : float
        Seconds between a timeout and the retry, >= 0.
    caller_deadline_s : float
        Seconds after the first attempt at which the caller stops waiting (``inf``: never).
    seed : int, numpy.random.Generator or None
        Source of the service times.

    Returns
    -------
    pandas.DataFrame
        One row per request: ``request_id``, ``arrival_s``, ``attempts`` (1 + retries used),
        ``start_s`` (when it got a connection; NaN if it never did), ``service_s``,
        ``finish_s`` (NaN if never served) and ``outcome``: ``"ok"`` (finished within the caller's
        deadline), ``"late"`` (served after the caller gave up) or ``"failed"`` (every attempt
        timed out).
    """
    if not isinstance(config, PoolConfig):
        raise TypeError(f"config must be a PoolConfig, got {type(config).__name__}")
    arrivals = np.asarray(arrivals_s, dtype=float)
    if arrivals.ndim != 1 or arrivals.size == 0 or arrivals.size > MAX_ARRIVALS:
        raise ValueError(f"arrivals_s must be a 1-D sequence of 1 to {MAX_ARRIVALS:,} times in seconds")
    if not np.all(np.isfinite(arrivals)) or np.any(arrivals < 0) or np.any(np.diff(arrivals) < 0):
        raise ValueError("arrivals_s must hold finite, sorted times >= 0")
    retries = validate.int_in_range("max_retries", max_retries, 0, MAX_RETRIES)
    delay = validate.non_negative_float("retry_delay_s", retry_delay_s)
    deadline = validate.positive_float("caller_deadline_s", caller_deadline_s, allow_inf=True)
    rng = validate.rng_from_seed(seed)
    mean_service_s = validate.positive_float("mean_service_s", mean_service_s)
    cv_service = validate.non_negative_float("cv_service", cv_service)
    services = draw_gaps_s(arrivals.size, mean_service_s, cv_service, rng)
    timeout = config.acquire_timeout_s
    free = [0.0] * config.size  # when each connection is next free
    heapq.heapify(free)
    queue = [(float(t), i, 1) for i, t in enumerate(arrivals)]
    heapq.heapify(queue)
    attempts = np.ones(arrivals.size, dtype=np.int64)
    starts = np.full(arrivals.size, np.nan)
    while queue:
        at, i, attempt = heapq.heappop(queue)
        earliest = free[0]
        start = max(at, earliest)
        if start - at > timeout:
            attempts[i] = attempt
            if attempt <= retries:
                heapq.heappush(queue, (at + timeout + delay, i, attempt + 1))
            continue
        heapq.heapreplace(free, start + services[i])
        attempts[i] = attempt
        starts[i] = start
    finish = starts + services
    outcome = np.where(np.isnan(starts), "failed", np.where(finish - arrivals <= deadline, "ok", "late"))
    return pd.DataFrame(
        {
            "request_id": np.arange(arrivals.size),
            "arrival_s": arrivals,
            "attempts": attempts,
            "start_s": starts,
            "service_s": services,
            "finish_s": finish,
            "outcome": outcome,
        }
    )


def summarize_retries(df: pd.DataFrame, bin_s: float = 1.0) -> pd.DataFrame:
    """Goodput over time from :func:`simulate_pool_retries`: what the callers got, per time bin.

    Parameters
    ----------
    df : pandas.DataFrame
        Output of :func:`simulate_pool_retries`.
    bin_s : float
        Width of a time bin in seconds (> 0), by first-attempt time.

    Returns
    -------
    pandas.DataFrame
        One row per bin: ``time_s`` (bin start), ``requests``, ``ok_share`` (0-1: answered within
        the caller's deadline), ``late_share`` (served for nobody), ``failed_share``,
        ``attempts_per_request``.
    """
    frame = validate.frame_columns("df", df, ["arrival_s", "attempts", "outcome"])
    width = validate.positive_float("bin_s", bin_s)
    bins = np.floor(frame["arrival_s"].to_numpy() / width) * width
    grouped = frame.assign(time_s=bins).groupby("time_s")
    return pd.DataFrame(
        {
            "requests": grouped.size(),
            "ok_share": grouped["outcome"].apply(lambda o: float((o == "ok").mean())),
            "late_share": grouped["outcome"].apply(lambda o: float((o == "late").mean())),
            "failed_share": grouped["outcome"].apply(lambda o: float((o == "failed").mean())),
            "attempts_per_request": grouped["attempts"].mean(),
        }
    ).reset_index()


# -------------------------------------------------------------------- summaries


def _check_requests(df: pd.DataFrame) -> None:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    missing = {"arrival_s", "wait_s", "service_s", "departure_s", "outcome"} - set(df.columns)
    if missing:
        raise ValueError(f"df lacks columns {sorted(missing)}; pass the output of simulate_pool")
    if len(df) == 0:
        raise ValueError("df has no rows")


def _time_average_in_system(
    starts: np.ndarray, ends: np.ndarray, window_start: float, window_end: float
) -> float:
    """Time-average number of intervals [start, end) overlapping the window.

    This is L measured the way a monitoring agent would (by watching the count),
    not computed from lambda and W, so checking L = lambda W is not circular.
    """
    overlap = np.clip(np.minimum(ends, window_end) - np.maximum(starts, window_start), 0, None)
    return float(overlap.sum() / (window_end - window_start))


def summarize_littles_law(df: pd.DataFrame, warmup_s: float = 0.0) -> pd.Series:
    """Measure L, lambda and W separately on a simulated run and compare L with lambda W.

    The observation window runs from ``warmup_s`` to the last arrival. Requests
    that timed out are in the system while they wait, so they count too.

    Parameters
    ----------
    df : pandas.DataFrame
        Output of :func:`simulate_pool`.
    warmup_s : float
        Seconds at the start left out (>= 0).

    Returns
    -------
    pandas.Series
        ``L`` (time-average number in system), ``lambda_per_s`` (arrivals per
        second in the window), ``W_s`` (mean time in system of requests arriving in
        the window), ``lambda_W`` and ``relative_gap`` = (L - lambda W) / L.
    """
    _check_requests(df)
    warmup_s = validate.non_negative_float("warmup_s", warmup_s)
    arrivals = df["arrival_s"].to_numpy()
    leave = np.where(df["outcome"] == "served", df["departure_s"], arrivals + df["wait_s"])
    end = float(arrivals[-1])
    if warmup_s >= end:
        raise ValueError(f"warmup_s={warmup_s} leaves no observation window (last arrival {end})")
    in_window = arrivals >= warmup_s
    L = _time_average_in_system(arrivals, leave, warmup_s, end)
    lam = in_window.sum() / (end - warmup_s)
    W = float((leave - arrivals)[in_window].mean())
    return pd.Series(
        {"L": L, "lambda_per_s": lam, "W_s": W, "lambda_W": lam * W, "relative_gap": (L - lam * W) / L}
    )


def summarize_pool(df: pd.DataFrame, pool_size: int, warmup_s: float = 0.0) -> pd.Series:
    """Headline numbers of one simulated run.

    Parameters
    ----------
    df : DataFrame
        Output of :func:`simulate_pool`.
    pool_size : int
        The pool size it ran with (to compute utilisation).
    warmup_s : float
        Requests arriving before this time are left out (the empty-pool start).

    Returns
    -------
    pandas.Series
        ``n_requests``, ``throughput_per_s`` (served per second), ``p_wait``
        (fraction that waited at all), ``mean_wait_ms``, ``p50_wait_ms``,
        ``p99_wait_ms``, ``timeouts``, ``timeout_rate``, ``utilisation`` (busy
        connection-seconds / (size x span)) and ``mean_in_system`` (L).
    """
    _check_requests(df)
    size = validate.positive_int("pool_size", pool_size)
    warmup_s = validate.non_negative_float("warmup_s", warmup_s)
    kept = df[df["arrival_s"] >= warmup_s]
    if len(kept) == 0:
        raise ValueError(f"warmup_s={warmup_s} removes every request")
    served = kept["outcome"] == "served"
    span = float(kept["arrival_s"].iloc[-1] - kept["arrival_s"].iloc[0])
    span = span if span > 0 else float(kept["service_s"].mean())
    waits_ms = kept["wait_s"].to_numpy() * 1000
    starts = (kept["arrival_s"] + kept["wait_s"]).to_numpy()
    busy = np.where(served, kept["service_s"], 0.0)
    littles = summarize_littles_law(df, warmup_s) if len(kept) > 1 else None
    return pd.Series(
        {
            "n_requests": len(kept),
            "throughput_per_s": served.sum() / span,
            "p_wait": float((kept["wait_s"] > 1e-12).mean()),
            "mean_wait_ms": float(waits_ms.mean()),
            "p50_wait_ms": float(np.percentile(waits_ms, 50)),
            "p99_wait_ms": float(np.percentile(waits_ms, 99)),
            "timeouts": int((~served).sum()),
            "timeout_rate": float((~served).mean()),
            "utilisation": float(
                _time_average_in_system(starts, starts + busy, starts[0], starts[0] + span) / size
            ),
            "mean_in_system": float(littles["L"]) if littles is not None else math.nan,
        }
    )


def _pool_sizes(pool_sizes: object) -> list[int]:
    """``pool_sizes`` as a list of 1 to ``MAX_SWEEP_POINTS`` sizes, each 1 to ``MAX_SERVERS``."""
    sizes = validate.sequence_of_positive_ints("pool_sizes", pool_sizes)
    if len(sizes) > MAX_SWEEP_POINTS:
        raise ValueError(f"pool_sizes must hold at most {MAX_SWEEP_POINTS} sizes, got {len(sizes)}")
    for i, size in enumerate(sizes):
        validate.bounded_int(f"pool_sizes[{i}]", size, MAX_SERVERS)
    return sizes


def sweep_pool_sizes(
    pool_sizes: Sequence[int],
    arrival_rate_per_s: float,
    mean_service_s: float,
    *,
    cv_service: float = 1.0,
    acquire_timeout_s: float = math.inf,
    n_requests: int = 100_000,
    warmup_fraction: float = 0.1,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Simulate the same Poisson workload against several pool sizes, with Erlang C alongside.

    Every pool size sees the *same* requests (common random numbers), so the
    differences between rows come from the pool size alone.

    Parameters
    ----------
    pool_sizes : sequence of int
        Pool sizes to simulate, all fed the same requests.
    arrival_rate_per_s, mean_service_s : float
        Poisson arrivals per second and mean seconds a request holds a connection.
    cv_service : float
        Coefficient of variation of service times.
    acquire_timeout_s : float
        Acquire timeout in seconds (``inf``: wait forever).
    n_requests : int
        Requests per run.
    warmup_fraction : float
        Share of the first requests left out of the summaries, 0 to 0.9.
    seed : int, numpy.random.Generator or None
        Source of randomness.

    Returns
    -------
    pandas.DataFrame
        One row per pool size: ``pool_size``, ``offered_load`` (a = lambda E[S]),
        the columns of :func:`summarize_pool`, and the M/M/c theory columns
        ``p_wait_theory`` and ``mean_wait_ms_theory`` (exact only for
        ``cv_service = 1`` and no timeout; inf/1.0 where the pool is overloaded).
    """
    sizes = _pool_sizes(pool_sizes)
    lam = validate.positive_float("arrival_rate_per_s", arrival_rate_per_s)
    s = validate.positive_float("mean_service_s", mean_service_s)
    warmup_fraction = validate.float_in_range(
        "warmup_fraction", warmup_fraction, 0.0, 1.0, high_inclusive=False
    )
    rng = validate.rng_from_seed(seed)
    n = validate.bounded_int("n_requests", n_requests, MAX_ARRIVALS)
    cv_service = validate.non_negative_float("cv_service", cv_service)
    # Every pool size sees the same requests (common random numbers).
    arrivals = np.cumsum(draw_gaps_s(n, 1.0 / lam, 1.0, rng))
    services = draw_gaps_s(n, s, cv_service, rng)
    warmup_s = float(arrivals[int(warmup_fraction * (n - 1))])
    rows = []
    for size in sizes:
        df = simulate_pool(
            PoolConfig(size=size, acquire_timeout_s=acquire_timeout_s),
            arrivals_s=arrivals,
            services_s=services,
        )
        summary = summarize_pool(df, size, warmup_s=warmup_s)
        wq = mmc_mean_queue_delay_s(lam, s, size)
        rows.append(
            {
                "pool_size": size,
                "offered_load": lam * s,
                **summary.to_dict(),
                "p_wait_theory": erlang_c(size, lam * s),
                "mean_wait_ms_theory": wq * 1000,
            }
        )
    return pd.DataFrame(rows)


def replicate_pool(
    pool_sizes: Sequence[int],
    arrival_rate_per_s: float,
    mean_service_s: float,
    *,
    cv_service: float = 1.0,
    n_seeds: int = 20,
    n_requests: int = 20_000,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Summaries of independent replications of the same pool, to show run-to-run spread.

    Replication ``i`` of every pool size uses the ``i``-th child of
    ``SeedSequence(seed)``, so sizes are compared on the same random numbers.

    Parameters
    ----------
    pool_sizes : sequence of int
        Pool sizes to replicate.
    arrival_rate_per_s, mean_service_s : float
        Load: arrivals per second and mean seconds a request holds a connection.
    cv_service : float
        Coefficient of variation of service times.
    n_seeds : int
        Independent replications per size, 1 to ``MAX_REPLICATIONS``.
    n_requests : int
        Requests per replication.
    seed : int, numpy.random.Generator or None
        Root of the replications' independent seeds (the same children for every size).

    Returns
    -------
    pandas.DataFrame
        One row per (pool size, replication): ``pool_size``, ``replication`` and
        the columns of :func:`summarize_pool`.
    """
    sizes = _pool_sizes(pool_sizes)
    n_seeds = validate.bounded_int("n_seeds", n_seeds, MAX_REPLICATIONS)
    children = _child_seeds(seed, n_seeds)
    rows = []
    for size in sizes:
        for replication, child in enumerate(children):
            run = simulate_pool(
                PoolConfig(size),
                n_requests=n_requests,
                arrival_rate_per_s=arrival_rate_per_s,
                mean_service_s=mean_service_s,
                cv_service=cv_service,
                seed=child,
            )
            rows.append(
                {"pool_size": size, "replication": replication, **summarize_pool(run, size).to_dict()}
            )
    return pd.DataFrame(rows)


def sweep_kingman(
    utilisations: Sequence[float],
    cvs: Sequence[float],
    *,
    mean_service_s: float = 0.01,
    n_requests: int = 200_000,
    warmup_fraction: float = 0.1,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Single-connection queueing delay against utilisation for several variabilities.

    Poisson arrivals (ca = 1) and service times with each CV in ``cvs``; the
    simulated mean Wq next to Kingman's (here exact, Pollaczek-Khinchine) value.

    Parameters
    ----------
    utilisations : sequence of float
        Single-connection utilisations rho in (0, 1).
    cvs : sequence of float
        Service-time coefficients of variation.
    mean_service_s : float
        Mean service time in seconds.
    n_requests : int
        Requests per run.
    warmup_fraction : float
        Share of the first requests left out, 0 to 0.9.
    seed : int, numpy.random.Generator or None
        Root of the runs' independent seeds.

    Returns
    -------
    pandas.DataFrame
        One row per (utilisation, cv): ``utilisation``, ``cv_service``,
        ``mean_wait_ms`` (simulated), ``mean_wait_ms_theory`` (Kingman) and
        ``ratio`` (simulated / theory).
    """
    rhos = [
        validate.float_in_range(f"utilisations[{i}]", u, 0, 1, low_inclusive=False, high_inclusive=False)
        for i, u in enumerate(
            validate.sequence_of_floats("utilisations", utilisations, 0.0, 1.0, max_length=MAX_SWEEP_POINTS)
        )
    ]
    cv_list = validate.sequence_of_floats("cvs", cvs, 0.0, MAX_CV, max_length=MAX_SWEEP_POINTS)
    if len(rhos) * len(cv_list) > MAX_SWEEP_POINTS:
        raise ValueError(
            f"utilisations x cvs must be at most {MAX_SWEEP_POINTS} points, got {len(rhos)} x {len(cv_list)}"
        )
    warmup_fraction = validate.float_in_range(
        "warmup_fraction", warmup_fraction, 0.0, 1.0, high_inclusive=False
    )
    s = validate.positive_float("mean_service_s", mean_service_s)
    seeds = _child_seeds(seed, len(rhos) * len(cv_list))
    rows = []
    for i, (rho, cv) in enumerate((r, c) for r in rhos for c in cv_list):
        lam = rho / s
        df = simulate_pool(
            PoolConfig(size=1),
            n_requests=n_requests,
            arrival_rate_per_s=lam,
            mean_service_s=s,
            cv_service=cv,
            seed=seeds[i],
        )
        kept = df.iloc[int(warmup_fraction * len(df)) :]
        sim_ms = float(kept["wait_s"].mean() * 1000)
        theory_ms = kingman_queue_delay_s(lam, s, 1.0, cv) * 1000
        rows.append(
            {
                "utilisation": rho,
                "cv_service": cv,
                "mean_wait_ms": sim_ms,
                "mean_wait_ms_theory": theory_ms,
                "ratio": sim_ms / theory_ms,
            }
        )
    return pd.DataFrame(rows)


# ----------------------------------------------- a database that slows down past its cores


@dataclass(frozen=True)
class ContentionDatabase:
    """A database server whose per-query speed drops once queries outnumber cores.

    With ``k`` queries running, it completes queries at rate

    ``mu * min(k, cores) / (1 + overhead_per_extra_query * max(0, k - cores))``

    per second: below the core count each query has a core to itself; past it,
    the cores are shared and every extra runnable query adds a fixed fraction of
    overhead (context switches, latch and lock contention, cache misses). This is
    the shape of Gunther's Universal Scalability Law with the contention term
    starting at the core count; the overhead value is illustrative, not measured.

    Attributes
    ----------
    cores : int
        CPU cores that run queries.
    query_cpu_s : float
        CPU time one query needs on an idle core, seconds (mu = 1 / query_cpu_s).
    overhead_per_extra_query : float
        Fractional slowdown per runnable query beyond the core count.
    """

    cores: int = 8
    query_cpu_s: float = 0.002
    overhead_per_extra_query: float = 0.002

    def __post_init__(self) -> None:
        validate.positive_int("cores", self.cores)
        validate.positive_float("query_cpu_s", self.query_cpu_s)
        validate.non_negative_float("overhead_per_extra_query", self.overhead_per_extra_query)

    def completion_rate_per_s(self, running: np.ndarray | int) -> np.ndarray:
        """Queries completed per second with ``running`` queries executing."""
        k = np.asarray(running, dtype=float)
        extra = np.maximum(0.0, k - self.cores)
        return np.minimum(k, self.cores) / self.query_cpu_s / (1 + self.overhead_per_extra_query * extra)


def _closed_birth_death(
    db: ContentionDatabase, pool_size: int, clients: int, think_s: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stationary distribution of the number of requests at the database tier."""
    n = np.arange(clients + 1)
    running = np.minimum(n, pool_size)
    up = (clients - n[:-1]) / think_s  # a thinking client sends its next request
    down = db.completion_rate_per_s(running[1:])  # a running query completes
    log_pi = np.concatenate([[0.0], np.cumsum(np.log(up) - np.log(down))])
    pi = np.exp(log_pi - log_pi.max())
    return n, running, pi / pi.sum()


def theory_closed_pool(
    db: ContentionDatabase,
    pool_sizes: Sequence[int],
    *,
    clients: int,
    think_s: float,
) -> pd.DataFrame:
    """Exact steady state of clients -> pool -> database, for several pool sizes.

    ``clients`` application threads each think for an exponential time (mean
    ``think_s``), then borrow a connection (waiting in FIFO order if all
    ``pool_size`` are busy) and run one query on ``db``. With exponential query
    work the number of requests at the database tier is a birth-death chain,
    solved here exactly (in log space, so 10,000 clients are fine).

    Parameters
    ----------
    db : ContentionDatabase
        The database tier (cores, CPU per query, overhead per extra query).
    pool_sizes : sequence of int
        Pool sizes to solve for.
    clients : int
        Application threads.
    think_s : float
        Mean think time between a thread's queries (seconds).

    Returns
    -------
    pandas.DataFrame
        One row per pool size: ``pool_size``, ``throughput_per_s``,
        ``pool_wait_ms`` (waiting for a connection), ``query_ms`` (time inside
        the database), ``response_ms`` (their sum) and ``mean_running`` (queries
        executing at once).
    """
    validate.instance("db", db, ContentionDatabase)
    sizes = _pool_sizes(pool_sizes)
    clients = validate.bounded_int("clients", clients, MAX_SERVERS)
    think_s = validate.positive_float("think_s", think_s)
    rows = []
    for size in sizes:
        n, running, pi = _closed_birth_death(db, size, clients, think_s)
        throughput = float((pi * db.completion_rate_per_s(running)).sum())
        queued = float((pi * (n - running)).sum())
        in_db = float((pi * running).sum())
        rows.append(
            {
                "pool_size": size,
                "throughput_per_s": throughput,
                "pool_wait_ms": queued / throughput * 1000,
                "query_ms": in_db / throughput * 1000,
                "response_ms": (queued + in_db) / throughput * 1000,
                "mean_running": in_db,
            }
        )
    return pd.DataFrame(rows)


def simulate_closed_pool(
    db: ContentionDatabase,
    pool_size: int,
    *,
    clients: int,
    think_s: float,
    n_events: int = 200_000,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Stochastic simulation of the same closed system (to check :func:`theory_closed_pool`).

    An event-by-event (Gillespie) simulation of the Markov chain: each step draws
    the time to the next event and whether it is a new request or a completion.
    The first 10% of events are discarded as warm-up.

    Parameters
    ----------
    db : ContentionDatabase
        The database tier (cores, CPU per query, overhead per extra query).
    pool_size : int
        Connections.
    clients : int
        Application threads, each thinking then borrowing a connection.
    think_s : float
        Mean think time between a thread's queries (seconds, exponential).
    n_events : int
        Events to simulate.
    seed : int, numpy.random.Generator or None
        Source of randomness.

    Returns
    -------
    pandas.DataFrame
        One row with the same columns as :func:`theory_closed_pool`.
    """
    validate.instance("db", db, ContentionDatabase)
    size = validate.bounded_int("pool_size", pool_size, MAX_SERVERS)
    clients = validate.bounded_int("clients", clients, MAX_SERVERS)
    think_s = validate.positive_float("think_s", think_s)
    n_events = validate.bounded_int("n_events", n_events, MAX_CLOSED_EVENTS)
    rng = validate.rng_from_seed(seed)
    uniforms = rng.random((n_events, 2))
    state = 0
    warmup = n_events // 10
    time_total = 0.0
    area_n = 0.0
    area_running = 0.0
    completions = 0
    for step in range(n_events):
        running = min(state, size)
        up = (clients - state) / think_s
        down = float(db.completion_rate_per_s(running)) if running else 0.0
        total = up + down
        dwell = -math.log(1.0 - uniforms[step, 0]) / total
        counted = step >= warmup
        if counted:
            time_total += dwell
            area_n += state * dwell
            area_running += running * dwell
        if uniforms[step, 1] * total < up:
            state += 1
        else:
            state -= 1
            completions += counted
    throughput = completions / time_total
    return pd.DataFrame(
        [
            {
                "pool_size": size,
                "throughput_per_s": throughput,
                "pool_wait_ms": (area_n - area_running) / time_total / throughput * 1000,
                "query_ms": area_running / time_total / throughput * 1000,
                "response_ms": area_n / time_total / throughput * 1000,
                "mean_running": area_running / time_total,
            }
        ]
    )


# ------------------------------------------------------------------------- plots


def plot_erlang_vs_simulation(sweep: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """P(wait) and mean wait against pool size: simulation (markers) over Erlang C (lines).

    ``sweep`` is the output of :func:`sweep_pool_sizes`. Draws P(wait) on ``ax``
    and mean wait (ms, log scale) on a twin axis.

    Parameters
    ----------
    sweep : pandas.DataFrame
        Output of :func:`sweep_pool_sizes`.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure if omitted.

    Returns
    -------
    matplotlib.axes.Axes
        The left axis (P(wait)); the mean wait is on its twin.
    """
    validate.frame_columns(
        "sweep", sweep, ["pool_size", "p_wait", "p_wait_theory", "mean_wait_ms", "mean_wait_ms_theory"]
    )
    ax = axes_or_new(ax)
    stable = sweep[sweep["p_wait_theory"] < 1]
    ax.plot(stable["pool_size"], stable["p_wait_theory"], color="C0", label="P(wait), Erlang C")
    ax.plot(sweep["pool_size"], sweep["p_wait"], "o", color="C0", label="P(wait), simulated")
    label(ax, "pool size (connections)", "probability a request waits")
    ax.set_ylim(-0.02, 1.02)
    twin = ax.twinx()
    # Waits below a microsecond are invisible in practice (Erlang C goes to 1e-15 ms); clip the axis there.
    floor_ms = 1e-3
    visible = stable[stable["mean_wait_ms_theory"] >= floor_ms]
    twin.plot(
        visible["pool_size"], visible["mean_wait_ms_theory"], color="C1", ls="--", label="mean wait, Erlang C"
    )
    shown = sweep[sweep["mean_wait_ms"] >= floor_ms]
    twin.plot(
        shown["pool_size"], shown["mean_wait_ms"], "s", color="C1", mfc="none", label="mean wait, simulated"
    )
    twin.set_yscale("log")
    twin.set_ylim(bottom=floor_ms)
    twin.set_ylabel("mean wait for a connection (ms, log scale)")
    twin.grid(False)
    lines = ax.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="upper right")
    return ax


def plot_wait_distribution(df: pd.DataFrame, ax: Axes | None = None, **line_kwargs) -> Axes:
    """Empirical CDF of the wait for a connection, in ms (log x axis), from :func:`simulate_pool`.

    Requests that did not wait at all sit at the left edge (drawn at 1 microsecond).

    Parameters
    ----------
    df : pandas.DataFrame
        Output of :func:`simulate_pool` (``wait_s``, ``outcome``).
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure if omitted.
    **line_kwargs
        Passed to ``Axes.plot`` (label, colour).

    Returns
    -------
    matplotlib.axes.Axes
    """
    _check_requests(df)
    ax = axes_or_new(ax)
    waits_ms = np.sort(np.maximum(df["wait_s"].to_numpy() * 1000, 1e-3))
    fraction = np.arange(1, waits_ms.size + 1) / waits_ms.size
    # At most ECDF_POINTS steps (every 1/ECDF_POINTS of the requests, and the last): the same
    # curve at any figure width, for a fraction of the drawing time of one step per request.
    keep = np.unique(np.linspace(0, waits_ms.size - 1, min(waits_ms.size, ECDF_POINTS)).astype(int))
    ax.step(waits_ms[keep], fraction[keep], where="post", **line_kwargs)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter("{x:g}")  # 0.01, 1, 100: plain labels draw faster than 10^k
    ax.set_ylim(0, 1.01)
    label(ax, "wait for a connection (ms, log scale; 0 drawn at 0.001)", "fraction of requests")
    return ax


def plot_kingman(sweep: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Mean queueing delay against utilisation, one colour per service-time CV.

    ``sweep`` is the output of :func:`sweep_kingman`: lines are Kingman, markers simulation.

    Parameters
    ----------
    sweep : pandas.DataFrame
        Output of :func:`sweep_kingman`.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure if omitted.

    Returns
    -------
    matplotlib.axes.Axes
    """
    validate.frame_columns(
        "sweep", sweep, ["cv_service", "utilisation", "mean_wait_ms", "mean_wait_ms_theory"]
    )
    ax = axes_or_new(ax)
    for i, (cv, group) in enumerate(sweep.groupby("cv_service")):
        color = f"C{i}"
        ax.plot(
            group["utilisation"],
            group["mean_wait_ms_theory"],
            color=color,
            label=f"service CV {cv:g}: Kingman",
        )
        ax.plot(
            group["utilisation"],
            group["mean_wait_ms"],
            "o",
            color=color,
            mfc="none",
            label=f"service CV {cv:g}: simulated",
        )
    ax.set_yscale("log")
    label(ax, "utilisation ρ", "mean wait for the connection (ms)", legend=True)
    return ax


def plot_closed_pool(table: pd.DataFrame, axes: Sequence[Axes] | None = None) -> Sequence[Axes]:
    """Throughput, and response time split into pool wait and query time, against pool size.

    ``table`` is the output of :func:`theory_closed_pool`. Returns the two axes.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`theory_closed_pool` (``pool_size``, ``throughput_per_s``, ``pool_wait_ms``,
        ``query_ms``).
    axes : two matplotlib Axes, optional
        Where to draw; a new two-panel figure if omitted.

    Returns
    -------
    numpy.ndarray
        The two Axes (throughput, response time).
    """
    validate.frame_columns("table", table, ["pool_size", "throughput_per_s", "pool_wait_ms", "query_ms"])
    if axes is None:
        import matplotlib.pyplot as plt

        _, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    left, right = axes
    left.plot(table["pool_size"], table["throughput_per_s"], marker="o")
    left.set_xscale("log", base=2)
    label(left, "pool size (connections, log scale)", "throughput (queries/s)")
    right.stackplot(
        table["pool_size"],
        table["pool_wait_ms"],
        table["query_ms"],
        labels=["waiting for a connection", "running in the database"],
        colors=["C1", "C0"],
        alpha=0.8,
    )
    right.set_xscale("log", base=2)
    label(right, "pool size (connections, log scale)", "response time (ms)", legend=True)
    return axes


def plot_retries(
    data: dict[str, pd.DataFrame], ax: Axes | None = None, *, spike_s: tuple[float, float] | None = None
) -> Axes:
    """Share of callers answered in time, per time bin, for several retry policies.

    Parameters
    ----------
    data : dict of str to pandas.DataFrame
        Legend label to the output of :func:`summarize_retries` (``time_s``, ``ok_share``).
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure if omitted.
    spike_s : (float, float), optional
        Start and end of a load spike to shade, in seconds.

    Returns
    -------
    matplotlib.axes.Axes
    """
    if not isinstance(data, dict) or not data:
        raise TypeError("data must be a non-empty dict of label -> summarize_retries frame")
    ax = axes_or_new(ax)
    if spike_s is not None:
        ax.axvspan(spike_s[0], spike_s[1], color="0.9", label="load spike")
    for name, frame in data.items():
        frame = validate.frame_columns("data", frame, ["time_s", "ok_share"])
        ax.step(frame["time_s"], 100 * frame["ok_share"], where="post", label=name)
    ax.set_ylim(0, 105)
    return label(ax, "time (s)", "callers answered in time (%)", legend=True)
