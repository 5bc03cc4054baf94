"""Elliptical follow-ups are rewritten from the previous user turn; full questions are not."""

import pytest

from rag.followup import is_elliptical, resolve

EN = "How many intelligent coal mines did Shanxi have at end-2024?"
ZH = "2024年底山西有多少座智能化煤矿?"


@pytest.mark.parametrize(
    "previous,question,expected",
    [
        ([EN], "And by the end of 2022?", EN.replace("2024", "2022")),
        ([EN], "What about Hubei?", EN.replace("Shanxi", "Hubei")),
        ([EN], "And the year before?", EN.replace("2024", "2023")),
        ([ZH], "那2022年呢？", ZH.replace("2024", "2022")),
        ([ZH], "湖北呢？", ZH.replace("山西", "湖北")),
        ([EN, "And in 2022?"], "What about Hubei?", EN.replace("Shanxi", "Hubei")),
        ([EN], "How many flange enterprises does Dingxiang have?", None),
        ([], "And in 2022?", None),
    ],
)
def test_resolve(previous, question, expected):
    assert resolve(previous, question) == (expected or question)


def test_elliptical_detection():
    assert is_elliptical("And in 2022?") and is_elliptical("那湖北呢？")
    assert not is_elliptical(EN) and not is_elliptical(ZH)
    assert not is_elliptical("Who is the chairman of Huawei Coal Mine Corps?")


def test_fragment_without_year_or_name_is_appended():
    out = resolve([EN], "and green mining?")
    assert out.startswith(EN.rstrip("?")) and out.endswith("green mining?")
