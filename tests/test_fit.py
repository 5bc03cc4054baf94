"""Fitting the answer weights: the constrained abstention model and `rag fit` end to end."""

import json
import subprocess
import sys

import numpy as np
import pytest

from eval.fit import _best_threshold, _fit_lr


def test_abstention_weights_keep_their_prescribed_signs():
    rng = np.random.default_rng(0)
    rows, labels = [], []
    for _ in range(200):
        y = int(rng.random() < 0.5)
        support = y + rng.normal(0, 0.5)
        # a near-copy of "support" that, unconstrained, takes a negative weight
        rows.append({"support": support, "echo": support + rng.normal(0, 0.05) - 0.3 * y})
        labels.append(y)
    free = _fit_lr(rows, labels, c=10.0)
    bound = _fit_lr(rows, labels, c=10.0, signs={"support": 1, "echo": 1})
    assert free.weights["echo"] < 0
    assert bound.weights["echo"] >= 0 and bound.weights["support"] > 0
    right = [bound.prob(r) > 0.5 for r in rows]
    assert np.mean([r == bool(y) for r, y in zip(right, labels, strict=True)]) > 0.75


def test_threshold_weighs_a_wrong_answer_above_an_abstention():
    # one right answer at 0.9, one wrong at 0.6, one "not in the corpus" at 0.3
    t = _best_threshold([0.9, 0.6, 0.3], [1, 0, 0], [False, False, True])
    assert 0.6 < t <= 0.9


@pytest.mark.slow
def test_rag_fit_command_writes_weights_that_load(tmp_path):
    """`rag fit` on a slice of the dev set with the real model: CV figures and a weights file."""
    from eval.gold import load_gold
    from rag.model import AnswerWeights
    from tests.conftest import ROOT

    items = load_gold()
    picked = [i for i in items if i.kind == "none"][:8] + [i for i in items if i.answerable][:32]
    gold = tmp_path / "gold.jsonl"
    raw = {json.loads(line)["id"]: line for line in (ROOT / "eval" / "gold" / "dev.jsonl").open()}
    gold.write_text("".join(raw[i.id] for i in picked))
    env = {
        "RAG_SEEDS_DIR": str(ROOT / "seeds"),
        "RAG_INDEX_DIR": str(tmp_path / "index"),
        "HF_HUB_OFFLINE": "1",
        "PATH": "/usr/bin:/bin",
    }
    cache = ROOT / "var" / "index" / "cache.sqlite"
    if cache.exists():  # vectors already computed by `make index`
        (tmp_path / "index").mkdir()
        (tmp_path / "index" / "cache.sqlite").write_bytes(cache.read_bytes())
    rag = [sys.executable, "-m", "rag.cli"]
    subprocess.run([*rag, "index"], env=env, check=True, capture_output=True)
    out = tmp_path / "w.json"
    done = subprocess.run(
        [*rag, "fit", "--gold", str(gold), "--folds", "2", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "cv accuracy overall" in done.stderr
    weights = AnswerWeights.load(out)
    assert 0.0 <= weights.threshold <= 1.0
    assert 0.5 < weights.meta["cv_accuracy"]["overall"] <= weights.meta["train_accuracy"]
    assert (
        weights.abstain.weights["ent_ctx"] >= 0 and weights.abstain.weights["target_missing"] <= 0
    )
