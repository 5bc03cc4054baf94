"""The lexical index: BM25 over English stems, Chinese n-grams and pinyin pairs.

BM25 in the Lucene variant (the scores of ``bm25s`` with ``method="lucene"``, which this
index replaced, reproduced to float32 rounding)::

    score(q, d) = sum over query terms t of  idf(t) * tf / (tf + k1 * (1 - b + b * |d| / avgdl))
    idf(t)      = ln(1 + (N - df + 0.5) / (df + 0.5))

Unlike ``bm25s``, nothing is scored ahead of time: postings hold raw term frequencies and
``N``, ``df`` and ``avgdl`` are those of the live rows when a query runs. That is what
lets one document be added or removed in place (:meth:`LexicalIndex.add`,
:meth:`LexicalIndex.remove`) with scores equal to those of a rebuild over the same rows.

On disk (a generation's ``lexical_*/`` folder): ``vocab.json`` (terms by id) and
``postings.npz`` (CSR postings by term, row lengths). Rows added after the build live in
an in-memory overlay until the next full build; a removed row stays in the arrays, dead.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np

from index.textnorm import lexical_terms

K1, B = 1.2, 0.75
EMPTY = "\x00empty"  # the one term of a text with none, so that every row has a length
FILES = ("vocab.json", "postings.npz")


class LexicalIndex:
    """BM25 over a growing list of texts; row ``i`` of the scores is text ``i``."""

    def __init__(
        self,
        vocab: list[str],
        indptr: np.ndarray,
        indices: np.ndarray,
        tf: np.ndarray,
        lengths: np.ndarray,
    ):
        """Wrap CSR postings (term ``t``'s rows are ``indices[indptr[t]:indptr[t+1]]``)."""
        self._vocab = {t: i for i, t in enumerate(vocab)}
        self._terms = list(vocab)
        self._indptr, self._indices, self._tf = indptr, indices, tf
        self._overlay: dict[int, tuple[list[int], list[float]]] = {}
        self._lengths = np.asarray(lengths, dtype=np.float32).copy()
        self._alive = np.ones(len(self._lengths), dtype=bool)
        self._live_length = float(self._lengths.sum())
        self._live = len(self._lengths)

    @property
    def size(self) -> int:
        """Rows, removed ones included (the length of :meth:`scores`)."""
        return len(self._lengths)

    @property
    def live(self) -> int:
        """Rows not removed."""
        return self._live

    @classmethod
    def build(cls, texts: list[str], *, terms: list[list[str]] | None = None) -> LexicalIndex:
        """Index texts; ``terms`` are their :func:`lexical_terms` when already computed."""
        if terms is None:
            terms = [lexical_terms(t) for t in texts]
        vocab: dict[str, int] = {}
        tids: list[int] = []
        rows: list[int] = []
        freqs: list[int] = []
        lengths = np.zeros(len(terms), dtype=np.float32)
        for row, doc in enumerate(terms):
            doc = doc or [EMPTY]
            lengths[row] = len(doc)
            for term, n in Counter(doc).items():
                tids.append(vocab.setdefault(term, len(vocab)))
                rows.append(row)
                freqs.append(n)
        order = np.argsort(np.asarray(tids, dtype=np.int64), kind="stable")
        counts = np.bincount(np.asarray(tids, dtype=np.int64), minlength=len(vocab))
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        indices = np.asarray(rows, dtype=np.int32)[order]
        tf = np.asarray(freqs, dtype=np.float32)[order]
        return cls(list(vocab), indptr, indices, tf, lengths)

    def knows(self, term: str) -> bool:
        """Whether some row (live or removed) holds ``term``."""
        return term in self._vocab

    def add(self, terms: list[list[str]]) -> list[int]:
        """Append texts (as their terms); returns their rows."""
        first = len(self._lengths)
        new_lengths = np.zeros(len(terms), dtype=np.float32)
        for k, doc in enumerate(terms):
            doc = doc or [EMPTY]
            new_lengths[k] = len(doc)
            for term, n in Counter(doc).items():
                tid = self._vocab.get(term)
                if tid is None:
                    tid = self._vocab[term] = len(self._terms)
                    self._terms.append(term)
                rows, tfs = self._overlay.setdefault(tid, ([], []))
                rows.append(first + k)
                tfs.append(float(n))
        self._lengths = np.concatenate([self._lengths, new_lengths])
        self._alive = np.concatenate([self._alive, np.ones(len(terms), dtype=bool)])
        self._live += len(terms)
        self._live_length += float(new_lengths.sum())
        return list(range(first, first + len(terms)))

    def remove(self, rows: list[int]) -> None:
        """Take rows out of every score (their slots stay, scoring 0)."""
        for row in rows:
            if 0 <= row < len(self._alive) and self._alive[row]:
                self._alive[row] = False
                self._live -= 1
                self._live_length -= float(self._lengths[row])

    def _postings(self, tid: int) -> tuple[np.ndarray, np.ndarray]:
        base = len(self._indptr) - 1
        if tid < base:
            lo, hi = int(self._indptr[tid]), int(self._indptr[tid + 1])
            rows, tf = self._indices[lo:hi], self._tf[lo:hi]
        else:
            rows, tf = np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float32)
        extra = self._overlay.get(tid)
        if extra:
            rows = np.concatenate([rows, np.asarray(extra[0], dtype=np.int32)])
            tf = np.concatenate([tf, np.asarray(extra[1], dtype=np.float32)])
        return rows, tf

    def scores(self, terms: list[str]) -> np.ndarray:
        """BM25 score of every row for the query terms (a repeated term counts again).

        Removed rows score 0; so does every row when no term is known.
        """
        out = np.zeros(self.size, dtype=np.float32)
        known = [self._vocab[t] for t in terms if t in self._vocab]
        if not known or self._live == 0:
            return out
        n = self._live
        norm = K1 * ((1 - B) + B * self._lengths / (self._live_length / n))
        for tid in known:
            rows, tf = self._postings(tid)
            keep = self._alive[rows]
            rows, tf = rows[keep], tf[keep]
            df = len(rows)
            if not df:
                continue
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            out[rows] += (idf * tf / (norm[rows] + tf)).astype(np.float32)
        return out

    def save(self, path: Path) -> None:
        """Write the index under ``path`` (live rows and overlay included, as built)."""
        if self._overlay or self._live != self.size:
            raise ValueError("only a freshly built lexical index is saved; rebuild to compact")
        path.mkdir(parents=True, exist_ok=True)
        (path / "vocab.json").write_text(json.dumps(self._terms, ensure_ascii=False))
        np.savez(
            path / "postings.npz",
            indptr=self._indptr,
            indices=self._indices,
            tf=self._tf,
            lengths=self._lengths,
        )

    @classmethod
    def load(cls, path: Path) -> LexicalIndex:
        """Read an index written by :meth:`save`."""
        vocab = json.loads((path / "vocab.json").read_text())
        with np.load(path / "postings.npz") as z:
            return cls(vocab, z["indptr"], z["indices"], z["tf"], z["lengths"])
