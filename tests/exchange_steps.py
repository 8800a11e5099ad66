"""Builders of the golden exchanges' requests (tests/exchange_cases_*.py): only requests.

The responses are never written here: ``python -m tests.exchanges --write`` records them.
"""

from __future__ import annotations

from typing import Any

from sync.cursor import Cursor, encode, scope_hash

MIN = 60_000
HOUR = 60 * MIN
T0 = 1_742_274_300_000
"""Tuesday 18 March 2025, 13:05 China Standard Time: the server's clock in push and pull."""
PHONE, TABLET, OLD = "zw-phone-7f3a", "wf-tablet-02", "zw-old-phone"
PHONE_AHEAD = 150_000
"""张伟's phone runs 2½ minutes fast; 王芳's tablet 1.2 s slow."""
TABLET_BEHIND = -1_200
NOTE = "0195a5d2-6b80-7c3e-8a41-2f9d0c7e51b4"


def clk(wall_ms: int, node: str, counter_: int = 0) -> str:
    return f"{wall_ms:015d}-{counter_:05d}-{node}"


def req(
    method: str,
    path: str,
    *,
    token: str | None = None,
    protocol: str | None = "1",
    body: Any = None,
    body_text: str | None = None,
    query: dict[str, Any] | None = None,
    content_type: str = "application/json",
) -> dict[str, Any]:
    headers: dict[str, str] = {}
    if protocol is not None:
        headers["Patrolsync-Protocol"] = protocol
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    out: dict[str, Any] = {"method": method, "path": path}
    if query:
        out["query"] = query
    if body is not None or body_text is not None:
        headers["Content-Type"] = content_type
    out["headers"] = headers
    if body is not None:
        out["body"] = body
    if body_text is not None:
        out["body_text"] = body_text
    return out


def step(name: str, note: str, request: dict[str, Any], server_ms: int = T0, **kw: Any) -> Any:
    return {"name": name, "note": note, "server_ms": server_ms, "request": request, **kw}


def enrol(worker: str, device: str, at: int = T0) -> list[dict[str, Any]]:
    return [
        step(
            f"code for {worker}",
            f"the supervisor s-xinhua issues a one-time enrolment code for {worker}",
            req(
                "POST",
                "/v1/enrolments",
                token="<token:s-xinhua>",
                protocol=None,
                body={"worker_id": worker, "ttl_s": 86400},
            ),
            at,
            capture={"code": worker},
        ),
        step(
            f"enrol {device}",
            f"{worker}'s device {device} exchanges the code for its token",
            req(
                "POST",
                "/v1/auth/enrol",
                protocol=None,
                body={"code": f"<code:{worker}>", "device_id": device, "platform": "android 14"},
            ),
            at,
            capture={"token": device},
        ),
    ]


def push(device: str, push_id: str, device_time_ms: int, items: list[Any], **kw: Any) -> Any:
    return req(
        "POST",
        "/v1/sync/push",
        token=f"<token:{device}>",
        body={"push_id": push_id, "device_time_ms": device_time_ms, "items": items, **kw},
    )


def pull(device: str, cursor: str | None = None, **query: Any) -> dict[str, Any]:
    q = {**({"cursor": cursor} if cursor else {}), **query}
    return req("GET", "/v1/sync/pull", token=f"<token:{device}>", query=q or None)


def crafted_cursor(txid: int, scope: list[str]) -> str:
    """A cursor as the server would issue it for ``scope``, at a position it never reached."""
    return encode(Cursor(txid=txid, seq=0, scope=scope_hash(scope), epoch=0))
