"""Exactly-once effect = at-least-once delivery + idempotence: a model and three real experiments.

- **theory / simulate** -- a worker that crashes between the effect and the ack
  with probability p redelivers each message a geometric number of times:
  ``E[duplicates] = n p / (1 - p)`` when acking after the effect, and
  ``E[lost] = n p`` when acking before it (:func:`theory_lease_outcome`,
  :func:`simulate_delivery`, vectorised over messages).
- **real: a lease queue** (:func:`run_lease_queue`) -- a SQLite queue and a worker
  child process (:mod:`syslab.queue_worker`) that SIGKILLs itself between effect
  and ack; the parent restarts it until the queue is drained and counts
  crashes, deliveries, effects, duplicates and losses.
- **real: a transactional outbox** (:func:`run_outbox`) -- producer, relay and
  consumer processes over three SQLite files, crashing at every step.
- **real: mail inside a transaction** (:func:`run_mail_scenarios`) -- a local TCP
  mail sink on 127.0.0.1 and three strategies, each crashed at each point.

Every real experiment uses temporary files only, binds only to 127.0.0.1, has a
hard time limit and kills every child it started.
"""

from __future__ import annotations

import shutil
import socketserver
import sqlite3
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from syslab import validate
from syslab.plot import axes_or_new, label
from syslab.processes import ChildProcess
from syslab.queue_worker import LEASE_MODES, MAIL_CRASH_POINTS, MAIL_STRATEGIES

__all__ = [
    "LEASE_MODES",
    "MAIL_STRATEGIES",
    "MailSink",
    "plot_delivery",
    "plot_lease_runs",
    "run_lease_queue",
    "run_mail_scenarios",
    "run_outbox",
    "simulate_delivery",
    "summarize_delivery",
    "sweep_delivery",
    "theory_lease_outcome",
]

WORKER = "syslab.queue_worker"


# ------------------------------------------------------------------------------- theory


def theory_lease_outcome(n_messages: int, p_crash: float, mode: str) -> dict[str, float]:
    """Expected deliveries, effects, duplicates and losses for ``n_messages`` through a crashing worker.

    Each delivery crashes with probability p at the mode's crash point.

    - ``ack-after``: a message is redelivered until one delivery survives, so
      deliveries are geometric with mean 1/(1-p); every delivery applied the
      effect, so duplicates = crashes, with mean n p / (1 - p).
    - ``ack-after-idempotent``: same deliveries, but the unique key turns each
      extra effect into a dedup hit: duplicates 0.
    - ``ack-before``: the message is gone once acked; a crash before the effect
      loses it: losses n p, no redelivery.
    """
    n = validate.positive_int("n_messages", n_messages)
    p = validate.float_in_range("p_crash", p_crash, 0.0, 1.0, high_inclusive=False)
    mode = validate.choice("mode", mode, LEASE_MODES)
    if mode == "ack-before":
        return {"deliveries": n, "effects": n * (1 - p), "duplicates": 0.0, "lost": n * p, "crashes": n * p}
    crashes = n * p / (1 - p)
    duplicates = crashes if mode == "ack-after" else 0.0
    return {
        "deliveries": n / (1 - p),
        "effects": n + duplicates,
        "duplicates": duplicates,
        "lost": 0.0,
        "crashes": crashes,
    }


def simulate_delivery(
    n_messages: int, p_crash: float, mode: str, seed: int | np.random.Generator = 0
) -> pd.DataFrame:
    """Per-message outcome of the crashing worker, drawn with numpy (no processes).

    Returns
    -------
    pandas.DataFrame
        One row per message: ``msg_id``, ``deliveries``, ``crashes``, ``effects``
        (times the effect was applied), ``dedup_hits`` and ``lost`` (bool).
    """
    n = validate.positive_int("n_messages", n_messages)
    p = validate.float_in_range("p_crash", p_crash, 0.0, 1.0, high_inclusive=False)
    mode = validate.choice("mode", mode, LEASE_MODES)
    rng = validate.rng_from_seed(seed)
    if mode == "ack-before":
        lost = rng.random(n) < p
        deliveries = np.ones(n, dtype=np.int64)
        crashes = lost.astype(np.int64)
        effects = (~lost).astype(np.int64)
        hits = np.zeros(n, dtype=np.int64)
    else:
        # Deliveries until the first one that does not crash: geometric on {1, 2, ...}.
        deliveries = rng.geometric(1 - p, size=n).astype(np.int64)
        crashes = deliveries - 1
        lost = np.zeros(n, dtype=bool)
        effects = deliveries if mode == "ack-after" else np.ones(n, dtype=np.int64)
        hits = crashes if mode == "ack-after-idempotent" else np.zeros(n, dtype=np.int64)
    return pd.DataFrame(
        {
            "msg_id": np.arange(n),
            "deliveries": deliveries,
            "crashes": crashes,
            "effects": effects,
            "dedup_hits": hits,
            "lost": lost,
        }
    )


def summarize_delivery(df: pd.DataFrame) -> pd.Series:
    """Totals of :func:`simulate_delivery`: deliveries, crashes, effects, duplicates, lost, dedup hits."""
    needed = {"deliveries", "crashes", "effects", "dedup_hits", "lost"}
    if not isinstance(df, pd.DataFrame) or not needed <= set(df.columns):
        raise ValueError("df must be the output of simulate_delivery")
    effects = df["effects"].to_numpy()
    return pd.Series(
        {
            "messages": len(df),
            "deliveries": int(df["deliveries"].sum()),
            "crashes": int(df["crashes"].sum()),
            "effects": int(effects.sum()),
            "duplicates": int(np.clip(effects - 1, 0, None).sum()),
            "lost": int(df["lost"].sum()),
            "dedup_hits": int(df["dedup_hits"].sum()),
        }
    )


def sweep_delivery(
    n_messages: int, p_values: list[float] | np.ndarray, seed: int | np.random.Generator = 0
) -> pd.DataFrame:
    """Simulated and expected duplicates and losses for each crash probability and mode.

    Returns
    -------
    pandas.DataFrame
        One row per (p_crash, mode): ``p_crash``, ``mode``, ``duplicates``,
        ``lost``, ``duplicates_theory``, ``lost_theory``, ``duplicate_rate``
        (duplicates / messages), ``loss_rate`` and their ``*_theory`` twins.
    """
    rng = validate.rng_from_seed(seed)
    n = validate.positive_int("n_messages", n_messages)
    rows = []
    for p in np.asarray(p_values, dtype=float):
        for mode in LEASE_MODES:
            got = summarize_delivery(simulate_delivery(n, float(p), mode, rng))
            expected = theory_lease_outcome(n, float(p), mode)
            rows.append(
                {
                    "p_crash": float(p),
                    "mode": mode,
                    "duplicates": int(got["duplicates"]),
                    "lost": int(got["lost"]),
                    "duplicates_theory": expected["duplicates"],
                    "lost_theory": expected["lost"],
                    "duplicate_rate": got["duplicates"] / n,
                    "loss_rate": got["lost"] / n,
                    "duplicate_rate_theory": expected["duplicates"] / n,
                    "loss_rate_theory": expected["lost"] / n,
                }
            )
    return pd.DataFrame(rows)


# ------------------------------------------------------------------- running children


def _supervise(
    args: list[str], *, timeout_s: float, max_starts: int, label_: str
) -> tuple[Counter, int, float]:
    """Run a supervised worker child (``--restarts``) until its work is done; count its crashes.

    The child (:mod:`syslab.queue_worker`) forks the role, and forks it again each time
    it SIGKILLs itself. Returns (crashes per crash point, worker starts, seconds).
    """
    started = time.monotonic()
    command = [*args, "--restarts", str(max_starts), "--deadline-s", str(timeout_s)]
    with ChildProcess(WORKER, command, timeout_s=timeout_s + 5) as child:
        try:
            out, err = child.process.communicate(timeout=timeout_s + 5)
        except Exception as error:  # TimeoutExpired: the with block kills the process group
            raise TimeoutError(f"{label_}: worker did not finish within {timeout_s} s") from error
        code = child.process.returncode
    if code != 0:
        raise RuntimeError(f"{label_}: supervisor exited with {code}: {err.decode()[-2000:]}")
    crashes: Counter = Counter()
    starts = 0
    for line in out.decode().splitlines():
        if line.startswith("CRASH "):
            crashes[line.split(" ", 1)[1]] += 1
        elif line.startswith("STARTS "):
            starts = int(line.split()[1])
    return crashes, starts, time.monotonic() - started


class _TempDir:
    """A temporary folder removed on exit, even if the experiment raised."""

    def __enter__(self) -> Path:
        self.path = Path(tempfile.mkdtemp(prefix="syslab-eos-"))
        return self.path

    def __exit__(self, *exc_info) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _create(path: Path, script: str) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.executescript(script)
        conn.commit()
    finally:
        conn.close()


def _scalar(path: Path, sql: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()


# ------------------------------------------------------------------------- lease queue


def run_lease_queue(
    n_messages: int = 300,
    p_crash: float = 0.1,
    mode: str = "ack-after",
    seed: int = 0,
    lease_s: float = 0.05,
    timeout_s: float = 60.0,
) -> pd.Series:
    """Drain a real SQLite lease queue with a worker that SIGKILLs itself at its crash point.

    Parameters
    ----------
    n_messages : int
        Messages enqueued.
    p_crash : float
        Probability that a delivery crashes the worker at the mode's crash point.
    mode : {"ack-after", "ack-after-idempotent", "ack-before"}
        When the worker acknowledges, and whether the effect has a unique key.
    lease_s : float
        Visibility timeout: a leased message not acked within it is delivered again.
    timeout_s : float
        Hard limit for the whole run.

    Returns
    -------
    pandas.Series
        ``mode``, ``messages``, ``crashes``, ``worker_starts``, ``deliveries``,
        ``effects``, ``unique_effects``, ``duplicates`` (effects beyond one per
        message), ``lost`` (messages with no effect), ``dedup_hits``, ``seconds``.
    """
    n = validate.positive_int("n_messages", n_messages)
    p = validate.float_in_range("p_crash", p_crash, 0.0, 0.9)
    mode = validate.choice("mode", mode, LEASE_MODES)
    seed = validate.non_negative_int("seed", seed)
    lease = validate.positive_float("lease_s", lease_s)
    limit = validate.positive_float("timeout_s", timeout_s)
    with _TempDir() as folder:
        db = folder / "queue.db"
        _create(
            db,
            """
            PRAGMA journal_mode=WAL;
            CREATE TABLE queue (id INTEGER PRIMARY KEY, done INTEGER NOT NULL DEFAULT 0,
                                lease_until REAL NOT NULL DEFAULT 0, deliveries INTEGER NOT NULL DEFAULT 0);
            CREATE TABLE effects (id INTEGER PRIMARY KEY, msg_id INTEGER NOT NULL);
            CREATE TABLE effects_unique (msg_id INTEGER PRIMARY KEY);
            CREATE TABLE dedup_hits (id INTEGER PRIMARY KEY, msg_id INTEGER NOT NULL);
            """
            + f"WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {n}) "
            "INSERT INTO queue (id) SELECT i FROM c;",
        )
        crashes, starts, seconds = _supervise(
            [
                "lease",
                "--db",
                str(db),
                "--mode",
                mode,
                "--p-crash",
                str(p),
                "--seed",
                str(seed),
                "--lease-s",
                str(lease),
            ],
            timeout_s=limit,
            max_starts=20 * n + 10,
            label_=f"lease queue ({mode})",
        )
        table = "effects_unique" if mode == "ack-after-idempotent" else "effects"
        effects = _scalar(db, f"SELECT count(*) FROM {table}")
        unique = _scalar(db, f"SELECT count(DISTINCT msg_id) FROM {table}")
        return pd.Series(
            {
                "mode": mode,
                "messages": n,
                "crashes": int(sum(crashes.values())),
                "worker_starts": starts,
                "deliveries": _scalar(db, "SELECT sum(deliveries) FROM queue"),
                "effects": effects,
                "unique_effects": unique,
                "duplicates": effects - unique,
                "lost": n - unique,
                "dedup_hits": _scalar(db, "SELECT count(*) FROM dedup_hits"),
                "seconds": seconds,
            }
        )


# ------------------------------------------------------------------------------ outbox


def run_outbox(
    n_orders: int = 100, p_crash: float = 0.05, seed: int = 0, dedup: bool = True, timeout_s: float = 60.0
) -> tuple[pd.Series, pd.DataFrame]:
    """A transactional outbox with crashes injected at every step of producer, relay and consumer.

    Three SQLite files stand for three systems: the order service (``orders`` and
    ``outbox`` in one database, written in one transaction), the broker (an
    append-only ``log``) and the consumer (its ``effects``, the ``processed`` ids
    and its read ``offset``). The producer, relay and consumer are child processes
    run one after the other, each restarted after every crash until done.

    Returns
    -------
    (pandas.Series, pandas.DataFrame)
        Totals: ``orders``, ``outbox_rows``, ``published`` (log entries, with
        duplicates), ``unique_published``, ``effects``, ``unique_effects``,
        ``doubled_effects``, ``lost``, ``dedup_hits``, ``crashes``, ``seconds``;
        and one row per crash point: ``role``, ``crash_point``, ``crashes``.
    """
    n = validate.positive_int("n_orders", n_orders)
    p = validate.float_in_range("p_crash", p_crash, 0.0, 0.5)
    seed = validate.non_negative_int("seed", seed)
    limit = validate.positive_float("timeout_s", timeout_s)
    started = time.monotonic()
    with _TempDir() as folder:
        orders, broker, consumer = folder / "orders.db", folder / "broker.db", folder / "consumer.db"
        _create(
            orders,
            "PRAGMA journal_mode=WAL; CREATE TABLE requests (id INTEGER PRIMARY KEY);"
            " CREATE TABLE orders (id INTEGER PRIMARY KEY, amount INTEGER NOT NULL);"
            " CREATE TABLE outbox (id INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE,"
            " payload TEXT NOT NULL, published INTEGER NOT NULL);"
            f" WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {n})"
            " INSERT INTO requests (id) SELECT i FROM c;",
        )
        _create(
            broker,
            "PRAGMA journal_mode=WAL;"
            " CREATE TABLE log (seq INTEGER PRIMARY KEY, event_id TEXT, payload TEXT);",
        )
        _create(
            consumer,
            "PRAGMA journal_mode=WAL; CREATE TABLE effects (id INTEGER PRIMARY KEY, event_id TEXT NOT NULL);"
            " CREATE TABLE processed (event_id TEXT PRIMARY KEY);"
            " CREATE TABLE dedup_hits (id INTEGER PRIMARY KEY, event_id TEXT);"
            " CREATE TABLE offsets (name TEXT PRIMARY KEY, position INTEGER NOT NULL);"
            " INSERT INTO offsets VALUES ('log', 0);",
        )
        common = ["--db", str(orders), "--broker-db", str(broker), "--consumer-db", str(consumer)]
        rows = []
        for role_index, role in enumerate(("producer", "relay", "consumer")):
            remaining = limit - (time.monotonic() - started)
            role_seed = str(seed * 10_007 + role_index)
            crashes, _, _ = _supervise(
                [role, *common, "--dedup", str(int(dedup)), "--p-crash", str(p), "--seed", role_seed],
                timeout_s=max(remaining, 1.0),
                max_starts=10 * n + 10,
                label_=f"outbox {role}",
            )
            rows += [
                {"role": role, "crash_point": point, "crashes": c} for point, c in sorted(crashes.items())
            ]
        effects = _scalar(consumer, "SELECT count(*) FROM effects")
        unique_effects = _scalar(consumer, "SELECT count(DISTINCT event_id) FROM effects")
        totals = pd.Series(
            dtype=object,
            data={
                "orders": _scalar(orders, "SELECT count(*) FROM orders"),
                "outbox_rows": _scalar(orders, "SELECT count(*) FROM outbox"),
                "published": _scalar(broker, "SELECT count(*) FROM log"),
                "unique_published": _scalar(broker, "SELECT count(DISTINCT event_id) FROM log"),
                "effects": effects,
                "unique_effects": unique_effects,
                "doubled_effects": effects - unique_effects,
                "lost": n - unique_effects,
                "dedup_hits": _scalar(consumer, "SELECT count(*) FROM dedup_hits"),
                "crashes": int(sum(r["crashes"] for r in rows)),
                "seconds": time.monotonic() - started,
            },
        )
    points = pd.DataFrame(rows, columns=["role", "crash_point", "crashes"])
    return totals, points


# -------------------------------------------------------------------------------- mail


class MailSink:
    """A tiny line-based mail sink on 127.0.0.1 (an ephemeral port), recording every message.

    Each connection sends ``MAIL <order> <message-id>`` and gets ``250 OK``. Use as a
    context manager; the server thread is shut down and the socket closed on exit.
    """

    def __init__(self) -> None:
        self.messages: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                line = self.rfile.readline(4096).decode(errors="replace").split()
                if len(line) == 3 and line[0] == "MAIL":
                    with sink._lock:
                        sink.messages.append((line[1], line[2]))
                    self.wfile.write(b"250 OK\n")
                else:
                    self.wfile.write(b"500 bad command\n")

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})

    def __enter__(self) -> MailSink:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def run_mail_scenarios(timeout_s: float = 60.0) -> pd.DataFrame:
    """Send an order confirmation by each strategy, crashing once at each point, then retrying.

    For every strategy and crash point: a fresh database and mail sink; the worker
    runs with the crash armed; if it crashed, the client retries the same order
    (the retry does nothing if the order already exists) and, for the outbox, the
    relay resumes. Then the database and the sink are compared.

    Returns
    -------
    pandas.DataFrame
        One row per (strategy, crash point): ``strategy``, ``crash_point``,
        ``crashed`` (bool), ``order_committed`` (bool), ``mails_received``,
        ``ghost_mails`` (mails for an order that did not exist when they were
        sent -- here: mails beyond one, sent from a rolled-back transaction),
        ``missing_mail`` (bool: order committed, no mail), ``duplicate_mails``
        (mails beyond one), ``after_dedup_by_message_id`` (distinct Message-IDs).
    """
    limit = validate.positive_float("timeout_s", timeout_s)
    started = time.monotonic()
    rows = []
    for strategy in MAIL_STRATEGIES:
        for point in MAIL_CRASH_POINTS[strategy]:
            remaining = limit - (time.monotonic() - started)
            if remaining <= 0:
                raise TimeoutError(f"mail scenarios took longer than {limit} s")
            with _TempDir() as folder, MailSink() as sink:
                db = folder / "shop.db"
                _create(
                    db,
                    "PRAGMA journal_mode=WAL; CREATE TABLE orders (id INTEGER PRIMARY KEY);"
                    " CREATE TABLE mail_outbox (order_id INTEGER PRIMARY KEY, sent INTEGER NOT NULL);",
                )
                base = ["mail", "--db", str(db), "--strategy", strategy, "--sink-port", str(sink.port)]
                crashes, _, _ = _supervise(
                    [*base, "--crash-at", point],
                    timeout_s=remaining,
                    max_starts=3,
                    label_=f"mail {strategy}/{point}",
                )
                committed = _scalar(db, "SELECT count(*) FROM orders") == 1
                mails = list(sink.messages)
            received = len(mails)
            ghost = point == "after-mail-before-commit"  # the first mail left before a rollback
            rows.append(
                {
                    "strategy": strategy,
                    "crash_point": point,
                    "crashed": bool(crashes),
                    "order_committed": committed,
                    "mails_received": received,
                    "ghost_mails": int(ghost and received > 0),
                    "missing_mail": committed and received == 0,
                    "duplicate_mails": max(received - 1, 0),
                    "after_dedup_by_message_id": len({message_id for _, message_id in mails}),
                }
            )
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------- plots


def plot_delivery(sweep: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Duplicate rate (ack after) and loss rate (ack before) against crash probability.

    ``sweep`` is the output of :func:`sweep_delivery`: markers are simulated, lines theory.
    """
    ax = axes_or_new(ax)
    for i, (mode, part) in enumerate(sweep.groupby("mode", sort=False)):
        what = "lost" if mode == "ack-before" else "duplicated"
        column = "loss_rate" if mode == "ack-before" else "duplicate_rate"
        ax.plot(part["p_crash"], part[f"{column}_theory"], "-", color=f"C{i}")
        ax.plot(part["p_crash"], part[column], "o", color=f"C{i}", label=f"{mode}: {what}")
    return label(
        ax, "probability a delivery crashes the worker", "share of messages duplicated or lost", legend=True
    )


def plot_lease_runs(runs: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Grouped bars per acknowledgement mode: worker crashes, duplicated effects and lost messages.

    ``runs`` has one row per mode with the columns of :func:`run_lease_queue`.
    """
    ax = axes_or_new(ax)
    x = np.arange(len(runs))
    for i, (column, name) in enumerate(
        (("crashes", "worker crashes"), ("duplicates", "duplicated effects"), ("lost", "lost messages"))
    ):
        ax.bar(x + (i - 1) * 0.27, runs[column], 0.27, label=name, color=f"C{i}")
    ax.set_xticks(x, runs["mode"])
    top = float(runs[["crashes", "duplicates", "lost"]].to_numpy().max())
    ax.set_ylim(0, max(top, 1) * 1.35)  # room for the legend above the bars
    label(ax, "acknowledgement mode", "messages")
    ax.legend(loc="upper center", ncols=3)
    return ax
