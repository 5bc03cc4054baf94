"""The lexical index: BM25 (bm25s) over English stems, Chinese n-grams and pinyin pairs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from index.textnorm import lexical_terms


class LexicalIndex:
    """BM25 over a list of texts; row ``i`` of the scores is text ``i``."""

    def __init__(self, model: Any, size: int):
        """Wrap a fitted ``bm25s.BM25`` model covering ``size`` texts."""
        self._model = model
        self.size = size

    @classmethod
    def build(cls, texts: list[str], *, terms: list[list[str]] | None = None) -> LexicalIndex:
        """Index texts; ``terms`` are their :func:`lexical_terms` when already computed."""
        import bm25s

        model = bm25s.BM25(k1=1.2, b=0.75)
        if terms is None:
            terms = [lexical_terms(t) for t in texts]
        corpus = [t or ["\x00empty"] for t in terms]
        if corpus:
            model.index(corpus, show_progress=False)
        return cls(model, len(texts))

    def scores(self, terms: list[str]) -> np.ndarray:
        """BM25 score of every text for the query terms (zeros when nothing matches)."""
        if self.size == 0:
            return np.zeros(0, dtype=np.float32)
        vocab = getattr(self._model, "vocab_dict", {}) or {}
        known = [t for t in terms if t in vocab]
        if not known:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._model.get_scores(known), dtype=np.float32)

    def save(self, path: Path) -> None:
        """Write the index files under ``path``."""
        path.mkdir(parents=True, exist_ok=True)
        (path / "size.json").write_text(json.dumps({"size": self.size}))
        if self.size:
            self._model.save(str(path), show_progress=False)  # type: ignore[attr-defined]

    @classmethod
    def load(cls, path: Path, *, mmap: bool = False) -> LexicalIndex:
        """Read an index written by :meth:`save`."""
        import bm25s

        size = int(json.loads((path / "size.json").read_text())["size"])
        if not size:
            return cls(None, 0)
        model = bm25s.BM25.load(str(path), mmap=mmap, show_progress=False)
        return cls(model, size)
