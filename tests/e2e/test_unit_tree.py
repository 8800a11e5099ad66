"""A unit tree of any depth: a province's tree imported from a file and served; who sees what
(a province across districts, a district only its own, a supervisor of two communities both and
nothing between); granting and withdrawing a unit; escalation past the district to the city and
the province; settings inherited from the province down to a grid.

The tree (beside the sample district, which stays a root of its own)::

    shaanxi 陕西省 (province)
      baoji 宝鸡市 (city)
        weibin 渭滨区 (district) → wb-st (street) → wb-c1, wb-c2 (communities) → one grid each
        chencang 陈仓区 (district) → cc-st (street) → cc-c (community) → cc-c-g
      taibai 太白县城 (street, straight under the province: a level skipped) → tb-c → tb-c-g
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from patrolsync import importer
from rules.findings import Finding
from server import enrolment
from server.errors import ApiError
from server.models_alerts import Alert, AlertEvent
from server.store import alerts as alert_store
from server.tx import transaction
from tests.support import Clock, Fleet
from worker import sweep

H = 3_600_000
D = 24 * H
OPENED = 1_795_000_000_000


def _unit(uid: str, kind: str, name: str, *children: dict[str, Any]) -> dict[str, Any]:
    return {"id": uid, "kind": kind, "name": name, "children": list(children)}


def _community(uid: str) -> dict[str, Any]:
    return _unit(uid, "community", uid, _unit(f"{uid}-g", "grid", f"{uid} 网格"))


TREE = {
    "units": [
        _unit(
            "shaanxi",
            "province",
            "陕西省",
            _unit(
                "baoji",
                "city",
                "宝鸡市",
                _unit(
                    "weibin",
                    "district",
                    "渭滨区",
                    _unit(
                        "wb-st", "street", "经二路街道", _community("wb-c1"), _community("wb-c2")
                    ),
                ),
                _unit(
                    "chencang",
                    "district",
                    "陈仓区",
                    _unit("cc-st", "street", "虢镇街道", _community("cc-c")),
                ),
            ),
            _unit("taibai", "street", "太白县城", _community("tb-c")),
        )
    ],
    "workers": [
        {"id": "w-wb1", "name": "渭一", "grids": ["wb-c1-g"]},
        {"id": "w-wb2", "name": "渭二", "grids": ["wb-c2-g"]},
        {"id": "w-cc", "name": "陈仓", "grids": ["cc-c-g"]},
    ],
    "supervisors": [
        {"id": "s-prov", "name": "省网格中心", "unit": "shaanxi"},
        {"id": "s-city", "name": "市网格中心", "unit": "baoji"},
        {"id": "s-weibin", "name": "渭滨区中心", "unit": "weibin"},
        {"id": "s-two", "name": "两社区书记", "unit": "wb-c1", "units": ["cc-c"]},
    ],
    "households": [
        {"id": f"h-{g}", "grid": f"{g}-g", "address": f"{g} 1号楼", "head_name": "户主"}
        for g in ("wb-c1", "wb-c2", "cc-c")
    ],
}
GRID_PATHS = {
    "wb-c1-g": "/shaanxi/baoji/weibin/wb-st/wb-c1/wb-c1-g/",
    "wb-c2-g": "/shaanxi/baoji/weibin/wb-st/wb-c2/wb-c2-g/",
    "cc-c-g": "/shaanxi/baoji/chencang/cc-st/cc-c/cc-c-g/",
}
WORKER_GRID = {"w-wb1": "wb-c1-g", "w-wb2": "wb-c2-g", "w-cc": "cc-c-g"}


@pytest.fixture
async def province(fleet: Fleet, tmp_path: Path) -> Fleet:
    """The province's tree imported from a YAML file (as ``patrolsync import`` does), with one
    open alert about each worker, opened at ``OPENED`` on the worker's grid."""
    path = tmp_path / "province.yaml"
    path.write_text(yaml.safe_dump(TREE, allow_unicode=True), encoding="utf-8")
    counts = await importer.import_file(fleet.services.engine, path)
    assert counts["units"] == 15 and counts["supervisors"] == 4
    for worker, grid in WORKER_GRID.items():
        finding = Finding("quota_missed", "worker", worker, "2026-W47", True, "warning", {})
        where = {("worker", worker): (grid, GRID_PATHS[grid])}
        await transaction(
            fleet.services.engine,
            lambda c, f=finding, w=where: alert_store.apply(c, [f], w, OPENED),
        )
    return fleet


async def _get(fleet: Fleet, who: str, path: str, **params: Any) -> Any:
    response = await fleet.client.get(path, headers=await fleet.supervisor(who), params=params)
    return response


async def _status(fleet: Fleet, who: str, path: str) -> int:
    return (await _get(fleet, who, path)).status_code


async def _alert_subjects(fleet: Fleet, who: str, **params: Any) -> set[str]:
    response = await _get(fleet, who, "/v1/alerts", **params)
    assert response.status_code == 200, response.text
    return {a["subject_id"] for a in response.json()["alerts"]}


async def _worker_ids(fleet: Fleet, who: str, unit: str) -> set[str]:
    response = await _get(fleet, who, f"/v1/units/{unit}/workers")
    assert response.status_code == 200, response.text
    return {w["id"] for w in response.json()["workers"]}


async def _alert_id(fleet: Fleet, worker: str) -> int:
    async with fleet.services.engine.connect() as conn:
        a = Alert.__table__.c
        stmt = sa.select(a.id).where(a.subject_kind == "worker", a.subject_id == worker)
        return int((await conn.execute(stmt)).scalar_one())


async def test_a_province_tree_is_imported_and_served(province: Fleet) -> None:
    fleet = province
    top = (await _get(fleet, "s-prov", "/v1/units/shaanxi")).json()
    assert (top["kind"], top["parent_id"], top["path"]) == ("province", None, "/shaanxi/")
    kids = (await _get(fleet, "s-prov", "/v1/units/shaanxi/children")).json()["children"]
    assert [(c["id"], c["kind"]) for c in kids] == [("baoji", "city"), ("taibai", "street")]
    kids = (await _get(fleet, "s-prov", "/v1/units/baoji/children")).json()["children"]
    assert [(c["id"], c["kind"]) for c in kids] == [
        ("chencang", "district"),
        ("weibin", "district"),
    ]
    grid = (await _get(fleet, "s-prov", "/v1/units/wb-c1-g")).json()
    assert (grid["kind"], grid["path"]) == ("grid", GRID_PATHS["wb-c1-g"])
    # The sample district beside it is another root: not the province's.
    assert await _status(fleet, "s-prov", "/v1/units/jintai") == 404


async def test_a_child_must_lie_below_its_parent(fleet: Fleet, tmp_path: Path) -> None:
    bad = {"units": [_unit("d", "district", "区", _unit("c", "city", "市"))]}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad, allow_unicode=True), encoding="utf-8")
    with pytest.raises(importer.ImportError_, match="unit c: a district cannot hold a city"):
        await importer.import_file(fleet.services.engine, path)


async def test_a_province_sees_across_districts_a_district_only_its_own(province: Fleet) -> None:
    fleet = province
    assert await _alert_subjects(fleet, "s-prov") == {"w-wb1", "w-wb2", "w-cc"}
    assert await _alert_subjects(fleet, "s-city") == {"w-wb1", "w-wb2", "w-cc"}
    assert await _alert_subjects(fleet, "s-weibin") == {"w-wb1", "w-wb2"}
    assert await _worker_ids(fleet, "s-prov", "shaanxi") == {"w-wb1", "w-wb2", "w-cc"}
    assert await _worker_ids(fleet, "s-weibin", "weibin") == {"w-wb1", "w-wb2"}
    assert await _status(fleet, "s-prov", "/v1/units/chencang") == 200
    assert await _status(fleet, "s-weibin", "/v1/units/chencang") == 404
    assert await _status(fleet, "s-weibin", "/v1/units/baoji") == 404
    assert await _status(fleet, "s-weibin", "/v1/workers/w-cc") == 404
    assert await _status(fleet, "s-prov", "/v1/workers/w-cc") == 200


async def test_a_supervisor_of_two_communities_sees_both_and_nothing_else(
    province: Fleet,
) -> None:
    fleet = province
    assert await _alert_subjects(fleet, "s-two") == {"w-wb1", "w-cc"}
    assert await _alert_subjects(fleet, "s-two", unit="cc-c") == {"w-cc"}
    assert await _worker_ids(fleet, "s-two", "wb-c1") == {"w-wb1"}
    assert await _worker_ids(fleet, "s-two", "cc-c") == {"w-cc"}
    for inside in (
        "/v1/units/wb-c1",
        "/v1/units/cc-c-g",
        "/v1/workers/w-cc",
        "/v1/households/h-cc-c/notes",
    ):
        assert await _status(fleet, "s-two", inside) == 200, inside
    for outside in (
        "/v1/units/wb-c2",
        "/v1/units/wb-st",
        "/v1/units/chencang",
        "/v1/workers/w-wb2",
        "/v1/households/h-wb-c2/notes",
    ):
        assert await _status(fleet, "s-two", outside) == 404, outside
    # The stream (what is there, then closed) carries both communities' alerts only.
    stream = await _get(fleet, "s-two", "/v1/alerts/stream", follow="false")
    assert stream.status_code == 200
    assert "w-wb1" in stream.text and "w-cc" in stream.text and "w-wb2" not in stream.text
    # A write inside either community: an enrolment code for the worker of the second.
    headers = await fleet.supervisor("s-two")
    code = await fleet.client.post("/v1/enrolments", headers=headers, json={"worker_id": "w-cc"})
    assert code.status_code == 201, code.text
    refused = await fleet.client.post(
        "/v1/enrolments", headers=headers, json={"worker_id": "w-wb2"}
    )
    assert refused.status_code == 403, refused.text


async def test_a_unit_granted_and_withdrawn(province: Fleet) -> None:
    fleet = province
    engine = fleet.services.engine
    assert await _alert_subjects(fleet, "s-weibin") == {"w-wb1", "w-wb2"}
    granted = await transaction(
        engine, lambda c: enrolment.grant_unit(c, "s-weibin", "chencang", OPENED)
    )
    assert granted is True
    again = await transaction(
        engine, lambda c: enrolment.grant_unit(c, "s-weibin", "chencang", OPENED)
    )
    assert again is False
    assert await _alert_subjects(fleet, "s-weibin") == {"w-wb1", "w-wb2", "w-cc"}
    assert await _status(fleet, "s-weibin", "/v1/units/chencang") == 200
    await transaction(engine, lambda c: enrolment.withdraw_unit(c, "s-weibin", "chencang"))
    assert await _alert_subjects(fleet, "s-weibin") == {"w-wb1", "w-wb2"}
    assert await _status(fleet, "s-weibin", "/v1/units/chencang") == 404
    # A mistyped id is never taken for a harmless no-op; the own unit is not withdrawn.
    for work, code in (
        (lambda c: enrolment.grant_unit(c, "s-nobody", "chencang", OPENED), "not_found"),
        (lambda c: enrolment.grant_unit(c, "s-weibin", "no-such-unit", OPENED), "not_found"),
        (lambda c: enrolment.withdraw_unit(c, "s-weibin", "chencang"), "not_found"),
        (lambda c: enrolment.withdraw_unit(c, "s-weibin", "weibin"), "conflict"),
    ):
        with pytest.raises(ApiError) as caught:
            await transaction(engine, work)
        assert caught.value.code == code


async def _level(fleet: Fleet, alert_id: int) -> tuple[int, list[dict[str, Any]]]:
    detail = (await _get(fleet, "s-prov", f"/v1/alerts/{alert_id}")).json()
    ups = [e["detail"] for e in detail["events"] if e["kind"] == "escalated"]
    return detail["alert"]["level"], ups


async def test_escalation_goes_past_the_district_to_the_city_and_the_province(
    province: Fleet,
) -> None:
    fleet = province
    engine = fleet.services.engine
    alert_id = await _alert_id(fleet, "w-wb1")
    fleet.services.clock = Clock(OPENED + H)
    acked = await fleet.client.post(
        f"/v1/alerts/{alert_id}/acknowledge", headers=await fleet.supervisor("s-prov"), json={}
    )
    assert acked.status_code == 200, acked.text
    # Acknowledged within the hour: the age alone moves it, one rung a week. Another alert,
    # left unacknowledged, is one rung higher all along (the province at 28 days).
    other = await _alert_id(fleet, "w-cc")
    expected = [
        (7 * D, 1, "wb-c1"),
        (14 * D, 2, "wb-st"),
        (21 * D, 3, "weibin"),
        (28 * D, 4, "baoji"),
        (35 * D, 5, "shaanxi"),
    ]
    for age, level, unit in expected:
        await sweep.escalations(engine, OPENED + age - 1)
        assert (await _level(fleet, alert_id))[0] == level - 1, age
        await sweep.escalations(engine, OPENED + age)
        got, ups = await _level(fleet, alert_id)
        assert got == level and ups[-1] == {"level": level, "unit_id": unit}, age
        assert (await _level(fleet, other))[0] == min(level + 1, 5), age
    _, ups = await _level(fleet, other)
    assert [u["unit_id"] for u in ups][-3:] == ["chencang", "baoji", "shaanxi"]
    # The top of the tree is the top: nothing above the province.
    assert await sweep.escalations(engine, OPENED + 400 * D) == 0
    assert (await _level(fleet, alert_id))[0] == 5


async def test_settings_inherited_from_the_province_down_to_a_grid(province: Fleet) -> None:
    fleet = province
    prov = await fleet.supervisor("s-prov")
    city = await fleet.supervisor("s-city")
    put = await fleet.client.put(
        "/v1/units/shaanxi/settings",
        headers=prov,
        json={"quota_patrols": 5, "escalate_province_ms": 2 * D, "at_risk_below": 4},
    )
    assert put.status_code == 200, put.text
    put = await fleet.client.put(
        "/v1/units/baoji/settings", headers=city, json={"at_risk_below": 1}
    )
    assert put.status_code == 200, put.text
    grid = (await _get(fleet, "s-weibin", "/v1/units/wb-c1-g/settings")).json()
    assert grid["own"] == {}
    effective = grid["effective"]
    assert effective["quota_patrols"] == 5  # from the province, five levels up
    assert effective["at_risk_below"] == 1  # the city's, nearer, wins over the province's
    assert effective["escalate_province_ms"] == 2 * D
    # The sample district, another root, keeps the defaults.
    sample = (await _get(fleet, "s-dongfeng", "/v1/units/xinhua-g1/settings")).json()
    assert sample["effective"]["quota_patrols"] == 3
    # The worker's rules use it: the week of a grid's worker requires the province's five.
    week = await _get(fleet, "s-weibin", "/v1/workers/w-wb1/patrols")
    assert week.status_code == 200, week.text
    assert week.json()["required"] == 5
    # And the sweep: the province's two days send an acknowledged alert straight to it.
    alert_id = await _alert_id(fleet, "w-cc")
    fleet.services.clock = Clock(OPENED + H)
    acked = await fleet.client.post(f"/v1/alerts/{alert_id}/acknowledge", headers=prov, json={})
    assert acked.status_code == 200, acked.text
    await sweep.escalations(fleet.services.engine, OPENED + 2 * D)
    level, ups = await _level(fleet, alert_id)
    assert level == 5 and ups == [{"level": 5, "unit_id": "shaanxi"}]


async def test_a_district_put_under_a_province_keeps_its_history(
    fleet: Fleet, tmp_path: Path
) -> None:
    """The sample district ran on its own; a province's file then lists it (by id alone) under
    a city: every unit below it, and its alerts, move with it."""
    engine = fleet.services.engine
    finding = Finding("quota_missed", "worker", "w-zhang", "2026-W47", True, "warning", {})
    old_grid = "/jintai/dongfeng/xinhua/xinhua-g1/"
    where = {("worker", "w-zhang"): ("xinhua-g1", old_grid)}
    await transaction(engine, lambda c: alert_store.apply(c, [finding], where, OPENED))
    district = _unit("jintai", "district", "金台区")
    doc = {
        "units": [
            _unit("shaanxi", "province", "陕西省", _unit("baoji", "city", "宝鸡市", district))
        ],
        "supervisors": [{"id": "s-prov", "name": "省网格中心", "unit": "shaanxi"}],
    }
    path = tmp_path / "province.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    await importer.import_file(engine, path)
    new_grid = "/shaanxi/baoji/jintai/dongfeng/xinhua/xinhua-g1/"
    assert (await _get(fleet, "s-prov", "/v1/units/xinhua-g1")).json()["path"] == new_grid
    assert await _alert_subjects(fleet, "s-prov") == {"w-zhang"}
    # Those who supervised inside the district still do.
    assert await _alert_subjects(fleet, "s-xinhua") == {"w-zhang"}
    assert await _worker_ids(fleet, "s-dongfeng", "dongfeng") == {
        "w-zhang",
        "w-wang",
        "w-li",
        "w-liu",
    }
    async with engine.connect() as conn:
        a, e = Alert.__table__.c, AlertEvent.__table__.c
        paths = set((await conn.execute(sa.select(a.unit_path))).scalars())
        paths |= set((await conn.execute(sa.select(e.unit_path))).scalars())
    assert paths == {new_grid}
