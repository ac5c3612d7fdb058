"""Tests for syslab.exactly_once and its worker: the delivery model and the real crash experiments."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syslab import exactly_once, queue_worker

# ------------------------------------------------------------------- seeded regression


def test_simulate_delivery_seeded_values():
    got = {
        m: exactly_once.summarize_delivery(exactly_once.simulate_delivery(1000, 0.1, m, seed=0))
        for m in exactly_once.LEASE_MODES
    }
    assert got["ack-after"][["deliveries", "crashes", "effects", "duplicates", "lost"]].tolist() == [
        1108,
        108,
        1108,
        108,
        0,
    ]
    assert got["ack-after-idempotent"][["effects", "duplicates", "dedup_hits"]].tolist() == [1000, 0, 108]
    assert got["ack-before"][["effects", "lost", "duplicates"]].tolist() == [911, 89, 0]


# ---------------------------------------------------------------------------- theory


@pytest.mark.parametrize("p", [0.05, 0.2])
def test_simulated_duplicates_and_losses_match_theory(p):
    # 200k messages: the standard deviation of the total is under 1 % of the mean for these p,
    # so a 3 % band is > 3 sigma, and the naive guess "duplicates = n p" (off by 1/(1-p), i.e.
    # 5-25 %) fails it at p = 0.2.
    n = 200_000
    dup = exactly_once.summarize_delivery(exactly_once.simulate_delivery(n, p, "ack-after", seed=3))
    lost = exactly_once.summarize_delivery(exactly_once.simulate_delivery(n, p, "ack-before", seed=4))
    assert dup["duplicates"] == pytest.approx(
        exactly_once.theory_lease_outcome(n, p, "ack-after")["duplicates"], rel=0.03
    )
    assert lost["lost"] == pytest.approx(
        exactly_once.theory_lease_outcome(n, p, "ack-before")["lost"], rel=0.03
    )
    if p == 0.2:
        assert abs(dup["duplicates"] - n * p) / (n * p) > 0.1


def test_sweep_has_theory_columns():
    sweep = exactly_once.sweep_delivery(50_000, [0.0, 0.1, 0.3], seed=1)
    assert set(sweep["mode"]) == set(exactly_once.LEASE_MODES)
    zero = sweep[sweep["p_crash"] == 0]
    assert (zero["duplicates"] == 0).all() and (zero["lost"] == 0).all()
    after = sweep[(sweep["mode"] == "ack-after") & (sweep["p_crash"] == 0.3)].iloc[0]
    assert after["duplicate_rate"] == pytest.approx(after["duplicate_rate_theory"], rel=0.05)


# ------------------------------------------------------------------------ properties


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 2000), st.floats(0.0, 0.8), st.integers(0, 10_000))
def test_idempotent_never_duplicates_and_nothing_is_lost(n, p, seed):
    summary = exactly_once.summarize_delivery(
        exactly_once.simulate_delivery(n, p, "ack-after-idempotent", seed)
    )
    assert summary["duplicates"] == 0 and summary["lost"] == 0
    assert summary["dedup_hits"] == summary["crashes"]
    before = exactly_once.summarize_delivery(exactly_once.simulate_delivery(n, p, "ack-before", seed))
    assert before["effects"] + before["lost"] == n and before["duplicates"] == 0


# --------------------------------------------------------------------------- real


@pytest.mark.real
def test_lease_queue_duplicates_equal_crashes_and_ack_before_loses_them():
    after = exactly_once.run_lease_queue(80, 0.2, "ack-after", seed=5, timeout_s=30)
    idem = exactly_once.run_lease_queue(80, 0.2, "ack-after-idempotent", seed=5, timeout_s=30)
    before = exactly_once.run_lease_queue(80, 0.2, "ack-before", seed=5, timeout_s=30)
    # With p = 0.2 over 80+ deliveries, no crash at all has probability 0.8**80 ~ 2e-8.
    assert after["crashes"] > 0 and after["duplicates"] == after["crashes"] and after["lost"] == 0
    assert idem["duplicates"] == 0 and idem["lost"] == 0 and idem["dedup_hits"] == idem["crashes"] > 0
    assert before["lost"] == before["crashes"] > 0 and before["duplicates"] == 0
    assert after["deliveries"] == 80 + after["crashes"]


@pytest.mark.real
def test_outbox_loses_nothing_and_doubles_nothing_with_dedup():
    totals, points = exactly_once.run_outbox(60, 0.1, seed=2, timeout_s=30)
    assert totals["orders"] == totals["outbox_rows"] == totals["unique_published"] == 60
    assert totals["lost"] == 0 and totals["doubled_effects"] == 0
    assert totals["published"] >= 60
    assert totals["crashes"] == points["crashes"].sum() > 0
    plain, _ = exactly_once.run_outbox(60, 0.1, seed=2, dedup=False, timeout_s=30)
    assert plain["lost"] == 0
    # Without the processed-ids table every redelivery is applied again.
    assert plain["doubled_effects"] > 0


@pytest.mark.real
def test_mail_scenarios_each_crash_point():
    table = exactly_once.run_mail_scenarios(timeout_s=30).set_index(["strategy", "crash_point"])
    assert table["order_committed"].all()
    assert table.loc[("mail-in-transaction", "after-mail-before-commit"), "ghost_mails"] == 1
    assert table.loc[("mail-in-transaction", "after-mail-before-commit"), "mails_received"] == 2
    assert bool(table.loc[("mail-after-commit", "after-commit-before-mail"), "missing_mail"])
    assert table.loc[("outbox", "after-mail-before-mark-sent"), "duplicate_mails"] == 1
    # The outbox never loses a mail; deduplicating by Message-ID at the receiver leaves exactly one.
    outbox = table.loc["outbox"]
    assert (~outbox["missing_mail"]).all() and (outbox["after_dedup_by_message_id"] == 1).all()


@pytest.mark.real
def test_worker_module_rejects_unknown_role():
    with pytest.raises(SystemExit):
        queue_worker.parse(["nonsense"])


# --------------------------------------------------------------------------- bad input


def test_bad_inputs_name_the_parameter():
    with pytest.raises(ValueError, match="mode"):
        exactly_once.simulate_delivery(10, 0.1, "exactly-once")
    with pytest.raises(ValueError, match="p_crash"):
        exactly_once.theory_lease_outcome(10, 1.0, "ack-after")
    with pytest.raises(ValueError, match="n_messages"):
        exactly_once.run_lease_queue(0)
    with pytest.raises(ValueError, match="p_crash"):
        exactly_once.run_outbox(10, 0.9)
    with pytest.raises(ValueError, match="df"):
        exactly_once.summarize_delivery(None)
