"""Bloom filters: a vectorised implementation and the false-positive maths it should obey.

Two layouts live here, side by side so a test can hold each against its own formula:

- the **textbook** filter (Bloom 1970): ``k`` bit positions anywhere in an ``m``-bit
  array, derived from two 64-bit hashes by double hashing (Kirsch and
  Mitzenmacher 2006). Its false-positive rate is ``(1 - exp(-k n / m))^k``;
- the **cache-local** (blocked) filter, the layout of RocksDB's ``FastLocalBloom``:
  the first hash picks one 512-bit block (one CPU cache line) and all ``k`` probes
  land inside it. One cache miss per query instead of ``k``, paid for with a
  slightly higher false-positive rate because some blocks get more keys than others
  (:func:`theory_blocked_false_positive_rate`).

Keys are non-negative integers (numpy ``uint64``); a caller with strings hashes them
to integers first. Everything is vectorised: adding 10^6 keys or querying 10^6
keys is one pass of numpy arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from syslab import hashing, validate
from syslab.plot import axes_or_new, label

__all__ = [
    "BloomFilter",
    "estimate_false_positive_rate",
    "plot_false_positive_rate",
    "sweep_false_positive_rate",
    "theory_bits_per_key",
    "theory_blocked_false_positive_rate",
    "theory_false_positive_rate",
    "theory_optimal_hashes",
]

CACHE_LINE_BITS = 512  # one 64-byte cache line, RocksDB FastLocalBloom's block size
# Bounds: a filter is a numpy bool array (one byte per bit), so 2**28 bits is 256 MiB of memory.
MAX_BITS = 2**28
MAX_HASHES = 64
MAX_BLOCK_BITS = 2**16
MAX_BITS_PER_KEY = 64.0
MAX_KEYS = 10_000_000
MAX_QUERIES = 10_000_000
MAX_SWEEP_POINTS = 200
_STEP_SALT = 0x5BD1E995  # the second hash function's salt (double hashing's step)


def _keys(name: str, keys: object) -> np.ndarray:
    """``keys`` as a 1-D integer array, or an error naming ``name``."""
    if keys is None or isinstance(keys, (str, bytes)):
        raise TypeError(f"{name} must be an array of non-negative integers, got {type(keys).__name__}")
    array = np.asarray(keys)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if array.size and array.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer values, got dtype {array.dtype}")
    return array


# --------------------------------------------------------------------------- theory


def theory_false_positive_rate(bits_per_key: float, n_hashes: int) -> float:
    """The textbook false-positive rate ``(1 - exp(-k n / m))^k`` (Bloom 1970).

    Parameters
    ----------
    bits_per_key : float
        m / n, bits of filter per inserted key, in (0, ``MAX_BITS_PER_KEY``].
    n_hashes : int
        k, bit positions set and tested per key, 1 to ``MAX_HASHES``.

    Returns
    -------
    float
        The false-positive rate (0-1).
    """
    bpk = validate.float_in_range("bits_per_key", bits_per_key, 0.0, MAX_BITS_PER_KEY, low_inclusive=False)
    k = validate.int_in_range("n_hashes", n_hashes, 1, MAX_HASHES)
    return float((1.0 - math.exp(-k / bpk)) ** k)


def theory_optimal_hashes(bits_per_key: float) -> float:
    """The k that minimises the false-positive rate: ``(m/n) ln 2`` (real-valued; round it).

    Parameters
    ----------
    bits_per_key : float
        m / n, in (0, ``MAX_BITS_PER_KEY``].

    Returns
    -------
    float
    """
    bpk = validate.float_in_range("bits_per_key", bits_per_key, 0.0, MAX_BITS_PER_KEY, low_inclusive=False)
    return bpk * math.log(2)


def theory_bits_per_key(false_positive_rate: float) -> float:
    """Bits per key an optimally-hashed filter needs for a target rate: ``-ln p / (ln 2)^2``.

    Parameters
    ----------
    false_positive_rate : float
        The target rate, in (0, 1).

    Returns
    -------
    float
        Bits per key.
    """
    p = validate.float_in_range(
        "false_positive_rate", false_positive_rate, 0.0, 1.0, low_inclusive=False, high_inclusive=False
    )
    return -math.log(p) / math.log(2) ** 2


def theory_blocked_false_positive_rate(
    bits_per_key: float, n_hashes: int, block_bits: int = CACHE_LINE_BITS
) -> float:
    """False-positive rate of a blocked (cache-local) Bloom filter.

    The number of keys that land in the queried block is Poisson with mean
    ``lam = block_bits / bits_per_key``; a block holding ``j`` keys answers a
    negative query wrongly with probability ``(1 - (1 - 1/B)^(k j))^k``. The rate is
    the Poisson-weighted sum (Putze, Sanders and Singler 2007).

    Parameters
    ----------
    bits_per_key : float
        m / n.
    n_hashes : int
        Probes per key, all inside one block.
    block_bits : int
        B, the block size in bits (512 = one 64-byte cache line), 1 to ``MAX_BLOCK_BITS``.

    Returns
    -------
    float
        The expected false-positive rate (0-1).
    """
    bpk = validate.float_in_range("bits_per_key", bits_per_key, 0.0, MAX_BITS_PER_KEY, low_inclusive=False)
    k = validate.int_in_range("n_hashes", n_hashes, 1, MAX_HASHES)
    b = validate.int_in_range("block_bits", block_bits, 1, MAX_BLOCK_BITS)
    if b / bpk > 10 * MAX_BLOCK_BITS:
        raise ValueError(
            f"block_bits / bits_per_key must be at most {10 * MAX_BLOCK_BITS:,} keys per block, got {b / bpk:,.0f}"
        )
    lam = b / bpk
    top = int(lam + 12 * math.sqrt(lam) + 20)  # the Poisson tail beyond this is below 1e-20
    j = np.arange(top + 1)
    log_pmf = -lam + j * math.log(lam) - np.array([math.lgamma(v + 1) for v in j])
    per_block = (1.0 - (1.0 - 1.0 / b) ** (k * j)) ** k
    return float(np.sum(np.exp(log_pmf) * per_block))


# --------------------------------------------------------------------------- the filter


class BloomFilter:
    """A Bloom filter over integer keys, vectorised with numpy.

    Parameters
    ----------
    n_bits : int
        m, the number of bits (rounded up to a whole number of blocks when blocked), 1 to ``MAX_BITS``.
    n_hashes : int
        k, probes per key, 1 to ``MAX_HASHES``.
    block_bits : int or None
        None for the textbook layout; 512 for RocksDB-style cache-local blocks (1 to ``MAX_BLOCK_BITS``).
    salt : int
        Changes the hash functions (filters of different runs should not share failures);
        0 to 2**63. Positions come from :func:`syslab.hashing.mix64` with salts ``salt`` and
        ``salt + 0x5BD1E995``.
    """

    def __init__(self, n_bits: int, n_hashes: int, *, block_bits: int | None = None, salt: int = 0) -> None:
        m = validate.int_in_range("n_bits", n_bits, 1, MAX_BITS)
        self.n_hashes = validate.int_in_range("n_hashes", n_hashes, 1, MAX_HASHES)
        self.salt = validate.int_in_range("salt", salt, 0, 2**63)
        if block_bits is not None:
            self.block_bits = validate.int_in_range("block_bits", block_bits, 1, MAX_BLOCK_BITS)
            self.n_blocks = -(-m // self.block_bits)
            m = self.n_blocks * self.block_bits
        else:
            self.block_bits = None
            self.n_blocks = 1
        self.n_bits = m
        self.bits = np.zeros(m, dtype=bool)
        self.n_added = 0

    @classmethod
    def for_keys(
        cls, keys: np.ndarray, bits_per_key: float, n_hashes: int | None = None, **kwargs
    ) -> BloomFilter:
        """A filter of ``bits_per_key`` x len(keys) bits holding ``keys`` (k: the rounded optimum).

        Parameters
        ----------
        keys : array of non-negative int
            At most ``MAX_KEYS`` keys.
        bits_per_key : float
            In (0, ``MAX_BITS_PER_KEY``]; the filter gets ``ceil(bits_per_key x len(keys))`` bits.
        n_hashes : int or None
            k; None picks the rounded optimum ``(m/n) ln 2``.
        **kwargs
            ``block_bits`` and ``salt``, as for :class:`BloomFilter`.

        Returns
        -------
        BloomFilter
        """
        bpk = validate.float_in_range(
            "bits_per_key", bits_per_key, 0.0, MAX_BITS_PER_KEY, low_inclusive=False
        )
        keys = _keys("keys", keys)
        if keys.ndim != 1 or len(keys) > MAX_KEYS:
            raise ValueError(f"keys must be a 1-D array of at most {MAX_KEYS:,} keys, got shape {keys.shape}")
        k = max(1, round(theory_optimal_hashes(bpk))) if n_hashes is None else n_hashes
        n_bits = max(1, math.ceil(bpk * max(len(keys), 1)))
        if n_bits > MAX_BITS:
            raise ValueError(f"bits_per_key x len(keys) must be at most {MAX_BITS:,} bits, got {n_bits:,}")
        bloom = cls(n_bits, k, **kwargs)
        bloom.add(keys)
        return bloom

    def _positions(self, keys: np.ndarray) -> np.ndarray:
        """Bit positions, shape (len(keys), k)."""
        h1 = hashing.mix64(keys, salt=self.salt)
        h2 = hashing.mix64(keys, salt=self.salt + _STEP_SALT) | np.uint64(
            1
        )  # odd step: probes never repeat early
        if self.block_bits is None:
            i = np.arange(self.n_hashes, dtype=np.uint64)
            return ((h1[:, None] + i[None, :] * h2[:, None]) % np.uint64(self.n_bits)).astype(np.int64)
        # Cache-local: h1 chooses the block; inside it, each probe multiplies h2 by an odd
        # constant again and takes the top bits (the scheme of RocksDB's FastLocalBloom).
        # Double hashing (a + i b) mod 512 would be worse here: in so small a range two keys
        # with the same step b share k-1 positions, and the measured rate drifts ~15% high.
        block = (h1 % np.uint64(self.n_blocks)).astype(np.int64)
        offsets = np.empty((len(keys), self.n_hashes), dtype=np.int64)
        h = h2.copy()
        for probe in range(self.n_hashes):
            h = h * np.uint64(0x9E3779B97F4A7C15)
            # top 32 bits scaled to [0, block_bits): the best-mixed bits of a multiplicative hash
            offsets[:, probe] = (((h >> np.uint64(32)) * np.uint64(self.block_bits)) >> np.uint64(32)).astype(
                np.int64
            )
        return block[:, None] * self.block_bits + offsets

    def add(self, keys: np.ndarray | Sequence[int]) -> None:
        """Insert ``keys``.

        Parameters
        ----------
        keys : array of non-negative int

        Returns
        -------
        None
        """
        keys = _keys("keys", keys)
        if keys.size == 0:
            return
        self.bits[self._positions(keys).ravel()] = True
        self.n_added += int(keys.size)

    def contains(self, keys: np.ndarray | Sequence[int]) -> np.ndarray:
        """Which keys may be present.

        Parameters
        ----------
        keys : array of non-negative int

        Returns
        -------
        numpy.ndarray
            bool, True where the key may be present (never False for an added key).
        """
        keys = _keys("keys", keys)
        if keys.size == 0:
            return np.zeros(0, dtype=bool)
        return self.bits[self._positions(keys)].all(axis=1)

    @property
    def bits_per_key(self) -> float:
        """Bits per inserted key, m / n."""
        return self.n_bits / max(self.n_added, 1)


# --------------------------------------------------------------------------- experiments


def estimate_false_positive_rate(
    n_keys: int,
    bits_per_key: float,
    n_hashes: int,
    n_queries: int,
    *,
    block_bits: int | None = None,
    seed: int | np.random.Generator | None = 0,
) -> float:
    """Insert ``n_keys`` random keys, query ``n_queries`` others, return the fraction answered "maybe".

    Inserted and queried keys come from disjoint halves of the 63-bit space, so every
    "maybe" for a query is a false positive.

    Parameters
    ----------
    n_keys : int
        Keys inserted, 1 to ``MAX_KEYS``.
    bits_per_key : float
        m / n, in (0, ``MAX_BITS_PER_KEY``]; m is at most ``MAX_BITS``.
    n_hashes : int
        k, 1 to ``MAX_HASHES``.
    n_queries : int
        Absent keys queried, 1 to ``MAX_QUERIES``.
    block_bits : int or None
        None: textbook layout; else the block size in bits.
    seed : int, numpy.random.Generator or None

    Returns
    -------
    float
        The measured false-positive rate (0-1).
    """
    n = validate.int_in_range("n_keys", n_keys, 1, MAX_KEYS)
    q = validate.int_in_range("n_queries", n_queries, 1, MAX_QUERIES)
    bpk = validate.float_in_range("bits_per_key", bits_per_key, 0.0, MAX_BITS_PER_KEY, low_inclusive=False)
    k = validate.int_in_range("n_hashes", n_hashes, 1, MAX_HASHES)
    if block_bits is not None:
        block_bits = validate.int_in_range("block_bits", block_bits, 1, MAX_BLOCK_BITS)
    if math.ceil(bpk * n) > MAX_BITS:
        raise ValueError(
            f"bits_per_key x n_keys must be at most {MAX_BITS:,} bits, got {math.ceil(bpk * n):,}"
        )
    rng = validate.rng_from_seed(seed)
    half = 2**62
    present = rng.integers(0, half, size=n, dtype=np.int64)
    absent = rng.integers(half, 2**63 - 1, size=q, dtype=np.int64)
    bloom = BloomFilter(math.ceil(bpk * n), k, block_bits=block_bits, salt=int(rng.integers(0, 2**31)))
    bloom.add(present)
    if not bloom.contains(present).all():  # pragma: no cover - a Bloom filter never forgets
        raise AssertionError("a Bloom filter returned a false negative")
    return float(bloom.contains(absent).mean())


def sweep_false_positive_rate(
    bits_per_key: Sequence[float],
    n_hashes: Sequence[int],
    *,
    n_keys: int = 100_000,
    n_queries: int = 200_000,
    layouts: Sequence[str] = ("textbook",),
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Measured and theoretical false-positive rates over a grid of bits/key and k.

    Parameters
    ----------
    bits_per_key : sequence of float
        Bits per key to try, each in (0, ``MAX_BITS_PER_KEY``].
    n_hashes : sequence of int
        k values to try, each 1 to ``MAX_HASHES``.
    n_keys, n_queries : int
        As for :func:`estimate_false_positive_rate`.
    layouts : sequence of str
        "textbook" and/or "cache-local".
    seed : int, numpy.random.Generator or None

    Returns
    -------
    pandas.DataFrame
        One row per (layout, bits_per_key, n_hashes): ``layout`` ("textbook" or
        "cache-local"), ``bits_per_key``, ``n_hashes``, ``measured_fp``, ``theory_fp``.
    """
    for name, values in (("bits_per_key", bits_per_key), ("n_hashes", n_hashes), ("layouts", layouts)):
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise TypeError(f"{name} must be a list, got {type(values).__name__}")
    if len(bits_per_key) == 0 or len(n_hashes) == 0:
        raise ValueError("bits_per_key and n_hashes must not be empty")
    for layout in layouts:
        validate.choice("layouts", layout, ("textbook", "cache-local"))
    bpks = [
        validate.float_in_range("bits_per_key", b, 0.0, MAX_BITS_PER_KEY, low_inclusive=False)
        for b in bits_per_key
    ]
    ks = [validate.int_in_range("n_hashes", k, 1, MAX_HASHES) for k in n_hashes]
    if len(bpks) * len(ks) * len(layouts) > MAX_SWEEP_POINTS:
        raise ValueError(f"the sweep must have at most {MAX_SWEEP_POINTS} points")
    validate.int_in_range("n_keys", n_keys, 1, MAX_KEYS)
    validate.int_in_range("n_queries", n_queries, 1, MAX_QUERIES)
    if math.ceil(max(bpks) * n_keys) > MAX_BITS:
        raise ValueError(f"bits_per_key x n_keys must be at most {MAX_BITS:,} bits")
    rng = validate.rng_from_seed(seed)
    rows = []
    for layout in layouts:
        block = None if layout == "textbook" else CACHE_LINE_BITS
        for bpk in bpks:
            for k in ks:
                measured = estimate_false_positive_rate(n_keys, bpk, k, n_queries, block_bits=block, seed=rng)
                theory = (
                    theory_false_positive_rate(bpk, k)
                    if block is None
                    else theory_blocked_false_positive_rate(bpk, k, block)
                )
                rows.append((layout, bpk, k, measured, theory))
    return pd.DataFrame(rows, columns=["layout", "bits_per_key", "n_hashes", "measured_fp", "theory_fp"])


def plot_false_positive_rate(df: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Measured rates (markers) and theory (lines) against bits per key, one colour per k.

    Parameters
    ----------
    df : pandas.DataFrame
        :func:`sweep_false_positive_rate`'s frame.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    df = validate.frame_columns("df", df, ["layout", "n_hashes", "bits_per_key", "theory_fp", "measured_fp"])
    ax = axes_or_new(ax)
    for (layout, k), group in df.groupby(["layout", "n_hashes"]):
        group = group.sort_values("bits_per_key")
        style = "-" if layout == "textbook" else "--"
        (line,) = ax.plot(group["bits_per_key"], group["theory_fp"], style, label=f"{layout}, k = {k}")
        ax.plot(group["bits_per_key"], group["measured_fp"], "o", color=line.get_color(), ms=4)
    ax.set_yscale("log")
    return label(ax, "bits per key (m/n)", "false-positive rate", legend=True)
