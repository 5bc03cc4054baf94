from index.textnorm import lexical_terms, segment_pinyin, to_simplified
from rag.lexicon import en_to_zh, measure_word_fits, zh_to_en
from rag.match import coverage
from rag.query import analyze
from rag.retrieve import rrf


def test_pinyin_segmentation_and_matching():
    assert segment_pinyin("Dingxiang") == ("ding", "xiang")
    assert segment_pinyin("Green") == ()
    assert "py:ding_xiang" in lexical_terms("位於定襄縣")
    assert "py:ding_xiang" in lexical_terms("Dingxiang County")


def test_cross_lingual_coverage_finds_the_chinese_sentence():
    q = analyze("In which county is the flange forging group located, Dingxiang?")
    hit, _, _ = coverage(q, "擁有302家法蘭鍛造企業的定襄縣")
    miss, _, _ = coverage(q, "晉祠難老泉水位創新高")
    assert hit > miss


def test_dictionary_both_ways():
    assert "县" in en_to_zh("counties")
    assert "vinegar" in zh_to_en("醋")
    assert measure_word_fits("座", "mines") and measure_word_fits("家", "enterprises")
    assert not measure_word_fits("座", "households")


def test_simplified_folding_keeps_length():
    t = "綜合算力指數穩居全國第一方陣"
    assert len(to_simplified(t)) == len(t)


def test_rrf_prefers_items_ranked_well_by_both():
    fused = rrf([[1, 2, 3], [3, 1, 4]], k=60)
    assert max(fused, key=fused.__getitem__) == 1
    assert fused[3] > fused[2] and 4 in fused


def test_china_is_found_as_national_in_english_and_chinese():
    from rag.match import entity_coverage
    from rag.query import analyze

    q = analyze("How many advanced manufacturing clusters did China have in 2022?")
    assert entity_coverage(q, "There were 45 national advanced manufacturing clusters.") == 1.0
    assert entity_coverage(q, "全国共有45个先进制造业集群。") == 1.0
    assert entity_coverage(q, "Hunan had 4 clusters.") == 0.0


def test_phrase_coverage_within_and_across_languages():
    from rag.match import phrase_coverage
    from rag.query import analyze

    q = analyze("How many new R&D institutions did Hubei have in 2023?")
    assert phrase_coverage(q, " new R&D institutions") > phrase_coverage(q, " incubators") == 0.0
    zq = analyze("2023年湖北有多少家科技型中小企业?")
    assert phrase_coverage(zq, "科技型中小企業") == 1.0, "traditional script matches too"
    assert phrase_coverage(zq, "高新技术企业") < 0.5
    assert phrase_coverage(zq, "") == 0.0


def test_romanised_terms_and_news_abbreviations_meet_chinese_text():
    from rag.match import phrase_coverage
    from rag.query import analyze

    q = analyze("How many ('zhuanjingtexin') SMEs did Shanxi cultivate?")
    assert phrase_coverage(q, "培育專精特新中小企業626家") == 1.0
    assert phrase_coverage(q, "新增科技型企業") == 0.0
