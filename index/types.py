"""Typed, frozen data objects that travel between the write-path stages."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

Script = Literal["en", "zh-Hans", "zh-Hant"]
Language = Literal["en", "zh"]


@dataclass(frozen=True)
class RawDocument:
    """An article as read from disk, before cleaning."""

    doc_id: str
    text: str
    path: str


@dataclass(frozen=True)
class Document:
    """A cleaned article. ``text`` is canonical: every offset in the system refers to it.

    ``damaged`` lists ``(start, end)`` ranges of characters next to unrecoverable
    encoding damage; nothing touching them may be trusted as an answer.
    """

    doc_id: str
    text: str
    title: str
    date: str | None
    lang: Script
    damaged: tuple[tuple[int, int], ...] = ()
    checksum: str = ""

    def touches_damage(self, start: int, end: int) -> bool:
        """Whether the span ``[start, end)`` overlaps or abuts a damaged range."""
        return any(start <= d_end and end >= d_start for d_start, d_end in self.damaged)


@dataclass(frozen=True)
class Passage:
    """A chunk of a document: a run of whole sentences of at most N tokens."""

    passage_id: str
    doc_id: str
    start: int
    end: int
    text: str
    lang: Script
    sentences: tuple[tuple[int, int], ...] = field(default=())
    n_tokens: int = 0


def passage_id_for(doc_id: str, start: int, text: str) -> str:
    """Stable id from the source and the content (re-indexing skips unchanged passages)."""
    digest = hashlib.sha1(f"{doc_id}\x00{start}\x00{text}".encode()).hexdigest()
    return digest[:16]


def content_hash(text: str) -> str:
    """Hex digest of a text, used as the embedding-cache key."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors."""

    name: str
    version: str
    dim: int

    def embed(self, texts: list[str], *, is_query: bool = False) -> np.ndarray:
        """Embed a batch of texts; returns an array of shape ``(len(texts), dim)``."""
        ...

    def warm_up(self) -> None:
        """Load the model now (``dim`` is known afterwards)."""
        ...
