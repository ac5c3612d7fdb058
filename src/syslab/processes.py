"""Child processes for real experiments: started from a syslab module, always cleaned up.

Real experiments in the book (a server that receives SIGTERM, a worker that
crashes between effect and ack) run code in a separate Python process. This
module starts such a process with the book's package importable from any
working directory, in its own process group, and guarantees it is gone when the
``with`` block ends -- even if the experiment raised.

Example
-------
>>> from syslab.processes import ChildProcess
>>> with ChildProcess("syslab.children.ticker", ["--ticks", "2"], timeout_s=10) as child:
...     ready = child.expect("ready", timeout_s=5)
...     result = child.expect("result", timeout_s=5)
>>> result["ticks"]
2
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from syslab import validate

__all__ = ["ChildProcess", "package_env", "python_command"]

PACKAGE_PARENT = str(Path(__file__).resolve().parents[1])


def package_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The current environment with ``syslab`` importable in a child, plus ``extra``.

    Parameters
    ----------
    extra : dict of str to str, optional
        Variables to add or override.

    Returns
    -------
    dict of str to str
    """
    env = dict(os.environ)
    paths = [PACKAGE_PARENT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env["PYTHONUNBUFFERED"] = "1"
    if extra:
        env.update(extra)
    return env


def python_command(module: str, args: Sequence[str] = ()) -> list[str]:
    """``[python, -m, module, *args]`` using this interpreter.

    Parameters
    ----------
    module : str
        A module runnable with ``python -m``.
    args : sequence
        Its arguments (converted with ``str``).

    Returns
    -------
    list of str
    """
    if not isinstance(module, str) or not module:
        raise ValueError(f"module must be a non-empty module name, got {module!r}")
    if isinstance(args, (str, bytes)) or not isinstance(args, Sequence):
        raise TypeError(f"args must be a sequence of arguments (a str is not), got {args!r}")
    return [sys.executable, "-m", module, *map(str, args)]


class ChildProcess:
    """A ``python -m <module>`` child in its own process group, killed on exit.

    Parameters
    ----------
    module : str
        Module to run (``python -m module``); it must be importable from ``syslab``'s parent.
    args : sequence of str
        Command-line arguments.
    timeout_s : float
        Hard limit on the child's life: :meth:`wait` never waits longer, and the
        context manager kills the whole process group on exit regardless.
    stdin, stdout, stderr :
        As for :class:`subprocess.Popen`. Default: all three are pipes. The stdin pipe is how a
        child of :mod:`syslab.children` notices its parent's death (end of file), so keep it.
    env : dict, optional
        Extra environment variables.
    """

    def __init__(
        self,
        module: str,
        args: Sequence[str] = (),
        *,
        timeout_s: float = 30.0,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env: dict[str, str] | None = None,
        cwd: str | os.PathLike | None = None,
    ) -> None:
        self.timeout_s = validate.positive_float("timeout_s", timeout_s)
        self.command = python_command(module, args)
        self._popen_kwargs = dict(
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            env=package_env(env),
            cwd=cwd,
            start_new_session=True,  # its own process group: we can kill it and its children
        )
        self.process: subprocess.Popen | None = None
        self._deadline = 0.0
        self._buffer = b""
        self.events: list[dict] = []  # every protocol event read so far, in order

    def __enter__(self) -> ChildProcess:
        self.process = subprocess.Popen(self.command, **self._popen_kwargs)
        self._deadline = time.monotonic() + self.timeout_s
        return self

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("the child has not been started; use it in a with block")
        return self.process.pid

    def send_signal(self, signum: int) -> None:
        """Send ``signum`` to the child (not its group), if it is still running.

        Parameters
        ----------
        signum : int
            A signal number (``signal.SIGTERM``).

        Returns
        -------
        None
        """
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signum)

    def wait(self, timeout_s: float | None = None) -> int:
        """Wait for exit, at most ``timeout_s`` and never past the hard limit; return the exit code.

        Parameters
        ----------
        timeout_s : float, optional
            Seconds to wait at most (default: until the hard limit).

        Returns
        -------
        int
            The exit code (negative: killed by that signal).

        Raises :class:`subprocess.TimeoutExpired` if the child is still running.
        """
        if self.process is None:
            raise RuntimeError("the child has not been started; use it in a with block")
        remaining = max(0.0, self._deadline - time.monotonic())
        limit = remaining if timeout_s is None else min(remaining, float(timeout_s))
        return self.process.wait(timeout=limit)

    def expect(self, event: str, timeout_s: float = 10.0) -> dict:
        """Read the child's JSON lines until one has ``"event": event``; return it.

        Lines of other events are kept in :attr:`events`. Never waits past ``timeout_s`` or the
        child's hard limit.

        Parameters
        ----------
        event : str
            The event wanted (``"ready"``, ``"result"``, ...).
        timeout_s : float
            Seconds to wait at most, > 0.

        Returns
        -------
        dict
            The event's fields (``{"event": "ready", "port": 41234}``).

        Raises
        ------
        TimeoutError
            No such event in time (the message quotes the child's stderr tail).
        RuntimeError
            The child reported ``error`` or exited first.
        """
        if not isinstance(event, str) or not event:
            raise ValueError(f"event must be a non-empty string, got {event!r}")
        timeout_s = validate.positive_float("timeout_s", timeout_s)
        if self.process is None or self.process.stdout is None:
            raise RuntimeError("expect needs a started child with stdout=PIPE; use it in a with block")
        deadline = min(time.monotonic() + timeout_s, self._deadline)
        fd = self.process.stdout.fileno()
        while True:
            while b"\n" in self._buffer:
                line, self._buffer = self._buffer.split(b"\n", 1)
                message = self._parse(line)
                if message is None:
                    continue
                self.events.append(message)
                if message.get("event") == event:
                    return message
                if message.get("event") == "error":
                    raise RuntimeError(f"child {self.command[2]} reported an error: {message.get('message')}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"child {self.command[2]} sent no {event!r} event within {timeout_s:g} s{self._stderr_tail()}"
                )
            readable, _, _ = select.select([fd], [], [], min(remaining, 0.5))
            if readable:
                chunk = os.read(fd, 65536)
                if not chunk:
                    self.process.poll()
                    raise RuntimeError(
                        f"child {self.command[2]} exited (code {self.process.returncode}) before sending "
                        f"{event!r}{self._stderr_tail()}"
                    )
                self._buffer += chunk

    @staticmethod
    def _parse(line: bytes) -> dict | None:
        text = line.decode("utf-8", "replace").strip()
        if not text.startswith("{"):
            return None  # not a protocol line (a stray print); protocol lines are JSON objects
        try:
            message = json.loads(text)
        except json.JSONDecodeError:
            return None
        return message if isinstance(message, dict) else None

    def _stderr_tail(self, n_chars: int = 600) -> str:
        """The end of the child's stderr if it has exited (never blocks on a live child)."""
        process = self.process
        if process is None or process.stderr is None or process.poll() is None:
            return ""
        try:
            tail = process.stderr.read()[-n_chars:]
        except (OSError, ValueError):
            return ""
        text = tail.decode("utf-8", "replace") if isinstance(tail, bytes) else str(tail)
        return f"; its stderr ends: {text.strip()!r}" if text.strip() else ""

    def kill(self) -> None:
        """SIGKILL the child's whole process group and reap it.

        Returns
        -------
        None
        """
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - a zombie we cannot reap
            pass
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()

    def __exit__(self, *exc_info) -> None:
        self.kill()
