"""A supervisor of two communities in a real browser: their own (新华) and one granted them
(群众路, ``grant-unit``). The alert inbox lists both communities' alerts, exactly the API's;
the unit choosers offer both; the second community's worker opens; a unit of neither (the
street above them) is the 404 page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from server import accounts, enrolment
from server.clock import wall_ms
from server.console.strings import ZH
from server.db import make_engine
from server.store import units
from server.tx import transaction
from tests.browser.conftest import PASSWORD, Server, _in_thread

TWO = "s-two-communities"


@pytest.fixture(scope="module")
def two(server: Server) -> str:
    """A supervisor of 新华社区 given 群众路社区 too, with the tests' password."""

    async def work() -> None:
        engine = make_engine(server.settings)
        try:
            hashed = await accounts.hash_for(PASSWORD)

            async def people(conn: Any) -> None:
                row = {"id": TWO, "name": "两个社区的书记", "unit_id": "xinhua"}
                await units.upsert_supervisors(conn, [row])
                await accounts.set_password(conn, TWO, hashed, wall_ms())
                await enrolment.grant_unit(conn, TWO, "qunzhong", wall_ms())

            await transaction(engine, people)
        finally:
            await engine.dispose()

    _in_thread(work)
    return TWO


def _api(page: Any, server: Server, query: str = "") -> set[int]:
    reply = page.request.get(
        f"{server.url}/v1/alerts?limit=500&status=open,acknowledged,resolved,auto_resolved{query}"
    )
    assert reply.status == 200, reply.text()
    return {a["id"] for a in reply.json()["alerts"]}


def _ids_shown(page: Any) -> set[int]:
    return {
        int(x)
        for x in page.locator("table.alerts tbody tr").evaluate_all(
            "rows => rows.map(r => r.dataset.alert)"
        )
    }


def test_a_supervisor_of_two_communities_sees_both(
    page: Any, server: Server, login: Callable[..., None], two: str
) -> None:
    login(page, two, path="/alerts?status=all")
    assert page.url.endswith("/alerts?status=all")
    xinhua, qunzhong = _api(page, server, "&unit=xinhua"), _api(page, server, "&unit=qunzhong")
    assert xinhua and qunzhong, "the seeding left alerts in both communities"
    assert _api(page, server) == xinhua | qunzhong
    assert _ids_shown(page) == xinhua | qunzhong
    # The inbox's unit filter offers the granted community; choosing it narrows the list.
    page.goto(f"{server.url}/alerts?status=all&unit=qunzhong")
    assert _ids_shown(page) == qunzhong
    # The workers page offers both communities, and opens the second one's worker.
    page.goto(f"{server.url}/workers")
    options = page.locator("select#unit option").all_inner_texts()
    assert any("新华社区" in o for o in options) and any("群众路社区" in o for o in options)
    page.goto(f"{server.url}/workers?unit=qunzhong")
    assert "刘洋" in page.locator("main").inner_text()
    reply = page.goto(f"{server.url}/workers/w-liu")
    assert reply is not None and reply.status == 200
    # Nothing between them: the street that holds both is not theirs.
    for path in ("/units/dongfeng", "/workers?unit=dongfeng"):
        reply = page.goto(f"{server.url}{path}")
        assert reply is not None and reply.status == 404, path
        assert page.get_by_role("heading", level=1).inner_text() == ZH["error.404.title"]
