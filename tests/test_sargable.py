"""Tests for syslab.sargable: the dashboard generator, the plans of each pattern, the cost model."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syslab import sargable
from syslab.sqlite_tools import temporary_database

SMALL = sargable.DashboardConfig(n_matches=20_000, n_players=4_000, days=60, n_clans=200)


@pytest.fixture(scope="module")
def dashboard():
    with temporary_database() as (conn, _path):
        info = sargable.build_dashboard(conn, SMALL, seed=7)
        params = sargable.dashboard_parameters(conn, SMALL)
        yield conn, info, params


# ----------------------------------------------------------------------------- (a) exact seeded values


def test_build_is_seeded_and_counts_rows(dashboard):
    conn, info, params = dashboard
    assert info["players"] == 4_000 and info["matches"] == 20_000
    assert conn.execute("SELECT count(*) FROM matches").fetchone()[0] == 20_000
    # Regression values for seed 7 (change only on purpose, with the chapter).
    assert params["day"] == "2024-01-31" and params["next_day"] == "2024-02-01"
    assert params["player_id"] == 2_000
    assert params["email"] == conn.execute("SELECT email FROM players WHERE id = 2000").fetchone()[0]
    assert params["email"].startswith("player2000@clan") and params["email"] == params["email"].lower()


def test_same_seed_same_data():
    with temporary_database() as (a, _), temporary_database() as (b, _):
        config = sargable.DashboardConfig(n_matches=2_000, n_players=500, days=10, n_clans=20)
        sargable.build_dashboard(a, config, seed=3)
        sargable.build_dashboard(b, config, seed=3)
        query = "SELECT group_concat(name || email || tag) FROM players"
        assert a.execute(query).fetchone() == b.execute(query).fetchone()
        query = "SELECT sum(score), min(played_at), max(played_at) FROM matches"
        assert a.execute(query).fetchone() == b.execute(query).fetchone()


def test_generated_data_has_the_shapes_the_patterns_need(dashboard):
    conn, _info, _params = dashboard
    styles = conn.execute(
        "SELECT sum(name = lower(name)), sum(name = upper(name)), count(*) FROM players"
    ).fetchone()
    # 20% lower and 10% upper by construction; binomial spread at n=4000 is ~1 percentage point.
    assert 0.17 < styles[0] / styles[2] < 0.23 and 0.08 < styles[1] / styles[2] < 0.12
    ordered = [row[0] for row in conn.execute("SELECT played_at FROM matches ORDER BY id LIMIT 500")]
    assert ordered == sorted(ordered)  # matches arrive in time order, like an append-only log


# ----------------------------------------------------------------------------- (b) the plans SQLite chooses


@pytest.mark.real
def test_every_pattern_has_the_documented_plan_and_same_answer():
    with temporary_database() as (conn, _path):
        sargable.build_dashboard(conn, SMALL, seed=7)
        params = sargable.dashboard_parameters(conn, SMALL)
        runs = sargable.run_patterns(conn, params, repeats=1, max_total_s=0.5).frame.set_index("pattern")
    scans_before = {
        "date_function",
        "lower_function",
        "arithmetic",
        "leading_wildcard",
        "prefix_like",
        "cast_on_column",
        "negation",
        "expression_index",
        "generated_column",
    }
    for key, row in runs.iterrows():
        assert row["index_after"], f"{key}: the rewrite must SEARCH, plan was {row['plan_after']}"
        assert row["index_before"] == (key not in scans_before), f"{key}: {row['plan_before']}"
    assert runs.loc["or_columns", "plan_before"].startswith("MULTI-INDEX OR")
    # Every rewrite returns the same rows, except GLOB, which is case-sensitive by design.
    same = runs.drop(index="prefix_like")
    assert (same["rows_before"] == same["rows_after"]).all()
    assert runs.loc["prefix_like", "rows_after"] <= runs.loc["prefix_like", "rows_before"]
    # Qualitative on any machine: a point lookup beats a scan of 20,000 rows (medians of 3 runs each).
    with temporary_database() as (conn, _path):
        sargable.build_dashboard(conn, SMALL, seed=7)
        cast = sargable.run_pattern(
            conn, sargable.PATTERNS[6], sargable.dashboard_parameters(conn, SMALL), repeats=3, max_total_s=2.0
        ).summary
    assert cast["pattern"] == "cast_on_column" and cast["speedup"] > 3
    table = sargable.summarize_patterns(runs.reset_index())
    assert list(table["plan after"].unique()) == ["SEARCH"]


@pytest.mark.real
def test_patterns_can_run_twice_on_one_database():
    with temporary_database() as (conn, _path):
        config = sargable.DashboardConfig(n_matches=2_000, n_players=500, days=10, n_clans=20)
        sargable.build_dashboard(conn, config, seed=1)
        params = sargable.dashboard_parameters(conn, config)
        setups = [p for p in sargable.PATTERNS if p.setup]
        first = sargable.run_patterns(conn, params, setups, repeats=1).frame
        second = sargable.run_patterns(conn, params, setups, repeats=1).frame
        assert first["index_after"].all() and second["index_after"].all()


@pytest.mark.real
def test_selectivity_sweep_narrow_range_prefers_the_index(dashboard):
    conn, _info, _params = dashboard
    sweep = sargable.sweep_selectivity(conn, [1, 60], SMALL, repeats=3, max_total_s=0.5)
    assert sweep["plan_scan"].str.startswith("SCAN").all()
    assert sweep["plan_search"].str.startswith("SEARCH").all()
    assert sweep.loc[1, "fraction"] == pytest.approx(1.0)
    assert sweep.loc[0, "ms_search"] < sweep.loc[0, "ms_scan"]


def test_fit_crossover_recovers_the_lines():
    # Exact lines in, exact parameters out: a wrong slope or intercept shows up at 1e-9.
    rows = np.array([1e3, 1e4, 1e5, 5e5, 1e6])
    sweep = pd.DataFrame(
        {
            "rows": rows,
            "fraction": rows / 1e6,
            "ms_scan": 100 + 0.01e-3 * rows,
            "ms_search": 0.2 + 0.25e-3 * rows,
        }
    )
    fit = sargable.fit_crossover(sweep)
    assert fit["scan_ms"] == pytest.approx(100, abs=1e-9)
    assert fit["search_us_per_row"] == pytest.approx(0.25, abs=1e-9)
    assert fit["crossover_rows"] == pytest.approx((100 - 0.2) / (0.25e-3 - 0.01e-3), rel=1e-9)
    assert fit["crossover_fraction"] == pytest.approx(fit["crossover_rows"] / 1e6, rel=1e-9)


# ----------------------------------------------------------------------------- (c) properties of the leaf map


@settings(max_examples=60, deadline=None)
@given(
    hits=st.lists(st.booleans(), min_size=1, max_size=200),
    per_leaf=st.integers(min_value=1, max_value=12),
    uses_index=st.booleans(),
)
def test_leaf_map_reads_every_leaf_with_a_match(hits, per_leaf, uses_index):
    keys = [f"k{i:04d}" for i in range(len(hits))]
    leaves = sargable.index_leaf_map(keys, hits, keys_per_leaf=per_leaf, uses_index=uses_index)
    assert len(leaves) == -(-len(keys) // per_leaf)
    assert leaves["n_matches"].sum() == sum(hits)
    assert leaves.loc[leaves["n_matches"] > 0, "read"].all()
    read = np.flatnonzero(leaves["read"].to_numpy())
    if uses_index:
        assert (np.diff(read) == 1).all()  # a range scan walks adjacent leaves only
    else:
        assert len(read) == len(leaves)


def test_index_sample_keeps_matches_and_order(dashboard):
    conn, _info, params = dashboard
    sample = sargable.index_sample(conn, "players", "name", "name GLOB :prefix_glob", params, n_keys=60)
    assert sample["key"].tolist() == sorted(sample["key"])
    assert sample["match"].any() and sample.attrs["uses_index"]
    scan = sargable.index_sample(conn, "players", "name", "name LIKE :prefix_like", params, n_keys=60)
    assert not scan.attrs["uses_index"]


def test_mysql_notes_are_sourced():
    table = sargable.mysql_notes()
    assert {"case", "mysql", "source"} <= set(table.columns)
    assert table["source"].str.len().gt(0).all()


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n_matches": 0}, "n_matches"),
        ({"days": -1}, "days"),
        ({"start_date": "soon"}, "start_date"),
        ({"n_clans": 1.5}, "n_clans"),
        ({"cache_mib": 0}, "cache_mib"),
    ],
)
def test_bad_config(kwargs, name):
    with pytest.raises((ValueError, TypeError), match=name):
        sargable.DashboardConfig(**kwargs)


def test_bad_inputs(dashboard):
    conn, _info, params = dashboard
    with pytest.raises(TypeError, match="conn"):
        sargable.build_dashboard("db.sqlite")
    with pytest.raises(ValueError, match="repeats"):
        sargable.run_pattern(conn, sargable.PATTERNS[0], params, repeats=0)
    with pytest.raises(TypeError, match="pattern"):
        sargable.run_pattern(conn, "date_function", params)
    with pytest.raises(ValueError, match="keys_per_leaf"):
        sargable.index_leaf_map(["a", "b"], [True, False], keys_per_leaf=0, uses_index=True)
    with pytest.raises(ValueError, match="sorted"):
        sargable.index_leaf_map(["b", "a"], [True, False], keys_per_leaf=1, uses_index=True)
    with pytest.raises(ValueError, match="widths_days"):
        sargable.sweep_selectivity(conn, [], SMALL)
    with pytest.raises(ValueError, match="table"):
        sargable.index_sample(conn, "players; DROP TABLE players", "name", "1")
    with pytest.raises(ValueError, match="sweep"):
        sargable.fit_crossover(pd.DataFrame({"rows": [1]}))
    with pytest.raises(ValueError, match="patterns"):
        sargable.run_patterns(conn, params, patterns=[])


# ----------------------------------------------------------------------------- the real engines


def _engine(name):
    from syslab import engines

    engine = engines.find(name)
    if engine is None:
        pytest.skip(f"{name} not available: {engines.unavailable_reason(name)}")
    return engine


ENGINE_SMALL = sargable.DashboardConfig(n_matches=10_000, n_players=3_000, n_clans=200)


@pytest.mark.real
def test_postgres_plans():
    run = sargable.measure_engine_plans(_engine("postgres"), ENGINE_SMALL)
    frame = run.frame.set_index(["case", "phase"])
    # Portable anti-patterns scan; their rewrites use an index.
    for case in ["date_function", "lower_function", "arithmetic", "leading_wildcard", "cast_on_column"]:
        assert frame.loc[(case, "before"), "access"] == "scan", case
        assert frame.loc[(case, "after"), "access"] == "index", case
    # Engine-specific: PostgreSQL rewrites NOT (x < c) itself and refuses text = integer.
    assert frame.loc[("negation", "before"), "access"] == "index"
    assert frame.loc[("implicit_conversion", "before"), "access"] == "error"
    assert "Index Only Scan" in frame.loc[("covering: indexed columns only", "shape"), "plan"]
    assert "Sort" not in frame.loc[("ORDER BY an indexed column, LIMIT 10", "shape"), "plan"]
    assert frame.loc[("prefix LIKE $1", "generic plan"), "access"] == "scan"
    assert frame.loc[("prefix LIKE $1", "custom plan"), "access"] == "index"


@pytest.mark.real
def test_mariadb_plans():
    run = sargable.measure_engine_plans(_engine("mariadb"), ENGINE_SMALL)
    frame = run.frame.set_index(["case", "phase"])
    assert frame.loc[("date_function", "before"), "access"] == "scan"
    assert frame.loc[("implicit_conversion", "before"), "access"] == "scan"
    assert frame.loc[("negation", "before"), "access"] == "index"
    assert frame.loc[("expression_index", "after"), "access"] == "scan"
    assert "filesort" in frame.loc[("ORDER BY an unindexed column, LIMIT 10", "shape"), "plan"]


def test_classify_engine_plan():
    seq = [{"Plan": {"Node Type": "Seq Scan"}}]
    assert sargable.classify_engine_plan("postgres", seq) == ("scan", "Seq Scan")
    nested = [
        {"Plan": {"Node Type": "Limit", "Plans": [{"Node Type": "Index Scan", "Scan Direction": "Backward"}]}}
    ]
    assert sargable.classify_engine_plan("postgres", nested) == ("index", "Index Scan Backward")
    maria = [(1, "SIMPLE", "t", "ALL", None, None, None, None, 100, "Using where; Using filesort")]
    assert sargable.classify_engine_plan("mariadb", maria) == ("scan", "ALL [Using filesort]")
    with pytest.raises(ValueError, match="kind"):
        sargable.classify_engine_plan("oracle", seq)


def test_plan_uses_index_reads_a_single_line_and_rejects_non_text():
    from syslab import sqlite_tools

    assert sqlite_tools.plan_uses_index("SEARCH t USING INDEX t_b (b=?)")
    assert sqlite_tools.plan_uses_index("SEARCH t USING COVERING INDEX t_b (b=?)")
    assert not sqlite_tools.plan_uses_index("SCAN t USING COVERING INDEX t_b")
    assert not sqlite_tools.plan_uses_index("abc")
    for bad in (None, 5, b"SEARCH t", ["SEARCH t", 3]):
        with pytest.raises(TypeError, match="plan"):
            sqlite_tools.plan_uses_index(bad)


def test_bad_input_reproducers_name_the_parameter(dashboard):
    conn, _info, params = dashboard
    closed = sqlite3.connect(":memory:")
    closed.close()
    empty = sqlite3.connect(":memory:")
    cases = [
        (lambda: sargable.DashboardConfig(start_date=None), "start_date"),
        (lambda: sargable.DashboardConfig(start_date=5), "start_date"),
        (lambda: sargable.build_dashboard(closed, SMALL), "conn"),
        (lambda: sargable.dashboard_parameters(empty, SMALL), "conn"),
        (lambda: sargable.dashboard_parameters(conn, "config"), "config"),
        (lambda: sargable.index_leaf_map(None, [True], keys_per_leaf=2, uses_index=True), "keys"),
        (lambda: sargable.index_leaf_map(["a"], None, keys_per_leaf=2, uses_index=True), "matches"),
        (lambda: sargable.index_leaf_map(["a"], [True], keys_per_leaf=2, uses_index="no"), "uses_index"),
        (lambda: sargable.index_sample(conn, "players", "email", "no-such-value", params), "where"),
        (lambda: sargable.index_sample(conn, "players", "email", "email = :email", {}), "params"),
        (lambda: sargable.sweep_selectivity(empty, [1, 7], SMALL), "conn"),
        (lambda: sargable.sweep_selectivity(conn, [1, 7], "config"), "config"),
        (lambda: sargable.run_pattern(conn, sargable.PATTERNS[0], {}), "params"),
        (lambda: sargable.run_patterns(conn, params, "abc"), "patterns"),
        (lambda: sargable.Pattern(None, "l", "SELECT 1", "SELECT 1"), "key"),
        (lambda: sargable.Pattern("k", "l", "SELECT 1", "SELECT 1", setup=None), "setup"),
        (lambda: sargable.Pattern("k", "l", "SELECT 1", "SELECT 1", changes_schema="no"), "changes_schema"),
        (lambda: sargable.plot_selectivity(pd.DataFrame(), pd.Series(dtype=float)), "sweep"),
        (
            lambda: sargable.fit_crossover(
                pd.DataFrame(
                    {
                        "rows": [1.0, np.nan],
                        "fraction": [0.1, 0.2],
                        "ms_scan": [1.0, 1.0],
                        "ms_search": [1.0, 2.0],
                    }
                )
            ),
            "sweep",
        ),
    ]
    for call, name in cases:
        with pytest.raises((TypeError, ValueError), match=name):
            call()
