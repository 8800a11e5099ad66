"""Enrolment codes: guessing is limited per address and overall, a code works once, and an
inactive worker gets no device."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa

from patrolsync import importer
from server import models
from server.tx import transaction
from tests.support import HOUR, Clock, Fleet

ENROL = "/v1/auth/enrol"


async def _enrol(fleet: Fleet, code: str, device_id: str) -> tuple[int, dict[str, str], Any]:
    reply = await fleet.client.post(
        ENROL, json={"code": code, "device_id": device_id, "platform": "test"}
    )
    return reply.status_code, dict(reply.headers), reply.json()


async def _count(fleet: Fleet, table: Any) -> int:
    async with fleet.services.engine.connect() as conn:
        stmt = sa.select(sa.func.count()).select_from(table.__table__)
        return int((await conn.execute(stmt)).scalar_one())


async def test_wrong_codes_lock_the_address_out_even_for_the_right_code(fleet: Fleet) -> None:
    clock = fleet.services.clock = Clock(1_796_000_000_000)
    settings = fleet.services.settings
    valid = await fleet.code("w-zhang")
    statuses = []
    for i in range(settings.enrol_failures_per_client + 5):
        status, headers, body = await _enrol(fleet, f"0000-0000-0000-{i:04d}", "dev-guess")
        statuses.append(status)
        clock.advance(1000)
    limit = settings.enrol_failures_per_client
    assert statuses == [400] * limit + [429] * 5
    assert body["error"]["code"] == "too_many_requests"
    assert 1 <= int(headers["retry-after"]) <= settings.enrol_failure_window_s
    # The right code is refused too while the address is locked out, and stays unused.
    status, headers, body = await _enrol(fleet, valid, "dev-zhang")
    assert status == 429 and body["error"]["code"] == "too_many_requests"
    assert await _count(fleet, models.Device) == 0
    # Once the window has passed the oldest failure, the right code works.
    clock.advance(int(headers["retry-after"]) * 1000)
    status, _, body = await _enrol(fleet, valid, "dev-zhang")
    assert status == 201, body


async def test_a_right_code_does_not_count_as_a_failure(fleet: Fleet) -> None:
    fleet.services.clock = Clock(1_796_000_000_000)
    for i in range(fleet.services.settings.enrol_failures_per_client + 2):
        status, _, body = await _enrol(fleet, await fleet.code("w-zhang"), f"dev-{i}")
        assert status == 201, body


async def test_a_code_works_once(fleet: Fleet) -> None:
    code = await fleet.code("w-zhang")
    assert (await _enrol(fleet, code, "dev-a"))[0] == 201
    status, _, body = await _enrol(fleet, code, "dev-b")
    assert status == 400 and body["error"]["code"] == "enrolment_invalid"
    assert await _count(fleet, models.Device) == 1


async def test_an_inactive_worker_gets_no_device_and_loses_their_tokens(fleet: Fleet) -> None:
    zhang = await fleet.device("w-zhang", "dev-zhang")
    code = await fleet.code("w-zhang")
    await zhang.push([zhang.checkin("xinhua-g1", ended_ago_ms=HOUR)])
    gone = msgspec.convert(
        {"workers": [{"id": "w-zhang", "name": "张伟", "active": False, "grids": ["xinhua-g1"]}]},
        importer.ImportDoc,
    )
    await transaction(fleet.services.engine, lambda c: importer.load(c, gone))
    status, _, body = await _enrol(fleet, code, "dev-zhang-2")
    assert status == 409 and body["error"]["code"] == "conflict"
    assert (await _count(fleet, models.Device), await _count(fleet, models.ApiToken)) == (1, 1)
    pulled = await fleet.client.get("/v1/sync/pull", headers=zhang.headers)
    assert pulled.status_code == 401 and pulled.json()["error"]["code"] == "token_revoked"


@pytest.mark.postgres
async def test_a_code_redeemed_twice_at_once_enrols_one_device(pg_fleet: Fleet) -> None:
    code = await pg_fleet.code("w-zhang")
    replies = await asyncio.gather(*(_enrol(pg_fleet, code, f"dev-{i}") for i in range(4)))
    assert sorted(status for status, _, _ in replies) == [201, 400, 400, 400]
    assert await _count(pg_fleet, models.Device) == 1
