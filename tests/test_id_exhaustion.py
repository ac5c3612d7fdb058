"""Tests for syslab.id_exhaustion: limits, the engines' counters, burn rate, runway, real SQLite."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syslab import id_exhaustion as ie

# ---------------------------------------------------------------- limits


def test_integer_limits_are_exact():
    limits = ie.integer_limits().set_index("type")["max_value"]
    assert limits["INT"] == 2_147_483_647
    assert limits["INT UNSIGNED"] == 4_294_967_295
    assert limits["BIGINT"] == 9_223_372_036_854_775_807
    assert limits["TINYINT"] == 127 and limits["SMALLINT UNSIGNED"] == 65_535
    assert ie.integer_limits().set_index("type").loc["INT", "min_value"] == -2_147_483_648


# ---------------------------------------------------------------- engines


def test_mysql_counter_pins_and_collides_with_1062():
    df = ie.simulate_counter_inserts(ie.INT_MAX - 2, 6, engine="mysql")
    assert df["stored"].tolist() == [True, True, True, False, False, False]
    # The failing inserts are handed the maximum again: the "duplicate" nobody inserted twice.
    assert (df.loc[~df["stored"], "value"] == ie.INT_MAX).all()
    assert (df["counter_after"].iloc[2:] == ie.INT_MAX).all()  # SHOW CREATE TABLE stays at max
    assert set(df.loc[~df["stored"], "error_code"]) == {1062}
    assert set(df.loc[~df["stored"], "sqlstate"]) == {"23000"}
    assert "Duplicate entry '2147483647'" in df["message"].iloc[3]


def test_insert_ignore_drops_rows_silently():
    df = ie.simulate_counter_inserts(ie.INT_MAX, 4, engine="mysql", insert_ignore=True)
    assert df["stored"].sum() == 1
    assert set(df.loc[~df["stored"], "severity"]) == {"warning"}


def test_mariadb_postgresql_errors():
    maria = ie.simulate_counter_inserts(ie.INT_MAX, 3, engine="mariadb")
    assert maria["error_code"].tolist() == [0, 167, 167]
    assert set(maria["sqlstate"].iloc[1:]) == {"22003"}
    pg = ie.simulate_counter_inserts(ie.INT_MAX - 1, 4, engine="postgresql")
    assert pg["stored"].tolist() == [True, True, False, False]
    assert pg["sqlstate"].iloc[2] == "2200H"
    assert 'sequence "t_id_seq" (2147483647)' in pg["message"].iloc[2]
    old = ie.simulate_counter_inserts(ie.INT_MAX, 3, engine="postgresql-pre10")
    assert old["message"].iloc[1] == "integer out of range"
    assert old["counter_after"].iloc[-1] == ie.INT_MAX + 3  # the bigint sequence keeps counting


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(["TINYINT", "SMALLINT UNSIGNED", "INT", "BIGINT"]),
    st.integers(1, 40),
    st.sampled_from(["mysql", "mariadb", "postgresql"]),
)
def test_every_engine_stores_exactly_the_values_up_to_max(column_type, n, engine):
    top = int(ie.integer_limits().set_index("type").loc[column_type, "max_value"])
    start = max(1, top - 10)
    df = ie.simulate_counter_inserts(start, n, engine=engine, column_type=column_type)
    stored = df.loc[df["stored"], "value"]
    # Property: no engine ever stores a value twice or past the maximum, and each
    # stores every value from start up to the maximum before it fails.
    assert stored.is_unique and stored.max() <= top
    assert len(stored) == min(n, top - start + 1)


# ---------------------------------------------------------------- burn rate


def test_bulk_reservation_doubles_then_caps():
    got = ie.bulk_reserved_ids(np.array([1, 2, 3, 4, 8, 65_535, 65_536, 131_071]))
    assert got.tolist() == [1, 3, 3, 7, 15, 65_535, 131_070, 196_605]


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 10**7))
def test_bulk_reservation_bounds(n):
    reserved = int(ie.bulk_reserved_ids(n)[0])
    # Never fewer than the rows; never more than double (doubling phase) or one cap of slack.
    assert n <= reserved <= max(2 * n, n + 65_535)


def test_burn_regression_and_theory():
    df = ie.simulate_id_burn(200_000, seed=1)
    table = ie.summarize_burn(df)
    assert int(table.loc["total", "statements"]) == 200_000
    assert int(table.loc["total", "ids_consumed"]) == 302_376  # seeded regression value
    theory = ie.theory_ids_per_statement()
    # 2e5 statements: the plain/rollback/upsert parts have sd ~ 0.001 per statement, but
    # 200 bulk statements (geometric rows, mean 300) add sd ~ 0.014; 5% is > 3 sd and a
    # model that forgot bulk over-reservation (ids_per_row ~ 1.30) fails it.
    assert table.loc["total", "ids_per_row"] == pytest.approx(theory["ids_per_row"], rel=0.05)


def test_burn_without_waste_is_one_id_per_row():
    mix = ie.BurnMix(rollback=0, upsert_hit=0, ignore_dup=0, bulk=0)
    table = ie.summarize_burn(ie.simulate_id_burn(10_000, mix, seed=0))
    assert table.loc["total", "ids_per_row"] == 1.0
    assert ie.theory_ids_per_statement(mix)["ids_per_row"] == 1.0


# ---------------------------------------------------------------- runway


def test_runway_projection_matches_closed_form():
    # Daily steps vs continuous growth differ by under one day's burn; 1 day of tolerance.
    for growth in (0.0, 0.002, 0.01):
        proj = ie.project_id_usage(1_000_000_000, 3e6, daily_growth=growth, horizon_days=2000)
        for fraction in (0.7, 1.0):
            simulated = int((proj["value"] < fraction * ie.INT_MAX).sum())
            assert simulated == pytest.approx(
                ie.theory_days_until(fraction, 1_000_000_000, 3e6, daily_growth=growth), abs=1.5
            )


def test_runway_constant_rate_exact():
    assert ie.theory_days_until(1.0, 0, 1e6, max_value=10**8) == 100.0
    assert ie.theory_days_until(0.5, 10**8, 1e6, max_value=10**8) == 0.0
    assert math.isclose(ie.theory_days_until(0.7, 0, 1e6, max_value=10**8), 70.0)


def test_alert_sweep_runway_shrinks_with_growth():
    sweep = ie.sweep_alert_runway(1_000_000_000, 3e6, [0.0, 0.005, 0.02], [0.7])
    runway = sweep["runway_at_alert_days"].to_numpy()
    assert runway[0] == pytest.approx(0.3 * ie.INT_MAX / 3e6)  # constant rate: 30% of the range
    assert np.all(np.diff(runway) < 0)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: ie.simulate_counter_inserts(0, 5), "start_value"),
        (lambda: ie.simulate_counter_inserts(ie.INT_MAX + 1, 5), "start_value"),
        (lambda: ie.simulate_counter_inserts(1, 0), "n_inserts"),
        (lambda: ie.simulate_counter_inserts(1, 5, engine="oracle"), "engine"),
        (lambda: ie.simulate_counter_inserts(1, 5, column_type="INTEGER"), "column_type"),
        (lambda: ie.simulate_counter_inserts(1, 5, engine="postgresql", insert_ignore=True), "insert_ignore"),
        (lambda: ie.BurnMix(rollback=0.9, upsert_hit=0.2), "rollback"),
        (lambda: ie.BurnMix(bulk_mean_rows=0.5), "bulk_mean_rows"),
        (lambda: ie.simulate_id_burn(0), "n_statements"),
        (lambda: ie.project_id_usage(1, -1.0), "ids_per_day"),
        (lambda: ie.theory_days_until(1.5, 1, 1.0), "fraction"),
        (lambda: ie.bulk_reserved_ids(0), "rows"),
        (lambda: ie.summarize_burn(pd.DataFrame()), "df"),
        (lambda: ie.run_sqlite_wall(0), "n_after_max"),
    ],
)
def test_bad_input(call, name):
    with pytest.raises(ValueError, match=name):
        call()


# ---------------------------------------------------------------- real SQLite


@pytest.mark.real
def test_sqlite_wall():
    df, env = ie.run_sqlite_wall(3)
    assert env["sqlite"]
    auto = df[df["scenario"] == "autoincrement"]
    assert auto["outcome"].tolist() == ["ok", "error", "error", "error"]
    assert "full" in auto["message"].iloc[1]
    rowid = df[df["scenario"] == "rowid"]
    assert (rowid["outcome"] == "ok").all()
    picked = [int(v) for v in rowid["rowid"].iloc[1:]]
    assert len(set(picked)) == len(picked) and all(0 < v < ie.SQLITE_INT64_MAX for v in picked)
    check = df[df["scenario"] == "int32 check"]
    assert check["outcome"].tolist() == ["ok", "ok", "error", "error"]
    assert int(check["rowid"].iloc[1]) == ie.INT_MAX
    assert "CHECK" in check["message"].iloc[2]
    assert "real" in df[df["scenario"] == "arithmetic"]["message"].iloc[0]
