"""The evaluation harness: run gold questions through the pipeline (or a server), score them.

``rag eval`` prints a summary (or one JSON object with ``--json``), writes a Markdown
and HTML report with ``--report DIR``, and with ``--gate`` exits 1 naming every pinned
threshold (``eval/thresholds.toml``) that the run falls below.
"""

from __future__ import annotations

import json
import logging
import time
import tomllib
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eval.gold import GoldItem, load_gold
from eval.metrics import (
    alias_in,
    answer_matches,
    exact_match,
    percentile,
    precision_recall,
    recall_at,
    reciprocal_rank,
    token_f1,
)
from index.clean import clean_text
from index.errors import RagError

log = logging.getLogger(__name__)
THRESHOLDS = Path(__file__).with_name("thresholds.toml")
KINDS = ("en", "cross", "zh", "zh-cross", "none")


@dataclass
class Outcome:
    """What the service did with one gold question."""

    id: str
    kind: str
    question: str
    expected: list[str]
    gold_doc: str | None
    answer: str | None
    confidence: float
    cited_doc: str | None
    snippet: str
    faithful: bool
    correct: bool
    exact: bool
    f1: float
    citation_ok: bool
    doc_ranks: list[str]
    evidence_hit: list[bool]
    latency_ms: float


def _evidence_in(text: str, item: GoldItem) -> bool:
    if not item.evidence:
        return False
    ev, _ = clean_text(item.evidence)
    ev = ev.strip()
    return bool(ev) and (ev in text or ev[:30] in text or ev[-30:] in text)


def score_one(
    item: GoldItem, body: dict[str, Any], latency_ms: float, doc_texts: dict[str, str] | None
) -> Outcome:
    """Score one answer in the HTTP API's JSON form against a gold item."""
    answer = body.get("answer")
    cites = body.get("citations") or []
    first = cites[0] if cites else {}
    cited_doc = first.get("doc_id")
    snippet = first.get("snippet", "")
    faithful = True
    if answer is not None and doc_texts is not None and cited_doc in doc_texts:
        faithful = (
            doc_texts[cited_doc][first["start"] : first["end"]] == answer and answer in snippet
        )
    correct = (
        (answer is None)
        if not item.answerable
        else (answer is not None and cited_doc == item.doc and answer_matches(answer, item.answers))
    )
    citation_ok = (
        item.answerable
        and cited_doc == item.doc
        and any(alias_in(a, snippet) for a in item.answers)
    )
    passages = body.get("passages") or []
    return Outcome(
        id=item.id,
        kind=item.kind,
        question=item.q,
        expected=item.answers,
        gold_doc=item.doc,
        answer=answer,
        confidence=float(body.get("confidence", 0.0)),
        cited_doc=cited_doc,
        snippet=snippet,
        faithful=faithful,
        correct=correct,
        exact=exact_match(answer, item.answers) if item.answerable else answer is None,
        f1=token_f1(answer, item.answers) if item.answerable else float(answer is None),
        citation_ok=citation_ok,
        doc_ranks=[p["doc_id"] for p in passages],
        evidence_hit=[p["doc_id"] == item.doc and _evidence_in(p["text"], item) for p in passages],
        latency_ms=latency_ms,
    )


def _mean(xs: list[float]) -> float:
    return round(sum(xs) / len(xs), 4) if xs else 0.0


def summarize(outcomes: list[Outcome]) -> dict[str, float]:
    """All figures for a set of outcomes."""
    ans = [o for o in outcomes if o.expected]
    non = [o for o in outcomes if not o.expected]
    answered = [o for o in outcomes if o.answer is not None]
    tp = sum(1 for o in non if o.answer is None)
    fp = sum(1 for o in ans if o.answer is None)
    fn = sum(1 for o in non if o.answer is not None)
    abst_p, abst_r = precision_recall(tp, fp, fn)
    ranked = [(list(dict.fromkeys(o.doc_ranks)), o.gold_doc or "") for o in ans]
    lat = [o.latency_ms for o in outcomes]
    return {
        "questions": len(outcomes),
        "accuracy": _mean([float(o.correct) for o in outcomes]),
        "answer_accuracy": _mean([float(o.correct) for o in ans]),
        "abstain_accuracy": _mean([float(o.correct) for o in non]),
        "exact_match": _mean([float(o.exact) for o in ans]),
        "f1": _mean([o.f1 for o in ans]),
        "has_ans_accuracy": _mean([float(o.correct) for o in ans]),
        "no_ans_accuracy": _mean([float(o.correct) for o in non]),
        "citation_accuracy": _mean([float(o.citation_ok) for o in ans]),
        "faithfulness": _mean([float(o.faithful) for o in answered]),
        "abstain_precision": round(abst_p, 4),
        "abstain_recall": round(abst_r, 4),
        "recall@1": _mean([recall_at(docs, gold, 1) for docs, gold in ranked]),
        "recall@5": _mean([recall_at(docs, gold, 5) for docs, gold in ranked]),
        "recall@10": _mean([recall_at(docs, gold, 10) for docs, gold in ranked]),
        "mrr": _mean([reciprocal_rank(docs, gold) for docs, gold in ranked]),
        "evidence_recall@5": _mean([float(any(o.evidence_hit[:5])) for o in ans]),
        "evidence_recall@10": _mean([float(any(o.evidence_hit[:10])) for o in ans]),
        "evidence_mrr": _mean(
            [next((1 / (k + 1) for k, h in enumerate(o.evidence_hit) if h), 0.0) for o in ans]
        ),
        "p50_ms": round(percentile(lat, 50), 2),
        "p95_ms": round(percentile(lat, 95), 2),
    }


def by_kind(outcomes: list[Outcome]) -> dict[str, dict[str, float]]:
    """Figures per question kind."""
    groups: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        groups[o.kind].append(o)
    return {k: summarize(groups[k]) for k in KINDS if k in groups}


def run_inprocess(pipeline: Any, items: list[GoldItem], progress: Any = None) -> list[Outcome]:
    """Ask every question of an in-process pipeline."""
    docs = {d: doc.text for d, doc in pipeline.store.documents.items()}
    out = []
    for item in items:
        t0 = time.perf_counter()
        ans = pipeline.ask(item.q, top_k=10, include_passages=True)
        ms = (time.perf_counter() - t0) * 1000
        out.append(score_one(item, ans.to_dict(include_passages=True), ms, docs))
        if progress:
            progress()
    return out


def run_http(
    url: str, items: list[GoldItem], api_key: str | None = None, progress: Any = None
) -> list[Outcome]:
    """Ask every question of a running server's ``/v1/ask``."""
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    out = []
    with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=60) as client:
        for item in items:
            t0 = time.perf_counter()
            try:
                r = client.post(
                    "/v1/ask", json={"question": item.q, "top_k": 10, "include_passages": True}
                )
            except httpx.HTTPError as exc:
                raise RagError(f"cannot reach {url}: {exc}") from exc
            ms = (time.perf_counter() - t0) * 1000
            if r.status_code != 200:
                raise RagError(f"{url}/v1/ask answered {r.status_code}: {r.text[:200]}")
            out.append(score_one(item, r.json(), ms, None))
            if progress:
                progress()
    return out


def check_gate(
    overall: dict[str, float], by: dict[str, dict[str, float]], path: Path = THRESHOLDS
) -> list[str]:
    """Every pinned threshold the figures fall below (or a latency above its cap)."""
    pins = tomllib.loads(path.read_text())
    failures = []
    for scope, table in pins.items():
        if scope == "public":  # pinned figures of public sets: `rag eval --dataset --gate`
            continue
        figures = overall if scope == "overall" else by.get(scope, {})
        for metric, limit in table.items():
            if metric.startswith("max_"):
                name = metric[4:]
                if figures.get(name, 0.0) > limit:
                    failures.append(f"{scope}.{name} = {figures.get(name)} is above {limit}")
            elif figures.get(metric, 0.0) < limit:
                failures.append(f"{scope}.{metric} = {figures.get(metric)} is below {limit}")
    return failures


def evaluate(
    settings: Any, *, gold: Path | None, url: str | None, baselines: bool, show_progress: bool
) -> tuple[dict[str, Any], list[Outcome]]:
    """Run the gold set and compute every figure (plus baselines when in-process)."""
    from rich.progress import Progress

    items = load_gold(gold)
    result: dict[str, Any] = {
        "gold": str(gold or "eval/gold/dev.jsonl"),
        "mode": "http" if url else "in-process",
    }
    with Progress(disable=not show_progress, transient=True) as bar:
        task = bar.add_task("asking", total=len(items) * (3 if baselines and not url else 1))

        def tick() -> None:
            bar.advance(task)

        if url:
            keys = settings.key_list()
            outcomes = run_http(url, items, keys[0] if keys else None, tick)
        else:
            from rag.factory import load_pipeline

            pipeline = load_pipeline(settings)
            outcomes = run_inprocess(pipeline, items, tick)
            if baselines:
                from rag.pipeline import Pipeline
                from rag.retrieve import Mode

                result["baselines"] = {}
                modes: tuple[tuple[str, Mode], ...] = (
                    ("bm25_only", "lexical"),
                    ("dense_only", "dense"),
                )
                for name, mode in modes:
                    base = Pipeline(
                        pipeline.store,
                        pipeline.embedder,
                        pipeline.weights,
                        retrieve_k=settings.retrieve_k,
                        rrf_k=settings.rrf_k,
                        mode=mode,
                        reader=pipeline.reader,
                        abstainer=pipeline.abstainer,
                        reader_contexts=pipeline.reader_contexts,
                        ranker=pipeline.ranker,
                    )
                    result["baselines"][name] = summarize(run_inprocess(base, items, tick))
    result["overall"] = summarize(outcomes)
    result["by_kind"] = by_kind(outcomes)
    if "baselines" in result:
        result["baselines"]["full"] = result["overall"]
    return result, outcomes


def run_cli(
    settings: Any,
    *,
    gold: Path | None,
    url: str | None,
    as_json: bool,
    report: Path | None,
    gate: bool,
    baselines: bool,
) -> int:
    """Body of ``rag eval``; returns the exit code."""
    import sys

    result, outcomes = evaluate(
        settings, gold=gold, url=url, baselines=baselines, show_progress=sys.stderr.isatty()
    )
    if report:
        from eval.report import write_report

        write_report(report, result, outcomes)
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(format_summary(result) + "\n")
    if gate:
        return report_gate(check_gate(result["overall"], result["by_kind"]))
    return 0


def report_gate(failures: list[str]) -> int:
    """Log each failed pin and say it in one line on stderr; the exit code (1 if any)."""
    import sys

    for f in failures:
        log.error("gate: %s", f)
    if failures:
        sys.stderr.write("gate failed: " + "; ".join(failures) + "\n")
        return 1
    return 0


def format_summary(result: dict[str, Any]) -> str:
    """A plain-text table of the main figures."""
    cols = [
        "accuracy",
        "answer_accuracy",
        "abstain_accuracy",
        "citation_accuracy",
        "recall@5",
        "mrr",
        "p50_ms",
        "p95_ms",
    ]
    lines = [f"{'scope':10s} " + " ".join(f"{c:>17s}" for c in cols)]
    rows = [("overall", result["overall"]), *result["by_kind"].items()]
    rows += [(f"base:{k}", v) for k, v in result.get("baselines", {}).items() if k != "full"]
    for name, fig in rows:
        lines.append(f"{name:10s} " + " ".join(f"{fig.get(c, 0):>17}" for c in cols))
    return "\n".join(lines)


def outcome_rows(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    """Outcomes as plain dicts (for reports)."""
    return [asdict(o) for o in outcomes]
