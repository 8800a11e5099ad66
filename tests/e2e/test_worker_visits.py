"""A worker's visits (the console's worker page) on both backends: their live notes on
households of the caller's subtree, newest visit first, a kept second text counted; another
community's supervisor gets 404."""

from __future__ import annotations

import pytest

from server import households
from server.errors import ApiError, Code
from server.store import units
from server.tx import read
from tests.support import Fleet, new_id, pulled_note

pytestmark = pytest.mark.usefixtures("fleet")
DAY = 24 * 3_600_000


async def _path(fleet: Fleet, unit_id: str) -> str:
    unit = await read(fleet.services.engine, lambda c: units.get_unit(c, unit_id))
    assert unit is not None
    return unit.path


async def test_a_workers_visits_newest_first_within_the_subtree(fleet: Fleet) -> None:
    now = fleet.services.clock()
    one = await fleet.device("w-zhang", "dev-zhang-one")
    two = await fleet.device("w-zhang", "dev-zhang-two")
    older = one.note(new_id(), "h-xh-101", {"text": "血压正常", "visited_ms": now - 3 * DAY})
    gone = one.note(new_id(), "h-xh-102", {"text": "没人在家", "outcome": "not_home"})
    note_id = str(new_id())
    made = one.note(note_id, "h-xh-201", {"text": "首次走访"})
    reply = await one.push([older, gone, made])
    assert [r["status"] for r in reply["results"]] == ["applied"] * 3, reply
    seen = await pulled_note(two, note_id)
    two.clock, two.skew_ms = one.clock, 50
    base = {"text": seen["clocks"]["text"]}
    assert (await one.push([one.note(note_id, "h-xh-201", {"text": "甲"}, base=base)]))["results"][
        0
    ]["status"] == "applied"
    assert (await two.push([two.note(note_id, "h-xh-201", {"text": "乙"}, base=base)]))["results"][
        0
    ]["status"] == "merged"
    wang = await fleet.device("w-wang")
    assert (await wang.push([wang.note(new_id(), "h-xh-301", {"text": "王的记录"})]))["results"][0][
        "status"
    ] == "applied"

    xinhua = await _path(fleet, "xinhua")
    engine = fleet.services.engine
    seen_visits = await read(engine, lambda c: households.worker_visits(c, xinhua, "w-zhang"))
    assert [v.household_id for v in seen_visits[-1:]] == ["h-xh-101"]  # the oldest visit last
    assert {v.household_id for v in seen_visits} == {"h-xh-101", "h-xh-102", "h-xh-201"}
    by_home = {v.household_id: v for v in seen_visits}
    assert by_home["h-xh-102"].outcome == "not_home"
    assert by_home["h-xh-201"].kept_texts == 1 and by_home["h-xh-101"].kept_texts == 0
    assert by_home["h-xh-101"].address == "新华小区1号楼1单元101室"
    assert by_home["h-xh-101"].head_name == "王大爷"
    assert by_home["h-xh-101"].grid_name == "新华社区第一网格"
    visited = [v.visited_ms for v in seen_visits]
    assert visited == sorted(visited, reverse=True)
    grid2 = await _path(fleet, "xinhua-g2")  # w-wang has a grid here, w-zhang does not
    wangs = await read(engine, lambda c: households.worker_visits(c, grid2, "w-wang"))
    assert [v.household_id for v in wangs] == ["h-xh-301"]
    qunzhong = await _path(fleet, "qunzhong")
    with pytest.raises(ApiError) as refused:
        await read(engine, lambda c: households.worker_visits(c, qunzhong, "w-zhang"))
    assert refused.value.code is Code.NOT_FOUND
