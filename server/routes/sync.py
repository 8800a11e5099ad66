"""The sync protocol: handshake, push, pull."""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import msgspec
import structlog
from litestar import Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.openapi.spec import OpenAPIType, Parameter, Schema
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
from server import access, metrics, pulling, pushing, version, waiting, wire
from server.auth import Principal, authenticate
from server.errors import ApiError, Code, ItemCode
from server.openapi import AUTH, BODY, DB, PARAMS, PROTOCOL, documented
from server.state import Services, principal, services
from server.tx import read, transaction
from sync import cursor as cursors
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
            max_pull_wait_s=s.max_pull_wait_s,
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
    if ctx.written.txid:
        svc.waits.committed(ctx.written.txid, ctx.written.keys)
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


WAIT = Parameter(
    name="wait",
    param_in="query",
    required=False,
    description="Live pull: when nothing is new after the cursor, wait up to this many seconds "
    "for a change in the device's scope to be committed, then answer as without it (an empty "
    "page when none came). Whole seconds from 0 to the handshake's `limits.max_pull_wait_s` "
    "(400 wait_invalid otherwise); 429 too_many_requests when the server process has "
    "as many pulls waiting as it takes.",
    schema=Schema(type=OpenAPIType.INTEGER, minimum=0),
)
_WAIT_RE = re.compile(r"[0-9]{1,9}")


def _wait_s(raw: str | None, most: int) -> int:
    """The ``wait`` parameter: 0 when absent; 400 ``wait_invalid`` unless whole seconds in
    ``0..most``."""
    if raw is None:
        return 0
    if not _WAIT_RE.fullmatch(raw) or int(raw) > most:
        raise ApiError(
            Code.WAIT_INVALID,
            f"wait must be whole seconds from 0 to {most}",
            details={"max_pull_wait_s": most},
        )
    return int(raw)


@get(
    "/v1/sync/pull",
    operation_id="pull",
    summary="Pull changes in this device's scope after a cursor",
    description="Reply: PullResponse. 410 rebootstrap_required when the cursor cannot be served. "
    "With `wait`, a pull that finds nothing new waits for a change in its scope (live pull).",
    operation_class=documented(
        None,
        PullResponse,
        errors=(400, 401, 410, 429, *PARAMS, *DB),
        headers=[PROTOCOL, WAIT],
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
    wait_s = _wait_s(request.query_params.get("wait"), s.max_pull_wait_s)
    header = request.headers.get("authorization")
    who: list[Principal] = []

    async def work(conn: AsyncConnection) -> PullResponse:
        # Each read checks the token anew: one revoked (or whose grids changed) while its pull
        # waited is answered as it would be without the wait.
        found = await authenticate(conn, header)
        who.append(found)
        return await pulling.pull(conn, found, cursor, size, svc.clock())

    mark = svc.waits.mark()
    page = await read(svc.engine, work)
    if wait_s and not page.changes and not page.more:
        page = await _waited(
            request, svc, who[0], page, (wait_s, mark), lambda: read(svc.engine, work)
        )
    metrics.PULLED.inc(len(page.changes))
    return wire.respond(request, page)


async def _waited(
    request: Request[Any, Any, Any],
    svc: Services,
    who: Principal,
    page: PullResponse,
    wait: tuple[int, int],
    again: Callable[[], Awaitable[PullResponse]],
) -> PullResponse:
    """The page of a pull that found nothing new, once a change in its scope is visible, the
    client has gone, or the wait (seconds, and the register's mark before the read) is over
    (then read once more)."""
    wait_s, mark = wait
    keys = waiting.pull_keys(who.worker_id if who.role == "device" else None, who.grids)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + waited_s(wait_s, random.random())
    seen = _bound_of(page)
    try:
        async with svc.waits.waiting_for(keys, seen=seen, mark=mark) as waiter:
            watch = asyncio.create_task(_until_gone(request, waiter))
            try:
                retry_s = RETRY_FIRST_S
                while True:
                    remaining = deadline - loop.time()
                    if remaining <= 0 or waiter.gone:
                        break
                    behind = waiter.txid > seen
                    woken = await waiter.wait(min(remaining, retry_s) if behind else remaining)
                    if waiter.gone or not (woken or behind):
                        break
                    page = await again()
                    if page.changes or page.more:
                        return page
                    seen = _bound_of(page)
                    # Woken for a change the read could not see yet (an older transaction
                    # still runs): read again at the next commit heard, or soon, then less
                    # and less often.
                    late = waiter.txid > seen
                    svc.waits.behind(waiter, late)
                    retry_s = min(retry_s * 2, RETRY_MOST_S) if late else RETRY_FIRST_S
            finally:
                watch.cancel()
            if waiter.gone:
                return page
    except waiting.Full:
        retry = svc.settings.retry_after_s
        raise ApiError(
            Code.TOO_MANY_REQUESTS,
            f"{svc.waits.max_waiting} pulls wait in this server process; retry later",
            details={"limit": svc.waits.max_waiting, "retry_after_s": retry},
            headers={"Retry-After": str(retry)},
        ) from None
    return await again()


WAIT_JITTER = 0.2
"""A live pull's wait ends up to this share of its ``wait`` early (docs/protocol.md)."""


def waited_s(wait_s: float, draw: float) -> float:
    """How long a live pull that finds nothing waits: a little less than asked, by ``draw``
    (uniform in [0, 1)), so that waits begun together (every device after a restart) end
    apart, instead of every device reading and asking again at the same moment."""
    return wait_s * (1 - WAIT_JITTER * draw)


RETRY_FIRST_S = 0.005
RETRY_MOST_S = 0.5
"""A woken pull that could not see its change yet reads again after these (doubling)."""


def _bound_of(page: PullResponse) -> int:
    """The transactions an empty page's read could see: those numbered at or below this."""
    return cursors.decode(page.cursor).txid


async def _until_gone(request: Request[Any, Any, Any], waiter: waiting.Waiter) -> None:
    """Mark the waiter gone when the client disconnects (the pull stops waiting and gives up
    its place)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            waiter.leave()
            return
