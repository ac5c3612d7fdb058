"""Measure the book against its budgets (DESIGN.md): not a test, a report.

For every chapter in _toc.yml it executes the notebook at its default (full)
parameters in a fresh process and kernel, and records the wall time and the peak
memory of the largest process involved (in practice the kernel). Then it runs a
cold ``jupyter-book build`` into a temporary folder, times it, and measures each
chapter page's weight (HTML plus the images it references).

    python tools/benchmark.py                 # everything: chapters, then the cold build
    python tools/benchmark.py --skip-build    # chapters only
    python tools/benchmark.py --chapters connection-pools
    python tools/benchmark.py --explorers     # every chapter's interactive explorer, at its extremes

Prints a table and writes benchmarks/latest.csv (``--explorers``: benchmarks/explorers.csv). Budgets: chapter <= 30 s,
kernel <= 1 GB, cold build <= 5 min, page <= 2 MB, a real engine ready <= 3 s. Timings from a machine that is
busy with other work are not comparable; run it on an idle machine.

``--explorers`` executes each chapter at full size and then, in the same kernel, times every
``ipywidgets.interactive`` (the "Try it" explorer) at each control's minimum, middle and maximum
(every option of a dropdown), with the others at their defaults, plus the all-minimum and
all-maximum corners; anything slower than a quarter second is re-timed and judged by the median of
three. Budget: an explorer answers within 0.5 s at any setting.
"""

from __future__ import annotations

import argparse
import csv
import inspect
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
BUDGET_EXPLORER_S = 0.5  # one explorer update at any slider setting
EXPLORER_RETIME_S = 0.25  # an update slower than this is timed twice more; the median counts
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


def _probe_explorers(result_path: str, retime_s: float, repeats: int) -> None:
    """Run inside a chapter's kernel after the chapter: time every live ``interactive``.

    Self-contained (its source is sent to the kernel). For each explorer it tries the
    default setting, the all-first and all-last corners, and each control at each of its
    probe values (minimum, middle, maximum; every option of a selection, or 16 spread
    over it) with the others at their defaults. It calls ``w.update()`` -- what a slider
    move runs: the function, its display, the figures flushed -- and closes every figure
    afterwards. Writes a JSON list, one entry per explorer, to ``result_path``.
    """
    import gc
    import json
    import statistics
    import time

    import ipywidgets
    import matplotlib.pyplot as plt
    from ipywidgets.widgets.interaction import interactive

    def rss_mb():
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
        return float("nan")

    def spread(values, most=16):
        values = list(values)
        if len(values) <= most:
            return values
        picks = sorted({round(i * (len(values) - 1) / (most - 1)) for i in range(most)})
        return [values[i] for i in picks]

    def probe_values(control):
        """(values to try, note) for one control, in increasing order."""
        if hasattr(control, "_options_values"):
            return spread(control._options_values), "options"
        if isinstance(control.value, bool):
            return [False, True], "bool"
        if isinstance(control, ipywidgets.FloatLogSlider):
            low, high = control.min, control.max
            middle = low + round((high - low) / 2 / control.step) * control.step
            return [control.base**e for e in (low, middle, high)], "log"
        if hasattr(control, "min") and hasattr(control, "max") and not isinstance(control.value, tuple):
            low, high, step = control.min, control.max, getattr(control, "step", None) or 1
            middle = low + round((high - low) / 2 / step) * step
            if isinstance(control.value, int):
                middle = int(middle)
            return [low, middle, high], "range"
        if isinstance(control.value, (int, float)):
            # unbounded text box: the reader can type anything; try two decades either side
            value = control.value
            if isinstance(value, int):
                return [max(value // 100, 0), value, value * 100], "unbounded"
            return [value / 100, value, value * 100], "unbounded"
        return [control.value], "other"

    explorers = [w for w in list(ipywidgets.Widget.widgets.values()) if isinstance(w, interactive)]
    report = []
    for index, w in enumerate(explorers):
        controls = [
            c for c in w.kwargs_widgets if isinstance(c, ipywidgets.ValueWidget) and hasattr(c, "_kwarg")
        ]
        defaults = {c._kwarg: c.value for c in controls}
        probes = {c._kwarg: probe_values(c) for c in controls}
        dragging = [
            c._kwarg
            for c in controls
            if getattr(c, "continuous_update", False) and not isinstance(c, ipywidgets.Text) and not w.manual
        ]
        settings = [dict(defaults)]
        settings.append({name: values[0] for name, (values, _) in probes.items()})
        settings.append({name: values[-1] for name, (values, _) in probes.items()})
        for name, (values, _) in probes.items():
            for value in values:
                settings.append({**defaults, name: value})
        unique, seen = [], set()
        for setting in settings:
            key = repr(sorted(setting.items()))
            if key not in seen:
                seen.add(key)
                unique.append(setting)

        errors = []
        original = w.f

        def guarded(*args, _f=original, _errors=errors, **kwargs):
            try:
                return _f(*args, **kwargs)
            except Exception as error:  # the explorer shows the traceback; we count it
                _errors.append(f"{type(error).__name__}: {error}")
                raise

        # Set controls without triggering the widget's own update; we call it ourselves.
        if not w.manual:
            for c in controls:
                c.unobserve(w.update, names="value")
        w.f = guarded
        rss_before = rss_mb()
        rss_repeat_growth = float("nan")
        timings = []
        try:
            for setting in unique:
                for c in controls:
                    c.value = setting[c._kwarg]
                actual = {c._kwarg: c.value for c in controls}
                n_errors = len(errors)
                seconds, cpu_seconds = [], []
                for attempt in range(repeats):
                    started, cpu_started = time.perf_counter(), time.process_time()
                    w.update()
                    seconds.append(time.perf_counter() - started)
                    cpu_seconds.append(time.process_time() - cpu_started)
                    plt.close("all")
                    if attempt == 0 and seconds[0] < retime_s:
                        break
                timings.append(
                    {
                        "setting": actual,
                        "first_s": seconds[0],
                        "seconds": statistics.median(seconds),
                        "cpu_s": statistics.median(cpu_seconds),
                        "n_timed": len(seconds),
                        "error": errors[n_errors] if len(errors) > n_errors else "",
                    }
                )
            # Leak check: the same update five more times once the caches are warm; closing
            # the figures and clearing the output should leave the kernel's memory flat.
            for c in controls:
                c.value = defaults[c._kwarg]
            w.update()
            plt.close("all")
            gc.collect()
            rss_warm = rss_mb()
            for _ in range(5):
                w.update()
                plt.close("all")
            gc.collect()
            rss_repeat_growth = rss_mb() - rss_warm
        finally:
            w.f = original
            for c in controls:
                c.value = defaults[c._kwarg]
            if not w.manual:
                for c in controls:
                    c.observe(w.update, names="value")
            with w.out:
                w.out.clear_output()
            plt.close("all")
            gc.collect()
        worst = max(timings, key=lambda t: t["seconds"])
        report.append(
            {
                "index": index,
                "explorer": getattr(original, "__name__", repr(original)),
                "controls": {name: note for name, (_, note) in probes.items()},
                "dragging": dragging,
                "manual": bool(w.manual),
                "n_settings": len(timings),
                "worst_setting": {
                    k: (v if isinstance(v, (int, float, str, bool)) else repr(v))
                    for k, v in worst["setting"].items()
                },
                "worst_s": worst["seconds"],
                "worst_first_s": worst["first_s"],
                "worst_n_timed": worst["n_timed"],
                "worst_cpu_s": worst["cpu_s"],
                "errors": sorted({t["error"] for t in timings if t["error"]}),
                "rss_growth_mb": rss_mb() - rss_before,
                "rss_repeat_growth_mb": rss_repeat_growth,
                "open_figures": len(plt.get_fignums()),
                "timings": [{**t, "setting": {k: repr(v) for k, v in t["setting"].items()}} for t in timings],
            }
        )
    with open(result_path, "w") as handle:
        json.dump(report, handle)


# Read once, at import: the probe's source is what each chapter's kernel runs.
_PROBE_SOURCE = inspect.getsource(_probe_explorers)


def measure_explorers(slug: str, *, cell_timeout_s: int = 120, probe_timeout_s: int = 900) -> list[dict]:
    """Execute ``chapters/<slug>.ipynb`` at full size, then time its explorers in the same kernel.

    Returns one dict per ``ipywidgets.interactive`` the chapter left alive (see
    ``_probe_explorers``). A chapter cell that exceeds ``cell_timeout_s`` gets one fresh kernel
    (under load ipykernel 7 occasionally loses a reply and the client would wait for ever; see
    tests/test_notebooks.py).
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError
    from run_chapter import read_notebook

    path = ROOT / "chapters" / f"{slug}.ipynb"
    with tempfile.TemporaryDirectory(prefix="syslab-explorers-") as scratch:
        result_path = Path(scratch) / "explorers.json"
        probe = _PROBE_SOURCE
        call = f"_probe_explorers({str(result_path)!r}, {EXPLORER_RETIME_S!r}, 3)"
        for attempt in range(2):
            nb = read_notebook(path)  # the book's parameters: nothing injected
            probe_cell = nbformat.v4.new_code_cell(probe + "\n\n" + call)
            nb.cells.append(probe_cell)
            client = NotebookClient(
                nb,
                timeout=cell_timeout_s,
                timeout_func=lambda cell, _probe=probe_cell: (
                    probe_timeout_s if cell is _probe else cell_timeout_s
                ),
                kernel_name="python3",
                resources={"metadata": {"path": str(path.parent)}},
            )
            try:
                client.execute()
                break
            except CellTimeoutError:
                if attempt:
                    raise
                print(
                    f"{slug}: a cell timed out after {cell_timeout_s} s; once more in a fresh kernel",
                    flush=True,
                )
        return json.loads(result_path.read_text())


def explorers_main(slugs: list[str], csv_path: Path) -> int:
    """Time every chapter's explorers; print chapter x explorer x worst setting x seconds; write a CSV."""
    rows = []
    for slug in slugs:
        try:
            found = measure_explorers(slug)
        except Exception as error:  # a chapter that fails to run is a row, not the end of the report
            print(f"{slug:28s} FAILED: {type(error).__name__}: {str(error)[-300:]}", flush=True)
            rows.append({"chapter": slug, "explorer": "", "ok": False, "worst_setting": "", "seconds": ""})
            continue
        if not found:
            print(f"{slug:28s} no ipywidgets.interactive found", flush=True)
            rows.append(
                {"chapter": slug, "explorer": "(none)", "ok": False, "worst_setting": "", "seconds": ""}
            )
        for explorer in found:
            setting = ", ".join(f"{k}={v}" for k, v in explorer["worst_setting"].items())
            row = {
                "chapter": slug,
                "explorer": explorer["explorer"],
                "ok": not explorer["errors"],
                "worst_setting": setting,
                "seconds": round(explorer["worst_s"], 3),
                "first_seconds": round(explorer["worst_first_s"], 3),
                "cpu_seconds": round(explorer["worst_cpu_s"], 3),
                "load_1min": round(os.getloadavg()[0], 1),
                "n_timed": explorer["worst_n_timed"],
                "n_settings": explorer["n_settings"],
                "updates_while_dragging": " ".join(explorer["dragging"]),
                "rss_growth_mb": round(explorer["rss_growth_mb"], 1),
                "rss_growth_5_repeats_mb": round(explorer["rss_repeat_growth_mb"], 1),
                "open_figures": explorer["open_figures"],
                "errors": " | ".join(explorer["errors"])[:300],
                "within_budget": not explorer["errors"] and explorer["worst_s"] <= BUDGET_EXPLORER_S,
            }
            rows.append(row)
            flag = "" if row["within_budget"] else "  OVER" if row["ok"] else "  ERROR"
            drag = (
                f"  (recomputes while dragging: {row['updates_while_dragging']})"
                if explorer["dragging"]
                else ""
            )
            print(
                f"{slug:28s} {row['explorer']:12s} {row['seconds']:7.3f} s  {setting}{flag}{drag}", flush=True
            )
    fields = list(dict.fromkeys(key for row in rows for key in row))
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(rows)
    print()
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"budget: an explorer update <= {BUDGET_EXPLORER_S} s at any setting (median of 3 when near)")
    print(f"{'chapter':28s} {'explorer':12s} {'seconds':>8s} {'cpu s':>6s} {'in budget':>9s}  worst setting")
    for row in rows:
        print(
            f"{row['chapter']:28s} {row['explorer']:12s} {row['seconds']!s:>8s} {row.get('cpu_seconds', '')!s:>6s} "
            f"{str(row.get('within_budget', False)):>9s}  {row['worst_setting']}"
        )
    print(f"\nwritten to {csv_path.relative_to(ROOT) if csv_path.is_relative_to(ROOT) else csv_path}")
    return 0 if all(row.get("within_budget", False) for row in rows) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chapters", nargs="*", help="chapter slugs (default: every chapter in _toc.yml)")
    parser.add_argument("--skip-build", action="store_true", help="skip the cold book build")
    parser.add_argument("--skip-engines", action="store_true", help="skip timing the real engines' start")
    parser.add_argument(
        "--explorers", action="store_true", help="time every chapter's explorer at its extreme settings"
    )
    parser.add_argument(
        "--csv", type=Path, help="default: benchmarks/latest.csv (--explorers: explorers.csv)"
    )
    args = parser.parse_args(argv)
    if args.explorers:
        return explorers_main(
            args.chapters or toc_chapters(), args.csv or ROOT / "benchmarks" / "explorers.csv"
        )
    args.csv = args.csv or ROOT / "benchmarks" / "latest.csv"

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
