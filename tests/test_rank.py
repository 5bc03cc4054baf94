"""The span ranker: features, choice, abstention, fitting, and the shipped model."""

from __future__ import annotations

import json
import random
from dataclasses import asdict, replace

import numpy as np
import pytest

from rag.rank import SPAN_FEATURES, SpanEvidence, SpanRanker, span_features
from rag.reader_model import BUNDLED


def _span(text: str, score: float, **kw: object) -> SpanEvidence:
    base = SpanEvidence(text, score, 0.0, 0, True, 0.5, 0)
    return replace(base, **kw)  # type: ignore[arg-type]


def _col(name: str) -> int:
    return SPAN_FEATURES.index(name)


def test_features_are_relative_to_the_question():
    spans = [
        _span("268", 9.0),
        _span("268", 7.0, context_rank=2),
        _span("BYD", 8.0, sentence_rank=-1),
    ]
    x = span_features(spans, [1.0, 2.0])
    assert x.shape == (3, len(SPAN_FEATURES))
    assert x[0, _col("gap")] == 0.0 and x[2, _col("gap")] == -1.0
    assert x[0, _col("margin")] == 9.0
    assert x[0, _col("mass")] == pytest.approx(x[0, _col("prob")] + x[1, _col("prob")])
    assert x[:, _col("prob")].sum() < 1.0  # the no-answer options hold the rest
    assert x[2, _col("sentence_rank")] == 0.0 and x[0, _col("sentence_rank")] == 1.0
    assert x[1, _col("context_rank")] == pytest.approx(1 / 3)
    # a span holding the reader's other spans gathers their probability
    nested = [_span("37 intelligent coal mines", 5.0), _span("37", 6.0), _span("coal", 4.0)]
    x = span_features(nested, [0.0])
    prob = x[:, _col("prob")]
    assert x[0, _col("inner_mass")] == pytest.approx(prob[1] + prob[2])
    assert x[1, _col("inner_mass")] == 0.0 and x[2, _col("inner_mass")] == 0.0
    assert span_features([], [0.0]).shape == (0, len(SPAN_FEATURES))


def _ranker(on: str, threshold: float = 0.5) -> SpanRanker:
    coef = tuple(5.0 if n == on else 0.0 for n in SPAN_FEATURES)
    abstain = tuple([1.0, 0.0] + [0.0] * len(SPAN_FEATURES))  # the chosen span's ranker logit
    return SpanRanker(coef, 0.0, abstain, 0.0, threshold)


def test_ranker_chooses_by_evidence_and_abstains_below_the_threshold():
    spans = [_span("wrong", 9.0, dense=0.2), _span("right", 6.0, dense=0.9)]
    i, p = _ranker("dense").run(spans, [0.0])
    assert spans[i].text == "right" and p > 0.5
    i, p = _ranker("dense", threshold=0.999).run(spans, [0.0])
    assert i is None and 0.0 < p < 0.999
    assert _ranker("dense").run([], [0.0]) == (None, 0.0)


def test_manifest_round_trip_and_the_shipped_ranker():
    assert SpanRanker.from_manifest({}) is None
    assert SpanRanker.from_manifest({"span_ranker": {"features": ["other"]}}) is None
    calibration = json.loads(BUNDLED.with_suffix(".json").read_text())["calibration"]
    shipped = SpanRanker.from_manifest(calibration)
    assert shipped is not None, "rag calibrate stores the span ranker in the reader manifest"
    assert len(shipped.rank_coef) == len(SPAN_FEATURES)
    assert len(shipped.abstain_coef) == len(SPAN_FEATURES) + 2
    assert 0.0 < shipped.threshold < 1.0
    assert calibration["span_ranker"]["contexts"] >= 1
    if "span_ranker_int8" in calibration:  # `RAG_READER_INT8=1 rag calibrate` fitted one
        int8 = SpanRanker.from_manifest(calibration, "span_ranker_int8")
        assert int8 is not None and int8 != shipped, "int8 logits have a ranker of their own"


def _records(n: int, seed: int = 3) -> list[dict]:
    """Questions whose right span has the best evidence but not the best reader logit."""
    rng = random.Random(seed)
    out = []
    for q in range(n):
        spans, labels = [], []
        right = rng.randrange(4)
        for k in range(4):
            dense = 0.8 + 0.1 * rng.random() if k == right else 0.3 + 0.3 * rng.random()
            spans.append(_span(f"s{q}-{k}", 5.0 + 3 * rng.random(), dense=dense, context_rank=k))
            labels.append(k == right)
        out.append(
            {
                "source": "public",
                "title": f"t{q % 3}",
                "qlang": "en",
                "spans": [asdict(s) for s in spans],
                "labels": labels,
                "nulls": [0.0, 0.0],
                "null_contexts": [0, 1],
            }
        )
    for q in range(n // 3):  # unanswerable: nothing stands out
        spans = [_span(f"u{q}-{k}", 3.0 * rng.random(), dense=0.2) for k in range(4)]
        out.append(
            {
                "source": "unanswerable",
                "title": f"t{q % 3}",
                "qlang": "en",
                "spans": [asdict(s) for s in spans],
                "labels": [False] * 4,
                "nulls": [2.0],
            }
        )
    for q in range(20):
        rec = dict(out[q], source="dev", kind="en" if q % 2 else "none")
        if q % 2 == 0:
            rec["labels"] = [False] * 4
        out.append(rec)
    return out


def test_fitting_learns_from_evidence_and_reports_held_out_figures():
    from eval.spanrank import evaluate, fit_abstainer, fit_and_report, fit_ranker

    records = _records(90)
    ranker = fit_ranker(records, contexts=6)
    assert ranker[0][_col("dense")] > 0, "the evidence column carries the choice"
    coef, icpt, cut = fit_abstainer(records, ranker, contexts=6)
    assert len(coef) == len(SPAN_FEATURES) + 2 and 0.0 <= cut <= 1.0
    figures = evaluate(records, contexts=6)
    assert figures["public_cv"]["chosen_right_en"] > figures["public_cv"]["reader_first_right_en"]
    assert figures["public_cv"]["chosen_right_en"] >= 0.9
    assert set(figures["dev_cv"]) >= {"accuracy", "en", "none"}
    chosen, results = fit_and_report(records, candidates=(2, 4))
    assert chosen in (2, 4) and set(results) == {2, 4}
    # fewer contexts: spans (and no-answer windows) of later contexts drop out
    from eval.spanrank import _matrix

    x, y = _matrix(records[0], 2)
    assert len(x) == 2 and len(y) == 2
    assert np.isfinite(x).all()
    # the ranker sees the first `top` spans of the passages read, as the pipeline does
    many = dict(records[0], spans=records[0]["spans"] * 3, labels=records[0]["labels"] * 3)
    assert len(_matrix(many, 2, top=5)[0]) == 5
    assert len(_matrix(many, 2, top=50)[0]) == 6
    # an ablation: the dropped column gets no weight, and the choice gets worse without it
    without = frozenset({"dense"})
    assert fit_ranker(records, contexts=6, drop=without)[0][_col("dense")] == 0.0
    ablated = evaluate(records, contexts=6, drop=without)["public_cv"]["chosen_right_en"]
    assert ablated < figures["public_cv"]["chosen_right_en"]


def test_number_agreement_of_the_evidence_sentence():
    from rag.query import analyze
    from rag.rank import number_agreement

    assert number_agreement((), "In 2022 there were 37.") == (0.0, 0.0)
    assert number_agreement(("2024",), "截至2024年底,數量達到268座。") == (1.0, 0.0)
    assert number_agreement(("2024",), "By the end of 2022 there were 37.") == (0.0, 1.0)
    assert number_agreement(("1883", "3"), "In 1883 he founded it.") == (0.5, 0.5)
    assert number_agreement(("20",), "It grew 2024-fold.") == (0.0, 1.0)  # whole numbers only
    # a number the question states with a thousands separator, as the question's are read
    asked = analyze("Which county paid 1,258 households by 2024?").numbers
    assert sorted(asked) == ["1258", "2024"]
    assert number_agreement(asked, "By 2024, 1,258 households were paid.") == (1.0, 0.0)
    assert number_agreement(("1258",), "It paid 1,258 households.") == (1.0, 0.0)


def _stub_reader(calibration: dict, int8: bool = False):
    from types import SimpleNamespace

    return SimpleNamespace(
        manifest=SimpleNamespace(calibration=calibration), int8=int8, warm_up=lambda: None
    )


def test_pipeline_picks_the_ranker_of_its_precision_and_warns_on_mismatch(
    fake_index, fake_embedder, caplog
):
    from rag.pipeline import Pipeline
    from rag.rank import ranker_key

    calibration = json.loads(BUNDLED.with_suffix(".json").read_text())["calibration"]
    fp32 = dict(calibration[ranker_key(False)], embedder=fake_embedder.name)
    int8 = dict(fp32, threshold=0.123)
    both = {ranker_key(False): fp32, ranker_key(True): int8}
    pipeline = Pipeline.open(fake_index, fake_embedder, reader=_stub_reader(both, int8=True))
    assert pipeline.ranker is not None and pipeline.ranker.threshold == 0.123
    assert not caplog.records
    only_fp32 = {ranker_key(False): dict(fp32, embedder="another-model")}
    pipeline = Pipeline.open(fake_index, fake_embedder, reader=_stub_reader(only_fp32, int8=True))
    assert pipeline.ranker is not None and pipeline.ranker.threshold == fp32["threshold"]
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "int8" in logged and "another-model" in logged


def test_calibration_reuses_its_records_and_report_only_leaves_the_manifest(tmp_path):
    from eval.spanrank import RECORDS_VERSION, records_path, run_span_calibration
    from index.errors import ConfigError
    from rag.config import Settings
    from rag.reader_model import file_sha256

    settings = Settings(index_dir=tmp_path / "index", sentence_ranking="plain")
    weights = tmp_path / "reader.pt"
    weights.write_bytes(b"trained tensors")
    # the records are keyed by the weights that read them and the records' version
    cache = records_path(settings, weights)
    assert cache == tmp_path / f"spanrank-plain-{file_sha256(weights)[:12]}-v{RECORDS_VERSION}.json"
    cache.write_text(json.dumps(_records(60)))
    manifest = weights.with_suffix(".json")
    manifest.write_text(json.dumps({"calibration": {}}))
    report = run_span_calibration(
        settings, tmp_path / "unused.jsonl", weights=weights, reuse=True, write=False
    )
    assert 1 <= report["contexts"] <= 6 and json.loads(manifest.read_text()) == {"calibration": {}}
    run_span_calibration(settings, tmp_path / "unused.jsonl", weights=weights, reuse=True)
    stored = json.loads(manifest.read_text())["calibration"]["span_ranker"]
    assert SpanRanker.from_manifest({"span_ranker": stored}) is not None
    with pytest.raises(ConfigError, match="unknown span ranker column"):
        run_span_calibration(
            settings, tmp_path / "unused.jsonl", weights=weights, reuse=True, drop=("nope",)
        )
    run_span_calibration(
        settings, tmp_path / "unused.jsonl", weights=weights, reuse=True, drop=("dense",)
    )
    stored = json.loads(manifest.read_text())["calibration"]["span_ranker"]
    fixed = run_span_calibration(
        settings, tmp_path / "unused.jsonl", weights=weights, reuse=True, write=False, contexts=2
    )
    assert fixed["contexts"] == 2 and set(fixed["figures"]) == {"2"}
    assert stored["dropped"] == ["dense"]
    assert stored["rank_coef"][_col("dense")] == 0.0
    other = settings.model_copy(update={"reader_weights": tmp_path / "other.pt"})
    with pytest.raises(ConfigError, match="weights that read"):
        run_span_calibration(other, tmp_path / "unused.jsonl", weights=weights, reuse=True)


def test_one_language_sets_are_asked_over_their_own_articles_and_fit_the_ranker_only(
    monkeypatch, tmp_path
):
    import eval.spanrank as spanrank

    rows = [
        {"id": f"c{i}", "title": f"T{i % 3}", "context": f"上下文 {i % 3}", "question": f"问{i}"}
        | {"answers": [{"text": "长江三角洲", "answer_start": 0}], "lang": "zh-Hans"}
        | {"split": "valid" if i < 6 else "train", "dataset": "cmrc"}
        for i in range(8)
    ]
    path = tmp_path / "cmrc-like.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    indexed: list[set[str]] = []

    def fake_corpus(settings, corpus, folder):  # type: ignore[no-untyped-def]
        indexed.append({r.title for r in corpus})
        return folder.name

    spans = [asdict(_span("长江三角洲", 3.0)), asdict(_span("黄河", 4.0))]
    monkeypatch.setattr(spanrank, "corpus_pipeline", fake_corpus)
    monkeypatch.setattr(spanrank, "_row", lambda p, q: {"spans": spans, "nulls": [0.0]})
    out = spanrank.collect_own_articles(None, path)
    assert indexed == [{"T0", "T1", "T2"}], "one index of the valid split's articles"
    assert len(out) == 6 and {r["direction"] for r in out} == {"cmrc-like"}
    assert all(r["labels"] == [True, False] for r in out), "right at F1 >= 0.5 (character level)"
    assert all(r["source"] == spanrank.OWN_ARTICLES for r in out)
    # they teach the ranker; the abstainer is fitted as if they were not there
    records = _records(60)
    assert not np.allclose(
        spanrank.fit_ranker(records + out, 6)[0], spanrank.fit_ranker(records, 6)[0]
    )
    ranker = spanrank.fit_ranker(records, 6)
    with_own = spanrank.fit_abstainer(records + out, ranker, 6)
    assert np.allclose(with_own[0], spanrank.fit_abstainer(records, ranker, 6)[0])


def test_collection_logs_the_questions_it_has_asked(monkeypatch, caplog):
    import logging

    import eval.spanrank as spanrank

    asked = spanrank._Asked()
    monkeypatch.setattr(spanrank, "LOG_EVERY_S", 3600.0)
    with caplog.at_level(logging.INFO, logger="eval.spanrank"):
        asked.tick()
        assert not caplog.records, "no line before LOG_EVERY_S has passed"
        monkeypatch.setattr(spanrank, "LOG_EVERY_S", 0.0)
        asked.tick()
    assert asked.count == 2
    assert "2 questions asked" in caplog.records[-1].getMessage()


def test_a_fit_on_labels_of_one_class_is_certain_of_that_class():
    from eval.spanrank import _standardised_fit

    x = np.random.default_rng(0).standard_normal((8, 3))
    coef, icpt = _standardised_fit(x, np.ones(8, dtype=bool), np.ones(8))
    assert not coef.any() and icpt > 10
    coef, icpt = _standardised_fit(x, np.zeros(8, dtype=bool), np.ones(8))
    assert not coef.any() and icpt < -10
