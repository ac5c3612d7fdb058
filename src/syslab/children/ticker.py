"""The smallest child program: announce readiness, tick, and report a result.

It exists to show (and test) the protocol every child speaks::

    python -m syslab.children.ticker --ticks 3 --interval-s 0.05 --max-life-s 10

prints ``{"event":"ready","pid":...}``, three ``{"event":"tick","n":...}`` lines and
``{"event":"result","ticks":3}``. With ``--ticks 0`` it ticks until its lifetime limit or
its parent's death, which is how the tests show that a child never outlives a killed kernel.
"""

from __future__ import annotations

import argparse
import os
import time

from syslab.children import _protocol


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=3, help="ticks to send; 0 = until stopped")
    parser.add_argument("--interval-s", type=float, default=0.05, help="seconds between ticks")
    _protocol.add_common_arguments(parser, default_max_life_s=30.0)
    args = parser.parse_args(argv)
    if args.ticks < 0 or not (0.001 <= args.interval_s <= 60):
        _protocol.announce("error", message="--ticks must be >= 0 and --interval-s in [0.001, 60]")
        return 2
    _protocol.start_guards(args.max_life_s)
    _protocol.announce("ready", pid=os.getpid())
    n = 0
    while args.ticks == 0 or n < args.ticks:
        time.sleep(args.interval_s)
        n += 1
        _protocol.announce("tick", n=n)
    _protocol.announce("result", ticks=n)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
