"""Measure the book against its budgets (DESIGN.md): not a test, a report.

For every chapter in _toc.yml it executes the notebook at its default (full)
parameters in a fresh process and kernel, and records the wall time and the peak
memory of the largest process involved (in practice the kernel). Then it runs a
cold ``jupyter-book build`` into a temporary folder, times it, and measures each
chapter page's weight (HTML plus the images it references).

    python tools/benchmark.py                 # everything: chapters, then the cold build
    python tools/benchmark.py --skip-build    # chapters only
    python tools/benchmark.py --chapters connection-pools

Prints a table and writes benchmarks/latest.csv. Budgets: chapter <= 30 s,
kernel <= 1 GB, cold build <= 5 min, page <= 2 MB, a real engine ready <= 3 s. Timings from a machine that is
busy with other work are not comparable; run it on an idle machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BUDGET_CHAPTER_S = 30.0
BUDGET_MEMORY_MB = 1024.0
BUDGET_BUILD_S = 300.0
BUDGET_PAGE_MB = 2.0
BUDGET_BUILD_RATIO = 0.6  # cold build / sum of the chapters' serial execution times
BUDGET_ENGINE_S = 3.0
ENGINE_PROBE = """
import json
from syslab import engines
out = {}
for name in engines.ENGINE_NAMES:
    try:
        e = getattr(engines, name)()
        out[name] = {"ok": True, "label": e.label, "seconds": e.start_s, "source": e.source}
    except engines.EngineUnavailable as error:
        out[name] = {"ok": False, "label": error.reason, "seconds": float("nan"), "source": ""}
print(json.dumps(out))
"""


def engine_rows() -> list[dict]:
    """Start each real engine once in a fresh process (as a chapter's kernel does) and time it."""
    result = subprocess.run(
        [sys.executable, "-c", ENGINE_PROBE], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    if result.returncode != 0:
        print(result.stderr[-2000:])
        return [
            {
                "what": "engines",
                "ok": False,
                "seconds": "",
                "peak_memory_mb": "",
                "page_mb": "",
                "within_budget": False,
            }
        ]
    rows = []
    for name, found in json.loads(result.stdout).items():
        rows.append(
            {
                "what": f"engine start: {name}",
                "ok": found["ok"],
                "seconds": round(found["seconds"], 2),
                "peak_memory_mb": "",
                "page_mb": "",
                "within_budget": found["ok"] and found["seconds"] <= BUDGET_ENGINE_S,
            }
        )
        print(
            f"{'engine start: ' + name:32s} {found['seconds']:6.2f} s  {found['label']}  {found['source']}",
            flush=True,
        )
    return rows


def toc_chapters() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    names = []
    for part in toc.get("parts", []):
        names += [
            entry["file"].split("/")[-1]
            for entry in part.get("chapters", [])
            if entry["file"].startswith("chapters/")
        ]
    return names


def run_measured(command: list[str], timeout_s: float) -> tuple[int, float, float, str]:
    """Run ``command``; return (exit code, wall seconds, peak RSS in MB of it or any descendant, output)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = started + timeout_s
    output = ""
    # wait4 reports the child's rusage, whose ru_maxrss includes the descendants it waited
    # for -- here the Jupyter kernel, which jupyter_client reaps on shutdown.
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            process.kill()
            pid, status, usage = os.wait4(process.pid, 0)
            break
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    if process.stdout is not None:
        output = process.stdout.read()
        process.stdout.close()
    code = os.waitstatus_to_exitcode(status)
    return code, seconds, usage.ru_maxrss / 1024.0, output


def page_weight_mb(html_dir: Path, page: Path) -> float:
    """HTML plus every local image it references, in MB."""
    text = page.read_text(encoding="utf-8")
    total = page.stat().st_size
    for src in set(re.findall(r'<img[^>]+src="([^"]+)"', text)):
        if src.startswith(("http:", "https:", "data:")):
            continue
        image = (page.parent / src).resolve()
        if image.exists():
            total += image.stat().st_size
    return total / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chapters", nargs="*", help="chapter slugs (default: every chapter in _toc.yml)")
    parser.add_argument("--skip-build", action="store_true", help="skip the cold book build")
    parser.add_argument("--skip-engines", action="store_true", help="skip timing the real engines' start")
    parser.add_argument("--csv", type=Path, default=ROOT / "benchmarks" / "latest.csv")
    args = parser.parse_args(argv)

    rows = [] if args.skip_engines else engine_rows()
    for slug in args.chapters or toc_chapters():
        notebook = ROOT / "chapters" / f"{slug}.ipynb"
        command = [sys.executable, str(ROOT / "tools" / "run_chapter.py"), str(notebook), "--full"]
        code, seconds, peak_mb, output = run_measured(command, timeout_s=600)
        match = re.search(r"executed in ([\d.]+) s", output)
        executed_s = float(match.group(1)) if match else float("nan")
        rows.append(
            {
                "what": slug,
                "ok": code == 0,
                "seconds": round(executed_s, 1),
                "peak_memory_mb": round(peak_mb, 0),
                "page_mb": "",
                "within_budget": code == 0 and executed_s <= BUDGET_CHAPTER_S and peak_mb <= BUDGET_MEMORY_MB,
            }
        )
        print(
            f"{slug:32s} {'ok' if code == 0 else 'FAILED':6s} {executed_s:6.1f} s {peak_mb:7.0f} MB",
            flush=True,
        )
        if code != 0:
            print(output[-2000:])

    if not args.skip_build:
        out = Path(tempfile.mkdtemp(prefix="syslab-bench-build-"))
        try:
            jupyter_book = shutil.which("jupyter-book") or "jupyter-book"
            code, seconds, peak_mb, output = run_measured(
                [jupyter_book, "build", str(ROOT), "--path-output", str(out)], timeout_s=1800
            )
            html = out / "_build" / "html"
            for row in rows:
                page = html / "chapters" / f"{row['what']}.html"
                if page.exists():
                    row["page_mb"] = round(page_weight_mb(html, page), 2)
                    row["within_budget"] = bool(row["within_budget"] and row["page_mb"] <= BUDGET_PAGE_MB)
            rows.append(
                {
                    "what": "cold book build",
                    "ok": code == 0,
                    "seconds": round(seconds, 1),
                    "peak_memory_mb": round(peak_mb, 0),
                    "page_mb": "",
                    "within_budget": code == 0 and seconds <= BUDGET_BUILD_S,
                }
            )
            print(
                f"{'cold book build':32s} {'ok' if code == 0 else 'FAILED':6s} {seconds:6.1f} s", flush=True
            )
            chapters = set(args.chapters or toc_chapters())
            serial = sum(row["seconds"] for row in rows if row["what"] in chapters and row["ok"])
            if serial > 0:
                ratio = seconds / serial
                # The build executes chapters in parallel (_ext/syslab_prebuild.py): a cold build
                # should take at most BUDGET_BUILD_RATIO of the chapters' serial execution times.
                rows.append(
                    {
                        "what": "cold build / serial chapter sum",
                        "ok": code == 0,
                        "seconds": round(ratio, 2),
                        "peak_memory_mb": "",
                        "page_mb": "",
                        "within_budget": code == 0 and ratio <= BUDGET_BUILD_RATIO,
                    }
                )
                print(
                    f"cold build {seconds:.0f} s / serial chapter sum {serial:.0f} s = {ratio:.2f} "
                    f"(budget <= {BUDGET_BUILD_RATIO})",
                    flush=True,
                )
        finally:
            shutil.rmtree(out, ignore_errors=True)

    args.csv.parent.mkdir(parents=True, exist_ok=True)
    with args.csv.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print()
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"budgets: chapter <= {BUDGET_CHAPTER_S:.0f} s, kernel <= {BUDGET_MEMORY_MB:.0f} MB, ", end="")
    print(
        f"cold build <= {BUDGET_BUILD_S:.0f} s, page <= {BUDGET_PAGE_MB:.0f} MB, engine start <= {BUDGET_ENGINE_S:.0f} s"
    )
    print(f"{'what':32s} {'ok':>5s} {'seconds':>8s} {'peak MB':>8s} {'page MB':>8s} {'in budget':>9s}")
    for row in rows:
        print(
            f"{row['what']:32s} {str(row['ok']):>5s} {row['seconds']:>8} {row['peak_memory_mb']:>8} "
            f"{row['page_mb']!s:>8} {str(row['within_budget']):>9s}"
        )
    print(f"\nwritten to {args.csv.relative_to(ROOT) if args.csv.is_relative_to(ROOT) else args.csv}")
    return 0 if all(row["ok"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
