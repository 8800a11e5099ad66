"""Structured logs: JSON lines in production (PATROLSYNC_LOG_JSON=true), readable on a terminal.

One pipeline for every line of the process: the product's own events (structlog) and the lines
of the libraries (alembic, uvicorn, arq, httpx, asyncio, SQLAlchemy's warnings: anything that
logs through the standard library, and ``warnings`` as ``py.warnings``) are rendered by the one
formatter on the root logger's handler, with the same fields: ``event``, ``level``, ``logger``,
``timestamp`` (UTC, of the call, not of the writing) and the context bound with
``structlog.contextvars`` where the line was logged (a request's ``request_id``). Some
loggers (``QUIET``) are written from warning up only.

A log call only builds its event (level, time, fields, the exception being handled) and hands it
to a queue; one thread renders and writes it. Rendering a traceback, or a stdout that drains
slowly, never holds the event loop. An error's traceback is part of its event: the
``exception`` field of the JSON line, the lines after the message on a terminal. Tracebacks
never show local variables, and a password in a URL (``scheme://user:password@``) is masked in
every line written. If the output stalls, at most ``QUEUED`` events wait; later ones are
dropped (and counted) rather than block the caller or grow without bound.
"""

from __future__ import annotations

import atexit
import logging
import queue
import sys
from collections.abc import MutableMapping
from datetime import UTC, datetime
from logging.handlers import QueueHandler, QueueListener
from typing import IO, Any

import structlog
from structlog.stdlib import ProcessorFormatter

from server.redact import mask_text

LOGGER = "patrolsync"
"""Every logger of the product is named under this one (``patrolsync.server``, ...)."""
QUEUED = 10_000
"""Events waiting to be written at most; more are dropped (``dropped()`` counts them)."""
QUIET = ("httpx", "httpcore", "alembic.runtime.plugins")
"""Loggers written from warning up only, whatever the level: httpx's and httpcore's lines name
the URLs they call; alembic's plugin lines say nothing an operator needs."""
OWN_HANDLERS = ("uvicorn", "uvicorn.error")
"""Loggers a library may have given handlers of its own (uvicorn's default configuration, when
something ran it): ``configure`` takes them away, so their lines reach the root's handler."""
ROOT_LEVEL = ("uvicorn", "uvicorn.error", "arq", "alembic")
"""Library loggers that follow the root's level: ``configure`` clears a level something set on
them before (uvicorn's own configuration sets one; so did a quieter caller in this process)."""
OFF = "uvicorn.access"
"""Never written: the server writes its own access line (``server.access``). uvicorn writes
its own whenever this logger has a handler, its own or an ancestor's."""
_listener: QueueListener | None = None
_handler: logging.Handler | None = None
_CONTEXT = "_patrolsync_context"


def _exception_now(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Resolve ``exc_info`` to the exception itself while the caller still handles it (the
    writing thread handles none)."""
    found = event.get("exc_info")
    if found is True:
        event["exc_info"] = sys.exc_info()
    elif isinstance(found, BaseException):
        event["exc_info"] = (type(found), found, found.__traceback__)
    return event


def _foreign_context(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A library's line: the context bound where it was logged (noted by ``_Handoff``), and
    the time it was logged."""
    record: logging.LogRecord = event["_record"]
    for key, value in getattr(record, _CONTEXT, {}).items():
        event.setdefault(key, value)
    stamp = datetime.fromtimestamp(record.created, tz=UTC).isoformat()
    event["timestamp"] = stamp.replace("+00:00", "Z")
    return event


class _Masking(ProcessorFormatter):
    def format(self, record: logging.LogRecord) -> str:
        return mask_text(super().format(record))


class _Handoff(QueueHandler):
    """Queues the record as it is: formatting (``QueueHandler.prepare``) is the thread's job.
    When the queue is full (the output has stalled) the record is dropped and counted: memory
    stays bounded and the caller never waits."""

    dropped = 0

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        if not hasattr(record, "_logger"):  # a library's line, not structlog's event
            record.msg, record.args = record.getMessage(), None
            setattr(record, _CONTEXT, structlog.contextvars.get_contextvars())
        return record

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            _Handoff.dropped += 1


class _Writer(QueueListener):
    def enqueue_sentinel(self) -> None:
        self.queue.put(self._sentinel)  # type: ignore[attr-defined]  # waits for room if full


class _Output(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to ``stream``, or to whatever ``sys.stdout`` is at the time of writing."""

    def __init__(self, stream: IO[str] | None) -> None:
        super().__init__(stream)
        self._follow = stream is None

    def emit(self, record: logging.LogRecord) -> None:
        if self._follow:
            self.stream = sys.stdout
        super().emit(record)


def configure(level: str = "INFO", as_json: bool = False, stream: IO[str] | None = None) -> None:
    """(Re)configure logging: events at ``level`` and above, the product's and the libraries',
    written to ``stream`` (stdout). Other handlers of the root logger are left alone."""
    global _listener, _handler
    if _listener is not None:
        _listener.stop()
    rendering: list[structlog.typing.Processor] = [ProcessorFormatter.remove_processors_meta]
    if as_json:
        rendering += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        rendering.append(
            structlog.dev.ConsoleRenderer(
                colors=False, exception_formatter=structlog.dev.plain_traceback
            )
        )
    output = _Output(stream)
    foreign: list[structlog.typing.Processor] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        _foreign_context,
    ]
    output.setFormatter(_Masking(processors=rendering, foreign_pre_chain=foreign))
    events: queue.Queue[logging.LogRecord] = queue.Queue(QUEUED)
    _listener = _Writer(events, output)
    _listener.start()
    threshold = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    _handler = _Handoff(events)
    root.addHandler(_handler)
    root.setLevel(threshold)
    own = logging.getLogger(LOGGER)
    own.handlers, own.propagate = [], True
    own.setLevel(logging.NOTSET)  # the root's level: filter_by_level below reads it
    for name in QUIET:
        logging.getLogger(name).setLevel(max(threshold, logging.WARNING))
    for name in ROOT_LEVEL:
        logging.getLogger(name).setLevel(logging.NOTSET)
    for name in OWN_HANDLERS:
        library = logging.getLogger(name)
        library.handlers, library.propagate = [], True
    off = logging.getLogger(OFF)
    off.handlers, off.propagate = [], False
    logging.captureWarnings(True)
    structlog.configure(
        processors=[
            # First, before any work: the level is the stdlib logger's, read at each call, so a
            # later configure() changes it for loggers already in use (cached on first use).
            structlog.stdlib.filter_by_level,
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _exception_now,
            ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(logging.NOTSET),
        cache_logger_on_first_use=True,
    )


def dropped() -> int:
    """Events dropped since the process started because the output could not keep up."""
    return _Handoff.dropped


def flush() -> None:
    """Wait until every event logged so far is written."""
    if _listener is not None:
        _listener.stop()
        _listener.start()


atexit.register(flush)
