"""The database tables: API keys and the decision log."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Index, Integer, MetaData, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Stable constraint names, so that migrations can name what they change.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# A big integer on PostgreSQL, and the INTEGER that is SQLite's row id there.
SequenceNumber = BigInteger().with_variant(Integer(), "sqlite")
Document = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp stored in UTC; SQLite gets it back aware too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: every timestamp must carry its offset")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """The tables' common base."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Role(StrEnum):
    """What a key may do."""

    integration = "integration"
    coach = "coach"
    auditor = "auditor"
    admin = "admin"


class ApiKey(Base):
    """An API key; only its SHA-256 is kept."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(SequenceNumber, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    municipality: Mapped[str | None] = mapped_column(String(3))
    prefix: Mapped[str] = mapped_column(String(16))
    key_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class User(Base):
    """A person who logs in to the web UI; only a memory-hard hash of the password is kept."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(SequenceNumber, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    municipality: Mapped[str | None] = mapped_column(String(3))
    password_hash: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Decision(Base):
    """One routing decision, with the normalised event it answered."""

    __tablename__ = "decisions"
    __table_args__ = (
        # The idempotency key: a constraint, so that concurrent posts cannot both insert.
        UniqueConstraint("client", "event_id"),
        Index("ix_decisions_decided_at_seq", "decided_at", "seq"),
    )

    seq: Mapped[int] = mapped_column(SequenceNumber, primary_key=True, autoincrement=True)
    decision_id: Mapped[str] = mapped_column(String(36), unique=True)
    client: Mapped[str] = mapped_column(String(128))
    event_id: Mapped[str] = mapped_column(String(128))
    request_sha256: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(100), index=True)
    customer_type: Mapped[str] = mapped_column(String(16))
    customer_pseudonym: Mapped[str] = mapped_column(String(64), index=True)
    home_municipality: Mapped[str] = mapped_column(String(3), index=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime())
    handler_unit: Mapped[str] = mapped_column(String(64), index=True)
    provider_unit: Mapped[str] = mapped_column(String(64), index=True)
    customership_unit: Mapped[str | None] = mapped_column(String(64), index=True)
    customership_role: Mapped[str | None] = mapped_column(String(32))
    cost_group: Mapped[str] = mapped_column(String(32))
    rule_id: Mapped[str] = mapped_column(String(128), index=True)
    ruleset_version: Mapped[str] = mapped_column(String(32), index=True)
    ruleset_sha256: Mapped[str] = mapped_column(String(64))
    decision: Mapped[dict[str, Any]] = mapped_column(Document)
    event: Mapped[dict[str, Any]] = mapped_column(Document)
