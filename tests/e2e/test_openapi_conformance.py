"""The served OpenAPI document tells the truth: schemathesis generates requests for every
operation from /schema/openapi.json, sends them to the app (in process, on PostgreSQL) with a
worker's device token, with a supervisor's token and with none, and checks every answer: never
a 5xx, and status code, content type, headers and body as the document says.

Every operation is tried; none is excluded. The alert stream is read with ``follow=false``
(followed, it never ends); ``/metrics`` is checked as the text it is documented as. Each
operation gets valid requests and requests that break the document's rules (those must be
refused with a documented 4xx), with random path ids and with the ids of real things (an
alert, a webhook, a unit, a device). Bounded for CI: EXAMPLES cases of each. The run prints
the requests tried and the 5xx seen.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import hypothesis
import msgspec
import pytest
import schemathesis
import sqlalchemy as sa
from hypothesis import HealthCheck, given
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi as schemathesis_asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from server.app import create_app
from server.db import make_engine
from server.settings import Settings
from server.store import webhooks
from server.tx import transaction
from tests.conftest import reset
from tests.integration.worker_support import W47, at, patrol
from tests.support import Clock, Fleet
from worker import sweep

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(900)]
"""Some 1,700 requests: under a minute on an idle 2-core machine, past the suite's 120 s on a
busy one (the timeout then fires inside a Hypothesis example, which reports it as flaky)."""

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = 6
"""Per operation, token, generation mode and choice of path ids (random, or of real things)."""
PUSH = "POST /v1/sync/push"


@schemathesis.serializer("application/msgpack")
def _msgpack(ctx: Any, value: Any) -> dict[str, Any]:
    """Bodies the document offers as MessagePack are sent as MessagePack too."""
    try:
        return {"data": msgspec.msgpack.encode(value)}
    except (UnicodeEncodeError, OverflowError, TypeError):
        hypothesis.reject()  # a lone surrogate or an int beyond 64 bits: not MessagePack
        raise


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGI = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]


class Counted:
    """The app, counting the HTTP requests that reach it and the statuses it answers."""

    def __init__(self, app: ASGI) -> None:
        self.app = app
        self.requests = 0
        self.statuses: Counter[int] = Counter()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.requests += 1

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.statuses[message["status"]] += 1
            await send(message)

        await self.app(scope, receive, sending)


async def _world(settings: Settings) -> dict[str, Any]:
    """The sample district with zhang's device (and a second one, to be revoked), a week of
    alerts, a webhook, and a supervisor of the whole street: the tokens, and the ids of real
    things for the path parameters."""
    await reset(settings)
    engine = make_engine(settings)
    app = create_app(settings, engine=engine)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as client:
            fleet = Fleet(client, app.state.services)
            fleet.services.clock = Clock(at(2, 20))
            await transaction(
                engine,
                lambda c: c.execute(
                    sa.text("UPDATE worker SET since_ms = :ms"), {"ms": W47.start_ms}
                ),
            )
            device = await fleet.device("w-zhang", "dev-conformance")
            await fleet.device("w-zhang", "dev-victim")
            await device.push([patrol("xinhua-g1", at(0, 8), 4)])
            await sweep.everything(engine, at(9, 10))
            supervisor = await fleet.supervisor("s-dongfeng")

        async def ids(conn: Any) -> dict[str, Any]:
            alert = (await conn.execute(sa.text("SELECT min(id) FROM alert"))).scalar()
            hook = await webhooks.create(
                conn,
                {
                    "unit_id": "xinhua",
                    "unit_path": "/jintai/dongfeng/xinhua/",
                    "url": "https://hooks.test/a",
                    "secret": "s",
                    "active": True,
                    "created_ms": at(9, 10),
                    "created_by": "s-dongfeng",
                },
            )
            return {"alert_id": alert, "webhook_id": hook}

        found = await transaction(engine, ids)
    finally:
        await engine.dispose()
    assert found["alert_id"] is not None
    return {**found, "device": device.token, "supervisor": supervisor["Authorization"]}


async def _document(app: ASGI) -> dict[str, Any]:
    """The served document, as a client fetches it."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        response = await client.get("/schema/openapi.json")
    response.raise_for_status()
    document: dict[str, Any] = response.json()
    return document


def _typed_msgpack(document: dict[str, Any]) -> dict[str, Any]:
    """The document with each MessagePack request body read through its ``contentSchema``:
    the document gives such a body as bytes (no generator encodes MessagePack); schemathesis
    then builds it as the decoded type it says and sends it encoded (``_msgpack``), so a
    MessagePack body is tried field by field like a JSON one."""
    for operations in document["paths"].values():
        for operation in operations.values():
            content = operation.get("requestBody", {}).get("content", {})
            media = content.get("application/msgpack")
            if media is not None:
                assert media["schema"]["format"] == "binary", media
                media["schema"] = media["schema"]["contentSchema"]
    return document


@dataclass
class Tally:
    """What the run saw: statuses per operation, failures, and the variants
    for which no request can break the document (nothing to negate)."""

    answered: dict[str, Counter[int]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    no_negative: list[str] = field(default_factory=list)


def _explore(strategy: Any, headers: dict[str, str], label: str, tally: Tally) -> None:
    """Send EXAMPLES cases of ``strategy`` and check each answer against the document."""
    seen = tally.answered.setdefault(label, Counter())

    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[hypothesis.Phase.generate],
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        response = case.call(headers=headers)
        seen[response.status_code] += 1
        case.validate_response(response, checks=CHECKS, headers=headers)

    run()


def test_every_operation_answers_as_documented(
    pg_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    world = asyncio.run(_world(pg_settings))
    app = Counted(create_app(pg_settings.with_(db_pool_size=4)))
    schema = schemathesis.openapi.from_dict(_typed_msgpack(asyncio.run(_document(app))))
    schema.app, schema.location = app, "/schema/openapi.json"
    app.requests, app.statuses = 0, Counter()
    real = {
        "alert_id": world["alert_id"],
        "webhook_id": world["webhook_id"],
        "unit_id": "xinhua",
        "device_id": "dev-victim",
        "worker_id": "w-zhang",
        "household_id": "h-xh-101",
    }
    # Patrolsync-Protocol is a documented header: schemathesis sends it (and breaks it).
    callers = {
        "device": {"Authorization": f"Bearer {world['device']}"},
        "supervisor": {"Authorization": world["supervisor"]},
        "nobody": {},
    }
    tally = Tally()
    started = time.monotonic()
    operations = [result.ok() for result in schema.get_all_operations()]
    try:
        for who, headers in callers.items():
            for operation in operations:
                # The stream follows forever by default: read what is there, then close.
                query = {"follow": "false"} if operation.path == "/v1/alerts/stream" else None
                names = {p.name for p in operation.path_parameters}
                fixed = {k: v for k, v in real.items() if k in names}
                # Random path ids, and (where the path has ids) those of real things.
                variants: list[dict[str, Any]] = [{}, {"path_parameters": fixed}] if fixed else [{}]
                for mode in schemathesis.GenerationMode:
                    for extra in variants:
                        strategy = operation.as_strategy(mode, query=query, **extra)
                        what = f"{who} {mode} {operation.label} {extra or ''}"
                        try:
                            _explore(strategy, headers, operation.label, tally)
                        except hypothesis.errors.Unsatisfiable:
                            # No parameter or body left to break: no negative case exists.
                            tally.no_negative.append(what)
                        except (Exception, BaseExceptionGroup) as exc:  # reported all at once
                            tally.failures.append(f"{what}: {exc}")
    finally:
        schemathesis_asgi.shutdown_lifespans()
    elapsed = time.monotonic() - started
    server_errors = sum(n for status, n in app.statuses.items() if status >= 500)
    lines = [
        f"schemathesis: {app.requests} requests tried over {len(operations)} operations in"
        f" {elapsed:.1f} s, {server_errors} answered 5xx",
        *(f"  {label}: {dict(sorted(s.items()))}" for label, s in tally.answered.items()),
        f"  variants without a negative case: {len(tally.no_negative)}",
    ]
    with capsys.disabled():  # the counts belong in every run's output, CI's too
        print("\n" + "\n".join(lines))
    assert not tally.failures, "\n\n".join(tally.failures)
    assert server_errors == 0
    assert len(tally.answered) == len(operations) and all(tally.answered.values())
