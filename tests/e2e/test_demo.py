"""The demo, small, through its command: embedded SQLite and Redis, the server on a real port,
the worker, the simulated fleet; exit 0 and a last JSON line with no false and no missed alert.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from patrolsync.cli import app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_quick_demo_alerts_equal_the_truth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app, ["demo", "--quick", "--no-serve", "--port", str(_free_port())], env={}
    )
    assert result.exit_code == 0, result.output
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert last["false_alerts"] == 0 and last["missed_alerts"] == 0
    assert last["checkins"] > 0 and last["notes"] > 0 and last["alerts"] > 0
    for key in ("duplicates_absorbed", "conflicts_merged"):
        assert key in last
    assert (tmp_path / "patrolsync-demo.db").exists()


def test_quick_demo_over_two_weeks_judges_both_and_escalates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app,
        ["demo", "--quick", "--no-serve", "--weeks", "2", "--port", str(_free_port())],
        env={},
    )
    assert result.exit_code == 0, result.output
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert last["weeks"] == 2
    assert last["false_alerts"] == 0 and last["missed_alerts"] == 0
    # The first week's misses stay open a week on the simulated clock: up the ladder.
    assert last["escalated"] > 0


def test_the_demo_refuses_zero_weeks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["demo", "--quick", "--no-serve", "--weeks", "0"], env={})
    assert result.exit_code == 2
