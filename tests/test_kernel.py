"""The experiment kernel: Run, sweep, claims, the notebook idiom, timing, hashing, data, children."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

from syslab import claims, datasets, experiment, hashing, notebook, plot, timing
from syslab.processes import ChildProcess

# ----------------------------------------------------------------------------- Run and sweep


def test_run_records_the_environment_and_is_frozen():
    run = experiment.Run.create(pd.DataFrame({"x": [1, 2]}), {"mean": 1.5}, filesystem="tmpfs")
    assert run.summary["mean"] == 1.5
    assert run.environment["filesystem"] == "tmpfs"
    assert "python" in run.environment
    with pytest.raises(TypeError):
        run.summary["mean"] = 2  # the summary is read-only
    with pytest.raises(AttributeError):
        run.frame = pd.DataFrame()
    assert list(run.summary_frame().columns) == ["quantity", "value"]


def test_run_takes_an_engine_description():
    class FakeEngine:
        def describe(self):
            return {"engine": "PostgreSQL 15.10", "engine_version": "15.10"}

    run = experiment.Run.create(pd.DataFrame(), engine=FakeEngine())
    assert run.environment["engine"] == "PostgreSQL 15.10"
    with pytest.raises(TypeError, match="engine"):
        experiment.Run.create(pd.DataFrame(), engine=object())
    with pytest.raises(TypeError, match="frame"):
        experiment.Run(frame=[1, 2])


def _noisy_mean(n: int, seed) -> dict:
    rng = np.random.default_rng(seed)
    return {"mean": float(rng.normal(size=n).mean())}


def test_sweep_is_reproducible_and_uses_independent_seeds():
    grid = {"n": [10, 1000]}
    a = experiment.sweep(_noisy_mean, grid, replications=5, seed=3)
    b = experiment.sweep(_noisy_mean, grid, replications=5, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns[:2]) == ["n", "replication"]
    assert len(a) == 10
    # Independent streams: the five replications of one point differ.
    assert a.loc[a.n == 10, "mean"].nunique() == 5
    # Common random numbers: replication r uses the same seed at every grid point.
    seeds = experiment.spawn_seeds(3, 5)
    assert a.loc[(a.n == 10) & (a.replication == 2), "mean"].item() == _noisy_mean(10, seeds[2])["mean"]


def test_sweep_spread_shrinks_like_one_over_root_n():
    frame = experiment.sweep(_noisy_mean, {"n": [100, 10_000]}, replications=200, seed=0)
    spread = frame.groupby("n")["mean"].std()
    # Standard error of a mean of n N(0,1) draws is 1/sqrt(n): 0.1 and 0.01 (±25% at 200 replications).
    assert spread[100] == pytest.approx(0.1, rel=0.25)
    assert spread[10_000] == pytest.approx(0.01, rel=0.25)


def test_sweep_rejects_bad_input():
    with pytest.raises(TypeError, match="function"):
        experiment.sweep(3, {"n": [1]})
    with pytest.raises(ValueError, match="replications"):
        experiment.sweep(_noisy_mean, {"n": [1]}, replications=0)
    with pytest.raises(ValueError, match="at most"):
        experiment.sweep(_noisy_mean, {"n": list(range(200))}, replications=100)
    with pytest.raises(TypeError, match="grid"):
        experiment.sweep(_noisy_mean, {"n": 5})
    with pytest.raises(ValueError, match="seed"):
        experiment.spawn_seeds(-1, 2)
    with pytest.raises(TypeError, match="DataFrame"):
        experiment.sweep(lambda n, seed: [n], {"n": [1]})


# ----------------------------------------------------------------------------- claims


def test_a_true_claim_passes_in_both_modes(monkeypatch):
    for mode in ("strict", "note"):
        monkeypatch.setenv("SYSLAB_CLAIMS", mode)
        assert claims.check("two is more than one", 2 > 1, observed={"a": 2, "b": 1}) is True


def test_a_false_claim_fails_strict_and_names_claim_and_values(monkeypatch):
    monkeypatch.setenv("SYSLAB_CLAIMS", "strict")
    with pytest.raises(claims.ClaimFailed, match=r"stays flat.*best_per_s = 1,000.*worst_per_s = 480"):
        claims.check("throughput stays flat", False, observed={"best_per_s": 1000, "worst_per_s": 480.0})


def test_a_false_claim_shows_a_note_for_a_reader(monkeypatch, capsys):
    monkeypatch.delenv("SYSLAB_CLAIMS", raising=False)
    shown = []
    import IPython.display

    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj.data))
    assert claims.check("A is faster than B", np.bool_(False), observed="A 3 ms, B 2 ms") is False
    assert shown and "On this machine: A 3 ms, B 2 ms" in shown[0] and "A is faster than B" in shown[0]


def test_claim_mode_typo_is_an_error(monkeypatch):
    monkeypatch.setenv("SYSLAB_CLAIMS", "strcit")
    with pytest.raises(ValueError, match="SYSLAB_CLAIMS"):
        claims.check("x", False, observed={})
    with pytest.raises(TypeError, match="holds"):
        claims.check("x", np.array([True, False]), observed={})
    assert claims.phrase(True, "faster", "slower") == "faster"
    assert claims.phrase(np.bool_(False), "faster", "slower") == "slower"


# ----------------------------------------------------------------------------- notebook idiom


def test_record_glues_plain_values_and_shows_them(monkeypatch):
    glued = {}
    monkeypatch.setattr(notebook, "_glue", lambda key, value, display=True: glued.update({key: value}))
    shown = []
    import IPython.display

    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj.data))
    notebook.record(n_rows=np.int64(50_000), share=np.float32(0.25), engine="PostgreSQL 15.10")
    assert glued == {"n_rows": 50_000, "share": 0.25, "engine": "PostgreSQL 15.10"}
    assert type(glued["n_rows"]) is int and type(glued["share"]) is float
    assert "`n_rows` = 50,000" in shown[0]
    with pytest.raises(TypeError, match="frame"):
        notebook.record(frame=pd.DataFrame())
    with pytest.raises(ValueError):
        notebook.record()


def test_figure_key_scheme_and_table_headers():
    with pytest.raises(ValueError, match="fig_"):
        notebook.figure("benchmark", None)
    with pytest.raises(TypeError, match="artist"):
        notebook.figure("fig_benchmark", 3)
    frame = pd.DataFrame({"pool_size": [4, 8], "p99_ms": [12.345, 3.21], "ok": [True, False]})
    html = notebook.table(frame, {"pool_size": "pool size", "p99_ms": "p99 (ms)"}).to_html()
    assert "pool size" in html and "p99 (ms)" in html and "12.3" in html and "ok" not in html
    assert 'class="syslab-table"' in html
    with pytest.raises(ValueError, match="p50_ms"):
        notebook.table(frame, {"p50_ms": "p50"})
    with pytest.raises(ValueError, match="500 rows"):
        notebook.table(pd.DataFrame({"x": range(501)}))


def test_panels_returns_the_callers_axes_or_new_ones():
    axes = plot.panels(2)
    assert len(axes) == 2
    assert list(plot.panels(2, axes=axes)) == list(axes)
    with pytest.raises(TypeError, match="axes"):
        plot.panels(3, axes=axes)
    with pytest.raises(ValueError, match="ncols"):
        plot.panels(0)


# ----------------------------------------------------------------------------- helpers


def test_median_seconds_is_robust_to_one_slow_sample():
    delays = iter([0.2, 0.001, 0.001, 0.001, 0.001])
    assert timing.median_seconds(lambda: time.sleep(next(delays)), repeats=5) < 0.05
    with pytest.raises(ValueError, match="repeats"):
        timing.median_seconds(lambda: None, repeats=10**9)
    with pytest.raises(TypeError, match="run"):
        timing.median_seconds(3)


def test_mix64_matches_the_splitmix64_reference():
    # Reference values of the SplitMix64 finaliser (z + golden, two multiply-xorshift rounds).
    def reference(x: int) -> int:
        mask = 2**64 - 1
        z = (x + 0x9E3779B97F4A7C15) & mask
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        return z ^ (z >> 31)

    values = [0, 1, 2, 12345, 2**63]
    assert [int(v) for v in hashing.mix64(np.array(values, dtype=np.uint64))] == [
        reference(v) for v in values
    ]
    assert not np.array_equal(hashing.mix64([1, 2], salt=1), hashing.mix64([1, 2]))
    assert hashing.stable_hash64_str("node-1") == hashing.stable_hash64_str(b"node-1")
    with pytest.raises(ValueError, match="values"):
        hashing.mix64([-1])


def test_data_ships_with_the_package():
    assert "latency_ladder.csv" in datasets.available()
    ladder = datasets.read_csv("latency_ladder.csv")
    assert {"operation", "latency_ns", "source"} <= set(ladder.columns)
    for bad in ("../README.md", "/etc/passwd", "latency_ladder"):
        with pytest.raises(ValueError, match="name"):
            datasets.read_csv(bad)


# ----------------------------------------------------------------------------- child programs


def test_child_protocol_ready_events_result():
    with ChildProcess("syslab.children.ticker", ["--ticks", "3"], timeout_s=20) as child:
        ready = child.expect("ready", timeout_s=10)
        assert ready["pid"] == child.pid
        result = child.expect("result", timeout_s=10)
    assert result["ticks"] == 3
    assert [e["n"] for e in child.events if e["event"] == "tick"] == [1, 2, 3]


def test_expect_times_out_and_reports_exit():
    with ChildProcess("syslab.children.ticker", ["--ticks", "0", "--interval-s", "1"], timeout_s=20) as child:
        child.expect("ready", timeout_s=10)
        with pytest.raises(TimeoutError, match="'result'"):
            child.expect("result", timeout_s=0.3)
    with ChildProcess("syslab.children.ticker", ["--ticks", "-1"], timeout_s=20) as child:
        with pytest.raises(RuntimeError, match="error"):
            child.expect("ready", timeout_s=10)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose; its reaper is init now.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.real
def test_a_child_dies_with_a_kernel_killed_by_sigkill():
    # A stand-in for a Jupyter kernel: starts a child, reports its pid, then waits forever.
    kernel_code = textwrap.dedent(
        """
        import sys, time
        from syslab.processes import ChildProcess
        child = ChildProcess("syslab.children.ticker", ["--ticks", "0", "--interval-s", "0.2"], timeout_s=60)
        child.__enter__()
        child.expect("ready", timeout_s=20)
        print(child.pid, flush=True)
        time.sleep(60)
        """
    )
    kernel = subprocess.Popen([sys.executable, "-c", kernel_code], stdout=subprocess.PIPE, text=True)
    try:
        child_pid = int(kernel.stdout.readline())
        assert _alive(child_pid)
        kernel.send_signal(signal.SIGKILL)
        kernel.wait(timeout=10)
        deadline = time.monotonic() + 15
        while _alive(child_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(child_pid), "the child outlived its SIGKILLed parent"
    finally:
        kernel.kill()
        kernel.wait(timeout=10)


@pytest.mark.parametrize("display", [False, True])
@pytest.mark.parametrize("value", [3, 2.5, "a phrase", True])
def test_record_glues_exactly_as_myst_nb_does(monkeypatch, value, display):
    # syslab.notebook writes myst-nb's glue outputs itself (importing myst_nb's glue costs ~2 s
    # per chapter); the book reads them with myst-nb, so the two must emit the same display call.
    import IPython.display
    import myst_nb.ext.glue as myst_glue

    from syslab import notebook

    calls = []

    def capture(*args, **kwargs):
        calls.append((args, kwargs))

    monkeypatch.setattr(myst_glue, "ipy_display", capture)
    monkeypatch.setattr(IPython.display, "display", capture)
    myst_glue.glue("key_a", value, display=display)
    notebook._glue("key_a", value, display=display)
    assert len(calls) == 2
    assert calls[0] == calls[1]
