"""The database tables: API keys, the decision log, its chain, overrides, the access log, the
decision counts that stats are answered from, the units' worklists and the customership register,
and the webhooks' subscriptions and outbox."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
)
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
    # Staff of one unit (`unit` names it): a central team, or a local unit as a coach is.
    unit = "unit"
    auditor = "auditor"
    admin = "admin"
    # The area's management and finance: aggregates only (reports, stats), never a decision.
    management = "management"


# A person's decisions and reads are recorded under the name `ui:<username>`; no API key may
# be named so (app.access.keys refuses it), so a recorded name tells a key from a person.
UI_CLIENT_PREFIX = "ui:"


# Those who are no row of api_keys or of local accounts are recorded with this number, and named
# by their recorded name alone: people signed in through the identity provider, as
# `ui:<issuer>#<subject>` (an issuer has no fragment, and no local user's name holds '#'), and
# integrations presenting the provider's access tokens, by their client name. Keys and users count from 1.
NO_NUMBER = 0
SSO_SEPARATOR = "#"


def sso_name(issuer: str, subject: str) -> str:
    """The recorded name of a person signed in through the identity provider: issuer and subject."""
    return f"{UI_CLIENT_PREFIX}{issuer}{SSO_SEPARATOR}{subject}"


def principal_ref(name: str, number: int) -> str:
    """Who a record names, unambiguously.

    `user:<id>` for a local UI account, `key:<id>` for an API key, `sso:<issuer>#<subject>` for a
    person signed in through the identity provider and `token:<client name>` for an integration
    presenting its access token. Keys and accounts are numbered apart, so key 5 and user 5 are
    different callers; the recorded name says which one is meant.
    """
    if name.startswith(UI_CLIENT_PREFIX):
        person = name.removeprefix(UI_CLIENT_PREFIX)
        return f"sso:{person}" if SSO_SEPARATOR in person else f"user:{number}"
    return f"key:{number}" if number != NO_NUMBER else f"token:{name}"


class ApiKey(Base):
    """An API key; only its SHA-256 is kept."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(SequenceNumber, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    municipality: Mapped[str | None] = mapped_column(String(3))
    # The unit whose staff the key is: a coach's `local-<municipality>`, a unit key's own.
    unit: Mapped[str | None] = mapped_column(String(64))
    prefix: Mapped[str] = mapped_column(String(16))
    key_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class User(Base):
    """A person who logs in to the web UI; only a memory-hard hash of the password is kept.

    A person signed in through the identity provider has a row too, found by (issuer, subject),
    with no password: it carries their sessions, the role and municipality their claims gave at
    their last sign-in, and `disabled_at`, which keeps them out whatever the provider says.
    """

    __tablename__ = "users"
    __table_args__ = (Index("ix_users_issuer_subject", "issuer", "subject", unique=True),)

    id: Mapped[int] = mapped_column(SequenceNumber, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    municipality: Mapped[str | None] = mapped_column(String(3))
    unit: Mapped[str | None] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set for a person of the identity provider, None for a local account.
    issuer: Mapped[str | None] = mapped_column(String(255))
    subject: Mapped[str | None] = mapped_column(String(255))


class UiSession(Base):
    """A logged-in session of the web UI; the cookie carries its random id, only the id's hash is kept.

    Deleting the row ends the session at once, in every worker: logout, disabling the user
    and a new password do. Anonymous visitors have no row (their session is a signed cookie).
    """

    __tablename__ = "ui_sessions"

    id_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(SequenceNumber, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # A fingerprint of the password hash the session began with: a new password ends it,
    # however the hash was changed.
    password: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    # created_at plus the absolute lifetime: expired rows are found by an index.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class LoginFailure(Base):
    """Failed logins of one (name, address) pair or one address, shared by every worker.

    `subject` is a SHA-256 of what is counted, so that names and addresses typed at the
    login form are not kept in clear.
    """

    __tablename__ = "login_failures"

    subject: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    blocked_until: Mapped[datetime] = mapped_column(UTCDateTime())


# The decision log's columns that auditors filter on by equality.
FILTERED_COLUMNS = (
    "customer_pseudonym",
    "customership_unit",
    "event_type",
    "handler_unit",
    "home_municipality",
    "provider_unit",
    "rule_id",
    "ruleset_version",
)


class Decision(Base):
    """One routing decision, with the normalised event it answered."""

    __tablename__ = "decisions"
    __table_args__ = (
        # The idempotency key: a constraint, so that concurrent posts cannot both insert.
        UniqueConstraint("client", "event_id"),
        Index("ix_decisions_decided_at_seq", "decided_at", "seq"),
        # Each filter with seq, so that a filtered page, newest first, is read in index order.
        *(Index(f"ix_decisions_{column}_seq", column, "seq") for column in FILTERED_COLUMNS),
    )

    seq: Mapped[int] = mapped_column(SequenceNumber, primary_key=True, autoincrement=True)
    decision_id: Mapped[str] = mapped_column(String(36), unique=True)
    client: Mapped[str] = mapped_column(String(128))
    event_id: Mapped[str] = mapped_column(String(128))
    request_sha256: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(100))
    customer_type: Mapped[str] = mapped_column(String(16))
    customer_pseudonym: Mapped[str] = mapped_column(String(64))
    home_municipality: Mapped[str] = mapped_column(String(3))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime())
    handler_unit: Mapped[str] = mapped_column(String(64))
    provider_unit: Mapped[str] = mapped_column(String(64))
    customership_unit: Mapped[str | None] = mapped_column(String(64))
    customership_role: Mapped[str | None] = mapped_column(String(32))
    cost_group: Mapped[str] = mapped_column(String(32))
    rule_id: Mapped[str] = mapped_column(String(128))
    ruleset_version: Mapped[str] = mapped_column(String(32))
    ruleset_sha256: Mapped[str] = mapped_column(String(64))
    decision: Mapped[dict[str, Any]] = mapped_column(Document)
    event: Mapped[dict[str, Any]] = mapped_column(Document)


class RecordKind(StrEnum):
    """What a link of the audit chain vouches for."""

    decision = "decision"
    override = "override"
    acknowledgement = "acknowledgement"


class ChainLink(Base):
    """One link of the audit chain: a decision or an override, its place and its hash.

    `seq` is given by the writer that holds the chain lock (never a database sequence,
    which leaves gaps); the unique constraints refuse a fork if that lock ever fails.
    """

    __tablename__ = "audit_chain"

    seq: Mapped[int] = mapped_column(SequenceNumber, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[str] = mapped_column(String(36), unique=True)
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    chained_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The id of the chain key and the HMAC of `hash` under it; nullable only because columns
    # added to a guarded table cannot be NOT NULL there on SQLite (verification names a NULL).
    mac_key: Mapped[str | None] = mapped_column(String(16))
    mac: Mapped[str | None] = mapped_column(String(64))


class OverrideReason(StrEnum):
    """Why a decision was overridden in practice: a fixed list, so that stats can count them."""

    customer_moved = "customer_moved"
    wrong_event_data = "wrong_event_data"
    needs_special_expertise = "needs_special_expertise"
    customer_request = "customer_request"
    agreed_between_units = "agreed_between_units"
    rule_does_not_fit = "rule_does_not_fit"
    other = "other"


class Override(Base):
    """A record that a decision was overridden in practice; the decision itself stays as it was."""

    __tablename__ = "overrides"

    seq: Mapped[int] = mapped_column(SequenceNumber, primary_key=True, autoincrement=True)
    override_id: Mapped[str] = mapped_column(String(36), unique=True)
    decision_id: Mapped[str] = mapped_column(String(36), ForeignKey("decisions.decision_id"), index=True)
    handler_unit: Mapped[str | None] = mapped_column(String(64))
    customership_unit: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(String(2000))
    recorded_by: Mapped[str] = mapped_column(String(128))
    recorded_by_key: Mapped[int] = mapped_column(SequenceNumber)
    recorded_role: Mapped[str] = mapped_column(String(16))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


# The decision counts' customership when a decision names none: a key column cannot be NULL.
# No unit id is empty.
NO_UNIT = ""
# What a group of the decision counts is, besides its day or month: every dimension that stats
# break down or filter by, and those a scope needs (client, municipality, handler).
COUNT_GROUP = (
    "client",
    "event_type",
    "rule_id",
    "ruleset_version",
    "handler_unit",
    "provider_unit",
    "customership_unit",
    "home_municipality",
)


class Counts:
    """The columns of the decision counts, by day and by month.

    How many decisions of one Finnish day (or month) fall in one group, and how many of them
    were overridden. Stats of a quarter of a million decisions scanned the log for seconds;
    these counts answer them in milliseconds. They are derived data, kept in the transactions
    that write the log (`decisions.store` adds each new decision, `decisions.record_override`
    counts a decision's first override), and updated in place: not append-only, and the audit
    chain does not vouch for them. Should they ever disagree with the log, `reitti audit
    rebuild-counts` computes them again from it.
    """

    client: Mapped[str] = mapped_column(String(128))
    event_type: Mapped[str] = mapped_column(String(100))
    rule_id: Mapped[str] = mapped_column(String(128))
    ruleset_version: Mapped[str] = mapped_column(String(32))
    handler_unit: Mapped[str] = mapped_column(String(64))
    provider_unit: Mapped[str] = mapped_column(String(64))
    customership_unit: Mapped[str] = mapped_column(String(64))  # NO_UNIT for none
    home_municipality: Mapped[str] = mapped_column(String(3))
    decisions: Mapped[int] = mapped_column(Integer)
    # Decisions with at least one override: each counted once, however many it has.
    overridden: Mapped[int] = mapped_column(Integer)


class DecisionCount(Counts, Base):
    """The decision counts of each Finnish day (see Counts): for the days of a range that cut a month.

    Derived data: the audit chain does not vouch for it; `reitti audit rebuild-counts` rebuilds it.
    """

    __tablename__ = "decision_counts"
    # Without a row id SQLite keeps the rows in key order: a range of days is read in one run.
    __table_args__ = (PrimaryKeyConstraint("day", *COUNT_GROUP), {"sqlite_with_rowid": False})

    # The Finnish calendar day of decided_at: the stats' months are Finnish months.
    day: Mapped[date] = mapped_column(Date)


class DecisionMonthCount(Counts, Base):
    """The decision counts of each Finnish month (see Counts): the sums of its days, for whole months.

    A day has nearly as many groups as a month: the benchmark's year of a million decisions has
    about thirty times fewer rows here than by day, and a year's stats read these. Derived data:
    the audit chain does not vouch for it; `reitti audit rebuild-counts` rebuilds it.
    """

    __tablename__ = "decision_month_counts"
    __table_args__ = (PrimaryKeyConstraint("month", *COUNT_GROUP), {"sqlite_with_rowid": False})

    # The month's first day.
    month: Mapped[date] = mapped_column(Date)


class AccessAction(StrEnum):
    """What a logged read was."""

    decision = "decision"
    link = "link"
    overrides = "overrides"
    list = "list"
    export = "export"
    stats = "stats"
    worklist = "worklist"
    customership = "customership"


class AccessEntry(Base):
    """One read of the decision log by a person: who, when, what and how many rows."""

    __tablename__ = "access_log"

    seq: Mapped[int] = mapped_column(SequenceNumber, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    key_id: Mapped[int] = mapped_column(SequenceNumber)
    key_name: Mapped[str] = mapped_column(String(128), index=True)
    role: Mapped[str] = mapped_column(String(16))
    municipality: Mapped[str | None] = mapped_column(String(3))
    action: Mapped[str] = mapped_column(String(16))
    decision_id: Mapped[str | None] = mapped_column(String(36), index=True)
    filters: Mapped[dict[str, Any] | None] = mapped_column(Document)
    rows: Mapped[int] = mapped_column(Integer)
    # The access log's own chain (app/audit/access_log.py): gap-free `seq`, hashes and the chain key's MAC.
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))
    mac_key: Mapped[str | None] = mapped_column(String(16))
    mac: Mapped[str | None] = mapped_column(String(64))


class ItemKind(StrEnum):
    """Why a decision is on a unit's worklist."""

    # The unit handles the event, provides the service or has a task in it.
    new = "new"
    # The decision moves the customership to the unit, or away from it.
    handover_in = "handover_in"
    handover_out = "handover_out"
    # Another unit returned the item: a request to whoever may override the decision.
    returned = "returned"


class Anomaly(StrEnum):
    """Where the customership register and a rule disagree; the decision stays what the rules say."""

    plan_update_outside_oeo = "plan_update_outside_oeo"
    oeo_end_without_start = "oeo_end_without_start"


class WorklistItem(Base):
    """A decision on a unit's worklist, open until the unit answers it (an acknowledgement, or an override).

    Written in the transaction that stores the decision (app/register/). Working state beside
    the records: `answered_at` is set when the item is answered; the answers themselves are
    chained records (Acknowledgement, Override).
    """

    __tablename__ = "worklist_items"
    __table_args__ = (
        PrimaryKeyConstraint("decision_seq", "unit", "kind"),
        # A unit's open items, oldest first, are one run of this index (open ones have NULL answered_at).
        Index("ix_worklist_items_unit_answered_at_decision_seq", "unit", "answered_at", "decision_seq"),
    )

    decision_seq: Mapped[int] = mapped_column(SequenceNumber)
    unit: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    decision_id: Mapped[str] = mapped_column(String(36), index=True)
    event_type: Mapped[str] = mapped_column(String(100))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The other side of a handover (the unit the customer comes from or goes to), or who returned it.
    other_unit: Mapped[str | None] = mapped_column(String(64))
    anomaly: Mapped[str | None] = mapped_column(String(32))
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Customership(Base):
    """One row of the customership register: from `occurred_at` on, the customer is held by `unit`.

    One row per decision that names a customership; the holder at any time is the row with the
    latest (occurred_at, decision_seq) up to it, so an event that arrives late never overwrites a
    later one, and ties go the same way every time.
    """

    __tablename__ = "customerships"
    __table_args__ = (
        Index(
            "ix_customerships_customer_pseudonym_occurred_at_seq", "customer_pseudonym", "occurred_at", "decision_seq"
        ),
    )

    decision_seq: Mapped[int] = mapped_column(SequenceNumber, primary_key=True, autoincrement=False)
    decision_id: Mapped[str] = mapped_column(String(36), unique=True)
    customer_pseudonym: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    event_type: Mapped[str] = mapped_column(String(100))
    unit: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))
    # The holder just before, as the register saw it when this decision was stored.
    previous_unit: Mapped[str | None] = mapped_column(String(64))
    anomaly: Mapped[str | None] = mapped_column(String(32), index=True)


class CustomerHolder(Base):
    """Each customer's latest row of the register: what the writer's batch compares a new decision with.

    Derived from `customerships` (its row with the latest occurred_at, then decision_seq) and kept
    in the same transactions; one key lookup per customer, however long the history is.
    """

    __tablename__ = "customer_holders"

    customer_pseudonym: Mapped[str] = mapped_column(String(64), primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decision_seq: Mapped[int] = mapped_column(SequenceNumber)
    unit: Mapped[str] = mapped_column(String(64))


class AcknowledgementOutcome(StrEnum):
    """How a unit answered an item on its worklist."""

    taken = "taken"
    returned = "returned"


class ReturnReason(StrEnum):
    """Why a unit returned an item: a fixed list, so that reports can count them."""

    not_our_unit = "not_our_unit"
    wrong_event_data = "wrong_event_data"
    customer_moved = "customer_moved"
    customer_not_ours = "customer_not_ours"
    other = "other"


class Acknowledgement(Base):
    """A unit's answer to an item of its worklist: taken, or returned with a reason. A chained record."""

    __tablename__ = "acknowledgements"
    # One answer per unit and decision: a repeat is answered with the first.
    __table_args__ = (UniqueConstraint("decision_id", "unit"),)

    seq: Mapped[int] = mapped_column(SequenceNumber, primary_key=True, autoincrement=True)
    acknowledgement_id: Mapped[str] = mapped_column(String(36), unique=True)
    decision_id: Mapped[str] = mapped_column(String(36), ForeignKey("decisions.decision_id"))
    unit: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(String(2000))
    # The unit the returned item went back to.
    returned_to: Mapped[str | None] = mapped_column(String(64))
    recorded_by: Mapped[str] = mapped_column(String(128))
    recorded_by_key: Mapped[int] = mapped_column(SequenceNumber)
    recorded_role: Mapped[str] = mapped_column(String(16))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class AnnouncedKind(StrEnum):
    """What a webhook announces: decisions and overrides here; handovers and acknowledgements from worklists."""

    decision = "decision"
    handover = "handover"
    acknowledgement = "acknowledgement"
    override = "override"


class WebhookSubscription(Base):
    """A receiver of webhooks: where, which records, and the secret that signs what it is sent.

    The secret is kept in clear: signing needs it. After a rotation the previous secret signs too
    until `previous_secret_until`, so that a receiver can change its secret without missing a message.
    Empty lists of kinds, units or event types mean all.
    """

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(SequenceNumber, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(String(2000))
    kinds: Mapped[list[str]] = mapped_column(JSON)
    units: Mapped[list[str]] = mapped_column(JSON)
    event_types: Mapped[list[str]] = mapped_column(JSON)
    # The whole record in each message, not only what names it.
    full_record: Mapped[bool] = mapped_column(Boolean)
    secret: Mapped[str] = mapped_column(String(64))
    previous_secret: Mapped[str | None] = mapped_column(String(64))
    previous_secret_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Why: "admin" (by hand) or "gone" (the receiver answered 410).
    disabled_reason: Mapped[str | None] = mapped_column(String(16))


class DeliveryState(StrEnum):
    """Where a message of the outbox is."""

    pending = "pending"
    delivered = "delivered"
    dead = "dead"


class WebhookDelivery(Base):
    """One message of the outbox: a record announced to one subscription, written in the record's transaction.

    `message_id` is the `webhook-id` header, the same on every attempt: the receiver's idempotency
    key. A pending message is due at `due_at`; a worker that claims it moves `due_at` past its
    attempt's timeout (a lease), so no other worker sends it meanwhile, and a worker that dies
    mid-delivery leaves it to be sent again when the lease runs out.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_state_due_at", "state", "due_at"),)

    id: Mapped[int] = mapped_column(SequenceNumber, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(40), unique=True)
    subscription_id: Mapped[int] = mapped_column(
        SequenceNumber, ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[str] = mapped_column(String(36))
    payload: Mapped[dict[str, Any]] = mapped_column(Document)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WebhookAttempt(Base):
    """One attempt to deliver a message: when, the receiver's status (or the error), and how long it took."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(SequenceNumber, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(
        SequenceNumber, ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(200))
