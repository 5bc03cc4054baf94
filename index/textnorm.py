"""Script detection, simplified-Chinese folding, pinyin and lexical tokenisation.

Used by the write path (to build the lexical index) and by the read path (to
tokenise questions the same way), so both sides always agree.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from index.types import Language, Script

CJK_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
WORD_RE = re.compile(r"[A-Za-z][A-Za-z'\-]*[A-Za-z]|[A-Za-z]|\d+(?:[.,]\d+)*")
CJK_RUN_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")

EN_STOPWORDS = frozenset(
    """a an the of in on at to for by with from and or as is are was were be been being
    did do does done has have had how what which who whom whose when where why that this
    these those it its into than then there their they them he she his her we our you your
    i me my not no so such can could will would should may might must shall about after
    before over under up down out more most much many per each other also all any some
    s t year years what's same just only very""".split()
)


def is_cjk(ch: str) -> bool:
    """Whether a character is a CJK ideograph."""
    return bool(CJK_RE.match(ch))


def cjk_ratio(text: str) -> float:
    """Share of CJK ideographs among the letters and ideographs of ``text``."""
    cjk = len(CJK_RE.findall(text))
    latin = sum(1 for ch in text if ch.isascii() and ch.isalpha())
    return cjk / max(1, cjk + latin)


NUMBER_RE = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?")


def numbers_in(text: str) -> tuple[str, ...]:
    """The numbers a text states, thousands separators dropped ("1,258" -> "1258")."""
    return tuple(n.replace(",", "") for n in NUMBER_RE.findall(text))


# interrogative words of either language (both scripts for Chinese)
ZH_ASKING_RE = re.compile(r"谁|誰|什么|什麼|多少|哪|几|幾|吗|嗎|怎|为何|為何|何时|何時|呢")
EN_ASKING_RE = re.compile(r"\b(?:who|whom|whose|what|which|when|where|why|how)\b", re.IGNORECASE)


def text_language(text: str) -> Language:
    """``"zh"`` or ``"en"``: the language a question or chat message is written in.

    A Chinese question may quote long English names ("Zhejiang Geely Holding Group 的董事长
    是谁?") and an English one Chinese names, so where only one language's interrogative
    words occur, they decide; otherwise the share of ideographs among the letters does
    (:func:`cjk_ratio` >= 0.3: Chinese).
    """
    zh, en = bool(ZH_ASKING_RE.search(text)), bool(EN_ASKING_RE.search(text))
    if zh != en:
        return "zh" if zh else "en"
    return "zh" if cjk_ratio(text) >= 0.3 else "en"


@lru_cache(maxsize=1)
def _t2s():  # type: ignore[no-untyped-def]
    import opencc

    return opencc.OpenCC("t2s")


@lru_cache(maxsize=65536)
def _simplify_char(ch: str) -> str:
    out: str = _t2s().convert(ch)
    return out if len(out) == 1 else ch


def to_simplified(text: str) -> str:
    """Fold traditional characters to simplified ones, one character for one.

    The result has the same length as the input, so offsets carry over.
    """
    if len(text) <= 512:  # sentences are folded again for every question
        return _to_simplified_cached(text)
    return "".join(_simplify_char(ch) if is_cjk(ch) else ch for ch in text)


@lru_cache(maxsize=32768)
def _to_simplified_cached(text: str) -> str:
    return "".join(_simplify_char(ch) if is_cjk(ch) else ch for ch in text)


def detect_script(text: str) -> Script:
    """Tell English, simplified Chinese and traditional Chinese apart."""
    if cjk_ratio(text) < 0.3:
        return "en"
    cjk = CJK_RE.findall(text)
    changed = sum(1 for ch in cjk if _simplify_char(ch) != ch)
    return "zh-Hant" if changed / max(1, len(cjk)) > 0.04 else "zh-Hans"


def normalize(text: str) -> str:
    """NFKC, folded to simplified Chinese and lower case: the form used for matching."""
    return to_simplified(unicodedata.normalize("NFKC", text)).lower()


@lru_cache(maxsize=1)
def pinyin_syllables() -> frozenset[str]:
    """Every toneless pinyin syllable that pypinyin knows for the basic CJK block.

    Read from pypinyin's character table (its ~1,500 distinct toned readings, tones
    stripped) rather than by romanising the 20,902 characters: the same 420 syllables
    in 15 ms instead of 0.7 s, which every question that carries a Latin word pays.
    """
    from pypinyin.contrib.tone_convert import to_normal
    from pypinyin.pinyin_dict import pinyin_dict

    toned = {
        reading
        for code, readings in pinyin_dict.items()
        if 0x4E00 <= code <= 0x9FA5
        for reading in readings.split(",")
    }
    return frozenset(s for s in map(to_normal, toned) if s.isalpha())


@lru_cache(maxsize=65536)
def char_pinyin(ch: str) -> str:
    """Toneless pinyin of one CJK character (its most common reading)."""
    from pypinyin import Style, lazy_pinyin

    out = lazy_pinyin(ch, style=Style.NORMAL, errors="ignore")
    return out[0] if out else ""


@lru_cache(maxsize=65536)
def segment_pinyin(word: str) -> tuple[str, ...]:
    """Split a romanised word into pinyin syllables ("Dingxiang" -> ding, xiang).

    Returns an empty tuple when the word is not a run of valid syllables. Among the
    valid splits the one with the fewest syllables wins.
    """
    w = word.lower()
    if not w.isalpha() or not w.isascii() or len(w) < 2:
        return ()
    syll = pinyin_syllables()
    n = len(w)
    best: list[tuple[str, ...] | None] = [None] * (n + 1)
    best[0] = ()
    for i in range(n):
        prev = best[i]
        if prev is None:
            continue
        for j in range(i + 1, min(n, i + 6) + 1):
            piece = w[i:j]
            if piece in syll:
                cand = (*prev, piece)
                cur = best[j]
                if cur is None or len(cand) < len(cur):
                    best[j] = cand
    return best[n] or ()


@lru_cache(maxsize=1)
def _stemmer():  # type: ignore[no-untyped-def]
    import Stemmer

    return Stemmer.Stemmer("english")


def stem(word: str) -> str:
    """English Snowball stem of a lower-cased word."""
    out: str = _stemmer().stemWord(word)
    return out


def english_terms(text: str) -> list[str]:
    """Stemmed English content words and numbers of ``text`` (stop words removed)."""
    out = []
    for m in WORD_RE.finditer(unicodedata.normalize("NFKC", text)):
        w = m.group(0).lower().replace(",", "")
        if w.endswith(("'s", "’s")):
            w = w[:-2]
        if w in EN_STOPWORDS:
            continue
        out.append(stem(w) if w[0].isalpha() else w)
    return out


def pinyin_terms(text: str) -> list[str]:
    """Syllable bigrams that let romanised names meet the characters they spell.

    CJK runs contribute the pinyin of each pair of adjacent characters; capitalised
    Latin words that split into pinyin syllables contribute their own pairs, so
    "Dingxiang" and 定襄 share the term ``py:ding_xiang``.
    """
    out: list[str] = []
    for run in CJK_RUN_RE.findall(text):
        syl = [char_pinyin(ch) for ch in run]
        out.extend(f"py:{a}_{b}" for a, b in zip(syl, syl[1:], strict=False) if a and b)
    for m in re.finditer(r"\b[A-Z][a-z]+(?:[A-Z][a-z]+)*\b", text):
        syl = list(segment_pinyin(m.group(0)))
        out.extend(f"py:{a}_{b}" for a, b in zip(syl, syl[1:], strict=False))
    return out


def chinese_terms(text: str) -> list[str]:
    """Simplified-Chinese character unigrams and bigrams of every CJK run."""
    out: list[str] = []
    for run in CJK_RUN_RE.findall(to_simplified(text)):
        out.extend(run)
        out.extend(run[i : i + 2] for i in range(len(run) - 1))
    return out


def lexical_terms(text: str) -> list[str]:
    """All lexical-index terms of a text: English stems, Chinese n-grams, pinyin pairs."""
    return english_terms(text) + chinese_terms(text) + pinyin_terms(text)


@lru_cache(maxsize=1)
def jieba_module():  # type: ignore[no-untyped-def]
    """Jieba (Chinese word segmentation), imported once and kept quiet."""
    import logging

    import jieba
    import jieba.posseg

    jieba.setLogLevel(logging.WARNING)
    return jieba
