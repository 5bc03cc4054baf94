import pytest

from rag.query import analyze


@pytest.mark.parametrize(
    "question,qtype",
    [
        ("How many intelligent coal mines did Shanxi have at end-2024?", "count"),
        ("What share of China's output comes from Jinjiang?", "percent"),
        ("By how many percentage points did the share rise?", "ppoint"),
        ("How much did Xianle Health invest in the upgrade?", "money"),
        ("How large is the agglomeration area?", "measure"),
        ("In what year did he set up his brand?", "year"),
        ("On what date was the plenary session held?", "date"),
        ("How often does a truck crane come off the line?", "frequency"),
        ("Who is the chairman of Xuzhou Mining Group?", "person"),
        ("In which county is the workshop located?", "place"),
        ("Which company acts as the chain master?", "org"),
        ("Which leading big-data company has Datong attracted?", "org"),
        ("How does Shanxi rank nationally in green electricity?", "rank"),
        ("山西有多少座智能化煤矿?", "count"),
        ("2024年山西炼钢先进产能占比提高了多少?", "ppoint"),
        ("By how much did the share of advanced steelmaking capacity rise?", "ppoint"),
        ("仙乐健康投资多少钱实施改造项目?", "money"),
        ("卷绕机将生产周期提高了多少?", "change"),
        ("By how much did water consumption fall?", "change"),
        ("Within what radius can a maker find everything from R&D to sales?", "measure"),
        ("What was Masteel's own steel production scale then?", "measure"),
        ("What five-year cumulative improvement in air quality did Shanxi record?", "change"),
        ("刘良斌担任哪个商会的会长?", "org"),
        ("山西晋云互联科技有限公司的总经理是谁?", "person"),
        ("株洲轨道交通装备产业集群在全球排名第几?", "rank"),
        ("山西“三个一批”活动多久举办一次?", "frequency"),
        ("《光明日报》这篇报道刊登于哪一天?", "date"),
        ("某科技有限公司的注册资本是多少?", "money"),
        ("这款手机的售价是多少?", "money"),
        ("What was the city's GDP in 2023?", "money"),
        ("What was the city's GDP growth rate in 2023?", "percent"),
        ("How much time does the final inspection allow for checking a car?", "duration"),
        ("Which coal mine used to occupy the site of the plant?", "org"),
        ("In which coastal city is the centre located?", "place"),
        ("What telephone number is listed for copyright enquiries?", "phone"),
        ("联系电话是多少?", "phone"),
        ("安徽今年计划新增可再生能源发电装机容量多少?", "measure"),
        ("What is the plant's comprehensive energy consumption per ton of steel?", "measure"),
    ],
)
def test_question_types(question, qtype):
    assert analyze(question).qtype == qtype


def test_target_noun_and_translation():
    q = analyze("How many intelligent coal mines did Shanxi have?")
    assert q.target == "mines"
    assert "矿" in q.target_zh
    assert analyze("山西有多少家企业?").target == "家"
    assert analyze("How many new R&D institutions did Hubei have?").target == "institutions"


def test_constraints_and_script():
    q = analyze("By the end of 2024, how many households had received payouts?")
    assert q.years == ("2024",) and q.lang == "en"
    t = analyze("截至2023年底，山西「惠商保」累計賠付了多少戶?")
    assert t.lang == "zh" and t.years == ("2023",)
    assert "惠商保" in t.norm or "惠商保" in t.norm.replace("「", "")
    assert "累计" in t.norm, "traditional characters are folded to simplified"


def test_pinyin_terms_for_names():
    q = analyze("Where is Dingxiang County?")
    assert "py:ding_xiang" in q.pinyin


@pytest.mark.parametrize(
    "question,phrase",
    [
        ("How many new R&D institutions did Hubei have in 2023?", ("new", "r&d", "institutions")),
        (
            "By how much did per capita disposable income of Jiangxi's rural residents rise?",
            ("capita", "disposable", "income", "rural", "residents"),
        ),
        ("2023年湖北有多少家科技型中小企业?", ("科技型", "中小企业")),
        ("山西有多少座智能化煤矿?", ("智能化", "煤矿")),
        (
            "How many specialized ('zhuanjingtexin') SMEs did Shanxi cultivate?",
            ("specialized", "zhuanjingtexin", "smes"),
        ),
    ],
)
def test_asked_phrase_leaves_out_names_and_years(question, phrase):
    assert analyze(question).phrase == phrase


def test_phrase_of_what_x_did_questions_leaves_out_type_words():
    q = analyze("What five-year cumulative improvement in air quality did Shanxi record?")
    assert q.phrase[:3] == ("five-year", "cumulative", "improvement")
    # "date" names the answer's type, not the thing asked about
    assert analyze("On what date did BYD lay the foundation stone?").phrase == ()


def test_relative_time_phrases_are_constraints():
    assert analyze("近三年河南新建了多少家省级产业研究院?").times == ("past_3_years",)
    assert analyze("How many mines did Shanxi build this year?").times == ("this_year",)
    assert analyze("How many mines did Shanxi build?").times == ()


def test_how_many_followed_by_a_verb_has_no_counted_noun():
    assert analyze("Out of every 100 swimsuits, how many are made in Jinjiang?").target == ""
    assert analyze("How many coal mines are there in Shanxi?").target == "mines"


def test_the_object_of_a_change_verb_is_the_asked_phrase():
    q = analyze("By how much did Taiyuan Heavy Industry cut its unit conversion cost after 2020?")
    assert q.phrase == ("unit", "conversion", "cost")


@pytest.mark.parametrize(
    "question,head",
    [
        ("Near which street in Taiyuan does Mr. Cai run his shop?", "street"),
        ("Which company acts as the chain master?", "compani"),
        ("Besides Zhonglian Data, which leading big-data company has Datong attracted?", "compani"),
        ("What global market share has China achieved in LCD panels?", "share"),
        ("What is the number of working faces?", None),
    ],
)
def test_the_noun_a_which_question_asks_for(question, head):
    from rag.features import question_head

    got = question_head(analyze(question))
    assert (got[0] if got else None) == head


def test_the_asked_kind_alone_is_not_an_answer():
    from rag.extract import is_head
    from rag.features import question_head

    head = question_head(analyze("What standard did Shanxi's PM10 concentration meet?"))
    assert is_head("標準", head) and is_head("Standard", head)
    assert not is_head("國家二級標準", head)


def test_a_number_the_question_gives_is_not_its_answer():
    from rag.extract import states_number

    q = analyze("Out of every 100 swimsuits in the world, how many are made in Jinjiang?")
    assert states_number(q, "count", "100") and states_number(q, "count", "100 swimsuits")
    assert not states_number(q, "count", "30")
    q = analyze("How many coal mines did Shanxi have at the end of 2024?")
    assert not states_number(q, "year", "2024")


def test_the_number_that_owns_the_asked_phrase_drops_its_neighbours():
    from rag.extract import phrase_owners
    from rag.types import Candidate, ScoredSentence

    s = ScoredSentence(row=0, doc_id="d", start=0, end=40, text="x", score=1.0)
    other = ScoredSentence(row=1, doc_id="d", start=50, end=90, text="y", score=0.5)

    def cand(text, sentence, attach):
        return Candidate("d", 0, 1, text, "percent", sentence, "%", {"attach_max": attach}, 0.0)

    kept = phrase_owners([cand("10%", s, 0.5), cand("13%", s, 1.0), cand("11%", other, 0.5)])
    assert [c.text for c in kept] == ["13%", "11%"]  # another sentence keeps its numbers


def test_a_bare_number_is_typed_by_its_unit_only_where_that_fits_worse():
    from rag.candidates import Span
    from rag.features import answer_type

    count_q = analyze("How many key industrial chains are planned?").qtype
    share = Span(0, 1, "number", "%")
    assert answer_type(count_q, share) == "percent"  # "8" of "8%" is not a count
    time_q = analyze("How much time does the final inspection allow?").qtype
    assert answer_type(time_q, Span(0, 2, "number", "seconds")) == "number"  # not "duration"


def test_the_year_of_a_full_date_does_not_answer_which_day():
    from rag.candidates import Span
    from rag.extract import drop_years_of_dates
    from rag.types import ScoredSentence

    s = ScoredSentence(row=0, doc_id="d", start=0, end=40, text="x", score=1.0)
    t = ScoredSentence(row=1, doc_id="d", start=50, end=90, text="y", score=0.5)
    rows = [
        (0, s, Span(10, 23, "date"), "April 4, 2023"),
        (0, s, Span(19, 23, "year"), "2023"),
        (1, t, Span(60, 64, "year"), "2022"),  # a year standing alone stays
    ]
    assert [x[3] for x in drop_years_of_dates(rows)] == ["April 4, 2023", "2022"]


@pytest.mark.parametrize(
    ("question", "lang", "qtype"),
    [
        ("Zhejiang Geely Holding Group 的董事长是谁?", "zh", "person"),
        ("Apple CEO Tim Cook 在哪一年出生?", "zh", "year"),
        ("《The Lord of the Rings》的作者是谁?", "zh", "person"),
        ("How many coal mines does 定襄縣 have?", "en", "count"),
    ],
)
def test_a_question_quoting_names_of_the_other_language_keeps_its_own(question, lang, qtype):
    # the share of ideographs alone made the first three English
    query = analyze(question)
    assert (query.lang, query.qtype) == (lang, qtype)
