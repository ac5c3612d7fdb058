"""Tests for syslab.access_control: store limits, BSON sizes, roaring sizes, the approaches and edge cases."""

from __future__ import annotations

import math
import sqlite3

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syslab import access_control as ac
from syslab.sqlite_tools import temporary_database

SMALL = ac.FleetConfig(n_devices=10_000, devices_per_group=100, n_readings=50_000)
K_VALUES = [100, 1_000, 5_000]


@pytest.fixture(scope="module")
def fleet():
    with temporary_database() as (conn, _path):
        ac.set_variable_limit(conn)
        info = ac.build_fleet(conn, SMALL, seed=7)
        sweep = ac.run_approach_sweep(conn, SMALL, K_VALUES, repeats=1, chunk_size=2_000, seed=7).frame
        yield conn, info, sweep


# ----------------------------------------------------------------------------- (a) exact values


def test_documented_limits_are_the_sources_numbers():
    assert ac.ES_MAX_TERMS_COUNT == 65_536
    assert ac.ES_SERVERLESS_MAX_TERMS_COUNT == 1_024
    assert ac.CLICKHOUSE_MAX_QUERY_SIZE_BYTES == 262_144 == 256 * 1024
    assert ac.MONGODB_MAX_BSON_BYTES == 16_777_216
    assert ac.SQLITE_UPSTREAM_MAX_VARIABLES == 32_766


def test_build_fleet_is_seeded(fleet):
    conn, info, _ = fleet
    assert info["devices"] == 10_000 and info["readings"] == 50_000 and info["groups"] == 100
    sizes = conn.execute("SELECT count(*) FROM devices GROUP BY group_id").fetchall()
    assert {s[0] for s in sizes} == {100}  # exactly devices_per_group per group
    # Regression values for seed 7 (change only on purpose, with the chapter).
    assert conn.execute("SELECT group_id FROM devices WHERE device_id = 0").fetchone()[0] == 68
    assert conn.execute("SELECT device_id, ts FROM readings WHERE reading_id = 1").fetchone() == (4581, 19)


def test_bson_size_matches_a_real_encoder_and_the_spec_example():
    # bsonspec.org's example: {"hello": "world"} is 22 bytes.
    assert ac.encode_bson({"hello": "world"}) == b"\x16\x00\x00\x00\x02hello\x00\x06\x00\x00\x00world\x00\x00"
    for n in (0, 1, 9, 10, 11, 100, 1_234):
        ids64 = [2**40 + i for i in range(n)]  # too big for int32, so encoded as int64
        assert len(ac.encode_bson({"device_id": {"$in": ids64}})) == ac.bson_in_query_bytes(n, "int64")
        ids32 = list(range(n))
        assert len(ac.encode_bson({"device_id": {"$in": ids32}})) == ac.bson_in_query_bytes(n, "int32")
        oids = [i.to_bytes(12, "big") for i in range(n)]
        assert len(ac.encode_bson({"device_id": {"$in": oids}})) == ac.bson_in_query_bytes(n, "objectid")
        uuids = [f"{i:08d}-0000-0000-0000-000000000000" for i in range(n)]
        assert len(ac.encode_bson({"device_id": {"$in": uuids}})) == ac.bson_in_query_bytes(n, "uuid_string")


def test_mongodb_limit_is_not_binding_at_100k_ids_but_es_and_clickhouse_are():
    # The correction this chapter makes: 100k int64 ids are ~1.42 MiB of BSON, far under 16 MiB.
    assert ac.bson_in_query_bytes(100_000, "int64") == 1_488_921
    assert ac.bson_in_query_bytes(100_000, "uuid_string") < ac.MONGODB_MAX_BSON_BYTES
    table = ac.limit_table(100_000)
    breaks = table.set_index(["store", "ids"])["breaks"]
    for ids in ("integer ids", "UUID strings"):
        assert not breaks[("MongoDB $in query (BSON)", ids)]
        assert breaks[("Elasticsearch terms", ids)] and breaks[("ClickHouse SQL text", ids)]
    # MongoDB breaks only past ~1.05 million int64 ids (16 MiB / ~16 bytes per element).
    assert ac.bson_in_query_bytes(1_000_000) < ac.MONGODB_MAX_BSON_BYTES < ac.bson_in_query_bytes(1_100_000)


def test_roaring_size_known_cases():
    assert ac.roaring_size_bytes([]) == 0
    assert ac.roaring_size_bytes([5]) == 2 + 4
    assert ac.roaring_size_bytes(range(4_096)) == 2 * 4_096 + 4  # still an array container
    assert ac.roaring_size_bytes(range(4_097)) == 8_192 + 4  # now a bitmap container
    assert ac.roaring_size_bytes([0, 2**16, 2**17]) == 3 * (2 + 4)  # three chunks


# ----------------------------------------------------------------------------- (b) theory


def test_roaring_theory_for_uniform_ids():
    sizes = ac.sweep_bitmap_sizes([1_000, 100_000, 1_000_000], 10_000_000, seed=3)
    scattered = sizes[sizes["layout"] == "scattered"]
    # Uniform ids fill every one of the 153 chunks; the per-chunk count varies by ~sqrt(n/C), which only
    # matters when a chunk sits near the 4,096 switch (the 1M row), so 1% is ample and a model that
    # forgot the 8 KiB cap or counted 4 bytes per value would miss by 2x.
    rel = (scattered["roaring_bytes"] / scattered["theory_roaring_bytes"] - 1).abs()
    assert (rel < 0.01).all()
    # 100k ids in a 10M space: ~196 KiB roaring vs 1,221 KiB dense.
    row = scattered.set_index("k_devices").loc[100_000]
    assert row["dense_bytes"] == 1_250_000 and 190 * 1024 < row["roaring_bytes"] < 200 * 1024


def test_chunked_pages_read_chunks_times_depth(fleet):
    conn, _, _ = fleet
    user = 3  # 5,000 devices
    for offset in (0, 100):
        page = ac.fetch_page(conn, "chunked IN lists", user, page_size=20, offset=offset, chunk_size=1_000)
        cost = ac.chunked_page_cost(5_000, 1_000, 20, offset)
        assert page["n_requests"] == cost["n_requests"] == 5
        assert page["rows_fetched"] == cost["rows_fetched"]  # every chunk has enough rows here
        live = ac.fetch_page(conn, "join ACL tables", user, page_size=20, offset=offset)
        assert page["rows"] == live["rows"]


def test_revocation_exposure_mean_matches_theory():
    frame = ac.simulate_revocation_exposure(
        50_000, refresh_interval_s=300, cache_ttl_s=60, replication_lag_mean_s=2, seed=1
    )
    theory = ac.theory_revocation_exposure_mean_s(300, 60, 2)
    # Standard error of the mean is sd/sqrt(n) ~ 90/224 = 0.4 s; 2 s is five standard errors, while
    # forgetting one layer (or using the full interval instead of half) moves the mean by >= 2 s.
    assert abs(frame["exposure_s"].mean() - theory) < 2.0
    assert frame["exposure_s"].max() <= 300 + 60 + frame["lag_s"].max()


@pytest.mark.real
def test_store_consistency_against_the_stale_bound():
    n = 3_000
    frame = ac.run_store_consistency(n, event_probability=0.05, lags_steps=(0, 3, 12), seed=2).frame
    summary = ac.summarize_consistency(frame)
    assert summary["stale_fraction_MongoDB copy"] == 0.0  # no lag, never stale
    for name, lag in (("ClickHouse copy", 3), ("Elasticsearch copy", 12)):
        theory = ac.theory_stale_fraction(0.05, lag, n_groups=20)
        # Successive steps share lag-1 of their lag missed steps, so only about n/lag of them are
        # independent: four standard errors of a proportion over n/lag samples. Ignoring cancelling
        # toggles or the lag itself moves the fraction by more than that for the 12-step store.
        tolerance = 4 * math.sqrt(theory * (1 - theory) / (n / lag))
        assert abs(summary[f"stale_fraction_{name}"] - theory) < tolerance
    assert summary["gated_inconsistent"] == 0
    assert summary["gated_wait_fraction"] == pytest.approx(summary["stale_answer_fraction"], abs=0.02)


# ----------------------------------------------------------------------------- real SQLite


@pytest.mark.real
def test_every_approach_returns_the_same_page(fleet):
    _, _, sweep = fleet
    assert sweep["correct"].all()
    assert set(sweep["approach"]) == set(ac.APPROACHES)
    giant = sweep[sweep["approach"] == "giant IN list"].set_index("k_devices")["request_bytes"]
    join = sweep[sweep["approach"] == "join ACL tables"].set_index("k_devices")["request_bytes"]
    assert giant.is_monotonic_increasing and join.nunique() == 1  # the join's request does not grow


@pytest.mark.real
def test_too_many_variables_is_real_sqlite_behaviour(fleet):
    conn, _, _ = fleet
    assert conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) == 32_766
    assert ac.demo_too_many_variables(conn, range(32_766))["ok"]
    failed = ac.demo_too_many_variables(conn, range(32_767))
    assert not failed["ok"] and "too many SQL variables" in failed["error"]


@pytest.mark.real
def test_revoked_mid_pagination(fleet):
    conn, _, _ = fleet
    before = conn.execute("SELECT count(*) FROM user_groups").fetchone()[0]
    table = ac.demo_revoked_mid_pagination(conn, 2, page_size=20).set_index("client")
    assert conn.execute("SELECT count(*) FROM user_groups").fetchone()[0] == before  # restored
    keyset = table.loc["live join, keyset"]
    assert keyset["leaked"] == 0 and keyset["skipped"] == 0 and keyset["duplicated"] == 0
    assert table.loc["live join, OFFSET", "leaked"] == 0
    assert table.loc["live join, OFFSET", "skipped"] == min(table.attrs["revoked_rows_page1"], 20)
    assert table.loc["cached id list, OFFSET", "leaked"] > 0  # the revoked group's newest rows
    assert table.loc["precomputed table before refresh, OFFSET", "leaked"] > 0


@pytest.mark.real
def test_staleness_of_derived_copies(fleet):
    conn, _, _ = fleet
    table = ac.demo_revocation_staleness(conn, 2, page_size=20)
    live = ["join ACL tables", "denormalised group id"]
    assert (table.loc[live] == 0).all().all()
    assert table.loc["precomputed access table", "after revoke"] > 0
    assert table.loc["precomputed access table", "after table refresh"] == 0
    assert table.loc["giant IN list", "after table refresh"] > 0
    assert (table["after cache rebuild"] == 0).all()


@pytest.mark.real
def test_device_move_leaves_denormalised_rows_wrong_until_rewritten(fleet):
    conn, _, _ = fleet
    n = conn.execute("SELECT count(*) FROM readings WHERE device_id = 5").fetchone()[0]
    group = conn.execute("SELECT group_id FROM devices WHERE device_id = 5").fetchone()[0]
    moved = ac.demo_device_move(conn, 5, (group + 1) % SMALL.n_groups)
    assert moved["readings_to_rewrite"] == n == moved["old_group_still_sees"] == moved["new_group_cannot_see"]
    assert (
        conn.execute("SELECT count(DISTINCT group_id) FROM readings WHERE device_id = 5").fetchone()[0] == 1
    )


# ----------------------------------------------------------------------------- (c) properties


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=2**20 - 1), max_size=3_000))
def test_roaring_never_beats_the_smaller_of_array_and_bitmap_per_chunk(values):
    size = ac.roaring_size_bytes(values)
    distinct = np.unique(np.asarray(values, dtype=np.int64))
    chunks = np.unique(distinct >> 16).size
    assert size <= 2 * distinct.size + 4 * chunks
    assert size <= 8_192 * chunks + 4 * chunks
    assert size >= min(2 * distinct.size, 8_192) + 4 * chunks if distinct.size else size == 0


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=0, max_value=5_000))
def test_bson_size_grows_by_element_size(n):
    step = ac.bson_in_query_bytes(n + 1) - ac.bson_in_query_bytes(n)
    assert step == 1 + (len(str(n)) + 1) + 8  # type byte, key "n" with its NUL, int64


# ----------------------------------------------------------------------------- bad input


def test_bad_inputs_name_the_parameter():
    with pytest.raises(ValueError, match="devices_per_group"):
        ac.FleetConfig(n_devices=1_000, devices_per_group=300)
    with pytest.raises(ValueError, match="id_type"):
        ac.bson_in_query_bytes(10, "float")
    with pytest.raises(ValueError, match="ids"):
        ac.roaring_size_bytes([-1])
    with pytest.raises(ValueError, match="refresh_interval_s"):
        ac.simulate_revocation_exposure(10, refresh_interval_s=-1, cache_ttl_s=0, replication_lag_mean_s=0)
    with pytest.raises(ValueError, match="event_probability"):
        ac.run_store_consistency(10, event_probability=1.5)
    with pytest.raises(ValueError, match="lags_steps"):
        ac.run_store_consistency(10, lags_steps=(1, 2), store_names=("a",))
    with pytest.raises(TypeError, match="conn"):
        ac.permitted_devices("not a connection", 1)
    with pytest.raises(ValueError, match="n_ids"):
        ac.limit_table(11, id_space=10)
    # One group: two toggles cancel, so a store two steps behind with p = 1 is never stale.
    assert ac.theory_stale_fraction(1.0, 2, n_groups=1) == pytest.approx(0.0)
    assert ac.theory_stale_fraction(0.5, 1, n_groups=7) == pytest.approx(0.5)
    assert ac.theory_stale_fraction(0.5, 2, n_groups=200) == pytest.approx(0.75 - 0.25 / 200)


def test_sweep_rejects_k_not_a_multiple_of_the_group(fleet):
    conn, _, _ = fleet
    with pytest.raises(ValueError, match="k_values"):
        ac.run_approach_sweep(conn, SMALL, [150], repeats=1)
    with pytest.raises(ValueError, match="approach"):
        ac.fetch_page(conn, "magic", 1)


def test_model_matches_real_roaring_without_runs_and_runs_shrink_groups():
    # The model (arrays and bitmaps) against CRoaring through pyroaring with optimize=False: the
    # portable format adds a cookie and offsets (a few bytes per container), so within 2%.
    run = ac.measure_roaring([10_000, 100_000], 10_000_000, group_size=100, repeats=1, seed=3)
    frame = run.frame.set_index(["k_devices", "layout", "run_containers"])
    for k in (10_000, 100_000):
        plain = frame.loc[(k, "scattered", False)]
        assert plain["serialized_bytes"] == pytest.approx(plain["model_bytes"], rel=0.05)
        assert plain["n_run"] == 0
    # Runs of 100 consecutive ids: run containers make the bitmap more than 10x smaller (review: 36x).
    grouped = frame.loc[(100_000, "grouped", True)]
    assert grouped["n_run"] > 0
    assert grouped["serialized_bytes"] * 10 < frame.loc[(100_000, "grouped", False), "serialized_bytes"]
    # Scattered ids have no runs to find.
    assert frame.loc[(100_000, "scattered", True), "n_run"] == 0
    assert run.summary["pyroaring_version"]


def test_sql_plans_on_sqlite_density_decides():
    run = ac.measure_sql_plans(
        None, n_devices=4_000, n_readings=40_000, device_shares=[0.0025, 0.5], repeats=3, seed=1
    )
    frame = run.frame.set_index(["device_share", "approach"])
    assert run.frame["correct"].all()
    # The hinted EXISTS walks readings_ts newest first; the join seeks each device and sorts.
    assert "readings_ts" in frame.loc[(0.5, "EXISTS, newest first"), "plan"]
    assert "TEMP B-TREE" in frame.loc[(0.5, "join"), "plan"]
    # Dense: the walk stops after ~100 readings, the join sorts ~20,000: generous margin (5x).
    assert frame.loc[(0.5, "EXISTS, newest first"), "ms"] * 5 < frame.loc[(0.5, "join"), "ms"]


@pytest.mark.real
@pytest.mark.parametrize("name", ["postgres", "mariadb"])
def test_sql_plans_on_real_engines_agree(name):
    from syslab import engines

    engine = engines.find(name)
    if engine is None:
        pytest.skip(engines.unavailable_reason(name))
    run = ac.measure_sql_plans(
        engine, n_devices=2_000, n_readings=20_000, device_shares=[0.01, 0.5], repeats=1, seed=2
    )
    assert run.frame["correct"].all()  # every form returns the literal list's rows
    assert run.environment["engine"] == engine.label
    assert (run.frame["plan"] != "").sum() == 8  # the temporary table's plan is not recorded


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: ac.theory_stale_fraction(0.05, lag_steps=10**12, n_groups=20), "lag_steps"),
        (lambda: ac.theory_stale_fraction(0.05, lag_steps=10, n_groups=10**12), "n_groups"),
        (
            lambda: ac.simulate_revocation_exposure(
                10**12, refresh_interval_s=60.0, cache_ttl_s=30.0, replication_lag_mean_s=1.0
            ),
            "n_revocations",
        ),
        (lambda: ac.run_store_consistency(10**12, event_probability=0.05), "n_steps"),
        (lambda: ac.run_store_consistency(30, event_probability=0.05, n_groups=10**12), "n_groups"),
        (lambda: ac.measure_roaring([10**9], 10**7), "k_values"),
        (lambda: ac.measure_sql_plans(None, n_readings=10**12), "n_readings"),
        (lambda: ac.measure_sql_plans(None, timeout_s=10**9), "timeout_s"),
    ],
)
def test_sizes_are_bounded(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_store_names_must_be_a_sequence():
    with pytest.raises(TypeError, match="store_names"):
        ac.run_store_consistency(10, event_probability=0.05, store_names="abc")


def test_stale_fraction_does_not_overflow():
    # Used to raise OverflowError (math.comb beyond float range).
    assert ac.theory_stale_fraction(0.05, lag_steps=2000, n_groups=2000) == pytest.approx(1.0, abs=1e-6)


def test_more_bad_input_names_the_parameter():
    frame = ac.run_store_consistency(20, event_probability=0.1, seed=1).frame
    with pytest.raises(ValueError, match="frame"):
        ac.summarize_consistency(frame.iloc[:0])
    with pytest.raises(ValueError, match="id_space"):
        ac.sweep_bitmap_sizes([100], 10**12)
    with pytest.raises(ValueError, match="group_size"):
        ac.sweep_bitmap_sizes([100], 100_000, group_size=10**12)
    with pytest.raises(ValueError, match="sweep"):
        ac.plot_approaches(__import__("pandas").DataFrame())
    with temporary_database() as (conn, _path), pytest.raises(ValueError, match="limit"):
        ac.set_variable_limit(conn, 10**12)
