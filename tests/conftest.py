"""Shared fixtures: a small corpus, a deterministic fake embedder, and indexes built from them."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from index.threads import configure as configure_threads

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(__file__).parent / "data" / "corpus"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
configure_threads()  # as every entry point does: idle OpenMP threads sleep, pools fit the cores


class FakeEmbedder:
    """Deterministic embedder: a vector seeded from a hash of each word, summed and normalised.

    Texts that share words get similar vectors, so retrieval tests are meaningful.
    """

    name = "fake:hash"
    version = "1"
    dim = 64

    def warm_up(self) -> None:
        pass

    def embed(self, texts: list[str], *, is_query: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split() or [t]:
                seed = int(hashlib.sha1(w.encode()).hexdigest()[:8], 16)
                out[i] += np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-9)


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    target = tmp_path / "seeds"
    shutil.copytree(CORPUS, target)
    return target


@pytest.fixture
def fake_index(tmp_path: Path, corpus_dir: Path, fake_embedder: FakeEmbedder) -> Path:
    from index.build import build_index

    index_dir = tmp_path / "index"
    build_index(corpus_dir, index_dir, fake_embedder, chunk_tokens=64, overlap_tokens=16)  # type: ignore[arg-type]
    return index_dir


@pytest.fixture
def fake_pipeline(fake_index: Path, fake_embedder: FakeEmbedder):
    from rag.pipeline import Pipeline

    return Pipeline.open(fake_index, fake_embedder)  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    env: dict[str, str], *, logs: Path | None = None, timeout: float = 120
) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``rag serve`` on a free port and wait for ``/readyz``; returns (process, base URL).

    With ``logs`` the server's whole output goes to that file (else stderr is kept for the
    error raised when the server dies before it is ready).
    """
    import httpx

    port = free_port()
    sink = open(logs, "wb") if logs else None  # noqa: SIM115 - the child owns it
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=sink or subprocess.DEVNULL,
        stderr=subprocess.STDOUT if sink else subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = logs.read_bytes() if logs else proc.stderr.read() if proc.stderr else b""
            raise RuntimeError(out.decode(errors="replace")[-2000:])
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not become ready")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """Ask the server to stop; kill it if it does not within 20 s."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
