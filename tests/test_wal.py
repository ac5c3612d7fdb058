"""Tests for syslab.wal: record format, torn tails, and a real crashed writer."""

from __future__ import annotations

import pytest

from syslab import wal


def test_round_trip_and_torn_tail(tmp_path):
    path = tmp_path / "wal.log"
    with open(path, "wb") as handle:
        for i in range(10):
            wal.write_wal_record(handle, f"k{i}", f"v{i}")
        wal.write_wal_record(handle, "k3", "newer")
    records, torn = wal.read_wal(path)
    assert len(records) == 11 and torn == 0
    assert wal.replay_wal(path)["k3"] == "newer"
    # Cut the last record in half: replay keeps the 10 intact ones and reports the torn bytes.
    data = path.read_bytes()
    path.write_bytes(data[:-4])
    records, torn = wal.read_wal(path)
    assert len(records) == 10 and torn > 0
    # Flip a payload byte in the middle: the CRC stops replay there.
    corrupt = bytearray(data)
    corrupt[30] ^= 0xFF
    path.write_bytes(bytes(corrupt))
    assert len(wal.read_wal(path)[0]) < 10


def test_bad_input(tmp_path):
    with open(tmp_path / "x", "wb") as handle, pytest.raises(ValueError, match="key"):
        wal.write_wal_record(handle, "a\tb", "v")
    with pytest.raises(ValueError, match="ack"):
        wal.run_wal_crash("sometimes")
    with pytest.raises(ValueError, match="n_records"):
        wal.run_wal_crash(kill_after_acks=10, n_records=5)

    with pytest.raises(ValueError, match="kill_after_acks"):
        wal.run_wal_crash(kill_after_acks=10**12)
    with pytest.raises(ValueError, match="timeout_s"):
        wal.run_wal_crash(timeout_s=10**9)
    with pytest.raises(ValueError, match="delay_s"):
        wal.run_wal_crash(delay_s=1e6)


def test_child_speaks_the_protocol(tmp_path):
    # The writer is a syslab.children program: ready, one ack per record, result; it dies with its limit.
    from syslab.processes import ChildProcess

    path = tmp_path / "wal.log"
    with ChildProcess("syslab.children.wal_writer", [str(path), "--n-records", 3], timeout_s=10) as child:
        child.expect("ready", timeout_s=5)
        assert [child.expect("ack", timeout_s=5)["seq"] for _ in range(3)] == [0, 1, 2]
        assert child.expect("result", timeout_s=5)["written"] == 3
    assert [key for key, _ in wal.read_wal(path)[0]] == ["k00000000", "k00000001", "k00000002"]


@pytest.mark.real
@pytest.mark.parametrize("ack", ["after-fsync", "after-write"])
def test_sigkill_loses_nothing_acknowledged(ack):
    run = wal.run_wal_crash(ack, kill_after_acks=200, timeout_s=20)
    result = run.summary
    assert run.environment["python"]
    assert result["exit_signal"] == 9
    assert result["acked"] >= 200
    assert result["lost_acked"] == 0
    assert result["recovered"] >= result["acked"]


@pytest.mark.real
def test_ack_before_write_loses_acknowledged_records():
    # 200 records of ~22 bytes sit inside the writer's 64 KiB buffer when the SIGKILL lands.
    result = wal.run_wal_crash("before-write", kill_after_acks=200, timeout_s=20).summary
    assert result["lost_acked"] > 0
