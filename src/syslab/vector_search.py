"""Nearest-neighbour search over vectors: numpy teaching versions, and FAISS measured beside them.

The teaching versions explain the mechanisms in a few lines of numpy:

- :func:`brute_force_knn` -- exact k nearest neighbours by batched matrix products,
  O(N d) work per query.
- :class:`IVFIndex` -- an inverted-file index: a k-means coarse quantiser splits the
  vectors into ``nlist`` cells; a query scans only the ``nprobe`` nearest cells
  (the design of FAISS's ``IndexIVFFlat``).
- :class:`LSHIndex` -- locality-sensitive hashing with two families: random hyperplanes
  (Charikar 2002; they approximate *angular* distance) and p-stable projections
  (Datar et al. 2004, E2LSH; the family for *Euclidean* distance).

The numbers a reader acts on come from the real library, FAISS (``faiss-cpu``):
:func:`build_faiss_indexes` builds Flat, IVFFlat, HNSW and IVFPQ on the same data,
:func:`measure_faiss` and :func:`measure_index` time every index the same way (the whole
query batch in one call, one thread), and :func:`measure_filtered_search` measures the
filtered case that production systems get wrong.

Everything is float32, Euclidean distance. The data generator makes clustered Gaussian
data whose cluster spread is a knob, because how well an approximate index works depends
on the data as much as on the index.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from syslab import experiment, hashing, timing, validate
from syslab.plot import axes_or_new, label

__all__ = [
    "MAX_DIMS",
    "MAX_VECTORS",
    "FaissIndexes",
    "IVFIndex",
    "LSHIndex",
    "exact_batch_sentence",
    "brute_force_knn",
    "build_faiss_indexes",
    "hyperplane_bits",
    "kmeans",
    "make_clustered_vectors",
    "measure_brute_force",
    "measure_faiss",
    "measure_filtered_search",
    "measure_index",
    "measure_query_latency",
    "plot_brute_force_scaling",
    "plot_distance_contrast",
    "plot_filtered_search",
    "plot_recall_vs_qps",
    "recall_at_k",
    "simulate_distance_contrast",
    "summarize_tradeoff",
]

# Bounds chosen from what a 2-core machine does within a chapter's 30 s (and 1 GB of memory).
MAX_VECTORS = 2_000_000
MAX_DIMS = 4_096
MAX_ELEMENTS = 200_000_000  # vectors x dimensions held at once (800 MB of float32)
MAX_QUERIES = 100_000
MAX_K = 1_000
MAX_CLUSTERS = 100_000
MAX_ITERATIONS = 100
MAX_TABLES = 256
MAX_SETTINGS = 200
MAX_BATCH = 100_000
MAX_THREADS = 64
MAX_REPEATS = 20
LSH_FAMILIES = ("hyperplane", "pstable")
FAISS_KINDS = ("Flat", "IVFFlat", "HNSW", "IVFPQ")


def _as_matrix(name: str, values: object, *, max_rows: int = MAX_VECTORS) -> np.ndarray:
    if isinstance(values, (str, bytes)) or values is None:
        raise TypeError(f"{name} must be a 2-D array of numbers, got {values!r}")
    try:
        array = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a 2-D array of numbers, got {type(values).__name__}") from None
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array (rows are vectors), got shape {array.shape}")
    if array.shape[0] > max_rows or array.shape[1] > MAX_DIMS:
        raise ValueError(
            f"{name} must have at most {max_rows:,} rows and {MAX_DIMS:,} columns, got shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must hold finite numbers")
    return np.ascontiguousarray(array)


def _same_dims(queries: np.ndarray, base: np.ndarray) -> None:
    if queries.shape[1] != base.shape[1]:
        raise ValueError(f"queries have dimension {queries.shape[1]}, base has {base.shape[1]}")


def make_clustered_vectors(
    n_vectors: int,
    n_dims: int,
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

    Parameters
    ----------
    n_vectors : int
        Vectors in the collection, 1 to ``MAX_VECTORS``.
    n_dims : int
        Dimensions per vector, 1 to ``MAX_DIMS``.
    n_clusters : int
        Gaussian cluster centres, 1 to ``MAX_CLUSTERS``.
    center_scale : float
        Standard deviation of the centres (the noise around a centre has standard deviation 1).
    n_queries : int
        Queries, drawn like the vectors, 1 to ``MAX_QUERIES``.
    seed : int, numpy.random.Generator or None

    Returns
    -------
    (base, queries) : tuple of numpy.ndarray
        float32 arrays of shape (n_vectors, n_dims) and (n_queries, n_dims).
    """
    n_vectors = validate.bounded_int("n_vectors", n_vectors, MAX_VECTORS)
    n_dims = validate.bounded_int("n_dims", n_dims, MAX_DIMS)
    n_clusters = validate.bounded_int("n_clusters", n_clusters, MAX_CLUSTERS)
    center_scale = validate.float_in_range("center_scale", center_scale, 0.0, 1e6)
    n_queries = validate.bounded_int("n_queries", n_queries, MAX_QUERIES)
    if (n_vectors + n_queries) * n_dims > MAX_ELEMENTS:
        raise ValueError(
            f"(n_vectors + n_queries) x n_dims must be at most {MAX_ELEMENTS:,}, "
            f"got {(n_vectors + n_queries) * n_dims:,}"
        )
    rng = validate.rng_from_seed(seed)
    centres = rng.normal(0.0, center_scale, size=(n_clusters, n_dims)).astype(np.float32)
    members = rng.integers(0, n_clusters, size=n_vectors + n_queries)
    points = centres[members]
    # Add the noise in chunks, in place: a single draw would hold a second full-size array.
    for start in range(0, points.shape[0], 16_384):
        block = points[start : start + 16_384]
        block += rng.standard_normal(block.shape, dtype=np.float32)
    return points[:n_vectors], points[n_vectors:]


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


def _rerank(query: np.ndarray, base: np.ndarray, norms: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` rows (of ``rows``) nearest ``query`` (one vector), nearest first.

    ``norms`` holds every base row's squared norm, computed once when the index is built.
    ``||x||^2 - 2 q.x`` orders the rows as ``||q - x||^2`` does (``||q||^2`` is the same for
    all). The product is an einsum, not a BLAS call: one small product per query must not wait
    for a second BLAS thread on a busy machine (the indexes run on one thread, as FAISS's do).
    """
    distances = norms[rows] - 2.0 * np.einsum("ij,j->i", base[rows], query)
    top, _ = _top_k(distances[None, :], min(k, rows.size))
    return rows[top[0]]


def brute_force_knn(
    base: np.ndarray, queries: np.ndarray, k: int = 10, *, batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours (Euclidean) of every query.

    Queries are processed ``batch_size`` at a time so memory stays at
    ``batch_size x N`` floats.

    Parameters
    ----------
    base : array_like, shape (n_vectors, n_dims)
        The collection.
    queries : array_like, shape (n_queries, n_dims)
        The query vectors.
    k : int
        Neighbours wanted, 1 to min(n_vectors, ``MAX_K``).
    batch_size : int
        Queries per matrix product, 1 to ``MAX_BATCH``.

    Returns
    -------
    (indices, squared_distances) : tuple of numpy.ndarray
        Shapes (n_queries, k); row i lists query i's neighbours (row numbers of ``base``),
        nearest first, and their squared distances.
    """
    base = _as_matrix("base", base)
    queries = _as_matrix("queries", queries, max_rows=MAX_QUERIES)
    _same_dims(queries, base)
    k = validate.int_in_range("k", k, 1, min(base.shape[0], MAX_K))
    batch_size = validate.bounded_int("batch_size", batch_size, MAX_BATCH)
    norms = np.einsum("ij,ij->i", base, base)
    indices = np.empty((queries.shape[0], k), dtype=np.int64)
    distances = np.empty((queries.shape[0], k), dtype=np.float32)
    for start in range(0, queries.shape[0], batch_size):
        block = _squared_distances(queries[start : start + batch_size], base, norms)
        indices[start : start + batch_size], distances[start : start + batch_size] = _top_k(block, k)
    return indices, distances


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of each query's true k neighbours that ``found`` contains (recall@k).

    Parameters
    ----------
    found : array_like of int, shape (n_queries, any)
        Ids an index returned; -1 marks an empty slot.
    truth : array_like of int, shape (n_queries, k)
        The exact neighbours.

    Returns
    -------
    float
        0 to 1.
    """
    found = np.asarray(found)
    truth = np.asarray(truth)
    if found.ndim != 2 or truth.ndim != 2 or found.shape[0] != truth.shape[0] or truth.size == 0:
        raise ValueError(
            f"found and truth must be 2-D with one row per query, got {found.shape} and {truth.shape}"
        )
    if found.dtype.kind not in "iu" or truth.dtype.kind not in "iu":
        raise TypeError(f"found and truth must hold integer ids, got {found.dtype} and {truth.dtype}")
    # All queries at once: tag each id with its query's row, then count the true (row, id) pairs
    # the index returned; an id repeated within a row counts once, as in a set intersection.
    span = max(int(found.max(initial=0)), int(truth.max(initial=0))) + 2
    rows = np.arange(truth.shape[0], dtype=np.int64)[:, None] * span
    returned = (rows + found)[found >= 0]
    wanted = np.unique((rows + truth)[truth >= 0])
    return float(np.isin(wanted, returned).sum() / truth.size)


def simulate_distance_contrast(
    dims: Sequence[int],
    *,
    n_points: int = 10_000,
    center_scale: float | None = None,
    n_clusters: int = 1000,
    n_queries: int = 20,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Relative contrast (d_max - d_min) / d_min from a query to a point set, by dimension.

    As the dimension grows, distances concentrate: the nearest and farthest points end up
    almost equally far (Beyer et al. 1999), which is why a "nearest" neighbour means less
    and why indexes stop pruning.

    Parameters
    ----------
    dims : sequence of int
        Dimensions to try, each 1 to ``MAX_DIMS``.
    n_points : int
        Points per dimension, 2 to ``MAX_VECTORS``.
    center_scale : float or None
        None: uniform points in the unit cube. A number: the clustered data of
        :func:`make_clustered_vectors` with this spread (the chapter's data).
    n_clusters : int
        Clusters for the clustered data.
    n_queries : int
        Queries per dimension (the median contrast is reported), 1 to 1,000.
    seed : int, numpy.random.Generator or None

    Returns
    -------
    pandas.DataFrame
        One row per dimension: ``data`` ("uniform" or "clustered"), ``n_dims``,
        ``relative_contrast`` (median over the queries).
    """
    dims = validate.sequence_of_positive_ints("dims", dims)
    if any(d > MAX_DIMS for d in dims) or len(dims) > MAX_SETTINGS:
        raise ValueError(f"dims must hold at most {MAX_SETTINGS} values, each at most {MAX_DIMS:,}")
    n_points = validate.int_in_range("n_points", n_points, 2, MAX_VECTORS)
    n_queries = validate.int_in_range("n_queries", n_queries, 1, 1000)
    if n_points * max(dims) > MAX_ELEMENTS:
        raise ValueError(f"n_points x max(dims) must be at most {MAX_ELEMENTS:,}")
    rng = validate.rng_from_seed(seed)
    rows = []
    for n_dims in dims:
        if center_scale is None:
            points = rng.random((n_points, n_dims), dtype=np.float32)
            queries = rng.random((n_queries, n_dims), dtype=np.float32)
        else:
            points, queries = make_clustered_vectors(
                n_points,
                n_dims,
                n_clusters=n_clusters,
                center_scale=center_scale,
                n_queries=n_queries,
                seed=rng,
            )
        distances = np.sqrt(_squared_distances(queries, points, np.einsum("ij,ij->i", points, points)))
        nearest = np.maximum(distances.min(axis=1), 1e-12)
        contrast = (distances.max(axis=1) - nearest) / nearest
        rows.append(
            {
                "data": "uniform" if center_scale is None else "clustered",
                "n_dims": n_dims,
                "relative_contrast": float(np.median(contrast)),
            }
        )
    return pd.DataFrame(rows)


def kmeans(
    data: np.ndarray, n_clusters: int, *, iterations: int = 10, seed: int | np.random.Generator | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means: ``iterations`` rounds of assign-then-average, from random data points.

    An empty cluster is re-seeded with a random point (so every cell is used).

    Parameters
    ----------
    data : array_like, shape (n_vectors, n_dims)
    n_clusters : int
        1 to min(n_vectors, ``MAX_CLUSTERS``).
    iterations : int
        Rounds, 1 to ``MAX_ITERATIONS``.
    seed : int, numpy.random.Generator or None

    Returns
    -------
    (centroids, assignment) : tuple of numpy.ndarray
        float32 (n_clusters, n_dims) and int64 (n_vectors,).
    """
    data = _as_matrix("data", data)
    n_clusters = validate.int_in_range("n_clusters", n_clusters, 1, min(data.shape[0], MAX_CLUSTERS))
    iterations = validate.bounded_int("iterations", iterations, MAX_ITERATIONS)
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

    Build with :meth:`build`; search with :meth:`search`. Vectors are stored grouped by
    cell, so a query scans ``nprobe`` contiguous blocks.

    Parameters
    ----------
    centroids : numpy.ndarray
        float32 (nlist, n_dims).
    vectors : numpy.ndarray
        The base vectors reordered by cell.
    ids : numpy.ndarray
        Original row number of each reordered vector.
    offsets : numpy.ndarray
        Cell c holds rows ``offsets[c]:offsets[c + 1]``.
    norms : numpy.ndarray, optional
        Squared norm of each reordered vector (computed from ``vectors`` when omitted).
    """

    centroids: np.ndarray
    vectors: np.ndarray
    ids: np.ndarray
    offsets: np.ndarray
    norms: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.norms is None:
            self.norms = np.einsum("ij,ij->i", self.vectors, self.vectors)

    @classmethod
    def build(
        cls,
        base: np.ndarray,
        nlist: int,
        *,
        iterations: int = 10,
        train_size: int | None = None,
        seed: int | np.random.Generator | None = 0,
    ) -> IVFIndex:
        """Train ``nlist`` centroids on (a sample of) ``base`` and file every vector under its nearest.

        Parameters
        ----------
        base : array_like, shape (n_vectors, n_dims)
        nlist : int
            Cells, 1 to min(n_vectors, ``MAX_CLUSTERS``).
        iterations : int
            k-means rounds, 1 to ``MAX_ITERATIONS``.
        train_size : int or None
            Vectors k-means trains on (a random sample); None trains on all.
        seed : int, numpy.random.Generator or None

        Returns
        -------
        IVFIndex
        """
        base = _as_matrix("base", base)
        nlist = validate.int_in_range("nlist", nlist, 1, min(base.shape[0], MAX_CLUSTERS))
        iterations = validate.bounded_int("iterations", iterations, MAX_ITERATIONS)
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
        """Number of cells."""
        return self.centroids.shape[0]

    def search(self, queries: np.ndarray, k: int = 10, nprobe: int = 1) -> tuple[np.ndarray, float]:
        """Approximate k nearest neighbours, scanning the ``nprobe`` nearest cells of each query.

        Parameters
        ----------
        queries : array_like, shape (n_queries, n_dims)
        k : int
            Neighbours wanted, 1 to ``MAX_K``.
        nprobe : int
            Cells scanned per query, 1 to ``nlist``.

        Returns
        -------
        (indices, scanned_share)
            Indices of shape (n_queries, k) (-1 where fewer than k vectors were scanned),
            and the mean share (0-1) of the base each query scanned.
        """
        queries = _as_matrix("queries", queries, max_rows=MAX_QUERIES)
        _same_dims(queries, self.vectors)
        k = validate.bounded_int("k", k, MAX_K)
        nprobe = validate.int_in_range("nprobe", nprobe, 1, self.nlist)
        norms = np.einsum("ij,ij->i", self.centroids, self.centroids)
        probes = _top_k(_squared_distances(queries, self.centroids, norms), nprobe)[0]
        result = np.full((queries.shape[0], k), -1, dtype=np.int64)
        scanned = 0
        for i, cells in enumerate(probes):
            rows = np.concatenate([np.arange(self.offsets[c], self.offsets[c + 1]) for c in cells])
            scanned += rows.size
            if rows.size:
                top = _rerank(queries[i], self.vectors, self.norms, rows, k)
                result[i, : top.size] = self.ids[top]
        return result, scanned / (queries.shape[0] * self.vectors.shape[0])

    def memory_bytes_per_vector(self) -> float:
        """Stored bytes per vector: the float32 vector, its norm and int64 id, and the centroids amortised.

        Returns
        -------
        float
            Bytes per vector.
        """
        n_vectors = self.vectors.shape[0]
        total = (
            self.vectors.nbytes
            + self.ids.nbytes
            + self.norms.nbytes
            + self.centroids.nbytes
            + self.offsets.nbytes
        )
        return total / n_vectors


def hyperplane_bits(vectors: np.ndarray, planes: np.ndarray) -> np.ndarray:
    """Which side of each hyperplane (through the origin) each vector lies on.

    Two vectors at angle theta land on the same side of a random hyperplane with
    probability ``1 - theta / pi`` (Charikar 2002): the family hashes *angles*.

    Parameters
    ----------
    vectors : array_like, shape (n_vectors, n_dims)
    planes : array_like, shape (n_planes, n_dims)
        Hyperplane normals.

    Returns
    -------
    numpy.ndarray
        bool (n_vectors, n_planes): True where the vector is on the normal's side.
    """
    vectors = _as_matrix("vectors", vectors)
    planes = _as_matrix("planes", planes)
    if planes.shape[1] != vectors.shape[1]:
        raise ValueError(f"planes have dimension {planes.shape[1]}, vectors have {vectors.shape[1]}")
    return (vectors @ planes.T) > 0


@dataclass
class LSHIndex:
    """Locality-sensitive hashing: ``n_tables`` tables of ``n_bits``-function signatures.

    ``family="hyperplane"``: each function is the sign of a random projection (Charikar
    2002); it approximates the *angle* between vectors, so it suits cosine similarity.
    ``family="pstable"``: each function is ``floor((a . x + b) / w)`` with Gaussian ``a``
    (Datar et al. 2004, E2LSH); near points in *Euclidean* distance collide more often,
    which is the family for Euclidean k-NN. Candidates from matching buckets are
    re-ranked by exact distance.

    Parameters
    ----------
    projections : numpy.ndarray
        float32 (n_tables, n_bits, n_dims).
    offsets : numpy.ndarray
        float32 (n_tables, n_bits): the ``b`` of each p-stable function (zeros for hyperplanes).
    tables : list of dict
        Per table: signature -> array of row ids.
    base : numpy.ndarray
        The indexed vectors.
    center : numpy.ndarray
        Mean of the base (hyperplanes pass through it).
    family : str
        "hyperplane" or "pstable".
    bucket_width : float
        ``w`` of the p-stable functions (unused for hyperplanes).
    norms : numpy.ndarray, optional
        Squared norm of each base vector (computed from ``base`` when omitted).
    """

    projections: np.ndarray
    offsets: np.ndarray
    tables: list
    base: np.ndarray
    center: np.ndarray
    family: str = "hyperplane"
    bucket_width: float = 1.0
    norms: np.ndarray | None = field(default=None, repr=False)
    _empty: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64), repr=False)

    def __post_init__(self) -> None:
        if self.norms is None:
            self.norms = np.einsum("ij,ij->i", self.base, self.base)

    @classmethod
    def build(
        cls,
        base: np.ndarray,
        *,
        n_tables: int = 8,
        n_bits: int = 12,
        family: str = "hyperplane",
        bucket_width: float = 4.0,
        seed: int | np.random.Generator | None = 0,
    ) -> LSHIndex:
        """Hash every vector of ``base`` into ``n_tables`` tables.

        Parameters
        ----------
        base : array_like, shape (n_vectors, n_dims)
        n_tables : int
            Independent tables, 1 to ``MAX_TABLES``.
        n_bits : int
            Hash functions per signature, 1 to 62.
        family : str
            "hyperplane" (angular) or "pstable" (Euclidean).
        bucket_width : float
            ``w`` of the p-stable functions, in the data's distance units (> 0).
        seed : int, numpy.random.Generator or None

        Returns
        -------
        LSHIndex
        """
        base = _as_matrix("base", base)
        n_tables = validate.bounded_int("n_tables", n_tables, MAX_TABLES)
        n_bits = validate.int_in_range("n_bits", n_bits, 1, 62)
        family = validate.choice("family", family, LSH_FAMILIES)
        bucket_width = validate.float_in_range("bucket_width", bucket_width, 0.0, 1e9, low_inclusive=False)
        rng = validate.rng_from_seed(seed)
        center = base.mean(axis=0)
        projections = rng.standard_normal((n_tables, n_bits, base.shape[1])).astype(np.float32)
        offsets = np.zeros((n_tables, n_bits), dtype=np.float32)
        if family == "pstable":
            offsets = rng.uniform(0.0, bucket_width, size=(n_tables, n_bits)).astype(np.float32)
        index = cls(projections, offsets, [], base, center, family, bucket_width)
        for codes in index._codes(base):
            order = np.argsort(codes, kind="stable")
            sorted_codes = codes[order]
            starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
            ends = np.r_[starts[1:], codes.size]
            index.tables.append({int(sorted_codes[s]): order[s:e] for s, e in zip(starts, ends, strict=True)})
        return index

    def _codes(self, vectors: np.ndarray, table: int | None = None) -> np.ndarray:
        """One integer signature per vector: shape (n_tables, n_vectors), or (n_vectors,) for one ``table``.

        Every table's functions are applied in one matrix product (not one product per table).
        """
        tables = list(range(self.projections.shape[0])) if table is None else [table]
        n_tables, n_bits, n_dims = self.projections[tables].shape
        functions = self.projections[tables].reshape(n_tables * n_bits, n_dims)
        if self.family == "hyperplane":
            bits = hyperplane_bits(vectors - self.center, functions).reshape(-1, n_tables, n_bits)
            code = np.zeros(bits.shape[:2], dtype=np.int64)
            for j in range(n_bits):  # the bits read as a binary number
                code |= bits[:, :, j].astype(np.int64) << j
        else:
            offsets = self.offsets[tables].reshape(n_tables * n_bits)
            slots = np.floor((vectors @ functions.T + offsets) / self.bucket_width).reshape(
                -1, n_tables, n_bits
            )
            # Combine the n_bits slot numbers into one 63-bit signature with the shared mixer.
            shifted = (slots.astype(np.int64) + 2**31).astype(np.uint64)
            mixed = np.zeros(shifted.shape[:2], dtype=np.uint64)
            for j in range(n_bits):
                mixed = hashing.mix64(mixed ^ shifted[:, :, j], salt=j + 1)
            code = (mixed >> np.uint64(1)).astype(np.int64)
        return code.T if table is None else code[:, 0]

    def search(self, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, float]:
        """Approximate k nearest neighbours: the union of the query's buckets, re-ranked exactly.

        Parameters
        ----------
        queries : array_like, shape (n_queries, n_dims)
        k : int
            Neighbours wanted, 1 to ``MAX_K``.

        Returns
        -------
        (indices, scanned_share)
            Indices (n_queries, k), -1 where fewer candidates were found, and the mean share
            (0-1) of the base re-ranked per query.
        """
        queries = _as_matrix("queries", queries, max_rows=MAX_QUERIES)
        _same_dims(queries, self.base)
        k = validate.bounded_int("k", k, MAX_K)
        codes = self._codes(queries)
        result = np.full((queries.shape[0], k), -1, dtype=np.int64)
        scanned = 0
        candidate = np.zeros(self.base.shape[0], dtype=bool)  # the union of a query's buckets
        for i in range(queries.shape[0]):
            buckets = [self.tables[t].get(int(codes[t][i]), self._empty) for t in range(len(self.tables))]
            candidate[np.concatenate(buckets)] = True
            rows = np.flatnonzero(candidate)  # each candidate once, in row order
            candidate[rows] = False
            scanned += rows.size
            if rows.size:
                top = _rerank(queries[i], self.base, self.norms, rows, k)
                result[i, : top.size] = top
        return result, scanned / (queries.shape[0] * self.base.shape[0])


def _check_truth(queries: np.ndarray, truth: object) -> np.ndarray:
    truth = np.asarray(truth)
    if truth.ndim != 2 or truth.shape[0] != queries.shape[0] or not 1 <= truth.shape[1] <= MAX_K:
        raise ValueError(
            f"truth must be (n_queries, k) with n_queries = {queries.shape[0]} and k <= {MAX_K}, got {truth.shape}"
        )
    return truth


def _check_settings(settings: object) -> list[dict]:
    if isinstance(settings, dict) or not isinstance(settings, Sequence):
        raise TypeError(f"settings must be a list of keyword dicts, got {type(settings).__name__}")
    if not 1 <= len(settings) <= MAX_SETTINGS:
        raise ValueError(f"settings must hold 1 to {MAX_SETTINGS} dicts, got {len(settings)}")
    for i, setting in enumerate(settings):
        if not isinstance(setting, dict):
            raise TypeError(f"settings[{i}] must be a dict, got {type(setting).__name__}")
    return list(settings)


def measure_index(
    search: Callable[..., tuple[np.ndarray, float]],
    queries: np.ndarray,
    truth: np.ndarray,
    settings: Sequence[dict],
    *,
    repeats: int = 1,
) -> experiment.Run:
    """Recall@k and queries per second of ``search(queries, k=k, **setting)`` for each setting.

    The whole query batch goes to ``search`` in one call (as :func:`measure_faiss` does),
    so every index is timed the same way.

    Parameters
    ----------
    search : callable
        Returns ``(indices, scanned_share)``, as :meth:`IVFIndex.search` does.
    queries : array_like, shape (n_queries, n_dims)
    truth : array_like of int, shape (n_queries, k)
        Exact neighbours (from :func:`brute_force_knn`).
    settings : list of dict
        Keyword arguments per measurement (e.g. ``[{"nprobe": 1}, {"nprobe": 4}]``).
    repeats : int
        Timed calls per setting (the median is kept), 1 to ``MAX_REPEATS``.

    Returns
    -------
    experiment.Run
        Frame: one row per setting with the setting's keys, ``recall`` (0-1), ``qps``
        (queries per second) and ``scanned_share`` (0-1). Summary: ``n_queries``, ``k``.
    """
    if not callable(search):
        raise TypeError(f"search must be callable, got {type(search).__name__}")
    queries = _as_matrix("queries", queries, max_rows=MAX_QUERIES)
    truth = _check_truth(queries, truth)
    settings = _check_settings(settings)
    repeats = validate.bounded_int("repeats", repeats, MAX_REPEATS)
    k = truth.shape[1]
    rows = []
    for setting in settings:
        found: list = []

        def call(setting: dict = setting, found: list = found) -> None:
            found[:] = [search(queries, k=k, **setting)]

        seconds = timing.median_seconds(call, repeats=repeats, max_total_s=30.0)
        indices, scanned = found[0]
        rows.append(
            {
                **setting,
                "recall": recall_at_k(indices, truth),
                "qps": queries.shape[0] / seconds,
                "scanned_share": float(scanned),
            }
        )
    return experiment.Run.create(pd.DataFrame(rows), {"n_queries": int(queries.shape[0]), "k": int(k)})


# =========================================================================== FAISS


def _faiss(n_threads: int):
    """Import FAISS and pin its OpenMP threads; returns (module, previous thread count)."""
    import faiss

    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n_threads)
    return faiss, previous


def _index_bytes(faiss, index) -> int:
    return int(faiss.serialize_index(index).nbytes)


@dataclass
class FaissIndexes:
    """FAISS indexes built once on one data set, to be measured several ways.

    Parameters
    ----------
    indexes : dict
        Name ("Flat", "IVFFlat", "HNSW", "IVFPQ") to the FAISS index.
    build_s : dict
        Name to build time (training plus adding), seconds. IVFPQ reuses IVFFlat's coarse
        k-means when both are built; its time includes that training, as if built alone.
    memory_bytes : dict
        Name to the serialised index size, bytes (vectors, links, codes, centroids).
    n_vectors : int
    n_threads : int
        OpenMP threads FAISS used for the build (and uses for searches).
    version : str
        ``faiss.__version__``.
    settings : dict
        The build parameters (nlist, hnsw_m, ef_construction, pq_m, train_size).
    """

    indexes: dict
    build_s: dict
    memory_bytes: dict
    n_vectors: int
    n_threads: int
    version: str
    settings: dict

    @property
    def label(self) -> str:
        """``"FAISS 1.x.y"``."""
        return f"FAISS {self.version}"


def build_faiss_indexes(
    base: np.ndarray,
    *,
    nlist: int = 256,
    hnsw_m: int = 16,
    ef_construction: int = 40,
    pq_m: int = 32,
    pq_bits: int = 4,
    train_size: int = 20_000,
    n_threads: int = 1,
    kinds: Sequence[str] = FAISS_KINDS,
    seed: int | np.random.Generator | None = 0,
) -> FaissIndexes:
    """Build FAISS ``IndexFlatL2``, ``IndexIVFFlat``, ``IndexHNSWFlat`` and ``IndexIVFPQ`` on ``base``.

    Parameters
    ----------
    base : array_like, shape (n_vectors, n_dims)
    nlist : int
        IVF cells (both IVF indexes), 1 to ``MAX_CLUSTERS`` and at most ``train_size``.
    hnsw_m : int
        HNSW links per node (``M``), 2 to 128.
    ef_construction : int
        HNSW candidate list while building, 1 to 2,000 (FAISS default 40).
    pq_m : int
        Sub-quantisers of the PQ codes; must divide ``n_dims``.
    pq_bits : int
        Bits per sub-quantiser code, 4 or 8: a vector is stored in ``pq_m * pq_bits / 8`` bytes.
    train_size : int
        Vectors the IVF and PQ quantisers train on (a random sample), ``nlist`` to n_vectors.
    n_threads : int
        FAISS OpenMP threads, 1 to ``MAX_THREADS``.
    kinds : sequence of str
        Which indexes to build, from ``FAISS_KINDS`` ("Flat", "IVFFlat", "HNSW", "IVFPQ").
    seed : int, numpy.random.Generator or None
        Chooses the training sample.

    Returns
    -------
    FaissIndexes
    """
    base = _as_matrix("base", base)
    n_vectors, n_dims = base.shape
    nlist = validate.int_in_range("nlist", nlist, 1, min(n_vectors, MAX_CLUSTERS))
    hnsw_m = validate.int_in_range("hnsw_m", hnsw_m, 2, 128)
    ef_construction = validate.int_in_range("ef_construction", ef_construction, 1, 2000)
    pq_m = validate.int_in_range("pq_m", pq_m, 1, n_dims)
    if n_dims % pq_m:
        raise ValueError(f"pq_m must divide the dimension {n_dims}, got {pq_m}")
    pq_bits = validate.int_in_range("pq_bits", pq_bits, 4, 8)
    if pq_bits not in (4, 8):
        raise ValueError(f"pq_bits must be 4 or 8, got {pq_bits}")
    train_size = validate.int_in_range("train_size", train_size, nlist, n_vectors)
    n_threads = validate.bounded_int("n_threads", n_threads, MAX_THREADS)
    if isinstance(kinds, str) or not kinds:
        raise TypeError(f"kinds must be a non-empty list of index names from {FAISS_KINDS}, got {kinds!r}")
    kinds = [validate.choice("kinds", kind, FAISS_KINDS) for kind in kinds]
    rng = validate.rng_from_seed(seed)
    faiss, previous = _faiss(n_threads)
    try:
        sample = base[np.sort(rng.choice(n_vectors, size=train_size, replace=False))]
        built, build_s = {}, {}
        coarse = {}  # IVFFlat's trained k-means centroids and the seconds its training took

        def timed(name: str, make: Callable[[], object]) -> None:
            started = time.perf_counter()
            built[name] = make()
            build_s[name] = time.perf_counter() - started

        def flat():
            index = faiss.IndexFlatL2(n_dims)
            index.add(base)
            return index

        def ivf(pq: bool):
            quantizer = faiss.IndexFlatL2(n_dims)
            if pq and coarse:
                # IVFFlat's k-means already split this sample into nlist cells: IVFPQ starts from those
                # centroids (FAISS does not retrain a filled quantizer) instead of repeating the k-means.
                quantizer.add(coarse["centroids"])
            if pq:
                index = faiss.IndexIVFPQ(quantizer, n_dims, nlist, pq_m, pq_bits)
            else:
                index = faiss.IndexIVFFlat(quantizer, n_dims, nlist)
            index.cp.seed = int(rng.integers(2**31))
            started = time.perf_counter()
            index.train(sample)
            if not pq:
                coarse["train_s"] = time.perf_counter() - started
                coarse["centroids"] = quantizer.reconstruct_n(0, nlist)
            index.add(base)
            return index

        def hnsw():
            index = faiss.IndexHNSWFlat(n_dims, hnsw_m)
            index.hnsw.efConstruction = ef_construction
            index.add(base)
            return index

        makers = {"Flat": flat, "IVFFlat": lambda: ivf(False), "HNSW": hnsw, "IVFPQ": lambda: ivf(True)}
        for kind in FAISS_KINDS:
            if kind in kinds:
                timed(kind, makers[kind])
        if "IVFPQ" in built and coarse:
            build_s["IVFPQ"] += coarse["train_s"]  # what building IVFPQ alone costs
        memory = {name: _index_bytes(faiss, index) for name, index in built.items()}
    finally:
        faiss.omp_set_num_threads(previous)
    return FaissIndexes(
        built,
        build_s,
        memory,
        n_vectors,
        n_threads,
        faiss.__version__,
        {
            "nlist": nlist,
            "hnsw_m": hnsw_m,
            "ef_construction": ef_construction,
            "pq_m": pq_m,
            "pq_bits": pq_bits,
            "train_size": train_size,
        },
    )


def _faiss_search(faiss, index, queries: np.ndarray, k: int, params=None) -> np.ndarray:
    if params is None:
        return index.search(queries, k)[1]
    return index.search(queries, k, params=params)[1]


def measure_faiss(
    indexes: FaissIndexes,
    queries: np.ndarray,
    truth: np.ndarray,
    *,
    nprobes: Sequence[int] = (1, 4, 16, 64),
    ef_searches: Sequence[int] = (16, 32, 64, 128),
    pq_nprobes: Sequence[int] | None = None,
    once_nprobes: Sequence[int] = (),
    repeats: int = 3,
) -> experiment.Run:
    """Recall@k and queries per second of each FAISS index at each query-time setting.

    Every search is the whole query batch in one call, on ``indexes.n_threads`` threads.

    Parameters
    ----------
    indexes : FaissIndexes
        From :func:`build_faiss_indexes`.
    queries : array_like, shape (n_queries, n_dims)
    truth : array_like of int, shape (n_queries, k)
    nprobes : sequence of int
        IVF cells scanned per query (IVFFlat, and IVFPQ unless ``pq_nprobes`` is given), each 1 to nlist.
    ef_searches : sequence of int
        HNSW candidate-list lengths, each k to 10,000.
    pq_nprobes : sequence of int or None
        IVFPQ's own nprobe values, each 1 to nlist (None: ``nprobes``). IVFPQ scans its cells
        slower than IVFFlat, so a long IVFFlat sweep need not be repeated on it.
    once_nprobes : sequence of int
        More IVFFlat nprobe values, each 1 to nlist, timed with one call each: settings a page
        only displays (an explorer's slider) need no median. Values also in ``nprobes`` get
        ``repeats`` calls.
    repeats : int
        Timed calls per setting (median kept), 1 to ``MAX_REPEATS``.

    Returns
    -------
    experiment.Run
        Frame: one row per (index, setting): ``method``, ``knob`` ("-", "nprobe" or
        "efSearch"), ``setting`` (int, 0 for Flat), ``recall`` (0-1), ``qps``,
        ``build_s`` and ``memory_bytes`` of the index, ``bytes_per_vector``.
        Summary: ``faiss_version``, ``n_threads``, ``n_queries``, ``k``.
    """
    validate.instance("indexes", indexes, FaissIndexes)
    queries = _as_matrix("queries", queries, max_rows=MAX_QUERIES)
    truth = _check_truth(queries, truth)
    k = truth.shape[1]
    nlist = indexes.settings["nlist"]
    nprobes = [validate.int_in_range("nprobes", p, 1, nlist) for p in nprobes]
    ef_searches = [validate.int_in_range("ef_searches", e, k, 10_000) for e in ef_searches]
    if not nprobes or not ef_searches or len(nprobes) + len(ef_searches) > MAX_SETTINGS:
        raise ValueError(f"nprobes and ef_searches must each hold 1 to {MAX_SETTINGS} values")
    if pq_nprobes is None:
        pq_nprobes = nprobes
    pq_nprobes = [validate.int_in_range("pq_nprobes", p, 1, nlist) for p in pq_nprobes]
    if not 1 <= len(pq_nprobes) <= MAX_SETTINGS:
        raise ValueError(f"pq_nprobes must hold 1 to {MAX_SETTINGS} values")
    once = {validate.int_in_range("once_nprobes", p, 1, nlist) for p in once_nprobes} - set(nprobes)
    if len(once) > MAX_SETTINGS:
        raise ValueError(f"once_nprobes must hold at most {MAX_SETTINGS} values")
    repeats = validate.bounded_int("repeats", repeats, MAX_REPEATS)
    faiss, previous = _faiss(indexes.n_threads)
    plan = [("Flat", "-", 0)]
    plan += [("IVFFlat", "nprobe", p) for p in (sorted({*nprobes, *once}) if once else nprobes)]
    plan += [("HNSW", "efSearch", e) for e in ef_searches]
    plan += [("IVFPQ", "nprobe", p) for p in pq_nprobes]
    plan = [step for step in plan if step[0] in indexes.indexes]
    rows = []
    try:
        for method, knob, setting in plan:
            index = indexes.indexes[method]
            if knob == "nprobe":
                params = faiss.SearchParametersIVF(nprobe=setting)
            elif knob == "efSearch":
                params = faiss.SearchParametersHNSW(efSearch=setting)
            else:
                params = None
            found: list = []
            seconds = timing.median_seconds(
                lambda index=index, params=params, found=found: found.append(
                    _faiss_search(faiss, index, queries, k, params)
                ),
                repeats=1 if method == "IVFFlat" and setting in once else repeats,
                max_total_s=0.4,  # a batch that alone takes over 0.2 s is timed fewer than 3 times
            )
            rows.append(
                {
                    "method": method,
                    "knob": knob,
                    "setting": setting,
                    "recall": recall_at_k(found[-1], truth),
                    "qps": queries.shape[0] / seconds,
                    "build_s": indexes.build_s[method],
                    "memory_bytes": indexes.memory_bytes[method],
                    "bytes_per_vector": indexes.memory_bytes[method] / indexes.n_vectors,
                }
            )
    finally:
        faiss.omp_set_num_threads(previous)
    summary = {
        "faiss_version": indexes.version,
        "n_threads": indexes.n_threads,
        "n_queries": int(queries.shape[0]),
        "k": int(k),
    }
    return experiment.Run.create(pd.DataFrame(rows), summary, faiss=indexes.version)


def measure_query_latency(
    indexes: FaissIndexes,
    queries: np.ndarray,
    *,
    k: int = 10,
    nprobe: int = 16,
    ef_search: int = 64,
    batch: experiment.Run | None = None,
) -> experiment.Run:
    """One query at a time against the whole batch at once, for each FAISS index.

    A service answers queries as they arrive, one call each; a benchmark often sends them all in
    one call, where FAISS shares work across queries (one matrix product for Flat). This measures
    both on ``indexes.n_threads`` threads: the batch's throughput, and the latency of each single
    query.

    Parameters
    ----------
    indexes : FaissIndexes
    queries : array_like, shape (n_queries, n_dims)
        At most 10,000 queries.
    k : int
        Neighbours wanted.
    nprobe, ef_search : int
        IVF cells scanned and HNSW candidate list.
    batch : experiment.Run, optional
        :func:`measure_faiss`'s run on the same indexes, queries and ``k``. Where it timed the
        same index at the same setting, its batch throughput (a median of repeated calls) is
        reused instead of timing the same call again.

    Returns
    -------
    experiment.Run
        Frame: one row per index: ``method``, ``batch_qps`` (whole batch in one call),
        ``single_qps`` (one call per query), ``single_p50_ms`` and ``single_p99_ms`` (latency of
        one query). Summary: ``faiss_version``, ``n_threads``, ``blas_threshold`` (FAISS's
        ``distance_compute_blas_threshold``: queries per call from which exact search uses BLAS).
    """
    validate.instance("indexes", indexes, FaissIndexes)
    queries = _as_matrix("queries", queries, max_rows=10_000)
    k = validate.bounded_int("k", k, MAX_K)
    nprobe = validate.int_in_range("nprobe", nprobe, 1, indexes.settings["nlist"])
    ef_search = validate.int_in_range("ef_search", ef_search, k, 10_000)
    measured = {}
    if batch is not None:
        validate.instance("batch", batch, experiment.Run)
        if batch.summary.get("n_queries") != queries.shape[0] or batch.summary.get("k") != k:
            raise ValueError(
                f"batch must come from measure_faiss with these {queries.shape[0]} queries and k = {k}"
            )
        frame = validate.frame_columns("batch", batch.frame, ["method", "setting", "qps"])
        measured = frame.set_index(["method", "setting"])["qps"].to_dict()
    settings = {"Flat": 0, "IVFFlat": nprobe, "IVFPQ": nprobe, "HNSW": ef_search}
    faiss, previous = _faiss(indexes.n_threads)
    rows = []
    try:
        for method, index in indexes.indexes.items():
            params = None
            if method in ("IVFFlat", "IVFPQ"):
                params = faiss.SearchParametersIVF(nprobe=nprobe)
            elif method == "HNSW":
                params = faiss.SearchParametersHNSW(efSearch=ef_search)
            batch_qps = measured.get((method, settings[method]))
            if batch_qps is None:
                batch_s = timing.median_seconds(
                    lambda index=index, params=params: _faiss_search(faiss, index, queries, k, params),
                    repeats=3,
                    max_total_s=2.0,
                )
                batch_qps = queries.shape[0] / batch_s
            single = []
            for row in range(queries.shape[0]):
                started = time.perf_counter()
                _faiss_search(faiss, index, queries[row : row + 1], k, params)
                single.append(time.perf_counter() - started)
            single = np.asarray(single)
            rows.append(
                {
                    "method": method,
                    "batch_qps": float(batch_qps),
                    "single_qps": queries.shape[0] / single.sum(),
                    "single_p50_ms": 1000 * float(np.percentile(single, 50)),
                    "single_p99_ms": 1000 * float(np.percentile(single, 99)),
                }
            )
    finally:
        faiss.omp_set_num_threads(previous)
    summary = {
        "faiss_version": indexes.version,
        "n_threads": indexes.n_threads,
        # Exact search computes a batch's distances as one BLAS matrix product only from this many
        # queries in one call; below it every query runs FAISS's own SIMD loop.
        "blas_threshold": int(faiss.cvar.distance_compute_blas_threshold),
    }
    return experiment.Run.create(pd.DataFrame(rows), summary, faiss=indexes.version)


def measure_brute_force(
    sizes: Sequence[int],
    dims: Sequence[int],
    *,
    n_queries: int = 100,
    k: int = 10,
    n_clusters: int = 1000,
    center_scale: float = 1.2,
    n_threads: int = 1,
    seed: int | np.random.Generator | None = 0,
) -> experiment.Run:
    """Exact-search throughput of numpy (:func:`brute_force_knn`) and FAISS ``IndexFlatL2``.

    Both receive the whole query batch in one call; FAISS runs on ``n_threads`` OpenMP
    threads (numpy's BLAS uses whatever threads it was started with).

    Parameters
    ----------
    sizes : sequence of int
        Collection sizes, each 10 to ``MAX_VECTORS``.
    dims : sequence of int
        Dimensions, each 1 to ``MAX_DIMS``.
    n_queries : int
        Queries per measurement, 1 to 10,000.
    k : int
        Neighbours wanted.
    n_clusters, center_scale : int, float
        The data, as in :func:`make_clustered_vectors`.
    n_threads : int
        FAISS threads, 1 to ``MAX_THREADS``.
    seed : int, numpy.random.Generator or None

    Returns
    -------
    experiment.Run
        Frame: one row per (library, n_dims, n_vectors): ``library`` ("numpy" or
        "FAISS Flat"), ``n_dims``, ``n_vectors``, ``qps``, ``ns_per_vector_dim`` (seconds
        per query / (n_vectors x n_dims), in ns). Summary: ``faiss_version``, ``n_threads``.
    """
    sizes = validate.sequence_of_positive_ints("sizes", sizes)
    dims = validate.sequence_of_positive_ints("dims", dims)
    if len(sizes) * len(dims) > MAX_SETTINGS:
        raise ValueError(f"sizes x dims must be at most {MAX_SETTINGS} points")
    for n_vectors in sizes:
        validate.int_in_range("sizes", n_vectors, 10, MAX_VECTORS)
    n_queries = validate.bounded_int("n_queries", n_queries, 10_000)
    k = validate.int_in_range("k", k, 1, min(min(sizes), MAX_K))
    n_threads = validate.bounded_int("n_threads", n_threads, MAX_THREADS)
    rng = validate.rng_from_seed(seed)
    faiss, previous = _faiss(n_threads)
    rows = []
    try:
        for n_dims in dims:
            # One data set per dimension, at the largest size; each size takes a prefix of it (the
            # vectors are independent draws, so a prefix is a sample of the same distribution).
            largest, queries = make_clustered_vectors(
                max(sizes),
                n_dims,
                n_clusters=n_clusters,
                center_scale=center_scale,
                n_queries=n_queries,
                seed=rng,
            )
            for n_vectors in sizes:
                base = largest[:n_vectors]
                flat = faiss.IndexFlatL2(n_dims)
                flat.add(base)
                for library, call in (
                    ("numpy", lambda base=base, queries=queries: brute_force_knn(base, queries, k)),
                    ("FAISS Flat", lambda flat=flat, queries=queries: flat.search(queries, k)),
                ):
                    # Median of 3 calls; a point whose one call already takes over 0.6 s (a whole
                    # batch over the largest collection, averaged over its queries) is timed fewer times.
                    seconds = timing.median_seconds(call, repeats=3, max_total_s=0.6)
                    rows.append(
                        {
                            "library": library,
                            "n_dims": n_dims,
                            "n_vectors": n_vectors,
                            "qps": n_queries / seconds,
                            "ns_per_vector_dim": seconds / n_queries / (n_vectors * n_dims) * 1e9,
                        }
                    )
    finally:
        faiss.omp_set_num_threads(previous)
    summary = {"faiss_version": faiss.__version__, "n_threads": n_threads}
    return experiment.Run.create(pd.DataFrame(rows), summary, faiss=faiss.__version__)


def measure_filtered_search(
    indexes: FaissIndexes,
    base: np.ndarray,
    queries: np.ndarray,
    *,
    allowed_shares: Sequence[float] = (0.5, 0.1, 0.01),
    k: int = 10,
    nprobe: int = 16,
    ef_search: int = 64,
    seed: int | np.random.Generator | None = 0,
) -> experiment.Run:
    """k-NN restricted to an allowed subset (a tenant, a permission): four strategies.

    For each share of allowed vectors (chosen at random), the exact answer comes from a
    pre-filter (gather the allowed vectors, exact search on them). Then:

    - ``post-filter HNSW``: search HNSW for k, drop results that are not allowed;
    - ``HNSW + IDSelector``: FAISS skips disallowed ids during the graph search;
    - ``IVF + IDSelector``: FAISS skips disallowed ids while scanning ``nprobe`` cells;
    - ``pre-filter, exact``: gather the allowed vectors and scan them all.

    Parameters
    ----------
    indexes : FaissIndexes
        Built on ``base`` by :func:`build_faiss_indexes`.
    base : array_like, shape (n_vectors, n_dims)
    queries : array_like, shape (n_queries, n_dims)
    allowed_shares : sequence of float
        Shares (0-1, exclusive of 0) of vectors each query may see.
    k : int
        Neighbours wanted.
    nprobe, ef_search : int
        Query-time settings of the IVF and HNSW indexes.
    seed : int, numpy.random.Generator or None
        Chooses the allowed subsets.

    Returns
    -------
    experiment.Run
        Frame: one row per (allowed_share, strategy): ``allowed_share``, ``strategy``,
        ``recall`` (0-1, against the exact filtered answer), ``results_per_query`` (mean
        allowed results returned, at most k), ``qps``. Summary: ``faiss_version``,
        ``n_threads``.
    """
    validate.instance("indexes", indexes, FaissIndexes)
    base = _as_matrix("base", base)
    queries = _as_matrix("queries", queries, max_rows=MAX_QUERIES)
    _same_dims(queries, base)
    if base.shape[0] != indexes.n_vectors:
        raise ValueError(
            f"base must be the {indexes.n_vectors:,} vectors the indexes hold, got {base.shape[0]:,}"
        )
    shares = [
        validate.float_in_range("allowed_shares", s, 0.0, 1.0, low_inclusive=False) for s in allowed_shares
    ]
    if not 1 <= len(shares) <= MAX_SETTINGS:
        raise ValueError(f"allowed_shares must hold 1 to {MAX_SETTINGS} values")
    k = validate.bounded_int("k", k, MAX_K)
    nprobe = validate.int_in_range("nprobe", nprobe, 1, indexes.settings["nlist"])
    ef_search = validate.int_in_range("ef_search", ef_search, k, 10_000)
    rng = validate.rng_from_seed(seed)
    faiss, previous = _faiss(indexes.n_threads)
    n_vectors = base.shape[0]
    rows = []
    try:
        for share in shares:
            n_allowed = max(k, int(round(share * n_vectors)))
            allowed = np.sort(rng.choice(n_vectors, size=n_allowed, replace=False)).astype(np.int64)
            mask = np.zeros(n_vectors, dtype=bool)
            mask[allowed] = True

            def pre_filter(allowed: np.ndarray = allowed) -> np.ndarray:
                _, local = faiss.knn(queries, base[allowed], k)
                return np.where(local >= 0, allowed[np.maximum(local, 0)], -1)

            def post_filter(mask: np.ndarray = mask) -> np.ndarray:
                found = _faiss_search(
                    faiss, indexes.indexes["HNSW"], queries, k, faiss.SearchParametersHNSW(efSearch=ef_search)
                )
                return np.where((found >= 0) & mask[np.maximum(found, 0)], found, -1)

            selector = faiss.IDSelectorBatch(allowed)
            strategies = {
                "pre-filter, exact": pre_filter,
                "post-filter HNSW": post_filter,
                "HNSW + IDSelector": lambda selector=selector: _faiss_search(
                    faiss,
                    indexes.indexes["HNSW"],
                    queries,
                    k,
                    faiss.SearchParametersHNSW(sel=selector, efSearch=ef_search),
                ),
                "IVF + IDSelector": lambda selector=selector: _faiss_search(
                    faiss,
                    indexes.indexes["IVFFlat"],
                    queries,
                    k,
                    faiss.SearchParametersIVF(sel=selector, nprobe=nprobe),
                ),
            }
            truth = None
            for strategy, call in strategies.items():
                found: list = []
                seconds = timing.median_seconds(
                    lambda call=call, found=found: found.append(call()),
                    repeats=3,
                    max_total_s=0.4,  # as in measure_faiss: a batch over 0.2 s is timed fewer times
                )
                result = found[-1]
                if truth is None:  # the pre-filter runs first: its answer is the exact one, not recomputed
                    truth = result
                rows.append(
                    {
                        "allowed_share": share,
                        "strategy": strategy,
                        "recall": recall_at_k(result, truth),
                        "results_per_query": float((result >= 0).sum(axis=1).mean()),
                        "qps": queries.shape[0] / seconds,
                    }
                )
    finally:
        faiss.omp_set_num_threads(previous)
    summary = {"faiss_version": indexes.version, "n_threads": indexes.n_threads}
    return experiment.Run.create(pd.DataFrame(rows), summary, faiss=indexes.version)


def exact_batch_sentence(latency: experiment.Run, n_queries: int) -> str:
    """What the page says about batching exact (Flat) search, from the measured gain.

    Parameters
    ----------
    latency : syslab.experiment.Run
        :func:`measure_query_latency`'s result (Flat's ``batch_qps`` and ``single_qps``, and the
        summary's ``faiss_version`` and ``blas_threshold``).
    n_queries : int
        Queries in the measured batch.

    Returns
    -------
    str
        One sentence: whether batching paid (a gain of 1.2 or more) and through which of FAISS's two
        paths the batch ran: the per-query loop below its BLAS threshold, one matrix product above.
    """
    validate.instance("latency", latency, experiment.Run)
    n = validate.bounded_int("n_queries", n_queries, 10_000)
    flat = validate.frame_columns("latency", latency.frame, ["method", "batch_qps", "single_qps"])
    flat = flat.set_index("method").loc["Flat"]
    gain = float(flat["batch_qps"] / flat["single_qps"])
    threshold = int(latency.summary["blas_threshold"])
    version = latency.summary["faiss_version"]
    if gain >= 1.2 and n < threshold:
        return (
            f"Batching paid for exact search too, from fewer calls alone: FAISS {version} still ran"
            f" its per-query loop (it computes a batch as one matrix product only from {threshold:,}"
            " queries per call)."
        )
    if gain >= 1.2:
        return "Batching paid for exact search too: the whole batch shared one matrix product (BLAS)."
    if n < threshold:
        return (
            f"Exact search gained little: FAISS {version} computes a batch's distances as one matrix"
            f" product (BLAS) only from {threshold:,} queries per call, so these {n:,} ran its"
            " per-query SIMD loop either way."
        )
    return (
        f"Exact search gained little: the batch took FAISS {version}'s BLAS path (from {threshold:,}"
        " queries per call), which pays only when the BLAS library is tuned for this CPU."
    )


def summarize_tradeoff(results: pd.DataFrame, target_recall: float = 0.95) -> pd.DataFrame:
    """The fastest setting of each method that reaches ``target_recall``.

    Parameters
    ----------
    results : pandas.DataFrame
        Rows with ``method``, ``recall`` and ``qps`` (and optionally ``setting``,
        ``build_s``, ``bytes_per_vector``), e.g. :func:`measure_faiss`'s frame.
    target_recall : float
        Recall@k (0-1) a setting must reach.

    Returns
    -------
    pandas.DataFrame
        One row per method, in first-seen order: the input's columns for the fastest
        setting with ``recall >= target_recall`` (or, when none reaches it, the setting with
        the highest recall), plus ``reached`` (bool).
    """
    results = validate.frame_columns("results", results, ["method", "recall", "qps"])
    target_recall = validate.probability("target_recall", target_recall)
    if results.empty:
        raise ValueError("results must have at least one row")
    rows = []
    for _, group in results.groupby("method", sort=False):
        good = group[group["recall"] >= target_recall]
        if len(good):
            row = good.loc[good["qps"].idxmax()].copy()
            row["reached"] = True
        else:
            row = group.loc[group["recall"].idxmax()].copy()
            row["reached"] = False
        rows.append(row)
    return pd.DataFrame(rows).reset_index(drop=True)


# =========================================================================== plots


def plot_brute_force_scaling(timings: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Nanoseconds per vector-dimension against collection size, one line per (library, dimension).

    Parameters
    ----------
    timings : pandas.DataFrame
        :func:`measure_brute_force`'s frame (``library``, ``n_dims``, ``n_vectors``, ``ns_per_vector_dim``).
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    timings = validate.frame_columns(
        "timings", timings, ["library", "n_dims", "n_vectors", "ns_per_vector_dim"]
    )
    ax = axes_or_new(ax)
    styles = {"numpy": "--", "FAISS Flat": "-"}
    for (library, n_dims), group in timings.groupby(["library", "n_dims"], sort=False):
        ax.plot(
            group["n_vectors"],
            group["ns_per_vector_dim"],
            marker="o",
            linestyle=styles.get(library, "-"),
            label=f"{library}, d = {n_dims}",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    label(ax, "vectors in the collection (log scale)", "ns per vector-dimension (log)", legend=True)
    ax.legend(fontsize=8, ncol=2)
    return ax


def plot_distance_contrast(contrast: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Relative contrast against dimension, log-log, one line per data set.

    Parameters
    ----------
    contrast : pandas.DataFrame
        :func:`simulate_distance_contrast`'s frames (``data``, ``n_dims``, ``relative_contrast``).
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    contrast = validate.frame_columns("contrast", contrast, ["data", "n_dims", "relative_contrast"])
    ax = axes_or_new(ax)
    for data, group in contrast.groupby("data", sort=False):
        ax.plot(group["n_dims"], group["relative_contrast"], marker="o", label=str(data))
    ax.set_xscale("log")
    ax.set_yscale("log")
    label(ax, "dimensions (log scale)", "(farthest - nearest) / nearest", legend=True)
    return ax


def plot_recall_vs_qps(
    results: pd.DataFrame, ax: Axes | None = None, *, label_column: str = "method"
) -> Axes:
    """Recall@k against queries per second (log), one line per ``label_column`` value (ann-benchmarks style).

    Parameters
    ----------
    results : pandas.DataFrame
        Columns ``recall``, ``qps`` and ``label_column``.
    ax : matplotlib.axes.Axes, optional
    label_column : str
        The column naming each line.

    Returns
    -------
    matplotlib.axes.Axes
    """
    results = validate.frame_columns("results", results, ["recall", "qps", label_column])
    ax = axes_or_new(ax)
    for name, group in results.groupby(label_column, sort=False):
        ordered = group.sort_values("recall")
        ax.plot(ordered["recall"], ordered["qps"], marker="o", label=str(name))
    ax.set_yscale("log")
    label(ax, "recall@10", "queries per second (log scale)", legend=True)
    ax.legend(fontsize=8)
    return ax


def plot_filtered_search(results: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Recall of each filtered-search strategy against the share of vectors allowed.

    Parameters
    ----------
    results : pandas.DataFrame
        :func:`measure_filtered_search`'s frame (``allowed_share``, ``strategy``, ``recall``).
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    results = validate.frame_columns("results", results, ["allowed_share", "strategy", "recall"])
    ax = axes_or_new(ax)
    for strategy, group in results.groupby("strategy", sort=False):
        ordered = group.sort_values("allowed_share")
        ax.plot(ordered["allowed_share"] * 100, ordered["recall"], marker="o", label=str(strategy))
    ax.set_xscale("log")
    label(ax, "vectors the query may see (%, log scale)", "recall@10 of the filtered answer", legend=True)
    ax.legend(fontsize=8)
    return ax
