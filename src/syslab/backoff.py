"""Retry backoff and jitter, the AWS backoff simulation, and a fleet reconnect storm.

Three layers, side by side so tests can hold one against the other:

- **strategies** -- :func:`retry_delays_s` draws the sleep before retry ``n`` for
  fixed, exponential, equal-jitter, full-jitter and decorrelated-jitter backoff,
  vectorised over many clients;
- **the published comparison** -- :func:`simulate_occ_contention` re-implements the
  set-up of Marc Brooker's "Exponential Backoff And Jitter" (AWS Architecture Blog,
  2015): clients racing to update one row under optimistic concurrency control;
- **the fleet** -- :func:`simulate_fleet_reconnect` sends ~100,000 devices at a
  broker that accepts a bounded number of connections per second (a token bucket),
  after a restart or a configuration push disconnects them, and records the storm.

Units are in the names: ``_s`` seconds, ``_ms`` milliseconds, ``_per_s`` per second.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from syslab import validate
from syslab.plot import axes_or_new, label, panels

__all__ = [
    "STRATEGIES",
    "BrokerConfig",
    "RetryPolicy",
    "mqtt_keepalive_deadline_s",
    "plot_delay_sweep",
    "plot_fleet_storm",
    "plot_fleet_timeline",
    "plot_occ_comparison",
    "retry_delays_s",
    "simulate_fleet_reconnect",
    "simulate_occ_contention",
    "summarize_fleet",
    "summarize_occ",
    "sweep_fleet_strategies",
    "theory_fixed_interval_drain_s",
]

STRATEGIES = ("none", "fixed", "exponential", "equal_jitter", "full_jitter", "decorrelated_jitter")

# Bounds from what a 2-core machine simulates within a chapter's 30 s.
MAX_DEVICES = 5_000_000  # devices in one simulated fleet
MAX_STEPS = 1_000_000  # time steps of one fleet simulation
MAX_OCC_CLIENTS = 1_000  # clients racing in one OCC run
MAX_OCC_RUNS = 1_000  # runs per OCC point
MAX_BACKOFF_S = 86_400.0  # one day: the largest base, cap or initial delay

# MQTT 3.1.1 section 3.1.2.10: the Keep Alive is a two-byte (16-bit) field in seconds.
MQTT_MAX_KEEPALIVE_S = 2**16 - 1


# --------------------------------------------------------------------- strategies


@dataclass(frozen=True)
class RetryPolicy:
    """How a client waits between attempts.

    Attributes
    ----------
    strategy : str
        One of :data:`STRATEGIES`. ``none`` retries at once; ``fixed`` always
        sleeps ``base_s``; the others grow from ``base_s`` and are capped at ``cap_s``.
    base_s : float
        First backoff (seconds).
    cap_s : float
        Largest backoff (seconds).
    initial_delay_s : float
        Before the *first* attempt after a disconnect, wait ``uniform(0, initial_delay_s)``
        (0 = reconnect at once). Spreads a synchronised disconnect before any retry logic runs.
    """

    strategy: str = "full_jitter"
    base_s: float = 1.0  # seconds
    cap_s: float = 120.0  # seconds
    initial_delay_s: float = 0.0  # seconds, upper bound of the uniform first delay

    def __post_init__(self) -> None:
        validate.choice("strategy", self.strategy, STRATEGIES)
        validate.float_in_range("base_s", self.base_s, 0.0, MAX_BACKOFF_S, low_inclusive=False)
        validate.float_in_range("cap_s", self.cap_s, 0.0, MAX_BACKOFF_S, low_inclusive=False)
        validate.float_in_range("initial_delay_s", self.initial_delay_s, 0.0, MAX_BACKOFF_S)
        if self.cap_s < self.base_s:
            raise ValueError(f"cap_s must be >= base_s, got cap_s={self.cap_s!r} < base_s={self.base_s!r}")


def retry_delays_s(
    policy: RetryPolicy,
    attempt: np.ndarray,
    previous_sleep_s: np.ndarray | None,
    rng: np.random.Generator,
) -> np.ndarray:
    """The sleep before the next attempt, for many clients at once.

    Parameters
    ----------
    policy : RetryPolicy
    attempt : numpy.ndarray of int
        How many attempts each client has failed so far (>= 1).
    previous_sleep_s : numpy.ndarray or None
        Each client's previous sleep; only decorrelated jitter uses it (``None`` means ``base_s``).
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray
        Seconds to sleep, same shape as ``attempt``.

    Notes
    -----
    With ``expo(n) = min(cap, base * 2**n)`` (Brooker 2015): exponential sleeps
    ``expo(n)``; equal jitter ``expo/2 + uniform(0, expo/2)``; full jitter
    ``uniform(0, expo)``; decorrelated jitter ``min(cap, uniform(base, 3 * previous))``.
    """
    if not isinstance(policy, RetryPolicy):
        raise TypeError(f"policy must be a RetryPolicy, got {type(policy).__name__}")
    n = np.asarray(attempt)
    if n.size and n.min() < 1:
        raise ValueError(f"attempt must be >= 1, got minimum {n.min()!r}")
    base, cap = policy.base_s, policy.cap_s
    # 2**n overflows float64 past n = 1023; the cap is reached long before.
    expo = np.minimum(cap, base * np.exp2(np.minimum(n, 60)))
    if policy.strategy == "none":
        return np.zeros(n.shape)
    if policy.strategy == "fixed":
        return np.full(n.shape, base)
    if policy.strategy == "exponential":
        return expo
    if policy.strategy == "equal_jitter":
        return expo / 2 + rng.uniform(0, expo / 2)
    if policy.strategy == "full_jitter":
        return rng.uniform(0, expo)
    previous = np.full(n.shape, base) if previous_sleep_s is None else np.asarray(previous_sleep_s, float)
    return np.minimum(cap, rng.uniform(base, np.maximum(base, previous * 3)))


def mqtt_keepalive_deadline_s(keepalive_s: int) -> float:
    """When an MQTT 3.1.1 server must disconnect a silent client: 1.5 x Keep Alive.

    [MQTT-3.1.2-24]: if nothing arrives within one and a half times the Keep Alive
    period, the server disconnects the client. The field is 16 bits, so at most
    65,535 s; 0 switches the mechanism off (returns ``inf``).

    Parameters
    ----------
    keepalive_s : int
        The client's Keep Alive from its CONNECT packet, seconds (0 to 65,535; 0: off).

    Returns
    -------
    float
        Seconds of silence after which the server disconnects the client (``inf`` when off).
    """
    k = validate.int_in_range("keepalive_s", keepalive_s, 0, MQTT_MAX_KEEPALIVE_S)
    return math.inf if k == 0 else 1.5 * k


# ----------------------------------------------------- the published comparison


def simulate_occ_contention(
    strategy: str,
    clients: int,
    *,
    runs: int = 100,
    base_ms: float = 5.0,
    cap_ms: float = 2000.0,
    net_mean_ms: float = 10.0,
    net_sd_ms: float = 2.0,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Clients racing to update one row under optimistic concurrency (Brooker 2015's set-up).

    Every client starts at time 0, reads the row's version, then writes it back
    conditionally on that version. A write whose version is stale fails; the
    client sleeps (``strategy``) and starts over with a new read. Each client stops
    after its first successful write. Every message crosses a network whose delay
    is ``|Normal(net_mean_ms, net_sd_ms)|``; the sleep before retry ``n`` uses
    ``base_ms`` and ``cap_ms`` (the blog's simulator: 10 ms, 2 ms, 5 ms, 2000 ms).

    Returns
    -------
    pandas.DataFrame
        One row per run: ``strategy``, ``clients``, ``run``, ``calls`` (writes the
        server received: the *work*), ``failures`` and ``completion_ms`` (time of the
        last message: when the last client is done).

    Parameters
    ----------
    strategy : str
        Strategy.
    clients : int
        Clients.
    runs : int
        Runs.
    base_ms : float
        Base ms, milliseconds.
    cap_ms : float
        Cap ms, milliseconds.
    net_mean_ms : float
        Net mean ms, milliseconds.
    net_sd_ms : float
        Net sd ms, milliseconds.
    seed : int | np.random.Generator | None
        Source of randomness (an int seed, a Generator, or None).
    """
    validate.choice("strategy", strategy, STRATEGIES)
    n_clients = validate.bounded_int("clients", clients, MAX_OCC_CLIENTS)
    n_runs = validate.bounded_int("runs", runs, MAX_OCC_RUNS)
    max_ms = MAX_BACKOFF_S * 1000
    base_s = validate.float_in_range("base_ms", base_ms, 0.0, max_ms, low_inclusive=False) / 1000
    cap_s = validate.float_in_range("cap_ms", cap_ms, 0.0, max_ms, low_inclusive=False) / 1000
    mean = validate.positive_float("net_mean_ms", net_mean_ms)
    sd = validate.non_negative_float("net_sd_ms", net_sd_ms)
    rng = validate.rng_from_seed(seed)
    policy = RetryPolicy(strategy, base_s=base_s, cap_s=max(cap_s, base_s))
    rows = []
    for run in range(n_runs):
        rows.append(
            {
                "strategy": strategy,
                "clients": n_clients,
                "run": run,
                **_occ_run(policy, n_clients, mean, sd, rng),
            }
        )
    return pd.DataFrame(rows)


def _scalar_delay_s(policy: RetryPolicy, attempt: int, previous_s: float, u: float) -> float:
    """:func:`retry_delays_s` for one client, from one uniform draw ``u`` in [0, 1) (fast in a loop)."""
    expo = min(policy.cap_s, policy.base_s * 2.0 ** min(attempt, 60))
    if policy.strategy == "none":
        return 0.0
    if policy.strategy == "fixed":
        return policy.base_s
    if policy.strategy == "exponential":
        return expo
    if policy.strategy == "equal_jitter":
        return expo / 2 + u * expo / 2
    if policy.strategy == "full_jitter":
        return u * expo
    high = max(policy.base_s, previous_s * 3)
    return min(policy.cap_s, policy.base_s + u * (high - policy.base_s))


# Event kinds in the OCC simulation's queue.
_READ, _READ_REPLY, _WRITE, _WRITE_REPLY = range(4)


def _occ_run(policy: RetryPolicy, n_clients: int, mean: float, sd: float, rng: np.random.Generator) -> dict:
    # Network delays are drawn in blocks: one numpy call per few thousand messages, not per message.
    block = np.abs(rng.normal(mean, sd, 4096))
    used = 0

    def delay() -> float:
        nonlocal block, used
        if used == len(block):
            block, used = np.abs(rng.normal(mean, sd, 4096)), 0
        used += 1
        return float(block[used - 1])

    uniforms = rng.random(4096)
    used_u = 0

    def uniform() -> float:
        nonlocal uniforms, used_u
        if used_u == len(uniforms):
            uniforms, used_u = rng.random(4096), 0
        used_u += 1
        return float(uniforms[used_u - 1])

    version = 0
    calls = failures = 0
    attempts = [0] * n_clients
    previous = [policy.base_s] * n_clients
    # (time_ms, sequence, kind, client, payload); the sequence breaks ties in arrival order.
    queue = [(delay(), i, _READ, i, 0) for i in range(n_clients)]
    heapq.heapify(queue)
    sequence = n_clients
    now = 0.0
    # Every client finishes after finitely many retries with probability 1; the bound only
    # guards against a pathological configuration.
    for _ in range(50_000_000):
        if not queue:
            break
        now, _, kind, client, payload = heapq.heappop(queue)
        if kind == _READ:
            event = (now + delay(), _READ_REPLY, version)
        elif kind == _READ_REPLY:
            event = (now + delay(), _WRITE, payload)
        elif kind == _WRITE:
            calls += 1
            success = payload == version
            if success:
                version += 1
            else:
                failures += 1
            event = (now + delay(), _WRITE_REPLY, int(success))
        else:
            if payload:
                continue
            attempts[client] += 1
            sleep_s = retry_delays_s(policy, np.array([attempts[client]]), np.array([previous[client]]), rng)[
                0
            ]
            previous[client] = float(sleep_s)
            event = (now + delay() + 1000 * float(sleep_s), _READ, 0)
        heapq.heappush(queue, (event[0], sequence, event[1], client, event[2]))
        sequence += 1
    return {"calls": calls, "failures": failures, "completion_ms": now}


def summarize_occ(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean calls and completion time per strategy and client count (the blog's two charts).

    Parameters
    ----------
    runs : pd.DataFrame
        One row per simulated run with ``clients``, ``strategy``, ``calls`` and ``completion_ms``
        (the fields of :func:`simulate_occ_contention`).

    Returns
    -------
    pd.DataFrame
        One row per (``clients``, ``strategy``), in first-seen order: ``mean_calls`` (write calls
        per run) and ``mean_completion_ms`` (time until every client succeeded, milliseconds).
    """
    validate.frame_columns("runs", runs, ["clients", "strategy", "calls", "completion_ms"])
    return (
        runs.groupby(["clients", "strategy"], sort=False)[["calls", "completion_ms"]]
        .mean()
        .reset_index()
        .rename(columns={"calls": "mean_calls", "completion_ms": "mean_completion_ms"})
    )


# ------------------------------------------------------------------------ the fleet


@dataclass(frozen=True)
class BrokerConfig:
    """A broker that admits new connections through a token bucket.

    Attributes
    ----------
    accept_rate_per_s : float
        Sustained new connections per second it can complete (TLS handshake,
        authentication, session restore).
    burst : int
        Bucket size: how many connections it can accept at once after a quiet spell.
    max_connections : int
        Connections it can hold; further attempts are refused.
    connect_timeout_s : float
        How long a refused or dropped attempt takes to fail on the device.
    refusal_cost : float
        Work a refused attempt costs the broker, as a share (0-1) of an accepted one.
        0 is a free refusal (a SYN dropped by a kernel rate limit); a broker that
        refuses only after the TLS handshake pays most of the cost of an acceptance
        (0.8 or more). Refusals take capacity from admissions, so a storm large enough
        admits nobody: ``admitted = (tokens - cost * attempts) / (1 - cost)``.
    retry_after : bool
        Server-driven backoff: a refusal tells the device when to come back (MQTT 5
        "Server busy" with a hint, HTTP 429 with Retry-After). The broker hands out
        return times like a waiting room's tickets, after those already handed out and
        paced at 80% of its admission rate; the device obeys instead of its own backoff.
    """

    accept_rate_per_s: float = 5000.0  # connections per second
    burst: int = 500  # connections
    max_connections: int = 1_000_000  # connections
    connect_timeout_s: float = 0.0  # seconds
    refusal_cost: float = 0.0  # share of an accepted connection's work
    retry_after: bool = False  # refusals carry a "come back at" hint

    def __post_init__(self) -> None:
        validate.float_in_range("accept_rate_per_s", self.accept_rate_per_s, 0.0, 1e8, low_inclusive=False)
        validate.int_in_range("burst", self.burst, 1, MAX_DEVICES)
        validate.int_in_range("max_connections", self.max_connections, 1, 10**9)
        validate.float_in_range("connect_timeout_s", self.connect_timeout_s, 0.0, 3600.0)
        validate.float_in_range("refusal_cost", self.refusal_cost, 0.0, 1.0)
        validate.instance("retry_after", self.retry_after, bool)


def simulate_fleet_reconnect(
    policy: RetryPolicy,
    broker: BrokerConfig = BrokerConfig(),
    *,
    devices: int = 100_000,
    disconnect_window_s: float = 0.0,
    horizon_s: float = 600.0,
    step_s: float = 0.1,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """A fleet reconnecting to a rate-limited broker after a mass disconnect.

    At time 0 the broker restarts (or a configuration push lands): every device
    loses its connection at a time uniform in ``[0, disconnect_window_s]`` (0 =
    all at once). Each device waits ``uniform(0, policy.initial_delay_s)`` and
    tries to connect. In every time step the broker accepts as many of that step's
    attempts as its token bucket allows, chosen at random; the rest fail after
    ``connect_timeout_s`` and sleep according to ``policy``.

    Parameters
    ----------
    policy : RetryPolicy
    broker : BrokerConfig
    devices : int
        Fleet size.
    disconnect_window_s : float
        Spread of the disconnect itself (seconds).
    horizon_s : float
        Simulated time (seconds); devices not connected by then are reported as such.
    step_s : float
        Time step (seconds). The bucket refills ``accept_rate_per_s * step_s`` per step.
    seed : int or Generator

    Returns
    -------
    pandas.DataFrame
        One row per time step: ``t_s`` (start of the step), ``attempts``,
        ``accepted``, ``connected`` (cumulative), ``attempts_per_s`` and
        ``wasted_work`` (broker work spent on refusals, in accepted-connection units). The
        mean number of attempts per device is ``df.attrs["attempts_per_device"]``.
    """
    if not isinstance(policy, RetryPolicy):
        raise TypeError(f"policy must be a RetryPolicy, got {type(policy).__name__}")
    if not isinstance(broker, BrokerConfig):
        raise TypeError(f"broker must be a BrokerConfig, got {type(broker).__name__}")
    n = validate.int_in_range("devices", devices, 1, MAX_DEVICES)
    window = validate.float_in_range("disconnect_window_s", disconnect_window_s, 0.0, MAX_BACKOFF_S)
    horizon = validate.float_in_range("horizon_s", horizon_s, 0.0, 30 * MAX_BACKOFF_S, low_inclusive=False)
    dt = validate.float_in_range("step_s", step_s, 1e-6, horizon)
    rng = validate.rng_from_seed(seed)
    n_steps = int(math.ceil(horizon / dt))
    if n_steps > MAX_STEPS:
        raise ValueError(f"horizon_s / step_s must be <= MAX_STEPS = {MAX_STEPS:,} steps, got {n_steps:,}")

    next_try = rng.uniform(0, window, n) + rng.uniform(0, policy.initial_delay_s, n)
    attempts = np.zeros(n, dtype=np.int64)
    previous = np.full(n, policy.base_s)
    pending = np.arange(n)
    refill = broker.accept_rate_per_s * dt
    tokens = float(broker.burst)
    connected = 0
    out_attempts = np.zeros(n_steps, dtype=np.int64)
    out_accepted = np.zeros(n_steps, dtype=np.int64)
    out_work = np.zeros(n_steps)
    hint_until = 0.0  # the last return time the broker has handed out (retry_after)
    step = 0
    # Each pass handles one step in which some device is due, then jumps to the next such step
    # (refilling the bucket for the quiet steps skipped): synchronised fleets are quiet most of the time.
    for _ in range(n_steps):
        if pending.size == 0 or step >= n_steps:
            break
        t_end = (step + 1) * dt
        due_mask = next_try[pending] < t_end
        due = pending[due_mask]
        attempts[due] += 1
        room = broker.max_connections - connected
        admitted = _admitted(due.size, tokens, room, broker.refusal_cost)
        # Which of the step's attempts get a token is random: the broker serves its accept queue
        # in arrival order, and arrival order within a step is arbitrary.
        if admitted < due.size:
            lucky = rng.choice(due.size, size=admitted, replace=False)
        else:
            lucky = np.arange(due.size)
        refused = np.ones(due.size, dtype=bool)
        refused[lucky] = False
        failed = due[refused]
        connected += admitted
        out_attempts[step] = due.size
        out_accepted[step] = admitted
        sleep_s = retry_delays_s(policy, attempts[failed], previous[failed], rng)
        previous[failed] = sleep_s
        if broker.retry_after:
            # The broker hands out return times like a waiting room's tickets: after those it
            # has already handed out, paced at 80% of its admission rate.
            pace = 1.0 / (0.8 * broker.accept_rate_per_s)
            hint_until = max(hint_until, t_end)
            slots = hint_until + (np.arange(failed.size) + rng.random(failed.size)) * pace
            hint_until += failed.size * pace
            sleep_s = slots - next_try[failed] - broker.connect_timeout_s
        # A failed attempt is retried after the failure is noticed and the sleep is over,
        # and never in the same step (the device has to see the refusal first).
        next_try[failed] = np.maximum(next_try[failed] + broker.connect_timeout_s + sleep_s, t_end)
        keep = np.ones(pending.size, dtype=bool)
        keep[np.flatnonzero(due_mask)[lucky]] = False
        pending = pending[keep]
        work = admitted + broker.refusal_cost * (due.size - admitted)
        out_work[step] = min(work, tokens)
        tokens = max(0.0, tokens - work)
        if pending.size == 0:
            break
        next_step = max(step + 1, int(next_try[pending].min() // dt))
        tokens = min(float(broker.burst), tokens + refill * (next_step - step))
        step = next_step
    t = np.arange(n_steps) * dt
    df = pd.DataFrame(
        {
            "t_s": t,
            "attempts": out_attempts,
            "accepted": out_accepted,
            "connected": np.cumsum(out_accepted),
            "attempts_per_s": out_attempts / dt,
            "wasted_work": out_work - out_accepted,
        }
    )
    df.attrs["attempts_per_device"] = float(attempts.mean())
    df.attrs["devices"] = n
    df.attrs["step_s"] = dt
    return df


def _admitted(attempts: int, tokens: float, room: int, refusal_cost: float) -> int:
    """Connections a broker completes in one step when every refusal also costs work.

    It has ``tokens`` units of work (one per accepted connection) and must spend
    ``refusal_cost`` on each attempt it refuses, so ``a + cost * (attempts - a) <= tokens``:
    ``a = (tokens - cost * attempts) / (1 - cost)``, never more than the attempts, the
    tokens or the room left. A free refusal (cost 0) admits ``min(attempts, tokens)``; an
    expensive one admits nobody once ``attempts > tokens / cost``: goodput collapse.
    """
    if attempts == 0:
        return 0
    best = min(attempts, math.floor(tokens), room)
    if refusal_cost <= 0.0 or attempts <= tokens:
        return int(max(0, best))
    if refusal_cost >= 1.0:
        return 0
    afford = (tokens - refusal_cost * attempts) / (1.0 - refusal_cost)
    return int(max(0, min(best, math.floor(afford))))


def summarize_fleet(timeline: pd.DataFrame, *, fraction: float = 0.99) -> pd.Series:
    """Headline numbers of one storm.

    Returns
    -------
    pandas.Series
        ``time_to_fraction_s`` (when ``fraction`` of the fleet was connected; ``inf``
        if never within the horizon), ``connected_fraction`` at the end,
        ``attempts_per_device`` (mean), ``peak_attempts_per_s`` and ``total_attempts``.

    Parameters
    ----------
    timeline : pd.DataFrame
        Timeline.
    fraction : float
        Share of the fleet that counts as done, in (0, 1].
    """
    frac = validate.float_in_range("fraction", fraction, 0.0, 1.0, low_inclusive=False)
    validate.frame_columns("timeline", timeline, ["t_s", "connected", "attempts_per_s", "attempts"])
    if "devices" not in timeline.attrs or "step_s" not in timeline.attrs:
        raise ValueError(
            "timeline must come from simulate_fleet_reconnect or sweep_fleet_strategies "
            "(its attrs carry devices and step_s)"
        )
    if "policy" in timeline.columns and timeline["policy"].nunique() > 1:
        raise ValueError("timeline holds several policies; pass the rows of one policy")
    if timeline.empty:
        raise ValueError("timeline has no rows")
    n = int(timeline.attrs["devices"])
    dt = float(timeline.attrs["step_s"])
    timeline = timeline.reset_index(drop=True)
    reached = timeline.index[timeline["connected"] >= math.ceil(frac * n)]
    time_to = float(timeline["t_s"].iloc[reached[0]] + dt) if len(reached) else math.inf
    return pd.Series(
        {
            "time_to_fraction_s": time_to,
            "connected_fraction": float(timeline["connected"].iloc[-1] / n),
            "attempts_per_device": float(
                timeline.attrs.get("attempts_per_device", timeline["attempts"].sum() / n)
            ),
            "peak_attempts_per_s": float(timeline["attempts_per_s"].max()),
            "total_attempts": int(timeline["attempts"].sum()),
        }
    )


def sweep_fleet_strategies(
    policies: dict[str, RetryPolicy],
    broker: BrokerConfig = BrokerConfig(),
    *,
    devices: int = 100_000,
    disconnect_window_s: float = 0.0,
    horizon_s: float = 600.0,
    step_s: float = 0.1,
    seed: int | np.random.Generator | None = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run :func:`simulate_fleet_reconnect` for several named policies on the same fleet.

    Returns
    -------
    (timelines, summary)
        ``timelines``: the per-step rows of every run with a ``policy`` column;
        ``summary``: one row per policy with the columns of :func:`summarize_fleet`.

    Parameters
    ----------
    policies : dict[str, RetryPolicy]
        Policies.
    broker : BrokerConfig
        The broker's admission limits.
    devices : int
        Fleet size.
    disconnect_window_s : float
        Disconnect window s, seconds.
    horizon_s : float
        Horizon s, seconds.
    step_s : float
        Step s, seconds.
    seed : int
        Source of randomness (an int seed, a Generator, or None).
    """
    if not isinstance(policies, dict) or not policies:
        raise ValueError("policies must be a non-empty dict of name -> RetryPolicy")
    frames, rows = [], []
    for name, policy in policies.items():
        timeline = simulate_fleet_reconnect(
            policy,
            broker,
            devices=devices,
            disconnect_window_s=disconnect_window_s,
            horizon_s=horizon_s,
            step_s=step_s,
            seed=seed,
        )
        rows.append({"policy": name, **summarize_fleet(timeline)})
        timeline.attrs = {}
        frames.append(timeline.assign(policy=name))
    timelines = pd.concat(frames, ignore_index=True)
    # What summarize_fleet needs to summarize one policy's rows of this frame.
    timelines.attrs = {"devices": int(devices), "step_s": float(step_s)}
    return timelines, pd.DataFrame(rows)


def theory_fixed_interval_drain_s(devices: int, burst: int, interval_s: float) -> float:
    """Time for a perfectly synchronised fleet with a fixed retry interval to connect.

    All devices fail together and retry together, so every wave finds a full
    bucket of ``burst`` tokens and nothing more: ``ceil(devices / burst)`` waves,
    ``interval_s`` apart (the first at time 0). Valid when ``interval_s`` is long
    enough for the bucket to refill between waves.

    Parameters
    ----------
    devices : int
        Fleet size: devices that all lost their connection at once.
    burst : int
        Connections the broker's token bucket admits at once (its capacity).
    interval_s : float
        The fixed time between a device's retries, seconds.

    Returns
    -------
    float
        Seconds from the first wave until the last device connects:
        ``(ceil(devices / burst) - 1) * interval_s``.
    """
    n = validate.positive_int("devices", devices)
    b = validate.positive_int("burst", burst)
    interval = validate.positive_float("interval_s", interval_s)
    return (math.ceil(n / b) - 1) * interval


# ------------------------------------------------------------------------- plots


def plot_fleet_timeline(
    timelines: pd.DataFrame, ax: Axes | None = None, *, devices: int | None = None
) -> Axes:
    """Connected fraction of the fleet against time, one line per policy.

    Parameters
    ----------
    timelines : pandas.DataFrame
        Rows of :func:`simulate_fleet_reconnect` with a ``policy`` column.
    ax : matplotlib Axes, optional
    devices : int, optional
        Fleet size (default: from the frame's attrs, else the total accepted).

    Returns
    -------
    matplotlib.axes.Axes
    """
    validate.frame_columns("timelines", timelines, ["t_s", "connected", "accepted", "policy"])
    if devices is not None:
        devices = validate.int_in_range("devices", devices, 1, MAX_DEVICES)
    ax = axes_or_new(ax)
    for name, group in timelines.groupby("policy", sort=False):
        total = devices or group.attrs.get("devices") or max(1, int(group["accepted"].sum()))
        ax.plot(group["t_s"], group["connected"] / total, label=name)
    label(ax, "time since the disconnect (s)", "fraction connected", legend=True)
    ax.set_ylim(0, 1.02)
    return ax


def plot_fleet_storm(
    timelines: pd.DataFrame,
    axes: np.ndarray | None = None,
    *,
    devices: int | None = None,
    first_s: float = 150.0,
) -> np.ndarray:
    """Top: fraction of the fleet connected. Bottom: attempts per second in the first ``first_s``.

    Parameters
    ----------
    timelines : pandas.DataFrame
        Rows of :func:`simulate_fleet_reconnect` with a ``policy`` column.
    axes : two matplotlib Axes, optional
    devices : int, optional
        Fleet size.
    first_s : float
        Seconds shown in the bottom panel.

    Returns
    -------
    numpy.ndarray
        The two Axes.
    """
    validate.frame_columns("timelines", timelines, ["t_s", "connected", "accepted", "attempts", "policy"])
    first = validate.float_in_range("first_s", first_s, 0.0, 30 * MAX_BACKOFF_S, low_inclusive=False)
    top, bottom = panels(1, 2, axes, figsize=(7, 6))
    plot_fleet_timeline(timelines, ax=top, devices=devices)
    for name, group in timelines.groupby("policy", sort=False):
        early = group[group["t_s"] < first]
        per_s = early.groupby(early["t_s"].astype(int))["attempts"].sum()
        bottom.plot(per_s.index, per_s.clip(lower=0.5), label=name, lw=1)
    bottom.set_yscale("log")
    bottom.set_ylim(bottom=0.5)
    label(bottom, "time since the disconnect (s)", "attempts per second (log)")
    return np.array([top, bottom])


def plot_delay_sweep(sweep: pd.DataFrame, floor_s: float, ax: Axes | None = None) -> Axes:
    """Time to 99% connected against the initial random delay D, with the N/R floor and D itself.

    Parameters
    ----------
    sweep : pandas.DataFrame
        Rows with ``initial_delay_s``, ``time_to_fraction_s`` and optionally ``broker``
        (one line per broker).
    floor_s : float
        The admission floor N/R, seconds.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    validate.frame_columns("sweep", sweep, ["initial_delay_s", "time_to_fraction_s"])
    floor = validate.positive_float("floor_s", floor_s)
    ax = axes_or_new(ax)
    groups = sweep.groupby("broker", sort=False) if "broker" in sweep else [("full jitter", sweep)]
    for (name, group), marker in zip(groups, "os^D", strict=False):
        ax.plot(group["initial_delay_s"], group["time_to_fraction_s"], marker=marker, label=str(name))
    d = sweep["initial_delay_s"]
    ax.plot([d.min(), d.max()], [d.min(), d.max()], color="0.6", ls="--", label="y = D")
    ax.axhline(floor, color="0.5", ls=":", label="floor N/R")
    label(ax, "initial random delay D (s)", "time to 99% connected (s)", legend=True)
    return ax


def plot_occ_comparison(summary: pd.DataFrame, axes: Sequence[Axes] | None = None) -> Sequence[Axes]:
    """Work (calls) and completion time against client count, one line per strategy.

    Parameters
    ----------
    summary : pd.DataFrame
        The frame returned by the matching summarize function.
    axes : Sequence[Axes] | None
        Where to draw (one Axes per panel); a new figure when omitted.

    Returns
    -------
    Sequence[Axes]
        The two axes drawn on: write calls per run (left) and time until all done (right, ms, log
        scale) against competing clients.
    """
    validate.frame_columns("summary", summary, ["strategy", "clients", "mean_calls", "mean_completion_ms"])
    if axes is None:
        import matplotlib.pyplot as plt

        _, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    left, right = axes
    for name, group in summary.groupby("strategy", sort=False):
        left.plot(group["clients"], group["mean_calls"], marker="o", label=name)
        right.plot(group["clients"], group["mean_completion_ms"], marker="o", label=name)
    label(left, "competing clients", "work: write calls per run", legend=True)
    right.set_yscale("log")
    label(right, "competing clients", "time until all done (ms, log scale)")
    return axes
