"""The demo's summary table: every community by street, with names, counted by alert kind."""

from __future__ import annotations

from rich.console import Console

from client import simulate
from patrolsync.demo import QUICK, _table


def test_the_table_names_streets_and_communities_and_counts_each_kind() -> None:
    doc = simulate.district(QUICK, seed=1)
    streets = doc["units"][0]["children"]
    first = streets[0]["children"][0]
    path = f"/sim/{streets[0]['id']}/{first['id']}/{first['children'][0]['id']}/"
    alerts = [
        {"rule": "quota_missed", "status": "open", "unit_path": path},
        {"rule": "quota_missed", "status": "acknowledged", "unit_path": path},
        {"rule": "visit_overdue", "status": "open", "unit_path": path},
        {"rule": "device_silent", "status": "open", "unit_path": path},
        {"rule": "visit_overdue", "status": "auto_resolved", "unit_path": path},
        {"rule": "quota_missed", "status": "resolved", "unit_path": path},
    ]
    console = Console(record=True, width=120)
    console.print(_table(doc, alerts))
    text = console.export_text()
    for street in streets:
        assert street["name"] in text
        for community in street["children"]:
            assert community["name"] in text
    row = next(line for line in text.splitlines() if first["name"] in line)
    assert [c.strip() for c in row.split("│") if c.strip()][-4:] == ["2", "1", "1", "1"]
    total = next(line for line in text.splitlines() if "total" in line)
    assert [c.strip() for c in total.split("│") if c.strip()][-4:] == ["2", "1", "1", "1"]
