"""The shared helpers every module uses: validation, environment, child processes, SQLite tools."""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

from syslab import environment, processes, sqlite_tools, validate


def test_validate_converts_and_names_the_parameter():
    assert validate.positive_int("n", 3.0) == 3
    assert validate.positive_float("rate", 2) == 2.0
    assert validate.probability("p", 1) == 1.0
    assert validate.choice("mode", "a", ["a", "b"]) == "a"
    assert validate.sequence_of_positive_ints("sizes", np.array([1, 2])) == [1, 2]
    with pytest.raises(TypeError, match="n must be an integer"):
        validate.positive_int("n", 2.5)
    with pytest.raises(TypeError, match="flag"):
        validate.positive_int("flag", True)
    with pytest.raises(ValueError, match="rate must be > 0"):
        validate.positive_float("rate", 0)
    with pytest.raises(ValueError, match="rate must be finite"):
        validate.positive_float("rate", math.inf)
    assert validate.positive_float("timeout", math.inf, allow_inf=True) == math.inf
    with pytest.raises(ValueError, match="p must be in"):
        validate.probability("p", 1.5)
    with pytest.raises(ValueError, match="mode must be one of"):
        validate.choice("mode", "c", ["a", "b"])
    with pytest.raises(ValueError, match="NaN"):
        validate.finite_float("x", float("nan"))
    with pytest.raises(ValueError, match="sizes must not be empty"):
        validate.sequence_of_positive_ints("sizes", [])


def test_rng_from_seed():
    a = validate.rng_from_seed(5).random()
    b = validate.rng_from_seed(5).random()
    assert a == b
    generator = np.random.default_rng(1)
    assert validate.rng_from_seed(generator) is generator
    assert isinstance(validate.rng_from_seed(np.random.SeedSequence(3)), np.random.Generator)
    with pytest.raises(ValueError, match="seed"):
        validate.rng_from_seed(-1)
    with pytest.raises(TypeError, match="seed"):
        validate.rng_from_seed(1.5)


def test_environment_is_read_at_run_time():
    facts = environment.describe()
    assert facts["sqlite"] == sqlite3.sqlite_version
    assert facts["cpu_count"] >= 1
    table = environment.describe_table(extra_fact=42)
    assert table.loc["extra_fact", "value"] == "42"


@pytest.mark.real
def test_child_process_is_killed_even_when_the_block_raises():
    with pytest.raises(RuntimeError):
        with processes.ChildProcess("http.server", ["0", "--bind", "127.0.0.1"], timeout_s=10) as child:
            pid = child.pid
            time.sleep(0.2)
            raise RuntimeError("the experiment failed")
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.real
def test_child_process_runs_syslab_from_any_directory(tmp_path):
    with processes.ChildProcess("syslab.environment", [], timeout_s=10, cwd=tmp_path) as child:
        assert child.wait(10) == 0
    assert processes.package_env()["PYTHONPATH"].split(os.pathsep)[0] == str(
        Path(processes.__file__).parents[1]
    )
    assert processes.python_command("syslab.environment")[1:] == ["-m", "syslab.environment"]


@pytest.mark.real
def test_wait_never_exceeds_the_hard_limit():
    import subprocess

    with processes.ChildProcess("http.server", ["0", "--bind", "127.0.0.1"], timeout_s=0.5) as child:
        started = time.monotonic()
        with pytest.raises(subprocess.TimeoutExpired):
            child.wait(60)
        assert time.monotonic() - started < 2
        child.send_signal(signal.SIGTERM)


def test_query_plan_and_classification():
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT, c TEXT)")
    conn.execute("CREATE INDEX t_b ON t (b)")
    assert sqlite_tools.plan_uses_index(sqlite_tools.query_plan(conn, "SELECT * FROM t WHERE b = ?", ("x",)))
    assert not sqlite_tools.plan_uses_index(sqlite_tools.query_plan(conn, "SELECT * FROM t WHERE c = 'x'"))
    # Both wordings, before and after SQLite 3.36.
    assert not sqlite_tools.plan_uses_index(["SCAN TABLE t"])
    assert not sqlite_tools.plan_uses_index(["SCAN t USING COVERING INDEX t_b"])
    assert sqlite_tools.plan_uses_index(["SEARCH TABLE t USING INDEX t_b (b=?)"])
    assert sqlite_tools.plan_uses_index(["MULTI-INDEX OR", "INDEX 1", "SEARCH t USING INDEX t_b (b=?)"])
    with pytest.raises(ValueError, match="sql"):
        sqlite_tools.query_plan(conn, " ")


def test_temporary_database_and_page_stats():
    with sqlite_tools.temporary_database() as (conn, path):
        conn.execute("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)")
        conn.executemany("INSERT INTO t (b) VALUES (?)", ((f"value-{i}",) for i in range(20_000)))
        conn.commit()
        stats = sqlite_tools.page_stats(conn, "t")
        assert stats.loc["t", "cells"] == 20_000
        # Sequential rowids are appended to the right-most leaf and fill it: > 90% full.
        assert stats.loc["t", "leaf_fill"] > 0.9
        assert sqlite_tools.database_size_bytes(path) > 0
    assert not path.exists() and not path.parent.exists()


def test_median_seconds_is_bounded():
    started = time.perf_counter()
    value = sqlite_tools.median_seconds(lambda: time.sleep(0.05), repeats=100, max_total_s=0.2)
    assert value >= 0.04
    assert time.perf_counter() - started < 1.0
