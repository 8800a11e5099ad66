"""Structured logs: JSON lines in production (PATROLSYNC_LOG_JSON=true), readable on a terminal."""

from __future__ import annotations

import logging

import structlog


def configure(level: str = "INFO", as_json: bool = False) -> None:
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        # Plain tracebacks: the default (rich) one prints every frame's local variables, and
        # those hold bearer tokens, request bodies and settings with passwords.
        else structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        cache_logger_on_first_use=True,
    )
