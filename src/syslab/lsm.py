"""A log-structured merge tree you can watch: memtable, sorted runs, compaction, amplification.

The write-ahead log that makes the memtable durable is real and lives in
:mod:`syslab.wal` (a writer process is crashed and its log replayed). Here:

- **Amplification, simulated.** :class:`LSMTree` keeps integer keys and the
  sequence number of their latest write. Memtables flush to sorted runs, each with
  a sparse index (first key of every block) and a Bloom filter
  (:class:`syslab.bloom.BloomFilter`); compaction is *leveled* (one run per level,
  size ratio T, a full level merges into the next) or *tiered* (up to T runs per
  level merge into one run of the next level). :func:`build_lsm_tree` drives it and
  records one row per flush or compaction; :func:`simulate_reads` counts the blocks a
  point lookup reads with and without filters.

Write amplification here counts entries written to sorted runs (flushes plus
compactions) per entry the user wrote; the WAL adds one more write of every entry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from syslab import experiment, validate
from syslab.bloom import BloomFilter
from syslab.plot import axes_or_new, label

__all__ = [
    "LSMConfig",
    "LSMTree",
    "SortedRun",
    "live_keys",
    "simulate_reads",
    "measure_rocksdb",
    "plot_rocksdb_amplification",
    "plot_amplification",
    "plot_size_ratio_sweep",
    "sweep_size_ratio",
    "build_lsm_tree",
    "summarize_amplification",
    "theory_amplification",
    "theory_leveled_write_amp",
    "theory_levels",
]

POLICIES = ("leveled", "tiered")
MAX_LEVELS = 64
MAX_WRITES = 20_000_000  # the model's writes: ~10 s per 10 M on a 2-core machine
MAX_LOOKUPS = 5_000_000


# =========================================================================== sorted runs


@dataclass
class SortedRun:
    """An immutable sorted run (an SSTable): keys ascending, the seqno of each key's latest write.

    ``index`` holds the first key of every block of ``block_entries`` entries (the sparse
    index, kept in memory); ``bloom`` is built on first use.

    Parameters
    ----------
    keys : numpy.ndarray
        int64 keys, strictly ascending.
    seqnos : numpy.ndarray
        Sequence number of each key's latest write.
    block_entries : int
        Entries per data block.
    bits_per_key : float
        Bloom filter bits per key (0: no filter).
    salt : int
        Salt of the run's Bloom filter.
    """

    keys: np.ndarray
    seqnos: np.ndarray
    block_entries: int
    bits_per_key: float
    salt: int = 0
    index: np.ndarray = field(init=False)
    _bloom: BloomFilter | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if isinstance(self.keys, (str, bytes)) or self.keys is None:
            raise TypeError(f"keys must be an array of integers, got {type(self.keys).__name__}")
        validate.bounded_int("block_entries", self.block_entries, 1_000_000)
        keys = np.asarray(self.keys)
        if keys.ndim != 1 or (keys.size > 1 and not np.all(keys[1:] > keys[:-1])):
            raise ValueError("keys must be a 1-D array in strictly ascending order")
        if len(self.seqnos) != keys.size:
            raise ValueError(f"seqnos must have one entry per key ({keys.size}), got {len(self.seqnos)}")
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
    """An LSM tree's knobs (sizes in entries; multiply by ``entry_bytes`` for bytes).

    Attributes
    ----------
    policy : str
        "leveled" or "tiered".
    memtable_entries : int
        Entries per memtable flush.
    size_ratio : int
        T: level multiplier (leveled) or runs per tier (tiered), 2 to 1,000.
    l0_trigger : int
        L0 runs that trigger a compaction into L1 (leveled).
    block_entries : int
        Entries per data block.
    bits_per_key : float
        Bloom filter bits per key; 0 disables filters (RocksDB's default).
    entry_bytes : int
        Bytes per key-value entry, for reporting sizes.
    """

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

    Parameters
    ----------
    config : LSMConfig, optional
        The knobs; default ``LSMConfig()``.
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
        # An unsorted batch (not a SortedRun: those must be sorted); _merge sorts it.
        stub = SimpleNamespace(keys=keys[::-1], seqnos=seqnos[::-1])
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

        Parameters
        ----------
        level : int
            1 to ``MAX_LEVELS``.

        Returns
        -------
        int
            Entries.
        """
        level = validate.int_in_range("level", level, 1, MAX_LEVELS)
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
        """Every sorted run on disk, newest first (the order a lookup consults them)."""
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
        """Entries stored in sorted runs (live and stale versions)."""
        return sum(len(run) for run in self.runs_newest_first())

    def summary_levels(self) -> pd.DataFrame:
        """One row per level: ``level``, ``runs``, ``entries``, ``size_bytes``."""
        rows = [
            (i, len(runs), sum(len(r) for r in runs), sum(len(r) for r in runs) * self.config.entry_bytes)
            for i, runs in enumerate(self.levels)
        ]
        return pd.DataFrame(rows, columns=["level", "runs", "entries", "size_bytes"])


# =========================================================================== experiments


def build_lsm_tree(
    config: LSMConfig | None = None,
    *,
    n_writes: int = 1_000_000,
    key_space: int | None = None,
    seed: int | np.random.Generator | None = 0,
) -> tuple[LSMTree, pd.DataFrame]:
    """The model tree after ``n_writes`` keys drawn uniformly from ``key_space`` ids (None: all distinct), flushed, and its event log.

    The key written for id ``i`` is ``2 i``.

    Parameters
    ----------
    config : LSMConfig, optional
    n_writes : int
        User writes, 1 to ``MAX_WRITES``.
    key_space : int or None
        Distinct key ids the writes draw from (None: every write a new key).
    seed : int, numpy.random.Generator or None

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
    n = validate.int_in_range("n_writes", n_writes, 1, MAX_WRITES)
    rng = validate.rng_from_seed(seed)
    # Keys are even (2 x a key id) so that odd keys are guaranteed absent yet fall inside
    # every run's key range: a fair test of what a Bloom filter saves.
    if key_space is None:
        keys = 2 * rng.permutation(n).astype(np.int64)
    else:
        space = validate.int_in_range("key_space", key_space, 1, 2**61)
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

    Parameters
    ----------
    tree : LSMTree
    live_keys : int
        Distinct live keys (:func:`live_keys`), >= 1.
    reads : pandas.DataFrame, optional
        :func:`simulate_reads`'s frame (``block_reads``); must not be empty.

    Returns
    -------
    pandas.Series
        ``write_amp`` = entries written to runs / entries the user wrote (add 1 for the WAL);
        ``space_amp`` = entries stored / live keys; ``levels``; ``runs``; ``read_amp`` = mean
        block reads per lookup (when ``reads`` is given).
    """
    validate.instance("tree", tree, LSMTree)
    if reads is not None:
        reads = validate.frame_columns("reads", reads, ["block_reads"])
        if reads.empty:
            raise ValueError("reads must have at least one lookup")
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

    Parameters
    ----------
    policy : str
        "leveled" or "tiered".
    n_entries : int
        Unique keys written, 1 to ``MAX_WRITES``.
    memtable_entries : int
        Entries per flush.
    size_ratio : int
        T, 2 to 1,000.
    l0_trigger : int
        L0 runs before L0 -> L1.

    Returns
    -------
    pandas.Series
        With

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
    n = validate.int_in_range("n_entries", n_entries, 1, MAX_WRITES)
    m = validate.int_in_range("memtable_entries", memtable_entries, 1, MAX_WRITES)
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


def theory_leveled_write_amp(size_ratio: float, n_levels: int) -> float:
    """Steady-state write amplification of leveled compaction with uniform keys, an upper estimate.

    Every byte is written once by the flush and once by the L0 -> base-level compaction; each
    further move into a *full* level rewrites about ``size_ratio`` bytes of it (a file moved
    down overlaps about T files there). Partial overlap (RocksDB's ``kMinOverlappingRatio``
    on skewed keys) and levels that are not full make the real value lower.

    Parameters
    ----------
    size_ratio : float
        T, the level multiplier, 2 to 1,000.
    n_levels : int
        Levels below L0 that hold data, 1 to ``MAX_LEVELS``.

    Returns
    -------
    float
        ``2 + T (n_levels - 1)``; add 1 for the WAL.
    """
    t = validate.float_in_range("size_ratio", size_ratio, 2.0, 1000.0)
    n = validate.int_in_range("n_levels", n_levels, 1, MAX_LEVELS)
    return 2.0 + t * (n - 1)


def theory_levels(database_bytes: float, level_base_bytes: float, size_ratio: float = 10.0) -> int:
    """Levels below L0 a leveled tree of ``database_bytes`` needs: the base level, then T times larger each.

    Parameters
    ----------
    database_bytes : float
        Live data, > 0 and at most 2**60.
    level_base_bytes : float
        Target size of the first level below L0 (RocksDB ``max_bytes_for_level_base``), > 0.
    size_ratio : float
        T, 2 to 1,000.

    Returns
    -------
    int
        1 + ceil(log_T(database_bytes / level_base_bytes)) (1 when the data fits the base level).
    """
    size = validate.float_in_range("database_bytes", database_bytes, 0.0, 2.0**60, low_inclusive=False)
    base = validate.float_in_range("level_base_bytes", level_base_bytes, 0.0, 2.0**60, low_inclusive=False)
    t = validate.float_in_range("size_ratio", size_ratio, 2.0, 1000.0)
    if size <= base:
        return 1
    return 1 + math.ceil(math.log(size / base, t) - 1e-9)


def simulate_reads(
    tree: LSMTree, n_lookups: int, key_space: int, *, seed: int | np.random.Generator | None = 0
) -> pd.DataFrame:
    """Point lookups of present and absent keys, with and without Bloom filters.

    Half the lookups ask for even keys ``2 i``, ``i`` in ``[0, key_space)`` (present if
    written by :func:`build_lsm_tree`), half for odd keys (never written, but inside the key
    range of every run, so only a Bloom filter can rule a run out without reading a block).

    Parameters
    ----------
    tree : LSMTree
    n_lookups : int
        1 to ``MAX_LOOKUPS``.
    key_space : int
        Key ids the lookups draw from.
    seed : int, numpy.random.Generator or None

    Returns
    -------
    pandas.DataFrame
        One row per lookup and filter setting: ``filter`` (bool), ``present`` and the columns
        of :meth:`LSMTree.get_many` (``key``, ``seqno``, ``block_reads``, ...).
    """
    validate.instance("tree", tree, LSMTree)
    n = validate.int_in_range("n_lookups", n_lookups, 1, MAX_LOOKUPS)
    space = validate.int_in_range("key_space", key_space, 1, 2**61)
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
    """Cumulative write amplification against data written, one line per policy.

    Parameters
    ----------
    events : dict of str to pandas.DataFrame
        Policy name to :func:`build_lsm_tree`'s events.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    if not isinstance(events, dict) or not events:
        raise TypeError(f"events must be a non-empty dict of policy to frame, got {type(events).__name__}")
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
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Write and space amplification over size ratios T, for each policy (the same writes each time).

    Parameters
    ----------
    size_ratios : list of int
        T values, each 2 to 1,000 (at most 50 of them).
    policies : tuple of str
        "leveled" and/or "tiered".
    n_writes, key_space, memtable_entries, l0_trigger :
        As for :func:`build_lsm_tree` and :class:`LSMConfig`.
    seed : int, numpy.random.Generator or None

    Returns
    -------
    pandas.DataFrame
        One row per (policy, size_ratio): ``policy``, ``size_ratio``, ``write_amp``,
        ``space_amp`` (final stored entries / live keys), ``mean_runs`` (sorted runs on disk,
        averaged over every flush and compaction: what a lookup without filters must consult).
    """
    ratios = validate.sequence_of_positive_ints("size_ratios", size_ratios)
    if len(ratios) > 50:
        raise ValueError(f"size_ratios must hold at most 50 values, got {len(ratios)}")
    for i, ratio in enumerate(ratios):
        validate.int_in_range(f"size_ratios[{i}]", ratio, 2, 1000)
    if isinstance(policies, (str, bytes)) or not isinstance(policies, (tuple, list)) or not policies:
        raise TypeError(f"policies must be a non-empty tuple of policy names, got {policies!r}")
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
            tree, events = build_lsm_tree(config, n_writes=n_writes, key_space=key_space, seed=base_seed)
            summary = summarize_amplification(tree, live_keys(tree))
            rows.append((policy, t, summary["write_amp"], summary["space_amp"], float(events["runs"].mean())))
    return pd.DataFrame(rows, columns=["policy", "size_ratio", "write_amp", "space_amp", "mean_runs"])


def plot_size_ratio_sweep(df: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Write amplification (solid) and sorted runs a lookup may consult (dashed, right axis) against T.

    Parameters
    ----------
    df : pandas.DataFrame
        :func:`sweep_size_ratio`'s frame.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    df = validate.frame_columns("df", df, ["policy", "size_ratio", "write_amp", "mean_runs"])
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
    """Distinct keys stored in a flushed tree (the live data, for space amplification).

    Parameters
    ----------
    tree : LSMTree

    Returns
    -------
    int
    """
    validate.instance("tree", tree, LSMTree)
    runs = tree.runs_newest_first()
    if not runs:
        return 0
    return int(len(np.unique(np.concatenate([run.keys for run in runs]))))


# =========================================================================== RocksDB, measured

MAX_ROCKSDB_WRITES = 20_000_000  # a 2-core machine loads ~0.2-0.5 M small writes per second from Python
MAX_ROCKSDB_LOOKUPS = 1_000_000
MAX_ROCKSDB_TIMEOUT_S = 600.0
MAX_CHECKPOINTS = 200
_ROCKSDB_COUNTERS = {
    "user_bytes": "rocksdb.bytes.written",
    "wal_bytes": "rocksdb.wal.bytes",
    "flush_bytes": "rocksdb.flush.write.bytes",
    "compact_bytes": "rocksdb.compact.write.bytes",
    "compact_read_bytes": "rocksdb.compact.read.bytes",
    "bloom_useful": "rocksdb.bloom.filter.useful",
    "bloom_positive": "rocksdb.bloom.filter.full.positive",
    "bloom_true_positive": "rocksdb.bloom.filter.full.true.positive",
    "data_block_reads": "rocksdb.block.cache.data.miss",
}


def _rocksdb_counters(statistics: str) -> dict[str, int]:
    """The counters this module reads, from RocksDB's statistics string."""
    import re

    values = {}
    for name, ticker in _ROCKSDB_COUNTERS.items():
        found = re.search(re.escape(ticker) + r" COUNT : (\d+)", statistics)
        values[name] = int(found.group(1)) if found else 0
    return values


def _rocksdb_options(rocksdict, *, bloom_bits_per_key: float, write_buffer_bytes: int, level_base_bytes: int):
    options = rocksdict.Options(raw_mode=True)
    options.create_if_missing(True)
    options.enable_statistics()
    options.set_write_buffer_size(write_buffer_bytes)
    options.set_target_file_size_base(write_buffer_bytes)
    options.set_max_bytes_for_level_base(level_base_bytes)
    # No compression: bytes written then measure entries, as the model counts them.
    options.set_compression_type(rocksdict.DBCompressionType.none())
    table = rocksdict.BlockBasedOptions()
    if bloom_bits_per_key > 0:
        table.set_bloom_filter(bloom_bits_per_key, False)
    options.set_block_based_table_factory(table)
    return options


def measure_rocksdb(
    *,
    n_writes: int = 1_000_000,
    key_space: int = 300_000,
    value_bytes: int = 100,
    bloom_bits_per_key: float = 10.0,
    write_buffer_bytes: int = 2 << 20,
    level_base_bytes: int = 8 << 20,
    n_checkpoints: int = 10,
    n_lookups: int = 5_000,
    timeout_s: float = 60.0,
    seed: int | np.random.Generator | None = 0,
) -> experiment.Run:
    """Write amplification and Bloom-filter counts of real RocksDB (through ``rocksdict``).

    Uniform overwrites of ``key_space`` 8-byte keys (even numbers, big-endian) with
    ``value_bytes``-byte values, in batches of 10,000, with RocksDB's statistics on. At each
    of ``n_checkpoints`` points the counters ``rocksdb.bytes.written`` (user bytes),
    ``rocksdb.flush.write.bytes``, ``rocksdb.compact.write.bytes`` and the property
    ``rocksdb.estimate-pending-compaction-bytes`` (compaction debt) are read (user bytes
    include the write-batch encoding, about 3 bytes per record). Write
    amplification is (flush + compaction bytes) / user bytes; the WAL adds one more write.
    After the load, ``n_lookups`` absent keys (odd numbers, inside every file's key range) are
    read with the filter, then again after reopening the database without a filter policy.
    Compression is off and levels use RocksDB's defaults (dynamic level bytes, T = 10).

    Parameters
    ----------
    n_writes : int
        User writes, 10,000 to ``MAX_ROCKSDB_WRITES``.
    key_space : int
        Distinct keys the writes update, 1 to n_writes.
    value_bytes : int
        Bytes per value, 1 to 65,536.
    bloom_bits_per_key : float
        Bloom filter bits per key (0 to 64; 0 = no filter, RocksDB's default).
    write_buffer_bytes : int
        Memtable size (also the target SST file size), 64 KiB to 256 MiB.
    level_base_bytes : int
        Target size of the first level below L0, at least ``write_buffer_bytes``, at most 4 GiB.
    n_checkpoints : int
        Counter readings during the load, 1 to ``MAX_CHECKPOINTS``.
    n_lookups : int
        Absent-key lookups, 1 to ``MAX_ROCKSDB_LOOKUPS``.
    timeout_s : float
        Limit for the whole experiment, set-up included (0 to ``MAX_ROCKSDB_TIMEOUT_S``].
    seed : int, numpy.random.Generator or None

    Returns
    -------
    experiment.Run
        Frame: one row per checkpoint: ``user_bytes``, ``wal_bytes``, ``flush_bytes``,
        ``compact_bytes``, ``pending_compaction_bytes`` (cumulative bytes),
        ``write_amp`` (cumulative (flush + compaction) / user), ``write_amp_segment`` (the
        same over the segment since the previous checkpoint), ``write_amp_with_debt``
        (segment writes plus the change in pending compaction bytes, over segment user bytes).
        Summary: ``rocksdb_version``, ``user_bytes``, ``live_bytes``, ``write_amp``,
        ``write_amp_first_segment``, ``write_amp_later_segments`` (median of the second half of
        the segments), ``write_amp_last_segment``, ``write_amp_steady_estimate`` (last segment with debt),
        ``pending_compaction_bytes``, ``levels`` (levels holding files), ``level_files``
        (text), ``bloom_useful``, ``bloom_positive``, ``bloom_true_positive``,
        ``false_positive_pct``, ``block_reads_per_lookup_filter``,
        ``block_reads_per_lookup_no_filter``, ``load_s``.
    """
    import os
    import re
    import tempfile
    import time

    import rocksdict

    started = time.monotonic()
    n_writes = validate.int_in_range("n_writes", n_writes, 10_000, MAX_ROCKSDB_WRITES)
    key_space = validate.int_in_range("key_space", key_space, 1, n_writes)
    value_bytes = validate.int_in_range("value_bytes", value_bytes, 1, 65_536)
    bits = validate.float_in_range("bloom_bits_per_key", bloom_bits_per_key, 0.0, 64.0)
    write_buffer_bytes = validate.int_in_range("write_buffer_bytes", write_buffer_bytes, 64 << 10, 256 << 20)
    level_base_bytes = validate.int_in_range(
        "level_base_bytes", level_base_bytes, write_buffer_bytes, 4 << 30
    )
    n_checkpoints = validate.bounded_int("n_checkpoints", n_checkpoints, MAX_CHECKPOINTS)
    n_lookups = validate.bounded_int("n_lookups", n_lookups, MAX_ROCKSDB_LOOKUPS)
    timeout_s = validate.float_in_range(
        "timeout_s", timeout_s, 0.0, MAX_ROCKSDB_TIMEOUT_S, low_inclusive=False
    )
    rng = validate.rng_from_seed(seed)
    deadline = started + timeout_s
    keys = (2 * rng.integers(0, key_space, n_writes, dtype=np.int64)).astype(">u8").tobytes()
    absent = (2 * rng.integers(0, key_space, n_lookups, dtype=np.int64) + 1).astype(">u8").tobytes()
    value = b"v" * value_bytes
    batch = 10_000
    marks = set(np.linspace(0, n_writes, n_checkpoints + 1).astype(int)[1:])
    rows = []
    with tempfile.TemporaryDirectory(prefix="syslab-") as folder:
        path = os.path.join(folder, "db")
        options = _rocksdb_options(
            rocksdict,
            bloom_bits_per_key=bits,
            write_buffer_bytes=write_buffer_bytes,
            level_base_bytes=level_base_bytes,
        )
        db = rocksdict.Rdict(path, options)
        try:
            load_started = time.monotonic()
            done = 0
            while done < n_writes:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"RocksDB load exceeded timeout_s={timeout_s} after {done:,} writes")
                end = min(n_writes, done + batch)
                next_mark = min(m for m in marks if m > done)
                end = min(end, next_mark)
                write_batch = rocksdict.WriteBatch(raw_mode=True)
                for i in range(done, end):
                    write_batch.put(keys[8 * i : 8 * i + 8], value)
                db.write(write_batch)
                done = end
                if done in marks:
                    counters = _rocksdb_counters(options.get_statistics())
                    counters["pending_compaction_bytes"] = int(
                        db.property_int_value("rocksdb.estimate-pending-compaction-bytes") or 0
                    )
                    counters["user_writes"] = done
                    rows.append(counters)
            load_s = time.monotonic() - load_started
            levels_text = db.property_value("rocksdb.levelstats") or ""
            before = _rocksdb_counters(options.get_statistics())
            for i in range(n_lookups):
                db.get(absent[8 * i : 8 * i + 8])
            after = _rocksdb_counters(options.get_statistics())
        finally:
            db.close()
        with open(os.path.join(path, "LOG"), encoding="utf-8", errors="replace") as log:
            found = re.search(r"RocksDB version: (\S+)", log.read(4096))
        version = found.group(1) if found else "unknown"
        if time.monotonic() > deadline:
            raise TimeoutError(f"RocksDB experiment exceeded timeout_s={timeout_s}")
        plain = _rocksdb_options(
            rocksdict,
            bloom_bits_per_key=0,
            write_buffer_bytes=write_buffer_bytes,
            level_base_bytes=level_base_bytes,
        )
        db = rocksdict.Rdict(path, plain)
        try:
            no_filter_before = _rocksdb_counters(plain.get_statistics())
            for i in range(n_lookups):
                db.get(absent[8 * i : 8 * i + 8])
            no_filter_after = _rocksdb_counters(plain.get_statistics())
        finally:
            db.close()
    frame = pd.DataFrame(rows)
    written = frame["flush_bytes"] + frame["compact_bytes"]
    frame["write_amp"] = written / frame["user_bytes"]
    user_step = frame["user_bytes"].diff().fillna(frame["user_bytes"])
    written_step = written.diff().fillna(written)
    debt_step = frame["pending_compaction_bytes"].diff().fillna(frame["pending_compaction_bytes"])
    frame["write_amp_segment"] = written_step / user_step
    frame["write_amp_with_debt"] = (written_step + debt_step) / user_step
    useful = after["bloom_useful"] - before["bloom_useful"]
    positive = after["bloom_positive"] - before["bloom_positive"]
    true_positive = after["bloom_true_positive"] - before["bloom_true_positive"]
    checked = useful + positive - true_positive
    level_rows = [line.split() for line in levels_text.splitlines()[2:] if line.strip()]
    level_files = {int(r[0]): int(r[1]) for r in level_rows if len(r) >= 2 and r[0].isdigit()}
    last = frame.iloc[-1]
    summary = {
        "rocksdb_version": version,
        "rocksdict_version": _package_version("rocksdict"),
        "user_bytes": int(last["user_bytes"]),
        "live_bytes": int(key_space * (8 + value_bytes)),
        "write_amp": float(last["write_amp"]),
        "write_amp_first_segment": float(frame["write_amp_segment"].iloc[0]),
        # The second half of the segments, median: what the load cost once levels were filling
        # (single segments swing with how far background compaction had got at each reading).
        "write_amp_later_segments": float(frame["write_amp_segment"].iloc[len(frame) // 2 :].median()),
        "write_amp_last_segment": float(last["write_amp_segment"]),
        "write_amp_steady_estimate": float(last["write_amp_with_debt"]),
        "pending_compaction_bytes": int(last["pending_compaction_bytes"]),
        "levels": sum(1 for level, files in level_files.items() if level > 0 and files > 0),
        "level_files": ", ".join(f"L{level}: {files}" for level, files in level_files.items() if files),
        "bloom_useful": int(useful),
        "bloom_positive": int(positive),
        "bloom_true_positive": int(true_positive),
        "false_positive_pct": 100.0 * (positive - true_positive) / checked if checked else float("nan"),
        "block_reads_per_lookup_filter": (after["data_block_reads"] - before["data_block_reads"]) / n_lookups,
        "block_reads_per_lookup_no_filter": (
            no_filter_after["data_block_reads"] - no_filter_before["data_block_reads"]
        )
        / n_lookups,
        "load_s": float(load_s),
    }
    return experiment.Run.create(frame, summary, rocksdb=version, rocksdict=summary["rocksdict_version"])


def _package_version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:  # pragma: no cover
        return "unknown"


def plot_rocksdb_amplification(
    run_frame: pd.DataFrame,
    model_events: pd.DataFrame | None = None,
    ax: Axes | None = None,
    *,
    entry_bytes: int = 108,
) -> Axes:
    """RocksDB's write amplification as the load grows: cumulative, per segment, and the model's.

    Parameters
    ----------
    run_frame : pandas.DataFrame
        :func:`measure_rocksdb`'s frame (``user_bytes``, ``write_amp``, ``write_amp_segment``,
        ``write_amp_with_debt``).
    model_events : pandas.DataFrame, optional
        :func:`build_lsm_tree`'s events for the same load (``user_writes``, ``entries_written``).
    ax : matplotlib.axes.Axes, optional
    entry_bytes : int
        Bytes per model entry, to put the model on the same x axis.

    Returns
    -------
    matplotlib.axes.Axes
    """
    run_frame = validate.frame_columns(
        "run_frame", run_frame, ["user_bytes", "write_amp", "write_amp_segment", "write_amp_with_debt"]
    )
    ax = axes_or_new(ax)
    mib = run_frame["user_bytes"] / 2**20
    ax.plot(mib, run_frame["write_amp"], "o-", label="RocksDB, cumulative")
    ax.plot(mib, run_frame["write_amp_segment"], "s--", label="RocksDB, per segment")
    ax.plot(mib, run_frame["write_amp_with_debt"], "^:", label="RocksDB, segment + debt")
    if model_events is not None:
        model_events = validate.frame_columns(
            "model_events", model_events, ["user_writes", "entries_written"]
        )
        ax.plot(
            model_events["user_writes"] * entry_bytes / 2**20,
            model_events["entries_written"] / model_events["user_writes"].clip(lower=1),
            color="0.4",
            label="model (leveled), cumulative",
        )
    ax.legend(fontsize=8)
    return label(ax, "user bytes written (MiB)", "write amplification")
