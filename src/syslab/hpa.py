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
  is dropped;
- **the traffic and the strategies** -- four traffic shapes (:func:`traffic_shape`)
  and four ways to provision for them (reactive, scheduled, predictive from
  earlier days, pre-warmed), compared by :func:`compare_strategies` in pod-hours
  against SLO violations.

The model is quasi-static: each second is treated as a steady-state queue at that
second's load and pod count. That ignores the backlog carried from one second to
the next, so it is optimistic about recovery after an overload.

Units are in the names: ``_s`` seconds, ``_ms`` milliseconds, ``_per_s`` per second.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from syslab import queueing, validate
from syslab.plot import axes_or_new, label

__all__ = [
    "SHAPES",
    "STRATEGIES",
    "ClusterConfig",
    "HPAConfig",
    "PodConfig",
    "compare_strategies",
    "desired_replicas",
    "measure_pod_queue",
    "min_replicas_schedule",
    "mmc_p99_wait_s",
    "plot_strategy_costs",
    "plot_timeline",
    "scale_up_limit",
    "simulate_hpa",
    "summarize_run",
    "theory_fastest_scale_up",
    "traffic_shape",
]

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
    service_time_s : float
        Mean CPU time of one request (exponential).
    workers : int
        Requests a pod serves at once (its CPU request, in cores, at one request per core).
    max_utilisation : float
        The highest CPU utilisation a pod can *report*, as a fraction of its request:
        1.0 when the CPU limit equals the request, ``inf`` for a metric that is not
        capped (requests per second, queue length).
    startup_s : float
        From creation to Ready: scheduling, image pull, process start, readiness probe.
    timeout_s : float
        Latency of a request that waits in a full queue (its client gives up).
    """

    service_time_s: float = 0.02  # seconds
    workers: int = 4  # concurrent requests per pod
    max_utilisation: float = 1.0  # fraction of the CPU request
    startup_s: float = 45.0  # seconds
    timeout_s: float = 2.0  # seconds

    def __post_init__(self) -> None:
        validate.positive_float("service_time_s", self.service_time_s)
        validate.positive_int("workers", self.workers)
        validate.positive_float("max_utilisation", self.max_utilisation, allow_inf=True)
        validate.non_negative_float("startup_s", self.startup_s)
        validate.positive_float("timeout_s", self.timeout_s)

    @property
    def capacity_per_s(self) -> float:
        """Requests per second one pod completes at 100% utilisation."""
        return self.workers / self.service_time_s


@dataclass(frozen=True)
class ClusterConfig:
    """Room for new pods: free slots now, and how long a new node takes."""

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
    """
    start = validate.non_negative_int("period_start_replicas", period_start_replicas)
    by_pods = start + config.scale_up_pods
    by_percent = int(math.ceil(start * (1 + config.scale_up_percent / 100) - 1e-9))
    return max(by_pods, by_percent)


def theory_fastest_scale_up(start: int, target: int, config: HPAConfig = HPAConfig()) -> pd.DataFrame:
    """The fastest path from ``start`` to ``target`` replicas under the scale-up policy.

    Assumes the metric asks for more than the policy allows at every sync and each
    period's scale event has left the policy window by the next sync (so the limit
    applies per sync). Pod start-up is not included.

    Returns
    -------
    pandas.DataFrame
        One row per sync: ``sync``, ``t_s`` and ``replicas``.
    """
    n = validate.positive_int("start", start)
    goal = validate.positive_int("target", target)
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
    so ``P(W > t) = C exp(-(c mu - lambda) t)``. Returns ``inf`` when unstable.
    """
    lam = validate.non_negative_float("arrival_rate_per_s", arrival_rate_per_s)
    s = validate.positive_float("mean_service_s", mean_service_s)
    c = validate.positive_int("servers", servers)
    quantile = validate.float_in_range("q", q, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
    if lam >= c / s:
        return math.inf
    p_wait = queueing.erlang_c(c, lam * s)
    tail = 1 - quantile
    if p_wait <= tail:
        return 0.0
    return math.log(p_wait / tail) / (c / s - lam)


def _latency_table(pod: PodConfig, points: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Per-pod utilisation grid -> mean wait and p99 response time, so the per-second loop
    # interpolates instead of calling Erlang C 7,200 times per run.
    rho = np.linspace(0.0, 0.999, points)
    lam = rho * pod.capacity_per_s
    mean_wait = np.array([queueing.mmc_mean_queue_delay_s(x, pod.service_time_s, pod.workers) for x in lam])
    # p99 of the response time, bounded by the p99 of the wait plus the p99 of an exponential service.
    p99 = np.array([mmc_p99_wait_s(x, pod.service_time_s, pod.workers) for x in lam])
    p99 = p99 + pod.service_time_s * math.log(100)
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
        Requests per second arriving in each second of the run.
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
        ``dropped_per_s``, ``mean_wait_ms`` and ``p99_ms`` (response time of served requests).
    """
    load = np.asarray(rps, dtype=float)
    if load.ndim != 1 or load.size == 0:
        raise ValueError("rps must be a non-empty one-dimensional sequence")
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
        floor = np.maximum(floor, np.asarray(min_replicas, dtype=np.int64))
        if floor.shape != (n_s,):
            raise ValueError(f"min_replicas must have one value per second ({n_s}), got shape {floor.shape}")
    floor = np.minimum(floor, hpa.max_replicas)
    cap = pod.capacity_per_s
    if initial_replicas is None:
        initial_replicas = int(math.ceil(load[0] / (cap * hpa.target_utilisation)))
    start = max(int(validate.positive_int("initial_replicas", max(1, initial_replicas))), int(floor[0]))
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

    for t in range(n_s):
        free_slots += int(slot_events[t])
        arrived = int(ready_events[t])
        if arrived:
            ready += arrived
            del pending[:arrived]
        utilisation[t] = load[t] / (ready * cap)
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

    # The servers, vectorised: each second is an M/M/c queue per Ready pod (Erlang C).
    rho_grid, wait_grid, p99_grid = _latency_table(pod)
    rho = load / (ready_out * cap)
    served = np.minimum(load, ready_out * cap)
    stable = rho < rho_grid[-1]
    wait_s = np.where(stable, np.interp(np.minimum(rho, rho_grid[-1]), rho_grid, wait_grid), pod.timeout_s)
    p99_s = np.where(stable, np.interp(np.minimum(rho, rho_grid[-1]), rho_grid, p99_grid), pod.timeout_s)
    return pd.DataFrame(
        {
            "t_s": np.arange(n_s, dtype=float),
            "rps": load,
            "replicas": replicas_out,
            "ready": ready_out,
            "utilisation": utilisation,
            "metric": metric_out,
            "served_per_s": served,
            "dropped_per_s": load - served,
            "mean_wait_ms": wait_s * 1000,
            "p99_ms": p99_s * 1000,
        }
    )


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
    """Cost and damage of one run.

    Returns
    -------
    pandas.Series
        ``pod_hours`` (every pod that exists, Ready or not), ``dropped_fraction``,
        ``slo_bad_fraction`` (requests dropped or served in a second whose p99 exceeds
        ``slo_p99_ms``), ``seconds_over_slo`` and ``peak_p99_ms``.
    """
    slo = validate.positive_float("slo_p99_ms", slo_p99_ms)
    total = float(run["rps"].sum())
    over = run["p99_ms"] > slo
    bad = float(run["dropped_per_s"].sum() + run.loc[over, "served_per_s"].sum())
    return pd.Series(
        {
            "pod_hours": float(run["replicas"].sum() / 3600),
            "dropped_fraction": float(run["dropped_per_s"].sum() / total) if total else 0.0,
            "slo_bad_fraction": bad / total if total else 0.0,
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

    Returns
    -------
    (rps, windows)
        ``rps``: array of length ``duration_s``. ``windows``: (start_s, end_s) of each
        planned event, for the scheduled strategy.
    """
    validate.choice("shape", shape, SHAPES)
    n = validate.positive_int("duration_s", duration_s)
    base = validate.positive_float("base_rps", base_rps)
    peak = validate.float_in_range("peak_factor", peak_factor, 1.0, 1000.0)
    t0 = validate.finite_float("event_s", event_s)
    amp = validate.non_negative_float("amplitude", amplitude)
    sigma = validate.non_negative_float("noise", noise)
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
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run every shape under every strategy.

    Earlier days differ from today: the event moves by up to ``day_shift_s`` (uniform)
    and its size by a relative ``day_amplitude_sd`` (normal). Today the event happens at
    ``event_s`` with amplitude 1.

    Returns
    -------
    (timelines, summary)
        ``timelines``: the per-second rows of :func:`simulate_hpa` with ``shape`` and
        ``strategy`` columns. ``summary``: one row per (shape, strategy) with the
        columns of :func:`summarize_run`.
    """
    days = validate.positive_int("history_days", history_days)
    shift = validate.non_negative_float("day_shift_s", day_shift_s)
    amp_sd = validate.non_negative_float("day_amplitude_sd", day_amplitude_sd)
    rng = validate.rng_from_seed(seed)
    frames, rows = [], []
    for shape in shapes:
        kwargs = dict(duration_s=duration_s, base_rps=base_rps, peak_factor=peak_factor)
        today, windows = traffic_shape(shape, event_s=event_s, seed=rng, **kwargs)
        history = [
            traffic_shape(
                shape,
                event_s=event_s + rng.uniform(-shift, shift),
                amplitude=max(0.0, 1 + amp_sd * rng.standard_normal()),
                seed=rng,
                **kwargs,
            )[0]
            for _ in range(days)
        ]
        for strategy in strategies:
            floor = min_replicas_schedule(strategy, today, windows, history, hpa, pod, lead_s=lead_s)
            run = simulate_hpa(today, hpa, pod, cluster, min_replicas=floor)
            frames.append(run.assign(shape=shape, strategy=strategy))
            rows.append({"shape": shape, "strategy": strategy, **summarize_run(run, slo_p99_ms=slo_p99_ms)})
    return pd.concat(frames, ignore_index=True), pd.DataFrame(rows)


def with_defaults(config: HPAConfig, **changes: object) -> HPAConfig:
    """A copy of ``config`` with some fields changed (validated again)."""
    return replace(config, **changes)


# ------------------------------------------------------------------------- plots


def plot_timeline(run: pd.DataFrame, pod: PodConfig, axes: Sequence[Axes] | None = None) -> Sequence[Axes]:
    """Top: load and Ready capacity (requests/s). Bottom: p99 response time (ms, log)."""
    if axes is None:
        import matplotlib.pyplot as plt

        _, axes = plt.subplots(2, 1, figsize=(9, 5), sharex=True)
    top, bottom = axes
    minutes = run["t_s"] / 60
    top.plot(minutes, run["rps"], lw=1, color="0.3", label="load")
    top.plot(minutes, run["ready"] * pod.capacity_per_s, color="C0", label="capacity of Ready pods")
    top.plot(
        minutes,
        run["replicas"] * pod.capacity_per_s,
        color="C1",
        ls="--",
        label="capacity incl. starting pods",
    )
    label(top, "", "requests per second", legend=True)
    bottom.plot(minutes, run["p99_ms"], color="C3")
    bottom.set_yscale("log")
    label(bottom, "time (minutes)", "p99 response time (ms)")
    return axes


def plot_strategy_costs(summary: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Pod-hours against the fraction of requests that broke the SLO, one marker per run."""
    ax = axes_or_new(ax)
    markers = {"reactive": "o", "scheduled": "s", "predictive": "D", "pre_warmed": "^"}
    for i, (_, group) in enumerate(summary.groupby("shape", sort=False)):
        for _, row in group.iterrows():
            ax.scatter(
                row["pod_hours"],
                max(row["slo_bad_fraction"], 1e-5),
                color=f"C{i}",
                marker=markers.get(row["strategy"], "o"),
                s=50,
            )
    for i, shape in enumerate(summary["shape"].unique()):
        ax.scatter([], [], color=f"C{i}", marker="s", label=shape.replace("_", " "))
    for strategy, marker in markers.items():
        ax.scatter([], [], color="0.4", marker=marker, label=strategy.replace("_", " "))
    ax.set_yscale("log")
    label(ax, "cost (pod-hours)", "requests dropped or over the SLO (fraction)", legend=True)
    return ax


# ------------------------------------------------------------ a real pod's queue


def measure_pod_queue(
    utilisations: Sequence[float],
    *,
    service_time_s: float = 0.01,
    workers: int = 4,
    duration_s: float = 1.0,
    seed: int = 0,
    timeout_s: float = 60.0,
) -> pd.DataFrame:
    """Real threads as one pod: Poisson arrivals into a pool of ``workers`` threads.

    For each utilisation, a dispatcher submits requests at Poisson times (rate
    ``utilisation * workers / service_time_s``) to a ``ThreadPoolExecutor`` whose
    tasks sleep for an exponential service time; the wait is measured from the
    scheduled arrival to the moment a worker picks the request up. Sleep and
    scheduler jitter make it an imperfect M/M/c queue; its waits should still
    follow Erlang C's shape.

    Returns
    -------
    pandas.DataFrame
        One row per utilisation: ``utilisation``, ``requests``, ``mean_wait_ms``
        (measured), ``mean_wait_ms_theory`` (:func:`syslab.queueing.mmc_mean_queue_delay_s`)
        and ``p99_wait_ms``.
    """
    levels = [
        validate.float_in_range("utilisations[]", u, 0.0, 0.99, low_inclusive=False) for u in utilisations
    ]
    if not levels:
        raise ValueError("utilisations must not be empty")
    service = validate.positive_float("service_time_s", service_time_s)
    c = validate.positive_int("workers", workers)
    duration = validate.positive_float("duration_s", duration_s)
    limit = validate.positive_float("timeout_s", timeout_s)
    rng = validate.rng_from_seed(seed)
    deadline = time.monotonic() + limit
    rows = []
    for u in levels:
        lam = u * c / service
        n = max(1, int(lam * duration))
        arrivals = np.cumsum(rng.exponential(1 / lam, n))
        services = rng.exponential(service, n)
        measured = _run_thread_pod(arrivals, services, c, deadline)
        rows.append(
            {
                "utilisation": u,
                "requests": int(measured.size),
                "mean_wait_ms": float(measured.mean() * 1000) if measured.size else math.nan,
                "mean_wait_ms_theory": queueing.mmc_mean_queue_delay_s(lam, service, c) * 1000,
                "p99_wait_ms": float(np.quantile(measured, 0.99) * 1000) if measured.size else math.nan,
            }
        )
    return pd.DataFrame(rows)


def _run_thread_pod(arrivals: np.ndarray, services: np.ndarray, workers: int, deadline: float) -> np.ndarray:
    # Submit each request at its arrival time; a worker records when it picks the request up.
    waits = np.full(arrivals.size, np.nan)

    def task(i: int, origin: float) -> None:
        waits[i] = time.perf_counter() - (origin + arrivals[i])
        time.sleep(services[i])

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
    return waits[~np.isnan(waits)]
