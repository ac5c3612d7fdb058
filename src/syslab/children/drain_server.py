"""Child-process programs for the graceful-shutdown experiments (run with ``python -m``).

This module is started by :mod:`syslab.shutdown` through
:class:`syslab.processes.ChildProcess` (``python -m syslab.children.drain_server``); it is not
imported by notebooks. It uses only the standard library and :mod:`syslab.children._protocol`,
so that a child starts in a few tens of milliseconds.

Three programs, chosen by the first argument:

``serve``
    A TCP server on 127.0.0.1 with the five-stage drain. A request is one line
    ``<id> <service_ms>``; the server answers ``accepted <id>`` at once, works for
    ``service_ms``, appends ``<id>`` to an in-memory journal buffer and answers
    ``ok <id>``. A background thread flushes the journal to disk every
    ``--flush-interval-s`` (acknowledged-before-durable, like Redis's
    ``appendfsync everysec``). On SIGTERM: (1) the handler only sets a flag,
    (2) the main loop closes the listener, (3) it joins the workers, for at most
    ``--drain-timeout-s`` (0 means unbounded), (4) it flushes and fsyncs the
    journal, (5) it exits with status 0.
``lock``
    A loop that holds a journal lock nearly all the time. With ``--handler flag``
    the SIGTERM handler sets a flag and the loop exits cleanly; with
    ``--handler work`` the handler itself takes the lock to flush -- and
    deadlocks, because the code it interrupted holds that lock.
``pid1``
    Sleeps; with ``--handler flag`` it installs a SIGTERM handler, with
    ``--handler none`` it keeps the default disposition. Meant to run as PID 1
    of a new PID namespace (``unshare -rpf``), where the kernel drops signals
    that have no handler.

Every program speaks the children's JSON-lines protocol: ``{"event": "ready", "port": ...}`` when it
is listening, ``{"event": "stage", "name": ..., "t": <monotonic s>, "detail": ...}`` for each drain
stage, and it exits after ``--max-life-s`` whatever happens and when its stdin pipe closes (its parent
died), so nothing outlives the experiment. ``pid1`` runs under ``unshare`` with no stdin pipe and
relies on the lifetime limit alone.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
import time

from syslab.children import _protocol

MAX_SERVICE_MS = 120_000  # a request never sleeps longer than this, whatever the client asks


def stage(name: str, detail: str = "") -> None:
    """Report a drain stage to the parent: ``{"event": "stage", "name", "t" (monotonic s), "detail"}``."""
    _protocol.announce("stage", name=name, t=time.monotonic(), detail=detail)


class Journal:
    """Lines buffered in memory, flushed and fsynced every ``flush_interval_s`` and on close."""

    def __init__(self, path: str, flush_interval_s: float) -> None:
        self.file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self.lock = threading.Lock()
        self.pending: list[str] = []
        self.stop = threading.Event()
        self.flush_interval_s = flush_interval_s
        self.flusher = threading.Thread(target=self._flush_loop, daemon=True)
        self.flusher.start()

    def append(self, line: str) -> None:
        with self.lock:
            self.pending.append(line)

    def flush(self) -> int:
        with self.lock:
            lines, self.pending = self.pending, []
        if lines:
            self.file.write("".join(f"{line}\n" for line in lines))
        self.file.flush()
        os.fsync(self.file.fileno())
        return len(lines)

    def _flush_loop(self) -> None:
        while not self.stop.wait(self.flush_interval_s):
            self.flush()

    def close(self) -> int:
        self.stop.set()
        self.flusher.join(timeout=5)
        flushed = self.flush()
        self.file.close()
        return flushed


def handle(conn: socket.socket, journal: Journal) -> None:
    """Serve one request on ``conn``: accepted → work → journal → ok."""
    with conn:
        conn.settimeout(MAX_SERVICE_MS / 1000 + 5)
        try:
            line = conn.makefile("r", encoding="utf-8").readline().split()
            request_id, service_ms = line[0], min(float(line[1]), MAX_SERVICE_MS)
            conn.sendall(f"accepted {request_id}\n".encode())
            time.sleep(service_ms / 1000)
            journal.append(request_id)
            conn.sendall(f"ok {request_id}\n".encode())
        except (OSError, IndexError, ValueError):
            return  # a client that vanished or sent garbage costs us nothing else


def serve(args: argparse.Namespace) -> int:
    stop = threading.Event()
    # Stage 1, catch: the handler does nothing but set a flag (safe in any language).
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    journal = Journal(args.journal, args.flush_interval_s)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.02)  # the accept loop looks at the flag 50 times a second
    _protocol.announce("ready", port=listener.getsockname()[1])
    workers: list[threading.Thread] = []
    while not stop.is_set():
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        conn.setblocking(True)
        worker = threading.Thread(target=handle, args=(conn, journal), daemon=True)
        worker.start()
        workers.append(worker)
    stage("catch")
    # Stage 2, stop intake: a closed listener makes the kernel refuse new connections.
    listener.close()
    stage("stop_intake")
    # Stage 3, drain: wait for in-flight requests, bounded unless asked otherwise.
    limit_s = args.drain_timeout_s if args.drain_timeout_s > 0 else args.max_life_s
    deadline = time.monotonic() + limit_s
    for worker in workers:
        worker.join(timeout=max(0.0, deadline - time.monotonic()))
    abandoned = sum(worker.is_alive() for worker in workers)
    stage("drain", f"abandoned={abandoned}")
    # Stage 4, flush: make everything acknowledged durable.
    flushed = journal.close()
    stage("flush", f"lines={flushed}")
    # Stage 5, exit 0: tell the supervisor this was a clean stop.
    stage("exit")
    return 0


def lock_demo(args: argparse.Namespace) -> int:
    lock = threading.Lock()
    pending: list[str] = []
    stop = threading.Event()

    def flush_and_exit() -> None:
        with open(args.journal, "a", encoding="utf-8") as file:
            file.write("".join(f"{line}\n" for line in pending))
            file.flush()
            os.fsync(file.fileno())
        stage("exit", f"lines={len(pending)}")
        os._exit(0)

    def work_in_handler(signum, frame) -> None:
        stage("handler")
        with lock:  # the interrupted main loop holds this lock: we wait for ourselves forever
            flush_and_exit()

    if args.handler == "flag":
        signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    else:
        signal.signal(signal.SIGTERM, work_in_handler)
    _protocol.announce("ready", port=0)
    count = 0
    while not stop.is_set():
        with lock:  # held ~99.9% of the time, like a logger or allocator in a busy program
            for _ in range(50):
                pending.append(str(count))
                count += 1
                time.sleep(0.001)
    stage("catch")
    with lock:
        flush_and_exit()
    return 0


def pid1(args: argparse.Namespace) -> int:
    if args.handler == "flag":
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    else:
        stop = threading.Event()  # never set: only the default disposition could end us
    _protocol.announce("ready", pid=os.getpid())
    while not stop.wait(0.02):
        pass
    stage("exit")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m syslab.children.drain_server")
    parser.add_argument("program", choices=["serve", "lock", "pid1"])
    parser.add_argument("--journal", default=os.devnull)
    parser.add_argument("--flush-interval-s", type=float, default=5.0)
    parser.add_argument("--drain-timeout-s", type=float, default=5.0)
    parser.add_argument("--handler", choices=["flag", "work", "none"], default="flag")
    _protocol.add_common_arguments(parser)
    args = parser.parse_args(argv)
    # pid1 runs under unshare with no stdin pipe: only the lifetime limit guards it.
    _protocol.start_guards(args.max_life_s, watch_stdin=args.program != "pid1")
    programs = {"serve": serve, "lock": lock_demo, "pid1": pid1}
    return programs[args.program](args)


if __name__ == "__main__":
    sys.exit(main())
