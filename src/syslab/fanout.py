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
- **real** -- :func:`run_redis_timelines`: push, pull and hybrid timelines in a real
  Redis (pipelined ``LPUSH`` + ``LTRIM`` per follower on write, a merge of the followees'
  lists on read), with the commands counted against the model's operation counts;
  :func:`run_redis_celebrity_delay`: a FIFO fan-out worker on Redis, one celebrity post
  ahead of ordinary ones; :func:`run_sqlite_timelines`: the SQLite stand-in.
"""

from __future__ import annotations

import heapq
import itertools
import math
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from syslab import experiment, plot, queueing, validate
from syslab.plot import axes_or_new, label
from syslab.sqlite_tools import temporary_database

__all__ = [
    "GraphConfig",
    "follower_graph",
    "plot_celebrity_delay",
    "plot_threshold_sweep",
    "MAX_GRAPH_USERS_REAL",
    "MAX_POSTS",
    "run_redis_celebrity_delay",
    "run_redis_timelines",
    "run_sqlite_timelines",
    "simulate_celebrity_fanout",
    "strategy_costs",
    "sweep_threshold",
    "theory_celebrity_delay_s",
    "timeline_cache_bytes",
]


# Bounds: a chapter's 30 s on a 2-core machine.
MAX_POSTS = 200_000  # posts written in a real experiment (one round trip each)
MAX_READS = 100_000  # timeline reads in a real experiment
MAX_PAGE = 1_000  # entries per timeline page
MAX_GRAPH_USERS_REAL = 200_000  # users whose follow edges a real experiment materialises
MAX_THRESHOLDS = 200  # thresholds in one sweep
MAX_CELEBRITY_FOLLOWERS = 1_000_000_000  # followers of one account (model)
MAX_BATCHES = 2_000_000  # batches in one celebrity-delay simulation
MAX_WORKERS = 100_000
MAX_HORIZON_S = 86_400.0
MAX_REAL_CELEBRITY_FOLLOWERS = 2_000_000  # inserts one real celebrity post makes
MAX_TIMEOUT_S = 300.0


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


def follower_graph(
    config: GraphConfig = GraphConfig(), seed: int | np.random.Generator | None = 0
) -> pd.DataFrame:
    """Follower and following counts per user.

    Parameters
    ----------
    config : GraphConfig
        The graph's shape.
    seed : int, numpy Generator or None
        Random stream.

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
    validate.frame_columns("graph", graph, ("followers", "following"))
    if len(graph) < 2:
        raise ValueError(f"graph must have at least 2 users, got {len(graph)}")
    for column in ("followers", "following"):
        values = graph[column].to_numpy()
        if values.dtype.kind not in "iu" or (values.size and int(values.min()) < 0):
            raise ValueError(f"graph[{column!r}] must hold non-negative integers")


def strategy_costs(
    graph: pd.DataFrame,
    threshold: float,
    posts_per_user_per_day: float = 2.7,
    reads_per_user_per_day: float = 20.0,
    seed: int | np.random.Generator | None = 0,
) -> pd.Series:
    """Daily work of the hybrid with a celebrity threshold (``inf`` = pure push, 0 = pure pull).

    Accounts with ``followers >= threshold`` are celebrities: their posts are not
    fanned out, and every reader merges their recent posts at read time.

    The cost model counts operations: one timeline insert per follower of a pushed post,
    and one list fetched per list a read merges -- the reader's own timeline plus **one
    fetch per celebrity followed** (each celebrity's recent posts are a separate list).
    That assumption is what makes the hybrid cost more in total work than pure push: a
    service that gets all celebrities' recent posts from one index query (as Twitter's
    did) pays one extra fetch per read instead, and then the hybrid saves work.

    Parameters
    ----------
    graph : pandas.DataFrame
        :func:`follower_graph`'s output (``followers``, ``following``).
    threshold : float
        Followers from which an account is a celebrity, >= 0 (``inf`` for pure push).
    posts_per_user_per_day : float
        Posts per user per day (the same for everyone: a model simplification).
    reads_per_user_per_day : float
        Timeline reads per user per day.
    seed : int, numpy Generator or None
        Random stream (which celebrities each reader follows).

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
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """:func:`strategy_costs` for every threshold plus pure push (``inf``) and pure pull (0), one row each.

    Parameters
    ----------
    graph : pandas.DataFrame
        :func:`follower_graph`'s output.
    thresholds : sequence of float
        Celebrity thresholds (followers), each >= 0; at most ``MAX_THRESHOLDS``.
    posts_per_user_per_day, reads_per_user_per_day : float
        As for :func:`strategy_costs`.
    seed : int, numpy Generator or None
        Random stream.

    Returns
    -------
    pandas.DataFrame
        One row per threshold: ``strategy`` (``push``, ``pull`` or ``hybrid``) and the
        columns of :func:`strategy_costs`.
    """
    _check_graph(graph)
    if isinstance(thresholds, (str, bytes)) or not isinstance(thresholds, (Sequence, np.ndarray)):
        raise TypeError(f"thresholds must be a sequence of follower counts, got {type(thresholds).__name__}")
    if len(thresholds) > MAX_THRESHOLDS:
        raise ValueError(f"thresholds must hold at most {MAX_THRESHOLDS} values, got {len(thresholds)}")
    checked = [
        validate.non_negative_float(f"thresholds[{i}]", x, allow_inf=True) for i, x in enumerate(thresholds)
    ]
    rng = validate.rng_from_seed(seed)
    values = sorted(set(checked) | {0.0, math.inf})
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
    seed: int | np.random.Generator | None = 0,
) -> pd.Series:
    """Memory of a capped, replicated home-timeline cache for the active users.

    A cached timeline holds the last ``min(cap, inbound posts in the retention
    window)`` entries; each entry is ``entry_bytes`` (a post id and an author id,
    plus a few flag bytes) before the cache's own per-entry overhead.

    Parameters
    ----------
    graph : pandas.DataFrame
        :func:`follower_graph`'s output.
    cap_entries : int
        Entries kept per timeline, 1 to 10**12 (a cap is a number here, not an allocation).
    entry_bytes : int
        Bytes per entry, 1 to 10**4.
    replicas : int
        Copies of the cache, 1 to 100.
    active_share : float
        Share of users whose timelines are cached, [0, 1].
    days_retained : float
        Retention window, days, (0, 3650].
    posts_per_user_per_day : float
        Posts per user per day.
    seed : int, numpy Generator or None
        Which users are active.

    Returns
    -------
    pandas.Series
        ``cached_timelines``, ``mean_entries``, ``share_at_cap``, ``bytes``,
        ``bytes_uncapped`` (the same users without the cap).
    """
    _check_graph(graph)
    cap = validate.bounded_int("cap_entries", cap_entries, 10**12)
    size = validate.bounded_int("entry_bytes", entry_bytes, 10**4)
    copies = validate.bounded_int("replicas", replicas, 100)
    share = validate.probability("active_share", active_share)
    days = validate.float_in_range("days_retained", days_retained, 0.0, 3650.0, low_inclusive=False)
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

    Parameters
    ----------
    followers : int
        F, followers of the celebrity, 1 to ``MAX_CELEBRITY_FOLLOWERS``.
    capacity_per_s : float
        C, timeline inserts per second the fan-out workers do together, > 0.
    utilisation : float
        ρ, the share of C ordinary posts use, [0, 1).

    Returns
    -------
    dict of str to float
        ``last_delivery_s`` (F / C) and ``backlog_cleared_s`` (F / (C (1 − ρ))), seconds.
    """
    f = validate.bounded_int("followers", followers, MAX_CELEBRITY_FOLLOWERS)
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
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """One celebrity post through a fan-out queue shared with everyone's ordinary posts.

    Work arrives as batches of ``batch`` timeline inserts (Twitter pipelined 4k
    destinations at a time). Ordinary posts' batches arrive as a Poisson stream
    carrying ``background_writes_per_s``; at ``post_at_s`` the celebrity's
    ``ceil(F / batch)`` batches arrive at once. ``workers`` FIFO workers each
    insert ``worker_writes_per_s``. The queue is :func:`syslab.queueing.simulate_pool`
    replaying this trace.

    Parameters
    ----------
    celebrity_followers : int
        F, 1 to ``MAX_CELEBRITY_FOLLOWERS``.
    background_writes_per_s : float
        Inserts per second from ordinary posts, below ``workers x worker_writes_per_s``.
    workers : int
        Fan-out workers, 1 to ``MAX_WORKERS``.
    worker_writes_per_s : float
        Inserts per second one worker does, > 0.
    batch : int
        Inserts per batch, 1 to 10**7.
    post_at_s : float
        When the celebrity posts, seconds, < ``horizon_s``.
    horizon_s : float
        Simulated time, seconds, at most ``MAX_HORIZON_S``.
    seed : int, numpy Generator or None
        Random stream.

    Returns
    -------
    pandas.DataFrame
        One row per batch in completion order: ``arrival_s``, ``done_s``, ``delay_s``
        (done − arrival), ``celebrity`` (bool), ``size`` (inserts) and ``delivered``
        (cumulative celebrity followers reached).
    """
    f = validate.bounded_int("celebrity_followers", celebrity_followers, MAX_CELEBRITY_FOLLOWERS)
    lam_writes = validate.non_negative_float("background_writes_per_s", background_writes_per_s)
    w = validate.bounded_int("workers", workers, MAX_WORKERS)
    rate = validate.positive_float("worker_writes_per_s", worker_writes_per_s)
    b = validate.bounded_int("batch", batch, 10**7)
    t0 = validate.non_negative_float("post_at_s", post_at_s)
    horizon = validate.float_in_range("horizon_s", horizon_s, 0.0, MAX_HORIZON_S, low_inclusive=False)
    if t0 >= horizon:
        raise ValueError(f"post_at_s must be < horizon_s, got {t0} >= {horizon}")
    if lam_writes >= w * rate:
        raise ValueError(
            f"background_writes_per_s ({lam_writes:g}) must be below the capacity workers x "
            f"worker_writes_per_s ({w} x {rate:g})"
        )
    if math.ceil(f / b) + lam_writes / b * horizon > MAX_BATCHES:
        raise ValueError(
            f"celebrity_followers / batch + background_writes_per_s / batch x horizon_s must be at most "
            f"{MAX_BATCHES:,} batches; raise batch or shorten horizon_s"
        )
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


# ----------------------------------------------------------------------- real experiments


def _workload(
    graph: pd.DataFrame,
    n_posts: int,
    page: int,
    n_reads: int,
    celebrity_threshold: int | None,
    seed: int | np.random.Generator | None,
) -> dict:
    """Validated inputs of a real timeline experiment and its materialised follow edges."""
    _check_graph(graph)
    n = len(graph)
    if n > MAX_GRAPH_USERS_REAL:
        raise ValueError(
            f"graph must have at most {MAX_GRAPH_USERS_REAL:,} users for a real experiment, got {n:,}"
        )
    n_posts = validate.bounded_int("n_posts", n_posts, MAX_POSTS)
    page = validate.bounded_int("page", page, MAX_PAGE)
    n_reads = validate.bounded_int("n_reads", n_reads, MAX_READS)
    if celebrity_threshold is not None:
        celebrity_threshold = validate.non_negative_int("celebrity_threshold", celebrity_threshold)
    rng = validate.rng_from_seed(seed)
    followers = graph["followers"].to_numpy()
    following = graph["following"].to_numpy()
    if followers.sum() == 0 or following.sum() == 0:
        raise ValueError("graph must have at least one follow edge")
    if following.sum() > 20_000_000:
        raise ValueError(
            f"graph must have at most 20,000,000 follow edges for a real experiment, got {following.sum():,}"
        )
    # Materialise edges: each user's follows go to accounts drawn in proportion to followers.
    follower_col = np.repeat(np.arange(n), following)
    followee_col = rng.choice(n, size=follower_col.size, p=followers / followers.sum())
    keep = follower_col != followee_col
    edges = pd.DataFrame({"follower": follower_col[keep], "followee": followee_col[keep]}).drop_duplicates()
    real_followers = np.bincount(edges["followee"], minlength=n)
    celebrity = (
        real_followers >= celebrity_threshold if celebrity_threshold is not None else np.zeros(n, bool)
    )
    weights = np.maximum(following, 1) / np.maximum(following, 1).sum()
    return {
        "n": n,
        "n_posts": n_posts,
        "page": page,
        "n_reads": n_reads,
        "edges": edges,
        "authors": rng.integers(0, n, n_posts),
        "readers": rng.choice(n, size=n_reads, replace=True, p=weights),
        "celebrity": celebrity,
        "real_followers": real_followers,
        "strategies": ["push", "pull"] + (["hybrid"] if celebrity_threshold is not None else []),
    }


def run_redis_timelines(
    engine: object,
    graph: pd.DataFrame,
    n_posts: int = 5_000,
    page: int = 50,
    n_reads: int = 300,
    celebrity_threshold: int | None = None,
    *,
    cap_entries: int = 800,
    seed: int | np.random.Generator | None = 0,
    timeout_s: float = 60.0,
) -> experiment.Run:
    """Push, pull and hybrid home timelines in a real Redis, with writes and reads timed and counted.

    The graph's follow edges are materialised (a follow lands on an account in proportion to
    its followers); posts are written by authors drawn uniformly; readers are drawn in
    proportion to how many accounts they follow.

    - **write**: every post is ``LPUSH posts:<author>`` + ``LTRIM`` (its author's list); with
      push (and hybrid, for non-celebrities) one pipeline of ``LPUSH timeline:<f>`` +
      ``LTRIM timeline:<f> 0 cap-1`` per follower f -- one round trip per post.
    - **read**: push is ``LRANGE timeline:<reader> 0 page-1``; pull is one pipeline of
      ``LRANGE posts:<followee> 0 page-1`` per followee, merged newest first; hybrid reads
      the timeline plus the lists of the celebrities the reader follows.

    Parameters
    ----------
    engine : syslab.engines.Engine
        A Redis server (a fresh logical database is used and emptied).
    graph : pandas.DataFrame
        :func:`follower_graph`'s output, at most ``MAX_GRAPH_USERS_REAL`` users.
    n_posts : int
        Posts written per strategy, 1 to ``MAX_POSTS``.
    page : int
        Entries per timeline read, 1 to ``MAX_PAGE``.
    n_reads : int
        Timeline reads per strategy, 1 to ``MAX_READS``.
    celebrity_threshold : int, optional
        Followers (in the materialised graph) from which an account is not fanned out;
        None runs push and pull only.
    cap_entries : int
        Entries kept per list (``LTRIM``), ``page`` to 100,000.
    seed : int, numpy Generator or None
        Random stream (edges, authors, readers).
    timeout_s : float
        Hard limit, set-up included, seconds, in (0, ``MAX_TIMEOUT_S``].

    Returns
    -------
    syslab.experiment.Run
        ``frame``: one row per strategy: ``strategy``, ``posts``, ``list_inserts`` (LPUSHes:
        the model's timeline inserts plus one per post), ``write_s``, ``write_us_per_insert``,
        ``reads``, ``lists_fetched`` (LRANGEs: the model's fetches), ``mean_read_fanin``,
        ``read_ms_median``, ``read_ms_p99``, ``read_us_per_list``, ``memory_bytes``
        (``used_memory`` growth); ``summary``: ``users``, ``edges``, ``celebrities``.
    """
    deadline = time.monotonic() + validate.float_in_range(
        "timeout_s", timeout_s, 0.0, MAX_TIMEOUT_S, low_inclusive=False
    )
    if getattr(engine, "name", None) != "redis" or not callable(getattr(engine, "database", None)):
        raise TypeError(f"engine must be a syslab.engines.Engine for redis, got {type(engine).__name__}")
    work = _workload(graph, n_posts, page, n_reads, celebrity_threshold, seed)
    cap = validate.int_in_range("cap_entries", cap_entries, work["page"], 100_000)
    edges, celebrity, page = work["edges"], work["celebrity"], work["page"]
    followers_of = dict(tuple(edges.groupby("followee")["follower"]))
    followees_of = {k: v.to_numpy() for k, v in edges.groupby("follower")["followee"]}
    empty = np.zeros(0, dtype=np.int64)
    rows = []
    with engine.database() as db:
        client = db.connect()
        try:
            for strategy in work["strategies"]:
                client.flushdb()
                base = int(client.info("memory")["used_memory"])
                inserts = 0
                started = time.perf_counter()
                for post_id, author in enumerate(work["authors"].tolist()):
                    if post_id % 256 == 0 and time.monotonic() > deadline:
                        raise TimeoutError(
                            f"redis timelines: {strategy} writes did not finish within {timeout_s:g} s"
                        )
                    pipe = client.pipeline(transaction=False)
                    pipe.lpush(f"posts:{author}", post_id)
                    pipe.ltrim(f"posts:{author}", 0, cap - 1)
                    inserts += 1
                    if strategy == "push" or (strategy == "hybrid" and not celebrity[author]):
                        for follower in followers_of.get(author, empty).tolist():
                            pipe.lpush(f"timeline:{follower}", post_id)
                            pipe.ltrim(f"timeline:{follower}", 0, cap - 1)
                            inserts += 1
                    pipe.execute()
                write_s = time.perf_counter() - started
                memory = int(client.info("memory")["used_memory"]) - base
                read_ms, fetched = [], 0
                for reader in work["readers"].tolist():
                    if time.monotonic() > deadline:
                        raise TimeoutError(
                            f"redis timelines: {strategy} reads did not finish within {timeout_s:g} s"
                        )
                    followees = followees_of.get(reader, empty)
                    t = time.perf_counter()
                    pipe = client.pipeline(transaction=False)
                    if strategy != "pull":
                        pipe.lrange(f"timeline:{reader}", 0, page - 1)
                    pulled = followees if strategy == "pull" else followees[celebrity[followees]]
                    if strategy != "push":
                        for followee in pulled.tolist():
                            pipe.lrange(f"posts:{followee}", 0, page - 1)
                    lists = pipe.execute()
                    newest = heapq.merge(*([int(x) for x in part] for part in lists), reverse=True)
                    _ = list(itertools.islice(newest, page))  # the page a timeline service returns
                    read_ms.append((time.perf_counter() - t) * 1000)
                    fetched += len(lists)
                reads = len(read_ms)
                rows.append(
                    {
                        "strategy": strategy,
                        "posts": work["n_posts"],
                        "list_inserts": inserts,
                        "write_s": write_s,
                        "write_us_per_insert": write_s / inserts * 1e6,
                        "reads": reads,
                        "lists_fetched": fetched,
                        "mean_read_fanin": fetched / reads,
                        "read_ms_median": float(np.median(read_ms)),
                        "read_ms_p99": float(np.percentile(read_ms, 99)),
                        "read_us_per_list": float(np.sum(read_ms)) * 1000 / max(fetched, 1),
                        "memory_bytes": memory,
                    }
                )
        finally:
            client.close()
    summary = {"users": work["n"], "edges": len(edges), "celebrities": int(celebrity.sum())}
    return experiment.Run.create(pd.DataFrame(rows), summary, engine=engine)


def run_redis_celebrity_delay(
    engine: object,
    celebrity_followers: int = 200_000,
    *,
    n_ordinary: int = 200,
    ordinary_followers: int = 100,
    batch: int = 1_000,
    timeout_s: float = 60.0,
) -> experiment.Run:
    """One fan-out worker on Redis: a celebrity's post queued ahead of ordinary posts (FIFO).

    Jobs wait in a Redis list (``RPUSH fanout:jobs``); one worker pops them in order
    (``LPOP``) and fans each out with pipelined ``LPUSH timeline:<f>`` batches of ``batch``.
    The ordinary posts are measured first on their own (the worker's insert rate C), then
    queued behind the celebrity's post, which was enqueued at t = 0: each ordinary post
    waits until all F inserts are done, about F / C.

    Parameters
    ----------
    engine : syslab.engines.Engine
        A Redis server (a fresh logical database is used and emptied).
    celebrity_followers : int
        F, 1 to ``MAX_REAL_CELEBRITY_FOLLOWERS``.
    n_ordinary : int
        Ordinary posts queued behind it, 1 to 10,000.
    ordinary_followers : int
        Followers of each ordinary author, 1 to 10,000.
    batch : int
        Inserts per pipeline, 1 to 100,000.
    timeout_s : float
        Hard limit, seconds, in (0, ``MAX_TIMEOUT_S``].

    Returns
    -------
    syslab.experiment.Run
        ``frame``: one row per job in completion order (``job``, ``celebrity``, ``inserts``,
        ``done_s`` since the celebrity's post was enqueued, ``delivered`` -- cumulative
        celebrity followers reached); ``summary``: ``celebrity_followers``,
        ``inserts_per_s`` (C, measured on ordinary posts alone), ``predicted_delay_s``
        (F / C), ``first_ordinary_done_s``, ``celebrity_done_s``.
    """
    deadline = time.monotonic() + validate.float_in_range(
        "timeout_s", timeout_s, 0.0, MAX_TIMEOUT_S, low_inclusive=False
    )
    if getattr(engine, "name", None) != "redis" or not callable(getattr(engine, "database", None)):
        raise TypeError(f"engine must be a syslab.engines.Engine for redis, got {type(engine).__name__}")
    f = validate.bounded_int("celebrity_followers", celebrity_followers, MAX_REAL_CELEBRITY_FOLLOWERS)
    k = validate.bounded_int("n_ordinary", n_ordinary, 10_000)
    g = validate.bounded_int("ordinary_followers", ordinary_followers, 10_000)
    b = validate.bounded_int("batch", batch, 100_000)

    def fan_out(client, post_id: int, n_followers: int, offset: int) -> None:
        for start in range(0, n_followers, b):
            if time.monotonic() > deadline:
                raise TimeoutError(f"celebrity delay: fan-out did not finish within {timeout_s:g} s")
            pipe = client.pipeline(transaction=False)
            for follower in range(offset + start, offset + min(start + b, n_followers)):
                pipe.lpush(f"timeline:{follower}", post_id)
            pipe.execute()

    rows = []
    with engine.database() as db:
        client = db.connect()
        try:
            started = time.perf_counter()  # C: the worker's insert rate on ordinary posts alone
            for job in range(k):
                fan_out(client, job, g, f + job * g)
            rate = k * g / (time.perf_counter() - started)
            client.flushdb()
            client.rpush("fanout:jobs", f"c:{f}", *[f"o:{job}" for job in range(k)])
            t0 = time.perf_counter()
            while (job := client.lpop("fanout:jobs")) is not None:
                kind, number = job.decode().split(":")
                is_celebrity = kind == "c"
                if is_celebrity:
                    fan_out(client, 10**9, f, 0)
                else:
                    fan_out(client, int(number), g, f + int(number) * g)
                rows.append(
                    {
                        "job": job.decode(),
                        "celebrity": is_celebrity,
                        "inserts": f if is_celebrity else g,
                        "done_s": time.perf_counter() - t0,
                    }
                )
        finally:
            client.close()
    frame = pd.DataFrame(rows)
    frame["delivered"] = np.cumsum(np.where(frame["celebrity"], frame["inserts"], 0))
    ordinary = frame[~frame["celebrity"]]
    summary = {
        "celebrity_followers": f,
        "inserts_per_s": rate,
        "predicted_delay_s": f / rate,
        "first_ordinary_done_s": float(ordinary["done_s"].iloc[0]),
        "celebrity_done_s": float(frame.loc[frame["celebrity"], "done_s"].iloc[0]),
    }
    return experiment.Run.create(frame, summary, engine=engine)


def run_sqlite_timelines(
    graph: pd.DataFrame,
    n_posts: int = 20_000,
    page: int = 50,
    n_reads: int = 200,
    celebrity_threshold: int | None = None,
    seed: int | np.random.Generator | None = 0,
) -> experiment.Run:
    """Build push and pull timelines in a real SQLite file and time writes and reads (the stand-in).

    The graph's follow edges are materialised (a follow lands on an account in
    proportion to its followers). Posts are written by authors drawn uniformly.

    - push: each post inserts one row per follower into ``timeline(user_id, post_id)``;
      a read is one index range scan of the reader's rows.
    - pull: each post inserts one row into ``posts(author_id, post_id)``; a read merges
      the reader's followees' posts (``IN (SELECT followee ...) ORDER BY post_id DESC LIMIT``).
    - hybrid (if ``celebrity_threshold``): push for non-celebrities, plus a pull of the
      celebrities the reader follows.

    Parameters
    ----------
    graph : pandas.DataFrame
        :func:`follower_graph`'s output, at most ``MAX_GRAPH_USERS_REAL`` users.
    n_posts : int
        Posts per strategy, 1 to ``MAX_POSTS``.
    page : int
        Entries per read, 1 to ``MAX_PAGE``.
    n_reads : int
        Reads per strategy, 1 to ``MAX_READS``.
    celebrity_threshold : int, optional
        Followers from which an account is not fanned out (>= 0); None: push and pull only.
    seed : int, numpy Generator or None
        Random stream.

    Returns
    -------
    syslab.experiment.Run
        ``frame``: one row per strategy: ``strategy``, ``rows_written``, ``write_s`` (all
        posts), ``write_us_per_post``, ``read_ms_median``, ``read_ms_p99``, ``db_bytes``;
        ``summary``: ``users``, ``edges``, ``celebrities``.
    """
    work = _workload(graph, n_posts, page, n_reads, celebrity_threshold, seed)
    edges, celebrity, authors, readers = work["edges"], work["celebrity"], work["authors"], work["readers"]
    n_posts = work["n_posts"]
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
        for strategy in work["strategies"]:
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
                }
            )
    summary = {"users": work["n"], "edges": len(edges), "celebrities": int(celebrity.sum())}
    return experiment.Run.create(pd.DataFrame(rows), summary, database="SQLite " + sqlite3.sqlite_version)


# ---------------------------------------------------------------------------------- plots


def plot_threshold_sweep(sweep: pd.DataFrame, axes: np.ndarray | None = None) -> np.ndarray:
    """Daily work against the celebrity threshold, and p99 read fan-in with the largest post burst.

    Pure push and pure pull totals are horizontal reference lines.

    Parameters
    ----------
    sweep : pandas.DataFrame
        :func:`sweep_threshold`'s output.
    axes : array of two matplotlib Axes, optional
        Where to draw; two stacked panels (:func:`syslab.plot.panels`) if None.

    Returns
    -------
    numpy.ndarray
        The two Axes.
    """
    validate.frame_columns(
        "sweep",
        sweep,
        (
            "strategy",
            "threshold",
            "fanout_writes_per_day",
            "fetches_per_day",
            "total_work_per_day",
            "p99_read_fanin",
            "max_fanout_per_post",
        ),
    )
    if not {"push", "pull", "hybrid"} <= set(sweep["strategy"]):
        raise ValueError("sweep must hold push, pull and hybrid rows (the output of sweep_threshold)")
    axes = plot.panels(1, 2, axes, figsize=None if axes is not None else (7.0, 7.0))
    left, right = np.asarray(axes).ravel()[:2]
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
    """Celebrity followers reached over time (left axis) and ordinary posts' fan-out delay (right axis).

    Parameters
    ----------
    frame : pandas.DataFrame
        :func:`simulate_celebrity_fanout`'s output.
    ax : matplotlib Axes, optional
        Where to draw; a new figure if None.

    Returns
    -------
    matplotlib.axes.Axes
    """
    validate.frame_columns(
        "frame", frame, ("arrival_s", "done_s", "delay_s", "celebrity", "size", "delivered")
    )
    if not frame["celebrity"].any() or frame["celebrity"].all():
        raise ValueError(
            "frame must hold celebrity and ordinary batches (simulate_celebrity_fanout's output)"
        )
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
