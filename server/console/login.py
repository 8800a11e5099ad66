"""Log in and log out.

``GET /login`` sets a random log-in cookie (if absent) and renders the form with the token
derived from it; ``POST /login`` (checked by ``web.csrf_guard``) verifies the password under
two limits of failed attempts (per client address and per supervisor id, ``server.ratelimit``),
opens a session and sends the browser to a same-site ``next``. ``POST /logout`` ends the session.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

import anyio.to_thread
from litestar import Request, get, post
from litestar.datastructures import Cookie
from litestar.params import QueryParameter
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncConnection

from server import sessions
from server.console.strings import ZH
from server.console.web import Seen, Svc, page, safe_next
from server.errors import ApiError, Code
from server.state import Services, client_address
from server.store import console as console_store
from server.tx import read, transaction

FIELD_MAX = 1024


def _secure(request: Request[Any, Any, Any], svc: Services) -> bool:
    return svc.settings.cookie_secure or request.url.scheme == "https"


def _form(
    request: Request[Any, Any, Any],
    svc: Svc,
    *,
    next_url: str,
    error: str | None = None,
    supervisor_id: str = "",
    status_code: int = 200,
) -> Template:
    login_id = request.cookies.get(sessions.LOGIN_COOKIE) or secrets.token_urlsafe(24)
    response = page(
        "login.html",
        viewer=None,
        status_code=status_code,
        login_csrf=sessions.csrf_token(login_id, "login"),
        next_url=next_url,
        error=error,
        supervisor_id=supervisor_id,
    )
    response.cookies.append(
        Cookie(
            key=sessions.LOGIN_COOKIE,
            value=login_id,
            path="/login",
            httponly=True,
            samesite="lax",
            secure=_secure(request, svc),
        )
    )
    return response


@get("/login", include_in_schema=False, sync_to_thread=False)
def login_form(
    request: Request[Any, Any, Any],
    svc: Svc,
    next_url: Annotated[str | None, QueryParameter(name="next")] = None,
) -> Template:
    return _form(request, svc, next_url=safe_next(next_url))


@post("/login", include_in_schema=False, status_code=303)
async def login_submit(request: Request[Any, Any, Any], svc: Svc) -> Any:
    form = await request.form()
    supervisor_id = str(form.get("supervisor_id") or "").strip()[:FIELD_MAX]
    password = str(form.get("password") or "")[:FIELD_MAX]
    next_url = safe_next(str(form.get("next") or "/"))
    client = client_address(request)
    now = svc.clock()
    try:
        with (
            svc.login_guard.attempt(client, now, Code.UNAUTHORIZED),
            svc.account_guard.attempt(supervisor_id[:64], now, Code.UNAUTHORIZED),
        ):
            hashed = await read(svc.engine, lambda c: console_store.password_hash(c, supervisor_id))
            if not await anyio.to_thread.run_sync(sessions.verify, hashed, password):
                raise ApiError(Code.UNAUTHORIZED, "wrong supervisor id or password")
    except ApiError as exc:
        if exc.code is not Code.UNAUTHORIZED:
            raise
        return _form(
            request,
            svc,
            next_url=next_url,
            error=ZH["login.wrong"],
            supervisor_id=supervisor_id,
            status_code=401,
        )

    async def work(conn: AsyncConnection) -> str:
        # a new id at every log-in; this browser's previous session ends (no fixation)
        await sessions.close_session(conn, request.cookies.get(sessions.COOKIE))
        return await sessions.open_session(conn, supervisor_id, svc.clock(), svc.settings)

    session_id = await transaction(svc.engine, work)
    response: Redirect = Redirect(next_url, status_code=303)
    response.cookies.append(
        Cookie(
            key=sessions.COOKIE,
            value=session_id,
            path="/",
            httponly=True,
            samesite="lax",
            secure=_secure(request, svc),
            max_age=svc.settings.session_max_s,
        )
    )
    return response


@post("/logout", include_in_schema=False, status_code=303)
async def logout(request: Request[Any, Any, Any], svc: Svc, viewer: Seen) -> Redirect:
    session_id = request.cookies.get(sessions.COOKIE)
    await transaction(svc.engine, lambda c: sessions.close_session(c, session_id))
    response = Redirect("/login", status_code=303)
    response.delete_cookie(sessions.COOKIE, path="/")
    return response


HANDLERS = (login_form, login_submit, logout)
