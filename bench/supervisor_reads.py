"""The supervisors' reads on a Jintai-sized district (753 workers, ~15,000 households, a week
of patrols) on PostgreSQL: server time of each service function the console's pages call.

A measurement, not a test. The district comes from ``client.simulate`` (imported as the CLI
does); the week's patrols are written straight into ``checkin`` (4 per worker, 2-5 h, one device
each, a few overlapping) — the reads do not care how rows arrived — then one sweep judges it.
The database (``--db-name``) is dropped and created again, and dropped at the end.

    .venv/bin/python -P bench/supervisor_reads.py --pg-admin postgresql://postgres@127.0.0.1:5432/postgres

Last line: JSON, per read ``{"p50_ms", "max_ms", "rows"}`` over ``--repeat`` runs (``rows``:
how many things the reply lists).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import asyncpg
import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from client import simulate
from patrolsync import importer
from rules.periods import week_of
from server import alerting, compliance, households, patrols, people
from server.auth import subtree_unit
from server.db import make_engine
from server.migrate import upgrade
from server.settings import Settings
from server.store.tables import checkin_t, device_t
from server.tx import read, transaction
from sync.durations import HOUR_MS
from worker import sweep


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _patrols(doc: dict[str, Any], week_start: int, now: int, seed: int) -> tuple[list, list]:
    rng = random.Random(seed)
    devices, rows = [], []
    txid = 1
    for w in doc["workers"]:
        device = f"dev-{w['id']}"
        devices.append(
            {
                "id": device,
                "worker_id": w["id"],
                "platform": "android",
                "created_ms": week_start,
                "last_seen_ms": now - rng.randrange(0, 6) * HOUR_MS,
                "watermark_ms": now,
            }
        )
        for day in rng.sample(range(0, 5), 4):
            start = week_start + day * 24 * HOUR_MS + rng.randrange(7, 12) * HOUR_MS
            duration = rng.randrange(2 * 60, 5 * 60) * 60_000
            pid = uuid.uuid4()
            txid += 1
            rows.append(
                {
                    "id": pid,
                    "worker_id": w["id"],
                    "device_id": device,
                    "grid_id": w["grids"][0],
                    "started_ms": start,
                    "ended_ms": start + duration,
                    "device_started_ms": start,
                    "device_ended_ms": start + duration,
                    "duration_ms": duration,
                    "duration_source": "elapsed",
                    "visit_count": 2,
                    "households": [],
                    "flags": [],
                    "root_id": pid,
                    "push_id": uuid.uuid4(),
                    "received_ms": start + duration,
                    "txid": txid,
                    "seq": 1,
                }
            )
    return devices, rows


class Built(NamedTuple):
    doc: dict[str, Any]
    """The import document (``client.simulate.district`` of Jintai's shape)."""
    patrols: int
    sweep_s: float


async def build(engine: AsyncEngine, *, seed: int, now: int) -> Built:
    """Jintai's district in an empty database: imported 30 days before this week (Beijing
    time), this week's patrols written into ``checkin`` (:func:`_patrols`), then one sweep.
    Shared by ``bench/console.py``."""
    wk = week_of(now, "Asia/Shanghai")
    doc = simulate.district(simulate.JINTAI, seed=seed)
    loaded = msgspec.convert(doc, importer.ImportDoc)
    await transaction(engine, lambda c: importer.load(c, loaded, wk.start_ms - 30 * 86400000))
    devices, rows = _patrols(doc, wk.start_ms, now, seed)

    async def insert(conn: Any) -> None:
        await conn.execute(sa.insert(device_t), devices)
        for i in range(0, len(rows), 1000):
            await conn.execute(sa.insert(checkin_t), rows[i : i + 1000])

    await transaction(engine, insert)
    await transaction(engine, lambda c: c.execute(sa.text("ANALYZE")))
    t0 = time.perf_counter()
    await sweep.everything(engine, now)
    return Built(doc, len(rows), time.perf_counter() - t0)


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    url = args.pg_admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    url += f"/{args.db_name}"
    await _admin(args.pg_admin, f'DROP DATABASE IF EXISTS "{args.db_name}" WITH (FORCE)')
    await _admin(args.pg_admin, f'CREATE DATABASE "{args.db_name}"')
    settings = Settings(database_url=url, log_level="WARNING")
    await asyncio.to_thread(upgrade, settings)
    engine = make_engine(settings)
    try:
        now = int(time.time() * 1000)
        wk = week_of(now, "Asia/Shanghai")
        doc, patrol_count, sweep_s = await build(engine, seed=args.seed, now=now)
        root = "/" + doc["units"][0]["id"] + "/"
        district = doc["units"][0]["id"]
        community = next(u for u in _walk(doc["units"]) if u["kind"] == "community")["id"]
        worker = doc["workers"][0]["id"]
        label = wk.label

        async def report(c: Any, unit_id: str) -> Any:
            return await compliance.report(c, await subtree_unit(c, root, unit_id), label, now)

        reads: dict[str, Callable[[Any], Awaitable[Any]]] = {
            "unit_workers(district)": lambda c: people.unit_workers(c, root, district, now_ms=now),
            "unit_workers(community)": lambda c: people.unit_workers(
                c, root, community, now_ms=now
            ),
            "worker": lambda c: people.worker(c, root, worker, now_ms=now),
            "worker_patrols": lambda c: patrols.worker_patrols(c, root, worker, now_ms=now),
            "unit_patrols(community)": lambda c: patrols.unit_patrols(
                c, root, community, now_ms=now
            ),
            "unit_patrols(district)": lambda c: patrols.unit_patrols(c, root, district, now_ms=now),
            "households_overdue(community)": lambda c: households.unit_households(
                c, root, community, now_ms=now, overdue_only=True
            ),
            "households_overdue(district, 1000)": lambda c: households.unit_households(
                c, root, district, now_ms=now, overdue_only=True
            ),
            "alerts_page(100, named)": lambda c: alerting.page(
                c, root, status=[], rule=[], period=None, cursor=None, limit=100
            ),
            "compliance(district, running)": lambda c: report(c, district),
        }
        figures: dict[str, Any] = {}
        for name, fn in reads.items():
            times = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                got = await read(engine, fn)
                times.append((time.perf_counter() - t) * 1000)
            figures[name] = {
                "p50_ms": round(statistics.median(times), 1),
                "max_ms": round(max(times), 1),
                "rows": _size(got),
            }
        counts = {
            "workers": len(doc["workers"]),
            "households": len(doc["households"]),
            "patrols": patrol_count,
            "sweep_s": round(sweep_s, 1),
        }
        return {**counts, **figures}
    finally:
        await engine.dispose()
        if not args.keep:
            await _admin(args.pg_admin, f'DROP DATABASE IF EXISTS "{args.db_name}" WITH (FORCE)')


def _size(reply: Any) -> int:
    """How many things a reply lists (its first list field), 1 for a single thing."""
    for field in ("workers", "households", "alerts", "rows", "patrols"):
        if isinstance(getattr(reply, field, None), list):
            return len(getattr(reply, field))
    return 1


def _walk(units: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for u in units:
        out.append(u)
        out.extend(_walk(u.get("children", [])))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--db-name", default="patrolsync_bench_reads")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args)), ensure_ascii=False))


if __name__ == "__main__":
    main()
