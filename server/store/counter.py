"""Change positions: the pull cursor's order.

Every change is stamped with ``(txid, seq)``: the number of the transaction that wrote it and its
number within that transaction. A pull serves, in ``(txid, seq)`` order, only changes of
transactions that have **finished** — those numbered below :func:`bound` — so a transaction that
took its number early and commits late can never be jumped over: until it finishes, nothing
after it is served either.

- PostgreSQL: ``txid`` is the transaction id (``pg_current_xact_id()``), and the bound is the
  oldest transaction still running (``pg_snapshot_xmin(pg_current_snapshot())``). Every id below
  it belongs to a transaction that has committed or rolled back, and ids are never handed out
  below it again. Writers take no shared lock at all. A pull's bound (:func:`pull_bound`) skips
  the worker's sessions, which write alerts and their events (the alert feed's changes, read
  below :func:`bound`) and never what devices pull: a long evaluation delays no device.
- SQLite: one writer at a time (``BEGIN IMMEDIATE``), so ``txid`` comes from a one-row counter
  bumped by each writing transaction, and the bound is the committed counter plus one.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.store import backend
from server.store.tables import meta_t as _meta

HORIZON_TXID = "horizon_txid"
HORIZON_SEQ = "horizon_seq"
"""Changes at or before this position may have been forgotten (pruned tombstones)."""
EPOCH = "prune_epoch"
"""Bumped whenever the horizon moves. A cursor issued in an older epoch whose position is before
the horizon may have missed a forgotten tombstone and must re-bootstrap; a download that began in
the current epoch never saw those tombstones and needs none of them."""

END = 2**62
"""A ``seq`` beyond any real one: ``(txid, END)`` is after every change of transaction ``txid``."""


async def stamp(conn: AsyncConnection) -> int:
    """This transaction's ``txid`` (the same for every call within one transaction)."""
    return await backend.of(conn).counter.stamp(conn)


async def positions(conn: AsyncConnection, n: int) -> list[tuple[int, int]]:
    """``n`` fresh change positions of this transaction, after any it handed out before.

    For writers other than a push (which numbers its own changes from 1 in one go).
    """
    txid = await stamp(conn)
    last = conn.info.get("patrolsync_seq")
    first = last[1] + 1 if last is not None and last[0] == txid else 1
    conn.info["patrolsync_seq"] = (txid, first + n - 1)
    return [(txid, seq) for seq in range(first, first + n)]


async def bound(conn: AsyncConnection) -> int:
    """Every transaction numbered below this has finished, and none will be numbered below it."""
    stmt = sa.text(f"SELECT {backend.of(conn).counter.BOUND}")
    return int((await conn.execute(stmt)).scalar_one())


async def pull_bound(conn: AsyncConnection) -> int:
    """As :func:`bound`, for the changes devices pull (households, notes, check-ins, conflicts),
    which the worker never writes: its transactions do not hold it back."""
    stmt = sa.text(f"SELECT {backend.of(conn).counter.PULL_BOUND}")
    return int((await conn.execute(stmt)).scalar_one())


async def set_meta(conn: AsyncConnection, key: str, value: int) -> None:
    updated = await conn.execute(sa.update(_meta).where(_meta.c.key == key).values(value=value))
    if updated.rowcount == 0:
        await conn.execute(sa.insert(_meta).values(key=key, value=value))


@functools.cache
def _bound_and_horizon(pull_bound: str, head: str) -> sa.TextClause:
    return sa.text(
        f"SELECT {pull_bound}, {head},"
        " coalesce(max(value) FILTER (WHERE key = :t), 0),"
        " coalesce(max(value) FILTER (WHERE key = :s), 0),"
        " coalesce(max(value) FILTER (WHERE key = :e), 0) FROM sync_meta"
    )


class PullBounds(NamedTuple):
    bound: int
    """:func:`pull_bound`."""
    head: int
    """No transaction numbered at or above it has finished: a cursor there is ahead of the
    server (a restored backup). The bound may lie below a cursor it served a moment ago."""
    horizon: tuple[int, int]
    epoch: int


async def bound_and_horizon(conn: AsyncConnection) -> PullBounds:
    """:func:`pull_bound`, the head and :func:`horizon` together, in one statement: every pull
    reads them."""
    statements = backend.of(conn).counter
    stmt = _bound_and_horizon(statements.PULL_BOUND, statements.HEAD)
    row = (await conn.execute(stmt, {"t": HORIZON_TXID, "s": HORIZON_SEQ, "e": EPOCH})).one()
    return PullBounds(int(row[0]), int(row[1]), (int(row[2]), int(row[3])), int(row[4]))


async def horizon(conn: AsyncConnection) -> tuple[tuple[int, int], int]:
    """The horizon position and the epoch it belongs to (one query: it is read by every pull)."""
    stmt = sa.select(_meta.c.key, _meta.c.value).where(
        _meta.c.key.in_([HORIZON_TXID, HORIZON_SEQ, EPOCH])
    )
    found = {row.key: int(row.value) for row in await conn.execute(stmt)}
    position = (found.get(HORIZON_TXID, 0), found.get(HORIZON_SEQ, 0))
    return position, found.get(EPOCH, 0)


async def raise_horizon(conn: AsyncConnection, position: tuple[int, int]) -> tuple[int, int]:
    """Move the horizon forward to ``position`` (never back), starting a new epoch; return the
    horizon now in force."""
    current, epoch = await horizon(conn)
    if position > current:
        await set_meta(conn, HORIZON_TXID, position[0])
        await set_meta(conn, HORIZON_SEQ, position[1])
        await set_meta(conn, EPOCH, epoch + 1)
        return position
    return current
