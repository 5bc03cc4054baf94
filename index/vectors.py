"""Where passage vectors live: one protocol, two backends chosen by configuration.

* ``faiss`` (default): a FAISS file inside each index generation, memory-mapped when large.
* ``milvus``: a Milvus collection through ``pymilvus``. With no URI each generation holds
  its own Milvus Lite file (the same C++ engine, embedded, one process at a time); with a
  URI (``http://host:19530``) every generation is a collection on that Milvus server or
  cluster, which any number of API replicas can search at once.

The manifest records the backend and where its vectors are, so a reader never guesses.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from index.errors import ConfigError

Backend = Literal["faiss", "milvus"]
BACKENDS: tuple[Backend, ...] = ("faiss", "milvus")
NPROBE_LADDER = (4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256)
EXACT_UP_TO = 10_000
RECALL_TARGET = 0.95


def ivf_lists(n: int) -> int:
    """IVF lists for ``n`` vectors: ``4*sqrt(n)`` (txtai's rule), at least 39 vectors each."""
    return max(16, min(int(4 * math.sqrt(n)), n // 39))


@dataclass(frozen=True)
class VectorConfig:
    """How and where passage vectors are stored (from ``RAG_VECTOR_*``/``RAG_MILVUS_*``)."""

    backend: Backend = "faiss"
    faiss_factory: str = "auto"
    nprobe: int = 0
    milvus_uri: str = ""
    milvus_token: str = field(default="", repr=False)
    milvus_collection: str = "rag_passages"
    milvus_shards: int = 1
    milvus_replicas: int = 1
    milvus_index: str = "auto"

    def __post_init__(self) -> None:
        """Refuse unknown backends with the valid names."""
        if self.backend not in BACKENDS:
            raise ConfigError(
                f"unknown vector backend {self.backend!r}: use one of {', '.join(BACKENDS)}"
            )

    def build_params(self) -> dict[str, Any]:
        """The settings whose change must rebuild the vectors (part of the corpus checksum)."""
        if self.backend == "faiss":
            return {"vectors": "faiss", "factory": self.faiss_factory}
        return {
            "vectors": "milvus",
            "milvus_uri": self.milvus_uri,
            "milvus_collection": self.milvus_collection,
            "milvus_index": self.milvus_index,
            "milvus_shards": self.milvus_shards,
        }


class VectorIndex(Protocol):
    """A loaded, read-only set of passage vectors searched by inner product."""

    backend: str

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, ids)``, each ``(len(queries), k)``, best first; missing ids are -1."""
        ...

    def count(self) -> int:
        """How many vectors are stored."""
        ...

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        """Store more vectors under their int64 ids."""
        ...

    def remove(self, ids: np.ndarray) -> None:
        """Remove the vectors of these ids."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...


def write_vectors(
    config: VectorConfig, gen_dir: Path, name: str, vectors: np.ndarray, ids: np.ndarray
) -> dict[str, Any]:
    """Store a generation's vectors; returns the manifest fields that say where they are.

    Args:
        config: the backend and its options.
        gen_dir: the (temporary) generation folder being written.
        name: the generation's unique stamp (collection names derive from it).
        vectors: ``(n, dim)`` L2-normalised float32 vectors.
        ids: their int64 ids (passage rows).
    """
    if config.backend == "milvus":
        from index.milvus_store import write_milvus

        return write_milvus(config, gen_dir, name, vectors, ids)
    from index.faiss_store import write_faiss

    return write_faiss(config, gen_dir, vectors, ids)


def open_vectors(
    gen_dir: Path,
    manifest: dict[str, Any],
    config: VectorConfig | None = None,
    *,
    writable: bool = False,
) -> VectorIndex:
    """Open the vectors a manifest points at (``config`` supplies a Milvus URI/token).

    ``writable``: documents will be added (a large FAISS file is then read, not mapped).
    """
    backend = manifest.get("vector_backend", "faiss")
    if backend == "milvus":
        from index.milvus_store import open_milvus

        return open_milvus(gen_dir, manifest, config or VectorConfig(backend="milvus"))
    from index.faiss_store import open_faiss

    return open_faiss(gen_dir, manifest, writable=writable)


def drop_vectors(gen_dir: Path, config: VectorConfig | None) -> None:
    """Free what a pruned generation holds outside its folder (a Milvus server collection)."""
    import json

    path = gen_dir / "manifest.json"
    if not path.exists():
        return
    manifest = json.loads(path.read_text())
    if manifest.get("vector_backend") == "milvus" and manifest.get("milvus_uri"):
        from index.milvus_store import drop_milvus

        drop_milvus(manifest, config or VectorConfig(backend="milvus"))


def calibrate_nprobe(
    search: Callable[[np.ndarray, int, int], np.ndarray],
    vectors: np.ndarray,
    nlist: int,
    *,
    target: float = RECALL_TARGET,
    sample: int = 200,
    seed: int = 0,
) -> tuple[int, float]:
    """The smallest nprobe whose recall@10 reaches ``target``, measured at build time.

    ``sample`` indexed vectors are the queries and their exact top 10 the truth, each query
    left out of both lists so the estimate is that of an unseen query (with it, every list
    starts with a free hit). ``search(queries, k, nprobe)`` returns ids. Returns
    ``(nprobe, recall)``: the largest rung tried and its recall if none reaches ``target``.
    """
    import faiss

    rng = np.random.default_rng(seed)
    picked = rng.choice(len(vectors), min(sample, len(vectors)), replace=False)
    queries = np.ascontiguousarray(vectors[picked])
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    _, truth = exact.search(queries, 11)
    del exact
    truth_sets = [set(t.tolist()) - {int(q)} for t, q in zip(truth, picked, strict=True)]
    best = (NPROBE_LADDER[-1], 0.0)
    for nprobe in NPROBE_LADDER:
        if nprobe > nlist:
            break
        found = search(queries, 11, nprobe)
        hits = sum(
            len((set(f.tolist()) - {int(q)}) & t)
            for f, q, t in zip(found, picked, truth_sets, strict=True)
        )
        best = (nprobe, hits / max(1, sum(len(t) for t in truth_sets)))
        if best[1] >= target:
            break
    return best
