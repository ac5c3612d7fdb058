"""What a commit costs, what a cascade costs, and checking relations outside the database.

Real SQLite measurements on the reader's machine, each bounded in time and run in
a temporary folder that is always removed:

- :func:`measure_fsync` -- raw ``fsync`` latency of the temp folder's file system,
  and :func:`filesystem_type` to say when that is tmpfs (RAM), where fsync costs
  nothing and every commit-rate number below is optimistic;
- :func:`measure_commit_rates` -- rows per second with one transaction per row
  (autocommit) against batched transactions, for ``synchronous=FULL/NORMAL`` and
  the WAL and rollback journals;
- :func:`simulate_group_commit` with :func:`theory_commits_per_s` -- why one flush
  per commit caps commits at 1/fsync, and how group commit lifts the cap;
- :func:`run_cascade` / :func:`sweep_cascade` -- ``ON DELETE CASCADE`` with
  ``PRAGMA foreign_keys=ON`` (SQLite's default is OFF), with and without an index
  on the child's foreign-key column;
- :func:`measure_fk_insert_cost` and :func:`run_enforcer_checker` -- the
  application enforces the relation, an asynchronous checker finds and repairs
  the orphans that concurrent writers create, compared with the database's FK.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.axes import Axes

from syslab import validate
from syslab.environment import filesystem_type  # re-exported: shared by the SQLite chapters
from syslab.experiment import Run
from syslab.plot import axes_or_new, label
from syslab.sqlite_tools import temporary_database

__all__ = [
    "EnforcerConfig",
    "filesystem_type",
    "measure_commit_rates",
    "measure_fk_insert_cost",
    "measure_fsync",
    "plot_cascade",
    "plot_group_commit",
    "run_cascade",
    "run_enforcer_checker",
    "simulate_group_commit",
    "summarize_group_commit",
    "sweep_cascade",
    "sweep_group_commit",
    "theory_commits_per_s",
]

MEMORY_FILESYSTEMS = ("tmpfs", "ramfs")
MAX_GROUP_CLIENTS = 100_000  # concurrent committers in simulate_group_commit
MAX_COMMIT_ROWS = 1_000_000  # rows per case in measure_commit_rates
MAX_CASE_S = 30.0  # seconds per case in measure_commit_rates


# ------------------------------------------------------------------ the disk


def measure_fsync(n: int = 200, *, block_bytes: int = 4096, max_total_s: float = 2.0) -> Run:
    """Write ``block_bytes`` and ``fsync`` a temp file ``n`` times; one row per call.


    Parameters
    ----------
    n : int
        fsync calls to time.
    block_bytes : int
        Bytes written before each fsync.
    max_total_s : float
        Bound on the whole measurement (s).

    Returns
    -------
    pandas.DataFrame
        ``call`` and ``latency_s``; ``attrs["filesystem"]`` names the file system.
        Returned as ``Run.frame``; ``Run.summary`` holds ``filesystem`` and ``median_latency_s``.
    """
    n = validate.int_in_range("n", n, 1, 100_000)
    block = validate.int_in_range("block_bytes", block_bytes, 1, 1 << 24)
    budget = validate.positive_float("max_total_s", max_total_s)
    latencies = []
    payload = b"x" * block
    with tempfile.TemporaryDirectory(prefix="syslab-fsync-") as folder:
        fd = os.open(os.path.join(folder, "f"), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            started = time.perf_counter()
            for _ in range(n):
                os.write(fd, payload)
                t0 = time.perf_counter()
                os.fsync(fd)
                latencies.append(time.perf_counter() - t0)
                if time.perf_counter() - started > budget:
                    break
        finally:
            os.close(fd)
        fs = filesystem_type(folder)
    frame = pd.DataFrame({"call": np.arange(len(latencies)), "latency_s": latencies})
    frame.attrs["filesystem"] = fs
    return Run.create(
        frame,
        {
            "filesystem": fs,
            "median_latency_s": float(frame["latency_s"].median()) if len(frame) else float("nan"),
        },
        filesystem=fs,
    )


def _insert_rows(
    conn: sqlite3.Connection, rows_per_tx: int, n_rows: int, max_s: float
) -> tuple[int, int, float]:
    """Insert up to ``n_rows`` rows in transactions of ``rows_per_tx``; stop after ``max_s``."""
    done = commits = 0
    started = time.perf_counter()
    while done < n_rows and time.perf_counter() - started < max_s:
        batch = min(rows_per_tx, n_rows - done)
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO t (v) VALUES (?)", ((done + i,) for i in range(batch)))
        conn.execute("COMMIT")
        done += batch
        commits += 1
    return done, commits, time.perf_counter() - started


def measure_commit_rates(
    *,
    n_rows: int = 5_000,
    batch_rows: int = 1_000,
    journal_modes: Sequence[str] = ("WAL", "DELETE"),
    synchronous: Sequence[str] = ("FULL", "NORMAL"),
    max_s_per_case: float = 0.5,
) -> Run:
    """Rows per second on a real SQLite file: one row per transaction vs ``batch_rows`` per transaction.

    Each (journal mode, synchronous, rows per transaction) case gets a fresh database
    and stops after ``n_rows`` rows or ``max_s_per_case`` seconds, whichever is first.


    Parameters
    ----------
    n_rows : int
        Rows inserted per case (bounded).
    batch_rows : int
        Rows per transaction in the batched cases.
    journal_modes : Sequence[str]
        SQLite journal modes to try ("WAL", "DELETE").
    synchronous : Sequence[str]
        PRAGMA synchronous values to try ("FULL", "NORMAL").
    max_s_per_case : float
        Wall-time bound per case (s); a case stops early when it is reached.

    Returns
    -------
    pandas.DataFrame
        ``journal_mode``, ``synchronous``, ``rows_per_tx``, ``rows``, ``commits``,
        ``seconds``, ``rows_per_s``, ``commits_per_s``; ``attrs["filesystem"]``.
    """
    n = validate.bounded_int("n_rows", n_rows, MAX_COMMIT_ROWS)
    batch = validate.bounded_int("batch_rows", batch_rows, MAX_COMMIT_ROWS)
    budget = validate.float_in_range("max_s_per_case", max_s_per_case, 1e-3, MAX_CASE_S)
    modes = [
        validate.choice("journal_modes", m, ("WAL", "DELETE", "TRUNCATE", "MEMORY")) for m in journal_modes
    ]
    syncs = [validate.choice("synchronous", s, ("OFF", "NORMAL", "FULL", "EXTRA")) for s in synchronous]
    if not modes or not syncs:
        raise ValueError("journal_modes and synchronous must not be empty")
    rows = []
    for mode in modes:
        for sync in syncs:
            for per_tx in (1, batch):
                with temporary_database("commits.db", isolation_level=None) as (conn, path):
                    conn.execute(f"PRAGMA journal_mode = {mode}")
                    conn.execute(f"PRAGMA synchronous = {sync}")
                    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)")
                    done, commits, seconds = _insert_rows(conn, per_tx, n, budget)
                    fs = filesystem_type(path.parent)
                rows.append(
                    {
                        "journal_mode": mode,
                        "synchronous": sync,
                        "rows_per_tx": per_tx,
                        "rows": done,
                        "commits": commits,
                        "seconds": seconds,
                        "rows_per_s": done / seconds,
                        "commits_per_s": commits / seconds,
                    }
                )
    frame = pd.DataFrame(rows)
    frame.attrs["filesystem"] = fs
    return Run.create(frame)


# -------------------------------------------------------------- group commit


def theory_commits_per_s(fsync_s: float, *, fsyncs_per_commit: float = 1.0, group_size: float = 1.0) -> float:
    """Ceiling on commits per second when each flush takes ``fsync_s``.

    One durable commit needs ``fsyncs_per_commit`` flushes; group commit lets one
    flush make ``group_size`` commits durable at once, so the ceiling is
    ``group_size / (fsyncs_per_commit * fsync_s)``.

    Parameters
    ----------
    fsync_s : float
        Time of one log flush (s).
    fsyncs_per_commit : float
        Flushes each commit needs.
    group_size : float
        Commits one flush covers.

    Returns
    -------
    float
        The ceiling on commits per second: ``group_size / (fsyncs_per_commit * fsync_s)``.
    """
    f = validate.positive_float("fsync_s", fsync_s)
    k = validate.positive_float("fsyncs_per_commit", fsyncs_per_commit)
    g = validate.positive_float("group_size", group_size)
    return g / (k * f)


def simulate_group_commit(
    n_clients: int,
    fsync_s: float,
    *,
    think_s: float = 0.0,
    group: bool = True,
    n_flushes: int = 2_000,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Clients that commit in a loop against one log device that flushes one batch at a time.

    Each client works for an exponential ``think_s`` (0: none), then asks for a
    commit and waits until a flush that includes it completes. The device runs one
    flush at a time, each taking ``fsync_s``. With ``group=True`` a flush takes every
    commit waiting when it starts (group commit); with ``group=False`` only the oldest.


    Parameters
    ----------
    n_clients : int
        Concurrent committers.
    fsync_s : float
        Time of one log flush (s).
    think_s : float
        Work between a client's commits (s).
    group : bool
        True: one flush covers every commit waiting for it; False: one flush per commit.
    n_flushes : int
        Flushes to simulate.
    seed : int | np.random.Generator | None
        Randomness of the think times.

    Returns
    -------
    pandas.DataFrame
        One row per flush: ``flush``, ``start_s``, ``end_s``, ``batch_size`` and
        ``mean_latency_s`` (request to durable, over the batch).
    """
    clients = validate.int_in_range("n_clients", n_clients, 1, 100_000)
    flush_s = validate.positive_float("fsync_s", fsync_s)
    think = validate.non_negative_float("think_s", think_s)
    flushes = validate.int_in_range("n_flushes", n_flushes, 1, 1_000_000)
    if not isinstance(group, bool):
        raise TypeError("group must be a bool")
    rng = validate.rng_from_seed(seed)
    ready = rng.exponential(think, size=clients) if think > 0 else np.zeros(clients)
    now = 0.0
    rows = []
    for flush in range(flushes):
        start = max(now, float(ready.min()))
        if group:
            batch = np.flatnonzero(ready <= start)
        else:
            batch = np.array([int(np.argmin(ready))])
        end = start + flush_s
        rows.append((flush, start, end, batch.size, float(np.mean(end - ready[batch]))))
        ready[batch] = end + (rng.exponential(think, size=batch.size) if think > 0 else 0.0)
        now = end
    return pd.DataFrame(rows, columns=["flush", "start_s", "end_s", "batch_size", "mean_latency_s"])


def summarize_group_commit(df: pd.DataFrame) -> pd.Series:
    """``commits_per_s``, ``mean_batch`` and ``mean_latency_ms`` of a group-commit run.

    Parameters
    ----------
    df : pd.DataFrame
        What :func:`simulate_group_commit` returns.

    Returns
    -------
    pandas.Series
        Commits per second, commits per flush and mean commit latency.
    """
    needed = {"start_s", "end_s", "batch_size", "mean_latency_s"}
    if not isinstance(df, pd.DataFrame) or not needed <= set(df.columns) or df.empty:
        raise ValueError(f"df must be a non-empty DataFrame with columns {sorted(needed)}")
    if df[sorted(needed)].isna().any().any():
        raise ValueError("df must not hold NaN")
    commits = df["batch_size"].sum()
    return pd.Series(
        {
            "commits_per_s": float(commits / df["end_s"].iloc[-1]),
            "mean_batch": float(df["batch_size"].mean()),
            "mean_latency_ms": float(1000 * (df["mean_latency_s"] * df["batch_size"]).sum() / commits),
        }
    )


def sweep_group_commit(
    clients: Sequence[int],
    fsync_s: float,
    *,
    think_s: float = 0.0,
    n_flushes: int = 2_000,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Commits per second against concurrent clients, with and without group commit, plus the ceilings.

    Parameters
    ----------
    clients : Sequence[int]
        Numbers of concurrent committers to try.
    fsync_s : float
        Time of one log flush (s).
    think_s : float
        Work between a client's commits (s).
    n_flushes : int
        Flushes simulated per point.
    seed : int, numpy Generator or None
        Randomness (one child seed per point).

    Returns
    -------
    pandas.DataFrame
        One row per (clients, group or not) with the summary of :func:`summarize_group_commit` and the ceilings.
    """
    counts = validate.sequence_of_positive_ints("clients", clients)
    for index, count in enumerate(counts):
        validate.bounded_int(f"clients[{index}]", count, MAX_GROUP_CLIENTS)
    rows = []
    for count in counts:
        for group in (False, True):
            run = simulate_group_commit(
                count, fsync_s, think_s=think_s, group=group, n_flushes=n_flushes, seed=seed
            )
            rows.append({"clients": count, "group_commit": group, **summarize_group_commit(run).to_dict()})
    frame = pd.DataFrame(rows)
    frame["ceiling_one_per_flush"] = theory_commits_per_s(fsync_s)
    # No client can commit more than once per (think + flush): the closed-system bound.
    frame["ceiling_closed"] = frame["clients"] / (think_s + fsync_s)
    return frame


def plot_group_commit(sweep: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Commits per second against clients, group commit vs one commit per flush.

    Parameters
    ----------
    sweep : pd.DataFrame
        What :func:`sweep_group_commit` returns.
    ax : Axes | None
        Where to draw (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes
    """
    sweep = validate.frame_columns(
        "sweep", sweep, ["group_commit", "clients", "commits_per_s", "ceiling_one_per_flush"]
    )
    if sweep.empty:
        raise ValueError("sweep must have at least one row")
    ax = axes_or_new(ax)
    for group, name, marker in ((False, "one commit per flush", "s"), (True, "group commit", "o")):
        part = sweep[sweep["group_commit"] == group]
        ax.plot(part["clients"], part["commits_per_s"], marker=marker, label=name)
    ax.axhline(float(sweep["ceiling_one_per_flush"].iloc[0]), color="C7", linestyle=":", label="1 / fsync")
    if "ceiling_closed" in sweep.columns:
        bound = sweep[sweep["group_commit"]]
        closed = bound["ceiling_closed"]
        ax.plot(bound["clients"], closed, color="C7", linestyle="--", label="n / (think + fsync)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    return label(ax, "concurrent committing clients", "commits per second", legend=True)


# ------------------------------------------------------------------ cascades


def run_cascade(
    n_parents: int = 200,
    children_per_parent: int = 1_000,
    n_delete: int = 20,
    *,
    child_index: bool = True,
    foreign_keys: bool = True,
) -> Run:
    """Delete ``n_delete`` parents of a real SQLite file with ``ON DELETE CASCADE``; time it.


    Parameters
    ----------
    n_parents : int
        Parent rows (1 to 1,000,000).
    children_per_parent : int
        Children per parent (0 to 100,000).
    n_delete : int
        Parents deleted by the one DELETE.
    child_index : bool
        Create an index on child.parent_id first.
    foreign_keys : bool
        Run PRAGMA foreign_keys = ON (SQLite ignores foreign keys otherwise).

    Returns
    -------
    pandas.Series
        ``foreign_keys_default`` (what ``PRAGMA foreign_keys`` said on a fresh
        connection), ``foreign_keys``, ``child_index``, ``children_per_parent``,
        ``child_rows``, ``seconds`` (the DELETE statement), ``rowcount`` (what the
        driver reports: parents only), ``children_deleted`` and ``orphans_left``.
    """
    parents = validate.int_in_range("n_parents", n_parents, 1, 1_000_000)
    per = validate.int_in_range("children_per_parent", children_per_parent, 0, 100_000)
    doomed = validate.int_in_range("n_delete", n_delete, 1, parents)
    child_index = validate.instance("child_index", child_index, bool)
    foreign_keys = validate.instance("foreign_keys", foreign_keys, bool)
    if parents * per > 5_000_000:
        raise ValueError("n_parents * children_per_parent must be <= 5,000,000")
    with temporary_database("cascade.db", isolation_level=None) as (conn, _path):
        default = int(conn.execute("PRAGMA foreign_keys").fetchone()[0])
        conn.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")
        conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute(
            "CREATE TABLE child (id INTEGER PRIMARY KEY, "
            "parent_id INTEGER NOT NULL REFERENCES parent(id) ON DELETE CASCADE, v INTEGER)"
        )
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO parent (id, name) VALUES (?, 'p')", ((i,) for i in range(1, parents + 1))
        )
        conn.executemany(
            "INSERT INTO child (parent_id, v) VALUES (?, 0)",
            ((p,) for p in range(1, parents + 1) for _ in range(per)),
        )
        conn.execute("COMMIT")
        if child_index:
            conn.execute("CREATE INDEX child_parent ON child (parent_id)")
        before = conn.execute("SELECT count(*) FROM child").fetchone()[0]
        t0 = time.perf_counter()
        cursor = conn.execute("DELETE FROM parent WHERE id <= ?", (doomed,))
        seconds = time.perf_counter() - t0
        rowcount = cursor.rowcount
        after = conn.execute("SELECT count(*) FROM child").fetchone()[0]
        orphans = len(_find_orphans(conn))
    summary = pd.Series(
        {
            "foreign_keys_default": default,
            "foreign_keys": foreign_keys,
            "child_index": child_index,
            "children_per_parent": per,
            "child_rows": before,
            "seconds": seconds,
            "rowcount": rowcount,
            "children_deleted": before - after,
            "orphans_left": orphans,
        },
        dtype=object,
    )
    return Run.create(summary.to_frame().T.infer_objects(), summary.to_dict())


def sweep_cascade(
    children_per_parent: Sequence[int], *, n_parents: int = 200, n_delete: int = 20
) -> pd.DataFrame:
    """:func:`run_cascade` with and without the child index at each fan-out; one row per run.

    Parameters
    ----------
    children_per_parent : Sequence[int]
        Fan-outs to try.
    n_parents : int
        Parent rows.
    n_delete : int
        Parents deleted by the one DELETE.

    Returns
    -------
    pandas.DataFrame
        One row per (fan-out, index or not): the columns of :func:`run_cascade` plus ``ms_per_child``.
    """
    fanouts = validate.sequence_of_positive_ints("children_per_parent", children_per_parent)
    rows = [
        run_cascade(n_parents, per, n_delete, child_index=indexed).frame.iloc[0]
        for per in fanouts
        for indexed in (True, False)
    ]
    frame = pd.DataFrame(rows).infer_objects()
    frame["ms_per_child"] = 1000 * frame["seconds"] / frame["children_deleted"].clip(lower=1)
    return frame


def plot_cascade(sweep: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Cascade time against children per parent, with and without the index on the FK column.

    Parameters
    ----------
    sweep : pd.DataFrame
        What :func:`sweep_cascade` returns.
    ax : Axes | None
        Where to draw (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes
    """
    sweep = validate.frame_columns("sweep", sweep, ["child_index", "children_per_parent", "seconds"])
    ax = axes_or_new(ax)
    for indexed, name, marker in ((True, "index on child.parent_id", "o"), (False, "no index", "s")):
        part = sweep[sweep["child_index"] == indexed]
        ax.plot(part["children_per_parent"], part["seconds"] * 1000, marker=marker, label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(ticker.ScalarFormatter())
    ax.yaxis.set_minor_formatter(ticker.NullFormatter())
    return label(ax, "children per parent", "DELETE with cascade (ms)", legend=True)


# ------------------------------------------------------- enforcer + checker


def _fk_insert_seconds(method: str, targets: list[int], parents: int, batch: int) -> float:
    with temporary_database("fk.db", isolation_level=None) as (conn, _path):
        conn.execute(f"PRAGMA foreign_keys = {'ON' if method == 'FOREIGN KEY' else 'OFF'}")
        conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        conn.execute("CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id))")
        conn.execute("CREATE INDEX child_parent ON child (parent_id)")
        conn.execute("BEGIN")  # one transaction: 1,000 autocommits would time fsync, not the check
        conn.executemany("INSERT INTO parent (id) VALUES (?)", ((i,) for i in range(1, parents + 1)))
        conn.execute("COMMIT")
        # CPU time of this process, not wall time: on a shared machine the wall clock also
        # counts the time other processes held the CPU, which swamps a microsecond check.
        t0 = time.process_time()
        for start in range(0, len(targets), batch):
            conn.execute("BEGIN")
            for parent in targets[start : start + batch]:
                if method == "application check":
                    if conn.execute("SELECT 1 FROM parent WHERE id = ?", (parent,)).fetchone() is None:
                        continue
                conn.execute("INSERT INTO child (parent_id) VALUES (?)", (parent,))
            conn.execute("COMMIT")
        return max(time.process_time() - t0, 1e-9)


def measure_fk_insert_cost(
    n_rows: int = 10_000, *, n_parents: int = 1_000, batch_rows: int = 5_000, repeats: int = 3
) -> Run:
    """Child inserts per second with no check, the database's FK, and an application check.

    All in batched transactions, so the numbers are the CPU cost of the check, not
    fsync; timed with the process's CPU clock. The methods run interleaved ``repeats``
    times and each keeps its fastest run.


    Parameters
    ----------
    n_rows : int
        Child rows inserted per method.
    n_parents : int
        Parent rows the children reference.
    batch_rows : int
        Rows per transaction.
    repeats : int
        Timed repetitions per method (the median is kept).

    Returns
    -------
    pandas.DataFrame
        ``method``, ``rows_per_s`` (per CPU second) and ``relative`` (to no check).
    """
    n = validate.int_in_range("n_rows", n_rows, 100, 5_000_000)
    parents = validate.int_in_range("n_parents", n_parents, 1, 1_000_000)
    batch = validate.int_in_range("batch_rows", batch_rows, 1, 1_000_000)
    rounds = validate.int_in_range("repeats", repeats, 1, 20)
    rng = np.random.default_rng(0)  # which parent each child names: not a published random result
    targets = rng.integers(1, parents + 1, size=n).tolist()
    methods = ("no check", "FOREIGN KEY", "application check")
    best = dict.fromkeys(methods, float("inf"))
    for _ in range(rounds):
        for method in methods:
            best[method] = min(best[method], _fk_insert_seconds(method, targets, parents, batch))
    frame = pd.DataFrame({"method": list(methods), "rows_per_s": [n / best[m] for m in methods]})
    frame["relative"] = frame["rows_per_s"] / frame["rows_per_s"].iloc[0]
    return Run.create(frame)


@dataclass(frozen=True)
class EnforcerConfig:
    """Knobs of the enforcer + checker experiment.

    Attributes
    ----------
    n_parents : int
        Live parents at any time (the deleter replaces each one it deletes).
    n_writers : int
        Threads inserting children.
    duration_s : float
        How long the writers and the deleter run.
    race_gap_s : float
        Time between the application's parent check and its insert (the window
        in which a concurrent delete makes an orphan).
    delete_interval_s : float
        Pause between parent deletions.
    checker_interval_s : float
        Pause between orphan-checker passes.
    timeout_s : float
        Hard limit.
    """

    n_parents: int = 50
    n_writers: int = 2
    duration_s: float = 1.0  # seconds
    race_gap_s: float = 0.001  # seconds
    delete_interval_s: float = 0.005  # seconds
    checker_interval_s: float = 0.2  # seconds
    timeout_s: float = 30.0  # seconds

    def __post_init__(self) -> None:
        validate.int_in_range("n_parents", self.n_parents, 2, 1_000_000)
        validate.int_in_range("n_writers", self.n_writers, 1, 32)
        validate.float_in_range("duration_s", self.duration_s, 0.01, 60.0)
        validate.float_in_range("race_gap_s", self.race_gap_s, 0.0, 1.0)
        validate.float_in_range("delete_interval_s", self.delete_interval_s, 0.0001, 10.0)
        validate.float_in_range("checker_interval_s", self.checker_interval_s, 0.001, 60.0)
        validate.float_in_range("timeout_s", self.timeout_s, 0.0, 600.0, low_inclusive=False)


def _connect(path: Path, foreign_keys: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=10.0, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 10000")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")
    return conn


def _find_orphans(conn: sqlite3.Connection) -> list[int]:
    query = (
        "SELECT child.id FROM child LEFT JOIN parent ON parent.id = child.parent_id WHERE parent.id IS NULL"
    )
    return [row[0] for row in conn.execute(query)]


def run_enforcer_checker(
    config: EnforcerConfig | None = None,
    *,
    enforcement: str = "application",
    seed: int | np.random.Generator | None = 0,
) -> Run:
    """Writers insert children while a deleter removes parents; who keeps the relation intact?

    ``enforcement="application"``: no FK. Each writer checks the parent exists, waits
    ``race_gap_s`` (the application's work), then inserts; the deleter deletes a
    parent's children and the parent in one transaction (the application's cascade);
    an asynchronous checker finds orphans with an anti-join and deletes them.

    ``enforcement="foreign_key"``: ``PRAGMA foreign_keys=ON``, ``REFERENCES ... ON
    DELETE CASCADE``; the writers skip their own check and the database rejects an
    insert whose parent is gone (``FOREIGN KEY constraint failed``).


    Parameters
    ----------
    config : EnforcerConfig | None
        Durations, rates and intervals (default :class:`EnforcerConfig`).
    enforcement : str
        "application" (check, then insert; a checker repairs orphans) or "foreign_key".
    seed : int, numpy Generator or None
        Randomness of the writers and the deleter.

    Returns
    -------
    syslab.experiment.Run
        ``summary``: totals -- ``inserted``, ``rejected`` (parent missing at check time or by the
        FK), ``inserts_per_s``, ``parents_deleted``, ``orphans_found`` (by the checker
        while running), ``orphans_at_end`` (after a final checker pass: must be 0),
        ``checker_passes``, ``checker_ms_mean`` -- and, in ``frame``, one row per checker pass
        (``t_s``, ``orphans``, ``seconds``).
    """
    config = EnforcerConfig() if config is None else config
    if not isinstance(config, EnforcerConfig):
        raise TypeError(f"config must be an EnforcerConfig, got {type(config).__name__}")
    mode = validate.choice("enforcement", enforcement, ("application", "foreign_key"))
    # One integer drawn from the caller's seed: each thread builds its own generator from it.
    seed = int(validate.rng_from_seed(seed).integers(2**31))
    use_fk = mode == "foreign_key"
    deadline = time.monotonic() + config.timeout_s
    stop = threading.Event()
    lock = threading.Lock()
    counts = {"inserted": 0, "rejected": 0, "parents_deleted": 0}
    passes: list[tuple[float, int, float]] = []
    errors: list[BaseException] = []
    with temporary_database("enforce.db", isolation_level=None, timeout=10.0) as (setup, path):
        setup.execute("PRAGMA journal_mode = WAL")
        reference = "REFERENCES parent(id) ON DELETE CASCADE" if use_fk else ""
        setup.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        setup.execute(f"CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL {reference})")
        setup.execute("CREATE INDEX child_parent ON child (parent_id)")
        setup.execute("BEGIN")
        setup.executemany(
            "INSERT INTO parent (id) VALUES (?)", ((i,) for i in range(1, config.n_parents + 1))
        )
        setup.execute("COMMIT")
        alive = list(range(1, config.n_parents + 1))  # shared; replaced element-wise under `lock`
        started = time.perf_counter()

        def writer(index: int) -> None:
            rng = np.random.default_rng([seed, index])
            conn = _connect(path, use_fk)
            try:
                while not stop.is_set() and time.monotonic() < deadline:
                    parent = alive[int(rng.integers(len(alive)))]
                    if (
                        not use_fk
                        and conn.execute("SELECT 1 FROM parent WHERE id = ?", (parent,)).fetchone() is None
                    ):
                        with lock:
                            counts["rejected"] += 1
                        continue
                    if config.race_gap_s:
                        time.sleep(config.race_gap_s)
                    try:
                        conn.execute("INSERT INTO child (parent_id) VALUES (?)", (parent,))
                        key = "inserted"
                    except sqlite3.IntegrityError:
                        key = "rejected"
                    with lock:
                        counts[key] += 1
            except BaseException as error:  # pragma: no cover - reported below
                errors.append(error)
            finally:
                conn.close()

        def deleter() -> None:
            rng = np.random.default_rng([seed, 999])
            conn = _connect(path, use_fk)
            next_id = config.n_parents + 1
            try:
                while not stop.is_set() and time.monotonic() < deadline:
                    slot = int(rng.integers(len(alive)))
                    victim = alive[slot]
                    conn.execute("BEGIN IMMEDIATE")
                    if not use_fk:
                        conn.execute("DELETE FROM child WHERE parent_id = ?", (victim,))
                    conn.execute("DELETE FROM parent WHERE id = ?", (victim,))
                    conn.execute("INSERT INTO parent (id) VALUES (?)", (next_id,))
                    conn.execute("COMMIT")
                    with lock:
                        alive[slot] = next_id
                        counts["parents_deleted"] += 1
                    next_id += 1
                    time.sleep(config.delete_interval_s)
            except BaseException as error:  # pragma: no cover
                errors.append(error)
            finally:
                conn.close()

        def checker() -> None:
            conn = _connect(path, use_fk)
            try:
                while not stop.is_set() and time.monotonic() < deadline:
                    stop.wait(config.checker_interval_s)
                    t0 = time.perf_counter()
                    conn.execute("BEGIN IMMEDIATE")
                    orphans = _find_orphans(conn)
                    conn.executemany("DELETE FROM child WHERE id = ?", ((o,) for o in orphans))
                    conn.execute("COMMIT")
                    passes.append((t0 - started, len(orphans), time.perf_counter() - t0))
            except BaseException as error:  # pragma: no cover
                errors.append(error)
            finally:
                conn.close()

        threads = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(config.n_writers)]
        threads += [
            threading.Thread(target=deleter, daemon=True),
            threading.Thread(target=checker, daemon=True),
        ]
        try:
            for thread in threads:
                thread.start()
            stop.wait(config.duration_s)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=15.0)
        elapsed = time.perf_counter() - started
        if any(thread.is_alive() for thread in threads):  # pragma: no cover
            raise TimeoutError("a worker thread did not stop")
        if errors:  # pragma: no cover
            raise RuntimeError(f"a worker failed: {errors[0]!r}")
        found_running = sum(p[1] for p in passes)
        t0 = time.perf_counter()
        late = _find_orphans(setup)  # the final pass: what the last interval left behind
        setup.executemany("DELETE FROM child WHERE id = ?", ((o,) for o in late))
        passes.append((t0 - started, len(late), time.perf_counter() - t0))
        at_end = len(_find_orphans(setup))
    table = pd.DataFrame(passes, columns=["t_s", "orphans", "seconds"])
    summary = pd.Series(
        {
            "enforcement": mode,
            "inserted": counts["inserted"],
            "rejected": counts["rejected"],
            "inserts_per_s": counts["inserted"] / elapsed,
            "parents_deleted": counts["parents_deleted"],
            "orphans_found": found_running + len(late),
            "orphans_at_end": at_end,
            "checker_passes": len(table),
            "checker_ms_mean": float(1000 * table["seconds"].mean()),
        },
        dtype=object,
    )
    return Run.create(table, summary.to_dict())


# ------------------------------------------------------- the real engines

MAX_ENGINE_CHILD_ROWS = 2_000_000  # children loaded into a real engine for run_engine_cascade
MAX_ENGINE_TIMEOUT_S = 120.0
TABLE_HEADERS = {
    "engine_cascades": {
        "engine": "engine",
        "child_index": "index created by us",
        "index_created_by_engine": "index created by the engine",
        "children_deleted": "children deleted",
        "delete_ms": "DELETE (ms)",
        "rows_locked": "rows locked",
    },
}


def run_engine_cascade(
    engine: object,
    *,
    n_parents: int = 100,
    children_per_parent: int = 500,
    n_delete: int = 20,
    child_index: bool = True,
    timeout_s: float = 60.0,
) -> Run:
    """``ON DELETE CASCADE`` on a real PostgreSQL or MariaDB, with or without an index on the child's key.

    Loads ``n_parents`` parents with ``children_per_parent`` children each (server-side, in one
    statement), creates the foreign key with ``ON DELETE CASCADE`` and, if ``child_index``, an
    index on ``children.parent_id``; then deletes ``n_delete`` parents in one transaction and
    times the ``DELETE``. InnoDB needs an index on a foreign key's columns and creates one itself
    when there is none; the run records whether it did (``index_created_by_engine``). On MariaDB it
    also reads, before the commit, how many row locks the cascade holds
    (``information_schema.INNODB_TRX.trx_rows_locked``).

    Parameters
    ----------
    engine : syslab.engines.Engine
        A running PostgreSQL or MariaDB.
    n_parents : int
        Parent rows, 1 to 100,000.
    children_per_parent : int
        Children per parent, 1 to 100,000; ``n_parents * children_per_parent`` at most
        :data:`MAX_ENGINE_CHILD_ROWS`.
    n_delete : int
        Parents deleted by the one ``DELETE``, 1 to ``n_parents``.
    child_index : bool
        Create an index on ``children.parent_id`` before the delete.
    timeout_s : float
        Bound on the whole experiment, loading included (s), at most :data:`MAX_ENGINE_TIMEOUT_S`.

    Returns
    -------
    syslab.experiment.Run
        ``frame``: one row with ``engine``, ``child_index`` (asked for), ``index_created_by_engine``
        (bool), ``child_rows``, ``children_deleted``, ``delete_ms`` (the DELETE statement),
        ``rowcount`` (what the driver reports), ``rows_locked`` (MariaDB; NaN on PostgreSQL, which
        keeps row locks in the rows themselves) and ``load_s``. ``summary``: the same values.
    """
    from syslab import _engine_sql as sql

    kind = sql.kind_of(engine)
    parents = validate.int_in_range("n_parents", n_parents, 1, 100_000)
    per = validate.int_in_range("children_per_parent", children_per_parent, 1, 100_000)
    if parents * per > MAX_ENGINE_CHILD_ROWS:
        raise ValueError(
            f"n_parents * children_per_parent must be at most {MAX_ENGINE_CHILD_ROWS:,}, got {parents * per:,}"
        )
    doomed = validate.int_in_range("n_delete", n_delete, 1, parents)
    indexed = validate.instance("child_index", child_index, bool)
    timeout = validate.float_in_range("timeout_s", timeout_s, 1.0, MAX_ENGINE_TIMEOUT_S)
    deadline = sql.deadline_after(timeout)
    with sql.fresh_database(engine, deadline) as db:
        s = sql.open_session(kind, db, deadline)
        try:
            t0 = time.perf_counter()
            if kind == "postgres":
                s.execute("CREATE TABLE parents (id integer PRIMARY KEY)")
                s.execute(
                    "CREATE TABLE children (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
                    " parent_id integer NOT NULL, v integer)"
                )
                s.execute("INSERT INTO parents SELECT generate_series(1, %s)", (parents,))
                s.execute(
                    "INSERT INTO children (parent_id, v) SELECT p, 0 FROM generate_series(1, %s) p,"
                    " generate_series(1, %s) c",
                    (parents, per),
                )
                s.execute(
                    "ALTER TABLE children ADD FOREIGN KEY (parent_id) REFERENCES parents (id)"
                    " ON DELETE CASCADE"
                )
                if indexed:
                    s.execute("CREATE INDEX children_parent ON children (parent_id)")
                s.execute("ANALYZE parents")
                s.execute("ANALYZE children")
                count_indexes = (
                    "SELECT count(*) FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
                    " AND a.attnum = i.indkey[0] WHERE i.indrelid = 'children'::regclass"
                    " AND a.attname = 'parent_id'"
                )
            else:
                # The key is declared with the table: InnoDB then builds the index it needs at once
                # (named after the constraint) unless one already leads with parent_id.
                s.execute("CREATE TABLE parents (id INT PRIMARY KEY) ENGINE=InnoDB")
                s.execute(
                    "CREATE TABLE children (id BIGINT AUTO_INCREMENT PRIMARY KEY, parent_id INT NOT NULL,"
                    " v INT"
                    + (", INDEX children_parent (parent_id)" if indexed else "")
                    + ", FOREIGN KEY (parent_id) REFERENCES parents (id) ON DELETE CASCADE) ENGINE=InnoDB"
                )
                s.execute(f"INSERT INTO parents SELECT seq FROM seq_1_to_{parents}")
                s.execute(
                    f"INSERT INTO children (parent_id, v) SELECT p.seq, 0 FROM seq_1_to_{parents} p,"
                    f" seq_1_to_{per} c"
                )
                count_indexes = (
                    "SELECT count(DISTINCT index_name) FROM information_schema.STATISTICS"
                    " WHERE table_schema = DATABASE() AND table_name = 'children'"
                    " AND column_name = 'parent_id' AND seq_in_index = 1"
                )
            n_indexes = int(s.scalar(count_indexes))
            load_s = time.perf_counter() - t0
            before = int(s.scalar("SELECT count(*) FROM children"))
            s.begin()
            t1 = time.perf_counter()
            if kind == "postgres":
                cur = s.conn.execute("DELETE FROM parents WHERE id <= %s", (doomed,))
                rowcount = cur.rowcount
            else:
                with s.conn.cursor() as cur:
                    rowcount = cur.execute("DELETE FROM parents WHERE id <= %s", (doomed,))
            delete_ms = 1000 * (time.perf_counter() - t1)
            rows_locked = float("nan")
            if kind == "mariadb":
                # INNODB_TRX is a cache refreshed after 0.1 s without readers: wait it out.
                time.sleep(0.15)
                value = s.scalar(
                    "SELECT trx_rows_locked FROM information_schema.INNODB_TRX"
                    " WHERE trx_mysql_thread_id = CONNECTION_ID()"
                )
                rows_locked = float("nan") if value is None else float(value)
            s.commit()
            after = int(s.scalar("SELECT count(*) FROM children"))
        finally:
            s.close()
    row = {
        "engine": str(getattr(engine, "label", kind)),
        "child_index": indexed,
        "index_created_by_engine": bool(n_indexes > 0 and not indexed),
        "child_rows": before,
        "children_deleted": before - after,
        "delete_ms": delete_ms,
        "rowcount": int(rowcount),
        "rows_locked": rows_locked,
        "load_s": load_s,
    }
    return Run.create(pd.DataFrame([row]), row, engine=engine)


def summarize_engine_cascades(frame: pd.DataFrame) -> dict[str, object]:
    """The numbers a page quotes about :func:`run_engine_cascade` runs ("–" for a missing engine).

    Parameters
    ----------
    frame : pandas.DataFrame
        The runs' frames stacked (empty when no engine ran): MariaDB without a requested index,
        PostgreSQL with and without one.

    Returns
    -------
    dict
        ``cascade_maria_label``, ``cascade_maria_auto_index`` (a phrase), ``cascade_maria_children``,
        ``cascade_maria_ms``, ``cascade_maria_locked``, ``cascade_pg_label``,
        ``cascade_pg_index_ms``, ``cascade_pg_noindex_ms`` and ``cascade_pg_ratio``.
    """
    validate.instance("frame", frame, pd.DataFrame)
    nan = float("nan")
    out: dict[str, object] = {
        "cascade_maria_label": "MariaDB (not measured here)",
        "cascade_maria_auto_index": "not measured",
        "cascade_maria_children": 0,
        "cascade_maria_ms": nan,
        "cascade_maria_locked": nan,
        "cascade_pg_label": "PostgreSQL (not measured here)",
        "cascade_pg_index_ms": nan,
        "cascade_pg_noindex_ms": nan,
        "cascade_pg_ratio": nan,
    }
    if frame.empty:
        return out
    frame = validate.frame_columns(
        "frame", frame, ["engine", "child_index", "delete_ms", "index_created_by_engine"]
    )
    maria = frame[frame["engine"].str.startswith("MariaDB") & ~frame["child_index"]]
    if len(maria):
        row = maria.iloc[0]
        out.update(
            cascade_maria_label=row["engine"],
            cascade_maria_auto_index="it created one" if row["index_created_by_engine"] else "it did not",
            cascade_maria_children=int(row["children_deleted"]),
            cascade_maria_ms=float(row["delete_ms"]),
            cascade_maria_locked=float(row["rows_locked"]),
        )
    pg = frame[frame["engine"].str.startswith("PostgreSQL")].set_index("child_index")
    if {True, False} <= set(pg.index):
        out.update(
            cascade_pg_label=pg["engine"].iloc[0],
            cascade_pg_index_ms=float(pg.loc[True, "delete_ms"]),
            cascade_pg_noindex_ms=float(pg.loc[False, "delete_ms"]),
            cascade_pg_ratio=float(pg.loc[False, "delete_ms"] / pg.loc[True, "delete_ms"]),
        )
    return out
