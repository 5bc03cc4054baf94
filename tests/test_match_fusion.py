from index.textnorm import lexical_terms, pinyin_syllables, segment_pinyin, to_simplified
from rag.lexicon import en_to_zh, measure_word_fits, zh_to_en
from rag.match import coverage, predicate_coverage
from rag.query import analyze
from rag.retrieve import rrf


def test_pinyin_segmentation_and_matching():
    assert segment_pinyin("Dingxiang") == ("ding", "xiang")
    assert segment_pinyin("Green") == ()
    assert "py:ding_xiang" in lexical_terms("位於定襄縣")
    assert "py:ding_xiang" in lexical_terms("Dingxiang County")


def test_pinyin_syllables_are_every_reading_pypinyin_gives_a_character():
    from pypinyin import Style, pinyin

    chars = "".join(chr(c) for c in range(0x4E00, 0x9FA6))  # the whole basic block
    romanised = {
        r
        for readings in pinyin(chars, style=Style.NORMAL, heteronym=True, errors="ignore")
        for r in readings
        if r.isalpha()
    }
    syllables = pinyin_syllables()
    assert syllables == romanised
    assert {"zhuang", "lv", "er", "xiang"} <= syllables
    assert not any(not s.isalpha() or not s.islower() for s in syllables)


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


def test_chinese_words_translate_through_cc_cedict_and_their_head_character():
    assert "energi" in zh_to_en("能源")  # missing from the English word list
    assert "subsidiari" in zh_to_en("子公司")
    assert "vinegar" in zh_to_en("名醋")  # unknown compound: its last character, the head
    assert "increas" in zh_to_en("提高")
    assert zh_to_en("中联重科", head=False) == ()  # an abbreviation stays unknown


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


def test_entity_units_skip_sentence_initial_capitals_months_and_adjectives():
    from rag.match import entity_units
    from rag.query import analyze

    def names(question, zh=False):
        return [u.forms for u in entity_units(analyze(question), zh)]

    assert names("Roughly how thick is the seam at Jinxinda's face?") == [
        ("py:jin_xin", "py:xin_da", "en:jinxinda")
    ]
    assert names("In January-February, how fast did Hunan grow?") == [("py:hu_nan", "en:hunan")]
    # "Chinese article" is no place; "Chinese" is no pinyin name either
    assert names("What number is listed at the end of the Chinese article?", zh=True) == []


def test_across_languages_only_romanised_and_foreign_names_are_entities():
    from rag.match import entity_coverage
    from rag.query import analyze

    q = analyze("In which county is Shanxi Hengyue Group's workshop located?")
    # "Group" has no dictionary form that finds 集团: it is not required
    assert entity_coverage(q, "山西恒跃集团的生产车间位于定襄县。") == 1.0
    assert entity_coverage(q, "湖南某集团的生产车间位于定襄县。") == 0.0
    q = analyze("In what year did the Berlin Wall fall?")
    assert entity_coverage(q, "山西省政府工作报告显示,截至2024年底") == 0.0
    assert entity_coverage(q, "柏林墙于1989年倒塌。") > 0.0  # "Berlin" -> 柏林


def test_chinese_abbreviations_are_names_unless_the_dictionary_knows_them():
    from rag.match import entity_units
    from rag.query import analyze

    forms = [u.forms for u in entity_units(analyze("中联重科智能产业城的占地面积有多大?"), True)]
    assert ("zh:中联重科",) in forms
    forms = [u.forms for u in entity_units(analyze("湖北有多少家中小企业?"), True)]
    assert ("zh:中小企业",) not in forms


def test_entity_named_in_the_lead_counts_for_a_later_sentence():
    from rag.match import entity_coverage
    from rag.query import analyze

    q = analyze("How much time does the inspection at Guangqi Honda allow?")
    sentence = "In just 51 seconds, more than a dozen lights are checked."
    assert entity_coverage(q, sentence) == 0.0
    assert entity_coverage(q, sentence, "Chen Yaoming leads inspection at Guangqi Honda.") == 1.0


def test_predicate_coverage_ignores_the_names():
    from rag.match import predicate_coverage
    from rag.query import analyze

    q = analyze("In what year was Huawei's Coal Mine Corps founded?")
    assert predicate_coverage(q, "Huawei Coal Mine Corps was founded in 2021.") == 1.0
    assert predicate_coverage(q, "By 2022, Shanxi had built 37 intelligent coal mines.") == 0.0


def test_phrase_words_with_digits_match_as_written():
    from rag.match import phrase_coverage
    from rag.query import analyze

    q = analyze("How many 100-billion-yuan industries has Hunan cultivated?")
    assert phrase_coverage(q, "16 100-billion-yuan industries") == 1.0
    assert phrase_coverage(q, "3 trillion-yuan industries") == 0.5


def test_a_word_before_an_aspect_particle_is_a_verb_not_a_name():
    from rag.match import entity_units
    from rag.query import analyze

    # jieba tags 新建 ("newly built", also a district of Nanchang) as a place name
    forms = [u.forms for u in entity_units(analyze("近三年河南新建了多少家省级产业研究院?"), True)]
    assert forms == [("zh:河南",)]


def test_change_verbs_hyphenated_compounds_and_time_words_match_their_equivalents():
    q = analyze(
        "In January-February, how fast did Hunan's above-designated-size equipment "
        "manufacturing grow?"
    )
    text = "The equipment manufacturing industry above designated size increased by 9.5%."
    # "grow" ~ "increased", "above-designated-size" ~ "above designated size"; the time
    # phrase is one unit (its own key), and "fast" after "how" is not a term
    assert predicate_coverage(q, text) == 0.8
    assert predicate_coverage(q, "The equipment industry grew fast.") < 0.5


def test_codes_with_digits_are_entities_written_alike_in_both_languages():
    from rag.match import entity_coverage, entity_units

    q = analyze("What standard did Shanxi's annual average PM10 concentration meet?")
    assert entity_coverage(q, "PM10年均濃度首次達到國家二級標準", lead="山西省政府工作報告") == 1.0
    assert entity_coverage(q, "年均濃度首次達到國家二級標準", lead="山西省政府工作報告") == 0.5
    # "L2-or-above": the code is "L2", the rest is ordinary words
    q = analyze("What was the penetration rate of cars with L2-or-above assisted driving?")
    assert [u.forms for u in entity_units(q, False)] == [("raw:l2",)]


def test_irregular_past_forms_translate_like_their_verbs():
    assert set(en_to_zh("built")) & set(en_to_zh("build"))
    assert set(en_to_zh("paid")) & set(en_to_zh("pay"))


def test_a_name_the_question_states_is_recognised_in_either_language():
    from rag.match import restates_question

    q = analyze("江苏华美热电有限公司是哪家企业的全资子公司?")
    assert restates_question(q, "Jiangsu Huamei Thermal Power Co., Ltd")
    assert not restates_question(q, "Xuzhou Mining Group Co., Ltd.")
    q = analyze("Besides Zhonglian Data, which leading big-data company has Datong attracted?")
    assert restates_question(q, "中聯數據") and restates_question(q, "Zhonglian Data")
    assert not restates_question(q, "秦淮大數據")
    q = analyze("清徐县有什么称号?")
    assert not restates_question(q, "Vinegar Capital of China")
    assert restates_question(q, "Qingxu County") and restates_question(q, "County")  # 县


def test_the_asked_noun_is_not_a_stated_name():
    from rag.match import restates_question

    q = analyze("In which county is Shanxi Hengyue Group's production workshop located?")
    assert restates_question(q, "山西恒躍集團")
    assert not restates_question(q, "定襄縣")  # 县 is the kind asked for, not a stated name
    q = analyze("平鲁豫丰风电场位于山西哪个市?")
    assert not restates_question(q, "Shuozhou City")


def test_a_name_led_by_what_the_question_states_yields_to_its_rest():
    from rag.match import restated_prefix

    q = analyze(
        "Which mine of Shanxi Coking Coal's Xishan Coal and Electricity Company is applying"
        " green mining in the western hills of Taiyuan?"
    )
    name = "西山煤電公司杜兒坪礦"
    assert name[restated_prefix(q, name) :] == "杜兒坪礦"
    assert restated_prefix(q, "杜兒坪礦") == 0


def test_a_surname_with_a_title_and_a_phrase_headed_by_a_stated_name():
    from rag.match import restates_question, restates_tail

    q = analyze("Near which street in Taiyuan does Mr. Cai run his antiques and art shop?")
    assert restates_question(q, "蔡先生")  # cai + "Mr." ~ 先生
    assert restates_tail(q, "商戶蔡先生") and not restates_tail(q, "太原市迎澤大街")
    assert not restates_question(q, "迎澤大街")


def test_an_english_name_whose_distinctive_words_the_question_says_is_stated():
    from rag.match import restates_question

    q = analyze(
        "At which steel group has Taizhong's intelligent coking equipment enabled one-key coking?"
    )
    assert restates_question(q, "Taizhong Group")  # "Group" tells no group from another
    assert not restates_question(q, "Jinnan Iron and Steel Group")


def test_a_title_running_into_the_stated_organisation_is_not_a_name_answer():
    from rag.match import ends_with_stated_name

    q = analyze("Who is the Party secretary and chairman of Huagong Technology Industry Co., Ltd.?")
    assert ends_with_stated_name(
        q, "Party Committee and Chairman of Huagong Technology Industry Co"
    )
    assert not ends_with_stated_name(q, "Ma Xinqiang")
    q = analyze("At which steel group has Taizhong's coking equipment enabled one-key coking?")
    assert not ends_with_stated_name(q, "Jinnan Iron and Steel Group")  # a kind, not a name


def test_a_chinese_compound_phrase_is_asked_in_full_in_english_text():
    from rag.match import phrase_coverage

    q = analyze("晋江有多少家民营企业?")  # 民营企业: "private" and "enterprise"
    assert phrase_coverage(q, "the number of private enterprises in Jinjiang") == 1.0
    assert phrase_coverage(q, "enterprises with an output value of 100 million yuan") < 1.0
