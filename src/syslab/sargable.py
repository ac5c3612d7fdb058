"""Queries that can't use their index: a gaming dashboard on real SQLite.

A B-tree index keeps a column's values in sorted order, so a predicate that
names a *range of that order* (``col = ?``, ``col > ?``, ``col BETWEEN``, a
prefix) becomes a seek plus a short walk along the leaves -- a ``SEARCH`` in
SQLite's ``EXPLAIN QUERY PLAN``. Wrap the column in a function, do arithmetic
on it, compare it case-insensitively against a case-sensitive index or ask for
a suffix, and the matching rows are no longer one contiguous range of the index
order; the planner falls back to reading everything (``SCAN``).

This module builds a dashboard database of a million matches and 200,000
players fast (numpy + ``executemany`` in one transaction), runs each
anti-pattern and its rewrite with the plan and the measured time
(:func:`run_patterns`), and draws the B-tree reason (:func:`index_leaf_map`,
:func:`plot_index_access`). Plans are classified with
:func:`syslab.sqlite_tools.plan_uses_index`, which is robust to SQLite 3.36's
change of wording (``SCAN TABLE t`` became ``SCAN t``).

PostgreSQL and MariaDB are measured: :func:`measure_engine_plans` loads the same data into a
real server and records its ``EXPLAIN`` for every case (:func:`compare_engine_plans` puts them
beside SQLite's). MySQL is not in Debian; :func:`mysql_notes` lists where its manual says it
differs from MariaDB.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle

from syslab import validate
from syslab.experiment import Run
from syslab.plot import axes_or_new
from syslab.sqlite_tools import median_seconds, plan_uses_index, query_plan

__all__ = [
    "DashboardConfig",
    "Pattern",
    "PATTERNS",
    "build_dashboard",
    "dashboard_parameters",
    "mysql_notes",
    "measure_engine_plans",
    "explain_shapes_sqlite",
    "compare_engine_plans",
    "classify_engine_plan",
    "index_leaf_map",
    "plot_index_access",
    "plot_selectivity",
    "plot_speedups",
    "index_sample",
    "sweep_selectivity",
    "fit_crossover",
    "run_pattern",
    "run_patterns",
    "summarize_patterns",
]

_NAME_STEMS = (
    "Dragon",
    "Shadow",
    "Pixel",
    "Storm",
    "Frost",
    "Nova",
    "Raven",
    "Blaze",
    "Ghost",
    "Titan",
    "Viper",
    "Echo",
)
_NAME_TAILS = ("Slayer", "Hunter", "Knight", "Wolf", "Byte", "Rider", "Fang", "Queen")


@dataclass(frozen=True)
class DashboardConfig:
    """Size and shape of the generated dashboard database.

    Attributes
    ----------
    n_matches : int
        Rows in ``matches`` (one per finished match).
    n_players : int
        Rows in ``players``.
    days : int
        Matches are spread uniformly over this many days from ``start_date``.
    n_clans : int
        Distinct e-mail domains (``clan<k>.gg``): about ``n_players / n_clans`` players share one.
    start_date : str
        First day, ISO ``YYYY-MM-DD``.
    cache_mib : int
        SQLite page cache for the build and the queries, in MiB.
    """

    n_matches: int = 1_000_000
    n_players: int = 200_000
    days: int = 365
    n_clans: int = 2_000
    start_date: str = "2024-01-01"
    cache_mib: int = 256

    def __post_init__(self) -> None:
        validate.positive_int("n_matches", self.n_matches)
        validate.positive_int("n_players", self.n_players)
        validate.positive_int("days", self.days)
        validate.positive_int("n_clans", self.n_clans)
        validate.positive_int("cache_mib", self.cache_mib)
        if not isinstance(self.start_date, str):
            raise TypeError(f"start_date must be an ISO date string YYYY-MM-DD, got {self.start_date!r}")
        try:
            np.datetime64(self.start_date, "D")
        except (ValueError, TypeError) as error:
            raise ValueError(f"start_date must be an ISO date YYYY-MM-DD, got {self.start_date!r}") from error


def _check_connection(conn: object, *, dashboard: bool = False) -> sqlite3.Connection:
    if not isinstance(conn, sqlite3.Connection):
        raise TypeError(f"conn must be a sqlite3.Connection, got {type(conn).__name__}")
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.ProgrammingError as error:
        raise ValueError(f"conn must be an open connection ({error})") from error
    if dashboard and not {"players", "matches"} <= tables:
        raise ValueError("conn has no dashboard (players and matches); call build_dashboard first")
    return conn


def _check_config(config: object) -> DashboardConfig:
    return DashboardConfig() if config is None else validate.instance("config", config, DashboardConfig)


def _player_columns(config: DashboardConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Players: mixed-case gamer names, lower-case e-mails in one of ``n_clans`` domains, numeric tags."""
    n = config.n_players
    ids = np.arange(1, n + 1)
    stems = np.array(_NAME_STEMS)[rng.integers(0, len(_NAME_STEMS), n)]
    tails = np.array(_NAME_TAILS)[rng.integers(0, len(_NAME_TAILS), n)]
    names = np.char.add(np.char.add(stems, tails), ids.astype(str))
    # Gamers type their names in every case: 70% TitleCase, 20% lower, 10% UPPER.
    style = rng.random(n)
    names = np.where(style < 0.2, np.char.lower(names), np.where(style < 0.3, np.char.upper(names), names))
    clans = rng.integers(0, config.n_clans, n)
    emails = np.char.add(
        np.char.add(np.char.add("player", ids.astype(str)), "@clan"), np.char.add(clans.astype(str), ".gg")
    )
    # The tag is a number stored as TEXT (a legacy import), the set-up for the implicit-conversion case.
    tags = (rng.permutation(n) + 100_000).astype(str)
    return {"id": ids, "name": names, "email": emails, "tag": tags}


def _match_columns(config: DashboardConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Matches: time-ordered ISO timestamps, a player and a score."""
    n = config.n_matches
    seconds = np.sort(rng.integers(0, config.days * 86_400, n))
    # ISO 8601 text, 'YYYY-MM-DDTHH:MM:SS': SQLite's date functions read it and it sorts by time.
    played_at = (np.datetime64(config.start_date, "s") + seconds.astype("timedelta64[s]")).astype(str)
    player_id = rng.integers(1, config.n_players + 1, n)
    score = rng.integers(0, 1_000_000, n)
    return {"played_at": played_at, "player_id": player_id, "score": score}


SCHEMA = (
    "CREATE TABLE players (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL,"
    " tag TEXT NOT NULL)",
    "CREATE TABLE matches (id INTEGER PRIMARY KEY, played_at TEXT NOT NULL, player_id INTEGER NOT NULL,"
    " score INTEGER NOT NULL)",
)
INDEXES = (
    "CREATE INDEX players_name ON players(name)",
    "CREATE INDEX players_email ON players(email)",
    "CREATE INDEX players_tag ON players(tag)",
    "CREATE INDEX matches_played_at ON matches(played_at)",
    "CREATE INDEX matches_score ON matches(score)",
)


def build_dashboard(
    conn: sqlite3.Connection,
    config: DashboardConfig | None = None,
    seed: int | np.random.Generator | None = 0,
) -> pd.Series:
    """Create and fill the ``players`` and ``matches`` tables with their indexes.

    Columns are generated with numpy, inserted with ``executemany`` in one
    transaction (one commit, not a million), and the indexes are built after the
    load, which sorts once instead of splitting pages row by row. ``ANALYZE``
    runs last so the planner has real statistics, as in production.


    Parameters
    ----------
    conn : sqlite3.Connection
        An empty SQLite database.
    config : DashboardConfig | None
        Sizes (default :class:`DashboardConfig`).
    seed : int, numpy Generator or None
        Randomness of the generated data.

    Returns
    -------
    pandas.Series
        ``players``, ``matches`` (row counts) and ``generate_s``, ``insert_s``,
        ``index_s``, ``analyze_s``, ``total_s`` (wall seconds).
    """
    conn = _check_connection(conn)
    config = _check_config(config)
    if not isinstance(config, DashboardConfig):
        raise TypeError(f"config must be a DashboardConfig, got {type(config).__name__}")
    rng = validate.rng_from_seed(seed)
    t0 = time.perf_counter()
    players = _player_columns(config, rng)
    matches = _match_columns(config, rng)
    t1 = time.perf_counter()
    conn.execute(f"PRAGMA cache_size = {-1024 * config.cache_mib}")
    # A scratch database: durability buys nothing while loading it.
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    with conn:
        for statement in SCHEMA:
            conn.execute(statement)
        conn.executemany(
            "INSERT INTO players (id, name, email, tag) VALUES (?, ?, ?, ?)",
            zip(*(players[c].tolist() for c in ("id", "name", "email", "tag")), strict=True),
        )
        conn.executemany(
            "INSERT INTO matches (played_at, player_id, score) VALUES (?, ?, ?)",
            zip(*(matches[c].tolist() for c in ("played_at", "player_id", "score")), strict=True),
        )
    t2 = time.perf_counter()
    with conn:
        for statement in INDEXES:
            conn.execute(statement)
    t3 = time.perf_counter()
    # analysis_limit (SQLite >= 3.32) samples each index instead of reading it all: the planner
    # gets the row counts it needs for these queries in milliseconds instead of a second.
    conn.execute("PRAGMA analysis_limit = 1000")
    conn.execute("ANALYZE")
    t4 = time.perf_counter()
    return pd.Series(
        {
            "players": config.n_players,
            "matches": config.n_matches,
            "generate_s": t1 - t0,
            "insert_s": t2 - t1,
            "index_s": t3 - t2,
            "analyze_s": t4 - t3,
            "total_s": t4 - t0,
        }
    )


def dashboard_parameters(
    conn: sqlite3.Connection, config: DashboardConfig | None = None
) -> dict[str, object]:
    """Query parameters for :data:`PATTERNS`, taken from rows that exist in the database.

    A selective predicate is the point: the dashboard asks for one day, one
    player, one clan, a top-scores band -- not for a fifth of the table, where
    a scan and an index cost about the same.

    Parameters
    ----------
    conn : sqlite3.Connection
        A database filled by :func:`build_dashboard`.
    config : DashboardConfig | None
        The config it was built with.

    Returns
    -------
    dict
        Parameter name to value for the queries in :data:`PATTERNS` (a day, an e-mail, a prefix, a tag ...).
    """
    conn = _check_connection(conn, dashboard=True)
    config = _check_config(config)
    n_players = conn.execute("SELECT count(*) FROM players").fetchone()[0]
    if n_players == 0:
        raise ValueError("conn has an empty players table; call build_dashboard first")
    pick = max(1, n_players // 2)
    name, email, tag = conn.execute("SELECT name, email, tag FROM players WHERE id = ?", (pick,)).fetchone()
    day = np.datetime64(config.start_date, "D") + config.days // 2
    score = conn.execute("SELECT score FROM matches ORDER BY id LIMIT 1").fetchone()[0]
    return {
        "day": str(day),
        "next_day": str(day + 1),
        "email": email,
        "domain": email.split("@", 1)[1],
        "suffix": "%@" + email.split("@", 1)[1],
        "name": name,
        "lname": name.lower(),
        "prefix_like": name[:-3] + "%",
        "prefix_glob": name[:-3] + "*",
        "tag_int": int(tag),
        "tag_text": tag,
        "player_id": pick,
        "score": int(score),
        "bonus": 500,
        "target": 999_000,
    }


@dataclass(frozen=True)
class Pattern:
    """One anti-pattern and its rewrite.

    ``setup`` statements run once before the rewrite is timed (an expression
    index, a generated column); ``changes_schema`` says whether the fix needs
    DDL or only a different query text.

    Attributes
    ----------
    key : str
        Short identifier (used in glue keys).
    label : str
        Words for the table.
    before : str
        The query as written (SQLite, named parameters).
    after : str
        Its rewrite.
    setup : tuple[str, ...]
        DDL the rewrite needs, run once before it.
    changes_schema : bool
        Whether the fix needs DDL.
    note : str
        One line on why the rewrite works.
    """

    key: str
    label: str
    before: str
    after: str
    setup: tuple[str, ...] = field(default_factory=tuple)
    changes_schema: bool = False
    note: str = ""

    def __post_init__(self) -> None:
        for name in ("key", "label", "before", "after", "note"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be a str, got {getattr(self, name)!r}")
        for name in ("key", "label", "before", "after"):
            if not getattr(self, name).strip():
                raise ValueError(f"{name} must not be empty")
        if (
            isinstance(self.setup, (str, bytes))
            or not isinstance(self.setup, tuple)
            or not all(isinstance(statement, str) for statement in self.setup)
        ):
            raise TypeError(f"setup must be a tuple of SQL strings, got {self.setup!r}")
        validate.instance("changes_schema", self.changes_schema, bool)


PATTERNS: tuple[Pattern, ...] = (
    Pattern(
        "date_function",
        "function on a date column",
        "SELECT count(*), max(score) FROM matches WHERE date(played_at) = :day",
        "SELECT count(*), max(score) FROM matches WHERE played_at >= :day AND played_at < :next_day",
        note="half-open range on the raw column",
    ),
    Pattern(
        "lower_function",
        "lower() on the column",
        "SELECT * FROM players WHERE lower(email) = :email",
        "SELECT * FROM players WHERE email = :email",
        note="e-mails are lower-cased on write, so compare the raw column",
    ),
    Pattern(
        "arithmetic",
        "arithmetic on the column",
        "SELECT * FROM matches WHERE score + :bonus >= :target",
        "SELECT * FROM matches WHERE score >= :target - :bonus",
        note="move the arithmetic to the constant side",
    ),
    Pattern(
        "leading_wildcard",
        "leading-wildcard LIKE",
        "SELECT * FROM players WHERE email LIKE :suffix",
        "SELECT * FROM players WHERE substr(email, instr(email, '@') + 1) = :domain",
        setup=("CREATE INDEX players_domain ON players(substr(email, instr(email, '@') + 1))",),
        changes_schema=True,
        note="no rewrite alone can seek a suffix; index the part you search",
    ),
    Pattern(
        "prefix_like",
        "prefix LIKE (case-insensitive)",
        "SELECT * FROM players WHERE name LIKE :prefix_like",
        "SELECT * FROM players WHERE name GLOB :prefix_glob",
        note="GLOB is case-sensitive: it returns only the exact-case rows",
    ),
    Pattern(
        "implicit_conversion",
        "number compared with a TEXT column",
        "SELECT * FROM players WHERE tag = :tag_int",
        "SELECT * FROM players WHERE tag = :tag_text",
        note="SQLite's column affinity converts the constant, not the column",
    ),
    Pattern(
        "cast_on_column",
        "CAST on the column",
        "SELECT * FROM players WHERE CAST(tag AS INTEGER) = :tag_int",
        "SELECT * FROM players WHERE tag = :tag_text",
        note="convert the constant to the column's type",
    ),
    Pattern(
        "or_columns",
        "OR across two indexed columns",
        "SELECT * FROM players WHERE tag = :tag_text OR email = :email",
        "SELECT * FROM players WHERE tag = :tag_text UNION SELECT * FROM players WHERE email = :email",
        note="already indexable (MULTI-INDEX OR); the UNION buys nothing",
    ),
    Pattern(
        "negation",
        "negated comparison NOT (x < c)",
        "SELECT * FROM matches WHERE NOT (score < :target)",
        "SELECT * FROM matches WHERE score >= :target",
        note="state the range positively",
    ),
    Pattern(
        "expression_index",
        "expression index, query unchanged",
        "SELECT * FROM players WHERE lower(name) = :lname",
        "SELECT * FROM players WHERE lower(name) = :lname",
        setup=("CREATE INDEX players_lower_name ON players(lower(name))",),
        changes_schema=True,
        note="index the expression the query already uses",
    ),
    Pattern(
        "generated_column",
        "generated column + index",
        "SELECT count(*), max(score) FROM matches WHERE date(played_at) = :day",
        "SELECT count(*), max(score) FROM matches WHERE play_day = :day",
        setup=(
            "ALTER TABLE matches ADD COLUMN play_day TEXT GENERATED ALWAYS AS (date(played_at)) VIRTUAL",
            "CREATE INDEX matches_play_day ON matches(play_day)",
        ),
        changes_schema=True,
        note="a named, indexed column for the derived value",
    ),
)


def _bind(sql: str, params: dict[str, object], name: str = "params") -> dict[str, object]:
    """Only the named parameters ``sql`` uses; a parameter it needs and ``params`` lacks is a ValueError."""
    if not isinstance(params, dict):
        raise TypeError(f"{name} must be a dict of parameter name to value, got {type(params).__name__}")
    missing = sorted(set(re.findall(r":([A-Za-z_][A-Za-z0-9_]*)", sql)) - set(params))
    if missing:
        raise ValueError(f"{name} is missing {missing}, which the query needs (see dashboard_parameters)")
    return {key: value for key, value in params.items() if f":{key}" in sql}


def _execute_once(conn: sqlite3.Connection, statement: str) -> None:
    """Run a set-up statement, tolerating that an earlier run already applied it (re-running a cell)."""
    try:
        conn.execute(statement)
    except sqlite3.OperationalError as error:
        if "already exists" not in str(error) and "duplicate column" not in str(error):
            raise


def run_pattern(
    conn: sqlite3.Connection,
    pattern: Pattern,
    params: dict[str, object],
    *,
    repeats: int = 3,
    max_total_s: float = 1.0,
) -> Run:
    """Plan and time one anti-pattern, apply its set-up, then plan and time the rewrite.


    Parameters
    ----------
    conn : sqlite3.Connection
        A database filled by :func:`build_dashboard`.
    pattern : Pattern
        The anti-pattern and its rewrite.
    params : dict[str, object]
        What :func:`dashboard_parameters` returns.
    repeats : int
        Timed runs per query (median kept).
    max_total_s : float
        Bound on the timing of each query (s).

    Returns
    -------
    syslab.experiment.Run
        ``summary`` (and the one row of ``frame``): ``pattern``, ``label``, ``plan_before``/``plan_after`` (the EXPLAIN QUERY
        PLAN lines joined with `` | ``), ``index_before``/``index_after`` (every
        table access is a SEARCH), ``rows_before``/``rows_after``,
        ``ms_before``/``ms_after`` (median wall time), ``setup_s``,
        ``changes_schema``, ``speedup`` (``ms_before / ms_after``) and ``note``.
    """
    conn = _check_connection(conn, dashboard=True)
    if not isinstance(pattern, Pattern):
        raise TypeError(f"pattern must be a Pattern, got {type(pattern).__name__}")
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict, got {type(params).__name__}")
    repeats = validate.positive_int("repeats", repeats)
    max_total_s = validate.positive_float("max_total_s", max_total_s)
    result: dict[str, object] = {"pattern": pattern.key, "label": pattern.label}
    for phase, sql in (("before", pattern.before), ("after", pattern.after)):
        if phase == "after":
            started = time.perf_counter()
            with conn:
                for statement in pattern.setup:
                    _execute_once(conn, statement)
            result["setup_s"] = time.perf_counter() - started
        bound = _bind(sql, params)
        plan = query_plan(conn, sql, bound)
        answers: list[list] = []

        def run(sql=sql, bound=bound, answers=answers) -> None:
            answers.append(conn.execute(sql, bound).fetchall())

        # The data was just written, so its pages are already in the OS cache: no separate warm-up.
        seconds = median_seconds(run, repeats=repeats, max_total_s=max_total_s)
        rows = answers[0]
        result[f"plan_{phase}"] = " | ".join(plan)
        result[f"index_{phase}"] = plan_uses_index(plan)
        result[f"rows_{phase}"] = (
            len(rows) if not sql.lstrip().upper().startswith("SELECT COUNT") else rows[0][0]
        )
        result[f"ms_{phase}"] = 1000 * seconds
    result["changes_schema"] = pattern.changes_schema
    result["speedup"] = float(result["ms_before"]) / max(float(result["ms_after"]), 1e-6)
    result["note"] = pattern.note
    return Run.create(pd.DataFrame([result]), result)


def run_patterns(
    conn: sqlite3.Connection,
    params: dict[str, object],
    patterns: Sequence[Pattern] = PATTERNS,
    *,
    repeats: int = 3,
    max_total_s: float = 1.0,
) -> Run:
    """:func:`run_pattern` for each pattern in order; one row per pattern (see its columns).

    Parameters
    ----------
    conn : sqlite3.Connection
        A database filled by :func:`build_dashboard`.
    params : dict[str, object]
        What :func:`dashboard_parameters` returns.
    patterns : Sequence[Pattern]
        The patterns to run (default :data:`PATTERNS`).
    repeats : int
        Timed runs per query (median kept).
    max_total_s : float
        Bound on the timing of each query (s).

    Returns
    -------
    syslab.experiment.Run
        ``frame``: one row per pattern with the summary keys of :func:`run_pattern`.
    """
    if (
        isinstance(patterns, (Pattern, str, bytes))
        or not isinstance(patterns, Sequence)
        or len(patterns) == 0
    ):
        raise ValueError("patterns must be a non-empty sequence of Pattern")
    for index, pattern in enumerate(patterns):
        validate.instance(f"patterns[{index}]", pattern, Pattern)
    rows = [run_pattern(conn, p, params, repeats=repeats, max_total_s=max_total_s).summary for p in patterns]
    return Run.create(pd.DataFrame(rows))


def _plan_word(uses_index: bool) -> str:
    return "SEARCH" if uses_index else "SCAN"


def summarize_patterns(runs: pd.DataFrame) -> pd.DataFrame:
    """The chapter's summary table: pattern, plan before, rewrite, plan after, times and speed-up.

    Parameters
    ----------
    runs : pd.DataFrame
        What :func:`run_patterns` returns.

    Returns
    -------
    pandas.DataFrame
        One row per pattern: pattern, plans before and after, rewrite, schema change, times and speed-up.
    """
    needed = {"label", "index_before", "index_after", "ms_before", "ms_after", "speedup", "note"}
    if not isinstance(runs, pd.DataFrame) or not needed <= set(runs.columns):
        raise ValueError(f"runs must be a DataFrame from run_patterns with columns {sorted(needed)}")
    if runs[["ms_before", "ms_after", "speedup"]].isna().any().any():
        raise ValueError("runs must not hold NaN times")
    return pd.DataFrame(
        {
            "pattern": runs["label"],
            "plan before": runs["index_before"].map(_plan_word),
            "rewrite": runs["note"],
            "plan after": runs["index_after"].map(_plan_word),
            "schema change": runs["changes_schema"].map({True: "yes", False: "no"}),
            "before (ms)": runs["ms_before"].round(2),
            "after (ms)": runs["ms_after"].round(3),
            "speed-up (x)": runs["speedup"].round(0 if runs["speedup"].max() > 100 else 1),
        }
    )


# ---------------------------------------------------------------- selectivity: when the index stops paying


def sweep_selectivity(
    conn: sqlite3.Connection,
    widths_days: Sequence[int],
    config: DashboardConfig | None = None,
    *,
    repeats: int = 3,
    max_total_s: float = 1.0,
) -> pd.DataFrame:
    """Time a full scan and an index range scan of ``matches`` for date ranges of growing width.

    Both plans are forced so that the comparison is of access paths, not of
    the planner's guesses: ``+played_at`` (a unary plus) hides the column from
    the index, ``INDEXED BY matches_played_at`` insists on it. The query needs
    ``score``, so the index path pays one table lookup per matching row.


    Parameters
    ----------
    conn : sqlite3.Connection
        A database filled by :func:`build_dashboard`.
    widths_days : Sequence[int]
        Date-range widths to try (days).
    config : DashboardConfig | None
        The config it was built with.
    repeats : int
        Timed runs per point (median kept).
    max_total_s : float
        Bound on the timing of each point (s).

    Returns
    -------
    pandas.DataFrame
        One row per width: ``width_days``, ``rows``, ``fraction`` (of the
        table), ``ms_scan``, ``ms_search``, ``plan_scan``, ``plan_search``.
    """
    conn = _check_connection(conn, dashboard=True)
    config = _check_config(config)
    widths = validate.sequence_of_positive_ints("widths_days", widths_days)
    total = conn.execute("SELECT count(*) FROM matches").fetchone()[0]
    if total == 0:
        raise ValueError("conn has an empty matches table; call build_dashboard first")
    scan_sql = "SELECT count(*), max(score) FROM matches WHERE +played_at >= :lo AND +played_at < :hi"
    search_sql = (
        "SELECT count(*), max(score) FROM matches INDEXED BY matches_played_at"
        " WHERE played_at >= :lo AND played_at < :hi"
    )
    start = np.datetime64(config.start_date, "D")
    rows = []
    for width in widths:
        bounds = {"lo": str(start), "hi": str(start + width)}
        timings: dict[str, object] = {}
        for name, sql in (("scan", scan_sql), ("search", search_sql)):
            answers: list[tuple] = []

            def run(sql=sql, bounds=bounds, answers=answers) -> None:
                answers.append(conn.execute(sql, bounds).fetchone())

            timings[f"ms_{name}"] = 1000 * median_seconds(run, repeats=repeats, max_total_s=max_total_s)
            timings[f"plan_{name}"] = " | ".join(query_plan(conn, sql, bounds))
        found = answers[0][0]
        rows.append({"width_days": width, "rows": found, "fraction": found / total, **timings})
    return pd.DataFrame(rows)


def fit_crossover(sweep: pd.DataFrame) -> pd.Series:
    """Fit the two-line cost model and return where the index stops paying.

    A scan reads every row whatever the predicate, then does a little work per
    match: ``t_scan = c + d * rows`` with ``d`` small. A range search costs a
    seek plus one index entry and one table lookup per match:
    ``t_search = a + b * rows``. The index wins while
    ``rows < (c - a) / (b - d)``.


    Parameters
    ----------
    sweep : pd.DataFrame
        What :func:`sweep_selectivity` returns.

    Returns
    -------
    pandas.Series
        ``scan_ms`` (c), ``scan_us_per_row`` (d), ``seek_ms`` (a),
        ``search_us_per_row`` (b), ``crossover_rows``, ``crossover_fraction``
        (infinite when the search line never catches the scan line).
    """
    needed = {"rows", "fraction", "ms_scan", "ms_search"}
    if not isinstance(sweep, pd.DataFrame) or not needed <= set(sweep.columns) or len(sweep) < 2:
        raise ValueError(f"sweep must be a DataFrame with columns {sorted(needed)} and at least two rows")
    if sweep[sorted(needed)].isna().any().any():
        raise ValueError("sweep must not hold NaN")
    rows = sweep["rows"].to_numpy(float)
    b, a = np.polyfit(rows, sweep["ms_search"].to_numpy(float), 1)
    d, c = np.polyfit(rows, sweep["ms_scan"].to_numpy(float), 1)
    crossover = (c - a) / (b - d) if b > d else np.inf
    total = float((sweep["rows"] / sweep["fraction"]).median())
    return pd.Series(
        {
            "scan_ms": float(c),
            "scan_us_per_row": 1000 * float(d),
            "seek_ms": float(a),
            "search_us_per_row": 1000 * float(b),
            "crossover_rows": float(crossover),
            "crossover_fraction": float(crossover / total),
        }
    )


def plot_selectivity(sweep: pd.DataFrame, fit: pd.Series, ax: Axes | None = None) -> Axes:
    """Measured scan and search times against the fraction of rows matched, with the fitted model.

    Parameters
    ----------
    sweep : pd.DataFrame
        What :func:`sweep_selectivity` returns.
    fit : pd.Series
        What :func:`fit_crossover` returns.
    ax : Axes | None
        Where to draw (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes
    """
    sweep = validate.frame_columns("sweep", sweep, ["rows", "fraction", "ms_scan", "ms_search"])
    if sweep.empty:
        raise ValueError("sweep must have at least one row")
    validate.instance("fit", fit, pd.Series)
    missing = {"scan_ms", "scan_us_per_row", "seek_ms", "search_us_per_row"} - set(fit.index)
    if missing:
        raise ValueError(f"fit must be what fit_crossover returns; it lacks {sorted(missing)}")
    ax = axes_or_new(ax)
    frac = sweep["fraction"].to_numpy(float)
    ax.plot(frac, sweep["ms_scan"], "o", color="tab:red", label="full scan (measured)")
    ax.plot(frac, sweep["ms_search"], "s", color="tab:blue", label="index range (measured)")
    grid = np.linspace(0, max(frac.max(), 1e-9), 200)
    total = float((sweep["rows"] / sweep["fraction"]).median())
    ax.plot(
        grid,
        fit["scan_ms"] + fit["scan_us_per_row"] / 1000 * grid * total,
        color="tab:red",
        lw=1,
        label="model: scan = c + d·rows",
    )
    ax.plot(
        grid,
        fit["seek_ms"] + fit["search_us_per_row"] / 1000 * grid * total,
        color="tab:blue",
        lw=1,
        label="model: search = a + b·rows",
    )
    if 0 < fit["crossover_fraction"] < grid[-1]:
        ax.axvline(fit["crossover_fraction"], color="0.4", ls=":", lw=1)
    ax.set_xlabel("fraction of the table matched")
    ax.set_ylabel("median query time (ms)")
    ax.legend()
    return ax


# --------------------------------------------------------------------------- the B-tree reason


def index_sample(
    conn: sqlite3.Connection,
    table: str,
    column: str,
    where: str,
    params: dict[str, object] | None = None,
    *,
    n_keys: int = 96,
) -> pd.DataFrame:
    """A small, ordered sample of an index's keys, with every key matching ``where`` kept.

    For drawing only: it takes evenly spaced keys from the column's index
    order plus all the matching keys (up to ``n_keys // 3``), so a picture of a
    few dozen leaves still shows where in the index the matches live.


    Parameters
    ----------
    conn : sqlite3.Connection
        A database filled by :func:`build_dashboard`.
    table : str
        Table name.
    column : str
        Indexed column.
    where : str
        The predicate (SQLite, named parameters).
    params : dict[str, object] | None
        Values for the predicate.
    n_keys : int
        Keys to sample from the index.

    Returns
    -------
    pandas.DataFrame
        ``key`` (in index order) and ``match`` (bool); ``attrs["uses_index"]``
        holds whether the real query plan for ``where`` is a SEARCH.
    """
    conn = _check_connection(conn)
    for name, value in (("table", table), ("column", column)):
        if not isinstance(value, str) or not value.isidentifier():
            raise ValueError(f"{name} must be a plain identifier, got {value!r}")
    if not isinstance(where, str) or not where.strip():
        raise ValueError("where must be a non-empty SQL condition")
    n_keys = validate.int_in_range("n_keys", n_keys, 8, 10_000)
    bound = _bind(where, {} if params is None else params)
    try:
        conn.execute(f"SELECT 1 FROM {table} WHERE {where} LIMIT 1", bound).fetchall()
    except sqlite3.Error as error:
        raise ValueError(f"where must be a valid condition on {table} ({error})") from error
    total = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    step = max(1, total // n_keys)
    hits = conn.execute(
        f"SELECT {column} FROM {table} WHERE {where} ORDER BY {column} LIMIT {n_keys // 3}", bound
    ).fetchall()
    spaced = conn.execute(f"SELECT {column} FROM {table} WHERE rowid % {step} = 0").fetchall()
    keys = sorted({row[0] for row in hits} | {row[0] for row in spaced})
    matched = {row[0] for row in hits}
    plan = query_plan(conn, f"SELECT * FROM {table} WHERE {where}", bound)
    frame = pd.DataFrame({"key": keys, "match": [k in matched for k in keys]})
    frame.attrs["uses_index"] = plan_uses_index(plan)
    frame.attrs["plan"] = " | ".join(plan)
    return frame


def index_leaf_map(
    keys: Sequence[str], matches: Sequence[bool], *, keys_per_leaf: int, uses_index: bool
) -> pd.DataFrame:
    """Which leaves of an index a query reads, and which hold matching keys.

    ``keys`` are the index's keys in index order; ``matches[i]`` says whether
    key ``i`` satisfies the predicate. With ``uses_index`` the engine seeks to
    the first matching leaf and walks right to the last one (a contiguous
    range -- which is only all the matches when they *are* contiguous); without
    it, every leaf is read.


    Parameters
    ----------
    keys : Sequence[str]
        Index keys in index order.
    matches : Sequence[bool]
        Whether each key matches the predicate (same length).
    keys_per_leaf : int
        Keys per drawn leaf page.
    uses_index : bool
        Whether the plan seeks (True) or scans (False).

    Returns
    -------
    pandas.DataFrame
        One row per leaf: ``leaf``, ``first_key``, ``last_key``, ``n_matches``, ``read``.
    """
    for name, value in (("keys", keys), ("matches", matches)):
        if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
            raise TypeError(f"{name} must be a sequence, got {type(value).__name__}")
    validate.instance("uses_index", uses_index, (bool, np.bool_))
    keys = list(keys)
    hits = np.asarray(matches, dtype=bool)
    if len(keys) == 0 or len(keys) != len(hits):
        raise ValueError("keys and matches must be non-empty and of equal length")
    if list(keys) != sorted(keys):
        raise ValueError("keys must be in index (sorted) order")
    per_leaf = validate.positive_int("keys_per_leaf", keys_per_leaf)
    n_leaves = -(-len(keys) // per_leaf)
    leaf_of = np.arange(len(keys)) // per_leaf
    n_matches = np.bincount(leaf_of, weights=hits, minlength=n_leaves).astype(int)
    if uses_index:
        hit_leaves = np.flatnonzero(n_matches)
        read = np.zeros(n_leaves, dtype=bool)
        if hit_leaves.size:
            read[hit_leaves[0] : hit_leaves[-1] + 1] = True
        else:
            read[0] = True  # the seek still lands on one leaf to learn there is nothing
    else:
        read = np.ones(n_leaves, dtype=bool)
    return pd.DataFrame(
        {
            "leaf": np.arange(n_leaves),
            "first_key": [keys[i * per_leaf] for i in range(n_leaves)],
            "last_key": [keys[min((i + 1) * per_leaf, len(keys)) - 1] for i in range(n_leaves)],
            "n_matches": n_matches,
            "read": read,
        }
    )


def plot_index_access(maps: dict[str, pd.DataFrame], ax: Axes | None = None) -> Axes:
    """One row of leaf pages per query: read leaves shaded, leaves with matches marked, a root above.

    Parameters
    ----------
    maps : dict[str, pd.DataFrame]
        Title to what :func:`index_leaf_map` returns (one row of leaves each).
    ax : Axes | None
        Where to draw (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes
    """
    if not isinstance(maps, dict) or not maps:
        raise ValueError("maps must be a non-empty dict of label -> index_leaf_map DataFrame")
    ax = axes_or_new(ax, figsize=(8.0, 1.6 * len(maps) + 0.6))
    row_height = 2.2
    for row, (label, leaves) in enumerate(maps.items()):
        y = -row * row_height
        n = len(leaves)
        root_x = n / 2 - 0.6
        ax.add_patch(Rectangle((root_x, y + 0.9), 1.2, 0.5, facecolor="white", edgecolor="0.3"))
        ax.text(root_x + 0.6, y + 1.15, "root", ha="center", va="center", fontsize=7)
        for _, leaf in leaves.iterrows():
            x = float(leaf["leaf"])
            face = "tab:orange" if leaf["read"] else "0.92"
            ax.add_patch(Rectangle((x + 0.05, y), 0.9, 0.5, facecolor=face, edgecolor="0.3", linewidth=0.6))
            if leaf["n_matches"]:
                ax.plot(x + 0.5, y + 0.25, marker="*", color="black", markersize=8)
        first_read = int(leaves.loc[leaves["read"], "leaf"].min())
        ax.annotate(
            "",
            xy=(first_read + 0.5, y + 0.5),
            xytext=(root_x + 0.6, y + 0.9),
            arrowprops={"arrowstyle": "->", "color": "tab:orange"},
        )
        ax.text(0, y + 0.75, label, ha="left", va="bottom", fontsize=8)
    ax.set_xlim(-0.1, max(len(m) for m in maps.values()) + 0.2)
    ax.set_ylim(-(len(maps) - 1) * row_height - 0.4, 1.7)
    ax.set_xlabel("leaf pages in index order (orange: read; star: holds a matching key)")
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    return ax


def plot_speedups(runs: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Before and after times per pattern on a log axis.

    Parameters
    ----------
    runs : pd.DataFrame
        What :func:`run_patterns` returns.
    ax : Axes | None
        Where to draw (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes
    """
    if not isinstance(runs, pd.DataFrame) or not {"label", "ms_before", "ms_after"} <= set(runs.columns):
        raise ValueError("runs must be a DataFrame from run_patterns")
    ax = axes_or_new(ax, figsize=(8.0, 0.45 * len(runs) + 1.0))
    y = np.arange(len(runs))[::-1]
    ax.barh(y + 0.2, runs["ms_before"], height=0.4, color="tab:red", label="as written")
    ax.barh(y - 0.2, runs["ms_after"], height=0.4, color="tab:blue", label="rewritten")
    ax.set_yticks(y, runs["label"])
    ax.set_xscale("log")
    ax.set_xlabel("median query time (ms, log scale)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return ax


# --------------------------------------------------------------------------- other engines (not run here)


def mysql_notes() -> pd.DataFrame:
    """Where MySQL 8.0 is documented to differ from what MariaDB measured here (MySQL is not in Debian).

    Returns
    -------
    pandas.DataFrame
        One row per case: ``case``, ``mysql`` (what the MySQL 8.0 manual says) and ``source``
        (the manual section, cited in the chapter).
    """
    rows = [
        (
            "expression index, query unchanged",
            "a functional key part (8.0.13+) such as INDEX ((lower(name))) is used for WHERE lower(name) = ?",
            "CREATE INDEX: Functional Key Parts",
        ),
        (
            "range on the second column only",
            "skip scan (8.0.13+) can use (player_id, played_at) for a played_at range when player_id has few values",
            "Range Optimization: Skip Scan Range Access Method",
        ),
        (
            "string column = number",
            "compared as numbers, row by row: the index on the string column is not used for a range",
            "How MySQL Uses Indexes",
        ),
    ]
    return pd.DataFrame(rows, columns=["case", "mysql", "source"])


# --------------------------------------------------------------------------- PostgreSQL and MariaDB, measured

MAX_ENGINE_MATCHES = 2_000_000  # rows of matches loaded into a real engine
MAX_ENGINE_PLAYERS = 500_000
MAX_ENGINE_TIMEOUT_S = 120.0

# Per engine: the schema, and each pattern's query before and after its rewrite, with the DDL the
# rewrite needs. Values come in as %(name)s and are rendered as literals (EXPLAIN of the text a
# reader would type); generic plans with real bind parameters are measured separately.
_ENGINE_SCHEMA = {
    "postgres": (
        "CREATE TABLE players (id integer PRIMARY KEY, name text NOT NULL, email text NOT NULL, tag text NOT NULL)",
        "CREATE TABLE matches (id integer PRIMARY KEY, played_at timestamp NOT NULL, player_id integer NOT NULL,"
        " score integer NOT NULL)",
    ),
    "mariadb": (
        "CREATE TABLE players (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL, email VARCHAR(64) NOT NULL,"
        " tag VARCHAR(16) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci",
        "CREATE TABLE matches (id INT PRIMARY KEY, played_at DATETIME NOT NULL, player_id INT NOT NULL,"
        " score INT NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci",
    ),
}

_ENGINE_PATTERNS: dict[str, dict[str, tuple[str, str, tuple[str, ...]]]] = {
    "postgres": {
        "date_function": (
            "SELECT count(*), max(score) FROM matches WHERE date(played_at) = %(day)s",
            "SELECT count(*), max(score) FROM matches WHERE played_at >= %(day)s AND played_at < %(next_day)s",
            (),
        ),
        "lower_function": (
            "SELECT * FROM players WHERE lower(email) = %(email)s",
            "SELECT * FROM players WHERE email = %(email)s",
            (),
        ),
        "arithmetic": (
            "SELECT * FROM matches WHERE score + %(bonus)s >= %(target)s",
            "SELECT * FROM matches WHERE score >= %(target_minus_bonus)s",
            (),
        ),
        "leading_wildcard": (
            "SELECT * FROM players WHERE email LIKE %(suffix)s",
            "SELECT * FROM players WHERE split_part(email, '@', 2) = %(domain)s",
            ("CREATE INDEX players_domain ON players (split_part(email, '@', 2))",),
        ),
        "prefix_like": (
            "SELECT * FROM players WHERE name ILIKE %(prefix_like)s",
            "SELECT * FROM players WHERE name LIKE %(prefix_like)s",
            (),
        ),
        "implicit_conversion": (
            "SELECT * FROM players WHERE tag = %(tag_int)s",
            "SELECT * FROM players WHERE tag = %(tag_text)s",
            (),
        ),
        "cast_on_column": (
            "SELECT * FROM players WHERE CAST(tag AS integer) = %(tag_int)s",
            "SELECT * FROM players WHERE tag = %(tag_text)s",
            (),
        ),
        "or_columns": (
            "SELECT * FROM players WHERE tag = %(tag_text)s OR email = %(email)s",
            "SELECT * FROM players WHERE tag = %(tag_text)s UNION SELECT * FROM players WHERE email = %(email)s",
            (),
        ),
        "negation": (
            "SELECT * FROM matches WHERE NOT (score < %(target)s)",
            "SELECT * FROM matches WHERE score >= %(target)s",
            (),
        ),
        "expression_index": (
            "SELECT * FROM players WHERE lower(name) = %(lname)s",
            "SELECT * FROM players WHERE lower(name) = %(lname)s",
            ("CREATE INDEX players_lower_name ON players (lower(name))",),
        ),
        "generated_column": (
            "SELECT count(*), max(score) FROM matches WHERE date(played_at) = %(day)s",
            "SELECT count(*), max(score) FROM matches WHERE play_day = %(day)s",
            (
                "ALTER TABLE matches ADD COLUMN play_day date GENERATED ALWAYS AS (played_at::date) STORED",
                "CREATE INDEX matches_play_day ON matches (play_day)",
            ),
        ),
    },
    "mariadb": {
        "date_function": (
            "SELECT count(*), max(score) FROM matches WHERE DATE(played_at) = %(day)s",
            "SELECT count(*), max(score) FROM matches WHERE played_at >= %(day)s AND played_at < %(next_day)s",
            (),
        ),
        "lower_function": (
            "SELECT * FROM players WHERE LOWER(email) = %(email)s",
            "SELECT * FROM players WHERE email = %(email)s",
            (),
        ),
        "arithmetic": (
            "SELECT * FROM matches WHERE score + %(bonus)s >= %(target)s",
            "SELECT * FROM matches WHERE score >= %(target_minus_bonus)s",
            (),
        ),
        "leading_wildcard": (
            "SELECT * FROM players WHERE email LIKE %(suffix)s",
            "SELECT * FROM players WHERE domain = %(domain)s",
            (
                "ALTER TABLE players ADD COLUMN domain VARCHAR(64) AS (SUBSTRING_INDEX(email, '@', -1)) VIRTUAL,"
                " ADD INDEX players_domain (domain)",
            ),
        ),
        "prefix_like": (
            "SELECT * FROM players WHERE name LIKE %(prefix_like)s",
            "SELECT * FROM players WHERE name LIKE %(prefix_like)s",
            (),
        ),
        "implicit_conversion": (
            "SELECT * FROM players WHERE tag = %(tag_int)s",
            "SELECT * FROM players WHERE tag = %(tag_text)s",
            (),
        ),
        "cast_on_column": (
            "SELECT * FROM players WHERE CAST(tag AS SIGNED) = %(tag_int)s",
            "SELECT * FROM players WHERE tag = %(tag_text)s",
            (),
        ),
        "or_columns": (
            "SELECT * FROM players WHERE tag = %(tag_text)s OR email = %(email)s",
            "SELECT * FROM players WHERE tag = %(tag_text)s UNION SELECT * FROM players WHERE email = %(email)s",
            (),
        ),
        "negation": (
            "SELECT * FROM matches WHERE NOT (score < %(target)s)",
            "SELECT * FROM matches WHERE score >= %(target)s",
            (),
        ),
        "expression_index": (
            "SELECT * FROM players WHERE LOWER(name) = %(lname)s",
            "SELECT * FROM players WHERE LOWER(name) = %(lname)s",
            (
                "ALTER TABLE players ADD COLUMN lname VARCHAR(64) AS (LOWER(name)) VIRTUAL,"
                " ADD INDEX players_lower_name (lname)",
            ),
        ),
        "generated_column": (
            "SELECT count(*), max(score) FROM matches WHERE DATE(played_at) = %(day)s",
            "SELECT count(*), max(score) FROM matches WHERE play_day = %(day)s",
            (
                "ALTER TABLE matches ADD COLUMN play_day DATE AS (DATE(played_at)) VIRTUAL,"
                " ADD INDEX matches_play_day (play_day)",
            ),
        ),
    },
}

# Index shapes beyond single columns, on a copy of matches that has only the composite index
# (player_id, played_at): which predicates it serves, when it covers the query, and when it
# delivers ORDER BY ... LIMIT without a sort.
SHAPE_CASES: tuple[tuple[str, str, str], ...] = (
    (
        "equality then range",
        "leading column equal, second in a range",
        "SELECT * FROM m2 WHERE player_id = %(player_id)s AND played_at >= %(day)s AND played_at < %(next_week)s",
    ),
    (
        "range on the second column only",
        "no predicate on the leading column",
        "SELECT * FROM m2 WHERE played_at >= %(day)s AND played_at < %(next_day)s",
    ),
    (
        "covering: indexed columns only",
        "every column the query reads is in the index",
        "SELECT played_at FROM m2 WHERE player_id = %(player_id)s",
    ),
    (
        "not covering: SELECT *",
        "each match also needs its table row",
        "SELECT * FROM m2 WHERE player_id = %(player_id)s",
    ),
    (
        "ORDER BY an indexed column, LIMIT 10",
        "the 10 latest matches (matches has an index on played_at)",
        "SELECT * FROM matches ORDER BY played_at DESC LIMIT 10",
    ),
    (
        "ORDER BY an unindexed column, LIMIT 10",
        "the same on m2, whose index leads with player_id",
        "SELECT * FROM m2 ORDER BY played_at DESC LIMIT 10",
    ),
)

# Bind parameters: the same prefix search prepared once and executed with a value. PostgreSQL may
# switch a prepared statement to a generic plan that cannot see the value (plan_cache_mode forces
# either); MariaDB optimises a prepared statement again at every execution.
BIND_CASES: tuple[tuple[str, str], ...] = (
    ("prefix LIKE $1", "SELECT * FROM players WHERE name LIKE {p}"),
    ("equality = $1", "SELECT * FROM players WHERE email = {p}"),
)
SHAPE_SQLITE_SETUP = (
    "CREATE TABLE m2 AS SELECT id, played_at, player_id, score FROM matches",
    "CREATE INDEX m2_player_played ON m2 (player_id, played_at)",
    "ANALYZE m2",
)


def _render(kind: str, sql: str, params: dict[str, object]) -> str:
    """``sql`` with each ``%(name)s`` replaced by a literal (values generated here, not user input)."""
    values = {}
    for name, value in params.items():
        if isinstance(value, (bool, np.bool_)):
            raise TypeError(f"params[{name!r}] must be a str or int, got bool")
        if isinstance(value, (int, np.integer)):
            values[name] = str(int(value))
        elif isinstance(value, str):
            escaped = value.replace("'", "''")
            if kind == "mariadb":
                escaped = escaped.replace("\\", "\\\\")
            values[name] = f"'{escaped}'"
        else:
            raise TypeError(f"params[{name!r}] must be a str or int, got {type(value).__name__}")
    return sql % values


def _engine_params(params: dict[str, object]) -> dict[str, object]:
    out = dict(params)
    out["target_minus_bonus"] = int(params["target"]) - int(params["bonus"])
    out["next_week"] = str(np.datetime64(str(params["day"]), "D") + 7)
    return out


def classify_engine_plan(kind: str, plan: object) -> tuple[str, str]:
    """(access, words) for one EXPLAIN: ``access`` is "index", "scan" or "index scan" (a full index walk).

    Parameters
    ----------
    kind : {"postgres", "mariadb"}
        Which engine's EXPLAIN format ``plan`` is in.
    plan : object
        PostgreSQL: the parsed ``EXPLAIN (FORMAT JSON)`` document (a list with one dict);
        MariaDB: the rows of the classic ``EXPLAIN`` (tuples of id, select_type, table, type,
        possible_keys, key, key_len, ref, rows, Extra).

    Returns
    -------
    tuple of (str, str)
        The access class (any sequential/full scan of a table makes it "scan"), and the plan in a
        few words: PostgreSQL's node types (``Index Only Scan``, ``Bitmap Heap Scan`` ...) with
        ``Sort`` when one appears; MariaDB's ``type`` per table with ``key`` and the notable
        ``Extra`` flags (``Using index``, ``Using filesort``, ``Using index condition``).
    """
    kind = validate.choice("kind", kind, ("postgres", "mariadb"))
    if kind == "postgres":
        nodes: list[str] = []

        def walk(node: dict) -> None:
            name = str(node.get("Node Type", "?"))
            if name in ("Index Scan", "Index Only Scan") and node.get("Scan Direction") == "Backward":
                name += " Backward"
            nodes.append(name)
            for child in node.get("Plans", []) or []:
                walk(child)

        walk(plan[0]["Plan"])
        scans = [n for n in nodes if n in ("Seq Scan",)]
        access = "scan" if scans else ("index" if any("Index" in n for n in nodes) else "other")
        keep = [n for n in nodes if "Scan" in n or n in ("Sort", "Incremental Sort", "BitmapOr")]
        return access, " → ".join(dict.fromkeys(reversed(keep)))
    words, access = [], "index"
    for row in plan:
        table, kind_word, key, extra = row[2], row[3], row[5], row[9] or ""
        if table is None or str(table).startswith("<union"):
            continue
        if kind_word == "ALL":
            access = "scan"
        elif kind_word == "index" and access != "scan":
            access = "index scan"
        flags = [
            f
            for f in ("Using index condition", "Using index", "Using filesort", "Using union")
            if f in extra
            and not (
                f == "Using index" and "Using index condition" in extra and extra.count("Using index") == 1
            )
        ]
        words.append(
            " ".join(
                [kind_word] + ([f"({key})"] if key else []) + ([f"[{'; '.join(flags)}]"] if flags else [])
            )
        )
    return access, " + ".join(words)


def _load_engine_dashboard(session, kind: str, config: DashboardConfig, rng: np.random.Generator) -> None:
    players = _player_columns(config, rng)
    matches = _match_columns(config, rng)
    for statement in _ENGINE_SCHEMA[kind]:
        session.execute(statement)
    player_rows = list(zip(*(players[c].tolist() for c in ("id", "name", "email", "tag")), strict=True))
    match_rows = list(
        zip(
            range(1, config.n_matches + 1),
            [t.replace("T", " ") for t in matches["played_at"].tolist()],
            matches["player_id"].tolist(),
            matches["score"].tolist(),
            strict=True,
        )
    )
    if kind == "postgres":
        with session.conn.cursor() as cur:
            with cur.copy("COPY players (id, name, email, tag) FROM STDIN") as copy:
                for row in player_rows:
                    copy.write_row(row)
            with cur.copy("COPY matches (id, played_at, player_id, score) FROM STDIN") as copy:
                for row in match_rows:
                    copy.write_row(row)
    else:
        with session.conn.cursor() as cur:
            for start in range(0, len(player_rows), 5_000):
                cur.executemany(
                    "INSERT INTO players (id, name, email, tag) VALUES (%s, %s, %s, %s)",
                    player_rows[start : start + 5_000],
                )
            for start in range(0, len(match_rows), 5_000):
                cur.executemany(
                    "INSERT INTO matches (id, played_at, player_id, score) VALUES (%s, %s, %s, %s)",
                    match_rows[start : start + 5_000],
                )
    for statement in INDEXES:
        session.execute(statement)
    session.execute("CREATE TABLE m2 AS SELECT id, played_at, player_id, score FROM matches")
    session.execute("CREATE INDEX m2_player_played ON m2 (player_id, played_at)")
    if kind == "postgres":
        session.execute("VACUUM ANALYZE players")
        session.execute("VACUUM ANALYZE matches")
        session.execute("VACUUM ANALYZE m2")
    else:
        session.execute("ANALYZE TABLE players, matches, m2")


def _explain(session, kind: str, sql: str) -> tuple[str, str]:
    if kind == "postgres":
        document = session.scalar("EXPLAIN (FORMAT JSON) " + sql)
        return classify_engine_plan(kind, document)
    return classify_engine_plan(kind, session.execute("EXPLAIN " + sql))


def measure_engine_plans(
    engine: object,
    config: DashboardConfig | None = None,
    *,
    seed: int | np.random.Generator | None = 0,
    timeout_s: float = 60.0,
) -> Run:
    """EXPLAIN every anti-pattern, its rewrite and the index-shape cases on a real PostgreSQL or MariaDB.

    Loads the same generated dashboard as :func:`build_dashboard` (``players`` and ``matches``
    with the same single-column indexes, plus ``m2``, a copy of ``matches`` whose only index is
    ``(player_id, played_at)``), analyses it, then asks the planner about each query in
    :data:`PATTERNS` as written and rewritten (running the rewrite's DDL first), each of
    :data:`SHAPE_CASES` and each of :data:`BIND_CASES` (prepared, then executed with a value). Plans only: nothing is timed, so the result does not depend on the machine.

    Parameters
    ----------
    engine : syslab.engines.Engine
        A running PostgreSQL or MariaDB.
    config : DashboardConfig, optional
        Table sizes (default: 40,000 matches and 8,000 players, enough for every planner to
        prefer an index for a selective predicate); at most :data:`MAX_ENGINE_MATCHES` and
        :data:`MAX_ENGINE_PLAYERS`.
    seed : int, numpy Generator or None
        The generated data.
    timeout_s : float
        Bound on the whole experiment, loading included (s), at most :data:`MAX_ENGINE_TIMEOUT_S`.

    Returns
    -------
    syslab.experiment.Run
        ``frame``: one row per query with ``case`` (a pattern key, a shape case or a bind case),
        ``phase`` ("before", "after", "shape"; for bind cases "custom plan"/"generic plan" on
        PostgreSQL, "prepared" on MariaDB), ``sql`` (as explained), ``access`` ("index", "scan",
        "index scan" or "error") and ``plan`` (a few words of the engine's own plan, or the
        error message). ``summary``: ``engine``, ``collation`` (the database's default, which
        decides whether ``LIKE 'x%'`` can use a plain B-tree), ``n_matches`` and ``n_players``.
    """
    from syslab import _engine_sql as sql

    kind = sql.kind_of(engine)
    config = DashboardConfig(n_matches=40_000, n_players=8_000, n_clans=200) if config is None else config
    validate.instance("config", config, DashboardConfig)
    if config.n_matches > MAX_ENGINE_MATCHES or config.n_players > MAX_ENGINE_PLAYERS:
        raise ValueError(
            f"config must have at most {MAX_ENGINE_MATCHES:,} matches and {MAX_ENGINE_PLAYERS:,} players for an"
            f" engine, got {config.n_matches:,} and {config.n_players:,}"
        )
    rng = validate.rng_from_seed(seed)
    timeout = validate.float_in_range("timeout_s", timeout_s, 1.0, MAX_ENGINE_TIMEOUT_S)
    deadline = sql.deadline_after(timeout)
    errors = sql.driver_errors(kind)
    rows: list[dict[str, object]] = []
    with sql.fresh_database(engine, deadline) as db:
        s = sql.open_session(kind, db, deadline)
        try:
            _load_engine_dashboard(s, kind, config, rng)
            pick = max(1, config.n_players // 2)
            name, email, tag = s.execute("SELECT name, email, tag FROM players WHERE id = %s", (pick,))[0]
            day = np.datetime64(config.start_date, "D") + config.days // 2
            params = _engine_params(
                {
                    "day": str(day),
                    "next_day": str(day + 1),
                    "email": email,
                    "domain": email.split("@", 1)[1],
                    "suffix": "%@" + email.split("@", 1)[1],
                    "lname": name.lower(),
                    "prefix_like": name[:-3] + "%",
                    "tag_int": int(tag),
                    "tag_text": tag,
                    "player_id": pick,
                    "bonus": 500,
                    "target": 999_000,
                }
            )
            if kind == "postgres":
                collation = str(
                    s.scalar("SELECT datcollate FROM pg_database WHERE datname = current_database()")
                )
            else:
                collation = str(
                    s.scalar(
                        "SELECT table_collation FROM information_schema.TABLES"
                        " WHERE table_schema = DATABASE() AND table_name = 'players'"
                    )
                )
            for pattern in PATTERNS:
                before, after, setup = _ENGINE_PATTERNS[kind][pattern.key]
                for phase, text in (("before", before), ("after", after)):
                    if phase == "after":
                        for statement in setup:
                            s.execute(statement)
                        if setup:
                            s.execute(
                                "ANALYZE players" if kind == "postgres" else "ANALYZE TABLE players, matches"
                            )
                            if kind == "postgres":
                                s.execute("ANALYZE matches")
                    rendered = _render(kind, text, params)
                    try:
                        access, words = _explain(s, kind, rendered)
                    except errors as error:
                        access, words = "error", str(sql.error_info(s, error)["message"])
                    rows.append(
                        {
                            "case": pattern.key,
                            "phase": phase,
                            "sql": rendered,
                            "access": access,
                            "plan": words,
                        }
                    )
            for case, _description, text in SHAPE_CASES:
                rendered = _render(kind, text, params)
                access, words = _explain(s, kind, rendered)
                rows.append(
                    {"case": case, "phase": "shape", "sql": rendered, "access": access, "plan": words}
                )
            values = {"prefix LIKE $1": params["prefix_like"], "equality = $1": params["email"]}
            for index, (case, template) in enumerate(BIND_CASES):
                value = _render(kind, "%(v)s", {"v": values[case]})
                if kind == "postgres":
                    s.execute(f"PREPARE q{index} (text) AS " + template.format(p="$1"))
                    for mode in ("force_custom_plan", "force_generic_plan"):
                        s.execute(f"SET plan_cache_mode = {mode}")
                        document = s.scalar(f"EXPLAIN (FORMAT JSON) EXECUTE q{index} ({value})")
                        access, words = classify_engine_plan(kind, document)
                        rows.append(
                            {
                                "case": case,
                                "phase": mode.replace("force_", "").replace("_", " "),
                                "sql": f"PREPARE q{index} (text) AS {template.format(p='$1')};"
                                f" SET plan_cache_mode = {mode}; EXECUTE q{index} ({value})",
                                "access": access,
                                "plan": words,
                            }
                        )
                    s.execute("RESET plan_cache_mode")
                else:
                    s.execute(f"PREPARE q{index} FROM 'EXPLAIN {template.format(p='?')}'")
                    s.execute(f"SET @v = {value}")
                    access, words = classify_engine_plan(kind, s.execute(f"EXECUTE q{index} USING @v"))
                    rows.append(
                        {
                            "case": case,
                            "phase": "prepared",
                            "sql": f"PREPARE q{index} FROM"
                            f" '{template.format(p='?')}'; EXECUTE q{index} USING {value}",
                            "access": access,
                            "plan": words,
                        }
                    )
        finally:
            s.close()
    summary = {
        "engine": str(getattr(engine, "label", kind)),
        "collation": collation,
        "n_matches": config.n_matches,
        "n_players": config.n_players,
    }
    return Run.create(pd.DataFrame(rows), summary, engine=engine)


def explain_shapes_sqlite(conn: sqlite3.Connection, params: dict[str, object]) -> pd.DataFrame:
    """SQLite's plan for each of :data:`SHAPE_CASES` and :data:`BIND_CASES`, on a built dashboard.

    Creates ``m2`` (a copy of ``matches`` whose only index is ``(player_id, played_at)``) if it is
    missing, then asks ``EXPLAIN QUERY PLAN`` about each case with its values bound as parameters.

    Parameters
    ----------
    conn : sqlite3.Connection
        A database filled by :func:`build_dashboard`.
    params : dict
        What :func:`dashboard_parameters` returned.

    Returns
    -------
    pandas.DataFrame
        One row per case: ``case``, ``phase`` ("shape" or "prepared"), ``sql``, ``access`` ("index",
        "scan") and ``plan`` (SQLite's plan lines joined with " | ").
    """
    conn = _check_connection(conn)
    validate.instance("params", params, dict)
    if conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'players'").fetchone()[0] == 0:
        raise ValueError("conn has no dashboard; call build_dashboard first")
    if conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'm2'").fetchone()[0] == 0:
        with conn:
            for statement in SHAPE_SQLITE_SETUP:
                conn.execute(statement)
    values = _engine_params(params)
    values["next_week"] = str(np.datetime64(str(params["day"]), "D") + 7)
    rows = []
    for case, _description, text in SHAPE_CASES:
        sql = text.replace("%(", ":").replace(")s", "")
        plan = query_plan(conn, sql, {k: v for k, v in values.items() if f":{k}" in sql})
        rows.append(
            {
                "case": case,
                "phase": "shape",
                "sql": sql,
                "access": _plan_access(plan),
                "plan": " | ".join(plan),
            }
        )
    # SQLite's LIKE is case-insensitive and cannot use the BINARY index whatever the binding; its
    # case-sensitive prefix operator is GLOB, so the bound prefix search uses that.
    bind_values = {"prefix LIKE $1": params["prefix_glob"], "equality = $1": params["email"]}
    for case, template in BIND_CASES:
        sql = template.format(p="?").replace("LIKE", "GLOB")
        plan = query_plan(conn, sql, (bind_values[case],))
        rows.append(
            {
                "case": case,
                "phase": "prepared",
                "sql": sql,
                "access": _plan_access(plan),
                "plan": " | ".join(plan),
            }
        )
    return pd.DataFrame(rows)


def _plan_access(plan: list[str]) -> str:
    return "index" if plan_uses_index(plan) else "scan"


def compare_engine_plans(sqlite_runs: pd.DataFrame, engine_runs: Sequence[Run]) -> pd.DataFrame:
    """Each anti-pattern's access path before and after its rewrite, SQLite beside the real engines.

    Parameters
    ----------
    sqlite_runs : pandas.DataFrame
        What :func:`run_patterns` returned (``pattern``, ``index_before``, ``index_after``).
    engine_runs : sequence of syslab.experiment.Run
        Results of :func:`measure_engine_plans` (PostgreSQL and/or MariaDB; may be empty).

    Returns
    -------
    pandas.DataFrame
        One row per pattern: ``pattern`` (its label), ``SQLite`` and one column per engine label,
        each "SCAN → SEARCH"-style words (``error`` where the server refused the query), and
        ``engine_specific`` (bool: the engines do not all agree on the query as written or on its
        rewrite).
    """
    sqlite_runs = validate.frame_columns(
        "sqlite_runs", sqlite_runs, ["pattern", "index_before", "index_after"]
    )
    if (
        isinstance(engine_runs, (str, bytes))
        or not isinstance(engine_runs, Sequence)
        or len(engine_runs) > 10
    ):
        raise ValueError("engine_runs must be a sequence of at most 10 Run results of measure_engine_plans")
    word = {"index": "index", "scan": "scan", "index scan": "full index", "error": "error"}
    by_key = {p.key: p.label for p in PATTERNS}
    table = pd.DataFrame({"key": sqlite_runs["pattern"], "pattern": sqlite_runs["pattern"].map(by_key)})
    table["SQLite"] = [
        f"{'index' if b else 'scan'} → {'index' if a else 'scan'}"
        for b, a in zip(sqlite_runs["index_before"], sqlite_runs["index_after"], strict=True)
    ]
    befores = [sqlite_runs["index_before"].map({True: "index", False: "scan"}).tolist()]
    afters = [sqlite_runs["index_after"].map({True: "index", False: "scan"}).tolist()]
    for index, run in enumerate(engine_runs):
        validate.instance(f"engine_runs[{index}]", run, Run)
        frame = run.frame[run.frame["phase"].isin(["before", "after"])]
        access = frame.pivot(index="case", columns="phase", values="access")
        label = str(run.summary["engine"])
        table[label] = [
            f"{word[access.loc[k, 'before']]} → {word[access.loc[k, 'after']]}" for k in table["key"]
        ]
        befores.append([access.loc[k, "before"] for k in table["key"]])
        afters.append([access.loc[k, "after"] for k in table["key"]])
    table["engine_specific"] = [
        len({column[i] for column in befores}) > 1 or len({column[i] for column in afters}) > 1
        for i in range(len(table))
    ]
    return table.drop(columns="key")


def _engine_frames(engine_runs: Sequence[Run]) -> dict[str, tuple[str, pd.DataFrame, dict]]:
    """Engine kind ("postgres"/"mariadb") to (label, frame, summary) for measure_engine_plans runs."""
    if (
        isinstance(engine_runs, (str, bytes))
        or not isinstance(engine_runs, Sequence)
        or len(engine_runs) > 10
    ):
        raise ValueError("engine_runs must be a sequence of at most 10 Run results of measure_engine_plans")
    out = {}
    for index, run in enumerate(engine_runs):
        validate.instance(f"engine_runs[{index}]", run, Run)
        label = str(run.summary["engine"])
        kind = "postgres" if label.startswith("PostgreSQL") else "mariadb"
        out[kind] = (label, run.frame, dict(run.summary))
    return out


def _plan_of(frame: pd.DataFrame, case: str, phase: str) -> pd.Series:
    part = frame[(frame["case"] == case) & (frame["phase"] == phase)]
    if part.empty:
        raise ValueError(f"the run has no plan for case {case!r}, phase {phase!r}")
    return part.iloc[0]


def summarize_engine_plans(engine_runs: Sequence[Run]) -> dict[str, object]:
    """The phrases a page quotes about the engines' plans for :data:`PATTERNS`, and its claims.

    Parameters
    ----------
    engine_runs : sequence of syslab.experiment.Run
        Results of :func:`measure_engine_plans` (PostgreSQL and/or MariaDB; may be empty).

    Returns
    -------
    dict
        ``pg_label``, ``pg_collation``, ``pg_negation_plan``, ``pg_implicit_error``, ``maria_label``,
        ``maria_collation``, ``maria_negation_plan``, ``maria_implicit_plan``, ``maria_prefix_plan``,
        ``maria_expression_plan`` ("not measured" for a missing engine) and ``checks`` (claim text to
        bool).
    """
    frames = _engine_frames(engine_runs)
    out: dict[str, object] = {}
    checks: dict[str, bool] = {}
    missing = "not measured"
    out.update(
        pg_label="PostgreSQL (not measured here)",
        pg_collation=missing,
        pg_negation_plan=missing,
        pg_implicit_error=missing,
    )
    out.update(
        maria_label="MariaDB (not measured here)",
        maria_collation=missing,
        maria_negation_plan=missing,
        maria_implicit_plan=missing,
        maria_prefix_plan=missing,
        maria_expression_plan=missing,
    )
    if "postgres" in frames:
        label, frame, summary = frames["postgres"]
        negation = _plan_of(frame, "negation", "before")
        implicit = _plan_of(frame, "implicit_conversion", "before")
        out.update(
            pg_label=label,
            pg_collation=str(summary["collation"]),
            pg_negation_plan=str(negation["plan"]),
            pg_implicit_error=str(implicit["plan"]),
        )
        checks["PostgreSQL seeks for NOT (score < c)"] = negation["access"] == "index"
        checks["PostgreSQL refuses text = integer"] = implicit["access"] == "error"
    if "mariadb" in frames:
        label, frame, summary = frames["mariadb"]
        negation = _plan_of(frame, "negation", "before")
        implicit = _plan_of(frame, "implicit_conversion", "before")
        prefix = _plan_of(frame, "prefix_like", "before")
        expression = _plan_of(frame, "expression_index", "after")
        out.update(
            maria_label=label,
            maria_collation=str(summary["collation"]),
            maria_negation_plan=str(negation["plan"]),
            maria_implicit_plan=str(implicit["plan"]),
            maria_prefix_plan=str(prefix["plan"]),
            maria_expression_plan=str(expression["plan"]),
        )
        checks["MariaDB seeks for NOT (score < c)"] = negation["access"] == "index"
        checks["MariaDB scans for a number compared with a VARCHAR"] = implicit["access"] == "scan"
        checks["MariaDB's case-insensitive prefix LIKE uses the index"] = prefix["access"] == "index"
        checks["MariaDB does not match LOWER(name) to an indexed virtual column"] = (
            expression["access"] == "scan"
        )
    out["checks"] = checks
    return out


def _shape_table(
    sqlite_shapes: pd.DataFrame, engine_runs: Sequence[Run], phases: dict[str, dict[str, str]]
) -> pd.DataFrame:
    """Rows: (case, plan label); columns: SQLite and each engine; ``phases`` maps a plan label to the
    phase to read for each of "sqlite", "postgres" and "mariadb"."""
    sqlite_shapes = validate.frame_columns("sqlite_shapes", sqlite_shapes, ["case", "phase", "plan"])
    frames = _engine_frames(engine_runs)
    wanted = {phase["sqlite"] for phase in phases.values()}
    rows = []
    for case in dict.fromkeys(sqlite_shapes.loc[sqlite_shapes["phase"].isin(wanted), "case"]):
        for plan_label, phase in phases.items():
            row = {"case": case, "plan": plan_label}
            part = sqlite_shapes[
                (sqlite_shapes["case"] == case) & (sqlite_shapes["phase"] == phase["sqlite"])
            ]
            row["SQLite"] = part["plan"].iloc[0] if len(part) else "–"
            for kind, (label, frame, _summary) in frames.items():
                part = frame[(frame["case"] == case) & (frame["phase"] == phase[kind])]
                row[label] = part["plan"].iloc[0] if len(part) else "–"
            rows.append(row)
    table = pd.DataFrame(rows)
    return table.drop(columns="plan") if len(phases) == 1 else table


def compare_shape_plans(sqlite_shapes: pd.DataFrame, engine_runs: Sequence[Run]) -> pd.DataFrame:
    """Each of :data:`SHAPE_CASES` planned by SQLite and by the real engines, side by side.

    Parameters
    ----------
    sqlite_shapes : pandas.DataFrame
        What :func:`explain_shapes_sqlite` returned.
    engine_runs : sequence of syslab.experiment.Run
        Results of :func:`measure_engine_plans` (may be empty).

    Returns
    -------
    pandas.DataFrame
        One row per case: ``case``, ``SQLite`` and one column per engine label, each the engine's plan
        in a few words.
    """
    return _shape_table(
        sqlite_shapes, engine_runs, {"shape": {"sqlite": "shape", "postgres": "shape", "mariadb": "shape"}}
    )


def compare_bind_plans(sqlite_shapes: pd.DataFrame, engine_runs: Sequence[Run]) -> pd.DataFrame:
    """Each of :data:`BIND_CASES` prepared and planned: PostgreSQL's custom and generic plans beside the others.

    Parameters
    ----------
    sqlite_shapes : pandas.DataFrame
        What :func:`explain_shapes_sqlite` returned (its "prepared" rows).
    engine_runs : sequence of syslab.experiment.Run
        Results of :func:`measure_engine_plans` (may be empty).

    Returns
    -------
    pandas.DataFrame
        Two rows per case (``plan`` = "custom plan", "generic plan"): ``case``, ``plan``, ``SQLite`` and
        one column per engine label. SQLite and MariaDB plan a prepared statement with its value each
        time, so their two rows are the same plan.
    """
    return _shape_table(
        sqlite_shapes,
        engine_runs,
        {
            "custom plan": {"sqlite": "prepared", "postgres": "custom plan", "mariadb": "prepared"},
            "generic plan": {"sqlite": "prepared", "postgres": "generic plan", "mariadb": "prepared"},
        },
    )


def _cell(table: pd.DataFrame, case: str, column: str, plan: str | None = None) -> str:
    if column not in table.columns:
        return "not measured"
    part = table[table["case"] == case]
    if plan is not None:
        part = part[part["plan"] == plan]
    return str(part[column].iloc[0]) if len(part) else "not measured"


def summarize_shape_plans(shapes: pd.DataFrame) -> dict[str, object]:
    """The phrases a page quotes from :func:`compare_shape_plans`, and its claims.

    Parameters
    ----------
    shapes : pandas.DataFrame
        What :func:`compare_shape_plans` returned.

    Returns
    -------
    dict
        ``pg_order_plan`` (PostgreSQL's plan for ORDER BY an indexed column with LIMIT, or "not
        measured") and ``checks`` (claim text to bool).
    """
    shapes = validate.frame_columns("shapes", shapes, ["case", "SQLite"])
    engines_ = [c for c in shapes.columns if c not in ("case", "SQLite")]
    pg = next((c for c in engines_ if c.startswith("PostgreSQL")), None)
    maria = next((c for c in engines_ if c.startswith("MariaDB")), None)
    checks = {
        "SQLite reads a covering index only": "COVERING"
        in _cell(shapes, "covering: indexed columns only", "SQLite"),
        "SQLite sorts when ORDER BY has no index": "TEMP B-TREE"
        in _cell(shapes, "ORDER BY an unindexed column, LIMIT 10", "SQLite"),
        "SQLite scans for a range on the second column only": _cell(
            shapes, "range on the second column only", "SQLite"
        ).startswith("SCAN"),
    }
    if pg:
        checks["PostgreSQL plans an index-only scan for the covering query"] = "Index Only Scan" in _cell(
            shapes, "covering: indexed columns only", pg
        )
        checks["PostgreSQL serves ORDER BY … LIMIT from the index without a sort"] = "Sort" not in _cell(
            shapes, "ORDER BY an indexed column, LIMIT 10", pg
        )
        checks["PostgreSQL scans for a range on the second column only"] = "Seq Scan" in _cell(
            shapes, "range on the second column only", pg
        )
    if maria:
        checks["MariaDB marks the covering query Using index"] = "Using index]" in _cell(
            shapes, "covering: indexed columns only", maria
        ) or "Using index;" in _cell(shapes, "covering: indexed columns only", maria)
        checks["MariaDB sorts (filesort) when ORDER BY has no index"] = "filesort" in _cell(
            shapes, "ORDER BY an unindexed column, LIMIT 10", maria
        )
    return {
        "pg_order_plan": _cell(shapes, "ORDER BY an indexed column, LIMIT 10", pg) if pg else "not measured",
        "checks": checks,
    }


def summarize_bind_plans(binds: pd.DataFrame) -> dict[str, object]:
    """The phrases a page quotes from :func:`compare_bind_plans`, and its claims.

    Parameters
    ----------
    binds : pandas.DataFrame
        What :func:`compare_bind_plans` returned.

    Returns
    -------
    dict
        ``pg_custom_like``, ``pg_generic_like``, ``pg_generic_eq``, ``maria_prepared_like``,
        ``sqlite_prepared_like`` ("not measured" for a missing engine) and ``checks``.
    """
    binds = validate.frame_columns("binds", binds, ["case", "plan", "SQLite"])
    columns = [c for c in binds.columns if c not in ("case", "plan", "SQLite")]
    pg = next((c for c in columns if c.startswith("PostgreSQL")), "PostgreSQL")
    maria = next((c for c in columns if c.startswith("MariaDB")), "MariaDB")
    out: dict[str, object] = {
        "pg_custom_like": _cell(binds, "prefix LIKE $1", pg, "custom plan"),
        "pg_generic_like": _cell(binds, "prefix LIKE $1", pg, "generic plan"),
        "pg_generic_eq": _cell(binds, "equality = $1", pg, "generic plan"),
        "maria_prepared_like": _cell(binds, "prefix LIKE $1", maria, "custom plan"),
        "sqlite_prepared_like": _cell(binds, "prefix LIKE $1", "SQLite", "custom plan"),
    }
    checks = {"SQLite seeks for a bound GLOB prefix": out["sqlite_prepared_like"].startswith("SEARCH")}
    if out["pg_generic_like"] != "not measured":
        checks["PostgreSQL's custom plan seeks for LIKE $1 and its generic plan scans"] = (
            "Index" in out["pg_custom_like"] and "Seq Scan" in out["pg_generic_like"]
        )
        checks["PostgreSQL's generic plan still seeks for equality"] = "Index" in out["pg_generic_eq"]
    if out["maria_prepared_like"] != "not measured":
        checks["MariaDB's prepared LIKE ? uses the index"] = out["maria_prepared_like"].startswith("range")
    out["checks"] = checks
    return out
