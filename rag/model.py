"""Linear scorers whose weights are fitted on gold data and stored as JSON."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_WEIGHTS = Path(__file__).with_name("weights.json")


@dataclass(frozen=True)
class LinearModel:
    """``sigmoid(bias + sum(w_i * (x_i - mean_i) / scale_i))`` over named features."""

    bias: float
    weights: dict[str, float]
    mean: dict[str, float]
    scale: dict[str, float]

    def __post_init__(self) -> None:
        # folded once: w * (x - mean) / scale = coef * x + offset
        coef = {n: w / (self.scale.get(n, 1.0) or 1.0) for n, w in self.weights.items() if w != 0.0}
        offset = self.bias - sum(c * self.mean.get(n, 0.0) for n, c in coef.items())
        object.__setattr__(self, "_coef", tuple(coef.items()))
        object.__setattr__(self, "_offset", offset)

    def logit(self, features: dict[str, float]) -> float:
        """The raw linear score."""
        get = features.get
        return self._offset + sum(c * get(n, 0.0) for n, c in self._coef)  # type: ignore[attr-defined]

    def prob(self, features: dict[str, float]) -> float:
        """The score squashed to 0..1."""
        z = max(-30.0, min(30.0, self.logit(features)))
        return 1.0 / (1.0 + math.exp(-z))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"bias": self.bias, "weights": self.weights, "mean": self.mean, "scale": self.scale}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LinearModel:
        """Inverse of :meth:`to_dict`."""
        return cls(
            float(data["bias"]),
            dict(data["weights"]),
            dict(data.get("mean", {})),
            dict(data.get("scale", {})),
        )


@dataclass(frozen=True)
class AnswerWeights:
    """The three fitted scorers and the abstention threshold."""

    sentence: LinearModel
    candidate: LinearModel
    abstain: LinearModel
    threshold: float
    meta: dict[str, Any]

    @classmethod
    def load(cls, path: Path | None = None) -> AnswerWeights:
        """Read weights JSON (the bundled file by default)."""
        data = json.loads((path or DEFAULT_WEIGHTS).read_text())
        return cls(
            LinearModel.from_dict(data["sentence"]),
            LinearModel.from_dict(data["candidate"]),
            LinearModel.from_dict(data["abstain"]),
            float(data["threshold"]),
            dict(data.get("meta", {})),
        )

    def save(self, path: Path) -> None:
        """Write weights JSON."""
        data = {
            "sentence": self.sentence.to_dict(),
            "candidate": self.candidate.to_dict(),
            "abstain": self.abstain.to_dict(),
            "threshold": self.threshold,
            "meta": self.meta,
        }
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
