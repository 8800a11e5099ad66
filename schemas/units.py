"""The unit tree on the wire (supervisors' views of it)."""

from __future__ import annotations

import msgspec


class Unit(msgspec.Struct, kw_only=True):
    """A unit of the tree (the reply of ``GET /v1/units/{unit_id}``)."""

    id: str
    parent_id: str | None
    kind: str
    name: str
    code: str
    path: str
    """``/`` + ancestor ids + own id + ``/``."""
    tz: str
