"""syslab.vector_search: exact k-NN against a plain loop, and the approximate indexes against it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syslab import experiment
from syslab import vector_search as vs


@pytest.fixture(scope="module")
def data():
    base, queries = vs.make_clustered_vectors(
        20_000, 32, n_clusters=200, center_scale=2.0, n_queries=50, seed=3
    )
    truth, _ = vs.brute_force_knn(base, queries, 10)
    return base, queries, truth


def test_generator_is_seeded_and_shaped():
    a, qa = vs.make_clustered_vectors(100, 8, n_queries=5, seed=1)
    b, qb = vs.make_clustered_vectors(100, 8, n_queries=5, seed=1)
    assert a.shape == (100, 8) and qa.shape == (5, 8) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a[0, :3], [-0.7795166, -1.716042, -1.1323764], rtol=1e-6)


@given(n=st.integers(5, 200), dim=st.integers(1, 16), k=st.integers(1, 5), seed=st.integers(0, 1000))
@settings(max_examples=30, deadline=None)
def test_brute_force_matches_a_plain_loop(n, dim, k, seed):
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n, dim)).astype(np.float32)
    queries = rng.standard_normal((7, dim)).astype(np.float32)
    found, distances = vs.brute_force_knn(base, queries, k, batch_size=3)
    for i, query in enumerate(queries):
        exact = ((base.astype(np.float64) - query) ** 2).sum(axis=1)
        # The k-th distance must match exactly (ties may swap indices, never distances).
        np.testing.assert_allclose(np.sort(exact)[:k], distances[i], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(exact[found[i]], distances[i], rtol=1e-4, atol=1e-4)


def test_recall_at_k():
    truth = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    assert vs.recall_at_k(truth, truth) == 1.0
    assert vs.recall_at_k(np.array([[1, 2, -1, -1], [9, 9, 9, 9]]), truth) == pytest.approx(2 / 8)


def test_ivf_scanning_every_cell_is_exact(data):
    base, queries, truth = data
    index = vs.IVFIndex.build(base, 32, seed=1)
    found, scanned = index.search(queries, 10, nprobe=32)
    assert vs.recall_at_k(found, truth) == 1.0
    assert scanned == pytest.approx(1.0)
    # Each vector is filed exactly once.
    assert np.array_equal(np.sort(index.ids), np.arange(base.shape[0]))


def test_ivf_recall_rises_and_work_grows_with_nprobe(data):
    base, queries, truth = data
    index = vs.IVFIndex.build(base, 64, seed=1)
    run = vs.measure_index(index.search, queries, truth, [{"nprobe": p} for p in (1, 4, 16)])
    assert isinstance(run, experiment.Run)
    results = run.frame
    assert results["recall"].is_monotonic_increasing
    assert results["scanned_share"].is_monotonic_increasing
    # Cells of ~1/64 of the data: one probe scans a few percent; well-separated clusters give high recall.
    assert results["scanned_share"].iloc[0] < 0.05
    assert results["recall"].iloc[-1] > 0.95


def test_cluster_structure_changes_the_curve():
    # The same index on diffuse data (clusters overlapping) has lower recall at the same nprobe.
    scores = []
    for scale in (3.0, 0.5):
        base, queries = vs.make_clustered_vectors(
            20_000, 32, n_clusters=200, center_scale=scale, n_queries=50, seed=4
        )
        truth, _ = vs.brute_force_knn(base, queries, 10)
        found, _ = vs.IVFIndex.build(base, 64, seed=1).search(queries, 10, nprobe=2)
        scores.append(vs.recall_at_k(found, truth))
    assert scores[0] > scores[1] + 0.2


def test_lsh_more_tables_more_recall(data):
    base, queries, truth = data
    few = vs.LSHIndex.build(base, n_tables=2, n_bits=8, seed=2).search(queries, 10)
    many = vs.LSHIndex.build(base, n_tables=16, n_bits=8, seed=2).search(queries, 10)
    assert vs.recall_at_k(many[0], truth) > vs.recall_at_k(few[0], truth)
    assert many[1] > few[1]


def test_lsh_collision_probability_matches_charikar():
    # P(same bit) = 1 - theta / pi for random hyperplanes, through the library's own hash.
    rng = np.random.default_rng(0)
    planes = rng.standard_normal((20_000, 2)).astype(np.float32)
    for theta in (0.3, 1.0, 2.0):
        pair = np.array([[1.0, 0.0], [np.cos(theta), np.sin(theta)]], dtype=np.float32)
        bits = vs.hyperplane_bits(pair, planes)
        # 20,000 planes: standard error < 0.0036; tolerance 0.015.
        assert (bits[0] == bits[1]).mean() == pytest.approx(1 - theta / np.pi, abs=0.015)


def test_lsh_index_signatures_use_the_hyperplane_hash():
    # The index's signature of a vector is its hyperplane bits (about the centre) read as a number.
    base = np.random.default_rng(1).standard_normal((50, 4)).astype(np.float32)
    index = vs.LSHIndex.build(base, n_tables=1, n_bits=5, seed=3)
    bits = vs.hyperplane_bits(base - index.center, index.projections[0])
    expected = bits.astype(np.int64) @ (1 << np.arange(5))
    np.testing.assert_array_equal(index._codes(base, 0), expected)


def test_pstable_lsh_near_points_collide_more_often():
    # The Euclidean family: the chance two points share a slot falls with their distance.
    rng = np.random.default_rng(2)
    base = rng.standard_normal((2000, 16)).astype(np.float32)
    index = vs.LSHIndex.build(base, n_tables=200, n_bits=1, family="pstable", bucket_width=4.0, seed=2)
    direction = rng.standard_normal(16).astype(np.float32)
    direction /= np.linalg.norm(direction)
    shares = []
    for distance in (0.5, 2.0, 8.0):
        pair = np.stack([base[0], base[0] + distance * direction])
        same = [index._codes(pair, t) for t in range(200)]
        shares.append(np.mean([c[0] == c[1] for c in same]))
    assert shares[0] > shares[1] > shares[2]
    # Datar et al.: p(r) = 1 - 2 Phi(-w/r) - 2r/(sqrt(2 pi) w) (1 - exp(-w^2 / 2r^2)); at r = 2, w = 4: 0.61.
    assert shares[1] == pytest.approx(0.609, abs=0.09)


def test_distances_concentrate_with_dimension():
    contrast = vs.simulate_distance_contrast([2, 10, 100, 1000], n_points=3000, seed=1)
    assert contrast["relative_contrast"].is_monotonic_decreasing
    # Beyer et al.: contrast -> 0; at d = 1000 the farthest point is < 25% farther than the nearest.
    assert contrast["relative_contrast"].iloc[-1] < 0.25
    assert contrast["relative_contrast"].iloc[0] > 10


def test_kmeans_reduces_inertia():
    base, _ = vs.make_clustered_vectors(5000, 8, n_clusters=20, center_scale=4.0, seed=5)
    inertia = []
    for iterations in (1, 10):
        centroids, assignment = vs.kmeans(base, 20, iterations=iterations, seed=5)
        inertia.append(float(((base - centroids[assignment]) ** 2).sum()))
    assert inertia[1] <= inertia[0]


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: vs.brute_force_knn(np.zeros((0, 3)), np.zeros((1, 3))), ValueError, "base"),
        (lambda: vs.brute_force_knn(np.zeros((5, 3)), np.zeros((1, 4))), ValueError, "dimension"),
        (lambda: vs.brute_force_knn(np.zeros((5, 3)), np.zeros((1, 3)), k=6), ValueError, "k"),
        (lambda: vs.brute_force_knn(np.full((5, 3), np.nan), np.zeros((1, 3))), ValueError, "finite"),
        (lambda: vs.make_clustered_vectors(0, 3), ValueError, "n"),
        (lambda: vs.IVFIndex.build(np.zeros((5, 3)), 6), ValueError, "nlist"),
        (lambda: vs.LSHIndex.build(np.zeros((5, 3)), n_bits=70), ValueError, "n_bits"),
        (lambda: vs.recall_at_k(np.zeros(3), np.zeros((1, 3))), ValueError, "found"),
        (lambda: vs.simulate_distance_contrast([]), ValueError, "dims"),
        (lambda: vs.kmeans(np.zeros((20, 3)), 8, iterations=10**12), ValueError, "iterations"),
        (lambda: vs.IVFIndex.build(np.zeros((20, 3)), 4, iterations=10**12), ValueError, "iterations"),
        (lambda: vs.make_clustered_vectors(10**12, 3), ValueError, "n_vectors"),
        (lambda: vs.make_clustered_vectors(10**6, 4000), ValueError, "n_dims"),
        (lambda: vs.LSHIndex.build(np.zeros((5, 3)), n_tables=10**9), ValueError, "n_tables"),
        (lambda: vs.LSHIndex.build(np.zeros((5, 3)), family="e2"), ValueError, "family"),
        (
            lambda: vs.measure_index(len, np.zeros((2, 3)), np.zeros((2, 1)), [{}] * 1000),
            ValueError,
            "settings",
        ),
        (lambda: vs.summarize_tradeoff(__import__("pandas").DataFrame({"x": [1]})), ValueError, "results"),
    ],
)
def test_bad_input_is_named(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.fixture(scope="module")
def faiss_run(data):
    base, queries, truth = data
    indexes = vs.build_faiss_indexes(base, nlist=64, pq_m=16, train_size=5000, seed=1)
    return base, queries, truth, indexes


def test_numpy_ivf_recall_matches_faiss_ivfflat(faiss_run):
    # The teaching IVF and FAISS's IndexIVFFlat are the same algorithm: recall within 0.05 at each nprobe.
    base, queries, truth, indexes = faiss_run
    run = vs.measure_faiss(indexes, queries, truth, nprobes=[1, 4, 16], ef_searches=[16], repeats=1)
    faiss_recall = run.frame.query("method == 'IVFFlat'").set_index("setting")["recall"]
    ivf = vs.IVFIndex.build(base, 64, train_size=5000, seed=1)
    for nprobe in (1, 4, 16):
        found, _ = ivf.search(queries, 10, nprobe=nprobe)
        assert vs.recall_at_k(found, truth) == pytest.approx(faiss_recall[nprobe], abs=0.05)
    flat = run.frame.query("method == 'Flat'")
    assert flat["recall"].iloc[0] == 1.0
    assert run.summary["n_threads"] == 1 and run.summary["faiss_version"]


def test_faiss_hnsw_and_pq_trade_memory(faiss_run):
    base, queries, truth, indexes = faiss_run
    run = vs.measure_faiss(indexes, queries, truth, nprobes=[64], ef_searches=[10, 128], repeats=1)
    frame = run.frame.set_index(["method", "setting"])
    assert frame.loc[("HNSW", 128), "recall"] >= frame.loc[("HNSW", 10), "recall"]
    assert frame.loc[("HNSW", 128), "recall"] > 0.95
    # Memory: PQ codes (16 x 4 bits = 8 bytes) << raw floats (128 bytes) < HNSW (floats + links).
    per_vector = {name: size / base.shape[0] for name, size in indexes.memory_bytes.items()}
    assert per_vector["IVFPQ"] < 0.3 * per_vector["Flat"] < per_vector["HNSW"]
    assert per_vector["Flat"] == pytest.approx(128, rel=0.01)
    best = vs.summarize_tradeoff(run.frame, 0.9)
    assert set(best["method"]) == {"Flat", "IVFFlat", "HNSW", "IVFPQ"}


def test_filtered_search_post_filter_loses_results(faiss_run):
    base, queries, truth, indexes = faiss_run
    run = vs.measure_filtered_search(
        indexes, base, queries, allowed_shares=[0.5, 0.02], nprobe=64, ef_search=64
    )
    frame = run.frame.set_index(["allowed_share", "strategy"])
    assert frame.loc[(0.02, "pre-filter, exact"), "recall"] == 1.0
    # Post-filtering keeps about share x k of the results.
    assert frame.loc[(0.02, "post-filter HNSW"), "results_per_query"] < 2
    assert frame.loc[(0.5, "post-filter HNSW"), "results_per_query"] == pytest.approx(5, abs=2)
    # Scanning every IVF cell with the selector is exact.
    assert frame.loc[(0.02, "IVF + IDSelector"), "recall"] == pytest.approx(1.0)


def test_query_latency_one_at_a_time_and_batched(faiss_run):
    base, queries, truth, indexes = faiss_run
    run = vs.measure_query_latency(indexes, queries, nprobe=8, ef_search=32)
    frame = run.frame.set_index("method")
    assert set(frame.index) == {"Flat", "IVFFlat", "HNSW", "IVFPQ"}
    assert (frame["single_p99_ms"] >= frame["single_p50_ms"]).all()
    assert (frame[["batch_qps", "single_qps"]] > 0).all().all()


def test_latency_reuses_the_batch_timing_of_measure_faiss(faiss_run):
    base, queries, truth, indexes = faiss_run
    run = vs.measure_faiss(
        indexes, queries, truth, nprobes=[1, 8], ef_searches=[32], pq_nprobes=[8], once_nprobes=[2, 8]
    )
    frame = run.frame.set_index(["method", "setting"])
    # IVFPQ is swept over its own nprobes; IVFFlat over nprobes and the once-timed extras, in order.
    assert list(frame.loc["IVFPQ"].index) == [8] and list(frame.loc["IVFFlat"].index) == [1, 2, 8]
    latency = vs.measure_query_latency(indexes, queries, nprobe=8, ef_search=32, batch=run).frame
    reused = latency.set_index("method")["batch_qps"]
    for method, setting in (("Flat", 0), ("IVFFlat", 8), ("HNSW", 32), ("IVFPQ", 8)):
        assert reused[method] == pytest.approx(frame.loc[(method, setting), "qps"])
    with pytest.raises(ValueError, match="batch"):
        vs.measure_query_latency(indexes, queries[:10], batch=run)


def test_exact_batch_sentence_follows_the_measurement_and_faiss_threshold():
    import pandas as pd

    def latency(batch_qps, threshold):
        frame = pd.DataFrame(
            {"method": ["Flat", "HNSW"], "batch_qps": [batch_qps, 9.0], "single_qps": [100.0, 8.0]}
        )
        summary = {"faiss_version": "1.15.1", "n_threads": 1, "blas_threshold": threshold}
        return experiment.Run.create(frame, summary)

    assert "shared one matrix product" in vs.exact_batch_sentence(latency(150.0, 20), 200)
    assert "fewer calls alone" in vs.exact_batch_sentence(latency(150.0, 128_000), 200)
    below = vs.exact_batch_sentence(latency(101.0, 128_000), 200)
    assert "128,000" in below and "these 200" in below
    above = vs.exact_batch_sentence(latency(101.0, 20), 200)
    assert "BLAS path" in above and "tuned" in above
    with pytest.raises(TypeError, match="latency"):
        vs.exact_batch_sentence(pd.DataFrame(), 200)
    with pytest.raises(ValueError, match="n_queries"):
        vs.exact_batch_sentence(latency(150.0, 20), 0)
