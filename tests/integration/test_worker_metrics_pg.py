"""The worker's Prometheus metrics, scraped over HTTP from its own port while it does real work
on PostgreSQL and Redis: the outbox's backlog and age, evaluations by kind, alert events by
rule, webhook deliveries by outcome, queue latency."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from server.settings import Settings
from tests.conftest import running
from tests.integration.worker_support import (
    DAY,
    W47,
    at,
    clock_of,
    drain,
    patrol,
    push_at,
    workers_added_at,
)
from tests.support import Clock, Fleet, free_port
from worker import main as worker_main
from worker import metrics, sweep, webhooks

pytestmark = pytest.mark.postgres

Sample = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
async def qfleet(worker_settings: Settings) -> AsyncIterator[Fleet]:
    async with running(worker_settings.with_(db_pool_size=12)) as fleet:
        fleet.services.clock = Clock(at(0, 6))
        await workers_added_at(fleet, W47.start_ms)
        yield fleet


async def scrape(port: int) -> Sample:
    """Every sample of the worker's ``/metrics``, by name and labels."""
    async with httpx.AsyncClient() as client:
        reply = await client.get(f"http://127.0.0.1:{port}/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(reply.text)
        for s in family.samples
    }


def value(sample: Sample, name: str, **labels: str) -> float:
    return sample.get((name, tuple(sorted(labels.items()))), 0.0)


def grew(before: Sample, after: Sample, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


EVALUATIONS = "patrolsync_worker_evaluations_total"
EVENTS = "patrolsync_worker_alert_events_total"
DELIVERIES = "patrolsync_worker_webhook_deliveries_total"
LATENCY = "patrolsync_worker_queue_latency_seconds_count"


async def test_every_family_moves_with_the_work_it_counts(
    qfleet: Fleet, worker_settings: Settings
) -> None:
    engine, clock = qfleet.services.engine, clock_of(qfleet)
    exporter = metrics.serve("127.0.0.1", 0, engine, clock)
    try:
        hook = await qfleet.client.post(
            "/v1/webhooks",
            json={"url": "https://hooks.test/a"},
            headers=await qfleet.supervisor("s-xinhua"),
        )
        assert hook.status_code == 201, hook.text
        start = await scrape(exporter.port)
        assert value(start, metrics.BACKLOG) == 0
        assert value(start, metrics.OLDEST_AGE) == 0

        # A push writes an outbox request: the backlog shows it, and its age grows with time.
        zhang = await qfleet.device("w-zhang")
        two = [patrol("xinhua-g1", at(0, 8), 4), patrol("xinhua-g1", at(1, 8), 4)]
        await push_at(zhang, at(9, 10), two)
        waiting = await scrape(exporter.port)
        assert value(waiting, metrics.BACKLOG) == 1
        assert value(waiting, metrics.OLDEST_AGE) == 0
        clock.ms += 90_000
        assert value(await scrape(exporter.port), metrics.OLDEST_AGE) == 90

        # The worker evaluates it: one week evaluated on request, quota_missed opened, the job's
        # wait in the queue observed, the backlog empty.
        assert await drain(qfleet, worker_settings) == 1
        judged = await scrape(exporter.port)
        assert grew(waiting, judged, EVALUATIONS, kind="week", trigger="request") == 1
        assert grew(waiting, judged, EVENTS, event="opened", rule="quota_missed") == 1
        assert grew(waiting, judged, LATENCY) == 1
        assert value(judged, metrics.BACKLOG) == 0
        assert value(judged, metrics.OLDEST_AGE) == 0

        # Two days unacknowledged: the sweep escalates it.
        moved = await sweep.escalations(engine, at(9, 10) + 2 * DAY)
        assert moved >= 1
        escalated = await scrape(exporter.port)
        assert grew(judged, escalated, EVENTS, event="escalated", rule="quota_missed") == moved

        # The late patrol arrives: auto-resolved.
        late = await qfleet.device("w-zhang")
        await push_at(late, at(10, 9), [patrol("xinhua-g1", at(3, 8), 4.5)])
        await drain(qfleet, worker_settings)
        resolved = await scrape(exporter.port)
        assert grew(escalated, resolved, EVENTS, event="auto_resolved", rule="quota_missed") == 1
        assert grew(escalated, resolved, EVALUATIONS, kind="week", trigger="request") == 1

        # The webhook: a failing receiver, then one that takes everything.
        failing = {"value": True}

        def receiver(request: httpx.Request) -> httpx.Response:
            return httpx.Response(503 if failing["value"] else 204)

        async def resolver(host: str, port: int) -> list[Any]:  # never contacted
            return [ipaddress.ip_address("2001:4860::1")]

        async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as client:
            first = await webhooks.deliver_once(engine, client, clock, resolver=resolver)
            retried = await scrape(exporter.port)
            assert first["retry"] == 1
            assert grew(resolved, retried, DELIVERIES, outcome="retry") == 1
            failing["value"] = False
            clock.ms += webhooks.BACKOFF_S[0] * 1000
            second = await webhooks.deliver_once(engine, client, clock, resolver=resolver)
        delivered = await scrape(exporter.port)
        assert second["delivered"] >= 3  # opened, escalated, auto_resolved
        assert grew(retried, delivered, DELIVERIES, outcome="delivered") == second["delivered"]
        assert grew(retried, delivered, DELIVERIES, outcome="dead") == 0

        # The sweep's own evaluations are counted as such.
        await sweep.everything(engine, clock())
        swept = await scrape(exporter.port)
        for kind in ("week", "household", "device"):
            assert grew(delivered, swept, EVALUATIONS, kind=kind, trigger="sweep") > 0
            assert grew(delivered, swept, EVALUATIONS, kind=kind, trigger="request") == 0
    finally:
        exporter.stop()


async def test_the_running_worker_serves_its_metrics_on_the_configured_port(
    qfleet: Fleet, worker_settings: Settings
) -> None:
    port = free_port()
    settings = worker_settings.with_(worker_metrics_port=port)
    worker = asyncio.create_task(worker_main.run(settings, clock=qfleet.services.clock))
    try:
        before: Sample | None = None
        for _ in range(100):  # until the worker's port answers
            try:
                before = await scrape(port)
                break
            except httpx.ConnectError:
                await asyncio.sleep(0.1)
        assert before is not None, "the worker's metrics never answered"
        zhang = await qfleet.device("w-zhang")
        await push_at(zhang, at(9, 10), [patrol("xinhua-g1", at(0, 8), 4)])
        after = before
        for _ in range(300):  # until the worker has evaluated the push's request
            after = await scrape(port)
            if grew(before, after, EVALUATIONS, kind="week", trigger="request"):
                break
            await asyncio.sleep(0.1)
        assert grew(before, after, EVALUATIONS, kind="week", trigger="request") == 1
        assert grew(before, after, LATENCY) == 1
        assert value(after, metrics.BACKLOG) == 0
        assert value(after, "process_cpu_seconds_total") > 0
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
    with pytest.raises(httpx.ConnectError):  # stopped with the worker
        await scrape(port)
