"""Test helpers: enrol devices and speak the protocol over HTTP through the real app."""

from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec
import uuid_utils

from patrolsync.cli import SAMPLE
from server import enrolment
from server.state import Services
from server.tx import transaction
from sync.hlc import HLC, tick

HOUR = 3_600_000
PROTOCOL = {"Patrolsync-Protocol": "1"}

__all__ = ["HOUR", "PROTOCOL", "SAMPLE", "Clock", "Device", "Fleet", "new_id", "pulled_note"]


def new_id() -> uuid.UUID:
    return uuid.UUID(str(uuid_utils.uuid7()))


@dataclass
class Device:
    fleet: Fleet
    worker_id: str
    device_id: str
    token: str
    clock: HLC | None = None
    skew_ms: int = 0

    @property
    def headers(self) -> dict[str, str]:
        return {**PROTOCOL, "Authorization": f"Bearer {self.token}"}

    def now(self) -> int:
        """The device's wall clock: the server's test clock plus this device's skew."""
        return self.fleet.services.clock() + self.skew_ms

    def tick(self) -> str:
        self.clock = tick(self.clock, self.now(), self.device_id)
        return self.clock.encode()

    def checkin(
        self,
        grid_id: str,
        *,
        hours: float = 4.0,
        ended_ago_ms: int = HOUR,
        elapsed_ms: int | str | None = "same",
        **extra: Any,
    ) -> dict[str, Any]:
        end = self.now() - ended_ago_ms
        start = end - int(hours * HOUR)
        item: dict[str, Any] = {
            "op": "checkin",
            "id": str(new_id()),
            "grid_id": grid_id,
            "started_ms": start,
            "ended_ms": end,
            "visit_count": 3,
            "households": [],
        }
        if elapsed_ms == "same":
            item["elapsed_ms"] = end - start
            item["boot_id"] = "boot-1"
        elif elapsed_ms is not None:
            item["elapsed_ms"] = elapsed_ms
        item.update(extra)
        return item

    def note(
        self,
        note_id: uuid.UUID | str,
        household_id: str,
        fields: dict[str, Any],
        base: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        item: dict[str, Any] = {
            "op": "note",
            "note_id": str(note_id),
            "household_id": household_id,
            "clock": self.tick(),
            "fields": fields,
        }
        if base:
            item["base"] = base
        return item

    async def push(
        self,
        items: list[Any],
        *,
        push_id: uuid.UUID | None = None,
        msgpack: bool = False,
        expect: int = 200,
        complete: bool = True,
    ) -> dict[str, Any]:
        body = {
            "push_id": str(push_id or new_id()),
            "device_time_ms": self.now(),
            "items": items,
            "complete": complete,
        }
        response = await self.fleet.post("/v1/sync/push", body, self.headers, msgpack=msgpack)
        assert response.status_code == expect, response.text
        return decode(response)

    async def pull_all(self, cursor: str | None = None, limit: int = 1000) -> tuple[list[Any], str]:
        changes: list[Any] = []
        while True:
            params: dict[str, Any] = {"limit": limit}
            if cursor:
                params["cursor"] = cursor
            response = await self.fleet.client.get(
                "/v1/sync/pull", params=params, headers=self.headers
            )
            assert response.status_code == 200, response.text
            page = response.json()
            changes.extend(page["changes"])
            cursor = page["cursor"]
            if not page["more"]:
                return changes, cursor


async def pulled_note(dev: Device, note_id: str) -> dict[str, Any]:
    """The one state of note ``note_id`` that ``dev`` pulls from scratch."""
    changes, _ = await dev.pull_all()
    notes = [c["record"] for c in changes if c["type"] == "note" and c["record"]["id"] == note_id]
    assert len(notes) == 1
    return notes[0]


def decode(response: Any) -> dict[str, Any]:
    if response.headers.get("content-type", "").startswith("application/msgpack"):
        result: dict[str, Any] = msgspec.msgpack.decode(response.content)
        return result
    result = response.json()
    return result


@dataclass
class Clock:
    """A settable clock for the server (``services.clock``) and, through it, the devices."""

    ms: int

    def __call__(self) -> int:
        return self.ms

    def advance(self, ms: int) -> None:
        self.ms += ms


@dataclass
class Fleet:
    client: httpx.AsyncClient
    services: Services
    devices: list[Device] = field(default_factory=list)

    async def post(
        self, path: str, body: Any, headers: dict[str, str], *, msgpack: bool = False
    ) -> Any:
        if msgpack:
            content = msgspec.msgpack.encode(body)
            headers = {
                **headers,
                "Content-Type": "application/msgpack",
                "Accept": "application/msgpack",
            }
        else:
            content = msgspec.json.encode(body)
            headers = {**headers, "Content-Type": "application/json"}
        return await self.client.post(path, content=content, headers=headers)

    async def code(self, worker_id: str) -> str:
        reply = await transaction(
            self.services.engine,
            lambda c: enrolment.issue_code(c, None, worker_id, 3600, self.services.clock()),
        )
        return reply.code

    async def device(self, worker_id: str, device_id: str | None = None) -> Device:
        device_id = device_id or f"dev-{worker_id}-{len(self.devices)}"
        code = await self.code(worker_id)
        response = await self.client.post(
            "/v1/auth/enrol", json={"code": code, "device_id": device_id, "platform": "test"}
        )
        assert response.status_code == 201, response.text
        device = Device(self, worker_id, device_id, response.json()["token"])
        self.devices.append(device)
        return device

    async def supervisor(self, supervisor_id: str) -> dict[str, str]:
        token = await transaction(
            self.services.engine,
            lambda c: enrolment.supervisor_token(c, supervisor_id, self.services.clock()),
        )
        return {**PROTOCOL, "Authorization": f"Bearer {token}"}


def free_port() -> int:
    """A port free on the loopback address just now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
