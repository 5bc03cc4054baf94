"""``rag bench writes``: the cost of one document write as the corpus grows.

For each corpus size the benchmark builds an index of that many synthetic articles
(about 1,000 words each), then times ``PUT`` of new ~1,000-word articles and ``DELETE``
of them through the service object the HTTP routes call (the same code path, without
the network). The figure that matters is how the write time grows with the corpus: the
ratio of the largest size's p50 to the smallest's, measured in the same run.

The base corpus is built with :class:`BaseVectors` (synthetic vectors under the real
model's name: a 2,000-article base would take hours of embedding on 2 cores); each
written article is new text, embedded for real by the service's own model. Everything
else a write does (cleaning, splitting, lexical terms, the change log, FAISS, BM25,
applying it to the live pipeline) runs against the full corpus.
"""

from __future__ import annotations

import hashlib
import logging
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import machine, median, pct, rss_mb

log = logging.getLogger(__name__)
CITIES = ["Taiyuan", "Datong", "Jinzhong", "Shuozhou", "Xinzhou", "Linfen", "Yuncheng", "Lüliang"]
THINGS = ["coal mines", "wind farms", "battery plants", "rail lines", "labs", "parks", "schools"]
VERBS = ["opened", "upgraded", "planned", "financed", "closed", "inspected", "connected"]


def _sentence(rng: random.Random) -> str:
    return (
        f"In {rng.randint(1990, 2030)}, {rng.choice(CITIES)} {rng.choice(VERBS)} "
        f"{rng.randint(2, 9999)} {rng.choice(THINGS)} worth {rng.randint(1, 900)} million yuan, "
        f"according to a report by the {rng.choice(CITIES)} bureau of {rng.choice(THINGS)}."
    )


def article(rng: random.Random, pool: list[str] | None = None, sentences: int = 45) -> str:
    """A ~1,000-word article: sentences drawn from ``pool``, or new ones."""
    body = [rng.choice(pool) if pool else _sentence(rng) for _ in range(sentences)]
    return f"Report {rng.randint(0, 10**9)}\n\n" + " ".join(body)


class BaseVectors:
    """Stands in for the real embedder while the base corpus is built, and only then.

    Same name, version and dimension as the real model, so the index is the one the
    service would hold; each text gets a deterministic random unit vector instead of a
    forward pass, so that a base of 2,000 articles (14,000 passages, 90,000 sentences)
    builds in minutes on 2 cores. Every written article is embedded by the real model.
    """

    texts_per_call = 4096

    def __init__(self, real: Any):
        """Copy the real embedder's identity."""
        self.name, self.version, self.dim = real.name, real.version, real.dim

    def embed(self, texts: list[str], *, is_query: bool = False) -> np.ndarray:
        """A unit vector per text, seeded by the text."""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little")
            v = np.random.default_rng(seed).standard_normal(self.dim)
            out[i] = v / np.linalg.norm(v)
        return out

    def warm_up(self) -> None:
        """Nothing to load."""


def run_size(
    size: int, *, rounds: int, sentences: int = 45, churn: int = 0, seed: int = 7
) -> dict[str, Any]:
    """Build a corpus of ``size`` articles, then time ``rounds`` PUTs and DELETEs.

    ``sentences``: per article (45 make about 1,000 words). ``churn``: that many more
    PUT/DELETE pairs of short articles afterwards, for the server's memory growth.
    """
    from api.service import Service
    from rag.config import get_settings
    from rag.factory import make_embedder, run_index

    rng = random.Random(seed)
    pool = [_sentence(rng) for _ in range(300)]
    with tempfile.TemporaryDirectory(prefix="rag-bench-writes-") as tmp:
        seeds, index = Path(tmp) / "seeds", Path(tmp) / "index"
        seeds.mkdir()
        for i in range(size):
            (seeds / f"base-{i:05d}.txt").write_text(article(rng, pool, sentences))
        settings = get_settings().model_copy(
            update={"seeds_dir": seeds, "index_dir": index, "data_dir": Path(tmp) / "data"}
        )
        t0 = time.perf_counter()
        real = make_embedder(settings)
        base = run_index(settings, show_progress=False, embedder=BaseVectors(real))
        build_s = time.perf_counter() - t0
        service = Service(settings)
        service.start()
        rss_before = rss_mb()
        puts, deletes = [], []
        for r in range(rounds):
            text = article(rng, None, sentences)
            t0 = time.perf_counter()
            service.put_document(f"new-{r}", text, None, None)
            puts.append(time.perf_counter() - t0)
        for r in range(rounds):
            t0 = time.perf_counter()
            service.delete_document(f"new-{r}")
            deletes.append(time.perf_counter() - t0)
        rss_after_rounds = rss_mb()
        for r in range(churn):
            service.put_document(f"churn-{r}", article(rng, None, 5), None, None)
            service.delete_document(f"churn-{r}")
        store = service.current().store
        return {
            "articles": size,
            "passages": store.passage_total,
            "sentences": base.sentences,
            "base_build_s": round(build_s, 1),
            "put_p50_s": round(median(puts), 3),
            "put_p95_s": round(pct(puts, 95), 3),
            "delete_p50_s": round(median(deletes), 3),
            "rss_growth_pct": round(
                100 * (rss_after_rounds - rss_before) / max(rss_before, 1.0), 1
            ),
            **(
                {
                    "churn_pairs": churn,
                    "churn_rss_growth_pct": round(
                        100 * (rss_mb() - rss_before) / max(rss_before, 1.0), 1
                    ),
                }
                if churn
                else {}
            ),
        }


def run(
    sizes: list[int], *, rounds: int = 5, sentences: int = 45, churn: int = 0
) -> dict[str, Any]:
    """Every size, smallest first, and the growth ratios of the largest against the smallest.

    ``churn`` PUT/DELETE pairs run on the largest size only.
    """
    rows = []
    ordered = sorted(sizes)
    for size in ordered:
        log.info("write benchmark: corpus of %d articles", size)
        rows.append(
            run_size(
                size,
                rounds=rounds,
                sentences=sentences,
                churn=churn if size == ordered[-1] else 0,
            )
        )
    small, large = rows[0], rows[-1]
    return {
        "sizes": rows,
        "put_p50_s": large["put_p50_s"],
        "delete_p50_s": large["delete_p50_s"],
        "put_growth_ratio": round(large["put_p50_s"] / max(small["put_p50_s"], 1e-9), 2),
        "rounds": rounds,
        "sentences_per_article": sentences,
        "max_rss_mb": round(rss_mb(peak=True), 1),
        "targets": {
            "put_p50_s@2000": 1.5,
            "put_growth_ratio(2000/20)": 2,
            "delete_p50_s": 0.5,
            "churn_rss_growth_pct(1000 writes)": 20,
        },
        **machine(),
    }
