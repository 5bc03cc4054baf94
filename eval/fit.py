"""Fit the sentence, candidate and abstention scorers on gold data, with k-fold CV.

``rag fit`` runs this: it reports cross-validated answer accuracy per kind (each fold
fitted without its own questions), then fits on everything and writes the weights
JSON that ships in ``rag/weights.json``.
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from eval.gold import GoldItem, load_gold
from eval.metrics import alias_in, answer_matches
from index.clean import clean_text
from index.errors import DependencyMissingError
from rag.model import DEFAULT_WEIGHTS, AnswerWeights, LinearModel
from rag.pipeline import Pipeline, Trace

log = logging.getLogger(__name__)


@dataclass
class Example:
    """A gold item with the spans of its evidence in the canonical text."""

    item: GoldItem
    evidence: tuple[int, int] | None


def locate_evidence(pipeline: Pipeline, item: GoldItem) -> tuple[int, int] | None:
    """Offsets of the gold evidence in the canonical text of its document."""
    if not item.doc or not item.evidence or item.doc not in pipeline.store.documents:
        return None
    text = pipeline.store.documents[item.doc].text
    ev, _ = clean_text(item.evidence)
    ev = ev.strip()
    for probe in (ev, ev[:40], ev[-40:], ev[:15], ev[-15:]):
        if probe and (pos := text.find(probe)) >= 0:
            return pos, pos + len(probe)
    return None


# Directions the abstention weights may take: support for an answer can only raise the
# confidence (+1), a sign of its absence only lower it (-1). Without these, correlated
# features on ~130 questions took the wrong sign (no predicate words near the answer
# raised confidence) and answered "not in the corpus" questions.
ABSTAIN_SIGNS: dict[str, int] = {
    "phrase_sent": 1,
    "pred_sent": 1,
    "ent_ctx": 1,
    "ent_doc": 1,
    "best_compat": 1,
    "target_missing": -1,
    "cand_prob": 1,
    "sent_dense": 1,
    "ctx_cov": 1,
    "ctx_years": 1,
}


def _fit_lr(
    rows: list[dict[str, float]],
    labels: list[int],
    c: float = 1.0,
    signs: dict[str, int] | None = None,
) -> LinearModel:
    """L2-regularised, class-balanced logistic regression; ``signs`` bound weights to >= 0 / <= 0."""
    try:
        from scipy.optimize import minimize
    except ImportError as exc:
        raise DependencyMissingError("fitting needs scikit-learn: pip install '.[fit]'") from exc
    names = sorted({k for r in rows for k in r})
    x = np.array([[r.get(n, 0.0) for n in names] for r in rows], dtype=float)
    y = np.array(labels, dtype=float)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    if len(set(labels)) < 2:
        return LinearModel(0.0, {n: 0.0 for n in names}, {}, {})
    z = (x - mean) / scale
    # class-balanced sample weights, as sklearn's class_weight="balanced"
    sample_w = np.where(y == 1, len(y) / (2 * y.sum()), len(y) / (2 * (len(y) - y.sum())))

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        logit = z @ theta[1:] + theta[0]
        p = 1 / (1 + np.exp(-logit))
        nll = np.sum(sample_w * (np.logaddexp(0, logit) - y * logit))
        grad_logit = sample_w * (p - y)
        grad = np.concatenate([[grad_logit.sum()], z.T @ grad_logit + theta[1:] / c])
        return float(nll + 0.5 * np.sum(theta[1:] ** 2) / c), grad

    signs = signs or {}
    bounds = [(None, None)] + [
        (0.0, None) if signs.get(n) == 1 else (None, 0.0) if signs.get(n) == -1 else (None, None)
        for n in names
    ]
    res = minimize(loss, np.zeros(len(names) + 1), jac=True, method="L-BFGS-B", bounds=bounds)
    return LinearModel(
        float(res.x[0]),
        {n: float(w) for n, w in zip(names, res.x[1:], strict=True)},
        {n: float(m) for n, m in zip(names, mean, strict=True)},
        {n: float(s) for n, s in zip(names, scale, strict=True)},
    )


def _fit_pairwise(
    groups: list[tuple[list[dict[str, float]], list[int]]],
    c: float = 0.05,
    max_neg: int = 40,
    seed: int = 7,
    tags: list[list[int]] | None = None,
    same_tag_weight: float = 1.0,
) -> LinearModel:
    """A ranking model: logistic regression on feature differences of (right, wrong) pairs.

    ``tags`` (one list per group, e.g. each candidate's sentence) let pairs that share a
    tag count ``same_tag_weight`` times: telling apart two numbers of one sentence is the
    hard part of answer extraction and would otherwise be drowned by easy pairs.
    """
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError as exc:
        raise DependencyMissingError("fitting needs scikit-learn: pip install '.[fit]'") from exc
    names = sorted({k for rows, _ in groups for r in rows for k in r})
    all_x = np.array(
        [[r.get(n, 0.0) for n in names] for rows, _ in groups for r in rows], dtype=float
    )
    mean, scale = all_x.mean(axis=0), all_x.std(axis=0)
    scale[scale == 0] = 1.0
    rng = random.Random(seed)
    diffs, ys = [], []
    for g, (rows, labels) in enumerate(groups):
        tag = tags[g] if tags else None
        x = (np.array([[r.get(n, 0.0) for n in names] for r in rows], dtype=float) - mean) / scale
        pos = [i for i, y in enumerate(labels) if y]
        neg = [i for i, y in enumerate(labels) if not y]
        if not pos or not neg:
            continue
        rng.shuffle(neg)
        weight = 1.0 / len(pos)
        for p in pos:
            for q in neg[:max_neg]:
                w = weight * (same_tag_weight if tag and tag[p] == tag[q] else 1.0)
                diffs.append((x[p] - x[q]) * w)
                ys.append(1)
                diffs.append((x[q] - x[p]) * w)
                ys.append(0)
    if not diffs:  # no group with both a right and a wrong item: nothing to learn from
        return LinearModel(0.0, {n: 0.0 for n in names}, {}, {})
    lr = LogisticRegression(C=c, fit_intercept=False, max_iter=3000)
    lr.fit(np.array(diffs), np.array(ys))
    return LinearModel(
        0.0,
        {n: float(w) for n, w in zip(names, lr.coef_[0], strict=True)},
        {n: float(m) for n, m in zip(names, mean, strict=True)},
        {n: float(s) for n, s in zip(names, scale, strict=True)},
    )


def _sentence_label(ex: Example, s_doc: str, start: int, end: int, text: str) -> int:
    if s_doc != ex.item.doc:
        return 0
    if ex.evidence and start < ex.evidence[1] and end > ex.evidence[0]:
        return 1
    return int(any(alias_in(a, text) for a in ex.item.answers if len(a) >= 2))


# Regularisation of the candidate ranker: its features are many and correlated and the dev
# set is small; 3x5-fold CV preferred 0.005 (0.688) to 0.05 (0.669) and 0.001 (0.677).
CANDIDATE_C = 0.005
SAME_SENTENCE_WEIGHT = 1.0  # 3.0 gave 0.710 vs 0.715 in 4x5-fold CV: no gain


def _fit_rankers(
    pipeline: Pipeline, train: list[Example], traces: dict[str, Trace]
) -> tuple[LinearModel, LinearModel]:
    """Fit the sentence ranker, then the candidate ranker on the sentences it ranks."""
    groups = []
    for ex in train:
        if not ex.item.answerable:
            continue
        sents = traces[ex.item.id].sentences
        groups.append(
            (
                [s.features for s in sents],
                [_sentence_label(ex, s.doc_id, s.start, s.end, s.text) for s in sents],
            )
        )
    sentence = _fit_pairwise(groups)
    pipeline.weights = replace(pipeline.weights, sentence=sentence)
    cand_groups, cand_tags = [], []
    for ex in train:
        if not ex.item.answerable:
            continue
        tr = _retrace(pipeline, traces[ex.item.id])
        labs = [
            int(c.doc_id == ex.item.doc and answer_matches(c.text, ex.item.answers))
            for c in tr.candidates
        ]
        cand_groups.append(([c.features for c in tr.candidates], labs))
        cand_tags.append([c.sentence.row for c in tr.candidates])
    candidate = _fit_pairwise(
        cand_groups,
        c=CANDIDATE_C,
        max_neg=80,
        tags=cand_tags,
        same_tag_weight=SAME_SENTENCE_WEIGHT,
    )
    return sentence, candidate


# The abstention model is fitted on answers from rankers that did not see the question
# (inner k-fold): rankers answer their own training questions more confidently than new
# ones, and an abstention model fitted on those learns too low a bar.
ABSTAIN_INNER_FOLDS = 5


def fit_all(pipeline: Pipeline, train: list[Example], traces: dict[str, Trace]) -> AnswerWeights:
    """Fit the three scorers in order (each stage sees the previous stage's scores)."""
    ab_rows, ab_labels, is_none = [], [], []
    order = list(range(len(train)))
    random.Random(len(train)).shuffle(order)
    for f in range(ABSTAIN_INNER_FOLDS):
        held = {i for k, i in enumerate(order) if k % ABSTAIN_INNER_FOLDS == f}
        sentence, candidate = _fit_rankers(
            pipeline, [ex for i, ex in enumerate(train) if i not in held], traces
        )
        pipeline.weights = replace(pipeline.weights, sentence=sentence, candidate=candidate)
        for i in sorted(held):
            ex = train[i]
            tr = _retrace(pipeline, traces[ex.item.id])
            if not tr.candidates:
                continue
            best = tr.candidates[0]
            ok = (
                ex.item.answerable
                and best.doc_id == ex.item.doc
                and answer_matches(best.text, ex.item.answers)
            )
            ab_rows.append(tr.abstain)
            ab_labels.append(int(ok))
            is_none.append(not ex.item.answerable)
    sentence, candidate = _fit_rankers(pipeline, train, traces)
    # The abstention model learns "supported answer" (right answers) against "not in the
    # corpus" (the none questions); answerable questions answered wrongly would only blur
    # that line, so they take part in choosing the threshold but not in the fit.
    fit_rows = [r for r, y, n in zip(ab_rows, ab_labels, is_none, strict=True) if y or n]
    fit_labels = [y for y, n in zip(ab_labels, is_none, strict=True) if y or n]
    abstain = _fit_lr(fit_rows, fit_labels, c=0.1, signs=ABSTAIN_SIGNS)
    probs = [abstain.prob(r) for r in ab_rows]
    threshold = _best_threshold(probs, ab_labels, is_none)
    pipeline.weights = AnswerWeights(sentence, candidate, abstain, threshold, {})
    return pipeline.weights


WRONG_ANSWER_COST = 0.35


def _best_threshold(probs: list[float], labels: list[int], is_none: list[bool]) -> float:
    """The cut that maximises right answers plus right abstentions, minus a cost per wrong answer.

    A confident wrong answer is worse than an abstention, so each answered-but-wrong
    question costs ``WRONG_ANSWER_COST``; ties go to the more cautious cut.
    """
    best_t, best_score = 0.5, -1e9
    for t in sorted(set([0.0, *probs, 1.0])):
        score = 0.0
        for p, y, none in zip(probs, labels, is_none, strict=True):
            if p >= t:
                score += 1.0 if y else -WRONG_ANSWER_COST
            elif none:
                score += 1.0
        if score >= best_score:
            best_t, best_score = t, score
    return float(min(0.95, best_t))


def _retrace(pipeline: Pipeline, tr: Trace) -> Trace:
    """Re-score a trace's sentences and candidates with the pipeline's current weights."""
    sentences = pipeline.rank_sentences(tr.sentences)
    assert tr.qvec is not None
    candidates = pipeline._candidates(tr.query, tr.qvec, sentences)
    return Trace(
        tr.query,
        tr.hits,
        sentences,
        candidates,
        pipeline._abstain_features(tr.query, candidates),
        tr.timings,
        tr.qvec,
    )


def correct(pipeline: Pipeline, ex: Example, tr: Trace) -> bool:
    """Whether the pipeline's answer to a traced question is right (abstaining on 'none')."""
    ans = pipeline.answer_from(_retrace(pipeline, tr))
    if not ex.item.answerable:
        return ans.text is None
    return (
        ans.text is not None
        and ans.citations[0].doc_id == ex.item.doc
        and answer_matches(ans.text, ex.item.answers)
    )


def cross_validate(
    pipeline: Pipeline,
    examples: list[Example],
    traces: dict[str, Trace],
    folds: int,
    repeats: int = 1,
    seed: int = 13,
) -> dict[str, float]:
    """k-fold accuracy per kind, averaged over ``repeats`` shuffles.

    Each question is scored by weights fitted without it.
    """
    hits: dict[str, list[int]] = defaultdict(list)
    for r in range(repeats):
        order = list(range(len(examples)))
        random.Random(seed + r).shuffle(order)
        for f in range(folds):
            test = [examples[i] for i in order[f::folds]]
            train = [examples[i] for j, i in enumerate(order) if j % folds != f]
            fit_all(pipeline, train, traces)
            for ex in test:
                ok = correct(pipeline, ex, traces[ex.item.id])
                hits[ex.item.kind].append(int(ok))
                hits["overall"].append(int(ok))
    return {k: float(np.mean(v)) for k, v in sorted(hits.items())}


def run_fit(  # type: ignore[no-untyped-def]
    settings, *, gold: Path | None, folds: int, out: Path | None, repeats: int = 1
) -> dict[str, float]:
    """CLI body of ``rag fit``: report CV accuracy, then fit on all and save."""
    from rag.factory import load_pipeline

    # the typed-span extractor is what these weights rank; the learned reader has its own fit
    pipeline = load_pipeline(settings.model_copy(update={"reader": "rules"}))
    items = load_gold(gold)
    examples = [Example(it, locate_evidence(pipeline, it)) for it in items]
    traces = {ex.item.id: pipeline.trace(ex.item.q) for ex in examples}
    cv = cross_validate(pipeline, examples, traces, folds, repeats)
    for kind, acc in cv.items():
        log.info("cv accuracy %-9s %.3f", kind, acc)
    weights = fit_all(pipeline, examples, traces)
    train_acc = float(np.mean([correct(pipeline, ex, traces[ex.item.id]) for ex in examples]))
    meta = {
        "gold": str(gold or "eval/gold/dev.jsonl"),
        "folds": folds,
        "repeats": repeats,
        "cv_accuracy": cv,
        "train_accuracy": train_acc,
        "refit": "rag fit",
    }
    weights = AnswerWeights(
        weights.sentence, weights.candidate, weights.abstain, weights.threshold, meta
    )
    weights.save(out or DEFAULT_WEIGHTS)
    log.info("train accuracy %.3f; weights written to %s", train_acc, out or DEFAULT_WEIGHTS)
    return cv
