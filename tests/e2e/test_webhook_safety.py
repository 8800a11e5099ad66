"""Webhooks against hostile targets and receivers: the address rules at registration and at
every try, bounded tries, one lane per webhook, coarse errors, and signatures a receiver checks.

Receivers are raw asyncio servers on 127.0.0.1 (``PATROLSYNC_WEBHOOK_ALLOW_HOSTS`` lets the
deliveries reach them); nothing is sent to any other address: names resolve through an injected
resolver, and targets that must be refused go to a transport that records any request."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import socket
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import sqlalchemy as sa
from standardwebhooks import Webhook, WebhookVerificationError

from server import webhook_targets as targets
from server.store import webhooks as store
from server.tx import transaction
from tests.integration.worker_support import W47, at
from tests.support import Clock, Fleet
from worker import main, sweep, webhooks

pytestmark = pytest.mark.usefixtures("fleet")
LOCAL = targets.AllowList.parse("127.0.0.1")


def quick() -> webhooks.Limits:
    return webhooks.Limits(connect_s=0.5, total_s=1.5, max_reply_bytes=64 * 1024)


DOCS = Path(__file__).parents[2] / "docs" / "alerts.md"


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Receiver:
    """A raw HTTP/1.1 receiver on 127.0.0.1; ``answer`` writes the reply."""

    answer: Callable[[asyncio.StreamWriter], Awaitable[None]]
    requests: list[tuple[dict[str, str], bytes, float]] = field(default_factory=list)
    connections: int = 0
    sent: int = 0
    port: int = 0
    closed: bool = False
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self.tasks.append(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")[1:]
            headers = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines if x)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append((headers, body, time.monotonic()))
            await self.answer(writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


@contextlib.asynccontextmanager
async def serving(receiver: Receiver) -> AsyncIterator[Receiver]:
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    receiver.port = server.sockets[0].getsockname()[1]
    try:
        yield receiver
    finally:
        receiver.closed = True
        server.close()
        if receiver.tasks:
            await asyncio.wait(receiver.tasks, timeout=5)


def good() -> Receiver:
    async def answer(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
        await writer.drain()

    return Receiver(answer)


def dripping(seconds: float = 30.0) -> Receiver:
    """Answers 200 and then one byte of its body every 0.2 s, for ``seconds``."""

    async def answer(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not receiver.closed:
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(0.2)

    receiver = Receiver(answer)
    return receiver


def huge(size: int = 256 * 1024 * 1024) -> Receiver:
    """Answers 200 with a body of ``size`` bytes, sent as fast as it is read."""
    chunk = b"y" * (1024 * 1024)

    async def answer(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        while receiver.sent < size and not receiver.closed:
            writer.write(chunk)
            receiver.sent += len(chunk)
            await writer.drain()

    receiver = Receiver(answer)
    return receiver


async def _events(fleet: Fleet) -> None:
    """Idle workers judged after the week's grace period: quota alerts in xinhua and qunzhong."""
    fleet.services.clock = Clock(at(0, 6))
    for idle in ("w-wang", "w-liu"):
        await fleet.device(idle)
    await sweep.everything(fleet.services.engine, at(9, 10))
    assert W47.start_ms < at(9, 10)


async def _register(fleet: Fleet, who: str, url: str) -> httpx.Response:
    headers = {**await fleet.supervisor(who), "Content-Type": "application/json"}
    return await fleet.client.post(
        "/v1/webhooks", content=msgspec.json.encode({"url": url}), headers=headers
    )


async def _hook(fleet: Fleet, who: str, url: str) -> dict[str, Any]:
    created = await _register(fleet, who, url)
    assert created.status_code == 201, created.text
    hook: dict[str, Any] = created.json()
    return hook


async def _stored_hook(fleet: Fleet, url: str, secret: str = "whsec_c2VjcmV0") -> int:
    """A webhook row as registration before these rules could have stored it."""
    row = {
        "unit_id": "xinhua",
        "unit_path": await _path(fleet, "xinhua"),
        "url": url,
        "secret": secret,
        "active": True,
        "created_ms": fleet.services.clock(),
        "created_by": "s-xinhua",
    }
    return await transaction(fleet.services.engine, lambda c: store.create(c, row))


async def _path(fleet: Fleet, unit_id: str) -> str:
    async with fleet.services.engine.connect() as conn:
        path = (
            await conn.execute(sa.text("SELECT path FROM unit WHERE id = :u"), {"u": unit_id})
        ).scalar_one()
    return str(path)


async def _deliveries(fleet: Fleet, hook_id: int) -> list[dict[str, Any]]:
    async with fleet.services.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(store.delivery_t).where(store.delivery_t.c.webhook_id == hook_id)
        )
        return [dict(r._mapping) for r in rows]


async def _errors(fleet: Fleet, hook_id: int) -> set[str]:
    """The last errors of the webhook's deliveries that were tried."""
    return {d["last_error"] for d in await _deliveries(fleet, hook_id) if d["attempts"]}


async def _until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not in time")


def _allow_local(fleet: Fleet) -> None:
    fleet.services.settings = fleet.services.settings.with_(webhook_allow_hosts="127.0.0.1")


async def test_registration_refuses_internal_and_malformed_targets(fleet: Fleet) -> None:
    refused = {
        "http://127.0.0.1:6379/": "address is not allowed",
        "http://localhost:8000/v1": "address is not allowed",
        "http://[::1]:5432/": "address is not allowed",
        "http://169.254.169.254/latest/meta-data/": "address is not allowed",
        "http://10.0.0.7/hook": "address is not allowed",
        "http://192.168.1.1/hook": "address is not allowed",
        "http://hooks.example/a\r\nX-Injected: yes": "control characters",
        "http://admin:hunter2@hooks.example/": "user name or password",
        "gopher://hooks.example/": "https?://",
    }
    for url, problem in refused.items():
        reply = await _register(fleet, "s-xinhua", url)
        assert reply.status_code == 422, (url, reply.text)
        error = reply.json()["error"]
        assert error["code"] == "invalid_request" and problem in error["message"], (url, error)
        assert "hunter2" not in reply.text
    async with fleet.services.engine.connect() as conn:
        assert (
            await conn.execute(sa.select(sa.func.count()).select_from(store.webhook_t))
        ).scalar() == 0
    hook = await _hook(fleet, "s-xinhua", "https://hooks.example/patrolsync")
    assert hook["secret"].startswith("whsec_")
    _allow_local(fleet)
    assert (await _register(fleet, "s-xinhua", "http://127.0.0.1:9/hook")).status_code == 201


async def test_without_the_allow_list_internal_targets_are_refused_unconnected(
    fleet: Fleet,
) -> None:
    listening = good()
    async with serving(listening):
        urls = [
            listening.url,
            f"http://[::1]:{listening.port}/hook",
            f"http://localhost:{listening.port}/hook",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.1.2.3/hook",
            "http://[::ffff:127.0.0.1]/hook",
            "http://2130706433/hook",
        ]
        ids = [await _stored_hook(fleet, url) for url in urls]
        await _events(fleet)
        sent: list[httpx.Request] = []
        tripwire = httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(204))

        async def resolver(host: str, port: int) -> list[targets.Address]:
            assert host in ("localhost", "2130706433"), host
            return [ipaddress.ip_address(a) for a in ("127.0.0.1", "::1")]

        async with httpx.AsyncClient(transport=tripwire) as client:
            figures = await webhooks.deliver_once(
                fleet.services.engine, client, wall_ms, limits=quick(), resolver=resolver
            )
        # A real client too: the loopback receiver is never reached.
        async with webhooks.client_for(quick()) as client:
            await webhooks.deliver_once(
                fleet.services.engine, client, lambda: wall_ms() + 60_000, limits=quick()
            )
    assert figures["new"] > 0 and figures["delivered"] == 0
    assert sent == [] and listening.connections == 0
    for hook_id in ids:
        errors = await _errors(fleet, hook_id)
        assert errors == {"refused: address not allowed"}, (hook_id, errors)


async def test_a_name_resolving_to_an_internal_address_is_refused_at_delivery(
    fleet: Fleet,
) -> None:
    hook = await _hook(fleet, "s-xinhua", "https://hooks.example/a")
    await _events(fleet)
    answers = {"hooks.example": ["93.184.215.14", "10.0.0.8"]}  # one good, one internal

    async def resolver(host: str, port: int) -> list[targets.Address]:
        return [ipaddress.ip_address(a) for a in answers[host]]

    sent: list[httpx.Request] = []
    tripwire = httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(204))
    async with httpx.AsyncClient(transport=tripwire) as client:
        for internal in (["10.0.0.8"], ["93.184.215.14", "10.0.0.8"], ["::ffff:192.168.0.1"]):
            answers["hooks.example"] = internal
            figures = await webhooks.deliver_once(
                fleet.services.engine, client, wall_ms, resolver=resolver
            )
            assert figures["delivered"] == 0 and figures["retry"] == 1 and sent == []
            assert await _errors(fleet, hook["id"]) == {"refused: address not allowed"}
            await transaction(
                fleet.services.engine,
                lambda c: c.execute(sa.update(store.delivery_t).values(next_ms=0)),
            )
        # Public now: the connection goes to the address checked, the name in Host and SNI.
        answers["hooks.example"] = ["93.184.215.14"]
        figures = await webhooks.deliver_once(
            fleet.services.engine, client, wall_ms, resolver=resolver
        )
    assert figures["delivered"] > 0 and len(sent) == figures["delivered"]
    assert {r.url.host for r in sent} == {"93.184.215.14"}
    assert {r.headers["host"] for r in sent} == {"hooks.example"}
    assert {r.extensions["sni_hostname"] for r in sent} == {"hooks.example"}
    assert await _errors(fleet, hook["id"]) == {""}


async def test_a_dripping_and_a_huge_receiver_delay_no_one_else(fleet: Fleet) -> None:
    _allow_local(fleet)
    limits = webhooks.Limits(connect_s=1.0, total_s=3.0, max_reply_bytes=64 * 1024)
    async with serving(dripping()) as drip, serving(huge()) as big, serving(good()) as ok:
        drip_hook = await _hook(fleet, "s-xinhua", drip.url)
        big_hook = await _hook(fleet, "s-xinhua", big.url)
        ok_hook = await _hook(fleet, "s-dongfeng", ok.url)
        await _events(fleet)
        engine = fleet.services.engine
        async with webhooks.client_for(limits) as client:
            courier = webhooks.Courier(engine, client, wall_ms, limits=limits, allow=LOCAL)
            started = time.monotonic()
            tracemalloc.start()
            try:
                await courier.round()
                await _until(lambda: ok_hook["id"] not in courier.busy)
                first = time.monotonic() - started
                assert ok.requests and await _errors(fleet, ok_hook["id"]) == {""}
                # The dripping lane still busy, a new event reaches the good receiver at once.
                assert drip_hook["id"] in courier.busy
                before = len(ok.requests)
                alert_id = msgspec.json.decode(ok.requests[0][1])["alert"]["id"]
                comment = await fleet.client.post(
                    f"/v1/alerts/{alert_id}/comments",
                    json={"text": "催办"},
                    headers=await fleet.supervisor("s-dongfeng"),
                )
                assert comment.status_code == 201, comment.text
                commented = time.monotonic()
                await courier.round()
                await _until(lambda: len(ok.requests) > before)
                second = time.monotonic() - commented
                assert drip_hook["id"] in courier.busy
                await courier.drain()
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            took = time.monotonic() - started
            outcome = await courier.attempt(big.url, b"{}", {})
    assert first < limits.total_s and second < limits.total_s, (first, second)
    assert took < limits.total_s + 2, took  # the drip alone would take 30 s
    assert len(drip.requests) == 1  # its first try timed out; its other deliveries wait
    assert outcome.error == "" and outcome.read_bytes == limits.max_reply_bytes
    assert big.sent < 64 * 1024 * 1024  # left unread: the receiver could not push it all
    assert peak < 16 * 1024 * 1024, peak
    assert await _errors(fleet, drip_hook["id"]) == {"timeout"}
    assert await _errors(fleet, big_hook["id"]) == {""}


async def test_an_old_url_with_cr_lf_fails_alone(fleet: Fleet) -> None:
    _allow_local(fleet)
    async with serving(good()) as ok:
        bad_id = await _stored_hook(fleet, ok.url + "\r\nX-Injected: yes")
        await _hook(fleet, "s-dongfeng", ok.url)
        await _events(fleet)
        async with webhooks.client_for(quick()) as client:
            figures = await webhooks.deliver_once(
                fleet.services.engine, client, wall_ms, limits=quick(), allow=LOCAL
            )
    assert figures["delivered"] == len(ok.requests) > 0
    assert all("x-injected" not in h for h, _, _ in ok.requests)
    assert await _errors(fleet, bad_id) == {"refused: invalid url"}


async def test_a_closed_port_and_a_filtered_one_read_the_same(fleet: Fleet) -> None:
    """Also an unknown name and a TLS handshake that fails; a good webhook delivers beside."""
    _allow_local(fleet)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    # A listener that never accepts, its queue full: further connection attempts go unanswered.
    filtered = socket.socket()
    filtered.bind(("127.0.0.1", 0))
    filtered.listen(0)
    filtered_port = filtered.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", filtered_port))
        fillers.append(filler)
    stack = contextlib.AsyncExitStack()
    try:
        plain = await stack.enter_async_context(serving(good()))
        fine = await stack.enter_async_context(serving(good()))
        tls_hook = await _hook(fleet, "s-xinhua", f"https://127.0.0.1:{plain.port}/")
        fine_hook = await _hook(fleet, "s-dongfeng", fine.url)
        closed_hook = await _hook(fleet, "s-xinhua", f"http://127.0.0.1:{closed_port}/")
        filtered_hook = await _hook(fleet, "s-xinhua", f"http://127.0.0.1:{filtered_port}/")
        unknown = await _hook(fleet, "s-xinhua", "http://no-such-host.example/")

        async def resolver(host: str, port: int) -> list[targets.Address]:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

        await _events(fleet)
        async with webhooks.client_for(quick()) as client:
            await webhooks.deliver_once(
                fleet.services.engine,
                client,
                wall_ms,
                limits=quick(),
                allow=LOCAL,
                resolver=resolver,
            )
    finally:
        await stack.aclose()
        for s in (filtered, *fillers):
            s.close()
    headers = await fleet.supervisor("s-xinhua")
    seen = {}
    assert fine.requests and await _errors(fleet, fine_hook["id"]) == {""}
    for hook in (closed_hook, filtered_hook, unknown, tls_hook):
        reply = await fleet.client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=headers)
        seen[hook["url"]] = {d["last_error"] for d in reply.json() if d["attempts"]}
    assert list(seen.values()) == [{"connection failed"}] * 4, seen


def _documented_receiver() -> dict[str, Any]:
    """The receiver example of docs/alerts.md, run as written."""
    text = DOCS.read_text()
    code = re.search(r"### A receiver in Python\n\n```python\n(.*?)```", text, re.S)
    assert code is not None
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), str(DOCS), "exec"), namespace)
    return namespace


async def test_deliveries_are_signed_and_a_replay_is_detectable(fleet: Fleet) -> None:
    _allow_local(fleet)
    async with serving(good()) as ok:
        hook = await _hook(fleet, "s-xinhua", ok.url)
        old_secret = "u5FED-jsU6tiXcetHcQdZhEukAx5_KQX_mZA93ctJD0"  # registered before whsec_
        await _stored_hook(fleet, ok.url, secret=old_secret)
        await _events(fleet)
        async with webhooks.client_for(quick()) as client:
            await webhooks.deliver_once(
                fleet.services.engine, client, wall_ms, limits=quick(), allow=LOCAL
            )
    assert ok.requests
    receiver = _documented_receiver()
    for headers, body, _ in ok.requests:
        hook_id = int(headers["webhook-id"].split(":")[0])
        secret = hook["secret"] if hook_id == hook["id"] else old_secret
        key: str | bytes = secret if secret.startswith("whsec_") else secret.encode()
        assert Webhook(key).verify(body, headers)["event"]["id"] == int(
            headers["webhook-id"].split(":")[1]
        )
        assert headers["webhook-id"] == headers["idempotency-key"]
        assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
        sent_at = int(headers["webhook-timestamp"])
        receiver["SECRET"] = secret
        seen: set[str] = set()
        assert receiver["handle"](headers, body, seen, now=sent_at + 5) == 204
        assert headers["webhook-id"] in seen
        # The same delivery again: recognised by its id, done nothing.
        assert receiver["handle"](headers, body, seen, now=sent_at + 6) == 204
        # Replayed later, to a receiver that forgot the id: too old.
        assert receiver["handle"](headers, body, set(), now=sent_at + 301) == 400
        # A fresh timestamp on the captured delivery: the signature no longer matches.
        fresh = {**headers, "webhook-timestamp": str(sent_at + 300)}
        assert receiver["handle"](fresh, body, set(), now=sent_at + 301) == 401
        assert receiver["handle"](headers, body + b" ", set(), now=sent_at + 5) == 401
        with pytest.raises(WebhookVerificationError):
            Webhook(key).verify(body, {**headers, "webhook-timestamp": str(sent_at - 3600)})


async def test_the_worker_loop_delivers_by_its_settings(fleet: Fleet) -> None:
    _allow_local(fleet)
    settings = fleet.services.settings.with_(webhook_timeout_s=2, webhook_connect_timeout_s=1)
    async with serving(good()) as ok, serving(dripping()) as drip:
        await _hook(fleet, "s-xinhua", drip.url)
        hook = await _hook(fleet, "s-dongfeng", ok.url)
        await _events(fleet)
        loop = asyncio.create_task(main.deliver_forever(settings, fleet.services.engine, wall_ms))
        try:
            await _until(lambda: len(ok.requests) > 0 and len(drip.requests) > 0)
            await asyncio.sleep(0.2)
            assert await _errors(fleet, hook["id"]) == {""}
        finally:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop
    for headers, _, _ in ok.requests:
        assert headers["host"] == f"127.0.0.1:{ok.port}" and headers["webhook-signature"]
