"""Tests for syslab.redis_expiry: the expire.c rules, the cycle over time, freeing, eviction."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syslab import caching
from syslab import redis_expiry as rx


def test_constants_match_expire_c():
    assert rx.ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP == 20
    assert rx.ACTIVE_EXPIRE_CYCLE_FAST_DURATION == 1000
    assert rx.ACTIVE_EXPIRE_CYCLE_SLOW_TIME_PERC == 25
    assert rx.ACTIVE_EXPIRE_CYCLE_ACCEPTABLE_STALE == 10
    assert rx.EVPOOL_SIZE == 16 and rx.LAZYFREE_THRESHOLD == 64


def test_effort_parameters_computed_checks():
    # topics-part1 §7: 25,000 us at hz 10, 2,500 us at hz 100; effort 10: 43,000 us, 65 keys per loop,
    # a 1% threshold and a 3,250 us fast budget.
    assert rx.effort_parameters(1, 10)["slow_timelimit_us"] == 25_000
    assert rx.effort_parameters(1, 100)["slow_timelimit_us"] == 2_500
    top = rx.effort_parameters(10, 10)
    assert (top["slow_timelimit_us"], top["keys_per_loop"], top["acceptable_stale_perc"]) == (43_000, 65, 1)
    assert top["fast_duration_us"] == 3_250
    # Redis 5 and earlier have no effort: the random algorithm ignores it.
    assert rx.effort_parameters(10, 10, "random")["keys_per_loop"] == 20
    assert rx.effort_parameters(1, 10, "random")["repeat_threshold_keys"] == 5


def test_repeat_rule_integer_division():
    # 20 samples: 2 expired is 10% (not > 10), 3 is 15%: the new rule repeats from 3.
    assert not rx.repeat_cycle(2, 20)
    assert rx.repeat_cycle(3, 20)
    assert rx.repeat_cycle(0, 0)  # sampled == 0 repeats in the C loop
    # The old rule: more than 20/4 = 5.
    assert not rx.repeat_cycle(5, 20, "random")
    assert rx.repeat_cycle(6, 20, "random")


def test_repeat_probabilities_match_computed_checks():
    # Exact binomial sums; the notes' values are given to 4 decimals.
    assert rx.theory_repeat_probability(0.10) == pytest.approx(0.3231, abs=5e-5)
    assert rx.theory_repeat_probability(0.25) == pytest.approx(0.9087, abs=5e-5)
    assert rx.theory_repeat_probability(0.10, "random") == pytest.approx(0.0113, abs=5e-5)
    assert rx.theory_repeat_probability(0.25, "random") == pytest.approx(0.3828, abs=5e-5)
    # At 50% stale the new loop stops on its own after ~4,970 batches, the old after ~48.
    assert rx.theory_batches_until_stop(0.5) == pytest.approx(4970, abs=1)
    assert rx.theory_batches_until_stop(0.5, "random") == pytest.approx(48.3, abs=0.1)


def test_repeat_probability_matches_monte_carlo():
    # 200,000 simulated batches: standard error ~0.001, so 0.005 (the notes' tolerance) is 5 sigma.
    rng = np.random.default_rng(1)
    draws = rng.binomial(20, 0.25, 200_000)
    assert np.mean(draws > 5) == pytest.approx(rx.theory_repeat_probability(0.25, "random"), abs=0.005)
    assert np.mean(draws * 100 // 20 > 10) == pytest.approx(rx.theory_repeat_probability(0.25), abs=0.005)


def test_ttl_reply_rounding():
    assert rx.ttl_reply(None) == -2
    assert rx.ttl_reply(1000, has_expire=False) == -1
    assert [rx.ttl_reply(ms) for ms in (0, 499, 500, 1499, 1500, -20)] == [0, 0, 1, 1, 2, 0]
    assert rx.ttl_reply(499, milliseconds=True) == 499


@settings(max_examples=50, deadline=None)
@given(st.floats(0, 1e9))
def test_ttl_reply_is_nearest_second(ms):
    assert abs(rx.ttl_reply(ms) - ms / 1000) <= 0.5 + 1e-9


def test_mass_expiry_is_cleared_and_capped():
    # 200,000 keys expire together at t = 5 s. The slow cycle hits its time cap, fast cycles join in,
    # and everything is gone within a few seconds; nothing is stale before the expiry.
    run = rx.simulate_expiry(rx.expiry_population(200_000, "together", 5.0), 15.0, seed=1)
    before = run[run["t_s"] < 5.0]
    assert (before["stale_keys"] == 0).all() and (before["expired"] == 0).all()
    summary = rx.summarize_expiry(run)
    assert summary["time_cap_count"] > 0 and summary["fast_cycles"] > 0
    assert 5.0 < summary["cleared_s"] < 10.0
    assert run["live_keys"].iloc[-1] == 0


def test_fast_cycles_only_after_a_capped_cycle():
    run = rx.simulate_expiry(rx.expiry_population(100_000, "together", 2.0), 6.0, seed=2)
    kinds = run["kind"].to_numpy()
    capped = run["time_cap_hit"].to_numpy()
    for i in np.flatnonzero(kinds == "fast"):
        assert capped[i - 1]
    # Never more often than once per 2 * 1000 us.
    fast_times = run.loc[run["kind"] == "fast", "t_s"].to_numpy()
    assert np.all(np.diff(fast_times) >= 0.002 - 1e-12)


def test_slow_cycle_respects_time_limit_up_to_16_loops():
    config = rx.ExpireConfig()
    run = rx.simulate_expiry(rx.expiry_population(300_000, "together", 1.0), 3.0, config, seed=3)
    slow = run[run["kind"] == "slow"]
    # The clock is read every 16 loops, so a cycle can overshoot by at most 16 loops' cost.
    worst_loop_us = 20 * (config.check_cost_us + config.delete_cost_us)
    assert slow["elapsed_us"].max() <= 25_000 + 16 * worst_loop_us


def test_equilibrium_stale_fraction_matches_theory():
    # Keys written at 2,000 per second with a 15 s TTL: after warm-up they expire at 2,000 per second and
    # nobody reads them. The uncapped theory (Wald's identity on geometric loops) predicts the stale
    # fraction the sampler sees. For random sampling that is the true fraction; the cursor samples where
    # stale keys pile up (just ahead of it), so its *sampled* fraction -- INFO's expired_stale_perc --
    # matches and the true one is lower. 4 points of tolerance: the steady state wanders by ~2 points
    # between cycles; a wrong repeat rule (the old one for the new algorithm) is off by 15.
    written, expires = rx.steady_population(2000.0, 15.0, 60.0, seed=1)
    for algorithm, column in (("random", "true_stale_perc"), ("cursor", "expired_stale_perc")):
        config = rx.ExpireConfig(algorithm=algorithm)
        theory = rx.theory_equilibrium_stale_fraction(2000.0, config)
        assert not theory["capped"]
        run = rx.simulate_expiry(expires, 60.0, config, seed=4, written_at_s=written)
        steady = run[(run["kind"] == "slow") & (run["t_s"] > 40)]
        assert steady[column].mean() == pytest.approx(100 * theory["stale_fraction"], abs=4.0)
        if algorithm == "cursor":
            assert steady["true_stale_perc"].mean() < steady["expired_stale_perc"].mean() - 5


def test_lazy_expiry_removes_read_keys():
    population = rx.expiry_population(50_000, "spread", 10.0, 10.0, seed=5)
    quiet = rx.simulate_expiry(population, 20.0, seed=6)
    busy = rx.simulate_expiry(population, 20.0, reads_per_s=20_000.0, seed=6)
    assert busy["lazy_expired"].sum() > 0
    assert rx.summarize_expiry(busy)["stale_key_seconds"] < rx.summarize_expiry(quiet)["stale_key_seconds"]


def test_expiry_regression():
    run = rx.simulate_expiry(rx.expiry_population(20_000, "spread", 5.0, 4.0, seed=1), 10.0, seed=1)
    summary = rx.summarize_expiry(run)
    assert int(summary["peak_stale_keys"]) == 5950
    assert len(run) == 101


def test_effort_reduces_stale_memory():
    population = rx.expiry_population(100_000, "spread", 30.0, 40.0, seed=7)
    default = rx.summarize_expiry(rx.simulate_expiry(population, 50.0, rx.ExpireConfig(), seed=8))
    eager = rx.summarize_expiry(
        rx.simulate_expiry(population, 50.0, rx.ExpireConfig(active_expire_effort=10), seed=8)
    )
    assert eager["stale_key_seconds"] < 0.5 * default["stale_key_seconds"]


def test_free_stall_del_vs_unlink():
    # A DEL of 1M elements at 50 ns each blocks the loop for 50 ms: the request behind it waits ~50 ms.
    # UNLINK hands the freeing to a background thread: no request waits more than a millisecond.
    sync = rx.simulate_free_stall(1_000_000, "DEL", 50.0, seed=1)
    lazy = rx.simulate_free_stall(1_000_000, "UNLINK", 50.0, seed=1)
    assert sync["latency_ms"].max() == pytest.approx(50.0, rel=0.02)
    assert lazy["latency_ms"].max() < 1.0
    # Below the lazy-free threshold UNLINK frees inline, like DEL.
    small_unlink = rx.simulate_free_stall(64, "UNLINK", 1e6, seed=1)
    small_del = rx.simulate_free_stall(64, "DEL", 1e6, seed=1)
    assert small_unlink["latency_ms"].max() == pytest.approx(small_del["latency_ms"].max())


def test_approximated_lru_between_random_and_exact():
    # antirez's measurements: with maxmemory-samples 10 the approximation is very close to true LRU.
    # Under Zipf(1) exact LRU beats random by ~3 points at this size; samples=10 must be within 0.5.
    keys = caching.generate_requests(60_000, 20_000, 1000.0, 1.0, seed=2)["key"].to_numpy()
    exact = rx.eviction_hit_ratio(keys, 2000, "exact-lru")
    random = rx.eviction_hit_ratio(keys, 2000, "random", seed=1)
    approx10 = rx.eviction_hit_ratio(keys, 2000, "approx-lru", 10, seed=1)
    approx1 = rx.eviction_hit_ratio(keys, 2000, "approx-lru", 1, seed=1)
    assert random < exact
    assert approx10 == pytest.approx(exact, abs=0.005)
    assert approx1 < approx10


@pytest.mark.real
def test_real_free_cost_grows_with_size():
    cost = rx.measure_free_cost([1_000, 200_000], repeats=2).frame
    assert cost["free_ms"].iloc[1] > cost["free_ms"].iloc[0]
    assert (cost["ns_per_element"] > 0).all()


def test_bad_input_reproducers_are_refused():
    # bad-input.md: these overflowed, ran for ever or exhausted memory before the MAX_* bounds.
    assert rx.theory_repeat_probability(2.2e-311, keys_per_loop=1000, acceptable_stale_perc=70) == 0.0
    with pytest.raises(ValueError, match="keys_per_loop"):
        rx.theory_repeat_probability(0.2, keys_per_loop=10**12)
    with pytest.raises(ValueError, match="keys_per_loop"):
        rx.theory_batches_until_stop(0.2, keys_per_loop=10**6)
    with pytest.raises(ValueError, match="repeats"):
        rx.measure_free_cost([100, 1000], repeats=10**12)
    with pytest.raises(ValueError, match="duration_s"):
        rx.simulate_expiry(np.ones(3), 1e12)
    with pytest.raises(ValueError, match="reads_per_s"):
        rx.simulate_expiry(np.ones(3), 10.0, reads_per_s=1e9)
    with pytest.raises(ValueError, match="n_keys"):
        rx.expiry_population(10**12)
    with pytest.raises(ValueError, match="arrival_rate_per_s"):
        rx.simulate_free_stall(10, "DEL", 50.0, arrival_rate_per_s=1e9)


def test_fixed_stale_trigger_lowers_the_equilibrium():
    # redis#15412: with the fast cycle's stale trigger working, the steady stale share falls well below
    # the released behaviour (about 8 % against 20 % at 4,000 keys/s in the reviewer's run).
    written, expires = rx.steady_population(4000.0, 5.0, 15.0, seed=3)
    shares = {}
    for fixed in (False, True):
        run = rx.simulate_expiry(
            expires, 15.0, rx.ExpireConfig(stale_trigger_fixed=fixed), seed=3, written_at_s=written
        )
        shares[fixed] = run[(run["kind"] == "slow") & (run["t_s"] > 8.0)]["true_stale_perc"].mean()
    assert shares[True] < 0.75 * shares[False]


def _redis_pair():
    from syslab import engines

    options = {"enable-debug-command": "local"}
    servers = {hz: engines.find("redis", options={**options, "hz": str(hz)}) for hz in (10, 100)}
    if any(server is None for server in servers.values()):
        pytest.skip(f"no Redis: {engines.unavailable_reason('redis', options={**options, 'hz': '10'})}")
    return servers


@pytest.mark.real
def test_port_matches_the_real_server():
    """The port's steady true stale share is within 7 percentage points of a real Redis at hz 10 and 100.

    Why 7: at 4,000 keys/s the share swings by about +/-5 points within a run on the server and in the
    port alike; with 3 s TTLs the means over the steady window agreed within 1-5 points in runs on a
    busy 2-core box (a loaded box delays the Python writer a little, which raises the server's share).
    A port without the cursor (Redis 5's random sampler) says about 48 % at hz 10, some 29 points off.
    One that ignored hz would sit about 5 points off at hz 100, at the edge of the tolerance; the
    assertion that the server's share falls from hz 10 to hz 100 covers that direction.
    """
    servers = _redis_pair()
    run = rx.run_expiry_equilibrium(servers, 4000.0, 3.0, 11.0, steady_from_s=5.0, seed=11)
    table = rx.summarize_server_vs_port(run, with_fix=False).set_index(["source", "hz"])["true_stale_perc"]
    label = run.summary["engine"]
    for hz in (10, 100):
        assert table[(label, hz)] == pytest.approx(table[("port", hz)], abs=7.0), table.to_dict()
    assert table[(label, 100)] < table[(label, 10)]
    assert run.environment["engine"].startswith(("Redis", "Valkey"))


@pytest.mark.real
def test_real_lazy_expiry_and_ttl_replies():
    servers = _redis_pair()
    lazy = rx.run_lazy_only(servers[10], 2_000, ttl_ms=100, read_share=0.25)
    assert lazy.summary["stale_before_reads"] == 2_000  # nothing expires without the sampler or a read
    assert lazy.summary["expired_by_reads"] == 500
    assert lazy.summary["left_after_reads"] == 1_500
    replies = rx.run_ttl_replies(servers[10]).frame
    expected = rx.ttl_replies_from_source()
    assert replies["commands"].tolist() == expected["commands"].tolist()
    assert replies["reply"].tolist() == expected["reply"].tolist()


@pytest.mark.real
def test_real_del_blocks_and_unlink_does_not():
    servers = _redis_pair()
    runs = [rx.measure_delete_cost(servers[10], [100_000]).frame for _ in range(2)]
    # DEL frees 100,000 fields on the event loop (tens of ms); UNLINK hands them to a thread and
    # takes microseconds -- unless a busy box preempts the server mid-command (an UNLINK once took
    # 5.7 ms beside a book build), hence the best of two runs and only 3x.
    best = pd.concat(runs).groupby("command")[["server_ms", "ns_per_field"]].min()
    assert best.loc["DEL", "server_ms"] > 3 * best.loc["UNLINK", "server_ms"]
    assert best.loc["DEL", "ns_per_field"] > 50  # the CPython-dict proxy said about 16 ns
    with pytest.raises(ValueError, match="n_fields"):
        rx.measure_delete_cost(servers[10], [10**9])


def test_bad_inputs():
    with pytest.raises(ValueError, match="active_expire_effort"):
        rx.effort_parameters(11)
    with pytest.raises(ValueError, match="hz"):
        rx.ExpireConfig(hz=0)
    with pytest.raises(ValueError, match="algorithm"):
        rx.ExpireConfig(algorithm="lru")
    with pytest.raises(ValueError, match="expired"):
        rx.repeat_cycle(5, 3)
    with pytest.raises(ValueError, match="expire_at_s"):
        rx.simulate_expiry(np.array([]), 1.0)
    with pytest.raises(ValueError, match="spread_s"):
        rx.expiry_population(10, "spread", 10.0, 30.0)
    with pytest.raises(ValueError, match="command"):
        rx.simulate_free_stall(10, "FLUSHALL")
    with pytest.raises(ValueError, match="policy"):
        rx.eviction_hit_ratio(np.arange(10), 5, "lfu")
    with pytest.raises(ValueError, match="stale_fraction"):
        rx.theory_repeat_probability(1.5)
    with pytest.raises(ValueError, match="written_at_s"):
        rx.simulate_expiry(np.ones(3), 1.0, written_at_s=np.full(3, 2.0))
    with pytest.raises(ValueError, match="jitter"):
        rx.steady_population(10.0, 1.0, 1.0, jitter=1.0)
    with pytest.raises(TypeError, match="config"):
        rx.simulate_expiry(np.ones(3), 1.0, config={"hz": 10})
    assert math.isinf(rx.theory_batches_until_stop(1.0))


def test_summarize_equilibrium_table():
    written, expires = rx.steady_population(1000.0, 5.0, 20.0, seed=2)
    configs = {"default": rx.ExpireConfig()}
    run = rx.simulate_expiry(expires, 20.0, configs["default"], seed=2, written_at_s=written).assign(
        label="default"
    )
    table = rx.summarize_equilibrium(run, configs, 1000.0, 10.0)
    assert list(table.index) == ["default"]
    assert 0 < table.loc["default", "true_perc"] < table.loc["default", "estimate_perc"] < 60
    with pytest.raises(ValueError, match="from_s"):
        rx.summarize_equilibrium(run, configs, 1000.0, 25.0)
