"""The real reconnect storm on 127.0.0.1: qualitative checks that hold on any machine."""

from __future__ import annotations

import pandas as pd
import pytest

from syslab import reconnect
from syslab.backoff import RetryPolicy

SMALL = reconnect.StormConfig(clients=80, accept_rate_per_s=200, burst=10, restart_gap_s=0.1, observe_s=2.5)


@pytest.mark.real
def test_every_client_comes_back_and_jitter_flattens_the_peak():
    fixed = reconnect.run_reconnect_storm(RetryPolicy("fixed", 0.2, 0.2), SMALL, seed=1)
    jitter = reconnect.run_reconnect_storm(
        RetryPolicy("full_jitter", 0.05, 1.0, initial_delay_s=0.5), SMALL, seed=1
    )
    n = fixed.summary["clients"]
    s_fixed = reconnect.summarize_storm(fixed.frame, n)
    s_jitter = reconnect.summarize_storm(jitter.frame, n)
    assert s_jitter["reconnected"] == n
    # Synchronised clients all try in the first instant; spread ones cannot. (Counted per 50 ms,
    # so a stall of the loop on a busy machine can split the first wave: half of it is enough.)
    assert s_fixed["peak_attempts_per_50ms"] >= 0.5 * n
    assert s_jitter["peak_attempts_per_50ms"] < s_fixed["peak_attempts_per_50ms"] / 2
    assert s_jitter["attempts_per_client"] < s_fixed["attempts_per_client"]
    assert fixed.environment["python"]


def test_bad_input():
    with pytest.raises(ValueError, match="clients"):
        reconnect.StormConfig(clients=0)
    with pytest.raises(TypeError, match="policy"):
        reconnect.run_reconnect_storm("fixed")
    with pytest.raises(ValueError, match="clients"):
        reconnect.summarize_storm(None, 0)
    with pytest.raises(ValueError, match="clients"):
        reconnect.StormConfig(clients=10**9)
    with pytest.raises(ValueError, match="timeout_s"):
        reconnect.StormConfig(observe_s=30.0, timeout_s=20.0)
    with pytest.raises(ValueError, match="events"):
        reconnect.summarize_storm(pd.DataFrame(), 3)
    with pytest.raises(ValueError, match="bin_s"):
        reconnect.plot_storm_attempts(pd.DataFrame({"t_s": [0.0], "policy": ["x"]}), bin_s=1e-9)
