"""Logging in and out, and choosing the language."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from app.access.throttle import LoginThrottle, TooManyAttempts
from app.access.users import check_password, shown_username
from app.errors import Forbidden
from app.models import Role
from app.web.deps import ReadSessionDep, services
from app.web.ui.auth import COOKIE_PATH, MaybeUserDep, check_csrf, end_session, start_session
from app.web.ui.i18n import LANGUAGES
from app.web.ui.render import LANGUAGE_COOKIE, FormDep, redirect, render, safe_next
from app.web.ui.sso import public_url

log = logging.getLogger("reitti")
router = APIRouter(prefix="/ui", include_in_schema=False)


@router.get("")
def home(user: MaybeUserDep) -> RedirectResponse:
    """Each role's first page; the login page for a visitor."""
    if user is None:
        return redirect("/ui/login")
    first = {Role.coach: "/ui/route", Role.unit: "/ui/worklist", Role.management: "/ui/reports"}
    return redirect(first.get(user.role, "/ui/decisions"))


@router.get("/lang/{language}")
def choose_language(language: str, next: str | None = None) -> RedirectResponse:
    """Switch the UI's language and return to the page."""
    response = redirect(safe_next(next))
    if language in LANGUAGES:
        response.set_cookie(
            LANGUAGE_COOKIE,
            language,
            max_age=365 * 24 * 3600,
            path=COOKIE_PATH,
            httponly=True,
            secure=True,
            samesite="lax",
        )
    return response


@router.get("/login")
def login_page(request: Request, user: MaybeUserDep, next: str | None = None, out: str | None = None) -> Response:
    """The login form (a logged-in user goes on)."""
    if user is not None:
        return redirect(safe_next(next))
    logged_out = out is not None
    return render(request, "login.html", user=None, next=safe_next(next), logged_out=logged_out, **_ways_in(request))


def _ways_in(request: Request) -> dict[str, Any]:
    """Which ways in the login page offers: the identity provider's, local accounts', or both."""
    opened = services(request)
    return {"sso": opened.sign_in is not None, "local_accounts": opened.settings.local_accounts}


@router.post("/login")
def login(request: Request, form: FormDep, session: ReadSessionDep) -> Response:
    """Check the password, then start a session; failures are counted per (name, address) and per address."""
    if not services(request).settings.local_accounts:  # before anything else: no password is even looked at
        raise Forbidden("Local accounts are off (REITTI_LOCAL_ACCOUNTS=off): sign in through the identity provider.")
    check_csrf(request, form)
    username = form.get("username", "")[:64]
    address = request.client.host if request.client else "unknown"
    throttle: LoginThrottle = services(request).login_throttle
    next_page = safe_next(form.get("next"))
    try:
        throttle.check(session, username, address)
    except TooManyAttempts as error:
        minutes = (error.retry_after + 59) // 60
        return render(
            request, "login.html", user=None, status=429, headers=error.headers(), next=next_page,
            throttled=minutes, username=shown_username(username), **_ways_in(request),
        )  # fmt: skip
    row = check_password(session, username, form.get("password", ""))
    with services(request).write_sessions() as writing:
        if row is None:
            throttle.failed(writing, username, address)
        else:
            throttle.succeeded(writing, username, address)
    if row is None:
        shown = shown_username(username)  # never what was typed, unless it is a plain name
        log.info("ui login failed for %r from %s", shown, address)
        return render(
            request, "login.html", user=None, status=401, next=next_page, failed=True, username=shown,
            **_ways_in(request),
        )  # fmt: skip
    log.info("ui login: %s (%s)", row.username, row.role)
    response = redirect(next_page)
    start_session(request, response, row)
    return response


@router.post("/logout")
def logout(request: Request, form: FormDep, user: MaybeUserDep) -> RedirectResponse:
    """End the session; a person of the identity provider goes on to end the provider's too, where it offers that."""
    check_csrf(request, form)
    provider = services(request).sign_in
    signed_out = "/ui/login?out"
    provider_logout = None
    if user is not None and user.issuer is not None and provider is not None:
        provider_logout = provider.end_session_url(public_url(request, signed_out))
    response = redirect(provider_logout or signed_out)
    end_session(request, response)
    return response
