"""Where a question's terms occur in a sentence, within and across languages.

A question becomes a list of *units* (a content word, a number, a name); each unit is
a set of alternative forms to look for: the word's stem, its dictionary translations,
or the pinyin pairs of a romanised name. Coverage is the share of units found.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate

from index.textnorm import (
    CJK_RUN_RE,
    EN_STOPWORDS,
    WORD_RE,
    char_pinyin,
    jieba_module,
    segment_pinyin,
    stem,
    to_simplified,
)
from rag.candidates import LEGAL_WORDS
from rag.lexicon import en_synonyms, en_to_zh, lemmas, zh_to_en
from rag.timeref import time_refs
from rag.types import Query

GENERIC_ZH = frozenset(
    "中国 全国 我国 山西 一个 进行 实现 推动 发展 建设 工作 有关 已经 目前 其中 "
    "什么 多少 哪些 哪个 哪家 哪里 怎样 如何 是否 几大 之一".split()
)


# "how *fast*", "how *long*": the word after "how" asks for the answer, the text won't say it
HOW_WORD_RE = re.compile(r"\bhow\s+$", re.IGNORECASE)


@dataclass(frozen=True)
class Unit:
    """One thing the question talks about, with the forms it may take in the sentence."""

    kind: str  # "word", "number", "name"
    forms: tuple[str, ...]
    weight: float = 1.0


@dataclass(frozen=True)
class SentenceView:
    """Precomputed matching forms of one sentence (offsets relative to the sentence)."""

    text: str
    simp: str
    is_zh: bool
    stems: tuple[tuple[str, int, int], ...]
    pinyin_pairs: tuple[tuple[str, int, int], ...]
    stem_at: dict[str, list[tuple[int, int]]]
    pair_at: dict[str, list[tuple[int, int]]]
    nocomma: str
    time_at: dict[str, list[tuple[int, int]]]


@lru_cache(maxsize=8192)
def view(text: str) -> SentenceView:
    """Matching forms of a sentence (cached by text)."""
    simp = to_simplified(text).lower()
    is_zh = (
        len(CJK_RUN_RE.findall(text)) > 0
        and sum(len(r) for r in CJK_RUN_RE.findall(text)) > len(text) * 0.3
    )
    stems = tuple(
        (
            stem(m.group(0).lower()) if m.group(0)[0].isalpha() else m.group(0).replace(",", ""),
            m.start(),
            m.end(),
        )
        for m in WORD_RE.finditer(text)
    )
    pairs: list[tuple[str, int, int]] = []
    for m in CJK_RUN_RE.finditer(text):
        syl = [char_pinyin(ch) for ch in m.group(0)]
        for i in range(len(syl) - 1):
            pairs.append((f"{syl[i]}_{syl[i + 1]}", m.start() + i, m.start() + i + 2))
    for m in re.finditer(r"\b[A-Z][a-z]+\b", text):
        word_syl = segment_pinyin(m.group(0))
        for i in range(len(word_syl) - 1):
            pairs.append((f"{word_syl[i]}_{word_syl[i + 1]}", m.start(), m.end()))
    stem_at: dict[str, list[tuple[int, int]]] = {}
    for t, a, b in stems:
        stem_at.setdefault(t, []).append((a, b))
        if "-" in t:  # "technology-based" also stands for "technology"
            for part in text[a:b].lower().split("-"):
                if len(part) >= 3:
                    stem_at.setdefault(stem(part), []).append((a, b))
    pair_at: dict[str, list[tuple[int, int]]] = {}
    for t, a, b in pairs:
        pair_at.setdefault(t, []).append((a, b))
    time_at: dict[str, list[tuple[int, int]]] = {}
    for key, a, b in time_refs(text):
        time_at.setdefault(key, []).append((a, b))
    return SentenceView(
        text, simp, is_zh, stems, tuple(pairs), stem_at, pair_at, text.replace(",", ""), time_at
    )


def _name_pairs(word: str) -> tuple[str, ...]:
    syl = segment_pinyin(word)
    return tuple(f"{a}_{b}" for a, b in zip(syl, syl[1:], strict=False))


@lru_cache(maxsize=1024)
def _units_cached(query: Query, target_zh: bool) -> tuple[Unit, ...]:
    units: list[Unit] = []
    for n in dict.fromkeys(query.numbers):
        units.append(Unit("number", (n,)))
    for key in query.times:  # "this year" ~ 今年: one key in both languages
        units.append(Unit("time", (f"tm:{key}",)))
    if query.lang == "en":
        seen: set[str] = set()
        # words of a time phrase are matched as its key ("January-February" ~ 1-2月)
        timed = [(a, b) for _, a, b in time_refs(query.text)]
        for m in re.finditer(r"[A-Za-z][A-Za-z\-']*", query.text):
            w = m.group(0)
            lw = w.lower()
            if lw in EN_STOPWORDS or len(lw) < 3 or lw in seen:
                continue
            if any(a <= m.start() < b for a, b in timed) or HOW_WORD_RE.search(
                query.text, 0, m.start()
            ):
                continue
            seen.add(lw)
            pairs = _name_pairs(w) if w[0].isupper() else ()
            if pairs and len(pairs) >= 1 and len(w) >= 5:
                units.append(Unit("name", tuple(f"py:{p}" for p in pairs), 1.5))
                if target_zh:
                    continue
            if target_zh:
                forms = tuple(t for t in en_to_zh(lw) if len(t) >= 2) or en_to_zh(lw)
                if forms:
                    units.append(Unit("word", tuple(f"zh:{t}" for t in forms)))
            else:
                stems = [f"en:{s}" for s in en_synonyms(lw)]
                parts = [stem(p) for p in lw.split("-") if len(p) >= 2]
                if len(parts) > 1:  # "above-designated-size" ~ "above designated size"
                    stems.append("all:" + "+".join(parts))
                units.append(Unit("word", tuple(stems)))
    else:
        jieba = jieba_module()

        simp = to_simplified(query.text)
        for w in dict.fromkeys(jieba.lcut(simp)):
            if not CJK_RUN_RE.fullmatch(w) or len(w) < 2 or w in GENERIC_ZH:
                continue
            if target_zh:
                units.append(Unit("word", (f"zh:{w}",)))
            else:
                forms = tuple(f"en:{t}" for t in zh_to_en(w))
                pairs = tuple(
                    f"py:{char_pinyin(a)}_{char_pinyin(b)}" for a, b in zip(w, w[1:], strict=False)
                )
                if forms:
                    units.append(Unit("word", forms))
                units.append(Unit("name", pairs, 1.0))
    return tuple(units)


def question_units(query: Query, sentence_is_zh: bool) -> tuple[Unit, ...]:
    """The question's units, with forms in the sentence's language."""
    return _units_cached(query, sentence_is_zh)


def find(unit: Unit, sv: SentenceView) -> list[tuple[int, int]]:
    """Positions (relative to the sentence) where a unit occurs."""
    out: list[tuple[int, int]] = []
    for form in unit.forms:
        kind, _, body = form.partition(":") if ":" in form else ("num", "", form)
        if unit.kind == "number":
            if form in sv.nocomma:
                out.extend(
                    (m.start(), m.end())
                    for m in re.finditer(rf"(?<![\d.]){re.escape(form)}(?![\d])", sv.nocomma)
                )
        elif kind == "en":
            out.extend(sv.stem_at.get(body, ()))
        elif kind == "all":
            parts = body.split("+")
            if all(p in sv.stem_at for p in parts):
                out.extend(pos for p in parts for pos in sv.stem_at[p])
        elif kind in ("zh", "raw"):
            start = sv.simp.find(body)
            while start >= 0:
                out.append((start, start + len(body)))
                start = sv.simp.find(body, start + 1)
        elif kind == "py":
            out.extend(sv.pair_at.get(body, ()))
        elif kind == "tm":
            out.extend(sv.time_at.get(body, ()))
    if unit.kind == "name" and out:
        found = sum(1 for f in unit.forms if f[3:] in sv.pair_at)
        if found * 2 < len(unit.forms):
            return []
    return out


@lru_cache(maxsize=16384)
def _unit_hits(query: Query, text: str) -> tuple[list[tuple[int, int]], ...]:
    """Where each of the question's units occurs in a text (one search per unit and text)."""
    sv = view(text)
    return tuple(find(u, sv) for u in question_units(query, sv.is_zh))


@lru_cache(maxsize=16384)
def coverage(query: Query, text: str) -> tuple[float, list[tuple[int, int]], float]:
    """Share of question units found in a sentence, their positions, and the name share."""
    sv = view(text)
    units = question_units(query, sv.is_zh)
    if not units:
        return 0.0, [], 0.0
    total = sum(u.weight for u in units)
    hit = 0.0
    names = [u for u in units if u.kind == "name"]
    name_hit = 0
    positions: list[tuple[int, int]] = []
    for u, where in zip(units, _unit_hits(query, text), strict=True):
        if where:
            hit += u.weight
            positions.extend(where)
            if u.kind == "name":
                name_hit += 1
    return hit / total, positions, (name_hit / len(names) if names else 1.0)


COUNTRY_WORDS = frozenset({"china"})
# Common words inside English names ("Shanxi Provincial *Energy Administration*"): their
# dictionary translations do not find the Chinese name, so across languages only the
# romanised parts ("Shanxi") and true foreign names ("Berlin", "Honda") are looked for.
NAME_COMMON_WORDS = frozenset(
    """group company co ltd corp corporation province provincial city municipal county town
    district village park street road mine plant factory bank university institute college
    committee department bureau center centre laboratory lab industry industrial industries
    heavy equipment technology technologies science sciences energy administration office
    government data digital intelligent intelligence innovation economic economy development
    zone base platform network internet system association chamber commerce rail transit
    coal electricity power iron steel new big general national state people team project
    manufacturing machinery electric chemical materials research services service holdings
    international modern smart green high tech chinese""".split()
)
MONTH_WORDS = frozenset(
    "january february march april may june july august september october november december "
    "monday tuesday wednesday thursday friday saturday sunday".split()
)
COUNTRY_EN = frozenset(
    {"national", "nationwide", "country", "nation", "state-level", "national-level"}
)
COUNTRY_ZH = ("全国", "我国", "中国", "国家", "全國", "國家")
ZH_PROPER = frozenset("ns nr nt nz nrt nrfg".split())
ASPECT_PARTICLES = frozenset("了过過着著")
QUESTION_WORDS = frozenset(
    "what which who whom whose when where why how in on at by of for the a an to from".split()
)


@lru_cache(maxsize=1024)
def entity_units(query: Query, sentence_is_zh: bool) -> tuple[Unit, ...]:
    """The proper names a question is about (places, companies, people), as units.

    An answer about another entity is no answer: "Hunan" is not "Hubei", and a question
    about "Sany Heavy Industry" is not answered by a sentence about Zoomlion.
    """
    units: list[Unit] = []
    if query.lang == "en":
        words = list(re.finditer(r"[A-Za-z][A-Za-z0-9\-]*(?:['’]s)?", query.text))
        groups: list[list[str]] = []
        for i, m in enumerate(words):
            w = re.sub(r"['’]s$", "", m.group(0))
            capital = w[0].isupper() and w.lower() not in QUESTION_WORDS and (i > 0 or len(w) > 1)
            if capital and i == 0 and w.lower() in EN_STOPWORDS:
                capital = False
            if capital:
                if (
                    groups
                    and words[i - 1].end() + 1 >= m.start()
                    and groups[-1][-1] == words[i - 1].group(0).rstrip("'s’")
                ):
                    groups[-1].append(w)
                else:
                    groups.append([w])
        for g in groups:
            for k, w in enumerate(g):
                low = w.lower()
                if low in EN_STOPWORDS or len(w) < 2 or low.split("-")[0] in MONTH_WORDS:
                    continue
                pairs = _name_pairs(w) if len(w) >= 5 and pinyin_word(low) else ()
                first = g is groups[0] and k == 0 and words[0].group(0).startswith(w)
                if first and len(g) == 1 and not pairs:
                    continue  # "Roughly how thick ...": a capital from the sentence start
                forms: list[str] = [f"py:{p}" for p in pairs]
                if any(ch.isdigit() for ch in w):  # "PM10", "L2": written alike in both languages
                    coded = [p for p in low.split("-") if any(ch.isdigit() for ch in p)]
                    units.append(Unit("entity", tuple(f"raw:{p}" for p in coded)))
                    continue
                if sentence_is_zh:
                    # Across languages only romanised names (and the country) carry over:
                    # a dictionary translation of "Group" or "Heavy" matches anything.
                    if low in COUNTRY_WORDS or (not pairs and low not in NAME_COMMON_WORDS):
                        forms += [f"zh:{t}" for t in en_to_zh(low) if len(t) >= 2]
                else:
                    forms.append(f"en:{stem(low)}")
                if w.lower() in COUNTRY_WORDS:  # Chinese news says "national", 全国, 我国
                    forms += [f"zh:{t}" for t in COUNTRY_ZH] if sentence_is_zh else []
                    forms += [f"en:{stem(t)}" for t in COUNTRY_WORDS | COUNTRY_EN]
                if forms:
                    units.append(Unit("entity", tuple(forms)))
    else:
        toks = list(jieba_module().posseg.cut(to_simplified(query.text)))
        for k, tok in enumerate(toks):
            if len(tok.word) < 2 or tok.word in GENERIC_ZH:
                continue
            if k + 1 < len(toks) and toks[k + 1].word in ASPECT_PARTICLES:
                continue  # "河南新建了": an aspect particle follows a verb, not a name
            # jieba's "j" (abbreviation) is a name (中联重科) unless the dictionary knows it
            # as a common term (中小企业 "SMEs")
            if tok.flag not in ZH_PROPER and not (
                tok.flag == "j" and not zh_to_en(tok.word, head=False)
            ):
                continue
            if sentence_is_zh:
                units.append(Unit("entity", (f"zh:{tok.word}",)))
            else:
                pairs = tuple(
                    f"py:{char_pinyin(a)}_{char_pinyin(b)}"
                    for a, b in zip(tok.word, tok.word[1:], strict=False)
                )
                units.append(Unit("entity", pairs + tuple(f"en:{t}" for t in zh_to_en(tok.word))))
    return tuple(units)


def pinyin_word(low: str) -> bool:
    """Whether an English word may be a romanised Chinese name ("shanxi", not "chinese")."""
    meanings = en_to_zh(low)
    return not meanings or any(
        "".join(char_pinyin(ch) for ch in t) == low for t in meanings if len(t) >= 2
    )


def entity_coverage(query: Query, text: str, lead: str = "") -> float:
    """Share of the question's named entities that a text mentions (1.0 when it names none).

    ``lead``: the document's title and opening, whose subject ("Shanxi", "Guangqi Honda")
    later passages leave unnamed ("the province", "the company").
    """
    sv = view(text)
    lv = view(lead) if lead else None
    units = entity_units(query, sv.is_zh)
    if not units:
        return 1.0
    found = 0
    for u in units:
        if any(_found_form(f, sv) or (lv is not None and _found_form(f, lv)) for f in u.forms):
            found += 1
    return found / len(units)


@lru_cache(maxsize=1024)
def _predicate_units(query: Query, sentence_is_zh: bool) -> tuple[int, ...]:
    """Indexes (into ``question_units``) of the units that are not names."""
    names = {f for u in entity_units(query, sentence_is_zh) for f in u.forms}
    return tuple(
        i
        for i, u in enumerate(question_units(query, sentence_is_zh))
        if u.kind in ("word", "time") and not names.intersection(u.forms)
    )


@lru_cache(maxsize=16384)
def predicate_coverage(query: Query, text: str) -> float:
    """Share of the question's terms other than its names (what is said about them) in a text.

    "In what year was Huawei's Coal Mine Corps *founded*": a sentence naming the Corps but
    not its founding does not answer it.
    """
    picked = _predicate_units(query, view(text).is_zh)
    if not picked:
        return 1.0
    hits = _unit_hits(query, text)
    return sum(1 for i in picked if hits[i]) / len(picked)


def _found_form(form: str, sv: SentenceView) -> bool:
    kind, _, body = form.partition(":")
    if kind == "en":
        return body in sv.stem_at
    if kind == "all":
        return all(p in sv.stem_at for p in body.split("+"))
    if kind in ("zh", "raw"):
        return body in sv.simp
    return body in sv.pair_at


@lru_cache(maxsize=1024)
def _phrase_forms(query: Query, sentence_is_zh: bool) -> tuple[tuple[str, ...], ...]:
    """Each phrase word's forms in the sentence's language (stems, or simplified Chinese)."""
    out: list[tuple[str, ...]] = []
    for w in query.phrase:
        if query.lang == "en" and not sentence_is_zh:
            # a compound with digits ("100-billion-yuan") is looked up as written
            out.append((f"raw:{w}",) if any(ch.isdigit() for ch in w) else (f"en:{stem(w)}",))
        elif query.lang == "en":
            forms = tuple(f"zh:{t}" for t in en_to_zh(w) if len(t) >= 2)
            syllables = segment_pinyin(w) if w.isalpha() else []
            if len(syllables) >= 2:  # a romanised Chinese term ("zhuanjingtexin")
                forms += tuple(
                    f"py:{a}_{b}" for a, b in zip(syllables, syllables[1:], strict=False)
                )
            if forms:
                out.append(forms)
        elif sentence_is_zh:
            out.append((f"zh:{w}",))
        else:  # a compound is asked in full: 民营企业 is "private" and "enterprise"
            parts = _tiles(w)
            if len(parts) < 2 or not all(zh_to_en(p, head=False) for p in parts):
                parts = [w]
            for part in parts:
                forms = tuple(f"en:{t}" for t in zh_to_en(part))
                if forms:
                    out.append(forms)
    return tuple(out)


@lru_cache(maxsize=4096)
def _tiles(word: str) -> list[str]:
    """A Chinese compound cut into the dictionary words that make it up.

    民营企业 -> 民营, 企业; the word alone when it cannot be tiled.
    """
    if len(word) < 3:
        return [word]
    subs = {p for p in jieba_module().cut_for_search(word) if p != word and len(p) >= 2}
    out, i = [], 0
    while i < len(word):
        nxt = max((p for p in subs if word.startswith(p, i)), key=len, default="")
        if not nxt:
            return [word]
        out.append(nxt)
        i += len(nxt)
    return out


def phrase_coverage(query: Query, text: str) -> float:
    """Share of the asked-about phrase's words that a (short) text contains.

    "How many *new R&D institutions*": the phrase right after 477 in "477 new R&D
    institutions, 84 incubators" has all three; the one after 84 has none.
    """
    if not text.strip():
        return 0.0
    sv = view(text)
    units = _phrase_forms(query, sv.is_zh)
    if not units:
        return 0.0
    found = sum(any(_found_form(f, sv) for f in forms) for forms in units)
    if query.lang == "zh" and sv.is_zh:  # jieba may cut the text differently: char bigrams
        grams = {w[i : i + 2] for w in query.phrase for i in range(len(w) - 1)}
        if grams:
            return max(found / len(units), sum(g in sv.simp for g in grams) / len(grams))
    return found / len(units)


# Legal and generic words of organisation names, and the words that join them: they tell no
# organisation from another.
ORG_FORMS = LEGAL_WORDS | {"llc", "of", "and", "the"}
# The noun a question asks for ("in which *county*", "哪个*市*") is the answer's kind, not a
# name the question states.
ASKED_EN_RE = re.compile(r"\b(?:which|what)\s+(\w+)")
ASKED_ZH_RE = re.compile(r"(?:哪[个家座所位条一]?|什么)\w{0,2}")


def _spelled_or_translated(word: str, pairs: set[str], question: str) -> bool:
    """Whether an English name word is pinyin of the question's characters or translates one."""
    low = word.lower()
    if pinyin_word(low):
        sp = _name_pairs(word)
        if sp and set(sp) <= pairs:
            return True
    return any(zh in question for zh in en_to_zh(low))


@lru_cache(maxsize=4096)
def restates_question(query: Query, name: str) -> bool:
    """Whether a candidate name is one the question itself states, in either language.

    "江苏华美热电有限公司是哪家企业的全资子公司?" is not answered by "Jiangsu Huamei Thermal
    Power Co., Ltd", nor "Besides Zhonglian Data, which company ..." by 中聯數據.
    """
    simp = to_simplified(name).lower()
    bare = re.sub(r"[\W_]+", "", simp)
    if len(bare) < 2:
        return False
    name_zh = bool(CJK_RUN_RE.search(simp))
    if name_zh == (query.lang == "zh"):  # same script: written in the question
        if len(bare) >= (2 if name_zh else 4) and bare in re.sub(r"[\W_]+", "", query.norm):
            return True
        # "Taizhong Group" for "... Taizhong's equipment": its distinctive words all there
        said = set(re.findall(r"[a-z0-9]+", re.sub(r"['’]s\b", "", query.norm.lower())))
        own = [w for w in re.findall(r"[a-z0-9]+", simp) if w not in ORG_FORMS]
        return not name_zh and bool(own) and all(w in said for w in own)
    pairs = {p[3:] for p in query.pinyin}
    if query.lang == "zh":  # an English name: its romanised words all spell the question's,
        words = re.findall(r"[A-Z][a-z]+", name)  # or each of its words spells or translates one
        romanised = [_name_pairs(w) for w in words if pinyin_word(w.lower())]
        if romanised and all(sp and set(sp) <= pairs for sp in romanised):
            return True
        told = ASKED_ZH_RE.sub(" ", query.norm)
        return bool(words) and all(_spelled_or_translated(w, pairs, told) for w in words)
    # a Chinese name under an English question: each word romanised or translated there
    found = _zh_words_stated(query, simp)
    return bool(found) and all(found)


def _zh_words_stated(query: Query, simp: str) -> list[int]:
    """How the English question states each word of a Chinese name.

    2: spelled in pinyin (a romanised name, or a surname: "Mr. Cai" ~ 蔡先生); 1: translated;
    0: neither. The noun the question asks for does not count.
    """
    pairs = {p[3:] for p in query.pinyin}
    asked = {stem(w) for w in ASKED_EN_RE.findall(query.norm.lower())}
    stems = {stem(x) for t in query.terms if t not in asked for x in lemmas(t)}
    words_said = set(re.findall(r"[a-z]+", query.norm.lower()))
    out = []
    for w in (w for w in jieba_module().lcut(simp) if CJK_RUN_RE.fullmatch(w)):
        syl = [char_pinyin(ch) for ch in w]
        spelled = {f"{a}_{b}" for a, b in zip(syl, syl[1:], strict=False)}
        if (len(w) <= 3 and syl[0] in words_said) or (spelled and spelled <= pairs):
            out.append(2)
        else:
            out.append(int(bool(stems.intersection(zh_to_en(w)))))
    return out


@lru_cache(maxsize=4096)
def restated_prefix(query: Query, name: str) -> int:
    """Length of the longest leading run of two or more words of a name that the question states.

    "Which mine of ... Xishan Coal and Electricity Company ...": 煤電公司杜兒坪礦 leads with
    煤電公司, which the question names; 0 when no such run leaves a remainder.
    """
    simp = to_simplified(name)
    if CJK_RUN_RE.search(simp):
        words = jieba_module().lcut(simp)
    else:
        words = re.findall(r"\S+\s*", simp)
    ends = list(accumulate(len(w) for w in words))
    for n in range(len(words) - 1, 1, -1):
        if restates_question(query, name[: ends[n - 1]].strip()):
            return ends[n - 1]
    return 0


@lru_cache(maxsize=4096)
def restates_tail(query: Query, name: str) -> bool:
    """Whether a Chinese name under an English question ends with a name the question states.

    The last words of a Chinese noun phrase are its head: 商戶蔡先生 ("the shopkeeper Mr. Cai")
    is the "Mr. Cai" the question names, not its answer.
    """
    simp = to_simplified(name)
    if query.lang != "en" or not CJK_RUN_RE.search(simp):
        return False
    words = jieba_module().lcut(simp)
    ends = list(accumulate(len(w) for w in words))
    for n in range(1, len(words)):
        tail = name[ends[n - 1] :]
        # the tail must name someone or something (a romanised word), not just a kind of
        # thing the question also uses ("大數據" of 秦淮大數據 for a "big-data company")
        if len(tail) >= 2 and restates_question(query, tail):
            if 2 in _zh_words_stated(query, to_simplified(tail)):
                return True
    return False


OF_STATED_RE = re.compile(r"^.+?\s+(?:of|and|at|in|for)\s+(?:the\s+)?(.+)$")


@lru_cache(maxsize=4096)
def ends_with_stated_name(query: Query, name: str) -> bool:
    """Whether an English name runs on into a name the question states.

    "Party Committee and Chairman *of Huagong Technology Industry Co*" for "... chairman of
    Huagong ...?" names the position, not the person asked for.

    Only a stated name holding a name of the question's own counts: "Jinnan Iron *and Steel
    Group*" for "which steel group" ends with a kind of thing, not with a stated name.
    """
    m = OF_STATED_RE.match(name)
    if not m or CJK_RUN_RE.search(name):
        return False
    tail = m.group(1)
    own = set(re.findall(r"[a-z0-9]+", tail.lower()))
    said = [set(re.findall(r"[a-z0-9]+", n.lower())) - ORG_FORMS for n in query.names]
    return any(w and w <= own for w in said) and restates_question(query, tail)
