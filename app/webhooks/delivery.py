"""The delivery worker: one thread in every worker process sends the outbox's due messages.

Workers share the outbox through the database. A worker claims a few due messages in a short
transaction (on PostgreSQL `FOR UPDATE SKIP LOCKED`, so two workers never claim the same row;
on SQLite the one write lock does the same) and moves each one's `due_at` past the time its
attempt can take: a lease. It sends them outside any transaction, then writes what came of
each. A worker that dies mid-delivery leaves its messages to be claimed again when their lease
runs out, so a message is delivered at least once, never by two workers at the same time, and
a repeat carries the same `webhook-id`.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db import Transaction
from app.models import DeliveryState, WebhookAttempt, WebhookDelivery, WebhookSubscription
from app.webhooks.signing import signature_header
from app.webhooks.urls import UnsafeUrl, check_url

log = logging.getLogger("reitti")

# Messages claimed at once, and sent side by side: a slow receiver holds up one sender, not all.
CLAIM_BATCH = 32
SENDERS = 8
# An answer's body is read this far and no further: a receiver cannot make the sender hold gigabytes.
MAX_ANSWER_BYTES = 64 * 1024
# A Retry-After longer than a day is taken as a day.
LONGEST_RETRY_AFTER = 86_400.0


@dataclass(frozen=True)
class Claimed:
    """A message claimed for one attempt, with what sending it needs."""

    delivery_id: int
    message_id: str
    subscription_id: int
    url: str
    secrets: list[str]
    payload: dict[str, Any]
    attempt: int


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to."""

    claimed: Claimed
    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None
    retry_after: float | None

    @property
    def delivered(self) -> bool:
        """A 2xx answer is delivery; anything else is tried again."""
        return self.status_code is not None and 200 <= self.status_code < 300


def body_of(payload: dict[str, Any]) -> bytes:
    """The bytes sent and signed: compact JSON, UTF-8."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A Retry-After header (seconds or an HTTP date) as seconds from now; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), LONGEST_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max((when - now).total_seconds(), 0.0), LONGEST_RETRY_AFTER)


def next_delay(schedule: Sequence[float], attempts: int, retry_after: float | None) -> float | None:
    """Seconds until the next attempt after `attempts` failed ones; None when none is left (the message is dead).

    The schedule's first step is the first attempt (at once); each later step is the wait after
    a failure, with up to a tenth added at random so that a receiver coming back is not met by
    every message at once. A longer Retry-After is honoured.
    """
    if attempts >= len(schedule):
        return None
    step = schedule[attempts]
    delay = step + random.uniform(0, step / 10)  # noqa: S311 - jitter, not a secret
    return max(delay, retry_after or 0.0)


def secrets_in_force(subscription: WebhookSubscription, now: datetime) -> list[str]:
    """The secrets that sign now: the current one, and the previous one for a while after a rotation."""
    until = subscription.previous_secret_until
    if subscription.previous_secret and until is not None and until > now:
        return [subscription.secret, subscription.previous_secret]
    return [subscription.secret]


def _due(now: datetime) -> Any:
    """The condition of a message that may be claimed now: pending, due, its subscription enabled."""
    return (
        (WebhookDelivery.state == DeliveryState.pending.value)
        & (WebhookDelivery.due_at <= now)
        & (WebhookSubscription.disabled_at.is_(None))
    )


class Deliverer:
    """Sends the outbox's due messages from one thread of this process until closed."""

    def __init__(self, read: sessionmaker[Session], write: Transaction, settings: Settings) -> None:
        self._read = read
        self._write = write
        self._schedule = settings.webhook_retry_schedule
        self._allow_hosts = settings.webhook_allow_hosts
        self._timeout = settings.webhook_timeout_seconds
        self._poll = settings.webhook_poll_seconds
        # Longer than an attempt can take (connect, write and read each within the timeout),
        # so that a message is never sent by two workers at once while one is still at it.
        self._lease = timedelta(seconds=3 * self._timeout + 5)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reitti-webhook-deliverer", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop after the attempts in flight; what is claimed and unsent is sent when its lease runs out."""
        self._stop.set()
        self._thread.join(timeout=3 * self._timeout + 5)

    def _run(self) -> None:
        transport = httpx.HTTPTransport(retries=0)
        with (
            httpx.Client(transport=transport, timeout=self._timeout, follow_redirects=False) as client,
            ThreadPoolExecutor(SENDERS, thread_name_prefix="reitti-webhook-sender") as senders,
        ):
            while not self._stop.is_set():
                try:
                    claimed = self._claim()
                    if claimed:
                        self._record(list(senders.map(lambda message: self._send(client, message), claimed)))
                except Exception as error:  # noqa: BLE001 - the database away, say: try again later
                    # The type only: a database error's text may carry what was bound.
                    log.warning("webhook delivery paused: %s", type(error).__name__)
                    claimed = []
                if len(claimed) < CLAIM_BATCH:
                    self._stop.wait(self._poll)

    def _claim(self) -> list[Claimed]:
        """Claim up to a batch of due messages, oldest first, and lease them to this worker."""
        now = datetime.now(UTC)
        due = select(WebhookDelivery.id).join(WebhookSubscription).where(_due(now)).limit(1)
        with self._read() as session:  # a read first: an idle outbox never takes the write lock
            if session.scalar(due) is None:
                return []
        with self._write() as session:
            query = (
                select(WebhookDelivery, WebhookSubscription)
                .join(WebhookSubscription)
                .where(_due(now))
                .order_by(WebhookDelivery.id)
                .limit(CLAIM_BATCH)
                .with_for_update(of=WebhookDelivery, skip_locked=True)
            )
            rows = session.execute(query).all()
            if not rows:
                return []
            ids = [delivery.id for delivery, _ in rows]
            session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(ids))
                .values(due_at=now + self._lease, attempts=WebhookDelivery.attempts + 1)
                .execution_options(synchronize_session=False)
            )
            return [
                Claimed(
                    delivery_id=delivery.id,
                    message_id=delivery.message_id,
                    subscription_id=subscription.id,
                    url=subscription.url,
                    secrets=secrets_in_force(subscription, now),
                    payload=delivery.payload,
                    attempt=delivery.attempts + 1,
                )
                for delivery, subscription in rows
            ]

    def _send(self, client: httpx.Client, message: Claimed) -> Outcome:
        """One attempt: the signed message posted, its answer not read beyond the status."""
        attempted_at = datetime.now(UTC)
        started = time.monotonic()
        status_code: int | None = None
        error: str | None = None
        retry_after: float | None = None
        try:
            check_url(message.url, self._allow_hosts)  # again: a name may resolve elsewhere by now
            body = body_of(message.payload)
            timestamp = int(time.time())
            headers = {
                "content-type": "application/json",
                "user-agent": "Reitti-Webhooks/1",
                "webhook-id": message.message_id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": signature_header(
                    message.secrets, message_id=message.message_id, timestamp=timestamp, body=body
                ),
            }
            with client.stream("POST", message.url, content=body, headers=headers) as response:
                status_code = response.status_code
                # Read what little an answer holds, so that its connection serves the next message.
                read = 0
                for chunk in response.iter_raw():
                    read += len(chunk)
                    if read > MAX_ANSWER_BYTES:
                        break
                if not 200 <= status_code < 300:
                    retry_after = retry_after_seconds(response.headers.get("retry-after"), datetime.now(UTC))
        except UnsafeUrl as unsafe:
            error = f"refused: the URL {unsafe}"
        except httpx.TimeoutException:
            error = "timed out"
        except httpx.HTTPError as failure:
            error = f"could not connect ({type(failure).__name__})"
        latency_ms = int((time.monotonic() - started) * 1000)
        if status_code is not None and not 200 <= status_code < 300:
            error = f"answered {status_code}"
        return Outcome(message, attempted_at, status_code, latency_ms, error, retry_after)

    def _record(self, outcomes: Sequence[Outcome]) -> None:
        """Write each attempt and what it means: delivered, due again later, dead, or the subscription gone."""
        now = datetime.now(UTC)
        with self._write() as session:
            session.execute(
                insert(WebhookAttempt),
                [
                    {
                        "delivery_id": o.claimed.delivery_id,
                        "attempted_at": o.attempted_at,
                        "status_code": o.status_code,
                        "latency_ms": o.latency_ms,
                        "error": o.error,
                    }
                    for o in outcomes
                ],
            )
            delivered = [o.claimed.delivery_id for o in outcomes if o.delivered]
            if delivered:  # the common case, one statement for the batch
                session.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.id.in_(delivered), WebhookDelivery.state == DeliveryState.pending.value)
                    .values(state=DeliveryState.delivered.value, finished_at=now)
                    .execution_options(synchronize_session=False)
                )
            for outcome in outcomes:
                if not outcome.delivered:
                    settle(session, outcome, self._schedule, now)


def settle(session: Session, outcome: Outcome, schedule: Sequence[float], now: datetime) -> None:
    """Move a message on after an attempt that failed: due again later, or dead.

    A 410 disables its subscription (its other messages wait until it is enabled again).
    """
    message = outcome.claimed
    pending = (WebhookDelivery.id == message.delivery_id) & (WebhookDelivery.state == DeliveryState.pending.value)
    values: dict[str, Any]
    if outcome.status_code == 410:
        session.execute(
            update(WebhookSubscription)
            .where(WebhookSubscription.id == message.subscription_id, WebhookSubscription.disabled_at.is_(None))
            .values(disabled_at=now, disabled_reason="gone")
        )
        values = {"state": DeliveryState.dead.value, "finished_at": now}
    else:
        delay = next_delay(schedule, message.attempt, outcome.retry_after)
        if delay is None:
            values = {"state": DeliveryState.dead.value, "finished_at": now}
        else:
            values = {"due_at": now + timedelta(seconds=delay)}
    session.execute(update(WebhookDelivery).where(pending).values(**values))
