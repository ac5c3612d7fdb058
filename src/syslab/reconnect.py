"""A real reconnect storm on 127.0.0.1: asyncio clients against a rate-limited server that restarts.

The server accepts TCP connections on 127.0.0.1 and admits them through a token
bucket: an admitted client gets ``OK`` and keeps its connection, a refused one
gets ``BUSY`` and is closed. After every client is connected, the server
"restarts": it closes every connection and stops listening for a moment, then
listens again on the same port. The clients notice the disconnect and reconnect
with a :class:`syslab.backoff.RetryPolicy`. The experiment records every attempt.

Everything runs in one background thread with its own event loop (so it also
works inside a Jupyter kernel, whose loop is already running), under a hard
timeout, and closes every socket before it returns.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from syslab import environment, experiment, validate
from syslab.backoff import RetryPolicy, retry_delays_s
from syslab.plot import axes_or_new, label

__all__ = ["StormConfig", "plot_storm_attempts", "run_reconnect_storm", "summarize_storm"]

HOST = "127.0.0.1"
MAX_CLIENTS = 2_000  # sockets on both sides of 127.0.0.1 within the default fd limits
MAX_DURATION_S = 120.0  # the longest real storm a chapter runs


@dataclass(frozen=True)
class StormConfig:
    """Size and timing of the real storm (scaled down from a fleet to fit a laptop).

    Attributes
    ----------
    clients : int
        asyncio clients, 1 to ``MAX_CLIENTS`` (each holds one socket; the server another).
    accept_rate_per_s : float
        Connections the server admits per second.
    burst : int
        Token-bucket size.
    restart_gap_s : float
        The server is not listening for this long, seconds.
    observe_s : float
        Longest time to watch after the restart, seconds (stops early when all are back).
    timeout_s : float
        Hard limit on the whole experiment, seconds, set-up included.
    """

    clients: int = 300  # asyncio clients (each holds one socket; the server holds another)
    accept_rate_per_s: float = 400.0  # connections the server admits per second
    burst: int = 20  # token-bucket size
    restart_gap_s: float = 0.3  # the server is not listening for this long
    observe_s: float = 4.0  # longest time to watch after the restart (stops early when all are back)
    timeout_s: float = 20.0  # hard limit on the whole experiment

    def __post_init__(self) -> None:
        validate.int_in_range("clients", self.clients, 1, MAX_CLIENTS)
        validate.float_in_range("accept_rate_per_s", self.accept_rate_per_s, 0.0, 1e6, low_inclusive=False)
        validate.int_in_range("burst", self.burst, 1, MAX_CLIENTS)
        validate.float_in_range("restart_gap_s", self.restart_gap_s, 0.0, MAX_DURATION_S)
        validate.float_in_range("observe_s", self.observe_s, 0.0, MAX_DURATION_S, low_inclusive=False)
        validate.float_in_range("timeout_s", self.timeout_s, 0.0, MAX_DURATION_S, low_inclusive=False)
        if self.observe_s + self.restart_gap_s >= self.timeout_s:
            raise ValueError(
                f"timeout_s ({self.timeout_s}) must exceed observe_s + restart_gap_s "
                f"({self.observe_s + self.restart_gap_s}): it covers the whole experiment"
            )


class _Bucket:
    def __init__(self, rate_per_s: float, burst: int) -> None:
        self.rate = rate_per_s
        self.burst = float(burst)
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


async def _storm(config: StormConfig, policy: RetryPolicy, rng: np.random.Generator) -> list[dict]:
    bucket = _Bucket(config.accept_rate_per_s, config.burst)
    server_writers: set[asyncio.StreamWriter] = set()
    events: list[dict] = []
    back: list[int] = []
    t0 = time.monotonic()
    restarted = asyncio.Event()
    stop = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Before the restart the fleet connects freely; the storm is what happens after it.
        if restarted.is_set() and not bucket.take():
            writer.write(b"BUSY\n")
            writer.close()
            return
        server_writers.add(writer)
        writer.write(b"OK\n")
        try:
            await reader.read()  # until the client or the restart closes it
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            server_writers.discard(writer)
            writer.close()

    server = await asyncio.start_server(handle, HOST, 0, backlog=4096)
    port = server.sockets[0].getsockname()[1]

    async def attempt() -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 1.0)
        except (OSError, asyncio.TimeoutError):
            return None
        try:
            line = await asyncio.wait_for(reader.readline(), 1.0)
        except (OSError, asyncio.TimeoutError):
            line = b""
        if line == b"OK\n":
            return reader, writer
        writer.close()
        return None

    async def client_task(client: int) -> None:
        connection = None
        # Initial connection, before the restart: retry quickly until admitted.
        for _ in range(1000):
            connection = await attempt()
            if connection is not None or stop.is_set():
                break
            await asyncio.sleep(float(rng.uniform(0.005, 0.05)))
        if connection is None:
            return
        reader, writer = connection
        try:
            # Block until the restart drops the connection (EOF or reset).
            await reader.read()
        except OSError:
            pass
        finally:
            writer.close()
        if stop.is_set():
            return
        disconnected = time.monotonic() - t0
        await asyncio.sleep(float(rng.uniform(0, policy.initial_delay_s)))
        failures, previous = 0, policy.base_s
        while not stop.is_set():
            when = time.monotonic() - t0
            connection = await attempt()
            events.append(
                {"client": client, "t_s": when, "ok": connection is not None, "disconnected_s": disconnected}
            )
            if connection is not None:
                connection[1].close()
                back.append(client)
                return
            failures += 1
            sleep_s = float(retry_delays_s(policy, np.array([failures]), np.array([previous]), rng)[0])
            previous = sleep_s
            await asyncio.sleep(sleep_s)

    tasks = [asyncio.create_task(client_task(i)) for i in range(config.clients)]
    try:
        # Wait (bounded) until the whole fleet is connected before restarting the server.
        deadline = time.monotonic() + config.timeout_s / 2
        while len(server_writers) < config.clients and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        restart_at = time.monotonic() - t0
        server.close()
        for writer in list(server_writers):
            writer.transport.abort()
        await server.wait_closed()
        restarted.set()
        await asyncio.sleep(config.restart_gap_s)
        bucket.tokens, bucket.stamp = float(config.burst), time.monotonic()
        server = await asyncio.start_server(handle, HOST, port, backlog=4096, reuse_address=True)
        # Watch until every client is back or observe_s has passed.
        until = time.monotonic() + config.observe_s
        while len(back) < config.clients and time.monotonic() < until:
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        server.close()
        for writer in list(server_writers):
            writer.transport.abort()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()
    for event in events:
        event["t_s"] -= restart_at
        event["disconnected_s"] -= restart_at
    return events


def run_reconnect_storm(
    policy: RetryPolicy, config: StormConfig = StormConfig(), *, seed: int | np.random.Generator | None = 0
) -> experiment.Run:
    """Run the real storm once and return one row per reconnect attempt.

    Parameters
    ----------
    policy : RetryPolicy
        How the clients back off (use seconds-scale ``base_s``/``cap_s`` of tens to
        hundreds of milliseconds: the experiment lasts a few seconds).
    config : StormConfig
    seed : int, numpy.random.Generator or None
        Source of the clients' jitter.

    Returns
    -------
    syslab.experiment.Run
        ``frame``: one row per reconnect attempt: ``client``, ``t_s`` (seconds after the
        restart began), ``ok`` (admitted) and ``disconnected_s``. ``summary``: ``clients``
        (after capping to the file-descriptor limit read at run time) and ``policy``.
    """
    if not isinstance(policy, RetryPolicy):
        raise TypeError(f"policy must be a RetryPolicy, got {type(policy).__name__}")
    if not isinstance(config, StormConfig):
        raise TypeError(f"config must be a StormConfig, got {type(config).__name__}")
    rng = validate.rng_from_seed(seed)
    soft, _ = environment.file_descriptor_limits()
    clients = config.clients if soft < 0 else min(config.clients, max(1, (soft - 64) // 2))
    config = StormConfig(
        clients,
        config.accept_rate_per_s,
        config.burst,
        config.restart_gap_s,
        config.observe_s,
        config.timeout_s,
    )
    result: dict[str, object] = {}

    def runner() -> None:
        try:
            result["events"] = asyncio.run(asyncio.wait_for(_storm(config, policy, rng), config.timeout_s))
        except BaseException as error:  # reported to the caller below
            result["error"] = error

    thread = threading.Thread(target=runner, name="syslab-reconnect-storm", daemon=True)
    thread.start()
    thread.join(config.timeout_s + 5)
    if thread.is_alive():
        raise TimeoutError(f"the reconnect storm did not finish within {config.timeout_s + 5} s")
    if "error" in result:
        raise RuntimeError("the reconnect storm failed") from result["error"]
    df = pd.DataFrame(result["events"], columns=["client", "t_s", "ok", "disconnected_s"])
    return experiment.Run.create(df, {"clients": clients, "policy": policy.strategy})


def summarize_storm(events: pd.DataFrame, clients: int, *, fraction: float = 0.99) -> pd.Series:
    """Time until ``fraction`` of the clients were back, attempts per client, peak attempts per 50 ms.

    Parameters
    ----------
    events : pandas.DataFrame
        The frame of :func:`run_reconnect_storm` (``t_s``, ``ok``).
    clients : int
        Clients in the storm.
    fraction : float
        Share of the clients that counts as "back", in (0, 1].

    Returns
    -------
    pandas.Series
        ``time_to_fraction_s`` (``inf`` if never), ``reconnected``, ``attempts_per_client``
        and ``peak_attempts_per_50ms``.
    """
    n = validate.int_in_range("clients", clients, 1, MAX_CLIENTS)
    validate.frame_columns("events", events, ["t_s", "ok"])
    if events["t_s"].isna().any() or events["ok"].isna().any():
        raise ValueError("events must not contain NaN in t_s or ok")
    frac = validate.float_in_range("fraction", fraction, 0.0, 1.0, low_inclusive=False)
    ok = np.sort(events.loc[events["ok"], "t_s"].to_numpy())
    need = math.ceil(frac * n)
    time_to = float(ok[need - 1]) if ok.size >= need else math.inf
    bins = np.floor(events["t_s"].to_numpy() / 0.05)
    peak = int(np.unique(bins, return_counts=True)[1].max()) if len(events) else 0
    return pd.Series(
        {
            "time_to_fraction_s": time_to,
            "reconnected": int(ok.size),
            "attempts_per_client": float(len(events) / n),
            "peak_attempts_per_50ms": peak,
        }
    )


def plot_storm_attempts(events: pd.DataFrame, ax: Axes | None = None, *, bin_s: float = 0.05) -> Axes:
    """Reconnect attempts per ``bin_s`` against time after the restart, one line per ``policy``.

    Parameters
    ----------
    events : pandas.DataFrame
        Attempts with ``t_s`` and ``policy`` columns.
    ax : matplotlib Axes, optional
    bin_s : float
        Width of a bin, seconds (0.001 to 10).

    Returns
    -------
    matplotlib.axes.Axes
    """
    validate.frame_columns("events", events, ["t_s", "policy"])
    width = validate.float_in_range("bin_s", bin_s, 0.001, 10.0)
    ax = axes_or_new(ax)
    end = float(events["t_s"].max()) + width if len(events) else width
    edges = np.arange(0.0, end + width, width)
    for name, group in events.groupby("policy", sort=False):
        counts, _ = np.histogram(group["t_s"], bins=edges)
        ax.step(edges[:-1], counts, where="post", label=name)
    label(ax, "time since the server went down (s)", f"attempts per {width * 1000:.0f} ms", legend=True)
    return ax
