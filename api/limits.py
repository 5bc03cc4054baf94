"""Per-client rate limiting (token buckets) for the ``/v1`` routes, and the body size limit.

A client is its bearer key (hashed, never stored in clear) or, without one, its address.
Off by default (``RAG_RATE_LIMIT_PER_MINUTE=0``). Each worker process keeps its own
buckets, so with N workers a client may get up to N times the limit.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import OrderedDict

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_CLIENTS = 10_000


def client_id(authorization: str, address: str) -> str:
    """The identity a request is limited under."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token:
        return "key:" + hashlib.sha256(token.encode()).hexdigest()[:16]
    return "addr:" + address


class RateLimiter:
    """Token buckets: ``per_minute`` requests a minute, up to ``burst`` at once."""

    def __init__(self, per_minute: int, burst: int = 0, clock: object = None):
        """Configure the limit (``per_minute`` > 0; ``burst`` 0 means ``per_minute``)."""
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.rate = per_minute / 60.0
        self.capacity = float(burst or per_minute)
        self._clock = clock or time.monotonic
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def acquire(self, client: str) -> float:
        """Take one token; returns 0 when allowed, else the seconds to wait before retrying."""
        now = self._clock()  # type: ignore[operator]
        with self._lock:
            tokens, last = self._buckets.pop(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate
            self._buckets[client] = (tokens, now)
            while len(self._buckets) > MAX_CLIENTS:
                self._buckets.popitem(last=False)
        return wait


def retry_after(wait: float) -> str:
    """The ``Retry-After`` header value (whole seconds, at least 1)."""
    return str(max(1, math.ceil(wait)))


class BodyLimit:
    """ASGI middleware: a request body past ``max_bytes`` is refused with a 413.

    ``Content-Length`` is checked before the body is read (by the app's middleware); this
    counts the bytes as they arrive, so a chunked upload (no length given) is stopped at
    the limit instead of being read whole into memory.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on with a ``receive`` that counts the body's bytes."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise HTTPException(413, f"request body is larger than {self.max_bytes} bytes")
            return message

        await self.app(scope, counted, send)
