"""The process's one listener and the live hub.

:class:`Listener`: one per server process, the one connection that listens (PostgreSQL
``LISTEN``) on every channel the process follows: the alert events' (the hub below) and the
changes' (the waiting pulls, ``server.waiting``). It listens anew when the connection is lost
and tells each follower then, since notifications sent meanwhile are gone.

The live hub: one per server process, it learns of committed alert events once for the whole
process and fans them out to its subscribers, each the events of its own subtree.

How it learns: on PostgreSQL the transactions that write alert events notify a channel
(``store.alert_events.add_events``; delivered at commit) and the hub hears it through the
process's listener, with one cheap poll every ``safety_poll_s`` in case a notification was lost (and
``poll_s`` while the listening connection is down, until it is back). On SQLite, where the worker
is another process, the hub polls every ``poll_s``. However woken, it reads the feed after its
last position **once** (``store.alert_events.feed_after``, in pages) and offers each subscriber
the events under its path. N open streams cost one read loop, not N; with no subscriber the hub
reads nothing.

Invariants:

- The hub reads only events of finished transactions (below ``counter.bound``), in position
  order, so its position only moves forward and no event is ever positioned behind it later.
- A subscriber receives every event of its subtree that the hub reads after it subscribed, in
  position order, each once. Together with a catch-up read made *after* subscribing (the stream
  does one), nothing is missed: every event the hub read before the subscription is at or before
  the hub's position then, and the catch-up (reading to the end, later) has it.
- Bounded: a subscriber holds at most ``queue_limit`` undelivered events; one more and it is
  closed (:class:`Behind` on its next read) and the hub forgets it. At most ``max_subscribers``
  subscribe at once (:class:`Full` beyond).

A consumer (a stream, a page) subscribes with ``async with hub.subscribe(path) as sub`` and
reads with ``await sub.next(timeout_s)``; it reads its catch-up *after* subscribing and drops
events at or before the last position it has.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NamedTuple

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from schemas.alerts import Alert
from server import alerting
from server.store import alert_events, backend, counter
from server.store.interface import ALERTS_CHANNEL as ALERTS
from server.store.interface import Listening
from server.store.rows import FeedRow, Roots, root_paths
from server.tx import read

log = structlog.get_logger("patrolsync.live")

PAGE = 500
"""Events read per statement; the hub reads pages until one is short."""


class LiveEvent(NamedTuple):
    """An event of the feed as the hub hands it out: its position, the unit path it is filed
    under (subscribers match it by prefix), its row, and its alert with names (read once for
    every subscriber)."""

    txid: int
    seq: int
    unit_path: str
    row: FeedRow
    alert: Alert


class Full(Exception):
    """The process already has ``max_subscribers`` subscribers."""


class Behind(Exception):
    """The subscriber fell more than ``queue_limit`` events behind and was closed: resume from
    the database after the last event it delivered."""


class Subscription:
    """The events of one subtree (``path`` a prefix of their unit path) or of several, as the
    hub reads them.

    Filled by the hub only (:meth:`offer`), drained by one consumer (:meth:`next`).
    """

    def __init__(self, path: Roots, limit: int) -> None:
        self.paths = root_paths(path)
        self._limit = limit
        self._queue: deque[LiveEvent] = deque()
        self._ready = asyncio.Event()
        self.behind = False

    def offer(self, events: list[LiveEvent]) -> bool:
        """Queue the events under this path; False (and closed) if that exceeds the limit."""
        if self.behind:
            return False
        mine = [e for e in events if e.unit_path.startswith(self.paths)]
        if not mine:
            return True
        if len(self._queue) + len(mine) > self._limit:
            self.close()
            return False
        self._queue.extend(mine)
        self._ready.set()
        return True

    def close(self) -> None:
        """Closed as if behind: the consumer's next read raises :class:`Behind`."""
        self.behind = True
        self._queue.clear()
        self._ready.set()

    async def next(self, timeout_s: float) -> list[LiveEvent]:
        """The events queued, in position order, waiting up to ``timeout_s`` for one (``[]``
        when none came). Raises :class:`Behind` once closed for falling behind."""
        if not self._queue and not self.behind:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await self._ready.wait()
        if self.behind:
            raise Behind
        self._ready.clear()
        found = list(self._queue)
        self._queue.clear()
        return found


Reader = Callable[[AsyncConnection], Awaitable[Any]]


class Listener:
    """The process's one listener: on PostgreSQL one connection of its own, ``LISTEN`` on every
    channel a follower asked for (:meth:`follow`), each notification handed to its channel's
    handler on the event loop. Kept up by a task that checks the connection every ``check_s``
    and listens anew once it is lost; each follower's ``resumed`` is called then (and at the
    first listen), since notifications sent while nobody listened are gone. On a backend
    without notifications (SQLite) it listens to nothing: :attr:`notifies` turns False and the
    followers poll or are woken in-process."""

    def __init__(self, engine: AsyncEngine, *, check_s: float) -> None:
        self.engine = engine
        self.check_s = check_s
        self.notifies = True
        """False once the backend said it has no notifications."""
        self._handlers: dict[str, Callable[[str], None]] = {}
        self._resumed: list[Callable[[], None]] = []
        self._listening: Listening | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def follow(
        self, channel: str, handler: Callable[[str], None], *, resumed: Callable[[], None]
    ) -> None:
        """Hand every notification on ``channel`` to ``handler`` (before :meth:`start`)."""
        self._handlers[channel] = handler
        self._resumed.append(resumed)

    @property
    def listening(self) -> bool:
        return self._listening is not None and self._listening.alive

    async def start(self) -> None:
        """Listen (where the backend can) and keep listening; nothing if started already."""
        if self._task is not None:
            return
        await self.ensure()
        if self._task is None:
            self._task = asyncio.create_task(self._keep(), name="patrolsync-listener")

    async def ensure(self) -> None:
        """Listen anew if the connection is lost (raises nothing: the database may be down)."""
        async with self._lock:
            if not self.notifies or self.listening:
                return
            if self._listening is not None:
                await self._listening.close()
                self._listening = None
            try:
                found = await backend.of(self.engine).notices.listen(self.engine, self._handlers)
            except Exception as exc:  # the database is down: the followers poll until it is back
                log.warning("cannot listen; polling", error=type(exc).__name__)
                return
            if found is None:
                self.notifies = False
                return
            self._listening = found
        for resumed in self._resumed:
            resumed()  # what was committed while nobody listened

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(self.check_s)
            await self.ensure()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._listening is not None:
            await self._listening.close()
            self._listening = None


class Hub:
    """See the module's docstring. :meth:`start` and :meth:`stop` are the app lifespan's (a
    subscription starts a hub not yet started, for an app run without its lifespan)."""

    def __init__(
        self,
        engine: AsyncEngine,
        listener: Listener,
        *,
        poll_s: float,
        safety_poll_s: float,
        queue_limit: int,
        max_subscribers: int,
    ) -> None:
        self.engine = engine
        self.poll_s = poll_s
        self.safety_poll_s = safety_poll_s
        self.queue_limit = queue_limit
        self.max_subscribers = max_subscribers
        self.position: tuple[int, int] | None = None
        """The last event read (None until the feed's end could be read)."""
        self.reads = 0
        """Feed reads so far (each one bound and one page): what the open streams cost."""
        self._subscribers: set[Subscription] = set()
        self._woken = asyncio.Event()
        self.listener = listener
        listener.follow(ALERTS, lambda _payload: self.wake(), resumed=self.wake)
        self._task: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    @property
    def listening(self) -> bool:
        return self.listener.listening

    async def start(self) -> None:
        """Take the feed's current end as the position, listen (where the backend can) and
        start the read loop; nothing if started already."""
        async with self._starting:
            if self._task is not None:
                return
            try:
                self.position = await read(self.engine, _end)
            except Exception as exc:  # the database is down: the first read takes it later
                log.warning("live hub cannot read the feed yet", error=type(exc).__name__)
            await self.listener.start()
            self._task = asyncio.create_task(self._run(), name="patrolsync-live-hub")

    async def _known_position(self) -> tuple[int, int]:
        """The position, read now if the start could not (raises the database's error)."""
        async with self._starting:
            if self.position is None:
                self.position = await read(self.engine, _end)
            return self.position

    async def stop(self) -> None:
        """Stop reading and listening; every subscriber is closed (as if behind)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.listener.stop()
        for sub in list(self._subscribers):
            sub.close()
        self._subscribers.clear()

    @contextlib.asynccontextmanager
    async def subscribe(self, path: Roots) -> AsyncIterator[Subscription]:
        """A subscription to the events under ``path`` read from now on, for the ``with``
        block. Raises :class:`Full` when the process has ``max_subscribers`` already."""
        if len(self._subscribers) >= self.max_subscribers:
            raise Full
        sub = Subscription(path, self.queue_limit)
        self._subscribers.add(sub)
        try:
            await self.start()
            await self._known_position()
            yield sub
        finally:
            self._subscribers.discard(sub)

    def wake(self) -> None:
        """Read the feed now (a notification came)."""
        self._woken.set()

    async def _run(self) -> None:
        while True:
            interval = self.safety_poll_s if self.listening else self.poll_s
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._woken.wait()
            self._woken.clear()
            if not self._subscribers:
                # Nobody to tell: no read. The next subscription reads the feed's end afresh
                # (after subscribing, so the invariants hold).
                self.position = None
                continue
            try:
                await self.listener.ensure()
                await self._read_new()
            except Exception as exc:  # the database is down: the next round tries again
                log.warning("live hub read failed", error=type(exc).__name__)

    async def _read_new(self) -> None:
        """Read everything after the position, page by page, and offer it to every subscriber."""
        position = await self._known_position()
        while True:
            self.reads += 1
            events: list[LiveEvent] = await read(self.engine, _page(position))
            if not events:
                return
            self.position = position = (events[-1].txid, events[-1].seq)
            for sub in list(self._subscribers):
                if not sub.offer(events):
                    self._subscribers.discard(sub)
            if len(events) < PAGE:
                return


async def _end(conn: AsyncConnection) -> tuple[int, int]:
    return await alert_events.last_position(conn, await counter.bound(conn))


def _page(after: tuple[int, int]) -> Reader:
    async def work(conn: AsyncConnection) -> list[LiveEvent]:
        feed = await alert_events.feed_after(conn, after, await counter.bound(conn), PAGE)
        named = await alerting.named(conn, [e.row for e in feed])
        return [LiveEvent(*e, alert) for e, alert in zip(feed, named, strict=True)]

    return work
