"""Exactly-once effect = at-least-once delivery + idempotence: a model and real experiments.

- **theory** -- a worker that crashes between the effect and the ack with probability p
  redelivers each message a geometric number of times: ``E[duplicates] = n p / (1 - p)``
  when acking after the effect, ``E[lost] = n p`` when acking before it
  (:func:`theory_lease_outcome`).
- **model** -- :func:`simulate_lease_delivery` plays each message's deliveries against a
  lease (visibility timeout): a delivery that neither acknowledges nor dies within the
  lease is handed to another consumer, so a *slow but live* consumer produces duplicates
  without any crash; crashes add their own. :func:`sweep_lease` runs it over lease lengths.
- **real, Redis** (:func:`run_stream_group`) -- a Redis Streams consumer group
  (``XREADGROUP``, ``XACK``, ``XAUTOCLAIM``) with consumers that sometimes pause longer
  than the lease: duplicated effects with no crash at all.
- **real, Redis + PostgreSQL** (:func:`run_transactional_consumer`) -- a consumer process
  reading the stream commits each effect together with its deduplication key in one
  PostgreSQL transaction and is SIGKILLed in the middle of batches: zero duplicates
  with the key, one per unacknowledged commit without it.
- **real, SQLite stand-ins** -- a lease queue (:func:`run_lease_queue`), a transactional
  outbox (:func:`run_outbox`) and mail inside a transaction (:func:`run_mail_scenarios`),
  with worker children (:mod:`syslab.children.queue_worker`) that SIGKILL themselves.

Every real experiment uses temporary files or a fresh database only, binds only to
127.0.0.1, has one time limit covering set-up, and kills every child it started.
"""

from __future__ import annotations

import socketserver
import sqlite3
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from syslab import experiment, validate
from syslab.plot import axes_or_new, label
from syslab.processes import ChildProcess

__all__ = [
    "LEASE_MODES",
    "MAIL_STRATEGIES",
    "MAX_MESSAGES",
    "MailSink",
    "plot_lease_runs",
    "plot_lease_sweep",
    "run_lease_queue",
    "run_mail_scenarios",
    "run_outbox",
    "run_stream_group",
    "run_transactional_consumer",
    "simulate_lease_delivery",
    "summarize_lease_delivery",
    "sweep_lease",
    "theory_lease_outcome",
]

WORKER = "syslab.children.queue_worker"
CONSUMER = "syslab.children.stream_consumer"

# The three acknowledgement modes and the mail strategies (the child program has the same tuples).
LEASE_MODES = ("ack-after", "ack-after-idempotent", "ack-before")
MAIL_STRATEGIES = ("mail-in-transaction", "mail-after-commit", "outbox")

# Bounds (a chapter runs in 30 s on 2 cores; the model is vectorised, the real runs are not).
MAX_MODEL_MESSAGES = 5_000_000  # messages in one model run (~10 arrays of this length)
MAX_MESSAGES = 5_000  # messages through a real queue (SQLite, Redis, PostgreSQL)
MAX_TIMEOUT_S = 300.0  # one real experiment, set-up included
MAX_LEASE_S = 3_600.0  # a lease (visibility timeout) in the model
MAX_REAL_LEASE_S = 5.0  # a lease in a real run (it waits for leases to expire)
MAX_PAUSE_S = 10.0  # a consumer's pause in a real run
MAX_P_CRASH = 0.9  # beyond it the redelivery chains grow without useful bound
MAX_ROUNDS = 400  # deliveries of one message in the model (0.9**400 ~ 5e-19)
MAX_CONSUMERS = 16
MAX_BATCH = 500
MAX_KILLS = 50
# ------------------------------------------------------------------------------- theory


def theory_lease_outcome(n_messages: int, p_crash: float, mode: str) -> dict[str, float]:
    """Expected deliveries, effects, duplicates and losses through a worker that crashes.

    Each delivery crashes with probability p at the mode's crash point.

    - ``ack-after``: a message is redelivered until one delivery survives, so deliveries
      are geometric with mean 1/(1-p); every delivery applied the effect, so
      duplicates = crashes, with mean n p / (1 - p).
    - ``ack-after-idempotent``: the same deliveries, but the unique key turns each extra
      effect into a dedup hit: duplicates 0.
    - ``ack-before``: the message is gone once acked; a crash before the effect loses it:
      losses n p, no redelivery.

    Parameters
    ----------
    n_messages : int
        Messages sent, 1 to ``MAX_MODEL_MESSAGES`` × 1000 (a closed form: any volume a day holds).
    p_crash : float
        Probability a delivery dies at the crash point, in [0, 1).
    mode : {"ack-after", "ack-after-idempotent", "ack-before"}
        When the worker acknowledges, and whether the effect has a unique key.

    Returns
    -------
    dict of str to float
        ``deliveries``, ``effects``, ``duplicates``, ``lost``, ``crashes`` (expected counts).
    """
    n = validate.bounded_int("n_messages", n_messages, MAX_MODEL_MESSAGES * 1000)
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


# -------------------------------------------------------------------------------- model


def simulate_lease_delivery(
    n_messages: int,
    *,
    p_crash: float = 0.0,
    lease_s: float = 30.0,
    mean_service_s: float = 0.1,
    p_pause: float = 0.0,
    pause_s: float = 0.0,
    claim_interval_s: float = 1.0,
    mode: str = "ack-after",
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Each message's deliveries through a lease queue with crashing and pausing consumers.

    A delivery takes an exponential service time (mean ``mean_service_s``) plus, with
    probability ``p_pause``, a pause of ``pause_s`` (a stop-the-world collection, a slow
    downstream call). With probability ``p_crash`` the consumer dies at the mode's crash
    point. The broker hands the message to another consumer when the lease has run out
    and its next reclaim scan comes round (``lease_s`` plus a uniform wait of up to
    ``claim_interval_s``, as ``XAUTOCLAIM`` or SQS's visibility timeout do), unless some
    delivery has acknowledged it by then. A slow delivery that is overtaken still
    finishes: its effect is applied too. Consumers are assumed to be available (no
    queueing for a consumer).

    Parameters
    ----------
    n_messages : int
        Messages, 1 to ``MAX_MODEL_MESSAGES``.
    p_crash : float
        Probability a delivery crashes, in [0, ``MAX_P_CRASH``].
    lease_s : float
        Lease (visibility timeout, ``XAUTOCLAIM`` min-idle-time), seconds, > 0.
    mean_service_s : float
        Mean service time of a delivery, seconds, >= 0.
    p_pause : float
        Probability a delivery pauses, in [0, 1].
    pause_s : float
        Length of a pause, seconds, >= 0.
    claim_interval_s : float
        Seconds between reclaim scans, >= 0.
    mode : {"ack-after", "ack-after-idempotent", "ack-before"}
        When the consumer acknowledges, and whether the effect has a unique key.
    seed : int, numpy Generator or None
        Random stream.

    Returns
    -------
    pandas.DataFrame
        One row per message: ``msg_id``, ``deliveries``, ``crash_redeliveries`` (deliveries
        caused by a crash), ``lease_redeliveries`` (caused by a live consumer overrunning its
        lease), ``effects`` (times the effect was applied), ``dedup_hits``, ``lost`` (bool).
    """
    n = validate.bounded_int("n_messages", n_messages, MAX_MODEL_MESSAGES)
    p = validate.float_in_range("p_crash", p_crash, 0.0, MAX_P_CRASH)
    lease = validate.float_in_range("lease_s", lease_s, 0.0, MAX_LEASE_S, low_inclusive=False)
    service = validate.float_in_range("mean_service_s", mean_service_s, 0.0, MAX_LEASE_S)
    q = validate.probability("p_pause", p_pause)
    pause = validate.float_in_range("pause_s", pause_s, 0.0, MAX_LEASE_S)
    scan = validate.float_in_range("claim_interval_s", claim_interval_s, 0.0, MAX_LEASE_S)
    mode = validate.choice("mode", mode, LEASE_MODES)
    rng = validate.rng_from_seed(seed)
    if mode == "ack-before":  # acknowledged on receipt: never redelivered, lost if the worker dies
        deliveries = np.ones(n, dtype=np.int64)
        crash_again = lease_again = np.zeros(n, dtype=np.int64)
        lost = rng.random(n) < p
        effects = (~lost).astype(np.int64)
        hits = np.zeros(n, dtype=np.int64)
    else:
        deliveries, crash_again, lease_again = _redelivery_rounds(rng, n, p, lease, service, q, pause, scan)
        lost = np.zeros(n, dtype=bool)
        effects = deliveries if mode == "ack-after" else np.ones(n, dtype=np.int64)
        hits = deliveries - 1 if mode == "ack-after-idempotent" else np.zeros(n, dtype=np.int64)
    return pd.DataFrame(
        {
            "msg_id": np.arange(n),
            "deliveries": deliveries,
            "crash_redeliveries": crash_again,
            "lease_redeliveries": lease_again,
            "effects": effects,
            "dedup_hits": hits,
            "lost": lost,
        }
    )


def _redelivery_rounds(rng, n, p, lease, service, q, pause, scan):
    """Deliver every message until one delivery acknowledges it before its lease runs out.

    Returns per-message deliveries, redeliveries caused by a crash, and redeliveries caused
    by a live consumer still busy when the lease ran out.
    """
    deliveries = np.ones(n, dtype=np.int64)
    crash_again = np.zeros(n, dtype=np.int64)
    lease_again = np.zeros(n, dtype=np.int64)
    active = np.arange(n)  # messages whose latest delivery may still be overtaken
    start = np.zeros(n)  # when the latest delivery began
    first_ack = np.full(n, np.inf)  # earliest acknowledgement of any delivery so far
    for _ in range(MAX_ROUNDS):
        k = active.size
        duration = rng.exponential(service, k) if service > 0 else np.zeros(k)
        duration += np.where(rng.random(k) < q, pause, 0.0)  # a stop-the-world pause, a slow call
        crashed = rng.random(k) < p  # dies after the effect, before the ack
        ack = np.where(crashed, np.inf, start[active] + duration)
        first_ack[active] = np.minimum(first_ack[active], ack)
        reclaim = start[active] + lease + rng.random(k) * scan  # lease out, next XAUTOCLAIM scan
        again = reclaim < first_ack[active]  # nobody acknowledged in time: deliver it again
        crash_again[active[again & crashed]] += 1
        lease_again[active[again & ~crashed]] += 1
        active = active[again]
        if active.size == 0:
            return deliveries, crash_again, lease_again
        start[active] = reclaim[again]
        deliveries[active] += 1
    raise RuntimeError(
        f"{active.size} messages still redelivered after {MAX_ROUNDS} rounds"
    )  # pragma: no cover


def summarize_lease_delivery(frame: pd.DataFrame) -> dict[str, float]:
    """Totals of :func:`simulate_lease_delivery`.

    Parameters
    ----------
    frame : pandas.DataFrame
        Its output (columns ``deliveries``, ``crash_redeliveries``, ``lease_redeliveries``,
        ``effects``, ``dedup_hits``, ``lost``).

    Returns
    -------
    dict of str to float
        ``messages``, ``deliveries``, ``crash_redeliveries``, ``lease_redeliveries``,
        ``effects``, ``duplicates`` (effects beyond one per message), ``lost``,
        ``dedup_hits`` and ``duplicate_share`` (duplicates per message).
    """
    columns = ("deliveries", "crash_redeliveries", "lease_redeliveries", "effects", "dedup_hits", "lost")
    validate.frame_columns("frame", frame, columns)
    if frame.empty:
        raise ValueError("frame must have at least one row")
    effects = frame["effects"].to_numpy()
    duplicates = int(np.clip(effects - 1, 0, None).sum())
    totals = {column: int(frame[column].sum()) for column in columns}
    return {
        "messages": len(frame),
        **totals,
        "duplicates": duplicates,
        "duplicate_share": duplicates / len(frame),
    }


def sweep_lease(
    lease_values_s: Sequence[float],
    *,
    n_messages: int = 100_000,
    p_crash: float = 0.0,
    mean_service_s: float = 0.2,
    p_pause: float = 0.01,
    pause_s: float = 5.0,
    claim_interval_s: float = 1.0,
    replications: int = 3,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Duplicated effects (acknowledging after the effect) against the lease, replicated.

    Parameters
    ----------
    lease_values_s : sequence of float
        Leases to try, seconds (1 to 200 values, each in (0, ``MAX_LEASE_S``]).
    n_messages, p_crash, mean_service_s, p_pause, pause_s, claim_interval_s :
        As for :func:`simulate_lease_delivery`.
    replications : int
        Independent runs per lease (seeds from :func:`syslab.experiment.sweep`).
    seed : int, numpy Generator or None
        Parent seed (a Generator is used to draw one).

    Returns
    -------
    pandas.DataFrame
        One row per (lease, replication): ``lease_s``, ``replication``, ``duplicate_share``,
        ``crash_share`` and ``lease_share`` (redeliveries per message caused by crashes and
        by live consumers overrunning the lease).
    """
    if isinstance(lease_values_s, (str, bytes)) or not isinstance(lease_values_s, (Sequence, np.ndarray)):
        raise TypeError(f"lease_values_s must be a sequence of seconds, got {type(lease_values_s).__name__}")
    leases = [
        validate.float_in_range(f"lease_values_s[{i}]", v, 0.0, MAX_LEASE_S, low_inclusive=False)
        for i, v in enumerate(lease_values_s)
    ]
    if not 1 <= len(leases) <= 200:
        raise ValueError(f"lease_values_s must hold 1 to 200 values, got {len(leases)}")
    n = validate.bounded_int("n_messages", n_messages, MAX_MODEL_MESSAGES // 10)
    if isinstance(seed, np.random.Generator):
        seed = int(seed.integers(2**32))
    parent = seed if seed is None else validate.non_negative_int("seed", seed)

    def one(lease_s: float, seed: np.random.SeedSequence) -> dict[str, float]:
        totals = summarize_lease_delivery(
            simulate_lease_delivery(
                n,
                p_crash=p_crash,
                lease_s=lease_s,
                mean_service_s=mean_service_s,
                p_pause=p_pause,
                pause_s=pause_s,
                claim_interval_s=claim_interval_s,
                seed=seed,
            )
        )
        return {
            "duplicate_share": totals["duplicate_share"],
            "crash_share": totals["crash_redeliveries"] / n,
            "lease_share": totals["lease_redeliveries"] / n,
        }

    return experiment.sweep(one, {"lease_s": leases}, replications=replications, seed=parent)


# ------------------------------------------------------------------- running children

MAIL_CRASH_POINTS = {
    "mail-in-transaction": ("none", "after-mail-before-commit", "after-commit"),
    "mail-after-commit": ("none", "before-commit", "after-commit-before-mail"),
    "outbox": ("none", "before-commit", "after-mail-before-mark-sent"),
}


def _remaining_s(deadline: float, what: str) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError(f"{what}: the time limit ran out")
    return remaining


def _supervise(args: list[str], *, deadline: float, max_starts: int, what: str) -> tuple[Counter, int]:
    """Run a supervised worker child (``--restarts``) until its work is done; count its crashes.

    The child (:mod:`syslab.children.queue_worker`) forks the role, and forks it again each
    time it SIGKILLs itself; it announces every crash and, at the end, ``result`` with the
    number of starts. It is killed at ``deadline`` (a ``time.monotonic()`` value).
    Returns (crashes per crash point, worker starts).
    """
    remaining = _remaining_s(deadline, what)
    command = [*args, "--restarts", str(max_starts), "--deadline-s", f"{remaining:.3f}"]
    command += ["--max-life-s", f"{min(remaining + 5, 600):.3f}"]
    with ChildProcess(WORKER, command, timeout_s=remaining + 5) as child:
        try:
            result = child.expect("result", timeout_s=remaining + 2)
        except TimeoutError as error:
            raise TimeoutError(f"{what}: the worker did not finish in time") from error
        except RuntimeError as error:
            if "code 3" in str(error) or "deadline" in str(error) or time.monotonic() >= deadline - 0.5:
                raise TimeoutError(f"{what}: the worker did not finish in time ({error})") from error
            raise RuntimeError(f"{what}: {error}") from error
    crashes = Counter(event["point"] for event in child.events if event.get("event") == "crash")
    return crashes, int(result["starts"])


def _create(path: Path, script: str, rows: Sequence[tuple] = (), insert: str = "") -> None:
    conn = sqlite3.connect(path)
    try:
        conn.executescript(script)
        if rows:
            conn.executemany(insert, rows)
        conn.commit()
    finally:
        conn.close()


def _scalar(path: Path, sql: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(sql).fetchone()[0] or 0)
    finally:
        conn.close()


def _timeout(timeout_s: float) -> float:
    return validate.float_in_range("timeout_s", timeout_s, 0.0, MAX_TIMEOUT_S, low_inclusive=False)


# ------------------------------------------------------------------------- lease queue


def run_lease_queue(
    n_messages: int = 300,
    p_crash: float = 0.1,
    mode: str = "ack-after",
    seed: int | np.random.Generator | None = 0,
    lease_s: float = 0.05,
    timeout_s: float = 60.0,
) -> experiment.Run:
    """Drain a real SQLite lease queue with a worker that SIGKILLs itself at its crash point.

    One worker process at a time (a supervisor forks a fresh one after each death), so
    every duplicate here comes from a crash; :func:`run_stream_group` shows the ones that
    need no crash.

    Parameters
    ----------
    n_messages : int
        Messages enqueued, 1 to ``MAX_MESSAGES``.
    p_crash : float
        Probability that a delivery crashes the worker at the mode's crash point, [0, 0.9].
    mode : {"ack-after", "ack-after-idempotent", "ack-before"}
        When the worker acknowledges, and whether the effect has a unique key.
    seed : int, numpy Generator or None
        The workers' random streams derive from it.
    lease_s : float
        Visibility timeout, seconds, in (0, ``MAX_REAL_LEASE_S``]: a leased message not acked
        within it is delivered again.
    timeout_s : float
        Hard limit for the whole run, set-up included, seconds, in (0, ``MAX_TIMEOUT_S``].

    Returns
    -------
    syslab.experiment.Run
        ``frame``: one row per message (``msg_id``, ``deliveries``, ``effects``);
        ``summary``: ``mode``, ``messages``, ``crashes``, ``worker_starts``, ``deliveries``,
        ``effects``, ``unique_effects``, ``duplicates`` (effects beyond one per message),
        ``lost`` (messages with no effect), ``dedup_hits``, ``seconds``.
    """
    deadline = time.monotonic() + _timeout(timeout_s)
    n = validate.bounded_int("n_messages", n_messages, MAX_MESSAGES)
    p = validate.float_in_range("p_crash", p_crash, 0.0, 0.9)
    mode = validate.choice("mode", mode, LEASE_MODES)
    worker_seed = int(validate.rng_from_seed(seed).integers(2**31))
    lease = validate.float_in_range("lease_s", lease_s, 0.0, MAX_REAL_LEASE_S, low_inclusive=False)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="syslab-") as name:
        db = Path(name) / "queue.db"
        _create(
            db,
            """
            PRAGMA journal_mode=WAL;
            CREATE TABLE queue (id INTEGER PRIMARY KEY, done INTEGER NOT NULL DEFAULT 0,
                                lease_until REAL NOT NULL DEFAULT 0, deliveries INTEGER NOT NULL DEFAULT 0);
            CREATE TABLE effects (id INTEGER PRIMARY KEY, msg_id INTEGER NOT NULL);
            CREATE TABLE effects_unique (msg_id INTEGER PRIMARY KEY);
            CREATE TABLE dedup_hits (id INTEGER PRIMARY KEY, msg_id INTEGER NOT NULL);
            """,
            [(i,) for i in range(1, n + 1)],
            "INSERT INTO queue (id) VALUES (?)",
        )
        args = ["lease", "--db", str(db), "--mode", mode, "--p-crash", str(p), "--seed", str(worker_seed)]
        crashes, starts = _supervise(
            [*args, "--lease-s", str(lease)],
            deadline=deadline,
            max_starts=20 * n + 10,
            what=f"lease queue ({mode})",
        )
        table = "effects_unique" if mode == "ack-after-idempotent" else "effects"
        conn = sqlite3.connect(db)
        try:
            frame = pd.read_sql_query(
                f"SELECT q.id AS msg_id, q.deliveries, count(e.msg_id) AS effects FROM queue q"
                f" LEFT JOIN {table} e ON e.msg_id = q.id GROUP BY q.id ORDER BY q.id",
                conn,
            )
        finally:
            conn.close()
        hits = _scalar(db, "SELECT count(*) FROM dedup_hits")
    unique = int((frame["effects"] > 0).sum())
    effects = int(frame["effects"].sum())
    summary = {
        "mode": mode,
        "messages": n,
        "crashes": int(sum(crashes.values())),
        "worker_starts": starts,
        "deliveries": int(frame["deliveries"].sum()),
        "effects": effects,
        "unique_effects": unique,
        "duplicates": effects - unique,
        "lost": n - unique,
        "dedup_hits": hits,
        "seconds": time.monotonic() - started,
    }
    return experiment.Run.create(frame, summary, queue="SQLite " + sqlite3.sqlite_version)


# ------------------------------------------------------------------------------ outbox


def run_outbox(
    n_orders: int = 100,
    p_crash: float = 0.05,
    seed: int | np.random.Generator | None = 0,
    dedup: bool = True,
    timeout_s: float = 60.0,
) -> experiment.Run:
    """A transactional outbox with crashes injected at every step of producer, relay and consumer.

    Three SQLite files stand for three systems: the order service (``orders`` and
    ``outbox`` in one database, written in one transaction), the broker (an
    append-only ``log``) and the consumer (its ``effects``, the ``processed`` ids
    and its read ``offset``). The producer, relay and consumer are child processes
    run one after the other, each restarted after every crash until done.

    Parameters
    ----------
    n_orders : int
        Orders placed, 1 to ``MAX_MESSAGES``.
    p_crash : float
        Probability of a crash at each crash point, [0, 0.5].
    seed : int, numpy Generator or None
        The children's random streams derive from it.
    dedup : bool
        Whether the consumer records processed event ids with the effect.
    timeout_s : float
        Hard limit for the whole run, set-up included, seconds, in (0, ``MAX_TIMEOUT_S``].

    Returns
    -------
    syslab.experiment.Run
        ``frame``: one row per crash point (``role``, ``crash_point``, ``crashes``);
        ``summary``: ``orders``, ``outbox_rows``, ``published`` (log entries, with
        duplicates), ``unique_published``, ``effects``, ``unique_effects``,
        ``doubled_effects``, ``lost``, ``dedup_hits``, ``crashes``, ``seconds``.
    """
    deadline = time.monotonic() + _timeout(timeout_s)
    n = validate.bounded_int("n_orders", n_orders, MAX_MESSAGES)
    p = validate.float_in_range("p_crash", p_crash, 0.0, 0.5)
    child_seeds = validate.rng_from_seed(seed).integers(2**31, size=3)
    dedup = bool(validate.instance("dedup", dedup, (bool, np.bool_)))
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="syslab-") as name:
        folder = Path(name)
        orders, broker, consumer = folder / "orders.db", folder / "broker.db", folder / "consumer.db"
        _create(
            orders,
            "PRAGMA journal_mode=WAL; CREATE TABLE requests (id INTEGER PRIMARY KEY);"
            " CREATE TABLE orders (id INTEGER PRIMARY KEY, amount INTEGER NOT NULL);"
            " CREATE TABLE outbox (id INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE,"
            " payload TEXT NOT NULL, published INTEGER NOT NULL);",
            [(i,) for i in range(1, n + 1)],
            "INSERT INTO requests (id) VALUES (?)",
        )
        _create(
            broker,
            "PRAGMA journal_mode=WAL; CREATE TABLE log (seq INTEGER PRIMARY KEY, event_id TEXT, payload TEXT);",
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
        for role, role_seed in zip(("producer", "relay", "consumer"), child_seeds, strict=True):
            crashes, _ = _supervise(
                [role, *common, "--dedup", str(int(dedup)), "--p-crash", str(p), "--seed", str(role_seed)],
                deadline=deadline,
                max_starts=10 * n + 10,
                what=f"outbox {role}",
            )
            rows += [
                {"role": role, "crash_point": point, "crashes": c} for point, c in sorted(crashes.items())
            ]
        effects = _scalar(consumer, "SELECT count(*) FROM effects")
        unique_effects = _scalar(consumer, "SELECT count(DISTINCT event_id) FROM effects")
        summary = {
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
        }
    points = pd.DataFrame(rows, columns=["role", "crash_point", "crashes"])
    return experiment.Run.create(points, summary, queue="SQLite " + sqlite3.sqlite_version)


# ----------------------------------------------------------------- real servers: Redis


def _check_engine(name: str, engine: object, wanted: str) -> object:
    if getattr(engine, "name", None) != wanted or not callable(getattr(engine, "database", None)):
        raise TypeError(f"{name} must be a syslab.engines.Engine for {wanted}, got {type(engine).__name__}")
    return engine


def _stream_consumer(client, name: str, config: dict, log: list, lock: threading.Lock) -> None:
    """One consumer thread of :func:`run_stream_group` (its own connection)."""
    stream, group, lease_ms = config["stream"], config["group"], config["lease_ms"]
    while not config["stop"].is_set() and time.monotonic() < config["deadline"]:
        # A lease that ran out: take over an entry idle for longer than the lease.
        claimed = client.xautoclaim(stream, group, name, min_idle_time=lease_ms, start_id="0-0", count=1)
        entries, via = [entry for entry in claimed[1] if entry and entry[1]], "claim"
        if not entries:
            reply = client.xreadgroup(group, name, {stream: ">"}, count=1, block=20)
            entries, via = (reply[0][1] if reply else []), "read"
        for entry_id, fields in entries:
            msg = int(fields[b"msg"])
            paused = via == "read" and fields[b"pause"] == b"1"
            began = time.monotonic()
            time.sleep(config["pause_s"] if paused else config["service_s"])
            client.hincrby("effects", str(msg), 1)  # the effect: not idempotent on purpose
            acked = int(client.xack(stream, group, entry_id))
            with lock:
                log.append(
                    {
                        "msg_id": msg,
                        "consumer": name,
                        "via": via,
                        "paused": paused,
                        "held_s": time.monotonic() - began,
                        "ack_removed": acked,
                    }
                )


def run_stream_group(
    engine: object,
    n_messages: int = 200,
    *,
    n_consumers: int = 4,
    lease_s: float = 0.3,
    p_pause: float = 0.05,
    pause_s: float = 1.0,
    service_s: float = 0.002,
    seed: int | np.random.Generator | None = 0,
    timeout_s: float = 60.0,
) -> experiment.Run:
    """A Redis Streams consumer group whose consumers sometimes pause longer than the lease.

    ``n_messages`` entries are added with ``XADD``; ``n_consumers`` threads, each with its own
    connection, loop: ``XAUTOCLAIM`` (take over an entry pending longer than ``lease_s``), else
    ``XREADGROUP ... >`` (a new entry); apply the effect (``HINCRBY effects <msg> 1``); ``XACK``.
    A consumer pauses ``pause_s`` on the entries flagged at random with ``p_pause`` (on their
    first delivery) -- alive, slow, never crashing. Nothing else goes wrong.

    Parameters
    ----------
    engine : syslab.engines.Engine
        A Redis server (``engines.find("redis")``); a fresh logical database is used.
    n_messages : int
        Entries, 1 to ``MAX_MESSAGES``.
    n_consumers : int
        Consumer threads, 2 to ``MAX_CONSUMERS``.
    lease_s : float
        ``XAUTOCLAIM``'s min-idle-time, seconds, in (0, ``MAX_REAL_LEASE_S``].
    p_pause : float
        Share of entries whose first consumer pauses, [0, 1].
    pause_s : float
        The pause, seconds, [0, ``MAX_PAUSE_S``].
    service_s : float
        Time an ordinary entry takes, seconds, [0, 1].
    seed : int, numpy Generator or None
        Which entries are flagged.
    timeout_s : float
        Hard limit, set-up included, seconds, in (0, ``MAX_TIMEOUT_S``].

    Returns
    -------
    syslab.experiment.Run
        ``frame``: one row per delivery (``msg_id``, ``consumer``, ``via`` -- ``read`` or
        ``claim``, ``paused``, ``held_s``, ``ack_removed`` -- 1 if that ``XACK`` removed the
        entry, 0 if another consumer's ack had already removed it); ``summary``: ``messages``,
        ``flagged`` (entries whose first consumer paused), ``deliveries``, ``claims``,
        ``effects``, ``duplicates`` (effects beyond one per message), ``lost``, ``crashes``
        (always 0), ``late_acks`` (acks that found the entry already gone), ``seconds``.
    """
    deadline = time.monotonic() + _timeout(timeout_s)
    _check_engine("engine", engine, "redis")
    n = validate.bounded_int("n_messages", n_messages, MAX_MESSAGES)
    k = validate.int_in_range("n_consumers", n_consumers, 2, MAX_CONSUMERS)
    lease = validate.float_in_range("lease_s", lease_s, 0.0, MAX_REAL_LEASE_S, low_inclusive=False)
    q = validate.probability("p_pause", p_pause)
    pause = validate.float_in_range("pause_s", pause_s, 0.0, MAX_PAUSE_S)
    service = validate.float_in_range("service_s", service_s, 0.0, 1.0)
    flags = validate.rng_from_seed(seed).random(n) < q
    started = time.monotonic()
    log: list[dict] = []
    lock = threading.Lock()
    config = {
        "stream": "orders",
        "group": "billing",
        "lease_ms": max(1, int(round(lease * 1000))),
        "pause_s": pause,
        "service_s": service,
        "deadline": deadline,
        "stop": threading.Event(),
    }
    with engine.database() as db:
        clients = [db.connect() for _ in range(k + 1)]
        threads = []
        try:
            admin = clients[0]
            pipe = admin.pipeline(transaction=False)
            for msg in range(n):
                pipe.xadd("orders", {"msg": msg, "pause": int(flags[msg])})
            pipe.execute()
            admin.xgroup_create("orders", "billing", id="0")
            threads = [
                threading.Thread(
                    target=_stream_consumer, args=(clients[i + 1], f"c{i}", config, log, lock), daemon=True
                )
                for i in range(k)
            ]
            for thread in threads:
                thread.start()
            while time.monotonic() < deadline:
                if admin.hlen("effects") == n and admin.xpending("orders", "billing")["pending"] == 0:
                    break
                time.sleep(0.02)
            else:
                raise TimeoutError(f"stream group: not drained within {timeout_s:g} s")
            # The paused consumers are still asleep; their late effects count too.
            while any(thread.is_alive() for thread in threads) and _count_paused_open(log, flags) > 0:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"stream group: paused consumers did not finish within {timeout_s:g} s"
                    )
                time.sleep(0.02)
            effects = {int(key): int(value) for key, value in admin.hgetall("effects").items()}
        finally:
            config["stop"].set()
            for thread in threads:
                thread.join(timeout=max(1.0, pause + 1.0))
            for client in clients:
                client.close()
    frame = pd.DataFrame(log, columns=["msg_id", "consumer", "via", "paused", "held_s", "ack_removed"])
    total = sum(effects.values())
    summary = {
        "messages": n,
        "flagged": int(flags.sum()),
        "deliveries": len(frame),
        "claims": int((frame["via"] == "claim").sum()),
        "effects": total,
        "duplicates": total - len(effects),
        "lost": n - len(effects),
        "crashes": 0,
        "late_acks": int((frame["ack_removed"] == 0).sum()),
        "seconds": time.monotonic() - started,
    }
    return experiment.Run.create(frame, summary, engine=engine)


def _count_paused_open(log: list[dict], flags: np.ndarray) -> int:
    """Flagged entries whose paused first delivery has not finished yet."""
    finished = {row["msg_id"] for row in list(log) if row["paused"]}
    return int(flags.sum()) - len(finished)


# ------------------------------------------------------- real servers: Redis + PostgreSQL


def run_transactional_consumer(
    redis_engine: object,
    pg_engine: object,
    n_messages: int = 300,
    *,
    batch: int = 20,
    n_kills: int = 4,
    dedup: bool = True,
    work_ms: float = 2.0,
    seed: int | np.random.Generator | None = 0,
    timeout_s: float = 60.0,
) -> experiment.Run:
    """A stream consumer that commits effect + dedup key in one PostgreSQL transaction, SIGKILLed mid-batch.

    The stream (Redis) holds ``n_messages`` entries. A consumer process
    (:mod:`syslab.children.stream_consumer`) reads them ``batch`` at a time, commits each
    entry's effect -- with ``dedup``, together with its message id in a ``processed``
    table -- in one PostgreSQL transaction, and acknowledges the batch with ``XACK``
    afterwards. The parent SIGKILLs it ``n_kills`` times, each time in the middle of a
    batch (after a commit at a random position past the first), and starts it again under
    the same consumer name, which first re-reads its unacknowledged entries.

    Parameters
    ----------
    redis_engine : syslab.engines.Engine
        The Redis server holding the stream.
    pg_engine : syslab.engines.Engine
        The PostgreSQL server holding the effects (a fresh database).
    n_messages : int
        Entries, 1 to ``MAX_MESSAGES``.
    batch : int
        Entries per read and per ``XACK``, 2 to ``MAX_BATCH``.
    n_kills : int
        SIGKILLs, 0 to ``MAX_KILLS``.
    dedup : bool
        Commit the message id in ``processed`` with the effect (and skip known ids).
    work_ms : float
        Time each effect takes in the consumer, milliseconds, [0, 100].
    seed : int, numpy Generator or None
        Where in the batches the kills land.
    timeout_s : float
        Hard limit, set-up included, seconds, in (0, ``MAX_TIMEOUT_S``].

    Returns
    -------
    syslab.experiment.Run
        ``frame``: one row per message (``msg_id``, ``effects``); ``summary``: ``mode``
        (``dedup`` or ``no-dedup``), ``messages``, ``crashes`` (SIGKILLs), ``consumer_starts``,
        ``commits_at_kill`` (commits in the killed lives), ``effects``, ``duplicates``,
        ``lost``, ``dedup_hits``, ``seconds``.
    """
    deadline = time.monotonic() + _timeout(timeout_s)
    _check_engine("redis_engine", redis_engine, "redis")
    _check_engine("pg_engine", pg_engine, "postgres")
    n = validate.bounded_int("n_messages", n_messages, MAX_MESSAGES)
    size = validate.int_in_range("batch", batch, 2, MAX_BATCH)
    kills = validate.int_in_range("n_kills", n_kills, 0, MAX_KILLS)
    dedup = bool(validate.instance("dedup", dedup, (bool, np.bool_)))
    work = validate.float_in_range("work_ms", work_ms, 0.0, 100.0)
    rng = validate.rng_from_seed(seed)
    started = time.monotonic()
    with redis_engine.database() as rdb, pg_engine.database() as pdb:
        with pdb.connect(autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE effects (id bigserial PRIMARY KEY, msg_id bigint NOT NULL, amount int)"
            )
            conn.execute("CREATE TABLE processed (msg_id bigint PRIMARY KEY)")
            conn.execute("CREATE TABLE dedup_hits (msg_id bigint NOT NULL)")
        client = rdb.connect()
        try:
            pipe = client.pipeline(transaction=False)
            for msg in range(n):
                pipe.xadd("orders", {"msg": msg, "amount": 1 + msg % 97})
            pipe.execute()
            client.xgroup_create("orders", "billing", id="0")
        finally:
            client.close()
        args = ["--redis-url", rdb.dsn, "--pg-dsn", pdb.dsn, "--batch", str(size)]
        args += ["--dedup", str(int(dedup)), "--work-ms", str(work)]
        starts = killed = commits_at_kill = 0
        while True:
            remaining = _remaining_s(deadline, "transactional consumer")
            starts += 1
            life = [*args, "--max-life-s", f"{min(remaining + 5, 600):.3f}"]
            with ChildProcess(CONSUMER, life, timeout_s=remaining + 5) as child:
                child.expect("ready", timeout_s=min(remaining, 30))
                if killed < kills:
                    # Kill after a commit in the middle of a batch: not the first entry, not the last.
                    target = int(rng.integers(1, size - 1)) if size > 2 else 1
                    skip = int(rng.integers(0, 3))  # which batch of this life
                    event = _expect_commit(child, target, skip, _remaining_s(deadline, "consumer"))
                    if event is not None:
                        child.kill()  # SIGKILL to the process group
                        killed += 1
                        commits_at_kill += int(event["n"])
                        continue
                finished = [e for e in child.events if e.get("event") == "result"]
                result = (
                    finished[0]
                    if finished
                    else child.expect("result", timeout_s=_remaining_s(deadline, "consumer"))
                )
                break
        with pdb.connect(autocommit=True) as conn:
            rows = conn.execute("SELECT msg_id, count(*) FROM effects GROUP BY msg_id").fetchall()
            hits = int(conn.execute("SELECT count(*) FROM dedup_hits").fetchone()[0])
    counts = dict(rows)
    frame = pd.DataFrame({"msg_id": np.arange(n), "effects": [int(counts.get(i, 0)) for i in range(n)]})
    summary = {
        "mode": "dedup" if dedup else "no-dedup",
        "messages": n,
        "crashes": killed,
        "consumer_starts": starts,
        "commits_at_kill": commits_at_kill,
        "effects": int(frame["effects"].sum()),
        "duplicates": int((frame["effects"] - 1).clip(lower=0).sum()),
        "lost": int((frame["effects"] == 0).sum()),
        "dedup_hits": hits,
        "last_life_commits": int(result["commits"]),
        "seconds": time.monotonic() - started,
    }
    return experiment.Run.create(frame, summary, engine=pg_engine, stream_engine=redis_engine.label)


def _expect_commit(child: ChildProcess, position: int, skip: int, limit_s: float) -> dict | None:
    """Wait for the commit at ``position`` of this life's batch number ``skip``; None if it drains first."""
    seen_batches = 0
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        if any(e.get("event") == "result" for e in child.events):
            return None
        try:
            event = child.expect("commit", timeout_s=max(end - time.monotonic(), 0.1))
        except RuntimeError:  # it finished (exited after "result") before the kill point
            return None
        if event["position"] == position:
            if seen_batches >= skip:
                return event
            seen_batches += 1
    raise TimeoutError("transactional consumer: no commit in time")


# -------------------------------------------------------------------------------- mail


class MailSink:
    """A tiny line-based mail sink on 127.0.0.1 (an ephemeral port), recording every message.

    Each connection sends ``MAIL <order> <message-id>`` and gets ``250 OK``. Use as a
    context manager; the server thread is shut down and the socket closed on exit.

    Attributes
    ----------
    messages : list of (str, str)
        ``(order, message_id)`` of every mail received, in order.
    port : int
        The TCP port it listens on (127.0.0.1).
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


def run_mail_scenarios(timeout_s: float = 60.0) -> experiment.Run:
    """Send an order confirmation by each strategy, crashing once at each point, then retrying.

    For every strategy and crash point: a fresh database and mail sink; the worker
    runs with the crash armed; if it crashed, the client retries the same order
    (the retry does nothing if the order already exists) and, for the outbox, the
    relay resumes. Then the database and the sink are compared.

    Parameters
    ----------
    timeout_s : float
        Hard limit for all scenarios, set-up included, seconds, in (0, ``MAX_TIMEOUT_S``].

    Returns
    -------
    syslab.experiment.Run
        ``frame``: one row per (strategy, crash point): ``strategy``, ``crash_point``,
        ``crashed`` (bool), ``order_committed`` (bool), ``mails_received``,
        ``ghost_mails`` (mails for an order that did not exist when they were
        sent -- here: mails beyond one, sent from a rolled-back transaction),
        ``missing_mail`` (bool: order committed, no mail), ``duplicate_mails``
        (mails beyond one), ``after_dedup_by_message_id`` (distinct Message-IDs).
    """
    deadline = time.monotonic() + _timeout(timeout_s)
    rows = []
    for strategy in MAIL_STRATEGIES:
        for point in MAIL_CRASH_POINTS[strategy]:
            _remaining_s(deadline, "mail scenarios")
            with tempfile.TemporaryDirectory(prefix="syslab-") as name, MailSink() as sink:
                db = Path(name) / "shop.db"
                _create(
                    db,
                    "PRAGMA journal_mode=WAL; CREATE TABLE orders (id INTEGER PRIMARY KEY);"
                    " CREATE TABLE mail_outbox (order_id INTEGER PRIMARY KEY, sent INTEGER NOT NULL);",
                )
                base = ["mail", "--db", str(db), "--strategy", strategy, "--sink-port", str(sink.port)]
                crashes, _ = _supervise(
                    [*base, "--crash-at", point],
                    deadline=deadline,
                    max_starts=3,
                    what=f"mail {strategy}/{point}",
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
    frame = pd.DataFrame(rows)
    summary = {"scenarios": len(frame), "crashes": int(frame["crashed"].sum())}
    return experiment.Run.create(frame, summary, database="SQLite " + sqlite3.sqlite_version)


# ------------------------------------------------------------------------------- plots


def plot_lease_sweep(frame: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Duplicated effects per message against the lease, split by cause, one dot per replication.

    Parameters
    ----------
    frame : pandas.DataFrame
        :func:`sweep_lease`'s output (``lease_s``, ``duplicate_share``, ``crash_share``,
        ``lease_share``).
    ax : matplotlib Axes, optional
        Where to draw; a new figure if None.

    Returns
    -------
    matplotlib.axes.Axes
    """
    validate.frame_columns("frame", frame, ("lease_s", "duplicate_share", "crash_share", "lease_share"))
    if frame.empty:
        raise ValueError("frame must have at least one row")
    ax = axes_or_new(ax)
    mean = frame.groupby("lease_s")[["duplicate_share", "crash_share", "lease_share"]].mean()
    for i, (column, name) in enumerate(
        (("lease_share", "lease ran out, consumer alive"), ("crash_share", "consumer crashed"))
    ):
        ax.plot(mean.index, mean[column] * 100, "-", color=f"C{i}", label=name)
        ax.plot(frame["lease_s"], frame[column] * 100, ".", color=f"C{i}", alpha=0.5)
    ax.set_xscale("log")
    ax.set_yscale("symlog", linthresh=0.01)
    ax.set_ylim(bottom=0)  # zero is a value here (no live redeliveries), so the log axis starts at it
    return label(ax, "lease (visibility timeout, s)", "redeliveries per 100 messages", legend=True)


def plot_lease_runs(runs: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Grouped bars per acknowledgement mode: worker crashes, duplicated effects and lost messages.

    Parameters
    ----------
    runs : pandas.DataFrame
        One row per mode: ``mode``, ``crashes``, ``duplicates``, ``lost`` (the summaries of
        :func:`run_lease_queue` or :func:`run_transactional_consumer`).
    ax : matplotlib Axes, optional
        Where to draw; a new figure if None.

    Returns
    -------
    matplotlib.axes.Axes
    """
    validate.frame_columns("runs", runs, ("mode", "crashes", "duplicates", "lost"))
    if runs.empty:
        raise ValueError("runs must have at least one row")
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
