"""The alert inbox in a real browser: rows against the alert API, acknowledge with a comment
(it shows in the history), resolve without one is refused, bulk acknowledgement, a new alert from
a device's push appearing on an open page within 2 s, another community's alerts out of sight,
filters; screenshots of the list, a detail page and the tablet width."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx

from rules.periods import week_of
from server.clock import wall_ms
from server.console.strings import ZH
from server.db import make_engine
from server.limits import PushLimits
from server.state import Services
from tests.browser.conftest import TZ, Server, _in_thread
from tests.integration.worker_support import patrol
from tests.support import HOUR, Fleet
from worker import main as worker_main

GRIDS = {"w-zhang": "xinhua-g1", "w-wang": "xinhua-g2", "w-li": "qunzhong-g1"}


def push_and_judge(server: Server, worker: str, **route: Any) -> None:
    """A new device of ``worker`` pushes one patrol (over, this week if it can) with ``route``,
    then the worker judges: returns once the alerts it makes are committed."""

    async def work() -> None:
        engine = make_engine(server.settings)
        try:
            services = Services(server.settings, engine, PushLimits(8, 8, 1), wall_ms)
            now = wall_ms()
            this = week_of(now, TZ)
            start = max(this.start_ms + HOUR // 2, now - 6 * HOUR)
            if start + 5 * HOUR > now:  # the week is too young: a patrol of last week
                start = this.start_ms - 12 * HOUR
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                device = await Fleet(client, services).device(worker)
                item = patrol(GRIDS[worker], start, 4.5, route=route)
                await device.push([item])
            await worker_main.burst(server.settings, engine, wall_ms)
        finally:
            await engine.dispose()

    _in_thread(work)


def _api(page: Any, server: Server, query: str = "") -> list[dict[str, Any]]:
    reply = page.request.get(f"{server.url}/v1/alerts?limit=500{query}")
    assert reply.status == 200, reply.text()
    return list(reply.json()["alerts"])


def _ids_shown(page: Any) -> list[int]:
    return [
        int(x)
        for x in page.locator("table.alerts tbody tr").evaluate_all(
            "rows => rows.map(r => r.dataset.alert)"
        )
    ]


def test_the_inbox_lists_the_apis_alerts_in_words(
    page: Any, server: Server, login: Callable[..., None], shoot: Callable[..., Any]
) -> None:
    login(page, "s-dongfeng", path="/alerts")
    assert page.url == f"{server.url}/alerts"
    nav = page.get_by_role("navigation", name=ZH["nav.label"])
    assert nav.get_by_role("link", name=ZH["nav.alerts"]).get_attribute("aria-current") == "page"
    expected = _api(page, server, "&status=open,acknowledged")
    assert expected, "the seeded weeks left no open alert"
    assert _ids_shown(page) == [a["id"] for a in expected][:50]
    missed = [a for a in expected if a["rule"] == "quota_missed"]
    assert missed, "the seeding judged a missed quota last week"
    row = page.locator(f'tr[data-alert="{missed[0]["id"]}"]')
    assert missed[0]["subject_name"] in row.locator("th").inner_text()
    assert missed[0]["unit_name"] in row.locator("th").inner_text()
    assert row.locator("td.rule").inner_text() == ZH["alert.rule.quota_missed"]
    ev = missed[0]["evidence"]
    words = row.locator("td.evidence").inner_text()
    assert f"有效巡查 {ev['counted']} 次（要求 {ev['required']} 次，每次不少于 4 小时）" in words
    assert "上周" in words
    assert re.fullmatch(r"(\d+ (天|小时|分钟)前|刚刚)", row.locator("td.age").inner_text())
    assert "ms" not in page.locator("table.alerts").inner_text()
    page.locator("#live-status[data-state=on]").wait_for()
    assert page.locator("#live-status").inner_text() == ZH["alerts.live.on"]
    shoot(page, "alerts-list")
    page.set_viewport_size({"width": 768, "height": 1024})
    shoot(page, "alerts-list-tablet")


def test_acknowledge_needs_a_comment_and_shows_it_in_the_history(
    page: Any, server: Server, login: Callable[..., None], shoot: Callable[..., Any]
) -> None:
    login(page, "s-xinhua", path="/alerts")
    target = next(a for a in _api(page, server, "&status=open") if a["rule"] == "quota_missed")
    page.locator(f'tr[data-alert="{target["id"]}"] th a').click()
    page.wait_for_url(f"{server.url}/alerts/{target['id']}")
    assert (
        page.get_by_role("heading", level=1).inner_text().startswith(ZH["alert.rule.quota_missed"])
    )
    # resolve without a comment: refused with the Chinese message, nothing written
    page.get_by_role("button", name=ZH["alert.resolve"]).click()
    page.wait_for_load_state()
    assert page.get_by_role("alert").inner_text() == ZH["alert.comment_required"]
    after = page.request.get(f"{server.url}/v1/alerts/{target['id']}").json()
    assert after["alert"]["status"] == "open"
    shoot(page, "alert-comment-required")
    # acknowledge with a comment
    page.get_by_label(ZH["alert.note"]).fill("已电话联系网格员，本周补齐巡查")
    page.get_by_role("button", name=ZH["alert.acknowledge"]).click()
    page.wait_for_url(f"{server.url}/alerts/{target['id']}")
    history = page.locator(".history .events")
    acked = history.locator('li[data-kind="acknowledged"]')
    assert "已电话联系网格员，本周补齐巡查" in acked.inner_text()
    assert "新华社区书记赵敏" in acked.inner_text()
    api = page.request.get(f"{server.url}/v1/alerts/{target['id']}").json()
    assert api["alert"]["status"] == "acknowledged"
    assert [e["detail"].get("note") for e in api["events"] if e["kind"] == "acknowledged"] == [
        "已电话联系网格员，本周补齐巡查"
    ]
    # a comment, then resolve with a note
    page.get_by_label(ZH["alert.comment"]).fill("周五复查")
    page.get_by_role("button", name=ZH["alert.comment_submit"]).click()
    page.wait_for_url(f"{server.url}/alerts/{target['id']}")
    assert "周五复查" in history.locator('li[data-kind="commented"]').inner_text()
    shoot(page, "alert-detail-history")
    page.get_by_label(ZH["alert.note"]).fill("已补齐")
    page.get_by_role("button", name=ZH["alert.resolve"]).click()
    page.wait_for_url(f"{server.url}/alerts/{target['id']}")
    assert page.locator(".facts").get_attribute("data-status") == "resolved"
    assert page.get_by_role("button", name=ZH["alert.resolve"]).count() == 0
    page.set_viewport_size({"width": 768, "height": 1024})
    shoot(page, "alert-detail-tablet")


def test_bulk_acknowledge_with_one_comment(
    page: Any, server: Server, login: Callable[..., None], shoot: Callable[..., Any]
) -> None:
    push_and_judge(server, "w-zhang", points=10, distance_m=3000.0, mock_location=True)
    push_and_judge(server, "w-wang", points=10, distance_m=3000.0, mock_location=True)
    login(page, "s-xinhua", path=quote("/alerts?rule=mock_location&status=open"))
    rows = page.locator("table.alerts tbody tr")
    assert rows.count() == 2, rows.all_inner_texts()
    assert ZH["alert.ev.mock_location"].format(count=1) in rows.first.inner_text()
    # without a comment: refused, nothing acknowledged
    for box in page.locator("table.alerts tbody input[type=checkbox]").all():
        box.check()
    page.get_by_role("button", name=ZH["alerts.bulk.submit"]).click()
    page.wait_for_load_state()
    assert page.get_by_role("alert").inner_text() == ZH["alert.comment_required"]
    assert page.locator("table.alerts tbody tr").count() == 2
    for box in page.locator("table.alerts tbody input[type=checkbox]").all():
        box.check()
    page.get_by_label(ZH["alerts.bulk.note"]).fill("已核实：设备定位设置错误，已纠正")
    page.get_by_role("button", name=ZH["alerts.bulk.submit"]).click()
    page.wait_for_load_state()
    assert "已确认 2 条预警" in page.get_by_role("status").filter(has_text="已确认").inner_text()
    assert page.locator("table.alerts tbody tr").count() == 0  # the filter: open only
    acked = _api(page, server, "&rule=mock_location&status=acknowledged")
    assert len(acked) == 2
    for alert in acked:
        events = page.request.get(f"{server.url}/v1/alerts/{alert['id']}").json()["events"]
        notes = [e["detail"].get("note") for e in events if e["kind"] == "acknowledged"]
        assert notes == ["已核实：设备定位设置错误，已纠正"]
    shoot(page, "alerts-bulk-acknowledged")


def test_a_new_alert_from_a_push_appears_on_an_open_page_within_two_seconds(
    page: Any, server: Server, login: Callable[..., None], shoot: Callable[..., Any]
) -> None:
    login(page, "s-dongfeng", path="/alerts")
    page.locator("#live-status[data-state=on]").wait_for()
    before = set(_ids_shown(page))
    page.evaluate("() => { window.__sameDocument = true; }")
    push_and_judge(server, "w-li", points=10, distance_m=3000.0, inside_share=0.1)
    fresh = page.locator("table.alerts tbody tr", has_text=ZH["alert.rule.outside_grid"])
    # the alert is committed when push_and_judge returns
    fresh.first.wait_for(state="visible", timeout=2000)
    assert page.evaluate("() => window.__sameDocument") is True  # no reload
    row = fresh.first
    assert int(row.get_attribute("data-alert")) not in before
    assert "李娜" in row.inner_text()
    assert "网格内占比最低 10%（要求至少" in row.inner_text()
    shoot(page, "alerts-live-row")


def test_a_secretary_sees_only_their_community(
    page: Any, server: Server, login: Callable[..., None], shoot: Callable[..., Any]
) -> None:
    login(page, "s-dongfeng", path="/alerts?status=all")
    theirs = _api(page, server, "&unit=qunzhong")
    assert theirs, "the seeding left an alert in 群众路社区"
    page.context.clear_cookies()
    login(page, "s-xinhua", path="/alerts?status=all")
    assert page.url.endswith("/alerts?status=all")
    shown = set(_ids_shown(page))
    assert shown and not shown & {a["id"] for a in theirs}
    assert "群众路" not in page.locator("table.alerts").inner_text()
    other = theirs[0]["id"]
    for path in (f"/alerts/{other}", f"/alerts/{other}/row", "/alerts?unit=qunzhong"):
        reply = page.goto(f"{server.url}{path}")
        assert reply is not None and reply.status == 404, path
        assert page.get_by_role("heading", level=1).inner_text() == ZH["error.404.title"]
    page.goto(f"{server.url}/alerts")
    forged = page.request.post(
        f"{server.url}/alerts/{other}/acknowledge",
        form={"csrf": page.locator("input[name=csrf]").first.input_value(), "note": "x"},
        max_redirects=0,
    )
    assert forged.status == 404
    assert page.request.get(f"{server.url}/v1/alerts/{other}").status == 404


def test_filters_narrow_the_list_and_stay_in_the_url(
    page: Any, server: Server, login: Callable[..., None], shoot: Callable[..., Any]
) -> None:
    login(page, "s-dongfeng", path="/alerts?status=all")
    everything = _api(page, server)
    page.get_by_label(ZH["alerts.f.rule"]).select_option("quota_missed")
    page.get_by_label(ZH["alerts.f.unit"]).select_option("xinhua")
    page.get_by_role("button", name=ZH["alerts.f.apply"]).click()
    page.wait_for_load_state()
    assert "rule=quota_missed" in page.url and "unit=xinhua" in page.url
    want = [a["id"] for a in _api(page, server, "&rule=quota_missed&unit=xinhua")]
    assert want and _ids_shown(page) == want
    assert len(want) < len(everything)
    assert page.get_by_label(ZH["alerts.f.rule"]).input_value() == "quota_missed"
    week = (
        everything[-1]["period"] if re.fullmatch(r"\d{4}-W\d\d", everything[-1]["period"]) else ""
    )
    page.goto(f"{server.url}/alerts?status=all&level=3")
    assert _ids_shown(page) == [a["id"] for a in _api(page, server, "&level=3")]
    if week:
        page.goto(f"{server.url}/alerts?status=all&week={week}")
        assert _ids_shown(page) == [a["id"] for a in _api(page, server, f"&period={week}")]
    # pages of two by the API's cursor, the filters kept on every page
    seen: list[int] = []
    page.goto(f"{server.url}/alerts?status=all&limit=2")
    while True:
        shown = _ids_shown(page)
        assert 0 < len(shown) <= 2
        seen += shown
        following = page.get_by_role("link", name=ZH["alerts.next"])
        if following.count() == 0:
            break
        following.click()
        page.wait_for_load_state()
        assert "limit=2" in page.url and "status=all" in page.url and "cursor=" in page.url
    assert seen == [a["id"] for a in everything]
    page.goto(f"{server.url}/alerts?status=resolved")
    assert _ids_shown(page) == [a["id"] for a in _api(page, server, "&status=resolved")]
    shoot(page, "alerts-filtered")


def test_after_a_429_the_page_reopens_the_stream_after_retry_after(
    page: Any, server: Server, login: Callable[..., None]
) -> None:
    asked: list[float] = []

    def crowded(route: Any) -> None:
        asked.append(time.monotonic())
        if len(asked) <= 2:  # the EventSource, then the script's own probe: both refused
            route.fulfill(status=429, headers={"Retry-After": "2"}, body="{}")
        else:
            route.continue_()

    page.route(re.compile(r".*/v1/alerts/stream.*"), crowded)
    login(page, "s-xinhua", path="/alerts")
    page.locator("#live-status[data-state=off]").wait_for()
    assert page.locator("#live-status").inner_text() == ZH["alerts.live.off"]
    page.locator("#live-status[data-state=on]").wait_for(timeout=8000)
    assert len(asked) == 3
    assert asked[2] - asked[1] >= 1.9  # waited Retry-After (2 s) before reopening
