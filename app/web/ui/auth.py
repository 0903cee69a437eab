"""Who is using the web UI: the session cookie, the logged-in user, CSRF tokens."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request, Response
from sqlalchemy.orm import Session

from app.access import roles
from app.access.sessions import (
    SessionRules,
    WebSession,
    close_session,
    decode_session,
    encode_session,
    find_session,
    new_session_id,
    open_session,
    settle,
)
from app.access.users import WebUser, web_user
from app.decisions.reads import Reader
from app.errors import Forbidden, ReittiError
from app.models import User
from app.web.deps import ReadSessionDep, services

SESSION_COOKIE = "reitti_session"
COOKIE_PATH = "/ui"


class LoginRequired(ReittiError):
    """A page needs a logged-in user (the UI answers with the login page)."""

    status = 401
    problem = "login-required"
    title = "Login required"


class CsrfRefused(ReittiError):
    """A form came without the token of this session (403)."""

    status = 403
    problem = "csrf"
    title = "The form is not valid for this session"


def _secret(request: Request) -> bytes:
    secret: bytes = services(request).session_secret
    return secret


def _rules(request: Request) -> SessionRules:
    settings = services(request).settings
    return SessionRules(idle_seconds=settings.session_idle_minutes * 60, local_accounts=settings.local_accounts)


def _set_cookie(response: Response, request: Request, value: str) -> None:
    # Secure always: browsers keep Secure cookies from http://127.0.0.1 and localhost too.
    response.set_cookie(SESSION_COOKIE, value, path=COOKIE_PATH, httponly=True, secure=True, samesite="lax")


def _anonymous(request: Request) -> WebSession:
    web_session = WebSession(sid=new_session_id())
    request.state.new_web_session = True
    return web_session


def _resolve(request: Request) -> tuple[WebSession, WebUser | None]:
    """This request's session and user, found once per request.

    A cookie without '.' is a logged-in session's id, looked up (and marked seen) in the
    database; a signed one is an anonymous visitor's; anything else, or a session that has
    ended, makes a new anonymous session.
    """
    cached = getattr(request.state, "web_resolved", None)
    if cached is not None:
        resolved: tuple[WebSession, WebUser | None] = cached
        return resolved
    value = request.cookies.get(SESSION_COOKIE) or ""
    web_session: WebSession | None = None
    user: WebUser | None = None
    if value and "." not in value and len(value) <= 64:
        with services(request).read_sessions() as session:
            found = find_session(session, value, _rules(request))
        if found.ended or found.stale:
            with services(request).write_sessions() as session:
                settle(session, value, found)
        if found.user is not None:
            web_session, user = WebSession(sid=value, user_id=found.user.id), web_user(found.user)
    elif value:
        web_session = decode_session(_secret(request), value)
    resolved = (web_session or _anonymous(request), user)
    request.state.web_resolved = resolved
    return resolved


def current_session(request: Request) -> WebSession:
    """This request's session: the cookie's, or a new anonymous one (kept by `keep_session`)."""
    return _resolve(request)[0]


def keep_session(request: Request, response: Response) -> None:
    """Send the session cookie when this request had to make a session."""
    if getattr(request.state, "new_web_session", False):
        _set_cookie(response, request, encode_session(_secret(request), current_session(request)))


def current_user(request: Request, session: Session | None = None) -> WebUser | None:
    """The logged-in user, or None: no session, or one that has ended (logout, idle, disabled, new password)."""
    return _resolve(request)[1]


def start_session(request: Request, response: Response, row: User) -> None:
    """Log the user in: a new session id, so that none chosen before login survives it."""
    with services(request).write_sessions() as session:
        sid = open_session(session, row, _rules(request))
    request.state.web_resolved = (WebSession(sid=sid, user_id=row.id), web_user(row))
    request.state.new_web_session = False
    _set_cookie(response, request, sid)


def end_session(request: Request, response: Response) -> None:
    """Log out: the session's row goes, and an anonymous session with a new id takes its place."""
    web_session = current_session(request)
    if web_session.user_id is not None:
        with services(request).write_sessions() as session:
            close_session(session, web_session.sid)
    anonymous = WebSession(sid=new_session_id())
    request.state.web_resolved = (anonymous, None)
    _set_cookie(response, request, encode_session(_secret(request), anonymous))


def csrf_token(request: Request) -> str:
    """The CSRF token for this request's session, for the forms of the page."""
    return current_session(request).csrf_token(_secret(request))


def check_csrf(request: Request, form: dict[str, str]) -> None:
    """Refuse (403) a form whose token is not this session's."""
    if request.cookies.get(SESSION_COOKIE) is None or getattr(request.state, "new_web_session", False):
        raise CsrfRefused("The form came without a session.")
    if not hmac.compare_digest(form.get("csrf_token", ""), csrf_token(request)):
        raise CsrfRefused("The form's token is not this session's.")


def _user_or_none(request: Request, session: ReadSessionDep) -> WebUser | None:
    return current_user(request, session)


def _user(request: Request, session: ReadSessionDep) -> WebUser:
    user = current_user(request, session)
    if user is None:
        raise LoginRequired("Log in to see this page.")
    return user


MaybeUserDep = Annotated[WebUser | None, Depends(_user_or_none)]
UserDep = Annotated[WebUser, Depends(_user)]


class Allowed:
    """A dependency: the logged-in user, refused (403) unless its role is one of `roles` (app.access.roles)."""

    def __init__(self, allowed: roles.Roles) -> None:
        self.allowed = allowed

    def __call__(self, user: UserDep) -> WebUser:
        if user.role not in self.allowed:
            raise Forbidden(f"This page is for the role {', '.join(self.allowed)}.")
        return user


# Whoever may read decisions one by one: everyone logged in but management.
DecisionReaderDep = Annotated[WebUser, Depends(Allowed(roles.READ_DECISIONS))]
DashboardDep = Annotated[WebUser, Depends(Allowed(roles.DASHBOARD))]
CostSharingDep = Annotated[WebUser, Depends(Allowed(roles.COST_SHARING))]
CoachDep = Annotated[WebUser, Depends(Allowed(roles.ROUTE_IN_UI))]
OverriderDep = Annotated[WebUser, Depends(Allowed(roles.OVERRIDE))]
AuditorDep = Annotated[WebUser, Depends(Allowed(roles.AUDIT))]
AdminDep = Annotated[WebUser, Depends(Allowed(roles.ADMINISTER))]
InterpretationsDep = Annotated[WebUser, Depends(Allowed(roles.READ_INTERPRETATIONS))]


def reader(request: Request, user: WebUser, session: Session) -> Reader:
    """The user as a reader of the decision log: reads through it go into the access log."""
    return Reader(user.principal, session, services(request).write_sessions)
