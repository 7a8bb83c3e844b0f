"""Retries with exponential backoff and jitter, shared by the REST and gRPC clients (sync and async).

A call is retried only when another attempt may succeed: the connection failed, or the server said
it is unavailable (REST 502/503/504 and 429 by default; gRPC UNAVAILABLE). Invalid input, unknown
models, model bugs (500), timeouts and TLS failures are raised at once.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Awaitable, Callable, TypeVar

from .errors import ClientError, ConnectionFailed, ServerError, TLSError

T = TypeVar("T")


class RetryPolicy:
    __slots__ = ("retries", "backoff", "max_backoff", "statuses")

    def __init__(self, retries: int, backoff: float, max_backoff: float, statuses: frozenset[int]):
        if retries < 0:
            raise ValueError("retries must be 0 or more")
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.statuses = statuses

    def should_retry(self, exc: ClientError, attempt: int, retry_status: bool = True) -> bool:
        if attempt >= self.retries or isinstance(exc, TLSError):
            return False
        if isinstance(exc, ConnectionFailed):
            return True
        return retry_status and isinstance(exc, ServerError) and exc.status in self.statuses

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry ``attempt`` (0-based): doubling, capped, with 50-100% jitter."""
        return min(self.max_backoff, self.backoff * (2**attempt)) * random.uniform(0.5, 1.0)

    def run(self, once: Callable[[], T], retry_status: bool = True) -> T:
        attempt = 0
        while True:
            try:
                return once()
            except ClientError as exc:
                if not self.should_retry(exc, attempt, retry_status):
                    raise
            time.sleep(self.delay(attempt))
            attempt += 1

    async def arun(self, once: Callable[[], Awaitable[T]], retry_status: bool = True) -> T:
        attempt = 0
        while True:
            try:
                return await once()
            except ClientError as exc:
                if not self.should_retry(exc, attempt, retry_status):
                    raise
            await asyncio.sleep(self.delay(attempt))
            attempt += 1
