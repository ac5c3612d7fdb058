"""A Redis Streams consumer that writes its effects to PostgreSQL; the parent SIGKILLs it mid-batch.

Run by :func:`syslab.exactly_once.run_transactional_consumer` as
``python -m syslab.children.stream_consumer --redis-url ... --pg-dsn ... --consumer NAME``.

Each life of the process:

1. reads its own pending entries first (``XREADGROUP ... STREAMS s 0``: what an earlier life of
   the same consumer name read and never acknowledged), then new ones (``>``), ``--batch`` at a time;
2. applies each entry in **one PostgreSQL transaction**: with ``--dedup 1`` it inserts the message
   id into ``processed`` (primary key) and, only if that row is new, the effect row; with
   ``--dedup 0`` it inserts the effect row alone;
3. acknowledges the whole batch with one ``XACK`` after the batch.

It announces ``{"event": "commit", "n": k, "position": i}`` after every commit (k commits in this
life, i the entry's position in its batch) so the parent can kill it in the middle of a batch,
and ``{"event": "result", ...}`` when the stream is drained. The clients (redis-py and psycopg)
are the only imports beyond the standard library: this child talks to real servers.
"""

from __future__ import annotations

import argparse
import sys
import time

from syslab.children import _protocol


def parse(argv: list[str]) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m syslab.children.stream_consumer")
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--pg-dsn", required=True)
    parser.add_argument("--stream", default="orders")
    parser.add_argument("--group", default="billing")
    parser.add_argument("--consumer", default="worker-1")
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--dedup", type=int, choices=(0, 1), default=1)
    parser.add_argument("--work-ms", type=float, default=2.0, help="time each effect takes")
    _protocol.add_common_arguments(parser)
    return parser.parse_args(argv)


def apply(conn, msg_id: int, amount: int, dedup: bool) -> bool:
    """One entry in one transaction; True if the effect was applied, False for a dedup hit."""
    with conn.transaction():
        if dedup:
            fresh = conn.execute(
                "INSERT INTO processed (msg_id) VALUES (%s) ON CONFLICT DO NOTHING RETURNING msg_id",
                (msg_id,),
            ).fetchone()
            if fresh is None:
                conn.execute("INSERT INTO dedup_hits (msg_id) VALUES (%s)", (msg_id,))
                return False
        conn.execute("INSERT INTO effects (msg_id, amount) VALUES (%s, %s)", (msg_id, amount))
    return True


def main(argv: list[str] | None = None) -> int:
    """Consume until the stream is drained; return the exit code."""
    args = parse(sys.argv[1:] if argv is None else argv)
    _protocol.start_guards(args.max_life_s)
    import psycopg
    import redis

    r = redis.Redis.from_url(args.redis_url)
    conn = psycopg.connect(args.pg_dsn, autocommit=True)
    _protocol.announce("ready", consumer=args.consumer)
    commits = applied = hits = 0
    cursor = "0"  # first our own pending entries, then new ones
    while True:
        reply = r.xreadgroup(args.group, args.consumer, {args.stream: cursor}, count=args.batch)
        entries = reply[0][1] if reply else []
        if not entries:
            if cursor == "0":
                cursor = ">"
                continue
            break
        for position, (_entry_id, fields) in enumerate(entries):
            if args.work_ms > 0:
                time.sleep(args.work_ms / 1000)
            if apply(conn, int(fields[b"msg"]), int(fields[b"amount"]), bool(args.dedup)):
                applied += 1
            else:
                hits += 1
            commits += 1
            _protocol.announce("commit", n=commits, position=position)
        r.xack(args.stream, args.group, *[entry_id for entry_id, _ in entries])
    _protocol.announce("result", commits=commits, applied=applied, dedup_hits=hits)
    conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
