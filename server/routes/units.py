"""Supervisors' views of the unit tree, limited to the subtree they supervise: a unit, its
settings (the quota and alert policy, inherited down the tree) and the weekly compliance
summary (JSON for dashboards, CSV for spreadsheets)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, get, put
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from rules.periods import week, week_of
from schemas.alerts import ComplianceReport, UnitSettings
from schemas.units import Unit
from server import compliance, spreadsheet, unit_settings, wire
from server.auth import subtree_unit
from server.errors import ApiError, Code
from server.openapi import AUTH, BODY, DB, PARAMS, documented, negotiated
from server.params import UnitId, id_bounds, text_bounds
from server.routes.deps import SUPERVISOR, Subtree, Svc, Who, body, requires_supervisor
from server.tx import read, transaction


def _own_unit(path: str) -> str:
    return [u for u in path.split("/") if u][-1]


class UnitController(Controller):
    path = "/v1"
    guards = (requires_supervisor,)
    dependencies = SUPERVISOR
    response_class = wire.Negotiated

    @get(
        "/units/{unit_id:str}",
        operation_id="getUnit",
        summary="One unit of the caller's subtree",
        operation_class=negotiated(errors=(404, *AUTH, *PARAMS, *DB)),
    )
    async def get_unit(self, svc: Svc, subtree: Subtree, unit_id: UnitId) -> Unit:
        unit = await read(svc.engine, lambda c: subtree_unit(c, subtree, unit_id))
        return msgspec.convert(unit._asdict(), Unit)

    @get(
        "/units/{unit_id:str}/settings",
        operation_id="getUnitSettings",
        summary="A unit's quota and alert settings: its own overrides and the effective values",
        operation_class=negotiated(errors=(404, *AUTH, *PARAMS, *DB)),
    )
    async def get_settings(self, svc: Svc, subtree: Subtree, unit_id: UnitId) -> UnitSettings:
        async def work(conn: Any) -> UnitSettings:
            return await unit_settings.read_settings(
                conn, await subtree_unit(conn, subtree, unit_id)
            )

        return await read(svc.engine, work)

    @put(
        "/units/{unit_id:str}/settings",
        operation_id="replaceUnitSettings",
        summary="Replace a unit's own overrides (an empty object inherits everything)",
        operation_class=negotiated(body="SettingsOverrides", errors=(404, *BODY, *AUTH, *DB)),
        dependencies={"raw": body(dict[str, Any])},
        status_code=200,
    )
    async def put_settings(
        self,
        who: Who,
        svc: Svc,
        subtree: Subtree,
        unit_id: UnitId,
        raw: NamedDependency[dict[str, Any]],
    ) -> UnitSettings:
        unit_settings.checked(raw)  # a bad body is refused before the unit is looked up

        async def work(conn: Any) -> UnitSettings:
            unit = await subtree_unit(conn, subtree, unit_id)
            by = who.supervisor_id or ""
            return await unit_settings.replace(conn, unit, raw, by, svc.clock())

        return await transaction(svc.engine, work)

    @get(
        "/compliance",
        operation_id="getCompliance",
        summary="Weekly compliance of a unit, per child unit (JSON, or CSV with format=csv)",
        operation_class=documented(
            None, ComplianceReport, errors=(404, *AUTH, *PARAMS, *DB), also={"text/csv": str}
        ),
    )
    async def get_compliance(
        self,
        request: Request[Any, Any, Any],
        svc: Svc,
        subtree: Subtree,
        unit: Annotated[str | None, QueryParameter(**id_bounds("default: your own unit"))] = None,
        week_label: Annotated[
            str | None, QueryParameter(name="week", **text_bounds("ISO week, e.g. 2026-W47", 64))
        ] = None,
        fmt: Annotated[
            Literal["json", "csv"] | None,
            QueryParameter(name="format", description="default: by Accept (text/csv), else json"),
        ] = None,
        bom: Annotated[
            bool, QueryParameter(description="CSV: start with the UTF-8 byte order mark")
        ] = False,
    ) -> Response[Any]:
        async def work(conn: Any) -> ComplianceReport:
            found = await subtree_unit(conn, subtree, unit or _own_unit(subtree[0]))
            label = week_label or week_of(now, found.tz).label
            try:
                week(label, found.tz)
            except ValueError as exc:
                raise ApiError(Code.INVALID_REQUEST, f"week: {exc}") from None
            return await compliance.report(conn, found, label, now)

        now = svc.clock()

        rep = await read(svc.engine, work)
        if not wire.wants_csv(request, fmt):
            return wire.Negotiated(rep)
        text = (spreadsheet.BOM if bom else "") + compliance.to_csv(rep)
        return wire.csv_response(text.encode(), f"compliance-{rep.unit_id}-{rep.week}.csv")
