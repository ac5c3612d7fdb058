"""Tests for syslab.commit_cost: fsync, commit rates, group commit, cascades, enforcer + checker."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syslab import commit_cost as cc


def test_filesystem_type():
    assert cc.filesystem_type("/proc") == "proc"
    assert isinstance(cc.filesystem_type(), str)


def test_commit_ceiling_formula():
    assert cc.theory_commits_per_s(0.001) == pytest.approx(1_000)
    assert cc.theory_commits_per_s(0.001, fsyncs_per_commit=2) == pytest.approx(500)
    assert cc.theory_commits_per_s(0.001, group_size=8) == pytest.approx(8_000)


@pytest.mark.parametrize("clients", [1, 4, 32])
def test_group_commit_matches_ceilings(clients):
    # No think time, constant flushes: one flush makes every client durable with group
    # commit (clients / fsync), exactly one without it (1 / fsync). Exact, so 1e-9.
    grouped = cc.summarize_group_commit(cc.simulate_group_commit(clients, 0.002, n_flushes=500))
    single = cc.summarize_group_commit(cc.simulate_group_commit(clients, 0.002, group=False, n_flushes=500))
    assert grouped["commits_per_s"] == pytest.approx(
        cc.theory_commits_per_s(0.002, group_size=clients), rel=1e-9
    )
    assert single["commits_per_s"] == pytest.approx(cc.theory_commits_per_s(0.002), rel=1e-9)
    # Without group commit each client waits for the others' flushes: latency = clients x fsync
    # in steady state; the first round (all start together) waits half that, which pulls
    # the mean of 500 flushes down by up to ~3 % at 32 clients, hence 5 %.
    assert single["mean_latency_ms"] == pytest.approx(2.0 * clients, rel=0.05)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 64), st.floats(0.0, 0.05), st.integers(0, 100))
def test_group_commit_never_beats_its_ceiling(clients, think_s, seed):
    run = cc.simulate_group_commit(clients, 0.001, think_s=think_s, n_flushes=200, seed=seed)
    summary = cc.summarize_group_commit(run)
    assert summary["commits_per_s"] <= cc.theory_commits_per_s(0.001, group_size=clients) * (1 + 1e-9)
    assert (run["batch_size"] >= 1).all()


def test_group_commit_seeded_regression():
    summary = cc.summarize_group_commit(
        cc.simulate_group_commit(8, 0.001, think_s=0.004, n_flushes=1_000, seed=1)
    )
    assert summary["mean_batch"] == pytest.approx(1.598, abs=1e-12)


@pytest.mark.real
def test_fsync_and_commit_rates():
    fsync_run = cc.measure_fsync(20)
    fsync = fsync_run.frame
    assert fsync_run.summary["filesystem"] and fsync_run.summary["median_latency_s"] >= 0
    assert len(fsync) >= 1 and (fsync["latency_s"] >= 0).all()
    rates = cc.measure_commit_rates(
        n_rows=400, batch_rows=200, journal_modes=["WAL"], max_s_per_case=0.3
    ).frame
    full = rates[rates["synchronous"] == "FULL"].set_index("rows_per_tx")["rows_per_s"]
    # Qualitative on any disk, even tmpfs: 200 rows per transaction beats 1 per transaction.
    assert full.loc[200] > 2 * full.loc[1]
    assert rates.attrs["filesystem"]


@pytest.mark.real
def test_cascade_needs_the_pragma_and_an_index():
    on = cc.run_cascade(100, 300, 10, child_index=True).summary
    assert on["foreign_keys_default"] == 0  # SQLite's documented default: OFF
    assert on["children_deleted"] == 3_000 and on["orphans_left"] == 0
    assert on["rowcount"] == 10  # the driver counts the parents only
    off = cc.run_cascade(100, 300, 10, foreign_keys=False).summary
    assert off["children_deleted"] == 0 and off["orphans_left"] == 3_000
    slow = cc.run_cascade(100, 300, 10, child_index=False).summary
    # Without the index every deleted parent scans the child table: 10 scans of 30,000 rows
    # against 10 index probes. The gap is > 5x on any machine; assert 2x to stay robust.
    assert slow["seconds"] > 2 * on["seconds"]


@pytest.mark.real
def test_enforcer_checker_repairs_every_orphan():
    config = cc.EnforcerConfig(
        n_parents=10, duration_s=0.6, race_gap_s=0.002, delete_interval_s=0.002, checker_interval_s=0.1
    )
    run = cc.run_enforcer_checker(config, enforcement="application", seed=1)
    app, passes = run.summary, run.frame
    assert app["orphans_found"] > 0  # the race between check and insert does make orphans
    assert app["orphans_at_end"] == 0  # and the checker finds and repairs all of them
    assert len(passes) == app["checker_passes"]
    fk = cc.run_enforcer_checker(config, enforcement="foreign_key", seed=1).summary
    assert fk["orphans_found"] == 0 and fk["orphans_at_end"] == 0


@pytest.mark.real
def test_fk_insert_cost_table():
    table = cc.measure_fk_insert_cost(1_000, n_parents=100, batch_rows=500).frame
    assert list(table["method"]) == ["no check", "FOREIGN KEY", "application check"]
    assert table["relative"].iloc[0] == 1.0 and (table["rows_per_s"] > 0).all()


def test_bad_input():
    with pytest.raises(ValueError, match="fsync_s"):
        cc.theory_commits_per_s(0)
    with pytest.raises(ValueError, match="n_clients"):
        cc.simulate_group_commit(0, 0.001)
    with pytest.raises(ValueError, match="journal_modes"):
        cc.measure_commit_rates(journal_modes=["WALL"])
    with pytest.raises(ValueError, match="n_delete"):
        cc.run_cascade(10, 10, 11)
    with pytest.raises(ValueError, match="race_gap_s"):
        cc.EnforcerConfig(race_gap_s=-1)
    with pytest.raises(ValueError, match="enforcement"):
        cc.run_enforcer_checker(enforcement="trust")
    with pytest.raises(ValueError, match="df"):
        cc.summarize_group_commit(pd.DataFrame())


def _engine(name):
    from syslab import engines

    engine = engines.find(name)
    if engine is None:
        pytest.skip(f"{name} not available: {engines.unavailable_reason(name)}")
    return engine


@pytest.mark.real
def test_postgres_cascade_is_slower_without_the_child_index():
    engine = _engine("postgres")
    knobs = dict(n_parents=200, children_per_parent=1_000, n_delete=20)
    with_index = cc.run_engine_cascade(engine, child_index=True, **knobs)
    without = cc.run_engine_cascade(engine, child_index=False, **knobs)
    for run in (with_index, without):
        assert run.summary["children_deleted"] == 20 * 1_000 and run.summary["rowcount"] == 20
    assert not without.summary["index_created_by_engine"]
    # Each deleted parent scans all 200,000 child rows without the index (about 10x the indexed time
    # when measured on a quiet machine); 2x leaves room for a busy one.
    assert without.summary["delete_ms"] > 2 * with_index.summary["delete_ms"]


@pytest.mark.real
def test_innodb_creates_the_foreign_key_index_and_locks_every_cascaded_row():
    engine = _engine("mariadb")
    run = cc.run_engine_cascade(engine, n_parents=30, children_per_parent=100, n_delete=5, child_index=False)
    assert run.summary["index_created_by_engine"]
    assert run.summary["children_deleted"] == 500
    assert run.summary["rows_locked"] >= 500


def test_engine_cascade_rejects_bad_input():
    with pytest.raises(TypeError, match="engine"):
        cc.run_engine_cascade(object())
    values = cc.summarize_engine_cascades(pd.DataFrame())
    assert values["cascade_maria_auto_index"] == "not measured"


def test_bad_input_reproducers():
    for call, name in [
        (lambda: cc.measure_commit_rates(n_rows=10**7, max_s_per_case=1e12), "n_rows"),
        (lambda: cc.measure_commit_rates(max_s_per_case=1e12), "max_s_per_case"),
        (lambda: cc.run_cascade(20, 10, 5, child_index="no"), "child_index"),
        (lambda: cc.run_cascade(20, 10, 5, foreign_keys="no"), "foreign_keys"),
        (lambda: cc.plot_cascade(pd.DataFrame()), "sweep"),
        (lambda: cc.plot_group_commit(pd.DataFrame()), "sweep"),
        (lambda: cc.sweep_group_commit([10**12, 4], 0.001, n_flushes=200), "clients"),
    ]:
        with pytest.raises((TypeError, ValueError), match=name):
            call()
