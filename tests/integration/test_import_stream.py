"""Households CSV at scale: streamed in committed batches (a re-run after a stop converges),
UTF-8 with or without the byte order mark and GB18030/GBK detected, Chinese column names and care
tiers accepted, a bad file refused in one line naming its place."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from patrolsync import importer
from server.db import make_engine
from server.settings import Settings
from server.store.tables import household_t
from server.tx import read
from tests.conftest import reset

SAMPLE = Path(importer.__file__).parent / "sample" / "district.yaml"
GRIDS = ("xinhua-g1", "xinhua-g2", "qunzhong-g1")


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    await reset(settings)
    engine = make_engine(settings)
    await importer.import_file(engine, SAMPLE)
    yield engine
    await engine.dispose()


def _csv(path: Path, n: int, *, chinese: bool = False, encoding: str = "utf-8") -> Path:
    head = (
        "户编号,网格,地址,户主,标签,关爱等级"
        if chinese
        else "id,grid,address,head_name,tags,care_tier"
    )
    lines = [head]
    for i in range(n):
        tier = (
            ("高风险" if chinese else "high_risk")
            if i % 5 == 0
            else ("一般" if chinese else "general")
        )
        tags = "独居；高龄" if chinese else "living_alone;elderly"
        lines.append(
            f"h-{i:06d},{GRIDS[i % 3]},卧龙小区{i % 9 + 1}号楼{i % 300}室,王{i},{tags},{tier}"
        )
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


async def _households(engine: AsyncEngine) -> list[tuple[str, str, str, str, int]]:
    async def work(conn: AsyncConnection) -> list[tuple[str, str, str, str, int]]:
        stmt = sa.select(
            household_t.c.id,
            household_t.c.grid_id,
            household_t.c.head_name,
            household_t.c.care_tier,
            household_t.c.since_ms,
        ).where(household_t.c.id.like("h-0%"))
        return [tuple(r) for r in await conn.execute(stmt.order_by(household_t.c.id))]

    return await read(engine, work)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_the_encoding_is_detected(tmp_path: Path, encoding: str) -> None:
    path = _csv(tmp_path / "h.csv", 50, chinese=True, encoding=encoding)
    found = importer.detect_encoding(path)
    assert found == {"gbk": "gb18030"}.get(encoding, encoding)
    rows = list(importer.households_csv(path))
    assert rows[0].head_name == "王0" and rows[0].tags == ["独居", "高龄"]
    assert rows[0].care_tier == "high_risk" and rows[1].care_tier == "general"


def test_a_file_in_no_known_encoding_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_bytes(b"id,grid\n" + bytes(range(0x80, 0x100)) * 10)
    with pytest.raises(importer.ImportError_, match=r"neither UTF-8 nor GB18030.*--encoding"):
        importer.detect_encoding(path)
    with pytest.raises(importer.ImportError_, match="unknown encoding 'nope'"):
        list(importer.households_csv(path, "nope"))


def test_unknown_columns_are_named_with_the_accepted_ones(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("id,网格,电话\nh-1,xinhua-g1,123\n", encoding="utf-8")
    with pytest.raises(importer.ImportError_, match=r"h.csv:1: unknown columns 电话; the columns"):
        list(importer.households_csv(path))
    path.write_text("地址\nx\n", encoding="utf-8")
    with pytest.raises(importer.ImportError_, match="no id or grid column"):
        list(importer.households_csv(path))


def test_a_bad_row_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("id,grid,care_tier\nh-1,xinhua-g1,general\nh-2,xinhua-g1,unknown\n", "utf-8")
    with pytest.raises(importer.ImportError_, match=r"h.csv:3: .*care_tier"):
        list(importer.households_csv(path))


async def test_batches_are_committed_as_they_go_and_a_rerun_converges(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    path = _csv(tmp_path / "h.csv", 1_000, chinese=True, encoding="gbk")
    broken = tmp_path / "broken.csv"
    lines = path.read_bytes().split(b"\r\n")
    broken.write_bytes(b"\r\n".join([*lines[:701], b"h-bad,no-such-grid", *lines[701:]]))
    seen: list[int] = []
    with pytest.raises(importer.ImportError_, match="unknown grids: no-such-grid"):
        await importer.import_file(engine, broken, batch=300, progress=seen.append, now_ms=1_000)
    first = await _households(engine)
    assert len(first) == 600  # two batches committed, the third refused whole
    assert seen and seen == sorted(seen)  # progress in bytes, never backwards
    counts = await importer.import_file(engine, path, batch=300, now_ms=2_000)
    assert counts["households"] == 1_000
    after = await _households(engine)
    assert len(after) == 1_000
    assert {h[4] for h in after[:600]} == {1_000}  # came under care at the first run
    assert {h[4] for h in after[600:]} == {2_000}
    assert after[0][2:4] == ("王0", "high_risk")
    again = await importer.import_file(engine, path, batch=300, now_ms=3_000)
    assert again["households"] == 1_000 and await _households(engine) == after
