"""The ``rag`` command: index, ask, serve, eval, fit.

Errors from the :class:`~index.errors.RagError` hierarchy become one line on stderr
and exit code 2; nothing a user does produces a traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from index.errors import RagError
from rag.config import Settings, get_settings

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Offline multilingual Q&A with citations."
)
log = logging.getLogger("rag")


def _setup_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("faiss.loader", "bm25s", "jieba", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _embedder(settings: Settings):  # type: ignore[no-untyped-def]
    from index.embed import make_embedder

    return make_embedder(
        settings.embedder,
        settings.embedder_model,
        threads=settings.embedder_threads,
        batch_size=settings.embedder_batch_size,
    )


def run_index(settings: Settings, *, rebuild: bool = False, show_progress: bool = True):  # type: ignore[no-untyped-def]
    """Build or update the index from the settings; returns the build report."""
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

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        return build_index(
            settings.seeds_dir,
            settings.index_dir,
            _embedder(settings),
            chunk_tokens=settings.chunk_tokens,
            overlap_tokens=settings.overlap_tokens,
            encoding=settings.tokenizer,
            factory=settings.faiss_factory,
            nprobe=settings.faiss_nprobe,
            max_document_bytes=settings.max_document_bytes,
            rebuild=rebuild,
            progress=progress,
        )


@app.command("index")
def index_cmd(
    rebuild: Annotated[bool, typer.Option(help="Rebuild even if nothing changed.")] = False,
) -> None:
    """Build or update the index of RAG_SEEDS_DIR in RAG_INDEX_DIR."""
    settings = get_settings()
    _setup_logging(settings)
    report = run_index(settings, rebuild=rebuild, show_progress=sys.stderr.isatty())
    if report.changed:
        typer.echo(
            f"indexed {report.documents} documents, {report.passages} passages, "
            f"{report.sentences} sentences in {report.seconds:.2f}s "
            f"({report.embedded} embedded, {report.reused} reused from cache) -> {report.path}"
        )
    else:
        typer.echo(
            f"index is up to date: {report.documents} documents, {report.passages} passages; "
            f"nothing re-embedded ({report.seconds:.2f}s)"
        )


def load_pipeline(settings: Settings):  # type: ignore[no-untyped-def]
    """The answering pipeline over the configured index."""
    from rag.pipeline import Pipeline

    return Pipeline.open(
        settings.index_dir,
        _embedder(settings),
        retrieve_k=settings.retrieve_k,
        rrf_k=settings.rrf_k,
        weights_path=settings.weights_path,
    )


@app.command("ask")
def ask_cmd(
    question: Annotated[str, typer.Argument(help="The question, in English or Chinese.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON answer.")] = False,
    top_k: Annotated[int, typer.Option("--top-k", min=1, max=50, help="Citations to return.")] = 5,
) -> None:
    """Answer a question from the index, with citations."""
    settings = get_settings()
    _setup_logging(settings)
    pipeline = load_pipeline(settings)
    answer = pipeline.ask(question, top_k=top_k)
    if as_json:
        typer.echo(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return
    if answer.text is None:
        typer.echo(f"Not in the corpus (confidence {answer.confidence:.2f}).")
    else:
        typer.echo(f"{answer.text}   (confidence {answer.confidence:.2f}, {answer.question_type})")
    for i, c in enumerate(answer.citations, 1):
        typer.echo(f"[{i}] {c.doc_id} {c.start}-{c.end} score={c.score:.3f}: {c.snippet}")


@app.command("serve")
def serve_cmd(
    host: Annotated[str | None, typer.Option(help="Bind address (RAG_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (RAG_PORT).")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (RAG_WORKERS).")] = None,
) -> None:
    """Serve the HTTP API, building the index first if there is none."""
    import uvicorn

    from index.store import read_manifest

    settings = get_settings()
    _setup_logging(settings)
    if read_manifest(settings.index_dir) is None:
        log.info("no index in %s: building it from %s", settings.index_dir, settings.seeds_dir)
        report = run_index(settings, show_progress=False)
        log.info(
            "indexed %d documents, %d passages in %.1fs",
            report.documents,
            report.passages,
            report.seconds,
        )
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers or settings.workers,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=10,
    )


@app.command("eval")
def eval_cmd(
    gold: Annotated[
        Path | None, typer.Option(help="Gold JSONL (default: the bundled dev set).")
    ] = None,
    url: Annotated[
        str | None, typer.Option(help="Evaluate a running server at this base URL.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object with the figures.")
    ] = False,
    report: Annotated[
        Path | None, typer.Option(help="Write report.md and report.html here.")
    ] = None,
    gate: Annotated[
        bool, typer.Option(help="Exit non-zero when a pinned threshold is not met.")
    ] = False,
    baselines: Annotated[
        bool, typer.Option(help="Also score BM25-only and dense-only retrieval.")
    ] = True,
) -> None:
    """Score the service on gold Q&A pairs (in-process, or a server with --url)."""
    from eval.harness import run_cli

    settings = get_settings()
    _setup_logging(settings)
    code = run_cli(
        settings, gold=gold, url=url, as_json=as_json, report=report, gate=gate, baselines=baselines
    )
    raise typer.Exit(code)


@app.command("fit")
def fit_cmd(
    gold: Annotated[
        Path | None, typer.Option(help="Gold JSONL (default: the bundled dev set).")
    ] = None,
    folds: Annotated[int, typer.Option(min=2, help="Cross-validation folds.")] = 5,
    repeats: Annotated[int, typer.Option(min=1, help="Repeat CV over this many shuffles.")] = 1,
    out: Annotated[Path | None, typer.Option(help="Where to write the weights JSON.")] = None,
) -> None:
    """Fit the answer-ranking and abstention weights on gold pairs (k-fold CV reported)."""
    from eval.fit import run_fit

    settings = get_settings()
    _setup_logging(settings)
    run_fit(settings, gold=gold, folds=folds, out=out, repeats=repeats)


def main() -> None:
    """Console-script entry point: one-line errors, no tracebacks.

    Usage errors are Typer's own (a short message, exit 2); errors from the RagError
    hierarchy become ``error: <message>`` on stderr with exit 2.
    """
    try:
        app()
    except RagError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("aborted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
