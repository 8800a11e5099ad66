"""The policy of a place in the unit tree, as the quota worker resolves it: defaults, then each
unit's own overrides from the root down, the time zone the place's own."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rules.policy import Policy, resolve


class Policies:
    """Policies by ``(unit path, time zone)``; each distinct ``(overriding units, time zone)``
    is resolved once (most grids of a district share their policy)."""

    def __init__(self, overrides: Mapping[str, Mapping[str, Any]]) -> None:
        self._overrides = overrides
        self._found: dict[tuple[tuple[str, ...], str], Policy] = {}

    def __call__(self, path: str, tz: str) -> Policy:
        units = tuple(u for u in path.split("/") if u in self._overrides)
        key = (units, tz)
        if key not in self._found:
            self._found[key] = resolve([*(self._overrides[u] for u in units), {"tz": tz}])
        return self._found[key]
