"""The running build's version, read from the installed package's metadata: ``pyproject.toml``
is its one source (``patrolsync --version``, ``GET /healthz`` and the handshake report it)."""

from __future__ import annotations

import functools
from importlib.metadata import PackageNotFoundError, version

UNKNOWN = "0+unknown"
"""Reported when the code runs from a source tree that was never installed."""


@functools.cache
def current() -> str:
    try:
        return version("patrolsync")
    except PackageNotFoundError:
        return UNKNOWN
