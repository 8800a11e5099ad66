"""The reference client's clock follows the protocol's JSON vectors (docs/vectors/hlc.json):
what it stores after a local edit (tick) and after a pulled clock (receive)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from client.device import DeviceClient
from client.store import LocalStore

VECTORS = json.loads(
    (Path(__file__).resolve().parents[2] / "docs" / "vectors" / "hlc.json").read_text("utf-8")
)


def _device(case: dict[str, Any]) -> DeviceClient:
    store = LocalStore()
    if case["local"] is not None:
        store.put("hlc", case["local"])
    http = httpx.AsyncClient(base_url="http://unused")
    return DeviceClient(http, store, case["node"], clock=lambda: int(case["now_ms"]))


@pytest.mark.parametrize("case", VECTORS["tick"], ids=lambda c: f"{c['local']}@{c['now_ms']}")
def test_tick(case: dict[str, Any]) -> None:
    device = _device(case)
    if case["expect"] == "error":
        with pytest.raises(ValueError):
            device._tick()
        return
    assert device._tick() == case["expect"]
    assert device.store.get("hlc") == case["expect"]


@pytest.mark.parametrize("case", VECTORS["receive"], ids=lambda c: f"{c['remote']}")
def test_receive(case: dict[str, Any]) -> None:
    device = _device(case)
    if case["expect"] == "error":
        with pytest.raises(ValueError):
            device._receive(case["remote"])
        return
    assert device._receive(case["remote"]) == case["expect"]
