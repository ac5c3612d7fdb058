"""Tests for syslab.hpa: the HPA rule, its default policies, and the strategies."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syslab import hpa, queueing
from syslab.hpa import ClusterConfig, HPAConfig, PodConfig

UNCAPPED = PodConfig(max_utilisation=math.inf, startup_s=0)
ROOMY = ClusterConfig(spare_pod_slots=10**6)


def test_desired_replicas_rule_and_tolerance():
    # The Kubernetes documentation's example: 1 pod at 200m against a 100m target -> 2 pods.
    assert hpa.desired_replicas(1, 200, 100) == 2
    assert hpa.desired_replicas(10, 0.85, 0.8) == 10  # ratio 1.0625: inside the 0.1 tolerance
    assert hpa.desired_replicas(10, 0.9, 0.8) == 12  # ratio 1.125: ceil(11.25)
    assert hpa.desired_replicas(10, 0.4, 0.8) == 5


@given(current=st.integers(1, 5000), metric=st.floats(0, 50), target=st.floats(0.05, 5))
@settings(max_examples=100, deadline=None)
def test_desired_replicas_properties(current, metric, target):
    d = hpa.desired_replicas(current, metric, target)
    ratio = metric / target
    if abs(ratio - 1) <= 0.1:
        assert d == current
    else:
        # ceil(current * ratio), allowing for the tiny epsilon used against float error.
        assert current * ratio - 1e-6 <= d <= current * ratio + 1


def test_scale_up_limit_is_max_of_the_two_policies():
    config = HPAConfig()
    assert hpa.scale_up_limit(1, config) == 5  # +4 pods beats +100%
    assert hpa.scale_up_limit(4, config) == 8  # tie
    assert hpa.scale_up_limit(10, config) == 20  # +100% beats +4


def test_fastest_scale_up_matches_the_simulated_controller():
    # Theory: 10 -> 20 -> 40 -> ... -> 640 -> 1000, seven syncs of 15 s = 105 s.
    theory = hpa.theory_fastest_scale_up(10, 1000)
    assert theory["replicas"].tolist() == [10, 20, 40, 80, 160, 320, 640, 1000]
    assert theory["t_s"].iloc[-1] == 105.0
    # The controller model, given an unbounded metric and instant pods, must take exactly as long.
    run = hpa.simulate_hpa(
        np.full(300, 1e7), HPAConfig(max_replicas=1000), UNCAPPED, ROOMY, initial_replicas=10
    )
    assert run.loc[run["replicas"] >= 1000, "t_s"].min() == 105.0


def test_capped_cpu_metric_scales_by_at_most_a_quarter_per_step():
    # With CPU limit = request a saturated pod reports 100%; against an 80% target the
    # ratio is at most 1.25, so one sync can ask for at most ceil(1.25 * ready).
    run = hpa.simulate_hpa(
        np.full(200, 1e7), HPAConfig(metric_lag_s=0), PodConfig(startup_s=1000), ROOMY, initial_replicas=40
    )
    assert run["replicas"].max() == 50


def test_scale_down_waits_for_the_stabilisation_window():
    load = np.r_[np.full(600, 8000.0), np.full(1200, 1000.0)]
    run = hpa.simulate_hpa(load, HPAConfig(), PodConfig(startup_s=1), ROOMY)
    high = run["replicas"].iloc[590]
    # Load drops at t = 600; no scale-down may happen before 300 s of lower recommendations.
    first_down = run.loc[(run["t_s"] > 600) & (run["replicas"] < high), "t_s"].min()
    assert 600 + 300 - 15 <= first_down <= 600 + 300 + 15 + 15 + 1
    assert run["replicas"].iloc[-1] < high / 4


def test_steady_load_settles_at_the_target():
    pod = PodConfig()
    rps = 3000.0
    run = hpa.simulate_hpa(np.full(1800, rps), HPAConfig(), pod, ROOMY, initial_replicas=2)
    final = run["replicas"].iloc[-1]
    utilisation = rps / (final * pod.capacity_per_s)
    assert abs(utilisation / 0.8 - 1) <= 0.1 + 1 / final


def test_latency_comes_from_erlang_c():
    # Within the stable range, the mean wait equals syslab.queueing's M/M/c formula
    # (interpolated on a 400-point grid: 1% is ample for the grid, far below any model error).
    pod = PodConfig()
    pods = 20
    rps = 0.7 * pods * pod.capacity_per_s
    run = hpa.simulate_hpa(np.full(30, rps), HPAConfig(min_replicas=pods, max_replicas=pods), pod, ROOMY)
    theory = queueing.mmc_mean_queue_delay_s(rps / pods, pod.service_time_s, pod.workers)
    assert run["mean_wait_ms"].iloc[-1] == pytest.approx(theory * 1000, rel=0.01)


def test_p99_wait_of_mmc():
    # M/M/1: P(W > t) = rho exp(-(mu - lambda) t). rho = 0.5, mu = 10: t99 = ln(50)/5.
    assert hpa.mmc_p99_wait_s(5, 0.1, 1) == pytest.approx(math.log(50) / 5)
    assert hpa.mmc_p99_wait_s(0.01, 0.1, 1) == 0.0
    assert math.isinf(hpa.mmc_p99_wait_s(10, 0.1, 1))


def test_overload_drops_the_excess():
    pod = PodConfig()
    run = hpa.simulate_hpa(
        np.full(10, 3 * pod.capacity_per_s), HPAConfig(min_replicas=1, max_replicas=1), pod
    )
    assert run["dropped_per_s"].iloc[-1] == pytest.approx(2 * pod.capacity_per_s)
    assert run["p99_ms"].iloc[-1] == pod.timeout_s * 1000


def test_strategies_rank_as_expected_and_regression():
    timelines, summary = hpa.compare_strategies(
        shapes=["step_spike"], duration_s=3600, slo_p99_ms=300, seed=1
    )
    s = summary.set_index("strategy")
    assert s.loc["reactive", "dropped_fraction"] > 0.05
    assert s.loc["pre_warmed", "slo_bad_fraction"] == 0
    assert s.loc["pre_warmed", "pod_hours"] > s.loc["scheduled", "pod_hours"] > s.loc["reactive", "pod_hours"]
    assert round(float(s.loc["reactive", "pod_hours"]), 3) == 49.408
    assert len(timelines) == 4 * 3600


def test_traffic_shapes():
    for shape in hpa.SHAPES:
        rps, windows = hpa.traffic_shape(shape, noise=0, duration_s=7200)
        assert rps.min() == pytest.approx(2000)
        assert windows
    spike, _ = hpa.traffic_shape("step_spike", noise=0)
    assert spike.max() == pytest.approx(16000)


def test_bad_input():
    with pytest.raises(ValueError, match="tolerance"):
        HPAConfig(tolerance=1.5)
    with pytest.raises(ValueError, match="max_replicas"):
        HPAConfig(min_replicas=5, max_replicas=2)
    with pytest.raises(ValueError, match="workers"):
        PodConfig(workers=0)
    with pytest.raises(ValueError, match="rps"):
        hpa.simulate_hpa([])
    with pytest.raises(ValueError, match="shape"):
        hpa.traffic_shape("square")
    with pytest.raises(ValueError, match="strategy"):
        hpa.min_replicas_schedule("magic", np.ones(10), [], [], HPAConfig(), PodConfig())
    with pytest.raises(TypeError, match="pod"):
        hpa.simulate_hpa([1.0], HPAConfig(), "pod")


@pytest.mark.real
def test_real_thread_pod_waits_grow_with_utilisation():
    # Real threads and sleeps: numbers vary with the machine, the ordering must not.
    table = hpa.measure_pod_queue([0.2, 0.95], service_time_s=0.01, workers=4, duration_s=1.0, seed=3)
    assert (table["requests"] > 50).all()
    assert table["mean_wait_ms"].iloc[1] > table["mean_wait_ms"].iloc[0]
    assert table["mean_wait_ms_theory"].iloc[1] > 100 * table["mean_wait_ms_theory"].iloc[0]
