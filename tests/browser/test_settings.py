"""设置 in a real browser: a unit's settings shown in hours, days and counts with where each
value comes from, a change saved in hours read back from the API in milliseconds, invalid
values answered beside their field with nothing saved, another community's unit refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from server.console.strings import ZH
from sync.durations import DAY_MS, HOUR_MS
from tests.browser.conftest import Server


def _row(page: Any, key: str) -> Any:
    return page.locator(f'tr[data-key="{key}"]')


def _api(page: Any, server: Server, unit: str) -> dict[str, Any]:
    reply = page.request.get(f"{server.url}/v1/units/{unit}/settings")
    assert reply.status == 200
    body: dict[str, Any] = reply.json()
    return body


def test_settings_saved_in_hours_are_milliseconds_in_the_api_and_inherited_below(
    page: Any, server: Server, login: Callable[..., None], shoot: Callable[..., Any]
) -> None:
    login(page, "s-xinhua", path="/settings")
    assert page.url == f"{server.url}/settings"
    listed = page.locator("table.settings-units tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.unit)"
    )
    assert listed == ["xinhua", "xinhua-g1", "xinhua-g2"]  # own unit and below, no building
    shoot(page, "settings-units")
    page.get_by_role("link", name=ZH["settings.edit_unit"].format(unit="新华社区")).click()
    page.wait_for_url(f"{server.url}/settings/xinhua")
    before = _api(page, server, "xinhua")
    assert _row(page, "quota_min_patrol_ms").locator('[data-col="effective"]').inner_text() == (
        "4 小时"
    )
    assert _row(page, "cadence_key_ms").locator('[data-col="effective"]').inner_text() == "31 天"
    assert (
        _row(page, "quota_patrols").locator('[data-col="source"]').inner_text()
        == ZH["settings.source_default"]
    )
    assert "ms" not in page.locator("main").inner_text()
    page.get_by_label(ZH["settings.quota_min_patrol_ms"]).fill("3.5")
    page.get_by_label(ZH["settings.cadence_key_ms"]).fill("14")
    page.get_by_label(ZH["settings.quota_patrols"]).fill("4")
    page.get_by_label(ZH["settings.at_risk_weekday"]).select_option("3")
    page.get_by_role("button", name=ZH["settings.save"]).click()
    page.wait_for_url(f"{server.url}/settings/xinhua?saved=true")
    assert page.get_by_role("status").inner_text() == ZH["settings.saved"]
    after = _api(page, server, "xinhua")
    assert after["own"] == {
        **before["own"],
        "quota_min_patrol_ms": 3 * HOUR_MS + 30 * 60_000,
        "cadence_key_ms": 14 * DAY_MS,
        "quota_patrols": 4,
        "at_risk_weekday": 3,
    }
    assert after["effective"]["quota_min_patrol_ms"] == 12_600_000
    row = _row(page, "quota_min_patrol_ms")
    assert row.locator('[data-col="effective"]').inner_text() == "3 小时 30 分钟"
    assert row.locator('[data-col="source"]').inner_text() == ZH["settings.source_own"]
    assert page.get_by_label(ZH["settings.quota_min_patrol_ms"]).input_value() == "3.5"
    shoot(page, "settings-saved")
    page.set_viewport_size({"width": 768, "height": 1024})
    shoot(page, "settings-tablet")
    page.set_viewport_size({"width": 1280, "height": 800})

    # a grid below inherits, and says from where
    page.goto(f"{server.url}/settings/xinhua-g1")
    grid = _api(page, server, "xinhua-g1")
    assert grid["own"] == {} and grid["effective"]["cadence_key_ms"] == 14 * DAY_MS
    row = _row(page, "cadence_key_ms")
    assert row.locator('[data-col="effective"]').inner_text() == "14 天"
    assert row.locator('[data-col="source"]').inner_text() == ZH[
        "settings.source_inherited"
    ].format(unit="新华社区")
    assert page.get_by_label(ZH["settings.cadence_key_ms"]).input_value() == ""

    # emptied fields inherit again: back to the defaults for the other tests
    page.goto(f"{server.url}/settings/xinhua")
    for key in ("quota_min_patrol_ms", "cadence_key_ms", "quota_patrols"):
        page.get_by_label(ZH[f"settings.{key}"]).fill("")
    page.get_by_label(ZH["settings.at_risk_weekday"]).select_option("")
    page.get_by_role("button", name=ZH["settings.save"]).click()
    page.wait_for_url(f"{server.url}/settings/xinhua?saved=true")
    assert _api(page, server, "xinhua")["own"] == before["own"]


def test_invalid_values_are_shown_beside_their_field_and_nothing_is_saved(
    page: Any, server: Server, login: Callable[..., None], shoot: Callable[..., Any]
) -> None:
    login(page, "s-xinhua", path="/settings/xinhua-g2")
    before = _api(page, server, "xinhua-g2")
    page.get_by_label(ZH["settings.quota_patrols"]).fill("0")
    page.get_by_label(ZH["settings.grace_ms"]).fill("两天")
    page.get_by_label(ZH["settings.at_risk_time"]).fill("25:00")
    page.get_by_label(ZH["settings.silent_device_ms"]).fill("96")
    with page.expect_response(f"{server.url}/settings/xinhua-g2") as answer:
        page.get_by_role("button", name=ZH["settings.save"]).click()
    assert answer.value.status == 422
    assert page.get_by_role("alert").inner_text() == ZH["settings.invalid"].format(count=3)
    quota = page.get_by_label(ZH["settings.quota_patrols"])
    assert quota.get_attribute("aria-invalid") == "true"
    assert _row(page, "quota_patrols").locator(".field-error").inner_text() == ZH[
        "settings.err.range"
    ].format(low="1", high="10000", unit="次")
    assert _row(page, "grace_ms").locator(".field-error").inner_text() == ZH["settings.err.number"]
    assert (
        _row(page, "at_risk_time").locator(".field-error").inner_text() == ZH["settings.err.time"]
    )
    assert _row(page, "silent_device_ms").locator(".field-error").count() == 0
    assert page.get_by_label(ZH["settings.grace_ms"]).input_value() == "两天"  # kept as typed
    shoot(page, "settings-invalid")
    assert _api(page, server, "xinhua-g2") == before  # nothing saved, not even the valid field


def test_a_community_secretary_cannot_open_another_communitys_settings(
    page: Any, server: Server, login: Callable[..., None]
) -> None:
    login(page, "s-xinhua", path="/settings")
    token = page.locator('input[name="csrf"]').first.get_attribute("value")
    reply = page.goto(f"{server.url}/settings/qunzhong")
    assert reply is not None and reply.status == 404
    assert page.get_by_role("heading", level=1).inner_text() == ZH["error.404.title"]
    posted = page.request.post(
        f"{server.url}/settings/qunzhong", form={"csrf": token or "", "quota_patrols": "9"}
    )
    assert posted.status == 404
    for unit in ("qunzhong", "dongfeng"):
        assert page.request.get(f"{server.url}/v1/units/{unit}/settings").status == 404
