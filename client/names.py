"""Names for the simulated district, made from the vocabulary of the domain notes' articles.

The places come first from the articles themselves (金台区, 东风路街道, 卧龙社区, 宝铁社区, 渭滨区,
桥南街道, 锦园社区, 南苑社区 …), then from ordinary place words of the same cities, so that a
Jintai-sized district (59 communities) needs no numbered names. The notes a worker writes reuse
the articles' words (独居老人, 微心愿, 代办服务, 停水, 轮椅坡道, 物业 …).

Invariants: every list holds distinct entries; ``community_name(i)`` and ``street_name(i)`` are
distinct for every ``i`` (a number is appended only once a list is used up), so names never
collide inside one district. This module is data only: no randomness, no I/O.
"""

from __future__ import annotations

DISTRICT = "金台区"

STREETS = (
    "东风路街道",
    "桥南街道",
    "永安路街道",
    "中山东路街道",
    "群众路街道",
    "西关街道",
    "卧龙寺街道",
    "十里铺街道",
    "清姜街道",
    "经二路街道",
    "金陵街道",
    "姜谭路街道",
    "云潭街道",
    "宾阳街道",
    "金阳街道",
)

COMMUNITIES = (
    "卧龙社区",
    "宝铁社区",
    "新华社区",
    "群众路社区",
    "锦园社区",
    "南苑社区",
    "东风社区",
    "红旗社区",
    "宇虹社区",
    "碧雅社区",
    "邻德社区",
    "碧海社区",
    "金元社区",
    "三迪社区",
    "渭工路社区",
    "学子路社区",
    "方泉社区",
    "渭水苑社区",
    "水道巷社区",
    "铁路新村社区",
    "电务段社区",
    "中山路社区",
    "西关社区",
    "东岭社区",
    "长乐塬社区",
    "金台观社区",
    "陈仓园社区",
    "石油社区",
    "店子街社区",
    "北坡社区",
    "卧龙寺社区",
    "十里铺社区",
    "福临堡社区",
    "斗鸡台社区",
    "蒙家庄社区",
    "三星社区",
    "雍城社区",
    "峪泉社区",
    "高家村社区",
    "联盟社区",
    "胜利社区",
    "和平社区",
    "团结社区",
    "幸福社区",
    "光明社区",
    "解放社区",
    "建设社区",
    "友谊社区",
    "清姜社区",
    "姜城堡社区",
    "经二路社区",
    "宝光社区",
    "公园路社区",
    "桥南社区",
    "渭滨社区",
    "金陵社区",
    "石坝河社区",
    "神农社区",
    "马营社区",
    "引渭社区",
    "太平社区",
    "长寿社区",
)

COMPOUNDS = (
    "小区",
    "家属院",
    "新村",
    "花园",
    "佳苑",
    "公寓",
    "大院",
)
"""Suffixes of a grid's residential compound (a grid is often one compound 小区)."""

SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"

GIVEN = (
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "娟",
    "涛",
    "慧",
    "海龙",
    "占礼",
    "秋莲",
    "尚军",
    "娟娟",
    "建国",
    "秀英",
    "桂兰",
    "志强",
    "玉梅",
    "红霞",
    "建华",
    "小燕",
    "永刚",
)

NOTES_MET = (
    "老人身体不错，按时吃药",
    "独居老人，子女在外地，已留联系电话",
    "家里暖气不热，已反映物业",
    "收集微心愿：想要一个轮椅坡道",
    "需要代办医保报销，材料已带回社区",
    "孩子放学无人照看，已联系社区志愿者",
    "楼道灯坏了，已报物业维修",
    "小区停水，已协调临时供水",
    "困难家庭，协助申请临时救助",
    "老人行动不便，代办高龄补贴认证",
    "反映小区垃圾清运不及时",
    "宣传防诈骗知识，老人已知晓",
    "消防通道被占，已劝导挪车",
    "微心愿已认领，志愿者本周送达",
)

NOTES_NOT_HOME = (
    "入户未见人，已电话联系家属",
    "敲门无人应答，邻居说去子女家了",
    "家中无人，留下联系卡",
)

UNITS_PER_BUILDING = 3
FLOORS = 6
ROOMS_PER_FLOOR = 2


def street_name(i: int) -> str:
    """The ``i``-th street's name (distinct for every ``i``)."""
    return _pick(STREETS, i, "街道")


def community_name(i: int) -> str:
    """The ``i``-th community's name (distinct for every ``i``)."""
    return _pick(COMMUNITIES, i, "社区")


def grid_name(community: str, g: int) -> str:
    """A grid as the articles name it: ``卧龙社区第3网格`` (``g`` counts from 0)."""
    return f"{community}第{g + 1}网格"


def compound_name(community: str, g: int) -> str:
    """The residential compound of a community's ``g``-th grid, e.g. ``卧龙家属院``."""
    root = community.removesuffix("社区")
    suffix = COMPOUNDS[g % len(COMPOUNDS)]
    rounds = g // len(COMPOUNDS)
    return f"{root}{suffix}" + (f"{rounds + 1}区" if rounds else "")


def address(compound: str, h: int) -> str:
    """The ``h``-th household's address in a compound, ``…号楼…单元…室`` (distinct per ``h``)."""
    per_unit = FLOORS * ROOMS_PER_FLOOR
    per_building = UNITS_PER_BUILDING * per_unit
    building, rest = divmod(h, per_building)
    unit, rest = divmod(rest, per_unit)
    floor, room = divmod(rest, ROOMS_PER_FLOOR)
    return f"{compound}{building + 1}号楼{unit + 1}单元{floor + 1}{room + 1:02d}室"


def _pick(names: tuple[str, ...], i: int, suffix: str) -> str:
    if i < len(names):
        return names[i]
    base = names[i % len(names)].removesuffix(suffix)
    return f"{base}{i // len(names) + 1}{suffix}"


NEEDS = (
    "需协助申请居家养老服务，下次入户带回申请表",
    "反映楼道扶手松动，需联系物业维修后回访",
    "老人想办理助餐卡，需社区代办",
    "家属希望安装燃气报警器，需协调安装",
    "需联系社区医生上门随访",
    "微心愿待认领：代购一台收音机",
)
"""Needs written on a visit note that leave a follow-up open."""
