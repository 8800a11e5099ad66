"""The effective version of a patrol: the latest amendment of its chain (the greatest HLC
``clock``; the original, which has none, is the earliest)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from server.store.tables import checkin_t

_LATER = checkin_t.alias("later")


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
