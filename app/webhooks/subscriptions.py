"""Webhook subscriptions and their delivery log: what the API, the CLI and the admin's page all call."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.errors import FieldError, InvalidBody, NotFound
from app.models import DeliveryState, WebhookAttempt, WebhookDelivery, WebhookSubscription
from app.rules.model import Registry
from app.schemas import WebhookIn
from app.webhooks.signing import new_secret
from app.webhooks.urls import UnsafeUrl, check_url

# After a rotation the previous secret signs too, this long: time for a receiver to change over.
ROTATION_OVERLAP = timedelta(hours=24)


def create(
    session: Session, body: WebhookIn, *, created_by: str, registry: Registry, allow_hosts: frozenset[str]
) -> WebhookSubscription:
    """A new, enabled subscription with a fresh secret; InvalidBody (422) names each field that is wrong."""
    errors = []
    try:
        check_url(body.url, allow_hosts)
    except UnsafeUrl as unsafe:
        errors.append(FieldError(("body", "url"), str(unsafe)))
    for index, unit in enumerate(body.units):
        if unit not in registry.units:
            errors.append(FieldError(("body", "units", index), "is not a unit id (GET /v1/units lists them)"))
    for index, code in enumerate(body.event_types):
        if code not in registry.event_types:
            errors.append(FieldError(("body", "event_types", index), "is not an event type (GET /v1/event-types)"))
    if errors:
        raise InvalidBody(errors)
    row = WebhookSubscription(
        url=body.url,
        kinds=sorted({kind.value for kind in body.kinds}),
        units=sorted(set(body.units)),
        event_types=sorted(set(body.event_types)),
        full_record=body.full_record,
        secret=new_secret(),
        created_by=created_by,
        created_at=datetime.now(UTC),
    )
    session.add(row)
    session.flush()
    return row


def listed(session: Session) -> Sequence[WebhookSubscription]:
    """Every subscription, oldest first."""
    return session.scalars(select(WebhookSubscription).order_by(WebhookSubscription.id)).all()


def get(session: Session, subscription_id: int) -> WebhookSubscription:
    """One subscription; NotFound (404) when there is none by that id."""
    row = session.get(WebhookSubscription, subscription_id)
    if row is None:
        raise NotFound("No webhook subscription has this id.")
    return row


def set_enabled(session: Session, subscription_id: int, *, enabled: bool) -> WebhookSubscription:
    """Enable or disable a subscription; a disabled one's messages wait, and none are written for it meanwhile."""
    row = get(session, subscription_id)
    if enabled:
        row.disabled_at, row.disabled_reason = None, None
    elif row.disabled_at is None:
        row.disabled_at, row.disabled_reason = datetime.now(UTC), "admin"
    session.flush()
    return row


def rotate(session: Session, subscription_id: int) -> WebhookSubscription:
    """A new secret; the one it replaces still signs for ROTATION_OVERLAP, as the specification allows."""
    row = get(session, subscription_id)
    row.previous_secret = row.secret
    row.previous_secret_until = datetime.now(UTC) + ROTATION_OVERLAP
    row.secret = new_secret()
    session.flush()
    return row


def remove(session: Session, subscription_id: int) -> None:
    """Delete a subscription with its messages and their attempts."""
    session.delete(get(session, subscription_id))
    session.flush()


def deliveries(
    session: Session, subscription_id: int, *, state: DeliveryState | None = None, limit: int = 100
) -> Sequence[WebhookDelivery]:
    """A subscription's messages, newest first; only those in `state` when given."""
    get(session, subscription_id)
    query = select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)
    if state is not None:
        query = query.where(WebhookDelivery.state == state.value)
    return session.scalars(query.order_by(WebhookDelivery.id.desc()).limit(limit)).all()


def attempts(session: Session, delivery_ids: Sequence[int]) -> dict[int, list[WebhookAttempt]]:
    """The attempts of these messages, oldest first, by message."""
    found: dict[int, list[WebhookAttempt]] = {delivery_id: [] for delivery_id in delivery_ids}
    if delivery_ids:
        query = select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(delivery_ids)).order_by(WebhookAttempt.id)
        for attempt in session.scalars(query):
            found[attempt.delivery_id].append(attempt)
    return found


def redeliver(session: Session, subscription_id: int, *, delivery_id: int | None = None) -> int:
    """Send dead messages again from the start of the schedule: one, or all of the subscription's. How many."""
    get(session, subscription_id)
    condition = (WebhookDelivery.subscription_id == subscription_id) & (
        WebhookDelivery.state == DeliveryState.dead.value
    )
    if delivery_id is not None:
        if session.scalar(select(WebhookDelivery.id).where(condition, WebhookDelivery.id == delivery_id)) is None:
            raise NotFound("This subscription has no dead message with this id.")
        condition = condition & (WebhookDelivery.id == delivery_id)
    result = session.execute(
        update(WebhookDelivery)
        .where(condition)
        .values(state=DeliveryState.pending.value, attempts=0, due_at=datetime.now(UTC), finished_at=None)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def backlog(session: Session) -> tuple[int, datetime | None]:
    """How many messages wait to be delivered, and when the oldest of them was written."""
    count, oldest = session.execute(
        select(func.count(), func.min(WebhookDelivery.created_at)).where(
            WebhookDelivery.state == DeliveryState.pending.value
        )
    ).one()
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return int(count), oldest


def by_state(session: Session) -> dict[str, int]:
    """How many messages are pending, delivered and dead."""
    counts = dict.fromkeys((state.value for state in DeliveryState), 0)
    for state, count in session.execute(select(WebhookDelivery.state, func.count()).group_by(WebhookDelivery.state)):
        counts[state] = int(count)
    return counts


def by_subscription(session: Session) -> dict[int, tuple[int, int]]:
    """Each subscription's pending and dead messages."""
    found: dict[int, tuple[int, int]] = {}
    query = (
        select(WebhookDelivery.subscription_id, WebhookDelivery.state, func.count())
        .where(WebhookDelivery.state != DeliveryState.delivered.value)
        .group_by(WebhookDelivery.subscription_id, WebhookDelivery.state)
    )
    for subscription_id, state, count in session.execute(query):
        pending, dead = found.get(subscription_id, (0, 0))
        found[subscription_id] = (
            (pending + count, dead) if state == DeliveryState.pending.value else (pending, dead + count)
        )
    return found
