"""Every string key the console's templates and nav name exists in ``strings.ZH``, every
template parses, and no template carries a literal Chinese text of its own."""

from __future__ import annotations

import re

from jinja2 import Environment, FileSystemLoader

from server.console.nav import NAV
from server.console.strings import ZH
from server.console.web import TEMPLATES

KEY = re.compile(r"""t\[\s*["']([a-z0-9_.]+)["']\s*\]""")
HAN = re.compile(r"[\u4e00-\u9fff]")


def test_every_key_a_template_names_exists_and_no_text_is_left_in_a_template() -> None:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True)
    names = sorted(p.name for p in TEMPLATES.glob("*.html"))
    assert {"base.html", "login.html", "overview.html", "error.html"} <= set(names)
    used: set[str] = set()
    for name in names:
        source = (TEMPLATES / name).read_text(encoding="utf-8")
        env.parse(source)
        used |= set(KEY.findall(source))
        assert not HAN.findall(re.sub(r"\{#.*?#\}", "", source, flags=re.S)), name
    assert used, "the templates name no strings"
    assert used - ZH.keys() == set()
    assert {item.label for item in NAV} <= ZH.keys()


def test_the_nav_shows_only_pages_that_exist() -> None:
    from server import console

    paths = {route.path for route in console.router.routes}
    assert NAV and NAV[0].href == "/"
    for item in NAV:
        assert item.href in paths, f"the nav links {item.href}, which no console page serves"
