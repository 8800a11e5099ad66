"""The access log and the request id: one line per HTTP request, and an id that names the request
in every line it causes, in its reply, and in the worker's jobs it causes.

Invariants:

* Every HTTP request gets a request id: the client's ``X-Request-ID`` when it is 1 to
  ``MAX_ID`` characters of ``[A-Za-z0-9._:=+/-]``, else a new one (32 hex digits). The reply
  carries it in ``X-Request-ID``; it is bound (``structlog.contextvars``) as ``request_id`` while
  the request runs, so every line logged for it carries it, the library's lines too.
* The access line (``http request``, logger ``patrolsync.access``, at info) is written when the
  reply has been sent (or the request failed): method, path, status, duration in
  milliseconds, bytes of body sent, client address, request id. The path is masked
  (:func:`server.redact.mask_path`) and the query string is never logged: it may hold an
  enrolment code or a token. No header is logged.
* The wrapper sits outside Litestar's router, so requests no route answers (404, 405) are
  logged too; uvicorn's own access log is off (``patrolsync serve``), so no line is doubled.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import TYPE_CHECKING, Any

import structlog
from litestar.enums import ScopeType

from server.redact import mask_path

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "X-Request-ID"
MAX_ID = 128
_HEADER = HEADER.lower().encode()
_SAFE = re.compile(rf"[A-Za-z0-9._:=+/-]{{1,{MAX_ID}}}")

log = structlog.get_logger("patrolsync.access")


def request_id(offered: str | None) -> str:
    """The client's id when it is acceptable (bounded, safe characters), else a new one."""
    if offered is not None and _SAFE.fullmatch(offered):
        return offered
    return uuid.uuid4().hex


def current() -> str | None:
    """The id of the request being served in this context (None outside a request)."""
    found = structlog.contextvars.get_contextvars().get("request_id")
    return found if isinstance(found, str) else None


def _offered(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == _HEADER:
            return bytes(value).decode("latin-1")
    return None


def _client(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


class AccessLog:
    """ASGI wrapper of the whole application: the request id and the access line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in (ScopeType.HTTP, ScopeType.WEBSOCKET):
            await self.app(scope, receive, send)
            return
        rid = request_id(_offered(scope))
        reply: dict[str, Any] = {"status": None, "bytes": 0}

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                reply["status"] = message["status"]
                headers = [h for h in message.get("headers", ()) if h[0].lower() != _HEADER]
                message["headers"] = [*headers, (_HEADER, rid.encode())]
            elif message["type"] == "http.response.body":
                reply["bytes"] += len(message.get("body", b""))
            await send(message)

        started = time.perf_counter()
        with structlog.contextvars.bound_contextvars(request_id=rid):
            try:
                await self.app(scope, receive, sending)
            finally:
                if scope["type"] == ScopeType.HTTP:
                    log.info(
                        "http request",
                        method=scope.get("method"),
                        path=mask_path(scope.get("path", "")),
                        status=reply["status"],
                        duration_ms=round((time.perf_counter() - started) * 1000, 1),
                        bytes=reply["bytes"],
                        client=_client(scope),
                    )
