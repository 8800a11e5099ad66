"""CSV exports on both backends: alerts, a worker's and a unit's patrols, and compliance; a
UTF-8 byte order mark, Chinese names, formula-safe cells, negotiated by format or Accept."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from server.tx import transaction
from tests.integration.worker_support import W47, at, clock_of, patrol, push_at, workers_added_at
from tests.support import Clock, Fleet
from worker import sweep

pytestmark = pytest.mark.usefixtures("fleet")
BOM = "\ufeff".encode()


@pytest.fixture
async def judged(fleet: Fleet) -> Fleet:
    fleet.services.clock = Clock(at(0, 6))
    await workers_added_at(fleet, W47.start_ms)
    zhang = await fleet.device("w-zhang")
    await push_at(zhang, at(2, 20), [patrol("xinhua-g1", at(d, 8), h) for d, h in ((0, 4), (1, 2))])
    clock_of(fleet).ms = at(9, 10)
    await sweep.everything(fleet.services.engine, at(9, 10))
    return fleet


async def _get(
    fleet: Fleet, who: str, path: str, accept: str | None = None, **params: Any
) -> httpx.Response:
    headers = await fleet.supervisor(who)
    if accept:
        headers["Accept"] = accept
    return await fleet.client.get(path, params=params, headers=headers)


def _table(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith(BOM)
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


async def test_alerts_csv_has_a_bom_names_and_safe_cells(judged: Fleet) -> None:
    async def rename(conn: Any) -> None:
        await conn.execute(sa.text("UPDATE worker SET name = '=HYPERLINK(1)' WHERE id = 'w-wang'"))

    await transaction(judged.services.engine, rename)
    page = (await _get(judged, "s-xinhua", "/v1/alerts", limit=500)).json()["alerts"]
    by_format = _table(await _get(judged, "s-xinhua", "/v1/alerts", format="csv"))
    by_accept = _table(await _get(judged, "s-xinhua", "/v1/alerts", accept="text/csv"))
    assert by_format == by_accept
    assert [int(r["id"]) for r in by_format] == [a["id"] for a in page]
    missed = {r["subject_id"]: r for r in by_format if r["rule"] == "quota_missed"}
    assert missed["w-zhang"]["subject_name"] == "张伟"
    assert missed["w-zhang"]["unit_name"] == "新华社区第一网格"
    assert missed["w-wang"]["subject_name"] == "'=HYPERLINK(1)"
    assert missed["w-zhang"]["opened_at"] == "2026-11-25 10:00"
    plain = await _get(judged, "s-xinhua", "/v1/alerts", format="csv", bom="false")
    assert not plain.content.startswith(BOM) and plain.content.startswith(b"id,rule")
    json_wins = await _get(judged, "s-xinhua", "/v1/alerts", accept="text/csv", format="json")
    assert json_wins.headers["content-type"].startswith("application/json")


async def test_patrols_csv_of_a_worker_and_of_a_unit(judged: Fleet) -> None:
    rows = _table(
        await _get(judged, "s-xinhua", "/v1/workers/w-zhang/patrols", week="2026-W47", format="csv")
    )
    assert [(r["worker_name"], r["counted"], r["standing"]) for r in rows] == [
        ("张伟", "yes", "counted"),
        ("张伟", "no", "too_short"),
    ]
    assert rows[0]["started_at"] == "2026-11-16 08:00" and rows[0]["hours"] == "4.0"
    unit = await _get(judged, "s-dongfeng", "/v1/units/dongfeng/patrols", week="2026-W47")
    assert unit.status_code == 200, unit.text
    body = unit.json()
    assert body["names"]["w-li"] == "李娜"
    assert [w["worker_id"] for w in body["workers"]] == ["w-li", "w-liu", "w-wang", "w-zhang"]
    assert [len(w["patrols"]) for w in body["workers"]] == [0, 0, 0, 2]
    sheet = _table(
        await _get(judged, "s-dongfeng", "/v1/units/dongfeng/patrols", "text/csv", week="2026-W47")
    )
    assert [r["patrol_id"] for r in sheet] == [p["patrol_id"] for p in rows]
    hidden = await _get(judged, "s-xinhua", "/v1/units/qunzhong/patrols", format="csv")
    assert hidden.status_code == 404
    bad = await _get(judged, "s-xinhua", "/v1/units/xinhua/patrols", week="2026-W99")
    assert bad.status_code == 422


async def test_compliance_csv_by_accept_with_a_bom_on_request(judged: Fleet) -> None:
    sheet = await _get(
        judged, "s-xinhua", "/v1/compliance", "text/csv", week="2026-W47", bom="true"
    )
    table = _table(sheet)
    assert [r["unit_id"] for r in table] == ["xinhua-g1", "xinhua-g2", "xinhua"]
    assert table[0]["name"] == "新华社区第一网格"
    default = await _get(judged, "s-xinhua", "/v1/compliance", format="csv", week="2026-W47")
    assert default.content.startswith(b"week,"), "the existing export keeps its first bytes"
