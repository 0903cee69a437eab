"""UI sessions: a logged-in one is a row of `ui_sessions`, an anonymous one a signed cookie.

A logged-in session's cookie carries only a random id; the database keeps its SHA-256, so
that deleting the row (logout, a disabled user, a new password) ends the session at once in
every worker, and a copy of the database holds no usable session. An anonymous visitor has
no row: its cookie is signed, and only carries the id its CSRF tokens are bound to.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from app.access.users import b64, password_fingerprint, unb64
from app.models import UiSession, User

SESSION_SECONDS = 8 * 60 * 60  # a working day; then the coach logs in again
# last_seen_at is written at most this often, so that browsing is not a write per page;
# the idle timeout is therefore exact to within this many seconds.
TOUCH_SECONDS = 60


@dataclass(frozen=True)
class WebSession:
    """This request's session: its id (CSRF tokens are bound to it), and who logged in (None before login)."""

    sid: str
    user_id: int | None = None
    issued: int = field(default_factory=lambda: int(time.time()))

    def csrf_token(self, secret: bytes) -> str:
        """The token every form of this session carries."""
        return hmac.new(secret, f"csrf|{self.sid}".encode(), hashlib.sha256).hexdigest()


def new_session_id() -> str:
    """A random session id: 256 bits, URL-safe, never containing '.' (which marks a signed cookie)."""
    return secrets.token_urlsafe(32)


# --- anonymous sessions: signed, stateless ------------------------------------------------


def _sign(secret: bytes, payload: bytes) -> str:
    return b64(hmac.new(secret, b"session|" + payload, hashlib.sha256).digest())


def encode_session(secret: bytes, web_session: WebSession) -> str:
    """An anonymous session's cookie value: the payload and its HMAC, both base64url."""
    payload = json.dumps({"sid": web_session.sid, "iat": web_session.issued}, separators=(",", ":")).encode()
    return f"{b64(payload)}.{_sign(secret, payload)}"


def decode_session(secret: bytes, value: str | None, *, now: float | None = None) -> WebSession | None:
    """The anonymous session a signed cookie carries, or None when it is missing, forged or too old.

    A signed cookie never logs anyone in: only a row of ui_sessions does.
    """
    if not value or value.count(".") != 1:
        return None
    encoded, signature = value.split(".")
    try:
        payload = unb64(encoded)
        if not hmac.compare_digest(_sign(secret, payload), signature):
            return None
        data: dict[str, Any] = json.loads(payload)
        web_session = WebSession(sid=str(data["sid"]), issued=int(data["iat"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    age = (time.time() if now is None else now) - web_session.issued
    return web_session if 0 <= age < SESSION_SECONDS else None


# --- logged-in sessions: rows of ui_sessions ----------------------------------------------


def session_digest(sid: str) -> str:
    """The SHA-256 kept for a session id: ids are long and random, so no slow hash is needed."""
    return hashlib.sha256(sid.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class SessionRules:
    """How long a logged-in session lasts: absolutely, and without a request."""

    idle_seconds: int
    absolute_seconds: int = SESSION_SECONDS
    # Off (REITTI_LOCAL_ACCOUNTS=off): a local account's session is over, only the provider's people sign in.
    local_accounts: bool = True


def open_session(session: Session, row: User, rules: SessionRules, *, now: datetime | None = None) -> str:
    """Start a logged-in session for `row`; the new id, for the cookie. Expired rows go on the way."""
    now = now or datetime.now(UTC)
    remove_expired(session, rules, now=now)
    sid = new_session_id()
    session.add(
        UiSession(
            id_sha256=session_digest(sid),
            user_id=row.id,
            password=password_fingerprint(row),
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(seconds=rules.absolute_seconds),
        )
    )
    session.flush()
    return sid


@dataclass(frozen=True)
class Found:
    """A session looked up: its user while it lives, and whether the row wants a write."""

    user: User | None
    ended: bool = False  # the row is there but the session is over: delete it
    stale: bool = False  # alive, last seen more than TOUCH_SECONDS ago: mark it seen


def find_session(session: Session, sid: str, rules: SessionRules, *, now: datetime | None = None) -> Found:
    """Look a session up: live while not expired, not idle too long, the user active, the password unchanged.

    Only reads, so that browsing does not take the write lock; `settle` writes what it found.
    """
    now = now or datetime.now(UTC)
    query = select(UiSession, User).join(User, User.id == UiSession.user_id)
    found = session.execute(query.where(UiSession.id_sha256 == session_digest(sid))).first()
    if found is None:
        return Found(None)
    ui_session, user = found[0], found[1]
    idle = now - ui_session.last_seen_at
    if (
        now >= ui_session.expires_at
        or idle >= timedelta(seconds=rules.idle_seconds)
        or user.disabled_at is not None
        or ui_session.password != password_fingerprint(user)
        or (user.issuer is None and not rules.local_accounts)
    ):
        return Found(None, ended=True)
    return Found(user, stale=idle >= timedelta(seconds=TOUCH_SECONDS))


def settle(session: Session, sid: str, found: Found, *, now: datetime | None = None) -> None:
    """Delete a session found over, or mark a live one seen now."""
    digest = session_digest(sid)
    if found.ended:
        session.execute(delete(UiSession).where(UiSession.id_sha256 == digest))
    elif found.stale:
        seen = now or datetime.now(UTC)
        session.execute(update(UiSession).where(UiSession.id_sha256 == digest).values(last_seen_at=seen))


def close_session(session: Session, sid: str) -> None:
    """End one session (logout)."""
    session.execute(delete(UiSession).where(UiSession.id_sha256 == session_digest(sid)))


def remove_expired(session: Session, rules: SessionRules, *, now: datetime | None = None) -> None:
    """Delete the sessions past their absolute end or idle too long."""
    now = now or datetime.now(UTC)
    idle_since = now - timedelta(seconds=rules.idle_seconds)
    session.execute(delete(UiSession).where(or_(UiSession.expires_at <= now, UiSession.last_seen_at <= idle_since)))
