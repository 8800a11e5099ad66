"""Sync throughput benchmark: push and pull through the real HTTP server, against raw PostgreSQL.

A measurement, never a test: it fails only when the server answers wrongly (an item not
"applied", a pull missing or repeating a record), never on a missed target.

1. Setup (untimed): a fresh database, migrations, a generated district (8 grids, one worker
   per grid, imported from a temporary YAML file), one enrolled device per worker, and the
   server started as a subprocess (``python -m patrolsync.cli serve``).
2. Push: every device posts pre-built MessagePack batches of check-ins at once;
   ``push_rps`` = records / wall time. Raw references on the same rows, read back from
   ``checkin``: one asyncpg connection per device running ``executemany`` of
   ``INSERT ... ON CONFLICT (id) DO NOTHING`` per batch into a copy of the table
   (``raw_push_rps``), and ``COPY`` into another copy (``copy_rps``, the physical limit).
3. Pull: every device pulls its whole scope from no cursor, following ``cursor`` while
   ``more``; ``pull_rps`` = records / wall time. Raw reference: one asyncpg connection per
   worker doing the same keyset scan of ``checkin`` (``raw_pull_rps``).

The ratios ``push_rps / raw_push_rps`` and ``pull_rps / raw_pull_rps`` are the figures of
merit (targets: push >= 0.8, pull >= 0.9, medians of 3 runs). The last line of output is one JSON
object.

Usage: ``.venv/bin/python bench/sync.py [--quick] [--records N] ...`` (see ``--help``).
"""

# ruff: noqa: E402 -- the project imports must follow the sys.path fix below.

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

# Run as ``python bench/sync.py``, this file's folder heads sys.path and the file's name would
# shadow the project's ``sync`` package (which the server imports): drop that entry first.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))  # for bench.common
ROOT = _HERE.parent

import asyncpg
import httpx
import msgspec
import uuid_utils
import yaml
from sqlalchemy.ext.asyncio import AsyncConnection

from bench.common import (
    CpuProbe,
    database_urls,
    drop_database,
    log,
    minus,
    parent_of,
    recreate_database,
)
from patrolsync import importer
from schemas.sync import EnrolmentCodeResponse
from server import enrolment
from server.clock import wall_ms
from server.db import make_engine
from server.migrate import upgrade
from server.settings import Settings
from server.tx import transaction

T = TypeVar("T")

MINUTE = 60_000
HOUR = 60 * MINUTE
PROTOCOL = {"Patrolsync-Protocol": "1"}
MSGPACK = "application/msgpack"
TARGETS = {"push_ratio": 0.8, "pull_ratio": 0.9}
"""What each ratio should reach: the push above 0.8 of the hand-written ``executemany`` (aiming
above 1.0), the pull above 0.9 of the bare keyset scan."""
DEFAULT_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
RAW_TABLE = "bench_raw_checkin"
COPY_TABLE = "bench_copy_checkin"
RAW_PULL_SQL = (
    "SELECT * FROM checkin WHERE worker_id = $1 AND (txid, seq) > ($2, $3)"
    " ORDER BY txid, seq LIMIT $4"
)


class BenchError(RuntimeError):
    """The run cannot go on: setup failed or the server answered wrongly."""


# ---------------------------------------------------------------- options


@dataclass(frozen=True, slots=True)
class Options:
    records: int
    batch: int
    devices: int
    server_workers: int
    quick: bool
    keep: bool
    json_out: Path | None
    pg_admin: str
    db_name: str
    pull_limit: int
    warmup_batches: int
    seed: int
    profile: Path | None
    repeat: int


def parse_args(argv: Sequence[str] | None = None) -> Options:
    p = argparse.ArgumentParser(
        prog="bench/sync.py",
        description="Push/pull throughput of patrolsync over HTTP vs raw PostgreSQL.",
    )
    p.add_argument("--quick", action="store_true", help="10,000 records (default 50,000)")
    p.add_argument("--records", type=int, default=None, help="check-ins pushed in the timed run")
    p.add_argument("--batch", type=int, default=500, help="check-ins per push (default 500)")
    p.add_argument("--devices", type=int, default=8, help="concurrent devices (default 8)")
    p.add_argument("--server-workers", type=int, default=1, help="uvicorn worker processes")
    p.add_argument("--keep", action="store_true", help="keep the database afterwards")
    p.add_argument("--json-out", type=Path, default=None, help="also write the JSON here")
    p.add_argument("--pg-admin", default=DEFAULT_ADMIN, help=f"admin URL (default {DEFAULT_ADMIN})")
    p.add_argument("--db-name", default="patrolsync_bench", help="database to (re)create")
    p.add_argument("--pull-limit", type=int, default=1000, help="changes per pull page")
    p.add_argument(
        "--warmup-batches",
        type=int,
        default=1,
        help="untimed batches each device pushes first (default 1; they are pulled too)",
    )
    p.add_argument("--seed", type=int, default=1, help="seed of the generated check-ins")
    p.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="whole runs (fresh database each); the summary is the median run (default 3)",
    )
    p.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="run the server under cProfile and write its stats here (implies 1 worker)",
    )
    a = p.parse_args(argv)
    records = a.records if a.records is not None else (10_000 if a.quick else 50_000)
    for name, value in [
        ("--records", records),
        ("--batch", a.batch),
        ("--devices", a.devices),
        ("--server-workers", a.server_workers),
        ("--pull-limit", a.pull_limit),
        ("--repeat", a.repeat),
    ]:
        if value < 1:
            p.error(f"{name} must be >= 1")
    if a.warmup_batches < 0:
        p.error("--warmup-batches must be >= 0")
    if a.devices > 64:
        p.error("--devices must be <= 64 (one database connection each)")
    return Options(
        records=records,
        batch=a.batch,
        devices=a.devices,
        server_workers=1 if a.profile else a.server_workers,
        quick=a.quick,
        keep=a.keep,
        json_out=a.json_out,
        pg_admin=a.pg_admin,
        db_name=a.db_name,
        pull_limit=a.pull_limit,
        warmup_batches=a.warmup_batches,
        seed=a.seed,
        profile=a.profile,
        repeat=a.repeat,
    )


@dataclass(slots=True)
class Phase:
    name: str
    label: str
    records: int
    seconds: float
    cpu_s: dict[str, float | None] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


async def timed(
    probe: CpuProbe, name: str, label: str, records: int, run: Callable[[], Awaitable[Any]]
) -> Phase:
    log(f"{label}: {records:,} records ...")
    before = probe.sample()
    start = time.perf_counter()
    await run()
    seconds = time.perf_counter() - start
    after = probe.sample()
    cpu = {k: minus(after[k], v) for k, v in before.items()}
    phase = Phase(name, label, records, seconds, cpu)
    log(f"{label}: {seconds:.2f} s, {phase.rps:,.0f} records/s, cpu {cpu}")
    return phase


# ---------------------------------------------------------------- the generated district


@dataclass(slots=True)
class Device:
    worker_id: str
    grid_id: str
    device_id: str
    token: str = ""
    warmup: list[bytes] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    """Every check-in id this device pushes (warm-up included): what its pull must return."""


def district_yaml(devices: int) -> dict[str, Any]:
    """One district, street and community; ``devices`` grids, each patrolled by one worker."""
    grids: list[dict[str, Any]] = [
        {"id": f"bench-g{i:02d}", "kind": "grid", "name": f"Bench grid {i}"}
        for i in range(1, devices + 1)
    ]
    community = {"id": "bench-c1", "kind": "community", "name": "Community", "children": grids}
    street = {"id": "bench-s1", "kind": "street", "name": "Street", "children": [community]}
    district = {"id": "bench-d1", "kind": "district", "name": "District", "children": [street]}
    workers = [
        {"id": f"bench-w{i:02d}", "name": f"Bench worker {i}", "grids": [f"bench-g{i:02d}"]}
        for i in range(1, devices + 1)
    ]
    return {"units": [district], "workers": workers}


def parse_district(devices: int) -> importer.ImportDoc:
    """The generated district, written to a temporary YAML file and read by the importer."""
    with tempfile.TemporaryDirectory(prefix="patrolsync-bench-") as tmp:
        path = Path(tmp) / "district.yaml"
        path.write_text(yaml.safe_dump(district_yaml(devices), allow_unicode=True))
        return importer.parse(path)


def new_id() -> str:
    return str(uuid_utils.uuid7())


def checkin_item(device: Device, rng: random.Random, now_ms: int) -> dict[str, Any]:
    """A finished ~4 h patrol that ended 1-72 h ago, timed by the monotonic clock too."""
    span = 4 * HOUR + rng.randrange(-20 * MINUTE, 20 * MINUTE)
    ended = now_ms - rng.randrange(HOUR, 72 * HOUR)
    item_id = new_id()
    device.ids.add(item_id)
    return {
        "op": "checkin",
        "id": item_id,
        "grid_id": device.grid_id,
        "started_ms": ended - span,
        "ended_ms": ended,
        "elapsed_ms": span - rng.randrange(0, 3_000),
        "boot_id": f"boot-{device.device_id}",
        "visit_count": rng.randrange(0, 13),
        "households": [],
    }


def push_body(device: Device, rng: random.Random, n: int) -> bytes:
    now = wall_ms()
    items = [checkin_item(device, rng, now) for _ in range(n)]
    return msgspec.msgpack.encode({"push_id": new_id(), "device_time_ms": now, "items": items})


def build_bodies(devices: list[Device], opts: Options) -> None:
    """Cut the records into batches of ``opts.batch`` (the last may be short), deal them to the
    devices in turn, and encode every request body (warm-up batches first)."""
    rng = random.Random(opts.seed)
    for device in devices:
        device.warmup = [push_body(device, rng, opts.batch) for _ in range(opts.warmup_batches)]
    sizes = [min(opts.batch, opts.records - start) for start in range(0, opts.records, opts.batch)]
    for i, n in enumerate(sizes):
        device = devices[i % len(devices)]
        device.bodies.append(push_body(device, rng, n))


# ---------------------------------------------------------------- setup


async def import_district(url: str, doc: importer.ImportDoc) -> None:
    engine = make_engine(Settings(database_url=url))
    try:
        await transaction(engine, lambda conn: importer.load(conn, doc))
    finally:
        await engine.dispose()


def issue_code(
    worker_id: str,
) -> Callable[[AsyncConnection], Awaitable[EnrolmentCodeResponse]]:
    """The work of a transaction that issues an enrolment code, as the command line does."""

    async def work(conn: AsyncConnection) -> EnrolmentCodeResponse:
        return await enrolment.issue_code(conn, None, worker_id, 3600, wall_ms())

    return work


async def enrol_devices(url: str, base_url: str, devices: list[Device]) -> None:
    engine = make_engine(Settings(database_url=url))
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            for device in devices:
                reply = await transaction(engine, issue_code(device.worker_id))
                body = {"code": reply.code, "device_id": device.device_id, "platform": "bench"}
                response = await client.post("/v1/auth/enrol", json=body)
                if response.status_code != 201:
                    raise BenchError(
                        f"enrol {device.device_id}: {response.status_code} {response.text}"
                    )
                device.token = response.json()["token"]
    finally:
        await engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """``patrolsync serve`` as a subprocess, its output in a temporary log file."""

    def __init__(self, url: str, opts: Options) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 -- closed in stop()
            prefix="patrolsync-bench-server-", suffix=".log", delete=False
        )
        env = {
            **os.environ,
            "PATROLSYNC_DATABASE_URL": url,
            "PATROLSYNC_LOG_LEVEL": "WARNING",
            "PATROLSYNC_MAX_INFLIGHT_PUSHES": str(max(64, 4 * opts.devices)),
            "PATROLSYNC_MAX_PUSH_ITEMS": str(max(1000, opts.batch)),
            "PATROLSYNC_MAX_PUSH_BYTES": str(max(4 << 20, 1024 * opts.batch)),
            "PATROLSYNC_MAX_PULL_LIMIT": str(max(5000, opts.pull_limit)),
            "PYTHONUNBUFFERED": "1",
        }
        prefix = [sys.executable]
        self.profiling = opts.profile is not None
        if opts.profile is not None:
            prefix += ["-m", "cProfile", "-o", str(opts.profile.resolve())]
        cmd = [*prefix, "-m", "patrolsync.cli", "serve", "--host", "127.0.0.1"]
        cmd += ["--port", str(self.port), "--workers", str(opts.server_workers)]
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )

    def tail(self, lines: int = 30) -> str:
        try:
            text = Path(self.log.name).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    async def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(base_url=self.base_url, timeout=5) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise BenchError(f"the server exited ({self.proc.returncode}):\n{self.tail()}")
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise BenchError(f"the server was not ready after {timeout_s:.0f} s:\n{self.tail()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            # uvicorn re-raises SIGTERM after its graceful shutdown, which kills the process
            # before cProfile writes its stats; SIGINT ends it with a KeyboardInterrupt instead.
            self.proc.send_signal(signal.SIGINT if self.profiling else signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


# ---------------------------------------------------------------- HTTP push and pull


class _Result(msgspec.Struct):
    status: str
    id: str | None = None
    code: str | None = None
    reason: str | None = None


class _PushReply(msgspec.Struct):
    results: list[_Result]
    replayed: bool = False


class _Record(msgspec.Struct):
    id: str


class _Change(msgspec.Struct):
    type: str
    record: _Record


class _PullPage(msgspec.Struct):
    changes: list[_Change]
    cursor: str
    more: bool


_push_reply = msgspec.msgpack.Decoder(_PushReply)
_pull_page = msgspec.msgpack.Decoder(_PullPage)


def client_for(base_url: str, device: Device) -> httpx.AsyncClient:
    headers = {**PROTOCOL, "Authorization": f"Bearer {device.token}", "Accept": MSGPACK}
    return httpx.AsyncClient(base_url=base_url, headers=headers, timeout=120)


async def push_one(client: httpx.AsyncClient, body: bytes, latencies: list[float]) -> int:
    start = time.perf_counter()
    response = await client.post("/v1/sync/push", content=body, headers={"Content-Type": MSGPACK})
    latencies.append(time.perf_counter() - start)
    if response.status_code != 200:
        raise BenchError(f"push: HTTP {response.status_code}: {response.text[:500]}")
    reply = _push_reply.decode(response.content)
    wrong = [r for r in reply.results if r.status != "applied"]
    if wrong or reply.replayed:
        raise BenchError(
            f"push: {len(wrong)} items not applied (replayed={reply.replayed}): {wrong[:3]}"
        )
    return len(reply.results)


async def push_all(
    clients: list[httpx.AsyncClient], devices: list[Device], warmup: bool, latencies: list[float]
) -> int:
    async def one(client: httpx.AsyncClient, device: Device) -> int:
        applied = 0
        for body in device.warmup if warmup else device.bodies:
            applied += await push_one(client, body, latencies)
        return applied

    counts = await asyncio.gather(*(one(c, d) for c, d in zip(clients, devices, strict=True)))
    return sum(counts)


async def pull_device(client: httpx.AsyncClient, limit: int, first_page_only: bool) -> list[str]:
    ids: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        response = await client.get("/v1/sync/pull", params=params)
        if response.status_code != 200:
            raise BenchError(f"pull: HTTP {response.status_code}: {response.text[:500]}")
        page = _pull_page.decode(response.content)
        ids.extend(c.record.id for c in page.changes if c.type == "checkin")
        if not page.more or first_page_only:
            return ids
        cursor = page.cursor


def check_pulled(devices: list[Device], pulled: list[list[str]]) -> int:
    for device, ids in zip(devices, pulled, strict=True):
        got = set(ids)
        if len(got) != len(ids):
            raise BenchError(f"pull {device.device_id}: {len(ids) - len(got)} records repeated")
        if got != device.ids:
            missing, foreign = len(device.ids - got), len(got - device.ids)
            raise BenchError(f"pull {device.device_id}: {missing} missing, {foreign} not its own")
    return sum(len(ids) for ids in pulled)


# ---------------------------------------------------------------- raw PostgreSQL references


async def connect_all(dsn: str, n: int) -> list[asyncpg.Connection]:
    return list(await asyncio.gather(*(asyncpg.connect(dsn) for _ in range(n))))


async def close_all(conns: list[asyncpg.Connection]) -> None:
    await asyncio.gather(*(c.close() for c in conns))


async def checkpoint(conn: asyncpg.Connection) -> None:
    """Flush dirty pages so a phase does not pay for the previous one (superuser only)."""
    with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
        await conn.execute("CHECKPOINT")


@dataclass(slots=True)
class RawRows:
    columns: list[str]
    warmup: dict[str, list[tuple[Any, ...]]]
    timed: dict[str, list[tuple[Any, ...]]]
    """device id → its rows as stored by the server, in change order."""


async def stored_rows(conn: asyncpg.Connection, first_timed_txid: int) -> RawRows:
    rows = await conn.fetch("SELECT * FROM checkin ORDER BY txid, seq")
    if not rows:
        raise BenchError("no check-ins stored")
    out = RawRows(list(rows[0].keys()), {}, {})
    for r in rows:
        side = out.timed if r["txid"] >= first_timed_txid else out.warmup
        side.setdefault(r["device_id"], []).append(tuple(r.values()))
    return out


def chunks(rows: list[T], size: int) -> list[list[T]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


async def prepare_raw_tables(conn: asyncpg.Connection) -> None:
    for table in (RAW_TABLE, COPY_TABLE):
        await conn.execute(f"DROP TABLE IF EXISTS {table}")
        await conn.execute(f"CREATE TABLE {table} (LIKE checkin INCLUDING ALL)")


def insert_sql(table: str, columns: list[str]) -> str:
    names = ", ".join(columns)
    params = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    return f"INSERT INTO {table} ({names}) VALUES ({params}) ON CONFLICT (id) DO NOTHING"


async def raw_insert(
    conns: list[asyncpg.Connection], per_conn: list[list[tuple[Any, ...]]], sql: str, batch: int
) -> None:
    async def one(conn: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> None:
        for part in chunks(rows, batch):
            await conn.executemany(sql, part)  # atomic: one transaction per batch

    await asyncio.gather(*(one(c, rows) for c, rows in zip(conns, per_conn, strict=True)))


async def raw_copy(
    conns: list[asyncpg.Connection], per_conn: list[list[tuple[Any, ...]]], columns: list[str]
) -> None:
    await asyncio.gather(
        *(
            c.copy_records_to_table(COPY_TABLE, records=rows, columns=columns)
            for c, rows in zip(conns, per_conn, strict=True)
            if rows
        )
    )


async def raw_pull(
    conns: list[asyncpg.Connection], workers: list[str], limit: int, first_page_only: bool
) -> list[int]:
    async def one(conn: asyncpg.Connection, worker_id: str) -> int:
        total, after = 0, (0, 0)
        while True:
            rows = await conn.fetch(RAW_PULL_SQL, worker_id, *after, limit)
            total += len(rows)
            if len(rows) < limit or first_page_only:
                return total
            after = (rows[-1]["txid"], rows[-1]["seq"])

    return list(await asyncio.gather(*(one(c, w) for c, w in zip(conns, workers, strict=True))))


# ---------------------------------------------------------------- the run


@dataclass(slots=True)
class Outcome:
    phases: dict[str, Phase] = field(default_factory=dict)
    pulled_records: int = 0
    warmup_records: int = 0
    stored_records: int = 0
    push_latency_ms: dict[str, float] = field(default_factory=dict)
    postgres_version: str = ""


@dataclass(slots=True)
class Bench:
    """One run: the devices and their HTTP clients, and the raw connections (one per device)."""

    opts: Options
    admin: asyncpg.Connection
    probe: CpuProbe
    devices: list[Device]
    clients: list[httpx.AsyncClient]
    conns: list[asyncpg.Connection]
    out: Outcome = field(default_factory=Outcome)

    async def timed(
        self, name: str, label: str, records: int, run: Callable[[], Awaitable[Any]]
    ) -> None:
        await checkpoint(self.admin)
        self.out.phases[name] = await timed(self.probe, name, label, records, run)

    async def push(self) -> int:
        """Warm up, then time the HTTP push; return the lowest txid the timed rows can have."""
        latencies: list[float] = []
        self.out.warmup_records = await push_all(self.clients, self.devices, True, latencies)
        first_txid = int(
            await self.admin.fetchval("SELECT coalesce(max(txid), 0) + 1 FROM checkin")
        )
        latencies.clear()
        await self.timed(
            "push",
            "push  HTTP msgpack (server)",
            self.opts.records,
            lambda: push_all(self.clients, self.devices, False, latencies),
        )
        stored = int(await self.admin.fetchval("SELECT count(*) FROM checkin"))
        expected = self.opts.records + self.out.warmup_records
        if stored != expected:
            raise BenchError(f"{stored} check-ins stored, expected {expected}")
        self.out.stored_records = stored
        ms = sorted(x * 1000 for x in latencies)
        self.out.push_latency_ms = {
            "p50": round(statistics.median(ms), 1),
            "p95": round(ms[min(len(ms) - 1, int(0.95 * len(ms)))], 1),
            "max": round(ms[-1], 1),
        }
        return first_txid

    async def raw_push(self, first_txid: int) -> None:
        """The rows the server stored, written again: INSERT .. ON CONFLICT, then COPY."""
        rows = await stored_rows(self.admin, first_txid)
        await prepare_raw_tables(self.admin)
        ids = [d.device_id for d in self.devices]
        warm = [rows.warmup.get(i, []) for i in ids]
        timed_rows = [rows.timed.get(i, []) for i in ids]
        sql = insert_sql(RAW_TABLE, rows.columns)
        batch = self.opts.batch
        await raw_insert(self.conns, warm, sql, batch)  # same start as the server's table
        await self.timed(
            "raw_push",
            "raw   INSERT .. ON CONFLICT",
            self.opts.records,
            lambda: raw_insert(self.conns, timed_rows, sql, batch),
        )
        await raw_copy(self.conns, warm, rows.columns)
        await self.timed(
            "copy",
            "raw   COPY (physical limit)",
            self.opts.records,
            lambda: raw_copy(self.conns, timed_rows, rows.columns),
        )
        for table in (RAW_TABLE, COPY_TABLE):
            n = await self.admin.fetchval(f"SELECT count(*) FROM {table}")
            if n != self.out.stored_records:
                raise BenchError(f"{table} holds {n} rows, expected {self.out.stored_records}")

    async def pull(self) -> None:
        """Every device's whole scope over HTTP, then the same keyset scans on raw connections."""
        await self.admin.execute("VACUUM ANALYZE checkin")  # same state for both: hint bits set
        limit, workers = self.opts.pull_limit, [d.worker_id for d in self.devices]
        await asyncio.gather(*(pull_device(c, 1, True) for c in self.clients))
        await raw_pull(self.conns, workers, 1, True)
        pulled: list[list[str]] = []
        counts: list[int] = []

        async def http_pull() -> None:
            pulled.extend(
                await asyncio.gather(*(pull_device(c, limit, False) for c in self.clients))
            )

        async def scan() -> None:
            counts.extend(await raw_pull(self.conns, workers, limit, False))

        n = self.out.stored_records
        await self.timed("pull", "pull  HTTP msgpack (server)", n, http_pull)
        self.out.pulled_records = check_pulled(self.devices, pulled)
        await self.timed("raw_pull", "raw   keyset SELECT", n, scan)
        if counts != [len(p) for p in pulled]:
            raise BenchError(f"raw scans found {counts}, HTTP pulls {[len(p) for p in pulled]}")


async def run(opts: Options, server: Server, dsn: str, url: str) -> Outcome:
    admin = await asyncpg.connect(dsn)
    clients: list[httpx.AsyncClient] = []
    conns: list[asyncpg.Connection] = []
    try:
        version = str(await admin.fetchval("SHOW server_version"))
        backend = int(await admin.fetchval("SELECT pg_backend_pid()"))
        probe = CpuProbe(parent_of(backend), opts.db_name, server_pid=server.proc.pid)
        await server.wait_ready()
        log(f"server ready at {server.base_url} ({opts.server_workers} worker(s))")
        devices = [
            Device(f"bench-w{i:02d}", f"bench-g{i:02d}", f"bench-dev-{i:02d}")
            for i in range(1, opts.devices + 1)
        ]
        await enrol_devices(url, server.base_url, devices)
        log(f"enrolled {len(devices)} devices; encoding the request bodies ...")
        build_bodies(devices, opts)
        clients = [client_for(server.base_url, d) for d in devices]
        conns = await connect_all(dsn, opts.devices)
        bench = Bench(opts, admin, probe, devices, clients, conns)
        bench.out.postgres_version = version
        first_txid = await bench.push()
        await bench.raw_push(first_txid)
        await bench.pull()
        return bench.out
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
        await close_all(conns)
        await admin.close()


def verdict(name: str, value: float) -> str:
    target = TARGETS[name]
    return f"target >= {target}: {'met' if value >= target else 'NOT met'}"


def ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b > 0 else 0.0


def report(opts: Options, out: Outcome) -> dict[str, Any]:
    ph = out.phases
    push_ratio = ratio(ph["push"].rps, ph["raw_push"].rps)
    pull_ratio = ratio(ph["pull"].rps, ph["raw_pull"].rps)
    cores = os.cpu_count() or 0
    print()
    print(
        f"patrolsync sync benchmark: PostgreSQL {out.postgres_version}, {opts.devices} devices, "
        f"batch {opts.batch}, {opts.records:,} timed records (+{out.warmup_records:,} warm-up), "
        f"server workers {opts.server_workers}, {cores} CPU cores"
    )
    print()
    header = f"{'phase':<30}{'records':>10}{'seconds':>10}{'records/s':>12}"
    header += "   CPU s bench/server/postgres"
    print(header)
    print("-" * len(header))
    for p in ph.values():
        cpu = "/".join(
            "-" if p.cpu_s.get(k) is None else f"{p.cpu_s[k]:.1f}"
            for k in ("bench", "server", "postgres")
        )
        print(f"{p.label:<30}{p.records:>10,}{p.seconds:>10.2f}{p.rps:>12,.0f}   {cpu}")
    print()
    lat = out.push_latency_ms
    print(
        f"push latency per {opts.batch}-item request: "
        f"p50 {lat['p50']} ms, p95 {lat['p95']} ms, max {lat['max']} ms"
    )
    copy_share = ratio(ph["push"].rps, ph["copy"].rps)
    print(f"push vs COPY (physical limit): {copy_share:.2f}")
    for name, value in (("push_ratio", push_ratio), ("pull_ratio", pull_ratio)):
        print(f"{name:<11} = {value:.3f}   {verdict(name, value)}")
    return {
        "push_rps": round(ph["push"].rps, 1),
        "raw_push_rps": round(ph["raw_push"].rps, 1),
        "copy_rps": round(ph["copy"].rps, 1),
        "push_ratio": push_ratio,
        "pull_rps": round(ph["pull"].rps, 1),
        "raw_pull_rps": round(ph["raw_pull"].rps, 1),
        "pull_ratio": pull_ratio,
        "push_target_met": push_ratio >= TARGETS["push_ratio"],
        "pull_target_met": pull_ratio >= TARGETS["pull_ratio"],
        "records": opts.records,
        "warmup_records": out.warmup_records,
        "pulled_records": out.pulled_records,
        "batch": opts.batch,
        "devices": opts.devices,
        "quick": opts.quick,
        "server_workers": opts.server_workers,
        "pull_limit": opts.pull_limit,
        "push_latency_ms": lat,
        "seconds": {k: round(p.seconds, 3) for k, p in ph.items()},
        "cpu_s": {k: p.cpu_s for k, p in ph.items()},
        "cpu_cores": cores,
        "postgres": out.postgres_version,
    }


def one_run(opts: Options) -> dict[str, Any] | int:
    """One whole run on a fresh database: the report's JSON, or an exit status on failure."""
    dsn, url = database_urls(opts.pg_admin, opts.db_name)
    log(f"recreating database {opts.db_name} ...")
    try:
        asyncio.run(recreate_database(opts.pg_admin, opts.db_name))
    except (OSError, asyncpg.PostgresError) as exc:
        log(f"cannot create database {opts.db_name} via {opts.pg_admin}: {exc}")
        return 2
    server: Server | None = None
    try:
        upgrade(Settings(database_url=url))
        asyncio.run(import_district(url, parse_district(opts.devices)))
        log("migrated and imported; starting the server ...")
        server = Server(url, opts)
        outcome = asyncio.run(run(opts, server, dsn, url))
    except BenchError as exc:
        log(f"bench failed: {exc}")
        tail = server.tail() if server is not None and "\n" not in str(exc) else ""
        if tail:
            log(f"server log (tail):\n{tail}")
        return 1
    finally:
        if server is not None:
            server.stop()
        if not opts.keep:
            try:
                asyncio.run(drop_database(opts.pg_admin, opts.db_name))
            except (OSError, asyncpg.PostgresError) as exc:
                log(f"could not drop database {opts.db_name}: {exc}")
    return report(opts, outcome)


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median push ratio, plus every run's ratios and the medians of both.

    The baselines move by ±15% between runs on a small shared machine; one run can mislead.
    """
    middle = sorted(runs, key=lambda r: r["push_ratio"])[len(runs) // 2]
    result = dict(middle)
    for key in ("push_ratio", "pull_ratio", "push_rps", "raw_push_rps", "pull_rps", "raw_pull_rps"):
        result[key] = statistics.median(r[key] for r in runs)
    result["push_target_met"] = result["push_ratio"] >= TARGETS["push_ratio"]
    result["pull_target_met"] = result["pull_ratio"] >= TARGETS["pull_ratio"]
    result["runs"] = [
        {k: r[k] for k in ("push_ratio", "pull_ratio", "push_rps", "pull_rps")} for r in runs
    ]
    return result


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    started = time.perf_counter()
    runs: list[dict[str, Any]] = []
    for n in range(1, opts.repeat + 1):
        log(f"run {n} of {opts.repeat}")
        outcome = one_run(opts)
        if isinstance(outcome, int):
            return outcome
        runs.append(outcome)
    result = summarise(runs)
    if opts.repeat > 1:
        print()
        for n, r in enumerate(result["runs"], start=1):
            print(f"run {n}: push_ratio {r['push_ratio']:.3f}  pull_ratio {r['pull_ratio']:.3f}")
        for name in ("push_ratio", "pull_ratio"):
            print(f"median {name:<11} = {result[name]:.3f}   {verdict(name, result[name])}")
    result["repeat"] = opts.repeat
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    line = json.dumps(result, separators=(",", ":"))
    if opts.json_out is not None:
        opts.json_out.write_text(line + "\n")
    print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
