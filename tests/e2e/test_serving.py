"""The server under uvicorn, spoken to over raw sockets: the request head is capped (414, 431),
a push body that does not arrive in time is answered 408 and its connection closed."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import msgspec
import pytest
import uvicorn

from server.app import create_app
from server.db import make_engine
from server.serving import CappedHttpToolsProtocol
from server.settings import Settings
from tests.conftest import reset
from tests.support import Fleet, new_id


@dataclass
class Served:
    port: int
    fleet: Fleet


@pytest.fixture
async def served(sqlite_url: str) -> AsyncIterator[Served]:
    settings = Settings(
        database_url=sqlite_url,
        log_level="WARNING",
        max_header_bytes=16_384,
        body_timeout_s=0.5,
        header_timeout_s=1.0,
    )
    await reset(settings)
    engine = make_engine(settings)
    app = create_app(settings, engine=engine)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app,
        http=CappedHttpToolsProtocol.with_limits(settings),
        lifespan="off",
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.01)
        assert server.started
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield Served(sock.getsockname()[1], Fleet(client, app.state.services))
    finally:
        server.should_exit = True
        await task
        await engine.dispose()


async def _exchange(port: int, data: bytes, *, timeout_s: float = 5) -> tuple[bytes, bool]:
    """Send ``data``; read until the server closes (True) or ``timeout_s`` passes (False)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        with contextlib.suppress(ConnectionError):  # refused before all was sent
            await writer.drain()
        received = b""
        try:
            async with asyncio.timeout(timeout_s):
                while chunk := await reader.read(65536):
                    received += chunk
            return received, True
        except TimeoutError:
            return received, False
        except ConnectionError:
            return received, True
    finally:
        writer.close()


def _status(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])


def _error_code(reply: bytes) -> str:
    code: str = msgspec.json.decode(reply.split(b"\r\n\r\n", 1)[1])["error"]["code"]
    return code


async def test_a_mebibyte_of_headers_gets_431_and_the_connection_closed(served: Served) -> None:
    many = b"".join(b"X-Filler-%d: %s\r\n" % (n, b"a" * 1000) for n in range(1024))
    reply, closed = await _exchange(served.port, b"GET /healthz HTTP/1.1\r\nHost: t\r\n" + many)
    assert _status(reply) == 431 and closed
    assert _error_code(reply) == "headers_too_large"


async def test_one_huge_header_gets_431_before_it_ends(served: Served) -> None:
    """The header never ends: refused as soon as the cap is passed, not buffered whole."""
    head = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Huge: " + b"a" * (1 << 20)
    reply, closed = await _exchange(served.port, head)
    assert _status(reply) == 431 and closed


async def test_a_long_url_gets_414(served: Served) -> None:
    path = b"/healthz?pad=" + b"a" * 20_000
    reply, closed = await _exchange(served.port, b"GET " + path + b" HTTP/1.1\r\nHost: t\r\n\r\n")
    assert _status(reply) == 414 and closed
    assert _error_code(reply) == "uri_too_long"


async def test_requests_under_the_caps_are_served(served: Served) -> None:
    headers = b"".join(b"X-Filler-%d: %s\r\n" % (n, b"a" * 100) for n in range(100))  # ~11 KB
    path = b"/healthz?pad=" + b"a" * 4000
    request = b"GET " + path + b" HTTP/1.1\r\nHost: t\r\n" + headers + b"Connection: close\r\n\r\n"
    reply, closed = await _exchange(served.port, request)
    assert _status(reply) == 200 and closed
    assert reply.split(b"\r\n\r\n", 1)[1].startswith(b'{"status":"ok"')
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{served.port}") as client:
        for _ in range(3):  # one keep-alive connection, several requests
            assert (await client.get("/healthz")).status_code == 200


async def test_a_late_push_body_gets_408_and_the_connection_closed(served: Served) -> None:
    phone = await served.fleet.device("w-zhang")
    body = msgspec.json.encode(
        {"push_id": str(new_id()), "device_time_ms": phone.now(), "items": []}
    )
    head = (
        "POST /v1/sync/push HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        f"Patrolsync-Protocol: 1\r\nAuthorization: Bearer {phone.token}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    reply, closed = await _exchange(served.port, head + body[:10], timeout_s=5)
    assert _status(reply) == 408 and closed
    assert _error_code(reply) == "request_timeout"


@pytest.mark.parametrize(
    "sent", [b"", b"GET /heal", b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: 1"]
)
async def test_a_head_that_does_not_arrive_in_time_gets_408(served: Served, sent: bytes) -> None:
    """Nothing sent, half a request line, headers without their end: answered after the
    head's time (1 s here), the connection closed."""
    reply, closed = await _exchange(served.port, sent, timeout_s=5)
    assert _status(reply) == 408 and closed
    assert _error_code(reply) == "request_timeout"


async def test_a_kept_alive_connection_is_not_cut_by_the_head_timer(served: Served) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{served.port}") as client:
        for _ in range(3):  # the same connection, each request after the head's time
            assert (await client.get("/healthz")).status_code == 200
            await asyncio.sleep(0.6)
