"""The write-ahead-log writer that :func:`syslab.wal.run_wal_crash` starts and SIGKILLs.

Run as ``python -m syslab.children.wal_writer PATH --n-records N --ack MODE``. It appends
length-prefixed, CRC-checked records ``[length][crc32][key\\tvalue]`` to ``PATH`` and speaks the
children's JSON protocol: ``{"event": "ready"}`` once the file is open, then one
``{"event": "ack", "seq": i}`` per record, sent at the moment ``MODE`` names:

- ``after-fsync``: after ``write`` + ``fsync`` (the record is on the device);
- ``after-write``: after ``write`` into the kernel's page cache (survives a process crash only);
- ``before-write``: before the record leaves this process's own 64 KiB buffer.

Standard library only (plus :mod:`syslab.children._protocol`), so it starts quickly; the
record format lives here and :mod:`syslab.wal` imports it, so parent and child share one.
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
import time
import zlib

from syslab.children import _protocol

__all__ = ["ACK_MODES", "HEADER", "main", "pack_record"]

ACK_MODES = ("after-fsync", "after-write", "before-write")
HEADER = struct.Struct("<II")  # payload length, crc32 of payload
MAX_RECORDS = 10_000_000


def pack_record(key: str, value: str) -> bytes:
    """One WAL record as bytes: ``[length][crc32][key\\tvalue]`` (little-endian 32-bit header).

    Parameters
    ----------
    key : str
        No tabs or newlines.
    value : str

    Returns
    -------
    bytes
    """
    if not isinstance(key, str) or not isinstance(value, str):
        raise TypeError("key and value must be strings")
    if "\t" in key or "\n" in key:
        raise ValueError(f"key must not contain tabs or newlines, got {key!r}")
    payload = f"{key}\t{value}".encode()
    return HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def _write(path: str, n_records: int, ack: str, delay_s: float) -> None:
    # buffering=65536 is the user-space buffer that "before-write" acknowledges into.
    with open(path, "ab", buffering=65536) as handle:
        _protocol.announce("ready")
        for i in range(n_records):
            record = pack_record(f"k{i:08d}", f"v{i}")
            if ack == "before-write":
                _protocol.announce("ack", seq=i)  # acknowledged while the bytes sit in our own buffer
                handle.write(record)
            else:
                handle.write(record)
                handle.flush()  # into the kernel: survives a process crash, not a power cut
                if ack == "after-fsync":
                    os.fsync(handle.fileno())  # onto the device: survives both
                _protocol.announce("ack", seq=i)
            if delay_s:
                time.sleep(delay_s)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, start the lifetime guards, write and acknowledge records; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m syslab.children.wal_writer")
    parser.add_argument("path")
    parser.add_argument("--n-records", type=int, default=1000)
    parser.add_argument("--ack", choices=ACK_MODES, default="after-fsync")
    parser.add_argument("--delay-s", type=float, default=0.0)
    _protocol.add_common_arguments(parser, default_max_life_s=30.0)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if not 1 <= args.n_records <= MAX_RECORDS or not 0 <= args.delay_s <= 1:
        _protocol.announce(
            "error", message=f"--n-records must be in [1, {MAX_RECORDS}] and --delay-s in [0, 1]"
        )
        return 2
    _protocol.start_guards(args.max_life_s)
    _write(args.path, args.n_records, args.ack, args.delay_s)
    _protocol.announce("result", written=args.n_records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
