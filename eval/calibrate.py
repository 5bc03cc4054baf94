"""``rag calibrate``: fit the abstention model on questions the reader did not train on.

Three kinds of question, each through the real pipeline:

- public valid questions over an index of their own split's articles (answerable: right
  when the best span scores F1 >= 0.5 against a gold answer);
- the same questions over the bundled corpus, which holds none of their articles
  (unanswerable: any answer is wrong);
- the dev gold set over the bundled corpus (its ``none`` questions unanswerable).

A logistic model of "the best span is right" is fitted on their
:class:`~rag.abstain.AbstainFeatures`, and the threshold is the cut that maximises
``right answers - WRONG_ANSWER_COST * wrong answers`` (abstaining scores 0). Both go into
the reader's manifest; the dev figures are reported with the dev questions scored by
models fitted without them (5 folds).
"""

from __future__ import annotations

import json
import logging
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from eval.gold import load_gold
from eval.metrics import answer_matches
from eval.public import Row, corpus_pipeline, load_split
from rag.abstain import FEATURE_NAMES, WRONG_ANSWER_COST, AbstainFeatures

__all__ = ["run_calibration", "best_threshold", "fit_logistic"]

log = logging.getLogger(__name__)
RIGHT_F1 = 0.5
# Share of unanswerable questions among those users ask of a corpus: the dev set's none kind
# (30 of 158), the only data here on what users ask.
NONE_SHARE = 30 / 158


def fit_logistic(
    x: np.ndarray, y: np.ndarray, *, c: float = 1.0, weight: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression (scikit-learn, lbfgs); ``(coef, intercept)``."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=2000)
    model.fit(x, y, sample_weight=weight)
    return model.coef_[0].astype(float), float(model.intercept_[0])


def best_threshold(probs: np.ndarray, right: np.ndarray, weight: np.ndarray | None = None) -> float:
    """The cut maximising right - cost * wrong among answered questions (ties: higher cut)."""
    order = np.argsort(-probs)
    w = np.ones(len(probs)) if weight is None else weight[order]
    gains = np.where(right[order], 1.0, -WRONG_ANSWER_COST) * w
    utility = np.concatenate([[0.0], np.cumsum(gains)])
    k = int(np.flatnonzero(utility == utility.max())[0])  # answer the k most confident
    if k == 0:
        return float(probs.max()) + 1e-6
    return float(probs[order[k - 1]])


def _row(pipeline: Any, question: str) -> tuple[AbstainFeatures | None, Any, Any]:
    tr = pipeline.trace(question)
    best, holder, f = pipeline.read_evidence(tr)
    return f, best, holder


def _public(pipeline: Any, rows: list[Row], answerable: bool) -> list[tuple[np.ndarray, bool]]:
    from eval.metrics import qa_scores

    out = []
    for r in rows:
        f, best, _ = _row(pipeline, r.question)
        if f is None:
            continue
        right = answerable and qa_scores(best.text, list(r.answers), r.lang)[1] >= RIGHT_F1
        out.append((f.vector(), right))
    return out


def run_calibration(
    settings: Any,
    files: list[Path],
    *,
    limit: int,
    weights: Path | None = None,
    seed: int = 13,
    reuse: bool = False,
) -> dict[str, Any]:
    """Fit, report and store the abstention model (see the module docstring).

    The features of every question are cached beside the index (``calibration.json``);
    ``reuse`` refits from them without asking again.
    """
    from rag.factory import load_pipeline
    from rag.reader_model import BUNDLED

    cache = settings.index_dir.parent / "calibration.json"
    if reuse and cache.exists():
        saved = json.loads(cache.read_text())
        cached_public = [(np.array(v), bool(r), bool(a)) for v, r, a in saved["public"]]
        cached_dev = [(np.array(v), bool(r)) for v, r in saved["dev"]]
        return _fit_and_store(cached_public, cached_dev, files, weights or BUNDLED, seed)
    bundled = load_pipeline(settings)
    if bundled.reader is None:
        from index.errors import ConfigError

        raise ConfigError("calibration needs the learned reader (RAG_READER=learned)")
    public: list[tuple[np.ndarray, bool, bool]] = []  # features, right, answerable
    with tempfile.TemporaryDirectory(prefix="rag-calibrate-") as tmp:
        for path in files:
            rows = load_split(path, "valid")
            by_dir: dict[str, list[Row]] = {}
            for r in rows:
                by_dir.setdefault(r.direction, []).append(r)
            for direction, items in sorted(by_dir.items()):
                items = random.Random(seed).sample(items, min(limit, len(items)))
                langs = {r.lang for r in items}
                corpus = [r for r in rows if r.lang in langs]
                folder = Path(tmp) / f"{path.stem}-{direction.replace('>', '-')}"
                pipeline = corpus_pipeline(settings, corpus, folder)
                public += [(v, r, True) for v, r in _public(pipeline, items, answerable=True)]
                public += [(v, r, False) for v, r in _public(bundled, items, answerable=False)]
                log.info(
                    "calibration data: %s %s, %d rows so far", path.name, direction, len(public)
                )
    dev: list[tuple[np.ndarray, bool]] = []
    for item in load_gold(None):
        f, best, _ = _row(bundled, item.q)
        if f is None:
            continue
        right = (
            item.answerable and best.doc_id == item.doc and answer_matches(best.text, item.answers)
        )
        dev.append((f.vector(), right))
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(
        json.dumps(
            {
                "public": [(v.tolist(), r, a) for v, r, a in public],
                "dev": [(v.tolist(), r) for v, r in dev],
            }
        )
    )
    return _fit_and_store(public, dev, files, weights or BUNDLED, seed)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def _fit_and_store(
    public: list[tuple[np.ndarray, bool, bool]],
    dev: list[tuple[np.ndarray, bool]],
    files: list[Path],
    path: Path,
    seed: int,
) -> dict[str, Any]:
    """Fit on public + dev rows, report dev by 5-fold CV, write the model into the manifest.

    The public unanswerable rows (questions asked of a corpus without their article) are
    weighted so that unanswerable questions make up the share the dev set has of them
    (its ``none`` kind): the prior of "the corpus does not hold it" comes from data too.
    """
    x_pub = np.array([v for v, _, _ in public])
    y_pub = np.array([r for _, r, _ in public])
    ans_pub = np.array([a for _, _, a in public])
    n_ans, n_non = int(ans_pub.sum()), int((~ans_pub).sum())
    w_non = NONE_SHARE / (1 - NONE_SHARE) * n_ans / max(1, n_non)
    w_pub = np.where(ans_pub, 1.0, w_non)
    x_dev = np.array([v for v, _ in dev])
    y_dev = np.array([r for _, r in dev])
    folds = np.arange(len(dev)) % 5
    random.Random(seed).shuffle(folds)  # type: ignore[arg-type]
    answered_dev = np.zeros(len(dev), dtype=bool)
    for k in range(5):  # dev figures from models that did not see the question
        held = folds == k
        x = np.vstack([x_pub, x_dev[~held]])
        y = np.concatenate([y_pub, y_dev[~held]])
        w = np.concatenate([w_pub, np.ones(int((~held).sum()))])
        coef, icpt = fit_logistic(x, y, weight=w)
        cut = best_threshold(_sigmoid(x @ coef + icpt), y, w)
        answered_dev[held] = _sigmoid(x_dev[held] @ coef + icpt) >= cut
    x = np.vstack([x_pub, x_dev])
    y = np.concatenate([y_pub, y_dev])
    w = np.concatenate([w_pub, np.ones(len(dev))])
    coef, icpt = fit_logistic(x, y, weight=w)
    cut = best_threshold(_sigmoid(x @ coef + icpt), y, w)
    figures = {
        "rows": {"public": len(public), "dev": len(dev)},
        "public_right_rate": round(float(y_pub[ans_pub].mean()), 4),
        "unanswerable_weight": round(w_non, 4),
        "dev_cv": {
            "answered": round(float(answered_dev.mean()), 4),
            "precision": round(float(y_dev[answered_dev].mean()), 4) if answered_dev.any() else 0.0,
            "right_answers_kept": round(
                float((answered_dev & y_dev).sum() / max(1, y_dev.sum())), 4
            ),
        },
        "threshold": round(cut, 4),
    }
    manifest_path = path.with_suffix(".json")
    manifest = json.loads(manifest_path.read_text())
    kept = {k: v for k, v in manifest.get("calibration", {}).items() if k.startswith("span_ranker")}
    manifest["calibration"] = {
        **kept,
        "features": list(FEATURE_NAMES),
        "coef": [round(float(c), 6) for c in coef],
        "intercept": round(icpt, 6),
        "threshold": round(cut, 6),
        "wrong_answer_cost": WRONG_ANSWER_COST,
        "none_share": round(NONE_SHARE, 4),
        "data": [p.name for p in files] + ["eval/gold/dev.jsonl"],
        "figures": figures,
    }
    manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    log.info("calibration written to %s: %s", manifest_path, json.dumps(figures))
    return figures
