"""Backpressure: a cap on pushes in flight in this process. Over it, refuse at once (429)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from server.errors import ApiError, Code


class InflightLimiter:
    """Counts requests in flight; never queues, so an overloaded server answers fast."""

    def __init__(self, limit: int, retry_after_s: int) -> None:
        self.limit = limit
        self.retry_after_s = retry_after_s
        self.inflight = 0

    def try_acquire(self) -> bool:
        if self.inflight >= self.limit:
            return False
        self.inflight += 1
        return True

    def release(self) -> None:
        self.inflight -= 1

    @contextmanager
    def slot(self) -> Iterator[None]:
        if not self.try_acquire():
            raise ApiError(
                Code.TOO_MANY_REQUESTS,
                f"{self.limit} pushes are in flight; retry later",
                details={"limit": self.limit, "retry_after_s": self.retry_after_s},
                headers={"Retry-After": str(self.retry_after_s)},
            )
        try:
            yield
        finally:
            self.release()
