"""设置 — the quota and alert settings of the units a supervisor may set: their own unit and
every unit below it (as ``PUT /v1/units/{id}/settings`` allows), shown in hours, days and
counts, each with its effective value and where that value comes from.

``GET /settings`` lists the units; ``GET /settings/{unit_id}`` shows one unit's form (404 page
outside the subtree); ``POST /settings/{unit_id}`` (CSRF-checked by the router) replaces the
unit's own overrides through ``server.unit_settings.replace``, the API's own service: an empty
field inherits. A field that cannot be read answers the form again (422) with a message beside
it, nothing saved.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, NamedTuple

from litestar import Request, get, post
from litestar.params import QueryParameter
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncConnection

from server import unit_settings
from server.auth import subtree_unit
from server.console import settings_form as sf
from server.console.strings import ZH
from server.console.web import Seen, Svc, Viewer, page
from server.errors import ApiError, Code
from server.params import UnitId
from server.state import Services
from server.store import quota as quota_store
from server.store import unit_tree, units
from server.tx import read, transaction


class Row(NamedTuple):
    """One setting on the form."""

    key: str
    kind: str
    label: str
    value: str
    """What the field holds: the unit's own override (shown units), the typed text after an
    error, else empty."""
    effective: str
    source: str
    inherited: str
    """What applies when the field is left empty (for the placeholder)."""
    inherited_from: str
    error: str | None


def _source(unit_id: str, by: Mapping[str, str], key: str, names: Mapping[str, str]) -> str:
    holder = by.get(key)
    if holder is None:
        return ZH["settings.source_default"]
    if holder == unit_id:
        return ZH["settings.source_own"]
    return ZH["settings.source_inherited"].format(unit=names.get(holder, holder))


async def _context(
    conn: AsyncConnection,
    unit: units.UnitRow,
    typed: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    overrides = await quota_store.unit_overrides(conn)
    mine = unit_settings.of(unit, overrides)
    above = {k: v for k, v in overrides.items() if k != unit.id}
    parent = unit_settings.of(unit, above)
    by = unit_settings.sources(unit, overrides)
    by_above = unit_settings.sources(unit, above)
    path = [u for u in unit.path.split("/") if u]
    names = {k: v.name for k, v in (await units.units_by_id(conn, path)).items()}
    groups = []
    for group, fields in sf.GROUPS:
        rows = []
        for f in fields:
            own = mine.own.get(f.key)
            if typed is not None:
                value = typed.get(f.key, "").strip()
            else:
                value = sf.shown(f, own) if own is not None else ""
            inherited = sf.text(f, parent.effective[f.key])
            rows.append(
                Row(
                    key=f.key,
                    kind=f.kind,
                    label=ZH[f"settings.{f.key}"],
                    value=value,
                    effective=sf.text(f, mine.effective[f.key]),
                    source=_source(unit.id, by, f.key, names),
                    inherited=inherited,
                    inherited_from=_source(unit.id, by_above, f.key, names),
                    error=(errors or {}).get(f.key),
                )
            )
        groups.append((group, rows))
    return {"unit": unit, "groups": groups, "error_count": len(errors or {})}


@get("/settings", include_in_schema=False)
async def settings_units(svc: Svc, viewer: Seen) -> Template:
    async def work(conn: AsyncConnection) -> dict[str, Any]:
        own = await subtree_unit(conn, viewer.roots, viewer.unit_id)
        found = await unit_tree.subtree_units(conn, own.path)
        overrides = await quota_store.unit_overrides(conn)
        depth = own.path.strip("/").count("/")
        rows = [
            (u, u.path.strip("/").count("/") - depth, len(overrides.get(u.id, {})))
            for u in found
            if u.kind != "building"
        ]
        return {"rows": rows}

    context = await read(svc.engine, work)
    return page("settings_units.html", viewer=viewer, active="settings", **context)


async def _form(
    svc: Services,
    viewer: Viewer,
    unit_id: str,
    *,
    saved: bool = False,
    typed: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
) -> Template:
    async def work(conn: AsyncConnection) -> dict[str, Any]:
        unit = await subtree_unit(conn, viewer.roots, unit_id)
        return await _context(conn, unit, typed, errors)

    context = await read(svc.engine, work)
    status = 422 if errors else 200
    return page(
        "settings.html",
        viewer=viewer,
        active="settings",
        status_code=status,
        saved=saved,
        **context,
    )


@get("/settings/{unit_id:str}", include_in_schema=False)
async def settings_form(
    svc: Svc,
    viewer: Seen,
    unit_id: UnitId,
    saved: Annotated[bool, QueryParameter()] = False,
) -> Template:
    return await _form(svc, viewer, unit_id, saved=saved)


@post("/settings/{unit_id:str}", include_in_schema=False, status_code=303)
async def settings_save(
    request: Request[Any, Any, Any], svc: Svc, viewer: Seen, unit_id: UnitId
) -> Template | Redirect:
    form = await request.form()
    typed = {k: str(form.get(k) or "")[:64] for k in sf.FIELDS}
    values, errors = sf.parse(typed)
    if not errors:

        async def work(conn: AsyncConnection) -> None:
            unit = await subtree_unit(conn, viewer.roots, unit_id)
            await unit_settings.replace(conn, unit, values, viewer.supervisor_id, svc.clock())

        try:
            await transaction(svc.engine, work)
        except ApiError as exc:
            key = str((exc.details or {}).get("key", ""))
            if exc.code is not Code.INVALID_REQUEST or key not in sf.FIELDS:
                raise
            errors = {key: ZH["settings.err.rejected"]}
    if errors:
        return await _form(svc, viewer, unit_id, typed=typed, errors=errors)
    return Redirect(f"/settings/{unit_id}?saved=true", status_code=303)


HANDLERS = (settings_units, settings_form, settings_save)
