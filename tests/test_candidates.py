import pytest

from index.clean import clean_document
from index.types import RawDocument
from rag.candidates import extract_spans


def spans_of(text: str):
    d = clean_document(RawDocument("d", text, ""))
    return d, {(d.text[s.start : s.end], s.ctype) for s in extract_spans(d, 0, len(d.text))}


@pytest.mark.parametrize(
    "text,span,ctype",
    [
        ("全省智能化煤礦數量達到268座。", "268座", "count"),
        ("年發電量8000萬度。", "8000萬度", "measure"),
        ("投資5.3億元建設。", "5.3億元", "money"),
        ("占比提高3.8個百分點。", "3.8個百分點", "ppoint"),
        ("Exports rose 33.4% last year.", "33.4%", "percent"),
        ("It earned US$1.284 billion in total.", "1.284 billion", "count"),
        ("It produced 1 billion tons of coal.", "1 billion tons", "measure"),
        ("平臺儲備了400多座煤礦的數據。", "400多座", "count"),
        ("出口增長兩倍多。", "兩倍多", "multiple"),
        ("The cab was close to 40 degrees Celsius.", "40 degrees Celsius", "measure"),
        ("It ranks third in the country.", "third", "rank"),
        ("綜合算力指數穩居全國第一方陣。", "第一方陣", "rank"),
        ("On July 26, 2023, the session was held.", "July 26, 2023", "date"),
        ("2024年3月,平臺建成運行。", "2024年3月", "date"),
        ("In 2012, he founded his own brand.", "2012", "year"),
        ("聯繫電話:0313-2051987。", "0313-2051987", "phone"),
        ("山西堅持每季度舉辦一次活動。", "每季度舉辦一次", "frequency"),
        ("Zou Zhilei, chairman of Huawei Coal Mine Corps, spoke.", "Zou Zhilei", "person"),
        ("It is used in Jinnan Iron and Steel Group now.", "Jinnan Iron and Steel Group", "name"),
        ("入選“燈塔工廠”名單。", "燈塔工廠", "quote"),
        ("Known as the “Vinegar Capital of China“ today.", "Vinegar Capital of China", "quote"),
    ],
)
def test_candidate_spans(text, span, ctype):
    _, got = spans_of(text)
    assert (span, ctype) in got


def test_the_last_factor_of_a_product_is_not_a_value_of_its_own():
    _, got = spans_of("“7×24小時不打烊”政務服務超市。")
    assert ("7×24小時", "duration") in got and ("24小時", "duration") not in got


def test_a_company_name_is_not_cut_before_its_ltd():
    _, got = spans_of("Shanxi Jolywood Photovoltaic Battery Technology Co., Ltd. has built a base.")
    names = {t for t, c in got if c in ("name", "name_part")}
    assert "Shanxi Jolywood Photovoltaic Battery Technology Co., Ltd" in names
    assert "Shanxi Jolywood Photovoltaic Battery Technology Co" not in names
    # cut only before its legal form, not between its own words; "Ltd" alone is no name
    assert "Shanxi Jolywood Photovoltaic Battery Technology" in names
    assert "Shanxi Jolywood Photovoltaic" not in names and "Ltd" not in names


def test_number_touching_mojibake_is_never_a_candidate():
    d, got = spans_of("用電量占當乜傆秒娏康谋戎匾言鲋?2.5%,超過了煤炭行業的12%。")
    texts = {t for t, _ in got}
    assert not any("2.5" in t and "12" not in t for t in texts)
    assert "12%" in texts


def test_compound_modifiers_are_not_values():
    _, got = spans_of("It formed 6 100-billion-level industrial chains.")
    texts = {t for t, _ in got}
    assert "6" in texts and "100" not in texts


def test_numbers_attach_to_the_phrase_after_them_in_english_and_before_in_chinese():
    from rag.features import attached_phrases

    en = "Hubei has 163 innovation platforms, 477 new R&D institutions and 84 incubators."
    i = en.index("477")
    assert attached_phrases(en, (i, i + 3))[1].strip() == "new R&D institutions"
    zh = "山西培育专精特新中小企业626家、科技型企业1599家。"
    j = zh.index("1599")
    assert attached_phrases(zh, (j, j + 5))[0] == "科技型企业"
    # "and" right before our own number ends the previous item's phrase
    two = "It will print 100 key common technologies and 100 innovation catalogs."
    k = two.rindex("100")
    assert attached_phrases(two, (k, k + 3))[0].strip() == ""
    assert attached_phrases(two, (k, k + 3))[1].strip() == "innovation catalogs"
    # an "and" between two numbers' phrases ends the first and starts the second
    pair = "capacity of 2.22 million kW and renewable energy capacity of more than 5 million kW."
    a, b = pair.index("2.22"), pair.index("5 million")
    assert attached_phrases(pair, (a, a + 4))[1].strip() == "million kW"
    assert attached_phrases(pair, (b, b + 1))[0].strip() == "renewable energy capacity of more than"


def test_respectively_pairs_each_number_with_its_item():
    from rag.features import respectively_item

    text = "Urban and rural incomes rose by 4.2% and 7.1% respectively."
    nums = [
        (text.index("4.2%"), text.index("4.2%") + 4),
        (text.index("7.1%"), text.index("7.1%") + 4),
    ]
    assert respectively_item(text, nums[1], nums) == "rural incomes rose by"
    assert respectively_item(text, nums[0], nums) == "Urban"
    zh = "城镇和农村居民收入分别增长4.2%和7.1%。"
    zn = [(zh.index("4.2%"), zh.index("4.2%") + 4), (zh.index("7.1%"), zh.index("7.1%") + 4)]
    assert respectively_item(zh, zn[1], zn).startswith("农村")
    assert respectively_item("Incomes rose by 4.2% and 7.1%.", (15, 19), [(15, 19), (24, 28)]) == ""


def test_a_rank_cut_out_of_a_longer_rank_phrase_is_replaced_by_the_whole():
    _, spans = spans_of("綜合算力指數穩居全國第一方陣,綠電外送量全國第一。")
    assert ("全國第一方陣", "rank") in spans
    assert ("全國第一", "rank") in spans  # the second, standalone one
    d, _ = spans_of("綜合算力指數穩居全國第一方陣。")
    texts = {d.text[s.start : s.end] for s in extract_spans(d, 0, len(d.text))}
    assert "全國第一" not in texts


def test_the_words_after_a_number_include_digits_and_ampersands():
    from rag.candidates import numeric_spans

    text = (
        "formed 6 100-billion-level industrial chains and 4 others; 477 new R&D institutions, "
        "35,000 small and medium-sized enterprises"
    )
    by_text = {text[s.start : s.end]: s.following for s in numeric_spans(text, 0)}
    assert by_text["6"] == "100-billion-level industrial chains"  # the next item starts
    assert by_text["477"] == "new R&D institutions"
    assert by_text["35,000"] == "small and medium-sized enterprises"


def test_noun_phrase_edges_must_be_word_boundaries():
    from rag.features import LEFT_EDGE_ZH, _clean_edge

    # "中電陽泉數字經濟產業園" in "在中電陽泉數字經濟產業園舉行": 在 before it is a boundary,
    # 泉 before "數字經濟產業園" is the middle of a name
    assert _clean_edge("在", LEFT_EDGE_ZH) == 1.0
    assert _clean_edge("泉", LEFT_EDGE_ZH) == 0.0
    assert _clean_edge("", LEFT_EDGE_ZH) == 1.0  # sentence start
    assert _clean_edge(" ", LEFT_EDGE_ZH) == 1.0 and _clean_edge("a", LEFT_EDGE_ZH) == 0.0


def test_times_per_second_is_a_rate_not_a_multiple():
    _, spans = spans_of("It runs at 2 trillion times per second.")
    assert ("2 trillion times per second", "measure") in spans


def test_the_counted_noun_attached_to_a_chinese_number_fits_the_target():
    from rag.features import candidate_features
    from rag.query import analyze

    q = analyze("How many specialized SMEs did Shanxi newly cultivate?")
    d = clean_document(RawDocument("d", "新培育1599家高新技術企業、626家專精特新中小企業;", ""))
    text = d.text
    feats = {}
    for sp in extract_spans(d, 0, len(text)):
        if sp.ctype == "count":
            f = candidate_features(q, sp, text[sp.start : sp.end], text, 0, 1.0, 0, 1, ())
            feats[text[sp.start : sp.end]] = f["target_fit"]
    assert feats["626家"] == 1.0 and feats["1599家"] == 0.0


def test_a_sentence_with_a_span_of_the_asked_type_drops_its_loosely_typed_spans():
    from rag.features import sentence_type_filter

    # "how much money": 4.39萬戶 (a count) goes where 2.69億元 (money) is in the same sentence,
    # but stays in a sentence without money, and a question of a loose type keeps everything
    rows, types = [0, 0, 1], ["count", "money", "count"]
    assert sentence_type_filter("money", rows, types) == [False, True, True]
    assert sentence_type_filter("count", [0, 0], ["count", "number"]) == [True, True]
    assert sentence_type_filter("entity", rows, types) == [True, True, True]


def test_a_sentence_measuring_the_asked_dimension_drops_its_other_numbers():
    from rag.features import asked_dimension, dimension_filter
    from rag.query import analyze

    q = analyze("How thick is the coal seam mined at the thin-seam working face?")
    assert asked_dimension(q) is not None and asked_dimension(q)[0] == "length"
    # "the 203 working face ... a thickness of about 1 meter"; sentence 1 has no length
    assert dimension_filter(q, [0, 0, 1], ["", "meter", ""]) == [False, True, True]
    zq = analyze("煤层厚度是多少米?")
    assert dimension_filter(zq, [0, 0], ["米", "吨"]) == [True, False]
    assert asked_dimension(analyze("How many coal mines are there?")) is None


def test_features_read_the_counted_noun_and_the_after_value():
    from rag.candidates import extract_spans
    from rag.features import candidate_features
    from rag.query import analyze

    def feats(question, text, value):
        d = clean_document(RawDocument("d", text, ""))
        span = next(s for s in extract_spans(d, 0, len(d.text)) if d.text[s.start : s.end] == value)
        return candidate_features(analyze(question), span, value, d.text, 0, 0.5, 0, 1, ())

    text = "It will print 100 innovation project-oriented catalogs and carry out 150 innovative projects."
    q = "How many innovative projects will it carry out?"
    assert feats(q, text, "100")["target_fit"] == 0.0  # "project-oriented" modifies "catalogs"
    assert feats(q, text, "150")["target_fit"] == 1.0
    text = "Energy use per ton fell from 420 kilograms in the past to 380 kilograms."
    q = "After its upgrade, what is the plant's energy use per ton?"
    assert feats(q, text, "380 kilograms")["to_match"] == 1.0
    assert feats(q, text, "420 kilograms")["to_match"] == 0.0


@pytest.mark.parametrize(
    "question,text,quoted",
    [
        ("太原重工去年入选了什么名单?", "太原重工去年入選“燈塔工廠”名單。", "燈塔工廠"),
        # "之稱" after the quote names the 美称 asked for
        ("晋祠难老泉有什么美称?", "有著“三晉第一泉”之稱的難老泉不斷涌出。", "三晉第一泉"),
    ],
)
def test_a_name_right_before_the_asked_noun_fits_the_head(question, text, quoted):
    from rag.features import candidate_features, question_head
    from rag.query import analyze

    q = analyze(question)
    d = clean_document(RawDocument("d", text, ""))
    span = next(s for s in extract_spans(d, 0, len(d.text)) if s.ctype == "quote")
    f = candidate_features(q, span, quoted, d.text, 0, 0.5, 0, 1, question_head(q))
    assert f["head_fit"] == 1.0


def test_a_bare_number_answers_as_its_unit_makes_it():
    from rag.candidates import type_of

    d = clean_document(RawDocument("d", "推動制造業投資增速達到8%。", ""))
    bare = [s for s in extract_spans(d, 0, len(d.text)) if s.ctype == "number"]
    assert bare and all(type_of(s) == "percent" for s in bare)
    d = clean_document(RawDocument("d", "It has 40 pilot mines.", ""))
    assert {type_of(s) for s in extract_spans(d, 0, len(d.text))} == {"count"}
