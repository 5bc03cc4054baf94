import pytest

from rag.query import analyze
from rag.timeref import time_agreement, time_refs


@pytest.mark.parametrize(
    "text,key",
    [
        ("近三年河南新建了41家省级产业研究院", "past_3_years"),
        ("in the past three years, Henan has newly built 41 institutes", "past_3_years"),
        ("過去5年,全省累計投資", "past_5_years"),
        ("安徽今年计划新增装机容量", "this_year"),
        ("In February this year, four laboratories were set up", "this_year"),
        ("去年這家公司入選名單", "last_year"),
        ("From January to February, output grew 9.5%", "jan_feb"),
        ("1-2月,全省规上工业增加值增长7%", "jan_feb"),
        ("上半年出口增长", "h1"),
        ("In recent years, the city has grown", "recent_years"),
    ],
)
def test_time_phrases_get_one_key_in_both_languages(text, key):
    assert key in [k for k, _, _ in time_refs(text)]


def test_offsets_point_at_the_phrase():
    text = "Data shows that in the past three years, Henan built 41"
    ((_, start, end),) = time_refs(text)
    assert text[start:end] == "past three years"


def test_agreement_and_rival_phrases():
    keys = analyze("近三年河南新建了多少家省级产业研究院?").times
    assert keys == ("past_3_years",)
    assert time_agreement(keys, "in the past three years, Henan has built 41") == (1.0, 0.0)
    # "this year" is no answer to "the past three years": a rival of the same family
    assert time_agreement(keys, "In February this year, five institutes") == (0.0, 1.0)
    # a sentence without time phrases neither agrees nor conflicts
    assert time_agreement(keys, "Henan has 41 institutes") == (0.0, 0.0)
    assert time_agreement((), "this year") == (0.0, 0.0)


def test_time_phrases_count_as_question_terms_across_languages():
    from rag.match import coverage

    q = analyze("安徽今年计划新增多少千瓦?")
    with_time, _, _ = coverage(q, "Anhui plans to add 5 million kilowatts this year.")
    without, _, _ = coverage(q, "Anhui plans to add 5 million kilowatts.")
    assert with_time > without
