"""Live benchmark: how soon a committed change reaches a waiting pull, what an idle waiting pull
costs, and how soon a push that breaks a rule reaches the console's alert stream.

A measurement, never a test: it fails only when the server answers wrongly (an item not
"applied", a pull refused), never on a missed target.

1. Setup (untimed): a fresh PostgreSQL database, migrations, a generated district (one street
   and community; 8 pushing workers with a grid each and ``--followers`` more devices each,
   the other waiting devices each of a worker and grid of their own, and ``--alerts`` workers
   for the alert probes), the server (``patrolsync serve``, one process) and the quota worker
   (``patrolsync worker``, on ``--redis``) as subprocesses.
2. Idle: the server's CPU over ``--idle-s`` with no pull waiting, then with all ``--waiters``
   devices waiting on live pulls (``wait=30``) of their scopes; ``idle_cpu_per_wait_pct`` is
   the difference per waiting pull, in percent of one core.
3. Load (``--load-s``): 8 devices push ``--batch``-item batches every ``--interval-ms`` while
   every waiting device follows (a live pull again as soon as one answers), and the alert
   probes push, one every ``--alert-every-ms``, a 13-hour patrol of their own worker (it breaks
   ``implausible_duration``) while a street supervisor's ``GET /v1/alerts/stream`` is open.
   - ``visible_*``: from a push's commit to the first waiting pull of each of its followers that
     answers with its check-ins. The commit's time is PostgreSQL's commit timestamp where
     ``track_commit_timestamp`` is on (``visible_from: commit``), else the push's sending
     (``visible_from: push_sent``, an upper bound).
   - ``alert_*``: from sending the probe's push to its alert's event on the stream (the outbox
     relay, the queue, the evaluation, the hub: everything after the push).
   - ``woken_outside``: answers with changes to the devices whose scope no push touched (0).

Percentiles over every sample of one run; the last line of output is one JSON object.

Usage: ``.venv/bin/python bench/live.py [--quick] [--pg-admin URL] [--redis URL] ...``
"""

# ruff: noqa: E402 -- the project imports must follow the sys.path fix below.

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    database_urls,
    drop_database,
    log,
    parent_of,
    postgres_cpu_s,
    recreate_database,
    tree_cpu_s,
)
from patrolsync import importer
from schemas.sync import EnrolmentCodeResponse
from server import enrolment
from server.clock import wall_ms
from server.db import make_engine
from server.migrate import upgrade
from server.settings import Settings
from server.tx import transaction

MINUTE = 60_000
HOUR = 60 * MINUTE
PROTOCOL = {"Patrolsync-Protocol": "1"}
MSGPACK = "application/msgpack"
DEFAULT_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
WAIT_S = 30
PUSHERS = 8
SUPERVISOR = "bench-s1"
ALERT_GRID = "bench-alerts"
TARGET_VISIBLE_P99_MS = 50.0
TARGET_ALERT_P99_MS = 2000.0
SUBJECT = re.compile(
    rb'"rule":"implausible_duration","subject_kind":"worker","subject_id":"(bench-a\d+)"'
)
"""A probe's alert in an event on the stream (the probe's own rule: the worker's periodic sweep
may raise others for the same workers, before the probe's push, e.g. the week's at-risk
warning from Thursday's checkpoint on)."""


class BenchError(RuntimeError):
    """The run cannot go on: setup failed or the server answered wrongly."""


@dataclass(frozen=True, slots=True)
class Options:
    quick: bool
    waiters: int
    followers: int
    batch: int
    interval_ms: int
    load_s: float
    idle_s: float
    alerts: int
    alert_every_ms: int
    pg_admin: str
    redis: str
    db_name: str
    keep: bool
    json_out: Path | None
    seed: int
    worker: bool


def parse_args(argv: Sequence[str] | None = None) -> Options:
    p = argparse.ArgumentParser(
        description="Live pull and alert stream latency through the real server and worker."
    )
    p.add_argument("--quick", action="store_true", help="a short run (under a minute)")
    p.add_argument("--waiters", type=int, default=200, help="devices on live pulls (200)")
    p.add_argument("--followers", type=int, default=3, help="waiting devices per pusher (3)")
    p.add_argument("--batch", type=int, default=100, help="check-ins per push (100)")
    p.add_argument("--interval-ms", type=int, default=1000, help="each pusher's pace (1000 ms)")
    p.add_argument("--load-s", type=float, default=None, help="load phase (quick 15, else 60)")
    p.add_argument("--idle-s", type=float, default=None, help="idle windows (quick 4, else 15)")
    p.add_argument("--alerts", type=int, default=None, help="alert probes (quick 40, else 200)")
    p.add_argument("--alert-every-ms", type=int, default=250, help="probe pace (250 ms)")
    p.add_argument("--pg-admin", default=DEFAULT_ADMIN, help=f"admin URL ({DEFAULT_ADMIN})")
    p.add_argument("--redis", default=DEFAULT_REDIS, help=f"Redis of the worker ({DEFAULT_REDIS})")
    p.add_argument("--db-name", default="patrolsync_bench_live", help="database to (re)create")
    p.add_argument("--keep", action="store_true", help="keep the database afterwards")
    p.add_argument("--json-out", type=Path, default=None, help="also write the JSON here")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--no-worker",
        action="store_true",
        help="no quota worker and no alert probes (what the worker's transactions cost the pulls)",
    )
    a = p.parse_args(argv)
    if a.waiters < PUSHERS * a.followers:
        p.error(f"--waiters must be at least {PUSHERS} x --followers")
    return Options(
        quick=a.quick,
        waiters=a.waiters,
        followers=a.followers,
        batch=a.batch,
        interval_ms=a.interval_ms,
        load_s=a.load_s if a.load_s is not None else (15.0 if a.quick else 60.0),
        idle_s=a.idle_s if a.idle_s is not None else (4.0 if a.quick else 15.0),
        alerts=0 if a.no_worker else a.alerts if a.alerts is not None else (40 if a.quick else 200),
        alert_every_ms=a.alert_every_ms,
        pg_admin=a.pg_admin,
        redis=a.redis,
        db_name=a.db_name,
        keep=a.keep,
        json_out=a.json_out,
        seed=a.seed,
        worker=not a.no_worker,
    )


# ---------------------------------------------------------------- the district and devices


@dataclass(slots=True)
class Device:
    worker_id: str
    grid_id: str
    device_id: str
    token: str = ""


@dataclass(slots=True)
class Cast:
    pushers: list[Device]
    followers: list[Device]
    """Waiting devices of the pushing workers: every push of their worker wakes them."""
    idle: list[Device]
    """Waiting devices of workers nobody pushes for: no push may wake them."""
    probes: list[Device]


def cast(opts: Options) -> Cast:
    pushers = [Device(f"bench-p{i:02d}", f"bench-g{i:02d}", f"bench-p{i:02d}-0") for i in range(8)]
    followers = [
        Device(p.worker_id, p.grid_id, f"{p.worker_id}-{n}")
        for p in pushers
        for n in range(1, opts.followers + 1)
    ]
    idle = [
        Device(f"bench-i{i:03d}", f"bench-h{i:03d}", f"bench-i{i:03d}-0")
        for i in range(opts.waiters - len(followers))
    ]
    probes = [
        Device(f"bench-a{i:03d}", ALERT_GRID, f"bench-a{i:03d}-0") for i in range(opts.alerts)
    ]
    return Cast(pushers, followers, idle, probes)


def district(c: Cast) -> importer.ImportDoc:
    workers = {d.worker_id: d.grid_id for d in [*c.pushers, *c.idle, *c.probes]}
    grids = sorted(set(workers.values()))
    community = {
        "id": "bench-c1",
        "kind": "community",
        "name": "Community",
        "children": [{"id": g, "kind": "grid", "name": g} for g in grids],
    }
    street = {"id": "bench-st1", "kind": "street", "name": "Street", "children": [community]}
    doc = {
        "units": [{"id": "bench-d1", "kind": "district", "name": "District", "children": [street]}],
        "workers": [{"id": w, "name": w, "grids": [g]} for w, g in workers.items()],
        "supervisors": [{"id": SUPERVISOR, "name": "Street supervisor", "unit": "bench-st1"}],
    }
    with tempfile.TemporaryDirectory(prefix="patrolsync-bench-") as tmp:
        path = Path(tmp) / "district.yaml"
        path.write_text(yaml.safe_dump(doc, allow_unicode=True))
        return importer.parse(path)


def _code(worker_id: str) -> Any:
    async def work(conn: AsyncConnection) -> EnrolmentCodeResponse:
        return await enrolment.issue_code(conn, None, worker_id, 3600, wall_ms())

    return work


async def setup(url: str, base_url: str, c: Cast) -> str:
    """Import the district, enrol every device; the supervisor's token."""
    engine = make_engine(Settings(database_url=url))
    try:
        await transaction(engine, lambda conn: importer.load(conn, district(c)))
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            for d in [*c.pushers, *c.followers, *c.idle, *c.probes]:
                code = (await transaction(engine, _code(d.worker_id))).code
                body = {"code": code, "device_id": d.device_id, "platform": "bench"}
                reply = await client.post("/v1/auth/enrol", json=body)
                if reply.status_code != 201:
                    raise BenchError(f"enrol {d.device_id}: {reply.status_code} {reply.text}")
                d.token = reply.json()["token"]
        return await transaction(
            engine, lambda conn: enrolment.supervisor_token(conn, SUPERVISOR, wall_ms())
        )
    finally:
        await engine.dispose()


# ---------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Process:
    """A ``patrolsync`` command as a subprocess, its output in a temporary log file."""

    def __init__(self, args: list[str], env: dict[str, str], name: str) -> None:
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 -- closed in stop()
            prefix=f"patrolsync-bench-{name}-", suffix=".log", delete=False
        )
        cmd = [sys.executable, "-m", "patrolsync.cli", *args]
        full = {**os.environ, **env, "PATROLSYNC_LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=full, stdout=self.log, stderr=subprocess.STDOUT
        )

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(Path(self.log.name).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def cpu_s(self) -> float:
        found = tree_cpu_s(self.proc.pid)
        if found is None:
            raise BenchError("no CPU figures for the server process (/proc)")
        return found

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


async def wait_ready(server: Process, base_url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as client:
        while time.monotonic() < deadline:
            if server.proc.poll() is not None:
                raise BenchError(f"the server exited ({server.proc.returncode}):\n{server.tail()}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get("/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise BenchError(f"the server was not ready after {timeout_s:.0f} s:\n{server.tail()}")


# ---------------------------------------------------------------- the run


class _Record(msgspec.Struct):
    id: str


class _Change(msgspec.Struct):
    record: _Record


class _Page(msgspec.Struct):
    changes: list[_Change]
    cursor: str
    more: bool


_page = msgspec.msgpack.Decoder(_Page)


def new_id() -> str:
    return str(uuid_utils.uuid7())


def patrol(d: Device, rng: random.Random, now_ms: int, hours: float) -> dict[str, Any]:
    span = int(hours * HOUR)
    ended = now_ms - rng.randrange(HOUR, 24 * HOUR)
    return {
        "op": "checkin",
        "id": new_id(),
        "grid_id": d.grid_id,
        "started_ms": ended - span,
        "ended_ms": ended,
        "elapsed_ms": span,
        "boot_id": f"boot-{d.device_id}",
        "visit_count": 1,
        "households": [],
    }


def headers(d: Device) -> dict[str, str]:
    return {**PROTOCOL, "Authorization": f"Bearer {d.token}", "Accept": MSGPACK}


@dataclass(slots=True)
class Push:
    worker_id: str
    sent: float
    first_id: str
    commit: float | None = None


@dataclass(slots=True)
class Run:
    opts: Options
    base_url: str
    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)
    """One HTTP client per device, as devices are: one client's pool of hundreds of
    connections, each kept busy by a waiting pull, spent the bench's CPU on assigning requests
    to connections (a scan of every connection per request) and stalled its pushes."""
    pushes: list[Push] = field(default_factory=list)
    push_of: dict[str, int] = field(default_factory=dict)
    """Each pushed check-in id: the index of its push."""
    seen: dict[tuple[str, int], float] = field(default_factory=dict)
    """(follower device, push index): when a pull first answered with that push's check-ins."""
    woken_outside: int = 0
    waiting_replies: int = 0
    push_ms: list[float] = field(default_factory=list)
    plain_ms: list[float] = field(default_factory=list)
    """Plain pulls (no wait, nothing new) during the load: the machine's own round trip."""
    loading: bool = False

    def http(self, d: Device) -> httpx.AsyncClient:
        client = self.clients.get(d.device_id)
        if client is None:
            client = httpx.AsyncClient(
                base_url=self.base_url, limits=httpx.Limits(max_connections=2), timeout=60
            )
            self.clients[d.device_id] = client
        return client

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.aclose()

    async def push(self, d: Device, items: list[dict[str, Any]]) -> None:
        body = msgspec.msgpack.encode(
            {"push_id": new_id(), "device_time_ms": wall_ms(), "items": items}
        )
        index = len(self.pushes)
        self.pushes.append(Push(d.worker_id, time.time(), items[0]["id"]))
        for item in items:
            self.push_of[item["id"]] = index
        started = time.perf_counter()
        reply = await self.http(d).post(
            "/v1/sync/push",
            content=body,
            headers={**headers(d), "Content-Type": MSGPACK},
        )
        if d.worker_id.startswith("bench-p"):
            self.push_ms.append((time.perf_counter() - started) * 1000)
        if reply.status_code != 200:
            raise BenchError(f"push: HTTP {reply.status_code}: {reply.text[:300]}")
        results = msgspec.msgpack.decode(reply.content)["results"]
        wrong = [r for r in results if r["status"] != "applied"]
        if wrong:
            raise BenchError(f"push: {len(wrong)} items not applied: {wrong[:2]}")

    async def follow(self, d: Device, outside: bool, started: asyncio.Event) -> None:
        """Pull to the end, then live pulls for ever (until cancelled)."""
        cursor = ""
        first = True
        while True:
            params: dict[str, Any] = {"wait": WAIT_S} if not first else {}
            if cursor:
                params["cursor"] = cursor
            if first:
                first = False
            elif not started.is_set():
                started.set()
            reply = await self.http(d).get(
                "/v1/sync/pull", params=params, headers=headers(d), timeout=WAIT_S + 30
            )
            now = time.time()
            if reply.status_code != 200:
                raise BenchError(f"pull {d.device_id}: HTTP {reply.status_code} {reply.text}")
            page = _page.decode(reply.content)
            cursor = page.cursor
            if page.changes and "wait" in params:
                self.waiting_replies += 1
                if outside:
                    self.woken_outside += 1
            for change in page.changes:
                index = self.push_of.get(change.record.id)
                if index is not None:
                    self.seen.setdefault((d.device_id, index), now)


async def pusher(run: Run, d: Device, rng: random.Random, until: float, offset_s: float) -> None:
    """Push every ``interval_ms``, starting ``offset_s`` late (the pushers spread over the
    interval, as independent devices are)."""
    await asyncio.sleep(offset_s)
    while time.monotonic() < until:
        started = time.monotonic()
        now = wall_ms()
        await run.push(d, [patrol(d, rng, now, 4) for _ in range(run.opts.batch)])
        await asyncio.sleep(max(0.0, run.opts.interval_ms / 1000 - (time.monotonic() - started)))


async def plain_pulls(run: Run, d: Device, until: float) -> None:
    """A pull without wait every 100 ms: the reference round trip of the same run."""
    while time.monotonic() < until:
        started = time.perf_counter()
        reply = await run.http(d).get("/v1/sync/pull", headers=headers(d))
        if reply.status_code != 200:
            raise BenchError(f"plain pull: HTTP {reply.status_code} {reply.text}")
        run.plain_ms.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(0.1)


@dataclass(slots=True)
class Stream:
    seen: dict[str, float] = field(default_factory=dict)

    async def read(self, port: int, token: str, opened: asyncio.Event) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(
                (
                    "GET /v1/alerts/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
                ).encode("ascii")
            )
            await writer.drain()
            status = await reader.readline()
            if b" 200 " not in status:
                raise BenchError(f"the stream was refused: {status.decode(errors='replace')}")
            opened.set()
            tail = b""
            while chunk := await reader.read(65536):
                now = time.time()
                buffer = tail + chunk
                for match in SUBJECT.finditer(buffer):
                    self.seen.setdefault(match.group(1).decode(), now)
                tail = buffer[-200:]
        finally:
            writer.close()


async def probes(run: Run, c: Cast, rng: random.Random, sent: dict[str, float]) -> None:
    for d in c.probes:
        started = time.monotonic()
        sent[d.worker_id] = time.time()
        await run.push(d, [patrol(d, rng, wall_ms(), 13)])  # longer than 12 h: implausible
        await asyncio.sleep(max(0.0, run.opts.alert_every_ms / 1000 - (time.monotonic() - started)))


async def commit_times(dsn: str, run: Run) -> str:
    """Each push's commit time from PostgreSQL, where it keeps them: ``commit`` or
    ``push_sent`` (then a push's sending stands for its commit)."""
    conn = await asyncpg.connect(dsn)
    try:
        if await conn.fetchval("SHOW track_commit_timestamp") != "on":
            return "push_sent"
        rows = await conn.fetch(
            "SELECT c.id::text AS id, extract(epoch FROM"
            " pg_xact_commit_timestamp((c.txid % 4294967296)::text::xid)) AS at"
            " FROM checkin AS c WHERE c.id = ANY($1::uuid[])",
            [p.first_id for p in run.pushes],
        )
        at = {r["id"]: float(r["at"]) for r in rows if r["at"] is not None}
        for p in run.pushes:
            p.commit = at.get(p.first_id)
        return "commit"
    finally:
        await conn.close()


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 2)


def cpu_now(
    server: Process, worker: Process | None, postmaster: int | None, db: str
) -> dict[str, float]:
    """CPU seconds so far of the server, the worker, PostgreSQL (this database) and the bench."""
    pg = postgres_cpu_s(postmaster, db) if postmaster else None
    return {
        "server": server.cpu_s(),
        "worker": worker.cpu_s() if worker is not None else 0.0,
        "postgres": pg or 0.0,
        "bench": time.process_time(),
    }


async def postmaster_of(dsn: str) -> int | None:
    conn = await asyncpg.connect(dsn)
    try:
        return parent_of(int(await conn.fetchval("SELECT pg_backend_pid()")))
    finally:
        await conn.close()


async def measure(
    opts: Options,
    server: Process,
    worker: Process | None,
    port: int,
    dsn: str,
    c: Cast,
    token: str,
) -> Any:
    base_url = f"http://127.0.0.1:{port}"
    rng = random.Random(opts.seed)
    run = Run(opts, base_url)
    async with contextlib.aclosing(run):
        log(f"idle, no pull waiting: {opts.idle_s:.0f} s ...")
        cpu0, t0 = server.cpu_s(), time.monotonic()
        await asyncio.sleep(opts.idle_s)
        bare = (server.cpu_s() - cpu0) / (time.monotonic() - t0)
        tasks: list[asyncio.Task[None]] = []
        started = [asyncio.Event() for _ in [*c.followers, *c.idle]]
        waiting = [*((d, False) for d in c.followers), *((d, True) for d in c.idle)]
        for (d, outside), event in zip(waiting, started, strict=True):
            tasks.append(asyncio.create_task(run.follow(d, outside, event)))
        try:
            for event in started:
                await asyncio.wait_for(event.wait(), 60)
            await asyncio.sleep(1.0)  # the last live pulls reach the server and wait
            log(f"idle, {len(waiting)} pulls waiting: {opts.idle_s:.0f} s ...")
            cpu0, t0 = server.cpu_s(), time.monotonic()
            await asyncio.sleep(opts.idle_s)
            held = (server.cpu_s() - cpu0) / (time.monotonic() - t0)
            await plain_pulls(run, c.idle[0], time.monotonic() + 2)
            idle_plain, run.plain_ms = run.plain_ms, []
            if run.waiting_replies:
                raise BenchError(f"{run.waiting_replies} waiting pulls answered, nothing pushed")
            stream = Stream()
            opened = asyncio.Event()
            reading = asyncio.create_task(stream.read(port, token, opened))
            await asyncio.wait_for(opened.wait(), 30)
            log(
                f"load: {PUSHERS} pushers x {opts.batch} items every {opts.interval_ms} ms,"
                f" {opts.alerts} alert probes, {opts.load_s:.0f} s ..."
            )
            until = time.monotonic() + opts.load_s
            spread_s = opts.interval_ms / 1000 / len(c.pushers)
            sent: dict[str, float] = {}
            postmaster = await postmaster_of(dsn)
            load_cpu0, load_t0 = cpu_now(server, worker, postmaster, opts.db_name), time.monotonic()
            await asyncio.gather(
                *(
                    pusher(run, p, random.Random(rng.random()), until, i * spread_s)
                    for i, p in enumerate(c.pushers)
                ),
                probes(run, c, random.Random(rng.random()), sent),
                plain_pulls(run, c.idle[0], until),
            )
            load_cpu1, load_s = cpu_now(server, worker, postmaster, opts.db_name), time.monotonic()
            load_cpu = {
                k: round(100 * (load_cpu1[k] - v) / (load_s - load_t0), 1)
                for k, v in load_cpu0.items()
            }
            deadline = time.monotonic() + 30
            expected = len(run.pushes) - len(c.probes)
            while time.monotonic() < deadline and (  # noqa: ASYNC110 -- polls two counts
                len(stream.seen) < len(sent) or len(run.seen) < expected * opts.followers
            ):
                await asyncio.sleep(0.1)
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await reading
        finally:
            died = [t.exception() for t in tasks if t.done() and not t.cancelled()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    errors = [f"{type(e).__name__}: {e}"[:200] for e in died if e is not None]
    if errors:
        log(f"{len(errors)} waiting devices stopped following: {errors[0]}")
    source = await commit_times(dsn, run)
    visible: list[float] = []
    missing = 0
    for index, p in enumerate(run.pushes):
        if not p.worker_id.startswith("bench-p"):
            continue
        start = p.commit if p.commit is not None else p.sent
        for f in (f for f in c.followers if f.worker_id == p.worker_id):
            at = run.seen.get((f.device_id, index))
            if at is None:
                missing += 1
            else:
                visible.append((at - start) * 1000)
    alert = [(stream.seen[w] - t) * 1000 for w, t in sent.items() if w in stream.seen]
    return {
        "visible_p50_ms": percentile(visible, 0.5),
        "visible_p99_ms": percentile(visible, 0.99),
        "visible_max_ms": percentile(visible, 1.0),
        "visible_samples": len(visible),
        "visible_missing": missing,
        "visible_from": source,
        "alert_p50_ms": percentile(alert, 0.5),
        "alert_p99_ms": percentile(alert, 0.99),
        "alert_max_ms": percentile(alert, 1.0),
        "alert_samples": len(alert),
        "alert_missing": len(sent) - len(alert),
        "plain_pull_idle_p50_ms": percentile(idle_plain, 0.5),
        "plain_pull_p50_ms": percentile(run.plain_ms, 0.5),
        "plain_pull_p99_ms": percentile(run.plain_ms, 0.99),
        "push_p50_ms": percentile(run.push_ms, 0.5),
        "push_p99_ms": percentile(run.push_ms, 0.99),
        "idle_cpu_per_wait_pct": round(100 * max(0.0, held - bare) / len(waiting), 4),
        "idle_server_cpu_pct": {"none": round(100 * bare, 2), "waiting": round(100 * held, 2)},
        "load_cpu_pct": load_cpu,
        "pushes": len(run.pushes) - len(c.probes),
        "checkins_pushed": (len(run.pushes) - len(c.probes)) * opts.batch,
        "woken_outside": run.woken_outside,
        "follower_errors": len(errors),
        "waiting": len(waiting),
        "followers": len(c.followers),
    }


def one_run(opts: Options) -> dict[str, Any] | int:
    dsn, url = database_urls(opts.pg_admin, opts.db_name)
    log(f"recreating database {opts.db_name} ...")
    try:
        asyncio.run(recreate_database(opts.pg_admin, opts.db_name))
    except (OSError, asyncpg.PostgresError) as exc:
        log(f"cannot create database {opts.db_name} via {opts.pg_admin}: {exc}")
        return 2
    c = cast(opts)
    server: Process | None = None
    worker: Process | None = None
    try:
        upgrade(Settings(database_url=url))
        port = free_port()
        env = {
            "PATROLSYNC_DATABASE_URL": url,
            "PATROLSYNC_REDIS_URL": opts.redis,
            "PATROLSYNC_QUEUE_NAME": f"patrolsync:bench-live:{os.getpid()}",
            "PATROLSYNC_MAX_WAITING_PULLS": str(max(1000, 2 * opts.waiters)),
            "PATROLSYNC_DB_POOL_SIZE": "20",
        }
        server = Process(["serve", "--host", "127.0.0.1", "--port", str(port)], env, "server")
        asyncio.run(wait_ready(server, f"http://127.0.0.1:{port}"))
        token = asyncio.run(setup(url, f"http://127.0.0.1:{port}", c))
        enrolled = len(c.pushers) + opts.waiters + len(c.probes)
        log(f"enrolled {enrolled} devices" + ("; starting the worker" if opts.worker else ""))
        worker = Process(["worker"], env, "worker") if opts.worker else None
        result = asyncio.run(measure(opts, server, worker, port, dsn, c, token))
    except BenchError as exc:
        log(f"bench failed: {exc}")
        for p in (server, worker):
            if p is not None and p.tail():
                log(f"log (tail):\n{p.tail()}")
        return 1
    finally:
        for p in (worker, server):
            if p is not None:
                p.stop()
        if not opts.keep:
            try:
                asyncio.run(drop_database(opts.pg_admin, opts.db_name))
            except (OSError, asyncpg.PostgresError) as exc:
                log(f"could not drop database {opts.db_name}: {exc}")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    started = time.perf_counter()
    result = one_run(opts)
    if isinstance(result, int):
        return result
    result.update(
        quick=opts.quick,
        worker=opts.worker,
        batch=opts.batch,
        pushers=PUSHERS,
        interval_ms=opts.interval_ms,
        load_s=opts.load_s,
        cpu_cores=os.cpu_count() or 0,
        total_seconds=round(time.perf_counter() - started, 1),
    )
    print()
    print(
        f"patrolsync live benchmark: {PUSHERS} pushers x {opts.batch} items every "
        f"{opts.interval_ms} ms, {result['waiting']} waiting pulls, {opts.alerts} alert probes"
    )
    print(
        f"push commit -> waiting pull: p50 {result['visible_p50_ms']} ms, p99 "
        f"{result['visible_p99_ms']} ms ({result['visible_samples']} samples, from "
        f"{result['visible_from']}; target p99 < {TARGET_VISIBLE_P99_MS:.0f} ms)"
    )
    print(
        f"push -> alert event:         p50 {result['alert_p50_ms']} ms, p99 "
        f"{result['alert_p99_ms']} ms ({result['alert_samples']} samples; target p99 < "
        f"{TARGET_ALERT_P99_MS:.0f} ms)"
    )
    print(
        f"same run, for reference: a plain pull p50 {result['plain_pull_p50_ms']} ms, p99 "
        f"{result['plain_pull_p99_ms']} ms; a {opts.batch}-item push p50 {result['push_p50_ms']}"
        f" ms, p99 {result['push_p99_ms']} ms"
    )
    print(f"server CPU per idle waiting pull: {result['idle_cpu_per_wait_pct']} % of a core")
    line = json.dumps(result, separators=(",", ":"))
    if opts.json_out is not None:
        opts.json_out.write_text(line + "\n")
    print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
