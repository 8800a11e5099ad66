"""The command line on a fresh SQLite file: migrate, import, enrol, prune; clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from patrolsync.cli import SAMPLE, app


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"PATROLSYNC_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"}


def test_migrate_import_enrol_prune(env: dict[str, str]) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["migrate"], env=env).exit_code == 0
    imported = runner.invoke(app, ["import", str(SAMPLE)], env=env)
    assert imported.exit_code == 0, imported.output
    assert "7 households" in imported.output
    code = runner.invoke(app, ["enrol", "w-zhang"], env=env)
    assert code.exit_code == 0
    assert len(code.stdout.strip()) == 19  # XXXX-XXXX-XXXX-XXXX
    unknown = runner.invoke(app, ["enrol", "w-nobody"], env=env)
    assert unknown.exit_code == 1
    assert "no worker" in unknown.output
    token = runner.invoke(app, ["supervisor-token", "s-xinhua"], env=env)
    assert token.exit_code == 0 and len(token.stdout.strip()) > 30
    revoked = runner.invoke(app, ["revoke-supervisor", "s-xinhua"], env=env)
    assert revoked.exit_code == 0 and "revoked 1 token(s)" in revoked.output
    granted = runner.invoke(app, ["grant-unit", "s-xinhua", "qunzhong"], env=env)
    assert granted.exit_code == 0 and "granted qunzhong to s-xinhua" in granted.output
    again = runner.invoke(app, ["grant-unit", "s-xinhua", "qunzhong"], env=env)
    assert again.exit_code == 0 and "already supervises qunzhong" in again.output
    withdrawn = runner.invoke(app, ["withdraw-unit", "s-xinhua", "qunzhong"], env=env)
    assert withdrawn.exit_code == 0 and "withdrew qunzhong" in withdrawn.output
    own = runner.invoke(app, ["withdraw-unit", "s-xinhua", "xinhua"], env=env)
    assert own.exit_code == 1 and "own unit" in own.output
    pruned = runner.invoke(app, ["prune", "--keep-days", "0"], env=env)
    assert pruned.exit_code == 0 and "pruned 0" in pruned.output


def test_bad_import_file_and_bad_setting(env: dict[str, str], tmp_path: Path) -> None:
    runner = CliRunner()
    runner.invoke(app, ["migrate"], env=env)
    bad = tmp_path / "bad.yaml"
    bad.write_text("workers:\n  - {id: w-x, name: X, grids: [g-none]}\n", encoding="utf-8")
    result = runner.invoke(app, ["import", str(bad)], env=env)
    assert result.exit_code == 1
    assert "unknown grids: g-none" in result.output
    typo = tmp_path / "typo.yaml"
    typo.write_text("units:\n  - {id: d, kind: planet, name: X}\n", encoding="utf-8")
    result = runner.invoke(app, ["import", str(typo)], env=env)
    assert result.exit_code == 1 and "kind" in result.output
    wrong = runner.invoke(app, ["migrate"], env={"PATROLSYNC_MAX_PUSH_ITEMS": "many"})
    assert wrong.exit_code == 2
    assert "PATROLSYNC_MAX_PUSH_ITEMS" in wrong.output


def test_worker_burst_sweep_and_health_check(env: dict[str, str], redis_url: str) -> None:
    runner = CliRunner()
    env = {**env, "PATROLSYNC_REDIS_URL": redis_url, "PATROLSYNC_QUEUE_NAME": f"cli:{id(env)}"}
    runner.invoke(app, ["migrate"], env=env)
    runner.invoke(app, ["import", str(SAMPLE)], env=env)
    swept = runner.invoke(app, ["sweep"], env=env)
    assert swept.exit_code == 0, swept.output
    assert "alert events: quota" in swept.output
    burst = runner.invoke(app, ["worker", "--burst"], env=env)
    assert burst.exit_code == 0, burst.output
    assert "relayed 0 evaluation requests" in burst.output
    # No worker runs for this queue: the health check fails.
    assert runner.invoke(app, ["worker", "--check"], env=env).exit_code == 1
    down = {**env, "PATROLSYNC_REDIS_URL": "redis://127.0.0.1:1/0"}
    failed = runner.invoke(app, ["worker", "--burst"], env=down)
    assert failed.exit_code == 3, failed.output
    assert "PATROLSYNC_REDIS_URL" in failed.output and "wait in the outbox" in failed.output


def test_import_a_households_csv_saved_by_excel_on_a_chinese_windows(
    env: dict[str, str], tmp_path: Path
) -> None:
    runner = CliRunner()
    runner.invoke(app, ["migrate"], env=env)
    assert runner.invoke(app, ["import", str(SAMPLE)], env=env).exit_code == 0
    sheet = tmp_path / "住户.csv"
    rows = ["户编号,网格,地址,户主,标签,关爱等级"]
    rows += [
        f"h-x{i},xinhua-g1,新华小区{i}号楼1单元101室,李{i},独居；高龄,高风险" for i in range(12)
    ]
    sheet.write_bytes("\r\n".join(rows).encode("gbk"))
    result = runner.invoke(app, ["import", str(sheet), "--batch", "5"], env=env)
    assert result.exit_code == 0, result.output
    assert "12 households" in result.output
    wrong = runner.invoke(app, ["import", str(sheet), "--encoding", "utf-8"], env=env)
    assert wrong.exit_code == 1 and "not utf-8 at byte" in wrong.output
    assert "Traceback" not in wrong.output
