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

MySQL and PostgreSQL are not run here: :func:`engine_plans` is a sourced table
of what their manuals say each case does.
"""

from __future__ import annotations

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
    "engine_plans",
    "index_leaf_map",
    "plot_index_access",
    "plot_selectivity",
    "plot_speedups",
    "index_sample",
    "sweep_selectivity",
    "theory_crossover",
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
        try:
            np.datetime64(self.start_date, "D")
        except (ValueError, TypeError) as error:
            raise ValueError(f"start_date must be an ISO date YYYY-MM-DD, got {self.start_date!r}") from error


def _check_connection(conn: object) -> sqlite3.Connection:
    if not isinstance(conn, sqlite3.Connection):
        raise TypeError(f"conn must be a sqlite3.Connection, got {type(conn).__name__}")
    return conn


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
    conn: sqlite3.Connection, config: DashboardConfig | None = None, seed: int | np.random.Generator = 7
) -> pd.Series:
    """Create and fill the ``players`` and ``matches`` tables with their indexes.

    Columns are generated with numpy, inserted with ``executemany`` in one
    transaction (one commit, not a million), and the indexes are built after the
    load, which sorts once instead of splitting pages row by row. ``ANALYZE``
    runs last so the planner has real statistics, as in production.

    Returns
    -------
    pandas.Series
        ``players``, ``matches`` (row counts) and ``generate_s``, ``insert_s``,
        ``index_s``, ``analyze_s``, ``total_s`` (wall seconds).
    """
    conn = _check_connection(conn)
    config = config if config is not None else DashboardConfig()
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
    """
    conn = _check_connection(conn)
    config = config if config is not None else DashboardConfig()
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
    """

    key: str
    label: str
    before: str
    after: str
    setup: tuple[str, ...] = field(default_factory=tuple)
    changes_schema: bool = False
    note: str = ""


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


def _bind(sql: str, params: dict[str, object]) -> dict[str, object]:
    """Only the named parameters ``sql`` uses (sqlite3 rejects none, but keeps plans readable)."""
    return {name: value for name, value in params.items() if f":{name}" in sql}


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
) -> dict[str, object]:
    """Plan and time one anti-pattern, apply its set-up, then plan and time the rewrite.

    Returns
    -------
    dict
        ``pattern``, ``label``, ``plan_before``/``plan_after`` (the EXPLAIN QUERY
        PLAN lines joined with `` | ``), ``index_before``/``index_after`` (every
        table access is a SEARCH), ``rows_before``/``rows_after``,
        ``ms_before``/``ms_after`` (median wall time), ``setup_s``,
        ``changes_schema``, ``speedup`` (``ms_before / ms_after``) and ``note``.
    """
    conn = _check_connection(conn)
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
    return result


def run_patterns(
    conn: sqlite3.Connection,
    params: dict[str, object],
    patterns: Sequence[Pattern] = PATTERNS,
    *,
    repeats: int = 3,
    max_total_s: float = 1.0,
) -> pd.DataFrame:
    """:func:`run_pattern` for each pattern in order; one row per pattern (see its columns)."""
    if isinstance(patterns, Pattern) or not isinstance(patterns, Sequence) or len(patterns) == 0:
        raise ValueError("patterns must be a non-empty sequence of Pattern")
    rows = [run_pattern(conn, p, params, repeats=repeats, max_total_s=max_total_s) for p in patterns]
    return pd.DataFrame(rows)


def _plan_word(uses_index: bool) -> str:
    return "SEARCH" if uses_index else "SCAN"


def summarize_patterns(runs: pd.DataFrame) -> pd.DataFrame:
    """The chapter's summary table: pattern, plan before, rewrite, plan after, times and speed-up."""
    needed = {"label", "index_before", "index_after", "ms_before", "ms_after", "speedup", "note"}
    if not isinstance(runs, pd.DataFrame) or not needed <= set(runs.columns):
        raise ValueError(f"runs must be a DataFrame from run_patterns with columns {sorted(needed)}")
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

    Returns
    -------
    pandas.DataFrame
        One row per width: ``width_days``, ``rows``, ``fraction`` (of the
        table), ``ms_scan``, ``ms_search``, ``plan_scan``, ``plan_search``.
    """
    conn = _check_connection(conn)
    config = config if config is not None else DashboardConfig()
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


def theory_crossover(sweep: pd.DataFrame) -> pd.Series:
    """Fit the two-line cost model and return where the index stops paying.

    A scan reads every row whatever the predicate, then does a little work per
    match: ``t_scan = c + d * rows`` with ``d`` small. A range search costs a
    seek plus one index entry and one table lookup per match:
    ``t_search = a + b * rows``. The index wins while
    ``rows < (c - a) / (b - d)``.

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
    """Measured scan and search times against the fraction of rows matched, with the fitted model."""
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
    params = params or {}
    bound = _bind(where, params)
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

    Returns
    -------
    pandas.DataFrame
        One row per leaf: ``leaf``, ``first_key``, ``last_key``, ``n_matches``, ``read``.
    """
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
    """One row of leaf pages per query: read leaves shaded, leaves with matches marked, a root above."""
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
    """Before and after times per pattern on a log axis."""
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


def engine_plans() -> pd.DataFrame:
    """What MySQL 8.0 and PostgreSQL 16 do with the same cases, from their manuals (not run here).

    MySQL's ``EXPLAIN`` reports an access ``type`` per table (``ALL`` is a
    full table scan, ``range``/``ref`` use an index, ``index_merge`` combines
    several); PostgreSQL prints plan nodes (``Seq Scan``, ``Index Scan``,
    ``Bitmap Index Scan``, ``BitmapOr``). The ``source`` column names the
    manual sections that state the behaviour (cited in the chapter).
    """
    rows = [
        (
            "function on the column: date(), lower()",
            "ALL (range after rewrite; functional key part since 8.0.13)",
            "Seq Scan (Index Scan after rewrite or on an expression index)",
            "MySQL: EXPLAIN Output Format, CREATE INDEX; PostgreSQL: Indexes on Expressions",
        ),
        (
            "arithmetic on the column",
            "ALL → range after moving the arithmetic",
            "Seq Scan → Index Scan / Bitmap Index Scan",
            "MySQL: EXPLAIN Output Format; PostgreSQL: Using EXPLAIN",
        ),
        (
            "leading-wildcard LIKE '%x'",
            "ALL (a B-tree only serves a constant prefix)",
            "Seq Scan (B-tree serves only anchored patterns; pg_trgm GIN for infix)",
            "MySQL: B-Tree and Hash Indexes; PostgreSQL: Index Types",
        ),
        (
            "prefix LIKE 'x%'",
            "range (case-insensitivity comes from the column's collation)",
            "Index Scan only with a C collation or text_pattern_ops",
            "MySQL: B-Tree and Hash Indexes; PostgreSQL: Operator Classes",
        ),
        (
            "string column = number",
            "ALL: the column is converted row by row",
            "error: operator does not exist: text = integer",
            "MySQL: How MySQL Uses Indexes; PostgreSQL: 8.3 release notes",
        ),
        (
            "OR across two indexed columns",
            "index_merge (union)",
            "BitmapOr of two Bitmap Index Scans",
            "MySQL: Index Merge Optimization; PostgreSQL: Combining Multiple Indexes",
        ),
    ]
    return pd.DataFrame(rows, columns=["case", "MySQL 8.0 EXPLAIN type", "PostgreSQL 16 plan", "source"])


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
