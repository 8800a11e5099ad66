"""Golden push exchanges: every item status, every item rejection code, every request error a
push can get from a client's own mistakes, a resent push, a revoked device.

The server's clock stands at T0 (Tuesday 13:05); 张伟's phone is 2½ minutes fast, 王芳's tablet
1.2 s slow. Each item's ``note`` in the step says what it shows.
"""

from __future__ import annotations

from typing import Any

from tests.exchange_steps import (
    HOUR,
    MIN,
    OLD,
    PHONE,
    PHONE_AHEAD,
    T0,
    TABLET,
    TABLET_BEHIND,
    clk,
    enrol,
    push,
    req,
    step,
)

NOW = T0 + PHONE_AHEAD
"""张伟's phone's clock."""
CHECKIN = "0195b000-0000-7000-8000-000000000001"
AMEND = "0195b000-0000-7000-8000-000000000002"
WANG_CHECKIN = "0195b000-0000-7000-8000-0000000000f1"
NOTE_A = "0195b000-0000-7000-8000-00000000000a"
NOTE_B = "0195b000-0000-7000-8000-00000000000b"


def checkin(id_: str, grid: str = "xinhua-g1", **extra: Any) -> dict[str, Any]:
    """A 4-hour patrol that ended an hour ago by the phone's clock, with a monotonic duration."""
    item = {
        "op": "checkin",
        "id": id_,
        "grid_id": grid,
        "started_ms": NOW - 5 * HOUR,
        "ended_ms": NOW - HOUR,
        "elapsed_ms": 4 * HOUR,
        "boot_id": "boot-1",
        "visit_count": 1,
        "households": ["h-xh-101"],
    }
    item.update(extra)
    return item


def note(id_: str, household: str, clock: str, **fields: Any) -> dict[str, Any]:
    return {
        "op": "note",
        "note_id": id_,
        "household_id": household,
        "clock": clock,
        "fields": fields,
    }


C1, C2, C3 = clk(NOW - 30 * MIN, PHONE), clk(NOW - 20 * MIN, PHONE), clk(NOW, PHONE)
FIRST = push(
    PHONE,
    "0195b001-0000-7000-8000-000000000001",
    NOW,
    [
        checkin(CHECKIN),
        {
            **checkin(AMEND, ended_ms=NOW - HOUR + 10 * MIN, elapsed_ms=4 * HOUR + 10 * MIN),
            "op": "amend",
            "amends": CHECKIN,
            "clock": C2,
            "reason": "stopped the timer late",
        },
        note(NOTE_A, "h-xh-101", C1, text="王大爷不在家，邻居说去医院了。", outcome="not_home"),
        note(NOTE_B, "h-xh-102", C1, text="赵奶奶需要轮椅。", needs="轮椅一台"),
    ],
)
REJECTED = [
    ({"op": "teleport", "id": CHECKIN}, "invalid_item: an unknown op"),
    (note(NOTE_A, "h-xh-101", C3, text=None), "invalid_item: a null note field"),
    (note(NOTE_A, "h-xh-101", C3, text="ok\u0000"), "invalid_item: a NUL in free text"),
    (note(NOTE_A, "h-xh-101", C3, colour="red"), "invalid_item: an edit that sets no field"),
    (
        checkin("0195b000-0000-7000-8000-000000000011", started_ms=NOW, ended_ms=NOW - HOUR),
        "end_before_start",
    ),
    (checkin("0195b000-0000-7000-8000-000000000012", elapsed_ms=25 * HOUR), "invalid_duration"),
    (
        checkin("0195b000-0000-7000-8000-000000000013", grid="no-such-grid", households=[]),
        "unknown_grid",
    ),
    (
        checkin("0195b000-0000-7000-8000-000000000014", grid="xinhua-g2", households=[]),
        "forbidden_grid: a check-in in a grid of another worker",
    ),
    (
        note("0195b000-0000-7000-8000-00000000001c", "h-xh-301", C3, text="x"),
        "forbidden_grid: a note about a household of another grid",
    ),
    (checkin("0195b000-0000-7000-8000-000000000015", worker_id="w-wang"), "forbidden_worker"),
    (
        checkin("0195b000-0000-7000-8000-000000000016", households=["h-xh-301"]),
        "unknown_household: a household not in the check-in's grid",
    ),
    (
        note("0195b000-0000-7000-8000-00000000001d", "h-nowhere", C3, text="x"),
        "unknown_household: a note about no household",
    ),
    (
        {
            **checkin("0195b000-0000-7000-8000-000000000017"),
            "op": "amend",
            "amends": "0195b000-0000-7000-8000-0000000000ff",
            "clock": C3,
        },
        "unknown_checkin",
    ),
    (
        note(NOTE_A, "h-xh-101", clk(NOW, TABLET), text="x"),
        "invalid_clock: the clock of another device",
    ),
    (note(NOTE_A, "h-xh-101", "yesterday", text="x"), "invalid_item: a clock under 23 chars"),
    (note(NOTE_A, "h-xh-101", "2025-03-18T13:05:00+08:00", text="x"), "invalid_clock: not a clock"),
    (
        {**note(NOTE_A, "h-xh-101", C1, text="x"), "base": {"text": C3}},
        "invalid_clock: a base not below the clock",
    ),
    (
        note(NOTE_A, "h-xh-101", clk(T0 + 25 * HOUR, PHONE), text="x"),
        "clock_ahead: 25 h ahead of the server",
    ),
    (note(NOTE_A, "h-xh-102", C3, text="x"), "note_mismatch: the note is about h-xh-101"),
    (checkin(WANG_CHECKIN), "id_reused: the id of 王芳's check-in"),
]

PUSH = {
    "description": "Push: per-item statuses (applied, duplicate, merged, rejected with each "
    "code), a resent push answered from its receipt, and the request-level errors.",
    "steps": [
        *enrol("w-zhang", PHONE),
        *enrol("w-wang", TABLET),
        step(
            "wang checkin",
            "王芳 records a patrol of her grid xinhua-g2 (its id comes back later)",
            push(
                TABLET,
                "0195b002-0000-7000-8000-000000000001",
                T0 + TABLET_BEHIND,
                [
                    checkin(
                        WANG_CHECKIN,
                        grid="xinhua-g2",
                        households=["h-xh-301"],
                        started_ms=T0 - 6 * HOUR,
                        ended_ms=T0 - 2 * HOUR,
                    )
                ],
            ),
        ),
        step(
            "applied",
            "a check-in (flag clock_skew: the phone is 2.5 min fast), its amendment "
            "and two new notes: all applied",
            FIRST,
        ),
        step(
            "replayed",
            "the same push id again: the stored results, replayed: true, nothing applied twice",
            FIRST,
        ),
        step(
            "duplicate",
            "the same check-in and the same note edit in a new push: duplicate; "
            "a delete of note B: applied",
            push(
                PHONE,
                "0195b001-0000-7000-8000-000000000002",
                NOW,
                [
                    checkin(CHECKIN),
                    note(
                        NOTE_A,
                        "h-xh-101",
                        C1,
                        text="王大爷不在家，邻居说去医院了。",
                        outcome="not_home",
                    ),
                    {
                        "op": "note_delete",
                        "note_id": NOTE_B,
                        "household_id": "h-xh-102",
                        "clock": C3,
                        "base": C1,
                    },
                ],
            ),
        ),
        step(
            "merged",
            "王芳 edits note A's text without having seen it (no base): her clock "
            "is greater, so 张伟's text becomes an alternative: merged, with the record",
            push(
                TABLET,
                "0195b002-0000-7000-8000-000000000002",
                T0 + TABLET_BEHIND,
                [
                    note(
                        NOTE_A,
                        "h-xh-101",
                        clk(T0 + TABLET_BEHIND, TABLET),
                        text="王大爷住院了，女儿陪护。",
                    ),
                ],
            ),
        ),
        step(
            "merged into a deleted note",
            "an edit of the deleted note B: stored, never shown",
            push(
                PHONE,
                "0195b001-0000-7000-8000-000000000003",
                NOW,
                [
                    note(NOTE_B, "h-xh-102", clk(NOW, PHONE, 1), needs="轮椅两台"),
                ],
            ),
        ),
        step(
            "rejected",
            "one item per rejection code (item i: "
            + "; ".join(f"{i} {why}" for i, (_, why) in enumerate(REJECTED))
            + "); nothing of them written",
            push(
                PHONE, "0195b001-0000-7000-8000-000000000004", NOW, [item for item, _ in REJECTED]
            ),
        ),
        step(
            "empty push",
            "no items, complete: true: moves the device's watermark",
            push(PHONE, "0195b001-0000-7000-8000-000000000005", NOW, []),
        ),
        step(
            "no protocol header",
            "400 unsupported_protocol, before anything else",
            {
                **push(PHONE, "0195b001-0000-7000-8000-000000000006", NOW, []),
                "headers": {
                    "Authorization": f"Bearer <token:{PHONE}>",
                    "Content-Type": "application/json",
                },
            },
        ),
        step(
            "protocol 2",
            "a version this server does not speak",
            {
                **push(PHONE, "0195b001-0000-7000-8000-000000000006", NOW, []),
                "headers": {
                    "Patrolsync-Protocol": "2",
                    "Authorization": f"Bearer <token:{PHONE}>",
                    "Content-Type": "application/json",
                },
            },
        ),
        step(
            "no token",
            "401 unauthorized, with WWW-Authenticate",
            req(
                "POST",
                "/v1/sync/push",
                body={
                    "push_id": "0195b001-0000-7000-8000-000000000006",
                    "device_time_ms": NOW,
                    "items": [],
                },
            ),
        ),
        step(
            "unknown token",
            "401 unauthorized",
            req(
                "POST",
                "/v1/sync/push",
                token="not-a-token-of-this-server",
                body={
                    "push_id": "0195b001-0000-7000-8000-000000000006",
                    "device_time_ms": NOW,
                    "items": [],
                },
            ),
        ),
        step(
            "supervisor token",
            "403 forbidden: push is for devices",
            req(
                "POST",
                "/v1/sync/push",
                token="<token:s-xinhua>",
                body={
                    "push_id": "0195b001-0000-7000-8000-000000000006",
                    "device_time_ms": NOW,
                    "items": [],
                },
            ),
        ),
        step(
            "text/plain",
            "415 unsupported_media_type",
            req(
                "POST",
                "/v1/sync/push",
                token=f"<token:{PHONE}>",
                body_text="{}",
                content_type="text/plain",
            ),
        ),
        step(
            "not JSON",
            "400 malformed_body",
            req("POST", "/v1/sync/push", token=f"<token:{PHONE}>", body_text='{"push_id": '),
        ),
        step(
            "no push_id",
            "422 invalid_request: the envelope has the wrong shape",
            req(
                "POST",
                "/v1/sync/push",
                token=f"<token:{PHONE}>",
                body={"device_time_ms": NOW, "items": []},
            ),
        ),
        step(
            "device time out of range",
            "422 invalid_request: device_time_ms above 10^14",
            push(PHONE, "0195b001-0000-7000-8000-000000000007", 10**14 + 1, []),
        ),
        *enrol("w-zhang", OLD),
        step(
            "revoke",
            "the supervisor revokes 张伟's old phone",
            req("POST", f"/v1/devices/{OLD}/revoke", token="<token:s-xinhua>", protocol=None),
        ),
        step(
            "revoked",
            "401 token_revoked: enrol again with a new code and a new device id",
            push(OLD, "0195b003-0000-7000-8000-000000000001", NOW, []),
        ),
    ],
}
