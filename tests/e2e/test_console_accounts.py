"""Console accounts through the app (httpx, no browser): session expiry, the per-client login
limit, the cookie's Secure flag, a password change ending sessions, ``set-password``."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from patrolsync.cli import SAMPLE, app
from server import accounts, sessions
from server.db import make_engine
from server.settings import Settings
from server.store import console as console_store
from server.tx import read, transaction
from tests.conftest import running
from tests.support import Clock, Fleet

PASSWORD = "a-long-enough-password"
T0 = 1_800_000_000_000


async def _set(fleet: Fleet, supervisor_id: str, password: str = PASSWORD) -> None:
    hashed = await accounts.hash_for(password)
    await transaction(
        fleet.services.engine,
        lambda c: accounts.set_password(c, supervisor_id, hashed, fleet.services.clock()),
    )


async def _login(
    client: httpx.AsyncClient, supervisor_id: str, password: str = PASSWORD
) -> httpx.Response:
    form = await client.get("/login")
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', form.text)
    assert token is not None
    return await client.post(
        "/login",
        data={"csrf": token[1], "supervisor_id": supervisor_id, "password": password},
    )


async def test_a_session_ends_when_idle_and_at_its_absolute_expiry(settings: Settings) -> None:
    limits = settings.with_(session_idle_s=600, session_max_s=3600)
    async with running(limits) as fleet:
        clock = fleet.services.clock = Clock(T0)
        await _set(fleet, "s-xinhua")
        assert (await _login(fleet.client, "s-xinhua")).status_code == 303
        assert (await fleet.client.get("/")).status_code == 200
        clock.advance(599_000)
        assert (await fleet.client.get("/")).status_code == 200  # use moves the idle expiry
        clock.advance(599_000)
        assert (await fleet.client.get("/")).status_code == 200
        clock.advance(601_000)
        idle = await fleet.client.get("/units/xinhua")
        assert idle.status_code == 303
        assert idle.headers["location"] == "/login?next=/units/xinhua"

        assert (await _login(fleet.client, "s-xinhua")).status_code == 303
        for _ in range(6):  # used every 9 minutes: never idle, yet over after an hour
            clock.advance(540_000)
            assert (await fleet.client.get("/")).status_code == 200
        clock.advance(540_000)  # 63 minutes after the log-in
        assert (await fleet.client.get("/")).status_code == 303
        assert (await fleet.client.get("/v1/compliance")).status_code == 401


async def test_failed_logins_are_limited_per_client_address(settings: Settings) -> None:
    limits = settings.with_(login_failures_per_client=3, login_failures_per_account=100)
    async with running(limits) as fleet:
        await _set(fleet, "s-xinhua")
        for who in ("s-xinhua", "s-qunzhong", "nobody"):
            wrong = await _login(fleet.client, who, "wrong-password")
            assert wrong.status_code == 401
            assert "账号或密码不正确" in wrong.text
        locked = await _login(fleet.client, "s-xinhua")
        assert locked.status_code == 429
        assert int(locked.headers["retry-after"]) > 0
        assert "尝试次数过多" in locked.text
        assert locked.headers["content-type"].startswith("text/html")


async def test_the_cookie_is_secure_over_https_or_when_set(settings: Settings) -> None:
    async with running(settings.with_(cookie_secure=True)) as fleet:
        await _set(fleet, "s-xinhua")
        form = await fleet.client.get("/login")  # plain HTTP behind a TLS proxy
        assert "Secure" in form.headers["set-cookie"]
        fleet.client.base_url = httpx.URL("https://testserver")
        reply = await _login(fleet.client, "s-xinhua")
        cookie = reply.headers["set-cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    async with running(settings) as fleet:
        await _set(fleet, "s-xinhua")
        fleet.client.base_url = httpx.URL("https://testserver")
        reply = await _login(fleet.client, "s-xinhua")
        assert "Secure" in reply.headers["set-cookie"]
        fleet.client.base_url = httpx.URL("http://testserver")
        fleet.client.cookies.clear()
        plain = await _login(fleet.client, "s-xinhua")
        assert "Secure" not in plain.headers["set-cookie"]


async def test_a_new_password_ends_the_sessions_and_the_old_one_fails(fleet: Fleet) -> None:
    await _set(fleet, "s-xinhua")
    assert (await _login(fleet.client, "s-xinhua")).status_code == 303
    cookie = fleet.client.cookies.get(sessions.COOKIE)
    assert cookie
    stored = await read(fleet.services.engine, lambda c: console_store.get_session(c, cookie))
    assert stored is None  # only the id's hash is a key
    await _set(fleet, "s-xinhua", "another-long-password")
    assert (await fleet.client.get("/")).status_code == 303
    assert (await _login(fleet.client, "s-xinhua")).status_code == 401
    assert (await _login(fleet.client, "s-xinhua", "another-long-password")).status_code == 303


async def test_a_supervisor_without_a_password_cannot_log_in(fleet: Fleet) -> None:
    assert (await _login(fleet.client, "s-qunzhong", "")).status_code == 401
    assert (await _login(fleet.client, "s-qunzhong", PASSWORD)).status_code == 401


def test_set_password_reads_stdin_and_never_prints_it(tmp_path: Path) -> None:
    env = {"PATROLSYNC_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'p.db'}"}
    runner = CliRunner()
    assert runner.invoke(app, ["migrate"], env=env).exit_code == 0
    assert runner.invoke(app, ["import", str(SAMPLE)], env=env).exit_code == 0
    short = runner.invoke(app, ["set-password", "s-xinhua", "--stdin"], input="short\n", env=env)
    assert short.exit_code == 1 and "at least" in short.output
    unknown = runner.invoke(app, ["set-password", "nobody", "--stdin"], input=PASSWORD, env=env)
    assert unknown.exit_code == 1 and PASSWORD not in unknown.output
    done = runner.invoke(
        app, ["set-password", "s-xinhua", "--stdin"], input=PASSWORD + "\n", env=env
    )
    assert done.exit_code == 0, done.output
    assert PASSWORD not in done.output
    prompted = runner.invoke(
        app, ["set-password", "s-qunzhong"], input=f"{PASSWORD}\n{PASSWORD}\n", env=env
    )
    assert prompted.exit_code == 0, prompted.output
    assert PASSWORD not in prompted.output

    async def stored() -> list[str | None]:
        engine = make_engine(Settings(database_url=env["PATROLSYNC_DATABASE_URL"]))
        try:
            return [
                await read(engine, lambda c, s=s: console_store.password_hash(c, s))
                for s in ("s-xinhua", "s-qunzhong", "s-dongfeng")
            ]
        finally:
            await engine.dispose()

    xinhua, qunzhong, dongfeng = asyncio.run(stored())
    assert xinhua and xinhua.startswith("$argon2id$") and sessions.verify(xinhua, PASSWORD)
    assert qunzhong and sessions.verify(qunzhong, PASSWORD)
    assert dongfeng is None
    assert not sessions.verify(xinhua, PASSWORD + "x")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, "/"),
        ("", "/"),
        ("/units/xinhua", "/units/xinhua"),
        ("/units/x?week=2026-W48", "/units/x?week=2026-W48"),
        ("//example.com/", "/"),
        ("https://example.com/", "/"),
        ("/\\example.com", "/"),
        ("units/x", "/"),
        ("/x\r\nSet-Cookie: a=b", "/"),
        ("javascript:alert(1)", "/"),
    ],
)
def test_next_is_a_same_site_relative_path(raw: str | None, expected: str) -> None:
    from server.console.web import safe_next

    assert safe_next(raw) == expected


async def test_a_log_in_ends_the_browsers_previous_session_and_prunes_expired_ones(
    settings: Settings,
) -> None:
    async with running(settings.with_(session_idle_s=600)) as fleet:
        clock = fleet.services.clock = Clock(T0)
        await _set(fleet, "s-xinhua")
        other = httpx.AsyncClient(transport=fleet.client._transport, base_url="http://testserver")
        async with other:
            assert (await _login(other, "s-xinhua")).status_code == 303  # another browser
            assert (await _login(fleet.client, "s-xinhua")).status_code == 303
            first = fleet.client.cookies.get(sessions.COOKIE)
            assert (await _login(fleet.client, "s-xinhua")).status_code == 303
            second = fleet.client.cookies.get(sessions.COOKIE)
            assert first and second and first != second
            fleet.client.cookies.set(sessions.COOKIE, first)
            assert (await fleet.client.get("/")).status_code == 303  # the old id is over
            clock.advance(601_000)  # the other browser's session is past its idle expiry
            assert (await _login(fleet.client, "s-xinhua")).status_code == 303

            async def count(c: Any) -> int:
                return int(
                    (await c.execute(sa.text("SELECT count(*) FROM console_session"))).scalar_one()
                )

            assert await read(fleet.services.engine, count) == 1
