"""Regression tests for the bad-input review (issue 20): each case once gave a wrong answer, a
MemoryError, a hang or an error naming the wrong parameter. Each now fails fast, by name."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from syslab import (
    backoff,
    btree,
    caching,
    garbage_collection,
    ids,
    processes,
    proxy,
    queueing,
    shutdown,
    validate,
    websocket,
)

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


@pytest.mark.parametrize(
    ("call", "kind", "name"),
    [
        # Named an internal parameter (mean_s, cv, n_objects).
        (
            lambda: queueing.simulate_pool(queueing.PoolConfig(), arrival_rate_per_s=10.0, mean_service_s=0),
            ValueError,
            "mean_service_s",
        ),
        (
            lambda: queueing.simulate_pool(queueing.PoolConfig(), arrival_rate_per_s=10.0, cv_service=-1),
            ValueError,
            "cv_service",
        ),
        (
            lambda: garbage_collection.simulate_generational(n_allocations=float("nan")),
            TypeError,
            "n_allocations",
        ),
        # Unbounded sizes: a MemoryError or a hang before.
        (
            lambda: queueing.simulate_pool(queueing.PoolConfig(), arrival_rate_per_s=1.0, n_requests=10**12),
            ValueError,
            "n_requests",
        ),
        (lambda: backoff.simulate_occ_contention("full_jitter", clients=10**12), ValueError, "clients"),
        (lambda: backoff.simulate_occ_contention("full_jitter", clients=5, runs=10**12), ValueError, "runs"),
        (lambda: ids.uuid4_batch(10**12), ValueError, "n"),
        (lambda: btree.grow_leaf_level(100, n_checkpoints=10**12), ValueError, "n_checkpoints"),
        (
            lambda: garbage_collection.simulate_stop_the_world(1e-12, 5.0, 4, 10.0, 1.0, n_requests=100),
            ValueError,
            "pauses_per_s",
        ),
        (lambda: proxy.run_balancing_experiment(proxy.ProxyConfig("l4"), 10**12), ValueError, "requests"),
        # A scalar where a sequence belongs ("'float' object is not iterable" before).
        (lambda: queueing.sweep_kingman(0.5, [1.0]), TypeError, "utilisations"),
        (lambda: shutdown.sweep_grace(5.0), TypeError, "grace_values_s"),
        # Silent nonsense before: NaN rows, a str split into characters, a header injection.
        (lambda: queueing.sweep_kingman([0.5], [1.0], warmup_fraction=1.0), ValueError, "warmup_fraction"),
        (lambda: processes.python_command("syslab.environment", "abc"), TypeError, "args"),
        (lambda: validate.choice("mode", "a", "abc"), TypeError, "allowed"),
        (lambda: websocket.client_handshake("127.0.0.1\r\nX: y", 80, KEY), ValueError, "host"),
        (lambda: websocket.client_handshake("127.0.0.1", float("nan"), KEY), TypeError, "port"),
        (lambda: btree.theory_lru_hit_ratio(10, None), TypeError, "leaf_pages"),
        (lambda: btree.theory_lru_hit_ratio(10, float("nan")), ValueError, "leaf_pages"),
        (lambda: ids.snowflake_decode(1, epoch_ms=float("nan")), TypeError, "epoch_ms"),
        (lambda: proxy.ProxyConfig("l7", sticky_cookie=1), TypeError, "sticky_cookie"),
        (lambda: shutdown.exit_status_for_shell("3"), TypeError, "returncode"),
        (lambda: caching.theory_lru_hit_ratio("array", 3), TypeError, "popularity"),
        # Frames of the wrong shape: KeyError before.
        (lambda: shutdown.summarize_termination(pd.DataFrame()), ValueError, "df"),
        (lambda: caching.plot_latency_cdf(pd.DataFrame()), ValueError, "runs"),
        (lambda: queueing.plot_kingman(pd.DataFrame()), ValueError, "sweep"),
    ],
)
def test_bad_input_is_refused_by_name(call, kind, name):
    with pytest.raises(kind, match=name):
        call()


def test_summarize_fleet_takes_one_policy_of_the_sweep():
    timelines, summary = backoff.sweep_fleet_strategies(
        {"a": backoff.RetryPolicy(), "b": backoff.RetryPolicy()}, devices=500, horizon_s=30.0
    )
    with pytest.raises(ValueError, match="several policies"):
        backoff.summarize_fleet(timelines)
    one = backoff.summarize_fleet(timelines[timelines["policy"] == "b"])
    expected = summary.set_index("policy").loc["b"]
    assert one["time_to_fraction_s"] == pytest.approx(expected["time_to_fraction_s"])
    assert one["attempts_per_device"] == pytest.approx(expected["attempts_per_device"])


def test_sequence_of_floats_names_the_element():
    assert validate.sequence_of_floats("x", np.array([1.0, 2.0]), 0.0, 5.0, max_length=3) == [1.0, 2.0]
    with pytest.raises(ValueError, match=r"x\[1\]"):
        validate.sequence_of_floats("x", [1.0, 9.0], 0.0, 5.0, max_length=3)
    with pytest.raises(ValueError, match="at most|1 to 3"):
        validate.sequence_of_floats("x", [1.0] * 4, 0.0, 5.0, max_length=3)
