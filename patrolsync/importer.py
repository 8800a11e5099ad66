"""Load a unit tree, workers, supervisors and households from a YAML file (or households CSV).

YAML shape (every list optional; ids are stable keys, so importing again updates in place)::

    units:
      - {id: jintai, kind: district, name: 金台区, code: "610303", children: [...]}
    workers:
      - {id: w-zhang, name: 张伟, phone: "138...", grids: [g-001]}
    supervisors:
      - {id: s-li, name: 李书记, unit: c-xinhua}
    households:
      - {id: h-0001, grid: g-001, building: b-01, address: ..., head_name: 王大爷,
         tags: [living_alone, elderly], care_tier: high_risk}

A households CSV has the header ``id,grid,building,address,head_name,tags,care_tier`` with tags
separated by ``;``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from server.clock import wall_ms
from server.store import counter, units

UnitKind = Literal["district", "street", "community", "grid", "building"]
CareTier = Literal["high_risk", "key", "general"]
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+\Z")]
_CHILD = {"district": "street", "street": "community", "community": "grid", "grid": "building"}


class UnitIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: Id
    kind: UnitKind
    name: str
    code: str = ""
    tz: str = "Asia/Shanghai"
    children: list[UnitIn] = []


class WorkerIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: Id
    name: str
    phone: str = ""
    active: bool = True
    grids: list[Id] = []


class SupervisorIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: Id
    name: str
    unit: Id


class HouseholdIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: Id
    grid: Id
    building: Id | None = None
    address: str = ""
    head_name: str = ""
    tags: list[str] = []
    care_tier: CareTier = "general"


class ImportDoc(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    units: list[UnitIn] = []
    workers: list[WorkerIn] = []
    supervisors: list[SupervisorIn] = []
    households: list[HouseholdIn] = []


class ImportError_(ValueError):
    """The file cannot be imported; the message says where."""


def parse(path: Path) -> ImportDoc:
    try:
        if path.suffix.lower() == ".csv":
            return ImportDoc(households=list(_households_csv(path)))
        return msgspec.yaml.decode(path.read_bytes(), type=ImportDoc)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ImportError_(f"{path}: {exc}") from None


def _households_csv(path: Path) -> Iterator[HouseholdIn]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            data = {k: v for k, v in row.items() if v not in (None, "")}
            data["tags"] = [t for t in data.get("tags", "").split(";") if t]
            try:
                yield msgspec.convert(data, HouseholdIn)
            except msgspec.ValidationError as exc:
                raise ImportError_(f"{path}:{line}: {exc}") from None


def _flatten(
    nodes: list[UnitIn], parent: dict[str, str] | None, out: list[dict[str, str | None]]
) -> None:
    for node in nodes:
        if parent is not None and _CHILD.get(parent["kind"]) != node.kind:
            raise ImportError_(f"unit {node.id}: a {parent['kind']} cannot hold a {node.kind}")
        path = (parent["path"] if parent else "/") + node.id + "/"
        row = {
            "id": node.id,
            "parent_id": parent["id"] if parent else None,
            "kind": node.kind,
            "name": node.name,
            "code": node.code,
            "path": path,
            "tz": node.tz,
        }
        out.append(row)
        _flatten(node.children, {"id": node.id, "kind": node.kind, "path": path}, out)


async def load(conn: AsyncConnection, doc: ImportDoc, now_ms: int | None = None) -> dict[str, int]:
    """Upsert everything in ``doc``; references must resolve (in the file or the database).

    A worker imported for the first time is judged from the week of ``now_ms`` on; a household
    imported for the first time comes under care at ``now_ms`` (its visit cycle
    counts from then until its first visit).
    """
    now_ms = wall_ms() if now_ms is None else now_ms
    unit_rows: list[dict[str, str | None]] = []
    _flatten(doc.units, None, unit_rows)
    await units.upsert_units(conn, unit_rows)
    grids = {r["id"] for r in unit_rows if r["kind"] == "grid"}
    referenced = {g for w in doc.workers for g in w.grids} | {h.grid for h in doc.households}
    missing = referenced - grids - await units.existing_grids(conn, referenced - grids)
    if missing:
        raise ImportError_(f"unknown grids: {', '.join(sorted(missing))}")
    sup_units = {s.unit for s in doc.supervisors}
    known_units = {str(r["id"]) for r in unit_rows} | set(await units.units_by_id(conn, sup_units))
    if sup_units - known_units:
        raise ImportError_(f"unknown units: {', '.join(sorted(sup_units - known_units))}")
    await units.upsert_workers(
        conn,
        [
            {"id": w.id, "name": w.name, "phone": w.phone, "active": w.active, "since_ms": now_ms}
            for w in doc.workers
        ],
    )
    for w in doc.workers:
        await units.set_worker_grids(conn, w.id, w.grids)
    await units.upsert_supervisors(
        conn, [{"id": s.id, "name": s.name, "unit_id": s.unit} for s in doc.supervisors]
    )
    if doc.households:
        txid = await counter.stamp(conn)
        rows = [
            {
                "id": h.id,
                "grid_id": h.grid,
                "building_id": h.building,
                "address": h.address,
                "head_name": h.head_name,
                "tags": h.tags,
                "care_tier": h.care_tier,
                "since_ms": now_ms,
                "txid": txid,
                "seq": i,
            }
            for i, h in enumerate(doc.households, start=1)
        ]
        await units.upsert_households(conn, rows)
    return {
        "units": len(unit_rows),
        "workers": len(doc.workers),
        "supervisors": len(doc.supervisors),
        "households": len(doc.households),
    }
