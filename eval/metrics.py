"""Answer-quality metrics as small pure functions."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from index.textnorm import to_simplified

QUOTES_RE = re.compile(r"[\"'“”‘’「」《》]")


def normalize_answer(text: str, *, keep_spaces: bool = False) -> str:
    """Case-, width-, script- and space-insensitive form of an answer.

    With ``keep_spaces`` runs of white space become one space instead of nothing, so
    that word boundaries survive (for finding an alias inside a longer text).
    """
    t = to_simplified(unicodedata.normalize("NFKC", text)).lower()
    t = QUOTES_RE.sub("", t)
    return re.sub(r"\s+", " " if keep_spaces else "", t).strip()


def _is_numeric(alias: str) -> bool:
    return bool(re.search(r"\d", alias))


def alias_in(alias: str, answer: str) -> bool:
    """Whether an alias stands inside an answer (numbers must stand alone: 2.5 not in 12.5)."""
    a, x = normalize_answer(alias, keep_spaces=True), normalize_answer(answer, keep_spaces=True)
    if not a:
        return False
    for m in re.finditer(re.escape(a), x):
        before = x[m.start() - 1] if m.start() else ""
        after = x[m.end()] if m.end() < len(x) else ""
        if _is_numeric(a):
            if (before and (before.isdigit() or before in ".,")) or (
                after
                and (
                    after.isdigit()
                    or (after in ".," and m.end() + 1 < len(x) and x[m.end() + 1].isdigit())
                )
            ):
                continue
        elif a.isascii() and (
            (before and before.isalnum() and before.isascii())
            or (after and after.isalnum() and after.isascii())
        ):
            continue
        return True
    return False


def answer_matches(answer: str | None, aliases: Sequence[str]) -> bool:
    """Alias match: some alias equals the answer or stands inside it (answer not much longer)."""
    if answer is None or not aliases:
        return False
    x = normalize_answer(answer)
    for alias in aliases:
        a = normalize_answer(alias)
        if a == x:
            return True
        if alias_in(alias, answer) and len(x) <= max(2 * len(a), len(a) + 12):
            return True
    return False


def exact_match(answer: str | None, aliases: Sequence[str]) -> bool:
    """Normalised equality with some alias."""
    return answer is not None and any(
        normalize_answer(answer) == normalize_answer(a) for a in aliases
    )


def token_f1(answer: str | None, aliases: Sequence[str]) -> float:
    """Best SQuAD-style token F1 against the aliases (CJK characters count as tokens)."""
    if answer is None or not aliases:
        return 0.0

    def toks(s: str) -> list[str]:
        folded = QUOTES_RE.sub("", to_simplified(unicodedata.normalize("NFKC", s)).lower())
        return re.findall(r"[\u4e00-\u9fff]|[a-z0-9.%]+", folded)

    best = 0.0
    got = toks(answer)
    for alias in aliases:
        want = toks(alias)
        common = sum(min(got.count(t), want.count(t)) for t in set(got))
        if common:
            p, r = common / len(got), common / len(want)
            best = max(best, 2 * p * r / (p + r))
    return best


def reciprocal_rank(ranked: Sequence[str], relevant: str) -> float:
    """1/rank of the first relevant item (0 when absent)."""
    for i, item in enumerate(ranked, 1):
        if item == relevant:
            return 1.0 / i
    return 0.0


def recall_at(ranked: Sequence[str], relevant: str, k: int) -> float:
    """1.0 when the relevant item is among the first k."""
    return float(relevant in list(ranked)[:k])


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation; 0 for no values."""
    if not values:
        return 0.0
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def precision_recall(tp: int, fp: int, fn: int) -> tuple[float, float]:
    """Precision and recall from counts (1.0 when undefined)."""
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    return p, r


# --- Official public-set scoring: SQuAD (English) and CMRC 2018 (Chinese) ---------------

_ARTICLES_RE = re.compile(r"\b(a|an|the)\b")
_CMRC_PUNCT = set(
    "-:_*^/\\~`+=，。：？！“”；’《》……·、「」（）－～『』<>|\u3000'\",.;?!()[]{}%$#@&"
) | {"【", "】", "〔", "〕"}


def squad_normalize(text: str) -> str:
    """SQuAD v1.1 ``normalize_answer``: lower case, no punctuation, no articles, one space."""
    text = text.lower()
    text = "".join(ch for ch in text if not unicodedata.category(ch).startswith("P"))
    text = _ARTICLES_RE.sub(" ", text)
    return " ".join(text.split())


def _squad_f1(pred: str, gold: str) -> float:
    p, g = squad_normalize(pred).split(), squad_normalize(gold).split()
    common = sum(min(p.count(t), g.count(t)) for t in set(p))
    if not common:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def _cmrc_tokens(text: str) -> list[str]:
    """CMRC 2018 ``mixed_segmentation``: each CJK character a token, Latin runs as words."""
    out: list[str] = []
    word = ""
    for ch in text.lower().strip():
        if ch in _CMRC_PUNCT or ch.isspace():
            if word:
                out.append(word)
                word = ""
            continue
        if re.match(r"[\u4e00-\u9fff\u3400-\u4dbf]", ch):
            if word:
                out.append(word)
                word = ""
            out.append(ch)
        else:
            word += ch
    if word:
        out.append(word)
    return out


def _lcs_len(a: list[str], b: list[str]) -> int:
    if not a or not b:
        return 0
    prev = [0] * (len(b) + 1)
    best = 0
    for x in a:
        cur = [0] * (len(b) + 1)
        for j, y in enumerate(b, 1):
            if x == y:
                cur[j] = prev[j - 1] + 1
                best = max(best, cur[j])
        prev = cur
    return best


def _cmrc_f1(pred: str, gold: str) -> float:
    p, g = _cmrc_tokens(pred), _cmrc_tokens(gold)
    common = _lcs_len(p, g)
    if not common:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def qa_scores(pred: str | None, golds: Sequence[str], lang: str) -> tuple[float, float]:
    """``(exact match, F1)`` of a prediction, the best over the gold answers.

    English answers are scored as SQuAD v1.1 does; Chinese ones (``zh-Hans``, ``zh-Hant``)
    as CMRC 2018 does (character level, punctuation removed; its F1 counts the longest
    common substring). An abstention (``None``) scores 0 on an answerable question.
    """
    if pred is None or not golds:
        return 0.0, 0.0
    if lang.startswith("zh"):
        em = max(float("".join(_cmrc_tokens(pred)) == "".join(_cmrc_tokens(g))) for g in golds)
        return em, max(_cmrc_f1(pred, g) for g in golds)
    em = max(float(squad_normalize(pred) == squad_normalize(g)) for g in golds)
    return em, max(_squad_f1(pred, g) for g in golds)
