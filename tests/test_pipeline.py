"""The read path over a small index built with the deterministic fake embedder."""

import pytest

from rag.pipeline import QuestionError
from rag.types import Answer

QUESTIONS = [
    "How many intelligent coal mines had Shanxi built by the end of 2024?",
    "Who is the chairman of Huawei Coal Mine Corps?",
    "How much did the province invest in green mining?",
    "定襄縣有多少家法蘭鍛造企業?",
    "2023年湖北有多少家科技型中小企业?",
    "How many bones are there in an adult human body?",
]


@pytest.mark.parametrize("question", QUESTIONS)
def test_answers_are_faithful_spans_with_citations(fake_pipeline, question):
    ans = fake_pipeline.ask(question, top_k=3, include_passages=True)
    assert isinstance(ans, Answer)
    assert 0.0 <= ans.confidence <= 1.0
    assert len(ans.passages) <= 3
    for c in ans.citations:  # answer or not, evidence is shown, at exact offsets
        doc = fake_pipeline.store.documents[c.doc_id]
        assert doc.text[c.start : c.end] and doc.text[c.start : c.end] in c.snippet
    if ans.text is None:
        assert ans.citations, "no answer still shows the closest evidence"
        return
    assert len(ans.text) <= 60
    first = ans.citations[0]
    doc = fake_pipeline.store.documents[first.doc_id]
    assert doc.text[first.start : first.end] == ans.text
    assert ans.text in first.snippet and len(first.snippet) <= 300
    for c in ans.citations:
        assert fake_pipeline.store.documents[c.doc_id].text[c.start : c.end]


def test_every_candidate_offset_is_exact(fake_pipeline):
    for q in QUESTIONS:
        tr = fake_pipeline.trace(q)
        for c in tr.candidates:
            doc = fake_pipeline.store.documents[c.doc_id]
            assert doc.text[c.start : c.end] == c.text
            assert not doc.touches_damage(c.start, c.end)


def test_language_balanced_pools_keep_both_languages(fake_pipeline):
    tr = fake_pipeline.trace("How many intelligent coal mines does Shanxi have?")
    langs = {h.passage.lang != "en" for h in tr.hits}
    assert langs == {True, False}


@pytest.mark.parametrize("bad", ["", "   ", "x" * 2001])
def test_bad_questions_raise_a_clear_error(fake_pipeline, bad):
    with pytest.raises(QuestionError):
        fake_pipeline.ask(bad)


def test_to_dict_shape(fake_pipeline):
    body = fake_pipeline.ask(QUESTIONS[0], include_passages=True).to_dict(include_passages=True)
    assert set(body) == {
        "answer",
        "confidence",
        "question_type",
        "citations",
        "took_ms",
        "passages",
    }
    assert body["question_type"] == "count"


@pytest.mark.parametrize("question", QUESTIONS[:2] + QUESTIONS[3:4])
def test_plain_sentence_ranking_orders_by_retrieval_evidence_alone(
    fake_index, fake_embedder, question
):
    from rag.pipeline import Pipeline, plain_sentence_logit

    plain = Pipeline.open(fake_index, fake_embedder, sentence_ranking="plain")
    ranked = plain.trace(question).sentences
    logits = [plain_sentence_logit(s.features) for s in ranked]
    assert ranked and logits == sorted(logits, reverse=True)
    assert abs(sum(s.score for s in ranked) - 1.0) < 1e-6
    fitted = Pipeline.open(fake_index, fake_embedder).trace(question).sentences
    assert {s.row for s in fitted} == {s.row for s in ranked}  # same candidates, own order


def test_other_language_sentences_are_ranked_with_the_rendered_question(fake_index, fake_embedder):
    import random

    import numpy as np

    from rag.augment import code_switch
    from rag.pipeline import Pipeline
    from rag.query import analyze

    on = Pipeline.open(fake_index, fake_embedder)
    off = Pipeline.open(fake_index, fake_embedder, cross_query=False)
    query = analyze("How many science and technology enterprises does Hubei have?")
    qvec = fake_embedder.embed([query.text], is_query=True)[0]
    rendered = code_switch(query.text, 1.0, random.Random(0))
    assert rendered != query.text
    both = fake_embedder.embed([query.text, rendered], is_query=True)
    xvec = on.cross_vector(query, qvec)
    assert xvec is not None and np.allclose(xvec, both.mean(axis=0), atol=1e-6)
    assert off.cross_vector(query, qvec) is None
    chinese = analyze("湖北有多少家科技型中小企业?")
    assert on.cross_vector(chinese, qvec) is None  # its rendering is glosses: not used

    traced = {p: p.trace(query.text) for p in (on, off)}
    assert [h.passage.passage_id for h in traced[on].hits] == [
        h.passage.passage_id for h in traced[off].hits
    ], "passages are retrieved by the question's own vector either way"
    langs = set()
    for pipeline, tr in traced.items():
        for s in tr.sentences:
            vec = np.asarray(pipeline.store.sentence_vectors[[s.row]])[0]
            other = bool(pipeline._sentence_is_zh[s.row])  # the question is English
            langs.add(other)
            by = xvec if other and pipeline is on else qvec
            dense = s.features["dense_same"] + s.features["dense_cross"]
            assert dense == pytest.approx(float(vec @ by), abs=1e-5)
    assert langs == {True, False}


def test_a_citation_snippet_holds_a_span_that_runs_past_its_sentence(fake_pipeline):
    from rag.types import ScoredSentence

    store = fake_pipeline.store
    first, second = next(
        (a, b)
        for a, b in zip(store.sentences, store.sentences[1:], strict=False)
        if a.doc_id == b.doc_id and b.start > a.end
    )
    text = store.documents[first.doc_id].text
    sentence = ScoredSentence(first.row, first.doc_id, first.start, first.end, "", 1.0)
    start, end = first.end - 4, second.start + 4
    cited = fake_pipeline._cite(sentence, start, end, 1.0)
    assert (cited.start, cited.end) == (start, end)
    assert text[start:end] in cited.snippet


def test_the_rules_answer_cites_the_top_evidence_sentence_too(fake_pipeline, monkeypatch):
    import dataclasses

    tr = fake_pipeline.trace("How many intelligent coal mines did Shanxi have?")
    top, other = (
        tr.sentences[0],
        next(s for s in tr.sentences if s.passage_id != tr.sentences[0].passage_id),
    )
    tr.candidates = [
        dataclasses.replace(tr.candidates[0], sentence=other, start=other.start, end=other.end)
    ]
    monkeypatch.setattr(
        fake_pipeline, "weights", dataclasses.replace(fake_pipeline.weights, threshold=0.0)
    )
    ans = fake_pipeline.answer_from(tr)
    assert ans.text is not None and ans.citations[0].passage_id == other.passage_id
    assert top.passage_id in {c.passage_id for c in ans.citations}
