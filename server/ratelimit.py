"""Limits on guessing: failed attempts of an action (an enrolment code, later a password) counted
per client address and overall, over a sliding window. In-process: with several server processes
each one counts its own.

Invariants:

* :class:`FailureWindow`: ``wait_ms(key, now)`` is 0 iff fewer than ``limit`` failures of
  ``key`` happened in ``(now - window_ms, now]``; otherwise it is the time until the oldest of
  them leaves the window. At most ``limit`` timestamps are kept per key and at most ``max_keys``
  keys (the least recently failed key is forgotten first; keys whose failures all left the
  window are dropped as they are met).
* :class:`Guard`: an attempt is refused (429 ``too_many_requests`` with ``Retry-After``) while
  either of its windows is full, whatever it carries (a right code too: otherwise the limit
  would not stop guessing). An attempt counts as a failure from the moment it begins, so
  concurrent attempts cannot overshoot the limit; one that ends without a failure is taken back.

Time is an argument (milliseconds), never read here.
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque
from collections.abc import Hashable, Iterator
from contextlib import contextmanager

import structlog

from server.errors import ApiError, Code
from sync.durations import SECOND_MS

log = structlog.get_logger("patrolsync.server")

OVERALL = "*"
"""The client of the overall key: every address together."""


class FailureWindow:
    """Failures per key over a sliding window of ``window_ms``: at most ``limit``."""

    def __init__(self, limit: int, window_ms: int, *, max_keys: int = 100_000) -> None:
        if limit < 1 or window_ms < 1 or max_keys < 1:
            raise ValueError("limit, window and max_keys must be at least 1")
        self.limit = limit
        self.window_ms = window_ms
        self.max_keys = max_keys
        self._failures: OrderedDict[Hashable, deque[int]] = OrderedDict()

    def _recent(self, key: Hashable, now_ms: int) -> deque[int] | None:
        found = self._failures.get(key)
        if found is None:
            return None
        while found and found[0] <= now_ms - self.window_ms:
            found.popleft()
        if not found:
            del self._failures[key]
            return None
        return found

    def wait_ms(self, key: Hashable, now_ms: int) -> int:
        """0 if another failure of ``key`` is allowed now, else how long until it is."""
        found = self._recent(key, now_ms)
        if found is None or len(found) < self.limit:
            return 0
        return max(1, found[0] + self.window_ms - now_ms)

    def add(self, key: Hashable, now_ms: int) -> None:
        found = self._recent(key, now_ms)
        if found is None:
            found = self._failures[key] = deque(maxlen=self.limit)
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)
        else:
            self._failures.move_to_end(key)
        found.append(now_ms)

    def count(self, key: Hashable, now_ms: int) -> int:
        """Failures (and attempts counted as such) of ``key`` in the window at ``now_ms``."""
        found = self._recent(key, now_ms)
        return 0 if found is None else len(found)

    def discard(self, key: Hashable, at_ms: int) -> None:
        """Take back one failure of ``key`` recorded at ``at_ms`` (if still kept)."""
        found = self._failures.get(key)
        if found is not None and at_ms in found:
            found.remove(at_ms)
            if not found:
                del self._failures[key]

    def __len__(self) -> int:
        return len(self._failures)


class Guard:
    """Failed attempts of one action (``"enrol"``, ``"login"``…), limited per client address
    and overall; keys ``(action, client)`` and ``(action, OVERALL)``."""

    def __init__(self, action: str, *, per_client: FailureWindow, overall: FailureWindow) -> None:
        self.action = action
        self.per_client = per_client
        self.overall = overall
        self._pending: Counter[tuple[str, str]] = Counter()
        """Attempts begun and not ended yet, per key (they sit in the windows meanwhile)."""

    def _keys(self, client: str) -> tuple[tuple[FailureWindow, tuple[str, str]], ...]:
        return (
            (self.per_client, (self.action, client)),
            (self.overall, (self.action, OVERALL)),
        )

    def begin(self, client: str, now_ms: int) -> None:
        """Start an attempt at ``now_ms``, counted as a failure until :meth:`forgive`; 429
        while locked out."""
        wait = max(self._wait_ms(window, key, now_ms) for window, key in self._keys(client))
        if wait:
            retry_after_s = -(-wait // SECOND_MS)
            log.warning(
                "too many failed attempts: refused",
                action=self.action,
                client=client,
                retry_after_s=retry_after_s,
            )
            raise ApiError(
                Code.TOO_MANY_REQUESTS,
                f"too many failed {self.action} attempts; retry in {retry_after_s} s",
                details={"retry_after_s": retry_after_s},
                headers={"Retry-After": str(retry_after_s)},
            )
        for window, key in self._keys(client):
            window.add(key, now_ms)
            self._pending[key] += 1

    def _wait_ms(self, window: FailureWindow, key: tuple[str, str], now_ms: int) -> int:
        """How long an attempt of ``key`` must wait: until the oldest failure leaves the window
        when real failures fill it; a second when attempts in progress fill it (they end in
        milliseconds: many phones enrolling at once from one address are slowed, not locked
        out for the whole window)."""
        wait = window.wait_ms(key, now_ms)
        if wait and window.count(key, now_ms) - self._pending[key] < window.limit:
            return min(wait, 1000)
        return wait

    def _end(self, client: str) -> None:
        for _, key in self._keys(client):
            self._pending[key] -= 1
            if self._pending[key] <= 0:
                del self._pending[key]

    def forgive(self, client: str, at_ms: int) -> None:
        """Take back the attempt begun at ``at_ms``: it did not fail."""
        for window, key in self._keys(client):
            window.discard(key, at_ms)
        self._end(client)

    @contextmanager
    def attempt(self, client: str, now_ms: int, failure: Code) -> Iterator[None]:
        """Around one attempt: an :class:`ApiError` with code ``failure`` leaving the block is
        a failed attempt (logged, without the secret tried); success or any other error (a bad
        body, a database outage) is not counted."""
        self.begin(client, now_ms)
        try:
            yield
        except ApiError as exc:
            if exc.code is not failure:
                self.forgive(client, now_ms)
            else:
                self._end(client)
                log.info("failed attempt", action=self.action, client=client)
            raise
        except BaseException:
            self.forgive(client, now_ms)
            raise
        self.forgive(client, now_ms)
