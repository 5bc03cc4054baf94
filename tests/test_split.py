import pytest

from index.clean import clean_document
from index.split import split_document, split_sentences, token_counter
from index.types import RawDocument


def doc(text: str, doc_id: str = "d"):
    return clean_document(RawDocument(doc_id, text, ""))


def test_sentences_respect_decimals_and_abbreviations():
    text = "Output rose 33.4% to 5.3 billion yuan. Huamei Co., Ltd. said so! Next one?"
    spans = [text[s:e] for s, e in split_sentences(text)]
    assert spans == [
        "Output rose 33.4% to 5.3 billion yuan.",
        "Huamei Co., Ltd. said so!",
        "Next one?",
    ]


def test_chinese_sentences_and_quotes():
    text = "定襄縣被稱為“中國鍛造之鄉”。全省煤礦達到268座;占比83%。“好!”他說。"
    spans = [text[s:e] for s, e in split_sentences(text)]
    assert spans[0] == "定襄縣被稱為“中國鍛造之鄉”。"
    assert "全省煤礦達到268座;" in spans
    assert "“好!”" in spans


def test_list_marker_is_not_a_sentence():
    text = "1.本網稿件版權所有。\n2.其他稿件請聯繫。"
    spans = [text[s:e] for s, e in split_sentences(text)]
    assert spans == ["1.本網稿件版權所有。", "2.其他稿件請聯繫。"]


@pytest.mark.parametrize("max_tokens,overlap", [(32, 0), (64, 16), (200, 40)])
def test_passages_keep_offsets_and_token_limits(corpus_dir, max_tokens, overlap):
    count = token_counter()
    for path in sorted(corpus_dir.iterdir()):
        d = doc(path.read_text(), path.stem)
        passages = split_document(d, max_tokens=max_tokens, overlap_tokens=overlap)
        assert passages
        for p in passages:
            assert d.text[p.start : p.end] == p.text
            assert count(p.text) == p.n_tokens
            assert p.n_tokens <= max_tokens or len(p.sentences) == 1
            assert all(d.text[s:e].strip() for s, e in p.sentences)
        covered = {s for p in passages for s in p.sentences}
        assert covered == set(s for p in passages for s in p.sentences)


def test_passage_ids_are_stable_and_content_derived(corpus_dir):
    d = doc((corpus_dir / "en_coal.txt").read_text(), "en_coal")
    a = [p.passage_id for p in split_document(d, max_tokens=40)]
    b = [p.passage_id for p in split_document(d, max_tokens=40)]
    assert a == b and len(set(a)) == len(a)
    other = doc((corpus_dir / "en_coal.txt").read_text() + "\nOne more sentence.", "en_coal")
    c = [p.passage_id for p in split_document(other, max_tokens=40)]
    assert a[0] == c[0]


def test_long_sentence_is_wrapped():
    d = doc("、".join(["山西省煤礦"] * 200) + "。")
    passages = split_document(d, max_tokens=50, overlap_tokens=0)
    assert len(passages) > 5
    assert all(p.n_tokens <= 50 for p in passages)


def test_a_long_line_without_punctuation_is_cut_in_linear_time():
    # each cut used to count the whole rest of the line: 64k characters took 4.8 s
    from index.split import _hard_wrap, token_counter

    count, counted = token_counter(), []

    def counting(text: str) -> int:
        counted.append(len(text))
        return count(text)

    line = "山西省煤礦智能化改造" * 2000
    pieces = _hard_wrap(line, (0, len(line)), 50, counting)
    assert pieces[0][0] == 0 and pieces[-1][1] == len(line)
    assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:], strict=False))
    assert all(count(line[s:e]) <= 50 for s, e in pieces)
    assert sum(counted) <= 40 * len(line), "characters counted grow with the line's square"
