"""The live alert stream's events (server-sent events): a catch-up from the database after the
client's position, then the process's live hub (``server.live``), with neither a gap nor a
repeat between them.

Order of work: subscribe to the hub first, then read the database after the client's position to
the end, then send what the hub delivers, dropping every event at or before the last position
already sent. The hub delivers everything it reads after the subscription, and everything it
read before is at or before its position then, which the catch-up (made later, to the end) has
read too (see ``server.live``). Each event's id is its change position, so a client that
reconnects with ``Last-Event-ID`` resumes exactly after the last event it received.

A stream that falls ``stream_queue_events`` behind is closed after a ``retry`` hint; the
browser's ``EventSource`` reconnects with ``Last-Event-ID``. At most ``max_streams`` streams
follow at once per process: one more is answered 429 before the stream starts.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar.response import ServerSentEventMessage

from schemas.alerts import Alert
from server import alerting
from server.errors import ApiError, Code
from server.live import Behind, Full, Hub, LiveEvent
from server.state import Services
from server.store import alerts as store
from server.store import counter
from server.store.rows import FeedRow, Roots
from server.tx import read
from sync import cursor as cursors

STREAM_PAGE = 200
"""Events per catch-up read."""
KEEP_ALIVE_S = 15.0
"""A comment is sent after this long without an event (proxies close silent connections)."""
RECONNECT_MS = 1000
"""The ``retry`` hint sent before closing a stream that fell behind."""
_stream_json = msgspec.json.Encoder()


def admit(svc: Services) -> None:
    """429 ``too_many_requests`` (with ``Retry-After``) when the process follows
    ``max_streams`` streams already; checked before the stream's first byte. (Two streams
    admitted at the same instant past the cap: the later one closes at once, and reconnects.)"""
    hub = svc.live
    if hub.subscribers >= hub.max_subscribers:
        retry = svc.settings.retry_after_s
        raise ApiError(
            Code.TOO_MANY_REQUESTS,
            f"{hub.max_subscribers} live streams open in this server process; retry later",
            details={"limit": hub.max_subscribers, "retry_after_s": retry},
            headers={"Retry-After": str(retry)},
        )


_ENCODED_KEPT = 4096
_encoded: OrderedDict[tuple[int, int], str] = OrderedDict()
"""The latest live events as JSON: the hub hands one event to every stream of its subtree, and
each is encoded once, not once per stream."""


def _message(row: FeedRow, alert: Alert) -> tuple[ServerSentEventMessage, tuple[int, int]]:
    position = (row.txid, row.seq)
    data = _stream_json.encode(alerting.stream_event(row, alert)).decode()
    message = ServerSentEventMessage(data=data, event="alert", id=cursors.STREAM.encode(position))
    return message, position


def _live_message(event: LiveEvent) -> tuple[ServerSentEventMessage, tuple[int, int]]:
    position = (event.txid, event.seq)
    data = _encoded.get(position)
    if data is None:
        data = _encoded[position] = _stream_json.encode(
            alerting.stream_event(event.row, event.alert)
        ).decode()
        if len(_encoded) > _ENCODED_KEPT:
            _encoded.popitem(last=False)
    message = ServerSentEventMessage(data=data, event="alert", id=cursors.STREAM.encode(position))
    return message, position


async def _batch(path: Roots, after: tuple[int, int], conn: Any) -> list[tuple[FeedRow, Alert]]:
    """The next events of the stream, each with its alert carrying names."""
    bound = await counter.bound(conn)
    rows = await store.events_after(conn, path, after, bound, STREAM_PAGE)
    return list(zip(rows, await alerting.named(conn, rows), strict=True))


async def _catch_up(
    engine: Any, path: Roots, position: list[tuple[int, int]]
) -> AsyncIterator[ServerSentEventMessage]:
    """Every event under ``path`` after ``position[0]`` in the database now, in order;
    ``position[0]`` follows the last one sent."""
    while True:
        rows = await read(engine, functools.partial(_batch, path, position[0]))
        for row, alert in rows:
            message, position[0] = _message(row, alert)
            yield message
        if len(rows) < STREAM_PAGE:
            return


async def events(
    engine: Any, hub: Hub, path: Roots, after: tuple[int, int], follow: bool
) -> AsyncIterator[ServerSentEventMessage]:
    """The stream after ``after``: the catch-up, then (``follow``) live events until the client
    leaves, the stream falls behind, or the server stops."""
    position = [after]
    if not follow:
        async for message in _catch_up(engine, path, position):
            yield message
        return
    try:
        async with hub.subscribe(path) as sub:
            async for message in _catch_up(engine, path, position):
                yield message
            while True:
                try:
                    live = await sub.next(KEEP_ALIVE_S)
                except Behind:
                    yield ServerSentEventMessage(comment="behind: reconnect", retry=RECONNECT_MS)
                    return
                if not live:
                    yield ServerSentEventMessage(comment="keep-alive")
                    continue
                for event in live:
                    if (event.txid, event.seq) > position[0]:
                        message, position[0] = _live_message(event)
                        yield message
    except Full:
        yield ServerSentEventMessage(comment="too many streams", retry=RECONNECT_MS)
