"""Waiting pulls (``GET /v1/sync/pull?wait=``): the process's register of pulls that found
nothing new and wait for a change in their scope, woken by the process's one listener
(``server.live.Listener``) on :data:`CHANGES`.

Scope keys: what a pull reads is named by keys, and what a transaction writes is announced by
the same keys, so a notice wakes exactly the waiting pulls it may concern:

- ``w:<worker>``: the worker's check-ins and the conflict records they lost (a device's pull);
- ``g:<grid>``: the grid's households and notes (a device's and a supervisor's pull);
- ``c:<grid>``: the grid's check-ins (a supervisor's pull, which reads them by grid).

A notice is ``<txid>`` and the keys, one a line (``*`` in place of the keys: every waiting
pull). On PostgreSQL the writing transaction sends it (``pg_notify``, delivered at commit and
never on rollback); on SQLite the server process wakes its own waiting pulls after its commit
(:meth:`Waiters.committed`), and a change written by another process is seen when the wait
ends. The txid tells a woken pull whether its read could see the change yet: a change is
visible once every transaction before it has finished (``store.counter.bound``), so a pull
woken for txid ``t`` whose read was bounded at or below ``t`` reads again shortly
(:attr:`Waiter.txid`).

No gap between the read and the wait: a pull reads first and only then takes its place, so a
notice may come in between (or before the read, for a change the read could not see yet). The
register keeps the last :data:`RECENT` notices; a pull taking its place is woken at once by any
of them under its keys for a transaction its read could not see (``txid`` above the read's
bound), and by any notice it cannot rule out (one forgotten since, or the listener resumed
after its read began: :meth:`Waiters.mark`).

Bounded: at most ``max_waiting`` pulls wait at once in a process (:class:`Full` beyond).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Iterable

from sqlalchemy.ext.asyncio import AsyncConnection

from server.live import Listener
from server.store import backend
from server.store.interface import CHANGES_CHANNEL as CHANGES

EVERYONE = "*"
RECENT = 1024
"""Notices kept for the pulls about to wait (at 40 pushes a second: the last 25 s)."""
MAX_PAYLOAD = 7000
"""PostgreSQL refuses a notification payload of 8000 bytes or more: a longer list of keys is
sent as :data:`EVERYONE`."""


class Full(Exception):
    """The process already has ``max_waiting`` waiting pulls."""


def pull_keys(worker_id: str | None, grids: Iterable[str]) -> frozenset[str]:
    """The keys of a pull's scope: a device's (``worker_id`` given) or a supervisor's."""
    if worker_id is not None:
        return frozenset([f"w:{worker_id}", *(f"g:{g}" for g in grids)])
    return frozenset(k for g in grids for k in (f"g:{g}", f"c:{g}"))


def payload(txid: int, keys: Iterable[str]) -> str:
    text = "\n".join([str(txid), *sorted(keys)])
    return text if len(text.encode()) <= MAX_PAYLOAD else f"{txid}\n{EVERYONE}"


async def announce(conn: AsyncConnection, txid: int, keys: Iterable[str]) -> None:
    """Tell every server process, when this transaction commits, that it wrote changes under
    ``keys`` (nothing is sent on SQLite: see :meth:`Waiters.committed`)."""
    await backend.of(conn).notices.notify(conn, CHANGES, payload(txid, keys))


class Waiter:
    """One waiting pull: its keys, and whether (and for which transaction) it was woken."""

    __slots__ = ("_event", "gone", "keys", "txid", "woken")

    def __init__(self, keys: frozenset[str]) -> None:
        self.keys = keys
        self.txid = 0
        """The latest transaction it was woken for."""
        self.woken = 0
        """How many notices woke it (a measure, and what the tests assert on)."""
        self.gone = False
        """The client went away: the pull stops waiting."""
        self._event = asyncio.Event()

    def wake(self, txid: int) -> None:
        self.woken += 1
        self.txid = max(self.txid, txid)
        self._event.set()

    def leave(self) -> None:
        self.gone = True
        self._event.set()

    async def wait(self, timeout_s: float) -> bool:
        """True when woken (or left) within ``timeout_s``, False when the time ran out."""
        if not self._event.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(timeout_s, 0)):
                    await self._event.wait()
        woken = self._event.is_set()
        self._event.clear()
        return woken


class Waiters:
    """See the module's docstring."""

    def __init__(self, listener: Listener, *, max_waiting: int) -> None:
        self.listener = listener
        self.max_waiting = max_waiting
        self._by_key: dict[str, set[Waiter]] = {}
        self._all: set[Waiter] = set()
        self._behind: set[Waiter] = set()
        """Woken pulls that could not see their change yet: any commit may make it visible."""
        self.notices = 0
        """Notices handled so far."""
        self._recent: deque[tuple[int, frozenset[str]]] = deque()
        self._forgotten_txid = 0
        """The highest txid of a notice no longer in ``_recent``."""
        self._resumed = 0
        """``notices`` when the listener last resumed (notices may have been lost before)."""
        listener.follow(CHANGES, self._notified, resumed=self.wake_all)

    @property
    def waiting(self) -> int:
        return len(self._all)

    def current(self) -> list[Waiter]:
        """The pulls waiting now."""
        return list(self._all)

    def mark(self) -> int:
        """Taken before a pull's read: what :meth:`waiting_for` compares with."""
        return self.notices

    @contextlib.asynccontextmanager
    async def waiting_for(
        self, keys: frozenset[str], *, seen: int, mark: int
    ) -> AsyncIterator[Waiter]:
        """A place among the waiting pulls, woken by notices under ``keys``, for the ``with``
        block; ``seen`` is the highest txid the pull's read could see, ``mark`` the
        :meth:`mark` taken before it. Raises :class:`Full` when ``max_waiting`` pulls wait
        already."""
        if len(self._all) >= self.max_waiting:
            raise Full
        waiter = Waiter(keys)
        self._all.add(waiter)
        for key in keys:
            self._by_key.setdefault(key, set()).add(waiter)
        if self._resumed > mark or self._forgotten_txid > seen:
            waiter.wake(self._forgotten_txid)
        for txid, touched in self._recent:
            if txid > seen and (EVERYONE in touched or not keys.isdisjoint(touched)):
                waiter.wake(txid)
        try:
            await self.listener.start()
            yield waiter
        finally:
            self._all.discard(waiter)
            self._behind.discard(waiter)
            for key in keys:
                found = self._by_key.get(key)
                if found is not None:
                    found.discard(waiter)
                    if not found:
                        del self._by_key[key]

    def behind(self, waiter: Waiter, late: bool) -> None:
        """``late``: the waiter's read could not see the change it was woken for; until it
        can, every notice (another transaction finished) wakes it too."""
        if late:
            self._behind.add(waiter)
        else:
            self._behind.discard(waiter)

    def changed(self, txid: int, keys: Iterable[str]) -> None:
        """Wake the waiting pulls under any of ``keys`` (every one for :data:`EVERYONE`)."""
        self.notices += 1
        touched = frozenset(keys)
        self._recent.append((txid, touched))
        if len(self._recent) > RECENT:
            self._forgotten_txid = max(self._forgotten_txid, self._recent.popleft()[0])
        woken: set[Waiter] = set(self._behind)
        for key in touched:
            if key == EVERYONE:
                woken = self._all
                break
            woken.update(self._by_key.get(key, ()))
        for waiter in list(woken):
            waiter.wake(txid if waiter.keys & touched or EVERYONE in touched else 0)

    def committed(self, txid: int, keys: Iterable[str]) -> None:
        """This process committed transaction ``txid`` with changes under ``keys``: on a backend
        without notifications, wake its own waiting pulls (elsewhere the notice does)."""
        if not self.listener.notifies:
            self.changed(txid, keys)

    def wake_all(self) -> None:
        """Notices may have been lost (the listener was down): every waiting pull reads again,
        and so does every pull about to wait."""
        self.changed(0, [EVERYONE])
        self._resumed = self.notices

    def _notified(self, text: str) -> None:
        head, _, rest = text.partition("\n")
        try:
            txid = int(head)
        except ValueError:  # not ours: wake everyone rather than miss a change
            txid, rest = 0, EVERYONE
        self.changed(txid, rest.split("\n") if rest else ())
