"""Features for ranking sentences and answer candidates, and for abstaining.

Every feature is a general property of question and text (type fit, unit fit, term
proximity, retrieval rank...); the weights that combine them are fitted on gold data.
"""

from __future__ import annotations

import math
import re

from index.textnorm import EN_STOPWORDS, char_pinyin, segment_pinyin, stem, to_simplified
from rag.candidates import Span, pinyin_person, type_of
from rag.lexicon import en_to_zh, measure_word_fits, zh_to_en
from rag.match import coverage, phrase_coverage, pinyin_word, predicate_coverage
from rag.timeref import time_agreement
from rag.types import Query

# How well a candidate type answers a question type (0..1); a linguistic prior.
COMPAT: dict[str, dict[str, float]] = {
    "count": {
        "count": 1,
        "number": 0.8,
        "measure": 0.3,
        "multiple": 0.2,
        "money": 0.2,
        "percent": 0.1,
    },
    "percent": {"percent": 1, "ppoint": 0.7, "multiple": 0.6, "number": 0.3, "count": 0.2},
    "ppoint": {"ppoint": 1, "percent": 0.6, "number": 0.5},
    # "by how much", "提高了多少": a rise or fall, as a share, points, a multiple or an amount
    "change": {
        "percent": 1,
        "ppoint": 0.8,
        "multiple": 0.8,
        "number": 0.3,
        "count": 0.2,
        "measure": 0.3,
        "money": 0.3,
    },
    "money": {"money": 1, "count": 0.4, "number": 0.4, "percent": 0.3},
    "measure": {
        "measure": 1,
        "count": 0.5,
        "number": 0.5,
        "duration": 0.4,
        "multiple": 0.3,
        "money": 0.2,
        "percent": 0.3,
    },
    "multiple": {"multiple": 1, "percent": 0.6, "number": 0.3},
    "year": {"year": 1, "date": 0.5},
    "date": {"date": 1, "year": 0.6},
    "duration": {"duration": 1, "measure": 0.3, "count": 0.3, "number": 0.2, "frequency": 0.4},
    "frequency": {"frequency": 1, "duration": 0.7},
    "rank": {"rank": 1, "count": 0.2, "number": 0.3},
    "phone": {"phone": 1},
    "person": {"person": 1, "name": 0.4, "name_part": 0.3, "zh_np": 0.4},
    "org": {"name": 1, "name_part": 0.6, "zh_np": 0.8, "quote": 0.5, "person": 0.2},
    "place": {"name": 1, "name_part": 0.6, "zh_np": 0.8, "person": 0.3, "quote": 0.3},
    "entity": {
        "quote": 0.8,
        "name": 0.7,
        "zh_np": 0.7,
        "name_part": 0.5,
        "count": 0.3,
        "percent": 0.3,
        "measure": 0.3,
        "number": 0.2,
        "rank": 0.4,
        "date": 0.3,
        "phone": 0.5,
        "person": 0.3,
        "frequency": 0.3,
        "duration": 0.3,
        "money": 0.3,
    },
}
COMPAT["other"] = COMPAT["entity"]
NUMERIC_CTYPES = frozenset(
    "count number percent ppoint money measure multiple duration year date frequency phone rank".split()
)
NAME_CTYPES = frozenset("name name_part person zh_np quote".split())
QUESTION_HEAD_RE = re.compile(r"\b(?:which|what) ((?:[a-z\-]+ ?){1,4})")
# Nouns that name the kind of thing a which/what question asks for.
KIND_NOUN_RE = re.compile(
    r"compan(?:y|ies)|group|enterprises?|firms?|corporation|bank|organi[sz]ation|brand|mines?|"
    r"plants?|chamber|institute|university|laborator(?:y|ies)|park|city|county|province|town|"
    r"district|street|country|village|region|place|year|date|day|month|share|rate|level|speed|"
    r"size|standard|phase|programme|program|title|award|honou?r|product|model|project|base"
)
ZH_HEAD_RE = re.compile(r"(?:哪个|哪家|哪一|哪座|哪条|什么|哪)([\u4e00-\u9fff]{1,2})")


ZH_ONE_RE = re.compile(r"[一兩两][個个家批種种項项位名條条次]")


# Question types whose answer must be of a compatible candidate type: others are dropped.
STRICT_TYPES = frozenset(
    "count percent ppoint money measure multiple year date duration frequency rank phone person".split()
)


def answer_type(qtype: str, span: Span) -> str:
    """The span's type, or its unit's kind where that fits the question worse.

    "8" of "8%" does not answer "how many" as a count: it is a share.
    """
    table = COMPAT.get(qtype, COMPAT["entity"])
    kind = type_of(span)
    return kind if table.get(kind, 0.0) < table.get(span.ctype, 0.0) else span.ctype


def type_filter(qtype: str, ctypes: list[str]) -> list[bool]:
    """Which candidates may answer a question of this type (all, if none would be left)."""
    if qtype not in STRICT_TYPES:
        return [True] * len(ctypes)
    table = COMPAT[qtype]
    keep = [table.get(c, 0.0) > 0 for c in ctypes]
    return keep if any(keep) else [True] * len(ctypes)


# A sentence that holds a span of exactly the asked type ("2.69億元" for "how much money")
# does not offer its looser-typed spans ("4.39萬戶") as well.
LOOSE_COMPAT = 0.5


def sentence_type_filter(qtype: str, rows: list[int], ctypes: list[str]) -> list[bool]:
    """Which candidates survive their sentence's exact-type spans (``rows``: their sentences)."""
    if qtype not in STRICT_TYPES:
        return [True] * len(ctypes)
    table = COMPAT[qtype]
    exact = {r for r, c in zip(rows, ctypes, strict=True) if table.get(c, 0.0) >= 1.0}
    return [
        r not in exact or table.get(c, 0.0) >= LOOSE_COMPAT
        for r, c in zip(rows, ctypes, strict=True)
    ]


# What a measure question asks for, by its wording, and the units that measure it.
DIMENSIONS: list[tuple[str, re.Pattern[str], re.Pattern[str]]] = [
    (
        "length",
        re.compile(
            r"\bhow (?:thick|tall|deep|wide|far)\b|\b(?:thickness|height|depth|width|distance|radius)\b"
            r"|多厚|多高|多深|多宽|多远|厚度|高度|深度|宽度|距离|半径"
        ),
        re.compile(
            r"(?:kilo|centi|milli|nano)?(?:meters?|metres?)|km|m|cm|mm|nm|inch(?:es)?|feet|[千厘毫]?米|公里",
            re.I,
        ),
    ),
    (
        "weight",
        re.compile(r"\bhow heavy\b|\bweight\b|多重|重量"),
        re.compile(r"tons?|tonnes?|kilograms?|kg|grams?|[噸吨]|[千公]?克|公斤", re.I),
    ),
    (
        "temperature",
        re.compile(r"\bhow (?:hot|cold)\b|\btemperature\b|温度|溫度|多热|多冷"),
        re.compile(r"degrees(?: celsius)?|°c|℃|(?:攝氏|摄氏)?度", re.I),
    ),
    (
        "area",
        re.compile(r"\barea\b|面积|面積|占地"),
        re.compile(r"square \w+|km2|km²|m2|mu|hectares?|平方\w*|[畝亩]", re.I),
    ),
]


def asked_dimension(query: Query) -> tuple[str, re.Pattern[str]] | None:
    """The dimension a measure question asks for ("how thick" -> length) and its units."""
    if query.qtype != "measure":
        return None
    for name, asked, units in DIMENSIONS:
        if asked.search(query.norm):
            return name, units
    return None


def dimension_filter(query: Query, rows: list[int], units: list[str]) -> list[bool]:
    """Which candidates survive a sentence that measures what is asked in its own units.

    "How thick is the seam ... of the 203 working face": "1 meter" is a length, 203 is not; a
    sentence with a span in the asked dimension drops its spans without such a unit.
    """
    dim = asked_dimension(query)
    if dim is None:
        return [True] * len(units)
    fits = [bool(u) and bool(dim[1].fullmatch(u.strip())) for u in units]
    measured = {r for r, f in zip(rows, fits, strict=True) if f}
    return [r not in measured or f for r, f in zip(rows, fits, strict=True)]


def year_agreement(query: Query, text: str) -> tuple[float, float]:
    """(the text names the question's year, the text names only other years)."""
    if not query.years:
        return 1.0, 0.0
    ok = any(y in text for y in query.years)
    other = bool(re.search(r"(?<!\d)(?:19|20)\d\d(?!\d)", text))
    return float(ok), float(not ok and other)


def sentence_features(
    query: Query,
    text: str,
    dense: float,
    dense_rank: int,
    bm25: float,
    passage_rank: int,
    same_lang: bool,
    ctypes: frozenset[str] = frozenset(),
    clause_max: float = 0.0,
    entities: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> dict[str, float]:
    """Features saying how likely a sentence is to hold the answer.

    ``entities``: shares of the question's named entities that the sentence, its passage
    and its document mention ("the province" in a sentence is the Hunan of its article).
    """
    cov, _, names = coverage(query, text)
    years_ok, conflict = year_agreement(query, text)
    time_ok, time_conflict = time_agreement(query.times, text)
    table = COMPAT.get(query.qtype, COMPAT["entity"])
    return {
        "pred_cov": predicate_coverage(query, text),
        "ent_sent": entities[0],
        "ent_psg": entities[1],
        "ent_doc": entities[2],
        "time_ok": time_ok,
        "time_conflict": time_conflict,
        "clause_same": clause_max if same_lang else 0.0,
        "clause_cross": clause_max if not same_lang else 0.0,
        "type_fit": max((table.get(c, 0.0) for c in ctypes), default=0.0),
        "year_conflict": conflict,
        "dense_same": dense if same_lang else 0.0,
        "dense_cross": dense if not same_lang else 0.0,
        "dense_rank": 1.0 / (1 + dense_rank),
        "bm25": bm25,
        "cov_same": cov if same_lang else 0.0,
        # each direction has its own dictionary (and its own reliability)
        "cov_cross": cov if not same_lang and query.lang == "en" else 0.0,
        "cov_cross_zh": cov if not same_lang and query.lang == "zh" else 0.0,
        "names": names,
        "years_ok": years_ok,
        "passage_rank": 1.0 / (1 + passage_rank),
        "length": math.log1p(len(text)) / 6,
    }


def question_head(query: Query) -> tuple[str, ...]:
    """Forms of the noun the question asks about ("which *mine*" -> mine, 矿)."""
    if query.lang == "en":
        m = QUESTION_HEAD_RE.search(query.norm)
        if not m:
            return ()
        # the words before the first function word: "which *leading big-data company* has";
        # among them the last noun naming a kind of thing ("what global market *share*")
        words: list[str] = []
        for w in m.group(1).split():
            if w in EN_STOPWORDS:
                break
            words.append(w)
        if not words:
            return ()
        kinds = [w for w in words if KIND_NOUN_RE.fullmatch(w)]
        head = kinds[-1] if kinds else words[-1]
        return (stem(head), *en_to_zh(head)[:4])
    m = ZH_HEAD_RE.search(query.norm)
    if not m:
        return ()
    head = m.group(1)
    return (head, head[-1], *zh_to_en(head)[:4])


NUMERIC_HINT_RE = re.compile(
    r"how (?:many|much|long|large|big|fast|often|tall|high|far|hot)|\b(?:number|rate|share|percent|"
    r"proportion|speed|size|level|date|year|amount|accuracy|temperature|area|radius|capacity)\b|"
    r"多少|几|多久|多大|多高|多长|比例|比重|率|第几|哪一天|哪一年|时间"
)
ASKS_TO_RE = re.compile(
    r"\bto what\b|\breach\b|\b(?:rise|rose|increase|fall|fell|drop|raise|cut)\w* to\b|达到|提高到|增至|降至|到多少"
)
# "After its upgrade, what is ...": the value it changed to (not a "by how much" question)
AFTER_RE = re.compile(
    r"\bafter (?:its|the|their|this)\b|(?:改造|升级|升級|改革)(?:后|後|以后|之后)"
)
CLAUSE_RE = re.compile(r"[,，;；。!?！？:：]")
TO_CUES = re.compile(
    r"(?:\bto|\breached|\breach|\bat|\bof|达到|達到|至|到|为|為|增至|提高到|上升到|降至|降到|下降到|僅|仅)\s*$"
)
FROM_CUES = re.compile(r"(?:\bfrom|\bthan|\bfor|从|從|由|比)\s*$")


# What bounds the noun phrase a number is attached to: punctuation, list words, other numbers.
ATTACH_STOP_RE = re.compile(
    r"[,，;；。!?！？:：、()（）]|\.(?:\s|$)|\b(?:while|respectively|compared)\b|[和与及]|"
    r"\b(?:and|or)\b(?=\s+\d)|"  # "and 4 others" starts an item; "small and medium-sized" does not
    r"(?<![A-Za-z0-9_\-])\d+(?:[.,]\d+)*(?![\d\-])"  # another number, not a compound ("100-billion-yuan")
)
RESPECTIVELY_RE = re.compile(r"\brespectively\b|分別|分别")
LIST_ITEM_RE = re.compile(r"[,，、;；]|\band\b|[和与與及]")
ATTACH_CHARS = 60
NUMBER_RE = re.compile(r"\d+(?:[.,]\d+)*")
RANGE_FROM_RE = re.compile(r"(?:\bfrom|[从從由])\s*$")
RANGE_TO_RE = re.compile(r"^[^,，;；。]{0,40}?(?:\bto|至|到)\s*$")


def attached_phrases(text: str, rel: tuple[int, int]) -> tuple[str, str]:
    """The phrases right before and right after a span, up to the nearest list boundary.

    In "477 new R&D institutions, 84 incubators" the count 477 is attached to the phrase
    after it; in "科技型中小企业3.5万家" to the phrase before it.
    """
    right_end = min(len(text), rel[1] + ATTACH_CHARS)
    stop = ATTACH_STOP_RE.search(text, rel[1], right_end)
    right = text[rel[1] : stop.start() if stop else right_end]
    nxt = stop or ATTACH_STOP_RE.search(text, right_end)
    if nxt and NUMBER_RE.fullmatch(nxt.group()) and " and " in right:
        right = right[: right.rfind(" and ")]  # "2.22 million kW and renewable ... of 5 million"
    left_start = max(0, rel[0] - ATTACH_CHARS)
    while left_start > 0 and text[left_start - 1].isascii() and text[left_start - 1].isalnum():
        left_start -= 1  # the whole first word, not its tail
    # Searched past rel[0] and cut there: an end position would hide what the lookaheads need
    # to see ("and" is a boundary only before a number, and the number is our span).
    stops = [m for m in ATTACH_STOP_RE.finditer(text, left_start, rel[1]) if m.end() <= rel[0]]
    left = text[stops[-1].end() if stops else left_start : rel[0]]
    if stops and NUMBER_RE.fullmatch(stops[-1].group()) and " and " in left:
        left = left[left.find(" and ") + 5 :]  # the previous item's unit is not our phrase
    # "dropped from 420 kg in the past to 380 kg", "由420公斤降至380公斤": the second value
    # belongs to the phrase of the first
    if stops and RANGE_TO_RE.search(left):
        prev = stops[-1]
        if prev.group().replace(".", "").replace(",", "").isdigit() and RANGE_FROM_RE.search(
            text, max(0, prev.start() - 8), prev.start()
        ):
            left = attached_phrases(text, (prev.start(), prev.end()))[0] + left
    return left, right


def respectively_item(text: str, rel: tuple[int, int], numbers: list[tuple[int, int]]) -> str:
    """For "A and B rose by 4.2% and 7.1% respectively", the item the span's number pairs with.

    ``numbers`` are the numeric spans of the sentence (relative offsets, in order).
    Returns "" when the clause has no "respectively" or the list cannot be aligned.
    """
    clause_lo = max((m.end() for m in CLAUSE_RE.finditer(text, 0, rel[0])), default=0)
    resp = RESPECTIVELY_RE.search(text, clause_lo)
    if not resp or resp.start() > rel[1] + 40:
        return ""
    in_list = [n for n in numbers if n[0] >= clause_lo and n[1] <= max(resp.end(), rel[1]) + 40]
    own = next((i for i, n in enumerate(in_list) if n[0] <= rel[0] and rel[1] <= n[1]), None)
    if own is None or len(in_list) < 2:
        return ""
    first = in_list[0][0]
    lo = max(0, first - 200)
    items = [x.strip() for x in LIST_ITEM_RE.split(text[lo:first]) if x.strip()]
    if len(items) < len(in_list):
        return ""
    return items[len(items) - len(in_list) + own]


# Characters that may stand right before / after a Chinese noun phrase: an NP cut out of a
# longer word ("數字經濟產業園" out of "中電陽泉數字經濟產業園") has a CJK content character there.
LEFT_EDGE_ZH = frozenset("在于於是为為的和与與及从從向到由被把将將对對给給即称稱")
RIGHT_EDGE_ZH = frozenset("的了在是为為和与與及等举舉已将將也都")
BAD_CHARS_RE = re.compile(r"[\"“”()（）\[\]]")


def _clean_edge(ch: str, function_chars: frozenset[str]) -> float:
    """1.0 when a span edge is a word boundary: text edge, space, punctuation or a function word."""
    if not ch or not ("\u4e00" <= ch <= "\u9fff"):
        return 1.0 if not ch or not ch.isalnum() else 0.0
    return float(to_simplified(ch) in function_chars or ch in function_chars)


def _clause(text: str, rel: tuple[int, int]) -> str:
    cuts = [0] + [m.end() for m in CLAUSE_RE.finditer(text)] + [len(text)]
    lo = max(c for c in cuts if c <= rel[0])
    hi = min((c for c in cuts if c >= rel[1]), default=len(text))
    return text[lo:hi]


def _romanised_share(text: str) -> float:
    """Share of a candidate's words that are romanised Chinese names ("Wuhan", "Jinjiang")."""
    words = re.findall(r"[A-Za-z]+", text)
    if not words:
        return 0.0
    return sum(len(segment_pinyin(w)) >= 2 and pinyin_word(w.lower()) for w in words) / len(words)


def question_overlap(query: Query, cand: str, head: tuple[str, ...] = ()) -> float:
    """Share of a candidate's words (or characters, or pinyin) that the question already says.

    The noun the question asks about ("which *mine*") does not count: an answer may well
    end with it ("Duerping Mine").
    """
    if re.search(r"[\u4e00-\u9fff]", cand):
        simp = to_simplified(cand)
        for h in sorted((h for h in head if h and not h.isascii()), key=len, reverse=True):
            if simp.endswith(h) and len(simp) > len(h):
                simp = simp[: -len(h)]
                break
        chars = [c for c in simp if "\u4e00" <= c <= "\u9fff"]
        if not chars:
            return 0.0
        if query.lang == "zh":
            return sum(c in query.norm for c in chars) / len(chars)
        q_py = {p[3:] for p in query.pinyin}
        pairs = [
            f"{char_pinyin(a)}_{char_pinyin(b)}" for a, b in zip(chars, chars[1:], strict=False)
        ]
        zh_hit = sum(any(c in t for t in query.zh_terms) for c in chars) / len(chars)
        return max(zh_hit * 0.8, sum(p in q_py for p in pairs) / len(pairs) if pairs else 0.0)
    words = [w.lower() for w in re.findall(r"[A-Za-z]+|\d+(?:\.\d+)?", cand)]
    words = [w for w in words if stem(w) not in head] or words
    if not words:
        return 0.0
    if query.lang == "en":
        q_terms = set(query.terms) | {n for n in query.numbers}
        return sum((stem(w) if w[0].isalpha() else w) in q_terms for w in words) / len(words)
    en = set(query.en_terms) | {n for n in query.numbers}
    q_py = {p[3:] for p in query.pinyin}
    hits = 0
    for w in words:
        word_syl = segment_pinyin(w)
        word_pairs = {f"{a}_{b}" for a, b in zip(word_syl, word_syl[1:], strict=False)}
        hits += (stem(w) in en) or (w in en) or bool(word_pairs and word_pairs <= q_py)
    return hits / len(words)


def _distance(span: tuple[int, int], positions: list[tuple[int, int]]) -> float:
    if not positions:
        return 99.0
    s, e = span
    return float(min(max(0, ps - e, s - pe) for ps, pe in positions))


def _clause_features(span: Span, clauses: list[tuple[int, int, float]]) -> dict[str, float]:
    """How well the clause around a candidate matches the question (multilingual embedding)."""
    if not clauses:
        return {"clause_sim": 0.0, "clause_best": 0.0, "clause_gap": 0.0}
    best = max(v for _, _, v in clauses)
    own = next((v for s, e, v in clauses if s <= span.start < e), None)
    if own is None:
        own = max(
            (v for s, e, v in clauses if s < span.end and e > span.start),
            default=min(v for _, _, v in clauses),
        )
    return {"clause_sim": own, "clause_best": float(own >= best), "clause_gap": own - best}


def candidate_features(
    query: Query,
    span: Span,
    cand_text: str,
    sent_text: str,
    sent_offset: int,
    sentence_prob: float,
    sentence_rank: int,
    agreement: int,
    head: tuple[str, ...],
    clauses: list[tuple[int, int, float]] | None = None,
    numbers: list[tuple[int, int]] | None = None,
    sentence: dict[str, float] | None = None,
) -> dict[str, float]:
    """Features saying how likely a span is the answer.

    ``numbers``: offsets (relative to the sentence) of the sentence's numeric spans;
    ``sentence``: the features of the sentence it is in.
    """
    sentence = sentence or {}
    rel = (span.start - sent_offset, span.end - sent_offset)
    _, positions, _ = coverage(query, sent_text)
    outside = [p for p in positions if p[1] <= rel[0] or p[0] >= rel[1]]
    inside = [p for p in positions if not (p[1] <= rel[0] or p[0] >= rel[1])]
    dist = _distance(rel, outside)
    scale = 2.0 if re.search(r"[\u4e00-\u9fff]", sent_text) else 6.0
    norm_c = to_simplified(cand_text).lower()
    q_norm = re.sub(r"['’]s\b", "", query.norm)
    in_q = float(norm_c in q_norm or norm_c.replace(",", "") in q_norm.replace(",", ""))
    unit_words = f"{span.unit} {span.following}".lower()
    target_fit = 0.0
    if query.target:
        # a hyphenated word is a modifier, not the counted noun ("project-oriented catalogs")
        words = [
            w for tok in unit_words.split() if "-" not in tok for w in re.findall(r"[a-z]+", tok)
        ]
        if stem(query.target) in {stem(w) for w in words}:
            target_fit = 1.0
        elif any(t and t in to_simplified(span.unit + cand_text) for t in query.target_zh):
            target_fit = 1.0
        elif (
            span.unit
            and query.target_zh
            and to_simplified(span.unit)[-1:] in "".join(query.target_zh)
        ):
            target_fit = 0.7
    head_fit = 0.0
    if head and span.ctype in NAME_CTYPES:
        last = re.findall(r"[A-Za-z]+", cand_text)
        simp = to_simplified(cand_text)
        if last and stem(last[-1].lower()) in head:
            head_fit = 1.0
        elif any(h and not h.isascii() and simp.endswith(h) for h in head):
            head_fit = 1.0
        else:  # named right before the asked noun: 入選“燈塔工廠”名單, the "X" programme
            after = sent_text[rel[1] : rel[1] + 12].lstrip("”\"」』’' ")
            nxt = re.findall(r"[A-Za-z]+", after[:14])[:1]
            zh_after = to_simplified(after)
            if any(  # "“三晉第一泉”之稱" names the 美称 asked for
                not h.isascii()
                and (len(h) >= 2 or zh_after.startswith("之"))
                and zh_after.removeprefix("之").startswith(h)
                for h in head
            ):
                head_fit = 1.0
            elif (
                nxt and after[:1].isalpha() and after[:1].isascii() and stem(nxt[0].lower()) in head
            ):
                head_fit = 1.0
    zh_sent = scale == 2.0
    left_np, right_np = attached_phrases(sent_text, rel)
    if not target_fit and zh_sent and span.ctype in NUMERIC_CTYPES:
        # the counted noun next to the number: "626家*专精特新中小企业*", "*科技型企业*1599家"
        attached = to_simplified(left_np + right_np)
        if any(len(t) >= 2 and t in attached for t in query.target_zh):
            target_fit = 1.0
    if not target_fit and query.target and span.unit and measure_word_fits(span.unit, query.target):
        target_fit = 1.0
    if not target_fit and query.lang == "zh" and query.target and span.following:
        if any(
            measure_word_fits(query.target, w) for w in re.findall(r"[A-Za-z]+", span.following)[:8]
        ):
            target_fit = 1.0
    compat = COMPAT.get(query.qtype, COMPAT["entity"]).get(answer_type(query.qtype, span), 0.0)
    before = sent_text[max(0, rel[0] - 12) : rel[0]]
    clause = _clause(sent_text, rel)
    num = re.sub(r"[^\d.]", "", cand_text)
    reach = scale * 4
    stop_right = min(
        (m.start() for m in CLAUSE_RE.finditer(sent_text, rel[1])), default=len(sent_text)
    )
    stop_left = max((m.end() for m in CLAUSE_RE.finditer(sent_text, 0, rel[0])), default=0)
    right = sum(1 for ps, _ in outside if rel[1] <= ps <= min(rel[1] + reach, stop_right))
    left = sum(1 for _, pe in outside if max(rel[0] - reach, stop_left) <= pe <= rel[0])
    numeric = float(span.ctype in NUMERIC_CTYPES)
    hint = float(bool(NUMERIC_HINT_RE.search(query.norm)))
    asks_to = float(
        bool(ASKS_TO_RE.search(query.norm))
        or (query.qtype != "change" and bool(AFTER_RE.search(query.norm)))
    )
    overlap = question_overlap(query, cand_text, head)
    year_ok, year_conflict = year_agreement(query, sent_text)
    is_name = float(span.ctype in NAME_CTYPES)
    asks_person = float(query.qtype == "person")
    n_chars = len(cand_text)
    window = sent_text[max(0, rel[0] - 40) : rel[1] + 40]
    own_np, other_np = (left_np, right_np) if zh_sent else (right_np, left_np)
    pinyin_name = float(pinyin_person(cand_text)) if span.ctype in ("name", "name_part") else 0.0
    resp_item = respectively_item(sent_text, rel, numbers or []) if numeric else ""
    feats = {
        "compat": compat,
        "numeric": numeric,
        "numeric_hint": numeric * hint,
        "numeric_nohint": numeric * (1 - hint),
        "right_q": min(1.0, right / 2),
        "left_q": min(1.0, left / 2),
        "name_type": float(span.ctype in NAME_CTYPES),
        "quote": float(span.ctype == "quote"),
        "sent_prob": sentence_prob,
        "year_ok": year_ok * float(bool(query.years)),
        "year_conflict": year_conflict,
        "time_ok": sentence.get("time_ok", 0.0),  # the sentence's, computed once there
        "time_conflict": sentence.get("time_conflict", 0.0),
        "sent_rank": 1.0 / (1 + sentence_rank),
        "proximity": 1.0 / (1.0 + dist / scale),
        "adjacent": float(dist <= (1 if scale == 2.0 else 2)),
        "inside_q": min(1.0, len(inside) / 2.0),
        "in_question": in_q,
        "year_in_q": float(span.ctype == "year" and cand_text[:4] in query.years),
        "target_fit": target_fit,
        "has_target": float(bool(query.target)),
        "head_fit": head_fit,
        "has_unit": float(bool(span.unit)),
        "length": math.log1p(n_chars),
        "long": float(n_chars > 25),
        "agreement": math.log1p(agreement),
        "window_cov": coverage(query, window)[0],
        "clause_cov": coverage(query, clause)[0],
        "q_overlap": overlap,
        "name_q_overlap": overlap * is_name,
        "num_q_overlap": overlap * numeric,
        "name_length": math.log1p(n_chars) * is_name,
        # one feature for a person's name in either script, so that a "who" question weighs
        # 肖育雷 in a Chinese article as it weighs "Zou Zhilei" in an English one
        "person_like": max(pinyin_name, float(span.ctype == "person")) * asks_person,
        "name_part": float(span.ctype == "name_part"),
        "number_in_q": float(bool(num) and num in query.numbers and span.ctype != "year"),
        "pinyin_name": pinyin_name,
        "place_romanised": _romanised_share(cand_text) * float(query.qtype == "place"),
        "zh_person": float(span.ctype == "person"),
        "after_to": float(bool(TO_CUES.search(before))),
        "to_match": float(bool(TO_CUES.search(before))) * asks_to,
        "after_from": float(bool(FROM_CUES.search(before))),
        "cross": float(bool(re.search(r"[\u4e00-\u9fff]", sent_text)) != (query.lang == "zh")),
        "zh_one": float(bool(ZH_ONE_RE.fullmatch(cand_text))),
        "attach_own": numeric * phrase_coverage(query, own_np),
        "attach_other": numeric * phrase_coverage(query, other_np),
        "respectively": phrase_coverage(query, resp_item) if resp_item else 0.0,
        "attach_max": numeric
        * max(phrase_coverage(query, left_np), phrase_coverage(query, right_np)),
        "np_left_clean": is_name * _clean_edge(sent_text[rel[0] - 1 : rel[0]], LEFT_EDGE_ZH),
        "np_right_clean": is_name * _clean_edge(sent_text[rel[1] : rel[1] + 1], RIGHT_EDGE_ZH),
        "bad_chars": float(bool(BAD_CHARS_RE.search(cand_text))),
        "ent_sent": sentence.get("ent_sent", 1.0),
        "ent_psg": sentence.get("ent_psg", 1.0),
        "ent_doc": sentence.get("ent_doc", 1.0),
        **_clause_features(span, clauses or []),
    }
    return feats


def abstain_features(
    query: Query,
    best_prob: float,
    margin: float,
    sentence: dict[str, float],
    context_cov: float,
    context_names: float,
    context_years: float,
    entities_ctx: float = 1.0,
    entities_doc: float = 1.0,
    best: dict[str, float] | None = None,
    phrase_in_sentence: float = 0.0,
) -> dict[str, float]:
    """Features saying whether the best answer is supported by the corpus at all.

    Few on purpose: the abstention model is fitted on some 130 questions, and every
    feature added beyond these lowered its cross-validated accuracy (see ``rag fit``).
    """
    best = best or {}
    sent_dense = sentence.get("dense_same", 0.0) + sentence.get("dense_cross", 0.0)
    cross = float(sentence.get("dense_cross", 0.0) != 0.0)
    return {
        "phrase_sent": phrase_in_sentence,
        "pred_sent": sentence.get("pred_cov", 1.0),
        "ent_ctx": entities_ctx,
        "ent_doc": entities_doc,
        "best_compat": best.get("compat", 0.0),
        "target_missing": best.get("has_target", 0.0) * (1 - best.get("target_fit", 0.0)),
        "cand_prob": best_prob,
        "sent_dense": sent_dense,
        "ctx_cov": context_cov,
        "ctx_years": context_years,
        "cross": cross,
        # Evidence in the other language scores lower on similarity and term coverage for
        # the same support; these interactions give it slopes of its own.
        "cross_dense": cross * sent_dense,
        "cross_cov": cross * context_cov,
    }
