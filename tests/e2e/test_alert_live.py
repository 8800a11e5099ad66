"""The live alert stream under uvicorn (real HTTP), on both backends: open streams share one read
loop of the process's hub; a change reaches an open stream after its commit (on PostgreSQL by
NOTIFY alone: the safety poll is set far beyond the test); a community's stream gets none of
another's events; a stream that falls behind is closed and resumes exactly; the cap is 429."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec
import pytest
import sqlalchemy as sa
import uvicorn
from sqlalchemy import event

from server.app import create_app
from server.db import make_engine
from server.routes import alert_stream
from server.settings import Settings
from server.store import alert_events, backend, counter
from server.store.tables import supervisor_t, unit_t
from server.tx import read
from tests.conftest import reset
from tests.integration.worker_support import W47, at, clock_of, patrol, push_at, workers_added_at
from tests.support import Clock, Fleet
from worker import sweep

LONG_S = 3600.0
"""A poll interval beyond any test: only a notification can wake the hub (PostgreSQL)."""


@dataclass
class Served:
    fleet: Fleet
    http: httpx.AsyncClient
    """Real HTTP to the uvicorn server (the fleet's client is in-process, buffered)."""


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[Served]:
    await reset(settings)
    engine = make_engine(settings)
    app = create_app(settings, engine=engine)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.01)
        assert server.started
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        fleet_client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base)
        async with fleet_client, httpx.AsyncClient(base_url=base, timeout=30) as http:
            fleet = Fleet(fleet_client, app.state.services)
            fleet.services.clock = Clock(at(0, 6))
            await workers_added_at(fleet, W47.start_ms)
            yield Served(fleet, http)
    finally:
        server.should_exit = True
        await task
        await engine.dispose()


def _tuned(settings: Settings, **changes: Any) -> Settings:
    quick = {"stream_poll_s": 0.05, "stream_safety_poll_s": LONG_S}
    return settings.with_(**{**quick, **changes})


async def _week_done(fleet: Fleet) -> None:
    """zhang makes 2 patrols, li 3, the others none; the sweep after the grace period judges
    (xinhua: zhang and wang missed the quota; qunzhong: liu)."""
    zhang = await fleet.device("w-zhang")
    li = await fleet.device("w-li")
    for idle in ("w-wang", "w-liu"):
        await fleet.device(idle)
    await push_at(zhang, at(2, 20), [patrol("xinhua-g1", at(d, 8), 4) for d in (0, 1)])
    await push_at(li, at(2, 21), [patrol("qunzhong-g1", at(d, 8), 4) for d in (0, 1, 2)])
    clock_of(fleet).ms = at(9, 10)
    await sweep.everything(fleet.services.engine, at(9, 10))


class Stream:
    """An open stream's events, read in the background as ``(id, data)``."""

    def __init__(self) -> None:
        self.events: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self.comments: list[str] = []

    async def read(self, response: httpx.Response) -> None:
        block: dict[str, str] = {}
        async for line in response.aiter_lines():
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
            elif line:
                name, _, value = line.partition(":")
                block[name] = value.strip()
            elif "id" in block:
                await self.events.put((block["id"], msgspec.json.decode(block["data"])))
                block = {}

    async def take(self, n: int) -> list[tuple[str, dict[str, Any]]]:
        async with asyncio.timeout(30):  # a failure guard, not a threshold
            return [await self.events.get() for _ in range(n)]


@contextlib.asynccontextmanager
async def opened(
    served: Served, who: str, headers: dict[str, str] | None = None
) -> AsyncIterator[Stream]:
    stream = Stream()
    auth = {**await served.fleet.supervisor(who), **(headers or {})}
    async with served.http.stream("GET", "/v1/alerts/stream", headers=auth) as response:
        assert response.status_code == 200
        task = asyncio.create_task(stream.read(response))
        try:
            yield stream
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await task


async def _ids(served: Served, who: str, **headers: str) -> list[str]:
    auth = {**await served.fleet.supervisor(who), **headers}
    reply = await served.fleet.client.get(
        "/v1/alerts/stream", params={"follow": "false"}, headers=auth
    )
    blocks = reply.text.replace("\r\n", "\n").split("\n\n")
    return [b.split("\n", 1)[0].removeprefix("id: ") for b in blocks if b.startswith("id:")]


async def _alert_of(served: Served, who: str, worker: str) -> int:
    reply = await served.fleet.client.get(
        "/v1/alerts", params={"rule": "quota_missed"}, headers=await served.fleet.supervisor(who)
    )
    return next(a["id"] for a in reply.json()["alerts"] if a["subject_id"] == worker)


async def _act(served: Served, who: str, alert_id: int, action: str) -> None:
    reply = await served.fleet.client.post(
        f"/v1/alerts/{alert_id}/{action}", headers=await served.fleet.supervisor(who)
    )
    assert reply.status_code == 200, reply.text


async def _until(done: Callable[[], bool]) -> None:
    for _ in range(3000):  # a failure guard of 30 s, not a threshold
        if done():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never happened")


async def _subscribed(served: Served, n: int) -> None:
    hub = served.fleet.services.live
    await _until(lambda: hub.subscribers >= n)


async def test_open_streams_cost_one_read_loop(settings: Settings) -> None:
    poll_s, streams = 0.2, 50
    tuned = _tuned(settings, stream_poll_s=poll_s, stream_safety_poll_s=poll_s)
    async with serving(tuned) as served:
        hub = served.fleet.services.live
        statements = 0

        def count(*_: Any) -> None:
            nonlocal statements
            statements += 1

        sync_engine = served.fleet.services.engine.sync_engine
        async with contextlib.AsyncExitStack() as open_streams:
            for _ in range(streams):
                await open_streams.enter_async_context(opened(served, "s-xinhua"))
            await _subscribed(served, streams)
            await asyncio.sleep(0.3)  # every stream's catch-up is done
            event.listen(sync_engine, "before_cursor_execute", count)
            try:
                reads, clock = hub.reads, asyncio.get_running_loop().time()
                await asyncio.sleep(2.0)
                reads = hub.reads - reads
                rounds = (asyncio.get_running_loop().time() - clock) / poll_s
            finally:
                event.remove(sync_engine, "before_cursor_execute", count)
        assert 1 <= reads <= rounds + 2
        # A read is a few statements (the bound and one page; SQLite's BEGIN too); the idle
        # streams ask the database nothing of their own.
        assert statements <= 3 * (reads + 1) < streams


async def test_a_change_reaches_an_open_stream_after_commit(settings: Settings) -> None:
    async with serving(_tuned(settings)) as served:
        await _week_done(served.fleet)
        before = await _ids(served, "s-xinhua")
        async with opened(served, "s-xinhua") as stream:
            caught_up = await stream.take(len(before))
            assert [i for i, _ in caught_up] == before
            await _subscribed(served, 1)
            alert_id = await _alert_of(served, "s-xinhua", "w-zhang")
            await _act(served, "s-xinhua", alert_id, "acknowledge")
            [(event_id, data)] = await stream.take(1)
        assert data["event"]["kind"] == "acknowledged" and data["alert"]["id"] == alert_id
        assert event_id == (await _ids(served, "s-xinhua", **{"Last-Event-ID": before[-1]}))[0]
        hub = served.fleet.services.live
        # On PostgreSQL the hub polls once an hour here: the notification woke it.
        assert hub.listening == (backend.of(served.fleet.services.engine).name == "postgresql")


async def test_a_community_never_gets_anothers_events(settings: Settings) -> None:
    async with serving(_tuned(settings)) as served:
        await _week_done(served.fleet)
        xinhua_before = await _ids(served, "s-xinhua")
        async with opened(served, "s-xinhua") as stream:
            await stream.take(len(xinhua_before))
            await _subscribed(served, 1)
            theirs = await _alert_of(served, "s-qunzhong", "w-liu")
            ours = await _alert_of(served, "s-xinhua", "w-wang")
            await _act(served, "s-qunzhong", theirs, "acknowledge")
            await _act(served, "s-xinhua", ours, "acknowledge")
            [(_, data)] = await stream.take(1)  # qunzhong's came first, had it been sent
            assert data["alert"]["id"] == ours
            await asyncio.sleep(0.2)
            assert stream.events.empty()


async def test_a_stream_that_falls_behind_is_closed_and_resumes_exactly(
    settings: Settings,
) -> None:
    async with serving(_tuned(settings, stream_queue_events=2)) as served:
        await _week_done(served.fleet)
        services = served.fleet.services
        hub = services.live
        before = await _ids(served, "s-dongfeng")
        path = await _subtree(served, "s-dongfeng")
        events = alert_stream.events(services.engine, hub, path, (0, 0), True)
        sent = [(await anext(events)).id for _ in before]
        assert sent == before
        await _subscribed(served, 1)
        # The stream's reader stops reading; three changes exceed its queue of two.
        for worker, who_acts in (("w-zhang", "s-xinhua"), ("w-wang", "s-xinhua")):
            alert_id = await _alert_of(served, who_acts, worker)
            await _act(served, who_acts, alert_id, "acknowledge")
            await _act(served, who_acts, alert_id, "resolve")
        await _until(lambda: hub.subscribers == 0)  # the hub let go of it
        closing = await anext(events)
        assert closing.retry == alert_stream.RECONNECT_MS and not closing.id
        with pytest.raises(StopAsyncIteration):
            await anext(events)
        # Reconnecting with the last id delivered: every change, once, in order.
        resumed = await _ids(served, "s-dongfeng", **{"Last-Event-ID": str(sent[-1])})
        everything = await _ids(served, "s-dongfeng")
        assert len(resumed) == 4
        assert [str(i) for i in sent] + resumed == everything


async def _subtree(served: Served, who: str) -> str:
    """The path of the unit the supervisor supervises."""
    unit, supervisor = unit_t.c, supervisor_t.c
    stmt = sa.select(unit.path).join(supervisor_t, supervisor.unit_id == unit.id)
    async with served.fleet.services.engine.connect() as conn:
        return str((await conn.execute(stmt.where(supervisor.id == who))).scalar_one())


async def test_streams_beyond_the_cap_are_refused_429(settings: Settings) -> None:
    async with serving(_tuned(settings, max_streams=1)) as served:
        hub = served.fleet.services.live
        headers = await served.fleet.supervisor("s-xinhua")
        async with hub.subscribe("/"):
            refused = await served.http.get("/v1/alerts/stream", headers=headers)
            assert refused.status_code == 429
            assert refused.json()["error"]["code"] == "too_many_requests"
            assert refused.headers["Retry-After"] == str(
                served.fleet.services.settings.retry_after_s
            )
            # Reading what is there without following holds no place.
            once = await served.http.get(
                "/v1/alerts/stream", params={"follow": "false"}, headers=headers
            )
            assert once.status_code == 200
        async with opened(served, "s-xinhua"):
            await _subscribed(served, 1)


async def test_the_feed_is_every_event_in_position_order_with_its_unit(settings: Settings) -> None:
    async with serving(_tuned(settings)) as served:
        await _week_done(served.fleet)
        engine = served.fleet.services.engine

        async def work(conn: Any) -> tuple[list[Any], list[Any], tuple[int, int]]:
            bound = await counter.bound(conn)
            feed = await alert_events.feed_after(conn, (0, 0), bound, 1000)
            rows = await alert_events.events_after(conn, "/", (0, 0), bound, 1000)
            return feed, rows, await alert_events.last_position(conn, bound)

        feed, rows, last = await read(engine, work)
        assert [e.row for e in feed] == rows and len(rows) >= 3
        assert last == (feed[-1].txid, feed[-1].seq)
        assert all(e.unit_path.startswith("/") for e in feed)
        xinhua = await _subtree(served, "s-xinhua")
        mine = [e.row.event_id for e in feed if e.unit_path.startswith(xinhua)]
        theirs = await read(
            engine, lambda c: alert_events.events_after(c, xinhua, (0, 0), 2**62, 99)
        )
        assert mine == [r.event_id for r in theirs] and mine
        later = await read(engine, lambda c: alert_events.feed_after(c, last, 2**62, 10))
        assert later == []
