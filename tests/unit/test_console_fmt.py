"""The console writes durations in hours and minutes, times in the unit's zone, codes in words."""

from __future__ import annotations

from server.console import fmt

MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR


def test_durations_are_hours_and_minutes_never_milliseconds() -> None:
    assert fmt.duration(4 * HOUR + 30 * MIN + 59_999) == "4 小时 30 分钟"
    assert fmt.duration(4 * HOUR) == "4 小时"
    assert fmt.duration(45 * MIN) == "45 分钟"
    assert fmt.duration(-5) == "0 分钟"


def test_times_are_local_to_the_zone() -> None:
    assert fmt.local(0, "Asia/Shanghai") == "1970-01-01 08:00"
    assert fmt.local(0, "UTC") == "1970-01-01 00:00"
    assert fmt.local(None, "UTC") == "—"


def test_overdue_and_skew_in_words() -> None:
    assert fmt.overdue_for(DAY, DAY + 3 * DAY + HOUR) == "3 天"
    assert fmt.overdue_for(DAY, DAY + 2 * HOUR) == "2 小时"
    assert fmt.overdue_for(DAY, DAY) == "未逾期"
    assert fmt.skew(3 * MIN) == "快 3 分钟"
    assert fmt.skew(-2 * HOUR) == "慢 2 小时"
    assert fmt.skew(30_000) == "不到 1 分钟"


def test_codes_have_words_and_an_unknown_one_shows_as_itself() -> None:
    assert fmt.words("flag", "clock_skew") == "手机时钟偏差（已校正）"
    assert fmt.words("finding", "outside_grid") == "轨迹大部分在网格外"
    assert fmt.words("tier", "high_risk") == "高风险"
    assert fmt.words("flag", "brand_new_flag") == "brand_new_flag"
