"""Which settings each command reads, for its ``--help``: names and defaults come from
:class:`server.settings.Settings` itself, so a new setting appears without editing this file
(the server's list is every setting the worker alone does not read)."""

from __future__ import annotations

from dataclasses import MISSING, fields

from server.settings import PREFIX, Settings

DATABASE = ("database_url", "db_pool_size")
LOGS = ("log_level", "log_json")
REDIS = ("redis_url", "queue_name")
WORKER_ONLY = (
    *REDIS,
    "sweep_minutes",
    "relay_retry_s",
    "worker_metrics_port",
    "worker_metrics_host",
    "webhook_connect_timeout_s",
    "webhook_timeout_s",
    "webhook_max_reply_bytes",
    "webhook_concurrency",
)
"""Settings the HTTP server never reads."""
WORKER = (
    *DATABASE,
    *WORKER_ONLY,
    *LOGS,
    "gc_threshold",
    "webhook_allow_hosts",
    "hlc_max_ahead_ms",
)
_ALL = tuple(f.name for f in fields(Settings))
SERVER = tuple(name for name in _ALL if name not in WORKER_ONLY)
EVERYTHING = _ALL


def _default(name: str) -> str:
    (found,) = (f for f in fields(Settings) if f.name == name)
    value = found.default if found.default is not MISSING else ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if value == "" else str(value)


def epilog(names: tuple[str, ...]) -> str:
    """The help's closing paragraph: each variable with its default, one per line."""
    lines = [f"{PREFIX}{name.upper()}={_default(name)}" for name in names]
    return "Settings read (environment, with defaults; docs/operations.md §2):\n" + "\n".join(lines)
