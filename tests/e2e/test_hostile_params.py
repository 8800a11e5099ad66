"""Hostile path, query and body parameters of the supervisors' and devices' endpoints (push
excepted): NUL and control characters in ids, integers outside the BIGINT range, cursors holding
such numbers, NUL in stored text. Each answers a 4xx with a stable code, on both backends, and
a refused write leaves every table as it was."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec
import pytest
import sqlalchemy as sa

from server.models import metadata
from tests.integration.worker_support import W47, at, clock_of, patrol, push_at, workers_added_at
from tests.support import Clock, Fleet
from worker import sweep

HUGE = "99999999999999999999"
"""20 digits: more than a BIGINT (and SQLite's INTEGER) holds."""
ALERT = "{alert}"
"""Stands for the id of a real alert of s-xinhua's subtree."""


DEEP = b"[" * 5000 + b"]" * 5000
"""JSON nested deeper than any decoder follows (as bytes: no encoder writes it either)."""


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    status: int
    code: str
    params: dict[str, str] = field(default_factory=dict)
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


CASES: dict[str, Case] = {
    # Ids with NUL or control characters: refused as invalid (422), never looked up.
    "unit path NUL": Case("GET", "/v1/units/%00", 422, "invalid_request"),
    "unit path control": Case("GET", "/v1/units/x%01y", 422, "invalid_request"),
    "unit path DEL": Case("GET", "/v1/units/xinhua%7F", 422, "invalid_request"),
    "unit path final newline": Case("GET", "/v1/units/xinhua%0A", 422, "invalid_request"),
    "alerts unit NUL": Case("GET", "/v1/alerts", 422, "invalid_request", {"unit": "\x00"}),
    "alerts rule NUL": Case("GET", "/v1/alerts", 422, "invalid_request", {"rule": "a\x00"}),
    "alerts period NUL": Case("GET", "/v1/alerts", 422, "invalid_request", {"period": "\x00"}),
    "compliance unit NUL": Case(
        "GET", "/v1/compliance", 422, "invalid_request", {"unit": "xinhua\x00"}
    ),
    "compliance week NUL": Case("GET", "/v1/compliance", 422, "invalid_request", {"week": "\x00"}),
    "settings get NUL": Case("GET", "/v1/units/%00/settings", 422, "invalid_request"),
    "settings put NUL": Case(
        "PUT", "/v1/units/xinhua%00/settings", 422, "invalid_request", body={"quota_patrols": 3}
    ),
    "revoke NUL": Case("POST", "/v1/devices/%00/revoke", 422, "invalid_request"),
    "revoke control": Case("POST", "/v1/devices/dev%0A/revoke", 422, "invalid_request"),
    # Ids in bodies.
    "enrolment worker NUL": Case(
        "POST", "/v1/enrolments", 422, "invalid_request", body={"worker_id": "w-zhang\x00"}
    ),
    "enrolment worker final newline": Case(
        "POST", "/v1/enrolments", 422, "invalid_request", body={"worker_id": "w-zhang\n"}
    ),
    "webhook unit final newline": Case(
        "POST",
        "/v1/webhooks",
        422,
        "invalid_request",
        body={"unit_id": "xinhua\n", "url": "https://hooks.test/a"},
    ),
    "webhook unit NUL": Case(
        "POST",
        "/v1/webhooks",
        422,
        "invalid_request",
        body={"unit_id": "xinhua\x00", "url": "https://hooks.test/a"},
    ),
    "enrol code NUL": Case(
        "POST",
        "/v1/auth/enrol",
        422,
        "invalid_request",
        body={"code": "ABCD\x00EFGH", "device_id": "dev-new", "platform": "test"},
    ),
    "enrol device final newline": Case(
        "POST",
        "/v1/auth/enrol",
        422,
        "invalid_request",
        body={"code": "ABCDEFGH", "device_id": "dev-new\n", "platform": "test"},
    ),
    "enrol platform NUL": Case(
        "POST",
        "/v1/auth/enrol",
        422,
        "invalid_request",
        body={"code": "ABCDEFGH", "device_id": "dev-new", "platform": "a\x00"},
    ),
    # Integer ids outside the BIGINT range: refused as invalid (422), never looked up.
    "alert huge": Case("GET", f"/v1/alerts/{HUGE}", 422, "invalid_request"),
    "alert negative huge": Case("GET", f"/v1/alerts/-{HUGE}", 422, "invalid_request"),
    "acknowledge huge": Case("POST", f"/v1/alerts/{HUGE}/acknowledge", 422, "invalid_request"),
    "resolve huge": Case("POST", f"/v1/alerts/{HUGE}/resolve", 422, "invalid_request"),
    "comment huge": Case(
        "POST", f"/v1/alerts/{HUGE}/comments", 422, "invalid_request", body={"text": "x"}
    ),
    "webhook delete huge": Case("DELETE", f"/v1/webhooks/{HUGE}", 422, "invalid_request"),
    "deliveries huge": Case("GET", f"/v1/webhooks/{HUGE}/deliveries", 422, "invalid_request"),
    # Cursors holding numbers out of range: 400 cursor_invalid.
    "alert cursor huge": Case(
        "GET", "/v1/alerts", 400, "cursor_invalid", {"cursor": _b64(f"a1:{HUGE}")}
    ),
    "alert cursor negative huge": Case(
        "GET", "/v1/alerts", 400, "cursor_invalid", {"cursor": _b64(f"a1:-{HUGE}")}
    ),
    "stream after huge": Case(
        "GET",
        "/v1/alerts/stream",
        400,
        "cursor_invalid",
        {"after": f"1.{HUGE}", "follow": "false"},
    ),
    "stream after huge txid": Case(
        "GET",
        "/v1/alerts/stream",
        400,
        "cursor_invalid",
        {"after": f"{HUGE}.1", "follow": "false"},
    ),
    "stream last-event-id huge": Case(
        "GET",
        "/v1/alerts/stream",
        400,
        "cursor_invalid",
        {"follow": "false"},
        headers={"Last-Event-ID": f"1.{HUGE}"},
    ),
    # Stored text with NUL, and settings out of range.
    "comment NUL": Case(
        "POST", f"/v1/alerts/{ALERT}/comments", 422, "invalid_request", body={"text": "a\x00b"}
    ),
    "acknowledge note NUL": Case(
        "POST", f"/v1/alerts/{ALERT}/acknowledge", 422, "invalid_request", body={"note": "\x00"}
    ),
    "comment control character": Case(
        "POST", f"/v1/alerts/{ALERT}/comments", 422, "invalid_request", body={"text": "a\x1bb"}
    ),
    "resolve note NUL": Case(
        "POST", f"/v1/alerts/{ALERT}/resolve", 422, "invalid_request", body={"note": "ok\x00"}
    ),
    "settings huge int": Case(
        "PUT",
        "/v1/units/xinhua/settings",
        422,
        "invalid_request",
        body={"quota_patrols": int(HUGE)},
    ),
    "settings huge ms": Case(
        "PUT",
        "/v1/units/xinhua/settings",
        422,
        "invalid_request",
        body={"silent_device_ms": int(HUGE)},
    ),
    "settings deep nesting": Case(
        "PUT",
        "/v1/units/xinhua/settings",
        400,
        "malformed_body",
        body=b'{"quota_patrols": ' + DEEP + b"}",
    ),
    "enrolment deep nesting": Case(
        "POST",
        "/v1/enrolments",
        400,
        "malformed_body",
        body=b'{"worker_id": "w-zhang", "x": ' + DEEP + b"}",
    ),
    "enrol deep nesting": Case(
        "POST",
        "/v1/auth/enrol",
        400,
        "malformed_body",
        body=b'{"code": "ABCDEFGH", "device_id": "dev-new", "x": ' + DEEP + b"}",
    ),
    "settings NUL key": Case(
        "PUT", "/v1/units/xinhua/settings", 422, "invalid_request", body={"quota\x00": 3}
    ),
    "settings NUL value": Case(
        "PUT",
        "/v1/units/xinhua/settings",
        422,
        "invalid_request",
        body={"at_risk_time": "10:00\x00"},
    ),
}


async def _snapshot(fleet: Fleet) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    async with fleet.services.engine.connect() as conn:
        for table in metadata.sorted_tables:
            result = await conn.execute(sa.select(table))
            rows[table.name] = sorted((tuple(r) for r in result), key=repr)
    return rows


async def _an_alert(fleet: Fleet) -> int:
    """One open alert in s-xinhua's subtree (zhang missed the week's quota): its id."""
    fleet.services.clock = Clock(at(0, 6))
    await workers_added_at(fleet, W47.start_ms)
    zhang = fleet.devices[0]
    await push_at(zhang, at(2, 20), [patrol("xinhua-g1", at(0, 8), 4)])
    clock_of(fleet).ms = at(9, 10)
    await sweep.everything(fleet.services.engine, at(9, 10))
    headers = await fleet.supervisor("s-xinhua")
    listed = await fleet.client.get("/v1/alerts", params={"status": "open"}, headers=headers)
    assert listed.status_code == 200, listed.text
    alert_id: int = listed.json()["alerts"][0]["id"]
    return alert_id


@pytest.mark.parametrize("name", list(CASES))
async def test_hostile_parameter_is_a_4xx_with_a_stable_code(fleet: Fleet, name: str) -> None:
    case = CASES[name]
    await fleet.device("w-zhang")
    path = case.path
    if ALERT in path:
        path = path.replace(ALERT, str(await _an_alert(fleet)))
    auth = await fleet.supervisor("s-xinhua")
    content = case.body if isinstance(case.body, bytes) else b""
    if case.body is not None and not isinstance(case.body, bytes):
        content = msgspec.json.encode(case.body)
    headers = {**auth, **case.headers}
    if case.body is not None:
        headers["Content-Type"] = "application/json"
    before = await _snapshot(fleet)
    request = fleet.client.build_request(
        case.method,
        path,
        params=case.params,
        content=content,
        headers=headers,
    )
    response: httpx.Response = await fleet.client.send(request)
    assert response.status_code == case.status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]["code"] == case.code, response.text
    assert await _snapshot(fleet) == before, "a refused request wrote something"


async def test_bounds_are_inclusive_of_the_largest_id(fleet: Fleet) -> None:
    """The largest BIGINT is a well-formed id of nothing: 404, not a refusal."""
    headers = await fleet.supervisor("s-xinhua")
    biggest = 2**63 - 1
    for method, path in [
        ("GET", f"/v1/alerts/{biggest}"),
        ("POST", f"/v1/alerts/{biggest}/acknowledge"),
        ("DELETE", f"/v1/webhooks/{biggest}"),
        ("GET", f"/v1/webhooks/{biggest}/deliveries"),
        ("GET", "/v1/units/no-such-unit"),
        ("POST", "/v1/devices/no-such-device/revoke"),
    ]:
        response = await fleet.client.request(method, path, headers=headers)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"]["code"] == "not_found"
    cursor = _b64(f"a1:{biggest}")
    page = await fleet.client.get("/v1/alerts", params={"cursor": cursor}, headers=headers)
    assert page.status_code == 200, page.text
    stream = await fleet.client.get(
        "/v1/alerts/stream",
        params={"after": f"{biggest}.{biggest}", "follow": "false"},
        headers=headers,
    )
    assert stream.status_code == 200, stream.text
    assert stream.text == ""
