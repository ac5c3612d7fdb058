"""Tests for syslab.ids: UUIDv7 and Snowflake against their specifications, and the migration."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syslab import ids


def test_uuid7_bit_layout_rfc9562():
    # RFC 9562 appendix A.6 example: unix_ts_ms 0x017F22E279B0 -> 017F22E2-79B0-7CC3-98C4-DC0C0C07398F
    value = ids.uuid7(0x017F22E279B0, 0xCC3, 0x18C4DC0C0C07398F)
    assert str(value) == "017f22e2-79b0-7cc3-98c4-dc0c0c07398f"
    assert value.version == 7 and value.variant == uuid.RFC_4122
    assert ids.uuid7_timestamp_ms(value) == 0x017F22E279B0


def test_seeded_regression():
    assert str(ids.uuid7_batch(2, seed=3)[1]) == "01941f29-7c00-767e-b348-14b1cb9b7b0d"
    assert str(ids.uuid4_batch(1, seed=3)[0]) == "15ed1a93-cfbe-42f8-b93f-3a0a5bdfa7e8"


def test_uuid7_batch_sorted_and_uuid4_valid():
    v7 = ids.uuid7_batch(20_000, ids_per_ms=5_000, seed=1)  # forces counter overflow within a ms
    raw = [u.bytes for u in v7]
    assert raw == sorted(raw) and len(set(raw)) == len(raw)
    v4 = ids.uuid4_batch(1_000, seed=1)
    assert all(u.version == 4 and u.variant == uuid.RFC_4122 for u in v4)
    assert [u.bytes for u in v4] != sorted(u.bytes for u in v4)


@settings(max_examples=50)
@given(ts=st.integers(0, 2**41 - 1), machine=st.integers(0, 1023), seq=st.integers(0, 4095))
def test_snowflake_round_trip(ts, machine, seq):
    value = ids.snowflake_encode(ids.SNOWFLAKE_EPOCH_MS + ts, machine, seq)
    assert 0 <= value < 2**63
    assert ids.snowflake_decode(value) == {
        "timestamp_ms": ids.SNOWFLAKE_EPOCH_MS + ts,
        "machine_id": machine,
        "sequence": seq,
    }


def test_snowflake_ceiling_is_4096_per_ms():
    burst = ids.simulate_snowflake_burst(5_000, 3)
    assert burst["issued"].tolist() == [4096, 4096, 4096]
    generator = ids.SnowflakeGenerator(7)
    first, second = generator.next(ids.SNOWFLAKE_EPOCH_MS + 5), generator.next(ids.SNOWFLAKE_EPOCH_MS + 5)
    assert second == first + 1
    with pytest.raises(ValueError, match="backwards"):
        generator.next(ids.SNOWFLAKE_EPOCH_MS + 4)


def test_id_schemes_table():
    table = ids.id_schemes()
    assert table.loc["Snowflake", "bytes"] == 8 and "69.7 years" in table.loc["Snowflake", "what bites"]


@pytest.mark.real
def test_dual_write_migration_loses_nothing():
    result = ids.run_dual_write_migration(
        ids.MigrationConfig(initial_rows=5_000, batch_rows=500, timeout_s=15)
    ).summary
    for key in ("null_uids", "duplicate_uids", "timestamp_mismatches", "lookup_mismatches", "rows_lost"):
        assert result[key] == 0, key
    assert result["writer_rows"] > 0 and result["backfill_batches"] >= 10


def test_bad_input():
    with pytest.raises(ValueError, match="unix_ts_ms"):
        ids.uuid7(2**48, 0, 0)
    with pytest.raises(ValueError, match="rand_a"):
        ids.uuid7(0, 4096, 0)
    with pytest.raises(ValueError, match="machine_id"):
        ids.snowflake_encode(ids.SNOWFLAKE_EPOCH_MS, 1024, 0)
    with pytest.raises(ValueError, match="sequence"):
        ids.snowflake_encode(ids.SNOWFLAKE_EPOCH_MS, 0, 4096)
    with pytest.raises(ValueError, match="value"):
        ids.uuid7_timestamp_ms(uuid.UUID(int=0))
    with pytest.raises(TypeError, match="config"):
        ids.run_dual_write_migration(config={"initial_rows": 10})
    with pytest.raises(ValueError, match="initial_rows"):
        ids.run_dual_write_migration(ids.MigrationConfig(initial_rows=10**12))


def test_uuid_arrays_match_the_rfc_layout():
    import uuid

    v7 = [uuid.UUID(bytes=bytes(row)) for row in ids.uuid7_array(5_000, ids_per_ms=1000, seed=4)]
    assert v7 == sorted(v7) and len(set(v7)) == len(v7)
    assert {u.version for u in v7} == {7} and {u.variant for u in v7} == {uuid.RFC_4122}
    assert ids.uuid7_timestamp_ms(v7[0]) == 1_735_689_600_000
    assert ids.uuid7_timestamp_ms(v7[-1]) == 1_735_689_600_004
    v4 = [uuid.UUID(bytes=bytes(row)) for row in ids.uuid4_array(2_000, seed=4)]
    assert {u.version for u in v4} == {4} and {u.variant for u in v4} == {uuid.RFC_4122}
    assert v4 != sorted(v4)
    assert (ids.uuid4_array(10, seed=1) == ids.uuid4_array(10, seed=1)).all()
    with pytest.raises(ValueError, match="n_keys"):
        ids.uuid4_array(10**12)
    with pytest.raises(ValueError, match="ids_per_ms"):
        ids.uuid7_array(10, ids_per_ms=10**6)
