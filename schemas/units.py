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


KINDS = ("province", "city", "district", "street", "community", "grid", "building")
"""The levels of the unit tree, from the top: 省, 市, 区, 街道, 社区, 网格, 楼栋."""
_RANK = {kind: rank for rank, kind in enumerate(KINDS)}


def may_hold(parent: str, child: str) -> bool:
    """Whether a unit of kind ``parent`` may hold one of kind ``child``: a child lies below its
    parent in :data:`KINDS`, levels may be skipped (a province-level city holds districts, a
    city without districts holds streets), but a building lies in a grid and a grid holds
    buildings only."""
    if parent not in _RANK or child not in _RANK:
        return False
    if child == "building" or parent == "grid":
        return parent == "grid" and child == "building"
    return _RANK[child] > _RANK[parent]
