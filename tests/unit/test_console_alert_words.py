"""Every rule's evidence reads as a Chinese sentence with its figures (hours and minutes, local
times, never milliseconds), and evidence missing a figure still renders."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.alerts import Alert
from server.console import alert_words as words
from server.console.strings import ZH
from sync.durations import DAY_MS, HOUR_MS, MINUTE_MS

TZ = "Asia/Shanghai"
NOW = 1_764_633_600_000  # 2025-12-02 00:00 UTC, a Tuesday: 08:00 in Shanghai
H4 = 4 * HOUR_MS


def alert(rule: str, evidence: dict[str, Any], period: str = "", kind: str = "worker") -> Alert:
    return Alert(
        id=7,
        rule=rule,
        subject_kind=kind,  # type: ignore[arg-type]
        subject_id="w-1",
        period=period,
        unit_id="g1",
        severity="warning",
        status="open",
        evidence=evidence,
        opened_ms=NOW - 3 * DAY_MS,
        updated_ms=NOW,
    )


QUOTA = {"counted": 2, "required": 3, "short": 1, "patrols": 3, "min_patrol_ms": H4, "hours": 9}

CASES = [
    (
        alert("quota_missed", QUOTA, "2025-W48"),
        "上周有效巡查 2 次（要求 3 次，每次不少于 4 小时）；另有 1 次时长不足",
    ),
    (
        alert("quota_at_risk", {**QUOTA, "short": 0, "checkpoint_ms": NOW - HOUR_MS}, "2025-W49"),
        "截至检查点 2025-12-02 07:00，本周有效巡查 2 次（要求 3 次，每次不少于 4 小时）",
    ),
    (
        alert(
            "visit_overdue",
            {
                "care_tier": "high_risk",
                "cycle_days": 7,
                "last_visit_ms": None,
                "due_ms": NOW - 2 * DAY_MS,
                "days_overdue": 2.0,
            },
            kind="household",
        ),
        "高风险户，走访周期 7 天；上次走访：从未走访；应于 2025-11-30 08:00 前走访，已逾期 2.0 天",
    ),
    (
        alert("follow_up_open", {"household_id": "h", "opened_ms": NOW - DAY_MS, "days_open": 1}),
        "走访记录要求跟进，自 2025-12-01 08:00 起已 1.0 天未完成",
    ),
    (
        alert(
            "device_silent",
            {
                "last_contact_ms": NOW - 50 * HOUR_MS,
                "never_synced": False,
                "silent_hours": 50.5,
                "silent_device_ms": 48 * HOUR_MS,
            },
            kind="device",
        ),
        "设备最后一次同步于 2025-11-30 06:00，已 50 小时 30 分钟 没有同步（超过 48 小时）",
    ),
    (
        alert(
            "implausible_duration",
            {
                "count": 1,
                "longest_ms": 13 * HOUR_MS + 5 * MINUTE_MS,
                "max_patrol_ms": 12 * HOUR_MS,
                "patrols": ["p"],
            },
        ),
        "1 次巡查时长不合理：最长 13 小时 5 分钟（上限 12 小时）",
    ),
    (
        alert("outside_grid", {"count": 2, "lowest_inside_share": 0.1, "min_inside_share": 0.5}),
        "2 次巡查大部分不在网格内：网格内占比最低 10%（要求至少 50%）",
    ),
    (
        alert("impossible_speed", {"count": 1, "fastest_mps": 41.26, "max_speed_mps": 30}),
        "1 次巡查移动速度异常：最高 41.3 米/秒（上限 30 米/秒）",
    ),
    (
        alert("never_moved", {"count": 1, "max_distance_m": 12.4, "never_moved_m": 50}),
        "1 次巡查几乎没有移动：最远 12 米（至少应移动 50 米）",
    ),
    (alert("mock_location", {"count": 3}), "3 次巡查使用了模拟定位"),
    (alert("shared_device", {"count": 1}), "1 次巡查与其他网格员在同一部手机上的巡查时间重叠"),
]


@pytest.mark.parametrize(("given", "expected"), CASES, ids=[c[0].rule for c in CASES])
def test_each_rules_evidence_in_words(given: Alert, expected: str) -> None:
    assert words.evidence(given, NOW, TZ) == expected


def test_every_offered_rule_has_a_name_and_a_sentence() -> None:
    for rule in words.RULES:
        assert f"alert.rule.{rule}" in ZH
        if rule not in (
            "quota_missed",
            "quota_at_risk",
            "visit_overdue",
            "follow_up_open",
            "device_silent",
        ):
            assert f"alert.ev.{rule}" in ZH


def test_missing_figures_or_an_unknown_rule_still_render() -> None:
    assert words.evidence(alert("quota_missed", {}), NOW, TZ) == ZH["alert.ev.none"]
    assert words.evidence(alert("a_new_rule", {"x": 1}), NOW, TZ) == ZH["alert.ev.none"]
    assert words.rule_name("a_new_rule") == "a_new_rule"


def test_age_and_spans() -> None:
    assert words.age(NOW - 3 * DAY_MS - HOUR_MS, NOW) == "3 天前"
    assert words.age(NOW - 5 * HOUR_MS, NOW) == "5 小时前"
    assert words.age(NOW - 12 * MINUTE_MS, NOW) == "12 分钟前"
    assert words.age(NOW - 1000, NOW) == "刚刚"
    assert words.age(NOW + 1000, NOW) == "刚刚"
    assert words.span(45 * MINUTE_MS) == "45 分钟"
    assert words.when(None, TZ) == "—"
