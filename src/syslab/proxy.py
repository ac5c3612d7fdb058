"""Layer-4 and layer-7 load balancing: real asyncio proxies on 127.0.0.1, and a scale-out simulation.

- **PROXY protocol v2** -- :func:`build_proxy_v2_header` and :func:`parse_proxy_v2_header`
  write and read the binary header an L4 balancer prepends so the backend learns
  the client's address (HAProxy's PROXY protocol specification, version 2).
- **real proxies** -- :func:`run_balancing_experiment` starts three small HTTP/1.1
  backends, a proxy in ``l4`` mode (pick a backend per *connection*, relay bytes,
  optionally prepend a PROXY v2 header) or ``l7`` mode (parse every request, pick
  a backend per *request* by path, host, header or sticky cookie, add
  ``X-Forwarded-For``), and a client on one keep-alive connection. Every socket is
  on 127.0.0.1; everything is closed on exit; a hard timeout bounds the run.
- **simulation** -- :func:`simulate_scale_out`: long-lived multiplexed connections
  (gRPC over HTTP/2, WebSockets) pinned by an L4 balancer stay on the old backends
  after a scale-out; per-request (L7) balancing spreads them at once.

Units are in the names: ``_s`` seconds, ``_ms`` milliseconds, ``_per_s`` per second.
"""

from __future__ import annotations

import asyncio
import heapq
import ipaddress
import itertools
import math
import struct
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from syslab import experiment, hashing, queueing, validate
from syslab.plot import axes_or_new, label

# Bounds from what a 2-core machine simulates within a chapter's 30 s.
MAX_CONNECTIONS = 100_000  # long-lived connections in one scale-out simulation
MAX_BACKENDS = 1_000  # backends behind one balancer
MAX_DURATION_S = 86_400.0  # one simulated day, second by second
MAX_REQUESTS = 2_000_000  # requests in one per-request balancing simulation
MAX_REAL_REQUESTS = 20_000  # real HTTP requests through the proxy in one experiment (~1 ms each)
MAX_REAL_TIMEOUT_S = 300.0  # one real proxy experiment, set-up included

__all__ = [
    "BALANCING_POLICIES",
    "simulate_request_balancing",
    "summarize_request_balancing",
    "PROXY_V2_SIGNATURE",
    "ProxyConfig",
    "TYPICAL_HEADERS",
    "build_proxy_v2_header",
    "measure_proxy_costs",
    "parse_proxy_v2_header",
    "plot_scale_out",
    "run_balancing_experiment",
    "simulate_scale_out",
    "summarize_scale_out",
]

HOST = "127.0.0.1"
# What a browser-like client sends besides Host: about 400 bytes of headers the L7 proxy must parse.
TYPICAL_HEADERS = {
    "user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Safari/537.36",
    "accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "accept-language": "en-GB,en;q=0.9",
    "accept-encoding": "gzip, deflate, br",
    "cache-control": "no-cache",
    "x-request-id": "9f1c2a7e-5b3d-4e8a-9c61-2d7f0e4b8a13",
    "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
}
# PROXY protocol v2: a 12-byte signature that cannot start any text protocol.
PROXY_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
_MAX_HEAD_BYTES = 16_384


# ------------------------------------------------------------ PROXY protocol v2


def build_proxy_v2_header(src: tuple[str, int], dst: tuple[str, int]) -> bytes:
    """The PROXY protocol v2 header for a TCP connection from ``src`` to ``dst``.

    Layout: the 12-byte signature; one byte version/command (``0x21``: version 2,
    PROXY); one byte family/protocol (``0x11`` TCP over IPv4, ``0x21`` TCP over IPv6);
    a 2-byte big-endian length of what follows; then source address, destination
    address, source port, destination port. For IPv4 that is 12 + 1 + 1 + 2 + 12 =
    28 bytes; for IPv6, 52.

    Parameters
    ----------
    src : tuple[str, int]
        The client's (IP address, TCP port 0-65535): the connection's source.
    dst : tuple[str, int]
        The balancer's (IP address, TCP port 0-65535), same IP version as ``src``.

    Returns
    -------
    bytes
        The header to send before the relayed bytes: 28 bytes for IPv4, 52 for IPv6.
    """
    for name, end in (("src", src), ("dst", dst)):
        if not isinstance(end, (tuple, list)) or len(end) != 2 or not isinstance(end[0], str):
            raise TypeError(f"{name} must be an (ip address str, port) pair, got {end!r}")
        try:
            ipaddress.ip_address(end[0])
        except ValueError:
            raise ValueError(f"{name} must start with an IPv4 or IPv6 address, got {end[0]!r}") from None
    src_ip, dst_ip = ipaddress.ip_address(src[0]), ipaddress.ip_address(dst[0])
    if src_ip.version != dst_ip.version:
        raise ValueError(f"src and dst must be the same IP version, got {src[0]!r} and {dst[0]!r}")
    src_port = validate.int_in_range("src port", src[1], 0, 65535)
    dst_port = validate.int_in_range("dst port", dst[1], 0, 65535)
    family = 0x11 if src_ip.version == 4 else 0x21
    body = src_ip.packed + dst_ip.packed + struct.pack("!HH", src_port, dst_port)
    return PROXY_V2_SIGNATURE + bytes([0x21, family]) + struct.pack("!H", len(body)) + body


def parse_proxy_v2_header(data: bytes) -> tuple[dict[str, object], int]:
    """Parse a PROXY v2 header at the start of ``data``.

    Returns
    -------
    (fields, consumed)
        ``fields``: ``command`` (``"PROXY"`` or ``"LOCAL"``), ``src_ip``, ``src_port``,
        ``dst_ip``, ``dst_port`` (addresses only for TCP/UDP over IPv4/IPv6);
        ``consumed``: header length in bytes, so the caller can skip it.

    Raises
    ------
    ValueError
        If the signature, version or length is wrong, or ``data`` is too short.

    Parameters
    ----------
    data : bytes
        The first bytes a backend read from a connection (header plus anything after it).
    """
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    if len(data) < 16 or data[:12] != PROXY_V2_SIGNATURE:
        raise ValueError("data does not start with a PROXY v2 signature")
    version, command = data[12] >> 4, data[12] & 0x0F
    if version != 2 or command not in (0, 1):
        raise ValueError(f"unsupported PROXY version/command byte 0x{data[12]:02x}")
    family, length = data[13], struct.unpack("!H", data[14:16])[0]
    if len(data) < 16 + length:
        raise ValueError(f"data holds {len(data) - 16} address bytes, the header says {length}")
    fields: dict[str, object] = {"command": "PROXY" if command == 1 else "LOCAL"}
    address_len = {0x11: 4, 0x12: 4, 0x21: 16, 0x22: 16}.get(family)
    if command == 1 and address_len is not None:
        if length < 2 * address_len + 4:
            raise ValueError(f"address block of {length} bytes is too short for family 0x{family:02x}")
        block = data[16 : 16 + 2 * address_len + 4]
        fields["src_ip"] = str(ipaddress.ip_address(block[:address_len]))
        fields["dst_ip"] = str(ipaddress.ip_address(block[address_len : 2 * address_len]))
        fields["src_port"], fields["dst_port"] = struct.unpack("!HH", block[2 * address_len :])
    return fields, 16 + length


# ------------------------------------------------------------------- HTTP helpers


async def _read_message(reader: asyncio.StreamReader) -> tuple[bytes, dict[str, str], bytes] | None:
    """One HTTP/1.1 message with a Content-Length body: (start line, headers, body), None at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    except asyncio.LimitOverrunError as error:
        raise ValueError("HTTP head too large") from error
    lines = head[:-4].split(b"\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return lines[0], headers, body


def _render(start: bytes, headers: dict[str, str], body: bytes) -> bytes:
    out = [start]
    for name, value in headers.items():
        out.append(f"{name}: {value}".encode("latin-1"))
    return b"\r\n".join(out) + b"\r\n\r\n" + body


def _cookie(headers: dict[str, str], name: str) -> str | None:
    for part in headers.get("cookie", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


# ----------------------------------------------------------------- the servers


async def _start_backend(index: int, expect_proxy_v2: bool, work_s: float) -> asyncio.base_events.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        proxied = ""
        try:
            if expect_proxy_v2:
                first = await reader.readexactly(16)
                rest = await reader.readexactly(struct.unpack("!H", first[14:16])[0])
                fields, _ = parse_proxy_v2_header(first + rest)
                proxied = f"{fields.get('src_ip')}:{fields.get('src_port')}"
            while True:
                message = await _read_message(reader)
                if message is None:
                    break
                start, headers, _ = message
                if work_s:
                    await asyncio.sleep(work_s)
                path = start.split(b" ")[1].decode("latin-1")
                body = (
                    f"backend={index} path={path} peer={peer[0]}:{peer[1]} "
                    f"xff={headers.get('x-forwarded-for', '')} proxy_v2={proxied}"
                ).encode()
                writer.write(_render(b"HTTP/1.1 200 OK", {"content-length": str(len(body))}, body))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, HOST, 0)


@dataclass(frozen=True)
class ProxyConfig:
    """How the proxy balances.

    Attributes
    ----------
    mode : str
        ``"l4"``: one backend per client connection, bytes relayed unchanged;
        ``"l7"``: parse each request and pick a backend for it.
    proxy_protocol : bool
        L4 only: prepend a PROXY v2 header on each backend connection.
    sticky_cookie : str or None
        L7 only: name of a cookie that pins a client to a backend (set on first response).
    path_routes : tuple of (prefix, backend)
        L7 only: requests whose path starts with ``prefix`` go to ``backend``.
    host_routes : tuple of (host, backend)
        L7 only: requests for ``Host: host`` go to ``backend``.
    header_route : str or None
        L7 only: a header whose integer value names the backend (canary testing).
    """

    mode: str = "l7"
    proxy_protocol: bool = False
    sticky_cookie: str | None = None
    path_routes: tuple[tuple[str, int], ...] = ()
    host_routes: tuple[tuple[str, int], ...] = ()
    header_route: str | None = None

    def __post_init__(self) -> None:
        validate.choice("mode", self.mode, ("l4", "l7"))
        if not isinstance(self.proxy_protocol, bool):
            raise TypeError(f"proxy_protocol must be a bool, got {self.proxy_protocol!r}")
        for name in ("sticky_cookie", "header_route"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise TypeError(f"{name} must be a non-empty str or None, got {value!r}")
        for name in ("path_routes", "host_routes"):
            routes = getattr(self, name)
            ok = isinstance(routes, (tuple, list)) and all(
                isinstance(r, (tuple, list)) and len(r) == 2 and isinstance(r[0], str) and _is_int(r[1])
                for r in routes
            )
            if not ok:
                raise TypeError(f"{name} must be a tuple of (str, backend index) pairs, got {routes!r}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


async def _start_proxy(config: ProxyConfig, backends: Sequence[int]) -> asyncio.base_events.Server:
    counter = itertools.count()

    def next_backend() -> int:
        return next(counter) % len(backends)

    async def relay(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except ConnectionError:
            pass
        finally:
            if dst.can_write_eof():
                try:
                    dst.write_eof()
                except OSError:
                    pass

    async def handle_l4(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        choice = next_backend()
        b_reader, b_writer = await asyncio.open_connection(HOST, backends[choice])
        try:
            if config.proxy_protocol:
                b_writer.write(
                    build_proxy_v2_header(
                        writer.get_extra_info("peername"), writer.get_extra_info("sockname")
                    )
                )
            await asyncio.gather(relay(reader, b_writer), relay(b_reader, writer))
        finally:
            b_writer.close()
            writer.close()

    async def handle_l7(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client_ip = writer.get_extra_info("peername")[0]
        upstream: dict[int, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}
        try:
            while True:
                message = await _read_message(reader)
                if message is None:
                    break
                start, headers, body = message
                path = start.split(b" ")[1].decode("latin-1")
                choice, set_cookie = _route_l7(config, headers, path, next_backend, len(backends))
                previous = headers.get("x-forwarded-for")
                headers["x-forwarded-for"] = f"{previous}, {client_ip}" if previous else client_ip
                if choice not in upstream:
                    upstream[choice] = await asyncio.open_connection(HOST, backends[choice])
                b_reader, b_writer = upstream[choice]
                b_writer.write(_render(start, headers, body))
                await b_writer.drain()
                response = await _read_message(b_reader)
                if response is None:
                    break
                r_start, r_headers, r_body = response
                if set_cookie:
                    r_headers["set-cookie"] = f"{config.sticky_cookie}={choice}; Path=/"
                writer.write(_render(r_start, r_headers, r_body))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            for _, b_writer in upstream.values():
                b_writer.close()
            writer.close()

    return await asyncio.start_server(handle_l4 if config.mode == "l4" else handle_l7, HOST, 0)


def _route_l7(
    config: ProxyConfig, headers: dict[str, str], path: str, next_backend, n: int
) -> tuple[int, bool]:
    """Pick a backend for one request; the flag says whether to set the sticky cookie."""
    if config.header_route and headers.get(config.header_route.lower(), "").isdigit():
        return int(headers[config.header_route.lower()]) % n, False
    host = headers.get("host", "").split(":")[0]
    for name, backend in config.host_routes:
        if host == name:
            return backend % n, False
    for prefix, backend in config.path_routes:
        if path.startswith(prefix):
            return backend % n, False
    if config.sticky_cookie:
        pinned = _cookie(headers, config.sticky_cookie)
        if pinned is not None and pinned.isdigit() and int(pinned) < n:
            return int(pinned), False
        return next_backend(), True
    return next_backend(), False


# ------------------------------------------------------------------ the client


async def _client(
    port: int, requests: Sequence[tuple[str, dict[str, str]]], use_cookies: bool
) -> list[dict[str, object]]:
    reader, writer = await asyncio.open_connection(HOST, port)
    jar: dict[str, str] = {}
    rows = []
    try:
        for i, (path, extra) in enumerate(requests):
            headers = {"host": extra.pop("host", "localhost"), "content-length": "0", **extra}
            if use_cookies and jar:
                headers["cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
            started = time.perf_counter()
            writer.write(_render(f"GET {path} HTTP/1.1".encode(), headers, b""))
            await writer.drain()
            response = await _read_message(reader)
            elapsed = time.perf_counter() - started
            if response is None:
                break
            _, r_headers, body = response
            if "set-cookie" in r_headers:
                key, _, value = r_headers["set-cookie"].split(";")[0].partition("=")
                jar[key] = value
            fields = dict(part.split("=", 1) for part in body.decode().split(" "))
            rows.append(
                {
                    "request": i,
                    "path": path,
                    "backend": int(fields["backend"]),
                    "latency_ms": elapsed * 1000,
                    "backend_peer": fields["peer"],
                    "x_forwarded_for": fields["xff"],
                    "proxy_v2_source": fields["proxy_v2"],
                }
            )
    finally:
        writer.close()
    return rows


# --------------------------------------------------------------- the experiment


class _LoopThread:
    """An event loop running in its own daemon thread (so it works inside Jupyter too)."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coroutine, timeout_s: float):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout_s)

    def close(self) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            # getaddrinfo ran in the loop's default executor: join its worker threads now.
            await asyncio.get_running_loop().shutdown_default_executor()

        try:
            self.run(cancel_all(), 5)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
            if not self.thread.is_alive():
                self.loop.close()


def run_balancing_experiment(
    config: ProxyConfig | None,
    requests: Sequence[str | tuple[str, dict[str, str]]] | int = 300,
    *,
    backends: int = 3,
    work_ms: float = 0.0,
    timeout_s: float = 30.0,
) -> experiment.Run:
    """Send requests over one keep-alive connection through a proxy (or directly) to local backends.

    Parameters
    ----------
    config : ProxyConfig or None
        The proxy; ``None`` talks to backend 0 directly (the baseline for latency).
    requests : int or sequence
        A count of ``GET /item/<i>`` requests (with :data:`TYPICAL_HEADERS`), or a list of
        paths or ``(path, headers)``.
    backends : int
        Number of local backends (default 3).
    work_ms : float
        Time each backend spends per request (0: answer at once).
    timeout_s : float
        Hard limit for the whole experiment.

    Returns
    -------
    experiment.Run
        ``frame``: one row per request: ``request``, ``path``, ``backend``, ``latency_ms``,
        ``backend_peer`` (the address the backend saw), ``x_forwarded_for`` and
        ``proxy_v2_source`` (client address recovered from the PROXY header).
        ``summary``: ``n_requests``, ``backends_used`` (distinct backends that answered),
        ``p50_latency_ms`` and ``p99_latency_ms`` (client-side, milliseconds) and
        ``proxy_cpu_ms_per_request`` (CPU time of the proxy's thread per request, milliseconds;
        0 without a proxy).
    """
    if config is not None and not isinstance(config, ProxyConfig):
        raise TypeError(f"config must be a ProxyConfig or None, got {type(config).__name__}")
    if isinstance(requests, int) and not isinstance(requests, bool):
        count = validate.bounded_int("requests", requests, MAX_REAL_REQUESTS)
        plan = [(f"/item/{i}", dict(TYPICAL_HEADERS)) for i in range(count)]
    else:
        if isinstance(requests, (str, bytes)) or not isinstance(requests, Sequence):
            raise TypeError(f"requests must be a count or a sequence of paths, got {requests!r}")
        if len(requests) > MAX_REAL_REQUESTS:
            raise ValueError(f"requests must hold at most {MAX_REAL_REQUESTS:,}, got {len(requests):,}")
        plan = [(r, {}) if isinstance(r, str) else (r[0], dict(r[1])) for r in requests]
        if not plan:
            raise ValueError("requests must not be empty")
    n_backends = validate.int_in_range("backends", backends, 1, 64)
    work_s = validate.float_in_range("work_ms", work_ms, 0.0, 1_000.0) / 1000
    limit = validate.float_in_range("timeout_s", timeout_s, 0.0, MAX_REAL_TIMEOUT_S, low_inclusive=False)
    with_v2 = bool(config and config.mode == "l4" and config.proxy_protocol)
    servers_loop = _LoopThread("syslab-backends")
    proxy_loop = _LoopThread("syslab-proxy") if config is not None else None
    client_loop = _LoopThread("syslab-client")
    started: list[tuple[_LoopThread, asyncio.base_events.Server]] = []
    try:
        ports = []
        for i in range(n_backends):
            server = servers_loop.run(_start_backend(i, with_v2, work_s), limit)
            started.append((servers_loop, server))
            ports.append(server.sockets[0].getsockname()[1])
        entry = ports[0]
        cpu_before = 0.0
        if proxy_loop is not None:
            proxy = proxy_loop.run(_start_proxy(config, ports), limit)
            started.append((proxy_loop, proxy))
            entry = proxy.sockets[0].getsockname()[1]
            cpu_before = proxy_loop.run(_thread_cpu_s(), limit)
        rows = client_loop.run(_client(entry, plan, use_cookies=True), limit)
        cpu_ms = 0.0
        if proxy_loop is not None:
            cpu_ms = (proxy_loop.run(_thread_cpu_s(), limit) - cpu_before) * 1000
    finally:
        for loop, server in started:
            try:
                loop.run(_close_server(server), 5)
            except Exception:  # noqa: BLE001 - closing must go on for the others
                pass
        for loop in (client_loop, proxy_loop, servers_loop):
            if loop is not None:
                loop.close()
    df = pd.DataFrame(rows)
    summary = {
        "n_requests": len(df),
        "backends_used": int(df["backend"].nunique()),
        "p50_latency_ms": float(df["latency_ms"].median()),
        "p99_latency_ms": float(df["latency_ms"].quantile(0.99)),
        "proxy_cpu_ms_per_request": cpu_ms / max(1, len(df)),
    }
    return experiment.Run.create(df, summary=summary)


def measure_proxy_costs(
    configs: dict[str, ProxyConfig | None],
    *,
    requests: int = 1000,
    repeats: int = 3,
    backends: int = 3,
    timeout_s: float = 60.0,
) -> experiment.Run:
    """Latency and proxy CPU per request for several proxy set-ups, repeated and interleaved.

    Each repeat runs every configuration once (interleaved, so a noisy moment on the
    machine hits all of them alike).

    Parameters
    ----------
    configs : dict[str, ProxyConfig | None]
        The set-ups to compare, by display name (``None``: the client talks to a backend directly).
    requests : int
        Requests per run of one set-up, on one keep-alive connection.
    repeats : int
        Timed repetitions of every set-up.
    backends : int
        Local backend servers behind each proxy.
    timeout_s : float
        Limit for each run of one set-up, seconds.

    Returns
    -------
    experiment.Run
        ``frame``: one row per (mode, repeat): ``mode``, ``repeat``, ``p50_us``, ``p99_us``
        (client-side latency, microseconds) and ``proxy_cpu_us`` (CPU time of the proxy's
        thread per request, microseconds). ``summary``: ``n_requests``, ``n_repeats`` and,
        per set-up name, the median over repeats of each: ``p50_us[<name>]``,
        ``p99_us[<name>]`` and ``proxy_cpu_us[<name>]``.
    """
    if not isinstance(configs, dict) or not configs:
        raise ValueError("configs must be a non-empty dict of name -> ProxyConfig or None")
    n = validate.positive_int("requests", requests)
    reps = validate.positive_int("repeats", repeats)
    rows = []
    for repeat in range(reps):
        for name, config in configs.items():
            run = run_balancing_experiment(config, n, backends=backends, timeout_s=timeout_s)
            rows.append(
                {
                    "mode": name,
                    "repeat": repeat,
                    "p50_us": float(run.frame["latency_ms"].median() * 1000),
                    "p99_us": float(run.frame["latency_ms"].quantile(0.99) * 1000),
                    "proxy_cpu_us": float(run.summary["proxy_cpu_ms_per_request"] * 1000),
                }
            )
    frame = pd.DataFrame(rows)
    medians = frame.groupby("mode", sort=False)[["p50_us", "p99_us", "proxy_cpu_us"]].median()
    summary: dict[str, object] = {"n_requests": n, "n_repeats": reps}
    for name, row in medians.iterrows():
        for column, value in row.items():
            summary[f"{column}[{name}]"] = float(value)
    return experiment.Run.create(frame, summary=summary)


async def _thread_cpu_s() -> float:
    return time.thread_time()


async def _close_server(server: asyncio.base_events.Server) -> None:
    server.close()
    if hasattr(server, "close_clients"):  # Python 3.13+
        server.close_clients()
    await asyncio.wait_for(server.wait_closed(), 2)


# -------------------------------------------------------------------- simulation


def simulate_scale_out(
    mode: str,
    *,
    connections: int = 60,
    mean_rps_per_connection: float = 50.0,
    backends_before: int = 3,
    backends_after: int = 6,
    scale_out_s: float = 60.0,
    duration_s: float = 300.0,
    max_connection_age_s: float | None = None,
    service_time_s: float = 0.01,
    workers: int = 16,
    l4_placement: str = "flow_hash",
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Per-backend load when long-lived connections meet a scale-out.

    ``connections`` clients each hold one multiplexed connection (gRPC over HTTP/2,
    a WebSocket) and send requests at their own rate (lognormal around
    ``mean_rps_per_connection``: a few chatty clients, many quiet ones). At
    ``scale_out_s`` the backend pool grows from ``backends_before`` to ``backends_after``.

    - ``l4``: a connection's backend is chosen when it (re)connects and it stays there.
      ``l4_placement="flow_hash"`` hashes the flow (as an AWS NLB or kube-proxy does: a
      new source port is a new, independent draw); ``"least_connections"`` picks the
      backend with the fewest connections. With ``max_connection_age_s`` (gRPC's
      ``MAX_CONNECTION_AGE``) each connection reconnects when it reaches that age (ages
      start staggered), so the pool rebalances over one age.
    - ``l7``: every request is balanced on its own by round robin, so each backend
      gets an equal *number* of requests every second (by construction; whether that is
      equal *work* is what :func:`simulate_request_balancing` asks).

    Each backend is an M/M/c queue with ``workers`` servers and mean service time
    ``service_time_s``; its mean queueing delay comes from
    :func:`syslab.queueing.mmc_mean_queue_delay_s`.

    Returns
    -------
    pandas.DataFrame
        One row per (second, backend) that exists: ``t_s``, ``backend``, ``rps``,
        ``utilisation``, ``mean_wait_ms`` (``inf`` when overloaded) and ``connections``.

    Parameters
    ----------
    mode : str
        Mode.
    connections : int
        Connections.
    mean_rps_per_connection : float
        Mean rps per connection.
    backends_before : int
        Backends before.
    backends_after : int
        Backends after.
    scale_out_s : float
        Scale out s, seconds.
    duration_s : float
        Duration s, seconds.
    max_connection_age_s : float | None
        Max connection age s, seconds.
    service_time_s : float
        Service time s, seconds.
    workers : int
        Concurrent requests per server.
    l4_placement : str
        L4 placement.
    seed : int | np.random.Generator | None
        Source of randomness (an int seed, a Generator, or None).
    """
    validate.choice("mode", mode, ("l4", "l7"))
    placement = validate.choice("l4_placement", l4_placement, ("flow_hash", "least_connections"))
    n_conn = validate.int_in_range("connections", connections, 1, MAX_CONNECTIONS)
    mean_rate = validate.float_in_range(
        "mean_rps_per_connection", mean_rps_per_connection, 0.0, 1e6, low_inclusive=False
    )
    before = validate.int_in_range("backends_before", backends_before, 1, MAX_BACKENDS)
    after = validate.int_in_range("backends_after", backends_after, 1, MAX_BACKENDS)
    horizon_s = validate.float_in_range("duration_s", duration_s, 0.0, MAX_DURATION_S, low_inclusive=False)
    switch = validate.float_in_range("scale_out_s", scale_out_s, 0.0, horizon_s)
    horizon = int(math.ceil(horizon_s))
    age = (
        None
        if max_connection_age_s is None
        else validate.positive_float("max_connection_age_s", max_connection_age_s)
    )
    service = validate.float_in_range("service_time_s", service_time_s, 0.0, 60.0, low_inclusive=False)
    c = validate.int_in_range("workers", workers, 1, 10_000)
    rng = validate.rng_from_seed(seed)
    salt = int(rng.integers(0, 2**63))

    def place(i: int, generation: int, active: int) -> int:
        if placement == "least_connections":
            return int(np.argmin(counts[:active]))
        key = np.array([i * 1_000_003 + generation], dtype=np.uint64)
        return int(hashing.mix64(key, salt=salt)[0] % np.uint64(active))

    # Lognormal with sigma 1, scaled so the mean is mean_rate.
    rates = rng.lognormal(mean=0.0, sigma=1.0, size=n_conn)
    rates *= mean_rate / rates.mean()
    assigned = np.zeros(n_conn, dtype=np.int64)
    counts = np.zeros(after, dtype=np.int64)
    generation = np.zeros(n_conn, dtype=np.int64)
    for i in range(n_conn):
        b = place(i, 0, before)
        assigned[i], counts[b] = b, counts[b] + 1
    # Staggered ages: the connections were opened at different times in the past.
    next_reconnect = rng.uniform(0, age, n_conn) if age else np.full(n_conn, np.inf)
    rows = []
    for t in range(horizon):
        active = after if t >= switch else before
        if age:
            due = np.flatnonzero(next_reconnect <= t)
            for i in due:
                counts[assigned[i]] -= 1
                generation[i] += 1
                b = place(int(i), int(generation[i]), active)
                assigned[i], counts[b] = b, counts[b] + 1
                next_reconnect[i] += age
        arrivals = rng.poisson(rates)
        if mode == "l4":
            per_backend = np.bincount(assigned, weights=arrivals, minlength=after)[:active]
        else:
            per_backend = np.full(active, arrivals.sum() / active)
        for b in range(active):
            lam = float(per_backend[b])
            rows.append(
                {
                    "t_s": float(t),
                    "backend": b,
                    "rps": lam,
                    "utilisation": lam * service / c,
                    "mean_wait_ms": queueing.mmc_mean_queue_delay_s(lam, service, c) * 1000,
                    "connections": int(counts[b]) if mode == "l4" else n_conn,
                }
            )
    return pd.DataFrame(rows)


BALANCING_POLICIES = ("round_robin", "random", "least_request", "p2c")


def simulate_request_balancing(
    policy: str,
    *,
    n_backends: int = 8,
    workers: int = 4,
    utilisation: float = 0.8,
    mean_service_s: float = 0.01,
    service_sigma: float = 1.5,
    n_requests: int = 100_000,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Per-request balancing when requests differ in cost: round robin against least-request.

    Requests arrive as a Poisson process at ``utilisation`` of the pool's capacity; each
    costs a lognormal service time (mean ``mean_service_s``, log-sd ``service_sigma``: most
    cheap, a few a hundred times dearer). Each backend serves its own first-come-first-
    served queue with ``workers`` workers. The balancer picks a backend per request:

    - ``round_robin``: the next one in turn (equal counts, blind to cost);
    - ``random``: uniformly at random;
    - ``least_request``: the one with the fewest requests in flight (full knowledge);
    - ``p2c``: two at random, the one with fewer in flight (Envoy's default
      ``LEAST_REQUEST``; the power of two choices).

    Parameters
    ----------
    policy : str
        One of :data:`BALANCING_POLICIES`.
    n_backends : int
        Backends, 2 to ``MAX_BACKENDS``.
    workers : int
        Concurrent requests per backend, 1 to 256.
    utilisation : float
        Offered load as a share of total capacity, in (0, 0.99].
    mean_service_s : float
        Mean cost of a request, seconds.
    service_sigma : float
        Log-standard deviation of the cost (0 = all equal), 0 to 3.
    n_requests : int
        Requests simulated, 1 to ``MAX_REQUESTS``.
    seed : int, numpy.random.Generator or None
        Source of arrivals, costs and random choices (the same seed gives every policy
        the same requests).

    Returns
    -------
    pandas.DataFrame
        One row per request: ``arrival_s``, ``service_s``, ``backend``, ``latency_s``
        (wait plus service).
    """
    validate.choice("policy", policy, BALANCING_POLICIES)
    n_b = validate.int_in_range("n_backends", n_backends, 2, MAX_BACKENDS)
    c = validate.int_in_range("workers", workers, 1, 256)
    rho = validate.float_in_range("utilisation", utilisation, 0.0, 0.99, low_inclusive=False)
    mean = validate.float_in_range("mean_service_s", mean_service_s, 1e-6, 60.0)
    sigma = validate.float_in_range("service_sigma", service_sigma, 0.0, 3.0)
    n = validate.int_in_range("n_requests", n_requests, 1, MAX_REQUESTS)
    rng = validate.rng_from_seed(seed)
    arrivals = queueing.poisson_arrival_times_s(n, rho * n_b * c / mean, rng)
    costs = rng.lognormal(-0.5 * sigma**2, sigma, n) * mean
    picks = rng.integers(0, n_b, size=(n, 2))
    free_at = [[0.0] * c for _ in range(n_b)]  # per backend: heap of worker free times
    in_flight: list[list[float]] = [[] for _ in range(n_b)]  # per backend: heap of departures
    backend = np.empty(n, dtype=np.int64)
    latency = np.empty(n)
    for i in range(n):
        now = arrivals[i]
        if policy == "round_robin":
            b = i % n_b
        elif policy == "random":
            b = int(picks[i, 0])
        else:
            for heap in in_flight:
                while heap and heap[0] <= now:
                    heapq.heappop(heap)
            if policy == "least_request":
                b = min(range(n_b), key=lambda k: len(in_flight[k]))
            else:
                x, y = int(picks[i, 0]), int(picks[i, 1])
                b = x if len(in_flight[x]) <= len(in_flight[y]) else y
        start = max(now, free_at[b][0])
        done = start + costs[i]
        heapq.heapreplace(free_at[b], done)
        heapq.heappush(in_flight[b], done)
        backend[i], latency[i] = b, done - now
    return pd.DataFrame({"arrival_s": arrivals, "service_s": costs, "backend": backend, "latency_s": latency})


def summarize_request_balancing(runs: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Latency percentiles and the spread of work across backends, one row per policy.

    Parameters
    ----------
    runs : dict of str to pandas.DataFrame
        Policy name to the frame of :func:`simulate_request_balancing`.

    Returns
    -------
    pandas.DataFrame
        ``policy``, ``p50_ms``, ``p99_ms``, ``mean_ms`` and ``work_spread`` (busiest
        backend's total service time over the mean backend's).
    """
    if not isinstance(runs, dict) or not runs:
        raise ValueError("runs must be a non-empty dict of policy name to frame")
    rows = []
    for name, frame in runs.items():
        validate.frame_columns(f"runs[{name!r}]", frame, ["service_s", "backend", "latency_s"])
        if frame.empty:
            raise ValueError(f"runs[{name!r}] holds no requests")
        work = frame.groupby("backend")["service_s"].sum()
        rows.append(
            {
                "policy": name,
                "p50_ms": float(frame["latency_s"].quantile(0.5) * 1000),
                "p99_ms": float(frame["latency_s"].quantile(0.99) * 1000),
                "mean_ms": float(frame["latency_s"].mean() * 1000),
                "work_spread": float(work.max() / work.mean()),
            }
        )
    return pd.DataFrame(rows)


def summarize_scale_out(run: pd.DataFrame, scale_out_s: float) -> pd.Series:
    """After the scale-out: share of load on the new backends, busiest utilisation, idle backends.

    Parameters
    ----------
    run : pd.DataFrame
        The frame returned by the matching simulate/run function.
    scale_out_s : float
        When the new backends joined, seconds from the start; only ``t_s >= scale_out_s`` counts.

    Returns
    -------
    pd.Series
        ``new_backend_share`` and ``fair_share`` (0-1: measured and ideal share of requests on
        the new backends), ``max_utilisation`` and ``min_utilisation`` (0-1, busiest and idlest
        backend's mean) and ``idle_backends`` (count with 0 requests per second).
    """
    validate.frame_columns("run", run, ["t_s", "backend", "rps", "utilisation"])
    scale_out_s = validate.non_negative_float("scale_out_s", scale_out_s)
    if run.empty or not (run["t_s"] >= scale_out_s).any():
        raise ValueError(f"run has no rows at or after scale_out_s={scale_out_s:g}")
    after = run[run["t_s"] >= scale_out_s]
    per_backend = after.groupby("backend")["rps"].mean()
    n_new = int(per_backend.index.max() + 1 - run.loc[run["t_s"] < scale_out_s, "backend"].nunique())
    new = per_backend.iloc[-n_new:] if n_new > 0 else per_backend.iloc[:0]
    return pd.Series(
        {
            "new_backend_share": float(new.sum() / per_backend.sum()) if per_backend.sum() else 0.0,
            "fair_share": float(n_new / len(per_backend)) if len(per_backend) else 0.0,
            "max_utilisation": float(after.groupby("backend")["utilisation"].mean().max()),
            "min_utilisation": float(after.groupby("backend")["utilisation"].mean().min()),
            "idle_backends": int((per_backend == 0).sum()),
        }
    )


def plot_scale_out(run: pd.DataFrame, ax: Axes | None = None, *, scale_out_s: float | None = None) -> Axes:
    """Requests per second on each backend against time (10 s averages).

    Parameters
    ----------
    run : pd.DataFrame
        The frame returned by the matching simulate/run function.
    ax : Axes | None
        Where to draw; a new figure when omitted.
    scale_out_s : float | None
        When the new backends joined, seconds: drawn as a dotted vertical line (omitted: none).

    Returns
    -------
    Axes
        The axes drawn on: one line per backend (requests per second against time in seconds).
    """
    validate.frame_columns("run", run, ["t_s", "backend", "rps"])
    if scale_out_s is not None:
        scale_out_s = validate.non_negative_float("scale_out_s", scale_out_s)
    ax = axes_or_new(ax)
    for backend, group in run.groupby("backend"):
        smooth = group.set_index("t_s")["rps"].rolling(10, min_periods=1).mean()
        ax.plot(smooth.index, smooth.values, label=f"backend {backend}")
    if scale_out_s is not None:
        ax.axvline(scale_out_s, color="0.5", ls=":")
    label(ax, "time (s)", "requests per second")
    # Beside the axes, not loc="best": that scans every point of every line on each draw (most of
    # an explorer update with 12 backends), and no corner is free of lines here.
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    return ax
