"""Webhook delivery: at least once, signed as Standard Webhooks sign, retried with backoff,
dead-lettered after the last try.

Each POST carries the alert event and the alert as JSON (``schemas.alerts.StreamEvent``) and:

* ``webhook-id``: ``<webhook id>:<event id>``, the same on every try of one event (also sent
  as ``Idempotency-Key``); ``webhook-timestamp``: the try's time in seconds;
  ``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``;
* ``Patrolsync-Signature: sha256=<hex>`` (HMAC-SHA256 of the body alone, kept for receivers
  written before the Standard Webhooks headers) and ``Patrolsync-Event``, the event's kind.

The key of both HMACs is the webhook's secret: a ``whsec_<base64>`` secret is the base64-decoded
bytes for ``webhook-signature`` (as Standard Webhooks libraries read it); the UTF-8 bytes of the
secret otherwise, and always for ``Patrolsync-Signature``.

Where a try may go (``server.webhook_targets``): the URL is checked again at every try (rows
stored before the check existed are refused there, each on its own), the host is resolved once,
every address it resolves to must be allowed, and the connection goes to the address that was
checked (the URL's host travels in ``Host`` and, for https, as the TLS server name), so a name
that resolves differently a moment later (DNS rebinding) changes nothing. Redirects are not
followed.

Isolation: every webhook has its own lane. A lane sends its claimed deliveries one after
another, each try bounded by ``Limits.connect_s`` and ``Limits.total_s`` and its reply read to
``Limits.max_reply_bytes`` at most; lanes run side by side (at most ``Limits.concurrency`` tries
at once), and a webhook whose lane is still running is not claimed again. So a slow, huge,
refusing or broken receiver costs its own lane only. A failed try ends the lane's batch: the
deliveries after it are given back untried.

A failed try records a fixed text (``ERRORS``) that says nothing about the network beyond it:
a closed port, a filtered one and an unknown name all read ``connection failed``.

A 2xx reply delivers; anything else schedules the next try after ``BACKOFF_S[tries - 1]``;
after ``MAX_TRIES`` the delivery is ``dead``.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import ipaddress
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine
from standardwebhooks import Webhook

from server import alerting
from server import webhook_targets as targets
from server.settings import Settings
from server.store import webhooks as store
from server.store.rows import FeedRow
from server.tx import read, transaction
from sync.durations import SECOND_MS
from worker import metrics

log = structlog.get_logger("patrolsync.webhooks")
BACKOFF_S = (10, 30, 120, 600, 1800, 3600, 7200)
MAX_TRIES = len(BACKOFF_S) + 1
INVALID_URL = "refused: invalid url"
NOT_ALLOWED = "refused: address not allowed"
TIMEOUT = "timeout"
CONNECTION_FAILED = "connection failed"
ERRORS = (INVALID_URL, NOT_ALLOWED, TIMEOUT, CONNECTION_FAILED, "HTTP <status>")
"""Every text a failed try records."""
_json = msgspec.json.Encoder()

Resolver = Callable[[str, int], Awaitable[list[targets.Address]]]


@dataclass(frozen=True, slots=True)
class Limits:
    connect_s: float = 5.0
    """Resolving the host and connecting (TLS included)."""
    total_s: float = 10.0
    """A whole try, from resolving the host to the last byte of the reply read."""
    max_reply_bytes: int = 64 * 1024
    """Of a reply's body, this much is read at most; the rest is left unread."""
    concurrency: int = 16
    """Tries at once, over all webhooks."""
    per_hook: int = 10
    """Deliveries one lane takes at a time."""

    @property
    def lease_ms(self) -> int:
        """How long a claimed delivery is this worker's: longer than its lane can take."""
        return int((self.per_hook * self.total_s + 60) * SECOND_MS)

    @staticmethod
    def of(settings: Settings) -> Limits:
        return Limits(
            connect_s=settings.webhook_connect_timeout_s,
            total_s=settings.webhook_timeout_s,
            max_reply_bytes=settings.webhook_max_reply_bytes,
            concurrency=settings.webhook_concurrency,
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    error: str
    """Empty when delivered, else one of ``ERRORS``."""
    read_bytes: int = 0
    """How much of the reply's body was read."""


async def system_resolver(host: str, port: int) -> list[targets.Address]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def signature(secret: str, body: bytes) -> str:
    """``Patrolsync-Signature``: HMAC-SHA256 of the body, keyed with the secret's UTF-8 bytes."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signing_key(secret: str) -> bytes:
    """The ``webhook-signature`` key: ``whsec_<base64>`` decoded, or the secret's UTF-8 bytes."""
    if secret.startswith("whsec_"):
        return base64.b64decode(secret.removeprefix("whsec_"))
    return secret.encode()


def headers_for(secret: str, message_id: str, timestamp_s: int, body: bytes) -> dict[str, str]:
    when = datetime.fromtimestamp(timestamp_s, tz=UTC)
    return {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp_s),
        "webhook-signature": Webhook(signing_key(secret)).sign(message_id, when, body.decode()),
        "Idempotency-Key": message_id,
        "Patrolsync-Signature": signature(secret, body),
    }


def client_for(limits: Limits) -> httpx.AsyncClient:
    """The HTTP client deliveries use: no proxy from the environment, no redirects, no
    connection kept (one address may serve several host names)."""
    return httpx.AsyncClient(
        trust_env=False,
        follow_redirects=False,
        timeout=httpx.Timeout(limits.total_s, connect=limits.connect_s),
        limits=httpx.Limits(max_connections=limits.concurrency, max_keepalive_connections=0),
    )


class Courier:
    """Fans events out to deliveries and sends them, one lane per webhook (module docstring)."""

    def __init__(
        self,
        engine: AsyncEngine,
        client: httpx.AsyncClient,
        clock: Callable[[], int],
        *,
        limits: Limits = Limits(),
        allow: targets.AllowList = targets.NOTHING,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.engine, self.client, self.clock = engine, client, clock
        self.limits, self.allow, self.resolver = limits, allow, resolver
        self.figures: Counter[str] = Counter()
        self._slots = asyncio.Semaphore(limits.concurrency)
        self._lanes: dict[int, asyncio.Task[None]] = {}

    async def round(self, limit: int = 100) -> None:
        """Fan new events out, claim due deliveries of the webhooks not busy, start their
        lanes; does not wait for them."""
        now_ms = self.clock()
        self.figures["new"] += await transaction(self.engine, lambda c: store.fan_out(c, now_ms))
        busy = set(self._lanes)
        due = await transaction(
            self.engine,
            lambda c: store.claim(
                c,
                now_ms,
                self.limits.lease_ms,
                limit,
                busy=busy,
                per_hook=self.limits.per_hook,
            ),
        )
        if not due:
            return
        events = await read(self.engine, lambda c: store.event_rows(c, [d.event_id for d in due]))
        batches: dict[int, list[store.Claimed]] = {}
        for delivery in due:
            batches.setdefault(delivery.webhook_id, []).append(delivery)
        for hook_id, batch in batches.items():
            task = asyncio.create_task(self._lane(batch, events))
            self._lanes[hook_id] = task
            task.add_done_callback(functools.partial(self._lane_done, hook_id))

    @property
    def busy(self) -> set[int]:
        """The webhooks whose lane is running."""
        return set(self._lanes)

    def _lane_done(self, hook_id: int, _: asyncio.Task[None]) -> None:
        self._lanes.pop(hook_id, None)

    async def drain(self) -> None:
        """Wait until every lane has finished."""
        while self._lanes:
            await asyncio.gather(*self._lanes.values(), return_exceptions=True)
            for hook_id, task in list(self._lanes.items()):
                if task.done():
                    self._lanes.pop(hook_id, None)

    async def stop(self) -> None:
        for task in list(self._lanes.values()):
            task.cancel()
        await self.drain()

    async def _lane(self, batch: list[store.Claimed], events: dict[int, FeedRow]) -> None:
        try:
            for index, delivery in enumerate(batch):
                row = events[delivery.event_id]
                body = _json.encode(alerting.stream_event(row))
                message_id = f"{delivery.webhook_id}:{delivery.event_id}"
                async with self._slots:
                    headers = headers_for(
                        delivery.secret, message_id, self.clock() // SECOND_MS, body
                    )
                    headers["Patrolsync-Event"] = str(row.kind)
                    outcome = await self.attempt(delivery.url, body, headers)
                status = await self._record(delivery, outcome)
                if outcome.error:
                    # A try that will be retried is a warning; a delivery given up is an error.
                    dead = status == "dead"
                    (log.error if dead else log.warning)(
                        "webhook delivery dead: no more tries" if dead else "webhook try failed",
                        webhook_id=delivery.webhook_id,
                        delivery_id=delivery.id,
                        tries=delivery.attempts + 1,
                        error=outcome.error,
                    )
                    await self._release([d.id for d in batch[index + 1 :]])
                    return
        except Exception as exc:  # the database: the lease brings the deliveries back
            log.warning("webhooks: lane failed", error=type(exc).__name__)

    async def _release(self, ids: list[int]) -> None:
        if ids:
            now_ms = self.clock()
            await transaction(self.engine, lambda c: store.release(c, ids, now_ms))

    async def _record(self, delivery: store.Claimed, outcome: Outcome) -> str:
        """Note the try's outcome; return the delivery's status now (``delivered``,
        ``pending`` for a retry, ``dead``)."""
        now_ms = self.clock()
        tries = delivery.attempts + 1
        if not outcome.error:
            status, next_ms = "delivered", now_ms
        elif tries >= MAX_TRIES:
            status, next_ms = "dead", now_ms
        else:
            status, next_ms = "pending", now_ms + BACKOFF_S[tries - 1] * SECOND_MS
        outcome_name = "retry" if status == "pending" else status
        self.figures[outcome_name] += 1
        await transaction(
            self.engine,
            lambda c: store.record(
                c,
                delivery.id,
                status=status,
                attempts=tries,
                next_ms=next_ms,
                error=outcome.error,
                now_ms=now_ms,
            ),
        )
        metrics.delivery(outcome_name)
        return status

    async def _address(self, target: targets.Target) -> targets.Address | None:
        """The address to connect to, or None when one the host resolves to is not allowed."""
        if target.literal is not None:
            addresses = [target.literal]
        else:
            addresses = await self.resolver(target.host, target.port)
        if not addresses:
            raise OSError("no address")
        if self.allow.allows_name(target.host):
            return addresses[0]
        if all(targets.address_allowed(a, self.allow) for a in addresses):
            return addresses[0]
        return None

    async def attempt(self, url: str, body: bytes, headers: dict[str, str]) -> Outcome:
        """One try of one delivery; never raises for anything the receiver does."""
        try:
            target = targets.parse(url)
        except targets.UrlRefused:
            return Outcome(INVALID_URL)
        ready = "connection.start_tls.complete" if target.scheme == "https" else None
        connected = False
        read_bytes = 0

        async def trace(name: str, info: dict[str, Any]) -> None:
            nonlocal connected
            if name == (ready or "connection.connect_tcp.complete"):
                connected = True

        limits = self.limits
        try:
            async with asyncio.timeout(limits.total_s):
                resolving = time.monotonic()
                async with asyncio.timeout(limits.connect_s):
                    address = await self._address(target)
                connect_s = max(0.05, limits.connect_s - (time.monotonic() - resolving))
                if address is None:
                    return Outcome(NOT_ALLOWED)
                host = f"[{address}]" if address.version == 6 else str(address)
                extensions: dict[str, Any] = {"trace": trace}
                if target.scheme == "https" and target.literal is None:
                    extensions["sni_hostname"] = target.host
                request = self.client.build_request(
                    "POST",
                    f"{target.scheme}://{host}:{target.port}{target.target}",
                    content=body,
                    headers={**headers, "Host": target.host_header},
                    timeout=httpx.Timeout(limits.total_s, connect=connect_s),
                    extensions=extensions,
                )
                reply = await self.client.send(request, stream=True, follow_redirects=False)
                connected = True
                try:
                    if reply.is_stream_consumed:  # already in memory: a transport of no network
                        read_bytes = min(len(reply.content), limits.max_reply_bytes)
                    else:
                        async for chunk in reply.aiter_raw(min(limits.max_reply_bytes, 16384)):
                            read_bytes += len(chunk)
                            if read_bytes >= limits.max_reply_bytes:
                                break
                finally:
                    await reply.aclose()
        except TimeoutError:
            return Outcome(TIMEOUT if connected else CONNECTION_FAILED, read_bytes)
        except httpx.TimeoutException:
            return Outcome(TIMEOUT if connected else CONNECTION_FAILED, read_bytes)
        except (httpx.HTTPError, OSError, ValueError):
            return Outcome(CONNECTION_FAILED, read_bytes)
        if not reply.is_success:
            return Outcome(f"HTTP {reply.status_code}", read_bytes)
        return Outcome("", read_bytes)


async def deliver_once(
    engine: AsyncEngine,
    client: httpx.AsyncClient,
    clock: Callable[[], int],
    limit: int = 100,
    *,
    limits: Limits = Limits(),
    allow: targets.AllowList = targets.NOTHING,
    resolver: Resolver = system_resolver,
) -> dict[str, int]:
    """Fan new events out to deliveries, then try every due delivery once, waiting for all."""
    courier = Courier(engine, client, clock, limits=limits, allow=allow, resolver=resolver)
    await courier.round(limit)
    await courier.drain()
    return {k: courier.figures[k] for k in ("new", "delivered", "retry", "dead")}
