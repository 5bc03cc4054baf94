"""The typed-span extractor's filters (``RAG_READER=rules``): which spans may answer.

The spans of the top evidence sentences (:func:`rag.candidates.extract_spans`) are kept
when their type fits the question, they are not something the question itself states,
and, in a sentence that lists values, they belong to the asked phrase.
"""

from __future__ import annotations

import re

from index.textnorm import stem, to_simplified
from rag.candidates import Span
from rag.features import (
    NAME_CTYPES,
    NUMERIC_CTYPES,
    answer_type,
    dimension_filter,
    sentence_type_filter,
    type_filter,
)
from rag.match import ends_with_stated_name, restated_prefix, restates_question, restates_tail
from rag.types import Candidate, Query, ScoredSentence

__all__ = ["SpanRow", "answerable", "phrase_owners"]

# (rank of the sentence, the sentence, a span in it, the span's text)
SpanRow = tuple[int, ScoredSentence, Span, str]


def answerable(query: Query, head: tuple[str, ...], spans: list[SpanRow]) -> list[SpanRow]:
    """The spans that may answer the question.

    Of a fitting type (and, in a sentence holding one of exactly the asked type or dimension,
    no looser one); not a name or number the question itself gives, nor the asked kind alone.
    """
    types = [answer_type(query.qtype, sp) for _, _, sp, _ in spans]
    keep = type_filter(query.qtype, types)
    spans, types = (
        [x for x, k in zip(spans, keep, strict=True) if k],
        [t for t, k in zip(types, keep, strict=True) if k],
    )
    keep = sentence_type_filter(query.qtype, [s.row for _, s, _, _ in spans], types)
    spans = [x for x, k in zip(spans, keep, strict=True) if k]
    if query.qtype == "date":  # asked for the day: the year of "May 5, 2021" is not it
        spans = drop_years_of_dates(spans)
    keep = dimension_filter(
        query, [s.row for _, s, _, _ in spans], [sp.unit for _, _, sp, _ in spans]
    )
    spans = [x for x, k in zip(spans, keep, strict=True) if k]
    # a name the question states is not its answer ("Besides Zhonglian Data, which ...")
    stated = [
        (s.row, sp)
        for _, s, sp, t in spans
        if sp.ctype in NAME_CTYPES
        and (
            restates_question(query, t)
            or restates_tail(query, t)
            or ends_with_stated_name(query, t)
        )
    ]
    spans = [  # and neither is a part of it ("Thermal Power Co" of "Jiangsu Huamei ...")
        x
        for x in spans
        if x[2].ctype not in NAME_CTYPES
        or not any(
            row == x[1].row and sp.start <= x[2].start and x[2].end <= sp.end for row, sp in stated
        )
    ]
    spans = drop_restated_heads(query, spans)
    if query.numbers:  # "out of every 100 swimsuits, how many ...": not 100
        spans = [x for x in spans if not states_number(query, x[2].ctype, x[3])]
    if head:  # the asked kind alone ("標準" for "what standard") names nothing
        spans = [x for x in spans if x[2].ctype not in NAME_CTYPES or not is_head(x[3], head)]
    return spans


def phrase_owners(cands: list[Candidate]) -> list[Candidate]:
    """Keep, in a sentence listing values, only the numbers whose phrase holds the asked one.

    "power consumption fell 10%, water consumption 13%" for "water consumption": the sentence
    has a number attached to the whole asked phrase, so its other numbers go.
    """
    lists = {c.sentence.row for c in cands if c.features.get("respectively", 0.0) > 0}
    owners = {
        c.sentence.row
        for c in cands
        if c.ctype in NUMERIC_CTYPES and c.features.get("attach_max", 0.0) >= 1.0
    } - lists  # "A and B rose 3.8 and 3.7 points respectively" pairs them another way
    return [
        c
        for c in cands
        if c.sentence.row not in owners
        or c.ctype not in NUMERIC_CTYPES
        or c.features.get("attach_max", 0.0) >= 1.0
    ]


def drop_years_of_dates(spans: list[SpanRow]) -> list[SpanRow]:
    """Drop a year that is part of a full date in its sentence (for a "which day" question)."""
    dates = [(x[1].row, x[2]) for x in spans if x[2].ctype == "date"]
    return [
        x
        for x in spans
        if x[2].ctype != "year"
        or not any(
            row == x[1].row and d.start <= x[2].start and x[2].end <= d.end for row, d in dates
        )
    ]


def states_number(query: Query, ctype: str, text: str) -> bool:
    """Whether a numeric span is a number the question itself gives (years aside)."""
    if ctype not in NUMERIC_CTYPES or ctype in ("year", "date"):
        return False
    num = re.sub(r"[^\d.]", "", text.split()[0] if text.split() else text).strip(".")
    return bool(num) and num in query.numbers


def is_head(text: str, head: tuple[str, ...]) -> bool:
    """Whether a span is just the noun the question asks for, in either language."""
    simp = to_simplified(text).strip().lower()
    return simp in head or (simp.isascii() and stem(simp) in head)


def drop_restated_heads(query: Query, spans: list[SpanRow]) -> list[SpanRow]:
    """Drop a name led by words the question states when the rest is a candidate of its own.

    北京分公司海淀店 gives way to 海淀店 when the question names the "Beijing branch"; a
    name is only dropped in favour of a shorter one found in the same sentence.
    """
    texts: dict[int, set[str]] = {}
    for _, s, _, text in spans:
        texts.setdefault(s.row, set()).add(text)
    out = []
    for x in spans:
        _, s, sp, text = x
        if sp.ctype in NAME_CTYPES:
            cut = restated_prefix(query, text)
            if cut and text[cut:].strip(" ,.、，") in texts[s.row]:
                continue
        out.append(x)
    return out
