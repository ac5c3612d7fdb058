"""Fan-out on write (push) vs fan-out on read (pull) vs a hybrid, on a heavy-tailed follower graph.

- **graph** -- :func:`follower_graph` draws follower and following counts for about
  a million users, vectorised: follower counts from a Pareto tail (a few accounts
  with millions of followers), following counts from a lognormal scaled so both
  sides count the same edges. Who-follows-whom is not stored: a follow lands on
  an account with probability proportional to its followers, so the number of
  celebrities a reader follows is binomial.
- **costs** -- :func:`strategy_costs` gives timeline writes per day and timelines
  merged per read for push, pull and a hybrid that skips fan-out for accounts
  above a follower threshold; :func:`sweep_threshold` sweeps the threshold.
- **memory** -- :func:`timeline_cache_bytes`: a capped, replicated timeline cache.
- **delay** -- :func:`simulate_celebrity_fanout` pushes one celebrity post through
  a fan-out work queue shared with everyone else's posts, using
  :func:`syslab.queueing.simulate_pool` (FIFO workers) on a replayed trace.
- **real** -- :func:`run_sqlite_timelines`: push and pull timelines in SQLite with
  measured write and read times.
"""

from __future__ import annotations

import math
import sqlite3
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from syslab import queueing, validate
from syslab.plot import axes_or_new, label
from syslab.sqlite_tools import temporary_database

__all__ = [
    "GraphConfig",
    "follower_graph",
    "plot_celebrity_delay",
    "plot_threshold_sweep",
    "run_sqlite_timelines",
    "simulate_celebrity_fanout",
    "strategy_costs",
    "sweep_threshold",
    "theory_celebrity_delay_s",
    "timeline_cache_bytes",
]


@dataclass(frozen=True)
class GraphConfig:
    """Shape of the follower graph.

    Attributes
    ----------
    n_users : int
        Accounts.
    tail_alpha : float
        Pareto tail index of follower counts: P(followers > x) ~ x**-alpha. Around 1
        is a very heavy tail (a handful of accounts with a large share of all follows).
    min_followers : float
        Scale of the Pareto draw (the smallest typical follower count).
    following_median : float
        Median number of accounts a user follows before rescaling.
    following_sigma : float
        Lognormal shape of the following counts.
    max_following : int
        Cap on accounts followed (Twitter's follow limit was 5000 for most accounts).
    """

    n_users: int = 1_000_000  # accounts
    tail_alpha: float = 1.1  # Pareto tail index of follower counts
    min_followers: float = 10.0  # followers, scale of the Pareto draw
    following_median: float = 60.0  # accounts followed, median before rescaling
    following_sigma: float = 1.0  # lognormal shape of following counts
    max_following: int = 5000  # accounts followed, cap

    def __post_init__(self) -> None:
        validate.int_in_range("n_users", self.n_users, 10, 100_000_000)
        validate.positive_float("tail_alpha", self.tail_alpha)
        validate.positive_float("min_followers", self.min_followers)
        validate.positive_float("following_median", self.following_median)
        validate.positive_float("following_sigma", self.following_sigma)
        validate.positive_int("max_following", self.max_following)


def follower_graph(config: GraphConfig = GraphConfig(), seed: int | np.random.Generator = 0) -> pd.DataFrame:
    """Follower and following counts per user.

    Returns
    -------
    pandas.DataFrame
        One row per user: ``user_id``, ``followers`` (int), ``following`` (int). Both
        columns sum to the same number of follow edges (up to rounding of a few).
    """
    if not isinstance(config, GraphConfig):
        raise TypeError(f"config must be a GraphConfig, got {type(config).__name__}")
    rng = validate.rng_from_seed(seed)
    n = config.n_users
    # Pareto via inverse transform; nobody can have more followers than there are other users.
    followers = np.floor(config.min_followers * rng.random(n) ** (-1.0 / config.tail_alpha)) - 1
    followers = np.clip(followers, 0, n - 1).astype(np.int64)
    edges = int(followers.sum())
    raw = rng.lognormal(math.log(config.following_median), config.following_sigma, n)
    raw = np.minimum(raw, config.max_following)
    # Scale following counts so both sides of the graph count the same edges.
    following = np.minimum(np.round(raw * edges / raw.sum()), config.max_following).astype(np.int64)
    return pd.DataFrame({"user_id": np.arange(n), "followers": followers, "following": following})


def _check_graph(graph: pd.DataFrame) -> None:
    if not isinstance(graph, pd.DataFrame) or not {"followers", "following"} <= set(graph.columns):
        raise ValueError("graph must be the output of follower_graph")


def strategy_costs(
    graph: pd.DataFrame,
    threshold: float,
    posts_per_user_per_day: float = 2.7,
    reads_per_user_per_day: float = 20.0,
    seed: int | np.random.Generator = 0,
) -> pd.Series:
    """Daily work of the hybrid with a celebrity threshold (``inf`` = pure push, 0 = pure pull).

    Accounts with ``followers >= threshold`` are celebrities: their posts are not
    fanned out, and every reader merges their recent posts at read time.

    Returns
    -------
    pandas.Series
        ``threshold``, ``celebrities``, ``celebrity_share`` (of users),
        ``fanout_writes_per_day`` (timeline inserts), ``fanout_removed_share``
        (of pure push's inserts), ``reads_per_day``, ``fetches_per_day``
        (timelines or post lists read, summed over reads), ``mean_read_fanin``,
        ``p99_read_fanin`` (lists merged by one read, 99th percentile over users),
        ``total_work_per_day`` (inserts + fetches), ``max_fanout_per_post`` (timeline
        inserts caused by one post of the most-followed account still fanned out).
    """
    _check_graph(graph)
    t = validate.non_negative_float("threshold", threshold, allow_inf=True)
    posts = validate.non_negative_float("posts_per_user_per_day", posts_per_user_per_day)
    reads = validate.non_negative_float("reads_per_user_per_day", reads_per_user_per_day)
    rng = validate.rng_from_seed(seed)
    followers = graph["followers"].to_numpy()
    following = graph["following"].to_numpy()
    celebrity = followers >= t
    all_edges = followers.sum()
    celebrity_edge_share = followers[celebrity].sum() / all_edges if all_edges else 0.0
    push_writes = posts * followers[~celebrity].sum()
    # A follow lands on an account in proportion to its followers, so the celebrities one
    # reader follows are Binomial(following, share of edges that point at celebrities).
    celebs_followed = rng.binomial(following, celebrity_edge_share)
    if np.isinf(t) or celebrity_edge_share == 0:
        fanin = np.ones_like(following)
    elif celebrity_edge_share >= 1:
        fanin = following.copy()  # pure pull: merge every followee's list
    else:
        fanin = 1 + celebs_followed  # the pushed timeline plus one list per celebrity
    n = len(graph)
    fetches = reads * fanin.sum()
    # The largest single burst: one post by the most-followed account still fanned out.
    pushed = followers[~celebrity]
    max_burst = int(pushed.max()) if pushed.size else 0
    return pd.Series(
        {
            "threshold": t,
            "celebrities": int(celebrity.sum()),
            "celebrity_share": float(celebrity.mean()),
            "fanout_writes_per_day": float(push_writes),
            "fanout_removed_share": float(celebrity_edge_share),
            "reads_per_day": float(reads * n),
            "fetches_per_day": float(fetches),
            "mean_read_fanin": float(fanin.mean()),
            "p99_read_fanin": float(np.percentile(fanin, 99)),
            "total_work_per_day": float(push_writes + fetches),
            "max_fanout_per_post": max_burst,
        }
    )


def sweep_threshold(
    graph: pd.DataFrame,
    thresholds: list[float] | np.ndarray,
    posts_per_user_per_day: float = 2.7,
    reads_per_user_per_day: float = 20.0,
    seed: int | np.random.Generator = 0,
) -> pd.DataFrame:
    """:func:`strategy_costs` for every threshold plus pure push (``inf``) and pure pull (0), one row each.

    The ``strategy`` column says ``push``, ``pull`` or ``hybrid``.
    """
    rng = validate.rng_from_seed(seed)
    values = sorted({float(x) for x in thresholds} | {0.0, math.inf})
    rows = []
    for t in values:
        row = strategy_costs(graph, t, posts_per_user_per_day, reads_per_user_per_day, rng)
        strategy = "push" if math.isinf(t) else ("pull" if t == 0 else "hybrid")
        rows.append({"strategy": strategy, **row.to_dict()})
    return pd.DataFrame(rows)


def timeline_cache_bytes(
    graph: pd.DataFrame,
    cap_entries: int = 800,
    entry_bytes: int = 20,
    replicas: int = 3,
    active_share: float = 0.3,
    days_retained: float = 7.0,
    posts_per_user_per_day: float = 2.7,
    seed: int | np.random.Generator = 0,
) -> pd.Series:
    """Memory of a capped, replicated home-timeline cache for the active users.

    A cached timeline holds the last ``min(cap, inbound posts in the retention
    window)`` entries; each entry is ``entry_bytes`` (a post id and an author id,
    plus a few flag bytes) before the cache's own per-entry overhead.

    Returns
    -------
    pandas.Series
        ``cached_timelines``, ``mean_entries``, ``share_at_cap``, ``bytes``,
        ``bytes_uncapped`` (the same users without the cap).
    """
    _check_graph(graph)
    cap = validate.positive_int("cap_entries", cap_entries)
    size = validate.positive_int("entry_bytes", entry_bytes)
    copies = validate.positive_int("replicas", replicas)
    share = validate.probability("active_share", active_share)
    days = validate.positive_float("days_retained", days_retained)
    posts = validate.non_negative_float("posts_per_user_per_day", posts_per_user_per_day)
    rng = validate.rng_from_seed(seed)
    active = rng.random(len(graph)) < share  # only timelines of recently active users stay cached
    inbound = graph["following"].to_numpy()[active] * posts * days
    entries = np.minimum(inbound, cap)
    return pd.Series(
        {
            "cached_timelines": int(active.sum()),
            "mean_entries": float(entries.mean()) if entries.size else 0.0,
            "share_at_cap": float(np.mean(inbound >= cap)) if entries.size else 0.0,
            "bytes": float(entries.sum() * size * copies),
            "bytes_uncapped": float(inbound.sum() * size * copies),
        }
    )


# ------------------------------------------------------------------- celebrity delay


def theory_celebrity_delay_s(followers: int, capacity_per_s: float, utilisation: float) -> dict[str, float]:
    """When the last follower gets a celebrity's post through a FIFO fan-out queue.

    The post's deliveries all join the queue at once, behind the backlog already
    there (mean M/D/c-ish wait, small at moderate load), and are served at the full
    capacity C of the workers: the last one leaves after about ``F / C``. Meanwhile
    ordinary posts arriving at rate ρC queue behind them and wait up to ``F / C``
    too; the queue drains at the spare rate (1 − ρ)C, so it is back to normal after
    about ``F / (C (1 − ρ))``.
    """
    f = validate.positive_int("followers", followers)
    c = validate.positive_float("capacity_per_s", capacity_per_s)
    rho = validate.float_in_range("utilisation", utilisation, 0.0, 1.0, high_inclusive=False)
    return {"last_delivery_s": f / c, "backlog_cleared_s": f / (c * (1 - rho))}


def simulate_celebrity_fanout(
    celebrity_followers: int = 31_000_000,
    background_writes_per_s: float = 345_000.0,
    workers: int = 64,
    worker_writes_per_s: float = 10_000.0,
    batch: int = 4_000,
    post_at_s: float = 60.0,
    horizon_s: float = 600.0,
    seed: int | np.random.Generator = 0,
) -> pd.DataFrame:
    """One celebrity post through a fan-out queue shared with everyone's ordinary posts.

    Work arrives as batches of ``batch`` timeline inserts (Twitter pipelined 4k
    destinations at a time). Ordinary posts' batches arrive as a Poisson stream
    carrying ``background_writes_per_s``; at ``post_at_s`` the celebrity's
    ``ceil(F / batch)`` batches arrive at once. ``workers`` FIFO workers each
    insert ``worker_writes_per_s``. The queue is :func:`syslab.queueing.simulate_pool`
    replaying this trace.

    Returns
    -------
    pandas.DataFrame
        One row per batch in completion order: ``arrival_s``, ``done_s``, ``delay_s``
        (done − arrival), ``celebrity`` (bool), ``size`` (inserts) and ``delivered``
        (cumulative celebrity followers reached).
    """
    f = validate.positive_int("celebrity_followers", celebrity_followers)
    lam_writes = validate.non_negative_float("background_writes_per_s", background_writes_per_s)
    w = validate.positive_int("workers", workers)
    rate = validate.positive_float("worker_writes_per_s", worker_writes_per_s)
    b = validate.positive_int("batch", batch)
    t0 = validate.non_negative_float("post_at_s", post_at_s)
    horizon = validate.positive_float("horizon_s", horizon_s)
    if t0 >= horizon:
        raise ValueError(f"post_at_s must be < horizon_s, got {t0} >= {horizon}")
    if lam_writes >= w * rate:
        raise ValueError("background_writes_per_s must be below the workers' capacity (workers x rate)")
    rng = validate.rng_from_seed(seed)
    batches_per_s = lam_writes / b
    n_background = rng.poisson(batches_per_s * horizon)
    background = np.sort(rng.uniform(0, horizon, n_background))
    n_celebrity = math.ceil(f / b)
    arrivals = np.concatenate([background, np.full(n_celebrity, t0)])
    celebrity = np.concatenate([np.zeros(n_background, bool), np.ones(n_celebrity, bool)])
    # Stable sort: celebrity batches join the queue after background batches that arrived at t0.
    order = np.argsort(arrivals, kind="stable")
    arrivals, celebrity = arrivals[order], celebrity[order]
    sizes = np.full(arrivals.size, float(b))
    last = np.flatnonzero(celebrity)[-1]
    sizes[last] = f - b * (n_celebrity - 1)
    served = queueing.simulate_pool(queueing.PoolConfig(size=w), arrivals_s=arrivals, services_s=sizes / rate)
    done = served["departure_s"].to_numpy()
    frame = pd.DataFrame(
        {
            "arrival_s": arrivals,
            "done_s": done,
            "delay_s": done - arrivals,
            "celebrity": celebrity,
            "size": sizes,
        }
    ).sort_values("done_s", kind="stable")
    frame["delivered"] = np.cumsum(np.where(frame["celebrity"], frame["size"], 0.0))
    return frame.reset_index(drop=True)


# -------------------------------------------------------------------------- real: SQLite


def run_sqlite_timelines(
    graph: pd.DataFrame,
    n_posts: int = 20_000,
    page: int = 50,
    n_reads: int = 200,
    celebrity_threshold: int | None = None,
    seed: int | np.random.Generator = 0,
) -> pd.DataFrame:
    """Build push and pull timelines in a real SQLite file and time writes and reads.

    The graph's follow edges are materialised (a follow lands on an account in
    proportion to its followers). Posts are written by authors drawn uniformly.

    - push: each post inserts one row per follower into ``timeline(user_id, post_id)``;
      a read is one index range scan of the reader's rows.
    - pull: each post inserts one row into ``posts(author_id, post_id)``; a read merges
      the reader's followees' posts (``IN (SELECT followee ...) ORDER BY post_id DESC LIMIT``).
    - hybrid (if ``celebrity_threshold``): push for non-celebrities, plus a pull of the
      celebrities the reader follows.

    Returns
    -------
    pandas.DataFrame
        One row per strategy: ``strategy``, ``rows_written``, ``write_s`` (all posts),
        ``write_us_per_post``, ``read_ms_median``, ``read_ms_p99``, ``db_bytes``,
        plus ``sqlite`` (the library version).
    """
    _check_graph(graph)
    n_posts = validate.positive_int("n_posts", n_posts)
    page = validate.positive_int("page", page)
    n_reads = validate.positive_int("n_reads", n_reads)
    rng = validate.rng_from_seed(seed)
    followers = graph["followers"].to_numpy()
    following = graph["following"].to_numpy()
    n = len(graph)
    if n > 200_000:
        raise ValueError("graph is too large for the SQLite experiment; use at most 200,000 users")
    # Materialise edges: each user's follows go to accounts drawn in proportion to followers.
    weights = followers / followers.sum()
    follower_col = np.repeat(np.arange(n), following)
    followee_col = rng.choice(n, size=follower_col.size, p=weights)
    keep = follower_col != followee_col
    edges = pd.DataFrame({"follower": follower_col[keep], "followee": followee_col[keep]}).drop_duplicates()
    authors = rng.integers(0, n, n_posts)
    real_followers = np.bincount(edges["followee"], minlength=n)
    celebrity = (
        real_followers >= celebrity_threshold if celebrity_threshold is not None else np.zeros(n, bool)
    )
    readers = rng.choice(
        n, size=n_reads, replace=True, p=np.maximum(following, 1) / np.maximum(following, 1).sum()
    )
    rows = []
    with temporary_database("timelines.db") as (conn, path):
        conn.executescript(
            """
            PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
            CREATE TABLE follows (follower INTEGER, followee INTEGER, PRIMARY KEY (follower, followee))
                WITHOUT ROWID;
            CREATE INDEX follows_by_followee ON follows (followee, follower);
            CREATE TABLE posts (author_id INTEGER, post_id INTEGER, PRIMARY KEY (author_id, post_id))
                WITHOUT ROWID;
            CREATE TABLE timeline (user_id INTEGER, post_id INTEGER, PRIMARY KEY (user_id, post_id))
                WITHOUT ROWID;
            """
        )
        conn.executemany("INSERT INTO follows VALUES (?, ?)", edges.itertuples(index=False, name=None))
        conn.execute("CREATE TABLE celebrities (id INTEGER PRIMARY KEY)")
        conn.executemany("INSERT INTO celebrities VALUES (?)", ((int(i),) for i in np.flatnonzero(celebrity)))
        conn.commit()
        strategies = ["push", "pull"] + (["hybrid"] if celebrity_threshold is not None else [])
        for strategy in strategies:
            conn.execute("DELETE FROM posts")
            conn.execute("DELETE FROM timeline")
            conn.commit()
            written = 0
            started = time.perf_counter()
            for post_id, author in enumerate(authors.tolist()):
                conn.execute("INSERT INTO posts VALUES (?, ?)", (author, post_id))
                written += 1
                if strategy == "push" or (strategy == "hybrid" and not celebrity[author]):
                    cur = conn.execute(
                        "INSERT INTO timeline SELECT follower, ? FROM follows WHERE followee = ?",
                        (post_id, author),
                    )
                    written += cur.rowcount
            conn.commit()
            write_s = time.perf_counter() - started
            read_ms = []
            for reader in readers.tolist():
                t = time.perf_counter()
                if strategy == "push":
                    conn.execute(
                        "SELECT post_id FROM timeline WHERE user_id = ? ORDER BY post_id DESC LIMIT ?",
                        (reader, page),
                    ).fetchall()
                elif strategy == "pull":
                    conn.execute(
                        "SELECT post_id FROM posts WHERE author_id IN"
                        " (SELECT followee FROM follows WHERE follower = ?) ORDER BY post_id DESC LIMIT ?",
                        (reader, page),
                    ).fetchall()
                else:
                    pushed = conn.execute(
                        "SELECT post_id FROM timeline WHERE user_id = ? ORDER BY post_id DESC LIMIT ?",
                        (reader, page),
                    ).fetchall()
                    pulled = conn.execute(
                        "SELECT post_id FROM posts WHERE author_id IN (SELECT f.followee FROM follows AS f"
                        " JOIN celebrities AS c ON c.id = f.followee WHERE f.follower = ?)"
                        " ORDER BY post_id DESC LIMIT ?",
                        (reader, page),
                    ).fetchall()
                    sorted(pushed + pulled, reverse=True)[:page]  # the merge a timeline service does
                read_ms.append((time.perf_counter() - t) * 1000)
            rows.append(
                {
                    "strategy": strategy,
                    "rows_written": written,
                    "write_s": write_s,
                    "write_us_per_post": write_s / n_posts * 1e6,
                    "read_ms_median": float(np.median(read_ms)),
                    "read_ms_p99": float(np.percentile(read_ms, 99)),
                    "db_bytes": path.stat().st_size,
                    "sqlite": sqlite3.sqlite_version,
                }
            )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------- plots


def plot_threshold_sweep(sweep: pd.DataFrame, axes=None):
    """Left: daily work against the celebrity threshold; right: p99 read fan-in and the largest post burst.

    Pure push and pure pull totals are horizontal reference lines. Returns the two axes.
    """
    if axes is None:
        import matplotlib.pyplot as plt

        _, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    left, right = axes
    hybrid = sweep[sweep["strategy"] == "hybrid"]
    left.plot(hybrid["threshold"], hybrid["fanout_writes_per_day"], "o-", color="C0", label="fan-out inserts")
    left.plot(hybrid["threshold"], hybrid["fetches_per_day"], "s-", color="C1", label="read fetches")
    left.plot(hybrid["threshold"], hybrid["total_work_per_day"], "^-", color="C2", label="total")
    for strategy, style in (("push", ":"), ("pull", "--")):
        total = sweep.loc[sweep["strategy"] == strategy, "total_work_per_day"].iloc[0]
        left.axhline(total, color="grey", ls=style, label=f"pure {strategy}, total")
    left.set_xscale("log")
    left.set_yscale("log")
    label(left, "celebrity threshold (followers)", "operations per day", legend=True)
    right.plot(
        hybrid["threshold"], hybrid["p99_read_fanin"], "o-", color="C3", label="p99 lists merged per read"
    )
    right.plot(
        hybrid["threshold"], hybrid["max_fanout_per_post"], "s-", color="C4", label="largest post's fan-out"
    )
    right.set_xscale("log")
    right.set_yscale("log")
    label(right, "celebrity threshold (followers)", "lists per read / inserts per post", legend=True)
    return axes


def plot_celebrity_delay(frame: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Celebrity followers reached over time (left axis) and ordinary posts' fan-out delay (right axis)."""
    ax = axes_or_new(ax)
    celeb = frame[frame["celebrity"]]
    t0 = float(celeb["arrival_s"].iloc[0])
    total = float(celeb["size"].sum())
    ax.plot(
        celeb["done_s"] - t0,
        celeb["delivered"] / total * 100,
        color="C0",
        label="celebrity's followers reached",
    )
    label(ax, "seconds after the celebrity posts", "celebrity's followers reached (%)")
    twin = ax.twinx()
    other = frame[~frame["celebrity"]]
    twin.plot(other["arrival_s"] - t0, other["delay_s"], ".", ms=2, color="C1", label="ordinary post batches")
    twin.set_ylabel("fan-out delay of ordinary posts (s)")
    twin.grid(False)
    lines = ax.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="center right")
    return ax
