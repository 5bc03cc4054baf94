"""``rag eval --dataset``: score a public extractive-QA split as the service would answer it.

The split's articles (contexts grouped by title, in the context language of each asked
direction) become a temporary corpus and index; every question is asked through the real
pipeline against that open corpus, and scored with the official normalisations (SQuAD
v1.1 for English answers, CMRC 2018 for Chinese ones). Reported per direction
(``question language > article language``): EM, F1, answered rate, evidence hit@1 (the
first evidence sentence holds a gold answer), read hit (a passage the reader read holds
one), F1 by question word, and the reader alone with the gold paragraph given, so retrieval
and reading errors separate. The typed-span
extractor runs over the same index as the baseline.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import tempfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eval.metrics import qa_scores
from index.errors import ConfigError

__all__ = ["load_split", "run_dataset", "question_word"]

log = logging.getLogger(__name__)

# For reporting F1 by question style only; nothing answers by these.
_WORDS_EN = (
    ("how many", r"\bhow (many|much)\b"),
    ("who", r"\bwho(m|se)?\b"),
    ("when", r"\bwhen\b|\bwhat (year|date|time|day|month|century)\b"),
    ("where", r"\bwhere\b"),
    ("why", r"\bwhy\b"),
    ("which", r"\bwhich\b"),
    ("how", r"\bhow\b"),
    ("what", r"\bwhat\b"),
)
_WORDS_ZH = (
    ("how many", r"多少|几|幾"),
    ("who", r"谁|誰"),
    ("when", r"什么时候|什麼時候|何时|何時|哪一?年|哪一天|何年|几月|幾月"),
    ("where", r"哪里|哪裡|哪儿|何处|何處|什么地方|什麼地方"),
    ("why", r"为什么|為什麼|为何|為何"),
    ("which", r"哪"),
    ("how", r"如何|怎样|怎樣|怎么|怎麼"),
    ("what", r"什么|什麼|何"),
)


def question_word(question: str) -> str:
    """The question's style (who, what, when, ...), in either language; ``other`` if none."""
    q = question.lower()
    for name, pattern in _WORDS_ZH if re.search(r"[\u4e00-\u9fff]", q) else _WORDS_EN:
        if re.search(pattern, q):
            return name
    return "other"


@dataclass(frozen=True)
class Row:
    """One public question."""

    id: str
    title: str
    context: str
    question: str
    answers: tuple[str, ...]
    lang: str
    question_lang: str

    @property
    def direction(self) -> str:
        """``question language > article language``."""
        return f"{_short(self.question_lang)}>{_short(self.lang)}"


def _short(lang: str) -> str:
    return "zh" if lang.startswith("zh") else lang


def load_split(path: Path, split: str) -> list[Row]:
    """The answerable rows of one split of a qa-data JSONL file.

    Raises:
        ConfigError: the file is missing, is not JSONL, or has no row in that split.
    """
    if not path.is_file():
        raise ConfigError(f"dataset {path} does not exist")
    rows = []
    n = 0
    try:
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                n += 1
                if not line.strip():
                    continue
                r = json.loads(line)
                if r.get("split") != split or not r.get("answers"):
                    continue
                rows.append(
                    Row(
                        r["id"],
                        r["title"],
                        r["context"],
                        r["question"],
                        tuple(a["text"] for a in r["answers"]),
                        r["lang"],
                        r.get("question_lang", r["lang"]),
                    )
                )
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"{path} line {n}: not a qa-data row ({exc})") from exc
    if not rows:
        raise ConfigError(f"{path} has no answerable rows in split {split!r}")
    return rows


def _doc_id(title: str, lang: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-")[:40] or "doc"
    return f"{slug}-{hashlib.sha1((title + lang).encode()).hexdigest()[:8]}"


def write_corpus(rows: list[Row], folder: Path) -> dict[str, str]:
    """One article file per (title, language): its title line, then its contexts in order."""
    articles: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in rows:
        ctxs = articles[(r.title, r.lang)]
        if r.context not in ctxs:
            ctxs.append(r.context)
    folder.mkdir(parents=True, exist_ok=True)
    ids = {}
    for (title, lang), ctxs in articles.items():
        doc_id = _doc_id(title, lang)
        (folder / f"{doc_id}.txt").write_text(title + "\n\n" + "\n\n".join(ctxs) + "\n")
        ids[f"{title}\x00{lang}"] = doc_id
    return ids


def _score(pred: str | None, row: Row) -> tuple[float, float]:
    return qa_scores(pred, list(row.answers), row.lang)


def _holds_answer(text: str, row: Row) -> bool:
    return any(qa_scores(text, [a], row.lang)[0] or a in text for a in row.answers)


def _summary(items: list[dict[str, Any]]) -> dict[str, Any]:
    if not items:
        return {}
    out: dict[str, Any] = {
        "questions": len(items),
        "em": round(float(np.mean([i["em"] for i in items])), 4),
        "f1": round(float(np.mean([i["f1"] for i in items])), 4),
        "answered": round(float(np.mean([i["answered"] for i in items])), 4),
    }
    if "evidence_hit1" in items[0]:
        out["evidence_hit@1"] = round(float(np.mean([i["evidence_hit1"] for i in items])), 4)
    if "read_hit" in items[0]:
        out["read_hit"] = round(float(np.mean([i["read_hit"] for i in items])), 4)
    if "gold_f1" in items[0]:
        out["gold_paragraph_f1"] = round(float(np.mean([i["gold_f1"] for i in items])), 4)
    words: dict[str, list[float]] = defaultdict(list)
    for i in items:
        words[i["word"]].append(i["f1"])
    out["f1_by_word"] = {w: round(float(np.mean(v)), 3) for w, v in sorted(words.items())}
    return out


def run_dataset(
    path: Path,
    *,
    split: str,
    directions: list[str] | None,
    limit: int | None,
    open_corpus: Callable[[list[Row], Path], Any],
    baseline: bool = True,
    seed: int = 13,
    progress: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Score a split, direction by direction.

    Args:
        path: a qa-data JSONL file.
        split: ``valid`` (or ``train``).
        directions: e.g. ``["en>zh"]``; default every direction the file has.
        limit: at most this many questions per direction (a seeded sample); the corpus is
            then the articles of the sampled questions.
        open_corpus: ``open_corpus(rows, folder)`` indexes the rows' articles under the
            folder and returns the service's pipeline over them.
        baseline: also score the typed-span extractor over the same index.
        seed: for the sample.
        progress: called after each question.
    """
    rows = load_split(path, split)
    by_dir: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        by_dir[r.direction].append(r)
    chosen = directions or sorted(by_dir)
    unknown = [d for d in chosen if d not in by_dir]
    if unknown:
        raise ConfigError(f"no direction {unknown[0]!r} in {path.name}: it has {sorted(by_dir)}")
    result: dict[str, Any] = {"dataset": path.name, "split": split, "directions": {}}
    with tempfile.TemporaryDirectory(prefix="rag-eval-dataset-") as tmp:
        for direction in chosen:
            items = by_dir[direction]
            if limit and len(items) > limit:
                items = random.Random(seed).sample(items, limit)
            folder = Path(tmp) / direction.replace(">", "-")
            # the open corpus: every article of the split in this direction's article language
            langs = {r.lang for r in items}
            corpus_rows = [r for r in rows if r.lang in langs] if not limit else items
            log.info(
                "%s %s: indexing the articles of %d rows", path.name, direction, len(corpus_rows)
            )
            pipeline = open_corpus(corpus_rows, folder)
            learned, rules = [], []
            for r in items:
                tr = pipeline.trace(r.question)
                ans = pipeline.answer_from(tr, top_k=5)
                em, f1 = _score(ans.text, r)
                first = ans.citations[0].snippet if ans.citations else ""
                item = {
                    "em": em,
                    "f1": f1,
                    "answered": float(ans.text is not None),
                    "evidence_hit1": float(_holds_answer(first, r)),
                    "word": question_word(r.question),
                }
                if pipeline.reader is not None:
                    from rag.reader import Context

                    read = pipeline.contexts(tr.sentences, tr.hits)
                    item["read_hit"] = float(any(_holds_answer(c.text, r) for c in read))
                    reading = pipeline.reader.run(
                        r.question, [Context("", 0, len(r.context), r.context, 0)]
                    )
                    gold_pred = reading.spans[0].text if reading.spans else None
                    item["gold_f1"] = _score(gold_pred, r)[1]
                learned.append(item)
                if baseline:
                    base = _baseline(pipeline).ask(r.question, top_k=5)
                    b_em, b_f1 = _score(base.text, r)
                    rules.append(
                        {
                            "em": b_em,
                            "f1": b_f1,
                            "answered": float(base.text is not None),
                            "word": question_word(r.question),
                        }
                    )
                if progress:
                    progress()
            entry = {"reader": _summary(learned)}
            if baseline:
                entry["baseline_rules"] = _summary(rules)
            result["directions"][direction] = entry
            log.info("%s %s: %s", path.name, direction, json.dumps(entry["reader"]))
    return result


def _baseline(pipeline: Any) -> Any:
    """The typed-span extractor over the same index and embedder (built once)."""
    cached = getattr(pipeline, "_rules_baseline", None)
    if cached is None:
        from rag.pipeline import Pipeline

        cached = Pipeline(
            pipeline.store,
            pipeline.embedder,
            pipeline.weights,
            retrieve_k=pipeline.retrieve_k,
        )
        pipeline._rules_baseline = cached
    return cached


def corpus_pipeline(settings: Any, rows: list[Row], folder: Path) -> Any:
    """Index the rows' articles under ``folder`` and open the service's pipeline over them."""
    from rag.factory import load_pipeline, run_index

    write_corpus(rows, folder / "seeds")
    local = settings.model_copy(
        update={
            "seeds_dir": folder / "seeds",
            "index_dir": folder / "index",
            "data_dir": folder / "data",  # never the user's API-written documents
        }
    )
    run_index(local, show_progress=False)
    return load_pipeline(local)


def run_cli(
    settings: Any,
    dataset: Path,
    *,
    split: str,
    directions: list[str] | None,
    limit: int | None,
    baseline: bool,
    as_json: bool,
    gate: bool,
) -> int:
    """Body of ``rag eval --dataset``; returns the exit code."""
    import sys
    import time
    import tomllib

    from rich.progress import Progress

    from eval.harness import THRESHOLDS, report_gate

    terminal = sys.stderr.isatty()
    asked, last = [0], [time.monotonic()]

    def tick() -> None:
        asked[0] += 1
        if terminal:
            bar.advance(task)
        elif time.monotonic() - last[0] >= 10:
            last[0] = time.monotonic()
            log.info("asked %d questions", asked[0])

    with Progress(disable=not terminal, transient=True) as bar:
        task = bar.add_task("asking", total=None)
        result = run_dataset(
            dataset,
            split=split,
            directions=directions,
            limit=limit,
            open_corpus=lambda rows, folder: corpus_pipeline(settings, rows, folder),
            baseline=baseline,
            progress=tick,
        )
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(format_public(result) + "\n")
    if not gate:
        return 0
    pins = tomllib.loads(THRESHOLDS.read_text()).get("public", {})
    failures = []
    for key, table in pins.items():
        name, _, direction = key.partition(":")
        got = (
            result["directions"].get(direction, {}).get("reader") if name == dataset.name else None
        )
        if got is None:
            continue
        for metric, floor in table.items():
            if got.get(metric, 0.0) < floor:
                failures.append(f"{key}.{metric} = {got.get(metric)} is below {floor}")
    return report_gate(failures)


def format_public(result: dict[str, Any]) -> str:
    """A plain-text table: one line per direction and reader."""
    cols = ["questions", "em", "f1", "answered", "evidence_hit@1", "read_hit", "gold_paragraph_f1"]
    lines = [
        f"{result['dataset']} ({result['split']})",
        f"{'direction':10s} {'reader':15s} " + " ".join(f"{c:>17s}" for c in cols),
    ]
    for direction, entry in result["directions"].items():
        for who, fig in entry.items():
            lines.append(
                f"{direction:10s} {who:15s} " + " ".join(f"{fig.get(c, ''):>17}" for c in cols)
            )
        lines.append(
            f"{'':10s} f1 by word: {json.dumps(entry['reader'].get('f1_by_word', {}), ensure_ascii=False)}"
        )
    return "\n".join(lines)
