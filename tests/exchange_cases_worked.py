"""The worked offline round of docs/protocol.md §2, as a golden exchange.

Monday: 张伟 and 王芳 enrol and download their grids; 张伟 pushes the note he wrote at 王大爷's
(h-xh-101) and both pull it. Tuesday: 王芳 edits its text online at 11:15; 张伟, offline since
09:00, pushes his patrol and his edit of the same note at 13:05 (and resends it, as after a lost
reply); he pulls the check-in, the merged note and his conflict record, combines the two texts
and pushes the result; both pull it. Times are China Standard Time, March 2025.
"""

from __future__ import annotations

from tests.exchange_steps import NOTE, PHONE, TABLET, clk, enrol, pull, push, step

MONDAY = 1_742_176_800_000
"""Monday 17 March 2025, 10:00."""
MON_CLOCK = 1_742_199_750_000
"""16:22:30 on 张伟's phone (16:20:00 on the server's clock): his Monday save."""
MONDAY_FIELDS = {
    "visited_ms": 1_742_198_250_000,
    "method": "in_person",
    "outcome": "met",
    "text": "王大爷独居，腿脚不便，上下楼吃力。",
    "tags": ["living_alone", "elderly"],
    "follow_up": False,
}
MON = clk(MON_CLOCK, PHONE)
WANG_TEXT = "王大爷独居，腿脚不便。女儿每周六来看他。社区已联系物业，周四量楼道尺寸。"
ZHANG_TEXT = "王大爷独居，腿脚不便，楼道没有扶手，晚上不敢下楼倒垃圾。"
COMBINED = ZHANG_TEXT + "女儿每周六来看他。社区已联系物业，周四量楼道尺寸。"
WANG_CLOCK = clk(1_742_267_698_800, TABLET)
ZHANG_ITEMS = [
    {
        "op": "checkin",
        "id": "0195a8c4-2d00-7a9b-b3c1-5e7f9a0b1c22",
        "grid_id": "xinhua-g1",
        "started_ms": 1_742_259_750_000,
        "ended_ms": 1_742_274_270_000,
        "elapsed_ms": 14_519_200,
        "boot_id": "6f1c2a9e-boot",
        "visit_count": 3,
        "households": ["h-xh-101", "h-xh-102", "h-xh-201"],
        "route": {
            "points": 1420,
            "distance_m": 3860.5,
            "inside_share": 0.97,
            "max_speed_mps": 2.1,
        },
    },
    {
        "op": "note",
        "note_id": NOTE,
        "household_id": "h-xh-101",
        "clock": clk(1_742_265_750_000, PHONE),
        "fields": {
            "visited_ms": 1_742_265_150_000,
            "outcome": "met",
            "text": ZHANG_TEXT,
            "needs": "微心愿：在1号楼一至三楼楼道装扶手。",
            "follow_up": True,
        },
        "base": {"text": MON, "outcome": MON, "visited_ms": MON, "follow_up": MON},
    },
]
ZHANG_PUSH_ID = "0195aa4e-8f10-7c02-9d33-4a5b6c7d8e99"

WORKED = {
    "description": "The worked offline round of docs/protocol.md section 2, from enrolment to "
    "the resolved alternative: a merge with an alternative, a conflict record, a resent push.",
    "steps": [
        *enrol("w-zhang", PHONE, MONDAY),
        *enrol("w-wang", TABLET, MONDAY),
        step(
            "zhang bootstrap",
            "张伟's first pull, without a cursor: his grid's households",
            pull(PHONE),
            MONDAY,
            capture={"cursor": "zhang-0"},
        ),
        step(
            "wang bootstrap",
            "王芳's first pull: the households of her two grids",
            pull(TABLET),
            MONDAY,
            capture={"cursor": "wang-0"},
        ),
        step(
            "2.1 monday push",
            "张伟's phone pushes the note he wrote at 王大爷's (16:20)",
            push(
                PHONE,
                "0195a5d2-8a00-7b11-9c20-3d4e5f6a7b80",
                MON_CLOCK,
                [
                    {
                        "op": "note",
                        "note_id": NOTE,
                        "household_id": "h-xh-101",
                        "clock": MON,
                        "fields": MONDAY_FIELDS,
                    },
                ],
            ),
            1_742_199_600_000,
        ),
        step(
            "2.1 zhang pulls the note",
            "the note as both devices hold it on Monday",
            pull(PHONE, "<cursor:zhang-0>"),
            1_742_199_660_000,
            capture={"cursor": "zhang-1"},
        ),
        step(
            "2.1 wang pulls the note",
            "王芳's tablet gets the same note",
            pull(TABLET, "<cursor:wang-0>"),
            1_742_199_900_000,
            capture={"cursor": "wang-1"},
        ),
        step(
            "2.3 wang edits online",
            "11:15 Tuesday: 王芳 changes the text; nobody else has",
            push(
                TABLET,
                "0195a9f1-3c20-7d45-8e10-0b6a7c9d2e11",
                1_742_267_698_800,
                [
                    {
                        "op": "note",
                        "note_id": NOTE,
                        "household_id": "h-xh-101",
                        "clock": WANG_CLOCK,
                        "fields": {"text": WANG_TEXT},
                        "base": {"text": MON},
                    },
                ],
            ),
            1_742_267_700_000,
        ),
        step(
            "2.4 zhang pushes his outbox",
            "13:05: the patrol and his edit of the same note",
            push(PHONE, ZHANG_PUSH_ID, 1_742_274_450_000, ZHANG_ITEMS),
            1_742_274_300_000,
        ),
        step(
            "2.4 the same push resent",
            "as after a lost reply, 30 s later (device_time_ms read anew): "
            "the stored results, replayed: true",
            push(PHONE, ZHANG_PUSH_ID, 1_742_274_480_000, ZHANG_ITEMS),
            1_742_274_330_000,
        ),
        step(
            "2.5 zhang pulls",
            "the check-in, the merged note and his conflict record",
            pull(PHONE, "<cursor:zhang-1>"),
            1_742_274_360_000,
            capture={"cursor": "zhang-2"},
        ),
        step(
            "2.6 zhang resolves",
            "he combines both texts; base = the winner's clock",
            push(
                PHONE,
                "0195aa5b-1e40-7f21-a0c4-9b8d7e6f5a33",
                1_742_275_350_000,
                [
                    {
                        "op": "note",
                        "note_id": NOTE,
                        "household_id": "h-xh-101",
                        "clock": clk(1_742_275_350_000, PHONE),
                        "fields": {"text": COMBINED},
                        "base": {"text": WANG_CLOCK},
                    },
                ],
            ),
            1_742_275_200_000,
        ),
        step(
            "2.6 zhang pulls",
            "the combined text, no alternative left",
            pull(PHONE, "<cursor:zhang-2>"),
            1_742_275_260_000,
        ),
        step(
            "2.6 wang pulls",
            "王芳's tablet: the note's latest state only "
            "(the check-in and the conflict record are 张伟's)",
            pull(TABLET, "<cursor:wang-1>"),
            1_742_275_260_000,
        ),
    ],
}
