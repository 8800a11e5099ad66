"""The database's and Redis's URLs, in every form an operator may write, read in one place.

Database (``PATROLSYNC_DATABASE_URL``), normalised by :func:`database_url`:

- ``postgresql://``, ``postgres://`` and ``postgresql+asyncpg://`` become
  ``postgresql+asyncpg://`` (the only PostgreSQL driver shipped); libpq's ``sslmode=`` query
  parameter becomes asyncpg's ``ssl=`` (same values: ``disable`` … ``verify-full``);
- ``sqlite://`` and ``sqlite+aiosqlite://`` become ``sqlite+aiosqlite://``.

Redis (``PATROLSYNC_REDIS_URL``), read by :func:`redis_target` for everything that connects to
Redis (the worker, its relay, the health check, the demo's wait for the worker):

- ``redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]``, ``rediss://`` the same over TLS,
  ``unix:///PATH/redis.sock[?db=DB]``;
- ``redis+sentinel://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]/SERVICE[/DB]``: the
  sentinels (port 26379 unless given) and the name of the master they watch. The user and
  password are the Redis servers' (master and replicas); the sentinels are asked without one.

``?db=DB`` may stand for the ``/DB`` path. User names and passwords are percent-decoded (write
``@``, ``:``, ``/`` and ``%`` in a password as ``%40``, ``%3A``, ``%2F``, ``%25``).

Invariant: every error is a :class:`UrlError` of one line that starts with the setting's name and
shows the URL only through :func:`server.redact.mask_url`, so no password is ever printed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

from server.redact import mask_url

DATABASE_SETTING = "PATROLSYNC_DATABASE_URL"
REDIS_SETTING = "PATROLSYNC_REDIS_URL"
POSTGRES = "postgresql+asyncpg"
SQLITE = "sqlite+aiosqlite"
_DATABASE_SCHEMES = {
    "postgresql": POSTGRES,
    "postgres": POSTGRES,
    POSTGRES: POSTGRES,
    "sqlite": SQLITE,
    SQLITE: SQLITE,
}
DATABASE_FORMS = (
    "postgresql://USER:PASSWORD@HOST:PORT/DB (or postgres://, postgresql+asyncpg://) "
    "or sqlite+aiosqlite:///FILE"
)
REDIS_PORT = 6379
SENTINEL_PORT = 26379
SENTINEL = "redis+sentinel"
REDIS_FORMS = "redis://HOST:PORT/DB, rediss://…, unix:///PATH or redis+sentinel://…"
SENTINEL_FORM = "redis+sentinel://:PASSWORD@HOST:PORT,HOST:PORT/SERVICE/DB"


class UrlError(ValueError):
    """A URL the server cannot use; its text is one line naming the setting, the URL masked."""


def _error(setting: str, url: str, what: str) -> UrlError:
    return UrlError(f"{setting}={mask_url(url)!r}: {what}")


def database_url(url: str, *, setting: str = DATABASE_SETTING) -> str:
    """``url`` in the form the engine is made from (``postgresql+asyncpg://`` or
    ``sqlite+aiosqlite://``); the rest of the URL is kept as written."""
    scheme, sep, rest = url.partition("://")
    target = _DATABASE_SCHEMES.get(scheme.lower()) if sep else None
    if target is None:
        raise _error(setting, url, f"expected {DATABASE_FORMS}")
    normal = f"{target}://{rest}"
    from sqlalchemy.engine import make_url  # here: the command line starts without SQLAlchemy
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(normal)
        _ = parsed.port  # a port that is not a number fails here
    except (ValueError, ArgumentError) as exc:
        raise _error(setting, url, str(exc).splitlines()[0]) from None
    if target == POSTGRES and "sslmode" in parsed.query:
        if "ssl" in parsed.query:
            raise _error(setting, url, "give sslmode or ssl, not both")
        mode = parsed.query["sslmode"]
        parsed = parsed.difference_update_query(["sslmode"]).update_query_dict({"ssl": mode})
        normal = parsed.render_as_string(hide_password=False)
    return normal


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """Where Redis is: one server (``host`` and ``port``, or ``unix_socket_path``), or — when
    ``sentinels`` is not empty — the master that those sentinels name ``service_name``."""

    host: str = "localhost"
    port: int = REDIS_PORT
    unix_socket_path: str | None = None
    database: int = 0
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    ssl: bool = False
    sentinels: tuple[tuple[str, int], ...] = ()
    service_name: str = ""

    @property
    def is_sentinel(self) -> bool:
        return bool(self.sentinels)


def redis_target(url: str, *, setting: str = REDIS_SETTING) -> RedisTarget:
    """Read a Redis URL of any form in the module's docstring."""
    scheme, sep, _ = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in {"redis", "rediss", "unix", SENTINEL}:
        raise _error(setting, url, f"expected {REDIS_FORMS}")
    try:
        return _sentinel(url) if scheme == SENTINEL else _single(url, scheme)
    except ValueError as exc:
        what = str(exc).splitlines()[0]
        if scheme == SENTINEL:
            what += f" (expected {SENTINEL_FORM})"
        raise _error(setting, url, what) from None


def _credentials(userinfo: str) -> tuple[str | None, str | None]:
    user, colon, password = userinfo.partition(":")
    return (unquote(user) or None, unquote(password) if colon else None)


def _database(path_db: str, query: str) -> int:
    params = parse_qs(query, keep_blank_values=True)
    unknown = sorted(set(params) - {"db"})
    if unknown:
        raise ValueError(f"unknown parameter {unknown[0]!r}")
    raw = params["db"][-1] if "db" in params else path_db or "0"
    if not raw.isdigit():
        raise ValueError(f"database {raw!r} is not a number")
    return int(raw)


def _single(url: str, scheme: str) -> RedisTarget:
    parts = urlsplit(url)
    netloc = parts.netloc
    userinfo = netloc.rpartition("@")[0] if "@" in netloc else ""
    username, password = _credentials(userinfo)
    if scheme == "unix":
        if not parts.path:
            raise ValueError("no socket path")
        return RedisTarget(
            unix_socket_path=parts.path,
            database=_database("", parts.query),
            username=username,
            password=password,
        )
    path_db = parts.path.strip("/")
    return RedisTarget(
        host=parts.hostname or "localhost",
        port=parts.port or REDIS_PORT,  # (a port that is not a number raises ValueError)
        database=_database(path_db, parts.query),
        username=username,
        password=password,
        ssl=scheme == "rediss",
    )


def _sentinel(url: str) -> RedisTarget:
    rest = url.partition("://")[2]
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    username, password = _credentials(userinfo if at else "")
    sentinels: list[tuple[str, int]] = []
    for one in hosts.split(","):
        parts = urlsplit(f"//{one}")
        if not parts.hostname:
            raise ValueError("a sentinel without a host")
        sentinels.append((parts.hostname, parts.port or SENTINEL_PORT))
    service, _, path_db = path.strip("/").partition("/")
    if not service:
        raise ValueError("no service name, the name the sentinels know the master by")
    if "/" in path_db:
        raise ValueError("more than SERVICE/DB in the path")
    return RedisTarget(
        database=_database(path_db, query),
        username=username,
        password=password,
        sentinels=tuple(sentinels),
        service_name=unquote(service),
    )
