"""The simulated district: 金台区 → streets → communities → grids, its workers, supervisors and
households, as an import document. Names come from :mod:`client.names`; ids are ASCII and stable.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from client import names


@dataclass(frozen=True)
class Shape:
    """A district's size. ``JINTAI`` is the district of the domain notes (753 workers for about
    1,300 grids in 59 communities: most look after two grids of their community)."""

    communities: int
    grids_per_community: int
    workers: int
    households_per_grid: int
    streets: int = 0
    """Street offices; 0: one for every six communities (at least one)."""


JINTAI = Shape(communities=59, grids_per_community=22, workers=753, households_per_grid=12)
SMALL = Shape(communities=2, grids_per_community=3, workers=8, households_per_grid=4)

COMMUNITIES_PER_STREET = 6
TIERS = ("high_risk",) * 2 + ("key",) * 3 + ("general",) * 5
"""Care tiers drawn for households: 2 in 10 high-risk, 3 key, 5 general."""
TAGS = {
    "high_risk": (["elderly", "living_alone"], ["elderly", "empty_nest"], ["left_behind"]),
    "key": (["elderly", "disability"], ["elderly", "dementia"], ["extreme_poverty"], ["orphan"]),
    "general": ([], ["elderly"], ["difficulty"]),
}
"""Tags that fit each tier (DOMAIN.md: high-risk = 80+ living alone, empty-nest or left-behind;
key = 60+ with disability or dementia, 特困, orphans)."""


def person(rng: random.Random) -> str:
    """A plausible Chinese name: a surname and a one- or two-character given name."""
    return rng.choice(names.SURNAMES) + rng.choice(names.GIVEN)


def community_workers(shape: Shape) -> list[int]:
    """How many workers each community has: the district's workers spread evenly, the first
    communities taking one more when they do not divide."""
    base, extra = divmod(shape.workers, shape.communities)
    return [base + (c < extra) for c in range(shape.communities)]


def district(shape: Shape, seed: int = 1) -> dict[str, Any]:
    """An import document: 金台区 → streets → communities → grids, with names after the domain
    notes; workers, each looking after grids of **one** community (every grid has a worker; one
    worker in ten also shares a neighbour's grid, so some notes are written by two phones);
    supervisors (the district centre, each street office, each community secretary, each grid
    leader); households with addresses (…号楼…单元…室), heads of household and care tiers.

    Ids are ASCII and stable (``sim``, ``s0``, ``c00``, ``c00-g00``, ``c00-g00-h00``,
    ``w0000``, ``sup-…``); the names carry the Chinese. The document depends only on ``shape``
    and ``seed``."""
    rng = random.Random(seed)
    streets = shape.streets or max(1, shape.communities // COMMUNITIES_PER_STREET)
    cids = [f"c{c:02d}" for c in range(shape.communities)]
    cnames = [names.community_name(c) for c in range(shape.communities)]
    grids = {cid: [f"{cid}-g{g:02d}" for g in range(shape.grids_per_community)] for cid in cids}
    gname = {
        gid: names.grid_name(cname, g)
        for cid, cname in zip(cids, cnames, strict=True)
        for g, gid in enumerate(grids[cid])
    }
    units = [
        {
            "id": "sim",
            "kind": "district",
            "name": names.DISTRICT,
            "code": "610303",
            "children": [
                {
                    "id": f"s{s}",
                    "kind": "street",
                    "name": names.street_name(s),
                    "code": f"610303{s + 1:03d}",
                    "children": [
                        {
                            "id": cid,
                            "kind": "community",
                            "name": cname,
                            "children": [
                                {"id": g, "kind": "grid", "name": gname[g]} for g in grids[cid]
                            ],
                        }
                        for c, (cid, cname) in enumerate(zip(cids, cnames, strict=True))
                        if c % streets == s
                    ],
                }
                for s in range(streets)
            ],
        }
    ]
    workers: list[dict[str, Any]] = []
    for cid, count in zip(cids, community_workers(shape), strict=True):
        own = [grids[cid][j::count] or [grids[cid][j % len(grids[cid])]] for j in range(count)]
        for j in range(0, count - 1, 10):
            own[j] = [*own[j], *(g for g in own[j + 1][:1] if g not in own[j])]
        workers += [
            {"id": f"w{len(workers) + j:04d}", "name": person(rng), "grids": own[j]}
            for j in range(count)
        ]
    supervisors = [{"id": "sup-sim", "name": f"{names.DISTRICT}网格化服务管理中心", "unit": "sim"}]
    supervisors += [
        {"id": f"sup-s{s}", "name": f"{names.street_name(s)}办{person(rng)}", "unit": f"s{s}"}
        for s in range(streets)
    ]
    supervisors += [
        {"id": f"sup-{cid}", "name": f"{cname}书记{person(rng)}", "unit": cid}
        for cid, cname in zip(cids, cnames, strict=True)
    ]
    supervisors += [
        {"id": f"sup-{g}", "name": f"{gname[g]}网格长{person(rng)}", "unit": g}
        for cid in cids
        for g in grids[cid]
    ]
    households = []
    for cid, cname in zip(cids, cnames, strict=True):
        for g, gid in enumerate(grids[cid]):
            compound = names.compound_name(cname, g)
            for h in range(shape.households_per_grid):
                tier = rng.choice(TIERS)
                households.append(
                    {
                        "id": f"{gid}-h{h:02d}",
                        "grid": gid,
                        "address": names.address(compound, h),
                        "head_name": person(rng),
                        "tags": list(rng.choice(TAGS[tier])),
                        "care_tier": tier,
                    }
                )
    return {
        "units": units,
        "workers": workers,
        "supervisors": supervisors,
        "households": households,
    }
