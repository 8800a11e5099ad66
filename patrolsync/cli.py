"""The ``patrolsync`` command line."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy.ext.asyncio import AsyncConnection

from patrolsync import importer
from server import accounts, enrolment, urls
from server.clock import wall_ms
from server.db import make_engine
from server.errors import ApiError
from server.redact import mask_url
from server.settings import Settings, SettingsError, load
from server.store import auth as auth_store
from server.store import counter
from server.store import push as push_store
from server.tx import transaction
from sync.durations import DAY_MS, DAY_S

app = typer.Typer(
    help="patrolsync: offline-first sync for grid patrols.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals hold URLs with passwords, tokens, codes
)
console = Console(stderr=True)
T = TypeVar("T")
SAMPLE = Path(__file__).with_name("sample") / "district.yaml"


def _settings() -> Settings:
    try:
        return load()
    except SettingsError as exc:
        console.print(f"[red]configuration error:[/] {exc}")
        raise typer.Exit(2) from None


def _run(settings: Settings, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    async def main() -> T:
        engine = make_engine(settings)
        try:
            return await transaction(engine, work)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except (ApiError, importer.ImportError_) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None


@app.command()
def migrate() -> None:
    """Apply database migrations (alembic upgrade head)."""
    from server import migrate as migrations

    settings = _settings()
    migrations.upgrade(settings)
    console.print(f"migrated {mask_url(settings.database_url)}")


@app.command("import")
def import_(path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]) -> None:
    """Load units, workers, supervisors and households from a YAML (or households CSV) file."""
    settings = _settings()
    try:
        doc = importer.parse(path)
    except importer.ImportError_ as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    counts = _run(settings, lambda conn: importer.load(conn, doc))
    console.print("imported " + ", ".join(f"{n} {k}" for k, n in counts.items()))


@app.command()
def enrol(
    worker_id: str,
    ttl_days: Annotated[int, typer.Option(min=1, max=30)] = 7,
) -> None:
    """Issue a one-time enrolment code for a worker's device (printed on stdout)."""
    reply = _run(
        _settings(),
        lambda conn: enrolment.issue_code(conn, None, worker_id, ttl_days * DAY_S, wall_ms()),
    )
    print(reply.code)


@app.command("supervisor-token")
def supervisor_token(supervisor_id: str) -> None:
    """Issue a bearer token for a supervisor (printed on stdout)."""
    print(
        _run(_settings(), lambda conn: enrolment.supervisor_token(conn, supervisor_id, wall_ms()))
    )


@app.command("set-password")
def set_password(
    supervisor_id: str,
    stdin: Annotated[
        bool, typer.Option("--stdin", help="read the password from the first line of stdin")
    ] = False,
) -> None:
    """Set a supervisor's console password (asked twice without echo, or read with --stdin).

    The password is never printed; the supervisor's open console sessions end."""
    if stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        hashed = asyncio.run(accounts.hash_for(password))
    except ApiError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    del password
    _run(
        _settings(),
        lambda conn: accounts.set_password(conn, supervisor_id, hashed, wall_ms()),
    )
    console.print(f"password set for {supervisor_id}")


@app.command()
def revoke(device_id: str) -> None:
    """Revoke a device and all its tokens."""
    _run(_settings(), lambda conn: enrolment.revoke_device(conn, None, device_id, wall_ms()))
    console.print(f"revoked {device_id}")


@app.command("revoke-supervisor")
def revoke_supervisor(supervisor_id: str) -> None:
    """Revoke every token of a supervisor (issue a new one with supervisor-token)."""
    count = _run(
        _settings(), lambda conn: auth_store.revoke_supervisor(conn, supervisor_id, wall_ms())
    )
    console.print(f"revoked {count} token(s) of {supervisor_id}")


@app.command()
def prune(keep_days: Annotated[int, typer.Option(min=0)] = 30) -> None:
    """Forget tombstones older than KEEP_DAYS; older cursors will be told to re-bootstrap."""

    async def work(conn: AsyncConnection) -> tuple[int, tuple[int, int]]:
        count, top = await push_store.prune_tombstones(conn, wall_ms() - keep_days * DAY_MS)
        return count, await counter.raise_horizon(conn, top)

    count, horizon = _run(_settings(), work)
    console.print(f"pruned {count} tombstones; cursors before {horizon} must re-bootstrap")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    workers: Annotated[int, typer.Option(min=1, help="server processes")] = 1,
) -> None:
    """Run the HTTP server (uvicorn)."""
    import uvicorn

    from server.serving import GRACEFUL_SHUTDOWN_S, PROTOCOL

    settings = _settings()
    uvicorn.run(
        "server.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level=settings.log_level.lower(),
        access_log=False,
        http=PROTOCOL,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )


@app.command()
def worker(
    burst: Annotated[
        bool, typer.Option(help="relay the outbox, run queued jobs, then exit")
    ] = False,
    check: Annotated[
        bool, typer.Option(help="exit 0 if a worker of this queue is alive (health check)")
    ] = False,
) -> None:
    """Run the quota worker: arq jobs, the outbox relay, webhook delivery and the periodic
    sweep (needs Redis)."""
    from redis.exceptions import RedisError

    from worker import main as worker_main
    from worker import queue

    settings = _settings()
    if check:
        try:
            alive = asyncio.run(queue.healthy(settings.redis_url, settings.queue_name))
        except (RedisError, OSError):
            alive = False
        raise typer.Exit(0 if alive else 1)

    async def run_burst() -> int:
        engine = make_engine(settings)
        try:
            return await worker_main.burst(settings, engine)
        finally:
            await engine.dispose()

    if not burst:
        console.print(f"worker: queue {settings.queue_name!r} on {mask_url(settings.redis_url)}")
        try:
            asyncio.run(worker_main.run(settings))
        except KeyboardInterrupt:
            console.print("worker stopped")
        return
    try:
        relayed = asyncio.run(run_burst())
    except (RedisError, OSError) as exc:
        console.print(f"[red]redis unavailable:[/] {exc}; the requests wait in the outbox")
        raise typer.Exit(1) from None
    console.print(f"relayed {relayed} evaluation requests; the queue is empty")


@app.command()
def sweep() -> None:
    """Run every periodic sweep once (quota weeks, visit cadence, silent devices, escalation)."""
    from worker import sweep as sweeps

    settings = _settings()

    async def main() -> dict[str, int]:
        engine = make_engine(settings)
        try:
            return await sweeps.everything(engine, wall_ms())
        finally:
            await engine.dispose()

    figures = asyncio.run(main())
    console.print("alert events: " + ", ".join(f"{k} {v}" for k, v in figures.items()))


@app.command()
def sample(
    serve_after: Annotated[bool, typer.Option("--serve/--no-serve")] = True,
    port: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Migrate the configured database, load the sample district, print credentials, serve."""
    settings = _settings()
    migrate()
    doc = importer.parse(SAMPLE)
    _run(settings, lambda conn: importer.load(conn, doc))
    code = _run(
        settings, lambda conn: enrolment.issue_code(conn, None, "w-zhang", DAY_S, wall_ms())
    ).code
    token = _run(settings, lambda conn: enrolment.supervisor_token(conn, "s-xinhua", wall_ms()))
    base = f"http://{settings.host}:{port or settings.port}"
    console.print(
        f"[bold]patrolsync[/] sample district loaded into {mask_url(settings.database_url)}"
    )
    console.print(f"  enrolment code for worker w-zhang (张伟): [bold]{code}[/]")
    console.print(f"  supervisor token for s-xinhua (新华社区): {token}", soft_wrap=True)
    console.print(f"  handshake:  {base}/v1/sync/config")
    console.print(f"  API docs:   {base}/schema")
    console.print(f"  metrics:    {base}/metrics")
    if serve_after:
        serve(host=None, port=port, workers=1)


@app.command()
def simulate(
    url: Annotated[str, typer.Option(help="the running server")] = "http://127.0.0.1:8000",
    quick: Annotated[bool, typer.Option(help="a small district instead of Jintai's shape")] = False,
    seed: Annotated[int, typer.Option(help="the district and its week")] = 2026,
    fault_seed: Annotated[int, typer.Option(help="the network's faults")] = 1,
) -> None:
    """Import a simulated district into the configured database and play last week's fleet
    against the server at --url (the worker, running separately, judges it). Prints the truth
    to compare with GET /v1/alerts."""
    from client import simulate as sim
    from patrolsync import demo as demos

    settings = _settings()

    async def main() -> tuple[Any, Any, Any]:
        engine = make_engine(settings)
        try:
            shape = demos.QUICK if quick else sim.JINTAI
            doc, week, token = await demos.prepare(engine, shape, seed)
        finally:
            await engine.dispose()
        phones, truth = sim.plan_week(doc, week.start_ms, seed=seed)
        result = await demos.play(url, token, phones, fault_seed, console)
        overdue = sim.overdue_at(doc, phones, truth, wall_ms())
        return result, truth.missed, overdue

    try:
        result, missed, overdue = asyncio.run(main())
    except httpx.HTTPError as exc:
        console.print(f"[red]simulate:[/] the server at {mask_url(url)} did not answer: {exc}")
        raise typer.Exit(1) from None
    console.print(
        f"{result.phones} phones synced {result.checkins} check-ins and {result.notes} note"
        f" edits ({result.replies_lost} replies lost, {result.duplicates_absorbed} absorbed)"
    )
    console.print(f"truth: {len(missed)} workers missed the quota: {' '.join(sorted(missed))}")
    console.print(
        f"truth: {len(overdue)} high-risk households overdue now: {' '.join(sorted(overdue))}"
    )


@app.command()
def demo(
    quick: Annotated[bool, typer.Option(help="a small district (about half a minute)")] = False,
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="keep serving after the check")
    ] = True,
    port: Annotated[int | None, typer.Option()] = None,
    postgres: Annotated[
        str | None, typer.Option(help="an empty PostgreSQL database URL instead of SQLite")
    ] = None,
    redis: Annotated[str | None, typer.Option(help="a Redis URL instead of embedded Redis")] = None,
    weeks: Annotated[
        int, typer.Option(min=1, max=12, help="past weeks played, in compressed time")
    ] = 4,
) -> None:
    """The whole system: server, worker and a simulated fleet's weeks, checked against the truth.

    Prints a summary and, last, one JSON line; exits 0 only when the alerts equal the truth.
    """
    import json

    from patrolsync import demo as demos

    settings = _settings().with_(log_level="WARNING")
    try:  # the options take the URL forms the settings take, read by the same code
        if postgres:
            settings = settings.with_(
                database_url=urls.database_url(postgres, setting="--postgres")
            )
        if redis:
            urls.redis_target(redis, setting="--redis")
    except urls.UrlError as exc:
        console.print(f"[red]configuration error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    if not postgres:
        for leftover in demos.DEMO_DB.parent.glob(demos.DEMO_DB.name + "*"):
            leftover.unlink()
        settings = settings.with_(database_url=f"sqlite+aiosqlite:///{demos.DEMO_DB}")
    settings = settings.with_(redis_url=redis or "embedded")

    async def keep_serving(base: str, token: str) -> None:
        console.print(f"  supervisor token (whole district): {token}", soft_wrap=True)
        console.print(f"  alerts:     {base}/v1/alerts   (Authorization: Bearer <token>)")
        console.print(f"  compliance: {base}/v1/compliance?format=csv")
        console.print(f"  API docs:   {base}/schema")
        console.print("serving; Ctrl-C stops the server and the worker")
        await asyncio.Event().wait()

    try:
        outcome = asyncio.run(
            demos.run(
                settings,
                quick=quick,
                port=port or settings.port,
                console=console,
                weeks=weeks,
                serve=keep_serving if serve_after else None,
            )
        )
    except KeyboardInterrupt:
        console.print("stopped")
        return
    except demos.DemoError as exc:
        console.print(f"[red]demo:[/] {exc}")
        raise typer.Exit(1) from None
    typer.echo(json.dumps(outcome.figures))
    raise typer.Exit(0 if outcome.ok else 1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
