"""Fit the span ranker (:mod:`rag.rank`) on questions neither the reader nor it was tuned on.

Data, each question through the real pipeline reading ``CONTEXTS`` passages:

- answerable: the public valid split's questions (every question language) over one
  index of all its articles in both languages, as a user's mixed corpus would hold them;
  a span is right when it scores F1 >= 0.5 against a gold answer of the question in its
  script (the parallel articles' answers are all gold);
- unanswerable: a sample of the same questions over the bundled corpus, which holds none
  of their articles (every span is wrong), and, the harder kind, questions asked of their
  own article with the paragraph that answers them (and its translation) left out; all
  weighted so that unanswerable questions are the dev set's share of ``none`` questions;
- more answerable questions from one-language public sets (the valid split of CMRC 2018 by
  default), each over an index of its own articles, as ``rag eval --dataset`` asks them:
  other question styles and answer lengths than XQuAD's (CMRC's answers are phrases of
  a dozen characters and more, where XQuAD's Chinese ones are a few);
- the dev gold set over the bundled corpus.

Two logistic models (:class:`rag.rank.SpanRanker`). The ranker: one row per span of the
answerable public questions that have a right span (a question's rows share one unit of
weight), right against wrong; the dev set never trains it. The abstainer: one row per
question, the ranker's choice, right or not, over the parallel set's, unanswerable and dev
questions (the dev set's ``none`` kind is unanswerable too; the one-language sets' are
left out, :data:`OWN_ARTICLES`); its threshold maximises ``right -
WRONG_ANSWER_COST * wrong``. Figures are held out: dev in 5 folds (ranker fitted without
dev, abstainer without the fold), public in folds by article. The number of passages read
is chosen among 1 to ``CONTEXTS`` by the mean of the two.
"""

from __future__ import annotations

import json
import logging
import random
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from eval.calibrate import NONE_SHARE, RIGHT_F1, best_threshold, fit_logistic
from eval.gold import load_gold
from eval.metrics import answer_matches, qa_scores
from eval.public import corpus_pipeline, load_split
from index.errors import ConfigError
from index.textnorm import is_cjk
from rag.abstain import WRONG_ANSWER_COST
from rag.factory import LOG_EVERY_S
from rag.rank import (
    SPAN_FEATURES,
    TOP_SPANS,
    SpanEvidence,
    abstain_features,
    ranker_key,
    span_features,
)

__all__ = [
    "CONTEXTS",
    "check_columns",
    "collect",
    "fit_abstainer",
    "fit_and_report",
    "fit_ranker",
    "run_span_calibration",
]

log = logging.getLogger(__name__)
CONTEXTS = 6  # passages read per question while collecting; the fit may choose fewer
CONTEXT_CHOICES = tuple(range(1, CONTEXTS + 1))  # the numbers of passages read it chooses among
# Spans kept per question while collecting: enough that the first TOP_SPANS of the passages
# a fit reads are all there, as the pipeline ranks them reading only those passages.
COLLECT_SPANS = 80
# 4: other-language evidence sentences ranked with the question's cross vector
# (Pipeline.cross_vector); 3: other-language passages read in their own senses
# (rag.augment); 2: COLLECT_SPANS spans and the question; 1: the first 20 spans of 6 passages
RECORDS_VERSION = 4
UNANSWERABLE = 150  # public questions asked of the bundled corpus
ON_TOPIC_ROUNDS = 2  # corpora with paragraphs left out (unanswerable questions on topic)
# Source of the records of the one-language sets: they fit the ranker, not the abstainer
# (held out, with them in its fit it answered right less on three XQuAD directions and on
# CMRC itself: see the README).
OWN_ARTICLES = "own-articles"
PUBLIC_FOLDS = 12  # folds by article of the public figures (a set of 6 articles: one each)


def _is_zh(text: str) -> bool:
    return any(is_cjk(c) for c in text)


def _right_public(text: str, answers: set[str]) -> bool:
    same = [a for a in answers if _is_zh(a) == _is_zh(text)] or sorted(answers)
    return qa_scores(text, same, "zh" if _is_zh(text) else "en")[1] >= RIGHT_F1


class _Asked:
    """Counts the questions asked while collecting; a log line every ``LOG_EVERY_S`` seconds.

    A collection runs for half an hour; these lines show it moving between its stages.
    """

    def __init__(self) -> None:
        self.count = 0
        self.start = self.last = time.monotonic()

    def tick(self) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self.last >= LOG_EVERY_S:
            self.last = now
            log.info("span ranker data: %d questions asked (%.0f s)", self.count, now - self.start)


_asked = _Asked()


def _row(pipeline: Any, question: str) -> dict[str, Any]:
    _asked.tick()
    tr = pipeline.trace(question)
    spans = pipeline.span_evidence(tr, top=COLLECT_SPANS)
    return {
        "q": question,
        "spans": [asdict(s) for s in spans],
        "docs": [sp.doc_id for sp in tr.reading.spans[: len(spans)]],
        "nulls": list(tr.reading.null_scores),
        "null_contexts": list(tr.reading.window_contexts),
    }


def collect(
    settings: Any, dataset: Path, *, extra: tuple[Path, ...] = (), seed: int = 13
) -> list[dict[str, Any]]:
    """Ask every question of the kinds in the module doc; one record per question.

    ``dataset``: the parallel set (XQuAD-half); ``extra``: one-language sets asked over
    their own articles.
    """
    from rag.factory import load_pipeline

    local = settings.model_copy(update={"reader_contexts": CONTEXTS})
    rows = load_split(dataset, "valid")
    questions: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:  # parallel rows share the id before the language suffix
        key = (r.id.split("-")[0], r.question_lang)
        q = questions.setdefault(key, {"q": r.question, "title": r.title, "answers": set()})
        q["answers"].update(r.answers)
    records: list[dict[str, Any]] = []
    bundled = load_pipeline(local)
    for item in load_gold(None):
        rec = _row(bundled, item.q)
        rec["labels"] = [
            bool(item.answerable and d == item.doc and answer_matches(s["text"], item.answers))
            for s, d in zip(rec["spans"], rec["docs"], strict=True)
        ]
        records.append({"source": "dev", "kind": item.kind, **rec})
    with tempfile.TemporaryDirectory(prefix="rag-spanrank-") as tmp:
        mixed = corpus_pipeline(local, rows, Path(tmp) / "mixed")
        for (_, lang), q in sorted(questions.items()):
            rec = _row(mixed, q["q"])
            rec["labels"] = [_right_public(s["text"], q["answers"]) for s in rec["spans"]]
            records.append({"source": "public", "title": q["title"], "qlang": lang, **rec})
        log.info("span ranker data: %d public questions over their articles", len(questions))
    keys = sorted(questions)
    random.Random(seed).shuffle(keys)
    for key in keys[:UNANSWERABLE]:
        q = questions[key]
        rec = _row(bundled, q["q"])
        rec["labels"] = [False] * len(rec["spans"])
        records.append({"source": "unanswerable", "title": q["title"], "qlang": key[1], **rec})
    for k in range(ON_TOPIC_ROUNDS):  # each round leaves out other paragraphs
        records += collect_on_topic(local, rows, questions, seed=seed + k)
    records += collect_cross(local, rows)
    for path in extra:
        records += collect_own_articles(local, path)
    for rec in records:  # the dense similarities are this embedder's
        rec["embedder"] = bundled.embedder.name
    return records


def collect_cross(settings: Any, rows: list[Any]) -> list[dict[str, Any]]:
    """Cross-lingual questions over a corpus in the other language only.

    In a mixed corpus the article in the question's language is nearly always there and
    right, so the ranker learns to prefer it; a user's corpus often holds one language
    only (an English question over Chinese news). One record per cross-direction row,
    the corpus being every article in that row's article language.
    """
    out: list[dict[str, Any]] = []
    cross = sorted({r.direction for r in rows if len(set(r.direction.split(">"))) == 2})
    with tempfile.TemporaryDirectory(prefix="rag-spanrank-") as tmp:
        for direction in cross:
            items = [r for r in rows if r.direction == direction]
            langs = {r.lang for r in items}
            corpus = [r for r in rows if r.lang in langs]
            pipeline = corpus_pipeline(settings, corpus, Path(tmp) / direction.replace(">", "-"))
            for r in items:
                rec = _row(pipeline, r.question)
                rec["labels"] = [_right_public(s["text"], set(r.answers)) for s in rec["spans"]]
                out.append(
                    {
                        "source": "public",
                        "title": r.title,
                        "qlang": r.question_lang,
                        "direction": direction,
                        **rec,
                    }
                )
    log.info("span ranker data: %d cross-lingual questions over one-language corpora", len(out))
    return out


def collect_own_articles(settings: Any, dataset: Path) -> list[dict[str, Any]]:
    """Every valid question of a public set over an index of that split's articles."""
    rows = load_split(dataset, "valid")
    out: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="rag-spanrank-") as tmp:
        pipeline = corpus_pipeline(settings, rows, Path(tmp) / dataset.stem)
        for r in rows:
            rec = _row(pipeline, r.question)
            rec["labels"] = [_right_public(s["text"], set(r.answers)) for s in rec["spans"]]
            out.append(
                {"source": OWN_ARTICLES, "title": r.title, "qlang": r.question_lang}
                | {"direction": dataset.stem}
                | rec
            )
    log.info("span ranker data: %d %s questions over their articles", len(out), dataset.stem)
    return out


def collect_on_topic(
    settings: Any,
    rows: list[Any],
    questions: dict[tuple[str, str], dict[str, Any]],
    *,
    seed: int = 13,
    share: float = 0.4,
) -> list[dict[str, Any]]:
    """Unanswerable questions about an article the corpus holds, the hard kind.

    ``share`` of the paragraphs are left out of the corpus (with their translations); the
    questions about them are asked of the rest of their own article. A question whose
    gold answer still appears in a kept paragraph of its title is skipped (it may be
    answerable after all).
    """
    by_base: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        by_base[r.id.split("-")[0]].append(r)
    paragraphs = sorted({r.context for r in rows if r.lang == "en"})
    dropped_en = set(random.Random(seed).sample(paragraphs, int(share * len(paragraphs))))
    dropped_bases = {
        b for b, rs in by_base.items() if any(r.context in dropped_en for r in rs if r.lang == "en")
    }
    dropped = {r.context for b in dropped_bases for r in by_base[b]}
    kept = [r for r in rows if r.context not in dropped]
    kept_text: dict[str, str] = defaultdict(str)
    for r in kept:
        if r.context not in kept_text[r.title]:
            kept_text[r.title] += "\n" + r.context
    out: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="rag-spanrank-") as tmp:
        pipeline = corpus_pipeline(settings, kept, Path(tmp) / "on-topic")
        for (base, lang), q in sorted(questions.items()):
            if base not in dropped_bases or any(a in kept_text[q["title"]] for a in q["answers"]):
                continue
            rec = _row(pipeline, q["q"])
            rec["labels"] = [False] * len(rec["spans"])
            out.append(
                {
                    "source": "unanswerable",
                    "on_topic": seed,
                    "title": q["title"],
                    "qlang": lang,
                }
                | rec
            )
    log.info("span ranker data: %d on-topic unanswerable questions", len(out))
    return out


def _matrix(
    rec: dict[str, Any], contexts: int, top: int = TOP_SPANS, drop: frozenset[str] = frozenset()
) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of the spans the ranker sees reading ``contexts`` passages.

    The pipeline ranks the ``top`` best spans of the passages it reads; the spans of one
    passage do not depend on the others read, so they are the first ``top`` of the
    collected spans found in those passages. Columns named in ``drop`` are zeros (an
    ablation: a constant column gets no weight).
    """
    known = set(SpanEvidence.__dataclass_fields__)
    spans = [SpanEvidence(**{k: v for k, v in s.items() if k in known}) for s in rec["spans"]]
    keep = [i for i, s in enumerate(spans) if s.context_rank < contexts][:top]
    owners = rec.get("null_contexts") or [0] * len(rec["nulls"])
    nulls = [n for n, c in zip(rec["nulls"], owners, strict=True) if c < contexts]
    x = span_features([spans[i] for i in keep], nulls)
    if drop and len(x):
        x[:, [SPAN_FEATURES.index(name) for name in drop]] = 0.0
    return x, np.array([rec["labels"][i] for i in keep], dtype=bool)


def _standardised_fit(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, float]:
    """Logistic fit on standardised columns, returned in the raw columns' scale.

    Labels of one class (every chosen span right, as reading one passage may give on a
    small set) fit a constant: certain of that class.
    """
    if y.all() or not y.any():
        return np.zeros(x.shape[1]), 30.0 if y.all() else -30.0
    mu, sd = x.mean(0), x.std(0) + 1e-9
    coef, icpt = fit_logistic((x - mu) / sd, y, weight=w * len(w) / w.sum())
    coef = coef / sd
    return coef, icpt - float(coef @ mu)


def fit_ranker(
    records: list[dict[str, Any]], contexts: int, drop: frozenset[str] = frozenset()
) -> tuple[np.ndarray, float]:
    """Span scoring: right spans against the others, over questions that have a right one."""
    xs, ys, ws = [], [], []
    for rec in records:
        x, y = _matrix(rec, contexts, drop=drop)
        if len(x) and y.any():
            xs.append(x)
            ys.append(y)
            ws.append(np.full(len(y), 1.0 / len(y)))  # one unit of weight a question
    return _standardised_fit(np.vstack(xs), np.concatenate(ys), np.concatenate(ws))


def _chosen(
    rec: dict[str, Any],
    ranker: tuple[np.ndarray, float],
    contexts: int,
    drop: frozenset[str] = frozenset(),
) -> tuple[np.ndarray, bool] | None:
    """The abstention features of the ranker's choice, and whether it is right."""
    x, y = _matrix(rec, contexts, drop=drop)
    if not len(x):
        return None
    z = x @ ranker[0] + ranker[1]
    i = int(np.argmax(z))
    return abstain_features(x, z, i), bool(y[i])


def fit_abstainer(
    records: list[dict[str, Any]],
    ranker: tuple[np.ndarray, float],
    contexts: int,
    drop: frozenset[str] = frozenset(),
) -> tuple[np.ndarray, float, float]:
    """Whether the chosen span is right: ``(coef, intercept, threshold)``.

    Unanswerable public questions are weighted so that, with the dev set's ``none``
    questions, they make up the dev set's share of unanswerable questions. Records of
    the one-language sets (:data:`OWN_ARTICLES`) are not used.
    """
    records = [r for r in records if r["source"] != OWN_ARTICLES]
    n_ans = sum(r["source"] == "public" for r in records)
    n_non = sum(r["source"] == "unanswerable" for r in records)
    w_non = NONE_SHARE / (1 - NONE_SHARE) * n_ans / max(1, n_non)
    xs, ys, ws = [], [], []
    for rec in records:
        got = _chosen(rec, ranker, contexts, drop)
        if got is not None:
            xs.append(got[0])
            ys.append(got[1])
            ws.append(w_non if rec["source"] == "unanswerable" else 1.0)
    x, y, w = np.array(xs), np.array(ys), np.array(ws)
    coef, icpt = _standardised_fit(x, y, w)
    return coef, icpt, best_threshold(1 / (1 + np.exp(-(x @ coef + icpt))), y, w)


def _answers(
    rec: dict[str, Any], ranker: Any, abstainer: Any, contexts: int, drop: frozenset[str]
) -> tuple[bool, bool]:
    """``(answered, the chosen span is right)`` of one record."""
    got = _chosen(rec, ranker, contexts, drop)
    if got is None:
        return False, False
    coef, icpt, cut = abstainer
    return bool(1 / (1 + np.exp(-(got[0] @ coef + icpt))) >= cut), got[1]


def evaluate(
    records: list[dict[str, Any]],
    contexts: int,
    *,
    seed: int = 13,
    drop: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Held-out figures for one number of contexts (without the columns in ``drop``).

    Dev: the ranker is fitted on public questions only; the abstainer on public questions
    and the other dev folds (5 folds). Public: folds by article, dev in every fold.
    """
    public = [r for r in records if r["source"] != "dev"]
    dev = [r for r in records if r["source"] == "dev"]
    ranker = fit_ranker(public, contexts, drop)
    folds = np.arange(len(dev)) % 5
    random.Random(seed).shuffle(folds)  # type: ignore[arg-type]
    by_kind: dict[str, list[float]] = defaultdict(list)
    for k in range(5):
        rest = [r for r, f in zip(dev, folds, strict=True) if f != k]
        abstainer = fit_abstainer(public + rest, ranker, contexts, drop)
        for rec in (r for r, f in zip(dev, folds, strict=True) if f == k):
            answered, right = _answers(rec, ranker, abstainer, contexts, drop)
            answerable = rec["kind"] != "none"
            by_kind[rec["kind"]].append(float(answered and right if answerable else not answered))
            if answerable:
                by_kind["chosen_right_" + rec["kind"]].append(float(right))
    pub: dict[str, list[float]] = defaultdict(list)
    titles = sorted({r["title"] for r in public})
    fold_of = {t: i % PUBLIC_FOLDS for i, t in enumerate(titles)}
    for k in sorted(set(fold_of.values())):
        train = [r for r in public if fold_of[r["title"]] != k]
        fold_ranker = fit_ranker(train, contexts, drop)
        fold_abstainer = fit_abstainer(train + dev, fold_ranker, contexts, drop)
        for rec in (r for r in public if fold_of[r["title"]] == k):
            answered, right = _answers(rec, fold_ranker, fold_abstainer, contexts, drop)
            lang = rec.get("direction") or rec["qlang"]
            if rec["source"] == "unanswerable":
                pub["abstained_unanswerable"].append(float(not answered))
                continue
            pub["chosen_right_" + lang].append(float(right))
            _, labels = _matrix(rec, contexts)
            pub["reader_first_right_" + lang].append(float(bool(len(labels)) and labels[0]))
            pub["answered_right_" + lang].append(float(answered and right))
    kinds = ("en", "cross", "zh", "zh-cross", "none")
    dev_fig = {k: round(float(np.mean(v)), 4) for k, v in sorted(by_kind.items())}
    dev_fig["accuracy"] = round(float(np.mean([x for k in kinds for x in by_kind[k]])), 4)
    pub_fig = {k: round(float(np.mean(v)), 4) for k, v in sorted(pub.items())}
    answered_right = [v for k, v in pub_fig.items() if k.startswith("answered_right_")]
    return {
        "dev_cv": dev_fig,
        "public_cv": pub_fig,
        "score": round((dev_fig["accuracy"] + float(np.mean(answered_right))) / 2, 4),
    }


def fit_and_report(
    records: list[dict[str, Any]],
    candidates: tuple[int, ...] = CONTEXT_CHOICES,
    drop: frozenset[str] = frozenset(),
) -> tuple[int, dict[int, dict[str, Any]]]:
    """Choose the number of contexts by held-out figures.

    The mean of the dev accuracy (5 folds) and the public answered-right rate (folds by
    article): both the bundled corpus and new articles count.
    """
    results = {k: evaluate(records, k, drop=drop) for k in candidates}
    return max(candidates, key=lambda k: results[k]["score"]), results


def records_path(settings: Any, weights: Path, extra: tuple[Path, ...] = ()) -> Path:
    """The cache of the records of one setting, beside the index folder.

    Records of other weights, readings, sentence rankings, data sets or record versions are
    never reused: each has a file of its own.
    """
    from rag.reader_model import file_sha256

    variant = "" if settings.sentence_ranking == "fitted" else f"-{settings.sentence_ranking}"
    if not settings.reader_code_switch:  # the readings differ: records of their own
        variant += "-no-code-switch"
    if not settings.cross_query:  # so do the passages read
        variant += "-no-cross-query"
    variant += "".join(f"-{path.stem}" for path in extra)
    variant += f"-{file_sha256(weights)[:12]}"
    variant += f"-v{RECORDS_VERSION}" if RECORDS_VERSION > 1 else ""
    name = ranker_key(settings.reader_int8).replace("span_ranker", "spanrank")
    return Path(settings.index_dir).parent / f"{name}{variant}.json"


def check_columns(drop: tuple[str, ...]) -> frozenset[str]:
    """The span ranker columns an ablation leaves out; an unknown name is a clear error."""
    unknown = sorted(set(drop) - set(SPAN_FEATURES))
    if unknown:
        raise ConfigError(
            f"unknown span ranker column {', '.join(unknown)}: one of {', '.join(SPAN_FEATURES)}"
        )
    return frozenset(drop)


def run_span_calibration(
    settings: Any,
    dataset: Path,
    *,
    extra: tuple[Path, ...] = (),
    weights: Path | None = None,
    reuse: bool = False,
    write: bool = True,
    drop: tuple[str, ...] = (),
    contexts: int | None = None,
) -> dict[str, Any]:
    """Collect (or reuse) the records, fit, report, and store the ranker in the manifest.

    ``write=False`` reports the held-out figures only (an ablation: e.g. with
    ``RAG_SENTENCE_RANKING=plain``, or ``drop`` naming :data:`SPAN_FEATURES` columns that
    the fits leave out); ``contexts`` fixes the number of passages read instead of choosing
    it; each setting (and each list of ``extra`` data sets) caches its
    records in a file of its own.
    """
    from rag.reader_model import BUNDLED

    dropped = check_columns(drop)

    weights = weights or settings.reader_weights or BUNDLED
    if settings.reader_weights and Path(settings.reader_weights).resolve() != weights.resolve():
        raise ConfigError(
            f"RAG_READER_WEIGHTS is {settings.reader_weights} but the manifest to write is "
            f"{weights}'s: the weights that read are the weights calibrated"
        )
    settings = settings.model_copy(update={"reader_weights": weights})
    key = ranker_key(settings.reader_int8)
    cache = records_path(settings, weights, extra)
    if reuse and cache.exists():
        records = json.loads(cache.read_text())
    else:
        records = collect(settings, dataset, extra=extra)
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(records, ensure_ascii=False))
    chosen, results = fit_and_report(
        records, (contexts,) if contexts else CONTEXT_CHOICES, drop=dropped
    )
    if not write:
        return {"contexts": chosen, "figures": {str(k): v for k, v in results.items()}}
    ranker = fit_ranker([r for r in records if r["source"] != "dev"], chosen, dropped)
    a_coef, a_icpt, cut = fit_abstainer(records, ranker, chosen, dropped)
    figures = {str(k): v for k, v in results.items()}
    manifest_path = weights.with_suffix(".json")
    manifest = json.loads(manifest_path.read_text())
    manifest.setdefault("calibration", {})[key] = {
        "features": list(SPAN_FEATURES),
        "rank_coef": [round(float(c), 6) for c in ranker[0]],
        "rank_intercept": round(ranker[1], 6),
        "abstain_coef": [round(float(c), 6) for c in a_coef],
        "abstain_intercept": round(a_icpt, 6),
        "threshold": round(cut, 6),
        "contexts": chosen,
        "wrong_answer_cost": WRONG_ANSWER_COST,
        "embedder": records[0].get("embedder"),
        "none_share": round(NONE_SHARE, 4),
        "reader_code_switch": settings.reader_code_switch,
        "reader_precision": settings.reader_precision,
        "data": [
            f"{dataset.name} valid (mixed-language corpus)",
            *(f"{path.name} valid (its own articles)" for path in extra),
            "bundled corpus (unanswerable)",
        ],
        "figures": figures,
    }
    if dropped:
        manifest["calibration"][key]["dropped"] = sorted(dropped)
    manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    log.info("%s written to %s (contexts %d)", key, manifest_path, chosen)
    return {"contexts": chosen, "figures": figures}
