"""Answer stage: choose among the reader's spans with retrieval evidence, and abstain.

The reader scores spans inside each context on their own; its logits are not comparable
enough across contexts (a confident span in a passage about a neighbouring topic beats
the right one in the passage that holds the answer), so reading more passages alone
makes answers worse. This stage scores each of the reader's ``TOP_SPANS`` best spans
with a logistic model over the same few generic numbers for every question:

- the span's reader logit, relative to the best span's, and to its window's no-answer logit;
- its probability among all spans and no-answer options, with its repeats added, and the
  probability of the other spans inside it (a phrase that holds the reader's shorter guesses);
- how the retrieval saw the sentence holding it: the embedding similarity to the question,
  and its rank;
- which retrieved context it came from, whether that passage is in the question's
  language, and the span's length;
- whether its sentence states the numbers the question states (a year, a count).

The sentence's BM25 score (normalised per question) was a column until held-out figures
showed the choice better without it (``rag calibrate --report-only --drop bm25``; README).

The best-scored span is chosen; a second logistic model over the chosen span's numbers
(and its ranker score) gives the probability that it is a right answer, and the answer
stands when that clears the threshold, chosen where a wrong answer costs
``WRONG_ANSWER_COST`` times a right one. Both are fitted by ``rag calibrate`` on
questions the reader never trained on (see :mod:`eval.spanrank`) and stored in the
reader's manifest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from index.textnorm import numbers_in, to_simplified

__all__ = [
    "SPAN_FEATURES",
    "SpanEvidence",
    "SpanRanker",
    "abstain_features",
    "answer_key",
    "number_agreement",
    "ranker_key",
    "span_features",
]

# How many of the reader's best spans compete.
TOP_SPANS = 20

SPAN_FEATURES = (
    "gap",  # span logit - the best span's logit (<= 0)
    "margin",  # span logit - its window's no-answer logit
    "prob",  # probability among all spans and no-answer options
    "mass",  # the same, with the probability of its repeats (same text) added
    "dense",  # embedding similarity of its sentence to the question
    "sentence_rank",  # 1 / (1 + rank of its sentence among the ranked ones); 0 if unranked
    "context_rank",  # 1 / (1 + rank of its context)
    "same_lang",  # 1 when its passage is in the question's language
    "log_chars",  # log(1 + characters)
    "numbers_matched",  # share of the numbers the question states (years...) in its sentence
    "numbers_missed",  # share of them its sentence does not state (0 when none are stated)
    "inner_mass",  # probability of the other spans whose text lies inside this one's
)


@dataclass(frozen=True)
class SpanEvidence:
    """One reader span with what retrieval knows about where it was found."""

    text: str
    score: float
    null_score: float
    context_rank: int
    same_lang: bool
    dense: float
    sentence_rank: int  # -1: the sentence holding it was not among the ranked ones
    numbers_matched: float = 0.0
    numbers_missed: float = 0.0


def number_agreement(question_numbers: tuple[str, ...], sentence: str) -> tuple[float, float]:
    """``(matched, missed)``: shares of the question's numbers its evidence sentence states.

    A question that states a year or a count ("at end-2024", "in 1883") expects evidence
    stating the same; both shares are 0 when the question states no number.
    """
    asked = set(question_numbers)
    if not asked:
        return 0.0, 0.0
    found = set(numbers_in(sentence))
    matched = len(asked & found) / len(asked)
    return matched, 1.0 - matched


def ranker_key(int8: bool) -> str:
    """The reader manifest's calibration entry for a reader run in fp32 or in int8.

    Int8 weights shift the logits the features are made of, so each has its own fit.
    """
    return "span_ranker_int8" if int8 else "span_ranker"


def answer_key(text: str) -> str:
    """An answer's text folded for "the same answer" (script, case, outer spaces)."""
    return to_simplified(text).lower().strip()


def span_features(spans: list[SpanEvidence], null_scores: list[float]) -> np.ndarray:
    """The feature matrix (one row a span, columns :data:`SPAN_FEATURES`)."""
    if not spans:
        return np.zeros((0, len(SPAN_FEATURES)))
    scores = np.array([s.score for s in spans], dtype=np.float64)
    logits = np.concatenate([scores, np.asarray(null_scores, dtype=np.float64)])
    p = np.exp(logits - logits.max())
    p = p[: len(spans)] / p.sum()
    folded = [answer_key(s.text) for s in spans]
    mass: dict[str, float] = {}
    for key, pi in zip(folded, p, strict=True):
        mass[key] = mass.get(key, 0.0) + float(pi)
    best = scores.max()
    inner = [
        sum(float(pj) for j, (t, pj) in enumerate(zip(folded, p, strict=True)) if j != i and t in k)
        for i, k in enumerate(folded)
    ]
    rows = [
        (
            s.score - best,
            s.score - s.null_score,
            float(pi),
            mass[key],
            s.dense,
            1.0 / (1 + s.sentence_rank) if s.sentence_rank >= 0 else 0.0,
            1.0 / (1 + s.context_rank),
            float(s.same_lang),
            math.log1p(len(s.text)),
            s.numbers_matched,
            s.numbers_missed,
            inner_i,
        )
        for s, key, pi, inner_i in zip(spans, folded, p, inner, strict=True)
    ]
    return np.array(rows, dtype=np.float64)


def abstain_features(features: np.ndarray, logits: np.ndarray, i: int) -> np.ndarray:
    """What the abstention model sees of the chosen span ``i``.

    Its ranker logit, its share of the ranker's softmax over the spans, and its own
    :data:`SPAN_FEATURES` row.
    """
    share = np.exp(logits - logits.max())
    return np.concatenate([[logits[i], share[i] / share.sum()], features[i]])


@dataclass(frozen=True)
class SpanRanker:
    """Two fitted logistic models: which span is right, and whether to trust the chosen one.

    ``rank_*`` score each span (the highest is chosen); ``abstain_*`` give the probability
    that the chosen span is a right answer from :func:`abstain_features`, answered when at
    least ``threshold``.
    """

    rank_coef: tuple[float, ...]
    rank_intercept: float
    abstain_coef: tuple[float, ...]
    abstain_intercept: float
    threshold: float

    @classmethod
    def from_manifest(
        cls, calibration: dict[str, Any], key: str = "span_ranker"
    ) -> SpanRanker | None:
        """The fitted ranker stored in a reader manifest, or None when there is none."""
        table = (calibration or {}).get(key) or {}
        if tuple(table.get("features", ())) != SPAN_FEATURES:
            return None
        return cls(
            tuple(float(c) for c in table["rank_coef"]),
            float(table["rank_intercept"]),
            tuple(float(c) for c in table["abstain_coef"]),
            float(table["abstain_intercept"]),
            float(table["threshold"]),
        )

    def logits(self, features: np.ndarray) -> np.ndarray:
        """The ranker's score of each span (row of :func:`span_features`)."""
        if not len(features):
            return np.zeros(0)
        return features @ np.asarray(self.rank_coef) + self.rank_intercept

    def confidence(self, features: np.ndarray, logits: np.ndarray, i: int) -> float:
        """Probability that span ``i`` is a right answer."""
        z = float(abstain_features(features, logits, i) @ np.asarray(self.abstain_coef))
        z += self.abstain_intercept
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def run(self, spans: list[SpanEvidence], null_scores: list[float]) -> tuple[int | None, float]:
        """``(index of the chosen span, or None to abstain; its confidence)``."""
        x = span_features(spans, null_scores)
        if not len(x):
            return None, 0.0
        z = self.logits(x)
        i = int(np.argmax(z))
        p = self.confidence(x, z, i)
        return (i if p >= self.threshold else None), p
