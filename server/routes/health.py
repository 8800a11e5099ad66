"""Liveness, readiness and the Prometheus metrics."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.plugins.prometheus import PrometheusController
from sqlalchemy.ext.asyncio import AsyncEngine

from server import version, wire
from server.migrate import head_revision
from server.openapi import NOT_MIGRATED, Health, Readiness, documented
from server.state import services
from server.store import health as health_store
from server.tx import read


@get(
    "/healthz",
    operation_id="getHealth",
    summary="Liveness: the process answers (and its version)",
    operation_class=documented(None, Health),
)
async def healthz(request: Request[Any, Any, Any]) -> Response[bytes]:
    return wire.respond(request, {"status": "ok", "version": version.current()})


@get(
    "/readyz",
    operation_id="getReadiness",
    summary="Readiness: the database answers, takes writes and is migrated",
    operation_class=documented(None, Readiness, replies={503: Readiness}),
)
async def readyz(request: Request[Any, Any, Any]) -> Response[bytes]:
    svc = services(request)
    try:
        revision, read_only = await read(svc.engine, health_store.probe)
    except Exception as exc:  # any failure means "not ready"; the reason is reported
        if not await _never_migrated(svc.engine):
            body = {"status": "unavailable", "database": type(exc).__name__}
            return wire.respond(request, body, 503, {"Retry-After": "5"})
        revision, read_only = None, False
    if read_only:
        body = {"status": "unavailable", "database": "read-only"}
        return wire.respond(request, body, 503, {"Retry-After": "5"})
    if revision != head_revision():
        stale = {
            "status": NOT_MIGRATED,
            "database": NOT_MIGRATED,
            "revision": revision or "",
            "expected": head_revision() or "",
        }
        return wire.respond(request, stale, 503, {"Retry-After": "5"})
    return wire.respond(request, {"status": "ready", "database": "ok"})


async def _never_migrated(engine: AsyncEngine) -> bool:
    """The database answers but holds no migration (its tables could not be probed)."""
    try:
        return await read(engine, health_store.revision) is None
    except Exception:  # it does not answer either
        return False


class Metrics(PrometheusController):
    """Prometheus' text exposition format at ``/metrics``, documented as what it is."""

    @get(
        operation_id="getMetrics",
        summary="Prometheus metrics (text exposition format)",
        operation_class=documented(None, str, reply_media=("text/plain",)),
    )
    async def get(self) -> Response[Any]:
        reply: Response[Any] = await PrometheusController.get.fn(self)
        return reply
