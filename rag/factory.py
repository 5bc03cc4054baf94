"""The composition root: every process builds its pieces here, from :class:`Settings`.

The CLI, the HTTP service and the evaluation harness all call these functions, so none
imports another's module to get a pipeline, and each piece (embedder, reader, index
writer) is configured in one place.
"""

from __future__ import annotations

import logging
import time

from index.threads import available_cores
from rag.config import Settings

log = logging.getLogger(__name__)
LOG_EVERY_S = 10.0  # progress log lines of long work when stderr is not a terminal

__all__ = ["load_pipeline", "make_embedder", "make_reader", "run_index"]


def _embedder_threads(settings: Settings) -> int:
    """Threads per embedder: as set, or the available cores shared by the server workers."""
    if settings.embedder_threads or settings.workers == 1:
        return settings.embedder_threads
    return max(1, available_cores() // settings.workers)


def make_embedder(settings: Settings):  # type: ignore[no-untyped-def]
    """The configured embedder (one per process: reads and writes share it)."""
    from index.embed import make_embedder as build

    return build(
        settings.embedder,
        settings.embedder_model,
        threads=_embedder_threads(settings),
        batch_size=settings.embedder_batch_size,
        engine=settings.embedder_engine,
    )


def _index_embedder(settings: Settings, shared=None):  # type: ignore[no-untyped-def]
    """The embedder of the write path: in process, or a Ray actor pool (RAG_INDEX_ENGINE).

    ``shared``: the process's embedder, used by a local build instead of loading another.
    """
    if settings.index_engine == "local":
        return shared if shared is not None else make_embedder(settings)
    from index.distributed import EmbedderSpec, RayEmbedder

    spec = EmbedderSpec(
        settings.embedder,
        settings.embedder_model,
        threads=settings.embedder_threads or 1,
        batch_size=settings.embedder_batch_size,
        engine=settings.embedder_engine,
    )
    return RayEmbedder(spec, address=settings.ray_address, actors=settings.ray_actors)


def run_index(  # type: ignore[no-untyped-def]
    settings: Settings,
    *,
    rebuild: bool = False,
    show_progress: bool = True,
    allow_empty: bool = False,
    embedder=None,  # type: ignore[no-untyped-def]
):
    """Build or update the index from the settings; returns the build report.

    ``allow_empty``: an empty seeds folder may empty a non-empty index (see build_index).
    ``embedder``: the process's embedder (a server shares one between reads and writes).
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
    )

    from index.build import build_index

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
        disable=not show_progress,
        console=None,
    ) as bar:
        tasks: dict[str, TaskID] = {}
        logged: dict[str, float] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if show_progress:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stage, total=total)
                bar.update(tasks[stage], completed=done, total=total)
                return
            # not a terminal: a log line a stage every 10 seconds, and when it completes
            now = time.monotonic()
            if done == total or now - logged.get(stage, 0.0) >= LOG_EVERY_S:
                logged[stage] = now
                log.info("%s: %d/%d", stage, done, total)

        index_embedder = _index_embedder(settings, embedder)
        try:
            return build_index(
                settings.seeds_dir,
                settings.index_dir,
                index_embedder,
                data_dir=settings.documents_dir,
                chunk_tokens=settings.chunk_tokens,
                overlap_tokens=settings.overlap_tokens,
                encoding=settings.tokenizer,
                clauses=settings.index_clauses,
                vectors=settings.vector_config(),
                max_document_bytes=settings.max_document_bytes,
                rebuild=rebuild,
                progress=progress,
                allow_empty=allow_empty,
            )
        finally:
            if index_embedder is not embedder and hasattr(index_embedder, "close"):
                index_embedder.close()


def make_reader(settings: Settings):  # type: ignore[no-untyped-def]
    """The learned span reader, or None when ``RAG_READER=rules`` selects the typed extractor."""
    if settings.reader == "rules":
        return None
    from rag.reader import Reader, use_bf16

    return Reader(
        settings.reader_weights,
        int8=settings.reader_int8,
        bf16=use_bf16(settings.reader_precision),
        code_switch=settings.reader_code_switch,
    )


def load_pipeline(settings: Settings, *, embedder=None, reader=None):  # type: ignore[no-untyped-def]
    """The answering pipeline over the configured index.

    ``embedder`` and ``reader``: instances the process already holds (a server reloading
    after a write keeps its models); built from the settings when not given.
    """
    from rag.lexicon import use_cache_dir
    from rag.pipeline import Pipeline

    use_cache_dir(settings.index_dir)  # parsed dictionaries kept beside the index
    return Pipeline.open(
        settings.index_dir,
        embedder if embedder is not None else make_embedder(settings),
        retrieve_k=settings.retrieve_k,
        rrf_k=settings.rrf_k,
        weights_path=settings.weights_path,
        vectors=settings.vector_config(),
        reader=reader if reader is not None else make_reader(settings),
        reader_contexts=settings.reader_contexts,
        sentence_ranking=settings.sentence_ranking,
        cross_query=settings.cross_query,
    )
