"""Argument checks shared by every :mod:`syslab` module.

Every public function validates its inputs with these helpers so that bad input
fails at once with a message naming the parameter, the value it got and what
is allowed -- instead of hanging a simulation or returning NaN three calls later.

Each helper returns the value converted to the plain Python (or numpy) type the
caller should use, so a check and a conversion are one line::

    size = validate.positive_int("pool_size", size)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "choice",
    "finite_float",
    "int_in_range",
    "non_negative_float",
    "non_negative_int",
    "positive_float",
    "positive_int",
    "probability",
    "rng_from_seed",
    "sequence_of_positive_ints",
    "sequence_of_floats",
    "float_in_range",
]


def _describe(value: object) -> str:
    return f"{value!r} (type {type(value).__name__})"


def _real(name: str, value: object) -> float:
    # bool is an int subclass; True as a rate or a size is always a bug.
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {_describe(value)}")
    result = float(value)
    if math.isnan(result):
        raise ValueError(f"{name} must be a number, got NaN")
    return result


def finite_float(name: str, value: object) -> float:
    """Return ``value`` as a float, requiring it to be finite.

    Parameters
    ----------
    name : str
        The caller's parameter name, used in the error message.
    value : object
        The argument to check.

    Returns
    -------
    float
    """
    result = _real(name, value)
    if not math.isfinite(result):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return result


def positive_float(name: str, value: object, *, allow_inf: bool = False) -> float:
    """Return ``value`` as a float, requiring ``value > 0`` (and finite unless ``allow_inf``).

    Parameters
    ----------
    name : str
        The caller's parameter name, used in the error message.
    value : object
        The argument to check.
    allow_inf : bool
        Accept +inf (an unbounded quantity).

    Returns
    -------
    float
    """
    result = _real(name, value)
    if not result > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    if math.isinf(result) and not allow_inf:
        raise ValueError(f"{name} must be finite, got {value!r}")
    return result


def non_negative_float(name: str, value: object, *, allow_inf: bool = False) -> float:
    """Return ``value`` as a float, requiring ``value >= 0`` (and finite unless ``allow_inf``).

    Parameters
    ----------
    name : str
        The caller's parameter name, used in the error message.
    value : object
        The argument to check.
    allow_inf : bool
        Accept +inf.

    Returns
    -------
    float
    """
    result = _real(name, value)
    if result < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    if math.isinf(result) and not allow_inf:
        raise ValueError(f"{name} must be finite, got {value!r}")
    return result


def float_in_range(
    name: str,
    value: object,
    low: float,
    high: float,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """Return ``value`` as a float, requiring it to lie between ``low`` and ``high``.

    Parameters
    ----------
    name : str
        The caller's parameter name, used in the error message.
    value : object
        The argument to check.
    low, high : float
        The bounds.
    low_inclusive, high_inclusive : bool
        Whether each bound is allowed.

    Returns
    -------
    float
    """
    result = _real(name, value)
    above = result >= low if low_inclusive else result > low
    below = result <= high if high_inclusive else result < high
    if not (above and below):
        left = "[" if low_inclusive else "("
        right = "]" if high_inclusive else ")"
        raise ValueError(f"{name} must be in {left}{low}, {high}{right}, got {value!r}")
    return result


def probability(name: str, value: object) -> float:
    """Return ``value`` as a float in [0, 1].

    Parameters
    ----------
    name : str
        The caller's parameter name, used in the error message.
    value : object
        The argument to check.

    Returns
    -------
    float
    """
    return float_in_range(name, value, 0.0, 1.0)


def _integer(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        # Accept 3.0 but not 3.5: sizes arrive from sweeps as floats surprisingly often.
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            as_float = float(value)
            if math.isfinite(as_float) and as_float.is_integer():
                return int(as_float)
        raise TypeError(f"{name} must be an integer, got {_describe(value)}")
    return int(value)


def positive_int(name: str, value: object) -> int:
    """Return ``value`` as an int, requiring ``value >= 1``.

    Parameters
    ----------
    name : str
        The caller's parameter name, used in the error message.
    value : object
        The argument to check.

    Returns
    -------
    int
    """
    result = _integer(name, value)
    if result < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return result


def non_negative_int(name: str, value: object) -> int:
    """Return ``value`` as an int, requiring ``value >= 0``.

    Parameters
    ----------
    name : str
        The caller's parameter name, used in the error message.
    value : object
        The argument to check.

    Returns
    -------
    int
    """
    result = _integer(name, value)
    if result < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return result


def int_in_range(name: str, value: object, low: int, high: int) -> int:
    """Return ``value`` as an int in the closed range [low, high].

    Parameters
    ----------
    name : str
        The caller's parameter name, used in the error message.
    value : object
        The argument to check.
    low, high : int
        The bounds, both allowed.

    Returns
    -------
    int
    """
    result = _integer(name, value)
    if not low <= result <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value!r}")
    return result


def choice(name: str, value: object, allowed: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``allowed`` (strings).

    Parameters
    ----------
    name : str
        The caller's parameter name, used in the error message.
    value : object
        The argument to check.
    allowed : iterable of str
        The accepted values.

    Returns
    -------
    str
    """
    if isinstance(allowed, (str, bytes)):
        raise TypeError(f"allowed must be a collection of strings, not the string {allowed!r}")
    options = tuple(allowed)
    if not options:
        raise ValueError("allowed must not be empty")
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}; got {value!r}")
    return value


def sequence_of_positive_ints(name: str, values: object) -> list[int]:
    """Return ``values`` as a non-empty list of ints, each ``>= 1``.

    Parameters
    ----------
    name : str
        The caller's parameter name, used in the error message.
    values : object
        A sequence of integers.

    Returns
    -------
    list of int
    """
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        raise TypeError(f"{name} must be a sequence of integers, got {_describe(values)}")
    if len(values) == 0:
        raise ValueError(f"{name} must not be empty")
    return [positive_int(f"{name}[{i}]", v) for i, v in enumerate(values)]


def sequence_of_floats(
    name: str,
    values: object,
    low: float,
    high: float,
    *,
    max_length: int,
    low_inclusive: bool = True,
) -> list[float]:
    """Return ``values`` as a non-empty list of at most ``max_length`` floats, each in ``[low, high]``.

    A string, a scalar or a mapping is refused with a TypeError naming ``name``; an element out
    of range is refused as ``name[i]``.

    Parameters
    ----------
    name : str
        The caller's parameter name, used in the error message.
    values : object
        A sequence (or 1-D array) of real numbers.
    low, high : float
        The bounds of every element (``high`` inclusive).
    max_length : int
        The most elements allowed (a module's ``MAX_*`` constant).
    low_inclusive : bool
        Whether ``low`` itself is allowed.

    Returns
    -------
    list of float
    """
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        raise TypeError(f"{name} must be a sequence of numbers, got {_describe(values)}")
    if not 1 <= len(values) <= max_length:
        raise ValueError(f"{name} must hold 1 to {max_length:,} values, got {len(values):,}")
    return [
        float_in_range(f"{name}[{i}]", v, low, high, low_inclusive=low_inclusive)
        for i, v in enumerate(values)
    ]


def rng_from_seed(seed: object, name: str = "seed") -> np.random.Generator:
    """Turn ``seed`` into a :class:`numpy.random.Generator`.

    Accepts an ``int`` (>= 0), a :class:`numpy.random.SeedSequence`, an existing
    ``Generator`` (returned unchanged, so callers can share one stream) or ``None``
    (fresh entropy: only for exploration, never for a published figure or a test).

    Parameters
    ----------
    seed : int, numpy.random.SeedSequence, numpy.random.Generator or None
        The caller's seed.
    name : str
        The caller's parameter name, used in error messages.

    Returns
    -------
    numpy.random.Generator
    """
    if seed is None or isinstance(seed, (np.random.Generator, np.random.SeedSequence)):
        return np.random.default_rng(seed)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(
            f"{name} must be an int, a numpy SeedSequence or Generator, or None; got {_describe(seed)}"
        )
    if seed < 0:
        raise ValueError(f"{name} must be >= 0, got {seed!r}")
    return np.random.default_rng(int(seed))


def instance(name: str, value: object, kind: type | tuple[type, ...]) -> object:
    """Return ``value`` if it is an instance of ``kind``; else a TypeError naming ``name``.

    Parameters
    ----------
    name : str
        The caller's parameter name.
    value : object
    kind : type or tuple of types

    Returns
    -------
    object
        ``value`` unchanged.
    """
    if not isinstance(value, kind):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        wanted = " or ".join(k.__name__ for k in kinds)
        raise TypeError(f"{name} must be a {wanted}, got {_describe(value)}")
    return value


def frame_columns(name: str, frame: object, required: Iterable[str]) -> pd.DataFrame:
    """Return ``frame`` if it is a DataFrame with every ``required`` column.

    Parameters
    ----------
    name : str
        The caller's parameter name.
    frame : object
    required : iterable of str
        Column names that must be present.

    Returns
    -------
    pandas.DataFrame
        ``frame`` unchanged.

    Raises
    ------
    TypeError
        Not a DataFrame.
    ValueError
        A column is missing (the message lists the missing and the present columns).
    """
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {_describe(frame)}")
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise ValueError(f"{name} is missing columns {missing}; it has {list(frame.columns)}")
    return frame


def bounded_int(name: str, value: object, high: int, *, low: int = 1) -> int:
    """An integer count or size in ``[low, high]``; the bound is in the error message.

    Every size, count and iteration limit in the library goes through this (or
    :func:`int_in_range`), so no input can exhaust memory or time.

    Parameters
    ----------
    name : str
        The caller's parameter name.
    value : object
        The argument.
    high : int
        The largest value allowed (a module's ``MAX_*`` constant).
    low : int
        The smallest value allowed.

    Returns
    -------
    int
    """
    return int_in_range(name, value, low, high)
