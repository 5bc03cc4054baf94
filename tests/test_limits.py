"""Rate limiting and request budgets: 429 with Retry-After, 504 JSON instead of a hang."""

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.limits import BodyLimit, RateLimiter, client_id, retry_after
from rag.config import Settings


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_token_bucket_refills_at_the_configured_rate():
    clock = Clock()
    limiter = RateLimiter(60, burst=2, clock=clock)
    assert limiter.acquire("a") == 0 and limiter.acquire("a") == 0
    wait = limiter.acquire("a")
    assert wait == pytest.approx(1.0) and retry_after(wait) == "1"
    assert limiter.acquire("b") == 0, "clients have separate buckets"
    clock.t = 1.0
    assert limiter.acquire("a") == 0


def test_client_identity_hashes_keys():
    ident = client_id("Bearer secret-key", "10.0.0.1")
    assert ident.startswith("key:") and "secret" not in ident
    assert client_id("", "10.0.0.1") == "addr:10.0.0.1"


@pytest.fixture
def base_settings(tmp_path, corpus_dir):
    return {
        "seeds_dir": corpus_dir,
        "index_dir": tmp_path / "idx",
        "log_level": "WARNING",
    }


def test_the_body_limit_counts_chunks_as_they_arrive():
    """Three 1 MB chunks against a 2.5 MB limit: the first two pass, the third is refused."""
    import anyio
    from starlette.exceptions import HTTPException

    chunks = [b"x" * 1_000_000] * 3
    delivered: list[int] = []

    async def receive():
        body = chunks.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(chunks)}

    async def app(scope, receive, send):
        while True:
            message = await receive()
            delivered.append(len(message["body"]))
            if not message["more_body"]:
                return

    async def send(message):
        raise AssertionError("the app sends nothing here")

    async def run() -> None:
        await BodyLimit(app, max_bytes=2_500_000)({"type": "http"}, receive, send)

    with pytest.raises(HTTPException) as refused:
        anyio.run(run)
    assert refused.value.status_code == 413 and delivered == [1_000_000, 1_000_000]


def test_rate_limit_answers_429_with_retry_after(base_settings):
    settings = Settings(**base_settings, rate_limit_per_minute=2, api_keys="k1,k2")
    with TestClient(create_app(settings)) as c:
        h1 = {"Authorization": "Bearer k1"}
        codes = [c.get("/v1/documents", headers=h1).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        r = c.get("/v1/documents", headers=h1)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        assert r.json()["error"]["type"] == "rate_limited"
        assert c.get("/v1/documents", headers={"Authorization": "Bearer k2"}).status_code == 200
        assert c.get("/healthz").status_code == 200, "health checks are never limited"


def test_rate_limit_is_off_by_default(base_settings):
    with TestClient(create_app(Settings(**base_settings))) as c:
        assert all(c.get("/v1/documents").status_code == 200 for _ in range(30))


def test_a_question_over_its_budget_gets_504_json_and_the_server_keeps_serving(base_settings):
    settings = Settings(**base_settings, request_timeout_s=0.001)
    with TestClient(create_app(settings)) as c:
        for method, path, kw in (
            ("POST", "/v1/ask", {"json": {"question": "How many coal mines?"}}),
            ("GET", "/v1/search", {"params": {"q": "coal mines"}}),
            (
                "POST",
                "/v1/chat/completions",
                {"json": {"messages": [{"role": "user", "content": "Coal?"}]}},
            ),
            ("PUT", "/v1/documents/slow", {"json": {"text": "Datong opened 12 new labs."}}),
        ):
            r = c.request(method, path, **kw)
            assert r.status_code == 504, (path, r.text)
            assert r.json()["error"]["type"] == "timeout"
        assert c.get("/v1/documents").status_code == 200
