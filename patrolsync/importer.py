"""Load a unit tree, workers, supervisors and households from a YAML file (or households CSV).

YAML shape (every list optional; ids are stable keys, so importing again updates in place)::

    units:
      - {id: jintai, kind: district, name: 金台区, code: "610303", children: [...]}

Unit kinds, from the top: ``province`` 省, ``city`` 市, ``district`` 区, ``street`` 街道,
``community`` 社区, ``grid`` 网格, ``building`` 楼栋 (``schemas.units.KINDS``). The root may be
any of them; a child lies below its parent, levels may be skipped (a province-level city holds
districts), but a building lies in a grid and a grid holds buildings only.
    workers:
      - {id: w-zhang, name: 张伟, phone: "138...", grids: [g-001]}
    supervisors:
      - {id: s-li, name: 李书记, unit: c-xinhua}
      - {id: s-wu, name: 吴主任, unit: c-xinhua, units: [c-qunzhong]}   # sees both
    households:
      - {id: h-0001, grid: g-001, building: b-01, address: ..., head_name: 王大爷,
         tags: [living_alone, elderly], care_tier: high_risk}

A households CSV has the header ``id,grid,building,address,head_name,tags,care_tier`` — or the
same columns named in Chinese (:data:`HEADERS`: 户编号, 网格, 楼栋, 地址, 户主, 标签, 关爱等级) —
with tags separated by ``;`` (or ``；``, ``、``) and the care tier as ``high_risk``/``key``/
``general`` or 高风险/重点/一般. Its encoding is UTF-8, with or without the byte order mark, or
GB18030 (which GBK files, as Excel saves them on a Chinese Windows, are), detected from the
first bytes unless given.

:func:`import_file` streams a file into the database in batches of :data:`BATCH` households,
one transaction each, so memory stays flat and progress shows; a batch already committed stays
(every row is an upsert on its id, a household keeps the ``since_ms`` of its first import), so
a run stopped half-way converges when run again.
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from schemas.units import may_hold
from server import waiting
from server.clock import wall_ms
from server.store import counter, units
from server.tx import transaction

UnitKind = Literal["province", "city", "district", "street", "community", "grid", "building"]
CareTier = Literal["high_risk", "key", "general"]
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+\Z")]


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
    """Their own unit (where the console opens)."""
    units: list[Id] | None = None
    """Further units they supervise: they see the union of the subtrees. Given, it replaces
    the units granted before (``[]`` withdraws them all); absent, those stay as they are."""


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


BATCH = 5_000
"""Households written per transaction by :func:`import_file`."""
HEADERS = {
    "户编号": "id",
    "编号": "id",
    "网格": "grid",
    "网格编号": "grid",
    "楼栋": "building",
    "楼栋编号": "building",
    "地址": "address",
    "住址": "address",
    "户主": "head_name",
    "户主姓名": "head_name",
    "标签": "tags",
    "关爱等级": "care_tier",
    "关爱类别": "care_tier",
}
"""Chinese column names of a households CSV, beside the English ones (``id``, ``grid``, …)."""
COLUMNS = ("id", "grid", "building", "address", "head_name", "tags", "care_tier")
TIERS = {"高风险": "high_risk", "重点": "key", "一般": "general"}
"""Care tiers in Chinese, beside ``high_risk``, ``key`` and ``general``."""
_TAG_SEPARATORS = str.maketrans({"；": ";", "、": ";", "，": ";", ",": ";"})
_SNIFF = 1 << 16


def parse(path: Path, encoding: str | None = None) -> ImportDoc:
    """The whole file as one document (households CSV included: see :func:`import_file` for a
    file too large to hold)."""
    try:
        if path.suffix.lower() == ".csv":
            return ImportDoc(households=list(households_csv(path, encoding)))
        return msgspec.yaml.decode(path.read_bytes(), type=ImportDoc)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ImportError_(f"{path}: {exc}") from None


def detect_encoding(path: Path) -> str:
    """``utf-8-sig`` (a byte order mark), ``utf-8``, or ``gb18030`` (GBK is a subset), judged
    from the first 64 KiB; :class:`ImportError_` when none fits."""
    with path.open("rb") as f:
        head = f.read(_SNIFF)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    for name in ("utf-8", "gb18030"):
        try:
            codecs.getincrementaldecoder(name)().decode(head, final=len(head) < _SNIFF)
            return name
        except UnicodeDecodeError:
            continue
    raise ImportError_(f"{path}: neither UTF-8 nor GB18030 (GBK): pass --encoding")


def _columns(path: Path, header: list[str] | None) -> list[str]:
    names = [HEADERS.get(h.strip(), h.strip()) for h in header or []]
    unknown = [h for h, n in zip(header or [], names, strict=True) if n not in COLUMNS]
    if unknown or "id" not in names or "grid" not in names:
        known = ", ".join([*COLUMNS, *HEADERS])
        what = f"unknown columns {', '.join(unknown)}" if unknown else "no id or grid column"
        raise ImportError_(f"{path}:1: {what}; the columns are {known}")
    return names


def households_csv(
    path: Path, encoding: str | None = None, progress: Callable[[int], None] | None = None
) -> Iterator[HouseholdIn]:
    """The households of a CSV file, one at a time; ``progress`` is told the bytes read."""
    chosen = encoding or detect_encoding(path)
    try:
        codecs.lookup(chosen)
    except LookupError:
        raise ImportError_(f"{path}: unknown encoding {chosen!r}") from None
    with path.open("rb") as raw:
        text = io.TextIOWrapper(raw, encoding=chosen, newline="")
        reader = csv.reader(text)
        try:
            names = _columns(path, next(reader, None))
            for line, cells in enumerate(reader, start=2):
                if progress is not None and line % 256 == 0:
                    progress(raw.tell())
                yield _household(path, line, names, cells)
        except UnicodeDecodeError as exc:
            raise ImportError_(
                f"{path}: not {chosen} at byte {exc.start}: pass --encoding"
            ) from None
        if progress is not None:
            progress(raw.tell())


def _household(path: Path, line: int, names: list[str], cells: list[str]) -> HouseholdIn:
    data: dict[str, Any] = {n: v.strip() for n, v in zip(names, cells, strict=False) if v.strip()}
    data["tags"] = [t for t in data.get("tags", "").translate(_TAG_SEPARATORS).split(";") if t]
    if "care_tier" in data:
        data["care_tier"] = TIERS.get(data["care_tier"], data["care_tier"])
    try:
        return msgspec.convert(data, HouseholdIn)
    except msgspec.ValidationError as exc:
        raise ImportError_(f"{path}:{line}: {exc}") from None


async def import_file(
    engine: AsyncEngine,
    path: Path,
    *,
    encoding: str | None = None,
    batch: int = BATCH,
    progress: Callable[[int], None] | None = None,
    now_ms: int | None = None,
) -> dict[str, int]:
    """Import ``path`` in transactions of ``batch`` households (a YAML file's units, workers
    and supervisors first, in one); ``progress`` is told the bytes of a CSV read so far."""
    now_ms = wall_ms() if now_ms is None else now_ms
    if path.suffix.lower() == ".csv":
        head = ImportDoc()
        rows: Iterator[HouseholdIn] = households_csv(path, encoding, progress)
    else:
        head = parse(path)
        rows = iter(head.households)
        head.households = []
    counts = await transaction(engine, lambda c: load(c, head, now_ms))
    grids: set[str] = set()
    done = 0
    while part := list(islice(rows, batch)):
        await transaction(
            engine, functools.partial(_households, part=part, known=grids, now_ms=now_ms)
        )
        done += len(part)
    return counts | {"households": done}


async def _households(
    conn: AsyncConnection, *, part: list[HouseholdIn], known: set[str], now_ms: int
) -> None:
    """One batch; ``known`` caches the grids found so far."""
    wanted = {h.grid for h in part} - known
    known |= await units.existing_grids(conn, wanted)
    if wanted - known:
        raise ImportError_(f"unknown grids: {', '.join(sorted(wanted - known))}")
    await _write_households(conn, part, now_ms)


async def _write_households(conn: AsyncConnection, part: list[HouseholdIn], now_ms: int) -> None:
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
        for i, h in enumerate(part, start=1)
    ]
    await units.upsert_households(conn, rows)
    # Waiting pulls of these grids are woken at commit (on PostgreSQL; on SQLite the devices
    # see the households when their wait ends).
    await waiting.announce(conn, txid, {f"g:{h.grid}" for h in part})


def _flatten(
    nodes: list[UnitIn], parent: dict[str, str] | None, out: list[dict[str, str | None]]
) -> None:
    for node in nodes:
        if parent is not None and not may_hold(parent["kind"], node.kind):
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
    stored = await units.units_by_id(conn, [str(r["id"]) for r in unit_rows])
    moves = [
        (stored[str(r["id"])].path, str(r["path"]))
        for r in unit_rows
        if str(r["id"]) in stored and stored[str(r["id"])].path != r["path"]
    ]
    if moves:
        await units.move_subtrees(conn, moves)
    await units.upsert_units(conn, unit_rows)
    grids = {r["id"] for r in unit_rows if r["kind"] == "grid"}
    referenced = {g for w in doc.workers for g in w.grids} | {h.grid for h in doc.households}
    missing = referenced - grids - await units.existing_grids(conn, referenced - grids)
    if missing:
        raise ImportError_(f"unknown grids: {', '.join(sorted(missing))}")
    sup_units = {u for s in doc.supervisors for u in [s.unit, *(s.units or [])]}
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
    for s in doc.supervisors:
        if s.units is not None:
            extra = set(s.units) - {s.unit}
            await units.set_granted_units(conn, s.id, extra, now_ms)
    if doc.households:
        await _write_households(conn, doc.households, now_ms)
    return {
        "units": len(unit_rows),
        "workers": len(doc.workers),
        "supervisors": len(doc.supervisors),
        "households": len(doc.households),
    }
