"""Per-client rate limiting (token buckets) for the ``/v1`` routes.

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
