"""Storing many decisions to a transaction: decisions.store and the writer thread, on both databases."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from app.access.keys import create_key
from app.db import make_engine, make_sessions
from app.decisions.store import FirstStored, Row, Submission, store
from app.decisions.writer import DecisionWriter, RowOutcome, StoringHere
from app.errors import EventIdConflict, Unauthenticated
from app.models import Role
from app.rules.engine import RuleEngine
from app.rules.events import read_event
from app.rules.model import Rules
from app.rules.routing import decide
from app.schemas import EventIn
from tests.conftest import TEST_CHAIN_INFO, chain_verifies, count_rows


def submission(rules: Rules, engine: RuleEngine, event_id: str, *, municipality: str = "244") -> Submission:
    """A new event of a coach's everyday kind, decided, ready to store; the body differs by municipality."""
    body = EventIn.model_validate(
        {
            "event_id": event_id,
            "event_type": "oeo.start",
            "occurred_at": "2025-03-03T09:15:00+02:00",
            "customer": {"type": "jobseeker", "id": "opaque-1", "home_municipality": municipality},
        }
    )
    event = read_event(body, rules, pseudonym_key=b"k")
    return Submission(
        "client-a", event, f"fingerprint-{municipality}", decide(event, engine=engine, registry=rules.registry)
    )


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine on an event loop of its own thread (another test may have left one running here)."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(asyncio.run(coroutine)))
    thread.start()
    thread.join()
    return result[0]


def decision_ids(database_url: str) -> list[str]:
    engine = make_engine(database_url)
    with engine.connect() as connection:
        found = list(connection.execute(text("SELECT decision_id FROM decisions ORDER BY seq")).scalars())
    engine.dispose()
    return found


class TestStore:
    def test_a_batch_stores_each_event_once_and_answers_every_repeat(
        self, database: Engine, database_url: str, rules: Rules, rule_engine: RuleEngine
    ) -> None:
        _, write = make_sessions(database, info=TEST_CHAIN_INFO)
        earlier = submission(rules, rule_engine, "c")
        with write() as session:
            store(session, [earlier])
        a = submission(rules, rule_engine, "a")
        a_again = submission(rules, rule_engine, "a")
        a_other_body = submission(rules, rule_engine, "a", municipality="139")
        b = submission(rules, rule_engine, "b")
        c_again = submission(rules, rule_engine, "c")
        with write() as session:
            outcomes = store(session, [a, a_again, a_other_body, b, c_again])

        assert outcomes[0] == (a.decision, True)
        assert outcomes[1] == (a.decision, False)  # the first decision, not the one made for the repeat
        assert isinstance(outcomes[2], EventIdConflict)
        assert a.decision.decision_id in outcomes[2].detail
        assert outcomes[3] == (b.decision, True)
        assert outcomes[4] == (earlier.decision, False)
        stored = [earlier.decision.decision_id, a.decision.decision_id, b.decision.decision_id]
        assert decision_ids(database_url) == stored
        assert chain_verifies(database_url)[:2] == (True, 3)


def first_held_until(release: threading.Event, write: Callable[[], AbstractContextManager[Session]]) -> Any:
    """A write factory whose first transaction waits for `release`, so that what comes meanwhile queues."""
    first = threading.Event()

    @contextmanager
    def writing() -> Iterator[Session]:
        if not first.is_set():
            first.set()
            release.wait(10)
        with write() as session:
            yield session

    return writing


class TestDecisionWriter:
    def key_id(self, database: Engine) -> int:
        _, write = make_sessions(database, info=TEST_CHAIN_INFO)
        with write() as session:
            row, _ = create_key(session, role=Role.integration, name="client-a", municipality=None)
            return row.id

    def test_requests_that_queue_meanwhile_share_a_transaction_and_a_bad_one_fails_alone(
        self, database: Engine, database_url: str, rules: Rules, rule_engine: RuleEngine
    ) -> None:
        key_id = self.key_id(database)
        _, write = make_sessions(database, info=TEST_CHAIN_INFO)
        release = threading.Event()
        good = [submission(rules, rule_engine, f"good-{n}") for n in range(4)]
        bad = submission(rules, rule_engine, "bad")
        # Cannot be stored: its decision time is no time at all.
        bad = replace(bad, decision=bad.decision.model_copy(update={"decided_at": "not a time"}))
        transactions = 0

        def counted() -> AbstractContextManager[Session]:
            nonlocal transactions
            transactions += 1
            return write()

        async def post_all() -> list[Any]:
            writer = DecisionWriter(StoringHere(first_held_until(release, counted)))
            first = asyncio.ensure_future(writer.store(good[0], key_id=key_id))
            await asyncio.sleep(0.2)  # the writer now waits in its first transaction
            rest = [asyncio.ensure_future(writer.store(s, key_id=key_id)) for s in [good[1], bad, *good[2:]]]
            await asyncio.sleep(0.1)
            release.set()
            outcomes = await asyncio.gather(first, *rest, return_exceptions=True)
            writer.close()
            return outcomes

        outcomes = run(post_all())

        assert outcomes[0] == (good[0].decision, True)
        assert outcomes[1] == (good[1].decision, True)
        assert isinstance(outcomes[2], Exception)
        assert not isinstance(outcomes[2], EventIdConflict)
        assert outcomes[3:] == [(s.decision, True) for s in good[2:]]
        # One for the first; the four queued behind it fail together before their transaction (the
        # bad one's row cannot be made), then the three good ones are stored one by one.
        assert transactions == 1 + 3
        assert sorted(decision_ids(database_url)) == sorted(s.decision.decision_id for s in good)
        assert chain_verifies(database_url)[:2] == (True, 4)

    def test_a_key_revoked_before_the_transaction_stores_nothing(
        self, database: Engine, database_url: str, rules: Rules, rule_engine: RuleEngine
    ) -> None:
        key_id = self.key_id(database)
        with database.begin() as connection:
            connection.execute(text("UPDATE api_keys SET revoked_at = CURRENT_TIMESTAMP"))
        _, write = make_sessions(database, info=TEST_CHAIN_INFO)

        async def post() -> Any:
            writer = DecisionWriter(StoringHere(write))
            try:
                return await writer.store(submission(rules, rule_engine, "after-revocation"), key_id=key_id)
            finally:
                writer.close()

        assert isinstance(run(post()), Unauthenticated)
        assert count_rows(database_url) == 0


class AnsweringFirst:
    """A `Storing` that answers every row with one first decision, as if each were a repeat."""

    def __init__(self, first: FirstStored) -> None:
        self._first = first

    def __call__(self, batch: Sequence[tuple[Row, int | None]]) -> list[RowOutcome]:
        return [self._first] * len(batch)

    def close(self) -> None:
        """Nothing held."""


def test_the_writer_thread_answers_a_repeat_whose_first_decision_no_longer_reads_and_goes_on(
    rules: Rules, rule_engine: RuleEngine
) -> None:
    repeat = submission(rules, rule_engine, "repeat")
    writer = DecisionWriter(AnsweringFirst(FirstStored("d-1", repeat.fingerprint, {"not": "a decision"})))

    async def post_twice() -> list[Any]:
        outcomes = []
        for _ in range(2):  # the second is answered only if the thread survived the first
            stored = asyncio.wait_for(writer.store(repeat, key_id=None), timeout=10)
            outcomes += await asyncio.gather(stored, return_exceptions=True)
        return outcomes

    try:
        outcomes = run(post_twice())
    finally:
        writer.close()
    # pydantic's ValidationError, each repeat's own 500; never answered would be a TimeoutError
    assert [type(outcome).__name__ for outcome in outcomes] == ["ValidationError", "ValidationError"]
