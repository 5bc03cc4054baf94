"""The gold set: versioned JSONL rows, validated with pydantic."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from index.errors import RagError

DEFAULT_GOLD = Path(__file__).with_name("gold") / "dev.jsonl"
Kind = Literal["en", "cross", "zh", "zh-cross", "none"]


class GoldError(RagError):
    """A gold file that cannot be used; the message names the line."""

    kind = "gold_error"


class GoldItem(BaseModel):
    """One question with its acceptable answers (empty = the corpus does not answer it)."""

    id: str = Field(min_length=1)
    q: str = Field(min_length=1)
    answers: list[str] = Field(default_factory=list)
    doc: str | None = None
    kind: Kind
    evidence: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> GoldItem:
        if self.kind == "none" and self.answers:
            raise ValueError("kind 'none' must have no answers")
        if self.kind != "none" and not self.answers:
            raise ValueError(f"kind {self.kind!r} needs at least one answer")
        return self

    @property
    def answerable(self) -> bool:
        """Whether the corpus holds the answer."""
        return bool(self.answers)


def load_gold(path: Path | None = None) -> list[GoldItem]:
    """Read and validate a gold JSONL file.

    Raises:
        GoldError: naming the file and line of the first bad row.
    """
    path = path or DEFAULT_GOLD
    if not path.exists():
        raise GoldError(f"gold file {path} does not exist")
    items: list[GoldItem] = []
    seen: set[str] = set()
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = GoldItem.model_validate(json.loads(line))
        except json.JSONDecodeError as exc:
            raise GoldError(f"{path}:{n}: not valid JSON ({exc.msg})") from exc
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "row"
            raise GoldError(f"{path}:{n}: {where}: {first['msg']}") from exc
        if item.id in seen:
            raise GoldError(f"{path}:{n}: duplicate id {item.id!r}")
        seen.add(item.id)
        items.append(item)
    if not items:
        raise GoldError(f"{path} holds no questions")
    return items
