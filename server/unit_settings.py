"""A unit's quota and alert settings, as ``GET``/``PUT /v1/units/{id}/settings`` and the
console's 设置 page both read and replace them.

Invariants: what is stored is always a checked override set (``rules.policy.check_overrides``)
without ``tz`` (a property of the unit, from the import file); the effective values are the
defaults, then every ancestor's overrides from the root down, then the unit's own, then its
time zone. Callers check the unit lies in the supervisor's subtree (``auth.subtree_unit``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from rules.policy import PolicyError, check_overrides, resolve
from schemas.alerts import UnitSettings
from server.errors import ApiError, Code
from server.store import quota as quota_store
from server.store.units import UnitRow


def _chain(unit: UnitRow) -> list[str]:
    """The unit ids of ``unit``'s path, root first, ending with ``unit`` itself."""
    return [u for u in unit.path.split("/") if u]


def of(unit: UnitRow, overrides: Mapping[str, Mapping[str, Any]]) -> UnitSettings:
    """``unit``'s own overrides and effective values, given every unit's overrides."""
    chain = [overrides[u] for u in _chain(unit) if u in overrides]
    effective = dataclasses.asdict(resolve([*chain, {"tz": unit.tz}]))
    return UnitSettings(unit_id=unit.id, own=dict(overrides.get(unit.id, {})), effective=effective)


def sources(unit: UnitRow, overrides: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """For each setting some unit of the path overrides: the id of the unit whose value is in
    effect (the nearest one, ``unit`` itself included). A setting absent here is the default."""
    found: dict[str, str] = {}
    for unit_id in _chain(unit):
        for key in overrides.get(unit_id, {}):
            found[key] = unit_id
    return found


async def read_settings(conn: AsyncConnection, unit: UnitRow) -> UnitSettings:
    return of(unit, await quota_store.unit_overrides(conn))


def checked(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A unit's own overrides, checked (422 ``invalid_request`` with ``details.key`` naming
    the offending setting)."""
    if "tz" in raw:
        raise ApiError(
            Code.INVALID_REQUEST,
            "tz is a property of the unit, set by the import file, not a setting",
            details={"key": "tz"},
        )
    try:
        return check_overrides(raw)
    except PolicyError as exc:
        raise ApiError(Code.INVALID_REQUEST, str(exc), details={"key": exc.key}) from None


async def replace(
    conn: AsyncConnection, unit: UnitRow, values: Mapping[str, Any], by: str, now_ms: int
) -> UnitSettings:
    """Replace ``unit``'s own overrides with the checked ``values`` (an empty set inherits
    everything); return its settings after."""
    await quota_store.set_unit_overrides(conn, unit.id, checked(values), by, now_ms)
    return await read_settings(conn, unit)
