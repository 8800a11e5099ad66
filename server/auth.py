"""Who is calling: bearer token → Principal, with the scope the principal may read and write."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncConnection

from server.errors import ApiError, Code
from server.scope import top_roots, within
from server.store import auth as auth_store
from server.store import units
from server.store.pull import Scope
from server.store.rows import Roots
from sync.cursor import scope_hash

Role = Literal["device", "supervisor"]


@dataclass(frozen=True, slots=True)
class Principal:
    role: Role
    grids: tuple[str, ...]
    """Device: the worker's grids. Supervisor: every grid in the supervised subtree."""
    worker_id: str | None = None
    device_id: str | None = None
    supervisor_id: str | None = None
    unit_path: str | None = None
    """Supervisor: the path of their own unit (where the console opens)."""
    unit_paths: tuple[str, ...] = ()
    """Supervisor: the paths of the subtrees they see, each once: the one holding their own
    unit first, then those of the units granted them that lie outside it."""
    tz: str = "UTC"
    """Device: the time zone of the worker's first grid (their weeks are counted in it)."""

    @property
    def scope(self) -> Scope:
        return Scope(grids=self.grids, worker_id=self.worker_id)

    @property
    def scope_hash(self) -> str:
        who = f"w:{self.worker_id}" if self.role == "device" else f"s:{self.supervisor_id}"
        return scope_hash([who, *(f"g:{g}" for g in self.grids)])

    def require_device(self) -> tuple[str, str]:
        if self.role != "device" or self.worker_id is None or self.device_id is None:
            raise ApiError(Code.FORBIDDEN, "this endpoint is for enrolled devices")
        return self.worker_id, self.device_id

    def require_supervisor(self) -> tuple[str, ...]:
        """The paths of the subtrees the supervisor sees (403 for anyone else)."""
        if self.role != "supervisor" or not self.unit_paths:
            raise ApiError(Code.FORBIDDEN, "this endpoint is for supervisors")
        return self.unit_paths


def bearer(header: str | None) -> str:
    if not header or not header.lower().startswith("bearer "):
        raise ApiError(
            Code.UNAUTHORIZED,
            "missing bearer token",
            headers={"WWW-Authenticate": 'Bearer realm="patrolsync"'},
        )
    return header[7:].strip()


async def authenticate(conn: AsyncConnection, header: str | None) -> Principal:
    token = bearer(header)
    row = await auth_store.lookup_token(conn, token)
    if row is None:
        raise ApiError(Code.UNAUTHORIZED, "unknown token")
    if row.revoked_ms is not None:
        raise ApiError(
            Code.TOKEN_REVOKED,
            "this token was revoked; enrol again with a new code and a new device id",
        )
    if row.role == "device":
        # (An active worker is a joined one: its id is there.)
        if not row.worker_active or row.worker_id is None:
            raise ApiError(Code.TOKEN_REVOKED, "the worker of this token is not active")
        zones = row.zones
        return Principal(
            role="device",
            grids=tuple(grid for grid, _ in zones),
            worker_id=row.worker_id,
            device_id=row.device_id,
            tz=zones[0][1] if zones else "UTC",
        )
    if row.supervisor_id is None:
        raise ApiError(Code.TOKEN_REVOKED, "the supervisor or unit of this token no longer exists")
    return await supervisor_principal(conn, row.supervisor_id)


async def supervisor_principal(conn: AsyncConnection, supervisor_id: str) -> Principal:
    """The principal of a supervisor (bearer token or console session); 401
    ``token_revoked`` if the supervisor or their own unit no longer exists. Their scope is
    the union of the subtrees of every unit they supervise."""
    supervisor = await units.get_supervisor(conn, supervisor_id)
    supervised = await units.supervised_units(conn, supervisor) if supervisor else []
    if supervisor is None or not supervised or supervised[0].id != supervisor.unit_id:
        raise ApiError(Code.TOKEN_REVOKED, "the supervisor or unit of this token no longer exists")
    roots = top_roots(u.path for u in supervised)
    # The subtree holding their own unit first: the default of every "own unit" (a granted
    # ancestor of it, when there is one).
    roots = tuple(sorted(roots, key=lambda r: not within(supervised[0].path, r)))
    grids = await units.subtree_grids(conn, roots)
    return Principal(
        role="supervisor",
        grids=tuple(grids),
        supervisor_id=supervisor.id,
        unit_path=supervised[0].path,
        unit_paths=roots,
    )


async def subtree_unit(conn: AsyncConnection, path: Roots, unit_id: str) -> units.UnitRow:
    """The unit ``unit_id`` if it lies in the subtree ``path`` (a supervisor's; or one of
    several), else 404: a unit outside is indistinguishable from one that does not exist."""
    found = await units.get_unit(conn, unit_id)
    if found is None or not within(found.path, path):
        raise ApiError(Code.NOT_FOUND, f"no unit {unit_id!r} in your subtree")
    return found
