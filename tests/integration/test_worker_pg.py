"""The quota worker end to end on real PostgreSQL and real Redis, the worker in burst mode:
push → outbox → job → alert → auto-resolution; Redis outages; duplicate and racing jobs;
watermarks and the grace period; supervisors' scope."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.exceptions import RedisError

from server.settings import Settings
from server.store import outbox
from server.tx import read
from tests.conftest import IN_CI, running
from tests.integration.worker_support import (
    W47,
    alerts_of,
    at,
    clock_of,
    drain,
    keyed,
    patrol,
    push_at,
    workers_added_at,
)
from tests.support import Clock, Fleet
from worker import jobs, payloads, queue, sweep
from worker import main as worker_main

pytestmark = pytest.mark.postgres


@pytest.fixture
async def qfleet(worker_settings: Settings) -> AsyncIterator[Fleet]:
    async with running(worker_settings.with_(db_pool_size=12)) as fleet:
        fleet.services.clock = Clock(at(0, 6))
        await workers_added_at(fleet, W47.start_ms)
        yield fleet


async def _events(fleet: Fleet, supervisor: str, alert_id: int) -> list[str]:
    headers = await fleet.supervisor(supervisor)
    response = await fleet.client.get(f"/v1/alerts/{alert_id}", headers=headers)
    assert response.status_code == 200, response.text
    return [e["kind"] for e in response.json()["events"]]


async def test_push_raises_alert_and_late_data_auto_resolves_it(
    qfleet: Fleet, worker_settings: Settings
) -> None:
    zhang = await qfleet.device("w-zhang")
    # Two patrols of the week, synced on the Wednesday after it: the device has now synced past
    # the week's end, so the verdict is final.
    two = [patrol("xinhua-g1", at(0, 8), 4), patrol("xinhua-g1", at(1, 8), 4)]
    await push_at(zhang, at(9, 10), two)
    assert await drain(qfleet, worker_settings) == 1
    found = keyed(await alerts_of(qfleet, "s-xinhua", rule="quota_missed"))
    alert = found[("quota_missed", "w-zhang", "2026-W47")]
    assert alert["status"] == "open"
    assert alert["severity"] == "critical"
    assert alert["unit_id"] == "xinhua-g1"
    assert (alert["evidence"]["counted"], alert["evidence"]["required"]) == (2, 3)

    # Thursday's patrol was still on another phone: it syncs the next day, within lateness.
    late = await qfleet.device("w-zhang")
    await push_at(late, at(10, 9), [patrol("xinhua-g1", at(3, 8), 4.5)])
    await drain(qfleet, worker_settings)
    (after,) = await alerts_of(qfleet, "s-xinhua", rule="quota_missed")
    assert after["id"] == alert["id"]
    assert after["status"] == "auto_resolved"
    assert after["reason"].startswith("quota met: 3 of 3")
    assert await _events(qfleet, "s-xinhua", alert["id"]) == ["opened", "auto_resolved"]


async def test_sunday_patrol_synced_on_tuesday_raises_nothing_a_true_miss_raises_one(
    qfleet: Fleet, worker_settings: Settings
) -> None:
    zhang = await qfleet.device("w-zhang")
    li = await qfleet.device("w-li")
    # Saturday evening both phones sync two patrols each (complete pushes: watermark Saturday).
    await push_at(
        zhang, at(5, 20), [patrol("xinhua-g1", at(0, 8), 4), patrol("xinhua-g1", at(2, 8), 4)]
    )
    await push_at(
        li, at(5, 21), [patrol("qunzhong-g1", at(1, 8), 4), patrol("qunzhong-g1", at(3, 8), 4)]
    )
    await drain(qfleet, worker_settings)
    # Sunday zhang patrols offline. Monday the sweep runs: both weeks wait for the phones.
    clock_of(qfleet).ms = at(7, 10)
    await sweep.everything(qfleet.services.engine, at(7, 10))
    missed = await alerts_of(qfleet, "s-dongfeng", rule="quota_missed")
    # (wang and liu have no phone to wait for, and no patrol: their verdict is due at once)
    assert sorted((a["subject_id"], a["period"]) for a in missed) == [
        ("w-liu", "2026-W47"),
        ("w-wang", "2026-W47"),
    ]
    # Li's phone syncs on Monday (nothing new): it has synced past the week: final, one breach.
    await push_at(li, at(7, 12), [])
    await drain(qfleet, worker_settings)
    missed = [
        a
        for a in await alerts_of(qfleet, "s-dongfeng", rule="quota_missed")
        if a["subject_id"] in ("w-zhang", "w-li")
    ]
    assert [(a["subject_id"], a["status"]) for a in missed] == [("w-li", "open")]
    # Tuesday afternoon zhang's phone syncs Sunday's patrol: three of three, no alert at all.
    await push_at(zhang, at(8, 15), [patrol("xinhua-g1", at(6, 9), 4)])
    await drain(qfleet, worker_settings)
    # Sweeps after the grace period change nothing: still exactly one alert, opened once.
    for day in (9, 10):
        clock_of(qfleet).ms = at(day, 10)
        await sweep.everything(qfleet.services.engine, at(day, 10))
        await drain(qfleet, worker_settings)
    missed = await alerts_of(qfleet, "s-dongfeng", rule="quota_missed")
    assert sorted(a["subject_id"] for a in missed) == ["w-li", "w-liu", "w-wang"]
    for alert in missed:
        kinds = await _events(qfleet, "s-dongfeng", alert["id"])
        # opened once; unacknowledged for a day, each went one rung up the ladder
        assert [k for k in kinds if k != "escalated"] == ["opened"]
        assert alert["level"] == kinds.count("escalated") == 1


async def test_same_job_twice_and_racing_workers_leave_one_alert(
    qfleet: Fleet, worker_settings: Settings
) -> None:
    wang = await qfleet.device("w-wang")
    await push_at(wang, at(8, 10), [patrol("xinhua-g2", at(2, 8), 4)])
    engine = qfleet.services.engine
    (request,) = await read(engine, lambda c: outbox.due(c, at(8, 10), 600_000, 10))
    ctx = {"engine": engine, "clock": clock_of(qfleet)}
    job = payloads.Evaluate.of([request])
    # Four workers run the same evaluation at the same moment, then it runs twice more.
    await asyncio.gather(*(jobs.evaluate(ctx, job) for _ in range(4)))
    await jobs.evaluate(ctx, job)
    await jobs.evaluate(ctx, job)
    (alert,) = await alerts_of(qfleet, "s-xinhua", rule="quota_missed")
    assert alert["subject_id"] == "w-wang"
    assert await _events(qfleet, "s-xinhua", alert["id"]) == ["opened"]
    # The job deleted its request; relaying again finds nothing.
    assert await read(engine, lambda c: outbox.due(c, at(8, 10), 0, 10)) == []


async def test_a_job_queued_by_an_earlier_release_is_evaluated(
    qfleet: Fleet, worker_settings: Settings
) -> None:
    """Jobs that earlier releases queued carry a list of ``[id, version, kind, subject,
    period]`` lists; this release's worker still evaluates them."""
    wang = await qfleet.device("w-wang")
    await push_at(wang, at(8, 10), [patrol("xinhua-g2", at(2, 8), 4)])
    engine = qfleet.services.engine
    (r,) = await read(engine, lambda c: outbox.due(c, at(8, 10), 600_000, 10))
    pool = await queue.connect(worker_settings.redis_url, worker_settings.queue_name)
    try:
        legacy = [[r.id, r.version, r.kind, r.subject, r.period]]
        assert await pool.enqueue_job(queue.EVALUATE, legacy) is not None
    finally:
        await pool.aclose()
    await queue.run(worker_main._worker(worker_settings, engine, clock_of(qfleet), burst=True))
    (alert,) = await alerts_of(qfleet, "s-xinhua", rule="quota_missed")
    assert alert["subject_id"] == "w-wang"
    assert await read(engine, lambda c: outbox.due(c, at(8, 10), 0, 10)) == []


# ---------------------------------------------------------------- Redis outage


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    """A redis-server of this test's own, to stop and start at will."""

    def __init__(self, workdir: Path) -> None:
        self.port = _free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
        )
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            self.process.poll()
            assert self.process.returncode is None, "redis-server exited"
            time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        if IN_CI:
            pytest.fail("redis-server is required in CI")
        pytest.skip("redis-server not installed")
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_redis_down_during_pushes_loses_no_evaluation(
    qfleet: Fleet, worker_settings: Settings, private_redis: PrivateRedis
) -> None:
    settings = worker_settings.with_(redis_url=private_redis.url)
    engine = qfleet.services.engine
    phones = {w: await qfleet.device(w) for w in ("w-zhang", "w-wang", "w-li", "w-liu")}
    grid = {
        "w-zhang": "xinhua-g1",
        "w-wang": "xinhua-g2",
        "w-li": "qunzhong-g1",
        "w-liu": "qunzhong-g2",
    }
    done = {"w-zhang": 3, "w-wang": 2, "w-li": 3, "w-liu": 1}
    # Redis is up for zhang's push; then it goes away while the others push one patrol at a time.
    await push_at(
        phones["w-zhang"], at(8, 9), [patrol(grid["w-zhang"], at(d, 8), 4) for d in range(3)]
    )
    await drain(qfleet, settings)
    private_redis.stop()
    for worker in ("w-wang", "w-li", "w-liu"):
        for day in range(done[worker]):
            response = await push_at(
                phones[worker], at(8, 10 + day), [patrol(grid[worker], at(day, 8), 4)]
            )
            assert response["results"][0]["status"] == "applied"
    with pytest.raises((RedisError, OSError)):
        await drain(qfleet, settings)
    waiting, _ = await read(engine, outbox.backlog)
    assert waiting == 3  # one request per worker-week: later pushes bumped it
    private_redis.start()
    await drain(qfleet, settings)
    assert (await read(engine, outbox.backlog))[0] == 0
    missed = await alerts_of(qfleet, "s-dongfeng", rule="quota_missed")
    assert sorted((a["subject_id"], a["period"]) for a in missed) == [
        ("w-liu", "2026-W47"),
        ("w-wang", "2026-W47"),
    ]
    for alert in missed:
        assert await _events(qfleet, "s-dongfeng", alert["id"]) == ["opened"]


# ---------------------------------------------------------------- scope and the stream


async def test_a_supervisor_never_sees_or_streams_another_communitys_alerts(
    qfleet: Fleet, worker_settings: Settings
) -> None:
    zhang = await qfleet.device("w-zhang")
    li = await qfleet.device("w-li")
    await push_at(zhang, at(8, 9), [patrol("xinhua-g1", at(0, 8), 4)])
    await push_at(li, at(8, 9), [patrol("qunzhong-g1", at(0, 8), 4)])
    await drain(qfleet, worker_settings)
    xinhua = await alerts_of(qfleet, "s-xinhua")
    qunzhong = await alerts_of(qfleet, "s-qunzhong")
    street = await alerts_of(qfleet, "s-dongfeng")
    assert {a["subject_id"] for a in xinhua} == {"w-zhang"}
    assert {a["subject_id"] for a in qunzhong} == {"w-li"}
    assert {a["id"] for a in street} == {a["id"] for a in xinhua + qunzhong}
    headers = await qfleet.supervisor("s-xinhua")
    foreign = qunzhong[0]["id"]
    for method, path in [
        ("GET", f"/v1/alerts/{foreign}"),
        ("POST", f"/v1/alerts/{foreign}/acknowledge"),
        ("POST", f"/v1/alerts/{foreign}/resolve"),
    ]:
        response = await qfleet.client.request(method, path, headers=headers)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"]["code"] == "not_found"
    response = await qfleet.client.get("/v1/alerts", params={"unit": "qunzhong"}, headers=headers)
    assert response.status_code == 404
    stream = await qfleet.client.get(
        "/v1/alerts/stream", params={"follow": "false"}, headers=headers
    )
    assert stream.status_code == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert "w-zhang" in stream.text
    assert "w-li" not in stream.text and "qunzhong" not in stream.text
