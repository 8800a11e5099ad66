"""The console's navigation: one entry per page that exists, in the order shown.

A page adds itself with one line here (its key, its label's key in ``strings.ZH``, its URL);
the base layout marks the entry whose key the page passes as ``active``.
"""

from __future__ import annotations

from typing import NamedTuple


class NavItem(NamedTuple):
    key: str
    label: str
    """A key of ``strings.ZH``."""
    href: str


NAV: tuple[NavItem, ...] = (
    NavItem("overview", "nav.overview", "/"),
    NavItem("alerts", "nav.alerts", "/alerts"),
    NavItem("workers", "nav.workers", "/workers"),
    NavItem("households", "nav.households", "/households"),
    NavItem("exports", "nav.exports", "/exports"),
    NavItem("invitations", "nav.invitations", "/invitations"),
    NavItem("settings", "nav.settings", "/settings"),
)
