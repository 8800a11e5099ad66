"""What the handlers share: settings, the engine, the push limiter, the server's clock, the
listener, the live hub and the waiting pulls."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server import sessions
from server.auth import Principal, authenticate, supervisor_principal
from server.clock import wall_ms
from server.errors import ApiError, Code
from server.limits import PushLimits
from server.live import Hub, Listener
from server.ratelimit import FailureWindow, Guard
from server.settings import Settings
from server.tx import read, transaction
from server.waiting import Waiters


@dataclass(slots=True)
class Services:
    settings: Settings
    engine: AsyncEngine
    limiter: PushLimits
    clock: Callable[[], int] = field(default=wall_ms)
    enrol_guard: Guard = field(init=False)
    """Guessing limit of enrolment codes, from the settings."""
    listener: Listener = field(init=False)
    """The process's one listener of notifications (the hub's and the waiting pulls')."""
    live: Hub = field(init=False)
    """The process's live hub of alert events (started and stopped by the app's lifespan)."""
    waits: Waiters = field(init=False)
    """The process's waiting pulls (``GET /v1/sync/pull?wait=``)."""

    login_guard: Guard = field(init=False)
    """Guessing limit of console passwords per client address (and overall)."""
    account_guard: Guard = field(init=False)
    """Guessing limit of console passwords per supervisor id (its "client" is the id)."""

    def __post_init__(self) -> None:
        s = self.settings
        window_ms = s.enrol_failure_window_s * 1000
        self.enrol_guard = Guard(
            "enrol",
            per_client=FailureWindow(s.enrol_failures_per_client, window_ms),
            overall=FailureWindow(s.enrol_failures_overall, window_ms),
        )
        self.listener = Listener(self.engine, check_s=s.stream_poll_s)
        self.live = Hub(
            self.engine,
            self.listener,
            poll_s=s.stream_poll_s,
            safety_poll_s=s.stream_safety_poll_s,
            queue_limit=s.stream_queue_events,
            max_subscribers=s.max_streams,
        )
        self.waits = Waiters(self.listener, max_waiting=s.max_waiting_pulls)
        login_ms = s.login_failure_window_s * 1000
        self.login_guard = Guard(
            "login",
            per_client=FailureWindow(s.login_failures_per_client, login_ms),
            overall=FailureWindow(s.login_failures_overall, login_ms),
        )
        self.account_guard = Guard(
            "login-account",
            per_client=FailureWindow(s.login_failures_per_account, login_ms),
            overall=FailureWindow(s.login_failures_overall, login_ms),
        )


def client_address(request: Request[Any, Any, Any]) -> str:
    """The caller's address (behind a proxy, the one the HTTP server trusts it to forward)."""
    return request.client.host if request.client is not None else "unknown"


def services(request: ASGIConnection[Any, Any, Any, Any]) -> Services:
    found: Services = request.app.state.services
    return found


SAFE_METHODS = frozenset({"GET", "HEAD"})
"""The methods a console session may call the API with (a page's live stream, its downloads);
every other method needs a bearer token, so a cross-site form can change nothing."""


async def principal(request: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The caller, from its bearer token (401 if missing, unknown or revoked); without an
    ``Authorization`` header, a safe request may come with a console session's cookie."""
    header = request.headers.get("authorization")
    svc = services(request)
    cookie = request.cookies.get(sessions.COOKIE)
    safe = request.scope.get("method") in SAFE_METHODS and request.url.path.startswith("/v1/")
    if header is None and cookie and safe:

        async def by_session(conn: AsyncConnection) -> Principal:
            now = svc.clock()
            found = await sessions.session_supervisor(conn, cookie, now, svc.settings, touch=True)
            if found is None:
                raise ApiError(Code.UNAUTHORIZED, "the console session ended; log in again")
            return await supervisor_principal(conn, found)

        return await transaction(svc.engine, by_session)
    return await read(svc.engine, lambda conn: authenticate(conn, header))
