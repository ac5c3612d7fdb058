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
    run = ie.run_sqlite_wall(3)
    df, env = run.frame, run.environment
    assert env["sqlite"] and run.summary["sqlite"] == env["sqlite"]
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


# ------------------------------------------------------------- bad input (issue 20 reproducers)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: ie.theory_ids_per_statement(max_rows=10**12), "max_rows"),
        (
            lambda: ie.plot_runway(ie.project_id_usage(1, 1.0, horizon_days=5), alert_fraction=-0.1),
            "alert_fraction",
        ),
        (
            lambda: ie.plot_runway(ie.project_id_usage(1, 1.0, horizon_days=5), alert_fraction=float("nan")),
            "alert_fraction",
        ),
        (lambda: ie.plot_runway(pd.DataFrame(), 0.7), "projection"),
        (lambda: ie.plot_alert_sweep(pd.DataFrame()), "sweep"),
        (lambda: ie.sweep_alert_runway(10**9, 1e6, None, [0.7]), "daily_growths"),
        (lambda: ie.sweep_alert_runway(10**9, 1e6, 0.0, [0.7]), "daily_growths"),
        (lambda: ie.sweep_alert_runway(10**9, 1e6, [float("nan")], [0.7]), "daily_growths"),
        (lambda: ie.sweep_alert_runway(10**9, 1e6, [0.0], 0.5), "alert_fractions"),
        (lambda: ie.sweep_alert_runway(10**9, 1e6, [0.0], [2.0]), "alert_fractions"),
        (lambda: ie.simulate_counter_inserts(1, 5, table=None), "table"),
        (lambda: ie.simulate_counter_inserts(1, 5, column=5), "column"),
        (lambda: ie.run_engine_wall(object()), "engine"),
        (lambda: ie.measure_burned_ids("postgres"), "engine"),
    ],
)
def test_bad_input_names_the_parameter(call, name):
    with pytest.raises((ValueError, TypeError), match=name):
        call()


# ------------------------------------------------------------- the real engines


def _engine(name):
    from syslab import engines

    engine = engines.find(name)
    if engine is None:
        pytest.skip(f"{name} not available: {engines.unavailable_reason(name)}")
    return engine


@pytest.mark.real
def test_mariadb_wall_errors_match_the_model():
    engine = _engine("mariadb")
    run = ie.run_engine_wall(engine, n_inserts=3)
    frame = run.frame
    strict = frame[frame["case"] == "INT AUTO_INCREMENT, strict"]
    # Two rows fit below the top, the third is refused with 167 / 22003 -- what the model says.
    assert strict["stored"].tolist() == [True, True, False]
    assert strict["id"].iloc[1] == ie.INT_MAX
    model = ie.simulate_counter_inserts(ie.INT_MAX, 2, engine="mariadb")
    assert int(strict["errno"].iloc[2]) == int(model["error_code"].iloc[1]) == 167
    assert strict["sqlstate"].iloc[2] == model["sqlstate"].iloc[1] == "22003"
    # sql_mode does not change the generated-key error; INT UNSIGNED fails the same way at 2^32 - 1.
    for case in ["INT AUTO_INCREMENT, not strict", "INT UNSIGNED AUTO_INCREMENT, strict"]:
        assert int(frame[(frame["case"] == case) & ~frame["stored"]]["errno"].iloc[0]) == 167
    assert frame[frame["case"] == "INT UNSIGNED AUTO_INCREMENT, strict"]["id"].iloc[1] == 2**32 - 1
    # INSERT IGNORE: no error, nothing stored.
    ignore = frame[frame["case"] == "INT, INSERT IGNORE at the top, strict"].iloc[2]
    assert ignore["ok"] and not ignore["stored"] and int(ignore["errno"]) == 167
    # An explicit id past the top outside strict mode is clamped and then collides: MySQL's 1062.
    clamp = frame[frame["case"] == "INT, explicit id past the top, not strict"]
    assert clamp["id"].iloc[0] == ie.INT_MAX
    assert int(clamp["errno"].iloc[1]) == 1062 and clamp["sqlstate"].iloc[1] == "23000"
    assert run.environment["engine"] == engine.label


@pytest.mark.real
def test_postgres_wall_errors_match_the_model():
    engine = _engine("postgres")
    frame = ie.run_engine_wall(engine, n_inserts=3).frame
    for case, sqlstate in [
        ("serial", "2200H"),
        ("integer identity", "2200H"),
        ("integer column fed by a bigint sequence", "22003"),
    ]:
        part = frame[frame["case"] == case]
        assert part["stored"].tolist() == [True, True, False], case
        assert part["sqlstate"].iloc[2] == sqlstate, case
    model = ie.simulate_counter_inserts(ie.INT_MAX, 2, engine="postgresql")
    assert model["sqlstate"].iloc[1] == "2200H"
    restarted = frame[frame["case"] == "serial, restarted at -2147483648"]
    assert restarted["stored"].all() and restarted["id"].iloc[0] == -(2**31)


@pytest.mark.real
def test_mariadb_burns_ids_as_the_model_says():
    engine = _engine("mariadb")
    run = ie.measure_burned_ids(engine, n_statements=5, bulk_rows=(33, 300))
    frame = run.frame.set_index("kind")
    assert run.summary["innodb_autoinc_lock_mode"] in (0, 1, 2)
    for kind in ["ignore_dup", "upsert_hit", "rollback"]:
        assert frame.loc[kind, "rows_stored"] == 0 and frame.loc[kind, "ids_consumed"] == 5, kind
    # The bulk reservation doubling: 33 rows take 63 ids, 300 take 511. A model without it (1 id a row) fails.
    assert (
        frame.loc["bulk 33 rows", "ids_consumed"]
        == 63
        == int(np.asarray(ie.bulk_reserved_ids(33)).ravel()[0])
    )
    assert frame.loc["bulk 300 rows", "ids_consumed"] == 511


@pytest.mark.real
def test_postgres_burns_one_value_per_attempt():
    engine = _engine("postgres")
    frame = ie.measure_burned_ids(engine, n_statements=5, bulk_rows=(300,)).frame.set_index("kind")
    assert frame.loc["upsert_hit", "ids_burned"] == 5 and frame.loc["ignore_dup", "ids_burned"] == 5
    assert frame.loc["bulk 300 rows", "ids_consumed"] == 300
