"""Structured logs: JSON lines in production (PATROLSYNC_LOG_JSON=true), readable on a terminal.

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
from logging.handlers import QueueHandler, QueueListener
from typing import IO, Any

import structlog
from structlog.stdlib import ProcessorFormatter

from server.redact import mask_text

LOGGER = "patrolsync"
"""Every logger of the product is named under this one (``patrolsync.server``, ...)."""
QUEUED = 10_000
"""Events waiting to be written at most; more are dropped (``dropped()`` counts them)."""
_listener: QueueListener | None = None


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


class _Masking(ProcessorFormatter):
    def format(self, record: logging.LogRecord) -> str:
        return mask_text(super().format(record))


class _Handoff(QueueHandler):
    """Queues the record as it is: formatting (``QueueHandler.prepare``) is the thread's job.
    When the queue is full (the output has stalled) the record is dropped and counted: memory
    stays bounded and the caller never waits."""

    dropped = 0

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
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
    """(Re)configure logging: events at ``level`` and above, written to ``stream`` (stdout)."""
    global _listener
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
    output.setFormatter(_Masking(processors=rendering))
    events: queue.Queue[logging.LogRecord] = queue.Queue(QUEUED)
    _listener = _Writer(events, output)
    _listener.start()
    root = logging.getLogger(LOGGER)
    root.handlers = [_Handoff(events)]
    root.setLevel(logging.DEBUG)  # the bound logger below filters, before any work is done
    root.propagate = False
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _exception_now,
            ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
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
