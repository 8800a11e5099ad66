"""Deciding pushed check-ins and amendments: facts, never overwritten."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.sync import AmendOp, CheckinOp, ItemResult, PushItem
from server.errors import ItemCode
from server.plan import ItemError, Plan, PushContext, Rejected, check_clock, rejected
from server.store import push as store
from server.store import units
from sync import checkin as clock_rules

_CHECKIN_OPS = (CheckinOp, AmendOp)


async def decide_checkins(
    conn: AsyncConnection, ctx: PushContext, items: Sequence[PushItem | Rejected], plan: Plan
) -> None:
    ops = [(i, op) for i, op in enumerate(items) if isinstance(op, _CHECKIN_OPS)]
    if not ops:
        return
    # The worker's own grids exist; only a grid outside them needs looking up (to tell an
    # unknown grid from someone else's).
    foreign = {op.grid_id for _, op in ops} - ctx.grids
    known_grids = set(ctx.grids) | await units.existing_grids(conn, foreign)
    household_grid = await units.household_grids(conn, (h for _, op in ops for h in op.households))
    # A large batch on PostgreSQL does not look its own ids up: its ``COPY`` refuses a stored
    # one, and the push is then run again with the lookup (``store.refuses_stored``). The
    # check-ins amended are always looked up.
    plan.unlooked = not ctx.attempts.raced and store.refuses_stored(conn, len(ops))
    ids = [op.amends for _, op in ops if isinstance(op, AmendOp)]
    if not plan.unlooked:
        ids += [op.id for _, op in ops]
    existing = await store.checkins_by_id(conn, ids)
    # Keyed by the id's integer: hashing it is far cheaper than hashing a UUID.
    known = {key.int: row for key, row in existing.items()}
    in_batch: dict[int, dict[str, Any]] = {}
    for index, op in ops:
        rid = op.id
        key = rid.int
        try:
            # Rows of this batch are this worker's (they carry no worker column: see
            # ``_checkin_row``); stored ones say whose they are.
            if key in in_batch:
                plan.results.append(ItemResult(index=index, status="duplicate", id=rid))
                continue
            stored = known.get(key)
            if stored is not None:
                if stored.worker_id != ctx.worker_id:
                    raise ItemError(ItemCode.ID_REUSED, "this id belongs to another record")
                plan.results.append(ItemResult(index=index, status="duplicate", id=rid))
                continue
            row = _checkin_row(ctx, op, known_grids, household_grid)
            if isinstance(op, AmendOp):
                # The amended check-in: one of this batch (a row to insert), or a stored one.
                pending = in_batch.get(op.amends.int)
                if pending is not None:
                    started, root = pending["started_ms"], pending["root_id"]
                else:
                    target = known.get(op.amends.int)
                    if target is None or target.worker_id != ctx.worker_id:
                        raise ItemError(
                            ItemCode.UNKNOWN_CHECKIN, f"no check-in {op.amends} of this worker"
                        )
                    started, root = target.started_ms, target.root_id
                check_clock(ctx, op.clock)
                plan.amended_starts.append(int(started))
                row.update(amends=op.amends, root_id=root, clock=op.clock, reason=op.reason)
        except ItemError as exc:
            plan.results.append(rejected(index, rid, exc.code, exc.reason))
            continue
        in_batch[key] = row
        plan.checkins.append((index, row))
        plan.results.append(ItemResult(index=index, status="applied", id=rid, flags=row["flags"]))


def _checkin_row(
    ctx: PushContext,
    op: CheckinOp | AmendOp,
    known_grids: set[str],
    household_grid: dict[str, str],
) -> dict[str, Any]:
    if op.worker_id is not None and op.worker_id != ctx.worker_id:
        raise ItemError(ItemCode.FORBIDDEN_WORKER, "a device may write only as its own worker")
    if op.grid_id not in known_grids:
        raise ItemError(ItemCode.UNKNOWN_GRID, f"no grid {op.grid_id!r}")
    if op.grid_id not in ctx.grids:
        raise ItemError(ItemCode.FORBIDDEN_GRID, f"grid {op.grid_id!r} is not this worker's")
    for household in op.households:
        if household_grid.get(household) != op.grid_id:
            raise ItemError(
                ItemCode.UNKNOWN_HOUSEHOLD, f"no household {household!r} in grid {op.grid_id!r}"
            )
    try:
        times = clock_rules.assess(
            started_ms=op.started_ms,
            ended_ms=op.ended_ms,
            elapsed_ms=op.elapsed_ms,
            skew_ms=ctx.skew_ms,
            server_now_ms=ctx.now_ms,
            policy=ctx.policy,
        )
    except clock_rules.CheckinRejected as exc:
        raise ItemError(ItemCode(exc.code), exc.reason) from None
    flags = list(times.flags)
    if op.route is not None and op.route.mock_location:
        flags = sorted([*flags, "mock_location"])
    # The columns every row of this push shares (worker, device, push, time received, skew)
    # are not repeated here: ``store.insert_checkins`` adds them once for the batch.
    return {
        "id": op.id,
        "grid_id": op.grid_id,
        "started_ms": times.started_ms,
        "ended_ms": times.ended_ms,
        "device_started_ms": op.started_ms,
        "device_ended_ms": op.ended_ms,
        "duration_ms": times.duration_ms,
        "duration_source": times.duration_source,
        "elapsed_ms": op.elapsed_ms,
        "boot_id": op.boot_id,
        "visit_count": op.visit_count,
        "households": list(op.households),
        "route": op.route,  # a Struct: the JSON encoders write it as an object
        "flags": flags,
        "amends": None,
        "root_id": op.id,
        "clock": None,
        "reason": "",
    }
