"""A real connection pool over SQLite, and a load generator that measures it.

The pool chapter's real experiment: application threads share ``size``
connections to one SQLite database file and run a CPU-bound query in a closed
loop (each thread sends its next query as soon as the last one returns). SQLite
executes a query without holding Python's GIL, so queries really run in
parallel, one per core -- and past the core count, extra connections only make
queries share the cores.

Everything lives in a temporary folder that is deleted afterwards, and every
run is bounded by ``duration_s`` plus the pool's acquire timeout.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from syslab import validate
from syslab.experiment import Run
from syslab.sqlite_tools import temporary_database

__all__ = [
    "ConnectionPool",
    "best_pool_size",
    "PoolTimeout",
    "create_scan_table",
    "find_pgbench",
    "measure_pgbench",
    "measure_pool_sizes",
    "plot_pgbench",
    "summarize_measurements",
    "SCAN_QUERY",
]

# A full scan with arithmetic on every row: pure CPU once the file is in the page cache.
SCAN_QUERY = "SELECT count(*), sum(value % 97) FROM readings WHERE (value * ?) % 13 = 0"
MAX_POOL_SIZE = 1_000  # connections in one pool (each SQLite connection has its own page cache)
MAX_CLIENTS = 1_000  # client threads in one measurement
MAX_ROWS = 10_000_000  # rows in the scanned table: ~100 MB of SQLite


class PoolTimeout(TimeoutError):
    """No connection became free within the pool's acquire timeout."""


class _Waiter:
    """One thread waiting for a connection."""

    __slots__ = ("connection", "ready")

    def __init__(self) -> None:
        self.connection: object | None = None
        self.ready = threading.Event()


class ConnectionPool:
    """A fixed-size, thread-safe pool of connections with an acquire timeout.

    Connections are opened eagerly (as HikariCP does with ``minimumIdle`` equal
    to ``maximumPoolSize``, its recommended setting), handed to waiting threads
    in FIFO order, and closed by :meth:`close`.

    Parameters
    ----------
    connect : callable
        Called with no arguments to open one connection.
    size : int
        Number of connections.
    acquire_timeout_s : float
        How long :meth:`connection` waits for a free connection before raising
        :class:`PoolTimeout`.
    """

    def __init__(self, connect: Callable[[], object], size: int, acquire_timeout_s: float = 30.0) -> None:
        if not callable(connect):
            raise TypeError(f"connect must be callable (opens one connection), got {connect!r}")
        self.size = validate.bounded_int("size", size, MAX_POOL_SIZE)
        self.acquire_timeout_s = validate.float_in_range("acquire_timeout_s", acquire_timeout_s, 0.0, 3600.0)
        if self.acquire_timeout_s <= 0:
            raise ValueError(f"acquire_timeout_s must be > 0 seconds, got {acquire_timeout_s!r}")
        self._lock = threading.Lock()
        self._idle: deque = deque()
        # Waiting threads in arrival order. A returned connection is handed straight to
        # the oldest waiter: without this hand-off, the thread that just released a
        # connection can grab it back before a woken waiter runs, and the p99 wait
        # explodes (queue.Queue behaves that way).
        self._waiters: deque = deque()
        self._all = []
        try:
            for _ in range(self.size):
                conn = connect()
                self._all.append(conn)
                self._idle.append(conn)
        except Exception:
            self.close()
            raise

    def acquire(self) -> object:
        """Take a connection, waiting in FIFO order at most ``acquire_timeout_s``.

        Returns
        -------
        object
            A connection made by ``connect``; give it back with :meth:`release`.

        Raises
        ------
        PoolTimeout
            No connection became free within ``acquire_timeout_s``.
        """
        with self._lock:
            if self._idle and not self._waiters:
                return self._idle.popleft()
            slot = _Waiter()
            self._waiters.append(slot)
        if slot.ready.wait(self.acquire_timeout_s):
            return slot.connection
        with self._lock:
            if slot.connection is not None:  # handed over just as we timed out: keep it
                return slot.connection
            self._waiters.remove(slot)
        raise PoolTimeout(f"no connection free within {self.acquire_timeout_s} s")

    def release(self, conn: object) -> None:
        """Give a connection back: to the oldest waiter if there is one, else to the idle set.

        Parameters
        ----------
        conn : object
            A connection this pool handed out.
        """
        with self._lock:
            if self._waiters:
                slot = self._waiters.popleft()
                slot.connection = conn
                slot.ready.set()
            else:
                self._idle.append(conn)

    @contextlib.contextmanager
    def connection(self) -> Iterator[object]:
        """Borrow a connection for the ``with`` block; it goes back even if the block raises.

        Returns
        -------
        contextlib.AbstractContextManager
            Yields one connection.
        """
        conn = self.acquire()
        try:
            yield conn
        finally:
            self.release(conn)

    def close(self) -> None:
        """Close every connection the pool opened."""
        for conn in self._all:
            with contextlib.suppress(Exception):
                conn.close()
        self._all = []

    def __enter__(self) -> ConnectionPool:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def create_scan_table(
    conn: sqlite3.Connection, rows: int, seed: int | np.random.Generator | None = 0
) -> None:
    """Create and fill ``readings(id INTEGER PRIMARY KEY, value INTEGER)`` with random values.

    Parameters
    ----------
    conn : sqlite3.Connection
        Where to create the table (an existing ``readings`` is dropped).
    rows : int
        Rows, 1 to ``MAX_ROWS``.
    seed : int, numpy.random.Generator or None
        Randomness of the values.

    Returns
    -------
    None
    """
    validate.instance("conn", conn, sqlite3.Connection)
    rows = validate.bounded_int("rows", rows, MAX_ROWS)
    rng = validate.rng_from_seed(seed)
    values = rng.integers(0, 1_000_000, size=rows)
    conn.execute("DROP TABLE IF EXISTS readings")
    conn.execute("CREATE TABLE readings (id INTEGER PRIMARY KEY, value INTEGER NOT NULL)")
    conn.executemany("INSERT INTO readings (value) VALUES (?)", ((int(v),) for v in values))
    conn.commit()


def _client_loop(
    pool: ConnectionPool,
    query: str,
    stop_at: float,
    origin: float,
    records: list,
    client_id: int,
    errors: list,
) -> None:
    multiplier = client_id + 1
    while time.perf_counter() < stop_at:
        asked = time.perf_counter()
        try:
            with pool.connection() as conn:
                got = time.perf_counter()
                cpu_before = time.thread_time()
                conn.execute(query, (multiplier,)).fetchall()
                cpu = time.thread_time() - cpu_before
                done = time.perf_counter()
        except PoolTimeout:
            records.append(
                (client_id, asked - origin, time.perf_counter() - asked, np.nan, np.nan, "timeout")
            )
            continue
        except Exception as error:  # pragma: no cover - reported to the caller
            errors.append(error)
            return
        records.append((client_id, asked - origin, got - asked, done - got, cpu, "served"))


def measure_pool_sizes(
    pool_sizes: Sequence[int],
    *,
    clients: int = 8,
    duration_s: float = 1.0,
    rows: int = 100_000,
    query: str = SCAN_QUERY,
    acquire_timeout_s: float = 5.0,
    seed: int | np.random.Generator | None = 0,
) -> Run:
    """Run ``clients`` threads against a real SQLite pool of each size; one row per query.

    Each pool size gets a fresh pool over the same database file (created once
    in a temporary folder, deleted at the end) and runs for ``duration_s``.
    Every client runs a closed loop: borrow, query, give back, repeat.

    Parameters
    ----------
    pool_sizes : sequence of int
        Pool sizes to measure, in order, each 1 to ``MAX_POOL_SIZE``.
    clients : int
        Application threads issuing queries, 1 to ``MAX_CLIENTS``.
    duration_s : float
        Seconds of load per pool size, 0.01 to 60.
    rows : int
        Rows in the scanned table (sets the CPU cost of one query), 1 to ``MAX_ROWS``.
    query : str
        A ``SELECT`` with exactly one ``?`` parameter (each client binds its own id).
    acquire_timeout_s : float
        The pool's acquire timeout in seconds (> 0, at most 60).
    seed : int, numpy.random.Generator or None
        Seeds the table's contents.

    Returns
    -------
    syslab.experiment.Run
        ``frame``: one row per query: ``pool_size``, ``client``, ``start_s`` (since the
        size's run began), ``wait_s`` (waiting for a connection), ``query_s``
        (executing; NaN if the acquire timed out), ``query_cpu_s`` (CPU time of the thread
        during the query), ``outcome`` (``"served"`` or ``"timeout"``) and ``latency_s``
        (wait + query). ``summary``: ``clients``, ``duration_s``, ``rows``.
    """
    sizes = validate.sequence_of_positive_ints("pool_sizes", pool_sizes)
    for size in sizes:
        validate.bounded_int("pool_sizes", size, MAX_POOL_SIZE)
    clients = validate.bounded_int("clients", clients, MAX_CLIENTS)
    duration_s = validate.float_in_range("duration_s", duration_s, 0.01, 60.0)
    rows = validate.bounded_int("rows", rows, MAX_ROWS)
    acquire_timeout_s = validate.float_in_range("acquire_timeout_s", acquire_timeout_s, 0.0, 60.0)
    if acquire_timeout_s <= 0:
        raise ValueError(f"acquire_timeout_s must be > 0 seconds, got {acquire_timeout_s!r}")
    if not isinstance(query, str):
        raise TypeError(f"query must be SQL text, got {type(query).__name__}")
    if not query.lstrip().upper().startswith("SELECT") or query.count("?") != 1:
        raise ValueError(f"query must be a SELECT with exactly one ? parameter, got {query!r}")
    frames = []
    with temporary_database("pool.db") as (setup, path):
        create_scan_table(setup, rows, seed)
        for size in sizes:
            frames.append(_measure_one(path, size, clients, duration_s, query, acquire_timeout_s))
    frame = pd.concat(frames, ignore_index=True)
    return Run.create(frame, {"clients": clients, "duration_s": duration_s, "rows": rows})


def _measure_one(
    path: Path, size: int, clients: int, duration_s: float, query: str, acquire_timeout_s: float
) -> pd.DataFrame:
    def connect() -> sqlite3.Connection:
        # Threads share connections one at a time (the pool guarantees it).
        return sqlite3.connect(path, check_same_thread=False)

    records: list = []
    errors: list = []
    with ConnectionPool(connect, size, acquire_timeout_s) as pool:
        # Warm every connection's page cache so the first queries don't measure disk reads.
        for _ in range(size):
            with pool.connection() as conn:
                conn.execute(query, (1,)).fetchall()
        origin = time.perf_counter()
        stop_at = origin + duration_s
        threads = [
            threading.Thread(
                target=_client_loop, args=(pool, query, stop_at, origin, records, i, errors), daemon=True
            )
            for i in range(clients)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            # A client finishes its last query after stop_at; bound the wait anyway.
            thread.join(timeout=duration_s + acquire_timeout_s + 30)
        if any(thread.is_alive() for thread in threads):  # pragma: no cover
            raise TimeoutError("a client thread did not finish; the pool is stuck")
    if errors:
        raise errors[0]
    frame = pd.DataFrame(
        records, columns=["client", "start_s", "wait_s", "query_s", "query_cpu_s", "outcome"]
    )
    frame.insert(0, "pool_size", size)
    frame["latency_s"] = frame["wait_s"] + frame["query_s"].fillna(0.0)
    return frame


def summarize_measurements(df: pd.DataFrame) -> pd.DataFrame:
    """Throughput and latency percentiles per pool size from :func:`measure_pool_sizes`.

    Parameters
    ----------
    df : pandas.DataFrame or syslab.experiment.Run
        The per-query frame (or the Run) of :func:`measure_pool_sizes`.

    Returns
    -------
    pandas.DataFrame
        One row per pool size: ``pool_size``, ``queries``, ``throughput_per_s``,
        ``mean_wait_ms``, ``p50_query_ms``, ``p99_query_ms``, ``p50_latency_ms``,
        ``p99_latency_ms``, ``cpu_per_query_ms`` (mean thread CPU per query) and ``timeouts``.
    """
    df = getattr(df, "frame", df)
    df = validate.frame_columns(
        "df", df, ["pool_size", "start_s", "wait_s", "query_s", "query_cpu_s", "latency_s", "outcome"]
    )
    rows = []
    for size, group in df.groupby("pool_size", sort=True):
        served = group[group["outcome"] == "served"]
        span = float((group["start_s"] + group["latency_s"]).max())
        rows.append(
            {
                "pool_size": int(size),
                "queries": len(served),
                "throughput_per_s": len(served) / span if span > 0 else np.nan,
                "mean_wait_ms": float(served["wait_s"].mean() * 1000),
                "p50_query_ms": float(served["query_s"].quantile(0.5) * 1000),
                "p99_query_ms": float(served["query_s"].quantile(0.99) * 1000),
                "p50_latency_ms": float(served["latency_s"].quantile(0.5) * 1000),
                "p99_latency_ms": float(served["latency_s"].quantile(0.99) * 1000),
                "cpu_per_query_ms": float(served["query_cpu_s"].mean() * 1000),
                "timeouts": int((group["outcome"] == "timeout").sum()),
            }
        )
    return pd.DataFrame(rows)


def best_pool_size(summary: pd.DataFrame, within: float = 0.05) -> int:
    """The smallest pool whose throughput is within ``within`` of the best measured.

    Parameters
    ----------
    summary : pandas.DataFrame
        Columns ``pool_size`` and ``throughput_per_s`` (:func:`summarize_measurements`, or the
        frame of :func:`measure_pgbench`).
    within : float
        Tolerance as a share of the best throughput, 0-1.

    Returns
    -------
    int
        A pool size from ``summary``.
    """
    summary = validate.frame_columns("summary", summary, ["pool_size", "throughput_per_s"])
    within = validate.float_in_range("within", within, 0.0, 1.0)
    if summary.empty:
        raise ValueError("summary is empty: measure at least one pool size")
    best = summary["throughput_per_s"].max()
    good = summary[summary["throughput_per_s"] >= (1 - within) * best]
    return int(good["pool_size"].min())


# =========================================================================== PostgreSQL with pgbench

MAX_PGBENCH_CLIENTS = 90  # PostgreSQL's default max_connections is 100; keep room for the harness
MAX_PGBENCH_DURATION_S = 60.0
PGBENCH_RANGE_ROWS = 5_000  # rows each pgbench query aggregates: about a millisecond of CPU

_PGBENCH_SCRIPT = (
    "\\set aid random(1, {last_start})\n"
    "SELECT count(*), sum(abalance) FROM pgbench_accounts WHERE aid BETWEEN :aid AND :aid + {span};\n"
)


def find_pgbench() -> str | None:
    """The path of a ``pgbench`` binary (PATH, then Debian's and Homebrew's folders), or None.

    Returns
    -------
    str or None
        An executable ``pgbench``, preferring the newest major version.
    """
    import glob
    import re
    import shutil

    for pattern in (
        "/usr/lib/postgresql/*/bin/pgbench",
        "/opt/homebrew/opt/postgresql@*/bin/pgbench",
        "/usr/local/opt/postgresql@*/bin/pgbench",
    ):
        candidates = sorted(glob.glob(pattern), key=lambda p: [int(x) for x in re.findall(r"\d+", p)])
        if candidates:
            return candidates[-1]
    return shutil.which("pgbench")


def _children_cpu_s(pid: int | None) -> float:
    """CPU seconds of the reaped children of ``pid`` (the postmaster: its finished backends)."""
    if pid is None:
        return float("nan")
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[13]) + int(fields[14])) / ticks  # cutime + cstime


def _postmaster_pid(conn) -> int | None:
    backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    try:
        with open(f"/proc/{backend}/stat") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return None  # a server on another machine or in a container: CPU time is not readable


def measure_pgbench(
    engine: object,
    pool_sizes: Sequence[int],
    *,
    duration_s: int = 2,
    range_rows: int = PGBENCH_RANGE_ROWS,
    timeout_s: float = 120.0,
) -> Run:
    """Throughput and latency of a real PostgreSQL against the number of connections, via pgbench.

    ``pgbench -i -s 1`` creates ``pgbench_accounts`` (100,000 rows) in a fresh database. Then, per
    pool size ``c``, ``pgbench -c c -j min(c, 2) -T duration_s -M prepared`` runs a closed loop: each
    of ``c`` connections sends its next query as soon as the last returns, so ``c`` is the pool
    size of an application that always has work waiting. The query aggregates ``range_rows``
    consecutive rows by primary key (CPU work on the server, no disk once cached). pgbench is a
    separate C program, so no Python lock is in the measurement; it does share the machine's cores
    with the server. Latencies come from pgbench's per-transaction log; the server's CPU time from
    the postmaster's reaped children (Linux ``/proc``; NaN where it is not readable).

    Parameters
    ----------
    engine : syslab.engines.Engine
        A PostgreSQL engine (``engines.find("postgres")``).
    pool_sizes : sequence of int
        Connections to measure, each 1 to ``MAX_PGBENCH_CLIENTS``.
    duration_s : int
        Whole seconds of load per pool size (pgbench's ``-T``), 1 to ``MAX_PGBENCH_DURATION_S``.
    range_rows : int
        Rows each query aggregates, 1 to 90,000.
    timeout_s : float
        Budget for the whole experiment; a pgbench run still going at the deadline is killed.

    Returns
    -------
    syslab.experiment.Run
        ``frame``: one row per pool size: ``pool_size``, ``transactions``, ``throughput_per_s``,
        ``mean_latency_ms``, ``p50_latency_ms``, ``p99_latency_ms``, ``server_cpu_s``,
        ``server_cores_used`` (server CPU seconds per second). ``summary``: ``cpu_count``,
        ``duration_s``, ``range_rows``, ``pgbench`` (its version line), ``load_average_1m`` (before).
    """
    import subprocess
    import tempfile

    if not callable(getattr(engine, "database", None)) or getattr(engine, "name", None) != "postgres":
        raise TypeError(
            f"engine must be a syslab.engines.Engine for 'postgres' (engines.find('postgres')), got {engine!r}"
        )
    sizes = validate.sequence_of_positive_ints("pool_sizes", pool_sizes)
    for size in sizes:
        validate.bounded_int("pool_sizes", size, MAX_PGBENCH_CLIENTS)
    duration = validate.bounded_int("duration_s", duration_s, int(MAX_PGBENCH_DURATION_S))
    span = validate.bounded_int("range_rows", range_rows, 90_000)
    budget = validate.float_in_range("timeout_s", timeout_s, 1.0, 600.0)
    binary = find_pgbench()
    if binary is None:
        raise FileNotFoundError(
            "pgbench is not installed (Debian: apt install postgresql-15 or postgresql-client)"
        )
    end = time.monotonic() + budget

    def left() -> float:
        remaining = end - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"measure_pgbench did not finish within timeout_s={budget:g} s")
        return remaining

    version = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    load_1m = os.getloadavg()[0]
    rows = []
    with engine.database() as db, tempfile.TemporaryDirectory(prefix="syslab-") as folder:
        script = Path(folder) / "range.sql"
        script.write_text(_PGBENCH_SCRIPT.format(last_start=100_000 - span, span=span - 1))
        subprocess.run(
            [binary, "-i", "-s", "1", "-q", "-n", db.dsn],
            capture_output=True,
            text=True,
            timeout=left(),
            check=True,
            cwd=folder,
        )
        with db.connect(autocommit=True) as conn:
            postmaster = _postmaster_pid(conn)
            conn.execute("VACUUM ANALYZE pgbench_accounts")
            conn.execute("SELECT count(*), sum(abalance) FROM pgbench_accounts").fetchone()  # warm the cache
        for size in sizes:
            if duration + 5 > left():
                raise TimeoutError(f"measure_pgbench did not finish within timeout_s={budget:g} s")
            log_dir = Path(folder) / f"c{size}"
            log_dir.mkdir()
            cpu_before = _children_cpu_s(postmaster)
            subprocess.run(
                [
                    binary,
                    "-n",
                    "-f",
                    str(script),
                    "-c",
                    str(size),
                    "-j",
                    str(min(size, 2)),
                    "-T",
                    str(duration),
                    "-M",
                    "prepared",
                    "-l",
                    "--log-prefix",
                    str(log_dir / "log"),
                    db.dsn,
                ],
                capture_output=True,
                text=True,
                timeout=left(),
                check=True,
                cwd=folder,
            )
            time.sleep(0.05)  # let the postmaster reap the finished backends
            server_cpu = _children_cpu_s(postmaster) - cpu_before
            latencies_us = np.concatenate(
                [np.loadtxt(path, usecols=2, ndmin=1) for path in log_dir.iterdir() if path.stat().st_size]
            )
            rows.append(
                {
                    "pool_size": size,
                    "transactions": int(latencies_us.size),
                    "throughput_per_s": latencies_us.size / duration,
                    "mean_latency_ms": float(latencies_us.mean() / 1000),
                    "p50_latency_ms": float(np.percentile(latencies_us, 50) / 1000),
                    "p99_latency_ms": float(np.percentile(latencies_us, 99) / 1000),
                    "server_cpu_s": server_cpu,
                    "server_cores_used": server_cpu / duration,
                }
            )
    summary = {
        "cpu_count": os.cpu_count() or 1,
        "duration_s": duration,
        "range_rows": span,
        "pgbench": version,
        "load_average_1m": load_1m,
    }
    return Run.create(pd.DataFrame(rows), summary, engine=engine)


def plot_pgbench(
    frame: pd.DataFrame, axes: object | None = None, *, cpu_count: int | None = None
) -> np.ndarray:
    """Throughput (left) and latency (right) against pool size from :func:`measure_pgbench`.

    Parameters
    ----------
    frame : pandas.DataFrame
        ``pool_size``, ``throughput_per_s``, ``p50_latency_ms``, ``p99_latency_ms`` (the ``frame`` of
        :func:`measure_pgbench` or of :func:`summarize_measurements` renamed alike).
    axes : two matplotlib Axes, optional
        Where to draw; a new two-panel figure if omitted.
    cpu_count : int, optional
        Draws a dotted line at the machine's core count.

    Returns
    -------
    numpy.ndarray
        The two Axes.
    """
    from syslab import plot

    frame = validate.frame_columns(
        "frame", frame, ["pool_size", "throughput_per_s", "p50_latency_ms", "p99_latency_ms"]
    )
    left, right = plot.panels(2, axes=axes)
    left.plot(frame["pool_size"], frame["throughput_per_s"], marker="o")
    right.plot(frame["pool_size"], frame["p50_latency_ms"], marker="o", label="median")
    right.plot(frame["pool_size"], frame["p99_latency_ms"], marker="s", label="p99")
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        if cpu_count is not None:
            ax.axvline(cpu_count, color="0.5", ls=":", lw=1.5, label="CPU cores")
    plot.label(left, "pool size (connections)", "queries per second")
    plot.label(right, "pool size (connections)", "latency (ms)", legend=True)
    right.set_ylim(bottom=0)
    left.set_ylim(bottom=0)
    return np.array([left, right], dtype=object)
