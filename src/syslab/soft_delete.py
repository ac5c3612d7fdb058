"""DELETE vs soft delete, measured on real SQLite, and the costs a soft delete moves elsewhere.

A hard ``DELETE`` removes the row from the table *and* one entry from every
secondary index. A soft delete, ``UPDATE ... SET deleted_at = ?``, rewrites the
row but touches only the indexes that contain ``deleted_at`` -- none, unless the
schema indexes it or uses it in a partial-index predicate, in which case the
row leaves every such index exactly as a DELETE would. So the honest model of
one operation's work is

    t(method, k) = a_method + b * (index entries removed)

with ``k`` secondary indexes: DELETE removes ``k`` entries, a soft delete 0,
a soft delete under ``k`` partial ``WHERE deleted_at IS NULL`` indexes ``k``.
:func:`run_benchmark` measures it; :func:`theory_index_cost` fits it and finds
where the direction flips; :func:`lock_wait_model` shows what survives "under
concurrent load" once a commit is part of the lock hold time (it reuses
:func:`syslab.queueing.kingman_queue_delay_s`).

The ``demo_*`` functions each demonstrate one cost of soft deletes on a small
real database: unique constraints that block re-signup, partial indexes used
only when the query repeats their predicate, growth, erasure (including bytes a
hard DELETE leaves in free pages unless ``secure_delete`` is on), and cascades
that no longer fire.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from syslab import queueing, validate
from syslab.environment import filesystem_type  # re-exported: shared by the SQLite chapters
from syslab.plot import axes_or_new
from syslab.sqlite_tools import database_size_bytes, plan_uses_index, query_plan, temporary_database

__all__ = [
    "METHODS",
    "add_indexes",
    "build_accounts_table",
    "BenchmarkConfig",
    "decision_table",
    "demo_cascade",
    "demo_erasure",
    "demo_partial_index_plans",
    "demo_table_growth",
    "demo_unique_resignup",
    "filesystem_type",
    "lock_wait_model",
    "plot_benchmark",
    "plot_lock_wait",
    "run_benchmark",
    "run_commit_modes",
    "run_concurrent_writers",
    "summarize_concurrent",
    "summarize_benchmark",
    "theory_index_cost",
]

#: method -> (SQL, which indexes exist: "full" plain indexes or "partial" WHERE deleted_at IS NULL)
METHODS: dict[str, tuple[str, str]] = {
    "delete": ("DELETE FROM accounts WHERE id = ?", "full"),
    "soft": ("UPDATE accounts SET deleted_at = ? WHERE id = ?", "full"),
    "soft_partial": ("UPDATE accounts SET deleted_at = ? WHERE id = ?", "partial"),
}
_DELETED_AT = "2025-01-01 00:00:00"


@dataclass(frozen=True)
class BenchmarkConfig:
    """Size of the DELETE vs soft-delete benchmark.

    Attributes
    ----------
    n_rows : int
        Rows in the ``accounts`` table before any delete.
    n_ops : int
        Rows deleted (or soft-deleted) per run, chosen at random, in one transaction.
    index_counts : tuple of int
        Numbers of secondary indexes to test (each on its own integer column).
    repeats : int
        Runs per (indexes, method); each starts from an identical copy of the table.
    """

    n_rows: int = 100_000
    n_ops: int = 10_000
    index_counts: tuple[int, ...] = (0, 1, 2, 4, 8)
    repeats: int = 3

    def __post_init__(self) -> None:
        validate.positive_int("n_rows", self.n_rows)
        validate.positive_int("n_ops", self.n_ops)
        if self.n_ops > self.n_rows:
            raise ValueError(f"n_ops must be <= n_rows ({self.n_rows}), got {self.n_ops}")
        if isinstance(self.index_counts, (str, bytes)) or len(self.index_counts) == 0:
            raise ValueError("index_counts must be a non-empty sequence of integers >= 0")
        for i, k in enumerate(self.index_counts):
            validate.int_in_range(f"index_counts[{i}]", k, 0, 32)
        validate.positive_int("repeats", self.repeats)


def build_accounts_table(conn: sqlite3.Connection, values: np.ndarray) -> None:
    """Create and fill ``accounts``: one integer column per column of ``values``, no secondary index.

    Columns: ``id`` (1..n), ``email``, ``c0 .. c{m-1}`` and ``deleted_at`` (all NULL).
    """
    if not isinstance(conn, sqlite3.Connection):
        raise TypeError(f"conn must be a sqlite3.Connection, got {type(conn).__name__}")
    values = np.asarray(values)
    if values.ndim != 2 or values.shape[0] == 0 or not np.issubdtype(values.dtype, np.integer):
        raise ValueError("values must be a non-empty 2-D array of integers (rows x columns)")
    columns = [f"c{i}" for i in range(values.shape[1])]
    ddl = ", ".join(["id INTEGER PRIMARY KEY", "email TEXT NOT NULL", *[f"{c} INTEGER" for c in columns]])
    conn.execute(f"CREATE TABLE accounts ({ddl}, deleted_at TEXT)")
    placeholders = ", ".join("?" * (len(columns) + 2))
    with conn:
        conn.executemany(
            f"INSERT INTO accounts VALUES ({placeholders}, NULL)",
            ((i + 1, f"player{i + 1}@example.com", *row) for i, row in enumerate(values.tolist())),
        )


def add_indexes(conn: sqlite3.Connection, k: int, kind: str) -> None:
    """``k`` secondary indexes on ``c0 .. c{k-1}``: plain (``full``) or ``partial`` (live rows only)."""
    k = validate.int_in_range("k", k, 0, 32)
    kind = validate.choice("kind", kind, ("full", "partial"))
    where = " WHERE deleted_at IS NULL" if kind == "partial" else ""
    with conn:
        for i in range(k):
            conn.execute(f"CREATE INDEX {kind}_c{i} ON accounts(c{i}){where}")


def _run_one(base: sqlite3.Connection, method: str, ids: list[int]) -> float:
    """Copy a base table and time ``len(ids)`` deletes or soft deletes inside one transaction."""
    sql = METHODS[method][0]
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        # A page-for-page copy: every run starts from identical B-trees, all of them already in memory.
        base.backup(conn)
        args = [(i,) for i in ids] if method == "delete" else [(_DELETED_AT, i) for i in ids]
        started = time.perf_counter()
        conn.execute("BEGIN")
        conn.executemany(sql, args)
        conn.execute("COMMIT")
        return time.perf_counter() - started
    finally:
        conn.close()


def run_benchmark(config: BenchmarkConfig | None = None, seed: int | np.random.Generator = 7) -> pd.DataFrame:
    """Measure hard DELETE, soft delete, and soft delete under partial indexes, on real SQLite B-trees.

    One table is loaded with ``max(index_counts)`` random integer columns; for
    each index count ``k`` two copies of it get ``k`` plain indexes or ``k``
    partial indexes ``WHERE deleted_at IS NULL``. Every run copies a base page for page (the
    backup API) into a fresh in-memory database, then
    deletes or soft-deletes the same ``n_ops`` random rows inside one
    transaction. In memory, because this measures the *statements* -- the
    B-tree work per row -- and on a shared machine disk noise would drown it;
    the commit, which is the same for both methods, is measured on a real file
    by :func:`run_commit_modes`. Each repeat runs every (index count, method)
    once, so that a change in machine load hits all configurations alike.

    Returns
    -------
    pandas.DataFrame
        One row per run: ``indexes``, ``method`` (``delete``, ``soft``,
        ``soft_partial``), ``repeat``, ``ops``, ``seconds``, ``us_per_op``,
        ``rows_per_s``.
    """
    config = config if config is not None else BenchmarkConfig()
    if not isinstance(config, BenchmarkConfig):
        raise TypeError(f"config must be a BenchmarkConfig, got {type(config).__name__}")
    rng = validate.rng_from_seed(seed)
    values = rng.integers(0, 2**40, size=(config.n_rows, max(config.index_counts)))
    ids = (rng.choice(config.n_rows, size=config.n_ops, replace=False) + 1).tolist()
    rows = []
    table = sqlite3.connect(":memory:")
    bases: dict[tuple[int, str], sqlite3.Connection] = {}
    try:
        # The table always has max(index_counts) integer columns; only how many are indexed varies.
        build_accounts_table(table, values)
        for k in config.index_counts:
            for kind in ("full", "partial"):
                bases[(k, kind)] = sqlite3.connect(":memory:")
                table.backup(bases[(k, kind)])
                add_indexes(bases[(k, kind)], k, kind)
        # Repeats outermost, every (k, method) once per repeat: a burst of load from other processes
        # then lands on one run of many configurations instead of on all runs of one configuration.
        for repeat in range(config.repeats):
            for k in config.index_counts:
                for method, (_sql, kind) in METHODS.items():
                    seconds = _run_one(bases[(k, kind)], method, ids)
                    rows.append(
                        {
                            "indexes": int(k),
                            "method": method,
                            "repeat": repeat,
                            "ops": config.n_ops,
                            "seconds": seconds,
                            "us_per_op": 1e6 * seconds / config.n_ops,
                            "rows_per_s": config.n_ops / seconds,
                        }
                    )
    finally:
        for base in bases.values():
            base.close()
        table.close()
    return pd.DataFrame(rows)


def summarize_benchmark(runs: pd.DataFrame) -> pd.DataFrame:
    """Median rows/s per (indexes, method) and the DELETE-time / soft-delete-time ratios.

    ``soft_speedup`` > 1 means the soft delete was faster than DELETE; < 1, slower.
    """
    needed = {"indexes", "method", "us_per_op", "rows_per_s"}
    if not isinstance(runs, pd.DataFrame) or not needed <= set(runs.columns):
        raise ValueError(f"runs must be a DataFrame from run_benchmark with columns {sorted(needed)}")
    med = runs.groupby(["indexes", "method"])["us_per_op"].median().unstack("method")
    table = pd.DataFrame(
        {
            "delete_rows_per_s": 1e6 / med["delete"],
            "soft_rows_per_s": 1e6 / med["soft"],
            "soft_partial_rows_per_s": 1e6 / med["soft_partial"],
            "soft_speedup": med["delete"] / med["soft"],
            "soft_partial_speedup": med["delete"] / med["soft_partial"],
        }
    )
    return table


def theory_index_cost(runs: pd.DataFrame) -> pd.Series:
    """Fit ``t = a_method + b_method * entries_removed`` and find where DELETE and soft delete cross.

    DELETE and the partial-index soft delete remove ``k`` index entries, a plain
    soft delete none, so the plain soft delete is a flat line and DELETE a
    rising one. The crossover ``k* = (a_soft - a_delete) / b_delete`` is the
    number of indexes above which soft delete wins; the number needed for a
    given speed-up ``s`` is ``(s * a_soft - a_delete) / b_delete``.

    Returns
    -------
    pandas.Series
        ``a_delete_us``, ``b_delete_us``, ``a_soft_us``, ``b_soft_us``,
        ``a_soft_partial_us``, ``b_soft_partial_us``, ``flip_indexes``,
        ``indexes_for_4x``, ``indexes_for_8x``.
    """
    needed = {"indexes", "method", "us_per_op"}
    if not isinstance(runs, pd.DataFrame) or not needed <= set(runs.columns):
        raise ValueError(f"runs must be a DataFrame from run_benchmark with columns {sorted(needed)}")
    if runs["indexes"].nunique() < 2:
        raise ValueError("runs must cover at least two index counts to fit a slope")
    fit = {}
    for method in METHODS:
        part = runs[runs["method"] == method]
        slope, intercept = np.polyfit(part["indexes"].to_numpy(float), part["us_per_op"].to_numpy(float), 1)
        fit[f"a_{method}_us"] = float(intercept)
        fit[f"b_{method}_us"] = float(slope)
    a_d, b_d = fit["a_delete_us"], fit["b_delete_us"]
    # The plain soft delete does not depend on k in the model; use its mean, not a fitted noise slope.
    a_s = float(runs.loc[runs["method"] == "soft", "us_per_op"].mean())
    fit["soft_mean_us"] = a_s
    for label, speedup in (("flip_indexes", 1.0), ("indexes_for_4x", 4.0), ("indexes_for_8x", 8.0)):
        fit[label] = (speedup * a_s - a_d) / b_d if b_d > 0 else np.inf
    return pd.Series(fit)


def run_commit_modes(
    n_rows: int = 20_000,
    n_ops: int = 300,
    indexes: int = 4,
    *,
    synchronous: str = "FULL",
    seed: int | np.random.Generator = 7,
) -> pd.DataFrame:
    """DELETE vs soft delete when each operation is its own transaction (autocommit), as in OLTP.

    Each operation now pays a commit -- a journal write and, with
    ``synchronous=FULL``, fsyncs -- which is the same for both methods.

    Returns
    -------
    pandas.DataFrame
        One row per method: ``method``, ``indexes``, ``ops``, ``us_per_op``, ``synchronous``.
    """
    n_rows = validate.positive_int("n_rows", n_rows)
    n_ops = validate.int_in_range("n_ops", n_ops, 1, n_rows)
    indexes = validate.int_in_range("indexes", indexes, 0, 32)
    synchronous = validate.choice("synchronous", synchronous, ("OFF", "NORMAL", "FULL"))
    rng = validate.rng_from_seed(seed)
    ids = (rng.choice(n_rows, size=n_ops, replace=False) + 1).tolist()
    folder = Path(tempfile.mkdtemp(prefix="syslab-softdelete-"))
    rows = []
    try:
        base = sqlite3.connect(folder / "base.db")
        try:
            build_accounts_table(base, rng.integers(0, 2**40, size=(n_rows, indexes)))
            add_indexes(base, indexes, "full")
        finally:
            base.close()
        for method in ("delete", "soft"):
            work = folder / "work.db"
            shutil.copyfile(folder / "base.db", work)
            conn = sqlite3.connect(work, isolation_level=None)
            try:
                conn.execute(f"PRAGMA synchronous = {synchronous}")
                sql = METHODS[method][0]
                started = time.perf_counter()
                for row_id in ids:  # autocommit: one transaction per statement
                    conn.execute(sql, (row_id,) if method == "delete" else (_DELETED_AT, row_id))
                seconds = time.perf_counter() - started
            finally:
                conn.close()
            rows.append(
                {
                    "method": method,
                    "indexes": indexes,
                    "ops": n_ops,
                    "us_per_op": 1e6 * seconds / n_ops,
                    "synchronous": synchronous,
                }
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return pd.DataFrame(rows)


def run_concurrent_writers(
    n_threads: int = 4,
    ops_per_thread: int = 25,
    indexes: int = 4,
    *,
    n_rows: int = 10_000,
    rounds: int = 3,
    wal: bool = False,
    timeout_s: float = 30.0,
    seed: int | np.random.Generator = 7,
) -> pd.DataFrame:
    """Real concurrency: threads delete or soft-delete rows of one SQLite file, one transaction each.

    SQLite lets one writer in at a time, so every operation waits for the
    database's write lock, held for the statement plus the commit. Each thread
    has its own connection (``timeout`` = SQLite's busy handler, which retries
    with short sleeps) and works through its own rows; all threads start
    together. The two methods alternate for ``rounds`` rounds, each on a fresh
    copy of the same table, so that the shared disk's changing fsync latency
    hits both alike.

    With ``wal=False`` SQLite runs as it does by default: rollback journal,
    ``synchronous=FULL``, fsyncs at every commit. With ``wal=True`` it uses
    ``journal_mode=WAL`` and ``synchronous=NORMAL``: a commit appends to the
    log without an fsync (the last transactions can be lost on power failure),
    so the commit is cheap and the statement is most of the lock hold time.

    Returns
    -------
    pandas.DataFrame
        One row per operation: ``durability``, ``round``, ``method``, ``thread``, ``latency_s``
        (from calling ``execute`` to its return, lock wait included),
        ``finished_s`` (since the round's common start).
    """
    import threading

    n_threads = validate.int_in_range("n_threads", n_threads, 1, 32)
    per = validate.positive_int("ops_per_thread", ops_per_thread)
    indexes = validate.int_in_range("indexes", indexes, 0, 32)
    n_rows = validate.positive_int("n_rows", n_rows)
    if n_threads * per > n_rows:
        raise ValueError(f"n_threads * ops_per_thread must be <= n_rows ({n_rows})")
    rounds = validate.positive_int("rounds", rounds)
    if not isinstance(wal, bool):
        raise TypeError(f"wal must be a bool, got {type(wal).__name__}")
    durability = "WAL, synchronous=NORMAL" if wal else "rollback journal, synchronous=FULL"
    timeout_s = validate.positive_float("timeout_s", timeout_s)
    rng = validate.rng_from_seed(seed)
    ids = (rng.choice(n_rows, size=n_threads * per, replace=False) + 1).tolist()
    folder = Path(tempfile.mkdtemp(prefix="syslab-softdelete-"))
    rows: list[dict] = []
    try:
        base = sqlite3.connect(folder / "base.db")
        try:
            build_accounts_table(base, rng.integers(0, 2**40, size=(n_rows, max(indexes, 1))))
            add_indexes(base, indexes, "full")
            if wal:
                base.execute("PRAGMA journal_mode = WAL")  # stored in the file: copies inherit it
        finally:
            base.close()
        for round_index, method in ((r, m) for r in range(rounds) for m in ("delete", "soft")):
            work = folder / f"{method}-{round_index}.db"
            shutil.copyfile(folder / "base.db", work)
            sql = METHODS[method][0]
            barrier = threading.Barrier(n_threads + 1, timeout=timeout_s)
            results: list[list[dict]] = [[] for _ in range(n_threads)]
            errors: list[BaseException] = []

            def worker(
                t: int, work=work, sql=sql, method=method, barrier=barrier, results=results, errors=errors
            ) -> None:
                conn = sqlite3.connect(work, timeout=timeout_s, isolation_level=None, check_same_thread=False)
                try:
                    conn.execute(f"PRAGMA synchronous = {'NORMAL' if wal else 'FULL'}")
                    barrier.wait()
                    for row_id in ids[t * per : (t + 1) * per]:
                        t0 = time.perf_counter()
                        conn.execute(sql, (row_id,) if method == "delete" else (_DELETED_AT, row_id))
                        t1 = time.perf_counter()
                        results[t].append({"method": method, "thread": t, "latency_s": t1 - t0, "end": t1})
                except BaseException as error:  # noqa: BLE001 - reported after join
                    errors.append(error)
                finally:
                    conn.close()

            threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(n_threads)]
            for thread in threads:
                thread.start()
            barrier.wait()
            start = time.perf_counter()
            for thread in threads:
                thread.join(timeout=timeout_s)
            if any(thread.is_alive() for thread in threads):
                raise TimeoutError(f"writers did not finish within {timeout_s} s")
            if errors:
                raise RuntimeError(f"a writer failed: {errors[0]!r}") from errors[0]
            for per_thread in results:
                for record in per_thread:
                    record["finished_s"] = record.pop("end") - start
                    rows.append({"durability": durability, "round": round_index, **record})
            for suffix in ("", "-wal", "-shm"):
                Path(f"{work}{suffix}").unlink(missing_ok=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return pd.DataFrame(rows)


def summarize_concurrent(ops: pd.DataFrame) -> pd.DataFrame:
    """Throughput per round, then per (durability, method): median, lowest and highest round, latencies.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``durability`` and ``method``: ``threads``, ``ops``,
        ``median_ops_per_s``, ``min_ops_per_s``, ``max_ops_per_s`` (over
        rounds), ``mean_latency_ms``, ``p95_latency_ms``.
    """
    needed = {"durability", "round", "method", "thread", "latency_s", "finished_s"}
    if not isinstance(ops, pd.DataFrame) or not needed <= set(ops.columns):
        raise ValueError("ops must be a DataFrame from run_concurrent_writers")
    keys = ["durability", "method"]
    per_round = ops.groupby([*keys, "round"], sort=False).agg(
        n=("latency_s", "size"), span_s=("finished_s", "max")
    )
    per_round["ops_per_s"] = per_round["n"] / per_round["span_s"]
    rate = per_round.groupby(level=keys, sort=False)["ops_per_s"]
    grouped = ops.groupby(keys, sort=False)
    return pd.DataFrame(
        {
            "threads": grouped["thread"].nunique(),
            "ops": grouped.size(),
            "median_ops_per_s": rate.median(),
            "min_ops_per_s": rate.min(),
            "max_ops_per_s": rate.max(),
            "mean_latency_ms": 1000 * grouped["latency_s"].mean(),
            "p95_latency_ms": 1000 * grouped["latency_s"].quantile(0.95),
        }
    )


def lock_wait_model(
    statement_us: dict[str, float], commit_us: float, arrival_rates_per_s: Sequence[float]
) -> pd.DataFrame:
    """Mean wait for a hot row's lock when each operation holds it for its statement *and* its commit.

    In InnoDB and PostgreSQL both a DELETE and an UPDATE take an exclusive lock
    on the row and hold it until commit; SQLite holds its single write lock for
    the whole transaction. The hold time is therefore ``statement + commit``
    and, treating the lock as one server with Poisson arrivals and a nearly
    constant hold, the mean wait is M/D/1 (Kingman with ``cv_service = 0``,
    exact for Poisson arrivals).

    Parameters
    ----------
    statement_us : dict
        Method name -> time the statement itself takes, in microseconds.
    commit_us : float
        Time to commit (log flush, replication acknowledgement), in microseconds.
    arrival_rates_per_s : sequence of float
        Operations per second contending for the same lock.

    Returns
    -------
    pandas.DataFrame
        One row per (method, rate): ``method``, ``arrival_rate_per_s``,
        ``hold_us``, ``utilisation``, ``wait_us`` (inf at or past saturation).
    """
    if not isinstance(statement_us, dict) or not statement_us:
        raise ValueError("statement_us must be a non-empty dict of method -> microseconds")
    commit = validate.non_negative_float("commit_us", commit_us)
    rates = [
        validate.non_negative_float(f"arrival_rates_per_s[{i}]", r) for i, r in enumerate(arrival_rates_per_s)
    ]
    if not rates:
        raise ValueError("arrival_rates_per_s must not be empty")
    rows = []
    for method, us in statement_us.items():
        hold_s = (validate.positive_float(f"statement_us[{method!r}]", us) + commit) / 1e6
        for rate in rates:
            wait_s = queueing.kingman_queue_delay_s(rate, hold_s, cv_arrival=1.0, cv_service=0.0)
            rows.append(
                {
                    "method": method,
                    "arrival_rate_per_s": rate,
                    "hold_us": hold_s * 1e6,
                    "utilisation": rate * hold_s,
                    "wait_us": wait_s * 1e6,
                }
            )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- the costs, demonstrated


def demo_unique_resignup() -> pd.DataFrame:
    """A user deletes their account and signs up again with the same e-mail, under two schemas.

    Returns
    -------
    pandas.DataFrame
        ``schema``, ``re_signup`` (``ok`` or the error text), ``live_rows`` with that e-mail.
    """
    schemas = {
        "UNIQUE(email)": "CREATE UNIQUE INDEX accounts_email ON accounts(email)",
        "UNIQUE(email) WHERE deleted_at IS NULL": (
            "CREATE UNIQUE INDEX accounts_email ON accounts(email) WHERE deleted_at IS NULL"
        ),
    }
    rows = []
    for label, index_sql in schemas.items():
        with temporary_database() as (conn, _path):
            conn.execute(
                "CREATE TABLE accounts (id INTEGER PRIMARY KEY, email TEXT NOT NULL, deleted_at TEXT)"
            )
            conn.execute(index_sql)
            conn.execute("INSERT INTO accounts (email) VALUES ('ana@example.com')")
            conn.execute("UPDATE accounts SET deleted_at = ? WHERE email = 'ana@example.com'", (_DELETED_AT,))
            try:
                conn.execute("INSERT INTO accounts (email) VALUES ('ana@example.com')")
                outcome = "ok"
            except sqlite3.IntegrityError as error:
                outcome = f"rejected: {error}"
            live = conn.execute(
                "SELECT count(*) FROM accounts WHERE email = 'ana@example.com' AND deleted_at IS NULL"
            ).fetchone()[0]
        rows.append({"schema": label, "re_signup": outcome, "live_rows": int(live)})
    return pd.DataFrame(rows)


def demo_partial_index_plans(n_rows: int = 2_000) -> pd.DataFrame:
    """The plan of a lookup with and without the partial index's predicate repeated in the query.

    Returns
    -------
    pandas.DataFrame
        ``query``, ``plan`` (EXPLAIN QUERY PLAN lines), ``uses_index``.
    """
    n_rows = validate.positive_int("n_rows", n_rows)
    queries = (
        "SELECT * FROM accounts WHERE email = :email",
        "SELECT * FROM accounts WHERE email = :email AND deleted_at IS NULL",
    )
    rows = []
    with temporary_database() as (conn, _path):
        conn.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, email TEXT NOT NULL, deleted_at TEXT)")
        conn.execute("CREATE INDEX accounts_live_email ON accounts(email) WHERE deleted_at IS NULL")
        conn.executemany(
            "INSERT INTO accounts (email) VALUES (?)", ((f"player{i}@example.com",) for i in range(n_rows))
        )
        for sql in queries:
            plan = query_plan(conn, sql, {"email": "player7@example.com"})
            rows.append({"query": sql, "plan": " | ".join(plan), "uses_index": plan_uses_index(plan)})
    return pd.DataFrame(rows)


def _fill_accounts(conn: sqlite3.Connection, n_rows: int) -> None:
    conn.execute(
        "CREATE TABLE accounts (id INTEGER PRIMARY KEY, email TEXT NOT NULL, bio TEXT NOT NULL,"
        " deleted_at TEXT)"
    )
    conn.execute("CREATE INDEX accounts_email ON accounts(email)")
    with conn:
        conn.executemany(
            "INSERT INTO accounts (email, bio) VALUES (?, ?)",
            ((f"player{i}@example.com", "x" * 100) for i in range(n_rows)),
        )


def demo_table_growth(n_rows: int = 20_000, delete_fraction: float = 0.5) -> pd.DataFrame:
    """What is left on disk after removing a fraction of the rows three ways.

    Returns
    -------
    pandas.DataFrame
        One row per state (``soft delete``, ``DELETE``, ``DELETE + VACUUM``):
        ``rows_stored``, ``live_rows``, ``file_bytes``, ``free_pages``.
    """
    n_rows = validate.positive_int("n_rows", n_rows)
    fraction = validate.float_in_range("delete_fraction", delete_fraction, 0.0, 1.0)
    cutoff = int(n_rows * fraction)
    rows = []
    for state in ("soft delete", "DELETE", "DELETE + VACUUM"):
        with temporary_database() as (conn, path):
            _fill_accounts(conn, n_rows)
            with conn:
                if state == "soft delete":
                    conn.execute("UPDATE accounts SET deleted_at = ? WHERE id <= ?", (_DELETED_AT, cutoff))
                else:
                    conn.execute("DELETE FROM accounts WHERE id <= ?", (cutoff,))
            if state == "DELETE + VACUUM":
                conn.execute("VACUUM")
            rows.append(
                {
                    "state": state,
                    "rows_stored": conn.execute("SELECT count(*) FROM accounts").fetchone()[0],
                    "live_rows": conn.execute(
                        "SELECT count(*) FROM accounts WHERE deleted_at IS NULL"
                    ).fetchone()[0],
                    "file_bytes": database_size_bytes(path),
                    "free_pages": conn.execute("PRAGMA freelist_count").fetchone()[0],
                }
            )
    return pd.DataFrame(rows)


def demo_erasure(n_rows: int = 2_000) -> pd.DataFrame:
    """Is a deleted user's e-mail still readable -- through SQL, or in the database file's bytes?

    Three ways to "delete" user 42: a soft delete; a DELETE with SQLite's
    default ``secure_delete=OFF`` (freed pages keep their old bytes); a DELETE
    with ``PRAGMA secure_delete=ON`` (freed content is overwritten with zeros).

    Returns
    -------
    pandas.DataFrame
        ``method``, ``visible_to_sql`` (a query can still read the e-mail),
        ``bytes_in_file`` (the e-mail's bytes are still in the database file).
    """
    n_rows = validate.int_in_range("n_rows", n_rows, 100, 10**7)
    target = "player42@example.com"
    rows = []
    for method in ("soft delete", "DELETE (secure_delete=OFF)", "DELETE (secure_delete=ON)"):
        with temporary_database() as (conn, path):
            conn.execute(f"PRAGMA secure_delete = {'ON' if method.endswith('ON)') else 'OFF'}")
            _fill_accounts(conn, n_rows)
            with conn:
                if method == "soft delete":
                    conn.execute("UPDATE accounts SET deleted_at = ? WHERE email = ?", (_DELETED_AT, target))
                else:
                    conn.execute("DELETE FROM accounts WHERE email = ?", (target,))
            visible = (
                conn.execute("SELECT count(*) FROM accounts WHERE email = ?", (target,)).fetchone()[0] > 0
            )
            in_file = target.encode() in Path(path).read_bytes()
        rows.append({"method": method, "visible_to_sql": bool(visible), "bytes_in_file": bool(in_file)})
    return pd.DataFrame(rows)


def demo_cascade(n_accounts: int = 100, sessions_per_account: int = 20) -> pd.DataFrame:
    """``ON DELETE CASCADE`` with ``PRAGMA foreign_keys=ON``: what happens to a deleted account's sessions.

    Returns
    -------
    pandas.DataFrame
        ``method``, ``sessions_before``, ``sessions_after`` for the account that was removed.
    """
    n_accounts = validate.positive_int("n_accounts", n_accounts)
    per = validate.positive_int("sessions_per_account", sessions_per_account)
    rows = []
    for method in ("DELETE", "soft delete"):
        with temporary_database() as (conn, _path):
            conn.execute("PRAGMA foreign_keys = ON")  # off by default in SQLite
            conn.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, deleted_at TEXT)")
            conn.execute(
                "CREATE TABLE sessions (id INTEGER PRIMARY KEY,"
                " account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE)"
            )
            conn.execute("CREATE INDEX sessions_account ON sessions(account_id)")
            with conn:
                conn.executemany(
                    "INSERT INTO accounts (id) VALUES (?)", ((i,) for i in range(1, n_accounts + 1))
                )
                conn.executemany(
                    "INSERT INTO sessions (account_id) VALUES (?)",
                    ((i,) for i in range(1, n_accounts + 1) for _ in range(per)),
                )
            count = "SELECT count(*) FROM sessions WHERE account_id = 1"
            before = conn.execute(count).fetchone()[0]
            with conn:
                if method == "DELETE":
                    conn.execute("DELETE FROM accounts WHERE id = 1")
                else:
                    conn.execute("UPDATE accounts SET deleted_at = ? WHERE id = 1", (_DELETED_AT,))
            after = conn.execute(count).fetchone()[0]
        rows.append({"method": method, "sessions_before": int(before), "sessions_after": int(after)})
    return pd.DataFrame(rows)


def decision_table() -> pd.DataFrame:
    """When to hard-delete, soft-delete, or archive: the chapter's decision table."""
    rows = [
        (
            "Personal data a user asked to erase (GDPR Art. 17)",
            "hard DELETE (+ secure_delete/VACUUM, backups)",
            "a soft delete keeps the data readable",
        ),
        ("Undo / restore within days", "soft delete with a purge job", "purge turns it into a DELETE later"),
        (
            "Audit trail or legal hold",
            "archive table (INSERT … SELECT, then DELETE)",
            "keeps the live table and its indexes small",
        ),
        (
            "Many secondary indexes, and bulk deletes or cheap commits (WAL, group commit)",
            "soft delete, indexes without deleted_at",
            "the update touches no index; measured faster, also under contention",
        ),
        (
            "Queries must skip deleted rows cheaply",
            "partial indexes WHERE deleted_at IS NULL",
            "every soft delete then updates every partial index",
        ),
        (
            "Unique business keys (e-mail, username)",
            "partial UNIQUE … WHERE deleted_at IS NULL",
            "a plain UNIQUE blocks re-signup",
        ),
        (
            "Child rows must disappear with the parent",
            "hard DELETE with ON DELETE CASCADE",
            "a soft delete fires no cascade",
        ),
    ]
    return pd.DataFrame(rows, columns=["situation", "choose", "because"])


# --------------------------------------------------------------------------- plots


def plot_benchmark(runs: pd.DataFrame, fit: pd.Series | None = None, ax: Axes | None = None) -> Axes:
    """Median microseconds per operation against the number of secondary indexes, per method."""
    if not isinstance(runs, pd.DataFrame) or not {"indexes", "method", "us_per_op"} <= set(runs.columns):
        raise ValueError("runs must be a DataFrame from run_benchmark")
    ax = axes_or_new(ax)
    med = runs.groupby(["method", "indexes"])["us_per_op"].median()
    styles = {
        "delete": ("tab:red", "o", "DELETE"),
        "soft": ("tab:blue", "s", "soft delete (indexes without deleted_at)"),
        "soft_partial": ("tab:purple", "^", "soft delete, partial indexes WHERE deleted_at IS NULL"),
    }
    ks = np.array(sorted(runs["indexes"].unique()), dtype=float)
    for method, (color, marker, label) in styles.items():
        ax.plot(
            ks,
            med[method].reindex(ks.astype(int)).to_numpy(),
            marker=marker,
            ls="none",
            color=color,
            label=label,
        )
        if fit is not None:
            if method == "soft":
                line = np.full_like(ks, fit["soft_mean_us"])
            else:
                line = fit[f"a_{method}_us"] + fit[f"b_{method}_us"] * ks
            ax.plot(ks, line, color=color, lw=1)
    ax.set_xlabel("secondary indexes on the table")
    ax.set_ylabel("time per row (µs)")
    ax.set_ylim(bottom=0)
    ax.legend()
    return ax


def plot_lock_wait(model: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Mean lock wait against contending operations per second, one line per method."""
    if not isinstance(model, pd.DataFrame) or not {"method", "arrival_rate_per_s", "wait_us"} <= set(
        model.columns
    ):
        raise ValueError("model must be a DataFrame from lock_wait_model")
    ax = axes_or_new(ax)
    styles = [{"lw": 3.0, "alpha": 0.5}, {"lw": 1.2, "ls": "--"}, {"lw": 1.0, "ls": ":"}]
    for i, (method, part) in enumerate(model.groupby("method", sort=False)):
        finite = part[np.isfinite(part["wait_us"])]
        ax.plot(finite["arrival_rate_per_s"], finite["wait_us"] / 1000, label=method, **styles[i % 3])
    ax.set_yscale("log")
    ax.set_xlabel("operations per second on the same row or table lock")
    ax.set_ylabel("mean wait for the lock (ms)")
    ax.legend()
    return ax
