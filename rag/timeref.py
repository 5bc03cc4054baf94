"""Relative time phrases ("this year", 近三年, "January-February") as language-free keys.

A question about 近三年 ("the past three years") is answered by the sentence that says
"in the past three years", not by the one about "February this year". Years are handled
elsewhere (they are digits in both languages); these phrases need a shared key.
"""

from __future__ import annotations

import re
from functools import lru_cache

from index.textnorm import to_simplified

NUMBER_WORDS = {
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "两": 2,
    "二": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
    "十": 10,
}
_N = r"(\d{1,2}|two|three|four|five|six|seven|eight|nine|ten|[两二三四五六七八九十])"

# (key, family, pattern over lower-cased simplified text). Keys of one family exclude each
# other: a sentence about "last year" does not answer a question about "this year", nor
# one about "this year" a question about "the past three years". "In recent years" is
# vague: a family of its own, rival to nothing.
TIME_RULES: list[tuple[str, str, re.Pattern[str]]] = [
    (
        "past_n_years",
        "year",
        re.compile(
            rf"\b(?:past|last|previous|recent) {_N} years\b|近{_N}年|过去{_N}年|{_N}年来|"
            rf"\bover {_N} years\b"
        ),
    ),
    ("recent_years", "recent", re.compile(r"\bin recent years\b|近年来|近几年|近些年")),
    ("this_year", "year", re.compile(r"\bthis year\b|\bcurrent year\b|今年|本年度")),
    (
        "last_year",
        "year",
        re.compile(r"\blast year\b|\bprevious year\b|\bpast year\b|去年|上年|过去一年"),
    ),
    ("next_year", "year", re.compile(r"\bnext year\b|明年")),
    (
        "jan_feb",
        "period",
        re.compile(
            r"\bjan(?:uary)?\.?[- ](?:to[- ])?feb(?:ruary)?\b|\bfirst two months\b|"
            r"\bjanuary and february\b|1[-—~至到]2月|一至二月|前两个?月"
        ),
    ),
    ("q1", "period", re.compile(r"\bfirst quarter\b|\bq1\b|一季度|第一季度")),
    ("h1", "period", re.compile(r"\bfirst half\b|上半年")),
]
FAMILY = {key: family for key, family, _ in TIME_RULES}


@lru_cache(maxsize=16384)
def time_refs(text: str) -> tuple[tuple[str, int, int], ...]:
    """``(key, start, end)`` of every relative time phrase in a text.

    ``past_n_years`` keys carry their number: "past_3_years". Offsets are the text's own
    (simplification keeps lengths).
    """
    simp = to_simplified(text).lower()
    out: list[tuple[str, int, int]] = []
    for key, _, rx in TIME_RULES:
        for m in rx.finditer(simp):
            if key == "past_n_years":
                n = next(g for g in m.groups() if g)
                count = int(n) if n.isdigit() else NUMBER_WORDS.get(n, 0)
                out.append((f"past_{count}_years", m.start(), m.end()))
            else:
                out.append((key, m.start(), m.end()))
    return tuple(sorted(out, key=lambda r: r[1]))


def family(key: str) -> str:
    """The family a key belongs to ("past_3_years" -> "year")."""
    return "year" if key.startswith("past_") else FAMILY.get(key, "")


def time_agreement(keys: tuple[str, ...], text: str) -> tuple[float, float]:
    """(the text states one of the question's time phrases, it states only rival ones).

    Rivals are other phrases of the same family: "last year" for a "this year" question.
    """
    if not keys:
        return 0.0, 0.0
    found = {k for k, _, _ in time_refs(text)}
    if found & set(keys):
        return 1.0, 0.0
    families = {family(k) for k in keys}
    return 0.0, float(any(family(k) in families for k in found))
