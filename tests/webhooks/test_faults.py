"""Webhooks under faults: the service killed with SIGKILL mid-delivery, the database gone for a while,
two worker processes sharing the outbox on PostgreSQL.

After each: every committed decision announced, no message in flight twice at once, and a
message received more than once only ever under the same `webhook-id`.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.access.keys import create_key
from app.db import make_engine, make_sessions
from app.models import Role
from tests.conftest import TEST_CHAIN_INFO, Server, empty_the_log, migrate
from tests.test_faults import PrivatePostgres, private_postgres  # noqa: F401 - the fixture, used by name
from tests.test_workers import Workers
from tests.web.api.test_events import oeo_start
from tests.webhooks.conftest import Received, Receiver, empty_webhooks, webhook_settings

pytestmark = pytest.mark.slow

WORKER_ENV = {
    "REITTI_WEBHOOK_ALLOW_HOSTS": "127.0.0.1",
    "REITTI_WEBHOOK_RETRY_SCHEDULE": "0,0.2,0.4,0.6,1,1,1,1",
    "REITTI_WEBHOOK_TIMEOUT": "1",
    "REITTI_WEBHOOK_POLL_SECONDS": "0.05",
}


def keys(database_url: str) -> dict[str, dict[str, str]]:
    engine = make_engine(database_url)
    _, write = make_sessions(engine, info=TEST_CHAIN_INFO)
    made = {}
    with write() as session:
        for role in (Role.admin, Role.integration):
            _, plain = create_key(session, role=role, name=f"faults-{role.value}", municipality=None)
            made[role.value] = {"Authorization": f"Bearer {plain}"}
    engine.dispose()
    return made


@pytest.fixture
def emptied_after(webhook_database: str) -> Iterator[str]:
    yield webhook_database
    empty_webhooks(webhook_database)
    empty_the_log(webhook_database)


def subscribe(base_url: str, admin: dict[str, str], url: str) -> None:
    """Decisions only: one message per decision (a customer's first oeo.start is a handover too)."""
    body = {"url": url, "kinds": ["decision"]}
    response = httpx.post(f"{base_url}/v1/webhooks", json=body, headers=admin, timeout=30)
    assert response.status_code == 201, response.text


def post_many(base_url: str, key: dict[str, str], prefix: str, count: int) -> list[int]:
    """Post events side by side; the status of each (503 while the database is away)."""

    def post(number: int) -> int:
        try:
            response = httpx.post(
                f"{base_url}/v1/events", json=oeo_start(f"{prefix}-{number}"), headers=key, timeout=30
            )
        except httpx.TransportError:
            return 0
        return response.status_code

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(post, range(count)))


def committed_decisions(database_url: str) -> set[str]:
    engine = make_engine(database_url)
    with engine.connect() as connection:
        found = {row[0] for row in connection.execute(text("SELECT decision_id FROM decisions"))}
    engine.dispose()
    return found


def decision_of(received: Received) -> str:
    data: dict[str, Any] = received.json()["data"]
    return str(data["decision_id"])


def assert_announced_exactly(receiver: Receiver, decisions: set[str]) -> None:
    """Every decision delivered; none in flight twice at once; repeats only under one webhook-id."""
    delivered = {decision_of(got) for got in receiver.delivered().values()}
    assert delivered == decisions
    ids_by_decision: dict[str, set[str]] = {}
    for got in receiver.received:
        ids_by_decision.setdefault(decision_of(got), set()).add(got.message_id)
    assert all(len(ids) == 1 for ids in ids_by_decision.values())
    assert receiver.concurrent_repeats == []


def test_the_service_killed_with_sigkill_mid_delivery_delivers_everything_after_a_restart(
    emptied_after: str, receiver: Receiver
) -> None:
    database_url = emptied_after
    receiver.answer = lambda number, _: (204, {}, 0.3)  # slow enough to be killed mid-delivery
    made = keys(database_url)
    running = Workers(database_url, workers=2, **WORKER_ENV)
    try:
        subscribe(running.base_url, made["admin"], receiver.url)
        assert set(post_many(running.base_url, made["integration"], "killed", 60)) == {201}
        # Killed while the receiver is answering a message (each answer takes 0.3 s): that message's
        # sender dies waiting, so it must be sent again after the restart.
        receiver.wait_for(lambda: len(receiver.received) >= 10 and any(receiver.in_flight.values()))
        with receiver.lock:
            cut_off = {message_id for message_id, senders in receiver.in_flight.items() if senders}
        for pid in running.children():
            os.kill(pid, signal.SIGKILL)
        os.kill(running.process.pid, signal.SIGKILL)
        running.process.wait(timeout=10)
        before_restart = len(receiver.received)
    finally:
        running.close()
    assert before_restart < 60, "the kill came after every delivery: it proved nothing"
    restarted = Workers(database_url, workers=2, **WORKER_ENV)
    try:
        decisions = committed_decisions(database_url)
        assert len(decisions) == 60
        # Until every decision is delivered and the messages cut off at the kill have come again: the
        # receiver counted those as delivered when it answered, before their leases ran out.
        receiver.wait_for(
            lambda: (
                {decision_of(g) for g in receiver.delivered().values()} == decisions
                and all(sum(got.message_id == cut for got in receiver.received) > 1 for cut in cut_off)
            ),
            timeout=40,
        )
    finally:
        restarted.close()
    assert_announced_exactly(receiver, decisions)
    # The messages in flight at the kill were sent again when their lease ran out: the same id twice.
    assert len(receiver.received) > len({got.message_id for got in receiver.received})


def test_two_workers_on_postgresql_share_the_outbox_and_send_each_message_once(
    emptied_after: str, receiver: Receiver
) -> None:
    database_url = emptied_after
    if not database_url.startswith("postgresql"):
        pytest.skip("SKIP LOCKED is PostgreSQL's; SQLite has one writer")
    receiver.answer = lambda number, _: (204, {}, 0.02)
    made = keys(database_url)
    running = Workers(database_url, workers=2, **WORKER_ENV)
    try:
        subscribe(running.base_url, made["admin"], receiver.url)
        assert set(post_many(running.base_url, made["integration"], "shared", 150)) == {201}
        decisions = committed_decisions(database_url)
        receiver.wait_for(lambda: len(receiver.delivered()) >= 150, timeout=60)
        time.sleep(0.5)
    finally:
        running.close()
    assert_announced_exactly(receiver, decisions)
    assert len(receiver.received) == 150  # no failure, so no repeat at all


def test_the_database_gone_for_a_while_loses_no_announcement_and_announces_nothing_uncommitted(
    private_postgres: PrivatePostgres,  # noqa: F811 - the fixture imported above
    receiver: Receiver,
) -> None:
    url = private_postgres.url
    migrate(url)
    receiver.answer = lambda number, _: (204, {}, 0.2)
    made = keys(url)
    with Server(webhook_settings(url)) as server:
        subscribe(server.base_url, made["admin"], receiver.url)
        assert set(post_many(server.base_url, made["integration"], "before", 20)) == {201}
        receiver.wait_for(lambda: len(receiver.received) >= 3)
        private_postgres.stop()  # with messages in flight: their outcome cannot be written
        during = post_many(server.base_url, made["integration"], "during", 5)
        assert set(during) == {503}
        time.sleep(1)
        private_postgres.start()
        assert set(post_many(server.base_url, made["integration"], "after", 20)) == {201}
        decisions = committed_decisions(url)
        assert len(decisions) == 40
        receiver.wait_for(lambda: {decision_of(g) for g in receiver.delivered().values()} == decisions, timeout=40)
    assert_announced_exactly(receiver, decisions)
    assert not any(got.json()["data"]["event_id"].startswith("during") for got in receiver.received)
