"""Who is using the web UI: local accounts, signed session cookies, CSRF tokens, login throttling.

This is the one module that decides who the user is. The pages ask only for a `WebUser`
(`current_user`) and never look at how it was established. A password login calls
`start_session` after `check_password`; single sign-on would replace the login form with
an OIDC redirect and callback that, having validated the ID token and mapped its claims
to a `User` row, calls the same `start_session` — nothing in the pages changes.

The session is a signed cookie, not a server-side row: it carries a random session id
(the CSRF tokens are bound to it), the user's id, when it was issued and a fingerprint
of the password hash, so that changing a password ends every session made with the old
one. The user is read from the database on each request, so a disabled account is out
at once. Every visitor of /ui gets a session, an anonymous one before login, so that the
login form has a CSRF token as well.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth import UI_CLIENT_PREFIX, Principal
from app.errors import ReittiError
from app.models import Role, User

SESSION_COOKIE = "reitti_session"
COOKIE_PATH = "/ui"
SESSION_SECONDS = 8 * 60 * 60  # a working day; then the coach logs in again
MIN_PASSWORD_LENGTH = 12
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")

# scrypt with N=2^15, r=8, p=3: 32 MiB of memory a guess, one of the parameter sets
# OWASP's password storage guide gives as a minimum (about 0.3 s here).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 3
SCRYPT_MAXMEM = 64 * 1024 * 1024


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


class TooManyAttempts(ReittiError):
    """Too many failed logins for this name or address (429)."""

    status = 429
    problem = "too-many-attempts"
    title = "Too many login attempts"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many failed logins; try again in {retry_after} seconds.")
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        """Say when to try again."""
        return {"Retry-After": str(self.retry_after)}


# --- passwords -----------------------------------------------------------------------


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=SCRYPT_MAXMEM, dklen=32)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    """A salted scrypt hash, with its parameters, as one string."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` is the one `stored` was made from (in constant time)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        return hmac.compare_digest(_scrypt(password, _unb64(salt), int(n), int(r), int(p)), _unb64(digest))
    except ValueError:
        return False


# A hash to check against when the name is unknown, so that the answer takes as long.
_DUMMY_HASH = f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(b'reitti-no-user!!')}${_b64(bytes(32))}"


# --- accounts ------------------------------------------------------------------------


@dataclass(frozen=True)
class WebUser:
    """The person using the UI, as the pages know them."""

    id: int
    username: str
    display_name: str
    role: Role
    municipality: str | None

    @property
    def principal(self) -> Principal:
        """The principal the services scope by; `ui:` names never collide with an API key's."""
        name = f"{UI_CLIENT_PREFIX}{self.username}"
        return Principal(key_id=self.id, name=name, role=self.role, municipality=self.municipality)


def _web_user(row: User) -> WebUser:
    return WebUser(row.id, row.username, row.display_name, Role(row.role), row.municipality)


def create_user(
    session: Session, *, username: str, display_name: str, role: Role, municipality: str | None, password: str
) -> User:
    """Make an account; ValueError says what is wrong with the request."""
    if not USERNAME.match(username):
        raise ValueError("the name is 2-64 lower-case letters, digits, '.', '_' or '-', first a letter or digit")
    if (role is Role.coach) != (municipality is not None):
        raise ValueError("a coach and only a coach belongs to a municipality (--municipality)")
    if role is Role.integration:
        raise ValueError("integrations use API keys, not accounts")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise ValueError(f"there is already a user {username}")
    row = User(
        username=username,
        display_name=display_name or username,
        role=role.value,
        municipality=municipality,
        password_hash=hash_password(password),
        created_at=datetime.now(UTC),
    )
    session.add(row)
    session.flush()
    return row


def disable_user(session: Session, *, username: str) -> User | None:
    """End an account (its sessions end at their next request); None when there is no such user."""
    row = session.scalar(select(User).where(User.username == username))
    if row is not None and row.disabled_at is None:
        row.disabled_at = datetime.now(UTC)
        session.flush()
    return row


def check_password(session: Session, username: str, password: str) -> User | None:
    """The active user with this name and password, or None; as slow for an unknown name."""
    row = session.scalar(select(User).where(User.username == username.strip().lower()))
    if row is None:
        verify_password(password, _DUMMY_HASH)
        return None
    if not verify_password(password, row.password_hash) or row.disabled_at is not None:
        return None
    return row


# --- sessions ------------------------------------------------------------------------


@dataclass(frozen=True)
class WebSession:
    """What the session cookie says: a random id, and who logged in (None before login)."""

    sid: str
    user_id: int | None = None
    issued: int = field(default_factory=lambda: int(time.time()))
    password: str = ""  # a fingerprint of the password hash the session was made with

    def csrf_token(self, secret: bytes) -> str:
        """The token every form of this session carries."""
        return hmac.new(secret, f"csrf|{self.sid}".encode(), hashlib.sha256).hexdigest()


def _sign(secret: bytes, payload: bytes) -> str:
    return _b64(hmac.new(secret, b"session|" + payload, hashlib.sha256).digest())


def encode_session(secret: bytes, web_session: WebSession) -> str:
    """The cookie value: the payload and its HMAC, both base64url."""
    payload = json.dumps(
        {"sid": web_session.sid, "uid": web_session.user_id, "iat": web_session.issued, "pw": web_session.password},
        separators=(",", ":"),
    ).encode()
    return f"{_b64(payload)}.{_sign(secret, payload)}"


def decode_session(secret: bytes, value: str | None, *, now: float | None = None) -> WebSession | None:
    """The session a cookie carries, or None when it is missing, forged, or too old."""
    if not value or value.count(".") != 1:
        return None
    encoded, signature = value.split(".")
    try:
        payload = _unb64(encoded)
        if not hmac.compare_digest(_sign(secret, payload), signature):
            return None
        data: dict[str, Any] = json.loads(payload)
        uid = data["uid"]
        web_session = WebSession(
            sid=str(data["sid"]),
            user_id=int(uid) if uid is not None else None,
            issued=int(data["iat"]),
            password=str(data["pw"]),
        )
    except (ValueError, KeyError, TypeError):
        return None
    age = (time.time() if now is None else now) - web_session.issued
    return web_session if 0 <= age < SESSION_SECONDS else None


def _password_fingerprint(row: User) -> str:
    return hashlib.sha256(row.password_hash.encode()).hexdigest()[:16]


def _secret(request: Request) -> bytes:
    secret: bytes = request.app.state.session_secret
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
    if row is None or row.disabled_at is not None or _password_fingerprint(row) != web_session.password:
        return None
    return _web_user(row)


def start_session(request: Request, response: Response, row: User) -> None:
    """Log the user in: a new session id, so that none chosen before login survives it."""
    web_session = WebSession(sid=secrets.token_urlsafe(18), user_id=row.id, password=_password_fingerprint(row))
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


# --- throttling ----------------------------------------------------------------------


class LoginThrottle:
    """Failed logins counted per name and per address in a sliding window, in this process.

    Per process: with several workers the limits hold per worker, which still turns an
    online guessing attack from thousands of tries a minute into a handful.
    """

    def __init__(self, *, per_name: int = 5, per_address: int = 30, window: int = 15 * 60) -> None:
        self.limits = {"name": per_name, "address": per_address}
        self.window = window
        self.failures: dict[tuple[str, str], deque[float]] = {}
        self.lock = threading.Lock()

    def _keys(self, name: str, address: str) -> list[tuple[str, str]]:
        return [("name", name.strip().lower()), ("address", address)]

    def check(self, name: str, address: str) -> None:
        """Raise TooManyAttempts while either the name or the address is over its limit."""
        now = time.monotonic()
        with self.lock:
            for key in self._keys(name, address):
                failures = self.failures.get(key)
                while failures and failures[0] <= now - self.window:
                    failures.popleft()
                if failures and len(failures) >= self.limits[key[0]]:
                    raise TooManyAttempts(int(failures[0] + self.window - now) + 1)

    def failed(self, name: str, address: str) -> None:
        """Count a failed login."""
        with self.lock:
            for key in self._keys(name, address):
                self.failures.setdefault(key, deque()).append(time.monotonic())

    def succeeded(self, name: str) -> None:
        """A right password clears the name's count (not the address's)."""
        with self.lock:
            self.failures.pop(("name", name.strip().lower()), None)
