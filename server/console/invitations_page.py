"""邀请督导 — a supervisor creates the account of a supervisor of a unit below their own and
gets a one-time link (``server.invitations``); the invitee opens ``/invite/{token}`` (no session)
and sets their password once, then logs in.

``/invitations`` (GET form, POST create) needs a session and the session's CSRF token (the
router's guard). ``/invite/{token}`` sets a random cookie scoped to ``/invite`` and its form
carries a token derived from it (``web.csrf_guard`` checks it, as for ``/login``); an unknown,
used or expired token answers the 404 page of invitations. The token is never logged.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.datastructures import Cookie
from litestar.params import PathParameter
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncConnection

from rules.periods import local_minute
from server import accounts, invitations, sessions
from server.auth import subtree_unit
from server.console.strings import ZH
from server.console.web import INVITE_COOKIE, Seen, Svc, Viewer, page
from server.errors import ApiError, Code
from server.state import Services
from server.store import unit_tree, units
from server.tx import read, transaction

FIELD_MAX = 1024
Token = Annotated[str, PathParameter(min_length=1, max_length=200, description="")]
"""An invitation token from the link (43 characters when it is one of ours)."""
_FIELD_ERRORS = {"id": "invite.err.id", "name": "invite.err.name", "unit": "invite.err.unit"}


async def _choices(svc: Services, viewer: Viewer) -> list[units.UnitRow]:
    async def work(conn: AsyncConnection) -> list[units.UnitRow]:
        own = await subtree_unit(conn, viewer.roots, viewer.unit_id)
        found = await unit_tree.subtree_units(conn, own.path)
        return [u for u in found if u.id != own.id and u.kind != "building"]

    return await read(svc.engine, work)


async def _form(
    svc: Services,
    viewer: Viewer,
    *,
    typed: dict[str, str] | None = None,
    error: tuple[str, str] | None = None,
    created: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    return page(
        "invitations.html",
        viewer=viewer,
        active="invitations",
        status_code=status_code,
        choices=await _choices(svc, viewer),
        typed=typed or {"id": "", "name": "", "unit": ""},
        error=error,
        created=created,
    )


@get("/invitations", include_in_schema=False)
async def invitation_form(svc: Svc, viewer: Seen) -> Template:
    return await _form(svc, viewer)


@post("/invitations", include_in_schema=False, status_code=201)
async def invitation_create(request: Request[Any, Any, Any], svc: Svc, viewer: Seen) -> Template:
    form = await request.form()
    typed = {k: str(form.get(k) or "").strip()[:FIELD_MAX] for k in ("id", "name", "unit")}
    now = svc.clock()

    async def work(conn: AsyncConnection) -> tuple[invitations.Invited, str]:
        made = await invitations.invite(
            conn,
            inviter_id=viewer.supervisor_id,
            inviter_subtree=viewer.subtree,
            supervisor_id=typed["id"],
            name=typed["name"],
            unit_id=typed["unit"],
            now_ms=now,
        )
        unit = await units.get_unit(conn, made.unit_id)
        return made, unit.tz if unit else "UTC"

    try:
        made, tz = await transaction(svc.engine, work)
    except ApiError as exc:
        field = str((exc.details or {}).get("field", "unit"))
        if exc.code is Code.CONFLICT:
            error = ("id", ZH["invite.err.exists"])
        elif exc.code in (Code.INVALID_REQUEST, Code.NOT_FOUND) and field in _FIELD_ERRORS:
            error = (field, ZH[_FIELD_ERRORS[field]])
        else:
            raise
        return await _form(svc, viewer, typed=typed, error=error, status_code=422)
    link = f"{str(request.base_url).rstrip('/')}/invite/{made.token}"
    created = {
        "id": made.supervisor_id,
        "name": typed["name"],
        "link": link,
        "expires": local_minute(made.expires_ms, tz).replace("T", " "),
    }
    return await _form(svc, viewer, created=created, status_code=201)


def _secure(request: Request[Any, Any, Any], svc: Services) -> bool:
    return svc.settings.cookie_secure or request.url.scheme == "https"


def _invalid() -> Template:
    return page(
        "error.html",
        viewer=None,
        status_code=404,
        title=ZH["error.invite.title"],
        message=ZH["error.invite.body"],
    )


async def _accept_form(
    request: Request[Any, Any, Any], svc: Services, token: str, *, error: str | None = None
) -> Template:
    async def work(conn: AsyncConnection) -> tuple[units.SupervisorRow, units.UnitRow] | None:
        try:
            found = await invitations.pending(conn, token, svc.clock())
        except ApiError:
            return None
        who = await units.get_supervisor(conn, found.supervisor_id)
        unit = await units.get_unit(conn, who.unit_id) if who else None
        return (who, unit) if who and unit else None

    found = await read(svc.engine, work)
    if found is None:
        return _invalid()
    who, unit = found
    cookie_id = request.cookies.get(INVITE_COOKIE) or secrets.token_urlsafe(24)
    response = page(
        "invite.html",
        viewer=None,
        status_code=422 if error else 200,
        invite_csrf=sessions.csrf_token(cookie_id, "invite"),
        who=who,
        unit=unit,
        error=error,
    )
    response.cookies.append(
        Cookie(
            key=INVITE_COOKIE,
            value=cookie_id,
            path="/invite",
            httponly=True,
            samesite="strict",
            secure=_secure(request, svc),
        )
    )
    return response


@get("/invite/{token:str}", include_in_schema=False)
async def invite_form(request: Request[Any, Any, Any], svc: Svc, token: Token) -> Template:
    return await _accept_form(request, svc, token)


@post("/invite/{token:str}", include_in_schema=False, status_code=200)
async def invite_accept(request: Request[Any, Any, Any], svc: Svc, token: Token) -> Template:
    form = await request.form()
    password = str(form.get("password") or "")
    again = str(form.get("password2") or "")
    if password != again:
        return await _accept_form(request, svc, token, error=ZH["invite.err.mismatch"])
    try:
        hashed = await accounts.hash_for(password)
    except ApiError:
        return await _accept_form(request, svc, token, error=ZH["invite.err.short"])
    try:
        supervisor_id = await transaction(
            svc.engine, lambda c: invitations.accept(c, token, hashed, svc.clock())
        )
    except ApiError as exc:
        if exc.code is not Code.NOT_FOUND:
            raise
        return _invalid()
    response = page("invite_done.html", viewer=None, supervisor_id=supervisor_id)
    response.delete_cookie(INVITE_COOKIE, path="/invite")
    return response


HANDLERS = (invitation_form, invitation_create, invite_form, invite_accept)
