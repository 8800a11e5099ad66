"""Households on both backends: a unit's overdue households with their last visit and who made
it, and a household's notes with both texts kept from concurrent edits; within the subtree."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.worker_support import W47, at, clock_of, workers_added_at
from tests.support import Clock, Fleet, new_id, pulled_note
from worker import sweep

pytestmark = pytest.mark.usefixtures("fleet")


@pytest.fixture
async def clocked(fleet: Fleet) -> Fleet:
    fleet.services.clock = Clock(at(0, 6))
    await workers_added_at(fleet, W47.start_ms)
    return fleet


async def _get(fleet: Fleet, who: str, path: str, **params: Any) -> httpx.Response:
    return await fleet.client.get(path, params=params, headers=await fleet.supervisor(who))


async def test_overdue_households_with_last_visit(clocked: Fleet) -> None:
    zhang = await clocked.device("w-zhang")
    visit = zhang.note(str(new_id()), "h-xh-101", {"text": "血压正常", "outcome": "met"})
    absent = zhang.note(str(new_id()), "h-xh-102", {"text": "没人在家", "outcome": "not_home"})
    reply = await zhang.push([visit, absent])
    assert [r["status"] for r in reply["results"]] == ["applied", "applied"], reply
    await sweep.everything(clocked.services.engine, at(0, 7))
    clock_of(clocked).ms = at(0, 7)
    got = await _get(clocked, "s-xinhua", "/v1/units/xinhua/households", overdue="true")
    assert got.status_code == 200, got.text
    page = got.json()
    homes = {h["id"]: h for h in page["households"]}
    # h-xh-101 was visited: not overdue. A not_home visit does not count.
    assert set(homes) == {"h-xh-102", "h-xh-201", "h-xh-301"}
    assert all(h["overdue"] and h["alert_id"] for h in homes.values())
    kept = homes["h-xh-102"]
    assert (kept["head_name"], kept["address"], kept["care_tier"]) == (
        "赵奶奶",
        "新华小区1号楼1单元102室",
        "key",
    )
    assert kept["grid_name"] == "新华社区第一网格" and kept.get("last_visit_ms") is None
    assert kept["due_ms"] < at(0, 7)
    # The overview counts the same households.
    report = (await _get(clocked, "s-xinhua", "/v1/compliance")).json()
    total = {r["unit_id"]: r for r in report["rows"]}["xinhua"]
    assert total["overdue_households"] == len(homes)
    every = (await _get(clocked, "s-xinhua", "/v1/units/xinhua/households")).json()
    by_id = {h["id"]: h for h in every["households"]}
    assert sorted(by_id) == ["h-xh-101", "h-xh-102", "h-xh-201", "h-xh-301"]
    visited = by_id["h-xh-101"]
    assert visited["overdue"] is False and visited["last_visit_by"] == "w-zhang"
    assert visited["last_visit_by_name"] == "张伟" and visited["last_visit_ms"] == at(0, 6)
    assert visited["due_ms"] == at(0, 6) + 7 * 24 * 3600 * 1000  # high_risk: weekly
    # Pages of one with their cursors give every household once.
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1, "overdue": "true"}
        if cursor:
            params["cursor"] = cursor
        one = (await _get(clocked, "s-xinhua", "/v1/units/xinhua/households", **params)).json()
        seen.extend(h["id"] for h in one["households"])
        cursor = one.get("cursor")
        if not cursor:
            break
    assert seen == sorted(homes)
    bad = await _get(clocked, "s-xinhua", "/v1/units/xinhua/households", cursor="@@")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "cursor_invalid"
    outside = await _get(clocked, "s-xinhua", "/v1/units/qunzhong/households")
    assert outside.status_code == 404


async def test_notes_keep_both_texts_of_concurrent_edits(clocked: Fleet) -> None:
    zhang = await clocked.device("w-zhang", "dev-zhang")
    wang = await clocked.device("w-wang", "dev-wang")
    note_id = str(new_id())
    created = zhang.note(note_id, "h-xh-101", {"text": "独居老人王大爷", "follow_up": False})
    assert (await zhang.push([created]))["results"][0]["status"] == "applied"
    seen = await pulled_note(wang, note_id)
    wang.clock = zhang.clock
    wang.skew_ms = 50
    base = {"text": seen["clocks"]["text"]}
    edit_a = zhang.note(note_id, "h-xh-101", {"text": "需要代购降压药"}, base=base)
    edit_b = wang.note(note_id, "h-xh-101", {"text": "希望楼道加装扶手"}, base=base)
    await zhang.push([edit_a])
    await wang.push([edit_b])
    got = await _get(clocked, "s-xinhua", "/v1/households/h-xh-101/notes")
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["household"]["head_name"] == "王大爷"
    (note,) = body["notes"]
    assert note["id"] == note_id and note["author_id"] == "w-zhang"
    assert note["author_name"] == "张伟"
    assert note["fields"]["text"] == "希望楼道加装扶手"
    (other,) = note["alternatives"]["text"]
    assert other["value"] == "需要代购降压药"
    assert (other["worker_id"], other["worker_name"]) == ("w-zhang", "张伟")
    assert note["outcome"] == "met" and note["deleted"] is False
    for who, home in (("s-qunzhong", "h-xh-101"), ("s-xinhua", "h-qz-101"), ("s-xinhua", "nope")):
        hidden = await _get(clocked, who, f"/v1/households/{home}/notes")
        assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "not_found"
