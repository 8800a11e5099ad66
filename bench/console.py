"""Console benchmark: live alert streams on one server process (and, later, page timings).

A measurement, never a test: it fails only when the server answers wrongly (a stream refused,
an event missing from a stream), never on a missed target.

1. Setup (untimed): a fresh PostgreSQL database, migrations, the sample district, one open
   alert (written through the store, as the worker writes it), a street supervisor's token, and
   the server started as a subprocess (``python -m patrolsync.cli serve``, one process).
2. Streams: ``--streams`` (500) clients open ``GET /v1/alerts/stream`` over real HTTP (raw
   sockets, so the client's own cost stays small) and read everything the server sends.
3. Idle: for ``--idle-s`` seconds nothing changes; ``stream_idle_cpu_pct`` is the server
   process's CPU over that window, in percent of one core (what the open streams cost).
4. Delay: ``--changes`` times, one comment on the alert (``POST /v1/alerts/{id}/comments``, one
   alert event); the delay of each change to each stream is from just before the POST is sent
   to the moment that stream has received the event. ``stream_delay_p50_ms`` /
   ``stream_delay_p99_ms`` are percentiles over every (change, stream) pair.
5. Pages: ``page_p50_ms`` / ``page_p99_ms`` are printed as null: the console's pages do not
   exist on this branch yet; :func:`measure_pages` is the place their timings go.

The last line of output is one JSON object.

Usage: ``.venv/bin/python bench/console.py [--quick] [--pg-admin URL] [--streams N] ...``
"""

# ruff: noqa: E402 -- the project imports must follow the sys.path fix below.

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import statistics
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
import sqlalchemy as sa

from bench.common import database_urls, drop_database, log, recreate_database, tree_cpu_s
from patrolsync import importer
from patrolsync.cli import SAMPLE
from rules.findings import Finding
from server import enrolment
from server.db import make_engine
from server.migrate import upgrade
from server.settings import Settings
from server.store import alerts as alerts_store
from server.store.tables import unit_t
from server.tx import transaction

DEFAULT_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PROTOCOL = {"Patrolsync-Protocol": "1"}
SUPERVISOR = "s-dongfeng"
"""The street's supervisor: every alert of the sample district is in their subtree."""
WORKER, GRID, PERIOD = "w-zhang", "xinhua-g1", "2026-W47"
MARK = re.compile(rb"livebench#(\d+)#")


class BenchError(RuntimeError):
    """The run cannot go on: setup failed or the server answered wrongly."""


@dataclass(frozen=True, slots=True)
class Options:
    streams: int
    changes: int
    idle_s: float
    quick: bool
    pg_admin: str
    db_name: str
    keep: bool
    json_out: Path | None


def parse_args(argv: Sequence[str] | None = None) -> Options:
    p = argparse.ArgumentParser(
        prog="bench/console.py",
        description="Live alert streams on one server process: idle CPU and delay to all.",
    )
    p.add_argument("--quick", action="store_true", help="10 changes, 5 s idle (default 50, 20 s)")
    p.add_argument("--streams", type=int, default=500, help="open streams (default 500)")
    p.add_argument("--changes", type=int, default=None, help="alert changes timed")
    p.add_argument("--idle-s", type=float, default=None, help="idle window in seconds")
    p.add_argument("--pg-admin", default=DEFAULT_ADMIN, help=f"admin URL (default {DEFAULT_ADMIN})")
    p.add_argument("--db-name", default="patrolsync_bench_console", help="database to (re)create")
    p.add_argument("--keep", action="store_true", help="keep the database afterwards")
    p.add_argument("--json-out", type=Path, default=None, help="also write the JSON here")
    a = p.parse_args(argv)
    return Options(
        streams=a.streams,
        changes=a.changes if a.changes is not None else (10 if a.quick else 50),
        idle_s=a.idle_s if a.idle_s is not None else (5.0 if a.quick else 20.0),
        quick=a.quick,
        pg_admin=a.pg_admin,
        db_name=a.db_name,
        keep=a.keep,
        json_out=a.json_out,
    )


# ---------------------------------------------------------------- setup


async def prepare(url: str) -> tuple[int, str]:
    """The sample district, one open alert and a supervisor token: ``(alert id, token)``."""
    engine = make_engine(Settings(database_url=url))
    try:
        doc = importer.parse(SAMPLE)
        await transaction(engine, lambda conn: importer.load(conn, doc, 1_700_000_000_000))

        async def open_alert(conn: Any) -> int:
            path = (await conn.execute(sa.select(unit_t.c.path).where(unit_t.c.id == GRID))).one()
            finding = Finding(
                rule="quota_missed",
                subject_kind="worker",
                subject_id=WORKER,
                period=PERIOD,
                breached=True,
                evidence={"counted": 1, "required": 3},
            )
            where = {("worker", WORKER): (GRID, str(path[0]))}
            events = await alerts_store.apply(conn, [finding], where, int(time.time() * 1000))
            return int(events[0]["alert_id"])

        alert_id = await transaction(engine, open_alert)
        token = await transaction(
            engine,
            lambda c: enrolment.supervisor_token(c, SUPERVISOR, int(time.time() * 1000)),
        )
        return alert_id, token
    finally:
        await engine.dispose()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """``patrolsync serve`` (one process) as a subprocess, its output in a temporary file."""

    def __init__(self, url: str, streams: int) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 -- closed in stop()
            prefix="patrolsync-bench-console-", suffix=".log", delete=False
        )
        env = {
            **os.environ,
            "PATROLSYNC_DATABASE_URL": url,
            "PATROLSYNC_LOG_LEVEL": "WARNING",
            "PATROLSYNC_MAX_STREAMS": str(max(1000, streams)),
            "PYTHONUNBUFFERED": "1",
        }
        cmd = [sys.executable, "-m", "patrolsync.cli", "serve", "--host", "127.0.0.1"]
        cmd += ["--port", str(self.port), "--workers", "1"]
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(Path(self.log.name).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(base_url=self.base_url, timeout=5) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise BenchError(f"the server exited ({self.proc.returncode}):\n{self.tail()}")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/readyz")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise BenchError(f"the server was not ready after {timeout_s:.0f} s:\n{self.tail()}")

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


# ---------------------------------------------------------------- streams


@dataclass(slots=True)
class Stream:
    """One open stream on a raw socket: when each marked change arrived on it."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    seen: dict[int, float] = field(default_factory=dict)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def read(self) -> None:
        tail = b""
        while chunk := await self.reader.read(65536):
            now = time.perf_counter()
            buffer = tail + chunk
            for match in MARK.finditer(buffer):
                self.seen.setdefault(int(match.group(1)), now)
            tail = buffer[-64:]
            self.arrived.set()


async def open_stream(port: int, token: str) -> Stream:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        "GET /v1/alerts/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\nPatrolsync-Protocol: 1\r\n"
        "Accept: text/event-stream\r\n\r\n"
    )
    writer.write(head.encode("ascii"))
    await writer.drain()
    status = await reader.readline()
    if b" 200 " not in status:
        raise BenchError(f"a stream was refused: {status.decode(errors='replace').strip()}")
    return Stream(reader, writer)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure_pages(base_url: str, token: str) -> tuple[float | None, float | None]:
    """Server time per console page, p50 and p99 in ms: (None, None) until the console's pages
    exist. Time each page's GET here (a Jintai-sized district, every page several times)."""
    return None, None


async def run(opts: Options, server: Server, alert_id: int, token: str) -> dict[str, Any]:
    await server.wait_ready()
    log(f"opening {opts.streams} streams ...")
    streams = [await open_stream(server.port, token) for _ in range(opts.streams)]
    readers = [asyncio.create_task(s.read()) for s in streams]
    try:
        await asyncio.sleep(2.0)  # every catch-up done, the connections settled
        log(f"idle for {opts.idle_s:.0f} s ...")
        cpu, wall = server.cpu_s(), time.perf_counter()
        await asyncio.sleep(opts.idle_s)
        idle_cpu_pct = 100 * (server.cpu_s() - cpu) / (time.perf_counter() - wall)
        log(f"{opts.changes} changes, each to all {opts.streams} streams ...")
        delays: list[float] = []
        posts: list[float] = []
        firsts: list[float] = []
        headers = {**PROTOCOL, "Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as client:
            for n in range(opts.changes):
                body = msgspec.json.encode({"text": f"livebench#{n}#"})
                sent = time.perf_counter()
                reply = await client.post(f"/v1/alerts/{alert_id}/comments", content=body)
                posts.append(1000 * (time.perf_counter() - sent))
                if reply.status_code != 201:
                    raise BenchError(f"comment refused: {reply.status_code} {reply.text[:200]}")
                deadline = sent + 30
                while any(n not in s.seen for s in streams):
                    if time.perf_counter() > deadline:
                        missing = sum(n not in s.seen for s in streams)
                        raise BenchError(f"change {n} missing on {missing} streams after 30 s")
                    await asyncio.sleep(0.001)
                these = [1000 * (s.seen[n] - sent) for s in streams]
                delays.extend(these)
                firsts.append(min(these))
                await asyncio.sleep(0.2)
        page_p50, page_p99 = await measure_pages(server.base_url, token)
    finally:
        for task in readers:
            task.cancel()
        for s in streams:
            s.writer.close()
    return {
        "streams": opts.streams,
        "changes": opts.changes,
        "idle_s": opts.idle_s,
        "stream_idle_cpu_pct": round(idle_cpu_pct, 2),
        "stream_delay_p50_ms": round(statistics.median(delays), 1),
        "stream_delay_p99_ms": round(percentile(delays, 0.99), 1),
        "stream_delay_max_ms": round(max(delays), 1),
        "first_stream_p50_ms": round(statistics.median(firsts), 1),
        "comment_post_p50_ms": round(statistics.median(posts), 1),
        "page_p50_ms": page_p50,
        "page_p99_ms": page_p99,
        "backend": "postgresql",
    }


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    started = time.perf_counter()
    dsn, url = database_urls(opts.pg_admin, opts.db_name)
    del dsn
    log(f"recreating database {opts.db_name} ...")
    try:
        asyncio.run(recreate_database(opts.pg_admin, opts.db_name))
    except (OSError, asyncpg.PostgresError) as exc:
        log(f"cannot create database {opts.db_name} via {opts.pg_admin}: {exc}")
        return 2
    server: Server | None = None
    try:
        upgrade(Settings(database_url=url))
        alert_id, token = asyncio.run(prepare(url))
        server = Server(url, opts.streams)
        result = asyncio.run(run(opts, server, alert_id, token))
    except BenchError as exc:
        log(f"bench failed: {exc}")
        if server is not None:
            log(f"server log (tail):\n{server.tail()}")
        return 1
    finally:
        if server is not None:
            server.stop()
        if not opts.keep:
            try:
                asyncio.run(drop_database(opts.pg_admin, opts.db_name))
            except (OSError, asyncpg.PostgresError) as exc:
                log(f"could not drop database {opts.db_name}: {exc}")
    print()
    print(f"streams               {result['streams']} on one server process")
    print(f"stream_idle_cpu_pct   {result['stream_idle_cpu_pct']} % of one core, idle")
    print(f"stream_delay_p50_ms   {result['stream_delay_p50_ms']} (one change to every stream)")
    print(f"stream_delay_p99_ms   {result['stream_delay_p99_ms']}")
    print("page_p50_ms           null (the console's pages are not on this branch yet)")
    print("page_p99_ms           null")
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    line = json.dumps(result, separators=(",", ":"))
    if opts.json_out is not None:
        opts.json_out.write_text(line + "\n")
    print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
