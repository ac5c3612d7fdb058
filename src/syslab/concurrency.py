"""The cost of a connection: threads vs an event loop, readiness APIs, descriptor and port limits.

Three kinds of function live here:

- **theory** -- closed forms: the ephemeral ports one destination offers and the
  outbound connection rate they sustain through TIME_WAIT
  (:func:`theory_outbound_rate_per_s`), the CPU cycles a core has per packet
  (:func:`theory_cycles_per_packet`), and the mean latency of an event loop that
  sometimes runs a blocking call (:func:`theory_event_loop_mean_latency_ms`,
  Pollaczek-Khinchine through :mod:`syslab.queueing`);
- **simulate** -- an event loop as the single-server queue it is
  (:func:`simulate_event_loop`, reusing :func:`syslab.queueing.simulate_pool`);
- **real experiments** on 127.0.0.1, each bounded in time and cleaned up:
  a thread-per-connection and an asyncio server holding N idle connections in a
  child process (:func:`measure_server`, :func:`run_servers`), the cost of
  ``select``/``poll``/``epoll`` with N registered sockets
  (:func:`measure_readiness_cost`), a child that lowers its own RLIMIT_NOFILE and
  opens sockets until ``EMFILE`` (:func:`run_emfile_child`), the local ports the
  kernel hands out (:func:`sample_outbound_ports`), and an asyncio loop stalled by
  one blocking call (:func:`measure_loop_stall`).

The child-process side lives in :mod:`syslab.children.conc` (standard library only).
Units are in the names: ``_s`` seconds, ``_ms`` milliseconds, ``_us`` microseconds.
"""

from __future__ import annotations

import asyncio
import math
import os
import selectors
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from syslab import environment, experiment, queueing, validate
from syslab.plot import axes_or_new, label
from syslab.processes import ChildProcess
from syslab.queueing import PoolConfig, kingman_queue_delay_s, simulate_pool

__all__ = [
    "FD_SETSIZE",
    "LINUX_TIME_WAIT_S",
    "fd_budget",
    "kernel_memory_kb",
    "read_tcp_tw_reuse",
    "measure_loop_stall",
    "measure_readiness_cost",
    "measure_server",
    "plot_event_loop",
    "plot_readiness_cost",
    "plot_server_memory",
    "read_ephemeral_port_range",
    "run_emfile_child",
    "run_servers",
    "sample_outbound_ports",
    "simulate_event_loop",
    "summarize_event_loop",
    "summarize_loop_stall",
    "sweep_event_loop",
    "theory_cycles_per_packet",
    "theory_event_loop_mean_latency_ms",
    "theory_outbound_rate_per_s",
]

MAX_REQUESTS = 5_000_000  # simulated requests per event-loop run (40 MB per float column)
MAX_PINGS = 100_000  # sequential round trips timed per server
MAX_TIMEOUT_S = 300.0  # the longest real experiment in this module
MAX_SWEEP_POINTS = 50  # slow-call lengths in one sweep (two simulations each)
MAX_BLOCKING_MS = 60_000.0  # one slow call, milliseconds

# select() takes fd_set bitmaps of FD_SETSIZE bits: glibc fixes it at 1024, and
# CPython's selectmodule refuses any descriptor number >= FD_SETSIZE.
FD_SETSIZE = 1024
# TCP_TIMEWAIT_LEN in include/net/tcp.h: (60*HZ), a compile-time constant, not a sysctl.
LINUX_TIME_WAIT_S = 60.0
# Descriptors held back for the interpreter, pipes, the listener and the notebook kernel.
_FD_RESERVE = 64

# --------------------------------------------------------------------------- theory


def theory_outbound_rate_per_s(
    port_low: int, port_high: int, time_wait_s: float = LINUX_TIME_WAIT_S
) -> float:
    """Sustained new connections per second from one source IP to one (IP, port) destination.

    A connection is identified by the 4-tuple (source IP, source port, destination
    IP, destination port). With the first three fixed, only the source port varies,
    so ``port_high - port_low + 1`` connections can exist at once; the side that
    closes first keeps its port in TIME_WAIT for ``time_wait_s``. By Little's law
    the sustainable rate is ports / time_wait_s.

    Parameters
    ----------
    port_low : int
        Port low.
    port_high : int
        Port high.
    time_wait_s : float
        Time wait s, seconds.

    Returns
    -------
    float
        Sustainable new connections per second (connections/s) to one destination.
    """
    low = validate.int_in_range("port_low", port_low, 1, 65535)
    high = validate.int_in_range("port_high", port_high, 1, 65535)
    if high < low:
        raise ValueError(f"port_high must be >= port_low, got {port_low}..{port_high}")
    hold = validate.positive_float("time_wait_s", time_wait_s)
    return (high - low + 1) / hold


def theory_cycles_per_packet(clock_hz: float, cores: int, packets_per_s: float) -> float:
    """CPU cycles available per packet: clock x cores / packet rate.

    Parameters
    ----------
    clock_hz : float
        Clock hz.
    cores : int
        Cores.
    packets_per_s : float
        Packets per s, seconds.

    Returns
    -------
    float
        CPU cycles available per packet (cycles).
    """
    hz = validate.positive_float("clock_hz", clock_hz)
    n = validate.positive_int("cores", cores)
    rate = validate.positive_float("packets_per_s", packets_per_s)
    return hz * n / rate


def _loop_service_moments(cpu_ms: float, blocking_ms: float, blocking_fraction: float) -> tuple[float, float]:
    """Mean and coefficient of variation of the time one request holds the loop (blocking mode)."""
    mean = cpu_ms + blocking_fraction * blocking_ms
    second = (1 - blocking_fraction) * cpu_ms**2 + blocking_fraction * (cpu_ms + blocking_ms) ** 2
    variance = second - mean**2
    return mean, (np.sqrt(max(variance, 0.0)) / mean)


def theory_event_loop_mean_latency_ms(
    arrival_rate_per_s: float,
    cpu_ms: float,
    blocking_ms: float,
    blocking_fraction: float,
    mode: str = "blocking",
) -> float:
    """Mean request latency of a single event loop with Poisson arrivals (M/G/1).

    In ``"blocking"`` mode a fraction of requests make a synchronous call of
    ``blocking_ms`` on the loop thread, so the loop's service time is a two-point
    mixture; in ``"offloaded"`` mode that call is awaited (or run in an executor)
    and only adds to its own request's latency. The queueing delay is
    Pollaczek-Khinchine, via :func:`syslab.queueing.kingman_queue_delay_s` (exact
    for Poisson arrivals).

    Returns ``inf`` when the loop is saturated.

    Parameters
    ----------
    arrival_rate_per_s : float
        Arrival rate per s, seconds.
    cpu_ms : float
        Cpu ms, milliseconds.
    blocking_ms : float
        Blocking ms, milliseconds.
    blocking_fraction : float
        Blocking fraction.
    mode : str
        Mode.

    Returns
    -------
    float
        Mean request latency in milliseconds (``inf`` when the loop is saturated).
    """
    mode = validate.choice("mode", mode, ("blocking", "offloaded"))
    lam = validate.positive_float("arrival_rate_per_s", arrival_rate_per_s)
    cpu = validate.positive_float("cpu_ms", cpu_ms)
    block = validate.non_negative_float("blocking_ms", blocking_ms)
    p = validate.probability("blocking_fraction", blocking_fraction)
    if mode == "blocking":
        mean_ms, cv = _loop_service_moments(cpu, block, p)
        wq_s = kingman_queue_delay_s(lam, mean_ms / 1000, 1.0, cv)
        return wq_s * 1000 + mean_ms
    wq_s = kingman_queue_delay_s(lam, cpu / 1000, 1.0, 0.0)
    return wq_s * 1000 + cpu + p * block


# ----------------------------------------------------------------------- simulate


def simulate_event_loop(
    arrival_rate_per_s: float,
    cpu_ms: float,
    blocking_ms: float,
    blocking_fraction: float,
    *,
    mode: str = "blocking",
    n_requests: int = 200_000,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """One event loop serving requests, one row per request.

    Requests arrive as a Poisson process and each needs ``cpu_ms`` of the loop
    thread. A fraction ``blocking_fraction`` also make a ``blocking_ms`` call
    (a synchronous database driver, ``requests.get``, a DNS lookup). In
    ``"blocking"`` mode that call runs on the loop thread, which serves nothing
    else meanwhile; in ``"offloaded"`` mode it is awaited, so only that request
    waits for it. A single loop is a single server, so the queue is
    :func:`syslab.queueing.simulate_pool` with one connection.

    Returns
    -------
    pandas.DataFrame
        ``request_id``, ``arrival_s``, ``blocks`` (bool: this request makes the
        call), ``wait_ms`` (waiting for the loop), ``latency_ms`` (arrival to
        response) and ``mode``.

    Parameters
    ----------
    arrival_rate_per_s : float
        Arrival rate per s, seconds.
    cpu_ms : float
        Cpu ms, milliseconds.
    blocking_ms : float
        Blocking ms, milliseconds.
    blocking_fraction : float
        Blocking fraction.
    mode : str
        Mode.
    n_requests : int
        Requests simulated.
    seed : int | np.random.Generator | None
        Source of randomness (an int seed, a Generator, or None).
    """
    mode = validate.choice("mode", mode, ("blocking", "offloaded"))
    lam = validate.positive_float("arrival_rate_per_s", arrival_rate_per_s)
    cpu = validate.positive_float("cpu_ms", cpu_ms)
    block = validate.non_negative_float("blocking_ms", blocking_ms)
    p = validate.probability("blocking_fraction", blocking_fraction)
    n = validate.int_in_range("n_requests", n_requests, 1, MAX_REQUESTS)
    rng = validate.rng_from_seed(seed)
    arrivals = queueing.poisson_arrival_times_s(n, lam, rng)
    blocks = rng.random(n) < p
    on_loop_ms = cpu + np.where(blocks & (mode == "blocking"), block, 0.0)
    runs = simulate_pool(PoolConfig(size=1), arrivals_s=arrivals, services_s=on_loop_ms / 1000)
    wait_ms = runs["wait_s"].to_numpy() * 1000
    latency_ms = wait_ms + cpu + np.where(blocks, block, 0.0)
    return pd.DataFrame(
        {
            "request_id": np.arange(n),
            "arrival_s": arrivals,
            "blocks": blocks,
            "wait_ms": wait_ms,
            "latency_ms": latency_ms,
            "mode": mode,
        }
    )


def summarize_event_loop(df: pd.DataFrame, warmup_fraction: float = 0.05) -> pd.Series:
    """Mean, p50, p99 and p99.9 latency (ms) of a :func:`simulate_event_loop` run.

    Also ``p99_non_blocking_ms``: the p99 of the requests that made no blocking
    call themselves -- the innocent bystanders.

    Parameters
    ----------
    df : pd.DataFrame
        The frame returned by the matching simulate/run function.
    warmup_fraction : float
        Share of the earliest rows left out, in [0, 1).

    Returns
    -------
    pd.Series
        ``mean_ms``, ``p50_ms``, ``p99_ms``, ``p999_ms`` and ``p99_non_blocking_ms`` (milliseconds).
    """
    if not isinstance(df, pd.DataFrame) or not {"latency_ms", "blocks"} <= set(df.columns):
        raise TypeError("df must be the DataFrame returned by simulate_event_loop")
    frac = validate.float_in_range("warmup_fraction", warmup_fraction, 0.0, 1.0, high_inclusive=False)
    kept = df.iloc[int(frac * len(df)) :]
    lat = kept["latency_ms"].to_numpy()
    bystanders = kept.loc[~kept["blocks"], "latency_ms"].to_numpy()
    return pd.Series(
        {
            **queueing.latency_percentiles_ms(lat),
            "p99_non_blocking_ms": float(np.percentile(bystanders, 99)) if bystanders.size else np.nan,
        }
    )


def sweep_event_loop(
    blocking_ms: Sequence[float],
    arrival_rate_per_s: float,
    cpu_ms: float,
    blocking_fraction: float,
    *,
    n_requests: int = 200_000,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Both modes of :func:`simulate_event_loop` for each slow-call length, with the M/G/1 mean.

    Every run uses the same seed, so for one call length the two modes see the
    same arrivals and the same requests making the call (common random numbers).

    Returns
    -------
    pandas.DataFrame
        One row per (blocking_ms, mode): the fields of :func:`summarize_event_loop`
        plus ``mean_ms_theory``.

    Parameters
    ----------
    blocking_ms : Sequence[float]
        Blocking ms, milliseconds.
    arrival_rate_per_s : float
        Arrival rate per s, seconds.
    cpu_ms : float
        Cpu ms, milliseconds.
    blocking_fraction : float
        Blocking fraction.
    n_requests : int
        Requests simulated.
    seed : int
        Source of randomness (an int seed, a Generator, or None).
    """
    lengths = validate.sequence_of_floats(
        "blocking_ms", blocking_ms, 0.0, MAX_BLOCKING_MS, max_length=MAX_SWEEP_POINTS
    )
    if isinstance(seed, np.random.Generator):
        seed = int(seed.integers(0, 2**31))
    elif seed is None:
        seed = int(np.random.SeedSequence().entropy % 2**31)
    seed = validate.non_negative_int("seed", seed)
    rows = []
    for block in lengths:
        for mode in ("blocking", "offloaded"):
            df = simulate_event_loop(
                arrival_rate_per_s,
                cpu_ms,
                block,
                blocking_fraction,
                mode=mode,
                n_requests=n_requests,
                seed=seed,
            )
            theory = theory_event_loop_mean_latency_ms(
                arrival_rate_per_s, cpu_ms, block, blocking_fraction, mode
            )
            rows.append(
                {"blocking_ms": block, "mode": mode, **summarize_event_loop(df), "mean_ms_theory": theory}
            )
    return pd.DataFrame(rows)


# ------------------------------------------------------------ environment helpers


def fd_budget(processes: int = 1) -> int:
    """Sockets one experiment may open: the soft RLIMIT_NOFILE minus a reserve, split by processes.

    Read at run time; where the limit is unlimited or unknown, 1024 is used as a modest basis.

    Parameters
    ----------
    processes : int
        Processes.

    Returns
    -------
    int
        Sockets (file descriptors) each process may open, >= 0.
    """
    n = validate.positive_int("processes", processes)
    soft, _ = environment.file_descriptor_limits()
    if soft < 0:  # no limit reported (RLIM_INFINITY is -1) or no such limit: stay modest
        soft = 1024
    return max(0, (soft - _FD_RESERVE) // n)


def read_ephemeral_port_range(path: str | os.PathLike = "/proc/sys/net/ipv4/ip_local_port_range") -> tuple:
    """The (low, high) local port range the kernel picks from for ``connect()``.

    Returns ``(None, None)`` where the file does not exist (not Linux).

    Parameters
    ----------
    path : str | os.PathLike
        Path.

    Returns
    -------
    tuple
        ``(low, high)`` local port numbers (inclusive), or ``(None, None)``.
    """
    file = Path(path)
    if not file.exists():
        return (None, None)
    low, high = (int(x) for x in file.read_text().split())
    return (low, high)


# ------------------------------------------------------ parent: the experiments


def kernel_memory_kb() -> dict[str, float]:
    """The kernel's own memory right now: what RSS does not count.

    Returns
    -------
    dict
        ``kernel_stack_kb`` and ``slab_kb`` from ``/proc/meminfo`` (every task's kernel
        stack; the slab caches holding ``struct sock``, files, inodes), and
        ``tcp_buffers_kb`` from ``/proc/net/sockstat`` (pages queued in TCP socket
        buffers). System-wide, so a measurement takes the difference of two readings;
        NaN where the files do not exist (not Linux).
    """
    out = {"kernel_stack_kb": math.nan, "slab_kb": math.nan, "tcp_buffers_kb": math.nan}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key == "KernelStack":
                    out["kernel_stack_kb"] = float(rest.split()[0])
                elif key == "Slab":
                    out["slab_kb"] = float(rest.split()[0])
        with open("/proc/net/sockstat") as f:
            for line in f:
                if line.startswith("TCP:"):
                    fields = line.split()
                    out["tcp_buffers_kb"] = (
                        float(fields[fields.index("mem") + 1]) * os.sysconf("SC_PAGE_SIZE") / 1024
                    )
    except (OSError, ValueError):
        pass
    return out


def read_tcp_tw_reuse(path: str | os.PathLike = "/proc/sys/net/ipv4/tcp_tw_reuse") -> int | None:
    """``net.ipv4.tcp_tw_reuse`` on this machine (0 off, 1 on, 2 loopback only), or None.

    Parameters
    ----------
    path : str or os.PathLike
        The sysctl file.

    Returns
    -------
    int or None
    """
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _ask_stats(sock: socket.socket) -> dict[str, int]:
    sock.sendall(b"stats\n")
    fields = sock.recv(256).decode().split()
    return {k: int(v) for k, v in (f.split("=") for f in fields)}


def measure_server(
    mode: str, n_connections: int, *, n_pings: int = 300, timeout_s: float = 30.0
) -> experiment.Run:
    """Hold ``n_connections`` idle connections to a real server on 127.0.0.1 and measure it.

    The server runs in a child process (``python -m syslab.children.conc serve``):
    ``"threads"`` starts one OS thread per accepted connection, each blocked in
    ``recv``; ``"asyncio"`` serves every connection from one event loop. The parent
    opens the connections, asks the server for its resident and virtual memory
    (``/proc/self/status``) and thread count, then times ``n_pings`` sequential
    64-byte round trips on connections spread over the whole set, and a burst in
    which every connection sends one message at once.

    Parameters
    ----------
    mode : {"threads", "asyncio"}
    n_connections : int
        At most :func:`fd_budget` ``(2)`` -- both processes hold one descriptor per connection.
    n_pings : int
        Sequential round trips to time.
    timeout_s : float
        Hard limit for the whole measurement; the child is killed at the end regardless.

    Returns
    -------
    syslab.experiment.Run
        ``frame``: one row; ``summary``: the same values: ``mode``, ``n_connections``,
        ``rss_kb``, ``vm_kb``, ``threads`` (of the
        server with all connections open), ``rss_per_conn_kb`` and
        ``vm_per_conn_kb`` (growth from 1 to N connections, per connection),
        ``kernel_stack_per_conn_kb`` and ``slab_per_conn_kb`` (the kernel's share: the
        system-wide growth of ``KernelStack`` and ``Slab`` in ``/proc/meminfo`` over the
        same interval, per connection; both ends are on this machine, and other
        processes add noise),
        ``p50_us``/``p99_us`` (round trip of one ping) and ``burst_ms`` (time
        for all N connections to get an answer when they all send at once).
    """
    mode = validate.choice("mode", mode, ("threads", "asyncio"))
    budget = fd_budget(2)
    n = validate.int_in_range("n_connections", n_connections, 2, max(2, budget))
    n_pings = validate.int_in_range("n_pings", n_pings, 1, MAX_PINGS)
    timeout_s = validate.float_in_range("timeout_s", timeout_s, 0.0, MAX_TIMEOUT_S, low_inclusive=False)
    deadline = time.monotonic() + timeout_s
    sockets: list[socket.socket] = []
    with ChildProcess(
        "syslab.children.conc",
        ["--max-life-s", f"{min(timeout_s + 5, 600.0):.1f}", "serve", mode],
        timeout_s=timeout_s + 5,
    ) as child:
        try:
            port = int(child.expect("ready", timeout_s=min(10.0, timeout_s))["port"])
            sockets.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            base = _ask_stats(sockets[0])
            kernel_before = kernel_memory_kb()
            for _ in range(n - 1):
                if time.monotonic() > deadline:
                    raise TimeoutError("opening connections took longer than timeout_s")
                sockets.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            stats = _ask_stats(sockets[0])
            while stats["open"] < n and time.monotonic() < deadline:
                time.sleep(0.01)
                stats = _ask_stats(sockets[0])
            if stats["open"] < n:
                raise TimeoutError(f"server accepted {stats['open']} of {n} connections in time")
            kernel_after = kernel_memory_kb()
            picks = np.linspace(0, n - 1, n_pings).astype(int)
            rtt_us = np.empty(n_pings)
            for i, k in enumerate(picks):
                start = time.perf_counter()
                sockets[k].sendall(b"ping\n")
                sockets[k].recv(64)
                rtt_us[i] = (time.perf_counter() - start) * 1e6
            start = time.perf_counter()
            for s in sockets:
                s.sendall(b"ping\n")
            for s in sockets:
                s.recv(64)
            burst_ms = (time.perf_counter() - start) * 1000
        finally:
            for s in sockets:
                s.close()
    row = {
        "mode": mode,
        "n_connections": n,
        "rss_kb": stats["rss_kb"],
        "vm_kb": stats["vm_kb"],
        "threads": stats["threads"],
        "rss_per_conn_kb": (stats["rss_kb"] - base["rss_kb"]) / (n - 1),
        "vm_per_conn_kb": (stats["vm_kb"] - base["vm_kb"]) / (n - 1),
        # System-wide deltas over the same interval: both ends of each connection live on this
        # machine, so the slab and buffer figures are per connection *pair* (client + server).
        "kernel_stack_per_conn_kb": (kernel_after["kernel_stack_kb"] - kernel_before["kernel_stack_kb"])
        / (n - 1),
        "slab_per_conn_kb": (kernel_after["slab_kb"] - kernel_before["slab_kb"]) / (n - 1),
        "p50_us": float(np.percentile(rtt_us, 50)),
        "p99_us": float(np.percentile(rtt_us, 99)),
        "burst_ms": burst_ms,
    }
    return experiment.Run.create(pd.DataFrame([row]), row)


def run_servers(
    connection_counts: Sequence[int],
    modes: Sequence[str] = ("threads", "asyncio"),
    *,
    n_pings: int = 300,
    timeout_s: float = 30.0,
) -> experiment.Run:
    """:func:`measure_server` for every (mode, count), one row each.

    Counts above the descriptor budget read at run time are dropped (so a machine
    with a soft limit of 1024 runs a shorter sweep instead of failing).

    Parameters
    ----------
    connection_counts : sequence of int
        Idle connections to hold, each 2 to the descriptor budget.
    modes : sequence of {"threads", "asyncio"}
    n_pings : int
        Sequential round trips timed per server (1 to ``MAX_PINGS``).
    timeout_s : float
        Limit per server, seconds; every child is killed at the end.

    Returns
    -------
    syslab.experiment.Run
        ``frame``: the rows of :func:`measure_server`; ``summary``: ``tcp_tw_reuse``
        (this machine's setting, or -1 if unknown) and ``fd_budget``.
    """
    counts = validate.sequence_of_positive_ints("connection_counts", connection_counts)
    modes = [validate.choice("modes", m, ("threads", "asyncio")) for m in modes]
    budget = fd_budget(2)
    rows = [
        measure_server(m, c, n_pings=n_pings, timeout_s=timeout_s).frame
        for c in counts
        if 2 <= c <= budget
        for m in modes
    ]
    if not rows:
        raise ValueError(f"no count in connection_counts fits the descriptor budget ({budget})")
    reuse = read_tcp_tw_reuse()
    return experiment.Run.create(
        pd.concat(rows, ignore_index=True),
        {"tcp_tw_reuse": -1 if reuse is None else reuse, "fd_budget": budget},
    )


_SELECTORS = {
    "select": "SelectSelector",
    "poll": "PollSelector",
    "epoll": "EpollSelector",
    "kqueue": "KqueueSelector",
}


def measure_readiness_cost(
    connection_counts: Sequence[int],
    apis: Sequence[str] = ("select", "poll", "epoll"),
    *,
    repeats: int = 200,
    timeout_s: float = 20.0,
) -> experiment.Run:
    """Time one readiness check with N idle sockets registered and exactly one ready.

    For each N, opens N connected socket pairs (``socket.socketpair``), registers
    one end of each with a :mod:`selectors` selector, writes one byte into the last
    pair so exactly one socket is readable, and times ``select(timeout=0)``: the
    best of five batches of ``repeats`` calls (the best, because other processes
    on a shared machine only ever add time). ``select`` cannot watch a descriptor
    numbered ``>= FD_SETSIZE``; that case is recorded, not skipped. Counts above the
    descriptor budget read at run time are dropped (a soft limit of 1024 allows ~480 pairs).

    Returns
    -------
    syslab.experiment.Run
        ``frame``: one row per (api, N): ``api``, ``n_connections``, ``max_fd`` (highest
        registered descriptor number), ``us_per_call`` (NaN where unsupported),
        ``ready`` (sockets reported ready: must be 1) and ``error``. ``summary``:
        ``fd_budget`` (socket pairs the descriptor limit allowed), ``repeats``,
        ``max_connections`` (largest N measured) and ``n_unsupported`` (rows where the
        API could not watch the descriptors, e.g. ``select`` past ``FD_SETSIZE``).

    Parameters
    ----------
    connection_counts : Sequence[int]
        Connection counts.
    apis : Sequence[str]
        Apis.
    repeats : int
        Timed repetitions.
    timeout_s : float
        Limit for the whole experiment, seconds.
    """
    counts = validate.sequence_of_positive_ints("connection_counts", connection_counts)
    wanted = [validate.choice("apis", a, tuple(_SELECTORS)) for a in apis]
    repeats = validate.bounded_int("repeats", repeats, 1_000)
    timeout_s = validate.float_in_range("timeout_s", timeout_s, 0.0, MAX_TIMEOUT_S, low_inclusive=False)
    budget = fd_budget(2)  # two descriptors per socket pair, one process
    counts = [c for c in counts if c <= budget]
    if not counts:
        raise ValueError(f"no count in connection_counts fits the descriptor budget ({budget} pairs)")
    deadline = time.monotonic() + timeout_s
    rows = []
    for n in counts:
        pairs = []
        try:
            for _ in range(n):
                pairs.append(socket.socketpair())
            pairs[-1][1].send(b"x")
            max_fd = max(a.fileno() for a, _ in pairs)
            for api in wanted:
                cls = getattr(selectors, _SELECTORS[api], None)
                if cls is None:
                    continue
                if time.monotonic() > deadline:
                    raise TimeoutError("measure_readiness_cost ran past timeout_s")
                rows.append(_time_selector(api, cls, pairs, repeats, max_fd))
        finally:
            for a, b in pairs:
                a.close()
                b.close()
    frame = pd.DataFrame(rows)
    return experiment.Run.create(
        frame,
        {
            "fd_budget": int(budget),
            "repeats": int(repeats),
            "max_connections": int(max(counts)),
            "n_unsupported": int(frame["us_per_call"].isna().sum()) if len(frame) else 0,
        },
    )


def _time_selector(api: str, cls: type, pairs: list, repeats: int, max_fd: int) -> dict:
    row = {"api": api, "n_connections": len(pairs), "max_fd": max_fd, "us_per_call": np.nan, "ready": 0}
    sel = cls()
    try:
        for a, _ in pairs:
            sel.register(a, selectors.EVENT_READ)
        try:
            row["ready"] = len(sel.select(0))
        except ValueError as exc:  # select(): "filedescriptor out of range in select()"
            row["error"] = str(exc)
            return row
        best = np.inf
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(repeats):
                sel.select(0)
            best = min(best, (time.perf_counter() - start) / repeats)
        row["us_per_call"] = best * 1e6
        row["error"] = ""
        return row
    finally:
        sel.close()


def run_emfile_child(limit: int = 256, *, timeout_s: float = 10.0) -> experiment.Run:
    """Start a child that lowers its soft RLIMIT_NOFILE to ``limit`` and opens sockets until it fails.

    Returns
    -------
    syslab.experiment.Run
        ``summary`` (and a one-row ``frame``): ``limit``, ``already_open`` (descriptors the interpreter had open before
        the loop), ``opened`` (sockets created before the failure), ``highest_fd``
        and ``error`` (``"EMFILE"`` expected). On Linux ``already_open + opened ==
        limit`` and ``highest_fd == limit - 1``: descriptor numbers run from 0 to
        limit - 1.

    Parameters
    ----------
    limit : int
        Limit.
    timeout_s : float
        Limit for the whole experiment, seconds.
    """
    _, hard = environment.file_descriptor_limits()
    high = hard if hard > 0 else 65536
    limit = validate.int_in_range("limit", limit, 16, min(high, 65536))
    timeout_s = validate.float_in_range("timeout_s", timeout_s, 0.0, MAX_TIMEOUT_S, low_inclusive=False)
    life = f"{min(timeout_s, 600.0):.1f}"
    with ChildProcess(
        "syslab.children.conc", ["--max-life-s", life, "emfile", str(limit)], timeout_s=timeout_s
    ) as child:
        result = child.expect("result", timeout_s=timeout_s)
    row = {key: result[key] for key in ("limit", "already_open", "opened", "highest_fd", "error")}
    return experiment.Run.create(pd.DataFrame([row]), row)


def sample_outbound_ports(n_connections: int = 200, *, timeout_s: float = 10.0) -> pd.DataFrame:
    """Open ``n_connections`` connections to one local listener; record each local (source) port.

    Returns
    -------
    pandas.DataFrame
        ``local_port`` per connection, and ``in_range`` (bool): inside the range
        :func:`read_ephemeral_port_range` reports (True everywhere if it is unknown).

    Parameters
    ----------
    n_connections : int
        Number of connections.
    timeout_s : float
        Limit for the whole experiment, seconds.
    """
    n = validate.int_in_range("n_connections", n_connections, 1, max(1, fd_budget(2)))
    timeout_s = validate.float_in_range("timeout_s", timeout_s, 0.0, MAX_TIMEOUT_S, low_inclusive=False)
    low, high = read_ephemeral_port_range()
    deadline = time.monotonic() + timeout_s
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    clients, accepted, ports = [], [], []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        listener.settimeout(timeout_s)
        address = listener.getsockname()
        for _ in range(n):
            if time.monotonic() > deadline:
                raise TimeoutError("sample_outbound_ports ran past timeout_s")
            client = socket.create_connection(address, timeout=timeout_s)
            clients.append(client)
            accepted.append(listener.accept()[0])
            ports.append(client.getsockname()[1])
    finally:
        for s in clients + accepted + [listener]:
            s.close()
    ports_arr = np.array(ports)
    in_range = np.ones(n, dtype=bool) if low is None else (ports_arr >= low) & (ports_arr <= high)
    return pd.DataFrame({"local_port": ports_arr, "in_range": in_range})


def measure_loop_stall(
    *,
    n_tasks: int = 100,
    tick_ms: float = 10.0,
    block_ms: float = 50.0,
    n_blocks: int = 3,
    duration_s: float = 1.0,
    mode: str = "blocking",
) -> experiment.Run:
    """Run a real asyncio loop with ``n_tasks`` timers and one task that makes a slow call.

    Every task wakes every ``tick_ms`` and records how late it woke. A separate
    task makes ``n_blocks`` calls of ``block_ms`` spread over the run: with
    ``mode="blocking"`` it calls ``time.sleep`` on the loop thread (as a
    synchronous driver would); with ``"offloaded"`` it awaits
    ``loop.run_in_executor(None, time.sleep, ...)``. The loop runs in its own
    thread (a notebook already runs one in the main thread) and the thread is
    joined with a timeout.

    Returns
    -------
    syslab.experiment.Run
        ``frame``: one row per wake-up: ``mode``, ``task``, ``tick``, ``lateness_ms``
        (how long after its scheduled time each wake-up happened). ``summary``:
        ``mode``, ``n_tasks``, ``block_ms``, ``n_blocks``, and the wake-up lateness
        ``p50_ms``, ``p99_ms`` and ``max_ms`` (milliseconds).

    Parameters
    ----------
    n_tasks : int
        Number of tasks.
    tick_ms : float
        Tick ms, milliseconds.
    block_ms : float
        Block ms, milliseconds.
    n_blocks : int
        Number of blocks.
    duration_s : float
        Duration s, seconds.
    mode : str
        Mode.
    """
    mode = validate.choice("mode", mode, ("blocking", "offloaded"))
    n_tasks = validate.int_in_range("n_tasks", n_tasks, 1, 10_000)
    tick_s = validate.float_in_range("tick_ms", tick_ms, 0.1, 10_000.0) / 1000
    block_s = validate.float_in_range("block_ms", block_ms, 0.0, 5_000.0) / 1000
    duration_s = validate.float_in_range("duration_s", duration_s, 0.05, 30.0)
    # Every block holds the loop; together they must fit in the run (and so end with it).
    n_blocks = validate.int_in_range("n_blocks", n_blocks, 0, max(0, int(duration_s / max(block_s, 1e-3))))
    n_ticks = max(1, int(duration_s / tick_s))
    records: list[tuple[int, int, float]] = []

    async def ticker(task: int, t0: float) -> None:
        loop = asyncio.get_running_loop()
        for k in range(1, n_ticks + 1):
            due = t0 + k * tick_s
            await asyncio.sleep(max(0.0, due - loop.time()))
            records.append((task, k, (loop.time() - due) * 1000))

    async def blocker(t0: float) -> None:
        loop = asyncio.get_running_loop()
        for j in range(n_blocks):
            due = t0 + (j + 0.5) * duration_s / n_blocks
            await asyncio.sleep(max(0.0, due - loop.time()))
            if mode == "blocking":
                time.sleep(block_s)
            else:
                await loop.run_in_executor(None, time.sleep, block_s)

    async def main() -> None:
        t0 = asyncio.get_running_loop().time() + 0.02
        await asyncio.gather(blocker(t0), *(ticker(i, t0) for i in range(n_tasks)))

    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # reported to the caller below
            failure.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=duration_s + n_blocks * block_s + 10)
    if worker.is_alive():
        raise TimeoutError("the event loop did not finish in time")
    if failure:
        raise failure[0]
    df = pd.DataFrame(records, columns=["task", "tick", "lateness_ms"])
    df.insert(0, "mode", mode)
    lateness = df["lateness_ms"].to_numpy()
    return experiment.Run.create(
        df,
        {
            "mode": mode,
            "n_tasks": int(n_tasks),
            "block_ms": float(block_s * 1000),
            "n_blocks": int(n_blocks),
            "p50_ms": float(np.percentile(lateness, 50)) if lateness.size else float("nan"),
            "p99_ms": float(np.percentile(lateness, 99)) if lateness.size else float("nan"),
            "max_ms": float(lateness.max()) if lateness.size else float("nan"),
        },
    )


def summarize_loop_stall(df: pd.DataFrame) -> pd.DataFrame:
    """p50, p99 and max wake-up lateness (ms) per mode of :func:`measure_loop_stall` runs.

    Parameters
    ----------
    df : pd.DataFrame
        The frame returned by the matching simulate/run function.

    Returns
    -------
    pd.DataFrame
        One row per ``mode`` (index): ``p50_ms``, ``p99_ms``, ``max_ms`` wake-up lateness (milliseconds).
    """
    if not isinstance(df, pd.DataFrame) or not {"mode", "lateness_ms"} <= set(df.columns):
        raise TypeError("df must be the DataFrame returned by measure_loop_stall")
    grouped = df.groupby("mode")["lateness_ms"]
    return pd.DataFrame(
        {
            "p50_ms": grouped.quantile(0.5),
            "p99_ms": grouped.quantile(0.99),
            "max_ms": grouped.max(),
        }
    )


# ------------------------------------------------------------------------- plots


def plot_server_memory(df: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Resident memory of each server against open connections (output of :func:`run_servers`).

    Parameters
    ----------
    df : pd.DataFrame
        The frame returned by the matching simulate/run function.
    ax : Axes | None
        Where to draw; a new figure when omitted.

    Returns
    -------
    Axes
        The axes drawn on: resident memory (MiB) against open connections.
    """
    validate.frame_columns("df", df, ["mode", "n_connections", "rss_kb"])
    ax = axes_or_new(ax)
    for i, (mode, group) in enumerate(df.groupby("mode")):
        ax.plot(group["n_connections"], group["rss_kb"] / 1024, marker="o", color=f"C{i}", label=mode)
    label(ax, "open idle connections", "server resident memory (MiB)", legend=True)
    return ax


def plot_readiness_cost(df: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Microseconds per readiness call against registered sockets (:func:`measure_readiness_cost`).

    Parameters
    ----------
    df : pd.DataFrame
        The frame returned by the matching simulate/run function.
    ax : Axes | None
        Where to draw; a new figure when omitted.

    Returns
    -------
    Axes
        The axes drawn on: microseconds per call against registered sockets (log-log).
    """
    validate.frame_columns("df", df, ["api", "n_connections", "us_per_call"])
    ax = axes_or_new(ax)
    for i, (api, group) in enumerate(df.groupby("api", sort=False)):
        ok = group.dropna(subset=["us_per_call"])
        ax.plot(ok["n_connections"], ok["us_per_call"], marker="o", color=f"C{i}", label=api)
    ax.set_xscale("log")
    ax.set_yscale("log")
    label(ax, "registered idle sockets", "time per call, one socket ready (µs)", legend=True)
    return ax


def plot_event_loop(sweep: pd.DataFrame, axes: Sequence[Axes] | None = None) -> Sequence[Axes]:
    """Left: p99 of the requests that made no slow call; right: mean latency, simulated vs M/G/1.

    ``sweep`` is the output of :func:`sweep_event_loop`. Returns the two axes.

    Parameters
    ----------
    sweep : pd.DataFrame
        The frame returned by the matching sweep function.
    axes : Sequence[Axes] | None
        Where to draw (one Axes per panel); a new figure when omitted.

    Returns
    -------
    Sequence[Axes]
        The two axes drawn on (left, right); latencies in milliseconds.
    """
    validate.frame_columns(
        "sweep", sweep, ["mode", "blocking_ms", "p99_non_blocking_ms", "mean_ms", "mean_ms_theory"]
    )
    if axes is None:
        import matplotlib.pyplot as plt

        _, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    left, right = axes
    for i, (mode, group) in enumerate(sweep.groupby("mode")):
        color = f"C{i}"
        left.plot(group["blocking_ms"], group["p99_non_blocking_ms"], marker="o", color=color, label=mode)
        right.plot(group["blocking_ms"], group["mean_ms_theory"], color=color, label=f"{mode}: M/G/1 theory")
        right.plot(
            group["blocking_ms"], group["mean_ms"], "o", mfc="none", color=color, label=f"{mode}: simulated"
        )
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_yscale("log")
    label(left, "length of the slow call (ms)", "p99 latency of the other requests (ms)", legend=True)
    label(right, "length of the slow call (ms)", "mean latency, all requests (ms)", legend=True)
    return axes
