"""The console in a real browser: log in, the week overview against the compliance API, drill
down, CSRF, logout, another community's unit, the session cookie's flags."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from server.console.nav import NAV
from server.console.strings import ZH
from tests.browser.conftest import ACCOUNT_LIMIT, LOCKED, PASSWORD, PLAN, Server

COLUMNS = ("meeting", "patrols", "overdue", "alerts")


def _cells(row: Any) -> list[str]:
    return [
        f"{row['workers_meeting_quota']} / {row['workers']}",
        str(row["patrols"]),
        str(row["overdue_households"]),
        str(row["open_alerts"]),
    ]


def _shown(page: Any, unit_id: str) -> tuple[list[str], list[str]]:
    """The cells of one row of the overview: this week's four, last week's four."""
    texts = page.locator(f'tr[data-unit="{unit_id}"] td').all_inner_texts()
    assert len(texts) == 8, texts
    return [t.strip() for t in texts[:4]], [t.strip() for t in texts[4:]]


def test_a_wrong_password_says_so_and_the_right_one_opens_the_overview(
    page: Any, server: Server, login: Callable[..., None], shoot: Callable[..., Any]
) -> None:
    page.goto(f"{server.url}/")
    assert page.url == f"{server.url}/login"
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    shoot(page, "login")
    login(page, "s-dongfeng", "not-the-password")
    assert page.get_by_role("alert").inner_text() == ZH["login.wrong"]
    assert page.get_by_label("督导账号").input_value() == "s-dongfeng"
    shoot(page, "login-wrong-password")
    login(page, "s-dongfeng")
    assert page.url == f"{server.url}/"
    assert page.get_by_role("heading", level=1).inner_text().startswith(ZH["overview.title"])
    assert page.get_by_role("navigation", name=ZH["nav.label"]).get_by_role("link").count() == len(
        NAV
    )


def test_repeated_failures_are_limited_with_a_chinese_page(
    page: Any, server: Server, login: Callable[..., None], shoot: Callable[..., Any]
) -> None:
    for _ in range(ACCOUNT_LIMIT):
        login(page, LOCKED, "wrong-password-again")
        assert page.get_by_role("alert").inner_text() == ZH["login.wrong"]
    with page.expect_response(f"{server.url}/login") as answer:
        login(page, LOCKED)  # the right password: refused all the same while locked
    reply = answer.value
    assert reply.status == 429
    assert int(reply.headers["retry-after"]) > 0
    assert page.get_by_role("heading", level=1).inner_text() == ZH["error.429.title"]
    assert "秒后再试" in page.locator("main").inner_text()
    shoot(page, "login-too-many-attempts")
    login(page, "s-xinhua")  # another account from the same address still logs in
    assert page.url == f"{server.url}/"


def test_the_overview_equals_the_compliance_api_this_week_and_last(
    page: Any, server: Server, login: Callable[..., None], shoot: Callable[..., Any]
) -> None:
    login(page, "s-dongfeng")
    table = page.locator("table.overview")
    this_week = table.get_attribute("data-this-week")
    last_week = table.get_attribute("data-last-week")
    assert this_week != last_week
    assert "进行中" in table.inner_text() and "已结算" in table.inner_text()
    shoot(page, "overview-street")
    seen_rows = 0
    for label, index in ((this_week, 0), (last_week, 1)):
        # the page's own session opens the API for reading (GET with the cookie, no token)
        reply = page.request.get(f"{server.url}/v1/compliance?week={label}")
        assert reply.status == 200, reply.text()
        report = reply.json()
        assert report["unit_id"] == "dongfeng"
        for row in report["rows"]:
            assert _shown(page, row["unit_id"])[index] == _cells(row), (label, row)
            seen_rows += 1
    assert seen_rows == 6  # two communities and the total, in two weeks
    last_total = page.request.get(f"{server.url}/v1/compliance?week={last_week}").json()["rows"][-1]
    assert last_total["workers"] == len(PLAN)
    assert last_total["patrols"] == sum(before for _, before, _ in PLAN.values())
    assert last_total["workers_meeting_quota"] == 2  # w-zhang (3) and w-li (4)


def test_drill_down_from_the_street_to_a_grid(
    page: Any, server: Server, login: Callable[..., None], shoot: Callable[..., Any]
) -> None:
    login(page, "s-dongfeng")
    page.get_by_role("link", name="新华社区", exact=True).click()
    page.wait_for_url(f"{server.url}/units/xinhua")
    assert page.locator('tr[data-unit="xinhua-g1"]').count() == 1
    shoot(page, "overview-community")
    page.get_by_role("link", name="新华社区第一网格").click()
    page.wait_for_url(f"{server.url}/units/xinhua-g1")
    crumbs = page.get_by_role("navigation", name=ZH["overview.breadcrumb"])
    assert crumbs.get_by_role("link").all_inner_texts() == ["东风路街道", "新华社区"]
    this_week = page.locator("table.overview").get_attribute("data-this-week")
    rows = page.request.get(f"{server.url}/v1/compliance?unit=xinhua-g1&week={this_week}")
    total = rows.json()["rows"][-1]
    assert _shown(page, "xinhua-g1")[0] == _cells(total)
    assert page.locator("table.overview tbody tr").count() == 0  # a grid has no child rows
    assert ZH["overview.grid_note"] in page.locator("main").inner_text()
    shoot(page, "overview-grid")
    page.set_viewport_size({"width": 768, "height": 1024})
    shoot(page, "overview-grid-tablet")


def test_a_form_posted_without_the_csrf_token_is_refused(
    page: Any, server: Server, login: Callable[..., None], shoot: Callable[..., Any]
) -> None:
    login(page, "s-xinhua")
    forged = page.request.post(f"{server.url}/logout", form={"other": "x"}, max_redirects=0)
    assert forged.status == 403
    assert ZH["error.403.title"] in forged.text()
    wrong = page.request.post(f"{server.url}/logout", form={"csrf": "0" * 64}, max_redirects=0)
    assert wrong.status == 403
    page.goto(f"{server.url}/units/xinhua")
    assert page.url == f"{server.url}/units/xinhua"  # still logged in
    # a form on the page without its hidden token: the browser's own submission is refused
    page.evaluate(
        """() => { const f = document.querySelector('form[action="/logout"]');
                   f.querySelector('input[name=csrf]').remove(); f.submit(); }"""
    )
    page.wait_for_load_state()
    assert page.get_by_role("heading", level=1).inner_text() == ZH["error.403.title"]
    shoot(page, "csrf-refused")
    login_forged = page.request.post(
        f"{server.url}/login", form={"supervisor_id": "s-xinhua", "password": "x"}
    )
    assert login_forged.status == 403
    # unsafe API methods never accept the session: a bearer token is needed
    put = page.request.put(f"{server.url}/v1/units/xinhua/settings", data={})
    assert put.status == 401


def test_after_logout_pages_redirect_to_login_and_back(
    page: Any, server: Server, login: Callable[..., None]
) -> None:
    login(page, "s-xinhua", path="/units/xinhua-g2")
    assert page.url == f"{server.url}/units/xinhua-g2"
    page.get_by_role("button", name=ZH["session.logout"]).click()
    page.wait_for_url(f"{server.url}/login")
    page.goto(f"{server.url}/units/xinhua-g2")
    assert page.url == f"{server.url}/login?next=/units/xinhua-g2"
    assert page.request.get(f"{server.url}/v1/compliance").status == 401
    page.get_by_label("督导账号").fill("s-xinhua")
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(f"{server.url}/units/xinhua-g2")


def test_next_never_leaves_the_site(page: Any, server: Server, login: Callable[..., None]) -> None:
    for target in ("//example.com/x", "https://example.com/", "/\\example.com"):
        page.context.clear_cookies()
        login(page, "s-qunzhong", path=target)
        assert page.url == f"{server.url}/", target


def test_a_community_secretary_gets_404_for_another_community(
    page: Any, server: Server, login: Callable[..., None], shoot: Callable[..., Any]
) -> None:
    login(page, "s-xinhua")
    assert page.locator('tr[data-unit="xinhua-g1"]').count() == 1
    assert page.locator('tr[data-unit^="qunzhong"]').count() == 0
    for path in ("/units/qunzhong", "/units/qunzhong-g1", "/units/dongfeng", "/units/nowhere"):
        reply = page.goto(f"{server.url}{path}")
        assert reply is not None and reply.status == 404, path
        assert page.get_by_role("heading", level=1).inner_text() == ZH["error.404.title"]
        assert "群众路" not in page.content()
    shoot(page, "not-found")
    api = page.request.get(f"{server.url}/v1/compliance?unit=qunzhong")
    assert api.status == 404


def test_the_session_cookie_is_httponly_and_samesite_lax(
    page: Any, server: Server, login: Callable[..., None]
) -> None:
    login(page, "s-qunzhong")
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["patrolsync_session"]
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Lax"
    assert session["secure"] is False  # plain HTTP here; HTTPS or PATROLSYNC_COOKIE_SECURE set it
    assert session["path"] == "/"
    assert cookies["patrolsync_login"]["httpOnly"] is True
    assert page.evaluate("document.cookie") == ""
    assert re.fullmatch(r"[A-Za-z0-9_-]{40,}", session["value"])


def test_the_api_reference_renders_with_no_internet(
    page: Any, server: Server, shoot: Callable[..., Any]
) -> None:
    """/schema (the API reference) loads only the server's own files: with every outside
    request blocked (and failing the test, see the page fixture) it renders the operations."""
    page.goto(f"{server.url}/schema")
    page.get_by_role("heading", name=re.compile("patrolsync")).first.wait_for()
    page.get_by_text("/v1/sync/push").first.wait_for()
    shoot(page, "api-reference")
