"""Read-only views of the unit tree for supervisors, limited to the subtree they supervise."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from server import wire
from server.auth import subtree_unit
from server.openapi import AUTH, DB, PARAMS, Unit, documented
from server.params import UnitId
from server.state import principal, services
from server.tx import read


@get(
    "/v1/units/{unit_id:str}",
    summary="One unit of the caller's subtree",
    operation_class=documented(None, Unit, errors=(404, *AUTH, *PARAMS, *DB)),
)
async def get_unit(request: Request[Any, Any, Any], unit_id: UnitId) -> Response[bytes]:
    svc = services(request)
    who = await principal(request)
    path = who.require_supervisor()
    unit = await read(svc.engine, lambda c: subtree_unit(c, path, unit_id))
    return wire.respond(request, unit)
