"""Webhook subscriptions over HTTP, for admins: made, listed, disabled, enabled, rotated, removed; the delivery log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from app.models import DeliveryState, WebhookSubscription
from app.schemas import WebhookIn
from app.web.api import EVERY_OPERATION
from app.web.api.schemas import (
    AttemptOut,
    DeliveryOut,
    RedeliveredOut,
    WebhookOut,
    WebhookSecretOut,
    problem_responses,
)
from app.web.deps import AdministratorDep, ReadSessionDep, RulesDep, WriteTransactionDep, services
from app.webhooks import subscriptions

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], responses=EVERY_OPERATION)
NOT_FOUND = problem_responses(404)
# Ids as the database holds them: a bigger number is a 422 naming it, never an overflow there.
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]


def webhook_out(row: WebhookSubscription) -> WebhookOut:
    """A subscription as the API shows it: never its secret."""
    return WebhookOut(
        id=row.id,
        url=row.url,
        kinds=row.kinds,
        units=row.units,
        event_types=row.event_types,
        full_record=row.full_record,
        created_by=row.created_by,
        created_at=row.created_at,
        enabled=row.disabled_at is None,
        disabled_at=row.disabled_at,
        disabled_reason=row.disabled_reason,
        previous_secret_until=row.previous_secret_until,
    )


def _with_secret(row: WebhookSubscription) -> WebhookSecretOut:
    return WebhookSecretOut(**webhook_out(row).model_dump(), secret=row.secret)


@router.post("", status_code=201, responses=problem_responses(400, 413))
def create_webhook(
    body: WebhookIn,
    request: Request,
    response: Response,
    principal: AdministratorDep,
    transaction: WriteTransactionDep,
    rules: RulesDep,
) -> WebhookSecretOut:
    """Subscribe a receiver; the answer holds its signing secret, shown only now."""
    with transaction() as session:
        row = subscriptions.create(
            session,
            body,
            created_by=principal.name,
            registry=rules.registry,
            allow_hosts=services(request).settings.webhook_allow_hosts,
        )
    response.headers["Location"] = f"/v1/webhooks/{row.id}"
    return _with_secret(row)


@router.get("")
def list_webhooks(principal: AdministratorDep, session: ReadSessionDep) -> list[WebhookOut]:
    """Every subscription, oldest first."""
    return [webhook_out(row) for row in subscriptions.listed(session)]


@router.get("/{webhook_id}", responses=NOT_FOUND)
def get_webhook(webhook_id: Id, principal: AdministratorDep, session: ReadSessionDep) -> WebhookOut:
    """One subscription."""
    return webhook_out(subscriptions.get(session, webhook_id))


@router.delete("/{webhook_id}", status_code=204, responses=NOT_FOUND)
def delete_webhook(webhook_id: Id, principal: AdministratorDep, transaction: WriteTransactionDep) -> None:
    """Remove a subscription, its messages and their log."""
    with transaction() as session:
        subscriptions.remove(session, webhook_id)


@router.post("/{webhook_id}/disable", responses=NOT_FOUND)
def disable_webhook(webhook_id: Id, principal: AdministratorDep, transaction: WriteTransactionDep) -> WebhookOut:
    """Stop sending: its waiting messages wait, and no new ones are written for it meanwhile."""
    with transaction() as session:
        return webhook_out(subscriptions.set_enabled(session, webhook_id, enabled=False))


@router.post("/{webhook_id}/enable", responses=NOT_FOUND)
def enable_webhook(webhook_id: Id, principal: AdministratorDep, transaction: WriteTransactionDep) -> WebhookOut:
    """Send again, also after a 410 disabled it."""
    with transaction() as session:
        return webhook_out(subscriptions.set_enabled(session, webhook_id, enabled=True))


@router.post("/{webhook_id}/rotate", responses=NOT_FOUND)
def rotate_webhook_secret(
    webhook_id: Id, principal: AdministratorDep, transaction: WriteTransactionDep
) -> WebhookSecretOut:
    """A new secret, shown only now; the previous one signs too for 24 hours."""
    with transaction() as session:
        return _with_secret(subscriptions.rotate(session, webhook_id))


@router.get("/{webhook_id}/deliveries", responses=NOT_FOUND)
def list_deliveries(
    webhook_id: Id,
    principal: AdministratorDep,
    session: ReadSessionDep,
    state: DeliveryState | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeliveryOut]:
    """The subscription's messages, newest first, with each attempt's status, latency and error."""
    rows = subscriptions.deliveries(session, webhook_id, state=state, limit=limit)
    tried = subscriptions.attempts(session, [row.id for row in rows])
    return [
        DeliveryOut(
            id=row.id,
            message_id=row.message_id,
            kind=row.kind,
            record_id=row.record_id,
            state=row.state,
            attempts=[AttemptOut.model_validate(attempt, from_attributes=True) for attempt in tried[row.id]],
            created_at=row.created_at,
            due_at=row.due_at,
            finished_at=row.finished_at,
        )
        for row in rows
    ]


@router.post("/{webhook_id}/redeliver", responses=NOT_FOUND)
def redeliver_dead(webhook_id: Id, principal: AdministratorDep, transaction: WriteTransactionDep) -> RedeliveredOut:
    """Send every dead message of the subscription again, from the start of the schedule."""
    with transaction() as session:
        return RedeliveredOut(redelivered=subscriptions.redeliver(session, webhook_id))


@router.post("/{webhook_id}/deliveries/{delivery_id}/redeliver", responses=NOT_FOUND)
def redeliver_one(
    webhook_id: Id, delivery_id: Id, principal: AdministratorDep, transaction: WriteTransactionDep
) -> RedeliveredOut:
    """Send one dead message again, from the start of the schedule."""
    with transaction() as session:
        return RedeliveredOut(redelivered=subscriptions.redeliver(session, webhook_id, delivery_id=delivery_id))
