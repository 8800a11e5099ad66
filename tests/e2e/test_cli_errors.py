"""Operator errors on the command line: one line each (what is wrong, which setting, what to
do), no traceback, and the exit status of ``patrolsync.failures.Status``."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from patrolsync.cli import SAMPLE, app
from patrolsync.failures import Status
from server.migrate import upgrade
from server.settings import Settings

DB_VAR = "PATROLSYNC_DATABASE_URL"


def _one_line(result: Result) -> str:
    """The command's whole output: exactly one line, and it raised nothing but its exit."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    return lines[0]


def _sqlite(path: Path) -> dict[str, str]:
    return {DB_VAR: f"sqlite+aiosqlite:///{path}"}


def test_an_unreachable_postgresql() -> None:
    env = {DB_VAR: "postgresql+asyncpg://postgres@127.0.0.1:1/patrolsync"}
    for args in (["migrate"], ["enrol", "w-zhang"], ["sweep"]):
        result = CliRunner().invoke(app, args, env=env)
        assert result.exit_code == Status.UNREACHABLE, args
        line = _one_line(result)
        assert "cannot connect" in line and DB_VAR in line and "127.0.0.1:1" in line


def test_a_database_url_naming_a_database_that_does_not_exist(postgres_url: str) -> None:
    env = {DB_VAR: postgres_url.rsplit("/", 1)[0] + "/patrolsync_no_such_database"}
    result = CliRunner().invoke(app, ["migrate"], env=env)
    assert result.exit_code == Status.UNREACHABLE
    line = _one_line(result)
    assert "does not exist" in line and "createdb" in line and DB_VAR in line


def test_a_sqlite_file_in_a_missing_folder(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["migrate"], env=_sqlite(tmp_path / "nowhere" / "x.db"))
    assert result.exit_code == Status.UNREACHABLE
    line = _one_line(result)
    assert "folder" in line and "nowhere" in line and DB_VAR in line


@pytest.mark.parametrize(
    "args",
    [["serve"], ["worker"], ["worker", "--burst"], ["enrol", "w-zhang"], ["sweep"], ["prune"]],
)
def test_a_mistyped_sqlite_path_creates_no_database(tmp_path: Path, args: list[str]) -> None:
    typo = tmp_path / "patrolsnyc.db"
    result = CliRunner().invoke(app, args, env=_sqlite(typo))
    assert result.exit_code == Status.NOT_READY
    line = _one_line(result)
    assert "does not exist" in line and "patrolsync migrate" in line and DB_VAR in line
    assert not typo.exists()


def test_migrate_creates_the_sqlite_file_and_says_so(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["migrate"], env=_sqlite(tmp_path / "new.db"))
    assert result.exit_code == 0, result.output
    assert "creating the SQLite database" in result.output
    assert (tmp_path / "new.db").exists()


def test_a_never_migrated_database(tmp_path: Path) -> None:
    (tmp_path / "empty.db").touch()
    result = CliRunner().invoke(
        app, ["supervisor-token", "s-xinhua"], env=_sqlite(tmp_path / "empty.db")
    )
    assert result.exit_code == Status.NOT_READY
    line = _one_line(result)
    assert "never migrated" in line and "patrolsync migrate" in line


def test_serve_warns_about_a_database_not_migrated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    started: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *_args, **kw: started.append(kw))
    (tmp_path / "empty.db").touch()
    result = CliRunner().invoke(
        app, ["serve", "--port", "8123"], env=_sqlite(tmp_path / "empty.db")
    )
    assert result.exit_code == 0, result.output
    line = _one_line(result)
    assert line.startswith("warning:") and "never migrated" in line
    assert [kw["port"] for kw in started] == [8123]


def test_serve_on_a_taken_port_says_so_before_starting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    import uvicorn

    started: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *_args, **kw: started.append(kw))
    (tmp_path / "empty.db").touch()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            app,
            ["serve", "--host", "127.0.0.1", "--port", str(port)],
            env=_sqlite(tmp_path / "empty.db"),
        )
    assert result.exit_code == Status.CONFIG
    line = _one_line(result)
    assert f"cannot listen on 127.0.0.1:{port}" in line
    assert "PATROLSYNC_PORT" in line and "--port N" in line
    assert started == []


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PATROLSYNC_LOG_LEVEL", "verbose"),
        ("PATROLSYNC_PORT", "70000"),
        ("PATROLSYNC_DB_POOL_SIZE", "0"),
        ("PATROLSYNC_QUEUE_NAME", " "),
        ("PATROLSYNC_DATABASE_URL", "mysql://db/patrolsync"),
    ],
)
def test_a_bad_setting_is_refused_naming_the_variable(variable: str, value: str) -> None:
    result = CliRunner().invoke(app, ["migrate"], env={variable: value})
    assert result.exit_code == Status.CONFIG
    assert variable in _one_line(result)


def test_unknown_ids_exit_non_zero(tmp_path: Path) -> None:
    runner = CliRunner()
    env = _sqlite(tmp_path / "ids.db")
    assert runner.invoke(app, ["migrate"], env=env).exit_code == 0
    assert runner.invoke(app, ["import", str(SAMPLE)], env=env).exit_code == 0
    for args, said in [
        (["revoke-supervisor", "s-nobody"], "no supervisor 's-nobody'"),
        (["supervisor-token", "s-nobody"], "no supervisor 's-nobody'"),
        (["enrol", "w-nobody"], "no worker"),
        (["revoke", "d-nobody"], "no device 'd-nobody'"),
        (["grant-unit", "s-nobody", "xinhua"], "no supervisor 's-nobody'"),
        (["grant-unit", "s-xinhua", "u-nowhere"], "no unit 'u-nowhere'"),
        (["withdraw-unit", "s-xinhua", "qunzhong"], "was not granted"),
    ]:
        result = runner.invoke(app, args, env=env)
        assert result.exit_code == Status.REFUSED, args
        assert said in _one_line(result)
    refused = runner.invoke(
        app, ["set-password", "s-nobody", "--stdin"], env=env, input="Long-enough-pass1\n"
    )
    assert refused.exit_code == Status.REFUSED
    assert "no supervisor" in _one_line(refused)
    known = runner.invoke(app, ["revoke-supervisor", "s-xinhua"], env=env)
    assert known.exit_code == 0 and "revoked 0 token(s)" in known.output


def test_a_taken_worker_metrics_port_stops_the_worker_in_one_line(tmp_path: Path) -> None:
    env = _sqlite(tmp_path / "p.db")
    upgrade(Settings(database_url=env[DB_VAR]))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env |= {"PATROLSYNC_WORKER_METRICS_PORT": str(port), "PATROLSYNC_LOG_LEVEL": "WARNING"}
        result = CliRunner().invoke(app, ["worker"], env=env)
    assert result.exit_code == Status.CONFIG, result.output
    assert "Traceback" not in result.output
    (line,) = [x for x in result.output.splitlines() if x.startswith("error:")]
    assert f"127.0.0.1:{port}" in line and "PATROLSYNC_WORKER_METRICS_PORT" in line
