"""The outbox: a record is announced to each subscription that wants it, in the record's own transaction.

What commits is announced and nothing else: the messages are rows written beside the record,
so a process that dies before the commit leaves neither, and one that dies after leaves both.
Messages are made per subscription here, not fanned out later: with no subscription (the
common case) announcing costs one read of the subscriptions per transaction and writes
nothing, and with some it is one INSERT of all the batch's messages. The writer's batch
announces its decisions and their handovers in one call, so it reads the subscriptions once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, insert, select
from sqlalchemy.orm import Session

from app.db import insert_rows
from app.models import (
    Acknowledgement,
    AnnouncedKind,
    Decision,
    DeliveryState,
    Override,
    WebhookDelivery,
    WebhookSubscription,
)
from app.webhooks.signing import new_message_id


@dataclass(frozen=True)
class Announcement:
    """A record to announce: what names it (a thin message) and, for those who ask, the record itself.

    `units` are the units it concerns (a subscription's `units` filter matches any of them);
    `path` is where a receiver fetches the record with its own key. Nothing names the customer,
    not even by pseudonym.
    """

    kind: AnnouncedKind
    record_id: str
    decision_id: str
    event_id: str
    event_type: str
    client: str
    units: tuple[str, ...]
    occurred_at: datetime
    recorded_at: datetime
    path: str
    record: Mapping[str, Any] = field(default_factory=dict)

    def payload(self, *, full: bool) -> dict[str, Any]:
        """The message's body: Standard Webhooks' `type`, `timestamp` and `data`."""
        data: dict[str, Any] = {
            "kind": self.kind.value,
            "record_id": self.record_id,
            "decision_id": self.decision_id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "client": self.client,
            "units": list(self.units),
            "occurred_at": _utc(self.occurred_at),
            "recorded_at": _utc(self.recorded_at),
            "url": self.path,
        }
        if full:
            data["record"] = dict(self.record)
        return {"type": f"{self.kind.value}.created", "timestamp": _utc(self.recorded_at), "data": data}


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# Built once, as every writer's batch reads them: the enabled subscriptions, only the columns
# that say which records each wants and how; and the INSERT of their messages.
_ENABLED_SUBSCRIPTIONS = select(
    WebhookSubscription.id,
    WebhookSubscription.kinds,
    WebhookSubscription.units,
    WebhookSubscription.event_types,
    WebhookSubscription.full_record,
).where(WebhookSubscription.disabled_at.is_(None))
_INSERT_MESSAGES = insert(WebhookDelivery)

# An enabled subscription as `_ENABLED_SUBSCRIPTIONS` reads it: id, kinds, units, event types, full record.
Subscriber = Row[int, list[str], list[str], list[str], bool]


def _wants(subscription: Subscriber, announcement: Announcement) -> bool:
    """Whether a subscription's filters let this record through; an empty filter lets all through."""
    return (
        (not subscription.kinds or announcement.kind.value in subscription.kinds)
        and (not subscription.event_types or announcement.event_type in subscription.event_types)
        and (not subscription.units or any(unit in subscription.units for unit in announcement.units))
    )


def announce(session: Session, announcements: Sequence[Announcement]) -> int:
    """Write a message for each enabled subscription that wants each record, in the caller's transaction.

    The public way to announce a record of any kind: call it in the transaction that writes the
    record, after the record is flushed. How many messages were written.
    """
    if not announcements:
        return 0
    # On the connection: plain rows of a few columns, no ORM objects.
    subscriptions = session.connection().execute(_ENABLED_SUBSCRIPTIONS).all()
    if not subscriptions:
        return 0
    now = datetime.now(UTC)
    rows = []
    for announcement in announcements:
        payloads: dict[bool, dict[str, Any]] = {}
        for subscription in subscriptions:
            if not _wants(subscription, announcement):
                continue
            full = subscription.full_record
            if full not in payloads:
                payloads[full] = announcement.payload(full=full)
            rows.append(
                {
                    "message_id": new_message_id(),
                    "subscription_id": subscription.id,
                    "kind": announcement.kind.value,
                    "record_id": announcement.record_id,
                    "payload": payloads[full],
                    "state": DeliveryState.pending.value,
                    "attempts": 0,
                    "created_at": now,
                    "due_at": now,
                    "finished_at": None,
                }
            )
    if rows:
        # On the connection: one INSERT of plain rows, no ORM objects, as the decisions themselves.
        insert_rows(session.connection(), _INSERT_MESSAGES, rows)
    return len(rows)


def _units(*units: str | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(unit for unit in units if unit))


def decision_announcements(rows: Iterable[Mapping[str, Any]]) -> list[Announcement]:
    """The announcements of newly stored decisions, from the decision log's column values."""
    return [
        Announcement(
            kind=AnnouncedKind.decision,
            record_id=row["decision_id"],
            decision_id=row["decision_id"],
            event_id=row["event_id"],
            event_type=row["event_type"],
            client=row["client"],
            units=_units(row["handler_unit"], row["provider_unit"], row["customership_unit"]),
            occurred_at=row["occurred_at"],
            recorded_at=row["decided_at"],
            path=f"/v1/decisions/{row['decision_id']}",
            record=row["decision"],
        )
        for row in rows
    ]


def override_announcement(override: Override, decision: Decision) -> Announcement:
    """The announcement of an override of a decision.

    Its units are the decision's and the new ones, so that a unit hears that work left it too.
    The full record leaves out the coach's free text: it may say things about the customer.
    """
    record = {
        "override_id": override.override_id,
        "decision_id": override.decision_id,
        "handler": override.handler_unit,
        "customership": override.customership_unit,
        "reason": override.reason,
        "recorded_role": override.recorded_role,
        "recorded_at": _utc(override.recorded_at),
    }
    return Announcement(
        kind=AnnouncedKind.override,
        record_id=override.override_id,
        decision_id=override.decision_id,
        event_id=decision.event_id,
        event_type=decision.event_type,
        client=decision.client,
        units=_units(
            decision.handler_unit,
            decision.provider_unit,
            decision.customership_unit,
            override.handler_unit,
            override.customership_unit,
        ),
        occurred_at=decision.occurred_at,
        recorded_at=override.recorded_at,
        path=f"/v1/decisions/{override.decision_id}/overrides",
        record=record,
    )


def acknowledgement_announcement(answer: Acknowledgement, decision: Decision) -> Announcement:
    """The announcement of a unit's answer to an item: taken, or returned (and to whom).

    Its units are the answering unit and, for a return, the unit it went back to. The full
    record leaves out the free text, as an override's does.
    """
    record = {
        "acknowledgement_id": answer.acknowledgement_id,
        "decision_id": answer.decision_id,
        "unit": answer.unit,
        "outcome": answer.outcome,
        "reason": answer.reason,
        "returned_to": answer.returned_to,
        "recorded_role": answer.recorded_role,
        "recorded_at": _utc(answer.recorded_at),
    }
    return Announcement(
        kind=AnnouncedKind.acknowledgement,
        record_id=answer.acknowledgement_id,
        decision_id=answer.decision_id,
        event_id=decision.event_id,
        event_type=decision.event_type,
        client=decision.client,
        units=_units(answer.unit, answer.returned_to),
        occurred_at=decision.occurred_at,
        recorded_at=answer.recorded_at,
        path=f"/v1/decisions/{answer.decision_id}",
        record=record,
    )
