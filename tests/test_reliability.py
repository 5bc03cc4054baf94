"""Crash safety, one writer at a time, and concurrency, with real processes and kill -9.

Trial counts and the concurrency run's length are environment settings
(``RAG_CRASH_TRIALS``, default 6; ``RAG_SOAK_SECONDS``, default 30) so that a developer can
run them longer (``make soak``: 20 trials, 120 s); CI runs the defaults.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, start_server, stop_server

pytestmark = [pytest.mark.slow, pytest.mark.integration]
log = logging.getLogger(__name__)
TRIALS = int(os.environ.get("RAG_CRASH_TRIALS", "6"))
SOAK_SECONDS = float(os.environ.get("RAG_SOAK_SECONDS", "30"))
RAG = [sys.executable, "-m", "rag.cli"]


def _env(seeds: Path, index: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    # durability and concurrency are under test here, not answers: the typed extractor
    # reads instead of the learned reader, so that each of the many server starts is short
    env.update(
        RAG_SEEDS_DIR=str(seeds),
        RAG_INDEX_DIR=str(index),
        RAG_LOG_LEVEL="WARNING",
        RAG_READER="rules",
    )
    env.update(extra)
    return env


def _check_consistent(index_dir: Path) -> int:
    """The current index (its logged writes applied) loads; every passage is its document's text."""
    from index.store import IndexStore

    store = IndexStore.open(index_dir)
    assert store.dense.count() == store.passage_total == store.lexical_passages.live
    for _, p in store.live_passages():
        assert store.documents[p.doc_id].text[p.start : p.end] == p.text
    return len(store.documents)


@pytest.fixture
def dirs(tmp_path: Path, corpus_dir: Path) -> tuple[Path, Path]:
    index = tmp_path / "index"
    out = subprocess.run(
        [*RAG, "index"], cwd=ROOT, env=_env(corpus_dir, index), capture_output=True, check=False
    )
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    return corpus_dir, index


def test_kill_9_during_rag_index_leaves_a_consistent_index(dirs):
    seeds, index = dirs
    rng = random.Random(20261123)
    mid_run = 0
    for trial in range(TRIALS):
        (seeds / f"trial{trial:02d}.txt").write_text(
            f"Trial {trial}: Shanxi opened {trial + 100} new smart plants in 2024.\n"
            + "Each plant employs engineers and technicians. " * rng.randint(1, 40)
        )
        proc = subprocess.Popen(
            [*RAG, "index"], cwd=ROOT, env=_env(seeds, index), stderr=subprocess.DEVNULL
        )
        time.sleep(rng.uniform(0.3, 4.0))
        mid_run += proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        _check_consistent(index)
    log.warning("rag index: %d kill -9 trials, %d during the build", TRIALS, mid_run)
    assert mid_run >= TRIALS // 4, "too few kills landed during a build to prove anything"
    out = subprocess.run(
        [*RAG, "index"], cwd=ROOT, env=_env(seeds, index), capture_output=True, check=False
    )
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    assert _check_consistent(index) == 3 + TRIALS
    proc, base = start_server(_env(seeds, index))
    try:
        r = httpx.post(f"{base}/v1/ask", json={"question": "How many smart plants?"}, timeout=30)
        assert r.status_code == 200
    finally:
        stop_server(proc)


def test_kill_9_during_document_puts_loses_no_acknowledged_document(dirs):
    seeds, index = dirs
    rng = random.Random(7)
    acked: dict[str, str] = {}
    cut_short = 0
    for trial in range(TRIALS):
        proc, base = start_server(_env(seeds, index))
        for doc_id, text in acked.items():  # everything acknowledged before is still there
            r = httpx.get(f"{base}/v1/documents/{doc_id}", timeout=30)
            assert r.status_code == 200, (trial, doc_id)
            assert text in r.json()["text"]
        stop, first_ack = threading.Event(), threading.Event()
        in_flight: list[str] = []

        def writer(
            trial: int = trial,
            base: str = base,
            stop: threading.Event = stop,
            first_ack: threading.Event = first_ack,
            in_flight: list[str] = in_flight,
        ) -> None:
            i = 0
            while not stop.is_set():
                doc_id, text = f"t{trial:02d}-{i}", f"Document {i} of trial {trial} says {i * 7}."
                in_flight[:] = [doc_id]
                try:
                    r = httpx.put(f"{base}/v1/documents/{doc_id}", json={"text": text}, timeout=60)
                except httpx.HTTPError:
                    return
                if r.status_code in (200, 201):
                    acked[doc_id] = text
                    first_ack.set()
                i += 1

        t = threading.Thread(target=writer)
        t.start()
        if trial % 2:  # half the kills land after an acknowledgement, inside a later PUT
            assert first_ack.wait(timeout=60), "no PUT was acknowledged within 60 s"
        time.sleep(rng.uniform(0.2, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        stop.set()
        t.join(timeout=60)
        cut_short += bool(in_flight and in_flight[0] not in acked)
        _check_consistent(index)
    log.warning("PUT: %d kill -9 trials, %d acknowledged documents", TRIALS, len(acked))
    assert len(acked) >= TRIALS // 2 and cut_short >= 1
    proc, base = start_server(_env(seeds, index))
    try:
        for doc_id, text in acked.items():
            r = httpx.get(f"{base}/v1/documents/{doc_id}", timeout=30)
            assert r.status_code == 200 and text in r.json()["text"], doc_id
        assert httpx.post(f"{base}/v1/ask", json={"question": "trial 3?"}, timeout=30).is_success
    finally:
        stop_server(proc)


def test_writers_and_readers_together_no_5xx_no_lost_update(dirs):
    seeds, index = dirs
    proc, base = start_server(_env(seeds, index))
    errors: list[str] = []
    last_written: dict[str, str] = {}
    written: dict[str, set[str]] = {}
    reads = [0]
    deadline = time.monotonic() + SOAK_SECONDS

    def writer(k: int) -> None:
        with httpx.Client(base_url=base, timeout=60) as c:
            v = 0
            while time.monotonic() < deadline:
                doc_id = f"w{k}-{v % 3}"
                text = f"Writer {k} version {v}: Hubei has {v} labs."
                written.setdefault(doc_id, set()).add(text)
                if v % 5 == 4:
                    r = c.delete(f"/v1/documents/{doc_id}")
                    ok = r.status_code in (204, 404)
                    if r.status_code == 204:
                        last_written[doc_id] = ""
                else:
                    r = c.put(f"/v1/documents/{doc_id}", json={"text": text})
                    ok = r.status_code in (200, 201)
                    if ok:
                        last_written[doc_id] = text
                if not ok:
                    errors.append(f"write {r.status_code} {r.text[:200]}")
                v += 1

    def reader() -> None:
        qs = ["How many labs does Hubei have?", "山西有多少座智能化煤矿？", "forging"]
        with httpx.Client(base_url=base, timeout=60) as c:
            i = 0
            while time.monotonic() < deadline:
                r = (
                    c.post("/v1/ask", json={"question": qs[i % 3]})
                    if i % 2
                    else c.get("/v1/search", params={"q": qs[i % 3]})
                )
                if r.status_code != 200:
                    errors.append(f"read {r.status_code} {r.text[:200]}")
                doc_id = f"w{i % 2}-{i % 3}"
                g = c.get(f"/v1/documents/{doc_id}")
                if g.status_code == 200 and g.json()["text"] not in written.get(doc_id, set()):
                    errors.append(f"inconsistent read of {doc_id}: {g.json()['text'][:80]}")
                elif g.status_code not in (200, 404):
                    errors.append(f"get {g.status_code}")
                reads[0] += 1
                i += 1

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(2)]
    threads += [threading.Thread(target=reader) for _ in range(3)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors[:5]
        for doc_id, text in last_written.items():
            r = httpx.get(f"{base}/v1/documents/{doc_id}", timeout=30)
            if text:
                assert r.status_code == 200 and r.json()["text"] == text, doc_id
            else:
                assert r.status_code == 404, doc_id
    finally:
        stop_server(proc)
    log.warning("soak %.0fs: %d reads, %d documents written", SOAK_SECONDS, reads[0], len(written))
    assert reads[0] > 10


def test_two_servers_and_rag_index_share_one_index(dirs):
    seeds, index = dirs
    a, base_a = start_server(_env(seeds, index))
    b, base_b = start_server(_env(seeds, index))
    try:
        r = httpx.put(
            f"{base_a}/v1/documents/shared",
            json={"text": "Jinjiang makes 30 of every 100 swimsuits in the world."},
            timeout=60,
        )
        assert r.status_code == 201
        got = httpx.get(f"{base_b}/v1/documents/shared", timeout=30)
        assert got.status_code == 200, "the other server follows the new generation"
        (seeds / "extra.txt").write_text("Dingxiang has 302 flange forging enterprises.")
        builder = subprocess.Popen([*RAG, "index"], cwd=ROOT, env=_env(seeds, index))
        while builder.poll() is None:  # readers keep answering while a build runs
            assert httpx.get(f"{base_b}/v1/search", params={"q": "forging"}, timeout=30).is_success
            time.sleep(0.05)
        assert builder.returncode == 0
        assert httpx.get(f"{base_a}/v1/documents/extra", timeout=30).status_code == 200
        assert httpx.get(f"{base_b}/v1/documents/shared", timeout=30).status_code == 200
    finally:
        stop_server(a)
        stop_server(b)


def test_api_keys_never_appear_in_logs(dirs, tmp_path):
    seeds, index = dirs
    env = _env(seeds, index, RAG_API_KEYS="sekrit-key-1", RAG_LOG_LEVEL="DEBUG")
    logs = tmp_path / "server.log"
    proc, base = start_server(env, logs=logs)
    try:
        for key in ("sekrit-key-1", "wrong-sekrit-2"):
            httpx.post(
                f"{base}/v1/ask",
                json={"question": "forging?"},
                headers={"Authorization": f"Bearer {key}"},
                timeout=30,
            )
    finally:
        stop_server(proc)
    text = logs.read_text(errors="replace")
    assert '"route": "/v1/ask"' in text, "the access log ran"
    assert "sekrit" not in text
