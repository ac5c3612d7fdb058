"""Tests for syslab.table_swap: the copying rebuild and the online swap under a live writer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from syslab import experiment
from syslab import table_swap as ts


@pytest.mark.real
def test_online_swap_loses_nothing_and_ends_the_outage():
    # 20 keys of headroom and 0.3 s of warm-up: even a writer slowed down by a busy machine
    # uses them up before the cut-over, so the outage always happens.
    config = ts.SwapConfig(
        initial_rows=30_000, chunk_rows=2_000, headroom_ids=20, warmup_s=0.3, after_cutover_s=0.2
    )
    result = ts.run_online_swap(config)
    assert isinstance(result, experiment.Run)
    s = result.summary
    assert s["rows_lost"] == 0 and s["rows_resurrected"] == 0 and s["rows_stale"] == 0
    assert s["rows_found"] == s["rows_expected"]
    # The writer kept writing during the backfill, the old table ran out (the outage),
    # and inserts after the rename got keys past the old limit.
    assert (result.frame["phase"] == "backfill").any()
    assert s["inserts_failed"] > 0
    assert s["max_id_before"] == ts.INT_MAX
    assert s["first_id_after"] == ts.INT_MAX + 1
    assert s["rows_copied"] >= 30_000 - 1_000  # the writer deletes a few
    assert s["n_chunks"] >= 15 and s["max_chunk_ms"] > 0  # 2,000-row chunks
    assert s["writer_ok"] == int((result.frame["outcome"] == "ok").sum())
    assert result.environment["sqlite"]


@pytest.mark.real
def test_no_change_capture_is_caught_by_the_check():
    # Control: without triggers, writes that land behind the backfill are lost. With room
    # to insert during the backfill, hundreds of rows go missing; the check must see it.
    config = ts.SwapConfig(initial_rows=30_000, headroom_ids=50_000, chunk_rows=1_000, change_capture=False)
    s = ts.run_online_swap(config, seed=3).summary
    assert s["rows_lost"] + s["rows_stale"] + s["rows_resurrected"] > 0


@pytest.mark.real
def test_copy_rebuild_needs_twice_the_space():
    table = ts.measure_copy_rebuild((5_000, 10_000, 20_000)).frame
    # Both copies coexist before the DROP: the file peaks at about 2x (1.8..2.2 allows page slack).
    assert table["peak_over_before"].between(1.8, 2.2).all()
    assert (table["seconds"] > 0).all()
    estimate = ts.estimate_rebuild_s(2_147_483_647, table)
    assert estimate > ts.estimate_rebuild_s(1_000_000, table) > 0


def test_bad_input():
    with pytest.raises(ValueError, match="chunk_rows"):
        ts.SwapConfig(chunk_rows=0)
    with pytest.raises(ValueError, match="headroom_ids"):
        ts.SwapConfig(id_limit=1000, initial_rows=900, headroom_ids=200)
    with pytest.raises(ValueError, match="update_fraction"):
        ts.SwapConfig(update_fraction=0.8, delete_fraction=0.5)
    with pytest.raises(ValueError, match="row_counts"):
        ts.measure_copy_rebuild((10,))
    with pytest.raises(ValueError, match="measurements"):
        ts.estimate_rebuild_s(10, pd.DataFrame({"rows": [1], "seconds": [1.0]}))
    with pytest.raises(TypeError, match="config"):
        ts.run_online_swap("fast")


def test_bad_input_reproducers():
    ops = pd.DataFrame(
        {"t_s": [0.0, 1.0], "op": ["insert", "insert"], "outcome": ["ok", "ok"], "phase": ["a", "a"]}
    )
    with pytest.raises(ValueError, match="bin_s"):
        ts.plot_swap_timeline(ops, bin_s=1e-9)
    with pytest.raises(ValueError, match="ops"):
        ts.plot_swap_timeline(ops.iloc[:0])
    with pytest.raises(ValueError, match="measurements"):
        ts.estimate_rebuild_s(1e6, pd.DataFrame({"rows": [1.0, np.nan], "seconds": [1.0, 2.0]}))
    with pytest.raises(ValueError, match="ops"):
        ts.plot_swap_timeline(ops.drop(columns="phase"))
