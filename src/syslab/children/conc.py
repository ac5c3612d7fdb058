"""The child-process side of :mod:`syslab.concurrency`'s real experiments.

Kept apart, importing only the standard library, so that a server child starts in
milliseconds and its memory is the server's, not numpy's and pandas'::

    python -m syslab.children.conc serve threads --max-life-s 30   # announces ready with its port
    python -m syslab.concurrency_child serve asyncio 30
    python -m syslab.concurrency_child emfile 256          # prints one JSON line
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import os
import socket
import sys
import threading
import time
from pathlib import Path

from syslab.children import _protocol


def _proc_status() -> dict[str, int]:
    """VmRSS, VmSize (kB) and Threads of this process from /proc (-1 where unavailable)."""
    wanted = {"VmRSS": -1, "VmSize": -1, "Threads": -1}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in wanted:
                wanted[key] = int(value.split()[0])
    except OSError:
        pass
    return wanted


# ------------------------------------------------------ child: the two servers


def _stats_reply(open_connections: int) -> bytes:
    status = _proc_status()
    reply = f"open={open_connections} rss_kb={status['VmRSS']} vm_kb={status['VmSize']} "
    return (reply + f"threads={status['Threads']}\n").encode()


def _serve_threads(listener: socket.socket, deadline: float) -> None:
    """Thread per connection: the accept loop starts one blocking reader thread per socket."""
    count = [0]
    lock = threading.Lock()

    def handle(conn: socket.socket) -> None:
        with conn:
            while True:
                try:
                    data = conn.recv(64)
                except OSError:
                    return
                if not data:
                    return
                with lock:
                    n = count[0]
                conn.sendall(_stats_reply(n) if data.startswith(b"stats") else data)

    listener.settimeout(0.2)
    while time.monotonic() < deadline:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        conn.settimeout(None)
        with lock:
            count[0] += 1
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def _serve_asyncio(listener: socket.socket, deadline: float) -> None:
    """One event loop: a coroutine (a few hundred bytes of frame) per connection."""
    count = [0]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        count[0] += 1
        try:
            while True:
                data = await reader.read(64)
                if not data:
                    break
                writer.write(_stats_reply(count[0]) if data.startswith(b"stats") else data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, sock=listener, backlog=4096)
        async with server:
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))

    asyncio.run(main())


def _child_serve(mode: str, max_seconds: float) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    _protocol.announce("ready", port=listener.getsockname()[1])
    deadline = time.monotonic() + max_seconds
    try:
        (_serve_threads if mode == "threads" else _serve_asyncio)(listener, deadline)
    finally:
        listener.close()
    os._exit(0)  # daemon threads blocked in recv would otherwise delay exit


def _child_emfile(limit: int) -> None:
    """Lower our own soft RLIMIT_NOFILE, then open sockets until the kernel says EMFILE."""
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    already_open = len(os.listdir("/proc/self/fd")) - 1 if Path("/proc/self/fd").exists() else -1
    sockets = []
    error = ""
    try:
        for _ in range(limit + 1):  # bounded: the limit must stop us before this ends
            sockets.append(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    except OSError as exc:
        error = errno.errorcode.get(exc.errno, str(exc.errno))
    highest = max((s.fileno() for s in sockets), default=-1)
    for s in sockets:
        s.close()
    _protocol.announce(
        "result", limit=limit, already_open=already_open, opened=len(sockets), highest_fd=highest, error=error
    )


def main(argv: list[str] | None = None) -> int:
    """Run ``serve <mode>`` or ``emfile <limit>``; see the module docstring.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status.
    """
    parser = argparse.ArgumentParser(prog="python -m syslab.children.conc")
    _protocol.add_common_arguments(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run a server on 127.0.0.1 and announce its port")
    serve.add_argument("mode", choices=["threads", "asyncio"])
    emfile = sub.add_parser("emfile", help="lower RLIMIT_NOFILE and open sockets until EMFILE")
    emfile.add_argument("limit", type=int)
    args = parser.parse_args(argv)
    _protocol.start_guards(args.max_life_s)
    if args.command == "serve":
        _child_serve(args.mode, args.max_life_s)
    else:
        _child_emfile(args.limit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
