"""Tests for syslab.lsm: lookups are correct, amplification matches the counting model."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syslab import lsm


def test_seeded_regression():
    tree, events = lsm.build_lsm_tree(
        lsm.LSMConfig(memtable_entries=1000), n_writes=50_000, key_space=20_000, seed=5
    )
    assert (tree.entries_written, tree.disk_entries(), len(events)) == (193227, 20167, 68)
    config = lsm.LSMConfig(policy="tiered", memtable_entries=1000)
    tree, events = lsm.build_lsm_tree(config, n_writes=50_000, key_space=20_000, seed=5)
    assert (tree.entries_written, tree.disk_entries(), len(events)) == (87996, 39248, 55)


@pytest.mark.parametrize("policy", ["leveled", "tiered"])
@pytest.mark.parametrize("n", [37_000, 123_457])
def test_unique_keys_match_counting_model_exactly(policy, n):
    # With no overwrites, merges never shrink runs, so the simulation's write amplification must
    # equal the size-only count exactly (tolerance: floating point only).
    config = lsm.LSMConfig(policy=policy, memtable_entries=1000, size_ratio=4, l0_trigger=2)
    tree, _ = lsm.build_lsm_tree(config, n_writes=n, seed=1)
    model = lsm.theory_amplification(policy, n, 1000, 4, 2)
    assert tree.entries_written / n == pytest.approx(model["write_amp_count"], rel=1e-12)
    assert lsm.summarize_amplification(tree, n)["space_amp"] == 1.0


def test_tiered_write_amp_is_number_of_levels():
    # 300 flushes, T = 10: tiers of 10 and 100 flushes -> every entry written 3 times.
    tree, _ = lsm.build_lsm_tree(
        lsm.LSMConfig(policy="tiered", memtable_entries=1000), n_writes=300_000, seed=2
    )
    assert tree.entries_written / 300_000 == pytest.approx(3.0)


def test_leveled_below_textbook_bound_and_above_tiered():
    n = 200_000
    leveled, _ = lsm.build_lsm_tree(lsm.LSMConfig(memtable_entries=1000), n_writes=n, seed=3)
    tiered, _ = lsm.build_lsm_tree(lsm.LSMConfig(policy="tiered", memtable_entries=1000), n_writes=n, seed=3)
    bound = lsm.theory_amplification("leveled", n, 1000, 10, 4)["write_amp_textbook"]
    assert tiered.entries_written < leveled.entries_written < bound * n


def test_lookups_return_latest_write_and_filters_save_reads():
    config = lsm.LSMConfig(memtable_entries=500, l0_trigger=2, size_ratio=3)
    tree, _ = lsm.build_lsm_tree(config, n_writes=20_000, key_space=5_000, seed=4)
    reads = lsm.simulate_reads(tree, 4_000, 5_000, seed=5)
    # Truth by brute force: replay the same writes into a dict.
    rng = np.random.default_rng(4)
    keys = 2 * rng.integers(0, 5_000, size=20_000, dtype=np.int64)
    latest = {int(k): i for i, k in enumerate(keys)}
    for use_filter, group in reads.groupby("filter"):
        expected = group["key"].map(lambda k: latest.get(int(k), -1))
        assert (group["seqno"].to_numpy() == expected.to_numpy()).all(), use_filter
    by = reads.groupby(["filter", "present"])["block_reads"].mean()
    # Absent keys: without filters one block per overlapping run; with 10 bits/key ~1% of that.
    assert by[(False, False)] >= 1.0
    assert by[(True, False)] < 0.05 * by[(False, False)]
    # Present keys with filters: one block read plus ~1% per newer run.
    assert 1.0 <= by[(True, True)] < 1.1


@settings(max_examples=15, deadline=None)
@given(
    writes=st.lists(st.integers(0, 300), min_size=1, max_size=400),
    policy=st.sampled_from(["leveled", "tiered"]),
)
def test_property_latest_value_wins(writes, policy):
    tree = lsm.LSMTree(lsm.LSMConfig(policy=policy, memtable_entries=7, size_ratio=2, l0_trigger=2))
    tree.put_many(np.array(writes) * 2)
    tree.flush()
    latest = {2 * k: i for i, k in enumerate(writes)}
    asked = np.arange(0, 602)
    got = tree.get_many(asked)["seqno"].to_numpy()
    assert list(got) == [latest.get(int(k), -1) for k in asked]


def test_bad_input():
    with pytest.raises(ValueError, match="policy"):
        lsm.LSMConfig(policy="fifo-ish")
    with pytest.raises(ValueError, match="size_ratio"):
        lsm.LSMConfig(size_ratio=1)
    with pytest.raises(ValueError, match="n_writes"):
        lsm.build_lsm_tree(n_writes=0)
    with pytest.raises(TypeError, match="config"):
        lsm.LSMTree(config="leveled")
    with pytest.raises(ValueError, match="live_keys"):
        lsm.summarize_amplification(lsm.LSMTree(), 0)


def test_sweep_and_plots():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweep = lsm.sweep_size_ratio([2, 8], n_writes=20_000, memtable_entries=500, seed=1)
    assert list(sweep.columns) == ["policy", "size_ratio", "write_amp", "space_amp", "mean_runs"]
    tiered = sweep[sweep["policy"] == "tiered"].set_index("size_ratio")
    # Tiered: a larger T means fewer rewrites but more runs to consult.
    assert tiered.loc[8, "write_amp"] < tiered.loc[2, "write_amp"]
    assert tiered.loc[8, "mean_runs"] > tiered.loc[2, "mean_runs"]
    ax = lsm.plot_size_ratio_sweep(sweep)
    _, events = lsm.build_lsm_tree(lsm.LSMConfig(memtable_entries=500), n_writes=5_000, seed=1)
    lsm.plot_amplification({"leveled": events}, ax=None)
    plt.close("all")
    assert ax.get_xlabel() == "size ratio T"


def test_bounds_on_sizes():
    # bad-input reproducers: these ran for minutes or returned nonsense.
    tree = lsm.LSMTree(lsm.LSMConfig())
    with pytest.raises(ValueError, match="level"):
        tree.level_capacity(10**12)
    with pytest.raises(ValueError, match="level"):
        tree.level_capacity(-1)
    with pytest.raises(ValueError, match="n_writes"):
        lsm.build_lsm_tree(n_writes=10**12)
    with pytest.raises(ValueError, match="n_lookups"):
        lsm.simulate_reads(tree, 10**12, 10)
    with pytest.raises(ValueError, match="n_writes"):
        lsm.measure_rocksdb(n_writes=10**12)
    with pytest.raises(ValueError, match="timeout_s"):
        lsm.measure_rocksdb(n_writes=10_000, key_space=100, timeout_s=10**6)


def test_steady_state_theory():
    # 1 TiB over a 256 MiB base level with T = 10: 256 MiB, 2.5 GiB, 25 GiB, 250 GiB, 2.5 TiB.
    assert lsm.theory_levels(2**40, 256 * 2**20, 10) == 5
    assert lsm.theory_levels(100, 256, 10) == 1
    assert lsm.theory_leveled_write_amp(10, 5) == 42.0
    assert lsm.theory_leveled_write_amp(10, 1) == 2.0


@pytest.mark.real
def test_rocksdb_counts_flush_and_compaction_bytes():
    run = lsm.measure_rocksdb(n_writes=300_000, key_space=100_000, n_checkpoints=4, n_lookups=2000, seed=3)
    summary = run.summary
    assert (
        summary["rocksdb_version"] != "unknown" and run.environment["rocksdb"] == summary["rocksdb_version"]
    )
    # Every user byte reaches the WAL (same counter) and is flushed at least once. RocksDB counts
    # the write-batch encoding too (a type byte and two length varints per record).
    last = run.frame.iloc[-1]
    assert last["wal_bytes"] == last["user_bytes"] == pytest.approx(300_000 * (8 + 100), rel=0.05)
    assert last["flush_bytes"] > 0.3 * last["user_bytes"]
    # 100,000 keys (10 MiB, more than a memtable) overwritten 3 times: compaction has run.
    assert last["compact_bytes"] > 0 and summary["write_amp"] > 1.0
    segments = run.frame["write_amp_segment"]
    assert summary["write_amp_first_segment"] == segments.iloc[0]
    assert summary["write_amp_later_segments"] == pytest.approx(segments.iloc[2:].median())
    # The filter: ~1% false positives at 10 bits/key (generous bounds), and far fewer block reads.
    assert 0.2 < summary["false_positive_pct"] < 3.0
    assert summary["block_reads_per_lookup_filter"] < 0.3 * summary["block_reads_per_lookup_no_filter"]


def test_bad_input_names_the_parameter():
    tree, _ = lsm.build_lsm_tree(lsm.LSMConfig(memtable_entries=100), n_writes=1000, key_space=300, seed=1)
    reads = lsm.simulate_reads(tree, 100, 300, seed=1)
    with pytest.raises(ValueError, match="reads"):
        lsm.summarize_amplification(tree, lsm.live_keys(tree), reads.iloc[:0])
    with pytest.raises(ValueError, match="ascending"):
        lsm.SortedRun(np.array([5, 3, 1]), np.array([0, 1, 2]), 16, 10.0)
    with pytest.raises(ValueError, match="block_entries"):
        lsm.SortedRun(np.array([1, 3, 5]), np.array([0, 1, 2]), 0, 10.0)
    with pytest.raises(TypeError, match="tree"):
        lsm.live_keys(None)
    with pytest.raises(TypeError, match="events"):
        lsm.plot_amplification(None)
    with pytest.raises(ValueError, match="df"):
        lsm.plot_size_ratio_sweep(__import__("pandas").DataFrame())
