"""Print Python's ``hash()`` of a string and a stable hash of it, from a fresh interpreter.

Run as ``python -m syslab.hash_probe KEY`` by :func:`syslab.hashring.python_hash_in_fresh_processes`.
It imports only the standard library so a child starts in a few tens of milliseconds.
"""

from __future__ import annotations

import hashlib
import sys


def stable_hash64_str(text: str) -> int:
    """First 8 bytes of BLAKE2b, big-endian: the same on every machine and in every process."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m syslab.hash_probe KEY", file=sys.stderr)
        return 2
    print(hash(argv[0]), stable_hash64_str(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
