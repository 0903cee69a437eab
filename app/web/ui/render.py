"""Rendering pages: templates, the user's language, forms, redirects, times in Finnish time."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jinja2
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from markupsafe import Markup, escape

from app.access import roles
from app.access.users import WebUser
from app.rules.plan import blocks as plan_blocks
from app.time import FINNISH_TIME
from app.web.ui.auth import csrf_token, keep_session
from app.web.ui.i18n import DEFAULT_LANGUAGE, LANGUAGES, Translator
from app.worklists.items import open_count

HERE = Path(__file__).parent
LANGUAGE_COOKIE = "reitti_lang"
PAGE_SIZE = 25


@functools.cache
def _templates() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["plan_blocks"] = plan_blocks
    environment.filters["breakable"] = breakable
    # Who sees the register in the menu: the roles its page lets in, named once in app.access.roles.
    environment.globals["READ_INTERPRETATIONS"] = tuple(role.value for role in roles.READ_INTERPRETATIONS)
    return environment


def breakable(identifier: str) -> Markup:
    """An id (`integration.central_customer`) that may wrap after its dots and underscores only."""
    return Markup("<wbr>").join(escape(part) for part in _BREAK_AFTER.split(identifier))


_BREAK_AFTER = re.compile(r"(?<=[._])")


def _language(request: Request) -> str:
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    return chosen if chosen in LANGUAGES else DEFAULT_LANGUAGE


async def _form(request: Request) -> dict[str, str]:
    # Forms are urlencoded and small (BodyLimit caps them): no multipart parser needed.
    body = (await request.body()).decode("utf-8", errors="replace")
    return dict(parse_qsl(body, keep_blank_values=True, max_num_fields=200))


LanguageDep = Annotated[str, Depends(_language)]
FormDep = Annotated[dict[str, str], Depends(_form)]


def render(
    request: Request,
    template: str,
    *,
    user: WebUser | None,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """A page in the visitor's language, with the session's CSRF token for its forms."""
    language = _language(request)
    opened = request.app.state.services  # None when the app is not serving: an error page without names
    t = Translator(language, opened.rules.registry) if opened else None
    html = (
        _templates()
        .get_template(template)
        .render(
            t=t,
            lang=language,
            user=user,
            csrf_token=csrf_token(request),
            here=here(request, notices=False),
            format_time=functools.partial(format_time, language),
            open_items=_open_items(opened, user),
            **context,
        )
    )
    response = HTMLResponse(html, status_code=status, headers=dict(headers or {}))
    keep_session(request, response)
    return response


def _open_items(opened: Any, user: WebUser | None) -> int | None:
    """How many items the user's unit has open, for the navigation; None for those who have no worklist."""
    if opened is None or user is None or user.unit is None or user.role not in roles.STAFF:
        return None
    with opened.read_sessions() as session:
        return open_count(session, user.unit)


# Query flags by which a page says something once ("stored", "recorded"), after a form.
NOTICE_FLAGS = frozenset({"created", "overridden", "taken", "returned"})


def here(request: Request, *, notices: bool = True) -> str:
    """This page's path and query, for the language switch and the login's `next`.

    Without `notices`, the flags of one-time notices are left out: switching the language
    shows the page again, not the "stored" banner of the form sent before it.
    """
    query = request.url.query
    if not notices:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(name in NOTICE_FLAGS for name, _ in pairs):
            query = urlencode([(name, value) for name, value in pairs if name not in NOTICE_FLAGS])
    return f"{request.url.path}?{query}" if query else request.url.path


def safe_next(value: str | None) -> str:
    """A place in the UI to go back to; anything else (another site, the API) goes home."""
    if not value:
        return "/ui"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not parts.path.startswith("/ui") or "\\" in value or "//" in value:
        return "/ui"
    return value


def redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303)


def format_time(language: str, value: str | datetime) -> str:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    local = moment.astimezone(FINNISH_TIME)
    if language == "fi":
        return f"{local.day}.{local.month}.{local.year} klo {local:%H.%M}"
    return f"{local:%Y-%m-%d %H:%M}"
