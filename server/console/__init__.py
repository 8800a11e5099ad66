"""The supervisors' web console: server-rendered pages (Jinja2 through Litestar's template
engine, htmx vendored in ``static/``), served by the API's app at ``/`` (the API stays under
``/v1/``). See ``README.md`` beside this file for how to add a page, a string and a test.

``router`` holds every page; ``static`` serves ``static/``; ``web.template_config()`` is the
app's template engine.
"""

from __future__ import annotations

from litestar import Router
from litestar.di import Provide
from litestar.static_files import create_static_files_router

from server.console import (
    alert_actions,
    alerts,
    exports_page,
    invitations_page,
    login,
    overview,
    settings_page,
    visits,
    web,
    workers,
)

PAGES = (
    *login.HANDLERS,
    *overview.HANDLERS,
    *alerts.HANDLERS,
    *alert_actions.HANDLERS,
    *workers.HANDLERS,
    *visits.HANDLERS,
    *settings_page.HANDLERS,
    *exports_page.HANDLERS,
    *invitations_page.HANDLERS,
)
"""Every console handler; a new page module adds its ``HANDLERS`` here."""

router = Router(
    path="/",
    route_handlers=list(PAGES),
    guards=[web.csrf_guard],
    dependencies={
        "svc": Provide(web.provide_services, sync_to_thread=False),
        "viewer": Provide(web.provide_viewer),
    },
    exception_handlers=web.EXCEPTION_HANDLERS,
    include_in_schema=False,
)

static = create_static_files_router(
    path="/static", directories=[web.STATIC], name="console-static", include_in_schema=False
)

__all__ = ["router", "static"]
