"""The demo, small, through its command: embedded SQLite and Redis, the server on a real port,
the worker, the simulated fleet; exit 0 and a last JSON line with no false and no missed alert.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest
from typer.testing import CliRunner

from client.scenario import SIMULATED_RULES
from patrolsync.cli import app
from rules.findings import RULES


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_quick_demo_exercises_every_rule_and_its_alerts_equal_the_truth(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app, ["demo", "--quick", "--no-serve", "--port", str(_free_port())], env={}
    )
    assert result.exit_code == 0, result.output
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert last["false_alerts"] == 0 and last["missed_alerts"] == 0
    assert last["checkins"] > 0 and last["notes"] > 0 and last["alerts"] > 0
    assert last["weeks"] == 4
    for key in ("duplicates_absorbed", "conflicts_merged"):
        assert key in last
    by_rule = last["by_rule"]
    assert set(by_rule) == set(RULES)
    for rule in SIMULATED_RULES:
        assert by_rule[rule]["raised"] > 0, rule
    for rule, figures in by_rule.items():
        assert figures["false"] == 0 and figures["missed"] == 0, rule
    assert by_rule["quota_missed"]["auto_resolved"] > 0  # late data made a miss false
    assert by_rule["quota_missed"]["resolved"] > 0  # a supervisor resolved one
    assert last["escalated"] > 0 and last["auto_resolved"] > 0
    assert (tmp_path / "patrolsync-demo.db").exists()
    # --no-serve says where the console is served, without printing a password
    said = " ".join(result.output.split())
    assert "served by patrolsync serve" in said
    assert "patrolsync set-password sup-sim" in said and "password:" not in said


class Login(NamedTuple):
    supervisor_id: str
    unit_name: str
    password: str


def _wait_for_logins(proc: subprocess.Popen[str], timeout_s: float) -> tuple[str, str, list[Login]]:
    """Read the demo's output until it serves: (the simulated week, the console's URL, the
    printed logins in order: the district's supervisor, then a community secretary)."""
    assert proc.stderr is not None
    week, url, logins, seen = "", "", [], []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        if found := re.search(r"^week (\S+) synced and judged", line):  # the last played
            week = found[1]
        if found := re.search(r"console\S*:\s+(http://\S+)/", line):
            url = found[1]
        if found := re.search(r"log in as (\S+) \(.*, (.+)\)\s+password: (\S+)", line):
            logins.append(Login(found[1], found[2], found[3]))
        if line.startswith("serving;"):
            return week, url, logins
    raise AssertionError("the demo did not start serving:\n" + "".join(seen[-40:]))


def _log_in(client: httpx.Client, supervisor_id: str, password: str) -> httpx.Response:
    form = client.get("/login")
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', form.text)
    assert token is not None, form.text[:500]
    return client.post(
        "/login", data={"csrf": token[1], "supervisor_id": supervisor_id, "password": password}
    )


@pytest.mark.timeout(240)
def test_the_printed_logins_open_the_console_of_the_running_demo(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATROLSYNC_")}
    port = _free_port()
    cmd = [sys.executable, "-m", "patrolsync.cli", "demo", "--quick", "--weeks", "1"]
    cmd += ["--port", str(port)]
    env |= {"PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    with subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        try:
            week, url, logins = _wait_for_logins(proc, timeout_s=200)
            assert url == f"http://127.0.0.1:{port}" and week
            district, secretary = logins
            assert district.password != secretary.password
            with httpx.Client(base_url=url, timeout=30) as client:
                assert (
                    _log_in(client, district.supervisor_id, "not-the-password").status_code == 401
                )
                assert _log_in(client, district.supervisor_id, district.password).status_code == 303
                overview = client.get("/")
                assert overview.status_code == 200
                assert district.unit_name in overview.text
                assert f'data-last-week="{week}"' in overview.text  # the simulated week
                patrols = re.findall(r'data-col="patrols">(\d+)<', overview.text)
                assert int(patrols[-1]) > 0  # the district's total, last week
                child = re.search(r'<a href="(/units/[^"]+)"', overview.text)
                assert child is not None  # a unit below the district, above the community
            with httpx.Client(base_url=url, timeout=30) as client:
                assert (
                    _log_in(client, secretary.supervisor_id, secretary.password).status_code == 303
                )
                own = client.get("/")
                assert own.status_code == 200 and secretary.unit_name in own.text
                assert district.unit_name not in own.text
                assert client.get(child[1]).status_code == 404  # outside the secretary's unit
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


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


def _state(db: Path) -> dict[str, Any]:
    """The demo database's content: check-ins (their start in ms, corrected by a skew measured
    over the network: compared within ``SKEW_SLACK_MS`` by :func:`_same_checkins`), notes,
    conflicts kept, alerts with status and level (a device's silence is named by the minute of
    its last contact, which the run's own pace decides: left out)."""
    with sqlite3.connect(db) as conn:
        checkins = conn.execute(
            "SELECT worker_id, grid_id, started_ms, duration_ms,"
            " amends IS NOT NULL FROM checkin ORDER BY 1, 3, 4, 5"
        ).fetchall()
        notes = conn.execute("SELECT id, household_id, fields FROM note ORDER BY 1").fetchall()
        conflicts = conn.execute(
            "SELECT note_id, field, reason, losing_value, losing_worker_id, winning_value"
            " FROM conflict ORDER BY 1, 2, 5"
        ).fetchall()
        alerts = conn.execute(
            "SELECT rule, subject_kind, subject_id,"
            " CASE rule WHEN 'device_silent' THEN '' ELSE period END, status, level"
            " FROM alert ORDER BY 1, 2, 3, 4, 5"
        ).fetchall()
    return {
        "checkins": checkins,
        "notes": [(n, h, json.loads(f)) for n, h, f in notes],
        "conflicts": conflicts,
        "alerts": alerts,
    }


SKEW_SLACK_MS = 5_000
"""How far two runs' corrected start of the same check-in may lie apart: a phone's skew is
measured from a round trip, so its correction varies by up to half the round trip of the run (a
loaded machine's can be hundreds of ms; rounded to the second, a start near a half second came
out 1 s apart). Check-ins of one worker and grid lie minutes apart at the least."""


def _same_checkins(a: list[Any], b: list[Any]) -> None:
    """The same check-ins in both runs: grouped by worker, grid, duration and whether it amends,
    each group's starts pairwise within the slack (a group's starts lie hours apart)."""

    def groups(rows: list[Any]) -> dict[tuple[Any, ...], list[int]]:
        found: dict[tuple[Any, ...], list[int]] = {}
        for worker, grid, started, duration, amends in rows:
            found.setdefault((worker, grid, duration, amends), []).append(started)
        return {key: sorted(starts) for key, starts in found.items()}

    ga, gb = groups(a), groups(b)
    assert ga.keys() == gb.keys()
    for key, starts in ga.items():
        assert len(starts) == len(gb[key]), key
        for x, y in zip(starts, gb[key], strict=True):
            assert abs(x - y) <= SKEW_SLACK_MS, (key, x, y)


def test_two_fault_seeds_end_in_the_same_state_over_weeks(tmp_path: Path) -> None:
    states = []
    for seed in (1, 2):
        where = tmp_path / f"seed-{seed}"
        where.mkdir()
        cmd = [sys.executable, "-m", "patrolsync.cli", "demo", "--quick", "--no-serve"]
        cmd += ["--weeks", "3", "--fault-seed", str(seed), "--port", str(_free_port())]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PATROLSYNC_")}
        done = subprocess.run(cmd, cwd=where, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        last = json.loads(done.stdout.strip().splitlines()[-1])
        assert last["replies_lost"] > 0  # the faults happened
        states.append((last, _state(where / "patrolsync-demo.db")))
    (_, a), (_, b) = states
    assert a["alerts"] and a["conflicts"] and any(c[4] for c in a["checkins"])
    _same_checkins(a["checkins"], b["checkins"])
    for part in ("notes", "conflicts", "alerts"):
        assert a[part] == b[part], part


def test_a_taken_port_is_refused_before_any_work(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cmd = [sys.executable, "-m", "patrolsync.cli", "demo", "--quick", "--port", str(port)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PATROLSYNC_")}
        done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 1
    said = " ".join((done.stdout + done.stderr).split())
    assert f"cannot listen on 127.0.0.1:{port}" in said and "pass --port N" in said
    assert "金台区" not in said and "Traceback" not in said  # nothing imported


def test_a_terminated_demo_leaves_no_embedded_redis_or_folder(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATROLSYNC_")}
    env |= {"TMPDIR": str(scratch), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "patrolsync.cli", "demo", "--quick", "--no-serve"]
    cmd += ["--port", str(_free_port())]
    with subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:  # the district imported: the embedded Redis is running
            if "patrolsync demo:" in line:
                break
        folders = list(scratch.glob("patrolsync-demo-*"))
        assert folders  # its working folder exists while it runs
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=60)[0]
    assert proc.returncode == 143, rest
    assert "stopped (terminated)" in rest
    assert not list(scratch.glob("patrolsync-demo-*"))
    running = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(folders[0]) not in running  # no redis-server of it left behind


def test_the_demo_refuses_zero_weeks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["demo", "--quick", "--no-serve", "--weeks", "0"], env={})
    assert result.exit_code == 2
