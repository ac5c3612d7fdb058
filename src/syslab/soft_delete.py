"""DELETE vs soft delete on SQLite, PostgreSQL and MariaDB, and the costs a soft delete moves elsewhere.

What each engine does at delete time decides the verdict:

- SQLite removes the table cell and one entry from every secondary index in the statement; a
  soft delete (``UPDATE ... SET deleted_at``) rewrites the row and touches no index that does
  not involve ``deleted_at``. Its work per row is ``t(method, k) = a_method + b * entries removed``
  (:func:`run_benchmark`, :func:`fit_index_cost`).
- InnoDB (MariaDB) delete-marks the clustered record and every secondary record and purges them
  later; the soft delete updates the clustered record in place (:func:`measure_mariadb_deletes`).
- PostgreSQL's DELETE only sets ``xmax`` on the heap tuple: no index is touched until VACUUM. Its
  soft delete writes a new tuple version and, unless it is a HOT update (room on the page, no
  indexed or predicate column changed), a new entry in every index whose predicate the new
  version satisfies (:func:`measure_postgres_deletes`).

:func:`run_engine_writers` and :func:`run_concurrent_writers` measure concurrent writers on a
real server and on SQLite; :func:`measure_postgres_read_side` and :func:`run_engine_resignup`
measure what a soft delete costs readers and unique keys; the ``demo_*`` functions show the
remaining costs on small SQLite databases (growth, erasure, cascades, partial-index plans).
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

from syslab import validate
from syslab.environment import filesystem_type  # re-exported: shared by the SQLite chapters
from syslab.experiment import Run
from syslab.plot import axes_or_new
from syslab.sqlite_tools import database_size_bytes, plan_uses_index, query_plan, temporary_database

__all__ = [
    "MARIADB_METHODS",
    "MAX_DEMO_ROWS",
    "MAX_ENGINE_INDEXES",
    "MAX_ENGINE_ROWS",
    "MAX_TIMEOUT_S",
    "MAX_WRITERS",
    "METHODS",
    "PG_METHODS",
    "BenchmarkConfig",
    "add_indexes",
    "build_accounts_table",
    "decision_table",
    "demo_cascade",
    "demo_erasure",
    "demo_partial_index_plans",
    "demo_table_growth",
    "demo_unique_resignup",
    "engine_settings_text",
    "engines_record",
    "filesystem_type",
    "fit_index_cost",
    "measure_mariadb_deletes",
    "measure_postgres_deletes",
    "measure_postgres_read_side",
    "plot_benchmark",
    "plot_engine_ratio",
    "run_benchmark",
    "run_concurrent_writers",
    "run_engine_resignup",
    "run_engine_writers",
    "summarize_benchmark",
    "summarize_concurrent",
    "summarize_engine_deletes",
    "summarize_verdicts",
    "summarize_writers",
    "summarize_postgres_internals",
    "internals_record",
    "read_side_record",
    "verdict_record",
    "VERDICT_COLUMNS",
    "PG_INTERNALS_COLUMNS",
    "WRITER_COLUMNS",
    "READ_SIDE_COLUMNS",
    "SETTINGS_SHOWN",
]

#: Most rows a SQLite demonstration builds.
MAX_DEMO_ROWS = 200_000

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
        validate.int_in_range("n_rows", self.n_rows, 1, MAX_DEMO_ROWS)
        validate.int_in_range("n_ops", self.n_ops, 1, MAX_DEMO_ROWS)
        if self.n_ops > self.n_rows:
            raise ValueError(f"n_ops must be <= n_rows ({self.n_rows}), got {self.n_ops}")
        if not isinstance(self.index_counts, Sequence) or isinstance(self.index_counts, (str, bytes)):
            raise TypeError(f"index_counts must be a sequence of integers 0..32, got {self.index_counts!r}")
        if len(self.index_counts) == 0:
            raise ValueError("index_counts must be a non-empty sequence of integers >= 0")
        for i, k in enumerate(self.index_counts):
            validate.int_in_range(f"index_counts[{i}]", k, 0, 32)
        validate.int_in_range("repeats", self.repeats, 1, 20)


def build_accounts_table(conn: sqlite3.Connection, values: np.ndarray) -> None:
    """Create and fill ``accounts``: one integer column per column of ``values``, no secondary index.

    Parameters
    ----------
    conn : sqlite3.Connection
        The database to create it in.
    values : numpy.ndarray
        Rows x columns of integers; column ``i`` becomes ``c{i}``.

    Returns
    -------
    None
        The table has ``id`` (1..n), ``email``, ``c0 .. c{m-1}`` and ``deleted_at`` (all NULL).
    """
    _check_sqlite_conn(conn)
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


def _check_sqlite_conn(conn: object) -> None:
    if not isinstance(conn, sqlite3.Connection):
        raise TypeError(f"conn must be a sqlite3.Connection, got {type(conn).__name__}")
    try:
        conn.execute("SELECT 1")
    except sqlite3.ProgrammingError as error:
        raise ValueError(f"conn must be an open connection: {error}") from error


def add_indexes(conn: sqlite3.Connection, k: int, kind: str) -> None:
    """``k`` secondary indexes on ``c0 .. c{k-1}``: plain (``full``) or ``partial`` (live rows only).

    Parameters
    ----------
    conn : sqlite3.Connection
        A database with an ``accounts`` table from :func:`build_accounts_table`.
    k : int
        Number of indexes, 0..32.
    kind : str
        ``full`` or ``partial`` (``WHERE deleted_at IS NULL``).

    Returns
    -------
    None
    """
    _check_sqlite_conn(conn)
    k = validate.int_in_range("k", k, 0, 32)
    kind = validate.choice("kind", kind, ("full", "partial"))
    found = conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'accounts'"
    ).fetchone()[0]
    if not found:
        raise ValueError("conn must hold an accounts table (make it with build_accounts_table)")
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


def run_benchmark(config: BenchmarkConfig | None = None, seed: int | np.random.Generator | None = 0) -> Run:
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

    Parameters
    ----------
    config : BenchmarkConfig, optional
        Sizes (defaults: ``BenchmarkConfig()``).
    seed : int, numpy.random.Generator or None
        Chooses the column values and the rows removed.

    Returns
    -------
    syslab.experiment.Run
        ``frame``: one row per run: ``engine`` (``SQLite <version>``), ``indexes``, ``method``
        (``delete``, ``soft``, ``soft_partial``), ``repeat``, ``ops``, ``seconds``, ``us_per_op``
        and its synonym ``us_per_row`` (µs), ``rows_per_s``.
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
                            "engine": f"SQLite {sqlite3.sqlite_version}",
                            "indexes": int(k),
                            "method": method,
                            "repeat": repeat,
                            "ops": config.n_ops,
                            "seconds": seconds,
                            "us_per_op": 1e6 * seconds / config.n_ops,
                            "us_per_row": 1e6 * seconds / config.n_ops,
                            "rows_per_s": config.n_ops / seconds,
                        }
                    )
    finally:
        for base in bases.values():
            base.close()
        table.close()
    return Run.create(
        pd.DataFrame(rows), {"n_rows": config.n_rows, "n_ops": config.n_ops}, sqlite=sqlite3.sqlite_version
    )


def summarize_benchmark(runs: pd.DataFrame) -> pd.DataFrame:
    """Median rows/s per (indexes, method) and the DELETE-time / soft-delete-time ratios.

    Parameters
    ----------
    runs : pandas.DataFrame
        ``run_benchmark(...).frame``.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``indexes``: ``delete_rows_per_s``, ``soft_rows_per_s``,
        ``soft_partial_rows_per_s``, ``soft_speedup`` and ``soft_partial_speedup`` (DELETE time /
        soft-delete time: > 1 means the soft delete was faster).
    """
    needed = {"indexes", "method", "us_per_op", "rows_per_s"}
    if not isinstance(runs, pd.DataFrame) or not needed <= set(runs.columns):
        raise ValueError(f"runs must be a DataFrame from run_benchmark with columns {sorted(needed)}")
    if not set(METHODS) <= set(runs["method"]):
        raise ValueError(f"runs must hold rows for every method {sorted(METHODS)}")
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


def fit_index_cost(runs: pd.DataFrame) -> pd.Series:
    """Fit ``t = a_method + b_method * entries_removed`` and find where DELETE and soft delete cross.

    DELETE and the partial-index soft delete remove ``k`` index entries, a plain
    soft delete none, so the plain soft delete is a flat line and DELETE a
    rising one. The crossover ``k* = (a_soft - a_delete) / b_delete`` is the
    number of indexes above which soft delete wins; the number needed for a
    given speed-up ``s`` is ``(s * a_soft - a_delete) / b_delete``.

    Parameters
    ----------
    runs : pandas.DataFrame
        ``run_benchmark(...).frame`` covering at least two index counts.

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


def run_concurrent_writers(
    n_threads: int = 4,
    ops_per_thread: int = 25,
    indexes: int = 4,
    *,
    n_rows: int = 10_000,
    rounds: int = 3,
    wal: bool = False,
    timeout_s: float = 30.0,
    seed: int | np.random.Generator | None = 0,
) -> Run:
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

    Parameters
    ----------
    n_threads : int
        Writer threads, 1..32.
    ops_per_thread : int
        Rows each thread removes per round.
    indexes : int
        Secondary indexes, 0..32.
    n_rows : int
        Rows in the table, at least ``n_threads * ops_per_thread``.
    rounds : int
        Alternating rounds per method.
    wal : bool
        WAL with ``synchronous=NORMAL`` instead of the rollback journal with ``FULL``.
    timeout_s : float
        Limit for each round's threads and lock waits (seconds).
    seed : int, numpy.random.Generator or None
        Chooses the column values and rows.

    Returns
    -------
    syslab.experiment.Run
        ``frame``: one row per operation: ``durability``, ``round``, ``method``, ``thread``, ``latency_s``
        (from calling ``execute`` to its return, lock wait included),
        ``finished_s`` (since the round's common start).
    """
    import threading

    n_threads = validate.int_in_range("n_threads", n_threads, 1, 32)
    per = validate.int_in_range("ops_per_thread", ops_per_thread, 1, 10_000)
    indexes = validate.int_in_range("indexes", indexes, 0, 32)
    n_rows = validate.int_in_range("n_rows", n_rows, 1, MAX_DEMO_ROWS)
    if n_threads * per > n_rows:
        raise ValueError(f"n_threads * ops_per_thread must be <= n_rows ({n_rows})")
    rounds = validate.int_in_range("rounds", rounds, 1, 10)
    if not isinstance(wal, bool):
        raise TypeError(f"wal must be a bool, got {type(wal).__name__}")
    durability = "WAL, synchronous=NORMAL" if wal else "rollback journal, synchronous=FULL"
    timeout_s = validate.float_in_range("timeout_s", timeout_s, 0.1, MAX_TIMEOUT_S)
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
    return Run.create(pd.DataFrame(rows), {"durability": durability}, sqlite=sqlite3.sqlite_version)


def summarize_concurrent(ops: pd.DataFrame) -> pd.DataFrame:
    """Throughput per round, then per (durability, method): median, lowest and highest round, latencies.

    Parameters
    ----------
    ops : pandas.DataFrame
        ``run_concurrent_writers(...).frame``.

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

    Parameters
    ----------
    n_rows : int
        Rows in the table, 1..:data:`MAX_DEMO_ROWS`.

    Returns
    -------
    pandas.DataFrame
        ``query``, ``plan`` (EXPLAIN QUERY PLAN lines), ``uses_index``.
    """
    n_rows = validate.int_in_range("n_rows", n_rows, 1, MAX_DEMO_ROWS)
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

    Parameters
    ----------
    n_rows : int
        Rows in the table, 1..:data:`MAX_DEMO_ROWS`.
    delete_fraction : float
        Share of rows removed, 0-1.

    Returns
    -------
    pandas.DataFrame
        One row per state (``soft delete``, ``DELETE``, ``DELETE + VACUUM``):
        ``rows_stored``, ``live_rows``, ``file_bytes``, ``free_pages``.
    """
    n_rows = validate.int_in_range("n_rows", n_rows, 1, MAX_DEMO_ROWS)
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

    Parameters
    ----------
    n_rows : int
        Rows in the table, 100..:data:`MAX_DEMO_ROWS`.

    Returns
    -------
    pandas.DataFrame
        ``method``, ``visible_to_sql`` (a query can still read the e-mail),
        ``bytes_in_file`` (the e-mail's bytes are still in the database file).
    """
    n_rows = validate.int_in_range("n_rows", n_rows, 100, MAX_DEMO_ROWS)
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

    Parameters
    ----------
    n_accounts : int
        Accounts, 1..10,000.
    sessions_per_account : int
        Sessions per account, 1..1,000.

    Returns
    -------
    pandas.DataFrame
        ``method``, ``sessions_before``, ``sessions_after`` for the account that was removed.
    """
    n_accounts = validate.int_in_range("n_accounts", n_accounts, 1, 10_000)
    per = validate.int_in_range("sessions_per_account", sessions_per_account, 1, 1_000)
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
    """When to hard-delete, soft-delete, or archive: the chapter's decision table.

    Returns
    -------
    pandas.DataFrame
        ``situation``, ``choose``, ``because``: one row per situation.
    """
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
            "Many secondary indexes, bulk deletes, SQLite or MariaDB/InnoDB",
            "soft delete, indexes without deleted_at",
            "the update touches no secondary index; DELETE touches all (measured above)",
        ),
        (
            "Many secondary indexes, PostgreSQL",
            "DELETE (and let VACUUM clean up)",
            "DELETE only sets xmax; a non-HOT soft delete inserts into every plain index",
        ),
        (
            "Queries must skip deleted rows cheaply",
            "partial indexes WHERE deleted_at IS NULL (PostgreSQL, SQLite)",
            "no new entry on a soft delete, but no HOT either; MariaDB: a generated column",
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
    """Median microseconds per operation against the number of secondary indexes, per method (SQLite).

    Parameters
    ----------
    runs : pandas.DataFrame
        ``run_benchmark(...).frame``.
    fit : pandas.Series, optional
        :func:`fit_index_cost` of the same runs, drawn as lines.
    ax : matplotlib.axes.Axes, optional
        Where to draw (a new figure if None).

    Returns
    -------
    matplotlib.axes.Axes
    """
    if not isinstance(runs, pd.DataFrame) or not {"indexes", "method", "us_per_op"} <= set(runs.columns):
        raise ValueError("runs must be a DataFrame from run_benchmark")
    if not set(METHODS) <= set(runs["method"]):
        raise ValueError(f"runs must hold rows for every method {sorted(METHODS)}")
    needed_fit = {"soft_mean_us", *(f"{p}_{m}_us" for p in ("a", "b") for m in ("delete", "soft_partial"))}
    if fit is not None and (not isinstance(fit, pd.Series) or not needed_fit <= set(fit.index)):
        raise ValueError("fit must be the Series from fit_index_cost")
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


# --------------------------------------------------------------------------- real engines

#: Most secondary indexes the engine experiments build (the table always has this many integer columns).
MAX_ENGINE_INDEXES = 8
#: Most rows an engine table gets (a 2-core machine loads and indexes this many in well under a second).
MAX_ENGINE_ROWS = 200_000
#: Most concurrent writer connections.
MAX_WRITERS = 16
#: Longest an engine experiment may run, set-up included (seconds).
MAX_TIMEOUT_S = 300.0
#: PostgreSQL variants: method -> (SQL verb, index kind, fillfactor in percent).
PG_METHODS: dict[str, tuple[str, str, int]] = {
    "delete": ("delete", "full", 100),
    "soft": ("soft", "full", 100),
    "soft_ff90": ("soft", "full", 90),
    "soft_partial": ("soft", "partial", 100),
}
#: MariaDB (InnoDB) variants: method -> SQL verb.
MARIADB_METHODS: dict[str, str] = {"delete": "delete", "soft": "soft"}


def _check_engine(engine: object, names: tuple[str, ...]) -> None:
    name = getattr(engine, "name", None)
    if name not in names or not callable(getattr(engine, "database", None)):
        raise TypeError(f"engine must be a syslab.engines.Engine for {' or '.join(names)}, got {engine!r}")


def _engine_ids(n_rows: int, n_ops: int, rng: np.random.Generator) -> list[int]:
    return sorted((rng.choice(n_rows, size=n_ops, replace=False) + 1).tolist())


def _pg_create(cur, table: str, n_rows: int, k: int, kind: str, fillfactor_pct: int) -> list[str]:
    """Create and load ``table`` on PostgreSQL with ``k`` secondary indexes; return the index names."""
    cols = ", ".join(f"c{i} bigint" for i in range(MAX_ENGINE_INDEXES))
    cur.execute(
        f"CREATE TABLE {table} (id bigint PRIMARY KEY, email text NOT NULL, {cols}, deleted_at timestamptz)"
        f" WITH (fillfactor = {int(fillfactor_pct)}, autovacuum_enabled = false)"
    )
    values = ", ".join(f"hashint8(g * {MAX_ENGINE_INDEXES} + {i})::bigint" for i in range(MAX_ENGINE_INDEXES))
    cur.execute(
        f"INSERT INTO {table} SELECT g, 'player' || g || '@example.com', {values}, NULL"
        " FROM generate_series(1, %s) g",
        (n_rows,),
    )
    where = " WHERE deleted_at IS NULL" if kind == "partial" else ""
    names = [f"{table}_c{i}" for i in range(k)]
    for i, name in enumerate(names):
        cur.execute(f"CREATE INDEX {name} ON {table} (c{i}){where}")
    return names


def _pg_leaf_items(cur, index: str) -> int:
    """Index tuples on the B-tree's leaf pages (pageinspect), dead ones included until VACUUM."""
    cur.execute(
        "SELECT coalesce(sum(s.live_items), 0) FROM generate_series(1, pg_relation_size(%s::regclass) / 8192 - 1) b,"
        " LATERAL bt_page_stats(%s, b::int) s WHERE s.type = 'l'",
        (index, index),
    )
    return int(cur.fetchone()[0])


def _pg_wal_lsn(cur) -> str:
    cur.execute("SELECT pg_current_wal_insert_lsn()")
    return str(cur.fetchone()[0])


def _deadline_check(deadline: float, what: str) -> None:
    if time.perf_counter() > deadline:
        raise TimeoutError(f"{what} did not finish within its timeout_s")


def measure_postgres_deletes(
    engine,
    *,
    n_rows: int = 20_000,
    n_ops: int = 2_000,
    index_counts: Sequence[int] = (0, 2, 4, 8),
    repeats: int = 1,
    timeout_s: float = 60.0,
    seed: int | np.random.Generator | None = 0,
) -> Run:
    """DELETE vs soft delete on PostgreSQL: time, WAL, HOT updates, index entries and VACUUM per row.

    For each index count ``k`` and each variant of :data:`PG_METHODS` a fresh table of ``n_rows``
    rows gets ``k`` secondary indexes on random ``bigint`` columns (plain, or partial
    ``WHERE deleted_at IS NULL``) and then one statement deletes or soft-deletes the same
    ``n_ops`` random rows (``WHERE id = ANY(...)``) in one transaction. Before the commit the
    transaction's own statistics give the HOT updates (the counter behind
    ``pg_stat_user_tables.n_tup_hot_upd``); ``pg_current_wal_insert_lsn`` before and after gives the
    WAL bytes; ``pageinspect`` counts the leaf items of every secondary index before and after;
    ``pgstattuple`` counts the dead tuples left; then ``VACUUM`` is timed.

    Parameters
    ----------
    engine : syslab.engines.Engine
        A PostgreSQL engine (``engines.find("postgres")``).
    n_rows : int
        Rows per table, at most :data:`MAX_ENGINE_ROWS`.
    n_ops : int
        Rows removed per run, at most ``n_rows``.
    index_counts : sequence of int
        Secondary-index counts, each 0..:data:`MAX_ENGINE_INDEXES`.
    repeats : int
        Runs per (count, variant), 1..20.
    timeout_s : float
        Limit for the whole experiment, set-up included (seconds), at most :data:`MAX_TIMEOUT_S`.
    seed : int, numpy.random.Generator or None
        Chooses the rows removed.

    Returns
    -------
    syslab.experiment.Run
        ``frame``: one row per run with ``engine``, ``indexes``, ``method`` (a key of
        :data:`PG_METHODS`), ``repeat``, ``us_per_row`` (the statement), ``wal_bytes_per_row``,
        ``hot_share`` (0-1, HOT updates / rows), ``entries_added_per_index_row`` (new leaf items per
        secondary index per row), ``dead_tuples``, ``vacuum_ms``. ``environment`` has the engine.
    """
    from syslab.experiment import Run

    _check_engine(engine, ("postgres",))
    n_rows, n_ops, counts, repeats, timeout_s = _engine_args(n_rows, n_ops, index_counts, repeats, timeout_s)
    rng = validate.rng_from_seed(seed)
    ids = _engine_ids(n_rows, n_ops, rng)
    deadline = time.perf_counter() + timeout_s
    rows = []
    with engine.database() as db, db.connect(autocommit=True) as conn:
        cur = conn.cursor()
        cur.execute(f"SET statement_timeout = {int(timeout_s * 1000)}")
        cur.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
        cur.execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")
        # Warm-up, not timed: the first statements in a fresh database load catalogs and caches.
        _pg_create(cur, "warm_up", min(n_rows, 2_000), 1, "full", 100)
        cur.execute("UPDATE warm_up SET deleted_at = now() WHERE id = ANY(%s)", (ids[:100],))
        cur.execute("DELETE FROM warm_up WHERE id = ANY(%s)", (ids[:100],))
        cur.execute("DROP TABLE warm_up")
        for repeat in range(repeats):
            for k in counts:
                for method, (verb, kind, fillfactor) in PG_METHODS.items():
                    _deadline_check(deadline, "measure_postgres_deletes")
                    table = f"acc_{method}_{k}"
                    names = _pg_create(cur, table, n_rows, k, kind, fillfactor)
                    before = [_pg_leaf_items(cur, name) for name in names]
                    lsn0 = _pg_wal_lsn(cur)
                    with conn.transaction():
                        started = time.perf_counter()
                        if verb == "delete":
                            cur.execute(f"DELETE FROM {table} WHERE id = ANY(%s)", (ids,))
                        else:
                            cur.execute(f"UPDATE {table} SET deleted_at = now() WHERE id = ANY(%s)", (ids,))
                        seconds = time.perf_counter() - started
                        cur.execute(
                            "SELECT n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relid = %s::regclass",
                            (table,),
                        )
                        hot = int(cur.fetchone()[0])
                    cur.execute("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s)", (lsn0,))
                    wal_bytes = float(cur.fetchone()[0])
                    after = [_pg_leaf_items(cur, name) for name in names]
                    cur.execute(f"SELECT dead_tuple_count FROM pgstattuple('{table}')")
                    dead = int(cur.fetchone()[0])
                    started = time.perf_counter()
                    cur.execute(f"VACUUM {table}")
                    vacuum_s = time.perf_counter() - started
                    cur.execute(f"DROP TABLE {table}")
                    added = (sum(after) - sum(before)) / (n_ops * k) if k else float("nan")
                    rows.append(
                        {
                            "engine": engine.label,
                            "indexes": int(k),
                            "method": method,
                            "repeat": repeat,
                            "us_per_row": 1e6 * seconds / n_ops,
                            "wal_bytes_per_row": wal_bytes / n_ops,
                            "hot_share": hot / n_ops,
                            "entries_added_per_index_row": added,
                            "dead_tuples": dead,
                            "vacuum_ms": 1000 * vacuum_s,
                        }
                    )
    frame = pd.DataFrame(rows)
    return Run.create(frame, {"n_rows": n_rows, "n_ops": n_ops}, engine=engine)


def _engine_args(n_rows, n_ops, index_counts, repeats, timeout_s):
    n_rows = validate.int_in_range("n_rows", n_rows, 10, MAX_ENGINE_ROWS)
    n_ops = validate.int_in_range("n_ops", n_ops, 1, n_rows)
    if isinstance(index_counts, (str, bytes)) or not isinstance(index_counts, Sequence) or not index_counts:
        raise ValueError(f"index_counts must be a non-empty sequence of integers 0..{MAX_ENGINE_INDEXES}")
    counts = [
        validate.int_in_range(f"index_counts[{i}]", k, 0, MAX_ENGINE_INDEXES)
        for i, k in enumerate(index_counts)
    ]
    repeats = validate.int_in_range("repeats", repeats, 1, 20)
    timeout_s = validate.float_in_range("timeout_s", timeout_s, 0.1, MAX_TIMEOUT_S)
    return n_rows, n_ops, counts, repeats, timeout_s


def _mariadb_create(cur, table: str, n_rows: int, k: int) -> None:
    cols = ", ".join(f"c{i} BIGINT" for i in range(MAX_ENGINE_INDEXES))
    keys = "".join(f", KEY {table}_c{i} (c{i})" for i in range(k))
    cur.execute(
        f"CREATE TABLE {table} (id BIGINT PRIMARY KEY, email VARCHAR(64) NOT NULL, {cols},"
        f" deleted_at DATETIME NULL{keys}) ENGINE=InnoDB"
    )
    values = ", ".join(f"crc32(seq * {MAX_ENGINE_INDEXES} + {i})" for i in range(MAX_ENGINE_INDEXES))
    cur.execute(
        f"INSERT INTO {table} SELECT seq, concat('player', seq, '@example.com'), {values}, NULL"
        f" FROM seq_1_to_{int(n_rows)}"
    )


def measure_mariadb_deletes(
    engine,
    *,
    n_rows: int = 20_000,
    n_ops: int = 2_000,
    index_counts: Sequence[int] = (0, 2, 4, 8),
    repeats: int = 1,
    timeout_s: float = 60.0,
    seed: int | np.random.Generator | None = 0,
) -> Run:
    """DELETE vs soft delete on MariaDB (InnoDB): statement time per row against secondary indexes.

    Same design as :func:`measure_postgres_deletes`: a fresh InnoDB table per (count, method),
    loaded from the ``seq_1_to_N`` sequence table, ``k`` secondary indexes on random ``BIGINT``
    columns, one ``DELETE … WHERE id IN (…)`` or ``UPDATE … SET deleted_at = NOW() WHERE id IN (…)``
    in one transaction, then the commit. InnoDB delete-marks the clustered and every secondary record
    and leaves their removal to purge; an UPDATE of the unindexed ``deleted_at`` changes the
    clustered record in place and writes undo.

    Parameters
    ----------
    engine : syslab.engines.Engine
        A MariaDB engine (``engines.find("mariadb")``).
    n_rows, n_ops, index_counts, repeats, timeout_s, seed :
        As in :func:`measure_postgres_deletes`.

    Returns
    -------
    syslab.experiment.Run
        ``frame``: one row per run with ``engine``, ``indexes``, ``method`` (``delete``, ``soft``),
        ``repeat``, ``us_per_row`` (the statement), ``redo_bytes_per_row`` (InnoDB redo log written
        by the statement: the ``Innodb_lsn_current`` status before and after it, divided by the rows),
        ``commit_ms``. ``summary`` has
        ``innodb_change_buffering`` (whether InnoDB may buffer secondary-index changes).
    """
    from syslab.experiment import Run

    _check_engine(engine, ("mariadb",))
    n_rows, n_ops, counts, repeats, timeout_s = _engine_args(n_rows, n_ops, index_counts, repeats, timeout_s)
    rng = validate.rng_from_seed(seed)
    id_list = ", ".join(str(i) for i in _engine_ids(n_rows, n_ops, rng))
    deadline = time.perf_counter() + timeout_s
    rows = []
    with engine.database() as db:
        conn = db.connect(read_timeout=int(timeout_s) + 1, write_timeout=int(timeout_s) + 1)
        try:
            cur = conn.cursor()
            cur.execute(f"SET SESSION max_statement_time = {float(timeout_s)}")
            cur.execute("SELECT @@innodb_change_buffering")
            change_buffering = str(cur.fetchone()[0])
            # Warm-up, not timed: the first statements in a fresh database open files and caches.
            _mariadb_create(cur, "warm_up", min(n_rows, 2_000), 1)
            cur.execute("UPDATE warm_up SET deleted_at = NOW() WHERE id <= 100")
            cur.execute("DELETE FROM warm_up WHERE id <= 100")
            cur.execute("DROP TABLE warm_up")
            conn.commit()
            for repeat in range(repeats):
                for k in counts:
                    for method, verb in MARIADB_METHODS.items():
                        _deadline_check(deadline, "measure_mariadb_deletes")
                        table = f"acc_{method}_{k}"
                        _mariadb_create(cur, table, n_rows, k)
                        conn.commit()
                        lsn_before = _mariadb_lsn(cur)
                        started = time.perf_counter()
                        if verb == "delete":
                            cur.execute(f"DELETE FROM {table} WHERE id IN ({id_list})")
                        else:
                            cur.execute(f"UPDATE {table} SET deleted_at = NOW() WHERE id IN ({id_list})")
                        seconds = time.perf_counter() - started
                        # Before the commit: purge cannot touch these rows until it, so the
                        # difference is (almost only) this statement's redo.
                        redo_bytes = _mariadb_lsn(cur) - lsn_before
                        started = time.perf_counter()
                        conn.commit()
                        commit_s = time.perf_counter() - started
                        cur.execute(f"DROP TABLE {table}")
                        rows.append(
                            {
                                "engine": engine.label,
                                "indexes": int(k),
                                "method": method,
                                "repeat": repeat,
                                "us_per_row": 1e6 * seconds / n_ops,
                                "redo_bytes_per_row": redo_bytes / n_ops,
                                "commit_ms": 1000 * commit_s,
                            }
                        )
        finally:
            conn.close()
    summary = {"n_rows": n_rows, "n_ops": n_ops, "innodb_change_buffering": change_buffering}
    return Run.create(pd.DataFrame(rows), summary, engine=engine)


def _mariadb_lsn(cur) -> int:
    """InnoDB's current log sequence number (bytes of redo written since the server was created)."""
    cur.execute("SHOW GLOBAL STATUS LIKE 'Innodb_lsn_current'")
    return int(cur.fetchone()[1])


def summarize_engine_deletes(frame: pd.DataFrame) -> pd.DataFrame:
    """Median statement time per row, per (engine, indexes, method), and the per-engine verdict.

    Parameters
    ----------
    frame : pandas.DataFrame
        Rows from :func:`measure_postgres_deletes`, :func:`measure_mariadb_deletes` or
        :func:`run_benchmark` (columns ``engine``, ``indexes``, ``method``, ``us_per_row``).

    Returns
    -------
    pandas.DataFrame
        One row per (engine, indexes): ``engine``, ``indexes``, ``delete_us``, ``soft_us`` (medians,
        µs per row) and ``soft_over_delete`` (> 1: the soft delete is slower).
    """
    validate.frame_columns("frame", frame, ("engine", "indexes", "method", "us_per_row"))
    med = frame.groupby(["engine", "indexes", "method"], sort=False)["us_per_row"].median().unstack("method")
    out = pd.DataFrame({"delete_us": med["delete"], "soft_us": med["soft"]})
    out["soft_over_delete"] = out["soft_us"] / out["delete_us"]
    return out.reset_index()


def run_engine_writers(
    engine,
    *,
    n_threads: int = 4,
    ops_per_thread: int = 40,
    n_indexes: int = 8,
    n_rows: int = 5_000,
    rounds: int = 2,
    timeout_s: float = 60.0,
    seed: int | np.random.Generator | None = 0,
) -> Run:
    """Concurrent writers on a real server: each thread deletes or soft-deletes its own rows, one commit each.

    One table per method with ``n_indexes`` secondary indexes; ``n_threads`` connections (one per
    thread, autocommit) start together at a barrier and each removes ``ops_per_thread`` rows of its
    own, one statement and one commit per row; the server does the waiting (log flushes, group
    commit, latches). Rounds alternate the methods and use fresh rows.

    Parameters
    ----------
    engine : syslab.engines.Engine
        PostgreSQL or MariaDB.
    n_threads : int
        Writer connections, 1..:data:`MAX_WRITERS`.
    ops_per_thread : int
        Rows each thread removes per round, 1..1000.
    n_indexes : int
        Secondary indexes, 0..:data:`MAX_ENGINE_INDEXES`.
    n_rows : int
        Rows per table; must be at least ``n_threads * ops_per_thread * rounds``.
    rounds : int
        Alternating rounds per method, 1..10.
    timeout_s : float
        Limit for the whole experiment (seconds), at most :data:`MAX_TIMEOUT_S`.
    seed : int, numpy.random.Generator or None
        Chooses the rows.

    Returns
    -------
    syslab.experiment.Run
        ``frame``: one row per (round, method): ``engine``, ``round``, ``method``, ``threads``, ``ops``,
        ``ops_per_s``, ``mean_latency_ms``, ``p95_latency_ms``.
    """
    import threading

    from syslab.experiment import Run

    _check_engine(engine, ("postgres", "mariadb"))
    n_threads = validate.int_in_range("n_threads", n_threads, 1, MAX_WRITERS)
    per = validate.int_in_range("ops_per_thread", ops_per_thread, 1, 1000)
    k = validate.int_in_range("n_indexes", n_indexes, 0, MAX_ENGINE_INDEXES)
    n_rows = validate.int_in_range("n_rows", n_rows, 10, MAX_ENGINE_ROWS)
    rounds = validate.int_in_range("rounds", rounds, 1, 10)
    if n_threads * per * rounds > n_rows:
        raise ValueError(f"n_threads * ops_per_thread * rounds must be <= n_rows ({n_rows})")
    timeout_s = validate.float_in_range("timeout_s", timeout_s, 0.1, MAX_TIMEOUT_S)
    rng = validate.rng_from_seed(seed)
    ids = (rng.permutation(n_rows)[: n_threads * per * rounds] + 1).tolist()
    postgres = engine.name == "postgres"
    ph = "%s"
    rows = []
    with engine.database() as db:
        setup = db.connect(autocommit=True) if postgres else db.connect(autocommit=True)
        try:
            cur = setup.cursor()
            for method in ("delete", "soft"):
                table = f"w_{method}"
                if postgres:
                    _pg_create(cur, table, n_rows, k, "full", 100)
                else:
                    _mariadb_create(cur, table, n_rows, k)
            for round_index in range(rounds):
                for method in ("delete", "soft"):
                    table = f"w_{method}"
                    sql = (
                        f"DELETE FROM {table} WHERE id = {ph}"
                        if method == "delete"
                        else f"UPDATE {table} SET deleted_at = now() WHERE id = {ph}"
                    )
                    offset = round_index * n_threads * per
                    latencies: list[list[float]] = [[] for _ in range(n_threads)]
                    errors: list[BaseException] = []
                    barrier = threading.Barrier(n_threads + 1, timeout=timeout_s)

                    def worker(
                        t: int, sql=sql, offset=offset, latencies=latencies, errors=errors, barrier=barrier
                    ):
                        try:
                            conn = db.connect(autocommit=True)
                        except BaseException as error:  # noqa: BLE001
                            errors.append(error)
                            barrier.abort()
                            return
                        try:
                            c = conn.cursor()
                            barrier.wait()
                            for row_id in ids[offset + t * per : offset + (t + 1) * per]:
                                t0 = time.perf_counter()
                                c.execute(sql, (row_id,))
                                latencies[t].append(time.perf_counter() - t0)
                        except BaseException as error:  # noqa: BLE001 - reported after join
                            errors.append(error)
                        finally:
                            conn.close()

                    threads = [
                        threading.Thread(target=worker, args=(t,), daemon=True) for t in range(n_threads)
                    ]
                    for thread in threads:
                        thread.start()
                    try:
                        barrier.wait()
                    except threading.BrokenBarrierError:
                        pass
                    started = time.perf_counter()
                    for thread in threads:
                        thread.join(timeout=timeout_s)
                    span = time.perf_counter() - started
                    if any(thread.is_alive() for thread in threads):
                        raise TimeoutError(f"writers did not finish within timeout_s={timeout_s}")
                    if errors:
                        raise RuntimeError(f"a writer failed: {errors[0]!r}") from errors[0]
                    flat = np.concatenate([np.asarray(x) for x in latencies])
                    rows.append(
                        {
                            "engine": engine.label,
                            "round": round_index,
                            "method": method,
                            "threads": n_threads,
                            "ops": int(flat.size),
                            "ops_per_s": flat.size / span,
                            "mean_latency_ms": 1000 * float(flat.mean()),
                            "p95_latency_ms": 1000 * float(np.quantile(flat, 0.95)),
                        }
                    )
        finally:
            setup.close()
    return Run.create(pd.DataFrame(rows), {"n_indexes": k, "n_threads": n_threads}, engine=engine)


def measure_postgres_read_side(
    engine,
    *,
    n_rows: int = 20_000,
    deleted_share: float = 0.5,
    n_queries: int = 20,
    timeout_s: float = 60.0,
) -> Run:
    """What a soft delete costs the readers on PostgreSQL: filtered rows, size, estimates, VACUUM.

    Two copies of one table (``n_rows`` rows, an index on ``c0``): in ``soft`` the oldest
    ``deleted_share`` of the rows are soft-deleted; in ``hard`` they are deleted and the table
    vacuumed. Then a range query on live rows (``c0 < x AND deleted_at IS NULL``, about 5 % of the
    table) runs ``n_queries`` times on each, and ``EXPLAIN (ANALYZE, FORMAT JSON)`` tells how many
    rows the executor fetched and threw away and how many the planner expected.

    Parameters
    ----------
    engine : syslab.engines.Engine
        A PostgreSQL engine.
    n_rows : int
        Rows per table, 10..:data:`MAX_ENGINE_ROWS`.
    deleted_share : float
        Share of rows removed, 0.05-0.95.
    n_queries : int
        Timed runs of the query per table (the fastest is kept), 1..200.
    timeout_s : float
        Limit for the whole experiment (seconds), at most :data:`MAX_TIMEOUT_S`.

    Returns
    -------
    syslab.experiment.Run
        ``frame``: one row per table (``soft``, ``hard``): ``engine``, ``table``, ``live_rows``,
        ``total_bytes`` (heap and indexes), ``query_ms`` (best of ``n_queries``: the least disturbed by other load), ``rows_returned``,
        ``rows_removed_by_filter``, ``rows_estimated``, ``vacuum_ms`` (the hard table's VACUUM after
        its DELETE; NaN for ``soft``).
    """
    from syslab.experiment import Run

    _check_engine(engine, ("postgres",))
    n_rows = validate.int_in_range("n_rows", n_rows, 10, MAX_ENGINE_ROWS)
    share = validate.float_in_range("deleted_share", deleted_share, 0.05, 0.95)
    n_queries = validate.int_in_range("n_queries", n_queries, 1, 200)
    timeout_s = validate.float_in_range("timeout_s", timeout_s, 0.1, MAX_TIMEOUT_S)
    cutoff = int(n_rows * share)
    # hashint8 is uniform over int4: c0 < bound selects about 5 % of the rows.
    bound = int(-(2**31) + 0.05 * 2**32)
    query = f"SELECT id, email FROM {{t}} WHERE c0 < {bound} AND deleted_at IS NULL"
    rows = []
    with engine.database() as db, db.connect(autocommit=True) as conn:
        cur = conn.cursor()
        cur.execute(f"SET statement_timeout = {int(timeout_s * 1000)}")
        for table in ("soft", "hard"):
            _pg_create(cur, table, n_rows, 1, "full", 100)
            vacuum_ms = float("nan")
            if table == "soft":
                cur.execute(f"UPDATE {table} SET deleted_at = now() WHERE id <= %s", (cutoff,))
            else:
                cur.execute(f"DELETE FROM {table} WHERE id <= %s", (cutoff,))
                started = time.perf_counter()
                cur.execute(f"VACUUM {table}")
                vacuum_ms = 1000 * (time.perf_counter() - started)
            cur.execute(f"ANALYZE {table}")
            cur.execute(f"SELECT pg_total_relation_size('{table}')")
            size = int(cur.fetchone()[0])
            cur.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {query.format(t=table)}")
            plan = cur.fetchone()[0][0]["Plan"]
            removed, estimated, actual = _plan_rows(plan)
            times = []
            for _ in range(n_queries):
                started = time.perf_counter()
                cur.execute(query.format(t=table))
                cur.fetchall()
                times.append(time.perf_counter() - started)
            cur.execute(f"SELECT count(*) FROM {table} WHERE deleted_at IS NULL")
            live = int(cur.fetchone()[0])
            rows.append(
                {
                    "engine": engine.label,
                    "table": table,
                    "live_rows": live,
                    "total_bytes": size,
                    "query_ms": 1000 * float(np.min(times)),
                    "rows_returned": actual,
                    "rows_removed_by_filter": removed,
                    "rows_estimated": estimated,
                    "vacuum_ms": vacuum_ms,
                }
            )
    return Run.create(pd.DataFrame(rows), {"n_rows": n_rows, "deleted_share": share}, engine=engine)


def _plan_rows(plan: dict) -> tuple[int, int, int]:
    """(rows removed by filter or recheck, in all nodes; top node's estimated rows; its actual rows)."""
    removed = 0
    stack = [plan]
    while stack:
        node = stack.pop()
        removed += int(node.get("Rows Removed by Filter", 0)) + int(
            node.get("Rows Removed by Index Recheck", 0)
        )
        stack.extend(node.get("Plans", []))
    return removed, int(plan["Plan Rows"]), int(plan["Actual Rows"])


def run_engine_resignup(engine) -> Run:
    """Delete an account softly, then sign up again with the same e-mail, under each engine's schemas.

    PostgreSQL: a plain ``UNIQUE (email)`` and a partial ``UNIQUE … WHERE deleted_at IS NULL``.
    MariaDB has no partial indexes: a plain ``UNIQUE (email)``, and a unique index on a virtual
    generated column ``live_email = IF(deleted_at IS NULL, email, NULL)`` (a unique index accepts any
    number of NULLs, so deleted rows drop out of the constraint).

    Parameters
    ----------
    engine : syslab.engines.Engine
        PostgreSQL or MariaDB.

    Returns
    -------
    syslab.experiment.Run
        ``frame``: one row per schema: ``engine``, ``schema``, ``re_signup`` (``ok`` or
        ``rejected``), ``live_rows`` with that e-mail afterwards.
    """
    from syslab.experiment import Run

    _check_engine(engine, ("postgres", "mariadb"))
    if engine.name == "postgres":
        schemas = {
            "UNIQUE (email)": "CREATE UNIQUE INDEX {t}_email ON {t} (email)",
            "UNIQUE (email) WHERE deleted_at IS NULL": (
                "CREATE UNIQUE INDEX {t}_email ON {t} (email) WHERE deleted_at IS NULL"
            ),
        }
        extra = ""
    else:
        schemas = {
            "UNIQUE (email)": "CREATE UNIQUE INDEX {t}_email ON {t} (email)",
            "UNIQUE (live_email), a generated column": "CREATE UNIQUE INDEX {t}_email ON {t} (live_email)",
        }
        extra = ", live_email VARCHAR(64) AS (IF(deleted_at IS NULL, email, NULL)) VIRTUAL"
    rows = []
    with engine.database() as db:
        conn = db.connect(autocommit=True)
        try:
            cur = conn.cursor()
            for i, (label, index_sql) in enumerate(schemas.items()):
                t = f"acc{i}"
                serial = "bigserial" if engine.name == "postgres" else "BIGINT AUTO_INCREMENT"
                cur.execute(
                    f"CREATE TABLE {t} (id {serial} PRIMARY KEY, email VARCHAR(64) NOT NULL,"
                    f" deleted_at TIMESTAMP NULL{extra})"
                )
                cur.execute(index_sql.format(t=t))
                cur.execute(f"INSERT INTO {t} (email) VALUES ('ana@example.com')")
                cur.execute(f"UPDATE {t} SET deleted_at = now() WHERE email = 'ana@example.com'")
                try:
                    cur.execute(f"INSERT INTO {t} (email) VALUES ('ana@example.com')")
                    outcome = "ok"
                except Exception as error:  # noqa: BLE001 - psycopg UniqueViolation / PyMySQL IntegrityError
                    if "unique" not in str(error).lower() and "duplicate" not in str(error).lower():
                        raise
                    outcome = "rejected"
                cur.execute(
                    f"SELECT count(*) FROM {t} WHERE email = 'ana@example.com' AND deleted_at IS NULL"
                )
                live = int(cur.fetchone()[0])
                rows.append(
                    {"engine": engine.label, "schema": label, "re_signup": outcome, "live_rows": live}
                )
        finally:
            conn.close()
    return Run.create(pd.DataFrame(rows), engine=engine)


def plot_engine_ratio(frame: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Soft-delete time over DELETE time against secondary indexes, one line per (engine, variant).

    Parameters
    ----------
    frame : pandas.DataFrame
        Rows with ``engine``, ``indexes``, ``method`` and ``us_per_row`` from several engines
        (``delete`` is the reference; every other method becomes a line).
    ax : matplotlib.axes.Axes, optional
        Where to draw (a new figure if None).

    Returns
    -------
    matplotlib.axes.Axes
    """
    validate.frame_columns("frame", frame, ("engine", "indexes", "method", "us_per_row"))
    ax = axes_or_new(ax)
    med = frame.groupby(["engine", "method", "indexes"])["us_per_row"].median().sort_index()
    names = {
        "soft": "soft delete",
        "soft_ff90": "soft delete, fillfactor 90",
        "soft_partial": "soft delete, partial indexes",
    }
    markers = {"SQLite": "s", "PostgreSQL": "o", "MariaDB": "^"}
    styles = {"soft": "-", "soft_ff90": "--", "soft_partial": ":"}
    for engine_label in dict.fromkeys(frame["engine"]):
        delete = med[(engine_label, "delete")]
        for method in dict.fromkeys(frame.loc[frame["engine"] == engine_label, "method"]):
            if method == "delete":
                continue
            ratio = med[(engine_label, method)] / delete
            product = engine_label.split()[0]
            ax.plot(
                ratio.index,
                ratio.to_numpy(),
                marker=markers.get(product, "x"),
                ls=styles.get(method, "-"),
                label=f"{engine_label}: {names.get(method, method)}",
            )
    ax.axhline(1.0, color="0.4", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("secondary indexes on the table")
    ax.set_ylabel("soft-delete time / DELETE time")
    ax.text(
        0.01, 0.02, "below 1: the soft delete is cheaper", transform=ax.transAxes, fontsize=10, color="0.3"
    )
    ax.legend(fontsize=9)
    return ax


#: The settings printed beside an engine's numbers.
SETTINGS_SHOWN = {
    "postgres": ("fsync", "synchronous_commit", "shared_buffers", "full_page_writes"),
    "mariadb": ("innodb_flush_log_at_trx_commit", "innodb_buffer_pool_size", "log_bin"),
}


def engine_settings_text(engine) -> str:
    """The settings that matter to this chapter, as ``name=value`` text for the page.

    Parameters
    ----------
    engine : syslab.engines.Engine
        PostgreSQL or MariaDB.

    Returns
    -------
    str
        E.g. ``fsync=on, synchronous_commit=on, shared_buffers=128MB, full_page_writes=on``;
        the InnoDB buffer pool in MiB.
    """
    _check_engine(engine, ("postgres", "mariadb"))
    parts = []
    for key in SETTINGS_SHOWN[engine.name]:
        value = str(engine.settings.get(key, "unknown"))
        if key == "innodb_buffer_pool_size" and value.isdigit():
            value = f"{int(value) // 2**20} MiB"
        parts.append(f"{key}={value}")
    return ", ".join(parts)


def summarize_verdicts(frame: pd.DataFrame) -> pd.DataFrame:
    """Per engine and soft-delete variant: which method was cheaper at which index counts, in words.

    Parameters
    ----------
    frame : pandas.DataFrame
        Rows with ``engine``, ``indexes``, ``method`` and ``us_per_row`` (``delete`` plus variants).

    Returns
    -------
    pandas.DataFrame
        One row per (engine, method other than ``delete``): ``engine``, ``method``,
        ``soft_cheaper_at`` (list of index counts where the soft delete's median was lower),
        ``ratio_min_k``, ``ratio_max_k`` (soft / DELETE time at the fewest and most indexes) and
        ``verdict``: "the soft delete is cheaper at every index count", "DELETE is cheaper at every
        index count", or which counts each wins.
    """
    validate.frame_columns("frame", frame, ("engine", "indexes", "method", "us_per_row"))
    med = frame.groupby(["engine", "method", "indexes"])["us_per_row"].median().sort_index()
    rows = []
    for engine_label in dict.fromkeys(frame["engine"]):
        delete = med[(engine_label, "delete")]
        for method in dict.fromkeys(frame.loc[frame["engine"] == engine_label, "method"]):
            if method == "delete":
                continue
            ratio = (med[(engine_label, method)] / delete).sort_index()
            cheaper = [int(k) for k in ratio.index[ratio < 1]]
            if len(cheaper) == len(ratio):
                verdict = "the soft delete is cheaper at every index count"
            elif not cheaper:
                verdict = "DELETE is cheaper at every index count"
            else:
                dearer = [int(k) for k in ratio.index[ratio >= 1]]
                verdict = (
                    f"the soft delete is cheaper with {', '.join(map(str, cheaper))} indexes,"
                    f" DELETE with {', '.join(map(str, dearer))}"
                )
            rows.append(
                {
                    "engine": engine_label,
                    "method": method,
                    "soft_cheaper_at": cheaper,
                    "ratio_min_k": float(ratio.iloc[0]),
                    "ratio_max_k": float(ratio.iloc[-1]),
                    "verdict": verdict,
                }
            )
    return pd.DataFrame(rows)


def summarize_writers(
    engine_frames: Sequence[pd.DataFrame], sqlite_ops: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Concurrent-writer throughput per (engine, method): median round, round spread, p95 latency.

    Parameters
    ----------
    engine_frames : sequence of pandas.DataFrame
        ``run_engine_writers(...).frame`` of each engine (may be empty).
    sqlite_ops : pandas.DataFrame, optional
        ``run_concurrent_writers(...).frame`` (one row per operation), labelled
        ``SQLite <version>, fsync per commit`` or ``…, WAL``.

    Returns
    -------
    pandas.DataFrame
        One row per (engine, method): ``engine``, ``method``, ``median_ops_per_s``,
        ``round_spread`` (highest / lowest round's throughput), ``p95_latency_ms`` (median over rounds).
    """
    if isinstance(engine_frames, (str, bytes, pd.DataFrame)) or not isinstance(engine_frames, (list, tuple)):
        raise TypeError(f"engine_frames must be a list of DataFrames, got {type(engine_frames).__name__}")
    parts = []
    for i, frame in enumerate(engine_frames):
        validate.frame_columns(
            f"engine_frames[{i}]", frame, ("engine", "round", "method", "ops_per_s", "p95_latency_ms")
        )
        parts.append(frame[["engine", "round", "method", "ops_per_s", "p95_latency_ms"]])
    if sqlite_ops is not None:
        validate.frame_columns(
            "sqlite_ops", sqlite_ops, ("durability", "round", "method", "latency_s", "finished_s")
        )
        per_round = sqlite_ops.groupby(["durability", "round", "method"], sort=False).agg(
            n=("latency_s", "size"),
            span_s=("finished_s", "max"),
            p95_latency_ms=("latency_s", lambda x: 1000 * float(np.quantile(x, 0.95))),
        )
        per_round = per_round.reset_index()
        kind = per_round["durability"].map(lambda d: "WAL" if d.startswith("WAL") else "fsync per commit")
        per_round["engine"] = f"SQLite {sqlite3.sqlite_version}, " + kind
        per_round["ops_per_s"] = per_round["n"] / per_round["span_s"]
        parts.append(per_round[["engine", "round", "method", "ops_per_s", "p95_latency_ms"]])
    if not parts:
        raise ValueError("engine_frames and sqlite_ops are both empty")
    every = pd.concat(parts, ignore_index=True)
    grouped = every.groupby(["engine", "method"], sort=False)
    out = pd.DataFrame(
        {
            "median_ops_per_s": grouped["ops_per_s"].median(),
            "round_spread": grouped["ops_per_s"].max() / grouped["ops_per_s"].min(),
            "p95_latency_ms": grouped["p95_latency_ms"].median(),
        }
    )
    return out.reset_index()


# --------------------------------------------------------------------------- the chapter's numbers

#: Table headers (with units) for the chapter's engine tables.
VERDICT_COLUMNS = {
    "engine": "engine",
    "method": "soft-delete variant",
    "ratio_min_k": "soft / DELETE, fewest indexes",
    "ratio_max_k": "soft / DELETE, most indexes",
    "verdict": "verdict",
}
PG_INTERNALS_COLUMNS = {
    "method": "method",
    "us_per_row": "statement (µs/row)",
    "wal_bytes_per_row": "WAL (bytes/row)",
    "hot_share": "HOT updates (share)",
    "entries_added_per_index_row": "new leaf items per index per row",
    "vacuum_ms": "VACUUM (ms)",
}
WRITER_COLUMNS = {
    "engine": "engine",
    "method": "method",
    "median_ops_per_s": "throughput (ops/s, median round)",
    "round_spread": "highest / lowest round",
    "p95_latency_ms": "p95 latency (ms)",
}
READ_SIDE_COLUMNS = {
    "table": "removed by",
    "total_bytes": "table + indexes (bytes)",
    "query_ms": "query, best (ms)",
    "rows_removed_by_filter": "rows read and dropped",
    "rows_estimated": "rows estimated",
    "vacuum_ms": "VACUUM (ms)",
}


def verdict_record(verdicts: pd.DataFrame, labels: dict) -> dict:
    """The verdict phrases and ratios the chapter quotes, one set per engine.

    Parameters
    ----------
    verdicts : pandas.DataFrame
        :func:`summarize_verdicts` output.
    labels : dict
        Short key (``sqlite``, ``pg``, ``my``) -> engine label as in ``verdicts["engine"]``.

    Returns
    -------
    dict
        ``verdict_<key>``, ``ratio_<key>`` (plain soft delete, most indexes) and, where measured,
        ``verdict_<key>_<variant>`` / ``ratio_<key>_<variant>`` for ``partial`` and ``ff90``;
        "it was not measured here" and NaN for an engine that did not run.
    """
    validate.frame_columns("verdicts", verdicts, ("engine", "method", "ratio_max_k", "verdict"))
    by = verdicts.set_index(["engine", "method"])
    out: dict = {}
    for key, label in labels.items():
        for method, suffix in (("soft", ""), ("soft_partial", "_partial"), ("soft_ff90", "_ff90")):
            present = (label, method) in by.index
            out[f"verdict_{key}{suffix}"] = (
                by.loc[(label, method), "verdict"] if present else "it was not measured here"
            )
            out[f"ratio_{key}{suffix}"] = (
                float(by.loc[(label, method), "ratio_max_k"]) if present else float("nan")
            )
    return out


def mariadb_redo_record(frame: pd.DataFrame | None) -> dict:
    """InnoDB redo per removed row, DELETE against soft delete, at the fewest and most indexes.

    Parameters
    ----------
    frame : pandas.DataFrame or None
        ``measure_mariadb_deletes(...).frame`` (None: MariaDB did not run).

    Returns
    -------
    dict
        Medians in bytes per row: ``redo_delete_min_k``, ``redo_delete_max_k``, ``redo_soft_min_k``,
        ``redo_soft_max_k``, and ``redo_delete_per_index`` (the DELETE's extra redo per index per
        row, from the two ends). NaN everywhere when ``frame`` is None.
    """
    keys = ("redo_delete_min_k", "redo_delete_max_k", "redo_soft_min_k", "redo_soft_max_k")
    if frame is None:
        return dict.fromkeys((*keys, "redo_delete_per_index"), float("nan"))
    validate.frame_columns("frame", frame, ("indexes", "method", "redo_bytes_per_row"))
    med = frame.groupby(["method", "indexes"])["redo_bytes_per_row"].median()
    fewest, most = int(frame["indexes"].min()), int(frame["indexes"].max())
    out = {
        "redo_delete_min_k": float(med[("delete", fewest)]),
        "redo_delete_max_k": float(med[("delete", most)]),
        "redo_soft_min_k": float(med[("soft", fewest)]),
        "redo_soft_max_k": float(med[("soft", most)]),
    }
    span = most - fewest
    growth = out["redo_delete_max_k"] - out["redo_delete_min_k"]
    out["redo_delete_per_index"] = growth / span if span else float("nan")
    return out


def summarize_postgres_internals(frame: pd.DataFrame | None, indexes: int) -> pd.DataFrame:
    """Median per method of :func:`measure_postgres_deletes` at one index count.

    Parameters
    ----------
    frame : pandas.DataFrame or None
        ``measure_postgres_deletes(...).frame`` (None: PostgreSQL did not run).
    indexes : int
        The index count to show.

    Returns
    -------
    pandas.DataFrame
        One row per method: ``method`` and the medians of ``us_per_row``, ``wal_bytes_per_row``,
        ``hot_share``, ``entries_added_per_index_row``, ``dead_tuples``, ``vacuum_ms`` (empty when
        ``frame`` is None).
    """
    columns = ["method", *[c for c in PG_INTERNALS_COLUMNS if c != "method"], "dead_tuples"]
    if frame is None:
        return pd.DataFrame(columns=columns)
    validate.frame_columns("frame", frame, ("indexes", *columns))
    part = frame[frame["indexes"] == indexes]
    return part.groupby("method", sort=False)[columns[1:]].median().reset_index()


def internals_record(internals: pd.DataFrame) -> dict:
    """The PostgreSQL numbers the chapter quotes (NaN where PostgreSQL did not run).

    Parameters
    ----------
    internals : pandas.DataFrame
        :func:`summarize_postgres_internals` output.

    Returns
    -------
    dict
        ``wal_<m>``, ``entries_<m>`` for ``delete``, ``soft``, ``ff90``, ``partial``;
        ``hot_soft_pct``, ``hot_ff90_pct``; ``dead_delete``; ``vacuum_delete_ms``.
    """
    m = internals.set_index("method") if len(internals) else None
    names = {"delete": "delete", "soft": "soft", "ff90": "soft_ff90", "partial": "soft_partial"}

    def get(method: str, column: str) -> float:
        return float(m.loc[method, column]) if m is not None and method in m.index else float("nan")

    out = {f"wal_{k}": get(v, "wal_bytes_per_row") for k, v in names.items()}
    out.update({f"entries_{k}": get(v, "entries_added_per_index_row") for k, v in names.items()})
    out["hot_soft_pct"] = 100 * get("soft", "hot_share")
    out["hot_ff90_pct"] = 100 * get("soft_ff90", "hot_share")
    dead = get("delete", "dead_tuples")
    out["dead_delete"] = int(dead) if np.isfinite(dead) else 0
    out["vacuum_delete_ms"] = get("delete", "vacuum_ms")
    return out


def read_side_record(read_side: pd.DataFrame | None) -> dict:
    """The read-side numbers the chapter quotes (NaN/0 where PostgreSQL did not run).

    Parameters
    ----------
    read_side : pandas.DataFrame or None
        ``measure_postgres_read_side(...).frame``.

    Returns
    -------
    dict
        ``read_dropped``, ``read_returned`` (rows), ``read_size_ratio``, ``read_time_ratio``
        (soft-deleted table over the vacuumed one) and ``read_vacuum_ms``.
    """
    if read_side is None:
        nan = float("nan")
        return {
            "read_dropped": 0,
            "read_returned": 0,
            "read_size_ratio": nan,
            "read_time_ratio": nan,
            "read_vacuum_ms": nan,
        }
    r = read_side.set_index("table")
    return {
        "read_dropped": int(r.loc["soft", "rows_removed_by_filter"]),
        "read_returned": int(r.loc["soft", "rows_returned"]),
        "read_size_ratio": float(r.loc["soft", "total_bytes"] / r.loc["hard", "total_bytes"]),
        "read_time_ratio": float(r.loc["soft", "query_ms"] / r.loc["hard", "query_ms"]),
        "read_vacuum_ms": float(r.loc["hard", "vacuum_ms"]),
    }


def engines_record(pg, my, mariadb_summary: dict | None = None) -> dict:
    """Labels and settings of the engines that ran, for the prose ("not available here" otherwise).

    Parameters
    ----------
    pg, my : syslab.engines.Engine or None
        The PostgreSQL and MariaDB engines (None when missing).
    mariadb_summary : dict, optional
        ``measure_mariadb_deletes(...).summary`` (for ``innodb_change_buffering``).

    Returns
    -------
    dict
        ``pg_label``, ``my_label``, ``pg_settings``, ``my_settings``, ``my_change_buffering`` and
        ``my_change_buffering_effect`` (words that are true of that setting).
    """
    buffering = str((mariadb_summary or {}).get("innodb_change_buffering", "unknown"))
    if buffering == "none":
        effect = "so every delete-mark lands on its index page within the statement"
    elif buffering == "unknown":
        effect = "which was not read here"
    else:
        effect = "so some secondary-index changes may be buffered and merged later"
    return {
        "pg_label": pg.label if pg else "PostgreSQL (not available here)",
        "my_label": my.label if my else "MariaDB (not available here)",
        "pg_settings": engine_settings_text(pg) if pg else "not measured",
        "my_settings": engine_settings_text(my) if my else "not measured",
        "my_change_buffering": buffering,
        "my_change_buffering_effect": effect,
    }
