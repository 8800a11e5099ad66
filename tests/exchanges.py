"""Golden push/pull exchanges (docs/vectors/exchanges-*.json): record, check, replay.

A vector file is a list of steps run in order on a fresh server (migrated, the sample district
imported). A step is an HTTP exchange (``request`` → ``response``) or an ``operator`` command.
The rules for the values that vary between runs — placeholders, times — are in
docs/vectors/README.md; this module is their one implementation:

* ``record`` runs the cases of ``tests.exchange_cases`` through the real app with the server's
  clock set to each step's ``server_ms``, and writes what the server answered, with the values
  the server makes (tokens, codes, cursors) replaced by placeholders. Nothing in an expected
  response is typed by hand.
* ``replay`` runs a vector file's own requests (not the cases) against a server whose clock
  runs (the in-process app with the real clock, or a URL) and compares every response with the
  file under the documented normalisation: placeholders checked for shape, times shifted.

``python -m tests.exchanges --write`` regenerates the files; ``--check`` fails when they differ
from a fresh recording (the test does both: ``tests/e2e/test_exchange_vectors.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import shlex
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from server.migrate import upgrade
from server.settings import Settings

VECTORS = Path(__file__).resolve().parents[1] / "docs" / "vectors"
FORMAT = 1

SHAPES = {
    "token": re.compile(r"[A-Za-z0-9_-]{43}"),
    "code": re.compile(r"[0-9A-F]{4}(-[0-9A-F]{4}){3}"),
    "cursor": re.compile(r"[A-Za-z0-9_-]{1,200}"),
}
"""What a placeholder ``<kind>`` or ``<kind:label>`` in an expected response stands for."""
PLACEHOLDER = re.compile(r"<(token|code|cursor)(?::([^<>]+))?>")
DURATIONS = {"elapsed_ms", "duration_ms", "skew_ms"}
"""``*_ms`` fields that are spans, not instants: never shifted."""
SERVER_CLOCK = {"server_time_ms", "received_ms", "expires_ms"}
"""Instants the server takes from its own clock at the exchange (``expires_ms``: plus a TTL)."""
HLC_WALL = re.compile(r"(?<![0-9])([0-9]{15})(?=-[0-9]{5}-)")
TEXT_INSTANT = re.compile(r"(?<![0-9])[0-9]{13}(?![0-9])")
"""An instant written in a ``message`` or ``reason`` (e.g. ``ended 1742270850000 < started …``)."""
TEXTS = {"message", "reason"}
KEPT_HEADERS = ("www-authenticate", "retry-after")


def is_instant(key: str) -> bool:
    return key.endswith("_ms") and key not in DURATIONS


def shift(value: Any, delta: int, key: str = "") -> Any:
    """``value`` with every instant (``*_ms`` but spans) and every HLC wall time moved by delta."""
    if isinstance(value, dict):
        return {k: shift(v, delta, k) for k, v in value.items()}
    if isinstance(value, list):
        return [shift(v, delta, key) for v in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and is_instant(key):
        return value + delta
    if isinstance(value, str):
        value = HLC_WALL.sub(lambda m: f"{int(m.group(1)) + delta:015d}", value)
        if key in TEXTS:
            value = TEXT_INSTANT.sub(lambda m: str(int(m.group(0)) + delta), value)
    return value


def bind(value: Any, bound: dict[str, str]) -> Any:
    """Request values with ``<kind:label>`` replaced by what the server returned under it."""
    if isinstance(value, dict):
        return {k: bind(v, bound) for k, v in value.items()}
    if isinstance(value, list):
        return [bind(v, bound) for v in value]
    if isinstance(value, str):
        return PLACEHOLDER.sub(lambda m: bound[f"{m.group(1)}:{m.group(2)}"], value)
    return value


@dataclass
class Server:
    """Where a replay runs: an HTTP client, a way to set the server's clock (recording only),
    and the operator's commands."""

    client: httpx.AsyncClient
    set_clock: Callable[[int], None] | None
    operator: Callable[[str], Awaitable[None]]
    bound: dict[str, str] = field(default_factory=dict)


def _request_args(request: dict[str, Any], bound: dict[str, str]) -> dict[str, Any]:
    req = bind(request, bound)
    args: dict[str, Any] = {
        "method": req["method"],
        "url": req["path"],
        "headers": req.get("headers", {}),
        "params": req.get("query"),
    }
    if "body" in req:
        args["content"] = json.dumps(req["body"], ensure_ascii=False).encode()
    elif "body_text" in req:
        args["content"] = req["body_text"].encode()
    return args


def _observed(response: httpx.Response) -> dict[str, Any]:
    out: dict[str, Any] = {"status": response.status_code}
    headers = {h: response.headers[h] for h in KEPT_HEADERS if h in response.headers}
    if headers:
        out["headers"] = headers
    out["body"] = response.json() if response.content else None
    return out


async def record_step(server: Server, step: dict[str, Any]) -> dict[str, Any]:
    """Run one case step at its ``server_ms`` and return it with the server's answer."""
    assert server.set_clock is not None
    server.set_clock(step["server_ms"])
    if "operator" in step:
        await server.operator(step["operator"])
        return step
    response = await server.client.request(**_request_args(step["request"], server.bound))
    seen = _observed(response)
    body = seen["body"]
    for key, label in step.pop("capture", {}).items():
        server.bound[f"{key}:{label}"] = body[key]
        body[key] = f"<{key}:{label}>"
    if isinstance(body, dict) and response.is_success:
        for key in SHAPES:
            if isinstance(body.get(key), str) and not PLACEHOLDER.fullmatch(body[key]):
                body[key] = f"<{key}>"
    return {**step, "response": seen}


@dataclass
class Window:
    """Where a replay on a running clock stands: the live clock when the replay began and when
    this exchange's reply came, the shift of the data's times, and for each server time of the
    recording so far, the live moments of the exchanges recorded at it."""

    start: int
    done: int
    delta: int
    moments: dict[int, tuple[int, int]] = field(default_factory=dict)

    @property
    def slack(self) -> int:
        """How far a time the server derives from the device's clock may move: the replay's
        duration so far (a request's transit shortens the skew by up to that)."""
        return self.done - self.start

    def at_server_time(self, actual: int, expected: int) -> bool:
        """``actual`` is the live clock at an exchange recorded at ``s`` plus ``expected - s``
        (with no moments, a window of the recording itself: ``actual == expected``)."""
        if not self.moments:
            return actual == expected
        return any(lo <= actual - (expected - s) <= hi for s, (lo, hi) in self.moments.items())


def compare(expected: Any, actual: Any, w: Window, bound: dict[str, str], path: str = "") -> None:
    """Raise AssertionError where ``actual`` breaks the documented normalisation of ``expected``."""
    where = path or "body"
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r} is not an object"
        assert set(actual) == set(expected), f"{where}: keys {sorted(actual)} != {sorted(expected)}"
        for k, v in expected.items():
            key_path = f"{path}.{k}" if path else k
            if isinstance(v, int) and not isinstance(v, bool) and k.endswith("_ms"):
                _compare_time(k, v, actual[k], w, key_path)
            else:
                compare(v, actual[k], w, bound, key_path)
        return
    if isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{where}: {actual!r}"
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            compare(e, a, w, bound, f"{path}[{i}]")
        return
    if isinstance(expected, str) and (m := PLACEHOLDER.fullmatch(expected)):
        kind, label = m.groups()
        assert isinstance(actual, str) and SHAPES[kind].fullmatch(actual), f"{where}: {actual!r}"
        if label is not None:
            bound[f"{kind}:{label}"] = actual
        return
    want = shift(expected, w.delta, path.rsplit(".", 1)[-1])
    assert actual == want and type(actual) is type(want), f"{where}: {actual!r} != {want!r}"


def _compare_time(key: str, expected: int, actual: Any, w: Window, where: str) -> None:
    assert isinstance(actual, int), f"{where}: {actual!r} is not an integer"
    if key in SERVER_CLOCK:
        assert w.at_server_time(actual, expected), f"{where}: {actual} is no server time"
    elif key == "skew_ms":
        assert expected - w.slack <= actual <= expected, f"{where}: {actual} != {expected}"
    elif key in DURATIONS:
        assert actual == expected, f"{where}: {actual} != {expected}"
    else:
        want = expected + w.delta
        assert abs(actual - want) <= w.slack, f"{where}: {actual} != {want} (±{w.slack})"


async def replay(server: Server, vectors: dict[str, Any], now: Callable[[], int]) -> int:
    """Run a vector file's requests on a server with a running clock and compare each response
    (README: "Replaying on a real clock"). Returns the number of exchanges checked."""
    start = now()
    window = Window(start, start, start - vectors["t0_ms"])
    checked = 0
    for step in vectors["steps"]:
        if "operator" in step:
            await server.operator(step["operator"])
            continue
        request = shift(step["request"], window.delta)
        body = request.get("body")
        sent = now()
        if isinstance(body, dict) and isinstance(body.get("device_time_ms"), int):
            body["device_time_ms"] = (
                sent + step["request"]["body"]["device_time_ms"] - step["server_ms"]
            )
        response = await server.client.request(**_request_args(request, server.bound))
        window.done = now()
        lo, _ = window.moments.get(step["server_ms"], (sent, 0))
        window.moments[step["server_ms"]] = (lo, window.done)
        expected = step["response"]
        seen = _observed(response)
        name = step["name"]
        assert seen["status"] == expected["status"], f"{name}: {seen['status']} {response.text}"
        assert seen.get("headers", {}) == expected.get("headers", {}), name
        try:
            compare(expected["body"], seen["body"], window, server.bound)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None
        checked += 1
    return checked


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    return data


def dump(vectors: dict[str, Any]) -> str:
    return json.dumps(vectors, ensure_ascii=False, indent=1) + "\n"


async def record_all(settings: Settings) -> dict[str, str]:
    """Every case recorded on ``settings``' migrated database: file name → file text."""
    from tests.exchange_cases import CASES, in_process

    out: dict[str, str] = {}
    for name, case in CASES.items():
        async with in_process(settings, running_clock=False) as server:
            steps = [await record_step(server, dict(s)) for s in case["steps"]]
        vectors = {"format": FORMAT, **{k: v for k, v in case.items() if k != "steps"}}
        vectors["t0_ms"] = max(s["server_ms"] for s in steps)
        vectors["steps"] = steps
        out[name] = dump(vectors)
    return out


def stale(recorded: dict[str, str]) -> list[str]:
    """The files that differ from a recording (or are missing)."""
    return [
        n
        for n, text in recorded.items()
        if not (VECTORS / n).exists() or load(n) != json.loads(text)
    ]


TOKEN_ENV = "PATROLSYNC_REPLAY_TOKEN"
"""The supervisor s-xinhua's token for a replay against a URL (never on the command line)."""


async def replay_url(url: str, name: str) -> int:
    """Replay one vector file against a running server on a fresh database; operator steps run
    as commands (``patrolsync`` on PATH, the server's settings in the environment)."""
    from server.clock import wall_ms

    async def operator(command: str) -> None:
        proc = await asyncio.create_subprocess_exec(*shlex.split(command))
        assert await proc.wait() == 0, command

    bound = {"token:s-xinhua": os.environ[TOKEN_ENV]}
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        return await replay(Server(client, None, operator, bound), load(name), wall_ms)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="record and write docs/vectors/")
    mode.add_argument("--check", action="store_true", help="record; fail if the files differ")
    mode.add_argument(
        "--replay",
        metavar="FILE",
        help=f"replay docs/vectors/FILE at --url "
        f"(a fresh server; s-xinhua's token in ${TOKEN_ENV})",
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    args = parser.parse_args(argv)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if args.replay:
        checked = asyncio.run(replay_url(args.url, Path(args.replay).name))
        print(f"{args.replay}: {checked} exchanges as recorded")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/vectors.db"
        upgrade(Settings(database_url=url))
        recorded = asyncio.run(record_all(Settings(database_url=url, log_level="WARNING")))
    changed = stale(recorded)
    if args.write:
        for name, text in recorded.items():
            (VECTORS / name).write_text(text, encoding="utf-8")
        print(f"wrote {len(recorded)} files, {len(changed)} changed: {', '.join(changed) or '-'}")
        return 0
    if changed:
        print(f"out of date (run python -m tests.exchanges --write): {', '.join(changed)}")
        return 1
    print(f"{len(recorded)} files up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
