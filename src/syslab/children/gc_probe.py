"""The child-process side of :mod:`syslab.garbage_collection`'s measurements of CPython's collector.

It imports only the standard library, so the heap it measures is the objects it
builds and not numpy's or pandas'. Each command prints JSON lines: first an
``{"env": ...}`` line (Python version, thresholds read at run time), then one
line per measured collection::

    python -m syslab.children.gc_probe pauses 10000,100000 3
    python -m syslab.children.gc_probe churn 100000 1.0 2000
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections import deque

from syslab.children import _protocol


class _Recorder:
    """A ``gc.callbacks`` hook that times every collection (start to stop, perf_counter_ns)."""

    def __init__(self) -> None:
        self.started_ns = 0
        self.events: list[tuple[int, int, int, int]] = []  # generation, pause_ns, collected, at_ns

    def __call__(self, phase: str, info: dict) -> None:
        now = time.perf_counter_ns()
        if phase == "start":
            self.started_ns = now
        else:
            self.events.append((int(info["generation"]), now - self.started_ns, int(info["collected"]), now))


def _emit(record: dict) -> None:
    _protocol.announce("record", **record)


def _environment() -> dict:
    return {
        "python": sys.version.split()[0],
        "implementation": sys.implementation.name,
        "threshold": list(gc.get_threshold()),
        "has_freeze": hasattr(gc, "freeze"),
        "tracked_at_start": len(gc.get_objects()),
    }


def _build_live(n: int) -> list:
    # Small lists are tracked containers: every one is an object the collector must visit.
    live = [[i] for i in range(n)]
    gc.collect()  # settle: everything that survives now sits in the oldest generation
    return live


def _timed_collect(recorder: _Recorder, generation: int) -> int:
    before = len(recorder.events)
    gc.collect(generation)
    return recorder.events[before][1] if len(recorder.events) > before else -1


def run_pauses(sizes: list[int], repeats: int) -> None:
    """Time explicit collections of each generation with N extra live objects, then after gc.freeze().

    Parameters
    ----------
    sizes : list of int
        Numbers of extra live objects, one measurement each.
    repeats : int
        Timed collections per size and generation.

    Returns
    -------
    None
        Each timing is announced as a ``record`` event on stdout.
    """
    _emit({"env": _environment()})
    recorder = _Recorder()
    gc.callbacks.append(recorder)
    try:
        for n in sizes:
            live = _build_live(n)
            tracked = len(gc.get_objects())
            for _ in range(repeats):
                for generation in (0, 1, 2):
                    pause_ns = _timed_collect(recorder, generation)
                    _emit({"n_live": n, "tracked": tracked, "kind": f"gen{generation}", "pause_ns": pause_ns})
            if hasattr(gc, "freeze"):
                gc.freeze()  # move everything to the permanent generation: collections skip it
                frozen = gc.get_freeze_count()
                for _ in range(repeats):
                    pause_ns = _timed_collect(recorder, 2)
                    _emit({"n_live": n, "tracked": tracked, "kind": "gen2 frozen", "pause_ns": pause_ns,
                           "frozen": frozen})  # fmt: skip
                gc.unfreeze()
            del live
            gc.collect()
    finally:
        gc.callbacks.remove(recorder)


def run_churn(n_live: int, duration_s: float, ring: int) -> None:
    """Keep ``n_live`` objects, then allocate short-lived containers and let the collector run by itself.

    A ring of the ``ring`` most recent objects keeps each new object alive for a
    while, so some survive young collections and are promoted, as in a real server.

    Parameters
    ----------
    n_live : int
        Long-lived objects kept throughout.
    duration_s : float
        Seconds of allocation.
    ring : int
        How many of the newest objects are kept alive.

    Returns
    -------
    None
        Each collection is announced as a ``record`` event on stdout.
    """
    _emit({"env": _environment()})
    live = _build_live(n_live)
    recorder = _Recorder()
    recent: deque = deque(maxlen=ring)
    t0 = time.perf_counter_ns()
    deadline = t0 + int(duration_s * 1e9)
    gc.callbacks.append(recorder)
    try:
        allocated = 0
        while time.perf_counter_ns() < deadline:
            for _ in range(1000):
                node = {"payload": [allocated], "next": None}
                node["self"] = node  # a reference cycle: only the cycle collector can free it
                recent.append(node)
                allocated += 1
    finally:
        gc.callbacks.remove(recorder)
    for generation, pause_ns, collected, at_ns in recorder.events:
        _emit(
            {
                "n_live": n_live,
                "generation": generation,
                "pause_ns": pause_ns,
                "collected": collected,
                "at_s": (at_ns - t0) / 1e9,
            }
        )
    _emit({"summary": {"allocated": allocated, "duration_s": duration_s, "live_kept": len(live)}})


def main(argv: list[str] | None = None) -> int:
    """Run ``pauses <sizes> <repeats>`` or ``churn <n_live> <duration_s> <ring>``, then announce ``result``.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status.
    """
    parser = argparse.ArgumentParser(prog="python -m syslab.children.gc_probe")
    _protocol.add_common_arguments(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    pauses = sub.add_parser("pauses")
    pauses.add_argument("sizes", help="comma-separated numbers of extra live objects")
    pauses.add_argument("repeats", type=int)
    churn = sub.add_parser("churn")
    churn.add_argument("n_live", type=int)
    churn.add_argument("duration_s", type=float)
    churn.add_argument("ring", type=int)
    args = parser.parse_args(argv)
    _protocol.start_guards(args.max_life_s)
    if args.command == "pauses":
        run_pauses([int(s) for s in args.sizes.split(",")], args.repeats)
    else:
        run_churn(args.n_live, min(args.duration_s, 30.0), args.ring)
    _protocol.announce("result")
    return 0


if __name__ == "__main__":
    sys.exit(main())
