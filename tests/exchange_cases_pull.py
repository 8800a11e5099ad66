"""Golden pull exchanges: bootstrap, pages, the cursor, conflict records and tombstones, and
every refusal of a cursor: 400 cursor_invalid and 410 scope_changed, cursor_ahead and
cursor_expired (after the operator's prune).

The server's clock stands at T0; 张伟's phone is 2½ minutes fast.
"""

from __future__ import annotations

from tests.exchange_steps import (
    MIN,
    PHONE,
    PHONE_AHEAD,
    T0,
    TABLET,
    TABLET_BEHIND,
    clk,
    crafted_cursor,
    enrol,
    pull,
    push,
    req,
    step,
)

NOW = T0 + PHONE_AHEAD
NOTE = "0195c000-0000-7000-8000-00000000000a"
GONE = "0195c000-0000-7000-8000-00000000000d"
C1 = clk(NOW - 10 * MIN, PHONE)

PULL = {
    "description": "Pull: bootstrap, paging with limit and more, conflict records, a "
    "tombstone, and each refusal of a cursor (400 cursor_invalid, 410 rebootstrap_required).",
    "steps": [
        *enrol("w-zhang", PHONE),
        *enrol("w-wang", TABLET),
        step(
            "bootstrap",
            "张伟's first pull, without a cursor: the households of xinhua-g1",
            pull(PHONE),
            capture={"cursor": "boot"},
        ),
        step(
            "zhang pushes",
            "a patrol, a note, and a note he will delete",
            push(
                PHONE,
                "0195c001-0000-7000-8000-000000000001",
                NOW,
                [
                    {
                        "op": "checkin",
                        "id": "0195c000-0000-7000-8000-000000000001",
                        "grid_id": "xinhua-g1",
                        "started_ms": NOW - 300 * MIN,
                        "ended_ms": NOW - 60 * MIN,
                        "elapsed_ms": 240 * MIN,
                        "boot_id": "boot-1",
                    },
                    {
                        "op": "note",
                        "note_id": NOTE,
                        "household_id": "h-xh-201",
                        "clock": C1,
                        "fields": {"text": "孙建国家里有积水。", "follow_up": True},
                    },
                    {
                        "op": "note",
                        "note_id": GONE,
                        "household_id": "h-xh-102",
                        "clock": C1,
                        "fields": {"text": "写错了户。"},
                    },
                ],
            ),
        ),
        step(
            "wang overrides",
            "王芳 edits the note's text without having seen it",
            push(
                TABLET,
                "0195c002-0000-7000-8000-000000000001",
                T0 + TABLET_BEHIND,
                [
                    {
                        "op": "note",
                        "note_id": NOTE,
                        "household_id": "h-xh-201",
                        "clock": clk(T0 + TABLET_BEHIND, TABLET),
                        "fields": {"text": "孙建国家里有积水，已报物业。"},
                    },
                ],
            ),
        ),
        step(
            "page 1",
            "limit=2: two changes and more: true",
            pull(PHONE, "<cursor:boot>", limit=2),
            capture={"cursor": "p1"},
        ),
        step(
            "page 2",
            "the rest, including 张伟's conflict record; more: false",
            pull(PHONE, "<cursor:p1>", limit=2),
            capture={"cursor": "p2"},
        ),
        step(
            "page 3",
            "nothing new: no changes, more: false; keep the new cursor",
            pull(PHONE, "<cursor:p2>", limit=2),
            capture={"cursor": "p3"},
        ),
        step(
            "delete",
            "张伟 deletes the note written to the wrong household",
            push(
                PHONE,
                "0195c001-0000-7000-8000-000000000002",
                NOW,
                [
                    {
                        "op": "note_delete",
                        "note_id": GONE,
                        "household_id": "h-xh-102",
                        "clock": clk(NOW, PHONE),
                        "base": C1,
                    },
                ],
            ),
        ),
        step(
            "tombstone",
            "the deleted note: deleted: true, fields empty",
            pull(PHONE, "<cursor:p3>"),
            capture={"cursor": "p4"},
        ),
        step(
            "supervisor bootstrap",
            "s-xinhua pulls the whole community",
            req("GET", "/v1/sync/pull", token="<token:s-xinhua>", query={"limit": 3}),
            capture={"cursor": "sup"},
        ),
        step(
            "scope_changed",
            "410: a cursor issued for another scope (the supervisor's)",
            pull(PHONE, "<cursor:sup>"),
        ),
        step(
            "cursor_invalid", "400: a cursor this server did not make", pull(PHONE, "not-a-cursor")
        ),
        step("cursor too long", "422 invalid_request: over 200 characters", pull(PHONE, "A" * 201)),
        step(
            "limit 0",
            "422 invalid_request, details.extra names the parameter",
            pull(PHONE, limit=0),
        ),
        step(
            "cursor_ahead",
            "410: a well-formed cursor of 张伟's scope at a position the server "
            "never reached (as after restoring an older backup); built from the documented "
            "format [1, 999999999, 0, scope, 0]",
            pull(PHONE, crafted_cursor(999_999_999, ["w:w-zhang", "g:xinhua-g1"])),
        ),
        step(
            "no protocol header",
            "400 unsupported_protocol",
            {**pull(PHONE), "headers": {"Authorization": f"Bearer <token:{PHONE}>"}},
        ),
        step("no token", "401 unauthorized", req("GET", "/v1/sync/pull")),
        {
            "name": "prune",
            "note": "the operator forgets tombstones older than 0 days: the "
            "deleted note is gone; the prune epoch goes up",
            "server_ms": T0,
            "operator": "patrolsync prune --keep-days 0",
        },
        step(
            "cursor_expired",
            "410: a cursor from before the prune, positioned before the forgotten tombstone",
            pull(PHONE, "<cursor:p3>"),
        ),
        step(
            "after the horizon",
            "a cursor that had seen the tombstone still works",
            pull(PHONE, "<cursor:p4>"),
        ),
        step(
            "bootstrap again", "a pull from scratch after the prune: no deleted note", pull(PHONE)
        ),
    ],
}
