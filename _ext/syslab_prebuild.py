"""Execute the book's notebooks in parallel, into myst-nb's jupyter-cache, before Sphinx reads them.

Jupyter Book 1.0.4 (myst-nb 1.4, ``execute_notebooks: cache``) executes a notebook when Sphinx
reads it, one at a time, so a cold build takes the sum of the chapters' execution times. Most
chapters spend part of their time waiting (sleeps, sockets, child processes, servers), so on a
2-core machine several run well side by side.

At ``builder-inited`` -- after the configuration is read, before any document is -- this
module finds every notebook the table of contents lists, asks the same jupyter-cache that
myst-nb uses (``<build>/.jupyter_cache``) whether it already holds an execution of that exact
code, and executes the missing ones in a pool of processes (``SYSLAB_BUILD_JOBS``, default
CPU count + 1). Each success is stored in the cache exactly as myst-nb stores its own (same
notebook hash, ``execution_seconds``), plus the kernel's peak memory; when Sphinx then reads
the chapter, myst-nb logs "Using cached notebook" and executes nothing.

A notebook that fails here is simply not cached: myst-nb then executes it itself, in order,
and reports the failure exactly as it always did (traceback, ``raise_on_error``). So this step
can only make the build faster, never change what it accepts. ``SYSLAB_BUILD_JOBS=1`` (or 0)
turns it off.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import resource
import time
from pathlib import Path

import yaml

ENVIRONMENT_VARIABLE = "SYSLAB_BUILD_JOBS"
MAX_JOBS = 8


def toc_files(toc_path: Path) -> list[str]:
    """Every ``file:`` entry of a Jupyter Book ``_toc.yml`` (root first), without extension."""
    toc = yaml.safe_load(toc_path.read_text(encoding="utf-8"))
    found: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("root"), str):
                found.append(node["root"])
            if isinstance(node.get("file"), str):
                found.append(node["file"])
            for value in node.values():
                if isinstance(value, (list, dict)):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    return found


def toc_notebooks(srcdir: Path) -> list[Path]:
    """The ``.ipynb`` files the book's table of contents lists."""
    toc = srcdir / "_toc.yml"
    if not toc.exists():
        return []
    paths = []
    for name in toc_files(toc):
        stem = name[: -len(".ipynb")] if name.endswith(".ipynb") else name
        path = srcdir / f"{stem}.ipynb"
        if path.exists() and path not in paths:
            paths.append(path)
    return paths


PREBUILD_CELL_TIMEOUT_S = 120


def jobs() -> int:
    """How many notebooks run at once: ``SYSLAB_BUILD_JOBS``, else CPU count + 1 (capped)."""
    value = os.environ.get(ENVIRONMENT_VARIABLE, "").strip()
    if value:
        try:
            count = int(value)
        except ValueError as error:
            raise ValueError(f"{ENVIRONMENT_VARIABLE} must be a whole number, got {value!r}") from error
        if count < 0:
            raise ValueError(f"{ENVIRONMENT_VARIABLE} must be >= 0, got {count}")
        return min(count, MAX_JOBS)
    return min((os.cpu_count() or 1) + 1, MAX_JOBS)


def _execute(path: str, timeout: int, allow_errors: bool) -> dict:
    """Worker (a fresh process per notebook): execute ``path`` in its own folder."""
    import nbformat
    from jupyter_cache.executors.utils import single_nb_execution

    notebook = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    result = single_nb_execution(
        notebook,
        cwd=str(Path(path).parent),
        timeout=timeout,
        allow_errors=allow_errors,
        meta_override=True,
    )
    # This process's only children were the kernel (and whatever it started and reaped):
    # their largest resident set, in MB (Linux reports ru_maxrss in KiB).
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    return {
        "path": path,
        "notebook": notebook if result.err is None else None,
        "seconds": result.time,
        "wall_seconds": time.perf_counter() - started,
        "peak_memory_mb": round(peak_mb, 1),
        "error": None if result.err is None else _head_and_tail(f"{type(result.err).__name__}: {result.err}"),
    }


def _head_and_tail(text: str, keep: int = 1000) -> str:
    """``text`` cut to its first and last ``keep`` characters (a traceback's exception is at the end)."""
    return text if len(text) <= 2 * keep else f"{text[:keep]}\n...\n{text[-keep:]}"


def _expected_seconds(cache, path: Path) -> float:
    """Last known execution time of ``path`` (longest first keeps the pool busy to the end)."""
    try:
        for record in cache.list_cache_records():
            if record.uri == str(path):
                return float(record.data.get("execution_seconds") or 0.0)
    except Exception:  # noqa: BLE001 - an old or odd cache only loses the ordering hint
        pass
    return 0.0


def prebuild(srcdir: Path, cache_path: Path, *, timeout: int, allow_errors: bool, workers: int, log) -> dict:
    """Execute the uncached toc notebooks in parallel into the jupyter-cache at ``cache_path``.

    Returns a summary: {"cached": [...], "executed": {path: seconds}, "failed": {path: error},
    "wall_seconds": float, "workers": int}.
    """
    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache = get_cache(str(cache_path))
    summary = {"cached": [], "executed": {}, "failed": {}, "wall_seconds": 0.0, "workers": workers}
    todo = []
    for path in toc_notebooks(srcdir):
        notebook = nbformat.read(str(path), as_version=4)
        try:
            cache.match_cache_notebook(notebook)
            summary["cached"].append(str(path))
        except KeyError:
            todo.append(path)
    if not todo or workers <= 1:
        return summary
    todo.sort(key=lambda path: _expected_seconds(cache, path), reverse=True)
    log(f"[syslab] executing {len(todo)} notebook(s), {workers} at a time, into {cache_path}")
    started = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=min(workers, len(todo)), mp_context=context, max_tasks_per_child=1
    ) as pool:
        futures = [pool.submit(_execute, str(path), timeout, allow_errors) for path in todo]
        for future in concurrent.futures.as_completed(futures):
            try:
                outcome = future.result()
            except Exception as error:  # noqa: BLE001 - the worker died; myst-nb will retry it
                log(f"[syslab] a worker failed: {type(error).__name__}: {error}")
                continue
            path = outcome["path"]
            if outcome["error"] is not None:
                summary["failed"][path] = outcome["error"]
                lines = [line for line in outcome["error"].strip().splitlines() if line.strip()]
                # The first line names the error kind; the last holds the exception and its message
                # (a claim that failed, a timeout): enough to tell a flaky chapter from a broken one.
                first_line, last_line = lines[0][:200], lines[-1][:400]
                log(
                    f"[syslab] {Path(path).name} failed here ({first_line} ... {last_line});"
                    " Sphinx will execute it and report"
                )
                continue
            record = cache.add_nb_to_project(path)
            cache.cache_notebook_bundle(
                CacheBundleIn(
                    outcome["notebook"],
                    record.uri,
                    data={
                        "execution_seconds": outcome["seconds"],
                        "peak_memory_mb": outcome["peak_memory_mb"],
                        "executed_by": f"syslab prebuild, {workers} parallel",
                    },
                ),
                check_validity=False,
                overwrite=True,
            )
            summary["executed"][path] = outcome["seconds"]
            log(f"[syslab] {Path(path).name}: {outcome['seconds']:.1f} s, {outcome['peak_memory_mb']:.0f} MB")
    summary["wall_seconds"] = time.perf_counter() - started
    total = sum(summary["executed"].values())
    log(
        f"[syslab] executed {len(summary['executed'])} notebook(s) in {summary['wall_seconds']:.1f} s "
        f"(their serial sum: {total:.1f} s)"
    )
    return summary


def on_builder_inited(app) -> None:
    from sphinx.util import logging

    logger = logging.getLogger(__name__)
    config = getattr(app.env, "mystnb_config", None)
    if config is None or config.execution_mode != "cache":
        return
    workers = jobs()
    summary = prebuild(
        Path(app.srcdir),
        Path(config.execution_cache_path),
        # A cell that runs this long in the pre-execution has hung (rarely, a kernel loses a
        # reply under load); giving up early costs less, and Sphinx then runs the chapter again
        # itself with the full timeout.
        timeout=min(int(config.execution_timeout), PREBUILD_CELL_TIMEOUT_S),
        allow_errors=bool(config.execution_allow_errors),
        workers=workers,
        log=logger.info,
    )
    app.env.syslab_prebuild = summary
