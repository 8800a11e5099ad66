"""Supervisors' views of households in their subtree (thin handlers over
``server.households``)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get
from litestar.params import PathParameter, QueryParameter

from schemas.households import HouseholdNotes, HouseholdPage
from server import households, wire
from server.openapi import AUTH, DB, PARAMS, negotiated
from server.params import UnitId, id_bounds
from server.routes.deps import SUPERVISOR, Subtree, Svc, requires_supervisor
from server.tx import read
from sync.cursor import ID_PAGE_MAX_LEN

HouseholdId = Annotated[str, PathParameter(**id_bounds("A household id (of the caller's subtree)"))]


class HouseholdController(Controller):
    path = "/v1"
    guards = (requires_supervisor,)
    dependencies = SUPERVISOR
    response_class = wire.Negotiated

    @get(
        "/units/{unit_id:str}/households",
        operation_id="listUnitHouseholds",
        summary="The households of a unit's grids (overdue=true: only the overdue ones), with "
        "their last visit and who made it",
        operation_class=negotiated(errors=(400, 404, *AUTH, *PARAMS, *DB)),
    )
    async def get_households(
        self,
        svc: Svc,
        subtree: Subtree,
        unit_id: UnitId,
        overdue: Annotated[
            bool, QueryParameter(description="only households with a live visit_overdue alert")
        ] = False,
        cursor: Annotated[
            str | None,
            QueryParameter(description="from the previous page", max_length=ID_PAGE_MAX_LEN),
        ] = None,
        limit: Annotated[
            int, QueryParameter(ge=1, le=households.HOUSEHOLDS_MAX)
        ] = households.HOUSEHOLDS_MAX,
    ) -> HouseholdPage:
        now = svc.clock()

        async def work(conn: Any) -> HouseholdPage:
            return await households.unit_households(
                conn, subtree, unit_id, now_ms=now, overdue_only=overdue, cursor=cursor, limit=limit
            )

        return await read(svc.engine, work)

    @get(
        "/households/{household_id:str}/notes",
        operation_id="getHouseholdNotes",
        summary="A household of the caller's subtree and its visit notes (with the texts kept "
        "from concurrent edits)",
        operation_class=negotiated(errors=(404, *AUTH, *PARAMS, *DB)),
    )
    async def get_notes(
        self, svc: Svc, subtree: Subtree, household_id: HouseholdId
    ) -> HouseholdNotes:
        now = svc.clock()
        return await read(
            svc.engine, lambda c: households.household_notes(c, subtree, household_id, now_ms=now)
        )
