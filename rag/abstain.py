"""Abstain stage: is the reader's best span a definite answer?

A logistic model over generic evidence, the same few numbers for every question: how far
the best span's logit stands above the no-answer option of its window and of every window,
its share of the probability mass (its repeats elsewhere included), the evidence
ranker's score of the sentence holding it, which retrieved context it came from, and its
length. Its weights are fitted (``rag calibrate``) on questions the reader never trained
on, answerable and not, and stored in the reader's manifest; a wrong answer costs
``WRONG_ANSWER_COST`` times a right one, which sets the threshold.
"""

from __future__ import annotations

import math
from dataclasses import astuple, dataclass, fields
from typing import Any

import numpy as np

from rag.rank import answer_key
from rag.reader import Reading, span_probabilities

__all__ = ["AbstainFeatures", "Abstainer", "WRONG_ANSWER_COST", "features_of"]

WRONG_ANSWER_COST = 0.35


@dataclass(frozen=True)
class AbstainFeatures:
    """Evidence about one reading's best span."""

    margin: float  # best span logit - its window's no-answer logit
    margin_all: float  # best span logit - the lowest no-answer logit of any window
    prob: float  # the span's probability among all spans and no-answer options
    mass: float  # the same, with its repeats (same text elsewhere) added
    sentence_score: float  # the evidence ranker's score of the sentence holding it
    first_context: float  # 1 when it comes from the retrieval's best context
    log_chars: float  # log of the span's length in characters

    def vector(self) -> np.ndarray:
        """The features in declaration order."""
        return np.array(astuple(self), dtype=np.float64)


FEATURE_NAMES = tuple(f.name for f in fields(AbstainFeatures))


def features_of(reading: Reading, sentence_score: float) -> AbstainFeatures | None:
    """The features of a reading's best span (None when it found no span)."""
    if not reading.spans:
        return None
    best = reading.spans[0]
    probs = span_probabilities(reading)
    key = answer_key(best.text)
    mass = sum(
        float(p) for s, p in zip(reading.spans, probs, strict=True) if answer_key(s.text) == key
    )
    return AbstainFeatures(
        margin=best.score - best.null_score,
        margin_all=best.score - min(reading.null_scores),
        prob=float(probs[0]),
        mass=mass,
        sentence_score=sentence_score,
        first_context=float(best.context_rank == 0),
        log_chars=math.log1p(len(best.text)),
    )


@dataclass(frozen=True)
class Abstainer:
    """``P(the best span is right)`` from :class:`AbstainFeatures`, and the cut."""

    coef: tuple[float, ...]
    intercept: float
    threshold: float

    @classmethod
    def default(cls) -> Abstainer:
        """Before calibration: answer when the span beats its window's no-answer option."""
        coef = tuple(1.0 if n == "margin" else 0.0 for n in FEATURE_NAMES)
        return cls(coef, 0.0, 0.5)

    @classmethod
    def from_manifest(cls, calibration: dict[str, Any]) -> Abstainer:
        """The calibrated model stored in a reader manifest (the default if there is none)."""
        if not calibration or tuple(calibration.get("features", ())) != FEATURE_NAMES:
            return cls.default()
        return cls(
            tuple(float(c) for c in calibration["coef"]),
            float(calibration["intercept"]),
            float(calibration["threshold"]),
        )

    def prob(self, f: AbstainFeatures) -> float:
        """Probability that the span is a right answer."""
        z = float(np.dot(self.coef, f.vector())) + self.intercept
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def run(self, f: AbstainFeatures | None) -> tuple[bool, float]:
        """``(answer?, confidence)``."""
        if f is None:
            return False, 0.0
        p = self.prob(f)
        return p >= self.threshold, p
