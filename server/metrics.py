"""Prometheus metrics of the sync protocol (HTTP metrics come from Litestar's middleware)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter

from schemas.sync import ItemResult

PUSH_ITEMS = Counter("patrolsync_push_items", "Pushed items by result status", ["status"])
PUSHES = Counter("patrolsync_pushes", "Push requests answered", ["replayed"])
PULLED = Counter("patrolsync_pulled_changes", "Changes served by pull")


def record_push(results: Iterable[ItemResult], replayed: bool) -> None:
    PUSHES.labels(replayed=str(replayed).lower()).inc()
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    for status, n in counts.items():
        PUSH_ITEMS.labels(status=status).inc(n)
