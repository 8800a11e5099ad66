"""网格员 and 走访 in a real browser: drill down street → community → grid → worker and see
their patrols (equal to the API's, read with the page's session), a patrol not counted says
why, the overdue households equal the API's list, a note with two kept texts shows both, and a
secretary of one community gets the 404 page for another community's worker and household."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from rules.periods import week_of
from server.clock import wall_ms
from server.console import fmt
from server.console.nav import NAV
from server.console.strings import ZH
from server.db import make_engine
from server.limits import PushLimits
from server.state import Services
from server.tx import transaction
from tests.browser.conftest import TZ, Server, _in_thread
from tests.integration.worker_support import patrol
from tests.support import HOUR, Fleet, new_id, pulled_note
from worker import sweep

DAY = 24 * HOUR
LONG_AGO = ("h-xh-101", "h-xh-102", "h-qz-101")
"""Households put under care 60 days ago: the high-risk and key ones are then overdue."""
KEPT_HOME = "h-xh-201"
SHOWN, KEPT = "楼道灯坏了，已报物业", "老人说想申请助餐服务"


async def _seed(server: Server) -> None:
    """Two weeks ago: a patrol of w-wang too short to count and two that overlap; households
    under care for 60 days (swept: overdue), one visit of w-zhang 20 days ago; a note edited
    concurrently on two of w-zhang's phones (both texts kept)."""
    engine = make_engine(server.settings)
    try:
        services = Services(server.settings, engine, PushLimits(8, 8, 1), wall_ms)
        now = wall_ms()
        before = week_of(week_of(week_of(now, TZ).start_ms - 1, TZ).start_ms - 1, TZ)
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            fleet = Fleet(client, services)
            wang = await fleet.device("w-wang")
            day = before.start_ms + DAY
            pushed = [
                patrol("xinhua-g2", day + 8 * HOUR, 2),
                patrol("xinhua-g2", day + 2 * DAY + 8 * HOUR, 4.5),
                patrol("xinhua-g1", day + 2 * DAY + 10 * HOUR, 4.5),
            ]
            await wang.push(pushed)

            async def under_care(conn: Any) -> None:
                await conn.execute(
                    sa.text("UPDATE household SET since_ms = :ms WHERE id = ANY(:ids)"),
                    {"ms": now - 60 * DAY, "ids": list(LONG_AGO)},
                )

            await transaction(engine, under_care)
            one = await fleet.device("w-zhang", "dev-zhang-one")
            two = await fleet.device("w-zhang", "dev-zhang-two")
            old = one.note(
                new_id(), "h-xh-101", {"text": "独居，身体尚可", "visited_ms": now - 20 * DAY}
            )
            assert (await one.push([old]))["results"][0]["status"] == "applied"
            note_id = str(new_id())
            made = one.note(note_id, KEPT_HOME, {"text": "首次走访", "outcome": "met"})
            assert (await one.push([made]))["results"][0]["status"] == "applied"
            seen = await pulled_note(two, note_id)
            two.clock = one.clock
            two.skew_ms = 50  # the later clock: its text is the one shown
            base = {"text": seen["clocks"]["text"]}
            edit_one = one.note(note_id, KEPT_HOME, {"text": KEPT}, base=base)
            edit_two = two.note(note_id, KEPT_HOME, {"text": SHOWN}, base=base)
            assert (await one.push([edit_one]))["results"][0]["status"] == "applied"
            assert (await two.push([edit_two]))["results"][0]["status"] == "merged"
        await sweep.everything(engine, wall_ms())
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def seeded(server: Server) -> Iterator[Server]:
    _in_thread(lambda: _seed(server))
    yield server


def _patrol_rows(page: Any, week: str) -> list[dict[str, str]]:
    rows = page.locator(f'section[data-week="{week}"] table.patrols tbody tr')
    return [
        {
            "id": rows.nth(i).get_attribute("data-patrol") or "",
            "counted": rows.nth(i).get_attribute("data-counted") or "",
            "cells": " | ".join(t.strip() for t in rows.nth(i).locator("th, td").all_inner_texts()),
        }
        for i in range(rows.count())
    ]


def test_drill_down_to_a_worker_and_see_their_patrols_as_the_api_has_them(
    page: Any, seeded: Server, login: Callable[..., None], shoot: Callable[..., Any]
) -> None:
    url = seeded.url
    login(page, "s-dongfeng")
    nav = page.get_by_role("navigation", name=ZH["nav.label"])
    labels = nav.get_by_role("link").all_inner_texts()
    assert labels == [ZH[item.label] for item in NAV]  # every page's item, in order
    assert {"网格员", "走访"} <= set(labels)
    page.get_by_role("link", name="新华社区", exact=True).click()
    page.wait_for_url(f"{url}/units/xinhua")
    page.get_by_role("link", name="新华社区第一网格").click()
    page.wait_for_url(f"{url}/units/xinhua-g1")
    listed = page.request.get(f"{url}/v1/units/xinhua-g1/workers").json()
    section = page.get_by_role("region", name=ZH["grid_workers.heading"])
    shown = section.locator("tbody tr")
    assert [shown.nth(i).get_attribute("data-worker") for i in range(shown.count())] == [
        w["id"] for w in listed["workers"]
    ]
    for w in listed["workers"]:
        cell = section.locator(f'tr[data-worker="{w["id"]}"] td[data-col="week"]').inner_text()
        tally = w["week"]
        expected = (
            f"{tally['counted']} / {tally['required']}" if tally else ZH["workers.not_counted"]
        )
        assert cell.strip() == expected
        synced = section.locator(f'tr[data-worker="{w["id"]}"] td[data-col="sync"]').inner_text()
        assert synced.strip() == fmt.local(w["last_sync_ms"], TZ)
    shoot(page, "overview-grid-workers")
    section.get_by_role("link", name="王芳").click()
    page.wait_for_url(f"{url}/workers/w-wang")
    assert page.get_by_role("heading", level=1).inner_text().startswith("王芳")
    weeks = page.locator("section.week")
    assert weeks.count() == 5
    labels = [weeks.nth(i).get_attribute("data-week") for i in range(5)]
    for label in labels:
        api = page.request.get(f"{url}/v1/workers/w-wang/patrols?week={label}")
        assert api.status == 200, api.text()
        body = api.json()
        rows = _patrol_rows(page, label or "")
        assert [r["id"] for r in rows] == [p["id"] for p in body["patrols"]], label
        assert [r["counted"] == "yes" for r in rows] == [p["counted"] for p in body["patrols"]]
        summary = page.locator(f'section[data-week="{label}"] p.sum')
        assert summary.get_attribute("data-counted") == str(body["counted"])
        assert summary.get_attribute("data-required") == str(body["required"])
        for row, p in zip(rows, body["patrols"], strict=True):
            assert fmt.local(p["started_ms"], body["tz"]) in row["cells"]
            assert fmt.duration(p["duration_ms"]) in row["cells"]
            assert "ms" not in row["cells"]
    # two weeks ago: a 2-hour patrol does not count and says why; two overlap
    old = _patrol_rows(page, labels[2] or "")
    assert len(old) == 3
    short = [r for r in old if r["counted"] == "no"]
    assert len(short) == 1
    assert "不计入：时长不足 4 小时" in short[0]["cells"]
    assert "2 小时" in short[0]["cells"]
    assert sum(ZH["finding.overlapping_patrols"] in r["cells"] for r in old) == 2
    detail = page.request.get(f"{url}/v1/workers/w-wang").json()
    devices = page.locator("table.devices tbody tr")
    assert devices.count() == len(detail["devices"])
    grids = page.locator("dl.facts").inner_text()
    assert "新华社区 · 新华社区第一网格" in grids and "新华社区第二网格" in grids
    shoot(page, "worker")
    page.set_viewport_size({"width": 768, "height": 1024})
    shoot(page, "worker-tablet")


def test_the_worker_list_searches_by_name_and_lists_visits(
    page: Any, seeded: Server, login: Callable[..., None], shoot: Callable[..., Any]
) -> None:
    url = seeded.url
    login(page, "s-dongfeng", path="/workers")
    everyone = page.request.get(f"{url}/v1/units/dongfeng/workers").json()["workers"]
    rows = page.locator("table.workers tbody tr")
    assert rows.count() == len(everyone) == 4
    shoot(page, "workers")
    page.get_by_label(ZH["workers.search"]).fill("张")
    page.get_by_role("button", name=ZH["workers.submit"]).click()
    page.wait_for_url(f"{url}/workers?unit=dongfeng&q=%E5%BC%A0")
    assert rows.count() == 1
    page.get_by_role("link", name="张伟").click()
    page.wait_for_url(f"{url}/workers/w-zhang")
    visits = page.locator("table.visits tbody tr")
    assert visits.count() == 2
    texts = visits.all_inner_texts()
    assert any("新华小区2号楼1单元201室" in t and ZH["worker.kept"] in t for t in texts)
    assert any("新华小区1号楼1单元101室" in t for t in texts)
    page.locator("section", has=page.locator("#visits")).scroll_into_view_if_needed()
    shoot(page, "worker-visits")
    page.goto(f"{url}/workers")
    page.get_by_label(ZH["workers.unit"]).select_option("qunzhong")
    page.get_by_role("button", name=ZH["workers.submit"]).click()
    page.wait_for_url(f"{url}/workers?unit=qunzhong&q=")
    names = page.locator("table.workers tbody th").all_inner_texts()
    assert sorted(n.strip() for n in names) == ["刘洋", "李娜"]


def test_the_overdue_households_equal_the_api_and_a_note_shows_both_kept_texts(
    page: Any, seeded: Server, login: Callable[..., None], shoot: Callable[..., Any]
) -> None:
    url = seeded.url
    login(page, "s-dongfeng", path="/households")
    api = page.request.get(f"{url}/v1/units/dongfeng/households?overdue=true")
    assert api.status == 200, api.text()
    homes = api.json()["households"]
    assert set(LONG_AGO) <= {h["id"] for h in homes}
    assert KEPT_HOME not in {h["id"] for h in homes}  # visited today
    rows = page.locator("table.households tbody tr")
    shown = [rows.nth(i).get_attribute("data-household") for i in range(rows.count())]
    assert shown == [h["id"] for h in sorted(homes, key=lambda h: (h["due_ms"], h["id"]))]
    for h in homes:
        text = page.locator(f'tr[data-household="{h["id"]}"]').inner_text()
        assert h["address"] in text and h["head_name"] in text
        assert ZH[f"tier.{h['care_tier']}"] in text
        assert "天" in text  # how overdue, in days
        if h["last_visit_ms"]:
            assert fmt.local(h["last_visit_ms"], TZ) in text and h["last_visit_by_name"] in text
        else:
            assert ZH["households.never"] in text
    assert "张伟" in page.locator('tr[data-household="h-xh-101"]').inner_text()
    shoot(page, "households")
    page.set_viewport_size({"width": 768, "height": 1024})
    shoot(page, "households-tablet")
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{url}/households/{KEPT_HOME}")
    notes = page.request.get(f"{url}/v1/households/{KEPT_HOME}/notes").json()["notes"]
    (note,) = notes
    assert note["fields"]["text"] == SHOWN
    assert [a["value"] for a in note["alternatives"]["text"]] == [KEPT]
    conflict = page.locator(f'article[data-note="{note["id"]}"] dd[data-field="text"] .conflict')
    assert ZH["household.conflict"] in conflict.inner_text()
    assert conflict.locator(".version.shown .text").inner_text() == SHOWN
    assert conflict.locator(".version.kept .text").all_inner_texts() == [KEPT]
    assert "张伟" in conflict.locator(".version.kept").inner_text()
    shoot(page, "household-notes")


def test_a_secretary_of_one_community_gets_404_for_anothers_worker_and_household(
    page: Any, seeded: Server, login: Callable[..., None]
) -> None:
    url = seeded.url
    login(page, "s-xinhua", path="/workers")
    names = page.locator("table.workers tbody th").all_inner_texts()
    assert sorted(n.strip() for n in names) == ["张伟", "王芳"]
    page.goto(f"{url}/households")
    assert page.locator('tr[data-household^="h-qz"]').count() == 0
    for path in (
        "/workers/w-li",
        "/workers/nobody",
        "/households/h-qz-101",
        "/workers?unit=qunzhong",
        "/households?unit=qunzhong",
    ):
        reply = page.goto(f"{url}{path}")
        assert reply is not None and reply.status == 404, path
        assert page.get_by_role("heading", level=1).inner_text() == ZH["error.404.title"]
        assert "李娜" not in page.content() and "吴老汉" not in page.content()
    assert page.request.get(f"{url}/v1/workers/w-li").status == 404
    assert page.request.get(f"{url}/v1/households/h-qz-101/notes").status == 404
