"""Resolve elliptical follow-up questions against the previous turns of a conversation.

"How many intelligent coal mines did Shanxi have at end-2024?" followed by "And by the
end of 2022?" means the same question about 2022; "那湖北呢？" after a question about
Shanxi means the same question about Hubei. A follow-up is elliptical when it has no
question word of its own or is a short "and ...?"/"what about ...?"/"...呢" fragment;
it is then rewritten from the last full question by swapping in the years and the names
it gives (or, when it gives neither, by appending it).
"""

from __future__ import annotations

import re
import unicodedata

from index.textnorm import jieba_module, text_language, to_simplified
from rag.query import EN_RULES, YEAR_RE, ZH_RULES

EN_LEAD_RE = re.compile(
    r"^\s*(?:and|also|but|so|ok(?:ay)?|then)\b[\s,]*|^\s*(?:what|how) about\b\s*|^\s*same (?:for|in)\b\s*",
    re.I,
)
ZH_TAIL_RE = re.compile(r"[呢吗嗎呀]?\s*[?？]?\s*$")
ZH_LEAD_RE = re.compile(r"^\s*(?:那么?|那麼|还有|還有|另外|而)\s*")
EN_NAME_RE = re.compile(r"\b[A-Z][a-zA-Z\-]+(?:\s+[A-Z][a-zA-Z\-]+)*")
EN_NOT_NAMES = frozenset(
    "And Also But So Ok Okay Then What How Same In At By For The Of End Start Beginning".split()
)
ZH_PLACE_FLAGS = frozenset(("ns", "nt", "nz", "nr", "nrt"))
BEFORE_RE = re.compile(
    r"\b(?:the )?(?:year before|previous year|prior year|year earlier)\b|前一年|上一年"
)
AFTER_RE = re.compile(
    r"\b(?:the )?(?:year after|following year|next year|year later)\b|后一年|後一年|下一年"
)
MONTHS = (
    "january february march april may june july august september october november december".split()
)


def _has_question_form(text: str, lang: str) -> bool:
    norm = to_simplified(text).lower()
    rules = EN_RULES if lang == "en" else ZH_RULES
    generic = r"\b(?:which|what)\b" if lang == "en" else r"什么|哪个|哪一|哪些|何"
    return any(re.search(p, norm) for p, _ in rules if p != generic) or bool(
        re.match(r"^\s*(?:who|when|where|why|how|which|what)\b", norm)
    )


def is_elliptical(text: str) -> bool:
    """Whether a question leans on the previous one ("And in 2022?", "那湖北呢？")."""
    text = unicodedata.normalize("NFKC", text).strip()
    lang = text_language(text)
    if lang == "en":
        if EN_LEAD_RE.match(text) and len(text.split()) <= 8:
            return True
        return not _has_question_form(text, lang) and len(text.split()) <= 6
    if re.search(r"呢\s*[?？]?\s*$", text) and len(text) <= 16:
        return True
    return not _has_question_form(text, lang) and len(text) <= 10


def _names_en(text: str) -> list[str]:
    out = []
    for m in EN_NAME_RE.finditer(text):
        words = [w for w in m.group(0).split() if w not in EN_NOT_NAMES]
        if words and not all(w.lower() in MONTHS for w in words):
            out.append(" ".join(words))
    return out


def _names_zh(text: str) -> list[str]:
    return [
        t.word
        for t in jieba_module().posseg.cut(text)
        if t.flag in ZH_PLACE_FLAGS and len(t.word) >= 2
    ]


def resolve(previous: list[str], question: str) -> str:
    """The self-contained question a follow-up stands for (unchanged when it is one already).

    Args:
        previous: earlier user messages, oldest first.
        question: the latest user message.
    """
    question = question.strip()
    if not previous or not is_elliptical(question):
        return question
    base = next((p.strip() for p in reversed(previous) if p.strip() and not is_elliptical(p)), "")
    if not base:
        return question
    lang = text_language(base)
    years = YEAR_RE.findall(question)
    shift = -1 if BEFORE_RE.search(question) else 1 if AFTER_RE.search(question) else 0
    if not years and shift:
        years = [str(int(y) + shift) for y in YEAR_RE.findall(base)]
    out = base
    changed = False
    if years:
        old = YEAR_RE.findall(base)
        if old:
            for o, n in zip(old, years, strict=False):
                out = out.replace(o, n)
            changed = True
    asked_in = text_language(question)
    names = _names_en(question) if asked_in == "en" else _names_zh(question)
    if names:
        olds = _names_en(base) if lang == "en" else _names_zh(base)
        if olds:
            out = out.replace(olds[0], names[0], 1)
            changed = True
    if changed:
        return out
    fragment = EN_LEAD_RE.sub("", question) if asked_in == "en" else question
    fragment = ZH_LEAD_RE.sub("", ZH_TAIL_RE.sub("", fragment)).strip(" ?？")
    if not fragment:
        return base
    sep = " " if lang == "en" else "，"
    return base.rstrip(" ?？") + sep + fragment + ("?" if lang == "en" else "？")
