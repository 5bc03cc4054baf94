"""Read stage: the learned span reader over the best retrieved contexts.

``Reader.run(question, contexts)`` tokenises each context once, cuts it into the windows
the reader was trained on, scores every span of at most ``MAX_ANSWER_TOKENS`` tokens and
each window's no-answer option, and returns spans with exact document offsets, best
first. It answers any question style in either language; whether to trust its best span
is the abstention stage's decision (:mod:`rag.abstain`).

A context in the other language than the question's is read twice (``code_switch=True``):
with the question as asked, and with every dictionary word of it rendered in the context's
language (:func:`rag.augment.code_switch`); the two readings' logits over the same context
tokens are averaged. Measured with the reader alone on the gold paragraph (XQuAD-half
valid, 141 questions a direction): Chinese questions over English paragraphs F1 0.477 ->
0.548, English over Chinese 0.647 -> 0.656; over same-language contexts it would cost (en
0.639 -> 0.561, zh 0.751 -> 0.685), so those are read once. Each word is rendered in the
sense the context uses (the code switch is given the context): 0.771 -> 0.785 (en>zh) and
0.625 -> 0.633 (zh>en) on the same questions, with the 2026-12-04 reader.

A traditional question over a simplified context is read folded to simplified: the reader
alone on the gold paragraph, XQuAD-half Chinese valid (141) asked in traditional 0.744 ->
0.774, as asked in simplified. The other way (a simplified question over a traditional
context read in traditional, OpenCC s2t) gained on DRCD valid (200) asked in simplified, 0.784
-> 0.808, but lost 2 of the 45 dev questions it touched (`zh` and `none`, the traditional
article 003), so it is not done.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from index.textnorm import CJK_RUN_RE, cjk_ratio, detect_script, to_simplified

if TYPE_CHECKING:
    from rag.windows import Window

__all__ = [
    "Context",
    "ReadSpan",
    "Reading",
    "Reader",
    "cpu_has_bf16",
    "is_chinese_text",
    "use_bf16",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Context:
    """A region of a document to read: ``document.text[start:end] == text``."""

    doc_id: str
    start: int
    end: int
    text: str
    rank: int  # 0 = the retrieval's best


@dataclass(frozen=True)
class ReadSpan:
    """A candidate answer: offsets into the document's canonical text, and its logits."""

    doc_id: str
    start: int
    end: int
    text: str
    score: float  # start + end logit
    null_score: float  # the no-answer logit of the window it was read in
    context_rank: int


@dataclass(frozen=True)
class Reading:
    """What the reader saw: spans best first, and the no-answer logit of every window."""

    spans: tuple[ReadSpan, ...]
    null_scores: tuple[float, ...]
    windows: int
    window_contexts: tuple[int, ...] = ()  # the context rank of each window (of null_scores)


def is_chinese_text(text: str) -> bool:
    """Whether Chinese characters are at least 30% of the text's letters (as detect_script)."""
    return cjk_ratio(text) >= 0.3


def _reads_across(question: str, context: str) -> bool:
    """Whether the question is in the other language than the context.

    A question with Chinese characters is Chinese, the direction rule of
    :func:`rag.augment.code_switch`.
    """
    return bool(CJK_RUN_RE.search(question)) != is_chinese_text(context)


def _cpu_flags(cpuinfo: Path) -> set[str]:
    try:
        return set(cpuinfo.read_text(errors="replace").split())
    except OSError:
        return set()


def cpu_has_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU multiplies bf16 natively (AVX512-BF16 or AMX); False where unknown."""
    return bool({"avx512_bf16", "amx_bf16"} & _cpu_flags(cpuinfo))


BF16_MIN_SPEEDUP = 1.15  # below this, fp32's exact logits are worth more than bf16's speed


@lru_cache(maxsize=1)
def bf16_speedup(rounds: int = 7) -> float:
    """How much faster a reader-sized matrix product runs under bf16 autocast than in fp32.

    The median of ``rounds`` paired timings (fp32 then bf16, after a warm-up of both), so a
    busy moment on a shared machine does not decide it. Measured once per process (about
    0.1 s). AVX512-BF16 without AMX multiplied bf16 0.5-0.6x as fast as fp32 on a 2-core
    Xeon (2026-12-07); an earlier machine read 1.7x as fast in bf16.
    """
    import statistics
    import time

    import torch

    layer = torch.nn.Linear(384, 1536)
    x = torch.randn(512, 384)

    def timed(bf16: bool) -> float:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            t0 = time.perf_counter()
            layer(x)
            return time.perf_counter() - t0

    with torch.inference_mode():
        for bf16 in (False, True, False, True):
            timed(bf16)
        ratios = [timed(False) / max(timed(True), 1e-9) for _ in range(rounds)]
    return statistics.median(ratios)


def use_bf16(precision: str, cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """The reader's ``RAG_READER_PRECISION`` resolved: ``auto`` means bf16 where it is faster.

    Without native instructions bf16 is emulated and slower than fp32, so auto never picks
    it; with AMX it is; with AVX512-BF16 alone it may not be, so auto times it
    (:func:`bf16_speedup`) and keeps fp32 unless bf16 is clearly faster.
    """
    if precision != "auto":
        return precision == "bf16"
    flags = _cpu_flags(cpuinfo)
    if "amx_bf16" in flags:
        return True
    if "avx512_bf16" not in flags:
        return False
    speedup = bf16_speedup()
    log.info(
        "bf16 autocast runs %.2fx as fast as fp32 here: reading in %s",
        speedup,
        "bf16" if speedup >= BF16_MIN_SPEEDUP else "fp32",
    )
    return speedup >= BF16_MIN_SPEEDUP


class Reader:
    """Loads the trained reader lazily; thread-safe for concurrent questions."""

    def __init__(
        self,
        weights_path: Path | None = None,
        *,
        batch_size: int = 4,
        top: int = 5,
        int8: bool = False,
        bf16: bool = False,
        code_switch: bool = True,
    ):
        """Configure the reader; weights load on first use.

        Args:
            weights_path: trained reader weights (default: the bundled ``rag/models/reader.pt``).
            batch_size: windows per forward pass.
            top: spans kept per window.
            int8: run the linear layers with int8 weights (torch dynamic quantization).
            bf16: run the forward pass under bf16 autocast (ignored with ``int8``).
            code_switch: read other-language contexts with the code-switched question too.
        """
        self.weights_path = weights_path
        self.int8 = int8
        self.bf16 = bf16 and not int8
        self.batch_size = batch_size
        self.top = top
        self.code_switch = code_switch
        self._model: Any = None
        self._lock = threading.Lock()
        self.manifest: Any = None

    @property
    def name(self) -> str:
        """Identifies the weights (their sha256), for index manifests and reports."""
        self.warm_up()
        return f"span-reader:{self.manifest.weights_sha256[:12]}"

    def warm_up(self) -> None:
        """Load the base encoder and the trained tensors (idempotent)."""
        if self._model is not None:
            return
        with self._lock:
            if self._model is not None:
                return
            from index.e5 import E5Tokenizer, E5Weights
            from rag.reader_model import load_reader

            weights = E5Weights()
            model, manifest = load_reader(weights, self.weights_path)
            model.merge_adapters()
            if self.int8:
                import torch

                model = torch.ao.quantization.quantize_dynamic(
                    model, {torch.nn.Linear}, dtype=torch.qint8
                )
            self._weights, self._tok, self.manifest = weights, E5Tokenizer(weights), manifest
            self._model = model

    def _windows(
        self, question: str, contexts: list[Context]
    ) -> tuple[list[Window], list[Context], list[Window | None]]:
        """Each context's windows, their contexts, and each window's code-switched twin."""
        from index.e5 import BOS, EOS
        from rag.augment import code_switch
        from rag.windows import Window, make_windows, question_ids

        cfg = self._model.config
        windows: list[Window] = []
        owners: list[Context] = []
        twins: list[Window | None] = []
        for ctx in contexts:
            ids, spans = self._tok.encode(ctx.text)
            # a traditional question over a simplified context is read folded to simplified
            asked = to_simplified(question) if detect_script(ctx.text) == "zh-Hans" else question
            q_ids = alt_ids = question_ids(self._tok, asked, cfg.max_question_tokens)
            if self.code_switch and _reads_across(question, ctx.text):
                alt = code_switch(question, 1.0, random.Random(0), ctx.text)
                alt_ids = question_ids(self._tok, alt, cfg.max_question_tokens)
            if alt_ids == q_ids:
                for w in make_windows(q_ids, ids, spans, max_len=cfg.max_len):
                    windows.append(w)
                    owners.append(ctx)
                    twins.append(None)
                continue
            # both questions read the same context slices: cut for the longer one
            longer = max(q_ids, alt_ids, key=len)
            for base in make_windows(longer, ids, spans, max_len=cfg.max_len):
                part = base.ids[base.first : base.first + len(base.spans)]
                windows.append(
                    Window([BOS, *q_ids, EOS, EOS, *part, EOS], len(q_ids) + 3, base.spans)
                )
                twins.append(
                    Window([BOS, *alt_ids, EOS, EOS, *part, EOS], len(alt_ids) + 3, base.spans)
                )
                owners.append(ctx)
        return windows, owners, twins

    def _logits(self, inputs: list[Window]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Start and end logits of each window, in input order."""
        import torch

        from index.encoder import as_batch

        out: list[Any] = [None] * len(inputs)
        # windows of like length share a batch, so little of a batch is padding
        order = sorted(range(len(inputs)), key=lambda i: len(inputs[i].ids), reverse=True)
        with (
            torch.inference_mode(),
            torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16),
        ):
            for k in range(0, len(order), self.batch_size):
                batch = order[k : k + self.batch_size]
                words, mask = as_batch(self._weights, [inputs[i].ids for i in batch])
                start, end = self._model(words, mask)
                s_np, e_np = start.float().numpy(), end.float().numpy()
                for row, i in enumerate(batch):
                    out[i] = (s_np[row], e_np[row])
        return out

    def run(self, question: str, contexts: list[Context]) -> Reading:
        """Read the contexts for the question; spans best first (at most ``top`` a window)."""
        from rag.windows import best_spans

        self.warm_up()
        windows, owners, twins = self._windows(question, contexts)
        paired = [t for t in twins if t is not None]
        logits = self._logits(windows + paired)
        own, twin_logits = logits[: len(windows)], iter(logits[len(windows) :])
        found: list[ReadSpan] = []
        nulls = []
        for win, ctx, twin, (s, e) in zip(windows, owners, twins, own, strict=True):
            if twin is not None:  # the two readings' mean over the shared context tokens
                ts, te = next(twin_logits)
                n, a, b = len(win.spans), win.first, twin.first
                s, e = s.copy(), e.copy()
                s[0], e[0] = (s[0] + ts[0]) / 2, (e[0] + te[0]) / 2
                s[a : a + n] = (s[a : a + n] + ts[b : b + n]) / 2
                e[a : a + n] = (e[a : a + n] + te[b : b + n]) / 2
            null = float(s[0] + e[0])
            nulls.append(null)
            for score, i, j in best_spans(s, e, win, top=self.top):
                lo, hi = win.char_span(i, j)
                text = ctx.text[lo:hi]
                if text.strip():
                    found.append(
                        ReadSpan(
                            ctx.doc_id, ctx.start + lo, ctx.start + hi, text, score, null, ctx.rank
                        )
                    )
        found.sort(key=lambda s: s.score, reverse=True)
        return Reading(tuple(found), tuple(nulls), len(windows), tuple(c.rank for c in owners))


def span_probabilities(reading: Reading) -> np.ndarray:
    """Each span's share of the probability mass over spans and no-answer options."""
    if not reading.spans:
        return np.zeros(0)
    logits = np.array([s.score for s in reading.spans] + list(reading.null_scores))
    p = np.exp(logits - logits.max())
    p /= p.sum()
    return p[: len(reading.spans)]
