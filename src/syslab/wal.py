"""A real write-ahead log: append-only file, a writer process that crashes, and replay.

An LSM tree keeps recent writes in a memtable in memory; what makes them durable is
the write-ahead log (WAL) every write is appended to first. :func:`run_wal_crash`
starts a child process (``python -m syslab.wal ...``) that appends length-prefixed,
CRC-checked records to a real file in a temporary folder and acknowledges each one
on stdout. The parent SIGKILLs it mid-stream, replays the log with
:func:`replay_wal` and checks every acknowledged record came back.

When the acknowledgement goes out decides what survives:

- ``after-fsync``: the record reached the device -- survives a process crash and a power cut;
- ``after-write``: the record reached the kernel's page cache -- survives a process
  crash (this experiment), not a power cut;
- ``before-write``: the record still sits in the process's own 64 KiB buffer -- a
  SIGKILL loses every acknowledged record in it.

This module imports only the standard library and :mod:`syslab.validate`, so the
child starts quickly.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import struct
import sys
import tempfile
import time
import zlib
from pathlib import Path

from syslab import validate
from syslab.processes import ChildProcess

__all__ = ["ACK_MODES", "read_wal", "replay_wal", "run_wal_crash", "write_wal_record"]

ACK_MODES = ("after-fsync", "after-write", "before-write")
_HEADER = struct.Struct("<II")  # payload length, crc32 of payload


def write_wal_record(handle, key: str, value: str) -> int:
    """Append one record ``[length][crc32][key\\tvalue]`` to an open binary file; return bytes written.

    The record goes out in a single ``write`` call so a crash leaves at most one torn
    record at the end of the file, which :func:`read_wal` detects by its length or CRC.
    """
    if "\t" in key or "\n" in key:
        raise ValueError(f"key must not contain tabs or newlines, got {key!r}")
    payload = f"{key}\t{value}".encode()
    record = _HEADER.pack(len(payload), zlib.crc32(payload)) + payload
    handle.write(record)
    return len(record)


def read_wal(path: str | os.PathLike) -> tuple[list[tuple[str, str]], int]:
    """Read every intact record of a WAL file, stopping at the first torn or corrupt one.

    Returns
    -------
    (records, discarded_bytes)
        ``records`` is a list of ``(key, value)`` in log order; ``discarded_bytes`` is the
        length of the unreadable tail (0 for a cleanly closed log).
    """
    data = Path(path).read_bytes()
    records = []
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, crc = _HEADER.unpack_from(data, offset)
        start = offset + _HEADER.size
        payload = data[start : start + length]
        if len(payload) < length or zlib.crc32(payload) != crc:
            break  # a torn tail: the writer died inside this record
        key, _, value = payload.decode().partition("\t")
        records.append((key, value))
        offset = start + length
    return records, len(data) - offset


def replay_wal(path: str | os.PathLike) -> dict[str, str]:
    """Rebuild the memtable from a WAL: later records for a key overwrite earlier ones."""
    records, _ = read_wal(path)
    memtable: dict[str, str] = {}
    for key, value in records:
        memtable[key] = value
    return memtable


def _wal_writer(path: str, n_records: int, ack: str, delay_s: float) -> None:
    """The child process: append records and acknowledge them on stdout (see ``ack``)."""
    # buffering=65536 is the user-space buffer that "before-write" acknowledges into.
    with open(path, "ab", buffering=65536) as handle:
        for i in range(n_records):
            if ack == "before-write":
                print(f"ack {i}", flush=True)  # acknowledged while the bytes sit in our own buffer
                write_wal_record(handle, f"k{i:08d}", f"v{i}")
            else:
                write_wal_record(handle, f"k{i:08d}", f"v{i}")
                handle.flush()  # into the kernel: survives a process crash, not a power cut
                if ack == "after-fsync":
                    os.fsync(handle.fileno())  # onto the device: survives both
                print(f"ack {i}", flush=True)
            if delay_s:
                time.sleep(delay_s)


def run_wal_crash(
    ack: str = "after-fsync",
    *,
    kill_after_acks: int = 500,
    n_records: int = 1_000_000,
    delay_s: float = 0.0,
    timeout_s: float = 20.0,
) -> dict[str, object]:
    """SIGKILL a WAL writer after it has acknowledged ``kill_after_acks`` records; replay its log.

    Parameters
    ----------
    ack : {"after-fsync", "after-write", "before-write"}
        When the writer acknowledges a record: after ``write``+``fsync``, after a
        ``write`` into the kernel's page cache, or before the record has left the
        process's own 64 KiB buffer.
    kill_after_acks : int
        Acknowledgements to read before sending SIGKILL (the writer keeps writing meanwhile).
    n_records : int
        Upper bound on what the writer would write if never killed.
    delay_s : float
        Sleep between records in the writer.
    timeout_s : float
        Hard limit on the whole experiment.

    Returns
    -------
    dict
        ``ack``, ``acked`` (acknowledgements the parent read), ``last_acked`` (highest
        acknowledged sequence number), ``recovered`` (records replayed), ``lost_acked``
        (acknowledged records missing after replay), ``torn_tail_bytes``, ``exit_signal``,
        ``wal_bytes``, and the environment (``python``, ``platform``).
    """
    ack = validate.choice("ack", ack, ACK_MODES)
    kill_after = validate.positive_int("kill_after_acks", kill_after_acks)
    n_records = validate.positive_int("n_records", n_records)
    if n_records <= kill_after:
        raise ValueError(
            f"n_records must exceed kill_after_acks so the kill lands mid-stream, got {n_records}"
        )
    delay_s = validate.non_negative_float("delay_s", delay_s)
    timeout_s = validate.positive_float("timeout_s", timeout_s)
    folder = Path(tempfile.mkdtemp(prefix="syslab-wal-"))
    path = folder / "wal.log"
    acked: list[int] = []
    deadline = time.monotonic() + timeout_s
    try:
        args = [
            "--wal-writer",
            str(path),
            "--n-records",
            str(n_records),
            "--ack",
            ack,
            "--delay-s",
            str(delay_s),
        ]
        with ChildProcess("syslab.wal", args, timeout_s=timeout_s) as child:
            stream = child.process.stdout
            buffered = b""
            while len(acked) < kill_after and time.monotonic() < deadline:
                ready, _, _ = select.select([stream], [], [], max(0.0, deadline - time.monotonic()))
                if not ready:
                    break
                chunk = os.read(stream.fileno(), 65536)
                if not chunk:
                    break  # the writer exited early
                buffered += chunk
                *lines, buffered = buffered.split(b"\n")
                acked.extend(int(line.split()[1]) for line in lines if line.startswith(b"ack "))
            child.send_signal(signal.SIGKILL)  # mid-stream: the writer is still writing
            code = child.wait(5)
        records, torn = read_wal(path)
        recovered = {key for key, _ in records}
        lost = [i for i in acked if f"k{i:08d}" not in recovered]
        return {
            "ack": ack,
            "acked": len(acked),
            "last_acked": max(acked) if acked else -1,
            "recovered": len(records),
            "lost_acked": len(lost),
            "torn_tail_bytes": torn,
            "exit_signal": -code if code < 0 else 0,
            "wal_bytes": path.stat().st_size if path.exists() else 0,
            "python": sys.version.split()[0],
            "platform": sys.platform,
        }
    finally:
        for leftover in folder.glob("*"):
            leftover.unlink()
        folder.rmdir()


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="WAL writer child for syslab.wal.run_wal_crash")
    parser.add_argument("--wal-writer", required=True)
    parser.add_argument("--n-records", type=int, default=1000)
    parser.add_argument("--ack", choices=ACK_MODES, default="after-fsync")
    parser.add_argument("--delay-s", type=float, default=0.0)
    args = parser.parse_args(argv)
    _wal_writer(args.wal_writer, args.n_records, args.ack, args.delay_s)
    return 0


if __name__ == "__main__":
    sys.exit(_main())
