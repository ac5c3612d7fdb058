"""Identifier schemes built from their specifications: UUIDv4, UUIDv7 (RFC 9562) and Snowflake.

- **UUIDv7** (RFC 9562, section 5.7): 48-bit big-endian ``unix_ts_ms``, 4-bit version
  ``0111``, 12-bit ``rand_a``, 2-bit variant ``10``, 62-bit ``rand_b``. Python gains
  ``uuid.uuid7()`` only in 3.14, so it is built here by hand. Within one millisecond,
  :class:`UUID7Generator` uses ``rand_a`` as a counter (the RFC's "fixed bit-length
  dedicated counter", method 1) so IDs from one generator are strictly increasing.
- **UUIDv4** (section 5.4): 122 random bits; drawn from a seeded generator here so
  experiments are reproducible (production code should use ``uuid.uuid4()``).
- **Snowflake** (Twitter, 2010): a 64-bit integer, sign bit 0, 41 bits of
  milliseconds since a custom epoch, 10 bits of machine ID, 12 bits of sequence --
  at most 4096 IDs per millisecond per machine.

:func:`run_dual_write_migration` migrates a live SQLite table from integer IDs to
UUIDv7 while a writer keeps inserting, and checks that no row is lost or mismatched.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass

import numpy as np
import pandas as pd

from syslab import validate
from syslab.experiment import Run
from syslab.sqlite_tools import temporary_database

__all__ = [
    "SNOWFLAKE_EPOCH_MS",
    "SnowflakeGenerator",
    "MigrationConfig",
    "UUID7Generator",
    "id_schemes",
    "run_dual_write_migration",
    "simulate_snowflake_burst",
    "snowflake_decode",
    "snowflake_encode",
    "uuid4_array",
    "uuid4_batch",
    "uuid7",
    "uuid7_array",
    "uuid7_batch",
    "uuid7_timestamp_ms",
]

SNOWFLAKE_EPOCH_MS = 1288834974657  # Twitter's epoch: 2010-11-04 01:42:54.657 UTC
TS_BITS, MACHINE_BITS, SEQUENCE_BITS = 41, 10, 12
MAX_SEQUENCE = (1 << SEQUENCE_BITS) - 1
MAX_MACHINE = (1 << MACHINE_BITS) - 1


# =========================================================================== UUIDv7


def uuid7(unix_ts_ms: int, rand_a: int, rand_b: int) -> uuid.UUID:
    """Assemble a UUIDv7 from its fields (RFC 9562, section 5.7).

    Parameters
    ----------
    unix_ts_ms : int
        Milliseconds since the Unix epoch, 0 <= ts < 2**48.
    rand_a : int
        12 bits (random, or a counter for monotonicity).
    rand_b : int
        62 bits.

    Returns
    -------
    uuid.UUID
        Version 7, variant RFC 9562.
    """
    ts = validate.int_in_range("unix_ts_ms", unix_ts_ms, 0, 2**48 - 1)
    a = validate.int_in_range("rand_a", rand_a, 0, 2**12 - 1)
    b = validate.int_in_range("rand_b", rand_b, 0, 2**62 - 1)
    value = (ts << 80) | (0x7 << 76) | (a << 64) | (0b10 << 62) | b
    return uuid.UUID(int=value)


def uuid7_timestamp_ms(value: uuid.UUID) -> int:
    """The ``unix_ts_ms`` field of a UUIDv7.

    Parameters
    ----------
    value : uuid.UUID
        A version-7 UUID.

    Returns
    -------
    int
        Unix milliseconds.
    """
    if not isinstance(value, uuid.UUID):
        raise TypeError(f"value must be a uuid.UUID, got {type(value).__name__}")
    if value.version != 7:
        raise ValueError(f"value must be a version-7 UUID, got version {value.version}")
    return value.int >> 80


class UUID7Generator:
    """Monotonic UUIDv7s: ``rand_a`` counts within a millisecond (RFC 9562 method 1).

    The counter starts at a random value below 2048 each new millisecond (leaving room to
    count); if it overflows, the timestamp is advanced by one millisecond, which the RFC
    allows to keep order.

    Parameters
    ----------
    seed : int, numpy.random.Generator or None
        Randomness of the counters' starts and of ``rand_b``.
    """

    def __init__(self, seed: int | np.random.Generator | None = None) -> None:
        self.rng = validate.rng_from_seed(seed)
        self.last_ms = -1
        self.counter = 0

    def next(self, now_ms: int) -> uuid.UUID:
        """The next UUIDv7 at clock time ``now_ms``.

        Parameters
        ----------
        now_ms : int
            The clock in Unix milliseconds (may stand still or go back; order is kept).

        Returns
        -------
        uuid.UUID
            Greater than every UUID this generator returned before.
        """
        now_ms = validate.non_negative_int("now_ms", now_ms)
        if now_ms > self.last_ms:
            self.last_ms = now_ms
            self.counter = int(self.rng.integers(0, 2**11))
        else:
            self.counter += 1
            if self.counter > 0xFFF:
                self.last_ms += 1
                self.counter = int(self.rng.integers(0, 2**11))
        return uuid7(self.last_ms, self.counter, int(self.rng.integers(0, 2**62)))


def uuid7_batch(
    n: int,
    *,
    start_ms: int = 1_735_689_600_000,
    ids_per_ms: float = 50.0,
    seed: int | np.random.Generator | None = 0,
) -> list[uuid.UUID]:
    """``n`` monotonic UUIDv7s as if generated at ``ids_per_ms`` per millisecond from ``start_ms``.

    Parameters
    ----------
    n : int
        How many, 1 to ``MAX_KEY_ARRAY``.
    start_ms : int
        Unix milliseconds of the first.
    ids_per_ms : float
        IDs generated per millisecond (> 0).
    seed : int, numpy.random.Generator or None
        Randomness of the counters' starts and of ``rand_b``.

    Returns
    -------
    list of uuid.UUID
        Strictly increasing.
    """
    n = validate.bounded_int("n", n, MAX_KEY_ARRAY)
    # UUIDv7 carries 48 bits of Unix milliseconds; leave room for the n / rate ms the batch spans.
    start_ms = validate.int_in_range("start_ms", start_ms, 0, 2**47)
    rate = validate.float_in_range("ids_per_ms", ids_per_ms, 1e-3, 1e9)
    rng = validate.rng_from_seed(seed)
    generator = UUID7Generator(rng)
    clock = start_ms + np.floor(np.arange(n) / rate).astype(np.int64)
    return [generator.next(int(ms)) for ms in clock]


def uuid4_batch(n: int, *, seed: int | np.random.Generator | None = 0) -> list[uuid.UUID]:
    """``n`` version-4 UUIDs from a seeded generator (122 random bits, version and variant set).

    Parameters
    ----------
    n : int
        How many, 1 to ``MAX_KEY_ARRAY``.
    seed : int, numpy.random.Generator or None
        Randomness of the 122 random bits.

    Returns
    -------
    list of uuid.UUID
    """
    n = validate.bounded_int("n", n, MAX_KEY_ARRAY)
    rng = validate.rng_from_seed(seed)
    high = rng.integers(0, 2**63, size=n, dtype=np.int64).tolist()
    low = rng.integers(0, 2**63, size=n, dtype=np.int64).tolist()
    result = []
    for h, lo in zip(high, low, strict=True):
        value = (h << 65) | (lo << 2)  # 126 random bits; version and variant overwrite 6 of them
        value = (value & ~(0xF << 76)) | (0x4 << 76)
        value = (value & ~(0b11 << 62)) | (0b10 << 62)
        result.append(uuid.UUID(int=value))
    return result


MAX_BURST_REQUESTS_PER_MS = 1_000_000  # IDs asked of one generator per simulated millisecond
MAX_BURST_MS = 100_000  # simulated milliseconds
MAX_MIGRATION_ROWS = 2_000_000  # rows in the SQLite migration (~1 s per 100k)
MAX_KEY_ARRAY = 10_000_000  # keys per array: 160 MB of UUIDs, the most a chapter loads into an engine


def uuid4_array(n_keys: int, *, seed: int | np.random.Generator | None = 0) -> np.ndarray:
    """``n_keys`` version-4 UUIDs as raw bytes, vectorised (for bulk loads into an engine).

    Parameters
    ----------
    n_keys : int
        How many UUIDs, 1 to ``MAX_KEY_ARRAY``.
    seed : int, numpy.random.Generator or None
        Randomness for the 122 random bits.

    Returns
    -------
    numpy.ndarray
        ``uint8`` array of shape ``(n_keys, 16)``: each row one UUID in network byte order
        (version nibble 4, variant bits ``10``).
    """
    n = validate.bounded_int("n_keys", n_keys, MAX_KEY_ARRAY)
    rng = validate.rng_from_seed(seed)
    keys = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    keys[:, 6] = (keys[:, 6] & 0x0F) | 0x40
    keys[:, 8] = (keys[:, 8] & 0x3F) | 0x80
    return keys


def uuid7_array(
    n_keys: int,
    *,
    start_ms: int = 1_735_689_600_000,
    ids_per_ms: int = 1000,
    seed: int | np.random.Generator | None = 0,
) -> np.ndarray:
    """``n_keys`` strictly ascending UUIDv7s as raw bytes, vectorised.

    ``ids_per_ms`` keys share each millisecond; ``rand_a`` holds the position within the
    millisecond scaled to 12 bits (the sub-millisecond fraction, RFC 9562 method 3, which is how
    PostgreSQL 18's ``uuidv7()`` keeps one session's values ascending), ``rand_b`` is random.

    Parameters
    ----------
    n_keys : int
        How many UUIDs, 1 to ``MAX_KEY_ARRAY``.
    start_ms : int
        Unix milliseconds of the first key.
    ids_per_ms : int
        Keys per millisecond, 1 to 4096.
    seed : int, numpy.random.Generator or None
        Randomness for ``rand_b``.

    Returns
    -------
    numpy.ndarray
        ``uint8`` array of shape ``(n_keys, 16)`` in ascending byte order.
    """
    n = validate.bounded_int("n_keys", n_keys, MAX_KEY_ARRAY)
    start = validate.int_in_range("start_ms", start_ms, 0, 2**48 - 1 - n)
    per_ms = validate.int_in_range("ids_per_ms", ids_per_ms, 1, 4096)
    keys = uuid4_array(n, seed=seed)
    position = np.arange(n, dtype=np.int64)
    ms = (start + position // per_ms).astype(">u8").view(np.uint8).reshape(n, 8)
    keys[:, :6] = ms[:, 2:]
    fraction = (position % per_ms) * 4096 // per_ms
    keys[:, 6] = 0x70 | (fraction >> 8).astype(np.uint8)
    keys[:, 7] = (fraction & 0xFF).astype(np.uint8)
    return keys


# =========================================================================== Snowflake


def snowflake_encode(
    timestamp_ms: int, machine_id: int, sequence: int, *, epoch_ms: int = SNOWFLAKE_EPOCH_MS
) -> int:
    """Pack a Snowflake ID: ``(ts - epoch) << 22 | machine << 12 | sequence``.

    Parameters
    ----------
    timestamp_ms : int
        Unix milliseconds, not before ``epoch_ms`` and within 41 bits of it.
    machine_id : int
        0 to 1023.
    sequence : int
        0 to 4095.
    epoch_ms : int
        The generator's epoch in Unix milliseconds.

    Returns
    -------
    int
        The ID.
    """
    ts = validate.non_negative_int("timestamp_ms", timestamp_ms) - validate.non_negative_int(
        "epoch_ms", epoch_ms
    )
    if not 0 <= ts < 2**TS_BITS:
        raise ValueError(f"timestamp_ms must be within 2**41 ms after epoch_ms, got offset {ts}")
    machine = validate.int_in_range("machine_id", machine_id, 0, MAX_MACHINE)
    seq = validate.int_in_range("sequence", sequence, 0, MAX_SEQUENCE)
    return (ts << (MACHINE_BITS + SEQUENCE_BITS)) | (machine << SEQUENCE_BITS) | seq


def snowflake_decode(value: int, *, epoch_ms: int = SNOWFLAKE_EPOCH_MS) -> dict[str, int]:
    """Unpack a Snowflake ID into ``timestamp_ms``, ``machine_id`` and ``sequence``.

    Parameters
    ----------
    value : int
        A Snowflake ID (63 bits).
    epoch_ms : int
        The generator's epoch in Unix milliseconds.

    Returns
    -------
    dict of str to int
        ``timestamp_ms`` (Unix milliseconds), ``machine_id``, ``sequence``.
    """
    v = validate.int_in_range("value", value, 0, 2**63 - 1)
    epoch_ms = validate.non_negative_int("epoch_ms", epoch_ms)
    return {
        "timestamp_ms": (v >> (MACHINE_BITS + SEQUENCE_BITS)) + epoch_ms,
        "machine_id": (v >> SEQUENCE_BITS) & MAX_MACHINE,
        "sequence": v & MAX_SEQUENCE,
    }


class SnowflakeGenerator:
    """One machine's Snowflake generator. :meth:`next` returns None when the millisecond is used up.

    Parameters
    ----------
    machine_id : int
        0 to 1023 (10 bits); unique per generator.
    epoch_ms : int
        The custom epoch in Unix milliseconds (Twitter's by default).
    """

    def __init__(self, machine_id: int, *, epoch_ms: int = SNOWFLAKE_EPOCH_MS) -> None:
        self.machine_id = validate.int_in_range("machine_id", machine_id, 0, MAX_MACHINE)
        self.epoch_ms = validate.non_negative_int("epoch_ms", epoch_ms)
        self.last_ms = -1
        self.sequence = 0

    def next(self, now_ms: int) -> int | None:
        """The next ID at ``now_ms``, or None if 4096 were already issued this millisecond.

        A clock that moves backwards is refused (real generators wait or fail), because
        reusing a millisecond could repeat an ID.
        """
        now_ms = validate.non_negative_int("now_ms", now_ms)
        if now_ms < self.last_ms:
            raise ValueError(f"now_ms moved backwards: {now_ms} < {self.last_ms}")
        if now_ms == self.last_ms:
            if self.sequence >= MAX_SEQUENCE:
                return None  # the caller must wait for the next millisecond
            self.sequence += 1
        else:
            self.last_ms, self.sequence = now_ms, 0
        return snowflake_encode(now_ms, self.machine_id, self.sequence, epoch_ms=self.epoch_ms)


def simulate_snowflake_burst(
    requests_per_ms: int, n_ms: int = 10, *, start_ms: int = 1_735_689_600_000
) -> pd.DataFrame:
    """Ask one generator for ``requests_per_ms`` IDs in each of ``n_ms`` milliseconds.

    Returns one row per millisecond: ``ms``, ``requested``, ``issued``, ``refused``.

    Parameters
    ----------
    requests_per_ms : int
        IDs asked for in each millisecond, 1 to ``MAX_BURST_REQUESTS_PER_MS``.
    n_ms : int
        Milliseconds simulated, 1 to ``MAX_BURST_MS``.
    start_ms : int
        Unix milliseconds of the first one.

    Returns
    -------
    pandas.DataFrame
        One row per millisecond: ``ms``, ``requested``, ``issued``, ``refused``.
    """
    rate = validate.bounded_int("requests_per_ms", requests_per_ms, MAX_BURST_REQUESTS_PER_MS)
    n_ms = validate.bounded_int("n_ms", n_ms, MAX_BURST_MS)
    if rate * n_ms > MAX_BURST_REQUESTS_PER_MS * 10:
        raise ValueError(
            f"requests_per_ms x n_ms must be at most {MAX_BURST_REQUESTS_PER_MS * 10:,} requests, got {rate * n_ms:,}"
        )
    start_ms = validate.int_in_range(
        "start_ms", start_ms, SNOWFLAKE_EPOCH_MS, SNOWFLAKE_EPOCH_MS + 2**41 - 1 - n_ms
    )
    generator = SnowflakeGenerator(1)
    rows = []
    for offset in range(n_ms):
        issued = 0
        for _ in range(rate):
            if generator.next(start_ms + offset) is not None:
                issued += 1
        rows.append({"ms": offset, "requested": rate, "issued": issued, "refused": rate - issued})
    return pd.DataFrame(rows)


# =========================================================================== comparison


def id_schemes() -> pd.DataFrame:
    """The four schemes side by side: size, ordering, coordination, and the limit that bites.

    Returns
    -------
    pandas.DataFrame
        One row per scheme (index ``scheme``): ``bytes``, ``time-ordered``, ``coordination``,
        ``what bites``.
    """
    years_41_bits = 2**41 / 1000 / 86_400 / 365.25
    return pd.DataFrame(
        [
            (
                "AUTO_INCREMENT / sequence",
                4,
                "yes (strictly)",
                "one counter in the database",
                "INT runs out at 2,147,483,647; IDs leak row counts",
            ),
            ("UUIDv4", 16, "no (random)", "none", "random inserts all over the index"),
            (
                "UUIDv7",
                16,
                "by millisecond",
                "none",
                "leaks creation time; 16 bytes per key and per reference",
            ),
            (
                "Snowflake",
                8,
                "by millisecond",
                "a unique machine ID per generator",
                f"4096 per ms per machine; 41 bits last {years_41_bits:.1f} years",
            ),
        ],
        columns=["scheme", "bytes", "time-ordered", "coordination", "what bites"],
    ).set_index("scheme")


# =========================================================================== dual-write migration


@dataclass(frozen=True)
class MigrationConfig:
    """Knobs of :func:`run_dual_write_migration`.

    Attributes
    ----------
    initial_rows : int
        Rows in ``orders`` before the migration, 1 to ``MAX_MIGRATION_ROWS``.
    batch_rows : int
        Rows per backfill transaction.
    writer_interval_s : float
        Seconds between the concurrent writer's inserts.
    timeout_s : float
        Budget for the whole migration in seconds.
    """

    initial_rows: int = 50_000  # rows present before the migration starts
    batch_rows: int = 2_000  # rows per backfill transaction
    writer_interval_s: float = 0.001  # pause between the writer's inserts
    timeout_s: float = 30.0  # hard limit on the whole run


def run_dual_write_migration(
    config: MigrationConfig | None = None, *, seed: int | np.random.Generator | None = 0
) -> Run:
    """Migrate ``orders`` from INTEGER ids to UUIDv7 keys while a writer keeps inserting.

    Steps, in order (each one a short transaction, so the writer is never blocked for long):

    1. ``ALTER TABLE orders ADD COLUMN uid BLOB`` (nullable: instant in SQLite).
    2. Dual-write: the writer starts filling ``uid`` for every new row, derived from the
       row's ``created_ms`` so it can be checked later.
    3. Backfill old rows in id order, ``batch_rows`` at a time: ``UPDATE ... WHERE uid IS NULL``.
    4. Verify: no NULL ``uid``; ``uid`` unique; every ``uid``'s timestamp equals its row's
       ``created_ms``; then ``CREATE UNIQUE INDEX`` on ``uid``.
    5. Cut over: reads switch to ``uid``; a sample of rows looked up by ``uid`` must return the
       same row as by ``id``. Then stop the writer and count its acknowledged rows.

    Parameters
    ----------
    config : MigrationConfig, optional
        Table size and backfill batch (defaults: ``MigrationConfig()``).
    seed : int, numpy.random.Generator or None
        Randomness of the UUIDs' random bits and of the sampled lookups.

    Returns
    -------
    syslab.experiment.Run
        ``frame``: one row per step: ``step``, ``seconds``. ``summary``: ``rows``,
        ``writer_rows`` (inserted during the migration), ``backfill_batches``, ``null_uids``,
        ``duplicate_uids``, ``timestamp_mismatches``, ``lookup_mismatches``, ``rows_lost``
        (acknowledged inserts missing), ``max_writer_wait_ms``, ``sqlite``.
    """
    config = config if config is not None else MigrationConfig()
    if not isinstance(config, MigrationConfig):
        raise TypeError(f"config must be a MigrationConfig, got {type(config).__name__}")
    initial = validate.bounded_int("initial_rows", config.initial_rows, MAX_MIGRATION_ROWS)
    batch = validate.bounded_int("batch_rows", config.batch_rows, MAX_MIGRATION_ROWS)
    interval = validate.positive_float("writer_interval_s", config.writer_interval_s)
    timeout_s = validate.float_in_range("timeout_s", config.timeout_s, 0.0, 600.0, low_inclusive=False)
    rng = validate.rng_from_seed(seed)
    uid_rng = np.random.default_rng(int(rng.integers(0, 2**31)))
    dual_write = threading.Event()
    stop = threading.Event()
    acked: list[int] = []
    waits: list[float] = []
    errors: list[BaseException] = []
    steps: list[tuple[str, float]] = []
    lock = threading.Lock()  # the writer's and the backfill's uid generators share one RNG

    def new_uid(created_ms: int) -> bytes:
        with lock:
            return uuid7(created_ms, int(uid_rng.integers(0, 4096)), int(uid_rng.integers(0, 2**62))).bytes

    with temporary_database("migrate.db", timeout=20) as (conn, path):
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(
            "CREATE TABLE orders(id INTEGER PRIMARY KEY, created_ms INTEGER NOT NULL, amount INTEGER)"
        )
        base_ms = 1_735_689_600_000
        conn.executemany(
            "INSERT INTO orders(created_ms, amount) VALUES (?, ?)",
            ((base_ms + i, int(a)) for i, a in enumerate(rng.integers(1, 10_000, initial))),
        )
        conn.commit()

        def writer() -> None:
            wconn = sqlite3.connect(path, timeout=20)
            try:
                deadline = time.monotonic() + timeout_s
                created = base_ms + initial
                while not stop.is_set() and time.monotonic() < deadline:
                    created += 1
                    t0 = time.perf_counter()
                    if dual_write.is_set():
                        cur = wconn.execute(
                            "INSERT INTO orders(created_ms, amount, uid) VALUES (?, ?, ?)",
                            (created, 1, new_uid(created)),
                        )
                    else:
                        cur = wconn.execute(
                            "INSERT INTO orders(created_ms, amount) VALUES (?, ?)", (created, 1)
                        )
                    wconn.commit()
                    waits.append(time.perf_counter() - t0)
                    acked.append(cur.lastrowid)
                    time.sleep(interval)
            except BaseException as error:
                errors.append(error)
            finally:
                wconn.close()

        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        try:
            t0 = time.perf_counter()
            conn.execute("ALTER TABLE orders ADD COLUMN uid BLOB")
            conn.commit()
            steps.append(("add column", time.perf_counter() - t0))
            # The writer may already be mid-insert with the old column list: that is fine,
            # the backfill below covers every row whose uid is still NULL.
            dual_write.set()
            t0 = time.perf_counter()
            batches = 0
            last_id = 0
            for _ in range(1_000_000):  # bounded: each pass advances last_id or ends
                ids = conn.execute(
                    "SELECT id, created_ms FROM orders WHERE id > ? AND uid IS NULL ORDER BY id LIMIT ?",
                    (last_id, batch),
                ).fetchall()
                if not ids:
                    break
                conn.executemany(
                    "UPDATE orders SET uid = ? WHERE id = ? AND uid IS NULL",
                    [(new_uid(created), row_id) for row_id, created in ids],
                )
                conn.commit()
                last_id = ids[-1][0]
                batches += 1
            steps.append(("backfill", time.perf_counter() - t0))
            t0 = time.perf_counter()
            nulls = conn.execute("SELECT count(*) FROM orders WHERE uid IS NULL").fetchone()[0]
            duplicates = conn.execute("SELECT count(*) - count(DISTINCT uid) FROM orders").fetchone()[0]
            mismatched = sum(
                1
                for uid_bytes, created in conn.execute(
                    "SELECT uid, created_ms FROM orders WHERE uid IS NOT NULL"
                )
                if (int.from_bytes(uid_bytes, "big") >> 80) != created
            )
            conn.execute("CREATE UNIQUE INDEX orders_uid ON orders(uid)")
            conn.commit()
            steps.append(("verify + unique index", time.perf_counter() - t0))
            t0 = time.perf_counter()
            sample = conn.execute("SELECT id, uid FROM orders ORDER BY random() LIMIT 500").fetchall()
            lookup_bad = sum(
                1
                for row_id, uid_bytes in sample
                if conn.execute("SELECT id FROM orders WHERE uid = ?", (uid_bytes,)).fetchone()[0] != row_id
            )
            steps.append(("cut over reads", time.perf_counter() - t0))
            time.sleep(0.1)
        finally:
            stop.set()
            thread.join(timeout=25)
        if errors:
            raise RuntimeError(f"the writer failed: {errors[0]!r}") from errors[0]
        present = {row[0] for row in conn.execute("SELECT id FROM orders")}
        late_nulls = conn.execute("SELECT count(*) FROM orders WHERE uid IS NULL").fetchone()[0]
        total = len(present)
    summary = {
        "rows": total,
        "writer_rows": len(acked),
        "backfill_batches": batches,
        "null_uids": int(nulls + late_nulls),
        "duplicate_uids": int(duplicates),
        "timestamp_mismatches": int(mismatched),
        "lookup_mismatches": int(lookup_bad),
        "rows_lost": sum(1 for i in acked if i not in present),
        "max_writer_wait_ms": 1000 * max(waits, default=0.0),
        "sqlite": sqlite3.sqlite_version,
    }
    return Run.create(
        pd.DataFrame(steps, columns=["step", "seconds"]), summary, sqlite=sqlite3.sqlite_version
    )
