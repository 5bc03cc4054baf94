"""Markdown and self-contained HTML reports of an evaluation run (charts are inline SVG)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from eval.harness import Outcome


def _bars(values: dict[str, float], width: int = 480, height: int = 200, title: str = "") -> str:
    n = max(1, len(values))
    bw = width / n
    parts = [
        f'<svg width="{width}" height="{height + 40}" role="img" aria-label="{html.escape(title)}">'
    ]
    for i, (name, v) in enumerate(values.items()):
        h = max(0.0, min(1.0, v)) * height
        x = i * bw + 8
        parts.append(
            f'<rect x="{x:.1f}" y="{height - h:.1f}" width="{bw - 16:.1f}" height="{h:.1f}" fill="#3b82f6"/>'
        )
        parts.append(
            f'<text x="{x + (bw - 16) / 2:.1f}" y="{height - h - 4:.1f}" font-size="12" text-anchor="middle">{v:.2f}</text>'
        )
        parts.append(
            f'<text x="{x + (bw - 16) / 2:.1f}" y="{height + 16}" font-size="12" text-anchor="middle">{html.escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _histogram(values: list[float], bins: int = 20, width: int = 480, height: int = 160) -> str:
    if not values:
        return "<p>no latencies</p>"
    lo, hi = min(values), max(values)
    step = (hi - lo) / bins or 1.0
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int((v - lo) / step))] += 1
    top = max(counts)
    bw = width / bins
    parts = [
        f'<svg width="{width}" height="{height + 30}" role="img" aria-label="latency histogram">'
    ]
    for i, c in enumerate(counts):
        h = c / top * height
        parts.append(
            f'<rect x="{i * bw:.1f}" y="{height - h:.1f}" width="{bw - 2:.1f}" height="{h:.1f}" fill="#10b981"/>'
        )
    parts.append(f'<text x="0" y="{height + 20}" font-size="12">{lo:.1f} ms</text>')
    parts.append(
        f'<text x="{width}" y="{height + 20}" font-size="12" text-anchor="end">{hi:.1f} ms</text></svg>'
    )
    return "".join(parts)


def calibration(outcomes: list[Outcome], bins: int = 5) -> list[tuple[float, float, int]]:
    """(mean confidence, accuracy, count) per confidence bin of the answered questions."""
    answered = [o for o in outcomes if o.answer is not None]
    out = []
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        group = [
            o
            for o in answered
            if lo <= o.confidence < hi or (b == bins - 1 and o.confidence == 1.0)
        ]
        if group:
            out.append(
                (
                    sum(o.confidence for o in group) / len(group),
                    sum(o.correct for o in group) / len(group),
                    len(group),
                )
            )
    return out


def _calibration_svg(points: list[tuple[float, float, int]], size: int = 200) -> str:
    parts = [
        f'<svg width="{size + 40}" height="{size + 40}" role="img" aria-label="calibration curve">',
        f'<line x1="20" y1="{size + 20}" x2="{size + 20}" y2="20" stroke="#999" stroke-dasharray="4"/>',
    ]
    pts = " ".join(f"{20 + c * size:.1f},{20 + (1 - a) * size:.1f}" for c, a, _ in points)
    parts.append(f'<polyline points="{pts}" fill="none" stroke="#ef4444" stroke-width="2"/>')
    for c, a, n in points:
        parts.append(
            f'<circle cx="{20 + c * size:.1f}" cy="{20 + (1 - a) * size:.1f}" r="{3 + min(n, 30) / 6:.1f}" fill="#ef4444"/>'
        )
    parts.append(f'<text x="20" y="{size + 36}" font-size="11">confidence →</text></svg>')
    return "".join(parts)


def _failures(outcomes: list[Outcome]) -> list[Outcome]:
    return [o for o in outcomes if not o.correct]


def write_report(
    directory: Path, result: dict[str, Any], outcomes: list[Outcome]
) -> tuple[Path, Path]:
    """Write ``report.md``, ``report.html`` and ``result.json`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    kinds = result["by_kind"]
    md = [
        "# Evaluation report",
        "",
        f"Gold: `{result['gold']}` ({result['mode']})",
        "",
        "| scope | accuracy | answer acc. | abstain acc. | citation acc. | recall@5 | MRR | p50 ms | p95 ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    rows = [("overall", result["overall"]), *kinds.items()]
    rows += [(f"baseline {k}", v) for k, v in result.get("baselines", {}).items() if k != "full"]
    for name, f in rows:
        md.append(
            f"| {name} | {f['accuracy']} | {f['answer_accuracy']} | {f['abstain_accuracy']} | "
            f"{f['citation_accuracy']} | {f['recall@5']} | {f['mrr']} | {f['p50_ms']} | {f['p95_ms']} |"
        )
    fails = _failures(outcomes)
    md += [
        "",
        f"## Failures ({len(fails)})",
        "",
        "| id | kind | question | expected | got | cited doc |",
        "|---|---|---|---|---|---|",
    ]
    for o in fails:
        md.append(
            f"| {o.id} | {o.kind} | {o.question.replace('|', '/')} | {' / '.join(o.expected[:3]) or '(abstain)'} | "
            f"{o.answer if o.answer is not None else '(abstained)'} | {o.cited_doc or ''} |"
        )
    md_path = directory / "report.md"
    md_path.write_text("\n".join(md) + "\n", encoding="utf-8")

    acc = {k: v["accuracy"] for k, v in kinds.items()}
    table = "".join(
        f"<tr><td>{html.escape(o.id)}</td><td>{o.kind}</td><td>{html.escape(o.question)}</td>"
        f"<td>{html.escape(' / '.join(o.expected[:3]) or '(abstain)')}</td>"
        f"<td>{html.escape(o.answer if o.answer is not None else '(abstained)')}</td>"
        f"<td>{html.escape(o.cited_doc or '')}</td></tr>"
        for o in fails
    )
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Evaluation report</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse;width:100%}}td,th{{border:1px solid #ddd;padding:4px;font-size:13px;text-align:left}}</style>
</head><body><h1>Evaluation report</h1><p>Gold: <code>{html.escape(result["gold"])}</code> ({result["mode"]})</p>
<h2>Accuracy per kind</h2>{_bars(acc, title="accuracy per kind")}
<h2>Latency</h2><p>p50 {result["overall"]["p50_ms"]} ms, p95 {result["overall"]["p95_ms"]} ms</p>{_histogram([o.latency_ms for o in outcomes])}
<h2>Confidence calibration (answered questions)</h2>{_calibration_svg(calibration(outcomes))}
<h2>Figures</h2><pre>{html.escape(json.dumps({k: result[k] for k in ("overall", "by_kind", "baselines") if k in result}, indent=1))}</pre>
<h2>Failures ({len(fails)})</h2><table><tr><th>id</th><th>kind</th><th>question</th><th>expected</th><th>got</th><th>cited doc</th></tr>{table}</table>
</body></html>"""
    html_path = directory / "report.html"
    html_path.write_text(page, encoding="utf-8")
    (directory / "result.json").write_text(
        json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8"
    )
    return md_path, html_path
