"""Browser tests: the real server (``patrolsync serve``, uvicorn) in a process of its own, on a
PostgreSQL database of these tests' own, seeded with the sample district and two weeks of
check-ins pushed by enrolled devices and judged by the quota worker; Debian's Chromium driven
by Playwright (never a downloaded browser).

Fixtures for a page test:

* ``server`` — the running server (``server.url``, ``server.settings``).
* ``page`` — a fresh browser context and page (1280×800); every request not to the server is
  blocked, and the test fails if the page asked for anything outside or raised a script error.
* ``login(page, supervisor_id)`` — log the page in through the form (``PASSWORD`` is every
  seeded supervisor's password).
* ``shoot(page, name)`` — save ``.artifacts/screenshots/<name>.png``.

Under CI=true a missing Chromium or Playwright is a failure, never a skip.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from rules.periods import week_of
from server import accounts
from server.clock import wall_ms
from server.db import make_engine
from server.limits import PushLimits
from server.migrate import upgrade
from server.settings import Settings
from server.state import Services
from server.store import units
from server.tx import transaction
from tests.conftest import IN_CI, REDIS_URL, empty_pg_database, reset
from tests.integration.worker_support import patrol
from tests.support import HOUR, Fleet
from worker import main as worker_main

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / ".artifacts" / "screenshots"
PASSWORD = "巡查-correct-horse-42"
TZ = "Asia/Shanghai"
LOCKED = "s-locked"
"""A supervisor only the rate-limit test logs in as (its failures lock nobody else out)."""
ACCOUNT_LIMIT = 3
"""Failed log-ins per supervisor id the server is started with."""
PLAN: dict[str, tuple[str, int, int]] = {
    # worker: (grid, patrols last week, patrols this week so far)
    "w-zhang": ("xinhua-g1", 3, 2),
    "w-wang": ("xinhua-g2", 2, 1),
    "w-li": ("qunzhong-g1", 4, 1),
    "w-liu": ("qunzhong-g2", 1, 0),
}


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"browser tests need Chromium and Playwright in CI: {reason}")
    pytest.skip(f"browser tests skipped: {reason}")


@dataclass(frozen=True)
class Server:
    url: str
    settings: Settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _in_thread(work: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a coroutine to completion on a thread of its own (Playwright's sync API keeps an
    event loop running on the tests' thread)."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: asyncio.run(work())).result()


async def _seed(settings: Settings, url: str) -> None:
    """Passwords, devices and two weeks of patrols (pushed over HTTP), judged by the worker."""
    await reset(settings)
    engine = make_engine(settings)
    try:
        hashed = await accounts.hash_for(PASSWORD)

        async def people(conn: Any) -> None:
            await units.upsert_supervisors(
                conn, [{"id": LOCKED, "name": "测试锁定账号", "unit_id": "xinhua"}]
            )
            for sid in ("s-xinhua", "s-qunzhong", "s-dongfeng", LOCKED):
                await accounts.set_password(conn, sid, hashed, wall_ms())

        await transaction(engine, people)
        services = Services(settings, engine, PushLimits(8, 8, 1), wall_ms)
        now = wall_ms()
        this = week_of(now, TZ)
        last = week_of(this.start_ms - 1, TZ)
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            fleet = Fleet(client, services)
            for worker, (grid, before, during) in PLAN.items():
                device = await fleet.device(worker)
                items = [
                    patrol(grid, last.start_ms + (1 + d) * 24 * HOUR, 4.5) for d in range(before)
                ]
                for d in range(during):
                    start = this.start_ms + d * 6 * HOUR + HOUR
                    if start + 5 * HOUR < now:  # only patrols already over
                        items.append(patrol(grid, start, 4.5))
                await device.push(items)
        await worker_main.burst(settings, engine, wall_ms)
    finally:
        await engine.dispose()


@contextmanager
def serving(db: str, workers: int = 1) -> Iterator[str]:
    """``patrolsync serve --workers N`` on database ``db`` (migrated); yields its URL once
    ready, stops it after."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PATROLSYNC_DATABASE_URL": db,
        "PATROLSYNC_LOG_LEVEL": "WARNING",
        "PATROLSYNC_LOGIN_FAILURES_PER_ACCOUNT": str(ACCOUNT_LIMIT),
        "PATROLSYNC_LOGIN_FAILURES_PER_CLIENT": "1000",
    }
    command = [str(Path(sys.executable).with_name("patrolsync")), "serve", "--port", str(port)]
    command += ["--workers", str(workers)]
    proc = subprocess.Popen(command, env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/readyz", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    with empty_pg_database(f"patrolsync_browser_{os.getpid()}") as db:
        yield from _serve_seeded(db)


def _serve_seeded(db: str) -> Iterator[Server]:
    settings = Settings(
        database_url=db,
        log_level="WARNING",
        redis_url=REDIS_URL,
        queue_name=f"patrolsync:test:{uuid.uuid4().hex}",
    )
    with ThreadPoolExecutor(1) as pool:  # alembic runs its own event loop
        pool.submit(upgrade, settings).result()
    with serving(db) as url:
        _in_thread(lambda: _seed(settings, url))
        yield Server(url, settings)


@pytest.fixture(scope="module")
def browser(server: Server) -> Iterator[Any]:
    """Chromium, for one test module: Playwright's sync API keeps an event loop running on the
    tests' thread while it lives, which the other folders' fixtures (``asyncio.run``) cannot
    share, so it must not outlive the browser tests."""
    if not os.path.exists(CHROMIUM):
        _unavailable(f"{CHROMIUM} is missing (apt-get install -y chromium fonts-noto-cjk)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _unavailable(f"playwright is not installed: {exc}")
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    outside: list[str] = []
    errors: list[str] = []

    def gate(route: Any) -> None:
        target = route.request.url
        if target == server.url or target.startswith(server.url + "/"):
            route.continue_()
        else:
            outside.append(target)
            route.abort()

    context.route("**/*", gate)
    opened = context.new_page()
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    opened.set_default_timeout(10_000)
    try:
        yield opened
    finally:
        context.close()
    assert outside == [], f"the page asked for something outside the server: {outside}"
    assert errors == [], f"script errors on the page: {errors}"


@pytest.fixture
def login(server: Server) -> Callable[..., None]:
    def log_in(page: Any, supervisor_id: str, password: str = PASSWORD, path: str = "/") -> None:
        page.goto(f"{server.url}/login?next={path}")
        page.get_by_label("督导账号").fill(supervisor_id)
        page.get_by_label("密码").fill(password)
        page.get_by_role("button", name="登录").click()
        page.wait_for_load_state()

    return log_in


@pytest.fixture
def shoot() -> Callable[[Any, str], Path]:
    def screenshot(page: Any, name: str) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return screenshot
