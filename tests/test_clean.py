import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from index.clean import clean_document, clean_text, find_date, find_title
from index.types import RawDocument


def test_pinyin_annotations_are_removed():
    text, damaged = clean_text("創(chuàng)新能力排名上升5位")
    assert text == "創新能力排名上升5位"
    assert damaged == ()


def test_english_in_parentheses_after_chinese_is_kept():
    text, _ = clean_text("人工智能(AI)產業")
    assert text == "人工智能(AI)產業"


def test_mojibake_marks_are_dropped_and_neighbours_flagged():
    raw = "用電量占當乜傆秒娏康谋戎匾言鲋?2.5%,超過了煤炭行業"
    doc = clean_document(RawDocument("d", raw, ""))
    assert "?" not in doc.text
    start = doc.text.index("2.5%")
    assert doc.touches_damage(start, start + 4), "a number touching damage is untrusted"
    clean_start = doc.text.index("煤炭")
    assert not doc.touches_damage(clean_start, clean_start + 2)


def test_stray_ascii_punctuation_in_a_garbled_run_does_not_end_the_sentence():
    text, _ = clean_text("截至2024年底,全省“惠商?!崩塾?jì)賠付戶數(shù)4.39萬戶。")
    assert "!" not in text and "4.39萬戶" in text
    assert clean_text("好!很好。")[0] == "好!很好。", "outside damage '!' is punctuation"


def test_full_width_question_mark_is_not_mojibake():
    text, damaged = clean_text("這是什麼？我們不知道。")
    assert damaged == ()
    assert "？" in text


def test_boilerplate_lines_are_stripped():
    raw = "Title here\nView the rest of the full text\n(Editor in charge: Yang Miao)\nBody text.profile picture\n"
    text, _ = clean_text(raw)
    assert (
        "View the rest" not in text
        and "Editor in charge" not in text
        and "profile picture" not in text
    )
    assert "Body text." in text


def test_nfkc_and_whitespace():
    text, _ = clean_text("增長３３．４％  and   more\n\n\n\nnext")
    assert "33.4%" in text
    assert "and more" in text
    assert "\n\n\n" not in text


def test_title_and_date():
    text, _ = clean_text(" date 2023-04-04 [In-depth study of the spirit]\n\nBody")
    assert find_title(text) == "In-depth study of the spirit"
    assert find_date(text) == "2023-04-04"
    assert find_date("Published June 14, 2024 in print") == "2024-06-14"
    assert find_date("2025年1月20日 山西") == "2025-01-20"


def test_script_detection():
    assert clean_document(RawDocument("a", "Shanxi coal mines.", "")).lang == "en"
    assert clean_document(RawDocument("b", "山西省智能化煤矿数量达到268座。", "")).lang == "zh-Hans"
    assert clean_document(RawDocument("c", "山西省智能化煤礦數量達到268座。", "")).lang == "zh-Hant"


text_no_marks = st.text(
    alphabet=st.characters(
        blacklist_characters="?()\x00", blacklist_categories=("Cs", "Cc", "Cf", "Zl", "Zp")
    ),
    max_size=200,
)


@settings(max_examples=150, deadline=None)
@given(text_no_marks)
def test_cleaning_is_idempotent(raw: str):
    once, _ = clean_text(raw)
    twice, _ = clean_text(once)
    assert twice == once


@settings(max_examples=150, deadline=None)
@given(text_no_marks)
def test_cleaning_never_drops_cjk_or_digits(raw: str):
    text, damaged = clean_text(raw)
    assert damaged == ()
    keep = [
        c for c in unicodedata.normalize("NFKC", raw) if c.isdigit() or "\u4e00" <= c <= "\u9fff"
    ]
    got = [c for c in text if c.isdigit() or "\u4e00" <= c <= "\u9fff"]
    assert got == keep
