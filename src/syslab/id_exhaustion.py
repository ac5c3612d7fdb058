"""Running out of AUTO_INCREMENT: integer limits, how each engine fails, burn rate and runway.

Four kinds of function live here:

- **facts** -- :func:`integer_limits` (the ranges of SQL integer types) and
  :data:`ENGINE_ERRORS`, the error each engine raises when its counter is spent,
  quoted from the engines' own sources and manuals;
- **model** -- :func:`simulate_counter_inserts`, a faithful model of InnoDB's
  auto-increment counter (it *pins* at the type's maximum, so the next insert
  reuses that value and collides: error 1062), next to MariaDB's range check
  (error 167) and PostgreSQL's sequence (SQLSTATE 2200H);
- **burn rate and runway** -- :func:`simulate_id_burn` (IDs consumed by
  rollbacks, ``INSERT IGNORE``/``ON DUPLICATE KEY UPDATE`` and bulk
  reservations), :func:`theory_ids_per_statement`, :func:`project_id_usage`
  and the closed form :func:`theory_days_until`;
- **real** -- :func:`run_sqlite_wall`, real SQLite at its own 64-bit wall, and a
  32-bit column emulated with a ``CHECK`` constraint.

SQLite is not MySQL: its ``INTEGER PRIMARY KEY`` is the 64-bit rowid, so the
2^31 wall only exists there if we build it (a ``CHECK``).
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from syslab import validate
from syslab.experiment import Run
from syslab.plot import axes_or_new, label

__all__ = [
    "BurnMix",
    "ENGINE_ERRORS",
    "INT_MAX",
    "SQLITE_INT64_MAX",
    "bulk_reserved_ids",
    "check_projection",
    "measure_burned_ids",
    "run_engine_wall",
    "summarize_burned_ids",
    "summarize_engine_walls",
    "integer_limits",
    "plot_alert_sweep",
    "plot_runway",
    "project_id_usage",
    "run_sqlite_wall",
    "simulate_counter_inserts",
    "simulate_id_burn",
    "summarize_burn",
    "sweep_alert_runway",
    "theory_days_until",
    "theory_ids_per_statement",
]

INT_MAX = 2**31 - 1  # 2,147,483,647: the largest signed 32-bit INT
MAX_BULK_SUM_ROWS = 10_000_000  # rows summed over in theory_ids_per_statement (80 MB of arrays)
MAX_SWEEP_POINTS = 1_000  # growth rates or alert fractions in sweep_alert_runway

# Reader's headers (column -> words with units) for the tables a chapter shows with notebook.table.
TABLE_HEADERS = {
    "model_walls": {
        "engine": "engine (model)",
        "attempt": "insert",
        "value": "id handed out",
        "stored": "stored",
        "sqlstate": "SQLSTATE",
        "message": "message",
    },
    "engine_walls": {
        "case": "case",
        "attempt": "insert",
        "ok": "no error",
        "errno": "error",
        "sqlstate": "SQLSTATE",
        "message": "message",
    },
    "burn": {
        "kind": "statement kind",
        "statements": "statements",
        "ids_consumed": "ids consumed",
        "rows_stored": "rows stored",
        "ids_wasted": "ids wasted",
    },
    "engine_burn": {
        "kind": "statement",
        "statements": "statements",
        "rows_stored": "rows stored",
        "ids_consumed": "ids consumed",
        "model_ids": "model's ids",
    },
    "projection_check": {
        "alert_fraction": "alert at (share of maximum)",
        "day_in_projection": "day, projection",
        "day_closed_form": "day, closed form",
    },
    "sqlite_wall": {
        "scenario": "scenario",
        "step": "step",
        "outcome": "outcome",
        "rowid": "rowid",
        "message": "message",
    },
}
SQLITE_INT64_MAX = 2**63 - 1  # 9,223,372,036,854,775,807: the largest rowid

# Width in bytes of MySQL's integer types (MySQL 8.0 manual, "Integer Types").
_TYPES = {"TINYINT": 1, "SMALLINT": 2, "MEDIUMINT": 3, "INT": 4, "BIGINT": 8}

# The error each engine raises when the generated key no longer fits. Sources:
# MySQL bug #80373 and the 8.0 manual (error 1062, key name 't.PRIMARY' from 8.0.19);
# MariaDB mysql-test/r/auto_increment_ranges_innodb.result (error 167);
# PostgreSQL src/backend/commands/sequence.c, nextval_internal (SQLSTATE 2200H);
# PostgreSQL before 10: serial was a bigint sequence feeding an int4 column (22003).
ENGINE_ERRORS = {
    "mysql": {
        "code": 1062,
        "sqlstate": "23000",
        "message": "Duplicate entry '{max}' for key '{table}.PRIMARY'",
    },
    "mariadb": {
        "code": 167,
        "sqlstate": "22003",
        "message": "Out of range value for column '{column}' at row 1",
    },
    "postgresql": {
        "code": None,
        "sqlstate": "2200H",
        "message": 'nextval: reached maximum value of sequence "{table}_{column}_seq" ({max})',
    },
    "postgresql-pre10": {
        "code": None,
        "sqlstate": "22003",
        "message": "integer out of range",
    },
}


def integer_limits() -> pd.DataFrame:
    """The range of each SQL integer type, signed and unsigned.

    Returns
    -------
    pandas.DataFrame
        One row per (type, signedness) with ``type``, ``bytes``, ``signed`` (bool),
        ``min_value`` and ``max_value`` (Python ints, exact), and ``max_billions``.
        PostgreSQL has no unsigned types; its ``integer``/``bigint`` match INT/BIGINT.
    """
    rows = []
    for name, width in _TYPES.items():
        bits = 8 * width
        for signed in (True, False):
            low = -(2 ** (bits - 1)) if signed else 0
            high = 2 ** (bits - 1) - 1 if signed else 2**bits - 1
            rows.append(
                {
                    "type": name if signed else f"{name} UNSIGNED",
                    "bytes": width,
                    "signed": signed,
                    "min_value": low,
                    "max_value": high,
                    "max_billions": high / 1e9,
                }
            )
    return pd.DataFrame(rows)


def _type_max(column_type: str) -> int:
    table = integer_limits().set_index("type")
    column_type = validate.choice("column_type", column_type, list(table.index))
    return int(table.loc[column_type, "max_value"])


def simulate_counter_inserts(
    start_value: int,
    n_inserts: int,
    *,
    engine: str = "mysql",
    column_type: str = "INT",
    insert_ignore: bool = False,
    table: str = "t",
    column: str = "id",
) -> pd.DataFrame:
    """Insert ``n_inserts`` rows with a generated key, starting the counter at ``start_value``.

    The engines differ in what happens when the next value does not fit:

    - ``"mysql"`` (InnoDB): the counter is computed as ``min(next, max)`` -- it pins at
      the maximum instead of overflowing. The row at the maximum is stored once; the
      next insert is handed the *same* value, the primary key rejects it, and the
      client sees error 1062 "Duplicate entry" for a value nobody inserted twice.
      With ``INSERT IGNORE`` that error becomes a warning and the row is dropped.
    - ``"mariadb"``: the server checks the range first and raises 167 (22003)
      "Out of range value" (a warning that drops the row under ``IGNORE``).
    - ``"postgresql"``: ``nextval`` refuses to pass the sequence's ``MAXVALUE``
      (2147483647 for ``serial`` since PostgreSQL 10) with SQLSTATE 2200H.
    - ``"postgresql-pre10"``: a bigint sequence hands out 2^31 and the int4 column
      rejects it: 22003 "integer out of range".

    Parameters
    ----------
    start_value : int
        The counter's next value before the first insert (``AUTO_INCREMENT=`` in
        ``SHOW CREATE TABLE``), 1 <= start_value <= the type's maximum.
    n_inserts : int
        Number of single-row inserts to attempt, <= 10^6.
    engine : {"mysql", "mariadb", "postgresql", "postgresql-pre10"}
    column_type : str
        One of :func:`integer_limits`' types, e.g. ``"INT"``, ``"INT UNSIGNED"``, ``"BIGINT"``.
    insert_ignore : bool
        MySQL/MariaDB ``INSERT IGNORE``: errors become warnings and the row is dropped.
    table, column : str
        Names used in the error messages.

    Returns
    -------
    pandas.DataFrame
        One row per attempt: ``attempt``, ``value`` (the key the engine tried, or -1
        when none was produced), ``stored`` (bool), ``counter_after`` (the counter
        as ``SHOW CREATE TABLE``/the sequence would show it), ``error_code`` (int,
        0 when none), ``sqlstate`` (str, "" when none), ``severity``
        ("", "error" or "warning") and ``message``.
    """
    engine = validate.choice("engine", engine, tuple(ENGINE_ERRORS))
    max_value = _type_max(column_type)
    start = validate.int_in_range("start_value", start_value, 1, max_value)
    n = validate.int_in_range("n_inserts", n_inserts, 1, 1_000_000)
    if not isinstance(insert_ignore, bool):
        raise TypeError("insert_ignore must be a bool")
    if engine.startswith("postgresql") and insert_ignore:
        raise ValueError("insert_ignore is MySQL/MariaDB syntax; engine must be 'mysql' or 'mariadb'")
    for name, value in (("table", table), ("column", column)):
        if not isinstance(value, str) or not value.isidentifier():
            raise TypeError(f"{name} must be an SQL identifier (a str), got {value!r}")
    spec = ENGINE_ERRORS[engine]
    message = spec["message"].format(max=max_value, table=table, column=column)
    stored_keys: set[int] = set()
    counter = start
    exhausted = False  # PostgreSQL: the sequence has handed out its last value
    rows = []
    for attempt in range(n):
        value, error = counter, False
        if engine == "mysql":
            # InnoDB: the value is the counter; the counter then pins at max (never wraps).
            error = value in stored_keys
            counter = min(counter + 1, max_value)
        elif engine == "mariadb":
            # A counter past the maximum is caught as a range error before the index sees it.
            error = value > max_value
            if not error:
                counter = counter + 1
        elif engine == "postgresql":
            if exhausted:
                value, error = -1, True
            elif counter == max_value:
                exhausted = True  # nextval returned MAXVALUE; the next call fails
        else:  # postgresql-pre10: the bigint sequence keeps counting; the int4 cast fails
            error = value > max_value
            counter = counter + 1
        if error:
            severity = "warning" if insert_ignore else "error"
            rows.append((attempt, value, False, counter, spec, severity, message))
        else:
            stored_keys.add(value)
            if engine == "postgresql" and not exhausted:
                counter = counter + 1
            rows.append((attempt, value, True, counter, None, "", ""))
    return pd.DataFrame(
        {
            "attempt": [r[0] for r in rows],
            "value": [r[1] for r in rows],
            "stored": [r[2] for r in rows],
            "counter_after": [r[3] for r in rows],
            "error_code": [int(r[4]["code"] or 0) if r[4] else 0 for r in rows],
            "sqlstate": [r[4]["sqlstate"] if r[4] else "" for r in rows],
            "severity": [r[5] for r in rows],
            "message": [r[6] for r in rows],
        }
    )


# ------------------------------------------------------------------ burn rate


def bulk_reserved_ids(rows: int | np.ndarray) -> np.ndarray:
    """IDs MySQL reserves for a bulk insert of ``rows`` rows whose count it cannot know.

    ``INSERT ... SELECT`` and ``LOAD DATA`` do not tell the server how many rows
    will come, so ``handler::update_auto_increment`` (sql/handler.cc) reserves
    intervals of 1, 2, 4, ... values, doubling up to 65,535
    (``AUTO_INC_DEFAULT_NB_MAX``), until the statement ends; what is left of the
    last interval is lost. Multi-row ``INSERT ... VALUES`` knows its count and
    wastes nothing.

    Parameters
    ----------
    rows : int or array of int
        Rows the statement inserts, >= 1.

    Returns
    -------
    numpy.ndarray
        int64 IDs consumed (>= rows).
    """
    n = np.atleast_1d(np.asarray(rows))
    if n.size == 0 or not np.issubdtype(n.dtype, np.integer) or np.any(n < 1):
        raise ValueError("rows must be integers >= 1")
    cap = 2**16 - 1
    # Doubling phase: intervals 1, 2, ..., 2^15 reserve 2^16 - 1 values in total.
    doubling_total = 2**16 - 1
    # Within the doubling phase: the smallest k with 2^k - 1 >= n reserves 2^k - 1.
    k = np.ceil(np.log2(n.astype(float) + 1.0)).astype(np.int64)
    within = (2**k - 1).astype(np.int64)
    beyond = doubling_total + cap * np.ceil((n - doubling_total) / cap).astype(np.int64)
    return np.where(n <= doubling_total, within, beyond).astype(np.int64)


@dataclass(frozen=True)
class BurnMix:
    """What a write statement does to the counter, as fractions of all write statements.

    Attributes
    ----------
    rollback : float
        Single-row inserts whose transaction rolls back: one ID consumed, no row.
    upsert_hit : float
        ``INSERT ... ON DUPLICATE KEY UPDATE`` that finds the row and updates it:
        one ID consumed (InnoDB allocates before it detects the duplicate), no new row.
    ignore_dup : float
        ``INSERT IGNORE`` that hits a duplicate: one ID consumed, no row.
    bulk : float
        ``INSERT ... SELECT`` of ``bulk_mean_rows`` rows on average (geometric):
        reserved in doubling intervals, see :func:`bulk_reserved_ids`.
    bulk_mean_rows : float
        Mean rows per bulk statement, >= 1.
    The rest are plain single-row inserts that store a row with one ID.
    """

    rollback: float = 0.02  # fraction of statements
    upsert_hit: float = 0.20  # fraction of statements
    ignore_dup: float = 0.05  # fraction of statements
    bulk: float = 0.001  # fraction of statements
    bulk_mean_rows: float = 300.0  # rows per bulk statement

    def __post_init__(self) -> None:
        total = 0.0
        for name in ("rollback", "upsert_hit", "ignore_dup", "bulk"):
            total += validate.probability(name, getattr(self, name))
        if total > 1:
            raise ValueError(f"rollback + upsert_hit + ignore_dup + bulk must be <= 1, got {total}")
        validate.float_in_range("bulk_mean_rows", self.bulk_mean_rows, 1.0, 1e7)

    @property
    def plain(self) -> float:
        """Fraction of plain single-row inserts."""
        return 1.0 - self.rollback - self.upsert_hit - self.ignore_dup - self.bulk


_KINDS = ("insert", "rollback", "upsert_hit", "ignore_dup", "bulk")


def _bulk_rows(mean_rows: float, size: int, rng: np.random.Generator) -> np.ndarray:
    # Geometric on {1, 2, ...} with the requested mean.
    return rng.geometric(1.0 / mean_rows, size=size).astype(np.int64)


def simulate_id_burn(
    n_statements: int, mix: BurnMix | None = None, *, seed: int | np.random.Generator | None = 0
) -> pd.DataFrame:
    """Draw ``n_statements`` write statements and count IDs consumed and rows stored.

    Parameters
    ----------
    n_statements : int
        Statements to draw (vectorised; 10^6 takes well under a second).
    mix : BurnMix, optional
        Fractions of each kind of statement (defaults: ``BurnMix()``).
    seed : int, Generator or None

    Returns
    -------
    pandas.DataFrame
        One row per statement: ``kind`` (``insert``, ``rollback``, ``upsert_hit``,
        ``ignore_dup``, ``bulk``), ``rows_stored`` and ``ids_consumed`` (int).
    """
    n = validate.int_in_range("n_statements", n_statements, 1, 10_000_000)
    mix = BurnMix() if mix is None else mix
    if not isinstance(mix, BurnMix):
        raise TypeError(f"mix must be a BurnMix, got {type(mix).__name__}")
    rng = validate.rng_from_seed(seed)
    p = np.array([mix.plain, mix.rollback, mix.upsert_hit, mix.ignore_dup, mix.bulk])
    kind = rng.choice(len(_KINDS), size=n, p=p / p.sum())
    stored = np.where(kind == 0, 1, 0).astype(np.int64)
    consumed = np.ones(n, dtype=np.int64)
    is_bulk = kind == 4
    if is_bulk.any():
        rows = _bulk_rows(mix.bulk_mean_rows, int(is_bulk.sum()), rng)
        stored[is_bulk] = rows
        consumed[is_bulk] = bulk_reserved_ids(rows)
    return pd.DataFrame({"kind": np.array(_KINDS)[kind], "rows_stored": stored, "ids_consumed": consumed})


def summarize_burn(df: pd.DataFrame) -> pd.DataFrame:
    """IDs consumed and rows stored per kind of statement, and the overall burn multiplier.

    Parameters
    ----------
    df : pandas.DataFrame
        What :func:`simulate_id_burn` returns: ``kind``, ``rows_stored``, ``ids_consumed``.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``kind`` plus a ``total`` row: ``statements``, ``rows_stored``,
        ``ids_consumed``, ``ids_wasted`` and ``share_of_ids`` (fraction of all IDs
        consumed); the ``total`` row's ``ids_per_row`` is the multiplier to apply to a
        row growth rate to get the ID burn rate.
    """
    df = validate.frame_columns("df", df, ["kind", "rows_stored", "ids_consumed"])
    if df.empty:
        raise ValueError("df must have at least one row")
    if df[["rows_stored", "ids_consumed"]].isna().any().any():
        raise ValueError("df must not hold NaN in rows_stored or ids_consumed")
    table = df.groupby("kind").agg(
        statements=("kind", "size"), rows_stored=("rows_stored", "sum"), ids_consumed=("ids_consumed", "sum")
    )
    table.loc["total"] = table.sum()
    table["ids_wasted"] = table["ids_consumed"] - table["rows_stored"]
    table["share_of_ids"] = table["ids_consumed"] / table.loc["total", "ids_consumed"]
    table["ids_per_row"] = table["ids_consumed"] / table["rows_stored"].replace(0, np.nan)
    return table


def theory_ids_per_statement(mix: BurnMix | None = None, *, max_rows: int = 200_000) -> dict[str, float]:
    """Expected IDs consumed and rows stored per statement, summed exactly over the bulk-size law.

    Parameters
    ----------
    mix : BurnMix, optional
        The write mix (default :class:`BurnMix`).
    max_rows : int
        Largest bulk statement summed over (rows), 1 to :data:`MAX_BULK_SUM_ROWS`; the geometric
        law's tail beyond it is negligible for the default mean.

    Returns
    -------
    dict
        ``ids_per_statement``, ``rows_per_statement`` and ``ids_per_row``.
    """
    mix = BurnMix() if mix is None else mix
    if not isinstance(mix, BurnMix):
        raise TypeError(f"mix must be a BurnMix, got {type(mix).__name__}")
    cap = validate.bounded_int("max_rows", max_rows, MAX_BULK_SUM_ROWS)
    q = 1.0 / mix.bulk_mean_rows
    k = np.arange(1, cap + 1)
    pmf = q * (1 - q) ** (k - 1)
    bulk_ids = float(np.sum(pmf * bulk_reserved_ids(k)))
    ids = mix.plain + mix.rollback + mix.upsert_hit + mix.ignore_dup + mix.bulk * bulk_ids
    rows = mix.plain + mix.bulk * mix.bulk_mean_rows
    return {"ids_per_statement": ids, "rows_per_statement": rows, "ids_per_row": ids / rows}


# ------------------------------------------------------------------ runway


def project_id_usage(
    current_value: int,
    ids_per_day: float,
    *,
    daily_growth: float = 0.0,
    max_value: int = INT_MAX,
    horizon_days: int = 3650,
) -> pd.DataFrame:
    """Day-by-day projection of the counter under traffic growing by ``daily_growth`` a day.

    The burn rate on day d is ``ids_per_day * (1 + daily_growth) ** d``; the counter
    is the running sum, capped at ``max_value`` (it pins, as InnoDB's does).

    Parameters
    ----------
    current_value : int
        Today's counter, 0 to ``max_value``.
    ids_per_day : float
        Ids consumed per day today (> 0).
    daily_growth : float
        Growth of the rate per day, 0 to 1 (0.003 is 0.3 % a day).
    max_value : int
        The type's maximum (default a signed INT's).
    horizon_days : int
        Days to project, 1 to 100,000.

    Returns
    -------
    pandas.DataFrame
        One row per day: ``day``, ``ids_per_day``, ``value`` (the counter at the end
        of the day), ``fraction_used`` and ``days_left`` (runway at that day's rate).
    """
    max_value = validate.positive_int("max_value", max_value)
    current = validate.int_in_range("current_value", current_value, 0, max_value)
    rate = validate.positive_float("ids_per_day", ids_per_day)
    growth = validate.float_in_range("daily_growth", daily_growth, 0.0, 1.0)
    horizon = validate.int_in_range("horizon_days", horizon_days, 1, 100_000)
    day = np.arange(horizon + 1)
    per_day = rate * (1.0 + growth) ** day
    used = current + np.concatenate([[0.0], np.cumsum(per_day[:-1])])
    value = np.minimum(used, max_value)
    return pd.DataFrame(
        {
            "day": day,
            "ids_per_day": per_day,
            "value": value,
            "fraction_used": value / max_value,
            "days_left": (max_value - value) / per_day,
        }
    )


def theory_days_until(
    fraction: float,
    current_value: int,
    ids_per_day: float,
    *,
    daily_growth: float = 0.0,
    max_value: int = INT_MAX,
) -> float:
    """Days until the counter reaches ``fraction`` of ``max_value`` (closed form).

    With a constant rate R: ``t = (f M - v) / R``. With the rate growing continuously
    at ``g = ln(1 + daily_growth)`` a day, the IDs used by day t are
    ``R (e^{g t} - 1) / g``, so ``t = ln(1 + g (f M - v) / R) / g``.

    Parameters
    ----------
    fraction : float
        Share of ``max_value`` to reach, 0 to 1.
    current_value : int
        Today's counter, 0 to ``max_value``.
    ids_per_day : float
        Ids consumed per day today (> 0).
    daily_growth : float
        Growth of the rate per day, 0 to 1.
    max_value : int
        The type's maximum (default a signed INT's).

    Returns
    -------
    float
        Days (0 when the counter is already past the fraction).
    """
    f = validate.float_in_range("fraction", fraction, 0.0, 1.0)
    max_value = validate.positive_int("max_value", max_value)
    current = validate.int_in_range("current_value", current_value, 0, max_value)
    rate = validate.positive_float("ids_per_day", ids_per_day)
    growth = validate.float_in_range("daily_growth", daily_growth, 0.0, 1.0)
    remaining = f * max_value - current
    if remaining <= 0:
        return 0.0
    if growth == 0:
        return remaining / rate
    g = math.log1p(growth)
    return math.log1p(g * remaining / rate) / g


def sweep_alert_runway(
    current_value: int,
    ids_per_day: float,
    daily_growths: list[float] | np.ndarray,
    alert_fractions: list[float] | np.ndarray,
    *,
    max_value: int = INT_MAX,
) -> pd.DataFrame:
    """Runway left when an alert at each fraction fires, for each traffic growth rate.

    Parameters
    ----------
    current_value : int
        Today's counter.
    ids_per_day : float
        Ids consumed per day today (> 0).
    daily_growths : sequence of float
        Growth rates per day to try, each 0 to 1 (at most :data:`MAX_SWEEP_POINTS`).
    alert_fractions : sequence of float
        Alert thresholds as shares of the maximum, each 0 to 1 (at most :data:`MAX_SWEEP_POINTS`).
    max_value : int
        The type's maximum (default a signed INT's).

    Returns
    -------
    pandas.DataFrame
        One row per (growth, fraction): ``daily_growth``, ``alert_fraction``,
        ``days_to_alert``, ``days_to_wall`` and ``runway_at_alert_days`` (the time the
        team has between the page and the outage).
    """
    lists = {}
    for name, values in (("daily_growths", daily_growths), ("alert_fractions", alert_fractions)):
        if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
            raise TypeError(f"{name} must be a sequence of numbers, got {type(values).__name__}")
        if not 1 <= len(values) <= MAX_SWEEP_POINTS:
            raise ValueError(f"{name} must hold 1 to {MAX_SWEEP_POINTS} values, got {len(values)}")
        lists[name] = [validate.float_in_range(f"{name}[{i}]", v, 0.0, 1.0) for i, v in enumerate(values)]
    growths, fractions = lists["daily_growths"], lists["alert_fractions"]
    rows = []
    for growth in growths:
        wall = theory_days_until(1.0, current_value, ids_per_day, daily_growth=growth, max_value=max_value)
        for fraction in fractions:
            alert = theory_days_until(
                fraction, current_value, ids_per_day, daily_growth=growth, max_value=max_value
            )
            rows.append(
                {
                    "daily_growth": float(growth),
                    "alert_fraction": float(fraction),
                    "days_to_alert": alert,
                    "days_to_wall": wall,
                    "runway_at_alert_days": wall - alert,
                }
            )
    return pd.DataFrame(rows)


def plot_alert_sweep(sweep: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Runway left at the alert against traffic growth, one line per alert fraction.

    Parameters
    ----------
    sweep : pandas.DataFrame
        What :func:`sweep_alert_runway` returns.
    ax : matplotlib Axes, optional
        Where to draw (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes
    """
    sweep = validate.frame_columns("sweep", sweep, ["alert_fraction", "daily_growth", "runway_at_alert_days"])
    ax = axes_or_new(ax)
    for fraction, group in sweep.groupby("alert_fraction"):
        ax.plot(
            group["daily_growth"] * 100, group["runway_at_alert_days"], marker="o", label=f"{fraction:.0%}"
        )
    ax.legend(title="alert at")
    return label(ax, "traffic growth (% per day)", "runway left when the alert fires (days)")


def plot_runway(projection: pd.DataFrame, alert_fraction: float = 0.7, ax: Axes | None = None) -> Axes:
    """Counter value (as a fraction of the maximum) against days, with the alert and the wall.

    Parameters
    ----------
    projection : pandas.DataFrame
        What :func:`project_id_usage` returns (``day``, ``fraction_used``).
    alert_fraction : float
        The alert threshold as a share of the maximum, 0 to 1.
    ax : matplotlib Axes, optional
        Where to draw (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes
    """
    projection = validate.frame_columns("projection", projection, ["day", "fraction_used"])
    alert_fraction = validate.float_in_range("alert_fraction", alert_fraction, 0.0, 1.0)
    ax = axes_or_new(ax)
    ax.plot(projection["day"], projection["fraction_used"] * 100, label="counter")
    ax.axhline(100, color="C1", linestyle="--", label="type maximum")
    ax.axhline(alert_fraction * 100, color="C3", linestyle=":", label=f"{alert_fraction:.0%} alert")
    ax.set_ylim(0, 105)
    return label(ax, "days from now", "counter (% of maximum)", legend=True)


# ------------------------------------------------------------------ real SQLite


def _error_name(error: sqlite3.Error) -> str:
    # Python >= 3.11 exposes the SQLite result code name; older versions only the text.
    return str(getattr(error, "sqlite_errorname", type(error).__name__))


def run_sqlite_wall(n_after_max: int = 5) -> Run:
    """Drive real SQLite (in memory) into its own limits.

    Scenarios:

    - ``autoincrement``: ``INTEGER PRIMARY KEY AUTOINCREMENT`` with a row at 2^63 - 1;
      the next insert fails with SQLITE_FULL ("database or disk is full").
    - ``rowid``: the same without ``AUTOINCREMENT``: SQLite picks unused rowids at
      random, so inserts succeed with keys that are no longer increasing.
    - ``int32 check``: ``CHECK (id <= 2147483647)`` emulates a signed INT; the row
      at 2147483647 is stored and the next one fails the CHECK.
    - ``arithmetic``: ``9223372036854775807 + 1`` becomes a REAL.

    Parameters
    ----------
    n_after_max : int
        Inserts to attempt after each table reaches its maximum (1..50).

    Returns
    -------
    syslab.experiment.Run
        ``frame``: one row per statement: ``scenario``, ``step``, ``outcome`` ("ok"/"error"),
        ``rowid`` (int or None), ``error`` (SQLite's error name, "" when none) and
        ``message``. ``summary``: ``sqlite`` (the library's version). ``environment``: where it
        ran (it includes ``sqlite``).
    """
    n = validate.int_in_range("n_after_max", n_after_max, 1, 50)
    rows: list[dict[str, object]] = []

    def attempt(conn: sqlite3.Connection, scenario: str, step: int, sql: str, params=()) -> None:
        try:
            cursor = conn.execute(sql, params)
            rows.append(
                {
                    "scenario": scenario,
                    "step": step,
                    "outcome": "ok",
                    "rowid": cursor.lastrowid,
                    "error": "",
                    "message": "",
                }
            )
        except sqlite3.Error as error:
            rows.append(
                {
                    "scenario": scenario,
                    "step": step,
                    "outcome": "error",
                    "rowid": None,
                    "error": _error_name(error),
                    "message": str(error),
                }
            )

    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        conn.execute("CREATE TABLE a (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT)")
        attempt(conn, "autoincrement", 0, "INSERT INTO a (id, v) VALUES (?, 'at max')", (SQLITE_INT64_MAX,))
        for step in range(1, n + 1):
            attempt(conn, "autoincrement", step, "INSERT INTO a (v) VALUES ('next')")
        conn.execute("CREATE TABLE r (id INTEGER PRIMARY KEY, v TEXT)")
        attempt(conn, "rowid", 0, "INSERT INTO r (id, v) VALUES (?, 'at max')", (SQLITE_INT64_MAX,))
        for step in range(1, n + 1):
            attempt(conn, "rowid", step, "INSERT INTO r (v) VALUES ('next')")
        conn.execute(f"CREATE TABLE i (id INTEGER PRIMARY KEY CHECK (id <= {INT_MAX}), v TEXT)")
        attempt(conn, "int32 check", 0, "INSERT INTO i (id, v) VALUES (?, 'near max')", (INT_MAX - 1,))
        for step in range(1, n + 1):
            attempt(conn, "int32 check", step, "INSERT INTO i (v) VALUES ('next')")
        overflow = f"{SQLITE_INT64_MAX} + 1"
        value, kind = conn.execute(f"SELECT {overflow}, typeof({overflow})").fetchone()
        rows.append(
            {
                "scenario": "arithmetic",
                "step": 0,
                "outcome": "ok",
                "rowid": None,
                "error": "",
                "message": f"{SQLITE_INT64_MAX} + 1 = {value!r} ({kind})",
            }
        )
    finally:
        conn.close()
    frame = pd.DataFrame(rows)
    # Keep rowids as exact Python ints: 2^63 - 1 does not survive a float64 column.
    frame["rowid"] = pd.Series([r["rowid"] for r in rows], dtype=object)
    return Run.create(frame, {"sqlite": sqlite3.sqlite_version})


# ------------------------------------------------------------------ real PostgreSQL and MariaDB

MAX_WALL_INSERTS = 20  # inserts attempted per case at the wall
MAX_BURN_STATEMENTS = 1_000  # statements of each kind in measure_burned_ids
MAX_BULK_ROWS = 100_000  # rows of one INSERT ... SELECT in measure_burned_ids
MAX_ENGINE_TIMEOUT_S = 120.0


def _wall_cases(kind: str) -> list[dict[str, object]]:
    """The walls to hit on one engine: DDL, how to put the counter one below the top, the insert."""
    if kind == "mariadb":
        cases = []
        for sql_mode, mode_name in (("STRICT_TRANS_TABLES", "strict"), ("", "not strict")):
            for column_type, top in (("INT", INT_MAX), ("INT UNSIGNED", 2**32 - 1)):
                cases.append(
                    {
                        "case": f"{column_type} AUTO_INCREMENT, {mode_name}",
                        "column_type": column_type,
                        "setting": f"sql_mode='{sql_mode}'",
                        "setup": [
                            f"SET SESSION sql_mode = '{sql_mode}'",
                            f"CREATE TABLE t (id {column_type} NOT NULL AUTO_INCREMENT PRIMARY KEY, v INT)"
                            f" ENGINE=InnoDB AUTO_INCREMENT={top - 1}",
                        ],
                        "insert": "INSERT INTO t (v) VALUES (1)",
                        "top": top,
                    }
                )
        cases.append(
            {
                "case": "INT, INSERT IGNORE at the top, strict",
                "column_type": "INT",
                "setting": "sql_mode='STRICT_TRANS_TABLES'",
                "setup": [
                    "SET SESSION sql_mode = 'STRICT_TRANS_TABLES'",
                    f"CREATE TABLE t (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=InnoDB"
                    f" AUTO_INCREMENT={INT_MAX - 1}",
                ],
                "insert": "INSERT IGNORE INTO t (v) VALUES (1)",
                "top": INT_MAX,
            }
        )
        # An application that writes its own ids (a copy job, a "max(id)+1" generator): outside strict
        # mode the out-of-range value is clamped to the maximum with a warning and then collides.
        cases.append(
            {
                "case": "INT, explicit id past the top, not strict",
                "column_type": "INT",
                "setting": "sql_mode=''",
                "setup": [
                    "SET SESSION sql_mode = ''",
                    "CREATE TABLE t (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=InnoDB",
                ],
                "insert": f"INSERT INTO t (id, v) VALUES ({INT_MAX + 1}, 1)",
                "top": INT_MAX,
            }
        )
        return cases
    return [
        {
            "case": "serial",
            "column_type": "integer",
            "setting": "serial (integer sequence)",
            "setup": [
                "CREATE TABLE t (id serial PRIMARY KEY, v int)",
                f"SELECT setval('t_id_seq', {INT_MAX - 2})",
            ],
            "insert": "INSERT INTO t (v) VALUES (1) RETURNING id",
            "top": INT_MAX,
        },
        {
            "case": "integer identity",
            "column_type": "integer",
            "setting": "GENERATED ALWAYS AS IDENTITY",
            "setup": [
                "CREATE TABLE t (id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v int)",
                f"SELECT setval(pg_get_serial_sequence('t', 'id'), {INT_MAX - 2})",
            ],
            "insert": "INSERT INTO t (v) VALUES (1) RETURNING id",
            "top": INT_MAX,
        },
        {
            # The emergency lever: restart the sequence at the negative end of the type. It buys
            # another 2^31 ids if the application accepts negative keys; nothing is rewritten.
            "case": "serial, restarted at -2147483648",
            "column_type": "integer",
            "setting": "ALTER SEQUENCE ... MINVALUE -2147483648 RESTART",
            "setup": [
                "CREATE TABLE t (id serial PRIMARY KEY, v int)",
                f"SELECT setval('t_id_seq', {INT_MAX})",
                f"ALTER SEQUENCE t_id_seq MINVALUE {-INT_MAX - 1} RESTART WITH {-INT_MAX - 1}",
            ],
            "insert": "INSERT INTO t (v) VALUES (1) RETURNING id",
            "top": INT_MAX,
        },
        {
            # What serial was before PostgreSQL 10, and what a half-done migration leaves behind
            # (ALTER SEQUENCE ... AS bigint without widening the column).
            "case": "integer column fed by a bigint sequence",
            "column_type": "integer",
            "setting": "CREATE SEQUENCE ... AS bigint",
            "setup": [
                "CREATE SEQUENCE t_id_seq AS bigint",
                "CREATE TABLE t (id integer PRIMARY KEY DEFAULT nextval('t_id_seq'), v int)",
                f"SELECT setval('t_id_seq', {INT_MAX - 2})",
            ],
            "insert": "INSERT INTO t (v) VALUES (1) RETURNING id",
            "top": INT_MAX,
        },
    ]


def run_engine_wall(engine: object, *, n_inserts: int = 4, timeout_s: float = 30.0) -> Run:
    """Drive a real server's generated key over the top of a 32-bit column and record every answer.

    MariaDB: ``INT`` and ``INT UNSIGNED`` ``AUTO_INCREMENT`` with ``sql_mode`` strict and not
    strict, ``INSERT IGNORE`` at the top, and an explicit id past the top outside strict mode. PostgreSQL: ``serial``, an
    ``integer`` identity column, and an ``integer`` column fed by a ``bigint`` sequence (serial
    before version 10), and ``serial`` after the emergency lever ``ALTER SEQUENCE ... MINVALUE
    -2147483648 RESTART WITH -2147483648``. Each case starts its counter two below the top (PostgreSQL ``setval``,
    MariaDB ``AUTO_INCREMENT=``) and inserts ``n_inserts`` rows.

    Parameters
    ----------
    engine : syslab.engines.Engine
        A running PostgreSQL or MariaDB (``engines.find("postgres")``).
    n_inserts : int
        Inserts per case, 1 to :data:`MAX_WALL_INSERTS`.
    timeout_s : float
        Bound on the whole experiment, set-up included (s), at most :data:`MAX_ENGINE_TIMEOUT_S`.

    Returns
    -------
    syslab.experiment.Run
        ``frame``: one row per insert with ``case``, ``column_type``, ``setting``, ``attempt``
        (1-based), ``ok`` (bool: no error), ``stored`` (bool: the row count grew), ``id`` (the key
        stored, or None), ``errno`` (MariaDB's error
        number, or None), ``sqlstate``, ``message`` (the server's text, or its warning for a
        statement that succeeded with one) and ``counter_after`` (the counter the server reports
        afterwards: ``information_schema.TABLES.AUTO_INCREMENT`` or the sequence's ``last_value``).
        ``summary``: ``engine`` (label) and, per case, the first error's ``sqlstate`` and message.
    """
    from syslab import _engine_sql as sql

    kind = sql.kind_of(engine)
    n = validate.bounded_int("n_inserts", n_inserts, MAX_WALL_INSERTS)
    timeout = validate.float_in_range("timeout_s", timeout_s, 0.5, MAX_ENGINE_TIMEOUT_S)
    deadline = sql.deadline_after(timeout)
    errors = sql.driver_errors(kind)
    rows: list[dict[str, object]] = []
    with sql.fresh_database(engine, deadline) as db:
        session = sql.open_session(kind, db, deadline)
        try:
            for case in _wall_cases(kind):
                session.execute("DROP TABLE IF EXISTS t")
                if kind == "postgres":
                    session.execute("DROP SEQUENCE IF EXISTS t_id_seq")
                for statement in case["setup"]:
                    session.execute(statement)
                for attempt in range(1, n + 1):
                    row = {key: case[key] for key in ("case", "column_type", "setting")}
                    row.update(
                        attempt=attempt, ok=True, stored=False, id=None, errno=None, sqlstate=None, message=""
                    )
                    rows_before = int(session.scalar("SELECT count(*) FROM t"))
                    try:
                        returned = session.execute(case["insert"])
                        if kind == "postgres":
                            row["id"] = int(returned[0][0])
                        else:
                            # SHOW WARNINGS first: any later statement clears them.
                            warnings = session.execute("SHOW WARNINGS")
                            if warnings:
                                row["errno"], row["message"] = (
                                    int(warnings[0][1]),
                                    f"warning: {warnings[0][2]}",
                                )
                        row["stored"] = int(session.scalar("SELECT count(*) FROM t")) > rows_before
                        if kind != "postgres" and row["stored"]:
                            row["id"] = int(session.scalar("SELECT max(id) FROM t"))
                    except errors as error:
                        row.update(ok=False, **sql.error_info(session, error))
                    if kind == "postgres":
                        value = session.scalar("SELECT last_value FROM t_id_seq")
                    else:
                        value = session.scalar(
                            "SELECT AUTO_INCREMENT FROM information_schema.TABLES"
                            " WHERE table_schema = DATABASE() AND table_name = 't'"
                        )
                    row["counter_after"] = None if value is None else int(value)
                    rows.append(row)
            session.execute("DROP TABLE IF EXISTS t")
        finally:
            session.close()
    frame = pd.DataFrame(rows)
    for column in ("id", "errno", "counter_after"):
        frame[column] = pd.Series([r[column] for r in rows], dtype=object)
    summary: dict[str, object] = {"engine": str(getattr(engine, "label", kind))}
    for name, part in frame.groupby("case", sort=False):
        failed = part[~part["ok"]]
        summary[f"{name}: sqlstate"] = "" if failed.empty else str(failed["sqlstate"].iloc[0])
        summary[f"{name}: message"] = "" if failed.empty else str(failed["message"].iloc[0])
    return Run.create(frame, summary, engine=engine)


_BURN_STATEMENTS = {
    "mariadb": {
        "ignore_dup": "INSERT IGNORE INTO t (k) VALUES (1)",
        "upsert_hit": "INSERT INTO t (k) VALUES (2) ON DUPLICATE KEY UPDATE n = n + 1",
        "insert": "INSERT INTO t (k) VALUES (%s)",
        "bulk": "INSERT INTO t (k) SELECT k FROM src",
    },
    "postgres": {
        "ignore_dup": "INSERT INTO t (k) VALUES (1) ON CONFLICT (k) DO NOTHING",
        "upsert_hit": "INSERT INTO t (k) VALUES (2) ON CONFLICT (k) DO UPDATE SET n = t.n + 1",
        "insert": "INSERT INTO t (k) VALUES (%s)",
        "bulk": "INSERT INTO t (k) SELECT k FROM src",
    },
}


def measure_burned_ids(
    engine: object,
    *,
    n_statements: int = 20,
    bulk_rows: tuple[int, ...] = (40, 300),
    timeout_s: float = 30.0,
) -> Run:
    """Count the ids a real server consumes without storing a row, statement kind by kind.

    A table ``t(id <generated>, k UNIQUE, n)`` starts with rows ``k = 1`` and ``k = 2``. Each kind
    runs ``n_statements`` times (``bulk`` once per size in ``bulk_rows``) and the counter is read
    before and after: MariaDB's ``information_schema.TABLES.AUTO_INCREMENT`` (live in MariaDB,
    no statistics cache), PostgreSQL's sequence ``last_value``.

    Kinds: ``insert`` (new keys, the baseline), ``ignore_dup`` (``INSERT IGNORE`` / ``ON CONFLICT
    DO NOTHING`` hitting an existing key), ``upsert_hit`` (``ON DUPLICATE KEY UPDATE`` / ``ON
    CONFLICT DO UPDATE`` hitting an existing key), ``rollback`` (a new row, then ROLLBACK) and
    ``bulk`` (``INSERT ... SELECT`` of a known number of rows).

    Parameters
    ----------
    engine : syslab.engines.Engine
        A running PostgreSQL or MariaDB.
    n_statements : int
        Statements per kind, 1 to :data:`MAX_BURN_STATEMENTS`.
    bulk_rows : tuple of int
        Sizes of the ``INSERT ... SELECT`` statements (rows), each 1 to :data:`MAX_BULK_ROWS`.
    timeout_s : float
        Bound on the whole experiment (s), at most :data:`MAX_ENGINE_TIMEOUT_S`.

    Returns
    -------
    syslab.experiment.Run
        ``frame``: one row per kind (and bulk size) with ``kind``, ``statements``, ``rows_stored``,
        ``ids_consumed``, ``ids_burned`` (consumed minus stored), ``ids_per_row`` (NaN when no
        row was stored) and ``model_ids`` (what :func:`bulk_reserved_ids` and the burn model
        predict for MariaDB/MySQL's handler; NaN for PostgreSQL's bulk rows, whose sequence
        hands out one value per row). ``summary``: ``engine`` and, for MariaDB,
        ``innodb_autoinc_lock_mode`` read from the server.
    """
    from syslab import _engine_sql as sql

    kind = sql.kind_of(engine)
    n = validate.bounded_int("n_statements", n_statements, MAX_BURN_STATEMENTS)
    if isinstance(bulk_rows, (str, bytes)) or not hasattr(bulk_rows, "__iter__"):
        raise TypeError(f"bulk_rows must be a sequence of row counts, got {type(bulk_rows).__name__}")
    sizes = [validate.bounded_int(f"bulk_rows[{i}]", v, MAX_BULK_ROWS) for i, v in enumerate(bulk_rows)]
    if len(sizes) > 10:
        raise ValueError(f"bulk_rows must hold at most 10 sizes, got {len(sizes)}")
    timeout = validate.float_in_range("timeout_s", timeout_s, 0.5, MAX_ENGINE_TIMEOUT_S)
    deadline = sql.deadline_after(timeout)
    statements = _BURN_STATEMENTS[kind]
    rows: list[dict[str, object]] = []
    summary: dict[str, object] = {"engine": str(getattr(engine, "label", kind))}
    with sql.fresh_database(engine, deadline) as db:
        s = sql.open_session(kind, db, deadline)
        try:
            if kind == "postgres":
                s.execute(
                    "CREATE TABLE t (id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
                    " k integer NOT NULL UNIQUE, n integer NOT NULL DEFAULT 0)"
                )
                s.execute("CREATE TABLE src (k integer)")

                def counter() -> int:
                    return int(s.scalar("SELECT last_value FROM t_id_seq"))
            else:
                summary["innodb_autoinc_lock_mode"] = int(s.scalar("SELECT @@innodb_autoinc_lock_mode"))
                s.execute(
                    "CREATE TABLE t (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
                    " k INT NOT NULL UNIQUE, n INT NOT NULL DEFAULT 0) ENGINE=InnoDB"
                )
                s.execute("CREATE TABLE src (k INT) ENGINE=InnoDB")

                def counter() -> int:
                    # The next value to hand out, minus one: comparable with PostgreSQL's last_value.
                    return (
                        int(
                            s.scalar(
                                "SELECT AUTO_INCREMENT FROM information_schema.TABLES"
                                " WHERE table_schema = DATABASE() AND table_name = 't'"
                            )
                        )
                        - 1
                    )

            s.execute("INSERT INTO t (k) VALUES (1), (2)")
            next_key = 1_000

            def count_rows() -> int:
                return int(s.scalar("SELECT count(*) FROM t"))

            def record(kind_name: str, statements_run: int, before: tuple[int, int], model: float) -> None:
                consumed, stored = counter() - before[0], count_rows() - before[1]
                rows.append(
                    {
                        "kind": kind_name,
                        "statements": statements_run,
                        "rows_stored": stored,
                        "ids_consumed": consumed,
                        "ids_burned": consumed - stored,
                        "ids_per_row": consumed / stored if stored else float("nan"),
                        "model_ids": model,
                    }
                )

            before = (counter(), count_rows())
            for _ in range(n):
                s.execute(statements["insert"], (next_key,))
                next_key += 1
            record("insert", n, before, float(n))
            for name in ("ignore_dup", "upsert_hit"):
                before = (counter(), count_rows())
                for _ in range(n):
                    s.execute(statements[name])
                record(name, n, before, float(n))
            before = (counter(), count_rows())
            for _ in range(n):
                s.begin()
                s.execute(statements["insert"], (next_key,))
                s.rollback()
                next_key += 1
            record("rollback", n, before, float(n))
            for size in sizes:
                s.execute("DELETE FROM src")
                s.execute(
                    "INSERT INTO src (k) VALUES " + ", ".join(["(%s)"] * size),
                    tuple(range(next_key, next_key + size)),
                )
                next_key += size
                before = (counter(), count_rows())
                s.execute(statements["bulk"])
                model = (
                    float(np.asarray(bulk_reserved_ids(size)).ravel()[0])
                    if kind == "mariadb"
                    else float(size)
                )
                record(f"bulk {size} rows", 1, before, model)
        finally:
            s.close()
    return Run.create(pd.DataFrame(rows), summary, engine=engine)


def _first_unstored(run, case: str):
    part = run.frame[(run.frame["case"] == case) & ~run.frame["stored"]]
    return part.iloc[0] if len(part) else None


def summarize_engine_walls(walls: dict) -> dict[str, object]:
    """The numbers and phrases a page quotes about the walls, from the servers or, without them, the model.

    Parameters
    ----------
    walls : dict
        Engine name (``"mariadb"``, ``"postgres"``) to the :class:`syslab.experiment.Run` of
        :func:`run_engine_wall`; a missing engine is simply absent.

    Returns
    -------
    dict
        ``mariadb_label``, ``mariadb_errno``, ``mariadb_sqlstate``, ``mariadb_message``,
        ``mariadb_ignore_message``, ``mariadb_clamp_message``, ``mariadb_clamp_sqlstate``,
        ``mariadb_strict_same`` (a phrase), ``mariadb_ignore_silent`` (bool: INSERT IGNORE raised
        no error and stored nothing), ``postgres_label``, ``postgres_sqlstate``,
        ``postgres_message``, ``postgres_identity_same`` (a phrase), ``postgres_pre10_sqlstate``,
        ``postgres_pre10_message``, ``postgres_restart_first_id`` and ``model_agrees`` (bool:
        every measured SQLSTATE equals the model's). Values of a missing engine come from
        :func:`simulate_counter_inserts` and :data:`ENGINE_ERRORS`, labelled as the model.
    """
    if not isinstance(walls, dict):
        raise TypeError(f"walls must be a dict of engine name to Run, got {type(walls).__name__}")
    unknown = set(walls) - {"mariadb", "postgres"}
    if unknown:
        raise ValueError(f"walls must have keys 'mariadb' and/or 'postgres', got {sorted(unknown)}")
    maria_model, pg_model, pre10_model = (
        ENGINE_ERRORS["mariadb"],
        ENGINE_ERRORS["postgresql"],
        ENGINE_ERRORS["postgresql-pre10"],
    )
    out: dict[str, object] = {
        "mariadb_label": "the MariaDB model",
        "mariadb_errno": int(maria_model["code"]),
        "mariadb_sqlstate": maria_model["sqlstate"],
        "mariadb_message": maria_model["message"].format(column="id"),
        "mariadb_ignore_message": "(not measured)",
        "mariadb_clamp_message": "(not measured)",
        "mariadb_clamp_sqlstate": "–",
        "mariadb_strict_same": "was not measured",
        "mariadb_ignore_silent": True,
        "postgres_label": "the PostgreSQL model",
        "postgres_sqlstate": pg_model["sqlstate"],
        "postgres_message": pg_model["message"].format(table="t", column="id", max=INT_MAX),
        "postgres_identity_same": "(not measured)",
        "postgres_pre10_sqlstate": pre10_model["sqlstate"],
        "postgres_pre10_message": pre10_model["message"],
        "postgres_restart_first_id": -(2**31),
        "model_agrees": True,
    }
    if "mariadb" in walls:
        run = walls["mariadb"]
        strict = _first_unstored(run, "INT AUTO_INCREMENT, strict")
        loose = _first_unstored(run, "INT AUTO_INCREMENT, not strict")
        ignore = _first_unstored(run, "INT, INSERT IGNORE at the top, strict")
        clamp = _first_unstored(run, "INT, explicit id past the top, not strict")
        out.update(
            mariadb_label=str(run.environment.get("engine", "MariaDB")),
            mariadb_errno=int(strict["errno"]),
            mariadb_sqlstate=str(strict["sqlstate"]),
            mariadb_message=str(strict["message"]),
            mariadb_ignore_message=str(ignore["message"]),
            mariadb_clamp_message=str(clamp["message"]),
            mariadb_clamp_sqlstate=str(clamp["sqlstate"]),
            mariadb_strict_same="makes no difference"
            if loose["errno"] == strict["errno"]
            else "changes the error",
            mariadb_ignore_silent=bool(ignore["ok"]),
        )
        out["model_agrees"] = bool(out["model_agrees"] and strict["sqlstate"] == maria_model["sqlstate"])
    if "postgres" in walls:
        run = walls["postgres"]
        serial = _first_unstored(run, "serial")
        identity = _first_unstored(run, "integer identity")
        pre10 = _first_unstored(run, "integer column fed by a bigint sequence")
        restarted = run.frame[(run.frame["case"] == "serial, restarted at -2147483648") & run.frame["stored"]]
        out.update(
            postgres_label=str(run.environment.get("engine", "PostgreSQL")),
            postgres_sqlstate=str(serial["sqlstate"]),
            postgres_message=str(serial["message"]),
            postgres_identity_same="the same error"
            if identity["sqlstate"] == serial["sqlstate"]
            else "a different error",
            postgres_pre10_sqlstate=str(pre10["sqlstate"]),
            postgres_pre10_message=str(pre10["message"]),
            postgres_restart_first_id=int(restarted["id"].iloc[0]),
        )
        out["model_agrees"] = bool(
            out["model_agrees"]
            and serial["sqlstate"] == pg_model["sqlstate"]
            and pre10["sqlstate"] == pre10_model["sqlstate"]
        )
    return out


def summarize_burned_ids(burned: dict) -> dict[str, object]:
    """The numbers a page quotes about ids burned on the servers ("–" for a missing engine).

    Parameters
    ----------
    burned : dict
        Engine name (``"mariadb"``, ``"postgres"``) to the :class:`syslab.experiment.Run` of
        :func:`measure_burned_ids`.

    Returns
    -------
    dict
        ``autoinc_lock_mode`` (read from MariaDB), ``maria_upsert_burned``,
        ``maria_bulk300_ids``, ``maria_bulk40_ids``, ``pg_upsert_burned``, ``pg_bulk300_ids``
        and ``bulk_matches_model`` (bool: MariaDB's bulk statements took exactly
        :func:`bulk_reserved_ids`).
    """
    if not isinstance(burned, dict):
        raise TypeError(f"burned must be a dict of engine name to Run, got {type(burned).__name__}")
    out: dict[str, object] = {
        "autoinc_lock_mode": "not measured",
        "maria_upsert_burned": "–",
        "maria_bulk300_ids": "–",
        "maria_bulk40_ids": "–",
        "pg_upsert_burned": "–",
        "pg_bulk300_ids": "–",
        "bulk_matches_model": True,
    }
    if "mariadb" in burned:
        frame = burned["mariadb"].frame.set_index("kind")
        bulk = frame[frame.index.str.startswith("bulk")]
        out.update(
            autoinc_lock_mode=int(burned["mariadb"].summary["innodb_autoinc_lock_mode"]),
            maria_upsert_burned=int(frame.loc["upsert_hit", "ids_burned"]),
            maria_bulk300_ids=int(frame.loc["bulk 300 rows", "ids_consumed"]),
            maria_bulk40_ids=int(frame.loc["bulk 40 rows", "ids_consumed"]),
            bulk_matches_model=bool((bulk["ids_consumed"] == bulk["model_ids"]).all()),
        )
    if "postgres" in burned:
        frame = burned["postgres"].frame.set_index("kind")
        out.update(
            pg_upsert_burned=int(frame.loc["upsert_hit", "ids_burned"]),
            pg_bulk300_ids=int(frame.loc["bulk 300 rows", "ids_consumed"]),
        )
    return out


def check_projection(
    projection: pd.DataFrame,
    current_value: int,
    ids_per_day: float,
    *,
    daily_growth: float = 0.0,
    fractions: tuple[float, ...] = (0.6, 0.7, 0.8, 0.9, 1.0),
    max_value: int = INT_MAX,
) -> pd.DataFrame:
    """The day each fraction is reached in a :func:`project_id_usage` projection and in the closed form.

    Parameters
    ----------
    projection : pandas.DataFrame
        What :func:`project_id_usage` returned for the same inputs.
    current_value, ids_per_day, daily_growth, max_value :
        As in :func:`theory_days_until`.
    fractions : tuple of float
        Shares of ``max_value`` to look up, each 0 to 1 (at most :data:`MAX_SWEEP_POINTS`).

    Returns
    -------
    pandas.DataFrame
        One row per fraction: ``alert_fraction``, ``day_in_projection`` (first day the projected
        counter reaches it), ``day_closed_form`` and ``gap_days`` (absolute difference).
    """
    projection = validate.frame_columns("projection", projection, ["value"])
    if (
        isinstance(fractions, (str, bytes))
        or not hasattr(fractions, "__len__")
        or not 1 <= len(fractions) <= MAX_SWEEP_POINTS
    ):
        raise ValueError(f"fractions must be a sequence of 1 to {MAX_SWEEP_POINTS} shares")
    shares = [validate.float_in_range(f"fractions[{i}]", f, 0.0, 1.0) for i, f in enumerate(fractions)]
    rows = []
    for share in shares:
        in_projection = int((projection["value"] < share * max_value).sum())
        closed = theory_days_until(
            share, current_value, ids_per_day, daily_growth=daily_growth, max_value=max_value
        )
        rows.append(
            {
                "alert_fraction": share,
                "day_in_projection": in_projection,
                "day_closed_form": closed,
                "gap_days": abs(in_projection - closed),
            }
        )
    return pd.DataFrame(rows)
