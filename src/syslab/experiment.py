"""The one result type of real experiments and replicated sweeps, and the one sweep helper.

Every ``run_*`` (a real experiment: processes, sockets, SQLite, a server) and every
``measure_*`` returns a :class:`Run`: the tidy frame of what happened, a small summary of
the numbers a chapter states, and the environment it happened in (machine, Python, and,
where a real engine took part, the engine's name, exact version and settings). A chapter
therefore reads every experiment the same way::

    run = shutdown.run_drain(config, seed=0)
    run.frame          # one row per request / key / event
    run.summary        # {"lost_requests": 0, ...}: what the prose quotes
    run.environment    # {"python": "3.11.7", "engine": "PostgreSQL 15.10", ...}

:func:`sweep` is the one replicated sweep: it calls a function once per (grid point,
replication) with an independent seed spawned from one :class:`numpy.random.SeedSequence`
and returns one tidy frame.
"""

from __future__ import annotations

import itertools
import numbers
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import pandas as pd

from syslab import environment, validate

__all__ = ["MAX_SWEEP_CALLS", "Run", "spawn_seeds", "sweep"]

# A sweep is one chapter's figure: a few hundred calls at most on a 2-core machine in 30 s.
MAX_SWEEP_CALLS = 10_000
MAX_REPLICATIONS = 1_000


def _frozen(mapping: Mapping[str, object] | None, name: str) -> Mapping[str, object]:
    if mapping is None:
        return MappingProxyType({})
    if not isinstance(mapping, Mapping):
        raise TypeError(f"{name} must be a mapping of names to values, got {type(mapping).__name__}")
    for key in mapping:
        if not isinstance(key, str):
            raise TypeError(f"{name} keys must be strings, got {key!r}")
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class Run:
    """What one real experiment or replicated sweep produced.

    Parameters
    ----------
    frame : pandas.DataFrame
        Tidy observations, one row per event (request, key, statement, ...). Column names
        carry units (``latency_ms``, ``size_bytes``).
    summary : Mapping[str, object]
        The handful of numbers (plain ``int``/``float``/``str``/``bool``) a chapter states.
    environment : Mapping[str, object]
        Where it ran: :func:`syslab.environment.describe` plus, for engine experiments,
        ``engine``, ``engine_version``, ``engine_settings`` and ``engine_source``.
    """

    frame: pd.DataFrame
    summary: Mapping[str, object] = field(default_factory=dict)
    environment: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.frame, pd.DataFrame):
            raise TypeError(f"frame must be a pandas DataFrame, got {type(self.frame).__name__}")
        object.__setattr__(self, "summary", _frozen(self.summary, "summary"))
        object.__setattr__(self, "environment", _frozen(self.environment, "environment"))

    @classmethod
    def create(
        cls,
        frame: pd.DataFrame,
        summary: Mapping[str, object] | None = None,
        *,
        engine: object | None = None,
        **environment_extra: object,
    ) -> Run:
        """A :class:`Run` with the machine's environment recorded now.

        Parameters
        ----------
        frame : pandas.DataFrame
            Tidy observations.
        summary : Mapping[str, object], optional
            Numbers the chapter states.
        engine : syslab.engines.Engine, optional
            The real server the experiment used; its ``describe()`` is merged into the
            environment (name, exact version, settings that matter, how it was obtained).
        **environment_extra
            Further facts about where it ran (e.g. ``filesystem="ext4"``).

        Returns
        -------
        Run
        """
        env: dict[str, object] = dict(environment.describe())
        if engine is not None:
            describe = getattr(engine, "describe", None)
            if not callable(describe):
                raise TypeError(f"engine must be a syslab.engines.Engine, got {type(engine).__name__}")
            env.update(describe())
        env.update(environment_extra)
        return cls(frame=frame, summary=dict(summary or {}), environment=env)

    def summary_frame(self) -> pd.DataFrame:
        """The summary as a two-column table (``quantity``, ``value``) for display."""
        return pd.DataFrame({"quantity": list(self.summary), "value": list(self.summary.values())})


def spawn_seeds(seed: int | np.random.SeedSequence | None, n: int) -> list[np.random.SeedSequence]:
    """``n`` independent child seeds of ``seed`` (``SeedSequence(seed).spawn(n)``).

    Parameters
    ----------
    seed : int or numpy.random.SeedSequence or None
        The parent seed (an ``int`` >= 0).
    n : int
        How many children, 1 to ``MAX_SWEEP_CALLS``.

    Returns
    -------
    list of numpy.random.SeedSequence
    """
    n = validate.int_in_range("n", n, 1, MAX_SWEEP_CALLS)
    if isinstance(seed, np.random.SeedSequence):
        parent = seed
    elif seed is None:
        parent = np.random.SeedSequence()
    elif isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an int >= 0, a numpy SeedSequence or None, got {type(seed).__name__}")
    elif seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed!r}")
    else:
        parent = np.random.SeedSequence(int(seed))
    return parent.spawn(n)


def _grid_points(grid: Mapping[str, Iterable[object]] | Iterable[Mapping[str, object]]) -> list[dict]:
    """The grid as a list of parameter dicts: a mapping of lists is expanded as a product."""
    if isinstance(grid, pd.DataFrame):
        return grid.to_dict("records")
    if isinstance(grid, Mapping):
        names = list(grid)
        values = []
        for name in names:
            column = grid[name]
            if isinstance(column, (str, bytes)) or not isinstance(column, Iterable):
                raise TypeError(f"grid[{name!r}] must be a list of values, got {type(column).__name__}")
            values.append(list(column))
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]
    if isinstance(grid, Iterable) and not isinstance(grid, (str, bytes)):
        points = list(itertools.islice(grid, MAX_SWEEP_CALLS + 1))
        for i, point in enumerate(points):
            if not isinstance(point, Mapping):
                raise TypeError(f"grid[{i}] must be a mapping of parameter names, got {type(point).__name__}")
        return [dict(p) for p in points]
    raise TypeError(f"grid must be a mapping of lists or a list of mappings, got {type(grid).__name__}")


def sweep(
    function: Callable[..., pd.DataFrame | Mapping[str, object] | Run],
    grid: Mapping[str, Iterable[object]] | Iterable[Mapping[str, object]],
    *,
    replications: int = 1,
    seed: int | np.random.SeedSequence | None = 0,
) -> pd.DataFrame:
    """Call ``function(**point, seed=child_seed)`` for every grid point and replication.

    Seeds come from one ``SeedSequence(seed).spawn(...)``, so every call has an independent
    stream and the whole sweep is reproducible from ``seed`` alone. The same replication
    index gets the same seed at every grid point (common random numbers), which makes
    differences between grid points less noisy.

    Parameters
    ----------
    function : callable
        Takes the grid's parameters as keywords plus ``seed`` (a ``SeedSequence``, which
        :func:`syslab.validate.rng_from_seed` accepts) and returns a DataFrame, a mapping
        of scalars (one row) or a :class:`Run` (its frame is used).
    grid : mapping of lists, or list of mappings, or DataFrame
        The parameter points. A mapping ``{"pool_size": [4, 8], "load": [0.5, 0.9]}`` is
        expanded as a Cartesian product.
    replications : int
        Independent repetitions per point, 1 to ``MAX_REPLICATIONS``.
    seed : int or numpy.random.SeedSequence or None
        The parent seed.

    Returns
    -------
    pandas.DataFrame
        The function's rows with the grid parameters and ``replication`` as leading columns.
    """
    if not callable(function):
        raise TypeError(f"function must be callable, got {type(function).__name__}")
    points = _grid_points(grid)
    if not points:
        raise ValueError("grid must contain at least one point")
    replications = validate.int_in_range("replications", replications, 1, MAX_REPLICATIONS)
    if len(points) * replications > MAX_SWEEP_CALLS:
        raise ValueError(
            f"grid × replications must be at most {MAX_SWEEP_CALLS:,} calls, "
            f"got {len(points):,} × {replications:,}"
        )
    seeds = spawn_seeds(seed, replications)
    pieces = []
    for point in points:
        for replication, child in enumerate(seeds):
            result = function(**point, seed=child)
            if isinstance(result, Run):
                result = result.frame
            if isinstance(result, Mapping):
                result = pd.DataFrame([dict(result)])
            if not isinstance(result, pd.DataFrame):
                raise TypeError(
                    f"function must return a DataFrame, a mapping or a Run, got {type(result).__name__}"
                )
            frame = result.copy()
            leading = {**point, "replication": replication}
            for position, (name, value) in enumerate(leading.items()):
                if name in frame.columns:
                    frame = frame.drop(columns=name)
                frame.insert(position, name, value)
            pieces.append(frame)
    return pd.concat(pieces, ignore_index=True)
