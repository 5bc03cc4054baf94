"""Stage 1 of the read path: what kind of answer a question wants, and its constraints."""

from __future__ import annotations

import re
import unicodedata

from index.textnorm import (
    CJK_RUN_RE,
    EN_STOPWORDS,
    english_terms,
    jieba_module,
    numbers_in,
    pinyin_terms,
    text_language,
    to_simplified,
)
from rag.lexicon import en_to_zh, zh_to_en
from rag.timeref import time_refs
from rag.types import Query, QuestionType

# Ordered: the first matching rule decides. Patterns see lower-cased, NFKC text.
EN_RULES: list[tuple[str, QuestionType]] = [
    (r"\bhow many percentage points\b|\bby how many (?:percentage )?points\b", "ppoint"),
    (r"\bhow many times\b|\bhow many[- ]fold\b", "multiple"),
    (r"\b(?:in )?(?:what|which) year\b|\bwhat year\b", "year"),
    (r"\b(?:on )?(?:what|which) (?:date|day)\b", "date"),
    (r"\bhow often\b|\bhow frequently\b", "frequency"),
    (r"\b(?:tele)?phone number\b|\bhotline\b|\bcontact number\b", "phone"),
    (r"\bopening hours\b|\bwhat hours\b", "duration"),
    (r"\bhow much time\b|\bhow many (?:seconds|minutes|hours|days|weeks|months)\b", "duration"),
    (r"\bhow long\b(?!.*\b(?:is|are) the\b.*\b(?:line|road|river|bridge)\b)", "duration"),
    (
        r"\bby how much did\b.*\b(?:share|proportion)\b.*\b(?:rise|fall|grow|increase|decrease|drop)\b",
        "ppoint",
    ),
    (r"\bby how much\b", "change"),
    (r"\bwhat\b.*\b(?:rate|share|proportion|percentage)\b|\bwhat (?:rate|share)\b", "percent"),
    (r"\bwhat is the number of\b|\bwhat number\b", "count"),
    (  # "what five-year cumulative improvement in air quality": a change, asked by its noun
        r"\bwhat(?:\s+[\w\-]+){0,3}?\s+(?:improvement|increase|growth|decline|decrease|reduction|rise|drop)\b",
        "change",
    ),
    (
        r"\bhow (?:much|far) (?:did|does|has|have|had|will|would)\b.*\b(?:invest|spend|pay|paid|cost|raise|raised|earn|fund|allocate)",
        "money",
    ),
    (
        r"\bhow much (?:money|funding|investment|capital|revenue|profit)\b|\bhow much .*\b(?:in claims|paid out)\b|\bexpenditures?\b|\bhow much .*\b(?:invest|cost|spend|paid|yuan)\b",
        "money",
    ),
    (
        r"\b(?:what|which) (?:share|proportion|percentage|portion)\b|\bwhat percent\b|\bwhat (?:\w+ )?rate\b|\bwhat (?:\w+ )?market share\b|\bwhat accuracy\b",
        "percent",
    ),
    (
        r"\bby how much\b|\bhow much did .* (?:grow|rise|fall|drop|increase|decrease|decline|cut|fall)\b|\bhow fast did\b.*\bgrow",
        "percent",
    ),
    (  # "within what radius ... from R&D to sales": the asked noun decides, not a later word
        r"\bwithin what (?:radius|distance)\b|"
        r"\bwhat (?:size|speed|temperature|area|length|height|weight|radius|distance|thickness|depth)\b",
        "measure",
    ),
    (
        r"\b(?:what|how much)\b.*\b(?:gdp|price|registered capital|revenue|turnover|output value|sales|budget|market value|valuation)\b",
        "money",
    ),
    (r"\bhow many\b", "count"),
    (  # a measured quantity named by its noun: "what is X's energy consumption per ton"
        r"\bwhat (?:is|was|are|were|will be)\b.*\b(?:consumption|capacity|output|emissions?|"
        r"thickness|length|height|depth|width|weight|speed|temperature|area|volume|distance|scale)\b",
        "measure",
    ),
    (
        r"\bhow (?:large|big|tall|high|thick|fast|hot|cold|heavy|far|deep|wide|long|much)\b|\bwhat (?:size|speed|temperature|area|capacity|length|height|weight|radius|level)\b|\bwithin what radius\b|\bto what (?:size|speed|level)\b",
        "measure",
    ),
    (r"^when\b|\bwhen (?:did|was|were|is|will|does|do|has|had)\b", "date"),
    (
        r"\bhow does .* rank\b|\bwhat (?:rank|position|place)\b|\brank(?:s|ed)? (?:in|among)\b|\bwhich phase\b|\bwhich generation\b",
        "rank",
    ),
    (
        r"^who\b|\bwho (?:is|was|are|were|heads|leads|directs|runs|chairs|founded)\b|\bwhose\b",
        "person",
    ),
    (
        r"\b(?:which|what) (?:[a-z\-]+ ){0,2}(?:city|county|province|town|district|street|country|village|region|place)\b|^where\b|\bin which (?:city|county|province|place)\b|\bnear which\b",
        "place",
    ),
    (
        r"\b(?:which|what) (?:[a-z\-]+ ){0,2}(?:company|companies|group|enterprise|firm|corporation|bank|organi[sz]ation|brand|mine|plant|chamber|institute|university|laboratory|park)\b",
        "org",
    ),
    (r"\b(?:which|what)\b", "entity"),
]
ZH_RULES: list[tuple[str, QuestionType]] = [
    (r"多少个百分点|几个百分点", "ppoint"),
    # a share that rose or fell moves by percentage points: "占比提高了多少"
    (
        r"(?:占比|比重|比例|份额)[^,，。]{0,4}(?:提高|下降|降低|增长|增加|上升|减少)了?多少",
        "ppoint",
    ),
    (r"电话|热线|联系方式", "phone"),
    (r"多少倍|几倍", "multiple"),
    (r"哪一年|哪年|什么年份|何年|哪个年份", "year"),
    (r"哪一天|哪天|什么日期|几月几[日号]|何时|什么时候|何日", "date"),
    (r"多久.*一次|多长时间.*一次|频率|每隔多久", "frequency"),
    (r"多久|多长时间|多少天|多少小时|多少分钟|营业时间", "duration"),
    (
        r"多少钱|多少资金|投资(?:了)?多少|花费多少|耗资|赔付(?:了)?多少(?:钱|金额)|多少元|金额|"
        r"(?:资本|资金|售价|价格|价钱|成本|收入|营收|利润|产值|生产总值|gdp|市值|估值|预算|销售额)"
        r"(?:是|为|达到?|约|有)?多少",
        "money",
    ),
    (
        r"百分之多少|多少%|占比|比重|比例|份额|多少成|[^多]率[^先]*多少|率.*(?:多少|几)|约占.*多少|占.*多少",
        "percent",
    ),
    (r"(?:增长|提高|下降|降低|减少|增加|上升)(?:了)?多少", "change"),
    (r"第几|排名|排第|什么位置|哪个位置|位次|第几代|哪一期|哪期", "rank"),
    (  # a measured quantity named by its noun: "装机容量多少"
        r"(?:容量|装机|产能|产量|排放量|能耗|面积|长度|高度|厚度|深度|宽度|重量|速度|温度|功率|发电量|用电量)"
        r"(?:是|为|达到?|约|有|将达到?)?多少",
        "measure",
    ),
    (r"多少|几[个家座项种户人位名所条台辆次届]|几大", "count"),
    (r"多高|多大|多长|多宽|多深|多重|多快|多远|多厚|多少米|多少公里|面积|速度|温度", "measure"),
    (r"谁|哪位|何人|什么人", "person"),
    (
        r"哪个(?:市|县|省|区|镇|村|国家|城市|地方)|哪[里儿]|什么地方|位于|在哪|哪条(?:街|路)",
        "place",
    ),
    (
        r"哪(?:家|个)(?:企业|公司|集团|商会|机构|单位|矿|工厂|银行|实验室|园区)|什么(?:企业|公司|商会|机构)",
        "org",
    ),
    (r"什么|哪个|哪一|哪些|何", "entity"),
]

MEASURE_WORD_RE = re.compile(r"(?:多少|几)([个家座项种户人位名所条台辆次届倍批])")
EN_TARGET_RE = re.compile(
    r"\bhow many (?!(?:are|is|were|was|did|do|does|has|have|had|will|can)\b)((?:[a-z0-9'&\-]+ ){0,4}?[a-z0-9'&\-]+?)(?=\s(?:did|do|does|has|have|had|are|is|were|was|will|can|could|in|at|on|of|to|from|for|with|out|so|that|which)\b|\?|$)"
)
YEAR_RE = re.compile(r"(?<!\d)((?:19|20)\d\d)(?!\d)")
NAME_RE = re.compile(r"\b[A-Z][a-zA-Z'\-]+(?:\s+(?:[A-Z][a-zA-Z'\-]+|of|and))*")


def question_type(norm: str, lang: str) -> QuestionType:
    """The answer type a question asks for (see :data:`~rag.types.QuestionType`)."""
    rules = EN_RULES if lang == "en" else ZH_RULES
    for pattern, qtype in rules:
        if re.search(pattern, norm):
            return qtype
    return "other"


def _target(norm: str, lang: str) -> tuple[str, tuple[str, ...]]:
    """The counted or measured noun ("how many *coal mines*", "多少*家*")."""
    if lang == "zh":
        m = MEASURE_WORD_RE.search(norm)
        return (m.group(1), (m.group(1),)) if m else ("", ())
    m = EN_TARGET_RE.search(norm)
    if not m:
        return "", ()
    words = [
        w for w in m.group(1).split() if w not in EN_STOPWORDS and not w.endswith(("ed", "ing"))
    ]
    if not words:
        return "", ()
    head = words[-1]
    return head, en_to_zh(head)


EN_PHRASE_RES = (
    EN_TARGET_RE,
    re.compile(  # "by how much did X cut *its unit conversion cost*": the object is asked about
        r"\bhow much (?:did|does|has|have|had|will) (?:[a-z0-9'&\-]+ ){1,8}?"
        r"(?:cut|reduce|lower|raise|increase|improve|boost|expand|save) (?:its|their|the) "
        r"((?:[a-z0-9'&\-]+ ){0,5}?[a-z0-9'&\-]+)"
        r"(?= after\b| by\b| in\b| from\b| to\b| since\b| through\b| with\b| over\b|\?|$)"
    ),
    re.compile(
        r"\bhow (?:much|fast) (?:did|does|has|have|had|will|was|were|is|are) ((?:[a-z0-9'&\-]+ ){0,8}?)"
        r"(?:rise|grow|increase|fall|drop|decline|decrease|improve|expand|shrink|go up|go down|"
        r"climb|jump|slide|cut|reduce|lower)"
    ),
    re.compile(
        r"\bwhat (?:is|was|are|were|will be) (?:the )?((?:[a-z0-9'&\-]+ ){0,11}?[a-z0-9'&\-]+)(?= of\b| in\b| at\b| for\b| by\b| per\b|\?|$)"
    ),
    re.compile(  # "what *five-year cumulative improvement in air quality* did Shanxi record"
        r"\bwhat ((?:[a-z0-9'&\-]+ ){0,8}?[a-z0-9'&\-]+) (?:did|does|do|has|have|had|will)\b"
    ),
)
ZH_PHRASE_AFTER_RE = re.compile(
    r"(?:多少|几)[个家座项种户人位名所条台辆次届批]?([\u4e00-\u9fff]{2,12})"
)
ZH_PHRASE_BEFORE_RE = re.compile(
    r"([\u4e00-\u9fff]{2,12}?)(?:提高|增长|下降|降低|减少|增加|上升|达到|是|为|有)?了?(?:多少|几)"
)


# Words that name the answer's type, not the thing asked about ("on what *date* did ...").
TYPE_WORDS = frozenset(
    "date day year month time city county province place country company person kind type "
    "number speed size level amount".split()
)


def _phrase(text: str, norm: str, lang: str) -> tuple[str, ...]:
    """Content words of the asked-about phrase, names and years left out."""
    if lang == "en":
        names = {  # acronyms (SMEs, GDP) are terms, not names
            w.lower()
            for w in re.findall(r"\b[A-Z][A-Za-z\-]+", text[1:])
            if not re.fullmatch(r"[A-Z]{2,}s?", w)
        }
        for rx in EN_PHRASE_RES:
            m = rx.search(norm)
            if m and m.group(1).strip():
                words = re.findall(r"[a-z0-9&\-]+", re.sub(r"['’]s\b", "", m.group(1)))
                keep = [
                    w
                    for w in words
                    if w not in EN_STOPWORDS
                    and w not in names
                    and not YEAR_RE.fullmatch(w)
                    and (rx is not EN_PHRASE_RES[-1] or w not in TYPE_WORDS)
                ]
                if keep:
                    return tuple(keep)
        return ()
    m = ZH_PHRASE_AFTER_RE.search(norm) or ZH_PHRASE_BEFORE_RE.search(norm)
    if not m:
        return ()
    jieba = jieba_module()
    words = []
    for tok in jieba.posseg.cut(m.group(1)):
        # places and organisations are constraints, not the phrase (jieba's "nr" is too
        # unreliable to drop: it tags 智能化 as a person's name)
        if CJK_RUN_RE.fullmatch(tok.word) and len(tok.word) >= 2 and tok.flag not in ("ns", "nt"):
            words.append(tok.word)
    return tuple(w for w in words if w not in ("多少", "几", "什么", "哪些"))


def analyze(question: str) -> Query:
    """Analyse a question: language, type, target noun, years, names, matching terms."""
    text = unicodedata.normalize("NFKC", question).strip()
    lang = text_language(text)
    simp = to_simplified(text)
    norm = simp.lower()
    qtype = question_type(norm, lang)
    # brackets and quotes around a term must not hide the phrase ("('zhuanjingtexin') SMEs")
    bare = re.sub(r"\s+", " ", re.sub(r"[()\[\]\"“”‘’]|(?<!\w)'|'(?!\w)", " ", norm)).strip()
    target, target_zh = _target(bare, lang)
    years = tuple(YEAR_RE.findall(text))
    numbers = numbers_in(text)
    zh_terms: list[str] = []
    en_terms: list[str] = []
    names: list[str] = []
    if lang == "en":
        for w in re.findall(r"[A-Za-z]+", text):
            lw = w.lower()
            if lw in EN_STOPWORDS or len(lw) < 3:
                continue
            zh_terms.extend(t for t in en_to_zh(lw) if t not in zh_terms)
        names = [m.group(0) for m in NAME_RE.finditer(text) if m.start() > 0 or " " in m.group(0)]
    else:
        jieba = jieba_module()

        for w in jieba.lcut(simp):
            if len(w) >= 2 and CJK_RUN_RE.fullmatch(w):
                zh_terms.append(w)
                en_terms.extend(t for t in zh_to_en(w) if t not in en_terms)
    return Query(
        text=text,
        norm=norm,
        lang=lang,  # type: ignore[arg-type]
        qtype=qtype,
        target=target,
        target_zh=target_zh,
        years=years,
        numbers=numbers,
        terms=tuple(english_terms(text)),
        zh_terms=tuple(zh_terms),
        en_terms=tuple(en_terms),
        names=tuple(names),
        pinyin=tuple(dict.fromkeys(pinyin_terms(text))),
        phrase=_phrase(text, bare, lang),
        times=tuple(dict.fromkeys(key for key, _, _ in time_refs(text))),
    )
