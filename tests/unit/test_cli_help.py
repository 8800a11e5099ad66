"""The command line's version and help: every command's help names the settings it reads,
with the defaults of ``server.settings.Settings``."""

from __future__ import annotations

from dataclasses import fields
from importlib.metadata import version

import pytest
from typer.core import TyperGroup
from typer.main import get_command
from typer.testing import CliRunner

from patrolsync import envhelp
from patrolsync.cli import app
from server.settings import Settings

_ROOT = get_command(app)
assert isinstance(_ROOT, TyperGroup)
COMMANDS = sorted(_ROOT.commands)


def test_version_is_the_package_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"patrolsync {version('patrolsync')}"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_help_lists_the_database_setting(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "PATROLSYNC_DATABASE_URL=sqlite+aiosqlite:///patrolsync.db" in result.stdout


def test_the_server_and_worker_help_list_their_settings_with_defaults() -> None:
    runner = CliRunner()
    serve = runner.invoke(app, ["serve", "--help"], env={"COLUMNS": "200"}).stdout
    worker = runner.invoke(app, ["worker", "--help"], env={"COLUMNS": "200"}).stdout
    assert "PATROLSYNC_PORT=8000" in serve and "PATROLSYNC_LOG_JSON=false" in serve
    assert "PATROLSYNC_REDIS_URL" not in serve  # the HTTP server never reads it
    assert "PATROLSYNC_REDIS_URL=redis://127.0.0.1:6379/0" in worker
    assert "PATROLSYNC_SWEEP_MINUTES=5" in worker
    assert "PATROLSYNC_WORKER_METRICS_PORT=0" in worker
    listed = set(envhelp.SERVER) | set(envhelp.WORKER)
    assert listed == {f.name for f in fields(Settings)}  # a new setting is listed somewhere


def test_names_in_the_lists_are_settings() -> None:
    known = {f.name for f in fields(Settings)}
    groups = (envhelp.DATABASE, envhelp.LOGS, envhelp.REDIS, envhelp.WORKER_ONLY, envhelp.WORKER)
    for group in groups:
        assert set(group) <= known, set(group) - known
