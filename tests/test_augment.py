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
