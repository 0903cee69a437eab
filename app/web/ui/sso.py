"""Signing in through the municipality's OpenID provider: the way there, the callback, and the refusals.

The checks are app/access/oidc.py's; here are the browser's cookies and pages. The pending sign-in
(state, nonce, PKCE verifier) rides in a signed cookie of its own, valid ten minutes and only under
/ui/sso; the database is written only once the callback has passed every check.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from app.access.oidc import PENDING_SECONDS, OpenIdProvider, Pending, SignInRefused
from app.access.users import sso_user
from app.errors import NotFound
from app.models import NO_NUMBER, principal_ref, sso_name
from app.web.deps import services
from app.web.ui.auth import start_session
from app.web.ui.render import LanguageDep, redirect, render, safe_next

log = logging.getLogger("reitti")
router = APIRouter(prefix="/ui/sso", include_in_schema=False)

PENDING_COOKIE = "reitti_sso"
PENDING_PATH = "/ui/sso"
# Each refusal's status, by its reason (the page's words are the locales' sso.refused.<reason>).
REFUSAL_STATUS = {"state": 400, "token": 401, "provider": 502, "unmapped": 403, "ambiguous": 403, "disabled": 403}


def provider_of(request: Request) -> OpenIdProvider:
    """The provider; 404 when sign-in through one is not configured."""
    provider = services(request).sign_in
    if provider is None:
        raise NotFound("Sign-in through an identity provider is not configured.")
    return provider


def public_url(request: Request, path: str) -> str:
    """An absolute URL of this service, as browsers reach it (REITTI_PUBLIC_URL behind a proxy)."""
    base = services(request).settings.public_url or str(request.base_url).rstrip("/")
    return f"{base}{path}"


def _refused(request: Request, refused: SignInRefused) -> Response:
    # The message names the check that failed, never a token or a claim's value.
    log.warning("ui sign-in refused (%s): %s", refused.reason, refused)
    status = REFUSAL_STATUS.get(refused.reason, 400)
    response = render(request, "sso_refused.html", user=None, status=status, reason=refused.reason)
    response.delete_cookie(PENDING_COOKIE, path=PENDING_PATH, httponly=True, secure=True, samesite="lax")
    return response


@router.get("/start")
def start(request: Request, language: LanguageDep, next: str | None = None) -> Response:
    """Send the browser to the provider, carrying a new state, nonce and PKCE verifier in a signed cookie."""
    provider = provider_of(request)
    try:
        url, pending = provider.begin(
            redirect_uri=public_url(request, "/ui/sso/callback"), next_page=safe_next(next), language=language
        )
    except SignInRefused as refused:
        return _refused(request, refused)
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        PENDING_COOKIE,
        pending.seal(services(request).session_secret),
        max_age=PENDING_SECONDS,
        path=PENDING_PATH,
        httponly=True,
        secure=True,
        samesite="lax",  # the provider's redirect back is a top-level GET: the cookie comes with it
    )
    return response


@router.get("/callback")
def callback(request: Request) -> Response:
    """Check the provider's answer; then, and only then, record the person and start their session."""
    provider = provider_of(request)
    asked = request.query_params
    answer = {name: asked[name] for name in ("state", "code", "iss", "error") if name in asked}
    opened = services(request)
    try:
        pending = Pending.unseal(opened.session_secret, request.cookies.get(PENDING_COOKIE))
        person = provider.finish(pending, answer, redirect_uri=public_url(request, "/ui/sso/callback"))
        if person.grant.unit is not None and person.grant.unit not in opened.rules.registry.units:
            # The mapping file names a unit the rules do not have: it grants nothing, never a guess.
            unknown = f"the mapping grants unit {person.grant.unit!r}, which the rules do not have"
            raise SignInRefused("unmapped", unknown)
        with opened.write_sessions() as session:
            row = sso_user(
                session,
                issuer=person.issuer,
                subject=person.subject,
                display_name=person.display_name,
                role=person.grant.role,
                municipality=person.grant.municipality,
                unit=person.grant.unit,
            )
            if row.disabled_at is not None:  # raised inside the transaction: the claims' update is rolled back
                raise SignInRefused("disabled", f"{row.username} is disabled in Reitti")
    except SignInRefused as refused:
        return _refused(request, refused)
    who = principal_ref(sso_name(person.issuer, person.subject), NO_NUMBER)
    log.info("ui sign-in: %s (%s)", who, person.grant.role)
    response = redirect(pending.next_page)
    start_session(request, response, row)
    response.delete_cookie(PENDING_COOKIE, path=PENDING_PATH, httponly=True, secure=True, samesite="lax")
    return response
