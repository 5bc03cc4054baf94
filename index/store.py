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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from index.delta import DeltaLog, DocumentChange
from index.errors import IndexMismatchError, IndexMissingError
from index.faiss_store import MMAP_ABOVE_VECTORS
from index.lexical import LexicalIndex
from index.types import Document, Passage, content_hash
from index.vectors import VectorConfig, VectorIndex, drop_vectors, open_vectors, write_vectors

log = logging.getLogger(__name__)
FORMAT_VERSION = 3


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


def _stack(matrix: np.ndarray | None, rows: np.ndarray) -> np.ndarray:
    """``matrix`` with ``rows`` appended, in amortised O(len(rows)).

    The result is a prefix view of a buffer with spare capacity (doubling when full), so
    a stream of one-document writes copies the matrix O(log n) times, not once per write.
    A memory-mapped matrix is read into memory on the first append.
    """
    rows = np.asarray(rows, dtype=np.float32)
    if matrix is None or not len(matrix):
        matrix = np.zeros((0, rows.shape[1] if rows.ndim == 2 else 0), dtype=np.float32)
    if not len(rows):
        return matrix
    n, k = len(matrix), len(rows)
    base = matrix.base
    if (
        isinstance(base, np.ndarray)
        and not isinstance(base, np.memmap)
        and base.ndim == 2
        and base.shape[0] >= n + k
        and base.shape[1] == matrix.shape[1]
        and base.ctypes.data == matrix.ctypes.data
    ):
        base[n : n + k] = rows
        return base[: n + k]
    buffer = np.empty((max(2 * (n + k), 64), rows.shape[1]), dtype=np.float32)
    buffer[:n] = matrix
    buffer[n : n + k] = rows
    return buffer[: n + k]


def document_versions(index_dir: Path) -> dict[str, tuple[str, float]]:
    """``doc_id -> (checksum, updated_at)`` of the current index, its logged changes applied.

    Empty without an index.
    """
    path = index_dir / "current" / "store.sqlite"
    if not path.exists():
        return {}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT doc_id, checksum, updated_at FROM documents").fetchall()
    finally:
        db.close()
    versions = {doc_id: (checksum, float(when)) for doc_id, checksum, when in rows}
    delta = DeltaLog(path.parent, dim=0, create=False)
    try:
        for doc_id, (checksum, when) in delta.versions().items():
            if checksum is None:
                versions.pop(doc_id, None)
            else:
                versions[doc_id] = (checksum, when)
    finally:
        delta.close()
    return versions


def index_counts(index_dir: Path) -> tuple[int, int, int]:
    """``(documents, passages, sentences)`` of the current index, logged changes applied."""
    gen = index_dir / "current"
    if not (gen / "store.sqlite").exists():
        return 0, 0, 0
    db = sqlite3.connect(f"file:{gen / 'store.sqlite'}?mode=ro", uri=True)
    try:
        sizes: dict[str, tuple[int, int] | None] = {
            d: (0, 0) for (d,) in db.execute("SELECT doc_id FROM documents")
        }
        for table, col in (("passages", 0), ("sentences", 1)):
            for doc_id, n in db.execute(f"SELECT doc_id, COUNT(*) FROM {table} GROUP BY doc_id"):
                got = sizes.get(doc_id) or (0, 0)
                sizes[doc_id] = (n, got[1]) if col == 0 else (got[0], n)
    finally:
        db.close()
    delta = DeltaLog(gen.resolve(), dim=0, create=False)
    try:
        sizes.update(delta.sizes())
    finally:
        delta.close()
    held = [v for v in sizes.values() if v is not None]
    return len(held), sum(v[0] for v in held), sum(v[1] for v in held)


def read_manifest(index_dir: Path) -> dict[str, Any] | None:
    """The manifest of the current generation, or None when there is no index."""
    return _generation_manifest(index_dir / "current")


def _generation_manifest(generation: Path) -> dict[str, Any] | None:
    path = generation / "manifest.json"
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
    delta: DeltaLog | None = None
    seq: int = 0
    live: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    passages_by_doc: dict[str, list[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Passages per document, counted once at load time."""
        if len(self.live) != len(self.passages):
            self.live = np.ones(len(self.passages), dtype=bool)
        for row, p in enumerate(self.passages):
            if self.live[row]:
                self.passage_counts[p.doc_id] = self.passage_counts.get(p.doc_id, 0) + 1
                self.passages_by_doc.setdefault(p.doc_id, []).append(row)

    @property
    def passage_total(self) -> int:
        """Passages of the documents held now (rows of removed documents not counted)."""
        return int(self.live.sum())

    def live_passages(self) -> Iterator[tuple[int, Passage]]:
        """``(row, passage)`` of every passage of a document held now."""
        for row in np.flatnonzero(self.live):
            yield int(row), self.passages[row]

    def has_pending(self) -> bool:
        """Whether changes were logged since the last one applied (one cheap query)."""
        return self.delta is not None and self.delta.last_seq() > self.seq

    def pending(self) -> list[tuple[int, DocumentChange]]:
        """Changes logged (by this process or another) since the last one applied."""
        if self.delta is None or not self.has_pending():
            return []
        return self.delta.since(self.seq)

    def apply(self, seq: int, change: DocumentChange) -> None:
        """Apply one logged change in memory: drop the document's rows, append its new ones.

        Rows are never reused: a removed document's passages and sentences stay in the
        lists, out of every index (``live`` false, no vectors, no lexical score), so a
        row number means the same passage for the life of the store. The caller holds
        the pipeline's write lock: no question runs meanwhile.

        Raises:
            IndexMismatchError: the change does not fit this index (vectors of another
                width, or not one per span); the store is left as it was.
        """
        if change.document is not None:
            self._check_fits(seq, change)
        doc_id = change.doc_id
        old = self.passages_by_doc.pop(doc_id, [])
        if old:
            self.live[old] = False
            self.dense.remove(np.asarray(old, dtype=np.int64))
            self.lexical_passages.remove(old)
        old_sentences = self.sentences_by_doc.pop(doc_id, [])
        self.lexical_sentences.remove(old_sentences)
        for r in old_sentences:
            self.clauses_by_sentence.pop(r, None)
        self.documents.pop(doc_id, None)
        self.passage_counts.pop(doc_id, None)
        self.updated_at.pop(doc_id, None)
        self.seq = seq
        doc = change.document
        if doc is None:
            return
        first = len(self.passages)
        rows = list(range(first, first + len(change.passages)))
        self.documents[doc_id] = doc
        self.updated_at[doc_id] = change.updated_at
        self.passages.extend(change.passages)
        self.live = np.concatenate([self.live, np.ones(len(rows), dtype=bool)])
        self.passages_by_doc[doc_id] = rows
        self.passage_counts[doc_id] = len(rows)
        self.dense.add(change.passage_vectors, np.asarray(rows, dtype=np.int64))
        self.lexical_passages.add(list(change.passage_terms))
        s_first = len(self.sentences)
        s_rows = list(range(s_first, s_first + len(change.sentences)))
        self.sentences.extend(
            SentenceRow(r, doc_id, s, e) for r, (s, e) in zip(s_rows, change.sentences, strict=True)
        )
        self.sentences_by_doc[doc_id] = s_rows
        self.sentence_vectors = _stack(self.sentence_vectors, change.sentence_vectors)
        self.lexical_sentences.add(list(change.sentence_terms))
        if change.clauses:
            c_first = 0 if self.clause_vectors is None else len(self.clause_vectors)
            for i, (k, cs, ce) in enumerate(change.clauses):
                row = s_rows[k]
                self.clauses_by_sentence.setdefault(row, []).append((c_first + i, cs, ce))
            self.clause_vectors = _stack(self.clause_vectors, change.clause_vectors)

    def _check_fits(self, seq: int, change: DocumentChange) -> None:
        """Refuse, before anything changes, a logged change that this index cannot hold."""
        dim = int(self.manifest.get("dimension", 0))
        for name, vectors, spans in (
            ("passage", change.passage_vectors, len(change.passages)),
            ("sentence", change.sentence_vectors, len(change.sentences)),
            ("clause", change.clause_vectors, len(change.clauses)),
        ):
            if len(vectors) != spans or (spans and vectors.shape[1] != dim):
                raise IndexMismatchError(
                    f"logged change {seq} ({change.doc_id!r}) holds {len(vectors)} {name} "
                    f"vectors of width {vectors.shape[1] if vectors.ndim == 2 else 0} for "
                    f"{spans} {name}s, and this index holds width {dim}: rebuild it with "
                    "`rag index --rebuild`"
                )

    def close(self) -> None:
        """Release the vector backend (a Milvus connection or embedded Lite process)."""
        self.dense.close()
        if self.delta is not None:
            self.delta.close()

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
        # the generation is resolved once: a build that swaps ``current`` meanwhile
        # cannot pair one generation's manifest with the next one's data
        gen = (index_dir / "current").resolve()
        manifest = _generation_manifest(gen)
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
        delta = DeltaLog(gen, dim=int(manifest.get("dimension", 0)), create=False)
        dense = open_vectors(gen, manifest, vectors, writable=delta.count() > 0)
        by_doc: dict[str, list[int]] = {}
        for s in sentences:
            by_doc.setdefault(s.doc_id, []).append(s.row)
        store = cls(
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
            delta=delta,
        )
        for seq, change in store.pending():
            store.apply(seq, change)
        return store
