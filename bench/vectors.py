"""``rag bench vectors``: ingest and query figures of each vector backend at ``n`` vectors.

Both backends go through the code ``rag index`` and the server use (``write_vectors`` /
``open_vectors`` with a ``VectorConfig``), on the same seeded, clustered, normalised
384-d vectors, measured in one run: ingest (build, insert, index, nprobe calibration),
single-query latency (what a request does), recall@10 against exact search, disk size and
the memory of the process (Milvus Lite runs its engine in a child process, counted too).
"""

from __future__ import annotations

import gc
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import machine, pct, rss_mb
from bench.scale import cluster_centres, clustered_vectors

log = logging.getLogger(__name__)


def _tree_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def _children_rss_mb() -> float:
    """Resident memory of this process's children (the Milvus Lite engine)."""
    total = 0.0
    for task in Path("/proc/self/task").iterdir():
        children = (task / "children").read_text().split() if (task / "children").exists() else []
        total += sum(rss_mb(pid) for pid in children)
    return total


def run_backend(
    backend: str, data: np.ndarray, queries: np.ndarray, truth: np.ndarray, *, timed: int
) -> dict[str, Any]:
    """Write, open and query one backend; figures keyed without the backend prefix."""
    from index.vectors import VectorConfig, open_vectors, write_vectors

    config = VectorConfig(backend=backend)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory(prefix=f"rag-bench-{backend}-") as tmp:
        gen = Path(tmp)
        rss0 = rss_mb()
        t0 = time.perf_counter()
        placed = write_vectors(config, gen, "bench", data, np.arange(len(data)))
        ingest_s = time.perf_counter() - t0
        gc.collect()
        manifest = {**placed, "passages": len(data)}
        t0 = time.perf_counter()
        index = open_vectors(gen, manifest, config)
        open_s = time.perf_counter() - t0
        try:
            index.search(queries[:5], 10)  # connect / page in
            _, found = index.search(queries, 10)
            lat = []
            for q in queries[:timed]:
                t0 = time.perf_counter()
                index.search(q.reshape(1, -1), 10)
                lat.append((time.perf_counter() - t0) * 1000)
            served_mb = rss_mb() - rss0 + _children_rss_mb()
        finally:
            index.close()
        hits = sum(len(set(f) & set(t)) for f, t in zip(found, truth, strict=True))
        return {
            "index": placed.get("faiss_factory") or placed.get("milvus_index"),
            "nprobe": placed.get("nprobe", 0),
            "ingest_s": round(ingest_s, 1),
            "ingest_vectors_per_s": round(len(data) / ingest_s),
            "open_s": round(open_s, 2),
            "recall_at_10": round(hits / truth.size, 4),
            "p50_ms": round(pct(lat, 50), 2),
            "p95_ms": round(pct(lat, 95), 2),
            "disk_mb": round(_tree_mb(gen), 1),
            "served_rss_mb": round(served_mb, 1),
        }


def run(
    n: int, *, backends: tuple[str, ...] = ("faiss", "milvus"), queries: int = 200, seed: int = 0
) -> dict[str, Any]:
    """Figures of each backend at ``n`` vectors, with ratios against the first one."""
    import faiss

    centres = cluster_centres(n, seed=seed)
    data = clustered_vectors(n, centres, seed=seed + 1)
    qs = clustered_vectors(queries, centres, seed=seed + 2)
    exact = faiss.IndexFlatIP(data.shape[1])
    exact.add(data)
    _, truth = exact.search(qs, 10)
    del exact
    figures: dict[str, Any] = {"vectors": n}
    for backend in backends:
        log.info("vectors: %s at %d", backend, n)
        result = run_backend(backend, data, qs, truth, timed=queries)
        figures.update({f"{backend}_{k}": v for k, v in result.items()})
    if len(backends) > 1:
        base, other = backends[0], backends[1]
        figures[f"{other}_vs_{base}_ingest"] = round(
            figures[f"{other}_ingest_s"] / max(figures[f"{base}_ingest_s"], 1e-9), 2
        )
        figures[f"{other}_vs_{base}_p50"] = round(
            figures[f"{other}_p50_ms"] / max(figures[f"{base}_p50_ms"], 1e-9), 2
        )
    figures.update(machine())
    return figures
