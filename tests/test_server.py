"""The real server (`rag serve` in a subprocess) and the CLI, talked to over HTTP."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import CORPUS, ROOT, start_server, stop_server

pytestmark = pytest.mark.integration
RAG = [sys.executable, "-m", "rag.cli"]


def _env(tmp_path: Path, corpus_dir: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "RAG_SEEDS_DIR": str(corpus_dir),
            "RAG_INDEX_DIR": str(tmp_path / "index"),
            "RAG_LOG_LEVEL": "WARNING",
        }
    )
    env.update(extra)
    return env


def _rag(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RAG, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module", params=["open", "keyed"])
def server(request, tmp_path_factory):
    """One server per mode for the module: every test leaves its corpus as it found it."""
    extra = {"RAG_API_KEYS": "k-123"} if request.param == "keyed" else {}
    root = tmp_path_factory.mktemp(f"server-{request.param}")
    corpus = root / "seeds"
    shutil.copytree(CORPUS, corpus)
    proc, base = start_server(_env(root, corpus, **extra))
    headers = {"Authorization": "Bearer k-123"} if extra else {}
    yield base, headers, request.param
    stop_server(proc)


def test_server_end_to_end(server):
    base, headers, mode = server
    with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
        r = c.post("/v1/ask", json={"question": "Who is the chairman of Huawei Coal Mine Corps?"})
        assert r.status_code == 200 and "X-Request-ID" in r.headers
        assert c.get("/v1/search", params={"q": "forging enterprises"}).json()["hits"]
        put = c.put(
            "/v1/documents/jinjiang",
            json={"text": "Jinjiang makes 30 of every 100 swimsuits in the world."},
        )
        assert put.status_code == 201
        hits = c.get("/v1/search", params={"q": "Jinjiang swimsuits world"}).json()["hits"]
        assert hits[0]["doc_id"] == "jinjiang"
        ask = c.post(
            "/v1/ask", json={"question": "How many of every 100 swimsuits does Jinjiang make?"}
        ).json()
        assert any(cit["doc_id"] == "jinjiang" for cit in ask["citations"]) or ask["answer"] is None
        assert c.delete("/v1/documents/jinjiang").status_code == 204
        assert c.get("/v1/documents/jinjiang").status_code == 404
        for bad in ({"question": ""}, {"question": 3}, {"top_k": 5}):
            r = c.post("/v1/ask", json=bad)
            assert r.status_code == 422 and r.json()["error"]["message"]
        assert (
            c.post(
                "/v1/ask", content=b"{oops", headers={"content-type": "application/json"}
            ).status_code
            == 400
        )
    if mode == "keyed":
        r = httpx.post(f"{base}/v1/ask", json={"question": "x?"})
        assert r.status_code == 401 and r.json()["error"]["type"] == "unauthorized"
        assert httpx.get(f"{base}/healthz").status_code == 200
    metrics = httpx.get(f"{base}/metrics").text
    assert 'route="/v1/ask"' in metrics


def test_eval_against_the_server(server, tmp_path):
    base, headers, mode = server
    env = dict(os.environ)
    if mode == "keyed":
        env["RAG_API_KEYS"] = "k-123"
    out = subprocess.run(
        [*RAG, "eval", "--url", base, "--gold", str(ROOT / "tests/data/mini_gold.jsonl"), "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["mode"] == "http" and result["overall"]["questions"] == 4


def test_cli_ask_uses_a_running_server(server, tmp_path):
    base, _, mode = server
    host, port = base.removeprefix("http://").split(":")
    env = dict(os.environ, RAG_HOST=host, RAG_PORT=port, RAG_LOG_LEVEL="INFO")
    env["RAG_INDEX_DIR"] = str(tmp_path / "no-index-here")  # the server's index answers
    if mode == "keyed":
        env["RAG_API_KEYS"] = "k-123"
    out = _rag(env, "ask", "Who is the chairman of Huawei Coal Mine Corps?", "--json")
    assert out.returncode == 0, out.stderr
    assert set(json.loads(out.stdout)) >= {"answer", "citations", "confidence"}
    assert "loading the index here" not in out.stderr
    bad = _rag(env, "ask", "x" * 100_000)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1].startswith("error: the server refused")


def test_cli_index_ask_and_errors(tmp_path, corpus_dir):
    env = _env(tmp_path, corpus_dir)
    first = subprocess.run(
        [*RAG, "index"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert first.returncode == 0 and "indexed 3 documents" in first.stdout
    again = subprocess.run(
        [*RAG, "index"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert "nothing re-embedded" in again.stdout
    ask = subprocess.run(
        [
            *RAG,
            "ask",
            "How many flange forging enterprises does Dingxiang County have?",
            "--json",
            "--local",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ask.returncode == 0
    assert set(json.loads(ask.stdout)) >= {"answer", "citations", "confidence"}
    missing = subprocess.run(
        [*RAG, "ask", "anything?", "--local"],
        cwd=ROOT,
        env=_env(tmp_path / "other", corpus_dir),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines()[-1].startswith("error: no index in")
    assert "Traceback" not in missing.stderr
    idle = _rag(env, "calibrate", "--no-spans")
    assert idle.returncode == 2 and "nothing to fit" in idle.stderr.strip().splitlines()[-1]
    unknown = _rag(env, "calibrate", "--report-only", "--drop", "nope")
    last = unknown.stderr.strip().splitlines()[-1]
    assert unknown.returncode == 2 and "unknown span ranker column nope" in last
    nowhere = _rag(env, "calibrate", "--dataset", str(tmp_path / "none.jsonl"))
    last = nowhere.stderr.strip().splitlines()[-1]
    assert nowhere.returncode == 2 and "none.jsonl does not exist" in last, "refused at once"
    bad_gold = tmp_path / "bad.jsonl"
    bad_gold.write_text('{"id": 1}\n')
    ev = subprocess.run(
        [*RAG, "eval", "--gold", str(bad_gold)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ev.returncode == 2 and "bad.jsonl:1" in ev.stderr and "Traceback" not in ev.stderr
    folder = _rag(env, "eval", "--gold", str(tmp_path))  # a folder where a file is expected
    last = folder.stderr.strip().splitlines()[-1]
    assert folder.returncode == 2 and last.startswith("error: ") and str(tmp_path) in last
    bad_port = _rag({**env, "RAG_PORT": "abc"}, "ask", "anything?")
    last = bad_port.stderr.strip().splitlines()[-1]
    assert bad_port.returncode == 2 and "Traceback" not in bad_port.stderr
    assert last.startswith("error: bad setting: RAG_PORT='abc'"), last
    assert _rag(env, "serve", "--port", "70000").returncode == 2  # refused before binding


def test_openai_sdk_against_the_server(server):
    import openai

    base, headers, mode = server
    key = headers.get("Authorization", "Bearer none").split()[-1]
    client = openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=60)
    assert [m.id for m in client.models.list()] == ["rag-news-qa"]
    q = "How many intelligent coal mines had Shanxi built by the end of 2024?"
    resp = client.chat.completions.create(
        model="rag-news-qa", messages=[{"role": "user", "content": q}], temperature=0
    )
    assert "268" in (resp.choices[0].message.content or "")
    citations = (resp.model_extra or {})["citations"]
    assert citations[0]["doc_id"] == "en_coal" and "268" in citations[0]["snippet"]
    assert resp.usage and resp.usage.completion_tokens > 0

    stream = client.chat.completions.create(
        model="rag-news-qa", messages=[{"role": "user", "content": q}], stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "268" in text and "Sources:" in text
    assert (chunks[-1].model_extra or {})["citations"][0]["doc_id"] == "en_coal"

    follow = client.chat.completions.create(
        model="rag-news-qa",
        messages=[
            {"role": "user", "content": "2023年湖北有多少家科技型中小企业？"},
            {"role": "assistant", "content": "答案：35000家 [1]。"},
            {"role": "user", "content": "那新增研发机构呢？"},
        ],
    )
    assert "477" in (follow.choices[0].message.content or "")

    none = client.chat.completions.create(
        model="rag-news-qa",
        messages=[{"role": "user", "content": "Who wrote Pride and Prejudice?"}],
    )
    assert (none.model_extra or {})["answer"] is None
    content = none.choices[0].message.content or ""
    assert "no definite answer" in content and "[1]" in content  # the closest sources listed

    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="rag-news-qa", messages=[])
    if mode == "keyed":
        bad = openai.OpenAI(base_url=f"{base}/v1", api_key="wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            bad.chat.completions.create(
                model="rag-news-qa", messages=[{"role": "user", "content": q}]
            )
