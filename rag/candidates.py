"""Stage 3 of the read path: possible answer spans in a sentence, typed.

Spans are offsets into the document's canonical text. A span touching a damaged
(mojibake) range is never a candidate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from index.textnorm import EN_STOPWORDS, jieba_module, segment_pinyin, to_simplified
from index.types import Document

CJK_CHAR_RE = re.compile(r"[\u4e00-\u9fff]")
ZH_DIGITS = "零〇一二兩两三四五六七八九十百千萬万億亿"
EN_NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
    "sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|"
    "hundred|dozens?|hundreds"
)
MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec"

EN_UNITS: list[tuple[str, str]] = [
    (r"percentage points?", "ppoint"),
    (r"%|percent|per cent", "percent"),
    (r"(?:yuan|RMB|dollars?|US dollars|euros?)", "money"),
    (r"times per second|times a second", "measure"),  # a rate, before "times"
    (r"times|fold", "multiple"),
    (
        r"square kilometers|square kilometres|km2|km²|square meters|square metres|m2|mu|hectares?",
        "measure",
    ),
    (r"kilowatt[- ]hours?|kWh|kilowatts?|kW|megawatts?|MW|gigawatts?|GW|watts?", "measure"),
    (r"degrees Celsius|degrees|°C|℃", "measure"),
    (r"m/s|meters per second|metres per second|km/h", "measure"),
    (r"tons?|tonnes?|kilograms?|kg|grams?", "measure"),
    (
        r"kilometers?|kilometres?|km|meters?|metres?|centimeters?|cm|millimeters?|mm|nanometers?|nm|inches?|feet",
        "measure",
    ),
    (r"seconds?|minutes?|hours?|days?|weeks?|months?|years?", "duration"),
]
ZH_UNITS: list[tuple[str, str]] = [
    (r"個百分點|个百分点", "ppoint"),
    (r"%", "percent"),
    (r"萬元|万元|億元|亿元|元|美元", "money"),
    (r"倍(?:多|以上)?", "multiple"),
    (
        r"平方公里|平方米|公里|千米|米|噸|吨|千克|公斤|度|千瓦時|千瓦时|千瓦|瓦|攝氏度|摄氏度|畝|亩",
        "measure",
    ),
    (r"個自然日|个自然日|小時|小时|分鐘|分钟|秒|天|日|周|個月|个月|年", "duration"),
    (r"[個个家座項项種种戶户人位名所條条臺台輛辆次屆届批市縣县款件套臺條張张]", "count"),
]
EN_UNIT_RE = "|".join(f"(?P<u{i}>{p})" for i, (p, _) in enumerate(EN_UNITS))
ZH_UNIT_RE = "|".join(f"(?P<z{i}>{p})" for i, (p, _) in enumerate(ZH_UNITS))

EN_NUM_RE = re.compile(
    rf"(?<![\w.\-])(?P<num>\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?|\d+(?:\.\d+)?|(?:{EN_NUMBER_WORDS})(?:[- ](?:{EN_NUMBER_WORDS}))?)"
    rf"(?P<mag>\s*(?:million|billion|trillion|thousand|hundred))?"
    rf"(?:\s*(?P<unit>{EN_UNIT_RE})(?![a-zA-Z]))?",
    re.I,
)
ZH_NUM_RE = re.compile(
    rf"(?P<num>\d+(?:[.,]\d+)*|[{ZH_DIGITS}]+)(?P<mod>多|余|餘)?(?P<mag>[萬万億亿千])?(?:(?P<unit>{ZH_UNIT_RE})(?P<mod2>多|以上|左右)?)?"
)
DATE_RES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\b(?:19|20)\d\d-\d\d-\d\d\b"), "date"),
    (re.compile(rf"\b(?:{MONTHS})\.? \d{{1,2}}(?:st|nd|rd|th)?(?:, (?:19|20)\d\d)?\b"), "date"),
    (
        re.compile(rf"\b(?:early |mid-|late |the end of )?(?:{MONTHS}) (?:of )?(?:19|20)\d\d\b"),
        "date",
    ),
    (re.compile(rf"\b\d{{1,2}} (?:{MONTHS}) (?:19|20)\d\d\b"), "date"),
    (
        re.compile(
            r"(?:19|20)\d\d年\d{1,2}月(?:\d{1,2}[日号號])?|\d{1,2}月\d{1,2}[日号號]|\d{1,2}月(?:上旬|中旬|下旬|底|初)"
        ),
        "date",
    ),
    (re.compile(r"(?:19|20)\d\d年(?:底|初|末)"), "date"),
    (
        re.compile(
            r"每(?:年|季度|個月|个月|月|周|週|天|日|小時|小时)(?:舉辦|举办)?(?:一次)?|\bevery (?:\d+ )?(?:year|quarter|month|week|day|hour|minute)s?\b|\b(?:quarterly|annually|monthly|weekly|daily)\b"
        ),
        "frequency",
    ),
    (
        re.compile(
            r"\d+×\d+(?:小時|小时| hours)?|[一二三四五六七八九十兩两\d]+(?:周|週|天|日|個月|个月|年|小時|小时)[內内]"
        ),
        "duration",
    ),
    (re.compile(r"\b\d{3,4}-\d{7,8}\b"), "phone"),
    (re.compile(r"第[一二三四五六七八九十\d]+(?:名|位|代|期|批|大|方陣|方阵)?"), "rank"),
    (re.compile(r"(?:全國|全国|全球|全省|世界)第[一二三四五六七八九十\d]+"), "rank"),
    (re.compile(r"(?<![第\d])[一二三四五六七八九十\d]期"), "rank"),
    (re.compile(r"[一二三四五六七八九十兩两\d]+[個个名位]人"), "count"),
    (
        re.compile(
            r"\b(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth)(?:-generation| generation| place| phase)?\b|\bNo\. ?\d+\b|\b\d+(?:st|nd|rd|th)\b",
            re.I,
        ),
        "rank",
    ),
]
QUOTE_RE = re.compile(
    r"“([^”“\n]{1,24})[”“]|《([^》\n]{1,30})》|\"([^\"\n]{1,40})\"|「([^」\n]{1,24})」|'([^'\n]{2,40})'"
)
EN_TOKEN_RE = re.compile(r"[A-Z][A-Za-z0-9'\-]*\.?|&|of|and|for|the|de|\(|\)|[a-z][a-z\-]*|,")
LEGAL_WORDS = frozenset("co ltd inc corp limited group company corporation holdings plc".split())
CUT_LTD_RE = re.compile(r"\.?,? ?(?:Ltd|Limited)\b")
PRODUCT_RE = re.compile(r"\d+(?:\.\d+)?\s*[×xX*]\s*")
PARTICLES_RE = re.compile(r"[着著了的地得在和与及]")
NOUNISH = frozenset("n nr ns nt nz nrt nrfg ng j eng vn an l".split())
CONNECT = frozenset({"of", "and", "&", "for", "the", "de"})
COMPANY_TAIL_RE = re.compile(r",? (?:Co\.,? ?Ltd\.|Co\., Ltd\.|Ltd\.|Inc\.|Group Co\., Ltd\.)")


@dataclass(frozen=True)
class Span:
    """A typed span inside one sentence (offsets relative to the document)."""

    start: int
    end: int
    ctype: str
    unit: str = ""
    following: str = ""


def _unit_kind(match: re.Match[str], table: list[tuple[str, str]], prefix: str) -> tuple[str, str]:
    for i, (_, kind) in enumerate(table):
        got = match.group(f"{prefix}{i}")
        if got:
            return kind, got
    return "", ""


@lru_cache(maxsize=1024)
def unit_kind(unit: str) -> str:
    """The kind of value a unit makes ("%" -> percent, "万元" -> money); "" when none."""
    for table in (EN_UNITS, ZH_UNITS):
        for pattern, kind in table:
            if re.fullmatch(pattern, unit, flags=re.IGNORECASE):
                return kind
    return ""


def type_of(span: Span) -> str:
    """The type a span answers as: a bare number answers as what its unit makes it.

    "8" of "8%" is a share, not a count; "2.22" of "2.22 million kW" a measure.
    """
    if span.ctype == "number" and span.unit:
        return unit_kind(span.unit) or "number"
    return span.ctype


def _following_words(text: str, pos: int, n: int = 8) -> str:
    """Up to ``n`` words after a number, to the next list item ("and 4 ...", a comma).

    Words may hold digits ("6 *100-billion-level industrial chains*") and "&" ("477 new
    *R&D* institutions"); an "and" inside the phrase stays ("35,000 *small and
    medium-sized enterprises*").
    """
    m = re.match(
        rf"(?:\s*(?!(?:and|or|while)\s+[\d(])[A-Za-z0-9][A-Za-z0-9\-'&/]*|\s*[“”\"]){{1,{n}}}",
        text[pos:],
    )
    return m.group(0).strip() if m else ""


def numeric_spans(text: str, base: int) -> list[Span]:
    """Numbers with magnitudes and units, English and Chinese; years typed as such."""
    out: list[Span] = []
    for m in EN_NUM_RE.finditer(text):
        num = m.group("num")
        kind, unit = _unit_kind(m, EN_UNITS, "u")
        end = m.end()
        if re.fullmatch(r"(?:19|20)\d\d", num) and not m.group("mag") and not unit:
            out.append(Span(base + m.start(), base + m.start("num") + len(num), "year"))
            continue
        if text[m.end("num") : m.end("num") + 1] == "-" and not unit:
            continue  # "100-billion-level", "5G" style compounds are modifiers, not values
        if num.lower() == "one" and re.match(r"\s+of\b", text[m.end("num") :]):
            continue  # "one of the four ..." is a partitive, not a quantity
        if not unit:
            end = m.end("mag") if m.group("mag") else m.end("num")
        if kind == "" and m.group("mag"):
            kind = "count"
        ctype = kind or "count"
        out.append(Span(base + m.start(), base + end, ctype, unit, _following_words(text, end)))
        if unit or m.group("mag"):  # also the bare number ("268" for "268 mines")
            out.append(
                Span(
                    base + m.start(),
                    base + m.start() + len(num),
                    "number",
                    unit,
                    _following_words(text, end),
                )
            )
    for m in ZH_NUM_RE.finditer(text):
        num = m.group("num")
        if re.fullmatch(f"[{ZH_DIGITS}]+", num) and not m.group("unit"):
            continue  # a bare Chinese numeral is almost always part of a word
        kind, unit = _unit_kind(m, ZH_UNITS, "z")
        if re.fullmatch(r"(?:19|20)\d\d", num) and unit in ("年", ""):
            out.append(
                Span(base + m.start(), base + m.start() + len(num) + (1 if unit else 0), "year")
            )
            continue
        if num.isascii() and not unit and not m.group("mag") and not m.group("mod"):
            around = text[m.start() - 1 : m.start()] + text[m.end() : m.end() + 1]
            if not CJK_CHAR_RE.search(around):
                continue  # a bare number in Latin text is the English extractor's job ("PM10", "5G")
        ctype = kind or ("count" if (m.group("mag") or num.isascii()) else "")
        if not ctype:
            continue
        out.append(Span(base + m.start(), base + m.end(), ctype, unit))
        if m.end() - m.start() > len(num) and num.isascii():
            cut = m.start() + len(num) + len(m.group("mod") or "") + len(m.group("mag") or "")
            out.append(Span(base + m.start(), base + cut, "number", unit))
    return out


def pattern_spans(text: str, base: int) -> list[Span]:
    """Dates, frequencies, durations, phone numbers and ranks."""
    out: list[Span] = []
    for rx, ctype in DATE_RES:
        out.extend(Span(base + m.start(), base + m.end(), ctype) for m in rx.finditer(text))
    # "全國第一" cut out of "全國第一方陣" (the "第一方陣" rule also matched): the whole phrase
    # replaces the cut one
    ranks = [s for s in out if s.ctype == "rank"]
    overlaps = [(a, b) for a in ranks for b in ranks if a.start < b.start < a.end < b.end]
    cut = {a for a, _ in overlaps}
    return [s for s in out if s not in cut] + [Span(a.start, b.end, "rank") for a, b in overlaps]


def quote_spans(text: str, base: int) -> list[Span]:
    """The inside of quotation marks and title marks."""
    out = []
    for m in QUOTE_RE.finditer(text):
        g = next(i for i in range(1, 6) if m.group(i) is not None)
        out.append(Span(base + m.start(g), base + m.end(g), "quote"))
    return out


ORG_WORDS = frozenset(
    "group company co ltd corp province city county town district village park street mine "
    "plant bank university institute committee department bureau center centre laboratory".split()
)


def pinyin_person(text: str) -> bool:
    """Whether an English name is a romanised Chinese personal name ("Zou Zhilei")."""
    words = text.split()
    if not 2 <= len(words) <= 3 or any(w.lower().strip(".,") in ORG_WORDS for w in words):
        return False
    syl = [segment_pinyin(w) for w in words]
    return all(syl) and sum(len(x) for x in syl) <= 4 and len(syl[0]) == 1


def english_name_spans(text: str, base: int) -> list[Span]:
    """Runs of capitalised words ("Jinnan Iron and Steel Group", "Zou Zhilei")."""
    toks = [(m.start(), m.end(), m.group(0)) for m in EN_TOKEN_RE.finditer(text)]
    out: list[Span] = []
    i = 0
    while i < len(toks):
        if not toks[i][2][:1].isupper() or (
            toks[i][2].lower() in EN_STOPWORDS
            and i + 1 < len(toks)
            and not toks[i + 1][2][:1].isupper()
        ):
            i += 1
            continue
        j = i
        while j + 1 < len(toks):
            nxt = toks[j + 1][2]
            if nxt[:1].isupper() and toks[j + 1][0] - toks[j][1] <= 1:
                j += 1
            elif nxt in CONNECT and j + 2 < len(toks) and toks[j + 2][2][:1].isupper():
                j += 2
            else:
                break
        start, end = toks[i][0], toks[j][1]
        tail = COMPANY_TAIL_RE.match(text, end)
        words = [t[2] for t in toks[i : j + 1]]
        if tail:
            out.append(Span(base + start, base + tail.end(), "name"))
        while words and words[0].lower() in EN_STOPWORDS:
            words.pop(0)
            i += 1
            start = toks[i][0] if i <= j else end
        if words and end > start:
            stop = end - (1 if text[end - 1] == "." and not tail else 0)
            # a romanised personal name is a person, whatever the question asks
            kind = "person" if pinyin_person(text[start:stop]) else "name"
            out.append(Span(base + start, base + stop, kind))
            for k in range(i + 1, j + 1):  # suffixes: "Jolywood Photovoltaic ..." without "Shanxi"
                if toks[k][2][:1].isupper():
                    out.append(Span(base + toks[k][0], base + end, "name_part"))
            legal = bool(tail) and toks[j][2].rstrip(".") in ("Co", "Corp", "Inc")
            for k in range(i, j):  # prefixes: "Jinnan Iron and Steel" without "Group"
                # a registered company name is cut only before its legal form ("Xuzhou
                # Mining Group" of "... Group Co., Ltd"), not between its own words
                if toks[k][2][:1].isupper() and k > i and (not legal or k == j - 1):
                    out.append(Span(base + start, base + toks[k][1], "name_part"))
        i = j + 1
    return out


@lru_cache(maxsize=4096)
def _posseg(text: str) -> tuple[tuple[str, str], ...]:
    return tuple((w.word, w.flag) for w in jieba_module().posseg.cut(text))


def chinese_name_spans(text: str, base: int) -> list[Span]:
    """Noun phrases of a Chinese sentence: runs of 1-4 noun-like words, 2-14 characters."""
    simp = to_simplified(text)
    words = _posseg(simp)
    pos = 0
    spans: list[tuple[int, int, str]] = []
    for w, flag in words:
        spans.append((pos, pos + len(w), flag))
        pos += len(w)
    out: list[Span] = []
    for i in range(len(spans)):
        for j in range(i, min(i + 5, len(spans))):
            if spans[j][2] not in NOUNISH and not (j > i and spans[j][2] in ("m", "a", "b")):
                break
            if spans[j][2] not in NOUNISH:
                continue
            s, e = spans[i][0], spans[j][1]
            starts_ok = spans[i][2] in (NOUNISH - {"vn"}) | {"m", "a", "b"}
            if 2 <= e - s <= 16 and starts_ok and not PARTICLES_RE.search(simp[s:e]):
                ctype = "person" if i == j and spans[i][2] == "nr" and e - s <= 4 else "zh_np"
                out.append(Span(base + s, base + e, ctype))
    return out


def extract_spans(doc: Document, start: int, end: int) -> list[Span]:
    """Every candidate span in ``doc.text[start:end]``, damaged ones excluded, deduplicated."""
    text = doc.text[start:end]
    spans = numeric_spans(text, start) + pattern_spans(text, start) + quote_spans(text, start)
    if doc.lang == "en":
        spans += english_name_spans(text, start)
    else:
        spans += chinese_name_spans(text, start)
    seen: set[tuple[int, int, str]] = set()
    out = []
    for s in spans:
        while s.end > s.start and doc.text[s.end - 1] in " ,.;:":
            s = Span(s.start, s.end - 1, s.ctype, s.unit, s.following)
        key = (s.start, s.end, s.ctype)
        if s.end <= s.start or key in seen or doc.touches_damage(s.start, s.end):
            continue
        seen.add(key)
        out.append(s)
    # the last factor of a product ("24小時" of "7×24小時") is not a value of its own
    factors = {
        (p.start, p.end, p.ctype)
        for s in out
        for p in out
        if p.start > s.start
        and p.end == s.end
        and PRODUCT_RE.fullmatch(doc.text[s.start : p.start])
    }
    # "Jolywood ... Technology Co" cut before its "., Ltd" is a truncated name; "Ltd" or
    # "Group" alone names nothing
    return [
        p
        for p in out
        if (p.start, p.end, p.ctype) not in factors
        and not (
            p.ctype in ("name", "name_part")
            and (
                CUT_LTD_RE.match(doc.text, p.end)
                or all(
                    w.lower() in LEGAL_WORDS
                    for w in re.findall(r"[A-Za-z]+", doc.text[p.start : p.end])
                )
            )
        )
    ]
