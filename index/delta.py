"""Writes of one document: the change record and the generation's durable log of them.

A generation (see :mod:`index.store`) is written whole and never modified. A document
added, replaced or deleted afterwards is one :class:`DocumentChange`: the document's
cleaned text, passages, sentences, lexical terms and vectors, or a deletion. Changes are
appended to ``<generation>/delta.sqlite`` in one SQLite transaction each (WAL,
``synchronous=FULL``: durable when :meth:`DeltaLog.append` returns, all or nothing under
``kill -9``), and a loaded store applies them in order of their sequence number, on top
of the generation. The next full build folds them into a new generation, whose log
starts empty.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

import numpy as np

from index.types import Document, Passage

FILE = "delta.sqlite"
P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class DocumentChange:
    """One document's new state (``document`` None: deleted) and what indexing it made.

    Sentence ``k`` of the document is ``sentences[k]``; a clause is ``(k, start, end)``.
    Every vector array is ``(n, dim)`` float32, row-aligned with its spans.
    """

    doc_id: str
    document: Document | None
    passages: tuple[Passage, ...] = ()
    sentences: tuple[tuple[int, int], ...] = ()
    clauses: tuple[tuple[int, int, int], ...] = ()
    passage_vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    sentence_vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    clause_vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    passage_terms: tuple[list[str], ...] = ()
    sentence_terms: tuple[list[str], ...] = ()
    updated_at: float = 0.0

    @property
    def deleted(self) -> bool:
        """Whether the change removes the document."""
        return self.document is None


def _body(change: DocumentChange) -> str:
    d = change.document
    return json.dumps(
        {
            "document": None
            if d is None
            else [d.text, d.title, d.date, d.lang, d.damaged, d.checksum],
            "passages": [
                [p.passage_id, p.start, p.end, p.lang, p.sentences, p.n_tokens]
                for p in change.passages
            ],
            "sentences": change.sentences,
            "clauses": change.clauses,
            "passage_terms": change.passage_terms,
            "sentence_terms": change.sentence_terms,
            "updated_at": change.updated_at,
        },
        ensure_ascii=False,
    )


def _vectors(blob: bytes | None, rows: int, dim: int) -> np.ndarray:
    if not blob or not rows:
        return np.zeros((0, dim), dtype=np.float32)
    return np.frombuffer(blob, dtype=np.float32).reshape(rows, -1).copy()


def _change(doc_id: str, body: str, dim: int, blobs: tuple[bytes | None, ...]) -> DocumentChange:
    data = json.loads(body)
    if data["document"] is None:
        return DocumentChange(doc_id, None, updated_at=data["updated_at"])
    text, title, date, lang, damaged, checksum = data["document"]
    doc = Document(doc_id, text, title, date, lang, tuple(tuple(x) for x in damaged), checksum)
    passages = tuple(
        Passage(pid, doc_id, s, e, text[s:e], plang, tuple(tuple(x) for x in sents), n)  # type: ignore[misc]
        for pid, s, e, plang, sents, n in data["passages"]
    )
    sentences = tuple((s, e) for s, e in data["sentences"])
    clauses = tuple((k, s, e) for k, s, e in data["clauses"])
    return DocumentChange(
        doc_id,
        doc,
        passages,
        sentences,
        clauses,
        _vectors(blobs[0], len(passages), dim),
        _vectors(blobs[1], len(sentences), dim),
        _vectors(blobs[2], len(clauses), dim),
        tuple(data["passage_terms"]),
        tuple(data["sentence_terms"]),
        data["updated_at"],
    )


def _locked(method: Callable[Concatenate[DeltaLog, P], R]) -> Callable[Concatenate[DeltaLog, P], R]:
    """Run a method under the log's lock (its one connection is shared by request threads)."""

    @functools.wraps(method)
    def run(self: DeltaLog, *args: P.args, **kwargs: P.kwargs) -> R:
        with self._lock:
            return method(self, *args, **kwargs)

    return run


class DeltaLog:
    """The ordered, durable list of document changes made to one generation."""

    def __init__(self, generation: Path, *, dim: int, create: bool = True):
        """Open ``<generation>/delta.sqlite`` (created on first use when ``create``)."""
        self.path = generation / FILE
        self.dim = dim
        self._db: sqlite3.Connection | None = None
        self._lock = threading.RLock()
        if create or self.path.exists():
            self._open()

    def _open(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS ops (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
                "doc_id TEXT NOT NULL, checksum TEXT, at REAL, body TEXT NOT NULL, "
                "passage_vectors BLOB, sentence_vectors BLOB, clause_vectors BLOB)"
            )
            self._db = db
        return self._db

    @_locked
    def append(self, changes: list[DocumentChange]) -> int:
        """Store changes in one transaction; returns the last sequence number."""
        db = self._open()
        rows = [
            (
                c.doc_id,
                None if c.document is None else c.document.checksum,
                c.updated_at or time.time(),
                _body(c),
                np.ascontiguousarray(c.passage_vectors, dtype=np.float32).tobytes(),
                np.ascontiguousarray(c.sentence_vectors, dtype=np.float32).tobytes(),
                np.ascontiguousarray(c.clause_vectors, dtype=np.float32).tobytes(),
            )
            for c in changes
        ]
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT INTO ops (doc_id, checksum, at, body, passage_vectors, "
                "sentence_vectors, clause_vectors) VALUES (?,?,?,?,?,?,?)",
                rows,
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return self.last_seq()

    @_locked
    def last_seq(self) -> int:
        """The sequence number of the newest change (0 when there is none)."""
        if self._db is None:
            if not self.path.exists():
                return 0
            self._open()
        assert self._db is not None
        return int(self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM ops").fetchone()[0])

    @_locked
    def since(self, seq: int) -> list[tuple[int, DocumentChange]]:
        """Every change after ``seq``, oldest first."""
        if self._db is None and not self.path.exists():
            return []
        rows = (
            self._open()
            .execute(
                "SELECT seq, doc_id, body, passage_vectors, sentence_vectors, clause_vectors "
                "FROM ops WHERE seq > ? ORDER BY seq",
                (seq,),
            )
            .fetchall()
        )
        return [(s, _change(d, body, self.dim, (pv, sv, cv))) for s, d, body, pv, sv, cv in rows]

    @_locked
    def versions(self) -> dict[str, tuple[str | None, float]]:
        """``doc_id -> (checksum or None when deleted, when)`` of each document's last change."""
        if self._db is None and not self.path.exists():
            return {}
        out: dict[str, tuple[str | None, float]] = {}
        for doc_id, checksum, at in self._open().execute(
            "SELECT doc_id, checksum, at FROM ops ORDER BY seq"
        ):
            out[doc_id] = (checksum, float(at))
        return out

    @_locked
    def sizes(self) -> dict[str, tuple[int, int] | None]:
        """``doc_id -> (passages, sentences)`` of each document's last change (None: deleted)."""
        if self._db is None and not self.path.exists():
            return {}
        out: dict[str, tuple[int, int] | None] = {}
        for doc_id, checksum, body in self._open().execute(
            "SELECT doc_id, checksum, body FROM ops ORDER BY seq"
        ):
            data = json.loads(body) if checksum is not None else None
            out[doc_id] = None if data is None else (len(data["passages"]), len(data["sentences"]))
        return out

    @_locked
    def count(self) -> int:
        """How many changes the log holds."""
        if self._db is None and not self.path.exists():
            return 0
        return int(self._open().execute("SELECT COUNT(*) FROM ops").fetchone()[0])

    @_locked
    def close(self) -> None:
        """Close the database."""
        if self._db is not None:
            self._db.close()
            self._db = None


def logged_changes(generation: Path) -> int:
    """How many changes a generation's log holds (0 without a log)."""
    log = DeltaLog(generation, dim=0, create=False)
    try:
        return log.count()
    finally:
        log.close()
