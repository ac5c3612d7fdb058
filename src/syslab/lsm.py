"""A log-structured merge tree you can watch: memtable, sorted runs, compaction, amplification.

The write-ahead log that makes the memtable durable is real and lives in
:mod:`syslab.wal` (a writer process is crashed and its log replayed). Here:

- **Amplification, simulated.** :class:`LSMTree` keeps integer keys and the
  sequence number of their latest write. Memtables flush to sorted runs, each with
  a sparse index (first key of every block) and a Bloom filter
  (:class:`syslab.bloom.BloomFilter`); compaction is *leveled* (one run per level,
  size ratio T, a full level merges into the next) or *tiered* (up to T runs per
  level merge into one run of the next level). :func:`simulate_lsm` drives it and
  records one row per flush or compaction; :func:`measure_reads` counts the blocks a
  point lookup reads with and without filters.

Write amplification here counts entries written to sorted runs (flushes plus
compactions) per entry the user wrote; the WAL adds one more write of every entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from syslab import validate
from syslab.bloom import BloomFilter
from syslab.plot import axes_or_new, label

__all__ = [
    "LSMConfig",
    "LSMTree",
    "SortedRun",
    "live_keys",
    "measure_reads",
    "plot_amplification",
    "plot_size_ratio_sweep",
    "sweep_size_ratio",
    "simulate_lsm",
    "summarize_amplification",
    "theory_amplification",
]

POLICIES = ("leveled", "tiered")


# =========================================================================== sorted runs


@dataclass
class SortedRun:
    """An immutable sorted run (an SSTable): keys ascending, the seqno of each key's latest write.

    ``index`` holds the first key of every block of ``block_entries`` entries (the sparse
    index, kept in memory); ``bloom`` is built on first use.
    """

    keys: np.ndarray
    seqnos: np.ndarray
    block_entries: int
    bits_per_key: float
    salt: int = 0
    index: np.ndarray = field(init=False)
    _bloom: BloomFilter | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.index = self.keys[:: self.block_entries]

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def bloom(self) -> BloomFilter | None:
        if self.bits_per_key <= 0:
            return None
        if self._bloom is None:
            self._bloom = BloomFilter.for_keys(self.keys, self.bits_per_key, salt=self.salt)
        return self._bloom

    def lookup(self, keys: np.ndarray, use_filter: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Look ``keys`` up: (found mask, seqnos where found, block_read mask)."""
        in_range = (keys >= self.keys[0]) & (keys <= self.keys[-1])
        candidates = in_range.copy()
        if use_filter and self.bloom is not None and candidates.any():
            candidates[candidates] = self.bloom.contains(keys[candidates])
        # One block read per candidate: the sparse index names the only block that could hold it.
        block = np.searchsorted(self.index, keys, side="right") - 1
        start = np.clip(block, 0, None) * self.block_entries
        pos = np.searchsorted(self.keys, keys)
        pos_clipped = np.minimum(pos, len(self.keys) - 1)
        found = candidates & (self.keys[pos_clipped] == keys) & (pos >= start)
        return found, np.where(found, self.seqnos[pos_clipped], -1), candidates


def _merge(runs: list[SortedRun], config: LSMConfig, salt: int) -> SortedRun:
    """Merge runs given newest first, keeping the newest version of each key."""
    keys = np.concatenate([r.keys for r in runs])
    seqnos = np.concatenate([r.seqnos for r in runs])
    # A stable sort keeps the newest-first order among equal keys; sorted inputs make it cheap.
    order = np.argsort(keys, kind="stable")
    keys, seqnos = keys[order], seqnos[order]
    first = np.ones(len(keys), dtype=bool)
    first[1:] = keys[1:] != keys[:-1]
    return SortedRun(keys[first], seqnos[first], config.block_entries, config.bits_per_key, salt)


# =========================================================================== the tree


@dataclass(frozen=True)
class LSMConfig:
    """An LSM tree's knobs (sizes in entries; multiply by ``entry_bytes`` for bytes)."""

    policy: str = "leveled"  # "leveled" or "tiered"
    memtable_entries: int = 10_000  # entries per memtable flush (RocksDB: write_buffer_size, 64 MiB)
    size_ratio: int = 10  # T: level multiplier (leveled) or runs per tier (tiered)
    l0_trigger: int = 4  # L0 runs that trigger a compaction into L1 (leveled only)
    block_entries: int = 16  # entries per data block (4 KiB blocks of 256-byte entries)
    bits_per_key: float = 10.0  # Bloom filter bits per key; 0 disables filters (RocksDB's default)
    entry_bytes: int = 256  # bytes per key-value entry, for reporting sizes

    def __post_init__(self) -> None:
        validate.choice("policy", self.policy, POLICIES)
        validate.positive_int("memtable_entries", self.memtable_entries)
        validate.int_in_range("size_ratio", self.size_ratio, 2, 1000)
        validate.positive_int("l0_trigger", self.l0_trigger)
        validate.positive_int("block_entries", self.block_entries)
        validate.non_negative_float("bits_per_key", self.bits_per_key)
        validate.positive_int("entry_bytes", self.entry_bytes)


class LSMTree:
    """An LSM tree over integer keys (values are the sequence number of the write).

    ``levels[0]`` is L0 (a list of runs, newest first); for leveled compaction each
    deeper level holds at most one run, for tiered up to ``size_ratio`` runs.
    """

    def __init__(self, config: LSMConfig | None = None) -> None:
        self.config = config if config is not None else LSMConfig()
        if not isinstance(self.config, LSMConfig):
            raise TypeError(f"config must be an LSMConfig, got {type(config).__name__}")
        self.levels: list[list[SortedRun]] = [[]]
        self.memtable_keys: list[np.ndarray] = []
        self.memtable_size = 0
        self.next_seqno = 0
        self.user_writes = 0
        self.entries_written = 0
        self.events: list[tuple] = []
        self._salt = 0

    # ----------------------------------------------------------------- writes
    def put_many(self, keys: np.ndarray) -> None:
        """Write ``keys`` in order; the memtable flushes whenever it holds ``memtable_entries`` writes."""
        keys = np.asarray(keys, dtype=np.int64)
        cap = self.config.memtable_entries
        start = 0
        while start < len(keys):
            take = min(cap - self.memtable_size, len(keys) - start)
            self.memtable_keys.append(keys[start : start + take])
            self.memtable_size += take
            start += take
            self.user_writes += take
            if self.memtable_size >= cap:
                self.flush()

    def _memtable_run(self) -> SortedRun | None:
        if self.memtable_size == 0:
            return None
        keys = np.concatenate(self.memtable_keys)
        seqnos = np.arange(self.next_seqno, self.next_seqno + len(keys), dtype=np.int64)
        # newest first, so _merge keeps the last write of each key
        self._salt += 1
        stub = SortedRun(keys[::-1], seqnos[::-1], 1, 0.0)
        return _merge([stub], self.config, self._salt)

    def flush(self) -> None:
        """Write the memtable as a new L0 run, then compact while any level is over its limit."""
        run = self._memtable_run()
        if run is None:
            return
        written_now = self.memtable_size
        self.next_seqno += self.memtable_size
        self.memtable_keys, self.memtable_size = [], 0
        self.levels[0].insert(0, run)
        self._record("flush", -1, 0, written_now, len(run))
        self._compact()

    def _record(self, kind: str, source: int, target: int, entries_in: int, entries_out: int) -> None:
        self.entries_written += entries_out
        self.events.append(
            (
                len(self.events),
                kind,
                source,
                target,
                entries_in,
                entries_out,
                self.user_writes,
                self.entries_written,
                self.disk_entries(),
                len(self.runs_newest_first()),
            )
        )

    def level_capacity(self, level: int) -> int:
        """Leveled: entries level ``level`` >= 1 may hold, ``memtable x l0_trigger x T^(level-1)``.

        As in RocksDB, where max_bytes_for_level_base (256 MiB) = level0_file_num_compaction_trigger
        (4) x write_buffer_size (64 MiB): L1 is about as big as a full L0.
        """
        c = self.config
        return c.memtable_entries * c.l0_trigger * c.size_ratio ** (level - 1)

    def _compact(self) -> None:
        c = self.config
        for _ in range(10_000):  # bounded: each pass merges something or stops
            if c.policy == "tiered":
                full = next((i for i, runs in enumerate(self.levels) if len(runs) >= c.size_ratio), None)
                if full is None:
                    return
                self._merge_into(full, full + 1, self.levels[full])
            else:
                if len(self.levels[0]) >= c.l0_trigger:
                    self._merge_into(0, 1, self.levels[0])
                    continue
                over = next(
                    (
                        i
                        for i in range(1, len(self.levels))
                        if self.levels[i] and len(self.levels[i][0]) > self.level_capacity(i)
                    ),
                    None,
                )
                if over is None:
                    return
                self._merge_into(over, over + 1, self.levels[over])
        raise RuntimeError("compaction did not converge")  # pragma: no cover

    def _merge_into(self, source: int, target: int, runs: list[SortedRun]) -> None:
        while len(self.levels) <= target:
            self.levels.append([])
        self._salt += 1
        if self.config.policy == "leveled":
            inputs = list(runs) + list(self.levels[target])  # source is newer than target
            merged = _merge(inputs, self.config, self._salt)
            self.levels[target] = [merged]
        else:
            inputs = list(runs)
            merged = _merge(inputs, self.config, self._salt)
            self.levels[target].insert(0, merged)
        self.levels[source] = []
        self._record("compaction", source, target, sum(len(r) for r in inputs), len(merged))

    # ----------------------------------------------------------------- reads
    def runs_newest_first(self) -> list[SortedRun]:
        return [run for level in self.levels for run in level]

    def get_many(self, keys: np.ndarray, *, use_filter: bool = True) -> pd.DataFrame:
        """Point lookups (after the memtable, which the caller should flush first).

        Returns one row per key: ``key``, ``seqno`` (-1 if absent), ``runs_checked``
        (runs whose key range covered the key), ``block_reads`` (data blocks read).
        """
        keys = np.asarray(keys, dtype=np.int64)
        seqno = np.full(len(keys), -1, dtype=np.int64)
        pending = np.ones(len(keys), dtype=bool)
        runs_checked = np.zeros(len(keys), dtype=np.int64)
        block_reads = np.zeros(len(keys), dtype=np.int64)
        for run in self.runs_newest_first():
            idx = np.flatnonzero(pending)
            if idx.size == 0:
                break
            sub = keys[idx]
            runs_checked[idx] += (sub >= run.keys[0]) & (sub <= run.keys[-1])
            found, values, read = run.lookup(sub, use_filter)
            block_reads[idx] += read
            seqno[idx[found]] = values[found]
            pending[idx[found]] = False
        return pd.DataFrame(
            {"key": keys, "seqno": seqno, "runs_checked": runs_checked, "block_reads": block_reads}
        )

    def disk_entries(self) -> int:
        return sum(len(run) for run in self.runs_newest_first())

    def summary_levels(self) -> pd.DataFrame:
        """One row per level: ``level``, ``runs``, ``entries``, ``size_bytes``."""
        rows = [
            (i, len(runs), sum(len(r) for r in runs), sum(len(r) for r in runs) * self.config.entry_bytes)
            for i, runs in enumerate(self.levels)
        ]
        return pd.DataFrame(rows, columns=["level", "runs", "entries", "size_bytes"])


# =========================================================================== experiments


def simulate_lsm(
    config: LSMConfig | None = None,
    *,
    n_writes: int = 1_000_000,
    key_space: int | None = None,
    seed: object = 0,
) -> tuple[LSMTree, pd.DataFrame]:
    """Write ``n_writes`` keys drawn uniformly from ``key_space`` ids (None: all distinct) and flush.

    The key written for id ``i`` is ``2 i``.

    Returns
    -------
    (tree, events)
        ``events`` has one row per flush or compaction: ``event``, ``kind``,
        ``source_level`` (-1 for the memtable), ``target_level``, ``entries_in``,
        ``entries_out``, ``user_writes`` (so far), ``entries_written`` (so far, all
        flushes and compactions), ``disk_entries`` (entries stored after the event), ``runs``
        (sorted runs on disk after the event).
    """
    config = config if config is not None else LSMConfig()
    n = validate.positive_int("n_writes", n_writes)
    rng = validate.rng_from_seed(seed)
    # Keys are even (2 x a key id) so that odd keys are guaranteed absent yet fall inside
    # every run's key range: a fair test of what a Bloom filter saves.
    if key_space is None:
        keys = 2 * rng.permutation(n).astype(np.int64)
    else:
        space = validate.positive_int("key_space", key_space)
        keys = 2 * rng.integers(0, space, size=n, dtype=np.int64)
    tree = LSMTree(config)
    tree.put_many(keys)
    tree.flush()
    columns = [
        "event",
        "kind",
        "source_level",
        "target_level",
        "entries_in",
        "entries_out",
        "user_writes",
        "entries_written",
        "disk_entries",
        "runs",
    ]
    return tree, pd.DataFrame(tree.events, columns=columns)


def summarize_amplification(tree: LSMTree, live_keys: int, reads: pd.DataFrame | None = None) -> pd.Series:
    """Write, space (and optionally read) amplification of a tree.

    ``write_amp`` = entries written to runs / entries the user wrote (add 1 for the WAL);
    ``space_amp`` = entries stored / live keys; ``read_amp`` = mean block reads per lookup.
    """
    live = validate.positive_int("live_keys", live_keys)
    result = {
        "write_amp": tree.entries_written / max(tree.user_writes, 1),
        "space_amp": tree.disk_entries() / live,
        "levels": len(tree.levels) - 1,
        "runs": len(tree.runs_newest_first()),
    }
    if reads is not None:
        result["read_amp"] = float(reads["block_reads"].mean())
    return pd.Series(result)


def theory_amplification(
    policy: str, n_entries: int, memtable_entries: int, size_ratio: int, l0_trigger: int = 4
) -> pd.Series:
    """Amplification estimates for ``n_entries`` unique keys written into an LSM.

    Returns a Series with

    - ``levels``: levels below L0 that the data needs (leveled: capacity of level i is
      ``memtable x l0_trigger x T^(i-1)``; tiered: tiers of T runs);
    - ``write_amp_count``: entries written per user entry by counting sizes only -- the same
      flush and merge rules as :class:`LSMTree` applied to run *lengths*, no keys. For unique
      keys the simulation must match it exactly; overwrites make the simulation lower;
    - ``write_amp_textbook``: the usual closed forms, ``1 + T x levels`` for leveled (every level
      rewritten up to T times, an upper bound) and ``1 + levels`` for tiered;
    - ``space_amp_upper``: leveled ``1 / (1 - 1/T)`` (the upper levels, 1/T of the data, all
      stale copies); tiered ``T`` (a full tier of runs all holding the same keys).
    """
    policy = validate.choice("policy", policy, POLICIES)
    n = validate.positive_int("n_entries", n_entries)
    m = validate.positive_int("memtable_entries", memtable_entries)
    t = validate.int_in_range("size_ratio", size_ratio, 2, 1000)
    l0 = validate.positive_int("l0_trigger", l0_trigger)
    flushes = [m] * (n // m) + ([n % m] if n % m else [])
    written = 0
    if policy == "tiered":
        tiers: list[list[int]] = [[]]
        for size in flushes:
            written += size
            tiers[0].append(size)
            level = 0
            while level < len(tiers) and len(tiers[level]) >= t:
                if level + 1 == len(tiers):
                    tiers.append([])
                merged = sum(tiers[level])
                written += merged
                tiers[level + 1].append(merged)
                tiers[level] = []
                level += 1
        levels = max(len(tiers) - 1, 1) if any(tiers[1:]) else 1
        return pd.Series(
            {
                "levels": levels,
                "write_amp_count": written / n,
                "write_amp_textbook": float(1 + levels),
                "space_amp_upper": float(t),
            }
        )
    level0: list[int] = []
    sizes = [0]  # sizes[i] = entries in level i (index 0 unused)
    for size in flushes:
        written += size
        level0.append(size)
        if len(level0) < l0:
            continue
        if len(sizes) < 2:
            sizes.append(0)
        written += sum(level0) + sizes[1]
        sizes[1] += sum(level0)
        level0 = []
        i = 1
        while i < len(sizes):
            if sizes[i] > m * l0 * t ** (i - 1):
                if i + 1 == len(sizes):
                    sizes.append(0)
                written += sizes[i] + sizes[i + 1]
                sizes[i + 1] += sizes[i]
                sizes[i] = 0
            i += 1
    levels = len(sizes) - 1
    return pd.Series(
        {
            "levels": max(levels, 1),
            "write_amp_count": written / n,
            "write_amp_textbook": float(1 + t * max(levels, 1)),
            "space_amp_upper": 1.0 / (1.0 - 1.0 / t),
        }
    )


def measure_reads(tree: LSMTree, n_lookups: int, key_space: int, *, seed: object = 0) -> pd.DataFrame:
    """Point lookups of present and absent keys, with and without Bloom filters.

    Half the lookups ask for even keys ``2 i``, ``i`` in ``[0, key_space)`` (present if
    written by :func:`simulate_lsm`), half for odd keys (never written, but inside the key
    range of every run, so only a Bloom filter can rule a run out without reading a block).
    Returns one row per lookup with ``filter`` (bool), ``present`` and the columns of
    :meth:`LSMTree.get_many`.
    """
    n = validate.positive_int("n_lookups", n_lookups)
    space = validate.positive_int("key_space", key_space)
    rng = validate.rng_from_seed(seed)
    tree.flush()
    asked = np.concatenate([2 * rng.integers(0, space, n // 2), 2 * rng.integers(0, space, n - n // 2) + 1])
    frames = []
    for use_filter in (False, True):
        df = tree.get_many(asked, use_filter=use_filter)
        df["filter"] = use_filter
        df["present"] = df["seqno"] >= 0
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def plot_amplification(events: dict[str, pd.DataFrame], ax: Axes | None = None) -> Axes:
    """Cumulative write amplification against data written, one line per policy."""
    ax = axes_or_new(ax)
    for name, df in events.items():
        ax.plot(df["user_writes"], df["entries_written"] / df["user_writes"].clip(lower=1), label=name)
    ax.set_xscale("log")
    return label(
        ax, "entries written by the user", "write amplification (run writes / user writes)", legend=True
    )


def sweep_size_ratio(
    size_ratios: list[int],
    policies: tuple[str, ...] = POLICIES,
    *,
    n_writes: int = 500_000,
    key_space: int | None = None,
    memtable_entries: int = 10_000,
    l0_trigger: int = 4,
    seed: object = 0,
) -> pd.DataFrame:
    """Write and space amplification over size ratios T, for each policy (the same writes each time).

    Returns
    -------
    pandas.DataFrame
        One row per (policy, size_ratio): ``policy``, ``size_ratio``, ``write_amp``,
        ``space_amp`` (final stored entries / live keys), ``mean_runs`` (sorted runs on disk,
        averaged over every flush and compaction: what a lookup without filters must consult).
    """
    ratios = validate.sequence_of_positive_ints("size_ratios", size_ratios)
    for policy in policies:
        validate.choice("policies", policy, POLICIES)
    rng = validate.rng_from_seed(seed)
    base_seed = int(rng.integers(0, 2**31))
    rows = []
    for policy in policies:
        for t in ratios:
            config = LSMConfig(
                policy=policy, memtable_entries=memtable_entries, size_ratio=t, l0_trigger=l0_trigger
            )
            tree, events = simulate_lsm(config, n_writes=n_writes, key_space=key_space, seed=base_seed)
            summary = summarize_amplification(tree, live_keys(tree))
            rows.append((policy, t, summary["write_amp"], summary["space_amp"], float(events["runs"].mean())))
    return pd.DataFrame(rows, columns=["policy", "size_ratio", "write_amp", "space_amp", "mean_runs"])


def plot_size_ratio_sweep(df: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Write amplification (solid) and sorted runs a lookup may consult (dashed, right axis) against T."""
    ax = axes_or_new(ax)
    right = ax.twinx()
    for policy, group in df.groupby("policy"):
        group = group.sort_values("size_ratio")
        (line,) = ax.plot(group["size_ratio"], group["write_amp"], "o-", label=f"{policy}: write amp")
        right.plot(
            group["size_ratio"],
            group["mean_runs"],
            "s--",
            color=line.get_color(),
            label=f"{policy}: runs",
        )
    right.set_ylabel("sorted runs on disk (mean)")
    handles = ax.get_legend_handles_labels()
    extra = right.get_legend_handles_labels()
    ax.legend(handles[0] + extra[0], handles[1] + extra[1], loc="center right")
    return label(ax, "size ratio T", "write amplification (run writes / user writes)")


def live_keys(tree: LSMTree) -> int:
    """Distinct keys stored in a flushed tree (the live data, for space amplification)."""
    runs = tree.runs_newest_first()
    if not runs:
        return 0
    return int(len(np.unique(np.concatenate([run.keys for run in runs]))))
