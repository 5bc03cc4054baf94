"""Where a question's terms stand in an evidence snippet (for highlighting, never for answering)."""

from __future__ import annotations

import re

from index.textnorm import to_simplified

__all__ = ["highlight"]

_STOP = frozenset(
    "the a an of in on at to for by with from and or is are was were be been did does do what "
    "which who whom whose when where why how many much that this these those it its as into "
    "than then there their they he she his her has have had not no".split()
)
_CJK = r"[\u3400-\u9fff]"


def _terms(question: str) -> list[str]:
    q = to_simplified(question).lower()
    words = [w for w in re.findall(r"[a-z0-9][a-z0-9'\-.]*[a-z0-9]|[0-9]", q) if w not in _STOP]
    words = [w for w in words if len(w) >= 3 or w.isdigit()]
    grams = []
    for run in re.findall(f"{_CJK}+", q):
        grams += [run[i : i + 2] for i in range(len(run) - 1)] or [run]
    return words + grams


def _fold(text: str) -> str:
    """Simplified script, lower case, one character for one, so offsets carry over.

    (``"İ".lower()`` is two characters: such a character keeps its case.)
    """
    text = to_simplified(text)
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(low_ch if len(low_ch := ch.lower()) == 1 else ch for ch in text)


def highlight(question: str, snippet: str) -> tuple[tuple[int, int], ...]:
    """``(start, end)`` ranges of the snippet holding the question's words (any script).

    Latin words match whole-word and case-insensitively, Chinese by character pairs in
    either script; overlapping ranges merge.
    """
    folded = _fold(snippet)
    found = []
    for term in _terms(question):
        if re.match(_CJK, term):
            pattern = re.escape(term)
        else:
            pattern = r"(?<![a-z0-9])" + re.escape(term) + r"(?![a-z0-9])"
        found += [(m.start(), m.end()) for m in re.finditer(pattern, folded)]
    merged: list[tuple[int, int]] = []
    for a, b in sorted(found):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return tuple(merged)
