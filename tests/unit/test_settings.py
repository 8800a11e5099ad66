"""Settings from the environment, and the ones a server process applies at start."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from server.app import create_app
from server.settings import Settings, SettingsError, load


def test_gc_threshold_from_the_environment() -> None:
    assert load({}).gc_threshold == 50_000
    assert load({"PATROLSYNC_GC_THRESHOLD": "1234"}).gc_threshold == 1234
    with pytest.raises(SettingsError, match="PATROLSYNC_GC_THRESHOLD"):
        load({"PATROLSYNC_GC_THRESHOLD": "0"})


async def test_server_start_sets_the_gc_threshold(tmp_path: Path) -> None:
    saved = gc.get_threshold()
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'gc.db'}", gc_threshold=4321)
    try:
        async with AsyncTestClient(create_app(settings)):
            assert gc.get_threshold() == (4321, *saved[1:])
    finally:
        gc.set_threshold(*saved)
        gc.unfreeze()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PATROLSYNC_LOG_LEVEL", "verbose"),
        ("PATROLSYNC_LOG_LEVEL", ""),
        ("PATROLSYNC_PORT", "0"),
        ("PATROLSYNC_PORT", "65536"),
        ("PATROLSYNC_HOST", ""),
        ("PATROLSYNC_QUEUE_NAME", "  "),
        ("PATROLSYNC_MAX_PUSH_BYTES", "0"),
        ("PATROLSYNC_DB_POOL_SIZE", "0"),
        ("PATROLSYNC_RELAY_RETRY_S", "0"),
        ("PATROLSYNC_HLC_MAX_AHEAD_MS", "0"),
        ("PATROLSYNC_WORKER_METRICS_PORT", "65536"),
        ("PATROLSYNC_WORKER_METRICS_PORT", "-1"),
        ("PATROLSYNC_WORKER_METRICS_PORT", "nine"),
        ("PATROLSYNC_WORKER_METRICS_HOST", " "),
    ],
)
def test_a_value_no_process_can_use_is_refused_by_name(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        load({variable: value})


def test_log_levels_in_any_letter_case() -> None:
    assert load({"PATROLSYNC_LOG_LEVEL": "warning"}).log_level == "warning"
    assert load({"PATROLSYNC_PORT": "65535"}).port == 65535


def test_the_worker_serves_no_metrics_unless_a_port_is_set() -> None:
    assert load({}).worker_metrics_port == 0
    assert load({"PATROLSYNC_WORKER_METRICS_PORT": "9100"}).worker_metrics_port == 9100
