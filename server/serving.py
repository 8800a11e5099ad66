"""The HTTP/1.1 protocol the server runs under uvicorn: httptools, with the request head capped
in size and in time.

httptools accepts a request line and headers of any size (buffering them whole), so a client
could grow the server by the size of what it sends. Here a request whose URL is longer than
``max_url_bytes`` is answered 414 ``uri_too_long``, and one whose request line and headers
together exceed ``max_header_bytes`` is answered 431 ``headers_too_large``; the connection is
closed and nothing reaches the app. While the head is still arriving the bytes received count
against the cap, so at most one socket read (256 KiB) more than the cap is ever buffered.

A head must also arrive whole within ``header_timeout_s`` of the connection opening (or of the
request's first byte, on a kept-alive connection), or it is answered 408 ``request_timeout``
and the connection closed: a client trickling its headers, or connecting and sending nothing,
holds a connection that long at most. (Between requests uvicorn's keep-alive timeout applies.)

Several server processes on one socket (``serve --workers N``) run under
:class:`MetricsMultiprocess` with prometheus-client's multiprocess mode
(:func:`multiprocess_metrics`), so ``/metrics`` sums them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httptools
import msgspec
from prometheus_client.multiprocess import mark_process_dead
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState
from uvicorn.supervisors.multiprocess import Multiprocess

from server.errors import Code
from server.settings import Settings, load

PROTOCOL = "server.serving:CappedHttpToolsProtocol"
"""What ``uvicorn.run(http=...)`` is given (a string: each worker process imports it)."""
GRACEFUL_SHUTDOWN_S = 10
"""On a stop signal, requests still running after this many seconds are cancelled (uvicorn's
``timeout_graceful_shutdown``): a live alert stream never ends by itself, and without a limit
one open page would keep the process from stopping."""


class _HeadTooLarge(Exception):
    """Raised in a parser callback to stop parsing a request that is refused."""


def _limits(settings: Settings) -> tuple[int, int, float]:
    return settings.max_url_bytes, settings.max_header_bytes, settings.header_timeout_s


def _refusal(status: int, reason: str, code: Code, message: str, details: dict[str, Any]) -> bytes:
    body = msgspec.json.encode({"error": {"code": code, "message": message, "details": details}})
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class CappedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with ``max_url_bytes`` and ``max_header_bytes`` enforced."""

    limits: ClassVar[tuple[int, int, float] | None] = None
    """(max_url_bytes, max_header_bytes, header_timeout_s); from the settings at the first
    connection."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        cls = type(self)
        if cls.limits is None:
            cls.limits = _limits(load())
        self._max_url, self._max_head, self._head_timeout_s = cls.limits
        self._head_timer: asyncio.TimerHandle | None = None
        self._in_head = False
        self._head_received = 0  # bytes received while the head was arriving (an upper bound)
        self._head_size = 0  # the head's own bytes, counted as the parser hands them over
        self._refused: bytes | None = None

    @classmethod
    def with_limits(cls, settings: Settings) -> type[CappedHttpToolsProtocol]:
        """A subclass with the limits of ``settings`` (an in-process server, a test)."""
        return type(cls.__name__, (cls,), {"limits": _limits(settings)})

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused is not None:
            return
        if not self._feed(data):
            return
        if self._in_head:
            self._head_received += len(data)
            if len(self.url) > self._max_url:
                self._refuse(self._uri_too_long())
            elif self._head_received > self._max_head:
                self._refuse(self._headers_too_large())

    def _feed(self, data: bytes) -> bool:
        """``HttpToolsProtocol.data_received``, except that a head refused by a parser
        callback is answered with its own refusal; False once the connection is answered."""
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self._refused is not None:
                self._refuse(self._refused)
                return False
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
            return False
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return False
        return self._refused is None

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_timer is None:
            self._start_head_timer()
        self._in_head = True
        self._head_received = 0
        self._head_size = 0

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._head_size += len(url)
        if len(self.url) > self._max_url:
            self._stop(self._uri_too_long())

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4  # ": " and CRLF
        if self._head_size > self._max_head:
            self._stop(self._headers_too_large())
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._stop_head_timer()
        super().on_headers_complete()

    def _start_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self._head_timeout_s, self._head_too_slow)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._refused is not None:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self._start_head_timer()  # a pipelined head waits for the response before it
            return
        limit = self._head_timeout_s
        message = f"the request head did not arrive within {limit:g} s"
        details = {"header_timeout_s": limit}
        self._refuse(_refusal(408, "Request Timeout", Code.REQUEST_TIMEOUT, message, details))

    def _stop(self, response: bytes) -> None:
        self._refused = response
        raise _HeadTooLarge

    def _refuse(self, response: bytes) -> None:
        self._refused = response
        self._in_head = False
        self._stop_head_timer()
        if not self.transport.is_closing():
            self.transport.write(response)
            self.transport.close()

    def _uri_too_long(self) -> bytes:
        limit = self._max_url
        message = f"request URLs are limited to {limit} bytes"
        details = {"max_url_bytes": limit}
        return _refusal(414, "URI Too Long", Code.URI_TOO_LONG, message, details)

    def _headers_too_large(self) -> bytes:
        limit = self._max_head
        message = f"the request line and headers are limited to {limit} bytes"
        details = {"max_header_bytes": limit}
        return _refusal(
            431, "Request Header Fields Too Large", Code.HEADERS_TOO_LARGE, message, details
        )


MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus-client's multiprocess mode: each process writes its metrics' values to files in
this folder, and ``/metrics`` (Litestar's controller) sums every process's files."""


@contextlib.contextmanager
def multiprocess_metrics() -> Iterator[Path]:
    """A fresh folder for the metrics of several server processes, named in the environment
    (their children inherit it) while the processes run: ``PROMETHEUS_MULTIPROC_DIR`` if the
    operator set it (emptied of earlier runs' files first), else a temporary folder removed
    afterwards. Set before the processes start: prometheus-client reads it at import."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink()
        yield folder
        return
    folder = Path(tempfile.mkdtemp(prefix="patrolsync-metrics-"))
    os.environ[MULTIPROC_ENV] = str(folder)
    try:
        yield folder
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(folder, ignore_errors=True)


class MetricsMultiprocess(Multiprocess):
    """uvicorn's supervisor of several server processes, which also tells prometheus-client
    when a process has died (its live gauges, such as requests in progress, leave the sum)."""

    def keep_subprocess_alive(self) -> None:
        before = {p.pid for p in self.processes}
        super().keep_subprocess_alive()
        for pid in before - {p.pid for p in self.processes}:
            if pid is not None:
                mark_process_dead(pid)  # type: ignore[no-untyped-call]


def run_processes(config: Config) -> None:
    """Run ``config.workers`` server processes on one socket (what ``uvicorn.run`` does with
    ``workers > 1``), their metrics summed across them (:func:`multiprocess_metrics`)."""
    with multiprocess_metrics():
        sock = config.bind_socket()
        try:
            MetricsMultiprocess(config, sockets=[sock]).run()
        finally:
            sock.close()
