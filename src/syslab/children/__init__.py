"""Child programs: the real processes the book's experiments start (``python -m syslab.children.<name>``).

Each child is standard-library only (it starts in milliseconds, without numpy) and speaks one
line-oriented JSON protocol on stdout (:mod:`syslab.children._protocol`):

- ``{"event": "ready", ...}`` once it can take work (a port, a pid);
- other events as they happen (``{"event": "ack", "n": 3}``);
- ``{"event": "result", ...}`` with its measurements, then it exits 0;
- ``{"event": "error", "message": ...}`` and a non-zero exit on failure.

Each has one lifetime limit, ``--max-life-s``, after which it exits by itself, and dies with its
parent: it watches its stdin pipe, whose write end only the parent holds, and exits when it closes
(as it does when the parent is killed with SIGKILL). The parent side is
:meth:`syslab.processes.ChildProcess.expect`.
"""
