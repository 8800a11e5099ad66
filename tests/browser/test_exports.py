"""导出 in a real browser: the CSV files downloaded from the page (and the overview's links) start
with the UTF-8 byte order mark and carry the Chinese names; a community's secretary gets no
export of another community."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from server.console.strings import ZH
from tests.browser.conftest import Server

BOM = b"\xef\xbb\xbf"


def _download(page: Any, link: Any) -> bytes:
    with page.expect_download() as info:
        link.click()
    return Path(info.value.path()).read_bytes()


def _rows(data: bytes) -> list[dict[str, str]]:
    assert data.startswith(BOM)
    return list(csv.DictReader(io.StringIO(data[len(BOM) :].decode("utf-8"))))


def test_the_exports_download_with_a_bom_and_chinese_names(
    page: Any, server: Server, login: Callable[..., None], shoot: Callable[..., Any]
) -> None:
    login(page, "s-xinhua", path="/exports")
    assert page.url == f"{server.url}/exports"
    shoot(page, "exports")
    compliance = _rows(_download(page, page.locator('tr[data-export="compliance"] a')))
    assert {r["name"] for r in compliance} >= {"新华社区第一网格", "新华社区第二网格"}
    patrols = _rows(_download(page, page.locator('tr[data-export="patrols"] a')))
    assert {r["worker_name"] for r in patrols} >= {"张伟", "王芳"}
    assert "李娜" not in {r["worker_name"] for r in patrols}  # another community's worker
    _rows(_download(page, page.locator('tr[data-export="alerts"] a')))  # BOM, well-formed

    # last week of one grid: the page's choice reaches the file
    page.get_by_label(ZH["exports.unit_label"]).select_option("xinhua-g1")
    last = page.get_by_label(ZH["exports.week_label"]).locator("option").nth(1).inner_text()
    page.get_by_label(ZH["exports.week_label"]).select_option(last)
    page.get_by_role("button", name=ZH["exports.choose"]).click()
    page.wait_for_url(f"{server.url}/exports?unit=xinhua-g1&week={last}")
    assert (
        page.get_by_role("heading", level=1)
        .inner_text()
        .startswith(f"{ZH['exports.title']} · 新华社区第一网格")
    )
    data = _download(page, page.locator('tr[data-export="compliance"] a'))
    api = page.request.get(
        f"{server.url}/v1/compliance?unit=xinhua-g1&week={last}&format=csv&bom=true"
    )
    assert data == api.body()
    assert any(r["name"] == "新华社区第一网格" for r in _rows(data))


def test_the_overview_links_this_and_last_weeks_compliance_csv(
    page: Any, server: Server, login: Callable[..., None]
) -> None:
    login(page, "s-dongfeng")
    table = page.locator("table.overview")
    for which, week in (("this", "data-this-week"), ("last", "data-last-week")):
        data = _download(page, page.locator(f'a[data-export="{which}"]'))
        rows = _rows(data)
        assert {r["name"] for r in rows} >= {"新华社区", "群众路社区"}
        label = table.get_attribute(week)
        assert all(r["week"] == label for r in rows if "week" in r)


def test_a_secretary_gets_no_export_of_another_community(
    page: Any, server: Server, login: Callable[..., None]
) -> None:
    login(page, "s-xinhua")
    reply = page.goto(f"{server.url}/exports?unit=qunzhong")
    assert reply is not None and reply.status == 404
    assert page.get_by_role("heading", level=1).inner_text() == ZH["error.404.title"]
    for path in (
        "/v1/compliance?unit=qunzhong&format=csv&bom=true",
        "/v1/alerts?unit=qunzhong&format=csv",
        "/v1/units/qunzhong/patrols?format=csv",
        "/v1/units/qunzhong-g1/patrols?format=csv",
    ):
        got = page.request.get(f"{server.url}{path}")
        assert got.status in (403, 404), path
        assert not got.body().startswith(BOM)
