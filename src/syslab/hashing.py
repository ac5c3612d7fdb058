"""Stable hashing shared by every chapter that hashes: Bloom filters, rings, slots, shards.

Python's built-in ``hash()`` of a string is salted per process, so nothing in the book uses
it. Two stable functions serve every module:

- :func:`mix64` -- the SplitMix64 finaliser, vectorised over integer arrays (fast, well mixed);
- :func:`stable_hash64_str` -- the first 8 bytes of BLAKE2b of a string (node names, keys).

A salt selects an independent hash function: ``mix64(keys, salt=i)`` mixes ``keys ^ mix64(i)``,
so salts 0, 1, 2, ... give the k functions of a Bloom filter or the replicas of a ring.
"""

from __future__ import annotations

import hashlib
import numbers

import numpy as np

__all__ = ["mix64", "stable_hash64_str"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
MAX_SALT = 2**64 - 1


def _finalise(z: np.ndarray) -> np.ndarray:
    # uint64 arithmetic wraps modulo 2**64, which is exactly what the mixer needs.
    with np.errstate(over="ignore"):
        z = z + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def mix64(values: object, salt: int = 0) -> np.ndarray:
    """SplitMix64 finaliser of ``values`` (salted), elementwise.

    Parameters
    ----------
    values : array_like of int
        Non-negative integers (any integer dtype; negative values are refused).
    salt : int
        0 to 2**64 - 1; each salt is an independent hash function. Salt 0 is the plain finaliser.

    Returns
    -------
    numpy.ndarray
        uint64 array of the same shape, identical on every machine.
    """
    z = np.asarray(values)
    if z.dtype.kind not in "iu":
        raise TypeError(f"values must be integers, got dtype {z.dtype}")
    if z.dtype.kind == "i" and z.size and int(z.min()) < 0:
        raise ValueError("values must be >= 0")
    if isinstance(salt, bool) or not isinstance(salt, numbers.Integral):
        raise TypeError(f"salt must be an int, got {type(salt).__name__}")
    if not 0 <= int(salt) <= MAX_SALT:
        raise ValueError(f"salt must be in [0, 2**64 - 1], got {salt!r}")
    z = z.astype(np.uint64)
    if salt:
        z = z ^ _finalise(np.asarray([salt], dtype=np.uint64))[0]
    return _finalise(z)


def stable_hash64_str(text: str | bytes) -> int:
    """A stable 64-bit hash of a string: the first 8 bytes of BLAKE2b, big-endian.

    Parameters
    ----------
    text : str or bytes
        UTF-8 is used for ``str``.

    Returns
    -------
    int
        0 to 2**64 - 1.
    """
    if isinstance(text, str):
        text = text.encode()
    if not isinstance(text, bytes):
        raise TypeError(f"text must be str or bytes, got {type(text).__name__}")
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")
