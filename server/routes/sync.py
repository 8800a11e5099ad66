"""The sync protocol: handshake, push, pull."""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
import structlog
from litestar import Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.params import QueryParameter
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.sync import (
    PROTOCOL_VERSIONS,
    Limits,
    NoteDeleteOp,
    NoteEditOp,
    PullResponse,
    PushItem,
    PushRequest,
    PushRequestDoc,
    PushResponse,
    SyncConfig,
)
from server import access, metrics, pulling, pushing, version, wire
from server.auth import authenticate
from server.errors import ApiError, Code, ItemCode
from server.openapi import AUTH, BODY, DB, PARAMS, PROTOCOL, documented
from server.state import principal, services
from server.tx import read, transaction
from sync import strings

PROTOCOL_HEADER = "Patrolsync-Protocol"
log = structlog.get_logger("patrolsync.sync")


_VERSION_RE = re.compile(r"[1-9][0-9]{0,8}")
"""The header's syntax: a version in ASCII decimal digits, no sign, no leading zero, no spaces."""


def require_protocol(request: ASGIConnection[Any, Any, Any, Any]) -> int:
    raw = request.headers.get(PROTOCOL_HEADER.lower())
    supported = {"min": PROTOCOL_VERSIONS[0], "max": PROTOCOL_VERSIONS[-1]}
    version = int(raw) if raw is not None and _VERSION_RE.fullmatch(raw) else None
    if version not in PROTOCOL_VERSIONS:
        said = "no version" if raw is None else f"version {raw[:16]!r}"
        raise ApiError(
            Code.UNSUPPORTED_PROTOCOL,
            f"request names {said} in the {PROTOCOL_HEADER} header; this server speaks "
            f"{supported['min']}..{supported['max']}",
            details={"supported": supported, "header": PROTOCOL_HEADER},
        )
    assert version is not None
    return version


@get(
    "/v1/sync/config",
    operation_id="getSyncConfig",
    summary="Handshake: server time, protocol versions and limits",
    operation_class=documented(None, SyncConfig),
)
async def sync_config(request: Request[Any, Any, Any]) -> Response[bytes]:
    svc = services(request)
    s = svc.settings
    config = SyncConfig(
        server_time_ms=svc.clock(),
        protocol_versions=list(PROTOCOL_VERSIONS),
        protocol_header=PROTOCOL_HEADER,
        limits=Limits(
            max_push_items=s.max_push_items,
            max_push_bytes=s.max_push_bytes,
            max_pull_limit=s.max_pull_limit,
            default_pull_limit=s.default_pull_limit,
            max_inflight_pushes=s.max_inflight_pushes,
            body_timeout_s=s.body_timeout_s,
        ),
        media_types=wire.MEDIA_TYPES,
        server_version=version.current(),
    )
    return wire.respond(request, config)


def _items(raw_items: list[msgspec.Raw], msgpack: bool) -> list[PushItem | pushing.Rejected]:
    """Each item decoded on its own; one that does not decode, or holds a string the protocol
    refuses (``sync.strings``), is answered ``invalid_item`` and its neighbours go on."""
    items: list[PushItem | pushing.Rejected] = []
    decode = wire.item_decoder(PushItem, msgpack=msgpack).decode
    for raw in raw_items:
        try:
            items.append(decode(raw))
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            items.append(pushing.Rejected(ItemCode.INVALID_ITEM, str(exc)))
        except RecursionError:
            items.append(pushing.Rejected(ItemCode.INVALID_ITEM, wire.TOO_DEEP))
    for index, reason in strings.refused(items).items():
        item = items[index]
        assert not isinstance(item, pushing.Rejected)
        rid = item.note_id if isinstance(item, NoteEditOp | NoteDeleteOp) else item.id
        items[index] = pushing.Rejected(ItemCode.INVALID_ITEM, reason, rid)
    return items


@post(
    "/v1/sync/push",
    operation_id="push",
    summary="Push a batch of changes; one result per item",
    description="Body: PushRequestDoc as JSON or MessagePack. Reply: PushResponse.",
    status_code=200,
    operation_class=documented(
        PushRequestDoc, PushResponse, errors=(429, *BODY, *AUTH, *DB), headers=[PROTOCOL]
    ),
)
async def push(request: Request[Any, Any, Any]) -> Response[bytes]:
    svc = services(request)
    s = svc.settings
    require_protocol(request)
    msgpack = wire.is_msgpack(request.headers.get("content-type", ""))
    who = await principal(request)
    worker_id, device_id = who.require_device()
    with svc.limiter.receiving.slot():
        body = await wire.receive(
            request,
            limit=s.max_push_bytes,
            timeout_s=s.body_timeout_s,
            limit_key="max_push_bytes",
        )
    with svc.limiter.slot():
        envelope = wire.decode(body, PushRequest, msgpack=msgpack)
        if len(envelope.items) > s.max_push_items:
            raise ApiError(
                Code.PAYLOAD_TOO_LARGE,
                f"a push may carry at most {s.max_push_items} items",
                details={"max_push_items": s.max_push_items, "items": len(envelope.items)},
            )
        items = _items(envelope.items, msgpack)
        now = svc.clock()
        ctx = pushing.PushContext(
            worker_id=worker_id,
            device_id=device_id,
            grids=frozenset(who.grids),
            push_id=envelope.push_id,
            skew_ms=envelope.device_time_ms - now,
            now_ms=now,
            hlc_max_ahead_ms=s.hlc_max_ahead_ms,
            complete=envelope.complete,
            tz=who.tz,
            request_id=access.current(),
        )
        results, replayed = await transaction(svc.engine, lambda c: pushing.push(c, ctx, items))
    metrics.record_push(results, replayed)
    log.info(
        "push",
        device=device_id,
        push_id=str(envelope.push_id),
        items=len(results),
        replayed=replayed,
        skew_ms=ctx.skew_ms,
    )
    reply = PushResponse(
        push_id=envelope.push_id,
        results=results,
        server_time_ms=now,
        skew_ms=ctx.skew_ms,
        replayed=replayed,
    )
    return wire.respond(request, reply)


@get(
    "/v1/sync/pull",
    operation_id="pull",
    summary="Pull changes in this device's scope after a cursor",
    description="Reply: PullResponse. 410 rebootstrap_required when the cursor cannot be served.",
    operation_class=documented(
        None, PullResponse, errors=(400, 401, 410, *PARAMS, *DB), headers=[PROTOCOL]
    ),
)
async def pull(
    request: Request[Any, Any, Any],
    cursor: Annotated[str | None, QueryParameter(max_length=200)] = None,
    limit: Annotated[int | None, QueryParameter(ge=1)] = None,
) -> Response[bytes]:
    svc = services(request)
    require_protocol(request)
    s = svc.settings
    size = min(limit or s.default_pull_limit, s.max_pull_limit)
    header = request.headers.get("authorization")

    async def work(conn: AsyncConnection) -> PullResponse:
        who = await authenticate(conn, header)
        return await pulling.pull(conn, who, cursor, size, svc.clock())

    page = await read(svc.engine, work)
    metrics.PULLED.inc(len(page.changes))
    return wire.respond(request, page)
