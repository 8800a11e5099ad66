"""Every user-facing string of the console, in Simplified Chinese: one table, so another
language can follow (a second table with the same keys, chosen per request).

Keys are dotted by page (``login.*``, ``overview.*``); templates read them as ``t["key"]``,
Python as ``ZH["key"]``. A key used and missing fails loudly (``StrictUndefined`` in the
templates, ``KeyError`` in Python); tests/unit/test_console_strings.py checks every key a
template names exists.
"""

from __future__ import annotations

LANG = "zh-CN"

ZH: dict[str, str] = {
    "app.name": "网格巡查督导台",
    "a11y.skip": "跳到正文",
    "nav.label": "主导航",
    "nav.overview": "本周概览",
    "nav.alerts": "预警",
    "nav.workers": "网格员",
    "nav.households": "走访",
    "nav.settings": "设置",
    "session.who": "当前用户",
    "session.logout": "退出登录",
    # log in
    "login.title": "登录",
    "login.heading": "督导人员登录",
    "login.supervisor_id": "督导账号",
    "login.password": "密码",
    "login.submit": "登录",
    "login.wrong": "账号或密码不正确，请重新输入。",
    "login.hint": "密码由系统管理员设置。忘记密码请联系管理员重置。",
    # errors
    "error.title": "出错了",
    "error.back": "返回本周概览",
    "error.404.title": "找不到该页面",
    "error.404.body": "您要查看的单位不存在，或不在您的管辖范围内。",
    "error.403.title": "请求被拒绝",
    "error.403.body": "表单已失效或来源不明（安全校验未通过）。请刷新页面后重试。",
    "error.429.title": "尝试次数过多",
    "error.429.body": "登录失败次数过多，请 {seconds} 秒后再试。",
    "error.500.title": "系统暂时无法处理",
    "error.500.body": "请稍后再试；如果问题持续，请联系系统管理员。",
    # the week overview
    "overview.title": "本周概览",
    "overview.unit": "单位",
    "overview.this_week": "本周（{week}，进行中）",
    "overview.last_week": "上周（{week}，已结算）",
    "overview.running": "本周尚未结束，数字仍会变化。",
    "overview.final": "上周已结算，为最终结果。",
    "overview.meeting": "达标网格员 / 全部",
    "overview.patrols": "有效巡查次数",
    "overview.overdue": "逾期未走访户数",
    "overview.alerts": "未处理预警",
    "overview.total": "合计",
    "overview.children": "下级单位",
    "overview.no_children": "该单位没有下级单位。",
    "overview.breadcrumb": "所在位置",
    "overview.caption": "{unit}各下级单位的巡查达标情况",
    "overview.caption_self": "{unit}的巡查达标情况",
    "overview.grid_note": "这是一个网格，没有下级单位。",
    # unit kinds
    "kind.district": "区",
    "kind.street": "街道",
    "kind.community": "社区",
    "kind.grid": "网格",
    "kind.building": "楼栋",
}
