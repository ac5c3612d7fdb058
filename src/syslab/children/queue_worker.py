"""Worker processes for the exactly-once experiments, run as children by :mod:`syslab.exactly_once`.

Each role is a small loop over SQLite files that, at named crash points, kills
*itself* with SIGKILL with probability ``--p-crash`` -- no cleanup, no
``finally``, no flushed buffers: the way a process dies when the kernel's OOM
killer or a node failure takes it. Before dying it announces
``{"event": "crash", "point": ...}`` on stdout (the JSON protocol of
:mod:`syslab.children._protocol`) so the parent can count crashes per point.

Roles (``python -m syslab.children.queue_worker ROLE ...``):

``lease``
    Take messages from a SQLite lease queue, apply the effect, acknowledge.
    ``--mode ack-after`` (effect, then ack), ``ack-after-idempotent`` (effect
    guarded by a unique key, then ack) or ``ack-before`` (ack, then effect).
``producer`` / ``relay`` / ``consumer``
    The transactional outbox: orders and outbox rows in one transaction; a relay
    that copies outbox rows to a broker log at least once; a consumer that
    applies each event once by recording its id in the same transaction as the effect.
``mail``
    One order with a confirmation mail sent to a local TCP mail sink, by one of
    three strategies, with a crash at one named point.

With ``--restarts N`` the process acts as its own supervisor: it forks the role
as a child process, and when that child dies by SIGKILL it forks a fresh one
(with the next seed) until one finishes, at most N times. A fork is a new
process -- the SQLite connections, the random state and everything in memory
die with the old one -- but it costs a millisecond instead of the hundreds of
milliseconds a new interpreter takes on a busy machine. The supervisor announces
``{"event": "result", "starts": n}`` and exits 0 when the work is done, or
``{"event": "error", ...}``.

Only the standard library is imported so a child starts quickly.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import sqlite3
import sys
import time

from syslab.children import _protocol

LEASE_MODES = ("ack-after", "ack-after-idempotent", "ack-before")
MAIL_STRATEGIES = ("mail-in-transaction", "mail-after-commit", "outbox")
MAIL_CRASH_POINTS = {
    "mail-in-transaction": ("none", "after-mail-before-commit", "after-commit"),
    "mail-after-commit": ("none", "before-commit", "after-commit-before-mail"),
    "outbox": ("none", "before-commit", "after-mail-before-mark-sent"),
}


def crash(point: str) -> None:
    """Announce the crash point and SIGKILL this process (nothing after this line runs)."""
    _protocol.announce("crash", point=point)
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(10)  # pragma: no cover - SIGKILL is not deliverable-late on Linux, but never fall through


def maybe_crash(rng: random.Random, p: float, point: str) -> None:
    if rng.random() < p:
        crash(point)


def connect(path: str) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN/COMMIT ourselves, so the transaction
    # boundaries in the code are exactly the ones SQLite sees.
    conn = sqlite3.connect(path, timeout=10, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode: a commit survives the death of the process (the data is in the
    # OS page cache), which is the failure studied here; only a power cut could lose it.
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


# --------------------------------------------------------------------------- lease queue


def run_lease(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    conn = connect(args.db)
    deadline = time.monotonic() + args.deadline_s
    while time.monotonic() < deadline:
        conn.execute("BEGIN IMMEDIATE")
        now = time.time()
        row = conn.execute(
            "SELECT id FROM queue WHERE done = 0 AND lease_until < ? ORDER BY id LIMIT 1", (now,)
        ).fetchone()
        if row is None:
            pending = conn.execute("SELECT count(*) FROM queue WHERE done = 0").fetchone()[0]
            conn.execute("COMMIT")
            if pending == 0:
                return 0
            time.sleep(args.lease_s / 4)  # a crashed worker's lease has not expired yet
            continue
        msg_id = row[0]
        conn.execute(
            "UPDATE queue SET lease_until = ?, deliveries = deliveries + 1 WHERE id = ?",
            (now + args.lease_s, msg_id),
        )
        conn.execute("COMMIT")
        if args.mode == "ack-before":
            conn.execute("UPDATE queue SET done = 1 WHERE id = ?", (msg_id,))
            maybe_crash(rng, args.p_crash, "after-ack-before-effect")
            conn.execute("INSERT INTO effects (msg_id) VALUES (?)", (msg_id,))
            continue
        if args.mode == "ack-after":
            conn.execute("INSERT INTO effects (msg_id) VALUES (?)", (msg_id,))
        else:
            conn.execute("BEGIN")
            inserted = conn.execute("INSERT OR IGNORE INTO effects_unique (msg_id) VALUES (?)", (msg_id,))
            if inserted.rowcount == 0:
                conn.execute("INSERT INTO dedup_hits (msg_id) VALUES (?)", (msg_id,))
            conn.execute("COMMIT")
        maybe_crash(rng, args.p_crash, "after-effect-before-ack")
        conn.execute("UPDATE queue SET done = 1 WHERE id = ?", (msg_id,))
    return 3  # deadline passed with work left: the parent reports it


# ------------------------------------------------------------------------------- outbox


def run_producer(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    conn = connect(args.db)
    requests = [r[0] for r in conn.execute("SELECT id FROM requests ORDER BY id")]
    for request_id in requests:
        # The client retries a failed request with the same id; the order id is that id,
        # so a retry after a crash that did commit finds the order and does nothing.
        if conn.execute("SELECT 1 FROM orders WHERE id = ?", (request_id,)).fetchone():
            continue
        conn.execute("BEGIN")
        conn.execute("INSERT INTO orders (id, amount) VALUES (?, ?)", (request_id, request_id % 97))
        maybe_crash(rng, args.p_crash, "producer-inside-transaction")
        conn.execute(
            "INSERT INTO outbox (event_id, payload, published) VALUES (?, ?, 0)",
            (f"order-{request_id}", f"order {request_id} created"),
        )
        conn.execute("COMMIT")
        maybe_crash(rng, args.p_crash, "producer-after-commit")
    return 0


def run_relay(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    source = connect(args.db)
    broker = connect(args.broker_db)
    rows = source.execute(
        "SELECT id, event_id, payload FROM outbox WHERE published = 0 ORDER BY id"
    ).fetchall()
    for outbox_id, event_id, payload in rows:
        broker.execute("INSERT INTO log (event_id, payload) VALUES (?, ?)", (event_id, payload))
        # Two databases, no shared transaction: a crash here republishes on restart.
        maybe_crash(rng, args.p_crash, "relay-after-publish-before-mark")
        source.execute("UPDATE outbox SET published = 1 WHERE id = ?", (outbox_id,))
    return 0


def run_consumer(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    broker = connect(args.broker_db)
    conn = connect(args.consumer_db)
    offset = conn.execute("SELECT position FROM offsets WHERE name = 'log'").fetchone()[0]
    rows = broker.execute("SELECT seq, event_id FROM log WHERE seq > ? ORDER BY seq", (offset,)).fetchall()
    for seq, event_id in rows:
        conn.execute("BEGIN")
        fresh = True
        if args.dedup:
            fresh = conn.execute(
                "INSERT OR IGNORE INTO processed (event_id) VALUES (?)", (event_id,)
            ).rowcount
        if fresh:
            conn.execute("INSERT INTO effects (event_id) VALUES (?)", (event_id,))
            maybe_crash(rng, args.p_crash, "consumer-inside-transaction")
        else:
            conn.execute("INSERT INTO dedup_hits (event_id) VALUES (?)", (event_id,))
        conn.execute("COMMIT")
        maybe_crash(rng, args.p_crash, "consumer-after-effect-before-offset")
        conn.execute("UPDATE offsets SET position = ? WHERE name = 'log'", (seq,))
    return 0


# --------------------------------------------------------------------------------- mail


def send_mail(port: int, order_id: int) -> None:
    """Deliver one message to the sink on 127.0.0.1 and wait for its 250 reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"MAIL order-{order_id} <order-{order_id}@syslab.invalid>\n".encode())
        reply = sock.makefile("rb").readline()
    if not reply.startswith(b"250"):
        raise RuntimeError(f"mail sink refused the message: {reply!r}")


def run_mail(args: argparse.Namespace) -> int:
    conn = connect(args.db)
    order_id = args.order_id
    at = args.crash_at if args.start == 0 else "none"  # the client's retry does not crash again
    # A retried request for an order that already exists does nothing (idempotent by order id).
    exists = conn.execute("SELECT 1 FROM orders WHERE id = ?", (order_id,)).fetchone()
    if args.strategy == "mail-in-transaction":
        if not exists:
            conn.execute("BEGIN")
            conn.execute("INSERT INTO orders (id) VALUES (?)", (order_id,))
            send_mail(args.sink_port, order_id)
            if at == "after-mail-before-commit":
                crash(at)
            conn.execute("COMMIT")
            if at == "after-commit":
                crash(at)
        return 0
    if args.strategy == "mail-after-commit":
        if not exists:
            conn.execute("BEGIN")
            conn.execute("INSERT INTO orders (id) VALUES (?)", (order_id,))
            if at == "before-commit":
                crash(at)
            conn.execute("COMMIT")
            if at == "after-commit-before-mail":
                crash(at)
            send_mail(args.sink_port, order_id)
        return 0
    # outbox: the mail is a row committed with the order; a relay sends it and marks it sent.
    if not exists:
        conn.execute("BEGIN")
        conn.execute("INSERT INTO orders (id) VALUES (?)", (order_id,))
        if at == "before-commit":
            crash(at)
        conn.execute("INSERT INTO mail_outbox (order_id, sent) VALUES (?, 0)", (order_id,))
        conn.execute("COMMIT")
    for (pending,) in conn.execute("SELECT order_id FROM mail_outbox WHERE sent = 0").fetchall():
        send_mail(args.sink_port, pending)
        if at == "after-mail-before-mark-sent":
            crash(at)
        conn.execute("UPDATE mail_outbox SET sent = 1 WHERE order_id = ?", (pending,))
    return 0


# ---------------------------------------------------------------------------------- main


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m syslab.children.queue_worker")
    sub = parser.add_subparsers(dest="role", required=True)
    lease = sub.add_parser("lease")
    lease.add_argument("--db", required=True)
    lease.add_argument("--mode", choices=LEASE_MODES, required=True)
    lease.add_argument("--lease-s", type=float, default=0.1)
    for name in ("producer", "relay", "consumer"):
        role = sub.add_parser(name)
        role.add_argument("--db", required=name != "consumer")
        role.add_argument("--broker-db")
        role.add_argument("--consumer-db")
        role.add_argument("--dedup", type=int, default=1)
    mail = sub.add_parser("mail")
    mail.add_argument("--db", required=True)
    mail.add_argument("--strategy", choices=MAIL_STRATEGIES, required=True)
    mail.add_argument("--crash-at", default="none")
    mail.add_argument("--order-id", type=int, default=1)
    mail.add_argument("--sink-port", type=int, required=True)
    for role in sub.choices.values():
        role.add_argument("--p-crash", type=float, default=0.0)
        role.add_argument("--seed", type=int, default=0)
        role.add_argument("--restarts", type=int, default=0, help="supervise: fork again after a SIGKILL")
        role.add_argument("--deadline-s", type=float, default=30.0)
        _protocol.add_common_arguments(role)
    args = parser.parse_args(argv)
    args.start = 0
    return args


def supervise(run, args: argparse.Namespace) -> int:
    """Fork ``run(args)`` again after every SIGKILL, at most ``args.restarts`` times, before a deadline."""
    deadline = time.monotonic() + args.deadline_s
    base_seed = args.seed
    for start in range(args.restarts):
        if time.monotonic() > deadline:
            break
        args.start = start
        args.seed = base_seed * 1_000_003 + start
        pid = os.fork()
        if pid == 0:  # the worker: its own process, its own connections, its own death
            code = 1
            try:
                code = run(args)
            finally:
                sys.stdout.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        if os.WIFEXITED(status):
            code = os.WEXITSTATUS(status)
            if code == 0:
                _protocol.announce("result", starts=start + 1)
                return 0
            _protocol.announce("error", message=f"worker exited with code {code}")
            return code
        if os.WTERMSIG(status) != signal.SIGKILL:
            _protocol.announce("error", message=f"worker killed by signal {os.WTERMSIG(status)}")
            return 4
    _protocol.announce("error", message="supervisor gave up: too many restarts or deadline passed")
    return 3


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    runners = {
        "lease": run_lease,
        "producer": run_producer,
        "relay": run_relay,
        "consumer": run_consumer,
        "mail": run_mail,
    }
    run = runners[args.role]
    _protocol.start_guards(args.max_life_s)
    _protocol.announce("ready", role=args.role)
    if args.restarts > 0:
        return supervise(run, args)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
