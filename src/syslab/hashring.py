"""Consistent hashing and its hotspots: rings, jump hash, rendezvous, bounded loads, slots, ranges.

Everything here is vectorised with numpy so a chapter can place a million keys
on a ring in well under a second:

- **hashing** -- :func:`mix64`, a stable 64-bit mixer (the SplitMix64 finaliser)
  that gives the same value on every machine and every run, unlike Python's
  salted ``hash()``; :func:`stable_hash64_str` does the same for strings via
  ``hashlib``;
- **placement** -- a ring with virtual nodes (:func:`build_ring`,
  :func:`ring_owner`), jump consistent hash (:func:`jump_hash`, Lamping & Veach
  2014), rendezvous / highest-random-weight hashing (:func:`rendezvous_owner`),
  plain ``mod N`` (:func:`mod_owner`), and bounded-load consistent hashing
  (:func:`bounded_load_assign`, Mirrokni, Thorup & Zadimoghaddam 2016);
- **Redis Cluster** -- CRC16/XMODEM and the 16384-slot keyslot function with
  hash tags (:func:`crc16_xmodem`, :func:`redis_keyslot`, :func:`redis_keyslots`);
- **range partitioning** -- size-based splits of a key range (:func:`split_ranges`);
- **simulate / theory / plot** -- load spread against virtual nodes, a dead
  node, remapping on resize, two ring generations during a deploy, skewed keys.

Units are in the names; loads are counts of keys or requests.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from syslab import validate
from syslab.plot import axes_or_new, label

__all__ = [
    "plot_ranges",
    "simulate_slot_skew",
    "python_hash_in_fresh_processes",
    "measure_lookup_speed",
    "fat_month_events",
    "JUMP_MULTIPLIER",
    "REDIS_SLOTS",
    "Ring",
    "bounded_load_assign",
    "build_ring",
    "crc16_xmodem",
    "jump_hash",
    "key_hashes",
    "mix64",
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
    "split_ranges",
    "stable_hash64_str",
    "summarize_load_spread",
    "theory_load_cv",
    "theory_max_over_mean_one_token",
    "theory_moved_fraction",
    "zipf_requests",
]

JUMP_MULTIPLIER = 2862933555777941757  # the 64-bit LCG multiplier in Lamping & Veach (2014)
REDIS_SLOTS = 16384  # Redis Cluster hash slots (cluster-spec; 4096 before commit ebd666d)
METHODS = ("ring", "jump", "rendezvous", "mod")

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


# ------------------------------------------------------------------------------ hashing


def mix64(values: np.ndarray | Sequence[int] | int) -> np.ndarray:
    """The SplitMix64 finaliser applied elementwise: a stable, well-mixed 64-bit hash of integers.

    Parameters
    ----------
    values : array-like of int
        Non-negative integers below 2**64 (key ids, node ids ...).

    Returns
    -------
    numpy.ndarray
        uint64 array of the same shape. The same input gives the same output on
        every machine, which Python's per-process salted ``hash()`` of strings does not.
    """
    z = np.asarray(values)
    if z.dtype.kind not in "iu":
        raise TypeError(f"values must be integers, got dtype {z.dtype}")
    if z.dtype.kind == "i" and z.size and int(z.min()) < 0:
        raise ValueError("values must be >= 0")
    # uint64 arithmetic wraps modulo 2**64, which is exactly what the mixer needs.
    with np.errstate(over="ignore"):
        z = z.astype(np.uint64) + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def stable_hash64_str(text: str | bytes) -> int:
    """A stable 64-bit hash of a string (first 8 bytes of BLAKE2b), for node names and the like."""
    if isinstance(text, str):
        text = text.encode()
    if not isinstance(text, bytes):
        raise TypeError(f"text must be str or bytes, got {type(text).__name__}")
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def key_hashes(n_keys: int, salt: int = 0) -> np.ndarray:
    """64-bit hashes of the integer keys ``0 .. n_keys-1`` (uint64 array)."""
    n = validate.positive_int("n_keys", n_keys)
    salt = validate.non_negative_int("salt", salt)
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


def build_ring(nodes: int | Iterable[int], vnodes: int = 1, seed: int = 0) -> Ring:
    """Place ``vnodes`` tokens per node on a 64-bit ring.

    Token j of node i sits at ``mix64(mix64(i ^ mix64(seed)) + j)``: a node's
    tokens depend only on its own id, so adding or removing a node leaves every
    other token where it was -- the property that makes the ring consistent.

    Parameters
    ----------
    nodes : int or iterable of int
        Either a count N (nodes ``0 .. N-1``) or explicit non-negative node ids.
    vnodes : int
        Tokens per node (1 = the original ring of Karger et al.).
    seed : int
        Which ring (a different seed is a different, equally valid, placement).
    """
    if isinstance(nodes, (int, np.integer)) and not isinstance(nodes, bool):
        ids = list(range(validate.positive_int("nodes", nodes)))
    else:
        ids = [validate.non_negative_int("nodes[]", n) for n in nodes]
        if not ids:
            raise ValueError("nodes must not be empty")
        if len(set(ids)) != len(ids):
            raise ValueError("nodes must be distinct")
    v = validate.positive_int("vnodes", vnodes)
    seed = validate.non_negative_int("seed", seed)
    node_col = np.repeat(np.asarray(ids, dtype=np.uint64), v)
    vnode_col = np.tile(np.arange(v, dtype=np.uint64), len(ids))
    # Mix twice: XOR-ing one seed constant into already-mixed tokens would give every
    # seed nearly the same ring (the gaps survive), which biased an earlier version.
    with np.errstate(over="ignore"):
        positions = mix64(mix64(node_col ^ mix64(seed)) + vnode_col)
    order = np.argsort(positions, kind="stable")
    return Ring(positions[order], node_col[order].astype(np.int64), tuple(sorted(ids)), v)


def ring_owner(ring: Ring, hashes: np.ndarray) -> np.ndarray:
    """The node owning each hash: the first token clockwise (at or after it), wrapping round."""
    if not isinstance(ring, Ring):
        raise TypeError(f"ring must be a Ring, got {type(ring).__name__}")
    h = np.asarray(hashes, dtype=np.uint64)
    index = np.searchsorted(ring.tokens, h, side="left") % ring.tokens.size
    return ring.token_node[index]


def jump_hash(hashes: np.ndarray, n_buckets: int) -> np.ndarray:
    """Jump consistent hash (Lamping & Veach 2014), vectorised over keys.

    The published loop: ``b = -1; j = 0; while j < n: b = j; key = key * 2862933555777941757 + 1;
    j = (b + 1) * (2**31 / ((key >> 33) + 1))``. Every still-running key advances
    together; ``j`` grows strictly each round, so the loop ends in at most
    ``n_buckets`` rounds (about ln n on average).

    Returns
    -------
    numpy.ndarray
        int64 bucket in ``0 .. n_buckets-1`` for each key.
    """
    n = validate.positive_int("n_buckets", n_buckets)
    key = np.array(hashes, dtype=np.uint64, copy=True)
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
    """
    ids = (
        np.arange(validate.positive_int("nodes", nodes))
        if isinstance(nodes, (int, np.integer))
        else np.asarray([validate.non_negative_int("nodes[]", n) for n in nodes])
    )
    if ids.size == 0:
        raise ValueError("nodes must not be empty")
    chunk = validate.positive_int("chunk", chunk)
    h = np.asarray(hashes, dtype=np.uint64)
    node_salt = mix64(ids.astype(np.uint64))
    result = np.empty(h.size, dtype=np.int64)
    for start in range(0, h.size, chunk):
        block = h[start : start + chunk]
        scores = mix64(block[:, None] ^ node_salt[None, :])
        result[start : start + chunk] = ids[np.argmax(scores, axis=1)]
    return result


def mod_owner(hashes: np.ndarray, n_nodes: int) -> np.ndarray:
    """The naive placement ``hash mod N`` (int64 node ids)."""
    n = validate.positive_int("n_nodes", n_nodes)
    return (np.asarray(hashes, dtype=np.uint64) % np.uint64(n)).astype(np.int64)


def owners(method: str, hashes: np.ndarray, n_nodes: int, *, vnodes: int = 100, seed: int = 0) -> np.ndarray:
    """Owner of each hash among nodes ``0 .. n_nodes-1`` by ``method`` (ring, jump, rendezvous, mod)."""
    method = validate.choice("method", method, METHODS)
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
    """
    n = validate.positive_int("n_nodes", n_nodes)
    v = np.asarray(vnodes, dtype=float)
    if np.any(v < 1):
        raise ValueError("vnodes must be >= 1")
    sampling = 0.0 if n_keys is None else (n - 1) / validate.positive_int("n_keys", n_keys)
    result = np.sqrt((n - 1) / (n * v + 1) + sampling)
    return float(result) if result.ndim == 0 else result


def theory_max_over_mean_one_token(n_nodes: int) -> float:
    """Expected max/mean load with one token per node: N times the mean largest of N spacings = H_N."""
    n = validate.positive_int("n_nodes", n_nodes)
    return float(sum(1.0 / k for k in range(1, n + 1)))


def theory_moved_fraction(method: str, n_from: int, n_to: int) -> float:
    """Expected fraction of keys that change owner when the cluster goes from n_from to n_to nodes.

    Consistent schemes (ring, jump, rendezvous) move only what must move:
    ``|n_to - n_from| / max(n_from, n_to)``. ``mod`` keeps a key only when
    ``h mod n_from == h mod n_to``, which for ``n_to = n_from + 1`` is 1 key in n_to.
    """
    method = validate.choice("method", method, METHODS)
    a = validate.positive_int("n_from", n_from)
    b = validate.positive_int("n_to", n_to)
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
    """
    if not isinstance(ring, Ring):
        raise TypeError(f"ring must be a Ring, got {type(ring).__name__}")
    h = np.asarray(sorted_hashes, dtype=np.uint64)
    at_or_below = np.searchsorted(h, ring.tokens, side="right")
    per_token = np.diff(at_or_below, prepend=0)
    per_token[0] += h.size - at_or_below[-1]
    node_index = np.searchsorted(np.asarray(ring.nodes), ring.token_node)
    by_node = np.bincount(node_index, weights=per_token, minlength=len(ring.nodes))
    return by_node.astype(np.int64)


def simulate_load_spread(
    n_nodes: int, vnodes_list: Sequence[int], n_keys: int = 1_000_000, n_seeds: int = 10, seed: int = 0
) -> pd.DataFrame:
    """Place ``n_keys`` keys on rings with each number of virtual nodes, for several ring seeds.

    Returns
    -------
    pandas.DataFrame
        One row per (vnodes, ring seed): ``vnodes``, ``ring_seed``, ``load_cv``
        (population CV of keys per node), ``max_over_mean`` and ``min_over_mean``.
    """
    n = validate.positive_int("n_nodes", n_nodes)
    vs = validate.sequence_of_positive_ints("vnodes_list", vnodes_list)
    hashes = np.sort(key_hashes(n_keys, salt=validate.non_negative_int("seed", seed)))
    seeds = validate.positive_int("n_seeds", n_seeds)
    rows = []
    for v in vs:
        for s in range(seeds):
            loads = ring_loads(build_ring(n, v, seed=seed * 1000 + s), hashes)
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
    """Per ``vnodes``: mean and RMS load CV, mean and worst max/mean, theory RMS CV and 1/sqrt(V)."""
    if not isinstance(df, pd.DataFrame) or not {"vnodes", "load_cv", "max_over_mean"} <= set(df.columns):
        raise ValueError("df must be the output of simulate_load_spread")
    n = validate.positive_int("n_nodes", n_nodes)
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
    n_nodes: int, vnodes: int, n_keys: int = 1_000_000, dead: int = 0, seed: int = 0
) -> pd.DataFrame:
    """Kill node ``dead`` and see where its keys go.

    Returns
    -------
    pandas.DataFrame
        One row per node: ``node``, ``keys_before``, ``keys_after``, ``received``
        (keys it took over from the dead node) and ``moved_between_survivors``
        (keys that changed owner without having been on the dead node: zero for a ring).
    """
    n = validate.positive_int("n_nodes", n_nodes)
    if n < 2:
        raise ValueError("n_nodes must be >= 2 to kill one")
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


def remap_table(n_from: int, n_to: int, n_keys: int = 1_000_000, vnodes: int = 100) -> pd.DataFrame:
    """Fraction of keys that move when the cluster resizes, for each placement method, with theory.

    Returns
    -------
    pandas.DataFrame
        One row per method: ``method``, ``moved_fraction``, ``moved_theory``,
        ``moved_to_new_nodes`` (share of the moved keys that went to a node that
        did not exist before; 1.0 means no key shuffled between old nodes).
    """
    a = validate.positive_int("n_from", n_from)
    b = validate.positive_int("n_to", n_to)
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
    seed: int = 0,
) -> pd.DataFrame:
    """Two ring generations during a deploy: clients move from an N-node view to an (N+1)-node view.

    At each rollout step a fraction f of clients runs the new membership. The new
    node is already serving, so the new view is the truth; a request from a client
    still on the old view for a key that changed owner goes to the wrong node
    (a cache miss, or a write the new owner never sees).

    Returns
    -------
    pandas.DataFrame
        One row per step: ``method``, ``new_view_fraction`` f, ``misrouted_fraction``
        (measured), ``misrouted_theory`` = (1 - f) x moved fraction.
    """
    n = validate.positive_int("n_nodes", n_nodes)
    steps = validate.int_in_range("n_steps", n_steps, 2, 1000)
    method = validate.choice("method", method, METHODS)
    rng = validate.rng_from_seed(seed)
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
    n_keys: int, n_requests: int, exponent: float, seed: int | np.random.Generator = 0
) -> np.ndarray:
    """Requests per key when key of popularity rank r is asked with probability ∝ r**-exponent.

    Returns an int64 array of length ``n_keys`` (requests per key id; key id = rank - 1,
    and the hash scatters ranks over the ring).
    """
    k = validate.positive_int("n_keys", n_keys)
    m = validate.positive_int("n_requests", n_requests)
    s = validate.non_negative_float("exponent", exponent)
    rng = validate.rng_from_seed(seed)
    weights = np.arange(1, k + 1, dtype=float) ** -s
    return rng.multinomial(m, weights / weights.sum()).astype(np.int64)


def bounded_load_assign(
    ring: Ring, hashes: np.ndarray, weights: np.ndarray, c: float, seed: int | np.random.Generator = 0
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

    Returns
    -------
    numpy.ndarray
        float64 load (requests) per node, indexed by position in ``ring.nodes``.
    """
    if not isinstance(ring, Ring):
        raise TypeError(f"ring must be a Ring, got {type(ring).__name__}")
    c = validate.float_in_range("c", c, 1.0, math.inf, low_inclusive=False, high_inclusive=False)
    h = np.asarray(hashes, dtype=np.uint64)
    w = np.asarray(weights, dtype=np.int64)
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
    seed: int = 0,
) -> pd.DataFrame:
    """Zipf-popular keys on a ring, with and without bounded loads.

    Returns
    -------
    pandas.DataFrame
        One row per (scheme, node): ``scheme`` ("plain ring" or "bounded c=..."),
        ``node``, ``requests``, ``load_over_mean``.
    """
    rng = validate.rng_from_seed(seed)
    n = validate.positive_int("n_nodes", n_nodes)
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
    """
    if isinstance(data, str):
        data = data.encode()
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"data must be str or bytes, got {type(data).__name__}")
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ int(_CRC16_TABLE[((crc >> 8) ^ byte) & 0xFF])
    return crc


def redis_hash_tag(key: str | bytes) -> bytes:
    """The part of ``key`` Redis Cluster hashes: the text between the first ``{`` and the next ``}``,
    if that is non-empty; otherwise the whole key (cluster-spec, "Hash tags")."""
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
    """Redis Cluster's ``HASH_SLOT = CRC16(hash tag or key) mod 16384`` for one key."""
    return crc16_xmodem(redis_hash_tag(key)) % REDIS_SLOTS


def redis_keyslots(keys: Sequence[str | bytes]) -> np.ndarray:
    """:func:`redis_keyslot` for many keys, vectorised byte column by byte column.

    Keys are grouped by the length of their hashed part and each group runs the
    table-driven CRC over a 2-D byte array, so a million keys take well under a second.
    """
    if isinstance(keys, (str, bytes)):
        raise TypeError("keys must be a sequence of keys, not a single key")
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
    if keys.ndim != 1 or keys.size == 0:
        raise ValueError("sorted_keys must be a non-empty 1-D array")
    if np.any(np.diff(keys) < 0):
        raise ValueError("sorted_keys must be sorted ascending")
    bounds = np.asarray(boundaries, dtype=float)
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
    """
    if not isinstance(ranges, pd.DataFrame) or not {"start_key", "end_key"} <= set(ranges.columns):
        raise ValueError("ranges must be the output of split_ranges")
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
    seed: int | np.random.Generator = 0,
) -> pd.DataFrame:
    """Keys per Redis Cluster master, with plain keys and with a per-tenant hash tag.

    Slots are spread over the masters in equal contiguous ranges, as
    ``redis-cli --cluster create`` does. ``user:<i>`` keys spread evenly over the
    slots; ``{tenant<t>}:order:<i>`` keys with Zipf-popular tenants put each
    tenant's keys in one slot, so a big tenant makes a hot master.

    Returns
    -------
    pandas.DataFrame
        One row per (scheme, node): ``scheme``, ``node``, ``keys``, ``load_over_mean``,
        and ``slots_used`` (distinct slots the scheme's keys landed in, repeated per row).
    """
    n = validate.positive_int("n_keys", n_keys)
    masters = validate.int_in_range("n_masters", n_masters, 1, REDIS_SLOTS)
    tenants = validate.positive_int("n_tenants", n_tenants)
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
    seed: int | np.random.Generator = 0,
) -> np.ndarray:
    """Sorted event timestamps (in months since the start) where one month gets ``fat_factor`` x the rest.

    Uniform within each month: month m has weight 1, except ``fat_month`` with
    weight ``fat_factor`` (a sale, a viral launch, a backfill).
    """
    n = validate.positive_int("n_events", n_events)
    months = validate.positive_int("n_months", n_months)
    fat = validate.int_in_range("fat_month", fat_month, 0, months - 1)
    factor = validate.positive_float("fat_factor", fat_factor)
    rng = validate.rng_from_seed(seed)
    weights = np.ones(months)
    weights[fat] = factor
    month = rng.choice(months, size=n, p=weights / weights.sum())
    return np.sort(month + rng.random(n))


def measure_lookup_speed(n_keys: int = 1_000_000, n_nodes: int = 10, vnodes: int = 100) -> pd.DataFrame:
    """Wall time to place ``n_keys`` keys with each method on this machine (numpy, one core).

    Returns
    -------
    pandas.DataFrame
        One row per method: ``method``, ``seconds``, ``keys_per_s``.
    """
    import time

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
        started = time.perf_counter()
        run()
        seconds = time.perf_counter() - started
        rows.append({"method": method, "seconds": seconds, "keys_per_s": n_keys / seconds})
    return pd.DataFrame(rows)


def python_hash_in_fresh_processes(key: str = "user:42", n_processes: int = 3) -> pd.DataFrame:
    """Ask ``n_processes`` fresh interpreters for ``hash(key)`` and this module's stable hash.

    Python salts ``hash()`` of str and bytes per process (PYTHONHASHSEED, PEP 456),
    so clients that route with it disagree; a stable hash does not. Each child
    runs ``python -m syslab.hash_probe KEY`` with ``PYTHONHASHSEED=random``
    and a 10 s hard limit.

    Returns
    -------
    pandas.DataFrame
        One row per process: ``process``, ``python_hash``, ``stable_hash``.
    """
    from syslab.processes import ChildProcess

    if not isinstance(key, str):
        raise TypeError(f"key must be a str, got {type(key).__name__}")
    count = validate.int_in_range("n_processes", n_processes, 1, 20)
    rows = []
    for i in range(count):
        with ChildProcess(
            "syslab.hash_probe", [key], timeout_s=10, env={"PYTHONHASHSEED": "random"}
        ) as child:
            out, _ = child.process.communicate(timeout=10)
        python_hash, stable = out.decode().split()
        rows.append({"process": i, "python_hash": int(python_hash), "stable_hash": int(stable)})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------- plots


def plot_load_spread(summary: pd.DataFrame, raw: pd.DataFrame | None = None, ax: Axes | None = None) -> Axes:
    """Load CV against virtual nodes (log-log): simulated seeds, RMS, exact theory and 1/sqrt(V)."""
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
    """Grouped bars: ``value`` per node, one colour per ``group`` (e.g. scheme or vnodes)."""
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
    """
    ax = axes_or_new(ax)
    df = df[df["new_view_fraction"] < 1]
    for i, (method, part) in enumerate(df.groupby("method", sort=False)):
        ax.plot(part["new_view_fraction"], part["misrouted_theory"], "-", color=f"C{i}")
        ax.plot(part["new_view_fraction"], part["misrouted_fraction"], "o", color=f"C{i}", label=method)
    ax.set_yscale("log")
    return label(ax, "clients on the new ring (fraction)", "requests misrouted (fraction)", legend=True)


def plot_ranges(before: pd.DataFrame, after: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Keys per range against the key axis: initial ranges as a step outline, split ranges as bars."""
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
