"""The 设置 form's units: what people type (hours, days, counts, %, HH:MM) becomes the policy's
own values (milliseconds, shares), round-trips to what the form shows, and a bad entry is a
message for its field only."""

from __future__ import annotations

from rules.policy import DEFAULTS, check_overrides
from server.console import settings_form as sf
from server.console.strings import ZH
from sync.durations import DAY_MS, HOUR_MS, MINUTE_MS


def test_typed_values_become_policy_values() -> None:
    values, errors = sf.parse(
        {
            "quota_patrols": "4",
            "quota_min_patrol_ms": "3.5",
            "cadence_key_ms": "14",
            "at_risk_time": "9:05",
            "at_risk_weekday": "3",
            "min_inside_share": "75",
            "max_speed_mps": "12,5",
            "grace_ms": "",
        }
    )
    assert errors == {}
    assert values == {
        "quota_patrols": 4,
        "quota_min_patrol_ms": 3 * HOUR_MS + 30 * MINUTE_MS,
        "cadence_key_ms": 14 * DAY_MS,
        "at_risk_time": "09:05",
        "at_risk_weekday": 3,
        "min_inside_share": 0.75,
        "max_speed_mps": 12.5,
    }
    assert check_overrides(values) == values


def test_every_default_shows_and_parses_back_to_itself() -> None:
    for key, field in sf.FIELDS.items():
        default = getattr(DEFAULTS, key)
        values, errors = sf.parse({key: sf.shown(field, default)})
        assert errors == {} and values == {key: default}, key


def test_bad_entries_name_their_field() -> None:
    values, errors = sf.parse(
        {
            "quota_patrols": "2.5",
            "at_risk_below": "-1",
            "grace_ms": "两天",
            "at_risk_time": "24:00",
            "at_risk_weekday": "8",
            "cadence_high_ms": "0",
            "min_inside_share": "101",
            "lateness_ms": "NaN",
            "silent_device_ms": "72",
        }
    )
    assert values == {"silent_device_ms": 72 * HOUR_MS}
    assert errors == {
        "quota_patrols": ZH["settings.err.integer"],
        "at_risk_below": ZH["settings.err.range"].format(low="0", high="10000", unit="次"),
        "grace_ms": ZH["settings.err.number"],
        "at_risk_time": ZH["settings.err.time"],
        "at_risk_weekday": ZH["settings.err.weekday"],
        "cadence_high_ms": ZH["settings.err.range"].format(low="1", high="3650", unit="天"),
        "min_inside_share": ZH["settings.err.range"].format(low="0", high="100", unit="%"),
        "lateness_ms": ZH["settings.err.number"],
    }


def test_durations_read_in_days_hours_and_minutes_never_ms() -> None:
    hours = sf.FIELDS["quota_min_patrol_ms"]
    days = sf.FIELDS["cadence_key_ms"]
    assert sf.text(hours, 4 * HOUR_MS) == "4 小时"
    assert sf.text(hours, 3 * HOUR_MS + 30 * MINUTE_MS) == "3 小时 30 分钟"
    assert sf.text(hours, 0) == "0 小时"
    assert sf.text(days, 31 * DAY_MS) == "31 天"
    assert sf.text(days, DAY_MS + 12 * HOUR_MS) == "1 天 12 小时"
    assert sf.text(sf.FIELDS["at_risk_weekday"], 4) == "周四"
    assert sf.text(sf.FIELDS["min_inside_share"], 0.5) == "50%"
