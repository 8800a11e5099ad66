"""What every console page shares: the viewer (from the session cookie), rendering a page in
the base layout, the CSRF check, the error pages and the template and static-file config.

Invariants:

* A page handler that takes ``viewer: Viewer`` is reached only with a valid session; without
  one the browser is sent (303) to ``/login?next=<this page>``.
* Every unsafe request (not GET/HEAD/OPTIONS) under the console is refused with a 403 page
  unless it carries the CSRF token of its session (form field ``csrf`` or header
  ``X-CSRF-Token``; htmx sends the header, set once on ``<body>``); ``/login`` carries the
  token of its log-in cookie instead, ``/invite/{token}`` that of its invitation cookie.
* Errors inside the console answer HTML pages in Chinese with the status of the error
  (404, 403, 429 with ``Retry-After``), never the API's JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import structlog
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.handlers.base import BaseRouteHandler
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.template.config import TemplateConfig
from litestar.types import ExceptionHandlersMap
from sqlalchemy.ext.asyncio import AsyncConnection

from server import sessions
from server.auth import Principal, supervisor_principal
from server.console.nav import NAV
from server.console.strings import LANG, ZH
from server.errors import ApiError, Code
from server.redact import mask_path
from server.state import Services, services
from server.store import units
from server.tx import transaction

log = structlog.get_logger("patrolsync.console")

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
INVITE_COOKIE = "patrolsync_invite"
"""A random value set by an invitation's page (path ``/invite``); its form carries a token
derived from it, as the log-in form does."""


@dataclass(frozen=True, slots=True)
class Viewer:
    """The logged-in supervisor of this request."""

    principal: Principal
    supervisor_id: str
    name: str
    unit_id: str
    subtree: str
    """The path of their own unit (where the console opens, whose units the pages offer)."""
    roots: tuple[str, ...]
    """The paths of every subtree they see: their own unit's, then those of the units granted
    them (``supervisor_unit``). Every check of what they may see or do takes these."""
    csrf: str
    """The CSRF token of their session, for every form."""


Svc = NamedDependency[Services]
"""The services (``svc``), as a console handler's parameter."""
Seen = NamedDependency[Viewer]
"""The logged-in supervisor (``viewer``): a handler with this parameter needs a session."""


class LoginRequired(Exception):
    """No valid session: the browser goes to the log-in page and comes back to ``next``."""

    def __init__(self, next_url: str) -> None:
        super().__init__("login required")
        self.next_url = next_url


class CsrfRefused(Exception):
    """An unsafe request without its session's CSRF token."""


def safe_next(raw: str | None) -> str:
    """``raw`` if it is a relative path of this site (``/...``, not ``//host`` nor a scheme),
    else ``/``."""
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return "/"
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc or any(ord(c) < 0x20 for c in raw):
        return "/"
    return raw


def _here(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    query = connection.scope.get("query_string", b"").decode("latin-1")
    return connection.url.path + (f"?{query}" if query else "")


async def provide_viewer(request: Request[Any, Any, Any]) -> Viewer:
    """The ``viewer`` dependency: the session's supervisor (else :class:`LoginRequired`)."""
    svc = services(request)
    session_id = request.cookies.get(sessions.COOKIE)

    async def work(conn: AsyncConnection) -> Viewer | None:
        now = svc.clock()
        found = await sessions.session_supervisor(conn, session_id, now, svc.settings, touch=True)
        if found is None or session_id is None:
            return None
        who = await supervisor_principal(conn, found)
        row = await units.get_supervisor(conn, found)
        assert row is not None and who.unit_path is not None
        return Viewer(
            principal=who,
            supervisor_id=found,
            name=row.name,
            unit_id=row.unit_id,
            subtree=who.unit_path,
            roots=who.unit_paths,
            csrf=sessions.csrf_token(session_id),
        )

    try:
        viewer = await transaction(svc.engine, work)
    except ApiError as exc:  # the supervisor or their unit was removed
        if exc.code is not Code.TOKEN_REVOKED:
            raise
        viewer = None
    if viewer is None:
        raise LoginRequired(_here(request))
    return viewer


def provide_services(request: Request[Any, Any, Any]) -> Services:
    return services(request)


async def csrf_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Router guard: every unsafe console request carries its CSRF token (see the module)."""
    if connection.scope.get("method") in SAFE:
        return
    given = connection.headers.get(CSRF_HEADER)
    if given is None:
        form = await Request(connection.scope, connection.receive).form()
        value = form.get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    if connection.url.path == "/login":
        ok = sessions.csrf_ok(connection.cookies.get(sessions.LOGIN_COOKIE), given, "login")
    elif connection.url.path.startswith("/invite/"):
        ok = sessions.csrf_ok(connection.cookies.get(INVITE_COOKIE), given, "invite")
    else:
        ok = sessions.csrf_ok(connection.cookies.get(sessions.COOKIE), given)
    if not ok:
        log.warning("csrf token missing or wrong", path=mask_path(connection.url.path))
        raise CsrfRefused()


def page(
    name: str,
    *,
    viewer: Viewer | None,
    active: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Template:
    """Render ``templates/<name>`` in the base layout, with the nav, the viewer and its CSRF
    token (``csrf``) in the context beside ``context``."""
    return Template(
        template_name=name,
        context={
            "lang": LANG,
            "nav": NAV,
            "active": active,
            "viewer": viewer,
            "csrf": viewer.csrf if viewer else None,
            **context,
        },
        status_code=status_code,
        headers=headers,
        media_type="text/html",
    )


def error_page(
    status: int, body: str | None = None, headers: dict[str, str] | None = None
) -> Template:
    return page(
        "error.html",
        viewer=None,
        status_code=status,
        headers=headers,
        title=ZH[f"error.{status}.title"],
        message=body or ZH[f"error.{status}.body"],
    )


def _login_required(_: Request[Any, Any, Any], exc: LoginRequired) -> Response[Any]:
    target = safe_next(exc.next_url)
    location = "/login" if target == "/" else f"/login?next={quote(target, safe='/')}"
    return Redirect(location, status_code=303)


def _csrf_refused(_: Request[Any, Any, Any], __: CsrfRefused) -> Template:
    return error_page(403)


def _api_error(_: Request[Any, Any, Any], exc: ApiError) -> Template:
    if exc.code is Code.NOT_FOUND:
        return error_page(404)
    if exc.code is Code.TOO_MANY_REQUESTS:
        seconds = str((exc.details or {}).get("retry_after_s", 1))
        body = ZH["error.429.body"].format(seconds=seconds)
        return error_page(429, body, headers={"Retry-After": seconds})
    if exc.code is Code.FORBIDDEN:
        return error_page(403)
    log.error("console error", code=exc.code.value)
    return error_page(500)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    LoginRequired: _login_required,
    CsrfRefused: _csrf_refused,
    ApiError: _api_error,
}


def _engine(engine: JinjaTemplateEngine) -> None:
    from jinja2 import StrictUndefined

    engine.engine.undefined = StrictUndefined
    engine.engine.globals["t"] = ZH


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine, engine_callback=_engine)
