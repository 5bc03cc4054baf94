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
        ("Zou Zhilei, chairman of Huawei Coal Mine Corps, spoke.", "Zou Zhilei", "name"),
        ("It is used in Jinnan Iron and Steel Group now.", "Jinnan Iron and Steel Group", "name"),
        ("入選“燈塔工廠”名單。", "燈塔工廠", "quote"),
    ],
)
def test_candidate_spans(text, span, ctype):
    _, got = spans_of(text)
    assert (span, ctype) in got


def test_number_touching_mojibake_is_never_a_candidate():
    d, got = spans_of("用電量占當乜傆秒娏康谋戎匾言鲋?2.5%,超過了煤炭行業的12%。")
    texts = {t for t, _ in got}
    assert not any("2.5" in t and "12" not in t for t in texts)
    assert "12%" in texts


def test_compound_modifiers_are_not_values():
    _, got = spans_of("It formed 6 100-billion-level industrial chains.")
    texts = {t for t, _ in got}
    assert "6" in texts and "100" not in texts
