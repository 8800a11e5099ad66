"""The supervisors' views of people on both backends: a unit's children and workers, one
worker, a worker's week of patrols, and alerts carrying names; all limited to the subtree."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.worker_support import W47, at, clock_of, patrol, push_at, workers_added_at
from tests.support import Clock, Fleet
from worker import sweep

pytestmark = pytest.mark.usefixtures("fleet")


@pytest.fixture
async def clocked(fleet: Fleet) -> Fleet:
    fleet.services.clock = Clock(at(0, 6))
    await workers_added_at(fleet, W47.start_ms)
    return fleet


async def _get(fleet: Fleet, who: str, path: str, **params: Any) -> httpx.Response:
    return await fleet.client.get(path, params=params, headers=await fleet.supervisor(who))


async def test_children_of_a_unit_and_scope(clocked: Fleet) -> None:
    got = await _get(clocked, "s-dongfeng", "/v1/units/dongfeng/children")
    assert got.status_code == 200, got.text
    kids = got.json()["children"]
    assert [(k["id"], k["kind"], k["name"]) for k in kids] == [
        ("qunzhong", "community", "群众路社区"),
        ("xinhua", "community", "新华社区"),
    ]
    grids = (await _get(clocked, "s-xinhua", "/v1/units/xinhua/children")).json()["children"]
    assert [k["id"] for k in grids] == ["xinhua-g1", "xinhua-g2"]
    outside = await _get(clocked, "s-xinhua", "/v1/units/qunzhong/children")
    assert outside.status_code == 404 and outside.json()["error"]["code"] == "not_found"
    above = await _get(clocked, "s-xinhua", "/v1/units/dongfeng/children")
    assert above.status_code == 404


async def test_workers_of_a_unit_with_sync_and_tally(clocked: Fleet) -> None:
    zhang = await clocked.device("w-zhang")
    await push_at(zhang, at(1, 20), [patrol("xinhua-g1", at(d, 8), 4) for d in (0, 1)])
    clock_of(clocked).ms = at(2, 10)
    await sweep.everything(clocked.services.engine, at(2, 10))
    got = await _get(clocked, "s-xinhua", "/v1/units/xinhua/workers")
    assert got.status_code == 200, got.text
    page = got.json()
    assert page["week"] == "2026-W47" and page.get("cursor") is None
    by_id = {w["id"]: w for w in page["workers"]}
    assert list(by_id) == ["w-wang", "w-zhang"]
    zw = by_id["w-zhang"]
    assert zw["name"] == "张伟" and zw["active"] is True
    assert zw["phone"] == "*******0001"
    assert zw["grids"] == [
        {
            "id": "xinhua-g1",
            "name": "新华社区第一网格",
            "community_id": "xinhua",
            "community_name": "新华社区",
        }
    ]
    assert zw["last_sync_ms"] == at(1, 20)
    assert zw["week"]["counted"] == 2 and zw["week"]["required"] == 3
    assert by_id["w-wang"].get("last_sync_ms") is None
    # A grid's list: only the workers with that grid, and only that grid listed.
    g2 = (await _get(clocked, "s-xinhua", "/v1/units/xinhua-g2/workers")).json()["workers"]
    assert [(w["id"], [g["id"] for g in w["grids"]]) for w in g2] == [("w-wang", ["xinhua-g2"])]
    # Pages of one, followed by their cursors, give the whole list once.
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        one = (await _get(clocked, "s-dongfeng", "/v1/units/dongfeng/workers", **params)).json()
        seen.extend(w["id"] for w in one["workers"])
        cursor = one.get("cursor")
        if not cursor:
            break
    assert seen == ["w-li", "w-liu", "w-wang", "w-zhang"]
    bad = await _get(clocked, "s-dongfeng", "/v1/units/dongfeng/workers", cursor="!!")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "cursor_invalid"
    assert (await _get(clocked, "s-xinhua", "/v1/units/qunzhong/workers")).status_code == 404


async def test_one_worker_with_devices_and_weeks(clocked: Fleet) -> None:
    zhang = await clocked.device("w-zhang")
    await push_at(zhang, at(1, 20), [patrol("xinhua-g1", at(0, 8), 4)])
    clock_of(clocked).ms = at(9, 10)
    await sweep.everything(clocked.services.engine, at(9, 10))
    got = await _get(clocked, "s-xinhua", "/v1/workers/w-zhang")
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["name"] == "张伟" and [g["id"] for g in body["grids"]] == ["xinhua-g1"]
    assert body["grids"][0]["community_name"] == "新华社区"
    (device,) = body["devices"]
    assert device["id"] == zhang.device_id and device["last_seen_ms"] == at(1, 20)
    assert device.get("revoked_ms") is None
    weeks = {w["week"]: w for w in body["weeks"]}
    assert weeks["2026-W47"]["counted"] == 1 and weeks["2026-W47"]["phase"] == "final"
    assert all(w >= "2026-W44" for w in weeks)
    # w-wang has a grid in xinhua: the community sees them, the other community does not.
    assert (await _get(clocked, "s-xinhua", "/v1/workers/w-wang")).status_code == 200
    for who, worker in (("s-qunzhong", "w-zhang"), ("s-xinhua", "w-li"), ("s-xinhua", "nobody")):
        hidden = await _get(clocked, who, f"/v1/workers/{worker}")
        assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "not_found"
        patrols = await _get(clocked, who, f"/v1/workers/{worker}/patrols")
        assert patrols.status_code == 404


async def test_patrols_of_a_week_say_why_they_count(clocked: Fleet) -> None:
    zhang = await clocked.device("w-zhang")
    long_one = patrol("xinhua-g1", at(0, 8), 4)
    short_one = patrol("xinhua-g1", at(1, 8), 2)
    overlap_a = patrol("xinhua-g1", at(2, 8), 5)
    overlap_b = patrol("xinhua-g1", at(2, 10), 4.5)
    await push_at(zhang, at(2, 20), [long_one, short_one, overlap_a, overlap_b])
    # An amendment lengthens the short patrol: its effective version counts.
    amend = patrol("xinhua-g1", at(1, 8), 4.5, op="amend", amends=short_one["id"])
    amend.update(clock=zhang.tick(), reason="忘记结束")
    reply = await push_at(zhang, at(2, 21), [amend])
    assert [r["status"] for r in reply["results"]] == ["applied"], reply
    got = await _get(clocked, "s-xinhua", "/v1/workers/w-zhang/patrols", week="2026-W47")
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["week"] == "2026-W47" and body["tz"] == "Asia/Shanghai"
    assert body["start_ms"] == W47.start_ms and body["required"] == 3
    patrols = body["patrols"]
    assert [p["started_ms"] for p in patrols] == [at(0, 8), at(1, 8), at(2, 8), at(2, 10)]
    assert [p["standing"] for p in patrols] == ["counted"] * 4
    amended = patrols[1]
    assert amended["id"] == amend["id"] and amended["root_id"] == short_one["id"]
    assert amended["amended"] is True and amended["amend_reason"] == "忘记结束"
    assert [p["findings"] for p in patrols] == [
        [],
        [],
        ["overlapping_patrols"],
        ["overlapping_patrols"],
    ]
    assert body["counted"] == 4 and patrols[0]["visit_count"] == 2
    # A short one is shown, not counted, and says why.
    await push_at(zhang, at(3, 20), [patrol("xinhua-g1", at(3, 8), 1)])
    now = (await _get(clocked, "s-xinhua", "/v1/workers/w-zhang/patrols")).json()
    assert now["week"] == "2026-W47"
    last = now["patrols"][-1]
    assert (last["counted"], last["standing"]) == (False, "too_short")
    assert now["counted"] == 4
    other = await _get(clocked, "s-xinhua", "/v1/workers/w-zhang/patrols", week="2026-W46")
    assert other.json()["patrols"] == []
    bad = await _get(clocked, "s-xinhua", "/v1/workers/w-zhang/patrols", week="2026-W99")
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"


async def test_alerts_carry_names(clocked: Fleet) -> None:
    zhang = await clocked.device("w-zhang")
    await push_at(zhang, at(2, 20), [patrol("xinhua-g1", at(0, 8), 4)])
    clock_of(clocked).ms = at(9, 10)
    await sweep.everything(clocked.services.engine, at(9, 10))
    page = (await _get(clocked, "s-xinhua", "/v1/alerts", limit=500)).json()["alerts"]
    missed = {a["subject_id"]: a for a in page if a["rule"] == "quota_missed"}
    assert missed["w-zhang"]["subject_name"] == "张伟"
    assert missed["w-zhang"]["unit_name"] == "新华社区第一网格"
    households = [a for a in page if a["subject_kind"] == "household"]
    assert households, "the sample's households are overdue for a visit"
    names = {a["subject_id"]: a["subject_name"] for a in households}
    assert names["h-xh-101"] == "王大爷 新华小区1号楼1单元101室"
    alert_id = missed["w-zhang"]["id"]
    detail = (await _get(clocked, "s-xinhua", f"/v1/alerts/{alert_id}")).json()
    assert detail["alert"]["subject_name"] == "张伟"
    acked = await clocked.client.post(
        f"/v1/alerts/{alert_id}/acknowledge", headers=await clocked.supervisor("s-xinhua")
    )
    assert acked.status_code == 200, acked.text
    assert (acked.json()["status"], acked.json()["subject_name"]) == ("acknowledged", "张伟")
    device_alerts = [a for a in page if a["subject_kind"] == "device"]
    assert [a["subject_name"] for a in device_alerts] == ["张伟"], "its device fell silent"
    stream = await _get(clocked, "s-xinhua", "/v1/alerts/stream", follow="false")
    assert '"subject_name":"张伟"' in stream.text
    mine = await clocked.client.get("/v1/me/alerts", headers=zhang.headers)
    assert mine.status_code == 200, mine.text
    assert {a["subject_name"] for a in mine.json()["alerts"]} == {"张伟"}
    level = (await _get(clocked, "s-xinhua", "/v1/alerts", level="0")).json()["alerts"]
    assert {a["id"] for a in level} == {a["id"] for a in page if a["level"] == 0}
    none = (await _get(clocked, "s-xinhua", "/v1/alerts", level="3")).json()["alerts"]
    assert none == [] or all(a["level"] == 3 for a in none)
    bad = await _get(clocked, "s-xinhua", "/v1/alerts", level="9")
    assert bad.status_code == 422


async def test_compliance_says_its_phase_and_what_is_still_possible(clocked: Fleet) -> None:
    zhang = await clocked.device("w-zhang")
    await push_at(zhang, at(1, 20), [patrol("xinhua-g1", at(d, 8), 4) for d in (0, 1)])
    clock_of(clocked).ms = at(2, 10)
    await sweep.everything(clocked.services.engine, at(2, 10))

    async def total(**params: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        got = await _get(clocked, "s-dongfeng", "/v1/compliance", **params)
        assert got.status_code == 200, got.text
        body = got.json()
        return body, {r["unit_id"]: r for r in body["rows"]}["dongfeng"]

    body, row = await total()
    assert (body["week"], body["phase"]) == ("2026-W47", "running")
    assert (body["start_ms"], body["end_ms"], body["as_of_ms"]) == (
        W47.start_ms,
        W47.end_ms,
        at(2, 10),
    )
    assert row["workers"] + row["workers_not_evaluated"] == 4
    assert row["workers_still_possible"] == 4, "Wednesday: everyone can still make 3 patrols"
    # Sunday 20:00: 4 hours left hold one more patrol, not three.
    clock_of(clocked).ms = at(6, 20)
    body, row = await total()
    assert body["phase"] == "running" and row["workers_still_possible"] == 1
    xinhua = (await _get(clocked, "s-xinhua", "/v1/compliance")).json()
    grids = {r["unit_id"]: r for r in xinhua["rows"]}
    assert grids["xinhua-g1"]["workers_still_possible"] == 1  # w-zhang, 2 of 3
    assert grids["xinhua-g2"]["workers_still_possible"] == 0
    # The week before is final (and not judged: the workers were added since); the next one
    # has not begun.
    body, row = await total(week="2026-W46")
    assert body["phase"] == "final"
    assert (row["workers_still_possible"], row["workers_not_evaluated"]) == (0, 0)
    body, row = await total(week="2026-W48")
    assert body["phase"] == "upcoming" and row["workers_still_possible"] == 4
    clock_of(clocked).ms = at(9, 10)
    body, row = await total(week="2026-W47")
    assert body["phase"] == "final" and row["workers_still_possible"] == 0
