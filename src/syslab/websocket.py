"""WebSocket sends vs HTTP requests: RFC 6455 framing, silent sends, idempotent POSTs, a delivery model.

- RFC 6455 written out: :func:`accept_key`, :func:`encode_frame`, :func:`decode_frame`,
  :func:`client_handshake`, and a minimal blocking :class:`WebSocketClient`.
- Real experiments on 127.0.0.1 (child process :mod:`syslab.children.ws_peer`, killed on exit):
  :func:`run_silent_send` -- a peer frozen with SIGSTOP, a peer killed, a peer frozen
  then killed, while ``send()`` keeps returning.
- Real HTTP path: :func:`run_idempotent_post` -- a POST with an ``Idempotency-Key``
  to a local ``http.server`` backed by SQLite, whose first response is lost.
- Model: :func:`simulate_delivery` -- "WebSocket only" vs "WebSocket as hint, REST
  as truth" under connection drops, with :func:`theory_delivery_loss`.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import http.server
import json
import os
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from syslab import experiment, plot, validate
from syslab.children._ws_frames import GUID, OPCODES, accept_key, decode_frame, encode_frame
from syslab.processes import ChildProcess

__all__ = [
    "GUID",
    "OPCODES",
    "DeliveryConfig",
    "WebSocketClient",
    "accept_key",
    "client_handshake",
    "decode_frame",
    "encode_frame",
    "plot_delivery",
    "plot_loss_sweep",
    "sweep_delivery_loss",
    "run_idempotent_post",
    "run_silent_send",
    "simulate_delivery",
    "summarize_delivery",
    "summarize_silent_send",
    "theory_delivery_loss",
]


def client_handshake(host: str, port: int, key: str, path: str = "/") -> bytes:
    """The opening GET of RFC 6455 §4.1 (version 13).

    Parameters
    ----------
    host : str
        The server's host name or address for the ``Host`` header (printable ASCII, no spaces).
    port : int
        The server's TCP port, 1-65535.
    key : str
        ``Sec-WebSocket-Key``: base64 of 16 random bytes, fresh per connection.
    path : str
        The request target, starting with ``/``.

    Returns
    -------
    bytes
        The ASCII request (request line and headers, CRLF line ends, blank line at the end) to
        write to the socket before any frame.
    """
    # Header injection and garbage lines are refused here, not written to the socket.
    for name, value in (("host", host), ("key", key), ("path", path)):
        ok = isinstance(value, str) and value.isascii() and value.isprintable() and " " not in value
        if not ok or not value:
            raise ValueError(f"{name} must be non-empty printable ASCII with no spaces, got {value!r}")
    if not path.startswith("/"):
        raise ValueError(f"path must start with '/', got {path!r}")
    port = validate.int_in_range("port", port, 1, 65535)
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode("ascii")


class WebSocketClient:
    """A minimal RFC 6455 client over a TCP socket: handshake, masked sends, frame reads.

    ``send_text`` returns as soon as the kernel has taken the bytes -- exactly
    what every WebSocket library's ``send()`` means, and all it can mean.

    Parameters
    ----------
    port : int
        The server's port on 127.0.0.1.
    timeout_s : float
        Socket timeout for the handshake and reads, seconds.
    """

    def __init__(self, port: int, *, timeout_s: float = 5.0) -> None:
        port = validate.int_in_range("port", port, 1, 65535)
        timeout_s = validate.positive_float("timeout_s", timeout_s)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        self.sock.sendall(client_handshake("127.0.0.1", port, key))
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("the server closed the connection during the handshake")
            response += chunk
        head, self.buffer = response.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101") or accept_key(key).encode() not in head:
            raise ConnectionError(f"bad handshake response: {head[:80]!r}")

    def frame(self, text: str) -> bytes:
        """One masked text frame carrying ``text`` (a client must mask, RFC 6455 section 5.3)."""
        return encode_frame(text.encode(), "text", mask_key=os.urandom(4))

    def send_text(self, text: str) -> None:
        """Send one text message; returns once the kernel has the bytes, not once the peer has them."""
        self.sock.sendall(self.frame(text))

    def recv_frame(self, timeout_s: float) -> dict | None:
        """The next frame, or None if none arrives within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while (parsed := decode_frame(self.buffer)) is None:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return None
            if not chunk:
                return None
            self.buffer += chunk
        frame, used = parsed
        self.buffer = self.buffer[used:]
        return frame

    def close(self) -> None:
        """Close the socket (errors ignored)."""
        with contextlib.suppress(OSError):
            self.sock.close()


# --------------------------------------------------------------------------- real: silent sends


def run_silent_send(
    scenario: str = "frozen",
    *,
    message_bytes: int = 1024,
    max_messages: int = 20_000,
    n_after_death: int = 8,
    timeout_s: float = 20.0,
) -> experiment.Run:
    """What ``send()`` reports when the peer is frozen, killed, or frozen and then killed.

    A child (``python -m syslab.children.ws_peer``) accepts one WebSocket on 127.0.0.1,
    prints every text message it processes and acknowledges it with
    ``{"reply_to": id}`` (the RTM pattern). The driver sends 5 messages while the
    peer runs, then:

    ``frozen``
        SIGSTOP the peer; send ``message_bytes`` messages on a non-blocking
        socket until the kernel buffers are full (a blocking ``send`` would hang
        here); SIGCONT; the peer then processes them late.
    ``frozen_then_killed``
        As ``frozen``, but SIGKILL instead of SIGCONT: every buffered message is lost.
    ``killed``
        SIGKILL the running peer, then send ``n_after_death`` messages 50 ms apart:
        the first "succeeds", a later one fails.

    Parameters
    ----------
    scenario : str
        ``"frozen"``, ``"frozen_then_killed"`` or ``"killed"`` (see above).
    message_bytes : int
        Size of each text message's payload, bytes (16 to 1 MiB).
    max_messages : int
        Most sends while the peer is stopped (1 to 1,000,000); the kernel buffers fill first.
    n_after_death : int
        Sends after the peer was killed, 50 ms apart (1 to 100).
    timeout_s : float
        Limit for the whole experiment, seconds.

    Returns
    -------
    experiment.Run
        ``frame``: one row per send: ``scenario``, ``seq``, ``phase`` (``alive``, ``stopped``,
        ``dead``), ``send_ok`` (``send`` returned without error), ``error`` (exception name or
        ``""``), ``frame_bytes`` (the masked frame's size on the wire, bytes), ``processed``
        (the peer printed it), ``acked`` (a ``reply_to`` came back). ``summary``: the counts
        of :func:`summarize_silent_send`, ``message_bytes``, ``client_sndbuf_bytes`` (the
        client socket's send buffer, bytes) and ``tcp_rmem`` / ``tcp_wmem`` (the kernel's
        min/default/max TCP buffer sizes in bytes, as read from ``/proc``).
    """
    scenario = validate.choice("scenario", scenario, ["frozen", "frozen_then_killed", "killed"])
    message_bytes = validate.int_in_range("message_bytes", message_bytes, 16, 1 << 20)
    max_messages = validate.int_in_range("max_messages", max_messages, 1, 1_000_000)
    n_after_death = validate.int_in_range("n_after_death", n_after_death, 1, 100)
    # The peer's watchdog is this deadline, so it is bounded (a killed kernel leaves nothing for long).
    timeout_s = validate.float_in_range("timeout_s", timeout_s, 0.0, MAX_REAL_TIMEOUT_S, low_inclusive=False)
    rows: list[dict] = []
    processed: set[int] = set()
    acked: set[int] = set()
    args = ["--max-life-s", str(timeout_s)]
    child = ChildProcess("syslab.children.ws_peer", args, timeout_s=timeout_s, stderr=subprocess.DEVNULL)
    client = None
    with child:
        lines: list[str] = []
        reader = threading.Thread(target=_collect, args=(child.process.stdout, lines), daemon=True)
        reader.start()
        try:
            client = WebSocketClient(_wait_ready(lines, 10.0), timeout_s=5.0)
            for seq in range(5):
                client.send_text(_message(seq, message_bytes))
                rows.append(_row(seq, "alive", True, ""))
            _read_acks(client, acked, 5, 2.0)
            seq = 5
            if scenario in ("frozen", "frozen_then_killed"):
                child.send_signal(signal.SIGSTOP)
                time.sleep(0.1)
                client.sock.setblocking(False)
                for _ in range(max_messages):
                    data = client.frame(_message(seq, message_bytes))
                    try:
                        sent = client.sock.send(data)
                    except BlockingIOError:
                        rows.append(_row(seq, "stopped", False, "BlockingIOError"))
                        break
                    if sent < len(data):  # a partial frame: the kernel is full
                        rows.append(_row(seq, "stopped", False, "partial write"))
                        break
                    rows.append(_row(seq, "stopped", True, ""))
                    seq += 1
                client.sock.setblocking(True)
                _read_acks(client, acked, 1, 0.3)  # a frozen peer acknowledges nothing
                if scenario == "frozen":
                    child.send_signal(signal.SIGCONT)
                    expected = sum(r["send_ok"] for r in rows if r["phase"] == "stopped")
                    _read_acks(client, acked, expected, 5.0)
                else:
                    child.send_signal(signal.SIGKILL)
                    child.wait(5.0)
            else:
                child.send_signal(signal.SIGKILL)
                child.wait(5.0)
                for _ in range(n_after_death):
                    try:
                        client.send_text(_message(seq, message_bytes))
                        rows.append(_row(seq, "dead", True, ""))
                    except OSError as exc:
                        rows.append(_row(seq, "dead", False, type(exc).__name__))
                    seq += 1
                    time.sleep(0.05)
            sndbuf = client.sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        finally:
            if client is not None:
                client.close()
            child.kill()
            reader.join(timeout=2)
    for line in lines:
        event = _event(line)
        if event.get("event") == "got":
            processed.add(int(event["seq"]))
    df = pd.DataFrame(rows, columns=["seq", "phase", "send_ok", "error"])
    df.insert(0, "scenario", scenario)
    df["frame_bytes"] = [_frame_bytes(len(_message(seq, message_bytes))) for seq in df["seq"]]
    df["processed"] = df["seq"].isin(processed)
    df["acked"] = df["seq"].isin(acked)
    summary = {
        **summarize_silent_send(df),
        "message_bytes": message_bytes,
        "client_sndbuf_bytes": int(sndbuf),
        "tcp_rmem": _read_proc("/proc/sys/net/ipv4/tcp_rmem"),
        "tcp_wmem": _read_proc("/proc/sys/net/ipv4/tcp_wmem"),
    }
    return experiment.Run.create(df, summary=summary)


def _message(seq: int, message_bytes: int) -> str:
    prefix = f"{seq} "
    return prefix + "x" * max(0, message_bytes - len(prefix))


def _frame_bytes(payload_bytes: int) -> int:
    # A masked client frame (RFC 6455 section 5.2): 2 header bytes, 0/2/8 extended-length bytes, 4 mask bytes.
    extended = 0 if payload_bytes < 126 else 2 if payload_bytes < 65_536 else 8
    return 2 + extended + 4 + payload_bytes


def _row(seq: int, phase: str, ok: bool, error: str) -> dict:
    return {"seq": seq, "phase": phase, "send_ok": ok, "error": error}


def _collect(stream, lines: list[str]) -> None:
    try:
        for raw in iter(stream.readline, b""):
            lines.append(raw.decode(errors="replace").strip())
    except (OSError, ValueError):
        return


def _event(line: str) -> dict:
    # One JSON line of the child protocol; anything else is ignored.
    try:
        event = json.loads(line)
    except ValueError:
        return {}
    return event if isinstance(event, dict) else {}


def _wait_ready(lines: list[str], timeout_s: float) -> int:
    # The parent reads the child's stdout on a thread (the frozen-peer scenario must not block
    # on it), so it scans those lines for the protocol's "ready" event rather than calling expect.
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for line in list(lines):
            event = _event(line)
            if event.get("event") == "ready":
                return int(event["port"])
            if event.get("event") == "error":
                raise RuntimeError(f"the WebSocket peer reported an error: {event.get('message')}")
        time.sleep(0.01)
    raise RuntimeError(f"the child did not report ready within {timeout_s} s")


def _read_acks(client: WebSocketClient, acked: set[int], expected: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    got = 0
    while got < expected and (left := deadline - time.monotonic()) > 0:
        try:
            frame = client.recv_frame(left)
        except OSError:
            return
        if frame is None:
            return
        if frame["opcode"] == "text":
            acked.add(int(json.loads(frame["payload"])["reply_to"]))
            got += 1


def _read_proc(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return "unavailable"


def summarize_silent_send(df: pd.DataFrame) -> dict:
    """Counts for one :func:`run_silent_send` run: sends that returned, were processed, were acked.

    Parameters
    ----------
    df : pd.DataFrame
        The ``frame`` of a :func:`run_silent_send` run.

    Returns
    -------
    dict
        ``scenario``; counts of sends: ``sends_ok`` (returned without error), ``processed``
        (the peer printed them), ``acked``, ``ok_but_never_processed``, ``sent_while_stopped``,
        ``ok_after_death``; ``first_error`` (exception name of the first failed send after
        the peer died, or ``""``) and ``buffered_bytes`` (bytes of the frames sent while the
        peer was stopped, held in the kernel's socket buffers).
    """
    validate.frame_columns(
        "df", df, ["scenario", "send_ok", "phase", "processed", "acked", "error", "frame_bytes"]
    )
    ok = df["send_ok"]
    failed = df[~ok & (df["phase"] == "dead")]
    dead_ok = df[ok & (df["phase"] == "dead")]
    return {
        "scenario": str(df["scenario"].iloc[0]) if len(df) else "",
        "sends_ok": int(ok.sum()),
        "processed": int(df["processed"].sum()),
        "acked": int(df["acked"].sum()),
        "ok_but_never_processed": int((ok & ~df["processed"]).sum()),
        "sent_while_stopped": int((ok & (df["phase"] == "stopped")).sum()),
        "ok_after_death": int(len(dead_ok)),
        "first_error": str(failed["error"].iloc[0]) if len(failed) else "",
        "buffered_bytes": int(df.loc[ok & (df["phase"] == "stopped"), "frame_bytes"].sum()),
    }


# --------------------------------------------------------------------------- real: idempotent POST


class _MessageHandler(http.server.BaseHTTPRequestHandler):
    """POST /messages: insert a row unless the Idempotency-Key was seen; answer with the row id."""

    server_version = "syslab-messages/1"

    def log_message(self, format, *args) -> None:  # noqa: A002 - keep the notebook's stderr clean
        return

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length).decode()
        key = self.headers.get("Idempotency-Key")
        with self.server.lock, sqlite3.connect(self.server.db_path) as db:
            if key is not None:
                db.execute("INSERT INTO messages(idempotency_key, body) VALUES (?, ?) ON CONFLICT DO NOTHING",
                           (key, body))  # fmt: skip
                row_id = db.execute("SELECT id FROM messages WHERE idempotency_key = ?", (key,)).fetchone()[0]
            else:
                row_id = db.execute("INSERT INTO messages(body) VALUES (?)", (body,)).lastrowid
        self.server.commits += 1
        if self.server.responses_to_drop > 0:
            # The write is committed; the response never reaches the client (a reset, a proxy timeout).
            self.server.responses_to_drop -= 1
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        reply = json.dumps({"ok": True, "id": row_id}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)


def run_idempotent_post(
    use_key: bool = True, *, responses_lost: int = 1, max_attempts: int = 4, timeout_s: float = 10.0
) -> experiment.Run:
    """POST one chat message to a local HTTP server whose first ``responses_lost`` responses are lost.

    The server (``http.server`` on 127.0.0.1, a thread of this process) commits the
    row in SQLite and then drops the connection instead of answering. The client
    retries the same request (same ``Idempotency-Key`` if ``use_key``) up to
    ``max_attempts`` times, each with a per-request timeout.

    Parameters
    ----------
    use_key : bool
        Send the same ``Idempotency-Key`` header on every attempt (``False``: no key).
    responses_lost : int
        How many of the server's first responses are dropped after the commit (0 to 10).
    max_attempts : int
        Most attempts, the first included (1 to 20).
    timeout_s : float
        Per-request timeout, seconds; the attempts are bounded by ``max_attempts``.

    Returns
    -------
    experiment.Run
        ``frame``: one row per attempt: ``attempt``, ``outcome`` (``"200"`` or the exception
        name), ``message_id`` (the row id the server answered, ``None`` if no answer).
        ``summary``: ``use_key``, ``attempts``, ``rows`` (messages in the table afterwards)
        and ``commits`` (the server's committed inserts); the SQLite version is in
        ``environment``.
    """
    if not isinstance(use_key, bool):
        raise TypeError(f"use_key must be a bool, got {use_key!r}")
    responses_lost = validate.int_in_range("responses_lost", responses_lost, 0, 10)
    max_attempts = validate.int_in_range("max_attempts", max_attempts, 1, 20)
    timeout_s = validate.float_in_range("timeout_s", timeout_s, 0.0, MAX_REAL_TIMEOUT_S, low_inclusive=False)
    rows = []
    with tempfile.TemporaryDirectory(prefix="syslab-idem-") as tmp:
        db_path = Path(tmp) / "messages.db"
        with sqlite3.connect(db_path) as db:
            db.execute(
                "CREATE TABLE messages(id INTEGER PRIMARY KEY, idempotency_key TEXT UNIQUE, body TEXT)"
            )
        db.close()
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _MessageHandler)
        server.daemon_threads = True
        server.db_path, server.lock, server.commits = str(db_path), threading.Lock(), 0
        server.responses_to_drop = responses_lost
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        try:
            body = json.dumps({"channel": "C1", "text": "ship it"})
            headers = {"Content-Type": "application/json"}
            if use_key:
                headers["Idempotency-Key"] = "9f1c2d3e-client-generated-once"
            for attempt in range(1, max_attempts + 1):
                conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=timeout_s)
                try:
                    conn.request("POST", "/messages", body=body, headers=headers)
                    response = conn.getresponse()
                    payload = json.loads(response.read())
                    outcome = {
                        "attempt": attempt,
                        "outcome": str(response.status),
                        "message_id": payload["id"],
                    }
                    rows.append(outcome)
                    break
                except (OSError, http.client.HTTPException) as exc:
                    rows.append({"attempt": attempt, "outcome": type(exc).__name__, "message_id": None})
                finally:
                    conn.close()
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
        with contextlib.closing(sqlite3.connect(db_path)) as db:
            n_rows = db.execute("SELECT count(*) FROM messages").fetchone()[0]
    df = pd.DataFrame(rows, columns=["attempt", "outcome", "message_id"])
    summary = {"use_key": use_key, "attempts": len(df), "rows": int(n_rows), "commits": int(server.commits)}
    return experiment.Run.create(df, summary=summary)


# --------------------------------------------------------------------------- model: delivery


MAX_MESSAGES = 20_000_000  # messages in one delivery simulation (a few float columns each)
MAX_REAL_TIMEOUT_S = 300.0  # one real WebSocket experiment, set-up included (and its peer's watchdog)


@dataclass(frozen=True)
class DeliveryConfig:
    """Messages between two users whose connections drop now and then.

    Attributes
    ----------
    message_rate_per_s, duration_s, drops_per_hour, ping_interval_s, pong_timeout_s, reconnect_s,
    base_latency_s, http_timeout_s, resync_s, outage_share, outage_mean_s :
        See the comment beside each field (units in the names).

    Each client's WebSocket alternates: up for an exponential time (mean
    ``3600 / drops_per_hour`` s), then *dead but undetected* until the next
    heartbeat misses (``U(0, ping_interval_s) + pong_timeout_s``), then
    *reconnecting* for ``reconnect_s``.
    """

    message_rate_per_s: float = 1.0  # messages from sender to receiver per second
    duration_s: float = 86_400.0  # simulated time, seconds
    drops_per_hour: float = 2.0  # silent connection deaths per client per hour (roaming, NAT, LB restarts)
    ping_interval_s: float = 30.0  # heartbeat interval
    pong_timeout_s: float = 10.0  # a missing pong is detected after this long
    reconnect_s: float = 2.0  # time to reconnect once a drop is detected
    base_latency_s: float = 0.05  # one-way latency of a healthy path
    http_timeout_s: float = (
        10.0  # per-request timeout of the REST send (and of the WebSocket ack) before a retry
    )
    resync_s: float = 0.2  # time to fetch history after a reconnect
    outage_share: float = 0.0  # share of drops that are network outages (nothing works), not one lost flow
    outage_mean_s: float = 60.0  # mean length of such an outage (exponential), seconds

    def __post_init__(self) -> None:
        validate.positive_float("message_rate_per_s", self.message_rate_per_s)
        validate.positive_float("duration_s", self.duration_s)
        validate.positive_float("drops_per_hour", self.drops_per_hour)
        validate.positive_float("ping_interval_s", self.ping_interval_s)
        validate.non_negative_float("pong_timeout_s", self.pong_timeout_s)
        validate.non_negative_float("reconnect_s", self.reconnect_s)
        validate.non_negative_float("base_latency_s", self.base_latency_s)
        validate.positive_float("http_timeout_s", self.http_timeout_s)
        validate.non_negative_float("resync_s", self.resync_s)
        validate.float_in_range("outage_share", self.outage_share, 0.0, 1.0)
        validate.float_in_range("outage_mean_s", self.outage_mean_s, 0.0, 86_400.0)
        if self.message_rate_per_s * self.duration_s > MAX_MESSAGES:
            raise ValueError(
                f"message_rate_per_s x duration_s must be at most MAX_MESSAGES = {MAX_MESSAGES:,}, "
                f"got {self.message_rate_per_s * self.duration_s:,.0f}"
            )
        if self.duration_s * self.drops_per_hour / 3600 > MAX_MESSAGES:
            raise ValueError("duration_s x drops_per_hour asks for too many connection cycles")


def _connection_timeline(c: DeliveryConfig, rng: np.random.Generator) -> np.ndarray:
    """Rows of (drop_s, detected_s, reconnected_s, network_back_s) covering ``duration_s``.

    An alternating renewal process. A drop is a network outage with probability
    ``outage_share`` (the network is down for an exponential ``outage_mean_s``, and no
    reconnect can complete before it is back); otherwise only the flow died and the
    network is fine at once (``network_back_s = drop_s``).
    """
    mean_up_s = 3600.0 / c.drops_per_hour
    cycle_s = mean_up_s + c.ping_interval_s / 2 + c.pong_timeout_s + c.reconnect_s
    cycle_s += c.outage_share * c.outage_mean_s
    n = int(c.duration_s / cycle_s * 1.5) + 20  # enough cycles to cover the horizon with margin
    up = rng.exponential(mean_up_s, size=n)
    dead = rng.uniform(0.0, c.ping_interval_s, size=n) + c.pong_timeout_s
    outage = np.where(
        rng.random(n) < c.outage_share, rng.exponential(max(c.outage_mean_s, 1e-9), size=n), 0.0
    )
    down = np.maximum(dead, outage) + c.reconnect_s  # from the drop until the connection is back
    starts = np.cumsum(up + down) - down  # drop times
    timeline = np.column_stack([starts, starts + dead, starts + down, starts + outage])
    if timeline[-1, 0] < c.duration_s:  # pragma: no cover - guarded by the 1.5x margin
        raise RuntimeError("connection timeline too short; increase the margin")
    return timeline


def _state_at(times: np.ndarray, timeline: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each time: state (0 up, 1 dead-undetected, 2 reconnecting) and when the connection is back."""
    idx = np.searchsorted(timeline[:, 0], times, side="right") - 1
    state = np.zeros(times.size, dtype=np.int8)
    back = times.copy()
    inside = idx >= 0
    row = timeline[np.clip(idx, 0, None)]
    dead = inside & (times < row[:, 1])
    reconnecting = inside & ~dead & (times < row[:, 2])
    state[dead], state[reconnecting] = 1, 2
    back[dead | reconnecting] = row[dead | reconnecting, 2]
    return state, back


def _network_back_at(times: np.ndarray, timeline: np.ndarray) -> np.ndarray:
    """For each time: when the network is usable (the time itself unless inside an outage)."""
    idx = np.searchsorted(timeline[:, 0], times, side="right") - 1
    row = timeline[np.clip(idx, 0, None)]
    return np.where((idx >= 0) & (times < row[:, 3]), row[:, 3], times)


def simulate_delivery(
    config: DeliveryConfig = DeliveryConfig(), seed: int | np.random.Generator | None = 0
) -> pd.DataFrame:
    """Every message from sender to receiver, under three designs, on the same connection timelines.

    *WebSocket only* (fire and forget): the sender writes to its WebSocket. A message
    written while the sender's connection is dead-undetected is lost (``send``
    returned); while reconnecting it is queued and sent on reconnect. The server pushes
    to the receiver's WebSocket; a push while the receiver is dead or reconnecting is lost.

    *WebSocket + acks*: the same socket, made reliable end to end: the server
    acknowledges each message (RTM's ``reply_to``); a message without an ack after
    ``http_timeout_s`` is sent again once the sender's WebSocket is back; the receiver
    fetches history (``resync_s``) after every reconnect. Nothing is lost.

    *Hint + REST*: the sender POSTs with an idempotency key. If its path is dead the
    request times out after ``http_timeout_s`` and is retried on a new connection, which
    works at once after a lost flow but, in a network outage, only once the network is
    back (retries every ``http_timeout_s``). The receiver side is as with acks: a push
    hint, and a history fetch after a reconnect. Nothing is lost.

    Parameters
    ----------
    config : DeliveryConfig
        Message rate, connection drops, heartbeats, timeouts and outages.
    seed : int, numpy.random.Generator or None
        Source of the timelines and messages (the same for all three designs).

    Returns
    -------
    pandas.DataFrame
        One row per message: ``sent_s``, ``sender_state``, ``receiver_state`` (at push
        time, fire-and-forget design; 0 up, 1 dead, 2 reconnecting), ``ws_delivered``
        (bool), ``ws_latency_s`` (NaN if lost), ``ack_latency_s`` and ``rest_latency_s``.
    """
    if not isinstance(config, DeliveryConfig):
        raise TypeError(f"config must be a DeliveryConfig, got {type(config).__name__}")
    rng = validate.rng_from_seed(seed)
    c = config
    sender = _connection_timeline(c, rng)
    receiver = _connection_timeline(c, rng)
    n = rng.poisson(c.message_rate_per_s * c.duration_s)
    sent = np.sort(rng.uniform(0.0, c.duration_s, size=n))
    s_state, s_back = _state_at(sent, sender)

    def to_receiver(at_server: np.ndarray) -> np.ndarray:
        # Pushed at once if the receiver is up, else fetched by the resync after its reconnect.
        state, back = _state_at(at_server, receiver)
        return np.where(state == 0, at_server + c.base_latency_s, back + c.resync_s)

    # WebSocket only
    ws_at_server = np.where(s_state == 2, s_back, sent) + c.base_latency_s
    r_state, _ = _state_at(ws_at_server, receiver)
    ws_ok = (s_state != 1) & (r_state == 0)
    ws_latency = np.where(ws_ok, ws_at_server + c.base_latency_s - sent, np.nan)

    # WebSocket + acks: a lost send is noticed at the ack timeout and resent on the new socket.
    resend = np.maximum(sent + c.http_timeout_s, s_back)
    ack_at_server = np.where(s_state == 0, sent, np.where(s_state == 2, s_back, resend)) + c.base_latency_s
    ack_latency = to_receiver(ack_at_server) - sent

    # Hint + REST: a send on a dead path times out and is retried on a fresh connection, every
    # http_timeout_s, until the network is usable.
    first_retry = sent + c.http_timeout_s
    usable = _network_back_at(first_retry, sender)
    retries = np.ceil(np.maximum(0.0, usable - first_retry) / c.http_timeout_s)
    rest_send = np.where(s_state == 1, first_retry + retries * c.http_timeout_s, sent)
    # A request sent while the network is down (not only the flow) also waits for it.
    down_now = _network_back_at(sent, sender) > sent
    rest_send = np.where(
        down_now & (s_state != 1),
        sent + np.ceil((_network_back_at(sent, sender) - sent) / c.http_timeout_s) * c.http_timeout_s,
        rest_send,
    )
    rest_latency = to_receiver(rest_send + c.base_latency_s) - sent
    return pd.DataFrame(
        {
            "sent_s": sent,
            "sender_state": s_state,
            "receiver_state": r_state,
            "ws_delivered": ws_ok,
            "ws_latency_s": ws_latency,
            "ack_latency_s": ack_latency,
            "rest_latency_s": rest_latency,
        }
    )


def theory_delivery_loss(config: DeliveryConfig = DeliveryConfig()) -> float:
    """Long-run share of messages the WebSocket-only design loses.

    Each connection is an alternating renewal process with mean cycle
    ``T = 3600/drops + E[dead] + reconnect``. The sender loses a message while
    dead (share ``E[dead]/T``); the receiver loses a push while dead or
    reconnecting (share ``(E[dead] + reconnect)/T``). Independent connections:
    ``loss = 1 - (1 - p_s)(1 - p_r)``.

    Parameters
    ----------
    config : DeliveryConfig
        The model's parameters.

    Returns
    -------
    float
        Share of messages lost, 0-1 (multiply by 100 for percent).
    """
    if not isinstance(config, DeliveryConfig):
        raise TypeError(f"config must be a DeliveryConfig, got {type(config).__name__}")
    c = config
    dead = c.ping_interval_s / 2 + c.pong_timeout_s
    cycle = 3600.0 / c.drops_per_hour + dead + c.reconnect_s
    p_sender = dead / cycle
    p_receiver = (dead + c.reconnect_s) / cycle
    return 1 - (1 - p_sender) * (1 - p_receiver)


def summarize_delivery(df: pd.DataFrame) -> pd.DataFrame:
    """Loss and latency percentiles of the three designs, one row each.

    Parameters
    ----------
    df : pandas.DataFrame
        The frame of :func:`simulate_delivery` (at least one message).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``design``: ``messages``, ``lost``, ``loss_share``, ``p50_s``,
        ``p99_s``, ``p999_s`` and ``max_s`` (latency of the delivered messages).
    """
    validate.frame_columns("df", df, ["ws_delivered", "ws_latency_s", "ack_latency_s", "rest_latency_s"])
    if df.empty:
        raise ValueError("df holds no messages")
    rows = []
    everything = pd.Series(True, index=df.index)
    for design, ok, latency in [
        ("WebSocket only", df["ws_delivered"], df["ws_latency_s"]),
        ("WebSocket + acks", everything, df["ack_latency_s"]),
        ("hint + REST", everything, df["rest_latency_s"]),
    ]:
        delivered = latency[ok]
        rows.append(
            {
                "design": design,
                "messages": int(len(df)),
                "lost": int((~ok).sum()),
                "loss_share": float((~ok).mean()),
                "p50_s": float(delivered.quantile(0.5)),
                "p99_s": float(delivered.quantile(0.99)),
                "p999_s": float(delivered.quantile(0.999)),
                "max_s": float(delivered.max()),
            }
        )
    return pd.DataFrame(rows).set_index("design")


def plot_delivery(df: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Share of messages delivered later than x (or never), per design; lost messages form a floor.

    Parameters
    ----------
    df : pandas.DataFrame
        The frame of :func:`simulate_delivery` (at least one message).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    validate.frame_columns("df", df, ["ws_latency_s", "ack_latency_s", "rest_latency_s"])
    if df.empty:
        raise ValueError("df holds no messages")
    ax = plot.axes_or_new(ax)
    n = len(df)
    x_max = float(np.nanmax(df["rest_latency_s"].to_numpy())) * 2
    styles = {
        "WebSocket only": {"ls": "--", "lw": 2.5},
        "WebSocket + acks": {"ls": "-.", "lw": 2},
        "hint + REST": {"ls": "-", "lw": 1.5},
    }
    designs = [("WebSocket only", df["ws_latency_s"]), ("WebSocket + acks", df["ack_latency_s"]),
               ("hint + REST", df["rest_latency_s"])]  # fmt: skip
    for label, latency in designs:
        values = np.sort(latency.fillna(np.inf).to_numpy())  # a lost message never arrives
        share_later = 1.0 - np.arange(1, n + 1) / n
        finite = np.isfinite(values)
        lines = ax.step(values[finite], np.maximum(share_later[finite], 1e-6), where="post", label=label,
                        **styles[label])  # fmt: skip
        lost_share = float((~finite).mean())
        if lost_share > 0:
            color = lines[0].get_color()
            ax.hlines(lost_share, values[finite][-1], x_max, colors=color, linestyles=":", lw=2,
                      label=f"{label}: never delivered")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    return plot.label(ax, "delivery latency (s)", "share of messages later (or never)", legend=True)


def sweep_delivery_loss(
    drops_per_hour_values,
    config: DeliveryConfig = DeliveryConfig(),
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Loss share of both designs and the closed form, one row per drop rate (one run each).

    Parameters
    ----------
    drops_per_hour_values : iterable of float
        Silent connection drops per client per hour to simulate, each > 0.
    config : DeliveryConfig
        The model's other parameters (its ``drops_per_hour`` is replaced by each value).
    seed : int, numpy.random.Generator or None
        Source of randomness (an int seed, a Generator, or None).

    Returns
    -------
    pd.DataFrame
        One row per drop rate: ``drops_per_hour``, ``ws_loss_share`` (simulated) and
        ``theory_loss_share`` (closed form) of the WebSocket-only design, ``rest_loss_share``
        (hint + REST, 0) as shares 0-1, and ``rest_p99_s`` (its p99 delivery latency, seconds).
    """
    if not isinstance(config, DeliveryConfig):
        raise TypeError(f"config must be a DeliveryConfig, got {type(config).__name__}")
    values = [validate.positive_float("drops_per_hour_values", v) for v in drops_per_hour_values]
    if isinstance(seed, np.random.Generator):
        seed = int(seed.integers(0, 2**31))
    elif seed is None:
        seed = int(np.random.SeedSequence().entropy % 2**31)
    seeds = np.random.SeedSequence(validate.non_negative_int("seed", seed)).spawn(len(values))
    rows = []
    for value, child_seed in zip(values, seeds, strict=True):
        cfg = replace(config, drops_per_hour=value)
        df = simulate_delivery(cfg, np.random.default_rng(child_seed))
        rows.append(
            {
                "drops_per_hour": value,
                "ws_loss_share": float((~df["ws_delivered"]).mean()),
                "theory_loss_share": theory_delivery_loss(cfg),
                "rest_loss_share": 0.0,
                "rest_p99_s": float(df["rest_latency_s"].quantile(0.99)),
            }
        )
    return pd.DataFrame(rows)


def plot_loss_sweep(sweep: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Share of messages lost vs connection drops per hour: simulation, closed form, and REST at zero.

    Parameters
    ----------
    sweep : pd.DataFrame
        The frame of :func:`sweep_delivery_loss`.
    ax : matplotlib Axes, optional
        Where to draw; a new figure when omitted.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on: messages lost (%) against drops per client per hour (log scale).
    """
    validate.frame_columns(
        "sweep", sweep, ["drops_per_hour", "ws_loss_share", "theory_loss_share", "rest_loss_share"]
    )
    ax = plot.axes_or_new(ax)
    ax.plot(sweep["drops_per_hour"], 100 * sweep["ws_loss_share"], "o", label="WebSocket only (simulated)")
    ax.plot(sweep["drops_per_hour"], 100 * sweep["theory_loss_share"], "k--", label="WebSocket only (theory)")
    ax.plot(sweep["drops_per_hour"], 100 * sweep["rest_loss_share"], "s-", label="hint + REST (simulated)")
    ax.set_xscale("log")
    return plot.label(ax, "silent connection drops per client per hour", "messages lost (%)", legend=True)
