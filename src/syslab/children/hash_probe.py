"""Report Python's ``hash()`` of a string and a stable hash of it, from a fresh interpreter.

Run as ``python -m syslab.children.hash_probe KEY`` by
:func:`syslab.hashring.run_hash_in_fresh_processes`. It announces one JSON line
``{"event": "result", "python_hash": ..., "stable_hash": ...}``; the stable hash is
:func:`syslab.hashing.stable_hash64_str`, the one the library uses everywhere.
"""

from __future__ import annotations

import argparse
import sys

from syslab.children import _protocol


def main(argv: list[str] | None = None) -> int:
    """Print the two hashes of ``KEY`` as a protocol ``result`` event; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m syslab.children.hash_probe")
    parser.add_argument("key")
    _protocol.add_common_arguments(parser, default_max_life_s=20.0)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    _protocol.start_guards(args.max_life_s)
    from syslab.hashing import stable_hash64_str  # the library's one stable hash

    _protocol.announce("result", python_hash=hash(args.key), stable_hash=stable_hash64_str(args.key))
    return 0


if __name__ == "__main__":
    sys.exit(main())
