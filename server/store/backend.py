"""The backend of a connection or engine, chosen by its dialect: one dictionary lookup, no
comparison in any store function."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.engine import Dialect

from server.store import lite, pg
from server.store.interface import Backend

BACKENDS: dict[str, Backend] = {b.name: b for b in (pg.BACKEND, lite.BACKEND)}


class _Bound(Protocol):
    @property
    def dialect(self) -> Dialect: ...


def of(bind: _Bound) -> Backend:
    """The backend serving ``bind`` (an ``AsyncConnection`` or ``AsyncEngine``)."""
    return BACKENDS[bind.dialect.name]
