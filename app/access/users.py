"""The web UI's local accounts: made, disabled, passwords hashed with scrypt and checked."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.access.keys import UI_CLIENT_PREFIX, Principal, check_name, staff_of
from app.identity_codes import contains_identity_code
from app.models import NO_NUMBER, Role, UiSession, User, sso_name

MIN_PASSWORD_LENGTH = 12
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")

# scrypt with N=2^15, r=8, p=3: 32 MiB of memory a guess, one of the parameter sets
# OWASP's password storage guide gives as a minimum (about 0.3 s here).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 3


SCRYPT_MAXMEM = 64 * 1024 * 1024


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=SCRYPT_MAXMEM, dklen=32)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    """A salted scrypt hash, with its parameters, as one string."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt)}${b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` is the one `stored` was made from (in constant time)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        return hmac.compare_digest(_scrypt(password, unb64(salt), int(n), int(r), int(p)), unb64(digest))
    except ValueError:
        return False


# A hash to check against when the name is unknown, so that the answer takes as long.
_DUMMY_HASH = f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(b'reitti-no-user!!')}${b64(bytes(32))}"


@dataclass(frozen=True)
class WebUser:
    """The person using the UI, as the pages know them."""

    id: int
    username: str
    display_name: str
    role: Role
    municipality: str | None
    unit: str | None = None
    # The identity provider's, for a person signed in through it; None for a local account.
    issuer: str | None = None
    subject: str | None = None

    @property
    def principal(self) -> Principal:
        """The principal the services scope by; `ui:` names never collide with an API key's.

        A person of the identity provider is recorded by issuer and subject, with no number.
        """
        if self.issuer is not None and self.subject is not None:
            name = sso_name(self.issuer, self.subject)
            return Principal(
                key_id=NO_NUMBER, name=name, role=self.role, municipality=self.municipality, unit=self.unit
            )
        name = f"{UI_CLIENT_PREFIX}{self.username}"
        return Principal(key_id=self.id, name=name, role=self.role, municipality=self.municipality, unit=self.unit)


def web_user(row: User) -> WebUser:
    return WebUser(
        row.id, row.username, row.display_name, Role(row.role), row.municipality, row.unit, row.issuer, row.subject
    )


# The user name of a person of the identity provider: made from issuer and subject, never typed.
SSO_USERNAME_PREFIX = "sso-"
# What a row without a password holds instead of a hash: no password verifies against it.
NO_PASSWORD = "!"


def create_user(
    session: Session,
    *,
    username: str,
    display_name: str,
    role: Role,
    municipality: str | None,
    password: str,
    unit: str | None = None,
) -> User:
    """Make an account; ValueError says what is wrong with the request."""
    if not USERNAME.match(username):
        raise ValueError("the name is 2-64 lower-case letters, digits, '.', '_' or '-', first a letter or digit")
    check_name(username, what="the name")
    if username.startswith(SSO_USERNAME_PREFIX):
        raise ValueError(f"names beginning {SSO_USERNAME_PREFIX!r} are the identity provider's people")
    if role is Role.integration:
        raise ValueError("integrations use API keys, not accounts")
    municipality, unit = staff_of(role=role, municipality=municipality, unit=unit)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise ValueError(f"there is already a user {username}")
    row = User(
        username=username,
        display_name=display_name or username,
        role=role.value,
        municipality=municipality,
        unit=unit,
        password_hash=hash_password(password),
        created_at=datetime.now(UTC),
    )
    session.add(row)
    session.flush()
    return row


def _end_sessions(session: Session, user_id: int) -> None:
    """End every UI session of the user at once, in every worker: the rows are the sessions."""
    session.execute(delete(UiSession).where(UiSession.user_id == user_id))


def disable_user(session: Session, *, username: str) -> User | None:
    """End an account and its sessions at once; None when there is no such user."""
    row = session.scalar(select(User).where(User.username == username))
    if row is not None and row.disabled_at is None:
        row.disabled_at = datetime.now(UTC)
        _end_sessions(session, row.id)
        session.flush()
    return row


def set_password(session: Session, *, username: str, password: str) -> User | None:
    """Give an account a new password and end its sessions; None when there is no such user."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters")
    row = session.scalar(select(User).where(User.username == username))
    if row is not None and row.issuer is not None:
        raise ValueError(f"{username} signs in through the identity provider and has no password here")
    if row is not None:
        row.password_hash = hash_password(password)
        _end_sessions(session, row.id)
        session.flush()
    return row


def shown_username(typed: str) -> str:
    """What a login form may log and show again of a typed name: the name if it could be one, else nothing.

    People type all sorts into a login form, their identity code too.
    """
    plain = USERNAME.match(typed) is not None and not contains_identity_code(typed)
    return typed if plain else ""


def check_password(session: Session, username: str, password: str) -> User | None:
    """The active user with this name and password, or None; as slow for an unknown name."""
    row = session.scalar(select(User).where(User.username == username.strip().lower()))
    if row is None:
        verify_password(password, _DUMMY_HASH)
        return None
    if not verify_password(password, row.password_hash) or row.disabled_at is not None or row.issuer is not None:
        return None
    return row


def sso_username(issuer: str, subject: str) -> str:
    """The fixed user name of a person of the identity provider: a digest, since a subject may be anything."""
    digest = hashlib.sha256(f"{issuer}\x00{subject}".encode()).hexdigest()[:20]
    return f"{SSO_USERNAME_PREFIX}{digest}"


def sso_user(
    session: Session,
    *,
    issuer: str,
    subject: str,
    display_name: str | None,
    role: Role,
    municipality: str | None,
    unit: str | None = None,
) -> User:
    """The row of a person signed in through the identity provider, made or brought up to date with their claims.

    The caller refuses a disabled row: Reitti's `users disable` outranks the provider.
    """
    municipality, unit = staff_of(role=role, municipality=municipality, unit=unit)
    row = session.scalar(select(User).where(User.issuer == issuer, User.subject == subject).with_for_update())
    if row is None:
        row = User(
            username=sso_username(issuer, subject),
            display_name=display_name or subject[:128],
            role=role.value,
            municipality=municipality,
            unit=unit,
            password_hash=NO_PASSWORD,
            created_at=datetime.now(UTC),
            issuer=issuer,
            subject=subject,
        )
        session.add(row)
    else:
        row.role, row.municipality, row.unit = role.value, municipality, unit
        row.display_name = display_name or row.display_name
    session.flush()
    return row


def password_fingerprint(row: User) -> str:
    """A short digest of the password hash: a session made with another password is over."""
    return hashlib.sha256(row.password_hash.encode()).hexdigest()[:16]
