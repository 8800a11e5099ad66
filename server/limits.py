"""Backpressure in this process: a cap on pushes in flight, and a separate one on push bodies
being received. Over either, refuse at once (429); never queue.

A push takes its in-flight slot only once its whole body has arrived (within
``body_timeout_s``), so a client that sends slowly holds a receiving slot at most that long and
never the capacity of the pushes being applied.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from server.errors import ApiError, Code


class InflightLimiter:
    """Counts requests in flight; never queues, so an overloaded server answers fast."""

    def __init__(
        self, limit: int, retry_after_s: int, *, what: str = "pushes are in flight"
    ) -> None:
        self.limit = limit
        self.retry_after_s = retry_after_s
        self.what = what
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
                f"{self.limit} {self.what}; retry later",
                details={"limit": self.limit, "retry_after_s": self.retry_after_s},
                headers={"Retry-After": str(self.retry_after_s)},
            )
        try:
            yield
        finally:
            self.release()


class PushLimits(InflightLimiter):
    """The in-flight cap (this object's own count) and the receiving cap (``receiving``)."""

    def __init__(self, inflight: int, receiving: int, retry_after_s: int) -> None:
        super().__init__(inflight, retry_after_s)
        self.receiving = InflightLimiter(
            receiving, retry_after_s, what="push bodies are being received"
        )
