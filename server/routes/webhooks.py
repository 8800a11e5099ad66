"""Supervisors' webhooks: register a URL for the alert events of a subtree, list, remove, and
read the deliveries (the dead letters among them)."""

from __future__ import annotations

import base64
import secrets
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from schemas.alerts import DeliveryOut, WebhookIn, WebhookOut
from server import webhook_targets, wire
from server.auth import subtree_unit
from server.errors import ApiError, Code
from server.openapi import AUTH, BODY, DB, PARAMS, negotiated
from server.params import RowId
from server.routes.deps import SUPERVISOR, Subtree, Svc, Who, body, requires_supervisor
from server.scope import within
from server.state import Services
from server.store import webhooks as store
from server.store.rows import Roots
from server.tx import read, transaction


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and the base64 of 32 random bytes (the key)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


async def _owned(conn: Any, path: Roots, webhook_id: int) -> store.WebhookFull:
    hook = await store.get(conn, webhook_id)
    if hook is None or not within(hook.unit_path, path):
        raise ApiError(Code.NOT_FOUND, f"no webhook {webhook_id} in your subtree")
    return hook


def _checked_url(url: str, svc: Services) -> None:
    """422 ``invalid_request`` (key ``url``) for a target the allow-list refuses."""
    allow = webhook_targets.AllowList.parse(svc.settings.webhook_allow_hosts)
    try:
        webhook_targets.check_registration(url, allow)
    except webhook_targets.UrlRefused as exc:
        raise ApiError(Code.INVALID_REQUEST, str(exc), details={"key": "url"}) from None


class WebhookController(Controller):
    path = "/v1/webhooks"
    guards = (requires_supervisor,)
    dependencies = SUPERVISOR
    response_class = wire.Negotiated

    @post(
        operation_id="createWebhook",
        summary="Send every alert event of a subtree to a URL (signed; the secret is shown once)",
        operation_class=negotiated(body=WebhookIn, errors=(404, *BODY, *AUTH, *DB)),
        dependencies={"hook": body(WebhookIn)},
    )
    async def create_webhook(
        self, who: Who, svc: Svc, subtree: Subtree, hook: NamedDependency[WebhookIn]
    ) -> WebhookOut:
        _checked_url(hook.url, svc)
        unit_id = hook.unit_id or [u for u in subtree[0].split("/") if u][-1]
        out = WebhookOut(
            id=0,
            unit_id=unit_id,
            url=hook.url,
            active=True,
            created_ms=svc.clock(),
            created_by=who.supervisor_id or "",
            secret=new_secret(),
        )

        async def work(conn: Any) -> WebhookOut:
            unit = await subtree_unit(conn, subtree, unit_id)
            row = {
                "unit_id": unit_id,
                "unit_path": unit.path,
                "url": hook.url,
                "secret": out.secret,
                "active": True,
                "created_ms": out.created_ms,
                "created_by": out.created_by,
            }
            return msgspec.structs.replace(out, id=await store.create(conn, row))

        return await transaction(svc.engine, work)

    @get(
        operation_id="listWebhooks",
        summary="The webhooks of the caller's subtree",
        operation_class=negotiated(errors=(*AUTH, *DB)),
    )
    async def list_webhooks(self, svc: Svc, subtree: Subtree) -> list[WebhookOut]:
        rows = await read(svc.engine, lambda c: store.in_scope(c, subtree))
        return [msgspec.convert(r._asdict(), WebhookOut) for r in rows]

    @delete(
        "/{webhook_id:int}",
        operation_id="deleteWebhook",
        summary="Stop a webhook (its deliveries stay readable)",
        status_code=204,
        operation_class=negotiated(errors=(404, *AUTH, *PARAMS, *DB)),
    )
    async def delete_webhook(self, svc: Svc, subtree: Subtree, webhook_id: RowId) -> None:
        async def work(conn: Any) -> None:
            await _owned(conn, subtree, webhook_id)
            await store.deactivate(conn, webhook_id)

        await transaction(svc.engine, work)

    @get(
        "/{webhook_id:int}/deliveries",
        operation_id="listWebhookDeliveries",
        summary="A webhook's deliveries, newest first (status=dead: the dead letters)",
        operation_class=negotiated(errors=(404, *AUTH, *PARAMS, *DB)),
    )
    async def list_deliveries(
        self,
        svc: Svc,
        subtree: Subtree,
        webhook_id: RowId,
        status: Annotated[
            Literal["pending", "delivered", "dead"] | None, QueryParameter(description="filter")
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
    ) -> list[DeliveryOut]:
        async def work(conn: Any) -> list[DeliveryOut]:
            await _owned(conn, subtree, webhook_id)
            rows = await store.deliveries(conn, webhook_id, status, limit)
            return [msgspec.convert(r._asdict(), DeliveryOut) for r in rows]

        return await read(svc.engine, work)
