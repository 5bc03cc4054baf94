"""The embedded vector backend: a FAISS file inside each index generation."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from index.vectors import EXACT_UP_TO, NPROBE_LADDER, VectorConfig, ivf_lists
from index.vectors import calibrate_nprobe as _calibrate

log = logging.getLogger(__name__)
FILE = "dense.faiss"
MMAP_ABOVE_VECTORS = 200_000
TRAIN_POINTS_PER_LIST = 40

__all__ = ["NPROBE_LADDER", "FaissVectors", "build_faiss", "choose_factory", "write_faiss"]


def choose_factory(n: int) -> str:
    """FAISS factory string for ``n`` vectors.

    Exact below 10k; IVF with ``4*sqrt(n)`` lists above (txtai's rule); past 200k vectors
    the lists hold 8-bit scalar-quantised codes: a quarter of the memory and faster scans
    (at 1M: 387 MB instead of 1.5 GB) for a recall@10 ceiling near 0.98.
    """
    if n <= EXACT_UP_TO:
        return "Flat"
    return f"IVF{ivf_lists(n)},{'SQ8' if n > MMAP_ABOVE_VECTORS else 'Flat'}"


def calibrate_nprobe(
    index: Any, vectors: np.ndarray, *, target: float = 0.95, sample: int = 200, seed: int = 0
) -> tuple[int, float]:
    """Calibrate an IVF index's nprobe on its own vectors and leave it set; see ``vectors``."""
    import faiss

    ivf = faiss.extract_index_ivf(index)

    def search(queries: np.ndarray, k: int, nprobe: int) -> np.ndarray:
        ivf.nprobe = nprobe
        return np.asarray(index.search(queries, k)[1])

    best = _calibrate(search, vectors, ivf.nlist, target=target, sample=sample, seed=seed)
    ivf.nprobe = best[0]
    return best


def build_faiss(vectors: np.ndarray, ids: np.ndarray, factory: str, *, nprobe: int = 0) -> Any:
    """A FAISS inner-product index over normalised vectors, searched by passage row ids.

    ``nprobe`` 0 (auto) calibrates it on the data for recall@10 >= 0.95 (IVF only).
    """
    import faiss

    dim = vectors.shape[1]
    index = faiss.index_factory(dim, _with_ids(factory), faiss.METRIC_INNER_PRODUCT)
    if len(vectors):
        if not index.is_trained:
            index.train(_training_sample(vectors, factory))
        index.add_with_ids(vectors, ids.astype(np.int64))
    if nprobe:
        _set_nprobe(index, nprobe)
    elif len(vectors) and "IVF" in factory:
        chosen, recall = calibrate_nprobe(index, vectors)
        log.info("nprobe %d gives recall@10 %.3f on a sample of the index", chosen, recall)
    return index


def _with_ids(factory: str) -> str:
    """The factory string of an index that stores our ids and can remove them.

    IVF indexes store ids in their lists natively and remove them in place. Every other
    kind is wrapped in ``IDMap2``: its ``remove_ids`` is only sound over an inner index
    that renumbers what remains (``Flat`` does; an ``IDMap2`` over IVF fails an assertion
    that aborts the process), so IVF is never wrapped.
    """
    return factory if factory.startswith("IVF") else f"IDMap2,{factory}"


def removable(index: Any) -> bool:
    """Whether ``remove_ids`` is sound on this index (IVF, or an ID map over Flat)."""
    import faiss

    if isinstance(index, faiss.IndexIVF):
        return True
    if isinstance(index, faiss.IndexIDMap2):
        return isinstance(faiss.downcast_index(index.index), faiss.IndexFlat)
    return False


def index_nprobe(index: Any) -> int:
    """The nprobe an IVF index searches with (0 for other indexes)."""
    import faiss

    try:
        return int(faiss.extract_index_ivf(index).nprobe)
    except RuntimeError:
        return 0


def _training_sample(vectors: np.ndarray, factory: str) -> np.ndarray:
    """A seeded sample big enough to train ``factory``'s coarse quantiser.

    k-means cost grows with points x lists; FAISS asks for 39 points per list and gains
    little beyond that (1M vectors, 4,000 lists: 160k points instead of all 1M).
    """
    m = re.search(r"IVF(\d+)", factory)
    if not m:
        return vectors
    need = max(TRAIN_POINTS_PER_LIST * int(m.group(1)), 10_000)
    if len(vectors) <= need:
        return vectors
    pick = np.random.default_rng(0).choice(len(vectors), need, replace=False)
    return np.ascontiguousarray(vectors[np.sort(pick)])


def _set_nprobe(index: Any, nprobe: int) -> None:
    import faiss

    try:
        ivf = faiss.extract_index_ivf(index)
    except RuntimeError:
        return
    ivf.nprobe = nprobe


def write_faiss(
    config: VectorConfig, gen_dir: Path, vectors: np.ndarray, ids: np.ndarray
) -> dict[str, Any]:
    """Build and write the generation's FAISS file; returns its manifest fields."""
    import faiss

    factory = (
        choose_factory(len(vectors)) if config.faiss_factory == "auto" else config.faiss_factory
    )
    index = build_faiss(vectors, ids, factory, nprobe=config.nprobe)
    faiss.write_index(index, str(gen_dir / FILE))
    return {"vector_backend": "faiss", "faiss_factory": factory, "nprobe": index_nprobe(index)}


class FaissVectors:
    """A FAISS index loaded from a generation (memory-mapped past 200k vectors)."""

    backend = "faiss"

    def __init__(self, index: Any, *, mapped_from: Path | None = None):
        """Wrap a loaded FAISS index.

        Args:
            index: the FAISS index.
            mapped_from: the file ``index`` is memory-mapped from (read-only: FAISS aborts
                the process on a write into mapped lists), read into memory on the first
                :meth:`add` or :meth:`remove`.
        """
        self.index = index
        self._mapped_from = mapped_from
        self._removable = removable(index)
        self._dead: set[int] = set()  # removed ids of an index that cannot remove them

    def _writable(self) -> Any:
        """The index, read into memory first if it is memory-mapped."""
        if self._mapped_from is not None:
            import faiss

            nprobe = index_nprobe(self.index)
            log.info("reading %s into memory to take document writes", self._mapped_from)
            self.index = faiss.read_index(str(self._mapped_from))
            if nprobe:
                _set_nprobe(self.index, nprobe)
            self._mapped_from = None
        return self.index

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Inner-product top ``k`` per query."""
        import faiss

        # One question is one query: OpenMP threads only add barrier waits (2.6 ms instead of
        # 0.14 ms per search here when the other core is busy). The setting is per calling
        # thread in libgomp, which torch shares: it is restored after the search, or the
        # reader's forward passes that follow on this thread would run on one core.
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            return self._search(np.ascontiguousarray(queries, dtype=np.float32), k)
        finally:
            faiss.omp_set_num_threads(threads)

    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if not self._dead:
            scores, ids = self.index.search(queries, k)
            return scores, ids
        scores, ids = self.index.search(queries, k + len(self._dead))
        out_s = np.full((len(queries), k), -np.inf, dtype=np.float32)
        out_i = np.full((len(queries), k), -1, dtype=np.int64)
        for q in range(len(queries)):
            keep = [j for j, i in enumerate(ids[q]) if i >= 0 and int(i) not in self._dead][:k]
            out_s[q, : len(keep)], out_i[q, : len(keep)] = scores[q, keep], ids[q, keep]
        return out_s, out_i

    def count(self) -> int:
        """How many vectors are stored (removed ones not counted)."""
        return int(self.index.ntotal) - len(self._dead)

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        """Add vectors under their ids (an IVF index files them in its trained lists)."""
        if len(vectors):
            self._writable().add_with_ids(
                np.ascontiguousarray(vectors, dtype=np.float32), ids.astype(np.int64)
            )

    def remove(self, ids: np.ndarray) -> None:
        """Remove the vectors of these ids (unknown ids are ignored)."""
        import faiss

        if not len(ids):
            return
        if self._removable:
            self._writable().remove_ids(faiss.IDSelectorBatch(ids.astype(np.int64)))
        else:  # e.g. HNSW: left in the graph, filtered out of every search until a rebuild
            self._dead.update(int(i) for i in ids)

    def close(self) -> None:
        """Nothing to release (the mapping goes with the object)."""


def open_faiss(gen_dir: Path, manifest: dict[str, Any], *, writable: bool = False) -> FaissVectors:
    """Load a generation's FAISS file with the nprobe its manifest records.

    ``writable``: in memory even when large, for :meth:`FaissVectors.add`.
    """
    import faiss

    n = int(manifest.get("passages", 0))
    # a memory-mapped index cannot take the vectors of documents written since the build
    flags = faiss.IO_FLAG_MMAP if n > MMAP_ABOVE_VECTORS and not writable else 0
    index = faiss.read_index(str(gen_dir / FILE), flags)
    if manifest.get("nprobe"):
        _set_nprobe(index, int(manifest["nprobe"]))
    return FaissVectors(index, mapped_from=gen_dir / FILE if flags else None)
