"""Tests for syslab.concurrency: theory, the event-loop queue, and the real experiments on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syslab import concurrency as cc

# ----------------------------------------------------------------------- theory


def test_outbound_rate_default_linux_range():
    # 32768..60999 is 28,232 ports; through a 60 s TIME_WAIT that is 470.5 connections/s.
    assert cc.theory_outbound_rate_per_s(32768, 60999) == pytest.approx(28232 / 60)


def test_cycles_per_packet():
    # 3 GHz x 1 core at 10 Mpps leaves 300 cycles per packet.
    assert cc.theory_cycles_per_packet(3e9, 1, 10e6) == pytest.approx(300.0)


def test_event_loop_theory_reduces_to_md1_without_blocking():
    # No blocking call: an M/D/1 queue, mean wait rho/(2(1-rho)) * S.
    lam, s_ms = 500.0, 1.0
    rho = lam * s_ms / 1000
    expected = rho / (2 * (1 - rho)) * s_ms + s_ms
    assert cc.theory_event_loop_mean_latency_ms(lam, s_ms, 50, 0.0) == pytest.approx(expected)


def test_event_loop_theory_saturates():
    assert cc.theory_event_loop_mean_latency_ms(100, 1.0, 100.0, 0.1) == float("inf")


# ---------------------------------------------------------------------- simulate


def test_simulate_event_loop_regression():
    df = cc.simulate_event_loop(200, 0.5, 50, 0.01, n_requests=2000, seed=3)
    assert list(df.columns) == ["request_id", "arrival_s", "blocks", "wait_ms", "latency_ms", "mode"]
    assert int(df["blocks"].sum()) == 23
    assert df["latency_ms"].sum() == pytest.approx(9143.2797, rel=1e-6)


@pytest.mark.parametrize("mode", ["blocking", "offloaded"])
def test_simulated_mean_matches_pollaczek_khinchine(mode):
    # 200k requests; the mean of a heavy two-point mixture converges slowly, and the
    # blocking-mode mean (about 4.2 ms) is four times the offloaded one: 5% separates
    # a right model from one that forgets the blocked time or double counts it.
    df = cc.simulate_event_loop(200, 0.5, 50, 0.01, mode=mode, n_requests=200_000, seed=1)
    sim = cc.summarize_event_loop(df)["mean_ms"]
    theory = cc.theory_event_loop_mean_latency_ms(200, 0.5, 50, 0.01, mode)
    assert sim == pytest.approx(theory, rel=0.05)


def test_blocking_hurts_bystanders():
    blocking = cc.summarize_event_loop(cc.simulate_event_loop(200, 0.5, 50, 0.01, n_requests=50_000))
    offloaded = cc.summarize_event_loop(
        cc.simulate_event_loop(200, 0.5, 50, 0.01, mode="offloaded", n_requests=50_000)
    )
    # 1% of requests blocking 50 ms: far more than 1% of the others wait behind them.
    assert blocking["p99_non_blocking_ms"] > 10 * offloaded["p99_non_blocking_ms"]


@settings(max_examples=25, deadline=None)
@given(
    p=st.floats(0, 0.05),
    block=st.floats(0, 20),
    seed=st.integers(0, 10_000),
)
def test_offloaded_never_slower_than_blocking(p, block, seed):
    # Same arrivals, same blocking draws: taking work off the loop can only shorten every wait.
    b = cc.simulate_event_loop(100, 0.5, block, p, n_requests=500, seed=seed)
    o = cc.simulate_event_loop(100, 0.5, block, p, mode="offloaded", n_requests=500, seed=seed)
    assert np.all(o["latency_ms"].to_numpy() <= b["latency_ms"].to_numpy() + 1e-9)


# ---------------------------------------------------------------------- bad input


def test_bad_inputs():
    with pytest.raises(ValueError, match="port_high"):
        cc.theory_outbound_rate_per_s(60000, 1000)
    with pytest.raises(ValueError, match="mode"):
        cc.simulate_event_loop(10, 1, 1, 0.1, mode="threads")
    with pytest.raises(ValueError, match="blocking_fraction"):
        cc.simulate_event_loop(10, 1, 1, 1.5)
    with pytest.raises(ValueError, match="n_connections"):
        cc.measure_server("asyncio", 10**7)
    with pytest.raises(ValueError, match="connection_counts"):
        cc.measure_readiness_cost([10**7])
    with pytest.raises(ValueError, match="limit"):
        cc.run_emfile_child(3)
    with pytest.raises(TypeError, match="df"):
        cc.summarize_loop_stall(pd.DataFrame({"x": [1]}))


def test_read_ephemeral_port_range_missing_file(tmp_path):
    assert cc.read_ephemeral_port_range(tmp_path / "absent") == (None, None)


# -------------------------------------------------------------------- real experiments


@pytest.mark.real
def test_emfile_exactly_at_limit():
    out = cc.run_emfile_child(128).summary
    assert out["error"] == "EMFILE"
    assert out["already_open"] + out["opened"] == 128
    assert out["highest_fd"] == 127


@pytest.mark.real
def test_readiness_apis_agree_and_select_is_capped():
    run = cc.measure_readiness_cost([50, 600], repeats=20)
    df = run.frame
    assert run.summary["max_connections"] == 600 and run.summary["repeats"] == 20
    assert run.summary["n_unsupported"] == int(df["us_per_call"].isna().sum()) >= 1
    ok = df.dropna(subset=["us_per_call"])
    assert (ok["ready"] == 1).all()  # exactly the one socket we wrote to
    big_select = df[(df["api"] == "select") & (df["n_connections"] == 600)].iloc[0]
    assert big_select["max_fd"] >= cc.FD_SETSIZE and np.isnan(big_select["us_per_call"])
    poll = df[df["api"] == "poll"].set_index("n_connections")["us_per_call"]
    # poll scans every registered descriptor: 12x the sockets costs clearly more.
    assert poll[600] > 2 * poll[50]


@pytest.mark.real
def test_servers_hold_connections_threads_reserve_stacks():
    rows = cc.run_servers([200], n_pings=50, timeout_s=20).frame.set_index("mode")
    assert (rows["n_connections"] == 200).all()
    if (rows["threads"] > 0).all():  # /proc available (Linux)
        # One thread per connection on top of what both servers run (main, the child's guards).
        assert rows.loc["threads", "threads"] - rows.loc["asyncio", "threads"] == 200
        assert rows.loc["asyncio", "threads"] <= 4
        # Each thread reserves a stack (megabytes of address space); a coroutine does not.
        assert rows.loc["threads", "vm_per_conn_kb"] > 10 * max(rows.loc["asyncio", "vm_per_conn_kb"], 1.0)
        # Each thread also pins a kernel stack (16 KiB on x86-64 without KASAN): the system-wide
        # KernelStack grows by at least 8 KiB per thread even with other processes coming and going;
        # coroutines add none (within noise).
        assert rows.loc["threads", "kernel_stack_per_conn_kb"] > 8
        assert rows.loc["asyncio", "kernel_stack_per_conn_kb"] < 4


def test_bad_input_reproducers():
    with pytest.raises(ValueError, match="n_blocks"):
        cc.measure_loop_stall(n_tasks=10, duration_s=0.5, n_blocks=10**9)
    with pytest.raises(ValueError, match="n_requests"):
        cc.simulate_event_loop(100.0, 1.0, 20.0, 0.05, mode="blocking", n_requests=10**12, seed=0)


def test_kernel_memory_reading_and_tcp_tw_reuse():
    kernel = cc.kernel_memory_kb()
    assert set(kernel) == {"kernel_stack_kb", "slab_kb", "tcp_buffers_kb"}
    if Path("/proc/meminfo").exists():
        assert kernel["kernel_stack_kb"] > 0 and kernel["slab_kb"] > 0
    assert cc.read_tcp_tw_reuse("/nonexistent") is None
    reuse = cc.read_tcp_tw_reuse()
    assert reuse is None or reuse in (0, 1, 2)


@pytest.mark.real
def test_outbound_ports_in_range():
    df = cc.sample_outbound_ports(20)
    assert df["in_range"].all() and df["local_port"].is_unique


@pytest.mark.real
def test_blocking_call_stalls_every_task():
    run = cc.measure_loop_stall(n_tasks=20, block_ms=80, n_blocks=2, duration_s=0.5)
    blocking = run.frame
    assert run.summary["max_ms"] == blocking["lateness_ms"].max()
    # Every timer due during the 80 ms sleep fires late by up to ~80 ms.
    assert blocking["lateness_ms"].max() >= 0.8 * 80
    late = blocking.groupby("tick")["lateness_ms"].min()
    assert late.max() >= 0.5 * 80  # all tasks of some tick were late, not just one
