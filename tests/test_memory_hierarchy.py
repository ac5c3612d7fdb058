"""Tests for syslab.memory_hierarchy: parsing, cliff detection on synthetic curves, a real sweep."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syslab import memory_hierarchy as mh


def test_parse_size_bytes():
    assert mh.parse_size_bytes("32K") == 32 * 1024
    assert mh.parse_size_bytes("1024K\n") == 1 << 20
    assert mh.parse_size_bytes("32M") == 32 << 20
    assert mh.parse_size_bytes("512") == 512


@pytest.mark.parametrize("bad", ["", "K", "3.5M", "lots"])
def test_parse_size_bytes_rejects(bad):
    with pytest.raises(ValueError, match="text"):
        mh.parse_size_bytes(bad)


def test_default_sizes_are_doublings():
    sizes = mh.default_sizes_bytes(4096, 1 << 20, per_octave=1)
    assert sizes == [4096 * 2**k for k in range(9)]


def test_read_os_cache_sizes_from_fake_sysfs(tmp_path):
    for index, (level, kind, size) in enumerate(
        [(1, "Data", "48K"), (1, "Instruction", "32K"), (2, "Unified", "2048K")]
    ):
        folder = tmp_path / f"index{index}"
        folder.mkdir()
        (folder / "level").write_text(f"{level}\n")
        (folder / "type").write_text(f"{kind}\n")
        (folder / "size").write_text(f"{size}\n")
    table = mh.read_os_cache_sizes(tmp_path)
    # Instruction caches are left out: data never lives there.
    assert table["size_bytes"].tolist() == [48 * 1024, 2 << 20]
    assert mh.read_os_cache_sizes(tmp_path / "missing").empty


def _staircase(capacities_bytes, costs_ns, sizes):
    cost = np.full(len(sizes), float(costs_ns[0]))
    for capacity, level_cost in zip(capacities_bytes, costs_ns[1:], strict=True):
        cost[np.asarray(sizes) > capacity] = level_cost
    return pd.DataFrame({"size_bytes": sizes, "ns_per_access": cost})


def test_estimate_cliffs_finds_a_synthetic_hierarchy():
    # A three-level staircase (32 KiB, 1 MiB, 32 MiB) with 10% noise: the estimator must put each
    # capacity within one doubling of the truth, the resolution of the sweep.
    sizes = mh.default_sizes_bytes(4096, 256 << 20, per_octave=1)
    curve = _staircase([32 << 10, 1 << 20, 32 << 20], [1.0, 3.0, 12.0, 80.0], sizes)
    rng = np.random.default_rng(3)
    curve["ns_per_access"] *= rng.uniform(1.0, 1.1, len(curve))
    cliffs = mh.estimate_cliffs(curve)
    assert cliffs["capacity_estimate_bytes"].tolist() == [32 << 10, 1 << 20, 32 << 20]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0.5, 500.0), min_size=3, max_size=20))
def test_estimate_cliffs_properties(costs):
    sizes = [4096 * 2**k for k in range(len(costs))]
    cliffs = mh.estimate_cliffs(pd.DataFrame({"size_bytes": sizes, "ns_per_access": costs}))
    assert len(cliffs) <= 3
    assert (cliffs["cost_ratio"] >= 1.25).all()
    assert set(cliffs["capacity_estimate_bytes"]) <= set(sizes)


def test_flat_curve_has_no_cliff():
    sizes = mh.default_sizes_bytes(4096, 1 << 20)
    assert mh.estimate_cliffs(pd.DataFrame({"size_bytes": sizes, "ns_per_access": 2.0})).empty


def test_bad_inputs():
    with pytest.raises(ValueError, match="sizes_bytes"):
        mh.measure_gather([16])
    with pytest.raises(ValueError, match="sizes_bytes"):
        mh.measure_gather([2 << 30])
    with pytest.raises(ValueError, match="accesses"):
        mh.measure_gather([4096], accesses=0)
    with pytest.raises(ValueError, match="largest_bytes"):
        mh.default_sizes_bytes(8192, 4096)
    with pytest.raises(TypeError, match="measured"):
        mh.estimate_cliffs("curve")
    with pytest.raises(ValueError, match="min_ratio"):
        mh.estimate_cliffs(pd.DataFrame({"size_bytes": [1], "ns_per_access": [1.0]}), min_ratio=0)


def test_single_cycle_visits_every_line():
    # 1,600 int32 = 100 cache lines: the chase must visit the first element of each exactly once
    # before coming back to where it started.
    following = mh._single_cycle(1600, np.random.default_rng(1))
    position, seen = 0, set()
    for _ in range(100):
        seen.add(position)
        position = int(following[position])
    assert seen == set(range(0, 1600, 16)) and position == 0


@pytest.mark.real
def test_real_sweep_memory_beyond_caches_is_slower():
    # On any machine a random access to 64 MiB (beyond every L2, and beyond most L3 slices a VM gets)
    # costs more than one into 16 KiB (inside every L1). A factor 1.5 leaves room for noisy neighbours.
    gather = mh.measure_gather([16 << 10, 64 << 20], accesses=1 << 18, repeats=3, seed=1).frame
    assert gather["ns_per_access"].iloc[1] > 1.5 * gather["ns_per_access"].iloc[0]
    chase = mh.summarize_chase(mh.measure_pointer_chase([16 << 10, 64 << 20], steps=50_000, seed=1).frame)
    assert chase["extra_ns"].iloc[1] > 0


def test_estimate_cliffs_on_a_chase_column_with_floor():
    sizes = mh.default_sizes_bytes(4096, 64 << 20, per_octave=1)
    curve = _staircase([32 << 10, 1 << 20, 32 << 20], [0.0, 4.0, 12.0, 90.0], sizes).rename(
        columns={"ns_per_access": "extra_ns"}
    )
    cliffs = mh.estimate_cliffs(curve, column="extra_ns", floor_ns=1.0)
    assert cliffs["capacity_estimate_bytes"].tolist() == [32 << 10, 1 << 20, 32 << 20]
    with pytest.raises(ValueError, match="extra_ns"):
        mh.estimate_cliffs(curve, column="extra_ns")


def test_bad_input_reproducers_are_refused():
    from syslab import memory_hierarchy as m

    with pytest.raises(ValueError, match="repeats"):
        m.measure_gather([4096, 65536], accesses=4096, repeats=10**12)
    with pytest.raises(ValueError, match="steps"):
        m.measure_pointer_chase([4096, 65536], steps=10**12)
    with pytest.raises(ValueError, match="repeats"):
        m.measure_pointer_chase([4096, 65536], steps=2000, repeats=10**12)
    with pytest.raises(ValueError, match="per_octave"):
        m.default_sizes_bytes(4096, 1 << 20, per_octave=10**12)
    with pytest.raises(TypeError, match="huge_pages"):
        m.measure_gather([4096], accesses=1024, huge_pages="yes")


def test_cliffs_are_read_against_caches_and_tlb_reach():
    from syslab import memory_hierarchy as m

    cliffs = pd.DataFrame(
        {
            "capacity_estimate_bytes": [256 << 10, 8 << 20],
            "next_size_bytes": [512 << 10, 16 << 20],
            "cost_ratio": [1.5, 2.0],
        }
    )
    candidates = {"L2 cache": 1 << 20, "L1 dTLB reach": m.tlb_reach_bytes(64), "L3 cache": 300 << 20}
    table = m.summarize_cliffs(cliffs, candidates)
    assert table.loc[0, "nearest"].startswith("L1 dTLB reach")  # 256 KiB = 64 x 4 KiB
    assert table.loc[0, "also_fits"].startswith("L2 cache")
    assert table.loc[1, "nearest"] == "none within 2x"  # nothing near 8-16 MiB: not a cache level
    assert m.tlb_reach_bytes(32, 2 << 20) == 64 << 20
    with pytest.raises(ValueError, match="page_bytes"):
        m.tlb_reach_bytes(64, 8192)


@pytest.mark.real
def test_huge_page_gather_runs():
    from syslab import memory_hierarchy as m

    frame = m.measure_gather([1 << 20, 8 << 20], accesses=1 << 14, repeats=2, huge_pages=True).frame
    assert frame["huge_pages"].all() and (frame["ns_per_access"] > 0).all()
    share = frame["huge_page_share"]
    assert share.isna().all() or ((share >= 0) & (share <= 1)).all()
