"""``patrolsync serve --workers 2``: the two processes' metrics are summed (prometheus-client's
multiprocess mode), so every scrape of ``/metrics``, whichever process answers it, shows the
requests both served, and the totals never jump between scrapes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from server import serving
from server.migrate import upgrade
from server.settings import Settings
from tests.support import free_port

PATROLSYNC = [sys.executable, "-m", "patrolsync.cli"]
HEALTHZ = "/healthz"
BATCH = 20
MAX_BATCHES = 100


def _healthz_by_process(folder: Path) -> dict[int, float]:
    """Requests to /healthz each process has counted so far, from its own metrics file."""
    found: dict[int, float] = {}
    for path in folder.glob("counter_*.db"):
        pid = int(path.stem.split("_")[-1])
        for key, value, _, _ in MmapedDict.read_all_values_from_file(str(path)):
            _, name, labels, _ = json.loads(key)
            if name == "litestar_requests_total" and labels.get("path") == HEALTHZ:
                found[pid] = found.get(pid, 0.0) + value
    return found


def _scraped_healthz(base: str) -> float:
    reply = httpx.get(f"{base}/metrics")  # a new connection each time: any process may answer
    assert reply.status_code == 200
    return sum(
        s.value
        for family in text_string_to_metric_families(reply.text)
        for s in family.samples
        if s.name == "litestar_requests_total" and s.labels.get("path") == HEALTHZ
    )


def _wait_until_up(base: str, server: subprocess.Popen[str]) -> None:
    """Poll until the server answers (no time is asserted: the test's timeout bounds it)."""
    while True:
        assert server.poll() is None, server.communicate()
        try:
            httpx.get(f"{base}/readyz")
            return
        except httpx.TransportError:
            time.sleep(0.1)


def test_two_processes_report_the_sum_of_their_counters(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/p.db"
    upgrade(Settings(database_url=url))
    temp = tmp_path / "tmp"  # where serve makes its metrics folder (none is given)
    temp.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != serving.MULTIPROC_ENV}
    env |= {"PATROLSYNC_DATABASE_URL": url, "PATROLSYNC_LOG_LEVEL": "WARNING", "TMPDIR": str(temp)}
    server = subprocess.Popen(
        [*PATROLSYNC, "serve", "--workers", "2", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base, server)
        (folder,) = temp.glob("patrolsync-metrics-*")
        sent = 0
        by_process: dict[int, float] = {}
        for _ in range(MAX_BATCHES):  # until both processes have served some
            for _ in range(BATCH):
                assert httpx.get(f"{base}{HEALTHZ}").status_code == 200
                sent += 1
            by_process = _healthz_by_process(folder)
            if len([n for n in by_process.values() if n > 0]) >= 2:
                break
        assert len([n for n in by_process.values() if n > 0]) == 2, by_process
        assert sum(by_process.values()) == sent
        # Each scrape, whichever process answers it, counts every request: never one
        # process's share, never a figure that goes down.
        scraped = [_scraped_healthz(base) for _ in range(8)]
        assert scraped == [sent] * 8
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    assert "Traceback" not in err, err
    assert not folder.exists()  # removed when the server stopped


def test_a_given_folder_is_emptied_of_an_earlier_runs_files(tmp_path: Path) -> None:
    before = os.environ.get(serving.MULTIPROC_ENV)
    os.environ[serving.MULTIPROC_ENV] = str(tmp_path)
    try:
        (tmp_path / "counter_1.db").write_bytes(b"stale")
        (tmp_path / "notes.txt").write_text("kept")
        with serving.multiprocess_metrics() as folder:
            assert folder == tmp_path
            assert [p.name for p in folder.iterdir()] == ["notes.txt"]
        assert folder.is_dir()  # the operator's folder stays
    finally:
        if before is None:
            os.environ.pop(serving.MULTIPROC_ENV, None)
        else:
            os.environ[serving.MULTIPROC_ENV] = before


def test_a_fresh_folder_is_made_and_removed_when_none_is_given() -> None:
    before = os.environ.pop(serving.MULTIPROC_ENV, None)
    try:
        with serving.multiprocess_metrics() as folder:
            assert os.environ[serving.MULTIPROC_ENV] == str(folder)
            assert folder.is_dir() and not list(folder.iterdir())
            (folder / "counter_7.db").write_bytes(b"x")
        assert not folder.exists()
        assert serving.MULTIPROC_ENV not in os.environ
    finally:
        if before is not None:
            os.environ[serving.MULTIPROC_ENV] = before
