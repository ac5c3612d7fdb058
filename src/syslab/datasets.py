"""Data sets shipped inside the package (``syslab/data``), read the same way everywhere.

A chapter opened alone -- in Colab, or copied out of the repository -- has no ``../data``
folder beside it; the installed package always has its data. Each file's source is in
``syslab/data/README.md``.
"""

from __future__ import annotations

import re
from importlib import resources

import pandas as pd

__all__ = ["available", "read_csv"]

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\.csv$")


def available() -> list[str]:
    """Names of the CSV data sets shipped with the package, sorted.

    Returns
    -------
    list of str
    """
    folder = resources.files("syslab") / "data"
    return sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".csv"))


def read_csv(name: str) -> pd.DataFrame:
    """One shipped data set as a DataFrame.

    Parameters
    ----------
    name : str
        A plain file name from :func:`available` (``"latency_ladder.csv"``); paths are refused.

    Returns
    -------
    pandas.DataFrame
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {type(name).__name__}")
    if not _NAME.match(name) or name not in available():
        raise ValueError(f"name must be one of {available()}, got {name!r}")
    with resources.as_file(resources.files("syslab") / "data" / name) as path:
        return pd.read_csv(path)
