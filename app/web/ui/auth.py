"""Who is using the web UI: the session cookie, the logged-in user, CSRF tokens."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import Depends, Request, Response
from sqlalchemy.orm import Session

from app.access import roles
from app.access.sessions import WebSession, decode_session, encode_session
from app.access.users import WebUser, password_fingerprint, web_user
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


def _set_cookie(response: Response, request: Request, web_session: WebSession) -> None:
    # Secure always: browsers keep Secure cookies from http://127.0.0.1 and localhost too.
    response.set_cookie(
        SESSION_COOKIE,
        encode_session(_secret(request), web_session),
        path=COOKIE_PATH,
        httponly=True,
        secure=True,
        samesite="lax",
    )


def current_session(request: Request) -> WebSession:
    """This request's session: the cookie's, or a new anonymous one (kept by `keep_session`)."""
    cached = getattr(request.state, "web_session", None)
    if isinstance(cached, WebSession):
        return cached
    web_session = decode_session(_secret(request), request.cookies.get(SESSION_COOKIE))
    if web_session is None:
        web_session = WebSession(sid=secrets.token_urlsafe(18))
        request.state.new_web_session = True
    request.state.web_session = web_session
    return web_session


def keep_session(request: Request, response: Response) -> None:
    """Send the session cookie when this request had to make a session."""
    if getattr(request.state, "new_web_session", False):
        _set_cookie(response, request, current_session(request))


def current_user(request: Request, session: Session) -> WebUser | None:
    """The logged-in user, or None: no session, a disabled account, or a changed password."""
    web_session = current_session(request)
    if web_session.user_id is None:
        return None
    row = session.get(User, web_session.user_id)
    if row is None or row.disabled_at is not None or password_fingerprint(row) != web_session.password:
        return None
    return web_user(row)


def start_session(request: Request, response: Response, row: User) -> None:
    """Log the user in: a new session id, so that none chosen before login survives it."""
    web_session = WebSession(sid=secrets.token_urlsafe(18), user_id=row.id, password=password_fingerprint(row))
    request.state.web_session = web_session
    _set_cookie(response, request, web_session)


def end_session(request: Request, response: Response) -> None:
    """Log out: an anonymous session with a new id takes the old one's place."""
    web_session = WebSession(sid=secrets.token_urlsafe(18))
    request.state.web_session = web_session
    _set_cookie(response, request, web_session)


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


CoachDep = Annotated[WebUser, Depends(Allowed(roles.ROUTE_IN_UI))]
OverriderDep = Annotated[WebUser, Depends(Allowed(roles.OVERRIDE))]
AuditorDep = Annotated[WebUser, Depends(Allowed(roles.AUDIT))]
AdminDep = Annotated[WebUser, Depends(Allowed(roles.ADMINISTER))]


def reader(request: Request, user: WebUser, session: Session) -> Reader:
    """The user as a reader of the decision log: reads through it go into the access log."""
    return Reader(user.principal, session, services(request).write_sessions)
