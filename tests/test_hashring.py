"""Tests for syslab.hashring: rings, jump hash, rendezvous, bounded loads, Redis slots, range splits."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syslab import engines, hashing, hashring


def jump_reference(key: int, n: int) -> int:
    """Lamping & Veach's published loop, in plain Python integers (the reference)."""
    b, j = -1, 0
    while j < n:
        b = j
        key = (key * 2862933555777941757 + 1) % 2**64
        j = int((b + 1) * (float(1 << 31) / float((key >> 33) + 1)))
    return b


# ----------------------------------------------------------------- exact / known values


def test_redis_keyslot_known_values_from_redis_docs():
    # CRC16("123456789") = 0x31C3 is the check value in Redis's src/crc16.c; the keyslots
    # are the examples of the cluster specification (hash tags, empty tag).
    assert hashring.crc16_xmodem(b"123456789") == 0x31C3
    assert hashring.redis_keyslot("foo") == 12182
    assert hashring.redis_keyslot("{user1000}.following") == 3443
    assert hashring.redis_keyslot("{user1000}.followers") == 3443
    assert hashring.redis_keyslot("foo{}{bar}") == hashring.crc16_xmodem("foo{}{bar}") % 16384 == 8363
    assert hashring.redis_keyslot("foo{{bar}}zap") == hashring.redis_keyslot("{bar")
    assert hashring.redis_keyslot("foo{bar}{zap}") == hashring.redis_keyslot("bar")


def test_redis_keyslots_vectorised_matches_scalar():
    keys = ["foo", "{user1000}.following", "foo{}{bar}", "", "x{}", "a{b}c", "user:12345", "{}"]
    expected = [hashring.redis_keyslot(k) for k in keys]
    assert hashring.redis_keyslots(keys).tolist() == expected


def test_jump_hash_matches_reference_loop():
    hashes = hashring.key_hashes(500, salt=3)
    for n in (1, 2, 7, 100, 1000):
        expected = [jump_reference(int(h), n) for h in hashes]
        assert hashring.jump_hash(hashes, n).tolist() == expected
    # Small keys from the paper's own C code run through the Python reference.
    assert hashring.jump_hash(np.array([0, 1, 0xDEADBEEF], dtype=np.uint64), 1000).tolist() == [
        jump_reference(0, 1000),
        jump_reference(1, 1000),
        jump_reference(0xDEADBEEF, 1000),
    ]


def test_seeded_regression_values():
    # key_hashes keeps its published values after moving to syslab.hashing: key 0 with salt 0 is
    # mix64(0 ^ mix64(0)) = mix64(SplitMix64's first output for seed 0).
    assert int(hashring.key_hashes(1)[0]) == int(hashing.mix64(np.uint64(0xE220A8397B1DCDAF)))
    failure = hashring.simulate_failure(10, 1, n_keys=100_000)
    assert int(failure["received"].max()) == int(failure.loc[0, "keys_before"])


def test_ring_loads_equals_bincount_of_owners():
    hashes = hashring.key_hashes(50_000, salt=9)
    ring = hashring.build_ring([4, 11, 2], vnodes=13, seed=5)
    owners = hashring.ring_owner(ring, hashes)
    expected = np.bincount(owners, minlength=12)[[2, 4, 11]]
    assert hashring.ring_loads(ring, np.sort(hashes)).tolist() == expected.tolist()


# ------------------------------------------------------------------------- vs theory


def test_load_cv_matches_beta_theory_and_h_n():
    # 200 rings per V: the RMS CV has a relative standard error of about 2 %, so 8 % is a
    # 4-sigma band; the 1/sqrt(V) rule is 10 % off at V=1 and fails it there.
    n_keys = 200_000
    raw = hashring.simulate_load_spread(10, [1, 10, 100, 1000], n_keys=n_keys, n_seeds=200)
    summary = hashring.summarize_load_spread(raw, 10, n_keys=n_keys).set_index("vnodes")
    ratio = summary["cv_rms"] / summary["cv_theory"]
    assert ratio.between(0.92, 1.08).all(), ratio
    assert abs(summary.loc[1, "cv_rms"] - 1.0) > 0.05  # the rule of thumb is not the exact answer
    # One token per node: E[max/mean] = H_10 = 2.929 (largest of N uniform spacings).
    h_10 = hashring.theory_max_over_mean_one_token(10)
    assert summary.loc[1, "max_over_mean"] == pytest.approx(h_10, rel=0.08)


def test_dead_node_one_token_goes_to_one_successor_many_tokens_spread():
    one = hashring.simulate_failure(10, 1, n_keys=200_000)
    many = hashring.simulate_failure(10, 100, n_keys=200_000)
    dead_keys = int(one.loc[0, "keys_before"])
    assert int(one["received"].max()) == dead_keys  # the whole range lands on one node
    assert int((many["received"] > 0).sum()) == 9
    assert many["received"].max() / many.loc[0, "keys_before"] < 0.3
    assert one["moved_between_survivors"].sum() == 0 and many["moved_between_survivors"].sum() == 0


def test_remap_fractions_against_theory():
    # 200k keys: binomial standard error of a 9 % fraction is 0.06 %; the ring's own
    # token placement adds a few per cent relative, hence 15 % relative for the ring.
    table = hashring.remap_table(10, 11, n_keys=200_000).set_index("method")
    assert table.loc["jump", "moved_fraction"] == pytest.approx(1 / 11, rel=0.03)
    assert table.loc["rendezvous", "moved_fraction"] == pytest.approx(1 / 11, rel=0.03)
    assert table.loc["ring", "moved_fraction"] == pytest.approx(1 / 11, rel=0.15)
    assert table.loc["mod", "moved_fraction"] == pytest.approx(10 / 11, rel=0.01)
    for method in ("ring", "jump", "rendezvous"):
        assert table.loc[method, "moved_to_new_nodes"] == 1.0


def test_rollout_misrouting_follows_one_minus_f_times_moved():
    df = hashring.simulate_rollout(10, "jump", n_requests=200_000, n_steps=5)
    err = (df["misrouted_fraction"] - df["misrouted_theory"]).abs()
    assert err.max() < 0.005  # binomial SE at 9 % and 200k is 0.0006
    assert df["misrouted_fraction"].iloc[-1] == 0.0


def test_bounded_loads_cap_max_at_c():
    df = hashring.simulate_skewed_load(n_keys=20_000, n_requests=200_000, factors=(1.25, 1.1))
    peak = df.groupby("scheme")["load_over_mean"].max()
    assert peak["plain ring"] > 1.5
    # ceil() of the capacity adds at most one request per node above c x mean.
    assert peak["bounded c=1.25"] <= 1.25 + 1e-3
    assert peak["bounded c=1.1"] <= 1.1 + 1e-3
    assert df.groupby("scheme")["requests"].sum().nunique() == 1  # no request lost


def test_range_splits_and_scan_cost():
    keys = np.sort(np.concatenate([np.linspace(0, 12, 12_000, endpoint=False), np.full(10, 5.5)]))
    ranges = hashring.split_ranges(keys, np.arange(13), max_keys=400)
    assert ranges["n_keys"].sum() == keys.size
    assert ranges["n_keys"].max() <= 400
    assert (ranges["start_key"].iloc[1:].to_numpy() == ranges["end_key"].iloc[:-1].to_numpy()).all()
    touched = hashring.partitions_touched(ranges, 3.0, 3.1, 16)
    assert touched["range_partitions"] <= 2 and touched["hash_partitions"] == 16


def test_theory_moved_fraction_mod():
    assert hashring.theory_moved_fraction("mod", 10, 11) == pytest.approx(10 / 11)
    assert hashring.theory_moved_fraction("ring", 10, 11) == pytest.approx(1 / 11)
    assert hashring.theory_moved_fraction("jump", 11, 10) == pytest.approx(1 / 11)


# ------------------------------------------------------------------------- properties


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=1, max_value=60), st.integers(min_value=0, max_value=2**20))
def test_jump_growth_moves_keys_only_to_the_new_bucket(n, salt):
    hashes = hashring.key_hashes(300, salt=salt)
    before = hashring.jump_hash(hashes, n)
    after = hashring.jump_hash(hashes, n + 1)
    assert ((before == after) | (after == n)).all()
    assert before.min() >= 0 and before.max() < n


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=2, max_value=12), st.integers(min_value=1, max_value=20), st.integers(0, 1000))
def test_ring_removal_moves_only_the_dead_nodes_keys(n, vnodes, seed):
    hashes = hashring.key_hashes(500, salt=seed)
    before = hashring.ring_owner(hashring.build_ring(n, vnodes, seed), hashes)
    after = hashring.ring_owner(hashring.build_ring(list(range(1, n)), vnodes, seed), hashes)
    assert ((before == after) | (before == 0)).all()


@settings(max_examples=30, deadline=None)
@given(st.text(max_size=20))
def test_keyslot_in_range_and_tag_respected(text):
    slot = hashring.redis_keyslot(text)
    assert 0 <= slot < 16384
    if text and "{" not in text and "}" not in text:
        assert hashring.redis_keyslot("{" + text + "}:suffix") == slot


# ------------------------------------------------------------------------- bad input


def test_bad_inputs_name_the_parameter():
    with pytest.raises(ValueError, match="vnodes"):
        hashring.build_ring(3, 0)
    with pytest.raises(ValueError, match="nodes"):
        hashring.build_ring([1, 1])
    with pytest.raises(ValueError, match="n_buckets"):
        hashring.jump_hash(np.arange(3, dtype=np.uint64), 0)
    with pytest.raises(ValueError, match="method"):
        hashring.owners("maglev", np.arange(3, dtype=np.uint64), 3)
    with pytest.raises(ValueError, match="c must be"):
        hashring.bounded_load_assign(hashring.build_ring(2), np.arange(2, dtype=np.uint64), [1, 1], 1.0)
    with pytest.raises(ValueError, match="max_keys"):
        hashring.split_ranges(np.arange(5.0), [0, 10], 0)
    with pytest.raises(ValueError, match="sorted_keys"):
        hashring.split_ranges(np.array([2.0, 1.0]), [0, 10], 5)
    with pytest.raises(TypeError, match="key"):
        hashring.redis_keyslot(12)
    with pytest.raises(ValueError, match="n_nodes"):
        hashring.simulate_failure(1, 1)
    with pytest.raises(TypeError, match="hashes"):
        hashring.ring_owner(hashring.build_ring(3), np.array([1.5]))
    with pytest.raises(TypeError, match="hashes"):
        hashring.owners("ring", None, 5)
    with pytest.raises(TypeError, match="weights"):
        ring = hashring.build_ring(3)
        hashring.bounded_load_assign(ring, hashring.key_hashes(3), None, 1.25)
    with pytest.raises(TypeError, match="vnodes"):
        hashring.theory_load_cv(5, None)
    with pytest.raises(TypeError, match="vnodes"):
        hashring.theory_load_cv(5, float("nan"))
    with pytest.raises(ValueError, match="boundaries"):
        hashring.split_ranges(np.arange(5.0), [0, float("nan")], 2)
    with pytest.raises(ValueError, match="sorted_keys"):
        hashring.split_ranges(np.array([0.0, np.nan]), [0, 10], 2)
    with pytest.raises(TypeError, match="tokens"):
        hashring.Ring(tokens=None, token_node=np.array([0]), nodes=(0,), vnodes=1)
    with pytest.raises(TypeError, match="factors"):
        hashring.simulate_skewed_load(factors=None)
    with pytest.raises(ValueError, match="n_requests"):
        hashring.simulate_rollout(5, n_requests=0)


def test_ring_loads_refuses_unsorted_hashes():
    ring = hashring.build_ring(5, 10)
    hashes = np.sort(hashring.key_hashes(1000))
    assert hashring.ring_loads(ring, hashes).sum() == 1000
    with pytest.raises(ValueError, match="sorted_hashes must be sorted"):
        hashring.ring_loads(ring, hashes[::-1])


@pytest.mark.parametrize(
    "call",
    [
        lambda: hashring.key_hashes(10**12),
        lambda: hashring.build_ring(10**12),
        lambda: hashring.build_ring(5, 10**12),
        lambda: hashring.build_ring(1000, 10_000),
        lambda: hashring.rendezvous_owner(hashring.key_hashes(10), 10**12),
        lambda: hashring.theory_max_over_mean_one_token(10**12),
        lambda: hashring.simulate_load_spread(5, [1, 10], n_seeds=10**12),
        lambda: hashring.simulate_slot_skew(n_keys=10**12),
        lambda: hashring.fat_month_events(n_months=10**12),
        lambda: hashring.zipf_requests(10**12, 10, 1.0),
        lambda: hashring.remap_table(5, 10**12),
        lambda: hashring.measure_lookup_speed(n_nodes=10**12),
    ],
)
def test_huge_sizes_are_refused_with_the_bound(call):
    with pytest.raises(ValueError, match=r"at most|must be in \["):
        call()


@pytest.mark.real
def test_python_hash_differs_between_processes_stable_hash_does_not():
    run = hashring.run_hash_in_fresh_processes("user:42", n_processes=3)
    table = run.frame
    assert table["stable_hash"].nunique() == 1 == run.summary["distinct_stable_hashes"]
    assert int(table["stable_hash"].iloc[0]) == hashing.stable_hash64_str("user:42")
    # PYTHONHASHSEED=random: three equal 64-bit salted hashes would be a 2**-128 coincidence.
    assert table["python_hash"].nunique() >= 2


@pytest.mark.real
def test_cluster_keyslot_of_a_real_redis_agrees_on_many_keys_hash_tags_included():
    redis = engines.find("redis", cluster=True)
    if redis is None:
        pytest.skip(engines.unavailable_reason("redis"))
    rng = np.random.default_rng(16)
    keys = [f"user:{i}" for i in range(2000)]
    keys += [f"{{tenant{t}}}:order:{i}" for i, t in enumerate(rng.integers(0, 500, 2000))]
    # Edge cases of the tag rule: empty tag, unclosed brace, two tags, braces only, bytes.
    keys += ["{}", "{}x", "x{}y", "{", "}", "a{b", "{a}{b}", "{{a}}", "a}b{c}", "", "{user1000}.following"]
    keys += [bytes(rng.integers(0, 256, 12, dtype=np.uint8)) for _ in range(500)]
    run = hashring.measure_cluster_keyslots(redis, keys)
    assert run.summary["keys"] == len(keys)
    assert run.summary["mismatches"] == 0
    assert run.summary["tagged_keys"] >= 2000
    assert run.environment["engine_settings"].get("cluster-enabled") == "yes"


def test_redis_keyslot_command_doc_examples():
    # CLUSTER KEYSLOT examples in the Redis command documentation.
    assert hashring.redis_keyslot("somekey") == 11058
    assert hashring.redis_keyslot("foo{hash_tag}") == hashring.redis_keyslot("bar{hash_tag}") == 2515


def test_ring_changes_over_many_rings_match_the_order_statistics():
    # 400 rings of N = 10 with one token per node.
    frame = hashring.sweep_ring_changes(10, [1], n_keys=100_000, replications=400, seed=11)
    # Joining: the new node's arc share is Beta(1, N) with mean 1/(N+1) = 0.0909; 400 rings give a
    # standard error of 0.004 (4.4 %), so 13 % is 3 SE -- and "1/N" (0.1) sits at the band's edge.
    assert frame["moved_share"].mean() == pytest.approx(1 / 11, rel=0.13)
    # Failing: the successor gains the dead arc, so its growth is the ratio of two exchangeable
    # spacings: median exactly 100 %; 400 rings put the sample median within [74 %, 135 %] (3 SE).
    assert 74 < frame["successor_growth_pct"].median() < 135
    assert (frame["top_receiver_share"] == 1).all()
    # Heavy tail: the 95th percentile is many times the median (a single ring proves nothing).
    assert frame["successor_growth_pct"].quantile(0.95) > 5 * frame["successor_growth_pct"].median()
