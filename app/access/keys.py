"""API keys: made, stored as hashes, looked up, revoked; who may do what."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from app.errors import Forbidden, Unauthenticated
from app.identity_codes import contains_identity_code
from app.models import UI_CLIENT_PREFIX, ApiKey, Role, principal_ref

KEY_PREFIX = "reitti_"
__all__ = ["UI_CLIENT_PREFIX"]  # a person's decisions in the web UI are logged as the client `ui:<username>`

# A key's name is the client's name in the log, the CSV and the pages: first a letter or digit
# (a CSV cell starting with = + - @ is a formula to a spreadsheet), then a plain character set.
KEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_name(name: str, *, what: str) -> None:
    """Refuse (ValueError) a key's or user's name that is not plain or that holds an identity code."""
    if contains_identity_code(name):
        raise ValueError(f"{what} must not contain an identity code")


LOCAL_UNIT_PREFIX = "local-"


def staff_of(*, role: Role, municipality: str | None, unit: str | None) -> tuple[str | None, str | None]:
    """The (municipality, unit) a key or account belongs to; ValueError when the role and them disagree.

    A coach is staff of its municipality's local unit; a unit key names its unit, and a local
    unit's staff belong to that unit's municipality as a coach does.
    """
    if role is Role.coach:
        if municipality is None:
            raise ValueError("a coach needs --municipality")
        if unit not in (None, f"{LOCAL_UNIT_PREFIX}{municipality}"):
            raise ValueError("a coach is staff of its municipality's local unit: give --municipality alone")
        return municipality, f"{LOCAL_UNIT_PREFIX}{municipality}"
    if role is Role.unit:
        if unit is None:
            raise ValueError("a unit's staff need --unit")
        if municipality is not None:
            raise ValueError("a unit's staff take --unit alone (a local unit's municipality comes with it)")
        local = unit.removeprefix(LOCAL_UNIT_PREFIX) if unit.startswith(LOCAL_UNIT_PREFIX) else None
        return local, unit
    if municipality is not None or unit is not None:
        raise ValueError("only a coach belongs to a municipality, and only a coach or a unit's staff to a unit")
    return None, None


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's name (the client), role, municipality and the unit whose staff it is."""

    key_id: int
    name: str
    role: Role
    municipality: str | None
    unit: str | None = None

    def __post_init__(self) -> None:
        # A coach is its local unit's staff, whether or not the row it came from names the unit.
        if self.role is Role.coach and self.unit is None and self.municipality is not None:
            object.__setattr__(self, "unit", f"{LOCAL_UNIT_PREFIX}{self.municipality}")

    @property
    def ref(self) -> str:
        """`key:<id>` or `user:<id>`: keys and UI accounts are numbered apart."""
        return principal_ref(self.name, self.key_id)

    def require(self, *roles: Role) -> None:
        """Refuse (403) a principal whose role is not one of `roles`."""
        if self.role not in roles:
            allowed = ", ".join(roles)
            raise Forbidden(f"This needs the role {allowed}; this key has the role {self.role}.")


def key_digest(key: str) -> str:
    """The SHA-256 kept for a key: keys are long and random, so no slow hash is needed."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_key(
    session: Session, *, role: Role, name: str, municipality: str | None, unit: str | None = None
) -> tuple[ApiKey, str]:
    """Make a key; the plain key is returned once and never stored."""
    municipality, unit = staff_of(role=role, municipality=municipality, unit=unit)
    if name.startswith(UI_CLIENT_PREFIX):
        raise ValueError(f"a key's name may not begin with {UI_CLIENT_PREFIX!r}: those are the web UI's users")
    if not KEY_NAME.match(name):
        raise ValueError("the name is 1-64 letters, digits, '.', '_' or '-', first a letter or digit")
    check_name(name, what="the name")
    plain = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        name=name,
        role=role.value,
        municipality=municipality,
        unit=unit,
        prefix=plain[: len(KEY_PREFIX) + 6],
        key_sha256=key_digest(plain),
        created_at=datetime.now(UTC),
    )
    session.add(row)
    session.flush()
    return row, plain


def revoke_key(session: Session, *, key_id: int) -> ApiKey | None:
    """Revoke a key by its id; None when there is no such key."""
    row = session.get(ApiKey, key_id)
    if row is not None and row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
        session.flush()
    return row


def bearer_key(authorization: str | None) -> str:
    """The key of an `Authorization: Bearer` header; 401 when there is none."""
    scheme, _, key = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthenticated("Send an API key as 'Authorization: Bearer <key>'.")
    return key.strip()


def authenticate(connection: Connection | Session, authorization: str | None) -> Principal:
    """The principal of an `Authorization: Bearer` header; 401 when there is none valid."""
    key = bearer_key(authorization)
    # Only the columns needed, not an ORM object: this runs before every API call.
    columns = (ApiKey.id, ApiKey.name, ApiKey.role, ApiKey.municipality, ApiKey.unit, ApiKey.revoked_at)
    row = connection.execute(select(*columns).where(ApiKey.key_sha256 == key_digest(key))).first()
    if row is None or row.revoked_at is not None:
        raise Unauthenticated("The API key is not valid or has been revoked.")
    return Principal(key_id=row.id, name=row.name, role=Role(row.role), municipality=row.municipality, unit=row.unit)


def key_is_live(connection: Connection | Session, key_id: int) -> bool:
    """Whether a key exists and is not revoked: one read of the primary key."""
    query = select(ApiKey.id).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
    return connection.execute(query).first() is not None


class KnownKeys:
    """The principals of the valid keys this process has seen, by the keys' digests.

    For the busiest endpoint only, POST /v1/events: looking a key up costs a trip to a
    worker thread and a query, about a third of that endpoint's time. Keys never change
    but for revocation, and revocation is checked again, exactly, in the transaction
    that would store the decision (app/decisions/writer.py): a revoked key stores nothing.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self._limit = limit
        self._principals: dict[str, Principal] = {}

    def get(self, key: str) -> Principal | None:
        """The principal of a key seen before, or None."""
        return self._principals.get(key_digest(key))

    def remember(self, key: str, principal: Principal) -> None:
        """Remember a key found valid; a full memory starts again rather than grow."""
        if len(self._principals) >= self._limit:
            self._principals.clear()
        self._principals[key_digest(key)] = principal

    def forget(self, key_id: int) -> None:
        """Forget a key found revoked, so that its next call is refused before anything else."""
        self._principals = {digest: p for digest, p in self._principals.items() if p.key_id != key_id}


# Built once (the ids bound at each call): the writer asks this in every batch.
_LIVE_KEYS = select(ApiKey.id).where(ApiKey.id.in_(bindparam("key_ids", expanding=True)), ApiKey.revoked_at.is_(None))


def live_keys(session: Session, key_ids: Iterable[int]) -> set[int]:
    """Which of these keys exist and are not revoked, as this transaction sees them."""
    wanted = sorted(set(key_ids))
    if not wanted:  # a batch of access tokens only: nothing to ask
        return set()
    return set(session.connection().scalars(_LIVE_KEYS, {"key_ids": wanted}))
