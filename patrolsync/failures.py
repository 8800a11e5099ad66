"""Operator errors: one line each — what is wrong, which setting, what to do — and the exit
status from one table (``docs/operations.md`` §3 lists the same)."""

from __future__ import annotations

from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING

from server.redact import mask_url
from server.settings import PREFIX, Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

CONNECT_TIMEOUT_S = 10
"""A command gives up on a database that has not answered within this many seconds."""
DATABASE_VAR = f"{PREFIX}DATABASE_URL"
REDIS_VAR = f"{PREFIX}REDIS_URL"


class Status(IntEnum):
    """Exit statuses of every command."""

    OK = 0
    REFUSED = 1
    """The request was refused: an unknown id, an invalid import file, a failed check."""
    CONFIG = 2
    """A usage error or a setting with a bad value (the message names the variable)."""
    UNREACHABLE = 3
    """The database or Redis cannot be reached, or refused the connection."""
    NOT_READY = 4
    """The database does not exist yet or is not migrated: ``patrolsync migrate``."""


class OperatorError(Exception):
    """A failure an operator fixes; ``str()`` is the whole one-line message."""

    def __init__(self, status: Status, message: str) -> None:
        super().__init__(message)
        self.status = status


def sqlite_file(settings: Settings) -> Path | None:
    """The SQLite database's file (relative to the working directory), or None (PostgreSQL, or
    an in-memory database)."""
    if not settings.is_sqlite:
        return None
    from sqlalchemy.engine import make_url

    name = make_url(settings.database_url).database
    return Path(name) if name and name != ":memory:" else None


def require_sqlite_file(settings: Settings) -> None:
    """Refuse to work on a SQLite file that does not exist: connecting would create an empty
    one, and a mistyped path would then look like a database that lost everything."""
    path = sqlite_file(settings)
    if path is not None and not path.exists():
        raise OperatorError(
            Status.NOT_READY,
            f"the SQLite database {path.absolute()} does not exist ({DATABASE_VAR}): "
            "check the path, or run `patrolsync migrate` to create it",
        )


def require_port_free(host: str, port: int, *, variable: str | None = f"{PREFIX}PORT") -> None:
    """Refuse a port something already listens on, before any work, in one line (the server
    would otherwise die with a raw ``[Errno 98]`` once it had started). The probe binds the way
    the server will (``SO_REUSEADDR``), so a port only left in TIME_WAIT counts as free."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise OperatorError(
            Status.CONFIG, f"the host {host!r} ({PREFIX}HOST or --host) is not a known address"
        ) from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            where = f"--port or {variable}" if variable else "--port"
            raise OperatorError(
                Status.CONFIG,
                f"cannot listen on {host}:{port} ({exc.strerror or exc}; {where}):"
                " pass --port N with a free port, or stop what listens there",
            ) from None


def require_sqlite_folder(settings: Settings) -> None:
    path = sqlite_file(settings)
    if path is not None and not path.absolute().parent.is_dir():
        raise OperatorError(
            Status.UNREACHABLE,
            f"the folder {path.absolute().parent} of the SQLite database does not exist "
            f"({DATABASE_VAR}): create it, or correct the path",
        )


async def revision(engine: AsyncEngine, settings: Settings) -> str | None:
    """Connect (within ``CONNECT_TIMEOUT_S``) and read the database's migration (None: never
    migrated); a failure to connect becomes an :class:`OperatorError`."""
    import asyncio

    from server.store import health
    from server.tx import read

    try:
        return await asyncio.wait_for(read(engine, health.revision), CONNECT_TIMEOUT_S)
    except Exception as exc:
        raise database_error(exc, settings) from None


async def require_migrated(engine: AsyncEngine, settings: Settings) -> None:
    """The database answers and is at this code's migration, or an :class:`OperatorError`."""
    from server.migrate import head_revision

    found = await revision(engine, settings)
    expected = head_revision()
    if found != expected:
        where = f"the database {mask_url(settings.database_url)}"
        state = "was never migrated" if found is None else f"is at migration {found}"
        raise OperatorError(
            Status.NOT_READY,
            f"{where} {state}, this version needs {expected} ({DATABASE_VAR}): "
            "run `patrolsync migrate` (or check the URL)",
        )


def database_error(exc: BaseException, settings: Settings) -> OperatorError:
    """The one line for a failure to reach or open the database (any other error as is)."""
    from sqlalchemy.exc import DBAPIError

    where = f"the database {mask_url(settings.database_url)} ({DATABASE_VAR})"
    if isinstance(exc, OperatorError):
        return exc
    if isinstance(exc, TimeoutError):
        return OperatorError(
            Status.UNREACHABLE,
            f"{where} did not answer within {CONNECT_TIMEOUT_S} s: check the host and port, "
            "and that PostgreSQL is running",
        )
    if isinstance(exc, DBAPIError):
        driver = exc.orig.__cause__ or exc.orig if exc.orig is not None else exc
        said = (str(driver).strip().splitlines() or [type(driver).__name__])[0]
        state = getattr(driver, "sqlstate", None)
        if state in {"28P01", "28000"}:
            advice = "check the user and password in the URL"
        elif state == "3D000":
            advice = "create the database (createdb), or correct its name in the URL"
        elif "unable to open database file" in said:
            advice = "check that its folder exists and can be written"
        else:
            advice = "check the URL and the database's log"
        return OperatorError(Status.UNREACHABLE, f"{where} refused: {said}: {advice}")
    if isinstance(exc, OSError):
        said = exc.strerror or str(exc) or type(exc).__name__
        return OperatorError(
            Status.UNREACHABLE,
            f"cannot connect to {where}: {said}: check the host and port, and that PostgreSQL "
            "is running",
        )
    raise exc


def redis_error(exc: BaseException, settings: Settings, meanwhile: str) -> OperatorError:
    return OperatorError(
        Status.UNREACHABLE,
        f"Redis {mask_url(settings.redis_url)} is unavailable ({REDIS_VAR}): {exc}; "
        f"{meanwhile}; check the URL and that Redis is running",
    )
