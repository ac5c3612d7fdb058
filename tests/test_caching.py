"""Tests for syslab.caching: patterns, LRU vs Che, write-behind loss, stampedes, shards."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syslab import caching


@pytest.fixture(scope="module")
def requests():
    return caching.generate_requests(20_000, 5_000, 1000.0, 1.0, write_fraction=0.05, seed=3)


def test_zipf_popularity_sums_to_one_and_decreases():
    p = caching.zipf_popularity(1000, 1.0)
    assert math.isclose(p.sum(), 1.0)
    assert np.all(np.diff(p) < 0)
    # The most popular key's share is 1 / H_n (harmonic number) when the exponent is 1.
    assert math.isclose(p[0], 1.0 / np.sum(1.0 / np.arange(1, 1001)))


def test_generate_requests_regression():
    frame = caching.generate_requests(5, 100, 10.0, seed=1)
    assert frame["key"].tolist() == [40, 4, 9, 0, 27]
    assert frame["t_s"].iloc[-1] == pytest.approx(0.72387, abs=1e-4)


def test_lru_matches_che_approximation():
    # Che's approximation is accurate to about 1% absolute for Zipf(1) under independent requests
    # (Che et al. 2002; Fricker et al. 2012). A FIFO or random-eviction cache would miss by more than
    # 0.02 at these sizes, so 0.015 separates LRU from the alternatives.
    popularity = caching.zipf_popularity(20_000, 1.0)
    keys = np.random.default_rng(5).choice(popularity.size, size=200_000, p=popularity)
    simulated = caching.lru_hit_ratios(keys, [200, 2000], warmup=50_000)
    for row in simulated.itertuples():
        assert row.hit_ratio == pytest.approx(
            caching.theory_lru_hit_ratio(popularity, row.capacity), abs=0.015
        )


def test_che_limits():
    popularity = caching.zipf_popularity(100, 0.8)
    assert caching.theory_lru_hit_ratio(popularity, 100) == 1.0
    assert caching.theory_lru_hit_ratio(caching.zipf_popularity(100, 0.0), 10) == pytest.approx(0.1, abs=1e-6)


def test_patterns_differ_where_they_should(requests):
    runs = pd.concat([caching.simulate_pattern(requests, p, 1000, ttl_s=5.0) for p in caching.PATTERNS])
    summary = caching.summarize_patterns(runs)
    # Cache-aside and read-through: same hits, same latencies (only who fills the cache differs).
    assert summary.loc["cache-aside", "hit_ratio"] == summary.loc["read-through", "hit_ratio"]
    # Writing through keeps the key cached, invalidating on write does not.
    assert summary.loc["write-through", "hit_ratio"] > summary.loc["cache-aside", "hit_ratio"]
    # Write-behind acknowledges at cache speed; write-through pays the origin's write.
    assert summary.loc["write-behind", "write_p50_ms"] == pytest.approx(0.5)
    assert summary.loc["write-through", "write_p50_ms"] == pytest.approx(15.5)
    # Stale-while-revalidate serves stale reads instead of misses, and single-flight saves origin reads.
    assert summary.loc["stale-while-revalidate", "stale_share"] > 0
    assert summary.loc["stale-while-revalidate", "hit_ratio"] > summary.loc["cache-aside", "hit_ratio"]
    assert (
        summary.loc["single-flight", "origin_reads_per_s"] < summary.loc["cache-aside", "origin_reads_per_s"]
    )


def test_pattern_regression(requests):
    run = caching.simulate_pattern(requests, "cache-aside", 1000, ttl_s=5.0, seed=0)
    summary = caching.summarize_patterns(run)
    assert summary.loc["cache-aside", "hit_ratio"] == pytest.approx(0.648794, abs=1e-5)


def test_write_behind_loss_matches_theory():
    # Writes at ~500/s, flushed every second: a crash at a uniform instant loses lambda_w * F / 2 = 250
    # writes on average. 1,000 crashes give a standard error of ~5 writes, so 5% (12.5) is ~2.5 sigma.
    frame = caching.generate_requests(30_000, 1000, 1000.0, write_fraction=0.5, seed=2)
    run = caching.simulate_pattern(frame, "write-behind", 500, flush_interval_s=1.0)
    loss = caching.write_behind_loss(run, n_crashes=1000, seed=4)
    assert loss["lost_writes"].mean() == pytest.approx(250, rel=0.05)
    assert loss["oldest_lost_age_s"].max() <= 1.0


def test_hot_key_expiry_against_theory_and_published_figures():
    rate, delta = 1000.0, 0.1
    none = caching.simulate_hot_key_expiry(rate, delta, "none", n_trials=400, seed=1)
    # Everyone arriving in the recompute window recomputes: 1 + lambda * delta = 101 (Poisson mean;
    # 400 trials give a standard error of 0.5).
    assert none["recomputes"].mean() == pytest.approx(1 + rate * delta, abs=2.0)
    single = caching.simulate_hot_key_expiry(rate, delta, "single-flight", n_trials=50, seed=1)
    assert (single["recomputes"] == 1).all()
    # XFetch, beta = 1: about 2.7 recomputations (range 2-4), fewer with larger beta (topics-part1 §6).
    xfetch = {
        b: caching.simulate_hot_key_expiry(rate, delta, "xfetch", b, n_trials=400, seed=2) for b in (1, 2)
    }
    assert 2.0 <= xfetch[1]["recomputes"].mean() <= 4.0
    assert 1.2 <= xfetch[2]["recomputes"].mean() < xfetch[1]["recomputes"].mean()
    # The first early recomputation is Gumbel-distributed: mean delta beta (ln(lambda delta beta) + gamma)
    # = 0.518 s at beta 1. 400 trials give a standard error of 0.1 * 1.28 / 20 = 6 ms; 0.02 s is 3 sigma.
    lead = -xfetch[1]["first_recompute_s"].mean()
    assert lead == pytest.approx(caching.theory_xfetch_lead_s(rate, delta, 1.0), abs=0.02)
    # XFetch refreshes before expiry: no request ever waits.
    assert xfetch[1]["first_recompute_s"].lt(0).mean() > 0.99
    assert xfetch[1]["waiting_requests"].mean() < 0.05


def test_xfetch_probability():
    assert caching.xfetch_refresh_probability(0.1, 0.1, 1.0) == pytest.approx(math.exp(-1))
    assert caching.xfetch_refresh_probability(0.0, 0.1) == 1.0


@pytest.mark.parametrize(("ttl_s", "single_flight"), [(0.0, False), (5.0, False), (5.0, True)])
def test_ttl_key_origin_rate_matches_renewal_theory(ttl_s, single_flight):
    # The renewal formula ignores that the burst's last query starts a little before 2f; 6% covers that
    # and the Poisson noise of 12 cycles, and a model that forgot the burst (1/(ttl+f)) is off 20-fold.
    run = caching.simulate_ttl_key(1000.0, ttl_s, 0.1, 60.0, single_flight, seed=3)
    theory = caching.theory_ttl_key_origin_rate_per_s(1000.0, ttl_s, 0.1, single_flight)
    assert run["origin_query"].sum() / 60.0 == pytest.approx(theory, rel=0.06)


def test_shard_load_hot_key_floor_and_mitigations():
    popularity = caching.zipf_popularity(50_000, 1.0)
    plain = caching.simulate_shard_load(popularity, 16, 10_000.0, seed=1)
    # The hottest key alone puts p_1 * lambda on its shard; the rest adds ~ (1 - p_1)/S of the traffic.
    hottest = plain.loc[plain["holds_hottest"], "load_per_s"].iloc[0]
    assert hottest >= popularity[0] * 10_000.0
    assert plain["load_per_s"].sum() == pytest.approx(10_000.0)
    for mitigation in ("replicate", "local-cache"):
        fixed = caching.simulate_shard_load(popularity, 16, 10_000.0, mitigation, seed=1)
        assert fixed["load_per_s"].max() < plain["load_per_s"].max()


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 64), st.integers(1, 50))
def test_shard_replication_conserves_load(shards, hot):
    popularity = caching.zipf_popularity(200, 1.1)
    loads = caching.simulate_shard_load(popularity, shards, 100.0, "replicate", hot_keys=hot, replicas=shards)
    assert loads["load_per_s"].sum() == pytest.approx(100.0)
    assert (loads["load_per_s"] >= -1e-9).all()


def test_decision_table_has_the_layers():
    table = caching.decision_table()
    assert {"browser", "CDN edge", "distributed cache", "in-process LRU"} <= set(table["layer"])


def test_bad_inputs(requests):
    with pytest.raises(ValueError, match="pattern"):
        caching.simulate_pattern(requests, "write-around", 10)
    with pytest.raises(ValueError, match="capacity"):
        caching.simulate_pattern(requests, "cache-aside", 0)
    with pytest.raises(TypeError, match="requests"):
        caching.simulate_pattern([1, 2], "cache-aside", 10)
    with pytest.raises(ValueError, match="protection"):
        caching.simulate_hot_key_expiry(10, 0.1, "locks")
    with pytest.raises(ValueError, match="write_fraction"):
        caching.generate_requests(10, 10, 1.0, write_fraction=1.5)
    with pytest.raises(ValueError, match="popularity"):
        caching.theory_lru_hit_ratio(np.array([0.5, 0.2]), 1)
    with pytest.raises(ValueError, match="mitigation"):
        caching.simulate_shard_load(caching.zipf_popularity(10), 2, 1.0, "shrug")
    with pytest.raises(TypeError, match="single_flight"):
        caching.simulate_ttl_key(1.0, 1.0, 0.1, 1.0, single_flight="yes")
    with pytest.raises(ValueError, match="write-behind"):
        caching.write_behind_loss(caching.simulate_pattern(requests, "cache-aside", 10))


def test_xfetch_lead_is_exact_and_never_negative():
    # bad-input.md: the Gumbel approximation returned -0.017 s at (10/s, 0.01 s). The exact mean
    # delta*beta*(ln m + gamma + E1(m)) is positive, and matches a direct Monte Carlo of the largest
    # early gap (0 when nothing fires early) at small and large m.
    rng = np.random.default_rng(5)
    for rate, delta in [(10.0, 0.01), (3.0, 0.2), (1000.0, 0.1)]:
        lead = caching.theory_xfetch_lead_s(rate, delta, 1.0)
        assert lead > 0
        m, scale = rate * delta, delta
        draws = []
        for _ in range(20_000 if m < 10 else 2_000):
            count = rng.poisson(
                m * 30
            )  # requests within 30 delta before expiry, each fires w.p. e^(-g/delta)
            gaps = rng.uniform(0, 30 * scale, count)
            fired = gaps[rng.random(count) < np.exp(-gaps / scale)]
            draws.append(fired.max() if fired.size else 0.0)
        assert lead == pytest.approx(np.mean(draws), rel=0.05), (rate, delta)
    # For large m it is the Gumbel mean.
    assert caching.theory_xfetch_lead_s(1000.0, 0.1) == pytest.approx(
        0.1 * (math.log(100) + 0.5772156649), rel=1e-6
    )


def test_bad_input_reproducers_are_refused():
    with pytest.raises(ValueError, match="n_keys"):
        caching.zipf_popularity(10**9)
    with pytest.raises(ValueError, match="n_trials"):
        caching.simulate_hot_key_expiry(100.0, 0.1, n_trials=10**12)
    with pytest.raises(ValueError, match="n_requests"):
        caching.generate_requests(10**12, 10, 1.0)
    with pytest.raises(ValueError, match="zipf_exponent"):
        caching.generate_requests(10, 10, 1.0, zipf_exponent=-1)
    with pytest.raises(ValueError, match="popularity"):
        caching.simulate_shard_load(np.array([0.5, np.nan, 0.5]), 2, 1.0)


@pytest.mark.real
def test_real_stampede_on_redis():
    from syslab import engines

    engine = engines.find("redis")
    if engine is None:
        pytest.skip(f"no Redis: {engines.unavailable_reason('redis')}")
    common = {
        "n_clients": 12,
        "request_interval_s": 0.01,
        "recompute_s": 0.1,
        "ttl_s": 0.5,
        "duration_s": 1.6,
    }
    none = caching.run_stampede(engine, "none", **common).summary
    lock = caching.run_stampede(engine, "lock", **common).summary
    # 12 clients reading every 10 ms all miss during a 100 ms recompute: many recompute per expiry.
    assert none["recomputes_per_cycle"] > 3
    # The SET NX PX lock lets exactly one client recompute per expiry.
    assert lock["recomputes_per_cycle"] == pytest.approx(1.0, abs=0.34)
    assert lock["recomputes"] < none["recomputes"]
    with pytest.raises(ValueError, match="n_clients"):
        caching.run_stampede(engine, "none", n_clients=10_000)
