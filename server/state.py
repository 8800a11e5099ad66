"""What the handlers share: settings, the engine, the push limiter, the server's clock and the
live hub."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from sqlalchemy.ext.asyncio import AsyncEngine

from server.auth import Principal, authenticate
from server.clock import wall_ms
from server.limits import PushLimits
from server.live import Hub
from server.ratelimit import FailureWindow, Guard
from server.settings import Settings
from server.tx import read


@dataclass(slots=True)
class Services:
    settings: Settings
    engine: AsyncEngine
    limiter: PushLimits
    clock: Callable[[], int] = field(default=wall_ms)
    enrol_guard: Guard = field(init=False)
    """Guessing limit of enrolment codes, from the settings."""
    live: Hub = field(init=False)
    """The process's live hub of alert events (started and stopped by the app's lifespan)."""

    def __post_init__(self) -> None:
        s = self.settings
        window_ms = s.enrol_failure_window_s * 1000
        self.enrol_guard = Guard(
            "enrol",
            per_client=FailureWindow(s.enrol_failures_per_client, window_ms),
            overall=FailureWindow(s.enrol_failures_overall, window_ms),
        )
        self.live = Hub(
            self.engine,
            poll_s=s.stream_poll_s,
            safety_poll_s=s.stream_safety_poll_s,
            queue_limit=s.stream_queue_events,
            max_subscribers=s.max_streams,
        )


def client_address(request: Request[Any, Any, Any]) -> str:
    """The caller's address (behind a proxy, the one the HTTP server trusts it to forward)."""
    return request.client.host if request.client is not None else "unknown"


def services(request: ASGIConnection[Any, Any, Any, Any]) -> Services:
    found: Services = request.app.state.services
    return found


async def principal(request: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The caller, from its bearer token (401 if missing, unknown or revoked)."""
    header = request.headers.get("authorization")
    return await read(services(request).engine, lambda conn: authenticate(conn, header))
