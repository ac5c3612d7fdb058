"""Consistent hashing and its hotspots: rings, jump hash, rendezvous, bounded loads, slots, ranges.

Everything here is vectorised with numpy so a chapter can place a million keys
on a ring in well under a second:

- **hashing** -- :func:`syslab.hashing.mix64` (the SplitMix64 finaliser) and
  :func:`syslab.hashing.stable_hash64_str` give the same value on every machine and
  every run, unlike Python's salted ``hash()``; :func:`key_hashes` hashes key ids;
- **placement** -- a ring with virtual nodes (:func:`build_ring`,
  :func:`ring_owner`), jump consistent hash (:func:`jump_hash`, Lamping & Veach
  2014), rendezvous / highest-random-weight hashing (:func:`rendezvous_owner`),
  plain ``mod N`` (:func:`mod_owner`), and bounded-load consistent hashing
  (:func:`bounded_load_assign`, Mirrokni, Thorup & Zadimoghaddam 2016);
- **Redis Cluster** -- CRC16/XMODEM and the 16384-slot keyslot function with
  hash tags (:func:`crc16_xmodem`, :func:`redis_keyslot`, :func:`redis_keyslots`),
  held against a real server's ``CLUSTER KEYSLOT`` (:func:`measure_cluster_keyslots`);
- **range partitioning** -- size-based splits of a key range (:func:`split_ranges`);
- **simulate / theory / plot** -- load spread against virtual nodes, a dead
  node, remapping on resize, two ring generations during a deploy, skewed keys.

Units are in the names; loads are counts of keys or requests.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from syslab import experiment, hashing, timing, validate
from syslab.hashing import mix64
from syslab.plot import axes_or_new, label
from syslab.processes import ChildProcess

__all__ = [
    "plot_ranges",
    "simulate_slot_skew",
    "run_hash_in_fresh_processes",
    "measure_cluster_keyslots",
    "measure_lookup_speed",
    "MAX_KEYS",
    "MAX_NODES",
    "MAX_TOKENS",
    "fat_month_events",
    "JUMP_MULTIPLIER",
    "REDIS_SLOTS",
    "Ring",
    "bounded_load_assign",
    "build_ring",
    "crc16_xmodem",
    "jump_hash",
    "key_hashes",
    "mod_owner",
    "owners",
    "partitions_touched",
    "plot_load_spread",
    "plot_misrouted",
    "plot_node_loads",
    "redis_hash_tag",
    "redis_keyslot",
    "redis_keyslots",
    "remap_table",
    "rendezvous_owner",
    "ring_loads",
    "ring_owner",
    "simulate_failure",
    "simulate_load_spread",
    "simulate_rollout",
    "simulate_skewed_load",
    "sweep_ring_changes",
    "split_ranges",
    "summarize_load_spread",
    "theory_load_cv",
    "theory_max_over_mean_one_token",
    "theory_moved_fraction",
    "zipf_requests",
]

JUMP_MULTIPLIER = 2862933555777941757  # the 64-bit LCG multiplier in Lamping & Veach (2014)
REDIS_SLOTS = 16384  # Redis Cluster hash slots (cluster-spec; 4096 before commit ebd666d)
METHODS = ("ring", "jump", "rendezvous", "mod")

# Bounds: what a 2-core machine does within a chapter's 30 s (arrays of 8-byte hashes).
MAX_KEYS = 5_000_000  # keys or requests hashed at once (40 MB of uint64)
MAX_NODES = 10_000  # nodes in a cluster
MAX_VNODES = 10_000  # tokens per node
MAX_TOKENS = 2_000_000  # nodes x tokens on one ring
MAX_RENDEZVOUS_NODES = 2_000  # rendezvous scores every node for every key
MAX_SEEDS = 1_000  # rings per point in a load-spread simulation
MAX_STRING_KEYS = 1_000_000  # keys built as Python strings (slots)
MAX_MONTHS = 10_000


def _hashes(name: str, hashes: object) -> np.ndarray:
    """``hashes`` as a 1-D uint64 array of at most ``MAX_KEYS`` non-negative integers."""
    if hashes is None or isinstance(hashes, (str, bytes)):
        raise TypeError(f"{name} must be an array of non-negative integers, got {type(hashes).__name__}")
    array = np.asarray(hashes)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers (uint64 hashes), got dtype {array.dtype}")
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size > MAX_KEYS:
        raise ValueError(f"{name} must hold at most {MAX_KEYS:,} hashes, got {array.size:,}")
    if array.dtype.kind == "i" and array.size and int(array.min()) < 0:
        raise ValueError(f"{name} must be >= 0")
    return array.astype(np.uint64, copy=False)


def _ring(name: str, ring: object) -> Ring:
    return validate.instance(name, ring, Ring)


# ------------------------------------------------------------------------------ hashing


def key_hashes(n_keys: int, salt: int = 0) -> np.ndarray:
    """64-bit hashes of the integer keys ``0 .. n_keys-1``.

    Parameters
    ----------
    n_keys : int
        How many keys, 1 to ``MAX_KEYS``.
    salt : int
        Which independent set of hashes (>= 0).

    Returns
    -------
    numpy.ndarray
        uint64 array ``mix64(key ^ mix64(salt))`` (:func:`syslab.hashing.mix64`).
    """
    n = validate.bounded_int("n_keys", n_keys, MAX_KEYS)
    salt = validate.int_in_range("salt", salt, 0, hashing.MAX_SALT)
    return mix64(np.arange(n, dtype=np.uint64) ^ mix64(salt))


# --------------------------------------------------------------------------------- ring


@dataclass(frozen=True)
class Ring:
    """A consistent-hash ring: sorted token positions and the node that owns each.

    Attributes
    ----------
    tokens : numpy.ndarray
        uint64 positions on the ring, sorted ascending.
    token_node : numpy.ndarray
        int array: the node id owning each token.
    nodes : tuple of int
        The node ids on the ring.
    vnodes : int
        Virtual nodes (tokens) per node.
    """

    tokens: np.ndarray
    token_node: np.ndarray
    nodes: tuple[int, ...]
    vnodes: int

    def __post_init__(self) -> None:
        tokens = _hashes("tokens", self.tokens)
        if tokens.size == 0 or tokens.size > MAX_TOKENS:
            raise ValueError(f"tokens must hold 1 to {MAX_TOKENS:,} positions, got {tokens.size:,}")
        if np.any(tokens[1:] < tokens[:-1]):
            raise ValueError("tokens must be sorted ascending")
        if self.token_node is None or isinstance(self.token_node, (str, bytes)):
            raise TypeError(f"token_node must be an array of node ids, got {type(self.token_node).__name__}")
        token_node = np.asarray(self.token_node)
        if token_node.dtype.kind not in "iu" or token_node.shape != tokens.shape:
            raise ValueError("token_node must be integer node ids, one per token")
        nodes = tuple(_node_ids("nodes", list(self.nodes) if isinstance(self.nodes, tuple) else self.nodes))
        if not set(token_node.tolist()) <= set(nodes):
            raise ValueError("token_node must only name nodes in nodes")
        vnodes = validate.bounded_int("vnodes", self.vnodes, MAX_VNODES)
        object.__setattr__(self, "tokens", tokens)
        object.__setattr__(self, "token_node", token_node.astype(np.int64))
        object.__setattr__(self, "nodes", nodes)
        object.__setattr__(self, "vnodes", vnodes)


def build_ring(
    nodes: int | Iterable[int], vnodes: int = 1, seed: int | np.random.Generator | None = 0
) -> Ring:
    """Place ``vnodes`` tokens per node on a 64-bit ring.

    Token j of node i sits at ``mix64(mix64(i ^ mix64(seed)) + j)``: a node's
    tokens depend only on its own id, so adding or removing a node leaves every
    other token where it was -- the property that makes the ring consistent.

    Parameters
    ----------
    nodes : int or iterable of int
        Either a count N (nodes ``0 .. N-1``) or explicit non-negative node ids.
    vnodes : int
        Tokens per node (1 = the original ring of Karger et al.), 1 to ``MAX_VNODES``;
        nodes x vnodes at most ``MAX_TOKENS``.
    seed : int, numpy Generator or None
        Which ring (a different seed is a different, equally valid, placement); a Generator
        or None draws one.

    Returns
    -------
    Ring
    """
    ids = _node_ids("nodes", nodes)
    v = validate.bounded_int("vnodes", vnodes, MAX_VNODES)
    if len(ids) * v > MAX_TOKENS:
        raise ValueError(f"nodes x vnodes must be at most {MAX_TOKENS:,}, got {len(ids):,} x {v:,}")
    seed = _seed_int(seed)
    node_col = np.repeat(np.asarray(ids, dtype=np.uint64), v)
    vnode_col = np.tile(np.arange(v, dtype=np.uint64), len(ids))
    # Mix twice: XOR-ing one seed constant into already-mixed tokens would give every
    # seed nearly the same ring (the gaps survive), which biased an earlier version.
    with np.errstate(over="ignore"):
        positions = mix64(mix64(node_col ^ mix64(seed)) + vnode_col)
    order = np.argsort(positions, kind="stable")
    return Ring(positions[order], node_col[order].astype(np.int64), tuple(sorted(ids)), v)


def _node_ids(name: str, nodes: object) -> list[int]:
    """A node count N (ids 0..N-1) or explicit distinct non-negative ids, at most ``MAX_NODES``."""
    if isinstance(nodes, (int, np.integer)) and not isinstance(nodes, bool):
        return list(range(validate.bounded_int(name, nodes, MAX_NODES)))
    if isinstance(nodes, (str, bytes)) or not isinstance(nodes, (Sequence, np.ndarray, range, tuple)):
        raise TypeError(f"{name} must be a node count or a sequence of node ids, got {type(nodes).__name__}")
    if len(nodes) > MAX_NODES:
        raise ValueError(f"{name} must hold at most {MAX_NODES:,} nodes, got {len(nodes):,}")
    ids = [validate.non_negative_int(f"{name}[{i}]", n) for i, n in enumerate(nodes)]
    if not ids:
        raise ValueError(f"{name} must not be empty")
    if len(set(ids)) != len(ids):
        raise ValueError(f"{name} must be distinct")
    return ids


def _seed_int(seed: object) -> int:
    """An int ring seed from ``seed`` (an int is used as is, so published rings stay the same)."""
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return validate.non_negative_int("seed", seed)
    return int(validate.rng_from_seed(seed).integers(2**32))


def ring_owner(ring: Ring, hashes: np.ndarray) -> np.ndarray:
    """The node owning each hash: the first token clockwise (at or after it), wrapping round.

    Parameters
    ----------
    ring : Ring
        From :func:`build_ring`.
    hashes : array of uint64
        Key hashes (at most ``MAX_KEYS``).

    Returns
    -------
    numpy.ndarray
        int64 node id per hash.
    """
    ring = _ring("ring", ring)
    h = _hashes("hashes", hashes)
    index = np.searchsorted(ring.tokens, h, side="left") % ring.tokens.size
    return ring.token_node[index]


def jump_hash(hashes: np.ndarray, n_buckets: int) -> np.ndarray:
    """Jump consistent hash (Lamping & Veach 2014), vectorised over keys.

    The published loop: ``b = -1; j = 0; while j < n: b = j; key = key * 2862933555777941757 + 1;
    j = (b + 1) * (2**31 / ((key >> 33) + 1))``. Every still-running key advances
    together; ``j`` grows strictly each round, so the loop ends in at most
    ``n_buckets`` rounds (about ln n on average).

    Parameters
    ----------
    hashes : array of uint64
        Key hashes (at most ``MAX_KEYS``).
    n_buckets : int
        Buckets, 1 to 2**31.

    Returns
    -------
    numpy.ndarray
        int64 bucket in ``0 .. n_buckets-1`` for each key.
    """
    n = validate.bounded_int("n_buckets", n_buckets, 2**31)
    key = np.array(_hashes("hashes", hashes), dtype=np.uint64, copy=True)
    b = np.full(key.shape, -1, dtype=np.int64)
    j = np.zeros(key.shape, dtype=np.int64)
    active = np.arange(key.size)
    mult = np.uint64(JUMP_MULTIPLIER)
    for _ in range(n + 1):
        if active.size == 0:
            break
        b[active] = j[active]
        with np.errstate(over="ignore"):
            key[active] = key[active] * mult + np.uint64(1)
        step = (2.0**31) / ((key[active] >> np.uint64(33)).astype(np.float64) + 1.0)
        j[active] = ((b[active] + 1).astype(np.float64) * step).astype(np.int64)
        active = active[j[active] < n]
    return b


def rendezvous_owner(hashes: np.ndarray, nodes: int | Sequence[int], chunk: int = 200_000) -> np.ndarray:
    """Rendezvous (highest-random-weight) hashing: each key picks the node with the largest score.

    The score of (key, node) is ``mix64(key_hash ^ mix64(node_id))``. Removing a
    node moves only the keys it won; adding one takes from every node equally.
    Cost is O(N) per key, computed in chunks to bound memory.

    Parameters
    ----------
    hashes : array of uint64
        Key hashes (at most ``MAX_KEYS``).
    nodes : int or sequence of int
        A count N (ids 0..N-1) or distinct node ids; at most ``MAX_RENDEZVOUS_NODES``.
    chunk : int
        Keys scored at once, 1 to 1,000,000.

    Returns
    -------
    numpy.ndarray
        int64 node id per hash.
    """
    ids = np.asarray(_node_ids("nodes", nodes), dtype=np.int64)
    if ids.size > MAX_RENDEZVOUS_NODES:
        raise ValueError(f"nodes must be at most {MAX_RENDEZVOUS_NODES:,} for rendezvous, got {ids.size:,}")
    chunk = validate.bounded_int("chunk", chunk, 1_000_000)
    h = _hashes("hashes", hashes)
    node_salt = mix64(ids.astype(np.uint64))
    result = np.empty(h.size, dtype=np.int64)
    for start in range(0, h.size, chunk):
        block = h[start : start + chunk]
        scores = mix64(block[:, None] ^ node_salt[None, :])
        result[start : start + chunk] = ids[np.argmax(scores, axis=1)]
    return result


def mod_owner(hashes: np.ndarray, n_nodes: int) -> np.ndarray:
    """The naive placement ``hash mod N``.

    Parameters
    ----------
    hashes : array of uint64
        Key hashes (at most ``MAX_KEYS``).
    n_nodes : int
        N, 1 to ``MAX_NODES``.

    Returns
    -------
    numpy.ndarray
        int64 node id per hash.
    """
    n = validate.bounded_int("n_nodes", n_nodes, MAX_NODES)
    return (_hashes("hashes", hashes) % np.uint64(n)).astype(np.int64)


def owners(
    method: str,
    hashes: np.ndarray,
    n_nodes: int,
    *,
    vnodes: int = 100,
    seed: int | np.random.Generator | None = 0,
) -> np.ndarray:
    """Owner of each hash among nodes ``0 .. n_nodes-1`` by ``method``.

    Parameters
    ----------
    method : {"ring", "jump", "rendezvous", "mod"}
        The placement scheme.
    hashes : array of uint64
        Key hashes (at most ``MAX_KEYS``).
    n_nodes : int
        Nodes, 1 to ``MAX_NODES``.
    vnodes : int
        Tokens per node for the ring.
    seed : int, numpy Generator or None
        Which ring.

    Returns
    -------
    numpy.ndarray
        int64 node id per hash.
    """
    method = validate.choice("method", method, METHODS)
    n_nodes = validate.bounded_int("n_nodes", n_nodes, MAX_NODES)
    hashes = _hashes("hashes", hashes)
    if method == "ring":
        return ring_owner(build_ring(n_nodes, vnodes, seed), hashes)
    if method == "jump":
        return jump_hash(hashes, n_nodes)
    if method == "rendezvous":
        return rendezvous_owner(hashes, n_nodes)
    return mod_owner(hashes, n_nodes)


# ------------------------------------------------------------------------------- theory


def theory_load_cv(n_nodes: int, vnodes: int | np.ndarray, n_keys: int | None = None) -> float | np.ndarray:
    """Root-mean-square coefficient of variation of node loads on a random ring.

    N·V uniform tokens cut the circle into Dirichlet(1, ..., 1) arcs; a node's
    share is the sum of V of them, a Beta(V, (N-1)V) variable, so
    ``E[CV^2] = (N-1) / (N V + 1)`` exactly, which is about ``1/sqrt(V)`` for large N.
    With a finite number of keys M, sampling adds about ``(N-1) / M`` to CV^2
    (multinomial counts); ``n_keys=None`` leaves it out (infinitely many keys).

    Parameters
    ----------
    n_nodes : int
        N, 1 to ``MAX_NODES``.
    vnodes : int or array of int
        V, tokens per node, each 1 to ``MAX_VNODES``.
    n_keys : int, optional
        M keys (adds the sampling term); None for infinitely many.

    Returns
    -------
    float or numpy.ndarray
        The RMS CV (same shape as ``vnodes``).
    """
    n = validate.bounded_int("n_nodes", n_nodes, MAX_NODES)
    if isinstance(vnodes, (bool, str, bytes)) or vnodes is None:
        raise TypeError(f"vnodes must be an integer or an array of integers, got {vnodes!r}")
    v = np.asarray(vnodes)
    if v.dtype.kind not in "iuf" or not np.all(np.isfinite(v)) or np.any(v != np.round(v)):
        raise TypeError(f"vnodes must be whole numbers, got {vnodes!r}")
    v = v.astype(float)
    if np.any(v < 1) or np.any(v > MAX_VNODES):
        raise ValueError(f"vnodes must be in [1, {MAX_VNODES:,}], got {vnodes!r}")
    sampling = 0.0 if n_keys is None else (n - 1) / validate.positive_int("n_keys", n_keys)
    result = np.sqrt((n - 1) / (n * v + 1) + sampling)
    return float(result) if result.ndim == 0 else result


def theory_max_over_mean_one_token(n_nodes: int) -> float:
    """Expected max/mean load with one token per node: N times the mean largest of N spacings = H_N.

    Parameters
    ----------
    n_nodes : int
        N, 1 to ``MAX_NODES``.

    Returns
    -------
    float
        H_N = 1 + 1/2 + ... + 1/N.
    """
    n = validate.bounded_int("n_nodes", n_nodes, MAX_NODES)
    return float(sum(1.0 / k for k in range(1, n + 1)))


def theory_moved_fraction(method: str, n_from: int, n_to: int) -> float:
    """Expected fraction of keys that change owner when the cluster goes from n_from to n_to nodes.

    Consistent schemes (ring, jump, rendezvous) move only what must move:
    ``|n_to - n_from| / max(n_from, n_to)``. ``mod`` keeps a key only when
    ``h mod n_from == h mod n_to``, which for ``n_to = n_from + 1`` is 1 key in n_to.
    This is the expectation (and, for jump and rendezvous, what happens up to sampling);
    a ring with few tokens per node moves whatever arc share the new node happens to get.

    Parameters
    ----------
    method : {"ring", "jump", "rendezvous", "mod"}
        The placement scheme.
    n_from, n_to : int
        Cluster sizes before and after, 1 to ``MAX_NODES``.

    Returns
    -------
    float
        Expected share of keys that change owner, 0 to 1.
    """
    method = validate.choice("method", method, METHODS)
    a = validate.bounded_int("n_from", n_from, MAX_NODES)
    b = validate.bounded_int("n_to", n_to, MAX_NODES)
    if method != "mod":
        return abs(b - a) / max(a, b)
    # The pattern of (h mod a, h mod b) repeats every lcm(a, b) hashes: count one period exactly.
    h = np.arange(a * b // math.gcd(a, b))
    return float(np.mean(h % a != h % b))


# ----------------------------------------------------------------------------- simulate


def _loads(owner: np.ndarray, n_nodes: int, weights: np.ndarray | None = None) -> np.ndarray:
    return np.bincount(owner, weights=weights, minlength=n_nodes)


def ring_loads(ring: Ring, sorted_hashes: np.ndarray) -> np.ndarray:
    """Keys per node, by locating the few tokens among the many sorted keys (O(T log M)).

    A token owns the keys in (previous token, token]; the first token also owns the
    wrap-around keys above the last token. Equal to ``bincount(ring_owner(...))``.

    Parameters
    ----------
    ring : Ring
        From :func:`build_ring`.
    sorted_hashes : array of uint64
        Key hashes in ascending order (unsorted input is refused: the binary search
        would count the wrong keys).

    Returns
    -------
    numpy.ndarray
        int64 keys per node, in the order of ``ring.nodes``.
    """
    ring = _ring("ring", ring)
    h = _hashes("sorted_hashes", sorted_hashes)
    if h.size > 1 and np.any(h[1:] < h[:-1]):
        raise ValueError("sorted_hashes must be sorted ascending (np.sort them first)")
    at_or_below = np.searchsorted(h, ring.tokens, side="right")
    per_token = np.diff(at_or_below, prepend=0)
    per_token[0] += h.size - at_or_below[-1]
    node_index = np.searchsorted(np.asarray(ring.nodes), ring.token_node)
    by_node = np.bincount(node_index, weights=per_token, minlength=len(ring.nodes))
    return by_node.astype(np.int64)


def simulate_load_spread(
    n_nodes: int,
    vnodes_list: Sequence[int],
    n_keys: int = 1_000_000,
    n_seeds: int = 10,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Place ``n_keys`` keys on rings with each number of virtual nodes, for several ring seeds.

    Parameters
    ----------
    n_nodes : int
        Nodes, 1 to ``MAX_NODES``.
    vnodes_list : sequence of int
        Tokens per node to try (each 1 to ``MAX_VNODES``; at most 100 values).
    n_keys : int
        Keys, 1 to ``MAX_KEYS``.
    n_seeds : int
        Rings per value, 1 to ``MAX_SEEDS``.
    seed : int, numpy Generator or None
        Which keys and rings.

    Returns
    -------
    pandas.DataFrame
        One row per (vnodes, ring seed): ``vnodes``, ``ring_seed``, ``load_cv``
        (population CV of keys per node), ``max_over_mean`` and ``min_over_mean``.
    """
    n = validate.bounded_int("n_nodes", n_nodes, MAX_NODES)
    vs = validate.sequence_of_positive_ints("vnodes_list", vnodes_list)
    if len(vs) > 100:
        raise ValueError(f"vnodes_list must hold at most 100 values, got {len(vs)}")
    for i, v in enumerate(vs):
        validate.bounded_int(f"vnodes_list[{i}]", v, MAX_VNODES)
    seed = _seed_int(seed)
    hashes = np.sort(key_hashes(n_keys, salt=seed))
    seeds = validate.bounded_int("n_seeds", n_seeds, MAX_SEEDS)

    # One independent ring seed per replication (SeedSequence.spawn), the same rings for every V.
    ring_seeds = [int(child.generate_state(1)[0]) for child in experiment.spawn_seeds(seed, seeds)]
    rows = []
    for v in vs:
        for s, ring_seed in enumerate(ring_seeds):
            loads = ring_loads(build_ring(n, v, seed=ring_seed), hashes)
            mean = loads.mean()
            rows.append(
                {
                    "vnodes": v,
                    "ring_seed": s,
                    "load_cv": float(loads.std() / mean),
                    "max_over_mean": float(loads.max() / mean),
                    "min_over_mean": float(loads.min() / mean),
                }
            )
    return pd.DataFrame(rows)


def summarize_load_spread(df: pd.DataFrame, n_nodes: int, n_keys: int | None = None) -> pd.DataFrame:
    """Per ``vnodes``: mean and RMS load CV, mean and worst max/mean, theory RMS CV and 1/sqrt(V).

    Parameters
    ----------
    df : pandas.DataFrame
        :func:`simulate_load_spread`'s output (``vnodes``, ``load_cv``, ``max_over_mean``).
    n_nodes : int
        The N it was run with.
    n_keys : int, optional
        The M it was run with (for the theory's sampling term).

    Returns
    -------
    pandas.DataFrame
        One row per ``vnodes``: ``cv_mean``, ``cv_rms``, ``max_over_mean``,
        ``max_over_mean_worst``, ``cv_theory``, ``one_over_sqrt_v``.
    """
    validate.frame_columns("df", df, ("vnodes", "load_cv", "max_over_mean"))
    if df[["load_cv", "max_over_mean"]].isna().any().any():
        raise ValueError("df must not contain NaN in load_cv or max_over_mean")
    n = validate.bounded_int("n_nodes", n_nodes, MAX_NODES)
    out = df.groupby("vnodes").agg(
        cv_mean=("load_cv", "mean"),
        cv_rms=("load_cv", lambda x: float(np.sqrt(np.mean(np.square(x))))),
        max_over_mean=("max_over_mean", "mean"),
        max_over_mean_worst=("max_over_mean", "max"),
    )
    out["cv_theory"] = theory_load_cv(n, out.index.to_numpy(), n_keys)
    out["one_over_sqrt_v"] = 1 / np.sqrt(out.index.to_numpy())
    return out.reset_index()


def simulate_failure(
    n_nodes: int,
    vnodes: int,
    n_keys: int = 1_000_000,
    dead: int = 0,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Kill node ``dead`` and see where its keys go.

    Parameters
    ----------
    n_nodes : int
        Nodes before the failure, 2 to ``MAX_NODES``.
    vnodes : int
        Tokens per node.
    n_keys : int
        Keys, 1 to ``MAX_KEYS``.
    dead : int
        The node that dies.
    seed : int, numpy Generator or None
        Which ring.

    Returns
    -------
    pandas.DataFrame
        One row per node: ``node``, ``keys_before``, ``keys_after``, ``received``
        (keys it took over from the dead node) and ``moved_between_survivors``
        (keys that changed owner without having been on the dead node: zero for a ring).
    """
    n = validate.int_in_range("n_nodes", n_nodes, 2, MAX_NODES)
    seed = _seed_int(seed)
    dead = validate.int_in_range("dead", dead, 0, n - 1)
    hashes = key_hashes(n_keys)
    before = ring_owner(build_ring(n, vnodes, seed), hashes)
    survivors = [i for i in range(n) if i != dead]
    after = ring_owner(build_ring(survivors, vnodes, seed), hashes)
    from_dead = before == dead
    return pd.DataFrame(
        {
            "node": np.arange(n),
            "keys_before": _loads(before, n),
            "keys_after": _loads(after, n),
            "received": _loads(after[from_dead], n),
            "moved_between_survivors": _loads(after[~from_dead & (after != before)], n),
        }
    )


def sweep_ring_changes(
    n_nodes: int,
    vnodes_list: Sequence[int],
    n_keys: int = 200_000,
    replications: int = 50,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Over many random rings: what a new node takes, and what a dead node's successor receives.

    For each ring (one replication of :func:`syslab.experiment.sweep`): add node N to an
    N-node ring and count the keys that move (all go to the new node), and kill node 0 and
    measure how much the busiest receiver of its keys grows. Both are ratios of random arcs,
    so a single ring says little: the second, with one token per node, is a ratio of two
    spacings, a quantity without a finite mean.

    Parameters
    ----------
    n_nodes : int
        N, nodes before the change, 2 to ``MAX_RENDEZVOUS_NODES``.
    vnodes_list : sequence of int
        Tokens per node to try (at most 20 values, each at most ``MAX_VNODES``).
    n_keys : int
        Keys per ring, 1 to ``MAX_KEYS``.
    replications : int
        Rings per value, 1 to ``MAX_SEEDS``.
    seed : int, numpy Generator or None
        Parent seed.

    Returns
    -------
    pandas.DataFrame
        One row per (vnodes, replication): ``vnodes``, ``replication``, ``moved_share`` (keys
        moved when node N joins, 0 to 1), ``successor_growth_pct`` (growth of the node that
        received most of the dead node's keys, % of its own keys) and ``top_receiver_share``
        (share of the dead node's keys it received, 0 to 1).
    """
    n = validate.int_in_range("n_nodes", n_nodes, 2, MAX_RENDEZVOUS_NODES)
    vs = validate.sequence_of_positive_ints("vnodes_list", vnodes_list)
    if len(vs) > 20:
        raise ValueError(f"vnodes_list must hold at most 20 values, got {len(vs)}")
    for i, v in enumerate(vs):
        validate.bounded_int(f"vnodes_list[{i}]", v, MAX_VNODES)
        if (n + 1) * v > MAX_TOKENS:
            raise ValueError(f"(n_nodes + 1) x vnodes_list[{i}] must be at most {MAX_TOKENS:,}")
    n_keys = validate.bounded_int("n_keys", n_keys, MAX_KEYS)
    replications = validate.bounded_int("replications", replications, MAX_SEEDS)
    hashes = np.sort(key_hashes(n_keys, salt=3))
    if isinstance(seed, np.random.Generator):
        seed = int(seed.integers(2**32))

    def one(vnodes: int, seed: np.random.SeedSequence) -> dict[str, float]:
        ring_seed = int(seed.generate_state(1)[0])
        before = ring_loads(build_ring(n, vnodes, ring_seed), hashes)  # nodes 0..n-1
        grown = ring_loads(build_ring(n + 1, vnodes, ring_seed), hashes)  # node n joins
        after = ring_loads(build_ring(list(range(1, n)), vnodes, ring_seed), hashes)  # node 0 dies
        received = after - before[1:]  # on a ring survivors only gain, and only node 0's keys
        top = int(np.argmax(received))
        return {
            "moved_share": grown[n] / n_keys,  # every moved key went to the new node
            "successor_growth_pct": received[top] / max(int(before[top + 1]), 1) * 100,
            "top_receiver_share": received[top] / max(int(before[0]), 1),
        }

    return experiment.sweep(one, {"vnodes": vs}, replications=replications, seed=seed)


def remap_table(n_from: int, n_to: int, n_keys: int = 1_000_000, vnodes: int = 100) -> pd.DataFrame:
    """Fraction of keys that move when the cluster resizes, for each placement method, with theory.

    Parameters
    ----------
    n_from, n_to : int
        Cluster sizes before and after, 1 to ``MAX_RENDEZVOUS_NODES``.
    n_keys : int
        Keys, 1 to ``MAX_KEYS``.
    vnodes : int
        Tokens per node for the ring.

    Returns
    -------
    pandas.DataFrame
        One row per method: ``method``, ``moved_fraction``, ``moved_theory``,
        ``moved_to_new_nodes`` (share of the moved keys that went to a node that
        did not exist before; 1.0 means no key shuffled between old nodes).
    """
    a = validate.bounded_int("n_from", n_from, MAX_RENDEZVOUS_NODES)
    b = validate.bounded_int("n_to", n_to, MAX_RENDEZVOUS_NODES)
    hashes = key_hashes(n_keys)
    rows = []
    for method in METHODS:
        old = owners(method, hashes, a, vnodes=vnodes)
        new = owners(method, hashes, b, vnodes=vnodes)
        moved = old != new
        rows.append(
            {
                "method": method,
                "moved_fraction": float(moved.mean()),
                "moved_theory": theory_moved_fraction(method, a, b),
                "moved_to_new_nodes": float(np.mean(new[moved] >= a)) if moved.any() and b > a else math.nan,
            }
        )
    return pd.DataFrame(rows)


def simulate_rollout(
    n_nodes: int,
    method: str = "ring",
    n_requests: int = 1_000_000,
    n_steps: int = 11,
    vnodes: int = 100,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Two ring generations during a deploy: clients move from an N-node view to an (N+1)-node view.

    At each rollout step a fraction f of clients runs the new membership. The new
    node is already serving, so the new view is the truth; a request from a client
    still on the old view for a key that changed owner goes to the wrong node
    (a cache miss, or a write the new owner never sees).

    Parameters
    ----------
    n_nodes : int
        N, nodes in the old view, 1 to ``MAX_RENDEZVOUS_NODES - 1``.
    method : {"ring", "jump", "rendezvous", "mod"}
        The placement scheme.
    n_requests : int
        Requests, 1 to ``MAX_KEYS``.
    n_steps : int
        Rollout steps from 0 to 100 % of clients, 2 to 1000.
    vnodes : int
        Tokens per node for the ring.
    seed : int, numpy Generator or None
        Which clients are on the new view.

    Returns
    -------
    pandas.DataFrame
        One row per step: ``method``, ``new_view_fraction`` f, ``misrouted_fraction``
        (measured), ``misrouted_theory`` = (1 - f) x moved fraction.
    """
    n = validate.bounded_int("n_nodes", n_nodes, MAX_RENDEZVOUS_NODES - 1)
    steps = validate.int_in_range("n_steps", n_steps, 2, 1000)
    method = validate.choice("method", method, METHODS)
    rng = validate.rng_from_seed(seed)
    n_requests = validate.bounded_int("n_requests", n_requests, MAX_KEYS)
    hashes = key_hashes(n_requests, salt=1)
    old = owners(method, hashes, n, vnodes=vnodes)
    new = owners(method, hashes, n + 1, vnodes=vnodes)
    changed = old != new
    moved_theory = theory_moved_fraction(method, n, n + 1)
    rows = []
    for f in np.linspace(0.0, 1.0, steps):
        on_old_view = rng.random(hashes.size) >= f
        rows.append(
            {
                "method": method,
                "new_view_fraction": float(f),
                "misrouted_fraction": float(np.mean(on_old_view & changed)),
                "misrouted_theory": float((1 - f) * moved_theory),
            }
        )
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------ skew, bounded


def zipf_requests(
    n_keys: int, n_requests: int, exponent: float, seed: int | np.random.Generator | None = 0
) -> np.ndarray:
    """Requests per key when key of popularity rank r is asked with probability ∝ r**-exponent.

    Parameters
    ----------
    n_keys : int
        Keys, 1 to ``MAX_KEYS``.
    n_requests : int
        Requests, 1 to 10**12 (a multinomial draw: its cost does not grow with it).
    exponent : float
        Zipf exponent, >= 0.
    seed : int, numpy Generator or None
        Random stream.

    Returns
    -------
    numpy.ndarray
        int64 requests per key id (key id = rank - 1; the hash scatters ranks over the ring).
    """
    k = validate.bounded_int("n_keys", n_keys, MAX_KEYS)
    m = validate.bounded_int("n_requests", n_requests, 10**12)
    s = validate.non_negative_float("exponent", exponent)
    rng = validate.rng_from_seed(seed)
    weights = np.arange(1, k + 1, dtype=float) ** -s
    return rng.multinomial(m, weights / weights.sum()).astype(np.int64)


def bounded_load_assign(
    ring: Ring, hashes: np.ndarray, weights: np.ndarray, c: float, seed: int | np.random.Generator | None = 0
) -> np.ndarray:
    """Consistent hashing with bounded loads (Mirrokni, Thorup & Zadimoghaddam 2016).

    Every node has capacity ``ceil(c x total / N)``. Keys arrive in random order;
    a key's requests go to its ring owner until that node is full and the rest
    spill to the next node clockwise that has room (so one hot key can span
    several nodes, as HAProxy's ``hash-balance-factor`` does for connections).

    Parameters
    ----------
    ring : Ring
    hashes : array of uint64
        One hash per key.
    weights : array of int
        Requests per key (same length as ``hashes``).
    c : float
        Balance factor > 1 (HAProxy's ``hash-balance-factor`` 150 is c = 1.5).
    seed : int, numpy Generator or None
        The order keys arrive in.

    Returns
    -------
    numpy.ndarray
        float64 load (requests) per node, indexed by position in ``ring.nodes``.
    """
    ring = _ring("ring", ring)
    c = validate.float_in_range("c", c, 1.0, math.inf, low_inclusive=False, high_inclusive=False)
    h = _hashes("hashes", hashes)
    if h.size > 1_000_000:
        raise ValueError(f"hashes must hold at most 1,000,000 keys (a Python loop per key), got {h.size:,}")
    if weights is None or isinstance(weights, (str, bytes)):
        raise TypeError(f"weights must be an array of request counts, got {type(weights).__name__}")
    w = np.asarray(weights)
    if w.dtype.kind not in "iu":
        raise TypeError(f"weights must hold integers, got dtype {w.dtype}")
    w = w.astype(np.int64)
    if w.shape != h.shape:
        raise ValueError("weights must have one entry per hash")
    if np.any(w < 0):
        raise ValueError("weights must be >= 0")
    rng = validate.rng_from_seed(seed)
    node_index = {node: i for i, node in enumerate(ring.nodes)}
    token_slot = np.array([node_index[int(t)] for t in ring.token_node])
    n = len(ring.nodes)
    capacity = math.ceil(c * w.sum() / n)
    loads = np.zeros(n, dtype=np.int64)
    start = np.searchsorted(ring.tokens, h, side="left") % ring.tokens.size
    live = np.flatnonzero(w > 0)
    for key in rng.permutation(live):
        remaining = int(w[key])
        position = int(start[key])
        # At most one lap of the ring: total capacity c x total > total, so room always exists.
        for _ in range(ring.tokens.size):
            slot = token_slot[position]
            room = capacity - loads[slot]
            if room > 0:
                placed = min(room, remaining)
                loads[slot] += placed
                remaining -= placed
                if remaining == 0:
                    break
            position = (position + 1) % ring.tokens.size
    return loads.astype(float)


def simulate_skewed_load(
    n_nodes: int = 10,
    vnodes: int = 100,
    n_keys: int = 100_000,
    n_requests: int = 1_000_000,
    exponent: float = 1.2,
    factors: Sequence[float] = (1.25, 1.1),
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Zipf-popular keys on a ring, with and without bounded loads.

    Parameters
    ----------
    n_nodes : int
        Nodes, 1 to ``MAX_NODES``.
    vnodes : int
        Tokens per node.
    n_keys : int
        Keys, 1 to 1,000,000.
    n_requests : int
        Requests (multinomial over the keys).
    exponent : float
        Zipf exponent, >= 0.
    factors : sequence of float
        Bounded-load balance factors c > 1 to compare (at most 10).
    seed : int, numpy Generator or None
        Random stream.

    Returns
    -------
    pandas.DataFrame
        One row per (scheme, node): ``scheme`` ("plain ring" or "bounded c=..."),
        ``node``, ``requests``, ``load_over_mean``.
    """
    rng = validate.rng_from_seed(seed)
    n = validate.bounded_int("n_nodes", n_nodes, MAX_NODES)
    n_keys = validate.bounded_int("n_keys", n_keys, 1_000_000)
    if isinstance(factors, (str, bytes)) or not isinstance(factors, (Sequence, np.ndarray)):
        raise TypeError(f"factors must be a sequence of balance factors, got {type(factors).__name__}")
    if len(factors) > 10:
        raise ValueError(f"factors must hold at most 10 values, got {len(factors)}")
    factors = [
        validate.float_in_range(f"factors[{i}]", c, 1.0, 1e6, low_inclusive=False)
        for i, c in enumerate(factors)
    ]
    counts = zipf_requests(n_keys, n_requests, exponent, rng)
    ring = build_ring(n, vnodes, seed=0)
    hashes = key_hashes(n_keys, salt=2)
    frames = []
    plain = _loads(ring_owner(ring, hashes), n, weights=counts.astype(float))
    schemes = [("plain ring", plain)]
    for c in factors:
        schemes.append((f"bounded c={c:g}", bounded_load_assign(ring, hashes, counts, c, rng)))
    for name, loads in schemes:
        share = loads / loads.mean()
        columns = {"scheme": name, "node": np.arange(n), "requests": loads, "load_over_mean": share}
        frames.append(pd.DataFrame(columns))
    return pd.DataFrame(pd.concat(frames, ignore_index=True))


# ------------------------------------------------------------------------- redis cluster


def _crc16_table() -> np.ndarray:
    table = np.zeros(256, dtype=np.uint16)
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table[byte] = crc & 0xFFFF
    return table


_CRC16_TABLE = _crc16_table()


def crc16_xmodem(data: str | bytes) -> int:
    """CRC16/XMODEM (poly 0x1021, init 0, no reflection): the CRC Redis Cluster uses.

    ``crc16_xmodem(b"123456789") == 0x31C3`` (the check value in Redis's crc16.c).

    Parameters
    ----------
    data : str or bytes
        UTF-8 is used for ``str``; at most 1 MB.

    Returns
    -------
    int
        0 to 65535.
    """
    if isinstance(data, str):
        data = data.encode()
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"data must be str or bytes, got {type(data).__name__}")
    if len(data) > 2**20:
        raise ValueError(f"data must be at most {2**20:,} bytes, got {len(data):,}")
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ int(_CRC16_TABLE[((crc >> 8) ^ byte) & 0xFF])
    return crc


def redis_hash_tag(key: str | bytes) -> bytes:
    """The part of ``key`` Redis Cluster hashes (cluster-spec, "Hash tags").

    The text between the first ``{`` and the next ``}`` if that is non-empty; otherwise the
    whole key.

    Parameters
    ----------
    key : str or bytes
        A key (UTF-8 for ``str``).

    Returns
    -------
    bytes
        The hashed part.
    """
    raw = key.encode() if isinstance(key, str) else key
    if not isinstance(raw, (bytes, bytearray)):
        raise TypeError(f"key must be str or bytes, got {type(key).__name__}")
    start = raw.find(b"{")
    if start != -1:
        end = raw.find(b"}", start + 1)
        if end != -1 and end != start + 1:
            return bytes(raw[start + 1 : end])
    return bytes(raw)


def redis_keyslot(key: str | bytes) -> int:
    """Redis Cluster's ``HASH_SLOT = CRC16(hash tag or key) mod 16384`` for one key.

    Parameters
    ----------
    key : str or bytes
        A key.

    Returns
    -------
    int
        Slot, 0 to 16383.
    """
    return crc16_xmodem(redis_hash_tag(key)) % REDIS_SLOTS


def redis_keyslots(keys: Sequence[str | bytes]) -> np.ndarray:
    """:func:`redis_keyslot` for many keys, vectorised byte column by byte column.

    Keys are grouped by the length of their hashed part and each group runs the
    table-driven CRC over a 2-D byte array, so a million keys take well under a second.

    Parameters
    ----------
    keys : sequence of str or bytes
        At most ``MAX_STRING_KEYS`` keys.

    Returns
    -------
    numpy.ndarray
        int64 slot per key.
    """
    if isinstance(keys, (str, bytes)):
        raise TypeError("keys must be a sequence of keys, not a single key")
    if not isinstance(keys, (Sequence, np.ndarray)):
        raise TypeError(f"keys must be a sequence of str or bytes, got {type(keys).__name__}")
    if len(keys) > MAX_STRING_KEYS:
        raise ValueError(f"keys must hold at most {MAX_STRING_KEYS:,} keys, got {len(keys):,}")
    parts = [redis_hash_tag(k) for k in keys]
    lengths = np.fromiter((len(p) for p in parts), dtype=np.int64, count=len(parts))
    slots = np.empty(len(parts), dtype=np.int64)
    table = _CRC16_TABLE.astype(np.int64)
    for length in np.unique(lengths):
        rows = np.flatnonzero(lengths == length)
        if length == 0:
            slots[rows] = 0
            continue
        buffer = b"".join(parts[i] for i in rows)
        matrix = np.frombuffer(buffer, dtype=np.uint8).reshape(rows.size, int(length)).astype(np.int64)
        crc = np.zeros(rows.size, dtype=np.int64)
        for column in range(int(length)):
            crc = ((crc << 8) & 0xFFFF) ^ table[((crc >> 8) ^ matrix[:, column]) & 0xFF]
        slots[rows] = crc % REDIS_SLOTS
    return slots


# ---------------------------------------------------------------------- range partitions


def split_ranges(sorted_keys: np.ndarray, boundaries: Sequence[float], max_keys: int) -> pd.DataFrame:
    """Range partitions that split at the median key whenever they exceed ``max_keys``.

    This is the size-based split rule of HBase, CockroachDB and TiKV reduced to
    its core: a range that grows past the threshold becomes two halves.

    Parameters
    ----------
    sorted_keys : array
        Keys in ascending order (e.g. event timestamps).
    boundaries : sequence of float
        Initial range boundaries (e.g. month starts), ascending; keys outside
        ``[boundaries[0], boundaries[-1])`` are rejected.
    max_keys : int
        Split threshold (keys per range).

    Returns
    -------
    pandas.DataFrame
        One row per final range, in key order: ``start_key``, ``end_key``,
        ``n_keys``, ``initial_range`` (index of the range it was split from).
    """
    keys = np.asarray(sorted_keys)
    if keys.dtype.kind not in "iuf":
        raise TypeError(f"sorted_keys must be numbers, got dtype {keys.dtype}")
    if keys.ndim != 1 or keys.size == 0:
        raise ValueError("sorted_keys must be a non-empty 1-D array")
    if keys.size > MAX_KEYS:
        raise ValueError(f"sorted_keys must hold at most {MAX_KEYS:,} keys, got {keys.size:,}")
    if not np.all(np.isfinite(keys)):
        raise ValueError("sorted_keys must be finite (no NaN or inf)")
    if np.any(np.diff(keys) < 0):
        raise ValueError("sorted_keys must be sorted ascending")
    if isinstance(boundaries, (str, bytes)) or not isinstance(boundaries, (Sequence, np.ndarray)):
        raise TypeError(f"boundaries must be a sequence of numbers, got {type(boundaries).__name__}")
    bounds = np.asarray([validate.finite_float(f"boundaries[{i}]", b) for i, b in enumerate(boundaries)])
    if bounds.size < 2 or np.any(np.diff(bounds) <= 0):
        raise ValueError("boundaries must hold at least two strictly increasing values")
    if keys[0] < bounds[0] or keys[-1] >= bounds[-1]:
        raise ValueError("boundaries must cover every key")
    limit = validate.positive_int("max_keys", max_keys)
    cut = np.searchsorted(keys, bounds, side="left")
    rows = []
    for r in range(bounds.size - 1):
        stack = [(bounds[r], bounds[r + 1], int(cut[r]), int(cut[r + 1]))]
        done = []
        # Each split halves a range, so at most 2 * keys / limit + 1 pieces come out: bounded.
        while stack:
            lo_key, hi_key, lo, hi = stack.pop()
            mid = (lo + hi) // 2
            if hi - lo <= limit or keys[mid] == keys[lo]:
                done.append((lo_key, hi_key, hi - lo))
                continue
            split_key = float(keys[mid])
            first = int(np.searchsorted(keys, split_key, side="left"))
            stack.append((split_key, hi_key, first, hi))
            stack.append((lo_key, split_key, lo, first))
        for lo_key, hi_key, count in sorted(done):
            rows.append({"start_key": lo_key, "end_key": hi_key, "n_keys": count, "initial_range": r})
    return pd.DataFrame(rows)


def partitions_touched(
    ranges: pd.DataFrame, scan_start: float, scan_end: float, n_hash_partitions: int
) -> pd.Series:
    """How many partitions a range scan ``[scan_start, scan_end)`` must visit.

    With range partitioning only the ranges overlapping the interval; with hash
    partitioning every partition (the hash scatters adjacent keys).

    Parameters
    ----------
    ranges : pandas.DataFrame
        :func:`split_ranges`'s output (``start_key``, ``end_key``).
    scan_start, scan_end : float
        The scanned interval, ``scan_start < scan_end``.
    n_hash_partitions : int
        Partitions of the hash-partitioned alternative.

    Returns
    -------
    pandas.Series
        ``range_partitions`` and ``hash_partitions`` touched.
    """
    validate.frame_columns("ranges", ranges, ("start_key", "end_key"))
    lo = validate.finite_float("scan_start", scan_start)
    hi = validate.finite_float("scan_end", scan_end)
    if hi <= lo:
        raise ValueError("scan_end must be > scan_start")
    n_hash = validate.positive_int("n_hash_partitions", n_hash_partitions)
    overlap = (ranges["start_key"] < hi) & (ranges["end_key"] > lo)
    return pd.Series({"range_partitions": int(overlap.sum()), "hash_partitions": n_hash})


def simulate_slot_skew(
    n_keys: int = 200_000,
    n_masters: int = 10,
    n_tenants: int = 1000,
    exponent: float = 1.2,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Keys per Redis Cluster master, with plain keys and with a per-tenant hash tag.

    Slots are spread over the masters in equal contiguous ranges, as
    ``redis-cli --cluster create`` does. ``user:<i>`` keys spread evenly over the
    slots; ``{tenant<t>}:order:<i>`` keys with Zipf-popular tenants put each
    tenant's keys in one slot, so a big tenant makes a hot master.

    Parameters
    ----------
    n_keys : int
        Keys per scheme, 1 to ``MAX_STRING_KEYS``.
    n_masters : int
        Masters, 1 to 16384.
    n_tenants : int
        Tenants, 1 to ``MAX_STRING_KEYS``.
    exponent : float
        Zipf exponent of tenant sizes, >= 0.
    seed : int, numpy Generator or None
        Random stream.

    Returns
    -------
    pandas.DataFrame
        One row per (scheme, node): ``scheme``, ``node``, ``keys``, ``load_over_mean``,
        and ``slots_used`` (distinct slots the scheme's keys landed in, repeated per row).
    """
    n = validate.bounded_int("n_keys", n_keys, MAX_STRING_KEYS)
    masters = validate.int_in_range("n_masters", n_masters, 1, REDIS_SLOTS)
    tenants = validate.bounded_int("n_tenants", n_tenants, MAX_STRING_KEYS)
    rng = validate.rng_from_seed(seed)
    weights = np.arange(1, tenants + 1, dtype=float) ** -validate.non_negative_float("exponent", exponent)
    tenant_of = rng.choice(tenants, size=n, p=weights / weights.sum())
    schemes = {
        "user:<id>": [f"user:{i}" for i in range(n)],
        "{tenant}:order:<id>": [f"{{tenant{t}}}:order:{i}" for i, t in enumerate(tenant_of)],
    }
    frames = []
    for name, keys in schemes.items():
        slots = redis_keyslots(keys)
        node = slots * masters // REDIS_SLOTS
        counts = np.bincount(node, minlength=masters)
        frames.append(
            pd.DataFrame(
                {
                    "scheme": name,
                    "node": np.arange(masters),
                    "keys": counts,
                    "load_over_mean": counts / counts.mean(),
                    "slots_used": int(np.unique(slots).size),
                }
            )
        )
    return pd.DataFrame(pd.concat(frames, ignore_index=True))


def fat_month_events(
    n_events: int = 1_000_000,
    n_months: int = 24,
    fat_month: int = 10,
    fat_factor: float = 10.0,
    seed: int | np.random.Generator | None = 0,
) -> np.ndarray:
    """Sorted event timestamps (in months since the start) where one month gets ``fat_factor`` x the rest.

    Uniform within each month: month m has weight 1, except ``fat_month`` with
    weight ``fat_factor`` (a sale, a viral launch, a backfill).

    Parameters
    ----------
    n_events : int
        Events, 1 to ``MAX_KEYS``.
    n_months : int
        Months, 1 to ``MAX_MONTHS``.
    fat_month : int
        The busy month, 0 to ``n_months - 1``.
    fat_factor : float
        Its weight relative to the others, > 0.
    seed : int, numpy Generator or None
        Random stream.

    Returns
    -------
    numpy.ndarray
        Sorted float timestamps in months.
    """
    n = validate.bounded_int("n_events", n_events, MAX_KEYS)
    months = validate.bounded_int("n_months", n_months, MAX_MONTHS)
    fat = validate.int_in_range("fat_month", fat_month, 0, months - 1)
    factor = validate.positive_float("fat_factor", fat_factor)
    rng = validate.rng_from_seed(seed)
    weights = np.ones(months)
    weights[fat] = factor
    month = rng.choice(months, size=n, p=weights / weights.sum())
    return np.sort(month + rng.random(n))


def measure_lookup_speed(n_keys: int = 1_000_000, n_nodes: int = 10, vnodes: int = 100) -> experiment.Run:
    """Time to place ``n_keys`` keys with each method on this machine (numpy, one core).

    Parameters
    ----------
    n_keys : int
        Keys, 1 to ``MAX_KEYS``.
    n_nodes : int
        Nodes, 1 to ``MAX_RENDEZVOUS_NODES``.
    vnodes : int
        Tokens per node for the ring.

    Returns
    -------
    syslab.experiment.Run
        ``frame``: one row per method (``method``, ``seconds`` -- median of a few repeats,
        ``keys_per_s``); ``summary``: ``n_keys``, ``n_nodes``.
    """
    n_keys = validate.bounded_int("n_keys", n_keys, MAX_KEYS)
    n_nodes = validate.bounded_int("n_nodes", n_nodes, MAX_RENDEZVOUS_NODES)
    hashes = key_hashes(n_keys, salt=5)
    ring = build_ring(n_nodes, vnodes)
    runs = {
        "ring": lambda: ring_owner(ring, hashes),
        "jump": lambda: jump_hash(hashes, n_nodes),
        "rendezvous": lambda: rendezvous_owner(hashes, n_nodes),
        "mod": lambda: mod_owner(hashes, n_nodes),
    }
    rows = []
    for method, run in runs.items():
        seconds = timing.median_seconds(run, repeats=3, max_total_s=5.0)
        rows.append({"method": method, "seconds": seconds, "keys_per_s": n_keys / seconds})
    return experiment.Run.create(pd.DataFrame(rows), {"n_keys": n_keys, "n_nodes": n_nodes})


def run_hash_in_fresh_processes(key: str = "user:42", n_processes: int = 3) -> experiment.Run:
    """Ask ``n_processes`` fresh interpreters for ``hash(key)`` and the library's stable hash.

    Python salts ``hash()`` of str and bytes per process (hash randomisation, on by default
    since Python 3.3; ``PYTHONHASHSEED``), so clients that route with it disagree; a stable
    hash does not. Each child (:mod:`syslab.children.hash_probe`) runs with
    ``PYTHONHASHSEED=random`` and a 20 s hard limit.

    Parameters
    ----------
    key : str
        The key, at most 1,000 characters.
    n_processes : int
        Fresh interpreters, 1 to 20.

    Returns
    -------
    syslab.experiment.Run
        ``frame``: one row per process (``process``, ``python_hash``, ``stable_hash``);
        ``summary``: ``distinct_python_hashes``, ``distinct_stable_hashes``.
    """
    if not isinstance(key, str):
        raise TypeError(f"key must be a str, got {type(key).__name__}")
    if len(key) > 1000:
        raise ValueError(f"key must be at most 1,000 characters, got {len(key):,}")
    count = validate.int_in_range("n_processes", n_processes, 1, 20)
    rows = []
    for i in range(count):
        with ChildProcess(
            "syslab.children.hash_probe", [key], timeout_s=20, env={"PYTHONHASHSEED": "random"}
        ) as child:
            result = child.expect("result", timeout_s=20)
        rows.append(
            {
                "process": i,
                "python_hash": int(result["python_hash"]),
                "stable_hash": int(result["stable_hash"]),
            }
        )
    frame = pd.DataFrame(rows)
    summary = {
        "distinct_python_hashes": int(frame["python_hash"].nunique()),
        "distinct_stable_hashes": int(frame["stable_hash"].nunique()),
    }
    return experiment.Run.create(frame, summary)


def measure_cluster_keyslots(engine: object, keys: Sequence[str | bytes]) -> experiment.Run:
    """Ask a real Redis started with ``cluster-enabled yes`` for ``CLUSTER KEYSLOT`` of every key.

    Parameters
    ----------
    engine : syslab.engines.Engine
        ``engines.redis(cluster=True)`` (or ``engines.find("redis", cluster=True)``).
    keys : sequence of str or bytes
        1 to 100,000 keys (pipelined, 1,000 per round trip).

    Returns
    -------
    syslab.experiment.Run
        ``frame``: one row per key (``key``, ``server_slot``, ``syslab_slot``, ``hash_tag``
        -- whether the key has a non-empty ``{...}`` tag); ``summary``: ``keys``,
        ``mismatches``, ``tagged_keys``, ``seconds``.
    """
    if getattr(engine, "name", None) != "redis" or not callable(getattr(engine, "connect", None)):
        raise TypeError(f"engine must be a syslab.engines.Engine for redis, got {type(engine).__name__}")
    if isinstance(keys, (str, bytes)) or not isinstance(keys, (Sequence, np.ndarray)):
        raise TypeError(f"keys must be a sequence of str or bytes, got {type(keys).__name__}")
    if not 1 <= len(keys) <= 100_000:
        raise ValueError(f"keys must hold 1 to 100,000 keys, got {len(keys):,}")
    ours = redis_keyslots(list(keys))
    started = time.perf_counter()
    client = engine.connect()
    try:
        theirs: list[int] = []
        for start in range(0, len(keys), 1000):
            pipe = client.pipeline(transaction=False)
            for key in keys[start : start + 1000]:
                pipe.execute_command("CLUSTER", "KEYSLOT", key)
            theirs += [int(slot) for slot in pipe.execute()]
    finally:
        client.close()
    seconds = time.perf_counter() - started
    tagged = [redis_hash_tag(k) != (k.encode() if isinstance(k, str) else bytes(k)) for k in keys]
    frame = pd.DataFrame({"key": list(keys), "server_slot": theirs, "syslab_slot": ours, "hash_tag": tagged})
    summary = {
        "keys": len(frame),
        "mismatches": int((frame["server_slot"] != frame["syslab_slot"]).sum()),
        "tagged_keys": int(frame["hash_tag"].sum()),
        "seconds": seconds,
    }
    return experiment.Run.create(frame, summary, engine=engine)


# --------------------------------------------------------------------------------- plots


def plot_load_spread(summary: pd.DataFrame, raw: pd.DataFrame | None = None, ax: Axes | None = None) -> Axes:
    """Load CV against virtual nodes (log-log): simulated seeds, RMS, exact theory and 1/sqrt(V).

    Parameters
    ----------
    summary : pandas.DataFrame
        :func:`summarize_load_spread`'s output.
    raw : pandas.DataFrame, optional
        :func:`simulate_load_spread`'s output (one faint dot per ring).
    ax : matplotlib Axes, optional
        Where to draw; a new figure if None.

    Returns
    -------
    matplotlib.axes.Axes
    """
    validate.frame_columns("summary", summary, ("vnodes", "cv_rms", "cv_theory", "one_over_sqrt_v"))
    if raw is not None:
        validate.frame_columns("raw", raw, ("vnodes", "load_cv"))
    ax = axes_or_new(ax)
    if raw is not None:
        ax.plot(raw["vnodes"], raw["load_cv"], ".", color="C0", alpha=0.3, label="one ring (seed)")
    ax.plot(summary["vnodes"], summary["cv_rms"], "o", color="C0", label="simulated (rms over seeds)")
    ax.plot(summary["vnodes"], summary["cv_theory"], "-", color="C1", label="theory √((N−1)/(NV+1))")
    ax.plot(summary["vnodes"], summary["one_over_sqrt_v"], "--", color="C2", label="rule of thumb 1/√V")
    ax.set_xscale("log")
    ax.set_yscale("log")
    return label(ax, "virtual nodes per node V", "coefficient of variation of keys per node", legend=True)


def plot_node_loads(df: pd.DataFrame, value: str, group: str, ax: Axes | None = None) -> Axes:
    """Grouped bars: ``value`` per node, one colour per ``group`` (e.g. scheme or vnodes).

    Parameters
    ----------
    df : pandas.DataFrame
        One row per (group, node), with a ``node`` column.
    value : str
        The column drawn as bar height.
    group : str
        The column whose values get one colour each.
    ax : matplotlib Axes, optional
        Where to draw; a new figure if None.

    Returns
    -------
    matplotlib.axes.Axes
    """
    for name, column in (("value", value), ("group", group)):
        if not isinstance(column, str) or not column:
            raise TypeError(f"{name} must be a column name, got {column!r}")
    validate.frame_columns("df", df, ("node", value, group))
    if df.empty:
        raise ValueError("df must have at least one row")
    ax = axes_or_new(ax)
    groups = list(dict.fromkeys(df[group]))
    width = 0.8 / len(groups)
    for i, name in enumerate(groups):
        part = df[df[group] == name]
        ax.bar(part["node"] + (i - (len(groups) - 1) / 2) * width, part[value], width, label=str(name))
    ax.set_xticks(sorted(df["node"].unique()))
    return label(ax, "node", value.replace("_", " "), legend=True)


def plot_misrouted(df: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Misrouted fraction against the share of clients on the new view, per method, with theory.

    The y axis is logarithmic, so the last step (everyone on the new view, zero misrouted) is left out.

    Parameters
    ----------
    df : pandas.DataFrame
        :func:`simulate_rollout` frames (``method``, ``new_view_fraction``,
        ``misrouted_fraction``, ``misrouted_theory``).
    ax : matplotlib Axes, optional
        Where to draw; a new figure if None.

    Returns
    -------
    matplotlib.axes.Axes
    """
    validate.frame_columns(
        "df", df, ("method", "new_view_fraction", "misrouted_fraction", "misrouted_theory")
    )
    ax = axes_or_new(ax)
    df = df[df["new_view_fraction"] < 1]
    for i, (method, part) in enumerate(df.groupby("method", sort=False)):
        ax.plot(part["new_view_fraction"], part["misrouted_theory"], "-", color=f"C{i}")
        ax.plot(part["new_view_fraction"], part["misrouted_fraction"], "o", color=f"C{i}", label=method)
    ax.set_yscale("log")
    return label(ax, "clients on the new ring (fraction)", "requests misrouted (fraction)", legend=True)


def plot_ranges(before: pd.DataFrame, after: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Keys per range against the key axis: initial ranges as a step outline, split ranges as bars.

    Parameters
    ----------
    before, after : pandas.DataFrame
        :func:`split_ranges` outputs (``start_key``, ``end_key``, ``n_keys``) before and after splits.
    ax : matplotlib Axes, optional
        Where to draw; a new figure if None.

    Returns
    -------
    matplotlib.axes.Axes
    """
    for name, frame in (("before", before), ("after", after)):
        validate.frame_columns(name, frame, ("start_key", "end_key", "n_keys"))
        if frame.empty:
            raise ValueError(f"{name} must have at least one row")
    ax = axes_or_new(ax)
    ax.bar(
        after["start_key"],
        after["n_keys"],
        width=after["end_key"] - after["start_key"],
        align="edge",
        edgecolor="white",
        linewidth=0.5,
        color="C0",
        alpha=0.7,
        label="after size-based splits",
    )
    edges = np.append(before["start_key"].to_numpy(), before["end_key"].to_numpy()[-1])
    heights = np.append(before["n_keys"].to_numpy(), before["n_keys"].to_numpy()[-1])
    ax.step(edges, heights, where="post", color="C1", label="one range per month")
    return label(ax, "event time (months since start)", "keys in the range", legend=True)
