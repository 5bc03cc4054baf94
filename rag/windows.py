"""Question + context token windows for the span reader, and span decoding.

The same functions build the training windows (``rag train``) and the windows read at
question time, so the reader always sees what it was trained on:
``<s> question </s></s> context </s>``, at most ``max_len`` tokens, long contexts cut into
overlapping windows. Every context token keeps its ``(start, end)`` in the context text,
so a predicted span maps back to exact character offsets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from index.e5 import BOS, EOS, E5Tokenizer

__all__ = ["Window", "make_windows", "best_spans", "MAX_ANSWER_TOKENS"]

MAX_ANSWER_TOKENS = 40


@dataclass(frozen=True)
class Window:
    """One reader input: token ids, and the context span of each context token."""

    ids: list[int]
    first: int  # index of the first context token
    spans: list[tuple[int, int]]  # context tokens' character spans, in order

    def char_span(self, start_tok: int, end_tok: int) -> tuple[int, int]:
        """Context character offsets covered by tokens ``start_tok..end_tok`` (inclusive)."""
        return self.spans[start_tok - self.first][0], self.spans[end_tok - self.first][1]

    def token_of(self, char_start: int, char_end: int) -> tuple[int, int] | None:
        """The token range covering ``[char_start, char_end)``, or None if outside."""
        first = self.spans[0][0] if self.spans else 0
        last = self.spans[-1][1] if self.spans else 0
        if not self.spans or char_start < first or char_end > last:
            return None
        s = next(i for i, (a, b) in enumerate(self.spans) if b > char_start)
        e = next(i for i in range(len(self.spans) - 1, -1, -1) if self.spans[i][0] < char_end)
        if e < s:
            return None
        return self.first + s, self.first + e


def question_ids(tok: E5Tokenizer, question: str, max_tokens: int) -> list[int]:
    """The question's tokens, at most ``max_tokens``: a longer one keeps its two ends.

    An English question asks in its first words and a Chinese one in its last
    ("...的企业有多少家?"), so the middle of a long question is what goes.
    """
    ids = tok.encode(question)[0]
    if len(ids) <= max_tokens:
        return ids
    head = max_tokens // 2
    return ids[:head] + ids[len(ids) - (max_tokens - head) :]


def make_windows(
    q_ids: list[int],
    ctx_ids: list[int],
    ctx_spans: list[tuple[int, int]],
    *,
    max_len: int,
    stride: int | None = None,
) -> list[Window]:
    """Cut a tokenised context into windows of at most ``max_len`` tokens with the question.

    Args:
        q_ids: question tokens.
        ctx_ids: context tokens.
        ctx_spans: their character spans in the context.
        max_len: tokens per window, specials included.
        stride: context tokens between window starts (default: half a window).
    """
    room = max_len - len(q_ids) - 4
    if room < 8:
        raise ValueError("the question leaves no room for context")
    step = stride or max(1, room // 2)
    out = []
    start = 0
    while True:
        part = slice(start, start + room)
        ids = [BOS, *q_ids, EOS, EOS, *ctx_ids[part], EOS]
        out.append(Window(ids, len(q_ids) + 3, ctx_spans[part]))
        if start + room >= len(ctx_ids):
            return out
        start += step


def best_spans(
    start: np.ndarray, end: np.ndarray, window: Window, *, top: int = 5
) -> list[tuple[float, int, int]]:
    """The ``top`` context spans by ``start + end`` logit: ``(score, start_tok, end_tok)``.

    Spans run forward, stay in the context and are at most ``MAX_ANSWER_TOKENS`` long.
    """
    lo, hi = window.first, window.first + len(window.spans)
    if hi <= lo:
        return []
    s = np.asarray(start[lo:hi], dtype=np.float64)
    e = np.asarray(end[lo:hi], dtype=np.float64)
    n = hi - lo
    scores = s[:, None] + e[None, :]
    i, j = np.indices((n, n))
    scores[(j < i) | (j - i >= MAX_ANSWER_TOKENS)] = -np.inf
    # a span must cover text: tokens that are only a word-boundary mark do not start or end one
    empty = np.array([a == b for a, b in window.spans])
    scores[empty, :] = -np.inf
    scores[:, empty] = -np.inf
    flat = np.argsort(scores, axis=None)[::-1][:top]
    out = []
    for f in flat:
        a, b = divmod(int(f), n)
        if np.isfinite(scores[a, b]):
            out.append((float(scores[a, b]), lo + a, lo + b))
    return out
