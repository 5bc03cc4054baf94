"""A bilingual word list (English <-> simplified Chinese) for cross-lingual matching.

Built from the English-Chinese dictionary that ships in the ``cedict`` package, loaded
lazily on first use.
"""

from __future__ import annotations

import csv
import re
from functools import lru_cache
from pathlib import Path

from index.textnorm import CJK_RUN_RE, EN_STOPWORDS, stem

POS_RE = re.compile(r"\b(?:n|v|vt|vi|adj|adv|prep|conj|pron|num|art|int|abbr|aux|pl)\.")
BRACKETS_RE = re.compile(r"\[[^\]]*\]|\([^)]*\)|（[^）]*）|<[^>]*>")
SPLIT_RE = re.compile(r"[,;，；/、\s]+")
MAX_SENSES = 12
FUNCTION_CHARS = frozenset("在的了是使把被给对和与或及其之也又而且就都很")


# Abbreviations common in economic news that CC-CEDICT's English index lacks.
GLOSSARY: dict[str, tuple[str, ...]] = {
    "sme": ("中小企业",),
    "smes": ("中小企业",),
    "medium-sized": ("中小企业", "中型"),  # "small and medium-sized enterprises"
    "gdp": ("生产总值", "地区生产总值"),
    "ai": ("人工智能",),
    "ev": ("新能源汽车", "电动汽车"),
}


def _csv_path() -> Path | None:
    try:
        import cedict
    except ImportError:
        return None
    path = Path(cedict.__file__).parent / "csv" / "EnWords.csv"
    return path if path.exists() else None


@lru_cache(maxsize=1)
def _tables() -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    en_zh: dict[str, tuple[str, ...]] = {}
    zh_en: dict[str, list[str]] = {}
    path = _csv_path()
    if path is None:
        return {}, {}
    with open(path, encoding="utf-8") as fh:
        reader = csv.reader(fh)
        next(reader, None)
        for row in reader:
            if len(row) < 2:
                continue
            word = row[0].strip().lower()
            if not word.isalpha():
                continue
            body = BRACKETS_RE.sub(" ", POS_RE.sub(",", row[1]))
            senses: list[str] = []
            for item in SPLIT_RE.split(body):
                for run in CJK_RUN_RE.findall(item):
                    if len(run) > 2 and run.endswith("的"):
                        run = run[:-1]
                    if run in FUNCTION_CHARS or not 1 <= len(run) <= 6 or run in senses:
                        continue
                    senses.append(run)
            if not senses:
                continue
            en_zh[word] = tuple(senses[:MAX_SENSES])
            for s in senses[:MAX_SENSES]:
                zh_en.setdefault(s, []).append(word)
    for word, extra in GLOSSARY.items():
        en_zh[word] = tuple(dict.fromkeys((*extra, *en_zh.get(word, ()))))[:MAX_SENSES]
        for sense in extra:
            zh_en.setdefault(sense, []).insert(0, word)
    return en_zh, {k: tuple(v[:20]) for k, v in zh_en.items()}


def lemmas(word: str) -> list[str]:
    """The word and plausible base forms (plural, past, gerund, comparative)."""
    w = word.lower()
    out = [w]
    for suffix, repl in (
        ("ies", "y"),
        ("es", ""),
        ("s", ""),
        ("ed", ""),
        ("ed", "e"),
        ("ing", ""),
        ("ing", "e"),
        ("ly", ""),
        ("er", ""),
        ("est", ""),
    ):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            out.append(w[: -len(suffix)] + repl)
    return out


# Words that report the same change in news prose ("grow" ~ "increased by"), with the
# irregular forms the suffix stemmer cannot reduce.
EN_SYNONYM_GROUPS = (
    "increase increased increases grow grew grown growth rise rose risen raise raised climb "
    "climbed expand expanded gain gained",
    "decrease decreased decreases fall fell fallen drop dropped decline declined reduce "
    "reduced reduction cut lower lowered",
)


@lru_cache(maxsize=1)
def _synonym_stems() -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for group in EN_SYNONYM_GROUPS:
        stems = tuple(dict.fromkeys(stem(w) for w in group.split()))
        for s in stems:
            out[s] = stems
    return out


def en_synonyms(word: str) -> tuple[str, ...]:
    """Stems of the words that say the same as an English word (the word's own included)."""
    own = stem(word.lower())
    return _synonym_stems().get(own, (own,))


def en_to_zh(word: str) -> tuple[str, ...]:
    """Simplified-Chinese renderings of an English word (empty when unknown)."""
    table = _tables()[0]
    for lemma in lemmas(word):
        if lemma in table:
            return table[lemma]
    return ()


@lru_cache(maxsize=16384)
def zh_to_en(word: str) -> tuple[str, ...]:
    """English stems for a simplified-Chinese word (empty when unknown).

    A compound the dictionary lacks (科技型中小企业) is translated through its parts.
    """
    table = _tables()[1]
    direct = tuple(dict.fromkeys(stem(w) for w in table.get(word, ()) if w not in EN_STOPWORDS))
    if direct or len(word) < 3:
        return direct
    from index.textnorm import jieba_module

    parts = [p for p in jieba_module().cut_for_search(word) if p != word and len(p) >= 2]
    found: dict[str, None] = {}
    for p in parts:
        for w in table.get(p, ()):
            if w not in EN_STOPWORDS:
                found[stem(w)] = None
    return tuple(found)


# Chinese measure words and the English nouns they count (a general linguistic table).
MEASURE_NOUNS: dict[str, tuple[str, ...]] = {
    "家": (
        "enterprise",
        "company",
        "firm",
        "institution",
        "bank",
        "hospital",
        "store",
        "shop",
        "factory",
        "institute",
        "incubator",
        "business",
    ),
    "座": (
        "mine",
        "plant",
        "station",
        "bridge",
        "building",
        "tower",
        "mountain",
        "city",
        "dam",
        "port",
    ),
    "户": ("household", "family", "home"),
    "人": ("people", "person", "talent", "worker", "employee", "resident", "staff", "student"),
    "名": ("people", "person", "talent", "worker", "employee", "student", "expert"),
    "项": (
        "project",
        "item",
        "technology",
        "achievement",
        "standard",
        "patent",
        "program",
        "measure",
    ),
    "个": (
        "project",
        "platform",
        "team",
        "city",
        "park",
        "cluster",
        "chain",
        "base",
        "center",
        "laboratory",
        "item",
    ),
    "种": ("kind", "type", "variety", "product", "species", "light"),
    "台": ("machine", "equipment", "set", "unit", "robot", "camera"),
    "辆": ("vehicle", "car", "truck", "bus"),
    "条": ("line", "road", "chain", "route"),
    "所": ("school", "university", "institute", "hospital"),
    "位": ("place", "position", "rank", "people"),
    "市": ("city",),
    "县": ("county",),
    "批": ("batch", "group"),
}


def measure_word_fits(measure: str, noun: str) -> bool:
    """Whether a Chinese measure word counts an English noun (座 ~ mines)."""
    from index.textnorm import stem

    m = measure[-1:] if measure else ""
    nouns = MEASURE_NOUNS.get(
        {
            "個": "个",
            "戶": "户",
            "項": "项",
            "種": "种",
            "臺": "台",
            "輛": "辆",
            "條": "条",
            "縣": "县",
        }.get(m, m),
        (),
    )
    return stem(noun.lower()) in {stem(n) for n in nouns}
