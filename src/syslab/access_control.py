"""Row-level access control over 100,000 devices: seven approaches on real SQLite.

A user may read the readings of the devices they are permitted to see, and a big
customer's operator is permitted to see a hundred thousand of them. Every store
the readings live in needs that permission as a *filter*, and each store limits
how big a filter can be:

* Elasticsearch: a ``terms`` query holds at most ``index.max_terms_count`` terms,
  65,536 by default, counting terms fetched by a terms lookup (Alibaba Cloud's
  Elasticsearch Serverless caps the setting at 1,024).
* ClickHouse: ``max_query_size`` = 262,144 bytes of SQL text reach the parser.
* MongoDB: a query is a BSON document, at most 16 MiB (16,777,216 bytes).
* SQLite: at most ``SQLITE_LIMIT_VARIABLE_NUMBER`` bound parameters, 32,766 in
  upstream builds since 3.32.0 (some distributions compile in more; we set it).

This module builds a fleet database (devices in groups, users in groups, a
million readings), runs the seven approaches a team tries in turn
(:data:`APPROACHES`) for users with more and more devices
(:func:`run_approach_sweep`), and models each store's limit exactly: the SQL
text ClickHouse would parse, the BSON bytes MongoDB would receive
(:func:`bson_in_query_bytes`, checked against a small real encoder
:func:`encode_bson`), the terms Elasticsearch would count. It computes bitmap
sizes, dense against roaring-style containers (:func:`roaring_size_bytes`), and
runs the edge cases on real SQLite: access revoked between two pages
(:func:`demo_revoked_mid_pagination`), stale derived permissions
(:func:`demo_revocation_staleness`, :func:`simulate_revocation_exposure`) and
three stores applying one permission log at different lags
(:func:`run_store_consistency`).
"""

from __future__ import annotations

import contextlib
import heapq
import json
import math
import sqlite3
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from syslab import experiment, validate
from syslab.plot import axes_or_new
from syslab.plot import label as axis_label
from syslab.sqlite_tools import median_seconds, query_plan, temporary_database

__all__ = [
    "APPROACHES",
    "CLICKHOUSE_MAX_QUERY_SIZE_BYTES",
    "ES_MAX_TERMS_COUNT",
    "ES_SERVERLESS_MAX_TERMS_COUNT",
    "MONGODB_MAX_BSON_BYTES",
    "SQLITE_UPSTREAM_MAX_VARIABLES",
    "FleetConfig",
    "bson_in_query_bytes",
    "build_fleet",
    "chunked_page_cost",
    "deep_page_costs",
    "demo_device_move",
    "demo_revocation_staleness",
    "demo_revoked_mid_pagination",
    "demo_too_many_variables",
    "encode_bson",
    "fetch_page",
    "limit_table",
    "measure_roaring",
    "measure_sql_plans",
    "permitted_devices",
    "plot_roaring_sizes",
    "plot_sql_plans",
    "plot_approaches",
    "plot_bitmap_sizes",
    "plot_revocation_exposure",
    "request_sizes",
    "roaring_size_bytes",
    "run_approach_sweep",
    "run_store_consistency",
    "set_variable_limit",
    "simulate_revocation_exposure",
    "summarize_consistency",
    "sweep_bitmap_sizes",
    "theory_revocation_exposure_mean_s",
    "theory_roaring_bytes",
    "theory_stale_fraction",
    "plan_lines",
    "grant_groups",
    "refresh_access_table",
]

# Store limits, each from the store's own documentation (see the chapter's references).
ES_MAX_TERMS_COUNT = 65_536  # index.max_terms_count default, Elasticsearch 7.0+ (terms, incl. terms lookup)
ES_SERVERLESS_MAX_TERMS_COUNT = (
    1_024  # its cap on Alibaba Cloud's Elasticsearch Serverless (default and maximum)
)
CLICKHOUSE_MAX_QUERY_SIZE_BYTES = 262_144  # max_query_size default: bytes of SQL text the parser accepts
MONGODB_MAX_BSON_BYTES = 16 * 1024 * 1024  # BSON document limit, applies to query documents too
SQLITE_UPSTREAM_MAX_VARIABLES = 32_766  # SQLITE_MAX_VARIABLE_NUMBER default since SQLite 3.32.0

ROARING_CHUNK_BITS = 16  # a roaring bitmap splits 32-bit values into 2^16-value chunks by their high bits
ROARING_ARRAY_MAX = 4_096  # a chunk with at most this many values is a sorted array of 16-bit values
ROARING_BITMAP_CONTAINER_BYTES = 8_192  # a fuller chunk is a 2^16-bit bitmap
ROARING_HEADER_BYTES_PER_CONTAINER = 4  # 16-bit key + 16-bit cardinality per container

APPROACHES = (
    "giant IN list",
    "chunked IN lists",
    "terms lookup",
    "join ACL tables",
    "denormalised group id",
    "precomputed access table",
    "bitmap filter",
)

_READING_COLUMNS = "r.reading_id, r.device_id, r.ts"
_ORDER = "ORDER BY r.ts DESC, r.reading_id DESC"


@dataclass(frozen=True)
class FleetConfig:
    """Size and shape of the generated fleet database.

    Attributes
    ----------
    n_devices : int
        Devices in the fleet (ids ``0 .. n_devices-1``).
    devices_per_group : int
        Devices per group (a site or fleet); every device is in exactly one group, drawn at random.
    n_readings : int
        Rows in ``readings``, spread uniformly over devices and time.
    span_s : int
        Readings' timestamps lie in ``[0, span_s)`` seconds.
    """

    n_devices: int = 200_000  # devices in the fleet
    devices_per_group: int = 100  # devices per group
    n_readings: int = 1_000_000  # telemetry rows
    span_s: int = 30 * 86_400  # readings cover 30 days

    def __post_init__(self) -> None:
        validate.positive_int("n_devices", self.n_devices)
        validate.positive_int("devices_per_group", self.devices_per_group)
        validate.positive_int("n_readings", self.n_readings)
        validate.positive_int("span_s", self.span_s)
        if self.n_devices % self.devices_per_group:
            raise ValueError(
                f"n_devices ({self.n_devices}) must be a multiple of devices_per_group ({self.devices_per_group})"
            )

    @property
    def n_groups(self) -> int:
        return self.n_devices // self.devices_per_group


def _check_connection(conn: object) -> sqlite3.Connection:
    if not isinstance(conn, sqlite3.Connection):
        raise TypeError(f"conn must be a sqlite3.Connection, got {type(conn).__name__}")
    return conn


def set_variable_limit(conn: sqlite3.Connection, limit: int = SQLITE_UPSTREAM_MAX_VARIABLES) -> dict:
    """Lower this connection's bound-parameter limit to ``limit`` (upstream's default) where Python allows.

    ``Connection.setlimit`` exists from Python 3.11; SQLite only ever lowers a limit below the compiled-in
    maximum. Returns ``{"compiled": ..., "effective": ..., "set": bool}``, read back from SQLite.

    Parameters
    ----------
    conn : sqlite3.Connection
        A connection to the fleet database (from :func:`build_fleet`).
    limit : int
        The bound-parameter limit wanted.

    Returns
    -------
    dict
        ``compiled``, ``effective`` (ints) and ``set`` (bool), read back from SQLite.
    """
    conn = _check_connection(conn)
    limit = validate.int_in_range("limit", limit, 1, 2**31 - 1)
    if not hasattr(conn, "setlimit"):  # pragma: no cover - Python < 3.11
        return {"compiled": None, "effective": None, "set": False}
    compiled = conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)
    return {
        "compiled": int(compiled),
        "effective": int(conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)),
        "set": True,
    }


def build_fleet(
    conn: sqlite3.Connection,
    config: FleetConfig = FleetConfig(),
    *,
    seed: int | np.random.Generator | None = 0,
) -> pd.Series:
    """Create and fill the fleet schema on ``conn``; return row counts and the load time.

    Tables: ``devices(device_id, group_id)``; ``readings(reading_id, device_id, group_id, ts, value)``
    with ``group_id`` copied onto every reading (approach 5) and indexes on ``(device_id, ts)``,
    ``(group_id, ts)`` and ``(ts)``; ``user_groups(user_id, group_id)``; ``user_devices`` (the
    precomputed expansion, filled by :func:`refresh_access_table`); ``acl_docs(user_id, ids)`` (one JSON
    array of device ids per user, the "terms lookup" document).

    Parameters
    ----------
    conn : sqlite3.Connection
        A connection to the fleet database (from :func:`build_fleet`).
    config : FleetConfig
        Fleet size.
    seed : int, numpy.random.Generator or None

    Returns
    -------
    pandas.Series
        Row counts per table (``devices``, ``readings``, ...) and ``load_s``.
    """
    conn = _check_connection(conn)
    if not isinstance(config, FleetConfig):
        raise TypeError(f"config must be a FleetConfig, got {type(config).__name__}")
    rng = validate.rng_from_seed(seed)
    started = time.perf_counter()
    # Exactly devices_per_group devices per group, scattered over the id space.
    group_of = (rng.permutation(config.n_devices) % config.n_groups).astype(np.int64)
    device = rng.integers(0, config.n_devices, size=config.n_readings)
    ts = np.sort(rng.integers(0, config.span_s, size=config.n_readings))  # appended in time order
    value = np.round(rng.normal(20.0, 5.0, size=config.n_readings), 2)
    conn.executescript(
        """
        PRAGMA journal_mode = OFF;
        PRAGMA synchronous = OFF;
        CREATE TABLE devices (device_id INTEGER PRIMARY KEY, group_id INTEGER NOT NULL);
        CREATE TABLE readings (reading_id INTEGER PRIMARY KEY, device_id INTEGER NOT NULL,
                               group_id INTEGER NOT NULL, ts INTEGER NOT NULL, value REAL);
        CREATE TABLE user_groups (user_id INTEGER, group_id INTEGER, PRIMARY KEY (user_id, group_id))
            WITHOUT ROWID;
        CREATE TABLE user_devices (user_id INTEGER, device_id INTEGER, PRIMARY KEY (user_id, device_id))
            WITHOUT ROWID;
        CREATE TABLE acl_docs (user_id INTEGER PRIMARY KEY, ids TEXT NOT NULL);
        """
    )
    with conn:
        conn.executemany(
            "INSERT INTO devices VALUES (?, ?)", zip(range(config.n_devices), group_of.tolist(), strict=True)
        )
        rows = zip(device.tolist(), group_of[device].tolist(), ts.tolist(), value.tolist(), strict=True)
        conn.executemany("INSERT INTO readings (device_id, group_id, ts, value) VALUES (?, ?, ?, ?)", rows)
    conn.executescript(
        """
        CREATE INDEX devices_group ON devices (group_id, device_id);
        CREATE INDEX readings_device_ts ON readings (device_id, ts);
        CREATE INDEX readings_group_ts ON readings (group_id, ts);
        CREATE INDEX readings_ts ON readings (ts);
        ANALYZE;
        """
    )
    return pd.Series(
        {
            "devices": config.n_devices,
            "groups": config.n_groups,
            "readings": config.n_readings,
            "load_s": time.perf_counter() - started,
        }
    )


def grant_groups(conn: sqlite3.Connection, user_id: int, group_ids: Sequence[int]) -> None:
    """Make ``user_id`` a member of ``group_ids`` and rewrite the user's terms-lookup document.

    Parameters
    ----------
    conn : sqlite3.Connection
        A connection to the fleet database (from :func:`build_fleet`).
    user_id : int
    group_ids : sequence of int

    Returns
    -------
    None
    """
    conn = _check_connection(conn)
    user_id = validate.non_negative_int("user_id", user_id)
    with conn:
        conn.executemany(
            "INSERT OR IGNORE INTO user_groups VALUES (?, ?)", [(user_id, int(g)) for g in group_ids]
        )
    _write_acl_doc(conn, user_id)


def _write_acl_doc(conn: sqlite3.Connection, user_id: int) -> None:
    ids = permitted_devices(conn, user_id)
    with conn:
        conn.execute("INSERT OR REPLACE INTO acl_docs VALUES (?, ?)", (user_id, json.dumps(ids.tolist())))


def refresh_access_table(conn: sqlite3.Connection) -> int:
    """Rebuild the precomputed ``user_devices`` table from groups; return its row count.

    This is the batch job behind approach 6: between two runs, the table is stale.

    Parameters
    ----------
    conn : sqlite3.Connection
        A connection to the fleet database (from :func:`build_fleet`).

    Returns
    -------
    int
        Rows in ``user_devices``.
    """
    conn = _check_connection(conn)
    with conn:
        conn.execute("DELETE FROM user_devices")
        conn.execute(
            "INSERT INTO user_devices SELECT ug.user_id, d.device_id FROM user_groups ug"
            " JOIN devices d ON d.group_id = ug.group_id"
        )
    return int(conn.execute("SELECT count(*) FROM user_devices").fetchone()[0])


def permitted_devices(conn: sqlite3.Connection, user_id: int) -> np.ndarray:
    """The sorted device ids ``user_id`` may read *now* (users → groups → devices).

    Parameters
    ----------
    conn : sqlite3.Connection
        A connection to the fleet database (from :func:`build_fleet`).
    user_id : int

    Returns
    -------
    numpy.ndarray
        int64 device ids, ascending.
    """
    conn = _check_connection(conn)
    user_id = validate.non_negative_int("user_id", user_id)
    rows = conn.execute(
        "SELECT d.device_id FROM user_groups ug JOIN devices d ON d.group_id = ug.group_id"
        " WHERE ug.user_id = ? ORDER BY d.device_id",
        (user_id,),
    ).fetchall()
    return np.array([r[0] for r in rows], dtype=np.int64)


def _user_groups(conn: sqlite3.Connection, user_id: int) -> list[int]:
    rows = conn.execute("SELECT group_id FROM user_groups WHERE user_id = ? ORDER BY group_id", (user_id,))
    return [r[0] for r in rows]


def _in_list_sql(ids: Sequence[int], page_size: int, offset: int = 0) -> str:
    # The literal SQL text a client sends to an engine without bound parameters (ClickHouse over HTTP).
    return (
        f"SELECT {_READING_COLUMNS} FROM readings r WHERE r.device_id IN ({','.join(map(str, ids))})"
        f" {_ORDER} LIMIT {int(page_size)} OFFSET {int(offset)}"
    )


def fetch_page(
    conn: sqlite3.Connection,
    approach: str,
    user_id: int,
    *,
    page_size: int = 50,
    offset: int = 0,
    ids: Sequence[int] | None = None,
    chunk_size: int = 10_000,
    bitmap: np.ndarray | None = None,
) -> dict:
    """One page of the newest readings ``user_id`` may see, fetched the way ``approach`` does it.

    Parameters
    ----------
    approach : str
        One of :data:`APPROACHES`.
    ids : sequence of int, optional
        The permitted device ids as the application holds them (approaches 1, 2 and 7 send or encode
        them). Defaults to :func:`permitted_devices` read now; pass an older list to model a cache.
    chunk_size : int
        Ids per query for "chunked IN lists".
    bitmap : numpy.ndarray of bool, optional
        For "bitmap filter": membership by device id. Defaults to one built from ``ids``.

    Returns
    -------
    dict
        ``rows`` (list of ``(reading_id, device_id, ts)``), ``request_bytes`` (SQL text plus any bound
        payload the client sends), ``n_requests``, ``rows_fetched`` (rows returned to the application
        before merging) and ``sql`` (the first statement).
    """
    conn = _check_connection(conn)
    approach = validate.choice("approach", approach, APPROACHES)
    user_id = validate.non_negative_int("user_id", user_id)
    page_size = validate.positive_int("page_size", page_size)
    offset = validate.non_negative_int("offset", offset)
    chunk_size = validate.positive_int("chunk_size", chunk_size)
    needs_ids = approach in ("giant IN list", "chunked IN lists", "bitmap filter")
    if needs_ids and ids is None:
        ids = permitted_devices(conn, user_id).tolist()
    tail = f" {_ORDER} LIMIT ? OFFSET ?"
    if approach == "giant IN list":
        sql = _in_list_sql(ids, page_size, offset)
        rows = conn.execute(sql).fetchall()
        return _page(rows, len(sql.encode()), 1, len(rows), sql)
    if approach == "chunked IN lists":
        return _chunked_page(conn, list(ids), page_size, offset, chunk_size)
    if approach == "terms lookup":
        sql = (
            f"SELECT {_READING_COLUMNS} FROM readings r WHERE r.device_id IN (SELECT value FROM"
            f" json_each((SELECT ids FROM acl_docs WHERE user_id = ?))){tail}"
        )
        params: tuple = (user_id, page_size, offset)
    elif approach == "join ACL tables":
        sql = (
            f"SELECT {_READING_COLUMNS} FROM user_groups ug JOIN devices d ON d.group_id = ug.group_id"
            f" JOIN readings r ON r.device_id = d.device_id WHERE ug.user_id = ?{tail}"
        )
        params = (user_id, page_size, offset)
    elif approach == "denormalised group id":
        groups = _user_groups(conn, user_id)
        marks = ",".join("?" * len(groups))
        sql = f"SELECT {_READING_COLUMNS} FROM readings r WHERE r.group_id IN ({marks}){tail}"
        params = (*groups, page_size, offset)
    elif approach == "precomputed access table":
        sql = (
            f"SELECT {_READING_COLUMNS} FROM user_devices ud JOIN readings r ON r.device_id = ud.device_id"
            f" WHERE ud.user_id = ?{tail}"
        )
        params = (user_id, page_size, offset)
    else:  # bitmap filter
        if bitmap is None:
            n = int(conn.execute("SELECT max(device_id) + 1 FROM devices").fetchone()[0])
            bitmap = np.zeros(n, dtype=bool)
            bitmap[np.asarray(ids, dtype=np.int64)] = True
        allowed = bitmap.tolist()  # a list index is the cheapest membership test a Python callback can do
        size = len(allowed)
        conn.create_function("acl_allows", 1, lambda d: d < size and allowed[d], deterministic=True)
        # Walk the readings newest first and test each device against the bitmap: no id list at all.
        sql = f"SELECT {_READING_COLUMNS} FROM readings r INDEXED BY readings_ts WHERE acl_allows(r.device_id){tail}"
        params = (page_size, offset)
        rows = conn.execute(sql, params).fetchall()
        payload = roaring_size_bytes(np.flatnonzero(bitmap))
        return _page(rows, len(sql.encode()) + payload, 1, len(rows), sql)
    rows = conn.execute(sql, params).fetchall()
    bound = 8 * len(params)  # every bound value here is a 64-bit integer
    return _page(rows, len(sql.encode()) + bound, 1, len(rows), sql)


def _page(rows: list, request_bytes: int, n_requests: int, rows_fetched: int, sql: str) -> dict:
    return {
        "rows": rows,
        "request_bytes": int(request_bytes),
        "n_requests": int(n_requests),
        "rows_fetched": int(rows_fetched),
        "sql": sql,
    }


def _chunked_page(
    conn: sqlite3.Connection, ids: list[int], page_size: int, offset: int, chunk_size: int
) -> dict:
    # No chunk knows the others' rows, so each must return offset + page_size candidates; the application
    # merges them by the sort key and only then can skip the offset. Deep pages cost every chunk.
    want = offset + page_size
    merged, request_bytes, fetched, first_sql = [], 0, 0, ""
    for start in range(0, max(len(ids), 1), chunk_size):
        chunk = ids[start : start + chunk_size]
        marks = ",".join("?" * len(chunk))
        sql = f"SELECT {_READING_COLUMNS} FROM readings r WHERE r.device_id IN ({marks}) {_ORDER} LIMIT ?"
        rows = conn.execute(sql, (*chunk, want)).fetchall()
        first_sql = first_sql or sql
        request_bytes += len(sql.encode()) + 8 * (len(chunk) + 1)
        fetched += len(rows)
        merged.append(rows)
    # Each chunk's rows are already newest first; merge them the way the database would have sorted.
    ordered = heapq.merge(*merged, key=lambda row: (row[2], row[0]), reverse=True)
    page = list(ordered)[offset:want]
    return _page(page, request_bytes, len(merged), fetched, first_sql)


def chunked_page_cost(n_ids: int, chunk_size: int, page_size: int, offset: int) -> dict:
    """Requests and rows a chunked IN-list page needs (upper bound: every chunk has enough rows).

    ``n_requests = ceil(n_ids / chunk_size)`` and ``rows_fetched = n_requests * (offset + page_size)``:
    the application reads ``n_requests`` times more rows than it shows, and the factor grows with depth.

    Parameters
    ----------
    n_ids : int
        Ids in the permission set.
    chunk_size : int
        Ids per request.
    page_size : int
        Rows shown.
    offset : int
        Rows skipped before the page.

    Returns
    -------
    dict
        ``n_requests`` and ``rows_fetched``.
    """
    n_ids = validate.positive_int("n_ids", n_ids)
    chunk_size = validate.positive_int("chunk_size", chunk_size)
    page_size = validate.positive_int("page_size", page_size)
    offset = validate.non_negative_int("offset", offset)
    n_requests = math.ceil(n_ids / chunk_size)
    return {"n_requests": n_requests, "rows_fetched": n_requests * (offset + page_size)}


def deep_page_costs(
    conn: sqlite3.Connection,
    user_id: int,
    offsets: Sequence[int],
    *,
    page_size: int = 50,
    chunk_size: int = 10_000,
) -> pd.DataFrame:
    """Fetch chunked IN-list pages at several offsets and set the measured work beside the model.

    Parameters
    ----------
    conn : sqlite3.Connection
        A connection to the fleet database (from :func:`build_fleet`).
    user_id : int
    offsets : sequence of int
        Page offsets to fetch.
    page_size : int
    chunk_size : int

    Returns
    -------
    pandas.DataFrame
        ``offset``, ``n_requests``, ``rows_fetched``, ``model_rows_fetched`` (:func:`chunked_page_cost`),
        ``ms`` (one run) and ``same_as_join`` (the merged page equals the live join's page).
    """
    conn = _check_connection(conn)
    user_id = validate.non_negative_int("user_id", user_id)
    offsets = [validate.non_negative_int(f"offsets[{i}]", o) for i, o in enumerate(offsets)]
    ids = permitted_devices(conn, user_id).tolist()
    if not ids:
        raise ValueError(f"user {user_id} has no devices")
    records = []
    for offset in offsets:
        started = time.perf_counter()
        page = fetch_page(
            conn,
            "chunked IN lists",
            user_id,
            page_size=page_size,
            offset=offset,
            ids=ids,
            chunk_size=chunk_size,
        )
        ms = 1000 * (time.perf_counter() - started)
        join = fetch_page(conn, "join ACL tables", user_id, page_size=page_size, offset=offset)
        records.append(
            {
                "offset": offset,
                "n_requests": page["n_requests"],
                "rows_fetched": page["rows_fetched"],
                "model_rows_fetched": chunked_page_cost(len(ids), chunk_size, page_size, offset)[
                    "rows_fetched"
                ],
                "ms": ms,
                "same_as_join": page["rows"] == join["rows"],
            }
        )
    return pd.DataFrame.from_records(records)


# ----------------------------------------------------------------------------- request sizes per store


def _digits_total(n: int) -> int:
    # Total decimal digits of the integers 0 .. n-1 (BSON array keys are "0", "1", ...).
    total, low, width = 0, 0, 1
    while low < n:
        high = min(n, 10**width)
        total += (high - low) * width
        low, width = high, width + 1
    return total


_BSON_VALUE_BYTES = {
    "int32": 4,
    "int64": 8,
    "objectid": 12,
    "uuid_string": 4 + 36 + 1,
    "uuid_binary": 4 + 1 + 16,
}


def bson_in_query_bytes(n_ids: int, id_type: str = "int64", field: str = "device_id") -> int:
    """Exact size in bytes of the BSON query document ``{field: {"$in": [n ids]}}``.

    A BSON element is a type byte, the key as a NUL-terminated string and the value; an array is a
    document whose keys are "0", "1", ...; a document is a 4-byte length, its elements and a NUL. Value
    sizes: int32 4, int64 8, ObjectId 12, a UUID string 4 + 36 + 1, a UUID as binary subtype 4: 4 + 1 + 16.

    Parameters
    ----------
    n_ids : int
        Ids in the ``$in`` array, >= 1.
    id_type : str
        "int32", "int64", "objectid", "uuid_string" or "uuid_binary".
    field : str
        The queried field's name.

    Returns
    -------
    int
        Bytes.
    """
    n_ids = validate.non_negative_int("n_ids", n_ids)
    id_type = validate.choice("id_type", id_type, _BSON_VALUE_BYTES)
    if not isinstance(field, str) or not field:
        raise ValueError("field must be a non-empty string")
    keys = _digits_total(n_ids) + n_ids  # each key plus its NUL
    array = 4 + n_ids * (1 + _BSON_VALUE_BYTES[id_type]) + keys + 1
    in_doc = 4 + 1 + len("$in") + 1 + array + 1
    return 4 + 1 + len(field.encode()) + 1 + in_doc + 1


def encode_bson(doc: dict) -> bytes:
    """A tiny BSON encoder (documents, arrays, int32/int64, strings, 12-byte ObjectIds) for the tests.

    Python ints become int32 when they fit, else int64, as PyMongo does; ``bytes`` of length 12 are
    ObjectIds.

    Parameters
    ----------
    doc : dict
        String keys; values dict, list, int, str or 12-byte ``bytes``.

    Returns
    -------
    bytes
        The BSON encoding.
    """
    if not isinstance(doc, dict):
        raise TypeError(f"doc must be a dict, got {type(doc).__name__}")
    body = b"".join(_bson_element(str(k), v) for k, v in doc.items())
    return struct.pack("<i", len(body) + 5) + body + b"\x00"


def _bson_element(key: str, value: object) -> bytes:
    name = key.encode() + b"\x00"
    if isinstance(value, bool):
        return b"\x08" + name + (b"\x01" if value else b"\x00")
    if isinstance(value, int):
        if -(2**31) <= value < 2**31:
            return b"\x10" + name + struct.pack("<i", value)
        return b"\x12" + name + struct.pack("<q", value)
    if isinstance(value, str):
        raw = value.encode() + b"\x00"
        return b"\x02" + name + struct.pack("<i", len(raw)) + raw
    if isinstance(value, bytes) and len(value) == 12:
        return b"\x07" + name + value
    if isinstance(value, dict):
        return b"\x03" + name + encode_bson(value)
    if isinstance(value, (list, tuple)):
        return b"\x04" + name + encode_bson({str(i): v for i, v in enumerate(value)})
    raise TypeError(f"cannot encode {type(value).__name__} as BSON")


def _id_array(ids: object) -> np.ndarray:
    """``ids`` as int64, at most ``MAX_ROARING_IDS``; a str, None or non-integers refused as ``ids``."""
    if isinstance(ids, (str, bytes)) or ids is None:
        raise TypeError(f"ids must be a sequence of integers, got {ids!r}")
    try:
        raw = np.asarray(ids)
        array = raw.astype(np.int64)
    except (TypeError, ValueError, OverflowError):
        raise TypeError(f"ids must be a sequence of integers, got {type(ids).__name__}") from None
    if raw.size and raw.dtype.kind not in "iu":
        raise TypeError(f"ids must hold integers, got dtype {raw.dtype}")
    if array.size > MAX_ROARING_IDS:
        raise ValueError(f"ids must hold at most {MAX_ROARING_IDS:,} ids, got {array.size:,}")
    return array


def request_sizes(ids: Sequence[int], *, uuid_ids: bool = False) -> dict:
    """What each store would receive for "readings of these devices", and whether it exceeds the limit.

    Parameters
    ----------
    ids : sequence of int
        The permitted device ids.
    uuid_ids : bool
        Model the ids as 36-character UUID strings instead of integers (same count).

    Returns
    -------
    dict
        ``n_ids``; ``es_terms`` and ``es_json_bytes`` (a ``terms`` filter in a search body);
        ``clickhouse_sql_bytes`` (``SELECT ... WHERE device_id IN (...)``); ``mongodb_bson_bytes``
        (``{"device_id": {"$in": [...]}}``); ``sqlite_variables`` (bound parameters for one statement);
        and one boolean ``*_exceeded`` per store against its documented default.
    """
    ids = _id_array(ids)
    if ids.ndim != 1:
        raise ValueError("ids must be a one-dimensional sequence of integers")
    n = int(ids.size)
    if uuid_ids:
        id_text_bytes = n * (36 + 2)  # quoted in SQL and JSON
    else:
        id_text_bytes = int(sum(len(str(int(i))) for i in ids))
    separators = max(n - 1, 0)
    es_json = len('{"query":{"bool":{"filter":{"terms":{"device_id":[]}}}}}') + id_text_bytes + separators
    ch_sql = len("SELECT reading_id, device_id, ts FROM readings WHERE device_id IN () ") + id_text_bytes
    ch_sql += separators + len("ORDER BY ts DESC LIMIT 50")
    bson = bson_in_query_bytes(n, "uuid_string" if uuid_ids else "int64")
    return {
        "n_ids": n,
        "es_terms": n,
        "es_json_bytes": es_json,
        "es_exceeded": n > ES_MAX_TERMS_COUNT,
        "clickhouse_sql_bytes": ch_sql,
        "clickhouse_exceeded": ch_sql > CLICKHOUSE_MAX_QUERY_SIZE_BYTES,
        "mongodb_bson_bytes": bson,
        "mongodb_exceeded": bson > MONGODB_MAX_BSON_BYTES,
        "sqlite_variables": n,
        "sqlite_exceeded": n > SQLITE_UPSTREAM_MAX_VARIABLES,
    }


def limit_table(
    n_ids: int, *, id_space: int = 10_000_000, seed: int | np.random.Generator | None = 0
) -> pd.DataFrame:
    """One row per store: the request a plain ID list makes for ``n_ids`` ids, the limit, the headroom.

    Ids are drawn without replacement from ``[0, id_space)`` (7-digit ids for the default space).

    Parameters
    ----------
    n_ids : int
        Ids in the permission set.
    id_space : int
        Ids are drawn from ``[0, id_space)``.
    seed : int, numpy.random.Generator or None

    Returns
    -------
    pandas.DataFrame
        One row per (store, id kind): ``store``, ``ids``, ``request``, ``limit``, ``unit``, ``request_over_limit``.
    """
    n_ids = validate.bounded_int("n_ids", n_ids, MAX_ROARING_IDS)
    id_space = validate.bounded_int("id_space", id_space, MAX_ID_SPACE)
    if n_ids > id_space:
        raise ValueError(f"n_ids ({n_ids}) must be <= id_space ({id_space})")
    rng = validate.rng_from_seed(seed)
    ids = np.sort(rng.choice(id_space, size=n_ids, replace=False))
    rows = []
    for uuid in (False, True):
        sizes = request_sizes(ids, uuid_ids=uuid)
        kind = "UUID strings" if uuid else "integer ids"
        rows += [
            ("Elasticsearch terms", kind, "terms", sizes["es_terms"], ES_MAX_TERMS_COUNT),
            (
                "Alibaba Cloud ES Serverless terms",
                kind,
                "terms",
                sizes["es_terms"],
                ES_SERVERLESS_MAX_TERMS_COUNT,
            ),
            (
                "ClickHouse SQL text",
                kind,
                "bytes",
                sizes["clickhouse_sql_bytes"],
                CLICKHOUSE_MAX_QUERY_SIZE_BYTES,
            ),
            ("MongoDB $in query (BSON)", kind, "bytes", sizes["mongodb_bson_bytes"], MONGODB_MAX_BSON_BYTES),
            (
                "SQLite bound parameters",
                kind,
                "variables",
                sizes["sqlite_variables"],
                SQLITE_UPSTREAM_MAX_VARIABLES,
            ),
        ]
    table = pd.DataFrame(rows, columns=["store", "ids", "unit", "request", "limit"])
    table["request_over_limit"] = table["request"] / table["limit"]
    table["breaks"] = table["request"] > table["limit"]
    return table


# ----------------------------------------------------------------------------- the sweep


def _grant_nested_users(conn: sqlite3.Connection, config: FleetConfig, k_values: list[int], seed) -> dict:
    # User i gets the first k_i / devices_per_group groups of one random order, so larger users contain
    # smaller ones and every approach must return exactly the same rows for a user.
    rng = validate.rng_from_seed(seed)
    order = rng.permutation(config.n_groups).tolist()
    users = {}
    for user_id, k in enumerate(k_values, start=1):
        grant_groups(conn, user_id, order[: k // config.devices_per_group])
        users[k] = user_id
    refresh_access_table(conn)
    return users


def run_approach_sweep(
    conn: sqlite3.Connection,
    config: FleetConfig,
    k_values: Sequence[int],
    *,
    page_size: int = 50,
    chunk_size: int = 10_000,
    repeats: int = 3,
    seed: int | np.random.Generator | None = 0,
) -> experiment.Run:
    """Fetch the first page for users with ``k`` permitted devices, with every approach, on real SQLite.

    ``conn`` must hold a fleet from :func:`build_fleet` with the same ``config``. Users are created here.

    Parameters
    ----------
    conn : sqlite3.Connection
        A connection to the fleet database (from :func:`build_fleet`).
    config : FleetConfig
        The fleet ``conn`` holds.
    k_values : sequence of int
        Permitted devices per user (multiples of the group size).
    page_size : int
    chunk_size : int
        Ids per request for the chunked approach.
    repeats : int
        Timed runs per query, 1 to ``MAX_REPEATS``.
    seed : int, numpy.random.Generator or None

    Returns
    -------
    experiment.Run
        Frame (its ``attrs["users"]`` maps k to the user id): one row per (approach, k): ``approach``, ``k_devices``, ``request_bytes``, ``n_requests``,
        ``rows_fetched``, ``ms`` (median of ``repeats`` runs), ``correct`` (same rows as the join) and
        the modelled store limits the approach's request breaks (``breaks``: a comma-separated list).
    """
    conn = _check_connection(conn)
    ks = validate.sequence_of_positive_ints("k_values", k_values)
    for k in ks:
        if k % config.devices_per_group or k > config.n_devices:
            raise ValueError(
                f"k_values must be multiples of {config.devices_per_group} up to n_devices, got {k}"
            )
    page_size = validate.positive_int("page_size", page_size)
    chunk_size = validate.positive_int("chunk_size", chunk_size)
    repeats = validate.int_in_range("repeats", repeats, 1, MAX_REPEATS)
    users = _grant_nested_users(conn, config, ks, seed)
    records = []
    for k in ks:
        user = users[k]
        ids = permitted_devices(conn, user).tolist()
        bitmap = np.zeros(config.n_devices, dtype=bool)
        bitmap[ids] = True
        truth = fetch_page(conn, "join ACL tables", user, page_size=page_size)["rows"]
        n_groups = len(ids) // config.devices_per_group
        for approach in APPROACHES:
            kwargs = {"page_size": page_size, "ids": ids, "chunk_size": chunk_size, "bitmap": bitmap}
            result = fetch_page(conn, approach, user, **kwargs)
            ms = 1000 * median_seconds(
                lambda a=approach, u=user, kw=kwargs: fetch_page(conn, a, u, **kw), repeats=repeats
            )
            records.append(
                {
                    "approach": approach,
                    "k_devices": k,
                    "request_bytes": result["request_bytes"],
                    "n_requests": result["n_requests"],
                    "rows_fetched": result["rows_fetched"],
                    "ms": ms,
                    "correct": result["rows"] == truth,
                    "breaks": ", ".join(_breaks(approach, len(ids), n_groups, result, chunk_size)),
                }
            )
    frame = pd.DataFrame.from_records(records)
    frame.attrs["users"] = users  # k -> user id, for the edge-case demos
    return experiment.Run.create(
        frame, {"n_users": len(ks), "repeats": repeats, "sqlite": sqlite3.sqlite_version}
    )


def _breaks(approach: str, k: int, n_groups: int, result: dict, chunk_size: int) -> list[str]:
    # Which documented default the same request would exceed in each store (modelled, not run).
    out = []
    if approach == "giant IN list":
        if k > ES_MAX_TERMS_COUNT:
            out.append("ES terms")
        if result["request_bytes"] > CLICKHOUSE_MAX_QUERY_SIZE_BYTES:
            out.append("ClickHouse query size")
        if k > SQLITE_UPSTREAM_MAX_VARIABLES:
            out.append("SQLite variables (if bound)")
        if bson_in_query_bytes(k) > MONGODB_MAX_BSON_BYTES:
            out.append("MongoDB 16 MiB")
    elif approach == "chunked IN lists":
        if min(k, chunk_size) > ES_SERVERLESS_MAX_TERMS_COUNT:
            out.append("ES Serverless terms")
        if result["n_requests"] > 1:
            out.append("deep pages")
    elif approach == "terms lookup":
        if k > ES_MAX_TERMS_COUNT:
            out.append("ES terms (lookup counts)")
    elif approach == "denormalised group id":
        if n_groups > ES_SERVERLESS_MAX_TERMS_COUNT:
            out.append("ES Serverless terms")
    elif approach == "bitmap filter" and result["request_bytes"] > CLICKHOUSE_MAX_QUERY_SIZE_BYTES:
        out.append("ClickHouse query size")
    return out


def plot_approaches(sweep: pd.DataFrame, axes: Sequence[Axes] | None = None) -> Sequence[Axes]:
    """Request size (top) and median latency (bottom) against permitted devices, one line per approach.

    The panels are stacked so that the figure keeps the column's width and its text stays legible.

    Parameters
    ----------
    sweep : pandas.DataFrame
        :func:`run_approach_sweep`'s frame.
    axes : two matplotlib Axes, optional

    Returns
    -------
    numpy.ndarray
        The two Axes.
    """
    sweep = validate.frame_columns("sweep", sweep, ["approach", "k_devices", "request_bytes", "ms"])
    from syslab import plot as plot_module

    axes = plot_module.panels(1, 2, axes, figsize=(7.0, 7.4))
    left, right = axes
    markers = "osD^v<>"
    for marker, (approach, group) in zip(markers, sweep.groupby("approach", sort=False), strict=False):
        left.plot(group["k_devices"], group["request_bytes"], marker=marker, label=approach)
        right.plot(group["k_devices"], group["ms"], marker=marker, label=approach)
    left.axhline(CLICKHOUSE_MAX_QUERY_SIZE_BYTES, color="0.3", ls="--", lw=1)
    left.annotate(
        "ClickHouse max_query_size",
        (sweep["k_devices"].min(), CLICKHOUSE_MAX_QUERY_SIZE_BYTES * 1.3),
        fontsize=8,
    )
    left.axhline(MONGODB_MAX_BSON_BYTES, color="0.3", ls=":", lw=1)
    left.annotate("MongoDB 16 MiB", (sweep["k_devices"].min(), MONGODB_MAX_BSON_BYTES * 1.3), fontsize=8)
    for ax in (left, right):
        ax.axvline(ES_MAX_TERMS_COUNT, color="0.6", ls="-.", lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("permitted devices")
    left.set_ylabel("request size (bytes)")
    right.set_ylabel("first page, median (ms)")
    right.annotate("ES 65,536 terms", (ES_MAX_TERMS_COUNT * 1.05, right.get_ylim()[0] * 1.5), fontsize=8)
    right.legend(fontsize=8, loc="upper left")
    return axes


# ----------------------------------------------------------------------------- bitmaps


def roaring_size_bytes(ids: Sequence[int] | np.ndarray) -> int:
    """Bytes of a roaring-style bitmap of ``ids`` (array and bitmap containers, no run containers).

    Values are split by their high 16 bits into chunks; a chunk holding at most 4,096 values is a sorted
    array of 16-bit values (2 bytes each), a fuller one a 65,536-bit bitmap (8 KiB). Each container adds
    a 4-byte header (its key and cardinality) {Chambi et al. 2016}.

    Parameters
    ----------
    ids : sequence of int
        Values in ``[0, 2**32)``.

    Returns
    -------
    int
        Bytes of the model bitmap.
    """
    values = np.unique(_id_array(ids))
    if values.size and (values[0] < 0 or values[-1] >= 2**32):
        raise ValueError("ids must lie in [0, 2**32)")
    if values.size == 0:
        return 0
    _, counts = np.unique(values >> ROARING_CHUNK_BITS, return_counts=True)
    payload = np.where(counts <= ROARING_ARRAY_MAX, 2 * counts, ROARING_BITMAP_CONTAINER_BYTES)
    return int(payload.sum() + ROARING_HEADER_BYTES_PER_CONTAINER * counts.size)


def theory_roaring_bytes(n_ids: int, id_space: int) -> float:
    """Expected roaring size for ``n_ids`` uniform random ids in ``[0, id_space)`` (full chunks assumed).

    With ``C = id_space / 2^16`` chunks each holds about ``n/C`` values: an array (``2 n/C`` bytes) while
    ``n/C <= 4096``, i.e. a density below 1/16, else an 8 KiB bitmap.

    Parameters
    ----------
    n_ids : int
    id_space : int

    Returns
    -------
    float
        Bytes.
    """
    n_ids = validate.positive_int("n_ids", n_ids)
    id_space = validate.positive_int("id_space", id_space)
    chunks = math.ceil(id_space / 2**ROARING_CHUNK_BITS)
    per_chunk = n_ids / chunks
    container = 2 * per_chunk if per_chunk <= ROARING_ARRAY_MAX else ROARING_BITMAP_CONTAINER_BYTES
    return chunks * (container + ROARING_HEADER_BYTES_PER_CONTAINER)


def sweep_bitmap_sizes(
    k_values: Sequence[int],
    id_space: int,
    *,
    group_size: int = 100,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Sizes of one user's permission set as an id list, a dense bitmap and a roaring bitmap.

    Two layouts of the same number of ids: ``scattered`` (uniform over the id space) and ``grouped``
    (whole groups of ``group_size`` consecutive ids, as when devices are numbered per site).

    Parameters
    ----------
    k_values : sequence of int
        Permission-set sizes, each at most ``id_space``.
    id_space : int
    group_size : int
        Consecutive ids per group in the grouped layout.
    seed : int, numpy.random.Generator or None

    Returns
    -------
    pandas.DataFrame
        ``k_devices``, ``layout``, ``int64_list_bytes``, ``dense_bytes``, ``roaring_bytes``,
        ``theory_roaring_bytes`` (scattered only, NaN otherwise).
    """
    ks = validate.sequence_of_positive_ints("k_values", k_values)
    id_space = validate.int_in_range("id_space", id_space, 1, MAX_ID_SPACE)
    group_size = validate.int_in_range("group_size", group_size, 1, id_space)
    if max(ks) > MAX_ROARING_IDS:
        raise ValueError(f"k_values must be at most {MAX_ROARING_IDS:,}, got {max(ks):,}")
    rng = validate.rng_from_seed(seed)
    dense = math.ceil(id_space / 8)
    records = []
    for k in ks:
        if k > id_space:
            raise ValueError(f"k_values must be <= id_space ({id_space}), got {k}")
        scattered = rng.choice(id_space, size=k, replace=False)
        n_groups = math.ceil(k / group_size)
        starts = rng.choice(id_space // group_size, size=n_groups, replace=False) * group_size
        grouped = (starts[:, None] + np.arange(group_size)[None, :]).ravel()[:k]
        for layout, ids in (("scattered", scattered), ("grouped", grouped)):
            records.append(
                {
                    "k_devices": k,
                    "layout": layout,
                    "int64_list_bytes": 8 * k,
                    "dense_bytes": dense,
                    "roaring_bytes": roaring_size_bytes(ids),
                    "theory_roaring_bytes": theory_roaring_bytes(k, id_space)
                    if layout == "scattered"
                    else np.nan,
                }
            )
    return pd.DataFrame.from_records(records)


def plot_bitmap_sizes(sizes: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Bytes of each representation against the number of permitted ids (log-log).

    Parameters
    ----------
    sizes : pandas.DataFrame
        :func:`sweep_bitmap_sizes`'s frame.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    sizes = validate.frame_columns(
        "sizes", sizes, ["k_devices", "layout", "int64_list_bytes", "dense_bytes", "roaring_bytes"]
    )
    ax = axes_or_new(ax, figsize=(7, 4.2))
    first = sizes[sizes["layout"] == "scattered"]
    ax.plot(first["k_devices"], first["int64_list_bytes"], marker="o", label="list of 64-bit ids")
    ax.plot(first["k_devices"], first["dense_bytes"], ls="--", label="dense bitmap over the id space")
    for marker, (layout, group) in zip("sD", sizes.groupby("layout", sort=False), strict=False):
        ax.plot(group["k_devices"], group["roaring_bytes"], marker=marker, label=f"roaring, {layout} ids")
    ax.plot(first["k_devices"], first["theory_roaring_bytes"], ls=":", color="0.2", label="roaring theory")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("permitted devices")
    ax.set_ylabel("size (bytes)")
    ax.legend(fontsize=8)
    return ax


MAX_ROARING_IDS = 5_000_000
MAX_ID_SPACE = 2**32


def _layouts(k: int, id_space: int, group_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    scattered = rng.choice(id_space, size=k, replace=False)
    n_groups = math.ceil(k / group_size)
    starts = rng.choice(id_space // group_size, size=n_groups, replace=False) * group_size
    grouped = (starts[:, None] + np.arange(group_size)[None, :]).ravel()[:k]
    return {"scattered": np.sort(scattered), "grouped": np.sort(grouped)}


def measure_roaring(
    k_values: Sequence[int],
    id_space: int,
    *,
    group_size: int = 100,
    probe_share: float = 0.1,
    repeats: int = 5,
    seed: int | np.random.Generator | None = 0,
) -> experiment.Run:
    """Real roaring bitmaps (``pyroaring``, CRoaring): sizes and intersection times, with and without runs.

    For each permission-set size and layout (``scattered`` ids, or ``grouped``: whole groups of
    ``group_size`` consecutive ids), the ids are loaded into a ``pyroaring.BitMap`` without
    run containers (``optimize=False``: array and bitmap containers only, what
    :func:`roaring_size_bytes` models) and again after ``run_optimize()`` (run containers where
    they are smaller). Sizes are the portable serialisation (``serialize()``); the container mix
    comes from ``get_statistics()``. Each bitmap is intersected (``&``) with a bitmap of
    ``probe_share x id_space`` random ids (say, the devices that reported in the last hour),
    timed with :func:`syslab.timing.median_seconds`.

    Parameters
    ----------
    k_values : sequence of int
        Permitted ids per user, each 1 to min(id_space, ``MAX_ROARING_IDS``).
    id_space : int
        Ids are drawn from ``[0, id_space)``, at most 2**32.
    group_size : int
        Consecutive ids per group in the grouped layout, 1 to id_space.
    probe_share : float
        Share (0-1] of the id space in the bitmap intersected with.
    repeats : int
        Timed intersections per bitmap (median kept), 1 to 100.
    seed : int, numpy.random.Generator or None

    Returns
    -------
    experiment.Run
        Frame: one row per (k_devices, layout, run_containers): ``k_devices``, ``layout``,
        ``run_containers`` (bool), ``serialized_bytes``, ``model_bytes``
        (:func:`roaring_size_bytes`), ``n_array``, ``n_bitmap``, ``n_run`` (containers),
        ``intersect_us`` (median microseconds per intersection). Summary: ``pyroaring_version``,
        ``probe_ids``.
    """
    import pyroaring

    from syslab import timing

    ks = validate.sequence_of_positive_ints("k_values", k_values)
    id_space = validate.int_in_range("id_space", id_space, 1, MAX_ID_SPACE)
    group_size = validate.int_in_range("group_size", group_size, 1, id_space)
    probe_share = validate.float_in_range("probe_share", probe_share, 0.0, 1.0, low_inclusive=False)
    repeats = validate.int_in_range("repeats", repeats, 1, 100)
    if len(ks) > 50:
        raise ValueError(f"k_values must hold at most 50 sizes, got {len(ks)}")
    for k in ks:
        validate.int_in_range("k_values", k, 1, min(id_space, MAX_ROARING_IDS))
    rng = validate.rng_from_seed(seed)
    n_probe = max(1, int(probe_share * id_space))
    if n_probe > MAX_ROARING_IDS:
        raise ValueError(f"probe_share x id_space must be at most {MAX_ROARING_IDS:,} ids, got {n_probe:,}")
    probe = pyroaring.BitMap(np.sort(rng.choice(id_space, size=n_probe, replace=False)).astype(np.uint32))
    probe.run_optimize()
    rows = []
    for k in ks:
        for layout, ids in _layouts(k, id_space, group_size, rng).items():
            for runs in (False, True):
                bitmap = pyroaring.BitMap(ids.astype(np.uint32), optimize=False)
                if runs:
                    bitmap.run_optimize()
                stats = bitmap.get_statistics()
                seconds = timing.median_seconds(
                    lambda bitmap=bitmap: bitmap & probe, repeats=repeats, max_total_s=2.0
                )
                rows.append(
                    {
                        "k_devices": k,
                        "layout": layout,
                        "run_containers": runs,
                        "serialized_bytes": len(bitmap.serialize()),
                        "model_bytes": roaring_size_bytes(ids),
                        "n_array": stats["n_array_containers"],
                        "n_bitmap": stats["n_bitset_containers"],
                        "n_run": stats["n_run_containers"],
                        "intersect_us": 1e6 * seconds,
                    }
                )
    from importlib import metadata

    version = metadata.version("pyroaring")
    summary = {"pyroaring_version": version, "probe_ids": n_probe}
    return experiment.Run.create(pd.DataFrame(rows), summary, pyroaring=version)


def plot_roaring_sizes(measured: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Serialised bytes of real roaring bitmaps against permitted ids, with and without run containers.

    Parameters
    ----------
    measured : pandas.DataFrame
        :func:`measure_roaring`'s frame.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    measured = validate.frame_columns(
        "measured", measured, ["k_devices", "layout", "run_containers", "serialized_bytes", "model_bytes"]
    )
    ax = axes_or_new(ax)
    for (layout, runs), group in measured.groupby(["layout", "run_containers"], sort=False):
        style = "-" if runs else "--"
        marker = "o" if layout == "scattered" else "s"
        text = "with run containers" if runs else "arrays and bitmaps only"
        ax.plot(
            group["k_devices"], group["serialized_bytes"], style, marker=marker, label=f"{layout}, {text}"
        )
    model = measured[(measured["layout"] == "scattered") & ~measured["run_containers"]]
    ax.plot(model["k_devices"], model["model_bytes"], ":", color="0.2", label="model (no runs)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    return axis_label(ax, "permitted devices", "serialised size (bytes)")


# ----------------------------------------------------------------------------- plans on three engines

MAX_LAG_STEPS = 10_000
MAX_GROUPS = 10_000
MAX_REVOCATIONS = 10_000_000
MAX_CONSISTENCY_STEPS = 100_000
MAX_REPEATS = 20
SQL_APPROACHES = ("literal IN list", "bound parameters", "temporary table", "join", "EXISTS, newest first")
MAX_PLAN_DEVICES = 1_000_000
MAX_PLAN_READINGS = 5_000_000
MAX_PLAN_TIMEOUT_S = 600.0


class _Dialect:
    """The few places SQLite, PostgreSQL and MariaDB differ for :func:`measure_sql_plans`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.mark = "?" if name == "sqlite" else "%s"

    def explain(self, sql: str) -> str:
        if self.name == "sqlite":
            return f"EXPLAIN QUERY PLAN {sql}"
        if self.name == "postgres":
            return f"EXPLAIN (COSTS OFF) {sql}"
        return f"EXPLAIN {sql}"

    def plan_text(self, rows: list) -> str:
        import re

        if self.name == "sqlite":
            text = " | ".join(str(row[-1]) for row in rows)
        elif self.name == "postgres":
            text = " | ".join(str(row[0]).strip().removeprefix("->").strip() for row in rows)
        else:  # MariaDB: table, access type, key and Extra of each row
            text = " | ".join(f"{row[2]}: {row[3]} key={row[5]} {row[9] or ''}".strip() for row in rows)
        # Id lists make plans unreadable: keep their first few characters.
        text = re.sub(r"'\{([^}]{40})[^}]*\}'", r"'{\1…}'", text)
        text = re.sub(r"\(([0-9, ]{40})[0-9, ]*\)", r"(\1…)", text)
        return text[:400]

    def newest_first_hint(self) -> str:
        return {"sqlite": " INDEXED BY readings_ts", "mariadb": " FORCE INDEX (readings_ts)"}.get(
            self.name, ""
        )

    def temp_table(self) -> str:
        if self.name == "postgres":
            return "CREATE TEMPORARY TABLE perm (device_id integer PRIMARY KEY) ON COMMIT DROP"
        return "CREATE TEMPORARY TABLE perm (device_id integer PRIMARY KEY)"


def _plan_queries(dialect: _Dialect, ids: list[int], user_id: int, page_size: int) -> dict[str, tuple]:
    mark = dialect.mark
    head = "SELECT r.reading_id, r.device_id, r.ts FROM readings r"
    tail = f" ORDER BY r.ts DESC, r.reading_id DESC LIMIT {int(page_size)}"
    literal = ",".join(str(i) for i in ids)
    if dialect.name == "postgres":
        bound = (f"{head} WHERE r.device_id = ANY({mark}){tail}", (ids,))
    else:
        bound = (f"{head} WHERE r.device_id IN ({','.join([mark] * len(ids))}){tail}", tuple(ids))
    return {
        "literal IN list": (f"{head} WHERE r.device_id IN ({literal}){tail}", ()),
        "bound parameters": bound,
        "temporary table": (f"{head} JOIN perm p ON p.device_id = r.device_id{tail}", ()),
        "join": (
            f"{head} JOIN user_devices u ON u.device_id = r.device_id AND u.user_id = {mark}{tail}",
            (user_id,),
        ),
        "EXISTS, newest first": (
            f"SELECT r.reading_id, r.device_id, r.ts FROM readings r{dialect.newest_first_hint()} WHERE EXISTS "
            f"(SELECT 1 FROM user_devices u WHERE u.user_id = {mark} AND u.device_id = r.device_id){tail}",
            (user_id,),
        ),
    }


def _load_plan_fleet(conn, dialect: _Dialect, n_devices: int, readings: np.ndarray, grants: dict) -> None:
    cur = conn.cursor()
    cur.execute(
        "CREATE TABLE readings (reading_id integer PRIMARY KEY, device_id integer NOT NULL, ts bigint NOT NULL)"
    )
    cur.execute(
        "CREATE TABLE user_devices (user_id integer NOT NULL, device_id integer NOT NULL, "
        "PRIMARY KEY (user_id, device_id))"
    )
    rows = [(i, int(d), i) for i, d in enumerate(readings)]
    grant_rows = [(user, int(d)) for user, ids in grants.items() for d in ids]
    if dialect.name == "postgres":
        with cur.copy("COPY readings (reading_id, device_id, ts) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        with cur.copy("COPY user_devices (user_id, device_id) FROM STDIN") as copy:
            for row in grant_rows:
                copy.write_row(row)
    else:
        mark = dialect.mark
        for start in range(0, len(rows), 20_000):
            cur.executemany(
                f"INSERT INTO readings VALUES ({mark}, {mark}, {mark})", rows[start : start + 20_000]
            )
        cur.executemany(f"INSERT INTO user_devices VALUES ({mark}, {mark})", grant_rows)
    cur.execute("CREATE INDEX readings_ts ON readings (ts)")
    cur.execute("CREATE INDEX readings_device_ts ON readings (device_id, ts)")
    if dialect.name == "postgres":
        cur.execute("ANALYZE")
    elif dialect.name == "mariadb":
        cur.execute("ANALYZE TABLE readings, user_devices")
        cur.fetchall()
    else:
        cur.execute("ANALYZE")
    conn.commit()


def _run_approach(conn, dialect: _Dialect, approach: str, sql: str, params: tuple, ids: list[int]) -> list:
    cur = conn.cursor()
    if approach == "temporary table":
        cur.execute(dialect.temp_table())
        mark = dialect.mark
        cur.executemany(f"INSERT INTO perm VALUES ({mark})", [(i,) for i in ids])
        cur.execute(sql, params)
        rows = cur.fetchall()
        if dialect.name == "postgres":
            conn.commit()  # ON COMMIT DROP
        else:
            cur.execute("DROP TABLE perm")
        return [tuple(r) for r in rows]
    cur.execute(sql, params)
    rows = [tuple(r) for r in cur.fetchall()]
    if dialect.name == "postgres":
        conn.rollback()  # end the read transaction
    return rows


def measure_sql_plans(
    engine: object | None = None,
    *,
    n_devices: int = 40_000,
    n_readings: int = 200_000,
    device_shares: Sequence[float] = (0.0025, 0.025, 0.25, 0.5),
    page_size: int = 50,
    repeats: int = 3,
    timeout_s: float = 120.0,
    seed: int | np.random.Generator | None = 0,
) -> experiment.Run:
    """The newest page of readings a user may see, five ways, on SQLite or a real engine, with plans.

    A fleet of ``n_devices`` devices and ``n_readings`` readings (``ts`` increasing, indexes on
    ``(ts)`` and ``(device_id, ts)``) and, for each share of the fleet, a user granted that many
    random devices (a ``user_devices`` table). Each approach asks for the ``page_size`` newest
    readings of the user's devices:

    - ``literal IN list``: the ids pasted into the SQL text;
    - ``bound parameters``: ``= ANY(%s)`` with one array on PostgreSQL, one placeholder per id on
      SQLite and MariaDB (which have no array type);
    - ``temporary table``: the ids inserted into a temporary table, then joined (insert included);
    - ``join``: ``readings JOIN user_devices`` on the server's own copy of the grants;
    - ``EXISTS, newest first``: a correlated ``EXISTS`` on the grants, with the ``ts`` index
      forced where the engine takes hints (SQLite ``INDEXED BY``, MariaDB ``FORCE INDEX``);
      PostgreSQL's planner chooses alone.

    Parameters
    ----------
    engine : syslab.engines.Engine or None
        A PostgreSQL or MariaDB engine (its own fresh database is used); None runs SQLite in a
        temporary file.
    n_devices : int
        100 to ``MAX_PLAN_DEVICES``.
    n_readings : int
        1,000 to ``MAX_PLAN_READINGS``.
    device_shares : sequence of float
        Shares (0, 1] of the fleet each user may see (at most 10 values).
    page_size : int
        Rows per page, 1 to 1,000.
    repeats : int
        Timed runs per query (median kept), 1 to 20.
    timeout_s : float
        Limit for the whole experiment, set-up included, (0, ``MAX_PLAN_TIMEOUT_S``]; checked
        between statements, and each statement is limited by the server where it can be.
    seed : int, numpy.random.Generator or None

    Returns
    -------
    experiment.Run
        Frame: one row per (device_share, approach): ``engine`` (label), ``device_share``,
        ``k_devices``, ``approach``, ``ms`` (median), ``correct`` (same rows as the literal IN
        list), ``plan`` (the engine's EXPLAIN, one line). Summary: ``engine``, ``n_devices``,
        ``n_readings``, ``load_s``. Environment: the engine's version and settings.
    """
    n_devices = validate.int_in_range("n_devices", n_devices, 100, MAX_PLAN_DEVICES)
    n_readings = validate.int_in_range("n_readings", n_readings, 1_000, MAX_PLAN_READINGS)
    shares = [
        validate.float_in_range("device_shares", v, 0.0, 1.0, low_inclusive=False) for v in device_shares
    ]
    if not 1 <= len(shares) <= 10:
        raise ValueError(f"device_shares must hold 1 to 10 values, got {len(shares)}")
    page_size = validate.int_in_range("page_size", page_size, 1, 1_000)
    repeats = validate.int_in_range("repeats", repeats, 1, 20)
    timeout_s = validate.float_in_range("timeout_s", timeout_s, 0.0, MAX_PLAN_TIMEOUT_S, low_inclusive=False)
    name = "sqlite" if engine is None else getattr(engine, "name", None)
    if name not in ("sqlite", "postgres", "mariadb"):
        raise TypeError(f"engine must be None or a PostgreSQL/MariaDB syslab.engines.Engine, got {engine!r}")
    rng = validate.rng_from_seed(seed)
    deadline = time.monotonic() + timeout_s
    dialect = _Dialect(name)
    readings = rng.integers(0, n_devices, size=n_readings)
    ks = [max(1, round(share * n_devices)) for share in shares]
    grants = {
        user: np.sort(rng.choice(n_devices, size=k, replace=False)) for user, k in enumerate(ks, start=1)
    }
    label_text = "SQLite " + sqlite3.sqlite_version if engine is None else engine.label

    def check_time() -> None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"measure_sql_plans exceeded timeout_s={timeout_s}")

    with contextlib.ExitStack() as stack:
        if engine is None:
            conn, _ = stack.enter_context(temporary_database("plans.db"))
        else:
            database = stack.enter_context(engine.database())
            conn = database.connect()
            stack.callback(conn.close)
            limit_ms = int(max(1.0, deadline - time.monotonic()) * 1000)
            cur = conn.cursor()
            if name == "postgres":
                cur.execute(f"SET statement_timeout = {limit_ms}")
            else:
                cur.execute(f"SET SESSION max_statement_time = {limit_ms / 1000:.3f}")
            conn.commit()
        started = time.monotonic()
        _load_plan_fleet(conn, dialect, n_devices, readings, grants)
        load_s = time.monotonic() - started
        rows = []
        for (user, ids), share in zip(grants.items(), shares, strict=True):
            id_list = [int(i) for i in ids]
            queries = _plan_queries(dialect, id_list, user, page_size)
            reference = None
            for approach in SQL_APPROACHES:
                check_time()
                sql, params = queries[approach]
                found: list = []
                seconds = median_seconds(
                    lambda sql=sql, params=params, approach=approach, found=found, id_list=id_list: (
                        found.append(_run_approach(conn, dialect, approach, sql, params, id_list))
                    ),
                    repeats=repeats,
                )
                result = found[-1]
                if reference is None:
                    reference = result
                cur = conn.cursor()
                if approach == "temporary table":
                    plan = ""  # needs the table; its plan is the join's with perm in place of user_devices
                else:
                    cur.execute(dialect.explain(sql), params)
                    plan = dialect.plan_text(cur.fetchall())
                    if name == "postgres":
                        conn.rollback()
                rows.append(
                    {
                        "engine": label_text,
                        "device_share": share,
                        "k_devices": len(id_list),
                        "approach": approach,
                        "ms": 1000 * seconds,
                        "correct": result == reference,
                        "plan": plan,
                    }
                )
    frame = pd.DataFrame(rows)
    summary = {
        "engine": label_text,
        "n_devices": n_devices,
        "n_readings": n_readings,
        "load_s": float(load_s),
    }
    return experiment.Run.create(frame, summary, engine=engine)


def plot_sql_plans(runs: pd.DataFrame, axes: Sequence[Axes] | None = None) -> np.ndarray:
    """Median time of each approach against the share of the fleet a user may see, one panel per engine.

    Parameters
    ----------
    runs : pandas.DataFrame
        :func:`measure_sql_plans` frames, concatenated (``engine``, ``device_share``,
        ``approach``, ``ms``).
    axes : sequence of matplotlib.axes.Axes, optional
        One per engine; default: new panels stacked vertically.

    Returns
    -------
    numpy.ndarray of matplotlib.axes.Axes
    """
    from syslab import plot as plot_module

    runs = validate.frame_columns("runs", runs, ["engine", "device_share", "approach", "ms"])
    engines = list(dict.fromkeys(runs["engine"]))
    axes = plot_module.panels(1, len(engines), axes)
    for ax, engine_label in zip(axes, engines, strict=False):
        for approach, group in runs[runs["engine"] == engine_label].groupby("approach", sort=False):
            ax.plot(group["device_share"] * 100, group["ms"], marker="o", label=approach)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(engine_label, fontsize=10)
        axis_label(ax, "devices the user may see (% of the fleet, log)", "first page (ms, log)")
    axes[0].legend(fontsize=8)
    return axes


# ----------------------------------------------------------------------------- edge cases on real SQLite


def demo_too_many_variables(conn: sqlite3.Connection, ids: Sequence[int]) -> dict:
    """Run one ``IN (?, ?, ...)`` with every id bound; return the outcome and SQLite's own message.

    Parameters
    ----------
    conn : sqlite3.Connection
        A connection to the fleet database (from :func:`build_fleet`).
    ids : sequence of int
        Ids to bind, one parameter each.

    Returns
    -------
    dict
        ``n_ids``, ``ok`` (bool), ``rows`` and ``error`` (SQLite's message, or "").
    """
    conn = _check_connection(conn)
    ids = [int(i) for i in ids]
    marks = ",".join("?" * len(ids))
    try:
        n = conn.execute(f"SELECT count(*) FROM readings WHERE device_id IN ({marks})", ids).fetchone()[0]
        return {"n_ids": len(ids), "ok": True, "rows": int(n), "error": ""}
    except sqlite3.OperationalError as error:
        return {"n_ids": len(ids), "ok": False, "rows": -1, "error": str(error)}


def demo_revoked_mid_pagination(
    conn: sqlite3.Connection, user_id: int, *, page_size: int = 50
) -> pd.DataFrame:
    """Revoke two groups between page 1 and page 2 and compare what four clients show on page 2.

    One revoked group owns the newest device on page 1 (its rows there have been seen; removing them
    shifts every later row up by that many), the other owns the newest device on the page-2-to-be (its
    rows must no longer be shown). Clients: a cached id list captured with page 1, OFFSET pagination with
    a live join, keyset pagination with a live join, and the precomputed table before its next refresh.
    The grants are restored afterwards.

    Parameters
    ----------
    conn : sqlite3.Connection
        A connection to the fleet database (from :func:`build_fleet`).
    user_id : int
    page_size : int

    Returns
    -------
    pandas.DataFrame
        One row per client: ``client``, ``rows``, ``leaked`` (rows of revoked devices shown after the
        revocation), ``skipped`` (permitted rows that belong on page 2 but are not shown) and
        ``duplicated`` (rows already shown on page 1). ``attrs["revoked_devices"]`` and
        ``attrs["revoked_rows_page1"]`` say how much was revoked.
    """
    conn = _check_connection(conn)
    user_id = validate.non_negative_int("user_id", user_id)
    page_size = validate.positive_int("page_size", page_size)
    cached_ids = permitted_devices(conn, user_id).tolist()
    refresh_access_table(conn)
    first_two = fetch_page(conn, "join ACL tables", user_id, page_size=2 * page_size)["rows"]
    if len(first_two) < 2 * page_size:
        raise ValueError(f"user {user_id} sees fewer than two pages of readings")
    page1, upcoming = first_two[:page_size], first_two[page_size:]

    def group_of(device: int) -> int:
        return conn.execute("SELECT group_id FROM devices WHERE device_id = ?", (device,)).fetchone()[0]

    revoked_groups = sorted({group_of(page1[0][1]), group_of(upcoming[0][1])})
    marks = ",".join("?" * len(revoked_groups))
    revoked = {
        r[0]
        for r in conn.execute(f"SELECT device_id FROM devices WHERE group_id IN ({marks})", revoked_groups)
    }
    with conn:
        conn.execute(
            f"DELETE FROM user_groups WHERE user_id = ? AND group_id IN ({marks})", (user_id, *revoked_groups)
        )
    last = page1[-1]
    try:
        keyset_sql = (
            f"SELECT {_READING_COLUMNS} FROM user_groups ug JOIN devices d ON d.group_id = ug.group_id"
            " JOIN readings r ON r.device_id = d.device_id WHERE ug.user_id = ?"
            f" AND (r.ts < ? OR (r.ts = ? AND r.reading_id < ?)) {_ORDER} LIMIT ?"
        )
        truth = conn.execute(keyset_sql, (user_id, last[2], last[2], last[0], page_size)).fetchall()
        page2 = {"page_size": page_size, "offset": page_size}
        clients = {
            "cached id list, OFFSET": fetch_page(conn, "giant IN list", user_id, ids=cached_ids, **page2)[
                "rows"
            ],
            "live join, OFFSET": fetch_page(conn, "join ACL tables", user_id, **page2)["rows"],
            "live join, keyset": truth,
            "precomputed table before refresh, OFFSET": fetch_page(
                conn, "precomputed access table", user_id, **page2
            )["rows"],
        }
    finally:
        grant_groups(conn, user_id, revoked_groups)
        refresh_access_table(conn)
    shown_before = {row[0] for row in page1}
    truth_ids = {row[0] for row in truth}
    records = []
    for client, rows in clients.items():
        ids = {row[0] for row in rows}
        records.append(
            {
                "client": client,
                "rows": len(rows),
                "leaked": sum(row[1] in revoked for row in rows),
                "skipped": len(truth_ids - ids),
                "duplicated": len(shown_before & ids),
            }
        )
    table = pd.DataFrame.from_records(records)
    table.attrs["revoked_devices"] = len(revoked)
    table.attrs["revoked_rows_page1"] = sum(row[1] in revoked for row in page1)
    table.attrs["revoked_groups"] = len(revoked_groups)
    return table


def demo_device_move(conn: sqlite3.Connection, device_id: int, new_group: int) -> pd.Series:
    """Move a device to another group and count what the denormalised copy gets wrong until rewritten.

    The source of truth (``devices.group_id``) changes in one row; every reading of the device carries
    the old group id until a backfill rewrites it. Returns ``readings_to_rewrite``, ``rewrite_ms`` and,
    between the two steps, the readings the old group's members still see and the new group's members
    cannot see. The move is undone afterwards.

    Parameters
    ----------
    conn : sqlite3.Connection
        A connection to the fleet database (from :func:`build_fleet`).
    device_id : int
    new_group : int

    Returns
    -------
    pandas.Series
        ``readings_to_rewrite``, ``rewrite_ms``, ``stale_visible_to_old_group``, ``missing_for_new_group``.
    """
    conn = _check_connection(conn)
    device_id = validate.non_negative_int("device_id", device_id)
    new_group = validate.non_negative_int("new_group", new_group)
    row = conn.execute("SELECT group_id FROM devices WHERE device_id = ?", (device_id,)).fetchone()
    if row is None:
        raise ValueError(f"device_id {device_id} does not exist")
    old_group = row[0]
    if old_group == new_group:
        raise ValueError(f"device {device_id} is already in group {new_group}")

    def visible(group: int) -> int:
        sql = "SELECT count(*) FROM readings WHERE group_id = ? AND device_id = ?"
        return int(conn.execute(sql, (group, device_id)).fetchone()[0])

    try:
        with conn:
            conn.execute("UPDATE devices SET group_id = ? WHERE device_id = ?", (new_group, device_id))
        total = int(
            conn.execute("SELECT count(*) FROM readings WHERE device_id = ?", (device_id,)).fetchone()[0]
        )
        wrong_old, missing_new = visible(old_group), total - visible(new_group)
        started = time.perf_counter()
        with conn:
            n = conn.execute(
                "UPDATE readings SET group_id = ? WHERE device_id = ?", (new_group, device_id)
            ).rowcount
        rewrite_ms = 1000 * (time.perf_counter() - started)
    finally:
        with conn:
            conn.execute("UPDATE devices SET group_id = ? WHERE device_id = ?", (old_group, device_id))
            conn.execute("UPDATE readings SET group_id = ? WHERE device_id = ?", (old_group, device_id))
    return pd.Series(
        {
            "readings_to_rewrite": int(n),
            "old_group_still_sees": wrong_old,
            "new_group_cannot_see": missing_new,
            "rewrite_ms": rewrite_ms,
        }
    )


def demo_revocation_staleness(conn: sqlite3.Connection, user_id: int, *, page_size: int = 50) -> pd.DataFrame:
    """Revoke one group and count the revoked device's readings each approach still returns.

    Checked three times: right after the revocation, after the precomputed table's refresh, and after the
    application also rebuilds its cached id list and bitmap. The grant is restored afterwards.

    Parameters
    ----------
    conn : sqlite3.Connection
        A connection to the fleet database (from :func:`build_fleet`).
    user_id : int
    page_size : int

    Returns
    -------
    pandas.DataFrame
        One row per approach: readings of the revoked device on the first page at each of the three checks.
    """
    conn = _check_connection(conn)
    user_id = validate.non_negative_int("user_id", user_id)
    page_size = validate.positive_int("page_size", page_size)
    refresh_access_table(conn)
    top = fetch_page(conn, "join ACL tables", user_id, page_size=1)["rows"]
    if not top:
        raise ValueError(f"user {user_id} sees no readings")
    device = top[0][1]
    group = conn.execute("SELECT group_id FROM devices WHERE device_id = ?", (device,)).fetchone()[0]
    revoked = {r[0] for r in conn.execute("SELECT device_id FROM devices WHERE group_id = ?", (group,))}
    cached_ids = permitted_devices(conn, user_id).tolist()
    with conn:
        conn.execute("DELETE FROM user_groups WHERE user_id = ? AND group_id = ?", (user_id, group))
    records = []
    try:
        for stage in ("after revoke", "after table refresh", "after cache rebuild"):
            if stage == "after table refresh":
                refresh_access_table(conn)
            if stage == "after cache rebuild":
                cached_ids = permitted_devices(conn, user_id).tolist()
                _write_acl_doc(conn, user_id)
            for approach in APPROACHES:
                rows = fetch_page(conn, approach, user_id, page_size=page_size, ids=cached_ids)["rows"]
                records.append(
                    {"stage": stage, "approach": approach, "leaked": sum(r[1] in revoked for r in rows)}
                )
    finally:
        grant_groups(conn, user_id, [group])
        refresh_access_table(conn)
    return (
        pd.DataFrame.from_records(records)
        .pivot(index="approach", columns="stage", values="leaked")[
            ["after revoke", "after table refresh", "after cache rebuild"]
        ]
        .loc[list(APPROACHES)]
    )


def simulate_revocation_exposure(
    n_revocations: int,
    *,
    refresh_interval_s: float,
    cache_ttl_s: float,
    replication_lag_mean_s: float,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """How long a revoked user can still read, when permissions pass through three stale layers.

    A revocation first reaches a replica after an exponential replication lag (mean
    ``replication_lag_mean_s``); a precomputed access table built from that replica is refreshed every
    ``refresh_interval_s`` seconds at a phase uniform to the revocation, and the application caches what it
    read for ``cache_ttl_s`` seconds (the last stale fill happens just before the refresh, at a uniform
    point of its TTL). Exposure = lag + wait for refresh + remaining TTL.

    Parameters
    ----------
    n_revocations : int
        1 to ``MAX_REVOCATIONS``.
    refresh_interval_s : float
        Access-table refresh interval (0: none).
    cache_ttl_s : float
        Application cache lifetime (0: none).
    replication_lag_mean_s : float
        Mean replica lag.
    seed : int, numpy.random.Generator or None

    Returns
    -------
    pandas.DataFrame
        One row per revocation: ``lag_s``, ``refresh_wait_s``, ``cache_residual_s``, ``exposure_s``.
    """
    n = validate.int_in_range("n_revocations", n_revocations, 1, MAX_REVOCATIONS)
    refresh = validate.non_negative_float("refresh_interval_s", refresh_interval_s)
    ttl = validate.non_negative_float("cache_ttl_s", cache_ttl_s)
    lag_mean = validate.non_negative_float("replication_lag_mean_s", replication_lag_mean_s)
    rng = validate.rng_from_seed(seed)
    lag = rng.exponential(lag_mean, size=n) if lag_mean > 0 else np.zeros(n)
    wait = rng.uniform(0.0, refresh, size=n)
    residual = rng.uniform(0.0, ttl, size=n)
    return pd.DataFrame(
        {
            "lag_s": lag,
            "refresh_wait_s": wait,
            "cache_residual_s": residual,
            "exposure_s": lag + wait + residual,
        }
    )


def theory_revocation_exposure_mean_s(
    refresh_interval_s: float, cache_ttl_s: float, replication_lag_mean_s: float
) -> float:
    """Mean exposure: ``lag_mean + refresh/2 + ttl/2`` (each uniform wait averages half its interval).

    Parameters
    ----------
    refresh_interval_s : float
    cache_ttl_s : float
    replication_lag_mean_s : float

    Returns
    -------
    float
        Seconds.
    """
    refresh = validate.non_negative_float("refresh_interval_s", refresh_interval_s)
    ttl = validate.non_negative_float("cache_ttl_s", cache_ttl_s)
    lag = validate.non_negative_float("replication_lag_mean_s", replication_lag_mean_s)
    return lag + refresh / 2 + ttl / 2


def plot_revocation_exposure(exposure: dict[str, pd.DataFrame], ax: Axes | None = None) -> Axes:
    """Empirical CDF of exposure time for each configuration in ``exposure`` (label → frame).

    Parameters
    ----------
    exposure : dict of str to pandas.DataFrame
        Label to :func:`simulate_revocation_exposure`'s frame.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    if not isinstance(exposure, dict) or not exposure:
        raise TypeError(f"exposure must be a non-empty dict of label to frame, got {type(exposure).__name__}")
    ax = axes_or_new(ax, figsize=(7, 4))
    for label, frame in exposure.items():
        values = np.sort(frame["exposure_s"].to_numpy())
        ax.plot(values, np.arange(1, values.size + 1) / values.size, label=label)
    ax.set_xlabel("time a revoked user can still read (s)")
    ax.set_ylabel("fraction of revocations")
    ax.legend(fontsize=8)
    return ax


def run_store_consistency(
    n_steps: int = 400,
    *,
    event_probability: float = 0.05,
    n_groups: int = 20,
    lags_steps: Sequence[int] = (0, 2, 10),
    store_names: Sequence[str] = ("MongoDB copy", "ClickHouse copy", "Elasticsearch copy"),
    seed: int | np.random.Generator | None = 0,
) -> experiment.Run:
    """Three real SQLite databases apply one permission log, each some steps behind; compare their answers.

    At each step a permission change happens with probability ``event_probability`` (it toggles one
    user's membership of one of ``n_groups`` groups and gets the next version number), and the
    application then asks every store which groups the user may see. The primary is current; store ``s``
    has applied the changes made up to ``lags_steps[s]`` steps ago. A *version-gated* read sends the
    primary's version with the query and a store that has not applied it refuses (the application waits
    or retries elsewhere).

    Parameters
    ----------
    n_steps : int
        Queries, 1 to ``MAX_CONSISTENCY_STEPS``.
    event_probability : float
        Chance of a permission change between two queries.
    n_groups : int
        Groups the changes toggle, 1 to ``MAX_GROUPS``.
    lags_steps : sequence of int
        How many steps behind each store is.
    store_names : sequence of str
        One name per store.
    seed : int, numpy.random.Generator or None

    Returns
    -------
    experiment.Run
        Frame (its ``attrs["stores"]`` names the stores): one row per step: ``step``, ``version``, ``stores_disagree`` (the stores' answers differ),
        ``stale_stores`` (stores whose answer differs from the primary), ``stale_<i>`` per store,
        ``gated_refusals`` (stores that refuse a version-gated read) and ``gated_inconsistent`` (answers
        served under the gate that differ from the primary: 0 by construction, checked).
    """
    n_steps = validate.int_in_range("n_steps", n_steps, 1, MAX_CONSISTENCY_STEPS)
    p_event = validate.probability("event_probability", event_probability)
    n_groups = validate.int_in_range("n_groups", n_groups, 1, MAX_GROUPS)
    if isinstance(store_names, str) or not isinstance(store_names, Sequence):
        raise TypeError(f"store_names must be a sequence of names, got {type(store_names).__name__}")
    if isinstance(lags_steps, (str, bytes)) or not isinstance(lags_steps, (Sequence, np.ndarray)):
        raise TypeError(f"lags_steps must be a sequence of step counts, got {lags_steps!r}")
    if len(lags_steps) > 100:
        raise ValueError(f"lags_steps must hold at most 100 stores, got {len(lags_steps)}")
    lags = [
        validate.int_in_range(f"lags_steps[{i}]", lag, 0, MAX_LAG_STEPS) for i, lag in enumerate(lags_steps)
    ]
    names = list(store_names)
    if len(names) != len(lags) or not lags:
        raise ValueError("store_names and lags_steps must be non-empty and of the same length")
    rng = validate.rng_from_seed(seed)
    happens = rng.random(n_steps) < p_event
    toggled = rng.integers(0, n_groups, size=n_steps)
    log = []  # (version, group, granted)
    version_at = np.zeros(n_steps, dtype=np.int64)  # primary's version after each step
    state = [False] * n_groups
    for step in range(n_steps):
        if happens[step]:
            group = int(toggled[step])
            state[group] = not state[group]
            log.append((len(log) + 1, group, state[group]))
        version_at[step] = len(log)
    records = []
    with contextlib.ExitStack() as stack:
        stores = [stack.enter_context(temporary_database(f"store{i}.db"))[0] for i in range(len(lags) + 1)]
        for db in stores:
            db.isolation_level = None  # explicit BEGIN/COMMIT below
            db.executescript(
                "CREATE TABLE acl (group_id INTEGER PRIMARY KEY);"
                "CREATE TABLE meta (applied_version INTEGER); INSERT INTO meta VALUES (0);"
            )
        primary, replicas = stores[0], stores[1:]
        for step in range(n_steps):
            _apply_log(primary, log, int(version_at[step]))
            for db, lag in zip(replicas, lags, strict=True):
                _apply_log(db, log, int(version_at[step - lag]) if step >= lag else 0)
            version = int(version_at[step])
            _, current = _read_acl(primary)
            answers = [_read_acl(db) for db in replicas]
            served = [groups for applied, groups in answers if applied >= version]
            record = {
                "step": step,
                "version": version,
                "stores_disagree": len({groups for _, groups in answers}) > 1,
                "stale_stores": sum(groups != current for _, groups in answers),
                "gated_refusals": sum(applied < version for applied, _ in answers),
                "gated_inconsistent": sum(groups != current for groups in served),
            }
            for i, (_, groups) in enumerate(answers):
                record[f"stale_{i}"] = groups != current
            records.append(record)
    frame = pd.DataFrame.from_records(records)
    frame.attrs["stores"] = dict(zip(names, lags, strict=True))
    return experiment.Run.create(
        frame, {"n_steps": n_steps, "event_probability": p_event, "n_groups": n_groups}
    )


def _apply_log(db: sqlite3.Connection, log: list, version: int) -> None:
    # One transaction: the ACL rows and the applied version move together, so a reader sees both or neither.
    applied = db.execute("SELECT applied_version FROM meta").fetchone()[0]
    if version <= applied:
        return
    db.execute("BEGIN")
    for _version, group, granted in log[applied:version]:
        if granted:
            db.execute("INSERT OR IGNORE INTO acl VALUES (?)", (group,))
        else:
            db.execute("DELETE FROM acl WHERE group_id = ?", (group,))
    db.execute("UPDATE meta SET applied_version = ?", (version,))
    db.execute("COMMIT")


def _read_acl(db: sqlite3.Connection) -> tuple[int, frozenset]:
    # Read the version and the ACL in one transaction so they belong together.
    db.execute("BEGIN")
    applied = db.execute("SELECT applied_version FROM meta").fetchone()[0]
    groups = frozenset(r[0] for r in db.execute("SELECT group_id FROM acl"))
    db.execute("COMMIT")
    return int(applied), groups


def theory_stale_fraction(event_probability: float, lag_steps: int, n_groups: int = 20) -> float:
    """Probability that a store ``lag_steps`` behind answers differently from the primary.

    It has missed ``k ~ Binomial(lag, p)`` toggles, each of a uniformly chosen one of ``G`` groups; its
    answer is still right only if every group was toggled an even number of times. By the parity
    (Fourier) identity on ``{0,1}^G``, ``P(all even | k) = 2^-G * sum_j C(G, j) ((G - 2j)/G)^k``.
    Without cancellations this is ``1 - (1 - p)^lag``, an upper bound.

    Parameters
    ----------
    event_probability : float
        Chance of a change per step, 0 to 1.
    lag_steps : int
        Steps behind, 0 to ``MAX_LAG_STEPS``.
    n_groups : int
        Groups toggled, 1 to ``MAX_GROUPS``.

    Returns
    -------
    float
        Probability, 0 to 1.
    """
    p = validate.probability("event_probability", event_probability)
    lag = validate.int_in_range("lag_steps", lag_steps, 0, MAX_LAG_STEPS)
    groups = validate.int_in_range("n_groups", n_groups, 1, MAX_GROUPS)
    ks = np.arange(lag + 1)
    # Binomial(lag, p) in log space: math.comb(lag, k) overflows a float beyond lag ~ 1,000.
    if p in (0.0, 1.0):
        p_k = (ks == (0 if p == 0.0 else lag)).astype(float)
    else:
        log_c = np.array(
            [math.lgamma(lag + 1) - math.lgamma(k + 1) - math.lgamma(lag - k + 1) for k in range(lag + 1)]
        )
        p_k = np.exp(log_c + ks * math.log(p) + (lag - ks) * math.log1p(-p))
    js = np.arange(groups + 1)
    # Binomial(G, 1/2) weights in log space, so large G neither overflows nor underflows.
    log_w = [
        math.lgamma(groups + 1) - math.lgamma(j + 1) - math.lgamma(groups - j + 1) for j in range(groups + 1)
    ]
    weights = np.exp(np.array(log_w) - groups * math.log(2.0))
    all_even = (weights[None, :] * ((groups - 2 * js[None, :]) / groups) ** ks[:, None]).sum(axis=1)
    return float(min(1.0, max(0.0, 1.0 - (p_k * all_even).sum())))  # clip rounding at 0 and 1


def summarize_consistency(frame: pd.DataFrame) -> pd.Series:
    """Fractions of steps with disagreeing stores, with a stale answer, and with a gated refusal.

    Parameters
    ----------
    frame : pandas.DataFrame
        :func:`run_store_consistency`'s frame (not empty).

    Returns
    -------
    pandas.Series
        ``disagree_fraction``, ``stale_fraction_<store>`` per store, ``gated_wait_fraction``, ``gated_inconsistent``.
    """
    if not isinstance(frame, pd.DataFrame) or "stores_disagree" not in frame:
        raise ValueError("frame must come from run_store_consistency")
    if frame.empty:
        raise ValueError("frame must have at least one step")
    stale = {
        f"stale_fraction_{name}": float(frame[f"stale_{i}"].mean())
        for i, name in enumerate(frame.attrs.get("stores", {}))
    }
    return pd.Series(
        {
            **stale,
            "disagree_fraction": float(frame["stores_disagree"].mean()),
            "stale_answer_fraction": float((frame["stale_stores"] > 0).mean()),
            "gated_wait_fraction": float((frame["gated_refusals"] > 0).mean()),
            "gated_inconsistent": int(frame["gated_inconsistent"].sum()),
        }
    )


def plan_lines(conn: sqlite3.Connection, approach: str, user_id: int) -> list[str]:
    """``EXPLAIN QUERY PLAN`` of the first-page statement ``approach`` runs (small id lists inlined).

    Parameters
    ----------
    conn : sqlite3.Connection
        A connection to the fleet database (from :func:`build_fleet`).
    approach : str
        One of ``APPROACHES``.
    user_id : int

    Returns
    -------
    list of str
        The plan's detail lines.
    """
    conn = _check_connection(conn)
    approach = validate.choice("approach", approach, APPROACHES)
    ids = permitted_devices(conn, user_id).tolist()
    bitmap = np.zeros(int(conn.execute("SELECT max(device_id) + 1 FROM devices").fetchone()[0]), dtype=bool)
    bitmap[ids] = True
    page = fetch_page(conn, approach, user_id, ids=ids, bitmap=bitmap, page_size=1)
    sql = page["sql"]
    n_params = sql.count("?")
    if approach == "chunked IN lists":
        chunk = min(len(ids), 10_000)
        params = (*ids[:chunk], 1)[:n_params]
    elif approach == "denormalised group id":
        params = (*_user_groups(conn, user_id), 1, 0)
    elif approach in ("giant IN list",):
        params = ()
    elif approach == "bitmap filter":
        params = (1, 0)
    else:
        params = (user_id, 1, 0)
    return query_plan(conn, sql, params)
