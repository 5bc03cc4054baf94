"""The application state behind the routes: the live pipeline and document writes.

A document write is indexed incrementally: that document is cleaned, split and embedded,
logged durably in the current index generation, and applied to the live pipeline between
questions. A new generation (``rag index --rebuild``, or a build folding a long log) is
loaded beside the live one and swapped in, so questions in flight are never broken.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path

from index.build import writer_lock
from index.errors import DocumentError, DocumentNotFoundError
from index.load import TOMBSTONES, find_document
from index.store import fsync_dir, read_manifest
from index.types import RawDocument
from rag.config import Settings
from rag.pipeline import Pipeline

log = logging.getLogger(__name__)
DOC_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def check_doc_id(doc_id: str) -> str:
    """A valid doc id, or a DocumentError naming the rule."""
    if not DOC_ID_RE.match(doc_id) or ".." in doc_id or doc_id.startswith("."):
        raise DocumentError(
            "invalid doc_id: use 1-128 characters from A-Z a-z 0-9 . _ -, not starting with '.' and without '..'"
        )
    return doc_id


class Service:
    """Owns the current pipeline; serialises writers (the index writer lock, across processes)."""

    def __init__(self, settings: Settings):
        """Remember the settings; nothing is loaded until :meth:`start`."""
        self.settings = settings
        self.pipeline: Pipeline | None = None
        self._reload_lock = threading.Lock()
        self._retired: Pipeline | None = None
        self._embedder = None  # one embedder and one reader per process, kept across reloads
        self._reader = None

    def start(self) -> None:
        """Bring the index up to date with the corpus (building it if missing), then load it.

        The incremental build is a no-op for an unchanged corpus; after a crash it picks up
        a document whose file was written but whose index swap never happened. Half-written
        document files from a crash (``.<name>.tmp-*``) are removed first.
        """
        from rag.factory import make_embedder, make_reader, run_index

        self._embedder = make_embedder(self.settings)
        self._reader = make_reader(self.settings)
        seeds, data = self.settings.seeds_dir, self.settings.documents_dir
        for folder in (data, data / TOMBSTONES):
            for stale in folder.glob(".*.tmp-*") if folder.is_dir() else ():
                log.warning("removing a half-written file from a crash: %s", stale)
                stale.unlink(missing_ok=True)
        missing = read_manifest(self.settings.index_dir) is None
        if missing or self.settings.index_on_start:
            if missing:
                log.info("no index in %s: building it from %s", self.settings.index_dir, seeds)
            report = run_index(self.settings, show_progress=False, embedder=self._embedder)
            if report.changed:
                log.info(
                    "indexed %d documents, %d passages in %.1fs",
                    report.documents,
                    report.passages,
                    report.seconds,
                )
        pipeline = self._load()
        pipeline.warm_up()
        self.pipeline = pipeline

    @property
    def ready(self) -> bool:
        """Whether questions can be answered."""
        return self.pipeline is not None

    def current(self) -> Pipeline:
        """The live pipeline (raises 503 via IndexMissingError when not loaded)."""
        from index.errors import IndexMissingError

        if self.pipeline is None:
            raise IndexMissingError("the index is still loading; retry shortly")
        self._follow_generation()
        return self.pipeline

    def _follow_generation(self) -> None:
        """Apply documents written since, or reload when `rag index` swapped in a new index."""
        try:
            live = os.readlink(self.settings.index_dir / "current")
        except OSError:
            return
        pipeline = self.pipeline
        if pipeline is not None and pipeline.store.path.name == live:
            pipeline.catch_up()  # documents written since (here or by another process)
            return
        if pipeline is None or not self._reload_lock.acquire(blocking=False):
            return
        try:
            if self.pipeline is not None and self.pipeline.store.path.name != live:
                log.info("index generation changed to %s: reloading", live)
                self._swap(self._load())
        finally:
            self._reload_lock.release()

    def _written(self, doc_id: str) -> Path | None:
        """The document's file in the data folder, if it was written through the API."""
        return find_document(self.settings.documents_dir, doc_id)

    def _seed(self, doc_id: str) -> Path | None:
        """The seed file the index reads as ``doc_id``, unless a tombstone hides it.

        Found as the loader finds it: any case of suffix, any subfolder.
        """
        if (self.settings.documents_dir / TOMBSTONES / doc_id).exists():
            return None
        return find_document(self.settings.seeds_dir, doc_id)

    def _load(self) -> Pipeline:
        """A pipeline over the current generation, with this process's models."""
        from rag.factory import load_pipeline

        pipeline = load_pipeline(self.settings, embedder=self._embedder, reader=self._reader)
        pipeline.max_question_chars = self.settings.max_question_chars
        return pipeline

    def _write(self, documents: list[RawDocument], deleted: list[str] | None = None) -> None:
        """Index these documents (or drop these ids) incrementally, then make it live.

        The write is durable in the index's change log before this returns; the live
        pipeline then applies it between questions (see :meth:`Pipeline.catch_up`).
        """
        from index.build import write_documents

        self.current()  # on the newest generation first, so the write lands in it
        assert self._embedder is not None, "start() loads the embedder"
        report = write_documents(
            self.settings.index_dir, self._embedder, documents, list(deleted or [])
        )
        log.info(
            "wrote %d document change(s), %d passages, %d texts embedded in %.2fs",
            report.changes,
            report.passages,
            report.embedded,
            report.seconds,
        )
        self._follow_generation()

    def _swap(self, fresh: Pipeline) -> None:
        """Make ``fresh`` live; close the one retired a swap earlier.

        The pipeline replaced now may still be answering requests that started before the
        swap, so its vector backend (a Milvus connection) is closed only at the next swap.
        """
        retired, self._retired, self.pipeline = self._retired, self.pipeline, fresh
        if retired is not None:
            retired.store.close()

    def put_document(
        self, doc_id: str, text: str, title: str | None, date: str | None
    ) -> tuple[str, int]:
        """Create or replace a document, durably, and index it; returns (status, passages)."""
        check_doc_id(doc_id)
        if len(text.encode("utf-8")) > self.settings.max_document_bytes:
            raise DocumentError(f"document is larger than {self.settings.max_document_bytes} bytes")
        body = text
        if title and not text.lstrip().startswith(title.strip()):
            body = f"{title.strip()}\n\n{body}"
        if date:
            body = f"date {date}\n{body}"
        # the file write and the index write under one lock: no other writer (another worker,
        # a `rag index`) sees the file without the index change or reads the corpus between them
        with writer_lock(self.settings.index_dir):
            written = self._written(doc_id)
            old = written or self._seed(doc_id)
            if (
                old is not None
                and old.read_text(encoding="utf-8", errors="replace") == body
                and self._indexed_as(doc_id, body)  # a write that failed half-way is redone
            ):
                status = "unchanged"
            else:
                data = self.settings.documents_dir
                data.mkdir(parents=True, exist_ok=True)
                target = written or data / f"{doc_id}.txt"
                _write_durably(target, body)
                # a tombstone hides only the seed copy: the written document counts either way
                (data / TOMBSTONES / doc_id).unlink(missing_ok=True)
                self._write([RawDocument(doc_id, body, str(target))])
                status = "updated" if old else "created"
        return status, self.current().store.passage_counts.get(doc_id, 0)

    def _indexed_as(self, doc_id: str, body: str) -> bool:
        """Whether the live index holds ``doc_id`` with this text (its cleaned text's checksum)."""
        from index.clean import clean_document

        pipeline = self.current()
        with pipeline.reading():
            held = pipeline.store.documents.get(doc_id)
        return (
            held is not None
            and held.checksum == clean_document(RawDocument(doc_id, body, "")).checksum
        )

    def delete_document(self, doc_id: str) -> None:
        """Remove a document from the corpus and the index.

        A document written through the API is deleted from the data folder; a seed is
        hidden by a tombstone, its file left as it is.
        """
        check_doc_id(doc_id)
        with writer_lock(self.settings.index_dir):
            written, seed = self._written(doc_id), self._seed(doc_id)
            if written is None and seed is None:
                raise DocumentNotFoundError(f"no document {doc_id!r}")
            if seed is not None:
                stones = self.settings.documents_dir / TOMBSTONES
                stones.mkdir(parents=True, exist_ok=True)
                _write_durably(stones / doc_id, f"deleted through the API; seed file: {seed}\n")
            if written is not None:
                written.unlink()
                fsync_dir(written.parent)
            self._write([], [doc_id])


def _write_durably(target: Path, text: str) -> None:
    """Write a file atomically and durably: temporary file, fsync, rename, fsync the folder."""
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)
    fsync_dir(target.parent)
