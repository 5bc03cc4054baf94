"""Writes that cost one document: the change log, in-place application, folding, BM25."""

from __future__ import annotations

import math
import os
import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from index.build import build_index, write_documents
from index.delta import logged_changes
from index.lexical import LexicalIndex
from index.store import IndexStore, index_counts
from index.threads import ReadWriteLock
from index.types import RawDocument

KW = {"chunk_tokens": 64, "overlap_tokens": 16}
ADDED = (
    "Zorblat Institute report\n\nThe Zorblat Institute was founded in 1987 in Quentin City. "
    "Its first director was Maria Okonkwo. The institute employs 412 researchers."
)


def _consistent(store: IndexStore) -> None:
    """Every live passage is its document's text; each index holds exactly the live rows."""
    assert store.dense.count() == store.passage_total == store.lexical_passages.live
    assert store.lexical_sentences.live == sum(len(v) for v in store.sentences_by_doc.values())
    for _, p in store.live_passages():
        assert store.documents[p.doc_id].text[p.start : p.end] == p.text
    assert sum(store.passage_counts.values()) == store.passage_total


def _by_passage(store: IndexStore, query: list[str], vector: np.ndarray) -> dict[str, tuple]:
    """Lexical and dense scores of every live passage, keyed by passage id (not row)."""
    lex = store.lexical_passages.scores(query)
    scores, ids = store.dense.search(vector.reshape(1, -1), len(store.passages))
    dense = {int(i): float(s) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0}
    return {
        p.passage_id: (round(float(lex[r]), 4), round(dense[r], 4))
        for r, p in store.live_passages()
    }


def test_a_write_embeds_one_document_and_scores_as_a_rebuild_would(
    tmp_path, corpus_dir, fake_index, fake_embedder
):
    generation = os.readlink(fake_index / "current")
    report = write_documents(fake_index, fake_embedder, [RawDocument("added", ADDED, "added")])
    assert report.changes == 1 and report.seq == 1 and report.embedded > 0
    assert os.readlink(fake_index / "current") == generation, "no new generation is written"
    written = IndexStore.open(fake_index)
    _consistent(written)
    assert "added" in written.documents and written.passage_counts["added"] >= 1

    (corpus_dir / "added.txt").write_text(ADDED)
    build_index(corpus_dir, tmp_path / "fresh", fake_embedder, **KW)
    fresh = IndexStore.open(tmp_path / "fresh")
    for question in ("Who was the first director of the Zorblat Institute?", "coal mines"):
        from index.textnorm import lexical_terms

        vector = fake_embedder.embed([question], is_query=True)[0]
        terms = lexical_terms(question)
        assert _by_passage(written, terms, vector) == _by_passage(fresh, terms, vector)


def test_replace_and_delete_apply_in_place_and_survive_a_reopen(fake_index, fake_embedder):
    store = IndexStore.open(fake_index)
    seed = sorted(store.documents)[0]
    write_documents(fake_index, fake_embedder, [RawDocument("added", ADDED, "added")])
    replaced = ADDED.replace("Maria Okonkwo", "Li Wei").replace("412", "97")
    write_documents(fake_index, fake_embedder, [RawDocument("added", replaced, "added")], [seed])
    again = IndexStore.open(fake_index)
    _consistent(again)
    assert seed not in again.documents and seed not in again.passages_by_doc
    assert "Li Wei" in again.documents["added"].text
    texts = [p.text for _, p in again.live_passages() if p.doc_id == "added"]
    assert texts and not any("Okonkwo" in t for t in texts)
    assert again.seq == logged_changes(again.path) == 3, "two writes, three changes"
    assert index_counts(fake_index)[:2] == (len(again.documents), again.passage_total)


def test_a_pipeline_catches_up_with_writes_between_questions(fake_pipeline, fake_index):
    pipeline = fake_pipeline
    embedder = pipeline.embedder
    assert "added" not in pipeline.store.documents
    write_documents(fake_index, embedder, [RawDocument("added", ADDED, "added")])
    assert pipeline.catch_up() == 1 and pipeline.catch_up() == 0
    hits = pipeline.search("Zorblat Institute director Okonkwo", top_k=3)
    assert hits[0].passage.doc_id == "added"
    answer = pipeline.ask("Who was the first director of the Zorblat Institute?")
    for c in answer.citations:
        assert pipeline.store.documents[c.doc_id].text[c.start : c.end] == c.snippet
    write_documents(fake_index, embedder, [], ["added"])
    pipeline.catch_up()
    assert all(h.passage.doc_id != "added" for h in pipeline.search("Zorblat Okonkwo", top_k=10))


def test_rag_index_logs_changed_seeds_then_folds_a_long_log(corpus_dir, fake_index, fake_embedder):
    generation = os.readlink(fake_index / "current")
    (corpus_dir / "added.txt").write_text(ADDED)
    report = build_index(corpus_dir, fake_index, fake_embedder, **KW)
    assert report.changed and os.readlink(fake_index / "current") == generation
    assert logged_changes(fake_index / generation) == 1
    assert not build_index(corpus_dir, fake_index, fake_embedder, **KW).changed
    (corpus_dir / "added.txt").unlink()
    report = build_index(corpus_dir, fake_index, fake_embedder, compact_after=1, **KW)
    folded = os.readlink(fake_index / "current")
    assert report.changed and folded != generation, "past compact_after: a new generation"
    assert logged_changes(fake_index / folded) == 0
    store = IndexStore.open(fake_index)
    _consistent(store)
    assert "added" not in store.documents


def test_bm25_scores_are_the_lucene_formula():
    index = LexicalIndex.build([], terms=[["a", "b"], ["a", "c", "c"], []])
    n, avgdl = 3, (2 + 3 + 1) / 3
    idf = math.log(1 + (n - 1 + 0.5) / (1 + 0.5))
    tf, dl = 2, 3
    want = idf * tf / (tf + 1.2 * (1 - 0.75 + 0.75 * dl / avgdl))
    got = index.scores(["c"])
    assert got[0] == 0 and got[2] == 0 and math.isclose(got[1], want, rel_tol=1e-6)
    assert math.isclose(index.scores(["c", "c"])[1], 2 * want, rel_tol=1e-6)
    assert not index.scores(["unknown"]).any()


@settings(max_examples=60, deadline=None)
@given(
    docs=st.lists(st.lists(st.sampled_from("abcdefg"), max_size=6), min_size=1, max_size=12),
    added=st.lists(st.lists(st.sampled_from("abcdefgh"), max_size=6), max_size=6),
    removed=st.sets(st.integers(0, 17)),
    query=st.lists(st.sampled_from("abcdefgh"), min_size=1, max_size=4),
)
def test_bm25_added_and_removed_rows_score_as_a_rebuild_of_the_live_rows(
    docs, added, removed, query
):
    index = LexicalIndex.build([], terms=docs)
    index.add(added)
    index.remove(sorted(removed))
    every = docs + added
    live = [r for r in range(len(every)) if r not in removed]
    rebuilt = LexicalIndex.build([], terms=[every[r] for r in live])
    got = index.scores(query)
    assert index.live == len(live) and not got[[r for r in removed if r < len(every)]].any()
    np.testing.assert_allclose(got[live], rebuilt.scores(query), rtol=1e-5, atol=1e-6)


def test_bm25_round_trips_through_its_files(tmp_path):
    index = LexicalIndex.build(["Shanxi coal mines", "煤矿 智能化"])
    index.save(tmp_path / "lex")
    loaded = LexicalIndex.load(tmp_path / "lex")
    for q in (["coal"], ["煤矿"], ["mine", "x"]):
        np.testing.assert_array_equal(loaded.scores(q), index.scores(q))


def test_a_writer_waits_for_readers_and_holds_new_ones_back():
    lock = ReadWriteLock()
    log: list[str] = []
    reading, writer_waiting = threading.Event(), threading.Event()

    def reader() -> None:
        with lock.reading():
            reading.set()
            assert writer_waiting.wait(5)
            time.sleep(0.05)
            with lock.reading():  # a nested read does not deadlock behind the waiting writer
                log.append("nested read")
            log.append("read done")

    def writer() -> None:
        assert reading.wait(5)
        writer_waiting.set()
        with lock.writing():
            log.append("write")

    def late_reader() -> None:
        assert writer_waiting.wait(5)
        time.sleep(0.02)
        with lock.reading():
            log.append("late read")

    threads = [threading.Thread(target=f) for f in (reader, writer, late_reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert log == ["nested read", "read done", "write", "late read"]


def test_the_writer_lock_nests_in_a_thread_and_excludes_other_processes(tmp_path):
    import subprocess
    import sys

    from index.build import writer_lock

    probe = (
        "import fcntl, sys; fh = open(sys.argv[1], 'w')\n"
        "try:\n    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept OSError:\n"
        "    sys.exit(1)"
    )

    def other_process_gets_it() -> bool:
        run = subprocess.run([sys.executable, "-c", probe, str(tmp_path / ".lock")], timeout=60)
        return run.returncode == 0

    held: list[bool] = []

    def nested() -> None:
        with writer_lock(tmp_path):
            with writer_lock(tmp_path):  # the API holds it around write_documents, which takes it
                held.append(not other_process_gets_it())
            held.append(not other_process_gets_it())  # still held by the outer level

    thread = threading.Thread(target=nested, daemon=True)
    thread.start()
    thread.join(120)
    assert not thread.is_alive(), "a nested writer_lock deadlocked"
    assert held == [True, True]
    assert other_process_gets_it()


def test_a_build_reads_the_corpus_under_the_writer_lock(
    corpus_dir, fake_index, fake_embedder, monkeypatch
):
    """A document written while a build waits for the lock is in that build, not dropped."""
    from index import build as build_module
    from index.build import writer_lock

    data = corpus_dir.parent / "data"
    data.mkdir()
    read = threading.Event()
    load_corpus = build_module.load_corpus

    def watched(*args, **kwargs):
        read.set()
        return load_corpus(*args, **kwargs)

    monkeypatch.setattr(build_module, "load_corpus", watched)
    reports = []
    with writer_lock(fake_index):  # a writer (the API) is busy
        build = threading.Thread(
            target=lambda: reports.append(
                build_index(
                    corpus_dir,
                    fake_index,
                    fake_embedder,
                    chunk_tokens=64,
                    overlap_tokens=16,
                    data_dir=data,
                )
            )
        )
        build.start()
        assert not read.wait(1.0), "the corpus was read before the lock was taken"
        (data / "written.txt").write_text("Written while the build waited.", encoding="utf-8")
    build.join(120)
    assert read.is_set() and reports and "written" in IndexStore.open(fake_index).documents


@pytest.mark.parametrize("factory", ["Flat", "IVF16,Flat", "HNSW16"])
def test_faiss_vectors_are_added_and_removed_by_id_in_every_index_kind(factory):
    from index.faiss_store import FaissVectors, build_faiss

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((1200, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store = FaissVectors(build_faiss(vectors[:1000], np.arange(1000), factory, nprobe=16))
    store.remove(np.arange(0, 1000, 2))
    store.add(vectors[1000:], np.arange(1000, 1200))
    assert store.count() == 500 + 200
    _, ids = store.search(vectors[[1, 2, 1001]], 5)
    assert ids[0][0] == 1 and ids[2][0] == 1001, "a live vector finds itself"
    assert 2 not in set(ids[1].tolist()), "a removed vector is never returned"
    assert all(i < 0 or i % 2 or i >= 1000 for i in ids.ravel())


@pytest.mark.parametrize("factory", ["IVF16,SQ8", "Flat"])
def test_a_memory_mapped_index_takes_writes_after_reading_itself_into_memory(
    tmp_path, monkeypatch, factory
):
    # FAISS aborts the process on a write into memory-mapped lists (past 200k vectors a
    # fresh generation is mapped and its change log is empty)
    import faiss

    from index import faiss_store

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((1200, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = faiss_store.build_faiss(vectors[:1000], np.arange(1000), factory, nprobe=16)
    faiss.write_index(index, str(tmp_path / faiss_store.FILE))
    monkeypatch.setattr(faiss_store, "MMAP_ABOVE_VECTORS", 10)
    store = faiss_store.open_faiss(tmp_path, {"passages": 1000, "nprobe": 16})
    assert store._mapped_from is not None, "the generation is memory-mapped"
    store.remove(np.arange(0, 1000, 2))
    store.add(vectors[1000:], np.arange(1000, 1200))
    assert store.count() == 700 and faiss_store.index_nprobe(store.index) in (0, 16)
    _, ids = store.search(vectors[[1, 1001]], 1)
    assert ids[:, 0].tolist() == [1, 1001]


def test_an_empty_index_takes_the_embedders_dimension(tmp_path, fake_embedder):
    # an empty build's FAISS index had 384 dimensions whatever the embedder: the first
    # written document then made the index unloadable
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    index_dir = tmp_path / "index"
    build_index(seeds, index_dir, fake_embedder, allow_empty=True, **KW)
    write_documents(index_dir, fake_embedder, [RawDocument("added", ADDED, "added")])
    store = IndexStore.open(index_dir)
    assert fake_embedder.dim != 384 and store.dense.index.d == fake_embedder.dim
    assert list(store.documents) == ["added"]
    _consistent(store)


def test_a_change_the_index_cannot_hold_is_refused_before_anything_changes(
    tmp_path, fake_index, fake_embedder
):
    import dataclasses

    from index.errors import IndexMismatchError

    before = IndexStore.open(fake_index)
    write_documents(fake_index, fake_embedder, [RawDocument("added", ADDED, "added")])
    [(seq, change)] = before.pending()
    wide = np.zeros((len(change.passages), fake_embedder.dim + 1), np.float32)
    with pytest.raises(IndexMismatchError, match="width"):
        before.apply(seq, dataclasses.replace(change, passage_vectors=wide))
    assert before.seq == 0 and "added" not in before.documents and before.has_pending()
    _consistent(before)
    before.apply(seq, change)
    assert "added" in before.documents
    _consistent(before)


def test_a_store_opens_one_generation_even_when_a_build_swaps_it_meanwhile(
    tmp_path, monkeypatch, corpus_dir, fake_index, fake_embedder
):
    from index import store as store_module

    (corpus_dir / "added.txt").write_text(ADDED)
    real = store_module._generation_manifest

    def swapped_after_reading(generation):
        manifest = real(generation)
        monkeypatch.setattr(store_module, "_generation_manifest", real)
        build_index(corpus_dir, fake_index, fake_embedder, rebuild=True, **KW)
        return manifest

    monkeypatch.setattr(store_module, "_generation_manifest", swapped_after_reading)
    opened = IndexStore.open(fake_index)
    assert opened.manifest == real(opened.path), "the manifest is the generation's own"
    assert "added" not in opened.documents
    assert "added" in IndexStore.open(fake_index).documents
