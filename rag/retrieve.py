"""Stage 2 of the read path: dense (FAISS) and lexical (BM25) retrieval, fused by RRF.

Pools are balanced by document language: the best passages of each language are
fused separately and then merged, so articles in the question's language cannot
crowd out the one in the other language that holds the answer.
"""

from __future__ import annotations

import time
from typing import Literal

import numpy as np

from index.store import IndexStore
from index.textnorm import chinese_terms, lexical_terms
from rag.types import Hit, Query

Mode = Literal["hybrid", "dense", "lexical"]


def query_terms(query: Query) -> list[str]:
    """Lexical terms of a question plus its dictionary translations."""
    terms = lexical_terms(query.text)
    for t in query.zh_terms:
        terms.extend(chinese_terms(t) if len(t) > 1 else [t])
    terms.extend(query.en_terms)
    return terms


def rrf(rank_lists: list[list[int]], k: int = 60) -> dict[int, float]:
    """Reciprocal rank fusion of ranked id lists: ``sum(1 / (k + rank))``."""
    fused: dict[int, float] = {}
    for ranks in rank_lists:
        for r, idx in enumerate(ranks):
            fused[idx] = fused.get(idx, 0.0) + 1.0 / (k + r + 1)
    return fused


def interleave(hits: list[Hit]) -> list[Hit]:
    """Merge per-language pools round-robin, the pool with the best passage first."""
    pools: dict[bool, list[Hit]] = {}
    for h in sorted(hits, key=lambda h: h.score, reverse=True):
        pools.setdefault(h.passage.lang != "en", []).append(h)
    out: list[Hit] = []
    lists = list(pools.values())
    for i in range(max((len(p) for p in lists), default=0)):
        out.extend(p[i] for p in lists if i < len(p))
    return out


class HybridRetriever:
    """Dense + BM25 passage retrieval with language-balanced reciprocal rank fusion."""

    def __init__(self, store: IndexStore, *, rrf_k: int = 60, mode: Mode = "hybrid"):
        """Wrap a loaded index.

        Args:
            store: the loaded index generation.
            rrf_k: the fusion constant.
            mode: ``hybrid`` (default), or ``dense``/``lexical`` alone (for baselines).
        """
        self.store = store
        self.rrf_k = rrf_k
        self.mode = mode
        self._lang = np.zeros(0, dtype=bool)
        self.extend()

    def extend(self) -> None:
        """Take in the passage rows the store gained since the last call."""
        new = [p.lang != "en" for p in self.store.passages[len(self._lang) :]]
        self._lang = np.concatenate([self._lang, np.array(new, dtype=bool)])

    def dense_scores(self, vector: np.ndarray, k: int) -> dict[int, float]:
        """Inner-product scores of the ``k`` nearest passages."""
        n = len(self.store.passages)
        if n == 0:
            return {}
        scores, ids = self.store.dense.search(vector.reshape(1, -1).astype(np.float32), min(n, k))
        return {int(i): float(s) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0}

    def search(
        self, query: Query, vector: np.ndarray, k: int, timings: dict[str, float] | None = None
    ) -> list[Hit]:
        """The ``k`` best passages of each document language, fused, best first.

        ``timings``, when given, receives the seconds spent in dense and lexical search.
        """
        n = len(self.store.passages)
        if n == 0:
            return []
        t0 = time.perf_counter()
        dense = self.dense_scores(vector, max(4 * k, 64)) if self.mode != "lexical" else {}
        t1 = time.perf_counter()
        lex_all = (
            self.store.lexical_passages.scores(query_terms(query)) if self.mode != "dense" else None
        )
        if timings is not None:
            timings["dense"] = t1 - t0
            timings["lexical"] = time.perf_counter() - t1
        hits: list[Hit] = []
        for is_zh in (False, True):
            pool = np.flatnonzero(self._lang == is_zh)
            if pool.size == 0:
                continue
            lists: list[list[int]] = []
            if dense:
                d_ids = [
                    i
                    for i in sorted(dense, key=dense.__getitem__, reverse=True)
                    if self._lang[i] == is_zh
                ]
                lists.append(d_ids[:k])
            if lex_all is not None:
                order = pool[np.argsort(-lex_all[pool], kind="stable")]
                lists.append([int(i) for i in order[:k] if lex_all[i] > 0])
            fused = rrf(lists, self.rrf_k)
            for i in sorted(fused, key=fused.__getitem__, reverse=True)[:k]:
                hits.append(
                    Hit(
                        self.store.passages[i],
                        fused[i],
                        0,
                        dense.get(i, 0.0),
                        float(lex_all[i]) if lex_all is not None else 0.0,
                    )
                )
        return [
            Hit(h.passage, h.score, r, h.dense, h.lexical) for r, h in enumerate(interleave(hits))
        ]
