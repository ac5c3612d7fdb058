"""The child side of the protocol: announce events, bound the lifetime, die with the parent.

Standard library only: children import this module and nothing else from ``syslab``.

A child's ``main`` looks like::

    parser = argparse.ArgumentParser()
    _protocol.add_common_arguments(parser)          # --max-life-s
    args = parser.parse_args()
    _protocol.start_guards(args.max_life_s)         # lifetime limit + parent-death watch
    ...
    _protocol.announce("ready", port=port)
    ...
    _protocol.announce("result", lost=0)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time

__all__ = ["MAX_LIFE_LIMIT_S", "add_common_arguments", "announce", "start_guards"]

# No experiment in the book runs a child longer than this (a chapter's budget is 30 s).
MAX_LIFE_LIMIT_S = 600.0
_write_lock = threading.Lock()


def announce(event: str, **fields: object) -> None:
    """Print one JSON line ``{"event": event, **fields}`` to stdout and flush it.

    Parameters
    ----------
    event : str
        ``ready``, ``result``, ``error`` or a child-specific event name.
    **fields
        JSON-serialisable values.
    """
    if not isinstance(event, str) or not event:
        raise ValueError(f"event must be a non-empty string, got {event!r}")
    line = json.dumps({"event": event, **fields}, separators=(",", ":"))
    with _write_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _max_life(text: str) -> float:
    value = float(text)
    if not (0 < value <= MAX_LIFE_LIMIT_S):
        raise argparse.ArgumentTypeError(f"--max-life-s must be in (0, {MAX_LIFE_LIMIT_S:g}], got {text}")
    return value


def add_common_arguments(parser: argparse.ArgumentParser, *, default_max_life_s: float = 60.0) -> None:
    """Add ``--max-life-s`` (the child's hard lifetime, seconds) to ``parser``."""
    parser.add_argument(
        "--max-life-s",
        type=_max_life,
        default=default_max_life_s,
        help=f"exit after this many seconds whatever happens (at most {MAX_LIFE_LIMIT_S:g})",
    )


def _exit_after(seconds: float) -> None:
    time.sleep(seconds)
    announce("error", message=f"lifetime limit of {seconds:g} s reached")
    os._exit(3)


def _exit_when_parent_goes(stdin_fd: int, parent_pid: int) -> None:
    # The parent holds the only write end of our stdin pipe: EOF means it closed it or died.
    while True:
        try:
            chunk = os.read(stdin_fd, 4096)
        except OSError:
            chunk = b""
        if not chunk:
            os._exit(4)
        if os.getppid() != parent_pid:  # pragma: no cover - reparented without EOF
            os._exit(4)


def start_guards(max_life_s: float, *, watch_stdin: bool = True) -> None:
    """Start the two daemon threads every child runs.

    Parameters
    ----------
    max_life_s : float
        Exit (code 3) after this many seconds, at most ``MAX_LIFE_LIMIT_S``.
    watch_stdin : bool
        Exit (code 4) when stdin reaches end of file: the parent started us with
        ``stdin=PIPE`` and its death closes the pipe. Turn off only for a child whose stdin
        is not such a pipe.
    """
    if not (0 < float(max_life_s) <= MAX_LIFE_LIMIT_S):
        raise ValueError(f"max_life_s must be in (0, {MAX_LIFE_LIMIT_S:g}], got {max_life_s!r}")
    threading.Thread(target=_exit_after, args=(float(max_life_s),), daemon=True).start()
    if watch_stdin:
        threading.Thread(
            target=_exit_when_parent_goes, args=(sys.stdin.fileno(), os.getppid()), daemon=True
        ).start()
