"""The reference device client: record offline, push the outbox, pull what changed.

What it shows a client builder, in order of importance:

* every user action is saved to the local outbox first (``record_checkin``, ``amend``,
  ``edit_note``, ``delete_note``); nothing waits for the network;
* a push is fixed before it is sent (its push id and items are stored), and a push whose reply
  never came is sent again **with the same push id** — the server answers from its receipt, so a
  reply lost after the commit costs nothing; the device time is re-read at each send;
* only a push that empties the outbox says ``complete: true`` (the quota waits for it), and a
  device with nothing to send still pushes once, empty, to say so;
* 429/503 are retried after ``Retry-After`` (plus jitter), network errors and 5xx with
  exponential backoff and jitter, a bounded number of times (then :class:`GaveUp`, the outbox
  intact); 413 cuts the push in halves; 401 is :class:`AuthError` (enrol again, the outbox is
  kept); a rejected item leaves the outbox for :meth:`LocalStore.rejected`;
* pull follows the cursor to the end, storing each page with its cursor in one transaction, and
  on 410 drops its server data and pulls again from scratch;
* every clock pulled is ``receive``d, so the next local edit's clock is greater than all of them.
* online, :meth:`DeviceClient.follow` keeps in step: push what waits, then a live pull
  (``wait``) that answers as soon as a change in its scope commits.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec
import uuid_utils

from client.store import LocalStore
from sync.hlc import HLC, receive, tick

PROTOCOL = "1"
_json = msgspec.json.Encoder()


FOLLOW_WAIT_S = 25
"""Follow mode's wait: below the idle timeouts of most proxies and mobile networks (30 s+)."""
WAIT_MARGIN_S = 15.0
"""A live pull's HTTP timeout is its wait plus this (the reply itself must still arrive)."""


def wall_ms() -> int:
    """The device's own wall clock (ms since the epoch): a phone's, possibly wrong; the server
    measures its skew and never relies on it."""
    return time.time_ns() // 1_000_000


def new_id() -> str:
    """A UUIDv7: time-ordered, so ids made on one device sort by creation."""
    return str(uuid.UUID(str(uuid_utils.uuid7())))


class ClientError(Exception):
    """The server refused a request for good (its stable ``code`` says why)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class AuthError(ClientError):
    """401: the token is unknown or revoked. Enrol again; the outbox is kept."""


class GaveUp(ClientError):
    """Retries ran out (network down, server overloaded); nothing is lost, try later."""


@dataclass(frozen=True)
class Backoff:
    base_s: float = 0.5
    cap_s: float = 30.0
    attempts: int = 8

    def delay(self, attempt: int, retry_after: str | None, rng: random.Random) -> float:
        """``Retry-After`` when the server gave one, else exponential; jitter spreads a fleet."""
        if retry_after is not None:
            try:
                return float(retry_after) + rng.uniform(0, 0.5)
            except ValueError:
                pass
        return float(min(self.cap_s, self.base_s * 2**attempt) * rng.uniform(0.5, 1.0))


@dataclass
class PushReport:
    pushes: int = 0
    applied: int = 0
    duplicate: int = 0
    merged: int = 0
    rejected: int = 0
    resent: int = 0
    """Pushes found in flight and sent again (same push id) after an earlier call gave up."""
    replayed: int = 0
    """Replies the server gave from its receipt: the push had been applied by an earlier try."""


@dataclass
class DeviceClient:
    http: httpx.AsyncClient
    store: LocalStore
    device_id: str
    clock: Callable[[], int] = wall_ms
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    rng: random.Random = field(default_factory=random.Random)
    backoff: Backoff = field(default_factory=Backoff)
    pull_limit: int = 1000

    # ---------------------------------------------------------------- HTTP

    def _headers(self) -> dict[str, str]:
        headers = {"Patrolsync-Protocol": PROTOCOL, "Content-Type": "application/json"}
        token = self.store.get("token")
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    async def _send(
        self,
        method: str,
        path: str,
        *,
        body: Callable[[], Any] | None = None,
        params: dict[str, Any] | None = None,
        read_s: float | None = None,
    ) -> httpx.Response:
        """One request, retried on what a retry can fix. ``body`` is built at each try;
        ``read_s`` (seconds) replaces the HTTP client's timeouts (a live pull waits longer)."""
        extra: dict[str, Any] = {} if read_s is None else {"timeout": read_s}
        for attempt in range(self.backoff.attempts):
            content = _json.encode(body()) if body is not None else None
            retry_after = None
            try:
                reply = await self.http.request(
                    method, path, content=content, params=params, headers=self._headers(), **extra
                )
            except httpx.TransportError:
                reply = None
            if reply is not None:
                if reply.status_code == 401:
                    raise AuthError(401, *_error(reply))
                if reply.status_code not in (429, 503) and reply.status_code < 500:
                    return reply
                retry_after = reply.headers.get("retry-after")
            await self.sleep(self.backoff.delay(attempt, retry_after, self.rng))
        raise GaveUp(
            0, "gave_up", f"{method} {path}: no answer after {self.backoff.attempts} tries"
        )

    # ---------------------------------------------------------------- enrolment, handshake

    async def enrol(self, code: str, platform: str = "reference") -> None:
        reply = await self._send(
            "POST",
            "/v1/auth/enrol",
            body=lambda: {"code": code, "device_id": self.device_id, "platform": platform},
        )
        if reply.status_code != 201:
            raise ClientError(reply.status_code, *_error(reply))
        data = reply.json()
        self.store.put("token", data["token"])
        self.store.put("worker_id", data["worker_id"])

    async def handshake(self) -> dict[str, Any]:
        """The server's limits (kept: pushes are cut to fit them) and time."""
        reply = await self._send("GET", "/v1/sync/config")
        if reply.status_code != 200:
            raise ClientError(reply.status_code, *_error(reply))
        config: dict[str, Any] = reply.json()
        self.store.put("max_push_items", str(config["limits"]["max_push_items"]))
        # 0 from a server without live pull (the field is absent there).
        self.store.put("max_pull_wait_s", str(config["limits"].get("max_pull_wait_s", 0)))
        return config

    # ---------------------------------------------------------------- local actions

    def _tick(self) -> str:
        raw = self.store.get("hlc")
        clock = tick(HLC.parse(raw) if raw else None, self.clock(), self.device_id)
        self.store.put("hlc", clock.encode())
        return clock.encode()

    def _receive(self, seen: str) -> str:
        raw = self.store.get("hlc")
        clock = receive(
            HLC.parse(raw) if raw else None, HLC.parse(seen), self.clock(), self.device_id
        )
        self.store.put("hlc", clock.encode())
        return clock.encode()

    def record_checkin(self, grid_id: str, started_ms: int, ended_ms: int, **body: Any) -> str:
        """A finished patrol (``elapsed_ms``/``boot_id`` from the monotonic clock when known)."""
        rid = new_id()
        item = {
            "op": "checkin",
            "id": rid,
            "grid_id": grid_id,
            "started_ms": started_ms,
            "ended_ms": ended_ms,
            **body,
        }
        self.store.enqueue(item, self.clock())
        return rid

    def amend(
        self,
        target: str,
        grid_id: str,
        started_ms: int,
        ended_ms: int,
        reason: str = "",
        **body: Any,
    ) -> str:
        """A correction of a check-in: a complete replacement body, never an edit in place."""
        rid = new_id()
        item = {
            "op": "amend",
            "id": rid,
            "amends": target,
            "clock": self._tick(),
            "grid_id": grid_id,
            "started_ms": started_ms,
            "ended_ms": ended_ms,
            "reason": reason,
            **body,
        }
        self.store.enqueue(item, self.clock())
        return rid

    def _bases(self, note_id: str, names: Sequence[str]) -> dict[str, str]:
        """For each field, the clock of the value this device shows: the server's, or this
        device's own unsent edit of it."""
        record = self.store.record("note", note_id) or {}
        clocks: dict[str, str] = dict(record.get("clocks", {}))
        for _, item in self.store.oldest(10_000):
            if item.get("op") == "note" and item["note_id"] == note_id:
                clocks.update(dict.fromkeys(item["fields"], item["clock"]))
        return {n: clocks[n] for n in names if n in clocks}

    def edit_note(
        self, household_id: str, fields: dict[str, Any], note_id: str | None = None
    ) -> str:
        """Set some fields of a visit note (a new note without ``note_id``)."""
        note_id = note_id or new_id()
        base = self._bases(note_id, list(fields))
        item = {
            "op": "note",
            "note_id": note_id,
            "household_id": household_id,
            "clock": self._tick(),
            "fields": fields,
            "base": base,
        }
        self.store.enqueue(item, self.clock())
        return note_id

    def delete_note(self, note_id: str, household_id: str) -> None:
        seen = sorted(
            self._bases(
                note_id,
                ["text", "needs", "visited_ms", "method", "outcome", "follow_up", "tags", "photos"],
            ).values()
        )
        item = {
            "op": "note_delete",
            "note_id": note_id,
            "household_id": household_id,
            "clock": self._tick(),
            "base": seen[-1] if seen else None,
        }
        self.store.enqueue(item, self.clock())

    # ---------------------------------------------------------------- push

    async def push(self) -> PushReport:
        """Push the whole outbox, in order; return what the server said."""
        report = PushReport()
        limit = int(self.store.get("max_push_items") or 500)
        while True:
            flight = self.store.inflight()
            if flight is None:
                batch = self.store.oldest(limit)
                if not batch and report.pushes:
                    return report
                # With nothing to send, one empty push still tells the server this device has
                # synced everything up to now (its watermark: the quota's verdict waits for it).
                complete = self.store.waiting() <= len(batch)
                self.store.begin_push(new_id(), [seq for seq, _ in batch], complete)
                flight = self.store.inflight()
                assert flight is not None
            else:
                report.resent += 1
            push_id, items, complete = flight
            reply = await self._send(
                "POST",
                "/v1/sync/push",
                body=functools.partial(_push_body, self, push_id, items, complete),
            )
            if reply.status_code == 413 and len(items) > 1:
                self.store.abandon_push()  # nothing was written: cut it in halves
                limit = max(1, len(items) // 2)
                continue
            if reply.status_code != 200:
                raise ClientError(reply.status_code, *_error(reply))
            report.pushes += 1
            answer = reply.json()
            report.replayed += int(bool(answer.get("replayed")))
            self._handle(items, answer, report)

    def _handle(
        self, items: list[tuple[int, dict[str, Any]]], reply: dict[str, Any], report: PushReport
    ) -> None:
        done: list[int] = []
        rejected: list[tuple[int, str, str]] = []
        records: list[tuple[str, str, Any]] = []
        for result in reply["results"]:
            seq = items[result["index"]][0]
            status = result["status"]
            setattr(report, status, getattr(report, status) + 1)
            if status == "rejected":
                rejected.append((seq, result.get("code", ""), result.get("reason", "")))
                continue
            done.append(seq)
            if status == "merged" and result.get("record"):
                record = result["record"]
                records.append(("note", str(record["id"]), record))
        self.store.finish_push(done, rejected, records)

    # ---------------------------------------------------------------- pull

    async def pull(self, wait_s: int = 0) -> int:
        """Pull to the end; return the number of changes applied. With ``wait_s`` (a live
        pull, at most the handshake's ``max_pull_wait_s``), a pull that finds nothing new waits
        up to that long for a change in this device's scope."""
        applied = 0
        rebootstraps = 0
        while True:
            cursor = self.store.get("cursor")
            params: dict[str, Any] = {"limit": self.pull_limit}
            if cursor:
                params["cursor"] = cursor
            read_s = None
            if wait_s:
                params["wait"] = wait_s
                read_s = wait_s + WAIT_MARGIN_S
            reply = await self._send("GET", "/v1/sync/pull", params=params, read_s=read_s)
            if reply.status_code == 410 and rebootstraps < 2:
                rebootstraps += 1
                self.store.drop_server_data()
                continue
            if reply.status_code != 200:
                raise ClientError(reply.status_code, *_error(reply))
            page = reply.json()
            records = []
            for change in page["changes"]:
                record = change["record"]
                records.append((change["type"], str(record["id"]), record))
                for seen in _clocks(change["type"], record):
                    self._receive(seen)
            self.store.apply_page(records, page["cursor"])
            applied += len(records)
            if not page["more"]:
                return applied

    async def sync(self) -> tuple[PushReport, int]:
        """Push everything, then pull everything: one round after coming back online."""
        report = await self.push()
        return report, await self.pull()

    async def follow(
        self, rounds: int | None = None, *, wait_s: int = FOLLOW_WAIT_S, poll_s: float = 30.0
    ) -> int:
        """Follow mode, while online: push what waits, then a live pull that answers as soon
        as a change in this device's scope is committed; ``rounds`` times (None: until
        cancelled, or until a request gives up). Against a server without live pull it pulls
        every ``poll_s``. Returns the changes applied."""
        if self.store.get("max_pull_wait_s") is None:
            await self.handshake()
        most = int(self.store.get("max_pull_wait_s") or 0)
        wait = min(wait_s, most)
        applied, done = 0, 0
        while rounds is None or done < rounds:
            if self.store.waiting():
                await self.push()
            applied += await self.pull(wait_s=wait)
            done += 1
            if not wait and (rounds is None or done < rounds):
                await self.sleep(poll_s)
        return applied


def _push_body(
    device: DeviceClient, push_id: str, items: list[tuple[int, dict[str, Any]]], complete: bool
) -> dict[str, Any]:
    """The push's body as sent now: the same id and items at every try, today's device time."""
    return {
        "push_id": push_id,
        "device_time_ms": device.clock(),
        "items": [item for _, item in items],
        "complete": complete,
    }


def _clocks(kind: str, record: dict[str, Any]) -> list[str]:
    if kind == "note":
        return [c for c in record.get("clocks", {}).values() if c]
    if kind == "conflict":
        return [c for c in (record.get("losing_clock"), record.get("winning_clock")) if c]
    if kind == "checkin" and record.get("clock"):
        return [record["clock"]]
    return []


def _error(reply: httpx.Response) -> tuple[str, str]:
    try:
        error = reply.json()["error"]
        return str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        return "http_error", reply.text[:200]
