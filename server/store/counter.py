"""Change numbers: the pull cursor's order.

``take`` bumps the one-row counter and holds its row lock until the transaction ends, so a
transaction can take numbers only after every transaction that took lower numbers has committed
or rolled back: **seq order is commit order**, and a reader that has seen seq N has seen every
committed change below N. Call it as late as possible in a transaction (it serialises only what
follows it), and write every row that carries a seq after it.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.models import SyncCounter, SyncMeta

_counter = SyncCounter.__table__  # type: ignore[attr-defined]
_meta = SyncMeta.__table__  # type: ignore[attr-defined]

HORIZON = "horizon"
"""Changes up to this number may have been forgotten (pruned tombstones): a cursor below it
must re-bootstrap."""


async def take(conn: AsyncConnection, n: int) -> int:
    """Reserve ``n`` consecutive change numbers; return the first. ``n`` may be 0 (locks only)."""
    stmt = (
        sa.update(_counter)
        .where(_counter.c.id == 1)
        .values(value=_counter.c.value + n)
        .returning(_counter.c.value)
    )
    last = (await conn.execute(stmt)).scalar_one()
    return int(last) - n + 1


async def last(conn: AsyncConnection) -> int:
    """The highest change number whose transaction has committed (as this snapshot sees it)."""
    stmt = sa.select(_counter.c.value).where(_counter.c.id == 1)
    return int((await conn.execute(stmt)).scalar_one())


async def get_meta(conn: AsyncConnection, key: str) -> int:
    stmt = sa.select(_meta.c.value).where(_meta.c.key == key)
    value = (await conn.execute(stmt)).scalar_one_or_none()
    return int(value or 0)


async def set_meta(conn: AsyncConnection, key: str, value: int) -> None:
    updated = await conn.execute(sa.update(_meta).where(_meta.c.key == key).values(value=value))
    if updated.rowcount == 0:
        await conn.execute(sa.insert(_meta).values(key=key, value=value))
