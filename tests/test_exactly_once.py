"""Tests for syslab.exactly_once: the lease model, the SQLite stand-ins and the real Redis/PostgreSQL runs."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syslab import engines, exactly_once
from syslab.children import queue_worker

# ------------------------------------------------------------------- seeded regression


def test_simulate_lease_delivery_seeded_values():
    got = exactly_once.summarize_lease_delivery(
        exactly_once.simulate_lease_delivery(1000, p_crash=0.1, seed=0)
    )
    assert (got["deliveries"], got["duplicates"], got["lost"], got["lease_redeliveries"]) == (
        got["messages"] + got["crash_redeliveries"],
        got["crash_redeliveries"],
        0,
        0,
    )
    again = exactly_once.summarize_lease_delivery(
        exactly_once.simulate_lease_delivery(1000, p_crash=0.1, seed=0)
    )
    assert again == got


# ---------------------------------------------------------------------------- theory


@pytest.mark.parametrize("p", [0.05, 0.2])
def test_crash_redeliveries_match_theory(p):
    # The model does not sample the geometric law: it plays delivery rounds against a lease, and
    # the geometric count emerges. 200k messages: sd of the total ~1 % of the mean at p = 0.05, so
    # 4 % is ~4 sigma, and the naive "duplicates = n p" (off by 1/(1-p): 25 %) fails it at p = 0.2.
    n = 200_000
    dup = exactly_once.summarize_lease_delivery(exactly_once.simulate_lease_delivery(n, p_crash=p, seed=3))
    lost = exactly_once.summarize_lease_delivery(
        exactly_once.simulate_lease_delivery(n, p_crash=p, mode="ack-before", seed=4)
    )
    assert dup["duplicates"] == pytest.approx(
        exactly_once.theory_lease_outcome(n, p, "ack-after")["duplicates"], rel=0.04
    )
    assert lost["lost"] == pytest.approx(
        exactly_once.theory_lease_outcome(n, p, "ack-before")["lost"], rel=0.03
    )
    if p == 0.2:
        assert abs(dup["duplicates"] - n * p) / (n * p) > 0.1


def test_a_pause_longer_than_the_lease_duplicates_without_any_crash():
    # Pause 1.5 s > lease 1 s + scan 0.1 s, < 2 s: each paused first delivery is overtaken once,
    # and the slow consumer acks before the second lease runs out: E[duplicates] = n q (1 + q/...)
    # within a few %; a model without lease expiry (duplicates only from crashes) gives 0.
    n, q = 100_000, 0.1
    frame = exactly_once.simulate_lease_delivery(
        n, lease_s=1.0, mean_service_s=0.001, p_pause=q, pause_s=1.5, claim_interval_s=0.1, seed=5
    )
    totals = exactly_once.summarize_lease_delivery(frame)
    assert totals["crash_redeliveries"] == 0
    assert totals["duplicates"] == totals["lease_redeliveries"] == pytest.approx(n * q, rel=0.05)
    # A lease longer than the pause: no duplicates at all.
    long = exactly_once.simulate_lease_delivery(
        n, lease_s=2.0, mean_service_s=0.001, p_pause=q, pause_s=1.5, claim_interval_s=0.1, seed=5
    )
    assert exactly_once.summarize_lease_delivery(long)["duplicates"] == 0


def test_sweep_lease_is_replicated_and_falls_with_the_lease():
    frame = exactly_once.sweep_lease([0.1, 1.0, 10.0], n_messages=20_000, replications=2, seed=1)
    assert len(frame) == 6 and set(frame["replication"]) == {0, 1}
    mean = frame.groupby("lease_s")["duplicate_share"].mean()
    assert mean[0.1] > mean[1.0] > mean[10.0]


# ------------------------------------------------------------------------ properties


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 2000), st.floats(0.0, 0.8), st.floats(0.0, 1.0), st.integers(0, 10_000))
def test_idempotent_never_duplicates_and_nothing_is_lost(n, p, q, seed):
    kwargs = dict(p_crash=p, lease_s=1.0, p_pause=q, pause_s=3.0, seed=seed)
    summary = exactly_once.summarize_lease_delivery(
        exactly_once.simulate_lease_delivery(n, mode="ack-after-idempotent", **kwargs)
    )
    assert summary["duplicates"] == 0 and summary["lost"] == 0
    assert summary["dedup_hits"] == summary["crash_redeliveries"] + summary["lease_redeliveries"]
    before = exactly_once.summarize_lease_delivery(
        exactly_once.simulate_lease_delivery(n, mode="ack-before", **kwargs)
    )
    assert before["effects"] + before["lost"] == n and before["duplicates"] == 0


# --------------------------------------------------------------------------- real: SQLite


@pytest.mark.real
def test_lease_queue_duplicates_equal_crashes_and_ack_before_loses_them():
    after = exactly_once.run_lease_queue(80, 0.2, "ack-after", seed=5, timeout_s=30).summary
    idem = exactly_once.run_lease_queue(80, 0.2, "ack-after-idempotent", seed=5, timeout_s=30).summary
    before = exactly_once.run_lease_queue(80, 0.2, "ack-before", seed=5, timeout_s=30).summary
    # With p = 0.2 over 80+ deliveries, no crash at all has probability 0.8**80 ~ 2e-8.
    assert after["crashes"] > 0 and after["duplicates"] == after["crashes"] and after["lost"] == 0
    assert idem["duplicates"] == 0 and idem["lost"] == 0 and idem["dedup_hits"] == idem["crashes"] > 0
    assert before["lost"] == before["crashes"] > 0 and before["duplicates"] == 0
    assert after["deliveries"] == 80 + after["crashes"]


@pytest.mark.real
def test_outbox_loses_nothing_and_doubles_nothing_with_dedup():
    run = exactly_once.run_outbox(60, 0.1, seed=2, timeout_s=30)
    totals, points = run.summary, run.frame
    assert totals["orders"] == totals["outbox_rows"] == totals["unique_published"] == 60
    assert totals["lost"] == 0 and totals["doubled_effects"] == 0
    assert totals["published"] >= 60
    assert totals["crashes"] == points["crashes"].sum() > 0
    plain = exactly_once.run_outbox(60, 0.1, seed=2, dedup=False, timeout_s=30).summary
    assert plain["lost"] == 0
    # Without the processed-ids table every redelivery is applied again.
    assert plain["doubled_effects"] > 0


@pytest.mark.real
def test_mail_scenarios_each_crash_point():
    table = exactly_once.run_mail_scenarios(timeout_s=30).frame.set_index(["strategy", "crash_point"])
    assert table["order_committed"].all()
    assert table.loc[("mail-in-transaction", "after-mail-before-commit"), "ghost_mails"] == 1
    assert table.loc[("mail-in-transaction", "after-mail-before-commit"), "mails_received"] == 2
    assert bool(table.loc[("mail-after-commit", "after-commit-before-mail"), "missing_mail"])
    assert table.loc[("outbox", "after-mail-before-mark-sent"), "duplicate_mails"] == 1
    outbox = table.loc["outbox"]
    assert (~outbox["missing_mail"]).all() and (outbox["after_dedup_by_message_id"] == 1).all()


def test_worker_module_rejects_unknown_role():
    with pytest.raises(SystemExit):
        queue_worker.parse(["nonsense"])


# ------------------------------------------------------------------ real: Redis, PostgreSQL


def _engine(name):
    engine = engines.find(name)
    if engine is None:
        pytest.skip(engines.unavailable_reason(name))
    return engine


@pytest.mark.real
def test_redis_stream_group_duplicates_without_a_crash():
    redis = _engine("redis")
    run = exactly_once.run_stream_group(
        redis, 60, n_consumers=4, p_pause=0.1, pause_s=0.8, lease_s=0.2, seed=3
    )
    s = run.summary
    assert s["flagged"] > 0 and s["crashes"] == 0 and s["lost"] == 0
    # Every duplicate is a paused delivery overtaken by XAUTOCLAIM; at most one per flagged entry
    # (with 4 consumers, all busy at once is rare, so most flagged entries are duplicated).
    assert 1 <= s["duplicates"] <= s["flagged"]
    assert s["duplicates"] == s["claims"] == s["late_acks"]
    assert run.environment["engine"].startswith(("Redis", "Valkey"))


@pytest.mark.real
def test_effect_and_dedup_key_in_one_postgres_transaction_survive_sigkill():
    redis, pg = _engine("redis"), _engine("postgres")
    kept = exactly_once.run_transactional_consumer(redis, pg, 120, batch=10, n_kills=3, dedup=True, seed=4)
    plain = exactly_once.run_transactional_consumer(redis, pg, 120, batch=10, n_kills=3, dedup=False, seed=4)
    assert kept.summary["crashes"] == plain.summary["crashes"] == 3
    assert kept.summary["duplicates"] == 0 and kept.summary["lost"] == 0
    assert kept.summary["dedup_hits"] >= 3  # each kill lands after at least one unacked commit
    assert plain.summary["lost"] == 0 and plain.summary["duplicates"] >= 3


# --------------------------------------------------------------------------- bad input


def test_bad_inputs_name_the_parameter():
    with pytest.raises(ValueError, match="mode"):
        exactly_once.simulate_lease_delivery(10, mode="exactly-once")
    with pytest.raises(ValueError, match="p_crash"):
        exactly_once.theory_lease_outcome(10, 1.0, "ack-after")
    with pytest.raises(ValueError, match="n_messages"):
        exactly_once.run_lease_queue(0)
    with pytest.raises(ValueError, match="p_crash"):
        exactly_once.run_outbox(10, 0.9)
    with pytest.raises(TypeError, match="frame"):
        exactly_once.summarize_lease_delivery(None)
    with pytest.raises(TypeError, match="dedup"):
        exactly_once.run_outbox(10, dedup="no")
    with pytest.raises(TypeError, match="engine"):
        exactly_once.run_stream_group("redis://localhost")
    with pytest.raises(TypeError, match="lease_values_s"):
        exactly_once.sweep_lease(None)
    with pytest.raises(ValueError, match="runs"):
        exactly_once.plot_lease_runs(pd.DataFrame())


@pytest.mark.parametrize("function", [exactly_once.run_lease_queue, exactly_once.run_outbox])
def test_huge_sizes_are_refused_at_once(function):
    started = time.monotonic()
    with pytest.raises(ValueError, match=f"{exactly_once.MAX_MESSAGES}"):
        function(10**12, timeout_s=15)
    assert time.monotonic() - started < 1
    with pytest.raises(ValueError, match="n_messages"):
        exactly_once.simulate_lease_delivery(10**12)


@pytest.mark.real
def test_timeout_covers_set_up_and_leaves_nothing_behind(monkeypatch):
    made = []
    real = tempfile.TemporaryDirectory

    def recording(*args, **kwargs):
        folder = real(*args, **kwargs)
        made.append(Path(folder.name))
        return folder

    monkeypatch.setattr(exactly_once.tempfile, "TemporaryDirectory", recording)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        exactly_once.run_lease_queue(exactly_once.MAX_MESSAGES, 0.0, timeout_s=0.3)
    assert time.monotonic() - started < 10
    assert made and not any(path.exists() for path in made)


def test_model_bounds_hold():
    assert exactly_once.MAX_MODEL_MESSAGES * 8 * 10 < 2**30  # ~10 arrays of 8 bytes stay under 1 GiB
    frame = exactly_once.simulate_lease_delivery(10, p_crash=exactly_once.MAX_P_CRASH, seed=0)
    assert np.all(frame["deliveries"] >= 1)
