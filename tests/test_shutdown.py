"""Tests for syslab.shutdown: the Kubernetes termination model and the real drain experiments."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syslab import shutdown
from syslab import shutdown as sh

# ----------------------------------------------------------------------------- model: exact values


def test_simulate_termination_seeded_regression():
    summary = sh.summarize_termination(sh.simulate_termination(sh.TerminationConfig(), seed=3))
    assert (summary["served"], summary["refused"], summary["killed"]) == (64, 97, 1)
    assert summary["sigkill"] is True and summary["flushed"] is False


def test_short_grace_ends_in_sigkill_mid_drain():
    cfg = sh.TerminationConfig(prestop_s=5.0, grace_s=5.0)
    summary = sh.summarize_termination(sh.simulate_termination(cfg, seed=3))
    assert summary["sigkill"] and not summary["flushed"]
    assert summary["killed"] > 0 and summary["exit_s"] == 5.0


def test_exit_status_for_shell():
    assert sh.exit_status_for_shell(-signal.SIGTERM) == 143
    assert sh.exit_status_for_shell(-signal.SIGKILL) == 137
    assert sh.exit_status_for_shell(0) == 0


# ----------------------------------------------------------------------------- model vs theory


def test_race_refused_matches_closed_form():
    # 40 terminations per point; refused counts are Poisson-like (sd ~ sqrt(100) = 10 at s = 0),
    # so the mean has a standard error of ~1.6 at s = 0: 10 % (and 3 requests absolute near the
    # tail) is > 4 standard errors. A model that forgot the uniform delay (rate * D = 200) or
    # used (D - s) linearly fails by a factor of 2.
    cfg = sh.TerminationConfig(warmup_s=5.0)  # the race does not depend on the warm-up
    sweep = sh.sweep_prestop([0.0, 0.5, 1.0, 2.0, 3.0], cfg, n_seeds=40, seed=11)
    mean = sweep.groupby("prestop_s")[["refused", "theory_refused"]].mean()
    assert np.allclose(mean["refused"], mean["theory_refused"], rtol=0.10, atol=3.0)
    assert mean.loc[2.0, "refused"] == 0 and mean.loc[3.0, "refused"] == 0


def test_killed_in_flight_matches_closed_form():
    # No race (delay 0): in flight at SIGKILL ~ Poisson(rate * E[(S - G)^+]) (an M/G/inf count).
    # 150 runs give a standard error of ~1.8 % at G = 2 (mean ~17.5) and ~3 % at G = 5 (~8):
    # a 10 % tolerance is > 3 standard errors, while ignoring the tail (rate * P(S > G) * G) is off 2x.
    # A 200 s warm-up leaves out arrivals whose share of the expectation is < 0.5 %.
    cfg = sh.TerminationConfig(endpoint_delay_max_s=0.0, warmup_s=200.0)
    sweep = sh.sweep_grace([2.0, 5.0], cfg, n_seeds=150, seed=5)
    mean = sweep.groupby("grace_s")[["killed", "theory_killed"]].mean()
    assert np.allclose(mean["killed"], mean["theory_killed"], rtol=0.10)


def test_theory_limits():
    assert sh.theory_race_refused(100, 2.0, 0.0) == pytest.approx(100.0)
    assert sh.theory_race_refused(100, 2.0, 2.0) == 0.0
    # E[(S - G)^+] -> E[S] = m e^{sigma^2/2} as G -> 0.
    assert sh.theory_killed_in_flight(1.0, 0.2, 1.5, 1e-9) == pytest.approx(0.2 * np.exp(1.125), rel=1e-6)


@settings(max_examples=25, deadline=None)
@given(st.floats(0.0, 5.0), st.integers(0, 10_000))
def test_prestop_at_least_delay_never_refuses(extra_s, seed):
    cfg = sh.TerminationConfig(prestop_s=2.0 + extra_s, warmup_s=5.0)
    df = sh.simulate_termination(cfg, seed=seed)
    assert (df["outcome"] != "refused").all()
    # conservation: every routed request is served, refused or killed
    assert set(df["outcome"]) <= {"served", "refused", "killed"}


@settings(max_examples=25, deadline=None)
@given(st.floats(0.5, 60.0), st.integers(0, 10_000))
def test_nothing_runs_past_sigkill(grace_s, seed):
    cfg = sh.TerminationConfig(grace_s=grace_s, warmup_s=5.0)
    df = sh.simulate_termination(cfg, seed=seed)
    served = df[df["outcome"] == "served"]
    assert (served["end_s"] <= max(grace_s, df.attrs["exit_s"]) + 1e-9).all()
    assert df.attrs["exit_s"] <= grace_s + 1e-9


# ----------------------------------------------------------------------------- bad input


def test_bad_input():
    with pytest.raises(ValueError, match="rate_per_s"):
        sh.TerminationConfig(rate_per_s=0)
    with pytest.raises(ValueError, match="n_nodes"):
        sh.TerminationConfig(n_nodes=0)
    with pytest.raises(TypeError, match="config"):
        sh.simulate_termination({"rate_per_s": 1})
    with pytest.raises(ValueError, match="signal_name"):
        sh.run_drain("SIGHUP")
    with pytest.raises(ValueError, match="n_in_flight"):
        sh.run_drain(n_in_flight=-1)
    with pytest.raises(ValueError, match="handler"):
        sh.run_handler_pitfall("maybe")
    with pytest.raises(ValueError, match="prestop_s"):
        sh.theory_race_refused(1.0, 1.0, -1.0)
    with pytest.raises(ValueError, match="n_seeds"):
        sh.sweep_prestop([0.0], n_seeds=0)


# ----------------------------------------------------------------------------- real experiments


def _no_children_left():
    """No drain_server process of ours survives an experiment."""
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        if b"syslab.children.drain_server" in cmdline and ppid == me:
            return False
    return True


@pytest.mark.real
def test_sigterm_drain_loses_nothing_and_sigkill_loses_in_flight():
    term = sh.run_drain("SIGTERM", n_in_flight=20, n_warm=10, service_s=0.3)
    kill = sh.run_drain("SIGKILL", n_in_flight=20, n_warm=10, service_s=0.3)
    summary = sh.summarize_drain_runs({"term": term, "kill": kill})
    t, k = summary.loc["term"], summary.loc["kill"]
    assert t["in_flight_ok"] == 20 and t["lost"] == 0 and t["acked_not_journaled"] == 0
    assert t["exit_status"] == 0 and t["connect_after_signal"] == "refused" and not t["supervisor_sigkill"]
    assert k["in_flight_ok"] == 0 and k["lost"] == 20
    assert k["acked_not_journaled"] == 10 and k["exit_status"] == 137
    assert list(term.stages["stage"]) == ["catch", "stop_intake", "drain", "flush", "exit"]
    assert _no_children_left()


@pytest.mark.real
def test_unbounded_drain_is_killed_and_bounded_drain_flushes():
    unbounded = sh.run_drain("SIGTERM", n_in_flight=5, n_warm=5, service_s=0.2, n_stuck=1,
                             drain_timeout_s=None, grace_s=1.0)  # fmt: skip
    bounded = sh.run_drain("SIGTERM", n_in_flight=5, n_warm=5, service_s=0.2, n_stuck=1,
                           drain_timeout_s=0.5, grace_s=2.0)  # fmt: skip
    summary = sh.summarize_drain_runs({"unbounded": unbounded, "bounded": bounded})
    assert summary.loc["unbounded", "supervisor_sigkill"] and summary.loc["unbounded", "journaled"] == 0
    assert not summary.loc["bounded", "supervisor_sigkill"] and summary.loc["bounded", "exit_status"] == 0
    assert summary.loc["bounded", "acked_not_journaled"] == 0 and summary.loc["bounded", "lost"] == 1
    assert _no_children_left()


@pytest.mark.real
def test_work_in_handler_deadlocks_flag_does_not():
    flag = sh.run_handler_pitfall("flag", run_s=0.2, grace_s=1.0).summary
    work = sh.run_handler_pitfall("work", run_s=0.2, grace_s=1.0).summary
    assert flag["exit_status"] == 0 and flag["journal_lines"] > 0
    assert work["supervisor_killed"] and work["exit_status"] == 137 and work["journal_lines"] == 0


@pytest.mark.real
def test_pid1_without_handler_ignores_sigterm():
    ok, reason = sh.pid1_supported()
    if not ok:
        pytest.skip(f"PID namespaces unavailable without privileges here: {reason}")
    none = sh.run_pid1("none", wait_s=0.5).summary
    flag = sh.run_pid1("flag", wait_s=2.0).summary
    assert none["pid_inside"] == 1 and none["alive_after_sigterm"]
    assert not flag["alive_after_sigterm"] and flag["exit_status"] == 0


def test_bad_input_reproducers_are_refused():
    # bad-input.md: an OverflowError, timestamps out of range, and a child with no effective lifetime.
    with pytest.raises(ValueError, match="service_sigma"):
        shutdown.theory_killed_in_flight(100, 0.2, 38, 30)
    with pytest.raises(ValueError, match="run_s"):
        shutdown.run_handler_pitfall(run_s=1e12)
    with pytest.raises(ValueError, match="wait_s"):
        shutdown.run_pid1("none", wait_s=1e12)
    with pytest.raises(ValueError, match="grace_s"):
        shutdown.run_drain("SIGTERM", grace_s=1e12)
    with pytest.raises(ValueError, match="modes"):
        shutdown.run_postgres_stop(["graceful"])
    with pytest.raises(ValueError, match="n_idle"):
        shutdown.run_postgres_stop(n_idle=10**6)


@pytest.mark.real
def test_real_postgres_stop_modes():
    if shutdown.private_server_reason("postgres") is not None:
        pytest.skip(shutdown.private_server_reason("postgres"))
    run = shutdown.run_postgres_stop(n_idle=2, smart_wait_s=1.0)
    s = run.summary
    seen = run.frame.set_index(["mode", "client"])["sees"]
    # Smart waits for sessions: pg_ctl gives up, idle pooled sessions still work, new logins are refused.
    assert not s["smart_stopped_by_pg_ctl"]
    assert seen[("smart", "idle pooled connection")].startswith("SELECT 1 returned 1")
    assert "shutting down" in seen[("smart", "new connection")]
    assert s["smart_open_commit_kept"]
    # Fast ends sessions and rolls back open transactions; the next start is clean.
    assert s["fast_stopped_by_pg_ctl"] and not s["fast_recovery"] and not s["fast_open_commit_kept"]
    assert "administrator command" in seen[("fast", "idle pooled connection")]
    # Immediate: the next start replays WAL, and the committed row is there.
    assert s["immediate_recovery"] and not s["immediate_open_commit_kept"]
    assert seen[("immediate", "rows after restart")].startswith("committed row kept")
    assert s["engine"].startswith("PostgreSQL")


@pytest.mark.real
def test_real_redis_stop_signals():
    if shutdown.private_server_reason("redis") is not None:
        pytest.skip(shutdown.private_server_reason("redis"))
    run = shutdown.run_redis_stop(n_keys=500)
    kept = run.frame.set_index("case")["keys_after_restart"]
    assert kept["SIGTERM, save points"] == 500  # the shutdown code writes the final snapshot
    assert kept['SIGTERM, save ""'] == 0  # a pure cache: nothing to save
    assert kept["SIGKILL, save points"] == 0  # SIGKILL never runs the shutdown code


@pytest.mark.real
def test_keepalive_connection_outlives_the_listener():
    run = shutdown.run_keepalive_after_close(n_requests=3)
    assert run.summary["served_after_close"] == 3
    assert run.summary["new_connection_refused"]
    steps = run.frame.set_index("step")["client_sees"]
    assert steps["request on the held connection once draining"].endswith("(Connection: close)")
