"""CSV the product writes opens in a spreadsheet as data, never as a formula: a text cell that
begins with ``=``, ``+``, ``-``, ``@``, TAB or CR gets a leading ``'`` (OWASP's advice)."""

from __future__ import annotations

import csv
import io

import pytest
import sqlalchemy as sa

from server.spreadsheet import FORMULA_STARTS, cell, to_csv
from server.tx import transaction
from tests.support import Fleet

HOSTILE = {
    "xinhua": '=HYPERLINK("http://127.0.0.1/x","点我")',
    "xinhua-g1": "+cmd|' /C calc'!A0",
    "xinhua-g2": "-2+3",
}


@pytest.mark.parametrize("start", FORMULA_STARTS)
def test_a_cell_starting_a_formula_is_neutralised(start: str) -> None:
    assert cell(f"{start}1+1") == f"'{start}1+1"


@pytest.mark.parametrize("text", ["新华社区", "2026-W47", "a=b", " =1", "", "'=1"])
def test_other_text_is_kept(text: str) -> None:
    assert cell(text) == text


def test_numbers_stay_numbers() -> None:
    assert cell(-3) == -3 and cell(-1.5) == -1.5
    sheet = to_csv(["n", "name"], [[-3, "@SUM(A1)"]])
    assert sheet == "n,name\n-3,'@SUM(A1)\n"


async def test_compliance_csv_with_hostile_unit_names(fleet: Fleet) -> None:
    async def rename(conn: sa.ext.asyncio.AsyncConnection) -> None:
        for unit_id, name in HOSTILE.items():
            await conn.execute(
                sa.text("UPDATE unit SET name = :name WHERE id = :id"),
                {"name": name, "id": unit_id},
            )

    await transaction(fleet.services.engine, rename)
    headers = await fleet.supervisor("s-xinhua")
    params = {"unit": "xinhua", "week": "2026-W47"}
    report = await fleet.client.get("/v1/compliance", params=params, headers=headers)
    assert {r["unit_id"]: r["name"] for r in report.json()["rows"]} == HOSTILE, "JSON is raw"
    sheet = await fleet.client.get(
        "/v1/compliance", params={**params, "format": "csv"}, headers=headers
    )
    assert sheet.status_code == 200, sheet.text
    assert sheet.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(sheet.content.decode("utf-8"))))
    assert {r["unit_id"]: r["name"] for r in rows} == {k: f"'{v}" for k, v in HOSTILE.items()}
    for row in rows:
        for value in row.values():
            assert not value.startswith(FORMULA_STARTS), row
