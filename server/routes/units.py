"""Read-only views of the unit tree for supervisors, limited to the subtree they supervise."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.params import FromPath

from server import wire
from server.errors import ApiError, Code
from server.state import principal, services
from server.store import units
from server.tx import read


@get("/v1/units/{unit_id:str}", summary="One unit of the caller's subtree")
async def get_unit(request: Request[Any, Any, Any], unit_id: FromPath[str]) -> Response[bytes]:
    svc = services(request)
    who = await principal(request)
    path = who.require_supervisor()
    unit = await read(svc.engine, lambda c: units.get_unit(c, unit_id))
    if unit is None or not unit["path"].startswith(path):
        raise ApiError(Code.NOT_FOUND, f"no unit {unit_id!r} in your subtree")
    return wire.respond(request, unit)
