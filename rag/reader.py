"""Read stage: the learned span reader over the best retrieved contexts.

``Reader.run(question, contexts)`` tokenises each context once, cuts it into the windows
the reader was trained on, scores every span of at most ``MAX_ANSWER_TOKENS`` tokens and
each window's no-answer option, and returns spans with exact document offsets, best
first. It answers any question style in either language; whether to trust its best span
is the abstention stage's decision (:mod:`rag.abstain`).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Context", "ReadSpan", "Reading", "Reader", "cpu_has_bf16", "use_bf16"]

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


def cpu_has_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU multiplies bf16 natively (AVX512-BF16 or AMX); False where unknown."""
    try:
        flags = cpuinfo.read_text(errors="replace").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def use_bf16(precision: str) -> bool:
    """The reader's ``RAG_READER_PRECISION`` resolved: ``auto`` means bf16 where it is native.

    Without native instructions bf16 is emulated and slower than fp32, so auto never picks it.
    """
    if precision == "auto":
        return cpu_has_bf16()
    return precision == "bf16"


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
    ):
        """Configure the reader; weights load on first use.

        Args:
            weights_path: trained reader weights (default: the bundled ``rag/models/reader.pt``).
            batch_size: windows per forward pass.
            top: spans kept per window.
            int8: run the linear layers with int8 weights (torch dynamic quantization).
            bf16: run the forward pass under bf16 autocast (ignored with ``int8``).
        """
        self.weights_path = weights_path
        self.int8 = int8
        self.bf16 = bf16 and not int8
        self.batch_size = batch_size
        self.top = top
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
            from rag.e5 import E5Tokenizer, E5Weights
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

    def run(self, question: str, contexts: list[Context]) -> Reading:
        """Read the contexts for the question; spans best first (at most ``top`` a window)."""
        import torch

        from rag.reader_model import as_batch
        from rag.windows import best_spans, make_windows, question_ids

        self.warm_up()
        cfg = self._model.config
        q_ids = question_ids(self._tok, question, cfg.max_question_tokens)
        windows, owners = [], []
        for ctx in contexts:
            ids, spans = self._tok.encode(ctx.text)
            for w in make_windows(q_ids, ids, spans, max_len=cfg.max_len):
                windows.append(w)
                owners.append(ctx)
        found: list[ReadSpan] = []
        nulls = [0.0] * len(windows)
        # windows of like length share a batch, so little of a batch is padding
        order = sorted(range(len(windows)), key=lambda i: len(windows[i].ids), reverse=True)
        with (
            torch.inference_mode(),
            torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16),
        ):
            for k in range(0, len(order), self.batch_size):
                batch = order[k : k + self.batch_size]
                words, mask = as_batch(self._weights, [windows[i].ids for i in batch])
                start, end = self._model(words, mask)
                s_np, e_np = start.float().numpy(), end.float().numpy()
                for row, w_idx in enumerate(batch):
                    win, ctx = windows[w_idx], owners[w_idx]
                    null = float(s_np[row, 0] + e_np[row, 0])
                    nulls[w_idx] = null
                    for score, a, b in best_spans(s_np[row], e_np[row], win, top=self.top):
                        lo, hi = win.char_span(a, b)
                        text = ctx.text[lo:hi]
                        if not text.strip():
                            continue
                        found.append(
                            ReadSpan(
                                ctx.doc_id,
                                ctx.start + lo,
                                ctx.start + hi,
                                text,
                                score,
                                null,
                                ctx.rank,
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
