"""The commands' logs, as an operator reads them: with PATROLSYNC_LOG_JSON every line that
``patrolsync migrate`` and ``patrolsync serve`` write to standard output is one JSON object —
alembic's and uvicorn's lines too — and each request is one access line (uvicorn's own access
log stays off), carrying the request id the reply returned."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

PATROLSYNC = [sys.executable, "-m", "patrolsync.cli"]


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PATROLSYNC_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/p.db",
        "PATROLSYNC_LOG_JSON": "true",
        "PATROLSYNC_LOG_LEVEL": "INFO",
    }


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _get_when_up(url: str, headers: dict[str, str]) -> httpx.Response:
    """Poll until the server answers (no time is asserted: the test's timeout bounds it)."""
    while True:
        try:
            return httpx.get(url, headers=headers)
        except httpx.TransportError:
            time.sleep(0.1)


def test_migrate_and_serve_write_only_json_lines(tmp_path: Path) -> None:
    env = _env(tmp_path)
    migrated = subprocess.run(
        [*PATROLSYNC, "migrate"], env=env, capture_output=True, text=True, check=True
    )
    alembic = [x for x in _json_lines(migrated.stdout) if x["logger"].startswith("alembic")]
    assert any(x["event"].startswith("Running upgrade") for x in alembic), migrated.stdout
    port = _free_port()
    server = subprocess.Popen(
        [*PATROLSYNC, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        reply = _get_when_up(f"{base}/healthz?code=1234-5678", {"X-Request-ID": "op-1"})
        assert reply.status_code == 200 and reply.headers["X-Request-ID"] == "op-1"
    finally:
        server.terminate()
        out, err = server.communicate(timeout=30)
    lines = [line for line in out.splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]  # every line is JSON
    assert "Traceback" not in err
    assert {"uvicorn.error", "patrolsync.access"} <= {x["logger"] for x in parsed}
    mine = [x for x in parsed if x.get("request_id") == "op-1"]
    assert [(x["logger"], x["path"], x["status"]) for x in mine] == [
        ("patrolsync.access", "/healthz", 200)
    ]
    assert "1234-5678" not in out
