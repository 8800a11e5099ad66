"""Supervisors' webhooks: register a URL for the alert events of a subtree, list, remove, and
read the deliveries (the dead letters among them)."""

from __future__ import annotations

import base64
import secrets
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.params import QueryParameter

from schemas.alerts import DeliveryOut, WebhookIn, WebhookOut
from server import webhook_targets, wire
from server.auth import subtree_unit
from server.errors import ApiError, Code
from server.openapi import AUTH, BODY, DB, PARAMS, documented
from server.params import RowId
from server.scope import within
from server.state import principal, services
from server.store import webhooks as store
from server.tx import read, transaction


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and the base64 of 32 random bytes (the key)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


async def _owned(conn: Any, path: str, webhook_id: int) -> dict[str, Any]:
    hook = await store.get(conn, webhook_id)
    if hook is None or not within(hook["unit_path"], path):
        raise ApiError(Code.NOT_FOUND, f"no webhook {webhook_id} in your subtree")
    return hook


@post(
    "/v1/webhooks",
    summary="Send every alert event of a subtree to a URL (signed; the secret is shown once)",
    operation_class=documented(WebhookIn, WebhookOut, 201, errors=(404, *BODY, *AUTH, *DB)),
)
async def create_webhook(request: Request[Any, Any, Any]) -> Response[bytes]:
    svc = services(request)
    who = await principal(request)
    path = who.require_supervisor()
    data = await wire.read_body(request, WebhookIn, timeout_s=svc.settings.body_timeout_s)
    allow = webhook_targets.AllowList.parse(svc.settings.webhook_allow_hosts)
    try:
        webhook_targets.check_registration(data.url, allow)
    except webhook_targets.UrlRefused as exc:
        raise ApiError(Code.INVALID_REQUEST, str(exc), details={"key": "url"}) from None
    unit_id = data.unit_id or [u for u in path.split("/") if u][-1]
    secret = new_secret()

    async def work(conn: Any) -> WebhookOut:
        unit = await subtree_unit(conn, path, unit_id)
        row = {
            "unit_id": unit_id,
            "unit_path": unit["path"],
            "url": data.url,
            "secret": secret,
            "active": True,
            "created_ms": svc.clock(),
            "created_by": who.supervisor_id or "",
        }
        hook_id = await store.create(conn, row)
        return WebhookOut(
            id=hook_id,
            unit_id=unit_id,
            url=data.url,
            active=True,
            created_ms=row["created_ms"],
            created_by=row["created_by"],
            secret=secret,
        )

    return wire.respond(request, await transaction(svc.engine, work), 201)


@get(
    "/v1/webhooks",
    summary="The webhooks of the caller's subtree",
    operation_class=documented(None, list[WebhookOut], errors=(*AUTH, *DB)),
)
async def list_webhooks(request: Request[Any, Any, Any]) -> Response[bytes]:
    svc = services(request)
    path = (await principal(request)).require_supervisor()
    rows = await read(svc.engine, lambda c: store.in_scope(c, path))
    return wire.respond(request, [msgspec.convert(r, WebhookOut) for r in rows])


@delete(
    "/v1/webhooks/{webhook_id:int}",
    summary="Stop a webhook (its deliveries stay readable)",
    status_code=204,
    operation_class=documented(None, None, 204, errors=(404, *AUTH, *PARAMS, *DB)),
)
async def delete_webhook(request: Request[Any, Any, Any], webhook_id: RowId) -> None:
    svc = services(request)
    path = (await principal(request)).require_supervisor()

    async def work(conn: Any) -> None:
        await _owned(conn, path, webhook_id)
        await store.deactivate(conn, webhook_id)

    await transaction(svc.engine, work)


@get(
    "/v1/webhooks/{webhook_id:int}/deliveries",
    summary="A webhook's deliveries, newest first (status=dead: the dead letters)",
    operation_class=documented(None, list[DeliveryOut], errors=(404, *AUTH, *PARAMS, *DB)),
)
async def list_deliveries(
    request: Request[Any, Any, Any],
    webhook_id: RowId,
    status: Annotated[
        Literal["pending", "delivered", "dead"] | None, QueryParameter(description="filter")
    ] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
) -> Response[bytes]:
    svc = services(request)
    path = (await principal(request)).require_supervisor()

    async def work(conn: Any) -> list[DeliveryOut]:
        await _owned(conn, path, webhook_id)
        rows = await store.deliveries(conn, webhook_id, status, limit)
        return [msgspec.convert(r, DeliveryOut, from_attributes=False) for r in rows]

    return wire.respond(request, await read(svc.engine, work))
