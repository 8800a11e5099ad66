"""The command line never prints a password: configuration errors, migrate, sample, the worker's
start line."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from patrolsync.cli import app
from server.settings import Settings

SECRET = "s3cr3t-pw"


@pytest.fixture
def pg_with_password(postgres_url: str) -> tuple[str, str]:
    """The test database's URL with a password in it (a trusting server ignores it)."""
    url = make_url(postgres_url)
    if url.password is None:
        url = url.set(password=SECRET)
    return url.render_as_string(hide_password=False), str(url.password)


def test_a_configuration_error_masks_the_password() -> None:
    result = CliRunner().invoke(
        app, ["migrate"], env={"PATROLSYNC_DATABASE_URL": f"mysql://app:{SECRET}@db/x"}
    )
    assert result.exit_code == 2
    assert "PATROLSYNC_DATABASE_URL" in result.output
    assert "app:***@db" in result.output
    assert SECRET not in result.output


@pytest.mark.postgres
def test_migrate_and_sample_mask_the_password(pg_with_password: tuple[str, str]) -> None:
    url, password = pg_with_password
    env = {"PATROLSYNC_DATABASE_URL": url, "COLUMNS": "300"}
    migrated = CliRunner().invoke(app, ["migrate"], env=env)
    assert migrated.exit_code == 0, migrated.output
    assert "migrated postgresql+asyncpg://" in migrated.output
    assert password not in migrated.output
    sample = CliRunner().invoke(app, ["sample", "--no-serve"], env=env)
    assert sample.exit_code == 0, sample.output
    assert "sample district loaded into postgresql+asyncpg://" in sample.output
    assert sample.output.count(":***@") == 2  # migrate's line and the sample's
    assert password not in sample.output


def test_the_worker_start_line_masks_the_redis_password(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str
) -> None:
    from worker import main as worker_main

    started: list[Settings] = []

    async def run(settings: Settings, **_: Any) -> None:
        started.append(settings)

    monkeypatch.setattr(worker_main, "run", run)
    redis_url = f"redis://:{SECRET}@127.0.0.1:6379/0"
    env = {"PATROLSYNC_REDIS_URL": redis_url, "PATROLSYNC_DATABASE_URL": sqlite_url}
    result = CliRunner().invoke(app, ["worker"], env={**env, "COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert started and started[0].redis_url == redis_url
    assert "redis://:***@127.0.0.1:6379/0" in result.output
    assert SECRET not in result.output


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (
            ["worker"],
            {"PATROLSYNC_REDIS_URL": f"redis+sentinel://:{SECRET}@s1:26379"},
            "PATROLSYNC_REDIS_URL",
        ),
        (
            ["worker", "--check"],
            {"PATROLSYNC_REDIS_URL": f"sentinel://:{SECRET}@s1/m"},
            "PATROLSYNC_REDIS_URL",
        ),
        (["demo", "--redis", f"redis+sentinel://:{SECRET}@s1,/m"], {}, "--redis"),
        (["demo", "--postgres", f"mysql://app:{SECRET}@db/x"], {}, "--postgres"),
    ],
)
def test_a_bad_url_stops_the_command_in_one_masked_line(
    args: list[str], env: dict[str, str], named: str
) -> None:
    result = CliRunner().invoke(app, args, env={**env, "COLUMNS": "300"})
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"configuration error: {named}=")
    assert ":***@" in line
    assert SECRET not in result.output
