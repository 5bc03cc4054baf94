"""Code-switched questions (rag.augment) and their use in training data."""

import random

from index.textnorm import CJK_RUN_RE


def test_english_question_takes_chinese_words_and_keeps_numbers():
    from rag.augment import code_switch

    q = "How many people lived in the city in 1990?"
    out = code_switch(q, 1.0, random.Random(0))
    assert CJK_RUN_RE.search(out) and "1990" in out
    assert out.startswith("多少")  # the interrogative is rendered as one word
    assert code_switch(q, 0.0, random.Random(0)) == q


def test_chinese_question_takes_english_words_and_keeps_its_script():
    from rag.augment import code_switch

    q = "阿拉巴馬州的首府是哪個城市?"
    out = code_switch(q, 1.0, random.Random(0))
    assert any(ch.isascii() and ch.isalpha() for ch in out)
    untouched = "".join(CJK_RUN_RE.findall(out))
    assert all(ch in q for ch in untouched), "characters left as they are keep their script"
    assert code_switch(q, 0.0, random.Random(0)) == q


def test_code_switching_is_seeded_and_partial():
    from rag.augment import code_switch

    q = "Which company built the first electric car factory in the province?"
    a = code_switch(q, 0.5, random.Random(7))
    assert a == code_switch(q, 0.5, random.Random(7))
    assert a != q and not CJK_RUN_RE.fullmatch(a.replace(" ", ""))


def test_code_switched_copies_keep_context_and_answers():
    from rag.train import code_switched

    rows = [
        {
            "question": f"Who founded the museum in {1900 + i}?",
            "context": f"The museum was founded in {1900 + i} by Ada.",
            "answers": [{"text": "Ada", "start": 40}],
            "lang": "en",
        }
        for i in range(40)
    ]
    copies = code_switched(rows, 0.5, random.Random(1))
    assert 10 <= len(copies) <= 30
    for c in copies:
        assert c["question_lang"] == "mixed" and CJK_RUN_RE.search(c["question"])
        assert c["context"] in {r["context"] for r in rows} and c["answers"] == rows[0]["answers"]
    assert code_switched(rows, 0.0, random.Random(1)) == []


def test_a_word_of_several_senses_is_rendered_as_the_passage_to_be_read_says_it():
    from rag.augment import code_switch

    zh = "医疗报告是为谁而写？"
    assert "inform" in code_switch(zh, 1.0, random.Random(0))  # CC-CEDICT's first sense
    over = code_switch(zh, 1.0, random.Random(0), "The medical report was written for the king.")
    assert "report" in over and "inform" not in over
    en = "What is the theory behind the spread of the plague?"
    assert "伸展" in code_switch(en, 1.0, random.Random(0))
    over = code_switch(en, 1.0, random.Random(0), "关于瘟疫传播的理论有很多。")
    assert "传播" in over and "伸展" not in over


def test_parsed_dictionaries_are_kept_in_the_cache_folder(tmp_path, monkeypatch):
    """Parsed once, then read back; a damaged file is parsed again; old keys are pruned."""
    from rag import lexicon

    monkeypatch.setattr(lexicon, "_cache_dir", None)
    calls = []

    def build() -> dict[str, tuple[str, ...]]:
        calls.append(1)
        return {"能源": ("energy",)}

    assert lexicon.disk_cached("toy", build) == {"能源": ("energy",)} and len(calls) == 1
    assert not (tmp_path / "lexicon").exists()  # no folder set: nothing written

    lexicon.use_cache_dir(tmp_path)
    stale = tmp_path / "lexicon" / "toy-0000000000000000.pickle"
    stale.parent.mkdir()
    stale.write_bytes(b"tables of an older dictionary")
    assert lexicon.disk_cached("toy", build) == {"能源": ("energy",)} and len(calls) == 2
    (kept,) = (tmp_path / "lexicon").glob("toy-*.pickle")
    assert kept != stale and not stale.exists()
    assert lexicon.disk_cached("toy", build) == {"能源": ("energy",)} and len(calls) == 2

    kept.write_bytes(b"\x80\x05 damaged")
    assert lexicon.disk_cached("toy", build) == {"能源": ("energy",)} and len(calls) == 3
    assert lexicon.disk_cached("toy", build) == {"能源": ("energy",)} and len(calls) == 3


def test_an_unwritable_cache_folder_costs_the_parse_not_the_answer(tmp_path, monkeypatch):
    from rag import lexicon

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setattr(lexicon, "_cache_dir", blocker)
    assert lexicon.disk_cached("toy", lambda: {"a": ("b",)}) == {"a": ("b",)}
    assert blocker.read_text() == "a file where the cache folder would go"
