"""The benchmarks the performance issue's figures come from still run and still check what they
measure: ``bench/sync.py`` (push and pull against the raw driver, COPY beside them) and
``bench/live.py`` (push commit to waiting pull, push to alert event, idle CPU per waiting pull).
Tiny sizes, so the figures themselves mean nothing here and are not asserted; what is asserted is
what each run checks of the server (every push applied, every device's own records pulled once,
every change seen by its followers, no outside device woken, every probe's alert streamed) and
that its last line is the JSON the README's figures are read from."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PG_ADMIN

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]


def _bench(script: str, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, f"bench/{script}", "--pg-admin", PG_ADMIN, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    last: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return last


def test_the_sync_bench_runs_and_reports_its_ratios(postgres_url: str) -> None:
    figures = _bench(
        "sync.py",
        "--records", "2000", "--batch", "250", "--repeat", "1",
        "--db-name", f"patrolsync_bench_sync_{os.getpid()}",
    )  # fmt: skip
    assert figures["records"] == 2000
    assert figures["pulled_records"] == figures["records"] + figures["warmup_records"]
    for key in ("push_ratio", "pull_ratio", "copy_rps", "push_rps", "raw_push_rps"):
        assert figures[key] > 0, key


def test_the_live_bench_runs_and_sees_every_change_and_alert(
    postgres_url: str, redis_url: str
) -> None:
    figures = _bench(
        "live.py",
        "--quick", "--load-s", "3", "--idle-s", "1", "--alerts", "4", "--waiters", "30",
        "--redis", redis_url, "--db-name", f"patrolsync_bench_live_{os.getpid()}",
    )  # fmt: skip
    assert figures["visible_samples"] > 0
    assert figures["visible_missing"] == 0
    assert figures["woken_outside"] == 0
    assert figures["follower_errors"] == 0
    assert figures["alert_samples"] == 4
    assert figures["alert_missing"] == 0
    for key in ("visible_p50_ms", "visible_p99_ms", "alert_p50_ms", "alert_p99_ms"):
        assert figures[key] > 0, key
    assert figures["idle_cpu_per_wait_pct"] >= 0
