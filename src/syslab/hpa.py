"""A Horizontal Pod Autoscaler you can watch being late, and the traffic shapes that make it late.

Three layers:

- **the controller** -- :class:`HPAConfig` holds the Kubernetes defaults (with the
  flag or source file each comes from) and :func:`simulate_hpa` replays the
  controller second by second: the 15 s sync loop, the 0.1 tolerance,
  ``desired = ceil(current * metric / target)``, the default scale-up policy
  (the larger of +100% and +4 pods per 15 s), the 300 s scale-down stabilisation
  window, a lagged metric, pod start-up and node provisioning;
- **the servers** -- every second, the load on each ready pod is an M/M/c queue
  whose delays come from :mod:`syslab.queueing` (Erlang C); load beyond capacity
  waits in a backlog carried from second to second, requests that would wait longer
  than the client's timeout give up, and a share of those come back as retries;
- **the traffic and the strategies** -- four traffic shapes (:func:`traffic_shape`)
  and four ways to provision for them (reactive, scheduled, predictive from
  earlier days, pre-warmed), compared by :func:`compare_strategies` in pod-hours
  against SLO violations.

Below capacity each second is a steady-state queue at that second's load and pod
count; above it, the excess is a fluid backlog that the next seconds must drain, so an
overload takes time to recover from (checked against a request-level simulation in
the tests and the chapter).

Units are in the names: ``_s`` seconds, ``_ms`` milliseconds, ``_per_s`` per second.
"""

from __future__ import annotations

import bisect
import functools
import math
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from syslab import experiment, queueing, validate
from syslab.plot import axes_or_new, label, panels

__all__ = [
    "SHAPES",
    "STRATEGIES",
    "ClusterConfig",
    "HPAConfig",
    "PodConfig",
    "compare_strategies",
    "desired_replicas",
    "measure_pod_queue",
    "simulate_requests",
    "summarize_pod_queue",
    "summarize_recovery",
    "min_replicas_schedule",
    "mmc_p99_wait_s",
    "plot_shapes",
    "plot_startup_sweep",
    "plot_timeline",
    "scale_up_limit",
    "simulate_hpa",
    "summarize_run",
    "theory_fastest_scale_up",
    "traffic_shape",
]

# Bounds chosen from what a 2-core machine runs within a chapter's 30 s.
MAX_DURATION_S = 7 * 24 * 3600  # one simulated week, second by second
MAX_SERVICE_S = 3600.0  # a request's service time or client timeout
MAX_REPLICAS = 100_000  # pods
MAX_HISTORY_DAYS = 60  # earlier days a forecast learns from
MAX_REAL_DURATION_S = 30.0  # seconds of arrivals per utilisation level in the real pod
MAX_REAL_REQUESTS = 200_000  # requests per real run
MAX_REPLICATIONS = 20

SHAPES = ("step_spike", "flash_sale", "ticketing", "etl_sawtooth")
STRATEGIES = ("reactive", "scheduled", "predictive", "pre_warmed")


# ----------------------------------------------------------------------- configs


@dataclass(frozen=True)
class HPAConfig:
    """The controller's knobs, with Kubernetes' defaults (autoscaling/v2, Kubernetes 1.23+).

    Attributes
    ----------
    target_utilisation : float
        Target average CPU utilisation (fraction of the request). 0.8 is the
        default when an HPA names no metric (``autoscaling.DefaultCPUUtilization``).
    tolerance : float
        No change while ``|metric/target - 1| <= tolerance``
        (``--horizontal-pod-autoscaler-tolerance``, default 0.1).
    sync_period_s : float
        How often the controller reconciles (``--horizontal-pod-autoscaler-sync-period``, 15 s).
    scale_up_pods, scale_up_percent, scale_up_period_s :
        The default scale-up policies, of which the larger applies (``selectPolicy: Max``):
        add 4 pods or 100% per 15 s (``pkg/apis/autoscaling/v2/defaults.go``).
    scale_up_window_s : float
        Scale-up stabilisation window (default 0: act on the latest recommendation).
    scale_down_window_s : float
        Scale-down stabilisation window: use the highest recommendation of the last
        300 s (``--horizontal-pod-autoscaler-downscale-stabilization``, 5 min).
    metric_window_s : float
        The metric is a CPU-usage average over this window (metrics-server's
        ``--metric-resolution``, 15 s in its upstream manifest).
    metric_lag_s : float
        Age of the newest metric when the controller reads it (scrape interval,
        pipeline). A model assumption, not a Kubernetes setting.
    min_replicas, max_replicas : int
    """

    target_utilisation: float = 0.8  # fraction of the CPU request
    tolerance: float = 0.1  # dimensionless
    sync_period_s: float = 15.0  # seconds
    scale_up_pods: int = 4  # pods per scale_up_period_s
    scale_up_percent: float = 100.0  # percent per scale_up_period_s
    scale_up_period_s: float = 15.0  # seconds
    scale_up_window_s: float = 0.0  # seconds
    scale_down_window_s: float = 300.0  # seconds
    metric_window_s: float = 15.0  # seconds
    metric_lag_s: float = 15.0  # seconds
    min_replicas: int = 1  # pods
    max_replicas: int = 10_000  # pods

    def __post_init__(self) -> None:
        validate.float_in_range("target_utilisation", self.target_utilisation, 0.0, 10.0, low_inclusive=False)
        validate.float_in_range("tolerance", self.tolerance, 0.0, 1.0, high_inclusive=False)
        validate.positive_float("sync_period_s", self.sync_period_s)
        validate.non_negative_int("scale_up_pods", self.scale_up_pods)
        validate.non_negative_float("scale_up_percent", self.scale_up_percent)
        validate.positive_float("scale_up_period_s", self.scale_up_period_s)
        validate.non_negative_float("scale_up_window_s", self.scale_up_window_s)
        validate.non_negative_float("scale_down_window_s", self.scale_down_window_s)
        validate.positive_float("metric_window_s", self.metric_window_s)
        validate.non_negative_float("metric_lag_s", self.metric_lag_s)
        validate.positive_int("min_replicas", self.min_replicas)
        validate.positive_int("max_replicas", self.max_replicas)
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"max_replicas must be >= min_replicas, got {self.max_replicas} < {self.min_replicas}"
            )


@dataclass(frozen=True)
class PodConfig:
    """One pod of the service: an M/M/c queue with ``workers`` servers.

    Attributes
    ----------
    mean_service_s : float
        Mean CPU time of one request (exponential), seconds.
    workers : int
        Requests a pod serves at once (its CPU request, in cores, at one request per core).
    max_utilisation : float
        The highest CPU utilisation a pod can *report*, as a fraction of its request:
        1.0 when the CPU limit equals the request, ``inf`` for a metric that is not
        capped (requests per second, queue length).
    startup_s : float
        From creation to Ready: scheduling, image pull, process start, readiness probe.
    timeout_s : float
        How long a client waits before it gives up, seconds: the latency of a request
        that waits in a full backlog.
    retry_share : float
        Share (0-1) of the requests that gave up which their clients send again in the
        next second (a retry adds load exactly when the service is overloaded).
    """

    mean_service_s: float = 0.02  # seconds
    workers: int = 4  # concurrent requests per pod
    max_utilisation: float = 1.0  # fraction of the CPU request
    startup_s: float = 45.0  # seconds
    timeout_s: float = 2.0  # seconds
    retry_share: float = 0.0  # share of given-up requests sent again

    def __post_init__(self) -> None:
        validate.float_in_range(
            "mean_service_s", self.mean_service_s, 0.0, MAX_SERVICE_S, low_inclusive=False
        )
        validate.positive_int("workers", self.workers)
        validate.positive_float("max_utilisation", self.max_utilisation, allow_inf=True)
        validate.float_in_range("startup_s", self.startup_s, 0.0, MAX_DURATION_S)
        validate.float_in_range("timeout_s", self.timeout_s, 0.0, MAX_SERVICE_S, low_inclusive=False)
        validate.float_in_range("retry_share", self.retry_share, 0.0, 1.0, high_inclusive=False)

    @property
    def capacity_per_s(self) -> float:
        """Requests per second one pod completes at 100% utilisation."""
        return self.workers / self.mean_service_s


@dataclass(frozen=True)
class ClusterConfig:
    """Room for new pods: free slots now, and how long a new node takes.

    Attributes
    ----------
    spare_pod_slots : int
        Pods that fit on the existing nodes.
    pods_per_node : int
        Pods a new node holds.
    node_provision_s : float
        Seconds from asking for a node (Cluster Autoscaler, Karpenter) to a schedulable node.
    """

    spare_pod_slots: int = 20  # pods that fit on existing nodes
    pods_per_node: int = 8  # pods per new node
    node_provision_s: float = 90.0  # seconds from request to a schedulable node

    def __post_init__(self) -> None:
        validate.non_negative_int("spare_pod_slots", self.spare_pod_slots)
        validate.positive_int("pods_per_node", self.pods_per_node)
        validate.non_negative_float("node_provision_s", self.node_provision_s)


# --------------------------------------------------------------------- the rule


def desired_replicas(current: int, metric: float, target: float, tolerance: float = 0.1) -> int:
    """The HPA rule: ``ceil(current * metric / target)``, unchanged within the tolerance.

    From the Kubernetes documentation ("Algorithm details") and
    ``pkg/controller/podautoscaler/replica_calculator.go``.

    Parameters
    ----------
    current : int
        Pods the metric is averaged over.
    metric, target : float
        The current metric and its target, in the same unit.
    tolerance : float
        No change while ``|metric/target - 1| <= tolerance``.

    Returns
    -------
    int
        The desired replica count.
    """
    n = validate.non_negative_int("current", current)
    m = validate.non_negative_float("metric", metric, allow_inf=True)
    t = validate.positive_float("target", target)
    tol = validate.float_in_range("tolerance", tolerance, 0.0, 1.0, high_inclusive=False)
    ratio = m / t
    if abs(ratio - 1.0) <= tol:
        return n
    if math.isinf(ratio):
        return 2**31 - 1
    # A tiny epsilon keeps ceil(2.0000000000000004) from adding a pod through float error.
    return int(math.ceil(n * ratio - 1e-9))


def scale_up_limit(period_start_replicas: int, config: HPAConfig) -> int:
    """Most replicas the default behaviour allows at the end of one scale-up period.

    ``max(start + pods, ceil(start * (1 + percent/100)))``: the two default
    policies with ``selectPolicy: Max`` (``calculateScaleUpLimitWithScalingRules`` in
    ``pkg/controller/podautoscaler/horizontal.go``).

    Parameters
    ----------
    period_start_replicas : int
        Replicas at the start of the scale-up period.
    config : HPAConfig

    Returns
    -------
    int
        The most replicas allowed.
    """
    start = validate.int_in_range("period_start_replicas", period_start_replicas, 0, MAX_REPLICAS)
    validate.instance("config", config, HPAConfig)
    by_pods = start + config.scale_up_pods
    by_percent = int(math.ceil(start * (1 + config.scale_up_percent / 100) - 1e-9))
    return max(by_pods, by_percent)


def theory_fastest_scale_up(start: int, target: int, config: HPAConfig = HPAConfig()) -> pd.DataFrame:
    """The fastest path from ``start`` to ``target`` replicas under the scale-up policy.

    Assumes the metric asks for more than the policy allows at every sync and each
    period's scale event has left the policy window by the next sync (so the limit
    applies per sync). Pod start-up is not included.

    Parameters
    ----------
    start, target : int
        Replicas now and wanted.
    config : HPAConfig

    Returns
    -------
    pandas.DataFrame
        One row per sync: ``sync``, ``t_s`` and ``replicas``.
    """
    n = validate.bounded_int("start", start, MAX_REPLICAS)
    goal = validate.bounded_int("target", target, MAX_REPLICAS)
    validate.instance("config", config, HPAConfig)
    rows = [{"sync": 0, "t_s": 0.0, "replicas": n}]
    period = max(config.sync_period_s, config.scale_up_period_s)
    for sync in range(1, 10_000):
        if n >= goal:
            break
        n = min(goal, scale_up_limit(n, config))
        rows.append({"sync": sync, "t_s": sync * period, "replicas": n})
    return pd.DataFrame(rows)


# -------------------------------------------------------------------- the queue


def mmc_p99_wait_s(arrival_rate_per_s: float, mean_service_s: float, servers: int, q: float = 0.99) -> float:
    """The ``q`` quantile of the wait in an M/M/c queue.

    The wait is 0 with probability ``1 - C`` and otherwise exponential with rate
    ``c mu - lambda``, where ``C`` is Erlang C (:func:`syslab.queueing.erlang_c`),
    so ``P(W > t) = C exp(-(c mu - lambda) t)``.

    Parameters
    ----------
    arrival_rate_per_s : float
        Arrival rate.
    mean_service_s : float
        Mean service time, seconds.
    servers : int
        Servers c.
    q : float
        The quantile, in (0, 1).

    Returns
    -------
    float
        Seconds; ``inf`` when the queue is unstable.
    """
    lam = validate.non_negative_float("arrival_rate_per_s", arrival_rate_per_s)
    s = validate.positive_float("mean_service_s", mean_service_s)
    c = validate.int_in_range("servers", servers, 1, MAX_REPLICAS * 64)
    quantile = validate.float_in_range("q", q, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
    if lam >= c / s:
        return math.inf
    p_wait = queueing.erlang_c(c, lam * s)
    tail = 1 - quantile
    if p_wait <= tail:
        return 0.0
    return math.log(p_wait / tail) / (c / s - lam)


@functools.lru_cache(maxsize=32)
def _latency_table(pod: PodConfig, points: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Per-pod utilisation grid -> mean wait and p99 response time, so the per-second loop
    # interpolates instead of calling Erlang C 7,200 times per run.
    rho = np.linspace(0.0, 0.999, points)
    lam = rho * pod.capacity_per_s
    mean_wait = np.array([queueing.mmc_mean_queue_delay_s(x, pod.mean_service_s, pod.workers) for x in lam])
    # p99 of the response time, bounded by the p99 of the wait plus the p99 of an exponential service.
    p99 = np.array([mmc_p99_wait_s(x, pod.mean_service_s, pod.workers) for x in lam])
    p99 = p99 + pod.mean_service_s * math.log(100)
    return rho, mean_wait, np.minimum(p99, pod.timeout_s)


# ----------------------------------------------------------------- the controller


def simulate_hpa(
    rps: Sequence[float] | np.ndarray,
    hpa: HPAConfig = HPAConfig(),
    pod: PodConfig = PodConfig(),
    cluster: ClusterConfig = ClusterConfig(),
    *,
    initial_replicas: int | None = None,
    min_replicas: Sequence[int] | np.ndarray | None = None,
) -> pd.DataFrame:
    """Replay the HPA second by second against a load curve.

    Parameters
    ----------
    rps : array of float
        Requests per second arriving in each second of the run (at most
        ``MAX_DURATION_S`` seconds), not counting retries.
    hpa, pod, cluster : configs
    initial_replicas : int, optional
        Ready pods at time 0 (default: enough for ``rps[0]`` at the target utilisation).
    min_replicas : array of int, optional
        A per-second floor on the replica count (scheduled, predictive or pre-warmed
        capacity); the controller never goes below it. Default: ``hpa.min_replicas``.

    Returns
    -------
    pandas.DataFrame
        One row per second: ``t_s``, ``rps``, ``replicas`` (spec), ``ready``,
        ``utilisation`` (true CPU utilisation of ready pods, uncapped),
        ``metric`` (what the controller last read), ``served_per_s``,
        ``retries_per_s`` (clients' second attempts arriving), ``dropped_per_s``
        (requests whose clients gave up after ``pod.timeout_s``), ``backlog`` (requests
        waiting at the end of the second), ``mean_wait_ms`` and ``p99_ms`` (response
        time of served requests, capped at the timeout).
    """
    try:
        load = np.asarray(rps, dtype=float)
    except (TypeError, ValueError):
        raise TypeError("rps must be a sequence of requests per second") from None
    if load.ndim != 1 or load.size == 0:
        raise ValueError("rps must be a non-empty one-dimensional sequence")
    if load.size > MAX_DURATION_S:
        raise ValueError(f"rps must cover at most MAX_DURATION_S = {MAX_DURATION_S} seconds, got {load.size}")
    if not np.all(np.isfinite(load)) or load.min() < 0:
        raise ValueError("rps must be finite and >= 0")
    for name, value, kind in (
        ("hpa", hpa, HPAConfig),
        ("pod", pod, PodConfig),
        ("cluster", cluster, ClusterConfig),
    ):
        if not isinstance(value, kind):
            raise TypeError(f"{name} must be a {kind.__name__}, got {type(value).__name__}")
    n_s = load.size
    floor = np.full(n_s, hpa.min_replicas, dtype=np.int64)
    if min_replicas is not None:
        wanted = np.asarray(min_replicas, dtype=float)
        if not np.all(np.isfinite(wanted)) or (wanted.size and wanted.min() < 0):
            raise ValueError("min_replicas must hold finite pod counts >= 0")
        floor = np.maximum(floor, np.minimum(wanted, MAX_REPLICAS).astype(np.int64))
        if floor.shape != (n_s,):
            raise ValueError(f"min_replicas must have one value per second ({n_s}), got shape {floor.shape}")
    floor = np.minimum(floor, hpa.max_replicas)
    cap = pod.capacity_per_s
    if initial_replicas is None:
        initial_replicas = max(1, min(MAX_REPLICAS, int(math.ceil(load[0] / (cap * hpa.target_utilisation)))))
    start = max(validate.int_in_range("initial_replicas", initial_replicas, 1, MAX_REPLICAS), int(floor[0]))
    start = min(start, hpa.max_replicas)

    ready_events = np.zeros(n_s + 1, dtype=np.int64)  # pods becoming Ready at each second
    slot_events = np.zeros(n_s + 1, dtype=np.int64)  # node slots becoming free at each second
    ready = start
    pending: list[int] = []  # Ready times of pods still starting, sorted
    replicas = start
    free_slots = cluster.spare_pod_slots
    utilisation = np.zeros(n_s)
    ready_out = np.zeros(n_s, dtype=np.int64)
    replicas_out = np.zeros(n_s, dtype=np.int64)
    metric_out = np.zeros(n_s)
    scale_up_events: list[tuple[float, int]] = []
    recommendations: list[tuple[float, int]] = []
    metric = hpa.target_utilisation
    sync_every = max(1, int(round(hpa.sync_period_s)))
    # A pod created in second t is Ready at the earliest in second t + 1.
    # (The queue of each second is computed inside the loop, before the controller acts.)
    startup = max(1, int(round(pod.startup_s)))

    def add_pods(t: int, k: int) -> None:
        nonlocal free_slots
        now_fit = min(k, free_slots)
        free_slots -= now_fit
        times = [t + startup] * now_fit
        rest = k - now_fit
        if rest:
            nodes = math.ceil(rest / cluster.pods_per_node)
            node_ready = t + int(round(cluster.node_provision_s))
            times += [node_ready + startup] * rest
            if node_ready <= n_s:
                slot_events[node_ready] += nodes * cluster.pods_per_node - rest
        for when in times:
            bisect.insort(pending, when)
            if when <= n_s:
                ready_events[when] += 1

    def remove_pods(k: int) -> None:
        nonlocal ready, free_slots
        # The ReplicaSet deletes pods that are not Ready first.
        while k and pending:
            when = pending.pop()
            if when <= n_s:
                ready_events[when] -= 1
            free_slots += 1
            k -= 1
        take = min(k, ready - 1)
        ready -= take
        free_slots += take

    rho_grid, wait_grid, p99_grid = _latency_table(pod)
    served_out = np.zeros(n_s)
    gave_up_out = np.zeros(n_s)
    retries_out = np.zeros(n_s)
    backlog_out = np.zeros(n_s)
    wait_out = np.zeros(n_s)
    p99_out = np.zeros(n_s)
    backlog = 0.0  # requests waiting at the start of the second (the fluid queue)
    retry_in = 0.0  # retries arriving this second
    service_p99_s = pod.mean_service_s * math.log(100)

    for t in range(n_s):
        free_slots += int(slot_events[t])
        arrived = int(ready_events[t])
        if arrived:
            ready += arrived
            del pending[:arrived]
        # The servers this second: arrivals and retries join the backlog, the Ready pods
        # serve up to their capacity, and whoever would wait longer than the timeout gives up.
        capacity = ready * cap
        arriving = load[t] + retry_in
        utilisation[t] = (arriving + backlog) / capacity
        served, gave_up, new_backlog = _serve_second(backlog, arriving, capacity, pod.timeout_s)
        if backlog > 0 or new_backlog > 0:
            # Saturated: the wait is the time to serve the requests ahead (FIFO fluid).
            wait_out[t] = 0.5 * (backlog + new_backlog) / capacity
            p99_out[t] = new_backlog / capacity + service_p99_s
        else:
            wait_out[t] = -1.0  # steady state: Erlang C, looked up below for all such seconds
            p99_out[t] = arriving / capacity
        served_out[t], gave_up_out[t], retries_out[t] = served, gave_up, retry_in
        backlog_out[t] = new_backlog
        backlog, retry_in = new_backlog, pod.retry_share * gave_up

        new = max(replicas, int(floor[t]))
        if t % sync_every == 0 and t > 0:
            hi = max(0, int(t - hpa.metric_lag_s))
            lo = max(0, int(hi - hpa.metric_window_s + 1))
            metric = float(np.minimum(utilisation[lo : hi + 1], pod.max_utilisation).mean())
            recommendation = _recommend(replicas, ready, metric, hpa)
            recommendations = [(w, r) for w, r in recommendations if w > t - hpa.scale_down_window_s]
            recommendations.append((t, recommendation))
            new = recommendation
            if new < replicas:
                # Scale-down stabilisation: the highest recommendation of the window wins.
                new = min(replicas, max(r for _, r in recommendations))
            if new > replicas:
                added = sum(k for w, k in scale_up_events if w > t - hpa.scale_up_period_s)
                new = min(new, scale_up_limit(replicas - added, hpa))
            new = int(np.clip(new, floor[t], hpa.max_replicas))
        if new > replicas:
            add_pods(t, new - replicas)
            scale_up_events.append((t, new - replicas))
        elif new < replicas:
            remove_pods(replicas - new)
        replicas = new
        ready_out[t], replicas_out[t], metric_out[t] = ready, replicas, metric

    steady = wait_out < 0
    rho_steady = np.minimum(p99_out[steady], rho_grid[-1])
    wait_out[steady] = np.interp(rho_steady, rho_grid, wait_grid)
    p99_out[steady] = np.interp(rho_steady, rho_grid, p99_grid)
    wait_out = np.minimum(wait_out, pod.timeout_s)
    p99_out = np.minimum(p99_out, pod.timeout_s)
    return pd.DataFrame(
        {
            "t_s": np.arange(n_s, dtype=float),
            "rps": load,
            "retries_per_s": retries_out,
            "replicas": replicas_out,
            "ready": ready_out,
            "utilisation": utilisation,
            "metric": metric_out,
            "served_per_s": served_out,
            "dropped_per_s": gave_up_out,
            "backlog": backlog_out,
            "mean_wait_ms": wait_out * 1000,
            "p99_ms": p99_out * 1000,
        }
    )


def _serve_second(
    backlog: float, arriving: float, capacity: float, timeout_s: float
) -> tuple[float, float, float]:
    """One second of the servers: (served, gave up, backlog left), all in requests.

    The backlog carried from the last second and this second's arrivals (retries
    included) form one first-come-first-served queue. The Ready pods serve up to
    their capacity; whoever is left waits into the next second, except that nobody
    waits longer than the client's timeout: a backlog deeper than ``timeout_s``
    seconds of capacity loses its excess (those clients give up, and some retry).
    """
    queue = backlog + arriving
    served = min(queue, capacity)
    left = queue - served
    gave_up = max(0.0, left - timeout_s * capacity)
    return served, gave_up, left - gave_up


def _recommend(replicas: int, ready: int, metric: float, hpa: HPAConfig) -> int:
    ratio = metric / hpa.target_utilisation
    if abs(ratio - 1.0) <= hpa.tolerance:
        return replicas
    # Pods not yet Ready count as using nothing when scaling up (replica_calculator.go), so the
    # recommendation rests on the Ready pods' usage: ceil(ready * ratio). It never reverses direction.
    proposal = desired_replicas(ready, metric, hpa.target_utilisation, hpa.tolerance)
    if ratio > 1:
        return max(replicas, proposal)
    return min(replicas, proposal)


def summarize_run(run: pd.DataFrame, *, slo_p99_ms: float = 500.0) -> pd.Series:
    """Cost and damage of one run of :func:`simulate_hpa`.

    Parameters
    ----------
    run : pandas.DataFrame
        The per-second frame of :func:`simulate_hpa` (at least one row).
    slo_p99_ms : float
        The latency objective, milliseconds.

    Returns
    -------
    pandas.Series
        ``pod_hours`` (every pod that exists, Ready or not), ``dropped_fraction``
        (attempts, retries included, whose client gave up), ``slo_bad_fraction`` (attempts
        that gave up or were served in a second whose p99 exceeds ``slo_p99_ms``),
        ``retry_share_of_load`` (retries as a share of all attempts), ``seconds_over_slo``
        and ``peak_p99_ms``.
    """
    validate.frame_columns("run", run, ["rps", "replicas", "served_per_s", "dropped_per_s", "p99_ms"])
    if run.empty:
        raise ValueError("run must hold at least one second")
    slo = validate.float_in_range("slo_p99_ms", slo_p99_ms, 0.0, MAX_SERVICE_S * 1000, low_inclusive=False)
    retries = run["retries_per_s"] if "retries_per_s" in run else pd.Series(0.0, index=run.index)
    total = float(run["rps"].sum() + retries.sum())
    over = run["p99_ms"] > slo
    bad = float(run["dropped_per_s"].sum() + run.loc[over, "served_per_s"].sum())
    return pd.Series(
        {
            "pod_hours": float(run["replicas"].sum() / 3600),
            "dropped_fraction": float(run["dropped_per_s"].sum() / total) if total else 0.0,
            "slo_bad_fraction": min(1.0, bad / total) if total else 0.0,
            "retry_share_of_load": float(retries.sum() / total) if total else 0.0,
            "seconds_over_slo": int(over.sum()),
            "peak_p99_ms": float(run["p99_ms"].max()),
        }
    )


# ----------------------------------------------------------------- traffic shapes


def traffic_shape(
    shape: str,
    *,
    duration_s: int = 7200,
    base_rps: float = 2000.0,
    peak_factor: float = 8.0,
    event_s: float = 1800.0,
    amplitude: float = 1.0,
    noise: float = 0.03,
    seed: int | np.random.Generator | None = 0,
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Requests per second for one of :data:`SHAPES`, and the windows a calendar would know about.

    - ``step_spike``: at ``event_s`` load jumps to ``peak_factor`` x base within 10 s
      (a push notification, the toss of a final) and holds for 20 minutes, then
      decays over 10 minutes.
    - ``flash_sale``: load ramps linearly from base to ``peak_factor`` x base over
      5 minutes from ``event_s``, holds for 30 minutes, then falls over 5 minutes.
    - ``ticketing``: at ``event_s`` a fan-out of 2.5 x ``peak_factor`` x base that
      decays (time constant 3 minutes) to a plateau of half the peak factor for
      40 minutes (the waiting room drains).
    - ``etl_sawtooth``: every 20 minutes from ``event_s``, a batch ramps load from base
      to ``peak_factor`` x base over 10 minutes and stops at once.

    ``amplitude`` scales the excess over base (used for other days' variation);
    ``noise`` is the relative standard deviation of per-second Poisson-like noise.

    Parameters
    ----------
    shape : str
        One of :data:`SHAPES`.
    duration_s : int
        Seconds, 1 to ``MAX_DURATION_S``.
    base_rps, peak_factor, event_s, amplitude, noise : float
        Background requests per second, peak multiple, event start (s, within the run),
        scale of the excess, relative noise.
    seed : int, numpy.random.Generator or None
        Source of the noise.

    Returns
    -------
    (rps, windows)
        ``rps``: array of length ``duration_s``. ``windows``: (start_s, end_s) of each
        planned event, for the scheduled strategy.
    """
    validate.choice("shape", shape, SHAPES)
    n = validate.int_in_range("duration_s", duration_s, 1, MAX_DURATION_S)
    base = validate.float_in_range("base_rps", base_rps, 0.0, 1e9, low_inclusive=False)
    peak = validate.float_in_range("peak_factor", peak_factor, 1.0, 1000.0)
    t0 = validate.float_in_range("event_s", event_s, 0.0, float(n))
    amp = validate.float_in_range("amplitude", amplitude, 0.0, 100.0)
    sigma = validate.float_in_range("noise", noise, 0.0, 1.0)
    rng = validate.rng_from_seed(seed)
    t = np.arange(n, dtype=float)
    excess = np.zeros(n)
    windows: list[tuple[float, float]] = []
    if shape == "step_spike":
        rise = np.clip((t - t0) / 10.0, 0, 1)
        fall = np.clip(1 - (t - (t0 + 1200)) / 600.0, 0, 1)
        excess = (peak - 1) * rise * fall
        windows.append((t0, t0 + 1800))
    elif shape == "flash_sale":
        rise = np.clip((t - t0) / 300.0, 0, 1)
        fall = np.clip(1 - (t - (t0 + 300 + 1800)) / 300.0, 0, 1)
        excess = (peak - 1) * rise * fall
        windows.append((t0, t0 + 2400))
    elif shape == "ticketing":
        after = t >= t0
        decay = np.where(after, np.exp(-(t - t0) / 180.0), 0.0)
        plateau = np.where(after & (t < t0 + 2400), peak / 2 - 1, 0.0)
        excess = np.maximum((2.5 * peak - 1) * decay, plateau)
        windows.append((t0, t0 + 2400))
    else:
        period, ramp = 1200.0, 600.0
        phase = t - t0
        in_batch = (phase >= 0) & (np.mod(phase, period) < ramp)
        excess = np.where(in_batch, (peak - 1) * np.mod(phase, period) / ramp, 0.0)
        start = t0
        while start < n:
            windows.append((start, start + ramp))
            start += period
    rps = base * (1 + amp * excess)
    if sigma:
        rps = rps * np.clip(1 + sigma * rng.standard_normal(n), 0.5, 1.5)
    return rps, windows


# -------------------------------------------------------------------- strategies


def min_replicas_schedule(
    strategy: str,
    rps: np.ndarray,
    windows: list[tuple[float, float]],
    history: Sequence[np.ndarray],
    hpa: HPAConfig,
    pod: PodConfig,
    *,
    lead_s: float = 600.0,
    forecast_bin_s: int = 300,
    margin: float = 0.1,
) -> np.ndarray:
    """The per-second replica floor each strategy puts under the HPA.

    - ``reactive``: nothing beyond ``hpa.min_replicas``: the HPA alone.
    - ``scheduled``: a calendar knows *when* events happen (``windows``); from
      ``lead_s`` before each window to its end, keep enough pods for the largest load
      seen in the same window on earlier days, plus ``margin``.
    - ``predictive``: forecast each ``forecast_bin_s`` bin as the highest load seen in
      it on earlier days (``history``), plus ``margin``, and provision it ``lead_s``
      ahead. It knows nothing about today's calendar.
    - ``pre_warmed``: the highest load of any earlier day, all day long.

    Pods are sized at the HPA's target utilisation.

    Parameters
    ----------
    strategy : str
        One of :data:`STRATEGIES`.
    rps : numpy.ndarray
        Today's load, requests per second.
    windows : list of (float, float)
        The calendar's event windows, seconds.
    history : sequence of numpy.ndarray
        Earlier days' loads.
    hpa, pod : HPAConfig, PodConfig
    lead_s : float
        Seconds ahead that capacity is provisioned.
    forecast_bin_s : int
        Width of the forecast's bins, seconds (AWS predictive scaling forecasts hourly: 3600).
    margin : float
        Extra capacity, as a share.

    Returns
    -------
    numpy.ndarray
        Minimum replicas for each second.
    """
    validate.choice("strategy", strategy, STRATEGIES)
    n = len(rps)
    lead = int(validate.non_negative_float("lead_s", lead_s))
    bin_s = validate.positive_int("forecast_bin_s", forecast_bin_s)
    extra = validate.non_negative_float("margin", margin)
    if strategy != "reactive" and len(history) == 0:
        raise ValueError("history must hold at least one earlier day for this strategy")
    per_pod = pod.capacity_per_s * hpa.target_utilisation
    floor = np.full(n, hpa.min_replicas, dtype=np.int64)
    if strategy == "reactive":
        return floor
    past = np.vstack([np.asarray(day, dtype=float)[:n] for day in history])
    if strategy == "pre_warmed":
        return np.maximum(floor, int(math.ceil(past.max() * (1 + extra) / per_pod)))
    if strategy == "scheduled":
        for start, end in windows:
            a, b = max(0, int(start) - lead), min(n, int(end))
            seen = past[:, int(start) : max(int(start) + 1, b)].max()
            floor[a:b] = np.maximum(floor[a:b], int(math.ceil(seen * (1 + extra) / per_pod)))
        return floor
    bins = int(math.ceil(n / bin_s))
    padded = np.full((past.shape[0], bins * bin_s), np.nan)
    padded[:, : past.shape[1]] = past
    forecast = np.nanmax(padded.reshape(past.shape[0], bins, bin_s), axis=(0, 2))
    pods = np.ceil(forecast * (1 + extra) / per_pod).astype(np.int64)
    per_second = np.repeat(pods, bin_s)[:n]
    # Provision each bin lead_s ahead: the floor at t is the forecast for [t, t + lead].
    ahead = np.array([per_second[t : min(n, t + lead + 1)].max() for t in range(n)])
    return np.maximum(floor, ahead)


def compare_strategies(
    shapes: Sequence[str] = SHAPES,
    strategies: Sequence[str] = STRATEGIES,
    hpa: HPAConfig = HPAConfig(),
    pod: PodConfig = PodConfig(),
    cluster: ClusterConfig = ClusterConfig(),
    *,
    duration_s: int = 7200,
    base_rps: float = 2000.0,
    peak_factor: float = 8.0,
    event_s: float = 1800.0,
    history_days: int = 7,
    day_shift_s: float = 900.0,
    day_amplitude_sd: float = 0.2,
    slo_p99_ms: float = 500.0,
    lead_s: float = 600.0,
    forecast_bin_s: int = 300,
    seed: int | np.random.Generator | None = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run every shape under every strategy.

    Earlier days differ from today: the event moves by up to ``day_shift_s`` (uniform)
    and its size by a relative ``day_amplitude_sd`` (normal). Today the event happens at
    ``event_s`` with amplitude 1.

    Parameters
    ----------
    shapes, strategies : sequence of str
        Names from :data:`SHAPES` and :data:`STRATEGIES`.
    hpa, pod, cluster : HPAConfig, PodConfig, ClusterConfig
        The controller, the pods (with the clients' timeout and retries) and the room for pods.
    duration_s : int
        Seconds simulated per run (at most ``MAX_DURATION_S``).
    base_rps, peak_factor, event_s : float
        Traffic: background requests per second, peak as a multiple of it, event start (s).
    history_days : int
        Earlier days the forecasts learn from (1 to ``MAX_HISTORY_DAYS``).
    day_shift_s, day_amplitude_sd : float
        How far earlier days' events move (s) and how their size varies (relative SD).
    slo_p99_ms : float
        Latency objective, milliseconds.
    lead_s : float
        How far ahead scheduled and predictive capacity is provisioned, seconds.
    forecast_bin_s : int
        Width of the predictive forecast's bins, seconds (AWS predictive scaling: 3600).
    seed : int, numpy.random.Generator or None
        Source of the days' variation and noise.

    Returns
    -------
    (timelines, summary)
        ``timelines``: the per-second rows of :func:`simulate_hpa` with ``shape`` and
        ``strategy`` columns. ``summary``: one row per (shape, strategy) with the
        columns of :func:`summarize_run`.
    """
    for name, value, kind in (
        ("hpa", hpa, HPAConfig),
        ("pod", pod, PodConfig),
        ("cluster", cluster, ClusterConfig),
    ):
        validate.instance(name, value, kind)
    shapes = [validate.choice("shapes[]", x, SHAPES) for x in shapes]
    strategies = [validate.choice("strategies[]", x, STRATEGIES) for x in strategies]
    duration_s = validate.int_in_range("duration_s", duration_s, 1, MAX_DURATION_S)
    validate.float_in_range("event_s", event_s, 0.0, float(duration_s))
    days = validate.int_in_range("history_days", history_days, 1, MAX_HISTORY_DAYS)
    if len(shapes) * len(strategies) * duration_s * (days + 1) > 40 * MAX_DURATION_S:
        raise ValueError("shapes x strategies x duration_s x history_days is too large for one chapter")
    shift = validate.float_in_range("day_shift_s", day_shift_s, 0.0, float(duration_s))
    amp_sd = validate.float_in_range("day_amplitude_sd", day_amplitude_sd, 0.0, 10.0)
    validate.int_in_range("forecast_bin_s", forecast_bin_s, 1, MAX_DURATION_S)
    rng = validate.rng_from_seed(seed)
    frames, rows = [], []
    for shape in shapes:
        kwargs = dict(duration_s=duration_s, base_rps=base_rps, peak_factor=peak_factor)
        today, windows = traffic_shape(shape, event_s=event_s, seed=rng, **kwargs)
        history = [
            traffic_shape(
                shape,
                event_s=float(np.clip(event_s + rng.uniform(-shift, shift), 0.0, duration_s)),
                amplitude=max(0.0, 1 + amp_sd * rng.standard_normal()),
                seed=rng,
                **kwargs,
            )[0]
            for _ in range(days)
        ]
        for strategy in strategies:
            floor = min_replicas_schedule(
                strategy, today, windows, history, hpa, pod, lead_s=lead_s, forecast_bin_s=forecast_bin_s
            )
            run = simulate_hpa(today, hpa, pod, cluster, min_replicas=floor)
            frames.append(run.assign(shape=shape, strategy=strategy))
            rows.append({"shape": shape, "strategy": strategy, **summarize_run(run, slo_p99_ms=slo_p99_ms)})
    return pd.concat(frames, ignore_index=True), pd.DataFrame(rows)


def with_defaults(config: HPAConfig, **changes: object) -> HPAConfig:
    """A copy of ``config`` with some fields changed (validated again).

    Parameters
    ----------
    config : HPAConfig
    **changes
        Fields to change.

    Returns
    -------
    HPAConfig
    """
    validate.instance("config", config, HPAConfig)
    return replace(config, **changes)


# ------------------------------------------------------------------------- plots


def plot_timeline(
    run: pd.DataFrame, pod: PodConfig, axes: np.ndarray | None = None, *, slo_p99_ms: float | None = None
) -> np.ndarray:
    """Top: load and capacity (requests/s). Bottom: p99 response time (ms, log scale).

    Parameters
    ----------
    run : pandas.DataFrame
        A run of :func:`simulate_hpa`.
    pod : PodConfig
        The pods of that run (for their capacity).
    axes : two matplotlib Axes, optional
        Where to draw (top, bottom); default a new 2 x 1 figure.
    slo_p99_ms : float, optional
        Draw the latency objective as a dotted line.

    Returns
    -------
    numpy.ndarray
        The two Axes.
    """
    validate.frame_columns("run", run, ["t_s", "rps", "ready", "replicas", "p99_ms"])
    validate.instance("pod", pod, PodConfig)
    top, bottom = panels(1, 2, axes, figsize=(7, 5))
    minutes = run["t_s"] / 60
    offered = run["rps"] + (run["retries_per_s"] if "retries_per_s" in run else 0)
    top.plot(minutes, offered, lw=1, color="0.3", label="load incl. retries")
    top.plot(minutes, run["ready"] * pod.capacity_per_s, color="C0", label="capacity of Ready pods")
    top.plot(minutes, run["replicas"] * pod.capacity_per_s, color="C1", ls="--", label="incl. starting pods")
    label(top, "", "requests per second")
    # A fixed corner: loc="best" scans every point of three 7,200-point lines on each draw, which
    # is most of an explorer update; after the event the top right is always quiet.
    top.legend(loc="upper right")
    bottom.plot(minutes, run["p99_ms"], color="C3")
    if slo_p99_ms is not None:
        bottom.axhline(validate.positive_float("slo_p99_ms", slo_p99_ms), color="0.5", ls=":")
    bottom.set_yscale("log")
    bottom.yaxis.set_major_formatter("{x:g}")  # 100, 1000: plain labels draw faster than 10^k
    label(bottom, "time (minutes)", "p99 response time (ms)")
    return np.array([top, bottom])


def plot_shapes(timelines: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """The traffic shapes of :func:`compare_strategies`, one line each.

    Parameters
    ----------
    timelines : pandas.DataFrame
        The first frame of :func:`compare_strategies` (``t_s``, ``rps``, ``shape``, ``strategy``).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    validate.frame_columns("timelines", timelines, ["t_s", "rps", "shape", "strategy"])
    ax = axes_or_new(ax)
    first = timelines["strategy"].iloc[0] if len(timelines) else None
    for shape, group in timelines[timelines["strategy"] == first].groupby("shape", sort=False):
        ax.plot(group["t_s"] / 60, group["rps"], lw=1, label=str(shape).replace("_", " "))
    label(ax, "time (minutes)", "requests per second", legend=True)
    return ax


def plot_startup_sweep(sweep: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Bad requests against pod start-up time, one line per cluster.

    Parameters
    ----------
    sweep : pandas.DataFrame
        Rows with ``startup_s``, ``cluster`` (a label) and ``slo_bad_fraction``.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    validate.frame_columns("sweep", sweep, ["startup_s", "cluster", "slo_bad_fraction"])
    ax = axes_or_new(ax)
    for (name, group), marker in zip(sweep.groupby("cluster", sort=False), "os^D", strict=False):
        ax.plot(group["startup_s"], group["slo_bad_fraction"], marker=marker, label=str(name))
    ax.set_ylim(bottom=0)
    label(ax, "pod start-up time (s)", "requests dropped or over the SLO", legend=True)
    return ax


# ------------------------------------------- the same pods, request by request


def simulate_requests(
    rps: Sequence[float] | np.ndarray,
    pod: PodConfig = PodConfig(),
    *,
    pods: int = 5,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """A fixed number of pods, simulated request by request: the check on the fluid backlog.

    Requests arrive as a Poisson process whose rate is ``rps[t]`` in second ``t``; the
    ``pods * pod.workers`` servers take them first come first served (one shared queue,
    :func:`syslab.queueing.simulate_pool`, exponential service times), and a request that
    has waited ``pod.timeout_s`` gives up. No retries and no controller: the point is to
    see whether an overload leaves a backlog that takes time to drain, as
    :func:`simulate_hpa` assumes.

    Parameters
    ----------
    rps : array of float
        Arrival rate in each second, requests per second.
    pod : PodConfig
        Service time, workers per pod and the clients' timeout.
    pods : int
        Ready pods, 1 to ``MAX_REPLICAS``.
    seed : int, numpy.random.Generator or None
        Source of arrivals and service times.

    Returns
    -------
    pandas.DataFrame
        One row per second: ``t_s``, ``arrivals`` (requests that arrived),
        ``dropped`` (of those, how many gave up), ``mean_wait_ms`` (mean wait of the
        requests that arrived in that second).
    """
    load = np.asarray(rps, dtype=float)
    if load.ndim != 1 or load.size == 0 or not np.all(np.isfinite(load)) or load.min() < 0:
        raise ValueError("rps must be a non-empty 1-D sequence of finite rates >= 0")
    validate.instance("pod", pod, PodConfig)
    n_pods = validate.int_in_range("pods", pods, 1, MAX_REPLICAS)
    expected = float(load.sum())
    if expected > queueing.MAX_ARRIVALS / 10:
        raise ValueError(f"rps asks for {expected:.0f} requests; at most {queueing.MAX_ARRIVALS // 10} fit")
    rng = validate.rng_from_seed(seed)
    counts = rng.poisson(load)
    starts = np.repeat(np.arange(load.size, dtype=float), counts)
    arrivals = np.sort(starts + rng.random(starts.size))
    frame = queueing.simulate_pool(
        queueing.PoolConfig(size=n_pods * pod.workers, acquire_timeout_s=pod.timeout_s),
        arrivals_s=arrivals,
        mean_service_s=pod.mean_service_s,
        seed=rng,
    )
    second = np.floor(frame["arrival_s"]).astype(int)
    grouped = frame.assign(
        second=second, dropped=(frame["outcome"] == "timeout").astype(int), wait_ms=frame["wait_s"] * 1000
    ).groupby("second")
    out = pd.DataFrame({"t_s": np.arange(load.size, dtype=float)})
    out["arrivals"] = grouped.size().reindex(range(load.size), fill_value=0).to_numpy()
    out["dropped"] = grouped["dropped"].sum().reindex(range(load.size), fill_value=0).to_numpy()
    out["mean_wait_ms"] = grouped["wait_ms"].mean().reindex(range(load.size)).to_numpy()
    return out


def summarize_recovery(run: pd.DataFrame, *, overload_end_s: float, wait_ms: float = 50.0) -> float:
    """Seconds after ``overload_end_s`` until a second's mean wait first falls to ``wait_ms``.

    Parameters
    ----------
    run : pandas.DataFrame
        Per-second rows with ``t_s`` and ``mean_wait_ms`` (:func:`simulate_hpa` or
        :func:`simulate_requests`).
    overload_end_s : float
        When the load dropped back below capacity, seconds.
    wait_ms : float
        The mean wait that counts as recovered, milliseconds.

    Returns
    -------
    float
        Seconds to recover; ``inf`` if the run ends first.
    """
    validate.frame_columns("run", run, ["t_s", "mean_wait_ms"])
    end = validate.finite_float("overload_end_s", overload_end_s)
    limit = validate.positive_float("wait_ms", wait_ms)
    after = run[(run["t_s"] >= end) & (run["mean_wait_ms"] <= limit)]
    return float(after["t_s"].min() - end) if len(after) else math.inf


# ------------------------------------------------------------ a real pod's queue


def measure_pod_queue(
    utilisations: Sequence[float],
    *,
    mean_service_s: float = 0.01,
    workers: int = 4,
    duration_s: float = 1.0,
    replications: int = 1,
    waited_ms: float = 1.0,
    seed: int | np.random.Generator | None = 0,
    timeout_s: float = 60.0,
) -> experiment.Run:
    """Real threads as one pod: Poisson arrivals into a pool of ``workers`` threads.

    For each utilisation and replication, a dispatcher submits requests at Poisson times
    (rate ``utilisation * workers / mean_service_s``) to a ``ThreadPoolExecutor`` whose
    tasks sleep for an exponential service time; the wait is measured from the
    scheduled arrival to the moment a worker picks the request up, and the service from
    the start to the end of the sleep. Erlang C is then evaluated at the *measured*
    arrival rate and mean service time (sleeps overshoot), so the comparison tests the
    queue, not the sleep's accuracy; it can fail (scheduler delays, a run too short to
    reach steady state).

    Parameters
    ----------
    utilisations : sequence of float
        Target utilisations, each in (0, 0.99).
    mean_service_s : float
        Mean of the exponential sleep, seconds (0.001 to 1).
    workers : int
        Threads in the pod (1 to 64).
    duration_s : float
        Seconds of arrivals per (utilisation, replication), at most ``MAX_REAL_DURATION_S``.
    replications : int
        Independent runs per utilisation (1 to ``MAX_REPLICATIONS``).
    waited_ms : float
        A request "waited" if its wait exceeded this, milliseconds (above the thread
        hand-off time); Erlang C gives ``P(W > t) = C exp(-(c mu - lambda) t)``.
    seed : int, numpy.random.Generator or None
        Source of arrival and service times.
    timeout_s : float
        Limit for the whole experiment, seconds; unfinished requests are dropped.

    Returns
    -------
    syslab.experiment.Run
        ``frame``: one row per (utilisation, replication): ``utilisation``,
        ``replication``, ``requests``, ``arrival_rate_per_s`` and ``mean_service_ms``
        (measured), ``mean_wait_ms`` and ``waited_share`` (measured),
        ``mean_wait_ms_theory`` and ``waited_share_theory`` (Erlang C at the measured
        load) and ``p99_wait_ms``. ``summary``: ``n_runs``, ``workers``.
    """
    if isinstance(utilisations, (str, bytes)) or not isinstance(utilisations, Sequence):
        raise TypeError("utilisations must be a sequence of floats")
    levels = [
        validate.float_in_range("utilisations[]", u, 0.0, 0.99, low_inclusive=False) for u in utilisations
    ]
    if not levels or len(levels) > 20:
        raise ValueError(f"utilisations must hold 1 to 20 levels, got {len(levels)}")
    service = validate.float_in_range("mean_service_s", mean_service_s, 0.001, 1.0)
    c = validate.int_in_range("workers", workers, 1, 64)
    duration = validate.float_in_range(
        "duration_s", duration_s, 0.0, MAX_REAL_DURATION_S, low_inclusive=False
    )
    reps = validate.int_in_range("replications", replications, 1, MAX_REPLICATIONS)
    threshold_s = validate.float_in_range("waited_ms", waited_ms, 0.0, 1000.0) / 1000
    limit = validate.float_in_range("timeout_s", timeout_s, 0.0, 600.0, low_inclusive=False)
    rng = validate.rng_from_seed(seed)
    deadline = time.monotonic() + limit
    rows = []
    for rep in range(reps):
        for u in levels:
            lam = u * c / service
            n = max(1, int(lam * duration))
            if n > MAX_REAL_REQUESTS:
                raise ValueError(f"duration_s x rate asks for {n} requests; at most {MAX_REAL_REQUESTS}")
            arrivals = queueing.poisson_arrival_times_s(n, lam, rng)
            services = rng.exponential(service, n)
            waits, held = _run_thread_pod(arrivals, services, c, deadline)
            if waits.size < 2:
                continue
            rate = waits.size / float(arrivals[waits.size - 1])
            held_mean = float(held.mean())
            stable = rate * held_mean < c
            theory_wait = queueing.mmc_mean_queue_delay_s(rate, held_mean, c) if stable else math.inf
            p_wait = queueing.erlang_c(c, rate * held_mean) if stable else 1.0
            theory_share = p_wait * math.exp(-(c / held_mean - rate) * threshold_s) if stable else 1.0
            rows.append(
                {
                    "utilisation": u,
                    "replication": rep,
                    "requests": int(waits.size),
                    "arrival_rate_per_s": rate,
                    "mean_service_ms": held_mean * 1000,
                    "mean_wait_ms": float(waits.mean() * 1000),
                    "mean_wait_ms_theory": theory_wait * 1000,
                    "waited_share": float((waits > threshold_s).mean()),
                    "waited_share_theory": theory_share,
                    "p99_wait_ms": float(np.quantile(waits, 0.99) * 1000),
                }
            )
    frame = pd.DataFrame(rows)
    return experiment.Run.create(frame, {"n_runs": len(rows), "workers": c, "waited_ms": threshold_s * 1000})


def summarize_pod_queue(run: experiment.Run | pd.DataFrame) -> pd.DataFrame:
    """Measured against Erlang C, one row per utilisation, with a run-to-run spread.

    Parameters
    ----------
    run : syslab.experiment.Run or pandas.DataFrame
        The result of :func:`measure_pod_queue` (or its frame).

    Returns
    -------
    pandas.DataFrame
        ``utilisation``, ``requests`` (total), ``mean_wait_ms`` and ``mean_wait_ms_theory``
        (means over replications), ``wait_se_ms`` (standard error over replications;
        NaN with one), ``waited_share`` and ``waited_share_theory``, and ``agrees``:
        the measured mean wait is within ``max(3 SE, 30 % of theory, 0.5 ms)`` of theory.
    """
    frame = run.frame if isinstance(run, experiment.Run) else run
    validate.frame_columns(
        "run", frame, ["utilisation", "requests", "mean_wait_ms", "mean_wait_ms_theory", "waited_share"]
    )
    if frame.empty:
        raise ValueError("run holds no measurements")
    g = frame.groupby("utilisation")
    out = pd.DataFrame(
        {
            "requests": g["requests"].sum(),
            "mean_wait_ms": g["mean_wait_ms"].mean(),
            "mean_wait_ms_theory": g["mean_wait_ms_theory"].mean(),
            "wait_se_ms": g["mean_wait_ms"].std(ddof=1) / np.sqrt(g.size()),
            "waited_share": g["waited_share"].mean(),
            "waited_share_theory": g["waited_share_theory"].mean(),
        }
    ).reset_index()
    margin = np.maximum.reduce(
        [3 * out["wait_se_ms"].fillna(0), 0.3 * out["mean_wait_ms_theory"], np.full(len(out), 0.5)]
    )
    out["agrees"] = (out["mean_wait_ms"] - out["mean_wait_ms_theory"]).abs() <= margin
    return out


def _run_thread_pod(
    arrivals: np.ndarray, services: np.ndarray, workers: int, deadline: float
) -> tuple[np.ndarray, np.ndarray]:
    # Submit each request at its arrival time; a worker records when it picks the request up
    # and how long its sleep really took.
    waits = np.full(arrivals.size, np.nan)
    held = np.full(arrivals.size, np.nan)

    def task(i: int, origin: float) -> None:
        start = time.perf_counter()
        waits[i] = start - (origin + arrivals[i])
        time.sleep(services[i])
        held[i] = time.perf_counter() - start

    with ThreadPoolExecutor(max_workers=workers) as pool:
        origin = time.perf_counter()
        futures = []
        for i in range(arrivals.size):
            delay = origin + arrivals[i] - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(task, i, origin))
            if time.monotonic() > deadline:
                break
        wait(futures, timeout=max(0.1, deadline - time.monotonic()))
        for future in futures:
            future.cancel()
    done = ~np.isnan(held)
    # Keep the prefix of requests that all finished (arrival order), so the rate is honest.
    upto = int(np.argmin(done)) if not done.all() else arrivals.size
    return waits[:upto], held[:upto]
