"""Smoke tests: every benchmark runs at a tiny size and reports its headline keys."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import index as bench_index
from bench import load as bench_load
from bench import query as bench_query
from bench import scale as bench_scale
from bench.common import record
from tests.conftest import ROOT


def test_query_bench_reports_latency_and_floor(fake_pipeline):
    figures = bench_query.run(
        fake_pipeline, ["How many coal mines?", "山西有多少座煤矿？"], rounds=2
    )
    assert {"p50_ms", "p95_ms", "floor_ratio", "embed_p50_ms", "dense_p50_ms"} <= set(figures)
    assert figures["p95_ms"] >= figures["p50_ms"] > 0
    assert figures["floor_ratio"] >= 1.0  # the pipeline embeds the question too
    assert "contended_p95_ms" not in figures  # quiet only unless asked


def test_query_bench_contended_beside_quiet(fake_pipeline):
    figures = bench_query.run(fake_pipeline, ["How many coal mines?"], rounds=1, contention=1)
    assert figures["contention_processes"] == 1
    assert figures["contended_p95_ms"] > 0 and figures["contended_p95_ms_ratio"] > 0
    assert figures["omp_wait_policy"] == "PASSIVE"


def test_index_bench_cold_and_unchanged(corpus_dir, fake_embedder):
    figures = bench_index.run(corpus_dir, [fake_embedder])
    row = figures["backends"][0]
    assert row["passages"] > 0 and row["texts_embedded"] > row["passages"]
    assert 0 <= figures["overhead_pct"] <= 100
    assert figures["reindex_unchanged_s"] < figures["cold_s"]
    assert figures["with_clauses_texts_embedded"] > figures["texts_embedded"]
    assert 0 < figures["vs_raw"] <= 1.5  # raw passages-only embedding time over the build's


def test_index_bench_builds_synthetic_documents(fake_embedder):
    figures = bench_index.run_synthetic(3, fake_embedder, sentences=6)
    assert figures["documents"] == 3 and figures["passages"] >= 3
    assert figures["texts_embedded"] >= figures["passages"] and figures["cold_s"] > 0


def test_index_bench_contended_cold_build(corpus_dir, fake_embedder):
    figures = bench_index.run(corpus_dir, [fake_embedder], contention=1)
    assert figures["contended_cold_s"] > 0 and figures["contended_cold_s_ratio"] > 0


def test_scale_bench_small_recall_and_speed():
    figures = bench_scale.run(3000, queries=20)
    assert figures["factory"] == "Flat"  # exact below 10k vectors: recall is perfect
    assert figures["recall_at_10"] == 1.0
    assert figures["lexical_passages"] == 3000 and figures["lexical_p95_ms"] > 0
    ivf = bench_scale.run_dense(12_000, queries=20)
    assert ivf["factory"].startswith("IVF")
    assert ivf["recall_at_10"] >= 0.9


@pytest.mark.slow
def test_writes_bench_puts_and_deletes_through_the_service(monkeypatch):
    from bench import writes

    monkeypatch.setenv("RAG_READER", "rules")  # the write path is measured, not answers
    figures = writes.run([1, 3], rounds=1, sentences=4, churn=2)
    small, large = figures["sizes"]
    assert (small["articles"], large["articles"]) == (1, 3)
    assert large["passages"] > small["passages"] > 0
    assert large["churn_pairs"] == 2 and "churn_rss_growth_pct" in large
    assert figures["put_p50_s"] > 0 and figures["delete_p50_s"] > 0
    assert figures["put_growth_ratio"] > 0


def test_record_appends_a_dated_row(tmp_path: Path):
    log = tmp_path / "RESULTS.md"
    record("query", {"p50_ms": 1.0, "nested": {"x": 1}}, path=log, command="rag bench query")
    record("query", {"p50_ms": 2.0}, path=log, command="rag bench query")
    rows = [r for r in log.read_text().splitlines() if r.startswith("| 20")]
    assert len(rows) == 2 and '"p50_ms": 2.0' in rows[1] and "nested" not in rows[0]


def test_figures_are_printed_even_when_the_results_log_cannot_be_written(tmp_path, capsys):
    from index.errors import ConfigError
    from rag.cli import _report

    figures = {"p50_ms": 12.5, "by_kind": {"en": 10.0}}
    with pytest.raises(ConfigError, match="figures not logged"):
        _report("query", figures, False, tmp_path / "no" / "dir" / "RESULTS.md")
    out = capsys.readouterr().out
    assert "p50_ms" in out and "by_kind" in out
    with pytest.raises(ConfigError, match="figures not logged"):
        _report("query", figures, True, tmp_path / "no" / "dir" / "RESULTS.md")
    assert json.loads(capsys.readouterr().out) == figures, "--json prints one JSON document"


def test_the_logged_command_names_the_rag_settings_it_ran_under(monkeypatch):
    from bench.common import command_line

    monkeypatch.setattr("sys.argv", ["/x/bin/rag", "bench", "query", "--rounds", "3"])
    monkeypatch.setenv("RAG_RETRIEVE_K", "20")
    monkeypatch.setenv("OTHER_SETTING", "1")
    line = command_line()
    assert "RAG_RETRIEVE_K=20 " in line and line.endswith("rag bench query --rounds 3")
    assert "OTHER_SETTING" not in line


def test_wrk_script_rotates_questions_and_sends_keys():
    script = bench_load.lua_script(["a?", "山西?"], "k-1")
    assert '[==[{"question": "山西?"}]==]' in script
    assert "Bearer k-1" in script and "WRKJSON" in script


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk not installed (.ci/run installs it)")
def test_load_bench_real_server_under_wrk(tmp_path, corpus_dir):
    import os

    env = dict(os.environ)
    env.update(
        RAG_SEEDS_DIR=str(corpus_dir),
        RAG_INDEX_DIR=str(tmp_path / "index"),
        RAG_LOG_LEVEL="WARNING",
    )
    results = tmp_path / "RESULTS.md"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "rag.cli",
            "bench",
            "load",
            "--workers",
            "1",
            "--connections",
            "2",
            "--duration",
            "2",
            "--json",
            "--results",
            str(results),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["errors"] == 0 and figures["requests"] > 0 and figures["rps"] > 0
    assert figures["server_rss_idle_mb"] > 50
    assert "bench load" in results.read_text()


def test_vectors_bench_cli_compares_both_backends(tmp_path):
    """`rag bench vectors` at a small size: both real backends, ratios, one results row."""
    import json
    import os
    import subprocess
    import sys

    pytest.importorskip("pymilvus")
    results = tmp_path / "RESULTS.md"
    done = subprocess.run(
        [sys.executable, "-m", "rag.cli", "bench", "vectors", "--vectors", "3000"]
        + ["--queries", "20", "--json", "--results", str(results)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "RAG_LOG_LEVEL": "WARNING"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout)
    assert figures["faiss_index"] == "Flat" and figures["milvus_index"] == "FLAT"
    assert figures["faiss_recall_at_10"] == 1.0  # exact
    assert figures["milvus_recall_at_10"] >= 0.99  # exact too, float ties may reorder the 10th
    assert figures["milvus_vs_faiss_p50"] > 0 and figures["milvus_ingest_s"] > 0
    assert "| vectors |" in results.read_text()
