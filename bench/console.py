"""Console benchmark: live alert streams and console page timings on one server process.

A measurement, never a test: it fails only when the server answers wrongly (a stream refused,
an event missing from a stream), never on a missed target.

1. Setup (untimed): a fresh PostgreSQL database, migrations, Jintai's district with a week of
   patrols, judged (``bench/supervisor_reads.py``'s builder, for the pages), a random console
   password for its supervisor (never printed), the sample district, one open alert (written
   through the store, as the worker writes it), a street supervisor's token (for the streams),
   and the server started as a subprocess (``python -m patrolsync.cli serve``, one process).
2. Streams: ``--streams`` (500) clients open ``GET /v1/alerts/stream`` over real HTTP (raw
   sockets, so the client's own cost stays small) and read everything the server sends.
3. Idle: for ``--idle-s`` seconds nothing changes; ``stream_idle_cpu_pct`` is the server
   process's CPU over that window, in percent of one core (what the open streams cost).
4. Delay: ``--changes`` times, one comment on the alert (``POST /v1/alerts/{id}/comments``, one
   alert event); the delay of each change to each stream is from just before the POST is sent
   to the moment that stream has received the event. ``stream_delay_p50_ms`` /
   ``stream_delay_p99_ms`` are percentiles over every (change, stream) pair.
5. Pages (the streams still open, idle): Jintai's supervisor logs in through the form (CSRF
   token, session cookie), then each console page (:func:`console_pages`: the overview of the
   district, a street, a community and a grid; the log-in form) is requested ``--page-repeat``
   times in turn over one keep-alive connection, after one untimed warm-up request each. A
   page's time is from sending the GET to having read the whole reply on loopback, i.e. the
   server's time plus a local round trip; every reply must be 200 with the page's unit name.
   ``pages`` holds p50/p99 per page; ``page_p50_ms`` / ``page_p99_ms`` are over every GET of
   the pages that need the session (all but the log-in form).

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
import secrets
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
from bench.supervisor_reads import build
from patrolsync import importer
from patrolsync.cli import SAMPLE
from rules.findings import Finding
from server import accounts, enrolment
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
    page_repeat: int
    seed: int


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
    p.add_argument("--page-repeat", type=int, default=None, help="GETs per page (20; quick 5)")
    p.add_argument("--seed", type=int, default=2026, help="Jintai's district and its week")
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
        page_repeat=a.page_repeat if a.page_repeat is not None else (5 if a.quick else 20),
        seed=a.seed,
    )


# ---------------------------------------------------------------- setup


LOGIN_FORM = "login form"
"""Timed too, but left out of ``page_p50_ms`` / ``page_p99_ms`` (it needs no session)."""


@dataclass(frozen=True, slots=True)
class Pages:
    """What the page timings need: who logs in, and the pages (name → path, unit name)."""

    supervisor_id: str
    password: str = field(repr=False)
    pages: dict[str, tuple[str, str]] = field(default_factory=dict)
    workers: int = 0
    households: int = 0
    patrols: int = 0


def _tree(units: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for u in units:
        out.append(u)
        out.extend(_tree(u.get("children", [])))
    return out


def console_pages(doc: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """The console's pages on this branch, for Jintai's district: name → (path, a text the
    page must show). A new page module adds its line here."""
    tree = _tree(doc["units"])
    first = {kind: next(u for u in tree if u["kind"] == kind) for kind in ("street", "community")}
    grid = next(u for u in tree if u["kind"] == "grid")
    root = doc["units"][0]
    return {
        "overview(district)": ("/", root["name"]),
        "overview(street)": (f"/units/{first['street']['id']}", first["street"]["name"]),
        "overview(community)": (f"/units/{first['community']['id']}", first["community"]["name"]),
        "overview(grid)": (f"/units/{grid['id']}", grid["name"]),
        LOGIN_FORM: ("/login", 'name="csrf"'),
    }


async def prepare_pages(url: str, seed: int) -> Pages:
    """Jintai's district with a week of patrols, judged, and a console password for its
    district supervisor."""
    engine = make_engine(Settings(database_url=url, log_level="WARNING"))
    try:
        built = await build(engine, seed=seed, now=int(time.time() * 1000))
        root = built.doc["units"][0]["id"]
        supervisor = next(s["id"] for s in built.doc["supervisors"] if s["unit"] == root)
        password = secrets.token_urlsafe(16)
        hashed = await accounts.hash_for(password)
        await transaction(
            engine,
            lambda c: accounts.set_password(c, supervisor, hashed, int(time.time() * 1000)),
        )
        return Pages(
            supervisor,
            password,
            console_pages(built.doc),
            workers=len(built.doc["workers"]),
            households=len(built.doc["households"]),
            patrols=built.patrols,
        )
    finally:
        await engine.dispose()


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
            return events[0].alert_id

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


async def measure_pages(base_url: str, pages: Pages, repeat: int) -> dict[str, Any]:
    """Each page's time in ms over ``repeat`` GETs with a logged-in session: per page
    ``{"p50_ms", "p99_ms", "max_ms", "bytes"}``, and ``all`` over every timed GET of a page
    that needs the session (all but :data:`LOGIN_FORM`)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        form = await client.get("/login")
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', form.text)
        if form.status_code != 200 or csrf is None:
            raise BenchError(f"no log-in form: {form.status_code}")
        data = {"csrf": csrf[1], "supervisor_id": pages.supervisor_id, "password": pages.password}
        reply = await client.post("/login", data=data)
        if reply.status_code != 303:
            raise BenchError(f"log-in refused: {reply.status_code}")

        async def get(path: str, must_show: str) -> tuple[float, int]:
            sent = time.perf_counter()
            got = await client.get(path)
            took = 1000 * (time.perf_counter() - sent)
            if got.status_code != 200 or must_show not in got.text:
                raise BenchError(f"GET {path}: {got.status_code}, {must_show!r} not shown")
            return took, len(got.content)

        for path, must_show in pages.pages.values():
            await get(path, must_show)  # warm-up, untimed
        times: dict[str, list[float]] = {name: [] for name in pages.pages}
        sizes: dict[str, int] = {}
        for _ in range(repeat):
            for name, (path, must_show) in pages.pages.items():
                took, sizes[name] = await get(path, must_show)
                times[name].append(took)
    out: dict[str, Any] = {
        name: {
            "p50_ms": round(statistics.median(ts), 1),
            "p99_ms": round(percentile(ts, 0.99), 1),
            "max_ms": round(max(ts), 1),
            "bytes": sizes[name],
        }
        for name, ts in times.items()
    }
    every = [t for name, ts in times.items() if name != LOGIN_FORM for t in ts]
    out["all"] = {
        "p50_ms": round(statistics.median(every), 1),
        "p99_ms": round(percentile(every, 0.99), 1),
    }
    return out


async def run(
    opts: Options, server: Server, alert_id: int, token: str, pages: Pages
) -> dict[str, Any]:
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
        log(f"{len(pages.pages)} console pages, {opts.page_repeat} times each ...")
        timed = await measure_pages(server.base_url, pages, opts.page_repeat)
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
        "page_p50_ms": timed["all"]["p50_ms"],
        "page_p99_ms": timed["all"]["p99_ms"],
        "page_repeat": opts.page_repeat,
        "pages": {k: v for k, v in timed.items() if k != "all"},
        "workers": pages.workers,
        "households": pages.households,
        "patrols": pages.patrols,
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
        log("building Jintai's district with a week of patrols ...")
        pages = asyncio.run(prepare_pages(url, opts.seed))
        alert_id, token = asyncio.run(prepare(url))
        server = Server(url, opts.streams)
        result = asyncio.run(run(opts, server, alert_id, token, pages))
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
    print(f"page_p50_ms           {result['page_p50_ms']} (every console page, logged in)")
    print(f"page_p99_ms           {result['page_p99_ms']}")
    for name, figures in result["pages"].items():
        print(f"  {name:<22}  p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms")
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    line = json.dumps(result, separators=(",", ":"))
    if opts.json_out is not None:
        opts.json_out.write_text(line + "\n")
    print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
