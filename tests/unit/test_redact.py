"""No secret in what is printed or logged: URLs masked, settings' repr, tracebacks, SQL errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
import structlog

from server import logs
from server.db import make_engine
from server.redact import mask_path, mask_url
from server.settings import Settings, SettingsError, load

SECRET = "s3cr3t-pw"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (
            f"postgresql+asyncpg://app:{SECRET}@db.local:5432/patrol",
            "postgresql+asyncpg://app:***@db.local:5432/patrol",
        ),
        (f"redis://:{SECRET}@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        (f"rediss://user:{SECRET}@127.0.0.1:6380", "rediss://user:***@127.0.0.1:6380"),
        (f"postgresql://app:{SECRET}@x/y@db/patrol", "postgresql://app:***@db/patrol"),
        (f"postgresql://app:a/{SECRET}@db/patrol", "postgresql://app:***@db/patrol"),
        (f"app:{SECRET}@db", "app:***@db"),
        (
            f"redis+sentinel://:{SECRET}@s1:26379,s2:26379/patrolsync/0",
            "redis+sentinel://:***@s1:26379,s2:26379/patrolsync/0",
        ),
        (
            f"postgresql+asyncpg://app@db/patrol?ssl=true&password={SECRET}",
            "postgresql+asyncpg://app@db/patrol?ssl=true&password=***",
        ),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("postgresql+asyncpg://app@db/patrol", "postgresql+asyncpg://app@db/patrol"),
        ("sqlite+aiosqlite:///patrolsync.db", "sqlite+aiosqlite:///patrolsync.db"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked
    assert SECRET not in mask_url(url)


def test_a_configuration_error_does_not_show_the_password() -> None:
    with pytest.raises(SettingsError) as caught:
        load({"PATROLSYNC_DATABASE_URL": f"mysql://app:{SECRET}@db/patrol"})
    assert "PATROLSYNC_DATABASE_URL" in str(caught.value)
    assert "mysql://app:***@db/patrol" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_settings_repr_holds_no_url() -> None:
    settings = Settings(
        database_url=f"postgresql+asyncpg://app:{SECRET}@db/patrol",
        redis_url=f"redis://:{SECRET}@127.0.0.1:6379/0",
    )
    assert SECRET not in repr(settings)


def test_a_logged_traceback_shows_no_local_variables(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("INFO", as_json=False)
    log = structlog.get_logger("patrolsync.test")

    def failing(authorization: str) -> None:
        token = authorization.removeprefix("Bearer ")
        raise RuntimeError(f"boom ({len(token)} characters)")

    try:
        failing(f"Bearer {SECRET}")
    except RuntimeError:
        log.exception("unhandled error")
    finally:
        logs.flush()  # lines are written by the logging thread
        structlog.reset_defaults()
    out = capsys.readouterr().out
    assert "RuntimeError: boom" in out and "Traceback" in out
    assert SECRET not in out


async def test_a_failed_statement_does_not_show_its_parameters(tmp_path: Path) -> None:
    engine = make_engine(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'p.db'}"))
    try:
        async with engine.connect() as conn:
            with pytest.raises(sa.exc.DBAPIError) as caught:
                await conn.execute(
                    sa.text("SELECT * FROM no_such_table WHERE x = :x"), {"x": SECRET}
                )
    finally:
        await engine.dispose()
    assert "no_such_table" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_an_unreadable_database_url_is_a_configuration_error_without_the_password() -> None:
    with pytest.raises(SettingsError) as caught:
        load({"PATROLSYNC_DATABASE_URL": f"postgresql+asyncpg://app:{SECRET}@db:port/patrol"})
    assert "PATROLSYNC_DATABASE_URL" in str(caught.value) and "app:***@db" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_an_invitation_links_token_is_masked_in_a_logged_path() -> None:
    assert mask_path("/invite/WWjySjncz1vwsLAsiAEV0OmUGDaUwT6in6UpVDJA2LA") == "/invite/***"
    assert mask_path("/invitations") == "/invitations"
    assert mask_path("/settings/xinhua") == "/settings/xinhua"
