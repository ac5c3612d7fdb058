"""The book's build report page (``build-report.md``), written by the build itself.

``build-report.md`` in the repository is a stub. When Sphinx reads it, this module replaces its
text with the report: when and from which commit the book was built, on what (Python, the key
libraries, the database engines if :mod:`syslab.engines` is there), and for each chapter how
long it took to execute and the kernel's peak memory -- read from the same jupyter-cache that
myst-nb takes the chapters' outputs from, so the page describes the outputs it ships with.

The page is read on every build (``env-get-outdated``) and last (``env-before-read-docs``), so
every chapter has been executed, or found in the cache, by the time its row is written.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

DOCNAME = "build-report"
LIBRARIES = (
    "jupyter-book",
    "sphinx",
    "myst-nb",
    "jupyter-cache",
    "sphinx-book-theme",
    "pydata-sphinx-theme",
    "ipykernel",
    "numpy",
    "pandas",
    "matplotlib",
    "simpy",
    "ipywidgets",
)
ENGINE_NAMES = ("postgres", "mariadb", "redis")  # used when syslab.engines has no ENGINE_NAMES


def _git(srcdir: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args], cwd=srcdir, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def commit_line(srcdir: Path) -> str:
    """The commit the book was built from, or an honest 'unknown'."""
    sha = os.environ.get("GITHUB_SHA") or _git(srcdir, "rev-parse", "HEAD")
    if not sha:
        return "unknown (not built from a git checkout)"
    line = f"`{sha[:12]}`"
    subject = _git(srcdir, "log", "-1", "--format=%s", sha)
    if subject:
        line += f" ({subject})"
    if _git(srcdir, "status", "--porcelain", "--untracked-files=no"):
        line += ", with uncommitted changes"
    return line


def library_versions() -> list[tuple[str, str]]:
    rows = []
    for name in LIBRARIES:
        try:
            rows.append((name, importlib.metadata.version(name)))
        except importlib.metadata.PackageNotFoundError:
            continue
    return rows


def engine_versions() -> list[tuple[str, str]] | None:
    """(name, label) for each engine syslab finds; None when syslab.engines does not exist yet."""
    try:
        from syslab import engines  # noqa: PLC0415 - optional, added by another issue
    except Exception:  # noqa: BLE001 - absent or broken: the report says nothing about engines
        return None
    find = getattr(engines, "find", None)
    if find is None:
        return None
    rows = []
    for name in getattr(engines, "ENGINE_NAMES", ENGINE_NAMES):
        try:
            engine = find(name)
        except Exception as error:  # noqa: BLE001 - report, don't fail the build here
            rows.append((name, f"not available ({type(error).__name__})"))
            continue
        product = getattr(engines, "PRODUCTS", {}).get(name, name)
        rows.append((product, getattr(engine, "label", str(engine)) if engine is not None else "not found"))
    return rows


def chapter_rows(srcdir: Path, cache_path: Path | None) -> list[dict]:
    """One row per toc notebook: docname, execution seconds, peak memory MB, when executed."""
    import nbformat
    from syslab_prebuild import toc_notebooks

    cache = None
    if cache_path is not None and cache_path.exists():
        from jupyter_cache import get_cache

        cache = get_cache(str(cache_path))
    rows = []
    for path in toc_notebooks(srcdir):
        row = {
            "docname": path.relative_to(srcdir).with_suffix("").as_posix(),
            "seconds": None,
            "memory_mb": None,
            "executed": None,
        }
        if cache is not None:
            try:
                record = cache.match_cache_notebook(nbformat.read(str(path), as_version=4))
            except KeyError:
                record = None
            if record is not None:
                row["seconds"] = record.data.get("execution_seconds")
                row["memory_mb"] = record.data.get("peak_memory_mb")
                row["executed"] = record.created
        rows.append(row)
    return rows


def _cell(value, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def report_markdown(srcdir: Path, cache_path: Path | None, prebuild: dict | None) -> str:
    now = datetime.datetime.now(datetime.timezone.utc)
    rows = chapter_rows(srcdir, cache_path)
    lines = [
        "# Build report",
        "",
        "This page is written by the build that produced the pages you are reading: which code, "
        "run on what, and what each chapter cost. Every number on every chapter page comes from "
        "the execution listed here.",
        "",
        f"- **Built:** {now:%Y-%m-%d %H:%M} UTC",
        f"- **Commit:** {commit_line(srcdir)}",
        f"- **Machine:** {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        f"- **Python:** {platform.python_version()} ({platform.python_implementation()})",
        "- **Claims:** checked strictly: a chapter whose run contradicts one of its sentences "
        "fails the build instead of being published.",
    ]
    if prebuild and prebuild.get("executed"):
        serial = sum(prebuild["executed"].values())
        lines.append(
            f"- **Execution:** {len(prebuild['executed'])} chapters executed "
            f"{prebuild['workers']} at a time in {prebuild['wall_seconds']:.0f} s "
            f"(one after another they took {serial:.0f} s)."
        )
    lines += ["", "## Libraries", "", "| library | version |", "|---|---|"]
    lines += [f"| {name} | {version} |" for name, version in library_versions()]
    engines = engine_versions()
    if engines is not None:
        lines += ["", "## Database engines", "", "| engine | found |", "|---|---|"]
        lines += [f"| {name} | {label} |" for name, label in engines]
    measured_memory = any(row["memory_mb"] is not None for row in rows)
    lines += ["", "## Chapters", ""]
    if measured_memory:
        lines += [
            "Execution time is the notebook's wall time in its kernel; peak memory is the kernel's "
            "largest resident set (measured when the chapter ran in the parallel pre-execution; "
            "– where it ran another way).",
            "",
            "| chapter | execution (s) | peak memory (MB) | executed (UTC) |",
            "|---|---:|---:|---|",
        ]
    else:
        lines += [
            "Execution time is the notebook's wall time in its kernel (peak memory was not "
            "measured in this build).",
            "",
            "| chapter | execution (s) | executed (UTC) |",
            "|---|---:|---|",
        ]
    for row in rows:
        when = f"{row['executed']:%Y-%m-%d %H:%M}" if row["executed"] else "–"
        memory = f" {_cell(row['memory_mb'], ',.0f')} |" if measured_memory else ""
        lines.append(f"| {{doc}}`{row['docname']}` | {_cell(row['seconds'], '.1f')} |{memory} {when} |")
    total = sum(row["seconds"] or 0.0 for row in rows)
    lines += ["", f"Sum of the chapters' execution times: {total:.0f} s.", ""]
    return "\n".join(lines)


def always_outdated(app, env, added, changed, removed):
    return [DOCNAME] if DOCNAME in env.found_docs else []


def read_last(app, env, docnames):
    if DOCNAME in docnames:
        docnames.remove(DOCNAME)
        docnames.append(DOCNAME)


def fill_report(app, docname, source):
    if docname != DOCNAME:
        return
    config = getattr(app.env, "mystnb_config", None)
    cache_path = Path(config.execution_cache_path) if config and config.execution_cache_path else None
    source[0] = report_markdown(Path(app.srcdir), cache_path, getattr(app.env, "syslab_prebuild", None))


def setup(app):
    app.connect("env-get-outdated", always_outdated)
    app.connect("env-before-read-docs", read_last)
    app.connect("source-read", fill_report)
