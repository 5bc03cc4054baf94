"""Stage 1 of the write path: read article files, skipping what cannot be read.

The corpus is two folders: ``seeds`` (articles a person put there; the bundled ones are
tracked source) and the data folder, where documents written through the API live. A
document in the data folder replaces a seed of the same id; deleting a seed through the
API leaves its file alone and writes a tombstone (``<data>/.deleted/<doc_id>``) that hides
it until the id is written again.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from index.types import RawDocument

log = logging.getLogger(__name__)
DOC_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
SUFFIXES = (".txt", ".md")


def decode_bytes(data: bytes) -> str | None:
    """Text of a file's bytes: UTF-8, else the charset detected; None for binary data."""
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None or best.encoding is None:
        return None
    return str(best)


def document_files(folder: Path) -> list[Path]:
    """The files under ``folder`` that are read as documents, sorted (the first of an id wins).

    Hidden files and folders (the tombstones' ``.deleted``, ``.git``) are not documents.
    """
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def find_document(folder: Path, doc_id: str) -> Path | None:
    """The file under ``folder`` that :func:`load_documents` reads as ``doc_id``, if any.

    ``<folder>/<doc_id>.txt`` (or ``.md``) is looked up directly; only an id not found so
    walks the folder (a seed in a subfolder, an upper-case suffix).
    """
    for suffix in SUFFIXES:
        direct = folder / f"{doc_id}{suffix}"
        if direct.is_file():
            return direct
    return next((p for p in document_files(folder) if p.stem == doc_id), None)


def load_documents(
    seeds_dir: Path, *, max_bytes: int = 5_000_000
) -> tuple[list[RawDocument], list[str]]:
    """Every readable ``.txt``/``.md`` file under ``seeds_dir`` (doc_id = file stem).

    Hidden files and folders (a name starting with ``.``) are left out (see
    :func:`document_files`).

    Returns:
        The documents, sorted by id, and one warning line for each file skipped.
    """
    docs: dict[str, RawDocument] = {}
    warnings: list[str] = []
    if not seeds_dir.is_dir():
        return [], [f"seeds directory {seeds_dir} does not exist"]
    for path in document_files(seeds_dir):
        doc_id = path.stem
        why = None
        if not DOC_ID_RE.match(doc_id) or ".." in doc_id:
            why = "its name is not a valid doc id ([A-Za-z0-9._-], at most 128 characters)"
        elif doc_id in docs:
            why = f"duplicate doc id {doc_id!r} (already read from {docs[doc_id].path})"
        else:
            why, text = _read(path, max_bytes)
            if why is None:
                docs[doc_id] = RawDocument(doc_id=doc_id, text=text, path=str(path))
        if why:
            warnings.append(f"skipped {path}: {why}")
    return [docs[k] for k in sorted(docs)], warnings


def _read(path: Path, max_bytes: int) -> tuple[str | None, str]:
    """A document file's text, or why it is skipped: ``(None, text)`` or ``(why, "")``."""
    try:
        if path.stat().st_size > max_bytes:
            return f"it is larger than {max_bytes} bytes (RAG_MAX_DOCUMENT_BYTES)", ""
        text = decode_bytes(path.read_bytes())
    except OSError as exc:  # unreadable, or removed since the folder was listed
        return f"it cannot be read ({exc.strerror or exc})", ""
    if text is None:
        return "it is binary or in an unknown encoding", ""
    if not text.strip():
        return "it is empty", ""
    return None, text


TOMBSTONES = ".deleted"


def tombstones(data_dir: Path | None) -> set[str]:
    """Ids of seeds deleted through the API (hidden, their files untouched)."""
    folder = data_dir / TOMBSTONES if data_dir is not None else None
    if folder is None or not folder.is_dir():
        return set()
    return {p.name for p in folder.iterdir() if p.is_file() and DOC_ID_RE.match(p.name)}


def load_corpus(
    seeds_dir: Path, data_dir: Path | None, *, max_bytes: int = 5_000_000
) -> tuple[list[RawDocument], list[str]]:
    """The seeds less their tombstones, with the data folder's documents over them.

    Returns:
        The documents, sorted by id, and one warning line for each file skipped (a data
        folder that does not exist yet is not a warning: nothing was written through the
        API).
    """
    seeds, warnings = load_documents(seeds_dir, max_bytes=max_bytes)
    hidden = tombstones(data_dir)
    docs = {d.doc_id: d for d in seeds if d.doc_id not in hidden}
    if data_dir is not None and data_dir.is_dir():
        written, more = load_documents(data_dir, max_bytes=max_bytes)
        warnings += more
        docs.update({d.doc_id: d for d in written})
    return [docs[k] for k in sorted(docs)], warnings
