"""This machine's memory hierarchy, measured: random-access cost against working-set size.

Two real measurements, both pure numpy/Python so they run anywhere the book runs:

- :func:`measure_gather` -- ``array.take(random_indexes)``: a vectorised random gather. Many loads are
  in flight at once (memory-level parallelism), so it reports the *throughput* cost of a random access,
  not its latency. It is cheap, so it sweeps up to hundreds of MB, and its cliffs sit where the working
  set stops fitting in L2 and in L3.
- :func:`measure_pointer_chase` -- ``i = buf[i]`` over a single random cycle, one load depending on the
  previous one: the *latency* of a random access, plus the interpreter's fixed cost per step, which
  :func:`summarize_chase` removes by subtracting the smallest working set's cost.

:func:`read_os_cache_sizes` reads what Linux reports under ``/sys/devices/system/cpu/cpu0/cache`` (an
empty table elsewhere) and :func:`estimate_cliffs` finds the working-set sizes where the cost jumps, so a
chapter can put the two side by side. Nothing here is assumed about the machine.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from syslab import validate
from syslab.experiment import Run
from syslab.plot import axes_or_new, label

__all__ = [
    "default_sizes_bytes",
    "estimate_cliffs",
    "measure_gather",
    "measure_pointer_chase",
    "parse_size_bytes",
    "plot_access_cost",
    "plot_latency_ladder",
    "read_os_cache_sizes",
    "summarize_chase",
    "read_tlb_entries",
    "tlb_reach_bytes",
    "summarize_cliffs",
    "plot_hierarchy",
    "cliff_candidates",
]

SYSFS_CACHE_DIR = Path("/sys/devices/system/cpu/cpu0/cache")
ELEMENT_BYTES = 4  # int32 elements: one random access touches one 64-byte cache line
MAX_WORKING_SET_BYTES = 1 << 30  # the kernel budget is 1 GB; refuse anything larger
MAX_ACCESSES = 1 << 24  # random reads per gather timing (128 MB of indexes)
MAX_STEPS = 2_000_000  # dependent loads per pointer-chase timing (about 0.2 s in CPython)
MAX_REPEATS = 20  # timings per size
MAX_PER_OCTAVE = 16  # points per doubling of the working set
HUGE_PAGE_BYTES = 2 << 20  # x86-64 transparent huge page
SMALL_PAGE_BYTES = 4096
TYPICAL_L1_DTLB_ENTRIES = 64  # 4 KiB entries of the first-level data TLB on current Intel and AMD cores


def default_sizes_bytes(
    smallest_bytes: int = 4096, largest_bytes: int = 128 << 20, per_octave: int = 2
) -> list:
    """Working-set sizes from ``smallest_bytes`` to ``largest_bytes``, ``per_octave`` points per doubling.

    Parameters
    ----------
    smallest_bytes, largest_bytes : int
        The range of working sets.
    per_octave : int
        Points per doubling (1 to ``MAX_PER_OCTAVE``).

    Returns
    -------
    list of int
        Sizes in bytes, multiples of the element size, ascending.
    """
    low = validate.positive_int("smallest_bytes", smallest_bytes)
    high = validate.positive_int("largest_bytes", largest_bytes)
    steps = validate.bounded_int("per_octave", per_octave, MAX_PER_OCTAVE)
    if high < low:
        raise ValueError(f"largest_bytes must be >= smallest_bytes, got {high} < {low}")
    octaves = np.log2(high / low)
    exponents = np.linspace(0.0, octaves, int(round(octaves * steps)) + 1)
    sizes = np.unique((low * 2.0**exponents / ELEMENT_BYTES).round().astype(np.int64) * ELEMENT_BYTES)
    return [int(s) for s in sizes]


def _check_sizes(sizes_bytes: Sequence[int]) -> list[int]:
    sizes = validate.sequence_of_positive_ints("sizes_bytes", sizes_bytes)
    for size in sizes:
        if size < 64 or size > MAX_WORKING_SET_BYTES:
            raise ValueError(f"sizes_bytes must each be in [64, {MAX_WORKING_SET_BYTES}], got {size}")
    return sizes


def measure_gather(
    sizes_bytes: Sequence[int],
    accesses: int = 1 << 20,
    repeats: int = 5,
    seed: int | np.random.Generator | None = 0,
    *,
    huge_pages: bool = False,
) -> Run:
    """Time random gathers (``a.take(idx)``) from int32 arrays of each working-set size.

    Parameters
    ----------
    sizes_bytes : sequence of int
        Working-set sizes in bytes (64 B to 1 GiB).
    accesses : int
        Random reads per timing.
    repeats : int
        Timings per size; the fastest is the one least disturbed by other processes.
    seed : int or Generator
        For the random indexes.
    huge_pages : bool
        Place each array in memory advised ``MADV_HUGEPAGE`` (2 MiB transparent huge pages where the
        kernel allows them), so one TLB entry covers 512 times as much: cliffs that move or vanish
        are TLB cliffs, not cache cliffs.

    Returns
    -------
    experiment.Run
        ``frame``: one row per size: ``size_bytes``, ``ns_per_access`` (best of ``repeats``),
        ``ns_median``, ``huge_pages`` (as asked), ``huge_page_share`` (share of the array the kernel
        backed with huge pages, from ``/proc/self/smaps``; NaN when unknown or not asked).
        ``summary``: ``ns_smallest``, ``ns_largest`` (per access at the smallest and largest size).
    """
    sizes = _check_sizes(sizes_bytes)
    n_access = validate.bounded_int("accesses", accesses, MAX_ACCESSES)
    n_repeat = validate.bounded_int("repeats", repeats, MAX_REPEATS)
    if not isinstance(huge_pages, bool):
        raise TypeError(f"huge_pages must be a bool, got {huge_pages!r}")
    rng = validate.rng_from_seed(seed)
    rows = []
    for size in sizes:
        n = size // ELEMENT_BYTES
        data, mapping, share = _array(n, huge_pages)
        index = rng.integers(0, n, n_access, dtype=np.int64)
        data.take(index)  # warm: fault the pages in and load the caches before timing
        timings = []
        for _ in range(n_repeat):
            started = time.perf_counter()
            data.take(index)
            timings.append(time.perf_counter() - started)
        per_access = np.array(timings) / n_access * 1e9
        rows.append(
            {
                "size_bytes": size,
                "ns_per_access": float(per_access.min()),
                "ns_median": float(np.median(per_access)),
                "huge_pages": huge_pages,
                "huge_page_share": share,
            }
        )
        del data
        if mapping is not None:
            mapping.close()
    frame = pd.DataFrame(rows)
    summary = {
        "ns_smallest": float(frame["ns_per_access"].iloc[0]),
        "ns_largest": float(frame["ns_per_access"].iloc[-1]),
    }
    return Run.create(frame, summary)


def _array(n: int, huge_pages: bool):
    """``np.arange(n, dtype=int32)``, in a 2 MiB-aligned ``MADV_HUGEPAGE`` mapping if asked."""
    if not huge_pages:
        return np.arange(n, dtype=np.int32), None, float("nan")
    import ctypes
    import mmap

    nbytes = n * ELEMENT_BYTES
    length = (nbytes + 2 * HUGE_PAGE_BYTES - 1) // HUGE_PAGE_BYTES * HUGE_PAGE_BYTES
    mapping = mmap.mmap(-1, length, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    address = ctypes.addressof(ctypes.c_char.from_buffer(mapping))
    offset = (-address) % HUGE_PAGE_BYTES
    if hasattr(mmap, "MADV_HUGEPAGE"):
        mapping.madvise(mmap.MADV_HUGEPAGE)
    data = np.frombuffer(mapping, dtype=np.int32, count=n, offset=offset)
    data[:] = np.arange(n, dtype=np.int32)
    return data, mapping, _huge_share(address, length, nbytes)


def _huge_share(address: int, length: int, nbytes: int) -> float:
    """AnonHugePages of the mapping at ``address`` / its size, from /proc/self/smaps (NaN if unknown)."""
    try:
        text = Path("/proc/self/smaps").read_text()
    except OSError:
        return float("nan")
    inside = False
    for line in text.splitlines():
        head = line.split(" ", 1)[0]
        if "-" in head and all(c in "0123456789abcdef-" for c in head):
            start, end = (int(part, 16) for part in head.split("-"))
            inside = start <= address < end
        elif inside and line.startswith("AnonHugePages:"):
            return min(int(line.split()[1]) * 1024 / max(nbytes, 1), 1.0)
    return float("nan")


def tlb_reach_bytes(entries: int = TYPICAL_L1_DTLB_ENTRIES, page_bytes: int = SMALL_PAGE_BYTES) -> int:
    """Memory one TLB level maps without a page walk: ``entries * page_bytes``.

    Parameters
    ----------
    entries : int
        TLB entries (1 to 100,000).
    page_bytes : int
        Page size the entries map (4 KiB, 2 MiB or 1 GiB).

    Returns
    -------
    int
        Bytes.
    """
    count = validate.bounded_int("entries", entries, 100_000)
    page = validate.choice("page_bytes", str(page_bytes), ("4096", str(HUGE_PAGE_BYTES), str(1 << 30)))
    return count * int(page)


def read_tlb_entries(cpuinfo: str | Path = "/proc/cpuinfo") -> int | None:
    """The ``TLB size`` line of ``/proc/cpuinfo`` (AMD reports its L2 TLB there), or None.

    Parameters
    ----------
    cpuinfo : str or Path
        The file to read.

    Returns
    -------
    int or None
        Entries of 4 KiB pages, or None when the kernel does not report it (Intel).
    """
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("TLB size"):
            digits = line.split(":", 1)[1].split()[0]
            return int(digits) if digits.isdigit() else None
    return None


LINE_BYTES = 64  # a cache line on every current x86 and Arm server core
ELEMENTS_PER_LINE = LINE_BYTES // ELEMENT_BYTES


def _single_cycle(n: int, rng: np.random.Generator) -> np.ndarray:
    """A buffer of ``n`` int32 whose entries form one random cycle through the first slot of every line.

    Visiting one element per 64-byte line touches the whole buffer, as lmbench's strided chase does,
    while the permutation is 16 times smaller to build. One cycle through every line means the chase
    can neither fall into a short loop that fits in L1 nor be predicted by the prefetcher.
    """
    lines = max(n // ELEMENTS_PER_LINE, 1)
    order = (rng.permutation(lines) * ELEMENTS_PER_LINE).astype(np.int32)
    following = np.zeros(n, dtype=np.int32)
    following[order] = np.roll(order, -1)
    return following


def measure_pointer_chase(
    sizes_bytes: Sequence[int],
    steps: int = 50_000,
    repeats: int = 3,
    seed: int | np.random.Generator | None = 0,
) -> Run:
    """Time a dependent chain of random loads ``i = buf[i]`` through each working-set size.

    Each load needs the previous one's result, so no two are in flight together: the cost per step
    is the latency of the level the working set lives in, plus CPython's fixed per-step overhead
    (tens of ns, the same at every size; :func:`summarize_chase` subtracts it).

    Parameters
    ----------
    sizes_bytes : sequence of int
        Working-set sizes in bytes (64 B to 1 GiB).
    steps : int
        Dependent loads per timing (1 to ``MAX_STEPS``).
    repeats : int
        Timings per size (1 to ``MAX_REPEATS``); the fastest is kept.
    seed : int, numpy.random.Generator or None
        For the random cycle.

    Returns
    -------
    experiment.Run
        ``frame``: one row per size: ``size_bytes``, ``ns_per_access`` (best of ``repeats``, overhead
        included). ``summary``: ``ns_smallest``, ``ns_largest``.
    """
    sizes = _check_sizes(sizes_bytes)
    n_steps = validate.bounded_int("steps", steps, MAX_STEPS)
    n_repeat = validate.bounded_int("repeats", repeats, MAX_REPEATS)
    rng = validate.rng_from_seed(seed)
    rows = []
    for size in sizes:
        buffer = memoryview(_single_cycle(size // ELEMENT_BYTES, rng))
        position = 0
        for _ in range(min(n_steps, max(size // LINE_BYTES, 1))):  # warm the caches with one pass
            position = buffer[position]
        best = np.inf
        for _ in range(n_repeat):
            started = time.perf_counter()
            for _ in range(n_steps):
                position = buffer[position]
            best = min(best, time.perf_counter() - started)
        rows.append({"size_bytes": size, "ns_per_access": float(best / n_steps * 1e9)})
    frame = pd.DataFrame(rows)
    summary = {
        "ns_smallest": float(frame["ns_per_access"].iloc[0]),
        "ns_largest": float(frame["ns_per_access"].iloc[-1]),
    }
    return Run.create(frame, summary)


def summarize_chase(chase: pd.DataFrame) -> pd.DataFrame:
    """Add ``extra_ns``: the cost above the smallest working set's (the interpreter's share removed).

    Parameters
    ----------
    chase : pandas.DataFrame
        The frame of :func:`measure_pointer_chase`.

    Returns
    -------
    pandas.DataFrame
        The same rows sorted by size, plus ``extra_ns``.
    """
    if not isinstance(chase, pd.DataFrame) or not {"size_bytes", "ns_per_access"} <= set(chase.columns):
        raise TypeError("chase must be a DataFrame from measure_pointer_chase")
    result = chase.sort_values("size_bytes").reset_index(drop=True).copy()
    result["extra_ns"] = result["ns_per_access"] - float(result["ns_per_access"].iloc[0])
    return result


def parse_size_bytes(text: str) -> int:
    """Parse a sysfs cache size such as ``"32K"``, ``"1024K"`` or ``"32M"`` into bytes.

    Parameters
    ----------
    text : str
        A sysfs size (``"32K"``).

    Returns
    -------
    int
        Bytes.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"text must be a size such as '32K', got {text!r}")
    value = text.strip().upper()
    multiplier = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(value[-1], 1)
    digits = value[:-1] if value[-1] in "KMG" else value
    if not digits.isdigit():
        raise ValueError(f"text must be a size such as '32K', got {text!r}")
    return int(digits) * multiplier


def read_os_cache_sizes(cache_dir: str | Path = SYSFS_CACHE_DIR) -> pd.DataFrame:
    """The data and unified caches Linux reports for cpu0 (empty where there is no sysfs).

    Parameters
    ----------
    cache_dir : str or Path
        The sysfs folder of cpu0's caches.

    Returns
    -------
    pandas.DataFrame
        One row per cache: ``level``, ``type``, ``size_bytes``, ``shared_cpu_list`` (``""`` if unreported).
    """
    root = Path(cache_dir)
    rows = []
    if root.is_dir():
        for index in sorted(root.glob("index*")):
            try:
                kind = (index / "type").read_text().strip()
                level = int((index / "level").read_text().strip())
                size = parse_size_bytes((index / "size").read_text())
            except (OSError, ValueError):
                continue
            shared_path = index / "shared_cpu_list"
            shared = shared_path.read_text().strip() if shared_path.exists() else ""
            if kind in ("Data", "Unified"):
                rows.append({"level": level, "type": kind, "size_bytes": size, "shared_cpu_list": shared})
    return pd.DataFrame(rows, columns=["level", "type", "size_bytes", "shared_cpu_list"])


def estimate_cliffs(
    measured: pd.DataFrame,
    min_ratio: float = 1.25,
    max_cliffs: int = 3,
    column: str = "ns_per_access",
    floor_ns: float = 0.0,
) -> pd.DataFrame:
    """Working-set sizes where the access cost jumps: this machine's caches, read off the curve.

    The curve is flat while the working set fits a level and climbs once it no longer does. For each
    step between neighbouring sizes we take the cost ratio; steps whose ratio is at least
    ``min_ratio`` and is the largest in its neighbourhood (so a cliff spread over two steps counts once)
    are cliffs. The estimate of the cache's capacity is the last size *before* the jump.

    ``column`` names the cost to use (``"extra_ns"`` for a pointer chase from :func:`summarize_chase`);
    costs below ``floor_ns`` are raised to it, so noise around zero does not read as a huge ratio.

    Parameters
    ----------
    measured : pandas.DataFrame
        ``size_bytes`` and ``column``.
    min_ratio : float
        Smallest cost ratio between neighbouring sizes that counts as a cliff.
    max_cliffs : int
        At most this many cliffs (the largest).
    column : str
        The cost column.
    floor_ns : float
        Costs below this are raised to it.

    Returns
    -------
    pandas.DataFrame
        ``capacity_estimate_bytes`` (last size before the jump), ``next_size_bytes``, ``cost_ratio``,
        sorted by size, at most ``max_cliffs`` rows (the largest jumps).
    """
    ratio_floor = validate.positive_float("min_ratio", min_ratio)
    limit = validate.positive_int("max_cliffs", max_cliffs)
    floor = validate.non_negative_float("floor_ns", floor_ns)
    if not isinstance(measured, pd.DataFrame) or not {"size_bytes", column} <= set(measured.columns):
        raise TypeError(f"measured must be a DataFrame with size_bytes and {column}")
    curve = measured.sort_values("size_bytes")
    sizes = curve["size_bytes"].to_numpy()
    raw = np.maximum(curve[column].to_numpy(dtype=float), floor)
    if np.any(raw <= 0):
        raise ValueError(f"measured[{column!r}] must be > 0 (or set floor_ns > 0)")
    # A running minimum from the right irons out one-off slow timings (another process's burst).
    cost = np.minimum.accumulate(raw[::-1])[::-1]
    ratios = cost[1:] / cost[:-1]
    found = []
    for k, ratio in enumerate(ratios):
        neighbourhood = ratios[max(0, k - 1) : k + 2]
        if ratio >= ratio_floor and ratio == neighbourhood.max():
            found.append(
                {
                    "capacity_estimate_bytes": int(sizes[k]),
                    "next_size_bytes": int(sizes[k + 1]),
                    "cost_ratio": float(ratio),
                }
            )
    table = pd.DataFrame(found, columns=["capacity_estimate_bytes", "next_size_bytes", "cost_ratio"])
    table = table.astype(
        {"capacity_estimate_bytes": np.int64, "next_size_bytes": np.int64, "cost_ratio": float}
    )
    return table.nlargest(limit, "cost_ratio").sort_values("capacity_estimate_bytes").reset_index(drop=True)


def plot_access_cost(
    measured: pd.DataFrame,
    os_caches: pd.DataFrame | None = None,
    ax: Axes | None = None,
    column: str = "ns_per_access",
    name: str = "random gather",
) -> Axes:
    """Cost per random access against working-set size (log-log), OS-reported cache sizes as lines.

    Parameters
    ----------
    measured : pandas.DataFrame
        ``size_bytes`` and ``column``.
    os_caches : pandas.DataFrame, optional
        :func:`read_os_cache_sizes`, drawn as dashed lines.
    ax : matplotlib Axes, optional
        Where to draw.
    column : str
        The cost column.
    name : str
        Legend label.

    Returns
    -------
    matplotlib.axes.Axes
    """
    if not isinstance(column, str):
        raise TypeError(f"column must be a column name (str), got {column!r}")
    validate.frame_columns("measured", measured, ["size_bytes", column])
    if os_caches is not None:
        validate.frame_columns("os_caches", os_caches, ["level", "size_bytes"])
    ax = axes_or_new(ax)
    ax.plot(measured["size_bytes"] / 1024, measured[column], marker="o", label=name)
    if os_caches is not None:
        for _, cache in os_caches.iterrows():
            ax.axvline(cache["size_bytes"] / 1024, color="0.5", linestyle="--", linewidth=1)
            ax.annotate(
                f"L{cache['level']} {cache['size_bytes'] // 1024} KiB",
                (cache["size_bytes"] / 1024, 1.0),
                xycoords=("data", "axes fraction"),
                rotation=90,
                va="top",
                ha="right",
                fontsize=8,
                color="0.35",
            )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    return label(ax, "working set (KiB)", "time per random access (ns)", legend=True)


def plot_latency_ladder(ladder: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Horizontal log-scale bars of ``latency_ns`` per ``operation``, labelled with source year.

    ``ladder`` needs ``operation``, ``latency_ns``, ``source``, ``year`` and ``kind``; rows are drawn
    fastest at the top, labelled with the source's author and year, coloured by ``kind`` (so a model
    extrapolation is never mistaken for a measurement).

    Parameters
    ----------
    ladder : pandas.DataFrame
        ``syslab.datasets.read_csv("latency_ladder.csv")``.
    ax : matplotlib Axes, optional
        Where to draw.

    Returns
    -------
    matplotlib.axes.Axes
    """
    if not isinstance(ladder, pd.DataFrame) or not {
        "operation",
        "latency_ns",
        "year",
        "kind",
        "source",
    } <= set(ladder.columns):
        raise TypeError("ladder must have columns operation, latency_ns, year, kind, source")
    ax = axes_or_new(ax, figsize=(7.5, 0.38 * len(ladder) + 1.2))
    ordered = ladder.sort_values("latency_ns", ascending=False).reset_index(drop=True)
    kinds = list(dict.fromkeys(ordered["kind"]))
    colours = {kind: f"C{k}" for k, kind in enumerate(kinds)}
    ax.barh(
        np.arange(len(ordered)),
        ordered["latency_ns"],
        color=[colours[k] for k in ordered["kind"]],
    )
    ax.set_yticks(np.arange(len(ordered)))
    ax.set_yticklabels(
        [f"{row.operation} ({row.source.split()[0].rstrip(':')} {row.year})" for row in ordered.itertuples()],
        fontsize=10,
    )
    ax.set_xscale("log")
    for kind, colour in colours.items():
        ax.barh([np.nan], [np.nan], color=colour, label=kind)
    return label(ax, "latency (ns, log scale)", "", legend=True)


def summarize_cliffs(cliffs: pd.DataFrame, candidates: dict) -> pd.DataFrame:
    """Each cliff next to the nearest capacity that could explain it (a cache size or a TLB's reach).

    A cliff at working set W (the last size before the jump, so the true limit lies between W and the
    next size) is attributed to a candidate of size C when ``W / 2 <= C <= 2 * next_size``; the nearest
    on a log scale wins. Several candidates may fit: then the table says so, and only an experiment
    that moves one of them (huge pages move every TLB reach by 512x) decides.

    Parameters
    ----------
    cliffs : pandas.DataFrame
        :func:`estimate_cliffs` output.
    candidates : dict
        Name (``"L2 cache"``, ``"L1 dTLB reach, 4 KiB pages"``) to size in bytes.

    Returns
    -------
    pandas.DataFrame
        ``capacity_estimate_kib``, ``next_size_kib``, ``cost_ratio``, ``nearest`` (name and size, or
        ``"none within 2x"``), ``also_fits`` (other candidates in range, comma-separated).
    """
    frame = validate.frame_columns(
        "cliffs", cliffs, ["capacity_estimate_bytes", "next_size_bytes", "cost_ratio"]
    )
    if not isinstance(candidates, dict) or not all(
        isinstance(k, str) and isinstance(v, int | np.integer) and v > 0 for k, v in candidates.items()
    ):
        raise TypeError("candidates must be a dict of name -> size in bytes (positive int)")
    rows = []
    for cliff in frame.itertuples():
        low, high = cliff.capacity_estimate_bytes / 2, 2 * cliff.next_size_bytes
        middle = np.sqrt(cliff.capacity_estimate_bytes * cliff.next_size_bytes)
        fits = sorted(
            (abs(np.log2(size / middle)), f"{name} ({size // 1024:,} KiB)")
            for name, size in candidates.items()
            if low <= size <= high
        )
        rows.append(
            {
                "capacity_estimate_kib": int(cliff.capacity_estimate_bytes // 1024),
                "next_size_kib": int(cliff.next_size_bytes // 1024),
                "cost_ratio": float(cliff.cost_ratio),
                "nearest": fits[0][1] if fits else "none within 2x",
                "also_fits": ", ".join(text for _, text in fits[1:]),
            }
        )
    return pd.DataFrame(
        rows, columns=["capacity_estimate_kib", "next_size_kib", "cost_ratio", "nearest", "also_fits"]
    )


def plot_hierarchy(
    gather: pd.DataFrame,
    chase: pd.DataFrame,
    os_caches: pd.DataFrame | None = None,
    axes: object | None = None,
) -> np.ndarray:
    """Two stacked panels: random gather per page size (top), pointer chase per step (bottom).

    Parameters
    ----------
    gather : pandas.DataFrame
        :func:`measure_gather` outputs, concatenated, with ``huge_pages`` telling the runs apart.
    chase : pandas.DataFrame
        :func:`measure_pointer_chase` output (``size_bytes``, ``ns_per_access``), drawn as measured
        (interpreter overhead included) on a linear axis, so noise near zero is not magnified.
    os_caches : pandas.DataFrame, optional
        :func:`read_os_cache_sizes`, drawn as dashed lines.
    axes : two Axes, optional
        Where to draw.

    Returns
    -------
    numpy.ndarray of Axes
    """
    from syslab import plot

    data = validate.frame_columns("gather", gather, ["size_bytes", "ns_per_access", "huge_pages"])
    steps = validate.frame_columns("chase", chase, ["size_bytes", "ns_per_access"])
    top, bottom = plot.panels(1, 2, axes)
    for huge, rows in data.groupby("huge_pages"):
        name = "random gather, 2 MiB pages" if huge else "random gather, 4 KiB pages"
        top.plot(rows["size_bytes"] / 1024, rows["ns_per_access"], marker="o", markersize=3, label=name)
    bottom.plot(
        steps["size_bytes"] / 1024, steps["ns_per_access"], marker="o", markersize=3, label="pointer chase"
    )
    for ax in (top, bottom):
        if os_caches is not None:
            for _, cache in os_caches.iterrows():
                if cache["size_bytes"] <= data["size_bytes"].max() * 2:
                    ax.axvline(cache["size_bytes"] / 1024, color="0.5", linestyle="--", linewidth=1)
        ax.axvline(tlb_reach_bytes() / 1024, color="0.5", linestyle=":", linewidth=1)
        ax.set_xscale("log", base=2)
    top.set_yscale("log")
    label(top, "working set (KiB)", "ns per random read", legend=True)
    label(bottom, "working set (KiB)", "ns per dependent step", legend=True)
    return np.array([top, bottom], dtype=object)


TYPICAL_L2_TLB_ENTRIES = 1_536  # second-level (shared) TLB of recent Intel server cores, 4 KiB pages


def cliff_candidates(os_caches: pd.DataFrame, cpuinfo: str | Path = "/proc/cpuinfo") -> dict:
    """Capacities that could explain a cliff: the caches Linux reports and the TLBs' reach.

    Parameters
    ----------
    os_caches : pandas.DataFrame
        :func:`read_os_cache_sizes` output.
    cpuinfo : str or Path
        Where to look for a reported TLB size (:func:`read_tlb_entries`).

    Returns
    -------
    dict
        Name to bytes: ``L<n> cache`` for each reported cache, ``L1 dTLB reach`` (64 entries x 4 KiB),
        ``L2 TLB reach`` (the reported entries, else a typical 1,536) x 4 KiB.
    """
    caches = validate.frame_columns("os_caches", os_caches, ["level", "size_bytes"])
    candidates = {f"L{int(row.level)} cache": int(row.size_bytes) for row in caches.itertuples()}
    candidates["L1 dTLB reach"] = tlb_reach_bytes(TYPICAL_L1_DTLB_ENTRIES)
    reported = read_tlb_entries(cpuinfo)
    name = "L2 TLB reach (reported)" if reported else "L2 TLB reach (typical)"
    candidates[name] = tlb_reach_bytes(reported or TYPICAL_L2_TLB_ENTRIES)
    return candidates
