"""Typed settings, read once from the environment (prefix ``PATROLSYNC_``).

A bad value fails at start-up with the name of the variable, never later in a request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from server import urls, webhook_targets
from sync.durations import DAY_MS

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///patrolsync.db"
PREFIX = "PATROLSYNC_"


class SettingsError(ValueError):
    """A variable of the environment has a value the server cannot use."""


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = field(default=DEFAULT_DATABASE_URL, repr=False)
    """May hold a password: shown only through ``redact.mask_url`` (never in ``repr``)."""
    redis_url: str = field(default="redis://127.0.0.1:6379/0", repr=False)
    """For the quota worker and its queue (not used by the sync server itself)."""
    queue_name: str = "patrolsync:queue"
    sweep_minutes: int = 5
    """The worker's periodic sweep (time-driven rules, escalation) runs every this many minutes."""
    relay_retry_s: int = 600
    """An outbox request relayed this long ago and still pending is relayed again."""
    worker_metrics_port: int = 0
    """The port the worker serves its Prometheus metrics on (``worker.metrics``); 0: none."""
    worker_metrics_host: str = "127.0.0.1"
    """The address the worker's metrics listen on (``0.0.0.0`` in a container)."""
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_json: bool = False
    max_push_items: int = 1000
    max_push_bytes: int = 4 * 1024 * 1024
    max_inflight_pushes: int = 64
    max_url_bytes: int = 8 * 1024
    """A request URL longer than this is answered 414 ``uri_too_long`` (``server.serving``)."""
    max_header_bytes: int = 64 * 1024
    """A request line and headers larger than this are answered 431 ``headers_too_large``."""
    header_timeout_s: float = 30.0
    """A request line and headers must arrive within this many seconds (408 ``request_timeout``)."""
    max_receiving_pushes: int = 256
    """Push bodies being received at once in a server process (they hold no in-flight slot)."""
    body_timeout_s: float = 30.0
    """A push body must arrive whole within this many seconds of the handler starting to read
    it, or the push is answered 408 ``request_timeout`` (and the connection closed)."""
    retry_after_s: int = 1
    default_pull_limit: int = 1000
    max_pull_limit: int = 5000
    db_pool_size: int = 10
    hlc_max_ahead_ms: int = DAY_MS
    enrol_failures_per_client: int = 10
    """Failed enrolment attempts (unknown, used or expired codes) one client address may make
    within ``enrol_failure_window_s``; then every attempt from it gets 429 until the oldest
    failure leaves the window."""
    enrol_failures_overall: int = 100
    """Failed enrolment attempts from all addresses together within the window."""
    enrol_failure_window_s: int = 600
    login_failures_per_client: int = 20
    """Failed console log-ins (wrong id or password) one client address may make within
    ``login_failure_window_s``; then every log-in from it gets 429 until the oldest failure
    leaves the window."""
    login_failures_per_account: int = 5
    """Failed log-ins of one supervisor id (from any address) within the window."""
    login_failures_overall: int = 200
    login_failure_window_s: int = 600
    session_idle_s: int = 1800
    """A console session unused this long ends (idle expiry)."""
    session_max_s: int = 12 * 3600
    """A console session ends this long after its log-in, used or not (absolute expiry)."""
    cookie_secure: bool = False
    """Mark the session cookie ``Secure`` always (behind a TLS proxy that forwards plain HTTP);
    it is marked so anyway when the request came over HTTPS."""
    gc_threshold: int = 50_000
    """Allocations between two collections of the garbage collector's youngest generation in a
    server or worker process (Python's default is 700). A request's objects die by reference
    counting; collecting every 700 allocations made the collector a fifth of the server's CPU."""
    webhook_allow_hosts: str = ""
    """Host names, addresses and networks (comma-separated) that webhooks may reach although
    the address rule refuses them (loopback, private, link-local, reserved)."""
    webhook_connect_timeout_s: int = 5
    webhook_timeout_s: int = 10
    """A whole webhook try, from resolving its host to the end of the reply."""
    webhook_max_reply_bytes: int = 65536
    webhook_concurrency: int = 16
    max_streams: int = 1000
    """Live alert streams open at once in a server process; one more is answered 429."""
    stream_queue_events: int = 1000
    """Events a live stream may fall behind by; one more and it is closed (the browser
    reconnects with ``Last-Event-ID`` and resumes exactly)."""
    stream_poll_s: float = 1.0
    """How often the process's live hub reads the alert feed when nothing notifies it (SQLite,
    or while its PostgreSQL listening connection is down)."""
    stream_safety_poll_s: float = 5.0
    """PostgreSQL: how often the hub reads the feed besides its notifications (a lost one)."""
    max_waiting_pulls: int = 1000
    """Pulls waiting for a change (``GET /v1/sync/pull?wait=``) at once in a server process;
    one more that would wait is answered 429."""
    max_pull_wait_s: int = 60
    """The longest ``wait`` a pull may ask for (advertised in the handshake's limits)."""

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def _convert(name: str, raw: str, kind: type) -> Any:
    try:
        if kind is bool:
            low = raw.strip().lower()
            if low in {"1", "true", "yes", "on"}:
                return True
            if low in {"0", "false", "no", "off"}:
                return False
            raise ValueError("expected true/false")
        if kind is int or kind is float:
            value = kind(raw)
            if not value >= 0:  # (NaN too)
                raise ValueError("must not be negative")
            return value
        return raw
    except ValueError as exc:
        raise SettingsError(f"{PREFIX}{name.upper()}={raw!r}: {exc}") from None


_KINDS: dict[str, type] = {"bool": bool, "int": int, "float": float, "str": str}


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from ``environ`` (default ``os.environ``); errors name the variable."""

    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(Settings):
        key = PREFIX + f.name.upper()
        if key in env:
            values[f.name] = _convert(f.name, env[key], _KINDS[str(f.type)])
    settings = Settings(**values)
    try:  # every URL form an operator may write, normalised in one place
        settings = replace(settings, database_url=urls.database_url(settings.database_url))
        urls.redis_target(settings.redis_url)
    except urls.UrlError as exc:
        raise SettingsError(str(exc)) from None
    if not 1 <= settings.sweep_minutes <= 60 or 60 % settings.sweep_minutes:
        raise SettingsError(
            f"{PREFIX}SWEEP_MINUTES must divide 60 (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30 or 60)"
        )
    for name in (
        "max_push_items",
        "max_inflight_pushes",
        "max_receiving_pushes",
        "max_url_bytes",
        "max_header_bytes",
        "default_pull_limit",
        "max_pull_limit",
        "gc_threshold",
        "enrol_failures_per_client",
        "enrol_failures_overall",
        "enrol_failure_window_s",
        "login_failures_per_client",
        "login_failures_per_account",
        "login_failures_overall",
        "login_failure_window_s",
        "session_idle_s",
        "session_max_s",
        "webhook_connect_timeout_s",
        "webhook_timeout_s",
        "webhook_concurrency",
        "webhook_max_reply_bytes",
        "max_streams",
        "stream_queue_events",
        "max_waiting_pulls",
    ):
        if getattr(settings, name) < 1:
            raise SettingsError(f"{PREFIX}{name.upper()} must be at least 1")
    try:
        webhook_targets.AllowList.parse(settings.webhook_allow_hosts)
    except ValueError as exc:
        raise SettingsError(f"{PREFIX}WEBHOOK_ALLOW_HOSTS: {exc}") from None
    if settings.max_pull_wait_s > 3600:
        raise SettingsError(f"{PREFIX}MAX_PULL_WAIT_S must be at most 3600")
    for name in ("body_timeout_s", "header_timeout_s", "stream_poll_s", "stream_safety_poll_s"):
        if not 0 < getattr(settings, name) <= 3600:
            raise SettingsError(f"{PREFIX}{name.upper()} must be above 0 and at most 3600")
    _check(settings)
    return settings


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _check(settings: Settings) -> None:
    """The settings no other check covers: a level, a port, names and sizes that must not be
    empty or zero."""
    if settings.log_level.upper() not in LOG_LEVELS:
        raise SettingsError(
            f"{PREFIX}LOG_LEVEL={settings.log_level!r}: expected one of {', '.join(LOG_LEVELS)}"
        )
    if not 1 <= settings.port <= 65535:
        raise SettingsError(f"{PREFIX}PORT={settings.port}: expected a port from 1 to 65535")
    if not 0 <= settings.worker_metrics_port <= 65535:
        raise SettingsError(
            f"{PREFIX}WORKER_METRICS_PORT={settings.worker_metrics_port}: expected a port from"
            " 1 to 65535, or 0 for no metrics"
        )
    for name in ("host", "queue_name", "worker_metrics_host"):
        if not getattr(settings, name).strip():
            raise SettingsError(f"{PREFIX}{name.upper()} must not be empty")
    for name in ("max_push_bytes", "db_pool_size", "relay_retry_s", "hlc_max_ahead_ms"):
        if getattr(settings, name) < 1:
            raise SettingsError(f"{PREFIX}{name.upper()} must be at least 1")
