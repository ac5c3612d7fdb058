"""TCP keep-alive, application heartbeats and HTTP keep-alive: three mechanisms, measured.

Real experiments (127.0.0.1 only, bounded, everything closed on exit):

- :func:`keepalive_options` -- set SO_KEEPALIVE, TCP_KEEPIDLE/INTVL/CNT and
  TCP_USER_TIMEOUT on a socket and read them back; :func:`system_defaults` reads
  the kernel's defaults from ``/proc``.
- :func:`run_stopped_peer` -- a peer stopped with SIGSTOP: TCP keep-alive probes
  are answered by its kernel, a WebSocket ping with a deadline is not.
- :func:`run_idle_proxy` -- a local TCP proxy that silently black-holes flows idle
  longer than T (a NAT or load balancer forgetting the flow).
- :func:`run_http_reuse` -- the cost of a new connection per request vs reuse.

Models: :func:`theory_keepalive_detection_s`, :func:`theory_retransmission_timeout_s`,
and the idle-timeout race that produces 502s (:func:`simulate_idle_race`,
:func:`theory_idle_race_rate`).
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import math
import select
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from syslab import experiment, plot, validate
from syslab.processes import ChildProcess

__all__ = [
    "measure_idle_race",
    "IdleRaceConfig",
    "keepalive_options",
    "plot_idle_race",
    "run_http_reuse",
    "run_idle_proxy",
    "run_stopped_peer",
    "simulate_idle_race",
    "summarize_http_reuse",
    "sweep_idle_race",
    "system_defaults",
    "theory_idle_race_rate",
    "theory_keepalive_detection_s",
    "theory_retransmission_timeout_s",
]

PROC_FILES = {
    "tcp_keepalive_time": "/proc/sys/net/ipv4/tcp_keepalive_time",
    "tcp_keepalive_intvl": "/proc/sys/net/ipv4/tcp_keepalive_intvl",
    "tcp_keepalive_probes": "/proc/sys/net/ipv4/tcp_keepalive_probes",
    "tcp_retries2": "/proc/sys/net/ipv4/tcp_retries2",
    "nf_conntrack_tcp_timeout_established": "/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_established",
}

# --------------------------------------------------------------------------- theory


def theory_keepalive_detection_s(idle_s: float, interval_s: float, probes: int) -> float:
    """Time from the last data to a dead peer being reported: ``idle + probes * interval`` seconds.

    Parameters
    ----------
    idle_s : float
        Idle s, seconds.
    interval_s : float
        Interval s, seconds.
    probes : int
        Probes.

    Returns
    -------
    float
        Seconds from the last data to the dead peer being reported.
    """
    idle_s = validate.positive_float("idle_s", idle_s)
    interval_s = validate.positive_float("interval_s", interval_s)
    probes = validate.positive_int("probes", probes)
    return idle_s + probes * interval_s


def theory_retransmission_timeout_s(
    retries: int = 15, rto_min_s: float = 0.2, rto_max_s: float = 120.0
) -> float:
    """How long Linux retransmits unacknowledged data before giving up (``tcp_retries2``).

    The kernel converts ``tcp_retries2`` into a time as if the retransmission
    timeout started at ``TCP_RTO_MIN`` (200 ms) and doubled up to ``TCP_RTO_MAX``
    (120 s): the sum of ``retries + 1`` backed-off timeouts. For 15 that is 924.6 s.

    Parameters
    ----------
    retries : int
        Retries.
    rto_min_s : float
        Rto min s, seconds.
    rto_max_s : float
        Rto max s, seconds.

    Returns
    -------
    float
        Seconds of retransmission before the connection is given up (924.6 s for 15).
    """
    retries = validate.int_in_range("retries", retries, 0, 255)
    rto_min_s = validate.positive_float("rto_min_s", rto_min_s)
    rto_max_s = validate.positive_float("rto_max_s", rto_max_s)
    return float(sum(min(rto_min_s * 2**i, rto_max_s) for i in range(retries + 1)))


# --------------------------------------------------------------------------- real: options and /proc


def system_defaults() -> pd.DataFrame:
    """The kernel's TCP keep-alive and retransmission settings read from ``/proc`` now.

    Returns a table with ``setting``, ``value`` (int, or None where the file is
    missing, e.g. no conntrack module or not Linux) and ``path``.

    Returns
    -------
    pd.DataFrame
        Indexed by ``setting``: ``value`` (seconds for the times, a count for probes
        and retries; None where missing) and ``path``.
    """
    rows = []
    for name, path in PROC_FILES.items():
        try:
            value: int | None = int(Path(path).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            value = None
        rows.append({"setting": name, "value": value, "path": path})
    return pd.DataFrame(rows).set_index("setting")


def keepalive_options(idle_s: int = 30, interval_s: int = 10, probes: int = 3, user_timeout_ms: int = 60_000):
    """Set keep-alive options on a fresh TCP socket and read every one back (nothing is connected).

    Returns
    -------
    pandas.DataFrame
        ``option``, ``default`` (on a fresh socket), ``requested``, ``read_back``.
        Options the platform lacks are reported as unsupported, not skipped silently.

    Parameters
    ----------
    idle_s : int
        Idle s, seconds.
    interval_s : int
        Interval s, seconds.
    probes : int
        Probes.
    user_timeout_ms : int
        User timeout ms, milliseconds.
    """
    idle_s = validate.int_in_range("idle_s", idle_s, 1, 32767)
    interval_s = validate.int_in_range("interval_s", interval_s, 1, 32767)
    probes = validate.int_in_range("probes", probes, 1, 127)
    user_timeout_ms = validate.int_in_range("user_timeout_ms", user_timeout_ms, 0, 2**31 - 1)
    wanted = [
        ("SO_KEEPALIVE", socket.SOL_SOCKET, "SO_KEEPALIVE", 1),
        ("TCP_KEEPIDLE", socket.IPPROTO_TCP, "TCP_KEEPIDLE", idle_s),
        ("TCP_KEEPINTVL", socket.IPPROTO_TCP, "TCP_KEEPINTVL", interval_s),
        ("TCP_KEEPCNT", socket.IPPROTO_TCP, "TCP_KEEPCNT", probes),
        ("TCP_USER_TIMEOUT", socket.IPPROTO_TCP, "TCP_USER_TIMEOUT", user_timeout_ms),
    ]
    rows = []
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as fresh, socket.socket() as sock:
        for label, level, attr, value in wanted:
            option = getattr(socket, attr, None)
            if option is None:
                rows.append({"option": label, "default": "unsupported", "requested": value, "read_back": "-"})
                continue
            default = fresh.getsockopt(level, option)
            sock.setsockopt(level, option, value)
            rows.append({"option": label, "default": default, "requested": value,
                         "read_back": sock.getsockopt(level, option)})  # fmt: skip
    return pd.DataFrame(rows).set_index("option")


def _set_keepalive(sock: socket.socket, idle_s: int, interval_s: int, probes: int) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle_s)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval_s)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, probes)


# --------------------------------------------------------------------------- real: stopped peer


def run_stopped_peer(
    *, keepalive_idle_s: int = 1, keepalive_interval_s: int = 1, keepalive_probes: int = 2,
    ping_every_s: float = 0.25, pong_deadline_s: float = 1.0, observe_s: float = 4.0,
) -> experiment.Run:  # fmt: skip
    """SIGSTOP a WebSocket peer and see which mechanism notices.

    The client (``syslab.websocket.WebSocketClient``) turns on aggressive TCP
    keep-alive (idle 1 s, interval 1 s, 2 probes: a dead *kernel* would be
    reported after about 3 s) and sends a WebSocket Ping every ``ping_every_s``,
    declaring the peer dead when a Pong is ``pong_deadline_s`` late. The peer
    (``python -m syslab.children.ws_peer``) is stopped, then the client watches for
    ``observe_s`` seconds.

    Returns
    -------
    syslab.experiment.Run
        ``summary`` (and a one-row ``frame`` with the same columns):
        ``keepalive_detection_theory_s`` (seconds), ``keepalive_error`` (the socket
        error TCP keep-alive raised, or ``""``), ``heartbeat_detected_after_s``
        (seconds after the SIGSTOP, NaN if never) and ``observed_s`` (seconds watched).

    Parameters
    ----------
    keepalive_idle_s : int
        Keepalive idle s, seconds.
    keepalive_interval_s : int
        Keepalive interval s, seconds.
    keepalive_probes : int
        Keepalive probes.
    ping_every_s : float
        Ping every s, seconds.
    pong_deadline_s : float
        Pong deadline s, seconds.
    observe_s : float
        Observe s, seconds.
    """
    from syslab.websocket import WebSocketClient, encode_frame

    keepalive_idle_s = validate.int_in_range("keepalive_idle_s", keepalive_idle_s, 1, 3600)
    keepalive_interval_s = validate.int_in_range("keepalive_interval_s", keepalive_interval_s, 1, 3600)
    keepalive_probes = validate.int_in_range("keepalive_probes", keepalive_probes, 1, 127)
    ping_every_s = validate.positive_float("ping_every_s", ping_every_s)
    pong_deadline_s = validate.positive_float("pong_deadline_s", pong_deadline_s)
    observe_s = validate.float_in_range("observe_s", observe_s, 0.0, 300.0, low_inclusive=False)
    limit_s = observe_s + 15
    args = ["--max-life-s", str(limit_s)]
    with ChildProcess("syslab.children.ws_peer", args, timeout_s=limit_s, stderr=subprocess.DEVNULL) as child:
        client = WebSocketClient(int(child.expect("ready", timeout_s=10.0)["port"]))
        try:
            _set_keepalive(client.sock, keepalive_idle_s, keepalive_interval_s, keepalive_probes)
            child.send_signal(signal.SIGSTOP)
            t0 = time.monotonic()
            last_pong = t0
            detected_after = float("nan")
            keepalive_error = ""
            next_ping = t0
            while (now := time.monotonic()) - t0 < observe_s:
                if now >= next_ping:
                    client.sock.sendall(encode_frame(b"hb", "ping", mask_key=b"\x01\x02\x03\x04"))
                    next_ping = now + ping_every_s
                try:
                    frame = client.recv_frame(min(0.05, ping_every_s))
                except OSError as exc:  # what TCP keep-alive would raise: ETIMEDOUT
                    keepalive_error = f"{type(exc).__name__}: {exc}"
                    break
                if frame is not None and frame["opcode"] == "pong":
                    last_pong = time.monotonic()
                if np.isnan(detected_after) and time.monotonic() - last_pong > pong_deadline_s:
                    detected_after = time.monotonic() - t0
            observed = time.monotonic() - t0
        finally:
            client.close()
            child.kill()
    row = {
        "keepalive_detection_theory_s": theory_keepalive_detection_s(
            keepalive_idle_s, keepalive_interval_s, keepalive_probes
        ),
        "keepalive_error": keepalive_error,
        "heartbeat_detected_after_s": float(detected_after),
        "observed_s": float(observed),
    }
    return experiment.Run.create(pd.DataFrame([row]), row)


# --------------------------------------------------------------------------- real: idle proxy


class _EchoServer:
    """Line echo on 127.0.0.1: ``ping`` gets ``pong``, anything else ``echo <line>``. Threads, bounded."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(0.1)
        buffer = b""
        while not self.stop.is_set():
            try:
                chunk = conn.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                reply = b"pong\n" if line == b"ping" else b"echo " + line + b"\n"
                with contextlib.suppress(OSError):
                    conn.sendall(reply)

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.close()
        self.thread.join(timeout=2)


class _IdleProxy:
    """A TCP proxy that silently black-holes a flow once it has been idle for ``idle_timeout_s``.

    Like a NAT or a load balancer that forgot the flow: no FIN, no RST, the data
    simply goes nowhere. It terminates TCP, so it never sees the client's TCP
    keep-alive probes (its own kernel answers them) -- as with proxying load balancers.
    """

    def __init__(self, upstream_port: int, idle_timeout_s: float) -> None:
        self.upstream_port = upstream_port
        self.idle_timeout_s = idle_timeout_s
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.socks: list[socket.socket] = []
        self.dropped = 0
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=2)
            self.socks += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        last = time.monotonic()
        dropped = False
        peers = {client: upstream, upstream: client}
        while not self.stop.is_set():
            try:
                readable, _, _ = select.select([client, upstream], [], [], 0.02)
            except (OSError, ValueError):
                return
            now = time.monotonic()
            if not dropped and now - last > self.idle_timeout_s:
                dropped = True  # the flow's state is gone; nobody is told
                self.dropped += 1
            for sock in readable:
                try:
                    data = sock.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                if not dropped:
                    last = now
                    with contextlib.suppress(OSError):
                        peers[sock].sendall(data)

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
        for sock in self.socks:
            with contextlib.suppress(OSError):
                sock.close()
        self.thread.join(timeout=2)


def _idle_client(port: int, scenario: dict, idle_s: float, reply_timeout_s: float, out: dict) -> None:
    """Connect, talk, idle for ``idle_s`` (heartbeating if asked), then send a request."""
    out.update(scenario)
    out.update(outcome="error", after_s=float("nan"))
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            if scenario["tcp_keepalive"]:
                _set_keepalive(sock, 1, 1, 2)
            reader = sock.makefile("rb")
            sock.sendall(b"hello\n")
            reader.readline()
            heartbeat = scenario["heartbeat_s"]
            idle_until = time.monotonic() + idle_s
            while heartbeat and time.monotonic() < idle_until:
                time.sleep(min(heartbeat, max(0.0, idle_until - time.monotonic())))
                sock.sendall(b"ping\n")
                sock.settimeout(scenario["deadline_s"])
                try:
                    if reader.readline() != b"pong\n":
                        raise TimeoutError
                except TimeoutError:
                    out.update(
                        outcome="detected dead (heartbeat deadline)", after_s=time.monotonic() - started
                    )
                    return
            time.sleep(max(0.0, idle_until - time.monotonic()))
            sock.sendall(b"request\n")
            sock.settimeout(reply_timeout_s)
            try:
                reply = reader.readline()
                out.update(outcome="answered" if reply.startswith(b"echo") else "closed")
            except TimeoutError:
                out.update(outcome=f"hung (gave up after {reply_timeout_s:g} s)")
            out["after_s"] = time.monotonic() - started
    except OSError as exc:
        out.update(outcome=f"error: {type(exc).__name__}", after_s=time.monotonic() - started)


def run_idle_proxy(
    idle_timeout_s: float = 1.0, *, idle_s: float = 1.6, reply_timeout_s: float = 1.5
) -> experiment.Run:
    """Four clients idle through a proxy that silently drops flows idle longer than ``idle_timeout_s``.

    Scenarios (run concurrently, each on its own flow):

    - ``nothing``: no keep-alive, no heartbeat -- the request after the idle hangs.
    - ``tcp keep-alive 1 s``: probes every second -- invisible to a proxy that
      terminates TCP, so the request still hangs.
    - ``heartbeat T/2``: an application ping every ``idle_timeout_s / 2`` keeps the
      flow alive -- the request is answered.
    - ``heartbeat 1.5 T, deadline``: pings too rare to keep the flow, but a pong
      deadline reports the dead flow instead of hanging.

    Returns
    -------
    syslab.experiment.Run
        ``frame``: one row per scenario, indexed by ``scenario``: ``tcp_keepalive``
        (bool), ``heartbeat_s`` and ``deadline_s`` (seconds, 0 for none), ``outcome``
        and ``after_s`` (seconds from the request to its outcome). ``summary``:
        ``flows_dropped`` (flows the proxy black-holed), ``idle_timeout_s`` and
        ``idle_s`` (seconds).

    Parameters
    ----------
    idle_timeout_s : float
        Idle timeout s, seconds.
    idle_s : float
        Idle s, seconds.
    reply_timeout_s : float
        Reply timeout s, seconds.
    """
    idle_timeout_s = validate.float_in_range("idle_timeout_s", idle_timeout_s, 0.2, 10.0)
    idle_s = validate.float_in_range("idle_s", idle_s, 0.0, 60.0, low_inclusive=False)
    reply_timeout_s = validate.float_in_range("reply_timeout_s", reply_timeout_s, 0.1, 30.0)
    if idle_s <= idle_timeout_s:
        raise ValueError(
            f"idle_s must exceed idle_timeout_s to show anything, got {idle_s} <= {idle_timeout_s}"
        )
    scenarios = [
        {"scenario": "nothing", "tcp_keepalive": False, "heartbeat_s": 0.0, "deadline_s": 0.0},
        {"scenario": "tcp keep-alive 1 s", "tcp_keepalive": True, "heartbeat_s": 0.0, "deadline_s": 0.0},
        {"scenario": "heartbeat T/2", "tcp_keepalive": False, "heartbeat_s": idle_timeout_s / 2,
         "deadline_s": idle_timeout_s},
        {"scenario": "heartbeat 1.5 T, deadline", "tcp_keepalive": False, "heartbeat_s": 1.5 * idle_timeout_s,
         "deadline_s": idle_timeout_s / 2},
    ]  # fmt: skip
    for scenario in scenarios[2:]:
        scenario["heartbeat_s"] = min(scenario["heartbeat_s"], idle_s)
    echo = _EchoServer()
    proxy = _IdleProxy(echo.port, idle_timeout_s)
    results = [{} for _ in scenarios]
    try:
        threads = [
            threading.Thread(
                target=_idle_client, args=(proxy.port, s, idle_s, reply_timeout_s, out), daemon=True
            )
            for s, out in zip(scenarios, results, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=idle_s + reply_timeout_s + 5)
        dropped = proxy.dropped
    finally:
        proxy.close()
        echo.close()
    df = pd.DataFrame(
        results, columns=["scenario", "tcp_keepalive", "heartbeat_s", "deadline_s", "outcome", "after_s"]
    )
    return experiment.Run.create(
        df.set_index("scenario"),
        {"flows_dropped": int(dropped), "idle_timeout_s": idle_timeout_s, "idle_s": idle_s},
    )


# --------------------------------------------------------------------------- real: HTTP reuse


class _TinyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive by default
    disable_nagle_algorithm = True  # headers and body are two writes: avoid the Nagle/delayed-ACK stall

    def log_message(self, format, *args) -> None:  # noqa: A002 - keep stderr clean
        return

    def do_GET(self) -> None:  # noqa: N802
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def run_http_reuse(n_requests: int = 300, *, timeout_s: float = 20.0) -> experiment.Run:
    """Time ``n_requests`` GETs to a local HTTP/1.1 server: a new connection each vs one reused.

    The two modes alternate request by request, so drift on a shared machine hits both.

    Parameters
    ----------
    n_requests : int
        Requests simulated.
    timeout_s : float
        Limit for the whole experiment, seconds.

    Returns
    -------
    syslab.experiment.Run
        ``frame``: one row per request: ``mode`` (``new connection``/``keep-alive``),
        ``i`` (request number) and ``latency_us`` (microseconds). ``summary``:
        ``n_requests`` (requests completed per mode before ``timeout_s``) and
        ``new_connection_p50_us`` and ``keep_alive_p50_us`` (median latency after
        warm-up, microseconds, from :func:`summarize_http_reuse`).
    """
    n_requests = validate.int_in_range("n_requests", n_requests, 2, 100_000)
    timeout_s = validate.float_in_range("timeout_s", timeout_s, 0.0, 600.0, low_inclusive=False)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TinyHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    port = server.server_address[1]
    rows = []
    deadline = time.monotonic() + timeout_s
    reused = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        for i in range(n_requests):
            if time.monotonic() > deadline:
                break
            for mode in ("new connection", "keep-alive"):
                start = time.perf_counter()
                if mode == "new connection":
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    conn.request("GET", "/", headers={"Connection": "close"})
                    conn.getresponse().read()
                    conn.close()
                else:
                    reused.request("GET", "/")
                    reused.getresponse().read()
                rows.append({"mode": mode, "i": i, "latency_us": (time.perf_counter() - start) * 1e6})
    finally:
        reused.close()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    frame = pd.DataFrame(rows, columns=["mode", "i", "latency_us"])
    p50 = summarize_http_reuse(frame)["p50_us"] if len(frame) else pd.Series(dtype=float)
    return experiment.Run.create(
        frame,
        {
            "n_requests": int(frame["i"].nunique()),
            "new_connection_p50_us": float(p50.get("new connection", math.nan)),
            "keep_alive_p50_us": float(p50.get("keep-alive", math.nan)),
        },
    )


def summarize_http_reuse(df: pd.DataFrame) -> pd.DataFrame:
    """Median and p90 latency per mode, microseconds (the first 10 requests of each mode are warm-up).

    Parameters
    ----------
    df : pd.DataFrame
        The frame returned by the matching simulate/run function.

    Returns
    -------
    pd.DataFrame
        One row per ``mode`` (index): ``p50_us`` and ``p90_us`` latency, microseconds.
    """
    validate.frame_columns("df", df, ["i", "mode", "latency_us"])
    if df.empty:
        raise ValueError("df holds no requests")
    steady = df[df["i"] >= min(10, int(df["i"].max()) // 2)]
    return (
        steady.groupby("mode")["latency_us"]
        .quantile([0.5, 0.9])
        .unstack()
        .rename(columns={0.5: "p50_us", 0.9: "p90_us"})
    )


# ------------------------------------------------------------ the 502 race on a real socket pair

MAX_RACE_TRIALS = 5_000  # reuse attempts in one real race measurement
MAX_RACE_IDLE_S = 2.0  # the backend's idle timeout in the real race (it is waited out per trial)


def _race_backend(
    listener: socket.socket, idle_s: float, stop: threading.Event, late_s: list[float] | None = None
) -> None:
    # A keep-alive backend: answer each request line, then wait up to idle_s for the next one and
    # close the connection when the wait runs out (as Node's keepAliveTimeout does). late_s
    # collects how much later than idle_s each close happened (a busy machine delays the thread).
    def serve(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(idle_s)
            answered = time.perf_counter()
            while not stop.is_set():
                try:
                    data = conn.recv(64)
                except TimeoutError:
                    if late_s is not None:
                        late_s.append(time.perf_counter() - answered - idle_s)
                    return  # idle too long: close (an RST if a request slipped in meanwhile)
                except OSError:
                    return
                if not data:
                    return
                try:
                    conn.sendall(b"OK\n")
                except OSError:
                    return
                answered = time.perf_counter()

    listener.settimeout(0.1)
    while not stop.is_set():
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        except OSError:
            return
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def _race_trial(port: int, gap_s: float) -> tuple[str, float]:
    # One pooled connection: a request, an idle gap, then reuse as a proxy does: if the close has
    # already arrived (readable with EOF) open a new connection; otherwise send and hope.
    with socket.create_connection(("127.0.0.1", port), timeout=2.0) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(b"GET\n")
        if sock.recv(16) != b"OK\n":
            return "setup_failed", math.nan
        answered = time.perf_counter()
        time.sleep(max(0.0, gap_s - 0.0005))
        while time.perf_counter() - answered < gap_s:
            pass  # spin the last half millisecond: sleep overshoots
        ready, _, _ = select.select([sock], [], [], 0)
        if ready:
            try:
                if sock.recv(16, socket.MSG_PEEK) == b"":
                    return "reconnect", time.perf_counter() - answered
            except OSError:
                return "reconnect", time.perf_counter() - answered
        sent = time.perf_counter() - answered
        try:
            sock.sendall(b"GET\n")
            reply = sock.recv(16)
        except OSError:
            return "502", sent
        return ("ok" if reply == b"OK\n" else "502"), sent


def measure_idle_race(
    backend_idle_timeout_s: float = 0.03,
    *,
    spread_ms: float = 1.0,
    n_trials: int = 240,
    n_parallel: int = 12,
    seed: int | np.random.Generator | None = 0,
    timeout_s: float = 30.0,
) -> experiment.Run:
    """The keep-alive race on a real backend and a real pooling client on 127.0.0.1.

    A backend thread closes each connection after ``backend_idle_timeout_s`` without a
    request. For each trial the client sends a request, waits a gap drawn uniformly within
    ``spread_ms`` of the timeout, and reuses the connection the way a pooling proxy does:
    if the backend's FIN has already arrived it reconnects, otherwise it sends. A request
    sent after the backend gave up but before its FIN arrived gets no answer (a reset):
    the load balancer's 502. The share of such trials times the spread measures the width
    of the race window on this machine.

    Parameters
    ----------
    backend_idle_timeout_s : float
        The backend's keep-alive idle timeout, seconds (0.005 to ``MAX_RACE_IDLE_S``).
    spread_ms : float
        Gaps are uniform in ``timeout +- spread_ms`` (0.05 to 100 ms).
    n_trials : int
        Reuse attempts (1 to ``MAX_RACE_TRIALS``).
    n_parallel : int
        Trials run at once, each on its own connection (1 to 64).
    seed : int, numpy.random.Generator or None
        Source of the gaps.
    timeout_s : float
        Limit for the whole measurement, seconds; the backend stops at the end.

    Returns
    -------
    syslab.experiment.Run
        ``frame``: one row per trial: ``gap_s`` (idle time before the reuse, measured),
        ``planned_gap_s`` (the gap drawn), ``outcome`` (``ok``, ``502`` or ``reconnect``).
        ``summary``: ``n_trials``, ``n_502``, ``window_ms`` (estimated width of the race window:
        ``2 * spread_ms`` times the share of 502s), ``backend_idle_timeout_s``,
        ``client_late_ms`` (median of measured minus planned gap), ``backend_late_ms`` (90th
        percentile of how late the backend's closes came) and ``timer_slack_ms`` (their sum, ms:
        how far this run's timing blurs the borders between the outcomes).
    """
    idle = validate.float_in_range("backend_idle_timeout_s", backend_idle_timeout_s, 0.005, MAX_RACE_IDLE_S)
    spread = validate.float_in_range("spread_ms", spread_ms, 0.05, 100.0) / 1000
    if spread >= idle:
        raise ValueError(f"spread_ms must be below the timeout, got {spread * 1000} ms >= {idle * 1000} ms")
    n = validate.int_in_range("n_trials", n_trials, 1, MAX_RACE_TRIALS)
    workers = validate.int_in_range("n_parallel", n_parallel, 1, 64)
    limit = validate.float_in_range("timeout_s", timeout_s, 0.0, 600.0, low_inclusive=False)
    rng = validate.rng_from_seed(seed)
    gaps = idle + rng.uniform(-spread, spread, n)
    deadline = time.monotonic() + limit
    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0), backlog=256)
    late_s: list[float] = []
    backend = threading.Thread(target=_race_backend, args=(listener, idle, stop, late_s), daemon=True)
    backend.start()
    rows: list[tuple[str, float]] = []
    try:
        from concurrent.futures import ThreadPoolExecutor

        port = listener.getsockname()[1]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for start in range(0, n, workers):
                if time.monotonic() > deadline:
                    break
                rows += list(pool.map(lambda g: _race_trial(port, g), gaps[start : start + workers]))
    finally:
        stop.set()
        listener.close()
        backend.join(timeout=2.0)
    frame = pd.DataFrame(rows, columns=["outcome", "gap_s"])
    frame["planned_gap_s"] = gaps[: len(frame)]  # pool.map keeps the order of the gaps
    frame = frame[frame["outcome"] != "setup_failed"].reset_index(drop=True)
    n_done = len(frame)
    n_502 = int((frame["outcome"] == "502").sum())
    window_ms = 2 * spread * 1000 * n_502 / n_done if n_done else math.nan
    # How late this run's timers fired: the client's sleeps (median) and the backend's closes (90th
    # percentile). On a busy machine (or with threads queueing for the GIL) the borders between the
    # outcomes blur by about their sum.
    client_ms = float(1000 * (frame["gap_s"] - frame["planned_gap_s"]).median()) if n_done else math.nan
    backend_ms = float(1000 * np.percentile(late_s, 90)) if late_s else 0.0
    summary = {
        "n_trials": n_done,
        "n_502": n_502,
        "window_ms": window_ms,
        "backend_idle_timeout_s": idle,
        "client_late_ms": client_ms,
        "backend_late_ms": backend_ms,
        "timer_slack_ms": max(client_ms, 0.0) + max(backend_ms, 0.0),
    }
    return experiment.Run.create(frame, summary)


# --------------------------------------------------------------------------- model: the 502 race


@dataclass(frozen=True)
class IdleRaceConfig:
    """A load balancer reusing pooled connections to a backend with its own idle timeout.

    Attributes
    ----------
    requests_per_s_per_conn : float
        Poisson request rate on one pooled connection, per second.
    backend_idle_timeout_s, lb_idle_timeout_s : float
        Idle timeouts of the backend and of the load balancer, seconds.
    fin_delay_ms : float
        Width of the race window: from the backend's close to the balancer seeing it, ms.
    n_connections : int
        Pooled connections simulated.
    duration_s : float
        Simulated time per connection, seconds.
    """

    requests_per_s_per_conn: float = 0.2  # request rate on one pooled connection (Poisson)
    backend_idle_timeout_s: float = 5.0  # the backend closes a connection idle this long (Node: 5 s)
    lb_idle_timeout_s: float = 60.0  # the load balancer closes one idle this long (ALB default 60 s)
    fin_delay_ms: float = 1.0  # time for the backend's FIN to reach the LB and be processed
    n_connections: int = 200  # pooled connections simulated
    duration_s: float = 3600.0  # simulated time per connection

    def __post_init__(self) -> None:
        validate.positive_float("requests_per_s_per_conn", self.requests_per_s_per_conn)
        validate.positive_float("backend_idle_timeout_s", self.backend_idle_timeout_s)
        validate.positive_float("lb_idle_timeout_s", self.lb_idle_timeout_s)
        validate.non_negative_float("fin_delay_ms", self.fin_delay_ms)
        validate.bounded_int("n_connections", self.n_connections, MAX_IDLE_RACE_CONNECTIONS)
        validate.positive_float("duration_s", self.duration_s)
        expected = self.requests_per_s_per_conn * self.duration_s * self.n_connections
        if expected > MAX_IDLE_RACE_REQUESTS:
            raise ValueError(
                "requests_per_s_per_conn x duration_s x n_connections must be at most "
                f"{MAX_IDLE_RACE_REQUESTS:,} requests, got {expected:,.0f}"
            )


MAX_IDLE_RACE_CONNECTIONS = 100_000  # pooled connections in one 502-race simulation
MAX_IDLE_RACE_REQUESTS = 20_000_000  # expected requests in one 502-race simulation (~300 MB)
MAX_IDLE_RACE_POINTS = 50  # backend timeouts in one sweep
MAX_IDLE_TIMEOUT_S = 86_400.0  # an idle timeout, seconds (a day)


def simulate_idle_race(
    config: IdleRaceConfig = IdleRaceConfig(), seed: int | np.random.Generator | None = 0
) -> pd.DataFrame:
    """Every request the LB sends on a pooled connection, and whether it hits the backend's close.

    A request follows an idle gap since the previous one on the same connection.
    If the LB's own idle timeout is shorter than the backend's, the LB always
    closes first: no race. Otherwise, for a gap ``g``:

    - ``g < backend``: the connection is open -- ``ok``;
    - ``backend <= g < backend + fin_delay``: the backend has closed but the LB
      has not seen the FIN -- the request is written into a closing connection: ``502``;
    - ``g >= backend + fin_delay``: the LB saw the close and opens a new connection -- ``reconnect``.

    Returns
    -------
    pandas.DataFrame
        One row per request: ``conn``, ``gap_s``, ``outcome``.

    Parameters
    ----------
    config : IdleRaceConfig
        The model's parameters.
    seed : object
        Source of randomness (an int seed, a Generator, or None).
    """
    if not isinstance(config, IdleRaceConfig):
        raise TypeError(f"config must be an IdleRaceConfig, got {type(config).__name__}")
    rng = validate.rng_from_seed(seed)
    c = config
    n_per_conn = rng.poisson(c.requests_per_s_per_conn * c.duration_s, size=c.n_connections)
    conn = np.repeat(np.arange(c.n_connections), n_per_conn)
    gap = rng.exponential(1.0 / c.requests_per_s_per_conn, size=conn.size)
    closer = min(c.backend_idle_timeout_s, c.lb_idle_timeout_s)
    codes = (gap >= closer).astype(np.int8)  # 0 ok, 1 reconnect, 2 502
    if c.backend_idle_timeout_s <= c.lb_idle_timeout_s:
        window = (gap >= c.backend_idle_timeout_s) & (gap < c.backend_idle_timeout_s + c.fin_delay_ms / 1000)
        codes[window] = 2
    outcome = pd.Categorical.from_codes(codes, categories=["ok", "reconnect", "502"])
    return pd.DataFrame({"conn": conn, "gap_s": gap, "outcome": outcome})


def theory_idle_race_rate(config: IdleRaceConfig = IdleRaceConfig()) -> float:
    """Share of requests that get a 502: ``e^{-r Tb} (1 - e^{-r d})`` if ``Tb <= Tlb``, else 0.

    That is ``P(Tb <= gap < Tb + d)`` for an exponential gap with rate ``r``.

    Parameters
    ----------
    config : IdleRaceConfig
        The model's parameters.

    Returns
    -------
    float
        Share (0-1) of requests that get a 502.
    """
    if not isinstance(config, IdleRaceConfig):
        raise TypeError(f"config must be an IdleRaceConfig, got {type(config).__name__}")
    c = config
    if c.backend_idle_timeout_s > c.lb_idle_timeout_s:
        return 0.0
    r = c.requests_per_s_per_conn
    return float(np.exp(-r * c.backend_idle_timeout_s) * -np.expm1(-r * c.fin_delay_ms / 1000))


def sweep_idle_race(
    backend_timeouts_s: Sequence[float],
    config: IdleRaceConfig = IdleRaceConfig(),
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """502s per million requests vs the backend's idle timeout (simulation and theory).

    Parameters
    ----------
    backend_timeouts_s : Sequence[float]
        Backend timeouts s, seconds.
    config : IdleRaceConfig
        The model's parameters.
    seed : int
        Source of randomness (an int seed, a Generator, or None).

    Returns
    -------
    pd.DataFrame
        One row per backend timeout: ``backend_idle_timeout_s`` (s), ``requests``,
        ``errors_502``, ``per_million`` and ``theory_per_million`` (502s per million requests).
    """
    from dataclasses import replace

    values = validate.sequence_of_floats(
        "backend_timeouts_s",
        backend_timeouts_s,
        0.0,
        MAX_IDLE_TIMEOUT_S,
        max_length=MAX_IDLE_RACE_POINTS,
        low_inclusive=False,
    )
    validate.instance("config", config, IdleRaceConfig)
    if isinstance(seed, np.random.Generator):
        seed = int(seed.integers(0, 2**31))
    elif seed is None:
        seed = int(np.random.SeedSequence().entropy % 2**31)
    seeds = np.random.SeedSequence(validate.non_negative_int("seed", seed)).spawn(len(values))
    rows = []
    for value, child in zip(values, seeds, strict=True):
        cfg = replace(config, backend_idle_timeout_s=value)
        df = simulate_idle_race(cfg, np.random.default_rng(child))
        rows.append(
            {
                "backend_idle_timeout_s": value,
                "requests": int(len(df)),
                "errors_502": int((df["outcome"] == "502").sum()),
                "per_million": 1e6 * float((df["outcome"] == "502").mean()),
                "theory_per_million": 1e6 * theory_idle_race_rate(cfg),
            }
        )
    return pd.DataFrame(rows)


def plot_idle_race(sweep: pd.DataFrame, lb_idle_timeout_s: float, ax: Axes | None = None) -> Axes:
    """502s per million requests vs backend idle timeout, with the LB's timeout marked.

    Parameters
    ----------
    sweep : pd.DataFrame
        The frame returned by the matching sweep function.
    lb_idle_timeout_s : float
        Lb idle timeout s, seconds.
    ax : Axes | None
        Where to draw; a new figure when omitted.

    Returns
    -------
    Axes
        The axes drawn on: 502s per million requests against the backend idle timeout (s).
    """
    validate.frame_columns("sweep", sweep, ["backend_idle_timeout_s", "per_million", "theory_per_million"])
    lb_idle_timeout_s = validate.positive_float("lb_idle_timeout_s", lb_idle_timeout_s)
    ax = plot.axes_or_new(ax)
    ax.plot(sweep["backend_idle_timeout_s"], sweep["per_million"] + 0.1, "o", label="simulated (+0.1)")
    ax.plot(sweep["backend_idle_timeout_s"], sweep["theory_per_million"] + 0.1, "k--", label="theory (+0.1)")
    ax.axvline(lb_idle_timeout_s, color="grey", lw=1, label="load balancer idle timeout")
    ax.set_xscale("log")
    ax.set_yscale("log")
    return plot.label(ax, "backend keep-alive idle timeout (s)", "502s per million requests", legend=True)
