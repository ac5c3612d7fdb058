"""Small helpers for the chapters that run real SQL on SQLite.

Query plans, page statistics from the ``dbstat`` virtual table, timing, and a
temporary database that is always deleted. SQLite is the real database the
reader has everywhere; where MySQL or PostgreSQL behave differently, the
chapters say so -- these helpers never pretend SQLite is another engine.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from syslab.timing import median_seconds  # re-exported: timing lives in syslab.timing

__all__ = [
    "database_size_bytes",
    "median_seconds",
    "page_stats",
    "plain_file_name",
    "plan_uses_index",
    "query_plan",
    "temporary_database",
]


_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")


def plain_file_name(name: object, parameter: str = "name") -> str:
    """``name`` if it is a plain file name (no folder, no ``..``), for a file inside a temp folder.

    Parameters
    ----------
    name : object
        The candidate name.
    parameter : str
        The caller's parameter name, for the error message.

    Returns
    -------
    str
    """
    if not isinstance(name, str):
        raise TypeError(f"{parameter} must be a plain file name (str), got {type(name).__name__}")
    if not _PLAIN_NAME.match(name) or name in {".", ".."} or ".." in name:
        raise ValueError(
            f"{parameter} must be a plain file name of letters, digits, '.', '_' or '-' "
            f"(no folders), got {name!r}"
        )
    return name


@contextlib.contextmanager
def temporary_database(name: str = "lab.db", **connect_kwargs) -> Iterator[tuple[sqlite3.Connection, Path]]:
    """Yield ``(connection, path)`` for a new SQLite file in a temporary folder, deleted afterwards.

    The folder (and any ``-wal``/``-journal`` files) is removed even if the block raises.

    Parameters
    ----------
    name : str
        A plain file name inside the temporary folder; paths (``../x.db``, ``/tmp/x.db``) are refused.
    **connect_kwargs
        Passed to :func:`sqlite3.connect` (``isolation_level=None``, ``timeout=...``).

    Yields
    ------
    (sqlite3.Connection, pathlib.Path)
    """
    name = plain_file_name(name)
    folder = Path(tempfile.mkdtemp(prefix="syslab-sqlite-"))
    try:
        path = folder / name
        conn = sqlite3.connect(path, **connect_kwargs)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    try:
        yield conn, path
    finally:
        conn.close()
        shutil.rmtree(folder, ignore_errors=True)


def query_plan(conn: sqlite3.Connection, sql: str, params: Sequence | dict = ()) -> list[str]:
    """The ``detail`` lines of ``EXPLAIN QUERY PLAN`` for ``sql``, in order.

    SQLite 3.36 changed the wording (``SCAN TABLE t`` became ``SCAN t``); callers
    should classify lines with :func:`plan_uses_index`, not by exact text.

    Parameters
    ----------
    conn : sqlite3.Connection
    sql : str
        One SELECT (or other) statement, without ``EXPLAIN``.
    params : sequence or dict
        Its bound parameters.

    Returns
    -------
    list of str
    """
    if not isinstance(sql, str) or not sql.strip():
        raise ValueError("sql must be a non-empty SQL string")
    rows = conn.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
    return [str(row[-1]) for row in rows]


def plan_uses_index(plan: str | Sequence[str]) -> bool:
    """True when every table access in ``plan`` is a SEARCH (an index or rowid lookup).

    Parameters
    ----------
    plan : str or sequence of str
        The ``detail`` lines of ``EXPLAIN QUERY PLAN`` (what :func:`query_plan` returns), or a
        single such line.

    Returns
    -------
    bool
        ``True`` when the plan has at least one table access and every one is a ``SEARCH``. A
        ``SCAN`` line reads the whole table, and ``SCAN ... USING COVERING INDEX`` still reads
        every entry of the index, so both count as scans. Lines that are not table accesses
        (``USE TEMP B-TREE``, ``MULTI-INDEX OR``, ``INDEX 1`` ...) are ignored, and the
        pre-3.36 wording (``SCAN TABLE t``) is read the same way.
    """
    if isinstance(plan, str):
        lines = [plan]
    elif isinstance(plan, Sequence) and not isinstance(plan, (bytes, bytearray)):
        lines = list(plan)
    else:
        raise TypeError(f"plan must be a plan line or a sequence of plan lines, got {type(plan).__name__}")
    for index, line in enumerate(lines):
        if not isinstance(line, str):
            raise TypeError(f"plan[{index}] must be a str, got {type(line).__name__}")
    accesses = [line.strip() for line in lines if line.strip().startswith(("SCAN", "SEARCH"))]
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


def database_size_bytes(path: str | os.PathLike) -> int:
    """Size of a database file on disk, in bytes.

    Parameters
    ----------
    path : str or os.PathLike
        The database file (an integer file descriptor is refused: it is never what a caller means).

    Returns
    -------
    int
    """
    if isinstance(path, bool) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    return os.path.getsize(path)
