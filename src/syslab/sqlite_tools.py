"""Small helpers for the chapters that run real SQL on SQLite.

Query plans, page statistics from the ``dbstat`` virtual table, timing, and a
temporary database that is always deleted. SQLite is the real database the
reader has everywhere; where MySQL or PostgreSQL behave differently, the
chapters say so -- these helpers never pretend SQLite is another engine.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from syslab import validate

__all__ = [
    "database_size_bytes",
    "median_seconds",
    "page_stats",
    "plan_uses_index",
    "query_plan",
    "temporary_database",
]


@contextlib.contextmanager
def temporary_database(name: str = "lab.db", **connect_kwargs) -> Iterator[tuple[sqlite3.Connection, Path]]:
    """Yield ``(connection, path)`` for a new SQLite file in a temporary folder, deleted afterwards.

    The folder (and any ``-wal``/``-journal`` files) is removed even if the block raises.
    """
    folder = Path(tempfile.mkdtemp(prefix="syslab-sqlite-"))
    path = folder / name
    conn = sqlite3.connect(path, **connect_kwargs)
    try:
        yield conn, path
    finally:
        conn.close()
        shutil.rmtree(folder, ignore_errors=True)


def query_plan(conn: sqlite3.Connection, sql: str, params: Sequence | dict = ()) -> list[str]:
    """The ``detail`` lines of ``EXPLAIN QUERY PLAN`` for ``sql``, in order.

    SQLite 3.36 changed the wording (``SCAN TABLE t`` became ``SCAN t``); callers
    should classify lines with :func:`plan_uses_index`, not by exact text.
    """
    if not isinstance(sql, str) or not sql.strip():
        raise ValueError("sql must be a non-empty SQL string")
    rows = conn.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
    return [str(row[-1]) for row in rows]


def plan_uses_index(plan: Sequence[str]) -> bool:
    """True when every table access in ``plan`` is a SEARCH (an index or rowid lookup).

    A ``SCAN`` line reads the whole table or index, except ``SCAN ... USING
    COVERING INDEX`` which still reads every index entry and so counts as a scan.
    Lines that are not table accesses (``USE TEMP B-TREE``, ``MULTI-INDEX OR``,
    ``INDEX 1`` ...) are ignored.
    """
    accesses = [line for line in plan if line.startswith(("SCAN", "SEARCH"))]
    return bool(accesses) and all(line.startswith("SEARCH") for line in accesses)


def page_stats(conn: sqlite3.Connection, name: str | None = None) -> pd.DataFrame:
    """Pages and fill per table/index from SQLite's ``dbstat`` virtual table.

    Parameters
    ----------
    conn : sqlite3.Connection
        A connection whose SQLite has ``SQLITE_ENABLE_DBSTAT_VTAB`` (Python's usually does).
    name : str, optional
        Only this table or index.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``name``, with ``leaf_pages``, ``interior_pages``,
        ``overflow_pages``, ``cells``, ``payload_bytes``, ``unused_bytes``,
        ``page_size_bytes`` and ``leaf_fill`` (used bytes of leaf pages / their size).
    """
    query = (
        "SELECT name, pagetype, count(*) AS pages, sum(ncell) AS cells, sum(payload) AS payload,"
        " sum(unused) AS unused, max(pgsize) AS pgsize FROM dbstat"
        + (" WHERE name = ?" if name else "")
        + " GROUP BY name, pagetype"
    )
    try:
        rows = conn.execute(query, (name,) if name else ()).fetchall()
    except sqlite3.OperationalError as error:  # pragma: no cover - builds without dbstat
        raise RuntimeError(f"this SQLite ({sqlite3.sqlite_version}) has no dbstat table: {error}") from error
    frame = pd.DataFrame(rows, columns=["name", "pagetype", "pages", "cells", "payload", "unused", "pgsize"])
    if frame.empty:
        raise ValueError(f"no pages found for {name!r}" if name else "the database has no pages")
    result = {}
    for obj, group in frame.groupby("name"):
        by_type = group.set_index("pagetype")
        leaf = by_type.loc["leaf"] if "leaf" in by_type.index else None
        page_size = int(group["pgsize"].max())
        leaf_pages = int(leaf["pages"]) if leaf is not None else 0
        result[obj] = {
            "leaf_pages": leaf_pages,
            "interior_pages": int(by_type["pages"].get("internal", 0)),
            "overflow_pages": int(by_type["pages"].get("overflow", 0)),
            "cells": int(leaf["cells"]) if leaf is not None else 0,
            "payload_bytes": int(group["payload"].sum()),
            "unused_bytes": int(group["unused"].sum()),
            "page_size_bytes": page_size,
            "leaf_fill": (1 - float(leaf["unused"]) / (leaf_pages * page_size)) if leaf_pages else np.nan,
        }
    return pd.DataFrame.from_dict(result, orient="index").rename_axis("name")


def median_seconds(run: Callable[[], object], *, repeats: int = 5, max_total_s: float = 10.0) -> float:
    """Median wall time of ``run()`` over ``repeats`` calls, stopping early after ``max_total_s``."""
    repeats = validate.positive_int("repeats", repeats)
    budget = validate.positive_float("max_total_s", max_total_s)
    if not callable(run):
        raise TypeError("run must be callable")
    times = []
    started = time.perf_counter()
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - started > budget:
            break
    return float(np.median(times))


def database_size_bytes(path: str | os.PathLike) -> int:
    """Size of a database file on disk, in bytes."""
    return os.path.getsize(path)
