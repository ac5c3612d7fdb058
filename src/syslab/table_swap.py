"""Widening a key column without stopping writes: the online table swap, run for real in SQLite.

Two fixes for a table whose INT key is running out:

- the **copying rebuild** (MySQL's ``ALTER TABLE ... MODIFY id BIGINT`` is
  ``ALGORITHM=COPY``): build a new table, copy every row, swap, while writes wait.
  :func:`measure_copy_rebuild` times SQLite's equivalent (the documented
  "12-step" rebuild) at a few sizes and :func:`estimate_rebuild_s` extrapolates;
- the **online swap** (what pt-online-schema-change does with triggers, and
  gh-ost with the binlog): a shadow table with the wide key, triggers that copy
  every change made to the old table, a backfill in small chunks, then one
  atomic rename. :func:`run_online_swap` runs it on a real SQLite file while a
  writer thread keeps inserting, updating and deleting, and then checks that no
  row was lost, resurrected or left stale.

SQLite is not MySQL: it has one writer at a time, so the chunks and the writer
take turns on the database lock, and its ``ALTER TABLE ... RENAME`` is
transactional, so two renames in one transaction are the atomic cut-over that
MySQL gets from ``RENAME TABLE a TO a_old, a_new TO a``.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from syslab import validate
from syslab.experiment import Run
from syslab.id_exhaustion import INT_MAX
from syslab.plot import axes_or_new, label
from syslab.sqlite_tools import temporary_database

__all__ = [
    "SwapConfig",
    "estimate_rebuild_s",
    "measure_copy_rebuild",
    "plot_swap_timeline",
    "run_online_swap",
]

MAX_TIMELINE_BINS = 100_000  # bins drawn by plot_swap_timeline


# ------------------------------------------------------------ copying rebuild


def _fill(conn: sqlite3.Connection, table: str, n_rows: int, payload_bytes: int, first_id: int = 1) -> None:
    conn.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, payload TEXT, version INTEGER)")
    pad = "x" * max(0, payload_bytes - 12)
    conn.execute("BEGIN")
    conn.executemany(
        f"INSERT INTO {table} (id, payload, version) VALUES (?, ?, 0)",
        ((i, f"row-{i:08d}{pad}") for i in range(first_id, first_id + n_rows)),
    )
    conn.execute("COMMIT")


def measure_copy_rebuild(
    row_counts: Sequence[int] = (25_000, 50_000, 100_000, 200_000), *, payload_bytes: int = 100
) -> Run:
    """Time a copying rebuild of a table (new table, copy, drop, rename, re-index) at several sizes.

    This is SQLite's documented way to change a column's type, and it does what
    MySQL's ``ALGORITHM=COPY`` does: every row is read and written again while the
    writer lock is held, and the old and new copies exist at once.

    Parameters
    ----------
    row_counts : sequence of int
        Table sizes to try, each in [1000, 5_000_000].
    payload_bytes : int
        Approximate bytes of the text column per row.

    Returns
    -------
    pandas.DataFrame
        One row per size: ``rows``, ``seconds`` (the write lock is held this long),
        ``rows_per_s``, ``size_before_bytes`` and ``peak_size_bytes`` (file size with
        both copies present), ``peak_over_before`` (their ratio).
    """
    sizes = validate.sequence_of_positive_ints("row_counts", row_counts)
    for i, size in enumerate(sizes):
        validate.int_in_range(f"row_counts[{i}]", size, 1000, 5_000_000)
    payload = validate.int_in_range("payload_bytes", payload_bytes, 1, 10_000)
    rows = []
    for size in sizes:
        with temporary_database("rebuild.db", isolation_level=None) as (conn, _path):
            _fill(conn, "t", size, payload)
            conn.execute("CREATE INDEX t_payload ON t (payload)")
            page_size = conn.execute("PRAGMA page_size").fetchone()[0]
            before = conn.execute("PRAGMA page_count").fetchone()[0] * page_size
            started = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("CREATE TABLE t_new (id INTEGER PRIMARY KEY, payload TEXT, version INTEGER)")
            conn.execute("INSERT INTO t_new SELECT id, payload, version FROM t")
            conn.execute("CREATE INDEX t_new_payload ON t_new (payload)")
            peak = conn.execute("PRAGMA page_count").fetchone()[0] * page_size
            conn.execute("DROP TABLE t")
            conn.execute("ALTER TABLE t_new RENAME TO t")
            conn.execute("COMMIT")
            seconds = time.perf_counter() - started
        rows.append(
            {
                "rows": size,
                "seconds": seconds,
                "rows_per_s": size / seconds,
                "size_before_bytes": before,
                "peak_size_bytes": peak,
                "peak_over_before": peak / before,
            }
        )
    return Run.create(pd.DataFrame(rows))


def estimate_rebuild_s(rows: float, measurements: pd.DataFrame) -> float:
    """Seconds a copying rebuild of ``rows`` rows would hold the write lock, from measured sizes.

    Fits ``seconds = a + b * rows`` by least squares (a copy is linear in the rows
    while the B-trees stay in cache; on a real server with a table far larger than
    memory it only gets worse, so read this as a lower bound).

    Parameters
    ----------
    rows : float
        Rows of the table to extrapolate to.
    measurements : pd.DataFrame
        What :func:`measure_copy_rebuild` returns.

    Returns
    -------
    float
        Seconds, from a straight line through the measured copy times (a lower bound).
    """
    n = validate.positive_float("rows", rows)
    if not isinstance(measurements, pd.DataFrame) or not {"rows", "seconds"} <= set(measurements.columns):
        raise ValueError("measurements must be a DataFrame from measure_copy_rebuild")
    if len(measurements) < 2:
        raise ValueError("measurements must hold at least two sizes to fit a line")
    if measurements[["rows", "seconds"]].isna().any().any():
        raise ValueError("measurements must not hold NaN in rows or seconds")
    slope, intercept = np.polyfit(measurements["rows"].astype(float), measurements["seconds"], 1)
    return float(max(intercept, 0.0) + slope * n)


# --------------------------------------------------------------- online swap


@dataclass(frozen=True)
class SwapConfig:
    """Knobs of the online swap experiment.

    Attributes
    ----------
    initial_rows : int
        Rows in the table before the swap starts.
    id_limit : int
        The old table's key limit, enforced by ``CHECK (id <= id_limit)``
        (2,147,483,647 emulates a signed INT).
    headroom_ids : int
        Keys left below the limit when the writer starts: once it has used them,
        its inserts fail (the outage) until the swap completes.
    chunk_rows : int
        Rows copied per backfill transaction.
    chunk_pause_s : float
        Pause after each chunk so the writer can take the lock (pt-osc's ``--sleep``,
        gh-ost's ``--nice-ratio``); with 0, SQLite's busy handler starves the writer.
    writer_rate_per_s : float
        Statements per second the writer thread attempts.
    update_fraction, delete_fraction : float
        Shares of the writer's statements that update or delete an existing row.
    warmup_s : float
        Seconds the writer runs before the swap begins.
    after_cutover_s : float
        Seconds the writer keeps going after the rename.
    timeout_s : float
        Hard limit for the whole experiment.
    change_capture : bool
        Install the triggers. Without them the swap silently loses every change made
        to rows the backfill had already copied (a control for the no-loss check).
    """

    initial_rows: int = 200_000  # rows
    id_limit: int = INT_MAX  # largest key the old table accepts
    headroom_ids: int = 100  # keys left when the writer starts
    chunk_rows: int = 5_000  # rows per backfill chunk
    chunk_pause_s: float = 0.005  # seconds between chunks
    writer_rate_per_s: float = 2_000.0  # statements per second
    update_fraction: float = 0.10  # share of statements
    delete_fraction: float = 0.05  # share of statements
    warmup_s: float = 0.2  # seconds
    after_cutover_s: float = 0.3  # seconds
    timeout_s: float = 30.0  # seconds
    change_capture: bool = True

    def __post_init__(self) -> None:
        validate.int_in_range("initial_rows", self.initial_rows, 100, 5_000_000)
        validate.int_in_range("id_limit", self.id_limit, 1, 2**62)
        validate.non_negative_int("headroom_ids", self.headroom_ids)
        if self.initial_rows + self.headroom_ids > self.id_limit:
            raise ValueError("initial_rows + headroom_ids must be <= id_limit")
        validate.int_in_range("chunk_rows", self.chunk_rows, 1, 1_000_000)
        validate.float_in_range("chunk_pause_s", self.chunk_pause_s, 0.0, 10.0)
        validate.float_in_range("writer_rate_per_s", self.writer_rate_per_s, 1.0, 50_000.0)
        up = validate.probability("update_fraction", self.update_fraction)
        down = validate.probability("delete_fraction", self.delete_fraction)
        if up + down > 1:
            raise ValueError("update_fraction + delete_fraction must be <= 1")
        validate.float_in_range("warmup_s", self.warmup_s, 0.0, 60.0)
        validate.float_in_range("after_cutover_s", self.after_cutover_s, 0.0, 60.0)
        validate.float_in_range("timeout_s", self.timeout_s, 0.0, 600.0, low_inclusive=False)
        if not isinstance(self.change_capture, bool):
            raise TypeError("change_capture must be a bool")


class _Writer(threading.Thread):
    """Inserts, updates and deletes through its own connection; remembers what committed."""

    def __init__(self, path, config: SwapConfig, live_ids: list[int], seed: int, deadline: float) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.config = config
        self.rng = np.random.default_rng(seed)
        self.live = list(live_ids)  # ids believed to exist (sampled for updates/deletes)
        self.expected: dict[int, int] = {}  # id -> version, for rows the writer touched
        self.deleted: set[int] = set()
        self.log: list[tuple[float, str, int, str, str]] = []
        self.phase = "before"
        self.stop = threading.Event()
        self.deadline = deadline
        self.error: BaseException | None = None

    def run(self) -> None:  # noqa: C901 - one loop, three statements
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=5.0)
        try:
            conn.execute("PRAGMA busy_timeout = 5000")
            # WAL + NORMAL: commits are not fsynced one by one; this experiment is about
            # correctness under concurrency, not durability (commit_cost measures that).
            conn.execute("PRAGMA synchronous = NORMAL")
            gap = 1.0 / self.config.writer_rate_per_s
            started = time.perf_counter()
            next_at = started
            while not self.stop.is_set() and time.monotonic() < self.deadline:
                draw = self.rng.random()
                now = time.perf_counter() - started
                try:
                    if draw < self.config.update_fraction and self.live:
                        row_id = self.live[int(self.rng.integers(len(self.live)))]
                        conn.execute("UPDATE events SET version = version + 1 WHERE id = ?", (row_id,))
                        self.expected[row_id] = self.expected.get(row_id, 0) + 1
                        self.log.append((now, "update", row_id, "ok", self.phase))
                    elif draw < self.config.update_fraction + self.config.delete_fraction and self.live:
                        index = int(self.rng.integers(len(self.live)))
                        row_id = self.live[index]
                        conn.execute("DELETE FROM events WHERE id = ?", (row_id,))
                        self.live[index] = self.live[-1]
                        self.live.pop()
                        self.expected.pop(row_id, None)
                        self.deleted.add(row_id)
                        self.log.append((now, "delete", row_id, "ok", self.phase))
                    else:
                        cursor = conn.execute("INSERT INTO events (payload, version) VALUES ('new', 0)")
                        row_id = int(cursor.lastrowid)
                        self.live.append(row_id)
                        self.expected[row_id] = 0
                        self.deleted.discard(row_id)
                        self.log.append((now, "insert", row_id, "ok", self.phase))
                except sqlite3.IntegrityError:
                    self.log.append((now, "insert", -1, "check_failed", self.phase))
                except sqlite3.OperationalError:
                    self.log.append((now, "statement", -1, "busy", self.phase))
                next_at += gap
                pause = next_at - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                else:
                    next_at = time.perf_counter()  # fell behind: do not burst to catch up
        except BaseException as error:  # pragma: no cover - reported by the caller
            self.error = error
        finally:
            conn.close()


_TRIGGERS = (
    "CREATE TRIGGER events_swap_ins AFTER INSERT ON events BEGIN "
    "INSERT OR REPLACE INTO events_new (id, payload, version) VALUES (NEW.id, NEW.payload, NEW.version); END",
    "CREATE TRIGGER events_swap_upd AFTER UPDATE ON events BEGIN "
    "INSERT OR REPLACE INTO events_new (id, payload, version) VALUES (NEW.id, NEW.payload, NEW.version); END",
    "CREATE TRIGGER events_swap_del AFTER DELETE ON events BEGIN "
    "DELETE FROM events_new WHERE id = OLD.id; END",
)


def run_online_swap(config: SwapConfig | None = None, *, seed: int | np.random.Generator | None = 0) -> Run:
    """Swap a table with a CHECK-limited key for one without, while a writer keeps writing.

    Steps, as pt-online-schema-change takes them:

    1. the writer thread starts inserting/updating/deleting on ``events``
       (after ``headroom_ids`` inserts, its inserts fail the CHECK: the outage);
    2. ``events_new`` is created with the wide key, and three triggers copy every
       insert, update and delete on ``events`` into it (``INSERT OR REPLACE``);
    3. the backfill copies the rows that existed at its start, ``chunk_rows`` at a
       time in key order, each chunk its own short transaction with
       ``INSERT OR IGNORE`` (a row a trigger already copied is newer: keep it);
    4. the cut-over: in one transaction, drop the triggers and rename
       ``events`` -> ``events_old`` and ``events_new`` -> ``events``;
    5. the writer keeps going (now on the new table) for ``after_cutover_s``,
       then stops, and the final table is compared with what the writer committed.

    Everything lives in a temporary folder that is removed afterwards; the writer
    thread is stopped and joined even when a step fails.


    Parameters
    ----------
    config : SwapConfig | None
        Sizes, rates and switches (default :class:`SwapConfig`).
    seed : int, numpy Generator or None
        Randomness of the live writer.

    Returns
    -------
    experiment.Run
        ``frame``: one row per writer statement: ``t_s`` (seconds since the writer started),
        ``op`` (insert/update/delete), ``row_id`` (-1 for a failed insert), ``outcome``
        ("ok", "check_failed", "busy") and ``phase`` ("before", "backfill", "after").
        ``summary``: ``rows_expected``, ``rows_found``, ``rows_lost``, ``rows_resurrected``,
        ``rows_stale`` (present with an old version), ``writer_ok``, ``inserts_failed`` (the
        outage), ``busy`` (statement counts), ``backfill_s`` (seconds), ``cutover_ms`` (write
        pause of the rename, milliseconds), ``max_id_before``, ``first_id_after``,
        ``new_ids_above_limit``, and the backfill's ``n_chunks``, ``rows_copied`` and
        ``max_chunk_ms`` (the longest chunk transaction, milliseconds).
    """
    config = SwapConfig() if config is None else config
    if not isinstance(config, SwapConfig):
        raise TypeError(f"config must be a SwapConfig, got {type(config).__name__}")
    # One integer drawn from the caller's seed: the writer thread builds its own generator from it.
    seed = int(validate.rng_from_seed(seed).integers(2**31))
    deadline = time.monotonic() + config.timeout_s
    first_id = config.id_limit - config.headroom_ids - config.initial_rows + 1
    with temporary_database("swap.db", isolation_level=None, timeout=5.0) as (conn, path):
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(
            "CREATE TABLE events (id INTEGER PRIMARY KEY "
            f"CHECK (id <= {config.id_limit}), payload TEXT, version INTEGER)"
        )
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO events (id, payload, version) VALUES (?, 'old', 0)",
            ((i,) for i in range(first_id, first_id + config.initial_rows)),
        )
        conn.execute("COMMIT")
        initial_ids = list(range(first_id, first_id + config.initial_rows))
        writer = _Writer(path, config, initial_ids, seed, deadline)
        chunks = []
        try:
            writer.start()
            time.sleep(config.warmup_s)
            writer.phase = "backfill"
            backfill_started = time.perf_counter()
            conn.execute("CREATE TABLE events_new (id INTEGER PRIMARY KEY, payload TEXT, version INTEGER)")
            conn.execute("BEGIN IMMEDIATE")
            if config.change_capture:
                for sql in _TRIGGERS:
                    conn.execute(sql)
            # The backfill's end is fixed when the triggers go live: later rows are theirs.
            low, high = conn.execute("SELECT min(id) - 1, max(id) FROM events").fetchone()
            conn.execute("COMMIT")
            max_chunks = (config.initial_rows + config.headroom_ids) // config.chunk_rows + 2
            for chunk in range(max_chunks):
                if low is None or low >= high or time.monotonic() > deadline:
                    break
                t0 = time.perf_counter()
                conn.execute("BEGIN IMMEDIATE")
                upper = conn.execute(
                    "SELECT max(id) FROM "
                    "(SELECT id FROM events WHERE id > ? AND id <= ? ORDER BY id LIMIT ?)",
                    (low, high, config.chunk_rows),
                ).fetchone()[0]
                if upper is None:
                    conn.execute("COMMIT")
                    break
                copied = conn.execute(
                    "INSERT OR IGNORE INTO events_new (id, payload, version) "
                    "SELECT id, payload, version FROM events WHERE id > ? AND id <= ?",
                    (low, upper),
                ).rowcount
                conn.execute("COMMIT")
                chunks.append((chunk, low + 1, upper, copied, time.perf_counter() - t0))
                low = upper
                time.sleep(config.chunk_pause_s)
            if time.monotonic() > deadline:
                raise TimeoutError(f"the swap did not finish within timeout_s={config.timeout_s}")
            backfill_s = time.perf_counter() - backfill_started
            t0 = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            for name in ("events_swap_ins", "events_swap_upd", "events_swap_del"):
                conn.execute(f"DROP TRIGGER IF EXISTS {name}")
            max_id_before = conn.execute("SELECT max(id) FROM events").fetchone()[0]
            conn.execute("ALTER TABLE events RENAME TO events_old")
            conn.execute("ALTER TABLE events_new RENAME TO events")
            conn.execute("COMMIT")
            cutover_s = time.perf_counter() - t0
            writer.phase = "after"
            time.sleep(config.after_cutover_s)
        finally:
            writer.stop.set()
            writer.join(timeout=10.0)
        if writer.is_alive():  # pragma: no cover - the join above is bounded
            raise TimeoutError("the writer thread did not stop")
        if writer.error is not None:  # pragma: no cover
            raise RuntimeError(f"the writer failed: {writer.error!r}")
        final = dict(conn.execute("SELECT id, version FROM events").fetchall())

    expected = {i: 0 for i in initial_ids}
    for row_id in writer.deleted:
        expected.pop(row_id, None)
    expected.update(writer.expected)
    lost = [i for i in expected if i not in final]
    resurrected = [i for i in final if i not in expected]
    stale = [i for i, version in expected.items() if i in final and final[i] != version]
    ops = pd.DataFrame(writer.log, columns=["t_s", "op", "row_id", "outcome", "phase"])
    inserted_after = (ops["phase"] == "after") & (ops["op"] == "insert") & (ops["outcome"] == "ok")
    after_ids = ops.loc[inserted_after, "row_id"]
    summary = {
        "rows_expected": len(expected),
        "rows_found": len(final),
        "rows_lost": len(lost),
        "rows_resurrected": len(resurrected),
        "rows_stale": len(stale),
        "writer_ok": int((ops["outcome"] == "ok").sum()),
        "inserts_failed": int((ops["outcome"] == "check_failed").sum()),
        "busy": int((ops["outcome"] == "busy").sum()),
        "backfill_s": float(backfill_s),
        "cutover_ms": float(cutover_s * 1000),
        "max_id_before": int(max_id_before),
        "first_id_after": int(after_ids.min()) if len(after_ids) else -1,
        "new_ids_above_limit": int((after_ids > config.id_limit).sum()),
        # chunks: (chunk, first_id, last_id, rows_copied, seconds)
        "n_chunks": len(chunks),
        "rows_copied": int(sum(chunk[3] for chunk in chunks)),
        "max_chunk_ms": float(max((chunk[4] for chunk in chunks), default=0.0) * 1000),
    }
    return Run.create(ops, summary=summary)


def plot_swap_timeline(ops: pd.DataFrame, *, bin_s: float = 0.05, ax: Axes | None = None) -> Axes:
    """Writer statements per bin that committed vs failed, shaded by phase.

    Parameters
    ----------
    ops : pd.DataFrame
        The ``frame`` of a :func:`run_online_swap` run (one row per writer statement).
    bin_s : float
        Width of a time bin (s).
    ax : Axes | None
        Where to draw (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes
    """
    if not isinstance(ops, pd.DataFrame) or not {"t_s", "outcome", "phase"} <= set(ops.columns):
        raise ValueError("ops must be the frame of a run_online_swap Run (columns t_s, outcome, phase)")
    width = validate.positive_float("bin_s", bin_s)
    ops = validate.frame_columns("ops", ops, ["t_s"])
    if ops.empty or ops["t_s"].isna().any():
        raise ValueError("ops must have at least one row and no NaN in t_s")
    if float(ops["t_s"].max()) / width > MAX_TIMELINE_BINS:
        raise ValueError(
            f"bin_s must leave at most {MAX_TIMELINE_BINS:,} bins over the run, got bin_s={width}"
        )
    ax = axes_or_new(ax)
    edges = np.arange(0.0, float(ops["t_s"].max()) + 2 * width, width)
    for outcome, colour in (("ok", "C0"), ("check_failed", "C1"), ("busy", "C7")):
        times = ops.loc[ops["outcome"] == outcome, "t_s"]
        if len(times):
            counts, _ = np.histogram(times, bins=edges)
            ax.step(edges[:-1], counts / width, where="post", color=colour, label=outcome.replace("_", " "))
    for phase, colour in (("backfill", "C2"), ("after", "C4")):
        times = ops.loc[ops["phase"] == phase, "t_s"]
        if len(times):
            name = "backfill" if phase == "backfill" else "after the rename"
            ax.axvspan(float(times.min()), float(times.max()), color=colour, alpha=0.12, label=name)
    return label(ax, "time since the writer started (s)", "writer statements (per s)", legend=True)
