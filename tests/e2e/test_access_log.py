"""The access log and the request id, through the in-process app: one line per request with its
fields, the id taken from ``X-Request-ID`` when safe (else made) and returned, bound into every
line of the request, carried through the outbox into the worker's job; no secret in any line."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from server import logs
from server.store import outbox
from server.tx import read
from tests.support import Fleet
from worker import jobs, payloads

pytestmark = pytest.mark.usefixtures("fleet")


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    out = io.StringIO()
    logs.configure("INFO", as_json=True, stream=out)
    yield out
    logs.configure("WARNING")


def _read(out: io.StringIO) -> list[dict[str, Any]]:
    logs.flush()
    return [json.loads(x) for x in out.getvalue().splitlines()]


def _access(out: io.StringIO) -> list[dict[str, Any]]:
    return [x for x in _read(out) if x["logger"] == "patrolsync.access"]


async def test_one_access_line_per_request_with_its_id_in_the_reply(
    fleet: Fleet, lines: io.StringIO
) -> None:
    reply = await fleet.client.get("/healthz", headers={"X-Request-ID": "req-42.a:b"})
    assert reply.status_code == 200
    assert reply.headers["X-Request-ID"] == "req-42.a:b"
    (line,) = _access(lines)
    assert line["event"] == "http request" and line["level"] == "info"
    assert line["method"] == "GET" and line["path"] == "/healthz" and line["status"] == 200
    assert line["request_id"] == "req-42.a:b"
    assert line["bytes"] == len(reply.content)
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["client"] == "127.0.0.1"
    assert "timestamp" in line


@pytest.mark.parametrize(
    "offered", [None, b"", b"x" * 129, b"bad id", "évil".encode(), b'a"b', b"a<b>", b"a\\b"]
)
async def test_a_missing_or_unsafe_request_id_is_replaced(
    fleet: Fleet, lines: io.StringIO, offered: bytes | None
) -> None:
    headers = {} if offered is None else {"X-Request-ID": offered}
    reply = await fleet.client.get("/healthz", headers=headers)
    made = reply.headers["X-Request-ID"]
    assert re.fullmatch("[0-9a-f]{32}", made)
    (line,) = _access(lines)
    assert line["request_id"] == made


async def test_ids_made_for_two_requests_differ(fleet: Fleet, lines: io.StringIO) -> None:
    one = await fleet.client.get("/healthz")
    two = await fleet.client.get("/healthz")
    assert one.headers["X-Request-ID"] != two.headers["X-Request-ID"]
    assert [x["request_id"] for x in _access(lines)] == [
        one.headers["X-Request-ID"],
        two.headers["X-Request-ID"],
    ]


async def test_a_request_no_route_answers_is_logged(fleet: Fleet, lines: io.StringIO) -> None:
    reply = await fleet.client.post("/no/such/thing", headers={"X-Request-ID": "r-404"})
    assert reply.status_code == 404 and reply.headers["X-Request-ID"] == "r-404"
    (line,) = _access(lines)
    assert (line["method"], line["path"], line["status"]) == ("POST", "/no/such/thing", 404)


async def test_no_secret_of_the_request_is_in_any_line(fleet: Fleet, lines: io.StringIO) -> None:
    dev = await fleet.device("w-zhang")
    code = await fleet.code("w-li")
    invitation = "inv-secret-token-123"
    headers = {**dev.headers, "X-Request-ID": "r-secrets"}
    pulled = await fleet.client.get(
        "/v1/sync/pull", params={"code": code, "token": dev.token, "limit": 5}, headers=headers
    )
    assert pulled.status_code == 200
    await fleet.client.get(f"/invite/{invitation}?code={code}")
    text = (logs.flush(), lines.getvalue())[1]
    for secret in (dev.token, code, invitation):
        assert secret not in text
    mine = [x for x in _access(lines) if x["request_id"] == "r-secrets"]
    assert [x["path"] for x in mine] == ["/v1/sync/pull"]
    assert {x["path"] for x in _access(lines)} >= {"/invite/***"}


async def test_every_line_of_a_request_carries_its_id(fleet: Fleet, lines: io.StringIO) -> None:
    dev = await fleet.device("w-zhang")
    await dev.push([dev.checkin("xinhua-g1")])
    lines.truncate(0)
    lines.seek(0)
    fleet.client.headers["X-Request-ID"] = "r-push-1"
    try:
        await dev.push([dev.checkin("xinhua-g1")])
    finally:
        del fleet.client.headers["X-Request-ID"]
    mine = [x for x in _read(lines) if x.get("request_id") == "r-push-1"]
    assert {x["event"] for x in mine} >= {"push", "http request"}


async def test_the_workers_job_lines_carry_the_pushes_request_ids(
    fleet: Fleet, lines: io.StringIO
) -> None:
    """Push, relay (the outbox's rows as the queue's payload), run the job: its lines name the
    request of the push that asked; the job's id stays what the rows' ids and versions make."""
    one = await fleet.device("w-zhang")
    two = await fleet.device("w-wang")
    fleet.client.headers["X-Request-ID"] = "r-zhang"
    await one.push([one.checkin("xinhua-g1")])
    fleet.client.headers["X-Request-ID"] = "r-wang"
    await two.push([two.checkin("xinhua-g1")])
    del fleet.client.headers["X-Request-ID"]
    engine = fleet.services.engine
    due = await read(engine, lambda c: outbox.due(c, fleet.services.clock(), 60_000, 100))
    assert {r.request_id for r in due} == {"r-zhang", "r-wang"}
    job = payloads.decode_evaluate(payloads.encode_evaluate(payloads.Evaluate.of(due)))
    assert job.request_ids == ["r-wang", "r-zhang"]
    lines.truncate(0)
    lines.seek(0)
    ctx = {"engine": engine, "clock": fleet.services.clock}
    await jobs.evaluate_job(ctx, payloads.encode_evaluate(job))
    (evaluated,) = [x for x in _read(lines) if x["event"] == "evaluated"]
    assert evaluated["request_ids"] == ["r-wang", "r-zhang"]
    assert "request_ids" not in structlog.contextvars.get_contextvars()
    assert await read(engine, lambda c: outbox.due(c, fleet.services.clock(), 0, 100)) == []
