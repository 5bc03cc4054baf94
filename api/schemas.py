"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

# Has a visible character (not white space, not a control character) and no NUL; stated in
# the schema so that clients and fuzzers know. Python's str.strip() also strips the control
# characters \x1c-\x1f, so "visible" must exclude them for the two to agree.
NON_BLANK_TEXT = r"^[^\x00]*[^\s\x00-\x1f\x7f-\x9f][^\x00]*$"
# No leading '.', no '..' (no look-around: pydantic's regex engine has none); max 128 apart.
DOC_ID_PATTERN = r"^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?$"
DOC_ID_RULE = (
    "doc_id: use 1-128 characters from A-Z a-z 0-9 . _ -, not starting with '.' and without '..'"
)


class AskRequest(BaseModel):
    """A question."""

    question: str = Field(
        min_length=1,
        pattern=NON_BLANK_TEXT,
        description="The question, English or Chinese (not blank, no NUL characters; at most "
        "RAG_MAX_QUESTION_CHARS characters, stated as maxLength in the served schema).",
    )
    top_k: int = Field(5, ge=1, le=50, description="Citations to return.")
    include_passages: bool = Field(False, description="Also return the retrieved passages.")

    @field_validator("question")
    @classmethod
    def _trimmed(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("question must not be empty")
        if "\x00" in v:
            raise ValueError("question must not contain NUL characters")
        return v


class CitationOut(BaseModel):
    """Where the answer comes from: ``document.text[start:end]``."""

    doc_id: str
    passage_id: str
    title: str
    snippet: str
    start: int
    end: int
    score: float
    highlights: list[tuple[int, int]] = Field(
        default_factory=list, description="The question's terms: (start, end) in the snippet."
    )


class PassageOut(BaseModel):
    """A retrieved passage."""

    passage_id: str
    doc_id: str
    text: str
    start: int
    end: int
    score: float


class AskResponse(BaseModel):
    """An answer (null when the corpus does not hold one) with its citations."""

    answer: str | None
    confidence: float
    question_type: str
    citations: list[CitationOut]
    passages: list[PassageOut] | None = None
    took_ms: float


class SearchResponse(BaseModel):
    """Passages for a query."""

    query: str
    hits: list[PassageOut]


class DocumentIn(BaseModel):
    """A document to create or replace."""

    text: str = Field(
        min_length=1, pattern=NON_BLANK_TEXT, description="The article text (not blank, no NUL)."
    )
    title: str | None = Field(None, max_length=500)
    date: str | None = Field(
        None, pattern=r"^\d{4}-\d{2}-\d{2}$", description="ISO date, YYYY-MM-DD."
    )

    @field_validator("text")
    @classmethod
    def _text(cls, v: str) -> str:
        if "\x00" in v:
            raise ValueError("text must not contain NUL characters (binary data is not a document)")
        if not v.strip():
            raise ValueError("text must not be blank")
        return v


class DocumentSummary(BaseModel):
    """A document in the list."""

    doc_id: str
    title: str
    passages: int
    updated_at: float


class DocumentList(BaseModel):
    """A page of documents."""

    items: list[DocumentSummary]
    total: int
    offset: int
    limit: int


class DocumentOut(BaseModel):
    """A document's canonical text and metadata."""

    doc_id: str
    title: str
    date: str | None
    lang: str
    text: str
    passages: int
    updated_at: float


class DocumentWritten(BaseModel):
    """Result of a PUT."""

    doc_id: str
    status: str
    passages: int


class ErrorBody(BaseModel):
    """``{"error": {"type", "message"}}``."""

    error: dict[str, str | None]
