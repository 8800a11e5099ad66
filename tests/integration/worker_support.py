"""Helpers for the quota worker's tests: a fixed week, patrols at given times, the worker in
burst mode, and the supervisor's view of alerts."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from rules.periods import Week, week
from server.settings import Settings
from server.tx import transaction
from tests.support import HOUR, Clock, Device, Fleet, new_id
from worker import main as worker_main

TZ = "Asia/Shanghai"
W47: Week = week("2026-W47", TZ)
"""Monday 16 November 2026 00:00 to Monday 23 November 00:00, Beijing time."""
DAY = 24 * HOUR


def at(day: int, hour: float = 0.0, wk: Week = W47) -> int:
    """Day ``day`` (0 = Monday) of the week at ``hour`` local time, as epoch ms."""
    return wk.start_ms + day * DAY + int(hour * HOUR)


def patrol(grid: str, start_ms: int, hours: float, **extra: Any) -> dict[str, Any]:
    """A check-in of ``hours`` starting at ``start_ms``, with a matching monotonic duration."""
    duration = int(hours * HOUR)
    item = {
        "op": "checkin",
        "id": str(new_id()),
        "grid_id": grid,
        "started_ms": start_ms,
        "ended_ms": start_ms + duration,
        "elapsed_ms": duration,
        "boot_id": "boot-1",
        "visit_count": 2,
        "households": [],
    }
    item.update(extra)
    return item


async def workers_added_at(fleet: Fleet, ms: int) -> None:
    """Say the sample's workers were added at ``ms`` (weeks ended before are not judged)."""
    await transaction(
        fleet.services.engine,
        lambda c: c.execute(sa.text("UPDATE worker SET since_ms = :ms"), {"ms": ms}),
    )


def clock_of(fleet: Fleet) -> Clock:
    clock = fleet.services.clock
    assert isinstance(clock, Clock)
    return clock


async def push_at(device: Device, when_ms: int, items: list[Any], **kw: Any) -> dict[str, Any]:
    """Set the clock to ``when_ms`` and push."""
    clock_of(device.fleet).ms = when_ms
    return await device.push(items, **kw)


async def drain(fleet: Fleet, settings: Settings) -> int:
    """Relay the outbox and run the worker in burst mode until the queue is empty."""
    return await worker_main.burst(settings, fleet.services.engine, fleet.services.clock)


async def alerts_of(fleet: Fleet, supervisor: str, **params: Any) -> list[dict[str, Any]]:
    headers = await fleet.supervisor(supervisor)
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await fleet.client.get("/v1/alerts", params=query, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        found.extend(page["alerts"])
        cursor = page.get("cursor")
        if not cursor:
            return found


def keyed(alerts: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(a["rule"], a["subject_id"], a["period"]): a for a in alerts}
