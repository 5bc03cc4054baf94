"""Stage 5 of the write path, and the read side of the same format.

An index directory holds generations; ``current`` is a symlink to the live one and
is replaced atomically, so a crash at any moment leaves the previous index loadable::

    <index_dir>/current -> gen-<stamp>/
    <index_dir>/gen-<stamp>/{manifest.json, store.sqlite, sentences.npy, clauses.npy,
                             lexical_passages/, lexical_sentences/,
                             dense.faiss | dense.milvus.db (or a collection on a Milvus server)}
    <index_dir>/cache.sqlite     embedding cache, keyed by model and text
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from index.errors import IndexMismatchError, IndexMissingError
from index.faiss_store import MMAP_ABOVE_VECTORS
from index.lexical import LexicalIndex
from index.types import Document, Passage, content_hash
from index.vectors import VectorConfig, VectorIndex, drop_vectors, open_vectors, write_vectors

log = logging.getLogger(__name__)
FORMAT_VERSION = 2


class EmbeddingCache:
    """Vectors already computed, keyed by embedder name and text hash (crash-safe SQLite)."""

    def __init__(self, path: Path):
        """Open (or create) the cache file."""
        self.path = path
        self._db = sqlite3.connect(path)
        self._db.execute("CREATE TABLE IF NOT EXISTS vec (key TEXT PRIMARY KEY, v BLOB)")

    def get_many(self, keys: list[str]) -> dict[str, np.ndarray]:
        """Cached vectors for the keys that have one."""
        out: dict[str, np.ndarray] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for key, blob in self._db.execute(
                f"SELECT key, v FROM vec WHERE key IN ({marks})", chunk
            ):
                out[key] = np.frombuffer(blob, dtype=np.float32)
        return out

    def put_many(self, items: dict[str, np.ndarray]) -> None:
        """Store vectors (one transaction)."""
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO vec VALUES (?, ?)",
                [(k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in items.items()],
            )

    def close(self) -> None:
        """Close the database."""
        self._db.close()


class PreparedCache:
    """Work already done on a document text: its cleaned form, passages and lexical terms.

    Lives in the same SQLite file as :class:`EmbeddingCache`. A write of one document
    cleans, splits and tokenises that document only; the others come from here. Keys hold
    everything the value depends on (doc id, raw text hash, build parameters), so a stale
    entry is never read, only left unused.
    """

    def __init__(self, path: Path):
        """Open (or create) the cache tables."""
        self._db = sqlite3.connect(path)
        self._db.executescript(
            "CREATE TABLE IF NOT EXISTS prepared (key TEXT PRIMARY KEY, v TEXT);"
            "CREATE TABLE IF NOT EXISTS terms (key TEXT PRIMARY KEY, v TEXT);"
        )

    def get_prepared(self, keys: list[str]) -> dict[str, Any]:
        """Decoded prepared documents for the keys that have one."""
        return {k: json.loads(v) for k, v in self._select("prepared", keys).items()}

    def put_prepared(self, items: dict[str, Any]) -> None:
        """Store prepared documents (JSON-serialisable values, one transaction)."""
        self._insert("prepared", {k: json.dumps(v, ensure_ascii=False) for k, v in items.items()})

    def terms_of(self, texts: list[str], tokenize: Any) -> list[list[str]]:
        """``tokenize(text)`` of every text, computing only those not cached."""
        keys = [content_hash(t) for t in texts]
        found = {k: v.split("\x1f") if v else [] for k, v in self._select("terms", keys).items()}
        new = {k: tokenize(t) for k, t in zip(keys, texts, strict=True) if k not in found}
        self._insert("terms", {k: "\x1f".join(v) for k, v in new.items()})
        found.update(new)
        return [found[k] for k in keys]

    def _select(self, table: str, keys: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        unique = sorted(set(keys))
        for i in range(0, len(unique), 500):
            chunk = unique[i : i + 500]
            marks = ",".join("?" * len(chunk))
            out.update(
                self._db.execute(f"SELECT key, v FROM {table} WHERE key IN ({marks})", chunk)
            )
        return out

    def _insert(self, table: str, items: dict[str, str]) -> None:
        if items:
            with self._db:
                self._db.executemany(f"INSERT OR REPLACE INTO {table} VALUES (?, ?)", items.items())

    def close(self) -> None:
        """Close the database."""
        self._db.close()


@dataclass(frozen=True)
class SentenceRow:
    """One sentence of a document, with its row in the sentence-vector matrix."""

    row: int
    doc_id: str
    start: int
    end: int


def write_generation(
    index_dir: Path,
    *,
    manifest: dict[str, Any],
    documents: list[Document],
    passages: list[Passage],
    passage_vectors: np.ndarray,
    sentences: list[SentenceRow],
    sentence_texts: list[str],
    sentence_vectors: np.ndarray,
    clauses: list[tuple[int, int, int]] | None = None,
    clause_vectors: np.ndarray | None = None,
    vectors: VectorConfig | None = None,
    passage_terms: list[list[str]] | None = None,
    sentence_terms: list[list[str]] | None = None,
    updated_at: dict[str, float] | None = None,
) -> Path:
    """Write a complete generation and atomically make it ``current``.

    ``vectors`` says where passage vectors go (default: a FAISS file in the generation);
    ``passage_terms``/``sentence_terms`` are the texts' lexical terms when already known;
    ``updated_at`` is when each document last changed (default: now).
    """
    vectors = vectors or VectorConfig()
    index_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S") + f"-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    gen = index_dir / f"gen-{stamp}"
    tmp = index_dir / f".tmp-{stamp}"
    tmp.mkdir()
    db = sqlite3.connect(tmp / "store.sqlite")
    db.executescript(
        """
        CREATE TABLE documents (doc_id TEXT PRIMARY KEY, title TEXT, date TEXT, lang TEXT,
            text TEXT, damaged TEXT, checksum TEXT, updated_at REAL);
        CREATE TABLE passages (row INTEGER PRIMARY KEY, passage_id TEXT UNIQUE, doc_id TEXT,
            start INTEGER, end INTEGER, lang TEXT, sentences TEXT, n_tokens INTEGER);
        CREATE TABLE sentences (row INTEGER PRIMARY KEY, doc_id TEXT, start INTEGER, end INTEGER);
        CREATE TABLE clauses (row INTEGER PRIMARY KEY, sentence INTEGER, start INTEGER, end INTEGER);
        """
    )
    now = time.time()
    db.executemany(
        "INSERT INTO documents VALUES (?,?,?,?,?,?,?,?)",
        [
            (
                d.doc_id,
                d.title,
                d.date,
                d.lang,
                d.text,
                json.dumps(d.damaged),
                d.checksum,
                (updated_at or {}).get(d.doc_id, now),
            )
            for d in documents
        ],
    )
    db.executemany(
        "INSERT INTO passages VALUES (?,?,?,?,?,?,?,?)",
        [
            (i, p.passage_id, p.doc_id, p.start, p.end, p.lang, json.dumps(p.sentences), p.n_tokens)
            for i, p in enumerate(passages)
        ],
    )
    db.executemany(
        "INSERT INTO sentences VALUES (?,?,?,?)",
        [(s.row, s.doc_id, s.start, s.end) for s in sentences],
    )
    db.executemany(
        "INSERT INTO clauses VALUES (?,?,?,?)", [(i, *c) for i, c in enumerate(clauses or [])]
    )
    db.commit()
    db.close()
    placed = write_vectors(vectors, tmp, gen.name, passage_vectors, np.arange(len(passages)))
    manifest = {**manifest, **placed}
    np.save(tmp / "sentences.npy", sentence_vectors.astype(np.float32))
    dim = sentence_vectors.shape[1] if sentence_vectors.ndim == 2 else 0
    cvecs = clause_vectors if clause_vectors is not None else np.zeros((0, dim), dtype=np.float32)
    np.save(tmp / "clauses.npy", cvecs.astype(np.float32))
    LexicalIndex.build([p.text for p in passages], terms=passage_terms).save(
        tmp / "lexical_passages"
    )
    LexicalIndex.build(sentence_texts, terms=sentence_terms).save(tmp / "lexical_sentences")
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
    _fsync_tree(tmp)
    os.rename(tmp, gen)
    link_tmp = index_dir / f".current-{stamp}"
    os.symlink(gen.name, link_tmp)
    os.replace(link_tmp, index_dir / "current")
    fsync_dir(index_dir)
    _prune(index_dir, keep={gen.name}, vectors=vectors)
    return gen


def _fsync_tree(path: Path) -> None:
    for p in path.rglob("*"):
        if p.is_file():
            with open(p, "rb") as fh:
                os.fsync(fh.fileno())
    fsync_dir(path)


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (renames, new files) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _prune(
    index_dir: Path, keep: set[str], keep_previous: int = 1, vectors: VectorConfig | None = None
) -> None:
    """Remove half-written temporaries and all but the newest previous generations."""
    gens = sorted(p for p in index_dir.glob("gen-*") if p.name not in keep)
    for old in gens[: max(0, len(gens) - keep_previous)]:
        drop_vectors(old, vectors)
        shutil.rmtree(old, ignore_errors=True)
    for tmp in index_dir.glob(".tmp-*"):
        shutil.rmtree(tmp, ignore_errors=True)
    for link in index_dir.glob(".current-*"):  # a swap interrupted by a crash
        link.unlink(missing_ok=True)


def document_versions(index_dir: Path) -> dict[str, tuple[str, float]]:
    """``doc_id -> (checksum, updated_at)`` of the current generation (empty without one)."""
    path = index_dir / "current" / "store.sqlite"
    if not path.exists():
        return {}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT doc_id, checksum, updated_at FROM documents").fetchall()
    finally:
        db.close()
    return {doc_id: (checksum, float(when)) for doc_id, checksum, when in rows}


def read_manifest(index_dir: Path) -> dict[str, Any] | None:
    """The manifest of the current generation, or None when there is no index."""
    path = index_dir / "current" / "manifest.json"
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


@dataclass
class IndexStore:
    """A loaded, read-only generation: documents, passages, sentences, vectors, BM25."""

    path: Path
    manifest: dict[str, Any]
    documents: dict[str, Document]
    passages: list[Passage]
    sentences: list[SentenceRow]
    sentence_vectors: np.ndarray
    dense: VectorIndex
    lexical_passages: LexicalIndex
    lexical_sentences: LexicalIndex
    updated_at: dict[str, float] = field(default_factory=dict)
    sentences_by_doc: dict[str, list[int]] = field(default_factory=dict)
    clauses_by_sentence: dict[int, list[tuple[int, int, int]]] = field(default_factory=dict)
    clause_vectors: np.ndarray | None = None
    passage_counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Passages per document, counted once at load time."""
        for p in self.passages:
            self.passage_counts[p.doc_id] = self.passage_counts.get(p.doc_id, 0) + 1

    def close(self) -> None:
        """Release the vector backend (a Milvus connection or embedded Lite process)."""
        self.dense.close()

    @classmethod
    def open(
        cls,
        index_dir: Path,
        *,
        expect: dict[str, Any] | None = None,
        vectors: VectorConfig | None = None,
    ) -> IndexStore:
        """Load the current generation.

        Args:
            index_dir: the index directory.
            expect: manifest fields that must match (embedder name, dimension...).
            vectors: connection settings of a Milvus backend (URI, token); the manifest
                says which backend holds the vectors.

        Raises:
            IndexMissingError: there is no index yet.
            IndexMismatchError: the index was built with other settings.
        """
        manifest = read_manifest(index_dir)
        if manifest is None:
            raise IndexMissingError(f"no index in {index_dir}: run `rag index` to build it")
        for key, want in (expect or {}).items():
            have = manifest.get(key)
            if have != want:
                raise IndexMismatchError(
                    f"index in {index_dir} was built with {key}={have!r} but the settings say "
                    f"{want!r}: rebuild it with `rag index --rebuild`"
                )
        if manifest.get("format_version") != FORMAT_VERSION:
            raise IndexMismatchError(
                f"index format {manifest.get('format_version')} is not {FORMAT_VERSION}: "
                "rebuild it with `rag index --rebuild`"
            )
        gen = (index_dir / "current").resolve()
        db = sqlite3.connect(f"file:{gen / 'store.sqlite'}?mode=ro", uri=True)
        documents: dict[str, Document] = {}
        updated: dict[str, float] = {}
        for doc_id, title, date, lang, text, damaged, checksum, upd in db.execute(
            "SELECT * FROM documents ORDER BY doc_id"
        ):
            documents[doc_id] = Document(
                doc_id,
                text,
                title,
                date,
                lang,
                tuple(tuple(d) for d in json.loads(damaged)),
                checksum,
            )
            updated[doc_id] = upd
        passages = [
            Passage(
                pid,
                doc_id,
                s,
                e,
                documents[doc_id].text[s:e],
                lang,
                tuple(tuple(x) for x in json.loads(sents)),
                n_tok,
            )  # type: ignore[misc]
            for _, pid, doc_id, s, e, lang, sents, n_tok in db.execute(
                "SELECT * FROM passages ORDER BY row"
            )
        ]
        sentences = [
            SentenceRow(*row) for row in db.execute("SELECT * FROM sentences ORDER BY row")
        ]
        by_sentence: dict[int, list[tuple[int, int, int]]] = {}
        for row, sent, start, end in db.execute("SELECT * FROM clauses ORDER BY row"):
            by_sentence.setdefault(sent, []).append((row, start, end))
        db.close()
        n = int(manifest.get("passages", len(passages)))
        dense = open_vectors(gen, manifest, vectors)
        by_doc: dict[str, list[int]] = {}
        for s in sentences:
            by_doc.setdefault(s.doc_id, []).append(s.row)
        return cls(
            path=gen,
            manifest=manifest,
            documents=documents,
            passages=passages,
            sentences=sentences,
            sentence_vectors=np.load(
                gen / "sentences.npy", mmap_mode="r" if n > MMAP_ABOVE_VECTORS else None
            ),
            dense=dense,
            lexical_passages=LexicalIndex.load(gen / "lexical_passages"),
            lexical_sentences=LexicalIndex.load(gen / "lexical_sentences"),
            updated_at=updated,
            sentences_by_doc=by_doc,
            clauses_by_sentence=by_sentence,
            clause_vectors=np.load(
                gen / "clauses.npy", mmap_mode="r" if n > MMAP_ABOVE_VECTORS else None
            ),
        )
