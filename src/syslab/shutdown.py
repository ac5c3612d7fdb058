"""Graceful shutdown: the five-stage drain, for real and in a Kubernetes termination model.

Real experiments (child processes from :mod:`syslab.children.drain_server`, 127.0.0.1 only,
temp files only, every child killed on exit):

- :func:`run_drain` -- a server with many requests in flight gets SIGTERM or
  SIGKILL; which requests complete and which acknowledged lines reach the journal.
- :func:`run_handler_pitfall` -- work inside the signal handler vs setting a flag.
- :func:`run_pid1` -- SIGTERM to PID 1 of a new PID namespace, with and without a
  handler (only where ``unshare -rpf`` works without privileges).

Model (vectorised numpy):

- :func:`simulate_termination` -- requests routed to a terminating pod while
  endpoint removal propagates, a preStop sleep, a drain and a grace period that
  ends in SIGKILL; :func:`theory_race_refused` and :func:`theory_killed_in_flight`
  are its closed forms.
"""

from __future__ import annotations

import math
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from syslab import plot, validate
from syslab.experiment import Run
from syslab.processes import ChildProcess, package_env

__all__ = [
    "DrainRun",
    "TerminationConfig",
    "exit_status_for_shell",
    "plot_race",
    "plot_grace",
    "pid1_supported",
    "run_drain",
    "run_handler_pitfall",
    "run_pid1",
    "simulate_termination",
    "summarize_drain_runs",
    "summarize_termination",
    "sweep_grace",
    "sweep_prestop",
    "theory_killed_in_flight",
    "theory_race_refused",
    "PrivatePostgres",
    "run_postgres_stop",
    "run_redis_stop",
    "run_keepalive_after_close",
    "private_server_reason",
    "postgres_stop_from_docs",
    "redis_stop_from_docs",
]

SIGNALS = {"SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}
MAX_SERVICE_SIGMA = 5.0  # lognormal shape: exp(sigma^2/2) overflows long before sigma reaches 38
MAX_REAL_WAIT_S = 120.0  # longest a real experiment here waits for a child (run_s, grace_s, wait_s)
MAX_NODES = 100_000  # nodes routing to one pod in the termination model
MAX_TERMINATION_REQUESTS = 5_000_000  # expected arrivals in one simulated termination
MAX_MODEL_S = 86_400.0  # any duration in the termination model (a day)
MAX_SWEEP_POINTS = 50  # values in one sweep
MAX_SWEEP_RUNS = 20_000  # simulated terminations in one sweep (values x n_seeds)


def exit_status_for_shell(returncode: int) -> int:
    """What a shell or Kubernetes reports for a Popen return code: 128+n for death by signal n.

    Parameters
    ----------
    returncode : int
        A :class:`subprocess.Popen` return code (negative: killed by that signal).

    Returns
    -------
    int
        The status a shell or Kubernetes shows.
    """
    returncode = validate.int_in_range("returncode", returncode, -255, 255)
    return 128 - returncode if returncode < 0 else returncode


# --------------------------------------------------------------------------- real: the drain


class _LineReader:
    """Collect a child's stdout lines with the monotonic time they arrived (a daemon thread)."""

    def __init__(self, stream) -> None:
        self.lines: queue.Queue[tuple[float, str]] = queue.Queue()
        self.seen: list[tuple[float, str]] = []
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream) -> None:
        try:
            for raw in iter(stream.readline, b""):
                self.lines.put((time.monotonic(), raw.decode(errors="replace").strip()))
        except (OSError, ValueError):
            return

    def wait_for(self, event: str, timeout_s: float) -> dict | None:
        """Return the first protocol event named ``event`` within ``timeout_s``, else None."""
        for _, line in self.seen:
            message = _event(line)
            if message.get("event") == event:
                return message
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                item = self.lines.get(timeout=left)
            except queue.Empty:
                return None
            self.seen.append(item)
            message = _event(item[1])
            if message.get("event") == event:
                return message
        return None

    def drain(self) -> list[tuple[float, str]]:
        self.thread.join(timeout=2)
        while True:
            try:
                self.seen.append(self.lines.get_nowait())
            except queue.Empty:
                return self.seen


def _event(line: str) -> dict:
    """A protocol line as a dict ({} for anything else)."""
    import json

    try:
        message = json.loads(line)
    except ValueError:
        return {}
    return message if isinstance(message, dict) else {}


def _stages(events: list[dict], t0: float) -> pd.DataFrame:
    rows = [
        {"stage": e["name"], "t_s": float(e["t"]) - t0, "detail": e.get("detail", "")}
        for e in events
        if e.get("event") == "stage"
    ]
    return pd.DataFrame(rows, columns=["stage", "t_s", "detail"])


def _wait_stage(child: ChildProcess, name: str, timeout_s: float) -> bool:
    """Read the child's events until the drain stage ``name`` (True) or the timeout or its exit (False)."""
    deadline = time.monotonic() + timeout_s
    if any(e.get("event") == "stage" and e.get("name") == name for e in child.events):
        return True
    while (left := deadline - time.monotonic()) > 0:
        try:
            if child.expect("stage", left).get("name") == name:
                return True
        except (TimeoutError, RuntimeError):
            return False
    return False


def _read_rest(child: ChildProcess) -> list[dict]:
    """Every event the (exited) child sent, read to the end of its stdout."""
    try:
        child.expect("end of output", 1.0)  # no such event: reads everything until EOF
    except (TimeoutError, RuntimeError):
        pass
    return child.events


def _client(
    port: int, request_id: str, service_ms: float, accepted: threading.Event, out: dict, limit_s: float
):
    """One request: connect, send, wait for 'accepted' and then 'ok'; record what happened."""
    started = time.monotonic()
    out.update(request_id=request_id, service_ms=service_ms, outcome="lost", latency_s=float("nan"))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=limit_s) as sock:
            sock.sendall(f"{request_id} {service_ms}\n".encode())
            reader = sock.makefile("r", encoding="utf-8")
            if reader.readline().startswith("accepted"):
                accepted.set()
                if reader.readline().startswith("ok"):
                    out.update(outcome="ok", latency_s=time.monotonic() - started)
    except ConnectionRefusedError:
        out["outcome"] = "refused"
    except OSError:
        pass  # reset, EOF or our own timeout: the request is lost
    finally:
        accepted.set()  # never leave the driver waiting on a request that failed early


def _try_connect(port: int) -> str:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return "accepted"
    except ConnectionRefusedError:
        return "refused"
    except OSError as exc:
        return type(exc).__name__


@dataclass(frozen=True)
class DrainRun:
    """What one :func:`run_drain` experiment observed.

    ``requests`` has one row per request: ``request_id``, ``kind`` (``warm``:
    finished before the signal; ``in_flight``; ``stuck``: far longer than any
    drain), ``service_ms``, ``outcome`` (``ok``/``lost``/``refused``), ``latency_s``
    and ``journaled`` (its id is in the journal file after the process ended).
    ``stages`` has the server's stage reports (``stage``, ``t_s`` after the
    signal, ``detail``).

    Attributes
    ----------
    signal_name : str
        ``SIGTERM`` or ``SIGKILL``.
    drain_timeout_s : float or None
        The server's drain deadline (None: unbounded).
    grace_s : float
        Seconds from the signal to the supervisor's SIGKILL.
    requests, stages : pandas.DataFrame
        As above.
    returncode : int
        The server's Popen return code.
    supervisor_killed : bool
        Whether the grace period ran out.
    connect_after_signal : str
        ``accepted`` or ``refused``: a connection attempted during the drain.
    exit_after_s : float
        Seconds from the signal to the exit.
    """

    signal_name: str
    drain_timeout_s: float | None
    grace_s: float
    requests: pd.DataFrame
    stages: pd.DataFrame
    returncode: int
    supervisor_killed: bool
    connect_after_signal: str
    exit_after_s: float


def run_drain(
    signal_name: str = "SIGTERM",
    *,
    n_in_flight: int = 40,
    n_warm: int = 20,
    service_s: float = 0.5,
    n_stuck: int = 0,
    drain_timeout_s: float | None = 5.0,
    grace_s: float = 5.0,
    flush_interval_s: float = 5.0,
    timeout_s: float = 30.0,
) -> DrainRun:
    """Send ``signal_name`` to a real server with ``n_in_flight`` requests in progress.

    The server (``python -m syslab.children.drain_server serve``) listens on 127.0.0.1. The
    driver first completes ``n_warm`` instant requests (acknowledged, journal lines
    still in the server's buffer), then starts ``n_in_flight`` requests of
    ``service_s`` each plus ``n_stuck`` requests of 60 s, waits until the server
    has accepted all of them, and sends the signal. Like a Kubernetes kubelet, it
    then waits ``grace_s`` for the process to exit and SIGKILLs it otherwise.

    Parameters
    ----------
    signal_name : {"SIGTERM", "SIGKILL"}
    n_in_flight, n_warm, n_stuck : int
        Requests in progress at the signal, completed before it, and hung.
    service_s : float
        Work per in-flight request, seconds.
    drain_timeout_s : float or None
        The server's bound on stage 3; None drains without a bound.
    grace_s : float
        Time from the signal to the supervisor's SIGKILL, seconds.
    flush_interval_s : float
        How often the server flushes its journal in normal operation, seconds.
    timeout_s : float
        Hard limit on the whole experiment, seconds.

    Returns
    -------
    DrainRun
    """
    signal_name = validate.choice("signal_name", signal_name, SIGNALS)
    n_in_flight = validate.int_in_range("n_in_flight", n_in_flight, 0, 200)
    n_warm = validate.int_in_range("n_warm", n_warm, 0, 1000)
    n_stuck = validate.int_in_range("n_stuck", n_stuck, 0, 10)
    service_s = validate.float_in_range("service_s", service_s, 0.0, 10.0)
    if drain_timeout_s is not None:
        drain_timeout_s = validate.positive_float("drain_timeout_s", drain_timeout_s)
    grace_s = validate.float_in_range("grace_s", grace_s, 0.0, MAX_REAL_WAIT_S, low_inclusive=False)
    flush_interval_s = validate.float_in_range(
        "flush_interval_s", flush_interval_s, 0.0, 60.0, low_inclusive=False
    )
    timeout_s = validate.float_in_range("timeout_s", timeout_s, 0.0, 600.0, low_inclusive=False)
    if timeout_s < grace_s + service_s + 5:
        raise ValueError(f"timeout_s must be at least grace_s + service_s + 5, got {timeout_s}")

    with tempfile.TemporaryDirectory(prefix="syslab-drain-") as tmp:
        journal = Path(tmp) / "journal.log"
        args = [
            "serve",
            "--journal",
            str(journal),
            "--flush-interval-s",
            str(flush_interval_s),
            "--drain-timeout-s",
            str(drain_timeout_s or 0),
            "--max-life-s",
            str(timeout_s),
        ]
        with ChildProcess(
            "syslab.children.drain_server", args, timeout_s=timeout_s, stderr=subprocess.DEVNULL
        ) as child:
            port = int(child.expect("ready", 10.0)["port"])
            results: list[dict] = []
            threads: list[threading.Thread] = []

            def start(request_id: str, service_ms: float, kind: str) -> threading.Event:
                accepted = threading.Event()
                out = {"kind": kind}
                results.append(out)
                thread = threading.Thread(
                    target=_client, args=(port, request_id, service_ms, accepted, out, timeout_s), daemon=True
                )
                thread.start()
                threads.append(thread)
                return accepted

            for i in range(n_warm):
                start(f"w{i}", 0.0, "warm").wait(5.0)
            for thread in threads:
                thread.join(timeout=5.0)
            events = [start(f"r{i}", service_s * 1000, "in_flight") for i in range(n_in_flight)]
            events += [start(f"s{i}", 60_000.0, "stuck") for i in range(n_stuck)]
            for event in events:
                event.wait(5.0)
            t_signal = time.monotonic()
            child.send_signal(SIGNALS[signal_name])
            if signal_name == "SIGTERM":
                _wait_stage(child, "stop_intake", min(grace_s, 5.0))
            else:
                try:
                    child.wait(5.0)
                except subprocess.TimeoutExpired:
                    pass
            connect_after = _try_connect(port)
            supervisor_killed = False
            try:
                child.wait(max(0.0, grace_s - (time.monotonic() - t_signal)))
            except subprocess.TimeoutExpired:
                child.send_signal(signal.SIGKILL)  # the grace period is over
                supervisor_killed = True
                child.wait(5.0)
            exit_after_s = time.monotonic() - t_signal
            returncode = child.process.returncode
            for thread in threads:
                thread.join(timeout=max(0.1, service_s + 2.0))
            events = _read_rest(child)
        journaled = set(journal.read_text(encoding="utf-8").split()) if journal.exists() else set()

    requests = pd.DataFrame(results, columns=["request_id", "kind", "service_ms", "outcome", "latency_s"])
    requests["journaled"] = requests["request_id"].isin(journaled)
    return DrainRun(
        signal_name=signal_name,
        drain_timeout_s=drain_timeout_s,
        grace_s=grace_s,
        requests=requests,
        stages=_stages(events, t_signal),
        returncode=int(returncode),
        supervisor_killed=supervisor_killed,
        connect_after_signal=connect_after,
        exit_after_s=float(exit_after_s),
    )


def summarize_drain_runs(runs: dict[str, DrainRun]) -> pd.DataFrame:
    """One row per labelled run: what completed, what was acknowledged but not journaled, how it exited.

    Parameters
    ----------
    runs : dict of str to DrainRun
        Labelled :func:`run_drain` results.

    Returns
    -------
    pandas.DataFrame
        One row per run: ``run``, ``signal``, ``in_flight``, ``in_flight_ok``, ``lost``, ``acked``,
        ``journaled``, ``acked_not_journaled``, ``exit_status``, ``supervisor_sigkill``,
        ``connect_after_signal``, ``exit_after_s``.
    """
    if not isinstance(runs, dict) or not runs:
        raise TypeError(f"runs must be a non-empty dict of label -> DrainRun, got {type(runs).__name__}")
    for label, run in runs.items():
        validate.instance(f"runs[{label!r}]", run, DrainRun)
    rows = []
    for label, run in runs.items():
        req = run.requests
        acked = req["outcome"] == "ok"
        rows.append(
            {
                "run": label,
                "signal": run.signal_name,
                "in_flight": int((req["kind"] != "warm").sum()),
                "in_flight_ok": int((acked & (req["kind"] != "warm")).sum()),
                "lost": int((req["outcome"] == "lost").sum()),
                "acked": int(acked.sum()),
                "journaled": int(req["journaled"].sum()),
                "acked_not_journaled": int((acked & ~req["journaled"]).sum()),
                "exit_status": exit_status_for_shell(run.returncode),
                "supervisor_sigkill": run.supervisor_killed,
                "connect_after_signal": run.connect_after_signal,
                "exit_after_s": round(run.exit_after_s, 3),
            }
        )
    return pd.DataFrame(rows).set_index("run")


# --------------------------------------------------------------------------- real: pitfalls


def run_handler_pitfall(handler: str = "flag", *, run_s: float = 0.3, grace_s: float = 1.5) -> Run:
    """SIGTERM a busy loop whose handler either sets a flag or does the flush itself.

    The loop (``children.drain_server lock``) holds a journal lock nearly all the time.
    A handler that takes the same lock waits for the code it interrupted: a
    deadlock the supervisor ends with SIGKILL after ``grace_s``.

    Parameters
    ----------
    handler : {"flag", "work"}
        What the SIGTERM handler does.
    run_s : float
        Seconds the loop runs before the signal.
    grace_s : float
        Seconds until the supervisor's SIGKILL.

    Returns
    -------
    dict
        ``handler``, ``returncode``, ``exit_status`` (as a shell reports it),
        ``supervisor_killed``, ``journal_lines`` (lines that reached the file),
        ``exit_after_s``.
    """
    handler = validate.choice("handler", handler, ["flag", "work"])
    run_s = validate.float_in_range("run_s", run_s, 0.0, MAX_REAL_WAIT_S, low_inclusive=False)
    grace_s = validate.float_in_range("grace_s", grace_s, 0.0, MAX_REAL_WAIT_S, low_inclusive=False)
    limit_s = run_s + grace_s + 10
    with tempfile.TemporaryDirectory(prefix="syslab-lock-") as tmp:
        journal = Path(tmp) / "journal.log"
        args = ["lock", "--handler", handler, "--journal", str(journal), "--max-life-s", str(limit_s)]
        with ChildProcess(
            "syslab.children.drain_server", args, timeout_s=limit_s, stderr=subprocess.DEVNULL
        ) as child:
            child.expect("ready", 10.0)
            time.sleep(run_s)
            t_signal = time.monotonic()
            child.send_signal(signal.SIGTERM)
            killed = False
            try:
                child.wait(grace_s)
            except subprocess.TimeoutExpired:
                child.send_signal(signal.SIGKILL)
                killed = True
                child.wait(5.0)
            exit_after_s = time.monotonic() - t_signal
            returncode = child.process.returncode
        lines = len(journal.read_text(encoding="utf-8").split()) if journal.exists() else 0
    result = {
        "handler": handler,
        "returncode": int(returncode),
        "exit_status": exit_status_for_shell(returncode),
        "supervisor_killed": killed,
        "journal_lines": lines,
        "exit_after_s": round(exit_after_s, 3),
    }
    return Run.create(pd.DataFrame([result]), result)


def pid1_supported(timeout_s: float = 5.0) -> tuple[bool, str]:
    """Whether ``unshare -rpf`` (a user + PID namespace, no privileges needed) works here, and why not.

    Parameters
    ----------
    timeout_s : float
        How long the probe may take.

    Returns
    -------
    tuple of (bool, str)
        Whether it works, and the reason.
    """
    timeout_s = validate.float_in_range("timeout_s", timeout_s, 0.0, MAX_REAL_WAIT_S, low_inclusive=False)
    if sys.platform != "linux":
        return False, f"PID namespaces are Linux-only (this is {sys.platform})"
    if shutil.which("unshare") is None:
        return False, "the unshare command (util-linux) is not installed"
    try:
        done = subprocess.run(
            ["unshare", "-rpf", "true"], capture_output=True, timeout=timeout_s, check=False, text=True
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"unshare failed: {exc}"
    if done.returncode != 0:
        return False, f"unshare -rpf refused: {done.stderr.strip() or done.returncode}"
    return True, "unshare -rpf works"


def _namespace_child(unshare_pid: int) -> int | None:
    """The host PID of the process ``unshare -f`` forked (PID 1 inside the namespace)."""
    children = Path(f"/proc/{unshare_pid}/task/{unshare_pid}/children")
    try:
        pids = children.read_text().split()
        return int(pids[0]) if pids else None
    except OSError:
        pass  # a kernel without CONFIG_PROC_CHILDREN: look for the child by its parent PID
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == unshare_pid:
            return int(stat.parent.name)
    return None


def run_pid1(handler: str = "none", *, wait_s: float = 1.0) -> Run:
    """SIGTERM a Python process that is PID 1 of its own PID namespace, with or without a handler.

    Runs ``unshare -rpf python -m syslab.children.drain_server pid1`` (a user namespace
    maps us to root inside it, so no privileges are needed) and sends SIGTERM from
    outside to the namespaced process. Check :func:`pid1_supported` first.

    Parameters
    ----------
    handler : {"none", "flag"}
        Whether the PID 1 process installs a SIGTERM handler.
    wait_s : float
        How long to wait for it to exit after SIGTERM.

    Returns
    -------
    dict
        ``handler``, ``pid_inside`` (should be 1), ``alive_after_sigterm``,
        ``exit_status`` of the PID-1 process's ``unshare`` parent, ``exit_after_s``
        (NaN if it ignored the signal and had to be SIGKILLed).
    """
    handler = validate.choice("handler", handler, ["none", "flag"])
    wait_s = validate.float_in_range("wait_s", wait_s, 0.0, MAX_REAL_WAIT_S, low_inclusive=False)
    ok, reason = pid1_supported()
    if not ok:
        raise RuntimeError(f"cannot run the PID 1 demo: {reason}")
    # The child's watchdog is this experiment's own deadline (10 s to start, wait_s, 5 s to clean
    # up), at most MAX_REAL_WAIT_S + 15 s: a killed kernel never leaves it running longer.
    limit_s = min(wait_s, MAX_REAL_WAIT_S) + 15
    cmd = [
        "unshare",
        "-rpf",
        sys.executable,
        "-m",
        "syslab.children.drain_server",
        "pid1",
        "--handler",
        handler,
    ]
    cmd += ["--max-life-s", str(limit_s)]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        env=package_env(),
        start_new_session=True,
    )
    try:
        reader = _LineReader(proc.stdout)
        ready = reader.wait_for("ready", 10.0)
        if ready is None:
            raise RuntimeError("the PID 1 child did not start within 10 s")
        inner = _namespace_child(proc.pid)
        if inner is None:
            raise RuntimeError("could not find the namespaced child's host PID")
        t_signal = time.monotonic()
        os.kill(inner, signal.SIGTERM)
        try:
            proc.wait(timeout=wait_s)
            alive = False
            exit_after = time.monotonic() - t_signal
        except subprocess.TimeoutExpired:
            alive = True
            exit_after = float("nan")
        result = {
            "handler": handler,
            "pid_inside": int(ready["pid"]),
            "alive_after_sigterm": alive,
            "exit_status": -1 if alive else exit_status_for_shell(proc.returncode),
            "exit_after_s": exit_after,
        }
        return Run.create(pd.DataFrame([result]), result)
    finally:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # SIGKILL is never dropped, even for PID 1
            except ProcessLookupError:
                pass
        proc.wait(timeout=5)
        proc.stdout.close()


# --------------------------------------------------------------------------- model: Kubernetes


@dataclass(frozen=True)
class TerminationConfig:
    """A pod being terminated while it serves traffic.

    Time 0 is when the kubelet sends the preStop hook / SIGTERM and, in
    parallel, the endpoint controller starts removing the pod from Services.

    Attributes
    ----------
    rate_per_s : float
        Requests per second routed to the pod before termination.
    endpoint_delay_max_s : float
        Each node stops routing at a U(0, max) delay after time 0 (seconds).
    n_nodes : int
        Nodes routing to the pod.
    prestop_s : float
        preStop sleep: the listener stays open this long after time 0.
    service_median_s, service_sigma : float
        Lognormal request time (median in seconds, shape).
    flush_s : float
        Time to flush state after the drain.
    grace_s : float
        ``terminationGracePeriodSeconds``: SIGKILL at this time.
    warmup_s : float
        Arrivals start at ``-warmup_s`` so in-flight work is at steady state.
    """

    rate_per_s: float = 100.0  # requests per second routed to this pod before termination
    endpoint_delay_max_s: float = 2.0  # each node stops routing at a U(0, max) delay after time 0
    n_nodes: int = 50  # nodes (kube-proxy / load-balancer targets) routing to the pod
    prestop_s: float = 0.0  # preStop sleep: the listener stays open this long after time 0
    service_median_s: float = 0.2  # median request duration, seconds (lognormal)
    service_sigma: float = 1.5  # lognormal shape: a long tail of slow requests
    flush_s: float = 1.0  # time to flush state after the drain, seconds
    grace_s: float = 30.0  # terminationGracePeriodSeconds: SIGKILL at this time
    warmup_s: float = 120.0  # simulate arrivals from -warmup_s so in-flight work is at steady state

    def __post_init__(self) -> None:
        validate.positive_float("rate_per_s", self.rate_per_s)
        validate.float_in_range("endpoint_delay_max_s", self.endpoint_delay_max_s, 0.0, MAX_MODEL_S)
        validate.bounded_int("n_nodes", self.n_nodes, MAX_NODES)
        validate.float_in_range("prestop_s", self.prestop_s, 0.0, MAX_MODEL_S)
        validate.float_in_range(
            "service_median_s", self.service_median_s, 0.0, MAX_MODEL_S, low_inclusive=False
        )
        validate.float_in_range(
            "service_sigma", self.service_sigma, 0.0, MAX_SERVICE_SIGMA, low_inclusive=False
        )
        validate.float_in_range("flush_s", self.flush_s, 0.0, MAX_MODEL_S)
        validate.float_in_range("grace_s", self.grace_s, 0.0, MAX_MODEL_S, low_inclusive=False)
        validate.float_in_range("warmup_s", self.warmup_s, 0.0, MAX_MODEL_S, low_inclusive=False)
        span_s = self.warmup_s + max(self.endpoint_delay_max_s, self.prestop_s)
        if self.rate_per_s * span_s > MAX_TERMINATION_REQUESTS:
            raise ValueError(
                "rate_per_s x (warmup_s + max(endpoint_delay_max_s, prestop_s)) must be at most "
                f"{MAX_TERMINATION_REQUESTS:,} requests, got {self.rate_per_s * span_s:,.0f}"
            )


OUTCOMES = ("served", "refused", "killed")  # outcome codes 0, 1, 2


def _simulate(c: TerminationConfig, rng: np.random.Generator) -> dict:
    """The termination model on numpy arrays (the sweeps call this directly: no DataFrame per run)."""
    delays = rng.uniform(0.0, c.endpoint_delay_max_s, size=c.n_nodes)
    horizon = max(c.endpoint_delay_max_s, c.prestop_s)
    n = rng.poisson(c.rate_per_s * (c.warmup_s + horizon))
    arrival = np.sort(rng.uniform(-c.warmup_s, horizon, size=n))
    node = rng.integers(0, c.n_nodes, size=n)
    routed = arrival < delays[node]  # after its node's delay, a request never reaches this pod
    arrival, node = arrival[routed], node[routed]
    service = c.service_median_s * np.exp(c.service_sigma * rng.standard_normal(arrival.size))
    end = arrival + service
    refused = arrival >= c.prestop_s
    accepted_end = end[~refused]
    # Stage 3 ends when the last accepted request finishes (never before the listener closed).
    drain_end = max(c.prestop_s, float(accepted_end.max()) if accepted_end.size else 0.0)
    clean_exit_s = drain_end + c.flush_s
    sigkill = clean_exit_s > c.grace_s
    outcome = refused.astype(np.int8)
    if sigkill:
        outcome[(~refused) & (end > c.grace_s)] = 2
    return {
        "arrival_s": arrival,
        "node": node,
        "node_delay_s": delays[node],
        "service_s": service,
        "end_s": end,
        "outcome": outcome,
        "exit_s": min(clean_exit_s, c.grace_s),
        "sigkill": bool(sigkill),
    }


def _summary(sim: dict) -> dict:
    late = sim["end_s"] > 0  # requests finished before time 0 are not at stake
    counts = np.bincount(sim["outcome"][late], minlength=3)
    return {
        "in_play": int(late.sum()),
        "served": int(counts[0]),
        "refused": int(counts[1]),
        "killed": int(counts[2]),
        "exit_s": float(sim["exit_s"]),
        "sigkill": sim["sigkill"],
        "flushed": not sim["sigkill"],
    }


def simulate_termination(
    config: TerminationConfig = TerminationConfig(), seed: int | np.random.Generator | None = 0
) -> pd.DataFrame:
    """Every request routed to a terminating pod, and what became of it.

    Requests arrive as a Poisson stream from ``-warmup_s``, each through a random
    node. Node ``j`` stops routing at ``delay_j ~ U(0, endpoint_delay_max_s)``.
    The listener closes at ``prestop_s``: a request arriving in ``[prestop_s,
    delay_j)`` is refused (the race). Accepted requests run for a lognormal time;
    the process exits when the last one finishes plus ``flush_s``, or is SIGKILLed
    at ``grace_s``, killing whatever is still running.

    Parameters
    ----------
    config : TerminationConfig
        The pod, its traffic and its termination settings.
    seed : int, numpy.random.Generator or None
        For arrivals, delays and request times.

    Returns
    -------
    pandas.DataFrame
        One row per request: ``arrival_s``, ``node``, ``node_delay_s``,
        ``service_s``, ``end_s``, ``outcome`` (``served``, ``refused``, ``killed``).
        ``df.attrs`` holds ``exit_s``, ``sigkill`` (bool) and ``flushed`` (bool).
    """
    if not isinstance(config, TerminationConfig):
        raise TypeError(f"config must be a TerminationConfig, got {type(config).__name__}")
    sim = _simulate(config, validate.rng_from_seed(seed))
    df = pd.DataFrame({key: sim[key] for key in ["arrival_s", "node", "node_delay_s", "service_s", "end_s"]})
    df["outcome"] = pd.Categorical.from_codes(sim["outcome"], categories=list(OUTCOMES))
    df.attrs.update(exit_s=sim["exit_s"], sigkill=sim["sigkill"], flushed=not sim["sigkill"])
    return df


def summarize_termination(df: pd.DataFrame) -> dict:
    """Counts of served/refused/killed requests (after time 0 or in flight at it) and how the pod ended.

    Parameters
    ----------
    df : pandas.DataFrame
        :func:`simulate_termination` output.

    Returns
    -------
    dict
        ``served``, ``refused``, ``killed`` counts and ``sigkill`` (bool).
    """
    validate.frame_columns("df", df, ["outcome", "end_s"])
    if "exit_s" not in df.attrs or "sigkill" not in df.attrs:
        raise ValueError("df must come from simulate_termination (its attrs carry exit_s and sigkill)")
    if not set(df["outcome"].astype(str)) <= set(OUTCOMES):
        raise ValueError(f"df['outcome'] must hold only {OUTCOMES}")
    codes = df["outcome"].map({name: code for code, name in enumerate(OUTCOMES)}).to_numpy(dtype=np.int8)
    sim = {"end_s": df["end_s"].to_numpy(), "outcome": codes, **df.attrs}
    return _summary(sim)


def sweep_prestop(
    prestop_values_s: Sequence[float],
    config: TerminationConfig = TerminationConfig(),
    n_seeds: int = 20,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Refused requests vs preStop sleep over ``n_seeds`` runs each, with the closed form.

    Returns one row per (prestop_s, run): ``prestop_s``, ``run``, ``refused``,
    ``killed``, ``sigkill``, ``theory_refused``.

    Parameters
    ----------
    prestop_values_s : sequence of float
        preStop sleeps to try.
    config : TerminationConfig
        The pod (its preStop sleep is replaced).
    n_seeds : int
        Terminations per value.
    seed : int, numpy.random.Generator or None
        Parent seed.

    Returns
    -------
    pandas.DataFrame
        One row per (sleep, run): ``prestop_s``, ``run``, the counts of
        :func:`summarize_termination`, ``theory_refused``.
    """
    n_seeds = validate.int_in_range("n_seeds", n_seeds, 1, 10_000)
    values = validate.sequence_of_floats(
        "prestop_values_s", prestop_values_s, 0.0, MAX_MODEL_S, max_length=MAX_SWEEP_POINTS
    )
    _check_sweep(config, len(values), n_seeds)
    seeds = np.random.SeedSequence(validate.non_negative_int("seed", seed)).spawn(n_seeds)
    rows = []
    for value in values:
        cfg = _replace(config, prestop_s=value)
        theory = theory_race_refused(cfg.rate_per_s, cfg.endpoint_delay_max_s, value)
        for run, child_seed in enumerate(seeds):
            summary = _summary(_simulate(cfg, np.random.default_rng(child_seed)))
            rows.append({"prestop_s": value, "run": run, **summary, "theory_refused": theory})
    return pd.DataFrame(rows)


def sweep_grace(
    grace_values_s: Sequence[float],
    config: TerminationConfig = TerminationConfig(),
    n_seeds: int = 20,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Requests killed in flight vs grace period, with :func:`theory_killed_in_flight` (no race).

    Parameters
    ----------
    grace_values_s : sequence of float
        Grace periods to try.
    config : TerminationConfig
        The pod (its grace period is replaced).
    n_seeds : int
        Terminations per value.
    seed : int, numpy.random.Generator or None
        Parent seed.

    Returns
    -------
    pandas.DataFrame
        One row per (grace period, run): ``grace_s``, ``run``, the counts of
        :func:`summarize_termination`, ``theory_killed``.
    """
    n_seeds = validate.int_in_range("n_seeds", n_seeds, 1, 10_000)
    values = validate.sequence_of_floats(
        "grace_values_s", grace_values_s, 0.0, MAX_MODEL_S, max_length=MAX_SWEEP_POINTS, low_inclusive=False
    )
    _check_sweep(config, len(values), n_seeds)
    seeds = np.random.SeedSequence(validate.non_negative_int("seed", seed)).spawn(n_seeds)
    rows = []
    for value in values:
        cfg = _replace(config, grace_s=value)
        theory = theory_killed_in_flight(cfg.rate_per_s, cfg.service_median_s, cfg.service_sigma, value)
        for run, child_seed in enumerate(seeds):
            summary = _summary(_simulate(cfg, np.random.default_rng(child_seed)))
            rows.append({"grace_s": value, "run": run, **summary, "theory_killed": theory})
    return pd.DataFrame(rows)


def _check_sweep(config: object, n_values: int, n_seeds: int) -> None:
    validate.instance("config", config, TerminationConfig)
    if n_values * n_seeds > MAX_SWEEP_RUNS:
        raise ValueError(
            f"values x n_seeds must be at most {MAX_SWEEP_RUNS:,} simulated terminations, "
            f"got {n_values} x {n_seeds}"
        )


def _replace(config: TerminationConfig, **changes) -> TerminationConfig:
    from dataclasses import replace

    return replace(config, **changes)


def theory_race_refused(rate_per_s: float, endpoint_delay_max_s: float, prestop_s: float) -> float:
    """Expected requests refused by the endpoint race: ``rate * E[(delay - prestop)^+]``, delay ~ U(0, D).

    With a uniform delay on [0, D], ``E[(delay - s)^+] = (D - s)^2 / (2 D)`` for
    ``s < D`` and 0 after: a preStop sleep at least as long as the slowest node's
    update refuses nothing.

    Parameters
    ----------
    rate_per_s : float
        Requests per second.
    endpoint_delay_max_s : float
        D, the slowest endpoint update.
    prestop_s : float
        s, the preStop sleep.

    Returns
    -------
    float
        Expected refused requests per termination.
    """
    rate = validate.positive_float("rate_per_s", rate_per_s)
    d = validate.non_negative_float("endpoint_delay_max_s", endpoint_delay_max_s)
    s = validate.non_negative_float("prestop_s", prestop_s)
    if d == 0 or s >= d:
        return 0.0
    return rate * (d - s) ** 2 / (2 * d)


def theory_killed_in_flight(rate_per_s: float, service_median_s: float, service_sigma: float, grace_s: float):
    """Expected requests still running at SIGKILL when arrivals stop at time 0: ``rate * E[(S - G)^+]``.

    A request that arrived at ``t <= 0`` is still running at ``G`` if ``S > G - t``;
    integrating over ``t`` gives ``rate * E[(S - G)^+]``, which for a lognormal
    ``S`` (median ``m``, shape ``sigma``) is
    ``m e^{sigma^2/2} Phi(d1) - G Phi(d2)`` with ``d1 = (ln(m/G) + sigma^2)/sigma``,
    ``d2 = d1 - sigma``. It ignores the race (``endpoint_delay_max_s = 0``).

    Parameters
    ----------
    rate_per_s : float
        Arrival rate until time 0.
    service_median_s : float
        Median request time.
    service_sigma : float
        Lognormal shape (at most ``MAX_SERVICE_SIGMA``).
    grace_s : float
        Time of the SIGKILL.

    Returns
    -------
    float
        Expected requests still running at the SIGKILL.
    """
    rate = validate.positive_float("rate_per_s", rate_per_s)
    m = validate.positive_float("service_median_s", service_median_s)
    sigma = validate.float_in_range(
        "service_sigma", service_sigma, 0.0, MAX_SERVICE_SIGMA, low_inclusive=False
    )
    g = validate.positive_float("grace_s", grace_s)
    d1 = (math.log(m / g) + sigma**2) / sigma
    d2 = d1 - sigma

    def phi(x: float) -> float:
        return 0.5 * (1 + math.erf(x / math.sqrt(2)))

    return rate * (m * math.exp(sigma**2 / 2) * phi(d1) - g * phi(d2))


# --------------------------------------------------------------------------- plots


def plot_race(sweep: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Refused requests per termination vs preStop sleep: runs as dots, mean and closed form as lines.

    Parameters
    ----------
    sweep : pandas.DataFrame
        :func:`sweep_prestop` output.
    ax : matplotlib Axes, optional
        Where to draw.

    Returns
    -------
    matplotlib.axes.Axes
    """
    validate.frame_columns("sweep", sweep, ["prestop_s", "refused", "theory_refused"])
    ax = plot.axes_or_new(ax)
    ax.plot(sweep["prestop_s"], sweep["refused"], "o", alpha=0.25, label="one termination (simulated)")
    mean = sweep.groupby("prestop_s")[["refused", "theory_refused"]].mean()
    ax.plot(mean.index, mean["refused"], "-", lw=2, label="mean of simulations")
    ax.plot(mean.index, mean["theory_refused"], "k--", label="theory: rate·(D−s)²/2D")
    return plot.label(ax, "preStop sleep (s)", "requests refused per termination", legend=True)


def plot_grace(sweep: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Requests killed by the closing SIGKILL vs grace period (log scale), simulation and theory.

    Parameters
    ----------
    sweep : pandas.DataFrame
        :func:`sweep_grace` output.
    ax : matplotlib Axes, optional
        Where to draw.

    Returns
    -------
    matplotlib.axes.Axes
    """
    validate.frame_columns("sweep", sweep, ["grace_s", "killed", "theory_killed"])
    ax = plot.axes_or_new(ax)
    mean = sweep.groupby("grace_s")[["killed", "theory_killed"]].mean()
    ax.plot(sweep["grace_s"], sweep["killed"] + 0.1, "o", alpha=0.25, label="one termination (+0.1)")
    ax.plot(mean.index, mean["killed"] + 0.1, "-", lw=2, label="mean of simulations (+0.1)")
    ax.plot(mean.index, mean["theory_killed"] + 0.1, "k--", label="theory: rate·E[(S−G)⁺] (+0.1)")
    ax.set_yscale("log")
    return plot.label(ax, "grace period (s)", "requests killed in flight", legend=True)


# --------------------------------------------------------------------------- real servers stopped

PG_STOP_MODES = ("smart", "fast", "immediate")
MAX_IDLE_CONNECTIONS = 50
MAX_STOP_WAIT_S = 60.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent(death_signal: int):
    def preexec() -> None:  # runs in the child after setuid: tie the server's life to ours
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, death_signal)
        except (OSError, AttributeError):
            pass
        os.setsid()

    return preexec


class PrivatePostgres:
    """A throwaway PostgreSQL cluster this process can stop with ``pg_ctl`` and start again.

    :mod:`syslab.engines` keeps its servers running for a whole kernel; a shutdown experiment needs
    one of its own. Built from the engines module's pieces: the same binaries, the same unprivileged
    user when we are root, a free port on 127.0.0.1, a unix socket in a temporary folder. The
    postmaster runs in the foreground as our child, with a parent-death signal (SIGQUIT), so it
    cannot outlive this process; the folder is removed on :meth:`close`.

    Use as a context manager: ``with shutdown.PrivatePostgres() as pg: pg.stop("fast")``.

    Attributes
    ----------
    version : str
        ``PostgreSQL 15.x`` as the server reports it.
    port : int
        Its TCP port on 127.0.0.1.
    """

    def __init__(self, *, start_timeout_s: float = 60.0):
        from syslab import engines

        self._timeout_s = validate.float_in_range("start_timeout_s", start_timeout_s, 1.0, 300.0)
        found = engines._find_binaries("postgres")
        if found is None:
            raise engines.EngineUnavailable(
                "postgres", "no PostgreSQL binaries (initdb, postgres, pg_ctl) here"
            )
        self._bin = found[0]
        if not os.path.exists(os.path.join(self._bin, "pg_ctl")):
            raise engines.EngineUnavailable("postgres", f"no pg_ctl next to {self._bin}/postgres")
        self._user = engines._server_user("postgres")
        self._dir = tempfile.mkdtemp(prefix="syslab-pg-", dir=engines._tmp_root(self._user))
        self.port = engines._free_port()
        self._process: subprocess.Popen | None = None
        self._log_path = os.path.join(self._dir, "server.log")
        self.version = ""
        try:
            if self._user is not None:
                os.chown(self._dir, *self._user)
            self._run(
                [
                    os.path.join(self._bin, "initdb"),
                    "-D",
                    self._data,
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                    "--no-instructions",
                ],
                timeout_s=self._timeout_s,
            )
            self.start()
            with self.connect() as conn:
                self.version = "PostgreSQL " + conn.execute("SHOW server_version").fetchone()[0].split()[0]
        except BaseException:
            self.close()
            raise

    @property
    def _data(self) -> str:
        return os.path.join(self._dir, "data")

    @property
    def dsn(self) -> str:
        """``postgresql://postgres@127.0.0.1:<port>/postgres``."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, command: list, *, timeout_s: float) -> subprocess.CompletedProcess:
        user = (
            {} if self._user is None else {"user": self._user[0], "group": self._user[1], "extra_groups": []}
        )
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            cwd=self._dir,
            env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", "TZ": "UTC"},
            **user,
        )

    def connect(self, **kwargs):
        """A psycopg connection (the caller closes it)."""
        import psycopg

        return psycopg.connect(self.dsn, connect_timeout=3, **kwargs)

    def log_size(self) -> int:
        """Bytes in the server log so far (pass to :meth:`log_since`)."""
        return os.path.getsize(self._log_path) if os.path.exists(self._log_path) else 0

    def log_since(self, offset: int) -> str:
        """The server log written after ``offset`` bytes."""
        with open(self._log_path, "rb") as handle:
            handle.seek(validate.non_negative_int("offset", offset))
            return handle.read(200_000).decode("utf-8", "replace")

    def start(self) -> None:
        """Start the postmaster (in the foreground, as our child) and wait until it accepts connections."""
        if self._process is not None and self._process.poll() is None:
            raise RuntimeError("the server is already running")
        user = (
            {} if self._user is None else {"user": self._user[0], "group": self._user[1], "extra_groups": []}
        )
        log = open(self._log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            self._process = subprocess.Popen(
                [
                    os.path.join(self._bin, "postgres"),
                    "-D",
                    self._data,
                    "-p",
                    str(self.port),
                    "-k",
                    self._dir,
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "logging_collector=off",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self._dir,
                env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", "TZ": "UTC"},
                preexec_fn=_die_with_parent(signal.SIGQUIT),
                **user,
            )
        finally:
            log.close()
        deadline = time.monotonic() + self._timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"postgres exited with {self._process.returncode}: {self.log_since(0)[-1500:]}"
                )
            try:
                self.connect().close()
                return
            except Exception:  # noqa: BLE001 - not accepting yet
                time.sleep(0.1)
        raise TimeoutError(f"postgres did not accept connections within {self._timeout_s} s")

    def stop(self, mode: str = "fast", *, wait_s: float = 10.0) -> dict:
        """``pg_ctl stop -m <mode> -t <wait_s>``: what pg_ctl says and whether the server stopped in time.

        Parameters
        ----------
        mode : {"smart", "fast", "immediate"}
            The shutdown mode (pg_ctl sends SIGTERM, SIGINT or SIGQUIT to the postmaster).
        wait_s : float
            How long pg_ctl waits (0.5 to ``MAX_STOP_WAIT_S``).

        Returns
        -------
        dict
            ``mode``, ``pg_ctl_exit`` (0 when the server stopped within ``wait_s``), ``pg_ctl_says``
            (its last output line), ``stop_s`` (seconds pg_ctl ran), ``stopped`` (bool).
        """
        kind = validate.choice("mode", mode, PG_STOP_MODES)
        wait = validate.float_in_range("wait_s", wait_s, 0.5, MAX_STOP_WAIT_S)
        started = time.monotonic()
        result = self._run(
            [
                os.path.join(self._bin, "pg_ctl"),
                "stop",
                "-D",
                self._data,
                "-m",
                kind,
                "-w",
                "-t",
                str(max(int(math.ceil(wait)), 1)),
            ],
            timeout_s=wait + 10,
        )
        elapsed = time.monotonic() - started
        said = (result.stdout + result.stderr).strip().splitlines()
        return {
            "mode": kind,
            "pg_ctl_exit": result.returncode,
            "pg_ctl_says": said[-1] if said else "",
            "stop_s": elapsed,
            "stopped": self.wait_exit(1.0),
        }

    def wait_exit(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the postmaster to exit; whether it did."""
        if self._process is None:
            return True
        try:
            self._process.wait(timeout=validate.float_in_range("timeout_s", timeout_s, 0.0, MAX_STOP_WAIT_S))
        except subprocess.TimeoutExpired:
            return False
        return True

    def close(self) -> None:
        """Stop the server if it runs (SIGQUIT, then SIGKILL) and remove its folder."""
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGQUIT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> PrivatePostgres:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pg_error(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"error: {text[0] if text else type(error).__name__}"


def _pg_probe(action) -> str:
    try:
        return action()
    except Exception as error:  # noqa: BLE001 - what the client sees is the result
        return _pg_error(error)


_RECOVERY_MARKERS = (
    "was shut down at",
    "was interrupted",
    "not properly shut down",
    "automatic recovery in progress",
    "redo starts at",
    "redo done at",
    "checkpoint starting: end-of-recovery",
)


def run_postgres_stop(
    modes: list | tuple = PG_STOP_MODES,
    *,
    n_idle: int = 5,
    smart_wait_s: float = 2.0,
    timeout_s: float = 120.0,
) -> Run:
    """Real: PostgreSQL stopped with ``pg_ctl -m smart|fast|immediate`` while clients hold sessions.

    For each mode, on a fresh start of one private cluster (:class:`PrivatePostgres`): one row is
    committed; ``n_idle`` pooled connections sit idle; one session inserts a row and leaves its
    transaction open. Then ``pg_ctl stop -m <mode>`` runs, and the experiment records what each
    client sees next: a new connection, a query on an idle pooled connection, and ``COMMIT`` of the
    open transaction. Smart mode waits for sessions, so pg_ctl gives up after ``smart_wait_s``;
    the clients are then closed and the server finishes on its own. Finally the server is started
    again, and the log of that start and the surviving rows are read.

    Parameters
    ----------
    modes : sequence of {"smart", "fast", "immediate"}
        Modes to run, in order.
    n_idle : int
        Idle pooled connections (1 to ``MAX_IDLE_CONNECTIONS``).
    smart_wait_s : float
        How long pg_ctl waits in smart mode before giving up (0.5 to 30 s).
    timeout_s : float
        Bound on the whole experiment (seconds, at most 600); the cluster is removed in any case.

    Returns
    -------
    experiment.Run
        ``frame``: one row per (mode, client): ``mode``, ``client`` (``new connection``,
        ``idle pooled connection``, ``open transaction: COMMIT``, ``pg_ctl``, ``next start``,
        ``rows after restart``), ``sees`` (the result or error text). ``summary``: per mode,
        ``<mode>_stopped_by_pg_ctl`` (bool), ``<mode>_stop_s``, ``<mode>_recovery`` (bool: the next
        start replayed WAL), ``<mode>_open_commit_kept`` (bool: the open transaction's row survived);
        ``engine`` (the version).
    """
    kinds = [validate.choice("modes", mode, PG_STOP_MODES) for mode in modes]
    if not 1 <= len(kinds) <= 3:
        raise ValueError("modes must hold 1 to 3 of smart, fast, immediate")
    idle_count = validate.bounded_int("n_idle", n_idle, MAX_IDLE_CONNECTIONS)
    smart_wait = validate.float_in_range("smart_wait_s", smart_wait_s, 0.5, 30.0)
    limit = validate.float_in_range("timeout_s", timeout_s, 10.0, 600.0)
    deadline = time.monotonic() + limit
    rows, summary = [], {}
    with PrivatePostgres(start_timeout_s=min(limit, 60.0)) as pg:
        with pg.connect(autocommit=True) as admin:
            admin.execute("CREATE TABLE orders (id int PRIMARY KEY, note text)")
        for number, mode in enumerate(kinds):
            if time.monotonic() > deadline:
                raise TimeoutError(f"run_postgres_stop passed its timeout_s={limit}")
            committed, pending = 2 * number + 1, 2 * number + 2
            with pg.connect(autocommit=True) as admin:
                admin.execute("INSERT INTO orders VALUES (%s, 'committed before the stop')", (committed,))
            pool = [pg.connect(autocommit=True) for _ in range(idle_count)]
            for conn in pool:
                conn.execute("SELECT 1")
            open_tx = pg.connect()
            open_tx.execute("INSERT INTO orders VALUES (%s, 'open transaction')", (pending,))
            stop = pg.stop(mode, wait_s=smart_wait if mode == "smart" else 10.0)
            rows.append(
                {
                    "mode": mode,
                    "client": "pg_ctl",
                    "sees": f"{stop['pg_ctl_says']} (exit {stop['pg_ctl_exit']}, {stop['stop_s']:.1f} s)",
                }
            )
            rows.append(
                {
                    "mode": mode,
                    "client": "new connection",
                    "sees": _pg_probe(lambda: (pg.connect().close(), "connected")[1]),
                }
            )
            rows.append(
                {
                    "mode": mode,
                    "client": "idle pooled connection",
                    "sees": _pg_probe(
                        lambda pool=pool: f"SELECT 1 returned {pool[0].execute('SELECT 1').fetchone()[0]}"
                    ),
                }
            )
            rows.append(
                {
                    "mode": mode,
                    "client": "open transaction: COMMIT",
                    "sees": _pg_probe(lambda open_tx=open_tx: (open_tx.commit(), "committed")[1]),
                }
            )
            for conn in [*pool, open_tx]:
                try:
                    conn.close()
                except Exception:  # noqa: BLE001 - a broken connection is fine to drop
                    pass
            exited = pg.wait_exit(15.0)
            if not exited:
                pg.stop("immediate", wait_s=10.0)
            offset = pg.log_size()
            pg.start()
            start_log = [
                line.split("LOG:", 1)[-1].strip()[:90]
                for line in pg.log_since(offset).splitlines()
                if any(marker in line for marker in _RECOVERY_MARKERS)
            ]
            rows.append(
                {"mode": mode, "client": "next start", "sees": "; ".join(start_log) or "(no recovery lines)"}
            )
            with pg.connect() as conn:
                kept = conn.execute(
                    "SELECT id FROM orders WHERE id IN (%s, %s) ORDER BY id", (committed, pending)
                ).fetchall()
            kept_ids = [row[0] for row in kept]
            rows.append(
                {
                    "mode": mode,
                    "client": "rows after restart",
                    "sees": f"committed row {'kept' if committed in kept_ids else 'lost'}; open transaction's row "
                    f"{'kept' if pending in kept_ids else 'absent'}",
                }
            )
            summary[f"{mode}_stopped_by_pg_ctl"] = bool(stop["pg_ctl_exit"] == 0)
            summary[f"{mode}_stop_s"] = float(stop["stop_s"])
            summary[f"{mode}_recovery"] = any("recovery" in line or "redo" in line for line in start_log)
            summary[f"{mode}_open_commit_kept"] = pending in kept_ids
        summary["engine"] = pg.version
    return Run.create(pd.DataFrame(rows), summary, engine_label=summary["engine"])


def run_redis_stop(
    cases: list | tuple = ("SIGTERM, save points", 'SIGTERM, save ""', "SIGKILL, save points"),
    *,
    n_keys: int = 10_000,
    timeout_s: float = 60.0,
) -> Run:
    """Real: a private Redis stopped by SIGTERM (with and without save points) or SIGKILL; keys after restart.

    Each case starts ``redis-server`` in a fresh temporary folder (no AOF), writes ``n_keys`` keys,
    sends the signal, waits for the process, starts it again on the same folder and counts the keys.

    Parameters
    ----------
    cases : sequence of str
        Any of ``"SIGTERM, save points"`` (``save 3600 1``), ``"SIGTERM, save \\"\\""`` (no save
        points: a pure cache) and ``"SIGKILL, save points"``.
    n_keys : int
        Keys written (1 to 1,000,000).
    timeout_s : float
        Bound on the whole run (seconds, at most 300).

    Returns
    -------
    experiment.Run
        ``frame``: one row per case: ``case``, ``keys_written``, ``keys_after_restart``, ``exit``
        (what the process returned: 0, or -9 for SIGKILL), ``log`` (the shutdown lines of the log).
        ``summary``: ``keys_<n>`` per case index and ``engine`` (the server version).
    """
    from syslab import engines

    allowed = ("SIGTERM, save points", 'SIGTERM, save ""', "SIGKILL, save points")
    chosen = [validate.choice("cases", case, allowed) for case in cases]
    n = validate.bounded_int("n_keys", n_keys, 1_000_000)
    limit = validate.float_in_range("timeout_s", timeout_s, 1.0, 300.0)
    deadline = time.monotonic() + limit
    found = engines._find_binaries("redis")
    if found is None:
        raise engines.EngineUnavailable("redis", "no redis-server binary here")
    binary = found[0]
    import redis as redis_client

    rows, version = [], ""
    for case in chosen:
        folder = tempfile.mkdtemp(prefix="syslab-redis-")
        try:
            port = engines._free_port()
            save = "3600 1" if "save points" in case else ""
            command = [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                folder,
                "--save",
                save,
                "--appendonly",
                "no",
                "--logfile",
                os.path.join(folder, "redis.log"),
            ]

            def launch(command: list = command, port: int = port, case: str = case) -> subprocess.Popen:
                process = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    preexec_fn=_die_with_parent(signal.SIGKILL),
                )
                client = redis_client.Redis(port=port, socket_timeout=5)
                while True:
                    if time.monotonic() > deadline or process.poll() is not None:
                        process.kill()
                        raise TimeoutError(f"redis-server did not start ({case})")
                    try:
                        client.ping()
                        return process
                    except redis_client.ConnectionError:
                        time.sleep(0.05)

            process = launch()
            client = redis_client.Redis(port=port, socket_timeout=5)
            version = "Redis " + client.info("server")["redis_version"]
            for first in range(0, n, 5_000):
                pipe = client.pipeline(transaction=False)
                for index in range(first, min(first + 5_000, n)):
                    pipe.set(f"key:{index}", "v")
                pipe.execute()
            client.close()
            process.send_signal(signal.SIGKILL if case.startswith("SIGKILL") else signal.SIGTERM)
            exit_code = process.wait(timeout=max(deadline - time.monotonic(), 1.0))
            with open(os.path.join(folder, "redis.log"), encoding="utf-8", errors="replace") as handle:
                log = [
                    _redis_log_text(line)
                    for line in handle
                    if any(word in line for word in ("SIGTERM", "Saving", "DB saved", "shutdown", "exit now"))
                ]
            process = launch()
            client = redis_client.Redis(port=port, socket_timeout=5)
            after = int(client.dbsize())
            client.close()
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        rows.append(
            {
                "case": case,
                "keys_written": n,
                "keys_after_restart": after,
                "exit": exit_code,
                "log": "; ".join(log[-4:]),
            }
        )
    frame = pd.DataFrame(rows)
    summary = {f"keys_{k}": int(row["keys_after_restart"]) for k, row in frame.iterrows()}
    summary["engine"] = version
    return Run.create(frame, summary, engine_label=version)


def _redis_log_text(line: str) -> str:
    """A Redis log line without its ``pid:role date time`` prefix."""
    import re

    return re.sub(r"^\d+:(?:[A-Z]|signal-handler) (?:\(\d+\) |\d+ \w+ \d+ [\d:.]+ [#*.-] )", "", line.strip())


def run_keepalive_after_close(n_requests: int = 5, *, timeout_s: float = 10.0) -> Run:
    """Real: keep-alive connections keep delivering requests after the listener closes.

    An HTTP/1.1 server (the standard library's ``ThreadingHTTPServer``) on 127.0.0.1 serves a client
    that holds one keep-alive connection, like a load balancer's pool. The server then closes its
    listening socket (stage 2 of the drain) and the experiment records: requests on the held
    connection (still served), a new connection (refused), the first response after the server starts
    draining (``Connection: close``, so the client knows to go elsewhere), and a request on a second
    held connection that the server closed without warning while it was idle (the client's error: what
    a proxy turns into a 502).

    Parameters
    ----------
    n_requests : int
        Requests sent on the held connection after the listener closed (1 to 1,000).
    timeout_s : float
        Bound on the whole run (seconds, 1 to 60).

    Returns
    -------
    experiment.Run
        ``frame``: one row per step: ``step``, ``client_sees``. ``summary``: ``served_after_close``,
        ``new_connection_refused`` (bool), ``abrupt_close_error`` (the client's error text).
    """
    import http.client
    import http.server

    count = validate.bounded_int("n_requests", n_requests, 1_000)
    limit = validate.float_in_range("timeout_s", timeout_s, 1.0, 60.0)
    draining = threading.Event()
    connections: list = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            connections.append(self.connection)

        def do_GET(self) -> None:  # noqa: N802 - the standard library's name
            body = b"ok\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            if draining.is_set():
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.block_on_close = False
    port = server.server_address[1]
    loop = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    loop.start()
    rows = []

    def get(conn: http.client.HTTPConnection) -> str:
        conn.request("GET", "/")
        response = conn.getresponse()
        response.read()
        closing = response.getheader("Connection", "")
        return f"{response.status} {response.reason}" + (f" (Connection: {closing})" if closing else "")

    held = http.client.HTTPConnection("127.0.0.1", port, timeout=limit)
    idle = http.client.HTTPConnection("127.0.0.1", port, timeout=limit)
    try:
        rows.append({"step": "request on a keep-alive connection, before", "client_sees": get(held)})
        rows.append({"step": "request on a second keep-alive connection", "client_sees": get(idle)})
        server.shutdown()  # stop accepting: the serve loop ends ...
        server.socket.close()  # ... and the listening socket is closed (the kernel refuses new SYNs)
        served = 0
        for _ in range(count):
            served += get(held).startswith("200")
        rows.append(
            {
                "step": f"{count} requests on the held connection, after the listener closed",
                "client_sees": f"{served} of {count} served",
            }
        )
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=2).request("GET", "/")
            refused, text = False, "connected"
        except OSError as error:
            refused, text = True, f"{type(error).__name__}: {error.strerror or error}"
        rows.append({"step": "a new connection", "client_sees": text})
        draining.set()
        rows.append({"step": "request on the held connection once draining", "client_sees": get(held)})
        for conn in connections[1:2]:  # the second connection: closed by the server while idle
            conn.shutdown(socket.SHUT_RDWR)
        time.sleep(0.05)
        try:
            abrupt = get(idle)
        except (OSError, http.client.HTTPException) as error:
            abrupt = f"{type(error).__name__}: {error}"
        rows.append(
            {"step": "request on the second connection, closed idle by the server", "client_sees": abrupt}
        )
    finally:
        held.close()
        idle.close()
        server.server_close()
    summary = {"served_after_close": served, "new_connection_refused": refused, "abrupt_close_error": abrupt}
    return Run.create(pd.DataFrame(rows), summary)


def private_server_reason(name: str) -> str | None:
    """Why a private ``postgres`` or ``redis`` server cannot be started here, or None when it can.

    Honours ``SYSLAB_ENGINES`` (a hidden engine is unavailable) and raises when
    ``SYSLAB_REQUIRE_ENGINES`` lists the engine and it is unavailable, as :func:`syslab.engines.find` does.

    Parameters
    ----------
    name : {"postgres", "redis"}
        The server.

    Returns
    -------
    str or None
        The reason, for :func:`syslab.notebook.fallback_note`.
    """
    from syslab import engines

    kind = validate.choice("name", name, ("postgres", "redis"))
    allowed = engines._name_list("SYSLAB_ENGINES")
    reason = None
    if allowed is not None and kind not in allowed:
        reason = "SYSLAB_ENGINES hides it"
    elif engines._find_binaries(kind) is None:
        reason = f"no {kind} server binaries on this machine"
    elif kind == "postgres":
        found = engines._find_binaries(kind)
        if not os.path.exists(os.path.join(found[0], "pg_ctl")):
            reason = "no pg_ctl next to the postgres binary"
    if reason is not None and kind in engines._required():
        raise engines.EngineUnavailable(kind, f"{reason} (and SYSLAB_REQUIRE_ENGINES requires it)")
    return reason


def postgres_stop_from_docs(smart_wait_s: float = 2.0) -> Run:
    """Where no PostgreSQL is available: what :func:`run_postgres_stop` shows, from the documentation.

    Parameters
    ----------
    smart_wait_s : float
        The pg_ctl wait to quote for smart mode (seconds).

    Returns
    -------
    experiment.Run
        The frame and summary keys of :func:`run_postgres_stop` (``engine`` ``"PostgreSQL (documented)"``).
    """
    wait = validate.float_in_range("smart_wait_s", smart_wait_s, 0.5, 30.0)
    said = {
        "smart": [
            "server does not shut down (sessions remain)",
            "error: the database system is shutting down",
            "SELECT 1 returned 1",
            "committed",
            "database system was shut down",
            "committed row kept; open transaction's row kept",
        ],
        "fast": [
            "server stopped",
            "error: connection refused",
            "error: terminating connection due to administrator command",
            "error: terminating connection due to administrator command",
            "database system was shut down",
            "committed row kept; open transaction's row absent",
        ],
        "immediate": [
            "server stopped",
            "error: connection refused",
            "error: server closed the connection unexpectedly",
            "error: server closed the connection unexpectedly",
            "database system was not properly shut down; automatic recovery in progress; redo starts; redo done",
            "committed row kept; open transaction's row absent",
        ],
    }
    clients = [
        "pg_ctl",
        "new connection",
        "idle pooled connection",
        "open transaction: COMMIT",
        "next start",
        "rows after restart",
    ]
    rows = [
        {"mode": mode, "client": client, "sees": text}
        for mode, texts in said.items()
        for client, text in zip(clients, texts, strict=True)
    ]
    summary = {
        "smart_stopped_by_pg_ctl": False,
        "smart_stop_s": wait,
        "smart_recovery": False,
        "smart_open_commit_kept": True,
        "fast_stopped_by_pg_ctl": True,
        "fast_stop_s": float("nan"),
        "fast_recovery": False,
        "fast_open_commit_kept": False,
        "immediate_stopped_by_pg_ctl": True,
        "immediate_stop_s": float("nan"),
        "immediate_recovery": True,
        "immediate_open_commit_kept": False,
        "engine": "PostgreSQL (documented)",
    }
    return Run.create(pd.DataFrame(rows), summary)


def redis_stop_from_docs(n_keys: int = 10_000) -> Run:
    """Where no Redis is available: what :func:`run_redis_stop` shows, from the documentation.

    Parameters
    ----------
    n_keys : int
        Keys written (1 to 1,000,000).

    Returns
    -------
    experiment.Run
        The frame and summary keys of :func:`run_redis_stop` (``engine`` ``"Redis (documented)"``).
    """
    n = validate.bounded_int("n_keys", n_keys, 1_000_000)
    frame = pd.DataFrame(
        {
            "case": ["SIGTERM, save points", 'SIGTERM, save ""', "SIGKILL, save points"],
            "keys_written": n,
            "keys_after_restart": [n, 0, 0],
            "exit": [0, 0, -9],
            "log": [
                "Saving the final RDB snapshot before exiting; DB saved on disk",
                "User requested shutdown",
                "",
            ],
        }
    )
    return Run.create(frame, {"keys_0": n, "keys_1": 0, "keys_2": 0, "engine": "Redis (documented)"})
