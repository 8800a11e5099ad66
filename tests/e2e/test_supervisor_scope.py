"""Every write of a supervisor is confined to what lies wholly inside their subtree.

The sample district is extended here with a worker of two communities (``w-cross``: one grid in
新华, one in 群众路) and two streets whose ids share a prefix (``st1`` and ``st10``). For each write
endpoint a supervisor tries a target partly outside and one wholly outside their subtree: each
is refused, and nothing is written.
"""

from __future__ import annotations

from typing import Any

import httpx
import msgspec
import pytest
import sqlalchemy as sa

from patrolsync import importer
from rules.findings import Finding
from server import models
from server.models_alerts import Alert, AlertEvent, UnitSetting, Webhook
from server.store import alerts as alert_store
from server.tx import transaction
from tests.support import Device, Fleet

EXTRA = {
    "units": [
        {
            "id": "jintai",
            "kind": "district",
            "name": "金台区",
            "code": "610303",
            "children": [
                {
                    "id": street,
                    "kind": "street",
                    "name": street,
                    "children": [
                        {
                            "id": f"{street}-c",
                            "kind": "community",
                            "name": f"{street}-c",
                            "children": [{"id": f"{street}-g", "kind": "grid", "name": "g"}],
                        }
                    ],
                }
                for street in ("st1", "st10")
            ],
        }
    ],
    "workers": [
        {"id": "w-cross", "name": "跨社区", "grids": ["xinhua-g1", "qunzhong-g1"]},
        {"id": "w-st10", "name": "十号街", "grids": ["st10-g"]},
        {"id": "w-idle", "name": "停用", "active": False, "grids": ["xinhua-g2"]},
    ],
    "supervisors": [
        {"id": "s-st1", "name": "一号街", "unit": "st1"},
        {"id": "s-st10", "name": "十号街", "unit": "st10"},
    ],
}
XINHUA_G1 = "/jintai/dongfeng/xinhua/xinhua-g1/"
QUNZHONG_G1 = "/jintai/dongfeng/qunzhong/qunzhong-g1/"
ST10_G = "/jintai/st10/st10-c/st10-g/"


@pytest.fixture
async def district(fleet: Fleet) -> Fleet:
    doc = msgspec.convert(EXTRA, importer.ImportDoc)
    await transaction(fleet.services.engine, lambda c: importer.load(c, doc, 1_700_000_000_000))
    return fleet


async def _count(fleet: Fleet, table: Any, *where: Any) -> int:
    async with fleet.services.engine.connect() as conn:
        stmt = sa.select(sa.func.count()).select_from(table.__table__)
        return int((await conn.execute(stmt.where(*where))).scalar_one())


async def _call(fleet: Fleet, who: str, method: str, path: str, body: Any = None) -> httpx.Response:
    headers = await fleet.supervisor(who)
    content = msgspec.json.encode(body) if body is not None else b""
    if content:
        headers = {**headers, "Content-Type": "application/json"}
    return await fleet.client.request(method, path, content=content, headers=headers)


def _refused(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    code = {403: "forbidden", 404: "not_found"}[status]
    assert response.json()["error"]["code"] == code


async def test_enrolment_codes_only_for_workers_wholly_inside(district: Fleet) -> None:
    fleet = district
    for who, worker_id, status in [
        ("s-xinhua", "w-cross", 403),  # one grid inside, one outside
        ("s-qunzhong", "w-cross", 403),
        ("s-xinhua", "w-li", 403),  # wholly outside
        ("s-st1", "w-st10", 403),  # /jintai/st1/ is a prefix of /jintai/st10/ as a string
    ]:
        reply = await _call(fleet, who, "POST", "/v1/enrolments", {"worker_id": worker_id})
        _refused(reply, status)
    assert await _count(fleet, models.Enrolment) == 0
    # The supervisor of a unit holding all of w-cross's grids may.
    street = await _call(fleet, "s-dongfeng", "POST", "/v1/enrolments", {"worker_id": "w-cross"})
    assert street.status_code == 201, street.text
    st10 = await _call(fleet, "s-st10", "POST", "/v1/enrolments", {"worker_id": "w-st10"})
    assert st10.status_code == 201, st10.text
    assert await _count(fleet, models.Enrolment) == 2


async def test_no_code_for_an_inactive_worker(district: Fleet) -> None:
    reply = await _call(district, "s-xinhua", "POST", "/v1/enrolments", {"worker_id": "w-idle"})
    assert reply.status_code == 409, reply.text
    assert reply.json()["error"]["code"] == "conflict"
    assert await _count(district, models.Enrolment) == 0


async def test_devices_revoked_only_when_their_worker_is_wholly_inside(district: Fleet) -> None:
    fleet = district
    cross = await fleet.device("w-cross", "dev-cross")
    li = await fleet.device("w-li", "dev-li")
    st10 = await fleet.device("w-st10", "dev-st10")
    for who, device, status in [
        ("s-xinhua", cross, 403),
        ("s-xinhua", li, 403),
        ("s-st1", st10, 403),
    ]:
        _refused(await _call(fleet, who, "POST", f"/v1/devices/{device.device_id}/revoke"), status)
    for table in (models.Device, models.ApiToken):
        assert await _count(fleet, table, table.__table__.c.revoked_ms.is_not(None)) == 0
    for device in (cross, li, st10):
        await device.push([device.checkin(_grid(device))])
    revoked = await _call(fleet, "s-dongfeng", "POST", "/v1/devices/dev-cross/revoke")
    assert revoked.status_code == 200, revoked.text


def _grid(device: Device) -> str:
    return {"w-cross": "qunzhong-g1", "w-li": "qunzhong-g1", "w-st10": "st10-g"}[device.worker_id]


async def _alert(fleet: Fleet, kind: str, subject: str, grid: str, path: str) -> int:
    finding = Finding("quota_missed", kind, subject, "2026-W47", True, "warning", {"counted": 1})
    if kind == "device":
        finding = Finding("device_silent", kind, subject, "2026-W47", True, "info", {})
    await transaction(
        fleet.services.engine,
        lambda c: alert_store.apply(c, [finding], {(kind, subject): (grid, path)}, 1),
    )
    async with fleet.services.engine.connect() as conn:
        a = Alert.__table__.c
        stmt = sa.select(a.id).where(a.subject_kind == kind, a.subject_id == subject)
        return int((await conn.execute(stmt)).scalar_one())


async def test_alerts_acted_on_only_when_their_subject_is_wholly_inside(district: Fleet) -> None:
    fleet = district
    await fleet.device("w-cross", "dev-cross")
    cross = await _alert(fleet, "worker", "w-cross", "xinhua-g1", XINHUA_G1)
    cross_device = await _alert(fleet, "device", "dev-cross", "xinhua-g1", XINHUA_G1)
    li = await _alert(fleet, "worker", "w-li", "qunzhong-g1", QUNZHONG_G1)
    st10 = await _alert(fleet, "worker", "w-st10", "st10-g", ST10_G)
    events = await _count(fleet, AlertEvent)
    for who, alert_id, status in [
        ("s-xinhua", cross, 403),  # visible (its unit is xinhua-g1), its worker partly outside
        ("s-xinhua", cross_device, 403),
        ("s-xinhua", li, 404),
        ("s-st1", st10, 404),
    ]:
        base = f"/v1/alerts/{alert_id}"
        _refused(await _call(fleet, who, "POST", f"{base}/acknowledge", {"note": "x"}), status)
        _refused(await _call(fleet, who, "POST", f"{base}/resolve", {"note": "x"}), status)
        _refused(await _call(fleet, who, "POST", f"{base}/comments", {"text": "x"}), status)
    assert await _count(fleet, AlertEvent) == events
    assert await _count(fleet, Alert, Alert.__table__.c.status != "open") == 0
    # Still readable where its unit is, and acted on by the street that holds both grids.
    seen = await _call(fleet, "s-xinhua", "GET", f"/v1/alerts/{cross}")
    assert seen.status_code == 200
    acked = await _call(fleet, "s-dongfeng", "POST", f"/v1/alerts/{cross}/acknowledge", {})
    assert acked.status_code == 200, acked.text


async def test_unit_settings_only_inside(district: Fleet) -> None:
    fleet = district
    for who, unit in [("s-xinhua", "qunzhong-g1"), ("s-xinhua", "dongfeng"), ("s-st1", "st10")]:
        body = {"quota_patrols": 1}
        _refused(await _call(fleet, who, "PUT", f"/v1/units/{unit}/settings", body), 404)
    assert await _count(fleet, UnitSetting) == 0
    inside = await _call(fleet, "s-st1", "PUT", "/v1/units/st1-g/settings", {"quota_patrols": 2})
    assert inside.status_code == 200, inside.text


async def test_webhooks_only_inside(district: Fleet) -> None:
    fleet = district
    url = "https://hooks.test/scope"
    for who, unit in [("s-xinhua", "qunzhong"), ("s-xinhua", "dongfeng"), ("s-st1", "st10")]:
        body = {"url": url, "unit_id": unit}
        _refused(await _call(fleet, who, "POST", "/v1/webhooks", body), 404)
    assert await _count(fleet, Webhook) == 0
    theirs = []
    for who in ("s-qunzhong", "s-st10", "s-dongfeng"):
        created = await _call(fleet, who, "POST", "/v1/webhooks", {"url": url})
        assert created.status_code == 201, created.text
        theirs.append(created.json()["id"])
    for who, hook in [("s-xinhua", theirs[0]), ("s-st1", theirs[1]), ("s-xinhua", theirs[2])]:
        _refused(await _call(fleet, who, "DELETE", f"/v1/webhooks/{hook}"), 404)
    assert await _count(fleet, Webhook, Webhook.__table__.c.active.is_(True)) == 3
