"""A real write-ahead log: append-only file, a writer process that crashes, and replay.

An LSM tree keeps recent writes in a memtable in memory; what makes them durable is
the write-ahead log (WAL) every write is appended to first. :func:`run_wal_crash`
starts a child process (:mod:`syslab.children.wal_writer`) that appends length-prefixed,
CRC-checked records to a real file in a temporary folder and acknowledges each one with
a JSON ``ack`` event. The parent SIGKILLs it mid-stream, replays the log with
:func:`replay_wal` and checks every acknowledged record came back.

When the acknowledgement goes out decides what survives:

- ``after-fsync``: the record reached the device -- survives a process crash and a power cut;
- ``after-write``: the record reached the kernel's page cache -- survives a process
  crash (this experiment), not a power cut;
- ``before-write``: the record still sits in the process's own 64 KiB buffer -- a
  SIGKILL loses every acknowledged record in it.
"""

from __future__ import annotations

import os
import signal
import tempfile
import time
import zlib
from pathlib import Path
from typing import BinaryIO

import pandas as pd

from syslab import experiment, validate
from syslab.children.wal_writer import ACK_MODES, HEADER, pack_record
from syslab.processes import ChildProcess

__all__ = ["ACK_MODES", "MAX_KILL_AFTER_ACKS", "read_wal", "replay_wal", "run_wal_crash", "write_wal_record"]

MAX_KILL_AFTER_ACKS = 100_000  # acknowledgements read one JSON line at a time
MAX_RECORDS = 10_000_000
MAX_TIMEOUT_S = 120.0
MAX_WAL_BYTES = 1 << 30


def write_wal_record(handle: BinaryIO, key: str, value: str) -> int:
    """Append one record ``[length][crc32][key\\tvalue]`` to an open binary file.

    The record goes out in a single ``write`` call so a crash leaves at most one torn
    record at the end of the file, which :func:`read_wal` detects by its length or CRC.

    Parameters
    ----------
    handle : binary file
        Open for appending.
    key : str
        No tabs or newlines.
    value : str

    Returns
    -------
    int
        Bytes written.
    """
    if not callable(getattr(handle, "write", None)):
        raise TypeError(f"handle must be a binary file opened for writing, got {type(handle).__name__}")
    record = pack_record(key, value)
    handle.write(record)
    return len(record)


def read_wal(path: str | os.PathLike) -> tuple[list[tuple[str, str]], int]:
    """Read every intact record of a WAL file, stopping at the first torn or corrupt one.

    Parameters
    ----------
    path : str or os.PathLike
        The log file (at most ``MAX_WAL_BYTES``).

    Returns
    -------
    (records, discarded_bytes)
        ``records`` is a list of ``(key, value)`` in log order; ``discarded_bytes`` is the
        length of the unreadable tail (0 for a cleanly closed log).
    """
    size = Path(path).stat().st_size
    if size > MAX_WAL_BYTES:
        raise ValueError(f"path must name a log of at most {MAX_WAL_BYTES:,} bytes, got {size:,}")
    data = Path(path).read_bytes()
    records = []
    offset = 0
    while offset + HEADER.size <= len(data):
        length, crc = HEADER.unpack_from(data, offset)
        start = offset + HEADER.size
        payload = data[start : start + length]
        if len(payload) < length or zlib.crc32(payload) != crc:
            break  # a torn tail: the writer died inside this record
        key, _, value = payload.decode().partition("\t")
        records.append((key, value))
        offset = start + length
    return records, len(data) - offset


def replay_wal(path: str | os.PathLike) -> dict[str, str]:
    """Rebuild the memtable from a WAL: later records for a key overwrite earlier ones.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    dict
        Key to its latest value.
    """
    records, _ = read_wal(path)
    memtable: dict[str, str] = {}
    for key, value in records:
        memtable[key] = value
    return memtable


def run_wal_crash(
    ack: str = "after-fsync",
    *,
    kill_after_acks: int = 500,
    n_records: int = 1_000_000,
    delay_s: float = 0.0,
    timeout_s: float = 20.0,
) -> experiment.Run:
    """SIGKILL a WAL writer after it has acknowledged ``kill_after_acks`` records; replay its log.

    Parameters
    ----------
    ack : {"after-fsync", "after-write", "before-write"}
        When the writer acknowledges a record: after ``write``+``fsync``, after a
        ``write`` into the kernel's page cache, or before the record has left the
        process's own 64 KiB buffer.
    kill_after_acks : int
        Acknowledgements to read before sending SIGKILL (the writer keeps writing
        meanwhile), 1 to ``MAX_KILL_AFTER_ACKS``.
    n_records : int
        Upper bound on what the writer would write if never killed, more than
        ``kill_after_acks`` and at most ``MAX_RECORDS``.
    delay_s : float
        Sleep between records in the writer, 0 to 1 s.
    timeout_s : float
        Hard limit on the whole experiment, set-up included, (0, ``MAX_TIMEOUT_S``].

    Returns
    -------
    experiment.Run
        Frame: one row with ``ack``, ``acked`` (acknowledgements the parent read),
        ``last_acked`` (highest acknowledged sequence number), ``recovered`` (records
        replayed), ``lost_acked`` (acknowledged records missing after replay),
        ``torn_tail_bytes``, ``exit_signal``, ``wal_bytes``. Summary: the same values.
    """
    ack = validate.choice("ack", ack, ACK_MODES)
    kill_after = validate.int_in_range("kill_after_acks", kill_after_acks, 1, MAX_KILL_AFTER_ACKS)
    n_records = validate.int_in_range("n_records", n_records, 1, MAX_RECORDS)
    if n_records <= kill_after:
        raise ValueError(
            f"n_records must exceed kill_after_acks so the kill lands mid-stream, got {n_records}"
        )
    delay_s = validate.float_in_range("delay_s", delay_s, 0.0, 1.0)
    timeout_s = validate.float_in_range("timeout_s", timeout_s, 0.0, MAX_TIMEOUT_S, low_inclusive=False)
    deadline = time.monotonic() + timeout_s
    acked: list[int] = []
    with tempfile.TemporaryDirectory(prefix="syslab-") as folder:
        path = Path(folder) / "wal.log"
        args = [
            str(path),
            "--n-records",
            n_records,
            "--ack",
            ack,
            "--delay-s",
            delay_s,
            "--max-life-s",
            min(timeout_s + 5.0, 600.0),
        ]
        with ChildProcess("syslab.children.wal_writer", args, timeout_s=timeout_s) as child:
            child.expect("ready", timeout_s=max(0.1, deadline - time.monotonic()))
            while len(acked) < kill_after:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    acked.append(int(child.expect("ack", timeout_s=remaining)["seq"]))
                except (TimeoutError, RuntimeError):
                    break  # the writer finished or stalled: replay what is there
            child.send_signal(signal.SIGKILL)  # mid-stream: the writer is still writing
            code = child.wait(5)
        records, torn = read_wal(path)
        wal_bytes = path.stat().st_size if path.exists() else 0
    recovered = {key for key, _ in records}
    lost = [i for i in acked if f"k{i:08d}" not in recovered]
    row = {
        "ack": ack,
        "acked": len(acked),
        "last_acked": max(acked) if acked else -1,
        "recovered": len(records),
        "lost_acked": len(lost),
        "torn_tail_bytes": torn,
        "exit_signal": -code if code < 0 else 0,
        "wal_bytes": wal_bytes,
    }
    return experiment.Run.create(pd.DataFrame([row]), row)
