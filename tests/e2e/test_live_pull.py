"""Live pull (``GET /v1/sync/pull?wait=``) on both backends: a waiting pull is woken by a change
in its scope and by none outside it; it answers an empty page when the wait ends; one more than
the process takes is 429; a bad ``wait`` is 400; a client that leaves gives its place back.

Outcomes and order only: every timeout here is a guard against a hang, not a threshold."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from patrolsync import importer
from server.db import make_engine
from server.settings import Settings
from server.tx import transaction
from server.waiting import Waiter
from tests.conftest import running
from tests.e2e.test_alert_live import serving
from tests.support import Device, Fleet

GUARD_S = 60
"""A wait longer than any of these tests runs: only a change (or the client) ends it."""


async def _until(done: Callable[[], bool]) -> None:
    for _ in range(3000):  # a failure guard of 30 s, not a threshold
        if done():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never happened")


def _waiter(fleet: Fleet, key: str) -> Waiter:
    (found,) = [w for w in fleet.services.waits.current() if key in w.keys]
    return found


async def _pull(device: Device, cursor: str | None, wait: Any) -> httpx.Response:
    params: dict[str, Any] = {"wait": wait}
    if cursor:
        params["cursor"] = cursor
    return await device.fleet.client.get(
        "/v1/sync/pull", params=params, headers=device.headers, timeout=GUARD_S + 30
    )


def _ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [c["record"]["id"] for c in response.json()["changes"]]


def _tuned(settings: Settings, **changes: Any) -> Settings:
    return settings.with_(max_pull_wait_s=GUARD_S, **changes)


async def test_a_waiting_pull_is_woken_by_its_scope_and_by_nothing_outside(
    settings: Settings,
) -> None:
    async with running(_tuned(settings)) as fleet:
        # As the app's lifespan does at start (the in-process app here runs without it): a
        # pull about to wait when the listener first listens reads once more, whatever came.
        await fleet.services.listener.start()
        zhang, zhang_phone = await fleet.device("w-zhang"), await fleet.device("w-zhang")
        wang, li, li_phone = (
            await fleet.device("w-wang"),
            await fleet.device("w-li"),
            await fleet.device("w-li"),
        )
        cursors = {d.device_id: (await d.pull_all())[1] for d in (zhang_phone, wang, li)}
        waiting = {
            d.worker_id: asyncio.create_task(_pull(d, cursors[d.device_id], GUARD_S))
            for d in (zhang_phone, wang, li)
        }
        await _until(lambda: fleet.services.waits.waiting == 3)
        wang_waits, li_waits = _waiter(fleet, "w:w-wang"), _waiter(fleet, "w:w-li")

        # zhang's check-in in xinhua-g1: zhang's other device; not wang (same grid, but a device
        # pulls only its own worker's check-ins), not li (another community).
        checkin = zhang.checkin("xinhua-g1")
        await zhang.push([checkin])
        assert _ids(await waiting["w-zhang"]) == [checkin["id"]]
        assert wang_waits.woken == 0 and li_waits.woken == 0
        assert not waiting["w-wang"].done() and not waiting["w-li"].done()

        # zhang's note on a household of xinhua-g1: wang, who shares the grid, sees it.
        note = zhang.note("01890a5d-ac96-774b-bcce-b302099a8057", "h-xh-101", {"text": "x"})
        await zhang.push([note])
        assert _ids(await waiting["w-wang"]) == [note["note_id"]]
        assert li_waits.woken == 0 and not waiting["w-li"].done()

        # li's own check-in, from another device: li's pull is woken at last.
        theirs = li_phone.checkin("qunzhong-g1")
        await li_phone.push([theirs])
        assert _ids(await waiting["w-li"]) == [theirs["id"]]
        assert li_waits.woken >= 1
        assert fleet.services.waits.waiting == 0


async def test_a_wait_that_ends_answers_an_empty_page_as_without_it(settings: Settings) -> None:
    async with running(_tuned(settings)) as fleet:
        device = await fleet.device("w-zhang")
        _, cursor = await device.pull_all()
        ended = await _pull(device, cursor, 1)
        page = ended.json()
        assert ended.status_code == 200 and page["changes"] == [] and page["more"] is False
        # The cursor it answers serves the next pull: the change after it, once.
        checkin = device.checkin("xinhua-g1")
        await device.push([checkin])
        assert _ids(await _pull(device, page["cursor"], 0)) == [checkin["id"]]
        assert fleet.services.waits.waiting == 0


async def test_a_pull_with_news_answers_at_once(settings: Settings) -> None:
    async with running(_tuned(settings)) as fleet:
        device = await fleet.device("w-zhang")
        _, cursor = await device.pull_all()
        checkin = device.checkin("xinhua-g1")
        await device.push([checkin])
        answered = await _pull(device, cursor, GUARD_S)
        assert _ids(answered) == [checkin["id"]]


async def test_one_more_waiting_pull_than_the_process_takes_is_429(settings: Settings) -> None:
    async with running(_tuned(settings, max_waiting_pulls=1)) as fleet:
        zhang, li = await fleet.device("w-zhang"), await fleet.device("w-li")
        _, zhang_cursor = await zhang.pull_all()
        _, li_cursor = await li.pull_all()
        first = asyncio.create_task(_pull(zhang, zhang_cursor, GUARD_S))
        await _until(lambda: fleet.services.waits.waiting == 1)
        refused = await _pull(li, li_cursor, GUARD_S)
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "too_many_requests"
        assert refused.headers["Retry-After"] == str(fleet.services.settings.retry_after_s)
        # A pull with something to answer needs no place, and a pull without wait none either.
        assert (await _pull(li, None, GUARD_S)).status_code == 200
        assert (await _pull(li, li_cursor, 0)).status_code == 200
        checkin = zhang.checkin("xinhua-g1")
        await zhang.push([checkin])
        assert _ids(await first) == [checkin["id"]]


@pytest.mark.parametrize("bad", ["-1", "abc", "1.5", "", " 1", "61", "99999999999"])
async def test_a_bad_wait_is_400_wait_invalid(settings: Settings, bad: str) -> None:
    async with running(_tuned(settings)) as fleet:
        device = await fleet.device("w-zhang")
        refused = await _pull(device, None, bad)
        assert refused.status_code == 400, refused.text
        error = refused.json()["error"]
        assert error["code"] == "wait_invalid"
        assert error["details"] == {"max_pull_wait_s": GUARD_S}


async def test_the_handshake_names_the_longest_wait(settings: Settings) -> None:
    async with running(_tuned(settings)) as fleet:
        reply = await fleet.client.get("/v1/sync/config")
        assert reply.json()["limits"]["max_pull_wait_s"] == GUARD_S


async def test_a_client_that_leaves_gives_its_place_back(settings: Settings) -> None:
    async with serving(_tuned(settings)) as served:
        device = await served.fleet.device("w-zhang")
        _, cursor = await device.pull_all()
        waits = served.fleet.services.waits
        params = {"cursor": cursor, "wait": GUARD_S}
        pulling = asyncio.create_task(
            served.http.get("/v1/sync/pull", params=params, headers=device.headers)
        )
        await _until(lambda: waits.waiting == 1)
        pulling.cancel()  # the connection closes under the waiting pull
        with pytest.raises(asyncio.CancelledError):
            await pulling
        await _until(lambda: waits.waiting == 0)


@pytest.mark.postgres
async def test_an_import_from_another_process_wakes_the_pulls_of_its_grids(
    pg_settings: Settings,
) -> None:
    """On PostgreSQL the import's transaction notifies every server process (here: an engine
    of its own, as ``patrolsync import`` has)."""
    async with running(_tuned(pg_settings)) as fleet:
        await fleet.services.listener.start()
        wang, li = await fleet.device("w-wang"), await fleet.device("w-li")
        _, wang_cursor = await wang.pull_all()
        _, li_cursor = await li.pull_all()
        waiting = asyncio.create_task(_pull(wang, wang_cursor, GUARD_S))
        other = asyncio.create_task(_pull(li, li_cursor, GUARD_S))
        await _until(lambda: fleet.services.waits.waiting == 2)
        doc = importer.ImportDoc(
            households=[importer.HouseholdIn(id="h-xh-999", grid="xinhua-g2", address="新户")]
        )
        engine = make_engine(pg_settings)
        try:
            await transaction(engine, lambda conn: importer.load(conn, doc))
        finally:
            await engine.dispose()
        assert _ids(await waiting) == ["h-xh-999"]
        assert _waiter(fleet, "w:w-li").woken == 0 and not other.done()
        other.cancel()
