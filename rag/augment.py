"""Code-switched questions: cross-lingual training pairs from one-language QA data.

A question is rewritten word by word into the other language through the bundled
dictionaries (CC-CEDICT for Chinese -> English, the English word list for English ->
Chinese), each word with probability ``ratio``; its context stays as it is. The reader thus
sees English words over Chinese passages and Chinese words over English ones on thousands
of questions, where the parallel XQuAD-half data has 429 (code-switching augmentation,
Qin et al., CoSDA-ML, IJCAI 2020). Words the dictionaries do not know, numbers and
punctuation stay; function words that carry no meaning of their own are never rendered.
"""

from __future__ import annotations

import random
import re
from functools import lru_cache

from index.textnorm import CJK_RUN_RE, EN_STOPWORDS, jieba_module, stem, to_simplified
from rag.lexicon import (
    CEDICT_MAX_WORDS,
    FUNCTION_CHARS,
    GLOSS_WORD_RE,
    cedict_glosses,
    disk_cached,
    en_to_zh,
)

__all__ = ["code_switch", "zh_gloss"]

# Question words are rendered (they tell the reader what kind of span to find); other
# stopwords stay as they are.
QUESTION_WORDS = frozenset("what which who whom whose when where why how many much".split())
# Interrogatives both ways: the dictionaries render them loosely ("when" -> 就在那个时候).
INTERROGATIVES_EN = {
    "what": "什么",
    "which": "哪个",
    "who": "谁",
    "whom": "谁",
    "whose": "谁的",
    "when": "什么时候",
    "where": "哪里",
    "why": "为什么",
    "how": "如何",
}
INTERROGATIVES_ZH = {
    "什么": "what",
    "甚么": "what",
    "哪个": "which",
    "哪": "which",
    "谁": "who",
    "何时": "when",
    "什么时候": "when",
    "哪里": "where",
    "哪儿": "where",
    "为什么": "why",
    "为何": "why",
    "多少": "how many",
    "几": "how many",
    "如何": "how",
    "怎样": "how",
}
# English word-list senses that are grammar notes, not renderings ("data" -> 的复数)
GRAMMAR_NOTE_RE = re.compile(r"复数|过去式|过去分词|现在分词|第三人称|比较级|最高级")
EN_WORD_RE = re.compile(r"[A-Za-z][A-Za-z'\-]*")
# "how many" / "how much" is one token: it renders as one word (多少)
EN_TOKEN_RE = re.compile(r"\bhow (?:many|much)\b|[A-Za-z][A-Za-z'\-]*|[^A-Za-z]+", re.IGNORECASE)


@lru_cache(maxsize=1)
def _senses() -> dict[str, tuple[str, ...]]:
    """Simplified headword -> the first sense of each short CC-CEDICT gloss, in order."""
    return disk_cached("senses", _parse_senses)


def _parse_senses() -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for headword, glosses in cedict_glosses():
        for gloss in glosses:
            words = GLOSS_WORD_RE.findall(re.split(r"[;,]", gloss)[0])
            meaningful = [w for w in words if w.lower() not in EN_STOPWORDS]
            if (
                words
                and len(words) <= CEDICT_MAX_WORDS
                and (meaningful or words[0].lower() in QUESTION_WORDS)
            ):
                senses = out.setdefault(headword, [])
                if (sense := " ".join(words)) not in senses:
                    senses.append(sense)
    return {k: tuple(v) for k, v in out.items()}


def _in_context(senses: tuple[str, ...], context_stems: frozenset[str]) -> str:
    """The English sense whose content words the context holds most (the first on ties)."""
    best, share = senses[0], 0.0
    for sense in senses:
        content = [stem(w.lower()) for w in sense.split() if w.lower() not in EN_STOPWORDS]
        found = sum(c in context_stems for c in content) / len(content) if content else 0.0
        if found > share:
            best, share = sense, found
    return best


def zh_gloss(word: str, context_stems: frozenset[str] = frozenset()) -> str:
    """An English rendering of a Chinese word ("" when the dictionary lacks it).

    With ``context_stems`` (the stems of an English passage), the sense the passage uses.
    """
    simple = to_simplified(word)
    if len(word) == 1 and word in FUNCTION_CHARS:
        return ""
    if simple in INTERROGATIVES_ZH:
        return INTERROGATIVES_ZH[simple]
    senses = _senses().get(simple, ())
    return _in_context(senses, context_stems) if senses else ""


def _switch_zh(question: str, ratio: float, rng: random.Random, context: str) -> str:
    stems = frozenset(stem(w.lower()) for w in EN_WORD_RE.findall(context))
    parts: list[str] = []
    at = 0
    # cut the simplified form (a one-for-one fold: offsets carry over), keep the script
    for piece in jieba_module().cut(to_simplified(question)):
        word, at = question[at : at + len(piece)], at + len(piece)
        gloss = zh_gloss(word, stems) if CJK_RUN_RE.fullmatch(word) else ""
        parts.append(f" {gloss} " if gloss and rng.random() < ratio else word)
    return re.sub(r"\s+", " ", "".join(parts)).strip()


def _switch_en(question: str, ratio: float, rng: random.Random, context: str) -> str:
    simple = to_simplified(context)
    parts: list[str] = []
    for token in EN_TOKEN_RE.findall(question):
        low = token.lower()
        render: tuple[str, ...] = ()
        if low in ("how many", "how much"):
            render = ("多少",)
        elif low in INTERROGATIVES_EN:
            render = (INTERROGATIVES_EN[low],)
        elif token[0].isalpha() and low not in EN_STOPWORDS:
            render = tuple(s for s in en_to_zh(token) if not GRAMMAR_NOTE_RE.search(s))
            used = [s for s in render if s in simple]  # the passage's own word first
            render = (max(used, key=len), *render) if used else render
        parts.append(render[0] if render and rng.random() < ratio else token)
    # a rendered word loses the spaces around it, as Chinese writes it
    text = "".join(parts)
    return re.sub(r"(?<=[\u4e00-\u9fff]) (?=[\u4e00-\u9fff])", "", text).strip()


def code_switch(question: str, ratio: float, rng: random.Random, context: str = "") -> str:
    """The question with each dictionary word rendered in the other language at ``ratio``.

    A question with Chinese characters is rendered into English, any other into Chinese.
    Given the ``context`` it will be read over, a word of several senses is rendered in the
    one the context uses (CC-CEDICT's 报告 is "inform" and "report": a passage that says
    "report" gets "report"); otherwise in the dictionary's first.
    """
    if CJK_RUN_RE.search(question):
        return _switch_zh(question, ratio, rng, context)
    return _switch_en(question, ratio, rng, context)
