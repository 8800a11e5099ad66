"""Invitations in a real browser: a community's secretary creates a grid supervisor's account
with a one-time link; the invitee sets a password through it once, logs in and sees only their
grid; never for a unit outside the inviter's subtree nor for their own unit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from server.console.strings import ZH
from tests.browser.conftest import PASSWORD, Server

NEW_PASSWORD = "新网格长-密码-2026"


def _invite(page: Any, supervisor_id: str, name: str, unit: str) -> None:
    page.get_by_label(ZH["invite.id"]).fill(supervisor_id)
    page.get_by_label(ZH["invite.name"]).fill(name)
    page.get_by_label(ZH["invite.unit"]).select_option(unit)
    page.get_by_role("button", name=ZH["invite.submit"]).click()
    page.wait_for_load_state()


def test_an_invitation_link_sets_a_password_once_and_the_invitee_sees_only_their_grid(
    page: Any, server: Server, login: Callable[..., None], shoot: Callable[..., Any]
) -> None:
    login(page, "s-xinhua", path="/invitations")
    offered = (
        page.get_by_label(ZH["invite.unit"])
        .locator("option")
        .evaluate_all("options => options.map(o => o.value)")
    )
    assert offered == ["xinhua-g1", "xinhua-g2"]  # below the own unit only
    _invite(page, "s-xinhua-g1", "新华社区第一网格长李明", "xinhua-g1")
    assert page.get_by_role("status").inner_text().startswith("已为 新华社区第一网格长李明")
    link = page.locator("[data-invite-link]").inner_text().strip()
    assert link.startswith(f"{server.url}/invite/") and len(link) > len(server.url) + 40
    shoot(page, "invitation-created")
    _invite(page, "s-xinhua-g1", "重名", "xinhua-g2")  # the same id again
    assert page.get_by_role("alert").inner_text() == ZH["invite.err.exists"]
    page.get_by_role("button", name=ZH["session.logout"]).click()
    page.wait_for_url(f"{server.url}/login")

    page.goto(link)
    assert page.get_by_role("heading", level=1).inner_text() == ZH["invite.accept_heading"].format(
        name="新华社区第一网格长李明"
    )
    page.get_by_label(ZH["invite.password"], exact=True).fill(NEW_PASSWORD)
    page.get_by_label(ZH["invite.password2"]).fill(NEW_PASSWORD + "x")
    page.get_by_role("button", name=ZH["invite.accept_submit"]).click()
    assert page.get_by_role("alert").inner_text() == ZH["invite.err.mismatch"]
    page.get_by_label(ZH["invite.password"], exact=True).fill("short")
    page.get_by_label(ZH["invite.password2"]).fill("short")
    page.get_by_role("button", name=ZH["invite.accept_submit"]).click()
    assert page.get_by_role("alert").inner_text() == ZH["invite.err.short"]
    shoot(page, "invitation-accept")
    page.get_by_label(ZH["invite.password"], exact=True).fill(NEW_PASSWORD)
    page.get_by_label(ZH["invite.password2"]).fill(NEW_PASSWORD)
    page.get_by_role("button", name=ZH["invite.accept_submit"]).click()
    assert page.get_by_role("heading", level=1).inner_text() == ZH["invite.done_title"]
    shoot(page, "invitation-done")

    again = page.goto(link)  # used once: never again
    assert again is not None and again.status == 404
    assert page.get_by_role("heading", level=1).inner_text() == ZH["error.invite.title"]

    login(page, "s-xinhua-g1", NEW_PASSWORD)
    assert page.url == f"{server.url}/"
    assert "新华社区第一网格" in page.get_by_role("heading", level=1).inner_text()
    for unit in ("xinhua", "xinhua-g2", "qunzhong-g1"):
        reply = page.goto(f"{server.url}/units/{unit}")
        assert reply is not None and reply.status == 404, unit
    assert page.request.get(f"{server.url}/v1/compliance?unit=xinhua").status == 404
    page.goto(f"{server.url}/settings")
    listed = page.locator("table.settings-units tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.unit)"
    )
    assert listed == ["xinhua-g1"]


def test_no_invitation_for_a_unit_outside_the_subtree_or_the_own_unit(
    page: Any, server: Server, login: Callable[..., None]
) -> None:
    login(page, "s-xinhua", path="/invitations")
    token = page.locator('form[action="/invitations"] input[name="csrf"]').get_attribute("value")
    for unit, status in (("qunzhong-g1", 422), ("dongfeng", 422), ("xinhua", 422)):
        reply = page.request.post(
            f"{server.url}/invitations",
            form={"csrf": token or "", "id": f"s-new-{unit}", "name": "外单位", "unit": unit},
        )
        assert reply.status == status, unit
        assert ZH["invite.err.unit"] in reply.text()
    # none of them exists: the id is free for a unit that is allowed
    _invite(page, "s-new-qunzhong-g1", "新华社区第二网格长", "xinhua-g2")
    assert page.get_by_role("status").is_visible()
    without = page.request.post(
        f"{server.url}/invitations", form={"id": "s-x", "name": "x", "unit": "xinhua-g1"}
    )
    assert without.status == 403  # no CSRF token
    assert page.goto(f"{server.url}/invite/not-a-token").status == 404  # type: ignore[union-attr]


def test_a_password_cannot_be_set_without_the_invitation_pages_token(
    page: Any, server: Server, login: Callable[..., None]
) -> None:
    login(page, "s-xinhua", path="/invitations")
    _invite(page, "s-csrf-check", "校验用账号", "xinhua-g2")
    link = page.locator("[data-invite-link]").inner_text().strip()
    forged = page.request.post(link, form={"password": PASSWORD, "password2": PASSWORD})
    assert forged.status == 403
    page.goto(link)  # still unused
    assert page.get_by_role("heading", level=1).inner_text() == ZH["invite.accept_heading"].format(
        name="校验用账号"
    )
