"""The golden push/pull exchanges (docs/vectors/exchanges-*.json) are what the server answers.

Two ways: recorded again with the server's clock at each step's time, they equal the files
(``python -m tests.exchanges --check``); and the files' own requests, replayed on the real
clock with the documented normalisation (docs/vectors/README.md), get the files' responses.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from server.clock import wall_ms
from server.errors import ItemCode
from server.settings import Settings
from tests import exchanges
from tests.exchange_cases import CASES, in_process

DOCS = Path(__file__).resolve().parents[2] / "docs"


async def test_files_are_a_fresh_recording(settings: Settings) -> None:
    recorded = await exchanges.record_all(settings)
    assert set(recorded) == set(CASES)
    assert exchanges.stale(recorded) == [], "run: python -m tests.exchanges --write"


@pytest.mark.parametrize("name", sorted(CASES))
async def test_replay_on_the_real_clock(settings: Settings, name: str) -> None:
    vectors = exchanges.load(name)
    http_steps = [s for s in vectors["steps"] if "request" in s]
    async with in_process(settings, running_clock=True) as server:
        checked = await exchanges.replay(server, vectors, wall_ms)
    assert checked == len(http_steps)
    # The replay ran now, not at the recording's time: the shift was real.
    assert wall_ms() - vectors["t0_ms"] > 365 * 24 * 3_600_000


def _results(name: str) -> list[dict[str, Any]]:
    steps = exchanges.load(name)["steps"]
    bodies = [s["response"]["body"] for s in steps if "response" in s]
    return [r for b in bodies if isinstance(b, dict) for r in b.get("results", [])]


def test_every_status_rejection_and_refusal_has_a_vector() -> None:
    results = _results("exchanges-push.json")
    assert {r["status"] for r in results} == {"applied", "duplicate", "merged", "rejected"}
    assert {r["code"] for r in results if r["status"] == "rejected"} == {c.value for c in ItemCode}
    pulls = exchanges.load("exchanges-pull.json")["steps"]
    errors = [s["response"] for s in pulls if "response" in s and s["response"]["status"] >= 400]
    reasons = {e["body"]["error"]["details"]["reason"] for e in errors if e["status"] == 410}
    assert reasons == {"scope_changed", "cursor_expired", "cursor_ahead"}
    assert "cursor_invalid" in {e["body"]["error"]["code"] for e in errors}


def test_placeholders_and_times_are_checked_not_ignored() -> None:
    window = exchanges.Window(start=2_000, done=2_010, delta=1_000, moments={1_000: (2_000, 2_010)})
    bound: dict[str, str] = {}
    exchanges.compare({"token": "<token:d>"}, {"token": "A" * 43}, window, bound)
    assert bound == {"token:d": "A" * 43}
    exchanges.compare(
        {"cursor": "<cursor>", "server_time_ms": 1_000},
        {"cursor": "lQE", "server_time_ms": 2_005},
        window,
        bound,
    )
    exchanges.compare(
        {"clock": "000000000001000-00000-d"}, {"clock": "000000000002000-00000-d"}, window, bound
    )
    wrong: list[tuple[Any, Any]] = [
        ({"token": "<token>"}, {"token": "short"}),
        ({"cursor": "<cursor>"}, {"cursor": 7}),
        ({"code": "<code>"}, {"code": "0557-C9C3-C9CA"}),
        ({"server_time_ms": 1_000}, {"server_time_ms": 2_011}),
        ({"started_ms": 500}, {"started_ms": 1_511}),
        ({"skew_ms": 150_000}, {"skew_ms": 150_001}),
        ({"duration_ms": 10}, {"duration_ms": 11}),
        ({"clock": "000000000001000-00000-d"}, {"clock": "000000000001000-00000-d"}),
        ({"a": 1}, {"a": 1, "b": 2}),
    ]
    for expected, actual in wrong:
        with pytest.raises(AssertionError):
            exchanges.compare(expected, actual, window, {})


def _objects(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [value, *(o for v in value.values() for o in _objects(v))]
    if isinstance(value, list):
        return [o for v in value for o in _objects(v)]
    return []


def _matches(doc: Any, vec: Any) -> bool:
    try:
        exchanges.compare(vec, doc, exchanges.Window(0, 0, 0), {})
    except AssertionError:
        return False
    return True


def test_the_worked_example_in_the_protocol_is_the_vector() -> None:
    """Every JSON document of docs/protocol.md §2 is a message of the worked-example vector."""
    text = (DOCS / "protocol.md").read_text(encoding="utf-8")
    section = text[text.index("## 2. A worked offline round") : text.index("## 3. Versioning")]
    blocks = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", section, re.S)]
    vector = exchanges.load("exchanges-worked-example.json")
    candidates = _objects(vector["steps"])
    for block in blocks:
        assert any(_matches(block, c) for c in candidates), json.dumps(block)[:200]
    assert len(blocks) >= 8
