"""The FastAPI application: routes, auth, error mapping, request logs and metrics."""

from __future__ import annotations

import hmac
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path as FilePath
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.chat import chat_router
from api.limits import BodyLimit, RateLimiter, client_id, retry_after
from api.schemas import (
    DOC_ID_PATTERN,
    DOC_ID_RULE,
    NON_BLANK_TEXT,
    AskRequest,
    AskResponse,
    DocumentIn,
    DocumentList,
    DocumentOut,
    DocumentSummary,
    DocumentWritten,
    ErrorBody,
    PassageOut,
    SearchResponse,
)
from api.service import Service, check_doc_id
from index.errors import DocumentNotFoundError, RagError
from index.threads import configure as configure_threads
from rag.config import Settings, get_settings

T = TypeVar("T")
STATIC = FilePath(__file__).with_name("static")
DocId = Annotated[
    str, Path(max_length=128, pattern=DOC_ID_PATTERN, description="1-128 of A-Z a-z 0-9 . _ -")
]
log = logging.getLogger("api")
access_log = logging.getLogger("api.access")
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody},
    401: {"model": ErrorBody},
    404: {"model": ErrorBody},
    413: {"model": ErrorBody},
    422: {"model": ErrorBody},
    429: {"model": ErrorBody},
    503: {"model": ErrorBody},
    504: {"model": ErrorBody},
}


def _error(
    status: int, kind: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"type": kind, "message": message}}, status_code=status, headers=headers
    )


class Metrics:
    """Prometheus metrics of one app (own registry, so tests can build many apps)."""

    def __init__(self) -> None:
        """Create the collectors."""
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "rag_requests_total",
            "HTTP requests",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "rag_request_seconds",
            "Request latency",
            ["route"],
            registry=self.registry,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.answers = Counter(
            "rag_answers_total", "Answers by outcome", ["outcome"], registry=self.registry
        )
        self.documents = Gauge(
            "rag_index_documents", "Documents in the index", registry=self.registry
        )
        self.passages = Gauge("rag_index_passages", "Passages in the index", registry=self.registry)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app (uvicorn calls this as a factory)."""
    settings = settings or get_settings()
    configure_threads(settings.embedder_threads, workers=settings.workers)
    service = Service(settings)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        import anyio

        await anyio.to_thread.run_sync(service.start)
        log.info(
            "ready: %d documents, %d passages",
            len(service.current().store.documents),
            service.current().store.passage_total,
        )
        yield
        log.info("shutting down")

    app = FastAPI(
        title="rag-news-qa",
        version="0.1.0",
        description="Offline, multilingual, citation-first question answering over a news corpus.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.metrics = metrics
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=[o.strip() for o in settings.cors_origins.split(",") if o.strip()],
            allow_methods=["*"],
            allow_headers=["*"],
        )

    limiter = (
        RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)
        if settings.rate_limit_per_minute
        else None
    )

    async def bounded(fn: Callable[[], T]) -> T:
        """Run blocking pipeline work in a thread within the request budget (504 past it)."""
        try:
            with anyio.fail_after(settings.request_timeout_s):
                return await anyio.to_thread.run_sync(fn, abandon_on_cancel=True)
        except TimeoutError:
            raise _Timeout(settings.request_timeout_s) from None

    @app.middleware("http")
    async def observe(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response: Response
        rid = request.headers.get("x-request-id", "")
        if not (0 < len(rid) <= 128 and rid.replace("-", "").isalnum()):
            rid = uuid.uuid4().hex
        t0 = time.perf_counter()
        length = request.headers.get("content-length")
        wait = 0.0
        if limiter is not None and request.url.path.startswith("/v1/"):
            wait = limiter.acquire(
                client_id(
                    request.headers.get("authorization", ""),
                    request.client.host if request.client else "",
                )
            )
        if wait > 0:
            response = _error(
                429,
                "rate_limited",
                f"rate limit of {settings.rate_limit_per_minute} requests a minute exceeded",
                headers={"Retry-After": retry_after(wait)},
            )
        elif length and length.isdigit() and int(length) > settings.max_body_bytes:
            response = _error(
                413,
                "payload_too_large",
                f"request body is larger than {settings.max_body_bytes} bytes",
            )
        else:
            response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        dt = time.perf_counter() - t0
        metrics.requests.labels(path, request.method, str(response.status_code)).inc()
        metrics.latency.labels(path).observe(dt)
        response.headers["X-Request-ID"] = rid
        access_log.info(
            json.dumps(
                {
                    "request_id": rid,
                    "method": request.method,
                    "route": path,
                    "status": response.status_code,
                    "latency_ms": round(dt * 1000, 2),
                }
            )
        )
        return response

    @app.exception_handler(RagError)
    async def rag_error(_: Request, exc: RagError) -> JSONResponse:
        return _error(exc.status_code, exc.kind, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = (
            exc.errors()[0]
            if exc.errors()
            else {"loc": ("body",), "msg": "invalid request", "type": ""}
        )
        field = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
        if tuple(first.get("loc", ())) == ("path", "doc_id"):
            return _error(422, "validation_error", DOC_ID_RULE)
        if request.url.path.startswith("/v1/chat/"):  # OpenAI clients expect 400s
            return JSONResponse(
                {
                    "error": {
                        "message": f"{field}: {first.get('msg', 'invalid value')}"
                        if first.get("type") != "json_invalid"
                        else "request body is not valid JSON",
                        "type": "invalid_request_error",
                        "param": field,
                        "code": first.get("type") or None,
                    }
                },
                status_code=400,
            )
        if first.get("type") == "json_invalid":
            return _error(400, "malformed_json", "request body is not valid JSON")
        return _error(422, "validation_error", f"{field}: {first.get('msg', 'invalid value')}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kinds = {
            404: "not_found",
            405: "method_not_allowed",
            401: "unauthorized",
            413: "payload_too_large",
        }
        return _error(
            exc.status_code,
            kinds.get(exc.status_code, "http_error"),
            str(exc.detail),
            headers=getattr(exc, "headers", None),
        )

    keys = settings.key_list()

    def require_key(request: Request) -> None:
        if not keys:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        ok = scheme.lower() == "bearer" and any(
            hmac.compare_digest(token.encode(), k.encode()) for k in keys
        )
        if not ok:
            raise StarletteHTTPException(
                401,
                "missing or invalid API key: send 'Authorization: Bearer <key>'",
                headers={"WWW-Authenticate": "Bearer"},
            )

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(require_key)], responses=ERRORS)

    @v1.post("/ask", response_model=AskResponse, tags=["questions"])
    async def ask(body: AskRequest) -> dict[str, Any]:
        """Answer a question with citations, or null when the corpus does not hold the answer."""
        if len(body.question) > settings.max_question_chars:
            raise _TooLong(settings.max_question_chars)
        answer = await bounded(  # current() may reload a swapped index: not on the loop
            lambda: service.current().ask(
                body.question, top_k=body.top_k, include_passages=body.include_passages
            )
        )
        metrics.answers.labels("abstained" if answer.text is None else "answered").inc()
        return answer.to_dict(include_passages=body.include_passages)

    @v1.get("/search", response_model=SearchResponse, tags=["questions"])
    async def search(
        q: Annotated[
            str,
            Query(min_length=1, max_length=2000, pattern=NON_BLANK_TEXT, description="The query."),
        ],
        top_k: Annotated[int, Query(ge=1, le=50)] = 10,
    ) -> SearchResponse:
        """Retrieve passages (hybrid dense + BM25) without extracting an answer."""
        hits = await bounded(lambda: service.current().search(q, top_k=top_k))
        return SearchResponse(
            query=q,
            hits=[
                PassageOut(
                    passage_id=h.passage.passage_id,
                    doc_id=h.passage.doc_id,
                    text=h.passage.text,
                    start=h.passage.start,
                    end=h.passage.end,
                    score=round(h.score, 6),
                )
                for h in hits
            ],
        )

    @v1.get("/documents", response_model=DocumentList, tags=["documents"])
    def list_documents(
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> DocumentList:
        """List the indexed documents, paginated."""
        pipeline = service.current()
        store = pipeline.store
        with pipeline.reading():  # not while a document write is applied
            ids = sorted(store.documents)
            items = [
                DocumentSummary(
                    doc_id=d,
                    title=store.documents[d].title,
                    passages=store.passage_counts.get(d, 0),
                    updated_at=store.updated_at.get(d, 0.0),
                )
                for d in ids[offset : offset + limit]
            ]
        return DocumentList(items=items, total=len(ids), offset=offset, limit=limit)

    @v1.get("/documents/{doc_id}", response_model=DocumentOut, tags=["documents"])
    def get_document(doc_id: DocId) -> DocumentOut:
        """A document's canonical text (every offset refers to it) and metadata."""
        check_doc_id(doc_id)
        pipeline = service.current()
        store = pipeline.store
        with pipeline.reading():
            doc = store.documents.get(doc_id)
            updated = store.updated_at.get(doc_id, 0.0)
            passages = store.passage_counts.get(doc_id, 0)
        if doc is None:
            raise DocumentNotFoundError(f"no document {doc_id!r}")
        return DocumentOut(
            doc_id=doc.doc_id,
            title=doc.title,
            date=doc.date,
            lang=doc.lang,
            text=doc.text,
            passages=passages,
            updated_at=updated,
        )

    @v1.put(
        "/documents/{doc_id}",
        response_model=DocumentWritten,
        tags=["documents"],
        responses={201: {"model": DocumentWritten, "description": "Created"}},
    )
    async def put_document(doc_id: DocId, body: DocumentIn, response: Response) -> DocumentWritten:
        """Create (201) or replace (200) a document; it is on disk and indexed before the reply.

        Past ``RAG_REQUEST_TIMEOUT_S`` the reply is a 504 and the write is not acknowledged
        (it may still complete: GET the document to see).
        """
        status, passages = await bounded(
            lambda: service.put_document(doc_id, body.text, body.title, body.date)
        )
        response.status_code = 201 if status == "created" else 200
        _update_gauges()
        return DocumentWritten(doc_id=doc_id, status=status, passages=passages)

    @v1.delete("/documents/{doc_id}", status_code=204, tags=["documents"])
    async def delete_document(doc_id: DocId) -> Response:
        """Remove a document from the corpus and the index (504 past the request budget)."""
        await bounded(lambda: service.delete_document(doc_id))
        _update_gauges()
        return Response(status_code=204)

    app.include_router(v1)
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        """The schema, stating the configured question length limit."""
        schema = default_openapi()
        question = schema["components"]["schemas"]["AskRequest"]["properties"]["question"]
        question["maxLength"] = settings.max_question_chars
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.include_router(
        chat_router(
            lambda q: bounded(lambda: service.current().ask(q)),
            settings.chat_model,
            require_key,
        )
    )

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        """The question page (static files, nothing fetched from outside the machine)."""
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """Liveness: the process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], responses={503: {"model": ErrorBody}})
    def readyz() -> Response:
        """Readiness: 200 once the index is loaded, 503 before."""
        if not service.ready:
            return _error(503, "not_ready", "the index is still loading")
        store = service.current().store
        return JSONResponse(
            {"status": "ready", "documents": len(store.documents), "passages": store.passage_total}
        )

    @app.get(
        "/metrics",
        tags=["health"],
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
    )
    def prometheus() -> Response:
        """Prometheus metrics."""
        _update_gauges()
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def _update_gauges() -> None:
        if service.ready:
            store = service.current().store
            metrics.documents.set(len(store.documents))
            metrics.passages.set(store.passage_total)

    return app


class _Timeout(RagError):
    status_code = 504
    kind = "timeout"

    def __init__(self, budget: float):
        super().__init__(
            f"the request took longer than its {budget:g}s budget (RAG_REQUEST_TIMEOUT_S)"
        )


class _TooLong(RagError):
    status_code = 422
    kind = "validation_error"

    def __init__(self, limit: int):
        super().__init__(f"question: must be at most {limit} characters")
