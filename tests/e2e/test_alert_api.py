"""The supervisors' API on both backends: the alert lifecycle, filters and pages, the stream,
unit settings, the compliance summary and webhooks. Alerts come from the sweeps (no Redis)."""

from __future__ import annotations

import csv
import functools
import hashlib
import hmac
import io
import ipaddress
import json
from typing import Any

import httpx
import msgspec
import pytest

from server import logs
from tests.integration.worker_support import W47, at, clock_of, patrol, push_at, workers_added_at
from tests.support import Clock, Fleet
from worker import sweep, webhooks

pytestmark = pytest.mark.usefixtures("fleet")


@pytest.fixture
async def clocked(fleet: Fleet) -> Fleet:
    fleet.services.clock = Clock(at(0, 6))
    await workers_added_at(fleet, W47.start_ms)
    return fleet


async def _week_done(fleet: Fleet) -> None:
    """zhang makes 2 patrols, li 3, the others none; the sweep after the grace period judges."""
    zhang = await fleet.device("w-zhang")
    li = await fleet.device("w-li")
    for idle in ("w-wang", "w-liu"):  # enrolled, never synced: judged after the grace period
        await fleet.device(idle)
    await push_at(zhang, at(2, 20), [patrol("xinhua-g1", at(d, 8), 4) for d in (0, 1)])
    await push_at(li, at(2, 21), [patrol("qunzhong-g1", at(d, 8), 4) for d in (0, 1, 2)])
    clock_of(fleet).ms = at(9, 10)
    await sweep.everything(fleet.services.engine, at(9, 10))


async def _get(fleet: Fleet, who: str, path: str, **params: Any) -> httpx.Response:
    return await fleet.client.get(path, params=params, headers=await fleet.supervisor(who))


async def _post(fleet: Fleet, who: str, path: str, body: Any = None) -> httpx.Response:
    headers = await fleet.supervisor(who)
    content = msgspec.json.encode(body) if body is not None else b""
    return await fleet.client.post(path, content=content, headers=headers)


async def test_acknowledge_resolve_comment_lifecycle(clocked: Fleet) -> None:
    await _week_done(clocked)
    alerts = (await _get(clocked, "s-xinhua", "/v1/alerts", rule="quota_missed")).json()["alerts"]
    by_worker = {a["subject_id"]: a for a in alerts}
    assert set(by_worker) == {"w-zhang", "w-wang"}
    alert_id = by_worker["w-zhang"]["id"]
    base = f"/v1/alerts/{alert_id}"
    acked = await _post(clocked, "s-xinhua", f"{base}/acknowledge", {"note": "看到了"})
    assert acked.status_code == 200, acked.text
    assert acked.json()["status"] == "acknowledged"
    assert acked.json()["acknowledged_by"] == "s-xinhua"
    again = await _post(clocked, "s-xinhua", f"{base}/acknowledge")
    assert again.status_code == 200 and again.json()["status"] == "acknowledged"
    comment = await _post(clocked, "s-xinhua", f"{base}/comments", {"text": "周五补巡查"})
    assert comment.status_code == 201
    empty = await _post(clocked, "s-xinhua", f"{base}/comments", {"text": ""})
    assert empty.status_code == 422 and empty.json()["error"]["code"] == "invalid_request"
    done = await _post(clocked, "s-xinhua", f"{base}/resolve", {"note": "已约谈"})
    assert done.json()["status"] == "resolved" and done.json()["reason"] == "已约谈"
    late_ack = await _post(clocked, "s-xinhua", f"{base}/acknowledge")
    assert late_ack.status_code == 409 and late_ack.json()["error"]["code"] == "conflict"
    detail = (await _get(clocked, "s-xinhua", base)).json()
    kinds = [e["kind"] for e in detail["events"]]
    assert kinds == ["opened", "acknowledged", "commented", "resolved"]
    assert detail["events"][2]["detail"] == {"text": "周五补巡查"}
    # A person's resolution stands: sweeping again does not reopen it.
    await sweep.everything(clocked.services.engine, at(9, 11))
    assert (await _get(clocked, "s-xinhua", base)).json()["alert"]["status"] == "resolved"


async def test_filters_pages_and_bad_parameters(clocked: Fleet) -> None:
    await _week_done(clocked)
    everything = (await _get(clocked, "s-dongfeng", "/v1/alerts", limit=500)).json()["alerts"]
    missed = [a for a in everything if a["rule"] == "quota_missed"]
    assert {a["subject_id"] for a in missed} == {"w-zhang", "w-wang", "w-liu"}
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await _get(clocked, "s-dongfeng", "/v1/alerts", **params)).json()
        seen.extend(a["id"] for a in page["alerts"])
        cursor = page.get("cursor")
        if not cursor:
            break
    assert seen == [a["id"] for a in everything] == sorted(seen, reverse=True)
    grid = await _get(clocked, "s-dongfeng", "/v1/alerts", unit="qunzhong-g2", rule="quota_missed")
    assert [a["subject_id"] for a in grid.json()["alerts"]] == ["w-liu"]
    week = await _get(clocked, "s-dongfeng", "/v1/alerts", period="2026-W46")
    assert week.json()["alerts"] == []
    bad = await _get(clocked, "s-dongfeng", "/v1/alerts", status="opened")
    assert bad.status_code == 422 and bad.json()["error"]["details"]["allowed"]
    assert (await _get(clocked, "s-dongfeng", "/v1/alerts", cursor="!!")).status_code == 400
    device = clocked.devices[0]
    forbidden = await clocked.client.get("/v1/alerts", headers=device.headers)
    assert forbidden.status_code == 403


def _blocks(text: str) -> list[str]:
    return [b for b in text.replace("\r\n", "\n").split("\n\n") if b.startswith("id:")]


async def test_stream_resumes_after_the_last_event_id(clocked: Fleet) -> None:
    await _week_done(clocked)
    first = await _get(clocked, "s-xinhua", "/v1/alerts/stream", follow="false")
    blocks = _blocks(first.text)
    assert len(blocks) >= 2
    ids = [b.split("\n", 1)[0].removeprefix("id: ") for b in blocks]
    headers = {**await clocked.supervisor("s-xinhua"), "Last-Event-ID": ids[0]}
    rest = await clocked.client.get(
        "/v1/alerts/stream", params={"follow": "false"}, headers=headers
    )
    assert [b.split("\n", 1)[0].removeprefix("id: ") for b in _blocks(rest.text)] == ids[1:]
    data = msgspec.json.decode(blocks[0].split("data: ", 1)[1].split("\n", 1)[0])
    assert set(data) == {"event", "alert"} and data["event"]["kind"] == "opened"


async def test_settings_are_inherited_and_checked(clocked: Fleet) -> None:
    put = await clocked.client.put(
        "/v1/units/xinhua/settings",
        content=msgspec.json.encode({"quota_patrols": 2, "grace_ms": 3_600_000}),
        headers=await clocked.supervisor("s-xinhua"),
    )
    assert put.status_code == 200, put.text
    grid = (await _get(clocked, "s-xinhua", "/v1/units/xinhua-g1/settings")).json()
    assert grid["own"] == {}
    assert grid["effective"]["quota_patrols"] == 2
    assert grid["effective"]["quota_min_patrol_ms"] == 4 * 3_600_000
    for body, key in (
        ({"quota_patrolz": 1}, "quota_patrolz"),
        ({"tz": "UTC"}, "tz"),
        ({"quota_patrols": 0}, "quota_patrols"),
    ):
        bad = await clocked.client.put(
            "/v1/units/xinhua/settings",
            content=msgspec.json.encode(body),
            headers=await clocked.supervisor("s-xinhua"),
        )
        assert bad.status_code == 422, bad.text
        assert bad.json()["error"]["details"]["key"] == key
    other = await _get(clocked, "s-xinhua", "/v1/units/qunzhong/settings")
    assert other.status_code == 404
    # With two patrols required in xinhua, zhang's two patrols meet the quota.
    await _week_done(clocked)
    missed = (await _get(clocked, "s-dongfeng", "/v1/alerts", rule="quota_missed")).json()
    assert {a["subject_id"] for a in missed["alerts"]} == {"w-wang", "w-liu"}


async def test_compliance_summary_json_and_csv(clocked: Fleet) -> None:
    await _week_done(clocked)
    report = (await _get(clocked, "s-dongfeng", "/v1/compliance", week="2026-W47")).json()
    rows = {r["unit_id"]: r for r in report["rows"]}
    assert set(rows) == {"xinhua", "qunzhong", "dongfeng"}
    assert (rows["xinhua"]["workers"], rows["xinhua"]["workers_meeting_quota"]) == (2, 0)
    assert (rows["qunzhong"]["patrols"], rows["qunzhong"]["workers_meeting_quota"]) == (3, 1)
    assert rows["dongfeng"]["patrol_hours"] == 20.0
    assert rows["dongfeng"]["open_alerts"] >= 3
    sheet = await _get(clocked, "s-dongfeng", "/v1/compliance", week="2026-W47", format="csv")
    assert sheet.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(sheet.text)))
    assert [r["unit_id"] for r in table] == ["qunzhong", "xinhua", "dongfeng"]
    assert table[2]["patrols"] == "5" and table[2]["week"] == "2026-W47"
    bad = await _get(clocked, "s-dongfeng", "/v1/compliance", week="2026-W60")
    assert bad.status_code == 422


async def test_webhooks_are_signed_retried_and_dead_lettered(clocked: Fleet) -> None:
    received: list[httpx.Request] = []
    failing = {"value": False}

    def receiver(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(500 if failing["value"] else 204)

    created = await _post(clocked, "s-xinhua", "/v1/webhooks", {"url": "https://hooks.test/a"})
    assert created.status_code == 201, created.text
    hook = created.json()
    listed = (await _get(clocked, "s-xinhua", "/v1/webhooks")).json()
    assert [h["id"] for h in listed] == [hook["id"]] and "secret" not in listed[0]
    await _week_done(clocked)
    engine, clock = clocked.services.engine, clock_of(clocked)

    async def resolver(host: str, port: int) -> list[Any]:  # a public address, never contacted
        assert (host, port) == ("hooks.test", 443)
        return [ipaddress.ip_address("2001:4860::1")]

    deliver_once = functools.partial(webhooks.deliver_once, resolver=resolver)
    async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as client:
        figures = await deliver_once(engine, client, clock)
        assert figures["new"] == figures["delivered"] == len(received) > 0
        for request in received:
            expected = hmac.new(hook["secret"].encode(), request.content, hashlib.sha256)
            assert request.headers["patrolsync-signature"] == "sha256=" + expected.hexdigest()
            body = msgspec.json.decode(request.content)
            assert body["alert"]["unit_id"].startswith("xinhua")
            key = f"{hook['id']}:{body['event']['id']}"
            assert request.headers["idempotency-key"] == request.headers["webhook-id"] == key
            assert request.headers["host"] == "hooks.test"
            assert request.url.host == "2001:4860::1"
        # Nothing new: nothing sent again.
        assert (await deliver_once(engine, client, clock))["delivered"] == 0
        # A new event while the receiver fails: retried with backoff, then dead-lettered.
        failing["value"] = True
        alert_id = msgspec.json.decode(received[0].content)["alert"]["id"]
        await _post(clocked, "s-xinhua", f"/v1/alerts/{alert_id}/comments", {"text": "催办"})
        tries = 0
        out = io.StringIO()
        logs.configure("INFO", as_json=True, stream=out)
        try:
            while True:
                figures = await deliver_once(engine, client, clock)
                tries += figures["retry"] + figures["dead"]
                if figures["dead"]:
                    break
                clock.advance(webhooks.BACKOFF_S[-1] * 1000)
            logs.flush()
        finally:
            logs.configure("WARNING")
        assert tries == webhooks.MAX_TRIES
        failed = [json.loads(x) for x in out.getvalue().splitlines() if "webhook" in x]
        assert [x["level"] for x in failed] == ["warning"] * (tries - 1) + ["error"]
        assert failed[-1]["event"] == "webhook delivery dead: no more tries"
        assert failed[-1]["tries"] == webhooks.MAX_TRIES and failed[-1]["error"] == "HTTP 500"
    dead = await _get(clocked, "s-xinhua", f"/v1/webhooks/{hook['id']}/deliveries", status="dead")
    (letter,) = dead.json()
    assert (letter["attempts"], letter["last_error"]) == (webhooks.MAX_TRIES, "HTTP 500")
    gone = await clocked.client.delete(
        f"/v1/webhooks/{hook['id']}", headers=await clocked.supervisor("s-qunzhong")
    )
    assert gone.status_code == 404
