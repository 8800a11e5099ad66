"""The Grafana dashboard in ``docker/``: valid JSON, every panel queries a metric that the
server's or the worker's registry really has, and every worker metric has a panel."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import prometheus_client
from litestar.testing import AsyncTestClient
from prometheus_client.metrics_core import Metric

from server.app import create_app
from server.settings import Settings
from worker import metrics

DASHBOARD = Path(__file__).parents[2] / "docker" / "grafana-dashboard.json"
NAMED = re.compile(r"\b((?:patrolsync|litestar)_[a-z0-9_]+)\b")
SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "gauge": ("",),
}


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def _exprs(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in _panels(dashboard) for t in p["targets"]]


def _series(families: Iterable[Metric]) -> set[str]:
    """The names a query can use: each family's name with its type's suffixes."""
    return {f.name + suffix for f in families for suffix in SUFFIXES.get(f.type, ("",))}


def _server_series(tmp_path: Path) -> set[str]:
    """The server's registry once it has answered a request (Litestar makes its HTTP metrics
    at the first one)."""
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'd.db'}")

    async def one_request() -> None:
        async with AsyncTestClient(create_app(settings)) as client:
            assert (await client.get("/healthz")).status_code == 200

    asyncio.run(one_request())
    return _series(prometheus_client.REGISTRY.collect())


def _worker_series() -> set[str]:
    outbox = metrics.OutboxCollector.describe(None)  # type: ignore[arg-type]
    return _series([*metrics.REGISTRY.collect(), *outbox])


def test_the_dashboard_is_grafana_json_with_a_query_in_every_panel() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    panels = _panels(dashboard)
    assert dashboard["title"] and dashboard["uid"] and len(panels) >= 10
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["datasource"]["type"] == "prometheus", panel["title"]
        assert panel["targets"] and all(t["expr"] for t in panel["targets"]), panel["title"]


def test_every_metric_the_dashboard_names_exists_and_every_worker_metric_is_shown(
    tmp_path: Path,
) -> None:
    named = {m for expr in _exprs(json.loads(DASHBOARD.read_text())) for m in NAMED.findall(expr)}
    worker = _worker_series()
    known = _server_series(tmp_path) | worker
    assert named - known == set()
    worker_families = {f.name for f in metrics.REGISTRY.collect()} | {
        metrics.BACKLOG,
        metrics.OLDEST_AGE,
    }
    ours = {f for f in worker_families if f.startswith("patrolsync_")}
    assert {f for f in ours if not any(n.startswith(f) for n in named)} == set()
    for needed in (
        "litestar_requests_total",
        "patrolsync_push_items_total",
        "patrolsync_pulled_changes_total",
    ):
        assert needed in named
