import json

import pytest

from eval.gold import GoldError, load_gold
from eval.metrics import (
    alias_in,
    answer_matches,
    exact_match,
    percentile,
    reciprocal_rank,
    token_f1,
)


def test_numeric_alias_must_stand_alone():
    assert not alias_in("2.5%", "12.5%")
    assert not alias_in("37", "2037")
    assert not alias_in("2.5", "2.55")
    assert alias_in("3.8", "3.8個百分點")
    assert alias_in("268", "268座")


def test_alias_match_is_case_width_script_space_insensitive():
    assert answer_matches("ＺＯＵ  zhilei", ["Zou Zhilei"])
    assert answer_matches("杜兒坪礦", ["杜儿坪矿"])
    assert answer_matches("“十四五”", ["十四五"])
    assert not answer_matches(
        "Shanxi", ["Shanxi Jolywood Photovoltaic Battery Technology Co., Ltd."]
    )
    assert not answer_matches(None, ["x"])


def test_exact_f1_rank_percentile():
    assert exact_match("268", ["268", "268座"])
    assert not exact_match("268座煤礦", ["268"])
    assert token_f1("40 degrees", ["40 degrees Celsius"]) == pytest.approx(0.8)
    assert reciprocal_rank(["a", "b", "c"], "b") == 0.5
    assert percentile([1, 2, 3, 4], 50) == 2.5


def test_bundled_gold_set_is_valid():
    items = load_gold()
    assert len(items) == 158
    assert {i.kind for i in items} == {"en", "cross", "zh", "zh-cross", "none"}


@pytest.mark.parametrize(
    "row,message",
    [
        ('{"id": "x", "q": "q?", "answers": ["a"], "kind": "bogus"}', "kind"),
        ('{"id": "x", "q": "q?", "answers": [], "kind": "en"}', "needs at least one answer"),
        ("{not json", "not valid JSON"),
    ],
)
def test_bad_gold_row_names_its_line(tmp_path, row, message):
    path = tmp_path / "g.jsonl"
    good = json.dumps({"id": "ok", "q": "q?", "answers": [], "kind": "none"})
    path.write_text(good + "\n" + row + "\n")
    with pytest.raises(GoldError, match=rf"g.jsonl:2: .*{message}"):
        load_gold(path)


def test_alias_found_inside_a_longer_snippet_at_word_boundaries():
    assert alias_in("Shuozhou City", "Pinglu Yufeng Wind Farm in Shuozhou City, Shanxi Province.")
    assert alias_in("four", "one of the four famous vinegars")
    assert not alias_in("four", "fourteen vinegars")
