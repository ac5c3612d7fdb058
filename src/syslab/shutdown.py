"""Graceful shutdown: the five-stage drain, for real and in a Kubernetes termination model.

Real experiments (child processes from :mod:`syslab.drain_server`, 127.0.0.1 only,
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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from syslab import plot, validate
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
]

SIGNALS = {"SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}


def exit_status_for_shell(returncode: int) -> int:
    """What a shell or Kubernetes reports for a Popen return code: 128+n for death by signal n."""
    returncode = int(returncode)
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

    def wait_for(self, prefix: str, timeout_s: float) -> str | None:
        """Return the first line starting with ``prefix`` within ``timeout_s``, else None."""
        for _, line in self.seen:
            if line.startswith(prefix):
                return line
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                item = self.lines.get(timeout=left)
            except queue.Empty:
                return None
            self.seen.append(item)
            if item[1].startswith(prefix):
                return item[1]
        return None

    def drain(self) -> list[tuple[float, str]]:
        self.thread.join(timeout=2)
        while True:
            try:
                self.seen.append(self.lines.get_nowait())
            except queue.Empty:
                return self.seen


def _stages(lines: list[tuple[float, str]], t0: float) -> pd.DataFrame:
    rows = []
    for _, line in lines:
        parts = line.split(maxsplit=3)
        if len(parts) >= 3 and parts[0] == "STAGE":
            rows.append(
                {"stage": parts[1], "t_s": float(parts[2]) - t0, "detail": parts[3] if len(parts) > 3 else ""}
            )
    return pd.DataFrame(rows, columns=["stage", "t_s", "detail"])


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

    The server (``python -m syslab.drain_server serve``) listens on 127.0.0.1. The
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
    grace_s = validate.positive_float("grace_s", grace_s)
    flush_interval_s = validate.positive_float("flush_interval_s", flush_interval_s)
    timeout_s = validate.positive_float("timeout_s", timeout_s)
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
            "syslab.drain_server", args, timeout_s=timeout_s, stderr=subprocess.DEVNULL
        ) as child:
            reader = _LineReader(child.process.stdout)
            ready = reader.wait_for("READY", 10.0)
            if ready is None:
                raise RuntimeError("the drain server did not start within 10 s")
            port = int(ready.split()[1])
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
                reader.wait_for("STAGE stop_intake", min(grace_s, 5.0))
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
            lines = reader.drain()
        journaled = set(journal.read_text(encoding="utf-8").split()) if journal.exists() else set()

    requests = pd.DataFrame(results, columns=["request_id", "kind", "service_ms", "outcome", "latency_s"])
    requests["journaled"] = requests["request_id"].isin(journaled)
    return DrainRun(
        signal_name=signal_name,
        drain_timeout_s=drain_timeout_s,
        grace_s=grace_s,
        requests=requests,
        stages=_stages(lines, t_signal),
        returncode=int(returncode),
        supervisor_killed=supervisor_killed,
        connect_after_signal=connect_after,
        exit_after_s=float(exit_after_s),
    )


def summarize_drain_runs(runs: dict[str, DrainRun]) -> pd.DataFrame:
    """One row per labelled run: what completed, what was acknowledged but not journaled, how it exited."""
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


def run_handler_pitfall(handler: str = "flag", *, run_s: float = 0.3, grace_s: float = 1.5) -> dict:
    """SIGTERM a busy loop whose handler either sets a flag or does the flush itself.

    The loop (``drain_server lock``) holds a journal lock nearly all the time.
    A handler that takes the same lock waits for the code it interrupted: a
    deadlock the supervisor ends with SIGKILL after ``grace_s``.

    Returns
    -------
    dict
        ``handler``, ``returncode``, ``exit_status`` (as a shell reports it),
        ``supervisor_killed``, ``journal_lines`` (lines that reached the file),
        ``exit_after_s``.
    """
    handler = validate.choice("handler", handler, ["flag", "work"])
    run_s = validate.positive_float("run_s", run_s)
    grace_s = validate.positive_float("grace_s", grace_s)
    limit_s = run_s + grace_s + 10
    with tempfile.TemporaryDirectory(prefix="syslab-lock-") as tmp:
        journal = Path(tmp) / "journal.log"
        args = ["lock", "--handler", handler, "--journal", str(journal), "--max-life-s", str(limit_s)]
        with ChildProcess("syslab.drain_server", args, timeout_s=limit_s, stderr=subprocess.DEVNULL) as child:
            reader = _LineReader(child.process.stdout)
            if reader.wait_for("READY", 10.0) is None:
                raise RuntimeError("the lock demo did not start within 10 s")
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
    return {
        "handler": handler,
        "returncode": int(returncode),
        "exit_status": exit_status_for_shell(returncode),
        "supervisor_killed": killed,
        "journal_lines": lines,
        "exit_after_s": round(exit_after_s, 3),
    }


def pid1_supported(timeout_s: float = 5.0) -> tuple[bool, str]:
    """Whether ``unshare -rpf`` (a user + PID namespace, no privileges needed) works here, and why not."""
    timeout_s = validate.positive_float("timeout_s", timeout_s)
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


def run_pid1(handler: str = "none", *, wait_s: float = 1.0) -> dict:
    """SIGTERM a Python process that is PID 1 of its own PID namespace, with or without a handler.

    Runs ``unshare -rpf python -m syslab.drain_server pid1`` (a user namespace
    maps us to root inside it, so no privileges are needed) and sends SIGTERM from
    outside to the namespaced process. Check :func:`pid1_supported` first.

    Returns
    -------
    dict
        ``handler``, ``pid_inside`` (should be 1), ``alive_after_sigterm``,
        ``exit_status`` of the PID-1 process's ``unshare`` parent, ``exit_after_s``
        (NaN if it ignored the signal and had to be SIGKILLed).
    """
    handler = validate.choice("handler", handler, ["none", "flag"])
    wait_s = validate.positive_float("wait_s", wait_s)
    ok, reason = pid1_supported()
    if not ok:
        raise RuntimeError(f"cannot run the PID 1 demo: {reason}")
    limit_s = wait_s + 15
    cmd = ["unshare", "-rpf", sys.executable, "-m", "syslab.drain_server", "pid1", "--handler", handler]
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
        ready = reader.wait_for("READY", 10.0)
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
        return {
            "handler": handler,
            "pid_inside": int(ready.split()[1]),
            "alive_after_sigterm": alive,
            "exit_status": None if alive else exit_status_for_shell(proc.returncode),
            "exit_after_s": exit_after,
        }
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
        validate.non_negative_float("endpoint_delay_max_s", self.endpoint_delay_max_s)
        validate.positive_int("n_nodes", self.n_nodes)
        validate.non_negative_float("prestop_s", self.prestop_s)
        validate.positive_float("service_median_s", self.service_median_s)
        validate.positive_float("service_sigma", self.service_sigma)
        validate.non_negative_float("flush_s", self.flush_s)
        validate.positive_float("grace_s", self.grace_s)
        validate.positive_float("warmup_s", self.warmup_s)


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


def simulate_termination(config: TerminationConfig = TerminationConfig(), seed=7) -> pd.DataFrame:
    """Every request routed to a terminating pod, and what became of it.

    Requests arrive as a Poisson stream from ``-warmup_s``, each through a random
    node. Node ``j`` stops routing at ``delay_j ~ U(0, endpoint_delay_max_s)``.
    The listener closes at ``prestop_s``: a request arriving in ``[prestop_s,
    delay_j)`` is refused (the race). Accepted requests run for a lognormal time;
    the process exits when the last one finishes plus ``flush_s``, or is SIGKILLed
    at ``grace_s``, killing whatever is still running.

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
    """Counts of served/refused/killed requests (after time 0 or in flight at it) and how the pod ended."""
    codes = df["outcome"].map({name: code for code, name in enumerate(OUTCOMES)}).to_numpy(dtype=np.int8)
    sim = {"end_s": df["end_s"].to_numpy(), "outcome": codes, **df.attrs}
    return _summary(sim)


def sweep_prestop(
    prestop_values_s, config: TerminationConfig = TerminationConfig(), n_seeds: int = 20, seed=7
) -> pd.DataFrame:
    """Refused requests vs preStop sleep over ``n_seeds`` runs each, with the closed form.

    Returns one row per (prestop_s, run): ``prestop_s``, ``run``, ``refused``,
    ``killed``, ``sigkill``, ``theory_refused``.
    """
    n_seeds = validate.int_in_range("n_seeds", n_seeds, 1, 10_000)
    values = [validate.non_negative_float("prestop_values_s", v) for v in prestop_values_s]
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
    grace_values_s, config: TerminationConfig = TerminationConfig(), n_seeds: int = 20, seed=7
) -> pd.DataFrame:
    """Requests killed in flight vs grace period, with :func:`theory_killed_in_flight` (no race)."""
    n_seeds = validate.int_in_range("n_seeds", n_seeds, 1, 10_000)
    values = [validate.positive_float("grace_values_s", v) for v in grace_values_s]
    seeds = np.random.SeedSequence(validate.non_negative_int("seed", seed)).spawn(n_seeds)
    rows = []
    for value in values:
        cfg = _replace(config, grace_s=value)
        theory = theory_killed_in_flight(cfg.rate_per_s, cfg.service_median_s, cfg.service_sigma, value)
        for run, child_seed in enumerate(seeds):
            summary = _summary(_simulate(cfg, np.random.default_rng(child_seed)))
            rows.append({"grace_s": value, "run": run, **summary, "theory_killed": theory})
    return pd.DataFrame(rows)


def _replace(config: TerminationConfig, **changes) -> TerminationConfig:
    from dataclasses import replace

    return replace(config, **changes)


def theory_race_refused(rate_per_s: float, endpoint_delay_max_s: float, prestop_s: float) -> float:
    """Expected requests refused by the endpoint race: ``rate * E[(delay - prestop)^+]``, delay ~ U(0, D).

    With a uniform delay on [0, D], ``E[(delay - s)^+] = (D - s)^2 / (2 D)`` for
    ``s < D`` and 0 after: a preStop sleep at least as long as the slowest node's
    update refuses nothing.
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
    """
    rate = validate.positive_float("rate_per_s", rate_per_s)
    m = validate.positive_float("service_median_s", service_median_s)
    sigma = validate.positive_float("service_sigma", service_sigma)
    g = validate.positive_float("grace_s", grace_s)
    d1 = (math.log(m / g) + sigma**2) / sigma
    d2 = d1 - sigma

    def phi(x: float) -> float:
        return 0.5 * (1 + math.erf(x / math.sqrt(2)))

    return rate * (m * math.exp(sigma**2 / 2) * phi(d1) - g * phi(d2))


# --------------------------------------------------------------------------- plots


def plot_race(sweep: pd.DataFrame, ax=None):
    """Refused requests per termination vs preStop sleep: runs as dots, mean and closed form as lines."""
    ax = plot.axes_or_new(ax)
    ax.plot(sweep["prestop_s"], sweep["refused"], "o", alpha=0.25, label="one termination (simulated)")
    mean = sweep.groupby("prestop_s")[["refused", "theory_refused"]].mean()
    ax.plot(mean.index, mean["refused"], "-", lw=2, label="mean of simulations")
    ax.plot(mean.index, mean["theory_refused"], "k--", label="theory: rate·(D−s)²/2D")
    return plot.label(ax, "preStop sleep (s)", "requests refused per termination", legend=True)


def plot_grace(sweep: pd.DataFrame, ax=None):
    """Requests killed by the closing SIGKILL vs grace period (log scale), simulation and theory."""
    ax = plot.axes_or_new(ax)
    mean = sweep.groupby("grace_s")[["killed", "theory_killed"]].mean()
    ax.plot(sweep["grace_s"], sweep["killed"] + 0.1, "o", alpha=0.25, label="one termination (+0.1)")
    ax.plot(mean.index, mean["killed"] + 0.1, "-", lw=2, label="mean of simulations (+0.1)")
    ax.plot(mean.index, mean["theory_killed"] + 0.1, "k--", label="theory: rate·E[(S−G)⁺] (+0.1)")
    ax.set_yscale("log")
    return plot.label(ax, "grace period (s)", "requests killed in flight", legend=True)
