"""The demo's check: the server's alerts against the truth of the scenario, key by key, and the
summary by street and community and by rule.

An alert is *false* when the truth has no alert of its key, or one in another status (or, while
live, at another escalation level); *missed* when the truth has one and the server none. The
check passes when no rule has a false or a missed alert, every check-in recorded was stored,
and the scenario exercised what it promises: every simulated rule raised an alert, late data
auto-resolved a quota miss, and some alert went up the tree.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from client import oracle
from client.scenario import SIMULATED_RULES, TZ, Scenario, local_minute
from client.simulate import Result
from client.stops import Played
from rules.findings import RULES
from server.store.totals import Totals

LIVE = ("open", "acknowledged")
STATUSES = ("open", "acknowledged", "resolved", "auto_resolved")
FIGURES = ("raised", "open", "auto_resolved", "resolved", "escalated", "false", "missed")
COLUMNS = {
    "check-ins": "checkins",
    "notes": "notes",
    "quota": "quota_missed",
    "overdue": "visit_overdue",
    "other": "quality",
    "auto": "auto_resolved",
    "resolved": "resolved",
    "escal.": "escalated",
}
"""The community table's columns (short, to fit 80 columns) and what each counts."""
HEADS = {"auto_resolved": "auto", "escalated": "escal."}


@dataclass
class Check:
    by_rule: dict[str, Counter[str]]
    differences: list[str]

    @property
    def false(self) -> int:
        return sum(c["false"] for c in self.by_rule.values())

    @property
    def missed(self) -> int:
        return sum(c["missed"] for c in self.by_rule.values())


def _key(scenario: Scenario, alert: dict[str, Any]) -> oracle.Key:
    period = alert["period"]
    if alert["rule"] == "device_silent":  # the minute of the last contact: name its stop
        at = datetime.strptime(period, "%Y-%m-%dT%H:%M").replace(tzinfo=TZ)
        period = local_minute(scenario.stop_of(int(at.timestamp() * 1000) + 59_999).at_ms)
    return (alert["rule"], alert["subject_kind"], alert["subject_id"], period)


def compare(
    scenario: Scenario, expected: dict[oracle.Key, oracle.Expected], found: list[dict[str, Any]]
) -> Check:
    """Every alert the server holds against every alert the truth says it must hold."""
    by_rule: dict[str, Counter[str]] = {rule: Counter() for rule in RULES}
    differences: list[str] = []
    actual = {_key(scenario, a): a for a in found}
    for key, a in sorted(actual.items()):
        counts = by_rule[key[0]]
        counts["raised"] += 1
        counts["open" if a["status"] in LIVE else a["status"]] += 1
        counts["escalated"] += a["level"] > 0
        want = expected.get(key)
        shown = " ".join(k for k in key if k)
        if want is None:
            counts["false"] += 1
            differences.append(f"false alert: {shown} ({a['status']}, level {a['level']})")
        elif want.status != a["status"] or (want.live and want.level != a["level"]):
            counts["false"] += 1
            differences.append(
                f"wrong alert: {shown} is {a['status']} at level {a['level']},"
                f" the truth says {want.status} at level {want.level}"
            )
    for key in sorted(expected.keys() - actual.keys()):
        by_rule[key[0]]["missed"] += 1
        want = expected[key]
        differences.append(f"missed alert: {' '.join(k for k in key if k)} ({want.status})")
    return Check(by_rule, differences)


def _places(doc: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """grid → community id, worker → community id."""
    community: dict[str, str] = {}
    for street in doc["units"][0]["children"]:
        for c in street["children"]:
            for grid in c["children"]:
                community[grid["id"]] = c["id"]
    return community, {w["id"]: community[w["grids"][0]] for w in doc["workers"]}


def community_table(doc: dict[str, Any], found: list[dict[str, Any]], played: Played) -> Table:
    """Check-ins, notes and alerts by street and community, named as in the import document;
    every community has a row (zeros when nothing happened there), plus a total."""
    table = Table(
        title=f"{doc['units'][0]['name']}: by street and community",
        caption="open: quota misses, overdue visits, other (data quality, follow-ups); "
        "auto-resolved, resolved by a supervisor, escalated (any status)",
    )
    table.add_column("street / community", no_wrap=True)
    for column in COLUMNS:
        table.add_column(column, justify="right")
    of_grid, of_worker = _places(doc)
    by: dict[str, Counter[str]] = {}
    for key in played.checkins:
        by.setdefault(of_worker[key.split(":")[0]], Counter())["checkins"] += 1
    for worker, _ in played.notes:
        by.setdefault(of_worker[worker], Counter())["notes"] += 1
    for a in found:
        counts = by.setdefault(of_grid.get(a["unit_id"], ""), Counter())
        if a["status"] in LIVE:
            rule = a["rule"]
            counts[rule if rule in ("quota_missed", "visit_overdue") else "quality"] += 1
        else:
            counts[a["status"]] += 1
        counts["escalated"] += a["level"] > 0
    total: Counter[str] = Counter()
    for street in doc["units"][0]["children"]:
        table.add_row(street["name"], style="bold")
        for community in street["children"]:
            counts = by.get(community["id"], Counter())
            total.update(counts)
            table.add_row(f"  {community['name']}", *(str(counts[k]) for k in COLUMNS.values()))
    table.add_row("total", *(str(total[k]) for k in COLUMNS.values()), style="bold")
    return table


def rule_table(check: Check) -> Table:
    table = Table(title="alerts by rule, against the truth")
    table.add_column("rule", no_wrap=True)
    for figure in FIGURES:
        table.add_column(HEADS.get(figure, figure), justify="right")
    for rule, counts in check.by_rule.items():
        style = "red" if counts["false"] or counts["missed"] else None
        table.add_row(rule, *(str(counts[f]) for f in FIGURES), style=style)
    return table


def figures(
    check: Check,
    result: Result,
    totals: Totals,
    expected: dict[oracle.Key, oracle.Expected],
    weeks: int,
) -> dict[str, Any]:
    """The last line's JSON."""
    by_rule = {rule: {f: counts[f] for f in FIGURES} for rule, counts in check.by_rule.items()}
    return {
        "checkins": totals.checkins,
        "amendments": result.amendments,
        "notes": totals.notes,
        "duplicates_absorbed": result.duplicates_absorbed,
        "replies_lost": result.replies_lost,
        "conflicts_merged": totals.conflicts,
        "alerts": sum(c["open"] for c in check.by_rule.values()),
        "auto_resolved": sum(c["auto_resolved"] for c in check.by_rule.values()),
        "resolved": sum(c["resolved"] for c in check.by_rule.values()),
        "escalated": sum(c["escalated"] for c in check.by_rule.values()),
        "escalation_steps": totals.escalation_steps,
        "true_quota_misses": sum(k[0] == "quota_missed" for k in expected),
        "true_overdue_households": sum(
            k[0] == "visit_overdue" and e.live for k, e in expected.items()
        ),
        "false_alerts": check.false,
        "missed_alerts": check.missed,
        "by_rule": by_rule,
        "weeks": weeks,
    }


def shortfalls(check: Check, result: Result, totals: Totals) -> list[str]:
    """Why the check fails, beside false and missed alerts: what was not exercised or lost."""
    found = []
    if totals.checkins != result.checkins + result.amendments:
        found.append(
            f"{result.checkins + result.amendments} check-ins and amendments recorded,"
            f" {totals.checkins} stored"
        )
    quiet = [r for r in SIMULATED_RULES if not check.by_rule[r]["raised"]]
    if quiet:
        found.append(f"no alert raised by {', '.join(quiet)}")
    if not check.by_rule["quota_missed"]["auto_resolved"]:
        found.append("no quota miss was auto-resolved by late data")
    if not sum(c["escalated"] for c in check.by_rule.values()):
        found.append("no alert was escalated")
    return found


def summarise(
    console: Console,
    doc: dict[str, Any],
    check: Check,
    figures: dict[str, Any],
    played: Played,
    found: list[dict[str, Any]],
    problems: list[str],
) -> bool:
    """Print the tables and the verdict; True when the alerts equal the truth."""
    console.print(community_table(doc, found, played))
    console.print(rule_table(check))
    ok = not check.differences and not problems
    verdict = "[green]alerts equal the truth[/]" if ok else "[red]alerts differ from the truth[/]"
    console.print(
        f"{figures['checkins']} check-ins (with {figures['amendments']} amendments) and"
        f" {figures['notes']} notes synced; {figures['replies_lost']} replies lost after the"
        f" commit, {figures['duplicates_absorbed']} resent pushes answered from their receipt"
        " (a reply lost twice is resent once); "
        f"{figures['conflicts_merged']} conflicting"
        f" values kept; {figures['alerts']} alerts open, {figures['auto_resolved']} auto-resolved,"
        f" {figures['resolved']} resolved by supervisors, {figures['escalated']} escalated"
        f" — {verdict}"
    )
    for line in check.differences[:20] + problems:
        console.print(f"  {line}")
    return ok
