"""syslab.queueing: closed forms, the pool simulation, and the two held against each other.

A connection pool is an M/M/c queue when arrivals are Poisson and hold times
exponential: the simulation must reproduce Erlang C, Little's law must hold on
every run, and Kingman's formula is exact for a single server with Poisson
arrivals (M/G/1). The tolerances below are a few standard errors of the
simulated estimate at the stated run length, and each names a plausible wrong
model that would fall outside it.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syslab import queueing
from syslab.queueing import ContentionDatabase, PoolConfig


def erlang_c_by_factorials(c: int, a: float) -> float:
    """The textbook form of Erlang C, independent of the recursion under test."""
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


# ---------------------------------------------------------------- closed forms


def test_erlang_c_known_values():
    # lambda = 90/s, S = 100 ms -> a = 9 erlangs (values also in the research notes' table)
    assert queueing.erlang_c(10, 9.0) == pytest.approx(0.66873, abs=1e-5)
    assert queueing.erlang_c(12, 9.0) == pytest.approx(0.26603, abs=1e-5)
    assert queueing.erlang_c(16, 9.0) == pytest.approx(0.024909, abs=1e-6)
    assert queueing.mmc_mean_queue_delay_s(90, 0.1, 10) == pytest.approx(0.066873, abs=1e-6)


@given(c=st.integers(1, 40), load=st.floats(0.01, 0.99))
@settings(max_examples=60, deadline=None)
def test_erlang_c_matches_factorial_form(c, load):
    a = c * load
    assert queueing.erlang_c(c, a) == pytest.approx(erlang_c_by_factorials(c, a), rel=1e-9)


@given(rho=st.floats(0.01, 0.99))
def test_erlang_c_single_server_is_utilisation(rho):
    # M/M/1: an arrival waits exactly when the server is busy, probability rho.
    assert queueing.erlang_c(1, rho) == pytest.approx(rho, rel=1e-12)


def test_erlang_c_saturated_and_idle():
    assert queueing.erlang_c(5, 5.0) == 1.0
    assert queueing.erlang_c(5, 0.0) == 0.0
    assert math.isinf(queueing.mmc_mean_queue_delay_s(1000, 0.005, 5))


def test_erlang_c_large_pool_is_finite():
    # The recursion must not overflow where factorials would (a^c/c! for c = 2000).
    assert 0 < queueing.erlang_c(2000, 1950.0) < 1


def test_kingman_reduces_to_mm1_and_md1():
    s = 0.01
    lam = 0.8 / s
    # M/M/1: Wq = rho / (mu - lambda)
    assert queueing.kingman_queue_delay_s(lam, s, 1, 1) == pytest.approx(0.8 / (1 / s - lam))
    # M/D/1: half of M/M/1 (Pollaczek-Khinchine with cs = 0)
    assert queueing.kingman_queue_delay_s(lam, s, 1, 0) == pytest.approx(0.5 * 0.8 / (1 / s - lam))
    assert math.isinf(queueing.kingman_queue_delay_s(1 / s, s))


def test_littles_law_and_hikaricp():
    assert queueing.littles_law_l(1000, 0.005) == pytest.approx(5.0)
    assert queueing.hikaricp_pool_size(4, 1) == 9
    assert queueing.hikaricp_pool_size(2) == 4


# ---------------------------------------------------------------- simulation


def test_simulate_pool_exact_seeded_values():
    df = queueing.simulate_pool(
        PoolConfig(2, 0.05), n_requests=6, arrival_rate_per_s=100, mean_service_s=0.03, seed=42
    )
    assert list(df.columns) == ["request_id", "arrival_s", "wait_s", "service_s", "departure_s", "outcome"]
    np.testing.assert_allclose(
        df["wait_s"], [0.0, 0.0, 0.0, 0.0, 0.030532451399311156, 0.018118935446183898], rtol=1e-12
    )
    np.testing.assert_allclose(df["arrival_s"].iloc[0], 0.024042086039659946, rtol=1e-12)
    assert (df["outcome"] == "served").all()


@pytest.mark.parametrize("timeout_s", [math.inf, 0.004])
def test_simpy_and_fast_engines_agree_exactly(timeout_s):
    # The fast engine is a recursion; the simpy engine an explicit process model. Same inputs,
    # same answers to rounding error -- including which requests time out.
    kwargs = dict(n_requests=20_000, arrival_rate_per_s=950, mean_service_s=0.01, cv_service=1.5, seed=3)
    fast = queueing.simulate_pool(PoolConfig(10, timeout_s), engine="fast", **kwargs)
    slow = queueing.simulate_pool(PoolConfig(10, timeout_s), engine="simpy", **kwargs)
    assert (fast["outcome"] == slow["outcome"]).all()
    np.testing.assert_allclose(fast["wait_s"], slow["wait_s"], atol=1e-9)
    if not math.isinf(timeout_s):
        assert (fast["outcome"] == "timeout").sum() > 100  # the timeout path was exercised


@pytest.mark.parametrize("load", [0.5, 0.8, 0.9])
def test_simulation_matches_erlang_c(load):
    # 10 connections, Poisson arrivals, exponential holds: M/M/10. With 300k requests the
    # standard error of P(wait) is below 0.006 at these loads (spread over seeds); 0.02 is
    # > 3 SE. A pool one connection smaller differs by > 0.04 (twice the tolerance) at every load here.
    c, s = 10, 0.01
    lam = load * c / s
    sweep = queueing.sweep_pool_sizes([c], lam, s, n_requests=300_000, seed=11)
    row = sweep.iloc[0]
    assert abs(row["p_wait"] - queueing.erlang_c(c, lam * s)) < 0.02
    assert abs(queueing.erlang_c(c - 1, lam * s) - queueing.erlang_c(c, lam * s)) > 0.04
    # Mean wait within 12%: the wait's relative standard error is ~4% at load 0.9.
    assert row["mean_wait_ms"] == pytest.approx(row["mean_wait_ms_theory"], rel=0.12)
    assert row["utilisation"] == pytest.approx(load, abs=0.01)


@given(
    size=st.integers(1, 12),
    load=st.floats(0.1, 0.95),
    cv=st.sampled_from([0.0, 0.5, 1.0, 2.0]),
    seed=st.integers(0, 10_000),
)
@settings(max_examples=25, deadline=None)
def test_littles_law_holds_on_every_run(size, load, cv, seed):
    # L is measured by integrating the number in system over time; lambda and W separately.
    s = 0.01
    df = queueing.simulate_pool(
        PoolConfig(size),
        n_requests=20_000,
        arrival_rate_per_s=load * size / s,
        mean_service_s=s,
        cv_service=cv,
        seed=seed,
    )
    summary = queueing.summarize_littles_law(df, warmup_s=float(df["arrival_s"].iloc[2000]))
    # Only the edge effect at the window's end separates them: requests still inside.
    assert abs(summary["relative_gap"]) < 0.02


@given(timeout_ms=st.floats(0.1, 50), seed=st.integers(0, 1000))
@settings(max_examples=20, deadline=None)
def test_no_request_waits_longer_than_the_timeout(timeout_ms, seed):
    df = queueing.simulate_pool(
        PoolConfig(4, timeout_ms / 1000),
        n_requests=3000,
        arrival_rate_per_s=500,
        mean_service_s=0.01,
        seed=seed,
    )
    assert (df["wait_s"] <= timeout_ms / 1000 + 1e-12).all()
    timed_out = df["outcome"] == "timeout"
    assert df.loc[timed_out, "departure_s"].isna().all()
    assert (df.loc[~timed_out, "departure_s"] >= df.loc[~timed_out, "arrival_s"]).all()


def test_kingman_exact_for_mm1_and_md1_in_simulation():
    # Poisson arrivals make Kingman exact (Pollaczek-Khinchine). Four seeds x 200k requests
    # bring the error of the mean wait at rho = 0.8 to ~3%; tolerance 7%. Reporting the time in
    # system instead of the queueing delay would be off by 50% (M/D/1) or 25% (M/M/1).
    sweep = queueing.sweep_kingman([0.5, 0.8], [0.0, 1.0], n_requests=200_000, seed=5)
    for seed in (6, 7, 8):
        sweep["mean_wait_ms"] += queueing.sweep_kingman(
            [0.5, 0.8], [0.0, 1.0], n_requests=200_000, seed=seed
        )["mean_wait_ms"]
    sweep["mean_wait_ms"] /= 4
    ratio = sweep["mean_wait_ms"] / sweep["mean_wait_ms_theory"]
    assert ratio.between(0.93, 1.07).all(), sweep


def test_variability_multiplies_waiting():
    sweep = queueing.sweep_kingman([0.8], [0.0, 2.0], n_requests=200_000, seed=1)
    deterministic, heavy = sweep["mean_wait_ms"]
    # Theory says x5; anything above x3.5 shows the effect, and a model ignoring cs gives x1.
    assert heavy / deterministic > 3.5


def test_sweep_uses_common_random_numbers():
    sweep = queueing.sweep_pool_sizes([8, 9, 10, 12, 16], 1000, 0.005, n_requests=50_000, seed=2)
    # Same requests for every size: waiting can only fall as the pool grows.
    assert sweep["mean_wait_ms"].is_monotonic_decreasing
    assert sweep["p_wait"].is_monotonic_decreasing


def test_summarize_pool_fields():
    df = queueing.simulate_pool(PoolConfig(3), n_requests=5000, arrival_rate_per_s=100, mean_service_s=0.01)
    summary = queueing.summarize_pool(df, 3)
    assert summary["throughput_per_s"] == pytest.approx(100, rel=0.05)
    assert summary["utilisation"] == pytest.approx(1 / 3, abs=0.02)
    assert 0 <= summary["p_wait"] <= 1
    assert summary["timeouts"] == 0


# ------------------------------------------------------- the contention model


def test_closed_pool_theory_matches_simulation():
    # A configuration whose Markov chain mixes quickly (no metastable collapse), so a 300k-event
    # run estimates the stationary means to ~1%. Tolerance 4%; dropping the overhead term
    # changes the response time by > 30% here.
    db = ContentionDatabase(cores=4, query_cpu_s=0.01, overhead_per_extra_query=0.05)
    theory = queueing.theory_closed_pool(db, [8], clients=40, think_s=0.08).iloc[0]
    sim = queueing.simulate_closed_pool(db, 8, clients=40, think_s=0.08, n_events=300_000, seed=4).iloc[0]
    assert sim["throughput_per_s"] == pytest.approx(theory["throughput_per_s"], rel=0.04)
    assert sim["response_ms"] == pytest.approx(theory["response_ms"], rel=0.04)
    assert sim["mean_running"] == pytest.approx(theory["mean_running"], rel=0.04)
    no_overhead = ContentionDatabase(cores=4, query_cpu_s=0.01, overhead_per_extra_query=0.0)
    other = queueing.theory_closed_pool(no_overhead, [8], clients=40, think_s=0.08).iloc[0]
    assert abs(other["response_ms"] / theory["response_ms"] - 1) > 0.3


def test_closed_pool_response_time_law():
    # Interactive response time law: R = N / X - Z, exactly, for the exact solution.
    db = ContentionDatabase()
    table = queueing.theory_closed_pool(db, [4, 16, 256], clients=500, think_s=0.2)
    np.testing.assert_allclose(table["response_ms"] / 1000, 500 / table["throughput_per_s"] - 0.2, rtol=1e-9)


def test_more_connections_than_cores_collapse_throughput():
    db = ContentionDatabase(cores=12, query_cpu_s=0.0005, overhead_per_extra_query=0.002)
    table = queueing.theory_closed_pool(db, [12, 96, 2048], clients=9600, think_s=0.55)
    small, medium, huge = table["throughput_per_s"]
    assert medium >= 0.99 * small
    assert huge < 0.5 * small
    # Without overhead, a bigger pool can never lose throughput.
    free = ContentionDatabase(cores=12, query_cpu_s=0.0005, overhead_per_extra_query=0.0)
    table = queueing.theory_closed_pool(free, [4, 12, 96, 2048], clients=9600, think_s=0.55)
    assert table["throughput_per_s"].is_monotonic_increasing


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: queueing.erlang_c(0, 1.0), ValueError, "servers"),
        (lambda: queueing.erlang_c(2.5, 1.0), TypeError, "servers"),
        (lambda: queueing.erlang_c(3, -1.0), ValueError, "offered_load_erlangs"),
        (lambda: queueing.erlang_c(3, float("nan")), ValueError, "offered_load_erlangs"),
        (lambda: queueing.kingman_queue_delay_s(10, 0.0), ValueError, "mean_service_s"),
        (lambda: queueing.kingman_queue_delay_s(10, 0.01, cv_service=-1), ValueError, "cv_service"),
        (lambda: PoolConfig(size=0), ValueError, "size"),
        (lambda: PoolConfig(size=True), TypeError, "size"),
        (lambda: PoolConfig(size=2, acquire_timeout_s=0), ValueError, "acquire_timeout_s"),
        (lambda: queueing.simulate_pool(PoolConfig(), n_requests=10), ValueError, "arrival_rate_per_s"),
        (lambda: queueing.simulate_pool(PoolConfig(), arrivals_s=[0.2, 0.1]), ValueError, "sorted"),
        (
            lambda: queueing.simulate_pool(PoolConfig(), arrivals_s=[0.1], services_s=[1, 2]),
            ValueError,
            "services_s",
        ),
        (
            lambda: queueing.simulate_pool(PoolConfig(), arrival_rate_per_s=1, engine="x"),
            ValueError,
            "engine",
        ),
        (lambda: queueing.simulate_pool(PoolConfig(), arrival_rate_per_s=1, seed=-1), ValueError, "seed"),
        (lambda: queueing.simulate_pool(PoolConfig(), arrival_rate_per_s=1, seed="a"), TypeError, "seed"),
        (lambda: queueing.simulate_pool({"size": 3}, arrival_rate_per_s=1), TypeError, "config"),
        (lambda: queueing.sweep_pool_sizes([], 10, 0.01), ValueError, "pool_sizes"),
        (lambda: queueing.sweep_pool_sizes([0], 10, 0.01), ValueError, "pool_sizes"),
        (lambda: queueing.summarize_pool(pd.DataFrame({"x": [1]}), 3), ValueError, "columns"),
        (
            lambda: queueing.theory_closed_pool(ContentionDatabase(), [4], clients=0, think_s=1),
            ValueError,
            "clients",
        ),
        (lambda: ContentionDatabase(cores=0), ValueError, "cores"),
        (lambda: queueing.sweep_kingman([1.0], [1.0]), ValueError, "utilisations"),
    ],
)
def test_bad_input_is_named(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_replicate_pool_spread():
    spread = queueing.replicate_pool([9, 10], 1000, 0.005, n_seeds=4, n_requests=5000, seed=1)
    assert list(spread.groupby("pool_size").size()) == [4, 4]
    # Replication i of each size shares its random numbers: the bigger pool never waits more.
    wide = spread.pivot(index="replication", columns="pool_size", values="mean_wait_ms")
    assert (wide[10] <= wide[9]).all()
    with pytest.raises(ValueError, match="n_seeds"):
        queueing.replicate_pool([9], 1000, 0.005, n_seeds=0)


@pytest.mark.parametrize(
    ("cv_arrival", "cv_service", "servers", "rho"), [(2.0, 1.0, 8, 0.85), (2.0, 2.0, 10, 0.9)]
)
def test_allen_cunneen_tracks_bursty_arrivals_where_erlang_c_does_not(cv_arrival, cv_service, servers, rho):
    # Gamma-distributed gaps with CV 2: the simulated wait is 3-4.5x Erlang C's and within
    # ~25% of Allen-Cunneen (4 seeds x 200k requests; seed-to-seed spread ~2-7%). The band
    # [0.7, 1.45] rejects Erlang C (ratio >= 3) and a variability factor without the 1/2.
    mean_service_s = 0.01
    rate = rho * servers / mean_service_s
    waits = [
        queueing.simulate_pool(
            queueing.PoolConfig(servers),
            n_requests=200_000,
            arrival_rate_per_s=rate,
            mean_service_s=mean_service_s,
            cv_arrival=cv_arrival,
            cv_service=cv_service,
            seed=seed,
        )["wait_s"]
        .iloc[20_000:]
        .mean()
        for seed in range(4)
    ]
    simulated = float(np.mean(waits))
    allen_cunneen = queueing.theory_allen_cunneen_queue_delay_s(
        rate, mean_service_s, servers, cv_arrival, cv_service
    )
    assert 0.7 < simulated / allen_cunneen < 1.45
    assert simulated / queueing.mmc_mean_queue_delay_s(rate, mean_service_s, servers) > 2.5


def test_allen_cunneen_is_erlang_c_for_poisson():
    assert queueing.theory_allen_cunneen_queue_delay_s(900, 0.01, 10) == queueing.mmc_mean_queue_delay_s(
        900, 0.01, 10
    )


def _spike_arrivals(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    parts, start = [], 0.0
    for rate, length in ((1850, 5.0), (3000, 2.0), (1850, 13.0)):
        times = start + queueing.poisson_arrival_times_s(int(rate * length * 1.5), rate, rng)
        parts.append(times[times < start + length])
        start += length
    return np.concatenate(parts)


def test_retries_without_retrying_equal_the_pool_model():
    arrivals = _spike_arrivals(1)[:20_000]
    config = queueing.PoolConfig(8, acquire_timeout_s=0.01)
    retried = queueing.simulate_pool_retries(config, arrivals, mean_service_s=0.005, seed=3)
    plain = queueing.simulate_pool(config, arrivals_s=arrivals, services_s=retried["service_s"])
    assert ((retried["outcome"] == "failed") == (plain["outcome"] == "timeout")).all()
    served = plain["outcome"] == "served"
    assert np.allclose(retried["start_s"][served], (plain["arrival_s"] + plain["wait_s"])[served])


def test_retries_stretch_a_spike_into_an_outage():
    # Capacity 10 / 5 ms = 2,000/s; load 1,850/s with a 2 s spike to 3,000/s. Without retries the
    # pool is healthy within a second of the spike's end; with 3 retries the queue of retries
    # keeps callers failing or answered too late for longer.
    arrivals = _spike_arrivals(2)
    config = queueing.PoolConfig(10, acquire_timeout_s=0.2)
    shares = {}
    for retries in (0, 3):
        frame = queueing.simulate_pool_retries(
            config, arrivals, mean_service_s=0.005, max_retries=retries, caller_deadline_s=0.5, seed=2
        )
        per_s = queueing.summarize_retries(frame, bin_s=1.0).set_index("time_s")
        shares[retries] = per_s.loc[7.0:8.0, "ok_share"].mean()
        assert per_s.loc[0.0:4.0, "ok_share"].min() > 0.99  # before the spike all is well
    assert shares[0] > 0.95
    assert shares[3] < shares[0] - 0.1


def test_retries_bad_input():
    config = queueing.PoolConfig(2, acquire_timeout_s=0.1)
    with pytest.raises(ValueError, match="max_retries"):
        queueing.simulate_pool_retries(config, [0.0, 1.0], max_retries=10**6)
    with pytest.raises(ValueError, match="arrivals_s"):
        queueing.simulate_pool_retries(config, [1.0, 0.0])
    with pytest.raises(ValueError, match="servers"):
        queueing.erlang_c(10**12, 3.0)
    with pytest.raises(ValueError, match="caller_deadline_s"):
        queueing.simulate_pool_retries(config, [0.0], caller_deadline_s=-1)
