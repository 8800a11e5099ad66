"""Sessions and CSRF tokens live in the database, not in a process: a session opened by one
server process is served, and its CSRF token accepted, by other processes (a server restarted
with ``serve --workers 2`` on the same database)."""

from __future__ import annotations

import re

import httpx

from tests.browser.conftest import PASSWORD, Server, serving

TOKEN = re.compile(r'name="csrf" value="([0-9a-f]+)"')


def test_a_session_and_its_token_outlive_the_process_that_made_them(server: Server) -> None:
    db = server.settings.database_url
    with serving(db) as first, httpx.Client(base_url=first, timeout=10) as client:
        token = TOKEN.search(client.get("/login").text)
        assert token is not None
        reply = client.post(
            "/login",
            data={"csrf": token[1], "supervisor_id": "s-qunzhong", "password": PASSWORD},
        )
        assert reply.status_code == 303, reply.text
        page = client.get("/units/qunzhong")
        assert page.status_code == 200
        csrf = TOKEN.search(page.text)
        assert csrf is not None
        cookies = dict(client.cookies)
    with serving(db, workers=2) as other:
        for _ in range(8):  # fresh connections: either of the two new processes answers
            with httpx.Client(base_url=other, cookies=cookies, timeout=10) as fresh:
                assert fresh.get("/units/qunzhong").status_code == 200
                assert fresh.get("/v1/compliance").status_code == 200
        with httpx.Client(base_url=other, cookies=cookies, timeout=10) as fresh:
            assert fresh.post("/logout", data={"csrf": csrf[1]}).status_code == 303
        with httpx.Client(base_url=other, cookies=cookies, timeout=10) as fresh:
            assert fresh.get("/").status_code == 303
            assert fresh.get("/v1/compliance").status_code == 401
