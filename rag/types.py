"""Typed, frozen objects between read-path stages, and the stage contracts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, Protocol

import numpy as np

from index.types import Embedder, Passage

__all__ = [
    "Answer",
    "Candidate",
    "Citation",
    "Embedder",
    "Hit",
    "Passage",
    "Query",
    "QuestionType",
    "Retriever",
    "ScoredSentence",
]

QuestionType = Literal[
    "count",
    "percent",
    "ppoint",
    "change",
    "money",
    "measure",
    "multiple",
    "year",
    "date",
    "duration",
    "frequency",
    "rank",
    "phone",
    "person",
    "org",
    "place",
    "entity",
    "other",
]


@dataclass(frozen=True)
class Query:
    """What question analysis found out about a question."""

    text: str
    norm: str
    lang: Literal["en", "zh"]
    qtype: QuestionType
    target: str = ""
    target_zh: tuple[str, ...] = ()
    years: tuple[str, ...] = ()
    numbers: tuple[str, ...] = ()
    terms: tuple[str, ...] = ()
    zh_terms: tuple[str, ...] = ()
    en_terms: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    pinyin: tuple[str, ...] = ()
    # Content words of the phrase the question asks about ("how many *new R&D institutions*",
    # "多少家*科技型中小企业*"), without names, years and question words.
    phrase: tuple[str, ...] = ()
    # Relative time phrases as language-free keys ("this_year", "past_3_years"): see
    # rag.timeref.
    times: tuple[str, ...] = ()

    def __hash__(self) -> int:
        # a Query keys the matching caches thousands of times per question: hash it once
        cached: int | None = self.__dict__.get("_hash")
        if cached is None:
            cached = hash(tuple(getattr(self, f.name) for f in fields(self)))
            object.__setattr__(self, "_hash", cached)
        return cached


@dataclass(frozen=True)
class Hit:
    """A retrieved passage with its fused score and rank."""

    passage: Passage
    score: float
    rank: int
    dense: float = 0.0
    lexical: float = 0.0


@dataclass(frozen=True)
class ScoredSentence:
    """A sentence of a retrieved passage, scored for how well it answers the question."""

    row: int
    doc_id: str
    start: int
    end: int
    text: str
    score: float
    features: dict[str, float] = field(default_factory=dict, compare=False)
    passage_id: str = ""


@dataclass(frozen=True)
class Candidate:
    """A possible answer span (offsets into the document's canonical text)."""

    doc_id: str
    start: int
    end: int
    text: str
    ctype: str
    sentence: ScoredSentence
    unit: str = ""
    features: dict[str, float] = field(default_factory=dict, compare=False)
    score: float = 0.0


@dataclass(frozen=True)
class Citation:
    """Where an answer comes from: ``document.text[start:end]`` is the cited span."""

    doc_id: str
    passage_id: str
    title: str
    snippet: str
    start: int
    end: int
    score: float
    highlights: tuple[tuple[int, int], ...] = ()  # the question's terms, offsets in the snippet


@dataclass(frozen=True)
class Answer:
    """The service's answer: a short span with citations, or None when it abstains."""

    text: str | None
    confidence: float
    question_type: str
    citations: tuple[Citation, ...] = ()
    passages: tuple[Hit, ...] = ()
    took_ms: float = 0.0

    def to_dict(self, *, include_passages: bool = False) -> dict[str, Any]:
        """The JSON form the HTTP API returns."""
        out: dict[str, Any] = {
            "answer": self.text,
            "confidence": round(self.confidence, 4),
            "question_type": self.question_type,
            "citations": [asdict(c) for c in self.citations],
            "took_ms": round(self.took_ms, 2),
        }
        if include_passages:
            out["passages"] = [
                {
                    "passage_id": h.passage.passage_id,
                    "doc_id": h.passage.doc_id,
                    "text": h.passage.text,
                    "start": h.passage.start,
                    "end": h.passage.end,
                    "score": round(h.score, 6),
                }
                for h in self.passages
            ]
        return out


class Retriever(Protocol):
    """Ranks passages for a query."""

    def search(self, query: Query, vector: np.ndarray, k: int) -> list[Hit]:
        """The ``k`` best passages, best first."""
        ...
