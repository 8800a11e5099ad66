"""The ``patrolsync`` command line.

Importing this module loads Typer and the settings' definition only, so ``--help`` answers at
once; each command imports what it needs when it runs (a test keeps the server's framework, the
database libraries and the worker out of ``import patrolsync.cli``). Operator errors print one
line and exit with a status of :class:`patrolsync.failures.Status`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from patrolsync import envhelp, failures
from patrolsync.failures import OperatorError, Status
from server.redact import mask_url
from server.settings import Settings, SettingsError, load
from sync.durations import DAY_MS, DAY_S

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

app = typer.Typer(
    help="patrolsync: offline-first sync for grid patrols.",
    epilog="Settings are environment variables (PATROLSYNC_*); each command's --help lists the"
    " ones it reads, with their defaults. Exit status: 0 done; 1 refused (unknown id, bad file);"
    " 2 usage or a setting's value; 3 database or Redis unreachable; 4 database missing or not"
    " migrated (docs/operations.md §3).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals hold URLs with passwords, tokens, codes
)
console = Console(stderr=True)
T = TypeVar("T")
SAMPLE = Path(__file__).with_name("sample") / "district.yaml"
DB = envhelp.epilog(envhelp.DATABASE)


def _version(value: bool) -> None:
    if value:
        from server import version

        typer.echo(f"patrolsync {version.current()}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    pass


def _fail(status: Status, message: str) -> NoReturn:
    console.print(f"[red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(status)


def _settings() -> Settings:
    try:
        return load()
    except SettingsError as exc:
        console.print(f"[red]configuration error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(Status.CONFIG) from None


@contextmanager
def _operator_errors(settings: Settings) -> Iterator[None]:
    """Failures to reach or open the database (or an :class:`OperatorError`) as one line."""
    from sqlalchemy.exc import DBAPIError

    try:
        yield
    except OperatorError as exc:
        _fail(exc.status, str(exc))
    except (DBAPIError, OSError, TimeoutError) as exc:
        error = failures.database_error(exc, settings)
        _fail(error.status, str(error))


def _on_engine(settings: Settings, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    """Run ``work`` on a migrated database (else one line and exit 3 or 4); the request's own
    refusals (unknown ids, a bad import file) exit 1."""
    import asyncio

    from patrolsync import importer
    from server.db import make_engine
    from server.errors import ApiError

    async def main() -> T:
        engine = make_engine(settings)
        try:
            await failures.require_migrated(engine, settings)
            return await work(engine)
        finally:
            await engine.dispose()

    with _operator_errors(settings):
        failures.require_sqlite_file(settings)
        try:
            return asyncio.run(main())
        except (ApiError, importer.ImportError_) as exc:
            _fail(Status.REFUSED, str(exc))


def _run(settings: Settings, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """``work`` in one transaction (see :func:`_on_engine`)."""
    from server.tx import transaction

    return _on_engine(settings, lambda engine: transaction(engine, work))


@app.command(epilog=envhelp.epilog(envhelp.DATABASE[:1]))
def migrate() -> None:
    """Apply database migrations (alembic upgrade head).

    Creates a SQLite file that does not exist yet (its folder must exist)."""
    import asyncio

    from server import logs
    from server import migrate as migrations
    from server.db import make_engine

    settings = _settings()
    logs.configure(settings.log_level, settings.log_json)  # alembic's lines go through it

    async def reachable() -> None:
        engine = make_engine(settings)
        try:
            await failures.revision(engine, settings)
        finally:
            await engine.dispose()

    with _operator_errors(settings):
        failures.require_sqlite_folder(settings)
        path = failures.sqlite_file(settings)
        if path is not None and not path.exists():
            console.print(f"creating the SQLite database {path}")
        asyncio.run(reachable())
        migrations.upgrade(settings)
    console.print(f"migrated {mask_url(settings.database_url)}")


@app.command("import", epilog=DB)
def import_(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    encoding: Annotated[
        str | None,
        typer.Option(help="of a CSV file (default: UTF-8, with or without BOM, or GB18030/GBK)"),
    ] = None,
    batch: Annotated[
        int, typer.Option(min=1, max=100_000, help="households committed per transaction")
    ] = 5_000,
) -> None:
    """Load units, workers, supervisors and households from a YAML (or households CSV) file.

    Households are written in batches, each committed as it goes (importing the file again
    after a stop converges); a CSV may name its columns in English or Chinese (户编号, 网格, 楼栋,
    地址, 户主, 标签, 关爱等级)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    from patrolsync import importer

    settings = _settings()
    size = path.stat().st_size
    columns = (*Progress.get_default_columns()[:1], BarColumn(), DownloadColumn())
    with Progress(*columns, TimeRemainingColumn(), console=console, transient=True) as bar:
        job = bar.add_task(f"importing {path.name}", total=size)

        def moved(done: int) -> None:
            bar.update(job, completed=done)

        counts = _on_engine(
            settings,
            lambda engine: importer.import_file(
                engine, path, encoding=encoding, batch=batch, progress=moved
            ),
        )
    console.print("imported " + ", ".join(f"{n} {k}" for k, n in counts.items()))


@app.command(epilog=DB)
def enrol(
    worker_id: str,
    ttl_days: Annotated[int, typer.Option(min=1, max=30)] = 7,
) -> None:
    """Issue a one-time enrolment code for a worker's device (printed on stdout)."""
    from server import enrolment
    from server.clock import wall_ms

    reply = _run(
        _settings(),
        lambda conn: enrolment.issue_code(conn, None, worker_id, ttl_days * DAY_S, wall_ms()),
    )
    print(reply.code)


@app.command("supervisor-token", epilog=DB)
def supervisor_token(supervisor_id: str) -> None:
    """Issue a bearer token for a supervisor (printed on stdout)."""
    from server import enrolment
    from server.clock import wall_ms

    print(
        _run(_settings(), lambda conn: enrolment.supervisor_token(conn, supervisor_id, wall_ms()))
    )


@app.command("set-password", epilog=DB)
def set_password(
    supervisor_id: str,
    stdin: Annotated[
        bool, typer.Option("--stdin", help="read the password from the first line of stdin")
    ] = False,
) -> None:
    """Set a supervisor's console password (asked twice without echo, or read with --stdin).

    The password is never printed; the supervisor's open console sessions end."""
    import asyncio

    from server import accounts
    from server.clock import wall_ms
    from server.errors import ApiError

    if stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        hashed = asyncio.run(accounts.hash_for(password))
    except ApiError as exc:
        _fail(Status.REFUSED, str(exc))
    del password
    _run(
        _settings(),
        lambda conn: accounts.set_password(conn, supervisor_id, hashed, wall_ms()),
    )
    console.print(f"password set for {supervisor_id}")


@app.command(epilog=DB)
def revoke(device_id: str) -> None:
    """Revoke a device and all its tokens."""
    from server import enrolment
    from server.clock import wall_ms

    _run(_settings(), lambda conn: enrolment.revoke_device(conn, None, device_id, wall_ms()))
    console.print(f"revoked {device_id}")


@app.command("revoke-supervisor", epilog=DB)
def revoke_supervisor(supervisor_id: str) -> None:
    """Revoke every token of a supervisor (issue a new one with supervisor-token)."""
    from server import enrolment
    from server.clock import wall_ms

    count = _run(
        _settings(), lambda conn: enrolment.revoke_supervisor(conn, supervisor_id, wall_ms())
    )
    console.print(f"revoked {count} token(s) of {supervisor_id}")


@app.command("grant-unit", epilog=DB)
def grant_unit(supervisor_id: str, unit_id: str) -> None:
    """Let a supervisor supervise a further unit: they then see the union of the subtrees
    (a city office given two districts of another city, a secretary given a second community)."""
    from server import enrolment
    from server.clock import wall_ms

    added = _run(
        _settings(), lambda conn: enrolment.grant_unit(conn, supervisor_id, unit_id, wall_ms())
    )
    if added:
        console.print(f"granted {unit_id} to {supervisor_id}")
    else:
        console.print(f"{supervisor_id} already supervises {unit_id}")


@app.command("withdraw-unit", epilog=DB)
def withdraw_unit(supervisor_id: str, unit_id: str) -> None:
    """Take back a unit granted with grant-unit (a supervisor's own unit comes from the import)."""
    from server import enrolment

    _run(_settings(), lambda conn: enrolment.withdraw_unit(conn, supervisor_id, unit_id))
    console.print(f"withdrew {unit_id} from {supervisor_id}")


@app.command(epilog=DB)
def prune(keep_days: Annotated[int, typer.Option(min=0)] = 30) -> None:
    """Forget tombstones older than KEEP_DAYS; older cursors will be told to re-bootstrap."""
    from server.clock import wall_ms
    from server.store import counter
    from server.store import push as push_store

    async def work(conn: AsyncConnection) -> tuple[int, tuple[int, int]]:
        count, top = await push_store.prune_tombstones(conn, wall_ms() - keep_days * DAY_MS)
        return count, await counter.raise_horizon(conn, top)

    count, horizon = _run(_settings(), work)
    console.print(f"pruned {count} tombstones; cursors before {horizon} must re-bootstrap")


def _not_ready(settings: Settings) -> str | None:
    """Why the database is not ready yet (unreachable, not migrated), or None."""
    import asyncio

    from server.db import make_engine

    async def check() -> None:
        engine = make_engine(settings)
        try:
            await failures.require_migrated(engine, settings)
        finally:
            await engine.dispose()

    try:
        asyncio.run(check())
    except OperatorError as exc:
        return str(exc)
    return None


@app.command(epilog=envhelp.epilog(envhelp.SERVER))
def serve(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    workers: Annotated[int, typer.Option(min=1, help="server processes")] = 1,
) -> None:
    """Run the HTTP server (uvicorn).

    A SQLite file must exist (`patrolsync migrate` creates it). A database that is unreachable
    or not migrated is reported, and /readyz answers 503 until it is fixed. With --workers N
    above 1, /metrics sums the metrics of all N processes."""
    import uvicorn

    from server import logs
    from server.serving import (
        GRACEFUL_SHUTDOWN_S,
        MULTIPROC_ENV,
        PROTOCOL,
        multiprocess_metrics,
        run_processes,
    )

    settings = _settings()
    logs.configure(settings.log_level, settings.log_json)  # uvicorn's lines go through it too
    host, port = host or settings.host, port or settings.port
    with _operator_errors(settings):
        failures.require_sqlite_file(settings)
        failures.require_port_free(host, port)
    problem = _not_ready(settings)
    if problem is not None:
        console.print(f"[yellow]warning:[/] {escape(problem)}; serving anyway", soft_wrap=True)
    options: dict[str, Any] = {
        "factory": True,
        "host": host,
        "port": port,
        "workers": workers,
        "log_level": settings.log_level.lower(),
        "log_config": None,  # uvicorn's loggers left to the product's pipeline (server.logs)
        "access_log": False,  # the product writes its own (server.access)
        "http": PROTOCOL,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_S,
    }
    if workers > 1:  # the processes' metrics summed in prometheus-client's multiprocess mode
        run_processes(uvicorn.Config("server.app:create_app", **options))
    elif os.environ.get(MULTIPROC_ENV):  # the operator's folder, emptied of earlier runs
        with multiprocess_metrics():
            uvicorn.run("server.app:create_app", **options)
    else:
        uvicorn.run("server.app:create_app", **options)


@app.command(epilog=envhelp.epilog(envhelp.WORKER))
def worker(
    burst: Annotated[
        bool, typer.Option(help="relay the outbox, run queued jobs, then exit")
    ] = False,
    check: Annotated[
        bool, typer.Option(help="exit 0 if a worker of this queue is alive (health check)")
    ] = False,
) -> None:
    """Run the quota worker: jobs, outbox relay, webhook delivery, periodic sweep.

    Needs Redis, and waits for it while it is down. A SQLite file must exist; a database that is
    unreachable or not migrated is reported."""
    import asyncio

    from redis.exceptions import RedisError

    from server import logs
    from worker import main as worker_main
    from worker import metrics, queue

    settings = _settings()
    logs.configure(settings.log_level, settings.log_json)  # arq's lines go through it too
    if check:
        try:
            alive = asyncio.run(queue.healthy(settings.redis_url, settings.queue_name))
        except (RedisError, OSError):
            alive = False
        raise typer.Exit(Status.OK if alive else Status.REFUSED)
    if not burst:
        with _operator_errors(settings):
            failures.require_sqlite_file(settings)
        problem = _not_ready(settings)
        if problem is not None:
            console.print(f"[yellow]warning:[/] {escape(problem)}; starting anyway", soft_wrap=True)
        console.print(f"worker: queue {settings.queue_name!r} on {mask_url(settings.redis_url)}")
        try:
            asyncio.run(worker_main.run(settings))
        except KeyboardInterrupt:
            console.print("worker stopped")
        except metrics.PortUnavailable as exc:
            _fail(Status.CONFIG, str(exc))
        return

    async def run_burst(engine: AsyncEngine) -> int:
        try:
            return await worker_main.burst(settings, engine)
        except (RedisError, ConnectionError) as exc:
            raise failures.redis_error(exc, settings, "the requests wait in the outbox") from None

    relayed = _on_engine(settings, run_burst)
    console.print(f"relayed {relayed} evaluation requests; the queue is empty")


@app.command(epilog=DB)
def sweep() -> None:
    """Run every periodic sweep once (quota weeks, visit cadence, silent devices, escalation)."""
    from server.clock import wall_ms
    from worker import sweep as sweeps

    figures = _on_engine(_settings(), lambda engine: sweeps.everything(engine, wall_ms()))
    console.print("alert events: " + ", ".join(f"{k} {v}" for k, v in figures.items()))


@app.command(epilog=envhelp.epilog(envhelp.SERVER))
def sample(
    serve_after: Annotated[bool, typer.Option("--serve/--no-serve")] = True,
    port: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Migrate the configured database, load the sample district, print credentials, serve."""
    from patrolsync import importer
    from server import enrolment
    from server.clock import wall_ms

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


@app.command(epilog=DB)
def simulate(
    url: Annotated[str, typer.Option(help="the running server")] = "http://127.0.0.1:8000",
    quick: Annotated[bool, typer.Option(help="a small district instead of Jintai's shape")] = False,
    seed: Annotated[int, typer.Option(help="the district and its week")] = 2026,
    fault_seed: Annotated[int, typer.Option(help="the network's faults")] = 1,
) -> None:
    """Import a simulated district and play last week's fleet against the server at --url.

    The worker, running separately, judges it. Prints the truth to compare with
    GET /v1/alerts."""
    import httpx

    from client import simulate as sim
    from patrolsync import demo as demos
    from server.clock import wall_ms

    settings = _settings()

    async def main(engine: AsyncEngine) -> tuple[Any, Any, Any]:
        shape = demos.QUICK if quick else sim.JINTAI
        doc, week, token = await demos.prepare(engine, shape, seed)
        await engine.dispose()
        phones, truth = sim.plan_week(doc, week.start_ms, seed=seed)
        result = await demos.play(url, token, phones, fault_seed, console)
        overdue = sim.overdue_at(doc, phones, truth, wall_ms())
        return result, truth.missed, overdue

    try:
        result, missed, overdue = _on_engine(settings, main)
    except httpx.HTTPError as exc:
        _fail(Status.UNREACHABLE, f"simulate: the server at {mask_url(url)} did not answer: {exc}")
    console.print(
        f"{result.phones} phones synced {result.checkins} check-ins and {result.notes} note"
        f" edits ({result.replies_lost} replies lost, {result.duplicates_absorbed} absorbed)"
    )
    console.print(f"truth: {len(missed)} workers missed the quota: {' '.join(sorted(missed))}")
    console.print(
        f"truth: {len(overdue)} high-risk households overdue now: {' '.join(sorted(overdue))}"
    )


@app.command(epilog=envhelp.epilog(envhelp.EVERYTHING))
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
    fault_seed: Annotated[
        int, typer.Option(help="the network's faults (any seed ends in the same state)")
    ] = 2026,
) -> None:
    """The whole system: server, worker and a simulated fleet's weeks, checked against the truth.

    Prints a summary and, last, one JSON line; exits 0 only when the alerts equal the truth.
    """
    import asyncio
    import json

    from patrolsync import demo as demos
    from server import urls

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
                fault_seed=fault_seed,
            )
        )
    except KeyboardInterrupt:
        console.print("stopped")
        return
    except asyncio.CancelledError:  # SIGTERM: stopped from outside, cleaned up
        console.print("stopped (terminated)")
        raise typer.Exit(143) from None
    except demos.DemoError as exc:
        console.print(f"[red]demo:[/] {exc}")
        raise typer.Exit(1) from None
    typer.echo(json.dumps(outcome.figures))
    raise typer.Exit(0 if outcome.ok else 1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
