"""Supervisors' views of patrols: the effective patrols one worker, or every worker of a unit,
started in one ISO week, each with its standing under the quota rule and the data-quality rules
it offends, as the rules decide them (``rules.quota.standing``, ``rules.quality.offences``).

A worker's week is local to the time zone of their first grid (by id), as the quota worker
counts it; a unit's report asks each of its workers for the week of that label in their own
zone. A worker is visible iff one of their grids lies in the caller's subtree (404 otherwise).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from rules import quality, quota
from rules.periods import Week, week, week_of
from rules.policy import Policy
from schemas.people import PatrolOut, UnitPatrols, WorkerPatrols
from server.auth import subtree_unit
from server.errors import ApiError, Code
from server.people import WORKERS_MAX, visible_worker
from server.policies import Policies
from server.store import people as store
from server.store import quota as quota_store
from server.store.rows import Roots


def _quality_patrol(p: store.PatrolRow) -> quality.Patrol:
    return quality.Patrol(
        id=p.id,
        worker_id=p.worker_id,
        device_id=p.device_id,
        grid_id=p.grid_id,
        started_ms=p.started_ms,
        ended_ms=p.ended_ms,
        duration_ms=p.duration_ms,
        flags=p.flags,
        boot_id=p.boot_id,
        **quality.route_fields(p.route),
    )


def _week(label: str | None, now_ms: int, tz: str) -> Week:
    try:
        return week(label, tz) if label else week_of(now_ms, tz)
    except ValueError as exc:
        raise ApiError(Code.INVALID_REQUEST, f"week: {exc}") from None


class _Judged:
    """One worker to report on: their first grid's time zone and policy."""

    def __init__(self, worker_id: str, tz: str, policy: Policy) -> None:
        self.worker_id, self.tz, self.policy = worker_id, tz, policy


async def _judged(conn: AsyncConnection, worker_ids: Sequence[str]) -> list[_Judged]:
    policies = Policies(await quota_store.unit_overrides(conn))
    first: dict[str, store.GridRow] = {}
    for g in await store.worker_grids(conn, worker_ids):
        first.setdefault(g.worker_id, g)  # by grid id: the first is the quota's
    return [
        _Judged(w, first[w].tz, policies(first[w].path, first[w].tz))
        for w in worker_ids
        if w in first
    ]


async def _weeks(
    conn: AsyncConnection, judged: Sequence[_Judged], label: str | None, now_ms: int
) -> list[WorkerPatrols]:
    """The week's report of each worker, in the order of ``judged``."""
    by_tz: dict[str, list[_Judged]] = defaultdict(list)
    for j in judged:
        by_tz[j.tz].append(j)
    found: dict[str, WorkerPatrols] = {}
    for tz, group in by_tz.items():
        wk = _week(label, now_ms, tz)
        ids = [j.worker_id for j in group]
        rows = await store.effective_patrols(conn, wk.start_ms, wk.end_ms, worker_ids=ids)
        mine: dict[str, list[store.PatrolRow]] = defaultdict(list)
        for r in rows:
            if wk.start_ms <= r.started_ms < wk.end_ms:
                mine[r.worker_id].append(r)
        used = [r for patrols in mine.values() for r in patrols]
        on_phones = await store.effective_patrols(
            conn,
            *quality.reach(wk.start_ms, wk.end_ms, used),
            boot_ids=[r.boot_id for r in used if r.boot_id],
        )
        phones = quality.Phones(_quality_patrol(r) for r in on_phones)
        for j in group:
            found[j.worker_id] = _report(j, wk, mine[j.worker_id], phones)
    return [found[j.worker_id] for j in judged]


def _report(
    j: _Judged, wk: Week, mine: list[store.PatrolRow], phones: quality.Phones
) -> WorkerPatrols:
    seen = [_quality_patrol(r) for r in mine]
    offended = quality.offences(j.worker_id, seen, phones.others(j.worker_id, seen), j.policy)
    patrols = []
    for r in mine:
        standing = quota.standing(r.duration_ms, j.policy)
        patrols.append(
            PatrolOut(
                id=r.id,
                root_id=r.root_id,
                amended=r.amended,
                amend_reason=r.reason,
                grid_id=r.grid_id,
                device_id=r.device_id,
                started_ms=r.started_ms,
                ended_ms=r.ended_ms,
                duration_ms=r.duration_ms,
                counted=standing is quota.Standing.COUNTED,
                standing=standing.value,
                flags=list(r.flags),
                findings=offended.get(r.id, []),
                visit_count=r.visit_count,
            )
        )
    return WorkerPatrols(
        worker_id=j.worker_id,
        week=wk.label,
        tz=j.tz,
        start_ms=wk.start_ms,
        end_ms=wk.end_ms,
        required=j.policy.quota_patrols,
        min_patrol_ms=j.policy.quota_min_patrol_ms,
        counted=sum(p.counted for p in patrols),
        patrols=patrols,
    )


async def worker_patrols(
    conn: AsyncConnection,
    subtree: Roots,
    worker_id: str,
    *,
    now_ms: int,
    week_label: str | None = None,
) -> WorkerPatrols:
    """The effective patrols a worker started in one ISO week (default: the week of ``now_ms``)
    in their first grid's time zone. 422 ``invalid_request`` for a label that names no week."""
    await visible_worker(conn, subtree, worker_id)
    judged = await _judged(conn, [worker_id])
    if not judged:  # a worker without a grid is visible nowhere: unreachable, but plain
        raise ApiError(Code.NOT_FOUND, f"no worker {worker_id!r} in your subtree")
    (found,) = await _weeks(conn, judged, week_label, now_ms)
    return found


async def unit_patrols(
    conn: AsyncConnection,
    subtree: Roots,
    unit_id: str,
    *,
    now_ms: int,
    week_label: str | None = None,
) -> UnitPatrols:
    """Every worker with a grid under ``unit_id`` (at most :data:`WORKERS_MAX`), by id, with
    their effective patrols of the week ``week_label`` (default: the current week of the
    unit's time zone), each in their own first grid's zone."""
    unit = await subtree_unit(conn, subtree, unit_id)
    label = week_label or week_of(now_ms, unit.tz).label
    _week(label, now_ms, unit.tz)  # 422 before any read for a label that names no week
    workers = await store.subtree_workers(conn, unit.path, None, WORKERS_MAX)
    names = {w.id: w.name for w in workers}
    weeks = await _weeks(conn, await _judged(conn, list(names)), label, now_ms)
    return UnitPatrols(unit_id=unit_id, week=label, names=names, workers=weeks)
