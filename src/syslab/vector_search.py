"""Nearest-neighbour search over vectors: exact brute force, and two approximate indexes.

- :func:`brute_force_knn` -- exact k nearest neighbours by batched matrix products,
  O(N d) work per query.
- :class:`IVFIndex` -- an inverted-file index: a k-means coarse quantiser splits the
  vectors into ``nlist`` cells; a query scans only the ``nprobe`` nearest cells
  (the design of FAISS's ``IndexIVFFlat``).
- :class:`LSHIndex` -- random-hyperplane locality-sensitive hashing (Charikar 2002):
  ``n_tables`` tables of ``n_bits``-bit signatures; candidates from matching buckets
  are re-ranked exactly.

Everything is plain numpy on float32, Euclidean distance. Data generators make
clustered Gaussian data whose cluster spread is a knob, because how well an
approximate index works depends on the data as much as on the index.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from syslab import validate
from syslab.plot import axes_or_new, label

__all__ = [
    "IVFIndex",
    "LSHIndex",
    "brute_force_knn",
    "distance_contrast",
    "evaluate_index",
    "kmeans",
    "make_clustered_vectors",
    "plot_brute_force_scaling",
    "plot_distance_contrast",
    "plot_recall_vs_qps",
    "recall_at_k",
]


def _as_matrix(name: str, values: object) -> np.ndarray:
    array = np.asarray(values, dtype=np.float32)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array (rows are vectors), got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must hold finite numbers")
    return array


def make_clustered_vectors(
    n: int,
    dim: int,
    *,
    n_clusters: int = 1000,
    center_scale: float = 1.2,
    n_queries: int = 200,
    seed: int | np.random.Generator | None = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Vectors drawn around random cluster centres, and queries drawn the same way.

    Each vector is ``centre + N(0, I)`` with centres ~ ``N(0, center_scale^2 I)``.
    Large ``center_scale`` gives well-separated clusters (easy for an index);
    small gives one diffuse blob (hard).

    Returns
    -------
    (base, queries) : tuple of numpy.ndarray
        float32 arrays of shape (n, dim) and (n_queries, dim).
    """
    n = validate.positive_int("n", n)
    dim = validate.positive_int("dim", dim)
    n_clusters = validate.positive_int("n_clusters", n_clusters)
    center_scale = validate.non_negative_float("center_scale", center_scale)
    n_queries = validate.positive_int("n_queries", n_queries)
    rng = validate.rng_from_seed(seed)
    centres = rng.normal(0.0, center_scale, size=(n_clusters, dim)).astype(np.float32)
    members = rng.integers(0, n_clusters, size=n + n_queries)
    points = centres[members]
    # Add the noise in chunks, in place: a single draw would hold a second full-size array.
    for start in range(0, points.shape[0], 16_384):
        block = points[start : start + 16_384]
        block += rng.standard_normal(block.shape, dtype=np.float32)
    return points[:n], points[n:]


def _squared_distances(queries: np.ndarray, base: np.ndarray, base_norms: np.ndarray) -> np.ndarray:
    # ||q - x||^2 = ||q||^2 - 2 q.x + ||x||^2: one matrix product instead of a loop over vectors.
    query_norms = np.einsum("ij,ij->i", queries, queries)[:, None]
    return np.maximum(query_norms - 2.0 * (queries @ base.T) + base_norms[None, :], 0.0)


def _top_k(distances: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and distances of the k smallest entries of each row, sorted."""
    k = min(k, distances.shape[1])
    part = np.argpartition(distances, k - 1, axis=1)[:, :k]
    part_d = np.take_along_axis(distances, part, axis=1)
    order = np.argsort(part_d, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(part_d, order, axis=1)


def brute_force_knn(
    base: np.ndarray, queries: np.ndarray, k: int = 10, *, batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours (Euclidean) of every query.

    Queries are processed ``batch_size`` at a time so memory stays at
    ``batch_size x N`` floats.

    Returns
    -------
    (indices, squared_distances) : tuple of numpy.ndarray
        Shapes (n_queries, k); row i lists query i's neighbours, nearest first.
    """
    base = _as_matrix("base", base)
    queries = _as_matrix("queries", queries)
    if queries.shape[1] != base.shape[1]:
        raise ValueError(f"queries have dimension {queries.shape[1]}, base has {base.shape[1]}")
    k = validate.int_in_range("k", k, 1, base.shape[0])
    batch_size = validate.positive_int("batch_size", batch_size)
    norms = np.einsum("ij,ij->i", base, base)
    indices = np.empty((queries.shape[0], k), dtype=np.int64)
    distances = np.empty((queries.shape[0], k), dtype=np.float32)
    for start in range(0, queries.shape[0], batch_size):
        block = _squared_distances(queries[start : start + batch_size], base, norms)
        indices[start : start + batch_size], distances[start : start + batch_size] = _top_k(block, k)
    return indices, distances


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of each query's true k neighbours that ``found`` contains (recall@k)."""
    found = np.asarray(found)
    truth = np.asarray(truth)
    if found.ndim != 2 or truth.ndim != 2 or found.shape[0] != truth.shape[0]:
        raise ValueError(
            f"found and truth must be 2-D with one row per query, got {found.shape} and {truth.shape}"
        )
    hits = [np.intersect1d(f[f >= 0], t).size for f, t in zip(found, truth, strict=True)]
    return float(np.sum(hits) / truth.size)


def distance_contrast(dims: list[int], *, n: int = 10_000, seed: int = 0) -> pd.DataFrame:
    """Relative contrast (d_max - d_min) / d_min from a random query to uniform points, by dimension.

    As the dimension grows, distances concentrate: the nearest and farthest
    points end up almost equally far (Beyer et al. 1999), which is why a
    "nearest" neighbour means less and why indexes stop pruning.

    Returns
    -------
    pandas.DataFrame
        ``dim``, ``relative_contrast`` (median over 20 queries).
    """
    dims = validate.sequence_of_positive_ints("dims", dims)
    n = validate.positive_int("n", n)
    rng = validate.rng_from_seed(seed)
    rows = []
    for dim in dims:
        points = rng.random((n, dim), dtype=np.float32)
        queries = rng.random((20, dim), dtype=np.float32)
        distances = np.sqrt(_squared_distances(queries, points, np.einsum("ij,ij->i", points, points)))
        contrast = (distances.max(axis=1) - distances.min(axis=1)) / np.maximum(distances.min(axis=1), 1e-12)
        rows.append({"dim": dim, "relative_contrast": float(np.median(contrast))})
    return pd.DataFrame(rows)


def kmeans(
    data: np.ndarray, n_clusters: int, *, iterations: int = 10, seed: int | np.random.Generator | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means: ``iterations`` rounds of assign-then-average, from random data points.

    An empty cluster is re-seeded with a random point (so every cell is used).

    Returns
    -------
    (centroids, assignment) : tuple of numpy.ndarray
        float32 (n_clusters, dim) and int64 (n,).
    """
    data = _as_matrix("data", data)
    n_clusters = validate.int_in_range("n_clusters", n_clusters, 1, data.shape[0])
    iterations = validate.positive_int("iterations", iterations)
    rng = validate.rng_from_seed(seed)
    centroids = data[rng.choice(data.shape[0], size=n_clusters, replace=False)].copy()
    assignment = np.zeros(data.shape[0], dtype=np.int64)
    for _ in range(iterations):
        assignment = _nearest_centroid(data, centroids)
        counts = np.bincount(assignment, minlength=n_clusters)
        sums = np.zeros_like(centroids)
        np.add.at(sums, assignment, data)
        empty = counts == 0
        centroids[~empty] = sums[~empty] / counts[~empty, None]
        if empty.any():
            centroids[empty] = data[rng.choice(data.shape[0], size=int(empty.sum()), replace=False)]
    return centroids, _nearest_centroid(data, centroids)


def _nearest_centroid(data: np.ndarray, centroids: np.ndarray, batch: int = 8192) -> np.ndarray:
    norms = np.einsum("ij,ij->i", centroids, centroids)
    result = np.empty(data.shape[0], dtype=np.int64)
    for start in range(0, data.shape[0], batch):
        result[start : start + batch] = _squared_distances(
            data[start : start + batch], centroids, norms
        ).argmin(axis=1)
    return result


@dataclass
class IVFIndex:
    """Inverted-file index with a k-means coarse quantiser (FAISS ``IndexIVFFlat`` in miniature).

    Build with :meth:`build`; search with :meth:`search`. Vectors are stored
    grouped by cell, so a query scans ``nprobe`` contiguous blocks.
    """

    centroids: np.ndarray
    vectors: np.ndarray  # base vectors reordered by cell
    ids: np.ndarray  # original index of each reordered vector
    offsets: np.ndarray  # cell c holds rows offsets[c]:offsets[c + 1]

    @classmethod
    def build(
        cls,
        base: np.ndarray,
        nlist: int,
        *,
        iterations: int = 10,
        train_size: int | None = None,
        seed: int = 0,
    ) -> IVFIndex:
        """Train ``nlist`` centroids on (a sample of) ``base`` and file every vector under its nearest."""
        base = _as_matrix("base", base)
        nlist = validate.int_in_range("nlist", nlist, 1, base.shape[0])
        rng = validate.rng_from_seed(seed)
        sample = base
        if train_size is not None:
            train_size = validate.int_in_range("train_size", train_size, nlist, base.shape[0])
            sample = base[rng.choice(base.shape[0], size=train_size, replace=False)]
        centroids, _ = kmeans(sample, nlist, iterations=iterations, seed=rng)
        cells = _nearest_centroid(base, centroids)
        order = np.argsort(cells, kind="stable")
        offsets = np.concatenate([[0], np.cumsum(np.bincount(cells, minlength=nlist))])
        return cls(centroids, base[order], order.astype(np.int64), offsets)

    @property
    def nlist(self) -> int:
        return self.centroids.shape[0]

    def search(self, queries: np.ndarray, k: int = 10, nprobe: int = 1) -> tuple[np.ndarray, float]:
        """Approximate k nearest neighbours, scanning the ``nprobe`` nearest cells of each query.

        Returns
        -------
        (indices, scanned_fraction)
            Indices of shape (n_queries, k) (-1 where fewer than k vectors were
            scanned), and the mean fraction of the base each query scanned.
        """
        queries = _as_matrix("queries", queries)
        k = validate.positive_int("k", k)
        nprobe = validate.int_in_range("nprobe", nprobe, 1, self.nlist)
        probes = _top_k(
            _squared_distances(
                queries, self.centroids, np.einsum("ij,ij->i", self.centroids, self.centroids)
            ),
            nprobe,
        )[0]
        result = np.full((queries.shape[0], k), -1, dtype=np.int64)
        scanned = 0
        for i, cells in enumerate(probes):
            rows = np.concatenate([np.arange(self.offsets[c], self.offsets[c + 1]) for c in cells])
            scanned += rows.size
            if rows.size == 0:
                continue
            candidates = self.vectors[rows]
            distances = _squared_distances(
                queries[i : i + 1], candidates, np.einsum("ij,ij->i", candidates, candidates)
            )
            top, _ = _top_k(distances, min(k, rows.size))
            result[i, : top.shape[1]] = self.ids[rows[top[0]]]
        return result, scanned / (queries.shape[0] * self.vectors.shape[0])

    def memory_bytes_per_vector(self) -> float:
        """Stored bytes per vector: the float32 vector, its int64 id, and the centroids amortised."""
        n, dim = self.vectors.shape
        return (self.vectors.nbytes + self.ids.nbytes + self.centroids.nbytes + self.offsets.nbytes) / n


@dataclass
class LSHIndex:
    """Random-hyperplane LSH: a vector's signature is the sign pattern of ``n_bits`` projections.

    Two vectors at angle theta agree on one bit with probability ``1 - theta/pi``
    (Charikar 2002), so near neighbours tend to share a bucket in at least one of
    ``n_tables`` independent tables. Candidates are re-ranked by exact distance.
    """

    planes: np.ndarray  # (n_tables, n_bits, dim)
    tables: list  # per table: dict signature -> array of ids
    base: np.ndarray

    @classmethod
    def build(cls, base: np.ndarray, *, n_tables: int = 8, n_bits: int = 12, seed: int = 0) -> LSHIndex:
        base = _as_matrix("base", base)
        n_tables = validate.positive_int("n_tables", n_tables)
        n_bits = validate.int_in_range("n_bits", n_bits, 1, 62)
        rng = validate.rng_from_seed(seed)
        center = base.mean(axis=0)
        planes = rng.standard_normal((n_tables, n_bits, base.shape[1])).astype(np.float32)
        tables = []
        for table in range(n_tables):
            codes = cls._codes(base - center, planes[table])
            order = np.argsort(codes, kind="stable")
            sorted_codes = codes[order]
            starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
            ends = np.r_[starts[1:], codes.size]
            tables.append({int(sorted_codes[s]): order[s:e] for s, e in zip(starts, ends, strict=True)})
        index = cls(planes, tables, base)
        index._center = center
        return index

    @staticmethod
    def _codes(vectors: np.ndarray, planes: np.ndarray) -> np.ndarray:
        bits = (vectors @ planes.T) > 0
        return bits.astype(np.int64) @ (1 << np.arange(planes.shape[0], dtype=np.int64))

    def search(self, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, float]:
        """Approximate k nearest neighbours; returns (indices, mean scanned fraction)."""
        queries = _as_matrix("queries", queries)
        k = validate.positive_int("k", k)
        codes = [self._codes(queries - self._center, self.planes[t]) for t in range(len(self.tables))]
        result = np.full((queries.shape[0], k), -1, dtype=np.int64)
        scanned = 0
        empty = np.empty(0, dtype=np.int64)
        for i in range(queries.shape[0]):
            buckets = [self.tables[t].get(int(codes[t][i]), empty) for t in range(len(self.tables))]
            rows = np.unique(np.concatenate(buckets))
            scanned += rows.size
            if rows.size == 0:
                continue
            candidates = self.base[rows]
            distances = _squared_distances(
                queries[i : i + 1], candidates, np.einsum("ij,ij->i", candidates, candidates)
            )
            top, _ = _top_k(distances, min(k, rows.size))
            result[i, : top.shape[1]] = rows[top[0]]
        return result, scanned / (queries.shape[0] * self.base.shape[0])


def evaluate_index(search, queries: np.ndarray, truth: np.ndarray, settings: list[dict]) -> pd.DataFrame:
    """Recall@k and queries per second of ``search(queries, **setting)`` for each setting.

    ``search`` returns ``(indices, scanned_fraction)``, as :meth:`IVFIndex.search` does.

    Returns
    -------
    pandas.DataFrame
        One row per setting: the setting's keys, ``recall``, ``qps`` and ``scanned_fraction``.
    """
    if not callable(search):
        raise TypeError("search must be callable")
    rows = []
    for setting in settings:
        started = time.perf_counter()
        found, scanned = search(queries, k=truth.shape[1], **setting)
        seconds = time.perf_counter() - started
        rows.append(
            {
                **setting,
                "recall": recall_at_k(found, truth),
                "qps": queries.shape[0] / seconds,
                "scanned_fraction": scanned,
            }
        )
    return pd.DataFrame(rows)


def plot_brute_force_scaling(timings: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Queries per second against collection size, one line per dimension (columns ``n``, ``dim``, ``qps``)."""
    ax = axes_or_new(ax)
    for dim, group in timings.groupby("dim"):
        ax.plot(group["n"], group["qps"], marker="o", label=f"d = {dim}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    label(ax, "vectors in the collection (log scale)", "queries per second (log scale)", legend=True)
    return ax


def plot_distance_contrast(contrast: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Relative contrast against dimension, log-log (the output of :func:`distance_contrast`)."""
    ax = axes_or_new(ax)
    ax.plot(contrast["dim"], contrast["relative_contrast"], marker="o")
    ax.set_xscale("log")
    ax.set_yscale("log")
    label(ax, "dimensions (log scale)", "(farthest - nearest) / nearest")
    return ax


def plot_recall_vs_qps(
    results: pd.DataFrame, ax: Axes | None = None, *, label_column: str = "method"
) -> Axes:
    """Recall@k against queries per second (log), one line per ``label_column`` value (ann-benchmarks style)."""
    ax = axes_or_new(ax)
    for name, group in results.groupby(label_column, sort=False):
        ordered = group.sort_values("recall")
        ax.plot(ordered["recall"], ordered["qps"], marker="o", label=str(name))
    ax.set_yscale("log")
    label(ax, "recall@10", "queries per second (log scale)", legend=True)
    return ax
