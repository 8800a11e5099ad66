"""The reference client against the real app, with faults injected between them: an offline
round, a reply lost after the commit, a server down mid-push, a cursor too old, a revoked token.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import sqlalchemy as sa

from client.device import AuthError, Backoff, DeviceClient, GaveUp
from client.store import LocalStore
from server.store import auth as auth_store
from server.store import counter
from server.tx import read, transaction
from tests.support import HOUR, Fleet

REFUSALS = {
    "too_many_requests": (429, {"Retry-After": "3"}),
    "payload_too_large": (413, {}),
}


class Faults(httpx.AsyncBaseTransport):
    """Forwards to the app, doing what ``plan`` says to each next request first."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.plan: list[str] = []
        self.seen: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        action = self.plan.pop(0) if self.plan else "pass"
        self.seen.append(f"{request.method} {request.url.path} {action}")
        if action == "down":  # the server is not there: nothing reaches it
            raise httpx.ConnectError("connection refused", request=request)
        if action in REFUSALS:  # answered without reaching the app: nothing written
            status, headers = REFUSALS[action]
            body = {"error": {"code": action, "message": "refused by the test"}}
            return httpx.Response(status, json=body, headers=headers)
        response = await self.inner.handle_async_request(request)
        if action == "lose_reply":  # the server committed; the answer never arrives
            await response.aread()
            raise httpx.ReadError("connection reset", request=request)
        return response


@pytest.fixture
async def faults(fleet: Fleet) -> AsyncIterator[Faults]:
    transport = fleet.client._transport  # the app, in process
    yield Faults(transport)


@pytest.fixture
async def phone(fleet: Fleet, faults: Faults) -> AsyncIterator[DeviceClient]:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async with httpx.AsyncClient(transport=faults, base_url="http://testserver") as http:
        device = DeviceClient(
            http,
            LocalStore(),
            "ref-phone-1",
            sleep=sleep,
            rng=random.Random(7),
            backoff=Backoff(attempts=4),
        )
        await device.enrol(await fleet.code("w-zhang"))
        await device.handshake()
        yield device


def _patrol(device: DeviceClient, hours: float = 4.0) -> str:
    end = device.clock() - HOUR
    start = end - int(hours * HOUR)
    return device.record_checkin(
        "xinhua-g1", start, end, elapsed_ms=end - start, boot_id="b1", visit_count=2
    )


async def _stored_checkins(fleet: Fleet) -> int:
    stmt = sa.text("SELECT count(*) FROM checkin WHERE device_id = 'ref-phone-1'")
    return int(await read(fleet.services.engine, lambda c: _scalar(c, stmt)))


async def _scalar(conn: object, stmt: sa.TextClause) -> object:
    return (await conn.execute(stmt)).scalar_one()  # type: ignore[attr-defined]


async def test_an_offline_round_syncs_everything(fleet: Fleet, phone: DeviceClient) -> None:
    ids = [_patrol(phone) for _ in range(3)]
    note = phone.edit_note("h-xh-101", {"text": "老人身体不错", "outcome": "met"})
    phone.edit_note("h-xh-101", {"needs": "想要轮椅坡道"}, note_id=note)
    assert phone.store.waiting() == 5
    report, pulled = await phone.sync()
    assert (report.applied, report.rejected, report.pushes) == (5, 0, 1)
    assert phone.store.waiting() == 0 and phone.store.inflight() is None
    assert {r["id"] for r in phone.store.records("checkin")} == set(ids)
    (saved,) = phone.store.records("note")
    assert saved["fields"]["needs"] == "想要轮椅坡道" and saved["fields"]["text"] == "老人身体不错"
    assert len(phone.store.records("household")) == 3  # the grid's households
    assert pulled == 7  # 3 check-ins, the note, 3 households
    # The second edit's base was the first edit's clock: no conflict, one author.
    assert phone.store.records("conflict") == []


async def test_a_reply_lost_after_commit_costs_nothing(
    fleet: Fleet, phone: DeviceClient, faults: Faults
) -> None:
    for _ in range(4):
        _patrol(phone)
    faults.plan = ["lose_reply"]
    report = await phone.push()
    # The resent push (same id) was answered from the receipt: the same results again…
    assert (report.applied, report.replayed, report.pushes) == (4, 1, 1)
    assert phone.store.waiting() == 0
    assert await _stored_checkins(fleet) == 4  # …and the server holds one copy of each
    posts = [s for s in faults.seen if s.startswith("POST /v1/sync/push")]
    assert posts == ["POST /v1/sync/push lose_reply", "POST /v1/sync/push pass"]


async def test_a_server_down_mid_push_then_back(
    fleet: Fleet, phone: DeviceClient, faults: Faults
) -> None:
    _patrol(phone)
    _patrol(phone)
    faults.plan = ["down"] * 4  # every try of this round fails
    with pytest.raises(GaveUp):
        await phone.push()
    flight = phone.store.inflight()
    assert flight is not None and phone.store.waiting() == 2  # nothing lost, the push is fixed
    assert await _stored_checkins(fleet) == 0
    faults.plan = ["down", "lose_reply"]  # later: one refused connection, one lost reply
    report = await phone.push()
    assert report.resent == 1 and phone.store.waiting() == 0
    assert await _stored_checkins(fleet) == 2
    receipts = sa.text("SELECT push_id FROM push_receipt WHERE device_id = 'ref-phone-1'")
    stored = await read(fleet.services.engine, lambda c: c.execute(receipts))
    # one push id, from the first try on
    assert [uuid.UUID(str(r[0])) for r in stored] == [uuid.UUID(flight[0])]


async def test_a_cursor_too_old_rebootstraps(fleet: Fleet, phone: DeviceClient) -> None:
    _patrol(phone)
    await phone.sync()
    first = phone.store.get("cursor")
    _patrol(phone)
    await phone.push()
    await transaction(fleet.services.engine, lambda c: counter.raise_horizon(c, (2**40, 0)))
    pulled = await phone.pull()
    assert phone.store.get("cursor") != first
    assert len(phone.store.records("checkin")) == 2  # everything again, from scratch
    assert pulled == 2 + 3  # both check-ins and the 3 households


async def test_a_revoked_token_is_a_clear_error_and_loses_nothing(
    fleet: Fleet, phone: DeviceClient
) -> None:
    _patrol(phone)
    note = phone.edit_note("h-xh-102", {"text": "需要复查"})
    await transaction(
        fleet.services.engine, lambda c: auth_store.revoke_device(c, "ref-phone-1", 1)
    )
    with pytest.raises(AuthError) as refused:
        await phone.push()
    assert refused.value.code == "token_revoked"
    assert phone.store.waiting() == 2  # the outbox is intact for the next enrolment
    assert [i["note_id"] for _, i in phone.store.oldest(10) if i["op"] == "note"] == [note]


async def test_rejected_items_leave_the_outbox_with_their_reason(phone: DeviceClient) -> None:
    now = phone.clock()
    phone.record_checkin("qunzhong-g1", now - 2 * HOUR, now - HOUR)  # not this worker's grid
    _patrol(phone)
    report = await phone.push()
    assert (report.applied, report.rejected) == (1, 1)
    ((item, code, _reason),) = phone.store.rejected()
    assert item["grid_id"] == "qunzhong-g1" and code == "forbidden_grid"
    assert phone.store.waiting() == 0


async def test_busy_server_and_too_large_push_are_handled(
    fleet: Fleet, phone: DeviceClient, faults: Faults
) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    phone.sleep = sleep
    for _ in range(5):
        _patrol(phone)
    faults.plan = ["too_many_requests", "payload_too_large"]
    report = await phone.push()
    assert 3 <= waits[0] <= 3.5  # Retry-After honoured, with a little jitter
    assert (report.applied, report.pushes) == (5, 3)  # the refused push went as 2 + 2 + 1
    assert await _stored_checkins(fleet) == 5


async def test_follow_mode_pulls_a_change_as_it_commits(
    fleet: Fleet, phone: DeviceClient, faults: Faults
) -> None:
    assert phone.store.get("max_pull_wait_s") == str(fleet.services.settings.max_pull_wait_s)
    following = asyncio.create_task(phone.follow(rounds=2))  # catch up, then one live pull
    waits = fleet.services.waits
    for _ in range(3000):  # a guard against a hang of 30 s, not a threshold
        if waits.waiting == 1:
            break
        await asyncio.sleep(0.01)
    assert waits.waiting == 1 and not following.done()
    async with httpx.AsyncClient(transport=faults.inner, base_url="http://testserver") as http:
        tablet = DeviceClient(http, LocalStore(), "ref-tablet-1")
        await tablet.enrol(await fleet.code("w-zhang"))
        checkin = _patrol(tablet)
        await tablet.push()
    assert await following == 3 + 1  # the grid's households, then the tablet's check-in
    assert [r["id"] for r in phone.store.records("checkin")] == [checkin]
    pulls = [s for s in faults.seen if s.startswith("GET /v1/sync/pull")]
    assert len(pulls) == 2


async def test_follow_mode_polls_a_server_without_live_pull(phone: DeviceClient) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    phone.sleep = sleep
    phone.store.put("max_pull_wait_s", "0")  # what an older server's handshake leaves
    assert await phone.follow(rounds=2, poll_s=12.0) == 3
    assert waits == [12.0]
