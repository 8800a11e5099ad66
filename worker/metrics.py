"""The worker's Prometheus metrics, in a registry of its own, served on their own port
(``PATROLSYNC_WORKER_METRICS_PORT``; 0, the default, serves none).

What is counted is counted once its transaction has committed: a transaction retried after a
deadlock, or rolled back, counts nothing. Counters are per worker process (sum them over the
processes in a query); the outbox's backlog is read from the database at each scrape, so every
worker reports the same figure (take ``max``, not ``sum``).

* ``patrolsync_worker_evaluations_total{kind, trigger}``: subjects evaluated — ``kind``
  ``week`` (a worker's week), ``household`` or ``device``; ``trigger`` ``request`` (an outbox
  request, from a push) or ``sweep`` (the periodic sweep).
* ``patrolsync_worker_alert_events_total{event, rule}``: alerts ``opened``, ``auto_resolved``,
  ``reopened``, ``updated`` (new evidence) and ``escalated`` by the worker, by rule.
* ``patrolsync_worker_webhook_deliveries_total{outcome}``: webhook tries by outcome —
  ``delivered``, ``retry`` (failed, to be tried again) or ``dead`` (failed, no more tries).
* ``patrolsync_worker_queue_latency_seconds``: how long an evaluation job waited in the queue
  after it was due, until a worker started it (a histogram).
* ``patrolsync_worker_outbox_backlog`` and ``patrolsync_worker_outbox_oldest_age_seconds``:
  outbox requests waiting now, and the age of the oldest (0 when none waits).
* ``patrolsync_worker_outbox_read_errors_total``: scrapes whose outbox read failed (the two
  gauges are then left out of that scrape).
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

import structlog
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine

from server.store import outbox
from server.store.alert_events import NewEvent
from server.tx import read
from sync.durations import SECOND_MS

log = structlog.get_logger("patrolsync.worker")

REGISTRY = CollectorRegistry(auto_describe=True)
"""The worker's metrics (not prometheus-client's default registry, which the server uses)."""
for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    REGISTRY.register(_collector)

EVALUATIONS = Counter(
    "patrolsync_worker_evaluations",
    "Subjects evaluated, by kind and what triggered the evaluation",
    ["kind", "trigger"],
    registry=REGISTRY,
)
ALERT_EVENTS = Counter(
    "patrolsync_worker_alert_events",
    "Alert events the worker wrote (opened, auto_resolved, escalated, ...), by rule",
    ["event", "rule"],
    registry=REGISTRY,
)
DELIVERIES = Counter(
    "patrolsync_worker_webhook_deliveries",
    "Webhook tries, by outcome (delivered, retry, dead)",
    ["outcome"],
    registry=REGISTRY,
)
QUEUE_LATENCY = Histogram(
    "patrolsync_worker_queue_latency_seconds",
    "How long an evaluation job waited in the queue after it was due",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
    registry=REGISTRY,
)
OUTBOX_READ_ERRORS = Counter(
    "patrolsync_worker_outbox_read_errors",
    "Scrapes whose read of the outbox's backlog failed",
    registry=REGISTRY,
)
BACKLOG = "patrolsync_worker_outbox_backlog"
OLDEST_AGE = "patrolsync_worker_outbox_oldest_age_seconds"
SCRAPE_READ_TIMEOUT_S = 5.0
"""A scrape waits this long at most for the outbox's figures."""

TRIGGERS = ("request", "sweep")
OUTCOMES = ("delivered", "retry", "dead")
for _outcome in OUTCOMES:  # every outcome shown from the start (0 until it happens)
    DELIVERIES.labels(outcome=_outcome)


def evaluated(kind: str, trigger: str, n: int) -> None:
    """``n`` subjects of ``kind`` evaluated (their transaction committed)."""
    if n:
        EVALUATIONS.labels(kind=kind, trigger=trigger).inc(n)


def alert_events(events: Iterable[NewEvent]) -> None:
    """Alert events written (their transaction committed)."""
    for (kind, rule), n in Tally((e.kind, e.rule) for e in events).items():
        ALERT_EVENTS.labels(event=kind, rule=rule).inc(n)


def delivery(outcome: str) -> None:
    DELIVERIES.labels(outcome=outcome).inc()


def queue_wait(due_ms: int, started_ms: int) -> None:
    """An evaluation job due at ``due_ms`` (arq's score) started at ``started_ms`` (wall
    clock, both epoch ms)."""
    QUEUE_LATENCY.observe(max(0, started_ms - due_ms) / SECOND_MS)


class OutboxCollector(Collector):
    """Reads the outbox's backlog at each scrape, on the worker's event loop (the scrape runs
    in the metrics server's thread)."""

    def __init__(
        self, engine: AsyncEngine, loop: asyncio.AbstractEventLoop, clock: Callable[[], int]
    ) -> None:
        self.engine, self.loop, self.clock = engine, loop, clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        future = asyncio.run_coroutine_threadsafe(read(self.engine, outbox.backlog), self.loop)
        try:
            waiting, oldest_ms = future.result(timeout=SCRAPE_READ_TIMEOUT_S)
        except Exception as exc:  # (a timeout too: the loop busy, the database slow)
            future.cancel()
            OUTBOX_READ_ERRORS.inc()
            log.warning("metrics: the outbox could not be read", error=type(exc).__name__)
            return
        age_s = 0.0 if oldest_ms is None else max(0, self.clock() - oldest_ms) / SECOND_MS
        yield GaugeMetricFamily(BACKLOG, "Outbox requests waiting to be evaluated", value=waiting)
        yield GaugeMetricFamily(
            OLDEST_AGE, "Age of the oldest outbox request waiting (0 when none)", value=age_s
        )

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(BACKLOG, "Outbox requests waiting to be evaluated")
        yield GaugeMetricFamily(OLDEST_AGE, "Age of the oldest outbox request waiting")


class PortUnavailable(RuntimeError):
    """The metrics' port cannot be listened on (taken, or the address is not this host's)."""


@dataclass
class Exporter:
    """The metrics' HTTP server, running in a thread of its own."""

    server: WSGIServer
    thread: threading.Thread
    collector: OutboxCollector

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
        REGISTRY.unregister(self.collector)


def serve(host: str, port: int, engine: AsyncEngine, clock: Callable[[], int]) -> Exporter:
    """Serve ``/metrics`` (any path, in fact) on ``host:port`` (0: a free port) until
    ``Exporter.stop``; call it from the worker's event loop."""
    collector = OutboxCollector(engine, asyncio.get_running_loop(), clock)
    REGISTRY.register(collector)
    try:
        server, thread = start_http_server(port, addr=host, registry=REGISTRY)
    except OSError as exc:
        REGISTRY.unregister(collector)
        raise PortUnavailable(
            f"the worker's metrics cannot listen on {host}:{port} ({exc.strerror or exc}):"
            " set PATROLSYNC_WORKER_METRICS_PORT to a free port, or 0 for no metrics"
        ) from None
    return Exporter(server, thread, collector)
