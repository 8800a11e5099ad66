"""Supervisors' views of people in their subtree: a unit's children and workers, one worker
with grids, devices and recent weeks, and a worker's patrols of one week (thin handlers over
``server.people``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get
from litestar.params import PathParameter, QueryParameter

from schemas.people import ChildUnits, UnitPatrols, WorkerDetail, WorkerPage, WorkerPatrols
from server import exports, patrols, people, wire
from server.openapi import AUTH, DB, PARAMS, documented, negotiated
from server.params import UnitId, id_bounds, text_bounds
from server.routes.deps import SUPERVISOR, Subtree, Svc, requires_supervisor
from server.store import people as people_store
from server.tx import read
from sync.cursor import ID_PAGE_MAX_LEN

WeekLabel = Annotated[
    str | None,
    QueryParameter(name="week", **text_bounds("ISO week, e.g. 2026-W47 (default: now)", 64)),
]
Format = Annotated[
    Literal["json", "csv"] | None,
    QueryParameter(name="format", description="default: by Accept (text/csv), else json"),
]
Bom = Annotated[bool, QueryParameter(description="CSV: start with the UTF-8 byte order mark")]
WorkerId = Annotated[str, PathParameter(**id_bounds("A worker id (of the caller's subtree)"))]


class PeopleController(Controller):
    path = "/v1"
    guards = (requires_supervisor,)
    dependencies = SUPERVISOR
    response_class = wire.Negotiated

    @get(
        "/units/{unit_id:str}/children",
        operation_id="listChildUnits",
        summary="The child units of a unit of the caller's subtree",
        operation_class=negotiated(errors=(404, *AUTH, *PARAMS, *DB)),
    )
    async def get_children(self, svc: Svc, subtree: Subtree, unit_id: UnitId) -> ChildUnits:
        return await read(svc.engine, lambda c: people.children(c, subtree, unit_id))

    @get(
        "/units/{unit_id:str}/workers",
        operation_id="listUnitWorkers",
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
            str | None,
            QueryParameter(description="from the previous page", max_length=ID_PAGE_MAX_LEN),
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
        operation_id="getWorker",
        summary="One worker of the caller's subtree: grids, devices, the last five weeks",
        operation_class=negotiated(errors=(404, *AUTH, *PARAMS, *DB)),
    )
    async def get_worker(self, svc: Svc, subtree: Subtree, worker_id: WorkerId) -> WorkerDetail:
        now = svc.clock()
        return await read(svc.engine, lambda c: people.worker(c, subtree, worker_id, now_ms=now))

    @get(
        "/workers/{worker_id:str}/patrols",
        operation_id="getWorkerPatrols",
        summary="A worker's effective patrols of one ISO week, counted or not and why (CSV with "
        "format=csv or Accept: text/csv)",
        operation_class=documented(
            None, WorkerPatrols, errors=(404, *AUTH, *PARAMS, *DB), also={"text/csv": str}
        ),
    )
    async def get_patrols(
        self,
        request: Request[Any, Any, Any],
        svc: Svc,
        subtree: Subtree,
        worker_id: WorkerId,
        week_label: WeekLabel = None,
        fmt: Format = None,
        bom: Bom = True,
    ) -> Response[Any]:
        now = svc.clock()

        async def work(conn: Any) -> tuple[WorkerPatrols, dict[str, str]]:
            found = await patrols.worker_patrols(
                conn, subtree, worker_id, now_ms=now, week_label=week_label
            )
            return found, await people_store.worker_names(conn, [worker_id])

        found, names = await read(svc.engine, work)
        if not wire.wants_csv(request, fmt):
            return wire.Negotiated(found)
        data = exports.patrols_csv([found], names, bom=bom)
        return wire.csv_response(data, f"patrols-{worker_id}-{found.week}.csv")

    @get(
        "/units/{unit_id:str}/patrols",
        operation_id="getUnitPatrols",
        summary="The week of every worker with a grid in a unit: effective patrols, counted or "
        "not and why (CSV with format=csv or Accept: text/csv)",
        operation_class=documented(
            None, UnitPatrols, errors=(404, *AUTH, *PARAMS, *DB), also={"text/csv": str}
        ),
    )
    async def get_unit_patrols(
        self,
        request: Request[Any, Any, Any],
        svc: Svc,
        subtree: Subtree,
        unit_id: UnitId,
        week_label: WeekLabel = None,
        fmt: Format = None,
        bom: Bom = True,
    ) -> Response[Any]:
        now = svc.clock()

        async def work(conn: Any) -> UnitPatrols:
            return await patrols.unit_patrols(
                conn, subtree, unit_id, now_ms=now, week_label=week_label
            )

        found = await read(svc.engine, work)
        if not wire.wants_csv(request, fmt):
            return wire.Negotiated(found)
        data = exports.patrols_csv(found.workers, found.names, bom=bom)
        return wire.csv_response(data, f"patrols-{unit_id}-{found.week}.csv")
