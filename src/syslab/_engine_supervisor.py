"""Keeps one private database server alive exactly as long as the Python process that asked for it.

Standard library only, and run as a script (``python -I -S _engine_supervisor.py SPEC``) so it
starts in milliseconds. :mod:`syslab.engines` starts it in a session of its own (a kernel killed
together with its process group leaves it running long enough to clean up) with a pipe on stdin
whose only write end the parent holds. The supervisor:

1. creates the server's temporary folder (``data/``, ``run/`` and ``server.log`` inside it), owned
   by the unprivileged user the server runs as when we are root;
2. runs the initialisation commands (``initdb``, ``mariadbd --bootstrap``) and then the server in the
   foreground, as that user, with the server's output going to ``server.log``;
3. announces JSON lines on stdout: ``{"event": "dir"}``, ``{"event": "started"}``, and
   ``{"event": "exited", "log_tail": ...}`` if the server stops by itself;
4. when stdin reaches end of file -- the parent closed it, exited, or was killed with SIGKILL --
   or on SIGTERM/SIGINT/SIGHUP, stops the server (its own shutdown signal, then SIGKILL), and removes
   the folder.

The server also gets a parent-death signal (Linux ``prctl``), so even a supervisor killed with
SIGKILL takes its server with it.

The spec (one JSON argument) holds ``name``, ``tmp_root``, ``uid``/``gid`` (or null), ``init``
(list of commands), ``serve`` (command), ``stop_signal``, ``death_signal``, ``env``, ``init_timeout_s``
and ``max_life_s``. ``{dir}`` in any command argument is replaced by the folder's path.
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

_PR_SET_PDEATHSIG = 1
_stop_requested = False


def announce(event: str, **fields: object) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def log_tail(path: str, n_chars: int = 3000) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - n_chars))
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _on_signal(signum, frame) -> None:  # noqa: ARG001
    global _stop_requested
    _stop_requested = True


def _death_signal_setter(signum: int):
    """A preexec function: deliver ``signum`` to the child when the supervisor dies (Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    prctl = libc.prctl
    supervisor = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)
        if os.getppid() != supervisor:  # the supervisor died between fork and prctl
            os._exit(1)

    return preexec


def parent_gone(stdin_fd: int) -> bool:
    """True once stdin is at end of file (or a stop signal arrived); never blocks."""
    if _stop_requested:
        return True
    try:
        readable, _, _ = select.select([stdin_fd], [], [], 0)
    except (OSError, ValueError):
        return True
    if not readable:
        return False
    try:
        return os.read(stdin_fd, 4096) == b""
    except OSError:
        return True


def stop(process: subprocess.Popen, stop_signal: int, grace_s: float = 10.0) -> None:
    """Ask the server to stop with its own signal; SIGKILL its process group after ``grace_s``."""
    if process.poll() is None:
        try:
            process.send_signal(stop_signal)
        except ProcessLookupError:
            pass
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # the server and anything it forked
    except (ProcessLookupError, PermissionError):
        pass
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        pass


def main(argv: list[str]) -> int:
    spec = json.loads(argv[1])
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _on_signal)
    stdin_fd = sys.stdin.fileno()
    started = time.monotonic()
    max_life_s = float(spec.get("max_life_s", 0)) or None

    folder = tempfile.mkdtemp(prefix=f"syslab-{spec['name']}-", dir=spec.get("tmp_root") or None)
    try:
        os.chmod(folder, 0o755)  # the server's user must be able to reach data/ and run/
        with open(os.path.join(folder, "supervisor.pid"), "w") as handle:
            handle.write(str(os.getpid()))
        uid, gid = spec.get("uid"), spec.get("gid")
        for sub in ("data", "run"):
            os.mkdir(os.path.join(folder, sub), 0o700)
            if uid is not None:
                os.chown(os.path.join(folder, sub), uid, gid)
        log_path = os.path.join(folder, "server.log")
        log = open(log_path, "ab", buffering=0)  # noqa: SIM115 - lives as long as the server
        announce("dir", dir=folder, log=log_path)

        def expand(command: list[str]) -> list[str]:
            return [part.replace("{dir}", folder) for part in command]

        env = dict(os.environ)
        env.update(spec.get("env") or {})
        popen_kwargs: dict = {
            "stdin": subprocess.DEVNULL,
            "stdout": log,
            "stderr": subprocess.STDOUT,
            "cwd": folder,
            "env": env,
            "start_new_session": True,
            "close_fds": True,
            "preexec_fn": _death_signal_setter(int(spec.get("death_signal", signal.SIGKILL))),
        }
        if uid is not None:
            popen_kwargs.update(user=uid, group=gid, extra_groups=[])

        for step in spec.get("init") or []:
            # A step is a command, or {"argv": command, "stdin_text": ..., "stdin_files": [...]}
            # whose standard input is that text followed by those files (mariadbd --bootstrap).
            command = step["argv"] if isinstance(step, dict) else step
            log.write(f"[+{time.monotonic() - started:.2f} s] $ {' '.join(expand(command))}\n".encode())
            kwargs = dict(popen_kwargs)
            if isinstance(step, dict):
                script = os.path.join(folder, "init.sql")
                with open(script, "wb") as handle:
                    handle.write(str(step.get("stdin_text", "")).encode())
                    for path in step.get("stdin_files", []):
                        with open(path, "rb") as part:
                            shutil.copyfileobj(part, handle)
                kwargs["stdin"] = open(script, "rb")  # noqa: SIM115 - closed with the step
            try:
                process = subprocess.Popen(expand(command), **kwargs)
            finally:
                if kwargs["stdin"] is not subprocess.DEVNULL:
                    kwargs["stdin"].close()
            deadline = time.monotonic() + float(spec.get("init_timeout_s", 60))
            while process.poll() is None:
                if parent_gone(stdin_fd) or time.monotonic() > deadline:
                    stop(process, signal.SIGTERM, grace_s=2)
                    if time.monotonic() > deadline:
                        announce("exited", code=None, stage="init", log_tail=log_tail(log_path))
                    return 0
                time.sleep(0.01)
            if process.returncode != 0:
                announce("exited", code=process.returncode, stage="init", log_tail=log_tail(log_path))
                return 0

        serve = expand(spec["serve"])
        log.write(f"[+{time.monotonic() - started:.2f} s] $ {' '.join(serve)}\n".encode())
        server = subprocess.Popen(serve, **popen_kwargs)
        announce("started", pid=server.pid)
        while True:
            if server.poll() is not None:
                announce("exited", code=server.returncode, stage="serve", log_tail=log_tail(log_path))
                return 0
            if parent_gone(stdin_fd):
                break
            if max_life_s is not None and time.monotonic() - started > max_life_s:
                break
            try:
                select.select([stdin_fd], [], [], 0.2)
            except (OSError, ValueError):
                break
        stop(server, int(spec.get("stop_signal", signal.SIGTERM)))
        return 0
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if os.path.exists(folder):  # a file the server was still writing: one more try
            time.sleep(0.2)
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
