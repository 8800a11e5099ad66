"""Supervisors' unit settings (the quota and alert policy, inherited down the tree) and the
weekly compliance summary (JSON for dashboards, CSV for spreadsheets)."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from litestar import Request, Response, get, put
from litestar.params import QueryParameter

from rules.periods import week, week_of
from rules.policy import PolicyError, check_overrides, resolve
from schemas.alerts import ComplianceReport, UnitSettings
from server import compliance, wire
from server.auth import subtree_unit
from server.errors import ApiError, Code
from server.openapi import AUTH, BODY, DB, PARAMS, documented
from server.params import UnitId, id_bounds, text_bounds
from server.state import principal, services
from server.store import quota as quota_store
from server.tx import read, transaction


async def _settings(conn: Any, unit: dict[str, Any]) -> UnitSettings:
    overrides = await quota_store.unit_overrides(conn)
    chain = [overrides[u] for u in unit["path"].split("/") if u in overrides]
    effective = dataclasses.asdict(resolve([*chain, {"tz": unit["tz"]}]))
    return UnitSettings(unit_id=unit["id"], own=overrides.get(unit["id"], {}), effective=effective)


@get(
    "/v1/units/{unit_id:str}/settings",
    summary="A unit's quota and alert settings: its own overrides and the effective values",
    operation_class=documented(None, UnitSettings, errors=(404, *AUTH, *PARAMS, *DB)),
)
async def get_settings(request: Request[Any, Any, Any], unit_id: UnitId) -> Response[bytes]:
    svc = services(request)
    path = (await principal(request)).require_supervisor()

    async def work(conn: Any) -> UnitSettings:
        return await _settings(conn, await subtree_unit(conn, path, unit_id))

    return wire.respond(request, await read(svc.engine, work))


@put(
    "/v1/units/{unit_id:str}/settings",
    summary="Replace a unit's own overrides (an empty object inherits everything)",
    operation_class=documented("SettingsOverrides", UnitSettings, errors=(404, *BODY, *AUTH, *DB)),
    status_code=200,
)
async def put_settings(request: Request[Any, Any, Any], unit_id: UnitId) -> Response[bytes]:
    svc = services(request)
    who = await principal(request)
    path = who.require_supervisor()
    raw = await wire.read_body(request, dict[str, Any], timeout_s=svc.settings.body_timeout_s)
    if "tz" in raw:
        raise ApiError(
            Code.INVALID_REQUEST,
            "tz is a property of the unit, set by the import file, not a setting",
            details={"key": "tz"},
        )
    try:
        values = check_overrides(raw)
    except PolicyError as exc:
        raise ApiError(Code.INVALID_REQUEST, str(exc), details={"key": exc.key}) from None

    async def work(conn: Any) -> UnitSettings:
        unit = await subtree_unit(conn, path, unit_id)
        await quota_store.set_unit_overrides(
            conn, unit_id, values, who.supervisor_id or "", svc.clock()
        )
        return await _settings(conn, unit)

    return wire.respond(request, await transaction(svc.engine, work))


@get(
    "/v1/compliance",
    summary="Weekly compliance of a unit, per child unit (JSON, or CSV with format=csv)",
    operation_class=documented(
        None, ComplianceReport, errors=(404, *AUTH, *PARAMS, *DB), also={"text/csv": str}
    ),
)
async def get_compliance(
    request: Request[Any, Any, Any],
    unit: Annotated[str | None, QueryParameter(**id_bounds("default: your own unit"))] = None,
    week_label: Annotated[
        str | None, QueryParameter(name="week", **text_bounds("ISO week, e.g. 2026-W47", 64))
    ] = None,
    fmt: Annotated[Literal["json", "csv"], QueryParameter(name="format")] = "json",
) -> Response[bytes]:
    svc = services(request)
    who = await principal(request)
    path = who.require_supervisor()
    unit_id = unit or [u for u in path.split("/") if u][-1]

    async def work(conn: Any) -> ComplianceReport:
        found = await subtree_unit(conn, path, unit_id)
        label = week_label or week_of(svc.clock(), found["tz"]).label
        try:
            week(label, found["tz"])
        except ValueError as exc:
            raise ApiError(Code.INVALID_REQUEST, f"week: {exc}") from None
        return await compliance.report(conn, found, label)

    rep = await read(svc.engine, work)
    if fmt == "csv":
        name = f"compliance-{rep.unit_id}-{rep.week}.csv"
        return Response(
            compliance.to_csv(rep).encode(),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return wire.respond(request, rep)
