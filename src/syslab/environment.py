"""What machine an experiment ran on, read at run time (never assumed)."""

from __future__ import annotations

import os
import platform
import sqlite3
import sys
import tempfile
from pathlib import Path

import pandas as pd

__all__ = ["describe", "describe_table", "file_descriptor_limits", "filesystem_type"]


def file_descriptor_limits() -> tuple[int, int]:
    """The (soft, hard) RLIMIT_NOFILE of this process.

    Returns
    -------
    tuple of int
        ``(soft, hard)``; ``(-1, -1)`` where the OS has no such limit.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return (-1, -1)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return (int(soft), int(hard))


def filesystem_type(path: str | os.PathLike | None = None) -> str:
    """The file-system type holding ``path`` (default: the temp folder), from /proc/mounts.

    ``tmpfs`` means fsync costs nothing and commit timings understate a real disk.

    Parameters
    ----------
    path : str or os.PathLike, optional
        A path on the file system in question (default: the temp folder).

    Returns
    -------
    str
        ``"ext4"``, ``"tmpfs"``, ...; ``"unknown"`` where /proc/mounts does not exist (macOS, Windows).
    """
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str, an os.PathLike or None, got {type(path).__name__}")
    target = os.path.realpath(tempfile.gettempdir() if path is None else os.fspath(path))
    try:
        lines = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return "unknown"
    best, best_type = "", "unknown"
    for line in lines:
        parts = line.split()
        if len(parts) < 3:
            continue
        mount = parts[1].replace("\\040", " ")  # /proc/mounts escapes spaces
        inside = target == mount or target.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, best_type = mount, parts[2]
    return best_type


def describe() -> dict[str, object]:
    """A small dict describing the machine: Python, OS, CPUs, SQLite, file-descriptor limits.

    Returns
    -------
    dict
        ``python``, ``implementation``, ``platform``, ``machine``, ``cpu_count``
        (logical CPUs this process may use), ``sqlite`` (the library's version,
        not the Python module's), ``fd_soft_limit`` and ``fd_hard_limit``.
    """
    try:
        usable_cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        usable_cpus = os.cpu_count() or 1
    soft, hard = file_descriptor_limits()
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": usable_cpus,
        "sqlite": sqlite3.sqlite_version,
        "fd_soft_limit": soft,
        "fd_hard_limit": hard,
    }


def describe_table(**extra: object) -> pd.DataFrame:
    """:func:`describe` plus any extra facts, as a two-column table for display in a chapter.

    Parameters
    ----------
    **extra
        Further facts (name to value).

    Returns
    -------
    pandas.DataFrame
        Index ``fact``, column ``value`` (strings).
    """
    facts = {**describe(), **extra}
    return pd.DataFrame({"fact": list(facts), "value": [str(v) for v in facts.values()]}).set_index("fact")
