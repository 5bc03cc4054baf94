"""``rag bench index``: cold build and unchanged re-index of a corpus, per embedder.

Embedding time is measured inside the build by a timing proxy around the embedder, so
``overhead_pct`` (everything that is not embedding: loading, cleaning, splitting, FAISS,
BM25, SQLite, fsync) is measured in the same run as the total. ``vs_raw`` is the raw
embedder's time on the passages alone (one batch pass, same run) over the cold build's:
1.0 would mean the build costs no more than embedding its passages. The first backend
is also built with clause vectors (``RAG_INDEX_CLAUSES=1``), the ``with_clauses`` figures.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import machine, median, rss_mb
from bench.contention import busy, side_by_side

log = logging.getLogger(__name__)


class TimedEmbedder:
    """Delegates to an embedder and adds up the seconds spent in ``embed``."""

    def __init__(self, inner: Any):
        """Wrap ``inner``."""
        self.inner = inner
        self.seconds = 0.0
        self.texts = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def warm_up(self) -> None:
        """Load the wrapped model."""
        self.inner.warm_up()

    def embed(self, texts: list[str], *, is_query: bool = False) -> Any:
        """Embed through the wrapped embedder, timing the call."""
        t0 = time.perf_counter()
        out = self.inner.embed(texts, is_query=is_query)
        self.seconds += time.perf_counter() - t0
        self.texts += len(texts)
        return out


def _raw_seconds(embedder: Any, texts: list[str]) -> float:
    """Seconds the embedder takes on the texts, in its own batches, nothing else."""
    step = int(getattr(embedder, "texts_per_call", 32))
    t0 = time.perf_counter()
    for i in range(0, len(texts), step):
        embedder.embed(texts[i : i + step])
    return time.perf_counter() - t0


def run_one(
    seeds_dir: Path,
    embedder: Any,
    *,
    rounds: int = 1,
    chunk_tokens: int = 200,
    clauses: bool = False,
) -> dict[str, Any]:
    """Cold builds (``rounds`` of them, each into a fresh directory) and one unchanged re-run."""
    from index.build import build_index
    from index.store import IndexStore

    t0 = time.perf_counter()
    embedder.warm_up()
    embedder.embed(["warm-up"])
    load_s = time.perf_counter() - t0
    cold, embed_s, passages, texts = [], [], 0, 0
    reindex: list[float] = []
    raw: list[float] = []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(prefix="rag-bench-index-") as tmp:
            timed = TimedEmbedder(embedder)
            report = build_index(
                seeds_dir, Path(tmp), timed, chunk_tokens=chunk_tokens, clauses=clauses
            )
            cold.append(report.seconds)
            embed_s.append(timed.seconds)
            passages, texts = report.passages, timed.texts
            t0 = time.perf_counter()
            again = build_index(
                seeds_dir, Path(tmp), timed, chunk_tokens=chunk_tokens, clauses=clauses
            )
            reindex.append(time.perf_counter() - t0)
            if again.changed:
                log.warning("an unchanged corpus was re-indexed: %s", again)
            store = IndexStore.open(Path(tmp))
            raw.append(_raw_seconds(embedder, [p.text for p in store.passages]))
            store.close()
    total, emb = median(cold), median(embed_s)
    return {
        "embedder": embedder.name,
        "engine": getattr(embedder, "engine", None),
        "threads": getattr(embedder, "threads", None),
        "model_load_s": round(load_s, 2),
        "batch_size": getattr(embedder, "batch_size", None),
        "passages": passages,
        "texts_embedded": texts,
        "cold_s": round(total, 2),
        "embed_s": round(emb, 2),
        "overhead_pct": round(100 * (total - emb) / total, 1) if total else 0.0,
        "passages_per_s": round(passages / total, 2) if total else 0.0,
        "texts_per_s": round(texts / emb, 1) if emb else 0.0,
        "raw_passages_s": round(median(raw), 2),
        "vs_raw": round(median(raw) / total, 3) if total else 0.0,
        "reindex_unchanged_s": round(median(reindex), 3),
    }


def run(
    seeds_dir: Path, embedders: list[Any], *, rounds: int = 1, contention: int = 0
) -> dict[str, Any]:
    """Benchmark each embedder backend on the same corpus, side by side.

    Args:
        seeds_dir: the corpus folder.
        embedders: the backends to compare; the first one's figures head the report.
        rounds: cold builds per backend.
        contention: busy CPU-bound processes beside a second, contended cold build of the
            first backend (0 = quiet only); reported as ``contended_*`` with ratios to quiet.
    """
    rows = []
    for emb in embedders:
        log.info("benchmarking index build with %s (%s)", emb.name, getattr(emb, "engine", ""))
        rows.append(run_one(seeds_dir, emb, rounds=rounds))
    first = rows[0]
    figures: dict[str, Any] = {
        "cold_s": first["cold_s"],
        "overhead_pct": first["overhead_pct"],
        "reindex_unchanged_s": first["reindex_unchanged_s"],
        "passages_per_s": first["passages_per_s"],
        "texts_embedded": first["texts_embedded"],
        "vs_raw": first["vs_raw"],
    }
    log.info("the same build of %s with clause vectors", embedders[0].name)
    clausal = run_one(seeds_dir, embedders[0], rounds=rounds, clauses=True)
    for key in ("cold_s", "texts_embedded"):
        figures[f"with_clauses_{key}"] = clausal[key]
        figures[f"with_clauses_{key}_ratio"] = (
            round(clausal[key] / first[key], 2) if first[key] else 0.0
        )
    if contention:
        log.info("cold build with %d busy processes beside it", contention)
        with busy(contention):
            contended = run_one(seeds_dir, embedders[0], rounds=rounds)
        figures.update(side_by_side(first, contended, ("cold_s", "passages_per_s"), contention))
    figures.update(
        backends=rows,
        rounds=rounds,
        max_rss_mb=round(rss_mb(peak=True), 1),
        omp_wait_policy=os.environ.get("OMP_WAIT_POLICY", ""),
        targets={"overhead_pct": 20, "reindex_unchanged_s": 2, "contended_cold_s_ratio": 3},
        **machine(),
    )
    return figures


def run_synthetic(n: int, embedder: Any, *, sentences: int = 40, seed: int = 11) -> dict[str, Any]:
    """Cold build of ``n`` synthetic articles of ``sentences`` new sentences each.

    Every sentence is new text (nothing comes from the embedding cache), so the figure
    is that of a user adding ``n`` documents of their own.
    """
    import random

    from bench.writes import article

    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="rag-bench-synthetic-") as tmp:
        seeds = Path(tmp) / "seeds"
        seeds.mkdir()
        for i in range(n):
            (seeds / f"doc-{i:05d}.txt").write_text(article(rng, None, sentences))
        row = run_one(seeds, embedder)
    return {
        "documents": n,
        "sentences_per_document": sentences,
        **{k: row[k] for k in ("cold_s", "passages", "texts_embedded", "passages_per_s")},
        "texts_per_s": row["texts_per_s"],
        "vs_raw": row["vs_raw"],
        "max_rss_mb": round(rss_mb(peak=True), 1),
        "targets": {"cold_s(400 documents)": 300},
        **machine(),
    }
