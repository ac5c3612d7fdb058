"""Small helpers shared by the experiments that talk SQL to a real PostgreSQL or MariaDB.

Private: the concept modules (``id_exhaustion``, ``lock_manager``, ``commit_cost``, ``sargable``)
use these so each experiment opens its sessions, bounds its statements and reads errors the same
way. Both drivers (psycopg 3 and PyMySQL) take ``%s`` placeholders.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence

KINDS = ("postgres", "mariadb")
MAX_TIMEOUT_S = 600.0


def kind_of(engine: object, name: str = "engine") -> str:
    """``"postgres"`` or ``"mariadb"`` for a :class:`syslab.engines.Engine`, else a TypeError naming ``name``."""
    kind = getattr(engine, "name", None)
    if not callable(getattr(engine, "database", None)) or kind not in KINDS:
        raise TypeError(f"{name} must be a syslab.engines Engine for postgres or mariadb, got {engine!r}")
    return kind


def deadline_after(timeout_s: float) -> float:
    """The ``time.monotonic()`` value ``timeout_s`` from now."""
    return time.monotonic() + timeout_s


def check_deadline(deadline: float, what: str) -> None:
    """Raise ``TimeoutError`` naming ``what`` once ``deadline`` has passed."""
    if time.monotonic() > deadline:
        raise TimeoutError(f"{what} did not finish within its timeout_s")


def statement_budget_ms(deadline: float) -> int:
    """Milliseconds left before ``deadline`` (at least 1), for a server-side statement timeout."""
    return max(1, int(1000 * (deadline - time.monotonic())))


class Session:
    """One autocommit connection with the driver differences hidden.

    Parameters
    ----------
    kind : str
        ``"postgres"`` or ``"mariadb"``.
    conn : driver connection
        What ``db.connect()`` returned.
    deadline : float
        ``time.monotonic()`` deadline; every statement gets a server-side timeout that ends there.
    """

    def __init__(self, kind: str, conn: object, deadline: float) -> None:
        self.kind = kind
        self.conn = conn
        self.deadline = deadline
        if kind == "postgres":
            conn.autocommit = True
        else:
            conn.autocommit(True)
        self._bound()

    def _bound(self) -> None:
        budget_ms = statement_budget_ms(self.deadline)
        if self.kind == "postgres":
            self.conn.execute(f"SET statement_timeout = {budget_ms}")
            self.conn.execute(f"SET lock_timeout = {budget_ms}")
        else:
            with self.conn.cursor() as cur:
                cur.execute(f"SET SESSION max_statement_time = {budget_ms / 1000:.3f}")
                cur.execute(f"SET SESSION innodb_lock_wait_timeout = {max(1, int(budget_ms / 1000) + 1)}")

    def execute(self, sql: str, params: Sequence | None = None) -> list[tuple]:
        """Run one statement; the rows it returned (empty for DDL/DML)."""
        check_deadline(self.deadline, "the experiment")
        if self.kind == "postgres":
            cur = self.conn.execute(sql, params)
            return list(cur.fetchall()) if cur.description is not None else []
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall()) if cur.description is not None else []

    def scalar(self, sql: str, params: Sequence | None = None) -> object:
        """The first column of the first row."""
        rows = self.execute(sql, params)
        return rows[0][0] if rows else None

    def begin(self) -> None:
        """Start an explicit transaction."""
        self.execute("BEGIN" if self.kind == "postgres" else "START TRANSACTION")

    def commit(self) -> None:
        """Commit the open transaction."""
        self.execute("COMMIT")

    def rollback(self) -> None:
        """Roll the open transaction back (never raises)."""
        with contextlib.suppress(Exception):
            if self.kind == "postgres":
                self.conn.execute("ROLLBACK")
            else:
                self.conn.rollback()

    def close(self) -> None:
        """Close the connection (never raises)."""
        with contextlib.suppress(Exception):
            self.conn.close()


def error_info(session: Session, error: BaseException) -> dict[str, object]:
    """``errno``, ``sqlstate`` and ``message`` of a driver error, as the server reported them."""
    if session.kind == "postgres":
        diag = getattr(error, "diag", None)
        return {
            "errno": None,
            "sqlstate": getattr(error, "sqlstate", None),
            "message": getattr(diag, "message_primary", None) or str(error).splitlines()[0],
        }
    args = getattr(error, "args", ())
    errno = args[0] if args and isinstance(args[0], int) else None
    message = str(args[1]) if len(args) > 1 else str(error)
    sqlstate = None
    # The diagnostics area may also hold warnings raised before the error (a clamped value,
    # say): take the SQLSTATE of the condition whose number is the error's.
    with contextlib.suppress(Exception):
        with session.conn.cursor() as cur:
            cur.execute("GET DIAGNOSTICS @syslab_n = NUMBER")
            cur.execute("SELECT @syslab_n")
            count = int(cur.fetchone()[0] or 0)
            for index in range(1, min(count, 64) + 1):
                cur.execute(
                    f"GET DIAGNOSTICS CONDITION {index} @syslab_state = RETURNED_SQLSTATE, @syslab_errno = MYSQL_ERRNO"
                )
                cur.execute("SELECT @syslab_state, @syslab_errno")
                state, number = cur.fetchone()
                if sqlstate is None or number == errno:
                    sqlstate = state
    return {"errno": errno, "sqlstate": sqlstate, "message": message}


def driver_errors(kind: str) -> tuple[type[BaseException], ...]:
    """The driver's base error class(es) for ``kind``."""
    if kind == "postgres":
        import psycopg

        return (psycopg.Error,)
    import pymysql

    return (pymysql.MySQLError,)


@contextlib.contextmanager
def fresh_database(engine: object, deadline: float) -> Iterator[object]:
    """``engine.database()`` (a throwaway database), checked against the deadline on entry."""
    check_deadline(deadline, "the experiment")
    with engine.database() as db:
        yield db


def open_session(kind: str, db: object, deadline: float) -> Session:
    """A :class:`Session` on a new connection to ``db``.

    MariaDB connections skip TLS: PyMySQL otherwise builds an SSL context per connection
    (0.2 s each, loading the system's certificates) for a server on 127.0.0.1.
    """
    kwargs = {"ssl_disabled": True} if kind == "mariadb" else {}
    return Session(kind, db.connect(**kwargs), deadline)
