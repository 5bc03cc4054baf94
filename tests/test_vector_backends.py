"""The same retrieval and answer tests on both vector backends (FAISS and Milvus).

Milvus runs for real: Milvus Lite (the Milvus C++ engine, embedded) for the default
per-generation file, and the same engine as a gRPC server on a TCP port for the
"shared server" mode that a Milvus cluster provides to several API replicas.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from index.build import build_index
from index.store import IndexStore
from index.vectors import VectorConfig
from rag.pipeline import Pipeline
from tests.conftest import ROOT, FakeEmbedder, free_port, start_server, stop_server
from tests.test_pipeline import QUESTIONS

pytest.importorskip("pymilvus", reason="the milvus extra: pip install -e '.[milvus]'")

BACKENDS = ["faiss", "milvus"]


def _build(index_dir: Path, corpus: Path, config: VectorConfig, *, rebuild: bool = False):
    return build_index(
        corpus,
        index_dir,
        FakeEmbedder(),  # type: ignore[arg-type]
        chunk_tokens=64,
        overlap_tokens=16,
        vectors=config,
        rebuild=rebuild,
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("corpus") / "seeds"
    shutil.copytree(Path(__file__).parent / "data" / "corpus", target)
    return target


@pytest.fixture(scope="module")
def pipelines(tmp_path_factory, corpus):
    """One index per backend over the same corpus, opened as pipelines."""
    out = {}
    for backend in BACKENDS:
        index_dir = tmp_path_factory.mktemp(backend) / "index"
        _build(index_dir, corpus, VectorConfig(backend=backend))  # type: ignore[arg-type]
        out[backend] = Pipeline.open(index_dir, FakeEmbedder())  # type: ignore[arg-type]
    yield out
    for p in out.values():
        p.store.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_document_write_goes_into_either_backend_in_place(tmp_path, corpus, backend):
    from index.build import write_documents
    from index.types import RawDocument

    index_dir = tmp_path / "index"
    _build(index_dir, corpus, VectorConfig(backend=backend))  # type: ignore[arg-type]
    generation = os.readlink(index_dir / "current")
    text = "Zorblat report. The Zorblat Institute opened 412 charging piles in Quentin City."
    write_documents(index_dir, FakeEmbedder(), [RawDocument("zorblat", text, "z")])  # type: ignore[arg-type]
    pipeline = Pipeline.open(index_dir, FakeEmbedder())  # type: ignore[arg-type]
    try:
        assert os.readlink(index_dir / "current") == generation
        assert pipeline.store.dense.count() == pipeline.store.passage_total
        assert pipeline.search("Zorblat Institute charging piles", top_k=1)[0].passage.doc_id == (
            "zorblat"
        )
        write_documents(index_dir, FakeEmbedder(), [], ["zorblat"])  # type: ignore[arg-type]
        assert pipeline.catch_up() == 1
        assert pipeline.store.dense.count() == pipeline.store.passage_total
        assert all(h.passage.doc_id != "zorblat" for h in pipeline.search("Zorblat", top_k=10))
    finally:
        pipeline.store.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_manifest_records_the_backend(pipelines, backend):
    manifest = pipelines[backend].store.manifest
    assert pipelines[backend].store.dense.count() == pipelines[backend].store.passage_total
    assert manifest["vector_backend"] == backend
    if backend == "milvus":
        assert manifest["milvus_index"] == "FLAT" and manifest["milvus_uri"] == ""
        assert (pipelines[backend].store.path / "dense.milvus.db").exists()
    else:
        assert manifest["faiss_factory"] == "Flat"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("question", QUESTIONS)
def test_retrieval_is_the_same_on_both_backends(pipelines, backend, question):
    hits = [
        (h.passage.passage_id, round(h.dense, 4)) for h in pipelines[backend].trace(question).hits
    ]
    reference = [
        (h.passage.passage_id, round(h.dense, 4)) for h in pipelines["faiss"].trace(question).hits
    ]
    assert hits and hits == reference


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("question", QUESTIONS)
def test_answers_are_faithful_and_identical_on_both_backends(pipelines, backend, question):
    pipe = pipelines[backend]
    ans = pipe.ask(question, top_k=3)
    ref = pipelines["faiss"].ask(question, top_k=3)
    assert ans.text == ref.text
    assert [(c.doc_id, c.start, c.end) for c in ans.citations] == [
        (c.doc_id, c.start, c.end) for c in ref.citations
    ]
    for c in ans.citations:
        assert pipe.store.documents[c.doc_id].text[c.start : c.end]
    if ans.text is not None:
        first = ans.citations[0]
        assert pipe.store.documents[first.doc_id].text[first.start : first.end] == ans.text


def test_milvus_search_matches_exact_inner_product(pipelines):
    store = pipelines["milvus"].store
    query = FakeEmbedder().embed(["coal mines Shanxi"])
    scores, ids = store.dense.search(query, 5)
    exact = pipelines["faiss"].store.dense.search(query, 5)
    assert ids.tolist() == exact[1].tolist()
    assert np.allclose(scores, exact[0], atol=1e-5)


def test_switching_backend_rebuilds_and_updates_follow_the_corpus(tmp_path, corpus_dir):
    index_dir = tmp_path / "index"
    assert _build(index_dir, corpus_dir, VectorConfig()).changed
    report = _build(index_dir, corpus_dir, VectorConfig(backend="milvus"))
    assert report.changed and report.embedded == 0, "same texts: vectors come from the cache"
    assert not _build(index_dir, corpus_dir, VectorConfig(backend="milvus")).changed
    (corpus_dir / "extra_doc.txt").write_text(
        "Zhangjiakou opened 42 hydrogen refuelling stations in 2024, the city said."
    )
    _build(index_dir, corpus_dir, VectorConfig(backend="milvus"))
    store = IndexStore.open(index_dir)
    try:
        assert store.manifest["vector_backend"] == "milvus"
        query = FakeEmbedder().embed(["Zhangjiakou hydrogen refuelling stations 2024"])
        _, ids = store.dense.search(query, 3)
        assert store.passages[int(ids[0][0])].doc_id == "extra_doc"
    finally:
        store.close()
    assert len(list(index_dir.glob("gen-*"))) == 2, "older generations are pruned"


def _start_milvus_server(data: Path) -> tuple[subprocess.Popen[bytes], str]:
    """The Milvus engine of milvus-lite as a gRPC server on a TCP port (like a cluster's)."""
    port = free_port()
    code = (
        "import sys, time\n"
        "from milvus_lite.server import Server\n"
        "s = Server(sys.argv[1], address=sys.argv[2])\n"
        "assert s.init() and s.start()\n"
        "time.sleep(3600)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(data / "server.db"), f"127.0.0.1:{port}"],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    uri = f"http://127.0.0.1:{port}"
    from pymilvus import MilvusClient
    from pymilvus.exceptions import MilvusException

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            MilvusClient(uri=uri, timeout=2).close()
            return proc, uri
        except MilvusException:  # not listening yet
            time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    raise RuntimeError("milvus server did not start")


@pytest.fixture
def milvus_server(tmp_path):
    proc, uri = _start_milvus_server(tmp_path)
    yield uri
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.integration
def test_a_milvus_server_holds_one_collection_per_generation(tmp_path, corpus_dir, milvus_server):
    from pymilvus import MilvusClient

    config = VectorConfig(backend="milvus", milvus_uri=milvus_server, milvus_collection="news")
    index_dir = tmp_path / "index"
    _build(index_dir, corpus_dir, config)
    for i in range(2):
        (corpus_dir / f"added_{i}.txt").write_text(f"Item {i}: 7{i} new charging piles opened.")
        _build(index_dir, corpus_dir, config, rebuild=True)
    manifest = json.loads((index_dir / "current" / "manifest.json").read_text())
    assert manifest["milvus_uri"] == milvus_server
    client = MilvusClient(uri=milvus_server)
    live = sorted(client.list_collections())
    client.close()
    kept = sorted(
        json.loads((g / "manifest.json").read_text())["milvus_collection"]
        for g in index_dir.glob("gen-*")
    )
    assert live == kept and len(kept) == 2, "pruned generations drop their collections"
    assert manifest["milvus_collection"] in live


@pytest.mark.slow
@pytest.mark.integration
def test_two_api_replicas_share_one_milvus_server(tmp_path, corpus_dir, milvus_server):
    """`rag index` writes the collection; two `rag serve` processes answer from it."""
    import httpx

    env = {
        **os.environ,
        "RAG_SEEDS_DIR": str(corpus_dir),
        "RAG_INDEX_DIR": str(tmp_path / "index"),
        "RAG_VECTOR_BACKEND": "milvus",
        "RAG_MILVUS_URI": milvus_server,
        "RAG_EMBEDDER": "sentence-transformers",
        "RAG_INDEX_ON_START": "false",
        "RAG_LOG_LEVEL": "WARNING",
    }
    subprocess.run(
        [sys.executable, "-m", "rag.cli", "index"], cwd=ROOT, env=env, check=True, timeout=600
    )
    with ThreadPoolExecutor(2) as pool:  # both load their models at once
        servers = list(pool.map(start_server, [env, env]))
    try:
        answers = []
        for _, base in servers:
            r = httpx.post(
                f"{base}/v1/ask",
                json={"question": "How many intelligent coal mines had Shanxi built by 2024?"},
                timeout=60,
            )
            assert r.status_code == 200, r.text
            body = r.json()
            answers.append((body["answer"], [c["doc_id"] for c in body["citations"]]))
        assert answers[0] == answers[1]
        assert answers[0][1], "answered from the shared collection, with citations"
    finally:
        for proc, _ in servers:
            stop_server(proc)
