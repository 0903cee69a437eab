"""A UI session as a signed token: a random id (CSRF tokens are bound to it), the user and when it was issued."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any

from app.access.users import b64, unb64

SESSION_SECONDS = 8 * 60 * 60  # a working day; then the coach logs in again


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
    return b64(hmac.new(secret, b"session|" + payload, hashlib.sha256).digest())


def encode_session(secret: bytes, web_session: WebSession) -> str:
    """The cookie value: the payload and its HMAC, both base64url."""
    payload = json.dumps(
        {"sid": web_session.sid, "uid": web_session.user_id, "iat": web_session.issued, "pw": web_session.password},
        separators=(",", ":"),
    ).encode()
    return f"{b64(payload)}.{_sign(secret, payload)}"


def decode_session(secret: bytes, value: str | None, *, now: float | None = None) -> WebSession | None:
    """The session a cookie carries, or None when it is missing, forged, or too old."""
    if not value or value.count(".") != 1:
        return None
    encoded, signature = value.split(".")
    try:
        payload = unb64(encoded)
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
