"""The simulated district's shape and names: a worker's grids lie in one community, every grid
has a worker, units and people carry Chinese names while ids stay ASCII, addresses name the
building, entrance and flat, and the document imports as it is."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import msgspec
import pytest

from client import district, names, simulate
from patrolsync import importer

SHAPES = [simulate.SMALL, simulate.JINTAI, simulate.Shape(3, 2, 11, 3)]
HAN = re.compile(r"^[\u4e00-\u9fff0-9]+$")
ADDRESS = re.compile(r"^[\u4e00-\u9fff0-9]+\d+号楼\d+单元\d{3,}室$")
TIERS = ("high_risk", "key", "general")
ASCII_ID = re.compile(r"^[A-Za-z0-9_.:-]+$")


def _units(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def walk(nodes: list[dict[str, Any]]) -> None:
        for node in nodes:
            out.append(node)
            walk(node.get("children", []))

    walk(doc["units"])
    return out


def _community_of(doc: dict[str, Any]) -> dict[str, str]:
    return {
        grid["id"]: community["id"]
        for street in doc["units"][0]["children"]
        for community in street["children"]
        for grid in community["children"]
    }


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_each_worker_looks_after_grids_of_one_community_and_every_grid_has_one(
    shape: simulate.Shape,
) -> None:
    doc = simulate.district(shape, seed=3)
    community = _community_of(doc)
    assert len(community) == shape.communities * shape.grids_per_community
    assert len(doc["workers"]) == shape.workers
    for worker in doc["workers"]:
        assert worker["grids"], worker
        assert len({community[g] for g in worker["grids"]}) == 1, worker
    covered = {g for w in doc["workers"] for g in w["grids"]}
    assert covered == set(community)
    # Every community has workers, spread evenly (at most one apart).
    per = Counter(community[w["grids"][0]] for w in doc["workers"])
    assert set(per) == set(community.values())
    assert max(per.values()) - min(per.values()) <= 1
    # Some grids have two workers, so some notes are written by two phones.
    assert any(n > 1 for n in Counter(g for w in doc["workers"] for g in w["grids"]).values())


def test_jintai_has_the_domain_notes_size_and_most_workers_two_grids() -> None:
    doc = simulate.district(simulate.JINTAI, seed=2026)
    units = Counter(u["kind"] for u in _units(doc))
    assert units == {"district": 1, "street": 9, "community": 59, "grid": 1298}
    grids = Counter(len(w["grids"]) for w in doc["workers"])
    assert grids[2] > len(doc["workers"]) / 2 and max(grids) <= 3


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_names_are_chinese_and_distinct_and_ids_ascii(shape: simulate.Shape) -> None:
    doc = simulate.district(shape, seed=3)
    units = _units(doc)
    for unit in units:
        assert ASCII_ID.match(unit["id"]) and HAN.match(unit["name"]), unit
    for kind, suffix in (("street", "街道"), ("community", "社区"), ("grid", "网格")):
        named = [u["name"] for u in units if u["kind"] == kind]
        assert len(set(named)) == len(named) and all(n.endswith(suffix) for n in named)
    assert units[0]["name"] == names.DISTRICT
    community = next(u for u in units if u["kind"] == "community")
    last = community["children"][-1]["name"]
    assert last == f"{community['name']}第{shape.grids_per_community}网格"
    people = [w["name"] for w in doc["workers"]] + [h["head_name"] for h in doc["households"]]
    for name in people:
        assert 2 <= len(name) <= 3 and name[0] in names.SURNAMES and HAN.match(name)
    for record in doc["workers"] + doc["households"] + doc["supervisors"]:
        assert ASCII_ID.match(record["id"])


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_supervisors_at_every_level_and_households_with_addresses(shape: simulate.Shape) -> None:
    doc = simulate.district(shape, seed=3)
    kinds = {u["id"]: u["kind"] for u in _units(doc)}
    led = Counter(kinds[s["unit"]] for s in doc["supervisors"])
    assert led["district"] == 1
    for kind in ("street", "community", "grid"):
        assert led[kind] == sum(k == kind for k in kinds.values()), kind
    for s in doc["supervisors"]:
        role = {"street": "街道办", "community": "书记", "grid": "网格长"}.get(kinds[s["unit"]])
        assert role is None or role in s["name"], s
    addresses = [h["address"] for h in doc["households"]]
    assert len(set(addresses)) == len(addresses)
    assert all(ADDRESS.match(a) for a in addresses), addresses[:3]
    assert all(h["head_name"] for h in doc["households"])


def test_care_tiers_in_proportion_with_fitting_tags() -> None:
    doc = simulate.district(simulate.JINTAI, seed=2026)
    tiers = Counter(h["care_tier"] for h in doc["households"])
    total = sum(tiers.values())
    for tier, share in (("high_risk", 0.2), ("key", 0.3), ("general", 0.5)):
        assert abs(tiers[tier] / total - share) < 0.02, tiers
    for h in doc["households"]:
        assert h["tags"] in [list(t) for t in district.TAGS[h["care_tier"]]]


def test_the_district_depends_only_on_its_seed_and_imports_as_it_is() -> None:
    one = simulate.district(simulate.SMALL, seed=7)
    assert one == simulate.district(simulate.SMALL, seed=7)
    assert one != simulate.district(simulate.SMALL, seed=8)
    loaded = msgspec.convert(one, importer.ImportDoc)
    assert len(loaded.households) == len(one["households"])


def test_notes_use_the_articles_words() -> None:
    doc = simulate.district(simulate.SMALL, seed=5)
    phones, _ = simulate.plan_week(doc, 0, seed=5)
    texts = [(outcome, text) for p in phones for _, _, _, outcome, text in p.visits]
    assert texts
    for outcome, text in texts:
        pool = names.NOTES_MET if outcome == "met" else names.NOTES_NOT_HOME
        assert text in pool


def test_name_lists_never_collide() -> None:
    for listed in (names.STREETS, names.COMMUNITIES, names.COMPOUNDS, names.GIVEN):
        assert len(set(listed)) == len(listed)
    assert len(set(names.SURNAMES)) == len(names.SURNAMES)
    many = 3 * len(names.COMMUNITIES)
    assert len({names.community_name(i) for i in range(many)}) == many
    assert len({names.street_name(i) for i in range(many)}) == many
    compounds = [names.compound_name("卧龙社区", g) for g in range(30)]
    assert len(set(compounds)) == 30
    assert names.address("卧龙小区", 0) == "卧龙小区1号楼1单元101室"
    assert names.address("卧龙小区", 13) == "卧龙小区1号楼2单元102室"
    assert len({names.address("卧龙小区", h) for h in range(500)}) == 500


def test_overdue_over_weeks_follows_each_tiers_cycle() -> None:
    doc = simulate.district(simulate.SMALL, seed=5)
    by_tier = {t: next(h["id"] for h in doc["households"] if h["care_tier"] == t) for t in TIERS}
    since = 0
    day = 86_400_000
    met = simulate.Phone("w0000", "c00-g00", 0)
    met.visits = [(by_tier["high_risk"], "n1", 20 * day, "met", "x")]
    not_home = simulate.Phone("w0001", "c00-g00", 0)
    not_home.visits = [(by_tier["key"], "n2", 25 * day, "not_home", "y")]
    phones = [met, not_home]
    at = simulate.overdue_at(doc, phones, simulate.Truth(), 27 * day, since)
    assert by_tier["high_risk"] not in at  # met 7 days before: not more than a cycle
    assert by_tier["key"] not in at and by_tier["general"] not in at
    at = simulate.overdue_at(doc, phones, simulate.Truth(), 27 * day + 1, since)
    assert by_tier["high_risk"] in at
    later = simulate.overdue_at(doc, phones, simulate.Truth(), 31 * day + 1, since)
    assert by_tier["key"] in later  # nobody home does not count: due from coming under care
    assert by_tier["general"] not in later
    assert by_tier["general"] in simulate.overdue_at(doc, [], simulate.Truth(), 93 * day, since)
