"""``rag bench query``: in-process latency of the answering pipeline, stage by stage.

The floor is the time to embed the question alone, measured in the same loop as the
full pipeline (so machine noise hits both): nothing can answer faster than it can
embed the question, and ``floor_ratio`` says how far above that the pipeline is.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from bench.common import machine, median, pct
from bench.contention import busy, side_by_side

log = logging.getLogger(__name__)
STAGES = ("analyze", "embed", "dense", "lexical", "fusion", "sentences", "extract")


def _measure(pipeline: Any, questions: list[str], rounds: int) -> dict[str, float]:
    """Per-stage latency over ``rounds`` passes; each figure is the median over rounds."""
    from rag.query import analyze

    per_round: list[dict[str, float]] = []
    for _ in range(rounds):
        total, floor = [], []
        stages: dict[str, list[float]] = {s: [] for s in STAGES}
        for q in questions:
            text = analyze(q).text
            t0 = time.perf_counter()
            pipeline.embedder.embed([text], is_query=True)
            floor.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            pipeline.answer_from(tr := pipeline.trace(q))
            total.append((time.perf_counter() - t0) * 1000)
            for s in STAGES:
                stages[s].append(tr.timings.get(s, 0.0))
        row = {
            "p50_ms": pct(total, 50),
            "p95_ms": pct(total, 95),
            "embed_only_p50_ms": pct(floor, 50),
        }
        row.update({f"{s}_p50_ms": pct(v, 50) for s, v in stages.items()})
        row["floor_ratio"] = row["p50_ms"] / row["embed_only_p50_ms"]
        per_round.append(row)
        log.info("round: p50 %.1f ms, p95 %.1f ms", row["p50_ms"], row["p95_ms"])
    return {k: round(median([r[k] for r in per_round]), 3) for k in per_round[0]}


def run(
    pipeline: Any, questions: list[str], *, rounds: int = 3, contention: int = 0
) -> dict[str, Any]:
    """Ask every question ``rounds`` times; figures are medians over rounds.

    Args:
        pipeline: an opened :class:`rag.pipeline.Pipeline`.
        questions: the questions to ask (the dev gold set by default in the CLI).
        rounds: repeated passes; each reports its own p50/p95, the medians are returned.
        contention: busy CPU-bound processes to run beside a second, contended measurement
            (0 = quiet only); its figures come as ``contended_*`` with their ratios to quiet.
    """
    pipeline.warm_up()
    figures: dict[str, Any] = dict(_measure(pipeline, questions, rounds))
    if contention:
        with busy(contention):
            contended = _measure(pipeline, questions, rounds)
        figures.update(
            side_by_side(figures, contended, ("p50_ms", "p95_ms", "embed_only_p50_ms"), contention)
        )
    figures.update(
        questions=len(questions),
        rounds=rounds,
        embedder=pipeline.embedder.name,
        threads=os.environ.get("OMP_NUM_THREADS", ""),
        omp_wait_policy=os.environ.get("OMP_WAIT_POLICY", ""),
        targets={"p50_ms": 30, "p95_ms": 60, "floor_ratio": 2.5, "contended_p95_ms_ratio": 4},
        **machine(),
    )
    return figures
