"""Supervisors' views of people in their subtree: a unit's children and workers, one worker
with grids, devices and recent weeks, and a worker's patrols of one week (thin handlers over
``server.people``)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get
from litestar.params import PathParameter, QueryParameter

from schemas.people import ChildUnits, WorkerDetail, WorkerPage, WorkerPatrols
from server import people, wire
from server.openapi import AUTH, DB, PARAMS, negotiated
from server.params import UnitId, id_bounds, text_bounds
from server.routes.deps import SUPERVISOR, Subtree, Svc, requires_supervisor
from server.tx import read

WorkerId = Annotated[str, PathParameter(**id_bounds("A worker id (of the caller's subtree)"))]


class PeopleController(Controller):
    path = "/v1"
    guards = (requires_supervisor,)
    dependencies = SUPERVISOR
    response_class = wire.Negotiated

    @get(
        "/units/{unit_id:str}/children",
        summary="The child units of a unit of the caller's subtree",
        operation_class=negotiated(errors=(404, *AUTH, *PARAMS, *DB)),
    )
    async def get_children(self, svc: Svc, subtree: Subtree, unit_id: UnitId) -> ChildUnits:
        return await read(svc.engine, lambda c: people.children(c, subtree, unit_id))

    @get(
        "/units/{unit_id:str}/workers",
        summary="The workers with a grid in a unit's subtree: names, grids, last sync, this "
        "week's tally",
        operation_class=negotiated(errors=(400, 404, *AUTH, *PARAMS, *DB)),
    )
    async def get_workers(
        self,
        svc: Svc,
        subtree: Subtree,
        unit_id: UnitId,
        cursor: Annotated[
            str | None, QueryParameter(description="from the previous page", max_length=200)
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=people.WORKERS_MAX)] = people.WORKERS_MAX,
    ) -> WorkerPage:
        now = svc.clock()

        async def work(conn: Any) -> WorkerPage:
            return await people.unit_workers(
                conn, subtree, unit_id, now_ms=now, cursor=cursor, limit=limit
            )

        return await read(svc.engine, work)

    @get(
        "/workers/{worker_id:str}",
        summary="One worker of the caller's subtree: grids, devices, the last five weeks",
        operation_class=negotiated(errors=(404, *AUTH, *PARAMS, *DB)),
    )
    async def get_worker(self, svc: Svc, subtree: Subtree, worker_id: WorkerId) -> WorkerDetail:
        now = svc.clock()
        return await read(svc.engine, lambda c: people.worker(c, subtree, worker_id, now_ms=now))

    @get(
        "/workers/{worker_id:str}/patrols",
        summary="A worker's effective patrols of one ISO week, counted or not and why",
        operation_class=negotiated(errors=(404, *AUTH, *PARAMS, *DB)),
    )
    async def get_patrols(
        self,
        svc: Svc,
        subtree: Subtree,
        worker_id: WorkerId,
        week_label: Annotated[
            str | None,
            QueryParameter(
                name="week", **text_bounds("ISO week, e.g. 2026-W47 (default: now)", 64)
            ),
        ] = None,
    ) -> WorkerPatrols:
        now = svc.clock()

        async def work(conn: Any) -> WorkerPatrols:
            return await people.worker_patrols(
                conn, subtree, worker_id, now_ms=now, week_label=week_label
            )

        return await read(svc.engine, work)
