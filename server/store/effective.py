"""The effective version of a patrol: the latest amendment of its chain (the greatest HLC
``clock``; the original, which has none, is the earliest). And the boots whose patrols the
quality rules compare across workers."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from server.store.tables import checkin_t

_LATER = checkin_t.alias("later")
_ON_BOOT = checkin_t.alias("on_boot")


def latest(c: Any) -> sa.ColumnElement[bool]:
    """The check-in of ``c`` is its chain's effective version: no amendment of the chain carries
    a later clock (an original has none). Every version of a chain is one worker's, so only that
    worker's amendments are read (``ix_checkin_amended`` holds amendments alone): the cost
    follows the workers asked about, not the table.

    ``store.pg.quota`` states the same rule as a join, for the week's durations; the two must
    agree (the store suite checks both backends)."""
    if c is checkin_t.c:
        return _LATEST  # built once: an alias's columns cost more to build than the query
    return _latest(c)


def _latest(c: Any) -> sa.ColumnElement[bool]:
    later = _LATER
    return ~sa.exists().where(
        later.c.worker_id == c.worker_id,
        later.c.root_id == c.root_id,
        later.c.clock.is_not(None),
        sa.or_(c.clock.is_(None), later.c.clock > c.clock),
    )


_LATEST = _latest(checkin_t.c)


def shared_boots(boots: Any) -> sa.Select[tuple[str]]:
    """Those of ``boots`` (ids, or a bound parameter) that more than one worker recorded on:
    only they can hold another worker's patrols, which the shared-phone rule looks for (a boot
    of one worker's phone that stays up for weeks holds thousands of that worker's alone)."""
    c = _ON_BOOT.c
    return (
        sa.select(c.boot_id)
        .where(c.boot_id.in_(boots))
        .group_by(c.boot_id)
        .having(sa.func.min(c.worker_id) != sa.func.max(c.worker_id))
    )
