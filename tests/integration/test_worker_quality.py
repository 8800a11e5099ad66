"""The data-quality rules through the worker on PostgreSQL and Redis: one job judges several
workers' weeks from rows read for all of them at once, and each worker gets only their own
findings."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from server.settings import Settings
from tests.conftest import running
from tests.integration.worker_support import (
    W47,
    alerts_of,
    at,
    drain,
    keyed,
    patrol,
    push_at,
    workers_added_at,
)
from tests.support import Clock, Fleet

pytestmark = pytest.mark.postgres


@pytest.fixture
async def qfleet(worker_settings: Settings) -> AsyncIterator[Fleet]:
    async with running(worker_settings) as fleet:
        fleet.services.clock = Clock(at(0, 6))
        await workers_added_at(fleet, W47.start_ms)
        yield fleet


async def test_one_job_flags_only_the_worker_whose_patrols_overlap(
    qfleet: Fleet, worker_settings: Settings
) -> None:
    zhang = await qfleet.device("w-zhang")
    wang = await qfleet.device("w-wang")
    await push_at(
        zhang,
        at(2, 20),
        [patrol("xinhua-g1", at(2, 8), 5), patrol("xinhua-g1", at(2, 10), 4.5)],
    )
    await push_at(
        wang,
        at(2, 21),
        [patrol("xinhua-g1", at(0, 8), 4), patrol("xinhua-g2", at(1, 8), 4)],
    )
    assert await drain(qfleet, worker_settings) >= 2  # both weeks, relayed in one job
    found = keyed(await alerts_of(qfleet, "s-xinhua", rule="overlapping_patrols"))
    assert set(found) == {("overlapping_patrols", "w-zhang", "2026-W47")}
    assert found[("overlapping_patrols", "w-zhang", "2026-W47")]["status"] == "open"
