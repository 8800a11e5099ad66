"""The application factory: one ``create_app()``; a lifespan that opens and closes the engine
and starts and stops the live hub."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import structlog
from litestar import Litestar, Request, Response
from litestar.exceptions import HTTPException
from litestar.plugins.prometheus import PrometheusConfig
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine

from server import console, logs, openapi, wire
from server.access import AccessLog
from server.clock import wall_ms
from server.console.web import template_config
from server.db import DRIVER_ERRORS, Raced, connection_lost, make_engine, read_only
from server.errors import ApiError, Code
from server.limits import PushLimits
from server.process import tune_gc
from server.redact import mask_path
from server.routes import alerts, auth, health, households, people, sync, units, webhooks
from server.settings import Settings, load
from server.state import Services

log = structlog.get_logger("patrolsync.server")

_HTTP_CODES = {
    400: Code.INVALID_REQUEST,
    401: Code.UNAUTHORIZED,
    403: Code.FORBIDDEN,
    404: Code.NOT_FOUND,
    405: Code.METHOD_NOT_ALLOWED,
    408: Code.REQUEST_TIMEOUT,
    414: Code.URI_TOO_LONG,
    431: Code.HEADERS_TOO_LARGE,
    413: Code.PAYLOAD_TOO_LARGE,
    415: Code.UNSUPPORTED_MEDIA_TYPE,
    429: Code.TOO_MANY_REQUESTS,
    503: Code.UNAVAILABLE,
}


def _api_error(request: Request[Any, Any, Any], exc: ApiError) -> Response[bytes]:
    return wire.error_response(request, exc)


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    code = _HTTP_CODES.get(exc.status_code, Code.INVALID_REQUEST)
    if exc.status_code >= 500:
        code = Code.UNAVAILABLE if exc.status_code == 503 else Code.INTERNAL
    details = {"extra": exc.extra} if exc.extra else None
    err = ApiError(code, exc.detail, details=details, headers=dict(exc.headers or {}))
    response = wire.error_response(request, err)
    if code != Code.INVALID_REQUEST:
        response.status_code = exc.status_code
    return response


def _db_error(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    if read_only(exc):
        log.warning(
            "database is read-only", error=type(exc).__name__, path=mask_path(request.url.path)
        )
        err = ApiError(
            Code.UNAVAILABLE,
            "the database is read-only; nothing was written: retry later (a push with the same"
            " push id)",
            headers={"Retry-After": "5"},
        )
        return wire.error_response(request, err)
    transient = (
        isinstance(exc, OperationalError | InterfaceError | PoolTimeout | OSError | Raced)
        or (isinstance(exc, DBAPIError) and exc.connection_invalidated)
        or connection_lost(exc)
    )
    if not transient:
        return _unexpected(request, exc)
    log.warning("database unavailable", error=type(exc).__name__, detail=str(exc)[:200])
    err = ApiError(
        Code.UNAVAILABLE,
        "the database is unavailable; nothing was acknowledged: resend with the same push id",
        headers={"Retry-After": "2"},
    )
    return wire.error_response(request, err)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.error("unhandled error", path=mask_path(request.url.path), exc_info=exc)
    return wire.error_response(request, ApiError(Code.INTERNAL, "internal error"))


def create_app(
    settings: Settings | None = None,
    *,
    clock: Callable[[], int] = wall_ms,
    engine: AsyncEngine | None = None,
) -> Litestar:
    """Build the app. With ``engine`` given (tests, embedding) the caller owns and disposes it."""
    settings = settings or load()
    logs.configure(settings.log_level, settings.log_json)
    limiter = PushLimits(
        settings.max_inflight_pushes, settings.max_receiving_pushes, settings.retry_after_s
    )

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        tune_gc(settings)
        if engine is not None:
            await app.state.services.live.start()
            try:
                yield
            finally:
                await app.state.services.live.stop()
            return
        own = make_engine(settings)
        app.state.services = Services(settings, own, limiter, clock)
        try:
            await app.state.services.live.start()
            yield
        finally:
            await app.state.services.live.stop()
            await own.dispose()

    prometheus = PrometheusConfig(app_name="patrolsync", group_path=True)
    app = Litestar(
        route_handlers=[
            sync.sync_config,
            sync.push,
            sync.pull,
            auth.enrol,
            auth.EnrolmentController,
            units.UnitController,
            people.PeopleController,
            households.HouseholdController,
            alerts.AlertController,
            alerts.my_alerts,
            webhooks.WebhookController,
            health.healthz,
            health.readyz,
            health.Metrics,
            console.router,
            console.static,
        ],
        lifespan=[lifespan],
        middleware=[prometheus.middleware],
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            DBAPIError: _db_error,
            **dict.fromkeys(DRIVER_ERRORS, _db_error),
            PoolTimeout: _db_error,
            Raced: _db_error,
            OSError: _db_error,
            Exception: _unexpected,
        },
        openapi_config=openapi.config(),
        template_config=template_config(),
        logging_config=None,  # logging is server.logs's, configured above
    )
    openapi.add_components(app)
    # Outside the router (app middleware runs for routed requests only): every request logged.
    app.asgi_handler = AccessLog(app.asgi_handler)
    if engine is not None:
        app.state.services = Services(settings, engine, limiter, clock)
    return app
