"""``rag bench scale``: the dense and lexical indexes at a size the bundled corpus is not.

Dense: ``n`` seeded, clustered, normalised 384-d vectors; the FAISS factory the index
build would choose for that size (``index.store.choose_factory``) against exact search
over the same vectors, both measured in this run. Recall@10 is against the exact top
10; latency is single-query (what a request does). The index is written to disk and
read back memory-mapped, as a server opens a large read-only index.

Lexical: ``n`` short synthetic passages over a Zipf vocabulary in the project's BM25
index, queried with two-to-four-word queries.
"""

from __future__ import annotations

import gc
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import machine, pct, rss_mb

log = logging.getLogger(__name__)
DIM = 384
NPROBES = (4, 8, 16, 32, 64, 128)
# Per-dimension noise around a sub-topic centre (centres are spread 0.7 around a topic, topics
# 1.0). Distances concentrate in 384 dimensions, so below ~1.5 every neighbour shares its
# sub-topic and IVF looks perfect; at 2.0 neighbourhoods overlap as in real embeddings.
NOISE = 2.0


def cluster_centres(n: int, *, dim: int = DIM, seed: int = 0) -> np.ndarray:
    """Sub-topic centres for ``n`` points: ``n // 10_000`` topics, ~100 points per sub-topic."""
    rng = np.random.default_rng(seed)
    topics = rng.standard_normal((max(4, n // 10_000), dim)).astype(np.float32)
    subs = max(len(topics), n // 100)
    return topics[rng.integers(0, len(topics), subs)] + 0.7 * rng.standard_normal(
        (subs, dim)
    ).astype(np.float32)


def clustered_vectors(
    n: int, centres: np.ndarray, *, seed: int = 0, chunk: int = 100_000
) -> np.ndarray:
    """``n`` unit vectors, each a random sub-topic centre plus isotropic noise."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, centres.shape[1]), dtype=np.float32)
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        pick = rng.integers(0, len(centres), hi - lo)
        x = centres[pick] + NOISE * rng.standard_normal((hi - lo, centres.shape[1])).astype(
            np.float32
        )
        out[lo:hi] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def _single_query_ms(index: Any, queries: np.ndarray, k: int = 10) -> list[float]:
    """Per-query latency, one thread (as the service searches: one question per call)."""
    import faiss

    faiss.omp_set_num_threads(1)
    times = []
    try:
        for q in queries:
            t0 = time.perf_counter()
            index.search(q.reshape(1, -1), k)
            times.append((time.perf_counter() - t0) * 1000)
    finally:
        faiss.omp_set_num_threads(os.cpu_count() or 1)
    return times


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(set(f) & set(t)) for f, t in zip(found, truth, strict=True))
    return hits / truth.size


def run_dense(
    n: int,
    *,
    queries: int = 200,
    seed: int = 0,
    nprobe: int = 0,
    factory: str | None = None,
) -> dict[str, Any]:
    """Build, save, memory-map and query the automatically chosen index for ``n`` vectors.

    ``nprobe`` 0 lets the build calibrate it (as ``rag index`` does); the headline figures
    are for the nprobe the index was built with, and a sweep shows the trade-off.
    """
    import faiss

    from index.faiss_store import build_faiss, choose_factory, index_nprobe

    rss0 = rss_mb()
    t0 = time.perf_counter()
    centres = cluster_centres(n, seed=seed)
    data = clustered_vectors(n, centres, seed=seed + 1)
    qs = clustered_vectors(queries, centres, seed=seed + 2)
    gen_s = time.perf_counter() - t0
    factory = factory or choose_factory(n)
    log.info("dense: %d vectors, factory %s", n, factory)
    t0 = time.perf_counter()
    index = build_faiss(data, np.arange(n), factory, nprobe=nprobe)
    built_nprobe = index_nprobe(index)
    build_s = time.perf_counter() - t0
    exact = faiss.IndexFlatIP(DIM)
    exact.add(data)
    _, truth = exact.search(qs, 10)
    exact_ms = _single_query_ms(exact, qs[: min(queries, 50)])
    del exact
    with tempfile.TemporaryDirectory(prefix="rag-bench-scale-") as tmp:
        path = str(Path(tmp) / "dense.faiss")
        faiss.write_index(index, path)
        file_mb = Path(path).stat().st_size / 2**20
        del index, data
        gc.collect()
        rss_before_load = rss_mb()
        t0 = time.perf_counter()
        index = faiss.read_index(path, faiss.IO_FLAG_MMAP)
        load_s = time.perf_counter() - t0
        rss_loaded = rss_mb()
        sweep = []
        try:
            ivf = faiss.extract_index_ivf(index)
        except RuntimeError:
            ivf = None
        for probe in sorted({*NPROBES, built_nprobe}) if ivf is not None else (0,):
            if ivf is not None:
                ivf.nprobe = probe
            _, found = index.search(qs, 10)
            lat = _single_query_ms(index, qs)
            sweep.append(
                {
                    "nprobe": probe,
                    "recall_at_10": round(_recall(found, truth), 4),
                    "p50_ms": round(pct(lat, 50), 3),
                    "p95_ms": round(pct(lat, 95), 3),
                }
            )
        rss_queried = rss_mb()
    chosen = next(s for s in sweep if s["nprobe"] == built_nprobe)
    return {
        "vectors": n,
        "factory": factory,
        "nprobe": chosen["nprobe"],
        "recall_at_10": chosen["recall_at_10"],
        "p50_ms": chosen["p50_ms"],
        "p95_ms": chosen["p95_ms"],
        "exact_p50_ms": round(pct(exact_ms, 50), 3),
        "speedup_vs_exact": round(pct(exact_ms, 50) / max(chosen["p50_ms"], 1e-6), 1),
        "build_s": round(build_s, 2),
        "generate_s": round(gen_s, 2),
        "file_mb": round(file_mb, 1),
        "load_s": round(load_s, 3),
        "rss_mb": round(rss_queried - rss0, 1),
        "rss_after_mmap_load_mb": round(rss_loaded - rss_before_load, 1),
        "rss_served_mb": round(rss_queried - rss_before_load, 1),
        "smallest_nprobe_for_0.95": next(
            (x["nprobe"] for x in sweep if x["recall_at_10"] >= 0.95), None
        ),
        "sweep": sweep,
    }


def synthetic_word(i: int) -> str:
    """The ``i``-th word of the synthetic vocabulary: letters only, so the analyser keeps it."""
    letters = ""
    while True:
        i, r = divmod(i, 26)
        letters += chr(ord("a") + r)
        if not i:
            break
    return "qz" + letters


def synthetic_passages(n: int, *, vocab: int = 50_000, seed: int = 0) -> list[str]:
    """``n`` passages of 8-24 words drawn from a Zipf-distributed vocabulary."""
    rng = np.random.default_rng(seed)
    words = np.array([synthetic_word(i) for i in range(vocab)])
    lengths = rng.integers(8, 25, n)
    ranks = np.minimum(rng.zipf(1.3, int(lengths.sum())), vocab) - 1
    out, pos = [], 0
    for length in lengths:
        out.append(" ".join(words[ranks[pos : pos + length]]))
        pos += length
    return out


def run_lexical(n: int, *, queries: int = 200, seed: int = 0) -> dict[str, Any]:
    """Index ``n`` synthetic passages with the project's BM25 index and time queries."""
    from index.lexical import LexicalIndex
    from index.textnorm import lexical_terms

    rss0 = rss_mb()
    texts = synthetic_passages(n, seed=seed)
    t0 = time.perf_counter()
    lex = LexicalIndex.build(texts)
    build_s = time.perf_counter() - t0
    del texts
    rng = np.random.default_rng(seed + 1)
    qs = [  # analysed like the indexed text, as the service does with a question
        lexical_terms(
            " ".join(
                synthetic_word(int(min(r, 50_000)) - 1) for r in rng.zipf(1.3, rng.integers(2, 5))
            )
        )
        for _ in range(queries)
    ]
    lat = []
    for terms in qs:
        t0 = time.perf_counter()
        lex.scores(terms)
        lat.append((time.perf_counter() - t0) * 1000)
    known = sum(any(lex.knows(t) for t in terms) for terms in qs)
    return {
        "passages": n,
        "queries_with_known_terms": known,
        "build_s": round(build_s, 2),
        "p50_ms": round(pct(lat, 50), 3),
        "p95_ms": round(pct(lat, 95), 3),
        "rss_mb": round(rss_mb() - rss0, 1),
    }


def run(
    n: int,
    *,
    queries: int = 200,
    lexical: bool = True,
    seed: int = 0,
    nprobe: int = 0,
    factory: str | None = None,
) -> dict[str, Any]:
    """Dense (and lexical) figures at ``n``; the headline keys are the dense index's.

    ``factory`` overrides the automatic choice (to compare alternatives).
    """
    dense = run_dense(n, queries=queries, seed=seed, nprobe=nprobe, factory=factory)
    figures: dict[str, Any] = {k: v for k, v in dense.items() if k != "sweep"}
    figures["nprobe_sweep"] = dense["sweep"]
    if lexical:
        lex = run_lexical(n, queries=queries, seed=seed)
        figures.update({f"lexical_{k}": v for k, v in lex.items()})
    figures["targets"] = {"recall_at_10": 0.95, "p95_ms": 10, "speedup_vs_exact": 20}
    figures.update(machine())
    return figures
