"""Tests for syslab.lock_manager: the FIFO row lock, the hot-parent model and its theory."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syslab import lock_manager as lm
from syslab.queueing import kingman_queue_delay_s


@pytest.mark.parametrize(("engine", "fifo"), [("innodb", None), ("postgresql", None), ("postgresql", True)])
def test_fast_recursion_equals_simpy(engine, fifo):
    config = lm.HotParentConfig(write_rate_per_s=3_000, engine=engine)
    fast = lm.simulate_hot_parent(config, n_requests=4_000, fifo=fifo, seed=3)
    slow = lm.simulate_hot_parent(config, n_requests=4_000, fifo=fifo, seed=3, engine="simpy")
    np.testing.assert_allclose(fast["granted_s"], slow["granted_s"], rtol=0, atol=1e-12)


def test_seeded_regression():
    summary = lm.summarize_hot_parent(lm.simulate_hot_parent(lm.HotParentConfig(), n_requests=5_000, seed=1))
    assert summary["child_waited"] == pytest.approx(0.1512567325, abs=1e-9)
    assert summary["child_p99_ms"] == pytest.approx(24.7725194029, abs=1e-8)


def test_shared_locks_never_wait_for_each_other():
    # Without parent updates, 10,000 child writes a second (50 holders at once) never wait.
    # A model that queued S behind S would make most of them wait.
    config = lm.HotParentConfig(write_rate_per_s=10_000, parent_update_share=0.0)
    df = lm.simulate_hot_parent(config, n_requests=20_000, seed=0)
    assert (df["wait_s"] == 0).all()


def test_postgresql_parent_updates_are_an_mg1_queue():
    # FOR NO KEY UPDATE is compatible with FOR KEY SHARE: children never wait, and parent
    # updates queue only behind each other -- an M/M/1 queue at rho = 250 x 0.002 = 0.5,
    # whose mean wait is Pollaczek-Khinchine (Kingman with ca = 1 is exact): 2 ms.
    # 40,000 updates give a standard error of ~3 %; 10 % fails a model that lets KEY SHARE
    # block (waits several times larger) or forgets the queue (0).
    config = lm.HotParentConfig(write_rate_per_s=1_000, parent_update_share=0.25, engine="postgresql")
    df = lm.simulate_hot_parent(config, n_requests=200_000, seed=2)
    assert (df.loc[df["kind"] == "child", "wait_s"] == 0).all()
    theory = kingman_queue_delay_s(250, 0.002, 1.0, 1.0)
    assert df.loc[df["kind"] == "parent", "wait_s"].mean() == pytest.approx(theory, rel=0.10)


@pytest.mark.parametrize("rate", [500, 5_000])
def test_exclusive_waits_for_the_slowest_shared_holder(rate):
    # Rare parent updates (one per 2,000 writes) wait for the largest residual hold of the
    # children present: h * Ein(lambda h). ~200 samples with sd ~ 1.3 h: 12 % is > 3 standard
    # errors, and a model that waited only one mean residual (h) would be off by 2-4x.
    config = lm.HotParentConfig(write_rate_per_s=rate, parent_update_share=0.0005)
    df = lm.simulate_hot_parent(config, n_requests=400_000, seed=4)
    waits = df.loc[df["kind"] == "parent", "wait_s"]
    assert waits.mean() == pytest.approx(lm.theory_drain_wait_s(rate, config.child_hold_s), rel=0.12)


def test_drain_theory_limits():
    h = 0.005
    assert lm.theory_drain_wait_s(0, h) == 0.0
    assert lm.theory_drain_wait_s(1e-3 / h, h) == pytest.approx(1e-3 * h, rel=0.01)  # ~ a h for small a
    big = lm.theory_drain_wait_s(1_000 / h, h)  # a = 1000: h (ln a + Euler gamma)
    assert big == pytest.approx(h * (np.log(1_000) + 0.5772156649), rel=1e-3)


def test_cliff_separates_stable_from_unstable():
    config = lm.HotParentConfig()
    cliff = lm.theory_cliff_rate_per_s(config)
    assert 3_000 < cliff < 7_000
    below = lm.simulate_hot_parent(
        lm.HotParentConfig(write_rate_per_s=0.5 * cliff), n_requests=30_000, seed=5
    )
    above = lm.simulate_hot_parent(
        lm.HotParentConfig(write_rate_per_s=1.5 * cliff), n_requests=30_000, seed=5
    )
    assert above["wait_s"].mean() > 20 * below["wait_s"].mean()
    # Past the cliff the waits keep growing: the second half waits longer than the first.
    half = len(above) // 2
    assert above["wait_s"].iloc[half:].mean() > 1.5 * above["wait_s"].iloc[:half].mean()
    assert lm.theory_cliff_rate_per_s(lm.HotParentConfig(engine="postgresql")) == float("inf")


@settings(max_examples=25, deadline=None)
@given(
    rate=st.floats(10, 20_000),
    share=st.floats(0, 0.5),
    engine=st.sampled_from(["innodb", "postgresql", "postgresql-key-update"]),
    seed=st.integers(0, 1_000),
)
def test_lock_invariants(rate, share, engine, seed):
    config = lm.HotParentConfig(write_rate_per_s=rate, parent_update_share=share, engine=engine)
    df = lm.simulate_hot_parent(config, n_requests=300, seed=seed)
    assert (df["wait_s"] >= 0).all()
    if lm.ENGINE_FIFO[engine]:
        assert df["granted_s"].is_monotonic_increasing  # strict FIFO grants in arrival order
    # No two conflicting requests ever hold the lock at the same time.
    rows = df.sort_values("granted_s", kind="stable").to_dict("records")
    for i, a in enumerate(rows):
        for b in rows[i + 1 :]:
            if b["granted_s"] >= a["released_s"]:
                break
            assert (a["mode"], b["mode"]) not in lm.CONFLICTS


def test_sweep_and_bad_input():
    sweep = lm.sweep_write_rates([100, 1_000], n_requests=2_000)
    assert list(sweep["write_rate_per_s"]) == [100, 1_000]
    assert sweep["child_p99_ms"].iloc[1] >= sweep["child_p99_ms"].iloc[0]
    with pytest.raises(ValueError, match="write_rate_per_s"):
        lm.HotParentConfig(write_rate_per_s=0)
    with pytest.raises(ValueError, match="engine"):
        lm.HotParentConfig(engine="oracle")
    with pytest.raises(ValueError, match="n_requests"):
        lm.simulate_hot_parent(lm.HotParentConfig(), n_requests=0)
    with pytest.raises(TypeError, match="fifo"):
        lm.simulate_hot_parent(lm.HotParentConfig(), fifo="yes")
    with pytest.raises(ValueError, match="df"):
        lm.summarize_hot_parent(pd.DataFrame())
    with pytest.raises(ValueError, match="rates_per_s"):
        lm.sweep_write_rates([])


# ----------------------------------------------------------------------------- the real engines


def _engine(name):
    from syslab import engines

    engine = engines.find(name)
    if engine is None:
        pytest.skip(f"{name} not available: {engines.unavailable_reason(name)}")
    return engine


@pytest.mark.real
def test_innodb_children_wait_only_when_the_parent_is_updated():
    engine = _engine("mariadb")
    knobs = dict(write_rate_per_s=300, n_clients=4, duration_s=1.0, seed=1)
    quiet = lm.run_hot_parent(engine, parent_update_share=0.0, **knobs)
    busy = lm.run_hot_parent(engine, parent_update_share=0.1, **knobs)
    # Shared locks from FK checks never wait for each other; an X on the parent makes children wait.
    assert quiet.summary["row_lock_waits"] == 0
    assert busy.summary["row_lock_waits"] > 0
    assert quiet.frame["ok"].all() and busy.frame["ok"].all()
    assert (quiet.frame["kind"] == "child").sum() > 100
    # The model at the same parameters also says children wait (share > 0) and never wait (share = 0).
    config = lm.HotParentConfig(write_rate_per_s=300, parent_update_share=0.1)
    assert lm.summarize_hot_parent(lm.simulate_hot_parent(config, n_requests=5_000))["child_waited"] > 0
    assert lm.lock_scheduling(engine)["lock_schedule_variable"] == "absent"


@pytest.mark.real
def test_postgres_children_do_not_queue_behind_non_key_updates_but_make_multixacts():
    engine = _engine("postgres")
    knobs = dict(write_rate_per_s=300, n_clients=4, duration_s=1.0, seed=1, parent_update_share=0.1)
    update = lm.run_hot_parent(engine, parent_lock="update", **knobs)
    locked = lm.run_hot_parent(engine, parent_lock="for_update", **knobs)
    # FOR KEY SHARE vs FOR NO KEY UPDATE: no heavyweight waits for children; concurrent lockers -> MultiXacts.
    assert update.summary["multixacts"] > 0
    # FOR UPDATE conflicts with KEY SHARE: the parent's tail waits far longer (medians of many statements).
    assert locked.summary["parent_p99_ms"] > 3 * update.summary["parent_p99_ms"]
    table = lm.summarize_engine_hot_parent([update, locked])
    assert list(table["parent_lock"]) == ["update", "for_update"]


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: lm.run_hot_parent(object()), "engine"),
        (lambda: lm.plot_share_curves(pd.DataFrame()), "curves"),
        (lambda: lm.summarize_engine_hot_parent("x"), "runs"),
        (lambda: lm.check_drain("config"), "config"),
    ],
)
def test_engine_helpers_reject_bad_input(call, name):
    with pytest.raises((TypeError, ValueError), match=name):
        call()


def test_bad_input_reproducers():
    sweep = pd.DataFrame({"write_rate_per_s": [1.0], "child_p99_ms": [1.0], "child_mean_ms": [1.0]})
    import simpy

    for call, name in [
        (lambda: lm.plot_latency_vs_rate(sweep, cliff_rate_per_s=-1.0), "cliff_rate_per_s"),
        (lambda: lm.plot_latency_vs_rate(sweep, cliff_rate_per_s=float("nan")), "cliff_rate_per_s"),
        (lambda: lm.plot_latency_vs_rate(sweep, cliff_rate_per_s="1.0"), "cliff_rate_per_s"),
        (lambda: lm.sweep_write_rates(None), "rates_per_s"),
        (lambda: lm.sweep_write_rates(5.0), "rates_per_s"),
        (lambda: lm.RowLock(None), "env"),
        (lambda: lm.RowLock(simpy.Environment(), fifo="no"), "fifo"),
        (
            lambda: lm.summarize_hot_parent(
                pd.DataFrame({"kind": ["child"], "wait_s": [np.nan], "arrival_s": [0.0], "released_s": [1.0]})
            ),
            "df",
        ),
    ]:
        with pytest.raises((TypeError, ValueError), match=name):
            call()
