"""What a supervisor may act on: only what lies wholly inside the subtree they supervise.

* A unit is inside iff its path is the path of a unit the supervisor supervises or below it,
  compared by whole path segments (``/d1/s1/`` holds ``/d1/s1/c1/`` but not ``/d1/s10/``). A
  supervisor of several units (their own and those granted, ``supervisor_unit``) sees the union
  of the subtrees, and nothing between them.
* A worker is inside iff they have at least one grid and every one of their grids is inside; a
  device, iff its worker is. A worker with one grid inside and one outside is outside: nobody
  below the unit that holds all their grids may issue them a code or revoke their devices.
* An alert is readable where its unit (the subject's grid) is inside; it may be acknowledged,
  resolved or commented only if its subject is inside too (for a worker or device subject:
  every grid of the worker; a worker without a grid leaves the alert to its unit).

Refusals: ``not_found`` (404) for what the supervisor cannot see at all (a unit, alert or webhook
outside), ``forbidden`` (403) for what they see but may not act on.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncConnection

from server.errors import ApiError, Code
from server.store import auth as auth_store
from server.store import units
from server.store.rows import AlertRow, Roots, root_paths

if TYPE_CHECKING:
    from server.auth import Principal


def _segments(path: str) -> str:
    return path if path.endswith("/") else path + "/"


def within(path: str, root: Roots) -> bool:
    """True iff the unit path ``path`` is ``root`` or lies below it (whole segments); with
    several roots (a supervisor of several units), below one of them."""
    return any(_segments(path).startswith(_segments(r)) for r in root_paths(root))


def top_roots(paths: Iterable[str]) -> tuple[str, ...]:
    """``paths`` without those inside another (each subtree once), in their first order."""
    unique = list(dict.fromkeys(_segments(p) for p in paths))
    return tuple(p for p in unique if not any(o != p and p.startswith(o) for o in unique))


async def worker_inside(
    conn: AsyncConnection, who: Principal, worker_id: str, *, gridless: bool = False
) -> bool:
    """Whether every grid of the worker is in ``who``'s subtree; a worker without a grid is
    inside only if ``gridless``."""
    grids = await units.worker_grids(conn, worker_id)
    return set(grids) <= set(who.grids) if grids else gridless


async def require_worker(conn: AsyncConnection, who: Principal | None, worker_id: str) -> None:
    """404 for an unknown worker; 403 unless every grid of the worker is in the caller's
    subtree. ``who`` None is the operator (the command line): everything is inside."""
    if await units.get_worker(conn, worker_id) is None:
        raise ApiError(Code.NOT_FOUND, f"no worker {worker_id!r}")
    if who is None:
        return
    who.require_supervisor()
    if not await worker_inside(conn, who, worker_id):
        raise ApiError(
            Code.FORBIDDEN,
            f"worker {worker_id!r} has grids outside your units: a supervisor of a unit holding"
            " all of them must act",
        )


async def require_alert_subject(conn: AsyncConnection, who: Principal, alert: AlertRow) -> None:
    """403 unless the subject of a visible alert lies wholly in the caller's subtree."""
    kind, subject = alert.subject_kind, alert.subject_id
    worker_id: str | None = None
    if kind == "worker":
        worker_id = subject
    elif kind == "device":
        device = await auth_store.get_device(conn, subject)
        worker_id = device.worker_id if device is not None else None
    else:
        return  # a household or note: its grid is the alert's unit, inside
    if worker_id is None or not await worker_inside(conn, who, worker_id, gridless=True):
        raise ApiError(
            Code.FORBIDDEN,
            f"alert {alert.id} is about {kind} {subject!r}, who also works outside your"
            " units: a supervisor of a unit holding all their grids must act",
        )
